import type { AccessSize } from '@tsvirt/interfaces';

/** Masks a value to `size` bytes, unsigned. */
export function maskToSize(value: number, size: AccessSize): number {
  return size === 4 ? value >>> 0 : value & (size === 1 ? 0xff : 0xffff);
}
