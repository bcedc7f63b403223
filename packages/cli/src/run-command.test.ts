import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KvmFeature, QEMU64, TSVIRT_MAX } from '@tsvirt/x86-core';
import { assemble, nasmAvailable } from '@tsvirt/x86-core/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli.js';
import { KERNEL_SIZE_LIMIT, UsageError, hostMemoryBytes, parseMemorySize, parseRunArguments, readBootFile, runVm } from './run-command.js';
import { machineTestDevices } from './test-device-options.js';

/** A flat multiboot kernel's start: loaded at 1 MiB (the a.out-kludge fields), entered at `start`. */
const MULTIBOOT_AT_1M = `
bits 32
org 0x100000
header: dd 0x1BADB002, 0x00010000, -(0x1BADB002 + 0x00010000)
        dd header, 0x100000, 0, 0, start
start:
`;

/** A multiboot kernel that prints a line on COM1 and leaves through isa-debug-exit with value 0x20: status 65. */
const greeter = `${MULTIBOOT_AT_1M}
  mov dx, 0x3fb
  mov al, 3
  out dx, al
  mov esi, message
.next:
  lodsb
  test al, al
  jz .done
  mov dx, 0x3f8
  out dx, al
  jmp .next
.done:
  mov al, 0x20
  out 0xf4, al
  hlt
message: db "tsvirt run works", 10, 0
`;

const dir = mkdtempSync(path.join(tmpdir(), 'tsvirt-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const status = await runCli(argv, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) });
  return { status, stdout, stderr };
}

/** `runVm` itself, for what `runCli` cannot pass (the host's memory). */
async function run(argv: string[], options: Parameters<typeof runVm>[2]) {
  let stderr = '';
  const status = await runVm(argv, { stdout: () => {}, stderr: (text) => (stderr += text) }, options);
  return { status, stderr };
}

const GiB = 2 ** 30;

describe('tsvirt run arguments', () => {
  it('parses QEMU-like options with their defaults', () => {
    expect(parseRunArguments(['--kernel', 'k', '--memory=2G', '--serial', 'tcp::4555', '--no-reboot'])).toEqual({
      kernel: 'k',
      initrd: undefined,
      append: '',
      memoryBytes: 2 ** 31,
      cpu: QEMU64,
      noReboot: true,
      serial: { kind: 'tcp', host: '127.0.0.1', port: 4555 },
      deterministic: false,
      drives: [],
      devices: [],
      qmp: [],
      paused: false,
      netdevs: [],
      chardevs: [],
      watchdogAction: 'reset',
    });
    expect(parseMemorySize('512')).toBe(512 << 20);
    // QEMU's feature switches: kvmclock is on in qemu64 and can be turned off either way.
    expect(parseRunArguments(['--kernel', 'k', '--cpu', 'tsvirt-max']).cpu).toBe(TSVIRT_MAX);
    expect(parseRunArguments(['--kernel', 'k', '--cpu', 'qemu64,-kvmclock,kvmclock']).cpu.kvmFeatures).toBe(QEMU64.kvmFeatures);
    for (const spec of ['qemu64,-kvmclock', 'qemu64,kvmclock=off', 'qemu64,+kvmclock,kvmclock=off']) {
      const model = parseRunArguments(['--kernel', 'k', '--cpu', spec]).cpu;
      expect(model.name, spec).toBe('qemu64');
      expect(model.kvmFeatures & (KvmFeature.Clocksource | KvmFeature.Clocksource2), spec).toBe(0);
      expect(model.kvmFeatures & KvmFeature.NopIoDelay, spec).not.toBe(0);
    }
    expect(parseMemorySize('1.5G')).toBe(1.5 * 2 ** 30);
  });

  it("takes kvm-unit-tests' runner options: the test devices and -smp 1", () => {
    const args = parseRunArguments(['--kernel', 'k', '--device', 'pc-testdev', '--device', 'isa-debug-exit,iobase=0xf4,iosize=0x4', '--device', 'pci-testdev', '--smp', '1']);
    expect(args.devices).toEqual([{ driver: 'pc-testdev' }, { driver: 'isa-debug-exit', iobase: 0xf4, iosize: 4 }, { driver: 'pci-testdev' }]);
    expect(machineTestDevices(args.devices, (message) => new Error(message))).toEqual({ pcTestdev: true, debugExit: { iobase: 0xf4, iosize: 4 } });
    // QEMU's isa-debug-exit defaults: port 0x501, two ports.
    expect(parseRunArguments(['--kernel', 'k', '--device', 'isa-debug-exit']).devices).toEqual([{ driver: 'isa-debug-exit', iobase: 0x501, iosize: 2 }]);
    expect(machineTestDevices([], (message) => new Error(message))).toEqual({ pcTestdev: false, debugExit: undefined });
    expect(parseRunArguments(['--kernel', 'k', '--smp', 'cpus=1']).kernel).toBe('k');
    for (const [argv, message] of [
      [['--smp', '2'], /--smp: '2' is not 1/],
      [['--device', 'pc-testdev', '--device', 'pc-testdev'], /--device pc-testdev: given more than once/],
      [['--device', 'isa-debug-exit,iosize=3'], /iosize=3 must be 1, 2 or 4/],
      [['--device', 'isa-debug-exit,iobase=0xfffe,iosize=4'], /past the 64 KiB port space/],
      [['--device', 'isa-debug-exit,iobase=port'], /iobase=port is not a number/],
      [['--device', 'pc-testdev,x=1'], /--device pc-testdev: unknown option 'x'/],
    ] as const) {
      expect(() => parseRunArguments(['--kernel', 'k', ...argv]), argv.join(' ')).toThrow(message);
    }
  });

  it('refuses bad arguments with one line naming the problem', async () => {
    for (const [argv, message] of [
      [[], /--kernel is required/],
      [['--kernel', 'k', '--memory', 'lots'], /--memory: 'lots' is not a size/],
      [['--kernel', 'k', '--memory', '1M'], /too small/],
      [['--kernel', 'k', '--cpu', 'pentium9'], /unknown CPU model 'pentium9'/],
      [['--kernel', 'k', '--cpu', 'qemu64,-avx512'], /'-avx512' is not vendor=NAME or one of \+kvmclock/],
      [['--kernel', 'k', '--cpu', 'qemu64,kvmclock=maybe'], /'kvmclock=maybe' is not vendor=NAME or one of/],
      [['--kernel', 'k', '--serial', 'pty'], /--serial: 'pty'/],
      [['--kernel', 'k', '--frobnicate'], /unknown argument '--frobnicate'/],
      [['--kernel', 'k', '--drive', 'format=raw'], /--drive: 'file' is required/],
      [['--kernel', 'k', '--drive', 'file=a.img'], /if=ide \(QEMU's default\) needs an IDE controller/],
      [['--kernel', 'k', '--drive', 'file=a.img,if=virtio,frob=1'], /--drive: unknown option 'frob'/],
      [['--kernel', 'k', '--drive', 'file=a.img,if=virtio,cache=fast'], /cache=fast is not one of writeback/],
      [['--kernel', 'k', '--device', 'e1000'], /'e1000' is not a device tsvirt has \(known: virtio-blk-pci, virtio-net-pci, virtio-rng-pci, virtio-balloon-pci, virtio-serial-pci, virtconsole, virtserialport, virtio-blk-device, virtio-rng-device, virtio-balloon-device, i6300esb, ib700, pc-testdev, pci-testdev, isa-debug-exit\)/],
      [['--kernel', 'k', '--device', 'virtio-blk-pci'], /drive=ID is required/],
      [['--kernel', 'k', '--device', 'virtio-rng-pci,max-bytes=5'], /unknown option 'max-bytes'/],
      [['--kernel'], /--kernel needs a value/],
    ] as const) {
      expect(() => parseRunArguments(argv), String(argv)).toThrow(UsageError);
      expect(() => parseRunArguments(argv)).toThrow(message);
    }
    const missing = await cli('run', '--kernel', path.join(dir, 'nope'));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^tsvirt run: cannot read kernel '.*nope': no such file\n$/);
    const notKernel = path.join(dir, 'not-a-kernel');
    writeFileSync(notKernel, 'hello');
    const refused = await cli('run', '--kernel', notKernel);
    expect(refused.status).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/not a multiboot kernel/);
  });
});

// Each of these read endlessly, waited forever or grew the process by gigabytes before: the file is now
// looked at (stat) before it is read, so the timeouts are only a net.
describe('tsvirt run refuses kernels and initrds that are not regular files of a sane size', () => {
  const notKernel = path.join(dir, 'hello.txt');
  const fifo = path.join(dir, 'kernel.fifo');
  beforeAll(() => writeFileSync(notKernel, 'hello'));
  afterEach(() => {
    // Should a FIFO's reader be stuck in open(), a writer that comes and goes lets it finish.
    if (!existsSync(fifo)) return;
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: nobody is reading it.
    }
    rmSync(fifo);
  });

  it('refuses /dev/zero and /dev/urandom as the kernel without reading them', async () => {
    for (const device of ['/dev/zero', '/dev/urandom']) {
      const result = await cli('run', '--kernel', device);
      expect(result.stderr).toBe(`tsvirt run: cannot read kernel '${device}': a character device, not a regular file\n`);
      expect(result.status, device).toBe(2);
    }
  }, 10_000);

  it('refuses /dev/zero as the initrd without reading it', async () => {
    const result = await cli('run', '--kernel', notKernel, '--initrd', '/dev/zero');
    expect(result.stderr).toBe("tsvirt run: cannot read initrd '/dev/zero': a character device, not a regular file\n");
    expect(result.status).toBe(2);
  }, 10_000);

  it('refuses a FIFO as the kernel instead of waiting for a writer', async () => {
    execFileSync('mkfifo', [fifo]);
    const result = await cli('run', '--kernel', fifo);
    expect(result.stderr).toBe(`tsvirt run: cannot read kernel '${fifo}': a FIFO, not a regular file\n`);
    expect(result.status).toBe(2);
  }, 10_000);

  it('refuses a directory as the kernel', async () => {
    const result = await cli('run', '--kernel', dir);
    expect(result.stderr).toBe(`tsvirt run: cannot read kernel '${dir}': a directory, not a regular file\n`);
    expect(result.status).toBe(2);
  }, 10_000);

  it('refuses a kernel larger than 256 MiB before reading it', async () => {
    // Sparse: it takes no disk space, and being refused on its size it is never read.
    const huge = path.join(dir, 'huge-kernel');
    writeFileSync(huge, '');
    truncateSync(huge, 256 * 2 ** 20 + 1);
    const result = await cli('run', '--kernel', huge);
    expect(result.stderr).toBe(`tsvirt run: cannot read kernel '${huge}': it is larger than 256 MiB, the most a kernel may be\n`);
    expect(result.status).toBe(2);
    expect(KERNEL_SIZE_LIMIT).toBe(256 * 2 ** 20);
  }, 10_000);

  it.skipIf(!existsSync('/proc/self/maps'))('stops reading at the limit a file that turns out longer than its size said', async () => {
    // procfs files say they are empty and then produce text: the same as a file that grows while it is read.
    expect(statSync('/proc/self/maps').size).toBe(0);
    await expect(readBootFile('/proc/self/maps', 'kernel', 1024)).rejects.toThrow(new UsageError("cannot read kernel '/proc/self/maps': it is larger than 1 KiB, the most a kernel may be"));
    const maps = new TextDecoder().decode(await readBootFile('/proc/self/maps', 'kernel', 64 * 2 ** 20));
    expect(maps.length).toBeGreaterThan(1024);
    expect(maps).toMatch(/\n$/);
  }, 10_000);

  it.skipIf(!existsSync('/proc/kallsyms'))('reads a long file of unknown size in growing steps, and refuses it past the limit', async () => {
    // Megabytes that say they are empty: the buffer grows past its first 64 KiB several times.
    const symbols = await readBootFile('/proc/kallsyms', 'initrd', 64 * 2 ** 20);
    expect(symbols.length).toBeGreaterThan(2 ** 18);
    expect(symbols[symbols.length - 1]).toBe(0x0a);
    await expect(readBootFile('/proc/kallsyms', 'initrd', 200 * 2 ** 10)).rejects.toThrow(new UsageError("cannot read initrd '/proc/kallsyms': it is larger than 200 KiB, the most an initrd may be"));
  }, 10_000);
});

describe('tsvirt run checks the guest memory against the host', () => {
  const notKernel = path.join(dir, 'hello-memory.txt');
  beforeAll(() => writeFileSync(notKernel, 'hello'));

  it('refuses more guest memory than the host has RAM and swap, as QEMU does', async () => {
    const result = await run(['--kernel', notKernel, '--memory', '64G'], { hostMemoryBytes: 16 * GiB });
    expect(result.stderr).toBe("tsvirt: cannot set up guest memory 'pc.ram': Cannot allocate memory (64 GiB asked for; the host has 16 GiB of RAM and swap)\n");
    expect(result.status).toBe(1);
  }, 10_000);

  it('accepts a guest as large as the host, whatever the host is using now (guest RAM is allocated lazily)', async () => {
    // Past the memory check, the machine is built and finds the file is no kernel.
    await expect(run(['--kernel', notKernel, '--memory', '512M'], { hostMemoryBytes: 512 * 2 ** 20 })).rejects.toThrow(/not a multiboot kernel/);
  }, 10_000);

  it('counts the host memory as RAM plus swap from /proc/meminfo, not what is free', () => {
    expect(hostMemoryBytes('MemTotal:       24683748 kB\nSwapTotal:       2097152 kB\nSwapFree:        0 kB\n')).toBe(totalmem() + 2 * GiB);
    expect(hostMemoryBytes('')).toBe(totalmem());
    expect(hostMemoryBytes()).toBeGreaterThanOrEqual(totalmem());
  });
});

/** Reads fw_cfg's NB_CPUS and checks pc-testdev's scratch register, then reports through isa-debug-exit at 0xF4. */
const runnerProbe = `${MULTIBOOT_AT_1M}
  mov dx, 0x510
  mov ax, 5
  out dx, ax
  mov dx, 0x511
  in al, dx
  movzx ebx, al
  mov dx, 0xe0
  mov eax, 0x12345678
  out dx, eax
  in eax, dx
  cmp eax, 0x12345678
  jne fail
  lea eax, [ebx + 0x10]
  mov dx, 0xf4
  out dx, eax
fail:
  mov eax, 0x7f
  mov dx, 0xf4
  out dx, eax
  hlt
`;

describe.skipIf(!nasmAvailable() && !process.env.CI)('tsvirt run with a kernel', () => {
  const kernel = path.join(dir, 'greeter.bin');
  beforeAll(() => writeFileSync(kernel, assemble(greeter)));

  it('boots it with the console in a file and returns isa-debug-exit status', async () => {
    const console = path.join(dir, 'console.txt');
    const result = await cli('run', '--kernel', kernel, '--serial', `file:${console}`, '--deterministic', '--memory', '64M');
    expect(result.status).toBe((0x20 << 1) | 1);
    expect(readFileSync(console, 'utf8')).toBe('tsvirt run works\n');
  });

  it('refuses a --serial file it cannot open, before the guest runs', async () => {
    for (const [target, reason] of [
      [path.join(dir, 'no', 'such', 'dir', 'x'), 'no such file or directory'],
      [dir, 'is a directory'],
    ] as const) {
      const result = await cli('run', '--kernel', kernel, '--serial', `file:${target}`, '--deterministic', '--memory', '64M');
      expect(result.stderr).toBe(`tsvirt run: --serial file:${target}: could not open serial device '${target}': ${reason}\n`);
      expect(result.status, target).toBe(2);
    }
  });

  it.skipIf(!existsSync('/dev/full'))('refuses --serial file:/dev/full, which fails every write, before the guest runs', async () => {
    const result = await cli('run', '--kernel', kernel, '--serial', 'file:/dev/full', '--deterministic', '--memory', '64M');
    expect(result.stderr).toBe("tsvirt run: --serial file:/dev/full: serial device '/dev/full' refuses writes: no space left on device\n");
    expect(result.status).toBe(2);
  });

  it("serves kvm-unit-tests' runner: pc-testdev, pci-testdev, isa-debug-exit at 0xF4 (4 ports), fw_cfg NB_CPUS = 1", async () => {
    const probe = path.join(dir, 'probe.bin');
    writeFileSync(probe, assemble(runnerProbe));
    const runner = ['--device', 'pc-testdev', '--device', 'isa-debug-exit,iobase=0xf4,iosize=0x4', '--device', 'pci-testdev', '--smp', '1', '--memory', '64', '--no-reboot'];
    // NB_CPUS (1) | 0x10 written as a dword to 0xF4: status 0x23.
    expect((await cli('run', '--kernel', probe, ...runner, '--append', 'arg', '--deterministic')).status).toBe(0x23);
    // Without pc-testdev its scratch register reads all-ones, and the probe says so (0x7F: status 255).
    expect((await cli('run', '--kernel', probe, ...runner.slice(2), '--deterministic')).status).toBe(0xff);
  });

  it('runs from the built command with the console on the terminal', () => {
    const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
    const result = spawnSync(process.execPath, [bin, 'run', '--kernel', kernel, '--memory', '64M'], { encoding: 'utf8', input: '' });
    expect(result.status).toBe(65);
    expect(result.stdout).toBe('tsvirt run works\n');
  });
});

describe('tsvirt run --drive and --device', () => {
  it("reads QEMU's sub-options, with ,, for a comma in a value", () => {
    const args = parseRunArguments(['--kernel', 'k', '--drive', 'file=/images/a,,b.qcow2,format=qcow2,if=none,id=root,readonly=on,cache=unsafe,discard=unmap', '--device', 'virtio-blk-pci,drive=root,serial=S1', '--device=virtio-rng-pci']);
    expect(args.drives).toEqual([{ id: 'root', file: '/images/a,b.qcow2', format: 'qcow2', interface: 'none', readOnly: true, cache: 'unsafe', discard: 'unmap' }]);
    expect(args.devices).toEqual([{ driver: 'virtio-blk-pci', drive: 'root', serial: 'S1' }, { driver: 'virtio-rng-pci' }]);
    expect(parseRunArguments(['--kernel', 'k', '--drive', 'file=x,if=virtio']).drives[0]).toMatchObject({ id: 'drive0', format: undefined, readOnly: false, cache: 'writeback', discard: 'ignore' });
  });

  it('refuses drives no device uses, devices without their drive, and a drive used twice, before the guest runs', async () => {
    const image = path.join(dir, 'disk.raw');
    writeFileSync(image, new Uint8Array(1 << 20));
    const kernel = path.join(dir, 'not-booted');
    writeFileSync(kernel, 'x');
    for (const [extra, message] of [
      [['--drive', `file=${image},format=raw,if=none,id=d`], /no --device uses drive 'd'/],
      [['--device', 'virtio-blk-pci,drive=nothing'], /no --drive with id 'nothing'/],
      [['--drive', `file=${image},format=raw,if=none,id=d`, '--device', 'virtio-blk-pci,drive=d', '--device', 'virtio-blk-pci,drive=d'], /drive 'd' is already in use/],
      [['--drive', `file=${path.join(dir, 'missing.qcow2')},if=virtio`], /--drive .*missing\.qcow2: /],
    ] as const) {
      const result = await cli('run', '--kernel', kernel, '--memory', '64M', ...extra);
      expect(result.status, extra.join(' ')).toBe(2);
      expect(result.stderr, extra.join(' ')).toMatch(message);
    }
  });
});
