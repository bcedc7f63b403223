import { type NetworkBackend, type NetworkFrontend, offerHeldFrames } from '@tsvirt/interfaces';

/** What a network back end reports: its peer coming and going, and what it had to drop. */
export type NetworkBackendEvent =
  | { readonly kind: 'connected'; readonly peer: string }
  | { readonly kind: 'disconnected'; readonly reason: string }
  | { readonly kind: 'error'; readonly message: string }
  | { readonly kind: 'dropped'; readonly reason: 'no-peer' | 'malformed' | 'receive-queue-full'; readonly bytes: number };

/** Counters every network back end keeps. */
export interface NetworkBackendStatistics {
  /** Frames and bytes passed to the peer. */
  sentFrames: number;
  sentBytes: number;
  /** Frames and bytes handed to the NIC. */
  receivedFrames: number;
  receivedBytes: number;
  /** Frames dropped, and why (see `NetworkBackendEvent`). */
  dropped: number;
}

/**
 * What every network back end shares: frames for the NIC are handed over in
 * order while it takes them; the first it refuses is held with every later
 * one, and the back end's input is paused (`pauseInput(true)`) until the NIC
 * has room again (`notifyReceiveReady`). Link state goes to the NIC.
 */
export abstract class FrameLink implements NetworkBackend {
  readonly statistics: NetworkBackendStatistics = { sentFrames: 0, sentBytes: 0, receivedFrames: 0, receivedBytes: 0, dropped: 0 };
  protected frontend: NetworkFrontend | undefined;
  private readonly held: Uint8Array[] = [];
  private up = false;
  private inputPaused = false;

  abstract send(frame: Uint8Array): boolean;
  abstract close(): Promise<void>;

  /** Stops (true) or resumes (false) reading the transport. */
  protected abstract pauseInput(paused: boolean): void;

  connect(frontend: NetworkFrontend): void {
    this.frontend = frontend;
    frontend.linkChanged?.(this.up);
    this.notifyReceiveReady();
  }

  notifyReceiveReady(): void {
    const frontend = this.frontend;
    if (frontend === undefined) return;
    for (const frame of offerHeldFrames(frontend, this.held)) this.count(frame);
    if (this.held.length > 0) return;
    if (this.inputPaused) {
      this.inputPaused = false;
      this.pauseInput(false);
    }
  }

  /** Whether the link is up (a peer is there). */
  get linkUp(): boolean {
    return this.up;
  }

  /** Frames held for the NIC. */
  get heldFrames(): number {
    return this.held.length;
  }

  /** A frame from the transport for the NIC: handed over, or held (and the input paused). */
  protected deliver(frame: Uint8Array): void {
    if (this.held.length === 0 && this.frontend !== undefined && this.frontend.receive(frame)) {
      this.count(frame);
      return;
    }
    this.held.push(frame.slice());
    if (!this.inputPaused) {
      this.inputPaused = true;
      this.pauseInput(true);
    }
  }

  protected setLink(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    this.frontend?.linkChanged?.(up);
  }

  protected countSent(frame: Uint8Array): void {
    this.statistics.sentFrames++;
    this.statistics.sentBytes += frame.length;
  }

  private count(frame: Uint8Array): void {
    this.statistics.receivedFrames++;
    this.statistics.receivedBytes += frame.length;
  }
}
