import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { BINARY_OPERATIONS, type BinaryOperationName, byteSignMask, shiftCount, shiftLanes, ShiftKind } from './integer-lanes.js';
import { SimdValue } from './simd-value.js';

/*
 * The reference is a different model: operands as arrays of BigInt lanes,
 * each operation written from the SDM's definition on mathematical integers
 * and only then truncated to the lane width.
 */

type Lanes = bigint[];

function lanesOf(bytes: Uint8Array, laneBits: number, signed: boolean): Lanes {
  const lanes: Lanes = [];
  const laneBytes = laneBits / 8;
  for (let offset = 0; offset < bytes.length; offset += laneBytes) {
    let value = 0n;
    for (let i = laneBytes - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[offset + i]!);
    lanes.push(signed ? BigInt.asIntN(laneBits, value) : value);
  }
  return lanes;
}

function bytesOf(lanes: Lanes, laneBits: number): number[] {
  const bytes: number[] = [];
  for (const lane of lanes) {
    const value = BigInt.asUintN(laneBits, lane);
    for (let i = 0; i < laneBits / 8; i++) bytes.push(Number((value >> BigInt(8 * i)) & 0xffn));
  }
  return bytes;
}

const clamp = (value: bigint, low: bigint, high: bigint): bigint => (value < low ? low : value > high ? high : value);
const signedRange = (bits: number): [bigint, bigint] => [-(1n << BigInt(bits - 1)), (1n << BigInt(bits - 1)) - 1n];
const unsignedRange = (bits: number): [bigint, bigint] => [0n, (1n << BigInt(bits)) - 1n];
const abs = (value: bigint): bigint => (value < 0n ? -value : value);

type Reference = (a: Uint8Array, b: Uint8Array) => number[];

/** Lane i of the result from lane i of each operand. */
function perLane(bits: number, signed: boolean, operation: (x: bigint, y: bigint) => bigint): Reference {
  return (a, b) => {
    const x = lanesOf(a, bits, signed);
    const y = lanesOf(b, bits, signed);
    return bytesOf(x.map((value, i) => operation(value, y[i]!)), bits);
  };
}

const saturating = (bits: number, signed: boolean, operation: (x: bigint, y: bigint) => bigint): Reference => {
  const [low, high] = signed ? signedRange(bits) : unsignedRange(bits);
  return perLane(bits, signed, (x, y) => clamp(operation(x, y), low, high));
};

/** Result lanes built from whole lane lists (pairs, halves, interleaving). */
function whole(bits: number, signed: boolean, resultBits: number, build: (x: Lanes, y: Lanes) => Lanes): Reference {
  return (a, b) => bytesOf(build(lanesOf(a, bits, signed), lanesOf(b, bits, signed)), resultBits);
}

const pairs = (lanes: Lanes, operation: (x: bigint, y: bigint) => bigint): Lanes => lanes.filter((_, i) => i % 2 === 0).map((value, i) => operation(value, lanes[2 * i + 1]!));
const interleave = (x: Lanes, y: Lanes, high: boolean): Lanes => {
  const half = x.length / 2;
  return x.slice(high ? half : 0, high ? x.length : half).flatMap((value, i) => [value, y[(high ? half : 0) + i]!]);
};
const truth = (condition: boolean): bigint => (condition ? -1n : 0n);

const REFERENCES: Record<BinaryOperationName, Reference> = {
  addBytes: perLane(8, false, (x, y) => x + y),
  addWords: perLane(16, false, (x, y) => x + y),
  addDwords: perLane(32, false, (x, y) => x + y),
  addQuadwords: perLane(64, false, (x, y) => x + y),
  subtractBytes: perLane(8, false, (x, y) => x - y),
  subtractWords: perLane(16, false, (x, y) => x - y),
  subtractDwords: perLane(32, false, (x, y) => x - y),
  subtractQuadwords: perLane(64, false, (x, y) => x - y),
  addSignedSaturateBytes: saturating(8, true, (x, y) => x + y),
  addSignedSaturateWords: saturating(16, true, (x, y) => x + y),
  addUnsignedSaturateBytes: saturating(8, false, (x, y) => x + y),
  addUnsignedSaturateWords: saturating(16, false, (x, y) => x + y),
  subtractSignedSaturateBytes: saturating(8, true, (x, y) => x - y),
  subtractSignedSaturateWords: saturating(16, true, (x, y) => x - y),
  subtractUnsignedSaturateBytes: saturating(8, false, (x, y) => x - y),
  subtractUnsignedSaturateWords: saturating(16, false, (x, y) => x - y),
  multiplyLowWords: perLane(16, true, (x, y) => x * y),
  multiplyHighWords: perLane(16, true, (x, y) => (x * y) >> 16n),
  multiplyHighUnsignedWords: perLane(16, false, (x, y) => (x * y) >> 16n),
  multiplyHighRoundScaleWords: perLane(16, true, (x, y) => (((x * y) >> 14n) + 1n) >> 1n),
  multiplyAddWords: whole(16, true, 32, (x, y) => pairs(x.map((value, i) => value * y[i]!), (first, second) => first + second)),
  multiplyAddUnsignedSignedBytes: (a, b) => {
    const x = lanesOf(a, 8, false);
    const y = lanesOf(b, 8, true);
    const [low, high] = signedRange(16);
    return bytesOf(pairs(x.map((value, i) => value * y[i]!), (first, second) => clamp(first + second, low, high)), 16);
  },
  multiplyUnsignedDwords: whole(32, false, 64, (x, y) => x.filter((_, i) => i % 2 === 0).map((value, i) => value * y[2 * i]!)),
  multiplySignedDwords: whole(32, true, 64, (x, y) => x.filter((_, i) => i % 2 === 0).map((value, i) => value * y[2 * i]!)),
  multiplyLowDwords: perLane(32, true, (x, y) => x * y),
  equalBytes: perLane(8, false, (x, y) => truth(x === y)),
  equalWords: perLane(16, false, (x, y) => truth(x === y)),
  equalDwords: perLane(32, false, (x, y) => truth(x === y)),
  equalQuadwords: perLane(64, false, (x, y) => truth(x === y)),
  greaterBytes: perLane(8, true, (x, y) => truth(x > y)),
  greaterWords: perLane(16, true, (x, y) => truth(x > y)),
  greaterDwords: perLane(32, true, (x, y) => truth(x > y)),
  greaterQuadwords: perLane(64, true, (x, y) => truth(x > y)),
  and: perLane(8, false, (x, y) => x & y),
  andNot: perLane(8, false, (x, y) => ~x & y),
  or: perLane(8, false, (x, y) => x | y),
  xor: perLane(8, false, (x, y) => x ^ y),
  minimumUnsignedBytes: perLane(8, false, (x, y) => (x < y ? x : y)),
  maximumUnsignedBytes: perLane(8, false, (x, y) => (x > y ? x : y)),
  minimumSignedBytes: perLane(8, true, (x, y) => (x < y ? x : y)),
  maximumSignedBytes: perLane(8, true, (x, y) => (x > y ? x : y)),
  minimumUnsignedWords: perLane(16, false, (x, y) => (x < y ? x : y)),
  maximumUnsignedWords: perLane(16, false, (x, y) => (x > y ? x : y)),
  minimumSignedWords: perLane(16, true, (x, y) => (x < y ? x : y)),
  maximumSignedWords: perLane(16, true, (x, y) => (x > y ? x : y)),
  minimumUnsignedDwords: perLane(32, false, (x, y) => (x < y ? x : y)),
  maximumUnsignedDwords: perLane(32, false, (x, y) => (x > y ? x : y)),
  minimumSignedDwords: perLane(32, true, (x, y) => (x < y ? x : y)),
  maximumSignedDwords: perLane(32, true, (x, y) => (x > y ? x : y)),
  averageBytes: perLane(8, false, (x, y) => (x + y + 1n) / 2n),
  averageWords: perLane(16, false, (x, y) => (x + y + 1n) / 2n),
  sumAbsoluteDifferences: (a, b) => {
    const result: Lanes = [];
    for (let group = 0; group < a.length; group += 8) {
      let sum = 0n;
      for (let i = group; i < group + 8; i++) sum += abs(BigInt(a[i]!) - BigInt(b[i]!));
      result.push(sum);
    }
    return bytesOf(result, 64);
  },
  horizontalAddWords: whole(16, false, 16, (x, y) => [...pairs(x, (p, q) => p + q), ...pairs(y, (p, q) => p + q)]),
  horizontalAddDwords: whole(32, false, 32, (x, y) => [...pairs(x, (p, q) => p + q), ...pairs(y, (p, q) => p + q)]),
  horizontalAddSaturateWords: whole(16, true, 16, (x, y) => [...pairs(x, (p, q) => clamp(p + q, -32768n, 32767n)), ...pairs(y, (p, q) => clamp(p + q, -32768n, 32767n))]),
  horizontalSubtractWords: whole(16, false, 16, (x, y) => [...pairs(x, (p, q) => p - q), ...pairs(y, (p, q) => p - q)]),
  horizontalSubtractDwords: whole(32, false, 32, (x, y) => [...pairs(x, (p, q) => p - q), ...pairs(y, (p, q) => p - q)]),
  horizontalSubtractSaturateWords: whole(16, true, 16, (x, y) => [...pairs(x, (p, q) => clamp(p - q, -32768n, 32767n)), ...pairs(y, (p, q) => clamp(p - q, -32768n, 32767n))]),
  signBytes: perLane(8, true, (x, y) => (y < 0n ? -x : y === 0n ? 0n : x)),
  signWords: perLane(16, true, (x, y) => (y < 0n ? -x : y === 0n ? 0n : x)),
  signDwords: perLane(32, true, (x, y) => (y < 0n ? -x : y === 0n ? 0n : x)),
  absoluteBytes: perLane(8, true, (_x, y) => abs(y)),
  absoluteWords: perLane(16, true, (_x, y) => abs(y)),
  absoluteDwords: perLane(32, true, (_x, y) => abs(y)),
  packSignedWordsToBytes: whole(16, true, 8, (x, y) => [...x, ...y].map((value) => clamp(value, -128n, 127n))),
  packSignedDwordsToWords: whole(32, true, 16, (x, y) => [...x, ...y].map((value) => clamp(value, -32768n, 32767n))),
  packUnsignedWordsToBytes: whole(16, true, 8, (x, y) => [...x, ...y].map((value) => clamp(value, 0n, 255n))),
  packUnsignedDwordsToWords: whole(32, true, 16, (x, y) => [...x, ...y].map((value) => clamp(value, 0n, 65535n))),
  unpackLowBytes: whole(8, false, 8, (x, y) => interleave(x, y, false)),
  unpackLowWords: whole(16, false, 16, (x, y) => interleave(x, y, false)),
  unpackLowDwords: whole(32, false, 32, (x, y) => interleave(x, y, false)),
  unpackLowQuadwords: whole(64, false, 64, (x, y) => interleave(x, y, false)),
  unpackHighBytes: whole(8, false, 8, (x, y) => interleave(x, y, true)),
  unpackHighWords: whole(16, false, 16, (x, y) => interleave(x, y, true)),
  unpackHighDwords: whole(32, false, 32, (x, y) => interleave(x, y, true)),
  unpackHighQuadwords: whole(64, false, 64, (x, y) => interleave(x, y, true)),
  shuffleBytes: (a, b) => [...b].map((index) => (index >= 0x80 ? 0 : a[index % a.length]!)),
};

/** Bytes biased to the values where lane arithmetic has its edges. */
const edgeByte = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0x81, 0xfe, 0xff));
const operand = (length: number): fc.Arbitrary<Uint8Array> => fc.array(edgeByte, { minLength: length, maxLength: length }).map((bytes) => Uint8Array.from(bytes));

function valueOf(bytes: Uint8Array): SimdValue {
  const value = new SimdValue();
  value.bytes.set(bytes);
  return value;
}

/** 64-bit lanes need 16 bytes for PUNPCK*QDQ (XMM only). */
const XMM_ONLY = new Set<BinaryOperationName>(['unpackLowQuadwords', 'unpackHighQuadwords']);

describe('SIMD integer lane operations against a BigInt model', () => {
  for (const name of Object.keys(BINARY_OPERATIONS) as BinaryOperationName[]) {
    for (const length of XMM_ONLY.has(name) ? [16] : [8, 16]) {
      test.prop([operand(length), operand(length)], { numRuns: 150 })(`${name} on ${length} bytes`, (a, b) => {
        const out = new SimdValue();
        out.bytes.fill(0xcc);
        BINARY_OPERATIONS[name](out, valueOf(a), valueOf(b), length);
        expect([...out.bytes.subarray(0, length)]).toEqual(REFERENCES[name](a, b));
        // Lanes past the operand length are not touched (an MMX operation only writes 8 bytes).
        expect([...out.bytes.subarray(length)].every((byte) => byte === 0xcc)).toBe(true);
      });
    }
  }

  const KINDS = [ShiftKind.leftLogical, ShiftKind.rightLogical, ShiftKind.rightArithmetic];
  test.prop([operand(16), fc.constantFrom(2, 4, 8), fc.constantFrom(...KINDS), fc.oneof(fc.integer({ min: 0, max: 70 }), fc.constantFrom(0x100, 0xffffffff))], { numRuns: 600 })(
    'PSLL/PSRL/PSRA by any count',
    (a, laneBytes, kind, count) => {
      fc.pre(!(kind === ShiftKind.rightArithmetic && laneBytes === 8));
      const bits = laneBytes * 8;
      const out = new SimdValue();
      shiftLanes(out, valueOf(a), kind, laneBytes, count, 16);
      const by = BigInt(Math.min(count, 100)); // the same result as any larger count, without a huge BigInt
      const expected = lanesOf(a, bits, kind === ShiftKind.rightArithmetic).map((x) =>
        kind === ShiftKind.leftLogical ? x << by : kind === ShiftKind.rightLogical ? x >> by : x >> (by >= BigInt(bits) ? BigInt(bits - 1) : by),
      );
      expect([...out.bytes]).toEqual(bytesOf(expected, bits));
    },
  );

  test('the shift count is the whole low quadword of the source', () => {
    const count = new SimdValue();
    count.dwords[0] = 5;
    expect(shiftCount(count)).toBe(5);
    count.dwords[1] = 1;
    expect(shiftCount(count)).toBeGreaterThanOrEqual(64);
    count.dwords[1] = 0;
    count.dwords[2] = 7; // the high quadword does not count
    expect(shiftCount(count)).toBe(5);
  });

  test.prop([operand(16)])('PMOVMSKB collects the byte sign bits', (a) => {
    const expected = [...a].reduce((mask, byte, i) => mask + (byte >= 0x80 ? 2 ** i : 0), 0);
    expect(byteSignMask(valueOf(a), 16)).toBe(expected);
    expect(byteSignMask(valueOf(a), 8)).toBe(expected % 256);
  });
});
