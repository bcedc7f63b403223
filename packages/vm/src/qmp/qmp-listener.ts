import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import type { QmpMonitor } from './qmp-monitor.js';

/** Where a QMP monitor listens (QEMU's `-qmp unix:PATH,server=on,wait=off` or `tcp:HOST:PORT,...`). */
export type QmpEndpoint = { readonly kind: 'unix'; readonly path: string } | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

/** Output a client has not read yet beyond which the monitor stops reading its requests. */
const PAUSE_READING_BYTES = 1 << 20;
/** Unread output beyond which a client that never reads (events pile up) is dropped. */
const DROP_CLIENT_BYTES = 16 << 20;

/**
 * A QMP monitor on a Unix or TCP socket, serving any number of clients at
 * once, each with its own session. A client that sends faster than it reads
 * the answers is read no further until it catches up, so neither its input
 * nor its output grows without bound.
 */
export class QmpListener {
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly endpoint: QmpEndpoint,
  ) {}

  /** Listens on `endpoint`; a stale Unix socket at the path is replaced, as QEMU does. */
  static async listen(monitor: QmpMonitor, endpoint: QmpEndpoint): Promise<QmpListener> {
    const server = createServer({ allowHalfOpen: false });
    const listener = new QmpListener(server, endpoint);
    server.on('connection', (socket) => listener.serve(monitor, socket));
    if (endpoint.kind === 'unix') removeStaleSocket(endpoint.path);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${describeEndpoint(endpoint)}: ${listenFailure(endpoint, error)}`)));
      const listening = () => {
        server.removeAllListeners('error');
        // A failed accept (too many open files) must not end the VM process; the listener goes on.
        server.on('error', () => {});
        resolve();
      };
      if (endpoint.kind === 'unix') server.listen(endpoint.path, listening);
      else server.listen(endpoint.port, endpoint.host, listening);
    });
    return listener;
  }

  /** The TCP port listened on (useful with port 0). */
  get port(): number | undefined {
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : undefined;
  }

  private serve(monitor: QmpMonitor, socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay?.(true);
    const session = monitor.connect({
      send: (text) => {
        if (socket.destroyed) return;
        socket.write(text);
        if (socket.writableLength > DROP_CLIENT_BYTES) socket.destroy();
        else if (socket.writableLength > PAUSE_READING_BYTES) socket.pause();
      },
      close: () => socket.end(),
    });
    socket.on('drain', () => socket.resume());
    socket.on('data', (data: Buffer) => session.receive(data));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.sockets.delete(socket);
      session.close();
    });
  }

  /** Stops listening and ends every connection after what was written to it; a Unix socket's file is removed. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const ended = [...this.sockets].map(
      (socket) =>
        new Promise<void>((resolve) => {
          socket.once('close', () => resolve());
          socket.end();
          // A client that does not close its side within a second is cut off.
          setTimeout(() => socket.destroy(), 1000).unref();
        }),
    );
    await Promise.all([closed, ...ended]);
    if (this.endpoint.kind === 'unix') removeStaleSocket(this.endpoint.path);
  }
}

function describeEndpoint(endpoint: QmpEndpoint): string {
  return endpoint.kind === 'unix' ? `unix:${endpoint.path}` : `tcp:${endpoint.host}:${endpoint.port}`;
}

/** Node says EACCES for a socket in a directory that does not exist; say what is wrong. */
function listenFailure(endpoint: QmpEndpoint, error: NodeJS.ErrnoException): string {
  if (endpoint.kind === 'unix' && !existsSync(dirname(endpoint.path))) return `the directory ${dirname(endpoint.path)} does not exist`;
  if (error.code === 'EADDRINUSE') return 'the address is in use';
  if (error.code === 'EACCES') return 'permission denied';
  return error.message;
}

function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Nothing there (or not ours to remove): listen reports what matters.
  }
}
