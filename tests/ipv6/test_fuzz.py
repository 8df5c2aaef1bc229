"""Malformed input never escapes the datapath as an exception: every random frame is
either consumed, answered or dropped with a counted reason."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from netstack.ipv6.addr import a6
from netstack.packet.icmpv6 import build_icmpv6
from netstack.packet.ipv6 import build_ipv6

from .helpers import MAC_A, MAC_B, eth, host_router, inject

W = host_router()
SRC, DST = a6("2001:db8:1::1"), a6("2001:db8:1::fe")


def _go(frames: list[bytes]) -> None:
    w, h, vh, r, *_ = W
    inject(w, vh, frames)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(min_size=0, max_size=200))
def test_random_ipv6_payloads(blob: bytes) -> None:
    _go([eth(MAC_B, MAC_A, blob)])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 255), st.binary(max_size=120), st.integers(0, 255),
       st.sampled_from([DST, a6("ff02::1"), a6("ff02::1:ff00:fe"), a6("2001:db8:2::1")]))
def test_random_extension_chains(nh: int, body: bytes, hlim: int, dst: bytes) -> None:
    dmac = MAC_B if dst[0] != 0xFF else b"\x33\x33" + dst[12:]
    _go([eth(dmac, MAC_A, build_ipv6(SRC, dst, nh, body, hop_limit=hlim))])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(128, 143), st.integers(0, 2), st.binary(max_size=80),
       st.sampled_from([SRC, a6("fe80::1"), bytes(16)]))
def test_random_icmpv6_and_nd(t: int, code: int, body: bytes, src: bytes) -> None:
    msg = build_icmpv6(t, code, body, src, DST)
    _go([eth(MAC_B, MAC_A, build_ipv6(src, DST, 58, msg, hop_limit=255))])
