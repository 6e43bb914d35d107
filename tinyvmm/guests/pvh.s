# pvh: an ELF64 guest with the Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY). tinyvmm enters it
# in 32-bit protected mode, paging off, with EBX pointing at hvm_start_info. It checks the magic,
# adds up the RAM entries of the memory map the start info points to, prints the result and
# exits through the status port with 0 (or 1 when the start info is not there).
        .intel_syntax noprefix
        .include "uart.inc"
        .include "status.inc"
        .include "pvh.inc"
        .code32
        .globl _start
        .text
_start:
        mov ebp, ebx
        cmp dword ptr [ebp], 0x336ec578         # hvm_start_info.magic
        jne bad
        lea esi, [msg_ok]
        call puts
        mov ecx, [ebp + 48]                     # memmap_entries
        mov edi, [ebp + 40]                     # memmap_paddr (below 4 GiB here)
        xor ebx, ebx                            # RAM in MiB
1:      test ecx, ecx
        jz 3f
        cmp dword ptr [edi + 16], 1             # type RAM
        jne 2f
        mov eax, [edi + 8]                      # size, low half
        shr eax, 20
        mov edx, [edi + 12]                     # size, high half, in MiB
        shl edx, 12
        add eax, edx
        add ebx, eax
2:      add edi, 24
        dec ecx
        jmp 1b
3:      mov eax, ebx
        call putdec
        lea esi, [msg_mib]
        call puts
        status_exit 0
bad:    lea esi, [msg_bad]
        call puts
        status_exit 1

        uart_puts

# putdec: prints eax in decimal, using the 16 bytes at digits.
putdec: lea edi, [digits + 16]
        mov ecx, 10
1:      xor edx, edx
        div ecx
        add dl, '0'
        dec edi
        mov [edi], dl
        test eax, eax
        jnz 1b
        mov dx, 0x3f8
2:      mov al, [edi]
        out dx, al
        inc edi
        cmp edi, offset digits + 16
        jne 2b
        ret

        .section .rodata
msg_ok:  .asciz "pvh: 32-bit protected mode, start info magic ok, memory map: "
msg_mib: .asciz " MiB of RAM\n"
msg_bad: .asciz "pvh: no hvm_start_info in EBX\n"

        .data
digits: .space 16

        pvh_entry_note _start
