import { describe, expect, test } from 'vitest';
import { parseCpuModel } from '../cpuid/models.js';
import { Reg } from '../state/registers.js';
import { FLAT_PAGE_TABLES, runAssembly } from '../testing/flat-machine.js';
import { LONG_MODE_TABLES } from '../testing/long-mode-tables.js';

/**
 * 64-bit, model `max`. The flat machine maps the first 1 GiB with 2 MiB user
 * pages; `supervisor N` makes the Nth 2 MiB page a supervisor page, `key N K`
 * gives it protection key K. #GP and #PF go through a conforming code
 * segment (so they work at any CPL without a TSS) to `fault`, which counts
 * in R14, keeps the error code in R12 and resumes at R15.
 */
const PROLOGUE = `
%define PD ${FLAT_PAGE_TABLES + 0x2000}
%macro supervisor 1
    and byte [PD + %1 * 8], ~4
%endmacro
%macro key 2
    or dword [PD + %1 * 8 + 4], %2 << 27
%endmacro
%macro expect_fault 1
    lea r15, [rel %%resume]
    %1
%%resume:
%endmacro
${LONG_MODE_TABLES}
    set_gate 13, fault
    set_gate 14, fault
    xor r12d, r12d
    xor r14d, r14d
    jmp body
fault:
    inc r14
    pop r12
    mov [rsp], r15
    iretq
body:
`;

const CR4_SMEP = 1 << 20;
const CR4_SMAP = 1 << 21;
const CR4_PKE = 1 << 22;
const CR4_PKS = 1 << 24;

/** Runs `body` after the prologue; returns the fault count and the last error code. */
function run(body: string, model = 'max'): { faults: bigint; errorCode: bigint; rax: bigint } {
  const { cpu, result } = runAssembly(64, `${PROLOGUE}${body}\n    hlt`, { machine: { model: parseCpuModel(model) } });
  expect(result.reason).toBe('halted');
  return { faults: cpu.getRegister(Reg.R14), errorCode: cpu.getRegister(Reg.R12), rax: cpu.getRegister(Reg.RAX) };
}

describe('SMAP and SMEP', () => {
  test('with CR4.SMAP, ring 0 reads a user page only with EFLAGS.AC set (STAC); CLAC takes it back', () => {
    const body = (cr4: number, prepare: string) => `
    supervisor 0                 ; code, stack and tables become supervisor pages
    mov dword [0x400000], 0x1234
    mov rax, cr4
    or eax, ${cr4}
    mov cr4, rax
    ${prepare}
    expect_fault {mov eax, [0x400000]}`;
    expect(run(body(CR4_SMAP, 'clac'))).toEqual({ faults: 1n, errorCode: 1n, rax: BigInt(CR4_SMAP | 0x20) });
    expect(run(body(CR4_SMAP, 'stac')).faults).toBe(0n);
    expect(run(body(CR4_SMAP, 'stac')).rax).toBe(0x1234n);
    expect(run(body(0, 'clac')).faults).toBe(0n);
  });

  test('with CR4.SMEP, ring 0 fetching from a user page faults with I/D set', () => {
    const { faults, errorCode } = run(`
    supervisor 0
    mov byte [0x400000], 0xc3     ; ret
    mov rax, cr4
    or eax, ${CR4_SMEP}
    mov cr4, rax
    expect_fault {call 0x400000}`);
    expect(faults).toBe(1n);
    expect(errorCode).toBe(0x11n);
  });

  test('CR4.SMAP, SMEP, PKE and PKS raise #GP on a model without them', () => {
    for (const bit of [CR4_SMAP, CR4_SMEP, CR4_PKE, CR4_PKS]) {
      expect(run(`mov rax, cr4
    or eax, ${bit}
    expect_fault {mov cr4, rax}`, 'tsvirt-max').faults).toBe(1n);
    }
  });
});

describe('protection keys', () => {
  test('PKRU: access-disable faults every data access to a user page of that key, write-disable writes only with CR0.WP', () => {
    const setup = (pkru: number) => `
    key 2, 1
    mov rax, cr4
    or eax, ${CR4_PKE}
    mov cr4, rax
    xor ecx, ecx
    xor edx, edx
    mov eax, ${pkru}
    wrpkru
    xor eax, eax
    rdpkru
    mov ebx, eax`;
    expect(run(`${setup(0b0100)}
    expect_fault {mov eax, [0x400000]}`)).toMatchObject({ faults: 1n, errorCode: 0x21n });
    expect(run(`${setup(0b1000)}
    mov eax, [0x400000]
    expect_fault {mov dword [0x400000], 1}`)).toMatchObject({ faults: 1n, errorCode: 0x23n });
    // CR0.WP off: ring 0 may write a write-disabled key's page.
    expect(run(`${setup(0b1000)}
    mov rax, cr0
    and eax, ~(1 << 16)
    mov cr0, rax
    expect_fault {mov dword [0x400000], 1}`).faults).toBe(0n);
    // Other keys, and key 1 on a page with key 0, are unaffected.
    expect(run(`${setup(0b1100)}
    mov eax, [0x600000]
    mov dword [0x600000], 1`).faults).toBe(0n);
  });

  test('RDPKRU and WRPKRU raise #GP with ECX (or, for WRPKRU, EDX) not 0', () => {
    const enabled = `mov rax, cr4
    or eax, ${CR4_PKE}
    mov cr4, rax
    xor eax, eax
    xor edx, edx
    mov ecx, 1`;
    expect(run(`${enabled}
    expect_fault {rdpkru}`).faults).toBe(1n);
    expect(run(`${enabled}
    expect_fault {wrpkru}`).faults).toBe(1n);
    expect(run(`${enabled}
    xor ecx, ecx
    mov edx, 1
    expect_fault {wrpkru}`).faults).toBe(1n);
  });

  test('PKRS: supervisor pages of a key, through IA32_PKRS (0x6E1) and CR4.PKS', () => {
    const setup = (pkrs: number) => `
    supervisor 2
    key 2, 3
    mov rax, cr4
    or eax, ${CR4_PKS}
    mov cr4, rax
    mov ecx, 0x6e1
    mov eax, ${pkrs}
    xor edx, edx
    wrmsr`;
    expect(run(`${setup(0b11 << 6)}
    expect_fault {mov eax, [0x400000]}`)).toMatchObject({ faults: 1n, errorCode: 0x21n });
    expect(run(`${setup(0b10 << 6)}
    mov eax, [0x400000]
    expect_fault {mov dword [0x400000], 1}`)).toMatchObject({ faults: 1n, errorCode: 0x23n });
    // Reserved high bits of IA32_PKRS raise #GP.
    expect(run(`mov ecx, 0x6e1
    xor eax, eax
    mov edx, 1
    expect_fault {wrmsr}`).faults).toBe(1n);
  });
});
