import { describe, expect, test } from 'vitest';
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
