import type { NetworkFrontend } from '@tsvirt/interfaces';

/**
 * A NIC stand-in for network back-end tests: it takes up to `room` frames
 * (Infinity by default) and records them; at zero it refuses, as a NIC
 * without receive buffers does. `transmitReadyCalls` counts the back end's
 * word that it drained.
 */
export class RecordingNetworkFrontend implements NetworkFrontend {
  readonly frames: Uint8Array[] = [];
  transmitReadyCalls = 0;

  constructor(public room = Number.POSITIVE_INFINITY) {}

  receive(frame: Uint8Array): boolean {
    if (this.room <= 0) return false;
    this.room--;
    this.frames.push(frame.slice());
    return true;
  }

  transmitReady(): void {
    this.transmitReadyCalls++;
  }

  /** Resolves once `count` frames have arrived (polling; rejects after `timeoutMs`). */
  async waitForFrames(count: number, timeoutMs = 5000): Promise<void> {
    const started = Date.now();
    while (this.frames.length < count) {
      if (Date.now() - started > timeoutMs) throw new Error(`${this.frames.length} of ${count} frames arrived within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}
