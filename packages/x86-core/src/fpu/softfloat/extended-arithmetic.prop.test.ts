import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { extendedAdd, extendedDivide, extendedMultiply, extendedSquareRoot, extendedSubtract } from './extended-arithmetic.js';
import { createHostOracle, extendedBytes, OracleOperation, readExtended, requireOracleOutsideCi } from './host-oracle.js';
import { anyExtended, type ExtendedPattern, normalExtended, x87Control } from './testing-arbitraries.js';
import { SoftFloatResult } from './types.js';

/*
 * Every x87 arithmetic result and exception flag (IE DE ZE OE UE PE and C1)
 * must equal the host FPU's for the same operands and control word.
 */

const oracle = createHostOracle();
requireOracleOutsideCi(oracle);
const skip = 'unavailable' in oracle;
if (skip) console.warn(`softfloat host-oracle tests skipped: ${oracle.unavailable}`);

const STATUS_MASK = 0x3f | 0x200;

type Binary = (a: ExtendedPattern, b: ExtendedPattern, control: number, result: SoftFloatResult) => number;

const hex = (value: ExtendedPattern): string => `${value.signExponent.toString(16).padStart(4, '0')}:${(value.high >>> 0).toString(16).padStart(8, '0')}${(value.low >>> 0).toString(16).padStart(8, '0')}`;

/** Operand pairs: independent, or b near a so subtraction cancels and division is near 1. */
const operandPair = fc.oneof(
  fc.tuple(anyExtended, anyExtended),
  fc.tuple(normalExtended, fc.integer({ min: -3, max: 3 }), fc.integer({ min: 0, max: 0xffffffff }), fc.boolean()).map(([a, exponentDelta, low, flip]) => {
    const exponent = Math.min(0x7ffe, Math.max(1, (a.signExponent & 0x7fff) + exponentDelta));
    return [a, { signExponent: (a.signExponent & 0x8000) ^ (flip ? 0x8000 : 0) | exponent, high: a.high, low }] as [ExtendedPattern, ExtendedPattern];
  }),
);

function checkBinary(operation: number, implementation: Binary, cases: ReadonlyArray<readonly [ExtendedPattern, ExtendedPattern, number]>): void {
  if ('unavailable' in oracle) return;
  const host = oracle.run(cases.map(([a, b, control]) => ({ operation, control, a: extendedBytes(a.signExponent, a.high, a.low), b: extendedBytes(b.signExponent, b.high, b.low) })));
  const result = new SoftFloatResult();
  cases.forEach(([a, b, control], index) => {
    const expected = host[index]!;
    const flags = implementation(a, b, control, result);
    const label = `op ${operation} a ${hex(a)} b ${hex(b)} control ${control.toString(16)}`;
    // With IE, ZE or DE unmasked and raised, the FPU leaves ST0 (a) as it was and the caller stores nothing.
    const trapped = (expected.status & ~control & 0x07) !== 0;
    if (!trapped) expect(hex(result), label).toBe(hex(readExtended(expected.bytes)));
    expect((flags & STATUS_MASK).toString(16), label).toBe((expected.status & STATUS_MASK).toString(16));
  });
}

const batch = fc.array(fc.tuple(operandPair, x87Control).map(([[a, b], control]) => [a, b, control] as const), { minLength: 3000, maxLength: 3000 });

describe.skipIf(skip)('x87 arithmetic against the host FPU', () => {
  test.prop([batch], { numRuns: 4, endOnFailure: true })('FADD', (cases) => checkBinary(OracleOperation.fadd, extendedAdd, cases));
  test.prop([batch], { numRuns: 4, endOnFailure: true })('FSUB', (cases) => checkBinary(OracleOperation.fsub, extendedSubtract, cases));
  test.prop([batch], { numRuns: 4, endOnFailure: true })('FMUL', (cases) => checkBinary(OracleOperation.fmul, extendedMultiply, cases));
  test.prop([batch], { numRuns: 4, endOnFailure: true })('FDIV', (cases) => checkBinary(OracleOperation.fdiv, extendedDivide, cases));
  test.prop([batch], { numRuns: 4, endOnFailure: true })('FSQRT', (cases) => checkBinary(OracleOperation.fsqrt, (a, _b, control, result) => extendedSquareRoot(a, control, result), cases));
});
