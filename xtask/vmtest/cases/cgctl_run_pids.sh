# needs: cgctl
# run --pids 5: forks beyond the limit fail and the report counts them (pids.events max).
cgctl run --pids 5 --report r.json -- sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.3 & done; wait' 2>err
echo "exit $?"; cat err r.json
hits=$(json_field r.json pids_limit_hits)
[ -n "$hits" ] && [ "$hits" -ge 1 ] || fail "pids_limit_hits should be >= 1, is '$hits'"
expect_contains "$(cat err)" "fork" "the shell's fork error"
