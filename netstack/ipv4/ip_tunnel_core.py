"""The shared tunnel plumbing (net/ipv4/ip_tunnel_core.c, include/net/ip_tunnels.h,
include/net/inet_ecn.h, net/ipv6/ip6_tunnel.c ``ip6tunnel_xmit``).

Why one module: every IP tunnel (vxlan, geneve, gre, ipip, sit, fou) finishes its
transmit the same way — mark the inner headers and the GSO type (``iptunnel_handle_offloads``),
push the outer IP header with the fields exactly as the kernel writes them
(``iptunnel_xmit``: version/IHL, DF unless the route MTU is locked, the given TOS/TTL, an
IP ID from ``__ip_select_ident`` even when DF is set, then ``ip_local_out``) — and begins
its receive the same way (``__iptunnel_pull_header``: pull, fix ``skb->protocol``, scrub).

ECN (RFC 6040, inet_ecn.h): ``ip_tunnel_ecn_encap`` copies the inner ECN field into the
outer TOS (CE becomes ECT(0)); on decapsulation ``IP_ECN_decapsulate`` sets CE on the inner
header if the outer had CE, and reports a packet that must be dropped (outer CE over
not-ECT inner, ``INET_ECN_decapsulate`` returning 2).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.core.skb_csum import skb_postpull_rcsum
from netstack.ipv4.ip_output import ip_local_out, ip_select_ident
from netstack.packet.checksum import csum_replace2
from netstack.packet.skb import (CHECKSUM_NONE, CHECKSUM_PARTIAL, PACKET_HOST, UNSET)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_TEB = 0x6558
ETH_HLEN = 14
IP_DF = 0x4000

INET_ECN_NOT_ECT = 0
INET_ECN_ECT_1 = 1
INET_ECN_ECT_0 = 2
INET_ECN_CE = 3
INET_ECN_MASK = 3

#: The ethtool features every software tunnel device starts with: SG, FRAGLIST, HIGHDMA,
#: HW_CSUM (``GRE_FEATURES``/``IPIP_FEATURES``/``vxlan_setup``/``geneve_setup``) plus what
#: ``register_netdevice`` gives every device (GSO, GRO) and LLTX (net/ipv4/ip_gre.c,
#: net/ipv4/ipip.c, drivers/net/vxlan/vxlan_core.c, drivers/net/geneve.c).
TUNNEL_FEATURES = frozenset({
    "tx-scatter-gather", "tx-scatter-gather-fraglist", "highdma", "tx-checksum-ip-generic",
    "tx-generic-segmentation", "rx-gro", "tx-lockless",
})
#: ``NETIF_F_GSO_SOFTWARE``: the segmentations the stack can do in software
#: (include/linux/netdev_features.h).
GSO_SOFTWARE = frozenset({
    "tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation",
    "tx-tcp6-segmentation", "tx-sctp-segmentation", "tx-udp-segmentation", "tx-gso-list",
})


# ------------------------------------------------------------------- offloads
def skb_reset_inner_headers(pkt: "Packet") -> None:
    """``skb_reset_inner_headers``: the current headers become the inner ones."""
    pkt.inner_mac_header = pkt.mac_header
    pkt.inner_network_header = pkt.network_header
    pkt.inner_transport_header = pkt.transport_header


def iptunnel_handle_offloads(pkt: "Packet", gso_type_mask: int) -> int:
    """``iptunnel_handle_offloads``: record the inner headers once (first encapsulation),
    add the tunnel's GSO bits to a GSO packet; a non-GSO packet that is not PARTIAL becomes
    CHECKSUM_NONE with ``encapsulation`` cleared (so no driver offloads an inner checksum
    under an outer PARTIAL one).  Returns 0 (the kernel's -ENOMEM paths cannot happen)."""
    if not pkt.encapsulation:
        skb_reset_inner_headers(pkt)
        pkt.encapsulation = True
    if pkt.gso_size:
        pkt.gso_type |= gso_type_mask
        return 0
    if pkt.ip_summed != CHECKSUM_PARTIAL:
        pkt.ip_summed = CHECKSUM_NONE
        pkt.encapsulation = False
    return 0


def skb_set_inner_protocol(pkt: "Packet", proto: int) -> None:
    """``skb_set_inner_protocol``."""
    pkt.inner_protocol = proto


def skb_set_inner_ipproto(pkt: "Packet", ipproto: int) -> None:
    """``skb_set_inner_ipproto``: ENCAP_TYPE_IPPROTO (ipip/sit inner protocol)."""
    pkt.inner_protocol = ipproto
    pkt.__dict__["inner_protocol_type"] = "ipproto"


# ------------------------------------------------------------------------ ECN
def ip_tunnel_get_dsfield(pkt: "Packet", proto: int | None = None) -> int:
    """``ip_tunnel_get_dsfield``: the inner IPv4 TOS / IPv6 traffic class, else 0."""
    nh = pkt.network_header
    proto = pkt.protocol if proto is None else proto
    if nh == UNSET:
        return 0
    b = pkt.buf
    if proto == ETH_P_IP and pkt.tail - nh >= 20:
        return b[nh + 1]
    if proto == ETH_P_IPV6 and pkt.tail - nh >= 40:
        return ((b[nh] & 0x0F) << 4) | (b[nh + 1] >> 4)
    return 0


def ip_tunnel_get_ttl(pkt: "Packet", proto: int | None = None) -> int:
    """``ip_tunnel_get_ttl``: the inner TTL / hop limit, else ``IPDEFTTL`` (64)."""
    nh = pkt.network_header
    proto = pkt.protocol if proto is None else proto
    if nh != UNSET:
        if proto == ETH_P_IP and pkt.tail - nh >= 20:
            return pkt.buf[nh + 8]
        if proto == ETH_P_IPV6 and pkt.tail - nh >= 40:
            return pkt.buf[nh + 7]
    return 64


def ip_tunnel_ecn_encap(tos: int, pkt: "Packet", proto: int | None = None) -> int:
    """``ip_tunnel_ecn_encap`` → ``INET_ECN_encapsulate(tos, inner)``: the outer TOS keeps
    its DSCP bits and takes the inner ECN field, with CE sent as ECT(0)."""
    inner = ip_tunnel_get_dsfield(pkt, proto)
    outer = tos & ~INET_ECN_MASK & 0xFF
    ecn = inner & INET_ECN_MASK
    if ecn == INET_ECN_CE:
        ecn = INET_ECN_ECT_0
    return outer | ecn


def inet_ecn_decapsulate(outer: int, inner: int) -> int:
    """``__INET_ECN_decapsulate``: 0 nothing to do, 1 set CE on the inner header (or
    log only), 2 drop (outer CE over a not-ECT inner)."""
    if (inner & INET_ECN_MASK) == INET_ECN_NOT_ECT:
        return 2 if (outer & INET_ECN_MASK) == INET_ECN_CE else 0
    return 1 if (outer & INET_ECN_MASK) == INET_ECN_CE else 0


def ecn_decapsulate(pkt: "Packet", outer_tos: int) -> bool:
    """``IP_ECN_decapsulate``/``IP6_ECN_decapsulate`` on the inner packet at
    ``pkt.network_header`` with protocol ``pkt.protocol``; False = drop (IP_TUNNEL_ECN).
    A CE mark is copied onto an ECT inner header (``IP_ECN_set_ce`` with the incremental
    header checksum update, ``IP6_ECN_set_ce``)."""
    inner = ip_tunnel_get_dsfield(pkt)
    if pkt.protocol not in (ETH_P_IP, ETH_P_IPV6):
        return True
    rc = inet_ecn_decapsulate(outer_tos, inner)
    if rc == 2:
        # log_ecn_error defaults to true in every tunnel driver: the packet is dropped
        return False
    if rc == 1 and (inner & INET_ECN_MASK) != INET_ECN_CE:
        nh = pkt.network_header
        b = pkt.buf
        if pkt.protocol == ETH_P_IP:
            old = (b[nh] << 8) | b[nh + 1]
            b[nh + 1] |= INET_ECN_CE
            new = (b[nh] << 8) | b[nh + 1]
            c = csum_replace2((b[nh + 10] << 8) | b[nh + 11], old, new)
            b[nh + 10], b[nh + 11] = c >> 8, c & 0xFF
        else:
            b[nh + 1] |= INET_ECN_CE << 4
    return True


# ------------------------------------------------------------------------- RX
def iptunnel_pull_header(pkt: "Packet", hdr_len: int, inner_proto: int, raw_proto: bool,
                         xnet: bool) -> bool:
    """``__iptunnel_pull_header``: pull ``hdr_len`` bytes (keeping a COMPLETE sum right),
    set ``skb->protocol`` — from the inner Ethernet header for ETH_P_TEB unless
    ``raw_proto`` — and scrub the packet (``skb_scrub_packet``), dropping the hash and
    ``vlan`` tag as the kernel does.  False when the header does not fit."""
    if pkt.tail - pkt.data < hdr_len:
        return False
    start = pkt.data
    pkt.pull(hdr_len)
    skb_postpull_rcsum(pkt, start, hdr_len)
    if not raw_proto and inner_proto == ETH_P_TEB:
        if pkt.tail - pkt.data < ETH_HLEN:
            return False
        b = pkt.buf
        d = pkt.data
        t = (b[d + 12] << 8) | b[d + 13]
        # eth_hdr's h_proto, or ETH_P_802_2 for an 802.3 length field
        pkt.protocol = t if t >= 0x0600 else 0x0004
    else:
        pkt.protocol = inner_proto
    skb_scrub_packet(pkt, xnet)
    pkt.vlan_proto = 0
    pkt.vlan_tci = 0
    pkt.hash = 0
    pkt.sw_hash = False
    pkt.l4_hash = False
    return True


def skb_scrub_packet(pkt: "Packet", xnet: bool) -> None:
    """``skb_scrub_packet``: forget the route, conntrack and packet type; across
    namespaces also the mark and timestamp."""
    pkt.pkt_type = PACKET_HOST
    pkt.skb_iif = 0
    pkt.dst = None
    pkt.ct = None
    pkt.cb = None
    if xnet:
        pkt.mark = 0
        pkt.tstamp = 0


# ------------------------------------------------------------------------- TX
def iptunnel_xmit_stats(dev: Any, pkt_len: int, ok: bool) -> None:
    """``iptunnel_xmit_stats``: the tunnel device counts the inner length on success."""
    if dev is None:
        return
    if ok:
        dev.stats.tx_packets += 1
        dev.stats.tx_bytes += pkt_len
    else:
        dev.stats.tx_errors += 1
        dev.stats.tx_dropped += 1


def _inner_len(pkt: "Packet") -> int:
    inh = pkt.inner_network_header
    if pkt.encapsulation and inh != UNSET:
        return pkt.tail - inh
    if inh != UNSET and inh >= pkt.data:
        return pkt.tail - inh
    return pkt.tail - pkt.data


def iptunnel_xmit(rt: Any, pkt: "Packet", src: bytes, dst: bytes, proto: int, tos: int,
                  ttl: int, df: int, xnet: bool) -> None:
    """``iptunnel_xmit``: scrub, attach the route, push the outer IPv4 header and
    ``ip_local_out``.  ``df`` is 0 or IP_DF (0x4000); a locked route MTU clears it
    (``ip_mtu_locked``).  The ID is drawn with ``__ip_select_ident`` whatever DF says."""
    tdev = pkt.dev
    pkt_len = _inner_len(pkt)
    net = rt.dev.net
    skb_scrub_packet(pkt, xnet)
    if not pkt.l4_hash:
        pkt.hash = 0  # skb_clear_hash_if_not_l4
        pkt.sw_hash = False
    pkt.dst = rt
    o = pkt.push(20)
    pkt.network_header = o
    b = pkt.buf
    locked = bool(getattr(rt, "metrics", None) and rt.metrics.get("lock_mtu"))
    frag = 0 if locked else df
    b[o] = 0x45
    b[o + 1] = tos & 0xFF
    b[o + 2] = 0
    b[o + 3] = 0
    segs = pkt.gso_segs or 1
    ident = ip_select_ident(net, dst, src, proto)
    if segs > 1:
        # ip_idents_reserve(hash, segs): the following segments use the next IDs
        key = (dst, src, proto)
        net.ipv4.ip_idents[key] = (ident + segs - 1) & 0xFFFF
    b[o + 4] = ident >> 8
    b[o + 5] = ident & 0xFF
    b[o + 6] = frag >> 8
    b[o + 7] = frag & 0xFF
    b[o + 8] = ttl & 0xFF
    b[o + 9] = proto
    b[o + 10] = 0
    b[o + 11] = 0
    b[o + 12:o + 16] = src
    b[o + 16:o + 20] = dst
    pkt.protocol = ETH_P_IP
    pkt.dev = rt.dev
    ip_local_out(net, pkt)
    iptunnel_xmit_stats(tdev, pkt_len, True)


def ip6tunnel_xmit(dst: Any, pkt: "Packet", saddr: bytes, daddr: bytes, nexthdr: int,
                   prio: int, hop_limit: int, label: int) -> None:
    """``ip6_flow_hdr`` + the IPv6 header fields + ``ip6tunnel_xmit`` →
    ``ip6_local_out`` (which writes the payload length)."""
    from netstack.ipv6.ip6_output import ip6_local_out
    tdev = pkt.dev
    pkt_len = _inner_len(pkt)
    net = dst.dev.net
    o = pkt.push(40)
    pkt.network_header = o
    b = pkt.buf
    word = (6 << 28) | ((prio & 0xFF) << 20) | (label & 0xFFFFF)
    b[o:o + 4] = word.to_bytes(4, "big")
    n = pkt.tail - o - 40
    b[o + 4] = (n >> 8) & 0xFF if n <= 0xFFFF else 0
    b[o + 5] = n & 0xFF if n <= 0xFFFF else 0
    b[o + 6] = nexthdr
    b[o + 7] = hop_limit & 0xFF
    b[o + 8:o + 24] = saddr
    b[o + 24:o + 40] = daddr
    pkt.protocol = ETH_P_IPV6
    pkt.dst = dst
    pkt.dev = dst.dev
    pkt.cb = None
    ip6_local_out(net, pkt)
    iptunnel_xmit_stats(tdev, pkt_len, True)


def tunnel_route4(net: Any, daddr: bytes, saddr: bytes, oif: int, tos: int, proto: int,
                  sport: int = 0, dport: int = 0, mark: int = 0) -> tuple[Any, bytes]:
    """``ip_route_output_key`` for a tunnel's outer packet: (route, chosen source).
    Raises KernelError (ENETUNREACH …) as the lookup does."""
    from netstack.ipv4 import af_inet
    fl4 = af_inet.flowi4(daddr=daddr, saddr=saddr, tos=tos & 0x1E, oif=oif, proto=proto,
                         sport=sport, dport=dport, mark=mark)
    rt = af_inet.route.ip_route_output(net, fl4)
    src = af_inet.addr_bytes(getattr(fl4, "saddr", None))
    if not src or src == b"\0\0\0\0":
        src = af_inet.addr_bytes(getattr(rt, "prefsrc", None))
    if not src or src == b"\0\0\0\0":
        src = af_inet.addr_bytes(af_inet.devinet.inet_select_addr(net, rt.dev, daddr, 0))
    return rt, src


def tunnel_route6(net: Any, daddr: bytes, saddr: bytes, oif: int, proto: int,
                  sport: int = 0, dport: int = 0, mark: int = 0) -> tuple[Any, bytes]:
    """``ipv6_dst_lookup_flow`` for a tunnel's outer packet: (dst, chosen source)."""
    from netstack.ipv6.addr import ANY
    from netstack.ipv6.route import Flowi6, ip6_route_get_saddr, ip6_route_output
    dst = ip6_route_output(net, Flowi6(daddr, saddr or ANY, oif, 0, mark, proto, sport,
                                       dport))
    src = saddr if saddr and saddr != ANY else ip6_route_get_saddr(net, dst, daddr)
    return dst, src


# ===================================================================== ip_tunnel.c
# The configured (non-metadata) IPv4 tunnel shared by gre, gretap, ipip and sit:
# ``struct ip_tunnel`` with its ``ip_tunnel_parm``, the encapsulation (FOU/GUE) it may
# carry, ``ip_tunnel_lookup``, ``ip_tunnel_xmit`` and ``ip_tunnel_rcv``.

#: IP_TUNNEL_* flag bits as ip_tunnel_parm i_flags/o_flags carry them (GRE bit values)
TUNNEL_CSUM = 0x8000
TUNNEL_ROUTING = 0x4000
TUNNEL_KEY = 0x2000
TUNNEL_SEQ = 0x1000

#: include/uapi/linux/if_tunnel.h TUNNEL_ENCAP_*
TUNNEL_ENCAP_NONE = 0
TUNNEL_ENCAP_FOU = 1
TUNNEL_ENCAP_GUE = 2
TUNNEL_ENCAP_FLAG_CSUM = 1 << 0
TUNNEL_ENCAP_FLAG_CSUM6 = 1 << 1
TUNNEL_ENCAP_FLAG_REMCSUM = 1 << 2


class TunnelEncap:
    """``struct ip_tunnel_encap``: FOU/GUE over the tunnel (``ip link … encap fou|gue``)."""

    __slots__ = ("type", "flags", "sport", "dport")

    def __init__(self, type_: int = TUNNEL_ENCAP_NONE, flags: int = 0, sport: int = 0,
                 dport: int = 0) -> None:
        self.type = type_
        self.flags = flags
        self.sport = sport
        self.dport = dport

    def hlen(self, remcsum_possible: bool = True) -> int:
        """``ip_encap_hlen``: 8 for FOU; 8 + 4 for GUE, + 4 private flags + 4 RCO option
        when ``encap-remcsum`` (``gue_encap_hlen``)."""
        if self.type == TUNNEL_ENCAP_FOU:
            return 8
        if self.type == TUNNEL_ENCAP_GUE:
            n = 8 + 4
            if self.flags & TUNNEL_ENCAP_FLAG_REMCSUM:
                n += 4 + 4
            return n
        return 0


class TunnelParms:
    """``struct ip_tunnel_parm``."""

    __slots__ = ("link", "i_flags", "o_flags", "i_key", "o_key", "saddr", "daddr", "ttl",
                 "tos", "pmtudisc", "protocol")

    def __init__(self) -> None:
        self.link = 0
        self.i_flags = 0
        self.o_flags = 0
        self.i_key = 0
        self.o_key = 0
        self.saddr = b"\0\0\0\0"
        self.daddr = b"\0\0\0\0"
        self.ttl = 0
        self.tos = 0
        self.pmtudisc = True
        self.protocol = 0


def ip_tunnel_key_match(p: TunnelParms, flags: int, key: int) -> bool:
    """``ip_tunnel_key_match``."""
    if p.i_flags & TUNNEL_KEY:
        return bool(flags & TUNNEL_KEY) and p.i_key == key
    return not flags & TUNNEL_KEY


def ip_tunnel_lookup(tunnels: list[Any], link: int, flags: int, remote: bytes, local: bytes,
                     key: int) -> Any:
    """``ip_tunnel_lookup``: the kernel's four passes — exact (remote, local), remote only,
    local only (or multicast local), then wildcard — each preferring a tunnel bound to
    the receiving ``link``; a keyed tunnel only matches its key."""
    zero = b"\0\0\0\0"
    cand = None
    passes = (
        lambda p: p.saddr == local and p.daddr == remote,
        lambda p: p.saddr == zero and p.daddr == remote,
        lambda p: (p.saddr == local and p.daddr == zero) or
                  (p.daddr == local and 224 <= local[0] <= 239),
        lambda p: p.saddr == zero and p.daddr == zero,
    )
    for want in passes:
        for t in tunnels:
            p = t.parms
            if not t.is_up or not want(p) or not ip_tunnel_key_match(p, flags, key):
                continue
            if p.link == link:
                return t
            if cand is None:
                cand = t
        if cand is not None:
            return cand
    return None


def ip_tunnel_bind_mtu(net: Any, dev: Any, parms: TunnelParms, t_hlen: int,
                       ether: bool) -> int:
    """``ip_tunnel_bind_dev``: the MTU of the underlay device (``link``, else the one the
    remote is routed through, else 1500) minus the tunnel headers (and the inner Ethernet
    header for gretap), at least 68."""
    mtu = 1500
    tdev = net.get_by_index(parms.link) if parms.link else None
    if tdev is None and any(parms.daddr):
        try:
            rt, _ = tunnel_route4(net, parms.daddr, parms.saddr, 0, parms.tos,
                                  parms.protocol)
            tdev = rt.dev
        except Exception:  # noqa: BLE001 - no route: the kernel keeps the default
            tdev = None
    if tdev is not None and tdev.name != "lo":
        mtu = min(tdev.mtu, 65535)
    mtu -= t_hlen + (14 if ether else 0)
    return max(mtu, 68)


def ip_tunnel_xmit(tdev: Any, pkt: "Packet", protocol: int, inner_proto: int) -> None:
    """``ip_tunnel_xmit`` for a configured tunnel ``tdev`` (with ``parms`` and
    ``encap``): TOS (1 = inherit), route, DF (pmtudisc, plus the inner DF unless
    ``ignore_df``), the MTU check with ICMP "fragmentation needed" for a DF inner IPv4
    packet (``tnl_update_pmtu``), ECN, TTL (0 = inherit the inner TTL), FOU/GUE
    encapsulation (``ip_tunnel_encap``), then :func:`iptunnel_xmit`.  ``inner_proto`` is
    the EtherType of the payload (``skb->protocol``)."""
    p: TunnelParms = tdev.parms
    net = tdev.net
    if pkt.network_header == UNSET or pkt.network_header < pkt.data - 64:
        pkt.network_header = pkt.data
    inner = pkt.inner_network_header if pkt.encapsulation and \
        pkt.inner_network_header != UNSET else pkt.network_header
    b = pkt.buf
    dst = p.daddr
    tos = p.tos
    if tos & 1:
        tos &= ~1
        tos = ip_tunnel_get_dsfield(pkt, inner_proto) if inner_proto in (ETH_P_IP, ETH_P_IPV6) \
            else tos
    enc = tdev.encap
    sport = 0
    if enc.type != TUNNEL_ENCAP_NONE:
        from netstack.ipv4.fou import tunnel_encap_sport
        sport = tunnel_encap_sport(pkt, enc)
    try:
        rt, saddr = tunnel_route4(net, dst, p.saddr, p.link, tos,
                                  17 if enc.type else protocol, sport, enc.dport,
                                  getattr(tdev, "fwmark", 0))
    except Exception:  # noqa: BLE001 - KernelError: no route
        tunnel_tx_no_route(tdev, pkt, net)
        return
    if tunnel_tx_loops(tdev, pkt, rt.dev, net):
        return
    df = IP_DF if p.pmtudisc else 0
    if inner_proto == ETH_P_IP and not getattr(tdev, "ignore_df", False) and \
            pkt.tail - inner >= 20:
        df |= ((b[inner + 6] << 8) | b[inner + 7]) & IP_DF
    # tnl_update_pmtu: the path MTU minus the tunnel overhead (up to the inner header)
    from netstack.ipv4.ip_output import dst_mtu
    overhead = 20 + (inner - pkt.data) + enc.hlen()
    mtu = dst_mtu(rt) - overhead
    if inner_proto == ETH_P_IP and df & IP_DF and pkt.tail - inner > max(mtu, 68) and \
            not pkt.gso_size and (b[inner + 6] & 0x40):
        from netstack.ipv4.icmp import icmp_send
        from netstack.core.drop_reason import kfree_skb_reason
        data, nh = pkt.data, pkt.network_header
        pkt.data = pkt.network_header = inner
        icmp_send(pkt, 3, 4, max(mtu, 68))
        pkt.data, pkt.network_header = data, nh
        tdev.stats.tx_errors += 1
        kfree_skb_reason(pkt, "PKT_TOO_BIG", net)
        return
    tos = ip_tunnel_ecn_encap(tos, pkt, inner_proto) if inner_proto in (ETH_P_IP, ETH_P_IPV6) \
        else tos & ~INET_ECN_MASK
    ttl = p.ttl
    if ttl == 0:
        if inner_proto == ETH_P_IP and pkt.tail - inner >= 20:
            ttl = b[inner + 8]
        elif inner_proto == ETH_P_IPV6 and pkt.tail - inner >= 40:
            ttl = b[inner + 7]
        else:
            from netstack.ipv4.ip_output import ip_select_ttl
            ttl = ip_select_ttl(net, rt)
    proto = protocol
    if enc.type != TUNNEL_ENCAP_NONE:
        from netstack.ipv4.fou import ip_tunnel_encap
        # ip_tunnel_xmit encapsulates before the route lookup, so the outer UDP checksum
        # uses the configured local address (0.0.0.0 without one); sit's
        # ipip6_tunnel_xmit does it after, with the selected source
        src = saddr if getattr(tdev, "encap_after_route", False) else p.saddr
        proto = ip_tunnel_encap(pkt, enc, protocol, src, dst, sport)
        if proto < 0:
            tdev.stats.tx_errors += 1
            from netstack.core.drop_reason import kfree_skb_reason
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return
    iptunnel_xmit(rt, pkt, saddr, dst, proto, tos, ttl, df,
                  tdev.net is not getattr(tdev, "link_net", tdev.net))


def ip_tunnel_rcv(tdev: Any, pkt: "Packet", tpi_flags: int, seq: int, outer_nh: int,
                  ether: bool) -> None:
    """``ip_tunnel_rcv``: C flag must match the tunnel's ``icsum`` (rx_crc_errors), a
    sequenced tunnel drops missing/old sequence numbers (rx_fifo_errors), the inner header
    must be there (rx_length_errors), RFC 6040 ECN (rx_frame_errors), then the packet is
    received on the tunnel device (``eth_type_trans`` for gretap).  The kernel frees with
    plain ``kfree_skb`` (NOT_SPECIFIED); the device counters say why."""
    from netstack.core.dev import netif_rx
    from netstack.core.drop_reason import kfree_skb_reason
    net = pkt.dev.net if pkt.dev is not None else tdev.net
    b = pkt.buf
    if 224 <= b[outer_nh + 16] <= 239:
        tdev.stats.multicast += 1
        pkt.pkt_type = 1  # PACKET_BROADCAST
    if not tunnel_rcv_checks(tdev, pkt, net, tpi_flags, seq, b[outer_nh + 1], ether):
        return
    tdev.stats.rx_packets += 1
    tdev.stats.rx_bytes += pkt.tail - pkt.data
    skb_scrub_packet(pkt, tdev.net is not net)
    tunnel_rcv_set_dev(tdev, pkt, ether)
    if not tdev.is_up:
        tdev.stats.rx_dropped += 1
        kfree_skb_reason(pkt, "DEV_READY", net)
        return
    if pkt.trace is not None:
        pkt.trace.event(pkt, "ip_tunnel_rcv", info=f"dev={tdev.name}")
    netif_rx(pkt)


def tunnel_rx_error(tdev: Any, pkt: "Packet", net: Any, counter: str) -> None:
    """A receive error on a tunnel device: ``rx_errors`` and the detail counter the
    kernel bumps with it (``rx_crc_errors``, ``rx_fifo_errors``, ``rx_length_errors``,
    ``rx_frame_errors``), then a plain ``kfree_skb`` (``NOT_SPECIFIED``): the drop path of
    ``ip_tunnel_rcv`` and ``__ip6_tnl_rcv`` (net/ipv4/ip_tunnel.c, net/ipv6/ip6_tunnel.c)."""
    from netstack.core.drop_reason import kfree_skb_reason
    ex = tdev.__dict__.setdefault("extra_stats", {})
    ex[counter] = ex.get(counter, 0) + 1
    tdev.stats.rx_errors += 1
    kfree_skb_reason(pkt, "NOT_SPECIFIED", net)


def tunnel_rcv_checks(tdev: Any, pkt: "Packet", net: Any, tpi_flags: int, seq: int,
                      outer_tos: int, ether: bool) -> bool:
    """The checks ``ip_tunnel_rcv`` and ``__ip6_tnl_rcv`` share on a decapsulated packet:
    the C flag must match ``icsum`` (rx_crc_errors), a sequenced tunnel refuses missing or
    old sequence numbers (rx_fifo_errors, serial-number arithmetic), the inner IP header
    (and Ethernet header for a tap) must be there (rx_length_errors), and RFC 6040
    decapsulation against the outer TOS/traffic class (rx_frame_errors).  Sets the inner
    network header; False when the packet was dropped (:func:`tunnel_rx_error`)."""
    p = tdev.parms
    if bool(p.i_flags & TUNNEL_CSUM) != bool(tpi_flags & TUNNEL_CSUM):
        tunnel_rx_error(tdev, pkt, net, "rx_crc_errors")
        return False
    if p.i_flags & TUNNEL_SEQ:
        iseq = tdev.__dict__.get("i_seqno", 0)
        if not tpi_flags & TUNNEL_SEQ or (iseq and ((seq - iseq) & 0x80000000)):
            tunnel_rx_error(tdev, pkt, net, "rx_fifo_errors")
            return False
        tdev.__dict__["i_seqno"] = (seq + 1) & 0xFFFFFFFF
    b = pkt.buf
    pkt.network_header = pkt.data + (14 if ether else 0)
    proto = pkt.protocol
    if ether and pkt.tail - pkt.data >= 14:
        proto = (b[pkt.data + 12] << 8) | b[pkt.data + 13]
    need = 20 if proto == ETH_P_IP else 40 if proto == ETH_P_IPV6 else 0
    if pkt.tail - pkt.network_header < need or (ether and pkt.tail - pkt.data < 14):
        tunnel_rx_error(tdev, pkt, net, "rx_length_errors")
        return False
    saved = pkt.protocol
    pkt.protocol = proto
    ok = ecn_decapsulate(pkt, outer_tos)
    pkt.protocol = saved
    if not ok:
        tunnel_rx_error(tdev, pkt, net, "rx_frame_errors")
        return False
    return True


def tunnel_rcv_set_dev(tdev: Any, pkt: "Packet", ether: bool) -> None:
    """Hand a decapsulated packet to the tunnel device: a tap tunnel (gretap, ip6gretap)
    runs ``eth_type_trans`` and pulls the Ethernet header from the checksum, a layer-3
    tunnel just points the device and MAC header at the inner packet (``ip_tunnel_rcv``,
    ``__ip6_tnl_rcv``)."""
    if ether:
        from netstack.core.eth import eth_type_trans
        start = pkt.data
        pkt.protocol = eth_type_trans(pkt, tdev)
        skb_postpull_rcsum(pkt, start, 14)
    else:
        pkt.dev = tdev
        pkt.mac_header = pkt.data


def tunnel_rcv_unmatched(pkt: "Packet", net: Any, nh: int, ipv6: bool) -> None:
    """No tunnel takes an encapsulated packet: ``ipgre_rcv``/``ipip_rcv`` answer with
    ICMP port unreachable (``icmp_send(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)``),
    ``ip6gre_rcv``/``tunnel6_rcv`` with ICMPv6 port unreachable, quoting from the outer
    header at *nh*; then the packet is freed (``NOT_SPECIFIED``)."""
    from netstack.core.drop_reason import kfree_skb_reason
    data = pkt.data
    pkt.data = nh
    if ipv6:
        from netstack.ipv6.icmp import icmp6_send
        icmp6_send(pkt, 1, 4, 0)
    else:
        from netstack.ipv4.icmp import icmp_send
        icmp_send(pkt, 3, 3, 0)
    pkt.data = data
    kfree_skb_reason(pkt, "NOT_SPECIFIED", net)


def tunnel_proto_register(world: Any, proto: int, handler: Any) -> None:
    """Loading a tunnel module registers its IPv4 protocol handler (``inet_add_protocol``
    via gre_demux/tunnel4) in every namespace, present and future."""
    key = f"tunnel_proto_{proto}"
    if getattr(world, "__dict__", {}).get(key):
        return
    world.__dict__[key] = True
    for net in [world.init_net, *world.namespaces.values()]:
        if net.ipv4 is not None:
            net.ipv4.protos.setdefault(proto, handler)

    def init(net: Any) -> None:
        if net.ipv4 is not None:
            net.ipv4.protos.setdefault(proto, handler)

    world.pernet_inits.append(init)


def tunnels_of(net: Any, key: str) -> list[Any]:
    """The per-namespace tunnel list of a kind (``ip_tunnel_net``)."""
    lst = net.proto.get(key)
    if lst is None:
        lst = net.proto[key] = []
    return lst


def tunnel_start_xmit(tdev: Any, pkt: "Packet", more: bool) -> None:
    """``ndo_start_xmit`` of the software tunnels (gre, ipip/sit, ip6tnl, vxlan, geneve):
    the device's ``_xmit`` takes the packet, and the last packet of a batch (no
    ``xmit_more``) rings the doorbell even when ``_xmit`` raised.  Assign it as the class's
    ``start_xmit``."""
    try:
        tdev._xmit(pkt)
    finally:
        if not more:
            tdev.ring_doorbell()


def tunnel_tx_no_route(tdev: Any, pkt: "Packet", net: Any, carrier: bool = True) -> None:
    """The ``tx_error`` path every tunnel's transmit takes when the outer route lookup
    fails: ``tx_carrier_errors`` (``ip_tunnel_xmit``, ``ip6_tnl_xmit``, ``geneve_xmit``;
    vxlan counts it only for ``-ENETUNREACH``, hence *carrier*), ``tx_errors``, and an
    ``IP_OUTNOROUTES`` drop (net/ipv4/ip_tunnel.c, net/ipv6/ip6_tunnel.c)."""
    from netstack.core.drop_reason import kfree_skb_reason
    if carrier:
        tdev.stats.tx_carrier_errors += 1
    tdev.stats.tx_errors += 1
    kfree_skb_reason(pkt, "IP_OUTNOROUTES", net)


def tunnel_tx_loops(tdev: Any, pkt: "Packet", out_dev: Any, net: Any) -> bool:
    """Whether the outer route leads back into the tunnel device itself (``rt->dst.dev
    == dev``: ``ip_tunnel_xmit``, ``ip6_tnl_xmit``, ``geneve_get_v4_rt``,
    ``vxlan_xmit_one``'s ``-ELOOP``); then the packet is dropped with ``collisions`` and
    ``tx_errors`` counted, as all of them do (net/ipv4/ip_tunnel.c)."""
    if out_dev is not tdev:
        return False
    from netstack.core.drop_reason import kfree_skb_reason
    tdev.stats.collisions += 1
    tdev.stats.tx_errors += 1
    kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
    return True


def ip_tunnel_register(net: Any, dev: Any, mtu: int | None, min_mtu: int, ifindex: int,
                       list_key: str) -> None:
    """The end of a tunnel's ``newlink`` (``ip_tunnel_newlink``, ``ip6gre_newlink``,
    ``ipip``/``sit``): an explicit ``IFLA_MTU`` must lie within ``[min_mtu,
    dev.max_mtu]`` (``EINVAL``, ``dev_validate_mtu``), then ``register_netdevice`` and
    the tunnel is hashed into its namespace list (net/ipv4/ip_tunnel.c)."""
    import errno
    from netstack.errors import KernelError
    if mtu is not None:
        if mtu < min_mtu or mtu > dev.max_mtu:
            raise KernelError(errno.EINVAL)
        dev.mtu = mtu
    net.register_netdevice(dev, ifindex=ifindex)
    tunnels_of(net, list_key).append(dev)


def ip_tunnel_dellink(dev: Any, list_key: str) -> None:
    """``ip_tunnel_dellink``/``ip6_tnl_dellink``: unhash the tunnel from its namespace
    list and unregister the device."""
    lst = tunnels_of(dev.net, list_key)
    if dev in lst:
        lst.remove(dev)
    dev.net.unregister_netdevice(dev)
