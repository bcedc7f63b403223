import type { CharacterFrontend } from '../character.js';

/**
 * A device end of a character stream that takes at most `capacity` bytes
 * until the test raises it, and records what it got. It throws if a backend
 * ever hands it more than it offered, so a test proves backpressure.
 */
export class RecordingCharacterFrontend implements CharacterFrontend {
  readonly received: number[] = [];

  constructor(public capacity = 16) {}

  receiveCapacity(): number {
    return this.capacity;
  }

  receive(data: Uint8Array): void {
    if (data.length > this.capacity) throw new Error(`backend sent ${data.length} bytes, only ${this.capacity} offered`);
    this.capacity -= data.length;
    this.received.push(...data);
  }

  /** What arrived, as text. */
  text(): string {
    return new TextDecoder().decode(Uint8Array.from(this.received));
  }
}
