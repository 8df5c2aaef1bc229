"""VXLAN receive (drivers/net/vxlan/vxlan_core.c ``vxlan_rcv``, ``vxlan_remcsum``,
``vxlan_parse_gbp_hdr``, ``vxlan_set_mac``; Linux 6.18).

Called as the UDP tunnel socket's ``encap_rcv`` with ``pkt.data`` at the UDP header
(the outer checksum already validated by ``udp_queue_rcv_one_skb``).  The checks, in the
kernel's order, each a counted drop with the kernel's reason:

1. UDP + VXLAN header present (PKT_TOO_SMALL);
2. the I flag set (VXLAN_INVALID_HDR);
3. a device for the VNI on this socket (VXLAN_VNI_NOT_FOUND);
4. no bits beyond those the device enables — I flag and VNI, plus RCO with
   ``remcsumrx``, plus the GBP bits with ``gbp`` (VXLAN_INVALID_HDR; the kernel is stricter
   than RFC 7348, which says to ignore reserved bits);
5. pull UDP+VXLAN (``__iptunnel_pull_header``);
6. remote checksum offload (``vxlan_remcsum`` → ``skb_remcsum_process``, PARTIAL by
   default, a real checksum write with ``remcsum_nopartial``);
7. GBP: the policy goes to ``skb->mark``;
8. ``vxlan_set_mac``: ``eth_type_trans`` on the vxlan device, a frame with our own
   source MAC (LOCAL_MAC) or an invalid one (MAC_INVALID_SOURCE) is dropped, learning;
9. RFC 6040 ECN decapsulation (IP_TUNNEL_ECN, rx_frame_errors);
10. the device must be up (DEV_READY); then it is received on the vxlan device.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.core.dev import netif_rx
from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.eth import eth_type_trans
from netstack.core.skb_csum import skb_postpull_rcsum, skb_remcsum_process
from netstack.ipv4.ip_tunnel_core import ecn_decapsulate, iptunnel_pull_header

if TYPE_CHECKING:  # pragma: no cover
    from netstack.ipv4.udp_tunnel import UdpTunnelSock
    from netstack.packet.skb import Packet

VXLAN_HLEN = 16
VXLAN_HF_VNI = 0x08000000
VXLAN_HF_RCO = 0x00200000
VXLAN_HF_GBP = 0x80000000
VXLAN_GBP_DONT_LEARN = 0x400000
VXLAN_GBP_POLICY_APPLIED = 0x080000
VXLAN_GBP_USED_BITS = VXLAN_HF_GBP | VXLAN_GBP_DONT_LEARN | VXLAN_GBP_POLICY_APPLIED
VXLAN_RCO_MASK = 0x7F
VXLAN_RCO_UDP = 0x80
ETH_P_TEB = 0x6558


def reserved_bits(cfg: object) -> tuple[int, int]:
    """``vxlan->cfg.reserved_bits`` (6.15+): the (flags word, VNI word) bits that make a
    header invalid for this device."""
    flags_ok = VXLAN_HF_VNI
    vni_ok = 0xFFFFFF00
    if getattr(cfg, "remcsum_rx"):
        flags_ok |= VXLAN_HF_RCO
        vni_ok |= 0xFF
    if getattr(cfg, "gbp"):
        flags_ok |= VXLAN_GBP_USED_BITS | 0xFFFF
    return ~flags_ok & 0xFFFFFFFF, ~vni_ok & 0xFFFFFFFF


def vxlan_rcv(sock: "UdpTunnelSock", pkt: "Packet") -> int:
    """``vxlan_rcv``; always returns 0 (consumed or dropped here)."""
    vs = sock.user_data
    net = sock.net
    d = pkt.data
    if pkt.tail - d < VXLAN_HLEN:
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
        return 0
    b = pkt.buf
    flags = int.from_bytes(b[d + 8:d + 12], "big")
    vni_word = int.from_bytes(b[d + 12:d + 16], "big")
    if not flags & VXLAN_HF_VNI:
        kfree_skb_reason(pkt, "VXLAN_INVALID_HDR", net)
        return 0
    vni = vni_word >> 8
    vxlan = vs.devs.get(vni) if vs is not None else None
    if vxlan is None:
        kfree_skb_reason(pkt, "VXLAN_VNI_NOT_FOUND", net)
        return 0
    cfg = vxlan.cfg
    rf, rv = reserved_bits(cfg)
    if flags & rf or vni_word & rv:
        vxlan.stats.rx_errors += 1
        _count(vxlan, "rx_frame_errors")
        kfree_skb_reason(pkt, "VXLAN_INVALID_HDR", net)
        return 0
    oiph = pkt.network_header
    outer_family = 4 if (b[oiph] >> 4) == 4 else 6
    if outer_family == 4:
        outer_tos = b[oiph + 1]
        src_ip = bytes(b[oiph + 12:oiph + 16])
    else:
        outer_tos = ((b[oiph] & 0x0F) << 4) | (b[oiph + 1] >> 4)
        src_ip = bytes(b[oiph + 8:oiph + 24])
    xnet = vxlan.net is not net
    if not iptunnel_pull_header(pkt, VXLAN_HLEN, ETH_P_TEB, False, xnet):
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
        return 0
    inner = pkt.data
    if cfg.remcsum_rx and flags & VXLAN_HF_RCO and not pkt.__dict__.get("remcsum_offload"):
        start = (vni_word & VXLAN_RCO_MASK) << 1
        offset = start + (6 if vni_word & VXLAN_RCO_UDP else 16)
        if pkt.tail - inner < offset + 2:
            kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
            return 0
        skb_remcsum_process(pkt, inner, start, offset, cfg.remcsum_nopartial)
    if cfg.gbp and flags & VXLAN_HF_GBP:
        md = flags & 0xFFFF
        if flags & VXLAN_GBP_DONT_LEARN:
            md |= VXLAN_GBP_DONT_LEARN
        if flags & VXLAN_GBP_POLICY_APPLIED:
            md |= VXLAN_GBP_POLICY_APPLIED
        pkt.mark = md
    # vxlan_set_mac
    dev_in_ifindex = pkt.dev.ifindex if pkt.dev is not None else 0
    start = pkt.data
    pkt.protocol = eth_type_trans(pkt, vxlan)
    skb_postpull_rcsum(pkt, start, 14)
    src_mac = bytes(b[start + 6:start + 12])
    if src_mac == vxlan.address:
        kfree_skb_reason(pkt, "LOCAL_MAC", net)
        return 0
    if src_mac[0] & 1 or not any(src_mac):
        kfree_skb_reason(pkt, "MAC_INVALID_SOURCE", net)
        return 0
    if cfg.learning:
        reason = vxlan.fdb.snoop(src_ip, src_mac, dev_in_ifindex, vni)
        if reason is not None:
            kfree_skb_reason(pkt, reason, net)
            return 0
    pkt.network_header = pkt.data
    if not ecn_decapsulate(pkt, outer_tos):
        _count(vxlan, "rx_frame_errors")
        vxlan.stats.rx_errors += 1
        kfree_skb_reason(pkt, "IP_TUNNEL_ECN", net)
        return 0
    if not vxlan.is_up:
        vxlan.stats.rx_dropped += 1
        kfree_skb_reason(pkt, "DEV_READY", net)
        return 0
    vxlan.stats.rx_packets += 1
    vxlan.stats.rx_bytes += pkt.tail - pkt.data
    pkt.transport_header = -1
    if pkt.trace is not None:
        pkt.trace.event(pkt, "vxlan_rcv", info=f"vni={vni} dev={vxlan.name}")
    # gro_cells_receive: queued for the vxlan device's own NAPI poll
    netif_rx(pkt)
    return 0


def _count(dev: object, name: str) -> None:
    """Error counters that ``LinkStats`` does not carry are kept on the device."""
    extra = dev.__dict__.setdefault("extra_stats", {})
    extra[name] = extra.get(name, 0) + 1
