import { describe, expect, test } from 'vitest';
import { parseCpuModel } from '../cpuid/models.js';
import { Reg } from '../state/registers.js';
import { runAssembly } from '../testing/flat-machine.js';
import { LONG_MODE_TABLES } from '../testing/long-mode-tables.js';

/**
 * 64-bit: SYSRET to ring 3 (user code and data at 0x2B/0x23), with #GP going
 * through a conforming code segment to `fault`, which counts in R14 and
 * resumes at R15; the user code ends with HLT, itself a #GP at ring 3, after
 * which `fault` resumes at `done`.
 */
function runInRing3(userCode: string, cr4Bits: number, model: 'max' | 'qemu64' = 'max'): { faults: bigint; cr4Fault: bigint } {
  const { cpu } = runAssembly(64, `${LONG_MODE_TABLES}
    set_gate 13, fault
    xor r14d, r14d
    lea r15, [rel cr4_done]
    mov rax, cr4
    or eax, ${cr4Bits}
    mov cr4, rax
cr4_done:
    mov r13, r14                  ; a #GP from the CR4 write
    mov ecx, 0xc0000081
    xor eax, eax
    mov edx, 0x00180008
    wrmsr
    mov rcx, user
    mov r11, 0x2
    o64 sysret
user:
%macro attempt 1
    lea r15, [rel %%next]
    %1
%%next:
%endmacro
    ${userCode}
    lea r15, [rel done]
    hlt
fault:
    inc r14
    add rsp, 8
    mov [rsp], r15
    iretq
done:
    jmp done`, { machine: { model: parseCpuModel(model) }, limit: 5000 });
  return { faults: cpu.getRegister(Reg.R14) - cpu.getRegister(Reg.R13) - 1n, cr4Fault: cpu.getRegister(Reg.R13) };
}

const CR4_UMIP = 1 << 11;
const STORES = ['sgdt [rsp - 16]', 'sidt [rsp - 16]', 'sldt ax', 'str ax', 'smsw ax'];

describe('UMIP', () => {
  test('with CR4.UMIP, SGDT, SIDT, SLDT, STR and SMSW raise #GP in ring 3', () => {
    const { faults, cr4Fault } = runInRing3(STORES.map((store) => `attempt {${store}}`).join('\n    '), CR4_UMIP);
    expect(cr4Fault).toBe(0n);
    expect(faults).toBe(BigInt(STORES.length));
  });

  test('without it they run in ring 3; a model without UMIP refuses CR4.UMIP', () => {
    expect(runInRing3(STORES.map((store) => `attempt {${store}}`).join('\n    '), 0).faults).toBe(0n);
    expect(runInRing3('', CR4_UMIP, 'qemu64').cr4Fault).toBe(1n);
    expect(runInRing3('', CR4_UMIP, 'max').cr4Fault).toBe(0n);
  });
});
