//! netwire's wiring for real, in network namespaces the tests make: two containers ping each
//! other over veth pairs on a bridge, taps, exact errors for bad input with nothing half-made,
//! and the host's links and addresses unchanged after every test.

mod common;
use common::{sandbox, HostUnchanged};
use testcaps::Cap;

#[test]
fn two_containers_ping_each_other_over_a_bridge() {
    testcaps::require!(Cap::Root);
    let _host = HostUnchanged::new();
    let out = sandbox(
        r#"
holder a; holder b
"$NW" bridge br0 --addr 10.70.0.1/24 --addr fd70::1/64
"$NW" attach br0 --to $a --addr 10.70.0.2/24 --addr fd70::2/64 --gateway 10.70.0.1 --host-name va
"$NW" --json attach br0 --to $b --addr 10.70.0.3/24 --gateway 10.70.0.1 --mtu 1400 --mac 02:00:00:00:70:03 > b.json
grep -q '"step":"route"' b.json && echo "b's report has its route"
rm b.json
"$NSE" -t $a -n -- busybox ping -c 1 -W 5 10.70.0.3 >/dev/null && echo "a pinged b"
"$NSE" -t $b -n -- busybox ping -c 1 -W 5 10.70.0.2 >/dev/null && echo "b pinged a"
"$NSE" -t $a -n -- busybox ping -c 1 -W 5 10.70.0.1 >/dev/null && echo "a pinged the bridge"
"$NSE" -t $b -n -- "$NW" show | sed 's/ fe80[^ ]*//'
echo "va on $(basename "$(readlink /sys/class/net/va/master)")"
"$NW" --json show | grep -q '"dev":"va","ifindex":[0-9]*,"kind":"veth"' && echo "show lists va"
"$NW" del va br0
"$NW" --json del va
"$NSE" -t $a -n -- "$NW" show
"#,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "");
    assert_eq!(
        out.stdout,
        "b's report has its route\n\
         a pinged b\nb pinged a\na pinged the bridge\n\
         1: lo - up mtu 65536 00:00:00:00:00:00 127.0.0.1/8 ::1/128\n\
         2: eth0 veth up mtu 1400 02:00:00:00:70:03 10.70.0.3/24\n\
         va on br0\nshow lists va\n\
         {\"steps\":[{\"dev\":\"va\",\"netns\":null,\"removed\":false,\"step\":\"del\"}]}\n\
         1: lo - up mtu 65536 00:00:00:00:00:00 127.0.0.1/8 ::1/128\n"
    );
}

#[test]
fn a_tap_is_persistent_owned_and_removable() {
    testcaps::require!(Cap::Root);
    let _host = HostUnchanged::new();
    let out = sandbox(
        r#"
"$NW" bridge br0
"$NW" tap tap0 --owner 4242 --group 4343 --master br0 --mtu 9000
cat /sys/class/net/tap0/owner /sys/class/net/tap0/group /sys/class/net/tap0/tun_flags /sys/class/net/tap0/mtu
basename "$(readlink /sys/class/net/tap0/master)"
"$NW" tap tap0 || echo "exit $?"
"$NW" --json del tap0
"$NW" --json del tap0
ls /sys/class/net
"#,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stderr,
        "netwire: RTM_NEWLINK tap0 failed: File exists (a tun link named tap0 is there already; remove it first: netwire del tap0)\n"
            .replace("RTM_NEWLINK tap0", "ioctl(TUNSETIFF) tap tap0")
    );
    assert_eq!(
        out.stdout,
        "4242\n4343\n0x1802\n9000\nbr0\nexit 1\n\
         {\"steps\":[{\"dev\":\"tap0\",\"netns\":null,\"removed\":true,\"step\":\"del\"}]}\n\
         {\"steps\":[{\"dev\":\"tap0\",\"netns\":null,\"removed\":false,\"step\":\"del\"}]}\n\
         br0\nlo\n"
    );
}

#[test]
fn bad_input_is_one_line_and_leaves_nothing() {
    testcaps::require!(Cap::Root);
    let _host = HostUnchanged::new();
    let out = sandbox(
        r#"
holder a
echo $a
t() { "$@" && echo "exit 0" || echo "exit $?"; }
"$NW" bridge br0 --addr 10.71.0.1/24
t "$NW" attach br0 --to 999999999 --addr 10.71.0.2/24
t "$NW" attach br0 --to /nonexistent/ns --addr 10.71.0.2/24
t "$NW" attach br0 --to /proc/self/ns/mnt --addr 10.71.0.2/24
t "$NW" veth a23456789012345x --peer p
t "$NW" veth v0 --peer p0 --addr 10.71.0.1/24
t "$NW" --json attach br0 --to $a --addr 10.71.0.1/24
"$NSE" -t $a -n -- "$NW" veth eth0 --peer x0
t "$NW" attach br1 --to $a --addr 10.71.0.5/24
t "$NW" link v0 --master lo
t "$NW" route --via 10.99.0.1
t "$NW" del lo
"$NW" show | sed 's/ \(..:\)\{5\}..//; s/ fe80[^ ]*//'
"$NSE" -t $a -n -- "$NW" show | sed 's/ \(..:\)\{5\}..//; s/ fe80[^ ]*//'
"#,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let (pid, rest) = out.stdout.split_once('\n').expect("the holder's pid");
    let expected = EXPECTED_BAD_INPUT.replace("pid HOLDER", &format!("pid {pid}"));
    let (want_err, want_out) = expected.split_once("--\n").unwrap();
    assert_eq!(out.stderr, want_err);
    assert_eq!(rest, want_out);
}

/// What the bad-input script prints: the errors (HOLDER is the holder's PID), `--`, then its stdout:
/// ten failures, and then only what the script made on purpose (br0; eth0 and x0 in a):
/// no br1 (a failed attach made it and took it back) and no v0.
const EXPECTED_BAD_INPUT: &str = "\
netwire: pid 999999999 network namespace (/proc/999999999/ns/net): No such file or directory (is the process running? give the PID of a process in the namespace)
netwire: /nonexistent/ns network namespace (/nonexistent/ns): No such file or directory (give a PID, /proc/PID/ns/net or a file a namespace is bound to)
netwire: /proc/self/ns/mnt network namespace (/proc/self/ns/mnt): not a network namespace (give a PID, /proc/PID/ns/net or a file a namespace is bound to)
netwire: invalid value 'a23456789012345x' for '<NAME>': interface name 'a23456789012345x' is 16 bytes, longer than 15 (IFNAMSIZ) (try 'netwire --help')
netwire: RTM_NEWADDR 10.71.0.1/24 on v0 failed: Address already in use (10.71.0.1 is already on br0; choose another address)
netwire: RTM_NEWADDR 10.71.0.1/24 on eth0 in pid HOLDER failed: Address already in use (10.71.0.1 is br0's own address; choose another address)
netwire: RTM_NEWLINK veth peer eth0 in pid HOLDER failed: File exists (a veth link named eth0 is there already; remove it first: netwire del eth0)
netwire: RTM_SETLINK master v0 failed: No such device (there is no link named v0; netwire show lists them)
netwire: RTM_NEWROUTE default via 10.99.0.1 failed: Network is unreachable (no address of the link is in the gateway's subnet, or the link is down)
netwire: RTM_DELLINK lo failed: Operation not supported (loopback and some virtual links cannot be removed)
--
exit 1
exit 1
exit 1
exit 1
exit 1
exit 1
exit 1
exit 1
exit 1
exit 1
1: lo - down mtu 65536
2: br0 bridge up mtu 1500 10.71.0.1/24
1: lo - down mtu 65536
2: x0 veth up mtu 1500
3: eth0 veth up mtu 1500
";
