"""The virtio-net header (include/uapi/linux/virtio_net.h) and its conversion to and from
the skb (include/linux/virtio_net.h ``virtio_net_hdr_to_skb`` / ``virtio_net_hdr_from_skb``,
Linux 6.18).

``struct virtio_net_hdr`` is 10 bytes: flags (u8), gso_type (u8), hdr_len, gso_size,
csum_start, csum_offset (16-bit each, little-endian on a little-endian host — what a tap
with IFF_VNET_HDR uses unless TUNSETVNETBE); 12 with ``num_buffers`` (mergeable receive
buffers, TUNSETVNETHDRSZ 12).

Guest → host (:func:`virtio_net_hdr_to_skb`): NEEDS_CSUM becomes CHECKSUM_PARTIAL at
(csum_start, csum_offset); a GSO type becomes SKB_GSO_* | SKB_GSO_DODGY with gso_segs 0
("header must be checked"), but only when the payload is longer than gso_size.  Every
check the kernel makes is made: unknown GSO type, gso_size 0, checksum field outside the
packet, transport offset inside the network header, UDP_L4 without NEEDS_CSUM or with
the wrong offset or more than 64 segments, TCP with a PARTIAL offset that is not TCP's.
A failure is ``-EINVAL``: the tap counts ``rx_frame_errors`` and drops the frame.

Host → guest (:func:`virtio_net_hdr_from_skb`, "LRO to guests"): a GSO packet (a GRO
result, a local TSO packet) becomes a GSO header; PARTIAL becomes NEEDS_CSUM;
UNNECESSARY becomes DATA_VALID.
"""
from __future__ import annotations

import errno
import struct
from dataclasses import dataclass

from netstack.core.gso import (SKB_GSO_DODGY, SKB_GSO_TCP_ECN, SKB_GSO_TCPV4, SKB_GSO_TCPV6,
                               SKB_GSO_UDP, SKB_GSO_UDP_L4)
from netstack.core.skb_csum import skb_partial_csum_set
from netstack.packet.errors import ParseError
from netstack.packet.skb import CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, UNSET, Packet

VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
VIRTIO_NET_HDR_F_DATA_VALID = 2
VIRTIO_NET_HDR_F_RSC_INFO = 4
VIRTIO_NET_HDR_F_UDP_TUNNEL_CSUM = 8

VIRTIO_NET_HDR_GSO_NONE = 0
VIRTIO_NET_HDR_GSO_TCPV4 = 1
VIRTIO_NET_HDR_GSO_UDP = 3
VIRTIO_NET_HDR_GSO_TCPV6 = 4
VIRTIO_NET_HDR_GSO_UDP_L4 = 5
VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV4 = 0x20
VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV6 = 0x40
VIRTIO_NET_HDR_GSO_ECN = 0x80

#: ``UDP_MAX_SEGMENTS``.
UDP_MAX_SEGMENTS = 1 << 7
#: ``GSO_BY_FRAGS``.
GSO_BY_FRAGS = 0xFFFF

VNET_HDR_LEN = 10
VNET_HDR_MRG_LEN = 12


@dataclass
class VirtioNetHdr:
    """``struct virtio_net_hdr`` (+ ``num_buffers`` when 12 bytes)."""

    flags: int = 0
    gso_type: int = 0
    hdr_len: int = 0
    gso_size: int = 0
    csum_start: int = 0
    csum_offset: int = 0
    num_buffers: int = 0

    def pack(self, size: int = VNET_HDR_LEN, little_endian: bool = True) -> bytes:
        """Wire bytes; ``size`` 10 or 12, anything beyond zero-filled (as tun does)."""
        e = "<" if little_endian else ">"
        b = struct.pack(e + "BBHHHH", self.flags, self.gso_type, self.hdr_len, self.gso_size,
                        self.csum_start, self.csum_offset)
        if size >= VNET_HDR_MRG_LEN:
            b += struct.pack(e + "H", self.num_buffers)
        return b + bytes(max(0, size - len(b)))

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview, size: int = VNET_HDR_LEN,
               little_endian: bool = True) -> "VirtioNetHdr":
        """Parse; ParseError(PKT_TOO_SMALL) if shorter than ``size``."""
        if len(data) < size or size < VNET_HDR_LEN:
            raise ParseError("PKT_TOO_SMALL", "virtio_net_hdr truncated")
        e = "<" if little_endian else ">"
        f, g, hl, gs, cs, co = struct.unpack_from(e + "BBHHHH", data, 0)
        nb = struct.unpack_from(e + "H", data, 10)[0] if size >= VNET_HDR_MRG_LEN else 0
        return cls(f, g, hl, gs, cs, co, nb)


def virtio_net_hdr_set_proto(pkt: Packet, hdr: VirtioNetHdr) -> int:
    """``virtio_net_hdr_set_proto``: guess the protocol from the GSO type."""
    if pkt.protocol:
        return 0
    g = hdr.gso_type & ~VIRTIO_NET_HDR_GSO_ECN
    if g in (VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_UDP, VIRTIO_NET_HDR_GSO_UDP_L4):
        pkt.protocol = 0x0800
    elif g == VIRTIO_NET_HDR_GSO_TCPV6:
        pkt.protocol = 0x86DD
    else:
        return -errno.EINVAL
    return 0


def virtio_net_hdr_to_skb(pkt: Packet, hdr: VirtioNetHdr, nh_present: bool = False) -> int:
    """``virtio_net_hdr_to_skb`` with ``pkt.data`` at the frame's first byte (the MAC
    header for a tap).  Returns 0 or ``-EINVAL``; on success the packet carries the
    checksum and GSO state the header asked for.

    ``nh_present`` is ``skb->network_header != 0`` — false for a tap (the header is read
    before ``eth_type_trans``), which makes a GSO frame without NEEDS_CSUM be checked only
    for room for a minimal network + transport header, as the kernel does."""
    nh_min_len = 20
    gso_type = 0
    thlen = 0
    p_off = 0
    ip_proto = 0
    g = hdr.gso_type
    if g != VIRTIO_NET_HDR_GSO_NONE:
        base = g & ~VIRTIO_NET_HDR_GSO_ECN
        if base == VIRTIO_NET_HDR_GSO_TCPV4:
            gso_type, ip_proto, thlen = SKB_GSO_TCPV4, 6, 20
        elif base == VIRTIO_NET_HDR_GSO_TCPV6:
            gso_type, ip_proto, thlen = SKB_GSO_TCPV6, 6, 20
            nh_min_len = 40
        elif base == VIRTIO_NET_HDR_GSO_UDP:
            gso_type, ip_proto, thlen = SKB_GSO_UDP, 17, 8
        elif base == VIRTIO_NET_HDR_GSO_UDP_L4:
            gso_type, ip_proto, thlen = SKB_GSO_UDP_L4, 17, 8
        else:
            return -errno.EINVAL
        if g & VIRTIO_NET_HDR_GSO_ECN:
            gso_type |= SKB_GSO_TCP_ECN
        if hdr.gso_size == 0:
            return -errno.EINVAL
    pkt.mac_header = pkt.data
    if hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM:
        start = hdr.csum_start
        off = hdr.csum_offset
        needed = start + max(thlen, off + 2)
        if not pkt.may_pull(needed):
            return -errno.EINVAL
        if not skb_partial_csum_set(pkt, start, off):
            return -errno.EINVAL
        if pkt.transport_header - pkt.data < nh_min_len:
            return -errno.EINVAL
        nh_min_len = pkt.transport_header - pkt.data
        p_off = nh_min_len + thlen
        if not pkt.may_pull(p_off):
            return -errno.EINVAL
    elif gso_type and nh_present:
        r = _probe_transport(pkt, hdr, gso_type, ip_proto, thlen)
        if r < 0:
            return r
        p_off = r
    elif gso_type:
        p_off = nh_min_len + thlen
        if not pkt.may_pull(p_off):
            return -errno.EINVAL
    if hdr.gso_size:
        gso_size = hdr.gso_size
        nh_off = p_off
        kind = gso_type & ~SKB_GSO_TCP_ECN
        if kind == SKB_GSO_UDP:
            nh_off -= thlen
        elif kind == SKB_GSO_UDP_L4:
            if not hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM:
                return -errno.EINVAL
            if pkt.csum_offset != 6:
                return -errno.EINVAL
            if len(pkt) - p_off > gso_size * UDP_MAX_SEGMENTS:
                return -errno.EINVAL
            if gso_type != SKB_GSO_UDP_L4:
                return -errno.EINVAL
        elif kind in (SKB_GSO_TCPV4, SKB_GSO_TCPV6):
            if pkt.ip_summed == CHECKSUM_PARTIAL and pkt.csum_offset != 16:
                return -errno.EINVAL
        if gso_size == GSO_BY_FRAGS:
            return -errno.EINVAL
        if len(pkt) - nh_off > gso_size:
            pkt.gso_size = gso_size
            pkt.gso_type = gso_type | SKB_GSO_DODGY
            pkt.gso_segs = 0
    return 0


def _probe_transport(pkt: Packet, hdr: VirtioNetHdr, gso_type: int, ip_proto: int,
                     thlen: int) -> int:
    """The flow-dissector probe of a GSO frame without NEEDS_CSUM (network header known):
    the transport offset from the IP header, its protocol must be the GSO type's."""
    if not pkt.protocol and virtio_net_hdr_set_proto(pkt, hdr) < 0:
        return -errno.EINVAL
    nh = pkt.network_header
    b = pkt.buf
    if nh == UNSET or pkt.tail - nh < 20:
        return -errno.EINVAL
    if pkt.protocol == 0x0800 and b[nh] >> 4 == 4:
        thoff = nh + (b[nh] & 0x0F) * 4
        proto = b[nh + 9]
    elif pkt.protocol == 0x86DD and b[nh] >> 4 == 6 and pkt.tail - nh >= 40:
        thoff = nh + 40
        proto = b[nh + 6]
    else:
        return -errno.EINVAL
    p_off = thoff - pkt.data + thlen
    if not pkt.may_pull(p_off) or proto != ip_proto:
        return -errno.EINVAL
    pkt.transport_header = thoff
    return p_off


def skb_headlen(pkt: Packet) -> int:
    """The skb's linear part as the kernel would have it for a GSO packet.  netstack's
    skb is one buffer; a driver that knows (tun: ``tun_linear_len``) records where it
    ends in ``pkt.headlen_end`` (absolute, so headers pushed later count); otherwise it
    is the headers (a GRO'd or TSO skb keeps its payload in page fragments): the length
    up to the end of the (inner) L4 header."""
    end = pkt.__dict__.get("headlen_end")
    if end is not None:
        return max(0, min(end - pkt.data, len(pkt)))
    th = pkt.inner_transport_header if pkt.encapsulation else pkt.transport_header
    if th == UNSET or th < pkt.data:
        return len(pkt)
    b = pkt.buf
    if pkt.gso_type & (SKB_GSO_TCPV4 | SKB_GSO_TCPV6) and pkt.tail - th >= 20:
        return th - pkt.data + (b[th + 12] >> 4) * 4
    if pkt.gso_type & SKB_GSO_UDP_L4:
        return th - pkt.data + 8
    return len(pkt)


def virtio_net_hdr_from_skb(pkt: Packet, has_data_valid: bool = True,
                            vlan_hlen: int = 0) -> "VirtioNetHdr | int":
    """``virtio_net_hdr_from_skb``: the header for handing ``pkt`` (``data`` at the MAC
    header) to a guest; ``-EINVAL`` for a GSO type the header cannot express."""
    hdr = VirtioNetHdr()
    if pkt.gso_size:
        hdr.hdr_len = skb_headlen(pkt)
        hdr.gso_size = pkt.gso_size
        gt = pkt.gso_type
        if gt & SKB_GSO_TCPV4:
            hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4
        elif gt & SKB_GSO_TCPV6:
            hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV6
        elif gt & SKB_GSO_UDP_L4:
            hdr.gso_type = VIRTIO_NET_HDR_GSO_UDP_L4
        else:
            return -errno.EINVAL
        if gt & SKB_GSO_TCP_ECN:
            hdr.gso_type |= VIRTIO_NET_HDR_GSO_ECN
    if pkt.ip_summed == CHECKSUM_PARTIAL:
        hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM
        hdr.csum_start = pkt.csum_start - pkt.data + vlan_hlen
        hdr.csum_offset = pkt.csum_offset
    elif has_data_valid and pkt.ip_summed == CHECKSUM_UNNECESSARY:
        hdr.flags = VIRTIO_NET_HDR_F_DATA_VALID
    return hdr
