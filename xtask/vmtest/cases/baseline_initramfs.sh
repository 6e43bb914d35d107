# The lane itself: the root is the kernel's initramfs (rootfs), so pivot_root(2) of the real
# root is refused there, which is what pivot's MS_MOVE + chroot fallback exists for.
root_fs=$(awk '$2 == "/" { print $3; exit }' /proc/mounts)
expect_eq "$root_fs" rootfs "filesystem type of /"
expect_eq "$$" "$$" "shell runs"
[ -c /dev/console ] || fail "/dev/console is not a character device"
# busybox pivot_root fails on the initramfs root with EINVAL.
unshare -m sh -c 'mkdir -p /tmp/nr && mount -t tmpfs t /tmp/nr && mkdir /tmp/nr/old && cd /tmp/nr && pivot_root . old' 2>/tmp/pr.err
rc=$?
[ "$rc" != 0 ] || fail "pivot_root of the initramfs root succeeded"
expect_contains "$(cat /tmp/pr.err)" "nvalid argument" "pivot_root error"
