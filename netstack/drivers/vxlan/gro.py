"""UDP tunnel GRO for VXLAN (drivers/net/vxlan/vxlan_core.c ``vxlan_gro_receive``,
``vxlan_gro_complete``), called by :mod:`netstack.ipv4.udp_offload` through the tunnel
socket's ``gro_receive``/``gro_complete`` once the outer UDP header is pulled.

Held packets stay the same flow only with identical VXLAN flags and VNI words; the inner
Ethernet frame goes on to ``eth_gro_receive``.  A VXLAN-RCO packet on a ``remcsumrx``
socket goes through ``vxlan_gro_remcsum`` (only with a validated outer checksum, else it
is flushed): the default mode marks ``gro_remcsum_start`` so the inner TCP/UDP GRO skips
the unfinished checksum; ``nopartial`` writes the real checksum for the inner GRO and
undoes it afterwards (``skb_gro_flush_final_remcsum``).
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
    from netstack.ipv4.udp_tunnel import (GroRemcsum, skb_gro_remcsum_cleanup,
                                          skb_gro_remcsum_process, udp_tunnel_gro_hdr_flows)
    vs = sock.user_data
    grc = GroRemcsum()
    skb_gro_postpull_rcsum(pkt, off, 8)
    flags = int.from_bytes(b[off:off + 4], "big")
    vni_field = int.from_bytes(b[off + 4:off + 8], "big")
    # vs->flags & VXLAN_F_REMCSUM_RX (the socket's receive flags: remcsumrx, nopartial)
    if flags & VXLAN_HF_RCO and vs.flags[1] and not pkt.__dict__.get("remcsum_offload"):
        start = (vni_field & 0x7F) << 1
        offset = start + (6 if vni_field & 0x80 else 16)
        if not cbp.csum_valid or not skb_gro_remcsum_process(pkt, off, 8, start, offset, grc,
                                                             bool(vs.flags[2])):
            cbp.flush |= 1
            return None
    skb_gro_pull(pkt, 8)
    udp_tunnel_gro_hdr_flows(head, pkt, off, 8)
    pp = call_gro_receive(eth_gro_receive, napi, head, pkt)
    skb_gro_remcsum_cleanup(pkt, grc)
    return pp


def vxlan_gro_complete(sock: Any, napi: Any, pkt: "Packet", nhoff: int) -> int:
    """``vxlan_gro_complete``: the inner Ethernet header follows the 8-byte header."""
    from netstack.core.gro import eth_gro_complete
    return eth_gro_complete(napi, pkt, nhoff + 8)
