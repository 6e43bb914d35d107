# needs: unshare-rs nsenter-rs
# --uts=FILE and --net=FILE keep a namespace alive by a bind mount on FILE after the program
# ended; nsenter-rs joins it through the file; umount lets it go.
touch /run/vmtest-uts /run/vmtest-net
trap 'umount /run/vmtest-uts /run/vmtest-net 2>/dev/null; rm -f /run/vmtest-uts /run/vmtest-net' EXIT
unshare-rs --uts=/run/vmtest-uts --net=/run/vmtest-net hostname persisted || fail "unshare-rs exited $?"
grep -q " /run/vmtest-uts " /proc/self/mountinfo || fail "no bind mount on /run/vmtest-uts"
expect_eq "$(nsenter-rs --uts=/run/vmtest-uts hostname)" persisted "hostname in the persisted UTS namespace"
[ "$(hostname)" != persisted ] || fail "the hostname leaked out"
inner=$(nsenter-rs --net=/run/vmtest-net readlink /proc/self/ns/net) || fail "nsenter-rs --net=FILE exited $?"
[ "$inner" != "$(readlink /proc/self/ns/net)" ] || fail "nsenter-rs --net=FILE stayed in our network namespace"
expect_eq "$(nsenter-rs --net=/run/vmtest-net ip -o link | wc -l)" 1 "links in the persisted network namespace (lo only)"
umount /run/vmtest-uts /run/vmtest-net || fail "umount"
trap - EXIT
rm -f /run/vmtest-uts /run/vmtest-net
