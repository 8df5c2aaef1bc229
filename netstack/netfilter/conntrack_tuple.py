"""Conntrack tuples, zones and packet → tuple extraction.

include/net/netfilter/nf_conntrack_tuple.h, nf_conntrack_zones.h and the ``pkt_to_tuple`` /
``invert_tuple`` parts of nf_conntrack_core.c and nf_conntrack_proto_icmp{,v6}.c:

* A tuple is (l3num, src, src "all" (port or ICMP id), dst, dst "all" (port or ICMP
  type<<8|code), protonum).  The hash key also carries the zone id for the tuple's direction
  (``nf_ct_zone_id``): the same tuple in two zones is two connections.
* ICMP echo/timestamp/info/address-mask requests invert to their replies (8↔0, 13↔14,
  15↔16, 17↔18); ICMPv6 128↔129 and 139↔140.  Any other ICMP type has no inverse, so
  ``invert`` returns None and no connection can be created for it.
* Parsing never raises to the caller: a short or malformed header gives ``None``.
"""
from __future__ import annotations

from typing import NamedTuple

from netstack.netfilter.core import NFPROTO_IPV4, NFPROTO_IPV6

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_GRE = 47
IPPROTO_ICMPV6 = 58
IPPROTO_SCTP = 132
IPPROTO_UDPLITE = 136
IPPROTO_DCCP = 33

#: Protocols whose tuple carries 16-bit source/destination ports at offset 0/2.
PORT_PROTOS = frozenset((IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_UDPLITE,
                         IPPROTO_DCCP))

# Zone direction bits (nf_conntrack_zones_common.h).
NF_CT_ZONE_DIR_ORIG = 1
NF_CT_ZONE_DIR_REPL = 2
NF_CT_DEFAULT_ZONE_DIR = NF_CT_ZONE_DIR_ORIG | NF_CT_ZONE_DIR_REPL
NF_CT_DEFAULT_ZONE_ID = 0

IP_CT_DIR_ORIGINAL = 0
IP_CT_DIR_REPLY = 1

#: ICMP request → reply type (nf_conntrack_proto_icmp.c ``invmap``).
ICMP_INVMAP = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17}
#: Types that may start a connection (``valid_new``).
ICMP_VALID_NEW = frozenset((8, 13, 15, 17))
ICMPV6_INVMAP = {128: 129, 129: 128, 139: 140, 140: 139}
ICMPV6_VALID_NEW = frozenset((128, 139))
#: ICMPv6 types never tracked: MLD and ND (``noct_valid_new``): the packet is UNTRACKED.
ICMPV6_NOCT = frozenset((130, 131, 132, 133, 134, 135, 136, 143))
ICMP_ERRORS = frozenset((3, 4, 5, 11, 12))
ICMPV6_ERRORS = frozenset((1, 2, 3, 4))


class CtZone(NamedTuple):
    """``struct nf_conntrack_zone``: id, flags, direction bits."""

    id: int = NF_CT_DEFAULT_ZONE_ID
    dir: int = NF_CT_DEFAULT_ZONE_DIR

    def id_for(self, direction: int) -> int:
        """``nf_ct_zone_id``: the id applies in a direction only if its bit is set."""
        return self.id if self.dir & (1 << direction) else NF_CT_DEFAULT_ZONE_ID


DEFAULT_ZONE = CtZone()


class CtTuple(NamedTuple):
    """``struct nf_conntrack_tuple`` (the direction lives in the tuplehash, not here)."""

    l3num: int
    src: bytes
    sport: int      # port, or ICMP/ICMPv6 echo id, or GRE key; 0 for generic
    dst: bytes
    dport: int      # port, or ICMP type << 8 | code
    protonum: int

    @property
    def icmp_type(self) -> int:
        return self.dport >> 8

    @property
    def icmp_code(self) -> int:
        return self.dport & 0xFF


def invert(t: CtTuple) -> CtTuple | None:
    """``nf_ct_invert_tuple``; None where the L4 protocol has no inverse (ICMP non-request)."""
    p = t.protonum
    if p == IPPROTO_ICMP and t.l3num == NFPROTO_IPV4:
        inv = ICMP_INVMAP.get(t.icmp_type)
        if inv is None:
            return None
        return CtTuple(t.l3num, t.dst, t.sport, t.src, inv << 8 | t.icmp_code, p)
    if p == IPPROTO_ICMPV6 and t.l3num == NFPROTO_IPV6:
        inv = ICMPV6_INVMAP.get(t.icmp_type)
        if inv is None:
            return None
        return CtTuple(t.l3num, t.dst, t.sport, t.src, inv << 8 | t.icmp_code, p)
    return CtTuple(t.l3num, t.dst, t.dport, t.src, t.sport, p)


class L3Info(NamedTuple):
    """What the L3 parse found: family, addresses, L4 protocol and offset, L4 length,
    and whether the packet is a non-first fragment (no L4 header to read)."""

    l3num: int
    src: bytes
    dst: bytes
    protonum: int
    l4off: int       # absolute offset into pkt.buf
    l4len: int
    fragment: bool


_IPV6_EXT = frozenset((0, 43, 60))


def parse_l3(buf: bytes | bytearray, nh: int, end: int, l3num: int) -> L3Info | None:
    """IPv4 header or IPv6 header + extension-header walk (``ipv4_get_l4proto`` /
    ``ipv6_skip_exthdr``); None for a truncated header."""
    if l3num == NFPROTO_IPV4:
        if end - nh < 20:
            return None
        ihl = (buf[nh] & 0x0F) * 4
        if ihl < 20 or end - nh < ihl:
            return None
        frag = int.from_bytes(buf[nh + 6:nh + 8], "big") & 0x1FFF
        return L3Info(l3num, bytes(buf[nh + 12:nh + 16]), bytes(buf[nh + 16:nh + 20]),
                      buf[nh + 9], nh + ihl, end - nh - ihl, frag != 0)
    if l3num == NFPROTO_IPV6:
        if end - nh < 40:
            return None
        nexthdr = buf[nh + 6]
        off = nh + 40
        fragment = False
        while True:
            if nexthdr in _IPV6_EXT:
                if end - off < 8:
                    return None
                nexthdr, hl = buf[off], (buf[off + 1] + 1) * 8
            elif nexthdr == 51:  # AH
                if end - off < 8:
                    return None
                nexthdr, hl = buf[off], (buf[off + 1] + 2) * 4
            elif nexthdr == 44:  # fragment
                if end - off < 8:
                    return None
                if int.from_bytes(buf[off + 2:off + 4], "big") & ~0x7:
                    fragment = True
                    break
                nexthdr, hl = buf[off], 8
            else:
                break
            off += hl
            if off > end:
                return None
        return L3Info(l3num, bytes(buf[nh + 8:nh + 24]), bytes(buf[nh + 24:nh + 40]),
                      nexthdr, off, end - off, fragment)
    return None


def l4_tuple(buf: bytes | bytearray, l3: L3Info) -> CtTuple | None:
    """``nf_ct_get_tuple`` for the L4 part; None when the L4 header is too short."""
    p = l3.protonum
    o = l3.l4off
    if p in PORT_PROTOS:
        if l3.l4len < 4:
            return None
        return CtTuple(l3.l3num, l3.src, int.from_bytes(buf[o:o + 2], "big"), l3.dst,
                       int.from_bytes(buf[o + 2:o + 4], "big"), p)
    if (p == IPPROTO_ICMP and l3.l3num == NFPROTO_IPV4) or \
            (p == IPPROTO_ICMPV6 and l3.l3num == NFPROTO_IPV6):
        if l3.l4len < 8:
            return None
        return CtTuple(l3.l3num, l3.src, int.from_bytes(buf[o + 4:o + 6], "big"), l3.dst,
                       buf[o] << 8 | buf[o + 1], p)
    return CtTuple(l3.l3num, l3.src, 0, l3.dst, 0, p)


def ct_tuple_from_bytes(data: bytes, l3num: int) -> CtTuple | None:
    """Tuple of a bare L3 packet (as quoted inside an ICMP error); None if unparseable.
    The quoted datagram may be cut after 8 bytes of L4 header, so no length check on the
    L3 total length is made (as ``nf_conntrack_inet_error``)."""
    l3 = parse_l3(data, 0, len(data), l3num)
    if l3 is None or l3.fragment:
        return None
    return l4_tuple(data, l3)
