import { readFileSync } from 'node:fs';
import type { CharacterBackend, ClockMode } from '@tsvirt/interfaces';
import { PcMachine, type MachineExit } from '@tsvirt/vm';
import type { CpuModelName } from '@tsvirt/x86-core';
import type { GuestManifest } from '../../scripts/guests/build.js';

export { debianGuest } from './guests.js';

export interface GuestRun {
  readonly exit: MachineExit;
  /** Everything the guest wrote on COM1. */
  readonly serial: string;
  /** Each `tsvirt.run` command's output, by command, as init framed it. */
  readonly outputs: ReadonlyMap<string, string>;
  readonly exitStatuses: ReadonlyMap<string, number>;
}

/** Serial output kept in memory; the guest never reads input here. */
class CapturedSerial implements CharacterBackend {
  private readonly chunks: Buffer[] = [];
  write(data: Uint8Array): void {
    this.chunks.push(Buffer.from(data));
  }
  connect(): void {}
  notifyReceiveReady(): void {}
  text(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }
}

/**
 * Boots the guest kit's kernel and initramfs on the pc machine with
 * `commands` as `tsvirt.run` (init runs them, frames their output with
 * TSVIRT-BEGIN/END markers and powers off).
 */
export async function bootWithCommands(
  manifest: GuestManifest,
  commands: readonly string[],
  options: { clockMode?: ClockMode; memoryBytes?: number; cpuModel?: CpuModelName } = {},
): Promise<GuestRun> {
  const serial = new CapturedSerial();
  const machine = new PcMachine({
    memoryBytes: options.memoryBytes ?? 256 * 1024 * 1024,
    kernel: readFileSync(manifest.kernel),
    initrd: readFileSync(manifest.initramfs),
    commandLine: `console=ttyS0 panic=-1 tsvirt.run="${commands.join(';')}"`,
    clockMode: options.clockMode ?? 'deterministic',
    cpuModel: options.cpuModel,
    serial,
  });
  const exit = await machine.run();
  const text = serial.text();
  const outputs = new Map<string, string>();
  const exitStatuses = new Map<string, number>();
  for (const match of text.matchAll(/TSVIRT-BEGIN (.*)\r?\n([\s\S]*?)TSVIRT-END (\d+)/g)) {
    outputs.set(match[1]!, match[2]!.replace(/\r\n/g, '\n'));
    exitStatuses.set(match[1]!, Number(match[3]));
  }
  return { exit, serial: text, outputs, exitStatuses };
}

/** Messages that mean the kernel found something wrong with itself or with the machine. */
export const KERNEL_PROBLEMS = /Oops|BUG:|Call Trace|WARNING:|Kernel panic|unchecked MSR access|general protection fault|segfault|\[Firmware Bug\]|ACPI (BIOS )?(Error|Warning)|MP-BIOS bug|timer doesn't work|IRQ \d+: nobody cared|spurious 8259A interrupt|clocksource .* unstable|TSC found unstable/;

/** What CI asks every Debian guest to run. */
export const SHELL_COMMANDS = ['uname -a', 'cat /proc/cpuinfo', 'cat /proc/interrupts', 'ls /sys/bus/pci/devices', 'dmesg'] as const;
