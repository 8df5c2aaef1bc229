"""UDP tunnel GRO for VXLAN (drivers/net/vxlan/vxlan_core.c ``vxlan_gro_receive``,
``vxlan_gro_complete``), called by :mod:`netstack.ipv4.udp_offload` through the tunnel
socket's ``gro_receive``/``gro_complete`` once the outer UDP header is pulled.

Held packets stay the same flow only with identical VXLAN flags and VNI words; the inner
Ethernet frame goes on to ``eth_gro_receive``.  Known difference: a VXLAN-RCO packet on a
``remcsumrx`` device is not aggregated (the kernel's ``vxlan_gro_remcsum`` path); it is
flushed and takes the normal receive path, which restores the checksum the same way.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.drivers.vxlan.rcv import VXLAN_HF_RCO

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet


def vxlan_gro_receive(sock: Any, napi: Any, head: list["Packet"], pkt: "Packet") -> Any:
    """``vxlan_gro_receive``/``vxlan_gro_prepare_receive``."""
    from netstack.core.gro import (call_gro_receive, eth_gro_receive, skb_gro_postpull_rcsum,
                                   skb_gro_pull)
    cbp = pkt.cb
    off = cbp.off
    b = pkt.buf
    if pkt.tail - off < 8:
        cbp.flush |= 1
        return None
    vs = sock.user_data
    flags = int.from_bytes(b[off:off + 4], "big")
    if flags & VXLAN_HF_RCO and any(d.cfg.remcsum_rx for d in vs.devs.values()):
        cbp.flush |= 1
        return None
    skb_gro_postpull_rcsum(pkt, off, 8)
    skb_gro_pull(pkt, 8)
    rel = off - pkt.data
    hdr = bytes(b[off:off + 8])
    for p in head:
        pc = p.cb
        if not pc.same_flow:
            continue
        o2 = p.data + rel
        if p.buf[o2:o2 + 8] != hdr:
            pc.same_flow = False
    return call_gro_receive(eth_gro_receive, napi, head, pkt)


def vxlan_gro_complete(sock: Any, napi: Any, pkt: "Packet", nhoff: int) -> int:
    """``vxlan_gro_complete``: the inner Ethernet header follows the 8-byte header."""
    from netstack.core.gro import eth_gro_complete
    return eth_gro_complete(napi, pkt, nhoff + 8)
