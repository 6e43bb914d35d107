# status: a flat 64-bit guest that reads one byte from COM1 and writes it to the status port, so
# that tinyvmm exits with exactly that status (0..255).
        .intel_syntax noprefix
        .code64
        .globl _start
        .text
_start:
        mov dx, 0x3fd
1:      in al, dx
        test al, 1
        jz 1b
        mov dx, 0x3f8
        in al, dx
        out 0xf4, al
        hlt
