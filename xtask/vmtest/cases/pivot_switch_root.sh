# needs: pivot
# switch_root compatibility (pivot invoked as switch_root) from a tmpfs standing in for the
# initramfs: /proc /sys /dev /run move into the new root, INIT runs there, and the old root's contents
# are deleted, but never across a mount.
unshare -m sh -c '
    set -e
    f=/tmp/fake
    mkdir -p $f /tmp/fake-view /tmp/keep-view
    mount -t tmpfs fake $f
    mount --bind $f /tmp/fake-view
    mkdir -p $f/bin $f/proc $f/sys $f/dev $f/run $f/new $f/keep $f/old-dir/sub
    cp /bin/busybox $f/bin/busybox
    ln -s busybox $f/bin/sh
    # The shared libraries of a dynamically linked pivot (a static build has none).
    for d in /lib /lib64; do
        if [ -e $d ]; then cp -a $d $f/; fi
    done
    cp /usr/local/bin/pivot $f/bin/pivot
    ln -s pivot $f/bin/switch_root
    echo old >$f/old-file
    echo old >$f/old-dir/sub/file
    mount -t tmpfs keep /tmp/keep-view
    echo precious >/tmp/keep-view/precious
    mount --bind /tmp/keep-view $f/keep
    mount -t tmpfs new $f/new
    mkdir -p $f/new/bin $f/new/proc $f/new/sys $f/new/dev $f/new/run
    cp /bin/busybox $f/new/bin/busybox
    /bin/busybox --install -s $f/new/bin
    printf "%s\n" "#!/bin/sh" "echo init-ran" "ls /" "cat /run/marker" "cut -d\" \" -f5 /proc/self/mountinfo" "exit 4" >$f/new/check
    chmod +x $f/new/check
    mount -t proc proc $f/proc
    mount -t sysfs sys $f/sys
    mount -t devtmpfs dev $f/dev
    mount -t tmpfs run $f/run
    echo carried >$f/run/marker
    set +e
    chroot $f /bin/switch_root /new /check >out 2>err
    echo "status $?" >>out
    ls -A /tmp/fake-view >left
    ls -A /tmp/keep-view >kept
'
cat out err left kept
expect_eq "$(head -n 1 out)" init-ran "INIT ran in the new root"
expect_eq "$(tail -n 1 out)" "status 4" "INIT's exit status"
grep -qx carried out || fail "/run's contents did not come along"
for m in /proc /sys /dev /run; do
    grep -qx "$m" out || fail "$m was not moved into the new root"
done
grep -qx old-file out && fail "the old root is still / after switch_root"
grep -q "old-file\|old-dir\|busybox\|bin" left && fail "the old root's contents were not deleted: $(cat left)"
expect_eq "$(cat kept)" precious "a file on another mount below the old root survives"
