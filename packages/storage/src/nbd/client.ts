import { connect, type Socket } from 'node:net';
import { BlockError, type BlockBackend, type BlockStatusCapable, type BlockStatusExtent, type DiscardCapable } from '@tsvirt/interfaces';
import { checkRange } from '../block-range.js';
import { NbdProtocolError, NbdTimeoutError } from './errors.js';
import * as nbd from './protocol.js';
import { ReadCoverage } from './read-coverage.js';
import { serverText } from './server-text.js';
import { SocketReader } from './socket-reader.js';

export { NbdProtocolError, type NbdProtocolProblem, NbdTimeoutError } from './errors.js';

/** Where an NBD export lives: `nbd://host:port/name` or `nbd+unix:///name?socket=/path`. */
export interface NbdAddress {
  host?: string;
  port?: number;
  path?: string;
  exportName: string;
}

/** How long the client waits for the server; `'never'` waits as long as it takes (qemu-img's behaviour). */
export interface NbdConnectOptions {
  /** Connecting and the whole handshake, in milliseconds (default 30 000). */
  connectTimeoutMs?: number | 'never';
  /**
   * How long the server may stay silent while a reply is due, in milliseconds
   * (default 60 000). A server still sending is never cut off, however long a
   * request takes; one that sends nothing for this long loses the connection,
   * and every request waiting on it fails with `NbdTimeoutError`.
   */
  replyTimeoutMs?: number | 'never';
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
export const DEFAULT_REPLY_TIMEOUT_MS = 60_000;

/** Parses qemu's NBD URI forms. */
export function parseNbdUri(uri: string): NbdAddress {
  const url = new URL(uri);
  const exportName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (url.protocol === 'nbd+unix:') {
    const path = url.searchParams.get('socket');
    if (!path) throw new BlockError('BLOCK_IO', `${uri}: nbd+unix needs ?socket=`);
    return { path, exportName };
  }
  if (url.protocol !== 'nbd:' && url.protocol !== 'nbd+tcp:') throw new BlockError('BLOCK_IO', `${uri} is not an NBD URI`);
  return { host: url.hostname || 'localhost', port: url.port ? Number(url.port) : 10809, exportName };
}

interface Pending {
  resolve: () => void;
  reject: (error: Error) => void;
  /** The request's offset and length: every chunk of the reply is checked against them. */
  offset: number;
  length: number;
  /** Where read data goes. */
  into?: Uint8Array;
  /** The parts of a structured read answered so far. */
  covered?: ReadCoverage;
  extents?: BlockStatusExtent[];
  error?: Error;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const ERROR_NAMES = new Map([
  [nbd.EPERM, 'EPERM'],
  [nbd.EIO, 'EIO'],
  [nbd.ENOMEM, 'ENOMEM'],
  [nbd.EINVAL, 'EINVAL'],
  [nbd.ENOSPC, 'ENOSPC'],
  [nbd.EOVERFLOW, 'EOVERFLOW'],
  [nbd.ENOTSUP, 'ENOTSUP'],
  [nbd.ESHUTDOWN, 'ESHUTDOWN'],
]);

function errorName(error: number): string {
  return ERROR_NAMES.get(error) ?? String(error);
}

function timeoutOption(value: number | 'never' | undefined, fallback: number, name: string): number | undefined {
  if (value === 'never') return undefined;
  const ms = value ?? fallback;
  // Node clamps timers above 2^31 - 1 ms to 1 ms: a longer wait must be asked for as 'never'.
  if (!Number.isFinite(ms) || ms <= 0 || ms > 2 ** 31 - 1) throw new RangeError(`${name} must be a positive number of milliseconds up to 2^31 - 1, or 'never'; got ${String(value)}`);
  return ms;
}

/**
 * A disk on an NBD server: fixed newstyle with NBD_OPT_GO, structured
 * replies and base:allocation when the server offers them; requests are
 * pipelined and matched to replies by handle.
 *
 * The server is not trusted: every reply is checked against its request
 * before a byte of it is used (`NbdProtocolError` otherwise), its strings are
 * cut short and stripped of control characters, and a silent server is given
 * up on (`NbdTimeoutError`).
 */
export class NbdClient implements BlockBackend, DiscardCapable, BlockStatusCapable {
  private readonly pending = new Map<bigint, Pending>();
  private nextHandle = 1n;
  private closed = false;
  private broken: BlockError | undefined;
  /** Runs while a reply is due, restarted by every byte the server sends. */
  private watchdog: ReturnType<typeof setTimeout> | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly reader: SocketReader,
    readonly size: number,
    private readonly flags: number,
    private readonly structured: boolean,
    private readonly allocationContext: number | undefined,
    readonly maxPayload: number,
    /** The export's description, if the server gave one (cut short, control characters removed). */
    readonly description: string | undefined,
    private readonly replyTimeoutMs: number | undefined,
  ) {
    socket.on('data', () => this.watchdog?.refresh());
    void this.receive();
  }

  get readOnly(): boolean {
    return (this.flags & nbd.TRANSMIT_READ_ONLY) !== 0;
  }

  static async connect(address: NbdAddress, options: NbdConnectOptions = {}): Promise<NbdClient> {
    const connectTimeoutMs = timeoutOption(options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, 'connectTimeoutMs');
    const replyTimeoutMs = timeoutOption(options.replyTimeoutMs, DEFAULT_REPLY_TIMEOUT_MS, 'replyTimeoutMs');
    const socket = address.path !== undefined ? connect(address.path) : connect(address.port ?? 10809, address.host ?? 'localhost');
    // Destroying the socket with the timeout error fails whatever the handshake waits for, with that error.
    const deadline = connectTimeoutMs === undefined ? undefined : setTimeout(() => socket.destroy(new NbdTimeoutError('connect', connectTimeoutMs)), connectTimeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('error', reject);
      });
      socket.setNoDelay(true);
      const reader = new SocketReader(socket);
      try {
        const negotiated = await NbdClient.handshake(socket, reader, address.exportName);
        return new NbdClient(socket, reader, negotiated.size, negotiated.flags, negotiated.structured, negotiated.allocationContext, negotiated.maxPayload, negotiated.description, replyTimeoutMs);
      } catch (error) {
        // Anything not already a BlockError is the connection failing (the protocol errors are thrown as such).
        throw error instanceof BlockError ? error : new BlockError('BLOCK_IO', `NBD handshake failed: ${(error as Error).message}`, { cause: error });
      }
    } catch (error) {
      socket.destroy();
      throw error instanceof BlockError ? error : new BlockError('BLOCK_IO', `cannot connect to the NBD server: ${(error as Error).message}`, { cause: error });
    } finally {
      clearTimeout(deadline);
    }
  }

  private static async handshake(socket: Socket, reader: SocketReader, exportName: string): Promise<{ size: number; flags: number; structured: boolean; allocationContext: number | undefined; maxPayload: number; description: string | undefined }> {
    const greeting = new DataView((await reader.read(18)).buffer);
    if (greeting.getBigUint64(0) !== nbd.NBDMAGIC || greeting.getBigUint64(8) !== nbd.IHAVEOPT) throw new NbdProtocolError('bad-handshake', 'not a newstyle NBD server');
    const serverFlags = greeting.getUint16(16);
    if ((serverFlags & nbd.FLAG_FIXED_NEWSTYLE) === 0) throw new NbdProtocolError('bad-handshake', 'the server does not speak fixed newstyle');
    const clientFlags = nbd.FLAG_FIXED_NEWSTYLE | (serverFlags & nbd.FLAG_NO_ZEROES);
    const flagBytes = new DataView(new ArrayBuffer(4));
    flagBytes.setUint32(0, clientFlags);
    socket.write(new Uint8Array(flagBytes.buffer));

    const send = (option: number, data: Uint8Array = new Uint8Array(0)) => {
      const head = new DataView(new ArrayBuffer(16));
      head.setBigUint64(0, nbd.IHAVEOPT);
      head.setUint32(8, option);
      head.setUint32(12, data.length);
      socket.write(new Uint8Array(head.buffer));
      if (data.length > 0) socket.write(data);
    };
    const receive = async (option: number): Promise<{ type: number; data: Uint8Array }> => {
      const head = new DataView((await reader.read(20)).buffer);
      if (head.getBigUint64(0) !== nbd.OPTION_REPLY_MAGIC || head.getUint32(8) !== option) throw new NbdProtocolError('bad-handshake', 'bad option reply');
      const length = head.getUint32(16);
      if (length > nbd.MAX_OPTION) throw new NbdProtocolError('bad-handshake', `option reply of ${length} bytes`);
      return { type: head.getUint32(12), data: await reader.read(length) };
    };

    send(nbd.OPT_STRUCTURED_REPLY);
    const structured = (await receive(nbd.OPT_STRUCTURED_REPLY)).type === nbd.REP_ACK;
    const name = encoder.encode(exportName);
    let allocationContext: number | undefined;
    if (structured) {
      const query = encoder.encode(nbd.BASE_ALLOCATION);
      const body = new Uint8Array(12 + name.length + query.length);
      const view = new DataView(body.buffer);
      view.setUint32(0, name.length);
      body.set(name, 4);
      view.setUint32(4 + name.length, 1);
      view.setUint32(8 + name.length, query.length);
      body.set(query, 12 + name.length);
      send(nbd.OPT_SET_META_CONTEXT, body);
      for (;;) {
        const reply = await receive(nbd.OPT_SET_META_CONTEXT);
        if (reply.type === nbd.REP_META_CONTEXT && reply.data.length >= 4) {
          if (decoder.decode(reply.data.subarray(4)) === nbd.BASE_ALLOCATION) allocationContext = new DataView(reply.data.buffer).getUint32(0);
          continue;
        }
        break;
      }
    }
    const go = new Uint8Array(10 + name.length);
    const goView = new DataView(go.buffer);
    goView.setUint32(0, name.length);
    go.set(name, 4);
    goView.setUint16(4 + name.length, 2);
    goView.setUint16(6 + name.length, nbd.INFO_BLOCK_SIZE);
    goView.setUint16(8 + name.length, nbd.INFO_DESCRIPTION);
    send(nbd.OPT_GO, go);
    let size: number | undefined;
    let flags = 0;
    let maxPayload = nbd.MAX_PAYLOAD;
    let description: string | undefined;
    for (;;) {
      const reply = await receive(nbd.OPT_GO);
      if (reply.type === nbd.REP_ACK) break;
      if (reply.type >= 0x80000000) {
        const message = reply.data.length > 0 ? serverText(reply.data) : `error 0x${reply.type.toString(16)}`;
        throw new BlockError('BLOCK_IO', `server refused export ${JSON.stringify(exportName)}: ${message}`);
      }
      if (reply.type !== nbd.REP_INFO || reply.data.length < 2) continue;
      const view = new DataView(reply.data.buffer);
      const info = view.getUint16(0);
      if (info === nbd.INFO_EXPORT && reply.data.length >= 12) {
        size = nbd.u64(view, 2);
        flags = view.getUint16(10);
      } else if (info === nbd.INFO_BLOCK_SIZE && reply.data.length >= 14) {
        maxPayload = Math.min(nbd.MAX_PAYLOAD, Math.max(512, view.getUint32(10)));
      } else if (info === nbd.INFO_DESCRIPTION) {
        description = serverText(reply.data.subarray(2));
      }
    }
    if (size === undefined || !Number.isSafeInteger(size)) throw new NbdProtocolError('bad-handshake', 'the server did not report a usable export size');
    return { size, flags, structured, allocationContext, maxPayload, description };
  }

  async readAt(offset: number, into: Uint8Array): Promise<void> {
    this.check(offset, into.length, false);
    for (let done = 0; done < into.length; done += this.maxPayload) {
      const piece = into.subarray(done, Math.min(into.length, done + this.maxPayload));
      await this.request(nbd.CMD_READ, 0, offset + done, piece.length, undefined, { into: piece, covered: this.structured ? new ReadCoverage() : undefined });
    }
  }

  async writeAt(offset: number, from: Uint8Array): Promise<void> {
    this.check(offset, from.length, true);
    for (let done = 0; done < from.length; done += this.maxPayload) {
      const piece = from.subarray(done, Math.min(from.length, done + this.maxPayload));
      await this.request(nbd.CMD_WRITE, 0, offset + done, piece.length, piece);
    }
  }

  async discard(offset: number, length: number): Promise<void> {
    this.check(offset, length, true);
    if ((this.flags & nbd.TRANSMIT_SEND_TRIM) === 0) return;
    for (let done = 0; done < length; done += 1 << 30) await this.request(nbd.CMD_TRIM, 0, offset + done, Math.min(1 << 30, length - done));
  }

  async writeZeroes(offset: number, length: number, options: { mayUnmap?: boolean } = {}): Promise<void> {
    this.check(offset, length, true);
    if ((this.flags & nbd.TRANSMIT_SEND_WRITE_ZEROES) === 0) {
      for (let done = 0; done < length; done += this.maxPayload) await this.writeAt(offset + done, new Uint8Array(Math.min(this.maxPayload, length - done)));
      return;
    }
    for (let done = 0; done < length; done += 1 << 30) {
      await this.request(nbd.CMD_WRITE_ZEROES, options.mayUnmap ? 0 : nbd.CMD_FLAG_NO_HOLE, offset + done, Math.min(1 << 30, length - done));
    }
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatusExtent[]> {
    this.check(offset, 0, false);
    const end = Math.min(this.size, offset + length);
    if (end <= offset) return [];
    if (this.allocationContext === undefined) return [{ offset, length: end - offset, allocated: true, zero: false }];
    const result: BlockStatusExtent[] = [];
    for (let at = offset; at < end; ) {
      const extents: BlockStatusExtent[] = [];
      await this.request(nbd.CMD_BLOCK_STATUS, 0, at, Math.min(end - at, 0xffffffff - 511), undefined, { extents });
      // Every extent was checked on arrival: non-empty, consecutive, starting inside the request.
      if (extents.length === 0) throw new NbdProtocolError('missing-block-status', 'the server answered block status without any extent');
      for (const extent of extents) {
        result.push(extent);
        at = extent.offset + extent.length;
      }
    }
    return result;
  }

  async flush(): Promise<void> {
    if (this.closed) throw new BlockError('BLOCK_CLOSED', 'the disk is closed');
    if ((this.flags & nbd.TRANSMIT_SEND_FLUSH) !== 0) await this.request(nbd.CMD_FLUSH, 0, 0, 0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.broken) {
      const head = this.header(nbd.CMD_DISC, 0, this.nextHandle++, 0, 0);
      // The disconnect request is a courtesy: a server that does not take it is not waited for.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.socket.end(head, () => resolve())),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.min(this.replyTimeoutMs ?? 5000, 5000)))),
      ]);
      clearTimeout(timer);
    }
    this.stopWatchdog();
    this.socket.destroy();
  }

  private check(offset: number, length: number, write: boolean): void {
    if (this.closed) throw new BlockError('BLOCK_CLOSED', 'the disk is closed');
    if (this.broken) throw this.lost();
    checkRange(offset, length, this.size);
    if (write && this.readOnly) throw new BlockError('BLOCK_READ_ONLY', 'the NBD export is read-only');
  }

  private header(type: number, flags: number, handle: bigint, offset: number, length: number): Uint8Array {
    const head = new DataView(new ArrayBuffer(28));
    head.setUint32(0, nbd.REQUEST_MAGIC);
    head.setUint16(4, flags);
    head.setUint16(6, type);
    head.setBigUint64(8, handle);
    nbd.setU64(head, 16, offset);
    head.setUint32(24, length);
    return new Uint8Array(head.buffer);
  }

  private request(type: number, flags: number, offset: number, length: number, payload?: Uint8Array, extra: Partial<Pending> = {}): Promise<void> {
    if (this.broken) return Promise.reject(this.lost());
    const handle = this.nextHandle++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(handle, { resolve, reject, offset, length, ...extra });
      this.startWatchdog();
      this.socket.write(this.header(type, flags, handle, offset, length));
      if (payload && payload.length > 0) this.socket.write(payload);
    });
  }

  /** The error for a request made after the connection broke. */
  private lost(): BlockError {
    const reason = this.broken!;
    return new BlockError('BLOCK_IO', reason.message.startsWith('NBD connection lost') ? reason.message : `NBD connection lost: ${reason.message}`, { cause: reason });
  }

  private startWatchdog(): void {
    if (this.replyTimeoutMs === undefined || this.watchdog !== undefined) return;
    const timeoutMs = this.replyTimeoutMs;
    this.watchdog = setTimeout(() => {
      this.watchdog = undefined;
      this.fail(new NbdTimeoutError('reply', timeoutMs));
    }, timeoutMs);
  }

  private stopWatchdog(): void {
    clearTimeout(this.watchdog);
    this.watchdog = undefined;
  }

  /** The connection is unusable: every waiting request fails with `error`, and so does every later one. */
  private fail(error: Error): void {
    this.broken ??= error instanceof BlockError ? error : new BlockError('BLOCK_IO', `NBD connection lost: ${error.message}`, { cause: error });
    this.stopWatchdog();
    for (const pending of this.pending.values()) pending.reject(this.broken);
    this.pending.clear();
    this.socket.destroy();
  }

  /** The reply loop: matches replies to requests until the connection ends. */
  private async receive(): Promise<void> {
    try {
      for (;;) {
        const magicBytes = await this.reader.read(4);
        const magic = new DataView(magicBytes.buffer).getUint32(0);
        if (magic === nbd.SIMPLE_REPLY_MAGIC) {
          const rest = new DataView((await this.reader.read(12)).buffer);
          const error = rest.getUint32(0);
          const handle = rest.getBigUint64(4);
          const pending = this.pending.get(handle);
          if (pending === undefined) throw new NbdProtocolError('unknown-handle', `reply for unknown handle ${handle}`);
          if (error === 0 && pending.into) pending.into.set(await this.reader.read(pending.into.length));
          this.settle(handle, pending, error === 0 ? undefined : new BlockError('BLOCK_IO', `NBD error ${errorName(error)}`));
        } else if (magic === nbd.STRUCTURED_REPLY_MAGIC && this.structured) {
          const rest = new DataView((await this.reader.read(16)).buffer);
          const flags = rest.getUint16(0);
          const type = rest.getUint16(2);
          const handle = rest.getBigUint64(4);
          const length = rest.getUint32(12);
          const pending = this.pending.get(handle);
          if (pending === undefined) throw new NbdProtocolError('unknown-handle', `reply for unknown handle ${handle}`);
          // Checked before the payload is read, so a lie about the length costs nothing.
          const limit = chunkLimit(type, pending);
          if (length > limit) throw new NbdProtocolError('chunk-too-long', `reply chunk of type ${type} with ${length} bytes (at most ${limit} expected)`);
          const payload = await this.reader.read(length);
          this.chunk(pending, type, flags, payload);
          if (flags & nbd.REPLY_FLAG_DONE) this.settle(handle, pending, pending.error ?? this.completeness(pending));
        } else {
          throw new NbdProtocolError('bad-magic', `bad reply magic 0x${magic.toString(16)}`);
        }
      }
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private settle(handle: bigint, pending: Pending, error: Error | undefined): void {
    this.pending.delete(handle);
    if (this.pending.size === 0) this.stopWatchdog();
    if (error) pending.reject(error);
    else pending.resolve();
  }

  /** A successful structured read must have filled every byte it was asked for. */
  private completeness(pending: Pending): Error | undefined {
    if (pending.covered === undefined || pending.covered.covers(pending.offset, pending.offset + pending.length)) return undefined;
    return new NbdProtocolError('incomplete-read', `the read of ${pending.length} bytes at ${pending.offset} was not answered in full`);
  }

  /** Applies one structured reply chunk to its request, checking it against the request first. */
  private chunk(pending: Pending, type: number, flags: number, payload: Uint8Array): void {
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const readPart = (offset: number, length: number, what: string) => {
      if (pending.into === undefined || pending.covered === undefined) throw new NbdProtocolError('unexpected-chunk', `read ${what} chunk for a request that is not a read`);
      const inside = length > 0 && offset >= pending.offset && offset + length <= pending.offset + pending.length;
      if (!inside || !pending.covered.add(offset, offset + length)) throw new NbdProtocolError('bad-read-chunk', `read ${what} chunk of ${length} bytes at ${offset} is empty, outside the request or overlaps another`);
    };
    switch (type) {
      case nbd.REPLY_TYPE_NONE:
        if (payload.length !== 0 || (flags & nbd.REPLY_FLAG_DONE) === 0) throw new NbdProtocolError('unexpected-chunk', 'an empty chunk that is not the last one');
        return;
      case nbd.REPLY_TYPE_OFFSET_DATA: {
        if (payload.length < 8) throw new NbdProtocolError('bad-read-chunk', 'read data chunk without an offset');
        const offset = nbd.u64(view, 0);
        const data = payload.subarray(8);
        readPart(offset, data.length, 'data');
        pending.into!.set(data, offset - pending.offset);
        return;
      }
      case nbd.REPLY_TYPE_OFFSET_HOLE: {
        if (payload.length !== 12) throw new NbdProtocolError('bad-read-chunk', `read hole chunk of ${payload.length} bytes`);
        const offset = nbd.u64(view, 0);
        const length = view.getUint32(8);
        readPart(offset, length, 'hole');
        pending.into!.fill(0, offset - pending.offset, offset - pending.offset + length);
        return;
      }
      case nbd.REPLY_TYPE_BLOCK_STATUS:
        return this.blockStatusChunk(pending, view);
      default: {
        if ((type & 0x8000) === 0) throw new NbdProtocolError('unexpected-chunk', `unknown structured reply type ${type}`);
        // Any type with the error bit is an error, known or not.
        if (payload.length < 6) throw new NbdProtocolError('bad-error-chunk', `error chunk of ${payload.length} bytes`);
        const error = view.getUint32(0);
        const messageLength = view.getUint16(4);
        if (error === 0) throw new NbdProtocolError('bad-error-chunk', 'error chunk with error 0');
        if (6 + messageLength > payload.length) throw new NbdProtocolError('bad-error-chunk', `error message of ${messageLength} bytes in a chunk of ${payload.length}`);
        const message = serverText(payload.subarray(6, 6 + messageLength));
        pending.error ??= new BlockError('BLOCK_IO', `NBD error ${errorName(error)}${message ? `: ${message}` : ''}`);
        return;
      }
    }
  }

  /**
   * Extents are consecutive from the request's offset. Each must be non-empty
   * and start inside the request; the last may reach past its end (the
   * protocol allows that) and is cut there.
   */
  private blockStatusChunk(pending: Pending, view: DataView): void {
    if (pending.extents === undefined) throw new NbdProtocolError('unexpected-chunk', 'block status chunk for a request that is not block status');
    if (view.byteLength < 12 || (view.byteLength - 4) % 8 !== 0) throw new NbdProtocolError('bad-block-status', `block status chunk of ${view.byteLength} bytes`);
    const context = view.getUint32(0);
    if (context !== this.allocationContext) throw new NbdProtocolError('bad-block-status', `block status for metadata context ${context}, which was never negotiated`);
    if (pending.extents.length > 0) throw new NbdProtocolError('bad-block-status', 'a second block status chunk for one metadata context');
    const end = pending.offset + pending.length;
    let at = pending.offset;
    for (let index = 4; index < view.byteLength; index += 8) {
      const length = view.getUint32(index);
      const state = view.getUint32(index + 4);
      if (length === 0) throw new NbdProtocolError('zero-length-extent', `zero-length block status extent at ${at}`);
      if (at >= end) throw new NbdProtocolError('extent-beyond-request', `block status extent at ${at}, past the request's end at ${end}`);
      const kept = Math.min(length, end - at);
      pending.extents.push({ offset: at, length: kept, allocated: (state & nbd.STATE_HOLE) === 0, zero: (state & nbd.STATE_ZERO) !== 0 });
      at += kept;
    }
  }
}

/** A block status reply carries at most this many extents (qemu-nbd sends up to 1 MiB of them: 131,072). */
const MAX_STATUS_EXTENTS = 1 << 17;

/** The longest payload a chunk of `type` may have for this request; a type the request cannot have is refused. */
function chunkLimit(type: number, pending: Pending): number {
  switch (type) {
    case nbd.REPLY_TYPE_NONE:
      return 0;
    case nbd.REPLY_TYPE_OFFSET_DATA:
    case nbd.REPLY_TYPE_OFFSET_HOLE:
      if (pending.into === undefined) throw new NbdProtocolError('unexpected-chunk', `read reply chunk (type ${type}) for a request that is not a read`);
      return type === nbd.REPLY_TYPE_OFFSET_HOLE ? 12 : 8 + pending.into.length;
    case nbd.REPLY_TYPE_BLOCK_STATUS:
      if (pending.extents === undefined) throw new NbdProtocolError('unexpected-chunk', 'block status chunk for a request that is not block status');
      return 4 + 8 * MAX_STATUS_EXTENTS;
    default:
      if ((type & 0x8000) === 0) throw new NbdProtocolError('unexpected-chunk', `unknown structured reply type ${type}`);
      // Error chunks: the error, the message (its length is 16 bits) and an optional offset.
      return 6 + 0xffff + 8;
  }
}
