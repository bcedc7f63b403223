import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CpuModelName } from '@tsvirt/x86-core';
import type { GuestManifest } from '../../scripts/guests/build.js';

export { debianGuest } from './guests.js';

export interface GuestRun {
  /** `tsvirt run`'s exit status: 0 when the guest powered off. */
  readonly status: number | null;
  /** Everything the guest wrote on COM1. */
  readonly serial: string;
  /** Each `tsvirt.run` command's output, by command, as init framed it. */
  readonly outputs: ReadonlyMap<string, string>;
  readonly exitStatuses: ReadonlyMap<string, number>;
}

const CLI = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));

/**
 * Boots the guest kit's kernel and initramfs with the built `tsvirt run`
 * (`pnpm test` builds first), as a user would, with `commands` as
 * `tsvirt.run` (init runs them, frames their output with TSVIRT-BEGIN/END
 * markers and powers off). A process of its own also runs the CPU at full
 * speed: vitest's module transform makes every cross-module call in the
 * interpreter several times slower.
 */
export async function bootWithCommands(
  manifest: GuestManifest,
  commands: readonly string[],
  options: { cpuModel?: CpuModelName; realTime?: boolean; args?: readonly string[] } = {},
): Promise<GuestRun> {
  const directory = mkdtempSync(path.join(tmpdir(), 'tsvirt-boot-'));
  const consoleFile = path.join(directory, 'console.txt');
  try {
    const args = [CLI, 'run', '--kernel', manifest.kernel, '--initrd', manifest.initramfs, '--memory', '256M', '--serial', `file:${consoleFile}`];
    if (options.realTime !== true) args.push('--deterministic');
    args.push(...(options.args ?? []));
    args.push('--append', `console=ttyS0 panic=-1 tsvirt.run="${commands.join(';')}"`);
    if (options.cpuModel !== undefined) args.push('--cpu', options.cpuModel);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    const status = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code) => resolve(code));
    });
    const text = readFileSync(consoleFile, 'latin1');
    const outputs = new Map<string, string>();
    const exitStatuses = new Map<string, number>();
    for (const match of text.matchAll(/TSVIRT-BEGIN (.*)\r?\n([\s\S]*?)TSVIRT-END (\d+)/g)) {
      outputs.set(match[1]!, match[2]!.replace(/\r\n/g, '\n'));
      exitStatuses.set(match[1]!, Number(match[3]));
    }
    return { status, serial: text, outputs, exitStatuses };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/** Messages that mean the kernel found something wrong with itself or with the machine. */
export const KERNEL_PROBLEMS =
  /Oops|BUG:|Call Trace|WARNING:|Kernel panic|unchecked MSR access|general protection fault|segfault|\[Firmware Bug\]|ACPI (BIOS )?(Error|Warning)|MP-BIOS bug|timer doesn't work|IRQ \d+: nobody cared|spurious 8259A interrupt|clocksource .* unstable|TSC found unstable|soft lockup|rcu.*(stall|detected)|blocked for more than/;

/** What CI asks every Debian guest to run. */
export const SHELL_COMMANDS = ['uname -a', 'cat /proc/cpuinfo', 'cat /proc/interrupts', 'ls /sys/bus/pci/devices', 'dmesg'] as const;
