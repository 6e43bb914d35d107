#!/bin/sh
# PID 1 of level 1 in the hardware-KVM lane (cargo xtask nested): loads kvm_amd with nested=1 on
# QEMU's emulated AMD-V, then runs the case scripts in /lane/serial/*.sh one by one and those in
# /lane/queues/Q/*.sh, one queue per parallel job, and reports each on the serial console as
#   @@NESTED BEGIN NAME / @@NESTED| OUTPUT LINE ... / @@NESTED END NAME STATUS 1.2s
# then "@@NESTED DONE" and powers off. The host (xtask/src/nested.rs) compares each STATUS and the
# output with the case's expectation; this script only runs and reports.
export PATH=/lane/bin:/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
# cgroup2 for cgctl (the jailed VM's case); level 1 is a guest, its mounts are its own.
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# Only emergencies on the console (kvm's "unhandled MSR" notes would scatter through the results).
echo 1 >/proc/sys/kernel/printk
# T G K I R FAST REQUIRE CASE_LIMIT: written by the host, see nested.rs.
. /lane/env

if ! loaded=$(insmod /lane/modules/irqbypass.ko 2>&1 && insmod /lane/modules/kvm.ko 2>&1 &&
    insmod /lane/modules/kvm-amd.ko nested=1 2>&1) || [ ! -c /dev/kvm ]; then
    echo "@@NESTED SETUP-FAIL no /dev/kvm after insmod: $loaded"
    echo "@@NESTED DONE"
    poweroff -f
fi
# The tap of --net (linux_virtio_net); without it that case fails with tinyvmm's message. The
# bridge and veth of scripts/bridge.sh (linux_bridge_container_vm), bridge after its llc and stp.
for m in tun llc stp bridge veth; do
    [ -f "/lane/modules/$m.ko" ] && { insmod "/lane/modules/$m.ko" || echo "insmod $m failed"; }
done
echo "@@NESTED SETUP cpus=$(grep -c ^processor /proc/cpuinfo) kvm_amd.nested=$(cat /sys/module/kvm_amd/parameters/nested)"

run_case() {
    name=$(basename "$1" .sh)
    name=${name#*-} # the queue position NN-
    work=/tmp/case-$name
    mkdir -p "$work"
    read -r t0 _ </proc/uptime
    (cd "$work" && exec timeout -s KILL "$CASE_LIMIT" sh "$1") </dev/null >"/tmp/out.$name" 2>&1
    rc=$?
    read -r t1 _ </proc/uptime
    took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1fs", b - a }')
    {
        echo "@@NESTED BEGIN $name"
        # awk ends every line, also a last one cut off when the status port ended the guest.
        tail -n 200 "/tmp/out.$name" | awk '{ print "@@NESTED| " $0 }'
        echo "@@NESTED END $name $rc $took"
    } >"/tmp/report.$name"
    # One report at a time on the console, whichever queue finishes first.
    until mkdir /tmp/console.lock 2>/dev/null; do sleep 0.1; done
    cat "/tmp/report.$name"
    rmdir /tmp/console.lock
    rm -rf "$work" "/tmp/out.$name" "/tmp/report.$name"
}

# A heartbeat, so the host can tell a level 1 that is busy from one whose kernel stalled
# (a console silent for minutes: nested.rs kills it and boots it again for what is left).
# It takes the console lock too: a report is written in more than one write.
(while sleep 20; do
    until mkdir /tmp/console.lock 2>/dev/null; do sleep 0.1; done
    echo "@@NESTED ALIVE"
    rmdir /tmp/console.lock
done) &
alive=$!

# The tiny guests first, one at a time (a second or less each), then the Linux boots in parallel.
for f in /lane/serial/*.sh; do
    [ -f "$f" ] && run_case "$f"
done
queues=""
for q in /lane/queues/*; do
    (for f in "$q"/*.sh; do [ -f "$f" ] && run_case "$f"; done) &
    queues="$queues $!"
done
# shellcheck disable=SC2086 # one PID per word
wait $queues
kill "$alive" 2>/dev/null
echo "@@NESTED DONE"
sync
poweroff -f
