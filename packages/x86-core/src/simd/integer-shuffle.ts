import { Flag } from '../state/registers.js';
import type { SimdValue } from './simd-value.js';

/*
 * The SIMD integer operations that take an immediate, a third operand or
 * produce something other than lanes (Intel SDM vol. 2). `out` is always a
 * value distinct from the inputs.
 */

/** PSHUFD: each result dword is the source dword that the immediate's 2-bit field selects. */
export function shuffleDwords(out: SimdValue, b: SimdValue, control: number): void {
  for (let i = 0; i < 4; i++) out.dwords[i] = b.dwords[(control >>> (2 * i)) & 3]!;
}

/**
 * PSHUFW (`first` 0, 8-byte values), PSHUFLW (`first` 0) and PSHUFHW
 * (`first` 4): four words shuffled within their group, the other four (XMM
 * forms) copied.
 */
export function shuffleWords(out: SimdValue, b: SimdValue, control: number, first: number, length: number): void {
  out.copyFrom(b, length);
  for (let i = 0; i < 4; i++) out.words[first + i] = b.words[first + ((control >>> (2 * i)) & 3)]!;
}

/** PALIGNR: the destination:source concatenation (destination high) shifted right by `count` bytes. */
export function alignRight(out: SimdValue, a: SimdValue, b: SimdValue, count: number, length: number): void {
  for (let i = 0; i < length; i++) {
    const index = i + count;
    out.bytes[i] = index < length ? b.bytes[index]! : index < 2 * length ? a.bytes[index - length]! : 0;
  }
}

/** PSLLDQ (left) / PSRLDQ: the whole 128-bit value shifted by `count` bytes; counts past 15 clear it. */
export function shiftBytes(out: SimdValue, a: SimdValue, count: number, left: boolean): void {
  for (let i = 0; i < 16; i++) {
    const index = left ? i - count : i + count;
    out.bytes[i] = index >= 0 && index < 16 ? a.bytes[index]! : 0;
  }
}

/** PBLENDW: source words where the immediate's bit is set, destination words elsewhere. */
export function blendWords(out: SimdValue, a: SimdValue, b: SimdValue, control: number): void {
  for (let i = 0; i < 8; i++) out.words[i] = (control >>> i) & 1 ? b.words[i]! : a.words[i]!;
}

/** PBLENDVB: source bytes where the mask byte's top bit is set (the mask is XMM0). */
export function blendBytes(out: SimdValue, a: SimdValue, b: SimdValue, mask: SimdValue): void {
  for (let i = 0; i < 16; i++) out.bytes[i] = mask.bytes[i]! & 0x80 ? b.bytes[i]! : a.bytes[i]!;
}

/**
 * PMOVSX / PMOVZX: the low lanes of `fromBytes` of the source widened to
 * `toBytes` (2, 4 or 8), with sign or zero extension.
 */
export function extendLanes(out: SimdValue, b: SimdValue, fromBytes: number, toBytes: number, signed: boolean): void {
  const from = fromBytes === 1 ? (signed ? b.signedBytes : b.bytes) : fromBytes === 2 ? (signed ? b.signedWords : b.words) : signed ? b.signedDwords : b.dwords;
  const lanes = 16 / toBytes;
  // Top lane first: each lane is written at or above where it is read, so `out` may even be `b`.
  for (let i = lanes - 1; i >= 0; i--) {
    const value = from[i]!;
    if (toBytes === 2) out.words[i] = value;
    else if (toBytes === 4) out.dwords[i] = value;
    else {
      out.dwords[2 * i] = value;
      out.dwords[2 * i + 1] = value < 0 ? 0xffffffff : 0;
    }
  }
}

/** PHMINPOSUW: the smallest unsigned source word in word 0 and its (first) index in word 1; the rest zero. */
export function minimumPosition(out: SimdValue, b: SimdValue): void {
  let smallest = b.words[0]!;
  let index = 0;
  for (let i = 1; i < 8; i++) {
    if (b.words[i]! < smallest) {
      smallest = b.words[i]!;
      index = i;
    }
  }
  out.dwords[0] = smallest | (index << 16);
  out.dwords[1] = 0;
  out.dwords[2] = 0;
  out.dwords[3] = 0;
}

/**
 * MPSADBW: eight sums of absolute differences between the source's 4-byte
 * block (immediate bits 1:0) and the eight 4-byte windows starting at the
 * destination's byte 0 or 4 (immediate bit 2).
 */
export function multipleSumAbsoluteDifferences(out: SimdValue, a: SimdValue, b: SimdValue, control: number): void {
  const destinationOffset = control & 4;
  const sourceOffset = (control & 3) * 4;
  for (let i = 0; i < 8; i++) {
    let sum = 0;
    for (let j = 0; j < 4; j++) sum += Math.abs(a.bytes[destinationOffset + i + j]! - b.bytes[sourceOffset + j]!);
    out.words[i] = sum;
  }
}

/** PTEST: ZF when destination AND source is zero, CF when NOT destination AND source is zero; other arithmetic flags clear. */
export function testFlags(a: SimdValue, b: SimdValue): number {
  let and = 0;
  let andNot = 0;
  for (let i = 0; i < 4; i++) {
    and |= a.dwords[i]! & b.dwords[i]!;
    andNot |= ~a.dwords[i]! & b.dwords[i]!;
  }
  return (and === 0 ? Flag.ZF : 0) | (andNot === 0 ? Flag.CF : 0);
}
