# rootfs-init: PID 1 of the one-shot mode's small initramfs when `--share-rootfs` gives the
# guest DIR over virtio-fs. It loads /modules/a.ko, b.ko... in order while they exist
# (finit_module; a refusal, such as a module of another kernel version or one already built in,
# is passed over), keeps /tinyvmm-exit open as descriptor 9 (the command's status is written
# through /proc/self/fd/9 once the initramfs is out of sight), reads /stage2 (the one-shot
# script), mounts the virtio-fs tag "rootfs" on /newroot, moves it onto /, chroots there and
# runs /bin/sh -c STAGE2. A step that fails says which on the console and ends the VM with
# status 125 through I/O port 0xf4.
        .intel_syntax noprefix
        .code64
        .globl _start

        .equ SYS_read, 0
        .equ SYS_write, 1
        .equ SYS_open, 2
        .equ SYS_close, 3
        .equ SYS_dup2, 33
        .equ SYS_execve, 59
        .equ SYS_exit, 60
        .equ SYS_chdir, 80
        .equ SYS_chroot, 161
        .equ SYS_mount, 165
        .equ SYS_ioperm, 173
        .equ SYS_finit_module, 313
        .equ MS_MOVE, 8192
        .equ STAGE2_MAX, 65535

        .text
_start:
        mov eax, SYS_ioperm             # ioperm(0xf4, 1, 1): the failure exit
        mov edi, 0xf4
        mov esi, 1
        mov edx, 1
        syscall

        lea rbx, [rip + module_path]
1:      mov eax, SYS_open               # open("/modules/X.ko", O_RDONLY)
        mov rdi, rbx
        xor esi, esi
        syscall
        test eax, eax
        js 2f                           # no more modules
        mov r12d, eax
        mov eax, SYS_finit_module       # finit_module(fd, "", 0); a refusal is passed over
        mov edi, r12d
        lea rsi, [rip + empty]
        xor edx, edx
        syscall
        mov eax, SYS_close
        mov edi, r12d
        syscall
        inc byte ptr [rip + module_letter]
        cmp byte ptr [rip + module_letter], 'z'
        jbe 1b

2:      mov eax, SYS_open               # /tinyvmm-exit as descriptor 9
        lea rdi, [rip + exit_helper]
        xor esi, esi
        syscall
        lea r15, [rip + msg_helper]
        test eax, eax
        js fail
        mov edi, eax
        mov eax, SYS_dup2
        mov esi, 9
        syscall

        mov eax, SYS_open               # read /stage2 into the buffer, NUL-terminated
        lea rdi, [rip + stage2_path]
        xor esi, esi
        syscall
        lea r15, [rip + msg_stage2]
        test eax, eax
        js fail
        mov r12d, eax
        xor r13d, r13d                  # bytes read so far
3:      mov eax, SYS_read
        mov edi, r12d
        lea rsi, [rip + stage2]
        add rsi, r13
        mov edx, STAGE2_MAX
        sub edx, r13d
        jz 4f
        syscall
        test rax, rax
        js fail
        jz 4f
        add r13, rax
        jmp 3b
4:      lea rax, [rip + stage2]
        mov byte ptr [rax + r13], 0
        mov eax, SYS_close
        mov edi, r12d
        syscall

        mov eax, SYS_mount              # mount("rootfs", "/newroot", "virtiofs", 0, NULL)
        lea rdi, [rip + tag]
        lea rsi, [rip + newroot]
        lea rdx, [rip + fstype]
        xor r10d, r10d
        xor r8d, r8d
        syscall
        lea r15, [rip + msg_mount]
        test eax, eax
        jnz fail
        mov eax, SYS_chdir
        lea rdi, [rip + newroot]
        syscall
        lea r15, [rip + msg_switch]
        test eax, eax
        jnz fail
        mov eax, SYS_mount              # mount(".", "/", NULL, MS_MOVE, NULL)
        lea rdi, [rip + dot]
        lea rsi, [rip + slash]
        xor edx, edx
        mov r10d, MS_MOVE
        xor r8d, r8d
        syscall
        test eax, eax
        jnz fail
        mov eax, SYS_chroot
        lea rdi, [rip + dot]
        syscall
        test eax, eax
        jnz fail
        mov eax, SYS_chdir
        lea rdi, [rip + slash]
        syscall

        lea rax, [rip + sh]             # execve("/bin/sh", {"/bin/sh", "-c", stage2}, {})
        mov [rip + argv], rax
        lea rax, [rip + dash_c]
        mov [rip + argv + 8], rax
        lea rax, [rip + stage2]
        mov [rip + argv + 16], rax
        mov eax, SYS_execve
        lea rdi, [rip + sh]
        lea rsi, [rip + argv]
        lea rdx, [rip + envp]
        syscall
        lea r15, [rip + msg_exec]

# Writes the NUL-terminated message at r15 to stderr, then ends the VM with 125.
fail:   mov rsi, r15
        xor edx, edx
5:      cmp byte ptr [rsi + rdx], 0
        je 6f
        inc edx
        jmp 5b
6:      mov eax, SYS_write
        mov edi, 2
        syscall
        mov eax, 125
        out 0xf4, al
        mov eax, SYS_exit
        mov edi, 125
        syscall

        .data
module_path:    .ascii "/modules/"
module_letter:  .ascii "a"
                .asciz ".ko"
empty:          .asciz ""
exit_helper:    .asciz "/tinyvmm-exit"
stage2_path:    .asciz "/stage2"
tag:            .asciz "rootfs"
newroot:        .asciz "/newroot"
fstype:         .asciz "virtiofs"
dot:            .asciz "."
slash:          .asciz "/"
sh:             .asciz "/bin/sh"
dash_c:         .asciz "-c"
msg_helper:     .asciz "tinyvmm rootfs-init: cannot open /tinyvmm-exit\n"
msg_stage2:     .asciz "tinyvmm rootfs-init: cannot read /stage2\n"
msg_mount:      .asciz "tinyvmm rootfs-init: cannot mount the virtio-fs tag rootfs (no virtiofs module in DIR/lib/modules for this kernel?)\n"
msg_switch:     .asciz "tinyvmm rootfs-init: cannot move the virtio-fs root onto /\n"
msg_exec:       .asciz "tinyvmm rootfs-init: cannot run /bin/sh of DIR\n"
        .align 8
argv:           .quad 0, 0, 0, 0
envp:           .quad 0

        .bss
stage2:         .skip STAGE2_MAX + 1
