import { describe, expect, test } from 'vitest';
import { parseCpuModel } from '../cpuid/models.js';
import { createFlatMachine } from '../testing/flat-machine.js';

describe('MTRR MSRs', () => {
  const { cpu } = createFlatMachine({ bits: 64 });

  test('MTRRcap reports 8 variable ranges, fixed ranges and write-combining, and is read-only', () => {
    expect(cpu.readMsr(0xfe)).toBe(0x508n);
    expect(cpu.writeMsr(0xfe, 0x508n)).toBe(false);
  });

  test('MTRRdefType keeps E, FE and a valid type; reserved bits and types raise #GP', () => {
    expect(cpu.writeMsr(0x2ff, 0xc06n)).toBe(true);
    expect(cpu.readMsr(0x2ff)).toBe(0xc06n);
    for (const bad of [0x1c06n, 0xc02n, 0xc07n, 0x1_0000_0c06n]) expect(cpu.writeMsr(0x2ff, bad), bad.toString(16)).toBe(false);
    expect(cpu.readMsr(0x2ff)).toBe(0xc06n);
  });

  test('fixed-range MTRRs hold eight valid types each', () => {
    for (const msr of [0x250, 0x258, 0x259, 0x268, 0x26f]) {
      expect(cpu.writeMsr(msr, 0x0605_0401_0006_0504n)).toBe(true);
      expect(cpu.readMsr(msr)).toBe(0x0605_0401_0006_0504n);
      expect(cpu.writeMsr(msr, 0x0606_0606_0606_0603n)).toBe(false);
      expect(cpu.writeMsr(msr, 0x0706_0606_0606_0606n)).toBe(false);
    }
  });

  test('variable-range pairs check the type, reserved bits and MAXPHYADDR', () => {
    const maxPhysicalBits = BigInt(cpu.model.physicalAddressBits);
    expect(cpu.writeMsr(0x200, 0xe000_0000n)).toBe(true);
    expect(cpu.writeMsr(0x201, (((1n << maxPhysicalBits) - 1n) & ~0x1fff_ffffn) | 0x800n)).toBe(true);
    expect(cpu.writeMsr(0x20e, 0x8000_0006n)).toBe(true);
    expect(cpu.writeMsr(0x200, 0xe000_0002n)).toBe(false); // reserved type
    expect(cpu.writeMsr(0x200, 0xe000_0100n)).toBe(false); // bits 11:8 reserved
    expect(cpu.writeMsr(0x201, 0xe000_0801n)).toBe(false); // bits 10:0 reserved
    expect(cpu.writeMsr(0x200, 1n << maxPhysicalBits)).toBe(false); // beyond MAXPHYADDR
    expect(cpu.writeMsr(0x201, (1n << maxPhysicalBits) | 0x800n)).toBe(false);
    expect(cpu.readMsr(0x200)).toBe(0xe000_0000n);
    expect(cpu.readMsr(0x210)).toBeUndefined(); // only 8 pairs
  });
});

describe("AMD's legacy performance MSRs (K7 PerfEvtSel0-3, PerfCtr0-3)", () => {
  test('an AMD model keeps event selects and 48-bit counters; reserved event-select bits raise #GP', () => {
    const { cpu } = createFlatMachine({ bits: 64, model: 'qemu64' });
    for (let i = 0; i < 4; i++) {
      expect(cpu.readMsr(0xc001_0000 + i)).toBe(0n);
      expect(cpu.writeMsr(0xc001_0000 + i, 0x3_0053_0076n)).toBe(true);
      expect(cpu.readMsr(0xc001_0000 + i)).toBe(0x3_0053_0076n);
      expect(cpu.writeMsr(0xc001_0004 + i, 0xffff_1234_5678_9abcn)).toBe(true);
      expect(cpu.readMsr(0xc001_0004 + i)).toBe(0x1234_5678_9abcn);
    }
    expect(cpu.writeMsr(0xc001_0000, 1n << 21n)).toBe(false); // reserved bit 21
    expect(cpu.writeMsr(0xc001_0000, 1n << 36n)).toBe(false); // bits 39:36 reserved
    expect(cpu.writeMsr(0xc001_0000, 1n << 42n)).toBe(false); // bits 63:42 reserved
    expect(cpu.writeMsr(0xc001_0000, 3n << 40n)).toBe(true); // HostGuestOnly
    expect(cpu.readMsr(0xc001_0008)).toBeUndefined();
  });

  test('an Intel-vendor model has none of them', () => {
    const { cpu } = createFlatMachine({ bits: 64, model: parseCpuModel('qemu64,vendor=GenuineIntel') });
    expect(cpu.readMsr(0xc001_0000)).toBeUndefined();
    expect(cpu.writeMsr(0xc001_0004, 0n)).toBe(false);
  });
});

describe('IA32_TSC_DEADLINE', () => {
  test('is absent (#GP) unless the model advertises the TSC-deadline timer', () => {
    const { cpu } = createFlatMachine({ bits: 64, model: 'qemu64' });
    expect(cpu.readMsr(0x6e0)).toBeUndefined();
    expect(cpu.writeMsr(0x6e0, 0n)).toBe(false);
  });
});

describe('machine-check MSRs (MCG_CAP, MCG_STATUS, MCG_CTL, MCi banks)', () => {
  test("MCG_CAP says QEMU's 10 banks with MCG_CTL and SER and is read-only; controls reset to all-ones", () => {
    const { cpu } = createFlatMachine({ bits: 64, model: 'qemu64' });
    expect(cpu.readMsr(0x179)).toBe(0x100_010an);
    expect(cpu.writeMsr(0x179, 0n)).toBe(false);
    expect(cpu.readMsr(0x17b)).toBe(0xffff_ffff_ffff_ffffn);
    expect(cpu.readMsr(0x400 + 4 * 9)).toBe(0xffff_ffff_ffff_ffffn);
    expect(cpu.writeMsr(0x17a, 5n)).toBe(true);
    expect(cpu.readMsr(0x17a)).toBe(5n);
  });

  test('CTL takes 0 or all-ones, STATUS only 0, ADDR and MISC anything; banks past the tenth do not exist', () => {
    const { cpu } = createFlatMachine({ bits: 64, model: 'qemu64' });
    const noncanonical = 0xaaaa_aaaa_aaaa_aaaan;
    for (let bank = 0; bank < 10; bank++) {
      const ctl = 0x400 + 4 * bank;
      expect(cpu.writeMsr(ctl, 0n)).toBe(true);
      expect(cpu.writeMsr(ctl, noncanonical)).toBe(false);
      expect(cpu.writeMsr(ctl, 0xffff_ffff_ffff_fbffn)).toBe(true); // all-ones but bit 10 (Linux's K8 GART quirk)
      expect(cpu.writeMsr(ctl + 1, 0n)).toBe(true);
      expect(cpu.writeMsr(ctl + 1, 1n)).toBe(false);
      for (const register of [ctl + 2, ctl + 3]) {
        expect(cpu.writeMsr(register, noncanonical)).toBe(true);
        expect(cpu.readMsr(register)).toBe(noncanonical);
      }
    }
    expect(cpu.writeMsr(0x17b, 1n)).toBe(false);
    for (const msr of [0x428, 0x429, 0x42a, 0x42b, 0x47f]) {
      expect(cpu.readMsr(msr)).toBeUndefined();
      expect(cpu.writeMsr(msr, 0n)).toBe(false);
    }
  });
});
