# needs: cgctl
# needs-test: cgctl real
# cgctl's own integration tests that need cgroup v2 with the memory and pids controllers, which
# the development host (v1/v2 hybrid) lacks: run here, where the kernel has them. Required, so
# that a missing capability fails instead of skipping.
out=$(MICROTOOLS_REQUIRE=root,cgroupv2 cgctl-real-tests --exact \
    v2_controllers_for_real_where_the_host_has_them --test-threads=1 2>&1)
rc=$?
echo "$out"
expect_eq "$rc" 0 "exit status of cgctl-real-tests"
expect_contains "$out" "test result: ok. 1 passed" "the v2 test ran and passed"
