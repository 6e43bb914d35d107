# fault-real: a real-mode guest that loads an empty interrupt table and then executes an
# undefined instruction: the fault cannot be delivered, so the CPU triple-faults (here KVM may
# report that as an internal error rather than a shutdown; tinyvmm calls both a crash).
        .intel_syntax noprefix
        .code16
        .globl _start
        .text
_start:
        xor ax, ax
        mov ds, ax
        lidt [idtr]
        ud2
        hlt
idtr:   .word 0
        .long 0
        . = _start + 510
        .word 0xaa55
