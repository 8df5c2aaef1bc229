"""ip6_fragment and reassembly (RFC 8200 §4.5, RFC 5722)."""
from __future__ import annotations

import random

from hypothesis import given, settings, strategies as st

from netstack.ipv6.addr import a6
from netstack.ipv6.udp import udp6_socket
from netstack.packet.ipv6 import build_ipv6, ext_fragment

from .helpers import MAC_A, MAC_B, addr, capture, eth, host_router, inject, pair, txcapture, world

H1, R1 = "2001:db8:1::1", "2001:db8:1::fe"


def two_hosts(mtu_a: int = 1500):
    w = world()
    a, va, b, vb = pair(w, "a", "va", "b", "vb")
    for n in (a, b):
        n.sysctl.set("net.ipv6.auto_flowlabels", 0)
    addr(a, va, "2001:db8::1/64")
    addr(b, vb, "2001:db8::2/64")
    w.advance(3)
    return w, a, va, b, vb


def test_local_udp_fragmented_and_reassembled() -> None:
    w, a, va, b, vb = two_hosts()
    out = txcapture(a, va)
    rx = udp6_socket(b)
    rx.bind(("::", 9000))
    tx = udp6_socket(a)
    data = bytes(range(256)) * 12  # 3072 bytes
    tx.sendto(data, ("2001:db8::2", 9000))
    w.run_until_idle()
    frags = [f for f in out if f[20] == 44]
    assert len(frags) == 3
    assert [len(f) - 14 for f in frags] == [1496, 1496, 3080 - 2 * 1448 + 48]
    offs = [int.from_bytes(f[56:58], "big") for f in frags]
    assert [o & ~7 for o in offs] == [0, 1448, 2896] and [o & 1 for o in offs] == [1, 1, 0]
    assert len({f[58:62] for f in frags}) == 1  # one identification
    assert rx.recvfrom() == (data, ("2001:db8::1", tx.lport))
    assert b.ipv6.mib["ReasmOKs"] == 1


def _frags(payload: bytes, ident: int, size: int, src: str = H1, dst: str = R1):
    out = []
    for off in range(0, len(payload), size):
        chunk = payload[off:off + size]
        more = off + size < len(payload)
        out.append(build_ipv6(a6(src), a6(dst), 17, chunk,
                              ext_headers=[ext_fragment(off, more, ident)]))
    return out


def _udp(payload: bytes, src: str = H1, dst: str = R1) -> bytes:
    from netstack.packet.udp import build_udp
    return build_udp(5000, 9000, payload, src=a6(src), dst=a6(dst))


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 8), st.randoms(use_true_random=False))
def test_any_arrival_order_reassembles(n: int, rnd: random.Random) -> None:
    w, h, vh, r, *_ = host_router()
    s = udp6_socket(r)
    s.bind(("::", 9000))
    data = bytes(rnd.getrandbits(8) for _ in range(n * 64 - 8 - rnd.randrange(0, 8)))
    fr = _frags(_udp(data), 77, 64)
    rnd.shuffle(fr)
    inject(w, vh, [eth(MAC_B, MAC_A, f) for f in fr])
    assert s.recvfrom() == (data, (H1, 5000))
    assert r.ipv6.frags == {}


def test_overlap_drops_whole_queue() -> None:
    w, h, vh, r, *_ = host_router()
    s = udp6_socket(r)
    s.bind(("::", 9000))
    u = _udp(bytes(200))
    f0 = build_ipv6(a6(H1), a6(R1), 17, u[:64], ext_headers=[ext_fragment(0, True, 5)])
    f1 = build_ipv6(a6(H1), a6(R1), 17, u[56:120], ext_headers=[ext_fragment(56, True, 5)])
    inject(w, vh, [eth(MAC_B, MAC_A, f0), eth(MAC_B, MAC_A, f1)])
    assert r.ipv6.frags == {}
    assert r.drops["FRAG_REASM_TIMEOUT"] == 1 and r.drops["NOT_SPECIFIED"] == 1
    # an exact duplicate only drops itself
    inject(w, vh, [eth(MAC_B, MAC_A, f0), eth(MAC_B, MAC_A, f0)])
    assert r.drops["DUP_FRAG"] == 1 and len(r.ipv6.frags) == 1


def test_timeout_sends_time_exceeded_code_1_after_60s() -> None:
    w, h, vh, r, *_ = host_router()
    got = capture(h, vh)
    u = _udp(bytes(200))
    f0 = build_ipv6(a6(H1), a6(R1), 17, u[:64], ext_headers=[ext_fragment(0, True, 9)])
    inject(w, vh, [eth(MAC_B, MAC_A, f0)])
    w.advance(59.9)
    assert got == []
    w.advance(0.2)
    (err,) = got
    assert err[54:56] == b"\x03\x01" and err[62:62 + 40] == f0[:40]
    assert r.drops["FRAG_REASM_TIMEOUT"] == 1


def test_non_multiple_of_8_param_problem_and_atomic_fragment() -> None:
    w, h, vh, r, *_ = host_router()
    got = capture(h, vh)
    u = _udp(bytes(100))
    bad = build_ipv6(a6(H1), a6(R1), 17, u[:60], ext_headers=[ext_fragment(0, True, 3)])
    inject(w, vh, [eth(MAC_B, MAC_A, bad)])
    (err,) = got
    assert err[54:56] == b"\x04\x00" and int.from_bytes(err[58:62], "big") == 4
    s = udp6_socket(r)
    s.bind(("::", 9000))
    atomic = build_ipv6(a6(H1), a6(R1), 17, u, ext_headers=[ext_fragment(0, False, 4)])
    inject(w, vh, [eth(MAC_B, MAC_A, atomic)])
    assert s.recvfrom() == (bytes(100), (H1, 5000))
