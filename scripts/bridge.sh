#!/bin/sh
# bridge.sh: two containers on one bridge, wired by netwire through netlink (no `ip`).
#
# A host joins containers to a bridge with a veth pair each: one end on the bridge, the other
# in the container's network namespace as eth0. Here the "host" side is itself a network
# namespace this script makes (the switch), so that nothing is created in the host's own: the
# switch holds the bridge br0 (10.201.0.1/24) and a persistent tap on it where a VM's NIC would
# plug in; `netwire attach` joins container a (10.201.0.2) and b (10.201.0.3), default route
# via the bridge; then a pings b, and b pings the bridge. On exit (normal, error or signal) the
# containers and the switch are killed by PID, and their namespaces go with them, links and all.
#
# With --vm KERNEL INITRD, a tinyvmm VM plugs into that tap (`--net tap=tap0`, run in the switch
# namespace) beside the containers: the guest's kernel command line carries
# `bridge.ip=10.201.0.4/24 bridge.peer=10.201.0.2`, which the guest's init is to read: give eth0
# that address, ping the peer (container a), stay up until it has been pinged back. Container a
# pings the VM; the script ends when tinyvmm does (its status is printed, the guest's own).
# Debian's kernels build virtio_net as a module, so the INITRD carries and loads it
# (`cargo xtask nested linux_bridge_container_vm` boots the lane's devices image this way).
#
# Usage: bridge.sh [--vm KERNEL INITRD] [ROOTFS]   (default ROOTFS: $MICROTOOLS_ROOTFS, else
#        target/rootfs next to this script)
# Needs root, and unshare-rs, nsenter-rs, pivot and netwire on PATH; --vm also tinyvmm and KVM
# that boots Linux.
set -eu

usage="usage: bridge.sh [--vm KERNEL INITRD] [ROOTFS]   (default ROOTFS: \$MICROTOOLS_ROOTFS, else target/rootfs next to this script)"
kernel=
initrd=
case ${1:-} in
    -h | --help)
        echo "$usage"
        echo "Two containers on one netwire bridge in a switch namespace; a pings b and the bridge. With --vm, a tinyvmm VM on the bridge's tap too: container a and the VM ping each other. Needs root, and unshare-rs, nsenter-rs, pivot and netwire on PATH (--vm: tinyvmm, and KVM that boots Linux)."
        echo "Example (as root, from the clone): PATH=\"\$PWD/target/x86_64-unknown-linux-gnu/release:\$PATH\" scripts/bridge.sh target/rootfs"
        exit 0 ;;
    --vm)
        [ $# -ge 3 ] || { echo "$0: --vm needs KERNEL and INITRD (try --help)" >&2; exit 1; }
        kernel=$2 initrd=$3
        shift 3
        for f in "$kernel" "$initrd"; do
            [ -f "$f" ] || { echo "$0: --vm: no file $f" >&2; exit 1; }
        done ;;
esac
case ${1:-} in
    -?*) echo "$0: unknown option $1 (try --help)" >&2; exit 1 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
rootfs=${1:-${MICROTOOLS_ROOTFS:-$here/../target/rootfs}}
[ -d "$rootfs" ] || { echo "$0: no rootfs at $rootfs (build one: cargo xtask rootfs)" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/microtools-bridge.XXXXXX")
pids=
cleanup() {
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
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

# The switch: a process in a network namespace of its own, holding the bridge.
unshare-rs -n --report="$dir/switch.json" -- sleep 3600 &
pids="$!"
switch=$(container_pid "$dir/switch.json" "$!")

start() { # NAME: a container holding its namespaces, sleeping until killed
    unshare-rs -fpmuin --lo-up --kill-child --report="$dir/$1.json" -- \
        pivot --hostname "$1" "$rootfs" /bin/sleep 3600 &
    pids="$pids $!"
    launcher=$!
}
start a
pid_a=$(container_pid "$dir/a.json" "$launcher")
start b
pid_b=$(container_pid "$dir/b.json" "$launcher")
pids="$pid_a $pid_b $pids"
echo "switch: pid $switch; container a: pid $pid_a; container b: pid $pid_b"

netwire --netns "$switch" bridge br0 --addr 10.201.0.1/24
netwire --netns "$switch" tap tap0 --master br0
netwire --netns "$switch" attach br0 --to "$pid_a" --addr 10.201.0.2/24 --gateway 10.201.0.1
netwire --netns "$switch" attach br0 --to "$pid_b" --addr 10.201.0.3/24 --gateway 10.201.0.1
netwire --netns "$switch" show

if nsenter-rs -t "$pid_a" -a -- /bin/ping -c 1 -W 5 10.201.0.3 &&
    nsenter-rs -t "$pid_b" -a -- /bin/ping -c 1 -W 5 10.201.0.1; then
    echo "bridge: a pinged b, and b the bridge, over br0"
else
    echo "bridge: a ping over br0 failed" >&2
    exit 1
fi

[ -n "$kernel" ] || exit 0
# The VM: tinyvmm in the switch namespace, its NIC on tap0 (which it opens, and leaves there).
# Its console goes to a file, printed once it has ended: tinyvmm writes the guest's serial output
# a byte at a time, so this script's own lines would otherwise split the guest's.
nsenter-rs -t "$switch" -n -- tinyvmm run --mem 256M --timeout 300 --kernel "$kernel" \
    --initrd "$initrd" --net tap=tap0,mac=02:00:0a:c9:00:04 \
    --append "quiet bridge.ip=10.201.0.4/24 bridge.peer=10.201.0.2" >"$dir/vm.log" 2>&1 &
vm=$!
pids="$pids $vm"
n=0
until nsenter-rs -t "$pid_a" -a -- /bin/ping -c 1 -W 1 10.201.0.4 >/dev/null 2>&1; do
    n=$((n + 1))
    kill -0 "$vm" 2>/dev/null && [ $n -lt 180 ] || { echo "bridge: a cannot ping the vm" >&2; cat "$dir/vm.log" >&2; exit 1; }
    sleep 1
done
echo "bridge: a pinged the vm (10.201.0.4) over br0 and tap0"
status=0
wait "$vm" || status=$?
cat "$dir/vm.log"
echo "bridge: tinyvmm exit status $status"
