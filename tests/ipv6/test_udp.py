"""UDP over IPv6: mandatory checksum, demux, errors; ping sockets."""
from __future__ import annotations

import errno

import pytest

from netstack.errors import KernelError
from netstack.ipv6.addr import a6
from netstack.ipv6.udp import ping6, udp6_socket
from netstack.packet.ipv6 import build_ipv6
from netstack.packet.udp import build_udp

from .helpers import MAC_A, MAC_B, capture, eth, host_router, inject

H1, R1 = "2001:db8:1::1", "2001:db8:1::fe"


def dgram(payload: bytes = b"data", check: int | None = None, length: int | None = None) -> bytes:
    s, d = a6(H1), a6(R1)
    u = build_udp(5000, 9000, payload, src=s, dst=d, check=check, length=length)
    return eth(MAC_B, MAC_A, build_ipv6(s, d, 17, u))


def test_delivery_and_zero_checksum_dropped() -> None:
    w, h, vh, r, *_ = host_router()
    s = udp6_socket(r)
    s.bind(("::", 9000))
    inject(w, vh, [dgram(b"good"), dgram(b"zero", check=0), dgram(b"bad", check=0x1234)])
    assert s.recvfrom() == (b"good", (H1, 5000))
    assert s.recvfrom() is None
    assert r.drops["UDP_CSUM"] == 2


def test_zero_checksum_without_socket_is_csum_error_not_port_unreachable() -> None:
    w, h, vh, r, *_ = host_router()
    got = capture(h, vh)
    inject(w, vh, [dgram(b"zero", check=0)])
    assert got == [] and r.drops["UDP_CSUM"] == 1
    inject(w, vh, [dgram(b"x")])
    assert got[0][54:56] == b"\x01\x04" and r.drops["NO_SOCKET"] == 1


def test_short_length_and_trim() -> None:
    w, h, vh, r, *_ = host_router()
    s = udp6_socket(r)
    s.bind(("::", 9000))
    inject(w, vh, [dgram(b"abc", length=4)])
    assert r.drops["PKT_TOO_SMALL"] == 1


def test_bind_rules_and_exact_match_wins() -> None:
    w, h, vh, r, *_ = host_router()
    wild = udp6_socket(r)
    wild.bind(("::", 9000))
    exact = udp6_socket(r)
    with pytest.raises(KernelError) as e:
        exact.bind((R1, 9000))
    assert e.value.errno == errno.EADDRINUSE
    with pytest.raises(KernelError) as e:
        udp6_socket(r).bind(("2001:db8:77::1", 1))
    assert e.value.errno == errno.EADDRNOTAVAIL
    wild.close()
    exact.bind((R1, 9000))
    wild2 = udp6_socket(r)
    with pytest.raises(KernelError):
        wild2.bind(("::", 9000))
    inject(w, vh, [dgram(b"to-exact")])
    assert exact.recvfrom() == (b"to-exact", (H1, 5000))


def test_ping_and_errors_reach_sockets() -> None:
    w, h, vh, r, vr, vr2, h2, vh2 = host_router()
    s = ping6(r, "2001:db8:1::fe", 42, 7, b"self")
    w.run_until_idle()
    assert s.replies == [("2001:db8:1::fe", 42, 7, b"self")]
    with pytest.raises(KernelError) as e:
        ping6(r, "2001:db8:99::1", 1, 1)
    assert e.value.errno == errno.ENETUNREACH


def test_packet_too_big_lowers_path_mtu_for_next_datagrams() -> None:
    from netstack.ipv6.route import Flowi6, ip6_dst_mtu, ip6_route_output
    from .helpers import addr, pair, route, txcapture, world
    w = world()
    r0 = w.netns_add("r")
    r0.sysctl.set("net.ipv6.conf.all.forwarding", 1)
    a, va, r, vr = pair(w, "a", "va", "r", "vr", MAC_A, MAC_B)
    _, vr2, c, vc = pair(w, "r", "vr2", "c", "vc", bytes.fromhex("020000000003"),
                         bytes.fromhex("020000000004"))
    vr2.mtu = vc.mtu = 1280
    r.notify("CHANGEMTU", vr2)
    c.notify("CHANGEMTU", vc)
    addr(a, va, "2001:db8:1::1/64")
    addr(r, vr, "2001:db8:1::fe/64")
    addr(r, vr2, "2001:db8:2::fe/64")
    addr(c, vc, "2001:db8:2::1/64")
    route(a, "::/0", via="2001:db8:1::fe")
    route(c, "::/0", via="2001:db8:2::fe")
    w.advance(3)
    rx = udp6_socket(c)
    rx.bind(("::", 9))
    tx = udp6_socket(a)
    out = txcapture(a, va)
    tx.sendto(bytes(1400), ("2001:db8:2::1", 9))
    w.advance(0.1)
    assert tx.errors == [(2, 0, 1280)] and rx.recvfrom() is None
    dst = ip6_route_output(a, Flowi6(a6("2001:db8:2::1")))
    assert ip6_dst_mtu(a, dst, a6("2001:db8:2::1")) == 1280
    out.clear()
    tx.sendto(bytes(1400), ("2001:db8:2::1", 9))
    w.advance(0.1)
    assert [len(f) - 14 for f in out] == [1280, 1408 + 48 - 1232]
    assert rx.recvfrom() == (bytes(1400), ("2001:db8:1::1", tx.lport))
    w.advance(601)
    assert ip6_dst_mtu(a, dst, a6("2001:db8:2::1")) == 1500
