# net: a flat 64-bit guest that drives tinyvmm's virtio-net device itself, run with
# `--net tap=NAME,mac=02:00:00:00:00:02` (the device at 0xd0000000) and polling, as an image has
# no interrupt controller. It prints the MAC's last byte and the link status from the
# configuration space, gives the receive queue 8 buffers, waits for a byte on COM1 (the host has
# makes the host's kernel send an ARP request through the tap), waits for a used buffer and
# looks for an ARP frame among what it received, sends
# one broadcast frame (ethertype 0x88b5) on the transmit queue, waits for a second byte and ends
# with it as its status. A check that fails exits with its own status (20 and up).
        .intel_syntax noprefix
        .include "uart.inc"
        .include "status.inc"
        .include "virtio-mmio.inc"
        .code64
        .globl _start
        .text

        .set NET, 0xd0000000
        .set PD3, 0x30000               # page directory for 3-4 GiB
        .set RXDESC, 0x40000            # receive queue: descriptors, avail, used
        .set RXAVAIL, 0x41000
        .set RXUSED, 0x42000
        .set TXDESC, 0x44000            # transmit queue
        .set TXAVAIL, 0x45000
        .set TXUSED, 0x46000
        .set RXBUF, 0x60000             # 8 receive buffers of 2 KiB
        .set TXBUF, 0x70000
        .set QSIZE, 8
        .set FRAME, 12 + 60             # header and a minimum Ethernet frame

_start:
        mmio_window PD3
        expect_device NET, 1, bad_magic
        lea rsi, [rip + s_mac]
        call puts
        movzx eax, byte ptr [rbx + R_CONFIG + 5]
        call putdec
        call newline
        cmp word ptr [rbx + R_CONFIG + 6], 1    # VIRTIO_NET_S_LINK_UP
        jne bad_config
        lea rsi, [rip + s_link]
        call puts

        # Reset, features VERSION_1 and MAC, both queues, driver OK.
        mov dword ptr [rbx + R_STATUS], 0
        mov dword ptr [rbx + R_STATUS], 3
        mov dword ptr [rbx + R_DFSEL], 1
        test dword ptr [rbx + R_DFEAT], 1
        jz bad_feat
        mov dword ptr [rbx + R_GFSEL], 1
        mov dword ptr [rbx + R_GFEAT], 1
        mov dword ptr [rbx + R_GFSEL], 0
        mov dword ptr [rbx + R_GFEAT], 1 << 5
        mov dword ptr [rbx + R_STATUS], 0xb
        test dword ptr [rbx + R_STATUS], 8
        jz bad_feat
        xor eax, eax
        mov edx, RXDESC
        call queue
        mov eax, 1
        mov edx, TXDESC
        call queue
        mov dword ptr [rbx + R_STATUS], 0xf

        # Every receive buffer to the device at once.
        xor ecx, ecx
1:      mov eax, ecx
        shl eax, 11
        add eax, RXBUF
        mov edx, ecx
        shl edx, 4
        mov qword ptr [RXDESC + rdx], rax
        mov dword ptr [RXDESC + rdx + 8], 2048
        mov word ptr [RXDESC + rdx + 12], 2     # VIRTQ_DESC_F_WRITE
        mov [RXAVAIL + 4 + rcx * 2], cx
        inc ecx
        cmp ecx, QSIZE
        jb 1b
        mov word ptr [RXAVAIL + 2], QSIZE
        mfence
        mov dword ptr [rbx + R_NOTIFY], 0
        lea rsi, [rip + s_ready]
        call puts

        call getc
        # The device thread delivers what the tap had on its own time: wait for a used buffer.
        mov r8d, 2000000
5:      cmp word ptr [RXUSED + 2], 0
        jne 6f
        pause
        dec r8d
        jnz 5b
        jmp bad_rx
        # Among the used buffers, one holding an ARP frame (ethertype 08 06 after the 12-byte
        # header and the two addresses) with num_buffers 1.
6:      movzx r9d, word ptr [RXUSED + 2]
        xor ecx, ecx
2:      cmp ecx, r9d
        jae bad_rx
        mov eax, [RXUSED + 4 + rcx * 8]         # the buffer's descriptor index
        shl eax, 11
        add eax, RXBUF
        inc ecx
        cmp word ptr [rax + 24], 0x0608
        jne 2b
        cmp word ptr [rax + 10], 1
        jne bad_rx
        lea rsi, [rip + s_rx]
        call puts

        # One broadcast frame from 02:00:00:00:00:02, ethertype 0x88b5, "tinyvmm-net" in it.
        mov edi, TXBUF
        mov ecx, FRAME
        xor eax, eax
        rep stosb
        mov dword ptr [TXBUF + 12], 0xffffffff
        mov word ptr [TXBUF + 16], 0xffff
        mov dword ptr [TXBUF + 18], 0x00000002
        mov word ptr [TXBUF + 22], 0x0200
        mov word ptr [TXBUF + 24], 0xb588
        lea rsi, [rip + s_payload]
        mov edi, TXBUF + 26
        mov ecx, 11
        rep movsb
        mov qword ptr [TXDESC], TXBUF
        mov dword ptr [TXDESC + 8], FRAME
        mov word ptr [TXAVAIL + 4], 0
        mov word ptr [TXAVAIL + 2], 1
        mfence
        mov dword ptr [rbx + R_NOTIFY], 1
        mov r8d, 2000000
3:      cmp word ptr [TXUSED + 2], 1
        je 4f
        pause
        dec r8d
        jnz 3b
        jmp bad_tx
4:      lea rsi, [rip + s_tx]
        call puts

        call getc
        out 0xf4, al
        hlt

bad_magic:  status_exit 20
bad_feat:   status_exit 21
bad_config: status_exit 22
bad_rx:     status_exit 23
bad_tx:     status_exit 24

# queue: sets up queue eax (QSIZE entries) with its descriptors at edx, the available ring
# 0x1000 and the used ring 0x2000 above, all zeroed.
queue:
        push rax
        mov edi, edx
        mov ecx, 3 * 4096 / 8
        xor eax, eax
        rep stosq
        pop rax
        mov [rbx + R_QSEL], eax
        cmp dword ptr [rbx + R_QMAX], QSIZE
        jb bad_feat
        mov dword ptr [rbx + R_QNUM], QSIZE
        mov [rbx + R_DESC], edx
        mov dword ptr [rbx + R_DESC + 4], 0
        add edx, 0x1000
        mov [rbx + R_AVAIL], edx
        mov dword ptr [rbx + R_AVAIL + 4], 0
        add edx, 0x1000
        mov [rbx + R_USED], edx
        mov dword ptr [rbx + R_USED + 4], 0
        mov dword ptr [rbx + R_QREADY], 1
        ret

# getc: waits for a byte on COM1 and returns it in al.
getc:
        mov dx, 0x3fd
1:      in al, dx
        test al, 1
        jz 1b
        mov dx, 0x3f8
        in al, dx
        ret

        uart_puts
        uart_newline
        uart_putdec64 rax, rcx, 32

        .section .rodata
s_mac:     .asciz "net: mac ends in "
s_link:    .asciz "net: link up\n"
s_ready:   .asciz "net: 8 receive buffers given\n"
s_rx:      .asciz "rx: an ARP frame from the host, num_buffers 1\n"
s_tx:      .asciz "tx: a broadcast frame sent\n"
s_payload: .ascii "tinyvmm-net"
