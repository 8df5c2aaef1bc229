"""Conntrack core: tuples, lookup, confirm, UDP/ICMP/generic trackers, zones, notrack,
early drop, lazy enable, timeouts on the virtual clock.

The helpers at the top (``CtEnv``, ``tcp4`` …) are shared by the other test_ct_*/test_nat_*
modules: they drive packets through the hooks directly, the way the datapath's NF_HOOK call
sites will (PRE_ROUTING → FORWARD → POST_ROUTING for a router, LOCAL_OUT → POST_ROUTING for a
local sender)."""
from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core.world import World
from netstack.netfilter import conntrack as nfct
from netstack.netfilter import core as nfc
from netstack.netfilter.conntrack_tuple import CtTuple, invert
from netstack.packet.icmp import build_icmp, build_icmp_echo
from netstack.packet.ipv4 import build_ipv4
from netstack.packet.ipv6 import build_ipv6
from netstack.packet.skb import Packet
from netstack.packet.tcp import build_tcp
from netstack.packet.udp import build_udp

NS = 1_000_000_000


def ip(s: str) -> bytes:
    return ipaddress.ip_address(s).packed


A, B, C = ip("10.0.0.1"), ip("10.0.0.2"), ip("192.168.1.1")
FWD = (nfc.NF_INET_PRE_ROUTING, nfc.NF_INET_FORWARD, nfc.NF_INET_POST_ROUTING)
OUT = (nfc.NF_INET_LOCAL_OUT, nfc.NF_INET_POST_ROUTING)
IN = (nfc.NF_INET_PRE_ROUTING, nfc.NF_INET_LOCAL_IN)


def pkt(data: bytes, proto: int = 0x0800) -> Packet:
    p = Packet(data)
    p.network_header = p.data
    p.protocol = proto
    return p


def tcp4(src: bytes, dst: bytes, sp: int, dp: int, seq: int, ack: int, flags: int,
         payload: bytes = b"", win: int = 65535, options: bytes = b"") -> Packet:
    return pkt(build_ipv4(src, dst, 6, build_tcp(sp, dp, seq, ack, flags, win, payload,
                                                 options=options, src=src, dst=dst)))


def udp4(src: bytes, dst: bytes, sp: int, dp: int, payload: bytes = b"x") -> Packet:
    return pkt(build_ipv4(src, dst, 17, build_udp(sp, dp, payload, src=src, dst=dst)))


def icmp4(src: bytes, dst: bytes, ident: int, seq: int = 1, reply: bool = False) -> Packet:
    return pkt(build_ipv4(src, dst, 1, build_icmp_echo(ident, seq, b"ping", reply=reply)))


class CtEnv:
    """One namespace with conntrack enabled for IPv4 and IPv6."""

    def __init__(self) -> None:
        self.world = World(subsystems=[])
        self.net = self.world.netns_add("ct")
        nfct.ct_sysctl_init(self.net)
        nfct.nf_ct_netns_get(self.net, nfc.NFPROTO_INET)
        self.cn = nfct.ct_net(self.net)

    def run(self, p: Packet, hooks=FWD, pf: int = nfc.NFPROTO_IPV4, indev=None,
            outdev=None) -> bool:
        for h in hooks:
            if not nfc.nf_hook(self.net, pf, h, p, indev, outdev):
                return False
        return True

    def advance(self, secs: float) -> None:
        self.world.clock.now += int(secs * NS)

    def sysctl(self, name: str, v: int) -> None:
        self.net.sysctl.set("net.netfilter." + name, v)


@pytest.fixture()
def env() -> CtEnv:
    return CtEnv()


# ---------------------------------------------------------------- tuples
def test_icmp_inversion_pairs():
    for req, rep in ((8, 0), (13, 14), (15, 16), (17, 18)):
        t = CtTuple(2, A, 7, B, req << 8, 1)
        r = invert(t)
        assert r == CtTuple(2, B, 7, A, rep << 8, 1) and invert(r) == t
    assert invert(CtTuple(2, A, 0, B, 3 << 8 | 3, 1)) is None
    assert invert(CtTuple(10, A * 4, 5, B * 4, 128 << 8, 58)).icmp_type == 129


@given(st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4),
       st.integers(0, 65535), st.integers(0, 65535), st.sampled_from([6, 17, 132, 47, 50]))
@settings(max_examples=60, deadline=None)
def test_inversion_is_an_involution(s, d, sp, dp, proto):
    t = CtTuple(2, s, sp if proto != 47 else 0, d, dp if proto != 47 else 0, proto)
    assert invert(invert(t)) == t


@given(st.binary(max_size=80))
@settings(max_examples=150, deadline=None)
def test_garbage_never_raises(data):
    e = CtEnv()
    p = pkt(data)
    assert e.run(p, IN) is True
    p6 = pkt(data, 0x86DD)
    assert e.run(p6, IN, pf=nfc.NFPROTO_IPV6) is True


# ---------------------------------------------------------------- UDP
def test_udp_new_unconfirmed_then_confirmed(env):
    p = udp4(A, B, 40000, 53)
    nfc.nf_hook(env.net, nfc.NFPROTO_IPV4, nfc.NF_INET_PRE_ROUTING, p, None, None)
    ct, ctinfo = nfct.nf_ct_get(p)
    assert ctinfo == nfct.IP_CT_NEW and not ct.confirmed() and env.cn.count == 0
    assert nfct.nf_ct_state(p) == 8  # new
    nfc.nf_hook(env.net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, p, None, None)
    assert ct.confirmed() and env.cn.count == 1 and ct.expires_in(env.world.clock.now) == 30
    # a second original-direction packet before any reply is still NEW
    p2 = udp4(A, B, 40000, 53)
    env.run(p2)
    assert nfct.nf_ct_get(p2) == (ct, nfct.IP_CT_NEW)


def test_udp_reply_within_2s_not_assured_after_2s_assured(env):
    env.run(udp4(A, B, 1000, 2000))
    r = udp4(B, A, 2000, 1000)
    env.advance(1)
    env.run(r)
    ct, ctinfo = nfct.nf_ct_get(r)
    assert ctinfo == nfct.IP_CT_ESTABLISHED_REPLY and nfct.nf_ct_state(r) == 2
    assert ct.status & nfct.IPS_SEEN_REPLY and not ct.status & nfct.IPS_ASSURED
    assert ct.expires_in(env.world.clock.now) == 30
    env.advance(1.5)
    env.run(udp4(A, B, 1000, 2000))
    assert ct.status & nfct.IPS_ASSURED and ct.expires_in(env.world.clock.now) == 120
    env.sysctl("nf_conntrack_udp_timeout_stream", 77)
    env.run(udp4(A, B, 1000, 2000))
    assert ct.expires_in(env.world.clock.now) == 77


def test_udp_expires_on_virtual_clock(env):
    env.run(udp4(A, B, 1, 2))
    env.advance(29.9)
    assert len(nfct.nf_ct_iterate(env.net)) == 1
    env.advance(0.2)
    assert nfct.nf_ct_iterate(env.net) == []
    p = udp4(A, B, 1, 2)
    env.run(p)
    assert nfct.nf_ct_get(p)[1] == nfct.IP_CT_NEW and env.cn.count == 1


def test_udp_sysctl_timeout(env):
    env.sysctl("nf_conntrack_udp_timeout", 5)
    p = udp4(A, B, 1, 2)
    env.run(p)
    assert nfct.nf_ct_get(p)[0].expires_in(env.world.clock.now) == 5


def test_bad_udp_checksum_invalid_only_at_prerouting(env):
    p = udp4(A, B, 5, 6)
    p.buf[p.data + 26] ^= 0xFF
    env.run(p, IN)
    assert nfct.nf_ct_get(p) == (None, nfct.IP_CT_NONE) and nfct.nf_ct_state(p) == 1
    q = udp4(A, B, 5, 6)
    q.buf[q.data + 26] ^= 0xFF
    env.run(q, OUT)
    assert nfct.nf_ct_get(q)[1] == nfct.IP_CT_NEW
    env.sysctl("nf_conntrack_checksum", 0)
    r = udp4(A, B, 7, 8)
    r.buf[r.data + 26] ^= 0xFF
    env.run(r, IN)
    assert nfct.nf_ct_get(r)[1] == nfct.IP_CT_NEW


# ---------------------------------------------------------------- ICMP
def test_icmp_echo_and_reply(env):
    p = icmp4(A, B, 77)
    env.run(p)
    ct = nfct.nf_ct_get(p)[0]
    assert ct.tuplehash[1] == CtTuple(2, B, 77, A, 0, 1)
    r = icmp4(B, A, 77, reply=True)
    env.run(r)
    assert nfct.nf_ct_get(r) == (ct, nfct.IP_CT_ESTABLISHED_REPLY)
    assert ct.expires_in(env.world.clock.now) == 30


def test_icmp_reply_without_request_is_invalid(env):
    r = icmp4(B, A, 77, reply=True)
    env.run(r)
    assert nfct.nf_ct_state(r) == nfct.NF_CT_STATE_INVALID_BIT and env.cn.count == 0


def test_icmp_error_is_related_with_inner_tuple(env):
    orig = udp4(A, B, 4000, 33434)
    env.run(orig)
    ct = nfct.nf_ct_get(orig)[0]
    quoted = bytes(orig.buf[orig.data:orig.data + 28])
    err = pkt(build_ipv4(B, A, 1, build_icmp(3, 3, bytes(4), quoted)))
    env.run(err)
    assert nfct.nf_ct_get(err) == (ct, nfct.IP_CT_RELATED_REPLY)
    assert nfct.nf_ct_state(err) == 4  # related
    # from a router in the middle (not the reply source): still related
    err2 = pkt(build_ipv4(C, A, 1, build_icmp(11, 0, bytes(4), quoted)))
    env.run(err2)
    assert nfct.nf_ct_get(err2)[1] == nfct.IP_CT_RELATED_REPLY
    # an error about an unknown flow is invalid
    other = udp4(A, B, 4001, 33434)
    err3 = pkt(build_ipv4(B, A, 1, build_icmp(3, 3, bytes(4),
                                              bytes(other.buf[other.data:other.data + 28]))))
    env.run(err3)
    assert nfct.nf_ct_state(err3) == 1


def test_icmpv6_nd_is_untracked_and_echo_tracked(env):
    a6, b6 = ip("fd00::1"), ip("fd00::2")
    from netstack.packet.icmpv6 import icmpv6_checksum
    ns = bytearray([135, 0, 0, 0]) + bytes(4) + b6
    ns[2:4] = icmpv6_checksum(a6, b6, bytes(ns)).to_bytes(2, "big")
    p = pkt(build_ipv6(a6, b6, 58, bytes(ns), hop_limit=255), 0x86DD)
    env.run(p, IN, pf=nfc.NFPROTO_IPV6)
    assert nfct.nf_ct_get(p) == (None, nfct.IP_CT_UNTRACKED)
    assert nfct.nf_ct_state(p) == nfct.NF_CT_STATE_UNTRACKED_BIT
    echo = bytearray([128, 0, 0, 0, 0, 9, 0, 1]) + b"hi"
    echo[2:4] = icmpv6_checksum(a6, b6, bytes(echo)).to_bytes(2, "big")
    q = pkt(build_ipv6(a6, b6, 58, bytes(echo)), 0x86DD)
    env.run(q, IN, pf=nfc.NFPROTO_IPV6)
    ct = nfct.nf_ct_get(q)[0]
    assert ct is not None and ct.tuplehash[1].icmp_type == 129 and ct.tuplehash[1].sport == 9


def test_ipv6_udp_through_extension_headers(env):
    from netstack.packet.ipv6 import ext_dstopts
    a6, b6 = ip("fd00::1"), ip("fd00::2")
    seg = build_udp(5000, 53, b"q", src=a6, dst=b6)
    p = pkt(build_ipv6(a6, b6, 17, seg, ext_headers=[ext_dstopts()]), 0x86DD)
    env.run(p, IN, pf=nfc.NFPROTO_IPV6)
    ct = nfct.nf_ct_get(p)[0]
    assert ct.tuplehash[0] == CtTuple(10, a6, 5000, b6, 53, 17)


# ---------------------------------------------------------------- generic, zones, notrack
def test_generic_protocol_timeout(env):
    p = pkt(build_ipv4(A, B, 47, b"\0\0\x08\0" + bytes(20)))
    env.run(p)
    ct = nfct.nf_ct_get(p)[0]
    assert ct.tuplehash[0].sport == 0 and ct.expires_in(env.world.clock.now) == 600


def test_zones_are_distinct_connections(env):
    p1 = udp4(A, B, 1, 2)
    env.run(p1)
    p2 = udp4(A, B, 1, 2)
    nfct.nf_ct_set_zone_template(p2, 7)
    env.run(p2)
    c1, c2 = nfct.nf_ct_get(p1)[0], nfct.nf_ct_get(p2)[0]
    assert c1 is not c2 and c2.zone.id == 7 and env.cn.count == 2
    r = udp4(B, A, 2, 1)
    nfct.nf_ct_set_zone_template(r, 7)
    env.run(r)
    assert nfct.nf_ct_get(r) == (c2, nfct.IP_CT_ESTABLISHED_REPLY)


def test_zone_direction_bits(env):
    # zone 5 only in the original direction: the reply (in the default zone) still matches
    p = udp4(A, B, 1, 2)
    nfct.nf_ct_set_zone_template(p, 5, 1)
    env.run(p)
    ct = nfct.nf_ct_get(p)[0]
    r = udp4(B, A, 2, 1)
    env.run(r)
    assert nfct.nf_ct_get(r) == (ct, nfct.IP_CT_ESTABLISHED_REPLY)


def test_notrack(env):
    p = udp4(A, B, 1, 2)
    nfct.nf_ct_set_untracked(p)
    env.run(p)
    assert nfct.nf_ct_get(p) == (None, nfct.IP_CT_UNTRACKED) and env.cn.count == 0


def test_lazy_enable_and_put():
    w = World(subsystems=[])
    net = w.netns_add("x")
    nfct.ct_sysctl_init(net)
    p = udp4(A, B, 1, 2)
    assert nfc.nf_hook(net, nfc.NFPROTO_IPV4, nfc.NF_INET_PRE_ROUTING, p, None, None) == 1
    assert p.ct is None and "nf" not in net.__dict__
    nfct.nf_ct_netns_get(net, nfc.NFPROTO_IPV4)
    nfct.nf_ct_netns_get(net, nfc.NFPROTO_IPV4)
    # nf_defrag_ipv4 at -400, then conntrack at -200 (once each, however many users)
    assert [(o.name, o.priority) for o in nfc.nf_hook_entries(
        net, nfc.NFPROTO_IPV4, nfc.NF_INET_PRE_ROUTING)] == [
        ("ipv4_conntrack_defrag", -400), ("ipv4_conntrack_in", -200)]
    nfct.nf_ct_netns_put(net, nfc.NFPROTO_IPV4)
    assert nfct.nf_ct_enabled(net, nfc.NFPROTO_IPV4)
    nfct.nf_ct_netns_put(net, nfc.NFPROTO_IPV4)
    assert not nfct.nf_ct_enabled(net, nfc.NFPROTO_IPV4)
    assert nfc.nf_hook_entries(net, nfc.NFPROTO_IPV4, nfc.NF_INET_PRE_ROUTING) == []
    assert nfc.nf_hook_entries(net, nfc.NFPROTO_IPV6, nfc.NF_INET_PRE_ROUTING) == []


def test_sysctl_defaults_match_kernel():
    w = World(subsystems=[])
    net = w.netns_add("s")
    nfct.ct_sysctl_init(net)
    g = net.sysctl.get
    assert g("net.netfilter.nf_conntrack_max") == 262144
    assert g("net.netfilter.nf_conntrack_tcp_timeout_established") == 432000
    assert g("net.netfilter.nf_conntrack_udp_timeout_stream") == 120
    assert g("net.netfilter.nf_conntrack_sctp_timeout_established") == 210
    assert g("net.netfilter.nf_conntrack_tcp_loose") == 1


# ---------------------------------------------------------------- table limits
def test_early_drop_evicts_unassured_and_full_table_drops(env):
    env.sysctl("nf_conntrack_max", 3)
    for port in (1, 2, 3):
        env.run(udp4(A, B, port, 9))
    assert env.cn.count == 3
    p = udp4(A, B, 4, 9)
    assert env.run(p)
    left = sorted(c.tuplehash[0].sport for c in nfct.nf_ct_iterate(env.net))
    assert left == [2, 3, 4]  # the oldest unassured entry went
    for c in list(env.cn.conns):
        env.cn.set_assured(c)
    q = udp4(A, B, 5, 9)
    assert env.run(q) is False
    assert env.net.drops.counts["NETFILTER_DROP"] == 1 and env.cn.count == 3


def test_syn_flood_memory_is_bounded(env):
    env.sysctl("nf_conntrack_max", 50)
    for i in range(400):
        env.run(tcp4(C, B, 1024 + i, 80, i * 7, 0, 0x02))
    assert env.cn.count == 50 and len(env.cn.table) == 100 and len(env.cn.unassured) == 50


def test_flush_and_destroy_events(env):
    seen = []
    env.cn.listeners.append(lambda kind, ct: seen.append((kind, ct.tuplehash[0].sport)))
    env.run(udp4(A, B, 1, 2))
    env.run(udp4(A, B, 3, 4))
    assert nfct.nf_ct_flush(env.net) == 2 and env.cn.count == 0 and not env.cn.table
    assert seen == [("NEW", 1), ("NEW", 3), ("DESTROY", 1), ("DESTROY", 3)]


def test_attach_makes_generated_packets_related(env):
    p = udp4(A, B, 1, 2)
    env.run(p)
    err = icmp4(B, A, 5)
    nfct.nf_ct_attach(err, p)
    assert nfct.nf_ct_get(err) == (nfct.nf_ct_get(p)[0], nfct.IP_CT_RELATED_REPLY)
    r = udp4(B, A, 2, 1)
    env.run(r)
    err2 = icmp4(A, B, 6)
    nfct.nf_ct_attach(err2, r)
    assert nfct.nf_ct_get(err2)[1] == nfct.IP_CT_RELATED
