import { guestAddress, type InterruptController } from '@tsvirt/interfaces';
import { describe, expect, test } from 'vitest';
import type { CpuEvent } from '../cpu.js';
import { Reg } from '../state/registers.js';
import { assemble } from '../testing/assemble.js';
import { createFlatMachine, runAssembly, TEST_CODE_ADDRESS } from '../testing/flat-machine.js';

/** 32-bit prologue: a flat GDT, an IDT whose gates all lead to `unexpected`, and a `gate` macro. */
const PROTECTED_PROLOGUE = `
    lgdt [gdt_pointer]
    lidt [idt_pointer]
    jmp 0x08:.reload
.reload:
    mov ax, 0x10
    mov ds, ax
    mov ss, ax
    mov esp, 0x80000
    jmp body
%macro gate 2
    mov eax, %2
    mov [idt + %1 * 8], ax
    mov word [idt + %1 * 8 + 2], 0x08
    mov word [idt + %1 * 8 + 4], 0x8e00
    shr eax, 16
    mov [idt + %1 * 8 + 6], ax
%endmacro
align 8
gdt: dq 0, 0x00cf9a000000ffff, 0x00cf92000000ffff
gdt_pointer: dw 23
    dd gdt
idt_pointer: dw 256 * 8 - 1
    dd idt
align 8
idt: times 256 * 8 db 0
body:
`;

function events(): { list: CpuEvent[]; observer: (event: CpuEvent) => void } {
  const list: CpuEvent[] = [];
  return { list, observer: (event) => list.push(event) };
}

describe('exceptions escalate as the SDM says', () => {
  test('an exception whose delivery faults twice is a triple fault: run stops with shutdown', () => {
    const seen = events();
    const { result } = runAssembly(32, 'lidt [idt_pointer]\nint3\nhlt\nidt_pointer: dw 0\ndd 0', { machine: { cpuOptions: { events: seen.observer } } });
    expect(result.reason).toBe('shutdown');
    expect(seen.list.some((event) => event.kind === 'triple-fault')).toBe(true);
  });

  test('#GP through a not-present gate (#NP) becomes #DF with error code 0', () => {
    const { result, cpu } = runAssembly(32, `${PROTECTED_PROLOGUE}
    gate 8, double_fault
    gate 13, double_fault
    and byte [idt + 13 * 8 + 5], 0x7f   ; #GP gate not present
    mov ax, 0x78
    mov ds, ax                          ; #GP(0x78)
    hlt
double_fault:
    pop ebx                             ; error code
    mov ecx, 8
    hlt`);
    expect(result.reason).toBe('halted');
    expect(cpu.getRegister(Reg.RCX)).toBe(8n);
    expect(cpu.getRegister(Reg.RBX)).toBe(0n);
  });
});

describe('interrupts', () => {
  test('HLT stops run; a pending interrupt wakes it and is delivered', () => {
    let pending = false;
    const controller: InterruptController = { pending: () => pending, acknowledge: () => ((pending = false), 0x30) };
    const machine = runAssembly(32, `${PROTECTED_PROLOGUE}
    gate 0x30, handler
    xor ecx, ecx
    sti
    hlt
    mov edx, 0x77
    cli
    hlt
handler:
    inc ecx
    iret`, { machine: { cpuOptions: { interrupts: controller } } });
    expect(machine.result.reason).toBe('halted');
    expect(machine.cpu.getRegister(Reg.RCX)).toBe(0n);
    pending = true;
    machine.cpu.wake();
    expect(machine.cpu.run(100).reason).toBe('halted');
    expect(machine.cpu.getRegister(Reg.RCX)).toBe(1n);
    expect(machine.cpu.getRegister(Reg.RDX)).toBe(0x77n);
  });

  test('MOV SS holds off an interrupt for one instruction; NMI ignores IF and waits for IRET', () => {
    let pending = true;
    const controller: InterruptController = { pending: () => pending, acknowledge: () => ((pending = false), 0x30) };
    const machine = runAssembly(32, `${PROTECTED_PROLOGUE}
    gate 0x30, handler
    gate 2, nmi
    xor ecx, ecx
    mov ebx, 1
    mov ax, 0x10
    sti
    mov ss, ax            ; STI's shadow covers this; MOV SS's own shadow covers the next one
    mov ebx, 2            ; runs inside the MOV SS shadow, before the interrupt
    mov ebx, 3
    cli
    hlt
handler:
    mov ecx, ebx
    iret
nmi:
    inc edi
    hlt
    iret`, { machine: { cpuOptions: { interrupts: controller } } });
    expect(machine.result.reason).toBe('halted');
    expect(machine.cpu.getRegister(Reg.RCX)).toBe(2n);
    // NMIs: the first is taken with IF clear; a second waits while the handler has not returned.
    machine.cpu.setRegister(Reg.RDI, 0);
    machine.cpu.nmi();
    expect(machine.cpu.run(100).reason).toBe('halted');
    machine.cpu.nmi();
    expect(machine.cpu.run(100).reason).toBe('halted');
    expect(machine.cpu.getRegister(Reg.RDI)).toBe(1n);
  });
});

describe('INIT and SIPI', () => {
  test('an application processor waits for a start-up IPI and starts in real mode at vector × 4096', () => {
    const machine = createFlatMachine({ bits: 16, cpuOptions: { bootstrap: false } });
    machine.load(0x12000, Uint8Array.of(0xb8, 0x34, 0x12, 0xf4)); // mov ax, 0x1234; hlt
    expect(machine.cpu.run(100).reason).toBe('wait-for-sipi');
    machine.cpu.startup(0x12);
    expect(machine.cpu.run(100)).toEqual({ reason: 'halted', retired: 2 });
    expect(machine.cpu.getRegister(Reg.RAX)).toBe(0x1234n);
    expect(machine.cpu.getSegment(1)).toMatchObject({ selector: 0x1200, base: 0x12000 });
    // INIT puts it back to waiting.
    machine.cpu.init();
    expect(machine.cpu.run(100).reason).toBe('wait-for-sipi');
  });
});

describe('single-step', () => {
  test('TF traps (#DB) after each instruction that starts with it set, and DR6.BS records it', () => {
    const { cpu, result } = runAssembly(32, `${PROTECTED_PROLOGUE}
    gate 1, debug_trap
    xor ecx, ecx
    pushfd
    or dword [esp], 0x100
    popfd                 ; TF is set from the next instruction on
    nop
    nop
    pushfd
    and dword [esp], ~0x100
    popfd                 ; traps once more: it started with TF set
    nop
    hlt
debug_trap:
    inc ecx
    iretd`);
    expect(result.reason).toBe('halted');
    // nop, nop, pushfd, and, popfd: five instructions started with TF set.
    expect(cpu.getRegister(Reg.RCX)).toBe(5n);
    expect(cpu.debug[6]! & 0x4000).toBe(0x4000);
  });
});

describe('instruction breakpoints after MOV SS', () => {
  const source = `${PROTECTED_PROLOGUE}
    gate 1, debug_fault
    xor ecx, ecx
    mov eax, target
    mov dr0, eax
    mov eax, 0x401                ; L0, execute, one byte
    mov dr7, eax
    mov ax, ss
    mov ss, ax
target:
    nop
    hlt
debug_fault:
    inc ecx
    or dword [esp + 8], 0x10000   ; RF: run the instruction this time
    iretd`;

  test('an Intel model holds back a breakpoint on the instruction after MOV SS; an AMD one delivers it', () => {
    expect(runAssembly(32, source, { machine: { model: 'tsvirt-max' } }).cpu.getRegister(Reg.RCX)).toBe(0n);
    expect(runAssembly(32, source, { machine: { model: 'qemu64' } }).cpu.getRegister(Reg.RCX)).toBe(1n);
  });
});

describe('code caching', () => {
  test('self-modifying code: a store into an instruction ahead changes what runs', () => {
    const { cpu } = runAssembly(64, `mov byte [rel target + 1], 0x42
target: mov al, 0
hlt`);
    expect(cpu.getRegister(Reg.RAX) & 0xffn).toBe(0x42n);
  });

  test('memory written from outside (DMA) drops decoded instructions', () => {
    const machine = createFlatMachine({ bits: 64 });
    machine.load(TEST_CODE_ADDRESS, assemble('bits 64\nmov eax, 1\nhlt'));
    machine.cpu.setRip(TEST_CODE_ADDRESS);
    machine.cpu.run(10);
    expect(machine.cpu.getRegister(Reg.RAX)).toBe(1n);
    machine.memory.write(guestAddress(TEST_CODE_ADDRESS), assemble('bits 64\nmov eax, 2\nhlt'));
    machine.cpu.setRip(TEST_CODE_ADDRESS);
    machine.cpu.run(10);
    expect(machine.cpu.getRegister(Reg.RAX)).toBe(2n);
  });
});

describe('memory routing', () => {
  test('physical addresses outside RAM go to the MMIO bus', () => {
    const writes: number[] = [];
    const machine = runAssembly(32, 'mov eax, [0xfee00020]\nmov dword [0xfee000b0], 0x1234', {
      setup: ({ mmio }) => mmio.register(0xfee00000, 0x1000, { read: (offset) => 0xabc00 + offset, write: (_o, _s, value) => writes.push(value) }, 'apic'),
    });
    expect(machine.cpu.getRegister(Reg.RAX)).toBe(0xabc20n);
    expect(writes).toEqual([0x1234]);
  });

  test('PAE paging in 32-bit mode: 2 MiB pages and NX', () => {
    const seen = events();
    const { cpu, result } = runAssembly(32, `
    mov dword [0x20000], 0x21001          ; PDPTE 0 → PD at 0x21000
    mov dword [0x21000], 0x000083         ; 0–2 MiB: large page
    mov dword [0x21008], 0x200083         ; 2–4 MiB: large page
    mov dword [0x2100c], 0x80000000       ; ... with NX
    mov ecx, 0xc0000080
    rdmsr
    or eax, 0x800                         ; NXE
    wrmsr
    mov eax, cr4
    or eax, 0x20
    mov cr4, eax
    mov eax, 0x20000
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    mov ebx, [0x100000]                   ; this very code, through the first page
    mov byte [0x300000], 0xc3
    call 0x300000                         ; NX: #PF`, { machine: { cpuOptions: { events: seen.observer } } });
    expect(result.reason).toBe('shutdown');
    expect(cpu.getRegister(Reg.RBX) & 0xffn).toBe(0xc7n);
    expect(seen.list[0]).toMatchObject({ kind: 'exception', vector: 14, errorCode: 0x11 });
    expect(cpu.getControlRegister(2)).toBe(0x300000n);
  });
});
