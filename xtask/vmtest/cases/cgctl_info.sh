# needs: cgctl
# cgctl info on a pure cgroup v2 guest: layout "unified", every controller of the root routed to v2.
out=$(cgctl info) || fail "cgctl info exited $?: $out"
echo "$out"
expect_contains "$out" "layout: unified" "layout"
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    expect_contains "$out" "  $c v2 /sys/fs/cgroup" "route of $c"
done
json=$(cgctl info --json) || fail "cgctl info --json exited $?"
expect_contains "$json" '"layout":"unified"' "JSON layout"
