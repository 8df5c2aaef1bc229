"""``ip addr``/``ip route``/``ip rule``/``ip neigh`` against the real IPv4 control plane:
outputs and error texts measured with iproute2 6.1 on Linux, pinned here."""
from __future__ import annotations

import json

import pytest


@pytest.fixture
def net4(sh4):  # type: ignore[no-untyped-def]
    sh4.ok("ip link add v0 address 02:00:00:00:00:01 type veth peer name v1 "
           "address 02:00:00:00:00:02")
    sh4.ok("ip link set v0 up")
    sh4.ok("ip link set v1 up")
    sh4.ok("ip addr add 1.2.3.4/24 dev v0")
    return sh4


MEASURED = [
    ("ip addr add 1.2.3.4/24", 'Not enough information: "dev" argument is required.\n', 1),
    ("ip addr add bad dev v0", 'Error: any valid prefix is expected rather than "bad".\n', 1),
    ("ip addr add 1.2.3.4/33 dev v0",
     'Error: any valid prefix is expected rather than "1.2.3.4/33".\n', 1),
    ("ip addr add 1.2.3.4/24 dev nodev", 'Cannot find device "nodev"\n', 1),
    ("ip addr add 1.2.3.4/24 dev v0", "Error: ipv4: Address already assigned.\n", 2),
    ("ip addr del 1.2.3.5/24 dev v0", "Error: ipv4: Address not found.\n", 2),
    ("ip addr del 1.2.3.5/24", 'Not enough information: "dev" argument is required.\n', 1),
    ("ip addr show dev nodev", 'Device "nodev" does not exist.\n', 1),
    ("ip addr foo", 'Command "foo" is unknown, try "ip address help".\n', 255),
    ("ip addr flush", "Flush requires arguments.\n", 1),
    ("ip addr add 10.1.1.5/24 dev v0 scope bogus",
     'Error: argument "bogus" is wrong: invalid scope value.\n', 255),
    ("ip addr add 10.1.1.5/24 dev v0 metric x",
     'Error: argument "x" is wrong: "metric" value is invalid\n\n', 255),
    ("ip route add 10.0.0.0/8 via 9.9.9.9", "Error: Nexthop has invalid gateway.\n", 2),
    ("ip route add 10.0.0.0/8 dev nodev", 'Cannot find device "nodev"\n', 1),
    ("ip route add 10.0.0.0/33 dev v0",
     'Error: any valid prefix is expected rather than "10.0.0.0/33".\n', 1),
    ("ip route add bad dev v0", 'Error: any valid prefix is expected rather than "bad".\n', 1),
    ("ip route del 11.0.0.0/8", "RTNETLINK answers: No such process\n", 2),
    ("ip route del 11.0.0.0/8 dev v0", "RTNETLINK answers: No such process\n", 2),
    ("ip route add 12.0.0.0/8 foo",
     'Error: either "to" is duplicate, or "foo" is a garbage.\n', 255),
    ("ip route add 12.0.0.0/8 dev v0 metric abc",
     'Error: argument "abc" is wrong: "metric" value is invalid\n\n', 255),
    ("ip route add 12.0.0.0/8 dev v0 table foo",
     'Error: argument "foo" is wrong: "table" value is invalid\n\n', 255),
    ("ip route show table foo",
     'Error: argument "foo" is wrong: table id value is invalid\n\n', 255),
    ("ip route show table 101", "Error: ipv4: FIB table does not exist.\nDump terminated\n",
     2),
    ("ip route foo", 'Command "foo" is unknown, try "ip route help".\n', 255),
    ("ip route add 51.0.0.0/8 nexthop via 1.2.3.9 foo",
     'Error: "nexthop" or end of line is expected instead of "foo"\n', 255),
    ("ip route add 51.0.0.0/8 nexthop", 'Error: unexpected end of line after "nexthop"\n',
     255),
    ("ip route add 51.0.0.0/8 nexthop via 1.2.3.9 weight 0",
     'Error: argument "0" is wrong: "weight" is invalid\n\n', 255),
    ("ip route add 51.0.0.0/8 proto foo dev v1",
     'Error: argument "foo" is wrong: "protocol" value is invalid\n\n', 255),
    ("ip route add 51.0.0.0/8 scope foo dev v1",
     'Error: argument "foo" is wrong: invalid "scope" value\n\n', 255),
    ("ip route add 51.0.0.0/8 mtu x dev v1",
     'Error: argument "x" is wrong: "mtu" value is invalid\n\n', 255),
    ("ip rule add foo", 'Error: argument "foo" is wrong: Failed to parse rule type\n', 255),
    ("ip rule del from 5.2.3.0/24 table 100", "RTNETLINK answers: No such file or directory\n",
     2),
    ("ip rule add pref x table 5",
     'Error: argument "x" is wrong: preference value is invalid\n\n', 255),
    ("ip rule add from bad table 5",
     'Error: any valid prefix is expected rather than "bad".\n', 1),
    ("ip rule add table foo", 'Error: argument "foo" is wrong: invalid table ID\n\n', 255),
    ("ip rule foo", 'Command "foo" is unknown, try "ip rule help".\n', 255),
    ("ip neigh add 1.2.3.8 lladdr zz dev v0", '"zz" is invalid lladdr.\n', 1),
    ("ip neigh add 1.2.3.8 lladdr 00:11:22:33:44:55",
     "Device and destination are required arguments.\n", 255),
    ("ip neigh del 1.2.3.9 dev v0", "RTNETLINK answers: No such file or directory\n", 2),
    ("ip neigh add 1.2.3.8 lladdr 00:11:22:33:44:55 dev v0 nud foo",
     'Error: argument "foo" is wrong: nud state is bad\n', 255),
    ("ip neigh foo", 'Command "foo" is unknown, try "ip neigh help".\n', 255),
    ("ip neigh flush", "Flush requires arguments.\n", 1),
    ("ip neigh change 10.1.1.99 lladdr 00:11:22:33:44:58 dev v0",
     "RTNETLINK answers: No such file or directory\n", 2),
]


@pytest.mark.parametrize("cmd,stderr,rc", MEASURED)
def test_measured_errors(net4, cmd: str, stderr: str, rc: int) -> None:  # type: ignore[no-untyped-def]
    before = [net4.ok(c) for c in ("ip -d addr", "ip route show table all", "ip rule",
                                   "ip neigh show nud all")]
    assert net4.run(cmd) == (rc, "", stderr)
    after = [net4.ok(c) for c in ("ip -d addr", "ip route show table all", "ip rule",
                                  "ip neigh show nud all")]
    assert after == before


def test_addr_text_and_json(net4) -> None:  # type: ignore[no-untyped-def]
    net4.ok("ip addr add 10.1.1.1/24 brd + dev v0")
    net4.ok("ip addr add 10.1.1.2/24 dev v0 label v0:1")
    net4.ok("ip addr add 10.2.0.1/16 dev v0 metric 7")
    net4.ok("ip addr add 10.9.0.1 peer 10.9.0.2/32 dev v1")
    assert net4.ok("ip -4 addr show dev v0") == (
        "3: v0@v1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group "
        "default qlen 1000\n"
        "    inet 1.2.3.4/24 scope global v0\n"
        "       valid_lft forever preferred_lft forever\n"
        "    inet 10.1.1.1/24 brd 10.1.1.255 scope global v0\n"
        "       valid_lft forever preferred_lft forever\n"
        "    inet 10.2.0.1/16 metric 7 scope global v0\n"
        "       valid_lft forever preferred_lft forever\n"
        "    inet 10.1.1.2/24 scope global secondary v0:1\n"
        "       valid_lft forever preferred_lft forever\n")
    j = json.loads(net4.ok("ip -j addr show dev v1"))[0]
    assert "linkmode" not in j
    assert j["addr_info"] == [{"family": "inet", "local": "10.9.0.1", "address": "10.9.0.2",
                               "prefixlen": 32, "scope": "global", "label": "v1",
                               "valid_life_time": 4294967295,
                               "preferred_life_time": 4294967295}]
    assert net4.ok("ip -br addr show dev v1") == (
        "v1@v0            UP             10.9.0.1 peer 10.9.0.2/32 \n")
    rc, out, err = net4.run("ip addr del 10.1.1.1 dev v0")
    assert rc == 0 and err.startswith("Warning: Executing wildcard deletion to stay "
                                      "compatible with old scripts.\n")
    net4.ok("ip addr flush dev v0")
    assert "inet " not in net4.ok("ip addr show dev v0")


def test_routes_text_and_json(net4) -> None:  # type: ignore[no-untyped-def]
    net4.ok("ip route add 60.0.0.0/8 via 1.2.3.9 mtu 1400 table 100 metric 9 proto static")
    net4.ok("ip route add 61.0.0.0/8 dev v0 onlink via 9.9.9.9")
    net4.ok("ip route add 62.0.0.0/8 proto static nexthop via 1.2.3.9 nexthop via 1.2.3.8 "
            "weight 3")
    net4.ok("ip route add blackhole 30.0.0.0/8")
    assert net4.ok("ip route") == (
        "1.2.3.0/24 dev v0 proto kernel scope link src 1.2.3.4 \n"
        "blackhole 30.0.0.0/8 \n"
        "61.0.0.0/8 via 9.9.9.9 dev v0 onlink \n"
        "62.0.0.0/8 proto static \n"
        "\tnexthop via 1.2.3.9 dev v0 weight 1 \n"
        "\tnexthop via 1.2.3.8 dev v0 weight 3 \n")
    assert net4.ok("ip route show table 100") == (
        "60.0.0.0/8 via 1.2.3.9 dev v0 proto static metric 9 mtu 1400 \n")
    all_ = net4.ok("ip route show table all").splitlines()
    assert all_[0] == "60.0.0.0/8 via 1.2.3.9 dev v0 table 100 proto static metric 9 mtu 1400 "
    assert "local 1.2.3.4 dev v0 table local proto kernel scope host src 1.2.3.4 " in all_
    assert json.loads(net4.ok("ip -j route show table all"))[0] == {
        "dst": "60.0.0.0/8", "gateway": "1.2.3.9", "dev": "v0", "table": "100",
        "protocol": "static", "metric": 9, "flags": [], "metrics": [{"mtu": 1400}]}
    assert json.loads(net4.ok("ip -j route show 62.0.0.0/8")) == [{
        "dst": "62.0.0.0/8", "protocol": "static", "flags": [],
        "nexthops": [{"gateway": "1.2.3.9", "dev": "v0", "weight": 1, "flags": []},
                     {"gateway": "1.2.3.8", "dev": "v0", "weight": 3, "flags": []}]}]
    assert net4.ok("ip route show dev v0 proto kernel") == "1.2.3.0/24 scope link src 1.2.3.4 \n"
    assert net4.run("ip route add 61.0.0.0/8 dev v0") == (
        2, "", "RTNETLINK answers: File exists\n")
    net4.ok("ip route replace 61.0.0.0/8 dev v0 metric 0")
    net4.ok("ip route del 61.0.0.0/8")
    net4.ok("ip route flush table 100")
    assert net4.ok("ip route show table 100") == ""


def test_rules_text_and_json(net4) -> None:  # type: ignore[no-untyped-def]
    net4.ok("ip rule add from 10.0.0.0/8 to 20.0.0.0/8 fwmark 0x10/0xff iif v0 oif v1 "
            "tos 0x10 pref 100 lookup 100")
    net4.ok("ip rule add not from 10.0.0.0/8 blackhole")
    net4.ok("ip rule add fwmark 5 goto 32766")
    net4.ok("ip rule add table main suppress_prefixlength 0 pref 200")
    assert net4.ok("ip rule") == (
        "0:\tfrom all lookup local\n"
        "98:\tfrom all fwmark 0x5 goto 32766\n"
        "99:\tnot from 10.0.0.0/8 blackhole\n"
        "100:\tfrom 10.0.0.0/8 to 20.0.0.0/8 tos 0x10 fwmark 0x10/0xff iif v0 oif v1 "
        "lookup 100\n"
        "200:\tfrom all lookup main suppress_prefixlength 0\n"
        "32766:\tfrom all lookup main\n"
        "32767:\tfrom all lookup default\n")
    assert json.loads(net4.ok("ip -j rule")) == [
        {"priority": 0, "src": "all", "table": "local"},
        {"priority": 98, "src": "all", "fwmark": "0x5", "goto": 32766},
        {"priority": 99, "not": None, "src": "10.0.0.0", "srclen": 8, "action": "blackhole"},
        {"priority": 100, "src": "10.0.0.0", "srclen": 8, "dst": "20.0.0.0", "dstlen": 8,
         "tos": "0x10", "fwmark": "0x10", "fwmask": "0xff", "iif": "v0", "oif": "v1",
         "table": "100"},
        {"priority": 200, "src": "all", "table": "main", "suppress_prefixlen": 0},
        {"priority": 32766, "src": "all", "table": "main"},
        {"priority": 32767, "src": "all", "table": "default"}]
    net4.ok("ip rule del pref 100")
    assert net4.run("ip rule del pref 100") == (
        2, "", "RTNETLINK answers: No such file or directory\n")


def test_neigh(net4) -> None:  # type: ignore[no-untyped-def]
    net4.ok("ip neigh add 1.2.3.7 lladdr 00:11:22:33:44:55 dev v0")
    assert net4.ok("ip neigh") == "1.2.3.7 dev v0 lladdr 00:11:22:33:44:55 PERMANENT \n"
    assert json.loads(net4.ok("ip -j neigh")) == [
        {"dst": "1.2.3.7", "dev": "v0", "lladdr": "00:11:22:33:44:55", "state": ["PERMANENT"]}]
    assert net4.run("ip neigh add 1.2.3.7 lladdr 00:11:22:33:44:55 dev v0") == (
        2, "", "RTNETLINK answers: File exists\n")
    net4.ok("ip neigh add 1.2.3.9 lladdr 00:11:22:33:44:57 dev v0 router nud stale")
    assert "1.2.3.9 lladdr 00:11:22:33:44:57 router STALE \n" in net4.ok("ip n show dev v0")
    net4.ok("ip neigh replace 1.2.3.7 lladdr 00:11:22:33:44:58 dev v0")
    assert "00:11:22:33:44:58 PERMANENT" in net4.ok("ip neigh show 1.2.3.7")
    net4.ok("ip neigh flush dev v0")   # PERMANENT entries survive a flush
    assert net4.ok("ip neigh") == "1.2.3.7 dev v0 lladdr 00:11:22:33:44:58 PERMANENT \n"
    net4.ok("ip neigh del 1.2.3.7 dev v0")
    assert net4.ok("ip neigh") == ""


@pytest.fixture
def net6(make_shell):  # type: ignore[no-untyped-def]
    s = make_shell(["netstack.ipv4.af_inet", "netstack.ipv6.af_inet6"])
    s.ok("ip link add v0 type veth peer name v1")
    s.ok("ip link set v0 up")
    s.ok("ip link set v1 up")
    s.ok("ip -6 addr add 2001:db8::1/64 dev v0 nodad")
    return s


def test_ipv6_routes_match_iproute2_layout(net6) -> None:  # type: ignore[no-untyped-def]
    net6.ok("ip -6 route add 2001:db8:1::/48 via 2001:db8::2")
    net6.ok("ip -6 route add 2001:db8:2::/48 dev v0 metric 5 proto static")
    net6.ok("ip -6 route add blackhole 2001:db8:3::/48")
    net6.ok("ip -6 route add 2001:db8:4::/48 nexthop via 2001:db8::2 nexthop via 2001:db8::3 "
            "weight 2")
    out = net6.ok("ip -6 route show table main")
    assert out.splitlines()[:7] == [
        "2001:db8::/64 dev v0 proto kernel metric 256 pref medium",
        "2001:db8:1::/48 via 2001:db8::2 dev v0 metric 1024 pref medium",
        "2001:db8:2::/48 dev v0 proto static metric 5 pref medium",
        "blackhole 2001:db8:3::/48 dev lo metric 1024 pref medium",
        "2001:db8:4::/48 metric 1024 pref medium",
        "\tnexthop via 2001:db8::2 dev v0 weight 1 ",
        "\tnexthop via 2001:db8::3 dev v0 weight 2 "]
    j = json.loads(net6.ok("ip -6 -j route show 2001:db8:1::/48"))
    assert j == [{"dst": "2001:db8:1::/48", "gateway": "2001:db8::2", "dev": "v0",
                  "metric": 1024, "flags": [], "pref": "medium"}]
    assert net6.run("ip -6 route add 2001:db8:1::/48 via 2001:db8::2") == (
        2, "", "RTNETLINK answers: File exists\n")
    assert net6.run("ip -6 route del 2001:db8:9::/48") == (
        2, "", "RTNETLINK answers: No such process\n")
    net6.ok("ip -6 route del 2001:db8:1::/48")
    assert "2001:db8:1::" not in net6.ok("ip -6 route")
    # without a family, ip route is IPv4 only unless "table all"
    assert "2001:" not in net6.ok("ip route")
    assert "2001:db8:2::/48" in net6.ok("ip route show table all")


def test_ipv6_addresses(net6) -> None:  # type: ignore[no-untyped-def]
    j = json.loads(net6.ok("ip -6 -j addr show dev v0"))[0]["addr_info"]
    assert j[0] == {"family": "inet6", "local": "2001:db8::1", "prefixlen": 64,
                    "scope": "global", "nodad": True, "valid_life_time": 4294967295,
                    "preferred_life_time": 4294967295}
    assert "    inet6 2001:db8::1/64 scope global nodad \n" in net6.ok("ip addr show dev v0")
    net6.ok("ip addr del 2001:db8::1/64 dev v0")
    assert "2001:db8::1" not in net6.ok("ip addr")


def test_route_get(net4) -> None:  # type: ignore[no-untyped-def]
    net4.ok("ip link set lo up")
    net4.ok("ip route add 70.0.0.0/8 via 1.2.3.9")
    assert net4.ok("ip route get 70.1.1.1") == (
        "70.1.1.1 via 1.2.3.9 dev v0 src 1.2.3.4 uid 0 \n    cache \n")
    # Measured on 6.18: until the first rule the local routes sit in the main trie
    # (fib_unmerge splits them off), so no "table local" is reported.
    assert net4.ok("ip route get 1.2.3.4") == (
        "local 1.2.3.4 dev lo src 1.2.3.4 uid 0 \n    cache <local> \n")
    assert json.loads(net4.ok("ip -j route get 1.2.3.4")) == [{
        "type": "local", "dst": "1.2.3.4", "dev": "lo",
        "prefsrc": "1.2.3.4", "flags": [], "uid": 0, "cache": ["local"]}]
    assert net4.ok("ip route get 1.2.3.255") == (
        "broadcast 1.2.3.255 dev v0 src 1.2.3.4 uid 0 \n    cache <local,brd> \n")
    net4.ok("ip rule add from 1.1.1.1 table 5")
    net4.ok("ip rule del from 1.1.1.1 table 5")   # the split stays (fib4_rule_delete)
    assert net4.ok("ip route get 1.2.3.4") == (
        "local 1.2.3.4 dev lo table local src 1.2.3.4 uid 0 \n    cache <local> \n")
    assert net4.ok("ip route get 1.2.3.255") == (
        "broadcast 1.2.3.255 dev v0 table local src 1.2.3.4 uid 0 \n    cache <local,brd> \n")
    assert net4.run("ip route get 8.8.8.8") == (
        2, "", "RTNETLINK answers: Network is unreachable\n")


def test_family_filtered_addr_output(sh4) -> None:  # type: ignore[no-untyped-def]
    """Measured: `ip -4 addr` drops the link/ether line (and link_type/address/broadcast in
    JSON); -s counters come after the addresses; -d keeps the line without addrgenmode."""
    sh4.ok("ip link set lo up")
    head = ("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group "
            "default qlen 1000\n")
    addr = ("    inet 127.0.0.1/8 scope host lo\n"
            "       valid_lft forever preferred_lft forever\n")
    stats = ("    RX:  bytes packets errors dropped  missed   mcast           \n"
             "             0       0      0       0       0       0 \n"
             "    TX:  bytes packets errors dropped carrier collsns           \n"
             "             0       0      0       0       0       0 \n")
    assert sh4.ok("ip -4 addr") == head + addr
    assert sh4.ok("ip -4 -d -s addr") == head + (
        "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00 promiscuity 0  allmulti 0 "
        "minmtu 0 maxmtu 0 numtxqueues 1 numrxqueues 1 gso_max_size 65536 gso_max_segs 65535 "
        "tso_max_size 524280 tso_max_segs 65535 gro_max_size 65536 \n") + addr + stats
    assert json.loads(sh4.ok("ip -4 -j addr")) == [{
        "ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP", "LOWER_UP"], "mtu": 65536,
        "qdisc": "noqueue", "operstate": "UNKNOWN", "group": "default", "txqlen": 1000,
        "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8,
                       "scope": "host", "label": "lo", "valid_life_time": 4294967295,
                       "preferred_life_time": 4294967295}]}]
    assert sh4.ok("ip -4 -br addr") == "lo               UNKNOWN        127.0.0.1/8 \n"
    assert sh4.ok("ip -4 link") == (
        "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT "
        "group default qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n")
