import { highOf32 } from '../instructions/wide-math.js';
import { type LaneView, LANE_BYTES, type SimdValue } from './simd-value.js';

/**
 * Integer lane arithmetic of MMX, SSE2, SSSE3 and SSE4.1 (Intel SDM vol. 2),
 * on `SimdValue`s of `length` bytes (8 for MMX, 16 for XMM). Every binary
 * operation computes `out` from the destination `a` and the source `b`; `out`
 * must be a third value (lanes of `a` and `b` are read after `out` is written
 * for the packing and horizontal forms). Nothing here allocates.
 */
export type LaneOperation = (out: SimdValue, a: SimdValue, b: SimdValue, length: number) => void;

type LaneFunction = (x: number, y: number) => number;

/** `out[i] = operation(a[i], b[i])` on the lanes of `view`; the typed array wraps the result to the lane. */
function lanewise(view: LaneView, operation: LaneFunction): LaneOperation {
  const laneBytes = LANE_BYTES[view];
  return (out, a, b, length) => {
    const to = out[view];
    const x = a[view];
    const y = b[view];
    const count = length / laneBytes;
    for (let i = 0; i < count; i++) to[i] = operation(x[i]!, y[i]!);
  };
}

const saturate = (value: number, minimum: number, maximum: number): number => (value < minimum ? minimum : value > maximum ? maximum : value);
export const saturateSignedByte = (value: number): number => saturate(value, -128, 127);
export const saturateUnsignedByte = (value: number): number => saturate(value, 0, 255);
export const saturateSignedWord = (value: number): number => saturate(value, -32768, 32767);
export const saturateUnsignedWord = (value: number): number => saturate(value, 0, 65535);

const add: LaneFunction = (x, y) => x + y;
const subtract: LaneFunction = (x, y) => x - y;
const equal: LaneFunction = (x, y) => (x === y ? -1 : 0);
const greater: LaneFunction = (x, y) => (x > y ? -1 : 0);
const minimum: LaneFunction = (x, y) => (x < y ? x : y);
const maximum: LaneFunction = (x, y) => (x > y ? x : y);
const average: LaneFunction = (x, y) => (x + y + 1) >>> 1;
/** PSIGN: negate, zero or keep `x` by the sign of `y`. */
const sign: LaneFunction = (x, y) => (y < 0 ? -x : y === 0 ? 0 : x);

/** 64-bit lanes as (low, high) dword pairs. */
function quadwordLanes(operation: (out: Uint32Array, a: Uint32Array, b: Uint32Array, low: number) => void): LaneOperation {
  return (out, a, b, length) => {
    for (let low = 0; low < length / 4; low += 2) operation(out.dwords, a.dwords, b.dwords, low);
  };
}

const addQuadwords = quadwordLanes((out, a, b, i) => {
  const low = a[i]! + b[i]!;
  out[i] = low;
  out[i + 1] = a[i + 1]! + b[i + 1]! + (low > 0xffffffff ? 1 : 0);
});
const subtractQuadwords = quadwordLanes((out, a, b, i) => {
  const low = a[i]! - b[i]!;
  out[i] = low;
  out[i + 1] = a[i + 1]! - b[i + 1]! - (low < 0 ? 1 : 0);
});
const equalQuadwords = quadwordLanes((out, a, b, i) => {
  const mask = a[i] === b[i] && a[i + 1] === b[i + 1] ? 0xffffffff : 0;
  out[i] = mask;
  out[i + 1] = mask;
});
const greaterQuadwords = quadwordLanes((out, a, b, i) => {
  const highA = a[i + 1]! | 0;
  const highB = b[i + 1]! | 0;
  const mask = highA > highB || (highA === highB && a[i]! > b[i]!) ? 0xffffffff : 0;
  out[i] = mask;
  out[i + 1] = mask;
});

/** PMULUDQ / PMULDQ: the even dwords multiplied to full quadwords. */
function multiplyEvenDwords(signed: boolean): LaneOperation {
  return (out, a, b, length) => {
    for (let i = 0; i < length / 4; i += 2) {
      const x = a.dwords[i]!;
      const y = b.dwords[i]!;
      out.dwords[i] = Math.imul(x, y);
      out.dwords[i + 1] = highOf32(x, y);
      // Signed product = unsigned product - 2^32 * (x if y < 0) - 2^32 * (y if x < 0), modulo 2^64.
      if (signed) out.dwords[i + 1] = out.dwords[i + 1]! - (x >= 0x80000000 ? y : 0) - (y >= 0x80000000 ? x : 0);
    }
  };
}

/** PMADDWD: pairs of signed word products summed into dwords (only 0x8000 * 0x8000 * 2 wraps, as on hardware). */
const multiplyAddWords: LaneOperation = (out, a, b, length) => {
  const x = a.signedWords;
  const y = b.signedWords;
  for (let i = 0; i < length / 4; i++) out.signedDwords[i] = x[2 * i]! * y[2 * i]! + x[2 * i + 1]! * y[2 * i + 1]!;
};

/** PMADDUBSW: unsigned bytes of the destination times signed bytes of the source, pairs summed with signed saturation. */
const multiplyAddUnsignedSignedBytes: LaneOperation = (out, a, b, length) => {
  const x = a.bytes;
  const y = b.signedBytes;
  for (let i = 0; i < length / 2; i++) out.signedWords[i] = saturateSignedWord(x[2 * i]! * y[2 * i]! + x[2 * i + 1]! * y[2 * i + 1]!);
};

/** PSADBW: the sum of absolute byte differences of each 8-byte group into the group's low word. */
const sumAbsoluteDifferences: LaneOperation = (out, a, b, length) => {
  for (let group = 0; group < length; group += 8) {
    let sum = 0;
    for (let i = group; i < group + 8; i++) sum += Math.abs(a.bytes[i]! - b.bytes[i]!);
    out.dwords[group / 4] = sum;
    out.dwords[group / 4 + 1] = 0;
  }
};

/** PHADD/PHSUB: adjacent lane pairs of the destination fill the low half, those of the source the high half. */
function horizontal(view: LaneView, operation: LaneFunction): LaneOperation {
  const laneBytes = LANE_BYTES[view];
  return (out, a, b, length) => {
    const to = out[view];
    const pairs = length / laneBytes / 2;
    for (let i = 0; i < pairs; i++) {
      to[i] = operation(a[view][2 * i]!, a[view][2 * i + 1]!);
      to[pairs + i] = operation(b[view][2 * i]!, b[view][2 * i + 1]!);
    }
  };
}

/** PACKSS/PACKUS: the destination's lanes narrowed with saturation fill the low half, the source's the high half. */
function pack(from: LaneView, to: LaneView, narrow: (value: number) => number): LaneOperation {
  const fromBytes = LANE_BYTES[from];
  return (out, a, b, length) => {
    const count = length / fromBytes;
    const result = out[to];
    for (let i = 0; i < count; i++) {
      result[i] = narrow(a[from][i]!);
      result[count + i] = narrow(b[from][i]!);
    }
  };
}

/** PUNPCKL/PUNPCKH: lanes of the low (or high) halves of the destination and source interleaved. */
function unpack(laneBytes: 1 | 2 | 4 | 8, high: boolean): LaneOperation {
  // Quadword lanes move as dword pairs.
  const view: LaneView = laneBytes === 1 ? 'bytes' : laneBytes === 2 ? 'words' : 'dwords';
  const step = laneBytes === 8 ? 2 : 1;
  return (out, a, b, length) => {
    const lanes = length / laneBytes / 2;
    const first = high ? lanes : 0;
    const to = out[view];
    for (let i = 0; i < lanes; i++) {
      for (let part = 0; part < step; part++) {
        to[2 * i * step + part] = a[view][(first + i) * step + part]!;
        to[(2 * i + 1) * step + part] = b[view][(first + i) * step + part]!;
      }
    }
  };
}

/** PSHUFB: each byte of the result is the destination byte the source byte indexes, or zero when the index has bit 7 set. */
const shuffleBytes: LaneOperation = (out, a, b, length) => {
  const indexMask = length - 1;
  for (let i = 0; i < length; i++) {
    const index = b.bytes[i]!;
    out.bytes[i] = index & 0x80 ? 0 : a.bytes[index & indexMask]!;
  }
};

/** PABS: the absolute value of each source lane (the destination is unused; -128 stays 0x80). */
function absolute(view: LaneView): LaneOperation {
  const laneBytes = LANE_BYTES[view];
  return (out, _a, b, length) => {
    for (let i = 0; i < length / laneBytes; i++) out[view][i] = Math.abs(b[view][i]!);
  };
}

function bitwise(operation: LaneFunction): LaneOperation {
  return lanewise('signedDwords', operation);
}

/** Multiplications of word lanes. */
const multiplyLowWords = lanewise('words', (x, y) => Math.imul(x, y));
const multiplyHighWords = lanewise('signedWords', (x, y) => (x * y) >> 16);
const multiplyHighUnsignedWords = lanewise('words', (x, y) => (x * y) >>> 16);
/** PMULHRSW: the product's bits 30:15 rounded at bit 14. */
const multiplyHighRoundScaleWords = lanewise('signedWords', (x, y) => (((x * y) >> 14) + 1) >> 1);

/**
 * The binary operations by name. The opcode table refers to them by index
 * (`BINARY_OPERATION_INDEX`), so the order here is free.
 */
export const BINARY_OPERATIONS = {
  addBytes: lanewise('bytes', add),
  addWords: lanewise('words', add),
  addDwords: lanewise('dwords', add),
  addQuadwords,
  subtractBytes: lanewise('bytes', subtract),
  subtractWords: lanewise('words', subtract),
  subtractDwords: lanewise('dwords', subtract),
  subtractQuadwords,
  addSignedSaturateBytes: lanewise('signedBytes', (x, y) => saturateSignedByte(x + y)),
  addSignedSaturateWords: lanewise('signedWords', (x, y) => saturateSignedWord(x + y)),
  addUnsignedSaturateBytes: lanewise('bytes', (x, y) => saturateUnsignedByte(x + y)),
  addUnsignedSaturateWords: lanewise('words', (x, y) => saturateUnsignedWord(x + y)),
  subtractSignedSaturateBytes: lanewise('signedBytes', (x, y) => saturateSignedByte(x - y)),
  subtractSignedSaturateWords: lanewise('signedWords', (x, y) => saturateSignedWord(x - y)),
  subtractUnsignedSaturateBytes: lanewise('bytes', (x, y) => saturateUnsignedByte(x - y)),
  subtractUnsignedSaturateWords: lanewise('words', (x, y) => saturateUnsignedWord(x - y)),
  multiplyLowWords,
  multiplyHighWords,
  multiplyHighUnsignedWords,
  multiplyHighRoundScaleWords,
  multiplyAddWords,
  multiplyAddUnsignedSignedBytes,
  multiplyUnsignedDwords: multiplyEvenDwords(false),
  multiplySignedDwords: multiplyEvenDwords(true),
  multiplyLowDwords: lanewise('dwords', (x, y) => Math.imul(x, y)),
  equalBytes: lanewise('bytes', equal),
  equalWords: lanewise('words', equal),
  equalDwords: lanewise('dwords', equal),
  equalQuadwords,
  greaterBytes: lanewise('signedBytes', greater),
  greaterWords: lanewise('signedWords', greater),
  greaterDwords: lanewise('signedDwords', greater),
  greaterQuadwords,
  and: bitwise((x, y) => x & y),
  andNot: bitwise((x, y) => ~x & y),
  or: bitwise((x, y) => x | y),
  xor: bitwise((x, y) => x ^ y),
  minimumUnsignedBytes: lanewise('bytes', minimum),
  maximumUnsignedBytes: lanewise('bytes', maximum),
  minimumSignedBytes: lanewise('signedBytes', minimum),
  maximumSignedBytes: lanewise('signedBytes', maximum),
  minimumUnsignedWords: lanewise('words', minimum),
  maximumUnsignedWords: lanewise('words', maximum),
  minimumSignedWords: lanewise('signedWords', minimum),
  maximumSignedWords: lanewise('signedWords', maximum),
  minimumUnsignedDwords: lanewise('dwords', minimum),
  maximumUnsignedDwords: lanewise('dwords', maximum),
  minimumSignedDwords: lanewise('signedDwords', minimum),
  maximumSignedDwords: lanewise('signedDwords', maximum),
  averageBytes: lanewise('bytes', average),
  averageWords: lanewise('words', average),
  sumAbsoluteDifferences,
  horizontalAddWords: horizontal('words', add),
  horizontalAddDwords: horizontal('dwords', add),
  horizontalAddSaturateWords: horizontal('signedWords', (x, y) => saturateSignedWord(x + y)),
  horizontalSubtractWords: horizontal('words', subtract),
  horizontalSubtractDwords: horizontal('dwords', subtract),
  horizontalSubtractSaturateWords: horizontal('signedWords', (x, y) => saturateSignedWord(x - y)),
  signBytes: lanewise('signedBytes', sign),
  signWords: lanewise('signedWords', sign),
  signDwords: lanewise('signedDwords', sign),
  absoluteBytes: absolute('signedBytes'),
  absoluteWords: absolute('signedWords'),
  absoluteDwords: absolute('signedDwords'),
  packSignedWordsToBytes: pack('signedWords', 'signedBytes', saturateSignedByte),
  packSignedDwordsToWords: pack('signedDwords', 'signedWords', saturateSignedWord),
  packUnsignedWordsToBytes: pack('signedWords', 'bytes', saturateUnsignedByte),
  packUnsignedDwordsToWords: pack('signedDwords', 'words', saturateUnsignedWord),
  unpackLowBytes: unpack(1, false),
  unpackLowWords: unpack(2, false),
  unpackLowDwords: unpack(4, false),
  unpackLowQuadwords: unpack(8, false),
  unpackHighBytes: unpack(1, true),
  unpackHighWords: unpack(2, true),
  unpackHighDwords: unpack(4, true),
  unpackHighQuadwords: unpack(8, true),
  shuffleBytes,
} satisfies Record<string, LaneOperation>;

export type BinaryOperationName = keyof typeof BINARY_OPERATIONS;

/** The operations as an array for dispatch by index, and each name's index (an opcode entry's `sub`). */
export const BINARY_OPERATION_LIST: readonly LaneOperation[] = Object.values(BINARY_OPERATIONS);
export const BINARY_OPERATION_INDEX = Object.fromEntries(Object.keys(BINARY_OPERATIONS).map((name, index) => [name, index])) as Readonly<Record<BinaryOperationName, number>>;

/** The shift kinds of PSLL/PSRL/PSRA. */
export enum ShiftKind { leftLogical = 0, rightLogical = 1, rightArithmetic = 2 }

/**
 * PSLL/PSRL/PSRA on lanes of `laneBytes` (2, 4 or 8) by `count` (any
 * non-negative number: counts past the lane width clear the lanes, or fill
 * them with the sign for the arithmetic shift). `out` may be `a`.
 */
export function shiftLanes(out: SimdValue, a: SimdValue, kind: number, laneBytes: number, count: number, length: number): void {
  const bits = laneBytes * 8;
  if (laneBytes === 8) {
    for (let i = 0; i < length / 4; i += 2) shiftQuadword(out.dwords, a.dwords, i, kind, count);
    return;
  }
  const lanes = length / laneBytes;
  if (kind === ShiftKind.rightArithmetic) {
    const view = laneBytes === 2 ? 'signedWords' : 'signedDwords';
    const by = count >= bits ? bits - 1 : count;
    for (let i = 0; i < lanes; i++) out[view][i] = a[view][i]! >> by;
    return;
  }
  const view = laneBytes === 2 ? 'words' : 'dwords';
  if (count >= bits) {
    for (let i = 0; i < lanes; i++) out[view][i] = 0;
    return;
  }
  for (let i = 0; i < lanes; i++) out[view][i] = kind === ShiftKind.leftLogical ? a[view][i]! << count : a[view][i]! >>> count;
}

function shiftQuadword(out: Uint32Array, a: Uint32Array, i: number, kind: number, count: number): void {
  const low = a[i]!;
  const high = a[i + 1]!;
  if (count >= 64) {
    out[i] = 0;
    out[i + 1] = 0;
  } else if (count === 0) {
    out[i] = low;
    out[i + 1] = high;
  } else if (count >= 32) {
    const by = count - 32;
    out[i] = kind === ShiftKind.leftLogical ? 0 : high >>> by;
    out[i + 1] = kind === ShiftKind.leftLogical ? low << by : 0;
  } else if (kind === ShiftKind.leftLogical) {
    out[i] = low << count;
    out[i + 1] = (high << count) | (low >>> (32 - count));
  } else {
    out[i] = (low >>> count) | (high << (32 - count));
    out[i + 1] = high >>> count;
  }
}

/** The shift count of a register or memory operand: its low 64 bits, with anything at or past 2^32 standing for "all". */
export function shiftCount(source: SimdValue): number {
  return source.dwords[1] !== 0 ? 64 : source.dwords[0]!;
}

/** PMOVMSKB: the top bit of each byte, as an integer. */
export function byteSignMask(a: SimdValue, length: number): number {
  let mask = 0;
  for (let i = 0; i < length; i++) mask |= (a.bytes[i]! >>> 7) << i;
  return mask;
}
