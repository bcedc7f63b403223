import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { extendedExtract, extendedRemainder, extendedRoundToInteger, extendedScale } from './extended-misc.js';
import { createHostOracle, extendedBytes, OracleOperation, readExtended, requireOracleOutsideCi } from './host-oracle.js';
import { anyExtended, type ExtendedPattern, normalExtended, x87Control } from './testing-arbitraries.js';
import { SoftFloatResult } from './types.js';

/* FRNDINT, FXTRACT, FPREM and FPREM1 against the host FPU: results, exceptions and condition codes. */

const oracle = createHostOracle();
requireOracleOutsideCi(oracle);
const skip = 'unavailable' in oracle;
const run = { numRuns: 3, endOnFailure: true };
const hex = (value: ExtendedPattern): string => `${value.signExponent.toString(16).padStart(4, '0')}:${(value.high >>> 0).toString(16).padStart(8, '0')}${(value.low >>> 0).toString(16).padStart(8, '0')}`;
const bytes = (value: ExtendedPattern): Uint8Array => extendedBytes(value.signExponent, value.high, value.low);

/** Values whose exponents put the binary point inside the significand, where FRNDINT does its work. */
const roundable = fc.oneof(anyExtended, fc.tuple(normalExtended, fc.integer({ min: -4, max: 66 })).map(([value, exponent]) => ({ ...value, signExponent: (value.signExponent & 0x8000) | (0x3fff + exponent) })));

describe.skipIf(skip)('x87 FRNDINT, FXTRACT, FPREM against the host FPU', () => {
  test.prop([fc.array(fc.tuple(roundable, x87Control), { minLength: 3000, maxLength: 3000 })], run)('FRNDINT', (cases) => {
    if ('unavailable' in oracle) return;
    const host = oracle.run(cases.map(([a, control]) => ({ operation: OracleOperation.frndint, control, a: bytes(a), b: new Uint8Array(16) })));
    const result = new SoftFloatResult();
    cases.forEach(([a, control], index) => {
      const flags = extendedRoundToInteger(a, control, result);
      const label = `FRNDINT ${hex(a)} control ${control.toString(16)}`;
      if ((host[index]!.status & ~control & 0x07) === 0) expect(hex(result), label).toBe(hex(readExtended(host[index]!.bytes)));
      expect((flags & 0x23f).toString(16), label).toBe((host[index]!.status & 0x23f).toString(16));
    });
  });
  test.prop([fc.array(fc.tuple(anyExtended, x87Control), { minLength: 3000, maxLength: 3000 })], run)('FXTRACT', (cases) => {
    if ('unavailable' in oracle) return;
    const host = oracle.run(cases.map(([a, control]) => ({ operation: OracleOperation.fxtract, control, a: bytes(a), b: new Uint8Array(16) })));
    const result = new SoftFloatResult();
    cases.forEach(([a, control], index) => {
      const flags = extendedExtract(a, result, control);
      const label = `FXTRACT ${hex(a)} control ${control.toString(16)}`;
      if ((host[index]!.status & ~control & 0x07) === 0) expect(`${hex(result)} ${hex(result.second)}`, label).toBe(`${hex(readExtended(host[index]!.bytes))} ${hex(readExtended(host[index]!.bytes, 16))}`);
      expect((flags & 0x3f).toString(16), label).toBe((host[index]!.status & 0x3f).toString(16));
    });
  });
  /** Dividend and divisor with exponent differences from -2 to 70, plus any pair. */
  const remainderPair = fc.oneof(
    fc.tuple(anyExtended, anyExtended),
    fc.tuple(normalExtended, normalExtended, fc.integer({ min: -2, max: 70 })).map(([a, b, difference]) => {
      const bField = Math.max(3, Math.min(0x7ffe - 80, b.signExponent & 0x7fff));
      return [{ ...a, signExponent: (a.signExponent & 0x8000) | (bField + difference) }, { ...b, signExponent: (b.signExponent & 0x8000) | bField }] as [ExtendedPattern, ExtendedPattern];
    }),
  );
  for (const [name, operation, nearest] of [['FPREM', OracleOperation.fprem, false], ['FPREM1', OracleOperation.fprem1, true]] as const) {
    test.prop([fc.array(fc.tuple(remainderPair, x87Control), { minLength: 3000, maxLength: 3000 })], run)(name, (cases) => {
      if ('unavailable' in oracle) return;
      const host = oracle.run(cases.map(([[a, b], control]) => ({ operation, control, a: bytes(a), b: bytes(b) })));
      const result = new SoftFloatResult();
      cases.forEach(([[a, b], control], index) => {
        const flags = extendedRemainder(a, b, nearest, result, control);
        const label = `${name} ${hex(a)} ${hex(b)} control ${control.toString(16)}`;
        if ((host[index]!.status & ~control & 0x07) === 0) expect(hex(result), label).toBe(hex(readExtended(host[index]!.bytes)));
        expect((flags & 0x473f).toString(16), label).toBe((host[index]!.status & 0x473f).toString(16));
      });
    });
  }
  /** Scale factors: small integers and fractions, huge values, and any value. */
  const scalePair = fc.oneof(
    fc.tuple(anyExtended, anyExtended),
    fc.tuple(anyExtended, normalExtended, fc.integer({ min: -2, max: 16 })).map(([a, b, exponent]) => [a, { ...b, signExponent: (b.signExponent & 0x8000) | (0x3fff + exponent) }] as [ExtendedPattern, ExtendedPattern]),
  );
  test.prop([fc.array(fc.tuple(scalePair, x87Control), { minLength: 3000, maxLength: 3000 })], run)('FSCALE', (cases) => {
    if ('unavailable' in oracle) return;
    const host = oracle.run(cases.map(([[a, b], control]) => ({ operation: OracleOperation.fscale, control, a: bytes(a), b: bytes(b) })));
    const result = new SoftFloatResult();
    cases.forEach(([[a, b], control], index) => {
      const flags = extendedScale(a, b, control, result);
      const label = `FSCALE ${hex(a)} ${hex(b)} control ${control.toString(16)}`;
      if ((host[index]!.status & ~control & 0x07) === 0) expect(hex(result), label).toBe(hex(readExtended(host[index]!.bytes)));
      expect((flags & 0x23f).toString(16), label).toBe((host[index]!.status & 0x23f).toString(16));
    });
  });
});
