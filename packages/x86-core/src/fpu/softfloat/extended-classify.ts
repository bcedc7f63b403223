import type { ExtendedBits } from './types.js';

/** Operand classes of an 80-bit value, as the arithmetic sees them. */
export enum ExtendedClass {
  zero = 0,
  /** Denormal or pseudo-denormal (exponent 0, nonzero significand): raises DE. */
  denormal = 1,
  normal = 2,
  infinity = 3,
  quietNaN = 4,
  signalingNaN = 5,
  /** Unnormal, pseudo-NaN, pseudo-infinity: invalid operands on the 387 and later. */
  unsupported = 6,
}

export function classifyExtended(value: ExtendedBits): number {
  const exponent = value.signExponent & 0x7fff;
  const integerBit = value.high >>> 31;
  if (exponent === 0) return value.high === 0 && value.low === 0 ? ExtendedClass.zero : ExtendedClass.denormal;
  if (integerBit === 0) return ExtendedClass.unsupported;
  if (exponent !== 0x7fff) return ExtendedClass.normal;
  if ((value.high & 0x7fffffff) === 0 && value.low === 0) return ExtendedClass.infinity;
  return value.high & 0x40000000 ? ExtendedClass.quietNaN : ExtendedClass.signalingNaN;
}

export function isNaNClass(valueClass: number): boolean {
  return valueClass === ExtendedClass.quietNaN || valueClass === ExtendedClass.signalingNaN;
}
