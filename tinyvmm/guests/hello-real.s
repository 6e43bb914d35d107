# hello-real: a 16-bit real-mode boot-sector-style guest. tinyvmm loads it at 0x1000 and enters it
# at 0000:1000. It prints one line on the COM1 UART and writes status 0 to the status port.
# The 0xaa55 signature at byte 510 is what makes `--format auto` pick real mode.
        .intel_syntax noprefix
        .include "uart.inc"
        .code16
        .globl _start
        .text
_start:
        cli
        xor ax, ax
        mov ds, ax
        mov si, offset msg
        uart_print
        xor al, al
        out 0xf4, al
        hlt
msg:    .asciz "Hello from real mode!\n"
        . = _start + 510
        .word 0xaa55
