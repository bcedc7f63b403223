import { classifyExtended, ExtendedClass, isNaNClass } from './extended-classify.js';
import { Exception, type ExtendedBits } from './types.js';

/** x87 condition code bits in the status word. */
export enum Condition { c0 = 0x100, c1 = 0x200, c2 = 0x400, c3 = 0x4000 }

/** Comparison outcomes, as FCOM encodes them in C3/C2/C0. */
export enum CompareResult { greater = 0, less = Condition.c0, equal = Condition.c3, unordered = Condition.c3 | Condition.c2 | Condition.c0 }

/** Orders two finite or infinite (non-NaN, supported) values: -1, 0, 1. */
function order(a: ExtendedBits, b: ExtendedBits, aClass: number, bClass: number): number {
  const aZero = aClass === ExtendedClass.zero;
  const bZero = bClass === ExtendedClass.zero;
  if (aZero && bZero) return 0;
  const aSign = (a.signExponent >>> 15) & 1;
  const bSign = (b.signExponent >>> 15) & 1;
  if (aZero) return bSign ? 1 : -1;
  if (bZero) return aSign ? -1 : 1;
  if (aSign !== bSign) return aSign ? -1 : 1;
  // Same sign: compare magnitudes; (pseudo-)denormals have the exponent of field 1.
  const aField = a.signExponent & 0x7fff || 1;
  const bField = b.signExponent & 0x7fff || 1;
  let magnitude = 0;
  // Values with field 1 may be denormal (integer bit 0): compare as exponent then significand still works since the field is shared.
  if (aField !== bField) magnitude = aField > bField ? 1 : -1;
  else if (a.high >>> 0 !== b.high >>> 0) magnitude = a.high >>> 0 > b.high >>> 0 ? 1 : -1;
  else if (a.low >>> 0 !== b.low >>> 0) magnitude = a.low >>> 0 > b.low >>> 0 ? 1 : -1;
  return aSign ? -magnitude : magnitude;
}

/**
 * FCOM (quiet false: any NaN is invalid) and FUCOM (quiet true: only SNaN is
 * invalid) of a (ST0) with b. Returns the condition bits (C3/C2/C0, C1 clear)
 * plus exception bits.
 */
export function extendedCompare(a: ExtendedBits, b: ExtendedBits, quiet: boolean): number {
  const aClass = classifyExtended(a);
  const bClass = classifyExtended(b);
  if (aClass === ExtendedClass.unsupported || bClass === ExtendedClass.unsupported) return CompareResult.unordered | Exception.invalid;
  if (isNaNClass(aClass) || isNaNClass(bClass)) {
    const signaling = aClass === ExtendedClass.signalingNaN || bClass === ExtendedClass.signalingNaN;
    return CompareResult.unordered | (signaling || !quiet ? Exception.invalid : 0);
  }
  const denormal = aClass === ExtendedClass.denormal || bClass === ExtendedClass.denormal ? Exception.denormal : 0;
  const ordering = order(a, b, aClass, bClass);
  return denormal | (ordering < 0 ? CompareResult.less : ordering > 0 ? CompareResult.greater : CompareResult.equal);
}

/** FXAM: the class in C3/C2/C0 and the sign in C1 (a register that is not empty). */
export function extendedExamine(value: ExtendedBits): number {
  const sign = value.signExponent & 0x8000 ? Condition.c1 : 0;
  switch (classifyExtended(value)) {
    case ExtendedClass.unsupported:
      return sign;
    case ExtendedClass.quietNaN:
    case ExtendedClass.signalingNaN:
      return sign | Condition.c0;
    case ExtendedClass.normal:
      return sign | Condition.c2;
    case ExtendedClass.infinity:
      return sign | Condition.c2 | Condition.c0;
    case ExtendedClass.zero:
      return sign | Condition.c3;
    default:
      return sign | Condition.c3 | Condition.c2;
  }
}

/** FXAM's answer for an empty register: C3 and C0 (C1 from the register's stale sign is the caller's). */
export const EXAMINE_EMPTY = Condition.c3 | Condition.c0;
