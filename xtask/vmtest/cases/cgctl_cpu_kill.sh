# needs: cgctl
# --cpus 0.2 is cpu.max "20000 100000" and a busy loop gets throttled (cpu.stat nr_throttled);
# the same through run's report; kill empties the group through cgroup.kill; delete removes it.
g=vmtest-cpu
trap 'cg_remove /sys/fs/cgroup/$g' EXIT
cgctl create $g --cpus 0.2 || fail "create exited $?"
expect_eq "$(cat /sys/fs/cgroup/$g/cpu.max)" "20000 100000" "cpu.max"
cgctl exec $g -- sh -c 'while :; do :; done' &
wait_for "the busy loop in $g" "grep -q . /sys/fs/cgroup/$g/cgroup.procs"
sleep 1
thr=$(cg_key /sys/fs/cgroup/$g/cpu.stat nr_throttled)
[ "$thr" -ge 1 ] || fail "nr_throttled should be >= 1 after 1 s of busy loop at 0.2 cpus, is $thr"
cgctl kill $g || fail "kill exited $?"
wait_for "$g to be empty" '[ "$(cg_key /sys/fs/cgroup/$g/cgroup.events populated)" = 0 ]'
wait
cgctl delete $g || fail "delete exited $?"
[ -d /sys/fs/cgroup/$g ] && fail "$g still exists after delete"
trap - EXIT

# The same limit through run: the report carries cpu.stat's nr_throttled.
cgctl run --cpus 0.2 --report r.json -- timeout 1 sh -c 'while :; do :; done'
cat r.json
thr=$(json_field r.json cpu_nr_throttled)
[ "$thr" -ge 1 ] || fail "the report's cpu_nr_throttled should be >= 1, is '$thr'"
