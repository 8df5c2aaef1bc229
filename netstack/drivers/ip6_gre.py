"""GRE over IPv6: ``ip6gre`` (L3, ARPHRD_IP6GRE) and ``ip6gretap`` (Ethernet)
(net/ipv6/ip6_gre.c, net/ipv6/ip6_tunnel.c ``ip6_tnl_xmit``/``__ip6_tnl_rcv``; RFC 2473,
RFC 7676; Linux 6.18).

Transmit (``ip6gre_tunnel_xmit`` → ``prepare_ip6gre_xmit_ipv4/ipv6`` → ``__gre6_xmit`` →
``ip6_tnl_xmit``): the GRE header as for IPv4 (:meth:`GreDevice.gre_build_header` rules:
C covers header + payload with no pseudo header, K, S numbered from 0), then — unless
``encaplimit none`` — a Destination Options header carrying the Tunnel Encapsulation Limit
option (RFC 2473 §4.1.1: type 4, length 1, the limit, then PadN 1,1,0; the default limit
is 4; an IPv6 inner packet that carries its own limit gets that limit − 1, and a limit of
0 makes an ICMPv6 parameter problem), and the IPv6 header: traffic class from
``tclass`` (or the inner one with ``tclass inherit``) with RFC 6040 ECN, the flow label
from ``flowlabel`` or, when 0, the automatic one (``ip6_make_flowlabel``: the inner flow
hash rotated by 16, with ``auto_flowlabels``), hop limit ``hoplimit`` (default 64; 0 =
inherit).  With ``encap fou|gue`` the UDP (and GUE) header goes between the
encapsulation-limit option and GRE (``ip6_tnl_encap`` → net/ipv6/fou6.c), its checksum
per ``encap-csum6``.  A packet larger than the path MTU minus the overhead is refused (EMSGSIZE:
ICMP frag needed / packet too big toward the sender).

Receive (IPv6 next header 47, ``gre_rcv``): ``gre_parse_header``, pull, then
``ip6gre_tunnel_lookup`` by (local, remote, key); TEB goes to ip6gretap (an ip6gre takes
the rest); no tunnel → ICMPv6 port unreachable; then the C/S checks of
``__ip6_tnl_rcv`` (rx_crc_errors, rx_fifo_errors), ECN, and delivery on the device.
The handler is reached through ``net.proto["inet6_protos"]`` (ip6_input's
``ip6_protocol_deliver_rcu`` step).
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.netdevice import IFF_BROADCAST, IFF_MULTICAST, IFF_NOARP, IFF_POINTOPOINT
from netstack.drivers.ip_gre import (ETH_P_IP, ETH_P_IPV6, ETH_P_TEB, GRE_FEATURES, GRE_KEY,
                                     GreDevice, gre_calc_hlen, gre_parse_header)
from netstack.errors import KernelError
from netstack.ipv4.ip_tunnel_core import (TUNNEL_CSUM, TUNNEL_KEY, TUNNEL_SEQ, TunnelEncap,
                                          TunnelParms, ip_tunnel_get_dsfield, ip_tunnel_register,
                                          iptunnel_pull_header, skb_scrub_packet, tunnel_rcv_checks,
                                          tunnel_rcv_set_dev, tunnel_rcv_unmatched, tunnel_route6,
                                          tunnel_tx_loops, tunnel_tx_no_route, tunnels_of)
from netstack.packet.skb import UNSET

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

ARPHRD_IP6GRE = 823
IPPROTO_GRE = 47
NEXTHDR_DEST = 60
IPV6_TLV_TNL_ENCAP_LIMIT = 4
IPV6_DEFAULT_TNL_ENCAP_LIMIT = 4
DEFAULT_TNL_HOP_LIMIT = 64
#: include/uapi/linux/ip6_tunnel.h IP6_TNL_F_*
IP6_TNL_F_IGN_ENCAP_LIMIT = 0x1
IP6_TNL_F_USE_ORIG_TCLASS = 0x2
IP6_TNL_F_USE_ORIG_FLOWLABEL = 0x4


class Ip6TunnelParms(TunnelParms):
    """``struct __ip6_tnl_parm`` (the GRE subset): 16-byte addresses, hop limit, encap
    limit, flowinfo (tclass << 20 | label) and IP6_TNL_F_* flags."""

    __slots__ = ("hop_limit", "encap_limit", "flowinfo", "flags")

    def __init__(self) -> None:
        super().__init__()
        self.saddr = bytes(16)
        self.daddr = bytes(16)
        self.hop_limit = DEFAULT_TNL_HOP_LIMIT
        self.encap_limit = IPV6_DEFAULT_TNL_ENCAP_LIMIT
        self.flowinfo = 0
        self.flags = 0


def tel_option(limit: int) -> bytes:
    """``init_tel_txopt``: the 8-byte destination options header body after nexthdr."""
    return bytes((0, IPV6_TLV_TNL_ENCAP_LIMIT, 1, limit & 0xFF, 1, 1, 0))


def parse_tlv_enc_lim(b: bytearray, nh: int, tail: int) -> int:
    """``ip6_tnl_parse_tlv_enc_lim``: the offset (from the IPv6 header) of a Tunnel
    Encapsulation Limit option in a destination options header of the inner packet,
    else 0."""
    nexthdr = b[nh + 6]
    off = 40
    while True:
        if nexthdr not in (0, 43, 60):
            return 0
        if nh + off + 8 > tail:
            return 0
        hlen = (b[nh + off + 1] + 1) << 3
        if nexthdr == NEXTHDR_DEST:
            i = 2
            while i < hlen:
                t = b[nh + off + i]
                if t == IPV6_TLV_TNL_ENCAP_LIMIT and b[nh + off + i + 1] == 1:
                    return off + i
                if t == 0:
                    i += 1
                else:
                    i += 2 + b[nh + off + i + 1]
        nexthdr = b[nh + off]
        off += hlen


class Ip6GreDevice(GreDevice):
    """``ip link add NAME type ip6gre remote A local B …``."""

    kind = "ip6gre"
    type = ARPHRD_IP6GRE
    default_features = GRE_FEATURES
    hw_features = GRE_FEATURES
    ether = False
    list_key = "ip6gre_tunnels"

    def __init__(self, name: str, parms: Ip6TunnelParms, encap: TunnelEncap) -> None:
        super().__init__(name, parms, encap)
        self.flags = IFF_NOARP | (IFF_POINTOPOINT if any(parms.daddr) and any(parms.saddr)
                                  else 0)

    def _xmit(self, pkt: "Packet") -> None:
        """``ip6gre_tunnel_xmit`` / ``ip6gre_tap_xmit``."""
        p: Ip6TunnelParms = self.parms  # type: ignore[assignment]
        protos = self.gre_inner_protos(pkt)
        if protos is None:
            return
        inner_proto, proto = protos
        encap_limit = -1 if p.flags & IP6_TNL_F_IGN_ENCAP_LIMIT else p.encap_limit
        nh = pkt.network_header
        if inner_proto == ETH_P_IPV6:
            off = parse_tlv_enc_lim(pkt.buf, nh, pkt.tail)
            if off:
                lim = pkt.buf[nh + off + 2]
                if lim == 0:
                    from netstack.ipv6.icmp import icmp6_send
                    data = pkt.data
                    pkt.data = nh
                    icmp6_send(pkt, 4, 0, off + 2)
                    pkt.data = data
                    self.stats.tx_errors += 1
                    kfree_skb_reason(pkt, "NOT_SPECIFIED", self.net)
                    return
                encap_limit = lim - 1
        dsfield = (p.flowinfo >> 20) & 0xFF
        if p.flags & IP6_TNL_F_USE_ORIG_TCLASS and inner_proto in (ETH_P_IP, ETH_P_IPV6):
            dsfield = ip_tunnel_get_dsfield(pkt, inner_proto)
        inner_ecn = ip_tunnel_get_dsfield(pkt, inner_proto) & 3 \
            if inner_proto in (ETH_P_IP, ETH_P_IPV6) else 0
        dsfield = (dsfield & ~3) | (2 if inner_ecn == 3 else inner_ecn)
        label = p.flowinfo & 0xFFFFF
        if p.flags & IP6_TNL_F_USE_ORIG_FLOWLABEL and inner_proto == ETH_P_IPV6:
            b = pkt.buf
            label = ((b[nh + 1] & 0x0F) << 16) | (b[nh + 2] << 8) | b[nh + 3]
        self.gre_push(pkt, proto, inner_proto)
        self.ip6_tnl_xmit(pkt, dsfield, label, encap_limit, inner_proto)

    def ip6_tnl_xmit(self, pkt: "Packet", dsfield: int, label: int, encap_limit: int,
                     inner_proto: int) -> None:
        """``ip6_tnl_xmit``: route, MTU, encapsulation limit option, IPv6 header."""
        from netstack.ipv4.ip_tunnel_core import ip6tunnel_xmit
        from netstack.ipv4.udp_tunnel import skb_flow_hash
        p: Ip6TunnelParms = self.parms  # type: ignore[assignment]
        net = self.net
        try:
            dst, saddr = tunnel_route6(net, p.daddr, p.saddr, p.link, IPPROTO_GRE,
                                       mark=self.fwmark)
        except KernelError:
            tunnel_tx_no_route(self, pkt, net)
            return
        if tunnel_tx_loops(self, pkt, dst.dev, net):
            return
        tun_hlen = gre_calc_hlen(p.o_flags)
        eth_hlen = 14 if self.ether else 0
        # psh_hlen = 40 + t->encap_hlen (FOU/GUE under the IPv6 header)
        mtu = dst.mtu() - eth_hlen - 40 - self.encap.hlen() - tun_hlen - \
            (8 if encap_limit >= 0 else 0)
        mtu = max(mtu, 1280 if inner_proto == ETH_P_IPV6 else 68)
        if pkt.tail - pkt.data - tun_hlen - eth_hlen > mtu and not pkt.gso_size:
            self.stats.tx_errors += 1
            kfree_skb_reason(pkt, "PKT_TOO_BIG", net)
            return
        hop_limit = p.hop_limit
        if hop_limit == 0:
            inner = pkt.inner_network_header if pkt.inner_network_header != UNSET else 0
            if inner_proto == ETH_P_IP and inner:
                hop_limit = pkt.buf[inner + 8]
            elif inner_proto == ETH_P_IPV6 and inner:
                hop_limit = pkt.buf[inner + 7]
            else:
                from netstack.ipv6.ip6_output import ip6_dst_hoplimit
                hop_limit = ip6_dst_hoplimit(dst)
        if not label:
            label = self._auto_flowlabel(pkt, skb_flow_hash)
        nexthdr = IPPROTO_GRE
        skb_scrub_packet(pkt, False)
        if self.encap.type != 0:
            # ip6_tnl_encap → fou6_build_header / gue6_build_header
            from netstack.ipv4.fou import ip_tunnel_encap, tunnel_encap_sport
            if pkt.dev is None:
                pkt.dev = self
            sport = tunnel_encap_sport(pkt, self.encap)
            nexthdr = ip_tunnel_encap(pkt, self.encap, IPPROTO_GRE, p.saddr, p.daddr, sport,
                                      v6=True)
            if nexthdr < 0:
                self.stats.tx_errors += 1
                kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
                return
        if encap_limit >= 0:
            o = pkt.push(8)
            pkt.buf[o] = nexthdr
            pkt.buf[o + 1:o + 8] = tel_option(encap_limit)
            nexthdr = NEXTHDR_DEST
        ip6tunnel_xmit(dst, pkt, saddr, p.daddr, nexthdr, dsfield, hop_limit, label)

    def _auto_flowlabel(self, pkt: "Packet", flow_hash: Any) -> int:
        """``ip6_make_flowlabel`` with autolabel: ``rol32(hash, 16)`` masked to 20 bits
        (plus the stateless bit with ``flowlabel_state_ranges``), or 0 when
        ``auto_flowlabels`` is off."""
        net = self.net
        vals = net.sysctl.values
        if int(vals.get("net.ipv6.auto_flowlabels", 1)) == 0:
            return 0
        h = flow_hash(pkt)
        h = ((h << 16) | (h >> 16)) & 0xFFFFFFFF
        label = h & 0xFFFFF
        if int(vals.get("net.ipv6.flowlabel_state_ranges", 0)):
            label |= 0x80000
        return label


class Ip6GretapDevice(Ip6GreDevice):
    """``ip link add NAME type ip6gretap …``."""

    kind = "ip6gretap"
    type = 1
    ether = True
    list_key = "ip6gretap_tunnels"

    def __init__(self, name: str, parms: Ip6TunnelParms, encap: TunnelEncap,
                 address: bytes = b"\0" * 6) -> None:
        super().__init__(name, parms, encap)
        self.address = address
        self.broadcast = b"\xff" * 6
        self.flags = IFF_BROADCAST | IFF_MULTICAST


def ip6gre_tunnel_lookup(net: Any, link: int, remote: bytes, local: bytes, key: int,
                         proto: int) -> Any:
    """``ip6gre_tunnel_lookup`` (the configured-endpoints passes): exact addresses and key,
    device up; an ip6gretap takes only TEB; the best score prefers the receiving link and
    the matching device type."""
    want_type = 1 if proto == ETH_P_TEB else ARPHRD_IP6GRE
    cand = None
    cand_score = 4
    for kind in ("ip6gre_tunnels", "ip6gretap_tunnels"):
        for t in tunnels_of(net, kind):
            p = t.parms
            if p.saddr != local or p.daddr != remote or p.i_key != key or not t.is_up:
                continue
            if t.type != ARPHRD_IP6GRE and t.type != want_type:
                continue
            score = (1 if p.link != link else 0) | (2 if t.type != want_type else 0)
            if score == 0:
                return t
            if score < cand_score:
                cand, cand_score = t, score
    return cand


def ip6gre_rcv(pkt: "Packet") -> None:
    """The IPv6 next-header 47 handler (``gre_rcv`` in ip6_gre.c)."""
    net = pkt.dev.net
    pkt.data = pkt.transport_header
    if pkt.tail - pkt.data < 12 or pkt.buf[pkt.data + 1] & 0x7F:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    tpi = gre_parse_header(pkt, net)
    if tpi is None:
        return
    nh = pkt.network_header
    b = pkt.buf
    saddr = bytes(b[nh + 8:nh + 24])
    daddr = bytes(b[nh + 24:nh + 40])
    t = ip6gre_tunnel_lookup(net, pkt.dev.ifindex, saddr, daddr, tpi.key, tpi.proto)
    if t is None:
        tunnel_rcv_unmatched(pkt, net, nh, ipv6=True)
        return
    if not iptunnel_pull_header(pkt, tpi.hdr_len, tpi.proto, False, t.net is not net):
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    if not t.ether:
        pkt.protocol = tpi.proto
    flags = (TUNNEL_CSUM if tpi.flags & 0x8000 else 0) | \
        (TUNNEL_KEY if tpi.flags & GRE_KEY else 0) | (TUNNEL_SEQ if tpi.flags & 0x1000 else 0)
    _ip6_tnl_rcv(t, pkt, flags, tpi.seq, nh)


def _ip6_tnl_rcv(t: Any, pkt: "Packet", flags: int, seq: int, outer_nh: int) -> None:
    """``__ip6_tnl_rcv``: the icsum/iseq checks, ECN, delivery on the tunnel device."""
    from netstack.core.dev import netif_rx
    net = pkt.dev.net
    b = pkt.buf
    outer_tc = ((b[outer_nh] & 0x0F) << 4) | (b[outer_nh + 1] >> 4)
    if not tunnel_rcv_checks(t, pkt, net, flags, seq, outer_tc, t.ether):
        return
    t.stats.rx_packets += 1
    t.stats.rx_bytes += pkt.tail - pkt.data
    tunnel_rcv_set_dev(t, pkt, t.ether)
    netif_rx(pkt)


def ip6gre_newlink(net: Any, dev: Ip6GreDevice, mtu: int | None, ifindex: int = 0) -> Ip6GreDevice:
    """``ip6gre_newlink``: EEXIST for an identical tunnel; MTU = underlay − 40 − GRE
    header − 8 (encapsulation limit option) (− 14 for ip6gretap), at least 1280;
    registers next header 47 for IPv6 in every namespace."""
    p: Ip6TunnelParms = dev.parms  # type: ignore[assignment]
    if not any(p.daddr):
        from netstack.errors import NotSupported
        raise NotSupported(f"{dev.kind} tunnels without a remote")
    for t in tunnels_of(net, dev.list_key):
        q = t.parms
        if q.saddr == p.saddr and q.daddr == p.daddr and q.i_key == p.i_key and \
                q.link == p.link:
            raise KernelError(errno.EEXIST)
    lower = 1500
    try:
        dst, _ = tunnel_route6(net, p.daddr, b"", p.link, IPPROTO_GRE) if any(p.daddr) \
            else (None, b"")
        if dst is not None and dst.dev is not None and dst.dev.name != "lo":
            lower = dst.dev.mtu
    except KernelError:
        lower = 1500
    overhead = 40 + gre_calc_hlen(p.o_flags) + dev.encap.hlen() + \
        (0 if p.flags & IP6_TNL_F_IGN_ENCAP_LIMIT else 8) + (14 if dev.ether else 0)
    dev.mtu = max(lower - overhead, 1280)
    dev.min_mtu = 1280 if not dev.ether else 68
    dev.max_mtu = 65535 - overhead
    ip_tunnel_register(net, dev, mtu, dev.min_mtu, ifindex, dev.list_key)
    world = net.world
    if not world.__dict__.get("tunnel6_proto_47"):
        world.__dict__["tunnel6_proto_47"] = True
        for n in [world.init_net, *world.namespaces.values()]:
            n.proto.setdefault("inet6_protos", {})[IPPROTO_GRE] = ip6gre_rcv
        world.pernet_inits.append(
            lambda n: n.proto.setdefault("inet6_protos", {}).__setitem__(IPPROTO_GRE, ip6gre_rcv))
    return dev
