import { classifyExtended, ExtendedClass } from './extended-classify.js';
import { FLOAT32, FLOAT64, type IeeeFormat, normalizeWork, roundPackIeee, roundWork, shiftWorkRightJamming } from './round.js';
import { EXTENDED_BIAS, Exception, type ExtendedBits, type SoftFloatResult } from './types.js';

/*
 * Conversions between the 80-bit format and float32/float64/integers, as the
 * x87 loads (FLD m32/m64, FILD) and stores (FST/FIST/FISTTP) do them.
 */

/** Loads float32 (in `high` 0, `low` bits) or float64 (high:low) bits as an exact extended value into the result. Returns IE (SNaN) and DE (denormal source). */
export function ieeeToExtended(format: IeeeFormat, high: number, low: number, result: SoftFloatResult): number {
  let sign: number, field: number, fractionHigh: number, fractionLow: number;
  if (format.precision === 24) {
    sign = low >>> 31;
    field = (low >>> 23) & 0xff;
    fractionHigh = ((low & 0x7fffff) << 8) >>> 0;
    fractionLow = 0;
  } else {
    sign = high >>> 31;
    field = (high >>> 20) & 0x7ff;
    fractionHigh = (((high & 0xfffff) << 11) | (low >>> 21)) >>> 0;
    fractionLow = (low << 11) >>> 0;
  }
  if (field === format.maxField) {
    result.signExponent = (sign << 15) | 0x7fff;
    result.high = (fractionHigh | 0x80000000) >>> 0;
    result.low = fractionLow;
    if (fractionHigh === 0 && fractionLow === 0) return 0;
    const signaling = (fractionHigh & 0x40000000) === 0;
    result.high = (result.high | 0x40000000) >>> 0;
    return signaling ? Exception.invalid : 0;
  }
  if (field === 0) {
    if (fractionHigh === 0 && fractionLow === 0) {
      result.signExponent = sign << 15;
      result.high = result.low = 0;
      return 0;
    }
    result.workHigh = fractionHigh;
    result.workLow = fractionLow;
    result.workExtra = 0;
    result.workExponent = 1 - format.bias;
    normalizeWork(result);
    result.signExponent = (sign << 15) | (result.workExponent + EXTENDED_BIAS);
    result.high = result.workHigh;
    result.low = result.workLow;
    return Exception.denormal;
  }
  result.signExponent = (sign << 15) | (field - format.bias + EXTENDED_BIAS);
  result.high = (fractionHigh | 0x80000000) >>> 0;
  result.low = fractionLow;
  return 0;
}

/** The default QNaN of a format (what an invalid operation stores). */
export function writeDefaultNaN(format: IeeeFormat, result: SoftFloatResult): void {
  if (format.precision === 24) {
    result.high = 0;
    result.low = 0xffc00000;
  } else {
    result.high = 0xfff80000;
    result.low = 0;
  }
}

/**
 * Rounds an extended value to float32/float64 bits (FST m32/m64 with the x87
 * control word, or CVTSD2SS-style with MXCSR when `mxcsr` is true). Returns
 * exception bits plus roundedUp (C1).
 */
export function extendedToIeee(value: ExtendedBits, format: IeeeFormat, control: number, result: SoftFloatResult, mxcsr = false): number {
  const valueClass = classifyExtended(value);
  const sign = (value.signExponent >>> 15) & 1;
  if (valueClass === ExtendedClass.unsupported) {
    writeDefaultNaN(format, result);
    return Exception.invalid;
  }
  if (valueClass === ExtendedClass.quietNaN || valueClass === ExtendedClass.signalingNaN || valueClass === ExtendedClass.infinity) {
    // The NaN's fraction keeps its top bits; the quiet bit (bit 62) lands on the format's quiet bit.
    result.workHigh = valueClass === ExtendedClass.infinity ? 0 : ((value.high | 0x40000000) >>> 0);
    result.workLow = valueClass === ExtendedClass.infinity ? 0 : value.low >>> 0;
    writeIeeeRaw(result, format, sign, format.maxField);
    return valueClass === ExtendedClass.signalingNaN ? Exception.invalid : 0;
  }
  if (valueClass === ExtendedClass.zero) {
    result.workHigh = result.workLow = 0;
    writeIeeeRaw(result, format, sign, 0);
    return 0;
  }
  const field = value.signExponent & 0x7fff;
  result.workSign = sign;
  result.workHigh = value.high >>> 0;
  result.workLow = value.low >>> 0;
  result.workExtra = 0;
  result.workExponent = (field === 0 ? 1 : field) - EXTENDED_BIAS;
  normalizeWork(result);
  const settings = mxcsr ? control : (((control >> 10) & 3) << 13) | ((control & 0x3f) << 7);
  const flags = roundPackIeee(result, format, settings);
  // An unmasked overflow or underflow on a store writes nothing and reports only that exception, as the host shows.
  if (!mxcsr) {
    const unmasked = flags & ~control & (Exception.overflow | Exception.underflow);
    if (unmasked !== 0) return unmasked;
  }
  return flags;
}

function writeIeeeRaw(result: SoftFloatResult, format: IeeeFormat, sign: number, field: number): void {
  const high = result.workHigh;
  const low = result.workLow;
  if (format.precision === 24) {
    result.high = 0;
    result.low = ((sign << 31) | (field << 23) | ((high >>> 8) & 0x7fffff)) >>> 0;
  } else {
    result.high = ((sign << 31) | (field << 20) | ((high >>> 11) & 0xfffff)) >>> 0;
    result.low = (((high & 0x7ff) << 21) | (low >>> 11)) >>> 0;
  }
}

/** FILD: a signed integer (int64 as high:low two's complement; narrower ones sign-extended in low with high the sign fill) to an exact extended value. */
export function integerToExtended(high: number, low: number, result: SoftFloatResult): void {
  const negative = (high | 0) < 0;
  let magnitudeHigh = high >>> 0;
  let magnitudeLow = low >>> 0;
  if (negative) {
    magnitudeLow = (~magnitudeLow + 1) >>> 0;
    magnitudeHigh = (~magnitudeHigh + (magnitudeLow === 0 ? 1 : 0)) >>> 0;
  }
  if (magnitudeHigh === 0 && magnitudeLow === 0) {
    result.signExponent = 0;
    result.high = result.low = 0;
    return;
  }
  result.workHigh = magnitudeHigh;
  result.workLow = magnitudeLow;
  result.workExtra = 0;
  result.workExponent = 63;
  normalizeWork(result);
  result.signExponent = ((negative ? 1 : 0) << 15) | (result.workExponent + EXTENDED_BIAS);
  result.high = result.workHigh;
  result.low = result.workLow;
}

/** The integer indefinite (the most negative value) of a width, with IE. */
function writeIndefiniteInteger(bits: number, result: SoftFloatResult): number {
  result.high = bits === 64 ? 0x80000000 : 0;
  result.low = bits === 64 ? 0 : bits === 32 ? 0x80000000 : 0x8000;
  return Exception.invalid;
}

/**
 * FIST/FISTP (truncate false: rounding control) and FISTTP (truncate true) to
 * a signed integer of `bits` (16, 32, 64). The integer lands in result.high:low
 * (two's complement, narrower ones sign-extended into low only, high 0). On
 * invalid or overflow it is the integer indefinite (the most negative value) with IE.
 */
export function extendedToInteger(value: ExtendedBits, bits: number, control: number, result: SoftFloatResult, truncate = false): number {
  const valueClass = classifyExtended(value);
  const sign = (value.signExponent >>> 15) & 1;
  if (valueClass === ExtendedClass.zero) {
    result.high = result.low = 0;
    return 0;
  }
  if (valueClass !== ExtendedClass.normal && valueClass !== ExtendedClass.denormal) return writeIndefiniteInteger(bits, result);
  const field = value.signExponent & 0x7fff;
  const exponent = (field === 0 ? 1 : field) - EXTENDED_BIAS;
  if (exponent > 63) return writeIndefiniteInteger(bits, result);
  // Shift so the integer part is high:low and the fraction is in the extra word, then round at 64 bits.
  result.workSign = sign;
  result.workHigh = value.high >>> 0;
  result.workLow = value.low >>> 0;
  result.workExtra = 0;
  shiftWorkRightJamming(result, 63 - exponent);
  const report = roundWork(result, 64, truncate ? 3 : (control >> 10) & 3);
  if (report & 4) return writeIndefiniteInteger(bits, result);
  const magnitudeHigh = result.workHigh;
  const magnitudeLow = result.workLow;
  // Range check against 2^(bits-1) (one more allowed when negative).
  const limitHigh = bits === 64 ? 0x80000000 : 0;
  const limitLow = bits === 64 ? 0 : bits === 32 ? 0x80000000 : 0x8000;
  const above = magnitudeHigh > limitHigh || (magnitudeHigh === limitHigh && magnitudeLow > limitLow);
  const atLimit = magnitudeHigh === limitHigh && magnitudeLow === limitLow;
  if (above || (atLimit && sign === 0)) return writeIndefiniteInteger(bits, result);
  let low = magnitudeLow;
  let high = magnitudeHigh;
  if (sign !== 0) {
    low = (~low + 1) >>> 0;
    high = (~high + (low === 0 ? 1 : 0)) >>> 0;
  }
  if (bits === 16) {
    result.high = 0;
    result.low = low & 0xffff;
  } else if (bits === 32) {
    result.high = 0;
    result.low = low >>> 0;
  } else {
    result.high = high >>> 0;
    result.low = low >>> 0;
  }
  const inexact = report & 1 ? Exception.precision : 0;
  return inexact | (report & 2 ? Exception.roundedUp : 0);
}

export { FLOAT32, FLOAT64 };
