/**
 * NASM for 64-bit tests that change privilege level, put at the start of the
 * code `runAssembly(64, …)` runs: it loads a GDT with kernel code and data
 * (0x08, 0x10), user data and code (0x20, 0x28: SYSRET's STAR base 0x18) and
 * a conforming 64-bit code segment (0x30), and an empty IDT; then
 * `set_gate VECTOR, HANDLER` installs an interrupt gate through that
 * conforming segment, so the handler runs at the interrupted CPL and needs no
 * TSS. Execution continues after the tables.
 */
export const LONG_MODE_TABLES = `
%macro set_gate 2
    mov rax, %2
    mov [idt + %1 * 16], ax
    mov word [idt + %1 * 16 + 2], 0x30
    mov word [idt + %1 * 16 + 4], 0x8e00
    shr rax, 16
    mov [idt + %1 * 16 + 6], ax
%endmacro
    lgdt [gdt_pointer]
    lidt [idt_pointer]
    jmp tables_end
align 8
gdt: dq 0, 0x00af9a000000ffff, 0x00cf92000000ffff, 0, 0x00cff2000000ffff, 0x00affa000000ffff, 0x00af9e000000ffff
gdt_pointer: dw 7 * 8 - 1
    dq gdt
idt_pointer: dw 256 * 16 - 1
    dq idt
align 16
idt: times 256 * 16 db 0
tables_end:
`;
