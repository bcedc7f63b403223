import fc from 'fast-check';

/*
 * Test-only generators of operand bit patterns weighted toward the cases
 * where floating-point implementations go wrong: special values, rounding
 * boundaries, exponent extremes and exact cancellations.
 */

const word = fc.integer({ min: 0, max: 0xffffffff });

/** 32-bit words that often end in rounding-boundary patterns for 24/53/64-bit precision. */
const significandWord = fc.oneof(
  { weight: 4, arbitrary: word },
  { weight: 2, arbitrary: fc.constantFrom(0, 0xffffffff, 0x80000000, 0x7fffffff, 0x00000001, 0x80000001, 0x00000080, 0x00000100, 0x00000400, 0x00000800, 0xffffff00, 0xfffff800, 0x000007ff) },
  { weight: 2, arbitrary: fc.tuple(word, fc.integer({ min: 0, max: 31 })).map(([value, shift]) => ((value >>> shift) << shift) >>> 0) },
);

export interface ExtendedPattern {
  readonly signExponent: number;
  readonly high: number;
  readonly low: number;
}

const sign = fc.constantFrom(0, 0x8000);

/** Biased exponents: around 1.0, near overflow and underflow, and anywhere. */
const exponentField = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0x3ff0, max: 0x400f }) },
  { weight: 1, arbitrary: fc.integer({ min: 0x7fc0, max: 0x7ffe }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 0x40 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0x2000, max: 0x5fff }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 0x7ffe }) },
);

export const normalExtended: fc.Arbitrary<ExtendedPattern> = fc.record({
  signExponent: fc.tuple(sign, exponentField).map(([s, e]) => s | e),
  high: significandWord.map((value) => (value | 0x80000000) >>> 0),
  low: significandWord,
});

/** Every class of 80-bit value, normal ones most often. */
export const anyExtended: fc.Arbitrary<ExtendedPattern> = fc.oneof(
  { weight: 12, arbitrary: normalExtended },
  { weight: 1, arbitrary: fc.record({ signExponent: sign, high: fc.constant(0), low: fc.constant(0) }) },
  { weight: 1, arbitrary: fc.record({ signExponent: sign.map((s) => s | 0x7fff), high: fc.constant(0x80000000), low: fc.constant(0) }) },
  // Denormals and pseudo-denormals.
  { weight: 2, arbitrary: fc.record({ signExponent: sign, high: significandWord.map((value) => value & 0x7fffffff), low: significandWord }).filter((value) => value.high !== 0 || value.low !== 0) },
  { weight: 1, arbitrary: fc.record({ signExponent: sign, high: significandWord.map((value) => (value | 0x80000000) >>> 0), low: significandWord }) },
  // Quiet and signaling NaNs with payloads, and the indefinite.
  { weight: 1, arbitrary: fc.record({ signExponent: sign.map((s) => s | 0x7fff), high: word.map((value) => (value | 0xc0000000) >>> 0), low: significandWord }) },
  { weight: 1, arbitrary: fc.record({ signExponent: sign.map((s) => s | 0x7fff), high: word.map((value) => ((value & 0x3fffffff) | 0x80000000) >>> 0), low: significandWord }).filter((value) => (value.high & 0x3fffffff) !== 0 || value.low !== 0) },
  { weight: 1, arbitrary: fc.constant({ signExponent: 0xffff, high: 0xc0000000, low: 0 }) },
  // Largest finite and smallest normal.
  { weight: 1, arbitrary: fc.record({ signExponent: sign.map((s) => s | 0x7ffe), high: fc.constant(0xffffffff), low: fc.constant(0xffffffff) }) },
  { weight: 1, arbitrary: fc.record({ signExponent: sign.map((s) => s | 1), high: fc.constant(0x80000000), low: fc.constant(0) }) },
  // Unnormals, pseudo-infinities and pseudo-NaNs.
  { weight: 1, arbitrary: fc.record({ signExponent: fc.tuple(sign, fc.integer({ min: 1, max: 0x7fff })).map(([s, e]) => s | e), high: significandWord.map((value) => value & 0x7fffffff), low: significandWord }) },
);

/** x87 control words: every precision and rounding control; IE, ZE and DE masked, the others sometimes not. */
export const x87MaskedControl: fc.Arbitrary<number> = fc
  .tuple(fc.constantFrom(0, 2, 3), fc.integer({ min: 0, max: 3 }), fc.constantFrom(0x3f, 0x3f, 0x3f, 0x37, 0x2f, 0x27, 0x1f))
  .map(([precision, rounding, masks]) => 0x40 | masks | (precision << 8) | (rounding << 10));

/** As x87MaskedControl, but sometimes with IE, ZE or DE unmasked too (the FPU then stores nothing). */
export const x87Control: fc.Arbitrary<number> = fc.oneof(
  { weight: 5, arbitrary: x87MaskedControl },
  { weight: 1, arbitrary: fc.tuple(x87MaskedControl, fc.constantFrom(0x01, 0x02, 0x04)).map(([control, unmask]) => control & ~unmask) },
);
