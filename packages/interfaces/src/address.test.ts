import { describe, expect, it } from 'vitest';
import { MAX_GUEST_ADDRESS, addressAdd, alignDown, alignUp, guestAddress, guestAddressFromHalves, rangeContains } from './address.js';
import { GuestAddressError } from './errors.js';

describe('GuestAddress', () => {
  it('accepts integers in [0, 2^53) and rejects everything else', () => {
    expect(guestAddress(0)).toBe(0);
    expect(guestAddress(MAX_GUEST_ADDRESS)).toBe(2 ** 53 - 1);
    for (const bad of [-1, 0.5, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => guestAddress(bad)).toThrow(GuestAddressError);
    }
  });

  it('builds addresses from 32-bit halves and refuses ones beyond 2^53', () => {
    expect(guestAddressFromHalves(0xfee0_0000, 0)).toBe(0xfee0_0000);
    expect(guestAddressFromHalves(0x1000, 1)).toBe(0x1_0000_1000);
    expect(guestAddressFromHalves(0xffff_ffff, 0x1f_ffff)).toBe(2 ** 53 - 1);
    expect(() => guestAddressFromHalves(0, 0x20_0000)).toThrow(GuestAddressError);
    expect(() => guestAddressFromHalves(0, 0xffff_ffff)).toThrow(GuestAddressError);
  });

  it('does checked arithmetic and alignment', () => {
    expect(addressAdd(guestAddress(0x1000), -0x1000)).toBe(0);
    expect(() => addressAdd(guestAddress(0), -1)).toThrow(GuestAddressError);
    expect(alignDown(guestAddress(0x1fff), 0x1000)).toBe(0x1000);
    expect(alignUp(guestAddress(0x1001), 0x1000)).toBe(0x2000);
    expect(alignUp(guestAddress(0x2000), 0x1000)).toBe(0x2000);
    expect(alignUp(guestAddress(0x1_0000_0001), 2 ** 32)).toBe(2 ** 33);
    expect(() => alignUp(guestAddress(1), 3)).toThrow(GuestAddressError);
    expect(() => alignDown(guestAddress(1), 0)).toThrow(GuestAddressError);
    expect(() => alignUp(guestAddress(MAX_GUEST_ADDRESS), 4096)).toThrow(GuestAddressError);
  });

  it('tells whether a range lies inside another, zero-length ones included', () => {
    expect(rangeContains(0x1000, 0x1000, 0x1000, 0x1000)).toBe(true);
    expect(rangeContains(0x1000, 0x1000, 0x1fff, 2)).toBe(false);
    expect(rangeContains(0x1000, 0x1000, 0x2000, 0)).toBe(true);
    expect(rangeContains(0x1000, 0x1000, 0x2001, 0)).toBe(false);
    expect(rangeContains(0x1000, 0x1000, 0xfff, 1)).toBe(false);
  });
});
