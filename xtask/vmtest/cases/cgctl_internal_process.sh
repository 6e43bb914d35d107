# needs: cgctl
# The v2 no-internal-process rule. When cgctl itself is the only process in --parent P, it steps
# aside into a leaf of P (P/cgctl-leaf-PID) so that P may enable memory for the run's group,
# runs the command there under the limit, then disables what it enabled in P, moves back and
# removes the leaf: P is as before. When other processes live in P too, enabling memory is
# EBUSY: cgctl says so in one line, exits 1 and leaves nothing behind.
p=/sys/fs/cgroup/vmtest-internal
mkdir $p || fail "mkdir $p"
trap 'for d in $(find $p -mindepth 1 -type d | sort -r) $p; do cg_remove $d; done' EXIT
cgctl exec vmtest-internal -- cgctl run --parent vmtest-internal --name job --memory 32M --json -- \
    sh -c "cat /proc/self/cgroup; cat $p/job/memory.max; cat /proc/\$PPID/cgroup" >out 2>err
rc=$?
cat out err
expect_eq "$rc" 0 "exit status when cgctl is P's only process"
expect_eq "$(sed -n 1p out)" "0::/vmtest-internal/job" "the command's cgroup"
expect_eq "$(sed -n 2p out)" "33554432" "the command's memory.max"
expect_contains "$(sed -n 3p out)" "0::/vmtest-internal/cgctl-leaf-" "cgctl's own cgroup during the run"
expect_eq "$(json_field err exit_code)" 0 "the report's exit_code"
expect_eq "$(find $p -mindepth 1 -type d)" "" "groups left under P"
expect_eq "$(cat $p/cgroup.subtree_control)" "" "P's subtree_control afterwards"
# Another process in P: the rule stands, and the error says so.
cgctl exec vmtest-internal -- sleep 30 &
sleeper=$!
wait_for "sleep in P" '[ -n "$(cat $p/cgroup.procs)" ]'
cgctl exec vmtest-internal -- cgctl run --parent vmtest-internal --memory 32M -- true 2>err
rc=$?
cat err
kill $sleeper
wait $sleeper
expect_eq "$rc" 1 "exit status when P holds other processes"
expect_eq "$(wc -l <err)" 1 "lines on stderr"
expect_contains "$(cat err)" "Device or resource busy" "the error"
expect_contains "$(cat err)" "$p/cgroup.subtree_control" "the error names the file"
expect_eq "$(find $p -mindepth 1 -type d)" "" "groups left under P"
expect_eq "$(cat $p/cgroup.subtree_control)" "" "P's subtree_control"
