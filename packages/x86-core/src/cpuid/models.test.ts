import { describe, expect, test } from 'vitest';
import { cpuidLeaf } from './cpuid.js';
import { CPU_MODELS, MAX, OPTERON_G1, parseCpuModel, QEMU64, TSVIRT_MAX } from './models.js';

function leaf(spec: string, number: number, subleaf = 0): Int32Array {
  const out = new Int32Array(4);
  cpuidLeaf(parseCpuModel(spec), number, subleaf, out);
  return out;
}

describe("parseCpuModel: QEMU's -cpu names and switches", () => {
  test('max is everything the core implements; Opteron_G1 is an AMD family-15 part without CMPXCHG16B', () => {
    expect(parseCpuModel('max')).toBe(MAX);
    for (const feature of TSVIRT_MAX.features) expect(MAX.features.has(feature)).toBe(true);
    expect(leaf('max', 7)[1]! & ((1 << 7) | (1 << 20))).toBe((1 << 7) | (1 << 20));
    expect(CPU_MODELS.Opteron_G1).toBe(OPTERON_G1);
    expect(leaf('Opteron_G1', 1)[0]).toBe(0xf61);
    expect(leaf('Opteron_G1', 1)[2]! & (1 << 13)).toBe(0);
    expect(parseCpuModel('Opteron_G1').features.has('cx16')).toBe(false);
  });

  test('+x2apic, +tsc-deadline and +umip set their CPUID bits; -rdtscp takes the instruction away too', () => {
    expect(leaf('qemu64', 1)[2]! & ((1 << 21) | (1 << 24))).toBe(0);
    expect(leaf('qemu64,+x2apic,+tsc-deadline', 1)[2]! & ((1 << 21) | (1 << 24))).toBe((1 << 21) | (1 << 24));
    expect(leaf('qemu64,+umip', 7)[2]).toBe(1 << 2);
    expect(leaf('qemu64,+umip,umip=off', 7)[2]).toBe(0);
    const noRdtscp = parseCpuModel('tsvirt-max,-rdtscp');
    expect(noRdtscp.features.has('rdtscp')).toBe(false);
    expect(noRdtscp.extendedEdx & (1 << 27)).toBe(0);
    expect(TSVIRT_MAX.features.has('rdtscp')).toBe(true);
  });

  test('vendor= changes the vendor string only; unknown vendors and features are refused with the known ones named', () => {
    const intel = parseCpuModel('qemu64,vendor=GenuineIntel');
    expect(intel.vendor).toBe('GenuineIntel');
    expect(intel.signature).toBe(QEMU64.signature);
    expect(() => parseCpuModel('qemu64,vendor=CyrixInstead')).toThrow(/GenuineIntel, AuthenticAMD/);
    expect(() => parseCpuModel('qemu64,+avx512f')).toThrow(/\+umip/);
  });

  test('phys-bits sets the physical-address width; host-phys-bits keeps the model\'s', () => {
    expect(parseCpuModel('max,host-phys-bits').physicalAddressBits).toBe(MAX.physicalAddressBits);
    expect(parseCpuModel('qemu64,phys-bits=36,host-phys-bits=off').physicalAddressBits).toBe(36);
    expect(leaf('qemu64,phys-bits=36', 0x80000008)[0]! & 0xff).toBe(36);
    expect(() => parseCpuModel('qemu64,phys-bits=60')).toThrow(/between 32 and 52/);
  });
});
