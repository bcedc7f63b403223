import { connect, type Socket } from 'node:net';
import { BlockError, type BlockBackend, type BlockStatusCapable, type BlockStatusExtent, type DiscardCapable } from '@tsvirt/interfaces';
import { checkRange } from '../block-range.js';
import * as nbd from './protocol.js';
import { SocketReader } from './socket-reader.js';

/** Where an NBD export lives: `nbd://host:port/name` or `nbd+unix:///name?socket=/path`. */
export interface NbdAddress {
  host?: string;
  port?: number;
  path?: string;
  exportName: string;
}

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
  /** Where read data goes, and which request offset it starts at. */
  into?: Uint8Array;
  offset: number;
  extents?: BlockStatusExtent[];
  error?: Error;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A disk on an NBD server: fixed newstyle with NBD_OPT_GO, structured
 * replies and base:allocation when the server offers them; requests are
 * pipelined and matched to replies by handle.
 */
export class NbdClient implements BlockBackend, DiscardCapable, BlockStatusCapable {
  private readonly pending = new Map<bigint, Pending>();
  private nextHandle = 1n;
  private closed = false;
  private broken: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly reader: SocketReader,
    readonly size: number,
    private readonly flags: number,
    private readonly structured: boolean,
    private readonly allocationContext: number | undefined,
    readonly maxPayload: number,
  ) {
    void this.receive();
  }

  get readOnly(): boolean {
    return (this.flags & nbd.TRANSMIT_READ_ONLY) !== 0;
  }

  static async connect(address: NbdAddress): Promise<NbdClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const socket = address.path !== undefined ? connect(address.path) : connect(address.port ?? 10809, address.host ?? 'localhost');
      socket.once('connect', () => resolve(socket));
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    const reader = new SocketReader(socket);
    try {
      return await NbdClient.handshake(socket, reader, address.exportName);
    } catch (error) {
      socket.destroy();
      throw error instanceof BlockError ? error : new BlockError('BLOCK_IO', `NBD handshake failed: ${(error as Error).message}`, { cause: error });
    }
  }

  private static async handshake(socket: Socket, reader: SocketReader, exportName: string): Promise<NbdClient> {
    const greeting = new DataView((await reader.read(18)).buffer);
    if (greeting.getBigUint64(0) !== nbd.NBDMAGIC || greeting.getBigUint64(8) !== nbd.IHAVEOPT) throw new Error('not a newstyle NBD server');
    const serverFlags = greeting.getUint16(16);
    if ((serverFlags & nbd.FLAG_FIXED_NEWSTYLE) === 0) throw new Error('the server does not speak fixed newstyle');
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
      if (head.getBigUint64(0) !== nbd.OPTION_REPLY_MAGIC || head.getUint32(8) !== option) throw new Error('bad option reply');
      const length = head.getUint32(16);
      if (length > nbd.MAX_OPTION) throw new Error('option reply too long');
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
    const go = new Uint8Array(8 + name.length);
    const goView = new DataView(go.buffer);
    goView.setUint32(0, name.length);
    go.set(name, 4);
    goView.setUint16(4 + name.length, 1);
    goView.setUint16(6 + name.length, nbd.INFO_BLOCK_SIZE);
    send(nbd.OPT_GO, go);
    let size: number | undefined;
    let flags = 0;
    let maxPayload = nbd.MAX_PAYLOAD;
    for (;;) {
      const reply = await receive(nbd.OPT_GO);
      if (reply.type === nbd.REP_ACK) break;
      if (reply.type >= 0x80000000) throw new BlockError('BLOCK_IO', `server refused export ${JSON.stringify(exportName)}: ${decoder.decode(reply.data) || `error 0x${reply.type.toString(16)}`}`);
      if (reply.type !== nbd.REP_INFO || reply.data.length < 2) continue;
      const view = new DataView(reply.data.buffer);
      const info = view.getUint16(0);
      if (info === nbd.INFO_EXPORT && reply.data.length >= 12) {
        size = nbd.u64(view, 2);
        flags = view.getUint16(10);
      } else if (info === nbd.INFO_BLOCK_SIZE && reply.data.length >= 14) {
        maxPayload = Math.min(nbd.MAX_PAYLOAD, Math.max(512, view.getUint32(10)));
      }
    }
    if (size === undefined || !Number.isSafeInteger(size)) throw new Error('the server did not report a usable export size');
    return new NbdClient(socket, reader, size, flags, structured, allocationContext, maxPayload);
  }

  async readAt(offset: number, into: Uint8Array): Promise<void> {
    this.check(offset, into.length, false);
    for (let done = 0; done < into.length; done += this.maxPayload) {
      const piece = into.subarray(done, Math.min(into.length, done + this.maxPayload));
      await this.request(nbd.CMD_READ, 0, offset + done, piece.length, undefined, { into: piece, offset: offset + done });
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
      await this.request(nbd.CMD_BLOCK_STATUS, 0, at, Math.min(end - at, 0xffffffff - 511), undefined, { offset: at, extents });
      if (extents.length === 0) throw new BlockError('BLOCK_IO', 'the NBD server returned no block status');
      for (const extent of extents) {
        const clipped = Math.min(extent.length, end - at);
        if (clipped <= 0) break;
        result.push({ ...extent, offset: at, length: clipped });
        at += clipped;
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
      await new Promise<void>((resolve) => this.socket.end(head, () => resolve()));
    }
    this.socket.destroy();
  }

  private check(offset: number, length: number, write: boolean): void {
    if (this.closed) throw new BlockError('BLOCK_CLOSED', 'the disk is closed');
    if (this.broken) throw new BlockError('BLOCK_IO', `NBD connection lost: ${this.broken.message}`);
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
    if (this.broken) return Promise.reject(new BlockError('BLOCK_IO', `NBD connection lost: ${this.broken.message}`));
    const handle = this.nextHandle++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(handle, { resolve, reject, offset, ...extra });
      this.socket.write(this.header(type, flags, handle, offset, length));
      if (payload && payload.length > 0) this.socket.write(payload);
    });
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
          const pending = this.take(handle);
          if (error !== 0) {
            pending.reject(new BlockError('BLOCK_IO', `NBD error ${error}`));
            continue;
          }
          if (pending.into) pending.into.set(await this.reader.read(pending.into.length));
          pending.resolve();
        } else if (magic === nbd.STRUCTURED_REPLY_MAGIC && this.structured) {
          const rest = new DataView((await this.reader.read(16)).buffer);
          const flags = rest.getUint16(0);
          const type = rest.getUint16(2);
          const handle = rest.getBigUint64(4);
          const length = rest.getUint32(12);
          if (length > nbd.MAX_PAYLOAD + 64) throw new Error(`reply chunk of ${length} bytes`);
          const pending = this.pending.get(handle);
          if (pending === undefined) throw new Error(`reply for unknown handle ${handle}`);
          const payload = await this.reader.read(length);
          this.chunk(pending, type, payload);
          if (flags & nbd.REPLY_FLAG_DONE) {
            this.pending.delete(handle);
            if (pending.error) pending.reject(pending.error);
            else pending.resolve();
          }
        } else {
          throw new Error(`bad reply magic 0x${magic.toString(16)}`);
        }
      }
    } catch (error) {
      this.broken = error instanceof Error ? error : new Error(String(error));
      for (const pending of this.pending.values()) pending.reject(new BlockError('BLOCK_IO', `NBD connection lost: ${this.broken.message}`));
      this.pending.clear();
      this.socket.destroy();
    }
  }

  private take(handle: bigint): Pending {
    const pending = this.pending.get(handle);
    if (pending === undefined) throw new Error(`reply for unknown handle ${handle}`);
    this.pending.delete(handle);
    return pending;
  }

  /** Applies one structured reply chunk to its request, checking every offset against the request. */
  private chunk(pending: Pending, type: number, payload: Uint8Array): void {
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const within = (offset: number, length: number) => pending.into !== undefined && offset >= pending.offset && offset + length <= pending.offset + pending.into.length;
    switch (type) {
      case nbd.REPLY_TYPE_NONE:
        return;
      case nbd.REPLY_TYPE_OFFSET_DATA: {
        const offset = nbd.u64(view, 0);
        const data = payload.subarray(8);
        if (payload.length < 8 || !within(offset, data.length)) throw new Error('read data chunk outside the request');
        pending.into!.set(data, offset - pending.offset);
        return;
      }
      case nbd.REPLY_TYPE_OFFSET_HOLE: {
        const offset = nbd.u64(view, 0);
        const length = view.getUint32(8);
        if (payload.length !== 12 || !within(offset, length)) throw new Error('read hole chunk outside the request');
        pending.into!.fill(0, offset - pending.offset, offset - pending.offset + length);
        return;
      }
      case nbd.REPLY_TYPE_BLOCK_STATUS: {
        if (pending.extents === undefined || payload.length < 12 || (payload.length - 4) % 8 !== 0) throw new Error('unexpected block status chunk');
        if (view.getUint32(0) !== this.allocationContext) return;
        let at = pending.offset;
        for (let i = 4; i < payload.length; i += 8) {
          const length = view.getUint32(i);
          const state = view.getUint32(i + 4);
          if (length === 0) throw new Error('zero-length block status extent');
          pending.extents.push({ offset: at, length, allocated: (state & nbd.STATE_HOLE) === 0, zero: (state & nbd.STATE_ZERO) !== 0 });
          at += length;
        }
        return;
      }
      default:
        if (type & 0x8000) {
          const error = payload.length >= 4 ? view.getUint32(0) : nbd.EIO;
          const messageLength = payload.length >= 6 ? view.getUint16(4) : 0;
          const message = decoder.decode(payload.subarray(6, 6 + messageLength));
          pending.error ??= new BlockError('BLOCK_IO', `NBD error ${error}${message ? `: ${message}` : ''}`);
          return;
        }
        throw new Error(`unknown structured reply type ${type}`);
    }
  }
}
