# spin: a flat 64-bit guest that loops forever without any exit; only --timeout ends it.
        .intel_syntax noprefix
        .code64
        .globl _start
        .text
_start:
        jmp _start
