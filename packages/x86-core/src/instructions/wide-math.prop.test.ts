import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { divideUnsigned128, multiplyUnsigned32, multiplyUnsigned64, negate128 } from './wide-math.js';

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const low = (value: bigint): number => Number(value & 0xffffffffn) | 0;
const high = (value: bigint): number => Number((value >> 32n) & 0xffffffffn) | 0;
const join = (words: ArrayLike<number>, count: number): bigint => {
  let value = 0n;
  for (let i = count - 1; i >= 0; i--) value = (value << 32n) | BigInt(words[i]! >>> 0);
  return value;
};

// BigInt is the independent reference here (tests only; the interpreter never uses it).
describe('wide arithmetic on 32-bit halves', () => {
  test.prop([u64, u64], { numRuns: 2000 })('64×64 multiply', (a, b) => {
    const out = new Int32Array(4);
    multiplyUnsigned64(low(a), high(a), low(b), high(b), new Float64Array(8), out);
    expect(join(out, 4)).toBe(a * b);
  });

  test.prop([fc.nat(0xffffffff), fc.nat(0xffffffff)], { numRuns: 2000 })('32×32 multiply', (a, b) => {
    const out = new Int32Array(2);
    multiplyUnsigned32(a | 0, b | 0, out);
    expect(join(out, 2)).toBe(BigInt(a) * BigInt(b));
  });

  test.prop([u64, u64, fc.oneof(u64, fc.bigInt({ min: 1n, max: 0xffffffffn }))], { numRuns: 2000 })('128 / 64 divide', (top, bottom, divisor) => {
    fc.pre(divisor !== 0n);
    const dividend = (top << 64n) | bottom;
    const out = new Int32Array(6);
    divideUnsigned128(low(bottom), high(bottom), low(top), high(top), low(divisor), high(divisor), out);
    expect(join(out, 4)).toBe(dividend / divisor);
    expect(join([out[4]!, out[5]!], 2)).toBe(dividend % divisor);
  });

  test.prop([u64, u64])('negate', (top, bottom) => {
    const words = new Int32Array([low(bottom), high(bottom), low(top), high(top)]);
    negate128(words);
    expect(join(words, 4)).toBe(BigInt.asUintN(128, -((top << 64n) | bottom)));
  });
});
