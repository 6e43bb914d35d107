# hello-long: a flat 64-bit guest, loaded at 0x100000 and entered at its first byte in long mode.
# It prints one line and halts; with no interrupt source a halt ends the run with status 0.
        .intel_syntax noprefix
        .code64
        .globl _start
        .text
_start:
        lea rsi, [rip + msg]
        mov dx, 0x3f8
1:      lodsb
        test al, al
        jz 2f
        out dx, al
        jmp 1b
2:      hlt
msg:    .asciz "Hello from long mode!\n"
