"""GRE over IPv4: ``gre`` (L3, ARPHRD_IPGRE) and ``gretap`` (Ethernet) devices
(net/ipv4/ip_gre.c, net/ipv4/gre_demux.c, include/net/gre.h; RFC 2784, RFC 2890;
Linux 6.18).

Header: ``C|R|K|S|Reserved0(9)|Ver(3)`` and the protocol (an EtherType, 0x6558 for
gretap), then — in this order, each 4 bytes when its flag is set — checksum (+ reserved1),
key, sequence number.

Transmit (``ipgre_xmit``/``gre_tap_xmit`` → ``__gre_xmit`` → ``gre_build_header`` →
``ip_tunnel_xmit``): GSO type GRE/GRE_CSUM (``gre_handle_offloads``); with ``ocsum`` the
checksum covers the GRE header and payload (no pseudo header) — computed now by LCO when
the inner checksum is PARTIAL, else left to the device as the packet's PARTIAL checksum
(``csum_offset`` 4); ``oseq`` numbers packets from 0 (``o_seqno``); ``okey`` writes the
key.  The outer header: DF by default (``pmtudisc``) plus the inner DF, TTL 0 = inherit
(the default "ttl inherit"), ``tos inherit``.

Receive (``gre_rcv`` in gre_demux: at least 12 bytes, version 0 (1 is PPTP, not
loaded) → ``gre_parse_header``: the routing bit or a non-zero version → drop; C → the
checksum is validated over the GRE header and payload (bad → drop, ``csum_err``) and
converted to CHECKSUM_COMPLETE; then ``ipgre_rcv``: TEB goes to gretap tunnels, the rest
to gre tunnels; ``ip_tunnel_lookup`` by addresses and key; none → ICMP port unreachable
(PACKET_REJECT), else ``ip_tunnel_rcv`` (icsum/iseq checks)).
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.netdevice import (IFF_BROADCAST, IFF_MULTICAST, IFF_NOARP, IFF_POINTOPOINT,
                                     NetDevice)
from netstack.core.skb_csum import (lco_csum, null_compute_pseudo, skb_checksum_simple_validate,
                                    skb_checksum_try_convert)
from netstack.errors import KernelError
from netstack.ipv4.ip_tunnel_core import (GSO_SOFTWARE, TUNNEL_CSUM, TUNNEL_FEATURES, TUNNEL_KEY,
                                          TUNNEL_SEQ, TunnelEncap, TunnelParms, ip_tunnel_bind_mtu,
                                          ip_tunnel_dellink, ip_tunnel_lookup, ip_tunnel_rcv,
                                          ip_tunnel_register, ip_tunnel_xmit,
                                          iptunnel_handle_offloads, iptunnel_pull_header,
                                          skb_set_inner_protocol, tunnel_proto_register,
                                          tunnel_rcv_unmatched, tunnel_start_xmit, tunnels_of)
from netstack.packet.checksum import csum_fold
from netstack.packet.errors import ParseError
from netstack.packet.skb import (CHECKSUM_PARTIAL, SKB_GSO_GRE, SKB_GSO_GRE_CSUM, UNSET)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

GRE_CSUM = 0x8000
GRE_ROUTING = 0x4000
GRE_KEY = 0x2000
GRE_SEQ = 0x1000
GRE_VERSION = 0x0007
ETH_P_TEB = 0x6558
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_WCCP = 0x883E
IPPROTO_GRE = 47
ARPHRD_IPGRE = 778

#: ``GRE_FEATURES`` (ip_gre.c ``__gre_tunnel_init``): the common tunnel set; GRE adds
#: ``GSO_SOFTWARE`` unless the tunnel numbers its packets (``oseq``: a per-segment field)
#: or puts a GRE checksum under FOU/GUE (two outer headers to update)
GRE_FEATURES = TUNNEL_FEATURES


def gre_calc_hlen(flags: int) -> int:
    """``gre_calc_hlen``: 4 + 4 per C/K/S flag."""
    n = 4
    if flags & GRE_CSUM:
        n += 4
    if flags & GRE_KEY:
        n += 4
    if flags & GRE_SEQ:
        n += 4
    return n


def gre_header(proto: int, flags: int = 0, key: int = 0, seq: int = 0,
               csum: int | None = None) -> bytes:
    """A GRE header (RFC 2784/2890) — the checksum field is 0 unless given."""
    out = bytearray((flags & 0xFFFF).to_bytes(2, "big") + proto.to_bytes(2, "big"))
    if flags & GRE_CSUM:
        out += (csum or 0).to_bytes(2, "big") + b"\0\0"
    if flags & GRE_KEY:
        out += (key & 0xFFFFFFFF).to_bytes(4, "big")
    if flags & GRE_SEQ:
        out += (seq & 0xFFFFFFFF).to_bytes(4, "big")
    return bytes(out)


class Tpi:
    """``struct tnl_ptk_info``."""

    __slots__ = ("flags", "proto", "key", "seq", "hdr_len")

    def __init__(self) -> None:
        self.flags = 0
        self.proto = 0
        self.key = 0
        self.seq = 0
        self.hdr_len = 0


def gre_parse(buf: bytes | bytearray | memoryview) -> Tpi:
    """The header part of ``gre_parse_header`` on raw bytes (no checksum validation):
    ParseError for the routing bit, a non-zero version or a truncated header."""
    if len(buf) < 4:
        raise ParseError("PKT_TOO_SMALL", "GRE header truncated")
    flags = (buf[0] << 8) | buf[1]
    if flags & (GRE_VERSION | GRE_ROUTING):
        raise ParseError("INVALID_PROTO", "GRE routing bit or non-zero version")
    t = Tpi()
    t.flags = flags & (GRE_CSUM | GRE_KEY | GRE_SEQ)
    t.hdr_len = gre_calc_hlen(flags)
    if len(buf) < t.hdr_len:
        raise ParseError("HDR_TRUNC", "GRE options truncated")
    t.proto = (buf[2] << 8) | buf[3]
    o = 4 + (4 if flags & GRE_CSUM else 0)
    if flags & GRE_KEY:
        t.key = int.from_bytes(buf[o:o + 4], "big")
        o += 4
    if flags & GRE_SEQ:
        t.seq = int.from_bytes(buf[o:o + 4], "big")
    return t


def gre_parse_header(pkt: "Packet", net: Any) -> Tpi | None:
    """``gre_parse_header`` with ``pkt.data`` at the GRE header: None = drop (the reason
    is counted here)."""
    d = pkt.data
    try:
        tpi = gre_parse(memoryview(pkt.buf)[d:pkt.tail])
    except ParseError:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return None
    if tpi.flags & GRE_CSUM:
        if skb_checksum_simple_validate(pkt):
            # csum_err: the caller counts InCsumErrors-like rx_crc_errors nowhere; dropped
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return None
        skb_checksum_try_convert(pkt, IPPROTO_GRE, null_compute_pseudo)
    if tpi.flags == 0 and tpi.proto == ETH_P_WCCP:
        # WCCPv1/v2: the payload is IPv4, after a 4-byte redirect header unless it starts
        # with an IPv4 version nibble
        if pkt.tail - d < tpi.hdr_len + 1:
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return None
        tpi.proto = ETH_P_IP
        if (pkt.buf[d + tpi.hdr_len] & 0xF0) != 0x40:
            tpi.hdr_len += 4
    return tpi


# --------------------------------------------------------------------- devices
class GreDevice(NetDevice):
    """``ip link add NAME type gre remote A local B [key K] [csum] [seq] …`` (L3)."""

    kind = "gre"
    type = ARPHRD_IPGRE
    default_features = GRE_FEATURES
    hw_features = GRE_FEATURES
    ether = False
    list_key = "gre_tunnels"

    def __init__(self, name: str, parms: TunnelParms, encap: TunnelEncap) -> None:
        addr = parms.saddr if not self.ether else b"\0" * 6
        super().__init__(name, addr)
        self.parms = parms
        self.encap = encap
        self.ignore_df = False
        self.fwmark = 0
        self.o_seqno = 0
        self.extra_stats: dict[str, int] = {}
        # __gre_tunnel_init / ip6gre_tnl_init_features
        if not parms.o_flags & TUNNEL_SEQ and not (parms.o_flags & TUNNEL_CSUM and
                                                   encap.type != 0):
            self.features |= GSO_SOFTWARE
            self.hw_features = self.hw_features | GSO_SOFTWARE
        if not self.ether:
            self.broadcast = parms.daddr
            self.flags = IFF_POINTOPOINT | IFF_NOARP if any(parms.daddr) else IFF_NOARP
            if any(parms.daddr) and 224 <= parms.daddr[0] <= 239:
                self.flags = IFF_BROADCAST | IFF_MULTICAST
            self.min_mtu = 68

    def tun_hlen(self) -> int:
        """``tunnel->tun_hlen`` (GRE) + encap (``ip_tunnel_encap_setup``)."""
        return gre_calc_hlen(self.parms.o_flags) + self.encap.hlen()

    def link_index(self) -> int:
        return self.parms.link or self.ifindex

    def dellink(self) -> None:
        """``ip_tunnel_dellink``: unhash and unregister."""
        ip_tunnel_dellink(self, self.list_key)

    start_xmit = tunnel_start_xmit

    def _xmit(self, pkt: "Packet") -> None:
        """``ipgre_xmit``/``gre_tap_xmit`` → ``__gre_xmit``."""
        protos = self.gre_inner_protos(pkt)
        if protos is None:
            return
        inner_proto, proto = protos
        self.gre_push(pkt, proto, inner_proto)
        ip_tunnel_xmit(self, pkt, IPPROTO_GRE, inner_proto)

    def gre_inner_protos(self, pkt: "Packet") -> tuple[int, int] | None:
        """The (inner, GRE) protocol pair of a packet to send, shared by the IPv4 and
        IPv6 GRE devices: a tap device (``gre_tap_xmit``/``ip6gre_tap_xmit``) needs a
        whole Ethernet header (``pskb_inet_may_pull``: else a ``PKT_TOO_SMALL`` drop,
        ``None``) and sends ``ETH_P_TEB``; a layer-3 device sends ``skb->protocol``.
        """
        if self.ether:
            if pkt.tail - pkt.data < 14:
                self.stats.tx_dropped += 1
                kfree_skb_reason(pkt, "PKT_TOO_SMALL", self.net)
                return None
            pkt.mac_header = pkt.data
            inner_proto = (pkt.buf[pkt.data + 12] << 8) | pkt.buf[pkt.data + 13]
            if pkt.network_header == UNSET or pkt.network_header < pkt.data:
                pkt.network_header = pkt.data + 14
            return inner_proto, ETH_P_TEB
        pkt.network_header = pkt.data
        return pkt.protocol, pkt.protocol

    def gre_push(self, pkt: "Packet", proto: int, inner_proto: int) -> None:
        """What ``__gre_xmit`` and ``__gre6_xmit`` share before the outer IP header:
        ``gre_handle_offloads`` (GSO type GRE or GRE_CSUM), the next ``o_seqno`` when
        ``oseq`` is on, and :meth:`gre_build_header` (net/ipv4/ip_gre.c,
        net/ipv6/ip6_gre.c)."""
        p = self.parms
        if pkt.protocol == 0:
            pkt.protocol = inner_proto
        csum = bool(p.o_flags & TUNNEL_CSUM)
        iptunnel_handle_offloads(pkt, SKB_GSO_GRE_CSUM if csum else SKB_GSO_GRE)
        seq = 0
        if p.o_flags & TUNNEL_SEQ:
            seq = self.o_seqno
            self.o_seqno = (self.o_seqno + 1) & 0xFFFFFFFF
        self.gre_build_header(pkt, proto, seq)

    def gre_build_header(self, pkt: "Packet", proto: int, seq: int) -> None:
        """``gre_build_header``."""
        p = self.parms
        hlen = gre_calc_hlen(p.o_flags)
        o = pkt.push(hlen)
        skb_set_inner_protocol(pkt, proto)
        pkt.transport_header = o
        b = pkt.buf
        b[o:o + hlen] = gre_header(proto, p.o_flags & (GRE_CSUM | GRE_KEY | GRE_SEQ),
                                   p.o_key, seq)
        if p.o_flags & TUNNEL_CSUM and not pkt.gso_type & (SKB_GSO_GRE | SKB_GSO_GRE_CSUM):
            if pkt.ip_summed == CHECKSUM_PARTIAL:
                c = csum_fold(lco_csum(pkt))
                b[o + 4] = c >> 8
                b[o + 5] = c & 0xFF
            else:
                pkt.ip_summed = CHECKSUM_PARTIAL
                pkt.csum_start = o
                pkt.csum_offset = 4


class GretapDevice(GreDevice):
    """``ip link add NAME type gretap …``: Ethernet frames (protocol 0x6558)."""

    kind = "gretap"
    type = 1  # ARPHRD_ETHER
    ether = True
    list_key = "gretap_tunnels"

    def __init__(self, name: str, parms: TunnelParms, encap: TunnelEncap,
                 address: bytes = b"\0" * 6) -> None:
        super().__init__(name, parms, encap)
        self.address = address
        self.flags = IFF_BROADCAST | IFF_MULTICAST


# --------------------------------------------------------------------- receive
def gre_rcv(pkt: "Packet") -> None:
    """The IPv4 protocol 47 handler (gre_demux ``gre_rcv`` → ip_gre ``gre_rcv``)."""
    net = pkt.dev.net
    d = pkt.data
    if pkt.tail - d < 12:
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
        return
    if pkt.buf[d + 1] & 0x7F:
        # version 1 is PPTP (pptp module not loaded); higher versions: GREPROTO_MAX
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    tpi = gre_parse_header(pkt, net)
    if tpi is None:
        return
    nh = pkt.network_header
    b = pkt.buf
    saddr = bytes(b[nh + 12:nh + 16])
    daddr = bytes(b[nh + 16:nh + 20])
    key_flag = TUNNEL_KEY if tpi.flags & GRE_KEY else 0
    kind = "gretap_tunnels" if tpi.proto == ETH_P_TEB else "gre_tunnels"
    t = ip_tunnel_lookup(tunnels_of(net, kind), pkt.dev.ifindex, key_flag, saddr, daddr,
                         tpi.key)
    if t is None:
        tunnel_rcv_unmatched(pkt, net, nh, ipv6=False)
        return
    if not iptunnel_pull_header(pkt, tpi.hdr_len, tpi.proto, False, t.net is not net):
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    if not t.ether:
        pkt.protocol = tpi.proto
    flags = (TUNNEL_CSUM if tpi.flags & GRE_CSUM else 0) | key_flag | \
        (TUNNEL_SEQ if tpi.flags & GRE_SEQ else 0)
    ip_tunnel_rcv(t, pkt, flags, tpi.seq, nh, t.ether)


def gre_newlink(net: Any, dev: GreDevice, mtu: int | None, ifindex: int = 0) -> GreDevice:
    """``ipgre_newlink``/``ip_tunnel_newlink``: an identical tunnel (same addresses, key,
    link) → EEXIST; MTU from ``ip_tunnel_bind_dev``; protocol 47 registered."""
    p = dev.parms
    if not any(p.daddr):
        from netstack.errors import NotSupported
        raise NotSupported(f"{dev.kind} tunnels without a remote (NBMA)")
    for t in tunnels_of(net, dev.list_key):
        q = t.parms
        if q.saddr == p.saddr and q.daddr == p.daddr and q.link == p.link and \
                q.i_key == p.i_key and (q.i_flags & TUNNEL_KEY) == (p.i_flags & TUNNEL_KEY):
            raise KernelError(errno.EEXIST)
    t_hlen = dev.tun_hlen() + 20
    dev.mtu = ip_tunnel_bind_mtu(net, dev, p, t_hlen, dev.ether)
    dev.max_mtu = 65535 - t_hlen - (14 if dev.ether else 0)
    ip_tunnel_register(net, dev, mtu, 68, ifindex, dev.list_key)
    tunnel_proto_register(net.world, IPPROTO_GRE, gre_rcv)
    return dev




def gre_changelink(dev: GreDevice, p: TunnelParms, encap: TunnelEncap, ignore_df: bool,
                   fwmark: int, set_mtu: bool) -> None:
    """``ipgre_changelink``/``ipgre_tap_changelink``: the encapsulation is replaced first
    (``ipgre_newlink_encap_setup``); ``ignore-df`` with pmtudisc → EINVAL
    (``ipgre_netlink_parms``); a gretap needs a remote (``ipgre_tap_validate``);
    ``ip_tunnel_changelink``: another tunnel with these addresses/link/key → EEXIST, an L3
    gre cannot switch between point-to-point, broadcast (multicast remote) and NBMA
    (EINVAL); ``ip_tunnel_update`` replaces addresses, keys, TTL, TOS, DF and — for a new
    link or fwmark — rebinds the MTU; then the flags are copied and ``ipgre_link_update``
    moves the MTU by the change of GRE header length (unless ``mtu`` was given) and
    recomputes GSO_SOFTWARE (off with ``oseq``, or ``csum`` under FOU/GUE)."""
    from netstack.core.netdevice import IFF_BROADCAST
    from netstack.ipv4.ip_tunnel_core import ip_tunnel_bind_mtu
    net = dev.net
    old_tun = gre_calc_hlen(dev.parms.o_flags)
    if dev.ether and not any(p.daddr):
        raise KernelError(errno.EINVAL)
    dev.encap = encap
    if ignore_df and p.pmtudisc:
        raise KernelError(errno.EINVAL)
    dev.ignore_df = ignore_df
    other = None
    for t in tunnels_of(net, dev.list_key):
        q = t.parms
        if q.saddr == p.saddr and q.daddr == p.daddr and q.link == p.link and \
                q.i_key == p.i_key and (q.i_flags & TUNNEL_KEY) == (p.i_flags & TUNNEL_KEY):
            other = t
            break
    if other is not None and other is not dev:
        raise KernelError(errno.EEXIST)
    if other is None and not dev.ether:
        nflags = IFF_BROADCAST if 224 <= p.daddr[0] <= 239 else \
            IFF_POINTOPOINT if any(p.daddr) else 0
        if (dev.flags ^ nflags) & (IFF_POINTOPOINT | IFF_BROADCAST):
            raise KernelError(errno.EINVAL)
    o = dev.parms
    o.saddr, o.daddr, o.i_key, o.o_key = p.saddr, p.daddr, p.i_key, p.o_key
    if not dev.ether:
        dev.address, dev.broadcast = p.saddr, p.daddr
    o.ttl, o.tos, o.pmtudisc = p.ttl, p.tos, p.pmtudisc
    if o.link != p.link or dev.fwmark != fwmark:
        o.link = p.link
        dev.fwmark = fwmark
        # ip_tunnel_bind_dev with the tunnel's current hlen (old GRE header, new encap)
        mtu = ip_tunnel_bind_mtu(net, dev, o, 20 + old_tun + encap.hlen(), dev.ether)
        if set_mtu:
            dev.mtu = mtu
    o.i_flags, o.o_flags = p.i_flags, p.o_flags
    delta = gre_calc_hlen(o.o_flags) - old_tun
    if set_mtu:
        dev.mtu = max(dev.mtu - delta, 68)
    if o.o_flags & TUNNEL_SEQ or (o.o_flags & TUNNEL_CSUM and encap.type != 0):
        dev.features = set(dev.features) - set(GSO_SOFTWARE)
        dev.hw_features = frozenset(set(dev.hw_features) - set(GSO_SOFTWARE))
    else:
        dev.features = set(dev.features) | set(GSO_SOFTWARE)
        dev.hw_features = frozenset(set(dev.hw_features) | set(GSO_SOFTWARE))
