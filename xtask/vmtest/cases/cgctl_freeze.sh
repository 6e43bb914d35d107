# needs: cgctl
# freeze/thaw go through cgroup.freeze and wait for cgroup.events "frozen".
g=vmtest-freeze
trap 'cg_remove /sys/fs/cgroup/$g' EXIT
cgctl create $g || fail "create exited $?"
cgctl exec $g -- sh -c 'while :; do sleep 0.1; done' &
wait_for "a process in $g" "grep -q . /sys/fs/cgroup/$g/cgroup.procs"
cgctl freeze $g || fail "freeze exited $?"
expect_eq "$(cat /sys/fs/cgroup/$g/cgroup.freeze)" 1 "cgroup.freeze after freeze"
expect_eq "$(cg_key /sys/fs/cgroup/$g/cgroup.events frozen)" 1 "frozen after freeze"
pids=$(cgctl pids $g) || fail "pids exited $?"
expect_eq "$pids" "$(cat /sys/fs/cgroup/$g/cgroup.procs)" "cgctl pids"
cgctl thaw $g || fail "thaw exited $?"
expect_eq "$(cg_key /sys/fs/cgroup/$g/cgroup.events frozen)" 0 "frozen after thaw"
cgctl kill $g || fail "kill exited $?"
wait
cgctl delete $g || fail "delete exited $?"
[ -d /sys/fs/cgroup/$g ] && fail "$g still exists after delete"
trap - EXIT
