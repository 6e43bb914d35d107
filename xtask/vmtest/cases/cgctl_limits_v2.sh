# needs: cgctl
# create/set/get write the v2 interface files themselves (the host has only v1 for these).
g=vmtest-limits
d=/sys/fs/cgroup/$g
trap 'cg_remove $d' EXIT
cgctl create $g --memory 64M --memory-high 48M --pids 10 --cpus 0.5 --cpu-weight 200 --cpuset 0 --mems 0 ||
    fail "create exited $?"
expect_eq "$(cat $d/memory.max)" 67108864 "memory.max"
expect_eq "$(cat $d/memory.high)" 50331648 "memory.high"
expect_eq "$(cat $d/pids.max)" 10 "pids.max"
expect_eq "$(cat $d/cpu.max)" "50000 100000" "cpu.max"
expect_eq "$(cat $d/cpu.weight)" 200 "cpu.weight"
expect_eq "$(cat $d/cpuset.cpus)" 0 "cpuset.cpus"
expect_eq "$(cat $d/cpuset.mems)" 0 "cpuset.mems"
cgctl set $g --memory max --pids max --cpus max --set memory.swap.max=0 || fail "set exited $?"
expect_eq "$(cat $d/memory.max)" max "memory.max after set max"
expect_eq "$(cat $d/pids.max)" max "pids.max after set max"
expect_eq "$(cut -d' ' -f1 $d/cpu.max)" max "cpu.max quota after set max"
expect_eq "$(cat $d/memory.swap.max)" 0 "memory.swap.max via --set"
out=$(cgctl get $g memory.high cpu.weight) || fail "get exited $?"
echo "$out"
expect_contains "$out" 50331648 "get memory.high"
expect_contains "$out" 200 "get cpu.weight"
cgctl set $g --memory 12Q 2>err && fail "a malformed size was accepted"
expect_eq "$(wc -l <err)" 1 "lines on stderr for a malformed size"
cgctl delete $g || fail "delete exited $?"
[ -d $d ] && fail "$g still exists after delete"
trap - EXIT
