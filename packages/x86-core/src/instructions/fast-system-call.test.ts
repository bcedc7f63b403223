import { describe, expect, test } from 'vitest';
import { Reg } from '../state/registers.js';
import { runAssembly } from '../testing/flat-machine.js';
import { LONG_MODE_TABLES } from '../testing/long-mode-tables.js';

/**
 * 64-bit prologue: the #DB handler counts in R12, keeps the trapping RIP in
 * R13 and returns with TF clear; STAR and LSTAR lead SYSCALL to
 * `kernel_target` and SYSRET to ring 3.
 */
const PROLOGUE = `${LONG_MODE_TABLES}
    set_gate 1, debug_trap
    xor r12d, r12d
    xor r13d, r13d
    mov ecx, 0xc0000081           ; STAR: SYSCALL CS 0x08, SYSRET base 0x18
    xor eax, eax
    mov edx, 0x00180008
    wrmsr
    mov ecx, 0xc0000082           ; LSTAR
    mov eax, kernel_target
    xor edx, edx
    wrmsr
    jmp body
debug_trap:
    inc r12
    mov r13, [rsp]
    and qword [rsp + 16], ~0x100
    iretq
body:
`;

describe('SYSCALL and SYSRET single-step on TF at their end', () => {
  test('a SYSCALL whose FMASK clears TF raises no #DB; one that keeps TF traps before the first kernel instruction', () => {
    for (const [mask, traps] of [[0x100, false], [0, true]] as const) {
      const { cpu, result } = runAssembly(64, `${PROLOGUE}
    mov ecx, 0xc0000084           ; FMASK
    mov eax, ${mask}
    xor edx, edx
    wrmsr
    pushfq
    or qword [rsp], 0x100
    popfq
    syscall
kernel_target:
    pushfq
    and qword [rsp], ~0x100
    popfq
    hlt`);
      expect(result.reason).toBe('halted');
      // The handler returns with TF clear, so one trap at most; RCX holds kernel_target (SYSCALL's next RIP).
      expect(cpu.getRegister(Reg.R12)).toBe(traps ? 1n : 0n);
      expect(cpu.getRegister(Reg.R13)).toBe(traps ? cpu.getRegister(Reg.RCX) : 0n);
    }
  });

  test('a SYSRET that sets TF from R11 traps before the first user instruction, not after it', () => {
    const { cpu, result } = runAssembly(64, `${PROLOGUE}
    mov rcx, user
    mov r11, 0x302                ; IF and TF
    o64 sysret
user:
    nop
    nop
    jmp user
kernel_target:
    hlt`, { limit: 2000 });
    expect(result.reason).toBe('limit');
    expect(cpu.getRegister(Reg.R12)).toBe(1n);
    const user = cpu.getRegister(Reg.RCX);
    expect(cpu.getRegister(Reg.R13)).toBe(user);
  });
});
