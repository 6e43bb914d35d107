#!/bin/sh
# container.sh: a container runtime in a page of shell.
#
# It shows that a container is an ordinary process the kernel was asked to isolate, built from
# three single-purpose tools chained by argv:
#   cgctl run       puts it in a fresh cgroup with a memory and a pids limit, and prints on stderr
#                   what it used and what struck (one JSON object) when it exits;
#   unshare-rs      gives it its own pid, mount, uts, ipc, net and cgroup namespaces, with the
#                   loopback interface up;
#   pivot           makes ROOTFS its root filesystem (a /proc of its own, minimal /dev,
#                   read-only /sys), sets its hostname, and stays as the container's PID 1
#                   (--reaper): it reaps orphans, forwards signals to the command (PID 2) and
#                   ends with the command's status, as bwrap's PID 1 does;
#   setpriv-rs      (bound read-only into the rootfs at /.microtools/setpriv-rs) drops what a
#                   container engine drops before the program runs: the bounding set cut to
#                   the engines' eleven capabilities (no SYS_ADMIN, MKNOD, NET_ADMIN...),
#                   no_new_privs, and a seccomp filter refusing module loading, kexec, reboot,
#                   mount, bpf, perf, keyrings, new namespaces... (setpriv-rs/README.md).
# Nothing is left behind: cgctl removes the group, and the namespaces die with the process.
#
# Usage: container.sh [--memory SIZE] [--pids N] [--hostname NAME] [--name CGROUP] ROOTFS [CMD [ARG...]]
# Example (as root): scripts/container.sh --memory 64M target/rootfs /bin/sh -c 'echo $$; hostname'
set -eu

usage() {
    echo "usage: $0 [--memory SIZE] [--pids N] [--hostname NAME] [--name CGROUP] ROOTFS [CMD [ARG...]] (try --help)" >&2
    exit 1
}
case ${1:-} in
    -h | --help)
        echo "usage: container.sh [--memory SIZE] [--pids N] [--hostname NAME] [--name CGROUP] ROOTFS [CMD [ARG...]]"
        echo "A container: cgctl run -> unshare-rs -> pivot --reaper -> setpriv-rs --default-container, CMD (default /bin/sh) in ROOTFS. Needs root, and cgctl, unshare-rs, pivot and setpriv-rs on PATH."
        echo "Example (as root, from the clone): PATH=\"\$PWD/target/x86_64-unknown-linux-gnu/release:\$PATH\" scripts/container.sh --memory 64M target/rootfs /bin/sh -c 'echo \$\$; hostname'"
        exit 0 ;;
esac

memory=64M
pids=64
hostname=container
name=
while [ $# -gt 0 ]; do
    case $1 in
        --memory) [ $# -ge 2 ] || usage; memory=$2; shift 2 ;;
        --memory=*) memory=${1#*=}; shift ;;
        --pids) [ $# -ge 2 ] || usage; pids=$2; shift 2 ;;
        --pids=*) pids=${1#*=}; shift ;;
        --hostname) [ $# -ge 2 ] || usage; hostname=$2; shift 2 ;;
        --hostname=*) hostname=${1#*=}; shift ;;
        --name) [ $# -ge 2 ] || usage; name=$2; shift 2 ;;
        --name=*) name=${1#*=}; shift ;;
        --) shift; break ;;
        -*) usage ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || usage
rootfs=$1
shift
[ -d "$rootfs" ] || { echo "$0: $rootfs is not a directory (build one: cargo xtask rootfs)" >&2; exit 1; }
[ $# -gt 0 ] || set -- /bin/sh

# setpriv-rs runs inside the rootfs, after pivot has set it up: its binary is bound in
# read-only, with the host libraries it needs when it is not a static build (ldd lists them;
# the bind mounts leave empty mount points in ROOTFS, as pivot documents).
setpriv=$(command -v setpriv-rs) || { echo "$0: setpriv-rs is not on PATH" >&2; exit 1; }
set -- /.microtools/setpriv-rs --default-container -- "$@"
# pivot reads SRC:DST with \: for a colon and \\ for a backslash in a path.
escaped=$(printf '%s' "$setpriv" | sed 's/\\/\\\\/g; s/:/\\:/g')
set -- --ro-bind "$escaped:/.microtools/setpriv-rs" "$rootfs" "$@"
for lib in $(ldd "$setpriv" 2>/dev/null | sed -n 's|.*=> \(/[^ ]*\) .*|\1|p; s|^[[:space:]]*\(/[^ ]*\) .*|\1|p'); do
    set -- --ro-bind "$lib" "$@"
done

# The cgroup name is optional: cgctl picks a unique one unless told.
set -- pivot --reaper --hostname "$hostname" "$@"
set -- unshare-rs -fpmuinC --lo-up --mount-proc -- "$@"
if [ -n "$name" ]; then
    set -- --name "$name" -- "$@"
else
    set -- -- "$@"
fi
exec cgctl run --memory "$memory" --pids "$pids" --json "$@"
