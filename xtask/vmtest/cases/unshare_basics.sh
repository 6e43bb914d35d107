# needs: unshare-rs
# unshare-rs on the 6.1 guest kernel: every namespace kind, a pid namespace with its own /proc,
# time namespace offsets, the exit status, and --lo-up.
out=$(unshare-rs -u -i -n -m -p -C -f --mount-proc sh -c \
    'echo $$; for n in uts ipc net mnt pid cgroup; do readlink /proc/self/ns/$n; done; cat /proc/self/cgroup; hostname inner; hostname') ||
    fail "unshare-rs exited $?"
echo "$out"
expect_eq "$(echo "$out" | head -n 1)" 1 "the program's pid in the new pid namespace"
for n in uts ipc net mnt pid cgroup; do
    outer=$(readlink /proc/self/ns/$n)
    echo "$out" | grep -qx "$outer" && fail "$n namespace was not unshared ($outer)"
done
expect_eq "$(echo "$out" | grep '^0::')" "0::/" "cgroup path in the new cgroup namespace"
expect_eq "$(echo "$out" | tail -n 1)" inner "hostname set inside"
[ "$(hostname)" != inner ] || fail "the hostname leaked out of the UTS namespace"

# Time namespace (Linux 5.6+): the offsets are visible in timens_offsets and in /proc/uptime.
out=$(unshare-rs -T --monotonic 1000 --boottime 2000 -f sh -c 'tr -s " " </proc/self/timens_offsets; cut -d. -f1 /proc/uptime') ||
    fail "unshare-rs -T exited $?"
echo "$out"
expect_contains "$out" "monotonic 1000 0" "monotonic offset"
expect_contains "$out" "boottime 2000 0" "boottime offset"
up=$(echo "$out" | tail -n 1)
[ "$up" -ge 2000 ] || fail "uptime in the time namespace should be >= 2000 s, is $up"
outer_up=$(cut -d. -f1 /proc/uptime)
[ "$outer_up" -lt 2000 ] || fail "the guest's own uptime should be small, is $outer_up"

# Exit status and signals pass through.
unshare-rs -p -f sh -c 'exit 9'
expect_eq "$?" 9 "exit status through unshare-rs -p -f"
unshare-rs -f sh -c 'kill -TERM $$'
expect_eq "$?" 143 "status of a child killed by SIGTERM"

# --lo-up: loopback is up in the new network namespace.
out=$(unshare-rs -n --lo-up ip link show lo) || fail "unshare-rs -n --lo-up exited $?"
echo "$out"
expect_contains "$out" "UP" "lo flags"
out=$(unshare-rs -n ip link show lo)
case "$out" in *"<LOOPBACK,UP"*) fail "lo is up without --lo-up: $out" ;; esac
