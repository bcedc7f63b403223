; Debug registers and event delivery: an instruction breakpoint (a fault,
; skipped once with RF), data write and read/write breakpoints and an I/O
; breakpoint (traps), DR7.GD, single step held back by the MOV SS shadow,
; the TSS T bit, and an INT whose frame does not fit the stack segment (#SS
; twice, then #DF through a task gate). Checkpoints go to port 0xE9.
%include "protected-start.inc"

body:
    mov ecx, 1
    mov eax, debug_exception
    call set_gate
    mov ecx, 0x40
    mov eax, unexpected
    call set_gate
    mov word [idt + 8 * 8 + 2], 0x20   ; #DF: task gate
    mov byte [idt + 8 * 8 + 5], 0x85
    mov ax, 0x18
    ltr ax
    mov eax, 1
    out REPORT_PORT, eax

    ; Instruction breakpoint: #DB before the instruction; the handler returns with RF set.
    mov eax, instruction_breakpoint
    mov dr0, eax
    mov eax, 0x00000001                ; L0, R/W 00
    mov dr7, eax
    mov ebx, 0
    mov dword [expected], instruction_breakpoint
instruction_breakpoint:
    inc ebx
    mov eax, ebx
    out REPORT_PORT, eax               ; 1: it ran once

    ; Data breakpoints: DR1 on writes to `watched` (4 bytes), DR2 on reads or writes of `other` (2 bytes).
    mov eax, watched
    mov dr1, eax
    mov eax, other
    mov dr2, eax
    mov eax, 0x07d00014                ; L1: R/W 01, LEN 11; L2: R/W 11, LEN 01
    mov dr7, eax
    mov eax, [watched]                 ; a read: no trap
    mov dword [expected], after_write
    mov word [watched + 2], 5          ; overlaps: trap
after_write:
    mov dword [expected], after_read
    mov ax, [other + 1]                ; overlaps the read/write breakpoint: trap
after_read:

    ; I/O breakpoint (CR4.DE): DR3 on port 0x80.
    mov eax, cr4
    or eax, 8
    mov cr4, eax
    mov eax, 0x80
    mov dr3, eax
    mov eax, 0x20000040                ; L3, R/W 10, LEN 00
    mov dr7, eax
    mov dword [expected], after_out
    out 0x80, al
after_out:

    ; DR7.GD: the next debug-register access faults with DR6.BD.
    mov dword [expected], general_detect
    mov eax, 0x2400
    mov dr7, eax
general_detect:
    mov eax, dr0
    mov eax, 2
    out REPORT_PORT, eax

    ; Single step: the trap after MOV SS waits for the next instruction.
    mov dword [expected], shadow_start
    pushfd
    or dword [esp], 0x100
    popfd
    mov bx, 0x10                       ; the first single-step trap follows this (the handler keeps EBX)
shadow_start:
    mov ss, bx
    nop
after_shadow:
    mov eax, 3
    out REPORT_PORT, eax

    ; The T bit of the new TSS: #DB (BT) before the task's first instruction.
    mov dword [expected], traced_task
    jmp 0x28:0
after_task:
    mov eax, 4
    out REPORT_PORT, eax

    ; A frame that does not fit below ESP in a 4 KiB stack segment: #SS, #SS again, #DF through a task gate.
    mov ax, 0x30
    mov ss, ax
    mov esp, 8
    int 0x40
after_stack:
    mov eax, 0xd0e
    out REPORT_PORT, eax
    hlt

; ---- tasks ----
traced_task:
    mov eax, 0x77
    out REPORT_PORT, eax
    jmp 0x18:0

double_fault_task:
    pop eax
    out REPORT_PORT, eax               ; error code 0
    mov eax, [tss_main + 0x38]
    out REPORT_PORT, eax               ; the interrupted ESP: nothing was pushed
    mov eax, [tss_main + 0x20]
    sub eax, after_stack - 2
    out REPORT_PORT, eax               ; saved EIP: the INT
    mov dword [tss_main + 0x20], after_stack
    mov dword [tss_main + 0x38], 0x90000
    mov word [tss_main + 0x50], 0x10
    iretd

; ---- handlers ----
; Reports DR6's status bits and EIP (relative to `expected`), then clears DR6.
debug_exception:
    mov eax, 0xdb
    out REPORT_PORT, eax
    mov eax, dr6
    and eax, 0xe00f
    out REPORT_PORT, eax
    mov eax, [esp]
    sub eax, [expected]
    out REPORT_PORT, eax
    xor eax, eax
    mov dr6, eax
    mov eax, dr7
    and eax, 0x2000                    ; GD is clear inside the handler
    out REPORT_PORT, eax
    mov eax, [esp]
    cmp eax, instruction_breakpoint
    jne .done
    or dword [esp + 8], 0x10000        ; RF: run the instruction despite the breakpoint
.done:
    cmp eax, shadow_start
    jne .not_first_step
    mov dword [expected], after_shadow
.not_first_step:
    cmp eax, after_shadow
    jne .keep_tf
    and dword [esp + 8], ~0x100
.keep_tf:
    iretd

align 4
expected: dd 0
watched: dd 0
other: dd 0

; A 32-bit TSS: EIP, ESP, T bit.
%macro tss32 3
    dd 0, 0, 0, 0, 0, 0, 0
    dd 0, %1, 2
    dd 0, 0, 0, 0, %2, 0, 0, 0
    dd 0x10, 0x08, 0x10, 0x10, 0x10, 0x10
    dd 0
    dw %3, 0x68
%endmacro

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff              ; 0x08 code
    dq 0x00cf92000000ffff              ; 0x10 data
    dw 0x67, tss_main, 0x8900, 0       ; 0x18 main task
    dw 0x67, tss_double_fault, 0x8900, 0 ; 0x20 double-fault task
    dw 0x67, tss_traced, 0x8900, 0     ; 0x28 task with the T bit
    dw 0x0fff, 0, 0x9207, 0x0040       ; 0x30 data at 0x70000, limit 4 KiB, 32-bit
gdt_end:

align 4
tss_main: tss32 0, 0, 0
tss_double_fault: tss32 double_fault_task, 0x60000, 0
tss_traced: tss32 traced_task, 0x50000, 1

align 8
idt: times 256 * 8 db 0
