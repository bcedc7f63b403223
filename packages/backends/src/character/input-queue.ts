import type { CharacterFrontend } from '@tsvirt/interfaces';

/**
 * Host input waiting for the device: chunks are handed over only as far as
 * `receiveCapacity()` allows, the rest waits for `notifyReceiveReady`.
 * Shared by every backend that has input.
 */
export class InputQueue {
  private readonly chunks: Uint8Array[] = [];
  private queued = 0;
  private frontend: CharacterFrontend | undefined;

  constructor(
    /** Called when the queue drains below `lowWater` (resume a paused stream) or fills past `highWater` (pause it). */
    private readonly onPressure: (full: boolean) => void = () => {},
    private readonly highWater = 64 * 1024,
  ) {}

  /** Bytes waiting. */
  get length(): number {
    return this.queued;
  }

  connect(frontend: CharacterFrontend): void {
    this.frontend = frontend;
    this.pump();
  }

  push(data: Uint8Array): void {
    if (data.length === 0) return;
    this.chunks.push(data.slice());
    this.queued += data.length;
    this.pump();
    if (this.queued >= this.highWater) this.onPressure(true);
  }

  /** Hands over as much as the device takes now. */
  pump(): void {
    const frontend = this.frontend;
    if (frontend === undefined) return;
    const wasFull = this.queued >= this.highWater;
    for (;;) {
      const head = this.chunks[0];
      if (head === undefined) break;
      const capacity = frontend.receiveCapacity();
      if (capacity <= 0) break;
      const part = head.length <= capacity ? head : head.subarray(0, capacity);
      if (part.length === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(capacity);
      this.queued -= part.length;
      frontend.receive(part);
    }
    if (wasFull && this.queued < this.highWater) this.onPressure(false);
  }

  clear(): void {
    this.chunks.length = 0;
    this.queued = 0;
  }
}
