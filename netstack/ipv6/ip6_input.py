"""IPv6 receive (net/ipv6/ip6_input.c, exthdrs.c; Linux 6.18).

``ipv6_list_rcv`` → ``ip6_rcv_core`` (validation and drop reasons, in the kernel's order:
OTHERHOST, IPV6DISABLED, IP_INHDR for a short header / loopback destination from outside /
interface-local or scope-0 multicast / multicast source, UNHANDLED_PROTO for version != 6,
UNICAST_IN_L2_MULTICAST under ``drop_unicast_in_l2_multicast``, PKT_TOO_SMALL for a
payload length beyond the data, trim to the payload, hop-by-hop options first) →
``ip6_list_rcv_finish`` (the route hint: consecutive packets with the same destination
reuse the previous dst unless custom rules or multipath are in play, then sublists by dst)
→ ``dst_input``: ``ip6_input`` (extension-header chain, protocol demux; unknown next header
→ ICMPv6 parameter problem code 1 pointing at the next-header byte, IP_NOPROTO),
``ip6_mc_input``, ``ip6_forward`` or the error input of an unreachable route.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.netdevice import IFF_LOOPBACK
from netstack.ipv6.addr import LOOPBACK
from netstack.ipv6.route import Flowi6, ip6_route_input_lookup
from netstack.netfilter.core import NF_INET_LOCAL_IN, NF_INET_PRE_ROUTING, NFPROTO_IPV6, nf_hook
from netstack.packet.skb import (PACKET_BROADCAST, PACKET_LOOPBACK, PACKET_MULTICAST,
                                 PACKET_OTHERHOST)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

NEXTHDR_HOP = 0
NEXTHDR_TCP = 6
NEXTHDR_UDP = 17
NEXTHDR_ROUTING = 43
NEXTHDR_FRAGMENT = 44
NEXTHDR_ESP = 50
NEXTHDR_AH = 51
NEXTHDR_ICMP = 58
NEXTHDR_NONE = 59
NEXTHDR_DEST = 60
ICMPV6_PARAMPROB = 4
ICMPV6_HDR_FIELD = 0
ICMPV6_UNK_NEXTHDR = 1
ICMPV6_UNK_OPTION = 2
#: ``net.ipv6.max_hbh_opts_number`` / ``max_dst_opts_number`` defaults.
MAX_TLV_OPTS = 8

#: Protocols the kernel handles that netstack does not model: counted drop, traced.
UNMODELLED = {NEXTHDR_ESP: "ESP", NEXTHDR_AH: "AH"}


class Ip6Cb:
    """``struct inet6_skb_parm`` (``IP6CB(skb)``), kept in ``pkt.cb``."""

    __slots__ = ("iif", "nhoff", "fragmented", "frag_max_size", "multipath", "ra", "dsthao")

    def __init__(self, iif: int) -> None:
        self.iif = iif
        self.nhoff = 6
        self.fragmented = False
        self.frag_max_size = 0
        self.multipath = False
        self.ra = -1
        self.dsthao = 0


def _drop(pkt: "Packet", reason: str, net: "Net", mib: str | None = None) -> None:
    if mib is not None:
        net.ipv6.mib[mib] += 1
    kfree_skb_reason(pkt, reason, net)


def ip6_rcv_core(pkt: "Packet", net: "Net") -> bool:
    """Validate one packet; True if it goes on (network/transport headers set)."""
    dev = pkt.dev
    if pkt.trace is not None:
        pkt.trace.event(pkt, "ipv6_rcv")
    if pkt.pkt_type == PACKET_OTHERHOST:
        _drop(pkt, "OTHERHOST", net)
        return False
    idev = dev.ip6_ptr
    mib = net.ipv6.mib
    mib["InReceives"] += 1
    if idev is None or idev.cnf("disable_ipv6"):
        _drop(pkt, "IPV6DISABLED" if idev is not None else "NOT_SPECIFIED", net, "InDiscards")
        return False
    pkt.cb = Ip6Cb(dev.ifindex)
    n = len(pkt)
    if n < 40:
        _drop(pkt, "IP_INHDR", net, "InHdrErrors")
        return False
    buf = pkt.buf
    o = pkt.data
    pkt.network_header = o
    if buf[o] >> 4 != 6:
        _drop(pkt, "UNHANDLED_PROTO", net, "InHdrErrors")
        return False
    daddr = bytes(buf[o + 24:o + 40])
    d_mc = daddr[0] == 0xFF
    if not dev.flags & IFF_LOOPBACK and daddr == LOOPBACK:
        _drop(pkt, "IP_INHDR", net, "InHdrErrors")
        return False
    if d_mc and (daddr[1] & 0x0F) == 1 and not (pkt.pkt_type == PACKET_LOOPBACK
                                                 or dev.flags & IFF_LOOPBACK):
        _drop(pkt, "IP_INHDR", net, "InHdrErrors")
        return False
    if not d_mc and pkt.pkt_type in (PACKET_BROADCAST, PACKET_MULTICAST) \
            and idev.cnf("drop_unicast_in_l2_multicast"):
        _drop(pkt, "UNICAST_IN_L2_MULTICAST", net, "InHdrErrors")
        return False
    if d_mc and (daddr[1] & 0x0F) == 0:
        _drop(pkt, "IP_INHDR", net, "InHdrErrors")
        return False
    if buf[o + 8] == 0xFF:
        _drop(pkt, "IP_INHDR", net, "InHdrErrors")
        return False
    pkt.transport_header = o + 40
    plen = (buf[o + 4] << 8) | buf[o + 5]
    nexthdr = buf[o + 6]
    if plen or nexthdr != NEXTHDR_HOP:
        if plen + 40 > n:
            _drop(pkt, "PKT_TOO_SMALL", net, "InTruncatedPkts")
            return False
        pkt.trim(plen + 40)
    if nexthdr == NEXTHDR_HOP:
        if not ipv6_parse_hopopts(pkt, net):
            mib["InHdrErrors"] += 1
            return False
    return True


def _tlv_unknown(pkt: "Packet", net: "Net", optoff: int) -> bool:
    """``ip6_tlvopt_unknown``: the two high bits of the option type decide (RFC 8200 §4.2);
    10 sends a parameter problem even to a multicast destination, 11 only to unicast."""
    action = pkt.buf[optoff] >> 6
    if action == 0:
        return True
    daddr_mc = pkt.buf[pkt.network_header + 24] == 0xFF
    if action == 2 or (action == 3 and not daddr_mc):
        from netstack.ipv6.icmp import icmp6_send
        icmp6_send(pkt, ICMPV6_PARAMPROB, ICMPV6_UNK_OPTION, optoff - pkt.network_header,
                   allow_mc_param=True)
    _drop(pkt, "UNHANDLED_PROTO", net)
    return False


def ip6_parse_tlv(pkt: "Packet", net: "Net", off: int, hbh: bool) -> bool:
    """``ip6_parse_tlv``: walk the options of a HBH/destination header at ``off``.
    Pad1/PadN (≤ 7 bytes of zero padding, RFC 8200), router alert (HBH), the rest by
    their action bits; malformed lengths drop with IP_INHDR."""
    buf = pkt.buf
    hlen = (buf[off + 1] + 1) << 3
    end = off + hlen
    i = off + 2
    padlen = 0
    count = 0
    while i < end:
        t = buf[i]
        if t == 0:  # Pad1
            padlen += 1
            if padlen > 7:
                _drop(pkt, "IP_INHDR", net)
                return False
            i += 1
            continue
        if i + 2 > end:
            _drop(pkt, "IP_INHDR", net)
            return False
        ol = buf[i + 1] + 2
        if i + ol > end:
            _drop(pkt, "IP_INHDR", net)
            return False
        if t == 1:  # PadN
            padlen += ol
            if padlen > 7 or any(buf[i + 2:i + ol]):
                _drop(pkt, "IP_INHDR", net)
                return False
        else:
            padlen = 0
            count += 1
            if count > MAX_TLV_OPTS:
                _drop(pkt, "IP_INHDR", net)
                return False
            if hbh and t == 5:  # router alert (RFC 2711)
                if ol != 4:
                    _drop(pkt, "IP_INHDR", net)
                    return False
                pkt.cb.ra = (buf[i + 2] << 8) | buf[i + 3]
            elif hbh and t == 0xC2:  # jumbo payload (RFC 2675, ``ipv6_hop_jumbo``)
                if not _hop_jumbo(pkt, net, i, ol):
                    return False
            elif not _tlv_unknown(pkt, net, i):
                return False
        i += ol
    return True


def _hop_jumbo(pkt: "Packet", net: "Net", i: int, ol: int) -> bool:
    """``ipv6_hop_jumbo``: the option needs payload length 0 and a length above 65535
    that fits in the data (else parameter problem / PKT_TOO_SMALL); the packet is then
    trimmed to it."""
    from netstack.ipv6.icmp import icmp6_send
    buf = pkt.buf
    o = pkt.network_header
    if ol != 6 or (i - o - 40) % 4 != 2:
        icmp6_send(pkt, ICMPV6_PARAMPROB, ICMPV6_HDR_FIELD, i + 1 - o)
        _drop(pkt, "IP_INHDR", net, "InHdrErrors")
        return False
    jlen = int.from_bytes(buf[i + 2:i + 6], "big")
    if buf[o + 4] or buf[o + 5]:
        icmp6_send(pkt, ICMPV6_PARAMPROB, ICMPV6_HDR_FIELD, i - o)
        _drop(pkt, "IP_INHDR", net, "InHdrErrors")
        return False
    if jlen <= 65535:
        icmp6_send(pkt, ICMPV6_PARAMPROB, ICMPV6_HDR_FIELD, i + 2 - o)
        _drop(pkt, "IP_INHDR", net, "InHdrErrors")
        return False
    if jlen > pkt.tail - o - 40:
        _drop(pkt, "PKT_TOO_SMALL", net, "InTruncatedPkts")
        return False
    pkt.tail = o + 40 + jlen
    return True


def ipv6_parse_hopopts(pkt: "Packet", net: "Net") -> bool:
    """``ipv6_parse_hopopts``: the HBH header must be complete; sets nhoff to its
    next-header byte."""
    off = pkt.network_header + 40
    if pkt.tail - off < 8 or pkt.tail - off < (pkt.buf[off + 1] + 1) << 3:
        _drop(pkt, "NOT_SPECIFIED", net)
        return False
    if not ip6_parse_tlv(pkt, net, off, hbh=True):
        return False
    pkt.cb.nhoff = 40
    pkt.transport_header = off + ((pkt.buf[off + 1] + 1) << 3)
    return True


# ------------------------------------------------------------------ routing
def ip6_route_input(net: "Net", pkt: "Packet") -> None:
    """``ip6_route_input``: build the flow and attach the dst."""
    buf = pkt.buf
    o = pkt.network_header
    daddr = bytes(buf[o + 24:o + 40])
    fl6 = Flowi6(daddr, bytes(buf[o + 8:o + 24]), 0, pkt.dev.ifindex, pkt.mark, buf[o + 6],
                 flowlabel=((buf[o + 1] & 0x0F) << 16) | (buf[o + 2] << 8) | buf[o + 3])
    strict = daddr[0] == 0xFF or (daddr[0] == 0xFE and (daddr[1] & 0xC0) == 0x80)
    if strict:
        fl6.oif = pkt.dev.ifindex
    dst = ip6_route_input_lookup(net, fl6)
    if dst.route is not None and len(dst.route.nexthops) > 1:
        pkt.cb.multipath = True
    pkt.dst = dst


def _can_use_hint(net: "Net", hint: "Packet | None", pkt: "Packet") -> bool:
    """``ip6_can_use_hint`` + ``ip6_extract_route_hint``."""
    if hint is None or net.ipv6.has_custom_rules or hint.cb.multipath:
        return False
    a, b = hint.network_header, pkt.network_header
    return hint.buf[a + 24:a + 40] == pkt.buf[b + 24:b + 40]


def ipv6_list_rcv(pkts: list["Packet"]) -> None:
    """The 0x86DD list handler (``ipv6_list_rcv`` + ``ip6_sublist_rcv``)."""
    hint: Packet | None = None
    cur: Any = None
    sub: list[Packet] = []
    for pkt in pkts:
        net = pkt.dev.net
        if not ip6_rcv_core(pkt, net):
            continue
        # NF_HOOK(NFPROTO_IPV6, NF_INET_PRE_ROUTING, …, ip6_rcv_finish)
        if not nf_hook(net, NFPROTO_IPV6, NF_INET_PRE_ROUTING, pkt, pkt.dev, None):
            continue
        l3mdev = getattr(pkt.dev, "l3mdev_l3_rcv", None)
        if l3mdev is not None and l3mdev(pkt, 6):
            pass  # l3mdev_ip6_rcv routed it (ipvlan l3s: in the slave's namespace)
        elif _can_use_hint(net, hint, pkt):
            pkt.dst = hint.dst  # type: ignore[union-attr]
        else:
            ip6_route_input(net, pkt)
        if pkt.dst is not cur:
            hint = pkt
            if sub:
                ip6_sublist_input(sub)
            sub = []
            cur = pkt.dst
        sub.append(pkt)
    if sub:
        ip6_sublist_input(sub)


def ip6_sublist_input(pkts: list["Packet"]) -> None:
    """``ip6_sublist_rcv_finish`` → ``dst_input`` for packets sharing one dst."""
    dst = pkts[0].dst
    kind = dst.input
    if kind == "forward":
        from netstack.ipv6.ip6_output import ip6_forward_list
        ip6_forward_list(pkts)
        return
    for pkt in pkts:
        if kind == "local":
            ip6_input(pkt)
        elif kind == "mcast":
            ip6_mc_input(pkt)
        else:
            ip6_pkt_discard(pkt)


def ip6_pkt_discard(pkt: "Packet") -> None:
    """``ip6_pkt_drop`` for error routes: unreachable/no route → ICMPv6 dest unreachable
    (code from the route), prohibit → admin prohibited, blackhole → silent."""
    from netstack.ipv6.icmp import icmp6_send
    from netstack.ipv6.route import RTN_BLACKHOLE
    net = pkt.dev.net
    dst = pkt.dst
    if dst.type == RTN_BLACKHOLE:
        _drop(pkt, "NOT_SPECIFIED", net)
        return
    o = pkt.network_header
    if pkt.buf[o + 24:o + 40] == bytes(16):
        reason, mib = "IP_INADDRERRORS", "InAddrErrors"
    else:
        reason, mib = "IP_INNOROUTES", "InNoRoutes"
    icmp6_send(pkt, 1, dst.icmp_code, 0)
    _drop(pkt, reason, net, mib)


def ip6_mc_input(pkt: "Packet") -> None:
    """``ip6_mc_input``: deliver if the device joined the group (multicast routing is not
    modelled)."""
    from netstack.ipv6.addrconf import ipv6_chk_mcast_addr
    o = pkt.network_header
    if ipv6_chk_mcast_addr(pkt.dev, bytes(pkt.buf[o + 24:o + 40])):
        ip6_input(pkt)
    else:
        _drop(pkt, "NOT_SPECIFIED", pkt.dev.net)


# ------------------------------------------------------------- local input
def ip6_input(pkt: "Packet") -> None:
    """``ip6_input_finish`` → ``ip6_protocol_deliver_rcu``: extension headers in order,
    then the final protocol."""
    net = pkt.dev.net
    # NF_HOOK(NFPROTO_IPV6, NF_INET_LOCAL_IN, …, ip6_input_finish)
    if not nf_hook(net, NFPROTO_IPV6, NF_INET_LOCAL_IN, pkt, pkt.dev, None):
        return
    # a LOCAL_IN hook may hand the packet to another device (ipvlan l3s): the protocols
    # then look their sockets up in its namespace (dev_net(skb->dev))
    net = pkt.dev.net
    if pkt.trace is not None:
        pkt.trace.event(pkt, "ip6_input")
    buf = pkt.buf
    cb = pkt.cb
    have_final = False
    while True:
        nexthdr = buf[pkt.network_header + cb.nhoff]
        off = pkt.transport_header
        if nexthdr in (NEXTHDR_ROUTING, NEXTHDR_DEST):
            if have_final:
                _drop(pkt, "NOT_SPECIFIED", net)
                return
            if pkt.tail - off < 8 or pkt.tail - off < (buf[off + 1] + 1) << 3:
                _drop(pkt, "IPV6_BAD_EXTHDR", net, "InHdrErrors")
                return
            hlen = (buf[off + 1] + 1) << 3
            if nexthdr == NEXTHDR_DEST:
                if not ip6_parse_tlv(pkt, net, off, hbh=False):
                    return
            elif buf[off + 3] != 0:  # segments left: no routing header type is enabled
                from netstack.ipv6.icmp import icmp6_send
                icmp6_send(pkt, ICMPV6_PARAMPROB, ICMPV6_HDR_FIELD,
                           off + 2 - pkt.network_header)
                _drop(pkt, "NOT_SPECIFIED", net, "InHdrErrors")
                return
            cb.nhoff = off - pkt.network_header
            pkt.transport_header = off + hlen
            continue
        if nexthdr == NEXTHDR_FRAGMENT:
            from netstack.ipv6.reassembly import ipv6_frag_rcv
            res = ipv6_frag_rcv(pkt)
            if res is None:
                return
            pkt = res
            buf = pkt.buf
            cb = pkt.cb
            continue
        if nexthdr == NEXTHDR_NONE:
            _drop(pkt, "NOT_SPECIFIED", net)
            return
        if nexthdr == NEXTHDR_HOP:
            # a hop-by-hop header anywhere but first is an unknown next header
            _unknown_proto(pkt, net)
            return
        return _deliver_final(pkt, net, nexthdr)


def _unknown_proto(pkt: "Packet", net: "Net") -> None:
    from netstack.ipv6.icmp import icmp6_send
    net.ipv6.mib["InUnknownProtos"] += 1
    icmp6_send(pkt, ICMPV6_PARAMPROB, ICMPV6_UNK_NEXTHDR, pkt.cb.nhoff)
    _drop(pkt, "IP_NOPROTO", net)


def _deliver_final(pkt: "Packet", net: "Net", nexthdr: int) -> None:
    from netstack.ipv6.addrconf import ipv6_chk_mcast_addr
    o = pkt.network_header
    daddr = bytes(pkt.buf[o + 24:o + 40])
    if nexthdr in (NEXTHDR_ICMP, NEXTHDR_UDP, NEXTHDR_TCP) or nexthdr in UNMODELLED:
        if daddr[0] == 0xFF and not ipv6_chk_mcast_addr(pkt.dev, daddr):
            _drop(pkt, "IP_INADDRERRORS", net, "InAddrErrors")
            return
    if nexthdr == NEXTHDR_ICMP:
        from netstack.ipv6.icmp import icmpv6_rcv
        net.ipv6.mib["InDelivers"] += 1
        icmpv6_rcv(pkt)
        return
    if nexthdr == NEXTHDR_UDP:
        from netstack.ipv6.udp import udpv6_rcv
        net.ipv6.mib["InDelivers"] += 1
        udpv6_rcv(pkt)
        return
    # inet6_protos registered by other modules (tcp_ipv6: IPPROTO_TCP, ip6_gre:
    # IPPROTO_GRE) for this namespace
    handler = net.proto.get("inet6_protos", {}).get(nexthdr)
    if handler is not None:
        net.ipv6.mib["InDelivers"] += 1
        handler(pkt)
        return
    if nexthdr in UNMODELLED:
        if pkt.trace is not None:
            pkt.trace.event(pkt, "ip6_protocol_deliver_rcu",
                            info=f"not supported: {UNMODELLED[nexthdr]} over IPv6")
        _drop(pkt, "NOT_SPECIFIED", net)
        return
    _unknown_proto(pkt, net)
