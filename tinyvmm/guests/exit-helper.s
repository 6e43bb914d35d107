# exit-helper: a static x86-64 Linux program for the one-shot initramfs. `tinyvmm-exit N` asks
# for access to I/O port 0xf4 (ioperm), writes the byte N there, which ends the run with status
# N, and exits with N should the write not end the VM.
        .intel_syntax noprefix
        .code64
        .globl _start
        .text
_start:
        mov rdi, [rsp + 16]             # argv[1]
        xor eax, eax
        test rdi, rdi
        jz 2f
1:      movzx ecx, byte ptr [rdi]
        sub ecx, '0'
        cmp ecx, 9
        ja 2f                           # the end of the digits (NUL or anything else)
        imul eax, eax, 10
        add eax, ecx
        inc rdi
        jmp 1b
2:      mov r12d, eax
        mov eax, 173                    # ioperm(0xf4, 1, 1)
        mov edi, 0xf4
        mov esi, 1
        mov edx, 1
        syscall
        mov eax, r12d
        out 0xf4, al
        mov eax, 60                     # exit(N)
        mov edi, r12d
        syscall
