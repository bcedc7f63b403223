import { describe, expect, test } from 'vitest';
import { Flag, Reg } from '../state/registers.js';
import { runAssembly } from '../testing/flat-machine.js';

function run(bits: 16 | 32 | 64, source: string, limit = 100_000) {
  const machine = runAssembly(bits, `${source}\nhlt`, { limit });
  expect(machine.result.reason).toBe('halted');
  return { ...machine, reg: (r: number) => machine.cpu.getRegister(r) };
}

describe('string instructions', () => {
  test('rep movsb copies and advances', () => {
    const { memory, reg } = run(64, `mov rsi, 0x200000
mov dword [rsi], 0x44332211
mov dword [rsi+4], 0x88776655
mov rdi, 0x200100
mov ecx, 7
cld
rep movsb`);
    expect(memory.readU32(0x200100 as never)).toBe(0x44332211);
    expect(memory.readU32(0x200104 as never) & 0xffffff).toBe(0x776655);
    expect(memory.readU8(0x200107 as never)).toBe(0);
    expect(reg(Reg.RCX)).toBe(0n);
    expect(reg(Reg.RSI)).toBe(0x200007n);
    expect(reg(Reg.RDI)).toBe(0x200107n);
  });

  test('rep stosd backwards with DF', () => {
    const { memory, reg } = run(32, 'mov edi, 0x20000c\nmov eax, 0xabcdef01\nmov ecx, 4\nstd\nrep stosd\ncld');
    for (let i = 0; i < 4; i++) expect(memory.readU32((0x200000 + 4 * i) as never)).toBe(0xabcdef01);
    expect(reg(Reg.RDI)).toBe(0x1ffffcn);
  });

  test('repne scasb stops at the match; repe cmpsb stops at the difference', () => {
    const { reg, cpu } = run(64, `mov rdi, 0x200000
mov dword [rdi], 0x00636261
mov al, 0x63
mov ecx, 100
repne scasb
mov rbx, rcx
mov rsi, 0x200000
mov rdi, 0x200100
mov dword [rdi], 0x00646261
mov ecx, 4
repe cmpsb`);
    expect(reg(Reg.RBX)).toBe(97n);
    expect(reg(Reg.RCX)).toBe(1n);
    expect(cpu.rflags & Flag.ZF).toBe(0);
  });

  test('long rep stos runs in chunks and finishes', () => {
    const { memory, reg } = run(64, 'mov rdi, 0x300000\nmov eax, 0x5a\nmov ecx, 100000\nrep stosb', 1_000_000);
    expect(memory.readU8((0x300000 + 99_999) as never)).toBe(0x5a);
    expect(memory.readU8((0x300000 + 100_000) as never)).toBe(0);
    expect(reg(Reg.RCX)).toBe(0n);
  });

  test('16-bit address size wraps SI/DI at 64 KiB', () => {
    const { reg } = run(16, 'mov si, 0xffff\nmov di, 0xffff\nmov cx, 2\nrep movsb');
    expect(reg(Reg.RSI) & 0xffffn).toBe(1n);
    expect(reg(Reg.RDI) & 0xffffn).toBe(1n);
  });
});
