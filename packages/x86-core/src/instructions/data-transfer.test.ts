import { describe, expect, test } from 'vitest';
import { Flag, Reg, Seg } from '../state/registers.js';
import { runAssembly } from '../testing/flat-machine.js';

function run(bits: 16 | 32 | 64, source: string) {
  const machine = runAssembly(bits, `${source}\nhlt`);
  expect(machine.result.reason).toBe('halted');
  return { ...machine, reg: (r: number) => machine.cpu.getRegister(r) };
}

describe('moves and conversions', () => {
  test('32-bit writes zero the upper half, 8/16-bit writes merge', () => {
    const { reg } = run(64, 'mov rax, -1\nmov eax, 1\nmov rbx, -1\nmov bx, 2\nmov rcx, -1\nmov cl, 3\nmov rdx, -1\nmov dh, 4');
    expect(reg(Reg.RAX)).toBe(1n);
    expect(reg(Reg.RBX)).toBe(0xffffffffffff0002n);
    expect(reg(Reg.RCX)).toBe(0xffffffffffffff03n);
    expect(reg(Reg.RDX)).toBe(0xffffffffffff04ffn);
  });

  test('movzx, movsx, movsxd, cbw/cwde/cdqe, cwd/cdq/cqo', () => {
    const { reg } = run(64, 'mov ecx, 0x80\nmovsx eax, cl\nmovzx ebx, cl\nmov edx, 0x80000000\nmovsxd rsi, edx\nmov edi, 0xffff8000\ncdqe\nmov rax, rdi\ncwde\nmov r8, rax\ncqo');
    expect(reg(Reg.RBX)).toBe(0x80n);
    expect(reg(Reg.RSI)).toBe(0xffffffff80000000n);
    expect(reg(Reg.R8)).toBe(0xffff8000n);
    expect(reg(Reg.RDX)).toBe(0n);
  });

  test('cmov moves on condition; a false 32-bit cmov still zero-extends', () => {
    const { reg } = run(64, 'mov rax, -1\nmov ecx, 5\nxor edx, edx\ncmp edx, 1\ncmovz eax, ecx\nmov rbx, 7\ncmovnz rbx, rcx');
    expect(reg(Reg.RAX)).toBe(0xffffffffn);
    expect(reg(Reg.RBX)).toBe(5n);
  });

  test('setcc, lahf, sahf', () => {
    const { reg, cpu } = run(64, 'mov eax, 1\ncmp eax, 2\nsetb bl\nsetg bh\nlahf\nmov ecx, eax\nmov ah, 0xd5\nsahf');
    expect(reg(Reg.RBX) & 0xffffn).toBe(0x0001n);
    // After 1 - 2: SF, AF, PF (0xff), CF set; bit 1 reads as one.
    expect((reg(Reg.RCX) >> 8n) & 0xffn).toBe(BigInt(Flag.SF | Flag.AF | Flag.PF | Flag.CF | 2));
    expect(cpu.rflags & 0xd5).toBe(0xd5);
  });

  test('lea in 16/32/64-bit forms', () => {
    const { reg } = run(64, 'mov rbx, 0x100000000\nmov rcx, 3\nlea rax, [rbx+rcx*8+0x10]\nlea edx, [rbx+rcx*8+0x10]\nlea si, [rcx-4]');
    expect(reg(Reg.RAX)).toBe(0x100000028n);
    expect(reg(Reg.RDX)).toBe(0x28n);
    expect(reg(Reg.RSI) & 0xffffn).toBe(0xffffn);
  });

  test('xlat and moffs moves', () => {
    const { reg } = run(32, 'mov ebx, 0x200000\nmov byte [ebx+5], 0x77\nmov al, 5\nxlatb\nmov [0x200100], eax\nmov ecx, [0x200100]');
    expect(reg(Reg.RCX) & 0xffn).toBe(0x77n);
  });

  test('moffs moves of EAX use the segment and the full 32-bit offset', () => {
    const machine = runAssembly(32, 'mov dword [0x201100], 0x89abcdef\nmov eax, [fs:0x200100]\nmov [0x200200], eax\nmov ebx, eax\nmov eax, 5\nmov [fs:0x200300], eax\nhlt', {
      setup: (flat) => flat.cpu.setSegment(Seg.FS, { selector: 0x10, base: 0x1000, limit: 0xffffffff, attributes: 0xc093 }),
    });
    expect(machine.result.reason).toBe('halted');
    expect(machine.cpu.getRegister(Reg.RBX)).toBe(0x89abcdefn);
    expect(machine.memory.readU32(0x200200 as never)).toBe(0x89abcdef);
    expect(machine.memory.readU32(0x201300 as never)).toBe(5);
  });

  test('real-mode segments: physical address = segment × 16 + offset', () => {
    const { memory } = run(16, 'mov ax, 0x1000\nmov ds, ax\nmov byte [0x10], 5\nmov es, ax\nmov word [es:0xfffe], 0x1234');
    expect(memory.readU8(0x10010 as never)).toBe(5);
    expect(memory.readU16(0x1fffe as never)).toBe(0x1234);
  });
});

describe('stack', () => {
  test('push/pop, pushf/popf, enter/leave', () => {
    const { reg } = run(64, `mov rax, 0x1122334455667788
push rax
pop rbx
push qword -2
pop rcx
mov rbp, 0x1234
mov rsi, rsp
enter 0x20, 0
mov rdx, rsi
sub rdx, rsp
leave
mov rdi, rbp
stc
pushfq
pop r8`);
    expect(reg(Reg.RBX)).toBe(0x1122334455667788n);
    expect(reg(Reg.RCX)).toBe(0xfffffffffffffffen);
    expect(reg(Reg.RDX)).toBe(0x28n);
    expect(reg(Reg.RDI)).toBe(0x1234n);
    expect(reg(Reg.R8) & 3n).toBe(3n);
  });

  test('pusha/popa (32-bit) and push esp pushes the old value', () => {
    const { reg } = run(32, 'mov eax, 1\nmov ecx, 2\nmov edx, 3\nmov ebx, 4\nmov ebp, 6\nmov esi, 7\nmov edi, 8\npushad\nmov eax, [esp+28]\nmov ebx, [esp+12]\nmov ecx, esp\nadd ecx, 32\nsub ebx, ecx\nmov [esp+28], ebx\npopad\nmov edx, esp\npush esp\npop esi\nsub esi, edx');
    expect(reg(Reg.RAX)).toBe(0n);
    expect(reg(Reg.RSI)).toBe(0n);
  });
});
