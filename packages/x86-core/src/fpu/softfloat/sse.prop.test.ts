import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { createHostOracle, OracleOperation, readWords, requireOracleOutsideCi, wordsBytes } from './host-oracle.js';
import { FLOAT32, FLOAT64 } from './round.js';
import { createSseScratch, sseArithmetic, sseCompareFlags, sseComparePredicate, sseConvertFloat, sseFloatToInteger, sseIntegerToFloat, SseOperation } from './sse.js';
import { SoftFloatResult } from './types.js';

/*
 * SSE scalar operations under MXCSR (rounding, DAZ, FTZ, masked and unmasked
 * exceptions) against the host: results bit for bit, MXCSR flags, and whether
 * the operation traps.
 */

const oracle = createHostOracle();
requireOracleOutsideCi(oracle);
const skip = 'unavailable' in oracle;
const run = { numRuns: 3, endOnFailure: true };

const word = fc.integer({ min: 0, max: 0xffffffff });
const fractionWord = fc.oneof(word, fc.constantFrom(0, 1, 0xffffffff, 0x80000000, 0x10000000), fc.tuple(word, fc.integer({ min: 0, max: 31 })).map(([value, shift]) => ((value >>> shift) << shift) >>> 0));
const float32Bits = fc.tuple(fc.constantFrom(0, 1), fc.oneof(fc.integer({ min: 0x70, max: 0x8f }), fc.integer({ min: 0, max: 0xff }), fc.constantFrom(0, 1, 0xfe, 0xff), fc.integer({ min: 0, max: 24 })), fractionWord)
  .map(([sign, field, fraction]) => ({ high: 0, low: ((sign << 31) | (field << 23) | (fraction & 0x7fffff)) >>> 0 }));
const float64Bits = fc.tuple(fc.constantFrom(0, 1), fc.oneof(fc.integer({ min: 0x3f0, max: 0x40f }), fc.integer({ min: 0, max: 0x7ff }), fc.constantFrom(0, 1, 0x7fe, 0x7ff), fc.integer({ min: 0, max: 53 })), fractionWord, fractionWord)
  .map(([sign, field, fractionHigh, low]) => ({ high: ((sign << 31) | (field << 20) | (fractionHigh & 0xfffff)) >>> 0, low }));
/** Every rounding mode, DAZ and FTZ; usually all exceptions masked, sometimes one unmasked (the host then traps with #XM). */
const mxcsr = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.boolean(), fc.boolean(), fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(1, 2, 4, 8, 0x10, 0x20) }))
  .map(([rounding, daz, ftz, unmasked]) => ((0x1f80 & ~(unmasked << 7)) | (rounding << 13) | (daz ? 0x40 : 0) | (ftz ? 0x8000 : 0)) >>> 0);

/** Whether the flags trap under the MXCSR masks. */
const traps = (flags: number, control: number): boolean => (flags & ~(control >> 7) & 0x3f) !== 0;

type Bits = { high: number; low: number };
const hex = (bits: Bits): string => `${(bits.high >>> 0).toString(16)}:${(bits.low >>> 0).toString(16)}`;

function batch(bits: fc.Arbitrary<Bits>): fc.Arbitrary<Array<[Bits, Bits, number]>> {
  const near = fc.tuple(bits, word).map(([a, low]) => [a, { high: a.high, low: a.high === 0 ? (a.low & 0xffff0000) | (low & 0xffff) : low }] as [Bits, Bits]);
  return fc.array(fc.tuple(fc.oneof(fc.tuple(bits, bits), near), mxcsr).map(([[a, b], control]) => [a, b, control] as [Bits, Bits, number]), { minLength: 2000, maxLength: 2000 });
}

const arithmetic = [
  ['ADD', SseOperation.add, OracleOperation.addss, OracleOperation.addsd],
  ['SUB', SseOperation.subtract, OracleOperation.subss, OracleOperation.subsd],
  ['MUL', SseOperation.multiply, OracleOperation.mulss, OracleOperation.mulsd],
  ['DIV', SseOperation.divide, OracleOperation.divss, OracleOperation.divsd],
  ['SQRT', SseOperation.squareRoot, OracleOperation.sqrtss, OracleOperation.sqrtsd],
  ['MIN', SseOperation.minimum, OracleOperation.minss, OracleOperation.minsd],
  ['MAX', SseOperation.maximum, OracleOperation.maxss, OracleOperation.maxsd],
] as const;

describe.skipIf(skip)('SSE scalar arithmetic against the host', () => {
  for (const [name, operation, single, double] of arithmetic) {
    for (const [suffix, format, oracleOperation, bits] of [['SS', FLOAT32, single, float32Bits], ['SD', FLOAT64, double, float64Bits]] as const) {
      test.prop([batch(bits)], run)(`${name}${suffix}`, (cases) => {
        if ('unavailable' in oracle) return;
        const host = oracle.run(cases.map(([a, b, control]) => ({ operation: oracleOperation, control, a: wordsBytes(a.low, a.high), b: wordsBytes(b.low, b.high) })));
        const result = new SoftFloatResult();
        const scratch = createSseScratch();
        cases.forEach(([a, b, control], index) => {
          const flags = sseArithmetic(operation, format, a.high, a.low, b.high, b.low, control, result, scratch);
          const expected = readWords(host[index]!.bytes);
          const label = `${name}${suffix} ${hex(a)} ${hex(b)} mxcsr ${control.toString(16)}`;
          expect(traps(flags, control), label).toBe(host[index]!.trapped);
          if (!host[index]!.trapped) expect(hex(result), label).toBe(hex(format === FLOAT32 ? { high: 0, low: expected.low } : expected));
          expect(flags.toString(16), label).toBe((host[index]!.mxcsr & 0x3f).toString(16));
        });
      });
    }
  }
});

describe.skipIf(skip)('SSE scalar compares and conversions against the host', () => {
  for (const [suffix, format, bits, cmp, comi, ucomi] of [['SS', FLOAT32, float32Bits, OracleOperation.cmpss, OracleOperation.comiss, OracleOperation.ucomiss], ['SD', FLOAT64, float64Bits, OracleOperation.cmpsd, OracleOperation.comisd, OracleOperation.ucomisd]] as const) {
    test.prop([batch(bits), fc.integer({ min: 0, max: 7 })], run)(`CMP${suffix} predicates`, (cases, predicate) => {
      if ('unavailable' in oracle) return;
      const host = oracle.run(cases.map(([a, b, control]) => ({ operation: cmp + predicate, control, a: wordsBytes(a.low, a.high), b: wordsBytes(b.low, b.high) })));
      const result = new SoftFloatResult();
      const scratch = createSseScratch();
      cases.forEach(([a, b, control], index) => {
        const flags = sseComparePredicate(predicate, format, a.high, a.low, b.high, b.low, control, result, scratch);
        const expected = readWords(host[index]!.bytes);
        const label = `CMP${suffix} ${predicate} ${hex(a)} ${hex(b)} mxcsr ${control.toString(16)}`;
        expect(traps(flags, control), label).toBe(host[index]!.trapped);
        if (!host[index]!.trapped) expect(hex(result), label).toBe(hex(format === FLOAT32 ? { high: 0, low: expected.low } : expected));
        expect(flags.toString(16), label).toBe((host[index]!.mxcsr & 0x3f).toString(16));
      });
    });
    test.prop([batch(bits), fc.boolean()], run)(`(U)COMI${suffix}`, (cases, ordered) => {
      if ('unavailable' in oracle) return;
      const host = oracle.run(cases.map(([a, b, control]) => ({ operation: ordered ? comi : ucomi, control, a: wordsBytes(a.low, a.high), b: wordsBytes(b.low, b.high) })));
      const result = new SoftFloatResult();
      const scratch = createSseScratch();
      cases.forEach(([a, b, control], index) => {
        const outcome = sseCompareFlags(format, a.high, a.low, b.high, b.low, control, ordered, result, scratch);
        const label = `${ordered ? '' : 'U'}COMI${suffix} ${hex(a)} ${hex(b)} mxcsr ${control.toString(16)}`;
        expect(traps(outcome >>> 8, control), label).toBe(host[index]!.trapped);
        if (!host[index]!.trapped) expect((outcome & 0xff).toString(16), label).toBe((host[index]!.rflags & 0x8d5).toString(16));
        expect((outcome >>> 8).toString(16), label).toBe((host[index]!.mxcsr & 0x3f).toString(16));
      });
    });
  }
  test.prop([batch(float32Bits), batch(float64Bits)], run)('CVTSS2SD and CVTSD2SS', (singles, doubles) => {
    if ('unavailable' in oracle) return;
    const host = oracle.run([
      ...singles.map(([, b, control]) => ({ operation: OracleOperation.cvtss2sd, control, a: wordsBytes(0), b: wordsBytes(b.low) })),
      ...doubles.map(([, b, control]) => ({ operation: OracleOperation.cvtsd2ss, control, a: wordsBytes(0), b: wordsBytes(b.low, b.high) })),
    ]);
    const result = new SoftFloatResult();
    const scratch = createSseScratch();
    [...singles.map((item) => [FLOAT32, item] as const), ...doubles.map((item) => [FLOAT64, item] as const)].forEach(([from, [, b, control]], index) => {
      const flags = sseConvertFloat(from, b.high, b.low, control, result, scratch);
      const expected = readWords(host[index]!.bytes);
      const label = `cvt from ${from.precision} ${hex(b)} mxcsr ${control.toString(16)}`;
      expect(traps(flags, control), label).toBe(host[index]!.trapped);
      if (!host[index]!.trapped) expect(hex(result), label).toBe(hex(from === FLOAT32 ? expected : { high: 0, low: expected.low }));
      expect(flags.toString(16), label).toBe((host[index]!.mxcsr & 0x3f).toString(16));
    });
  });
  const toInteger = [
    [FLOAT32, 32, false, OracleOperation.cvtss2si32], [FLOAT32, 32, true, OracleOperation.cvttss2si32], [FLOAT32, 64, false, OracleOperation.cvtss2si64], [FLOAT32, 64, true, OracleOperation.cvttss2si64],
    [FLOAT64, 32, false, OracleOperation.cvtsd2si32], [FLOAT64, 32, true, OracleOperation.cvttsd2si32], [FLOAT64, 64, false, OracleOperation.cvtsd2si64], [FLOAT64, 64, true, OracleOperation.cvttsd2si64],
  ] as const;
  test.prop([batch(float32Bits), batch(float64Bits), fc.integer({ min: 0, max: 3 })], run)('CVT(T)SS2SI / CVT(T)SD2SI', (singles, doubles, variant) => {
    if ('unavailable' in oracle) return;
    // Exponents near the integer range make the overflow edges common.
    const cases = [...singles.map((item) => [toInteger[variant]!, item] as const), ...doubles.map((item) => [toInteger[variant + 4]!, item] as const)];
    const host = oracle.run(cases.map(([[, , , operation], [, b, control]]) => ({ operation, control, a: wordsBytes(b.low, b.high), b: wordsBytes(0) })));
    const result = new SoftFloatResult();
    const scratch = createSseScratch();
    cases.forEach(([[format, bits, truncate], [, b, control]], index) => {
      const flags = sseFloatToInteger(format, bits, b.high, b.low, control, truncate, result, scratch);
      const expected = readWords(host[index]!.bytes);
      const label = `cvt${truncate ? 't' : ''} ${format.precision} to ${bits} ${hex(b)} mxcsr ${control.toString(16)}`;
      expect(traps(flags, control), label).toBe(host[index]!.trapped);
      if (!host[index]!.trapped) expect(hex(result), label).toBe(hex(bits === 64 ? expected : { high: 0, low: expected.low }));
      expect(flags.toString(16), label).toBe((host[index]!.mxcsr & 0x3f).toString(16));
    });
  });
  test.prop([fc.array(fc.tuple(word, word, mxcsr, fc.integer({ min: 0, max: 3 })), { minLength: 3000, maxLength: 3000 })], run)('CVTSI2SS / CVTSI2SD', (cases) => {
    if ('unavailable' in oracle) return;
    const variants = [[FLOAT32, 32, OracleOperation.cvtsi2ss32], [FLOAT32, 64, OracleOperation.cvtsi2ss64], [FLOAT64, 32, OracleOperation.cvtsi2sd32], [FLOAT64, 64, OracleOperation.cvtsi2sd64]] as const;
    const host = oracle.run(cases.map(([high, low, control, variant]) => ({ operation: variants[variant]![2], control, a: wordsBytes(low, high), b: wordsBytes(0) })));
    const result = new SoftFloatResult();
    const scratch = createSseScratch();
    cases.forEach(([high, low, control, variant], index) => {
      const [format, bits] = variants[variant]!;
      const flags = sseIntegerToFloat(format, bits, high, low, control, result, scratch);
      const expected = readWords(host[index]!.bytes);
      const label = `cvtsi2 ${format.precision} from ${bits} ${high.toString(16)}:${low.toString(16)} mxcsr ${control.toString(16)}`;
      expect(traps(flags, control), label).toBe(host[index]!.trapped);
      if (!host[index]!.trapped) expect(hex(result), label).toBe(hex(format === FLOAT32 ? { high: 0, low: expected.low } : expected));
      expect(flags.toString(16), label).toBe((host[index]!.mxcsr & 0x3f).toString(16));
    });
  });
});
