#!/bin/sh
# vm.sh: the container scripts' question ("what do I see from inside?") answered by a VM.
#
# It shows the other side of the project: a tinyvmm guest runs its own code on a virtual CPU, in
# guest memory carved out of the host for it, and learns about its world from what the VMM hands
# it (a memory map, CPUID), not from the host's kernel. The host's view is printed first, then the
# guest's own lines (from its serial port), then tinyvmm's report: why the run ended, the exits it
# took and how long creating, loading, running and tearing down the VM took.
#
# Usage: vm.sh [--mem SIZE] [IMAGE]   (no IMAGE: tinyvmm's embedded guest)
# Needs /dev/kvm and tinyvmm on PATH.
set -eu

case ${1:-} in
    -h | --help)
        echo "usage: vm.sh [--mem SIZE] [IMAGE]   (no IMAGE: tinyvmm's embedded guest)"
        echo "A tinyvmm guest says what it sees from inside its VM, then tinyvmm's report. Needs /dev/kvm and tinyvmm on PATH."
        echo "Example (as root, from the clone): PATH=\"\$PWD/target/x86_64-unknown-linux-gnu/release:\$PATH\" scripts/vm.sh --mem 16M"
        exit 0 ;;
esac

mem=64M
case ${1:-} in
    --mem) [ $# -ge 2 ] || { echo "usage: $0 [--mem SIZE] [IMAGE]" >&2; exit 1; }; mem=$2; shift 2 ;;
    --mem=*) mem=${1#*=}; shift ;;
    -?*) echo "$0: unknown option $1 (try --help)" >&2; exit 1 ;;
esac

report=$(mktemp "${TMPDIR:-/tmp}/microtools-vm.XXXXXX")
trap 'rm -f "$report"' EXIT

echo "host: kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo) of memory"
echo "guest ($mem of guest memory):"
status=0
tinyvmm run --mem "$mem" --report "$report" "$@" || status=$?
echo "tinyvmm exit status: $status"
echo "report: $(cat "$report")"
exit "$status"
