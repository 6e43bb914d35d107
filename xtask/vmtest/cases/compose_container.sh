# needs: cgctl unshare-rs pivot
# The README's container in one pipeline, on pure cgroup v2 and from the initramfs:
# cgctl run (limits) -> unshare-rs (namespaces) -> pivot (root filesystem) -> sh as PID 1.
mkdir -p /tmp/ctr
mount -t tmpfs ctr /tmp/ctr
trap 'umount /tmp/ctr' EXIT
mkdir -p /tmp/ctr/bin /tmp/ctr/tmp
cp /bin/busybox /tmp/ctr/bin/busybox
/bin/busybox --install -s /tmp/ctr/bin
cgctl run --name vmtest-ctr --memory 64M --pids 20 --report r.json -- \
    unshare-rs -fpmuin --mount-proc -- pivot /tmp/ctr /bin/sh -c \
    'echo "pid $$"; cat /proc/self/cgroup; hostname ctr; hostname; ls /; cut -d" " -f5 /proc/self/mountinfo; ps -o pid,comm; exit 6' >out 2>err
rc=$?
cat out err r.json
expect_eq "$rc" 6 "the container's exit status through all three tools"
expect_eq "$(head -n 1 out)" "pid 1" "sh is PID 1"
expect_eq "$(sed -n 2p out)" "0::/vmtest-ctr" "the container's cgroup"
expect_eq "$(sed -n 3p out)" ctr "hostname inside"
[ "$(hostname)" != ctr ] || fail "the hostname leaked out"
grep -qx vmtest out && fail "the initramfs's /vmtest is visible in the container"
grep -qx /sys/fs/cgroup out && fail "the guest's cgroup mount is visible in the container"
expect_contains "$(cat out)" "/proc" "the container's own /proc"
expect_eq "$(grep -cE '^ +[0-9]+ ' out)" 2 "processes the container sees (sh and ps)"
expect_eq "$(json_field r.json exit_code)" 6 "cgctl's report of the exit code"
[ -d /sys/fs/cgroup/vmtest-ctr ] && fail "the container's group is left behind"
umount /tmp/ctr
trap - EXIT
