//! netwire as a CNI plugin, called as a runtime calls it (environment, config on stdin), in
//! sandbox namespaces: ADD, CHECK, DEL, the spec's error objects, and a DEL that cleans up
//! after an ADD killed half way.

mod common;
use common::{sandbox, HostUnchanged};
use testcaps::Cap;

/// The sh prelude of these tests: `cni CMD [CONFIG]` calls the plugin for container `c1` on
/// eth0 in holder a's namespace with the network config `$CONF` (or CONFIG), prints its stdout
/// with MACs blanked, then `exit N`.
const CNI: &str = r#"
holder a
dir=$work/data
CONF='{"cniVersion":"1.0.0","name":"t","type":"netwire","bridge":"cni7","subnet":"10.72.0.0/24","dataDir":"'$dir'"}'
cni() {
    printf '%s' "${2:-$CONF}" | env CNI_COMMAND="$1" CNI_CONTAINERID=c1 CNI_IFNAME=eth0 \
        CNI_NETNS=${NETNS-/proc/$a/ns/net} CNI_PATH=/nonexistent "$NW" > out && rc=0 || rc=$?
    sed 's/"mac":"[^"]*"/"mac":"M"/g; s|/proc/[0-9]*/ns/net|NS|g' out
    echo "exit $rc"
}
"#;

#[test]
fn add_check_del() {
    testcaps::require!(Cap::Root);
    let _host = HostUnchanged::new();
    let out = sandbox(&format!(
        "{CNI}{}",
        r#"
cni ADD
cat "$dir/t/leases"
"$NSE" -t $a -n -- busybox ping -c 1 -W 5 10.72.0.1 >/dev/null && echo "the container pinged its gateway"
prev=$(cat out)
cni CHECK "$(printf '%s' "$CONF" | sed "s|}\$|,\"prevResult\":$prev}|")"
cni ADD
"$NSE" -t $a -n -- "$NW" del eth0 >/dev/null
cni CHECK "$(printf '%s' "$CONF" | sed "s|}\$|,\"prevResult\":$prev}|")"
cni DEL
cni DEL
NETNS= cni DEL
printf 'leases: %s\n' "$(cat "$dir/t/leases")"
"$NW" show | sed 's/ \(..:\)\{5\}..//; s/ fe80[^ ]*//'
cni VERSION
"#
    ));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "");
    let host = netwire::cni::host_veth("c1", "eth0");
    let add = format!(
        "{{\"cniVersion\":\"1.0.0\",\"dns\":{{}},\"interfaces\":[{{\"mac\":\"M\",\"name\":\"cni7\"}},{{\"mac\":\"M\",\"name\":\"{host}\"}},{{\"mac\":\"M\",\"name\":\"eth0\",\"sandbox\":\"NS\"}}],\"ips\":[{{\"address\":\"10.72.0.2/24\",\"gateway\":\"10.72.0.1\",\"interface\":2}}],\"routes\":[{{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.72.0.1\"}}]}}\nexit 0\n"
    );
    assert_eq!(
        out.stdout,
        format!(
            "{add}10.72.0.2 c1 eth0\nthe container pinged its gateway\nexit 0\n\
             {{\"cniVersion\":\"1.0.0\",\"code\":100,\"msg\":\"RTM_NEWLINK veth {host} failed: File exists (a veth link named {host} is there already; remove it first: netwire del {host})\"}}\nexit 1\n\
             {{\"cniVersion\":\"1.0.0\",\"code\":101,\"msg\":\"host end {host} is missing\"}}\nexit 1\n\
             exit 0\nexit 0\nexit 0\nleases: \n\
             1: lo - down mtu 65536\n2: cni7 bridge up mtu 1500 10.72.0.1/24\n\
             {{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\"]}}\nexit 0\n"
        )
    );
}

#[test]
fn errors_are_the_specs_json_objects() {
    testcaps::require!(Cap::Root);
    let _host = HostUnchanged::new();
    let out = sandbox(&format!(
        "{CNI}{}",
        r#"
cni ADD '{"name":"t","type":"netwire","subnet":"10.72.0.0/24"}'
cni ADD '{"cniVersion":"1.0.0","type":"netwire","subnet":"10.72.0.0/24"}'
cni ADD '{"cniVersion":"1.0.0","name":"t","subnet":"10.72.0.0/24"}'
cni ADD '{"cniVersion":"1.0.0","name":"t","type":"netwire"}'
cni ADD '{"cniVersion":"0.4.0","name":"t","type":"netwire","subnet":"10.72.0.0/24","gateway":"10.9.9.9"}'
cni ADD '{"cniVersion":"2.0.0","name":"t","type":"netwire","subnet":"10.72.0.0/24"}'
cni ADD 'not json'
cni FROB
NETNS= cni ADD
NETNS=/nonexistent/ns cni ADD
[ -e "$dir" ] || echo "no leases made"
"$NW" show | sed 's/ \(..:\)\{5\}..//'
"#
    ));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "");
    assert_eq!(
        out.stdout,
        r#"{"cniVersion":"1.0.0","code":7,"msg":"network config has no \"cniVersion\" (it is required)"}
exit 1
{"cniVersion":"1.0.0","code":7,"msg":"network config has no \"name\" (it is required)"}
exit 1
{"cniVersion":"1.0.0","code":7,"msg":"network config has no \"type\" (it is required)"}
exit 1
{"cniVersion":"1.0.0","code":7,"msg":"network config has no \"subnet\" (it is required)"}
exit 1
{"cniVersion":"0.4.0","code":7,"msg":"gateway 10.9.9.9 is not in subnet 10.72.0.0/24"}
exit 1
{"cniVersion":"1.0.0","code":1,"details":"netwire speaks 0.3.0, 0.3.1, 0.4.0, 1.0.0","msg":"cniVersion 2.0.0 is not supported"}
exit 1
{"cniVersion":"1.0.0","code":6,"msg":"network config is not JSON: expected ident at line 1 column 2"}
exit 1
{"cniVersion":"1.0.0","code":4,"msg":"unknown CNI_COMMAND 'FROB' (ADD, DEL, CHECK or VERSION)"}
exit 1
{"cniVersion":"1.0.0","code":4,"msg":"CNI_NETNS is not set (the runtime must set it for ADD)"}
exit 1
{"cniVersion":"1.0.0","code":3,"msg":"container network namespace /nonexistent/ns: /nonexistent/ns network namespace (/nonexistent/ns): No such file or directory (give a PID, /proc/PID/ns/net or a file a namespace is bound to)"}
exit 1
no leases made
1: lo - down mtu 65536
"#
    );
}

#[test]
fn a_del_cleans_up_after_an_add_killed_half_way() {
    testcaps::require!(Cap::Root);
    let _host = HostUnchanged::new();
    // NETWIRE_STOP_AFTER=5 stops the plugin (SIGSTOP) right after its fifth step, the veth pair
    // made (bridge, gateway address, bridge up, address check, veth): then it is SIGKILLed.
    let out = sandbox(&format!(
        "{CNI}{}",
        r#"
printf '%s' "$CONF" | env NETWIRE_STOP_AFTER=5 CNI_COMMAND=ADD CNI_CONTAINERID=c1 CNI_IFNAME=eth0 \
    CNI_NETNS=/proc/$a/ns/net "$NW" > out &
p=$!
until [ "$(cut -d' ' -f3 /proc/$p/stat)" = T ]; do sleep 0.01; done
kill -KILL $p
exec 3>&2 2>/dev/null
wait $p || echo "killed: $?"
exec 2>&3 3>&-
"$NW" show | sed 's/ \(..:\)\{5\}..//; s/ fe80[^ ]*//'
"$NSE" -t $a -n -- "$NW" show | sed 's/ \(..:\)\{5\}..//; s/ fe80[^ ]*//'
cat "$dir/t/leases"
cni DEL
"$NW" show | sed 's/ \(..:\)\{5\}..//; s/ fe80[^ ]*//'
"$NSE" -t $a -n -- "$NW" show | sed 's/ \(..:\)\{5\}..//; s/ fe80[^ ]*//'
printf 'leases: %s\n' "$(cat "$dir/t/leases")"
cni ADD | grep -o '"address":"[^"]*"'
cni DEL
"#
    ));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "");
    let host = netwire::cni::host_veth("c1", "eth0");
    assert_eq!(
        out.stdout,
        format!(
            "killed: 137\n\
             1: lo - down mtu 65536\n2: cni7 bridge up mtu 1500 10.72.0.1/24\n3: {host} veth down mtu 1500\n\
             1: lo - down mtu 65536\n2: eth0 veth down mtu 1500\n\
             10.72.0.2 c1 eth0\n\
             exit 0\n\
             1: lo - down mtu 65536\n2: cni7 bridge up mtu 1500 10.72.0.1/24\n\
             1: lo - down mtu 65536\n\
             leases: \n\
             \"address\":\"10.72.0.2/24\"\n\
             exit 0\n"
        )
    );
}
