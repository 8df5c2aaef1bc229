"""proxy_arp / proxy_arp_wifi / neigh_suppress (br_arp_nd_proxy.c) on netstack's bridge,
driven from Python (flags set on the ports directly), with the outcomes the kernel
differential cases pinned (test_br2_kernel.py), plus the corners the kernel harness
cannot reach: VLAN-tagged requests, locally originated requests, local targets, bad
input."""

from __future__ import annotations

import pytest

from netstack.drivers.bridge.br_arp_nd_proxy import (
    NdMsg, br_cb, br_do_proxy_suppress_arp, br_do_suppress_nd, br_is_nd_neigh_msg,
    br_is_neigh_suppress_enabled, br_recalculate_neigh_suppress_enabled)
from netstack.drivers.bridge.br_private import (
    BR_NEIGH_SUPPRESS, BR_NEIGH_VLAN_SUPPRESS, BR_PROXYARP, BR_PROXYARP_WIFI, BridgeVlan)
from test_br2_kernel import BCAST, arp_reply_for, arp_req, na_reply, ns
from test_br2_topo import HOSTS, IP4, IP6, MAC, bridge, port, stack, static_fdb
from kernel.cases import arp, eth_arp, eth_ip6, icmp6_na  # noqa: E402


def run(s, sends):  # type: ignore[no-untyped-def]
    caps = {i: s.capture(h, d) for i, (h, d) in enumerate(HOSTS, 1)}
    for ns_, dev, frame in sends:
        s.inject(ns_, dev, [frame])
    return {i: [f.data for f in c] for i, c in caps.items()}


def arp_topo(**flags: int):  # type: ignore[no-untyped-def]
    s = stack(f"ip -n b neigh add {IP4[2]} lladdr {MAC[2]} dev br0 nud permanent\n")
    static_fdb(s, MAC[2], "p2")
    for name, f in flags.items():
        port(s, name).flags |= f
    br_recalculate_neigh_suppress_enabled(bridge(s))
    return s


def test_proxy_arp_ingress_port_answers_and_still_floods() -> None:
    s = arp_topo(p1=BR_PROXYARP)
    got = run(s, [("h1", "v1h", arp_req(1, IP4[2]))])
    assert got == {1: [arp_reply_for(1, 2)], 2: [arp_req(1, IP4[2])], 3: [arp_req(1, IP4[2])]}


def test_proxy_arp_port_never_gets_flooded_arp() -> None:
    s = arp_topo(p3=BR_PROXYARP)
    got = run(s, [("h1", "v1h", arp_req(1, "10.0.0.99"))])
    assert got[3] == [] and got[2] == [arp_req(1, "10.0.0.99")]


def test_proxy_arp_wifi_destination_port() -> None:
    s = arp_topo(p2=BR_PROXYARP_WIFI)
    got = run(s, [("h1", "v1h", arp_req(1, IP4[2])), ("h3", "v3h", arp_req(3, "10.0.0.99"))])
    assert got[1] == [arp_reply_for(1, 2), arp_req(3, "10.0.0.99")]
    assert got[3] == [arp_req(1, IP4[2])]
    assert got[2] == [arp_req(3, "10.0.0.99")]


def test_neigh_suppress_arp() -> None:
    s = arp_topo(p1=BR_NEIGH_SUPPRESS, p2=BR_NEIGH_SUPPRESS)
    assert bridge(s).neigh_suppress_enabled
    got = run(s, [("h3", "v3h", arp_req(3, IP4[2])), ("h1", "v1h", arp_req(1, IP4[2])),
                  ("h3", "v3h", arp_req(3, "10.0.0.99")), ("h3", "v3h", arp_req(3, IP4[3], IP4[3]))])
    assert got[3] == [arp_reply_for(3, 2), arp_req(1, IP4[2])]
    assert got[1] == [arp_req(3, "10.0.0.99")]
    assert got[2] == [arp_req(1, IP4[2]), arp_req(3, "10.0.0.99")]


def test_neigh_suppress_local_ip_is_not_answered_nor_flooded() -> None:
    s = arp_topo(p1=BR_NEIGH_SUPPRESS)
    s.run_script("ip -n b addr add 10.0.0.254/24 dev br0\n")
    got = run(s, [("h3", "v3h", arp_req(3, "10.0.0.254"))])
    assert got[1] == []  # marked replied: kept off the suppress port
    assert got[2] == [arp_req(3, "10.0.0.254")]
    # the bridge's own ARP answers it (not the proxy): from br0's address
    (rep,) = got[3]
    assert rep[6:12] == bytes.fromhex("0200000000b0")


def test_stale_or_unknown_fdb_gives_no_reply() -> None:
    s = stack(f"ip -n b neigh add {IP4[2]} lladdr {MAC[2]} dev br0 nud permanent\n")
    port(s, "p1").flags |= BR_PROXYARP  # but MAC[2] is not in the FDB
    got = run(s, [("h1", "v1h", arp_req(1, IP4[2]))])
    assert got[1] == []


def test_arp_for_multicast_or_loopback_target_ignored() -> None:
    s = arp_topo(p1=BR_PROXYARP)
    s.run_script(f"ip -n b neigh add 224.0.0.5 lladdr {MAC[2]} dev br0 nud permanent\n")
    got = run(s, [("h1", "v1h", arp_req(1, "224.0.0.5"))])
    assert got[1] == []


def test_malformed_arp_is_bridged_untouched() -> None:
    s = arp_topo(p1=BR_PROXYARP)
    short = arp_req(1, IP4[2])[:30]
    got = run(s, [("h1", "v1h", short)])
    assert got[2] == [short] and got[1] == []
    odd = eth_arp(BCAST, MAC[1], arp(1, MAC[1], IP4[1], "00:00:00:00:00:00", IP4[2])[:4]
                  + bytes([8, 4]) + arp(1, MAC[1], IP4[1], "00:00:00:00:00:00", IP4[2])[6:])
    got = run(s, [("h1", "v1h", odd)])
    assert got[1] == [] and got[2] == [odd]


def test_per_vlan_suppress_flag() -> None:
    s = arp_topo()
    p = port(s, "p2")
    p.flags |= BR_NEIGH_VLAN_SUPPRESS
    assert not br_is_neigh_suppress_enabled(p, 10)
    # ``bridge vlan set dev p2 vid 10 neigh_suppress on`` (BR_VLFLAG_NEIGH_SUPPRESS_ENABLED)
    p.vlgrp.vlans[10] = BridgeVlan(10, neigh_suppress=True)
    assert br_is_neigh_suppress_enabled(p, 10) and not br_is_neigh_suppress_enabled(p, 20)
    assert not br_is_neigh_suppress_enabled(None, 0)
    br_recalculate_neigh_suppress_enabled(bridge(s))
    assert bridge(s).neigh_suppress_enabled


def test_nd_suppress() -> None:
    s = stack(f"ip -n b -6 neigh add {IP6[2]} lladdr {MAC[2]} dev br0 nud permanent\n", ipv6=True)
    static_fdb(s, MAC[2], "p2")
    for name in ("p1", "p2"):
        port(s, name).flags |= BR_NEIGH_SUPPRESS
    br_recalculate_neigh_suppress_enabled(bridge(s))
    una = eth_ip6("33:33:00:00:00:01", MAC[3], icmp6_na(IP6[3], "ff02::1", IP6[3], MAC[3],
                                                         solicited=False, override=True))
    got = run(s, [("h3", "v3h", ns(3, IP6[2], slla=MAC[3])),
                  ("h3", "v3h", ns(3, IP6[2], slla="02:00:00:00:03:99")), ("h3", "v3h", una)])
    nd = [f for f in got[3] if f[12:14] == b"\x86\xdd" and f[54] == 136]
    assert nd == [na_reply(MAC[3], IP6[3]), na_reply("02:00:00:00:03:99", IP6[3])]
    assert [f for f in got[1] if f[54] in (135, 136)] == []
    assert [f for f in got[2] if f[54] in (135, 136)] == []


def test_nd_option_length_zero_means_no_reply() -> None:
    s = stack(f"ip -n b -6 neigh add {IP6[2]} lladdr {MAC[2]} dev br0 nud permanent\n", ipv6=True)
    static_fdb(s, MAC[2], "p2")
    port(s, "p2").flags |= BR_NEIGH_SUPPRESS
    br_recalculate_neigh_suppress_enabled(bridge(s))
    good = ns(3, IP6[2], slla=MAC[3])
    bad = bytearray(good)
    bad[14 + 40 + 24 + 1] = 0  # SLLA option length 0
    got = run(s, [("h3", "v3h", bytes(bad))])
    assert [f for f in got[3] if f[12:14] == b"\x86\xdd" and f[54] == 136] == []
    assert [f for f in got[2] if f[54] == 135] == []  # still marked replied: not flooded


def test_is_nd_neigh_msg_filters() -> None:
    s = stack(ipv6=True)
    w = s.world
    f = ns(3, IP6[2], slla=MAC[3])
    pkt = w.new_packet(f)
    pkt.mac_header = pkt.data
    pkt.data += 14
    m = br_is_nd_neigh_msg(pkt)
    assert m == NdMsg(135, 0, 0, bytes.fromhex("20010db8000000000000000000000002"))
    bad = bytearray(f)
    bad[14 + 41] = 1  # code 1
    pkt2 = w.new_packet(bytes(bad))
    pkt2.mac_header = pkt2.data
    pkt2.data += 14
    assert br_is_nd_neigh_msg(pkt2) is None
    pkt3 = w.new_packet(f[:14 + 40 + 20])
    pkt3.mac_header = pkt3.data
    pkt3.data += 14
    assert br_is_nd_neigh_msg(pkt3) is None


def test_dad_ns_and_self_ns_only_mark() -> None:
    s = stack(ipv6=True)
    br = bridge(s)
    port(s, "p2").flags |= BR_NEIGH_SUPPRESS
    br_recalculate_neigh_suppress_enabled(br)
    for frame in (ns(3, IP6[2], slla=None, src_ip="::"),
                  ns(3, IP6[2], slla=MAC[3], dst=IP6[3])):
        pkt = s.world.new_packet(frame)
        pkt.mac_header = pkt.data
        pkt.data += 14
        pkt.dev = s.world.netns("b").get("p3")
        msg = br_is_nd_neigh_msg(pkt)
        assert msg is not None
        br_do_suppress_nd(pkt, br, 0, port(s, "p3"), msg)
        assert br_cb(pkt).proxyarp_replied


def test_direct_arp_hook_from_suppress_port_does_nothing() -> None:
    s = arp_topo(p1=BR_NEIGH_SUPPRESS)
    pkt = s.world.new_packet(arp_req(1, IP4[2]))
    pkt.mac_header = pkt.data
    pkt.data += 14
    pkt.dev = s.world.netns("b").get("p1")
    br_do_proxy_suppress_arp(pkt, bridge(s), 0, port(s, "p1"))
    assert not br_cb(pkt).proxyarp_replied


VLAN_TOPO = """ip -n b link set br0 type bridge vlan_filtering 1
bridge -n b vlan add dev p1 vid 10 {p1opts}
bridge -n b vlan add dev p2 vid 10
bridge -n b vlan add dev br0 vid 10 self
ip -n b link add link br0 name br0.10 type vlan id 10
ip -n b link set br0.10 up
ip -n b neigh add 10.0.0.2 lladdr 02:00:00:00:02:01 dev br0.10 nud permanent
"""


@pytest.mark.parametrize("pvid", [False, True])
def test_proxy_arp_on_a_vlan(pvid: bool) -> None:
    """vid ≠ 0: the neighbour is looked up on the bridge's VLAN upper (br0.10); the reply
    carries the request's tag unless VID 10 is the port's pvid (br_arp_send).  (No 8021q
    module on the oracle machine: netstack-only.)"""
    s = stack(VLAN_TOPO.format(p1opts="pvid untagged" if pvid else ""))
    static_fdb(s, MAC[2], "p2", 10)
    port(s, "p1").flags |= BR_PROXYARP
    req = arp_req(1, IP4[2])
    tag = b"\x81\x00\x00\x0a"
    sent = req if pvid else req[:12] + tag + req[12:]
    got = run(s, [("h1", "v1h", sent)])
    rep = arp_reply_for(1, 2)
    assert got[1] == [rep if pvid else rep[:12] + tag + rep[12:]]
    assert got[2] == [req[:12] + tag + req[12:]]  # flooded on VLAN 10, tagged on p2


def test_proxy_arp_vlan_without_upper_device_does_nothing() -> None:
    s = stack(VLAN_TOPO.format(p1opts="").replace(
        "ip -n b link add link br0 name br0.10 type vlan id 10\nip -n b link set br0.10 up\n", "")
        .replace("dev br0.10", "dev br0"))
    static_fdb(s, MAC[2], "p2", 10)
    port(s, "p1").flags |= BR_PROXYARP
    req = arp_req(1, IP4[2])
    got = run(s, [("h1", "v1h", req[:12] + b"\x81\x00\x00\x0a" + req[12:])])
    assert got[1] == []


def test_fuzzed_arp_and_nd_never_raise() -> None:
    from hypothesis import given, settings, strategies as st

    s = stack(f"ip -n b neigh add {IP4[2]} lladdr {MAC[2]} dev br0 nud permanent\n"
              f"ip -n b -6 neigh add {IP6[2]} lladdr {MAC[2]} dev br0 nud permanent\n", ipv6=True)
    static_fdb(s, MAC[2], "p2")
    port(s, "p1").flags |= BR_PROXYARP
    port(s, "p2").flags |= BR_NEIGH_SUPPRESS
    br_recalculate_neigh_suppress_enabled(bridge(s))
    base = [arp_req(3, IP4[2]), ns(3, IP6[2], slla=MAC[3])]

    @settings(max_examples=200, deadline=None)
    @given(st.integers(0, 1), st.integers(14, 100), st.binary(min_size=1, max_size=8), st.booleans())
    def fuzz(i: int, at: int, junk: bytes, cut: bool) -> None:
        f = bytearray(base[i])
        at = min(at, len(f) - 1)
        if cut:
            del f[at:]
        else:
            f[at:at + len(junk)] = junk
        s.inject("h3", "v3h", [bytes(f)])
        s.inject("h1", "v1h", [bytes(f)])

    fuzz()
