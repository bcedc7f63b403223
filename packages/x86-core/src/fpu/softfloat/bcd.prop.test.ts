import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { bcdToExtended, extendedToBcd } from './bcd.js';
import { createHostOracle, extendedBytes, OracleOperation, readExtended, requireOracleOutsideCi } from './host-oracle.js';
import { anyExtended, type ExtendedPattern, normalExtended, x87Control } from './testing-arbitraries.js';
import { SoftFloatResult } from './types.js';

/* FBLD and FBSTP against the host FPU (valid BCD digits only: others are undefined). */

const oracle = createHostOracle();
requireOracleOutsideCi(oracle);
const skip = 'unavailable' in oracle;
const run = { numRuns: 3, endOnFailure: true };
const hex = (value: ExtendedPattern): string => `${value.signExponent.toString(16).padStart(4, '0')}:${(value.high >>> 0).toString(16).padStart(8, '0')}${(value.low >>> 0).toString(16).padStart(8, '0')}`;

const digits = (count: number): fc.Arbitrary<number> => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: count, maxLength: count }).map((list) => list.reduce((word, digit, index) => word + digit * 2 ** (index * 4), 0));
/** Valid BCD with a random number of significant digits (0-18), so small integers and zero are common. */
const bcd = fc.tuple(fc.constantFrom(0, 0x8000), digits(8), digits(8), digits(2), fc.integer({ min: 0, max: 18 })).map(([sign, low, high, top, kept]): ExtendedPattern => ({
  signExponent: sign | (kept >= 17 ? top & (kept === 17 ? 0xf : 0xff) : 0),
  high: kept >= 16 ? high : kept > 8 ? high % 2 ** ((kept - 8) * 4) : 0,
  low: kept >= 8 ? low : low % 2 ** (kept * 4),
}));
/** Values from fractions up to just beyond 18 digits (2^60 > 10^18). */
const storable = fc.oneof(anyExtended, fc.tuple(normalExtended, fc.integer({ min: -3, max: 62 })).map(([value, exponent]) => ({ ...value, signExponent: (value.signExponent & 0x8000) | (0x3fff + exponent) })));

describe.skipIf(skip)('x87 FBLD/FBSTP against the host FPU', () => {
  test.prop([fc.array(bcd, { minLength: 2000, maxLength: 2000 })], run)('FBLD', (cases) => {
    if ('unavailable' in oracle) return;
    const host = oracle.run(cases.map((value) => ({ operation: OracleOperation.fbld, control: 0x37f, a: extendedBytes(value.signExponent, value.high, value.low), b: new Uint8Array(16) })));
    const result = new SoftFloatResult();
    cases.forEach((value, index) => {
      const flags = bcdToExtended(value, result);
      expect(hex(result), `FBLD ${hex(value)}`).toBe(hex(readExtended(host[index]!.bytes)));
      expect((flags & 0x23f).toString(16)).toBe((host[index]!.status & 0x23f).toString(16));
    });
  });
  test.prop([fc.array(fc.tuple(storable, x87Control), { minLength: 3000, maxLength: 3000 })], run)('FBSTP', (cases) => {
    if ('unavailable' in oracle) return;
    const host = oracle.run(cases.map(([value, control]) => ({ operation: OracleOperation.fbstp, control, a: extendedBytes(value.signExponent, value.high, value.low), b: new Uint8Array(16) })));
    const result = new SoftFloatResult();
    cases.forEach(([value, control], index) => {
      const flags = extendedToBcd(value, control, result);
      const label = `FBSTP ${hex(value)} control ${control.toString(16)}`;
      // With IE (or DE) unmasked nothing is stored (the host's slot stays 0).
      if ((host[index]!.status & ~control & 0x07) === 0) expect(hex(result), label).toBe(hex(readExtended(host[index]!.bytes)));
      expect((flags & 0x23f).toString(16), label).toBe((host[index]!.status & 0x23f).toString(16));
    });
  });
});
