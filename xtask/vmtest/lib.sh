# Helpers every guest test case gets (sourced before the case): each exits the case with status 1
# and one line saying what was expected.

fail() {
    echo "FAIL: $*"
    exit 1
}

# expect_eq ACTUAL EXPECTED WHAT
expect_eq() {
    [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

# expect_contains HAYSTACK NEEDLE WHAT
expect_contains() {
    case "$1" in
    *"$2"*) ;;
    *) fail "$3: '$2' not found in: $1" ;;
    esac
}

# expect_status EXPECTED WHAT CMD...: runs CMD, output to stdout, and checks its exit status.
expect_status() {
    want=$1
    what=$2
    shift 2
    "$@"
    got=$?
    [ "$got" = "$want" ] || fail "$what: expected exit $want, got $got from: $*"
}

# A cgroup v2 key's value: cg_key FILE KEY (e.g. cg_key memory.events oom_kill).
cg_key() {
    awk -v k="$2" '$1 == k { print $2 }' "$1"
}

# cg_remove DIR: kills what is left in a cgroup the case made, waits until it is empty, removes it.
cg_remove() {
    [ -d "$1" ] || return 0
    echo 1 >"$1/cgroup.kill" 2>/dev/null
    i=0
    while [ "$(cg_key "$1/cgroup.events" populated)" = 1 ] && [ $i -lt 100 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    rmdir "$1"
}

# json_field FILE KEY: a scalar of a one-line JSON object (serde_json's compact form).
json_field() {
    sed -n 's/.*"'"$2"'":\([^,}]*\).*/\1/p' "$1"
}

# wait_for WHAT 'SHELL CONDITION': evaluates the condition (a string, so that command
# substitutions in it run every time) until it holds, for up to 10 s.
wait_for() {
    i=0
    until eval "$2"; do
        i=$((i + 1))
        [ $i -lt 200 ] || fail "timed out waiting for $1 ($2)"
        sleep 0.05
    done
}
