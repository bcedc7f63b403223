import { classifyExtended, ExtendedClass } from './extended-classify.js';
import { exponentOf, loadWork, writeZero } from './extended-arithmetic.js';
import { normalizeWork, roundWork, shiftWorkRightJamming } from './round.js';
import { EXTENDED_BIAS, Exception, type ExtendedBits, type SoftFloatResult } from './types.js';

/*
 * FBLD/FBSTP: the 80-bit packed BCD integer (18 digits, two per byte, lowest
 * first; sign in bit 7 of byte 9) travels in the same three words as an
 * extended value: bytes 0-3 in low, 4-7 in high, 8-9 in signExponent.
 */

const BILLION = 1_000_000_000;
const TWO_32 = 0x100000000;

/** Nine digits from packed BCD bits starting at nibble `first` of the 72-bit digit field. */
function nineDigits(bcd: ExtendedBits, first: number): number {
  let value = 0;
  for (let nibble = first + 8; nibble >= first; nibble--) {
    const word = nibble < 8 ? bcd.low : nibble < 16 ? bcd.high : bcd.signExponent;
    value = value * 10 + ((word >>> ((nibble % 8) * 4)) & 0xf);
  }
  return value;
}

/** FBLD: the packed BCD value as an exact extended value (digits above 9 give undefined results on hardware). */
export function bcdToExtended(bcd: ExtendedBits, result: SoftFloatResult): number {
  const sign = (bcd.signExponent >>> 15) & 1;
  const upper = nineDigits(bcd, 9);
  const lower = nineDigits(bcd, 0);
  // value = upper x 10^9 + lower, assembled in exact 32-bit pieces (upper split at 16 bits).
  const partLow = (upper % 65536) * BILLION + lower;
  const partHigh = Math.floor(upper / 65536) * BILLION;
  const lowSum = (partHigh % 65536) * 65536 + (partLow % TWO_32);
  const high = Math.floor(partHigh / 65536) + Math.floor(partLow / TWO_32) + Math.floor(lowSum / TWO_32);
  const low = lowSum % TWO_32;
  if (high === 0 && low === 0) {
    writeZero(result, sign);
    return 0;
  }
  result.workHigh = high >>> 0;
  result.workLow = low >>> 0;
  result.workExtra = 0;
  result.workExponent = 63;
  normalizeWork(result);
  result.signExponent = (sign << 15) | (result.workExponent + EXTENDED_BIAS);
  result.high = result.workHigh;
  result.low = result.workLow;
  return 0;
}

/** The packed BCD indefinite FBSTP stores on invalid: FFFF C000 0000 0000 0000. */
function writeBcdIndefinite(result: SoftFloatResult): number {
  result.signExponent = 0xffff;
  result.high = 0xc0000000;
  result.low = 0;
  return Exception.invalid;
}

/** FBSTP: rounds under the rounding control to an integer and packs it as BCD; beyond 18 digits it is the BCD indefinite with IE. */
export function extendedToBcd(value: ExtendedBits, control: number, result: SoftFloatResult): number {
  const valueClass = classifyExtended(value);
  const sign = (value.signExponent >>> 15) & 1;
  if (valueClass === ExtendedClass.zero) {
    result.signExponent = sign << 15;
    result.high = result.low = 0;
    return 0;
  }
  if (valueClass !== ExtendedClass.normal && valueClass !== ExtendedClass.denormal) return writeBcdIndefinite(result);
  const exponent = exponentOf(value);
  if (exponent >= 60) return writeBcdIndefinite(result);
  loadWork(result, value);
  result.workSign = sign;
  shiftWorkRightJamming(result, 63 - exponent);
  const report = roundWork(result, 64, (control >> 10) & 3);
  const high = result.workHigh;
  const low = result.workLow;
  // Split into two nine-digit halves: divide high:low by 10^9 through 16-bit limbs (exact in doubles).
  let remainder = 0;
  let quotient = 0;
  for (let index = 0; index < 4; index++) {
    const word = index < 2 ? high : low;
    const limb = index % 2 === 0 ? word >>> 16 : word & 0xffff;
    const current = remainder * 65536 + limb;
    quotient = quotient * 65536 + Math.floor(current / BILLION);
    remainder = current % BILLION;
  }
  if (quotient >= BILLION) return writeBcdIndefinite(result);
  let lowWord = 0;
  let highWord = 0;
  let topByte = 0;
  let lower = remainder;
  let upper = quotient;
  for (let nibble = 0; nibble < 18; nibble++) {
    const digit = nibble < 9 ? lower % 10 : upper % 10;
    if (nibble < 9) lower = Math.floor(lower / 10);
    else upper = Math.floor(upper / 10);
    if (nibble < 8) lowWord += digit * 2 ** (nibble * 4);
    else if (nibble < 16) highWord += digit * 2 ** ((nibble - 8) * 4);
    else topByte += digit * 2 ** ((nibble - 16) * 4);
  }
  result.low = lowWord >>> 0;
  result.high = highWord >>> 0;
  result.signExponent = (sign << 15) | topByte;
  return (report & 1 ? Exception.precision : 0) | (report & 2 ? Exception.roundedUp : 0);
}
