import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { crc32cUpdate } from './crc32c.js';

/** The SDM's definition of CRC32: bit-reflect, polynomial division modulo 2 by 0x11EDC6F41, reflect back (BigInt, tests only). */
function reference(crc: number, data: number, bytes: number): number {
  const reflect = (value: bigint, bits: number): bigint => {
    let out = 0n;
    for (let i = 0; i < bits; i++) if ((value >> BigInt(i)) & 1n) out |= 1n << BigInt(bits - 1 - i);
    return out;
  };
  const size = bytes * 8;
  let dividend = (reflect(BigInt(data >>> 0) & ((1n << BigInt(size)) - 1n), size) << 32n) ^ (reflect(BigInt(crc >>> 0), 32) << BigInt(size));
  const polynomial = 0x11edc6f41n;
  for (let bit = size + 31; bit >= 32; bit--) if ((dividend >> BigInt(bit)) & 1n) dividend ^= polynomial << BigInt(bit - 32);
  return Number(reflect(dividend, 32));
}

describe('CRC32 (Castagnoli)', () => {
  test.prop([fc.nat(0xffffffff), fc.nat(0xffffffff), fc.constantFrom(1, 2, 4)], { numRuns: 1000 })('matches the SDM polynomial definition', (crc, data, bytes) => {
    expect(crc32cUpdate(crc, data, bytes)).toBe(reference(crc, data, bytes));
  });

  test('the standard check value of "123456789" is 0xE3069283 (with the usual inversions around the instruction)', () => {
    let crc = 0xffffffff;
    for (const byte of new TextEncoder().encode('123456789')) crc = crc32cUpdate(crc, byte, 1);
    expect((~crc >>> 0).toString(16)).toBe('e3069283');
  });
});
