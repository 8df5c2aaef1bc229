"""Bursts (netstack/packet/skb_burst.py): N frames of one flow in one buffer, one set of
skb fields — against the lists of skbs they stand for.

* GSO: ``skb_gso_segment(p, f, burst=True)`` of a super-packet the template fast paths
  take (plain TCP/IPv4, TCP/IPv6, UDP tunnels: the strategies of test_gso_fast.py and
  test_gso_fast_tunnel.py) is an :class:`SkbBurst` whose ``packets()`` are exactly the
  list ``skb_gso_segment(p, f)`` returns (and the layered reference: ``assert_same``) —
  every byte, every skb field —, whose ``skb(i)``, ``packets(a, b)``, ``len``,
  ``nbytes()``, ``max_len()`` agree with that list, and the super-packet is left as
  without ``burst``.  What the fast paths do not take still comes back as a list.
* ``burst_of`` / ``ring_burst``: round trips, and the refusals.
* GRO: ``Napi.receive_bursts`` of random polls (one or more bursts of TCP/IPv4, IPv6,
  VXLAN; CHECKSUM_UNNECESSARY / NONE / PARTIAL; defects written into rows of the burst
  buffer) delivers what the per-packet chain (``receive_list`` of every row with
  ``gro_fast.ENABLED = False``) delivers — every byte, every skb field, the order — with
  the same NAPI counters; and for a clean burst the chain really is bypassed.
"""
from __future__ import annotations

import random
import struct
import sys
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core import gro as gro_mod
from netstack.core import gro_fast, gso_fast
from netstack.core.gro import Napi
from netstack.core.gso import (SKB_GSO_TCPV4, SKB_GSO_TCPV6, GsoError, skb_gso_segment)
from netstack.packet.skb import (CHECKSUM_NONE, CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, UNSET,
                                 Packet)
from netstack.packet.skb_burst import ETH_HLEN, SkbBurst, burst_of, ring_burst

from .pktbuild import gre_gso_packet, rfc1071, vxlan_gso_packet
from .test_gro_fast import Dev as GroDev
from .test_gro_fast import rx, snapshot, train, vxlan_train
from .test_gso_fast import EXTRA as TCP_EXTRA
from .test_gso_fast import FEATURES as TCP_FEATURES
from .test_gso_fast import (IDENT, IPOPTS, SEQ, TOPTS, assert_same, frame4, frame6, sizes, state,
                            superpacket)
from .test_gso_fast_tunnel import DEV_CSUM, HW_ENC, TUNNEL_TSO
from .test_gso_fast_tunnel import EXTRA as TNL_EXTRA
from .test_gso_fast_tunnel import FEATURES as TNL_FEATURES
from .test_gso_fast_tunnel import Dev as TnlDev
from .test_gso_fast_tunnel import _gtype, tunnel_frame, tunnel_superpacket

HW = frozenset({"tx-checksum-ip-generic"})


# ====================================================================== GSO → burst
def _check_burst(b: SkbBurst, segs: list[Packet], rng: random.Random) -> None:
    """``b`` is the burst of ``segs`` (the list the same call returns without ``burst``):
    rows, accessors and counters, each skb with a buffer of its own."""
    n = len(segs)
    assert len(b) == n == len(b.tails)
    tmpl_before = state(b.tmpl)
    pk = b.packets()
    want = [state(s) for s in segs]
    assert [state(s) for s in pk] == want
    # a second call makes new, equal skbs (nothing of the burst was consumed)
    pk2 = b.packets()
    assert [state(s) for s in pk2] == want
    assert all(p.buf is not q.buf for p, q in zip(pk, pk2))
    assert len({id(p.buf) for p in pk} | {id(b.tmpl.buf)}) == n + 1      # own buffers
    assert all(type(p.buf) is bytearray for p in pk)
    for i in range(n):
        assert state(b.skb(i)) == want[i], f"skb({i})"
    # slices: the edges and a few random ones
    cuts = {(0, None), (0, n), (n, None), (n - 1, None), (0, 1), (1, n - 1), (n // 2, n // 2)}
    for _ in range(4):
        a = rng.randrange(n + 1)
        cuts.add((a, rng.randrange(a, n + 1)))
    for a, z in cuts:
        got = b.packets(a) if z is None else b.packets(a, z)
        assert [state(s) for s in got] == want[a:z], (a, z)
    assert b.nbytes() == sum(s.tail - s.data for s in segs)
    assert b.max_len() == max(s.tail - s.data for s in segs)
    # writing into a made skb does not reach the burst
    pk[0].buf[pk[0].data] ^= 0xFF
    pk[-1].__dict__["mark_cold"] = 1
    assert state(b.tmpl) == tmpl_before
    assert state(b.skb(0)) == want[0] and state(b.skb(n - 1)) == want[-1]


def _burst_runner(seed: int) -> Callable[[Callable[[], Packet], frozenset], Any]:
    """An ``assert_same`` runner: ``skb_gso_segment(..., burst=True)`` must be a burst
    equal to ``skb_gso_segment(...)`` (fast paths on) on a copy of the super-packet, and
    leave the super-packet as that call does; returns the rows' states (compared with the
    layered path by ``assert_same``)."""
    def run(make: Callable[[], Packet], features: frozenset) -> tuple[list[dict], dict]:
        p = make()
        ref_p = p.clone()
        b = skb_gso_segment(p, features, burst=True)
        assert type(b) is SkbBurst, f"no burst: {type(b).__name__}"
        ref = skb_gso_segment(ref_p, features)
        assert isinstance(ref, list)
        assert state(p) == state(ref_p), "super-packet left differently with burst=True"
        _check_burst(b, ref, random.Random(seed))
        return [state(s) for s in b.packets()], state(p)
    return run


@settings(max_examples=100)
@given(v6=st.booleans(), size=sizes(), flags=st.integers(0, 255), topts=TOPTS, ipopts=IPOPTS,
       seq=SEQ, ident=IDENT, extra=TCP_EXTRA, features=st.sampled_from(TCP_FEATURES),
       ip_summed=st.sampled_from([CHECKSUM_PARTIAL, CHECKSUM_NONE, CHECKSUM_UNNECESSARY]),
       headroom=st.integers(0, 300), tailroom=st.integers(0, 64), cold=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_gso_burst_tcp_equals_list(v6, size, flags, topts, ipopts, seq, ident, extra, features,
                                   ip_summed, headroom, tailroom, cold, seed) -> None:
    n, mss = size
    rng = random.Random(seed)
    pay = rng.randbytes(n)
    gso_type = SKB_GSO_TCPV6 if v6 else SKB_GSO_TCPV4
    for bit in extra:
        gso_type |= bit
    if v6:
        fr = frame6(pay, seq=seq, flags=flags, topts=topts, hlim=rng.randrange(256))
    else:
        fr = frame4(pay, seq=seq, flags=flags, topts=topts, ipopts=ipopts, ident=ident,
                    ttl=rng.randrange(256))
    fields = {}
    if cold:
        fields = {"mark": rng.randrange(1 << 32), "priority": 7, "skb_iif": 9, "tstamp": 12345,
                  "id": 77, "pkt_type": 4, "hash": 0xABCD, "l4_hash": True,
                  "vlan_proto": 0x8100, "vlan_tci": 5, "queue_mapping": 1, "csum_level": 1}

    def make() -> Packet:
        return superpacket(fr, mss, gso_type, headroom=headroom, tailroom=tailroom,
                           ip_summed=ip_summed, cold=fields)

    rows = assert_same(make, features, _burst_runner(seed))
    assert len(rows) == -(-n // mss)


@settings(max_examples=100)
@given(ov6=st.booleans(), iv6=st.booleans(), outer_csum=st.booleans(),
       tnl=st.sampled_from([8, 8, 16, 40]), size=sizes(), flags=st.integers(0, 255),
       topts=TOPTS, seq=SEQ, ident=IDENT, oident=IDENT, extra=TNL_EXTRA,
       features=st.sampled_from(TNL_FEATURES), hw_enc=st.sampled_from(HW_ENC),
       dev_csum=st.sampled_from(DEV_CSUM),
       ip_summed=st.sampled_from([CHECKSUM_PARTIAL, CHECKSUM_NONE, CHECKSUM_UNNECESSARY]),
       headroom=st.integers(0, 300), tailroom=st.integers(0, 64), seed=st.integers(0, 2**32 - 1))
def test_gso_burst_tunnel_equals_list(ov6, iv6, outer_csum, tnl, size, flags, topts, seq, ident,
                                      oident, extra, features, hw_enc, dev_csum, ip_summed,
                                      headroom, tailroom, seed) -> None:
    n, mss = size
    rng = random.Random(seed)
    fr, offs = tunnel_frame(rng.randbytes(n), ov6=ov6, iv6=iv6, outer_csum=outer_csum, tnl=tnl,
                            seq=seq, flags=flags, topts=topts, ident=ident, oident=oident,
                            dport=rng.choice([4789, 6081]), rng=rng)
    gso_type = _gtype(iv6, outer_csum)
    for bit in extra:
        gso_type |= bit
    if hw_enc and hw_enc & TUNNEL_TSO:
        features = features - TUNNEL_TSO
    dev = TnlDev(features | ({dev_csum} if dev_csum else set()), hw_enc)

    def make() -> Packet:
        return tunnel_superpacket(fr, offs, mss, gso_type, dev, headroom=headroom,
                                  tailroom=tailroom, ip_summed=ip_summed)

    rows = assert_same(make, features, _burst_runner(seed))
    assert len(rows) == -(-n // mss)


@pytest.mark.parametrize("kind", ["v4", "v6", "vxlan", "vxlan_nocsum"])
@pytest.mark.parametrize("features", [frozenset(), HW])
def test_gso_burst_bench_sizes(kind, features) -> None:
    """The benchmark's 64 KB super-packets (46 rows, the last one short)."""
    pay = bytes((i * 7 + 1) & 0xFF for i in range(65436))
    if kind.startswith("vxlan"):
        dev = TnlDev(features)

        def make() -> Packet:
            p = vxlan_gso_packet(pay[:65336], 1448, kind == "vxlan")
            p.dev = dev
            return p
    else:
        fr = frame6(pay) if kind == "v6" else frame4(pay)

        def make() -> Packet:
            return superpacket(fr, 1448, SKB_GSO_TCPV6 if kind == "v6" else SKB_GSO_TCPV4)
    rows = assert_same(make, features, _burst_runner(1))
    assert len(rows) == 46
    b = skb_gso_segment(make(), features, burst=True)
    assert b.tails[:-1] == [b.stride] * 45 and b.tails[-1] < b.stride


def _outcome(fn: Callable[[], Any]) -> Any:
    try:
        r = fn()
    except GsoError as e:
        return ("GsoError", e.errno)
    if r is None:
        return None
    assert type(r) is list, f"{type(r).__name__}, not a list"
    return [state(s) for s in r]


def _same_without_burst(make: Callable[[], Packet], features: frozenset) -> Any:
    """burst=True gives exactly what burst=False gives (a list, None or the error), and
    leaves the packet the same way."""
    p, q = make(), make()
    got = _outcome(lambda: skb_gso_segment(p, features, burst=True))
    want = _outcome(lambda: skb_gso_segment(q, features))
    assert got == want
    assert state(p) == state(q)
    return got


def test_gso_burst_not_taken_returns_list(monkeypatch) -> None:
    """What the fast paths do not take — GRE, a remote-checksum VXLAN packet, a packet
    the device segments itself, an invalid one, and anything with gso_fast off — comes
    back as the layered path's list (or None / the error) even with burst=True."""
    for csum in (False, True):
        r = _same_without_burst(lambda: gre_gso_packet(bytes(6000), 1400, csum), frozenset())
        assert isinstance(r, list) and len(r) == 5
    r = _same_without_burst(lambda: vxlan_gso_packet(bytes(6000), 1400, True, remcsum=True), HW)
    assert isinstance(r, list)
    fr = frame4(bytes(range(256)) * 20)
    # the device does TSO itself: nothing to segment
    assert _same_without_burst(lambda: superpacket(fr, 1000, SKB_GSO_TCPV4),
                               HW | {"tx-tcp-segmentation"}) is None
    # payload not longer than gso_size: the layered path's EINVAL
    assert _same_without_burst(lambda: superpacket(fr, 6000, SKB_GSO_TCPV4), HW) == \
        ("GsoError", 22)
    monkeypatch.setattr(gso_fast, "ENABLED", False)
    for make in (lambda: superpacket(fr, 1000, SKB_GSO_TCPV4),
                 lambda: superpacket(frame6(bytes(5000)), 1000, SKB_GSO_TCPV6),
                 lambda: vxlan_gso_packet(bytes(6000), 1400, True)):
        r = _same_without_burst(make, HW)
        assert isinstance(r, list) and len(r) >= 5


# ====================================================================== burst_of / ring_burst
def _rx_list(frames: list[bytes], *, headroom: int = 128, tailroom: int = 0,
             **fields: Any) -> list[Packet]:
    out = []
    for f in frames:
        p = Packet(f, headroom=headroom, tailroom=tailroom)
        p.mac_header = p.data
        p.data += 14
        p.network_header = p.data
        p.transport_header = p.data + 20
        p.protocol = 0x0800
        p.ip_summed = CHECKSUM_UNNECESSARY
        p.dev = GRO_DEV
        for k, v in fields.items():
            setattr(p, k, v)
        out.append(p)
    return out


GRO_DEV = GroDev(3)


def _no_tailroom(s: dict) -> dict:
    s = dict(s)
    s["buf"] = (s["buf"][0], s["buf"][1][:s["tail"]])
    return s


@pytest.mark.parametrize("tailroom", [0, 7])
@pytest.mark.parametrize("stride", [None, 3000])
def test_burst_of_round_trip(tailroom, stride) -> None:
    frames = train(False, 9, 1000, 333, flags_last=0x18)
    pkts = _rx_list(frames, tailroom=tailroom, mark=5, hash=0x77, csum_level=1)
    b = burst_of(pkts, stride)
    assert b is not None and len(b) == 9
    assert b.stride == (stride or max(len(p.buf) for p in pkts))
    assert [_no_tailroom(state(p)) for p in b.packets()] == [_no_tailroom(state(p)) for p in pkts]
    assert [bytes(q.buf) for q in b.packets()] == [bytes(p.buf[:p.tail]) for p in pkts]
    assert b.nbytes() == sum(len(f) - ETH_HLEN for f in frames)
    assert b.max_len() == len(frames[0]) - ETH_HLEN
    # the rows are copies: the skbs it was made from are not shared
    pkts[0].buf[200] ^= 1
    assert bytes(b.skb(0).buf) != bytes(pkts[0].buf[:pkts[0].tail])
    # a GSO burst's own skbs make the same burst again
    sp = superpacket(frame4(bytes(range(256)) * 30), 1000, SKB_GSO_TCPV4)
    g = skb_gso_segment(sp, HW, burst=True)
    again = burst_of(g.packets(), g.stride)
    assert again is not None and again.tails == g.tails
    assert bytes(again.tmpl.buf) == bytes(g.tmpl.buf)
    assert [state(p) for p in again.packets()] == [state(p) for p in g.packets()]


def test_burst_of_refuses_what_is_not_a_burst() -> None:
    frames = train(False, 5, 1000, 1000)

    def variant(k: int, **fields: Any) -> list[Packet]:
        pkts = _rx_list(frames)
        for name, v in fields.items():
            setattr(pkts[k], name, v)
        return pkts

    assert burst_of([]) is None
    assert burst_of(_rx_list(frames)) is not None
    for k in (0, 3, 4):
        for fields in ({"mark": 1}, {"ip_summed": CHECKSUM_NONE}, {"dev": GroDev(4)},
                       {"network_header": 999}, {"priority": 2}, {"protocol": 0x86DD},
                       {"hash": 5}, {"gso_size": 1000}, {"vlan_proto": 0x8100},
                       {"csum_level": 1}):
            assert burst_of(variant(k, **fields)) is None, (k, fields)
    # the same offsets from another head (a buffer with other headroom)
    pkts = _rx_list(frames)
    pkts[2] = _rx_list([frames[2]], headroom=64)[0]
    assert burst_of(pkts) is None
    # a different Ethernet header in one frame (destination, source, type)
    for off in (0, 5, 6, 11, 12, 13):
        fr = [bytearray(f) for f in frames]
        fr[3][off] ^= 0x02
        assert burst_of(_rx_list([bytes(f) for f in fr])) is None, off
    # no MAC header, head not at 0, a stride the buffers do not fit
    assert burst_of(variant(0, mac_header=UNSET)) is None
    pk = _rx_list(frames)
    for p in pk:
        p.head = 4
    assert burst_of(pk) is None
    assert burst_of(_rx_list(frames), stride=100) is None
    # frames differing only in length are a burst
    assert burst_of(_rx_list(train(False, 4, 1000, 10))) is not None


def test_ring_burst_layout_and_refusals() -> None:
    frames = train(True, 6, 1200, 77, flags_last=0x18)
    proto = rx(frames[0], GRO_DEV, CHECKSUM_NONE, 0x123)
    h = proto.mac_header
    stride = h + len(frames[0])
    b = ring_burst(proto, frames, stride)
    assert len(b) == 6 and b.stride == stride
    assert b.tails == [h + len(f) for f in frames]
    assert b.tmpl.head == 0 and b.tmpl.tail == b.tails[0]
    pk = b.packets()
    want = [rx(f, GRO_DEV, CHECKSUM_NONE, 0x123) for f in frames]
    assert [state(p) for p in pk] == [state(p) for p in want]
    assert bytes(b.tmpl.buf[:h]) == bytes(h)
    assert b.nbytes() == sum(len(f) for f in frames) - 6 * ETH_HLEN
    assert b.max_len() == len(frames[0]) - ETH_HLEN
    # a longer stride: zeros after each frame; the same skbs
    b2 = ring_burst(proto, frames, stride + 10)
    assert [state(p) for p in b2.packets()] == [state(p) for p in want]
    assert bytes(b2.tmpl.buf[stride:stride + 10]) == bytes(10)
    # refusals: one byte too long for the row, another Ethernet header
    with pytest.raises(ValueError):
        ring_burst(proto, frames, stride - 1)
    with pytest.raises(ValueError):
        ring_burst(proto, frames[:1] + [frames[1] + b"x"] + frames[2:], stride)
    for off in (0, 6, 13):
        bad = bytearray(frames[4])
        bad[off] ^= 0x10
        with pytest.raises(ValueError):
            ring_burst(proto, frames[:4] + [bytes(bad)], stride)
    # the fields are proto's, not the frames'
    proto.mark = 9
    assert ring_burst(proto, frames, stride).skb(5).mark == 9
    # round trip through burst_of
    again = burst_of(pk)
    assert again is not None and [state(p) for p in again.packets()] == [state(p) for p in pk]


# ====================================================================== GRO of bursts
class ReusedIds:
    """``id()`` for the GRO modules, as CPython's allocator hands addresses out but
    deterministically: unique among live objects, and the id of an object that has died
    goes to the next new object (the last one freed first).  An object is dead when
    nothing but this table holds it.  A cache keyed by ``id()`` that outlives its object
    (``Napi.presum`` across the bursts of a poll) then fails every time, not only when
    the real allocator happens to reuse the address."""

    def __init__(self) -> None:
        self.obj: dict[int, object] = {}     # fake id → object (held here)
        self.fake: dict[int, int] = {}       # real id → fake id (stable while held)
        self.free: list[int] = []
        self.n = 0
        self.reused = 0

    def __call__(self, o: object) -> int:
        k = self.fake.get(id(o))
        if k is not None:
            return k
        for fk in list(self.obj):
            x = self.obj[fk]
            if sys.getrefcount(x) <= 3:      # this table, ``x``, getrefcount's argument
                del self.obj[fk]
                del self.fake[id(x)]
                self.free.append(fk)
            del x
        if self.free:
            k = self.free.pop()
            self.reused += 1
        else:
            self.n += 1
            k = self.n
        self.obj[k] = o
        self.fake[id(o)] = k
        return k


def _gro(bursts_of: Callable[[dict], list[SkbBurst]], fast: bool,
         count: list | None = None) -> tuple[list, dict]:
    """A fresh NAPI over fresh bursts (built by ``bursts_of(devs)``): ``fast`` —
    ``receive_bursts`` with gro_fast on —, else the reference, ``receive_list`` of all
    the rows with gro_fast off.  ``count`` gets the chain calls (``Napi.receive``).
    ``id()`` in the GRO modules reuses dead objects' ids (:class:`ReusedIds`)."""
    devs = {3: GroDev(3), 4: GroDev(4)}
    bursts = bursts_of(devs)
    out: list[Packet] = []
    napi = Napi(devs[3], out.extend)
    if count is not None:
        receive = napi.receive

        def counting(p: Packet) -> str:
            count.append(1)
            return receive(p)

        napi.receive = counting  # type: ignore[method-assign]
    old = gro_fast.ENABLED
    gro_fast.ENABLED = fast
    ids = ReusedIds()
    gro_mod.id = gro_fast.id = ids  # type: ignore[attr-defined]
    try:
        if fast:
            napi.receive_bursts(bursts)
        else:
            rows = [p for b in bursts for p in b.packets()]
            del bursts
            napi.receive_list(rows)
    finally:
        gro_fast.ENABLED = old
        del gro_mod.id, gro_fast.id  # type: ignore[attr-defined]
    return [snapshot(p) for p in out], dict(napi.stats)


def _same_as_chain(spec: list[tuple]) -> tuple[list, dict]:
    """``spec``: per burst (frames, dev, summed, h, slack).  Both paths from fresh
    bursts; equal deliveries and counters; returns the burst path's result."""
    def bursts_of(devs: dict) -> list[SkbBurst]:
        out = []
        for frames, d, summed, h, slack in spec:
            proto = rx(frames[0], devs[d], summed, h)
            out.append(ring_burst(proto, frames, proto.mac_header + max(map(len, frames))
                                  + slack))
        return out

    want = _gro(bursts_of, False)
    got = _gro(bursts_of, True)
    assert len(got[0]) == len(want[0])
    for i, (g, w) in enumerate(zip(got[0], want[0])):
        assert g == w, f"delivered packet {i} of {len(want[0])} differs"
    assert got[1] == want[1]
    return got


_ROW_DEFECTS = ("byte", "tcpsum", "tcpsum", "evil", "psh", "short", "long", "ttl", "udpsum", "trunc",
                "garbage", "tiny")
_BURST_DEFECTS = ("none", "none", "none", "hash", "dev", "summed", "vlan", "csum_start", "level")


def _break_row(draw: st.DrawFn, raw: bytes) -> bytes:
    """One row defect; the Ethernet header stays (the burst contract)."""
    b = bytearray(raw)
    m = draw(st.sampled_from(_ROW_DEFECTS))
    if len(raw) < 110:
        return raw  # already cut short
    l3 = 14
    l4 = l3 + (40 if raw[12:14] == b"\x86\xdd" else 20)
    if raw[23] == 17 and draw(st.booleans()):
        l3, l4 = 64, 84  # the inner headers of a VXLAN frame
    if m == "byte":
        i = draw(st.integers(14, l4 + 20 - 1))
        b[i] ^= 1 << draw(st.integers(0, 7))
    elif m == "tcpsum":
        b[l4 + 16] ^= 0x10
    elif m == "evil" and l4 in (34, 84):
        b[l3 + 6] |= 0x80
        b[l3 + 10:l3 + 12] = b"\0\0"
        b[l3 + 10:l3 + 12] = struct.pack("!H", rfc1071(bytes(b[l3:l3 + 20])))
    elif m == "psh":
        b[l4 + 13] |= draw(st.sampled_from([0x08, 0x01, 0x20, 0x80, 0x04]))
    elif m == "short" and len(b) > l4 + 21:
        del b[-draw(st.integers(1, 3)):]
        if l4 == 34:
            b[l3 + 2:l3 + 4] = struct.pack("!H", len(b) - l3)
    elif m == "long":
        b += bytes(draw(st.integers(1, 3)))
    elif m == "ttl":
        b[l3 + (8 if l4 in (34, 84) else 7)] ^= 1
    elif m == "udpsum" and raw[23] == 17:
        b[40] ^= 0x01
    elif m == "trunc":
        del b[draw(st.integers(14, len(b) - 1)):]
    elif m == "garbage":
        b = bytearray(b[:14]) + bytearray(draw(st.binary(min_size=0, max_size=120)))
    elif m == "tiny":
        del b[draw(st.integers(14, 40)):]
    return bytes(b)


@st.composite
def burst_polls(draw: st.DrawFn) -> list[tuple]:
    """One NAPI poll as bursts: 1–2 flows, each cut into consecutive bursts (so a flow
    goes on from one burst into the next), the bursts interleaved; per burst its skb
    fields may differ (hash, device, checksum state, tag, csum_start, csum_level), per
    row its bytes (header bytes, checksums, flags, length, truncation, garbage)."""
    nflows = draw(st.integers(1, 2))
    chunks: list[list[tuple]] = []
    for f in range(nflows):
        kind = draw(st.sampled_from(["v4", "v6", "vxlan"]))
        n = draw(st.one_of(st.integers(1, 3), st.integers(4, 50)))
        mss = draw(st.sampled_from([536, 1000, 1448]))
        last = draw(st.integers(1, mss))
        seq0 = draw(st.one_of(st.integers(0, 0xFFFFFFFF), st.just(0xFFFFFFFF - 3 * mss)))
        id0 = draw(st.one_of(st.integers(0, 0xFFFF), st.integers(0xFFF0, 0xFFFF)))
        fixed = draw(st.booleans())
        opts = draw(st.sampled_from([b"", b"\x01\x01\x08\x0a" + bytes(8)]))
        flags_last = draw(st.sampled_from([0x10, 0x18, 0x19, 0x11]))
        summed = draw(st.sampled_from([CHECKSUM_UNNECESSARY, CHECKSUM_NONE, CHECKSUM_NONE,
                                       CHECKSUM_PARTIAL]))
        h = f
        if kind == "vxlan":
            csum = draw(st.booleans())
            h |= draw(st.sampled_from([0, 0x40000]))
            raws = vxlan_train(n, min(mss, 1398), min(last, 1398), sport=4000 + f, seq0=seq0,
                               id0=id0, oid0=draw(st.integers(0, 0xFFFF)), fixed=fixed,
                               ofixed=draw(st.booleans()), options=opts,
                               flags_last=flags_last, csum=csum)
        else:
            raws = train(kind == "v6", n, mss, last, sport=4000 + f, seq0=seq0, id0=id0,
                         fixed=fixed, options=opts, flags_last=flags_last)
        # consecutive bursts of this flow
        flow_chunks = []
        i = 0
        while i < len(raws):
            k = draw(st.one_of(st.integers(1, 6), st.integers(1, 45)))
            flow_chunks.append([raws[i:i + k], 3, summed, h])
            i += k
        chunks.append(flow_chunks)
    order = []
    for f, fc in enumerate(chunks):
        order += [f] * len(fc)
    order = draw(st.permutations(order))
    pos = [0] * nflows
    spec: list[list] = []
    for f in order:
        spec.append(chunks[f][pos[f]])
        pos[f] += 1
    # per-burst field differences
    for item in spec:
        m = draw(st.sampled_from(_BURST_DEFECTS))
        if m == "hash":
            item[3] ^= 0x100
        elif m == "dev":
            item[1] = 4
        elif m == "summed":
            item[2] = draw(st.sampled_from([CHECKSUM_UNNECESSARY, CHECKSUM_NONE,
                                            CHECKSUM_PARTIAL]))
        elif m == "vlan":
            item[3] |= 0x10000
        elif m == "csum_start":
            item[3] |= 0x20000
        elif m == "level":
            item[3] ^= 0x40000
    # row defects
    for _ in range(draw(st.integers(0, 5))):
        item = spec[draw(st.integers(0, len(spec) - 1))]
        rows = list(item[0])
        # the edges of a burst (its first row, the one after, its last) favoured
        k = draw(st.sampled_from([0, 1, len(rows) - 1, draw(st.integers(0, len(rows) - 1))]))
        k = min(k, len(rows) - 1)
        rows[k] = _break_row(draw, rows[k])
        item[0] = rows
    return [(tuple(fr), d, summed, h, draw(st.sampled_from([0, 0, 2, 64])))
            for fr, d, summed, h in spec]


@settings(max_examples=300)
@given(burst_polls())
def test_gro_bursts_equal_the_chain(spec: list[tuple]) -> None:
    _same_as_chain(spec)


def _flow(kind: str, n: int, mss: int = 1000, last: int | None = None, **kw: Any) -> list[bytes]:
    last = mss if last is None else last
    if kind == "vxlan":
        return vxlan_train(n, min(mss, 1398), min(last, 1398), **kw)
    return train(kind == "v6", n, mss, last, **kw)


@pytest.mark.parametrize("kind", ["v4", "v6", "vxlan"])
@pytest.mark.parametrize("summed", [CHECKSUM_UNNECESSARY, CHECKSUM_NONE, CHECKSUM_PARTIAL])
def test_gro_burst_explicit_cases(kind, summed) -> None:
    h = 0x40000 if kind == "vxlan" and summed == CHECKSUM_PARTIAL else 0
    clean = _flow(kind, 40, 1000, 600, flags_last=0x18)
    out, stats = _same_as_chain([(tuple(clean), 3, summed, h, 0)])
    assert len(out) == 1 and stats["merged"] == 39
    # a flow split over three bursts of one poll, and one burst per row
    out, _ = _same_as_chain([(tuple(clean[a:z]), 3, summed, h, 0)
                             for a, z in ((0, 10), (10, 11), (11, 40))])
    assert len(out) == 1
    _same_as_chain([((f,), 3, summed, h, 0) for f in clean[:6]])
    # fewer rows than MIN_RUN, a row too short to parse, garbage, a flagged middle row,
    # rows of different lengths, a bad checksum in the middle and in the first row
    for n in (1, 2, gro_fast.MIN_RUN):
        _same_as_chain([(tuple(clean[:n]), 3, summed, h, 0)])
    rows = list(clean[:20])
    rows[7] = rows[7][:30]
    rows[12] = rows[12][:14] + bytes(range(50))
    _same_as_chain([(tuple(rows), 3, summed, h, 0)])
    l4 = 54 if kind == "v6" else 84 if kind == "vxlan" else 34
    for k in (0, 1, 9, 19):
        for defect in ("psh", "sum", "len"):
            rows = [bytearray(r) for r in clean[:20]]
            if defect == "psh":
                rows[k][l4 + 13] |= 0x08
            elif defect == "sum":
                rows[k][l4 + 16] ^= 0x10
            else:
                rows[k] = rows[k][:-5]
            _same_as_chain([(tuple(bytes(r) for r in rows), 3, summed, h, 0)])


def test_gro_bad_checksum_in_a_later_burst_of_the_poll() -> None:
    """Two bursts of one flow in one poll, CHECKSUM_NONE: the chain refuses a segment
    whose TCP checksum is bad wherever it is — in particular as the first row of the
    second burst, after rows of the first burst went through the chain (a header
    change ends the batch run there) and were dropped.  Regression: ``Napi.presum`` is
    keyed by ``id()`` and lives for the whole poll; an entry that did not hold its skb
    gave a later burst's row 0 a freed row's sum (:class:`ReusedIds` makes the reuse
    certain) and the bad segment was merged.  Fails with the entries without the skb."""
    for bad_first in (True, False):
        raws = [bytearray(r) for r in train(False, 40, 1000, 1000)]
        raws[3][22] ^= 1          # the TTL of row 3: the batch stops, the chain goes on
        k = 20 if bad_first else 25
        raws[k][34 + 16] ^= 0x10  # a bad TCP checksum in the second burst
        raws = [bytes(r) for r in raws]
        out, stats = _same_as_chain([(tuple(raws[:20]), 3, CHECKSUM_NONE, 0, 0),
                                     (tuple(raws[20:]), 3, CHECKSUM_NONE, 0, 0)])
        assert stats["normal"] >= 1


@pytest.mark.parametrize("kind,summed,h", [
    ("v4", CHECKSUM_UNNECESSARY, 0), ("v4", CHECKSUM_NONE, 0), ("v4", CHECKSUM_PARTIAL, 0),
    ("v6", CHECKSUM_UNNECESSARY, 0), ("v6", CHECKSUM_NONE, 0),
    ("vxlan", CHECKSUM_UNNECESSARY, 0), ("vxlan", CHECKSUM_NONE, 0),
    ("vxlan_nocsum", CHECKSUM_UNNECESSARY, 0x40000), ("vxlan_nocsum", CHECKSUM_PARTIAL, 0)])
def test_gro_clean_burst_bypasses_the_chain(monkeypatch, kind, summed, h) -> None:
    """A clean burst: row 0 through the chain (``Napi.receive``), every other row merged
    from the buffer — no skb made for them but the short last one — and with the
    GRO size limit inside the burst, one more chain call (the row that reaches it)."""
    made: list[int] = []
    real_skb, real_packets = SkbBurst.skb, SkbBurst.packets

    def skb_spy(self: SkbBurst, i: int) -> Packet:
        made.append(1)
        return real_skb(self, i)

    def packets_spy(self: SkbBurst, start: int = 0, stop: int | None = None) -> list[Packet]:
        r = real_packets(self, start, stop)
        made.extend([1] * len(r))
        return r

    def frames(n: int, mss: int, last: int) -> list[bytes]:
        if kind.startswith("vxlan"):
            return vxlan_train(n, mss, last, flags_last=0x18, csum=kind == "vxlan")
        return train(kind == "v6", n, mss, last, flags_last=0x18)

    # the short last row is merged in batch too (IPv6 CHECKSUM_NONE included: _pseudo
    # takes the segment's own payload length into its IPv6 header sum)
    for n, mss, last, max_chain in ((40, 1398, 500, 1), (40, 1398, 1398, 1),
                                    (60, 1398, 1398, 2), (gro_fast.MIN_RUN, 1000, 1000, 1)):
        raws = frames(n, mss, last)

        def bursts_of(devs: dict) -> list[SkbBurst]:
            proto = rx(raws[0], devs[3], summed, h)
            return [ring_burst(proto, raws, proto.mac_header + len(raws[0]))]

        want = _gro(bursts_of, False)
        calls: list = []
        made.clear()
        monkeypatch.setattr(SkbBurst, "skb", skb_spy)
        monkeypatch.setattr(SkbBurst, "packets", packets_spy)
        try:
            got = _gro(bursts_of, True, calls)
        finally:
            monkeypatch.setattr(SkbBurst, "skb", real_skb)
            monkeypatch.setattr(SkbBurst, "packets", real_packets)
        assert got == want
        assert 1 <= len(calls) <= max_chain, (n, mss, last, len(calls))
        if n * mss < 65000:
            # one merged packet; skbs made: row 0 and the row that ends the train
            assert len(got[0]) == 1 and got[1]["merged"] == n - 1
            assert len(made) <= 2, len(made)
        else:
            # the GRO size limit: the row that reaches it through the chain, the rest
            # after it through gro_fast.receive_list
            assert len(got[0]) == 2 and len(made) < n // 2


def test_gro_burst_module_switch(monkeypatch) -> None:
    """With gro_fast off, receive_bursts is receive_list of the rows (the chain)."""
    raws = train(False, 30, 1000, 400, flags_last=0x18)
    spec = [(tuple(raws[:12]), 3, CHECKSUM_NONE, 0, 0), (tuple(raws[12:]), 3, CHECKSUM_NONE, 0, 0)]
    a = _same_as_chain(spec)
    monkeypatch.setattr(gro_fast, "ENABLED", False)

    def bursts_of(devs: dict) -> list[SkbBurst]:
        return [ring_burst(rx(fr[0], devs[3], s, h), fr, 128 + max(map(len, fr)) + sl)
                for fr, _, s, h, sl in spec]

    devs = {3: GroDev(3)}
    out: list[Packet] = []
    napi = Napi(devs[3], out.extend)
    napi.receive_bursts(bursts_of(devs))
    assert [snapshot(p) for p in out] == a[0] and dict(napi.stats) == a[1]
