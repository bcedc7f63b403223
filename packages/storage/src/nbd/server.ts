import { createServer, type Server, type Socket } from 'node:net';
import { BlockError, type BlockBackend, canDiscard, hasBlockStatus, ignoreEvents, type Observer } from '@tsvirt/interfaces';
import * as nbd from './protocol.js';
import { SocketReader } from './socket-reader.js';

/** One disk offered by the server. */
export interface NbdExport {
  name: string;
  backend: BlockBackend;
  description?: string;
  /** Refuse writes even if the backend allows them. */
  readOnly?: boolean;
}

export type NbdServerEvent =
  | { kind: 'connected'; remote: string }
  | { kind: 'disconnected'; remote: string; reason?: string }
  | { kind: 'protocol-error'; remote: string; message: string };

export interface NbdServerOptions {
  exports: NbdExport[];
  observer?: Observer<NbdServerEvent>;
}

class ProtocolError extends Error {}

/** Block status answers cover at most this much of a request, in at most this many extents. */
const MAX_STATUS_SPAN = 1 << 30;
const MAX_STATUS_EXTENTS = 1 << 16;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * An NBD server (fixed newstyle, NBD_OPT_GO/INFO/LIST, structured replies,
 * base:allocation block status, trim, write-zeroes, flush) over TCP or a
 * Unix socket. Each connection serves its requests in order.
 */
export class NbdServer {
  private readonly exports = new Map<string, NbdExport>();
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private readonly observer: Observer<NbdServerEvent>;

  constructor(options: NbdServerOptions) {
    for (const entry of options.exports) this.exports.set(entry.name, entry);
    this.observer = options.observer ?? ignoreEvents;
  }

  /** Listens on a TCP port (0 picks one) or a Unix socket path; resolves with the address. */
  async listen(where: { port: number; host?: string } | { path: string }): Promise<{ port?: number; path?: string }> {
    const server = createServer((socket) => this.serve(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if ('path' in where) server.listen(where.path, resolve);
      else server.listen(where.port, where.host ?? '127.0.0.1', resolve);
    });
    const address = server.address();
    return typeof address === 'string' ? { path: address } : { port: address?.port ?? 0 };
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private serve(socket: Socket): void {
    const remote = `${socket.remoteAddress ?? 'unix'}:${socket.remotePort ?? ''}`;
    this.sockets.add(socket);
    socket.setNoDelay(true);
    this.observer({ kind: 'connected', remote });
    const reader = new SocketReader(socket);
    this.session(socket, reader).then(
      () => this.observer({ kind: 'disconnected', remote }),
      (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        if (error instanceof ProtocolError) this.observer({ kind: 'protocol-error', remote, message });
        this.observer({ kind: 'disconnected', remote, reason: message });
      },
    ).finally(() => {
      this.sockets.delete(socket);
      socket.destroy();
    });
  }

  private async session(socket: Socket, reader: SocketReader): Promise<void> {
    const greeting = new DataView(new ArrayBuffer(18));
    greeting.setBigUint64(0, nbd.NBDMAGIC);
    greeting.setBigUint64(8, nbd.IHAVEOPT);
    greeting.setUint16(16, nbd.FLAG_FIXED_NEWSTYLE | nbd.FLAG_NO_ZEROES);
    socket.write(new Uint8Array(greeting.buffer));
    const clientFlags = new DataView((await reader.read(4)).buffer).getUint32(0);
    if ((clientFlags & ~(nbd.FLAG_FIXED_NEWSTYLE | nbd.FLAG_NO_ZEROES)) !== 0) throw new ProtocolError('unknown client flags');
    const noZeroes = (clientFlags & nbd.FLAG_NO_ZEROES) !== 0;
    const negotiated = await this.negotiate(socket, reader, noZeroes);
    if (negotiated === undefined) return;
    await this.transmit(socket, reader, negotiated);
  }

  private reply(socket: Socket, option: number, type: number, data: Uint8Array = new Uint8Array(0)): void {
    const header = new DataView(new ArrayBuffer(20));
    header.setBigUint64(0, nbd.OPTION_REPLY_MAGIC);
    header.setUint32(8, option);
    header.setUint32(12, type);
    header.setUint32(16, data.length);
    socket.write(new Uint8Array(header.buffer));
    if (data.length > 0) socket.write(data);
  }

  private transmissionFlags(entry: NbdExport): number {
    let flags = nbd.TRANSMIT_HAS_FLAGS | nbd.TRANSMIT_SEND_FLUSH | nbd.TRANSMIT_SEND_FUA | nbd.TRANSMIT_SEND_DF | nbd.TRANSMIT_CAN_MULTI_CONN;
    if (entry.readOnly || entry.backend.readOnly) flags |= nbd.TRANSMIT_READ_ONLY;
    else flags |= nbd.TRANSMIT_SEND_WRITE_ZEROES | (canDiscard(entry.backend) ? nbd.TRANSMIT_SEND_TRIM : 0);
    return flags;
  }

  /** Option haggling; returns the chosen export and reply style, or undefined if the client aborted. */
  private async negotiate(socket: Socket, reader: SocketReader, noZeroes: boolean): Promise<{ entry: NbdExport; structured: boolean; allocationContext: number | undefined } | undefined> {
    let structured = false;
    let allocationContext: number | undefined;
    for (;;) {
      const head = new DataView((await reader.read(16)).buffer);
      if (head.getBigUint64(0) !== nbd.IHAVEOPT) throw new ProtocolError('bad option magic');
      const option = head.getUint32(8);
      const length = head.getUint32(12);
      if (length > nbd.MAX_OPTION) {
        // Too long to buffer: the protocol says drop the connection.
        throw new ProtocolError(`option ${option} of ${length} bytes`);
      }
      const data = await reader.read(length);
      const view = new DataView(data.buffer);
      switch (option) {
        case nbd.OPT_ABORT:
          this.reply(socket, option, nbd.REP_ACK);
          return undefined;
        case nbd.OPT_STRUCTURED_REPLY:
          if (length !== 0) this.reply(socket, option, nbd.REP_ERR_INVALID);
          else {
            structured = true;
            this.reply(socket, option, nbd.REP_ACK);
          }
          break;
        case nbd.OPT_LIST:
          for (const entry of this.exports.values()) {
            const name = encoder.encode(entry.name);
            const body = new Uint8Array(4 + name.length);
            new DataView(body.buffer).setUint32(0, name.length);
            body.set(name, 4);
            this.reply(socket, option, nbd.REP_SERVER, body);
          }
          this.reply(socket, option, nbd.REP_ACK);
          break;
        case nbd.OPT_LIST_META_CONTEXT:
        case nbd.OPT_SET_META_CONTEXT: {
          const parsed = parseMetaRequest(data);
          if (parsed === undefined || (option === nbd.OPT_SET_META_CONTEXT && !structured)) {
            this.reply(socket, option, nbd.REP_ERR_INVALID);
            break;
          }
          if (!this.exports.has(parsed.name)) {
            this.reply(socket, option, nbd.REP_ERR_UNKNOWN);
            break;
          }
          const wanted = parsed.queries.length === 0 ? option === nbd.OPT_LIST_META_CONTEXT : parsed.queries.some((query) => query === nbd.BASE_ALLOCATION || query === 'base:');
          if (option === nbd.OPT_SET_META_CONTEXT) allocationContext = wanted ? 1 : undefined;
          if (wanted) {
            const name = encoder.encode(nbd.BASE_ALLOCATION);
            const body = new Uint8Array(4 + name.length);
            new DataView(body.buffer).setUint32(0, 1);
            body.set(name, 4);
            this.reply(socket, option, nbd.REP_META_CONTEXT, body);
          }
          this.reply(socket, option, nbd.REP_ACK);
          break;
        }
        case nbd.OPT_EXPORT_NAME: {
          const entry = this.exports.get(decoder.decode(data));
          if (entry === undefined) throw new ProtocolError('unknown export (NBD_OPT_EXPORT_NAME cannot report errors)');
          const body = new DataView(new ArrayBuffer(noZeroes ? 10 : 134));
          nbd.setU64(body, 0, entry.backend.size);
          body.setUint16(8, this.transmissionFlags(entry));
          socket.write(new Uint8Array(body.buffer));
          return { entry, structured, allocationContext };
        }
        case nbd.OPT_INFO:
        case nbd.OPT_GO: {
          if (length < 6) {
            this.reply(socket, option, nbd.REP_ERR_INVALID);
            break;
          }
          const nameLength = view.getUint32(0);
          if (nameLength > length - 6) {
            this.reply(socket, option, nbd.REP_ERR_INVALID);
            break;
          }
          const name = decoder.decode(data.subarray(4, 4 + nameLength));
          const requests = view.getUint16(4 + nameLength);
          if (6 + nameLength + requests * 2 !== length) {
            this.reply(socket, option, nbd.REP_ERR_INVALID);
            break;
          }
          const entry = this.exports.get(name);
          if (entry === undefined) {
            this.reply(socket, option, nbd.REP_ERR_UNKNOWN, encoder.encode(`export '${name}' not present`));
            break;
          }
          const info = new DataView(new ArrayBuffer(12));
          info.setUint16(0, nbd.INFO_EXPORT);
          nbd.setU64(info, 2, entry.backend.size);
          info.setUint16(10, this.transmissionFlags(entry));
          this.reply(socket, option, nbd.REP_INFO, new Uint8Array(info.buffer));
          const sizes = new DataView(new ArrayBuffer(14));
          sizes.setUint16(0, nbd.INFO_BLOCK_SIZE);
          sizes.setUint32(2, 1);
          sizes.setUint32(6, 4096);
          sizes.setUint32(10, nbd.MAX_PAYLOAD);
          this.reply(socket, option, nbd.REP_INFO, new Uint8Array(sizes.buffer));
          this.reply(socket, option, nbd.REP_ACK);
          if (option === nbd.OPT_GO) return { entry, structured, allocationContext };
          break;
        }
        default:
          this.reply(socket, option, nbd.REP_ERR_UNSUP);
      }
    }
  }

  private async transmit(socket: Socket, reader: SocketReader, session: { entry: NbdExport; structured: boolean; allocationContext: number | undefined }): Promise<void> {
    const { entry, structured, allocationContext } = session;
    const backend = entry.backend;
    const readOnly = entry.readOnly || backend.readOnly;
    const simple = (handle: bigint, error: number, data?: Uint8Array) => {
      const header = new DataView(new ArrayBuffer(16));
      header.setUint32(0, nbd.SIMPLE_REPLY_MAGIC);
      header.setUint32(4, error);
      header.setBigUint64(8, handle);
      socket.write(new Uint8Array(header.buffer));
      if (data && data.length > 0) socket.write(data);
    };
    const chunk = (handle: bigint, flags: number, type: number, payload: Uint8Array) => {
      const header = new DataView(new ArrayBuffer(20));
      header.setUint32(0, nbd.STRUCTURED_REPLY_MAGIC);
      header.setUint16(4, flags);
      header.setUint16(6, type);
      header.setBigUint64(8, handle);
      header.setUint32(16, payload.length);
      socket.write(new Uint8Array(header.buffer));
      if (payload.length > 0) socket.write(payload);
    };
    const fail = (handle: bigint, error: number, message = '') => {
      if (!structured) {
        simple(handle, error);
        return;
      }
      const text = encoder.encode(message);
      const payload = new Uint8Array(6 + text.length);
      const view = new DataView(payload.buffer);
      view.setUint32(0, error);
      view.setUint16(4, text.length);
      payload.set(text, 6);
      chunk(handle, nbd.REPLY_FLAG_DONE, nbd.REPLY_TYPE_ERROR, payload);
    };
    const done = (handle: bigint) => (structured ? chunk(handle, nbd.REPLY_FLAG_DONE, nbd.REPLY_TYPE_NONE, new Uint8Array(0)) : simple(handle, 0));

    for (;;) {
      const head = new DataView((await reader.read(28)).buffer);
      if (head.getUint32(0) !== nbd.REQUEST_MAGIC) throw new ProtocolError('bad request magic');
      const flags = head.getUint16(4);
      const type = head.getUint16(6);
      const handle = head.getBigUint64(8);
      const offset = nbd.u64(head, 16);
      const length = head.getUint32(24);
      if (type === nbd.CMD_WRITE) {
        // The payload follows whatever we think of the request; too big to skip safely means hang up.
        if (length > nbd.MAX_PAYLOAD) throw new ProtocolError(`write of ${length} bytes`);
        const data = await reader.read(length);
        if (readOnly) fail(handle, nbd.EPERM, 'export is read-only');
        else if (offset + length > backend.size) fail(handle, nbd.ENOSPC, 'write past the end of the export');
        else await this.run(handle, fail, async () => {
          await backend.writeAt(offset, data);
          if (flags & nbd.CMD_FLAG_FUA) await backend.flush();
          done(handle);
        });
        continue;
      }
      if (type === nbd.CMD_DISC) return;
      const inRange = offset + length <= backend.size;
      switch (type) {
        case nbd.CMD_READ: {
          if (length > nbd.MAX_PAYLOAD) fail(handle, nbd.EOVERFLOW, 'read too large');
          else if (!inRange) fail(handle, nbd.EINVAL, 'read past the end of the export');
          else await this.run(handle, fail, async () => {
            if (!structured) {
              const data = new Uint8Array(length);
              await backend.readAt(offset, data);
              simple(handle, 0, data);
              return;
            }
            // Structured reads send known-zero runs as holes instead of bytes.
            const extents = length > 0 && hasBlockStatus(backend) ? await backend.blockStatus(offset, length) : [];
            const pieces: Array<{ offset: number; length: number; hole: boolean }> = [];
            let covered = offset;
            for (const extent of extents) {
              const start = Math.max(covered, extent.offset);
              const end = Math.min(offset + length, extent.offset + extent.length);
              if (end <= start) continue;
              const hole = extent.zero && end - start >= 4096;
              const last = pieces[pieces.length - 1];
              if (last && last.hole === hole && last.offset + last.length === start) last.length += end - start;
              else pieces.push({ offset: start, length: end - start, hole });
              covered = end;
            }
            if (covered < offset + length) pieces.push({ offset: covered, length: offset + length - covered, hole: false });
            for (const [index, piece] of pieces.entries()) {
              const flags = index === pieces.length - 1 ? nbd.REPLY_FLAG_DONE : 0;
              if (piece.hole) {
                const payload = new DataView(new ArrayBuffer(12));
                nbd.setU64(payload, 0, piece.offset);
                payload.setUint32(8, piece.length);
                chunk(handle, flags, nbd.REPLY_TYPE_OFFSET_HOLE, new Uint8Array(payload.buffer));
              } else {
                const payload = new Uint8Array(8 + piece.length);
                nbd.setU64(new DataView(payload.buffer), 0, piece.offset);
                await backend.readAt(piece.offset, payload.subarray(8));
                chunk(handle, flags, nbd.REPLY_TYPE_OFFSET_DATA, payload);
              }
            }
            if (pieces.length === 0) done(handle);
          });
          break;
        }
        case nbd.CMD_FLUSH:
          await this.run(handle, fail, async () => {
            await backend.flush();
            done(handle);
          });
          break;
        case nbd.CMD_TRIM:
        case nbd.CMD_WRITE_ZEROES:
          if (readOnly) fail(handle, nbd.EPERM, 'export is read-only');
          else if (!inRange) fail(handle, nbd.ENOSPC, 'request past the end of the export');
          else await this.run(handle, fail, async () => {
            if (canDiscard(backend)) {
              if (type === nbd.CMD_TRIM) await backend.discard(offset, length);
              else await backend.writeZeroes(offset, length, { mayUnmap: (flags & nbd.CMD_FLAG_NO_HOLE) === 0 });
            } else if (type === nbd.CMD_WRITE_ZEROES) {
              for (let at = 0; at < length; at += 1 << 20) await backend.writeAt(offset + at, new Uint8Array(Math.min(1 << 20, length - at)));
            }
            if (flags & nbd.CMD_FLAG_FUA) await backend.flush();
            done(handle);
          });
          break;
        case nbd.CMD_CACHE:
          if (!inRange) fail(handle, nbd.EINVAL, 'request past the end of the export');
          else done(handle);
          break;
        case nbd.CMD_BLOCK_STATUS:
          if (!structured || allocationContext === undefined) fail(handle, nbd.EINVAL, 'no metadata context negotiated');
          else if (!inRange || length === 0) fail(handle, nbd.EINVAL, 'block status past the end of the export');
          else await this.run(handle, fail, async () => {
            // The protocol lets a reply cover less than was asked; this bounds the work and the reply.
            const span = Math.min(length, MAX_STATUS_SPAN);
            const extents = hasBlockStatus(backend)
              ? await backend.blockStatus(offset, span)
              : [{ offset, length: span, allocated: true, zero: false }];
            const chosen = flags & nbd.CMD_FLAG_REQ_ONE ? extents.slice(0, 1) : extents.slice(0, MAX_STATUS_EXTENTS);
            const payload = new Uint8Array(4 + chosen.length * 8);
            const view = new DataView(payload.buffer);
            view.setUint32(0, allocationContext);
            chosen.forEach((extent, index) => {
              view.setUint32(4 + index * 8, Math.min(extent.length, 0xffffffff));
              view.setUint32(8 + index * 8, (extent.allocated ? 0 : nbd.STATE_HOLE) | (extent.zero ? nbd.STATE_ZERO : 0));
            });
            chunk(handle, nbd.REPLY_FLAG_DONE, nbd.REPLY_TYPE_BLOCK_STATUS, payload);
          });
          break;
        default:
          fail(handle, nbd.EINVAL, `unknown command ${type}`);
      }
    }
  }

  /** Runs a request; a backend failure becomes an NBD error reply, never a dropped connection. */
  private async run(handle: bigint, fail: (handle: bigint, error: number, message: string) => void, action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (error) {
      const code = error instanceof BlockError ? (error.code === 'BLOCK_READ_ONLY' ? nbd.EPERM : error.code === 'BLOCK_RANGE' ? nbd.EINVAL : nbd.EIO) : nbd.EIO;
      fail(handle, code, error instanceof Error ? error.message : String(error));
    }
  }
}

function parseMetaRequest(data: Uint8Array): { name: string; queries: string[] } | undefined {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length < 8) return undefined;
  const nameLength = view.getUint32(0);
  if (nameLength > data.length - 8) return undefined;
  const name = decoder.decode(data.subarray(4, 4 + nameLength));
  const count = view.getUint32(4 + nameLength);
  const queries: string[] = [];
  let at = 8 + nameLength;
  for (let i = 0; i < count; i++) {
    if (at + 4 > data.length) return undefined;
    const length = view.getUint32(at);
    if (length > data.length - at - 4) return undefined;
    queries.push(decoder.decode(data.subarray(at + 4, at + 4 + length)));
    at += 4 + length;
  }
  return at === data.length ? { name, queries } : undefined;
}
