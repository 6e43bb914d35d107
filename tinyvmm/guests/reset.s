# reset: a flat 64-bit guest that pulses the i8042 reset line (0xfe to port 0x64), which ends
# the run with status 0; were the reset ignored, it would exit with status 9 instead.
        .intel_syntax noprefix
        .include "status.inc"
        .code64
        .globl _start
        .text
_start:
        mov al, 0xfe
        out 0x64, al
        status_exit 9
