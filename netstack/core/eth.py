"""Ethernet receive classification (net/ethernet/eth.c ``eth_type_trans``).

Sets ``pkt_type`` from the destination MAC (broadcast / multicast / otherhost), records the
MAC header, pulls it, and returns the protocol (the EtherType, or ETH_P_802_3/ETH_P_802_2
for length fields), exactly as the kernel does before handing a frame to the stack.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.packet.skb import (PACKET_BROADCAST, PACKET_HOST, PACKET_MULTICAST,
                                 PACKET_OTHERHOST, Packet)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice

ETH_HLEN = 14
ETH_P_802_3 = 0x0001
ETH_P_802_2 = 0x0004
ETH_P_802_3_MIN = 0x0600
BCAST = b"\xff" * 6


def eth_type_trans(pkt: Packet, dev: "NetDevice") -> int:
    """Classify and pull the Ethernet header; the caller checked ``len(pkt) >= ETH_HLEN``."""
    buf = pkt.buf
    off = pkt.data
    pkt.dev = dev
    pkt.mac_header = off
    pkt.data = off + ETH_HLEN
    dst = buf[off:off + 6]
    if buf[off] & 1:
        pkt.pkt_type = PACKET_BROADCAST if dst == BCAST else PACKET_MULTICAST
    elif dst != dev.address:
        pkt.pkt_type = PACKET_OTHERHOST
    else:
        pkt.pkt_type = PACKET_HOST
    proto = (buf[off + 12] << 8) | buf[off + 13]
    if proto >= ETH_P_802_3_MIN:
        return proto
    # 802.3 length field: raw IPX (0xFFFF) is 802.3, otherwise 802.2 LLC.
    if buf[off + 14:off + 16] == b"\xff\xff":
        return ETH_P_802_3
    return ETH_P_802_2
