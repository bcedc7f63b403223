import { connect, createServer, type Server, type Socket } from 'node:net';
import { ignoreEvents, type CharacterBackend, type CharacterFrontend, type Observer } from '@tsvirt/interfaces';
import { InputQueue } from './input-queue.js';

export type TcpBackendEvent = { kind: 'connected'; remote: string } | { kind: 'disconnected' } | { kind: 'error'; message: string };

/** Guest output held while no peer is connected, at most (older bytes are dropped first). */
const MAX_PENDING_OUTPUT = 64 * 1024;

/** Socket plumbing shared by the server and client backends. */
abstract class SocketBackend implements CharacterBackend {
  protected socket: Socket | undefined;
  protected readonly input: InputQueue;
  private pendingOutput: Uint8Array[] = [];
  private pendingBytes = 0;

  constructor(protected readonly observer: Observer<TcpBackendEvent>) {
    // A full device queue pauses the socket: TCP flow control pushes back on the peer.
    this.input = new InputQueue((full) => {
      if (full) this.socket?.pause();
      else this.socket?.resume();
    });
  }

  write(data: Uint8Array): void {
    const socket = this.socket;
    if (socket !== undefined && !socket.destroyed) {
      socket.write(Buffer.from(data));
      return;
    }
    this.pendingOutput.push(data.slice());
    this.pendingBytes += data.length;
    while (this.pendingBytes > MAX_PENDING_OUTPUT) this.pendingBytes -= this.pendingOutput.shift()!.length;
  }

  connect(frontend: CharacterFrontend): void {
    this.input.connect(frontend);
  }

  notifyReceiveReady(): void {
    this.input.pump();
  }

  /** Whether a peer is connected now. */
  get connected(): boolean {
    return this.socket !== undefined && !this.socket.destroyed;
  }

  protected attach(socket: Socket): void {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (data: Buffer) => this.input.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
    socket.on('error', (error) => this.observer({ kind: 'error', message: error.message }));
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined;
      this.observer({ kind: 'disconnected' });
    });
    this.observer({ kind: 'connected', remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}` });
    for (const chunk of this.pendingOutput) socket.write(Buffer.from(chunk));
    this.pendingOutput = [];
    this.pendingBytes = 0;
  }
}

export interface TcpServerBackendOptions {
  /** Default 127.0.0.1: a serial console is not something to expose by accident. */
  host?: string;
  /** 0 picks a free port (see `listen`'s result). */
  port: number;
  observer?: Observer<TcpBackendEvent>;
}

/**
 * A TCP server the guest's serial port is reachable at (like QEMU's
 * `-serial tcp::PORT,server,nowait`): one peer at a time, further connections
 * are refused while one is attached; output while nobody is connected is kept
 * up to 64 KiB and sent to the next peer.
 *
 * @example
 * ```ts
 * const serial = new TcpServerBackend({ port: 4555 });
 * await serial.listen();
 * const com1 = new Uart({ clock, irq, backend: serial });
 * // elsewhere: nc 127.0.0.1 4555
 * ```
 */
export class TcpServerBackend extends SocketBackend {
  private readonly server: Server;
  private readonly options: TcpServerBackendOptions;

  constructor(options: TcpServerBackendOptions) {
    super(options.observer ?? ignoreEvents);
    this.options = options;
    this.server = createServer((socket) => {
      if (this.connected) {
        socket.destroy();
        return;
      }
      this.attach(socket);
    });
    this.server.on('error', (error) => this.observer({ kind: 'error', message: error.message }));
  }

  /** Starts listening; resolves with the bound port. */
  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.server.once('error', onError);
      this.server.listen(this.options.port, this.options.host ?? '127.0.0.1', () => {
        this.server.off('error', onError);
        const address = this.server.address();
        if (address === null || typeof address === 'string') reject(new Error('TCP server has no address'));
        else resolve({ host: address.address, port: address.port });
      });
    });
  }

  close(): Promise<void> {
    this.socket?.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export interface TcpClientBackendOptions {
  host?: string;
  port: number;
  observer?: Observer<TcpBackendEvent>;
}

/**
 * Connects the serial port to a TCP server (like QEMU's `-serial tcp:HOST:PORT`).
 * Output written before the connection is up is held (up to 64 KiB).
 *
 * @example
 * ```ts
 * const link = new TcpClientBackend({ host: '127.0.0.1', port: 4555 });
 * await link.open();
 * const com2 = new Uart({ clock, irq, backend: link });
 * ```
 */
export class TcpClientBackend extends SocketBackend {
  private readonly options: TcpClientBackendOptions;

  constructor(options: TcpClientBackendOptions) {
    super(options.observer ?? ignoreEvents);
    this.options = options;
  }

  /** Connects; rejects if the server cannot be reached. */
  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: this.options.host ?? '127.0.0.1', port: this.options.port });
      const onError = (error: Error) => reject(error);
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        this.attach(socket);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    const socket = this.socket;
    if (socket === undefined || socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      socket.once('close', () => resolve());
      socket.end();
    });
  }
}
