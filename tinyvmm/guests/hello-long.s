# hello-long: a flat 64-bit guest, loaded at 0x100000 and entered at its first byte in long mode.
# It prints one line and halts; with no interrupt source a halt ends the run with status 0.
        .intel_syntax noprefix
        .include "uart.inc"
        .code64
        .globl _start
        .text
_start:
        lea rsi, [rip + msg]
        uart_print
        hlt
msg:    .asciz "Hello from long mode!\n"
