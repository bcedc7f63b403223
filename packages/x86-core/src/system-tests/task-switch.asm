; Hardware task switching (SDM vol. 3 ch. 7): CALL to a TSS and IRET back
; through the link, JMP through a task gate, a #DF delivered through a task
; gate (as Linux i386 does), a #TS raised in the new task's context, a
; 16-bit TSS, CALL to a busy TSS. Each task has its own CR3 and task B has an
; LDT. Every checkpoint is a dword written to port 0xE9.
%include "protected-start.inc"

%define PD_A 0x20000
%define PD_B 0x21000

body:
    mov ecx, 13
    mov eax, general_protection
    call set_gate

    ; Two address spaces: linear 4 MiB maps to 0x400000 for task A and to 0x800000 for task B.
    mov dword [PD_A], 0x83
    mov dword [PD_A + 4], 0x400083
    mov dword [PD_B], 0x83
    mov dword [PD_B + 4], 0x800083
    mov dword [0x400000], 0xaaaa
    mov dword [0x800000], 0xbbbb
    mov eax, cr4
    or eax, 0x10                       ; PSE
    mov cr4, eax
    mov eax, PD_A
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax

    mov ax, 0x18
    ltr ax
    mov eax, 1
    out REPORT_PORT, eax

    ; CALL to TSS B; B reports and returns with IRET (NT set, link = A).
    mov eax, 0x1234
    call 0x20:0
    out REPORT_PORT, eax               ; A's EAX came back from its TSS
    movzx eax, byte [gdt + 0x20 + 5]   ; B is available again after its IRET
    out REPORT_PORT, eax
    mov eax, [0x400000]                ; A's CR3 is back
    out REPORT_PORT, eax
    clts

    ; JMP through the task gate: B resumes after its IRET, then JMPs back to A.
    jmp 0x30:0
    mov eax, 2
    out REPORT_PORT, eax

    ; #GP whose gate is not present (#NP) becomes #DF, whose IDT entry is a task gate.
    mov word [idt + 8 * 8 + 2], 0x28
    mov byte [idt + 8 * 8 + 5], 0x85
    and byte [idt + 13 * 8 + 5], 0x7f
    mov ax, 0x78
double_fault_here:
    mov ds, ax
after_double_fault:
    or byte [idt + 13 * 8 + 5], 0x80
    mov eax, 3
    out REPORT_PORT, eax

    ; A task whose CS selector names a data segment: #TS(0x10) in its context, through a task gate.
    mov word [idt + 10 * 8 + 2], 0x50
    mov byte [idt + 10 * 8 + 5], 0x85
    jmp 0x48:0
    mov eax, 4
    out REPORT_PORT, eax

    ; A 16-bit TSS.
    mov eax, 0x9999
    call 0x40:0
    out REPORT_PORT, eax

    ; CALL to the running (busy) task: #GP(0x18).
    mov dword [resume], after_busy
    call 0x18:0
after_busy:
    mov eax, 0xd0e
    out REPORT_PORT, eax
    hlt

; ---- task B ----
task_b:
    str ax
    movzx eax, ax
    out REPORT_PORT, eax               ; 0x20
    pushfd
    pop eax
    and eax, 0x4000                    ; NT: nested by CALL
    out REPORT_PORT, eax
    mov eax, [tss_b]                   ; back link
    out REPORT_PORT, eax
    mov eax, [0x400000]                ; B's address space
    out REPORT_PORT, eax
    mov eax, cr0
    and eax, 8                         ; CR0.TS set by the switch
    out REPORT_PORT, eax
    sldt ax
    movzx eax, ax
    out REPORT_PORT, eax               ; 0x38
    mov ax, 0x0c                       ; LDT entry 1
    mov es, ax
    mov eax, [es:0]
    out REPORT_PORT, eax
    mov eax, 0xdead
    iretd
    ; Entered again by JMP through the task gate.
    pushfd
    pop eax
    and eax, 0x4000                    ; NT clear: JMP does not nest
    out REPORT_PORT, eax
    movzx eax, byte [gdt + 0x18 + 5]   ; JMP left A available
    out REPORT_PORT, eax
    mov eax, [es:0]                    ; ES (an LDT selector) was reloaded
    out REPORT_PORT, eax
    jmp 0x18:0

; ---- the double-fault task ----
double_fault_task:
    pop eax                            ; error code 0 on this task's stack
    out REPORT_PORT, eax
    str ax
    movzx eax, ax
    out REPORT_PORT, eax               ; 0x28
    mov eax, [tss_double_fault]        ; back link to A
    out REPORT_PORT, eax
    mov eax, [tss_a + 0x20]            ; A's saved EIP: the faulting instruction
    sub eax, double_fault_here
    out REPORT_PORT, eax
    mov dword [tss_a + 0x20], after_double_fault
    iretd

; ---- the #TS task ----
invalid_tss_task:
    pop eax                            ; error code: the bad CS selector
    out REPORT_PORT, eax
    mov eax, [tss_invalid_tss]         ; back link: the task that faulted
    out REPORT_PORT, eax
    mov eax, [tss_bad + 0x20]          ; its EIP: the new task's first instruction
    sub eax, bad_task
    out REPORT_PORT, eax
    jmp 0x18:0

bad_task:
    hlt

; ---- the 16-bit task ----
task_c:
    out REPORT_PORT, eax               ; upper half all-ones after a 16-bit TSS
    str ax
    movzx eax, ax
    out REPORT_PORT, eax
    movzx eax, word [tss_c]
    out REPORT_PORT, eax
    iretd

; ---- handlers ----
general_protection:
    mov eax, 0x0d
    out REPORT_PORT, eax
    pop eax
    out REPORT_PORT, eax
    mov eax, [resume]
    mov [esp], eax
    iretd

resume: dd 0

; A TSS descriptor (base below 64 KiB): base, limit, type byte.
%macro system_descriptor 3
    dw %2
    dw %1
    db 0
    db %3
    db 0
    db 0
%endmacro

; A 32-bit TSS: CR3, EIP, ESP, CS, data/stack selector, LDT.
%macro tss32 6
    dd 0, 0, 0, 0, 0, 0, 0
    dd %1, %2, 2
    dd 0, 0, 0, 0, %3, 0, 0, 0
    dd %5, %4, %5, %5, %5, %5
    dd %6
    dw 0, 0x68
%endmacro

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff              ; 0x08 code
    dq 0x00cf92000000ffff              ; 0x10 data
    system_descriptor tss_a, 0x67, 0x89            ; 0x18 task A
    system_descriptor tss_b, 0x67, 0x89            ; 0x20 task B
    system_descriptor tss_double_fault, 0x67, 0x89 ; 0x28 double-fault task
    dw 0, 0x20, 0x8500, 0                          ; 0x30 task gate to B
    system_descriptor ldt_b, 15, 0x82              ; 0x38 B's LDT
    system_descriptor tss_c, 0x2b, 0x81            ; 0x40 16-bit task
    system_descriptor tss_bad, 0x67, 0x89          ; 0x48 task with a bad CS
    system_descriptor tss_invalid_tss, 0x67, 0x89  ; 0x50 #TS task
gdt_end:

align 8
ldt_b:
    dq 0
    dw 0xff, ldt_data, 0x9200, 0       ; 0x0c: data at ldt_data
ldt_data: dd 0x1d71d7

align 4
tss_a: tss32 PD_A, 0, 0, 0, 0, 0
tss_b: tss32 PD_B, task_b, 0x70000, 0x08, 0x10, 0x38
tss_double_fault: tss32 PD_A, double_fault_task, 0x60000, 0x08, 0x10, 0
tss_bad: tss32 PD_A, bad_task, 0x40000, 0x10, 0x10, 0
tss_invalid_tss: tss32 PD_A, invalid_tss_task, 0x50000, 0x08, 0x10, 0
tss_c:
    dw 0, 0, 0, 0, 0, 0, 0
    dw task_c, 2
    dw 0x5678, 0, 0, 0, 0x6000, 0, 0, 0
    dw 0x10, 0x08, 0x10, 0x10
    dw 0

align 8
idt: times 256 * 8 db 0
