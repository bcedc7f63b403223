import { describe, expect, it } from 'vitest';
import { test, fc } from '@fast-check/vitest';
import { crc32c } from './crc32c.js';

/** Bit-at-a-time reference, straight from the definition. */
function referenceCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe('crc32c', () => {
  it('matches the published check value for "123456789"', () => {
    // RFC 3720 / the CRC catalogue: CRC-32C check = 0xE3069283.
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('matches the iSCSI test vector of 32 zero bytes', () => {
    // RFC 3720 B.4: 32 bytes of zeros -> 0x8A9136AA.
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
  });

  it('is 0 for no bytes', () => {
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  test.prop([fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 300 }), fc.nat({ max: 7 })], { numRuns: 300 })('agrees with the bit-wise definition at any alignment, and chains', (bytes, cut, shift) => {
    const split = Math.min(cut, bytes.length);
    expect(crc32c(bytes)).toBe(referenceCrc32c(bytes));
    // The same bytes starting `shift` bytes into a buffer: the word-wise path must not depend on alignment.
    const shifted = new Uint8Array(bytes.length + shift);
    shifted.set(bytes, shift);
    expect(crc32c(shifted.subarray(shift))).toBe(referenceCrc32c(bytes));
    expect(crc32c(bytes.subarray(split), crc32c(bytes.subarray(0, split)))).toBe(crc32c(bytes));
  });
});
