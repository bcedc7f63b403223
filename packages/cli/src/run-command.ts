import { constants, readFileSync, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { FileBackend, StdioBackend, TcpClientBackend } from '@tsvirt/backends';
import type { BlockBackend, CharacterBackend, NetworkBackend } from '@tsvirt/interfaces';
import { type CommandOutput, openImage } from '@tsvirt/storage';
import type { VirtioBalloon } from '@tsvirt/devices-virtio';
import { PcMachine, WATCHDOG_ACTIONS, type MachineExit, type PcMachineOptions, type QmpEndpoint, type QmpServer, type WatchdogAction } from '@tsvirt/vm';
import { parseCpuModel, type CpuModel } from '@tsvirt/x86-core';
import { parseQmpOption, parseVmName, startQmpServer } from './qmp-options.js';
import { buildMachineDevices, DeviceOptionError, type DeviceResources, type DeviceSpec, type DriveSpec, type MachineDevices, parseDevice, parseDrive } from './device-options.js';
import { type ChardevSpec, type OpenChardev, openChardevs, parseChardev } from './chardev-options.js';
import { machineTestDevices } from './test-device-options.js';
import { type NetdevSpec, openNetdevs, parseNetdev } from './netdev-options.js';

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
  readonly drives: readonly DriveSpec[];
  readonly devices: readonly DeviceSpec[];
  /** QMP monitors to listen on (`--qmp`, several allowed). */
  readonly qmp: readonly QmpEndpoint[];
  /** `--name`: what query-name answers. */
  readonly name?: string;
  /** `-S`/`--paused`: start paused (QMP `cont` starts the guest). */
  readonly paused: boolean;
  readonly netdevs: readonly NetdevSpec[];
  /** `--chardev`: host ends for the virtio-serial ports. */
  readonly chardevs: readonly ChardevSpec[];
  /** `--watchdog-action`: what the watchdog's expiry does (QEMU's default: reset). */
  readonly watchdogAction: WatchdogAction;
}

/** A bad command line: the message is the whole one-line explanation. */
export class UsageError extends Error {}

export const RUN_USAGE =
  'usage: tsvirt run --kernel FILE [--initrd FILE] [--append TEXT] [--memory SIZE] [--cpu MODEL[,+FEATURE|,-FEATURE]...] [--drive file=PATH,if=virtio|none,...] [--netdev user,id=ID[,hostfwd=tcp::HOSTPORT-:GUESTPORT]|stream,id=ID,server=on|off,addr.type=inet|unix,...|dgram,id=ID,local.*,remote.*] [--device virtio-blk-pci|virtio-blk-device,drive=ID|virtio-net-pci,netdev=ID[,mac=MAC]|virtio-rng-pci|virtio-rng-device|virtio-balloon-pci|virtio-balloon-device|virtio-serial-pci|virtconsole|virtserialport,chardev=ID[,name=NAME]|i6300esb|ib700|pc-testdev|pci-testdev|isa-debug-exit[,iobase=PORT,iosize=1|2|4]] [--chardev null|file,path=FILE|socket,host=H,port=P[,server=on,wait=off],id=ID]... [--watchdog-action reset|shutdown|poweroff|pause|debug|none|inject-nmi] [--smp 1] [--no-reboot] [--serial stdio|file:PATH|tcp:HOST:PORT] [--deterministic] [--qmp unix:PATH,server=on,wait=off|tcp:HOST:PORT,server=on,wait=off]... [--name NAME] [-S|--paused]';

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
  const valued = new Set(['--kernel', '--initrd', '--append', '--memory', '--cpu', '--serial', '--smp', '--watchdog-action']);
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const drives: DriveSpec[] = [];
  const devices: DeviceSpec[] = [];
  const qmp: QmpEndpoint[] = [];
  let vmName: string | undefined;
  const netdevs: NetdevSpec[] = [];
  const chardevs: ChardevSpec[] = [];
  const subOptions = (parse: () => void) => {
    try {
      parse();
    } catch (error) {
      if (error instanceof DeviceOptionError) throw new UsageError(error.message);
      throw error;
    }
  };
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i]!;
    const equals = argument.indexOf('=');
    const name = argument.startsWith('--') && equals > 0 ? argument.slice(0, equals) : argument;
    if (valued.has(name)) {
      const value = equals > 0 && argument.startsWith('--') ? argument.slice(equals + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`${name} needs a value`);
      values.set(name, value);
    } else if (name === '--drive' || name === '--device' || name === '--netdev' || name === '--chardev') {
      const value = equals > 0 && argument.startsWith('--') ? argument.slice(equals + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`${name} needs a value`);
      subOptions(() => {
        if (name === '--drive') drives.push(parseDrive(value, drives.length));
        else if (name === '--netdev') netdevs.push(parseNetdev(value));
        else if (name === '--chardev') chardevs.push(parseChardev(value));
        else devices.push(parseDevice(value));
      });
    } else if (name === '--qmp' || name === '--name') {
      const value = equals > 0 && argument.startsWith('--') ? argument.slice(equals + 1) : argv[++i];
      if (value === undefined) throw new UsageError(`${name} needs a value`);
      subOptions(() => (name === '--qmp' ? qmp.push(parseQmpOption(value)) : (vmName = parseVmName(value))));
    } else if (name === '--no-reboot' || name === '--deterministic' || name === '--paused' || name === '-S') flags.add(name);
    else throw new UsageError(`unknown argument '${argument}'; ${RUN_USAGE}`);
  }
  const kernel = values.get('--kernel');
  if (kernel === undefined) throw new UsageError(`--kernel is required; ${RUN_USAGE}`);
  // Refused here, before anything is opened: a test device given twice.
  machineTestDevices(devices, (message) => new UsageError(message));
  const smp = values.get('--smp');
  // QEMU's -smp N (or cpus=N); one vCPU is what the machine has for now.
  if (smp !== undefined && !/^(cpus=)?1$/.test(smp)) throw new UsageError(`--smp: '${smp}' is not 1 (tsvirt runs one vCPU for now)`);
  const watchdogAction = values.get('--watchdog-action') ?? 'reset';
  if (!(WATCHDOG_ACTIONS as readonly string[]).includes(watchdogAction)) throw new UsageError(`--watchdog-action: '${watchdogAction}' is not one of ${WATCHDOG_ACTIONS.join(', ')}`);
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
    drives,
    devices,
    netdevs,
    chardevs,
    watchdogAction: watchdogAction as WatchdogAction,
    qmp,
    name: vmName,
    paused: flags.has('--paused') || flags.has('-S'),
  };
}

/** Opens every drive's image (with QEMU's locks) before the guest runs; a failure closes what was opened. */
async function openDrives(drives: readonly DriveSpec[]): Promise<Map<string, BlockBackend>> {
  const opened = new Map<string, BlockBackend>();
  try {
    for (const drive of drives) {
      try {
        const image = await openImage(drive.file, { readOnly: drive.readOnly, ...(drive.format === undefined ? {} : { format: drive.format }) });
        opened.set(drive.id, image.backend);
      } catch (error) {
        throw new UsageError(`--drive ${drive.file}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return opened;
  } catch (error) {
    for (const backend of opened.values()) await backend.close();
    throw error;
  }
}

/** Options of `runVm` that are about the host rather than the command line; tests set them. */
export interface RunOptions {
  /** RAM plus swap: the most guest memory the host could ever back (default: `hostMemoryBytes()`). */
  readonly hostMemoryBytes?: number;
}

/**
 * Kernels and initrds are read whole into memory, so they must be regular
 * files of a size a boot file can have. A Linux bzImage is about 10 MiB and a
 * multiboot test kernel far less; initramfs images are tens of MiB (Debian's,
 * Ubuntu's with firmware about 100 MiB), and Linux places the initrd below
 * 2 GiB anyway.
 */
export const KERNEL_SIZE_LIMIT = 256 * 2 ** 20;
export const INITRD_SIZE_LIMIT = 2 ** 30;
/** The first read of a file whose size says nothing (procfs): grown by doubling up to the limit. */
const FIRST_READ_BYTES = 64 * 2 ** 10;

/** 256 MiB, 1 GiB, 1 KiB: sizes as the errors print them. */
function formatSize(bytes: number): string {
  for (const [unit, scale] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (bytes >= scale) return `${Number((bytes / scale).toFixed(1))} ${unit}`;
  }
  return `${bytes} bytes`;
}

/** strerror's text for the errors a file named on the command line usually meets, lower case to read in a sentence. */
const SYSTEM_ERROR_TEXT: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  ENXIO: 'no such device or address',
  ELOOP: 'too many levels of symbolic links',
};

function describeSystemError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const text = code === undefined ? undefined : SYSTEM_ERROR_TEXT[code];
  if (text !== undefined) return text;
  // Node's message is "CODE: description, syscall 'path'"; the description alone reads as a reason.
  const message = error instanceof Error ? error.message : String(error);
  return /^[A-Z0-9]+: ([^,]+)/.exec(message)?.[1] ?? message;
}

function fileKind(info: Stats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a FIFO';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isSocket()) return 'a socket';
  return 'an unknown kind of file';
}

/**
 * Reads a kernel or an initrd, refusing what could never be one before
 * reading a byte: anything but a regular file (a FIFO would block, /dev/zero
 * never ends) and a file over `limitBytes`. The read itself stops past
 * `limitBytes` too, for a file that grows while it is read or whose size says
 * nothing (procfs).
 */
export async function readBootFile(path: string, what: 'kernel' | 'initrd', limitBytes: number): Promise<Uint8Array> {
  const refuse = (reason: string) => new UsageError(`cannot read ${what} '${path}': ${reason}`);
  const tooLarge = () => refuse(`it is larger than ${formatSize(limitBytes)}, the most ${what === 'kernel' ? 'a kernel' : 'an initrd'} may be`);
  const check = (info: Stats) => {
    if (!info.isFile()) throw refuse(`${fileKind(info)}, not a regular file`);
    if (info.size > limitBytes) throw tooLarge();
  };
  let handle: FileHandle;
  try {
    // stat first: opening a FIFO waits for a writer, and opening some devices does something.
    check(await stat(path));
    // O_NONBLOCK: should the path have become a FIFO since, open returns at once and fstat refuses it.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw refuse((error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : describeSystemError(error));
  }
  try {
    const info = await handle.stat();
    check(info);
    // One byte more than the file says, or than the limit, to notice a file that is longer than that.
    let buffer = new Uint8Array(info.size > 0 ? info.size + 1 : Math.min(FIRST_READ_BYTES, limitBytes + 1));
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (length > limitBytes) throw tooLarge();
        const grown = new Uint8Array(Math.min(limitBytes + 1, buffer.length * 2));
        grown.set(buffer);
        buffer = grown;
      }
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > limitBytes) throw tooLarge();
    return buffer.subarray(0, length);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw refuse(describeSystemError(error));
  } finally {
    await handle.close();
  }
}

/**
 * The most guest memory this host could ever back: its RAM plus its swap
 * (`SwapTotal` of Linux's /proc/meminfo; none where it cannot be read). Not
 * what is free now: guest RAM is allocated a frame at a time as the guest
 * writes it, as QEMU's is.
 */
export function hostMemoryBytes(meminfo: string = readMeminfo()): number {
  const swap = /^SwapTotal:\s+(\d+) kB$/m.exec(meminfo);
  return totalmem() + (swap === null ? 0 : Number(swap[1]) * 1024);
}

function readMeminfo(): string {
  try {
    return readFileSync('/proc/meminfo', 'utf8');
  } catch {
    return '';
  }
}

/** Opens the serial file before the guest runs, so a path that cannot take the console is refused rather than the console lost. */
async function openSerialFile(path: string): Promise<FileBackend> {
  try {
    return await FileBackend.open(path);
  } catch (error) {
    const reason = describeSystemError(error);
    if ((error as NodeJS.ErrnoException).syscall === 'write') throw new UsageError(`--serial file:${path}: serial device '${path}' refuses writes: ${reason}`);
    throw new UsageError(`--serial file:${path}: could not open serial device '${path}': ${reason}`);
  }
}

/**
 * `tsvirt run`: boots a kernel as QEMU's `-kernel` does, with the serial
 * console on the terminal (Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A), a
 * file or a TCP connection. The exit status is 0 when the guest powers off
 * (or resets, with --no-reboot), and isa-debug-exit's status when a test
 * kernel uses it. Before the guest runs, the memory size is checked against
 * the host (status 1), and the kernel, the initrd and a serial file against
 * what they must be (`readBootFile`, `FileBackend.open`; a UsageError).
 */
export async function runVm(argv: readonly string[], output: CommandOutput, options: RunOptions = {}): Promise<number> {
  const args = parseRunArguments(argv);
  const hostBytes = options.hostMemoryBytes ?? hostMemoryBytes();
  if (args.memoryBytes > hostBytes) {
    // QEMU's words when it cannot map the RAM; here it is refused before anything is read or allocated.
    output.stderr(`tsvirt: cannot set up guest memory 'pc.ram': Cannot allocate memory (${formatSize(args.memoryBytes)} asked for; the host has ${formatSize(hostBytes)} of RAM and swap)\n`);
    return 1;
  }
  const kernel = await readBootFile(args.kernel, 'kernel', KERNEL_SIZE_LIMIT);
  const initrd = args.initrd === undefined ? undefined : await readBootFile(args.initrd, 'initrd', INITRD_SIZE_LIMIT);
  const backends = await openDrives(args.drives);
  let networks = new Map<string, NetworkBackend>();
  let chardevs = new Map<string, OpenChardev>();
  let monitor: QmpServer | undefined;
  /** This boot's balloon, for QMP's balloon and query-balloon. */
  let balloon: VirtioBalloon | undefined;
  const resources = (): DeviceResources => ({
    backends,
    netdevs: networks,
    chardevs,
    memoryBytes: args.memoryBytes,
    onBalloonChange: (actual) => monitor?.monitor.emit('BALLOON_CHANGE', { actual }),
  });
  const closeHostEnds = async (): Promise<void> => {
    for (const network of networks.values()) await network.close();
    for (const chardev of chardevs.values()) await chardev.close?.();
  };
  try {
    networks = await openNetdevs(args.netdevs);
    chardevs = await openChardevs(args.chardevs);
    // Checked once before the guest runs; each boot (after a reset) gets fresh devices on the same disks, networks and chardevs.
    buildMachineDevices(args.drives, args.devices, resources());
  } catch (error) {
    for (const backend of backends.values()) await backend.close();
    await closeHostEnds();
    if (error instanceof DeviceOptionError) throw new UsageError(error.message);
    throw error;
  }
  let machine: PcMachine | undefined;
  let escape = false;
  // A serial port that cannot be opened stops the run: passt and the sockets go with it.
  const closeNetworks = async (error: unknown): Promise<never> => {
    await closeHostEnds();
    throw error;
  };
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
    serial = await openSerialFile(args.serial.path).catch(closeNetworks);
  } else {
    const client = new TcpClientBackend({ host: args.serial.host, port: args.serial.port });
    await client.open().catch(closeNetworks);
    serial = client;
  }
  try {
    const qmp = (monitor = await startQmpServer(args, () => balloon));
    for (;;) {
      machine = new PcMachine({
        memoryBytes: args.memoryBytes,
        kernel,
        initrd,
        commandLine: args.append,
        cpuModel: args.cpu,
        clockMode: args.deterministic ? 'deterministic' : 'realtime',
        serial,
        ...machineDevices(buildMachineDevices(args.drives, args.devices, resources()), args.watchdogAction),
        events: (event) => {
          if (event.kind === 'watchdog') qmp.controller.watchdogExpired(event.action);
        },
        // QEMU starts a multiboot kernel's command line with the file name, which kvm-unit-tests reads as argv[0].
        kernelName: args.kernel,
        ...machineTestDevices(args.devices, (message) => new UsageError(message)),
      });
      // The QMP monitor's controller runs it: paused while the VM is, and it reports how it ended.
      const exit: MachineExit = await qmp.controller.run(machine);
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
    // After the guest: QMP clients get the SHUTDOWN event and `quit`'s answer before their sockets close.
    await monitor?.close();
    await serial.close?.();
    for (const backend of backends.values()) await backend.close();
    await closeHostEnds();
  }

  /** The machine options for one boot's devices; notes the balloon for QMP. */
  function machineDevices(devices: MachineDevices, action: WatchdogAction): Pick<PcMachineOptions, 'pciDevices' | 'mmioDevices' | 'watchdog'> {
    balloon = devices.balloon;
    return { pciDevices: devices.pci, mmioDevices: devices.mmio, ...(devices.watchdog === undefined ? {} : { watchdog: { model: devices.watchdog, action } }) };
  }
}
