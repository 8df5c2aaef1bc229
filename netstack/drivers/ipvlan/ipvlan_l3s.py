"""IPVLAN l3s (drivers/net/ipvlan/ipvlan_l3s.c): the demux done by the master's IP layer.

In l3s mode the master's rx_handler passes every frame on.  Two hooks do the ipvlan work
instead, so that netfilter — conntrack in particular — sees the packet on the master's
namespace path:

1. the **l3mdev receive hook** (``ipvlan_l3_rcv``, ``dev->l3mdev_ops`` +
   ``IFF_L3MDEV_RX_HANDLER``): in ``ip_rcv_finish``/``ip6_rcv_finish``, before the route
   lookup, a packet for a slave's address is routed *in the slave's namespace* with the
   slave as input device (``ip_route_input_noref(…, sdev)``; IPv6
   ``ip6_route_input_lookup`` with ``flowi6_iif = sdev``).  netstack's equivalent: the
   master gets an ``l3mdev_l3_rcv(pkt, family)`` attribute, which ip_input.py /
   ip6_input.py call before their own lookup (patch MV-3) and which sets ``pkt.dst``.
2. a **netfilter LOCAL_IN hook** at priority INT_MAX in the master's namespace
   (``ipvlan_nf_input``, IPv4 and IPv6, refcounted per namespace): the packet about to be
   delivered locally is switched to the slave (``skb->dev``, ``skb_iif``) and counted on
   it, so the socket lookup happens in the slave's namespace.  netstack registers the same
   hook with :func:`netstack.netfilter.core.nf_register_net_hook`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.core.eth import ETH_HLEN
from netstack.drivers.ipvlan import ipvlan_core as core
from netstack.netfilter.core import (NF_ACCEPT, NF_INET_LOCAL_IN, NFPROTO_IPV4, NFPROTO_IPV6,
                                     NfHookOps, nf_register_net_hook, nf_unregister_net_hook)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.drivers.ipvlan.ipvlan_main import IpvlanDevice, IpvlanPort
    from netstack.netfilter.core import NfHookState
    from netstack.packet.skb import Packet

INT_MAX = 2 ** 31 - 1
_KEY = "ipvlan_l3s"


def ipvlan_skb_to_addr(pkt: "Packet", dev: "NetDevice | None") -> "IpvlanDevice | None":
    """``ipvlan_skb_to_addr``: the slave owning the destination, if ``dev`` is an l3s
    master."""
    port: IpvlanPort | None = getattr(dev, "ipvlan_port", None)
    if port is None or port.mode != core.IPVLAN_MODE_L3S:
        return None
    hdr = core.ipvlan_get_l3_hdr(pkt, pkt.protocol, pkt.network_header)
    if hdr is None:
        return None
    return core.ipvlan_addr_lookup(port, pkt, hdr, True)


def ipvlan_l3_rcv(pkt: "Packet", family: int) -> bool:
    """``ipvlan_l3_rcv``: route a slave's packet in the slave's namespace; True when it
    set ``pkt.dst`` (a failed IPv4 lookup leaves the packet to the master's own lookup,
    as the kernel's ``goto out``)."""
    slave = ipvlan_skb_to_addr(pkt, pkt.dev)
    if slave is None or slave.net is None:
        return False
    snet = slave.net
    buf = pkt.buf
    nh = pkt.network_header
    if family == 4:
        from netstack.ipv4 import route
        reason = route.ip_route_input(snet, pkt, bytes(buf[nh + 16:nh + 20]),
                                      bytes(buf[nh + 12:nh + 16]), buf[nh + 1], slave)
        if reason:
            pkt.dst = None
            return False
        return True
    from netstack.ipv6.route import Flowi6, ip6_route_input_lookup
    fl6 = Flowi6(bytes(buf[nh + 24:nh + 40]), bytes(buf[nh + 8:nh + 24]), 0, slave.ifindex,
                 pkt.mark, buf[nh + 6],
                 flowlabel=((buf[nh + 1] & 0x0F) << 16) | (buf[nh + 2] << 8) | buf[nh + 3])
    pkt.dst = ip6_route_input_lookup(snet, fl6)
    return True


def ipvlan_nf_input(priv: Any, pkt: "Packet", state: "NfHookState") -> int:
    """``ipvlan_nf_input``: hand the locally delivered packet to its slave."""
    slave = ipvlan_skb_to_addr(pkt, pkt.dev)
    if slave is not None:
        pkt.dev = slave
        pkt.skb_iif = slave.ifindex
        core.ipvlan_count_rx(slave, pkt.tail - pkt.data + ETH_HLEN, True, False)
    return NF_ACCEPT


_OPS = (NfHookOps(ipvlan_nf_input, NFPROTO_IPV4, NF_INET_LOCAL_IN, INT_MAX, name="ipvlan"),
        NfHookOps(ipvlan_nf_input, NFPROTO_IPV6, NF_INET_LOCAL_IN, INT_MAX, name="ipvlan"))


def _register_nf_hook(net: "Net") -> None:
    """``ipvlan_register_nf_hook``: refcounted per namespace."""
    n = net.proto.get(_KEY, 0)
    if not n:
        for ops in _OPS:
            nf_register_net_hook(net, ops)
    net.proto[_KEY] = n + 1


def _unregister_nf_hook(net: "Net") -> None:
    n = net.proto.get(_KEY, 0)
    if not n:
        return
    net.proto[_KEY] = n - 1
    if n == 1:
        for ops in _OPS:
            nf_unregister_net_hook(net, ops)


def ipvlan_l3s_register(port: "IpvlanPort") -> None:
    """``ipvlan_l3s_register``: the hooks in the master's namespace, the l3mdev handler
    on the master."""
    net = port.dev.net
    if net is None:
        return
    _register_nf_hook(net)
    port.l3s_net = net
    port.dev.l3mdev_l3_rcv = ipvlan_l3_rcv  # type: ignore[attr-defined]


def ipvlan_l3s_unregister(port: "IpvlanPort") -> None:
    """``ipvlan_l3s_unregister``."""
    port.dev.l3mdev_l3_rcv = None  # type: ignore[attr-defined]
    if port.l3s_net is not None:
        _unregister_nf_hook(port.l3s_net)
        port.l3s_net = None
