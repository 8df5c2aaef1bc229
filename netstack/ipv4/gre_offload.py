"""GRE segmentation and coalescing (net/ipv4/gre_offload.c, Linux 6.18; registered for
both IPv4 and IPv6 as the kernel's ``gre_offload_init`` does).

GSO (:func:`gre_gso_segment`): the inner packet (``inner_protocol``: IPv4, IPv6 or
Ethernet for gretap) is segmented by its own layers; with SKB_GSO_GRE_CSUM every segment's
GRE checksum is computed over GRE header + payload from the per-segment running sum (or
left to a device with ``tx-checksum-ip-generic`` as the packet's one PARTIAL checksum).
A tunnel with output sequence numbers never asks for GSO (its device has no GSO
features), since the sequence number is a per-segment field.

GRO (:func:`gre_gro_receive`): version 0 with only the K and C flags; the same flags,
protocol and key make the same tunnel; C is not supported under FOU/GUE; the checksum is
verified and converted to a running sum.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from netstack.core.gso import (SKB_GSO_GRE, SKB_GSO_GRE_CSUM, SKB_GSO_PARTIAL, GsoCb,
                               GsoError, gso_make_checksum, hw_enc_features, put16,
                               skb_mac_gso_segment)
from netstack.packet.skb import CHECKSUM_PARTIAL, Packet

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.gro import Napi

GRE_CSUM = 0x8000
GRE_ROUTING = 0x4000
GRE_KEY = 0x2000
GRE_SEQ = 0x1000
GRE_HEADER_SECTION = 4


def gre_gso_segment(pkt: Packet, features: frozenset[str], cb: GsoCb) -> list[Packet] | None:
    """``gre_gso_segment``."""
    if not pkt.encapsulation:
        raise GsoError(errno.EINVAL, "GRE GSO without encapsulation")
    gh = pkt.transport_header
    tnl_hlen = pkt.inner_mac_header - gh
    if tnl_hlen < 4 or not pkt.may_pull(tnl_hlen):
        raise GsoError(errno.EINVAL, "GRE header")
    mac_offset = pkt.mac_header
    mac_len = pkt.network_header - pkt.mac_header
    protocol = pkt.protocol
    pkt.encapsulation = False
    cb.encap_level = 0
    pkt.data += tnl_hlen
    pkt.mac_header = pkt.data
    pkt.network_header = pkt.inner_network_header
    pkt.protocol = pkt.inner_protocol
    need_csum = bool(pkt.gso_type & SKB_GSO_GRE_CSUM)
    pkt.encap_hdr_csum = need_csum
    features = features & hw_enc_features(cb.dev)
    if need_csum:
        features = features - {"tx-checksum-sctp"}
    dev_features = cb.dev.features if cb.dev is not None else set()
    offload_csum = need_csum and "tx-checksum-ip-generic" in dev_features
    try:
        segs = skb_mac_gso_segment(pkt, features, cb)
    except GsoError:
        _unwind(pkt, protocol, tnl_hlen, mac_offset, gh)
        raise
    if segs is None:
        _unwind(pkt, protocol, tnl_hlen, mac_offset, gh)
        return None
    gso_partial = bool(segs[0].gso_type & SKB_GSO_PARTIAL)
    outer_hlen = pkt.mac_header - mac_offset
    gre_offset = outer_hlen - tnl_hlen
    for i, seg in enumerate(segs):
        if seg.ip_summed == CHECKSUM_PARTIAL:
            seg.inner_mac_header = seg.mac_header
            seg.inner_network_header = seg.network_header
            seg.inner_transport_header = seg.transport_header
            seg.encapsulation = True
        seg.protocol = protocol
        seg.data -= outer_hlen
        seg.mac_header = seg.data
        seg.network_header = seg.data + mac_len
        seg.transport_header = seg.data + gre_offset
        if not need_csum:
            continue
        sb = seg.buf
        pc = seg.transport_header + 4
        if gso_partial and seg.gso_size:
            adj = (seg.tail - seg.data) + (seg.data - seg.head) - cb.data_offset[i] - seg.gso_size
            put16(sb, pc, (adj % 0xFFFF) or 0xFFFF)
        else:
            put16(sb, pc, 0)
        put16(sb, pc + 2, 0)
        if seg.encapsulation or not offload_csum:
            put16(sb, pc, gso_make_checksum(seg, cb, i, 0))
        else:
            seg.ip_summed = CHECKSUM_PARTIAL
            seg.csum_start = seg.transport_header
            seg.csum_offset = 4
    return segs


def _unwind(pkt: Packet, protocol: int, tnl_hlen: int, mac_offset: int, th: int) -> None:
    pkt.protocol = protocol
    pkt.encapsulation = True
    pkt.data -= tnl_hlen
    pkt.transport_header = th
    pkt.mac_header = mac_offset


def gre_gro_receive(napi: "Napi", head: list[Packet], pkt: Packet) -> Packet | None:
    """``gre_gro_receive``."""
    from netstack.core.gro import (call_gro_receive, gro_receive_by_type,
                                   null_gro_compute_pseudo, skb_gro_checksum_simple_validate,
                                   skb_gro_checksum_try_convert, skb_gro_postpull_rcsum,
                                   skb_gro_pull)
    cbp = pkt.cb
    if cbp.encap_mark:
        cbp.flush |= 1
        return None
    cbp.encap_mark = True
    off = cbp.off
    b = pkt.buf
    if pkt.tail - off < 4:
        cbp.flush |= 1
        return None
    flags = (b[off] << 8) | b[off + 1]
    if flags & ~(GRE_KEY | GRE_CSUM) & 0xFFFF:
        cbp.flush |= 1
        return None
    if flags & GRE_CSUM and cbp.is_fou:
        cbp.flush |= 1
        return None
    ptype = (b[off + 2] << 8) | b[off + 3]
    fn = gro_receive_by_type(ptype)
    if fn is None:
        cbp.flush |= 1
        return None
    grehlen = 4 + (4 if flags & GRE_KEY else 0) + (4 if flags & GRE_CSUM else 0)
    if pkt.tail - off < grehlen:
        cbp.flush |= 1
        return None
    if flags & GRE_CSUM and not cbp.flush:
        if skb_gro_checksum_simple_validate(napi, pkt):
            cbp.flush |= 1
            return None
        skb_gro_checksum_try_convert(pkt, 47, null_gro_compute_pseudo)
    rel = off - pkt.data
    hdr = bytes(b[off:off + 4])
    key_off = 8 if flags & GRE_CSUM else 4
    key = bytes(b[off + key_off:off + key_off + 4]) if flags & GRE_KEY else b""
    for p in head:
        pc = p.cb
        if not pc.same_flow:
            continue
        o2 = p.data + rel
        pb = p.buf
        if bytes(pb[o2:o2 + 4]) != hdr:
            pc.same_flow = False
            continue
        if key and bytes(pb[o2 + key_off:o2 + key_off + 4]) != key:
            pc.same_flow = False
    skb_gro_pull(pkt, grehlen)
    skb_gro_postpull_rcsum(pkt, off, grehlen)
    return call_gro_receive(fn, napi, head, pkt)


def gre_gro_complete(napi: "Napi", pkt: Packet, nhoff: int) -> int:
    """``gre_gro_complete``: SKB_GSO_GRE (the kernel does not add GRE_CSUM here), the
    inner layers completed, the inner MAC header recorded."""
    from netstack.core.gro import gro_complete_by_type
    b = pkt.buf
    pkt.encapsulation = True
    pkt.gso_type = SKB_GSO_GRE
    flags = (b[nhoff] << 8) | b[nhoff + 1]
    grehlen = 4 + (4 if flags & GRE_KEY else 0) + (4 if flags & GRE_CSUM else 0)
    fn = gro_complete_by_type((b[nhoff + 2] << 8) | b[nhoff + 3])
    err = fn(napi, pkt, nhoff + grehlen) if fn is not None else -errno.ENOENT
    pkt.inner_mac_header = nhoff + grehlen
    return err



