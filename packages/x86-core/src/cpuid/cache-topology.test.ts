import { describe, expect, test } from 'vitest';
import { cpuidLeaf } from './cpuid.js';
import { QEMU64, TSVIRT_MAX } from './models.js';

function leaf(model: typeof TSVIRT_MAX, index: number, subleaf = 0): number[] {
  const out = new Int32Array(4);
  cpuidLeaf(model, index, subleaf, out);
  return [...out].map((value) => value >>> 0);
}

/*
 * Expected values: what QEMU returns to a one-core, one-thread guest of an
 * Intel model, from target/i386/cpu.c (legacy_l1d_cache, legacy_l1i_cache,
 * legacy_l2_cache and legacy_l3_cache encoded by encode_cache_cpuid4; the 0xB
 * case of cpu_x86_cpuid), worked out by hand and written out as numbers here,
 * not derived from the table under test.
 */
describe('CPUID leaf 4 (deterministic cache parameters)', () => {
  test('L1d, L1i, L2 and L3 as QEMU reports them, then no more caches', () => {
    expect(leaf(TSVIRT_MAX, 4, 0)).toEqual([0x00000121, 0x01c0003f, 0x0000003f, 0x00000001]);
    expect(leaf(TSVIRT_MAX, 4, 1)).toEqual([0x00000122, 0x01c0003f, 0x0000003f, 0x00000001]);
    expect(leaf(TSVIRT_MAX, 4, 2)).toEqual([0x00000143, 0x03c0003f, 0x00000fff, 0x00000001]);
    expect(leaf(TSVIRT_MAX, 4, 3)).toEqual([0x00000163, 0x03c0003f, 0x00003fff, 0x00000006]);
    expect(leaf(TSVIRT_MAX, 4, 4)).toEqual([0, 0, 0, 0]);
    expect(leaf(TSVIRT_MAX, 4, 0xffffffff)).toEqual([0, 0, 0, 0]);
  });

  test('sizes follow from ways × partitions × line size × sets (SDM vol. 2, CPUID leaf 4)', () => {
    const sizes = [0, 1, 2, 3].map((subleaf) => {
      const [, ebx, ecx] = leaf(TSVIRT_MAX, 4, subleaf) as [number, number, number, number];
      return ((ebx >>> 22) + 1) * (((ebx >>> 12) & 0x3ff) + 1) * ((ebx & 0xfff) + 1) * (ecx + 1);
    });
    expect(sizes).toEqual([32 << 10, 32 << 10, 4 << 20, 16 << 20]);
  });

  test('an AMD-vendor model has no leaf 4 (QEMU zeroes it for AMD vendors)', () => {
    expect(leaf(QEMU64, 4, 0)).toEqual([0, 0, 0, 0]);
  });
});

describe('CPUID leaf 0xB (x2APIC topology)', () => {
  test('SMT level, core level, then invalid levels; x2APIC ID 0', () => {
    expect(leaf(TSVIRT_MAX, 0xb, 0)).toEqual([0, 1, 0x100, 0]);
    expect(leaf(TSVIRT_MAX, 0xb, 1)).toEqual([0, 1, 0x201, 0]);
    expect(leaf(TSVIRT_MAX, 0xb, 2)).toEqual([0, 0, 2, 0]);
    expect(leaf(TSVIRT_MAX, 0xb, 0x105)).toEqual([0, 0, 5, 0]);
    expect(leaf(QEMU64, 0xb, 1)).toEqual([0, 1, 0x201, 0]);
  });

  test('both leaves are within the maximum basic leaf, which still covers leaf 0xD', () => {
    expect(leaf(TSVIRT_MAX, 0)[0]).toBeGreaterThanOrEqual(0xd);
    expect(leaf(QEMU64, 0)[0]).toBeGreaterThanOrEqual(0xd);
  });
});

describe('CPUID leaf 7', () => {
  test('tsvirt-max advertises BMI1 (bit 3), BMI2 (bit 8) and ADX (bit 19); qemu64 none of them', () => {
    expect(leaf(TSVIRT_MAX, 7, 0)[1]! & ((1 << 3) | (1 << 8) | (1 << 19))).toBe((1 << 3) | (1 << 8) | (1 << 19));
    expect(leaf(QEMU64, 7, 0)[1]! & ((1 << 3) | (1 << 8) | (1 << 19))).toBe(0);
  });
});
