import { describe, expect, it } from 'vitest';
import { StateError } from '@tsvirt/interfaces';
import { GuestRam } from '@tsvirt/memory';
import { checkCompatibility, ramRegionsOf, readMachineDescriptor, type MachineDescriptor } from './vm.js';

const machine: MachineDescriptor = {
  machineType: 'pc',
  cpuModel: 'qemu64',
  vcpus: 2,
  memorySize: 0x20_0000,
  ramRegions: [{ start: 0, size: 0x20_0000 }],
  devices: ['uart0', 'pit'],
  features: ['sse2'],
};

describe('checkCompatibility', () => {
  it('accepts the same machine, and a destination with more devices and features', () => {
    expect(checkCompatibility(machine, machine)).toEqual([]);
    expect(checkCompatibility(machine, { ...machine, devices: ['pit', 'uart0', 'rtc'], features: ['sse2', 'sse4.2'] })).toEqual([]);
  });

  it('lists every mismatch', () => {
    const mismatches = checkCompatibility(machine, { ...machine, cpuModel: 'pentium', vcpus: 1, devices: ['pit'], features: [], ramRegions: [{ start: 0, size: 0x10_0000 }] });
    expect(mismatches).toEqual([
      'CPU model qemu64 (destination: pentium)',
      '2 vCPUs (destination: 1)',
      'RAM layout [0+2097152] (destination: [0+1048576])',
      'device uart0 missing on the destination',
      'feature sse2 missing on the destination',
    ]);
  });
});

describe('readMachineDescriptor', () => {
  it('round-trips a descriptor through JSON', () => {
    expect(readMachineDescriptor(JSON.parse(JSON.stringify(machine)))).toEqual(machine);
  });

  it('refuses malformed or oversized fields', () => {
    expect(() => readMachineDescriptor({ ...machine, vcpus: -1 })).toThrow(StateError);
    expect(() => readMachineDescriptor({ ...machine, devices: 'uart0' })).toThrow(/devices/);
    expect(() => readMachineDescriptor({ ...machine, machineType: 'x'.repeat(300) })).toThrow(/longer than/);
    expect(() => readMachineDescriptor({ ...machine, ramRegions: [{ start: 1, size: 4096 }] })).toThrow(/page-aligned/);
    expect(() => readMachineDescriptor({ ...machine, ramRegions: [{ start: 0, size: 0x40_0000 }] })).toThrow(/inside the memory size/);
    expect(() => readMachineDescriptor(null)).toThrow(StateError);
  });
});

describe('ramRegionsOf', () => {
  it('finds RAM around holes', () => {
    const ram = new GuestRam({ regions: [{ start: 0, size: 0xa_0000 }, { start: 0x10_0000, size: 0x10_0000 }] });
    expect(ramRegionsOf(ram)).toEqual([{ start: 0, size: 0xa_0000 }, { start: 0x10_0000, size: 0x10_0000 }]);
  });
});
