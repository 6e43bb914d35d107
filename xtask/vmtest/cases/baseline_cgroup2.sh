# The lane itself, with busybox and the kernel only: the guest has a pure cgroup v2 hierarchy
# with real controllers, which the host does not, and limits set there are enforced.
expect_eq "$(uname -r | cut -d. -f1-2)" "6.1" "guest kernel version"
ctrls=$(cat /sys/fs/cgroup/cgroup.controllers)
for c in cpu io memory pids; do
    expect_contains " $ctrls " " $c " "cgroup2 root controllers"
done
grep -q ' - cgroup ' /proc/self/mountinfo && fail "a cgroup v1 hierarchy is mounted"
expect_eq "$(cat /proc/self/cgroup)" "0::/" "init's cgroup"

echo "+memory +pids +cpu" > /sys/fs/cgroup/cgroup.subtree_control || fail "enable controllers"
g=/sys/fs/cgroup/vmtest-baseline
mkdir $g || fail "mkdir $g"
trap "cg_remove $g" EXIT
echo 32M > $g/memory.max
echo 0 > $g/memory.swap.max 2>/dev/null
# A 100 MiB dd buffer cannot fit under 32 MiB: the OOM killer ends it.
sh -c "echo \$\$ > $g/cgroup.procs; exec dd if=/dev/zero of=/dev/null bs=100M count=1" 2>/dev/null
rc=$?
expect_eq "$rc" 137 "dd under memory.max=32M exit status"
expect_eq "$(cg_key $g/memory.events oom_kill)" 1 "memory.events oom_kill"

echo 5 > $g/pids.max
sh -c "echo \$\$ > $g/cgroup.procs; for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait" 2>/dev/null
max_hits=$(cg_key $g/pids.events max)
[ "$max_hits" -ge 1 ] || fail "pids.events max should count refused forks, is $max_hits"
cg_remove $g || fail "remove $g"
