import { GuestAddressError } from './errors.js';

declare const guestAddressBrand: unique symbol;

/**
 * A guest-physical address: a non-negative integer below 2^53, branded so a
 * host offset or a length cannot be passed where an address is meant.
 * Addresses at or above 2^53 cannot be RAM in tsvirt and are rejected.
 *
 * @example
 * ```ts
 * const base = guestAddress(0x10_0000);
 * assert.equal(addressAdd(base, 0x10), 0x10_0010);
 * assert.throws(() => guestAddress(-1), GuestAddressError);
 * assert.throws(() => guestAddress(2 ** 53), GuestAddressError);
 * assert.throws(() => addressAdd(guestAddress(MAX_GUEST_ADDRESS), 1), GuestAddressError);
 * ```
 */
export type GuestAddress = number & { readonly [guestAddressBrand]: true };

/** The largest address tsvirt can represent: 2^53 - 1. */
export const MAX_GUEST_ADDRESS = Number.MAX_SAFE_INTEGER;

/** Checks `value` and brands it. Throws {@link GuestAddressError} for a negative, fractional, non-finite or too-large value. */
export function guestAddress(value: number): GuestAddress {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new GuestAddressError(`not a guest-physical address: ${String(value)} (must be an integer in [0, 2^53))`);
  }
  return value as GuestAddress;
}

/** Brands an address from a 64-bit value given as two 32-bit halves (as registers and descriptors hold them). */
export function guestAddressFromHalves(low: number, high: number): GuestAddress {
  if (high >>> 0 >= 0x20_0000) {
    throw new GuestAddressError(`guest address 0x${(high >>> 0).toString(16)}${(low >>> 0).toString(16).padStart(8, '0')} is beyond 2^53`);
  }
  return ((high >>> 0) * 0x1_0000_0000 + (low >>> 0)) as GuestAddress;
}

/** `address + offset`, checked: the result must still be a guest address. `offset` may be negative. */
export function addressAdd(address: GuestAddress, offset: number): GuestAddress {
  return guestAddress(address + offset);
}

/** Rounds down to a multiple of `alignment`, which must be a power of two. */
export function alignDown(address: GuestAddress, alignment: number): GuestAddress {
  checkAlignment(alignment);
  return (address - (address % alignment)) as GuestAddress;
}

/** Rounds up to a multiple of `alignment` (a power of two), checked against overflow. */
export function alignUp(address: GuestAddress, alignment: number): GuestAddress {
  checkAlignment(alignment);
  const rest = address % alignment;
  return rest === 0 ? address : addressAdd(address, alignment - rest);
}

/** True when `[address, address + length)` lies inside `[start, start + size)`. Zero-length ranges are inside when `address` is. */
export function rangeContains(start: number, size: number, address: number, length: number): boolean {
  return address >= start && length >= 0 && address + length <= start + size && address <= start + size;
}

function checkAlignment(alignment: number): void {
  if (!Number.isSafeInteger(alignment) || alignment <= 0 || !Number.isInteger(Math.log2(alignment))) {
    throw new GuestAddressError(`alignment must be a power of two, got ${alignment}`);
  }
}
