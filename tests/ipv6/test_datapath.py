"""ip6_rcv_core validation, local delivery with extension headers, ip6_forward."""
from __future__ import annotations

import pytest

from netstack.ipv6.addr import a6
from netstack.packet.checksum import csum_ipv6_magic, csum_partial
from netstack.packet.ipv6 import build_ipv6, ext_dstopts, ext_hopopts
from netstack.packet.udp import build_udp

from .helpers import MAC_A, MAC_B, MAC_C, capture, eth, host_router, inject

H1, R1, H2 = "2001:db8:1::1", "2001:db8:1::fe", "2001:db8:2::1"


def udp6(src: str, dst: str, payload: bytes = b"hi", hlim: int = 64, sport: int = 40000,
         dport: int = 7000, **kw) -> bytes:
    s, d = a6(src), a6(dst)
    return build_ipv6(s, d, 17, build_udp(sport, dport, payload, src=s, dst=d),
                      hop_limit=hlim, **kw)


def icmp_of(frame: bytes) -> tuple[bytes, bytes]:
    ip = frame[14:] if frame[12:14] == b"\x86\xdd" else frame
    assert ip[6] == 58
    return ip, ip[40:]


@pytest.mark.parametrize("mutate,reason", [
    (lambda p: p[:30], "IP_INHDR"),
    (lambda p: b"\x40" + p[1:], "UNHANDLED_PROTO"),
    (lambda p: p[:24] + a6("::1") + p[40:], "IP_INHDR"),
    (lambda p: p[:8] + a6("ff02::1") + p[24:], "IP_INHDR"),
    (lambda p: p[:24] + a6("ff01::1") + p[40:], "IP_INHDR"),
    (lambda p: p[:24] + a6("ff00::1") + p[40:], "IP_INHDR"),
    (lambda p: p[:4] + b"\x04\x00" + p[6:], "PKT_TOO_SMALL"),
])
def test_rcv_core_drop_reasons(mutate, reason) -> None:
    w, h, vh, r, *_ = host_router()
    inject(w, vh, [eth(MAC_B, MAC_A, mutate(udp6(H1, R1)))])
    assert r.drops[reason] == 1, r.drops.as_dict()


def test_otherhost_disabled_and_l2_multicast() -> None:
    w, h, vh, r, vr, *_ = host_router()
    inject(w, vh, [eth(MAC_C, MAC_A, udp6(H1, R1))])
    assert r.drops["OTHERHOST"] == 1
    # unicast IPv6 in an L2 broadcast frame: accepted by default, dropped under the knob
    inject(w, vh, [eth(b"\xff" * 6, MAC_A, udp6(H1, R1))])
    assert r.drops["UNICAST_IN_L2_MULTICAST"] == 0 and r.drops["NO_SOCKET"] == 1
    r.sysctl.set("net.ipv6.conf.vr.drop_unicast_in_l2_multicast", 1)
    inject(w, vh, [eth(b"\xff" * 6, MAC_A, udp6(H1, R1))])
    assert r.drops["UNICAST_IN_L2_MULTICAST"] == 1
    r.sysctl.set("net.ipv6.conf.vr.disable_ipv6", 1)
    inject(w, vh, [eth(MAC_B, MAC_A, udp6(H1, R1))])
    assert r.drops["IPV6DISABLED"] == 1


def test_forward_ok_hop_limit_and_too_big_like_kernel() -> None:
    """The scenario of tests/kernel/test_ipv6_forward.py, checked the same way."""
    w, h, vh, r, vr, vr2, h2, vh2 = host_router()
    got1, got2 = capture(h, vh), capture(h2, vh2)
    ok = udp6(H1, H2, b"v6 hello", hlim=5)
    dying = udp6(H1, H2, b"dying", hlim=1, sport=40001, dport=7001)
    big = udp6(H1, H2, bytes(1400 - 48), sport=40002, dport=7002)
    inject(w, vh, [eth(MAC_B, MAC_A, p) for p in (ok, dying, big)])
    assert len(got2) == 1
    ip = got2[0][-len(ok):]
    assert ip[7] == 4 and ip[:7] == ok[:7] and ip[8:] == ok[8:]
    assert len(got1) == 2
    ip, icmp = icmp_of(got1[0])
    assert icmp[:2] == b"\x03\x00" and ip[8:24] == a6(R1) and ip[24:40] == a6(H1)
    assert ip[7] == 64 and icmp[8:] == dying
    ip, icmp = icmp_of(got1[1])
    assert icmp[:2] == b"\x02\x00" and int.from_bytes(icmp[4:8], "big") == 1280
    assert ip[8:24] == a6(R1) and len(ip) == 1280 and icmp[8:] == big[:1280 - 48]
    assert csum_ipv6_magic(ip[8:24], ip[24:40], len(icmp), 58, csum_partial(icmp)) == 0
    assert r.drops["IP_INHDR"] == 1 and r.drops["PKT_TOO_BIG"] == 1


def test_packet_too_big_uses_route_mtu_metric() -> None:
    from netstack.ipv6.route import Fib6Nexthop, Fib6Route, fib6_route_add
    w, h, vh, r, vr, vr2, *_ = host_router()
    vr2.mtu = 1500
    r.notify("CHANGEMTU", vr2)
    fib6_route_add(r, Fib6Route(a6("2001:db8:3::"), 64, metrics={"mtu": 1400},
                                nexthops=[Fib6Nexthop(a6("2001:db8:2::1"), vr2)]), excl=True)
    got1 = capture(h, vh)
    inject(w, vh, [eth(MAC_B, MAC_A, udp6(H1, "2001:db8:3::1", bytes(1450)))])
    ip, icmp = icmp_of(got1[0])
    assert icmp[:2] == b"\x02\x00" and int.from_bytes(icmp[4:8], "big") == 1400
    assert r.drops["PKT_TOO_BIG"] == 1


def test_forwarding_disabled_and_bad_sources() -> None:
    w, h, vh, r, vr, *_ = host_router()
    got1 = capture(h, vh)
    inject(w, vh, [eth(MAC_B, MAC_A, udp6("fe80::1", H2))])
    # the "beyond scope" error to fe80::1 waits for neighbour discovery of fe80::1
    ip, icmp = icmp_of(got1[0])
    assert icmp[0] == 135 and icmp[8:24] == a6("fe80::1")
    n = r.ipv6.nd_tbl.lookup(vr, a6("fe80::1"))
    (queued,) = n.arp_queue
    q = queued.bytes()
    assert q[40:42] == b"\x01\x02" and q[24:40] == a6("fe80::1")
    assert r.drops["IP_INADDRERRORS"] == 1
    r.sysctl.set("net.ipv6.conf.all.forwarding", 0)
    inject(w, vh, [eth(MAC_B, MAC_A, udp6(H1, H2))])
    assert r.drops["IP_INADDRERRORS"] == 2


def test_no_route_sends_unreachable() -> None:
    w, h, vh, r, *_ = host_router()
    got1 = capture(h, vh)
    inject(w, vh, [eth(MAC_B, MAC_A, udp6(H1, "2001:db8:99::1"))])
    ip, icmp = icmp_of(got1[0])
    assert icmp[:2] == b"\x01\x00"
    assert r.drops["IP_INNOROUTES"] == 1


def test_unknown_next_header_param_problem_pointer() -> None:
    w, h, vh, r, *_ = host_router()
    got1 = capture(h, vh)
    pkt = build_ipv6(a6(H1), a6(R1), 253, b"abcdefgh")
    inject(w, vh, [eth(MAC_B, MAC_A, pkt)])
    ip, icmp = icmp_of(got1[0])
    assert icmp[:2] == b"\x04\x01" and int.from_bytes(icmp[4:8], "big") == 6
    pkt = build_ipv6(a6(H1), a6(R1), 253, b"abcdefgh", ext_headers=[ext_dstopts()])
    inject(w, vh, [eth(MAC_B, MAC_A, pkt)])
    ip, icmp = icmp_of(got1[1])
    assert icmp[:2] == b"\x04\x01" and int.from_bytes(icmp[4:8], "big") == 40
    assert r.drops["IP_NOPROTO"] == 2


@pytest.mark.parametrize("opt_type,dst,sends", [
    (0x3E, R1, False),          # 00: skip, delivered (port unreachable is ICMP 1/4)
    (0x7E, R1, False),          # 01: discard silently
    (0xBE, R1, True),           # 10: param problem
    (0xBE, "ff02::1", True),    # 10: even to multicast
    (0xFE, "ff02::1", False),   # 11: not to multicast
    (0xFE, R1, True),           # 11: to unicast
])
def test_hop_by_hop_unknown_option_actions(opt_type, dst, sends) -> None:
    w, h, vh, r, *_ = host_router()
    got1 = capture(h, vh)
    s, d = a6(H1), a6(dst)
    pkt = build_ipv6(s, d, 17, build_udp(1, 2, b"x", src=s, dst=d),
                     ext_headers=[ext_hopopts(bytes((opt_type, 2, 0, 0)))])
    dmac = bytes.fromhex("333300000001") if dst.startswith("ff") else MAC_B
    inject(w, vh, [eth(dmac, MAC_A, pkt)])
    params = [f for f in got1 if icmp_of(f)[1][0] == 4]
    assert bool(params) == sends
    if sends:
        icmp = icmp_of(params[0])[1]
        assert icmp[1] == 2 and int.from_bytes(icmp[4:8], "big") == 42
    if opt_type == 0x3E:
        assert r.drops["NO_SOCKET"] == 1
    else:
        assert r.drops["UNHANDLED_PROTO"] == 1


def test_route_hint_one_lookup_per_destination_run() -> None:
    w, h, vh, r, *_ = host_router()
    before = r.ipv6.route_lookups
    inject(w, vh, [eth(MAC_B, MAC_A, udp6(H1, H2, bytes([i]))) for i in range(10)])
    assert r.ipv6.route_lookups - before == 1
    got = capture(w.netns("h2"), w.netns("h2").get("vh2"))
    inject(w, vh, [eth(MAC_B, MAC_A, udp6(H1, H2, bytes([i]))) for i in range(5)])
    assert len(got) == 5 and w.netns("r").get("vr2").doorbells >= 1


def test_echo_reply() -> None:
    w, h, vh, r, *_ = host_router()
    got1 = capture(h, vh)
    s, d = a6(H1), a6(R1)
    req = bytearray(bytes((128, 0, 0, 0, 0, 7, 0, 1)) + b"payload")
    c = csum_ipv6_magic(s, d, len(req), 58, csum_partial(req))
    req[2:4] = c.to_bytes(2, "big")
    inject(w, vh, [eth(MAC_B, MAC_A, build_ipv6(s, d, 58, bytes(req), traffic_class=0x20))])
    ip, icmp = icmp_of(got1[0])
    assert icmp[0] == 129 and icmp[4:] == bytes(req[4:])
    assert ip[8:24] == d and ip[24:40] == s and ip[7] == 64
    assert ((ip[0] & 0xF) << 4 | ip[1] >> 4) == 0x20


def test_jumbo_option_rules() -> None:
    w, h, vh, r, *_ = host_router()
    got1 = capture(h, vh)
    s, d = a6(H1), a6(R1)
    jumbo = bytes((0xC2, 4)) + (70000).to_bytes(4, "big")
    pkt = build_ipv6(s, d, 17, build_udp(1, 2, b"x", src=s, dst=d),
                     ext_headers=[ext_hopopts(jumbo)])  # payload length != 0
    inject(w, vh, [eth(MAC_B, MAC_A, pkt)])
    icmp = icmp_of(got1[0])[1]
    assert icmp[:2] == b"\x04\x00" and int.from_bytes(icmp[4:8], "big") == 42
    small = bytes((0xC2, 4)) + (1000).to_bytes(4, "big")
    pkt = build_ipv6(s, d, 17, bytes(100), ext_headers=[ext_hopopts(small)], payload_length=0)
    inject(w, vh, [eth(MAC_B, MAC_A, pkt)])
    icmp = icmp_of(got1[1])[1]
    assert icmp[:2] == b"\x04\x00" and int.from_bytes(icmp[4:8], "big") == 44
    assert r.drops["IP_INHDR"] == 2
