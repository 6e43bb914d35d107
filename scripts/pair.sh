#!/bin/sh
# pair.sh: two containers, each in its own network namespace, joined by a veth pair.
#
# It shows that a container's network is a namespace like any other: two containers start with
# only a loopback interface; one veth pair is created from inside the first container's network
# namespace with its peer placed directly in the second's (so no interface ever exists in the
# host's namespace); each end gets an address on the private test subnet 10.200.0.0/30; then
# container a pings container b. All traffic stays inside the two namespaces this script created.
# On exit (normal, error or signal) both containers are killed by PID, which removes their
# namespaces and the veth pair with them.
#
# Usage: pair.sh [ROOTFS]   (default: $MICROTOOLS_ROOTFS, else target/rootfs next to this script)
# Needs root, and unshare-rs, nsenter-rs, pivot and iproute2's ip on PATH.
set -eu

case ${1:-} in
    -h | --help)
        echo "usage: pair.sh [ROOTFS]   (default: \$MICROTOOLS_ROOTFS, else target/rootfs next to this script)"
        echo "Two containers in two network namespaces joined by a veth pair; a pings b. Needs root, and unshare-rs, nsenter-rs, pivot and ip on PATH."
        echo "Example (as root, from the clone): PATH=\"\$PWD/target/x86_64-unknown-linux-gnu/release:\$PATH\" scripts/pair.sh target/rootfs"
        exit 0 ;;
    -?*) echo "$0: unknown option $1 (try --help)" >&2; exit 1 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
rootfs=${1:-${MICROTOOLS_ROOTFS:-$here/../target/rootfs}}
[ -d "$rootfs" ] || { echo "$0: no rootfs at $rootfs (build one: cargo xtask rootfs)" >&2; exit 1; }
subnet_a=10.200.0.1
subnet_b=10.200.0.2

dir=$(mktemp -d "${TMPDIR:-/tmp}/microtools-pair.XXXXXX")
pids=
cleanup() {
    for p in $pids; do
        kill -KILL "$p" 2>/dev/null || true
    done
    for p in $pids; do
        # Reap our own background jobs; the inner PIDs die with them.
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The PID of a container's first process, from the report unshare-rs writes before it execs.
container_pid() { # REPORT LAUNCHER_PID
    i=0
    while [ ! -s "$1" ]; do
        kill -0 "$2" 2>/dev/null || { echo "$0: the container writing $1 exited early" >&2; return 1; }
        i=$((i + 1))
        [ $i -le 100 ] || { echo "$0: no report at $1 after 5 s" >&2; return 1; }
        sleep 0.05
    done
    sed -n 's/.*"pid"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$1"
}

start() { # NAME: a container holding its namespaces, sleeping until killed
    unshare-rs -fpmuin --lo-up --kill-child --report="$dir/$1.json" -- \
        pivot --hostname "$1" "$rootfs" /bin/sleep 3600 &
    pids="$pids $!"
    launcher=$!
}

start a
launcher_a=$launcher
start b
launcher_b=$launcher
pid_a=$(container_pid "$dir/a.json" "$launcher_a")
pid_b=$(container_pid "$dir/b.json" "$launcher_b")
pids="$pid_a $pid_b $pids"
echo "container a: pid $pid_a; container b: pid $pid_b"

# From inside a's network namespace: create the pair, with the peer end moved into b's.
nsenter-rs -t "$pid_a" -n -- ip link add eth0 type veth peer name eth0 netns "$pid_b"
nsenter-rs -t "$pid_a" -n -- ip addr add "$subnet_a/30" dev eth0
nsenter-rs -t "$pid_a" -n -- ip link set eth0 up
nsenter-rs -t "$pid_b" -n -- ip addr add "$subnet_b/30" dev eth0
nsenter-rs -t "$pid_b" -n -- ip link set eth0 up

# Inside container a (all its namespaces, its own root filesystem and busybox): ping b.
echo "a ($subnet_a) pings b ($subnet_b):"
if nsenter-rs -t "$pid_a" -a -- /bin/ping -c 1 -W 5 "$subnet_b"; then
    echo "pair: ping from a to b got through"
else
    echo "pair: ping from a to b failed" >&2
    exit 1
fi
