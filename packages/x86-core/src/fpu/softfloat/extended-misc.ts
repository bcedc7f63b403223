import { classifyExtended, ExtendedClass, isNaNClass } from './extended-classify.js';
import { exponentOf, extendedAdd, extendedSubtract, loadWork, normalizedHigh, normalizedLow, propagateNaN, specialOperands, writeInfinity, writeZero } from './extended-arithmetic.js';
import { normalizeWork, roundPackExtended, roundWork, shiftWorkRightJamming, writeIndefinite } from './round.js';
import { ControlWord, EXTENDED_BIAS, Exception, type ExtendedBits, type SoftFloatResult, WRAP_BIAS } from './types.js';

/* FRNDINT, FXTRACT, FPREM/FPREM1 and FSCALE on 80-bit values. */

/** FRNDINT before the DE trap check. */
function roundToInteger(a: ExtendedBits, control: number, result: SoftFloatResult): number {
  const aClass = classifyExtended(a);
  if (aClass === ExtendedClass.unsupported) {
    writeIndefinite(result);
    return Exception.invalid;
  }
  if (isNaNClass(aClass)) return propagateNaN(result, a, aClass, a, ExtendedClass.zero);
  if (aClass === ExtendedClass.zero || aClass === ExtendedClass.infinity) {
    result.signExponent = a.signExponent;
    result.high = a.high;
    result.low = a.low;
    return 0;
  }
  const denormal = aClass === ExtendedClass.denormal ? Exception.denormal : 0;
  const exponent = exponentOf(a);
  if (exponent >= 63) {
    result.signExponent = a.signExponent;
    result.high = a.high;
    result.low = a.low;
    return denormal;
  }
  loadWork(result, a);
  shiftWorkRightJamming(result, 63 - exponent);
  const report = roundWork(result, 64, (control >> 10) & 3);
  const flags = denormal | (report & 1 ? Exception.precision : 0) | (report & 2 ? Exception.roundedUp : 0);
  const sign = (a.signExponent >>> 15) & 1;
  if (result.workHigh === 0 && result.workLow === 0) {
    writeZero(result, sign);
    return flags;
  }
  result.workExponent = 63;
  normalizeWork(result);
  result.signExponent = (sign << 15) | (result.workExponent + EXTENDED_BIAS);
  result.high = result.workHigh;
  result.low = result.workLow;
  return flags;
}

/** FXTRACT before the DE trap check. */
function extract(a: ExtendedBits, result: SoftFloatResult): number {
  const aClass = classifyExtended(a);
  const second = result.second;
  if (aClass === ExtendedClass.unsupported) {
    writeIndefinite(result);
    second.signExponent = result.signExponent;
    second.high = result.high;
    second.low = result.low;
    return Exception.invalid;
  }
  if (isNaNClass(aClass)) {
    const flags = propagateNaN(result, a, aClass, a, ExtendedClass.zero);
    second.signExponent = result.signExponent;
    second.high = result.high;
    second.low = result.low;
    return flags;
  }
  const sign = (a.signExponent >>> 15) & 1;
  if (aClass === ExtendedClass.zero) {
    writeInfinity(result, 1);
    second.signExponent = result.signExponent;
    second.high = result.high;
    second.low = result.low;
    writeZero(result, sign);
    return Exception.zeroDivide;
  }
  if (aClass === ExtendedClass.infinity) {
    writeInfinity(result, sign);
    second.signExponent = 0x7fff;
    second.high = 0x80000000;
    second.low = 0;
    return 0;
  }
  const exponent = exponentOf(a);
  // The exponent as an exact extended integer.
  if (exponent === 0) {
    second.signExponent = 0;
    second.high = second.low = 0;
  } else {
    const magnitude = Math.abs(exponent);
    const shift = Math.clz32(magnitude);
    second.signExponent = ((exponent < 0 ? 1 : 0) << 15) | (31 - shift + EXTENDED_BIAS);
    second.high = (magnitude << shift) >>> 0;
    second.low = 0;
  }
  result.signExponent = (sign << 15) | EXTENDED_BIAS;
  result.high = normalizedHigh(a);
  result.low = normalizedLow(a);
  return aClass === ExtendedClass.denormal ? Exception.denormal : 0;
}

function copy(value: ExtendedBits, result: SoftFloatResult): void {
  result.signExponent = value.signExponent;
  result.high = value.high;
  result.low = value.low;
}

/**
 * FPREM returning its dividend: a pseudo-denormal comes back with its true
 * exponent field 1, and with UE unmasked a denormal comes back normalized with
 * its exponent wrapped and UE, as the host shows.
 */
function copyDividend(value: ExtendedBits, result: SoftFloatResult, control: number): number {
  copy(value, result);
  if ((value.signExponent & 0x7fff) !== 0) return 0;
  if (value.high >>> 31 === 1) {
    result.signExponent |= 1;
    return 0;
  }
  if ((value.high | value.low) === 0 || (control & Exception.underflow) !== 0) return 0;
  loadWork(result, value);
  result.signExponent = (value.signExponent & 0x8000) | (result.workExponent + EXTENDED_BIAS + WRAP_BIAS);
  result.high = result.workHigh;
  result.low = result.workLow;
  return Exception.underflow;
}

/** The condition bits FPREM reports: C2 (incomplete) and the quotient's low bits in C0 (q2), C3 (q1), C1 (q0). */
function quotientConditions(quotientLowBits: number): number {
  return ((quotientLowBits & 4) !== 0 ? 0x100 : 0) | ((quotientLowBits & 2) !== 0 ? 0x4000 : 0) | ((quotientLowBits & 1) !== 0 ? 0x200 : 0);
}

/** FPREM/FPREM1 before the DE trap check. */
function remainder(a: ExtendedBits, b: ExtendedBits, nearest: boolean, result: SoftFloatResult, control: number): number {
  const aClass = classifyExtended(a);
  const bClass = classifyExtended(b);
  const special = specialOperands(result, a, aClass, b, bClass);
  if (special >= 0) return special;
  if (aClass === ExtendedClass.infinity || bClass === ExtendedClass.zero) {
    writeIndefinite(result);
    return Exception.invalid;
  }
  const denormal = aClass === ExtendedClass.denormal || bClass === ExtendedClass.denormal ? Exception.denormal : 0;
  if (aClass === ExtendedClass.zero || bClass === ExtendedClass.infinity) return denormal | copyDividend(a, result, control);
  const aExponent = exponentOf(a);
  const bExponent = exponentOf(b);
  let difference = aExponent - bExponent;
  const bHigh = normalizedHigh(b);
  const bLow = normalizedLow(b);
  if (difference < 0) {
    // |a| < |b|: quotient 0, except FPREM1 rounds |a| > |b|/2 up to quotient 1.
    const aHigh = normalizedHigh(a);
    const aLow = normalizedLow(a);
    if (!nearest || difference < -1 || aHigh < bHigh || (aHigh === bHigh && aLow <= bLow)) return denormal | copyDividend(a, result, control);
    // a - b when the signs agree, else a + b: |b| - |a| with the sign flipped (exact).
    const sameSign = ((a.signExponent ^ b.signExponent) & 0x8000) === 0;
    // Exact at 64 bits; only the underflow mask matters.
    const exactControl = ControlWord.default & ~(~control & Exception.underflow);
    const flags = sameSign ? extendedSubtract(a, b, exactControl, result) : extendedAdd(a, b, exactControl, result);
    return denormal | (flags & Exception.underflow) | quotientConditions(1);
  }
  let incomplete = false;
  if (difference >= 64) {
    // A partial remainder, reducing the exponent difference into 32-63 as the SDM allows.
    incomplete = true;
    difference = 32 + (difference % 32);
  }
  // Long division of sigA x 2^difference by sigB: remainder (65 bits: top, high, low) and quotient low bits.
  let top = 0;
  let high = normalizedHigh(a);
  let low = normalizedLow(a);
  let quotient = 0;
  for (let step = 0; step <= difference; step++) {
    if (step > 0) {
      top = high >>> 31;
      high = ((high << 1) | (low >>> 31)) >>> 0;
      low = (low << 1) >>> 0;
    }
    const fits = top !== 0 || high > bHigh || (high === bHigh && low >= bLow);
    quotient = (quotient << 1) & 0xffff;
    if (fits) {
      let newLow = low - bLow;
      const borrow = newLow < 0 ? 1 : 0;
      newLow += borrow * 0x100000000;
      high = (high - bHigh - borrow + 0x100000000) % 0x100000000;
      low = newLow;
      top = 0;
      quotient |= 1;
    }
  }
  let sign = (a.signExponent >>> 15) & 1;
  if (nearest && !incomplete) {
    // Round the quotient to nearest even: compare 2R with B.
    const twiceTop = high >>> 31;
    const twiceHigh = ((high << 1) | (low >>> 31)) >>> 0;
    const twiceLow = (low << 1) >>> 0;
    const greater = twiceTop !== 0 || twiceHigh > bHigh || (twiceHigh === bHigh && twiceLow > bLow);
    const equal = twiceTop === 0 && twiceHigh === bHigh && twiceLow === bLow;
    if (greater || (equal && (quotient & 1) !== 0)) {
      let newLow = bLow - low;
      const borrow = newLow < 0 ? 1 : 0;
      newLow += borrow * 0x100000000;
      high = (bHigh - high - borrow + 0x100000000) % 0x100000000;
      low = newLow;
      quotient += 1;
      sign ^= 1;
    }
  }
  // The remainder R is in units of b's last significand bit (2^(bExponent - 63)) or, when partial, of a's scaled down.
  const unitExponent = (incomplete ? aExponent - difference : bExponent) - 63;
  if (high === 0 && low === 0) {
    writeZero(result, sign);
    return denormal | (incomplete ? 0x400 : quotientConditions(quotient));
  }
  result.workSign = sign;
  result.workHigh = high;
  result.workLow = low;
  result.workExtra = 0;
  result.workExponent = unitExponent + 63;
  normalizeWork(result);
  let field = result.workExponent + EXTENDED_BIAS;
  let underflow = 0;
  if (field < 1 && (control & Exception.underflow) === 0) {
    // Unmasked underflow: the exact remainder with its exponent wrapped, as the host shows.
    field += WRAP_BIAS;
    underflow = Exception.underflow;
  } else if (field < 1) {
    // An exact denormal remainder.
    shiftWorkRightJamming(result, 1 - field);
    field = 0;
  }
  result.signExponent = (sign << 15) | field;
  result.high = result.workHigh;
  result.low = result.workLow;
  return denormal | underflow | (incomplete ? 0x400 : quotientConditions(quotient));
}

/** FSCALE before the DE trap check. */
function scale(a: ExtendedBits, b: ExtendedBits, control: number, result: SoftFloatResult): number {
  const aClass = classifyExtended(a);
  const bClass = classifyExtended(b);
  const special = specialOperands(result, a, aClass, b, bClass);
  if (special >= 0) return special;
  const aSign = (a.signExponent >>> 15) & 1;
  const bSign = (b.signExponent >>> 15) & 1;
  const aDenormal = aClass === ExtendedClass.denormal ? Exception.denormal : 0;
  const bDenormal = bClass === ExtendedClass.denormal ? Exception.denormal : 0;
  if (aClass === ExtendedClass.infinity) {
    if (bClass === ExtendedClass.infinity && bSign) {
      writeIndefinite(result);
      return Exception.invalid;
    }
    copy(a, result);
    return bDenormal;
  }
  if (aClass === ExtendedClass.zero) {
    if (bClass === ExtendedClass.infinity && !bSign) {
      writeIndefinite(result);
      return Exception.invalid;
    }
    copy(a, result);
    return bDenormal;
  }
  if (bClass === ExtendedClass.infinity) {
    if (bSign) writeZero(result, aSign);
    else writeInfinity(result, aSign);
    return aDenormal;
  }
  // trunc(b), clamped: any scale beyond +-65536 over- or underflows every finite a alike.
  let scale = 0;
  if (bClass !== ExtendedClass.zero) {
    const bExponent = exponentOf(b);
    if (bExponent >= 17) scale = 65536;
    else if (bExponent >= 0) scale = Math.floor(normalizedHigh(b) / 2 ** (31 - bExponent));
    if (bSign) scale = -scale;
  }
  loadWork(result, a);
  result.workExponent += scale;
  return aDenormal | bDenormal | roundPackExtended(result, control, 64);
}

/** With DE unmasked the x87 stops before computing: it reports DE alone (no condition codes) and stores nothing. */
export function x87ReportedFlags(flags: number, control: number): number {
  return (flags & Exception.denormal & ~control) !== 0 ? Exception.denormal : flags;
}

/** FRNDINT: rounds to an integer under the rounding control. Returns exception bits plus roundedUp (C1). */
export function extendedRoundToInteger(a: ExtendedBits, control: number, result: SoftFloatResult): number {
  return x87ReportedFlags(roundToInteger(a, control, result), control);
}

/**
 * FXTRACT: result gets the significand (exponent 0x3fff, the sign kept) and
 * result.second the unbiased exponent as an extended value. A zero gives
 * -infinity as the exponent with ZE.
 */
export function extendedExtract(a: ExtendedBits, result: SoftFloatResult, control: number = ControlWord.default): number {
  return x87ReportedFlags(extract(a, result), control);
}

/**
 * FPREM (nearest false: the quotient truncates) and FPREM1 (nearest true: it
 * rounds to nearest even) of a (ST0) by b (ST1). The remainder goes to result;
 * the return value holds exception bits and the condition bits C0/C1/C3
 * (quotient bits) and C2 (partial remainder: run again).
 */
export function extendedRemainder(a: ExtendedBits, b: ExtendedBits, nearest: boolean, result: SoftFloatResult, control: number = ControlWord.default): number {
  return x87ReportedFlags(remainder(a, b, nearest, result, control), control);
}

/** FSCALE: a x 2^trunc(b), rounded to the full 64-bit significand under the rounding control. */
export function extendedScale(a: ExtendedBits, b: ExtendedBits, control: number, result: SoftFloatResult): number {
  return x87ReportedFlags(scale(a, b, control, result), control);
}
