"""A burst: the frames of one flow laid out in one buffer, the skbs made only on demand.

Why: software GSO turns one 64 KB super-packet into ~46 segments that share every skb
field and every header byte but a handful (``skb_segment``, net/core/skbuff.c), and GRO
on the receiving side folds them back into one (net/core/gro.c).  In the kernel an skb is
a few stores; in CPython each one is an object with two dozen attributes and a buffer of
its own, and making them (GSO) and reading them back (GRO) cost more than all the header
arithmetic of both halves together (docs/performance.md, session 3).  Between the two,
along a path that treats the segments alike (a veth crossing, the backlog, a NAPI poll),
nothing needs the per-segment objects: the frames can stay where GSO wrote them, one
row per frame at a fixed stride in one buffer — the layout of a NIC's receive ring or an
AF_XDP UMEM — with one set of skb fields for all of them.  That is a burst.

Contract (what makes a burst equal to the list of skbs it stands for):

* ``tmpl`` holds the skb fields every frame has, with the offsets of row 0: its ``buf`` is
  the whole buffer, ``head`` 0, ``data``/``mac_header``/``network_header``/… row-relative
  (row ``i`` starts at ``i * stride``); ``tmpl.tail`` is row 0's tail.  ``tails[i]`` is
  row ``i``'s tail (row-relative): the frames may differ in length, nothing else.
* Every row holds the same bytes as row 0 from ``tmpl.mac_header`` for :data:`ETH_HLEN`
  bytes (the Ethernet header: what ``eth_type_trans`` reads), so an operation that reads
  only those bytes and the skb fields — a veth crossing — is done once, on ``tmpl``, for
  all.
* :meth:`SkbBurst.skb` / :meth:`SkbBurst.packets` make the skbs: row ``i``'s bytes
  ``[0, tails[i])`` copied into a buffer of its own (``head`` 0), every field of ``tmpl``.
  That is exactly what ``skb_segment``'s fast twin (netstack/core/gso_fast.py) returned
  before bursts existed, and what every consumer that is not burst-aware gets.

A burst is only ever handed to code that says it takes one (``start_xmit_burst`` of a
driver, the backlog, ``Napi.receive_bursts``); anything else gets :meth:`packets`.
"""
from __future__ import annotations

from itertools import repeat

from netstack.packet.skb import Packet

#: The Ethernet header: the bytes every row shares with row 0 from ``tmpl.mac_header``.
ETH_HLEN = 14

#: Module switch: False makes the producers (software GSO for a burst-taking driver)
#: hand out lists of skbs instead — the reference the tests compare against.
ENABLED = True


class SkbBurst:
    """``len(tails)`` frames at ``stride`` bytes from each other in ``tmpl.buf``, with the
    skb fields of ``tmpl`` (see the module docstring for the contract)."""

    __slots__ = ("tmpl", "stride", "tails")

    def __init__(self, tmpl: Packet, stride: int, tails: list[int]) -> None:
        self.tmpl = tmpl
        self.stride = stride
        self.tails = tails

    def __len__(self) -> int:
        return len(self.tails)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<SkbBurst rows={len(self.tails)} stride={self.stride} tmpl={self.tmpl!r}>"

    def nbytes(self) -> int:
        """The frames' total length (``data`` to tail of each row): the byte counters."""
        return sum(self.tails) - len(self.tails) * self.tmpl.data

    def max_len(self) -> int:
        """The longest frame (``data`` to tail): what ``is_skb_forwardable`` checks."""
        return max(self.tails) - self.tmpl.data

    def skb(self, i: int) -> Packet:
        """Row ``i`` as an skb of its own (:meth:`packets` for one row)."""
        t = self.tmpl
        seg = Packet.__new__(Packet)
        k = i * self.stride
        tail = self.tails[i]
        seg.buf = t.buf[k:k + tail]
        seg.head = 0
        seg.data = t.data
        seg.tail = tail
        seg.mac_header = t.mac_header
        seg.network_header = t.network_header
        seg.transport_header = t.transport_header
        seg.protocol = t.protocol
        seg.pkt_type = t.pkt_type
        seg.dev = t.dev
        seg.skb_iif = t.skb_iif
        seg.mark = t.mark
        seg.priority = t.priority
        seg.ip_summed = t.ip_summed
        seg.csum = t.csum
        seg.tstamp = t.tstamp
        seg.ct = t.ct
        seg.dst = t.dst
        seg.cb = t.cb
        seg.trace = t.trace
        seg.id = t.id
        seg.__dict__ = t.__dict__.copy()
        return seg

    def packets(self, start: int = 0, stop: int | None = None) -> list[Packet]:
        """Rows ``start .. stop - 1`` as skbs: each its row's bytes in a buffer of its own
        and every field of ``tmpl`` (hot slots assigned, the cold ``__dict__`` copied)."""
        t = self.tmpl
        tails = self.tails[start:stop]
        n = len(tails)
        big = t.buf
        stride = self.stride
        data, mac, nh, th = t.data, t.mac_header, t.network_header, t.transport_header
        protocol, pkt_type, dev, skb_iif = t.protocol, t.pkt_type, t.dev, t.skb_iif
        mark, priority, ip_summed, csum = t.mark, t.priority, t.ip_summed, t.csum
        tstamp, ct, dst, cb, trace, pid = t.tstamp, t.ct, t.dst, t.cb, t.trace, t.id
        dcopy = t.__dict__.copy
        segs = [*map(Packet.__new__, repeat(Packet, n))]
        k = start * stride
        for seg, tail in zip(segs, tails):
            seg.buf = big[k:k + tail]
            k += stride
            seg.head = 0
            seg.data = data
            seg.tail = tail
            seg.mac_header = mac
            seg.network_header = nh
            seg.transport_header = th
            seg.protocol = protocol
            seg.pkt_type = pkt_type
            seg.dev = dev
            seg.skb_iif = skb_iif
            seg.mark = mark
            seg.priority = priority
            seg.ip_summed = ip_summed
            seg.csum = csum
            seg.tstamp = tstamp
            seg.ct = ct
            seg.dst = dst
            seg.cb = cb
            seg.trace = trace
            seg.id = pid
            seg.__dict__ = dcopy()
        return segs


def burst_of(pkts: list[Packet], stride: int | None = None) -> SkbBurst | None:
    """The burst the skbs ``pkts`` stand for, or None when they are not one: every skb
    field equal (``head`` 0, the same offsets), only the tails differing, the same
    Ethernet header at ``mac_header``.  The bytes up to each tail are copied into one
    buffer at ``stride`` (default: the longest buffer; tailroom is not kept) — what a
    receive ring holds after the NIC wrote a burst of frames into it (tests and
    bench/offload.py build receive bursts this way)."""
    if not pkts:
        return None
    p0 = pkts[0]
    d0 = p0.mac_header
    if d0 < 0:
        return None
    names = [name for name in Packet._HOT if name not in ("buf", "tail")]  # type: ignore[attr-defined]
    first = [getattr(p0, name) for name in names]
    eth = bytes(p0.buf[d0:d0 + ETH_HLEN])
    need = max(len(p.buf) for p in pkts)
    if stride is None:
        stride = need
    if stride < need or p0.head != 0 or len(eth) != ETH_HLEN:
        return None
    for p in pkts:
        if ([getattr(p, name) for name in names] != first or p.__dict__ != p0.__dict__
                or p.buf[d0:d0 + ETH_HLEN] != eth or p.tail > len(p.buf)):
            return None
    big = bytearray(stride * len(pkts))
    for i, p in enumerate(pkts):
        big[i * stride:i * stride + p.tail] = p.buf[:p.tail]
    return SkbBurst(_template(p0, big, p0.tail), stride, [p.tail for p in pkts])


def _template(proto: Packet, big: bytearray, tail: int) -> Packet:
    """A burst's ``tmpl``: every field of ``proto``, the buffer ``big`` (``head`` 0) with
    row 0's ``tail``."""
    t = Packet.__new__(Packet)
    for name in Packet._HOT:  # type: ignore[attr-defined]
        setattr(t, name, getattr(proto, name))
    t.__dict__.update(proto.__dict__)
    t.buf = big
    t.head = 0
    t.tail = tail
    return t


def ring_burst(proto: Packet, frames: list, stride: int) -> SkbBurst:
    """A burst as a receive ring holds it after the NIC wrote ``frames`` into it: row
    ``i`` is ``proto``'s headroom (``proto.mac_header`` bytes, zero) then frame ``i``,
    rows ``stride`` bytes apart in one new buffer; the skb fields are ``proto``'s (the
    driver's receive state: device, protocol, offsets from the MAC header, checksum
    verdict).  Frames must share their Ethernet header (the burst contract); a frame
    longer than the row raises ValueError."""
    h = proto.mac_header
    big = bytearray(stride * len(frames))
    tails = []
    k = h
    for f in frames:
        end = k + len(f)
        if end - k + h > stride:
            raise ValueError("frame longer than the ring's row")
        big[k:end] = f
        tails.append(end - k + h)
        k += stride
    eth = big[h:h + ETH_HLEN]
    for i in range(1, len(frames)):
        if big[i * stride + h:i * stride + h + ETH_HLEN] != eth:
            raise ValueError("frames of a burst share their Ethernet header")
    return SkbBurst(_template(proto, big, tails[0] if tails else h), stride, tails)
