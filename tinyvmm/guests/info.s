# info: the guest tinyvmm runs when no image is given. It reports, from inside the VM, what it
# sees: the CPU mode (EFER.LMA, read with rdmsr), the RAM that tinyvmm's memory map at RSI
# describes, and the hypervisor's CPUID signature; then it exits through the status port with 0.
        .intel_syntax noprefix
        .include "uart.inc"
        .include "status.inc"
        .code64
        .globl _start
        .text
_start:
        mov rbp, rsi                    # tinyvmm boot info: "TVMM", count, entries
        lea rsi, [rip + s_hello]
        call puts

        lea rsi, [rip + s_mode]
        call puts
        mov ecx, 0xc0000080             # EFER
        rdmsr
        lea rsi, [rip + s_long]
        test eax, 0x400                 # LMA
        jnz 1f
        lea rsi, [rip + s_other]
1:      call puts

        lea rsi, [rip + s_mem]
        call puts
        xor ebx, ebx                    # RAM bytes
        cmp dword ptr [rbp], 0x4d4d5654
        jne 3f
        mov ecx, [rbp + 4]
        lea rdi, [rbp + 8]
2:      test ecx, ecx
        jz 3f
        cmp dword ptr [rdi + 16], 1     # type 1: RAM
        jne 4f
        add rbx, [rdi + 8]
4:      add rdi, 24
        dec ecx
        jmp 2b
3:      mov rax, rbx
        shr rax, 20
        call putdec
        lea rsi, [rip + s_mib]
        call puts

        lea rsi, [rip + s_hv]
        call puts
        mov eax, 1
        cpuid
        bt ecx, 31                      # hypervisor present
        lea rsi, [rip + s_none]
        jnc 5f
        mov eax, 0x40000000
        cpuid
        sub rsp, 16
        mov [rsp], ebx
        mov [rsp + 4], ecx
        mov [rsp + 8], edx
        mov byte ptr [rsp + 12], 0
        mov rsi, rsp
        call puts
        add rsp, 16
        lea rsi, [rip + s_nl]
5:      call puts
        status_exit 0

        uart_puts

# putdec: prints rax in decimal.
        uart_putdec64 rax, rcx, 32

s_hello: .asciz "tinyvmm: hello from inside the VM\n"
s_mode:  .asciz "cpu mode: "
s_long:  .asciz "64-bit long mode (EFER.LMA=1)\n"
s_other: .asciz "not long mode (EFER.LMA=0)\n"
s_mem:   .asciz "memory: "
s_mib:   .asciz " MiB of RAM in the memory map\n"
s_hv:    .asciz "hypervisor: "
s_none:  .asciz "none (CPUID.1:ECX.31 clear)\n"
s_nl:    .asciz "\n"
