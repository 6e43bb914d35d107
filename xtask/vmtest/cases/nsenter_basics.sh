# needs: nsenter-rs
# nsenter-rs on the 6.1 guest kernel: joins the uts/ipc/net/mnt/pid namespaces of a process that
# busybox unshare made (pidfd-based setns exists since 5.8), runs a program there, and refuses
# PID:INODE addressing with a clear reason because 6.1 has no pidfs (6.9+).
unshare -u -i -n -m -p -f --mount-proc sh -c \
    'hostname vmtest-ns; mount -t tmpfs vmt /mnt; echo inside >/mnt/marker; exec sleep 61' &
upid=$!
trap 'kill -9 $upid $spid 2>/dev/null; wait' EXIT
wait_for "the namespaced sleep" "pidof sleep >/dev/null"
spid=$(pidof sleep)
wait_for "its hostname" '[ "$(nsenter-rs -t "$spid" -u hostname)" = vmtest-ns ]'

for ns in uts ipc net pid; do
    case $ns in uts) f=-u ;; ipc) f=-i ;; net) f=-n ;; pid) f=-p ;; esac
    want=$(readlink /proc/$spid/ns/$ns)
    [ "$want" != "$(readlink /proc/self/ns/$ns)" ] || fail "the target is not in its own $ns namespace"
    got=$(nsenter-rs -t "$spid" $f -- readlink /proc/self/ns/$ns) || fail "nsenter-rs $f exited $?"
    expect_eq "$got" "$want" "$ns namespace after nsenter-rs $f"
done

# Its mount namespace has a tmpfs on /mnt that ours does not.
[ -e /mnt/marker ] && fail "the target's /mnt tmpfs is visible outside"
expect_eq "$(nsenter-rs -t "$spid" -m -- cat /mnt/marker)" inside "/mnt/marker after nsenter-rs -m"

# In its pid and mount namespaces (with the /proc that unshare mounted) the sleep is PID 1.
out=$(nsenter-rs -t "$spid" -p -m -- sh -c 'echo $$; cat /proc/1/cmdline | tr "\0" " "') ||
    fail "nsenter-rs -p -m exited $?"
echo "$out"
expect_eq "$(echo "$out" | tail -n 1)" "sleep 61 " "PID 1 as seen in the entered namespaces"
[ "$(echo "$out" | head -n 1)" -gt 1 ] || fail "the program should not be PID 1"

# -a enters every namespace the target has; the exit status comes back.
nsenter-rs -t "$spid" -a -- sh -c 'exit 5'
expect_eq "$?" 5 "exit status through nsenter-rs -a"

# --ls marks the namespaces that differ from PID 1's.
ls_out=$(nsenter-rs -t "$spid" --ls --json) || fail "--ls exited $?"
echo "$ls_out"
expect_contains "$ls_out" '"differs_from_pid1":true,"inode":'"$(readlink /proc/$spid/ns/uts | tr -dc 0-9)"',' "--ls uts line"

# No pidfs on 6.1: PID:INODE is refused with the reason, nothing runs.
err=$(nsenter-rs -t "$spid:12345" -u true 2>&1)
expect_eq "$?" 1 "exit status of PID:INODE on a kernel without pidfs"
expect_contains "$err" "pidfs" "PID:INODE error"
