import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { Flag } from '../state/registers.js';
import { SimdValue } from './simd-value.js';
import { explicitLength, implicitLength, stringCompareFlags, stringCompareIndex, stringCompareMask, stringCompareMaskVector } from './string-compare.js';

/*
 * The reference follows the SDM's description literally: the full BoolRes
 * matrix over every (pattern i, text j) pair, the override table for invalid
 * elements, then the aggregation formulas and the polarity, on arrays of
 * booleans.
 */

function elementsOf(bytes: Uint8Array, control: number): number[] {
  const words = (control & 1) !== 0;
  const signed = (control & 2) !== 0;
  const out: number[] = [];
  for (let i = 0; i < (words ? 8 : 16); i++) {
    const raw = words ? bytes[2 * i]! | (bytes[2 * i + 1]! << 8) : bytes[i]!;
    const bits = words ? 16 : 8;
    out.push(signed && raw >= 2 ** (bits - 1) ? raw - 2 ** bits : raw);
  }
  return out;
}

function referenceMask(pattern: Uint8Array, text: Uint8Array, control: number, lengthA: number, lengthB: number): number {
  const a = elementsOf(pattern, control);
  const b = elementsOf(text, control);
  const count = a.length;
  const aggregation = (control >> 2) & 3;
  const boolRes = (i: number, j: number): boolean => {
    const validA = i < lengthA;
    const validB = j < lengthB;
    if (!validA || !validB) {
      // SDM table 4-7: equal each: true when both are invalid; equal ordered: true when the pattern element is.
      if (aggregation === 2) return !validA && !validB;
      if (aggregation === 3) return !validA;
      return false;
    }
    if (aggregation === 1) return i % 2 === 0 ? b[j]! >= a[i]! : b[j]! <= a[i]!;
    return a[i] === b[j];
  };
  const intRes1: boolean[] = [];
  for (let j = 0; j < count; j++) {
    let bit = false;
    if (aggregation === 0) for (let i = 0; i < count; i++) bit ||= boolRes(i, j);
    else if (aggregation === 1) for (let i = 0; i < count; i += 2) bit ||= boolRes(i, j) && boolRes(i + 1, j);
    else if (aggregation === 2) bit = boolRes(j, j);
    else {
      bit = true;
      for (let k = 0; j + k < count; k++) bit &&= boolRes(k, j + k);
    }
    intRes1.push(bit);
  }
  const polarity = (control >> 4) & 3;
  const intRes2 = intRes1.map((bit, j) => (polarity === 1 || (polarity === 3 && j < lengthB) ? !bit : bit));
  return intRes2.reduce((mask, bit, j) => mask + (bit ? 2 ** j : 0), 0);
}

/** Small alphabets make matches, ranges and nulls frequent. */
const character = fc.oneof(fc.constantFrom(0, 0x41, 0x42, 0x43, 0x61, 0x80, 0xff), fc.integer({ min: 0, max: 255 }));
const operand = fc.array(character, { minLength: 16, maxLength: 16 }).map((bytes) => Uint8Array.from(bytes));
const control = fc.integer({ min: 0, max: 0x7f });

function valueOf(bytes: Uint8Array): SimdValue {
  const value = new SimdValue();
  value.bytes.set(bytes);
  return value;
}

describe('SSE4.2 string comparison', () => {
  test.prop([operand, operand, control, fc.integer({ min: 0, max: 16 }), fc.integer({ min: 0, max: 16 })], { numRuns: 3000 })(
    'IntRes2 for explicit lengths matches the SDM matrix model',
    (pattern, text, imm, lengthA, lengthB) => {
      const count = imm & 1 ? 8 : 16;
      const la = Math.min(lengthA, count);
      const lb = Math.min(lengthB, count);
      expect(stringCompareMask(valueOf(pattern), valueOf(text), imm, la, lb)).toBe(referenceMask(pattern, text, imm, la, lb));
    },
  );

  test.prop([operand, operand, control], { numRuns: 1000 })('implicit lengths stop at the first null element', (pattern, text, imm) => {
    const nullAt = (bytes: Uint8Array): number => {
      const elements = elementsOf(bytes, imm);
      const index = elements.indexOf(0);
      return index < 0 ? elements.length : index;
    };
    expect(implicitLength(valueOf(pattern), imm)).toBe(nullAt(pattern));
    expect(implicitLength(valueOf(text), imm)).toBe(nullAt(text));
  });

  test('explicit lengths are absolute values saturated to the element count', () => {
    expect(explicitLength(5, 0, 0)).toBe(5);
    expect(explicitLength(-5, -1, 0)).toBe(5);
    expect(explicitLength(-17, -1, 0)).toBe(16);
    expect(explicitLength(17, 0, 1)).toBe(8);
    expect(explicitLength(0x80000000 | 0, -1, 0)).toBe(16);
    // RAX = 2^32 + 3 with REX.W is large, not 3.
    expect(explicitLength(3, 1, 0)).toBe(16);
    expect(explicitLength(0, 0x80000000 | 0, 0)).toBe(16);
  });

  test('flags: CF from the mask, ZF and SF from short operands, OF from bit 0', () => {
    expect(stringCompareFlags(0, 0, 16, 16)).toBe(0);
    expect(stringCompareFlags(0b10, 0, 16, 3)).toBe(Flag.CF | Flag.ZF);
    expect(stringCompareFlags(0b1, 1, 7, 8)).toBe(Flag.CF | Flag.SF | Flag.OF);
  });

  test('index: least or most significant set bit, or the element count', () => {
    expect(stringCompareIndex(0b0110_0000, 0)).toBe(5);
    expect(stringCompareIndex(0b0110_0000, 0x40)).toBe(6);
    expect(stringCompareIndex(0, 0)).toBe(16);
    expect(stringCompareIndex(0, 0x41)).toBe(8);
    expect(stringCompareIndex(0x8000, 0)).toBe(15);
  });

  test('mask output: zero-extended bits or expanded elements', () => {
    const out = new SimdValue();
    out.bytes.fill(0x55);
    stringCompareMaskVector(out, 0x8005, 0);
    expect([...out.bytes]).toEqual([0x05, 0x80, ...new Array<number>(14).fill(0)]);
    stringCompareMaskVector(out, 0x8005, 0x40);
    expect([...out.bytes]).toEqual([0xff, 0, 0xff, ...new Array<number>(12).fill(0), 0xff]);
    stringCompareMaskVector(out, 0x81, 0x41);
    expect([...out.words]).toEqual([0xffff, 0, 0, 0, 0, 0, 0, 0xffff]);
  });

  test('worked examples', () => {
    const text = valueOf(new TextEncoder().encode('hello, world!\0\0\0'));
    // Equal any over the set ", !": positions 5, 6 and 12.
    const set = valueOf(Uint8Array.from([0x2c, 0x20, 0x21, ...new Array<number>(13).fill(0)]));
    expect(stringCompareMask(set, text, 0x00, implicitLength(set, 0), implicitLength(text, 0))).toBe((1 << 5) | (1 << 6) | (1 << 12));
    // Ranges a-z: every lower-case letter.
    const range = valueOf(Uint8Array.from([0x61, 0x7a, ...new Array<number>(14).fill(0)]));
    expect(stringCompareMask(range, text, 0x04, 2, 13)).toBe(0b1111_1001_1111);
    // Equal ordered "wor" starts at 7.
    const word = valueOf(Uint8Array.from([0x77, 0x6f, 0x72, ...new Array<number>(13).fill(0)]));
    expect(stringCompareMask(word, text, 0x0c, 3, 13)).toBe(1 << 7);
  });
});
