import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KvmFeature, QEMU64, TSVIRT_MAX } from '@tsvirt/x86-core';
import { assemble, nasmAvailable } from '@tsvirt/x86-core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli.js';
import { UsageError, parseMemorySize, parseRunArguments } from './run-command.js';

/** A multiboot kernel that prints a line on COM1 and leaves through isa-debug-exit with value 0x20: status 65. */
const greeter = `
bits 32
org 0x100000
header: dd 0x1BADB002, 0x00010000, -(0x1BADB002 + 0x00010000)
        dd header, 0x100000, 0, 0, start
start:
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

  it('refuses bad arguments with one line naming the problem', async () => {
    for (const [argv, message] of [
      [[], /--kernel is required/],
      [['--kernel', 'k', '--memory', 'lots'], /--memory: 'lots' is not a size/],
      [['--kernel', 'k', '--memory', '1M'], /too small/],
      [['--kernel', 'k', '--cpu', 'pentium9'], /unknown CPU model 'pentium9'/],
      [['--kernel', 'k', '--cpu', 'qemu64,-avx512'], /'-avx512' is not one of \+kvmclock/],
      [['--kernel', 'k', '--cpu', 'qemu64,kvmclock=maybe'], /'kvmclock=maybe' is not one of/],
      [['--kernel', 'k', '--serial', 'pty'], /--serial: 'pty'/],
      [['--kernel', 'k', '--frobnicate'], /unknown argument '--frobnicate'/],
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

describe.skipIf(!nasmAvailable() && !process.env.CI)('tsvirt run with a kernel', () => {
  const kernel = path.join(dir, 'greeter.bin');
  beforeAll(() => writeFileSync(kernel, assemble(greeter)));

  it('boots it with the console in a file and returns isa-debug-exit status', async () => {
    const console = path.join(dir, 'console.txt');
    const result = await cli('run', '--kernel', kernel, '--serial', `file:${console}`, '--deterministic', '--memory', '64M');
    expect(result.status).toBe((0x20 << 1) | 1);
    expect(readFileSync(console, 'utf8')).toBe('tsvirt run works\n');
  });

  it('runs from the built command with the console on the terminal', () => {
    const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
    const result = spawnSync(process.execPath, [bin, 'run', '--kernel', kernel, '--memory', '64M'], { encoding: 'utf8', input: '' });
    expect(result.status).toBe(65);
    expect(result.stdout).toBe('tsvirt run works\n');
  });
});
