# needs: cgctl
# run places the command in the new group (clone3 CLONE_INTO_CGROUP on v2), exits with its
# status, and removes the group afterwards; a nested --parent works under the no-internal-process rule.
out=$(cgctl run --name vmtest-into -- cat /proc/self/cgroup) || fail "run exited $?"
expect_eq "$out" "0::/vmtest-into" "the command's own cgroup"
[ -d /sys/fs/cgroup/vmtest-into ] && fail "the group is left behind"
cgctl run -- sh -c 'exit 7'
expect_eq "$?" 7 "the command's exit status"
mkdir /sys/fs/cgroup/vmtest-parent || fail "mkdir parent"
trap 'cg_remove /sys/fs/cgroup/vmtest-parent' EXIT
out=$(cgctl run --parent vmtest-parent --name job --memory 64M --pids 10 -- cat /proc/self/cgroup) ||
    fail "nested run exited $?"
expect_eq "$out" "0::/vmtest-parent/job" "the nested command's cgroup"
[ -d /sys/fs/cgroup/vmtest-parent/job ] && fail "the nested group is left behind"
rmdir /sys/fs/cgroup/vmtest-parent || fail "parent not empty"
trap - EXIT
