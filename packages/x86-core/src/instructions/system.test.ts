import { describe, expect, test } from 'vitest';
import { Msr } from '../msr/msr-file.js';
import { Reg } from '../state/registers.js';
import { runAssembly } from '../testing/flat-machine.js';

function run(bits: 16 | 32 | 64, source: string, setup?: Parameters<typeof runAssembly>[2]) {
  const machine = runAssembly(bits, `${source}\nhlt`, setup);
  expect(machine.result.reason).toBe('halted');
  return { ...machine, reg: (r: number) => machine.cpu.getRegister(r) };
}

function text(...words: bigint[]): string {
  return words.map((word) => String.fromCharCode(...[0, 8, 16, 24].map((shift) => Number((word >> BigInt(shift)) & 0xffn)))).join('');
}

describe('CPUID', () => {
  test('vendor strings and feature bits per model', () => {
    const max = run(64, 'xor eax, eax\ncpuid\nmov r8, rbx\nmov r9, rdx\nmov r10, rcx\nmov eax, 1\ncpuid');
    expect(text(max.reg(Reg.R8), max.reg(Reg.R9), max.reg(Reg.R10))).toBe('GenuineIntel');
    // POPCNT is ECX bit 23 on tsvirt-max; FPU (EDX bit 0) and SSE2 (EDX bit 26).
    expect((max.reg(Reg.RCX) >> 23n) & 1n).toBe(1n);
    expect(max.reg(Reg.RDX) & 1n).toBe(1n);
    expect((max.reg(Reg.RDX) >> 26n) & 1n).toBe(1n);
    const qemu = run(64, 'mov eax, 1\ncpuid\nmov r8, rcx\nmov eax, 0x80000001\ncpuid', { machine: { model: 'qemu64' } });
    expect((qemu.reg(Reg.R8) >> 23n) & 1n).toBe(0n);
    // Long mode (bit 29), NX (bit 20) and SYSCALL (bit 11) in extended EDX.
    expect((qemu.reg(Reg.RDX) >> 29n) & 1n).toBe(1n);
    expect((qemu.reg(Reg.RDX) >> 20n) & 1n).toBe(1n);
  });
});

describe('time-stamp counter and MSRs', () => {
  test('RDTSC counts retired instructions by default', () => {
    const { reg } = run(64, 'rdtsc\nmov ebx, eax\nnop\nnop\nrdtsc\nsub eax, ebx');
    // Four instructions retire between the two reads: rdtsc, mov, nop, nop.
    expect(reg(Reg.RAX)).toBe(4n);
  });

  test('RDTSC follows an injected counter', () => {
    const { reg } = run(64, 'rdtsc', { machine: { cpuOptions: { timeStampCounter: () => 0x123456789a } } });
    expect(reg(Reg.RAX)).toBe(0x3456789an);
    expect(reg(Reg.RDX)).toBe(0x12n);
  });

  test('WRMSR/RDMSR round trip; unknown MSRs raise #GP', () => {
    const { reg, cpu } = run(64, `mov ecx, 0xc0000103
mov eax, 42
xor edx, edx
wrmsr
rdtscp
mov ebx, ecx
mov ecx, 0xc0000100
mov eax, 0x1000
mov edx, 0
wrmsr
mov dword [fs:0x10], 7
mov esi, [0x1010]`);
    expect(reg(Reg.RBX)).toBe(42n);
    expect(reg(Reg.RSI)).toBe(7n);
    expect(cpu.readMsr(Msr.FS_BASE)).toBe(0x1000n);
    expect(cpu.readMsr(0x12345)).toBeUndefined();
  });

  test('WRMSR to FS_BASE in 32-bit code moves a flat FS: its accesses stop being at the offset', () => {
    const { reg } = run(32, `mov dword [fs:0x200010], 5
mov ecx, 0xc0000100
mov eax, 0x1000
xor edx, edx
wrmsr
mov dword [fs:0x200010], 7
mov ebx, [0x200010]
mov esi, [0x201010]`);
    expect(reg(Reg.RBX)).toBe(5n);
    expect(reg(Reg.RSI)).toBe(7n);
  });
});

describe('port I/O', () => {
  test('IN and OUT reach the bus; unclaimed ports read all-ones', () => {
    const writes: Array<[number, number]> = [];
    const { reg } = run(32, 'mov al, 0x41\nout 0x80, al\nmov dx, 0x81\nmov ax, 0x1234\nout dx, ax\nin al, 0x80\nmov bl, al\nmov dx, 0x300\nin eax, dx', {
      setup: ({ io }) => {
        io.register(0x80, 4, { read: (offset) => 0x50 + offset, write: (offset, _size, value) => writes.push([offset, value]) }, 'test');
      },
    });
    expect(writes).toEqual([[0, 0x41], [1, 0x1234]]);
    expect(reg(Reg.RBX) & 0xffn).toBe(0x50n);
    expect(reg(Reg.RAX)).toBe(0xffffffffn);
  });
});
