"""OFF2: the fast GSO/GRO paths produce the bytes and metadata the straightforward
ones did.  Old-vs-new: the vectorised per-segment payload sums against per-segment
``csum_partial`` (numpy disabled), the incremental IPv4 header checksum against a full
``ip_fast_csum`` of every segment header, the TCP flag/seq rewrite against the rule,
and GRO's chained payload (joined once at completion) against a plain concatenation,
tailroom included."""
from __future__ import annotations

import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

import netstack.packet.checksum as C
from netstack.core.gro import Napi
from netstack.core.gso import (SKB_GSO_TCP_FIXEDID, SKB_GSO_TCPV4, SKB_GSO_TCPV6,
                               skb_gso_segment)
from netstack.packet.checksum import csum_fold, csum_partial_bigint, ip_fast_csum
from netstack.packet.skb import CHECKSUM_NONE, CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, Packet

from .pktbuild import gre_gso_packet, gso_packet, tcp4_frame, tcp6_frame, vxlan_gso_packet

HW = frozenset({"tx-checksum-ip-generic"})
PARTIAL = HW | {"tx-gso-partial", "tx-scatter-gather"}


class _Net:
    proto: dict = {}


class Dev:
    hw_enc_features = None
    gso_partial_features: frozenset = frozenset()
    ifindex = 4

    def __init__(self, features: frozenset = frozenset()) -> None:
        self.features = set(features) | {"rx-gro"}
        self.net = _Net()


def _state(s: Packet) -> tuple:
    return (bytes(s.buf), s.data, s.tail, s.mac_header, s.network_header, s.transport_header,
            s.ip_summed, s.csum_start, s.csum_offset, s.gso_size, s.gso_segs, s.gso_type,
            s.inner_network_header, s.inner_transport_header)


def _build(kind: str, pay: bytes, mss: int, flags: int, fixed: bool) -> Packet:
    if kind == "tcp4":
        return gso_packet(tcp4_frame(pay, flags=flags), 14, 34, mss,
                          SKB_GSO_TCPV4 | (SKB_GSO_TCP_FIXEDID if fixed else 0))
    if kind == "tcp6":
        return gso_packet(tcp6_frame(pay, flags=flags), 14, 54, mss, SKB_GSO_TCPV6)
    if kind == "vxlan":
        return vxlan_gso_packet(pay, mss, fixed, inner_flags=flags)
    return gre_gso_packet(pay, mss, fixed)


def _segment(kind, pay, mss, flags, fixed, feats):
    p = _build(kind, pay, mss, flags, fixed)
    p.dev = Dev(feats)
    return skb_gso_segment(p, feats)


CASE = st.tuples(st.sampled_from(["tcp4", "tcp6", "vxlan", "gre"]),
                 st.integers(1500, 12000), st.integers(64, 1460),
                 st.sampled_from([0x10, 0x18, 0x19, 0x98, 0x99]), st.booleans(),
                 st.sampled_from([frozenset(), HW, PARTIAL]))


@settings(max_examples=60, deadline=None)
@given(CASE, st.integers(0, 2**32))
def test_vectorised_gso_equals_scalar_gso(case, seed) -> None:
    """Same segments with the numpy paths on and off (NUMPY_MIN beyond any length)."""
    kind, n, mss, flags, fixed, feats = case
    pay = random.Random(seed).randbytes(n)
    fast = _segment(kind, pay, mss, flags, fixed, feats)
    old = C.NUMPY_MIN
    C.NUMPY_MIN = 1 << 40
    try:
        slow = _segment(kind, pay, mss, flags, fixed, feats)
    finally:
        C.NUMPY_MIN = old
    assert [_state(s) for s in fast] == [_state(s) for s in slow]


@settings(max_examples=60, deadline=None)
@given(CASE, st.integers(0, 2**32))
def test_segment_headers_equal_full_recomputation(case, seed) -> None:
    """Every IPv4 header checksum is exactly ip_fast_csum of the header (check zeroed),
    every software TCP checksum exactly the folded full sum, IDs step by one (or stay
    with FIXEDID), seq steps by mss, CWR only first, FIN/PSH only last."""
    kind, n, mss, flags, fixed, feats = case
    pay = random.Random(seed).randbytes(n)
    segs = _segment(kind, pay, mss, flags, fixed, feats)
    for s in segs:
        b = s.buf
        for nh in {s.network_header, s.inner_network_header} - {-1}:
            if nh < 0 or b[nh] >> 4 != 4:
                continue
            h = bytearray(b[nh:nh + 20])
            stored = struct.unpack("!H", h[10:12])[0]
            h[10:12] = b"\0\0"
            assert stored == ip_fast_csum(h)
    if kind != "tcp4" or feats == PARTIAL:
        return
    ids = [struct.unpack("!H", s.buf[s.network_header + 4:s.network_header + 6])[0] for s in segs]
    assert ids == ([0x1234] * len(segs) if fixed else
                   [(0x1234 + i) & 0xFFFF for i in range(len(segs))])
    for i, s in enumerate(segs):
        t = s.transport_header
        b = s.buf
        assert struct.unpack("!I", b[t + 4:t + 8])[0] == 1000 + i * mss
        want = flags
        if i:
            want &= ~0x80
        if i < len(segs) - 1:
            want &= ~0x09
        assert b[t + 13] == want
        if s.ip_summed == CHECKSUM_NONE:
            nh = s.network_header
            seg = bytes(b[t:s.tail])
            ps = b[nh + 12:nh + 20] + struct.pack("!xBH", 6, len(seg))
            assert csum_fold(csum_partial_bigint(bytes(ps) + seg)) == 0
        else:
            assert s.ip_summed == CHECKSUM_PARTIAL


def _rx(frame: bytes, dev: Dev, tailroom: int = 0) -> Packet:
    p = Packet(frame, tailroom=tailroom)
    p.dev = dev
    p.mac_header = p.data
    p.protocol = struct.unpack("!H", frame[12:14])[0]
    p.data += 14
    p.ip_summed = CHECKSUM_UNNECESSARY
    return p


@settings(max_examples=40, deadline=None)
@given(st.integers(3000, 40000), st.integers(200, 1448), st.integers(0, 3000))
def test_gro_chained_payload_equals_concatenation(n: int, mss: int, tailroom: int) -> None:
    """The held packet's payload is chained and joined at completion: the result is the
    first packet's bytes, every merged payload appended, then the first packet's
    leftover tailroom, exactly as appending into the buffer produced."""
    pay = bytes((i * 7 + 3) & 0xFF for i in range(n))
    dev = Dev(HW)
    segs = _segment("tcp4", pay, mss, 0x18, False, HW)
    rx = [_rx(s.bytes(), dev, tailroom if i == 0 else 0) for i, s in enumerate(segs)]
    first = rx[0]
    want = bytearray(first.buf[:first.tail])
    for q in rx[1:]:
        want += q.buf[q.data + 40:q.tail]
    end = len(want)
    if len(first.buf) > end:
        want += first.buf[end:]
    out: list[Packet] = []
    napi = Napi(dev, out.extend)
    napi.receive_list(rx)
    limit = 65536 - (first.tail - first.data)
    if len(out) == 1:
        (g,) = out
        assert g.gso_segs == len(segs)
        assert g.buf[g.data + 40:g.tail] == pay
        # headers were rewritten by completion; payload and tailroom are positional
        assert g.buf[first.data + 40:] == want[first.data + 40:]
    else:
        assert n + 54 * len(segs) >= limit  # only the GRO size limit splits the train
        assert b"".join(bytes(g.buf[g.transport_header + 20:g.tail]) for g in out) == pay


def _rx_state(g: Packet) -> tuple:
    return _state(g) + (g.csum_level, g.csum_valid)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["tcp4", "tcp6", "vxlan"]), st.integers(1500, 20000),
       st.integers(100, 1448), st.lists(st.integers(0, 60), max_size=4),
       st.integers(0, 2**32), st.sampled_from([CHECKSUM_NONE, CHECKSUM_UNNECESSARY]))
def test_gro_batch_validation_equals_per_packet(kind, n, mss, bad, seed, ip_summed) -> None:
    """receive_list sums the poll's frames in one vector pass; the verdicts, merges and
    resulting packets equal those of packets received one by one (no batch sums),
    corrupted segments (a flipped payload byte) included."""
    pay = random.Random(seed).randbytes(n)
    segs = _segment(kind, pay, mss, 0x10, True, frozenset())
    frames = [bytearray(s.bytes()) for s in segs]
    for i in bad:
        if i < len(frames):
            frames[i][-1] ^= 0x5A
    dev = Dev(frozenset())
    results = []
    for batch in (True, False):
        rx = []
        for f in frames:
            p = _rx(bytes(f), dev)
            p.ip_summed = ip_summed
            rx.append(p)
        out: list[Packet] = []
        napi = Napi(dev, out.extend)
        if batch:
            napi.receive_list(rx)
        else:
            for p in rx:
                napi.receive(p)
            napi.flush()
        results.append(([_rx_state(g) for g in out], dict(napi.stats)))
    assert results[0] == results[1]
