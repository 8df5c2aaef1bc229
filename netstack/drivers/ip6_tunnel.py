"""IPv4/IPv6 over IPv6 tunnels: ``ip6tnl`` (net/ipv6/ip6_tunnel.c, RFC 2473; Linux 6.18),
optionally inside FOU/GUE (``encap fou|gue``, net/ipv6/fou6.c via ``ip6_tnl_encap``).

Modes (``IFLA_IPTUN_PROTO``): ``ip6ip6`` (41), ``ipip6`` (4) or ``any`` (0); a packet of
another protocol than the mode is a tx error / receive drop.

Transmit (``ip6_tnl_start_xmit`` → ``ipxip6_tnl_xmit`` → ``ip6_tnl_xmit``):

* an IPv6 packet whose source is the tunnel's remote is refused (``ip6_tnl_addr_conflict``);
* the Tunnel Encapsulation Limit destination option (RFC 2473 §4.1.1) unless ``encaplimit
  none``; an inner IPv6 packet carrying its own limit gets that limit − 1, a limit of 0 is
  an ICMPv6 parameter problem pointing at it;
* traffic class ``tclass`` or the inner DS field (``tclass inherit``), then RFC 6040 ECN
  (``INET_ECN_encapsulate``); flow label ``flowlabel``, the inner one (``flowlabel
  inherit``, IPv6 inner only) or, when 0, the automatic one (``ip6_make_flowlabel``);
  hop limit ``hoplimit`` (0 = ``inherit``: the inner TTL / hop limit);
* ``ip6_tnl_xmit_ctl``: only a tunnel whose configured local address is one of ours (and
  whose remote is not, unless ``allow-localremote``) transmits — a tunnel without
  ``local`` cannot send (per-packet capability of the any address: tx_carrier_errors);
* a packet larger than the path MTU − 40 − encap − 8 (at least 1280 for IPv6, 68 for
  IPv4) and not GSO: ICMP fragmentation needed / ICMPv6 packet too big, tx error;
* a route through the tunnel itself is a loop (collisions).

Receive (IPv6 next header 4 → ``ip4ip6_rcv``, 41 → ``ip6ip6_rcv``): ``ip6_tnl_lookup``
(exact pair, local only, remote only; the device must be up), protocol check,
``ip6_tnl_rcv_ctl`` (the outer destination must be ours, the outer source not), pull,
inner header present (rx_length_errors), ``dscp inherit`` (IP6_TNL_F_RCV_DSCP_COPY:
the outer DSCP replaces the inner one), ECN decapsulation (rx_frame_errors), delivery on
the tunnel device.  No tunnel → ICMPv6 port unreachable (``tunnel6_rcv``).

Not modelled: the per-namespace fallback device ``ip6tnl0`` (so the first automatic name
is ``ip6tnl1`` as on the kernel, but ``ip6tnl0`` is not listed), ``external``
(collect_md), ``mode mplsip6``, NBMA (no remote) — refused as not supported.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.netdevice import IFF_NOARP, IFF_POINTOPOINT, NetDevice
from netstack.drivers.ip6_gre import (IP6_TNL_F_IGN_ENCAP_LIMIT, IP6_TNL_F_USE_ORIG_FLOWLABEL,
                                      IP6_TNL_F_USE_ORIG_TCLASS, NEXTHDR_DEST, Ip6TunnelParms,
                                      parse_tlv_enc_lim, tel_option)
from netstack.drivers.ipip import IPTNL_FEATURES
from netstack.errors import KernelError, NotSupported
from netstack.ipv4.ip_tunnel_core import (TUNNEL_ENCAP_NONE, TunnelEncap, ecn_decapsulate,
                                          ip6tunnel_xmit, ip_tunnel_dellink, ip_tunnel_get_dsfield,
                                          iptunnel_handle_offloads, iptunnel_pull_header,
                                          skb_scrub_packet, skb_set_inner_ipproto,
                                          tunnel_rcv_unmatched, tunnel_route6, tunnel_rx_error,
                                          tunnel_start_xmit, tunnels_of)
from netstack.packet.skb import SKB_GSO_IPXIP6

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

ARPHRD_TUNNEL6 = 769
IPPROTO_IPIP = 4
IPPROTO_IPV6 = 41
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
#: include/uapi/linux/ip6_tunnel.h
IP6_TNL_F_MIP6_DEV = 0x8
IP6_TNL_F_RCV_DSCP_COPY = 0x10
IP6_TNL_F_USE_ORIG_FWMARK = 0x20
IP6_TNL_F_ALLOW_LOCAL_REMOTE = 0x40
IP6_TNL_F_CAP_XMIT = 0x10000
IP6_TNL_F_CAP_RCV = 0x20000
IP6_TNL_F_CAP_PER_PACKET = 0x40000
IP6_TNL_F_CAPS = IP6_TNL_F_CAP_XMIT | IP6_TNL_F_CAP_RCV | IP6_TNL_F_CAP_PER_PACKET
#: include/net/ipv6.h IP6_MAX_MTU = 0xFFFF + sizeof(struct ipv6hdr)
IP6_MAX_MTU = 0xFFFF + 40
IPV6_MIN_MTU = 1280
LIST_KEY = "ip6tnl_tunnels"


def _addr_type(a: bytes) -> str:
    """The part of ``ipv6_addr_type`` ``ip6_tnl_get_cap`` needs."""
    if not any(a):
        return "any"
    if a == bytes(15) + b"\x01":
        return "loopback"
    if a[0] == 0xFF:
        return "multicast"
    if a[0] == 0xFE and a[1] & 0xC0 == 0x80:
        return "linklocal"
    return "unicast"


def ip6_tnl_get_cap(p: Ip6TunnelParms, laddr: bytes, raddr: bytes) -> int:
    """``ip6_tnl_get_cap``: any address on either side → decided per packet; otherwise
    unicast/multicast, no loopback, link-local only with a bound link: XMIT if the local
    address is unicast, RCV if the remote is."""
    lt, rt = _addr_type(laddr), _addr_type(raddr)
    if lt == "any" or rt == "any":
        return IP6_TNL_F_CAP_PER_PACKET
    if "loopback" in (lt, rt) or ("linklocal" in (lt, rt) and not p.link):
        return 0
    flags = 0
    if lt in ("unicast", "linklocal"):
        flags |= IP6_TNL_F_CAP_XMIT
    if rt in ("unicast", "linklocal"):
        flags |= IP6_TNL_F_CAP_RCV
    return flags


class Ip6TnlDevice(NetDevice):
    """``ip link add NAME type ip6tnl [mode M] remote A local B …``."""

    kind = "ip6tnl"
    type = ARPHRD_TUNNEL6
    default_features = IPTNL_FEATURES
    hw_features = IPTNL_FEATURES

    def __init__(self, name: str, parms: Ip6TunnelParms, encap: TunnelEncap) -> None:
        super().__init__(name, parms.saddr)
        self.broadcast = parms.daddr
        self.parms = parms
        self.encap = encap
        self.fwmark = 0
        self.extra_stats: dict[str, int] = {}
        self.flags = IFF_NOARP

    # ---------------------------------------------------------------- config
    def hlen(self) -> int:
        """``t->hlen``: the FOU/GUE header (ip6tnl itself adds no tunnel header)."""
        return self.encap.hlen() if self.encap.type != TUNNEL_ENCAP_NONE else 0

    def link_index(self) -> int:
        return self.parms.link or self.ifindex

    def link_config(self, set_mtu: bool = True) -> None:
        """``ip6_tnl_link_config``: addresses, capability flags, POINTOPOINT, and the MTU
        from the device the remote is routed through (minus 40 + encap, minus 8 with the
        encapsulation limit option; at least 1280)."""
        p = self.parms
        self.address = p.saddr
        self.broadcast = p.daddr
        p.flags = (p.flags & ~IP6_TNL_F_CAPS) | ip6_tnl_get_cap(p, p.saddr, p.daddr)
        if p.flags & IP6_TNL_F_CAP_XMIT and p.flags & IP6_TNL_F_CAP_RCV:
            self.flags |= IFF_POINTOPOINT
        else:
            self.flags &= ~IFF_POINTOPOINT
        if not p.flags & IP6_TNL_F_CAP_XMIT or not set_mtu or self.net is None:
            return
        tdev = None
        try:
            dst, _ = tunnel_route6(self.net, p.daddr, p.saddr, p.link, 0)
            tdev = dst.dev
        except KernelError:
            tdev = None
        if tdev is None and p.link:
            tdev = self.net.get_by_index(p.link)
        if tdev is not None:
            mtu = min(tdev.mtu, IP6_MAX_MTU) - 40 - self.hlen()
            if not p.flags & IP6_TNL_F_IGN_ENCAP_LIMIT:
                mtu -= 8
            self.mtu = max(mtu, IPV6_MIN_MTU)

    def change_mtu_ok(self, new_mtu: int) -> bool:
        """``ip6_tnl_change_mtu``'s bounds (proto ip6ip6: at least 1280)."""
        t_hlen = self.hlen() + 40
        lo = IPV6_MIN_MTU if self.parms.protocol == IPPROTO_IPV6 else 68
        hi = (IP6_MAX_MTU if self.parms.protocol in (IPPROTO_IPV6, 0) else 0xFFFF) - t_hlen
        return lo <= new_mtu <= hi

    def dellink(self) -> None:
        ip_tunnel_dellink(self, LIST_KEY)

    # -------------------------------------------------------------- transmit
    start_xmit = tunnel_start_xmit

    def _tx_err(self, pkt: "Packet", reason: str = "NOT_SPECIFIED") -> None:
        self.stats.tx_errors += 1
        self.stats.tx_dropped += 1
        kfree_skb_reason(pkt, reason, self.net)

    def _xmit(self, pkt: "Packet") -> None:
        """``ip6_tnl_start_xmit``: the inner protocol picks the mode."""
        pkt.network_header = pkt.data
        avail = pkt.tail - pkt.data
        b = pkt.buf
        if pkt.protocol == ETH_P_IP:
            if avail < 20:
                self._tx_err(pkt)
                return
            ipproto = IPPROTO_IPIP
        elif pkt.protocol == ETH_P_IPV6:
            if avail < 40 or bytes(b[pkt.data + 8:pkt.data + 24]) == self.parms.daddr:
                self._tx_err(pkt)
                return
            ipproto = IPPROTO_IPV6
        else:
            self._tx_err(pkt)
            return
        if self._ipxip6_xmit(pkt, ipproto) < 0:
            self._tx_err(pkt)

    def _ipxip6_xmit(self, pkt: "Packet", protocol: int) -> int:
        """``ipxip6_tnl_xmit``: 0 sent (or consumed by an ICMP error path), -1 tx error."""
        p = self.parms
        if p.protocol not in (protocol, 0):
            return -1
        encap_limit = -1 if p.flags & IP6_TNL_F_IGN_ENCAP_LIMIT else p.encap_limit
        nh = pkt.network_header
        b = pkt.buf
        label = 0 if p.flags & IP6_TNL_F_USE_ORIG_FLOWLABEL else p.flowinfo & 0xFFFFF
        if protocol == IPPROTO_IPV6:
            off = parse_tlv_enc_lim(b, nh, pkt.tail)
            if off:
                lim = b[nh + off + 2]
                if lim == 0:
                    from netstack.ipv6.icmp import icmp6_send
                    icmp6_send(pkt, 4, 0, off + 2)
                    return -1
                encap_limit = lim - 1
        inner_proto = ETH_P_IP if protocol == IPPROTO_IPIP else ETH_P_IPV6
        orig = ip_tunnel_get_dsfield(pkt, inner_proto)
        dsfield = orig if p.flags & IP6_TNL_F_USE_ORIG_TCLASS else (p.flowinfo >> 20) & 0xFF
        if protocol == IPPROTO_IPV6 and p.flags & IP6_TNL_F_USE_ORIG_FLOWLABEL:
            label |= ((b[nh + 1] & 0x0F) << 16) | (b[nh + 2] << 8) | b[nh + 3]
        # INET_ECN_encapsulate
        inner_ecn = orig & 3
        dsfield = (dsfield & ~3) | (2 if inner_ecn == 3 else inner_ecn)
        mark = pkt.mark if p.flags & IP6_TNL_F_USE_ORIG_FWMARK else self.fwmark
        iptunnel_handle_offloads(pkt, SKB_GSO_IPXIP6)
        skb_set_inner_ipproto(pkt, protocol)
        mtu = self._ip6_tnl_xmit(pkt, dsfield, label, encap_limit, protocol, mark)
        if mtu is None:
            return 0
        if mtu < 0:
            return -1
        # -EMSGSIZE: "send ICMP error even if DF is not set"
        pkt.data = pkt.network_header
        if protocol == IPPROTO_IPIP:
            from netstack.ipv4.icmp import icmp_send
            icmp_send(pkt, 3, 4, mtu)
        else:
            from netstack.ipv6.icmp import icmp6_send
            icmp6_send(pkt, 2, 0, mtu)
        return -1

    def _ip6_tnl_xmit(self, pkt: "Packet", dsfield: int, label: int, encap_limit: int,
                      proto: int, mark: int) -> int | None:
        """``ip6_tnl_xmit``: None when sent, -1 on error, the MTU for -EMSGSIZE."""
        from netstack.ipv6.addrconf import ipv6_chk_addr
        p = self.parms
        net = self.net
        ldev = net.get_by_index(p.link) if p.link else None
        ok = False
        if p.flags & IP6_TNL_F_CAP_XMIT:
            # ip6_tnl_xmit_ctl: "Local address not yet configured!" / "Routing loop!"
            if ipv6_chk_addr(net, p.saddr, ldev) is None:
                ok = False
            elif not p.flags & IP6_TNL_F_ALLOW_LOCAL_REMOTE and p.daddr[0] != 0xFF and \
                    ipv6_chk_addr(net, p.daddr, ldev, strict=True) is not None:
                ok = False
            else:
                ok = True
        if not ok:
            self.stats.tx_carrier_errors += 1
            return -1
        try:
            dst, _ = tunnel_route6(net, p.daddr, p.saddr, p.link, proto, mark=mark)
        except KernelError:
            self.stats.tx_carrier_errors += 1
            return -1
        if dst.dev is self:
            self.stats.collisions += 1
            return -1
        mtu = dst.mtu() - 40 - self.hlen() - (8 if encap_limit >= 0 else 0)
        mtu = max(mtu, IPV6_MIN_MTU if pkt.protocol == ETH_P_IPV6 else 68)
        if pkt.tail - pkt.data > mtu and not pkt.gso_size:
            return mtu
        skb_scrub_packet(pkt, False)
        hop_limit = p.hop_limit
        nh = pkt.network_header
        if hop_limit == 0:
            if pkt.protocol == ETH_P_IP:
                hop_limit = pkt.buf[nh + 8]
            elif pkt.protocol == ETH_P_IPV6:
                hop_limit = pkt.buf[nh + 7]
            else:
                from netstack.ipv6.ip6_output import ip6_dst_hoplimit
                hop_limit = ip6_dst_hoplimit(dst)
        nexthdr = proto
        if self.encap.type != TUNNEL_ENCAP_NONE:
            from netstack.ipv4.fou import ip_tunnel_encap, tunnel_encap_sport
            if pkt.dev is None:
                pkt.dev = self
            sport = tunnel_encap_sport(pkt, self.encap)
            nexthdr = ip_tunnel_encap(pkt, self.encap, proto, p.saddr, p.daddr, sport, v6=True)
            if nexthdr < 0:
                return -1
        if encap_limit >= 0:
            o = pkt.push(8)
            pkt.buf[o] = nexthdr
            pkt.buf[o + 1:o + 8] = tel_option(encap_limit)
            nexthdr = NEXTHDR_DEST
        if not label:
            label = self._auto_flowlabel(pkt)
        ip6tunnel_xmit(dst, pkt, p.saddr, p.daddr, nexthdr, dsfield, hop_limit, label)
        return None

    def _auto_flowlabel(self, pkt: "Packet") -> int:
        """``ip6_make_flowlabel`` with autolabel (as ip6gre: the flow hash rotated by 16)."""
        from netstack.drivers.ip6_gre import Ip6GreDevice
        from netstack.ipv4.udp_tunnel import skb_flow_hash
        return Ip6GreDevice._auto_flowlabel(self, pkt, skb_flow_hash)  # type: ignore[arg-type]


# --------------------------------------------------------------------- receive
def ip6_tnl_lookup(net: Any, link: int, remote: bytes, local: bytes) -> Ip6TnlDevice | None:
    """``ip6_tnl_lookup``: exact (remote, local) on the receiving link first, then local
    only (remote any), then remote only (local any); a candidate on another link is kept;
    only devices that are up."""
    cand = None
    tnls = tunnels_of(net, LIST_KEY)
    any6 = bytes(16)
    for want_r, want_l in ((remote, local), (any6, local), (remote, any6)):
        for t in tnls:
            p = t.parms
            if p.saddr != want_l or p.daddr != want_r or not t.is_up:
                continue
            if link == p.link:
                return t
            if cand is None:
                cand = t
    return cand


def ip6_tnl_rcv_ctl(t: Ip6TnlDevice, laddr: bytes, raddr: bytes) -> bool:
    """``ip6_tnl_rcv_ctl``: the outer destination must be ours (or multicast), the outer
    source must not be (unless ``allow-localremote``)."""
    from netstack.ipv6.addrconf import ipv6_chk_addr
    p = t.parms
    if not (p.flags & IP6_TNL_F_CAP_RCV or (p.flags & IP6_TNL_F_CAP_PER_PACKET and
                                             ip6_tnl_get_cap(p, laddr, raddr) &
                                             IP6_TNL_F_CAP_RCV)):
        return False
    net = t.net
    ldev = net.get_by_index(p.link) if p.link else None
    if not (laddr[0] == 0xFF or ipv6_chk_addr(net, laddr, ldev) is not None):
        return False
    return bool(p.flags & IP6_TNL_F_ALLOW_LOCAL_REMOTE) or \
        ipv6_chk_addr(net, raddr, ldev, strict=True) is None


def _ipxip6_rcv(pkt: "Packet", ipproto: int, inner_proto: int) -> None:
    """``ipxip6_rcv`` + ``__ip6_tnl_rcv``."""
    from netstack.core.dev import netif_rx
    net = pkt.dev.net
    nh = pkt.network_header
    b = pkt.buf
    saddr = bytes(b[nh + 8:nh + 24])
    daddr = bytes(b[nh + 24:nh + 40])
    pkt.data = pkt.transport_header
    t = ip6_tnl_lookup(net, pkt.dev.ifindex, saddr, daddr)
    if t is None:
        # tunnel6_rcv: no handler took it
        tunnel_rcv_unmatched(pkt, net, nh, ipv6=True)
        return
    p = t.parms
    if p.protocol not in (ipproto, 0) or not ip6_tnl_rcv_ctl(t, daddr, saddr) or \
            not iptunnel_pull_header(pkt, 0, inner_proto, False, t.net is not net):
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    pkt.protocol = inner_proto
    pkt.dev = t
    pkt.mac_header = pkt.data
    pkt.network_header = pkt.data
    if pkt.tail - pkt.data < (20 if inner_proto == ETH_P_IP else 40):
        tunnel_rx_error(t, pkt, net, "rx_length_errors")
        return
    outer_tc = ((b[nh] & 0x0F) << 4) | (b[nh + 1] >> 4)
    if p.flags & IP6_TNL_F_RCV_DSCP_COPY:
        _copy_dscp(pkt, outer_tc)
    if not ecn_decapsulate(pkt, outer_tc):
        tunnel_rx_error(t, pkt, net, "rx_frame_errors")
        return
    t.stats.rx_packets += 1
    t.stats.rx_bytes += pkt.tail - pkt.data
    skb_scrub_packet(pkt, t.net is not net)
    netif_rx(pkt)


def _copy_dscp(pkt: "Packet", outer_tc: int) -> None:
    """``ipv4_change_dsfield(iph, INET_ECN_MASK, dscp)`` / ``ipv6_copy_dscp``: the outer
    DSCP replaces the inner one, the inner ECN bits stay (IPv4 checksum updated)."""
    from netstack.packet.checksum import ipv4_change_dsfield_csum
    o = pkt.network_header
    b = pkt.buf
    dscp = outer_tc & ~3
    if pkt.protocol == ETH_P_IP:
        old = b[o + 1]
        new = (old & 3) | dscp
        check = (b[o + 10] << 8) | b[o + 11]
        b[o + 1] = new
        c = ipv4_change_dsfield_csum(check, old, new)
        b[o + 10:o + 12] = c.to_bytes(2, "big")
    else:
        old = ((b[o] & 0x0F) << 4) | (b[o + 1] >> 4)
        new = (old & 3) | dscp
        b[o] = (b[o] & 0xF0) | (new >> 4)
        b[o + 1] = ((new & 0x0F) << 4) | (b[o + 1] & 0x0F)


def ip4ip6_rcv(pkt: "Packet") -> None:
    """IPv6 next header 4."""
    _ipxip6_rcv(pkt, IPPROTO_IPIP, ETH_P_IP)


def ip6ip6_rcv(pkt: "Packet") -> None:
    """IPv6 next header 41."""
    _ipxip6_rcv(pkt, IPPROTO_IPV6, ETH_P_IPV6)


def _register_protos(world: Any) -> None:
    """``ip6_tunnel_init`` → ``xfrm6_tunnel_register`` for next headers 4 and 41 in every
    namespace, present and future."""
    if world.__dict__.get("ip6tnl_protos"):
        return
    world.__dict__["ip6tnl_protos"] = True

    def reg(n: Any) -> None:
        protos = n.proto.setdefault("inet6_protos", {})
        protos[IPPROTO_IPIP] = ip4ip6_rcv
        protos[IPPROTO_IPV6] = ip6ip6_rcv

    for n in [world.init_net, *world.namespaces.values()]:
        reg(n)
    world.pernet_inits.append(reg)


def ip6_tnl_locate(net: Any, p: Ip6TunnelParms) -> Ip6TnlDevice | None:
    """``ip6_tnl_locate(create=0)``: the tunnel with the same local, remote and link."""
    for t in tunnels_of(net, LIST_KEY):
        q = t.parms
        if q.saddr == p.saddr and q.daddr == p.daddr and q.link == p.link:
            return t
    return None


def ip6_tnl_newlink(net: Any, dev: Ip6TnlDevice, mtu: int | None,
                    ifindex: int = 0) -> Ip6TnlDevice:
    """``ip6_tnl_newlink``: EEXIST for a tunnel with the same endpoints and link, register
    (``ip6_tnl_dev_init``: MTU 1500 − 40 − encap − 8, then ``ip6_tnl_link_config``), an
    explicit MTU applied only when ``ip6_tnl_change_mtu`` accepts it (its error is
    ignored by newlink)."""
    p = dev.parms
    if not any(p.daddr):
        raise NotSupported("ip6tnl without a remote (NBMA)")
    if ip6_tnl_locate(net, p) is not None:
        raise KernelError(errno.EEXIST)
    t_hlen = dev.hlen() + 40
    dev.mtu = 1500 - t_hlen - (0 if p.flags & IP6_TNL_F_IGN_ENCAP_LIMIT else 8)
    dev.min_mtu = 68
    dev.max_mtu = IP6_MAX_MTU - t_hlen
    dev.net = net
    dev.link_config()
    net.register_netdevice(dev, ifindex=ifindex)
    tunnels_of(net, LIST_KEY).append(dev)
    _register_protos(net.world)
    if mtu is not None and dev.change_mtu_ok(mtu):
        dev.mtu = mtu
    return dev


def ip6_tnl_changelink(net: Any, dev: Ip6TnlDevice, p: Ip6TunnelParms,
                       encap: TunnelEncap | None, fwmark: int) -> None:
    """``ip6_tnl_changelink`` → ``ip6_tnl_update``: EEXIST when another tunnel already has
    these endpoints; otherwise every parameter is replaced and the link reconfigured
    (``ip6_tnl_link_config``: flags, POINTOPOINT, MTU from the new route)."""
    other = ip6_tnl_locate(net, p)
    if other is not None and other is not dev:
        raise KernelError(errno.EEXIST)
    if encap is not None:
        dev.encap = encap
    dev.parms = p
    dev.fwmark = fwmark
    dev.link_config()
