import { describe, expect, test } from 'vitest';
import type { CpuEvent } from '../cpu.js';
import { Flag, Reg } from '../state/registers.js';
import { runAssembly } from '../testing/flat-machine.js';

const ARITH = Flag.CF | Flag.PF | Flag.AF | Flag.ZF | Flag.SF | Flag.OF;

/** Runs `source` and returns the arithmetic flags and named registers. */
function run(bits: 16 | 32 | 64, source: string) {
  const { cpu, result } = runAssembly(bits, `${source}\nhlt`);
  expect(result.reason).toBe('halted');
  return { cpu, flags: cpu.rflags & ARITH, reg: (r: number) => cpu.getRegister(r) };
}

describe('add/sub/adc/sbb flags (hand-computed, Intel SDM flag definitions)', () => {
  test('8-bit signed overflow 0x7f + 1', () => {
    const { flags, reg } = run(64, 'mov al, 0x7f\nadd al, 1');
    expect(reg(Reg.RAX) & 0xffn).toBe(0x80n);
    expect(flags).toBe(Flag.OF | Flag.SF | Flag.AF);
  });

  test('32-bit carry out 0xffffffff + 1 clears the upper half', () => {
    const { flags, reg } = run(64, 'mov rax, -1\nmov ecx, 1\nadd eax, ecx');
    expect(reg(Reg.RAX)).toBe(0n);
    expect(flags).toBe(Flag.CF | Flag.ZF | Flag.PF | Flag.AF);
  });

  test('64-bit signed overflow', () => {
    const { flags, reg } = run(64, 'mov rax, 0x7fffffffffffffff\nadd rax, 1');
    expect(reg(Reg.RAX)).toBe(0x8000000000000000n);
    expect(flags).toBe(Flag.OF | Flag.SF | Flag.AF | Flag.PF);
  });

  test('0 - 1 borrows', () => {
    const { flags, reg } = run(32, 'mov eax, 0\nsub eax, 1');
    expect(reg(Reg.RAX)).toBe(0xffffffffn);
    expect(flags).toBe(Flag.CF | Flag.SF | Flag.AF | Flag.PF);
  });

  test('adc and sbb use the carry', () => {
    expect(run(64, 'stc\nmov eax, 5\nadc eax, 3').reg(Reg.RAX)).toBe(9n);
    const { flags, reg } = run(64, 'stc\nmov rax, 0\nsbb rax, 0');
    expect(reg(Reg.RAX)).toBe(0xffffffffffffffffn);
    expect(flags & Flag.CF).toBe(Flag.CF);
    // 64-bit add with carry across the halves.
    expect(run(64, 'mov rax, 0xffffffff\nstc\nadc rax, 0').reg(Reg.RAX)).toBe(0x100000000n);
  });

  test('neg of the most negative value overflows', () => {
    const { flags, reg } = run(32, 'mov ecx, 0x80000000\nneg ecx');
    expect(reg(Reg.RCX)).toBe(0x80000000n);
    expect(flags & (Flag.OF | Flag.CF)).toBe(Flag.OF | Flag.CF);
  });

  test('inc keeps CF; dec sets OF at the signed minimum', () => {
    const { flags } = run(32, 'stc\nmov eax, 0xffffffff\ninc eax');
    expect(flags & (Flag.CF | Flag.ZF)).toBe(Flag.CF | Flag.ZF);
    const dec = run(16, 'clc\nmov ax, 0x8000\ndec ax');
    expect(dec.reg(Reg.RAX) & 0xffffn).toBe(0x7fffn);
    expect(dec.flags & (Flag.OF | Flag.CF | Flag.AF)).toBe(Flag.OF | Flag.AF);
  });

  test('logic clears CF and OF; cmp/jcc signed and unsigned', () => {
    const { flags } = run(64, 'stc\nmov eax, 0xf0\nand eax, 0x0f');
    expect(flags).toBe(Flag.ZF | Flag.PF);
    const jumps = run(64, `xor ebx, ebx
mov eax, -1
cmp eax, 1
jl .less
or ebx, 1
.less:
jb .below
or ebx, 2
.below:
ja .above
or ebx, 4
.above:`);
    // -1 < 1 signed (taken), 0xffffffff is not below 1 unsigned (not taken: +2), it is above (taken).
    expect(jumps.reg(Reg.RBX)).toBe(2n);
  });
});

describe('multiply and divide', () => {
  test('mul r32 gives EDX:EAX (values from exact integer arithmetic)', () => {
    const { flags, reg } = run(64, 'mov eax, 0x12345678\nmov ecx, 0x9abcdef0\nmul ecx');
    expect(reg(Reg.RAX)).toBe(0x242d2080n);
    expect(reg(Reg.RDX)).toBe(0x0b00ea4en);
    expect(flags & (Flag.CF | Flag.OF)).toBe(Flag.CF | Flag.OF);
  });

  test('mul r64 gives RDX:RAX', () => {
    const { reg } = run(64, 'mov rax, 0x123456789abcdef0\nmov rcx, 0x0fedcba987654321\nmul rcx');
    expect(reg(Reg.RAX)).toBe(0x2236d88fe5618cf0n);
    expect(reg(Reg.RDX)).toBe(0x0121fa00ad77d742n);
  });

  test('imul forms and overflow', () => {
    const one = run(64, 'mov rax, -3\nmov rcx, 7\nimul rcx');
    expect(one.reg(Reg.RAX)).toBe(0xffffffffffffffebn);
    expect(one.reg(Reg.RDX)).toBe(0xffffffffffffffffn);
    expect(one.flags & (Flag.CF | Flag.OF)).toBe(0);
    const overflow = run(64, 'mov rax, 0x8000000000000000\nmov rcx, 2\nimul rcx');
    expect(overflow.reg(Reg.RAX)).toBe(0n);
    expect(overflow.reg(Reg.RDX)).toBe(0xffffffffffffffffn);
    expect(overflow.flags & (Flag.CF | Flag.OF)).toBe(Flag.CF | Flag.OF);
    expect(run(32, 'mov ecx, 0x12345678\nimul eax, ecx, 3').reg(Reg.RAX)).toBe(0x369d0368n);
    const byte = run(32, 'mov al, -128\nmov cl, 2\nimul cl');
    expect(byte.reg(Reg.RAX) & 0xffffn).toBe(0xff00n);
    expect(byte.flags & Flag.CF).toBe(Flag.CF);
  });

  test('div and idiv', () => {
    const small = run(32, 'mov edx, 0\nmov eax, 100\nmov ecx, 7\ndiv ecx');
    expect(small.reg(Reg.RAX)).toBe(14n);
    expect(small.reg(Reg.RDX)).toBe(2n);
    const wide = run(64, 'mov rdx, 1\nmov rax, 5\nmov rcx, 0x100000000\ndiv rcx');
    expect(wide.reg(Reg.RAX)).toBe(0x100000000n);
    expect(wide.reg(Reg.RDX)).toBe(5n);
    const big = run(64, 'mov rdx, 0x0123456789abcdef\nmov rax, 0xfedcba9876543210\nmov rcx, 0x1122334455667788\ndiv rcx');
    expect(big.reg(Reg.RAX)).toBe(0x10ffffffffffffffn);
    expect(big.reg(Reg.RDX)).toBe(0x07feeddccbbaa998n);
    const signed = run(32, 'mov eax, -7\ncdq\nmov ecx, 2\nidiv ecx');
    expect(signed.reg(Reg.RAX)).toBe(0xfffffffdn);
    expect(signed.reg(Reg.RDX)).toBe(0xffffffffn);
    const signed64 = run(64, 'mov rax, -0x123456789abcdef0\ncqo\nmov rcx, 0x7654321\nidiv rcx');
    expect(signed64.reg(Reg.RAX)).toBe(0xfffffffd89d89d8bn);
    expect(signed64.reg(Reg.RDX)).toBe(0xfffffffffa447125n);
  });

  test('divide by zero and quotient overflow raise #DE (vector 0)', () => {
    for (const source of ['xor ecx, ecx\ndiv ecx', 'mov edx, 1\nmov ecx, 1\ndiv ecx', 'mov eax, 0x80000000\ncdq\nmov ecx, -1\nidiv ecx']) {
      const events: CpuEvent[] = [];
      runAssembly(32, source, { limit: 10, machine: { cpuOptions: { events: (event) => events.push(event) } } });
      expect(events[0]).toMatchObject({ kind: 'exception', vector: 0 });
    }
  });
});

describe('decimal adjust (SDM pseudocode examples)', () => {
  test('daa after 0x79 + 0x35 = BCD 114', () => {
    const { reg, flags } = run(32, 'mov al, 0x79\nadd al, 0x35\ndaa');
    expect(reg(Reg.RAX) & 0xffn).toBe(0x14n);
    expect(flags & Flag.CF).toBe(Flag.CF);
  });

  test('das after 0x35 - 0x47 = BCD -12 (88 with borrow)', () => {
    const { reg, flags } = run(32, 'mov al, 0x35\nsub al, 0x47\ndas');
    expect(reg(Reg.RAX) & 0xffn).toBe(0x88n);
    expect(flags & Flag.CF).toBe(Flag.CF);
  });

  test('aaa, aas, aam, aad', () => {
    expect(run(32, 'mov ax, 9\nadd al, 8\naaa').reg(Reg.RAX) & 0xffffn).toBe(0x0107n);
    expect(run(32, 'mov ax, 0x0102\nsub al, 5\naas').reg(Reg.RAX) & 0xffffn).toBe(0x0007n);
    expect(run(32, 'mov al, 77\naam').reg(Reg.RAX) & 0xffffn).toBe(0x0707n);
    expect(run(32, 'mov ax, 0x0707\naad').reg(Reg.RAX) & 0xffffn).toBe(77n);
  });
});

describe('exchange and compare', () => {
  test('cmpxchg equal and unequal', () => {
    const equal = run(64, 'mov rsi, 0x200000\nmov qword [rsi], 5\nmov eax, 5\nmov ecx, 9\ncmpxchg [rsi], ecx\nmov ebx, [rsi]');
    expect(equal.reg(Reg.RBX)).toBe(9n);
    expect(equal.flags & Flag.ZF).toBe(Flag.ZF);
    const unequal = run(64, 'mov rsi, 0x200000\nmov dword [rsi], 6\nmov eax, 5\nmov ecx, 9\ncmpxchg [rsi], ecx\nmov ebx, [rsi]');
    expect(unequal.reg(Reg.RBX)).toBe(6n);
    expect(unequal.reg(Reg.RAX)).toBe(6n);
    expect(unequal.flags & Flag.ZF).toBe(0);
  });

  test('cmpxchg8b and cmpxchg16b', () => {
    const eight = run(32, `mov esi, 0x200000
mov dword [esi], 1
mov dword [esi+4], 2
mov eax, 1
mov edx, 2
mov ebx, 0x11
mov ecx, 0x22
cmpxchg8b [esi]
mov edi, [esi+4]`);
    expect(eight.reg(Reg.RDI)).toBe(0x22n);
    expect(eight.flags & Flag.ZF).toBe(Flag.ZF);
    const sixteen = run(64, `mov rsi, 0x200000
mov qword [rsi], 1
mov qword [rsi+8], 2
xor eax, eax
xor edx, edx
cmpxchg16b [rsi]`);
    expect(sixteen.reg(Reg.RAX)).toBe(1n);
    expect(sixteen.reg(Reg.RDX)).toBe(2n);
    expect(sixteen.flags & Flag.ZF).toBe(0);
  });

  test('xadd and xchg', () => {
    const { reg } = run(64, 'mov rsi, 0x200000\nmov qword [rsi], 10\nmov rax, 3\nlock xadd [rsi], rax\nmov rbx, [rsi]\nmov rcx, 1\nmov rdx, 2\nxchg rcx, rdx');
    expect(reg(Reg.RAX)).toBe(10n);
    expect(reg(Reg.RBX)).toBe(13n);
    expect(reg(Reg.RCX)).toBe(2n);
    expect(reg(Reg.RDX)).toBe(1n);
  });
});
