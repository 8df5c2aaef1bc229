"""Forwarding and flooding (net/bridge/br_forward.c).

``should_deliver`` is the one gate every copy passes: not back out of the ingress port
unless the egress port has hairpin mode, the port in forwarding state, the VLAN allowed
on egress, and not from an isolated port to an isolated port.  ``br_flood`` walks the
port list (newest port first, as ``list_add_rcu`` left it) and keeps the previous
eligible port in hand so the last one receives the original skb and only the others a
clone (``maybe_deliver``/``deliver_clone``) — so a flood to N ports costs N-1 copies.

The packet arrives with ``data`` at the network header and the MAC header recorded
(what ``eth_type_trans`` left); ``br_dev_queue_push_xmit`` pushes the 14 bytes back
before ``dev_queue_xmit``.  The netfilter bridge hooks FORWARD / LOCAL_OUT /
POST_ROUTING run where the kernel's NF_HOOK calls are.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.core.dev import dev_queue_xmit_list
from netstack.core.drop_reason import kfree_skb_reason
from netstack.drivers.bridge.br_private import (
    BR_BCAST_FLOOD, BR_FLOOD, BR_HAIRPIN_MODE, BR_ISOLATED, BR_MCAST_FLOOD, BR_PKT_BROADCAST,
    BR_PKT_MULTICAST, BR_PKT_UNICAST, BR_PROXYARP, BR_PROXYARP_WIFI, BR_STATE_FORWARDING,
    NetBridge, NetBridgePort, br2_hook,
)
from netstack.drivers.bridge.br_vlan import br_allowed_egress, br_handle_vlan
from netstack.netfilter.core import (NF_BR_FORWARD, NF_BR_LOCAL_OUT, NF_BR_POST_ROUTING,
                                     NFPROTO_BRIDGE, nf_hook)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

ETH_HLEN = 14
VLAN_HLEN = 4


def should_deliver(p: NetBridgePort, pkt: "Packet") -> bool:
    """``should_deliver``."""
    return ((p.flags & BR_HAIRPIN_MODE or pkt.dev is not p.dev)
            and p.state == BR_STATE_FORWARDING
            and br_allowed_egress(p.vlgrp, pkt)
            and not (pkt.cb.src_port_isolated and p.flags & BR_ISOLATED))


def br_dev_queue_push_xmit(pkt: "Packet") -> None:
    """``br_dev_queue_push_xmit``: the MAC header back in front, ``is_skb_forwardable``
    (device up, length within MTU + link header + one VLAN tag), then transmit."""
    dev = pkt.dev
    pkt.data = pkt.mac_header
    if not dev.flags & 1 or len(pkt) > dev.mtu + ETH_HLEN + VLAN_HLEN:  # type: ignore[union-attr]
        kfree_skb_reason(pkt, "NOT_SPECIFIED", dev.net)  # type: ignore[union-attr]
        return
    if "nf_bridge" in pkt.__dict__:
        from netstack.drivers.bridge.br_netfilter import br_nf_reset
        br_nf_reset(pkt)
    dev_queue_xmit_list(dev, [pkt])  # type: ignore[arg-type]


def _br_forward_finish(pkt: "Packet") -> None:
    """``br_forward_finish``: NF_BR_POST_ROUTING, then push and transmit."""
    dev = pkt.dev
    net = dev.net  # type: ignore[union-attr]
    if nf_hook(net, NFPROTO_BRIDGE, NF_BR_POST_ROUTING, pkt, None, dev) != 1:  # type: ignore[arg-type]
        return
    br_dev_queue_push_xmit(pkt)


def __br_forward(to: NetBridgePort, pkt: "Packet", local_orig: bool) -> None:
    """``__br_forward``: egress VLAN policy, then NF_BR_FORWARD (or NF_BR_LOCAL_OUT for
    the bridge's own frames) and ``br_forward_finish``."""
    if not br_handle_vlan(to.br, to, to.vlgrp, pkt):
        return
    indev = pkt.dev
    pkt.dev = to.dev
    if pkt.trace is not None:
        pkt.trace.event(pkt, "br_forward", info=f"to={to.dev.name}")
    net = to.dev.net
    if not local_orig:
        if nf_hook(net, NFPROTO_BRIDGE, NF_BR_FORWARD, pkt, indev, to.dev) != 1:  # type: ignore[arg-type]
            return
    else:
        if nf_hook(net, NFPROTO_BRIDGE, NF_BR_LOCAL_OUT, pkt, None, to.dev) != 1:  # type: ignore[arg-type]
            return
    _br_forward_finish(pkt)


def deliver_clone(prev: NetBridgePort, pkt: "Packet", local_orig: bool) -> None:
    """``deliver_clone``: a copy goes to ``prev``; the original stays with the caller."""
    __br_forward(prev, pkt.clone(), local_orig)


def br_forward(to: NetBridgePort | None, pkt: "Packet", local_rcv: bool,
               local_orig: bool) -> None:
    """``br_forward``: known unicast destination."""
    if to is not None and should_deliver(to, pkt):
        if local_rcv:
            deliver_clone(to, pkt, local_orig)
        else:
            __br_forward(to, pkt, local_orig)
        return
    if not local_rcv:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", pkt.dev.net)  # type: ignore[union-attr]


def br_flood(br: NetBridge, pkt: "Packet", pkt_type: int, local_rcv: bool,
             local_orig: bool, vid: int) -> None:
    """``br_flood``: every port whose flood flag for ``pkt_type`` is set (the bridge's own
    broadcast/multicast ignore mcast_flood/bcast_flood), never a proxy_arp port, and not
    the proxy_arp_wifi/neigh_suppress ports once BR2's proxy answered."""
    prev: NetBridgePort | None = None
    brdev = br.dev
    from_br = pkt.dev is brdev
    replied = pkt.cb.proxyarp_replied
    # maybe_deliver's br_multicast_count(..., BR_MCAST_DIR_TX) for IGMP/MLD frames
    mcount = br2_hook("br_multicast", "br_multicast_count_frame") if br.multicast is not None else None
    for p in br.port_list:
        flags = p.flags
        if pkt_type == BR_PKT_UNICAST:
            if not flags & BR_FLOOD:
                continue
        elif pkt_type == BR_PKT_MULTICAST:
            if not flags & BR_MCAST_FLOOD and not from_br:
                continue
        elif pkt_type == BR_PKT_BROADCAST:
            if not flags & BR_BCAST_FLOOD and not from_br:
                continue
        if flags & BR_PROXYARP:
            continue
        if replied:
            if flags & BR_PROXYARP_WIFI:
                continue
            suppress = br2_hook("br_arp_nd_proxy", "br_is_neigh_suppress_enabled")
            if suppress is not None and suppress(p, vid):
                continue
        if not should_deliver(p, pkt):
            continue
        if prev is not None:
            deliver_clone(prev, pkt, local_orig)
        prev = p
        if mcount is not None:
            mcount(br, p, pkt, True)
    if prev is None:
        if not local_rcv:
            kfree_skb_reason(pkt, "NOT_SPECIFIED", brdev.net)
        return
    if local_rcv:
        deliver_clone(prev, pkt, local_orig)
    else:
        __br_forward(prev, pkt, local_orig)
