import { lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { ignoreEvents, type Observer } from '@tsvirt/interfaces';
import { FrameLink, type NetworkBackendEvent } from './frame-link.js';
import { describeAddress, type SocketAddress } from './socket-address.js';
import { encodeStreamFrame, FramingError, StreamFrameDecoder } from './stream-framing.js';

export interface StreamNetworkBackendOptions {
  /** Listen for one peer (QEMU's `server=on`), or connect to one (`server=off`). */
  readonly server: boolean;
  readonly address: SocketAddress;
  /** A client that lost (or never got) its peer tries again after this many seconds (QEMU's `reconnect=`); 0: never. */
  readonly reconnectSeconds?: number;
  readonly observer?: Observer<NetworkBackendEvent>;
}

/** Guest output a slow peer may leave in the socket's buffer before the NIC is told to pause. */
const OUTPUT_HIGH_WATER = 256 * 1024;

/**
 * QEMU's `-netdev stream` (and the TCP forms of `-netdev socket`): Ethernet
 * frames over a stream socket, TCP or UNIX, each after a 4-byte big-endian
 * length. It talks to QEMU, to another tsvirt and to passt. One peer at a
 * time: a server turns further connections away while one is attached. The
 * link is up while a peer is connected; frames the guest sends with no peer
 * are dropped, as a NIC with its cable out drops them (and counted).
 *
 * Backpressure: a NIC without receive buffers pauses the socket, so TCP
 * pushes back on the peer; a peer that does not read makes `send` return
 * false until the socket drains.
 *
 * @example
 * ```ts
 * const link = await StreamNetworkBackend.open({ server: true, address: { type: 'inet', host: '127.0.0.1', port: 0 } });
 * console.log(link.localAddress); // { type: 'inet', host: '127.0.0.1', port: 40123 }: where the peer connects
 * pciBus.plug(new VirtioPci(new VirtioNet({ backend: link })), 5);
 * ```
 */
export class StreamNetworkBackend extends FrameLink {
  private socket: Socket | undefined;
  private server: Server | undefined;
  private decoder = new StreamFrameDecoder();
  private readonly observer: Observer<NetworkBackendEvent>;
  private outputBlocked = false;
  private closed = false;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private bound: SocketAddress;

  private constructor(private readonly options: StreamNetworkBackendOptions) {
    super();
    this.observer = options.observer ?? ignoreEvents;
    this.bound = options.address;
  }

  /**
   * A server listens before this resolves (a UNIX path left by an earlier
   * run is replaced, as QEMU does); a client connects first, and rejects
   * when nobody answers unless `reconnectSeconds` lets it keep trying.
   */
  static async open(options: StreamNetworkBackendOptions): Promise<StreamNetworkBackend> {
    const backend = new StreamNetworkBackend(options);
    if (options.server) await backend.listen();
    else if ((options.reconnectSeconds ?? 0) > 0) backend.dial();
    else await backend.connectOnce();
    return backend;
  }

  /** The address listened on (with the port the system chose for port 0), or connected to. */
  get localAddress(): SocketAddress {
    return this.bound;
  }

  send(frame: Uint8Array): boolean {
    const socket = this.socket;
    if (socket === undefined || socket.destroyed || !socket.writable) {
      this.statistics.dropped++;
      this.observer({ kind: 'dropped', reason: 'no-peer', bytes: frame.length });
      return true;
    }
    this.countSent(frame);
    socket.write(encodeStreamFrame(frame));
    if (socket.writableLength < OUTPUT_HIGH_WATER) return true;
    this.outputBlocked = true;
    return false;
  }

  protected pauseInput(paused: boolean): void {
    if (paused) this.socket?.pause();
    else this.socket?.resume();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.socket?.destroy();
    this.socket = undefined;
    const server = this.server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    this.setLink(false);
  }

  private listen(): Promise<void> {
    const address = this.options.address;
    if (address.type === 'unix') removeStaleSocket(address.path);
    const server = createServer((socket) => {
      if (this.socket !== undefined || this.closed) {
        socket.destroy();
        return;
      }
      this.attach(socket);
    });
    this.server = server;
    server.on('error', (error) => this.observer({ kind: 'error', message: error.message }));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      const ready = () => {
        server.off('error', reject);
        const bound = server.address();
        if (bound !== null && typeof bound === 'object') this.bound = { type: 'inet', host: bound.address, port: bound.port };
        resolve();
      };
      if (address.type === 'unix') server.listen(address.path, ready);
      else server.listen(address.port, address.host, ready);
    });
  }

  private connectOnce(): Promise<void> {
    return new Promise((resolve, reject) => {
      const address = this.options.address;
      const socket = address.type === 'unix' ? connect({ path: address.path }) : connect({ host: address.host, port: address.port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        this.attach(socket);
        resolve();
      });
    });
  }

  /** A client with `reconnect`: connects in the background, again and again. */
  private dial(): void {
    if (this.closed) return;
    this.connectOnce().catch((error: unknown) => {
      this.observer({ kind: 'error', message: `${describeAddress(this.options.address)}: ${error instanceof Error ? error.message : String(error)}` });
      this.scheduleRetry();
    });
  }

  private scheduleRetry(): void {
    const seconds = this.options.reconnectSeconds ?? 0;
    if (this.closed || this.options.server || seconds <= 0) return;
    this.retry = setTimeout(() => this.dial(), seconds * 1000);
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    this.decoder = new StreamFrameDecoder();
    if (socket.remoteAddress !== undefined) socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      let frames: Uint8Array[];
      const runts = this.decoder.runts;
      try {
        frames = this.decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      } catch (error) {
        if (!(error instanceof FramingError)) throw error;
        for (const frame of error.framesBefore) this.deliver(frame);
        this.observer({ kind: 'error', message: error.message });
        socket.destroy();
        return;
      }
      for (let runt = runts; runt < this.decoder.runts; runt++) {
        this.statistics.dropped++;
        this.observer({ kind: 'dropped', reason: 'malformed', bytes: 0 });
      }
      for (const frame of frames) this.deliver(frame);
    });
    socket.on('drain', () => {
      if (!this.outputBlocked) return;
      this.outputBlocked = false;
      this.frontend?.transmitReady();
    });
    socket.on('error', (error) => this.observer({ kind: 'error', message: error.message }));
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.setLink(false);
      this.observer({ kind: 'disconnected', reason: 'the peer closed the connection' });
      // Whatever the NIC was waiting for will not drain now.
      if (this.outputBlocked) {
        this.outputBlocked = false;
        this.frontend?.transmitReady();
      }
      this.scheduleRetry();
    });
    this.observer({ kind: 'connected', peer: socket.remoteAddress === undefined ? describeAddress(this.options.address) : `${socket.remoteAddress}:${socket.remotePort ?? '?'}` });
    this.setLink(true);
  }
}

/** A UNIX socket file from an earlier run is in the way of bind; anything that is not a socket is left alone (bind then fails with EADDRINUSE). */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Not there: nothing to remove.
  }
}
