"""Receive on a bridge port (net/bridge/br_input.c, 6.18).

``br_handle_frame`` is the port device's ``rx_handler``: it drops frames with an invalid
source MAC (MAC_INVALID_SOURCE) and 802.3x PAUSE frames, treats the IEEE 802.1D
link-local groups 01:80:C2:00:00:0X by ``group_fwd_mask`` (STP BPDUs go up the port's
own stack to the STP code when STP is on), and hands everything else — in LEARNING or
FORWARDING state only — through NF_BR_PRE_ROUTING to ``br_handle_frame_finish``.

``br_handle_frame_finish`` is where a frame gets its VLAN (``br_allowed_ingress``), is
learned, classified (unicast / multicast / broadcast), offered to BR2's ARP/ND proxy and
multicast snooping exactly where the kernel calls them, and then forwarded to the known
port, flooded, and/or passed up to the bridge device (``br_pass_frame_up``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.netdevice import IFF_PROMISC, RxHandlerResult
from netstack.drivers.bridge.br_fdb import br_fdb_update
from netstack.drivers.bridge.br_forward import br_flood, br_forward
from netstack.drivers.bridge.br_private import (
    BR_FDB_LOCAL, BR_FDB_LOCKED, BR_ISOLATED, BR_LEARNING, BR_NO_STP, BR_PKT_BROADCAST,
    BR_PKT_MULTICAST, BR_PKT_UNICAST, BR_PORT_LOCKED, BR_PORT_MAB, BR_STATE_DISABLED,
    BR_STATE_FORWARDING, BR_STATE_LEARNING, BrInputCb, NetBridgePort, br2_hook,
)
from netstack.drivers.bridge.br_vlan import (br_allowed_egress, br_allowed_ingress,
                                             br_handle_vlan, br_should_learn)
from netstack.netfilter.core import NF_BR_LOCAL_IN, NF_BR_PRE_ROUTING, NFPROTO_BRIDGE, nf_hook
from netstack.packet.skb import PACKET_HOST, PACKET_LOOPBACK

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

ETH_P_ARP = 0x0806
ETH_P_RARP = 0x8035
ETH_P_IPV6 = 0x86DD
ETH_P_PAUSE = 0x8808
IPPROTO_ICMPV6 = 58
_CONSUMED = RxHandlerResult.CONSUMED
_PASS = RxHandlerResult.PASS
_LINK_LOCAL_PREFIX = b"\x01\x80\xc2\x00\x00"


def br_pass_frame_up(pkt: "Packet") -> None:
    """``br_pass_frame_up``: the bridge device receives the frame — rx counters, the
    bridge's own VLAN egress policy (unless promiscuous), NF_BR_LOCAL_IN, then
    ``netif_receive_skb`` on the bridge device (synchronously, as the kernel does)."""
    from netstack.core.dev import netif_receive_skb_list
    brdev = pkt.cb.brdev
    br = brdev.br
    brdev.stats.rx_packets += 1
    brdev.stats.rx_bytes += len(pkt)
    vg = br.vlgrp
    if not brdev.flags & IFF_PROMISC and not br_allowed_egress(vg, pkt):
        kfree_skb_reason(pkt, "NOT_SPECIFIED", brdev.net)
        return
    indev = pkt.dev
    pkt.dev = brdev
    if not br_handle_vlan(br, None, vg, pkt):
        return
    # update the multicast stats if the packet is IGMP/MLD (br_multicast_count … TX)
    mcount = br2_hook("br_multicast", "br_multicast_count_frame") if br.multicast is not None else None
    if mcount is not None:
        mcount(br, None, pkt, True)
    if nf_hook(brdev.net, NFPROTO_BRIDGE, NF_BR_LOCAL_IN, pkt, indev, None) != 1:
        return
    if pkt.trace is not None:
        pkt.trace.event(pkt, "br_pass_frame_up", info=f"dev={brdev.name}")
    netif_receive_skb_list([pkt])


def br_handle_frame_finish(p: NetBridgePort, pkt: "Packet") -> None:
    """``br_handle_frame_finish``."""
    br = p.br
    net = br.dev.net
    state = p.state
    if state == BR_STATE_DISABLED:
        kfree_skb_reason(pkt, "BRIDGE_INGRESS_STP_STATE", net)
        return
    ok, vid = br_allowed_ingress(br, p.vlgrp, pkt)
    if not ok:
        return
    if br.vlan_enabled and state == BR_STATE_FORWARDING:
        # __allowed_ingress: the VLAN's own state, which must allow at least learning
        v = p.vlgrp.vlans.get(vid)
        if v is not None:
            state = v.state
            if state != BR_STATE_FORWARDING and state != BR_STATE_LEARNING:
                kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
                return
    mac = pkt.mac_header
    buf = pkt.buf
    src = bytes(buf[mac + 6:mac + 12])
    if p.flags & BR_PORT_LOCKED:
        f = br.fdb.get((src, vid))
        if f is None:
            if p.flags & BR_PORT_MAB:
                br_fdb_update(br, p, src, vid, BR_FDB_LOCKED)
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return
        if f.dst is not p or f.flags & BR_FDB_LOCAL:
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return
        if f.flags & BR_FDB_LOCKED:
            br_fdb_update(br, p, src, vid, BR_FDB_LOCKED)
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return
    if p.flags & BR_LEARNING:
        if pkt.trace is not None:
            _trace_learn(pkt, br, p, src, vid)
        br_fdb_update(br, p, src, vid, 0)
    local_rcv = bool(br.dev.flags & IFF_PROMISC)
    pkt_type = BR_PKT_UNICAST
    cb = pkt.cb
    if buf[mac] & 1:
        if buf[mac:mac + 6] == b"\xff\xff\xff\xff\xff\xff":
            pkt_type = BR_PKT_BROADCAST
            local_rcv = True
        else:
            pkt_type = BR_PKT_MULTICAST
            mrcv = br2_hook("br_multicast", "br_multicast_rcv") if br.multicast is not None \
                else None
            if mrcv is not None and mrcv(br, p, pkt, vid):
                kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
                return
    if state == BR_STATE_LEARNING:
        kfree_skb_reason(pkt, "BRIDGE_INGRESS_STP_STATE", net)
        return
    cb.brdev = br.dev
    cb.src_port_isolated = bool(p.flags & BR_ISOLATED)
    proto = pkt.protocol
    if proto == ETH_P_ARP or proto == ETH_P_RARP:
        fn = br2_hook("br_arp_nd_proxy", "br_do_proxy_suppress_arp")
        if fn is not None:
            fn(pkt, br, vid, p)
    elif proto == ETH_P_IPV6 and br.neigh_suppress_enabled \
            and pkt.tail - pkt.data >= 40 + 24 and buf[pkt.data + 6] == IPPROTO_ICMPV6:
        is_nd = br2_hook("br_arp_nd_proxy", "br_is_nd_neigh_msg")
        if is_nd is not None:
            msg = is_nd(pkt)
            if msg is not None:
                br2_hook("br_arp_nd_proxy", "br_do_suppress_nd")(pkt, br, vid, p, msg)
    dst = None
    mdst = None
    mcast_hit = False
    if pkt_type == BR_PKT_MULTICAST:
        mdb_get = br2_hook("br_multicast", "br_mdb_get") if br.multicast is not None \
            else None
        if mdb_get is not None:
            mdst = mdb_get(br, pkt, vid)
        if (mdst is not None or cb.mrouters_only) and br2_hook(
                "br_multicast", "br_multicast_querier_exists")(br, pkt, mdst):
            if (mdst is not None and mdst.host_joined) or br2_hook(
                    "br_multicast", "br_multicast_is_router")(br, pkt):
                local_rcv = True
                br.dev.stats.multicast += 1
            mcast_hit = True
        else:
            local_rcv = True
            br.dev.stats.multicast += 1
    elif pkt_type == BR_PKT_UNICAST:
        dst = br.fdb.get((bytes(buf[mac:mac + 6]), vid))
    if pkt.trace is not None:
        _trace_fdb(pkt, br, dst, pkt_type, mcast_hit, local_rcv, vid)
    if dst is not None:
        if dst.flags & BR_FDB_LOCAL:
            br_pass_frame_up(pkt)
            return
        dst.used = net.world.clock.now  # type: ignore[union-attr]
        br_forward(dst.dst, pkt, local_rcv, False)
    elif not mcast_hit:
        br_flood(br, pkt, pkt_type, local_rcv, False, vid)
    else:
        br2_hook("br_multicast", "br_multicast_flood")(mdst, pkt, br, local_rcv, False)
    if local_rcv:
        br_pass_frame_up(pkt)


def _trace_learn(pkt: "Packet", br: Any, p: NetBridgePort, src: bytes, vid: int) -> None:
    """Trace event of learning (``br_fdb_update``, net/bridge/br_fdb.c): a new entry, a
    refresh of one already on this port, or a move from another port."""
    f = br.fdb.get((src, vid))
    if f is None:
        what = "new"
    elif f.dst is p:
        what = "refresh"
    else:
        what = f"move from={getattr(getattr(f.dst, 'dev', None), 'name', '-')}"
    mac = src.hex(":")
    pkt.trace.event(pkt, "br_fdb_update", info=f"learn {mac} vlan {vid} port={p.dev.name} {what}",
                    attrs={"mac": mac, "vlan": vid, "port": p.dev.name,
                           "learn": what.split()[0]})


_PKT_TYPE_NAMES = {BR_PKT_UNICAST: "unicast", BR_PKT_BROADCAST: "broadcast",
                   BR_PKT_MULTICAST: "multicast"}


def _trace_fdb(pkt: "Packet", br: Any, dst: Any, pkt_type: int, mcast_hit: bool,
               local_rcv: bool, vid: int) -> None:
    """Trace event of the forwarding decision of ``br_handle_frame_finish``: an fdb hit
    (to a port, or a local address: up the bridge device), the multicast database, or a
    flood (unknown unicast, broadcast, multicast); ``local`` says a copy also goes up."""
    mac = pkt.mac_header
    daddr = bytes(pkt.buf[mac:mac + 6]).hex(":")
    kind = _PKT_TYPE_NAMES.get(pkt_type, str(pkt_type))
    if dst is not None:
        to = "local" if dst.flags & BR_FDB_LOCAL else dst.dst.dev.name
        decision, info = "fdb_hit", f"fdb hit {daddr} vlan {vid} -> {to}"
    elif mcast_hit:
        to, decision, info = "", "mdb", f"mdb {daddr} vlan {vid}"
    else:
        to = ""
        decision = "flood"
        info = f"flood {'unknown unicast' if kind == 'unicast' else kind} {daddr} vlan {vid}"
    if local_rcv:
        info += " +local"
    pkt.trace.event(pkt, "br_fdb_find_rcu", info=info,
                    attrs={"decision": decision, "dst": daddr, "vlan": vid, "to": to,
                           "pkt_type": kind, "local_rcv": local_rcv})


def _br_handle_local_finish(p: NetBridgePort, pkt: "Packet") -> None:
    """``__br_handle_local_finish``: link-local frames are learned (unless
    no_linklocal_learn) when the port may learn, on the VID ``br_should_learn`` picks."""
    br = p.br
    if p.flags & BR_LEARNING and p.state in (BR_STATE_LEARNING, BR_STATE_FORWARDING) \
            and not br.no_linklocal_learn:
        ok, vid = br_should_learn(p, pkt)
        if ok:
            mac = pkt.mac_header
            br_fdb_update(br, p, bytes(pkt.buf[mac + 6:mac + 12]), vid, 0)


def br_handle_frame(pkt: "Packet") -> "tuple[RxHandlerResult, Packet]":
    """``br_handle_frame``: the rx_handler of every bridge port."""
    if pkt.pkt_type == PACKET_LOOPBACK:
        return _PASS, pkt
    p: NetBridgePort = pkt.dev.rx_handler_data  # type: ignore[union-attr]
    br = p.br
    net = br.dev.net
    buf = pkt.buf
    mac = pkt.mac_header
    src = buf[mac + 6:mac + 12]
    if src[0] & 1 or src == b"\0\0\0\0\0\0":
        kfree_skb_reason(pkt, "MAC_INVALID_SOURCE", net)
        return _CONSUMED, pkt
    pkt.cb = BrInputCb()
    if buf[mac:mac + 5] == _LINK_LOCAL_PREFIX and not buf[mac + 5] & 0xF0:
        last = buf[mac + 5]
        fwd_mask = br.group_fwd_mask_required | p.group_fwd_mask
        if last == 0x00:
            if br.stp_enabled == BR_NO_STP or fwd_mask & 1:
                return _forward(p, pkt)
            _br_handle_local_finish(p, pkt)
            return _PASS, pkt
        if last == 0x01:
            kfree_skb_reason(pkt, "MAC_IEEE_MAC_CONTROL", net)
            return _CONSUMED, pkt
        fwd_mask |= br.group_fwd_mask
        if fwd_mask & (1 << last):
            return _forward(p, pkt)
        if last == 0x0E:
            _br_handle_local_finish(p, pkt)
            return _PASS, pkt
        # NF_HOOK(NF_BR_LOCAL_IN, br_handle_local_finish): learn, then up the port
        if nf_hook(net, NFPROTO_BRIDGE, NF_BR_LOCAL_IN, pkt, pkt.dev, None) != 1:
            return _CONSUMED, pkt
        _br_handle_local_finish(p, pkt)
        return _PASS, pkt
    return _forward(p, pkt)


def _forward(p: NetBridgePort, pkt: "Packet") -> "tuple[RxHandlerResult, Packet]":
    """The ``forward:`` label of br_handle_frame."""
    state = p.state
    br = p.br
    if state != BR_STATE_FORWARDING and state != BR_STATE_LEARNING:
        kfree_skb_reason(pkt, "BRIDGE_INGRESS_STP_STATE", br.dev.net)
        return _CONSUMED, pkt
    mac = pkt.mac_header
    if pkt.buf[mac:mac + 6] == br.dev.address:
        pkt.pkt_type = PACKET_HOST
    if pkt.trace is not None:
        pkt.trace.event(pkt, "br_handle_frame", info=f"port={p.dev.name}")
    net = br.dev.net
    if nf_hook(net, NFPROTO_BRIDGE, NF_BR_PRE_ROUTING, pkt, pkt.dev, None) != 1:
        return _CONSUMED, pkt
    br_handle_frame_finish(p, pkt)
    return _CONSUMED, pkt
