# needs: unshare-rs nsenter-rs
# nsenter-rs -T joins a time namespace made by unshare-rs: its boottime offset shows in /proc/uptime.
unshare-rs -T --boottime 3000 -f sleep 62 &
upid=$!
trap 'kill -9 $upid $spid 2>/dev/null; wait' EXIT
wait_for "the sleep in its time namespace" "pidof sleep >/dev/null"
spid=$(pidof sleep)
[ "$(readlink /proc/$spid/ns/time)" != "$(readlink /proc/self/ns/time)" ] || fail "sleep is not in a new time namespace"
up=$(nsenter-rs -t "$spid" -T cut -d. -f1 /proc/uptime) || fail "nsenter-rs -T exited $?"
[ "$up" -ge 3000 ] || fail "uptime after nsenter-rs -T should be >= 3000 s, is $up"
expect_eq "$(nsenter-rs -t "$spid" -T readlink /proc/self/ns/time)" "$(readlink /proc/$spid/ns/time)" "time namespace after -T"
