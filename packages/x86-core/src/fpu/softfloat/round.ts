import { EXTENDED_BIAS, Exception, INDEFINITE_HIGH, INDEFINITE_SIGN_EXPONENT, Rounding, type SoftFloatResult, WRAP_BIAS } from './types.js';

/*
 * Rounding works on the result's scratch significand workHigh:workLow:workExtra
 * (96 bits, bit 95 is the integer bit when normalized; bit 0 of workExtra is a
 * sticky bit) with value 1.f x 2^workExponent. Every operation computes at
 * least 66 correct bits plus sticky before rounding once, so results are exact.
 */

/** roundWork's report bits. */
const INEXACT = 1;
const INCREMENTED = 2;
const CARRY = 4;

/** Leading zeros of the 64-bit value high:low (64 when zero). */
export function leadingZeros64(high: number, low: number): number {
  return high !== 0 ? Math.clz32(high) : 32 + Math.clz32(low);
}

/** Shifts the scratch significand right by count, ORing every lost bit into the sticky bit. */
export function shiftWorkRightJamming(result: SoftFloatResult, count: number): void {
  if (count <= 0) return;
  let high = result.workHigh;
  let low = result.workLow;
  let extra = result.workExtra;
  let sticky = 0;
  if (count >= 96) {
    sticky = high | low | extra;
    high = low = extra = 0;
  } else {
    while (count >= 32) {
      sticky |= extra;
      extra = low;
      low = high;
      high = 0;
      count -= 32;
    }
    if (count > 0) {
      sticky |= extra << (32 - count);
      extra = ((extra >>> count) | (low << (32 - count))) >>> 0;
      low = ((low >>> count) | (high << (32 - count))) >>> 0;
      high = high >>> count;
    }
  }
  result.workHigh = high;
  result.workLow = low;
  result.workExtra = (extra | (sticky !== 0 ? 1 : 0)) >>> 0;
}

/** Shifts the scratch significand left until its top bit is set, adjusting the exponent. The significand must not be zero. */
export function normalizeWork(result: SoftFloatResult): void {
  while (result.workHigh === 0) {
    result.workHigh = result.workLow;
    result.workLow = result.workExtra & ~1;
    result.workExtra = result.workExtra & 1;
    result.workExponent -= 32;
  }
  const count = Math.clz32(result.workHigh);
  if (count === 0) return;
  result.workHigh = ((result.workHigh << count) | (result.workLow >>> (32 - count))) >>> 0;
  result.workLow = ((result.workLow << count) | (result.workExtra >>> (32 - count))) >>> 0;
  // The sticky bit stays the lowest bit: it stands for bits below the window.
  const sticky = result.workExtra & 1;
  result.workExtra = ((result.workExtra & ~1) << count | sticky) >>> 0;
  result.workExponent -= count;
}

/**
 * Rounds the scratch significand to its top `precision` bits (1-64) under the
 * rounding control, in place; the discarded bits become zero. On a carry out of
 * bit 95 the significand becomes 1.0 and CARRY is reported (the caller adjusts
 * the exponent).
 */
export function roundWork(result: SoftFloatResult, precision: number, rounding: number): number {
  let high = result.workHigh;
  let low = result.workLow;
  const extra = result.workExtra;
  let half: number;
  let rest: boolean;
  let lsb: number;
  if (precision === 64) {
    half = extra >>> 31;
    rest = (extra & 0x7fffffff) !== 0;
    lsb = low & 1;
  } else if (precision > 32) {
    const discarded = 64 - precision;
    half = (low >>> (discarded - 1)) & 1;
    rest = (low & ((1 << (discarded - 1)) - 1)) !== 0 || extra !== 0;
    lsb = (low >>> discarded) & 1;
  } else if (precision === 32) {
    half = low >>> 31;
    rest = (low & 0x7fffffff) !== 0 || extra !== 0;
    lsb = high & 1;
  } else {
    const discarded = 32 - precision;
    half = (high >>> (discarded - 1)) & 1;
    rest = (high & ((1 << (discarded - 1)) - 1)) !== 0 || low !== 0 || extra !== 0;
    lsb = (high >>> discarded) & 1;
  }
  const inexact = half !== 0 || rest;
  let increment = false;
  if (inexact) {
    if (rounding === Rounding.nearestEven) increment = half !== 0 && (rest || lsb !== 0);
    else if (rounding === Rounding.up) increment = result.workSign === 0;
    else if (rounding === Rounding.down) increment = result.workSign !== 0;
  }
  let report = inexact ? INEXACT : 0;
  // Truncate, then add one unit in the last kept place.
  if (precision >= 64) {
    if (increment) {
      low = (low + 1) >>> 0;
      if (low === 0) high += 1;
    }
  } else if (precision > 32) {
    const unit = 2 ** (64 - precision);
    low = (low - (low % unit)) + (increment ? unit : 0);
    if (low >= 0x100000000) {
      low -= 0x100000000;
      high += 1;
    }
  } else {
    const unit = 2 ** (32 - precision);
    low = 0;
    high = high - (high % unit) + (increment ? unit : 0);
  }
  if (increment) report |= INCREMENTED;
  if (high >= 0x100000000) {
    high = 0x80000000;
    low = 0;
    report |= CARRY;
  }
  result.workHigh = high >>> 0;
  result.workLow = low >>> 0;
  result.workExtra = 0;
  return report;
}

/** Whether the scratch significand would carry out when rounded at full exponent range (for tininess after rounding). */
function wouldCarry(result: SoftFloatResult, precision: number, rounding: number): boolean {
  const high = result.workHigh;
  const low = result.workLow;
  const extra = result.workExtra;
  const carried = (roundWork(result, precision, rounding) & CARRY) !== 0;
  result.workHigh = high;
  result.workLow = low;
  result.workExtra = extra;
  return carried;
}

/** The x87 significand precision selected by control word bits 8-9 (the reserved value 1 acts as 64). */
export function x87Precision(control: number): number {
  const field = (control >> 8) & 3;
  return field === 0 ? 24 : field === 2 ? 53 : 64;
}

function writeExtended(result: SoftFloatResult, sign: number, exponentField: number): void {
  result.signExponent = (sign << 15) | exponentField;
  result.high = result.workHigh;
  result.low = result.workLow;
}

export function writeIndefinite(result: SoftFloatResult): void {
  result.signExponent = INDEFINITE_SIGN_EXPONENT;
  result.high = INDEFINITE_HIGH;
  result.low = 0;
}

/**
 * Rounds the scratch value (nonzero, normalized) to the x87 destination format
 * under the control word: precision and rounding control, the full extended
 * exponent range, masked or unmasked overflow and underflow. Returns the
 * exception bits plus roundedUp (C1).
 */
export function roundPackExtended(result: SoftFloatResult, control: number, precision = x87Precision(control)): number {
  const rounding = (control >> 10) & 3;
  const sign = result.workSign;
  let exponent = result.workExponent + EXTENDED_BIAS;
  if (exponent >= 1) {
    const report = roundWork(result, precision, rounding);
    if (report & CARRY) exponent += 1;
    let flags = (report & INEXACT ? Exception.precision : 0) | (report & INCREMENTED ? Exception.roundedUp : 0);
    if (exponent < 0x7fff) {
      writeExtended(result, sign, exponent);
      return flags;
    }
    flags |= Exception.overflow;
    if ((control & Exception.overflow) === 0) {
      // Beyond even the wrapped range (only FSCALE gets there) the host delivers infinity.
      if (exponent - WRAP_BIAS >= 0x7fff) {
        result.workHigh = 0x80000000;
        result.workLow = 0;
        writeExtended(result, sign, 0x7fff);
        return Exception.overflow | Exception.precision | Exception.roundedUp;
      }
      writeExtended(result, sign, exponent - WRAP_BIAS);
      return flags;
    }
    return flags | overflowResponse(result, sign, rounding, precision, 0x7fff, 0x7ffe, true);
  }
  // The x87 decides tininess after rounding (at unbounded exponent), as the host shows.
  if (exponent === 0 && wouldCarry(result, precision, rounding)) {
    const report = roundWork(result, precision, rounding);
    writeExtended(result, sign, 1);
    return (report & INEXACT ? Exception.precision : 0) | (report & INCREMENTED ? Exception.roundedUp : 0);
  }
  if ((control & Exception.underflow) === 0) {
    if (exponent + WRAP_BIAS < 1) {
      // Beyond even the wrapped range (only FSCALE gets there) the host delivers a zero.
      result.workHigh = result.workLow = 0;
      writeExtended(result, sign, 0);
      return Exception.underflow | Exception.precision;
    }
    const report = roundWork(result, precision, rounding);
    if (report & CARRY) exponent += 1;
    writeExtended(result, sign, exponent + WRAP_BIAS);
    return Exception.underflow | (report & INEXACT ? Exception.precision : 0) | (report & INCREMENTED ? Exception.roundedUp : 0);
  }
  shiftWorkRightJamming(result, 1 - exponent);
  const report = roundWork(result, precision, rounding);
  writeExtended(result, sign, result.workHigh >= 0x80000000 ? 1 : 0);
  if ((report & INEXACT) === 0) return 0;
  return Exception.underflow | Exception.precision | (report & INCREMENTED ? Exception.roundedUp : 0);
}

/**
 * The masked overflow response: infinity when rounding goes away from zero,
 * else the largest finite value of the precision. Returns precision plus C1
 * when the magnitude went up.
 */
function overflowResponse(result: SoftFloatResult, sign: number, rounding: number, precision: number, infinityField: number, largestField: number, explicitInteger: boolean): number {
  const toInfinity = rounding === Rounding.nearestEven || (rounding === Rounding.up && sign === 0) || (rounding === Rounding.down && sign !== 0);
  if (toInfinity) {
    result.workHigh = explicitInteger ? 0x80000000 : 0;
    result.workLow = 0;
    writeExtended(result, sign, infinityField);
    return Exception.precision | Exception.roundedUp;
  }
  result.workHigh = precision >= 32 ? 0xffffffff : (0xffffffff - (2 ** (32 - precision) - 1)) >>> 0;
  result.workLow = precision >= 64 ? 0xffffffff : precision > 32 ? (0xffffffff - (2 ** (64 - precision) - 1)) >>> 0 : 0;
  writeExtended(result, sign, largestField);
  return Exception.precision;
}

/** IEEE binary formats of SSE: float32 and float64. */
export interface IeeeFormat {
  readonly precision: number;
  readonly bias: number;
  readonly maxField: number;
  readonly fractionBits: number;
}
export const FLOAT32: IeeeFormat = { precision: 24, bias: 127, maxField: 0xff, fractionBits: 23 };
export const FLOAT64: IeeeFormat = { precision: 53, bias: 1023, maxField: 0x7ff, fractionBits: 52 };

/** Packs sign, exponent field and the scratch significand (integer bit at bit 63) into result (float64 high:low, float32 low). */
export function writeIeee(result: SoftFloatResult, format: IeeeFormat, sign: number, exponentField: number): void {
  const high = result.workHigh;
  const low = result.workLow;
  if (format.precision === 24) {
    result.high = 0;
    result.low = ((sign << 31) | (exponentField << 23) | ((high >>> 8) & 0x7fffff)) >>> 0;
  } else {
    result.high = ((sign << 31) | (exponentField << 20) | ((high >>> 11) & 0xfffff)) >>> 0;
    result.low = (((high & 0x7ff) << 21) | (low >>> 11)) >>> 0;
  }
  result.signExponent = 0;
}

/**
 * Rounds the scratch value (nonzero, normalized) to float32 or float64 under
 * MXCSR: rounding mode, flush-to-zero, masked overflow/underflow responses
 * (unmasked ones trap, so only the flags matter). Returns MXCSR exception bits.
 */
export function roundPackIeee(result: SoftFloatResult, format: IeeeFormat, mxcsr: number): number {
  const rounding = (mxcsr >> 13) & 3;
  const sign = result.workSign;
  let exponent = result.workExponent + format.bias;
  if (exponent >= 1) {
    const report = roundWork(result, format.precision, rounding);
    if (report & CARRY) exponent += 1;
    const flags = (report & INEXACT ? Exception.precision : 0) | (report & INCREMENTED ? Exception.roundedUp : 0);
    if (exponent < format.maxField) {
      writeIeee(result, format, sign, exponent);
      return flags;
    }
    // Unmasked, SSE traps: OE plus PE only when the significand itself was rounded (the host shows).
    if ((mxcsr & (Exception.overflow << 7)) === 0) return Exception.overflow | (report & INEXACT ? Exception.precision : 0);
    const toInfinity = rounding === Rounding.nearestEven || (rounding === Rounding.up && sign === 0) || (rounding === Rounding.down && sign !== 0);
    result.workHigh = toInfinity ? 0 : 0xffffffff;
    result.workLow = toInfinity ? 0 : 0xffffffff;
    writeIeee(result, format, sign, toInfinity ? format.maxField : format.maxField - 1);
    return Exception.overflow | Exception.precision | (toInfinity ? Exception.roundedUp : 0);
  }
  const underflowMasked = (mxcsr & (Exception.underflow << 7)) !== 0;
  const tiny = exponent < 0 || !wouldCarry(result, format.precision, rounding);
  if (tiny && underflowMasked && (mxcsr & 0x8000) !== 0) {
    result.workHigh = result.workLow = 0;
    writeIeee(result, format, sign, 0);
    return Exception.underflow | Exception.precision;
  }
  if (!underflowMasked && tiny) {
    // Unmasked, SSE traps before denormalizing: UE plus PE when the normalized rounding was inexact.
    const report = roundWork(result, format.precision, rounding);
    return Exception.underflow | (report & INEXACT ? Exception.precision : 0);
  }
  shiftWorkRightJamming(result, 1 - exponent);
  const report = roundWork(result, format.precision, rounding);
  writeIeee(result, format, sign, result.workHigh >= 0x80000000 ? 1 : 0);
  const roundedUp = report & INCREMENTED ? Exception.roundedUp : 0;
  if ((report & INEXACT) === 0) return 0;
  return (tiny ? Exception.underflow : 0) | Exception.precision | roundedUp;
}

/** Where an arithmetic result goes: the x87 (control word) or an SSE format (MXCSR). */
export enum Target { x87 = 0, float32 = 1, float64 = 2 }

/** Internal report bit: the result holds packed float32/float64 bits rather than an extended value. */
export const PACKED_IEEE = 0x10000;

export function roundingOf(control: number, target: number): number {
  return target === Target.x87 ? (control >> 10) & 3 : (control >> 13) & 3;
}

/** Rounds the scratch value to the target: the x87 register format under the control word, or float32/float64 under MXCSR. */
export function roundPack(result: SoftFloatResult, control: number, target: number): number {
  if (target === Target.x87) return roundPackExtended(result, control);
  return PACKED_IEEE | roundPackIeee(result, target === Target.float32 ? FLOAT32 : FLOAT64, control);
}
