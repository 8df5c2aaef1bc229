"""Bridge proxy ARP / proxy_arp_wifi / neighbour suppression (net/bridge/br_arp_nd_proxy.c).

Why: a bridge port with ``proxy_arp`` answers ARP requests from the bridge's neighbour
table instead of flooding them (RFC 1027 style); ``proxy_arp_wifi`` is the IEEE 802.11
"Proxy ARP" service of Hotspot 2.0 (hostapd sets it on the AP's port and fills the
neighbour table from its snoopers, see netstack/drivers/wireless); ``neigh_suppress``
(EVPN, RFC 7432 §10) answers ARP *and* ND from the table and keeps requests away from
suppressing ports.  All three decide through ``pkt.cb.proxyarp_replied``, which br_flood
reads (br_forward.c): a replied request is not flooded to ports with
``BR_PROXYARP_WIFI`` or neighbour suppression; ports with ``BR_PROXYARP`` never get
flooded ARP at all.

Called by br_input.py ``br_handle_frame_finish`` (and br_device.py for frames the bridge
itself sends, ``port=None``) with ``pkt.data`` at the L3 header and ``pkt.mac_header``
at the Ethernet header, exactly where the kernel calls them.  Behaviour is that of
Linux 6.18, including per-VLAN suppression (``BR_NEIGH_VLAN_SUPPRESS``) and the
``READ_ONCE(f->dst)`` form.  Malformed ARP/ND is never an error here: the kernel just
returns and the frame is bridged normally, so do we.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from netstack.core.neighbour import NTF_ROUTER, NUD_VALID, neigh_lookup
from netstack.drivers.bridge.br_private import (
    BR_NEIGH_SUPPRESS,
    BR_NEIGH_VLAN_SUPPRESS,
    BR_PROXYARP,
    BR_PROXYARP_WIFI,
    BrInputCb,
    br_fdb_find,
)
from netstack.packet.checksum import csum_ipv6_magic, csum_partial
from netstack.packet.constants import (
    ARPOP_REPLY,
    ARPOP_REQUEST,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    IPPROTO_ICMPV6,
    ND_OPT_SOURCE_LL_ADDR,
    ND_OPT_TARGET_LL_ADDR,
    NDISC_NEIGHBOUR_ADVERTISEMENT,
    NDISC_NEIGHBOUR_SOLICITATION,
)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice
    from netstack.drivers.bridge.br_private import NetBridge, NetBridgePort
    from netstack.packet.skb import Packet

__all__ = [
    "NdMsg",
    "br_cb",
    "br_is_neigh_suppress_enabled",
    "br_recalculate_neigh_suppress_enabled",
    "br_do_proxy_suppress_arp",
    "br_is_nd_neigh_msg",
    "br_do_suppress_nd",
]

#: ARPOP_RREQUEST / ARPOP_RREPLY (include/uapi/linux/if_arp.h): RARP operations
ARPOP_RREQUEST = 3
ARPOP_RREPLY = 4
IFF_NOARP = 0x80
VLAN_VID_MASK = 0x0FFF
RT_SCOPE_HOST = 254
ZERO4 = bytes(4)
IPV6_HLEN = 40
#: sizeof(struct nd_msg): icmp6hdr (8 bytes: type, code, checksum, flags word) + target
ND_MSG_LEN = 24
NA_FLAG_ROUTER = 0x80
NA_FLAG_SOLICITED = 0x40
NA_FLAG_OVERRIDE = 0x20


def br_cb(pkt: "Packet") -> BrInputCb:
    """``BR_INPUT_SKB_CB(skb)``: the bridge scratch of ``pkt`` (created when a caller —
    a unit test, the AP model — did not go through br_handle_frame)."""
    cb = pkt.cb
    if not isinstance(cb, BrInputCb):
        cb = BrInputCb()
        pkt.cb = cb
    return cb


def br_is_neigh_suppress_enabled(p: "NetBridgePort | None", vid: int) -> bool:
    """``br_is_neigh_suppress_enabled`` (br_private.h): with ``neigh_vlan_suppress`` on
    the port the per-VLAN setting counts (``bridge vlan set … neigh_suppress on`` sets
    ``BridgeVlan.neigh_suppress``), otherwise the port flag."""
    if p is None:
        return False
    if p.flags & BR_NEIGH_VLAN_SUPPRESS:
        v = p.vlgrp.get(vid) if p.vlgrp is not None else None
        return bool(v is not None and v.neigh_suppress)
    return bool(p.flags & BR_NEIGH_SUPPRESS)


def br_recalculate_neigh_suppress_enabled(br: "NetBridge") -> None:
    """``br_recalculate_neigh_suppress_enabled``: BROPT_NEIGH_SUPPRESS_ENABLED follows
    the ports' flags; call after changing BR_NEIGH_SUPPRESS/BR_NEIGH_VLAN_SUPPRESS or
    the port list."""
    br.neigh_suppress_enabled = any(
        p.flags & (BR_NEIGH_SUPPRESS | BR_NEIGH_VLAN_SUPPRESS) for p in br.port_list)


# ------------------------------------------------------------------ helpers
def _vlan_find_dev(dev: "NetDevice", proto: int, vid: int) -> "NetDevice | None":
    """``__vlan_find_dev_deep_rcu`` for the bridge device: its VLAN upper (proto, vid)."""
    return getattr(dev, "vlan_group", {}).get((proto, vid))


def _direct_uppers(dev: "NetDevice") -> list["NetDevice"]:
    """Devices stacked right on ``dev``: its VLANs (``vlan_group``), MACVLANs
    (``lowerdev``), IPVLANs (``phy_dev``) in any namespace, and its master."""
    out = list(getattr(dev, "vlan_group", {}).values())
    world = dev.net.world if dev.net is not None else None
    if world is not None:
        for net in [world.init_net, *world.namespaces.values()]:
            for d in net.devices.values():
                if getattr(d, "lowerdev", None) is dev or getattr(d, "phy_dev", None) is dev:
                    out.append(d)
    if dev.master is not None:
        out.append(dev.master)
    return out


def _uppers(dev: "NetDevice") -> Iterator["NetDevice"]:
    """``netdev_walk_all_upper_dev_rcu``: every device above ``dev``, depth first."""
    seen: set[int] = {id(dev)}
    todo = _direct_uppers(dev)
    while todo:
        d = todo.pop()
        if id(d) in seen:
            continue
        seen.add(id(d))
        yield d
        todo.extend(_direct_uppers(d))


def _chk_addr_ip(dev: "NetDevice", ip: bytes) -> bool:
    """``br_chk_addr_ip``: ``inet_confirm_addr(net, in_dev, 0, ip, RT_SCOPE_HOST) == ip``."""
    if dev.ip_ptr is None or dev.net is None:
        return False
    from netstack.ipv4.arp import inet_confirm_addr
    return inet_confirm_addr(dev.net, dev, ZERO4, ip, RT_SCOPE_HOST) == ip


def br_is_local_ip(dev: "NetDevice", ip: bytes) -> bool:
    """``br_is_local_ip``: ``ip`` is configured on ``dev`` or an upper of it."""
    return _chk_addr_ip(dev, ip) or any(_chk_addr_ip(u, ip) for u in _uppers(dev))


def _chk_addr_ip6(dev: "NetDevice", addr: bytes) -> bool:
    """``br_chk_addr_ip6``: ``ipv6_chk_addr(net, addr, dev, 0)``."""
    if dev.ip6_ptr is None or dev.net is None or getattr(dev.net, "ipv6", None) is None:
        return False
    from netstack.ipv6.addrconf import ipv6_chk_addr
    return ipv6_chk_addr(dev.net, addr, dev) is not None


def br_is_local_ip6(dev: "NetDevice", addr: bytes) -> bool:
    """``br_is_local_ip6``."""
    return _chk_addr_ip6(dev, addr) or any(_chk_addr_ip6(u, addr) for u in _uppers(dev))


def _pvid(br: "NetBridge", p: "NetBridgePort | None") -> int:
    """``br_get_pvid(vg)`` of the port (or of the bridge for ``p`` None)."""
    vg = p.vlgrp if p is not None else br.vlgrp
    return vg.pvid if vg is not None else 0


def _tag_unless_pvid(br: "NetBridge", p: "NetBridgePort | None", reply: "Packet",
                     vlan_proto: int, vlan_tci: int) -> None:
    """The reply carries the request's tag unless its VID is the pvid (``br_arp_send``,
    ``br_nd_send``: ``__vlan_hwaccel_put_tag``)."""
    if _pvid(br, p) == vlan_tci & VLAN_VID_MASK:
        vlan_tci = 0
    if vlan_tci:
        reply.vlan_proto = vlan_proto
        reply.vlan_tci = vlan_tci


def _deliver_local(reply: "Packet", dev: "NetDevice") -> None:
    """The ``p == NULL`` branch: the reply is received by the bridge device itself
    (``skb_reset_mac_header``, pull to the network header, PACKET_HOST, ``netif_rx``)."""
    from netstack.core.dev import netif_rx
    from netstack.packet.skb import CHECKSUM_UNNECESSARY, PACKET_HOST
    reply.dev = dev
    reply.mac_header = reply.data
    reply.data += 14
    reply.network_header = reply.data
    reply.ip_summed = CHECKSUM_UNNECESSARY
    reply.pkt_type = PACKET_HOST
    netif_rx(reply)


# ---------------------------------------------------------------------- ARP
def _br_arp_send(br: "NetBridge", p: "NetBridgePort | None", dev: "NetDevice", dest_ip: bytes,
                 src_ip: bytes, dest_hw: bytes, src_hw: bytes, target_hw: bytes,
                 vlan_proto: int, vlan_tci: int) -> None:
    """``br_arp_send``: an ARP reply on ``dev`` (the ingress port, or the bridge for a
    locally sent request); untagged through ``arp_send``, tagged through ``arp_create`` +
    ``arp_xmit`` (or ``netif_rx`` when there is no port)."""
    from netstack.ipv4 import arp as arpmod
    if not vlan_tci:
        arpmod.arp_send(ARPOP_REPLY, ETH_P_ARP, dest_ip, dev, src_ip, dest_hw, src_hw, target_hw)
        return
    reply = arpmod.arp_create(ARPOP_REPLY, ETH_P_ARP, dest_ip, dev, src_ip, dest_hw, src_hw,
                              target_hw)
    _tag_unless_pvid(br, p, reply, vlan_proto, vlan_tci)
    if p is None:
        _deliver_local(reply, dev)
        return
    if reply.trace is not None:
        reply.trace.event(reply, "arp_xmit", info=f"op={ARPOP_REPLY}")
    from netstack.core.dev import dev_queue_xmit
    from netstack.netfilter.core import NF_ARP_OUT, NFPROTO_ARP, nf_hook
    if not nf_hook(dev.net, NFPROTO_ARP, NF_ARP_OUT, reply, None, dev):
        return
    dev_queue_xmit(reply, dev)


def _is_zeronet(a: bytes) -> bool:
    return a[0] == 0


def br_do_proxy_suppress_arp(pkt: "Packet", br: "NetBridge", vid: int,
                             p: "NetBridgePort | None") -> None:
    """``br_do_proxy_suppress_arp``: maybe answer an ARP request from the bridge's
    neighbour table and set ``proxyarp_replied`` for br_flood.

    Order as the kernel: IPv4-over-Ethernet only, not for loopback/multicast targets;
    with suppression anywhere on the bridge a suppressing ingress port is left alone and
    a non-request/reply (RARP) with a zero or self sender only marks; only requests go
    on; a local target (under suppression) marks without a reply; a valid neighbour
    whose MAC is in the FDB gets a reply when the ingress port has ``proxy_arp`` or the
    port the MAC lives behind has ``proxy_arp_wifi``/suppression.
    """
    cb = br_cb(pkt)
    cb.proxyarp_replied = False
    dev = br.dev
    alen = len(dev.address)
    off, end = pkt.data, pkt.tail
    if dev.flags & IFF_NOARP or end - off < 8 + 2 * (alen + 4):
        return
    b = pkt.buf
    ptype = (b[off + 2] << 8) | b[off + 3]
    if ptype != ETH_P_IP or b[off + 4] != alen or b[off + 5] != 4:
        return
    op = (b[off + 6] << 8) | b[off + 7]
    a = off + 8
    sha = bytes(b[a:a + alen])
    sip = bytes(b[a + alen:a + alen + 4])
    tip = bytes(b[a + 2 * alen + 4:a + 2 * alen + 8])
    if tip[0] == 127 or tip[0] & 0xF0 == 0xE0:  # ipv4_is_loopback / ipv4_is_multicast
        return
    if br.neigh_suppress_enabled:
        if br_is_neigh_suppress_enabled(p, vid):
            return
        if op not in (ARPOP_RREQUEST, ARPOP_RREPLY) and (_is_zeronet(sip) or sip == tip):
            cb.proxyarp_replied = True  # prevent flooding to neigh suppress ports
            return
    if op != ARPOP_REQUEST:
        return
    vlandev: "NetDevice | None" = dev
    if vid != 0:
        vlandev = _vlan_find_dev(dev, pkt.vlan_proto, vid)
        if vlandev is None:
            return
    if br.neigh_suppress_enabled and br_is_local_ip(vlandev, tip):
        cb.proxyarp_replied = True  # our own address: no proxy reply, no flood to suppress ports
        return
    net = dev.net
    tbl = getattr(getattr(net, "ipv4", None), "arp_tbl", None)
    if tbl is None:
        return
    n = neigh_lookup(tbl, vlandev, tip)
    if n is None or not n.nud_state & NUD_VALID or n.lladdr is None:
        return
    f = br_fdb_find(br, n.lladdr, vid)
    if f is None:
        return
    dst = f.dst
    replied = False
    if ((p is not None and p.flags & BR_PROXYARP)
            or (dst is not None and dst.flags & BR_PROXYARP_WIFI)
            or br_is_neigh_suppress_enabled(dst, vid)):
        ingress = pkt.dev if pkt.dev is not None else dev
        if not vid:
            _br_arp_send(br, p, ingress, sip, tip, sha, bytes(n.lladdr), sha, 0, 0)
        else:
            _br_arp_send(br, p, ingress, sip, tip, sha, bytes(n.lladdr), sha,
                         pkt.vlan_proto, pkt.vlan_tci)
        replied = True
    if replied or br.neigh_suppress_enabled:
        cb.proxyarp_replied = True


# ----------------------------------------------------------------------- ND
@dataclass(frozen=True, slots=True)
class NdMsg:
    """``struct nd_msg`` as br_is_nd_neigh_msg returns it: the ICMPv6 type, code, the
    NA flags byte (R 0x80, S 0x40, O 0x20) and the target."""

    type: int
    code: int
    flags: int
    target: bytes

    @property
    def solicited(self) -> bool:
        return bool(self.flags & NA_FLAG_SOLICITED)


def br_is_nd_neigh_msg(pkt: "Packet") -> NdMsg | None:
    """``br_is_nd_neigh_msg``: an NS or NA with code 0 right after the IPv6 header
    (br_handle_frame_finish has checked nexthdr == ICMPv6 and that ``ipv6hdr + nd_msg``
    can be pulled; a shorter packet is "not ND" here too).  The checksum is not
    verified, as in the kernel."""
    off = pkt.data + IPV6_HLEN
    if pkt.tail - off < ND_MSG_LEN:
        return None
    b = pkt.buf
    t, code = b[off], b[off + 1]
    if code != 0 or t not in (NDISC_NEIGHBOUR_SOLICITATION, NDISC_NEIGHBOUR_ADVERTISEMENT):
        return None
    return NdMsg(t, code, b[off + 4], bytes(b[off + 8:off + 24]))


def _ns_reply_daddr(pkt: "Packet") -> bytes | None:
    """Where ``br_nd_send`` sends the NA: the NS's source link-layer option, else the
    Ethernet source.  The options are walked as the kernel does (from the end of
    ``nd_msg`` to ``skb->len``, ignoring the IPv6 payload length); an option of length
    0 means no reply (None)."""
    b = pkt.buf
    opt = pkt.data + IPV6_HLEN + ND_MSG_LEN
    olen = pkt.tail - opt
    daddr = bytes(b[pkt.mac_header + 6:pkt.mac_header + 12])
    i = 0
    while i < olen - 1:
        ln = b[opt + i + 1]
        if ln == 0:
            return None
        if b[opt + i] == ND_OPT_SOURCE_LL_ADDR:
            if opt + i + 8 <= pkt.tail:
                daddr = bytes(b[opt + i + 2:opt + i + 8])
            break
        i += ln << 3
    return daddr


def _br_nd_send(br: "NetBridge", p: "NetBridgePort | None", request: "Packet", n,  # type: ignore[no-untyped-def]
                vlan_proto: int, vlan_tci: int, ns: NdMsg) -> None:
    """``br_nd_send``: a solicited, override NA for ``ns.target`` from the neighbour
    entry ``n`` — hop limit 255, the request's 4 priority bits, R from NTF_ROUTER, a
    target link-layer option — out of the ingress port (or up the bridge)."""
    dev = request.dev
    if dev is None:
        return
    daddr = _ns_reply_daddr(request)
    if daddr is None:
        return
    b = request.buf
    nh = request.data
    prio = b[nh] & 0x0F  # ipv6hdr->priority: the high 4 bits of the traffic class
    req_saddr = bytes(b[nh + 8:nh + 24])
    saddr = bytes(n.key)
    ha = bytes(n.lladdr)
    flags = NA_FLAG_OVERRIDE | NA_FLAG_SOLICITED | (NA_FLAG_ROUTER if n.flags & NTF_ROUTER else 0)
    na = bytearray(bytes((NDISC_NEIGHBOUR_ADVERTISEMENT, 0, 0, 0, flags, 0, 0, 0)) + ns.target
                   + bytes((ND_OPT_TARGET_LL_ADDR, 1)) + ha)
    c = csum_ipv6_magic(saddr, req_saddr, len(na), IPPROTO_ICMPV6, csum_partial(na))
    na[2], na[3] = c >> 8, c & 0xFF
    ip6 = (bytes((0x60 | prio, 0, 0, 0)) + len(na).to_bytes(2, "big")
           + bytes((IPPROTO_ICMPV6, 255)) + saddr + req_saddr)
    frame = daddr + ha + ETH_P_IPV6.to_bytes(2, "big") + ip6 + bytes(na)
    net = dev.net
    reply = net.world.new_packet(frame)
    reply.protocol = ETH_P_IPV6
    reply.dev = dev
    reply.mac_header = reply.data
    reply.network_header = reply.data + 14
    reply.transport_header = reply.data + 14 + IPV6_HLEN
    from netstack.packet.skb import CHECKSUM_UNNECESSARY
    reply.ip_summed = CHECKSUM_UNNECESSARY
    _tag_unless_pvid(br, p, reply, vlan_proto, vlan_tci)
    if reply.trace is not None:
        reply.trace.event(reply, "br_nd_send", info=f"target={ns.target.hex()}")
    if p is not None:
        from netstack.core.dev import dev_queue_xmit
        dev_queue_xmit(reply, dev)
    else:
        _deliver_local(reply, dev)


def br_do_suppress_nd(pkt: "Packet", br: "NetBridge", vid: int, p: "NetBridgePort | None",
                      msg: NdMsg) -> None:
    """``br_do_suppress_nd``: answer an NS for a known neighbour behind a suppressing
    port, and mark what must not be flooded to suppressing ports (unsolicited NAs, DAD
    probes, NSs for our own addresses, NSs for known neighbours)."""
    cb = br_cb(pkt)
    cb.proxyarp_replied = False
    if br_is_neigh_suppress_enabled(p, vid):
        return
    if msg.type == NDISC_NEIGHBOUR_ADVERTISEMENT and not msg.solicited:
        cb.proxyarp_replied = True
        return
    if msg.type != NDISC_NEIGHBOUR_SOLICITATION:
        return
    b = pkt.buf
    nh = pkt.data
    saddr = bytes(b[nh + 8:nh + 24])
    daddr = bytes(b[nh + 24:nh + 40])
    if saddr == bytes(16) or saddr == daddr:
        cb.proxyarp_replied = True  # DAD or self-addressed: never to suppress ports
        return
    dev = br.dev
    vlandev: "NetDevice | None" = dev
    if vid != 0:
        vlandev = _vlan_find_dev(dev, pkt.vlan_proto, vid)
        if vlandev is None:
            return
    if br_is_local_ip6(vlandev, msg.target):
        cb.proxyarp_replied = True
        return
    net = dev.net
    tbl = getattr(getattr(net, "ipv6", None), "nd_tbl", None)
    if tbl is None:
        return
    n = neigh_lookup(tbl, vlandev, msg.target)
    if n is None or not n.nud_state & NUD_VALID or n.lladdr is None:
        return
    f = br_fdb_find(br, n.lladdr, vid)
    if f is None:
        return
    replied = False
    if br_is_neigh_suppress_enabled(f.dst, vid):
        if vid != 0:
            _br_nd_send(br, p, pkt, n, pkt.vlan_proto, pkt.vlan_tci, msg)
        else:
            _br_nd_send(br, p, pkt, n, 0, 0, msg)
        replied = True
    if replied or br.neigh_suppress_enabled:
        cb.proxyarp_replied = True
