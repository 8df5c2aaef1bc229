"""GRO over a receive list, a run of segments at a time: the batch twin of the per-packet
``gro_receive`` chain for plain TCP over IPv4/IPv6 (net/core/gro.c ``dev_gro_receive``,
net/ipv4/af_inet.c ``inet_gro_receive``, net/ipv6/ip6_offload.c ``ipv6_gro_receive``,
net/ipv4/tcp_offload.c ``tcp_gro_receive``, include/net/gro.h ``inet_gro_flush``, Linux 6.18).

Why a second implementation: the per-packet chain (:meth:`netstack.core.gro.Napi.receive`)
costs ~8 µs per segment in CPython — a control block and four layer callbacks per segment —
so coalescing a 64 KB TSO burst back takes longer than segmenting it did.  The kernel's rules
for a segment that continues a held TCP flow are, however, a fixed relation between its
headers and the held packet's: the same Ethernet header, the same IP header except the ID
(held ID + merged count, or unchanged once the flow kept its ID: ``ip_fixedid``) and the
header checksum, the TCP header except the sequence number (held seq + held length), the
checksum and the urgent pointer (``tcp_gro_receive`` compares neither), the same payload
length as the held packet's (``gso_size``), and a valid TCP checksum.  For a run of ``m``
consecutive segments those headers are therefore *predictable*: this module builds the
expected headers of the whole run as one big integer (the held header repeated ``m`` times
plus the ID, checksum and sequence increments as precomputed position patterns), reads the
run's real headers as another, and compares them in one operation; the first differing row
ends the run.  Every segment still has every header byte checked against the kernel's
rule — nothing is assumed about where the segments came from.

What stays with the per-packet chain (the reference): the packet that starts a flow (it is
received by :meth:`Napi.receive`, so the held packet and its control block are exactly the
kernel's), every packet that does not continue the held flow exactly (another flow, a
short or flagged segment — PSH/FIN/URG/CWR —, a checksum that is not in its canonical
form, a CHECKSUM_COMPLETE or PARTIAL packet, IPv4 options, IPv6 extension headers, VLAN
tags, tunnels, a run that would wrap the ID, the header checksum or the sequence number),
and the packet that would reach the GRO size limit.  Those go through ``Napi.receive``
one by one, so what they do to the held packet (merge and flush, flush and hold) is the
reference's.  tests/offload/test_gro_fast.py checks the two against each other on random
receive lists (flows interleaved, bad checksums, odd IDs, every flag).

Merging a run does to the held packet what ``skb_gro_receive`` does per segment: payloads
chained as memoryviews (joined once at completion), ``count`` and ``tail`` advanced,
``ip_fixedid`` recorded when the first merged segment kept the ID.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.packet.checksum import ip_fast_csum, pseudo_sum_v4, pseudo_sum_v6
from netstack.packet.skb import (CHECKSUM_NONE, CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY,
                                 Packet)

#: The checksum states a run may have: verified by the device, to be summed here, or a
#: locally built packet whose TCP checksum is still to be filled in (veth passes those
#: on: ``__skb_gro_checksum_validate_needed`` skips them when csum_start is at or past
#: the TCP header).
_SUMMED = (CHECKSUM_UNNECESSARY, CHECKSUM_NONE, CHECKSUM_PARTIAL)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.gro import Napi

#: Off: every packet takes the per-packet chain (tests compare the two).
ENABLED = True

#: A run shorter than this goes through the per-packet chain (the batch set-up costs
#: about as much as two per-packet receives: measured crossover, docs/performance.md).
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
    urgent pointer (4 bytes from ``th + 16``), which ``tcp_gro_receive`` does not compare."""
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


class _Train:
    """A held packet as the head of a plain TCP train: what its next segments must be.

    ``template`` is the held header with the checksum/urgent fields zeroed; the
    sequence, ID and header-checksum fields in it are scratch (each use sets them)."""

    __slots__ = ("p", "v6", "th", "hl", "mss", "count", "seq_next", "key", "template",
                 "idv", "csum", "fixed", "pseudo_full")

    def __init__(self, p: Packet, v6: bool, th: int, hl: int) -> None:
        self.p = p
        self.v6 = v6
        self.th = th
        self.hl = hl


def _train_of(p: Packet) -> _Train | None:
    """``p`` (just received by the per-packet chain, still held) as a train head, or
    None when the batch does not cover it."""
    pc = p.cb
    if pc is None or pc.encap_mark or pc.proto != 6:
        return None
    mac = p.mac_header
    nh = p.data
    if mac != nh - _ETH or p.vlan_proto:
        return None
    b = p.buf
    proto = p.protocol
    if proto == 0x0800:
        if b[nh] != 0x45:
            return None
        th = nh + 20
    elif proto == 0x86DD:
        if b[nh + 6] != 6:
            return None
        th = nh + 40
    else:
        return None
    if ((b[mac + 12] << 8) | b[mac + 13]) != proto or p.transport_header != th:
        return None
    thlen = (b[th + 12] >> 4) * 4
    mss = p.gso_size
    count = pc.count
    if thlen < 20 or mss <= 0 or b[th + 13] & _FLAGS_FLUSH or p.tail - th < thlen:
        return None
    held_len = p.tail - pc.hold_off
    if held_len != mss * count:
        return None
    t = _Train(p, proto == 0x86DD, th - mac, th - mac + thlen)
    t.mss = mss
    t.count = count
    t.seq_next = (int.from_bytes(b[th + 4:th + 8], "big") + held_len) & 0xFFFFFFFF
    hdr = bytearray(b[mac:mac + t.hl])
    hdr[t.th + 16:t.th + 20] = bytes(4)
    t.template = hdr
    if not t.v6:
        t.idv = (b[nh + 4] << 8) | b[nh + 5]
        t.csum = (b[nh + 10] << 8) | b[nh + 11]
        t.fixed = bool(pc.ip_fixedid & 1)
        t.pseudo_full = None
    # what every continuing segment's skb says: same device, hash and tag, IP protocol,
    # not a GSO packet, Ethernet header right in front, one full segment's length
    t.key = (p.dev, p.hash, 0, p.vlan_tci, proto, 0, -_ETH, t.hl - _ETH + mss, None)
    return t


def _expected(t: _Train, rows: int, fixed: bool) -> int | None:
    """The next ``rows`` segments' headers as the kernel requires them (checksum and
    urgent pointer zero) as one integer; None when an increment would wrap a field
    (sequence number, IPv4 ID, header checksum): those rows take the per-packet chain."""
    hl = t.hl
    th = t.th
    hdr = t.template
    seq = t.seq_next
    if seq + (rows - 1) * t.mss > 0xFFFFFFFF:
        return None
    hdr[th + 4:th + 8] = seq.to_bytes(4, "big")
    inc = False
    if not t.v6:
        step = 0 if fixed else t.count
        idv = t.idv + step
        csum = t.csum - step
        if step:
            # the header sum grows with the ID: the checksum shrinks by as much, exactly,
            # while neither wraps (csum ≥ 0 ⇔ no end-around carry in the sum)
            if idv + rows - 1 > 0xFFFF or csum - (rows - 1) < 0:
                return None
            inc = True
        hdr[_ETH + 4:_ETH + 6] = idv.to_bytes(2, "big")
        hdr[_ETH + 10:_ETH + 12] = csum.to_bytes(2, "big")
    return int.from_bytes(bytes(hdr) * rows, "big") + _increments(rows, hl, th, t.mss, inc)


#: (rows, row length, TCP offset, mss, ID increments) → the summed increment patterns
_INCREMENTS: dict[tuple[int, int, int, int, bool], int] = {}


def _increments(rows: int, hl: int, th: int, mss: int, inc: bool) -> int:
    """What turns the repeated first row into the run: row ``r`` gets ``r·mss`` on its
    sequence number and, with incrementing IDs, ``r`` on its IPv4 ID and ``-r`` on its
    header checksum (cached: a flow's trains repeat the same shape)."""
    key = (rows, hl, th, mss, inc)
    v = _INCREMENTS.get(key)
    if v is None:
        v = mss * _pattern(rows, hl, th + 4, 4)
        if inc:
            v += _pattern(rows, hl, _ETH + 4, 2) - _pattern(rows, hl, _ETH + 10, 2)
        if len(_INCREMENTS) > 256:
            _INCREMENTS.clear()
        _INCREMENTS[key] = v
    return v


def _merge_run(napi: "Napi", t: _Train, pkts: list[Packet], i: int) -> int:
    """Merge the longest run ``pkts[i:j]`` that continues the train ``t`` into its held
    packet (as ``skb_gro_receive`` would, one by one); return ``j``."""
    p = t.p
    pc = p.cb
    mss = t.mss
    # skb_gro_receive refuses a segment once the merged packet would reach the GRO size
    # limit (from its network header): that one takes the per-packet chain
    cap = (65535 - (p.tail - p.data)) // mss
    end = min(len(pkts), i + cap)
    if end - i < 1:
        return i
    # the skb fields GRO reads (gro_list_prepare, Napi.receive), one checksum state for
    # the run (_SUMMED)
    summed = pkts[i].ip_summed
    if summed not in _SUMMED:
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
    heads = b"".join([q.buf[q.mac_header:q.mac_header + hl] for q in win[:rows]])
    got = int.from_bytes(heads, "big") & _mask(rows, hl, th)
    fixed = t.fixed if not t.v6 else False
    if not t.v6 and t.count == 1:
        # inet_gro_flush: the second segment decides whether the flow keeps its ID
        fixed = ((heads[_ETH + 4] << 8) | heads[_ETH + 5]) == t.idv
    want = _expected(t, rows, fixed)
    if want is None:
        return i
    diff = got ^ want
    if diff:
        rows = (rows * hl * 8 - diff.bit_length()) // (hl * 8)
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
    frags = pc.frags
    if frags is None:
        frags = pc.frags = []
        pc.frag_base = p.tail
    off = hl
    frags.extend([memoryview(q.buf)[q.mac_header + off:q.tail] for q in win[:rows]])
    p.tail += rows * mss
    if not t.v6 and t.count == 1 and fixed:
        pc.ip_fixedid |= 1
        t.fixed = True
    pc.count += rows
    pc.same_flow = True
    napi.stats["merged"] += rows
    t.count += rows
    t.seq_next = (t.seq_next + rows * mss) & 0xFFFFFFFF
    return i + rows


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
    if summed not in _SUMMED or not 0 < plen <= mss \
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
    fixed = False
    if t.v6:
        want[_ETH + 4:_ETH + 6] = (ln - 40).to_bytes(2, "big")
    else:
        fixed = t.fixed or (t.count == 1 and ((got[_ETH + 4] << 8) | got[_ETH + 5]) == t.idv)
        idv = t.idv if fixed else (t.idv + t.count) & 0xFFFF
        want[_ETH + 4:_ETH + 6] = idv.to_bytes(2, "big")
        want[_ETH + 2:_ETH + 4] = ln.to_bytes(2, "big")
        want[_ETH + 10:_ETH + 12] = bytes(2)
        want[_ETH + 10:_ETH + 12] = ip_fast_csum(want[_ETH:_ETH + 20]).to_bytes(2, "big")
    if got != want:
        return False
    if summed == CHECKSUM_NONE:
        pre = napi.presum.get(id(q))
        if pre is None or pre[0] != q.data or pre[1] != q.tail or \
                (pre[2] + _pseudo(t, plen + hl - th)) % 0xFFFF:
            return False
    elif summed == CHECKSUM_PARTIAL and q.csum_start < mac + th:
        return False
    frags = pc.frags
    if frags is None:
        frags = pc.frags = []
        pc.frag_base = p.tail
    frags.append(memoryview(q.buf)[mac + hl:q.tail])
    p.tail += plen
    if fixed and not t.v6 and t.count == 1:
        pc.ip_fixedid |= 1
    pc.count += 1
    p.buf[p.transport_header + 13] |= flags & 0x09
    napi.hash[p.hash & (len(napi.hash) - 1)].remove(p)
    napi.gro_complete(p)
    napi.stats["merged"] += 1
    return True


def _pseudo(t: _Train, tcp_len: int) -> int:
    """The TCP pseudo-header sum for a segment of the train (minus the IPv6 header's sum,
    which the poll's frame sums include: see :func:`_valid_sums`)."""
    b = t.p.buf
    nh = t.p.data
    if t.v6:
        return (pseudo_sum_v6(b[nh + 8:nh + 24], b[nh + 24:nh + 40], tcp_len, 6)
                + 0xFFFF - int.from_bytes(b[nh:nh + 40], "big") % 0xFFFF)
    return pseudo_sum_v4(b[nh + 12:nh + 16], b[nh + 16:nh + 20], tcp_len, 6)


def _valid_sums(napi: "Napi", t: _Train, win: list[Packet], rows: int) -> int:
    """How many of the first ``rows`` CHECKSUM_NONE segments have a valid TCP checksum,
    from the poll's frame sums (``Napi.presum``, network header to end): an IPv4 header
    was checked to be valid, so its sum is ≡ 0 and the frame sum is the TCP segment's;
    an IPv6 header (no checksum) is the held one, its sum is taken out once; with the
    pseudo-header (the same for every full segment) it must be ≡ 0 mod 0xffff —
    ``__skb_gro_checksum_validate`` with ``_gro_payload_sum``'s derivation."""
    psum = _pseudo(t, t.hl - t.th + t.mss)
    presum = napi.presum
    get = presum.get
    for r in range(rows):
        q = win[r]
        pre = get(id(q))
        if pre is None or pre[0] != q.data or pre[1] != q.tail or (pre[2] + psum) % 0xFFFF:
            return r
    return rows


def receive_list(napi: "Napi", pkts: list[Packet]) -> None:
    """One NAPI poll's GRO (``napi_gro_receive`` for each packet in order): packets that
    start or break a flow go through :meth:`Napi.receive`; runs that continue the flow
    held last are merged by :func:`_merge_run`.  The result — held packets, merges,
    flushes, the order of what goes up — is the per-packet chain's."""
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
