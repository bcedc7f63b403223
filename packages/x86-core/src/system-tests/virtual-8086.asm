; Virtual-8086 mode: entered by IRETD from ring 0 with VM set in the image;
; 8086 addressing at CPL 3; the IOPL-sensitive instructions (#GP(0) at
; IOPL 0, allowed at IOPL 3); the TSS I/O permission bitmap; exceptions and
; interrupts to a ring-0 handler (the frame with GS/FS/DS/ES, data segments
; cleared); IRET inside virtual-8086 mode. Checkpoints go to port 0xE9.
%include "protected-start.inc"

%define V86_DATA 0x100                 ; DS in virtual-8086 mode: linear 0x1000

body:
    mov ecx, 13
    mov eax, general_protection
    call set_gate
    mov ecx, 3
    mov eax, breakpoint
    call set_gate
    or byte [idt + 3 * 8 + 5], 0x60    ; DPL 3
    mov ecx, 0x21
    mov eax, software_interrupt
    call set_gate
    or byte [idt + 0x21 * 8 + 5], 0x60
    mov dword [0x1010], 0x8086
    mov ax, 0x18
    ltr ax
    mov eax, 1
    out REPORT_PORT, eax

    ; Into virtual-8086 mode with IOPL 0.
    mov dword [phase], 0
    push dword 0x300                   ; GS
    push dword 0x300                   ; FS
    push dword V86_DATA                ; DS
    push dword 0x200                   ; ES
    push dword 0                       ; SS
    push dword 0x6000                  ; ESP
    push dword 0x20002                 ; EFLAGS: VM, IOPL 0
    push dword 0                       ; CS
    push dword v86_iopl0
    iretd

phase2:
    mov dword [phase], 1
    push dword 0x300
    push dword 0x300
    push dword V86_DATA
    push dword 0x200
    push dword 0
    push dword 0x6000
    push dword 0x23002                 ; EFLAGS: VM, IOPL 3
    push dword 0
    push dword v86_iopl3
    iretd

finish:
    mov eax, 0xd0e
    out REPORT_PORT, eax
    hlt

bits 16
v86_iopl0:
    mov eax, [0x10]                    ; DS base is DS * 16
    out REPORT_PORT, eax
    mov ax, cs
    movzx eax, ax
    out REPORT_PORT, eax               ; 8086 selectors: CS is 0
    cli                                ; each of these is #GP(0) at IOPL 0
    sti
    pushf
    popf
    int 0x21
    iret
    out 0x80, al                       ; the I/O bitmap denies port 0x80
    int3                               ; not IOPL-sensitive: to the ring-0 handler
    mov eax, 2
    out REPORT_PORT, eax
    hlt                                ; privileged: #GP, the handler moves on

v86_iopl3:
    cli
    sti
    pushf
    pop ax
    and eax, 0x3000
    out REPORT_PORT, eax               ; IOPL 3 as PUSHF shows it
    int 0x21                           ; through the IDT to ring 0
    push word 0x0202
    push word 0
    push word .after_iret
    iret                               ; IRET inside virtual-8086 mode
.after_iret:
    mov eax, 3
    out REPORT_PORT, eax
    hlt

bits 32
; ---- handlers ----
; Reports the error code and the opcode, then skips the instruction (HLT ends the phase).
general_protection:
    pop eax
    out REPORT_PORT, eax
    mov bx, 0x10                       ; DS was cleared on the way in from virtual-8086 mode
    mov ds, bx
    movzx ebx, word [esp + 4]          ; CS image
    shl ebx, 4
    add ebx, [esp]                     ; + IP
    movzx eax, byte [ebx]
    out REPORT_PORT, eax
    cmp al, 0xf4
    je .halt
    mov ecx, 1
    cmp al, 0xcd                       ; INT n
    je .two
    cmp al, 0xe6                       ; OUT imm8, AL
    jne .skip
.two:
    mov ecx, 2
.skip:
    add [esp], ecx
    iretd
.halt:
    mov ax, 0x10
    mov es, ax
    cmp dword [phase], 0
    je phase2
    jmp finish

; The frame from virtual-8086 mode: EIP, CS, EFLAGS, ESP, SS, ES, DS, FS, GS; DS now null.
breakpoint:
    mov eax, 0xb9
    out REPORT_PORT, eax
    mov eax, [esp + 8]
    shr eax, 17
    and eax, 1
    out REPORT_PORT, eax               ; VM set in the EFLAGS image
    mov eax, [esp + 24]
    out REPORT_PORT, eax               ; DS image
    mov eax, [esp + 32]
    out REPORT_PORT, eax               ; GS image
    mov ax, ds
    movzx eax, ax
    out REPORT_PORT, eax               ; DS cleared
    mov eax, [esp + 12]
    out REPORT_PORT, eax               ; ESP image
    iretd

software_interrupt:
    mov eax, 0x21
    out REPORT_PORT, eax
    iretd

phase: dd 0

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff              ; 0x08 code
    dq 0x00cf92000000ffff              ; 0x10 data
    dw tss_end - tss - 1, tss, 0x8900, 0 ; 0x18 TSS
gdt_end:

align 4
tss:
    dd 0, 0x80000, 0x10                ; link, ESP0, SS0
    times 22 dd 0
    dw 0, io_bitmap - tss
io_bitmap:
    times 16 db 0
    db 0x01                            ; port 0x80
    times 15 db 0
    db 0xff
tss_end:

align 8
idt: times 256 * 8 db 0
