# testkernel-bz: a synthetic kernel in bzImage format for `tinyvmm run --kernel`. Its setup
# header says what a 64-bit Linux says (boot protocol 2.15, LOADED_HIGH, XLF_KERNEL_64), and its
# 64-bit entry (load address + 0x200) checks and prints what Linux reads from boot_params (RSI):
# the "HdrS" magic, the command line at cmd_line_ptr, the e820 map, the processors in the MP
# table at 0x9fc00 and the initrd fields; then it goes down as the command line's "end=X" says
# (p: panic, o: poweroff, r: reboot by i8042, t: reboot by triple fault), printing Linux's lines,
# or else it exits through the status port with 0 (1 when boot_params lack "HdrS").
        .intel_syntax noprefix
        .include "uart.inc"
        .include "status.inc"

# ---- the real-mode setup part: the boot sector and one setup sector (file offsets 0-0x3ff) ----
        .section .setup, "a"
        .code16
setup_start:
        . = setup_start + 0x1f1
        .byte 1                         # setup_sects
        .word 0                         # root_flags
        .long 0                         # syssize
        .word 0                         # ram_size
        .word 0                         # vid_mode
        .word 0                         # root_dev
        .word 0xaa55                    # boot_flag
        .byte 0xeb                      # jump over the header...
        .byte 0x66                      # ...which ends at 0x202 + 0x66 = 0x268
        .ascii "HdrS"                   # header
        .word 0x020f                    # version 2.15
        .long 0                         # realmode_swtch
        .word 0                         # start_sys_seg
        .word 0                         # kernel_version
        .byte 0                         # type_of_loader
        .byte 0x01                      # loadflags: LOADED_HIGH
        .word 0                         # setup_move_size
        .long 0x100000                  # code32_start
        .long 0                         # ramdisk_image
        .long 0                         # ramdisk_size
        .long 0                         # bootsect_kludge
        .word 0                         # heap_end_ptr
        .byte 0                         # ext_loader_ver
        .byte 0                         # ext_loader_type
        .long 0                         # cmd_line_ptr
        .long 0x7fffffff                # initrd_addr_max
        .long 0x200000                  # kernel_alignment
        .byte 0                         # relocatable_kernel
        .byte 0                         # min_alignment
        .word 0x0001                    # xloadflags: XLF_KERNEL_64
        .long 2047                      # cmdline_size
        .long 0                         # hardware_subarch
        .quad 0                         # hardware_subarch_data
        .long 0                         # payload_offset
        .long 0                         # payload_length
        .quad 0                         # setup_data
        .quad 0x100000                  # pref_address
        .long 0x10000                   # init_size
        .long 0                         # handover_offset
        .long 0                         # kernel_info_offset
        . = setup_start + 0x400

# ---- the protected-mode part, loaded at 0x100000 ----
        .text
        .code32
        .globl startup_32
startup_32:                             # the 32-bit entry: not used by tinyvmm
        hlt
        jmp startup_32
        .code64
        . = startup_32 + 0x200
startup_64:
        mov rbp, rsi
        cmp dword ptr [rbp + 0x202], 0x53726448 # "HdrS"
        jne no_hdrs
        lea rsi, [rip + s_boot]
        call puts
        mov rax, rbp
        call puthex
        lea rsi, [rip + s_boot2]
        call puts

        lea rsi, [rip + s_cmdline]
        call puts
        mov esi, [rbp + 0x228]          # cmd_line_ptr
        call puts
        call newline

        movzx r12d, byte ptr [rbp + 0x1e8]      # e820_entries
        lea r13, [rbp + 0x2d0]                  # e820_table
1:      test r12d, r12d
        jz 2f
        lea rsi, [rip + s_e820]
        call puts
        mov rax, [r13]
        call puthex
        lea rsi, [rip + s_plus]
        call puts
        mov rax, [r13 + 8]
        call puthex
        lea rsi, [rip + s_type]
        call puts
        mov eax, [r13 + 16]
        call putdigit
        call newline
        add r13, 20
        dec r12d
        jmp 1b

2:      cmp dword ptr [0x9fc00], 0x5f504d5f     # "_MP_": the MP floating pointer
        jne 5f
        mov esi, [0x9fc04]                      # the configuration table
        movzx ecx, word ptr [rsi + 34]          # entry count
        lea rdi, [rsi + 44]
        xor ebx, ebx                            # processors
6:      test ecx, ecx
        jz 8f
        cmp byte ptr [rdi], 0
        jne 7f
        inc ebx
        add rdi, 12                             # processor entries are 20 bytes, others 8
7:      add rdi, 8
        dec ecx
        jmp 6b
8:      lea rsi, [rip + s_mp]
        call puts
        mov eax, ebx
        xor edx, edx
        mov ecx, 10
        div ecx
        test eax, eax
        jz 9f
        push rdx
        call putdigit
        pop rdx
9:      mov eax, edx
        call putdigit
        lea rsi, [rip + s_mp2]
        call puts
5:      mov r12d, [rbp + 0x21c]         # ramdisk_size
        test r12d, r12d
        jz 4f
        lea rsi, [rip + s_initrd]
        call puts
        mov eax, r12d
        call puthex
        lea rsi, [rip + s_aligned]
        call puts
        mov eax, [rbp + 0x218]          # ramdisk_image
        lea rsi, [rip + s_yes]
        test eax, 0xfff
        jz 3f
        lea rsi, [rip + s_no]
3:      call puts
        lea rsi, [rip + s_starts]
        call puts
        mov esi, [rbp + 0x218]
        mov ecx, 8
        mov dx, 0x3f8
        rep outsb
        lea rsi, [rip + s_quote]
        call puts
4:      mov rsi, [rbp + 0x228]          # "end=X" on the command line: go down like Linux
        mov esi, esi
10:     cmp dword ptr [rsi], 0x3d646e65 # "end="
        je 11f
        cmp byte ptr [rsi], 0
        je 12f
        inc rsi
        jmp 10b
11:     movzx ebx, byte ptr [rsi + 4]
        cmp bl, 'p'                     # panic=-1: the panic line, then an i8042 reset
        jne 13f
        lea rsi, [rip + s_panic]
        call puts
        jmp reset
13:     cmp bl, 'o'                     # poweroff without ACPI: Power down, init dies, panic
        jne 14f
        lea rsi, [rip + s_powerdown]
        call puts
        lea rsi, [rip + s_panic]
        call puts
        jmp reset
14:     cmp bl, 'r'                     # reboot=k
        jne 15f
        lea rsi, [rip + s_restart]
        call puts
        jmp reset
15:     cmp bl, 't'                     # reboot=t: a triple fault
        jne 12f
        lea rsi, [rip + s_restart]
        call puts
        lidt [rip + no_idt]
        ud2
12:     status_exit 0
reset:  mov al, 0xfe
        out 0x64, al
        hlt
no_hdrs:
        lea rsi, [rip + s_nohdrs]
        call puts
        status_exit 1

        uart_puts
        uart_newline

# putdigit: prints al (0-9) as a digit.
putdigit:
        add al, '0'
        mov dx, 0x3f8
        out dx, al
        ret

# puthex: prints rax as 0x and 16 hex digits.
puthex: mov rbx, rax
        mov dx, 0x3f8
        mov al, '0'
        out dx, al
        mov al, 'x'
        out dx, al
        mov ecx, 16
        uart_hex_digits rbx
        ret

s_boot:    .asciz "boot: 64-bit boot protocol, boot_params at "
s_boot2:   .asciz " with HdrS\n"
        .include "kernel-lines.inc"
s_nohdrs:  .asciz "boot: no HdrS in boot_params\n"
s_panic:   .asciz "[    1.000000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000\n"
s_powerdown: .asciz "[    1.000000] reboot: Power down\n"
s_restart: .asciz "[    1.000000] reboot: Restarting system\n"
no_idt:    .word 0
           .quad 0
s_mp:      .asciz "mptable: processors: "
s_mp2:     .asciz "\n"
