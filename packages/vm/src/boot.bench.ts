/**
 * Time from power-on to the guest kit's ready marker for the Debian kernels
 * in .guests/ (`pnpm guests`), on QEMU TCG and on v86 (i386 only; v86 runs
 * 32-bit guests), in the same run, with the same kernel and initramfs, beside
 * tsvirt's own pc machine in real-time mode (what `tsvirt run` uses).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CharacterBackend } from '@tsvirt/interfaces';
import type { BenchmarkReport } from '@tsvirt/interfaces/testing';
import { PcMachine } from './machine/pc-machine.js';

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

/** Seconds until the ready marker on QEMU TCG, or a reason it could not run. */
function qemuSeconds(guest: Guest): Promise<number | string> {
  const binary = guest.arch === 'amd64' ? 'qemu-system-x86_64' : 'qemu-system-i386';
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(binary, ['-accel', 'tcg', '-m', '512', '-nographic', '-no-reboot', '-kernel', guest.kernel, '-initrd', guest.initrd, '-append', APPEND], { stdio: ['ignore', 'pipe', 'ignore'] });
    let output = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.on('error', () => resolve(`${binary} not installed (apt-get install qemu-system-x86)`));
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

/** Seconds until the ready marker on tsvirt's pc machine (real-time clock, as `tsvirt run` boots). */
async function tsvirtSeconds(guest: Guest): Promise<number | string> {
  let output = '';
  let machine: PcMachine | undefined = undefined;
  let seconds: number | undefined;
  const started = performance.now();
  const serial: CharacterBackend = {
    write(data) {
      output = (output + Buffer.from(data).toString('latin1')).slice(-64);
      if (seconds === undefined && output.includes(READY)) {
        seconds = (performance.now() - started) / 1000;
        machine?.stop();
      }
    },
    connect() {},
    notifyReceiveReady() {},
  };
  machine = new PcMachine({ memoryBytes: 512 << 20, kernel: readFileSync(guest.kernel), initrd: readFileSync(guest.initrd), commandLine: APPEND, serial });
  const timer = setTimeout(() => machine.stop(), TIMEOUT_MS);
  const exit = await machine.run();
  clearTimeout(timer);
  return seconds ?? `no ready marker (${exit.kind})`;
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
    },
  ];
}
