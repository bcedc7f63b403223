import { type NetworkBackend, type NetworkFrontend, offerHeldFrames } from '../network.js';

/**
 * A NetworkBackend in memory, for NIC tests: `inject` queues host → guest
 * frames (held, in order, while the NIC refuses them), `sent` collects the
 * guest's frames, and `congested` makes `send` ask the NIC to pause until
 * `drain()`. The link is up unless `setLink(false)` takes it down.
 */
export class MemoryNetworkBackend implements NetworkBackend {
  /** Frames the guest sent, in order (copies). */
  readonly sent: Uint8Array[] = [];
  /** While true, `send` still takes frames but returns false. */
  congested = false;
  closed = false;
  private readonly held: Uint8Array[] = [];
  private frontend: NetworkFrontend | undefined;
  private up = true;

  send(frame: Uint8Array): boolean {
    this.sent.push(frame.slice());
    return !this.congested;
  }

  connect(frontend: NetworkFrontend): void {
    this.frontend = frontend;
    frontend.linkChanged?.(this.up);
    offerHeldFrames(frontend, this.held);
  }

  notifyReceiveReady(): void {
    if (this.frontend !== undefined) offerHeldFrames(this.frontend, this.held);
  }

  /** Queues a frame for the guest and offers what is held. */
  inject(frame: Uint8Array): void {
    this.held.push(frame.slice());
    this.notifyReceiveReady();
  }

  /** Frames waiting for the NIC to take them. */
  get pending(): number {
    return this.held.length;
  }

  /** A cable in or out: the NIC hears it. */
  setLink(up: boolean): void {
    this.up = up;
    this.frontend?.linkChanged?.(up);
  }

  /** Ends the congestion and tells the NIC. */
  drain(): void {
    this.congested = false;
    this.frontend?.transmitReady();
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
