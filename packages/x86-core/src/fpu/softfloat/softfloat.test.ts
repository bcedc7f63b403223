import { describe, expect, it } from 'vitest';
import {
  CompareResult,
  Condition,
  createSseScratch,
  Exception,
  extendedAdd,
  extendedCompare,
  extendedDivide,
  extendedExamine,
  extendedMultiply,
  extendedSquareRoot,
  extendedSubtract,
  extendedToInteger,
  FLOAT32,
  FLOAT64,
  SoftFloatResult,
  sseArithmetic,
  sseFloatToInteger,
  SseOperation,
} from './index.js';

/* Facts from the Intel SDM (vol. 1 ch. 4 and 8, vol. 2 instruction pages), written out by hand. */

const ONE = { signExponent: 0x3fff, high: 0x80000000, low: 0 };
const MINUS_ONE = { signExponent: 0xbfff, high: 0x80000000, low: 0 };
const TWO = { signExponent: 0x4000, high: 0x80000000, low: 0 };
const THREE = { signExponent: 0x4000, high: 0xc0000000, low: 0 };
const ZERO = { signExponent: 0, high: 0, low: 0 };
const INFINITY = { signExponent: 0x7fff, high: 0x80000000, low: 0 };
const LARGEST = { signExponent: 0x7ffe, high: 0xffffffff, low: 0xffffffff };
const SIGNALING_NAN = { signExponent: 0x7fff, high: 0x80000000, low: 1 };
/** 64-bit precision, round to nearest, all exceptions masked (FNINIT). */
const DEFAULT = 0x037f;
const bits = (result: SoftFloatResult): string => `${result.signExponent.toString(16)}:${result.high.toString(16)}:${result.low.toString(16)}`;

describe('x87 facts', () => {
  const result = new SoftFloatResult();
  it('1 / 0 is +infinity with ZE', () => {
    expect(extendedDivide(ONE, ZERO, DEFAULT, result)).toBe(Exception.zeroDivide);
    expect(bits(result)).toBe('7fff:80000000:0');
  });
  it('sqrt(-1), 0/0, inf - inf and 0 x inf are the real indefinite with IE', () => {
    expect(extendedSquareRoot(MINUS_ONE, DEFAULT, result)).toBe(Exception.invalid);
    expect(bits(result)).toBe('ffff:c0000000:0');
    expect(extendedDivide(ZERO, ZERO, DEFAULT, result)).toBe(Exception.invalid);
    expect(bits(result)).toBe('ffff:c0000000:0');
    expect(extendedSubtract(INFINITY, INFINITY, DEFAULT, result)).toBe(Exception.invalid);
    expect(extendedMultiply(ZERO, INFINITY, DEFAULT, result)).toBe(Exception.invalid);
    expect(bits(result)).toBe('ffff:c0000000:0');
  });
  it('an SNaN operand is quieted and raises IE', () => {
    expect(extendedAdd(SIGNALING_NAN, ONE, DEFAULT, result)).toBe(Exception.invalid);
    expect(bits(result)).toBe('7fff:c0000000:1');
  });
  it('1 + 2 = 3 exactly and 1 - 1 = +0 (-0 when rounding down)', () => {
    expect(extendedAdd(ONE, TWO, DEFAULT, result)).toBe(0);
    expect(bits(result)).toBe('4000:c0000000:0');
    extendedSubtract(ONE, ONE, DEFAULT, result);
    expect(bits(result)).toBe('0:0:0');
    extendedSubtract(ONE, ONE, DEFAULT | (1 << 10), result);
    expect(bits(result)).toBe('8000:0:0');
  });
  it('1/3 rounds per precision control, with PE and C1 when rounded up', () => {
    // 1/3 = 1.0101...b x 2^-2: significand bit k (counting from 63 down) is 1 when k is odd, and the pattern never ends.
    // 24 bits: round bit 39 is 1, up. 53 bits: round bit 10 is 0, down. 64 bits: the bit below bit 0 is 1, up.
    expect(extendedDivide(ONE, THREE, 0x007f, result)).toBe(Exception.precision | Exception.roundedUp);
    expect(bits(result)).toBe('3ffd:aaaaab00:0');
    expect(extendedDivide(ONE, THREE, DEFAULT, result)).toBe(Exception.precision | Exception.roundedUp);
    expect(bits(result)).toBe('3ffd:aaaaaaaa:aaaaaaab');
    expect(extendedDivide(ONE, THREE, 0x027f, result)).toBe(Exception.precision);
    expect(bits(result)).toBe('3ffd:aaaaaaaa:aaaaa800');
  });
  it('masked overflow gives infinity when rounding to nearest, the largest finite toward zero; unmasked it wraps the exponent by 24576', () => {
    expect(extendedMultiply(LARGEST, TWO, DEFAULT, result)).toBe(Exception.overflow | Exception.precision | Exception.roundedUp);
    expect(bits(result)).toBe('7fff:80000000:0');
    expect(extendedMultiply(LARGEST, TWO, DEFAULT | (3 << 10), result)).toBe(Exception.overflow | Exception.precision);
    expect(bits(result)).toBe('7ffe:ffffffff:ffffffff');
    // Exact 2 x largest = 1.111..b x 2^16384: biased 0x7fff - 0x6000 = 0x1fff.
    expect(extendedMultiply(LARGEST, TWO, DEFAULT & ~Exception.overflow, result)).toBe(Exception.overflow);
    expect(bits(result)).toBe('1fff:ffffffff:ffffffff');
  });
  it('masked underflow denormalizes; unmasked it wraps the exponent by 24576', () => {
    const smallest = { signExponent: 0x0001, high: 0x80000000, low: 0 };
    const half = { signExponent: 0x3ffe, high: 0x80000000, low: 0 };
    expect(extendedMultiply(smallest, half, DEFAULT, result)).toBe(0);
    expect(bits(result)).toBe('0:40000000:0');
    expect(extendedMultiply(smallest, half, DEFAULT & ~Exception.underflow, result)).toBe(Exception.underflow);
    expect(bits(result)).toBe('6000:80000000:0');
  });
  it('FIST of a value out of range stores the integer indefinite with IE', () => {
    const big = { signExponent: 0x3fff + 40, high: 0x80000000, low: 0 };
    expect(extendedToInteger(big, 16, DEFAULT, result)).toBe(Exception.invalid);
    expect(result.low).toBe(0x8000);
    expect(extendedToInteger({ signExponent: 0x3fff + 63, high: 0x80000000, low: 0 }, 64, DEFAULT, result)).toBe(Exception.invalid);
    expect([result.high, result.low]).toEqual([0x80000000, 0]);
    // -2^63 fits.
    expect(extendedToInteger({ signExponent: 0xbfff + 63, high: 0x80000000, low: 0 }, 64, DEFAULT, result)).toBe(0);
    expect([result.high, result.low]).toEqual([0x80000000, 0]);
  });
  it('FIST rounds 2.5 to 2 under round-to-nearest-even and to 3 under round-up', () => {
    const twoAndHalf = { signExponent: 0x4000, high: 0xa0000000, low: 0 };
    expect(extendedToInteger(twoAndHalf, 32, DEFAULT, result)).toBe(Exception.precision);
    expect(result.low).toBe(2);
    expect(extendedToInteger(twoAndHalf, 32, DEFAULT | (2 << 10), result)).toBe(Exception.precision | Exception.roundedUp);
    expect(result.low).toBe(3);
  });
  it('FCOM orders values and reports unordered for NaNs with IE; FUCOM is quiet for QNaN', () => {
    expect(extendedCompare(ONE, TWO, false)).toBe(CompareResult.less);
    expect(extendedCompare(TWO, ONE, false)).toBe(CompareResult.greater);
    expect(extendedCompare(ZERO, { signExponent: 0x8000, high: 0, low: 0 }, false)).toBe(CompareResult.equal);
    const quiet = { signExponent: 0x7fff, high: 0xc0000000, low: 0 };
    expect(extendedCompare(ONE, quiet, false)).toBe(CompareResult.unordered | Exception.invalid);
    expect(extendedCompare(ONE, quiet, true)).toBe(CompareResult.unordered);
  });
  it('FXAM classes (C3 C2 C0) and the sign in C1', () => {
    expect(extendedExamine(MINUS_ONE)).toBe(Condition.c1 | Condition.c2);
    expect(extendedExamine(ZERO)).toBe(Condition.c3);
    expect(extendedExamine(INFINITY)).toBe(Condition.c2 | Condition.c0);
    expect(extendedExamine(SIGNALING_NAN)).toBe(Condition.c0);
    expect(extendedExamine({ signExponent: 0, high: 1, low: 0 })).toBe(Condition.c3 | Condition.c2);
    expect(extendedExamine({ signExponent: 0x3fff, high: 0x40000000, low: 0 })).toBe(0);
  });
});

describe('SSE facts', () => {
  const result = new SoftFloatResult();
  const scratch = createSseScratch();
  it('1.0f / 0.0f is +infinity with ZE', () => {
    expect(sseArithmetic(SseOperation.divide, FLOAT32, 0, 0x3f800000, 0, 0, 0x1f80, result, scratch)).toBe(Exception.zeroDivide);
    expect(result.low).toBe(0x7f800000);
  });
  it('sqrt(-1.0) is the default NaN with IE', () => {
    expect(sseArithmetic(SseOperation.squareRoot, FLOAT64, 0, 0, 0xbff00000, 0, 0x1f80, result, scratch)).toBe(Exception.invalid);
    expect([result.high, result.low]).toEqual([0xfff80000, 0]);
  });
  it('the first source QNaN propagates; MINSS returns the second operand for a NaN or two zeros', () => {
    sseArithmetic(SseOperation.add, FLOAT32, 0, 0x7fc00001, 0, 0x7fc00002, 0x1f80, result, scratch);
    expect(result.low).toBe(0x7fc00001);
    expect(sseArithmetic(SseOperation.minimum, FLOAT32, 0, 0x7fc00001, 0, 0x3f800000, 0x1f80, result, scratch)).toBe(Exception.invalid);
    expect(result.low).toBe(0x3f800000);
    sseArithmetic(SseOperation.minimum, FLOAT32, 0, 0x00000000, 0, 0x80000000, 0x1f80, result, scratch);
    expect(result.low).toBe(0x80000000);
  });
  it('DAZ treats denormal inputs as zero without DE; FTZ flushes tiny results to zero with UE and PE', () => {
    expect(sseArithmetic(SseOperation.add, FLOAT32, 0, 1, 0, 1, 0x1f80, result, scratch)).toBe(Exception.denormal);
    expect(result.low).toBe(2);
    expect(sseArithmetic(SseOperation.add, FLOAT32, 0, 1, 0, 1, 0x1fc0, result, scratch)).toBe(0);
    expect(result.low).toBe(0);
    // 2^-126 x 0.5 is tiny and exact; with FTZ it becomes +0 with UE and PE.
    expect(sseArithmetic(SseOperation.multiply, FLOAT32, 0, 0x00800000, 0, 0x3f000000, 0x9f80, result, scratch)).toBe(Exception.underflow | Exception.precision);
    expect(result.low).toBe(0);
  });
  it('CVTTSD2SI of a NaN or out-of-range value is the integer indefinite with IE', () => {
    expect(sseFloatToInteger(FLOAT64, 32, 0x7ff80000, 0, 0x1f80, true, result, scratch)).toBe(Exception.invalid);
    expect(result.low).toBe(0x80000000);
    expect(sseFloatToInteger(FLOAT64, 32, 0x41e00000, 0, 0x1f80, true, result, scratch)).toBe(Exception.invalid);
    expect(result.low).toBe(0x80000000);
  });
});
