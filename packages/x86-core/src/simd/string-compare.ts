import { Flag } from '../state/registers.js';
import type { SimdValue } from './simd-value.js';

/*
 * The SSE4.2 string comparison engine shared by PCMPESTRI, PCMPESTRM,
 * PCMPISTRI and PCMPISTRM (Intel SDM vol. 2, section 4.1, "Imm8 Control Byte
 * Operation"). The first operand (`a`, the register) holds the pattern (a
 * character set, ranges, or a substring); the second (`b`, register or
 * memory) holds the text. The immediate selects:
 *   bits 1:0  element format: unsigned bytes, unsigned words, signed bytes, signed words
 *   bits 3:2  aggregation: equal any, ranges, equal each, equal ordered
 *   bits 5:4  polarity: positive, negative, positive (masked), negative masked
 *   bit 6     index: least or most significant set bit; mask: bit mask or element mask
 * Results are 16-bit masks (IntRes2), one bit per element of the text.
 */

export enum Aggregation { equalAny = 0, ranges = 1, equalEach = 2, equalOrdered = 3 }

/** Elements per operand: 8 words or 16 bytes. */
export function elementCount(control: number): number {
  return control & 1 ? 8 : 16;
}

function element(value: SimdValue, index: number, control: number): number {
  switch (control & 3) {
    case 0: return value.bytes[index]!;
    case 1: return value.words[index]!;
    case 2: return value.signedBytes[index]!;
    default: return value.signedWords[index]!;
  }
}

/** The implicit length (PCMPISTRx): the index of the first null element, or the element count. */
export function implicitLength(value: SimdValue, control: number): number {
  const count = elementCount(control);
  for (let i = 0; i < count; i++) if (element(value, i, control) === 0) return i;
  return count;
}

/**
 * The explicit length (PCMPESTRx) from EAX/EDX (`high` is the sign of the low
 * half) or RAX/RDX with REX.W: the absolute value, saturated to the element count.
 */
export function explicitLength(low: number, high: number, control: number): number {
  const magnitude = Math.abs(high * 4294967296 + (low >>> 0));
  const count = elementCount(control);
  return magnitude > count ? count : magnitude;
}

/** IntRes1 for one text element `j` (valid elements only: the callers have checked `j < lengthB`). */
function aggregate(a: SimdValue, b: SimdValue, control: number, lengthA: number, j: number): boolean {
  const text = element(b, j, control);
  switch ((control >>> 2) & 3) {
    case Aggregation.equalAny:
      for (let i = 0; i < lengthA; i++) if (element(a, i, control) === text) return true;
      return false;
    case Aggregation.ranges:
      // Pattern elements pair up as [low, high]; a pair with an invalid element never matches.
      for (let i = 0; i + 1 < lengthA; i += 2) if (element(a, i, control) <= text && text <= element(a, i + 1, control)) return true;
      return false;
    default:
      return false;
  }
}

/**
 * IntRes2: the aggregated comparison with the polarity applied, one bit per
 * element of `b`. `lengthA` and `lengthB` are the valid element counts.
 */
export function stringCompareMask(a: SimdValue, b: SimdValue, control: number, lengthA: number, lengthB: number): number {
  const count = elementCount(control);
  const aggregation = (control >>> 2) & 3;
  let result = 0;
  for (let j = 0; j < count; j++) {
    let match: boolean;
    if (aggregation === Aggregation.equalEach) {
      // Both invalid compares true, one invalid false.
      const validA = j < lengthA;
      const validB = j < lengthB;
      match = validA && validB ? element(a, j, control) === element(b, j, control) : !validA && !validB;
    } else if (aggregation === Aggregation.equalOrdered) {
      // Does the pattern start at text element j? Pattern elements past its end match anything,
      // text elements past its end match nothing.
      match = true;
      for (let k = 0; k < count - j && k < lengthA; k++) {
        if (j + k >= lengthB || element(a, k, control) !== element(b, j + k, control)) {
          match = false;
          break;
        }
      }
    } else {
      match = j < lengthB && aggregate(a, b, control, lengthA, j);
    }
    if (match) result |= 1 << j;
  }
  const all = (1 << count) - 1;
  switch ((control >>> 4) & 3) {
    case 1: return ~result & all;
    case 3: return result ^ ((1 << lengthB) - 1);
    default: return result;
  }
}

/** CF: IntRes2 not zero; ZF: the text is shorter than a full operand; SF: the pattern is; OF: IntRes2 bit 0; AF, PF clear. */
export function stringCompareFlags(mask: number, control: number, lengthA: number, lengthB: number): number {
  const count = elementCount(control);
  return (mask !== 0 ? Flag.CF : 0) | (lengthB < count ? Flag.ZF : 0) | (lengthA < count ? Flag.SF : 0) | (mask & 1 ? Flag.OF : 0);
}

/** PCMPxSTRI's ECX: the least (bit 6 clear) or most significant set bit of IntRes2, or the element count when none. */
export function stringCompareIndex(mask: number, control: number): number {
  if (mask === 0) return elementCount(control);
  return control & 0x40 ? 31 - Math.clz32(mask) : 31 - Math.clz32(mask & -mask);
}

/** PCMPxSTRM's XMM0: IntRes2 zero-extended (bit 6 clear), or each element all ones where its bit is set. */
export function stringCompareMaskVector(out: SimdValue, mask: number, control: number): void {
  out.clear();
  if ((control & 0x40) === 0) {
    out.dwords[0] = mask;
    return;
  }
  const count = elementCount(control);
  for (let i = 0; i < count; i++) {
    if ((mask >>> i) & 1) {
      if (count === 8) out.words[i] = 0xffff;
      else out.bytes[i] = 0xff;
    }
  }
}
