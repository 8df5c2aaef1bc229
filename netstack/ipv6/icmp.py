"""ICMPv6 (RFC 4443, net/ipv6/icmp.c): receive, echo reply, error generation, rate limit.

``icmp6_send`` follows the kernel's checks in order: the offending packet must have a
full IPv6 header; a multicast destination or a non-PACKET_HOST frame gets no error except
Packet Too Big and Parameter Problem "unrecognized option" with the option type's high bits
10 (RFC 4443 §2.4(e.3)); the offending source must be a single node (not ::, not
multicast); never in reply to an ICMPv6 error (``is_ineligible``, which looks past the
extension headers); the per-destination token bucket ``icmpv6_xrlim_allow`` (tokens in
jiffies, ``net.ipv6.icmp.ratelimit`` ms per message — halved for every 32 bits the route's
prefix is shorter than /128 — bursts of 6, types selected by ``net.ipv6.icmp.ratemask``,
Packet Too Big and informational messages never limited, loopback never limited).
The source is the offending destination if it is ours — a unicast address of the
input device's namespace or one of our anycast addresses (``ipv6_chk_acast_addr_src``) —
else source selection toward the offending source on the input device.  No error goes
to an offending source the route calls anycast (``icmpv6_route_lookup`` with
``ipv6_anycast_destination``) unless ``net.ipv6.icmp.error_anycast_as_unicast`` is 1.  The error quotes as much of the offending packet
as fits in the minimum MTU of 1280 bytes (RFC 4443 §2.4(c)).

Before the per-destination bucket, a rate-limited type must also pass the namespace-wide
limiter it shares with IPv4 (``icmpv6_global_allow`` → ``icmp_global_allow``,
``net.ipv4.icmp_msgs_per_sec``/``icmp_msgs_burst``; a message that goes out consumes a
random 0–2 credits, ``icmp_global_consume``).  Without the IPv4 subsystem in the world
there is no global limiter (nothing to share it with).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.core.drop_reason import consume_skb, kfree_skb_reason
from netstack.core.netdevice import IFF_LOOPBACK
from netstack.core.rtnetlink import RTN_ANYCAST
from netstack.ipv6.addr import is_multicast
from netstack.packet.checksum import csum_ipv6_magic, csum_partial
from netstack.packet.skb import PACKET_HOST

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

ICMPV6_DEST_UNREACH = 1
ICMPV6_PKT_TOOBIG = 2
ICMPV6_TIME_EXCEED = 3
ICMPV6_PARAMPROB = 4
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129
ICMPV6_UNK_OPTION = 2
ICMPV6_INFOMSG_MASK = 0x80
IPV6_MIN_MTU = 1280
XRLIM_BURST_FACTOR = 6
HZ = 1000
_EXT = (0, 43, 44, 51, 60)


def _is_ineligible(pkt: "Packet") -> bool:
    """``is_ineligible``: an ICMPv6 error (or something unparsable) gets no error back."""
    buf = pkt.buf
    o = pkt.network_header
    nexthdr = buf[o + 6]
    off = o + 40
    end = pkt.tail
    while nexthdr in _EXT:
        if end - off < 2:
            return False
        if nexthdr == 44:
            if end - off < 8:
                return False
            if ((buf[off + 2] << 8) | buf[off + 3]) & 0xFFF8:
                return False  # non-first fragment: not an ICMP header
            hl = 8
        elif nexthdr == 51:
            hl = (buf[off + 1] + 2) << 2
        else:
            hl = (buf[off + 1] + 1) << 3
        nexthdr = buf[off]
        off += hl
    if off > end:
        return True
    if nexthdr == 58:
        if off >= end:
            return True
        return not buf[off] & ICMPV6_INFOMSG_MASK
    return False


def _opt_unrec(pkt: "Packet", offset: int) -> bool:
    """``opt_unrec``: the unrecognised option's type has action bits 10."""
    i = pkt.network_header + offset
    return i < pkt.tail and (pkt.buf[i] & 0xC0) == 0x80


def _ipv4_icmp(net: "Net"):  # type: ignore[no-untyped-def]
    """The IPv4 ICMP module when IPv4 runs in this world (it owns the global limiter)."""
    if getattr(net, "ipv4", None) is None:
        return None
    try:
        from netstack.ipv4 import icmp as icmp4
    except ImportError:  # pragma: no cover - IPv4 datapath not installed
        return None
    return icmp4 if hasattr(icmp4, "icmp_global_allow") else None


def icmpv6_global_allow(net: "Net", type_: int) -> tuple[bool, bool]:
    """``icmpv6_global_allow`` → (allowed, apply_ratelimit): types outside
    ``net.ipv6.icmp.ratemask`` are never limited."""
    if type_ > 255 or type_ not in net.ipv6.icmp_ratemask:
        return True, False
    icmp4 = _ipv4_icmp(net)
    if icmp4 is None or icmp4.icmp_global_allow(net):
        return True, True
    net.ipv6.mib["IcmpRateLimitGlobal"] += 1
    return False, False


def inet_peer_xrlim_allow(net: "Net", addr: bytes, timeout: int) -> bool:
    """``inet_peer_xrlim_allow`` on the namespace's IPv6 peer for ``addr`` (shared by
    ICMPv6 errors and redirects, as ``net->ipv6.peers``): tokens in jiffies, capped at
    6 × timeout; a new peer starts as if last used 60 s ago."""
    now = net.world.clock.jiffies
    peer = net.ipv6.icmp_peers.get(addr)
    if peer is None:
        peer = net.ipv6.icmp_peers[addr] = [0, now - 60 * HZ]
    token = peer[0] + now - peer[1]
    peer[1] = now
    token = min(token, XRLIM_BURST_FACTOR * timeout)
    ok = False
    if token >= timeout:
        token -= timeout
        ok = True
    peer[0] = token
    return ok


def icmpv6_xrlim_allow(net: "Net", type_: int, daddr: bytes, dst,  # type: ignore[no-untyped-def]
                       apply_ratelimit: bool = True) -> bool:
    """Per-destination limit (``icmpv6_xrlim_allow``), on jiffies of the virtual clock;
    a message allowed here consumes global credit (``icmp_global_consume``)."""
    if not apply_ratelimit:
        return True
    if type_ & ICMPV6_INFOMSG_MASK or type_ == ICMPV6_PKT_TOOBIG:
        return True
    if dst.dev is not None and dst.dev.flags & IFF_LOOPBACK:
        ok = True
    else:
        tmo = int(net.sysctl.values["net.ipv6.icmp.ratelimit"])
        plen = dst.route.dst_len if dst.route is not None else 128
        if plen < 128:
            tmo >>= (128 - plen) >> 5
        ok = inet_peer_xrlim_allow(net, daddr, tmo)
    if ok:
        icmp4 = _ipv4_icmp(net)
        if icmp4 is not None:
            icmp4.icmp_global_consume(net)
    return ok


def _chk_acast_addr_src(net: "Net", dev, addr: bytes) -> bool:  # type: ignore[no-untyped-def]
    """``ipv6_chk_acast_addr_src`` (net/ipv6/anycast.c): ``addr`` is one of our anycast
    addresses — on ``dev`` when link-local, on any device otherwise.  ``icmp6_send`` then
    answers *from* the anycast destination (measured on 6.18: a UDP packet to the
    subnet-router anycast 2001:db8:2:: arriving on another interface gets its port
    unreachable from 2001:db8:2::, whatever ``error_anycast_as_unicast`` says)."""
    from netstack.ipv6.addrconf import ipv6_chk_acast_addr
    linklocal = addr[0] == 0xFE and (addr[1] & 0xC0) == 0x80
    return ipv6_chk_acast_addr(net, dev if linklocal else None, addr)


def ipv6_anycast_destination(dst, daddr: bytes) -> bool:  # type: ignore[no-untyped-def]
    """``ipv6_anycast_destination`` (include/net/ip6_route.h): the route is an anycast
    route, or an on-link (no gateway) prefix shorter than /127 whose prefix address is
    ``daddr`` itself — the subnet-router anycast address of that prefix."""
    if dst.type == RTN_ANYCAST:
        return True
    r = dst.route
    return (r is not None and r.dst_len < 127 and dst.gateway is None
            and r.dst == daddr)


def icmp6_send(pkt: "Packet", type_: int, code: int, info: int,
               allow_mc_param: bool = False) -> None:
    """``icmp6_send``: build and send an ICMPv6 error about ``pkt`` (left untouched)."""
    from netstack.ipv6.addrconf import ipv6_chk_addr, ipv6_dev_get_saddr
    from netstack.ipv6.ip6_output import ip6_send
    from netstack.ipv6.route import Flowi6, ip6_route_output
    from netstack.errors import KernelError
    o = pkt.network_header
    if o < 0 or o + 40 > pkt.tail or pkt.dev is None:
        return
    dev = pkt.dev
    net = dev.net
    buf = pkt.buf
    odaddr = bytes(buf[o + 24:o + 40])
    osaddr = bytes(buf[o + 8:o + 24])
    saddr: bytes | None = None
    if ipv6_chk_addr(net, odaddr, dev) or _chk_acast_addr_src(net, dev, odaddr):
        saddr = odaddr
    if is_multicast(odaddr) or pkt.pkt_type != PACKET_HOST:
        if type_ != ICMPV6_PKT_TOOBIG and not (type_ == ICMPV6_PARAMPROB
                                               and code == ICMPV6_UNK_OPTION
                                               and _opt_unrec(pkt, info)):
            return
        saddr = None
    if osaddr == bytes(16) or is_multicast(osaddr):
        return
    if _is_ineligible(pkt):
        return
    apply_ratelimit = False
    if not dev.flags & IFF_LOOPBACK:
        allowed, apply_ratelimit = icmpv6_global_allow(net, type_)
        if not allowed:
            return
    oif = 0
    if osaddr[0] == 0xFE and (osaddr[1] & 0xC0) == 0x80:
        oif = pkt.cb.iif if pkt.cb is not None and hasattr(pkt.cb, "iif") else dev.ifindex
    if saddr is None:
        iif = pkt.cb.iif if pkt.cb is not None and hasattr(pkt.cb, "iif") else dev.ifindex
        in_dev = net.get_by_index(iif)
        if in_dev is not None:
            saddr = ipv6_dev_get_saddr(net, in_dev, osaddr)
    fl6 = Flowi6(osaddr, saddr or bytes(16), oif, 0, pkt.mark, 58)
    try:
        dst = ip6_route_output(net, fl6)
    except KernelError:
        net.ipv6.mib["OutNoRoutes"] += 1
        return
    if (not int(net.sysctl.values.get("net.ipv6.icmp.error_anycast_as_unicast", 0))
            and ipv6_anycast_destination(dst, osaddr)):
        return      # icmpv6_route_lookup: "icmp6_send: acast source"
    if not icmpv6_xrlim_allow(net, type_, osaddr, dst, apply_ratelimit):
        net.ipv6.mib["Icmp6OutRateLimitHost"] += 1
        return
    if saddr is None:
        saddr = ipv6_dev_get_saddr(net, dst.dev, osaddr)
        if saddr is None:
            return
    quote = bytes(buf[o:pkt.tail])[: IPV6_MIN_MTU - 40 - 8]
    body = bytearray(bytes((type_, code, 0, 0)) + (info & 0xFFFFFFFF).to_bytes(4, "big") + quote)
    c = csum_ipv6_magic(saddr, osaddr, len(body), 58, csum_partial(body))
    body[2], body[3] = c >> 8, c & 0xFF
    net.ipv6.mib["Icmp6OutMsgs"] += 1
    net.ipv6.mib[f"Icmp6OutType{type_}"] += 1
    if pkt.trace is not None:
        pkt.trace.event(pkt, "icmp6_send", info=f"type={type_} code={code} info={info}")
    if pkt.ct is None or type_ & 0x80:
        ip6_send(net, dst, saddr, osaddr, 58, bytes(body), trace_from=pkt)
        return
    _send_related(net, dst, saddr, osaddr, bytes(body), pkt)


def _send_related(net: "Net", dst, saddr: bytes, daddr: bytes,  # type: ignore[no-untyped-def]
                  body: bytes, orig: "Packet") -> None:
    """``ip6_send`` for an error about a tracked packet: ``icmpv6_getfrag`` calls
    ``nf_ct_attach(skb, org_skb)`` for error types (net/ipv6/icmp.c), so the error is
    RELATED to the offending packet's connection and NAT rewrites its quoted header
    before it leaves.  The skb is built as ``ip6_send`` builds it, the attach coming
    between building and ``ip6_local_out``."""
    from netstack.ipv6.ip6_output import ETH_P_IPV6, ip6_dst_hoplimit, ip6_local_out
    from netstack.ipv6.ip6_output import ip6_make_flowlabel
    from netstack.netfilter.conntrack import nf_ct_attach
    from netstack.packet.ipv6 import build_ipv6
    data = build_ipv6(saddr, daddr, 58, body, traffic_class=0,
                      flow_label=ip6_make_flowlabel(net, saddr, daddr, 58, 0, 0),
                      hop_limit=ip6_dst_hoplimit(dst))
    skb = net.world.new_packet(data)
    if orig.trace is None:
        skb.trace = None
    skb.network_header = skb.data
    skb.transport_header = skb.data + 40
    skb.protocol = ETH_P_IPV6
    skb.dst = dst
    skb.dev = dst.dev
    nf_ct_attach(skb, orig)
    ip6_local_out(net, skb)


def icmpv6_rcv(pkt: "Packet") -> None:
    """``icmpv6_rcv``: checksum, then echo / ND / errors (errors go to the sockets)."""
    net = pkt.dev.net
    o = pkt.network_header
    th = pkt.transport_header
    buf = pkt.buf
    saddr = bytes(buf[o + 8:o + 24])
    daddr = bytes(buf[o + 24:o + 40])
    end = pkt.tail
    if end - th < 4:
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
        return
    if csum_ipv6_magic(saddr, daddr, end - th, 58, csum_partial(buf[th:end])) != 0:
        net.ipv6.mib["Icmp6InCsumErrors"] += 1
        kfree_skb_reason(pkt, "ICMP_CSUM", net)
        return
    t = buf[th]
    net.ipv6.mib["Icmp6InMsgs"] += 1
    net.ipv6.mib[f"Icmp6InType{t}"] += 1
    if t == ICMPV6_ECHO_REQUEST:
        sc = net.sysctl.values
        if not sc["net.ipv6.icmp.echo_ignore_all"] and not (
                is_multicast(daddr) and sc["net.ipv6.icmp.echo_ignore_multicast"]):
            icmpv6_echo_reply(pkt)
        consume_skb(pkt, "icmpv6_rcv")
        return
    if t in (130, 131, 132, 143):
        # ICMPV6_MGM_QUERY / REPORT / REDUCTION, ICMPV6_MLD2_REPORT (net/ipv6/mcast.c)
        from netstack.ipv6.mcast import igmp6_event
        reason = igmp6_event(pkt, t, bytes(buf[th:end]))
        if reason is not None:
            kfree_skb_reason(pkt, reason, net)
        else:
            consume_skb(pkt, "icmpv6_rcv")
        return
    if 133 <= t <= 137:
        from netstack.ipv6.ndisc import ndisc_rcv
        ndisc_rcv(pkt)
        return
    if t in (ICMPV6_ECHO_REPLY, ICMPV6_DEST_UNREACH, ICMPV6_PKT_TOOBIG, ICMPV6_TIME_EXCEED,
             ICMPV6_PARAMPROB):
        from netstack.ipv6.udp import icmpv6_to_sockets
        icmpv6_to_sockets(net, pkt, t)
    consume_skb(pkt, "icmpv6_rcv")


def icmpv6_echo_reply(pkt: "Packet") -> None:
    """``icmpv6_echo_reply``: same identifier, sequence and data, type 129; the source is
    the request's destination when unicast, else source selection."""
    from netstack.ipv6.addrconf import ipv6_chk_addr, ipv6_dev_get_saddr
    from netstack.ipv6.ip6_output import ip6_send
    from netstack.ipv6.route import Flowi6, ip6_route_output
    from netstack.errors import KernelError
    net = pkt.dev.net
    o, th = pkt.network_header, pkt.transport_header
    buf = pkt.buf
    saddr = bytes(buf[o + 24:o + 40])
    daddr = bytes(buf[o + 8:o + 24])
    if daddr == bytes(16) or is_multicast(daddr):
        return
    src: bytes | None = saddr
    if is_multicast(saddr) or not ipv6_chk_addr(net, saddr, pkt.dev):
        src = None
    oif = pkt.dev.ifindex if (daddr[0] == 0xFE and (daddr[1] & 0xC0) == 0x80) else 0
    try:
        dst = ip6_route_output(net, Flowi6(daddr, src or bytes(16), oif, 0, pkt.mark, 58))
    except KernelError:
        return
    if src is None:
        src = ipv6_dev_get_saddr(net, dst.dev, daddr)
        if src is None:
            return
    body = bytearray(buf[th:pkt.tail])
    body[0] = ICMPV6_ECHO_REPLY
    body[2] = body[3] = 0
    c = csum_ipv6_magic(src, daddr, len(body), 58, csum_partial(body))
    body[2], body[3] = c >> 8, c & 0xFF
    net.ipv6.mib["Icmp6OutMsgs"] += 1
    net.ipv6.mib["Icmp6OutType129"] += 1
    tclass = ((buf[o] & 0x0F) << 4) | (buf[o + 1] >> 4)
    ip6_send(net, dst, src, daddr, 58, bytes(body), tclass=tclass, trace_from=pkt)
