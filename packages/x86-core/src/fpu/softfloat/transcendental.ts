import { classifyExtended, ExtendedClass } from './extended-classify.js';
import { specialOperands, writeInfinity, writeZero } from './extended-arithmetic.js';
import { roundPackExtended, writeIndefinite } from './round.js';
import { EXTENDED_BIAS, Exception, type ExtendedBits, type SoftFloatResult } from './types.js';

/*
 * The x87 transcendentals: FSIN, FCOS, FSINCOS, FPTAN, F2XM1, FYL2X, FYL2XP1
 * and FPATAN. The kernels work on BigInt values carrying about 190
 * significant bits (these instructions are rare, and clarity wins over
 * speed here), then round once to the register format under the rounding
 * control. Precision control does not apply to them (as on the host).
 *
 * What the host (the oracle) shows and these functions reproduce:
 * - FSIN/FCOS/FSINCOS/FPTAN reduce the argument exactly by multiples of pi/2
 *   taken from a 66-bit pi (the nearest multiple), then evaluate the true
 *   function of the reduced argument: results for large arguments are those of
 *   the 66-bit pi, not of the real one. |x| >= 2^63 sets C2 and changes nothing.
 * - Every computed result reports PE, even when it happens to be exact
 *   (FYL2X of a power of two), without C1 in that case.
 * - The hardware's own rounding is not always correct: it carries a few bits
 *   beyond 64, so where the exact value lies very close to a rounding boundary
 *   (within about 1/16 ulp) the host may land on the other side. These
 *   functions round the (almost) exact value correctly.
 * - Outside the documented domains (F2XM1 beyond ±1, FYL2XP1 at or below -1;
 *   the SDM leaves them undefined) the AMD host returns the operand with PE;
 *   so do these functions. FYL2XP1 above -1 computes y·log2(1 + x) exactly.
 */

/** FSIN, FCOS, FPTAN and FSINCOS for `extendedTrigonometric`. */
export enum Trigonometric { sine = 0, cosine = 1, tangent = 2, sineCosine = 3 }

/** C2 in the returned flags: the operand was out of range (|x| >= 2^63) and nothing was written. */
export const OUT_OF_RANGE = 0x400;

/** A value m·2^e (m may be negative). */
interface Big {
  readonly m: bigint;
  readonly e: number;
}

/** Fraction bits of the fixed-point series. */
const FRACTION = 200;
const F = BigInt(FRACTION);
const ONE = 1n << F;
/** Significant bits a Big keeps. */
const KEEP = 192;

function bitLength(value: bigint): number {
  if (value === 0n) return 0;
  return (value < 0n ? -value : value).toString(2).length;
}

/**
 * Keeps KEEP significant bits, rounding to odd (dropped bits set the lowest
 * kept one): whether a value was exact, and on which side of a short one it
 * lies, survive until the final rounding.
 */
function trim(m: bigint, e: number): Big {
  const excess = bitLength(m) - KEEP;
  if (excess <= 0) return { m, e };
  const negative = m < 0n;
  const magnitude = negative ? -m : m;
  const shift = BigInt(excess);
  let kept = magnitude >> shift;
  if (kept << shift !== magnitude) kept |= 1n;
  return { m: negative ? -kept : kept, e: e + excess };
}

function multiply(a: Big, b: Big): Big {
  return trim(a.m * b.m, a.e + b.e);
}

function divide(a: Big, b: Big): Big {
  const shift = KEEP + bitLength(b.m) - bitLength(a.m);
  const numerator = shift >= 0 ? a.m << BigInt(shift) : a.m >> BigInt(-shift);
  let quotient = numerator / b.m;
  // Round to odd, like trim.
  if (quotient * b.m !== numerator) quotient += quotient < 0n ? -(~quotient & 1n) : ~quotient & 1n;
  return trim(quotient, a.e - b.e - shift);
}

function add(a: Big, b: Big): Big {
  if (a.m === 0n) return b;
  if (b.m === 0n) return a;
  // An operand far below the other's precision only says on which side of it the sum lies.
  const aTop = a.e + bitLength(a.m);
  const bTop = b.e + bitLength(b.m);
  if (aTop - bTop > KEEP + 8) return nudge(a, b.m < 0n ? -1n : 1n);
  if (bTop - aTop > KEEP + 8) return nudge(b, a.m < 0n ? -1n : 1n);
  const e = Math.min(a.e, b.e);
  return trim((a.m << BigInt(a.e - e)) + (b.m << BigInt(b.e - e)), e);
}

/** a plus a tiny amount of the given sign. */
function nudge(a: Big, sign: bigint): Big {
  const shift = KEEP + 8 - bitLength(a.m);
  return trim((a.m << BigInt(shift)) + sign, a.e - shift);
}

function negate(a: Big): Big {
  return { m: -a.m, e: a.e };
}

/** The value as a fixed-point number with FRACTION fraction bits (truncated). */
function toFixed(value: Big): bigint {
  const shift = value.e + FRACTION;
  return shift >= 0 ? value.m << BigInt(shift) : value.m >> BigInt(-shift);
}

function fromFixed(value: bigint): Big {
  return trim(value, -FRACTION);
}

function multiplyFixed(a: bigint, b: bigint): bigint {
  return (a * b) >> F;
}

/** Square root of a non-negative fixed-point value (Newton's method on integers). */
function squareRootFixed(value: bigint): bigint {
  const n = value << F;
  if (n === 0n) return 0n;
  let x = 1n << BigInt((bitLength(n) >> 1) + 1);
  for (;;) {
    const next = (x + n / x) >> 1n;
    if (next >= x) return x;
    x = next;
  }
}

/** atan(1/n) in fixed point (Machin's formula needs n = 5 and 239). */
function arcTangentOfInverse(n: bigint): bigint {
  let power = ONE / n;
  let sum = power;
  const square = n * n;
  for (let k = 1n; power !== 0n; k++) {
    power /= square;
    sum += (k & 1n) === 1n ? -power / (2n * k + 1n) : power / (2n * k + 1n);
  }
  return sum;
}

/** ln 2 = 2·atanh(1/3) in fixed point. */
function logarithmOfTwo(): bigint {
  let power = ONE / 3n;
  let sum = power;
  for (let k = 1n; power !== 0n; k++) {
    power /= 9n;
    sum += power / (2n * k + 1n);
  }
  return 2n * sum;
}

const PI = fromFixed(16n * arcTangentOfInverse(5n) - 4n * arcTangentOfInverse(239n));
const HALF_PI: Big = { m: PI.m, e: PI.e - 1 };
const LN2 = fromFixed(logarithmOfTwo());
/** The 66-bit pi the processor reduces with, halved: PI66_HALF·2^-65 (SDM vol. 1, 8.3.10). */
const PI66_HALF = 0x3243f6a8885a308d3n;

/** The finite nonzero operand as sign and Big magnitude. */
function magnitudeOf(value: ExtendedBits): Big {
  const field = value.signExponent & 0x7fff;
  const significand = (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
  return { m: significand, e: (field === 0 ? 1 : field) - EXTENDED_BIAS - 63 };
}

function signOf(value: ExtendedBits): number {
  return (value.signExponent >>> 15) & 1;
}

/**
 * Rounds sign·value to the register format (64-bit precision whatever PC
 * says) and reports PE in every case (and so UE for a tiny exact result).
 * `exact` says whether value is the exact result; otherwise it is known to be
 * inexact, so the sticky bit is set. `exactTail`, when given, receives the
 * part of an ulp (of a 64-bit significand) by which the magnitude exceeds its
 * truncation: how close the result came to a rounding boundary.
 */
function roundResult(value: Big, sign: number, exact: boolean, control: number, result: SoftFloatResult, exactTail: Float64Array | undefined): number {
  const magnitude = value.m < 0n ? -value.m : value.m;
  const length = bitLength(magnitude);
  let top: bigint;
  let sticky = !exact;
  if (length > 96) {
    const drop = BigInt(length - 96);
    top = magnitude >> drop;
    if (top << drop !== magnitude) sticky = true;
  } else {
    top = magnitude << BigInt(96 - length);
  }
  result.workSign = sign ^ (value.m < 0n ? 1 : 0);
  result.workExponent = value.e + length - 1;
  result.workHigh = Number(top >> 64n) >>> 0;
  result.workLow = Number((top >> 32n) & 0xffffffffn) >>> 0;
  result.workExtra = (Number(top & 0xffffffffn) | (sticky ? 1 : 0)) >>> 0;
  if (exactTail !== undefined) exactTail[0] = result.workExtra / 2 ** 32;
  const flags = roundPackExtended(result, control, 64) | Exception.precision;
  return exact && (result.signExponent & 0x7fff) === 0 ? flags | Exception.underflow : flags;
}

function copyToSecond(result: SoftFloatResult): void {
  result.second.signExponent = result.signExponent;
  result.second.high = result.high;
  result.second.low = result.low;
}

function writeSecond(result: SoftFloatResult, signExponent: number, high: number, low: number): void {
  result.second.signExponent = signExponent;
  result.second.high = high;
  result.second.low = low;
}

/** Unsupported formats give the indefinite with IE, NaNs propagate: -1 when the operand is an ordinary value. */
function specialOperand(a: ExtendedBits, aClass: number, result: SoftFloatResult): number {
  return specialOperands(result, a, aClass, a, aClass);
}

/** The binary order of a nonzero magnitude: it lies in [2^(order-1), 2^order). */
function orderOf(value: Big): number {
  return value.e + bitLength(value.m);
}

/** Compares two nonzero magnitudes: negative, zero or positive as |a| - |b|. */
function compareMagnitudes(a: Big, b: Big): number {
  const difference = orderOf(a) - orderOf(b);
  if (difference !== 0) return difference;
  const e = Math.min(a.e, b.e);
  const aligned = (a.m << BigInt(a.e - e)) - (b.m << BigInt(b.e - e));
  return aligned < 0n ? -1 : aligned > 0n ? 1 : 0;
}

const BIG_ONE: Big = { m: 1n, e: 0 };

// ---- sine, cosine, tangent ----

/**
 * sin r and cos r for |r| <= pi/4: r + r³·Σ and 1 + r²·Σ with Taylor series in
 * r², so that the correction of a tiny r keeps its sign.
 */
function sineCosine(r: Big): { sine: Big; cosine: Big } {
  const square = multiply(r, r);
  const w = toFixed(square);
  let sineTerm = -ONE / 6n;
  let cosineTerm = -ONE / 2n;
  let sine = sineTerm;
  let cosine = cosineTerm;
  for (let n = 2n; sineTerm !== 0n || cosineTerm !== 0n; n++) {
    sineTerm = -multiplyFixed(sineTerm, w) / (2n * n * (2n * n + 1n));
    cosineTerm = -multiplyFixed(cosineTerm, w) / ((2n * n - 1n) * 2n * n);
    sine += sineTerm;
    cosine += cosineTerm;
  }
  return { sine: add(r, multiply(multiply(r, square), fromFixed(sine))), cosine: add(BIG_ONE, multiply(square, fromFixed(cosine))) };
}

/**
 * FSIN, FCOS, FPTAN, FSINCOS of a. `result` receives what replaces ST(0)
 * (sine, cosine, tangent, sine), `result.second` what FPTAN (1.0) and FSINCOS
 * (the cosine) push. Returns the exception bits plus C1 (of the tangent or
 * sine), or OUT_OF_RANGE alone when |a| >= 2^63. With an unmasked IE or DE
 * nothing is to be stored. `exactTail` (tests): see roundResult; FSINCOS puts
 * the cosine's in [1].
 */
export function extendedTrigonometric(a: ExtendedBits, operation: number, control: number, result: SoftFloatResult, exactTail?: Float64Array): number {
  const aClass = classifyExtended(a);
  const special = specialOperand(a, aClass, result);
  if (special >= 0 || aClass === ExtendedClass.infinity) {
    if (special < 0) writeIndefinite(result);
    copyToSecond(result);
    return special >= 0 ? special : Exception.invalid;
  }
  const sign = signOf(a);
  if (aClass === ExtendedClass.zero) {
    if (operation === Trigonometric.cosine) writeSecondAsOne(result, true);
    else {
      writeZero(result, sign);
      writeSecondAsOne(result, false);
    }
    return 0;
  }
  if ((a.signExponent & 0x7fff) - EXTENDED_BIAS >= 63) return OUT_OF_RANGE;
  const denormal = aClass === ExtendedClass.denormal ? Exception.denormal : 0;
  if ((denormal & ~control) !== 0) return Exception.denormal;
  const x = magnitudeOf(a);
  // The nearest multiple k of pi66/2; r = |x| - k·pi66/2 is exact.
  let r: Big = x;
  let quadrant = 0;
  if (x.e + 65 >= 0) {
    const scaled = x.m << BigInt(x.e + 65);
    const k = (scaled + (PI66_HALF >> 1n)) / PI66_HALF;
    r = { m: scaled - k * PI66_HALF, e: -65 };
    quadrant = Number(k & 3n);
  }
  const { sine, cosine } = sineCosine(r);
  // sin(r + k·pi/2) and cos(r + k·pi/2) by quadrant; sin and tan are odd, cos even.
  const sineValue = [sine, cosine, negate(sine), negate(cosine)][quadrant]!;
  const cosineValue = [cosine, negate(sine), negate(cosine), sine][quadrant]!;
  switch (operation) {
    case Trigonometric.sine:
      return denormal | roundResult(sineValue, sign, false, control, result, exactTail);
    case Trigonometric.cosine:
      return denormal | roundResult(cosineValue, 0, false, control, result, exactTail);
    case Trigonometric.tangent: {
      const flags = roundResult(quadrant === 0 && orderOf(r) < -40 ? smallTangent(r) : divide(sineValue, cosineValue), sign, false, control, result, exactTail);
      writeSecondAsOne(result, false);
      return denormal | flags;
    }
    default: {
      const cosineFlags = roundResult(cosineValue, 0, false, control, result, exactTail);
      copyToSecond(result);
      if (exactTail !== undefined) exactTail[1] = exactTail[0]!;
      const sineFlags = roundResult(sineValue, sign, false, control, result, exactTail);
      return denormal | (cosineFlags & ~Exception.roundedUp) | sineFlags;
    }
  }
}

/**
 * tan r = r + r³·(1/3 + 2r²/15 + 17r⁴/315 + 62r⁶/2835 + …) for |r| < 2^-40, where
 * sin r / cos r would lose which side of r the result lies on.
 */
function smallTangent(r: Big): Big {
  const square = multiply(r, r);
  const w = toFixed(square);
  const series = ONE / 3n + (2n * w) / 15n + (17n * multiplyFixed(w, w)) / 315n;
  return add(r, multiply(multiply(r, square), fromFixed(series)));
}

/** +1.0 into result.second, or into result itself when `primary`. */
function writeSecondAsOne(result: SoftFloatResult, primary: boolean): void {
  if (primary) {
    result.signExponent = EXTENDED_BIAS;
    result.high = 0x80000000;
    result.low = 0;
  } else writeSecond(result, EXTENDED_BIAS, 0x80000000, 0);
}

// ---- 2^x - 1 ----

/** F2XM1: 2^a - 1 for -1 <= a <= 1 (outside that the host returns a with PE). */
export function extendedPowerMinusOne(a: ExtendedBits, control: number, result: SoftFloatResult, exactTail?: Float64Array): number {
  const aClass = classifyExtended(a);
  const special = specialOperand(a, aClass, result);
  if (special >= 0) return special;
  const sign = signOf(a);
  if (aClass === ExtendedClass.zero || (aClass === ExtendedClass.infinity && sign === 0)) {
    copyInto(result, a);
    return 0;
  }
  if (aClass === ExtendedClass.infinity) {
    result.signExponent = 0x8000 | EXTENDED_BIAS;
    result.high = 0x80000000;
    result.low = 0;
    return 0;
  }
  const denormal = aClass === ExtendedClass.denormal ? Exception.denormal : 0;
  if ((denormal & ~control) !== 0) return Exception.denormal;
  const x = magnitudeOf(a);
  if (compareMagnitudes(x, BIG_ONE) > 0) {
    copyInto(result, a);
    return Exception.precision;
  }
  const signed = sign === 1 ? negate(x) : x;
  // ±1 give the exact -1/2 and 1 (still with PE, as every computed result).
  if (compareMagnitudes(x, BIG_ONE) === 0) return roundResult(sign === 1 ? { m: -1n, e: -1 } : BIG_ONE, 0, true, control, result, exactTail);
  // 2^x - 1 = expm1(t) = t + t²·Σ t^(n-2)/n! with t = x·ln 2.
  const t = multiply(signed, LN2);
  const tFixed = toFixed(t);
  let term = ONE / 2n;
  let sum = term;
  for (let n = 3n; term !== 0n; n++) {
    term = multiplyFixed(term, tFixed) / n;
    sum += term;
  }
  return denormal | roundResult(add(t, multiply(multiply(t, t), fromFixed(sum))), 0, false, control, result, exactTail);
}

function copyInto(result: SoftFloatResult, a: ExtendedBits): void {
  result.signExponent = a.signExponent;
  result.high = a.high;
  result.low = a.low;
}

// ---- logarithms ----

/** 2·atanh(s)/ln 2 = log2((1 + s)/(1 - s)) for |s| <= 0.18, with atanh s = s + s³·Σ s^(2k-2)/(2k+1). */
function logarithmSeries(s: Big): Big {
  const square = multiply(s, s);
  const w = toFixed(square);
  let power = ONE;
  let sum = ONE / 3n;
  for (let k = 2n; power !== 0n; k++) {
    power = multiplyFixed(power, w);
    sum += power / (2n * k + 1n);
  }
  const atanh = add(s, multiply(multiply(s, square), fromFixed(sum)));
  return divide({ m: atanh.m, e: atanh.e + 1 }, LN2);
}

/** log2 of a positive value: the exponent plus the series on a significand in [sqrt(1/2), sqrt(2)). */
function logarithm(value: Big): { value: Big; exact: boolean } {
  const length = bitLength(value.m);
  // value = significand·2^exponent with significand in [1, 2).
  let exponent = value.e + length - 1;
  let significand: Big = { m: value.m, e: 1 - length };
  // 0xB504F334 / 2^31 is just above sqrt(2).
  if (toFixed(significand) > (0xb504f334n << (F - 31n))) {
    significand = { m: significand.m, e: significand.e - 1 };
    exponent += 1;
  }
  const integerPart: Big = { m: BigInt(exponent), e: 0 };
  if (significand.m === 1n << BigInt(-significand.e)) return { value: integerPart, exact: true };
  const s = divide(add(significand, negate(BIG_ONE)), add(significand, BIG_ONE));
  return { value: add(integerPart, logarithmSeries(s)), exact: false };
}

/**
 * FYL2X (plusOne false): y·log2(x); FYL2XP1 (plusOne true): y·log2(1 + x).
 * x is ST(0), y is ST(1); the result replaces ST(1).
 */
export function extendedLogarithm(x: ExtendedBits, y: ExtendedBits, plusOne: boolean, control: number, result: SoftFloatResult, exactTail?: Float64Array): number {
  const xClass = classifyExtended(x);
  const yClass = classifyExtended(y);
  const special = specialOperands(result, x, xClass, y, yClass);
  if (special >= 0) return special;
  const xSign = signOf(x);
  const ySign = signOf(y);
  const xZero = xClass === ExtendedClass.zero;
  const yZero = yClass === ExtendedClass.zero;
  const xInfinite = xClass === ExtendedClass.infinity;
  const yInfinite = yClass === ExtendedClass.infinity;
  const denormal = xClass === ExtendedClass.denormal || yClass === ExtendedClass.denormal ? Exception.denormal : 0;
  const invalid = (): number => {
    writeIndefinite(result);
    return Exception.invalid;
  };
  if (xInfinite && xSign === 1) return invalid();
  if (xInfinite) {
    if (yZero) return invalid();
    if ((denormal & ~control) !== 0) return Exception.denormal;
    writeInfinity(result, ySign);
    return denormal;
  }
  const magnitude = xZero ? undefined : magnitudeOf(x);
  // The sign of the logarithm (1 negative), or -1 when it is zero.
  let logSign: number;
  if (plusOne) {
    if (xZero) logSign = -1;
    else if (xSign === 1 && compareMagnitudes(magnitude!, BIG_ONE) >= 0) {
      // x <= -1: outside the domain (undefined in the SDM); what the AMD host does.
      if (yZero || yInfinite) {
        copyInto(result, y);
        result.signExponent ^= 0x8000;
        return 0;
      }
      if ((denormal & ~control) !== 0) return Exception.denormal;
      copyInto(result, x);
      return denormal | Exception.precision;
    } else logSign = xSign;
  } else {
    if (xSign === 1 && !xZero) return invalid();
    if (xZero) {
      if (yZero) return invalid();
      writeInfinity(result, ySign ^ 1);
      return yInfinite ? 0 : Exception.zeroDivide;
    }
    const isOne = (x.signExponent & 0x7fff) === EXTENDED_BIAS && x.high === 0x80000000 && x.low === 0;
    logSign = isOne ? -1 : (x.signExponent & 0x7fff) < EXTENDED_BIAS ? 1 : 0;
  }
  if (logSign < 0) {
    // log2(1) = +0 (FYL2X) or log2(1 ± 0) = ±0 (FYL2XP1).
    if (yInfinite) return invalid();
    if ((denormal & ~control) !== 0) return Exception.denormal;
    writeZero(result, ySign ^ (plusOne ? xSign : 0));
    return denormal;
  }
  if ((denormal & ~control) !== 0) return Exception.denormal;
  if (yZero || yInfinite) {
    if (yZero) writeZero(result, ySign ^ logSign);
    else writeInfinity(result, ySign ^ logSign);
    return denormal;
  }
  let log: { value: Big; exact: boolean };
  const signedX: Big = xSign === 1 ? negate(magnitude!) : magnitude!;
  if (plusOne && orderOf(magnitude!) <= -2) {
    // |x| < 1/4: s = x/(2 + x) keeps the relative precision of tiny x.
    log = { value: logarithmSeries(divide(signedX, add({ m: 2n, e: 0 }, signedX))), exact: false };
  } else log = logarithm(plusOne ? add(BIG_ONE, signedX) : magnitude!);
  const product = multiply(magnitudeOf(y), log.value);
  return denormal | roundResult(product, ySign, log.exact, control, result, exactTail);
}

// ---- arctangent ----

/** atan z for 0 < z <= 1: halve the angle until z < 1/16, then the Taylor series. */
function arcTangent(z: Big): Big {
  let value = z;
  let doublings = 0;
  while (toFixed(value) > ONE >> 4n) {
    const fixed = toFixed(value);
    value = fromFixed((fixed << F) / (ONE + squareRootFixed(ONE + multiplyFixed(fixed, fixed))));
    doublings += 1;
  }
  // atan v = v + v³·Σ (-1)^k v^(2k-2)/(2k+1).
  const square = multiply(value, value);
  const w = toFixed(square);
  let power = -ONE;
  let sum = -ONE / 3n;
  for (let k = 2n; power !== 0n; k++) {
    power = -multiplyFixed(power, w);
    sum += power / (2n * k + 1n);
  }
  const series = add(value, multiply(multiply(value, square), fromFixed(sum)));
  return { m: series.m, e: series.e + doublings };
}

/** FPATAN: atan2(y, x) = the angle of (x, y); x is ST(0), y is ST(1); the result replaces ST(1). */
export function extendedArcTangent(y: ExtendedBits, x: ExtendedBits, control: number, result: SoftFloatResult, exactTail?: Float64Array): number {
  const xClass = classifyExtended(x);
  const yClass = classifyExtended(y);
  const special = specialOperands(result, x, xClass, y, yClass);
  if (special >= 0) return special;
  const denormal = xClass === ExtendedClass.denormal || yClass === ExtendedClass.denormal ? Exception.denormal : 0;
  if ((denormal & ~control) !== 0) return Exception.denormal;
  const xSign = signOf(x);
  const ySign = signOf(y);
  const quarter: Big = { m: PI.m, e: PI.e - 2 };
  let angle: Big;
  if (yClass === ExtendedClass.zero || (xClass === ExtendedClass.infinity && yClass !== ExtendedClass.infinity)) {
    if (xSign === 0) {
      writeZero(result, ySign);
      return denormal;
    }
    angle = PI;
  } else if (yClass === ExtendedClass.infinity) {
    if (xClass !== ExtendedClass.infinity) angle = HALF_PI;
    else angle = xSign === 0 ? quarter : add(PI, negate(quarter));
  } else if (xClass === ExtendedClass.zero) {
    angle = HALF_PI;
  } else {
    const xMagnitude = magnitudeOf(x);
    const yMagnitude = magnitudeOf(y);
    angle = compareMagnitudes(yMagnitude, xMagnitude) <= 0 ? arcTangent(divide(yMagnitude, xMagnitude)) : add(HALF_PI, negate(arcTangent(divide(xMagnitude, yMagnitude))));
    if (xSign === 1) angle = add(PI, negate(angle));
  }
  return denormal | roundResult(angle, ySign, false, control, result, exactTail);
}
