#!/bin/sh
# PID 1 of the guest-kernel test lane (cargo xtask vmtest): mounts what the cases need, runs every
# /vmtest/cases/*.sh in name order, reports each as "@@VMTEST PASS|FAIL NAME" on the serial
# console (a failure's output follows as "@@VMTEST| LINE"), then "@@VMTEST DONE" and powers off.
# The host side (xtask/src/vmtest.rs) parses exactly these lines.
export PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /run /tmp /dev/pts /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
# Only emergencies on the console, so that OOM reports do not scatter through the results.
echo 1 > /proc/sys/kernel/printk

# A VMM slower than QEMU's TCG (tinyvmm nested under it, in cargo xtask nested) asks for more time
# per case with vmtest.case_timeout=SECONDS on the kernel command line.
case_timeout=120
for w in $(cat /proc/cmdline); do
    case "$w" in vmtest.case_timeout=*) case_timeout=${w#vmtest.case_timeout=} ;; esac
done

# User processes other than PID 1 (no kernel threads, no zombies), one "PID COMM" a line; no
# command substitution, so the listing does not list itself.
user_procs() {
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" = 1 ] && continue
        # stderr first: a process that ended since the glob must not print an open error.
        read -r stat 2>/dev/null <"$p/stat" || continue
        rest=${stat##*) }
        set -- $rest
        [ "$1" = Z ] && continue
        [ "$pid" = 2 ] || [ "$2" = 2 ] && continue
        comm=${stat#*(}
        comm=${comm%%)*}
        # busybox timeout's watcher outlives the case by up to a second.
        [ "$comm" = timeout ] && continue
        echo "$pid $comm"
    done
}
for f in /vmtest/cases/*.sh; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .sh)
    work=/tmp/case-$name
    mkdir -p "$work"
    cgroups_before=$(find /sys/fs/cgroup -mindepth 1 -type d | sort)
    read -r t0 _ </proc/uptime
    mounts_before=$(cut -d' ' -f5 /proc/self/mountinfo | sort)
    (cd "$work" && exec timeout -s KILL "$case_timeout" sh -c '. /vmtest/lib.sh; . "$1"' "$name" "$f") \
        </dev/null >/tmp/out.$name 2>&1
    rc=$?
    read -r t1 _ </proc/uptime
    took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1fs", b - a }')
    left=""
    cgroups_after=$(find /sys/fs/cgroup -mindepth 1 -type d | sort)
    [ "$cgroups_before" = "$cgroups_after" ] || left="$left cgroups-left-behind"
    mounts_after=$(cut -d' ' -f5 /proc/self/mountinfo | sort)
    [ "$mounts_before" = "$mounts_after" ] || left="$left mounts-left-behind"
    user_procs >/tmp/procs.$name
    if [ -s /tmp/procs.$name ]; then
        left="$left processes-left-behind"
        echo "processes left behind:" >>/tmp/out.$name
        cat /tmp/procs.$name >>/tmp/out.$name
        # Do not let them disturb the next cases.
        while read -r pid comm; do kill -9 "$pid" 2>/dev/null; done </tmp/procs.$name
    fi
    if [ "$rc" = 0 ] && [ -z "$left" ]; then
        echo "@@VMTEST PASS $name $took"
        # cargo xtask vmtest -v: passing cases show their output too.
        case " $(cat /proc/cmdline) " in
        *" vmtest.verbose "*) sed 's/^/@@VMTEST| /' /tmp/out.$name ;;
        esac
    else
        detail="exit $rc"
        [ "$rc" = 137 ] && detail="killed after ${case_timeout}s or by SIGKILL"
        echo "@@VMTEST FAIL $name $took $detail$left"
        case "$left" in *cgroups-left-behind*)
            echo "cgroups now:" >>/tmp/out.$name
            echo "$cgroups_after" >>/tmp/out.$name
            ;;
        esac
        case "$left" in *mounts-left-behind*)
            echo "mounts now:" >>/tmp/out.$name
            echo "$mounts_after" >>/tmp/out.$name
            ;;
        esac
        tail -n 200 /tmp/out.$name | sed 's/^/@@VMTEST| /'
    fi
done
echo "@@VMTEST DONE"
sync
# Under tinyvmm (the nested lane adds its exit helper), the status port ends the run at once, so
# the suite's result does not depend on how tinyvmm treats a power-off; QEMU ignores port 0xf4.
[ -x /tinyvmm-exit ] && /tinyvmm-exit 0
poweroff -f
# If power-off is impossible, ending PID 1 panics and panic=-1 with -no-reboot stops the VMM.
