import { describe, expect, it } from 'vitest';
import { fc } from '@fast-check/vitest';
import { edgeValues, oracleCase, oracleFlags, pointerIntoMemory, registerValue } from './arbitraries.js';
import { ORACLE_MEMORY_BASE, ORACLE_MEMORY_SIZE, Reg, SETTABLE_FLAGS } from './types.js';

describe('oracle arbitraries', () => {
  it('edge values include zero, all ones and the sign bits of each width', () => {
    const values = edgeValues(64);
    for (const value of [0n, 1n, 0x80n, 0x7fffn, 0xffff_ffffn, 0x8000_0000_0000_0000n, 0xffff_ffff_ffff_ffffn]) {
      expect(values).toContain(value);
    }
    expect(edgeValues(32).every((value) => value <= 0xffff_ffffn)).toBe(true);
  });

  it('register values stay within the width and hit edge values often', () => {
    const samples = fc.sample(registerValue(32), { numRuns: 1000, seed: 1 });
    expect(samples.every((value) => value >= 0n && value <= 0xffff_ffffn)).toBe(true);
    expect(samples.filter((value) => value === 0xffff_ffffn).length).toBeGreaterThan(5);
  });

  it('cases keep pointers and the stack pointer inside the memory page, flags settable only', () => {
    const cases = fc.sample(oracleCase({ bits: 64, code: Uint8Array.of(0x90), pointerRegisters: [Reg.rbx], memoryLength: 16 }), {
      numRuns: 200,
      seed: 2,
    });
    const inside = (value: bigint | undefined): boolean =>
      value !== undefined && value >= BigInt(ORACLE_MEMORY_BASE) && value < BigInt(ORACLE_MEMORY_BASE + ORACLE_MEMORY_SIZE);
    for (const testCase of cases) {
      expect(testCase.registers).toHaveLength(16);
      expect(inside(testCase.registers[Reg.rbx]) && inside(testCase.registers[Reg.rsp])).toBe(true);
      expect((testCase.registers[Reg.rsp] ?? 1n) % 8n).toBe(0n);
      expect(testCase.memory).toHaveLength(16);
      expect((testCase.rflags ?? 0) & ~SETTABLE_FLAGS).toBe(0);
    }
    expect(fc.sample(pointerIntoMemory({ margin: 0 }), { numRuns: 100, seed: 3 }).every(inside)).toBe(true);
    expect(fc.sample(oracleFlags({ direction: true }), { numRuns: 200, seed: 4 }).some((value) => (value & 0x400) !== 0)).toBe(true);
  });
});
