import { expect } from 'vitest';
import type { CpuModelName } from '@tsvirt/x86-core';
import type { GuestManifest } from '../../scripts/guests/build.js';
import { KERNEL_PROBLEMS, SHELL_COMMANDS, type GuestRun } from './debian-guest.js';

/**
 * What a stock Debian kernel must show on the pc machine: it powered off by
 * itself after running every command, and what those commands printed is
 * what this machine is (the CPU model, the PC interrupt routing, the PCI
 * devices it has), with no complaint in the kernel log.
 */
/** What /proc/cpuinfo shows for each CPU model (x86-core's CPU_MODELS). */
const CPUINFO: Record<CpuModelName, { vendor: string; name: string; flags: string[] }> = {
  qemu64: { vendor: 'AuthenticAMD', name: 'tsvirt qemu64-compatible CPU', flags: [] },
  'tsvirt-max': { vendor: 'GenuineIntel', name: 'tsvirt max CPU', flags: ['pni', 'ssse3', 'sse4_1', 'sse4_2', 'popcnt', 'movbe', 'xsave', 'bmi1', 'bmi2', 'adx'] },
};

export function expectHealthyBoot(run: GuestRun, manifest: GuestManifest, machineName: 'x86_64' | 'i686', model: CpuModelName): void {
  expect(run.status, 'tsvirt run exits 0 when the guest powers off').toBe(0);
  expect(run.serial).toContain(`TSVIRT-READY ${manifest.kernelVersion}`);
  expect(run.serial).toContain('TSVIRT-DONE');
  for (const command of SHELL_COMMANDS) expect(run.exitStatuses.get(command), command).toBe(0);

  const uname = run.outputs.get('uname -a')!;
  expect(uname).toMatch(new RegExp(`^Linux \\S+ ${manifest.kernelVersion.replace(/\./g, '\\.')} #1 SMP .* ${machineName} GNU/Linux\\n$`));

  const cpuinfo = run.outputs.get('cat /proc/cpuinfo')!;
  const expected = CPUINFO[model];
  expect(cpuinfo).toMatch(new RegExp(`^vendor_id\\s+: ${expected.vendor}$`, 'm'));
  expect(cpuinfo).toMatch(new RegExp(`^model name\\s+: ${expected.name}$`, 'm'));
  const flags = /^flags\s+: (.*)$/m.exec(cpuinfo)?.[1]?.split(' ') ?? [];
  for (const flag of ['fpu', 'tsc', 'cx8', 'apic', 'sep', 'cmov', 'pat', 'mmx', 'fxsr', 'sse', 'sse2', 'hypervisor', ...expected.flags]) expect(flags, flag).toContain(flag);
  if (machineName === 'x86_64') for (const flag of ['lm', 'nx', 'syscall']) expect(flags, flag).toContain(flag);

  // The timer through IOAPIC pin 2 (ISA IRQ 0's override in the MADT), COM1 on IRQ 4, and the local APIC timer ticking.
  const interrupts = run.outputs.get('cat /proc/interrupts')!;
  expect(interrupts).toMatch(/^\s*0:\s+\d+\s+IO-APIC\s+2-edge\s+timer$/m);
  expect(interrupts).toMatch(/^\s*4:\s+\d+\s+IO-APIC\s+4-edge\s+ttyS0$/m);
  const localTimer = /^\s*LOC:\s+(\d+)/m.exec(interrupts);
  expect(Number(localTimer?.[1])).toBeGreaterThan(10);

  // The i440FX host bridge and the PIIX3 ISA bridge.
  expect(run.outputs.get('ls /sys/bus/pci/devices')!.split(/\s+/).filter(Boolean)).toEqual(expect.arrayContaining(['0000:00:00.0', '0000:00:01.0']));

  const dmesg = run.outputs.get('dmesg')!;
  expect(dmesg).toContain('Linux version');
  expect(dmesg).toContain('ACPI: RSDP');
  const problems = dmesg.split('\n').filter((line) => KERNEL_PROBLEMS.test(line));
  expect(problems).toEqual([]);
}
