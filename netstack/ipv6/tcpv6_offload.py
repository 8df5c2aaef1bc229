"""TCP over IPv6 segmentation and coalescing (net/ipv6/tcpv6_offload.c, Linux 6.18).

The TCP work is :mod:`netstack.ipv4.tcp_offload`'s (``tcp_gso_segment``,
``tcp_gro_receive``, ``tcp_gro_complete``); this layer only checks SKB_GSO_TCPV6, seeds
the IPv6 pseudo-header sum (``__tcp_v6_send_check``) and records SKB_GSO_TCPV6.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from netstack.core.gro import ip6_gro_compute_pseudo, skb_gro_checksum_validate
from netstack.core.gso import SKB_GSO_TCPV6, GsoCb, GsoError, put16
from netstack.ipv4.tcp_offload import (tcp_gro_complete, tcp_gro_pull_header, tcp_gro_receive,
                                        tcp_gso_segment)
from netstack.packet.checksum import pseudo_sum_v6
from netstack.packet.skb import CHECKSUM_PARTIAL, Packet

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.gro import Napi


def tcp6_gso_segment(pkt: Packet, features: frozenset[str], cb: GsoCb) -> list[Packet] | None:
    """``tcp6_gso_segment``."""
    if not pkt.gso_type & SKB_GSO_TCPV6:
        raise GsoError(errno.EINVAL, "not TCPV6")
    if not pkt.may_pull(20):
        raise GsoError(errno.EINVAL, "short TCP header")
    if pkt.ip_summed != CHECKSUM_PARTIAL:
        nh = pkt.network_header
        th = pkt.transport_header
        b = pkt.buf
        pkt.ip_summed = CHECKSUM_PARTIAL
        pkt.csum_start = th
        pkt.csum_offset = 16
        put16(b, th + 16, pseudo_sum_v6(bytes(b[nh + 8:nh + 24]), bytes(b[nh + 24:nh + 40]),
                                        pkt.tail - th, 6))
    return tcp_gso_segment(pkt, features, cb)


def tcp6_gro_receive(napi: "Napi", head: list[Packet], pkt: Packet) -> Packet | None:
    """``tcp6_gro_receive``: checksum (unless flushing), header sanity, then the common
    TCP coalescing."""
    cbp = pkt.cb
    if not cbp.flush and skb_gro_checksum_validate(napi, pkt, 6, ip6_gro_compute_pseudo):
        cbp.flush = 1
        return None
    th = tcp_gro_pull_header(pkt)
    if th < 0:
        cbp.flush = 1
        return None
    return tcp_gro_receive(napi, pkt, th, head)


def tcp6_gro_complete(napi: "Napi", pkt: Packet, thoff: int) -> int:
    """``tcp6_gro_complete``: pseudo seed for the merged length, SKB_GSO_TCPV6."""
    cbp = pkt.cb
    nh = cbp.network_offsets[1 if pkt.encapsulation else 0]
    b = pkt.buf
    put16(b, thoff + 16, pseudo_sum_v6(bytes(b[nh + 8:nh + 24]), bytes(b[nh + 24:nh + 40]),
                                       pkt.tail - thoff, 6))
    pkt.gso_type |= SKB_GSO_TCPV6
    tcp_gro_complete(napi, pkt)
    return 0
