import { extendedToIeee, extendedToInteger, ieeeToExtended, integerToExtended, writeDefaultNaN } from './conversions.js';
import { extendedAdd, extendedDivide, extendedMultiply, extendedSquareRoot } from './extended-arithmetic.js';
import { FLOAT32, FLOAT64, type IeeeFormat, PACKED_IEEE, Target } from './round.js';
import { Exception, type SoftFloatResult } from './types.js';

/*
 * SSE scalar float32/float64 arithmetic with MXCSR semantics. Operands and
 * results are raw bits: float32 in `low` (high ignored), float64 as high:low.
 * The operands are widened exactly to 80 bits and the extended core rounds
 * once, straight to the SSE format. Results land in result.high/low; the
 * return value holds the MXCSR exception flags (bits 0-5) as the processor
 * reports them; when flags & ~masks is nonzero the processor traps (#XM) and
 * writes nothing.
 */

/**
 * The MXCSR flags an operation reports: with an unmasked pre-computation
 * exception (IE, DE, ZE) the processor traps before computing, so only those
 * are reported. Callers raise #XM when flags & ~masks is nonzero.
 */
export function sseReportedFlags(flags: number, mxcsr: number): number {
  const masks = (mxcsr >> 7) & 0x3f;
  const precomputation = flags & (Exception.invalid | Exception.denormal | Exception.zeroDivide);
  if ((precomputation & ~masks) !== 0) return precomputation;
  return flags;
}

/** SSE arithmetic operations for sseArithmetic. */
export enum SseOperation { add = 0, subtract = 1, multiply = 2, divide = 3, squareRoot = 4, minimum = 5, maximum = 6 }

enum ScalarClass { zero = 0, denormal = 1, normal = 2, infinity = 3, quietNaN = 4, signalingNaN = 5 }

function classify(format: IeeeFormat, high: number, low: number): number {
  const single = format === FLOAT32;
  const field = single ? (low >>> 23) & 0xff : (high >>> 20) & 0x7ff;
  const fractionZero = single ? (low & 0x7fffff) === 0 : (high & 0xfffff) === 0 && low === 0;
  if (field === 0) return fractionZero ? ScalarClass.zero : ScalarClass.denormal;
  if (field !== format.maxField) return ScalarClass.normal;
  if (fractionZero) return ScalarClass.infinity;
  const quiet = single ? low & 0x400000 : high & 0x80000;
  return quiet ? ScalarClass.quietNaN : ScalarClass.signalingNaN;
}

function isScalarNaN(scalarClass: number): boolean {
  return scalarClass >= ScalarClass.quietNaN;
}

function signOf(format: IeeeFormat, high: number, low: number): number {
  return (format === FLOAT32 ? low : high) >>> 31;
}

/** Writes the value with a NaN quieted. */
function writeQuiet(format: IeeeFormat, high: number, low: number, result: SoftFloatResult): void {
  if (format === FLOAT32) {
    result.high = 0;
    result.low = (low | 0x400000) >>> 0;
  } else {
    result.high = (high | 0x80000) >>> 0;
    result.low = low >>> 0;
  }
}

/** An operand widened exactly to 80 bits (the caller's scratch from createSseScratch). */
export interface Wide {
  signExponent: number;
  high: number;
  low: number;
}

/** Converts an extended special result (zero, infinity, NaN) left by the core into the SSE format. */
function packSpecial(format: IeeeFormat, result: SoftFloatResult): void {
  const sign = result.signExponent >>> 15;
  const field = result.signExponent & 0x7fff;
  if (field === 0x7fff && ((result.high & 0x7fffffff) !== 0 || result.low !== 0)) {
    // Only the indefinite reaches here: operand NaNs are handled before the core.
    writeDefaultNaN(format, result);
    return;
  }
  const exponentField = field === 0x7fff ? format.maxField : 0;
  if (format === FLOAT32) {
    result.high = 0;
    result.low = ((sign << 31) | (exponentField << 23)) >>> 0;
  } else {
    result.high = ((sign << 31) | (exponentField << 20)) >>> 0;
    result.low = 0;
  }
}

/** Widens exactly to 80 bits (a DAZ-flushed operand becomes a signed zero); returns IE for an SNaN. */
function widen(format: IeeeFormat, high: number, low: number, flushed: boolean, result: SoftFloatResult, into: Wide): number {
  if (flushed) {
    into.signExponent = signOf(format, high, low) << 15;
    into.high = into.low = 0;
    return 0;
  }
  const flags = ieeeToExtended(format, high, low, result) & Exception.invalid;
  into.signExponent = result.signExponent;
  into.high = result.high;
  into.low = result.low;
  return flags;
}

/**
 * One scalar SSE arithmetic operation (ADDSS/SD, SUB, MUL, DIV, SQRT, MIN,
 * MAX). SQRT uses only b (the source operand), as SQRTSS does.
 */
export function sseArithmetic(operation: number, format: IeeeFormat, aHigh: number, aLow: number, bHigh: number, bLow: number, mxcsr: number, result: SoftFloatResult, scratch: SseScratch): number {
  return sseReportedFlags(arithmetic(operation, format, aHigh, aLow, bHigh, bLow, mxcsr, result, scratch), mxcsr);
}

function arithmetic(operation: number, format: IeeeFormat, aHigh: number, aLow: number, bHigh: number, bLow: number, mxcsr: number, result: SoftFloatResult, scratch: SseScratch): number {
  const unary = operation === SseOperation.squareRoot;
  const denormalsAreZero = (mxcsr & 0x40) !== 0;
  let aClass = unary ? ScalarClass.zero : classify(format, aHigh, aLow);
  let bClass = classify(format, bHigh, bLow);
  const aFlushed = denormalsAreZero && aClass === ScalarClass.denormal;
  const bFlushed = denormalsAreZero && bClass === ScalarClass.denormal;
  if (aFlushed) aClass = ScalarClass.zero;
  if (bFlushed) bClass = ScalarClass.zero;
  const eitherNaN = isScalarNaN(aClass) || isScalarNaN(bClass);
  const signaling = aClass === ScalarClass.signalingNaN || bClass === ScalarClass.signalingNaN;
  const denormal = aClass === ScalarClass.denormal || bClass === ScalarClass.denormal ? Exception.denormal : 0;
  if (operation === SseOperation.minimum || operation === SseOperation.maximum) {
    if (eitherNaN || (aClass === ScalarClass.zero && bClass === ScalarClass.zero)) {
      writeRaw(format, bFlushed ? signOf(format, bHigh, bLow) : -1, bHigh, bLow, result);
      return (eitherNaN ? Exception.invalid : 0) | (eitherNaN ? 0 : denormal);
    }
    widen(format, aHigh, aLow, aFlushed, result, scratch.a);
    widen(format, bHigh, bLow, bFlushed, result, scratch.b);
    const aLess = lessThan(scratch.a, scratch.b);
    const pickA = operation === SseOperation.minimum ? aLess : lessThan(scratch.b, scratch.a);
    if (pickA) writeRaw(format, aFlushed ? signOf(format, aHigh, aLow) : -1, aHigh, aLow, result);
    else writeRaw(format, bFlushed ? signOf(format, bHigh, bLow) : -1, bHigh, bLow, result);
    return denormal;
  }
  if (eitherNaN) {
    // The first source operand's NaN wins (quieted), else the second's.
    if (!unary && isScalarNaN(aClass)) writeQuiet(format, aHigh, aLow, result);
    else writeQuiet(format, bHigh, bLow, result);
    return signaling ? Exception.invalid : 0;
  }
  widen(format, aHigh, aLow, aFlushed || unary, result, scratch.a);
  widen(format, bHigh, bLow, bFlushed, result, scratch.b);
  const target = format === FLOAT32 ? Target.float32 : Target.float64;
  let flags: number;
  switch (operation) {
    case SseOperation.add:
      flags = extendedAdd(scratch.a, scratch.b, mxcsr, result, false, target);
      break;
    case SseOperation.subtract:
      flags = extendedAdd(scratch.a, scratch.b, mxcsr, result, true, target);
      break;
    case SseOperation.multiply:
      flags = extendedMultiply(scratch.a, scratch.b, mxcsr, result, target);
      break;
    case SseOperation.divide:
      flags = extendedDivide(scratch.a, scratch.b, mxcsr, result, target);
      break;
    default:
      flags = extendedSquareRoot(scratch.b, mxcsr, result, target);
  }
  if ((flags & PACKED_IEEE) === 0) packSpecial(format, result);
  // Like the x87, x/0 and sqrt of a negative report ZE or IE alone, even for a denormal operand.
  if (flags & (Exception.invalid | Exception.zeroDivide)) return flags & (Exception.invalid | Exception.zeroDivide);
  return (flags & 0x3f & ~Exception.denormal) | denormal;
}

/** Writes operand bits unchanged, or a zero of `flushSign` when it is 0 or 1 (a DAZ-flushed operand). */
function writeRaw(format: IeeeFormat, flushSign: number, high: number, low: number, result: SoftFloatResult): void {
  if (format === FLOAT32) {
    result.high = 0;
    result.low = flushSign >= 0 ? (flushSign << 31) >>> 0 : low >>> 0;
  } else {
    result.high = flushSign >= 0 ? (flushSign << 31) >>> 0 : high >>> 0;
    result.low = flushSign >= 0 ? 0 : low >>> 0;
  }
}

/** a < b for exact, finite-or-infinite widened values (zeros of either sign equal). */
function lessThan(a: Wide, b: Wide): boolean {
  const aZero = (a.signExponent & 0x7fff) === 0 && a.high === 0 && a.low === 0;
  const bZero = (b.signExponent & 0x7fff) === 0 && b.high === 0 && b.low === 0;
  if (aZero && bZero) return false;
  const aSign = a.signExponent >>> 15;
  const bSign = b.signExponent >>> 15;
  if (aZero) return bSign === 0;
  if (bZero) return aSign === 1;
  if (aSign !== bSign) return aSign === 1;
  const aKey = (a.signExponent & 0x7fff) * 2 ** 32 + (a.high >>> 0);
  const bKey = (b.signExponent & 0x7fff) * 2 ** 32 + (b.high >>> 0);
  const greaterMagnitude = aKey !== bKey ? aKey > bKey : a.low >>> 0 > b.low >>> 0;
  const equal = aKey === bKey && a.low >>> 0 === b.low >>> 0;
  if (equal) return false;
  return aSign === 1 ? greaterMagnitude : !greaterMagnitude;
}

/** Per-CPU scratch for the two widened operands, so the arithmetic allocates nothing. */
export interface SseScratch {
  readonly a: Wide;
  readonly b: Wide;
}

/** Creates the widened-operand scratch that sseArithmetic and sseCompare need (one per CPU). */
export function createSseScratch(): SseScratch {
  return { a: { signExponent: 0, high: 0, low: 0 }, b: { signExponent: 0, high: 0, low: 0 } };
}

/** CMPSS/CMPSD predicates 0-7 (EQ LT LE UNORD NEQ NLT NLE ORD). */
export enum ComparePredicate { equal = 0, less = 1, lessEqual = 2, unordered = 3, notEqual = 4, notLess = 5, notLessEqual = 6, ordered = 7 }

/**
 * The relation of a and b: 0 equal, 1 less, 2 greater, 3 unordered, plus the
 * exceptions in bits 8+ (shifted by 8). `signalQuietNaN` makes QNaN operands
 * invalid too (COMISS, CMP LT/LE/NLT/NLE).
 */
export function sseRelation(format: IeeeFormat, aHigh: number, aLow: number, bHigh: number, bLow: number, mxcsr: number, signalQuietNaN: boolean, result: SoftFloatResult, scratch: SseScratch): number {
  const denormalsAreZero = (mxcsr & 0x40) !== 0;
  let aClass = classify(format, aHigh, aLow);
  let bClass = classify(format, bHigh, bLow);
  const aFlushed = denormalsAreZero && aClass === ScalarClass.denormal;
  const bFlushed = denormalsAreZero && bClass === ScalarClass.denormal;
  if (aFlushed) aClass = ScalarClass.zero;
  if (bFlushed) bClass = ScalarClass.zero;
  if (isScalarNaN(aClass) || isScalarNaN(bClass)) {
    const invalid = signalQuietNaN || aClass === ScalarClass.signalingNaN || bClass === ScalarClass.signalingNaN;
    return 3 | (invalid ? Exception.invalid << 8 : 0);
  }
  const denormal = aClass === ScalarClass.denormal || bClass === ScalarClass.denormal ? Exception.denormal << 8 : 0;
  widen(format, aHigh, aLow, aFlushed, result, scratch.a);
  widen(format, bHigh, bLow, bFlushed, result, scratch.b);
  const relation = lessThan(scratch.a, scratch.b) ? 1 : lessThan(scratch.b, scratch.a) ? 2 : 0;
  return relation | denormal;
}

/** CMPSS/CMPSD: writes the all-ones or zero mask into result and returns the flags. */
export function sseComparePredicate(predicate: number, format: IeeeFormat, aHigh: number, aLow: number, bHigh: number, bLow: number, mxcsr: number, result: SoftFloatResult, scratch: SseScratch): number {
  const signalling = (predicate & 3) === 1 || (predicate & 3) === 2;
  const outcome = sseRelation(format, aHigh, aLow, bHigh, bLow, mxcsr, signalling, result, scratch);
  const relation = outcome & 3;
  let truth: boolean;
  switch (predicate & 3) {
    case 0:
      truth = relation === 0;
      break;
    case 1:
      truth = relation === 1;
      break;
    case 2:
      truth = relation === 1 || relation === 0;
      break;
    default:
      truth = relation === 3;
  }
  if (predicate & 4) truth = !truth;
  result.low = truth ? 0xffffffff : 0;
  result.high = format === FLOAT32 ? 0 : result.low;
  return outcome >>> 8;
}

/** COMISS/UCOMISS/COMISD/UCOMISD: returns the EFLAGS value of ZF (0x40), PF (0x4), CF (0x1) in bits 0-7, plus the exceptions shifted by 8. */
export function sseCompareFlags(format: IeeeFormat, aHigh: number, aLow: number, bHigh: number, bLow: number, mxcsr: number, ordered: boolean, result: SoftFloatResult, scratch: SseScratch): number {
  const outcome = sseRelation(format, aHigh, aLow, bHigh, bLow, mxcsr, ordered, result, scratch);
  const relation = outcome & 3;
  const eflags = relation === 3 ? 0x45 : relation === 1 ? 0x01 : relation === 0 ? 0x40 : 0;
  return eflags | (outcome & ~3);
}

/** CVTSS2SD (to FLOAT64) and CVTSD2SS (to FLOAT32): converts source bits to the other format under MXCSR. */
export function sseConvertFloat(from: IeeeFormat, high: number, low: number, mxcsr: number, result: SoftFloatResult, scratch: SseScratch): number {
  const to = from === FLOAT32 ? FLOAT64 : FLOAT32;
  let sourceClass = classify(from, high, low);
  const flushed = (mxcsr & 0x40) !== 0 && sourceClass === ScalarClass.denormal;
  if (flushed) sourceClass = ScalarClass.zero;
  const invalid = widen(from, high, low, flushed, result, scratch.a);
  const flags = invalid | extendedToIeee(scratch.a, to, mxcsr, result, true);
  // The SNaN's invalid comes from the conversion; the denormal flag from the source class.
  return sseReportedFlags((flags & 0x3f & ~Exception.denormal) | (sourceClass === ScalarClass.denormal ? Exception.denormal : 0), mxcsr);
}

/** CVTSI2SS/SD: a signed 32-bit (high ignored when bits is 32) or 64-bit integer to float bits under MXCSR. */
export function sseIntegerToFloat(to: IeeeFormat, bits: number, high: number, low: number, mxcsr: number, result: SoftFloatResult, scratch: SseScratch): number {
  integerToExtended(bits === 64 ? high : (low | 0) < 0 ? 0xffffffff : 0, low, result);
  scratch.a.signExponent = result.signExponent;
  scratch.a.high = result.high;
  scratch.a.low = result.low;
  return sseReportedFlags(extendedToIeee(scratch.a, to, mxcsr, result, true) & 0x3f, mxcsr);
}

/** CVT(T)SS2SI / CVT(T)SD2SI to 32 or 64 bits: the integer in result.low (and high for 64), the integer indefinite on invalid. */
export function sseFloatToInteger(from: IeeeFormat, bits: number, high: number, low: number, mxcsr: number, truncate: boolean, result: SoftFloatResult, scratch: SseScratch): number {
  const flushed = (mxcsr & 0x40) !== 0 && classify(from, high, low) === ScalarClass.denormal;
  widen(from, high, low, flushed, result, scratch.a);
  const control = ((mxcsr >> 13) & 3) << 10;
  return sseReportedFlags(extendedToInteger(scratch.a, bits, control, result, truncate) & 0x3f, mxcsr);
}
