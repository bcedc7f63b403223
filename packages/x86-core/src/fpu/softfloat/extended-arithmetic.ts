import { classifyExtended, ExtendedClass, isNaNClass } from './extended-classify.js';
import { leadingZeros64, normalizeWork, roundingOf, roundPack, shiftWorkRightJamming, Target, writeIndefinite } from './round.js';
import { EXTENDED_BIAS, Exception, type ExtendedBits, Rounding, type SoftFloatResult } from './types.js';

/*
 * x87 arithmetic on 80-bit values. Each function writes the value the FPU
 * stores into result and returns the exception bits (plus roundedUp for C1).
 * With an unmasked invalid, zero-divide or denormal exception the FPU stores
 * nothing: the caller checks the returned bits against its masks first.
 */

/** With DE unmasked the x87 stops before computing: it reports DE alone and stores nothing. */
function denormalTrap(denormal: number, control: number, target: number): boolean {
  return denormal !== 0 && target === Target.x87 && (control & Exception.denormal) === 0;
}

/** Copies value into result with the NaN made quiet. */
function writeQuiet(result: SoftFloatResult, value: ExtendedBits): void {
  result.signExponent = value.signExponent;
  result.high = (value.high | 0x40000000) >>> 0;
  result.low = value.low;
}

/** The x87 rule for two NaN operands: a QNaN beats an SNaN, else the larger significand, else the positive one. */
export function propagateNaN(result: SoftFloatResult, a: ExtendedBits, aClass: number, b: ExtendedBits, bClass: number): number {
  const flags = aClass === ExtendedClass.signalingNaN || bClass === ExtendedClass.signalingNaN ? Exception.invalid : 0;
  if (!isNaNClass(bClass)) writeQuiet(result, a);
  else if (!isNaNClass(aClass)) writeQuiet(result, b);
  else if (aClass !== bClass) writeQuiet(result, aClass === ExtendedClass.quietNaN ? a : b);
  else {
    const aHigh = (a.high | 0x40000000) >>> 0;
    const bHigh = (b.high | 0x40000000) >>> 0;
    if (aHigh !== bHigh) writeQuiet(result, aHigh > bHigh ? a : b);
    else if (a.low !== b.low) writeQuiet(result, a.low > b.low ? a : b);
    else writeQuiet(result, a.signExponent <= b.signExponent ? a : b);
  }
  return flags;
}

/**
 * The two-operand cases that need no arithmetic: an unsupported format
 * (pseudo-NaN, unnormal…) gives the indefinite with IE, a NaN operand the
 * propagated NaN. Returns the exception bits, or -1 when both operands are
 * ordinary values for the operation to compute.
 */
export function specialOperands(result: SoftFloatResult, a: ExtendedBits, aClass: number, b: ExtendedBits, bClass: number): number {
  if (aClass === ExtendedClass.unsupported || bClass === ExtendedClass.unsupported) {
    writeIndefinite(result);
    return Exception.invalid;
  }
  if (isNaNClass(aClass) || isNaNClass(bClass)) return propagateNaN(result, a, aClass, b, bClass);
  return -1;
}

/** Loads a finite nonzero operand into the scratch (sign, unbiased exponent, normalized significand). */
export function loadWork(result: SoftFloatResult, value: ExtendedBits): void {
  const field = value.signExponent & 0x7fff;
  result.workSign = value.signExponent >>> 15 & 1;
  result.workHigh = value.high >>> 0;
  result.workLow = value.low >>> 0;
  result.workExtra = 0;
  // Denormals and pseudo-denormals both have the exponent of field 1.
  result.workExponent = (field === 0 ? 1 : field) - EXTENDED_BIAS;
  normalizeWork(result);
}

export function writeZero(result: SoftFloatResult, sign: number): void {
  result.signExponent = sign << 15;
  result.high = 0;
  result.low = 0;
}

export function writeInfinity(result: SoftFloatResult, sign: number): void {
  result.signExponent = (sign << 15) | 0x7fff;
  result.high = 0x80000000;
  result.low = 0;
}

/** The unbiased exponent of a finite nonzero operand once normalized. */
export function exponentOf(value: ExtendedBits): number {
  const field = value.signExponent & 0x7fff;
  return (field === 0 ? 1 : field) - EXTENDED_BIAS - leadingZeros64(value.high >>> 0, value.low >>> 0);
}
/** The high half of a finite nonzero operand's normalized significand. */
export function normalizedHigh(value: ExtendedBits): number {
  const shift = leadingZeros64(value.high >>> 0, value.low >>> 0);
  if (shift >= 32) return (value.low << (shift - 32)) >>> 0;
  if (shift === 0) return value.high >>> 0;
  return ((value.high << shift) | (value.low >>> (32 - shift))) >>> 0;
}
/** The low half of a finite nonzero operand's normalized significand. */
export function normalizedLow(value: ExtendedBits): number {
  const shift = leadingZeros64(value.high >>> 0, value.low >>> 0);
  if (shift >= 32) return 0;
  return (value.low << shift) >>> 0;
}

/** x87 FADD (negateB false) and FSUB (negateB true): a + b or a - b. */
export function extendedAdd(a: ExtendedBits, b: ExtendedBits, control: number, result: SoftFloatResult, negateB = false, target: number = Target.x87): number {
  const aClass = classifyExtended(a);
  const bClass = classifyExtended(b);
  const special = specialOperands(result, a, aClass, b, bClass);
  if (special >= 0) return special;
  const denormal = aClass === ExtendedClass.denormal || bClass === ExtendedClass.denormal ? Exception.denormal : 0;
  if (denormalTrap(denormal, control, target)) return Exception.denormal;
  const aSign = (a.signExponent >>> 15) & 1;
  const bSign = ((b.signExponent >>> 15) & 1) ^ (negateB ? 1 : 0);
  const rounding = roundingOf(control, target);
  if (aClass === ExtendedClass.infinity || bClass === ExtendedClass.infinity) {
    if (aClass === ExtendedClass.infinity && bClass === ExtendedClass.infinity && aSign !== bSign) {
      writeIndefinite(result);
      return Exception.invalid;
    }
    writeInfinity(result, aClass === ExtendedClass.infinity ? aSign : bSign);
    return denormal;
  }
  if (aClass === ExtendedClass.zero && bClass === ExtendedClass.zero) {
    writeZero(result, aSign === bSign ? aSign : rounding === Rounding.down ? 1 : 0);
    return denormal;
  }
  if (bClass === ExtendedClass.zero || aClass === ExtendedClass.zero) {
    // x + 0 still rounds x to the precision control.
    loadWork(result, bClass === ExtendedClass.zero ? a : b);
    result.workSign = bClass === ExtendedClass.zero ? aSign : bSign;
    return denormal | roundPack(result, control, target);
  }
  const aExponent = exponentOf(a);
  const bExponent = exponentOf(b);
  // Put the larger magnitude in the scratch, then align the other into locals.
  const aLarger = aExponent > bExponent || (aExponent === bExponent && (normalizedHigh(a) > normalizedHigh(b) || (normalizedHigh(a) === normalizedHigh(b) && normalizedLow(a) >= normalizedLow(b))));
  const large = aLarger ? a : b;
  const small = aLarger ? b : a;
  const largeSign = aLarger ? aSign : bSign;
  const smallSign = aLarger ? bSign : aSign;
  // Align the smaller operand first, using the scratch.
  result.workHigh = normalizedHigh(small);
  result.workLow = normalizedLow(small);
  result.workExtra = 0;
  shiftWorkRightJamming(result, exponentOf(large) - exponentOf(small));
  const smallHigh = result.workHigh;
  const smallLow = result.workLow;
  const smallExtra = result.workExtra;
  let high = normalizedHigh(large);
  let low = normalizedLow(large);
  let extra = 0;
  result.workSign = largeSign;
  result.workExponent = exponentOf(large);
  if (largeSign === smallSign) {
    extra += smallExtra;
    low += smallLow + (extra >= 0x100000000 ? 1 : 0);
    high += smallHigh + (low >= 0x100000000 ? 1 : 0);
    result.workExtra = extra >>> 0;
    result.workLow = low >>> 0;
    result.workHigh = high >>> 0;
    if (high >= 0x100000000) {
      // Carry out: shift right one, keeping the lost bit sticky.
      const lost = result.workExtra & 1;
      result.workExtra = ((result.workExtra >>> 1) | ((result.workLow & 1) << 31) | lost) >>> 0;
      result.workLow = ((result.workLow >>> 1) | ((result.workHigh & 1) << 31)) >>> 0;
      result.workHigh = ((result.workHigh >>> 1) | 0x80000000) >>> 0;
      result.workExponent += 1;
    }
  } else {
    extra -= smallExtra;
    const borrowExtra = extra < 0 ? 1 : 0;
    low -= smallLow + borrowExtra;
    const borrowLow = low < 0 ? 1 : 0;
    high -= smallHigh + borrowLow;
    result.workExtra = extra >>> 0;
    result.workLow = low >>> 0;
    result.workHigh = high >>> 0;
    if (result.workHigh === 0 && result.workLow === 0 && result.workExtra === 0) {
      writeZero(result, rounding === Rounding.down ? 1 : 0);
      return denormal;
    }
    normalizeWork(result);
  }
  return denormal | roundPack(result, control, target);
}

/** x87 FSUB: a - b. */
export function extendedSubtract(a: ExtendedBits, b: ExtendedBits, control: number, result: SoftFloatResult): number {
  return extendedAdd(a, b, control, result, true);
}

/** The exact 128-bit product of two 64-bit significands into the scratch (top 96 bits, the rest sticky), via 16-bit limbs. */
function multiplySignificands(result: SoftFloatResult, aHigh: number, aLow: number, bHigh: number, bLow: number): void {
  const a0 = aLow & 0xffff, a1 = aLow >>> 16, a2 = aHigh & 0xffff, a3 = aHigh >>> 16;
  const b0 = bLow & 0xffff, b1 = bLow >>> 16, b2 = bHigh & 0xffff, b3 = bHigh >>> 16;
  // Column sums stay below 2^35, exact in doubles.
  let carry = 0;
  let column = a0 * b0;
  const limb0 = column % 65536;
  carry = Math.floor(column / 65536);
  column = a0 * b1 + a1 * b0 + carry;
  const limb1 = column % 65536;
  carry = Math.floor(column / 65536);
  column = a0 * b2 + a1 * b1 + a2 * b0 + carry;
  const limb2 = column % 65536;
  carry = Math.floor(column / 65536);
  column = a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0 + carry;
  const limb3 = column % 65536;
  carry = Math.floor(column / 65536);
  column = a1 * b3 + a2 * b2 + a3 * b1 + carry;
  const limb4 = column % 65536;
  carry = Math.floor(column / 65536);
  column = a2 * b3 + a3 * b2 + carry;
  const limb5 = column % 65536;
  carry = Math.floor(column / 65536);
  column = a3 * b3 + carry;
  const limb6 = column % 65536;
  const limb7 = Math.floor(column / 65536);
  result.workHigh = (limb7 * 65536 + limb6) >>> 0;
  result.workLow = (limb5 * 65536 + limb4) >>> 0;
  result.workExtra = ((limb3 * 65536 + limb2) | ((limb1 | limb0) !== 0 ? 1 : 0)) >>> 0;
}

/** x87 FMUL: a x b. */
export function extendedMultiply(a: ExtendedBits, b: ExtendedBits, control: number, result: SoftFloatResult, target: number = Target.x87): number {
  const aClass = classifyExtended(a);
  const bClass = classifyExtended(b);
  const special = specialOperands(result, a, aClass, b, bClass);
  if (special >= 0) return special;
  const denormal = aClass === ExtendedClass.denormal || bClass === ExtendedClass.denormal ? Exception.denormal : 0;
  if (denormalTrap(denormal, control, target)) return Exception.denormal;
  const sign = ((a.signExponent ^ b.signExponent) >>> 15) & 1;
  if (aClass === ExtendedClass.infinity || bClass === ExtendedClass.infinity) {
    if (aClass === ExtendedClass.zero || bClass === ExtendedClass.zero) {
      writeIndefinite(result);
      return Exception.invalid;
    }
    writeInfinity(result, sign);
    return denormal;
  }
  if (aClass === ExtendedClass.zero || bClass === ExtendedClass.zero) {
    writeZero(result, sign);
    return denormal;
  }
  multiplySignificands(result, normalizedHigh(a), normalizedLow(a), normalizedHigh(b), normalizedLow(b));
  result.workSign = sign;
  result.workExponent = exponentOf(a) + exponentOf(b) + 1;
  normalizeWork(result);
  return denormal | roundPack(result, control, target);
}

/**
 * Divides the 64-bit significands (both with the top bit set) by restoring
 * long division: 65 quotient bits plus a sticky remainder bit go into the
 * scratch. Returns 0 when a >= b, else -1 (the quotient was scaled by 2).
 */
export function divideSignificands(result: SoftFloatResult, aHigh: number, aLow: number, bHigh: number, bLow: number): number {
  let adjust = 0;
  // The remainder is up to 65 bits: top (0 or 1), high, low.
  let top = 0;
  let high = aHigh;
  let low = aLow;
  if (aHigh < bHigh || (aHigh === bHigh && aLow < bLow)) {
    top = high >>> 31;
    high = ((high << 1) | (low >>> 31)) >>> 0;
    low = (low << 1) >>> 0;
    adjust = -1;
  }
  let quotientHigh = 0;
  let quotientLow = 0;
  let quotientExtra = 0;
  for (let bit = 0; bit < 66; bit++) {
    const fits = top !== 0 || high > bHigh || (high === bHigh && low >= bLow);
    if (fits) {
      let newLow = low - bLow;
      const borrow = newLow < 0 ? 1 : 0;
      newLow += borrow * 0x100000000;
      high = (high - bHigh - borrow + 0x100000000) % 0x100000000;
      low = newLow;
      top = 0;
    }
    quotientHigh = ((quotientHigh << 1) | (quotientLow >>> 31)) >>> 0;
    quotientLow = ((quotientLow << 1) | (quotientExtra >>> 31)) >>> 0;
    quotientExtra = ((quotientExtra << 1) | (fits ? 1 : 0)) >>> 0;
    top = high >>> 31;
    high = ((high << 1) | (low >>> 31)) >>> 0;
    low = (low << 1) >>> 0;
  }
  // 66 bits collected: align so bit 95 is the first (integer) quotient bit.
  result.workHigh = ((quotientHigh << 30) | (quotientLow >>> 2)) >>> 0;
  result.workLow = ((quotientLow << 30) | (quotientExtra >>> 2)) >>> 0;
  result.workExtra = ((quotientExtra << 30) | (top | high | low ? 1 : 0)) >>> 0;
  return adjust;
}

/** x87 FDIV: a / b. */
export function extendedDivide(a: ExtendedBits, b: ExtendedBits, control: number, result: SoftFloatResult, target: number = Target.x87): number {
  const aClass = classifyExtended(a);
  const bClass = classifyExtended(b);
  const special = specialOperands(result, a, aClass, b, bClass);
  if (special >= 0) return special;
  const denormal = aClass === ExtendedClass.denormal || bClass === ExtendedClass.denormal ? Exception.denormal : 0;
  const sign = ((a.signExponent ^ b.signExponent) >>> 15) & 1;
  if (aClass === ExtendedClass.infinity) {
    if (bClass === ExtendedClass.infinity) {
      writeIndefinite(result);
      return Exception.invalid;
    }
    writeInfinity(result, sign);
    return denormal;
  }
  if (bClass === ExtendedClass.infinity) {
    writeZero(result, sign);
    return denormal;
  }
  if (bClass === ExtendedClass.zero) {
    if (aClass === ExtendedClass.zero) {
      writeIndefinite(result);
      return Exception.invalid;
    }
    // The host reports only ZE here, even for a denormal dividend.
    writeInfinity(result, sign);
    return Exception.zeroDivide;
  }
  if (denormalTrap(denormal, control, target)) return Exception.denormal;
  if (aClass === ExtendedClass.zero) {
    writeZero(result, sign);
    return denormal;
  }
  const adjust = divideSignificands(result, normalizedHigh(a), normalizedLow(a), normalizedHigh(b), normalizedLow(b));
  result.workSign = sign;
  result.workExponent = exponentOf(a) - exponentOf(b) + adjust;
  return denormal | roundPack(result, control, target);
}

/** Bit `index` of the 64-bit value high:low (0 outside it). */
function bitAt(high: number, low: number, index: number): number {
  if (index < 0 || index > 63) return 0;
  return index >= 32 ? (high >>> (index - 32)) & 1 : (low >>> index) & 1;
}

/**
 * The integer square root of the 130-bit value m x 2^shift (m 64 bits, shift
 * 65 or 66), digit by digit: 65 root bits into the scratch top, the sticky bit
 * set when the root is inexact.
 */
export function squareRootSignificand(result: SoftFloatResult, high: number, low: number, shift: number): void {
  // Remainder and root as three 32-bit words each (they stay below 2^68).
  let remainder2 = 0, remainder1 = 0, remainder0 = 0;
  let root2 = 0, root1 = 0, root0 = 0;
  for (let pair = 64; pair >= 0; pair--) {
    const incoming = (bitAt(high, low, 2 * pair + 1 - shift) << 1) | bitAt(high, low, 2 * pair - shift);
    remainder2 = ((remainder2 << 2) | (remainder1 >>> 30)) >>> 0;
    remainder1 = ((remainder1 << 2) | (remainder0 >>> 30)) >>> 0;
    remainder0 = ((remainder0 << 2) | incoming) >>> 0;
    const trial2 = ((root2 << 2) | (root1 >>> 30)) >>> 0;
    const trial1 = ((root1 << 2) | (root0 >>> 30)) >>> 0;
    const trial0 = ((root0 << 2) | 1) >>> 0;
    root2 = ((root2 << 1) | (root1 >>> 31)) >>> 0;
    root1 = ((root1 << 1) | (root0 >>> 31)) >>> 0;
    root0 = (root0 << 1) >>> 0;
    const fits = remainder2 > trial2 || (remainder2 === trial2 && (remainder1 > trial1 || (remainder1 === trial1 && remainder0 >= trial0)));
    if (fits) {
      let word0 = remainder0 - trial0;
      const borrow0 = word0 < 0 ? 1 : 0;
      word0 += borrow0 * 0x100000000;
      let word1 = remainder1 - trial1 - borrow0;
      const borrow1 = word1 < 0 ? 1 : 0;
      word1 += borrow1 * 0x100000000;
      remainder2 = (remainder2 - trial2 - borrow1) >>> 0;
      remainder1 = word1;
      remainder0 = word0;
      root0 = (root0 | 1) >>> 0;
    }
  }
  // The root has 65 bits: bit 64 in root2 bit 0.
  result.workHigh = ((root2 << 31) | (root1 >>> 1)) >>> 0;
  result.workLow = ((root1 << 31) | (root0 >>> 1)) >>> 0;
  result.workExtra = ((root0 << 31) | (remainder2 | remainder1 | remainder0 ? 1 : 0)) >>> 0;
}

/** x87 FSQRT. */
export function extendedSquareRoot(a: ExtendedBits, control: number, result: SoftFloatResult, target: number = Target.x87): number {
  const aClass = classifyExtended(a);
  if (aClass === ExtendedClass.unsupported) {
    writeIndefinite(result);
    return Exception.invalid;
  }
  if (isNaNClass(aClass)) return propagateNaN(result, a, aClass, a, ExtendedClass.zero);
  const sign = (a.signExponent >>> 15) & 1;
  if (aClass === ExtendedClass.zero) {
    writeZero(result, sign);
    return 0;
  }
  const denormal = aClass === ExtendedClass.denormal ? Exception.denormal : 0;
  if (sign !== 0) {
    // The host reports only IE for a negative denormal.
    writeIndefinite(result);
    return Exception.invalid;
  }
  if (denormalTrap(denormal, control, target)) return Exception.denormal;
  if (aClass === ExtendedClass.infinity) {
    writeInfinity(result, 0);
    return 0;
  }
  const exponent = exponentOf(a);
  // value = m x 2^(exponent - 63); make (exponent - 63 - shift) even.
  const shift = ((exponent - 63 - 65) & 1) === 0 ? 65 : 66;
  squareRootSignificand(result, normalizedHigh(a), normalizedLow(a), shift);
  result.workSign = 0;
  result.workExponent = 64 + (exponent - 63 - shift) / 2;
  return denormal | roundPack(result, control, target);
}
