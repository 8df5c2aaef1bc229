"""IPv6 reassembly (net/ipv6/reassembly.c, net/ipv4/inet_fragment.c, include/net/ipv6_frag.h).

Two users share the queue machinery, each with its own set of queues (the kernel's
``struct fqdir``): local delivery (``ipv6_frag_rcv`` from ip6_input, sysctls
``net.ipv6.ip6frag_*``) and conntrack's defragmentation before tracking
(``nf_ct_frag6_gather`` in :mod:`netstack.netfilter.defrag6`, sysctls
``net.netfilter.nf_conntrack_frag6_*``).  Shared here: the queue and its key
(identification, source, destination, the defrag *user*, and the input interface for
link-local/multicast destinations, ``ip6frag_init``/``frag_v6_compare_key``), the memory
limit on queue creation (``inet_frag_find``: nothing above ``high_thresh``), insertion
(``inet_frag_queue_insert``: an exact duplicate is reported as DUP, any other overlap as
OVERLAP, RFC 5722), the reassembly itself (``ip6_frag_reasm`` / ``nf_ct_frag6_reasm``:
the first fragment's unfragmentable part, the fragment header removed and its next
header moved into the previous header, ECN merged with ``ip_frag_ecn_table`` — an
invalid mix drops the datagram — and ``frag_max_size`` = 40 + the largest fragment
payload length) and the expiry (``ip6frag_expire_frag_queue``: ReasmFails/ReasmTimeout,
ICMPv6 time exceeded code 1 to the source if the first fragment came, every fragment
dropped with FRAG_REASM_TIMEOUT — the same for both users).

``ipv6_frag_rcv`` (local) additionally reproduces: payload length 0 or a truncated fragment
header → ICMPv6 parameter problem (code 0); an atomic fragment (offset 0, M = 0) is passed
on at once (RFC 6946); a first fragment without the whole header chain → parameter problem
code 3; a non-final fragment whose length is not a multiple of 8 → parameter problem
pointing at the payload length; a fragment ending beyond 65535 → parameter problem at the
fragment offset; inconsistent last fragments and overlaps drop the whole queue (an exact
duplicate only drops itself, DUP_FRAG).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from netstack.core.clock import NSEC_PER_SEC
from netstack.core.drop_reason import consume_skb, kfree_skb_reason

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.clock import Timer
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

IPV6_MAXPLEN = 65535
FIRST_IN = 1
LAST_IN = 2
COMPLETE = 4
TRUESIZE_OVERHEAD = 576

#: ``enum ip6_defrag_users`` (include/net/ipv6.h)
IP6_DEFRAG_LOCAL_DELIVER = 0
IP6_DEFRAG_CONNTRACK_IN = 1
IP6_DEFRAG_CONNTRACK_OUT = IP6_DEFRAG_CONNTRACK_IN + 0xFFFF + 1
IP6_DEFRAG_CONNTRACK_BRIDGE_IN = IP6_DEFRAG_CONNTRACK_OUT + 0xFFFF + 1

# inet_frag_queue_insert results
INSERT_OK = 0
INSERT_DUP = 1
INSERT_OVERLAP = 2


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
    #: largest fragment payload length (``q.max_size``)
    max_size: int = 0
    iif: int = 0
    mem: int = 0
    ecn: int = 0
    fqdir: "Frag6Dir | None" = None


class Frag6Dir:
    """``struct fqdir``: one user class's queues, memory and sysctls in a namespace.

    ``frags``/``mem`` live in ``owner`` under the given attribute names (the local
    queues stay ``net.ipv6.frags``/``net.ipv6.frag_mem``)."""

    def __init__(self, net: "Net", owner: Any, frags_attr: str, mem_attr: str,
                 timeout_sysctl: str, high_sysctl: str, mib: bool) -> None:
        self.net = net
        self._owner = owner
        self._frags_attr = frags_attr
        self._mem_attr = mem_attr
        self.timeout_sysctl = timeout_sysctl
        self.high_sysctl = high_sysctl
        #: whether this user counts ReasmReqds/ReasmOKs/ReasmFails (local does; conntrack
        #: only counts failures and timeouts in the shared expiry).
        self.mib = mib

    @property
    def frags(self) -> dict[tuple, FragQueue]:
        return getattr(self._owner, self._frags_attr)

    @property
    def mem(self) -> int:
        return getattr(self._owner, self._mem_attr)

    @mem.setter
    def mem(self, v: int) -> None:
        setattr(self._owner, self._mem_attr, v)

    def sysctl(self, name: str) -> int:
        return int(self.net.sysctl.values[name])


def local_fqdir(net: "Net") -> Frag6Dir:
    """The local-delivery queues (``net->ipv6.fqdir``)."""
    return Frag6Dir(net, net.ipv6, "frags", "frag_mem", "net.ipv6.ip6frag_time",
                    "net.ipv6.ip6frag_high_thresh", True)


def frag6_key(buf: Any, o: int, ident: int, user: int, ifindex: int) -> tuple:
    """``frag_v6_compare_key``: the interface only matters for link-local and multicast
    destinations."""
    daddr = bytes(buf[o + 24:o + 40])
    scoped = daddr[0] == 0xFF or (daddr[0] == 0xFE and (daddr[1] & 0xC0) == 0x80)
    return (bytes(buf[o + 8:o + 24]), daddr, ident, user, ifindex if scoped else 0)


def frag6_find(d: Frag6Dir, key: tuple,
               expire: Callable[[Frag6Dir, FragQueue], None]) -> FragQueue | None:
    """``inet_frag_find``: the queue, a new one (timer armed with the user's timeout), or
    None when a new queue would exceed ``high_thresh``."""
    fq = d.frags.get(key)
    if fq is not None:
        return fq
    high = d.sysctl(d.high_sysctl)
    if not high or d.mem > high:
        return None
    fq = FragQueue(key, d.net.world.clock.timer(expire, d, None), fqdir=d)
    fq.timer.args = (d, fq)
    fq.timer.mod_in(d.sysctl(d.timeout_sysctl) * NSEC_PER_SEC)
    d.frags[key] = fq
    return fq


def frag6_kill(d: Frag6Dir, fq: FragQueue, reason: str = "FRAG_REASM_TIMEOUT") -> None:
    """``inet_frag_kill`` + destroy: unhash, stop the timer, free what is queued."""
    fq.timer.cancel()
    fq.flags |= COMPLETE
    if d.frags.get(fq.key) is fq:
        del d.frags[fq.key]
    d.mem -= fq.mem
    fq.mem = 0
    for _, _, p in fq.frags:
        kfree_skb_reason(p, reason, d.net)
    fq.frags = []


def frag6_expire(d: Frag6Dir, fq: FragQueue) -> None:
    """``ip6frag_expire_frag_queue``: time exceeded (fragment reassembly) to the source
    if the first fragment came; the rest drops with FRAG_REASM_TIMEOUT."""
    from netstack.ipv6.icmp import icmp6_send
    net = d.net
    if d.frags.get(fq.key) is not fq or fq.flags & COMPLETE:
        return
    dev = net.get_by_index(fq.iif)
    head = None
    if dev is not None and fq.flags & FIRST_IN and fq.frags and fq.frags[0][0] == 0:
        head = fq.frags.pop(0)[2]
    frag6_kill(d, fq, "FRAG_REASM_TIMEOUT")
    if dev is None:
        return
    net.ipv6.mib["ReasmFails"] += 1
    net.ipv6.mib["ReasmTimeout"] += 1
    if head is not None:
        head.dev = dev
        icmp6_send(head, 3, 1, 0)
        kfree_skb_reason(head, "FRAG_REASM_TIMEOUT", net)


def _ecn_bit(buf: Any, o: int) -> int:
    """``ip6_frag_ecn``: 1 << the ECN field of the traffic class."""
    return 1 << ((buf[o + 1] >> 4) & 3)


def frag6_insert(d: Frag6Dir, fq: FragQueue, pkt: "Packet", th: int, offset: int,
                 end: int) -> int:
    """``inet_frag_queue_insert`` + the bookkeeping after it: trims ``pkt`` to its data,
    queues it and accounts memory, ``meat``, ``max_size``, ECN and FIRST_IN.  Returns
    INSERT_OK, INSERT_DUP (exact duplicate, not queued) or INSERT_OVERLAP."""
    for s, e, _ in fq.frags:
        if s == offset and e == end:
            return INSERT_DUP
        if offset < e and s < end:
            return INSERT_OVERLAP
    o = pkt.network_header
    plen = (pkt.buf[o + 4] << 8) | pkt.buf[o + 5]
    pkt.trim(th + 8 - pkt.data + (end - offset))
    pkt.transport_header = th
    fq.frags.append((offset, end, pkt))
    fq.frags.sort(key=lambda t: t[0])
    if pkt.dev is not None:
        fq.iif = pkt.dev.ifindex
    fq.meat += end - offset
    fq.ecn |= _ecn_bit(pkt.buf, o)
    fq.max_size = max(fq.max_size, plen)
    size = len(pkt) + TRUESIZE_OVERHEAD
    fq.mem += size
    d.mem += size
    return INSERT_OK


def frag6_complete(fq: FragQueue) -> bool:
    return fq.flags & (FIRST_IN | LAST_IN) == FIRST_IN | LAST_IN and fq.meat == fq.length


def frag6_reasm(d: Frag6Dir, fq: FragQueue, into: "Packet") -> bool:
    """``ip6_frag_reasm`` / ``nf_ct_frag6_reasm``: build the datagram in ``into`` (the
    skb that completed the queue, ``inet_frag_reasm_prepare``'s morph).  False (queue
    killed, fragments freed) when the ECN mix is invalid or the result too long."""
    from netstack.ipv4.ip_fragment import IP_FRAG_ECN_TABLE
    frags = fq.frags
    first = frags[0][2]
    o = first.network_header
    th_first = first.transport_header
    unfrag = bytearray(first.buf[o:th_first])
    fnexthdr = first.buf[th_first]
    ecn = IP_FRAG_ECN_TABLE[fq.ecn & 0xF]
    total = len(unfrag) - 40 + fq.length
    if ecn == 0xFF or total > IPV6_MAXPLEN:
        frag6_kill(d, fq, "NOT_SPECIFIED")
        return False
    data = b"".join(bytes(p.buf[p.transport_header + 8:p.tail]) for _, _, p in frags)
    unfrag[fq.nhoffset] = fnexthdr
    unfrag[4], unfrag[5] = total >> 8, total & 0xFF
    unfrag[1] |= ecn << 4
    others = [p for _, _, p in frags if p is not into]
    fq.frags = []
    frag6_kill(d, fq, "NOT_SPECIFIED")
    for p in others:
        consume_skb(p, "ip6_frag_reasm")
    if into is not first:
        into.mac_header = first.mac_header
    new = bytes(unfrag) + data
    into.buf = bytearray(into.data - into.head) + bytearray(new)
    into.tail = len(into.buf)
    into.network_header = into.data
    into.transport_header = into.data + len(unfrag)
    return True


# ---- local delivery (ipv6_frag_rcv) ------------------------------------------------------
def _param_prob(pkt: "Packet", code: int, pointer: int) -> None:
    from netstack.ipv6.icmp import icmp6_send
    icmp6_send(pkt, 4, code, pointer)


def thdr_truncated(buf: Any, start: int, end: int, nexthdr: int, strict: bool) -> bool:
    """``ipv6frag_thdr_truncated``: the first fragment must carry the upper-layer header
    start (walk past any extension headers that follow the fragment header); with
    ``strict`` an unknown upper layer needs at least one byte (the kernel's
    ``default: offset += 1``)."""
    off = start
    while nexthdr in (0, 43, 60, 51):
        if end - off < 2:
            return True
        hl = ((buf[off + 1] + 2) << 2) if nexthdr == 51 else ((buf[off + 1] + 1) << 3)
        nexthdr = buf[off]
        off += hl
    need = {6: 20, 17: 8, 58: 8}.get(nexthdr, 1 if strict else 0)
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
    if offset == 0 and thdr_truncated(buf, th + 8, pkt.tail, fnexthdr, False):
        mib["InHdrErrors"] += 1
        _param_prob(pkt, 3, 0)
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return None
    d = local_fqdir(net)
    key = frag6_key(buf, o, ident, IP6_DEFRAG_LOCAL_DELIVER, pkt.dev.ifindex)
    fq = frag6_find(d, key, frag6_expire)
    if fq is None:
        mib["ReasmFails"] += 1
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return None
    end = offset + (plen - (th + 8 - (o + 40)))
    if end > IPV6_MAXPLEN:
        _param_prob(pkt, 0, th + 2 - o)
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return None
    more = bool(frag_off & 1)
    if not more:
        if end < fq.length or (fq.flags & LAST_IN and end != fq.length):
            return _discard_fq(d, fq, pkt, "NOT_SPECIFIED")
        fq.flags |= LAST_IN
        fq.length = end
    else:
        if end & 7:
            _param_prob(pkt, 0, 4)
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return None
        if end > fq.length:
            if fq.flags & LAST_IN:
                return _discard_fq(d, fq, pkt, "NOT_SPECIFIED")
            fq.length = end
    if end == offset:
        return _discard_fq(d, fq, pkt, "NOT_SPECIFIED")
    res = frag6_insert(d, fq, pkt, th, offset, end)
    if res == INSERT_DUP:
        kfree_skb_reason(pkt, "DUP_FRAG", net)
        return None
    if res == INSERT_OVERLAP:
        mib["ReasmOverlaps"] += 1
        return _discard_fq(d, fq, pkt, "NOT_SPECIFIED")
    if offset == 0:
        fq.nhoffset = cb.nhoff
        fq.flags |= FIRST_IN
    if frag6_complete(fq):
        head = fq.frags[0][2]
        nhoffset = fq.nhoffset
        max_size = fq.max_size
        if not frag6_reasm(d, fq, head):
            mib["ReasmFails"] += 1
            return None
        cb = head.cb
        cb.nhoff = nhoffset
        cb.fragmented = True
        cb.frag_max_size = 40 + max_size
        mib["ReasmOKs"] += 1
        if head.trace is not None:
            head.trace.event(head, "ip6_frag_reasm", info=f"len={head.tail - head.data}")
        return head
    pkt.dst = None
    return None


def _discard_fq(d: Frag6Dir, fq: FragQueue, pkt: "Packet", reason: str) -> None:
    d.net.ipv6.mib["ReasmFails"] += 1
    frag6_kill(d, fq, "FRAG_REASM_TIMEOUT")
    kfree_skb_reason(pkt, reason, d.net)
    return None
