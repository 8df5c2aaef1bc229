"""GRO over a receive list, a run of segments at a time: the batch twin of the per-packet
``gro_receive`` chain for TCP over IPv4/IPv6 and TCP/IPv4 in VXLAN over IPv4 (net/core/gro.c
``dev_gro_receive``, net/ipv4/af_inet.c ``inet_gro_receive``, net/ipv6/ip6_offload.c
``ipv6_gro_receive``, net/ipv4/tcp_offload.c ``tcp_gro_receive``, include/net/gro.h
``inet_gro_flush``, net/ipv4/udp_offload.c ``udp4_gro_receive``/``udp_gro_receive``,
drivers/net/vxlan/vxlan_core.c ``vxlan_gro_receive``, Linux 6.18).

Why a second implementation: the per-packet chain (:meth:`netstack.core.gro.Napi.receive`)
costs ~8 µs per segment in CPython (VXLAN ~16) — a control block and four (eight) layer
callbacks per segment — so coalescing a 64 KB TSO burst back took longer than segmenting
it did.  The kernel's rules for a segment that continues a held TCP flow are, however, a
fixed relation between its headers and the held packet's: the same Ethernet header, the
same IP header(s) except the ID (held ID + merged count, or unchanged once the flow kept
its ID: ``ip_fixedid``, one bit per header) and the header checksum, the same UDP/VXLAN
headers, the TCP header except the sequence number (held seq + held length), the checksum
and the urgent pointer (``tcp_gro_receive`` compares neither), the same payload length as
the held packet's (``gso_size``), and valid checksums.  For a run of ``m`` consecutive
segments those headers are therefore *predictable*: this module builds the expected
headers of the whole run as one big integer (the held header repeated ``m`` times plus
the ID, checksum and sequence increments as cached position patterns), reads the run's
real headers as another, and compares them in one operation; the first differing row ends
the run.  Every segment still has every header byte checked against the kernel's rule —
nothing is assumed about where the segments came from.

What stays with the per-packet chain (the reference): the packet that starts a flow (it is
received by :meth:`Napi.receive`, so the held packet and its control block are exactly the
kernel's), every packet that does not continue the held flow exactly (another flow, a
flagged segment — URG/CWR/RST/SYN —, a checksum that is not in its canonical form,
CHECKSUM_COMPLETE, a PARTIAL packet whose csum_start is before the TCP header, IPv4
options, IPv6 extension headers, VLAN tags, other tunnels, VXLAN-RCO, a run that would
wrap an ID, a header checksum or the sequence number), and the packet that would reach
the GRO size limit.  Those go through ``Napi.receive`` one by one, so what they do to the
held packet (merge and flush, flush and hold) is the reference's.
tests/offload/test_gro_fast.py checks the two against each other on random receive lists
(flows interleaved, bad checksums, odd IDs, every flag, tunnels).

Merging a run does to the held packet what ``skb_gro_receive`` does per segment: payloads
chained as memoryviews (joined once at completion), ``count`` and ``tail`` advanced,
``ip_fixedid`` recorded when the first merged segment kept an ID.  The segment that ends
a train (shorter, or PSH/FIN) is checked field by field, merged, and the held packet
completed at once — what ``tcp_gro_receive``'s flush does.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.packet.checksum import (csum_partial, csum_partial_many, ip_fast_csum, pseudo_sum_v4,
                                      pseudo_sum_v6)
from netstack.packet.skb import (CHECKSUM_NONE, CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY,
                                 Packet)
from netstack.packet.skb_burst import SkbBurst

#: The checksum states a run may have: verified by the device, to be summed here, or a
#: locally built packet whose TCP checksum is still to be filled in (veth passes those
#: on: ``__skb_gro_checksum_validate_needed`` skips them when csum_start is at or past
#: the TCP header).
_SUMMED = (CHECKSUM_UNNECESSARY, CHECKSUM_NONE, CHECKSUM_PARTIAL)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.gro import Napi

#: Off: every packet takes the per-packet chain (tests compare the two).
ENABLED = True

# numpy, bound on first use (a burst's headers are read with one strided copy)
_np: Any = None
_u8: Any = None


def _numpy() -> Any:
    """Import numpy on first use and bind the names :func:`_merge_burst_run` uses."""
    global _np, _u8
    import numpy

    _np = numpy
    _u8 = numpy.uint8
    return numpy

#: Lists shorter than this take the chain only: with one or two packets there is at
#: most one packet after a held one, and a run of one does not repay the set-up.
MIN_RUN = 3

_ETH = 14
_FLAGS_FLUSH = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x80  # FIN SYN RST PSH URG CWR

#: (rows, row length, field offset, field width) → the integer whose row r holds r
_PATTERNS: dict[tuple[int, int, int, int], int] = {}
#: (rows, row length) → all-ones except the TCP checksum and urgent pointer of every row
_MASKS: dict[tuple[int, int, int], int] = {}


def _pattern(rows: int, hl: int, off: int, width: int) -> int:
    """The big-endian integer of ``rows`` rows of ``hl`` bytes whose row ``r`` holds ``r``
    in the field at ``off`` (``width`` bytes): adding ``k ×`` it adds ``k·r`` to that
    field of every row, without carries as long as no field overflows."""
    key = (rows, hl, off, width)
    v = _PATTERNS.get(key)
    if v is None:
        total = rows * hl
        v = 0
        for r in range(1, rows):
            v |= r << (8 * (total - r * hl - off - width))
        if len(_PATTERNS) > 256:
            _PATTERNS.clear()
        _PATTERNS[key] = v
    return v


def _mask(rows: int, hl: int, th: int) -> int:
    """All-ones over ``rows`` rows of ``hl`` bytes except every row's TCP checksum and
    urgent pointer (4 bytes from ``th + 16``), which ``tcp_gro_receive`` does not compare
    (the checksum is validated separately)."""
    key = (rows, hl, th)
    v = _MASKS.get(key)
    if v is None:
        row = bytearray(b"\xff" * hl)
        row[th + 16:th + 20] = bytes(4)
        v = int.from_bytes(bytes(row) * rows, "big")
        if len(_MASKS) > 256:
            _MASKS.clear()
        _MASKS[key] = v
    return v


class _Ip4:
    """An IPv4 header of the train (the only one, or the outer/inner one of a tunnel):
    where it is in a row, its ``ip_fixedid`` bit, the held ID and header checksum."""

    __slots__ = ("off", "bit", "idv", "csum", "fixed")

    def __init__(self, off: int, bit: int, idv: int, csum: int, fixed: bool) -> None:
        self.off = off
        self.bit = bit
        self.idv = idv
        self.csum = csum
        self.fixed = fixed


class _Train:
    """A held packet as the head of a TCP train: what its next segments must be.

    ``template`` is the held header with the TCP checksum/urgent fields zeroed (and a
    VXLAN train's outer UDP checksum set to the one every valid segment carries, see
    :func:`_udp_check`); the sequence, ID and header-checksum fields in it are scratch
    (each use sets them).  ``nh`` is the row offset of the IP header in front of TCP,
    ``udp`` that of a VXLAN train's outer UDP header (None for plain TCP)."""

    __slots__ = ("p", "v6", "nh", "th", "hl", "mss", "count", "seq_next", "key", "template",
                 "ip4", "udp", "summed")

    def __init__(self, p: Packet, v6: bool, nh: int, th: int, hl: int) -> None:
        self.p = p
        self.v6 = v6
        self.nh = nh
        self.th = th
        self.hl = hl
        self.udp: int | None = None
        self.ip4: list[_Ip4] = []


def _vxlan_sock(p: Packet, onh: int) -> bool:
    """Is the held packet's outer UDP destination a VXLAN socket (``udp4_gro_receive``'s
    lookup, as the chain did for it)?  Other UDP tunnels have other header rules."""
    from netstack.drivers.vxlan.gro import vxlan_gro_receive
    from netstack.ipv4.udp_offload import _tunnel_sock
    sk = _tunnel_sock(p, False, onh + 20)
    return sk is not None and getattr(sk, "gro_receive", None) is vxlan_gro_receive


def _train_of(p: Packet) -> _Train | None:
    """``p`` (just received by the per-packet chain, still held) as a train head, or
    None when the batch does not cover it: plain TCP over IPv4/IPv6, or TCP/IPv4 in
    VXLAN over IPv4 (no RCO)."""
    pc = p.cb
    if pc is None or pc.proto != 6:
        return None
    mac = p.mac_header
    onh = p.data
    if mac != onh - _ETH or p.vlan_proto:
        return None
    b = p.buf
    proto = p.protocol
    if ((b[mac + 12] << 8) | b[mac + 13]) != proto:
        return None
    udp = None
    if pc.encap_mark:
        # outer IPv4 + UDP + VXLAN (8) + Ethernet + IPv4 + TCP
        if proto != 0x0800 or b[onh] != 0x45 or b[onh + 9] != 17:
            return None
        udp = onh + 20
        vx = udp + 8
        if b[vx] & 0x20 or b[vx + 20] != 0x08 or b[vx + 21] != 0x00:  # RCO; inner IPv4
            return None
        nh = vx + 8 + _ETH
        if b[nh] != 0x45 or not _vxlan_sock(p, onh):
            return None
        th = nh + 20
        v6 = False
    elif proto == 0x0800:
        if b[onh] != 0x45:
            return None
        nh = onh
        th = nh + 20
        v6 = False
    elif proto == 0x86DD:
        if b[onh + 6] != 6:
            return None
        nh = onh
        th = nh + 40
        v6 = True
    else:
        return None
    if p.transport_header != th:
        return None
    thlen = (b[th + 12] >> 4) * 4
    mss = p.gso_size
    count = pc.count
    if thlen < 20 or mss <= 0 or b[th + 13] & _FLAGS_FLUSH or p.tail - th < thlen:
        return None
    held_len = p.tail - pc.hold_off
    if held_len != mss * count:
        return None
    t = _Train(p, v6, nh - mac, th - mac, th - mac + thlen)
    t.mss = mss
    t.count = count
    t.seq_next = (int.from_bytes(b[th + 4:th + 8], "big") + held_len) & 0xFFFFFFFF
    hdr = bytearray(b[mac:mac + t.hl])
    hdr[t.th + 16:t.th + 20] = bytes(4)
    t.template = hdr
    t.summed = _SUMMED
    if udp is not None:
        t.udp = udp - mac
        t.ip4.append(_Ip4(_ETH, 1, (b[onh + 4] << 8) | b[onh + 5],
                          (b[onh + 10] << 8) | b[onh + 11], bool(pc.ip_fixedid & 1)))
        t.ip4.append(_Ip4(t.nh, 2, (b[nh + 4] << 8) | b[nh + 5],
                          (b[nh + 10] << 8) | b[nh + 11], bool(pc.ip_fixedid & 2)))
        if b[udp + 6] or b[udp + 7]:
            # a checksummed outer UDP: verified by the device or summed here (NONE), and
            # then every valid segment carries one and the same value (_udp_check)
            t.summed = (CHECKSUM_UNNECESSARY, CHECKSUM_NONE)
            hdr[t.udp + 6:t.udp + 8] = _udp_check(t, t.hl - t.udp + mss,
                                                  t.hl - t.th + mss).to_bytes(2, "big")
        else:
            # no outer checksum: the inner TCP checksum is only known good from the
            # device (two verified levels) or a local sender (PARTIAL)
            t.summed = (CHECKSUM_UNNECESSARY, CHECKSUM_PARTIAL)
    elif not v6:
        t.ip4.append(_Ip4(_ETH, 1, (b[nh + 4] << 8) | b[nh + 5],
                          (b[nh + 10] << 8) | b[nh + 11], bool(pc.ip_fixedid & 1)))
    # what every continuing segment's skb says: same device, hash and tag, IP protocol,
    # not a GSO packet, Ethernet header right in front, one full segment's length
    t.key = (p.dev, p.hash, 0, p.vlan_tci, proto, 0, -_ETH, t.hl - _ETH + mss, None)
    return t


def _udp_check(t: _Train, udp_len: int, tcp_len: int) -> int:
    """The outer UDP checksum of a VXLAN segment whose inner TCP checksum is valid.

    ``udp4_gro_receive`` converts a verified outer checksum into the sum of everything
    after the UDP header (``skb_gro_checksum_try_convert``: ``~pseudo``), the pulls take
    the UDP, VXLAN and inner Ethernet headers out of it (``skb_gro_postpull_rcsum``), and
    ``tcp4_gro_receive`` accepts the inner checksum without reading the payload iff that
    sum plus the inner pseudo-header is ≡ 0.  A valid TCP segment sums to −pseudo, so
    every valid segment of the train has the same outer checksum: this one (≡ inner
    pseudo − outer pseudo − UDP ports and length − VXLAN − Ethernet, mod 0xffff)."""
    hdr = t.template
    b = t.p.buf
    mac = t.p.mac_header
    onh = mac + _ETH
    nh = mac + t.nh
    u = t.udp
    outer = pseudo_sum_v4(b[onh + 12:onh + 16], b[onh + 16:onh + 20], udp_len, 17)
    inner = pseudo_sum_v4(b[nh + 12:nh + 16], b[nh + 16:nh + 20], tcp_len, 6)
    ports = (hdr[u] << 8 | hdr[u + 1]) + (hdr[u + 2] << 8 | hdr[u + 3]) + udp_len
    rest = int.from_bytes(hdr[u + 8:t.nh], "big") % 0xFFFF  # VXLAN + inner Ethernet (22 B)
    v = (inner - outer - ports - rest) % 0xFFFF
    return v or 0xFFFF


def _expected(t: _Train, rows: int, fixed: list[bool]) -> int | None:
    """The next ``rows`` segments' headers as the kernel requires them (TCP checksum and
    urgent pointer zero) as one integer; None when an increment would wrap a field
    (sequence number, an IPv4 ID or header checksum): those rows take the chain."""
    hl = t.hl
    th = t.th
    hdr = t.template
    seq = t.seq_next
    if seq + (rows - 1) * t.mss > 0xFFFFFFFF:
        return None
    hdr[th + 4:th + 8] = seq.to_bytes(4, "big")
    inc = []
    for h, fx in zip(t.ip4, fixed):
        step = 0 if fx else t.count
        idv = h.idv + step
        csum = h.csum - step
        if not fx:
            # the header sum grows with the ID: the checksum shrinks by as much, exactly,
            # while neither wraps (csum ≥ 0 ⇔ no end-around carry in the sum)
            if idv + rows - 1 > 0xFFFF or csum - (rows - 1) < 0:
                return None
            inc.append(h.off)
        o = h.off
        hdr[o + 4:o + 6] = idv.to_bytes(2, "big")
        hdr[o + 10:o + 12] = csum.to_bytes(2, "big")
    return int.from_bytes(bytes(hdr) * rows, "big") + _increments(rows, hl, th, t.mss,
                                                                    tuple(inc))


#: (rows, row length, TCP offset, mss, incrementing IPv4 headers) → the summed patterns
_INCREMENTS: dict[tuple[int, int, int, int, tuple[int, ...]], int] = {}


def _increments(rows: int, hl: int, th: int, mss: int, inc: tuple[int, ...]) -> int:
    """What turns the repeated first row into the run: row ``r`` gets ``r·mss`` on its
    sequence number and, for each IPv4 header with incrementing IDs, ``r`` on the ID and
    ``-r`` on the header checksum (cached: a flow's trains repeat the same shape)."""
    key = (rows, hl, th, mss, inc)
    v = _INCREMENTS.get(key)
    if v is None:
        v = mss * _pattern(rows, hl, th + 4, 4)
        for o in inc:
            v += _pattern(rows, hl, o + 4, 2) - _pattern(rows, hl, o + 10, 2)
        if len(_INCREMENTS) > 256:
            _INCREMENTS.clear()
        _INCREMENTS[key] = v
    return v


def _merge_run(napi: "Napi", t: _Train, pkts: list[Packet], i: int) -> int:
    """Merge the longest run ``pkts[i:j]`` that continues the train ``t`` into its held
    packet (as ``skb_gro_receive`` would, one by one); return ``j``."""
    p = t.p
    mss = t.mss
    # skb_gro_receive refuses a segment once the merged packet would reach the GRO size
    # limit (from its network header): that one takes the per-packet chain
    cap = (65535 - (p.tail - p.data)) // mss
    end = min(len(pkts), i + cap)
    if end - i < 1:
        return i
    # the skb fields GRO reads (gro_list_prepare, Napi.receive), one checksum state for
    # the run (_SUMMED, narrowed for a tunnel)
    summed = pkts[i].ip_summed
    if summed not in t.summed:
        return i
    key = t.key + (summed,)
    win = pkts[i:end]
    keys = [(q.dev, q.hash, q.vlan_proto, q.vlan_tci, q.protocol, q.gso_size,
             q.mac_header - q.data, q.tail - q.data, q.trace, q.ip_summed) for q in win]
    rows = len(keys)
    if keys.count(key) != rows:
        rows = 0
        for k in keys:
            if k != key:
                break
            rows += 1
        if not rows:
            return i
        win = win[:rows]
    hl = t.hl
    th = t.th
    if summed == CHECKSUM_UNNECESSARY and t.udp is not None and not t.template[t.udp + 6] \
            and not t.template[t.udp + 7]:
        # no outer checksum: the device must have verified the inner one too
        for r in range(rows):
            if win[r].csum_level < 1:
                rows = r
                break
        if not rows:
            return i
    heads = b"".join([q.buf[q.mac_header:q.mac_header + hl] for q in win[:rows]])
    rows, fixed = _compare(t, rows, heads)
    if not rows:
        return i
    if summed == CHECKSUM_NONE:
        rows = _valid_sums(napi, t, win, rows)
        if not rows:
            return i
    elif summed == CHECKSUM_PARTIAL:
        for r in range(rows):
            q = win[r]
            if q.csum_start < q.mac_header + th:
                rows = r
                break
        if not rows:
            return i
    # skb_gro_receive × rows (the payloads chained, joined at completion)
    _commit(napi, t, [memoryview(q.buf)[q.mac_header + hl:q.tail] for q in win[:rows]], rows,
            fixed)
    return i + rows


def _compare(t: _Train, rows: int, heads: bytes) -> tuple[int, list[bool]]:
    """How many of the ``rows`` headers ``heads`` (``t.hl`` bytes each, end to end)
    continue the train exactly — the kernel's header rules, in one comparison — and the
    ``ip_fixedid`` verdict per IPv4 header (``inet_gro_flush``: the second segment of a
    flow decides whether it keeps its ID)."""
    hl = t.hl
    got = int.from_bytes(heads, "big") & _mask(rows, hl, t.th)
    fixed = []
    for h in t.ip4:
        if t.count == 1:
            o = h.off
            fixed.append(((heads[o + 4] << 8) | heads[o + 5]) == h.idv)
        else:
            fixed.append(h.fixed)
    want = _expected(t, rows, fixed)
    if want is None:
        return 0, fixed
    diff = got ^ want
    if diff:
        rows = (rows * hl * 8 - diff.bit_length()) // (hl * 8)
    return rows, fixed


def _commit(napi: "Napi", t: _Train, payloads: list, rows: int, fixed: list[bool]) -> None:
    """``skb_gro_receive`` for each of the run's ``rows`` segments (``payloads``: their
    payloads, ``mss`` bytes each, as buffers — one per segment, or one for all):
    chained to the held packet (joined at completion), ``count``/``tail``/the flow's
    next sequence number advanced, ``ip_fixedid`` recorded on the first merge."""
    p = t.p
    pc = p.cb
    frags = pc.frags
    if frags is None:
        frags = pc.frags = []
        pc.frag_base = p.tail
    frags.extend(payloads)
    p.tail += rows * t.mss
    if t.count == 1:
        for h, fx in zip(t.ip4, fixed):
            if fx:
                pc.ip_fixedid |= h.bit
                h.fixed = True
    pc.count += rows
    pc.same_flow = True
    napi.stats["merged"] += rows
    t.count += rows
    t.seq_next = (t.seq_next + rows * t.mss) & 0xFFFFFFFF


def _merge_last(napi: "Napi", t: _Train, q: Packet) -> bool:
    """The segment that ends a train: shorter than the held mss and/or carrying PSH/FIN,
    otherwise continuing it exactly.  ``tcp_gro_receive`` merges it (FIN/PSH passed on to
    the held header) and flushes the held packet at once (``Napi.receive`` completes it).
    Checked field by field here (one row); True if it was merged."""
    p = t.p
    pc = p.cb
    hl = t.hl
    th = t.th
    mss = t.mss
    summed = q.ip_summed
    ln = q.tail - q.data
    plen = ln - (hl - _ETH)
    if summed not in t.summed or not 0 < plen <= mss \
            or (q.dev, q.hash, q.vlan_proto, q.vlan_tci, q.protocol, q.gso_size,
                q.mac_header - q.data, q.trace) != t.key[:7] + t.key[8:] \
            or (p.tail - p.data) + plen >= 65536:
        return False
    mac = q.mac_header
    got = bytearray(q.buf[mac:mac + hl])
    flags = got[th + 13]
    extra = flags ^ t.template[th + 13]
    if extra & ~0x09 or (plen == mss and not extra):
        return False
    got[th + 16:th + 20] = bytes(4)
    want = bytearray(t.template)
    want[th + 4:th + 8] = t.seq_next.to_bytes(4, "big")
    want[th + 13] = flags
    tcp_len = plen + hl - th
    if t.v6:
        want[t.nh + 4:t.nh + 6] = (tcp_len).to_bytes(2, "big")
    fixed = []
    for h in t.ip4:
        o = h.off
        fx = h.fixed or (t.count == 1 and ((got[o + 4] << 8) | got[o + 5]) == h.idv)
        fixed.append(fx)
        idv = h.idv if fx else (h.idv + t.count) & 0xFFFF
        want[o + 2:o + 4] = (ln - (o - _ETH)).to_bytes(2, "big")
        want[o + 4:o + 6] = idv.to_bytes(2, "big")
        want[o + 10:o + 12] = bytes(2)
        want[o + 10:o + 12] = ip_fast_csum(want[o:o + 20]).to_bytes(2, "big")
    if t.udp is not None:
        u = t.udp
        udp_len = ln - (u - _ETH)
        want[u + 4:u + 6] = udp_len.to_bytes(2, "big")
        if want[u + 6] or want[u + 7]:
            want[u + 6:u + 8] = _udp_check(t, udp_len, tcp_len).to_bytes(2, "big")
        elif summed == CHECKSUM_UNNECESSARY and q.csum_level < 1:
            return False  # no outer checksum: the inner one is known good only from the device
    if got != want:
        return False
    if summed == CHECKSUM_NONE:
        pre = napi.presum.get(id(q))
        if pre is None or pre[0] != q.data or pre[1] != q.tail or \
                (pre[2] + _pseudo(t, tcp_len, ln)) % 0xFFFF:
            return False
    elif summed == CHECKSUM_PARTIAL and q.csum_start < mac + th:
        return False
    frags = pc.frags
    if frags is None:
        frags = pc.frags = []
        pc.frag_base = p.tail
    frags.append(memoryview(q.buf)[mac + hl:q.tail])
    p.tail += plen
    if t.count == 1:
        for h, fx in zip(t.ip4, fixed):
            if fx:
                pc.ip_fixedid |= h.bit
    pc.count += 1
    p.buf[p.transport_header + 13] |= flags & 0x09
    napi.hash[p.hash & (len(napi.hash) - 1)].remove(p)
    napi.gro_complete(p)
    napi.stats["merged"] += 1
    return True


def _pseudo(t: _Train, tcp_len: int, ln: int) -> int:
    """What a segment's frame sum (``Napi.presum``: network header to end) plus this must
    be ≡ 0 for its checksum to hold.  Plain IPv4: the TCP pseudo-header (a valid IPv4
    header sums to ≡ 0); IPv6: that minus the segment's IPv6 header sum (no checksum in
it; the held header with the segment's payload length);
    VXLAN: the outer UDP pseudo-header (``ln`` from the outer IP header) — the inner TCP
    checksum then follows from the outer one (:func:`_udp_check`)."""
    b = t.p.buf
    mac = t.p.mac_header
    if t.udp is not None:
        o = mac + _ETH
        return pseudo_sum_v4(b[o + 12:o + 16], b[o + 16:o + 20], ln - 20, 17)
    nh = mac + t.nh
    if t.v6:
        # the segment's own IPv6 header: the held one with the payload length ``tcp_len``
        # (words sum mod 0xffff as the big-endian integer does: 2**16 ≡ 1)
        hsum = (int.from_bytes(b[nh:nh + 40], "big") - ((b[nh + 4] << 8) | b[nh + 5])
                + tcp_len) % 0xFFFF
        return (pseudo_sum_v6(b[nh + 8:nh + 24], b[nh + 24:nh + 40], tcp_len, 6)
                + 0xFFFF - hsum)
    return pseudo_sum_v4(b[nh + 12:nh + 16], b[nh + 16:nh + 20], tcp_len, 6)


def _run_pseudo(t: _Train) -> int:
    """:func:`_pseudo` for a full segment of the train (every segment of a run)."""
    return _pseudo(t, t.hl - t.th + t.mss, t.hl - _ETH + t.mss)


def _valid_sums(napi: "Napi", t: _Train, win: list[Packet], rows: int) -> int:
    """How many of the first ``rows`` CHECKSUM_NONE segments have a valid checksum, from
    the poll's frame sums (``Napi.presum``, network header to end, computed for the whole
    poll in one call) and :func:`_pseudo` — ``__skb_gro_checksum_validate`` with
    ``_gro_payload_sum``'s derivation (an IPv4 header was checked valid: its sum is ≡ 0)."""
    psum = _run_pseudo(t)
    get = napi.presum.get
    for r in range(rows):
        q = win[r]
        pre = get(id(q))
        if pre is None or pre[0] != q.data or pre[1] != q.tail or (pre[2] + psum) % 0xFFFF:
            return r
    return rows


def receive_list(napi: "Napi", pkts: list[Packet]) -> None:
    """One NAPI poll's GRO (``napi_gro_receive`` for each packet in order): packets that
    start or break a flow go through :meth:`Napi.receive`; runs that continue the flow
    held last are merged by :func:`_merge_run` and :func:`_merge_last`.  The result —
    held packets, merges, flushes, the order of what goes up — is the chain's."""
    receive = napi.receive
    n = len(pkts)
    i = 0
    train: _Train | None = None
    misses = 0
    while i < n:
        q = pkts[i]
        i += 1
        if receive(q) == "HELD":
            train = _train_of(q) if n - i >= MIN_RUN - 1 else None
            misses = 0
        elif train is not None:
            # the packet went up or merged through the chain: the train, if still held,
            # goes on from the held packet's new state — unless the batch has failed to
            # take the packets after it twice (a flow it does not cover: stop trying)
            train = _train_of(train.p) if train.p.cb is not None and misses < 2 else None
        if train is not None and i < n:
            j = _merge_run(napi, train, pkts, i)
            if j < n and _merge_last(napi, train, pkts[j]):
                j += 1
                train = None
            misses = misses + 1 if j == i else 0
            i = j


# ---- bursts (netstack/packet/skb_burst.py): the segments in one buffer, one set of fields
def _merge_burst_run(napi: "Napi", t: _Train, b: SkbBurst, i: int) -> int:
    """:func:`_merge_run` for rows ``i ..`` of the burst ``b``: the skb fields GRO reads
    are the burst's one set (checked once), the frame lengths its ``tails``, the headers
    read from the rows at their stride in one strided copy; the rest — the comparison,
    the checksum verdicts, the merge — is the list path's.  Returns the first row not
    merged."""
    p = t.p
    mss = t.mss
    cap = (65535 - (p.tail - p.data)) // mss
    end = min(len(b), i + cap)
    if end - i < 1:
        return i
    tm = b.tmpl
    summed = tm.ip_summed
    if summed not in t.summed:
        return i
    key = t.key + (summed,)
    data = tm.data
    if (tm.dev, tm.hash, tm.vlan_proto, tm.vlan_tci, tm.protocol, tm.gso_size,
            tm.mac_header - data, key[7], tm.trace, summed) != key:
        return i
    th = t.th
    if summed == CHECKSUM_UNNECESSARY and t.udp is not None and not t.template[t.udp + 6] \
            and not t.template[t.udp + 7] and tm.csum_level < 1:
        return i  # no outer checksum: the device must have verified the inner one too
    mac = tm.mac_header
    if summed == CHECKSUM_PARTIAL and tm.csum_start < mac + th:
        return i
    # rows of one full segment's length (a burst's frames differ in nothing else)
    tail = data + key[7]
    tails = b.tails[i:end]
    rows = len(tails)
    if tails.count(tail) != rows:
        rows = 0
        for x in tails:
            if x != tail:
                break
            rows += 1
        if not rows:
            return i
    hl = t.hl
    stride = b.stride
    np = _np or _numpy()
    k0 = i * stride
    v = np.frombuffer(tm.buf, _u8, rows * stride, k0).reshape(rows, stride)
    rows, fixed = _compare(t, rows, v[:, mac:mac + hl].tobytes())
    if not rows:
        return i
    if summed == CHECKSUM_NONE:
        psum = _run_pseudo(t)
        mv = memoryview(tm.buf)
        sums = csum_partial_many([mv[k + data:k + tail]
                                  for k in range(k0, k0 + rows * stride, stride)])
        for r, x in enumerate(sums):
            if (x + psum) % 0xFFFF:
                rows = r
                break
        if not rows:
            return i
    # the run's payloads, row after row, in one strided copy
    _commit(napi, t, [v[:rows, mac + hl:tail].tobytes()], rows, fixed)
    return i + rows


def _presum(napi: "Napi", q: Packet) -> None:
    """``Napi.presum`` for one CHECKSUM_NONE skb made from a burst row (what
    :meth:`Napi.receive_list` computes for a whole list)."""
    if q.ip_summed == CHECKSUM_NONE:
        napi.presum[id(q)] = (q.data, q.tail, csum_partial(memoryview(q.buf)[q.data:q.tail]), q)


def receive_burst(napi: "Napi", b: SkbBurst) -> None:
    """GRO of the burst ``b`` within a NAPI poll (``napi_gro_receive`` for each row in
    order, as :func:`receive_list` does for a list): row 0 as an skb through the chain;
    when it is held as the head of a covered train, the rows that continue it are merged
    from the buffer (:func:`_merge_burst_run`) and the row that ends the train as an skb
    (:func:`_merge_last`); every other row becomes an skb and goes through
    :func:`receive_list`.  The result is the chain's for ``b.packets()``."""
    n = len(b)
    q = b.skb(0)
    i = 1
    rest: list[Packet] = []
    if napi.receive(q) == "HELD" and n >= MIN_RUN:
        train = _train_of(q)
        if train is not None:
            i = _merge_burst_run(napi, train, b, 1)
            if i < n:
                q = b.skb(i)
                i += 1
                _presum(napi, q)
                if not _merge_last(napi, train, q):
                    rest.append(q)
    if i < n:
        rest += b.packets(i)
    if rest:
        napi.add_presum(rest)
        if len(rest) >= MIN_RUN:
            receive_list(napi, rest)
        else:
            for q in rest:
                napi.receive(q)
