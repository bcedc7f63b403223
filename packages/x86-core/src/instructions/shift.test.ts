import { describe, expect, test } from 'vitest';
import { Flag, Reg } from '../state/registers.js';
import { runAssembly } from '../testing/flat-machine.js';

function run(bits: 16 | 32 | 64, source: string) {
  const { cpu, result } = runAssembly(bits, `${source}\nhlt`);
  expect(result.reason).toBe('halted');
  return { flags: cpu.rflags, rax: cpu.getRegister(Reg.RAX) };
}

// Expected values computed by hand from the SDM's definitions (RCL/RCR rotate through CF as a 9/17/33/65-bit value).
describe('shifts and rotates', () => {
  test.each([
    [32, 'mov eax, 0x80000001\nrol eax, 1', 0x3n, Flag.CF | Flag.OF, Flag.CF | Flag.OF],
    [32, 'mov eax, 0x80000001\nror eax, 1', 0xc0000000n, Flag.CF, Flag.CF | Flag.OF],
    [32, 'mov eax, 0x81\nsar al, 1', 0xc0n, Flag.CF, Flag.CF],
    [32, 'mov eax, 0x81\nshr al, 1', 0x40n, Flag.CF | Flag.OF, Flag.CF | Flag.OF],
    [32, 'mov eax, 0x81\nshl al, 1', 0x02n, Flag.CF | Flag.OF, Flag.CF | Flag.OF],
    [32, 'stc\nmov eax, 1\nrcr al, 1', 0x80n, Flag.CF, Flag.CF],
    [32, 'clc\nmov eax, 0x80\nrcl al, 1', 0x00n, Flag.CF, Flag.CF],
    [64, 'stc\nmov rax, 0x8000000000000000\nrcl rax, 1', 0x1n, Flag.CF, Flag.CF],
    [64, 'stc\nmov rax, 0x8000000000000005\nrcr rax, 3', 0x7000000000000000n, Flag.CF, Flag.CF],
    [32, 'clc\nmov eax, 0x8001\nrcl ax, 5', 0x28n, 0, Flag.CF],
    [64, 'mov rax, 0x8000000000000001\nrol rax, 4', 0x18n, 0, Flag.CF],
    [64, 'mov rax, 0x123456789abcdef0\nror rax, 36', 0x89abcdef01234567n, Flag.CF, Flag.CF],
    [64, 'mov rax, -16\nsar rax, 2', 0xfffffffffffffffcn, 0, Flag.CF],
    [64, 'mov rax, 1\nshl rax, 63', 0x8000000000000000n, 0, Flag.CF],
    [64, 'mov rax, 0x8000000000000000\nshr rax, 63', 1n, 0, Flag.CF],
    [64, 'mov rax, 0x80000000\nshl rax, 1', 0x100000000n, 0, Flag.CF],
    [32, 'mov eax, 0x12345678\nmov ebx, 0x9abcdef0\nshld eax, ebx, 8', 0x3456789an, 0, Flag.CF],
    [32, 'mov eax, 0x12345678\nmov ebx, 0x9abcdef0\nmov cl, 8\nshrd eax, ebx, cl', 0xf0123456n, 0, Flag.CF],
    [64, 'mov rax, 0x123456789abcdef0\nmov rbx, 0xfedcba9876543210\nshld rax, rbx, 16', 0x56789abcdef0fedcn, 0, Flag.CF],
    [64, 'mov rax, 0x123456789abcdef0\nmov rbx, 0xfedcba9876543210\nshrd rax, rbx, 20', 0x43210123456789abn, Flag.CF, Flag.CF],
  ] as const)('%i-bit: %s', (bits, source, value, flags, mask) => {
    const result = run(bits, source);
    expect(result.rax).toBe(value);
    expect(result.flags & mask).toBe(flags);
  });

  test('a zero count changes neither the operand nor the flags', () => {
    const result = run(32, 'mov eax, 0\nadd eax, 0\nmov eax, 5\nmov cl, 32\nshl eax, cl');
    expect(result.rax).toBe(5n);
    expect(result.flags & (Flag.ZF | Flag.PF)).toBe(Flag.ZF | Flag.PF);
  });
});
