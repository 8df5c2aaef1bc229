"""IP-in-IP (``ipip``, net/ipv4/ipip.c) and IPv6-in-IPv4 (``sit``, net/ipv6/sit.c)
tunnels over IPv4 (RFC 2003, RFC 4213; Linux 6.18), with optional FOU/GUE encapsulation
(``encap fou|gue …``, net/ipv4/fou_core.c).

Transmit: ipip takes IPv4 (``ipip_tunnel_xmit``: anything else is a tx error), sit takes
IPv6 (``sit_tunnel_xmit`` → ``ipip6_tunnel_xmit``); both mark the packet
``SKB_GSO_IPXIP4``, record the inner IP protocol and go through ``ip_tunnel_xmit``
(:func:`netstack.ipv4.ip_tunnel_core.ip_tunnel_xmit`): DF by default, TTL inherit, FOU/GUE.
For sit the DF/MTU rule is ``ipip6_tunnel_xmit``'s: a packet larger than the path MTU
minus 20 gets ICMPv6 Packet Too Big (at least 1280).

Receive: protocol 4 (``ipip_rcv``) and 41 (``ipip6_rcv``) look the tunnel up by outer
addresses (``ip_tunnel_lookup``/``ipip6_tunnel_lookup``); no tunnel → ICMP port
unreachable (``tunnel4_rcv``), a tunnel configured for another protocol → drop; then
``ip_tunnel_rcv`` (ipip) or the sit path (``iptunnel_pull_header``, ECN, ``netif_rx``).
NBMA (remote any), ISATAP and 6rd are not modelled (refused at configuration).
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.netdevice import IFF_NOARP, IFF_POINTOPOINT, NetDevice
from netstack.errors import KernelError
from netstack.ipv4.ip_tunnel_core import (GSO_SOFTWARE, TUNNEL_FEATURES, TunnelEncap, TunnelParms,
                                          ip_tunnel_bind_mtu, ip_tunnel_dellink, ip_tunnel_lookup,
                                          ip_tunnel_rcv, ip_tunnel_register, ip_tunnel_xmit,
                                          iptunnel_handle_offloads, iptunnel_pull_header,
                                          skb_set_inner_ipproto, tunnel_proto_register,
                                          tunnel_rcv_unmatched, tunnel_start_xmit, tunnels_of)
from netstack.packet.skb import SKB_GSO_IPXIP4

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

IPPROTO_IPIP = 4
IPPROTO_IPV6 = 41
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ARPHRD_TUNNEL = 768
ARPHRD_SIT = 776

#: ``IPIP_FEATURES`` (SG, FRAGLIST, HIGHDMA, GSO_SOFTWARE, HW_CSUM) plus GSO/GRO and LLTX
#: (ipip.c ``ipip_tunnel_setup``, sit.c ``ipip6_tunnel_setup``)
IPTNL_FEATURES = TUNNEL_FEATURES | GSO_SOFTWARE


class IpipDevice(NetDevice):
    """``ip link add NAME type ipip remote A local B …``."""

    kind = "ipip"
    type = ARPHRD_TUNNEL
    default_features = IPTNL_FEATURES
    hw_features = IPTNL_FEATURES
    list_key = "ipip_tunnels"
    inner_eth = ETH_P_IP
    ipproto = IPPROTO_IPIP
    ether = False

    def __init__(self, name: str, parms: TunnelParms, encap: TunnelEncap) -> None:
        super().__init__(name, parms.saddr)
        self.broadcast = parms.daddr
        self.parms = parms
        self.encap = encap
        self.ignore_df = False
        self.fwmark = 0
        self.extra_stats: dict[str, int] = {}
        self.flags = IFF_POINTOPOINT | IFF_NOARP if any(parms.daddr) else IFF_NOARP

    def tun_hlen(self) -> int:
        return self.encap.hlen()

    def link_index(self) -> int:
        return self.parms.link or self.ifindex

    def dellink(self) -> None:
        """``ip_tunnel_dellink``."""
        ip_tunnel_dellink(self, self.list_key)

    start_xmit = tunnel_start_xmit

    def _xmit(self, pkt: "Packet") -> None:
        """``ipip_tunnel_xmit`` / ``sit_tunnel_xmit``."""
        p = self.parms
        if pkt.protocol != self.inner_eth or (p.protocol and p.protocol != self.ipproto):
            self.stats.tx_errors += 1
            self.stats.tx_dropped += 1
            kfree_skb_reason(pkt, "NOT_SPECIFIED", self.net)
            return
        pkt.network_header = pkt.data
        iptunnel_handle_offloads(pkt, SKB_GSO_IPXIP4)
        skb_set_inner_ipproto(pkt, self.ipproto)
        if self.ipproto == IPPROTO_IPV6 and not self._sit_mtu_ok(pkt):
            return
        ip_tunnel_xmit(self, pkt, self.ipproto, self.inner_eth)

    def _sit_mtu_ok(self, pkt: "Packet") -> bool:
        return True


class SitDevice(IpipDevice):
    """``ip link add NAME type sit remote A local B …`` (IPv6 over IPv4)."""

    kind = "sit"
    type = ARPHRD_SIT
    list_key = "sit_tunnels"
    inner_eth = ETH_P_IPV6
    ipproto = IPPROTO_IPV6
    #: ipip6_tunnel_xmit calls ip_tunnel_encap after ip_route_output_flow chose the source
    encap_after_route = True

    def _sit_mtu_ok(self, pkt: "Packet") -> bool:
        """``ipip6_tunnel_xmit``'s DF branch: mtu = path MTU − 20 (at least 1280); a
        larger packet gets ICMPv6 Packet Too Big and is dropped."""
        if not self.parms.pmtudisc:
            return True
        from netstack.ipv4.ip_output import dst_mtu
        from netstack.ipv4.ip_tunnel_core import tunnel_route4
        try:
            rt, _ = tunnel_route4(self.net, self.parms.daddr, self.parms.saddr,
                                  self.parms.link, 0, IPPROTO_IPV6)
        except KernelError:
            return True
        mtu = dst_mtu(rt) - 20 - self.encap.hlen()
        if mtu < 1280:
            mtu = 1280
        if pkt.tail - pkt.data > mtu and not pkt.gso_size:
            from netstack.ipv6.icmp import icmp6_send
            icmp6_send(pkt, 2, 0, mtu)
            self.stats.tx_errors += 1
            kfree_skb_reason(pkt, "PKT_TOO_BIG", self.net)
            return False
        return True


def _tunnel4_rcv(pkt: "Packet", kind: str, ipproto: int, inner_eth: int) -> None:
    """``tunnel4_rcv``/``tunnel64_rcv`` → ``ipip_rcv``/``ipip6_rcv``."""
    net = pkt.dev.net
    nh = pkt.network_header
    b = pkt.buf
    saddr = bytes(b[nh + 12:nh + 16])
    daddr = bytes(b[nh + 16:nh + 20])
    t = ip_tunnel_lookup(tunnels_of(net, kind), pkt.dev.ifindex, 0, saddr, daddr, 0)
    if t is None:
        tunnel_rcv_unmatched(pkt, net, nh, ipv6=False)
        return
    if t.parms.protocol and t.parms.protocol != ipproto:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    if not iptunnel_pull_header(pkt, 0, inner_eth, False, t.net is not net):
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    ip_tunnel_rcv(t, pkt, 0, 0, nh, False)


def ipip_rcv(pkt: "Packet") -> None:
    """IPv4 protocol 4."""
    _tunnel4_rcv(pkt, "ipip_tunnels", IPPROTO_IPIP, ETH_P_IP)


def ipip6_rcv(pkt: "Packet") -> None:
    """IPv4 protocol 41 (sit)."""
    _tunnel4_rcv(pkt, "sit_tunnels", IPPROTO_IPV6, ETH_P_IPV6)


def iptnl_newlink(net: Any, dev: IpipDevice, mtu: int | None, ifindex: int = 0) -> IpipDevice:
    """``ipip_newlink``/``ipip6_newlink``: EEXIST for a tunnel with the same endpoints and
    link; MTU from ``ip_tunnel_bind_dev`` (underlay − 20 − encap), at least 68 (1280 for
    sit); protocol 4/41 registered."""
    p = dev.parms
    if not any(p.daddr):
        from netstack.errors import NotSupported
        raise NotSupported(f"{dev.kind} tunnels without a remote (NBMA/6to4/ISATAP)")
    for t in tunnels_of(net, dev.list_key):
        q = t.parms
        if q.saddr == p.saddr and q.daddr == p.daddr and q.link == p.link:
            raise KernelError(errno.EEXIST)
    t_hlen = 20 + dev.tun_hlen()
    dev.mtu = ip_tunnel_bind_mtu(net, dev, p, t_hlen, False)
    dev.max_mtu = 65535 - t_hlen
    if dev.kind == "sit":
        dev.min_mtu = 1280
        dev.mtu = max(dev.mtu, 1280)
    ip_tunnel_register(net, dev, mtu, dev.min_mtu, ifindex, dev.list_key)
    tunnel_proto_register(net.world, dev.ipproto,
                          ipip_rcv if dev.ipproto == IPPROTO_IPIP else ipip6_rcv)
    return dev
