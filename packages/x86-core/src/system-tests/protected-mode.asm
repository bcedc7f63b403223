; Real mode → 32-bit protected mode with 2-level paging (PSE), exceptions,
; interrupts and a trip to ring 3. Every checkpoint is a dword written to
; port 0xE9; the test compares the sequence.
bits 16
org 0x7c00

%define REPORT_PORT 0xe9
%define PAGE_DIRECTORY 0x10000
%define PAGE_TABLE 0x11000

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    lgdt [gdt_pointer]
    lidt [idt_pointer]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp 0x08:protected

bits 32
protected:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov esp, 0x90000
    mov eax, 1
    out REPORT_PORT, eax

    ; Fill the IDT: every vector goes to `unexpected`, then the ones we test.
    mov ecx, 0
.fill:
    mov eax, unexpected
    call set_gate
    inc ecx
    cmp ecx, 256
    jne .fill
    mov ecx, 0
    mov eax, divide_error
    call set_gate
    mov ecx, 13
    mov eax, general_protection
    call set_gate
    mov ecx, 14
    mov eax, page_fault
    call set_gate
    mov ecx, 0x80
    mov eax, system_call
    call set_gate
    or byte [idt + 0x80 * 8 + 5], 0x60 ; DPL 3: user code may INT 0x80

    ; Paging: PDE 0 is a 4 MiB page (PSE); PDE 1 points to a page table.
    mov dword [PAGE_DIRECTORY], 0x00000087          ; 4 MiB, present, writable, user
    mov dword [PAGE_DIRECTORY + 4], PAGE_TABLE | 7
    mov edi, PAGE_TABLE
    mov eax, 0x400007
    mov ecx, 1024
.table:
    stosd
    add eax, 0x1000
    loop .table
    and dword [PAGE_TABLE + 0x100 * 4], ~1         ; 0x500000: not present
    and dword [PAGE_TABLE + 0x101 * 4], ~4         ; 0x501000: supervisor only
    and dword [PAGE_TABLE + 0x102 * 4], ~2         ; 0x502000: read-only
    mov eax, cr4
    or eax, 0x10                                    ; PSE
    mov cr4, eax
    mov eax, PAGE_DIRECTORY
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80010000                              ; PG | WP
    mov cr0, eax
    mov eax, 2
    out REPORT_PORT, eax

    ; #PF on a not-present page: the handler maps it and the access is retried.
    mov dword [resume], 0
    mov ebx, [0x500000 + 0x10]
    mov eax, 3
    out REPORT_PORT, eax

    ; #PF on a write to a read-only page with CR0.WP set.
    mov dword [resume], after_write
    mov dword [0x502000], 1
after_write:
    ; #GP from a selector beyond the GDT limit.
    mov dword [resume], after_selector
    mov ax, 0x78
    mov ds, ax
after_selector:
    mov ax, 0x10
    mov ds, ax
    ; #DE.
    mov dword [resume], after_divide
    xor ecx, ecx
    div ecx
after_divide:
    ; INT from ring 0.
    mov eax, 0x11
    int 0x80

    ; Ring 3: a TSS provides the ring 0 stack.
    mov dword [tss + 4], 0x8f000                   ; esp0
    mov dword [tss + 8], 0x10                      ; ss0
    mov ax, 0x28
    ltr ax
    push dword 0x23                                ; user SS
    push dword 0x480000                            ; user ESP
    push dword 0x002                               ; EFLAGS (IF=0, IOPL=0)
    push dword 0x1b                                ; user CS
    push dword user_code
    iret

bits 32
user_code:
    mov ax, 0x23
    mov ds, ax
    mov es, ax
    mov eax, 0x33
    int 0x80                                       ; allowed: gate DPL 3
    push dword 0x99
    call 0x30:0                                    ; call gate to ring 0 with one parameter
    mov dword [0x480000 - 4], 0x44                 ; user page: fine
    mov eax, [0x501000]                            ; supervisor page: #PF, error code 5
    jmp $

finish:
    mov eax, 0xd0e
    out REPORT_PORT, eax
    hlt

; ---- handlers ----

unexpected:
    mov eax, 0xbad
    out REPORT_PORT, eax
    hlt

divide_error:
    push eax
    mov eax, 0xde
    out REPORT_PORT, eax
    pop eax
    jmp resume_at

general_protection:
    push eax
    mov eax, 0x0d
    out REPORT_PORT, eax
    mov eax, [esp + 4]                             ; error code
    out REPORT_PORT, eax
    pop eax
    add esp, 4
    jmp resume_at

page_fault:
    push eax
    mov eax, 0x0e
    out REPORT_PORT, eax
    mov eax, cr2
    out REPORT_PORT, eax
    mov eax, [esp + 4]                             ; error code
    out REPORT_PORT, eax
    test eax, 4
    jnz .from_user
    cmp dword [resume], 0
    jne .skip
    or dword [PAGE_TABLE + 0x100 * 4], 1           ; map it and retry
    invlpg [0x500000]
    pop eax
    add esp, 4
    iret
.skip:
    pop eax
    add esp, 4
    jmp resume_at
.from_user:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    jmp finish

system_call:
    push ebx
    out REPORT_PORT, eax
    mov ebx, [esp + 8]                             ; saved CS
    and ebx, 3
    mov eax, ebx
    out REPORT_PORT, eax                           ; privilege the caller ran at
    pop ebx
    iret

; Reached from ring 3 through the call gate: reports its privilege and the copied parameter.
gate_target:
    mov ax, cs
    and eax, 3
    out REPORT_PORT, eax
    mov eax, [esp + 8]                             ; above the return CS:EIP
    out REPORT_PORT, eax
    retf 4

; Replaces the interrupted EIP with [resume] and returns there.
resume_at:
    push eax
    mov eax, [resume]
    mov [esp + 4], eax
    pop eax
    iret

; ecx = vector, eax = handler: a 32-bit interrupt gate to code selector 0x08.
set_gate:
    mov [idt + ecx * 8], ax
    mov word [idt + ecx * 8 + 2], 0x08
    mov word [idt + ecx * 8 + 4], 0x8e00
    shr eax, 16
    mov [idt + ecx * 8 + 6], ax
    ret

resume: dd 0

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff      ; 0x08 ring 0 code
    dq 0x00cf92000000ffff      ; 0x10 ring 0 data
    dq 0x00cffa000000ffff      ; 0x18 ring 3 code
    dq 0x00cff2000000ffff      ; 0x20 ring 3 data
tss_descriptor:
    dw tss_end - tss - 1
    dw tss
    db 0
    db 0x89
    db 0
    db 0
    dw gate_target             ; 0x30 call gate, DPL 3, one parameter
    dw 0x08
    db 1
    db 0xec
    dw 0
gdt_end:

gdt_pointer:
    dw gdt_end - gdt - 1
    dd gdt

idt_pointer:
    dw 256 * 8 - 1
    dd idt

align 4
tss: times 104 db 0
tss_end:

align 8
idt: times 256 * 8 db 0
