# virtio: a flat 64-bit guest that drives tinyvmm's virtio-mmio devices itself, run with
# `--disk IMAGE --rng` (the disk at 0xd0000000, the entropy device at 0xd0001000) and polling,
# as an image has no interrupt controller. On the disk it reads sector 0 (printing its first
# line), writes sector 1, asks for the serial and flushes, printing each request's status; then
# it misbehaves three ways (a descriptor loop, a buffer address outside RAM, a length larger than
# RAM), checking each time that the device says NEEDS_RESET, never completes the request, and
# works again after a reset; last it takes 64 bytes from the entropy device. Status 0 at the end;
# a check that fails exits with its own status (20 and up).
        .intel_syntax noprefix
        .include "uart.inc"
        .include "status.inc"
        .include "virtio-mmio.inc"
        .code64
        .globl _start
        .text

        .set BLK, 0xd0000000
        .set RNG, 0xd0001000
        .set PD3, 0x30000               # page directory for 3-4 GiB
        .set DESC, 0x40000              # descriptor table, 8 entries
        .set AVAIL, 0x41000
        .set USED, 0x42000
        .set HDR, 0x50000               # request header
        .set WBUF, 0x51000              # data the guest writes
        .set STAT, 0x52000              # status byte
        .set RBUF, 0x53000              # data the guest reads
        .set IDBUF, 0x54000             # serial
        .set RNGBUF, 0x60000
        .set QSIZE, 8


        # desc index, addr, len, flags, next
        .macro desc i, addr, len, flags, next
        mov qword ptr [DESC + \i * 16], \addr
        mov dword ptr [DESC + \i * 16 + 8], \len
        mov word ptr [DESC + \i * 16 + 12], \flags
        mov word ptr [DESC + \i * 16 + 14], \next
        .endm

        .set NEXT, 1
        .set WRITE, 2

_start:
        mmio_window PD3
        expect_device BLK, 2, bad_magic
        call init
        lea rsi, [rip + s_cap]
        call puts
        mov eax, [rbx + R_CONFIG]
        call putdec
        call newline

        # Read sector 0 into RBUF and print its first line.
        mov dword ptr [HDR], 0          # VIRTIO_BLK_T_IN
        mov qword ptr [HDR + 8], 0
        desc 0, HDR, 16, NEXT, 1
        desc 1, RBUF, 512, NEXT | WRITE, 2
        desc 2, STAT, 1, WRITE, 0
        mov byte ptr [STAT], 0xff
        xor eax, eax
        call submit
        cmp dword ptr [USED + 4 + 4], 513       # used length: 512 data + status
        jne bad_len
        lea rsi, [rip + s_read]
        call print_status
        mov byte ptr [RBUF + 64], 0
        mov esi, RBUF
        call puts

        # Write sector 1 from WBUF.
        lea rsi, [rip + s_written]
        mov edi, WBUF
        call copy
        mov dword ptr [HDR], 1          # VIRTIO_BLK_T_OUT
        mov qword ptr [HDR + 8], 1
        desc 1, WBUF, 512, NEXT, 2
        mov byte ptr [STAT], 0xff
        xor eax, eax
        call submit
        lea rsi, [rip + s_write]
        call print_status

        # The serial (20 bytes, NUL-padded).
        mov dword ptr [HDR], 8          # VIRTIO_BLK_T_GET_ID
        mov qword ptr [HDR + 8], 0
        desc 1, IDBUF, 20, NEXT | WRITE, 2
        mov byte ptr [STAT], 0xff
        xor eax, eax
        call submit
        lea rsi, [rip + s_id]
        call print_status
        lea rsi, [rip + s_serial]
        call puts
        mov byte ptr [IDBUF + 20], 0
        mov esi, IDBUF
        call puts
        call newline

        # Flush: header and status only.
        mov dword ptr [HDR], 4          # VIRTIO_BLK_T_FLUSH
        desc 0, HDR, 16, NEXT, 2
        mov byte ptr [STAT], 0xff
        xor eax, eax
        call submit
        lea rsi, [rip + s_flush]
        call print_status

        # 1. A loop: 3 -> 4 -> 3 ...
        mov dword ptr [HDR], 0
        desc 3, HDR, 16, NEXT, 4
        desc 4, RBUF, 512, NEXT | WRITE, 3
        mov eax, 3
        lea rsi, [rip + s_loop]
        call misbehave

        # 2. A buffer outside RAM.
        call init
        desc 0, HDR, 16, NEXT, 1
        mov rax, 0x7fff0000
        desc 1, rax, 512, NEXT | WRITE, 2
        desc 2, STAT, 1, WRITE, 0
        xor eax, eax
        lea rsi, [rip + s_addr]
        call misbehave

        # 3. A length past the end of RAM.
        call init
        desc 0, HDR, 16, NEXT, 1
        desc 2, STAT, 1, WRITE, 0
        desc 1, RBUF, 0x10000000, NEXT | WRITE, 2
        xor eax, eax
        lea rsi, [rip + s_over]
        call misbehave

        # After a reset the device works again.
        call init
        desc 0, HDR, 16, NEXT, 1
        desc 2, STAT, 1, WRITE, 0
        desc 1, RBUF, 512, NEXT | WRITE, 2
        mov byte ptr [STAT], 0xff
        xor eax, eax
        call submit
        lea rsi, [rip + s_again]
        call print_status

        # The entropy device: 64 bytes into a zeroed buffer.
        expect_device RNG, 4, bad_magic
        call init
        desc 0, RNGBUF, 64, WRITE, 0
        xor eax, eax
        call submit
        cmp dword ptr [USED + 4 + 4], 64
        jne bad_len
        mov rax, [RNGBUF]
        or rax, [RNGBUF + 8]
        or rax, [RNGBUF + 56]
        test rax, rax
        jz bad_rng
        lea rsi, [rip + s_rng]
        call puts
        status_exit 0

bad_magic: status_exit 20
bad_feat:  status_exit 21
bad_init:  status_exit 22
bad_wait:  status_exit 23
bad_len:   status_exit 24
bad_rng:   status_exit 25
bad_reset: status_exit 26
bad_used:  status_exit 27

# init: resets the device at rbx and sets up queue 0 (QSIZE entries, zeroed rings), driver OK.
init:
        mov dword ptr [rbx + R_STATUS], 0
        cmp dword ptr [rbx + R_STATUS], 0
        jne bad_reset
        mov edi, DESC
        mov ecx, 3 * 4096 / 8
        xor eax, eax
        rep stosq
        mov dword ptr [rbx + R_STATUS], 3               # ACKNOWLEDGE | DRIVER
        mov dword ptr [rbx + R_DFSEL], 1
        test dword ptr [rbx + R_DFEAT], 1               # VIRTIO_F_VERSION_1
        jz bad_feat
        mov dword ptr [rbx + R_GFSEL], 1
        mov dword ptr [rbx + R_GFEAT], 1
        mov dword ptr [rbx + R_GFSEL], 0
        mov dword ptr [rbx + R_GFEAT], 0
        mov dword ptr [rbx + R_STATUS], 0xb             # | FEATURES_OK
        test dword ptr [rbx + R_STATUS], 8
        jz bad_init
        mov dword ptr [rbx + R_QSEL], 0
        cmp dword ptr [rbx + R_QMAX], QSIZE
        jb bad_init
        mov dword ptr [rbx + R_QNUM], QSIZE
        mov dword ptr [rbx + R_DESC], DESC
        mov dword ptr [rbx + R_DESC + 4], 0
        mov dword ptr [rbx + R_AVAIL], AVAIL
        mov dword ptr [rbx + R_AVAIL + 4], 0
        mov dword ptr [rbx + R_USED], USED
        mov dword ptr [rbx + R_USED + 4], 0
        mov dword ptr [rbx + R_QREADY], 1
        mov dword ptr [rbx + R_STATUS], 0xf             # | DRIVER_OK
        ret

# offer: puts head eax into the available ring and notifies queue 0; returns the new index in
# ecx.
offer:
        movzx ecx, word ptr [AVAIL + 2]
        mov edx, ecx
        and edx, QSIZE - 1
        mov [AVAIL + 4 + rdx * 2], ax
        inc ecx
        mov [AVAIL + 2], cx
        mfence
        mov dword ptr [rbx + R_NOTIFY], 0
        ret

# submit: offers head eax and polls until the used ring's index reaches the new one.
submit:
        call offer
        mov r8d, 2000000
1:      cmp [USED + 2], cx
        je 2f
        pause
        dec r8d
        jnz 1b
        jmp bad_wait
2:      ret

# misbehave: offers head eax, waits for NEEDS_RESET (0x40) in the status register, checks that
# nothing was used, and prints the string at rsi.
misbehave:
        push rsi
        call offer
        lea r9d, [ecx - 1]              # what the used index must stay at
        mov r8d, 2000000
1:      test dword ptr [rbx + R_STATUS], 0x40
        jnz 2f
        pause
        dec r8d
        jnz 1b
        jmp bad_wait
2:      cmp [USED + 2], r9w
        jne bad_used
        pop rsi
        call puts
        ret

# print_status: prints the string at rsi, then the status byte in decimal and a newline.
print_status:
        call puts
        movzx eax, byte ptr [STAT]
        call putdec
        call newline
        ret

# copy: copies the NUL-terminated string at rsi to rdi (with the NUL).
copy:
1:      lodsb
        stosb
        test al, al
        jnz 1b
        ret

        uart_puts
        uart_newline
        uart_putdec64 rax, rcx, 32

        .section .rodata
s_cap:     .asciz "blk: capacity in sectors "
s_read:    .asciz "read sector 0: status "
s_written: .asciz "sector 1 written by the guest\n"
s_write:   .asciz "write sector 1: status "
s_id:      .asciz "get id: status "
s_serial:  .asciz "serial: "
s_flush:   .asciz "flush: status "
s_loop:    .asciz "descriptor loop: needs reset\n"
s_addr:    .asciz "buffer outside RAM: needs reset\n"
s_over:    .asciz "oversize length: needs reset\n"
s_again:   .asciz "after reset, read sector 0: status "
s_rng:     .asciz "rng: 64 bytes\n"
