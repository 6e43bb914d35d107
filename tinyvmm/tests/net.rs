//! `--net tap=NAME` on the host, each run in a network namespace of its own (util-linux
//! `unshare -n`, so no tap reaches the host's namespace): the tap tinyvmm creates is a tap with
//! virtio-net headers while the VM runs and is gone when it ends; a tap that was there stays;
//! failures are one line naming the call, the tap and a hint; and frames both ways with a tiny
//! guest that is its own driver (guests/net.s). Linux's driver is shown in `cargo xtask nested`
//! (linux_virtio_net): on this PVM host no Linux guest boots.

use std::process::{Command, Stdio};
use std::time::Duration;

use testcaps::{require, Cap};

const BIN: &str = env!("CARGO_BIN_EXE_tinyvmm");

/// Runs `script` with `sh -c` in a new network namespace, with $T the tinyvmm binary, $G the
/// guest that exits with the byte it reads and $N the guest driving the network device.
fn in_netns(script: &str) -> testcaps::Output {
    testcaps::run(
        Command::new("unshare")
            .args(["-n", "sh", "-c", script])
            .env("T", BIN)
            .env("G", tinyvmm::guest_path("status.bin"))
            .env("N", tinyvmm::guest_path("net.bin"))
            .stdin(Stdio::null()),
        Duration::from_secs(60),
    )
}

#[test]
fn a_tap_tinyvmm_creates_has_vnet_headers_and_goes_when_it_ends() {
    require!(Cap::Root, Cap::Kvm);
    // The guest waits for its status byte until the tap is there (bounded), so the tap is
    // looked at while the VM runs.
    let out = in_netns(
        "( n=0; while ! ip link show tvnet0 >/dev/null 2>&1 && [ $n -lt 400 ]; do \
           sleep 0.05; n=$((n + 1)); done; \
           echo \"during: $(ip -d link show tvnet0 | grep -o 'tun type tap pi off vnet_hdr on persist off')\" >&2; \
           printf '*' ) | \"$T\" run --net tap=tvnet0,mac=02:00:00:00:00:02 \"$G\"; \
         echo \"status $?\"; \
         ip link show tvnet0 >/dev/null 2>&1 && echo 'after: still there' || echo 'after: gone'",
    );
    assert_eq!(out.stdout, "status 42\nafter: gone\n", "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "during: tun type tap pi off vnet_hdr on persist off\n"
    );
    assert_eq!(out.code, Some(0));
}

#[test]
fn frames_go_both_ways_between_the_tap_and_a_guest_driver() {
    require!(Cap::Root, Cap::Kvm);
    // The host side: once the tap is there, an address and up (no IPv6, so that nothing but
    // what the script causes goes out), a UDP datagram to an unanswered neighbour makes the
    // kernel send an ARP request through the tap; the first byte tells the guest, which looks
    // for it, then sends one frame, which the tap's receive counter shows (bounded wait); the
    // second byte ends the guest with status 42.
    let out = in_netns(
        "rx() { sed -n 's/^ *tvnet5: *//p' /proc/net/dev | awk '{print $2}'; };          ( n=0; while ! ip link show tvnet5 >/dev/null 2>&1 && [ $n -lt 400 ]; do              sleep 0.05; n=$((n + 1)); done;            echo 1 >/proc/sys/net/ipv6/conf/tvnet5/disable_ipv6;            ip addr add 10.0.3.1/24 dev tvnet5 && ip link set tvnet5 up;            bash -c 'echo x >/dev/udp/10.0.3.2/9';            printf a;            n=0; while [ \"$(rx)\" = 0 ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n + 1)); done;            echo \"host: the tap received $(rx) frame(s)\" >&2;            printf '*' ) | \"$T\" run --net tap=tvnet5,mac=02:00:00:00:00:02 \"$N\";          echo \"status $?\"",
    );
    assert_eq!(
        out.stdout,
        "net: mac ends in 2\n\
         net: link up\n\
         net: 8 receive buffers given\n\
         rx: an ARP frame from the host, num_buffers 1\n\
         tx: a broadcast frame sent\n\
         status 42\n",
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr, "host: the tap received 1 frame(s)\n");
}

#[test]
fn a_tap_that_was_there_stays() {
    require!(Cap::Root, Cap::Kvm);
    let out = in_netns(
        "ip tuntap add tvnet1 mode tap || exit 9; \
         printf '+' | \"$T\" run --net tap=tvnet1 \"$G\"; echo \"status $?\"; \
         ip -d link show tvnet1 | grep -o 'tun type tap pi off vnet_hdr o[nf]* persist on'",
    );
    // The kernel keeps the flags of the last TUNSETIFF (vnet_hdr on); the next opener's
    // TUNSETIFF sets its own.
    assert_eq!(
        out.stdout, "status 43\ntun type tap pi off vnet_hdr on persist on\n",
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn tap_failures_are_one_line_with_the_call_the_tap_and_a_hint() {
    require!(Cap::Root, Cap::Kvm);
    // A device of that name that is not a tap; a tun device; no CAP_NET_ADMIN to create one;
    // a second --net failing after the first created its tap, which goes too.
    let out = in_netns(
        "ip link add tvnet2 type veth peer name tvnet2p || exit 9; \
         ip tuntap add tvnet3 mode tun || exit 9; \
         \"$T\" run --net tap=tvnet2 \"$G\"; echo \"status $?\"; \
         \"$T\" run --net tap=tvnet3 \"$G\"; echo \"status $?\"; \
         setpriv --inh-caps=-all --bounding-set=-net_admin \"$T\" run --net tap=tvnet4 \"$G\"; \
         echo \"status $?\"; ip link show tvnet4 >/dev/null 2>&1 || echo 'tvnet4: none'; \
         \"$T\" run --net tap=tvnet6 --net tap=tvnet2 \"$G\"; echo \"status $?\"; \
         ip link show tvnet6 >/dev/null 2>&1 || echo 'tvnet6: gone'",
    );
    assert_eq!(
        out.stdout,
        "status 125\nstatus 125\nstatus 125\ntvnet4: none\nstatus 125\ntvnet6: gone\n"
    );
    assert_eq!(
        out.stderr,
        "tinyvmm: --net: ioctl(TUNSETIFF) tap tvnet2 failed: Invalid argument (is there a device \
         of that name that is not a tap?)\n\
         tinyvmm: --net: ioctl(TUNSETIFF) tap tvnet3 failed: Invalid argument (is there a device \
         of that name that is not a tap?)\n\
         tinyvmm: --net: ioctl(TUNSETIFF) tap tvnet4 failed: Operation not permitted (creating a \
         tap, or attaching to one owned by another user, needs CAP_NET_ADMIN)\n\
         tinyvmm: --net: ioctl(TUNSETIFF) tap tvnet2 failed: Invalid argument (is there a device \
         of that name that is not a tap?)\n"
    );
}

#[test]
fn bad_net_options_are_usage_errors() {
    for (arg, why) in [
        ("tap=", "an interface name cannot be empty"),
        (
            "eth0",
            "unknown net option 'eth0' in 'eth0' (tap=NAME[,mac=AA:BB:CC:DD:EE:FF])",
        ),
        (
            "tap=t,mac=01:00:00:00:00:01",
            "'01:00:00:00:00:01' is a multicast address, which a link cannot have (the first \
             byte must be even)",
        ),
    ] {
        let out = testcaps::run(
            Command::new(BIN)
                .args(["run", "--net", arg])
                .stdin(Stdio::null()),
            Duration::from_secs(20),
        );
        assert_eq!(out.code, Some(125), "{arg}");
        assert_eq!(
            out.stderr,
            format!(
                "tinyvmm: invalid value '{arg}' for '--net <tap=NAME[,mac=MAC]>': {why} \
                 (try 'tinyvmm --help')\n"
            ),
            "{arg}"
        );
    }
}
