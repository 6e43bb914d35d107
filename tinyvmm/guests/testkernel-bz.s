# testkernel-bz: a synthetic kernel in bzImage format for `tinyvmm run --kernel`. Its setup
# header says what a 64-bit Linux says (boot protocol 2.15, LOADED_HIGH, XLF_KERNEL_64), and its
# 64-bit entry (load address + 0x200) checks and prints what Linux reads from boot_params (RSI):
# the "HdrS" magic, the command line at cmd_line_ptr, the e820 map, the processors in the MP
# table at 0x9fc00, the ACPI tables as Linux follows them (acpi_rsdp_addr, RSDP, XSDT: the
# MADT's enabled processors, the FADT), the CMOS century and update flag, PCI 00:00.0 and 00:01.0
# through mechanism #1, and the initrd fields; then it goes down as the command line's "end=X"
# says, leaving the BIOS reset flag at 0x472 as Linux does before every restart (0x1234, warm,
# for a panic with reboot=panic_warm; 0, cold, for a reboot): p: panic, then the i8042 reset;
# r: reboot by i8042; t: reboot by triple fault; T: a triple fault without the flag (a crash);
# a: S5 through the FADT's sleep control register with \_S5's sleep type from the DSDT; R: reboot
# by the FADT's reset register; or else it exits through the status port with 0 (1 when
# boot_params lack "HdrS"). It prints Linux's lines for p, r and t, though tinyvmm reads none.
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
        call putnum
        call newline

5:      xor r15d, r15d                          # the FADT, once found
        mov rsi, [rbp + 0x70]                   # acpi_rsdp_addr
        test rsi, rsi
        jz 20f
        mov rax, 0x2052545020445352             # "RSD PTR "
        cmp [rsi], rax
        jne 20f
        mov r14, [rsi + 24]                     # the XSDT
        mov ecx, [r14 + 4]
        sub ecx, 36
        shr ecx, 3                              # its entries
        lea rdi, [r14 + 36]
        xor ebx, ebx                            # enabled processors in the MADT
21:     test ecx, ecx
        jz 25f
        mov rsi, [rdi]
        cmp dword ptr [rsi], 0x50434146         # "FACP"
        jne 22f
        mov r15, rsi
22:     cmp dword ptr [rsi], 0x43495041         # "APIC"
        jne 24f
        mov edx, [rsi + 4]
        lea r8, [rsi + rdx]                     # the MADT's end
        lea r9, [rsi + 44]                      # its first structure
23:     cmp r9, r8
        jae 24f
        cmp byte ptr [r9], 0                    # a processor local APIC...
        jne 26f
        test byte ptr [r9 + 4], 1               # ...enabled
        jz 26f
        inc ebx
26:     movzx eax, byte ptr [r9 + 1]
        test eax, eax
        jz 24f
        add r9, rax
        jmp 23b
24:     add rdi, 8
        dec ecx
        jmp 21b
25:     lea rsi, [rip + s_acpi]
        call puts
        mov eax, ebx
        call putnum
        lea rsi, [rip + s_fadt]
        call puts
        lea rsi, [rip + s_yes]
        test r15, r15
        jnz 27f
        lea rsi, [rip + s_no]
27:     call puts
        call newline

20:     lea rsi, [rip + s_cmos]                 # CMOS: the century (BCD) and UIP
        call puts
        mov al, 0x32
        out 0x70, al
        in al, 0x71
        movzx ebx, al
        mov ecx, 2
        mov dx, 0x3f8
        shl ebx, 24
        uart_hex_digits ebx
        lea rsi, [rip + s_updating]
        call puts
        mov al, 0x0a
        out 0x70, al
        in al, 0x71
        lea rsi, [rip + s_yes]
        test al, 0x80
        jnz 28f
        lea rsi, [rip + s_no]
28:     call puts
        call newline

        lea rsi, [rip + s_pci0]                 # PCI mechanism #1: 00:00.0, then 00:01.0
        call puts
        mov eax, 0x80000000
        mov dx, 0xcf8
        out dx, eax
        mov dx, 0xcfc
        in eax, dx
        call puthex
        lea rsi, [rip + s_pci1]
        call puts
        mov eax, 0x80000800
        mov dx, 0xcf8
        out dx, eax
        mov dx, 0xcfc
        in eax, dx
        call puthex
        call newline

        mov r12d, [rbp + 0x21c]         # ramdisk_size
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
        cmp bl, 'p'                     # panic=-1: the panic line, the warm flag, a reset
        jne 14f
        lea rsi, [rip + s_panic]
        call puts
        mov word ptr ds:0x472, 0x1234
        jmp reset
14:     cmp bl, 'r'                     # reboot=k: the cold flag, the i8042 reset
        jne 15f
        lea rsi, [rip + s_restart]
        call puts
        mov word ptr ds:0x472, 0
        jmp reset
15:     cmp bl, 't'                     # reboot=t: the cold flag, a triple fault
        jne 13f
        lea rsi, [rip + s_restart]
        call puts
        mov word ptr ds:0x472, 0
        lidt [rip + no_idt]
        ud2
13:     cmp bl, 'T'                     # a crash: a triple fault, the flag as tinyvmm left it
        jne 16f
        lidt [rip + no_idt]
        ud2
16:     test r15, r15                   # the ACPI ways need the FADT
        jz 12f
        cmp bl, 'a'                     # S5: SLP_TYP from the DSDT's \_S5, with SLP_EN
        jne 17f
        mov rsi, [r15 + 140]            # X_DSDT
        mov ecx, [rsi + 4]
        lea r8, [rsi + rcx - 8]
18:     cmp rsi, r8
        jae 12f
        cmp dword ptr [rsi], 0x5f35535f # "_S5_", then PackageOp, PkgLength, NumElements,
        je 19f
        inc rsi
        jmp 18b
19:     cmp byte ptr [rsi + 7], 0x0a    # BytePrefix
        jne 12f
        movzx eax, byte ptr [rsi + 8]
        shl eax, 2
        or eax, 0x20                    # SLP_EN
        mov edx, [r15 + 248]            # the sleep control register's I/O port
        out dx, al
        hlt
17:     cmp bl, 'R'                     # the reset register
        jne 12f
        mov word ptr ds:0x472, 0
        mov edx, [r15 + 120]
        mov al, [r15 + 128]
        out dx, al
        hlt
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

# putnum: prints eax (0-99) in decimal.
putnum: xor edx, edx
        mov ecx, 10
        div ecx
        test eax, eax
        jz 1f
        push rdx
        call putdigit
        pop rdx
1:      mov eax, edx
        jmp putdigit

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
s_restart: .asciz "[    1.000000] reboot: Restarting system\n"
no_idt:    .word 0
           .quad 0
s_mp:      .asciz "mptable: processors: "
s_acpi:    .asciz "acpi: MADT processors: "
s_fadt:    .asciz ", FADT: "
s_cmos:    .asciz "cmos: century "
s_updating: .asciz ", updating: "
s_pci0:    .asciz "pci: 00:00.0 "
s_pci1:    .asciz ", 00:01.0 "
