# needs: pivot
# switch_root from a stand-in initramfs (a tmpfs) that has no /proc mounted and holds a directory
# chain 15,000 levels deep: NEWROOT is still recognised as a mount point (statx, not mountinfo),
# INIT runs, and the whole chain is deleted (a recursive deletion overflowed the stack here).
unshare -m sh -c '
    set -e
    f=/tmp/fake
    mkdir -p $f /tmp/fake-view
    mount -t tmpfs fake $f
    mount --bind $f /tmp/fake-view
    mkdir -p $f/bin $f/new
    cp /bin/busybox $f/bin/busybox
    ln -s busybox $f/bin/sh
    # The shared libraries of a dynamically linked pivot (a static build has none).
    for d in /lib /lib64; do
        if [ -e $d ]; then cp -a $d $f/; fi
    done
    cp /usr/local/bin/pivot $f/bin/pivot
    mount -t tmpfs new $f/new
    mkdir -p $f/new/bin
    cp /bin/busybox $f/new/bin/busybox
    ln -s busybox $f/new/bin/sh
    step=d; i=1; while [ $i -lt 2000 ]; do step=$step/d; i=$((i+1)); done
    (
        cd $f
        mkdir -p $step
        mv d chain
        i=0; while [ $i -lt 7 ]; do mkdir -p $step; mv chain $step/chain; mv d chain; i=$((i+1)); done
    )
    set +e
    chroot $f /bin/pivot switch-root /new /bin/sh -c "echo init-ran; exit 5" >out 2>err
    echo "status $?" >>out
    ls -A /tmp/fake-view >left
'
cat out err left
expect_eq "$(head -n 1 out)" init-ran "INIT ran in the new root without /proc"
expect_eq "$(tail -n 1 out)" "status 5" "INIT's exit status"
expect_eq "$(cat err)" "" "switch_root's stderr"
expect_eq "$(cat left)" "" "the old root's contents, the 15,000-deep chain included, are deleted"
