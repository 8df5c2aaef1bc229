"""``ip link`` / ``ip netns`` / ip's option parsing: error texts and exit codes measured with
iproute2 6.1 on Linux (pinned here), state changes, and the link output formats."""
from __future__ import annotations

import json

import pytest

from netstack.errors import NotSupported

Shell = object  # annotation only; instances come from the conftest fixtures


# (command run in a namespace that has veth pair v0/v1, stderr, exit code, stdout),
# all measured with iproute2 6.1 (`ip -n NS …`).
MEASURED = [
    ("ip link add v0 type veth peer name v1", "RTNETLINK answers: File exists\n", 2, ""),
    ("ip link set nodev up", 'Cannot find device "nodev"\n', 1, ""),
    ("ip link show nodev", 'Device "nodev" does not exist.\n', 1, ""),
    ("ip foo", 'Object "foo" is unknown, try "ip help".\n', 1, ""),
    ("ip link foo", 'Command "foo" is unknown, try "ip link help".\n', 255, ""),
    ("ip link set v0 mtu abc", 'Error: argument "abc" is wrong: Invalid "mtu" value\n\n', 255,
     ""),
    ("ip link set v0 mtu 10", "Error: mtu less than device minimum.\n", 2, ""),
    ("ip link set v0 mtu 70000", "Error: mtu greater than device maximum.\n", 2, ""),
    ("ip link set v0 address zz", '"zz" is invalid lladdr.\n', 1, ""),
    ("ip link set v0 foo", 'Error: either "dev" is duplicate, or "foo" is a garbage.\n', 255,
     ""),
    ("ip link add a type veth", '"type" is invalid lladdr.\n', 1, ""),
    ("ip link add x type bogus", "Error: Unknown device type.\n", 2, ""),
    ("ip link add x", 'Not enough information: "type" argument is required\n', 1, ""),
    ("ip link add", 'Not enough information: "type" argument is required\n', 1, ""),
    ("ip link del nodev", 'Cannot find device "nodev"\n', 1, ""),
    ("ip link del v0 foo", 'Error: either "dev" is duplicate, or "foo" is a garbage.\n', 255,
     ""),
    ("ip link del", 'Not enough information: "dev" argument is required.\n', 255, ""),
    ("ip link set", 'Not enough information: "dev" argument is required.\n', 255, ""),
    ("ip link del lo", "RTNETLINK answers: Operation not supported\n", 2, ""),
    ("ip link add x mtu 10 type veth", "RTNETLINK answers: Invalid argument\n", 2, ""),
    ("ip link set v0 name v1", "RTNETLINK answers: File exists\n", 2, ""),
    ("ip link set lo netns nonexist",
     'Error: argument "nonexist" is wrong: Invalid "netns" value\n\n', 255, ""),
    ("ip link add x type veth peer name", 'Command line is not complete. Try option "help"\n',
     255, ""),
    ("ip link add x type veth foo", "", 1,
     "Usage: ip link <options> type veth [peer <options>]\n"
     "To get <options> type 'ip link add help'\n"),
    ("ip link add x type veth peer name y netns hcli9",
     'Error: argument "hcli9" is wrong: Invalid "netns" value\n\n', 255, ""),
    ("ip link add x address 00:11:22:33:44 type veth", "RTNETLINK answers: Invalid argument\n",
     2, ""),
    ("ip link add x txqueuelen abc type veth",
     'Error: argument "abc" is wrong: Invalid "txqueuelen" value\n\n', 255, ""),
    ("ip link add x mtu 1500 mtu 1400 type veth",
     'Error: duplicate "mtu": "1400" is the second value.\n', 255, ""),
    ("ip link add x type veth peer name y address zz", '"zz" is invalid lladdr.\n', 1, ""),
    ("ip link set dev v0 dev v1", 'Error: either "dev" is duplicate, or "v1" is a garbage.\n',
     255, ""),
    ("ip link set v0 alias", 'Command line is not complete. Try option "help"\n', 255, ""),
    ("ip link show dev lo foo", 'Error: either "dev" is duplicate, or "foo" is a garbage.\n',
     255, ""),
    ("ip link set v0 address 01:00:00:00:00:01",
     "RTNETLINK answers: Cannot assign requested address\n", 2, ""),
    ("ip link add x type veth peer name v0", "RTNETLINK answers: File exists\n", 2, ""),
    ("ip link add abcdefghijklmnopq type veth",
     "Error: Attribute failed policy validation.\n", 2, ""),
    ("ip link set v0 name abcdefghijklmnopq",
     'Error: argument "abcdefghijklmnopq" is wrong: "name" not a valid ifname\n', 255, ""),
    ("ip link set v0 mtu", 'Command line is not complete. Try option "help"\n', 255, ""),
    ("ip link add x type veth peer name y peer name z",
     'Error: duplicate "name": "z" is the second value.\n', 255, ""),
    ("ip link add name x name y type veth",
     'Error: duplicate "name": "y" is the second value.\n', 255, ""),
    ("ip netns add hcli1", 'Cannot create namespace file "/run/netns/hcli1": File exists\n', 1,
     ""),
    ("ip netns del hcli9", 'Cannot remove namespace file "/run/netns/hcli9": No such file or '
     "directory\n", 1, ""),
    ("ip netns exec hcli9 ip link", 'Cannot open network namespace "hcli9": No such file or '
     "directory\n", 255, ""),
    ("ip netns add", "No netns name specified\n", 1, ""),
    ("ip netns exec", "No netns name specified\n", 1, ""),
    ("ip netns exec hcli1", "No command specified\n", 1, ""),
    ("ip netns foo", 'Command "foo" is unknown, try "ip netns help".\n', 255, ""),
    ("ip -n hcli9 link", 'Cannot open network namespace "hcli9": No such file or directory\n',
     255, ""),
    ("ip -n", 'Cannot open network namespace "(null)": No such file or directory\n', 255, ""),
    ("ip -x link", 'Option "-x" is unknown, try "ip -help".\n', 255, ""),
]


def _pair(make_shell) -> "Shell":  # type: ignore[no-untyped-def]
    s = make_shell()
    s.ok("ip netns add hcli1")
    s.ok("ip -n hcli1 link add v0 type veth peer name v1")
    return s


@pytest.mark.parametrize("cmd,stderr,rc,stdout", MEASURED)
def test_measured_errors(cmd: str, stderr: str, rc: int, stdout: str, make_shell) -> None:  # type: ignore[no-untyped-def]  # noqa: E501
    s = _pair(make_shell)
    words = cmd.split()
    if words[1] not in ("netns", "-n", "-x", "foo"):
        words = ["ip", "-n", "hcli1"] + words[1:]
    before = s.ok("ip -n hcli1 -d link")
    got = s.run(words)
    assert got == (rc, stdout, stderr)
    # nothing of a failing command is applied
    assert s.ok("ip -n hcli1 -d link") == before


def test_netns_local_device_cannot_move(sh: Shell) -> None:
    sh.ok("ip netns add hcli2")
    assert sh.run("ip link set lo netns hcli2") == (
        2, "", "Error: The interface netns is immutable.\n")   # measured on Linux 6.x
    assert sh.world.init_net.get("lo") is not None


def test_add_set_del_and_abbreviations(sh: Shell) -> None:
    sh.ok("ip l add v0 addr 02:00:00:00:00:01 mtu 9000 type veth peer name v1 mtu 1400")
    net = sh.world.init_net
    v0, v1 = net.get("v0"), net.get("v1")
    assert v0.address == bytes.fromhex("020000000001") and v0.mtu == 9000 and v1.mtu == 1400
    assert v1.ifindex < v0.ifindex  # the peer registers first, as in veth_newlink
    sh.ok("ip l s v0 up")
    assert sh.ok("ip l sh v0").startswith(
        f"{v0.ifindex}: v0@v1: <NO-CARRIER,BROADCAST,MULTICAST,UP,M-DOWN> mtu 9000 qdisc "
        "noqueue state LOWERLAYERDOWN mode DEFAULT group default qlen 1000\n")
    sh.ok("ip link set dev v1 up mtu 1500 txqlen 77 alias hello")
    out = sh.ok("ip link show v1")
    assert "<BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500" in out and "qlen 77" in out
    assert out.endswith("    alias hello\n")
    sh.ok("ip link set v1 down name w1")
    assert net.get("w1") is v1 and net.get("v1") is None
    sh.ok("ip link del w1")
    assert net.get("v0") is None and net.get("w1") is None


def test_auto_names_and_dummy(sh: Shell) -> None:
    sh.ok("ip link add type veth")
    sh.ok("ip link add type dummy")
    names = set(sh.world.init_net.devices)
    assert {"veth0", "veth1", "dummy0", "lo"} <= names


def test_netns_move_and_link_netns_display(sh: Shell) -> None:
    sh.ok("ip netns add a")
    sh.ok("ip netns add b")
    sh.ok("ip -n a link add w0 type veth peer name w1 netns b")
    out = sh.ok("ip -n a link show w0")
    w1 = sh.world.netns("b").get("w1")
    assert out.splitlines()[0].startswith(f"2: w0@if{w1.ifindex}: <BROADCAST,MULTICAST> ")
    assert out.splitlines()[1].endswith(" link-netns b")
    j = json.loads(sh.ok("ip -n a -j link show w0"))[0]
    assert j["link_index"] == w1.ifindex and j["link_netnsid"] == 0 and "link" not in j
    sh.ok("ip -n b link set w1 netns a")
    assert sh.world.netns("a").get("w1") is w1
    out = sh.ok("ip netns exec a ip link show w1")
    assert out.split(":")[1].strip() == "w1@w0"
    assert sh.ok("ip netns") == "a\nb\n"
    assert json.loads(sh.ok("ip -j netns list")) == [{"name": "a"}, {"name": "b"}]
    sh.ok("ip netns del a")
    assert sh.ok("ip netns list") == "b\n"


def test_json_link_shape_matches_iproute2(sh: Shell) -> None:
    sh.ok("ip link add v0 address 02:00:00:00:00:01 type veth peer name v1 "
          "address 02:00:00:00:00:02")
    got = json.loads(sh.ok("ip -j -d link show v0"))
    assert got == [{
        "ifindex": 3, "link": "v1", "ifname": "v0", "flags": ["BROADCAST", "MULTICAST",
                                                              "M-DOWN"],
        "mtu": 1500, "qdisc": "noop", "operstate": "DOWN", "linkmode": "DEFAULT",
        "group": "default", "txqlen": 1000, "link_type": "ether",
        "address": "02:00:00:00:00:01", "broadcast": "ff:ff:ff:ff:ff:ff", "promiscuity": 0,
        "allmulti": 0, "min_mtu": 68, "max_mtu": 65535, "linkinfo": {"info_kind": "veth"},
        "inet6_addr_gen_mode": "eui64", "num_tx_queues": 2, "num_rx_queues": 2,
        "gso_max_size": 65536, "gso_max_segs": 65535, "tso_max_size": 524280,
        "tso_max_segs": 65535, "gro_max_size": 65536}]
    lo = json.loads(sh.ok("ip -j -s link show lo"))[0]
    assert list(lo) == ["ifindex", "ifname", "flags", "mtu", "qdisc", "operstate", "linkmode",
                        "group", "txqlen", "link_type", "address", "broadcast", "stats64"]
    assert lo["stats64"] == {
        "rx": {"bytes": 0, "packets": 0, "errors": 0, "dropped": 0, "over_errors": 0,
               "multicast": 0},
        "tx": {"bytes": 0, "packets": 0, "errors": 0, "dropped": 0, "carrier_errors": 0,
               "collisions": 0}}


def test_text_details_stats_and_brief_match_iproute2(sh: Shell) -> None:
    sh.ok("ip link set lo up mtu 1000")
    assert sh.ok("ip -d link show lo") == (
        "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 1000 qdisc noqueue state UNKNOWN mode DEFAULT "
        "group default qlen 1000\n"
        "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00 promiscuity 0  allmulti 0 "
        "minmtu 0 maxmtu 0 addrgenmode eui64 numtxqueues 1 numrxqueues 1 gso_max_size 65536 "
        "gso_max_segs 65535 tso_max_size 524280 tso_max_segs 65535 gro_max_size 65536 \n")
    sh.world.init_net.get("lo").stats.rx_bytes = 123456789012
    assert sh.ok("ip -s link show lo").splitlines()[2:] == [
        "    RX:    bytes packets errors dropped  missed   mcast           ",
        "    123456789012       0      0       0       0       0 ",
        "    TX:    bytes packets errors dropped carrier collsns           ",
        "               0       0      0       0       0       0 "]
    sh.ok("ip link add v0 type veth peer name v1")
    assert sh.ok("ip -br link show v1") == (
        f"v1@v0            DOWN           {sh.world.init_net.get('v1').address.hex(':')} "
        "<BROADCAST,MULTICAST,M-DOWN> \n")


def test_pretty_json_layout(sh: Shell) -> None:
    out = sh.ok("ip -j -p link show lo")
    assert out.startswith('[ {\n        "ifindex": 1,\n        "ifname": "lo",\n'
                          '        "flags": [ "LOOPBACK" ],\n')
    assert out.endswith('"broadcast": "00:00:00:00:00:00"\n    } ]\n')


def test_unmodelled_features_say_not_supported(sh: Shell) -> None:
    for cmd in ("ip link add t0 type team", "ip tunnel show", "ip link set lo group 5",
                "ip -batch f"):
        with pytest.raises(NotSupported, match="^not supported: "):
            sh.run(cmd)


def test_flag_words(sh: Shell) -> None:
    sh.ok("ip link add v0 type veth peer name v1")
    assert sh.run("ip link set v0 arp foo") == (
        1, "", 'Error: argument of "arp" must be "on" or "off", not "foo"\n')
    assert sh.run("ip link set v0 arp") == (
        255, "", 'Command line is not complete. Try option "help"\n')
    sh.ok("ip link set v0 arp off promisc on allmulticast on multicast off")
    sh.ok("ip link set v0 up")
    out = sh.ok("ip -d link show v0")
    assert out.startswith(f"{sh.world.init_net.get('v0').ifindex}: v0@v1: <NO-CARRIER,"
                          "BROADCAST,NOARP,ALLMULTI,PROMISC,UP,M-DOWN> mtu 1500 ")
    assert " promiscuity 1  allmulti 1 minmtu 68 maxmtu 65535 \n" in out


def test_index_option(sh: Shell) -> None:
    # measured with iproute2 6.1 on Linux 6.x
    sh.ok("ip netns add h1")
    sh.ok("ip link add v1r index 11 address 02:00:00:00:01:fe type veth peer name v1h "
          "index 21 address 02:00:00:00:01:01 netns h1")
    assert sh.world.init_net.get("v1r").ifindex == 11
    assert sh.world.netns("h1").get("v1h").ifindex == 21
    assert sh.ok("ip link show v1r").startswith("11: v1r@if21: ")
    cases = [
        ("ip link add x index 1 type veth peer name y", 2, "RTNETLINK answers: File exists\n"),
        ("ip link add x index 0 type veth peer name y", 255,
         'Error: argument "0" is wrong: Invalid "index" value\n'),
        ("ip link add x index x type veth peer name y", 255,
         'Error: argument "x" is wrong: Invalid "index" value\n'),
        ("ip link add x index 5 index 6 type veth peer name y", 255,
         'Error: duplicate "index": "6" is the second value.\n'),
        ("ip link add x index 7 type veth peer name y index 7", 2,
         "RTNETLINK answers: Device or resource busy\n"),
        ("ip link set v1r index 9", 255, "index can be used only when creating devices or "
         "when moving device to another netns.\n"),
    ]
    for cmd, rc, err in cases:
        assert sh.run(cmd) == (rc, "", err), cmd
    assert set(sh.world.init_net.devices) == {"lo", "v1r"}


def test_veth_peer_defaults_to_callers_namespace(sh: Shell) -> None:
    """Measured: `ip -n a link add v0 netns b type veth peer name v1` leaves v1 in a."""
    sh.ok("ip netns add a")
    sh.ok("ip netns add b")
    sh.ok("ip -n a link add v0 netns b type veth peer name v1")
    assert sh.world.netns("b").get("v0") is not None
    assert sh.world.netns("a").get("v1") is not None
    assert sh.ok("ip -n a -br link show v1").startswith("v1@if2           DOWN ")
