import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { Flag } from '../state/registers.js';
import {
  alignRight, blendBytes, blendWords, extendLanes, minimumPosition, multipleSumAbsoluteDifferences, shiftBytes, shuffleDwords, shuffleWords, testFlags,
} from './integer-shuffle.js';
import { SimdValue } from './simd-value.js';

/* References work on plain arrays of bytes and BigInt, written from the SDM's operation sections. */

const byte = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 0x7f, 0x80, 0xff));
const operand = fc.array(byte, { minLength: 16, maxLength: 16 });
const imm8 = fc.integer({ min: 0, max: 255 });

function valueOf(bytes: readonly number[]): SimdValue {
  const value = new SimdValue();
  value.bytes.set(bytes);
  return value;
}
const wordAt = (bytes: readonly number[], i: number): number => bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
const bytesOfWords = (words: readonly number[]): number[] => words.flatMap((word) => [word & 0xff, word >> 8]);
const bigOf = (bytes: readonly number[]): bigint => bytes.reduceRight((value, b) => (value << 8n) | BigInt(b), 0n);
const bytesOfBig = (value: bigint, count: number): number[] => Array.from({ length: count }, (_, i) => Number((value >> BigInt(8 * i)) & 0xffn));

describe('SIMD integer shuffles, blends and extensions', () => {
  test.prop([operand, imm8])('PSHUFD', (b, control) => {
    const out = new SimdValue();
    shuffleDwords(out, valueOf(b), control);
    const expected = [0, 1, 2, 3].flatMap((i) => {
      const from = (control >> (2 * i)) & 3;
      return b.slice(4 * from, 4 * from + 4);
    });
    expect([...out.bytes]).toEqual(expected);
  });

  test.prop([operand, imm8, fc.constantFrom(0, 4), fc.constantFrom(8, 16)])('PSHUFW / PSHUFLW / PSHUFHW', (b, control, first, length) => {
    fc.pre(!(length === 8 && first === 4));
    const out = new SimdValue();
    shuffleWords(out, valueOf(b), control, first, length);
    const words = Array.from({ length: length / 2 }, (_, i) => wordAt(b, i));
    const expected = words.map((word, i) => (i >= first && i < first + 4 ? words[first + ((control >> (2 * (i - first))) & 3)]! : word));
    expect([...out.bytes.subarray(0, length)]).toEqual(bytesOfWords(expected));
  });

  test.prop([operand, operand, imm8, fc.constantFrom(8, 16)])('PALIGNR', (a, b, count, length) => {
    const out = new SimdValue();
    alignRight(out, valueOf(a), valueOf(b), count, length);
    const concatenated = (bigOf(a.slice(0, length)) << BigInt(8 * length)) | bigOf(b.slice(0, length));
    expect([...out.bytes.subarray(0, length)]).toEqual(bytesOfBig(concatenated >> BigInt(8 * count), length));
  });

  test.prop([operand, imm8, fc.boolean()])('PSLLDQ / PSRLDQ', (a, count, left) => {
    const out = new SimdValue();
    shiftBytes(out, valueOf(a), count, left);
    const value = bigOf(a);
    const by = BigInt(8 * Math.min(count, 16));
    expect([...out.bytes]).toEqual(bytesOfBig(left ? value << by : value >> by, 16));
  });

  test.prop([operand, operand, imm8])('PBLENDW', (a, b, control) => {
    const out = new SimdValue();
    blendWords(out, valueOf(a), valueOf(b), control);
    expect([...out.bytes]).toEqual(a.map((value, i) => ((control >> (i >> 1)) & 1 ? b[i]! : value)));
  });

  test.prop([operand, operand, operand])('PBLENDVB', (a, b, mask) => {
    const out = new SimdValue();
    blendBytes(out, valueOf(a), valueOf(b), valueOf(mask));
    expect([...out.bytes]).toEqual(a.map((value, i) => (mask[i]! >= 0x80 ? b[i]! : value)));
  });

  const WIDENINGS: Array<[number, number]> = [[1, 2], [1, 4], [1, 8], [2, 4], [2, 8], [4, 8]];
  test.prop([operand, fc.constantFrom(...WIDENINGS), fc.boolean()])('PMOVSX / PMOVZX', (b, [from, to], signed) => {
    const out = new SimdValue();
    extendLanes(out, valueOf(b), from, to, signed);
    const lanes = 16 / to;
    const expected = Array.from({ length: lanes }, (_, i) => {
      const raw = bigOf(b.slice(from * i, from * (i + 1)));
      const value = signed ? BigInt.asIntN(8 * from, raw) : raw;
      return bytesOfBig(BigInt.asUintN(8 * to, value), to);
    }).flat();
    expect([...out.bytes]).toEqual(expected);
  });

  test.prop([operand])('PMOVZX may widen in place', (b) => {
    const value = valueOf(b);
    const copy = new SimdValue();
    extendLanes(copy, valueOf(b), 1, 2, false);
    extendLanes(value, value, 1, 2, false);
    expect([...value.bytes]).toEqual([...copy.bytes]);
  });

  test.prop([operand])('PHMINPOSUW', (b) => {
    const out = new SimdValue();
    out.bytes.fill(0xaa);
    minimumPosition(out, valueOf(b));
    const words = Array.from({ length: 8 }, (_, i) => wordAt(b, i));
    const smallest = Math.min(...words);
    expect([...out.bytes]).toEqual(bytesOfWords([smallest, words.indexOf(smallest), 0, 0, 0, 0, 0, 0]));
  });

  test.prop([operand, operand, imm8])('MPSADBW', (a, b, control) => {
    const out = new SimdValue();
    multipleSumAbsoluteDifferences(out, valueOf(a), valueOf(b), control);
    const aStart = ((control >> 2) & 1) * 4;
    const bStart = (control & 3) * 4;
    const sums = Array.from({ length: 8 }, (_, i) => [0, 1, 2, 3].reduce((sum, j) => sum + Math.abs(a[aStart + i + j]! - b[bStart + j]!), 0));
    expect([...out.bytes]).toEqual(bytesOfWords(sums));
  });

  test.prop([operand, fc.oneof(operand, fc.constant(new Array<number>(16).fill(0)))])('PTEST', (a, b) => {
    const x = bigOf(a);
    const y = bigOf(b);
    const all = (1n << 128n) - 1n;
    const expected = ((x & y) === 0n ? Flag.ZF : 0) | ((~x & all & y) === 0n ? Flag.CF : 0);
    expect(testFlags(valueOf(a), valueOf(b))).toBe(expected);
    // A value tested against itself: ZF only when it is zero, CF always.
    expect(testFlags(valueOf(b), valueOf(b)) & Flag.CF).toBe(Flag.CF);
  });
});
