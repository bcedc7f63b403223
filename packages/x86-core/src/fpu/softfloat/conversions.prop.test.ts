import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { extendedToIeee, extendedToInteger, FLOAT32, FLOAT64, ieeeToExtended, integerToExtended } from './conversions.js';
import { createHostOracle, extendedBytes, OracleOperation, readExtended, readWords, requireOracleOutsideCi, wordsBytes } from './host-oracle.js';
import { anyExtended, type ExtendedPattern, x87Control } from './testing-arbitraries.js';
import { SoftFloatResult } from './types.js';

/* x87 loads and stores of float32/float64/integers against the host FPU, bit for bit with IE DE OE UE PE and C1. */

const oracle = createHostOracle();
requireOracleOutsideCi(oracle);
const skip = 'unavailable' in oracle;
const STATUS_MASK = 0x3f | 0x200;
const hexExtended = (value: ExtendedPattern): string => `${value.signExponent.toString(16)}:${(value.high >>> 0).toString(16)}:${(value.low >>> 0).toString(16)}`;
const run = { numRuns: 3, endOnFailure: true };

const word = fc.integer({ min: 0, max: 0xffffffff });
/** float64 bits biased toward specials: exponent extremes, zero fraction, quiet/signaling NaNs. */
const float64Bits = fc.tuple(fc.constantFrom(0, 0x80000000), fc.oneof(fc.integer({ min: 0, max: 0x7ff }), fc.constantFrom(0, 0x7ff, 1, 0x7fe, 0x3ff)), fc.oneof(word, fc.constant(0)), fc.oneof(word, fc.constant(0), fc.constant(0x80000)))
  .map(([sign, field, low, fraction]) => ({ high: (sign | (field << 20) | (fraction & 0xfffff)) >>> 0, low }));
const float32Bits = fc.tuple(fc.constantFrom(0, 0x80000000), fc.oneof(fc.integer({ min: 0, max: 0xff }), fc.constantFrom(0, 0xff, 1, 0xfe)), fc.oneof(word, fc.constant(0), fc.constant(0x400000)))
  .map(([sign, field, fraction]) => (sign | (field << 23) | (fraction & 0x7fffff)) >>> 0);

describe.skipIf(skip)('x87 conversions against the host FPU', () => {
  test.prop([fc.array(fc.tuple(float32Bits, x87Control), { minLength: 2000, maxLength: 2000 })], run)('FLD m32', (cases) => {
    if ('unavailable' in oracle) return;
    const host = oracle.run(cases.map(([bits, control]) => ({ operation: OracleOperation.fldSingle, control, a: wordsBytes(bits), b: wordsBytes(0) })));
    const result = new SoftFloatResult();
    cases.forEach(([bits], index) => {
      const flags = ieeeToExtended(FLOAT32, 0, bits, result);
      const label = `fld m32 ${bits.toString(16)}`;
      if ((host[index]!.status & ~cases[index]![1] & 0x07) === 0) expect(hexExtended(result), label).toBe(hexExtended(readExtended(host[index]!.bytes)));
      expect((flags & STATUS_MASK).toString(16), label).toBe((host[index]!.status & STATUS_MASK).toString(16));
    });
  });
  test.prop([fc.array(fc.tuple(float64Bits, x87Control), { minLength: 2000, maxLength: 2000 })], run)('FLD m64', (cases) => {
    if ('unavailable' in oracle) return;
    const host = oracle.run(cases.map(([bits, control]) => ({ operation: OracleOperation.fldDouble, control, a: wordsBytes(bits.low, bits.high), b: wordsBytes(0) })));
    const result = new SoftFloatResult();
    cases.forEach(([bits], index) => {
      const flags = ieeeToExtended(FLOAT64, bits.high, bits.low, result);
      const label = `fld m64 ${bits.high.toString(16)}:${bits.low.toString(16)}`;
      if ((host[index]!.status & ~cases[index]![1] & 0x07) === 0) expect(hexExtended(result), label).toBe(hexExtended(readExtended(host[index]!.bytes)));
      expect((flags & STATUS_MASK).toString(16), label).toBe((host[index]!.status & STATUS_MASK).toString(16));
    });
  });
  for (const [name, operation, format] of [['FST m32', OracleOperation.fstSingle, FLOAT32], ['FST m64', OracleOperation.fstDouble, FLOAT64]] as const) {
    test.prop([fc.array(fc.tuple(anyExtended, x87Control), { minLength: 3000, maxLength: 3000 })], run)(name, (cases) => {
      if ('unavailable' in oracle) return;
      const host = oracle.run(cases.map(([value, control]) => ({ operation, control, a: extendedBytes(value.signExponent, value.high, value.low), b: wordsBytes(0) })));
      const result = new SoftFloatResult();
      cases.forEach(([value, control], index) => {
        const flags = extendedToIeee(value, format, control, result);
        const expected = readWords(host[index]!.bytes);
        const label = `${name} ${hexExtended(value)} control ${control.toString(16)}`;
        // With OE or UE unmasked the FPU stores nothing to memory (the host's slot stays 0).
        const trapped = (host[index]!.status & ~control & 0x1f) !== 0;
        if (trapped) expect(expected.low | expected.high, label).toBe(0);
        else if (format === FLOAT32) expect(result.low.toString(16), label).toBe(expected.low.toString(16));
        else expect(`${result.high.toString(16)}:${result.low.toString(16)}`, label).toBe(`${expected.high.toString(16)}:${expected.low.toString(16)}`);
        expect((flags & STATUS_MASK).toString(16), label).toBe((host[index]!.status & STATUS_MASK).toString(16));
      });
    });
  }
  test.prop([fc.array(fc.tuple(word, word, fc.constantFrom(16, 32, 64)), { minLength: 2000, maxLength: 2000 })], run)('FILD m16/m32/m64', (cases) => {
    if ('unavailable' in oracle) return;
    const operations = { 16: OracleOperation.fildWord, 32: OracleOperation.fildDword, 64: OracleOperation.fildQword };
    const host = oracle.run(cases.map(([high, low, bits]) => ({ operation: operations[bits], control: 0x37f, a: wordsBytes(low, high), b: wordsBytes(0) })));
    const result = new SoftFloatResult();
    cases.forEach(([high, low, bits], index) => {
      // Sign-extend the narrow integers the way the CPU will pass them.
      const narrowLow = bits === 16 ? (low << 16) >> 16 : low | 0;
      integerToExtended(bits === 64 ? high : narrowLow < 0 ? 0xffffffff : 0, bits === 64 ? low : narrowLow >>> 0, result);
      expect(hexExtended(result), `fild ${bits} ${high.toString(16)}:${low.toString(16)}`).toBe(hexExtended(readExtended(host[index]!.bytes)));
    });
  });
  const integerOperations = [[16, OracleOperation.fistWord, false], [32, OracleOperation.fistDword, false], [64, OracleOperation.fistQword, false], [64, OracleOperation.fisttpQword, true]] as const;
  test.prop([fc.array(fc.tuple(anyExtended, x87Control, fc.integer({ min: 0, max: 3 })), { minLength: 3000, maxLength: 3000 })], run)('FIST/FISTTP', (cases) => {
    if ('unavailable' in oracle) return;
    // Exponents near each integer width's range make the overflow edges common.
    const shaped = cases.map(([value, control, which]) => {
      const [bits] = integerOperations[which]!;
      const field = value.signExponent & 0x7fff;
      const exponent = field >= 0x3ff0 && field <= 0x400f ? 0x3fff + bits - 8 + (field & 15) : field;
      return [{ ...value, signExponent: (value.signExponent & 0x8000) | exponent }, control, which] as const;
    });
    const host = oracle.run(shaped.map(([value, control, which]) => ({ operation: integerOperations[which]![1], control, a: extendedBytes(value.signExponent, value.high, value.low), b: wordsBytes(0) })));
    const result = new SoftFloatResult();
    shaped.forEach(([value, control, which], index) => {
      const [bits, , truncate] = integerOperations[which]!;
      const flags = extendedToInteger(value, bits, control, result, truncate);
      const expected = readWords(host[index]!.bytes);
      const label = `fist${truncate ? 'tp' : ''} ${bits} ${hexExtended(value)} control ${control.toString(16)}`;
      // With IE unmasked nothing is stored (the host's slot stays 0).
      if ((host[index]!.status & ~control & 0x07) === 0) expect(`${result.high.toString(16)}:${result.low.toString(16)}`, label).toBe(`${(bits === 64 ? expected.high : 0).toString(16)}:${(bits === 16 ? expected.low & 0xffff : expected.low).toString(16)}`);
      expect((flags & STATUS_MASK).toString(16), label).toBe((host[index]!.status & STATUS_MASK).toString(16));
    });
  });
});
