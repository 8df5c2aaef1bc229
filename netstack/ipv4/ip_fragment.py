"""IPv4 fragmentation and reassembly (net/ipv4/ip_output.c ``ip_fragment``/
``ip_do_fragment``, net/ipv4/ip_fragment.c, net/ipv4/inet_fragment.c; Linux 6.18).

Fragmentation is the kernel's slow path (``ip_frag_next``): every fragment carries the
original header (same IP ID), ``floor((mtu - ihl) / 8) * 8`` payload bytes except the
last, MF on all but the last (and on the last too when the datagram was itself a
non-final fragment), offsets continuing the original offset.  After the first fragment
``ip_options_fragment`` overwrites options whose copy bit (RFC 791, bit 7 of the type) is
clear with NOOPs, so later fragments keep the header length but only copied options.  A
CHECKSUM_PARTIAL datagram gets its transport checksum completed first
(``skb_checksum_help``).

Reassembly (``ip_defrag`` → ``ip_frag_queue`` → ``inet_frag_queue_insert`` →
``ip_frag_reasm``) keeps each queue's fragments as runs of contiguous fragments and
applies RFC 5722 as the kernel does: a fragment entirely inside a run already received is
a duplicate (dropped with DUP_FRAG, queue kept); any other overlap kills the whole queue
(ReasmOverlaps, ReasmFails).  A final fragment that disagrees with the known length, or
a non-final one reaching beyond a known end, also kills it.  ``ipfrag_max_dist`` resets
a queue when more than that many fragments from the same source arrived in between
(FRAG_TOO_FAR).  A queue that is not complete after ``ipfrag_time`` seconds expires
(ReasmTimeout, ReasmFails); if its first fragment had arrived an ICMP time exceeded
(fragment reassembly time exceeded) quoting that fragment goes back, and the fragments
are freed with FRAG_REASM_TIMEOUT.  No new fragment is accepted while the queues use more
than ``ipfrag_high_thresh`` bytes (ReasmFails).  Memory is charged per fragment as its
buffer length plus a fixed 320-byte sk_buff overhead (the kernel charges ``truesize``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import consume_skb, kfree_skb_reason
from netstack.ipv4 import af_inet
from netstack.ipv4.ip_output import CB_IGNORE_DF, EmsgSize, ip_send_check
from netstack.packet.checksum import csum_fold, csum_partial

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

IP_DF = 0x4000
IP_MF = 0x2000
IP_OFFSET = 0x1FFF
SKB_OVERHEAD = 320

INET_FRAG_FIRST_IN = 1
INET_FRAG_LAST_IN = 2
INET_FRAG_COMPLETE = 4

#: ``ip_frag_ecn_table`` (net/ipv4/inet_fragment.c) indexed by the OR of
#: ``1 << (tos & 3)`` over the fragments: the ECN field to set, or 0xFF = drop.
IPFRAG_ECN_NOT_ECT, IPFRAG_ECN_ECT_1, IPFRAG_ECN_ECT_0, IPFRAG_ECN_CE = 1, 2, 4, 8
IP_FRAG_ECN_TABLE = [0] * 16
for _m in (IPFRAG_ECN_CE | IPFRAG_ECN_ECT_0, IPFRAG_ECN_CE | IPFRAG_ECN_ECT_1,
           IPFRAG_ECN_CE | IPFRAG_ECN_ECT_0 | IPFRAG_ECN_ECT_1):
    IP_FRAG_ECN_TABLE[_m] = 3
for _m in range(16):
    if _m & IPFRAG_ECN_NOT_ECT and _m & (IPFRAG_ECN_CE | IPFRAG_ECN_ECT_0 | IPFRAG_ECN_ECT_1):
        IP_FRAG_ECN_TABLE[_m] = 0xFF


# ------------------------------------------------------------------ fragmentation
def ip_fragment(net: "Net", pkt: "Packet", mtu: int) -> list["Packet"] | None:
    """``ip_fragment``: a DF datagram is refused (FragFails, ICMP fragmentation needed;
    a locally built one that may not be fragmented raises :class:`EmsgSize`), others go
    through :func:`ip_do_fragment`.  Returns the fragments or None (dropped)."""
    buf = pkt.buf
    nh = pkt.network_header
    cold = pkt.__dict__
    fms = cold.get("frag_max_size", 0)
    # !skb->ignore_df || (IPCB(skb)->frag_max_size && frag_max_size > mtu)
    if buf[nh + 6] & 0x40 and ((pkt.cb != CB_IGNORE_DF and not cold.get("ignore_df"))
                               or fms > mtu):
        net.ipv4.mib["IpFragFails"] += 1
        from netstack.ipv4.icmp import ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, icmp_send
        icmp_send(pkt, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu)
        kfree_skb_reason(pkt, "PKT_TOO_BIG", net)
        if pkt.skb_iif == 0:
            raise EmsgSize(mtu)
        return None
    return ip_do_fragment(net, pkt, mtu)


def _checksum_help(pkt: "Packet") -> None:
    """``skb_checksum_help``: complete a CHECKSUM_PARTIAL transport checksum in software."""
    buf = pkt.buf
    start = pkt.csum_start
    c = csum_fold(csum_partial(buf[start:pkt.tail]))
    if c == 0 and pkt.csum_offset == 6:
        c = 0xFFFF  # UDP: a computed 0 is sent as all ones
    at = start + pkt.csum_offset
    buf[at] = c >> 8
    buf[at + 1] = c & 0xFF
    pkt.ip_summed = 0


def ip_options_fragment(hdr: bytearray) -> None:
    """``ip_options_fragment``: NOOP every option whose copy bit is clear."""
    i = 20
    end = len(hdr)
    while i < end:
        t = hdr[i]
        if t == 0:
            return
        if t == 1:
            i += 1
            continue
        if i + 1 >= end:
            return
        olen = hdr[i + 1]
        if olen < 2 or olen > end - i:
            return
        if not t & 0x80:
            hdr[i:i + olen] = b"\x01" * olen
        i += olen


def _frag_list_geometry(pkt: "Packet", total: int, space: int,
                        frag_off: int) -> list[int] | None:
    """``ip_do_fragment``'s fast path: a datagram conntrack reassembled keeps its
    fragments as ``frag_list`` (``ip_frag_reasm`` coalesces only for local delivery),
    recorded by netstack/netfilter/defrag.py as ``pkt.frag_pieces``; when every piece fits
    ``space`` and all but the last are multiples of 8 the output has exactly the received
    geometry.  None = slow path."""
    pieces = pkt.__dict__.get("frag_pieces")
    if not pieces or sum(pieces) != total or frag_off & (IP_MF | IP_OFFSET):
        return None
    last = len(pieces) - 1
    for i, n in enumerate(pieces):
        if n > space or (n & 7 and i != last):
            return None
    return list(pieces)


def ip_do_fragment(net: "Net", pkt: "Packet", mtu: int) -> list["Packet"] | None:
    """``ip_do_fragment`` (slow path): split ``pkt`` into fragments that fit ``mtu``."""
    from netstack.packet.skb import CHECKSUM_PARTIAL
    if pkt.ip_summed == CHECKSUM_PARTIAL:
        _checksum_help(pkt)
    buf = pkt.buf
    nh = pkt.network_header
    fms = pkt.__dict__.get("frag_max_size", 0)
    if fms and fms < mtu:
        mtu = fms  # IPCB(skb)->frag_max_size: refragment as the datagram arrived
    hlen = (buf[nh] & 0x0F) << 2
    space = mtu - hlen
    mib = net.ipv4.mib
    left = pkt.tail - nh - hlen
    if space < 8:
        mib["IpFragFails"] += 1
        kfree_skb_reason(pkt, "PKT_TOO_BIG", net)
        return None
    hdr = bytearray(buf[nh:nh + hlen])
    frag_off = (hdr[6] << 8) | hdr[7]
    offset = (frag_off & IP_OFFSET) << 3
    not_last = frag_off & IP_MF
    ptr = nh + hlen
    world = net.world
    out: list[Packet] = []
    first = True
    sizes = _frag_list_geometry(pkt, left, space, frag_off)
    while left > 0:
        if sizes:
            ln = sizes.pop(0)
        else:
            ln = left if left <= space else space
            if ln < left:
                ln &= ~7
        left -= ln
        f = world.new_packet(hdr + buf[ptr:ptr + ln])
        fo = offset >> 3
        if left > 0 or not_last:
            fo |= IP_MF
        fb = f.buf
        o = f.data
        fb[o + 6] = fo >> 8
        fb[o + 7] = fo & 0xFF
        tot = ln + hlen
        fb[o + 2] = tot >> 8
        fb[o + 3] = tot & 0xFF
        ip_send_check(fb, o)
        # ip_copy_metadata
        f.network_header = o
        f.transport_header = o + hlen
        f.protocol = pkt.protocol
        f.pkt_type = pkt.pkt_type
        f.priority = pkt.priority
        f.mark = pkt.mark
        f.dev = pkt.dev
        f.skb_iif = pkt.skb_iif
        f.dst = pkt.dst
        f.sk = pkt.sk
        f.tstamp = pkt.tstamp
        f.trace = pkt.trace
        if f.trace is not None:
            f.trace.event(f, "ip_do_fragment", info=f"from={pkt.id} off={offset} len={ln}")
        out.append(f)
        if first:
            ip_options_fragment(hdr)
            first = False
        ptr += ln
        offset += ln
    mib["IpFragCreates"] += len(out)
    mib["IpFragOKs"] += 1
    consume_skb(pkt, "ip_do_fragment")
    return out


# --------------------------------------------------------------------- reassembly
class Ipq:
    """``struct ipq``: one reassembly queue."""

    __slots__ = ("key", "runs", "flags", "len", "meat", "max_size", "max_df_size", "ecn",
                 "iif", "rid", "peer", "mem", "timer", "net")

    def __init__(self, net: "Net", key: tuple, peer: Any) -> None:
        self.net = net
        self.key = key
        #: runs of contiguous fragments: [start, end, [(offset, end, pkt), ...]]
        self.runs: list[list[Any]] = []
        self.flags = 0
        self.len = 0
        self.meat = 0
        self.max_size = 0
        self.max_df_size = 0
        self.ecn = 0
        self.iif = 0
        self.rid = 0
        self.peer = peer
        self.mem = 0
        self.timer = net.world.clock.timer(ip_expire, self)

    def fragments(self) -> list[tuple[int, int, "Packet"]]:
        return [f for run in self.runs for f in run[2]]


def _truesize(pkt: "Packet") -> int:
    return len(pkt.buf) + SKB_OVERHEAD


def inet_frag_kill(q: Ipq, reason: str) -> None:
    """``inet_frag_kill`` + ``inet_frag_destroy``: unhash, stop the timer, free every
    queued fragment."""
    net = q.net
    ipv4 = net.ipv4
    q.timer.cancel()
    q.flags |= INET_FRAG_COMPLETE
    if ipv4.frags.get(q.key) is q:
        del ipv4.frags[q.key]
    for _, _, p in q.fragments():
        kfree_skb_reason(p, reason, net)
    q.runs = []
    ipv4.frag_mem -= q.mem
    q.mem = 0


def ip_defrag(net: "Net", pkt: "Packet") -> "Packet | None":
    """``ip_defrag(net, skb, IP_DEFRAG_LOCAL_DELIVER)``: queue ``pkt``; return the
    reassembled datagram when it is complete, else None."""
    ipv4 = net.ipv4
    mib = ipv4.mib
    mib["IpReasmReqds"] += 1
    buf = pkt.buf
    nh = pkt.network_header
    vals = net.sysctl.values
    high = vals["net.ipv4.ipfrag_high_thresh"]
    if not high or ipv4.frag_mem > high:
        mib["IpReasmFails"] += 1
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return None
    saddr = bytes(buf[nh + 12:nh + 16])
    key = (bytes(buf[nh + 4:nh + 6]), saddr, bytes(buf[nh + 16:nh + 20]), buf[nh + 9], 0)
    q = ipv4.frags.get(key)
    if q is None:
        peer = ipv4.inet_getpeer(saddr) if vals["net.ipv4.ipfrag_max_dist"] else None
        q = Ipq(net, key, peer)
        ipv4.frags[key] = q
        q.timer.mod_in(vals["net.ipv4.ipfrag_time"] * 1_000_000_000)
    return ip_frag_queue(q, pkt)


def _too_far(q: Ipq) -> bool:
    """``ip_frag_too_far``: more than ``ipfrag_max_dist`` fragments from this source
    since this queue's previous one."""
    peer = q.peer
    maxd = q.net.sysctl.values["net.ipv4.ipfrag_max_dist"]
    if peer is None or not maxd:
        return False
    start = q.rid
    peer.rid = getattr(peer, "rid", 0) + 1
    end = peer.rid
    q.rid = end
    rc = bool(q.runs) and (end - start) > maxd
    if rc:
        q.net.ipv4.mib["IpReasmFails"] += 1
    return rc


def _reinit(q: Ipq) -> None:
    """``ip_frag_reinit``: drop what was queued (FRAG_TOO_FAR) and start over."""
    net = q.net
    q.timer.mod_in(net.sysctl.values["net.ipv4.ipfrag_time"] * 1_000_000_000)
    for _, _, p in q.fragments():
        kfree_skb_reason(p, "FRAG_TOO_FAR", net)
    net.ipv4.frag_mem -= q.mem
    q.mem = 0
    q.runs = []
    q.flags = 0
    q.len = 0
    q.meat = 0
    q.iif = 0
    q.ecn = 0


def _insert(q: Ipq, pkt: "Packet", offset: int, end: int) -> str:
    """``inet_frag_queue_insert``: "ok", "dup" or "overlap"."""
    runs = q.runs
    if not runs:
        runs.append([offset, end, [(offset, end, pkt)]])
        return "ok"
    last = runs[-1]
    if last[1] < end:
        if offset < last[1]:
            return "overlap"
        if offset == last[1]:
            last[1] = end
            last[2].append((offset, end, pkt))
        else:
            runs.append([offset, end, [(offset, end, pkt)]])
        return "ok"
    # Binary search over the runs (the new fragment cannot become the last one).
    lo, hi = 0, len(runs)
    while lo < hi:
        mid = (lo + hi) // 2
        r = runs[mid]
        if end <= r[0]:
            hi = mid
        elif offset >= r[1]:
            lo = mid + 1
        elif offset >= r[0] and end <= r[1]:
            return "dup"
        else:
            return "overlap"
    runs.insert(lo, [offset, end, [(offset, end, pkt)]])
    return "ok"


def ip_frag_queue(q: Ipq, pkt: "Packet") -> "Packet | None":
    """``ip_frag_queue``: place one fragment; reassemble when everything is there."""
    net = q.net
    mib = net.ipv4.mib
    if q.flags & INET_FRAG_COMPLETE:
        kfree_skb_reason(pkt, "DUP_FRAG", net)
        return None
    if _too_far(q):
        _reinit(q)
    buf = pkt.buf
    nh = pkt.network_header
    tos = buf[nh + 1]
    ecn = 1 << (tos & 3)
    fo = (buf[nh + 6] << 8) | buf[nh + 7]
    flags = fo & ~IP_OFFSET
    offset = (fo & IP_OFFSET) << 3
    ihl = (buf[nh] & 0x0F) << 2
    end = offset + (pkt.tail - nh) - ihl
    if not flags & IP_MF:
        if end < q.len or (q.flags & INET_FRAG_LAST_IN and end != q.len):
            return _discard(q, pkt)
        q.flags |= INET_FRAG_LAST_IN
        q.len = end
    else:
        if end & 7:
            end &= ~7
            from netstack.packet.skb import CHECKSUM_UNNECESSARY
            if pkt.ip_summed != CHECKSUM_UNNECESSARY:
                pkt.ip_summed = 0
        if end > q.len:
            if q.flags & INET_FRAG_LAST_IN:
                return _discard(q, pkt)
            q.len = end
    if end == offset:
        return _discard(q, pkt)
    # pskb_pull to the payload, trim to end - offset
    pkt.data = nh + ihl
    pkt.tail = pkt.data + (end - offset)
    res = _insert(q, pkt, offset, end)
    if res == "dup":
        kfree_skb_reason(pkt, "DUP_FRAG", net)
        return None
    if res == "overlap":
        mib["IpExtReasmOverlaps"] += 1
        return _discard(q, pkt)
    if pkt.dev is not None:
        q.iif = pkt.dev.ifindex
    q.meat += end - offset
    q.ecn |= ecn
    ts = _truesize(pkt)
    q.mem += ts
    net.ipv4.frag_mem += ts
    if offset == 0:
        q.flags |= INET_FRAG_FIRST_IN
    fragsize = (end - offset) + ihl
    if fragsize > q.max_size:
        q.max_size = fragsize
    if buf[nh + 6] & 0x40 and fragsize > q.max_df_size:
        q.max_df_size = fragsize
    if pkt.trace is not None:
        pkt.trace.event(pkt, "ip_frag_queue", info=f"off={offset} end={end}")
    if q.flags == (INET_FRAG_FIRST_IN | INET_FRAG_LAST_IN) and q.meat == q.len:
        return ip_frag_reasm(q, pkt)
    return None


def _discard(q: Ipq, pkt: "Packet") -> None:
    """``discard_qp``: kill the queue, count ReasmFails, drop this fragment."""
    net = q.net
    inet_frag_kill(q, "FRAG_REASM_TIMEOUT")
    net.ipv4.mib["IpReasmFails"] += 1
    kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
    return None


def ip_frag_reasm(q: Ipq, last: "Packet") -> "Packet | None":
    """``ip_frag_reasm``: build the datagram from the first fragment's header and all
    payloads; the metadata (device, route) are those of the fragment that completed it."""
    net = q.net
    mib = net.ipv4.mib
    ecn = IP_FRAG_ECN_TABLE[q.ecn]
    if ecn == 0xFF:
        inet_frag_kill(q, "FRAG_REASM_TIMEOUT")
        mib["IpReasmFails"] += 1
        return None
    frags = q.fragments()
    head = frags[0][2]
    hnh = head.network_header
    ihl = (head.buf[hnh] & 0x0F) << 2
    if ihl + q.len > 0xFFFF:
        inet_frag_kill(q, "FRAG_REASM_TIMEOUT")
        mib["IpReasmFails"] += 1
        return None
    parts = [bytes(head.buf[hnh:hnh + ihl])]
    for _, _, p in frags:
        parts.append(bytes(p.buf[p.data:p.tail]))
    new = net.world.new_packet(b"".join(parts))
    nb = new.buf
    o = new.data
    tot = ihl + q.len
    nb[o + 2] = tot >> 8
    nb[o + 3] = tot & 0xFF
    nb[o + 1] |= ecn
    if q.max_df_size == q.max_size:
        nb[o + 6] = 0x40
    else:
        nb[o + 6] = 0
    nb[o + 7] = 0
    ip_send_check(nb, o)
    new.network_header = o
    new.transport_header = o + ihl
    new.protocol = last.protocol
    new.pkt_type = last.pkt_type
    new.dev = last.dev
    new.skb_iif = last.skb_iif
    new.dst = last.dst
    new.mark = last.mark
    new.priority = last.priority
    new.mac_header = -1
    new.trace = last.trace
    q.timer.cancel()
    q.flags |= INET_FRAG_COMPLETE
    ipv4 = net.ipv4
    if ipv4.frags.get(q.key) is q:
        del ipv4.frags[q.key]
    ipv4.frag_mem -= q.mem
    q.mem = 0
    for _, _, p in frags:
        consume_skb(p, "ip_frag_reasm")
    q.runs = []
    mib["IpReasmOKs"] += 1
    if new.trace is not None:
        new.trace.event(new, "ip_frag_reasm", info=f"len={tot} frags={len(frags)}")
    return new


def ip_expire(q: Ipq) -> None:
    """``ip_expire``: the queue timed out; ICMP time exceeded (reassembly) if its first
    fragment is here and a route back to the sender exists."""
    net = q.net
    if q.flags & INET_FRAG_COMPLETE or net.ipv4 is None:
        return
    mib = net.ipv4.mib
    mib["IpReasmFails"] += 1
    mib["IpReasmTimeout"] += 1
    head = None
    if q.flags & INET_FRAG_FIRST_IN and q.runs and q.runs[0][0] == 0:
        head = q.runs[0][2].pop(0)[2]
    inet_frag_kill(q, "FRAG_REASM_TIMEOUT")
    if head is None:
        return
    dev = net.get_by_index(q.iif)
    route = af_inet.route
    if dev is None or route is None:
        kfree_skb_reason(head, "FRAG_REASM_TIMEOUT", net)
        return
    head.dev = dev
    head.dst = None
    nh = head.network_header
    buf = head.buf
    reason = route.ip_route_input(net, head, bytes(buf[nh + 16:nh + 20]),
                                  bytes(buf[nh + 12:nh + 16]), buf[nh + 1], dev)
    if reason:
        kfree_skb_reason(head, reason, net)
        return
    from netstack.ipv4.icmp import ICMP_EXC_FRAGTIME, ICMP_TIME_EXCEEDED, icmp_send
    icmp_send(head, ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME, 0)
    kfree_skb_reason(head, "FRAG_REASM_TIMEOUT", net)
