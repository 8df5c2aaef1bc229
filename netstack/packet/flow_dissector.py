"""Flow dissector and software flow hash (net/core/flow_dissector.c).

:func:`flow_dissect` walks a frame the way ``__skb_flow_dissect`` does with
the default ``flow_keys_dissector`` key set (control, basic, IPv4/IPv6
addresses, ports, outer VLAN, flow label, GRE key id) and fills a
:class:`FlowKeys` laid out like ``struct flow_keys``.  Like the kernel it does
*not* raise on malformed input: it returns ``ok=False`` (``out_bad``) with
whatever keys were filled, and the hash is computed from them anyway
(``__skb_get_hash_net`` ignores the return value).

:func:`flow_hash_from_keys` is ``__flow_hash_from_keys``: sort addresses and
ports (``__flow_hash_consistentify``, comparing the big-endian fields as
little-endian host integers like x86 does), SipHash-2-4 the bytes from
``basic`` to the end of the used address family, and map 0 to 1.

:func:`udp_flow_src_port` is ``udp_flow_src_port`` (include/net/udp.h).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, replace
from functools import lru_cache

from ._view import Buffer
from .constants import (
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_802_3_MIN,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_MPLS_MC,
    ETH_P_MPLS_UC,
    ETH_P_PPP_SES,
    ETH_P_RARP,
    ETH_P_TEB,
    IP_MF,
    IP_OFFSET,
    IPPROTO_AH,
    IPPROTO_DCCP,
    IPPROTO_DSTOPTS,
    IPPROTO_ESP,
    IPPROTO_FRAGMENT,
    IPPROTO_GRE,
    IPPROTO_HOPOPTS,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_IPIP,
    IPPROTO_IPV6,
    IPPROTO_MPLS,
    IPPROTO_ROUTING,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IPPROTO_UDPLITE,
)
from .errors import NotSupported
from .icmp import icmp_has_id
from .jhash import jhash
from .siphash import siphash

__all__ = [
    "FlowKeys",
    "flow_dissect",
    "flow_hash_from_keys",
    "skb_get_hash",
    "flow_keys_have_l4",
    "udp_flow_src_port",
    "proto_ports_offset",
    "FLOW_DISSECTOR_KEY_IPV4_ADDRS",
    "FLOW_DISSECTOR_KEY_IPV6_ADDRS",
    "FLOW_DIS_IS_FRAGMENT",
    "FLOW_DIS_FIRST_FRAG",
    "FLOW_DIS_ENCAPSULATION",
    "FLOW_DISSECTOR_F_PARSE_1ST_FRAG",
    "FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL",
    "FLOW_DISSECTOR_F_STOP_AT_ENCAP",
    "FLOW_DISSECTOR_F_STOP_BEFORE_ENCAP",
    "FLOW_KEYS_SIZE",
    "FLOW_KEYS_HASH_OFFSET",
]

# enum flow_dissector_key_id values used as control.addr_type
FLOW_DISSECTOR_KEY_IPV4_ADDRS = 2
FLOW_DISSECTOR_KEY_IPV6_ADDRS = 3

FLOW_DIS_IS_FRAGMENT = 1 << 0
FLOW_DIS_FIRST_FRAG = 1 << 1
FLOW_DIS_ENCAPSULATION = 1 << 2

FLOW_DISSECTOR_F_PARSE_1ST_FRAG = 1 << 0
FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL = 1 << 1
FLOW_DISSECTOR_F_STOP_AT_ENCAP = 1 << 2
FLOW_DISSECTOR_F_STOP_BEFORE_ENCAP = 1 << 3

MAX_FLOW_DISSECT_HDRS = 15

#: sizeof(struct flow_keys) on x86-64 (basic is __aligned(SIPHASH_ALIGNMENT=8)).
FLOW_KEYS_SIZE = 80
FLOW_KEYS_HASH_OFFSET = 8
_ADDRS_OFF = 44
_ADDRS_SIZE = 32

ETH_P_802_3 = 0x0001
ETH_P_802_2 = 0x0004
ETH_P_TIPC = 0x88CA
ETH_P_FCOE = 0x8906
ETH_P_CFM = 0x8902
ETH_P_BATMAN = 0x4305
ETH_P_1588 = 0x88F7
FCOE_HEADER_LEN = 38
PTP_HEADER_LEN = 34
TIPC_KEEPALIVE_MSG_MASK = 0x0E080000
BATADV_COMPAT_VERSION = 15
BATADV_UNICAST = 0x40
#: enum flow_dissector_key_id value of FLOW_DISSECTOR_KEY_TIPC (after PORTS_RANGE, ICMP, ETH_ADDRS)
FLOW_DISSECTOR_KEY_TIPC = 8
PPPOE_SES_HLEN = 8
PPP_IP = 0x21
PPP_IPV6 = 0x57
PPP_MPLS_UC = 0x0281
PPP_MPLS_MC = 0x0283
GRE_CSUM = 0x8000
GRE_ROUTING = 0x4000
GRE_KEY = 0x2000
GRE_SEQ = 0x1000
GRE_ACK = 0x0080
GRE_VERSION = 0x0007
GRE_PROTO_PPP = 0x880B

_OUT_GOOD, _OUT_BAD, _PROTO_AGAIN, _IPPROTO_AGAIN, _CONTINUE = range(5)


@dataclass(slots=True)
class FlowKeys:
    """``struct flow_keys``; integers in host order, addresses as bytes.

    ``thoff`` is relative to the start of the buffer given to
    :func:`flow_dissect`.  ``vlan_*`` is the outermost tag (the ``vlan`` key);
    the default dissector does not fill ``cvlan``.  ``keyid`` is the GRE key as
    a big-endian integer.  ``src``/``dst`` are 4 or 16 bytes (empty when no
    address was found).
    """

    thoff: int = 0
    addr_type: int = 0
    flags: int = 0
    n_proto: int = 0
    ip_proto: int = 0
    flow_label: int = 0
    vlan_id: int = 0
    vlan_dei: int = 0
    vlan_priority: int = 0
    vlan_tpid: int = 0
    vlan_eth_type: int = 0
    cvlan_id: int = 0
    cvlan_dei: int = 0
    cvlan_priority: int = 0
    cvlan_tpid: int = 0
    cvlan_eth_type: int = 0
    keyid: int = 0
    src_port: int = 0
    dst_port: int = 0
    icmp_type: int = 0
    icmp_code: int = 0
    icmp_id: int = 0
    src: bytes = b""
    dst: bytes = b""

    def to_bytes(self) -> bytes:
        """The 80-byte x86-64 memory image of ``struct flow_keys``."""
        vlan = self.vlan_id & 0xFFF | (self.vlan_dei & 1) << 12 | (self.vlan_priority & 7) << 13
        cvlan = self.cvlan_id & 0xFFF | (self.cvlan_dei & 1) << 12 | (self.cvlan_priority & 7) << 13
        head = _pack_head(self, vlan, cvlan)
        addrs = (self.src + self.dst).ljust(_ADDRS_SIZE, b"\x00")
        return head + addrs + bytes(FLOW_KEYS_SIZE - _ADDRS_OFF - _ADDRS_SIZE)

    def hash_input(self) -> bytes:
        """The bytes ``__flow_hash_from_keys`` feeds to SipHash (``flow_keys_hash_start``
        for ``flow_keys_hash_length``)."""
        if self.addr_type == FLOW_DISSECTOR_KEY_IPV4_ADDRS:
            length = FLOW_KEYS_SIZE - (FLOW_KEYS_HASH_OFFSET + _ADDRS_SIZE - 8)
        elif self.addr_type == FLOW_DISSECTOR_KEY_IPV6_ADDRS:
            length = FLOW_KEYS_SIZE - (FLOW_KEYS_HASH_OFFSET + _ADDRS_SIZE - 32)
        elif self.addr_type == FLOW_DISSECTOR_KEY_TIPC:
            length = FLOW_KEYS_SIZE - (FLOW_KEYS_HASH_OFFSET + _ADDRS_SIZE - 4)
        else:
            length = FLOW_KEYS_SIZE - (FLOW_KEYS_HASH_OFFSET + _ADDRS_SIZE)
        return self.to_bytes()[FLOW_KEYS_HASH_OFFSET : FLOW_KEYS_HASH_OFFSET + length]


_HEAD = struct.Struct("<HHI2sBxI2s2s2s2x2s2s2s2x4s2s2sBBH")


def _pack_head(k: FlowKeys, vlan: int, cvlan: int) -> bytes:
    be16 = lambda v: (v & 0xFFFF).to_bytes(2, "big")  # noqa: E731
    return _HEAD.pack(
        k.thoff & 0xFFFF,
        k.addr_type,
        k.flags,
        be16(k.n_proto),
        k.ip_proto & 0xFF,
        k.flow_label & 0xFFFFFFFF,
        vlan.to_bytes(2, "little"),
        be16(k.vlan_tpid),
        be16(k.vlan_eth_type),
        cvlan.to_bytes(2, "little"),
        be16(k.cvlan_tpid),
        be16(k.cvlan_eth_type),
        (k.keyid & 0xFFFFFFFF).to_bytes(4, "big"),
        be16(k.src_port),
        be16(k.dst_port),
        k.icmp_type & 0xFF,
        k.icmp_code & 0xFF,
        k.icmp_id & 0xFFFF,
    )


def proto_ports_offset(proto: int) -> int:
    """include/linux/in.h: where the 32-bit "ports" live; -1 if none."""
    if proto in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_DCCP, IPPROTO_ESP, IPPROTO_SCTP, IPPROTO_UDPLITE):
        return 0
    if proto == IPPROTO_AH:
        return 4
    return -1


def flow_dissect(
    buf: Buffer,
    off: int = 0,
    *,
    proto: int | None = None,
    flags: int = 0,
    vlan_tag: tuple[int, int] | None = None,
    dissect_icmp: bool = False,
) -> tuple[FlowKeys, bool]:
    """Dissect ``buf`` into :class:`FlowKeys`; returns ``(keys, ok)``.

    By default ``buf[off:]`` is an Ethernet frame (the protocol is what
    ``eth_type_trans`` would set).  With ``proto`` given, ``buf[off:]`` starts
    at the network header of that EtherType (an skb after the MAC header
    was pulled).  ``vlan_tag=(tpid, tci)`` is a hardware-accelerated tag
    (``skb_vlan_tag_present``): dissection starts from the tag and then
    continues with the frame's own EtherType.  ``dissect_icmp`` also fills
    the ICMP key (type, code, echo id) as the bonding dissector does.
    """
    k = FlowKeys()
    hlen = len(buf)
    if proto is None:
        if hlen - off < 14:
            return k, False
        etype = (buf[off + 12] << 8) | buf[off + 13]
        if etype < ETH_P_802_3_MIN:
            etype = ETH_P_802_3 if (hlen - off >= 16 and buf[off + 14] == 0xFF and buf[off + 15] == 0xFF) else ETH_P_802_2
        nhoff = off + 14
    else:
        etype = proto
        nhoff = off
    skb_protocol = etype
    if vlan_tag is not None:
        etype = vlan_tag[0]

    ip_proto = 0
    num_hdrs = 0
    vlan_level = 0  # 0: KEY_MAX (none yet), 1: VLAN seen, 2: CVLAN seen
    ok = True
    cur = etype

    def ports_at(nh: int, ipp: int) -> tuple[int, int]:
        poff = proto_ports_offset(ipp)
        if poff < 0 or hlen - (nh + poff) < 4 or nh + poff < 0:
            return 0, 0
        p = nh + poff
        return (buf[p] << 8) | buf[p + 1], (buf[p + 2] << 8) | buf[p + 3]

    while True:  # proto_again
        fdret = _CONTINUE
        if cur == ETH_P_IP:
            if hlen - nhoff < 20 or (buf[nhoff] & 0x0F) < 5:
                fdret = _OUT_BAD
            else:
                ihl = buf[nhoff] & 0x0F
                ip_proto = buf[nhoff + 9]
                k.src = bytes(buf[nhoff + 12 : nhoff + 16])
                k.dst = bytes(buf[nhoff + 16 : nhoff + 20])
                k.addr_type = FLOW_DISSECTOR_KEY_IPV4_ADDRS
                frag = (buf[nhoff + 6] << 8) | buf[nhoff + 7]
                nhoff += ihl * 4
                if frag & (IP_MF | IP_OFFSET):
                    k.flags |= FLOW_DIS_IS_FRAGMENT
                    if frag & IP_OFFSET:
                        fdret = _OUT_GOOD
                    else:
                        k.flags |= FLOW_DIS_FIRST_FRAG
                        if not flags & FLOW_DISSECTOR_F_PARSE_1ST_FRAG:
                            fdret = _OUT_GOOD
        elif cur == ETH_P_IPV6:
            if hlen - nhoff < 40:
                fdret = _OUT_BAD
            else:
                ip_proto = buf[nhoff + 6]
                k.src = bytes(buf[nhoff + 8 : nhoff + 24])
                k.dst = bytes(buf[nhoff + 24 : nhoff + 40])
                k.addr_type = FLOW_DISSECTOR_KEY_IPV6_ADDRS
                label = int.from_bytes(buf[nhoff : nhoff + 4], "big") & 0xFFFFF
                nhoff += 40
                if label:
                    k.flow_label = label
                    if flags & FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL:
                        fdret = _OUT_GOOD
        elif cur in (ETH_P_8021Q, ETH_P_8021AD):
            saved_tpid = cur
            if vlan_level == 0 and vlan_tag is not None:
                cur = skb_protocol
                tci = vlan_tag[1]
            elif hlen - nhoff < 4:
                fdret = _OUT_BAD
                tci = -1
            else:
                tci = (buf[nhoff] << 8) | buf[nhoff + 1]
                cur = (buf[nhoff + 2] << 8) | buf[nhoff + 3]
                nhoff += 4
            if fdret != _OUT_BAD:
                if vlan_level == 0:
                    vlan_level = 1
                    k.vlan_id = tci & 0xFFF
                    k.vlan_priority = tci >> 13
                    k.vlan_tpid = saved_tpid
                    k.vlan_eth_type = cur
                elif vlan_level == 1:
                    vlan_level = 2  # CVLAN key is not in flow_keys_dissector
                fdret = _PROTO_AGAIN
        elif cur == ETH_P_PPP_SES:
            if hlen - nhoff < PPPOE_SES_HLEN:
                fdret = _OUT_BAD
            elif buf[nhoff] != 0x11 or buf[nhoff + 1] != 0:
                fdret = _OUT_BAD  # is_pppoe_ses_hdr_valid: ver 1, type 1, code 0
            else:
                ppp = (buf[nhoff + 6] << 8) | buf[nhoff + 7]
                if ppp & 0x0100:
                    ppp >>= 8
                    nhoff += PPPOE_SES_HLEN - 1
                else:
                    nhoff += PPPOE_SES_HLEN
                if ppp == PPP_IP:
                    cur, fdret = ETH_P_IP, _PROTO_AGAIN
                elif ppp == PPP_IPV6:
                    cur, fdret = ETH_P_IPV6, _PROTO_AGAIN
                elif ppp == PPP_MPLS_UC:
                    cur, fdret = ETH_P_MPLS_UC, _PROTO_AGAIN
                elif ppp == PPP_MPLS_MC:
                    cur, fdret = ETH_P_MPLS_MC, _PROTO_AGAIN
                elif (ppp & 0x0101) == 0x0001:  # ppp_proto_is_valid
                    fdret = _OUT_GOOD
                else:
                    fdret = _OUT_BAD
        elif cur in (ETH_P_MPLS_UC, ETH_P_MPLS_MC, ETH_P_ARP, ETH_P_RARP, ETH_P_CFM):
            fdret = _OUT_GOOD  # their keys are not part of flow_keys_dissector
        elif cur == ETH_P_FCOE:
            if hlen - nhoff < FCOE_HEADER_LEN:
                fdret = _OUT_BAD
            else:
                nhoff += FCOE_HEADER_LEN
                fdret = _OUT_GOOD
        elif cur == ETH_P_TIPC:
            if hlen - nhoff < 16:
                fdret = _OUT_BAD
            else:
                w0 = int.from_bytes(buf[nhoff : nhoff + 4], "big")
                if (w0 & TIPC_KEEPALIVE_MSG_MASK) == TIPC_KEEPALIVE_MSG_MASK:
                    k.src = os.urandom(4)  # tipc_hdr_rps_key spreads keepalives randomly
                else:
                    k.src = bytes(buf[nhoff + 12 : nhoff + 16])  # source node identity (w[3])
                k.dst = b""
                k.addr_type = FLOW_DISSECTOR_KEY_TIPC
                fdret = _OUT_GOOD
        elif cur == ETH_P_BATMAN:
            # __skb_flow_dissect_batadv: unicast packet (10 bytes) + inner ethhdr
            if hlen - nhoff < 24:
                fdret = _OUT_BAD
            elif buf[nhoff + 1] != BATADV_COMPAT_VERSION or buf[nhoff] != BATADV_UNICAST:
                fdret = _OUT_BAD
            else:
                cur = (buf[nhoff + 22] << 8) | buf[nhoff + 23]
                nhoff += 24
                k.flags |= FLOW_DIS_ENCAPSULATION
                fdret = _OUT_GOOD if flags & FLOW_DISSECTOR_F_STOP_AT_ENCAP else _PROTO_AGAIN
        elif cur == ETH_P_1588:
            if hlen - nhoff < PTP_HEADER_LEN:
                fdret = _OUT_BAD
            else:
                nhoff += PTP_HEADER_LEN
                fdret = _OUT_GOOD
        else:
            fdret = _OUT_BAD

        if fdret == _OUT_GOOD:
            break
        if fdret == _PROTO_AGAIN:
            num_hdrs += 1
            if num_hdrs <= MAX_FLOW_DISSECT_HDRS:
                continue
            break
        if fdret == _OUT_BAD:
            ok = False
            break

        # ip_proto_again
        again_proto = False
        while True:
            fdret = _CONTINUE
            if ip_proto == IPPROTO_GRE:
                if flags & FLOW_DISSECTOR_F_STOP_BEFORE_ENCAP:
                    fdret = _OUT_GOOD
                else:
                    fdret, cur, nhoff = _dissect_gre(buf, nhoff, cur, k, flags)
            elif ip_proto in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS):
                if cur == ETH_P_IPV6:
                    if hlen - nhoff < 2:
                        fdret = _OUT_BAD
                    else:
                        ip_proto = buf[nhoff]
                        nhoff += (buf[nhoff + 1] + 1) << 3
                        fdret = _IPPROTO_AGAIN
            elif ip_proto == IPPROTO_FRAGMENT:
                if cur == ETH_P_IPV6:
                    if hlen - nhoff < 8:
                        fdret = _OUT_BAD
                    else:
                        k.flags |= FLOW_DIS_IS_FRAGMENT
                        frag_off = (buf[nhoff + 2] << 8) | buf[nhoff + 3]
                        ip_proto = buf[nhoff]
                        nhoff += 8
                        fdret = _OUT_GOOD
                        if not frag_off & 0xFFF8:
                            k.flags |= FLOW_DIS_FIRST_FRAG
                            if flags & FLOW_DISSECTOR_F_PARSE_1ST_FRAG:
                                fdret = _IPPROTO_AGAIN
            elif ip_proto in (IPPROTO_IPIP, IPPROTO_IPV6):
                if flags & FLOW_DISSECTOR_F_STOP_BEFORE_ENCAP:
                    fdret = _OUT_GOOD
                else:
                    cur = ETH_P_IP if ip_proto == IPPROTO_IPIP else ETH_P_IPV6
                    k.flags |= FLOW_DIS_ENCAPSULATION
                    fdret = _OUT_GOOD if flags & FLOW_DISSECTOR_F_STOP_AT_ENCAP else _PROTO_AGAIN
            elif ip_proto == IPPROTO_MPLS:
                cur = ETH_P_MPLS_UC
                fdret = _PROTO_AGAIN
            elif ip_proto in (IPPROTO_ICMP, IPPROTO_ICMPV6) and dissect_icmp:
                if hlen - nhoff >= 8:  # skb_flow_get_icmp_tci reads a struct icmphdr
                    t = buf[nhoff]
                    k.icmp_type = t
                    k.icmp_code = buf[nhoff + 1]
                    has_id = icmp_has_id(t) if ip_proto == IPPROTO_ICMP else t in (128, 129)
                    if has_id:
                        ident = (buf[nhoff + 4] << 8) | buf[nhoff + 5]
                        k.icmp_id = ident or 1
                    else:
                        k.icmp_id = 0

            if not k.flags & FLOW_DIS_IS_FRAGMENT:
                k.src_port, k.dst_port = ports_at(nhoff, ip_proto)

            if fdret == _PROTO_AGAIN:
                num_hdrs += 1
                if num_hdrs <= MAX_FLOW_DISSECT_HDRS:
                    again_proto = True
                break
            if fdret == _IPPROTO_AGAIN:
                num_hdrs += 1
                if num_hdrs <= MAX_FLOW_DISSECT_HDRS:
                    continue
                break
            if fdret == _OUT_BAD:
                ok = False
            break
        if again_proto:
            continue
        break

    k.thoff = min(nhoff, hlen)
    k.n_proto = cur
    k.ip_proto = ip_proto
    return k, ok


def _dissect_gre(buf: Buffer, nhoff: int, cur: int, k: FlowKeys, flags: int) -> tuple[int, int, int]:
    """``__skb_flow_dissect_gre``; returns (fdret, proto, nhoff)."""
    hlen = len(buf)
    if hlen - nhoff < 4:
        return _OUT_BAD, cur, nhoff
    gflags = (buf[nhoff] << 8) | buf[nhoff + 1]
    if gflags & GRE_ROUTING:
        return _OUT_GOOD, cur, nhoff
    ver = gflags & GRE_VERSION
    if ver > 1:
        return _OUT_GOOD, cur, nhoff
    cur = (buf[nhoff + 2] << 8) | buf[nhoff + 3]
    if ver and not (cur == GRE_PROTO_PPP and gflags & GRE_KEY):
        return _OUT_GOOD, cur, nhoff
    offset = 4
    if gflags & GRE_CSUM:
        offset += 4
    if gflags & GRE_KEY:
        if hlen - (nhoff + offset) < 4:
            return _OUT_BAD, cur, nhoff
        key = int.from_bytes(buf[nhoff + offset : nhoff + offset + 4], "big")
        k.keyid = key if ver == 0 else key & 0xFFFF
        offset += 4
    if gflags & GRE_SEQ:
        offset += 4
    if ver == 0:
        if cur == ETH_P_TEB:
            if hlen - (nhoff + offset) < 14:
                return _OUT_BAD, cur, nhoff
            p = nhoff + offset + 12
            cur = (buf[p] << 8) | buf[p + 1]
            offset += 14
    else:
        if gflags & GRE_ACK:
            offset += 4
        if hlen - (nhoff + offset) < 4:
            return _OUT_BAD, cur, nhoff
        p = nhoff + offset
        ppp = (buf[p + 2] << 8) | buf[p + 3]
        if ppp == PPP_IP:
            cur = ETH_P_IP
        elif ppp == PPP_IPV6:
            cur = ETH_P_IPV6
        offset += 4
    nhoff += offset
    k.flags |= FLOW_DIS_ENCAPSULATION
    if flags & FLOW_DISSECTOR_F_STOP_AT_ENCAP:
        return _OUT_GOOD, cur, nhoff
    return _PROTO_AGAIN, cur, nhoff


def _consistentify(k: FlowKeys) -> FlowKeys:
    """``__flow_hash_consistentify`` on a copy (x86: be32/be16 compared as LE ints)."""
    src, dst, sp, dp = k.src, k.dst, k.src_port, k.dst_port
    if k.addr_type == FLOW_DISSECTOR_KEY_IPV4_ADDRS:
        if int.from_bytes(dst, "little") < int.from_bytes(src, "little"):
            src, dst = dst, src
    elif k.addr_type == FLOW_DISSECTOR_KEY_IPV6_ADDRS:
        if dst < src:  # memcmp
            src, dst = dst, src
    else:
        return k
    # ports are __be16 compared as host u16: byte-swapped values
    if ((dp & 0xFF) << 8 | dp >> 8) < ((sp & 0xFF) << 8 | sp >> 8):
        sp, dp = dp, sp
    if src is k.src and sp == k.src_port:
        return k
    return replace(k, src=src, dst=dst, src_port=sp, dst_port=dp)


@lru_cache(maxsize=65536)
def _siphash32(data: bytes, key: bytes) -> int:
    """Memoised low 32 bits of SipHash (pure function; flows repeat)."""
    return siphash(data, key) & 0xFFFFFFFF


def flow_hash_from_keys(keys: FlowKeys, hashrnd: bytes) -> int:
    """``__flow_hash_from_keys(keys, hashrnd)``: symmetric, never 0."""
    return _siphash32(_consistentify(keys).hash_input(), bytes(hashrnd)) or 1


def flow_keys_have_l4(keys: FlowKeys) -> bool:
    """``flow_keys_have_l4``: sets ``skb->l4_hash``."""
    return bool(keys.src_port or keys.dst_port or keys.flow_label or keys.icmp_id)


def skb_get_hash(frame: Buffer, hashrnd: bytes, off: int = 0, *, proto: int | None = None,
                 vlan_tag: tuple[int, int] | None = None) -> int:
    """``__skb_get_hash_net``: dissect with STOP_AT_FLOW_LABEL, then hash."""
    keys, _ok = flow_dissect(frame, off, proto=proto, flags=FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL, vlan_tag=vlan_tag)
    return flow_hash_from_keys(keys, hashrnd)


def udp_flow_src_port(
    hash: int,
    min: int = 0,  # noqa: A002 - kernel parameter names
    max: int = 0,  # noqa: A002
    *,
    local_port_range: tuple[int, int] = (32768, 60999),
    eth_header: bytes | None = None,
    protocol: int = 0,
    fallback: int | None = None,
) -> int:
    """``udp_flow_src_port``: map a flow hash into ``[min, max)``.

    ``min >= max`` selects ``ip_local_port_range`` (default 32768..60999).  A
    zero hash falls back to ``jhash(eth addrs, 12, skb->protocol)`` when
    ``eth_header`` (the first 12 frame bytes) is given — ``skb->protocol`` is a
    __be16 used as a host u32, hence the byte swap — or to ``fallback`` (the
    kernel's per-boot ``udp_flow_hashrnd``).
    """
    if min >= max:
        min, max = local_port_range
    h = hash & 0xFFFFFFFF
    if not h:
        if eth_header is not None:
            h = jhash(eth_header[:12], ((protocol & 0xFF) << 8) | ((protocol >> 8) & 0xFF))
        elif fallback is not None:
            h = fallback & 0xFFFFFFFF
        else:
            raise NotSupported("udp_flow_src_port of a zero hash without eth_header or fallback")
    h ^= (h << 16) & 0xFFFFFFFF
    return ((h * (max - min)) >> 32) + min
