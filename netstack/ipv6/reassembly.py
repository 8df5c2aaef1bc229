"""IPv6 reassembly (net/ipv6/reassembly.c, net/ipv4/inet_fragment.c).

``ipv6_frag_rcv`` reproduces the kernel's checks: payload length 0 or a truncated fragment
header → ICMPv6 parameter problem (code 0); an atomic fragment (offset 0, M = 0) is passed
on at once (RFC 6946); a first fragment without the whole header chain → parameter problem
code 3; a non-final fragment whose length is not a multiple of 8 → parameter problem
pointing at the payload length; a fragment ending beyond 65535 → parameter problem at the
fragment offset; inconsistent last fragments and overlaps drop the whole queue (RFC 5722;
an exact duplicate only drops itself, DUP_FRAG).  A queue lives ``ip6frag_time`` (60 s):
on expiry, if the first fragment arrived, ICMPv6 time exceeded code 1 goes to the source;
every queued fragment drops with FRAG_REASM_TIMEOUT.  Memory above
``ip6frag_high_thresh`` refuses new queues.  Queues are keyed by (source, destination,
identification, and the input interface for link-local/multicast destinations).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netstack.core.clock import NSEC_PER_SEC
from netstack.core.drop_reason import kfree_skb_reason

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.clock import Timer
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

IPV6_MAXPLEN = 65535
FIRST_IN = 1
LAST_IN = 2
TRUESIZE_OVERHEAD = 576


@dataclass(eq=False)
class FragQueue:
    """``struct frag_queue``."""

    key: tuple
    timer: "Timer"
    frags: list[tuple[int, int, "Packet"]] = field(default_factory=list)  # (offset, end, pkt)
    flags: int = 0
    length: int = 0   # q.len
    meat: int = 0
    nhoffset: int = 0
    max_size: int = 0
    iif: int = 0
    mem: int = 0
    ecn: int = 0


def _param_prob(pkt: "Packet", code: int, pointer: int) -> None:
    from netstack.ipv6.icmp import icmp6_send
    icmp6_send(pkt, 4, code, pointer)


def _kill(net: "Net", fq: FragQueue, reason: str) -> None:
    """``inet_frag_kill`` + destroy: unhash, stop the timer, free what is queued."""
    fq.timer.cancel()
    v6 = net.ipv6
    if v6.frags.get(fq.key) is fq:
        del v6.frags[fq.key]
    v6.frag_mem -= fq.mem
    for _, _, p in fq.frags:
        kfree_skb_reason(p, reason, net)
    fq.frags = []


def _expire(net: "Net", fq: FragQueue) -> None:
    """``ip6_frag_expire``: time exceeded (fragment reassembly) if the first fragment came."""
    from netstack.ipv6.icmp import icmp6_send
    if net.ipv6.frags.get(fq.key) is not fq:
        return
    net.ipv6.mib["ReasmTimeout"] += 1
    net.ipv6.mib["ReasmFails"] += 1
    head = None
    if fq.flags & FIRST_IN and fq.frags and fq.frags[0][0] == 0:
        head = fq.frags.pop(0)[2]
    _kill(net, fq, "FRAG_REASM_TIMEOUT")
    if head is not None:
        dev = net.get_by_index(fq.iif)
        if dev is not None:
            head.dev = dev
            icmp6_send(head, 3, 1, 0)
        kfree_skb_reason(head, "FRAG_REASM_TIMEOUT", net)


def _thdr_truncated(pkt: "Packet", start: int, nexthdr: int) -> bool:
    """``ipv6frag_thdr_truncated``: the first fragment must carry the upper-layer header
    start (walk past any extension headers that follow the fragment header)."""
    buf = pkt.buf
    end = pkt.tail
    off = start
    while nexthdr in (0, 43, 60, 51):
        if end - off < 2:
            return True
        hl = ((buf[off + 1] + 2) << 2) if nexthdr == 51 else ((buf[off + 1] + 1) << 3)
        nexthdr = buf[off]
        off += hl
    need = {6: 20, 17: 8, 58: 8}.get(nexthdr, 0)
    return off + need > end


def ipv6_frag_rcv(pkt: "Packet") -> "Packet | None":
    """Handle a fragment at ``pkt.transport_header``; returns the reassembled packet (or
    the atomic fragment) positioned past the fragment header, or None when queued/dropped."""
    net = pkt.dev.net
    v6 = net.ipv6
    mib = v6.mib
    mib["ReasmReqds"] += 1
    buf = pkt.buf
    o = pkt.network_header
    th = pkt.transport_header
    cb = pkt.cb
    plen = (buf[o + 4] << 8) | buf[o + 5]
    if plen == 0 or pkt.tail - th < 8:
        mib["InHdrErrors"] += 1
        _param_prob(pkt, 0, th - o)
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return None
    frag_off = (buf[th + 2] << 8) | buf[th + 3]
    fnexthdr = buf[th]
    ident = int.from_bytes(buf[th + 4:th + 8], "big")
    if not frag_off & 0xFFF9:
        # atomic fragment
        mib["ReasmOKs"] += 1
        # the header stays; the walk continues with its next-header byte
        cb.nhoff = th - o
        cb.fragmented = True
        cb.frag_max_size = plen + 40
        pkt.transport_header = th + 8
        return pkt
    offset = frag_off & 0xFFF8
    if offset == 0 and _thdr_truncated(pkt, th + 8, fnexthdr):
        mib["InHdrErrors"] += 1
        _param_prob(pkt, 3, 0)
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return None
    daddr = bytes(buf[o + 24:o + 40])
    scoped = daddr[0] == 0xFF or (daddr[0] == 0xFE and (daddr[1] & 0xC0) == 0x80)
    key = (bytes(buf[o + 8:o + 24]), daddr, ident, pkt.dev.ifindex if scoped else 0)
    fq = v6.frags.get(key)
    if fq is None:
        if v6.frag_mem > int(net.sysctl.values["net.ipv6.ip6frag_high_thresh"]):
            mib["ReasmFails"] += 1
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return None
        fq = FragQueue(key, net.world.clock.timer(_expire, net, None))
        fq.timer.args = (net, fq)
        fq.timer.mod_in(int(net.sysctl.values["net.ipv6.ip6frag_time"]) * NSEC_PER_SEC)
        v6.frags[key] = fq
    end = offset + (plen - (th + 8 - (o + 40)))
    if end > IPV6_MAXPLEN:
        _param_prob(pkt, 0, th + 2 - o)
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return None
    more = bool(frag_off & 1)
    if not more:
        if end < fq.length or (fq.flags & LAST_IN and end != fq.length):
            return _discard_fq(net, fq, pkt, "NOT_SPECIFIED")
        fq.flags |= LAST_IN
        fq.length = end
    else:
        if end & 7:
            _param_prob(pkt, 0, 4)
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return None
        if end > fq.length:
            if fq.flags & LAST_IN:
                return _discard_fq(net, fq, pkt, "NOT_SPECIFIED")
            fq.length = end
    if end == offset:
        return _discard_fq(net, fq, pkt, "NOT_SPECIFIED")
    # inet_frag_queue_insert: exact duplicates are dropped alone, any overlap kills the queue
    for s, e, _ in fq.frags:
        if s == offset and e == end:
            kfree_skb_reason(pkt, "DUP_FRAG", net)
            return None
        if offset < e and s < end:
            mib["ReasmOverlaps"] += 1
            return _discard_fq(net, fq, pkt, "NOT_SPECIFIED")
    pkt.trim(th + 8 - pkt.data + (end - offset))
    fq.frags.append((offset, end, pkt))
    fq.frags.sort(key=lambda t: t[0])
    fq.iif = pkt.dev.ifindex
    fq.meat += end - offset
    size = len(pkt) + TRUESIZE_OVERHEAD
    fq.mem += size
    v6.frag_mem += size
    fq.max_size = max(fq.max_size, pkt.tail - o)
    if offset == 0:
        fq.nhoffset = cb.nhoff
        fq.flags |= FIRST_IN
    if fq.flags == FIRST_IN | LAST_IN and fq.meat == fq.length:
        return _reasm(net, fq)
    pkt.dst = None
    return None


def _discard_fq(net: "Net", fq: FragQueue, pkt: "Packet", reason: str) -> None:
    net.ipv6.mib["ReasmFails"] += 1
    _kill(net, fq, "FRAG_REASM_TIMEOUT")
    kfree_skb_reason(pkt, reason, net)
    return None


def _reasm(net: "Net", fq: FragQueue) -> "Packet | None":
    """``ip6_frag_reasm``: the first fragment's unfragmentable part + all the data; the
    fragment header disappears and its next header goes into the previous header."""
    head = fq.frags[0][2]
    o = head.network_header
    th_first = _frag_hdr_off(head)
    unfrag = bytearray(head.buf[o:th_first])
    fnexthdr = head.buf[th_first]
    data = b"".join(bytes(p.buf[_frag_hdr_off(p) + 8:p.tail]) for _, _, p in fq.frags)
    total = len(unfrag) - 40 + len(data)
    if total > IPV6_MAXPLEN:
        net.ipv6.mib["ReasmFails"] += 1
        _kill(net, fq, "NOT_SPECIFIED")
        return None
    unfrag[fq.nhoffset] = fnexthdr
    unfrag[4], unfrag[5] = total >> 8, total & 0xFF
    rest = [p for _, _, p in fq.frags[1:]]
    fq.frags = []
    _kill(net, fq, "NOT_SPECIFIED")
    from netstack.core.drop_reason import consume_skb
    for p in rest:
        consume_skb(p, "ip6_frag_reasm")
    new = bytes(unfrag) + data
    head.buf = bytearray(head.data - head.head) + bytearray(new)
    head.tail = len(head.buf)
    head.network_header = head.data
    head.transport_header = head.data + len(unfrag)
    cb = head.cb
    cb.nhoff = fq.nhoffset
    cb.fragmented = True
    cb.frag_max_size = fq.max_size
    net.ipv6.mib["ReasmOKs"] += 1
    if head.trace is not None:
        head.trace.event(head, "ip6_frag_reasm", info=f"len={len(new)}")
    return head


def _frag_hdr_off(p: "Packet") -> int:
    """Where the fragment header of a queued fragment is (its ``transport_header`` at
    queueing time, saved in the trimmed packet's cb)."""
    return p.transport_header
