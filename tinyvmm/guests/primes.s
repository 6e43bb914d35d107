# primes: an ELF64 guest that computes the first ten primes by trial division, prints them on
# COM1 and exits through the status port with 0.
        .intel_syntax noprefix
        .include "uart.inc"
        .include "status.inc"
        .code64
        .globl _start
        .text
_start:
        lea rsi, [rip + title]
        call puts
        mov ebx, 2              # candidate
        mov r12d, 10            # primes still to find
next:   mov ecx, 2              # divisor
trial:  mov eax, ecx
        imul eax, ecx
        cmp eax, ebx
        ja prime                # divisor^2 > candidate: no divisor found
        mov eax, ebx
        xor edx, edx
        div ecx
        test edx, edx
        jz composite
        inc ecx
        jmp trial
prime:  mov al, ' '
        mov dx, 0x3f8
        out dx, al
        mov eax, ebx
        call putdec
        dec r12d
        jz done
composite:
        inc ebx
        jmp next
done:   mov al, '\n'
        mov dx, 0x3f8
        out dx, al
        status_exit 0

        uart_puts

# putdec: prints eax in decimal.
        uart_putdec64 eax, ecx, 16

        .section .rodata
title:  .asciz "first primes:"
