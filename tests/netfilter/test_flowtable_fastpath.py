"""The lean flowtable fast path must forward exactly what the slow path forwards.

nf_flow_offload_ip_hook rewrites addresses/ports with checksum differences precomputed
when the flow was added, and decrements the TTL inline; the slow path (conntrack, NAT's
generic mangler, ip_forward's ip_decrease_ttl) computes the same bytes step by step.  For
any payload, ports, TTL, IP id and UDP checksum (including the "no checksum" zero), the
frame that leaves by the fast path must equal the one that leaves by the slow path."""
from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.netfilter import conntrack as nfct
from netstack.netfilter import core as nfc
from netstack.netfilter import flowtable as ftm
from netstack.netfilter import nat
from netstack.packet.checksum import ip_decrease_ttl_csum, ip_fast_csum
from netstack.packet.ipv4 import build_ipv4
from netstack.packet.tcp import build_tcp
from netstack.packet.udp import build_udp
from test_ct_core import pkt
from test_flowtable import H1, H2, Router, tcp_handshake
from test_nat_core import l4_ok

PUB = H2[:3] + bytes([254])


def _masq_router() -> Router:
    rt = Router(None)
    r = nat.NfNatRange(nat.NF_NAT_RANGE_MAP_IPS, PUB, PUB)

    def snat(p, state):
        ct, _ = nfct.nf_ct_get(p)
        return nat.nf_nat_setup_info(ct, r, nat.NF_NAT_MANIP_SRC)
    nat.nf_nat_register_fn(rt.r, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, 100, snat)
    return rt


def _udp(payload: bytes, ttl: int, ident: int, zero_csum: bool, sp: int = 5000):
    seg = bytearray(build_udp(sp, 53, payload, src=H1, dst=H2))
    if zero_csum:
        seg[6:8] = b"\0\0"
    return pkt(build_ipv4(H1, H2, 17, bytes(seg), ttl=ttl, id=ident))


def _fast_then_slow(rt: Router, mk) -> tuple[bytes, bytes]:
    """Send ``mk()`` with the flow offloaded, then again after tearing the flow down."""
    hits = rt.ft.hits
    rt.send(True, mk())
    assert rt.ft.hits == hits + 1
    fast = rt.out["v2r"][-1]
    flow = nfct.nf_ct_iterate(rt.r)[0].flow
    rt.ft.teardown_flow(flow)
    rt.send(True, mk())
    assert rt.ft.hits == hits + 1
    return fast, rt.out["v2r"][-1]


@settings(max_examples=25, deadline=None)
@given(payload=st.binary(max_size=40), ttl=st.integers(2, 255),
       ident=st.integers(0, 0xFFFF), zero=st.booleans(), sp=st.integers(1024, 65535))
def test_udp_masquerade_fast_equals_slow(payload, ttl, ident, zero, sp):
    rt = _masq_router()
    rt.send(True, _udp(b"", 64, 1, False, sp))
    rt.send(False, pkt(build_ipv4(H2, PUB, 17, build_udp(53, sp, b"r", src=H2, dst=PUB))))
    assert rt.ft.count() == 1
    fast, slow = _fast_then_slow(rt, lambda: _udp(payload, ttl, ident, zero, sp))
    assert fast == slow
    ip4 = fast[14:]
    assert ip4[12:16] == PUB and ip4[8] == ttl - 1 and l4_ok(ip4)
    assert (ip4[26:28] == b"\0\0") == zero


@settings(max_examples=15, deadline=None)
@given(payload=st.binary(min_size=1, max_size=40), ttl=st.integers(2, 255),
       ident=st.integers(0, 0xFFFF), seq=st.integers(0, 2**32 - 1))
def test_tcp_masquerade_fast_equals_slow(payload, ttl, ident, seq):
    rt = _masq_router()
    rt.send(True, pkt(build_ipv4(H1, H2, 6, build_tcp(40000, 80, 100, 0, 0x02, 65535, b"",
                                                      src=H1, dst=H2))))
    rt.send(False, pkt(build_ipv4(H2, PUB, 6, build_tcp(80, 40000, 900, 101, 0x12, 65535, b"",
                                                        src=H2, dst=PUB))))
    rt.send(True, pkt(build_ipv4(H1, H2, 6, build_tcp(40000, 80, 101, 901, 0x10, 65535, b"",
                                                      src=H1, dst=H2))))
    assert rt.ft.count() == 1

    def mk():
        return pkt(build_ipv4(H1, H2, 6, build_tcp(40000, 80, 101, 901, 0x18, 65535, payload,
                                                   src=H1, dst=H2), ttl=ttl, id=ident))
    fast, slow = _fast_then_slow(rt, mk)
    assert fast == slow and l4_ok(fast[14:]) and fast[14 + 12:14 + 16] == PUB


def test_ttl_checksum_inline_matches_ip_decrease_ttl_at_the_fold_boundary():
    """Header checksum values around the fold boundary and 150 others: the fast path's inline ``ip_decrease_ttl`` equals
    checksum.ip_decrease_ttl_csum (sampled through the hook: vary the IP id so the
    header checksum walks through many values, including the fold boundary)."""
    rt = Router(None)
    rt.send(True, _udp(b"", 64, 0, False))
    rt.send(False, pkt(build_ipv4(H2, H1, 17, build_udp(53, 5000, b"", src=H2, dst=H1))))
    rng = random.Random(4)
    idents = [rng.randrange(0x10000) for _ in range(150)]
    # ids that put the checksum next to 0xffff / 0x0000 in the byte-swapped fold
    base = _udp(b"", 64, 0, False)
    s0 = ~int.from_bytes(base.buf[base.data + 10:base.data + 12], "big") & 0xFFFF
    for target in (0xFEFF, 0xFEFE, 0x00FF, 0x0000):
        # check = ~(S + id): the id that makes the header checksum ``target``
        idents.append(((~target & 0xFFFF) - s0) % 0xFFFF)
    checks = set()
    for ident in idents:
        p = _udp(b"", 64, ident, False)
        before = int.from_bytes(p.buf[p.data + 10:p.data + 12], "big")
        rt.send(True, p)
        out = rt.out["v2r"][-1][14:34]
        assert out[8] == 63
        assert int.from_bytes(out[10:12], "big") == ip_decrease_ttl_csum(before)
        checks.add(before)
        assert ip_fast_csum(out) == 0
    assert rt.ft.hits == len(idents)
    assert {0xFEFF, 0xFEFE, 0x00FF, 0x0000} <= checks


@given(check=st.integers(0, 0xFFFF), old=st.binary(min_size=12, max_size=12),
       new=st.binary(min_size=12, max_size=12))
def test_folded_delta_equals_unfolded_update(check, old, new):
    """The 16-bit folded difference gives the same checksum as the kernel's successive
    csum_replace steps (RFC 1624 eqn. 3 per 16-bit word), and never 0xffff."""
    c = check
    for i in range(0, 12, 2):
        o, n = int.from_bytes(old[i:i + 2], "big"), int.from_bytes(new[i:i + 2], "big")
        v = (~c & 0xFFFF) + (~o & 0xFFFF) + n
        while v >> 16:
            v = (v & 0xFFFF) + (v >> 16)
        c = ~v & 0xFFFF
    got = ftm._csum_apply(check, ftm._fold(ftm._words_delta(old, new)))
    # one's-complement equal, and the same representative whenever the step-by-step
    # value is not the "-0" the kernel's nonzero intermediate can never produce
    assert got != 0xFFFF
    assert got == (c if c != 0xFFFF else 0)


def test_stats_merge_hits_and_slow_reasons():
    rt = Router(None)
    tcp_handshake(rt)
    assert rt.ft.stats == {} and rt.ft.count() == 1
    rt.send(True, pkt(build_ipv4(H1, H2, 6, build_tcp(40000, 80, 101, 901, 0x18, 65535, b"d",
                                                      src=H1, dst=H2))))
    assert rt.ft.stats == {"hit": 1}
    # a FIN stays on the fast path (6.14+: the flow is only marked closing) ...
    rt.send(True, pkt(build_ipv4(H1, H2, 6, build_tcp(40000, 80, 102, 901, 0x11, 65535, b"",
                                                      src=H1, dst=H2))))
    assert rt.ft.stats == {"hit": 2} and rt.ft.count() == 1
    # ... a SYN on the closing flow is a slow-path fallback that tears it down
    rt.send(True, pkt(build_ipv4(H1, H2, 6, build_tcp(40000, 80, 7000, 0, 0x02, 65535, b"",
                                                      src=H1, dst=H2))))
    assert rt.ft.stats == {"hit": 2, "syn_closing": 1}
    assert rt.ft.slow_stats == {"syn_closing": 1} and rt.ft.count() == 0


def test_udp_checksum_computing_to_zero_is_sent_as_ffff():
    """RFC 768 / nf_flow_nat_port: a rewritten UDP checksum that computes to 0 goes out
    as 0xffff (0 means "no checksum"), on the fast path as on the slow path."""
    rt = _masq_router()
    rt.send(True, _udp(b"", 64, 1, False))
    rt.send(False, pkt(build_ipv4(H2, PUB, 17, build_udp(53, 5000, b"r", src=H2, dst=PUB))))
    # the payload word w that makes the post-NAT checksum ~(S + w) zero: S + w == 0xffff
    c0 = int.from_bytes(build_udp(5000, 53, b"\0\0", src=PUB, dst=H2)[6:8], "big")
    w = (0xFFFF - (~c0 & 0xFFFF)) % 0xFFFF
    fast, slow = _fast_then_slow(rt, lambda: _udp(w.to_bytes(2, "big"), 64, 7, False))
    assert fast == slow
    assert fast[14 + 12:14 + 16] == PUB and fast[14 + 20:14 + 22] == (5000).to_bytes(2, "big")
    assert fast[14 + 26:14 + 28] == b"\xff\xff" and l4_ok(fast[14:])
