"""VXLAN ARP/ND proxy, route short circuit and miss notifications
(drivers/net/vxlan/vxlan_core.c: ``arp_reduce``, ``neigh_reduce``, ``vxlan_na_create``,
``route_shortcircuit``, ``vxlan_fdb_miss``, ``vxlan_ip_miss``; Linux 6.18).

Why here: with ``proxy`` (VXLAN_F_PROXY) a VXLAN device answers ARP requests and IPv6
neighbour solicitations *it is asked to transmit* from the namespace's neighbour table
entries **on the VXLAN device itself** (an EVPN control plane fills them), so that no
broadcast crosses the tunnel.  The reply is handed to ``netif_rx`` on the VXLAN device (so
a bridge it is enslaved to forwards it to the asker); the request is always consumed, never
tunnelled — measured: an ARP for an unknown address does not reach the remote either.

``rsc`` (VXLAN_F_RSC): a frame for a MAC whose FDB entry is a ``router`` entry is
re-addressed to the inner destination IP's neighbour (source = the router MAC, destination
= the neighbour's address) and looked up again, so routed traffic skips the router hop.

``l2miss`` / ``l3miss``: the kernel sends an RTM_GETNEIGH netlink notification
(``vxlan_fdb_miss`` — a fake FDB entry with the MAC; ``vxlan_ip_miss`` — a fake STALE
neighbour with the IP) so that a user-space agent can install the entry.  netstack has no
netlink multicast listeners: each notification is recorded on the device
(``VxlanDevice.misses``: ``("l2miss", mac)`` / ``("l3miss", ip)``), counted in
``extra_stats["l2miss"|"l3miss"]`` and emitted as a trace event; nothing else happens,
as on the kernel (the packet's fate does not depend on the notification).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.packet.checksum import csum_ipv6_magic, csum_partial

if TYPE_CHECKING:  # pragma: no cover
    from netstack.drivers.vxlan.device import VxlanDevice
    from netstack.packet.skb import Packet

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ARPHRD_ETHER = 1
ARPHRD_IEEE802 = 6
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
IPPROTO_ICMPV6 = 58
NDISC_NEIGHBOUR_SOLICITATION = 135
NDISC_NEIGHBOUR_ADVERTISEMENT = 136
ND_OPT_SOURCE_LL_ADDR = 1
ND_OPT_TARGET_LL_ADDR = 2
#: include/net/neighbour.h NUD_CONNECTED = PERMANENT | NOARP | REACHABLE
NUD_CONNECTED = 0x80 | 0x40 | 0x02
NTF_ROUTER = 0x80
IFF_NOARP = 0x80
CHECKSUM_UNNECESSARY = 1


def vxlan_miss(dev: "VxlanDevice", kind: str, key: bytes) -> None:
    """``vxlan_fdb_miss`` / ``vxlan_ip_miss``: the RTM_GETNEIGH notification, recorded."""
    dev.misses.append((kind, key))
    dev.extra_stats[kind] = dev.extra_stats.get(kind, 0) + 1


def _trace(pkt: "Packet", what: str, info: str) -> None:
    if pkt.trace is not None:
        pkt.trace.event(pkt, what, info=info)


def _bridge_local(dev: "VxlanDevice", ha: bytes) -> bool:
    """The neighbour's MAC has an FDB entry whose first remote is the any address: a
    bridge-local neighbour, which the proxy must not answer for."""
    f = dev.fdb.lookup_tx(ha, dev.cfg.vni)
    return f is not None and bool(f.remotes) and not any(f.remotes[0].ip)


def arp_reduce(dev: "VxlanDevice", pkt: "Packet") -> None:
    """``arp_reduce``: answer an ARP request from a CONNECTED neighbour entry on ``dev``;
    the request itself is always consumed."""
    from netstack.core.neighbour import neigh_lookup
    from netstack.core.drop_reason import kfree_skb_reason
    net = dev.net
    assert net is not None
    if dev.flags & IFF_NOARP:
        return
    # pskb_may_pull(skb, arp_hdr_len(dev)) with skb->data at the Ethernet header
    if pkt.tail - pkt.data < 8 + 2 * (6 + 4):
        dev.stats.tx_dropped += 1
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
        return
    o = pkt.network_header
    b = pkt.buf
    if pkt.tail - o < 28:
        return
    hrd = b[o] << 8 | b[o + 1]
    pro = b[o + 2] << 8 | b[o + 3]
    op = b[o + 6] << 8 | b[o + 7]
    if hrd not in (ARPHRD_ETHER, ARPHRD_IEEE802) or pro != ETH_P_IP or \
            op != ARPOP_REQUEST or b[o + 4] != 6 or b[o + 5] != 4:
        return
    sha = bytes(b[o + 8:o + 14])
    sip = bytes(b[o + 14:o + 18])
    tip = bytes(b[o + 24:o + 28])
    if tip[0] == 127 or 224 <= tip[0] <= 239:
        return
    tbl = getattr(net.ipv4, "arp_tbl", None)
    n = neigh_lookup(tbl, dev, tip) if tbl is not None else None
    if n is not None:
        if not n.nud_state & NUD_CONNECTED:
            return
        if _bridge_local(dev, n.ha):
            return
        from netstack.ipv4.arp import arp_create
        reply = arp_create(ARPOP_REPLY, ETH_P_ARP, sip, dev, tip, sha, n.ha, sha)
        reply.data = reply.network_header
        reply.ip_summed = CHECKSUM_UNNECESSARY
        reply.pkt_type = 0  # PACKET_HOST
        _trace(pkt, "vxlan_arp_reduce", f"reply for {'.'.join(map(str, tip))}")
        from netstack.core.dev import netif_rx
        netif_rx(reply)
    elif dev.cfg.l3miss:
        vxlan_miss(dev, "l3miss", tip)
        _trace(pkt, "vxlan_ip_miss", ".".join(map(str, tip)))


def ns_is_candidate(pkt: "Packet") -> bool:
    """``vxlan_xmit``'s test before ``neigh_reduce``: at least an IPv6 header and an
    ``nd_msg`` past ``skb->data`` (the Ethernet header — the kernel's pull length), next
    header ICMPv6 (no extension headers), type NS, code 0."""
    o = pkt.network_header
    b = pkt.buf
    return (pkt.tail - pkt.data >= 40 + 24 and pkt.tail - o >= 42 and
            b[o + 6] == IPPROTO_ICMPV6 and b[o + 40] == NDISC_NEIGHBOUR_SOLICITATION and
            b[o + 41] == 0)


def neigh_reduce(dev: "VxlanDevice", pkt: "Packet") -> None:
    """``neigh_reduce``: answer a neighbour solicitation from a CONNECTED ``nd_tbl``
    entry on ``dev`` with a solicited, override NA (router flag from the FDB entry of the
    neighbour's MAC); the solicitation is always consumed."""
    from netstack.core.neighbour import neigh_lookup
    net = dev.net
    assert net is not None
    if dev.ip6_ptr is None:
        return
    o = pkt.network_header
    b = pkt.buf
    if pkt.tail - o < 40 + 24:
        return
    daddr = bytes(b[o + 24:o + 40])
    target = bytes(b[o + 48:o + 64])
    if daddr == bytes(15) + b"\x01" or target[0] == 0xFF:
        return
    tbl = getattr(net.ipv6, "nd_tbl", None)
    n = neigh_lookup(tbl, dev, target) if tbl is not None else None
    if n is not None:
        if not n.nud_state & NUD_CONNECTED:
            return
        f = dev.fdb.lookup_tx(n.ha, dev.cfg.vni)
        if f is not None and f.remotes and not any(f.remotes[0].ip):
            return
        reply = vxlan_na_create(dev, pkt, n.ha, target,
                                bool(f is not None and f.flags & NTF_ROUTER))
        if reply is None:
            return
        _trace(pkt, "vxlan_neigh_reduce", "NA")
        from netstack.core.dev import netif_rx
        netif_rx(reply)
    elif dev.cfg.l3miss:
        vxlan_miss(dev, "l3miss", target)
        _trace(pkt, "vxlan_ip_miss", target.hex())


def vxlan_na_create(dev: "VxlanDevice", req: "Packet", ha: bytes, target: bytes,
                    isrouter: bool) -> "Packet | None":
    """``vxlan_na_create``: Ethernet to the NS's source link-layer option (else its
    Ethernet source) from the neighbour's MAC; IPv6 with the request's priority nibble,
    hop limit 255, from the target to the request's source; NA (S, O, R per the FDB) with
    a target link-layer option.  A zero-length option makes the kernel give up (no reply).
    """
    net = dev.net
    assert net is not None
    o = req.network_header
    b = req.buf
    daddr_mac = bytes(b[req.mac_header + 6:req.mac_header + 12])
    ns_olen = (req.tail - req.data) - (o - req.data) - 40 - 24
    opt = o + 40 + 24
    i = 0
    while i < ns_olen - 1:
        ln = b[opt + i + 1]
        if not ln:
            return None
        if b[opt + i] == ND_OPT_SOURCE_LL_ADDR:
            daddr_mac = bytes(b[opt + i + 2:opt + i + 8])
            break
        i += ln << 3
    saddr = bytes(b[o + 8:o + 24])
    flags = 0x20 | 0x40 | (0x80 if isrouter else 0)
    na = bytearray(bytes((NDISC_NEIGHBOUR_ADVERTISEMENT, 0, 0, 0, flags, 0, 0, 0)) + target +
                   bytes((ND_OPT_TARGET_LL_ADDR, 1)) + ha)
    csum = csum_ipv6_magic(target, saddr, len(na), IPPROTO_ICMPV6, csum_partial(bytes(na)))
    na[2:4] = csum.to_bytes(2, "big")
    ip6 = bytes((0x60 | (b[o] & 0x0F), 0, 0, 0)) + len(na).to_bytes(2, "big") + \
        bytes((IPPROTO_ICMPV6, 255)) + target + saddr
    frame = daddr_mac + ha + ETH_P_IPV6.to_bytes(2, "big") + ip6 + bytes(na)
    reply = net.world.new_packet(frame)
    reply.mac_header = reply.data
    reply.network_header = reply.data + 14
    reply.data = reply.network_header
    reply.dev = dev
    reply.protocol = ETH_P_IPV6
    reply.ip_summed = CHECKSUM_UNNECESSARY
    return reply


def route_shortcircuit(dev: "VxlanDevice", pkt: "Packet") -> bool:
    """``route_shortcircuit``: look the inner destination IP up in the neighbour table on
    ``dev`` (any state); when its MAC differs from the frame's destination, the frame is
    re-addressed (source = old destination, destination = the neighbour) → True.  No
    neighbour with ``l3miss`` → an l3miss notification."""
    from netstack.core.neighbour import neigh_lookup
    net = dev.net
    assert net is not None
    m = pkt.mac_header
    b = pkt.buf
    if b[m] & 1:
        return False
    proto = b[m + 12] << 8 | b[m + 13]
    o = pkt.network_header
    if proto == ETH_P_IP:
        if pkt.tail - pkt.data < 20 or pkt.tail - o < 20:
            return False
        ip = bytes(b[o + 16:o + 20])
        tbl = getattr(net.ipv4, "arp_tbl", None)
    elif proto == ETH_P_IPV6:
        if pkt.tail - pkt.data < 40 or pkt.tail - o < 40:
            return False
        ip = bytes(b[o + 24:o + 40])
        tbl = getattr(net.ipv6, "nd_tbl", None)
    else:
        return False
    n = neigh_lookup(tbl, dev, ip) if tbl is not None else None
    if n is None:
        if dev.cfg.l3miss:
            vxlan_miss(dev, "l3miss", ip)
            _trace(pkt, "vxlan_ip_miss", ip.hex())
        return False
    if bytes(b[m:m + 6]) == n.ha:
        return False
    b[m + 6:m + 12] = b[m:m + 6]
    b[m:m + 6] = n.ha
    _trace(pkt, "vxlan_route_shortcircuit", n.ha.hex(":"))
    return True


__all__ = ["arp_reduce", "neigh_reduce", "route_shortcircuit", "vxlan_miss",
           "vxlan_na_create", "ns_is_candidate"]
