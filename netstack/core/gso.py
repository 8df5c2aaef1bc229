"""Generic Segmentation Offload: net/core/gso.c, net/core/dev.c (netif_skb_features,
validate_xmit_skb's GSO decision), net/core/skbuff.c (skb_segment), the IPv4/IPv6 layers
(net/ipv4/af_inet.c inet_gso_segment, net/ipv6/ip6_offload.c ipv6_gso_segment).

Why it is layered like the kernel: a GSO super-packet is cut by the innermost L4 layer
(``skb_segment`` copies the whole header block — outer headers included — in front of
every ``gso_size`` chunk of payload), and each layer on the way back out rewrites its own
header in every segment: TCP seq/flags/checksum, inner IP id/length/checksum, the UDP
tunnel length and checksum, GRE checksum, outer IP id/length/checksum.  The per-segment
"checksum so far" (``SKB_GSO_CB(skb)->csum``/``csum_start``) is what lets an outer UDP or
GRE checksum be computed without summing the payload twice (``gso_make_checksum``).

Entry points: :func:`netif_skb_features` (what the device can do for this packet),
:func:`netif_needs_gso`, :func:`skb_gso_segment` (returns the segments, None when the
device may take the packet as it is, raises :class:`GsoError` for a packet the kernel
refuses — the caller drops it).
"""
from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING, Callable, Iterable

from netstack.core import gso_fast
from netstack.packet.checksum import csum_fold, csum_partial, csum_partial_rows, ip_fast_csum
from netstack.packet.skb import (CHECKSUM_NONE, CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY,
                                 DEFAULT_HEADROOM, UNSET, Packet)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice
    from netstack.packet.skb_burst import SkbBurst

# gso_type bits (include/linux/skbuff.h, Linux 6.18).  FIXEDID moved to bits 30/31 (outer
# and inner IPv4 header) when the outer IP ID restore was fixed; bit 3 is the feature bit
# NETIF_F_TSO_MANGLEID both map to (net_gso_ok).
SKB_GSO_TCPV4 = 1 << 0
SKB_GSO_DODGY = 1 << 1
SKB_GSO_TCP_ECN = 1 << 2
SKB_GSO_MANGLEID_BIT = 1 << 3
SKB_GSO_TCPV6 = 1 << 4
SKB_GSO_FCOE = 1 << 5
SKB_GSO_GRE = 1 << 6
SKB_GSO_GRE_CSUM = 1 << 7
SKB_GSO_IPXIP4 = 1 << 8
SKB_GSO_IPXIP6 = 1 << 9
SKB_GSO_UDP_TUNNEL = 1 << 10
SKB_GSO_UDP_TUNNEL_CSUM = 1 << 11
SKB_GSO_PARTIAL = 1 << 12
SKB_GSO_TUNNEL_REMCSUM = 1 << 13
SKB_GSO_SCTP = 1 << 14
SKB_GSO_ESP = 1 << 15
SKB_GSO_UDP = 1 << 16
SKB_GSO_UDP_L4 = 1 << 17
SKB_GSO_FRAGLIST = 1 << 18
SKB_GSO_TCP_ACCECN = 1 << 19
SKB_GSO_TCP_FIXEDID = 1 << 30
SKB_GSO_TCP_FIXEDID_INNER = 1 << 31

#: gso_type bit → the netdev feature (ethtool string) that covers it (NETIF_F_GSO_SHIFT).
GSO_FEATURE = {
    SKB_GSO_TCPV4: "tx-tcp-segmentation",
    SKB_GSO_DODGY: "tx-gso-robust",
    SKB_GSO_TCP_ECN: "tx-tcp-ecn-segmentation",
    SKB_GSO_MANGLEID_BIT: "tx-tcp-mangleid-segmentation",
    SKB_GSO_TCPV6: "tx-tcp6-segmentation",
    SKB_GSO_FCOE: "tx-fcoe-segmentation",
    SKB_GSO_GRE: "tx-gre-segmentation",
    SKB_GSO_GRE_CSUM: "tx-gre-csum-segmentation",
    SKB_GSO_IPXIP4: "tx-ipxip4-segmentation",
    SKB_GSO_IPXIP6: "tx-ipxip6-segmentation",
    SKB_GSO_UDP_TUNNEL: "tx-udp_tnl-segmentation",
    SKB_GSO_UDP_TUNNEL_CSUM: "tx-udp_tnl-csum-segmentation",
    SKB_GSO_PARTIAL: "tx-gso-partial",
    SKB_GSO_TUNNEL_REMCSUM: "tx-tunnel-remcsum-segmentation",
    SKB_GSO_SCTP: "tx-sctp-segmentation",
    SKB_GSO_ESP: "tx-esp-segmentation",
    SKB_GSO_UDP: "tx-udp-fragmentation",
    SKB_GSO_UDP_L4: "tx-udp-segmentation",
    SKB_GSO_FRAGLIST: "tx-gso-list",
    SKB_GSO_TCP_ACCECN: "tx-tcp-accecn-segmentation",
}
#: NETIF_F_GSO_MASK as feature strings.
GSO_FEATURES = frozenset(GSO_FEATURE.values())
#: NETIF_F_CSUM_MASK.
CSUM_FEATURES = frozenset({"tx-checksum-ipv4", "tx-checksum-ip-generic",
                           "tx-checksum-ipv6", "tx-checksum-fcoe-crc"})

#: ``skb->inner_protocol_type`` (include/linux/skbuff.h): what follows a tunnel header.
#: (netstack/ipv4/ip_tunnel_core.py's ``skb_set_inner_ipproto`` writes "ipproto" and
#: the protocol number into ``inner_protocol``, the kernel's union; both are accepted.)
ENCAP_TYPE_ETHER = 0
ENCAP_TYPE_IPPROTO = 1

GSO_MAX_SIZE = 65536
GSO_MAX_SEGS = 65535
IP_TUNNEL_RECURSION_LIMIT = 4


class GsoError(Exception):
    """``ERR_PTR(-errno)`` from a gso_segment callback: the packet is dropped."""

    def __init__(self, err: int = errno.EINVAL, why: str = "") -> None:
        super().__init__(why or errno.errorcode.get(err, str(err)))
        self.errno = err


class GsoCb:
    """``SKB_GSO_CB``: state of one segmentation run.

    ``mac_offset`` is the outermost MAC header (absolute, in the super-packet) that
    every segment's header copy starts from; ``encap_level`` counts the bytes of outer
    IP headers already crossed (so an inner IP layer knows it is inner); ``seg_csum`` /
    ``seg_csum_start`` are each segment's running checksum and where it starts."""

    __slots__ = ("mac_offset", "encap_level", "dev", "recursion", "seg_csum",
                 "seg_csum_start", "data_offset")

    def __init__(self, pkt: Packet) -> None:
        self.mac_offset = pkt.mac_header
        self.encap_level = 0
        self.dev = pkt.dev
        self.recursion = 0
        self.seg_csum: list[int] = []
        self.seg_csum_start: list[int] = []
        self.data_offset: list[int] = []


Segmenter = Callable[[Packet, frozenset, GsoCb], "list[Packet] | None"]


# ------------------------------------------------------------------ features
def hw_enc_features(dev: "NetDevice | None") -> frozenset[str]:
    """``dev->hw_enc_features``: what the device can still offload for an encapsulated
    packet (a driver sets it; ``register_netdevice`` adds SG and GSO_PARTIAL)."""
    enc = getattr(dev, "hw_enc_features", None)
    if enc is None:
        return frozenset({"tx-scatter-gather", "tx-gso-partial"})
    return frozenset(enc) | {"tx-scatter-gather", "tx-gso-partial"}


def gso_type_features(gso_type: int) -> set[str]:
    """The features a gso_type needs (``net_gso_ok``: FIXEDID maps onto MANGLEID)."""
    if gso_type & (SKB_GSO_TCP_FIXEDID | SKB_GSO_TCP_FIXEDID_INNER):
        gso_type |= SKB_GSO_MANGLEID_BIT
    return {f for b, f in GSO_FEATURE.items() if gso_type & b}


def skb_gso_ok(pkt: Packet, features: Iterable[str]) -> bool:
    """``skb_gso_ok``/``net_gso_ok``: the device offers every feature the type needs."""
    fs = features if isinstance(features, (set, frozenset)) else set(features)
    return gso_type_features(pkt.gso_type) <= fs


def can_checksum_protocol(features: Iterable[str], protocol: int) -> bool:
    """``can_checksum_protocol``: HW_CSUM, or IP_CSUM for IPv4 / IPV6_CSUM for IPv6."""
    if "tx-checksum-ip-generic" in features:
        return True
    if protocol == 0x0800:
        return "tx-checksum-ipv4" in features
    if protocol == 0x86DD:
        return "tx-checksum-ipv6" in features
    return False


def skb_network_protocol(pkt: Packet) -> tuple[int, int]:
    """``skb_network_protocol`` with ``data`` at the MAC header: the L3 EtherType under
    Ethernet-over-GRE/VXLAN (TEB) and in-band VLAN tags, and the bytes up to the L3
    header (``mac_len`` plus the tags: what skb_mac_gso_segment pulls)."""
    t = pkt.protocol
    buf = pkt.buf
    d = pkt.data
    mac = pkt.mac_header
    nh = pkt.network_header
    depth = nh - mac if mac != UNSET and nh != UNSET and nh >= mac else 0
    if t == 0x6558:  # ETH_P_TEB
        if pkt.tail - d < 14:
            return 0, 0
        t = (buf[d + 12] << 8) | buf[d + 13]
    while t in (0x8100, 0x88A8):
        if pkt.tail - d < depth + 4:
            return 0, 0
        t = (buf[d + depth + 2] << 8) | buf[d + depth + 3]
        depth += 4
    return t, depth


def netif_skb_features(pkt: Packet, dev: "NetDevice") -> frozenset[str]:
    """``netif_skb_features`` (net/core/dev.c): the device's features for this packet.

    GSO packets go through ``gso_features_check`` (too many segments or too long → no
    GSO; no gso_type → none; MANGLEID only with DF), encapsulated ones are limited to
    ``hw_enc_features``, and ``harmonize_features`` removes checksum and GSO offloads
    for a protocol the device cannot checksum."""
    features = set(dev.features)
    if pkt.gso_size:
        gso_max_segs = getattr(dev, "gso_max_segs", GSO_MAX_SEGS)
        gso_max_size = getattr(dev, "gso_max_size", GSO_MAX_SIZE)
        if (pkt.gso_segs > gso_max_segs or len(pkt) >= gso_max_size
                or not pkt.gso_type):
            features -= GSO_FEATURES
        else:
            if not pkt.gso_type & SKB_GSO_PARTIAL:
                features -= set(getattr(dev, "gso_partial_features", ()))
            if pkt.gso_type & SKB_GSO_TCPV4:
                nh = pkt.network_header
                if nh != UNSET and not pkt.buf[nh + 6] & 0x40:
                    features.discard("tx-tcp-mangleid-segmentation")
                inh = pkt.inner_network_header
                if (pkt.encapsulation and inh != UNSET and pkt.buf[inh] >> 4 == 4
                        and not pkt.buf[inh + 6] & 0x40):
                    features.discard("tx-tcp-mangleid-segmentation")
    if pkt.encapsulation:
        features &= hw_enc_features(dev)
    if pkt.vlan_proto:
        vf = getattr(dev, "vlan_features", None)
        if vf is not None:
            features &= set(vf) | {"tx-vlan-hw-insert", "tx-vlan-stag-hw-insert"}
    # harmonize_features
    ptype, _ = skb_network_protocol(pkt)
    if pkt.ip_summed != CHECKSUM_NONE and not can_checksum_protocol(features, ptype):
        features -= CSUM_FEATURES
        features -= GSO_FEATURES
    return frozenset(features)


def netif_needs_gso(pkt: Packet, features: frozenset[str]) -> bool:
    """``netif_needs_gso``: a GSO packet the device cannot take, or whose checksum state
    is neither PARTIAL nor UNNECESSARY (the device would have nothing to fill in)."""
    return bool(pkt.gso_size) and (
        not skb_gso_ok(pkt, features)
        or (pkt.ip_summed != CHECKSUM_PARTIAL and pkt.ip_summed != CHECKSUM_UNNECESSARY))


# ------------------------------------------------------------ segmentation core

def skb_segment(pkt: Packet, features: frozenset[str], cb: GsoCb) -> list[Packet]:
    """``skb_segment`` (net/core/skbuff.c): cut the payload (``pkt.data`` .. end) into
    ``gso_size`` chunks, each behind a copy of every header from ``cb.mac_offset``.

    A segment keeps the super-packet's checksum state when the device can checksum the
    protocol (``can_checksum_protocol``); otherwise it is CHECKSUM_NONE (unless remote
    checksum offload) and its payload sum goes to ``cb.seg_csum`` for the L4 layer.
    With ``tx-gso-partial`` (and checksum offload) the chunks are whole multiples of
    gso_size and stay GSO packets (SKB_GSO_PARTIAL, DODGY cleared)."""
    mss = pkt.gso_size
    buf = pkt.buf
    data = pkt.data
    mac = pkt.mac_header
    hstart = cb.mac_offset
    tnl_hlen = mac - hstart
    length = pkt.tail - data
    ptype, _ = skb_network_protocol(pkt)
    csum = can_checksum_protocol(features, ptype)
    partial_segs = 0
    if csum and "tx-gso-partial" in features and "tx-scatter-gather" in features:
        partial_segs = min(length, 0xFFFE) // mss
        if partial_segs > 1:
            mss *= partial_segs
        else:
            partial_segs = 0
    hdr = bytes(buf[hstart:data])
    hlen = len(hdr)
    H = DEFAULT_HEADROOM
    base = H - hstart
    remcsum = bool(getattr(pkt, "remcsum_offload", False))
    # The per-segment skb header (__copy_skb_header): the cold fields in one dict copy,
    # the hot ones as locals — this loop runs once per segment.
    d = dict(pkt.__dict__)
    for name in ("inner_mac_header", "inner_network_header", "inner_transport_header"):
        v = getattr(pkt, name)
        if v != UNSET:
            d[name] = v + base
    d["gso_size"] = 0
    d["gso_segs"] = 0
    d["gso_type"] = 0
    ip_summed = pkt.ip_summed
    if ip_summed == CHECKSUM_PARTIAL:
        d["csum_start"] = pkt.csum_start + base
    mac = pkt.mac_header + base
    nh = pkt.network_header + base if pkt.network_header != UNSET else UNSET
    th = pkt.transport_header + base if pkt.transport_header != UNSET else UNSET
    protocol, pkt_type, dev, skb_iif = pkt.protocol, pkt.pkt_type, pkt.dev, pkt.skb_iif
    mark, priority, tstamp, ct, dst = pkt.mark, pkt.priority, pkt.tstamp, pkt.ct, pkt.dst
    trace, pid = pkt.trace, pkt.id
    seg_ip_summed = ip_summed if csum or remcsum else CHECKSUM_NONE
    segs: list[Packet] = []
    seg_csum = cb.seg_csum
    seg_csum_start = cb.seg_csum_start
    seg_csum.clear()
    seg_csum_start.clear()
    mv = memoryview(buf)
    pay0 = H + hlen
    sdata = H + tnl_hlen
    head = bytes(H) + hdr
    tail = pkt.tail
    new = Packet.__new__
    append = segs.append
    for off in range(data, tail, mss):
        end = off + mss
        if end > tail:
            end = tail
        seg = new(Packet)
        nb = bytearray(head)
        nb += mv[off:end]
        seg.buf = nb
        seg.head = 0
        seg.data = sdata
        seg.tail = pay0 + end - off
        seg.mac_header = mac
        seg.network_header = nh
        seg.transport_header = th
        seg.protocol = protocol
        seg.pkt_type = pkt_type
        seg.dev = dev
        seg.skb_iif = skb_iif
        seg.mark = mark
        seg.priority = priority
        seg.ip_summed = seg_ip_summed
        seg.csum = 0
        seg.tstamp = tstamp
        seg.ct = ct
        seg.dst = dst
        seg.cb = None
        seg.trace = trace
        seg.id = pid
        seg.__dict__.update(d)
        append(seg)
    nsegs = len(segs)
    if not csum:
        # every segment's payload sum in one vectorised pass (the kernel folds it into
        # the copy, skb_copy_and_csum_bits); only the short last chunk is summed alone
        full = length // mss
        seg_csum.extend(csum_partial_rows(mv, data, full, mss))
        if full < nsegs:
            seg_csum.append(csum_partial(mv[data + full * mss:tail]))
    else:
        seg_csum.extend([0] * nsegs)
    seg_csum_start.extend([pay0] * nsegs)
    if partial_segs:
        gtype = (pkt.gso_type | SKB_GSO_PARTIAL) & ~SKB_GSO_DODGY
        gsize = pkt.gso_size
        cb.data_offset = [pay0] * len(segs)
        for s in segs:
            s.gso_size = gsize
            s.gso_segs = partial_segs
            s.gso_type = gtype
        last = segs[-1]
        if last.tail - pay0 <= gsize:
            last.gso_size = 0
            last.gso_segs = 0
            last.gso_type = 0
        elif len(segs) > 1:
            last.gso_segs = -(-(last.tail - pay0) // gsize)
    return segs


def gso_make_checksum(seg: Packet, cb: GsoCb, i: int, res: int) -> int:
    """``gso_make_checksum``: the checksum from the segment's transport header to the end,
    from the running sum (``cb.seg_csum``) plus the header bytes in front of it; the
    running sum becomes ``res`` (the complement of the field just written), starting at
    this header — so an outer header repeats the trick without touching the payload."""
    start = seg.transport_header
    plen = cb.seg_csum_start[i] - start
    partial = cb.seg_csum[i]
    cb.seg_csum[i] = res
    cb.seg_csum_start[i] = start
    return csum_fold(csum_partial(memoryview(seg.buf)[start:start + plen], partial))


def gso_reset_checksum(seg: Packet, cb: GsoCb, i: int, res: int) -> None:
    """``gso_reset_checksum``: the device will fill the L4 checksum (PARTIAL): outer
    layers sum from csum_start with ``res`` standing for the part the device adds."""
    cb.seg_csum[i] = res
    cb.seg_csum_start[i] = seg.csum_start


def put16(buf: bytearray, off: int, v: int) -> None:
    buf[off] = (v >> 8) & 0xFF
    buf[off + 1] = v & 0xFF


def get16(buf: bytearray, off: int) -> int:
    return (buf[off] << 8) | buf[off + 1]


def csum_adjust_len(check: int, oldlen: int, newlen: int) -> int:
    """``~csum_fold(csum_add(csum_unfold(check), htonl(~oldlen + newlen)))``: a pseudo
    sum seeded for ``oldlen`` bytes re-targeted to ``newlen`` (never 0, as the kernel's
    32-bit end-around arithmetic)."""
    r = (check + newlen - oldlen) % 0xFFFF
    return r or 0xFFFF


# --------------------------------------------------------------- dispatch
def _packet_offload(proto: int) -> "Segmenter | None":
    """``gso_segment`` of the ``packet_offload`` for an EtherType (dev_add_offload)."""
    if proto == 0x0800:
        return inet_gso_segment
    if proto == 0x86DD:
        return ipv6_gso_segment
    return None


def inet_offload(proto: int, ipv6: bool) -> "Segmenter | None":
    """``inet_offloads[proto]`` / ``inet6_offloads[proto]``: the L4 (or tunnel) layer."""
    if proto == 6:
        if ipv6:
            from netstack.ipv6.tcpv6_offload import tcp6_gso_segment
            return tcp6_gso_segment
        from netstack.ipv4.tcp_offload import tcp4_gso_segment
        return tcp4_gso_segment
    if proto == 17:
        if ipv6:
            from netstack.ipv6.udp_offload import udp6_ufo_fragment
            return udp6_ufo_fragment
        from netstack.ipv4.udp_offload import udp4_ufo_fragment
        return udp4_ufo_fragment
    if proto == 47:
        from netstack.ipv4.gre_offload import gre_gso_segment
        return gre_gso_segment
    if proto == 4:
        return ipip_gso_segment if not ipv6 else ip4ip6_gso_segment
    if proto == 41:
        return sit_gso_segment if not ipv6 else ip6ip6_gso_segment
    return None


def skb_mac_gso_segment(pkt: Packet, features: frozenset[str], cb: GsoCb) -> list[Packet] | None:
    """``skb_mac_gso_segment``: pull any TEB Ethernet/VLAN headers, dispatch on the L3
    EtherType, restore ``data`` to the MAC header afterwards."""
    ptype, depth = skb_network_protocol(pkt)
    if not ptype:
        raise GsoError(errno.EINVAL, "no network protocol")
    fn = _packet_offload(ptype)
    if fn is None:
        raise GsoError(errno.EPROTONOSUPPORT)
    pkt.data += depth
    try:
        segs = fn(pkt, features, cb)
    finally:
        pkt.data = pkt.mac_header
    return segs


def skb_gso_segment(pkt: Packet, features: frozenset[str], tx_path: bool = True,
                    burst: bool = False) -> "list[Packet] | SkbBurst | None":
    """``__skb_gso_segment`` (net/core/gso.c): segment ``pkt`` (``data`` at its MAC
    header) for a device with ``features``.

    Returns the segments, or None when the packet may go to the device unsegmented (a
    DODGY packet the device segments itself: TCP resets ``gso_segs``); raises
    :class:`GsoError` for what the kernel refuses (bad header, length ≤ mss …).

    Plain TCP over IPv4/IPv6 behind Ethernet, and TCP inside a UDP tunnel with an
    Ethernet inner frame (VXLAN/Geneve), take the template fast paths first
    (netstack/core/gso_fast.py: every segment's header computed at once, identical
    output); everything they do not cover — or every packet, with
    ``gso_fast.ENABLED = False`` — goes down the layered path below, the reference.

    ``burst``: the caller takes a :class:`~netstack.packet.skb_burst.SkbBurst` (the
    segments in one buffer, their skbs not made: a driver with ``start_xmit_burst``);
    the fast paths then return one, the layered path still a list."""
    if gso_fast.ENABLED:
        segs = gso_fast.tcp_gso_segment_fast(pkt, features, burst)
        if segs is not None:
            return segs
        if pkt.gso_type & gso_fast.TUNNEL_TYPES:
            segs = gso_fast.udp_tunnel_gso_segment_fast(pkt, features, burst)
            if segs is not None:
                return segs
    if "tx-gso-partial" in features:
        pf = set(getattr(pkt.dev, "gso_partial_features", ())) | {"tx-gso-robust"}
        if not skb_gso_ok(pkt, set(features) | pf):
            features = frozenset(features - {"tx-gso-partial"})
    pkt.mac_header = pkt.data
    if pkt.network_header == UNSET or pkt.network_header < pkt.data:
        pkt.network_header = pkt.data + 14
    cb = GsoCb(pkt)
    return skb_mac_gso_segment(pkt, features, cb)


def skb_gso_transport_seglen(pkt: Packet) -> int:
    """``skb_gso_transport_seglen``: L4 header(s) + gso_size of one segment."""
    gt = pkt.gso_type
    b = pkt.buf
    thlen = 0
    if pkt.encapsulation:
        thlen = pkt.inner_transport_header - pkt.transport_header
        if gt & (SKB_GSO_TCPV4 | SKB_GSO_TCPV6):
            thlen += (b[pkt.inner_transport_header + 12] >> 4) * 4
    elif gt & (SKB_GSO_TCPV4 | SKB_GSO_TCPV6):
        thlen = (b[pkt.transport_header + 12] >> 4) * 4
    elif gt & SKB_GSO_SCTP:
        thlen = 12
    elif gt & SKB_GSO_UDP_L4:
        thlen = 8
    return thlen + pkt.gso_size


def skb_gso_validate_network_len(pkt: Packet, mtu: int) -> bool:
    """``skb_gso_validate_network_len``: every segment's L3 length fits ``mtu``."""
    return (pkt.transport_header - pkt.network_header) + skb_gso_transport_seglen(pkt) <= mtu


# ---------------------------------------------------------------- IPv4 layer
def inet_gso_segment(pkt: Packet, features: frozenset[str], cb: GsoCb) -> list[Packet] | None:
    """``inet_gso_segment`` (net/ipv4/af_inet.c): pull the IPv4 header, let the protocol
    segment, then give every segment its IP ID (incremented unless FIXEDID — the outer
    or inner flag for this header), total length and header checksum."""
    pkt.network_header = pkt.data
    cb.recursion += 1
    if cb.recursion > IP_TUNNEL_RECURSION_LIMIT:
        raise GsoError(errno.EINVAL, "recursion")
    nhoff = pkt.network_header - pkt.mac_header
    if not pkt.may_pull(20):
        raise GsoError(errno.EINVAL, "short IPv4 header")
    buf = pkt.buf
    nh = pkt.data
    ihl = (buf[nh] & 0x0F) * 4
    if ihl < 20 or not pkt.may_pull(ihl):
        raise GsoError(errno.EINVAL, "bad IPv4 ihl")
    ip_id = get16(buf, nh + 4)
    proto = buf[nh + 9]
    pkt.data += ihl
    encap = cb.encap_level > 0
    if encap:
        features = features & hw_enc_features(cb.dev)
    cb.encap_level += ihl
    pkt.transport_header = pkt.data
    fixedid = bool(pkt.gso_type & (SKB_GSO_TCP_FIXEDID_INNER if encap else SKB_GSO_TCP_FIXEDID))
    udpfrag = bool(pkt.gso_type & SKB_GSO_UDP) and (not pkt.encapsulation or encap)
    fn = inet_offload(proto, False)
    if fn is None:
        raise GsoError(errno.EPROTONOSUPPORT)
    segs = fn(pkt, features, cb)
    if segs is None:
        pkt.network_header = pkt.mac_header + nhoff
        return None
    gso_partial = bool(segs[0].gso_type & SKB_GSO_PARTIAL)
    if udpfrag:
        _inet_gso_ufo_headers(segs, nhoff, ihl)
    else:
        _inet_gso_headers(segs, cb, nhoff, ihl, ip_id, fixedid, gso_partial)
    if encap:
        for seg in segs:
            seg.inner_mac_header = seg.mac_header
            seg.inner_network_header = seg.network_header
            seg.inner_transport_header = seg.transport_header
            seg.network_header = seg.mac_header + nhoff
    else:
        for seg in segs:
            seg.network_header = seg.mac_header + nhoff
    return segs


_pack_u16 = struct.Struct("!H").pack_into
_pack_2u16 = struct.Struct("!HH").pack_into


def _inet_gso_headers(segs: list[Packet], cb: GsoCb, nhoff: int, ihl: int, ip_id: int,
                      fixedid: bool, gso_partial: bool) -> None:
    """Every segment's IPv4 ID, total length and header checksum (inet_gso_segment).

    The segments' headers are copies of one header that differ only in these fields,
    so the checksum is the sum of the rest (computed once) plus ID and length: equal
    to ``ip_fast_csum`` of the rewritten header, end-around carry included (the sum
    is never 0: version/ihl is not)."""
    s0 = segs[0]
    iph0 = s0.mac_header + nhoff
    h = bytearray(s0.buf[iph0:iph0 + ihl])
    h[2] = h[3] = h[10] = h[11] = 0
    if not fixedid:
        h[4] = h[5] = 0
    base = int.from_bytes(h, "big")
    data_offset = cb.data_offset
    for i, seg in enumerate(segs):
        iph = seg.mac_header + nhoff
        sb = seg.buf
        if seg.gso_size:
            step = seg.gso_segs
            if gso_partial:
                tot_len = seg.gso_size + data_offset[i] - iph
            else:
                tot_len = seg.tail - seg.data - nhoff
        else:
            step = 1
            tot_len = seg.tail - seg.data - nhoff
        if fixedid:
            _pack_u16(sb, iph + 2, tot_len)
            r = (base + tot_len) % 0xFFFF
        else:
            idv = ip_id & 0xFFFF
            ip_id += step
            _pack_2u16(sb, iph + 2, tot_len, idv)
            r = (base + tot_len + idv) % 0xFFFF
        _pack_u16(sb, iph + 10, 0xFFFF - r if r else 0)


def _inet_gso_ufo_headers(segs: list[Packet], nhoff: int, ihl: int) -> None:
    """UFO fragments (SKB_GSO_UDP): fragment offset/MF, total length, header checksum."""
    offset = 0
    last = len(segs) - 1
    for i, seg in enumerate(segs):
        iph = seg.mac_header + nhoff
        sb = seg.buf
        seglen = seg.tail - seg.data
        fo = offset >> 3
        if i < last:
            fo |= 0x2000
        put16(sb, iph + 6, fo)
        offset += seglen - nhoff - ihl
        put16(sb, iph + 2, seglen - nhoff)
        sb[iph + 10] = 0
        sb[iph + 11] = 0
        put16(sb, iph + 10, ip_fast_csum(sb[iph:iph + ihl]))


def ipip_gso_segment(pkt: Packet, features: frozenset[str], cb: GsoCb) -> list[Packet] | None:
    """``ipip_gso_segment``: IPv4 in IPv4 needs SKB_GSO_IPXIP4."""
    if not pkt.gso_type & SKB_GSO_IPXIP4:
        raise GsoError(errno.EINVAL)
    return inet_gso_segment(pkt, features, cb)


def sit_gso_segment(pkt: Packet, features: frozenset[str], cb: GsoCb) -> list[Packet] | None:
    """``sit_gso_segment``: IPv6 in IPv4 needs SKB_GSO_IPXIP4."""
    if not pkt.gso_type & SKB_GSO_IPXIP4:
        raise GsoError(errno.EINVAL)
    return ipv6_gso_segment(pkt, features, cb)


def ip4ip6_gso_segment(pkt: Packet, features: frozenset[str], cb: GsoCb) -> list[Packet] | None:
    """``ip4ip6_gso_segment``: IPv4 in IPv6 needs SKB_GSO_IPXIP6."""
    if not pkt.gso_type & SKB_GSO_IPXIP6:
        raise GsoError(errno.EINVAL)
    return inet_gso_segment(pkt, features, cb)


def ip6ip6_gso_segment(pkt: Packet, features: frozenset[str], cb: GsoCb) -> list[Packet] | None:
    """``ip6ip6_gso_segment``: IPv6 in IPv6 needs SKB_GSO_IPXIP6."""
    if not pkt.gso_type & SKB_GSO_IPXIP6:
        raise GsoError(errno.EINVAL)
    return ipv6_gso_segment(pkt, features, cb)


# ---------------------------------------------------------------- IPv6 layer
_IPV6_EXT = (0, 43, 60)  # hop-by-hop, routing, destination options


def ipv6_gso_segment(pkt: Packet, features: frozenset[str], cb: GsoCb) -> list[Packet] | None:
    """``ipv6_gso_segment`` (net/ipv6/ip6_offload.c): skip the fixed header and the
    hop-by-hop/routing/destination option headers (``ipv6_gso_pull_exthdrs``), segment,
    then set every segment's payload length.  UFO fragments get a fragment header."""
    pkt.network_header = pkt.data
    cb.recursion += 1
    if cb.recursion > IP_TUNNEL_RECURSION_LIMIT:
        raise GsoError(errno.EINVAL, "recursion")
    nhoff = pkt.network_header - pkt.mac_header
    if not pkt.may_pull(40):
        raise GsoError(errno.EINVAL, "short IPv6 header")
    buf = pkt.buf
    nh = pkt.data
    proto = buf[nh + 6]
    off = 40
    while proto in _IPV6_EXT:
        if not pkt.may_pull(off + 8):
            raise GsoError(errno.EINVAL, "short extension header")
        hl = (buf[nh + off + 1] + 1) * 8
        if not pkt.may_pull(off + hl):
            raise GsoError(errno.EINVAL, "short extension header")
        proto = buf[nh + off]
        off += hl
    encap = cb.encap_level > 0
    if encap:
        features = features & hw_enc_features(cb.dev)
    cb.encap_level += off
    pkt.data += off
    pkt.transport_header = pkt.data
    if pkt.gso_type & SKB_GSO_UDP and (not pkt.encapsulation or encap):
        from netstack.errors import NotSupported
        raise NotSupported("IPv6 UFO (SKB_GSO_UDP) segmentation")
    fn = inet_offload(proto, True)
    if fn is None:
        raise GsoError(errno.EPROTONOSUPPORT)
    segs = fn(pkt, features, cb)
    if segs is None:
        pkt.network_header = pkt.mac_header + nhoff
        return None
    gso_partial = bool(segs[0].gso_type & SKB_GSO_PARTIAL)
    for i, seg in enumerate(segs):
        ip6 = seg.mac_header + nhoff
        if gso_partial and seg.gso_size:
            payload_len = seg.gso_size + cb.data_offset[i] - (ip6 + 40)
        else:
            payload_len = seg.tail - seg.data - nhoff - 40
        put16(seg.buf, ip6 + 4, payload_len)
        seg.network_header = ip6
        if encap:
            seg.inner_mac_header = seg.mac_header
            seg.inner_network_header = seg.network_header
            seg.inner_transport_header = seg.transport_header
    return segs


def gso_reset_network(pkt: Packet, protocol: int, tnl_hlen: int, mac_offset: int) -> None:
    """``skb_gso_error_unwind``: after a failed inner segmentation, put the tunnel
    packet's headers back as they were."""
    pkt.protocol = protocol
    pkt.encapsulation = True
    pkt.data -= tnl_hlen
    pkt.transport_header = pkt.data
    pkt.mac_header = mac_offset
