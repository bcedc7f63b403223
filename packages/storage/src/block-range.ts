import { BlockError } from '@tsvirt/interfaces';

/** Rejects a request that is not inside `[0, size]` (the BlockBackend edge cases). */
export function checkRange(offset: number, length: number, size: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new BlockError('BLOCK_RANGE', `request of ${length} byte(s) at ${offset} is outside the ${size}-byte disk`);
  }
}

/** A zero-filled scratch buffer size for zeroing and copying loops. */
export const CHUNK = 1 << 20;
