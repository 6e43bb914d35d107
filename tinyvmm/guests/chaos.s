# chaos: a flat 64-bit guest that writes and reads pseudo-random I/O ports (all but the UART,
# the status port and the i8042) and memory that is mapped by the page tables but not backed by
# RAM, checks that such reads give all-ones, then prints a verdict and halts (status 0).
        .intel_syntax noprefix
        .include "uart.inc"
        .code64
        .globl _start
        .text
_start:
        mov r15d, 12345         # LCG seed
        mov r14d, 64            # ports to try
        xor r13d, r13d          # reads that were not all-ones
1:      imul r15d, r15d, 1103515245
        add r15d, 12345
        mov edx, r15d
        shr edx, 16             # port: bits 16..31 of the state
        cmp dx, 0xf4
        je 2f
        cmp dx, 0x64
        je 2f
        mov ax, dx
        and ax, 0xfff8
        cmp ax, 0x3f8
        je 2f
        mov eax, r15d
        out dx, al
        in al, dx
        cmp al, 0xff
        je 2f
        inc r13d
2:      dec r14d
        jnz 1b
        mov rbx, 0x30000000     # 768 MiB: identity-mapped, beyond RAM
        mov qword ptr [rbx], 0x1234
        mov rax, [rbx]
        cmp rax, -1
        je 3f
        inc r13d
3:      mov dword ptr [rbx + 0x1000], 0x5678
        mov eax, [rbx + 0x1000]
        cmp eax, -1
        je 4f
        inc r13d
4:      lea rsi, [rip + good]
        test r13d, r13d
        jz 5f
        lea rsi, [rip + bad]
5:      uart_print
        hlt
good:   .asciz "chaos: unknown ports and unbacked memory read all-ones\n"
bad:    .asciz "chaos: an unknown port or unbacked memory did not read all-ones\n"
