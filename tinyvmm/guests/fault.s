# fault: a flat 64-bit guest that loads an empty IDT and then executes an undefined instruction:
# #UD cannot be delivered, nor can the #GP and #DF that follow, so the CPU triple-faults.
        .intel_syntax noprefix
        .code64
        .globl _start
        .text
_start:
        lidt [rip + idtr]
        ud2
        hlt
idtr:   .word 0
        .quad 0
