# needs: pivot
# From the initramfs root, pivot_root(2) is refused (EINVAL), so pivot falls back to MS_MOVE +
# chroot: the program runs in the new root with a fresh /proc and /dev, and the status comes back.
unshare -m sh -c '
    set -e
    mkdir -p /tmp/nr
    mount -t tmpfs nr /tmp/nr
    mkdir -p /tmp/nr/bin /tmp/nr/tmp
    cp /bin/busybox /tmp/nr/bin/busybox
    /bin/busybox --install -s /tmp/nr/bin
    echo new-root >/tmp/nr/marker
    set +e
    pivot -v /tmp/nr /bin/sh -c "cat /marker; ls /; test -c /dev/null && echo devnull-ok; \
        grep \" / / \" /proc/self/mountinfo | sed \"s/.* - /root: /\"; exit 3" >out 2>err
    echo "status $?" >>out
' 
cat out err
expect_contains "$(cat err)" "falling back to" "pivot -v on the initramfs"
expect_contains "$(cat err)" "MS_MOVE" "pivot -v on the initramfs"
expect_eq "$(head -n 1 out)" new-root "the marker of the new root"
expect_contains "$(cat out)" devnull-ok "/dev/null in the new root"
expect_contains "$(cat out)" "root: tmpfs nr " "/ is the new root's tmpfs"
grep -qx vmtest out && fail "the old root's /vmtest is visible after pivot"
expect_eq "$(tail -n 1 out)" "status 3" "the program's exit status"
