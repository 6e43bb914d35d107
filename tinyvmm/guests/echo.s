# echo: a flat 64-bit guest that reads bytes from COM1 (polling the line status register) and
# echoes them back until it has echoed a newline, then exits with status 0.
        .intel_syntax noprefix
        .include "status.inc"
        .code64
        .globl _start
        .text
_start:
        mov dx, 0x3fd           # line status register
1:      in al, dx
        test al, 1              # data ready?
        jz 1b
        mov dx, 0x3f8
        in al, dx
        out dx, al
        cmp al, '\n'
        jne _start
        status_exit 0
