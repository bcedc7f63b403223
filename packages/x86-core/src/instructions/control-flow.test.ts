import { describe, expect, test } from 'vitest';
import { Reg } from '../state/registers.js';
import { runAssembly } from '../testing/flat-machine.js';

function run(bits: 16 | 32 | 64, source: string) {
  const machine = runAssembly(bits, `${source}\nhlt`);
  expect(machine.result.reason).toBe('halted');
  return { ...machine, reg: (r: number) => machine.cpu.getRegister(r) };
}

describe('branches', () => {
  test('call/ret, ret imm, indirect call through a register and memory', () => {
    const { reg } = run(64, `xor eax, eax
call f
lea rbx, [rel g]
call rbx
mov [rsp-16], rbx
call [rsp-16]
push 1
push 2
call h
jmp done
f: add eax, 1
ret
g: add eax, 10
ret
h: add eax, 100
ret 16
done:`);
    expect(reg(Reg.RAX)).toBe(121n);
  });

  test('loop, loope, jrcxz and jecxz', () => {
    const { reg } = run(64, `xor eax, eax
mov ecx, 5
.l: add eax, 2
loop .l
mov rcx, 0x100000000
jecxz .zero
mov ebx, 1
.zero:
jrcxz .never
mov edx, 7
.never:`);
    expect(reg(Reg.RAX)).toBe(10n);
    expect(reg(Reg.RBX)).toBe(0n);
    expect(reg(Reg.RDX)).toBe(7n);
  });


  test('real-mode INT and IRET go through the vector table', () => {
    const { reg } = run(16, `mov word [0x80*4], handler
mov word [0x80*4+2], 0
mov ax, 1
int 0x80
add ax, 10
jmp done
handler:
  add ax, 100
  iret
done:`);
    expect(reg(Reg.RAX) & 0xffffn).toBe(111n);
  });
});

describe('far jump in real mode', () => {
  test('lands at segment × 16 + offset', () => {
    const machine = runAssembly(16, 'jmp 0x1000:0x0010', {
      setup: ({ load }) => load(0x10010, Uint8Array.of(0xb8, 0x34, 0x12, 0xf4)),
    });
    expect(machine.result.reason).toBe('halted');
    expect(machine.cpu.getRegister(Reg.RAX) & 0xffffn).toBe(0x1234n);
    expect(machine.cpu.getSegment(1).base).toBe(0x10000);
  });
});
