# testkernel-pvh: a synthetic kernel in ELF form with the PVH entry note, for
# `tinyvmm run --kernel`. Entered in 32-bit protected mode with EBX pointing at hvm_start_info,
# it checks the magic and prints what a kernel reads from it: the command line, the memory map
# and the first module (the initrd); then it exits through the status port with 0 (1 when the
# magic is wrong). Its lines match testkernel-bz's after the first.
        .intel_syntax noprefix
        .include "uart.inc"
        .include "status.inc"
        .include "pvh.inc"
        .code32
        .globl _start
        .text
_start:
        mov ebp, ebx
        cmp dword ptr [ebp], 0x336ec578
        jne bad
        lea esi, [s_boot]
        call puts
        mov eax, ebp
        xor edx, edx
        call puthex64
        lea esi, [s_boot2]
        call puts

        lea esi, [s_cmdline]
        call puts
        mov esi, [ebp + 24]             # cmdline_paddr (low half)
        call puts
        call newline

        mov edi, [ebp + 40]             # memmap_paddr
        mov ecx, [ebp + 48]             # memmap_entries
1:      test ecx, ecx
        jz 2f
        push ecx
        lea esi, [s_e820]
        call puts
        mov eax, [edi]
        mov edx, [edi + 4]
        call puthex64
        lea esi, [s_plus]
        call puts
        mov eax, [edi + 8]
        mov edx, [edi + 12]
        call puthex64
        lea esi, [s_type]
        call puts
        mov al, [edi + 16]
        add al, '0'
        mov dx, 0x3f8
        out dx, al
        call newline
        add edi, 24
        pop ecx
        dec ecx
        jmp 1b

2:      cmp dword ptr [ebp + 12], 0     # nr_modules
        je 4f
        mov edi, [ebp + 16]             # modlist_paddr
        lea esi, [s_initrd]
        call puts
        mov eax, [edi + 8]
        mov edx, [edi + 12]
        call puthex64
        lea esi, [s_aligned]
        call puts
        lea esi, [s_yes]
        test dword ptr [edi], 0xfff
        jz 3f
        lea esi, [s_no]
3:      call puts
        lea esi, [s_starts]
        call puts
        mov esi, [edi]
        mov ecx, 8
        mov dx, 0x3f8
        rep outsb
        lea esi, [s_quote]
        call puts
4:      status_exit 0
bad:    lea esi, [s_bad]
        call puts
        status_exit 1

        uart_puts
        uart_newline

# puthex64: prints edx:eax as 0x and 16 hex digits.
puthex64:
        push eax
        mov ebx, edx
        mov dx, 0x3f8
        mov al, '0'
        out dx, al
        mov al, 'x'
        out dx, al
        call hex8
        pop ebx
# hex8: prints ebx as 8 hex digits (dx = 0x3f8).
hex8:   mov ecx, 8
        uart_hex_digits ebx
        ret

        .section .rodata
s_boot:    .asciz "boot: PVH, hvm_start_info at "
s_boot2:   .asciz " with its magic\n"
        .include "kernel-lines.inc"
s_bad:     .asciz "boot: no hvm_start_info magic\n"

        pvh_entry_note _start
