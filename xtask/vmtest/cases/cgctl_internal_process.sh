# needs: cgctl
# The v2 no-internal-process rule: with cgctl itself inside --parent P, enabling the memory
# controller for P's children is EBUSY; cgctl says so in one line, exits 1 and leaves nothing
# behind. (cgctl run enables memory/cpu/pids for its report even without limits, so a run under
# a populated P fails the same way; not asserted here.)
p=/sys/fs/cgroup/vmtest-internal
mkdir $p || fail "mkdir $p"
trap 'for d in $(find $p -mindepth 1 -type d | sort -r) $p; do cg_remove $d; done' EXIT
cgctl exec vmtest-internal -- cgctl run --parent vmtest-internal --memory 32M -- true 2>err
rc=$?
cat err
expect_eq "$rc" 1 "exit status when P holds processes and a controller is needed"
expect_eq "$(wc -l <err)" 1 "lines on stderr"
expect_contains "$(cat err)" "Device or resource busy" "the error"
expect_contains "$(cat err)" "$p/cgroup.subtree_control" "the error names the file"
expect_eq "$(find $p -mindepth 1 -type d)" "" "groups left under P"
expect_eq "$(cat $p/cgroup.subtree_control)" "" "P's subtree_control"

