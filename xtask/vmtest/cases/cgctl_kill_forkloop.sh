# needs: cgctl
# kill under a fork loop: cgroup.kill takes every process at once, so nothing escapes, and the
# group can be deleted right after.
g=vmtest-forkloop
d=/sys/fs/cgroup/$g
trap 'cg_remove $d' EXIT
cgctl create $g --pids 40 || fail "create exited $?"
cgctl exec $g -- sh -c 'while :; do (sleep 5 &) 2>/dev/null; done' 2>/dev/null &
wait_for "the fork loop to fill $g" '[ "$(cat $d/pids.current)" -ge 10 ]'
cgctl kill $g || fail "kill exited $?"
wait_for "$g to be empty" '[ "$(cg_key $d/cgroup.events populated)" = 0 ]'
wait
expect_eq "$(cat $d/cgroup.procs)" "" "processes left in $g"
expect_eq "$(pidof sleep)" "" "sleep processes left anywhere"
cgctl delete $g || fail "delete exited $?"
trap - EXIT
