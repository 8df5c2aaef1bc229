"""Neighbour Discovery on the neighbour core: bytes match the kernel, validation drop
reasons, NA processing (RFC 4861 §7.2.5, RFC 9131), solicitation timeline."""
from __future__ import annotations

import pytest

from netstack.core.neighbour import (NTF_ROUTER, NUD_DELAY, NUD_FAILED, NUD_REACHABLE,
                                     NUD_STALE, neigh_add)
from netstack.ipv6.addr import a6
from netstack.ipv6.udp import udp6_socket
from netstack.packet.icmpv6 import build_icmpv6
from netstack.packet.ipv6 import build_ipv6

from .helpers import (MAC_A, MAC_B, addr, capture, eth, host_router, inject, no_rs, pair,
                      txcapture, world)

# Captured on Linux 6.18 (f6a: f6v0 02:..:01 2001:db8:8::1/64, f6b: f6v1 02:..:02
# 2001:db8:8::2/64, nodad, auto_flowlabels=0; a UDP datagram from f6a port 58676 to ::2:9).
K_NS = bytes.fromhex(
    "3333ff00000202000000000186dd6000000000203aff20010db8000800000000000000000001ff02000000"
    "00000000000001ff00000287001c170000000020010db80008000000000000000000020101020000000001")
K_NA = bytes.fromhex(
    "02000000000102000000000286dd6000000000203aff20010db800080000000000000000000220010db800"
    "080000000000000000000188008a596000000020010db80008000000000000000000020201020000000002")
K_UDP = bytes.fromhex(
    "02000000000202000000000186dd600000000009114020010db800080000000000000000000120010db800"
    "0800000000000000000002e534000900095b9f78")
K_UNREACH = bytes.fromhex(
    "02000000000102000000000286dd6000000000393a4020010db800080000000000000000000220010db800"
    "080000000000000000000101041d4e00000000600000000009114020010db8000800000000000000000001"
    "20010db8000800000000000000000002e534000900095b9f78")


def test_resolution_exchange_matches_kernel_bytes() -> None:
    w = world()
    a, va, b, vb = pair(w, "a", "va", "b", "vb")
    for n in (a, b):
        n.sysctl.set("net.ipv6.auto_flowlabels", 0)
    addr(a, va, "2001:db8:8::1/64")
    addr(b, vb, "2001:db8:8::2/64")
    w.advance(3)
    out_a, out_b = txcapture(a, va), txcapture(b, vb)
    s = udp6_socket(a)
    s.bind(("::", 0xE534))
    s.sendto(b"x", ("2001:db8:8::2", 9))
    w.advance(3)
    assert no_rs(out_a) == [K_NS, K_UDP]
    assert no_rs(out_b) == [K_NA, K_UNREACH]
    (na,) = [n for n in a.ipv6.nd_tbl.entries.values() if n.key == a6("2001:db8:8::2")]
    (nb,) = [n for n in b.ipv6.nd_tbl.entries.values() if n.key == a6("2001:db8:8::1")]
    # kernel: REACHABLE on the solicitor, DELAY on the answerer (it used its STALE entry)
    assert na.nud_state == NUD_REACHABLE and nb.nud_state == NUD_DELAY
    assert s.errors == [(1, 4, 0)]


def _nd_frame(src: str, dst: str, icmp: bytes, hlim: int = 255, dmac: bytes = MAC_B) -> bytes:
    return eth(dmac, MAC_A, build_ipv6(a6(src), a6(dst), 58, icmp, hop_limit=hlim))


def _ns(src: str, dst: str, target: str, slla: bytes | None = MAC_A, code: int = 0,
        opts: bytes = b"") -> bytes:
    body = bytes(4) + a6(target) + ((bytes((1, 1)) + slla) if slla else b"") + opts
    return build_icmpv6(135, code, body, a6(src), a6(dst))


def _na(src: str, dst: str, target: str, flags: int, tlla: bytes | None = MAC_A) -> bytes:
    body = bytes((flags, 0, 0, 0)) + a6(target) + ((bytes((2, 1)) + tlla) if tlla else b"")
    return build_icmpv6(136, 0, body, a6(src), a6(dst))


@pytest.mark.parametrize("frame,reason", [
    (_nd_frame("2001:db8:1::1", "2001:db8:1::fe", _ns("2001:db8:1::1", "2001:db8:1::fe",
                                                       "2001:db8:1::fe"), hlim=64),
     "IPV6_NDISC_HOP_LIMIT"),
    (_nd_frame("2001:db8:1::1", "2001:db8:1::fe", _ns("2001:db8:1::1", "2001:db8:1::fe",
                                                       "2001:db8:1::fe", code=1)),
     "IPV6_NDISC_BAD_CODE"),
    (_nd_frame("2001:db8:1::1", "2001:db8:1::fe", _ns("2001:db8:1::1", "2001:db8:1::fe",
                                                       "2001:db8:1::fe", opts=b"\x05\x00" + bytes(6))),
     "IPV6_NDISC_BAD_OPTIONS"),
    (_nd_frame("2001:db8:1::1", "2001:db8:1::fe", _ns("2001:db8:1::1", "2001:db8:1::fe",
                                                       "2001:db8:1::77")),
     "IPV6_NDISC_NS_OTHERHOST"),
    (_nd_frame("::", "ff02::1:ff00:fe", _ns("::", "ff02::1:ff00:fe", "2001:db8:1::fe"),
               dmac=bytes.fromhex("3333ff0000fe")),
     "IPV6_NDISC_BAD_OPTIONS"),  # DAD NS must not carry a source link-layer option
])
def test_ndisc_validation_drop_reasons(frame, reason) -> None:
    w, h, vh, r, *_ = host_router()
    inject(w, vh, [frame])
    assert r.drops[reason] == 1, r.drops.as_dict()


def test_ns_answered_with_flags_and_entry_created() -> None:
    w, h, vh, r, vr, *_ = host_router()
    got = capture(h, vh)
    inject(w, vh, [_nd_frame("2001:db8:1::5", "ff02::1:ff00:fe",
                             _ns("2001:db8:1::5", "ff02::1:ff00:fe", "2001:db8:1::fe"),
                             dmac=bytes.fromhex("3333ff0000fe"))])
    (na,) = got
    ip = na[14:]
    icmp = ip[40:]
    assert icmp[0] == 136 and icmp[4] == 0x80 | 0x40 | 0x20  # R (router), S, O
    assert icmp[24:32] == bytes((2, 1)) + vr.address and ip[24:40] == a6("2001:db8:1::5")
    n = r.ipv6.nd_tbl.lookup(vr, a6("2001:db8:1::5"))
    assert n.nud_state in (NUD_STALE, NUD_DELAY) and n.ha == MAC_A
    # unicast NS: S set, O clear, no target link-layer option
    got.clear()
    inject(w, vh, [_nd_frame("2001:db8:1::5", "2001:db8:1::fe",
                             _ns("2001:db8:1::5", "2001:db8:1::fe", "2001:db8:1::fe"))])
    (na,) = got
    assert len(na) == 14 + 40 + 24 and na[54] == 136 and na[58] == 0x80 | 0x40


def test_dad_ns_answered_to_all_nodes() -> None:
    w, h, vh, r, vr, *_ = host_router()
    got = capture(h, vh)
    inject(w, vh, [_nd_frame("::", "ff02::1:ff00:fe", _ns("::", "ff02::1:ff00:fe",
                                                           "2001:db8:1::fe", slla=None),
                             dmac=bytes.fromhex("3333ff0000fe"))])
    (na,) = got
    assert na[38:54] == a6("ff02::1") and na[58] == 0x80 | 0x20  # R, O, not solicited


def _stale_h1(r, vr) -> None:
    neigh_add(r.ipv6.nd_tbl, vr, a6("2001:db8:1::1"), MAC_A, state=NUD_STALE, replace=True,
              excl=False)


def test_unsolicited_na_override_and_drop_unsolicited_na() -> None:
    new = bytes.fromhex("020000000199")
    una = _nd_frame("2001:db8:1::1", "ff02::1", _na("2001:db8:1::1", "ff02::1", "2001:db8:1::1",
                                                     0x20, new), dmac=bytes.fromhex("333300000001"))
    w, h, vh, r, vr, *_ = host_router()
    _stale_h1(r, vr)
    inject(w, vh, [una])
    n = r.ipv6.nd_tbl.lookup(vr, a6("2001:db8:1::1"))
    assert n.ha == new and n.nud_state == NUD_STALE
    w, h, vh, r, vr, *_ = host_router()
    _stale_h1(r, vr)
    r.sysctl.set("net.ipv6.conf.vr.drop_unsolicited_na", 1)
    inject(w, vh, [una])
    n = r.ipv6.nd_tbl.lookup(vr, a6("2001:db8:1::1"))
    assert n.ha == MAC_A and n.nud_state == NUD_STALE


def test_solicited_na_makes_reachable_and_router_flag() -> None:
    w, h, vh, r, vr, *_ = host_router()
    _stale_h1(r, vr)
    inject(w, vh, [_nd_frame("2001:db8:1::1", "2001:db8:1::fe",
                             _na("2001:db8:1::1", "2001:db8:1::fe", "2001:db8:1::1", 0xE0))])
    n = r.ipv6.nd_tbl.lookup(vr, a6("2001:db8:1::1"))
    assert n.nud_state == NUD_REACHABLE and n.flags & NTF_ROUTER


@pytest.mark.parametrize("mode,src,creates", [
    (0, "2001:db8:1::7", False), (1, "2001:db8:9::7", True),
    (2, "2001:db8:1::7", True), (2, "2001:db8:9::7", False)])
def test_accept_untracked_na(mode, src, creates) -> None:
    w, h, vh, r, vr, *_ = host_router()
    r.sysctl.set("net.ipv6.conf.vr.accept_untracked_na", mode)
    inject(w, vh, [_nd_frame(src, "ff02::1", _na(src, "ff02::1", "2001:db8:1::7", 0x20),
                             dmac=bytes.fromhex("333300000001"))])
    n = r.ipv6.nd_tbl.lookup(vr, a6("2001:db8:1::7"))
    assert (n is not None) == creates
    if creates:
        assert n.nud_state == NUD_STALE


def test_solicitation_timeline_then_address_unreachable() -> None:
    """3 multicast NS 1 s apart, FAILED after the third times out, and ICMPv6
    destination unreachable / address unreachable (code 3) to the sender."""
    w, h, vh, r, vr, vr2, h2, vh2 = host_router()
    r.ipv6.nd_tbl.entries.pop((a6("2001:db8:2::1"), vr2.ifindex))
    out2 = txcapture(r, vr2)
    got1 = capture(h, vh)
    from .test_datapath import udp6
    inject(w, vh, [eth(MAC_B, MAC_A, udp6("2001:db8:1::1", "2001:db8:2::1"))])
    times = [0.0] * len(out2)
    for _ in range(40):
        before = len(out2)
        w.advance(0.1)
        if len(out2) > before:
            times.append(round(w.clock.now / 1e9, 1))
    assert times == [0.0, 1.0, 2.0]
    assert all(f[:6] == bytes.fromhex("3333ff000001") and f[54] == 135 for f in out2)
    n = r.ipv6.nd_tbl.lookup(vr2, a6("2001:db8:2::1"))
    assert n.nud_state == NUD_FAILED
    (err,) = [f for f in got1 if f[54] == 1]
    assert err[55] == 3
    assert r.drops["NEIGH_FAILED"] == 1


def _ra(src: str, lifetime: int, hlim: int = 0, reach: int = 0, retrans: int = 0) -> bytes:
    body = bytes((hlim, 0)) + lifetime.to_bytes(2, "big") + reach.to_bytes(4, "big") + \
        retrans.to_bytes(4, "big") + bytes((1, 1)) + MAC_A
    return build_icmpv6(134, 0, body, a6(src), a6("ff02::1"))


def test_router_advertisement_default_route_and_parameters() -> None:
    from netstack.ipv6.route import RTPROT_RA, fib6_dump
    w = world()
    a, va, b, vb = pair(w, "a", "va", "b", "vb")
    w.advance(3)
    ra = eth(bytes.fromhex("333300000001"), MAC_A,
             build_ipv6(a6("fe80::1"), a6("ff02::1"), 58,
                        _ra("fe80::1", 1800, hlim=42, reach=20000, retrans=500), hop_limit=255))
    inject(w, va, [ra])
    (dflt,) = [r for r in fib6_dump(b, 254) if r.dst_len == 0]
    assert dflt.protocol == RTPROT_RA and dflt.priority == 1024
    assert dflt.nexthops[0].gw == a6("fe80::1") and dflt.nexthops[0].dev is vb
    assert b.sysctl.get("net.ipv6.conf.vb.hop_limit") == 42
    assert b.sysctl.get("net.ipv6.neigh.vb.retrans_time_ms") == 500
    assert b.sysctl.get("net.ipv6.neigh.vb.base_reachable_time_ms") == 20000
    n = b.ipv6.nd_tbl.lookup(vb, a6("fe80::1"))
    assert n.flags & NTF_ROUTER and n.ha == MAC_A and n.nud_state == NUD_STALE
    # lifetime 0 withdraws the default route; a forwarding node ignores RAs (accept_ra=1)
    inject(w, va, [eth(bytes.fromhex("333300000001"), MAC_A,
                       build_ipv6(a6("fe80::1"), a6("ff02::1"), 58, _ra("fe80::1", 0),
                                  hop_limit=255))])
    assert [r for r in fib6_dump(b, 254) if r.dst_len == 0] == []
    b.sysctl.set("net.ipv6.conf.all.forwarding", 1)
    inject(w, va, [ra])
    assert [r for r in fib6_dump(b, 254) if r.dst_len == 0] == []


def test_ra_from_global_source_ignored() -> None:
    w, h, vh, r, vr, *_ = host_router()
    r.sysctl.set("net.ipv6.conf.vr.accept_ra", 2)
    inject(w, vh, [_nd_frame("2001:db8:1::1", "ff02::1", _ra("2001:db8:1::1", 1800),
                             dmac=bytes.fromhex("333300000001"))])
    assert r.drops["NOT_SPECIFIED"] == 1
    assert r.ipv6.nd_tbl.lookup(vr, a6("2001:db8:1::1")).flags & NTF_ROUTER == 0


def test_redirect_updates_target_entry() -> None:
    w = world()
    a, va, b, vb = pair(w, "a", "va", "b", "vb")
    w.advance(3)
    body = bytes(4) + a6("fe80::9") + a6("2001:db8:9::1") + bytes((2, 1)) + MAC_A
    msg = build_icmpv6(137, 0, body, a6("fe80::1"), a6("fe80::ff:fe00:2"))
    inject(w, va, [eth(MAC_B, MAC_A, build_ipv6(a6("fe80::1"), a6("fe80::ff:fe00:2"), 58, msg,
                                                hop_limit=255))])
    n = b.ipv6.nd_tbl.lookup(vb, a6("fe80::9"))
    assert n is not None and n.ha == MAC_A and n.flags & NTF_ROUTER


def test_forward_back_out_same_link_sends_redirect() -> None:
    from netstack.ipv6.route import Fib6Nexthop, Fib6Route, fib6_route_add
    from .test_datapath import udp6
    w, h, vh, r, vr, *_ = host_router()
    w.advance(0.1)
    # 2001:db8:7::/64 lies behind 2001:db8:1::2, a router on h's own link
    neigh_add(r.ipv6.nd_tbl, vr, a6("fe80::2"), bytes.fromhex("020000000102"))
    fib6_route_add(r, Fib6Route(a6("2001:db8:7::"), 64,
                                nexthops=[Fib6Nexthop(a6("fe80::2"), vr)]), excl=True)
    got = capture(h, vh)
    pkt = udp6("2001:db8:1::1", "2001:db8:7::1", b"via-r")
    inject(w, vh, [eth(MAC_B, MAC_A, pkt)] * 8)
    redirects = [f for f in got if f[54] == 137]
    fwd = [f for f in got if f[20] == 17]
    # all forwarded; redirects limited to 1/s with the inet_peer burst of 6
    assert len(redirects) == 6 and len(fwd) == 8
    ip = redirects[0][14:]
    assert ip[7] == 255 and ip[8:24] == a6("fe80::ff:fe00:2") and ip[24:40] == a6("2001:db8:1::1")
    icmp = ip[40:]
    assert icmp[8:24] == a6("fe80::2") and icmp[24:40] == a6("2001:db8:7::1")
    assert icmp[40:48] == bytes((2, 1)) + bytes.fromhex("020000000102")
    rd_len = (len(pkt) + 8) & ~7  # the kernel rounds the redirected header down
    assert icmp[48:50] == bytes((4, rd_len >> 3)) and icmp[56:] == pkt[:rd_len - 8]
    assert fwd[0][:6] == bytes.fromhex("020000000102") and fwd[0][21] == 63
    # byte for byte what Linux 6.18 sent in the same setup (6 redirects for 8 packets too)
    assert redirects[0] == K_REDIRECT


K_REDIRECT = bytes.fromhex(
    "02000000000102000000000286dd6000000000683afffe80000000000000000000fffe00000220010db8"
    "0001000000000000000000018900ee3800000000fe80000000000000000000000000000220010db80007"
    "000000000000000000010201020000000102040700000000000060000000000d114020010db800010000"
    "000000000000000120010db80007000000000000000000019c401b58000da328")


def test_proxy_ndp_answers_multicast_ns_after_proxy_delay() -> None:
    w, h, vh, r, vr, *_ = host_router()
    r.sysctl.set("net.ipv6.conf.vr.proxy_ndp", 1)
    r.sysctl.set("net.ipv6.conf.all.proxy_ndp", 1)
    tbl = r.ipv6.nd_tbl
    pn = tbl.pneigh_lookup(a6("2001:db8:1::77"), vr, create=True)
    if getattr(tbl.ops, "pconstructor", None) is not None:
        tbl.ops.pconstructor(pn)  # what neigh_add(proxy) does in the kernel (pneigh_lookup)
    got = capture(h, vh)
    ns = _nd_frame("2001:db8:1::1", "ff02::1:ff00:77",
                   _ns("2001:db8:1::1", "ff02::1:ff00:77", "2001:db8:1::77"),
                   dmac=bytes.fromhex("3333ff000077"))
    inject(w, vh, [ns])
    assert got == []
    w.advance(0.8)
    (na,) = got
    # solicited; no override for an address that is not ours (proxied)
    assert na[54] == 136 and na[62:78] == a6("2001:db8:1::77") and na[58] == 0x40
    assert na[22:38] == a6("2001:db8:1::fe")  # source selection: the target is not ours
    # unicast NS for the proxied address: answered at once
    got.clear()
    inject(w, vh, [_nd_frame("2001:db8:1::1", "2001:db8:1::77",
                             _ns("2001:db8:1::1", "2001:db8:1::77", "2001:db8:1::77"))])
    (na,) = got
    assert na[54] == 136 and na[58] == 0x40  # solicited, no override for a unicast NS


def test_ns_for_subnet_router_anycast_answered() -> None:
    w, h, vh, r, vr, *_ = host_router()
    got = capture(h, vh)
    inject(w, vh, [_nd_frame("2001:db8:1::1", "2001:db8:1::",
                             _ns("2001:db8:1::1", "2001:db8:1::", "2001:db8:1::"))])
    (na,) = got
    # R (forwarding) + S; not O: the anycast address is not an address of ours
    assert na[54] == 136 and na[58] == 0x80 | 0x40 and na[62:78] == a6("2001:db8:1::")
