#!/bin/sh
# enter.sh: start a long-running container, then enter it by what it reported, not by pid hunting.
#
# It shows how the two namespace tools meet: unshare-rs starts container NAME (its own pid, mount,
# uts, ipc, net and cgroup namespaces, root filesystem by pivot) and, before running the program,
# writes one JSON object with the container's PID and namespace inodes to /run/microtools/NAME.json.
# nsenter-rs then runs a shell in all of that container's namespaces, found from the report alone
# (no ps, no pgrep). The script prints, for each namespace, the inode the container has and the one
# the entered shell sees; they must match. On exit the container is killed by PID and the report
# removed.
#
# Usage: enter.sh NAME [ROOTFS]   (default: $MICROTOOLS_ROOTFS, else target/rootfs next to this script)
# Needs root, and unshare-rs, nsenter-rs and pivot on PATH.
set -eu

case ${1:-} in
    -h | --help)
        echo "usage: enter.sh NAME [ROOTFS]   (default: \$MICROTOOLS_ROOTFS, else target/rootfs next to this script)"
        echo "A long-running container NAME reports its namespaces in /run/microtools/NAME.json; nsenter-rs enters them from that report. Needs root, and unshare-rs, nsenter-rs and pivot on PATH."
        echo "Example (as root, from the clone): PATH=\"\$PWD/target/x86_64-unknown-linux-gnu/release:\$PATH\" scripts/enter.sh web target/rootfs"
        exit 0 ;;
    -?*) echo "$0: unknown option $1 (try --help)" >&2; exit 1 ;;
esac

[ $# -ge 1 ] || { echo "usage: $0 NAME [ROOTFS]" >&2; exit 1; }
name=$1
case $name in
    */* | .* | '') echo "$0: NAME must be a plain name" >&2; exit 1 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
rootfs=${2:-${MICROTOOLS_ROOTFS:-$here/../target/rootfs}}
[ -d "$rootfs" ] || { echo "$0: no rootfs at $rootfs (build one: cargo xtask rootfs)" >&2; exit 1; }
report=/run/microtools/$name.json
[ ! -e "$report" ] || { echo "$0: $report exists: is container $name already running?" >&2; exit 1; }
mkdir -p /run/microtools

outer=
inner=
cleanup() {
    [ -z "$inner" ] || kill -KILL "$inner" 2>/dev/null || true
    [ -z "$outer" ] || { kill -KILL "$outer" 2>/dev/null || true; wait "$outer" 2>/dev/null || true; }
    rm -f "$report"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

unshare-rs -fpmuinC --kill-child --mount-proc --report="$report" -- \
    pivot --hostname "$name" "$rootfs" /bin/sleep 3600 &
outer=$!

i=0
while [ ! -s "$report" ]; do
    kill -0 "$outer" 2>/dev/null || { echo "$0: the container exited before writing $report" >&2; exit 1; }
    i=$((i + 1))
    [ $i -le 100 ] || { echo "$0: no report at $report after 5 s" >&2; exit 1; }
    sleep 0.05
done
echo "report $report: $(cat "$report")"
inner=$(sed -n 's/.*"pid"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$report")
[ -n "$inner" ] || { echo "$0: no pid in $report" >&2; exit 1; }
echo "container $name: pid $inner"

for ns in mnt uts ipc net pid cgroup; do
    echo "container $ns $(stat -L -c %i "/proc/$inner/ns/$ns")"
done
# A shell in every namespace of the container, which reads its own namespace inodes from inside.
nsenter-rs -t "$inner" -a -- /bin/sh -c '
    for ns in mnt uts ipc net pid cgroup; do
        echo "entered $ns $(stat -L -c %i /proc/self/ns/$ns)"
    done
    echo "entered hostname $(hostname)"
    echo "entered root $(ls / | tr "\n" " ")"
'
