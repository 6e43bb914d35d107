//! netwire through a real CNI client: podman 4.3 with network_backend "cni", beside Debian's
//! `bridge` plugin as the reference, all inside a sandbox (new network, mount and PID
//! namespaces; tmpfs on /run, /var/lib and /sys/fs/cgroup, the CNI configs in the test's own
//! directory). A fresh host may have no /var/lib/containers or /var/lib/cni: the tmpfs on /var/lib
//! holds both, so nothing is created on the host.
//!
//! podman calls ADD when a container starts and DEL when it is removed; it never calls CHECK,
//! so the test calls CHECK the way libcni would, with the prevResult libcni cached for podman.
//! crun runs the containers with `--cgroups disabled` (it refuses this host's hybrid cgroups)
//! and rlimits root may set here (root lacks CAP_SYS_RESOURCE).

mod common;
use common::{sandbox_with, HostUnchanged};
use testcaps::Cap;

const SCRIPT: &str = r#"
for d in /run /var/lib /sys/fs/cgroup; do mount -t tmpfs tmpfs "$d"; done
mkdir -p plugins rootfs/bin net.d /var/lib/containers /var/lib/cni
ln -s "$NW" plugins/netwire
cp "$(command -v busybox)" rootfs/bin/busybox
for a in sh ip ping sleep; do ln -s busybox rootfs/bin/$a; done
cat > containers.conf <<X
[network]
network_backend = "cni"
cni_plugin_dirs = ["$work/plugins", "/usr/lib/cni"]
network_config_dir = "$work/net.d"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "none"
X
cat > storage.conf <<X
[storage]
driver = "vfs"
graphroot = "/var/lib/containers/storage"
runroot = "/run/containers/storage"
X
NWCONF='"cniVersion":"1.0.0","name":"nwtest","type":"netwire","bridge":"nwpod0","subnet":"10.73.0.0/24"'
echo '{"cniVersion":"1.0.0","name":"nwtest","plugins":[{'"$NWCONF"'}]}' > net.d/nwtest.conflist
echo '{"cniVersion":"1.0.0","name":"brtest","plugins":[{"type":"bridge","bridge":"brpod0","isGateway":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.74.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}}]}' > net.d/brtest.conflist
export CONTAINERS_CONF=$work/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf
run() {
    opts=$1; shift
    podman run --cgroups disabled --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 $opts --rootfs "$work/rootfs" "$@"
}
for net in nwtest brtest; do
    run "-d --name $net-a --network $net" /bin/sleep 60 >/dev/null
    ip=$(podman inspect -f "{{.NetworkSettings.Networks.$net.IPAddress}}" "$net-a")
    echo "$net: a has $ip"
    run "--rm --network $net" /bin/sh -c "ip -o -4 addr show eth0 | sed 's/ brd [^ ]*//; s/ *valid.*//'; ip route; ping -c 1 -W 5 $ip >/dev/null && echo b pinged a"
done
id=$(podman inspect -f '{{.Id}}' nwtest-a)
prev=$(sed 's/.*"result":\(.*\)}$/\1/' /var/lib/cni/results/nwtest-$id-eth0)
check() {
    printf '{%s,"prevResult":%s}' "$NWCONF" "$prev" | env CNI_COMMAND=CHECK CNI_CONTAINERID=$id \
        CNI_IFNAME=eth0 CNI_NETNS="$(podman inspect -f '{{.NetworkSettings.SandboxKey}}' nwtest-a)" "$NW" \
        && echo "CHECK: exit 0" || echo "CHECK: exit $?"
}
check
podman rm -f -t 0 nwtest-a brtest-a >/dev/null
printf 'leases: %s\n' "$(cat /var/lib/cni/netwire/nwtest/leases)"
"$NW" show | sed 's/ \(..:\)\{5\}..//; s/ fe80[^ ]*//'
"#;

#[test]
fn podman_runs_containers_on_netwire_and_on_the_reference_bridge_plugin() {
    testcaps::require!(Cap::Root);
    let _host = HostUnchanged::new();
    assert!(
        testcaps::find_in_path("podman").is_some(),
        "podman is not installed (cargo xtask deps installs it)"
    );
    let out = sandbox_with(&["-nmpf", "--mount-proc"], SCRIPT, &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    // Both networks give the same: eth0 with the subnet's next address, the default route via
    // the gateway, and the first container reachable from the second.
    assert_eq!(
        out.stdout,
        "nwtest: a has 10.73.0.2\n\
         2: eth0    inet 10.73.0.3/24 scope global eth0\\\n\
         default via 10.73.0.1 dev eth0 \n\
         10.73.0.0/24 dev eth0 scope link  src 10.73.0.3 \n\
         b pinged a\n\
         brtest: a has 10.74.0.2\n\
         2: eth0    inet 10.74.0.3/24 scope global eth0\\\n\
         default via 10.74.0.1 dev eth0 \n\
         10.74.0.0/24 dev eth0 scope link  src 10.74.0.3 \n\
         b pinged a\n\
         CHECK: exit 0\n\
         leases: \n\
         1: lo - down mtu 65536\n\
         2: nwpod0 bridge up mtu 1500 10.73.0.1/24\n\
         5: brpod0 bridge up mtu 1500 10.74.0.1/24\n",
        "{out:?}"
    );
}
