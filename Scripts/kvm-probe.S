.intel_syntax noprefix
.set BASE, 0x100000
.text
.code32
start:
header:
    .long 0x1BADB002
    .long 0x00010000
    .long -(0x1BADB002 + 0x00010000)
    .long BASE + (header - start)
    .long BASE
    .long 0
    .long 0
    .long BASE + (entry - start)
entry:
    cld
    mov edi, 0x10000
    xor eax, eax
    mov ecx, 3072
    rep stosd
    mov dword ptr [0x10000], 0x11003
    mov dword ptr [0x11000], 0x12003
    mov dword ptr [0x12000], 0x83
    mov eax, 0x10000
    mov cr3, eax
    mov eax, cr4
    or eax, 0x20
    mov cr4, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, 0x100
    wrmsr
    lgdt [BASE + (gdtr - start)]
    mov eax, cr0
    or eax, 0x80000001
    mov cr0, eax
    .byte 0xEA
    .long BASE + (long_mode - start)
    .word 0x08
.code64
long_mode:
    mov dx, 0x3f8
    lea rsi, [rip + msg]
1:  lodsb
    test al, al
    jz 2f
    out dx, al
    jmp 1b
2:  cli
    hlt
    jmp 2b
.align 8
gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
gdtr:
    .word gdtr - gdt - 1
    .long BASE + (gdt - start)
msg:
    .asciz "KMATRIX-PROBE-OK\r\n"
