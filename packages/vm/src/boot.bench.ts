/**
 * Time from power-on to the guest kit's ready marker for the Debian kernels
 * in .guests/ (`pnpm guests`), on QEMU TCG and on v86 (i386 only; v86 runs
 * 32-bit guests), in the same run, with the same kernel and initramfs, beside
 * `tsvirt run` (the built CLI, real-time clock).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchmarkReport } from '@tsvirt/interfaces/testing';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const READY = 'TSVIRT-READY';
const TIMEOUT_MS = 900_000;
const APPEND = 'console=ttyS0 panic=-1 tsvirt.run="true"';

interface Guest {
  readonly arch: 'amd64' | 'i386';
  readonly kernel: string;
  readonly initrd: string;
}

function guests(): Guest[] {
  return (['amd64', 'i386'] as const)
    .map((arch) => ({ arch, kernel: path.join(root, '.guests', arch, 'vmlinuz'), initrd: path.join(root, '.guests', arch, 'initramfs.cpio.gz') }))
    .filter((guest) => existsSync(guest.kernel) && existsSync(guest.initrd));
}

/** Seconds from starting `command` until the ready marker on its standard output, or a reason it could not run. */
function secondsToReady(command: string, args: string[], missing: string): Promise<number | string> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let output = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.on('error', () => resolve(missing));
    child.stdout.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString('latin1')).slice(-4096);
      if (output.includes(READY)) {
        resolve((performance.now() - started) / 1000);
        clearTimeout(timer);
        child.kill('SIGKILL');
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve('no ready marker');
    });
  });
}

function qemuSeconds(guest: Guest): Promise<number | string> {
  const binary = guest.arch === 'amd64' ? 'qemu-system-x86_64' : 'qemu-system-i386';
  const args = ['-accel', 'tcg', '-m', '512', '-nographic', '-no-reboot', '-kernel', guest.kernel, '-initrd', guest.initrd, '-append', APPEND];
  return secondsToReady(binary, args, `${binary} not installed (apt-get install qemu-system-x86)`);
}

/** `tsvirt run` as a user starts it (the built CLI, real-time clock, serial console on stdout). */
function tsvirtSeconds(guest: Guest): Promise<number | string> {
  const cli = path.join(root, 'packages', 'cli', 'dist', 'bin.js');
  if (!existsSync(cli)) return Promise.resolve('CLI not built (pnpm build)');
  const args = [cli, 'run', '--kernel', guest.kernel, '--initrd', guest.initrd, '--append', APPEND, '--memory', '512M', '--serial', 'stdio'];
  return secondsToReady(process.execPath, args, 'node could not start the CLI');
}

interface V86Emulator {
  add_listener(event: 'serial0-output-byte', listener: (byte: number) => void): void;
  destroy(): Promise<void>;
}

/** Seconds until the ready marker on v86 with Debian's SeaBIOS, JIT on or off. */
async function v86Seconds(guest: Guest, jit: boolean): Promise<number | string> {
  const bios = '/usr/share/seabios/bios.bin';
  const vgaBios = '/usr/share/seabios/vgabios-stdvga.bin';
  if (!existsSync(bios)) return 'SeaBIOS not installed (apt-get install seabios)';
  const require = createRequire(import.meta.url);
  const { V86 } = (await import('v86')) as unknown as { V86: new (options: Record<string, unknown>) => V86Emulator };
  const buffer = (file: string) => {
    const bytes = readFileSync(file);
    return { buffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) };
  };
  return new Promise((resolve) => {
    const started = performance.now();
    const emulator = new V86({
      wasm_path: path.join(path.dirname(require.resolve('v86')), 'v86.wasm'),
      bios: buffer(bios),
      vga_bios: buffer(vgaBios),
      bzimage: buffer(guest.kernel),
      initrd: buffer(guest.initrd),
      cmdline: APPEND,
      memory_size: 512 << 20,
      autostart: true,
      disable_jit: !jit,
    });
    let output = '';
    let done = false;
    const finish = (result: number | string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      void emulator.destroy().then(() => resolve(result));
    };
    const timer = setTimeout(() => finish('no ready marker within the time limit'), TIMEOUT_MS);
    emulator.add_listener('serial0-output-byte', (byte) => {
      output = (output + String.fromCharCode(byte)).slice(-64);
      if (output.includes(READY)) finish((performance.now() - started) / 1000);
    });
  });
}

export default async function bootBench(): Promise<BenchmarkReport[]> {
  const found = guests();
  if (found.length === 0) throw new Error('no guests in .guests/: run `pnpm guests` first');
  const format = (result: number | string) => (typeof result === 'number' ? `${result.toFixed(1)} s` : result);
  const rows: Array<Array<string | number>> = [];
  for (const guest of found) {
    const tsvirt = await tsvirtSeconds(guest);
    const qemu = await qemuSeconds(guest);
    const v86Jit = guest.arch === 'i386' ? await v86Seconds(guest, true) : 'runs 32-bit guests only';
    const v86Interpreter = guest.arch === 'i386' ? await v86Seconds(guest, false) : 'runs 32-bit guests only';
    const manifest = JSON.parse(readFileSync(path.join(root, '.guests', guest.arch, 'manifest.json'), 'utf8')) as { kernelPackage: string };
    rows.push([`${guest.arch} (${manifest.kernelPackage})`, format(tsvirt), format(qemu), format(v86Jit), format(v86Interpreter)]);
  }
  return [
    {
      title: 'Boot to the ready marker',
      description: `Debian's stock kernels and the guest kit's busybox initramfs, 512 MiB, kernel command line \`${APPEND}\`; time from starting the emulator to \`${READY}\` on the serial console. QEMU runs with \`-accel tcg\`; v86 with Debian's SeaBIOS.`,
      columns: ['guest', 'tsvirt', 'QEMU TCG', 'v86 (JIT)', 'v86 (interpreter)'],
      rows,
      notes: ['The tsvirt column is the built `tsvirt run` (real-time clock, serial console on stdout), started as a user starts it; everything ran one after another on an otherwise idle machine.'],
    },
  ];
}
