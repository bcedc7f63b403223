import net from 'node:net';
import { MigrationOptionsError, MigrationPeerError, MigrationTimeoutError } from '../errors.js';
import type { MigrationChannel } from './channel.js';

/** Where to listen or connect: TCP (`host`, `port`) or a Unix socket (`path`). */
export type SocketAddress = { readonly host: string; readonly port: number } | { readonly path: string };

/** Incoming bytes buffered before the socket is paused (backpressure toward the sender). */
const READ_HIGH_WATER = 8 * 1024 * 1024;

class SocketChannel implements MigrationChannel {
  readonly duplex = true;
  private readonly chunks: Uint8Array[] = [];
  private queued = 0;
  private ended = false;
  private failure: Error | undefined;
  private waiter: (() => void) | undefined;

  constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (data: Buffer) => {
      this.chunks.push(data);
      this.queued += data.length;
      if (this.queued > READ_HIGH_WATER) socket.pause();
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (error) => {
      this.failure ??= new MigrationPeerError(`migration socket failed: ${error.message}`, { cause: error });
      this.wake();
    });
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (this.socket.destroyed) throw new MigrationPeerError('migration socket is closed');
    if (this.socket.write(bytes)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        this.socket.off('error', done);
        if (this.failure !== undefined) reject(this.failure);
        else if (this.socket.destroyed) reject(new MigrationPeerError('migration socket closed while writing'));
        else resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
      this.socket.on('error', done);
    });
  }

  async read(): Promise<Uint8Array | null> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk !== undefined) {
        this.queued -= chunk.length;
        if (this.queued <= READ_HIGH_WATER && this.socket.isPaused()) this.socket.resume();
        return chunk;
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.ended) return null;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  async end(): Promise<void> {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    await new Promise<void>((resolve) => this.socket.end(resolve));
  }

  destroy(reason?: Error): void {
    if (reason !== undefined) this.failure ??= reason;
    this.socket.destroy();
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}

/** Wraps a connected socket (TCP or Unix) as a migration channel. */
export function socketChannel(socket: net.Socket): MigrationChannel {
  return new SocketChannel(socket);
}

export interface ConnectOptions {
  /**
   * Gives up with a `MigrationTimeoutError` (phase `setup`) when the
   * connection is not established within this many milliseconds (default
   * 30 000, where the system would retry for about two minutes); `false`
   * leaves it to the system.
   */
  readonly timeoutMs?: number | false;
}

/** The default of {@link ConnectOptions.timeoutMs}, the same as the setup deadline's. */
const CONNECT_TIMEOUT_MS = 30_000;

/** Connects to a destination listening with {@link listenForMigration}. */
export function connectMigration(address: SocketAddress, options: ConnectOptions = {}): Promise<MigrationChannel> {
  const timeoutMs = options.timeoutMs ?? CONNECT_TIMEOUT_MS;
  if (timeoutMs !== false && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    return Promise.reject(new MigrationOptionsError(`timeoutMs must be a positive number of milliseconds or false, got ${String(timeoutMs)}`));
  }
  return new Promise((resolve, reject) => {
    const socket = 'path' in address ? net.connect({ path: address.path }) : net.connect({ host: address.host, port: address.port });
    const timer =
      timeoutMs === false
        ? undefined
        : setTimeout(() => {
            socket.off('error', onError);
            // A late error from the abandoned attempt has nobody to tell.
            socket.on('error', () => {});
            socket.destroy();
            reject(new MigrationTimeoutError('setup', 'setup', `cannot connect to the migration destination within ${timeoutMs} ms`));
          }, timeoutMs);
    const onError = (error: Error): void => {
      clearTimeout(timer);
      reject(new MigrationPeerError(`cannot connect to the migration destination: ${error.message}`, { cause: error }));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socketChannel(socket));
    });
  });
}

export interface MigrationListener {
  /** The bound address (with the port the system chose when `port` was 0). */
  readonly address: SocketAddress;
  /** The next incoming connection. */
  accept(): Promise<MigrationChannel>;
  close(): Promise<void>;
}

/** Listens for incoming migrations (QEMU `-incoming tcp:...` / `unix:...`). */
export function listenForMigration(address: SocketAddress): Promise<MigrationListener> {
  return new Promise((resolve, reject) => {
    const waiting: Array<(channel: MigrationChannel) => void> = [];
    const arrived: MigrationChannel[] = [];
    const server = net.createServer((socket) => {
      const channel = socketChannel(socket);
      const taker = waiting.shift();
      if (taker !== undefined) taker(channel);
      else arrived.push(channel);
    });
    server.once('error', reject);
    const onListening = (): void => {
      server.off('error', reject);
      const bound = server.address();
      const actual: SocketAddress = typeof bound === 'object' && bound !== null ? { host: bound.address, port: bound.port } : { path: (address as { path: string }).path };
      resolve({
        address: actual,
        accept: () => {
          const ready = arrived.shift();
          return ready !== undefined ? Promise.resolve(ready) : new Promise((take) => waiting.push(take));
        },
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    };
    if ('path' in address) server.listen(address.path, onListening);
    else server.listen(address.port, address.host, onListening);
  });
}
