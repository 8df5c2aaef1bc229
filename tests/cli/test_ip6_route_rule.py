"""``ip -6 route`` (every subcommand), ``ip -6 rule``, route metrics with ``lock``, the
table-local default for local/broadcast/anycast/nat routes, ``dev``/``via``/``src`` list
filters, ``ip addr replace/change``, ``ip link set addrgenmode``, glibc's IPv6 text form
and ``ip neigh show proxy``.  Outputs and error texts were measured with iproute2 6.1 on
Linux 6.18 and are pinned here; the state-level comparison against the running kernel
is tests/kernel/test_state_diff.py."""
from __future__ import annotations

import json
import platform
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.cli.ipcommon import inet6_ntop
from netstack.cli.ipneigh import pneigh_hash

BOTH = ["netstack.ipv4.af_inet", "netstack.ipv6.af_inet6"]


@pytest.fixture
def net6(make_shell):  # type: ignore[no-untyped-def]
    s = make_shell(BOTH)
    s.ok("ip link add d0 index 4 address 02:00:00:00:60:01 type veth peer name e0 index 5 "
         "address 02:00:00:00:60:02")
    for line in ("ip link set lo up", "ip link set d0 up", "ip link set e0 up",
                 "ip addr add 192.0.2.1/24 dev d0", "ip addr add 2001:db8::1/64 dev d0 nodad"):
        s.ok(line)
    return s


def main6(s) -> list[str]:  # type: ignore[no-untyped-def]
    return [ln for ln in s.ok("ip -6 route").splitlines() if not ln.startswith("fe80::")]


# ------------------------------------------------------------------ add / pref / lock


def test_pref_and_mtu_lock_are_kept_and_printed(net6) -> None:  # type: ignore[no-untyped-def]
    net6.ok("ip -6 route add 2001:db8:6::/64 dev d0 metric 1 mtu lock 1400 pref high")
    net6.ok("ip -6 route add 2001:db8:7::/64 via 2001:db8::2 pref low")
    assert main6(net6) == [
        "2001:db8::/64 dev d0 proto kernel metric 256 pref medium",
        "2001:db8:6::/64 dev d0 metric 1 mtu lock 1400 pref high",
        "2001:db8:7::/64 via 2001:db8::2 dev d0 metric 1024 pref low",
    ]
    js = json.loads(net6.ok("ip -6 -j route show 2001:db8:6::/64"))
    assert js == [{"dst": "2001:db8:6::/64", "dev": "d0", "metric": 1, "flags": [],
                   "metrics": [{"mtu": 1400}], "pref": "high"}]


def test_bad_pref_is_refused_like_iproute2(net6) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = net6.run("ip -6 route add 2001:db8:5::/64 dev d0 pref bogus")
    assert (rc, err) == (255, 'Error: argument "bogus" is wrong: "pref" value is invalid\n\n')


def test_ipv4_metrics_json_is_one_object_and_lock_only_in_text(net6) -> None:  # type: ignore[no-untyped-def]
    net6.ok("ip route add 10.9.0.0/16 via 192.0.2.251 mtu lock 1300 advmss 1000")
    net6.ok("ip route add 10.8.0.0/16 via 192.0.2.251 mtu 1300 window lock 9")
    assert net6.ok("ip route").splitlines()[:2] == [
        "10.8.0.0/16 via 192.0.2.251 dev d0 mtu 1300 window lock 9 ",
        "10.9.0.0/16 via 192.0.2.251 dev d0 mtu lock 1300 advmss 1000 ",
    ]
    js = json.loads(net6.ok("ip -j route"))
    assert js[0]["metrics"] == [{"mtu": 1300, "window": 9}]
    assert js[1]["metrics"] == [{"mtu": 1300, "advmss": 1000}]


@pytest.mark.parametrize("fam", ["", "-6 "])
def test_local_route_without_table_goes_to_table_local(net6, fam: str) -> None:  # type: ignore[no-untyped-def]
    addr = "2001:db8:4::1" if fam else "10.10.0.1"
    net6.ok(f"ip {fam}route add local {addr} dev d0")
    assert addr not in net6.ok(f"ip {fam}route show table main")
    assert f"local {addr} dev d0" in net6.ok(f"ip {fam}route show table local")
    net6.ok(f"ip {fam}route del local {addr} dev d0")
    assert addr not in net6.ok(f"ip {fam}route show table local")


def test_slash128_address_gets_a_prefix_route_but_loopback_does_not(net6) -> None:  # type: ignore[no-untyped-def]
    net6.ok("ip addr add 2001:db8:9::1/128 dev d0 nodad")
    routes = net6.ok("ip -6 route show table all")
    assert "2001:db8:9::1 dev d0 proto kernel metric 256 pref medium" in routes
    assert "\n::1 dev lo" not in "\n" + routes
    assert "local ::1 dev lo table local proto kernel metric 0 pref medium" in routes


# ------------------------------------------------------------ replace / change / del


def test_replace_falls_back_to_the_first_route_of_the_same_metric(net6) -> None:  # type: ignore[no-untyped-def]
    """fib6_add_rt2node: no route of the same metric and ECMP-ness → ``fallback_ins``."""
    net6.ok("ip -6 route add 2001:db8:3::/64 via 2001:db8::5 metric 10")
    net6.ok("ip -6 route append 2001:db8:3::/64 via 2001:db8::6 metric 10")
    assert "\tnexthop via 2001:db8::6 dev d0 weight 1 " in net6.ok("ip -6 route")
    net6.ok("ip -6 route replace 2001:db8:3::/64 dev d0 metric 10")
    assert "2001:db8:3::/64 dev d0 metric 10 pref medium" in main6(net6)
    assert "nexthop" not in net6.ok("ip -6 route")
    net6.ok("ip -6 route del 2001:db8:3::/64 metric 10")
    assert not any(ln.startswith("2001:db8:3::") for ln in main6(net6))


def test_change_needs_an_existing_route(net6) -> None:  # type: ignore[no-untyped-def]
    rc, _, err = net6.run("ip -6 route change 2001:db8:8::/64 dev d0")
    assert (rc, err) == (2, "Error: Can not replace route - no match found.\n")
    net6.ok("ip -6 route add 2001:db8:7::/64 via 2001:db8::2 pref low")
    net6.ok("ip -6 route change 2001:db8:7::/64 dev d0 metric 1024")
    assert "2001:db8:7::/64 dev d0 metric 1024 pref medium" in main6(net6)


def test_flush_table(net6) -> None:  # type: ignore[no-untyped-def]
    net6.ok("ip -6 route add 2001:db8:3::/64 via 2001:db8::5 table 9")
    net6.ok("ip -6 route flush table 9")
    assert net6.ok("ip -6 route show table 9") == ""


def test_table_all_dump_walks_hash_buckets(make_shell) -> None:  # type: ignore[no-untyped-def]
    """inet6_dump_fib: buckets id & 255 in order, newest table first in a bucket."""
    s = make_shell(BOTH)
    s.ok("ip link set lo up")
    for t in (77, 300, 1000, 256, 510, 2):
        s.ok(f"ip -6 route add blackhole 2001:db8:{t}::/64 table {t}")
    order = [ln.split()[-5] for ln in s.ok("ip -6 route show table all").splitlines()
             if ln.startswith("blackhole")]
    assert order == ["256", "2", "300", "77", "1000", "510"]


# ------------------------------------------------------------------------------ get


def test_get_via_gateway(net6) -> None:  # type: ignore[no-untyped-def]
    net6.ok("ip -6 route add 2001:db8:7::/64 via 2001:db8::2 pref low")
    assert net6.ok("ip -6 route get 2001:db8:7::5") == \
        "2001:db8:7::5 from :: via 2001:db8::2 dev d0 src 2001:db8::1 metric 1024 pref low\n"
    assert json.loads(net6.ok("ip -6 -j route get 2001:db8:7::5")) == [
        {"dst": "2001:db8:7::5", "from": "::", "gateway": "2001:db8::2", "dev": "d0",
         "prefsrc": "2001:db8::1", "metric": 1024, "flags": [], "pref": "low"}]


def test_get_local_uses_lo(net6) -> None:  # type: ignore[no-untyped-def]
    assert net6.ok("ip -6 route get 2001:db8::1") == (
        "local 2001:db8::1 from :: dev lo table local proto kernel src 2001:db8::1 "
        "metric 0 pref medium\n")
    assert json.loads(net6.ok("ip -6 -j route get 2001:db8::1")) == [
        {"type": "local", "dst": "2001:db8::1", "from": "::", "dev": "lo", "table": "local",
         "protocol": "kernel", "prefsrc": "2001:db8::1", "metric": 0, "flags": [],
         "pref": "medium"}]


def test_get_shows_metrics_and_from(net6) -> None:  # type: ignore[no-untyped-def]
    net6.ok("ip -6 route add 2001:db8:6::/64 dev d0 metric 1 mtu lock 1400 pref high")
    assert net6.ok("ip -6 route get 2001:db8:6::1 from 2001:db8::1") == (
        "2001:db8:6::1 from 2001:db8::1 dev d0 src 2001:db8::1 metric 1 mtu lock 1400 "
        "pref high\n")
    js = json.loads(net6.ok("ip -6 -j route get 2001:db8:6::1"))
    assert js[0]["metrics"] == [{"mtu": 1400}]


@pytest.mark.parametrize(("route", "dst", "msg"), [
    ("", "3000::1", "Network is unreachable"),
    ("prohibit 2001:db8:9::/64", "2001:db8:9::1", "Permission denied"),
    ("blackhole 2001:db8:8::/64", "2001:db8:8::1", "Invalid argument"),
])
def test_get_error_routes_fail_like_the_kernel(net6, route: str, dst: str, msg: str) -> None:  # type: ignore[no-untyped-def]
    if route:
        net6.ok(f"ip -6 route add {route}")
    rc, out, err = net6.run(f"ip -6 route get {dst}")
    assert (rc, out, err) == (2, "", f"RTNETLINK answers: {msg}\n")


# ------------------------------------------------------------------------------ rules


def test_ip6_rule_add_show_del(net6) -> None:  # type: ignore[no-untyped-def]
    net6.ok("ip -6 rule add from 2001:db8:1::/48 table 100")
    net6.ok("ip -6 rule add to 2001:db8::1 prohibit")
    net6.ok("ip -6 rule add fwmark 3 nop")
    assert net6.ok("ip -6 rule") == (
        "0:\tfrom all lookup local\n"
        "32763:\tfrom all fwmark 0x3 nop\n"
        "32764:\tfrom all to 2001:db8::1 prohibit\n"
        "32765:\tfrom 2001:db8:1::/48 lookup 100\n"
        "32766:\tfrom all lookup main\n")
    assert json.loads(net6.ok("ip -6 -j rule")) == [
        {"priority": 0, "src": "all", "table": "local"},
        {"priority": 32763, "src": "all", "fwmark": "0x3", "nop": None},
        {"priority": 32764, "src": "all", "dst": "2001:db8::1", "action": "prohibit"},
        {"priority": 32765, "src": "2001:db8:1::", "srclen": 48, "table": "100"},
        {"priority": 32766, "src": "all", "table": "main"}]
    net6.ok("ip -6 rule del from 2001:db8:1::/48")
    assert "2001:db8:1::" not in net6.ok("ip -6 rule")
    # IPv4 rules are a separate list
    assert "2001:db8" not in net6.ok("ip rule")


def test_rule_with_ipv6_prefix_but_no_family_is_an_ipv4_rule(net6) -> None:  # type: ignore[no-untyped-def]
    rc, _, err = net6.run("ip rule add from 2001:db8:2::/48 lookup 7")
    assert (rc, err) == (2, "Error: Invalid source address.\n")
    rc, _, err = net6.run("ip rule add to 2001:db8:2::/48 lookup 7")
    assert (rc, err) == (2, "Error: Invalid destination address.\n")


def test_rule_add_without_table_is_main(net6) -> None:  # type: ignore[no-untyped-def]
    """iprule.c asks for RT_TABLE_MAIN when neither ``table`` nor an action is given."""
    net6.ok("ip rule add from 10.5.0.0/16")
    net6.ok("ip -6 rule add from 2001:db8:5::/48")
    assert "32765:\tfrom 10.5.0.0/16 lookup main\n" in net6.ok("ip rule")
    assert "32765:\tfrom 2001:db8:5::/48 lookup main\n" in net6.ok("ip -6 rule")


def test_rule_json_marks_unresolved_goto_and_detached_devices(net6) -> None:  # type: ignore[no-untyped-def]
    net6.ok("ip rule add pref 10 goto 20")
    net6.ok("ip rule add iif nosuch table 3")
    net6.ok("ip rule add oif nosuch2 table 3")
    js = json.loads(net6.ok("ip -j rule"))
    assert {"priority": 10, "src": "all", "goto": 20, "unresolved": None} in js
    assert {"priority": 8, "src": "all", "oif": "nosuch2", "oif_detached": None,
            "table": "3"} in js
    assert {"priority": 9, "src": "all", "iif": "nosuch", "iif_detached": None,
            "table": "3"} in js
    text = net6.ok("ip rule")
    assert "10:\tfrom all goto 20 [unresolved]\n" in text
    assert "9:\tfrom all iif nosuch [detached] lookup 3\n" in text


# ------------------------------------------------------------------ address text form


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="compares with glibc inet_ntop")
@given(st.binary(min_size=16, max_size=16).map(
    lambda b: bytes(x if x % 3 else 0 for x in b)))   # plenty of zero words
@settings(max_examples=300, deadline=None)
def test_inet6_ntop_is_glibcs(raw: bytes) -> None:
    assert inet6_ntop(raw) == socket.inet_ntop(socket.AF_INET6, raw)


@pytest.mark.parametrize(("text", "shown"), [
    ("::ffff:1.2.3.4", "::ffff:1.2.3.4"), ("::1.2.3.4", "::1.2.3.4"), ("::2", "::2"),
    ("::ffff:0:1.2.3.4", "::ffff:0:102:304"), ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
])
def test_inet6_ntop_pinned(text: str, shown: str) -> None:
    assert inet6_ntop(socket.inet_pton(socket.AF_INET6, text)) == shown


# ------------------------------------------------------------ ip addr replace / change


def test_ip_addr_replace_and_change(net6) -> None:  # type: ignore[no-untyped-def]
    net6.ok("ip addr replace 10.1.0.1/24 dev d0")            # creates
    net6.ok("ip addr replace 10.1.0.1/24 dev d0 metric 7")   # updates the prefix route
    assert "10.1.0.0/24 dev d0 proto kernel scope link src 10.1.0.1 metric 7 " in \
        net6.ok("ip route")
    net6.ok("ip addr change 10.1.0.9/24 dev d0")   # NLM_F_CREATE is not looked at
    assert "inet 10.1.0.9/24 scope global secondary d0" in net6.ok("ip addr show dev d0")
    net6.ok("ip -6 addr replace 2001:db8:5::1/64 dev d0 nodad")
    net6.ok("ip -6 addr change 2001:db8:5::1/64 dev d0 nodad metric 9")
    assert "2001:db8:5::/64 dev d0 proto kernel metric 9 pref medium" in main6(net6)
    assert " 2001:db8:5::1/64 metric 9 " in net6.ok("ip -br addr show dev d0")
    net6.ok("ip -6 addr change 2001:db8:5::1/64 dev d0 nodad noprefixroute")
    assert not any(ln.startswith("2001:db8:5::") for ln in main6(net6))
    assert "inet6 2001:db8:5::1/64 metric 9 scope global nodad noprefixroute" in \
        net6.ok("ip addr show dev d0")
    net6.ok("ip -6 addr change 2001:db8:6::1/64 dev d0 nodad")
    assert "2001:db8:6::1/64" in net6.ok("ip addr show dev d0")


def test_ip_link_set_addrgenmode(net6) -> None:  # type: ignore[no-untyped-def]
    rc, _, err = net6.run("ip link set d0 addrgenmode bogus")
    assert (rc, err) == (255, 'Error: argument "bogus" is wrong: Invalid address generation '
                              'mode\n\n')
    net6.ok("ip link set e0 down")
    net6.ok("ip link set e0 addrgenmode none")
    net6.ok("ip link set e0 up")
    assert "inet6" not in net6.ok("ip addr show dev e0")
    assert "addrgenmode none " in net6.ok("ip -d link show dev e0")
    assert json.loads(net6.ok("ip -d -j link show dev e0"))[0]["inet6_addr_gen_mode"] == "none"


def test_show_dev_and_via_filters_skip_multipath_routes(net6) -> None:  # type: ignore[no-untyped-def]
    """iproute2 matches ``dev``/``via`` on RTA_OIF/RTA_GATEWAY, absent from multipath
    routes; IPv6 reject routes carry the loopback as RTA_OIF."""
    net6.ok("ip -6 route add 2001:db8:3::/64 via 2001:db8::5 metric 10")
    net6.ok("ip -6 route append 2001:db8:3::/64 via 2001:db8::6 metric 10")
    net6.ok("ip -6 route add 2001:db8:4::/64 via 2001:db8::5 src 2001:db8::1")
    net6.ok("ip -6 route add blackhole 2001:db8:8::/64")
    assert "2001:db8:3::" not in net6.ok("ip -6 route show dev d0")
    assert net6.ok("ip -6 route show via 2001:db8::5") == \
        "2001:db8:4::/64 dev d0 src 2001:db8::1 metric 1024 pref medium\n"
    assert net6.ok("ip -6 route show via 2001:db8::/64") == \
        "2001:db8:4::/64 via 2001:db8::5 dev d0 src 2001:db8::1 metric 1024 pref medium\n"
    assert net6.ok("ip -6 route show src 2001:db8::1") == \
        "2001:db8:4::/64 via 2001:db8::5 dev d0 metric 1024 pref medium\n"
    assert net6.ok("ip -6 route show dev lo") == \
        "blackhole 2001:db8:8::/64 metric 1024 pref medium\n"
    net6.ok("ip route add 10.4.0.0/16 via 192.0.2.5 src 192.0.2.1")
    assert json.loads(net6.ok("ip -j route show via 192.0.2.5")) == [
        {"dst": "10.4.0.0/16", "dev": "d0", "prefsrc": "192.0.2.1", "flags": []}]
    net6.ok("ip route add 10.13.0.0/16 nexthop via 192.0.2.249 nexthop via 192.0.2.248")
    assert "10.13.0.0" not in net6.ok("ip route show dev d0")


# ------------------------------------------------------------------ neighbour proxies


def test_pneigh_hash_is_the_kernels() -> None:
    """pneigh_hash folds the key's last 4 bytes (loaded little-endian on x86)."""
    assert pneigh_hash(bytes([10, 1, 0, 99])) == 0xE
    assert pneigh_hash(bytes(16)) == 0


def test_ip_neigh_show_proxy(net6) -> None:  # type: ignore[no-untyped-def]
    net6.ok("ip -6 neigh add proxy 2001:db8:1::99 dev d0")
    net6.ok("ip neigh add proxy 10.1.0.99 dev d0")
    net6.ok("ip neigh add proxy 10.1.0.98 dev e0")
    assert net6.ok("ip neigh show proxy") == (
        "10.1.0.99 dev d0 proxy \n10.1.0.98 dev e0 proxy \n2001:db8:1::99 dev d0 proxy \n")
    assert net6.ok("ip neigh show proxy dev d0") == "10.1.0.99 proxy \n2001:db8:1::99 proxy \n"
    assert net6.ok("ip neigh show proxy 10.1.0.99") == "10.1.0.99 dev d0 proxy \n"
    assert json.loads(net6.ok("ip -6 -j neigh show proxy")) == [
        {"dst": "2001:db8:1::99", "dev": "d0", "proxy": None}]
    assert "proxy" not in net6.ok("ip neigh show")
