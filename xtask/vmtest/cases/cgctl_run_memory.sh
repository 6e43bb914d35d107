# needs: cgctl
# run --memory 32M: a 100 MiB buffer is OOM-killed (SIGKILL, oom_killed true from memory.events);
# a 16 MiB one fits (oom_killed false).
cgctl run --memory 32M --report big.json -- dd if=/dev/zero of=/dev/null bs=100M count=1
rc=$?
cat big.json
expect_eq "$rc" 137 "exit status of the OOM-killed command as the shell sees it"
expect_eq "$(json_field big.json oom_killed)" true "oom_killed"
expect_eq "$(json_field big.json signal)" 9 "signal"
kills=$(json_field big.json oom_kills)
[ "$kills" -ge 1 ] || fail "oom_kills should be >= 1, is '$kills'"
peak=$(json_field big.json memory_peak_bytes)
[ "$peak" -le $((32 * 1024 * 1024)) ] && [ "$peak" -gt $((16 * 1024 * 1024)) ] ||
    fail "memory_peak_bytes $peak should be near the 32M limit"

cgctl run --memory 32M --report small.json -- dd if=/dev/zero of=/dev/null bs=16M count=1
expect_eq "$?" 0 "exit status of the command that fits"
cat small.json
expect_eq "$(json_field small.json oom_killed)" false "oom_killed when it fits"
