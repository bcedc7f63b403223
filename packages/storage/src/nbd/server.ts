import { createServer, type Server, type Socket } from 'node:net';
import { BlockError, type BlockBackend, canDiscard, hasBlockStatus, ignoreEvents, type Observer } from '@tsvirt/interfaces';
import { type ConnectionBudget, type InFlight, type NbdServerLimits, readCost, REQUEST_OVERHEAD, resolveLimits, SharedBudget } from './flow-control.js';
import * as nbd from './protocol.js';
import { ConnectionClosedError, SocketReader } from './socket-reader.js';

export { DEFAULT_NBD_SERVER_LIMITS, type InFlight, type NbdServerLimits } from './flow-control.js';

/** One disk offered by the server. */
export interface NbdExport {
  name: string;
  backend: BlockBackend;
  /** Sent to clients that ask for NBD_INFO_DESCRIPTION. */
  description?: string;
  /** Refuse writes even if the backend allows them. */
  readOnly?: boolean;
}

/** Why the server stopped reading a client's requests. */
export type NbdPauseReason =
  /** More than `writeBufferBytes` of replies wait in the socket: the client is not reading them. */
  | 'write-buffer'
  /** The connection's, or the server's, requests or bytes in flight are at their limit. */
  | 'budget';

export type NbdServerEvent =
  | { kind: 'connected'; remote: string }
  | { kind: 'disconnected'; remote: string; reason?: string }
  | { kind: 'protocol-error'; remote: string; message: string }
  /** A connection ended by a failure that is neither the client's doing nor the network's: a bug. */
  | { kind: 'internal-error'; remote: string; message: string }
  /** What the connection, and the whole server, hold for requests, after every change. */
  | ({ kind: 'in-flight'; remote: string } & InFlight)
  | { kind: 'reading-paused'; remote: string; reason: NbdPauseReason }
  | { kind: 'reading-resumed'; remote: string; reason: NbdPauseReason };

export interface NbdServerOptions {
  exports: NbdExport[];
  observer?: Observer<NbdServerEvent>;
  /** Bounds on what clients may make the server hold; see `NbdServerLimits` for the defaults. */
  limits?: Partial<NbdServerLimits>;
}

/** What the server holds right now. */
export interface NbdServerUsage {
  connections: number;
  requestsInFlight: number;
  bytesInFlight: number;
}

class ProtocolError extends Error {}

/** Block status answers cover at most this much of a request, in at most this many extents. */
const MAX_STATUS_SPAN = 1 << 30;
const MAX_STATUS_EXTENTS = 1 << 16;
/** Writing zeroes to a backend that cannot discard goes through a buffer of this size. */
const ZERO_CHUNK = 1 << 20;
/** Characters of a client-supplied name or a backend's error message that go into a reply. */
const MAX_MESSAGE = 256;
/** How long a finished connection may take to deliver its last reply before it is cut. */
const HANG_UP_GRACE_MS = 1000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Connection {
  socket: Socket;
  reader: SocketReader;
  remote: string;
  budget: ConnectionBudget;
}

interface Session {
  entry: NbdExport;
  structured: boolean;
  allocationContext: number | undefined;
}

/**
 * An NBD server (fixed newstyle, NBD_OPT_GO/INFO/LIST, structured replies,
 * base:allocation block status, trim, write-zeroes, flush) over TCP or a
 * Unix socket. Each connection serves its requests in order.
 *
 * What a client can make it hold is bounded (`NbdServerLimits`): requests and
 * bytes in flight per connection and in total, reserved before anything is
 * read or allocated, and a connection's requests are not read while its
 * replies pile up unread.
 */
export class NbdServer {
  private readonly exports = new Map<string, NbdExport>();
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private readonly observer: Observer<NbdServerEvent>;
  private readonly limits: NbdServerLimits;
  private readonly budget: SharedBudget;
  /** Block status replies are cut to what one connection's bytes may hold. */
  private readonly maxStatusExtents: number;
  private readonly zeroChunk: number;

  constructor(options: NbdServerOptions) {
    for (const entry of options.exports) this.exports.set(entry.name, entry);
    this.observer = options.observer ?? ignoreEvents;
    this.limits = resolveLimits(options.limits);
    this.budget = new SharedBudget(this.limits);
    const room = this.limits.bytesPerConnection - REQUEST_OVERHEAD;
    this.maxStatusExtents = Math.max(1, Math.min(MAX_STATUS_EXTENTS, Math.floor((room - 4) / 8)));
    this.zeroChunk = Math.min(ZERO_CHUNK, room);
  }

  /** Listens on a TCP port (0 picks one) or a Unix socket path; resolves with the address. */
  async listen(where: { port: number; host?: string } | { path: string }): Promise<{ port?: number; path?: string }> {
    // Half-open: a client that sends its last requests and then its FIN still gets every reply.
    const server = createServer({ allowHalfOpen: true }, (socket) => this.serve(socket));
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

  /** Connections open, and the requests and bytes in flight on all of them. */
  usage(): NbdServerUsage {
    return { connections: this.sockets.size, requestsInFlight: this.budget.requests, bytesInFlight: this.budget.bytes };
  }

  private serve(socket: Socket): void {
    const remote = `${socket.remoteAddress ?? 'unix'}:${socket.remotePort ?? ''}`;
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const reader = new SocketReader(socket);
    const budget = this.budget.connection(() => this.observer({ kind: 'in-flight', remote, ...budget.inFlight() }));
    // What the connection holds is given back when its socket is really gone, replies delivered or not.
    socket.once('close', () => {
      this.sockets.delete(socket);
      budget.close(new ConnectionClosedError('connection closed'));
    });
    this.observer({ kind: 'connected', remote });
    const connection: Connection = { socket, reader, remote, budget };
    this.session(connection).then(
      () => this.observer({ kind: 'disconnected', remote }),
      (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        if (error instanceof ProtocolError) this.observer({ kind: 'protocol-error', remote, message });
        else if (!isConnectionFailure(error)) this.observer({ kind: 'internal-error', remote, message });
        this.observer({ kind: 'disconnected', remote, reason: message });
      },
    ).finally(() => hangUp(connection));
  }

  private async session(connection: Connection): Promise<void> {
    const { socket, reader } = connection;
    const greeting = new DataView(new ArrayBuffer(18));
    greeting.setBigUint64(0, nbd.NBDMAGIC);
    greeting.setBigUint64(8, nbd.IHAVEOPT);
    greeting.setUint16(16, nbd.FLAG_FIXED_NEWSTYLE | nbd.FLAG_NO_ZEROES);
    socket.write(new Uint8Array(greeting.buffer));
    const clientFlags = new DataView((await reader.read(4)).buffer).getUint32(0);
    if ((clientFlags & ~(nbd.FLAG_FIXED_NEWSTYLE | nbd.FLAG_NO_ZEROES)) !== 0) throw new ProtocolError('unknown client flags');
    const noZeroes = (clientFlags & nbd.FLAG_NO_ZEROES) !== 0;
    const negotiated = await this.negotiate(connection, noZeroes);
    if (negotiated === undefined) return;
    await this.transmit(connection, negotiated);
  }

  private pause(connection: Connection, reason: NbdPauseReason): void {
    connection.reader.hold(reason);
    this.observer({ kind: 'reading-paused', remote: connection.remote, reason });
  }

  private resume(connection: Connection, reason: NbdPauseReason): void {
    connection.reader.release(reason);
    this.observer({ kind: 'reading-resumed', remote: connection.remote, reason });
  }

  /** Waits, not reading the client, while its socket holds more unread replies than the bound. */
  private async drained(connection: Connection): Promise<void> {
    const { socket } = connection;
    if (socket.destroyed) throw new ConnectionClosedError('connection closed');
    // 'drain' only comes after a write that found the buffer full; without one there is nothing to wait for.
    if (socket.writableLength <= this.limits.writeBufferBytes || !socket.writableNeedDrain) return;
    this.pause(connection, 'write-buffer');
    try {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      });
    } finally {
      this.resume(connection, 'write-buffer');
    }
    if (socket.destroyed) throw new ConnectionClosedError('connection closed');
  }

  /** Room for one request, waiting (not reading the client) until the budget has it. */
  private async reserve(connection: Connection, bytes: number): Promise<{ release: () => void }> {
    const ticket = connection.budget.acquire(bytes);
    if (!(ticket instanceof Promise)) return ticket;
    this.pause(connection, 'budget');
    try {
      return await ticket;
    } finally {
      this.resume(connection, 'budget');
    }
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
  private async negotiate(connection: Connection, noZeroes: boolean): Promise<Session | undefined> {
    const { socket, reader } = connection;
    let structured = false;
    let allocationContext: number | undefined;
    for (;;) {
      // Every option may be answered: a client that does not read the answers is not read either.
      await this.drained(connection);
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
            this.reply(socket, option, nbd.REP_ERR_UNKNOWN, encoder.encode(`export '${clip(name)}' not present`));
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
          sizes.setUint32(10, this.limits.maxPayload);
          this.reply(socket, option, nbd.REP_INFO, new Uint8Array(sizes.buffer));
          const asked = Array.from({ length: requests }, (_, index) => view.getUint16(6 + nameLength + index * 2));
          if (entry.description !== undefined && asked.includes(nbd.INFO_DESCRIPTION)) {
            const text = encoder.encode(entry.description);
            const body = new Uint8Array(2 + text.length);
            new DataView(body.buffer).setUint16(0, nbd.INFO_DESCRIPTION);
            body.set(text, 2);
            this.reply(socket, option, nbd.REP_INFO, body);
          }
          this.reply(socket, option, nbd.REP_ACK);
          if (option === nbd.OPT_GO) return { entry, structured, allocationContext };
          break;
        }
        default:
          this.reply(socket, option, nbd.REP_ERR_UNSUP);
      }
    }
  }

  /** The most a request may make the server hold, reserved before it is served. */
  private cost(type: number, flags: number, length: number, backend: BlockBackend): number {
    switch (type) {
      case nbd.CMD_READ:
        return readCost(length);
      case nbd.CMD_WRITE:
        return REQUEST_OVERHEAD + length;
      case nbd.CMD_BLOCK_STATUS:
        return REQUEST_OVERHEAD + (flags & nbd.CMD_FLAG_REQ_ONE ? 12 : 4 + 8 * this.maxStatusExtents);
      case nbd.CMD_WRITE_ZEROES:
        return REQUEST_OVERHEAD + (canDiscard(backend) ? 0 : this.zeroChunk);
      default:
        return REQUEST_OVERHEAD;
    }
  }

  private async transmit(connection: Connection, session: Session): Promise<void> {
    const { socket, reader } = connection;
    const { entry } = session;
    const backend = entry.backend;
    const maxPayload = this.limits.maxPayload;
    for (;;) {
      await this.drained(connection);
      const head = new DataView((await reader.read(28)).buffer);
      if (head.getUint32(0) !== nbd.REQUEST_MAGIC) throw new ProtocolError('bad request magic');
      const flags = head.getUint16(4);
      const type = head.getUint16(6);
      const handle = head.getBigUint64(8);
      const offset = nbd.u64(head, 16);
      const length = head.getUint32(24);
      if (type === nbd.CMD_DISC) return;
      if ((type === nbd.CMD_READ || type === nbd.CMD_WRITE || type === nbd.CMD_CACHE) && length > maxPayload) {
        // qemu-nbd's answer; a write's payload cannot be skipped safely, so after it the connection ends.
        const reply = new Reply(socket, session.structured, handle, await this.reserve(connection, REQUEST_OVERHEAD));
        reply.fail(nbd.EINVAL, `request of ${length} bytes is larger than the maximum payload of ${maxPayload} bytes`);
        reply.finish();
        if (type === nbd.CMD_WRITE) throw new ProtocolError(`write of ${length} bytes, more than the maximum payload of ${maxPayload}`);
        continue;
      }
      const reply = new Reply(socket, session.structured, handle, await this.reserve(connection, this.cost(type, flags, length, backend)));
      try {
        await this.request(reader, session, reply, { type, flags, offset, length });
      } finally {
        reply.finish();
      }
    }
  }

  private async request(reader: SocketReader, session: Session, reply: Reply, request: { type: number; flags: number; offset: number; length: number }): Promise<void> {
    const { type, flags, offset, length } = request;
    const { entry, structured, allocationContext } = session;
    const backend = entry.backend;
    const readOnly = entry.readOnly || backend.readOnly;
    const inRange = offset + length <= backend.size;
    switch (type) {
      case nbd.CMD_WRITE: {
        // The payload follows whatever we think of the request.
        const data = await reader.read(length);
        if (readOnly) reply.fail(nbd.EPERM, 'export is read-only');
        else if (!inRange) reply.fail(nbd.ENOSPC, 'write past the end of the export');
        else await run(reply, async () => {
          await backend.writeAt(offset, data);
          if (flags & nbd.CMD_FLAG_FUA) await backend.flush();
          reply.done();
        });
        return;
      }
      case nbd.CMD_READ: {
        if (!inRange) return reply.fail(nbd.EINVAL, 'read past the end of the export');
        return run(reply, async () => {
          if (!structured) {
            const data = new Uint8Array(length);
            await backend.readAt(offset, data);
            reply.simple(0, data);
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
            const pieceFlags = index === pieces.length - 1 ? nbd.REPLY_FLAG_DONE : 0;
            if (piece.hole) {
              const payload = new DataView(new ArrayBuffer(12));
              nbd.setU64(payload, 0, piece.offset);
              payload.setUint32(8, piece.length);
              reply.chunk(pieceFlags, nbd.REPLY_TYPE_OFFSET_HOLE, new Uint8Array(payload.buffer));
            } else {
              const payload = new Uint8Array(8 + piece.length);
              nbd.setU64(new DataView(payload.buffer), 0, piece.offset);
              await backend.readAt(piece.offset, payload.subarray(8));
              reply.chunk(pieceFlags, nbd.REPLY_TYPE_OFFSET_DATA, payload);
            }
          }
          if (pieces.length === 0) reply.done();
        });
      }
      case nbd.CMD_FLUSH:
        return run(reply, async () => {
          await backend.flush();
          reply.done();
        });
      case nbd.CMD_TRIM:
      case nbd.CMD_WRITE_ZEROES:
        if (readOnly) return reply.fail(nbd.EPERM, 'export is read-only');
        if (!inRange) return reply.fail(nbd.ENOSPC, 'request past the end of the export');
        return run(reply, async () => {
          if (canDiscard(backend)) {
            if (type === nbd.CMD_TRIM) await backend.discard(offset, length);
            else await backend.writeZeroes(offset, length, { mayUnmap: (flags & nbd.CMD_FLAG_NO_HOLE) === 0 });
          } else if (type === nbd.CMD_WRITE_ZEROES) {
            const zeroes = new Uint8Array(Math.min(this.zeroChunk, length));
            for (let at = 0; at < length; at += zeroes.length) await backend.writeAt(offset + at, zeroes.subarray(0, Math.min(zeroes.length, length - at)));
          }
          if (flags & nbd.CMD_FLAG_FUA) await backend.flush();
          reply.done();
        });
      case nbd.CMD_CACHE:
        if (!inRange) return reply.fail(nbd.EINVAL, 'request past the end of the export');
        return reply.done();
      case nbd.CMD_BLOCK_STATUS:
        if (!structured || allocationContext === undefined) return reply.fail(nbd.EINVAL, 'no metadata context negotiated');
        if (!inRange || length === 0) return reply.fail(nbd.EINVAL, 'block status past the end of the export');
        return run(reply, async () => {
          // The protocol lets a reply cover less than was asked; this bounds the work and the reply.
          const span = Math.min(length, MAX_STATUS_SPAN);
          const extents = hasBlockStatus(backend)
            ? await backend.blockStatus(offset, span)
            : [{ offset, length: span, allocated: true, zero: false }];
          const chosen = flags & nbd.CMD_FLAG_REQ_ONE ? extents.slice(0, 1) : extents.slice(0, this.maxStatusExtents);
          const payload = new Uint8Array(4 + chosen.length * 8);
          const view = new DataView(payload.buffer);
          view.setUint32(0, allocationContext);
          chosen.forEach((extent, index) => {
            view.setUint32(4 + index * 8, Math.min(extent.length, 0xffffffff));
            view.setUint32(8 + index * 8, (extent.allocated ? 0 : nbd.STATE_HOLE) | (extent.zero ? nbd.STATE_ZERO : 0));
          });
          reply.chunk(nbd.REPLY_FLAG_DONE, nbd.REPLY_TYPE_BLOCK_STATUS, payload);
        });
      default:
        return reply.fail(nbd.EINVAL, `unknown command ${type}`);
    }
  }
}

/**
 * The reply to one request. Its room in the budget is given back when the
 * request is finished and every byte of the reply has been handed to the
 * kernel: until then the bytes are ours to hold.
 */
class Reply {
  private unflushed = 0;
  private finished = false;

  constructor(
    private readonly socket: Socket,
    private readonly structured: boolean,
    private readonly handle: bigint,
    private readonly ticket: { release: () => void },
  ) {}

  simple(error: number, data?: Uint8Array): void {
    const header = new DataView(new ArrayBuffer(16));
    header.setUint32(0, nbd.SIMPLE_REPLY_MAGIC);
    header.setUint32(4, error);
    header.setBigUint64(8, this.handle);
    this.write(new Uint8Array(header.buffer));
    if (data && data.length > 0) this.write(data);
  }

  chunk(flags: number, type: number, payload: Uint8Array): void {
    const header = new DataView(new ArrayBuffer(20));
    header.setUint32(0, nbd.STRUCTURED_REPLY_MAGIC);
    header.setUint16(4, flags);
    header.setUint16(6, type);
    header.setBigUint64(8, this.handle);
    header.setUint32(16, payload.length);
    this.write(new Uint8Array(header.buffer));
    if (payload.length > 0) this.write(payload);
  }

  fail(error: number, message: string): void {
    if (!this.structured) {
      this.simple(error);
      return;
    }
    const text = encoder.encode(clip(message));
    const payload = new Uint8Array(6 + text.length);
    const view = new DataView(payload.buffer);
    view.setUint32(0, error);
    view.setUint16(4, text.length);
    payload.set(text, 6);
    this.chunk(nbd.REPLY_FLAG_DONE, nbd.REPLY_TYPE_ERROR, payload);
  }

  done(): void {
    if (this.structured) this.chunk(nbd.REPLY_FLAG_DONE, nbd.REPLY_TYPE_NONE, new Uint8Array(0));
    else this.simple(0);
  }

  finish(): void {
    this.finished = true;
    this.settle();
  }

  private write(bytes: Uint8Array): void {
    this.unflushed++;
    // The callback also runs, with an error, if the socket is destroyed first.
    this.socket.write(bytes, () => {
      this.unflushed--;
      this.settle();
    });
  }

  private settle(): void {
    if (this.finished && this.unflushed === 0) this.ticket.release();
  }
}

/** Runs a request; a backend failure becomes an NBD error reply, never a dropped connection. */
async function run(reply: Reply, action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    const code = error instanceof BlockError ? (error.code === 'BLOCK_READ_ONLY' ? nbd.EPERM : error.code === 'BLOCK_RANGE' ? nbd.EINVAL : nbd.EIO) : nbd.EIO;
    reply.fail(code, error instanceof Error ? error.message : String(error));
  }
}

function clip(text: string): string {
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;
}

/** The network's doing (the client went away), as opposed to the client's or ours. */
function isConnectionFailure(error: unknown): boolean {
  if (error instanceof ConnectionClosedError) return true;
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  // Socket errors carry an errno name (ECONNRESET, EPIPE) or a stream state (ERR_STREAM_DESTROYED).
  return typeof code === 'string' && (/^E[A-Z]+$/.test(code) || code.startsWith('ERR_STREAM_'));
}

/**
 * Ends a finished connection: the last replies still go out, anything more the
 * client sends is dropped unread, and a client that does not take them is cut
 * off after a grace period.
 */
function hangUp(connection: Connection): void {
  const { socket, reader } = connection;
  reader.discard();
  if (socket.destroyed) return;
  socket.end();
  const timer = setTimeout(() => socket.destroy(), HANG_UP_GRACE_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
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
