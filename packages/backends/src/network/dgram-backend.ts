import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { ETHERNET_HEADER_BYTES, ignoreEvents, MAX_FRAME_BYTES, type Observer } from '@tsvirt/interfaces';
import { FrameLink, type NetworkBackendEvent } from './frame-link.js';

export interface DgramNetworkBackendOptions {
  /** Where this end receives (QEMU's `local.host`/`local.port`); port 0 lets the system choose. */
  readonly local: { readonly host: string; readonly port: number };
  /** Where frames are sent (QEMU's `remote.host`/`remote.port`). */
  readonly remote: { readonly host: string; readonly port: number };
  /** Frames held for a NIC without receive buffers; past this, arriving frames are dropped (default 256). */
  readonly maxHeldFrames?: number;
  readonly observer?: Observer<NetworkBackendEvent>;
}

/** Datagrams handed to the system but not yet sent, before the NIC is told to pause. */
const MAX_SENDS_IN_FLIGHT = 64;

/**
 * QEMU's `-netdev dgram` (and `-netdev socket,udp=`): one Ethernet frame
 * per UDP datagram, no length prefix, to a fixed remote address. UDP is
 * lossy and cannot be paused, so this is the one back end that drops: a
 * NIC without receive buffers gets up to `maxHeldFrames` frames held for
 * it, and later ones are dropped (counted, and reported to the observer) as
 * a full socket buffer would drop them. Sending is paced: with 64 datagrams
 * in flight the NIC pauses until the system has sent them.
 *
 * The link is up from the start (there is no connection to lose).
 *
 * @example
 * ```ts
 * const link = await DgramNetworkBackend.open({ local: { host: '127.0.0.1', port: 10001 }, remote: { host: '127.0.0.1', port: 10002 } });
 * const nic = new VirtioNet({ backend: link });
 * ```
 */
export class DgramNetworkBackend extends FrameLink {
  private readonly observer: Observer<NetworkBackendEvent>;
  private readonly maxHeld: number;
  private inFlight = 0;
  private blocked = false;
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly options: DgramNetworkBackendOptions,
  ) {
    super();
    this.observer = options.observer ?? ignoreEvents;
    this.maxHeld = options.maxHeldFrames ?? 256;
    const bound = socket.address();
    this.localAddress = { host: bound.address, port: bound.port };
    socket.on('message', (message: Buffer) => this.arrived(new Uint8Array(message.buffer, message.byteOffset, message.byteLength)));
    socket.on('error', (error) => this.observer({ kind: 'error', message: error.message }));
    this.setLink(true);
  }

  /** Binds the local address; rejects when it is taken or not the host's. */
  static async open(options: DgramNetworkBackendOptions): Promise<DgramNetworkBackend> {
    const socket = createSocket({ type: isIPv6(options.local.host) || isIPv6(options.remote.host) ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(options.local.port, options.local.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new DgramNetworkBackend(socket, options);
  }

  /** The bound local address (with the port the system chose for port 0). */
  readonly localAddress: { readonly host: string; readonly port: number };

  send(frame: Uint8Array): boolean {
    if (this.closed) return true;
    this.countSent(frame);
    this.inFlight++;
    this.socket.send(frame, this.options.remote.port, this.options.remote.host, (error) => {
      this.inFlight--;
      if (error !== null && error !== undefined) this.observer({ kind: 'error', message: error.message });
      if (this.blocked && this.inFlight <= MAX_SENDS_IN_FLIGHT / 2) {
        this.blocked = false;
        this.frontend?.transmitReady();
      }
    });
    if (this.inFlight < MAX_SENDS_IN_FLIGHT) return true;
    this.blocked = true;
    return false;
  }

  protected pauseInput(): void {
    // A UDP socket cannot be paused: `arrived` bounds what is held instead.
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.setLink(false);
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private arrived(frame: Uint8Array): void {
    if (frame.length < ETHERNET_HEADER_BYTES || frame.length > MAX_FRAME_BYTES) {
      this.drop('malformed', frame.length);
      return;
    }
    if (this.heldFrames >= this.maxHeld) {
      this.drop('receive-queue-full', frame.length);
      return;
    }
    this.deliver(frame);
  }

  private drop(reason: 'malformed' | 'receive-queue-full', bytes: number): void {
    this.statistics.dropped++;
    this.observer({ kind: 'dropped', reason, bytes });
  }
}
