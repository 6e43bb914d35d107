#!/bin/sh
# jailed-vm.sh: tinyvmm run in a jail, as Firecracker's jailer runs Firecracker.
#
# A VMM is the host's code closest to the guest: the guest drives its device models. So it runs
# with nothing to spare, built from the container tools chained by argv:
#   cgctl run       a fresh cgroup with a memory and a pids limit, removed afterwards;
#   unshare-rs      new mount, pid, ipc, uts, net and cgroup namespaces (no network at all);
#   pivot           a root that is an empty tmpfs, read-only, holding only the tinyvmm binary,
#                   setpriv-rs, /dev/kvm and the guest's files (kernel, initrd, image, disks,
#                   read-only except the disks given writable): no /proc, /sys or other /dev;
#                   it stays as PID 1 (--reaper) and ends as tinyvmm ended; --new-session, so
#                   the guest's console cannot push input into the caller's terminal;
#   setpriv-rs      drops every capability (bounding, inheritable and ambient sets emptied: the
#                   VMM runs as uid 0 with CapEff 0) and sets no_new_privs;
#   tinyvmm         then confines itself with its seccomp filter once the VM is set up.
# The guest's console is this script's stdin and stdout; its exit status is tinyvmm's.
# Nothing is left behind: cgctl removes the group, the namespaces and mounts die with the
# processes, and the empty directory the root is mounted on is removed on exit.
#
# Usage: jailed-vm.sh [--memory SIZE] [--pids N] [--name CGROUP] [--] TINYVMM_RUN_ARGS...
#   TINYVMM_RUN_ARGS are `tinyvmm run`'s (see tinyvmm run --help); the files among them
#   (IMAGE, --kernel, --initrd, --disk, --rootfs) are bound into the jail under /vm and the
#   arguments rewritten to point there. --report is refused (the jail's root is read-only:
#   use --json).
# Example (as root): scripts/jailed-vm.sh --memory 768M -- --kernel bzImage --initrd initrd.cpio --mem 512M --cpus 2
# Needs cgctl, unshare-rs, pivot, setpriv-rs and tinyvmm on PATH, root and /dev/kvm.
set -eu

usage() {
    echo "usage: $0 [--memory SIZE] [--pids N] [--name CGROUP] [--] TINYVMM_RUN_ARGS... (try --help)" >&2
    exit 1
}
case ${1:-} in
    -h | --help)
        echo "usage: jailed-vm.sh [--memory SIZE] [--pids N] [--name CGROUP] [--] TINYVMM_RUN_ARGS..."
        echo "tinyvmm jailed as Firecracker's jailer runs Firecracker: cgctl run -> unshare-rs -fpmuinC -> pivot (an empty read-only root: tinyvmm, setpriv-rs, /dev/kvm, the guest's files under /vm) -> setpriv-rs (no capabilities, no_new_privs) -> tinyvmm run TINYVMM_RUN_ARGS (its seccomp filter). The files among them (IMAGE, --kernel, --initrd, --disk, --rootfs) are bound in; --report is refused (use --json). Defaults: --memory 1G --pids 64. Needs root, /dev/kvm, and cgctl, unshare-rs, pivot, setpriv-rs and tinyvmm on PATH."
        echo "Example (as root, from the clone): PATH=\"\$PWD/target/x86_64-unknown-linux-gnu/release:\$PATH\" scripts/jailed-vm.sh --memory 768M -- --kernel target/kernel/vmlinuz --initrd initrd.cpio --mem 512M --cpus 2"
        exit 0 ;;
esac

memory=1G
pids=64
name=
while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) help ;;
        --memory) [ $# -ge 2 ] || usage; memory=$2; shift 2 ;;
        --memory=*) memory=${1#*=}; shift ;;
        --pids) [ $# -ge 2 ] || usage; pids=$2; shift 2 ;;
        --pids=*) pids=${1#*=}; shift ;;
        --name) [ $# -ge 2 ] || usage; name=$2; shift 2 ;;
        --name=*) name=${1#*=}; shift ;;
        --) shift; break ;;
        -*) usage ;;
        *) break ;;
    esac
done

tinyvmm=$(command -v tinyvmm) || { echo "$0: tinyvmm is not on PATH" >&2; exit 1; }
setpriv=$(command -v setpriv-rs) || { echo "$0: setpriv-rs is not on PATH" >&2; exit 1; }
[ -c /dev/kvm ] || { echo "$0: /dev/kvm is not a character device (no KVM here)" >&2; exit 1; }

# pivot reads SRC:DST with \: for a colon and \\ for a backslash in a path.
esc() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/:/\\:/g'; }

# The jail's mounts, then tinyvmm's rewritten arguments, gathered as quoted words.
binds=
args=
n=0
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
add_bind() { binds="$binds $1 $(quote "$(esc "$2"):$(esc "$3")")"; }
add_arg() { args="$args $(quote "$1")"; }
# A file of the guest's, bound read-only (rw for a writable disk) at /vm/N-NAME.
jail_file() {
    [ -e "$2" ] || { echo "$0: $2: no such file" >&2; exit 1; }
    n=$((n + 1))
    inside=/vm/$n-$(basename "$2" | tr -c 'A-Za-z0-9._\n-' _)
    add_bind "$1" "$2" "$inside"
}
while [ $# -gt 0 ]; do
    case $1 in
        --report|--report=*) echo "$0: --report is not available in the jail (its root is read-only): use --json" >&2; exit 1 ;;
        --kernel|--initrd|--rootfs)
            [ $# -ge 2 ] || usage
            jail_file --ro-bind "$2"; add_arg "$1"; add_arg "$inside"; shift 2 ;;
        --kernel=*|--initrd=*|--rootfs=*)
            opt=${1%%=*}; jail_file --ro-bind "${1#*=}"; add_arg "$opt"; add_arg "$inside"; shift ;;
        --disk|--disk=*)
            if [ "$1" = --disk ]; then [ $# -ge 2 ] || usage; spec=$2; shift 2; else spec=${1#*=}; shift; fi
            case $spec in
                *,ro) jail_file --ro-bind "${spec%,ro}"; add_arg --disk; add_arg "$inside,ro" ;;
                *) jail_file --bind "$spec"; add_arg --disk; add_arg "$inside" ;;
            esac ;;
        --) add_arg --; shift; for a in "$@"; do add_arg "$a"; done; break ;;
        --format|--mem|--load|--timeout|--append|--cpus)
            [ $# -ge 2 ] || usage; add_arg "$1"; add_arg "$2"; shift 2 ;;
        -*) add_arg "$1"; shift ;;
        *) jail_file --ro-bind "$1"; add_arg "$inside"; shift ;;
    esac
done

# The binaries' shared libraries when they are not static builds (ldd lists them, with the
# dynamic loader), bound read-only at their own paths.
libs=$(for b in "$tinyvmm" "$setpriv"; do
    ldd "$b" 2>/dev/null | sed -n 's|.*=> \(/[^ ]*\) .*|\1|p; s|^[[:space:]]*\(/[^ ]*\) .*|\1|p'
done | sort -u)
for lib in $libs; do
    add_bind --ro-bind "$lib" "$lib"
done

root=$(mktemp -d "${TMPDIR:-/tmp}/microtools-jail.XXXXXX")
trap 'rmdir "$root" 2>/dev/null || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

add_bind --ro-bind "$tinyvmm" /.jail/tinyvmm
add_bind --ro-bind "$setpriv" /.jail/setpriv-rs
eval "set -- $binds $(quote "$root") \
    /.jail/setpriv-rs --bounding-set=-all --inh-caps=-all --ambient-caps=-all --nnp -- \
    /.jail/tinyvmm run $args"
set -- pivot --tmpfs-root --ro --no-proc --no-sys --no-dev --reaper --new-session \
    --die-with-parent --hostname vm --dev-bind /dev/kvm:/dev/kvm "$@"
set -- unshare-rs -fpmuinC -- "$@"
if [ -n "$name" ]; then
    set -- --name "$name" -- "$@"
else
    set -- -- "$@"
fi
status=0
cgctl run --memory "$memory" --pids "$pids" "$@" || status=$?
exit "$status"
