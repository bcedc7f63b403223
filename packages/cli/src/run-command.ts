import { readFile } from 'node:fs/promises';
import { FileBackend, StdioBackend, TcpClientBackend } from '@tsvirt/devices-emulated';
import type { CharacterBackend } from '@tsvirt/interfaces';
import type { CommandOutput } from '@tsvirt/storage';
import { PcMachine, type MachineExit } from '@tsvirt/vm';
import { parseCpuModel, type CpuModel } from '@tsvirt/x86-core';

export type SerialSpec = { readonly kind: 'stdio' } | { readonly kind: 'file'; readonly path: string } | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

export interface RunArguments {
  readonly kernel: string;
  readonly initrd?: string;
  readonly append: string;
  readonly memoryBytes: number;
  /** The model with its feature switches applied (`qemu64,-kvmclock`). */
  readonly cpu: CpuModel;
  readonly noReboot: boolean;
  readonly serial: SerialSpec;
  readonly deterministic: boolean;
}

/** A bad command line: the message is the whole one-line explanation. */
export class UsageError extends Error {}

export const RUN_USAGE = 'usage: tsvirt run --kernel FILE [--initrd FILE] [--append TEXT] [--memory SIZE] [--cpu MODEL[,+FEATURE|,-FEATURE]...] [--no-reboot] [--serial stdio|file:PATH|tcp:HOST:PORT] [--deterministic]';

/** QEMU's -m: a number of MiB, or a number with a k/M/G/T suffix. */
export function parseMemorySize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([kKmMgGtT]?)[bB]?$/.exec(text);
  if (match === null) throw new UsageError(`--memory: '${text}' is not a size (e.g. 512M, 2G)`);
  const scale = { '': 2 ** 20, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[match[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const bytes = Math.floor((Number(match[1]) * scale) / 4096) * 4096;
  if (bytes < 16 << 20) throw new UsageError(`--memory: ${text} is too small (at least 16M)`);
  if (bytes > 2 ** 40) throw new UsageError(`--memory: ${text} is too large`);
  return bytes;
}

function parseSerial(text: string): SerialSpec {
  if (text === 'stdio') return { kind: 'stdio' };
  if (text.startsWith('file:') && text.length > 5) return { kind: 'file', path: text.slice(5) };
  const tcp = /^tcp:([^:]*):(\d+)$/.exec(text);
  if (tcp !== null && Number(tcp[2]) > 0 && Number(tcp[2]) < 65536) return { kind: 'tcp', host: tcp[1] || '127.0.0.1', port: Number(tcp[2]) };
  throw new UsageError(`--serial: '${text}' is not stdio, file:PATH or tcp:HOST:PORT`);
}

export function parseRunArguments(argv: readonly string[]): RunArguments {
  const valued = new Set(['--kernel', '--initrd', '--append', '--memory', '--cpu', '--serial']);
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i]!;
    const equals = argument.indexOf('=');
    const name = argument.startsWith('--') && equals > 0 ? argument.slice(0, equals) : argument;
    if (valued.has(name)) {
      const value = equals > 0 && argument.startsWith('--') ? argument.slice(equals + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`${name} needs a value`);
      values.set(name, value);
    } else if (name === '--no-reboot' || name === '--deterministic') flags.add(name);
    else throw new UsageError(`unknown argument '${argument}'; ${RUN_USAGE}`);
  }
  const kernel = values.get('--kernel');
  if (kernel === undefined) throw new UsageError(`--kernel is required; ${RUN_USAGE}`);
  let cpu: CpuModel;
  try {
    cpu = parseCpuModel(values.get('--cpu') ?? 'qemu64');
  } catch (error) {
    throw new UsageError(`--cpu: ${(error as Error).message}`);
  }
  return {
    kernel,
    initrd: values.get('--initrd'),
    append: values.get('--append') ?? '',
    memoryBytes: parseMemorySize(values.get('--memory') ?? '512M'),
    cpu,
    noReboot: flags.has('--no-reboot'),
    serial: parseSerial(values.get('--serial') ?? 'stdio'),
    deterministic: flags.has('--deterministic'),
  };
}

async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : ((error as Error).message ?? String(error));
    throw new UsageError(`cannot read ${what} '${path}': ${reason}`);
  }
}

/**
 * `tsvirt run`: boots a kernel as QEMU's `-kernel` does, with the serial
 * console on the terminal (Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A), a
 * file or a TCP connection. The exit status is 0 when the guest powers off
 * (or resets, with --no-reboot), and isa-debug-exit's status when a test
 * kernel uses it.
 */
export async function runVm(argv: readonly string[], output: CommandOutput): Promise<number> {
  const args = parseRunArguments(argv);
  const kernel = await readInput(args.kernel, 'kernel');
  const initrd = args.initrd === undefined ? undefined : await readInput(args.initrd, 'initrd');
  let machine: PcMachine | undefined;
  let escape = false;
  let serial: CharacterBackend & { close?: () => unknown };
  if (args.serial.kind === 'stdio') {
    serial = new StdioBackend({
      onInput: (data) => {
        const forwarded: number[] = [];
        for (const byte of data) {
          if (escape) {
            escape = false;
            if (byte === 0x78 /* x */) machine?.stop();
            else if (byte === 0x01) forwarded.push(0x01);
          } else if (byte === 0x01) escape = true;
          else forwarded.push(byte);
        }
        return forwarded.length > 0 ? Uint8Array.from(forwarded) : null;
      },
    });
  } else if (args.serial.kind === 'file') {
    serial = new FileBackend(args.serial.path);
  } else {
    const client = new TcpClientBackend({ host: args.serial.host, port: args.serial.port });
    await client.open();
    serial = client;
  }
  try {
    for (;;) {
      machine = new PcMachine({
        memoryBytes: args.memoryBytes,
        kernel,
        initrd,
        commandLine: args.append,
        cpuModel: args.cpu,
        clockMode: args.deterministic ? 'deterministic' : 'realtime',
        serial,
      });
      const exit: MachineExit = await machine.run();
      switch (exit.kind) {
        case 'power-off':
        case 'stopped':
          return 0;
        case 'debug-exit':
          return exit.status;
        case 'reset':
          if (args.noReboot) return 0;
          continue;
        case 'halted':
          output.stderr('tsvirt: the guest halted with nothing left to wake it\n');
          return 1;
        case 'internal-error':
          output.stderr(`tsvirt: internal error: ${exit.error instanceof Error ? exit.error.message : String(exit.error)}\n`);
          return 1;
      }
    }
  } finally {
    await serial.close?.();
  }
}
