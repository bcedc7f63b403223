import { guestAddress } from '@tsvirt/interfaces';
import { describe, expect, test } from 'vitest';
import { Reg, SegAttr } from '../state/registers.js';
import { runAssembly } from '../testing/flat-machine.js';
import { stackHasRoom } from './interrupts.js';

/**
 * 32-bit prologue: a GDT with flat code/data, the running task's TSS (0x18),
 * a second TSS (0x20, patched by each test) and a spare descriptor (0x28);
 * every exception vector N halts with ECX = N (its error code on the stack).
 */
const PROLOGUE = `
    lgdt [gdt_pointer]
    lidt [idt_pointer]
    jmp 0x08:.reload
.reload:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x80000
    mov ecx, 0
.fill:
    lea eax, [stubs + ecx * 8]
    mov [idt + ecx * 8], ax
    mov word [idt + ecx * 8 + 2], 0x08
    mov word [idt + ecx * 8 + 4], 0x8e00
    shr eax, 16
    mov [idt + ecx * 8 + 6], ax
    inc ecx
    cmp ecx, 32
    jne .fill
    mov eax, tss_a
    mov [gdt + 0x18 + 2], ax
    shr eax, 16
    mov [gdt + 0x18 + 4], al
    mov eax, tss_b
    mov [gdt + 0x20 + 2], ax
    shr eax, 16
    mov [gdt + 0x20 + 4], al
    mov ax, 0x18
    ltr ax
    jmp body
align 8
stubs:
%assign vector 0
%rep 32
    mov ecx, vector
    hlt
    nop
    nop
%assign vector vector + 1
%endrep
align 8
gdt: dq 0, 0x00cf9a000000ffff, 0x00cf92000000ffff
    dq 0x0000890000000067, 0x0000890000000067, 0
gdt_pointer: dw 47
    dd gdt
idt_pointer: dw 32 * 8 - 1
    dd idt
align 8
idt: times 32 * 8 db 0
tss_a: times 104 db 0
tss_b: times 104 db 0
body:
`;

/** Runs `body` after the prologue; returns the vector it halted in and the error code on the stack. */
function run(body: string): { vector: bigint; errorCode: number; cpu: ReturnType<typeof runAssembly>['cpu'] } {
  const { cpu, memory, result } = runAssembly(32, `${PROLOGUE}${body}`);
  expect(result.reason).toBe('halted');
  const errorCode = memory.readU32(guestAddress(Number(cpu.getRegister(Reg.RSP))));
  return { vector: cpu.getRegister(Reg.RCX), errorCode, cpu };
}

describe('task switch checks (SDM vol. 3 7.3)', () => {
  test('JMP to a TSS whose limit is below 0x67 is #TS(selector)', () => {
    const { vector, errorCode } = run('mov word [gdt + 0x20], 0x60\njmp 0x20:0');
    expect(vector).toBe(10n);
    expect(errorCode).toBe(0x20);
  });

  test('JMP to a TSS that is not present is #NP(selector)', () => {
    const { vector, errorCode } = run('and byte [gdt + 0x20 + 5], 0x7f\njmp 0x20:0');
    expect(vector).toBe(11n);
    expect(errorCode).toBe(0x20);
  });

  test('JMP to a TSS with DPL below the RPL is #GP(selector)', () => {
    const { vector, errorCode } = run('jmp 0x23:0');
    expect(vector).toBe(13n);
    expect(errorCode).toBe(0x20);
  });

  test('IRET with NT whose back link names an available TSS is #TS(link)', () => {
    const { vector, errorCode } = run('mov word [tss_a], 0x20\npushfd\nor dword [esp], 0x4000\npopfd\niretd');
    expect(vector).toBe(10n);
    expect(errorCode).toBe(0x20);
  });

  test('a task gate in the GDT whose target is busy is #GP(TSS selector)', () => {
    const { vector, errorCode } = run('mov dword [gdt + 0x28], 0x00180000\nmov dword [gdt + 0x28 + 4], 0x8500\njmp 0x28:0');
    expect(vector).toBe(13n);
    expect(errorCode).toBe(0x18);
  });

  test('a new task whose DS names a system descriptor gets #TS(DS) after the switch, on its own stack, at its own EIP', () => {
    const { vector, errorCode, cpu } = run(`
    mov dword [tss_b + 0x20], 0x1234
    mov dword [tss_b + 0x38], 0x70000
    mov word [tss_b + 0x4c], 0x08
    mov word [tss_b + 0x50], 0x10
    mov word [tss_b + 0x54], 0x18
    jmp 0x20:0`);
    expect(vector).toBe(10n);
    expect(errorCode).toBe(0x18);
    expect(cpu.trSelector).toBe(0x20);
    expect(cpu.getRegister(Reg.RSP)).toBe(0x70000n - 16n);
    expect(cpu.memory.readU32(guestAddress(0x70000 - 12))).toBe(0x1234);
  });

  test('an exception through a not-present gate reports #NP with EXT set', () => {
    const { vector, errorCode } = run('and byte [idt + 6 * 8 + 5], 0x7f\nud2');
    expect(vector).toBe(11n);
    expect(errorCode).toBe(6 * 8 + 2 + 1);
  });

  test('INT n through a not-present gate reports #NP without EXT', () => {
    const { vector, errorCode } = run('and byte [idt + 20 * 8 + 5], 0x7f\nint 20');
    expect(vector).toBe(11n);
    expect(errorCode).toBe(20 * 8 + 2);
  });
});

describe('debug registers', () => {
  test('a disabled breakpoint (address in DR0, DR7 clear) never fires; G0 arms it globally', () => {
    const disabled = run('mov eax, target\nmov dr0, eax\nmov ecx, 0x55\ntarget:\nhlt');
    expect(disabled.vector).toBe(0x55n);
    const armed = run('mov eax, target\nmov dr0, eax\nmov eax, 2\nmov dr7, eax\nmov ecx, 0x55\ntarget:\nhlt');
    expect(armed.vector).toBe(1n);
    expect(armed.cpu.debug[6]! & 0xf).toBe(1);
  });

  test('an 8-byte data breakpoint aligns its address down and catches a write to its last byte', () => {
    const { vector, cpu } = run('mov eax, watched + 3\nmov dr1, eax\nmov eax, 0x00b00008\nmov dr7, eax\nmov byte [watched + 7], 1\nmov ecx, 0x55\nhlt\nalign 8\nwatched: dq 0');
    expect(vector).toBe(1n);
    expect(cpu.debug[6]! & 0xf).toBe(2);
  });

  test('MOV DR at CPL 0 with CR4.DE set rejects DR4 with #UD', () => {
    const { vector } = run('mov eax, cr4\nor eax, 8\nmov cr4, eax\nmov eax, dr4');
    expect(vector).toBe(6n);
  });
});

describe('stack room for an event frame', () => {
  const flat32 = SegAttr.P | SegAttr.S | SegAttr.WRITABLE | SegAttr.DB;
  test('expand-up: the whole frame must lie at or below the limit and above zero', () => {
    expect(stackHasRoom(0xfff, flat32, 0x1000, 12)).toBe(true);
    expect(stackHasRoom(0xfff, flat32, 0x1004, 12)).toBe(false);
    expect(stackHasRoom(0xfff, flat32, 8, 12)).toBe(false);
    // ESP = 0 pushes at the top of a 4 GiB segment.
    expect(stackHasRoom(0xffffffff, flat32, 0, 12)).toBe(true);
  });

  test('expand-down: the frame must lie above the limit (16-bit: below 64 KiB)', () => {
    const down16 = SegAttr.P | SegAttr.S | SegAttr.WRITABLE | SegAttr.EXPAND_DOWN;
    expect(stackHasRoom(0x0fff, down16, 0x2000, 6)).toBe(true);
    expect(stackHasRoom(0x0fff, down16, 0x1002, 6)).toBe(false);
    expect(stackHasRoom(0x0fff, down16, 0, 6)).toBe(true);
  });
});

describe('CPUID', () => {
  test('leaf 1 EDX advertises DE (debug extensions) and not VME on both models', () => {
    for (const model of ['qemu64', 'tsvirt-max'] as const) {
      const { cpu } = runAssembly(32, 'mov eax, 1\ncpuid\nhlt', { machine: { model } });
      expect((cpu.getRegister(Reg.RDX) >> 2n) & 1n).toBe(1n);
      expect((cpu.getRegister(Reg.RDX) >> 1n) & 1n).toBe(0n);
    }
  });
});
