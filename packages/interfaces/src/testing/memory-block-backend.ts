import type { BlockBackend } from '../block.js';
import { BlockError } from '../errors.js';

/** A BlockBackend in a Uint8Array, for device tests and examples. */
export class MemoryBlockBackend implements BlockBackend {
  readonly bytes: Uint8Array;
  flushes = 0;
  private closed = false;

  constructor(
    sizeOrBytes: number | Uint8Array,
    readonly readOnly = false,
  ) {
    this.bytes = typeof sizeOrBytes === 'number' ? new Uint8Array(sizeOrBytes) : sizeOrBytes;
  }

  get size(): number {
    return this.bytes.length;
  }

  async readAt(offset: number, into: Uint8Array): Promise<void> {
    this.check(offset, into.length);
    into.set(this.bytes.subarray(offset, offset + into.length));
  }

  async writeAt(offset: number, from: Uint8Array): Promise<void> {
    this.check(offset, from.length);
    if (this.readOnly) throw new BlockError('BLOCK_READ_ONLY', 'the disk is read-only');
    this.bytes.set(from, offset);
  }

  async flush(): Promise<void> {
    if (this.closed) throw new BlockError('BLOCK_CLOSED', 'the disk is closed');
    this.flushes++;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private check(offset: number, length: number): void {
    if (this.closed) throw new BlockError('BLOCK_CLOSED', 'the disk is closed');
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.size) {
      throw new BlockError('BLOCK_RANGE', `request of ${length} byte(s) at ${offset} is outside the ${this.size}-byte disk`);
    }
  }
}
