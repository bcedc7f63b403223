; Real mode → long mode with 4-level paging and NX, 64-bit IDT, page faults
; (not present, NX fetch), #GP on a non-canonical address, #UD, an external
; interrupt after STI's shadow, SYSCALL/SYSRET and INT from ring 3.
; Checkpoints are dwords written to port 0xE9.
bits 16
org 0x7c00

%define REPORT_PORT 0xe9
%define PML4 0x1000
%define PDPT 0x2000
%define PD 0x3000
%define PT 0x4000

%macro report 1
    mov eax, %1
    out REPORT_PORT, eax
%endmacro

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7000
    ; Page tables: 0–2 MiB one large page, 2–4 MiB in 4 KiB pages.
    mov edi, PML4
    mov ecx, 0x4000
    xor eax, eax
    a32 rep stosb
    mov dword [PML4], PDPT | 7
    mov dword [PDPT], PD | 7
    mov dword [PD], 0x87
    mov dword [PD + 8], PT | 7
    mov edi, PT
    mov eax, 0x200007
    mov cx, 512
.table:
    a32 stosd
    a32 stosd
    mov dword [edi - 4], 0
    add eax, 0x1000
    loop .table
    and dword [PT + 0x100 * 8], ~1                 ; 0x300000: not present
    or dword [PT + 0x101 * 8 + 4], 0x80000000      ; 0x301000: no execute
    lgdt [gdt_pointer]
    mov eax, 0x20                                  ; PAE
    mov cr4, eax
    mov eax, PML4
    mov cr3, eax
    mov ecx, 0xc0000080
    rdmsr
    or eax, 0x901                                  ; LME | NXE | SCE
    wrmsr
    mov eax, cr0
    or eax, 0x80000001
    mov cr0, eax
    jmp 0x08:long_mode

bits 64
long_mode:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, 0x90000
    report 1

    xor ecx, ecx
.fill:
    lea rax, [rel unexpected]
    call set_gate
    inc ecx
    cmp ecx, 256
    jne .fill
    mov ecx, 6
    lea rax, [rel invalid_opcode]
    call set_gate
    mov ecx, 13
    lea rax, [rel general_protection]
    call set_gate
    mov ecx, 14
    lea rax, [rel page_fault]
    call set_gate
    mov ecx, 0x20
    lea rax, [rel timer]
    call set_gate
    mov ecx, 0x80
    lea rax, [rel software_interrupt]
    call set_gate
    or byte [idt + 0x80 * 16 + 5], 0x60            ; DPL 3
    lidt [idt_pointer]
    report 2

    ; Not present: mapped by the handler, then retried.
    mov qword [resume], 0
    mov rbx, [0x300000 + 0x18]
    report 3

    ; Fetch from a no-execute page.
    mov byte [0x301000], 0xc3
    lea rax, [rel after_nx]
    mov [resume], rax
    mov rax, 0x301000
    call rax
after_nx:
    ; Non-canonical address.
    lea rax, [rel after_canonical]
    mov [resume], rax
    mov rax, 0x0000800000000000
    mov rbx, [rax]
after_canonical:
    lea rax, [rel after_ud]
    mov [resume], rax
    ud2
after_ud:
    ; An external interrupt is pending; STI lets it in only after the next instruction.
    mov eax, 0x41
    sti
    out REPORT_PORT, eax
    cli

    ; Ring 3 through IRETQ, back with SYSCALL/SYSRET and INT.
    mov dword [tss + 4], 0x8f000                   ; RSP0
    mov ax, 0x38
    ltr ax
    mov ecx, 0xc0000081
    xor eax, eax
    mov edx, 0x00230008                            ; SYSRET base 0x23, SYSCALL CS 0x08
    wrmsr
    mov ecx, 0xc0000082
    lea rax, [rel syscall_entry]
    mov rdx, rax
    shr rdx, 32
    wrmsr
    mov ecx, 0xc0000084
    mov eax, 0x200                                 ; FMASK: IF
    xor edx, edx
    wrmsr
    push 0x2b                                      ; SS
    push 0x380000                                  ; RSP
    push 0x002                                     ; RFLAGS
    push 0x33                                      ; CS
    lea rax, [rel user_code]
    push rax
    iretq

user_code:
    mov eax, 0x55
    syscall
    mov eax, 0x66
    int 0x80
    hlt                                            ; privileged: #GP(0)

finish:
    report 0xd0e
    hlt

; ---- ring 0 entry points ----

syscall_entry:
    out REPORT_PORT, eax
    mov ax, cs
    and eax, 3
    out REPORT_PORT, eax
    o64 sysret

software_interrupt:
    out REPORT_PORT, eax
    mov rax, [rsp + 8]                             ; saved CS
    and eax, 3
    out REPORT_PORT, eax
    iretq

timer:
    push rax
    report 0x20
    pop rax
    iretq

unexpected:
    report 0xbad
    hlt

invalid_opcode:
    report 0x06
    jmp resume_at

general_protection:
    report 0x0d
    mov rax, [rsp]
    out REPORT_PORT, eax
    add rsp, 8
    mov rax, [rsp + 8]
    and eax, 3
    jnz finish                                     ; from ring 3: done
    jmp resume_at

page_fault:
    report 0x0e
    mov rax, cr2
    out REPORT_PORT, eax
    mov rax, [rsp]
    out REPORT_PORT, eax
    add rsp, 8
    cmp qword [resume], 0
    jne resume_at
    or dword [PT + 0x100 * 8], 1
    invlpg [0x300000]
    iretq

resume_at:
    mov rax, [resume]
    mov [rsp], rax
    iretq

; ecx = vector, rax = handler: a 64-bit interrupt gate to selector 0x08.
set_gate:
    mov rdx, rcx
    shl rdx, 4
    lea rdi, [rel idt]
    add rdi, rdx
    mov [rdi], ax
    mov word [rdi + 2], 0x08
    mov word [rdi + 4], 0x8e00
    shr rax, 16
    mov [rdi + 6], ax
    shr rax, 16
    mov [rdi + 8], eax
    mov dword [rdi + 12], 0
    ret

align 8
resume: dq 0

align 8
gdt:
    dq 0
    dq 0x00af9a000000ffff      ; 0x08 kernel code, 64-bit
    dq 0x00cf92000000ffff      ; 0x10 kernel data
    dq 0                       ; 0x18
    dq 0x00cffa000000ffff      ; 0x20 user code, 32-bit
    dq 0x00cff2000000ffff      ; 0x28 user data
    dq 0x00affa000000ffff      ; 0x30 user code, 64-bit
    dw tss_end - tss - 1       ; 0x38 TSS (16 bytes)
    dw tss
    db 0
    db 0x89
    db 0
    db 0
    dq 0
gdt_end:

gdt_pointer:
    dw gdt_end - gdt - 1
    dd gdt

idt_pointer:
    dw 256 * 16 - 1
    dq idt

align 8
tss: times 104 db 0
tss_end:

align 16
idt: times 256 * 16 db 0
