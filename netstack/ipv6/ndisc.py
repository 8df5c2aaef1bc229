"""Neighbour Discovery (RFC 4861, net/ipv6/ndisc.c) on the shared neighbour core.

:class:`NdiscOps` is the IPv6 ``neigh_ops``/``nd_tbl`` half given to
:class:`netstack.core.neighbour.NeighTable`: the constructor (multicast keys map to
33:33:xx without resolution, NOARP/loopback devices need none), ``ndisc_solicit``
(multicast NS to the solicited-node group, unicast probes to the cached MAC while PROBE,
the source being the packet's source if it is ours on the device, else the device's
link-local address — no usable link-local, no NS) and ``ndisc_error_report`` (ICMPv6
address unreachable, then drop with NEIGH_FAILED).

Receive (``ndisc_rcv``): hop limit must be 255 (IPV6_NDISC_HOP_LIMIT), code 0
(IPV6_NDISC_BAD_CODE), no fragments (IPV6_NDISC_FRAG), options well formed
(IPV6_NDISC_BAD_OPTIONS).  ``ndisc_recv_ns`` answers for our (non-tentative) addresses with
a solicited NA — R = our forwarding setting, S = 1, O and the target link-layer option only
when the NS was multicast — after creating/updating the sender's entry STALE from its
SLLA; a DAD NS (source ::) gets an NA to ff02::1 (S = 0) and, for a tentative address of
ours, fails our DAD.  ``ndisc_recv_na`` is RFC 4861 §7.2.5 + RFC 9131 with
``drop_unsolicited_na`` (precedence) and ``accept_untracked_na`` 0/1/2.
NS for one of our anycast addresses, and — with ``proxy_ndp`` on a forwarding interface —
for a proxy entry (``ip neigh add proxy``)
are answered too (R from the entry's router flag) — multicast ones after a random delay
below ``proxy_delay`` through the core's proxy queue (``pneigh_enqueue``/``pndisc_redo``).
Router Solicitations go out through ``ndisc_send_rs`` (scheduled by addrconf); received
ones (``ndisc_recv_rs``) make a router create a STALE entry for the soliciting host.
Router Advertisements update the neighbour entry (router flag), the default route
(``accept_ra``, ``accept_ra_defrtr``, ``ra_defrtr_metric``), hop limit and ND timers.
A router forwarding a packet back out of its input interface sends a Redirect
(``ndisc_send_redirect``: from its link-local address, target = the gateway or the
destination itself, the target's link-layer address when known, the redirected header
option quoting the packet up to the minimum MTU; rate limited per source at 1/s).
Not modelled (documented): SLAAC from prefix information options, route information
options, redirect-induced route exceptions (a valid Redirect only updates the neighbour).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.core.drop_reason import consume_skb, kfree_skb_reason
from netstack.core.netdevice import (ARPHRD_ETHER, ARPHRD_LOOPBACK, ARPHRD_NONE, IFF_LOOPBACK,
                                     IFF_NOARP)
from netstack.core.neighbour import (LOCALLY_ENQUEUED, NEIGH_UPDATE_F_ISROUTER, NEIGH_UPDATE_F_OVERRIDE,
                                     NEIGH_UPDATE_F_OVERRIDE_ISROUTER,
                                     NEIGH_UPDATE_F_WEAK_OVERRIDE, NTF_ROUTER, NUD_FAILED,
                                     NUD_NOARP, NUD_REACHABLE, NUD_STALE, NeighTable,
                                     neigh_ifdown, neigh_output, neigh_update_entry)
from netstack.ipv6.addr import (ALL_NODES, ANY, eth_mc_map, is_linklocal, is_multicast,
                                prefix_equal, solicited_node)
from netstack.packet.constants import (ND_OPT_SOURCE_LL_ADDR, ND_OPT_TARGET_LL_ADDR,
                                       NDISC_NEIGHBOUR_ADVERTISEMENT,
                                       NDISC_NEIGHBOUR_SOLICITATION, NDISC_REDIRECT,
                                       NDISC_ROUTER_ADVERTISEMENT, NDISC_ROUTER_SOLICITATION)
from netstack.packet.errors import ParseError
from netstack.packet.icmpv6 import build_icmpv6, parse_nd_options
from netstack.packet.skb import PACKET_HOST
from netstack.packet.ipv6 import build_ipv6

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.neighbour import Neighbour
    from netstack.core.netdevice import NetDevice
    from netstack.packet.skb import Packet

AF_INET6 = 10
ND_OPT_NONCE = 14
NA_ROUTER = 0x80
NA_SOLICITED = 0x40
NA_OVERRIDE = 0x20
NS_PREFIX = "net.ipv6.neigh"


def nd_parm(net: "Net", dev: "NetDevice", name: str) -> int:
    """``NEIGH_VAR(idev->nd_parms, NAME)``."""
    return int(net.sysctl.values[f"{NS_PREFIX}.{dev.name}.{name}"])


class NdiscOps:
    """``nd_tbl`` + ``ndisc_generic_ops`` (net/ipv6/ndisc.c)."""

    family = AF_INET6
    key_len = 16
    sysctl_prefix = NS_PREFIX

    def __init__(self, net: "Net") -> None:
        self.net = net

    def hash(self, key: bytes, dev: "NetDevice", hash_rnd: int) -> int:
        """``ndisc_hashfn`` (``ndisc_hashfn``: words of the key times the random)."""
        w = [int.from_bytes(key[i:i + 4], "little") for i in range(0, 16, 4)]
        return ((w[0] * hash_rnd) ^ (w[1] * (hash_rnd >> 1)) ^ (w[2] * (hash_rnd >> 2))
                ^ (w[3] * (hash_rnd >> 3)) ^ dev.ifindex) & 0xFFFFFFFF

    def is_multicast(self, key: bytes) -> bool:
        return is_multicast(key)

    def output_key(self, dev: "NetDevice", key: bytes) -> bytes:
        return key

    def constructor(self, n: "Neighbour") -> None:
        """``ndisc_constructor``."""
        dev = n.dev
        if dev.type not in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
            n.nud_state = NUD_NOARP
            n.direct = True
            return
        if is_multicast(n.key):
            n.nud_state = NUD_NOARP
            n.ha = eth_mc_map(n.key)
        elif dev.flags & (IFF_NOARP | IFF_LOOPBACK):
            n.nud_state = NUD_NOARP
            n.ha = bytes(dev.address)

    def solicit(self, n: "Neighbour", pkt: "Packet | None") -> None:
        """``ndisc_solicit``."""
        net, dev, tbl = self.net, n.dev, n.tbl
        saddr: bytes | None = None
        if pkt is not None and pkt.network_header >= 0:
            s = bytes(pkt.buf[pkt.network_header + 8:pkt.network_header + 24])
            from netstack.ipv6.addrconf import ipv6_get_ifaddr
            ifa = ipv6_get_ifaddr(net, s, dev)
            if ifa is not None and not ifa.tentative:
                saddr = s
        probes = n.probes - tbl.parm(dev, "ucast_solicit")
        if probes < 0:
            ndisc_send_ns(net, dev, n.key, n.key, saddr)
            return
        probes -= tbl.parm(dev, "app_solicit")
        if probes < 0:
            tbl.stats["app_requests"] = tbl.stats.get("app_requests", 0) + 1
            for fn in tbl.notifiers:
                fn(n)
            return
        ndisc_send_ns(net, dev, n.key, solicited_node(n.key), saddr)

    def error_report(self, n: "Neighbour", pkt: "Packet") -> None:
        """``ndisc_error_report``: ICMPv6 destination unreachable / address unreachable."""
        from netstack.ipv6.icmp import icmp6_send
        icmp6_send(pkt, 1, 3, 0)
        kfree_skb_reason(pkt, "NEIGH_FAILED", self.net)

    def pconstructor(self, pn) -> None:  # type: ignore[no-untyped-def]
        """``pndisc_constructor``: a proxy entry joins its solicited-node group so that
        multicast NS for the proxied address are received at all."""
        from netstack.ipv6.addrconf import mc_inc
        if pn.dev is not None and pn.dev.ip6_ptr is not None:
            mc_inc(pn.dev.ip6_ptr, solicited_node(pn.key))

    def pdestructor(self, pn) -> None:  # type: ignore[no-untyped-def]
        """``pndisc_destructor``: leave the group again."""
        from netstack.ipv6.addrconf import mc_dec
        if pn.dev is not None and pn.dev.ip6_ptr is not None:
            mc_dec(pn.dev.ip6_ptr, solicited_node(pn.key))

    def proxy_redo(self, pkt: "Packet") -> None:
        """``pndisc_redo``: re-run a delayed proxied NS."""
        ndisc_rcv(pkt)


def nd_tbl_create(net: "Net") -> NeighTable:
    """``ndisc_init`` for a namespace: the nd_tbl (its parms are ``net.ipv6.neigh.*``)."""
    return NeighTable(net, NdiscOps(net))


def nd_ifdown(net: "Net", dev: "NetDevice") -> None:
    """``neigh_ifdown(&nd_tbl, dev)`` from addrconf_ifdown."""
    neigh_ifdown(net.ipv6.nd_tbl, dev)


# ------------------------------------------------------------------ output
def ndisc_send_skb(net: "Net", dev: "NetDevice", daddr: bytes, saddr: bytes,
                   icmp: bytes) -> None:
    """``ndisc_send_skb``: IPv6 header with hop limit 255 and ``ndisc_tclass``, straight
    to the neighbour layer of ``dev`` (``icmp6_dst_alloc``; ND is never looped back)."""
    idev = dev.ip6_ptr
    if idev is None or not dev.is_up:
        return
    tclass = int(idev.cnf("ndisc_tclass"))
    data = build_ipv6(saddr, daddr, 58, icmp, hop_limit=255, traffic_class=tclass)
    pkt = net.world.new_packet(data)
    pkt.protocol = 0x86DD
    pkt.dev = dev
    pkt.network_header = pkt.data
    net.ipv6.mib["OutMsgs"] += 1
    net.ipv6.mib[f"OutType{icmp[0]}"] += 1
    if pkt.trace is not None:
        pkt.trace.event(pkt, "ndisc_send_skb", info=f"type={icmp[0]}")
    neigh_output(net.ipv6.nd_tbl, dev, daddr, [pkt])


def _lladdr_opt(t: int, dev: "NetDevice") -> bytes:
    """``ndisc_fill_addr_option`` for Ethernet: 8 bytes."""
    return bytes((t, 1)) + bytes(dev.address)


def ndisc_send_ns(net: "Net", dev: "NetDevice", target: bytes, daddr: bytes,
                  saddr: bytes | None, nonce: bytes = b"") -> None:
    """``ndisc_send_ns``: ``saddr`` None → the device's link-local address (no NS without
    one); ``::`` (DAD) → no source link-layer option; ``nonce`` adds option 14 (RFC 7527)."""
    if saddr is None:
        from netstack.ipv6.addrconf import IFA_F_TENTATIVE, inet6_addrs
        saddr = next((a.local for a in inet6_addrs(dev)
                      if is_linklocal(a.local) and not a.flags & IFA_F_TENTATIVE), None)
        if saddr is None:
            return
    body = bytes(4) + target
    if saddr != ANY and dev.type == ARPHRD_ETHER:
        body += _lladdr_opt(ND_OPT_SOURCE_LL_ADDR, dev)
    if nonce:
        body += bytes((ND_OPT_NONCE, 1)) + nonce
    ndisc_send_skb(net, dev, daddr, saddr,
                   build_icmpv6(NDISC_NEIGHBOUR_SOLICITATION, 0, body, saddr, daddr))


def ndisc_opt_addr(t: int, dev: "NetDevice") -> bytes:
    """``ndisc_fill_addr_option``: type, length in 8-octet units, the device address,
    zero padding to a multiple of 8 (8 bytes for Ethernet)."""
    ll = bytes(dev.address)
    space = (len(ll) + 2 + 7) & ~7
    return bytes((t, space >> 3)) + ll + bytes(space - 2 - len(ll))


def ndisc_send_rs(net: "Net", dev: "NetDevice", saddr: bytes, daddr: bytes) -> None:
    """``ndisc_send_rs`` (RFC 4861 §4.1): 4 reserved bytes and the source link-layer
    option — unless the device has no link-layer address, or (CONFIG_IPV6_OPTIMISTIC_DAD,
    RFC 4429 §2.2) ``saddr`` is not one of the device's addresses (``::`` included) or is
    optimistic.  The callers in addrconf only ever pass a usable link-local address."""
    from netstack.ipv6.addrconf import IFA_F_OPTIMISTIC, ipv6_get_ifaddr
    send_sllao = dev.type != ARPHRD_NONE and len(dev.address) > 0   # dev->addr_len
    if send_sllao:
        ifa = ipv6_get_ifaddr(net, saddr, dev)
        if ifa is None or ifa.flags & IFA_F_OPTIMISTIC:
            send_sllao = False
    body = bytes(4)
    if send_sllao:
        body += ndisc_opt_addr(ND_OPT_SOURCE_LL_ADDR, dev)
    ndisc_send_skb(net, dev, daddr, saddr,
                   build_icmpv6(NDISC_ROUTER_SOLICITATION, 0, body, saddr, daddr))


def ndisc_send_na(net: "Net", dev: "NetDevice", daddr: bytes, target: bytes, router: bool,
                  solicited: bool, override: bool, inc_opt: bool) -> None:
    """``ndisc_send_na``: the source is the target if it is ours, else source selection."""
    from netstack.ipv6.addrconf import IFA_F_OPTIMISTIC, ipv6_dev_get_saddr, ipv6_get_ifaddr
    ifa = ipv6_get_ifaddr(net, target, dev)
    if ifa is not None:
        src = target
        if ifa.flags & IFA_F_OPTIMISTIC:
            override = False
        inc_opt = inc_opt or bool(dev.ip6_ptr.cnf("force_tllao"))
    else:
        s = ipv6_dev_get_saddr(net, dev, daddr)
        if s is None:
            return
        src = s
    if dev.type != ARPHRD_ETHER:
        inc_opt = False
    flags = (NA_ROUTER if router else 0) | (NA_SOLICITED if solicited else 0) | \
        (NA_OVERRIDE if override else 0)
    body = bytes((flags, 0, 0, 0)) + target
    if inc_opt:
        body += _lladdr_opt(ND_OPT_TARGET_LL_ADDR, dev)
    ndisc_send_skb(net, dev, daddr, src,
                   build_icmpv6(NDISC_NEIGHBOUR_ADVERTISEMENT, 0, body, src, daddr))


def ndisc_send_redirect(net: "Net", pkt: "Packet", target: bytes) -> None:
    """``ndisc_send_redirect`` for a packet about to be forwarded out of its input device
    (``pkt.dst.dev``), before its hop limit is decremented."""
    from netstack.core.neighbour import NUD_VALID
    from netstack.errors import KernelError
    from netstack.ipv6.addrconf import IFA_F_TENTATIVE, inet6_addrs
    from netstack.ipv6.icmp import inet_peer_xrlim_allow
    from netstack.ipv6.route import Flowi6, ip6_route_output
    dev = pkt.dst.dev
    o = pkt.network_header
    buf = pkt.buf
    saddr = bytes(buf[o + 8:o + 24])
    daddr = bytes(buf[o + 24:o + 40])
    lladdr = next((a.local for a in inet6_addrs(dev)
                   if is_linklocal(a.local) and not a.flags & IFA_F_TENTATIVE), None)
    if lladdr is None:
        return
    if daddr != target and not is_linklocal(target):
        return
    try:
        dst = ip6_route_output(net, Flowi6(saddr, lladdr, dev.ifindex, 0, 0, 58))
    except KernelError:
        return
    if dst.gateway is not None:
        return  # the source is not a neighbour
    if not inet_peer_xrlim_allow(net, saddr, 1000):
        return
    opts = b""
    if dev.type == ARPHRD_ETHER:
        n = net.ipv6.nd_tbl.lookup_or_create(dev, target)
        if n is None:
            return
        if n.nud_state & NUD_VALID:
            opts = bytes((ND_OPT_TARGET_LL_ADDR, 1)) + n.ha
    rd_len = min(1280 - 40 - len(opts), (pkt.tail - o) + 8) & ~7
    if rd_len:
        opts += bytes((4, rd_len >> 3)) + bytes(6) + bytes(buf[o:o + rd_len - 8])
    body = bytes(4) + target + daddr + opts
    ndisc_send_skb(net, dev, saddr, lladdr,
                   build_icmpv6(NDISC_REDIRECT, 0, body, lladdr, saddr))


# ----------------------------------------------------------------- receive
class _Opts:
    """``struct ndisc_options`` (the options ndisc cares about)."""

    __slots__ = ("slla", "tlla", "nonce", "mtu", "bad_ll")

    def __init__(self) -> None:
        self.slla: bytes | None = None
        self.tlla: bytes | None = None
        self.nonce: bytes | None = None
        self.mtu: int | None = None
        self.bad_ll = False


def _parse_opts(dev: "NetDevice", raw: bytes) -> _Opts:
    """``ndisc_parse_options`` (raises ParseError IPV6_NDISC_BAD_OPTIONS) and
    ``ndisc_opt_addr_data`` (a link-layer option of the wrong size is unusable)."""
    o = _Opts()
    for opt in parse_nd_options(raw):
        if opt.type in (ND_OPT_SOURCE_LL_ADDR, ND_OPT_TARGET_LL_ADDR):
            v = opt.value
            assert isinstance(v, bytes)
            # option length 8 for Ethernet: 6 address bytes, no padding beyond
            if len(v) != 6:
                o.bad_ll = True
                ll = None
            else:
                ll = v
            if opt.type == ND_OPT_SOURCE_LL_ADDR:
                if o.slla is None:
                    o.slla = ll
            elif o.tlla is None:
                o.tlla = ll
        elif opt.type == ND_OPT_NONCE and isinstance(opt.value, bytes) and len(opt.value) == 6:
            o.nonce = opt.value
    return o


def ndisc_rcv(pkt: "Packet") -> None:
    """``ndisc_rcv``: called by icmpv6_rcv with ``transport_header`` at the ICMPv6 header
    and ``pkt.cb`` holding the Ip6Cb."""
    reason = _ndisc_rcv(pkt)
    if reason is None:
        consume_skb(pkt, "ndisc_rcv")
    elif reason:
        kfree_skb_reason(pkt, reason)
    # "": the packet was queued (a delayed proxy answer) and is not freed here


def _ndisc_rcv(pkt: "Packet") -> str | None:
    nh = pkt.network_header
    buf = pkt.buf
    cb = pkt.cb
    if cb is not None and getattr(cb, "fragmented", False):
        return "IPV6_NDISC_FRAG"
    if buf[nh + 7] != 255:
        return "IPV6_NDISC_HOP_LIMIT"
    th = pkt.transport_header
    if buf[th + 1] != 0:
        return "IPV6_NDISC_BAD_CODE"
    t = buf[th]
    msg = bytes(buf[th:pkt.tail])
    saddr = bytes(buf[nh + 8:nh + 24])
    daddr = bytes(buf[nh + 24:nh + 40])
    try:
        if t == NDISC_NEIGHBOUR_SOLICITATION:
            return ndisc_recv_ns(pkt, msg, saddr, daddr)
        if t == NDISC_NEIGHBOUR_ADVERTISEMENT:
            return ndisc_recv_na(pkt, msg, saddr, daddr)
        if t == NDISC_ROUTER_SOLICITATION:
            return ndisc_recv_rs(pkt, msg, saddr)
        if t == NDISC_ROUTER_ADVERTISEMENT:
            return ndisc_router_discovery(pkt, msg, saddr)
        if t == NDISC_REDIRECT:
            return ndisc_redirect_rcv(pkt, msg, saddr)
    except ParseError as e:
        return e.reason
    return "NOT_SPECIFIED"


def _update(n: "Neighbour", lladdr: bytes | None, state: int, flags: int) -> None:
    """``ndisc_update`` = neigh_update (+ ndisc_ops_update, nothing for Ethernet)."""
    neigh_update_entry(n, lladdr, state, flags)


def ndisc_recv_ns(pkt: "Packet", msg: bytes, saddr: bytes, daddr: bytes) -> str | None:
    """``ndisc_recv_ns``."""
    from netstack.ipv6.addrconf import (IFA_F_OPTIMISTIC, IFA_F_TENTATIVE, addrconf_dad_failure,
                                        ipv6_get_ifaddr)
    dev = pkt.dev
    net = dev.net
    if len(msg) < 24:
        return "PKT_TOO_SMALL"
    target = msg[8:24]
    dad = saddr == ANY
    if is_multicast(target):
        return "NOT_SPECIFIED"
    if dad and daddr[:13] != bytes.fromhex("ff0200000000000000000001ff"):
        return "NOT_SPECIFIED"
    opts = _parse_opts(dev, msg[24:])
    lladdr = opts.slla
    if opts.bad_ll and lladdr is None and opts.tlla is None and not dad:
        return "IPV6_NDISC_BAD_OPTIONS"
    if lladdr is not None and dad:
        return "IPV6_NDISC_BAD_OPTIONS"
    inc = is_multicast(daddr)
    ifa = ipv6_get_ifaddr(net, target, dev)
    idev = dev.ip6_ptr
    if idev is None:
        return "NOT_SPECIFIED"
    is_router = -1
    if ifa is not None:
        if ifa.flags & (IFA_F_TENTATIVE | IFA_F_OPTIMISTIC):
            if dad:
                if opts.nonce is not None and opts.nonce == ifa.dad_nonce:
                    return "NOT_SPECIFIED"  # our own NS looped back (enhanced DAD)
                addrconf_dad_failure(net, ifa)
                return "NOT_SPECIFIED"
            if not ifa.flags & IFA_F_OPTIMISTIC:
                return "NOT_SPECIFIED"
    else:
        from netstack.ipv6.addrconf import ipv6_chk_acast_addr
        tbl = net.ipv6.nd_tbl
        if ipv6_chk_acast_addr(net, dev, target):
            pn = None
        else:
            pn = tbl.pneigh_lookup(target, dev) if idev.cnf("forwarding") and (
                net.sysctl.values["net.ipv6.conf.all.proxy_ndp"] or idev.cnf("proxy_ndp")) \
                else None
            if pn is None:
                return "IPV6_NDISC_NS_OTHERHOST"
            is_router = 1 if pn.flags & NTF_ROUTER else 0
        if pkt.cb != LOCALLY_ENQUEUED and pkt.pkt_type != PACKET_HOST and is_multicast(daddr) \
                and tbl.parm(dev, "proxy_delay") != 0:
            tbl.pneigh_enqueue(pkt)  # answered later by pndisc_redo
            return ""
    if is_router < 0:
        is_router = int(bool(idev.cnf("forwarding")))
    if dad:
        ndisc_send_na(net, dev, ALL_NODES, target, bool(is_router), False, ifa is not None, True)
        return None
    tbl = net.ipv6.nd_tbl
    n = tbl.lookup_or_create(dev, saddr, create=(not inc) or lladdr is not None)
    if n is not None:
        _update(n, lladdr, NUD_STALE, NEIGH_UPDATE_F_WEAK_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE)
        ndisc_send_na(net, dev, saddr, target, bool(is_router), True, ifa is not None and inc,
                      inc)
        return None
    return "NOT_SPECIFIED"


def _accept_untracked_na(net: "Net", dev: "NetDevice", saddr: bytes) -> bool:
    """``accept_untracked_na``: 0 never, 1 always, 2 if saddr is on a prefix of ``dev``."""
    mode = int(dev.ip6_ptr.cnf("accept_untracked_na"))
    if mode == 1:
        return True
    if mode == 2:
        return any(prefix_equal(a.local, saddr, a.prefixlen) for a in dev.ip6_ptr.addrs)
    return False


def ndisc_recv_na(pkt: "Packet", msg: bytes, saddr: bytes, daddr: bytes) -> str | None:
    """``ndisc_recv_na`` (RFC 4861 §7.2.5, RFC 9131)."""
    from netstack.ipv6.addrconf import IFA_F_TENTATIVE, addrconf_dad_failure, ipv6_get_ifaddr
    from netstack.packet.skb import PACKET_LOOPBACK
    dev = pkt.dev
    net = dev.net
    if len(msg) < 24:
        return "PKT_TOO_SMALL"
    flags = msg[4]
    target = msg[8:24]
    solicited = bool(flags & NA_SOLICITED)
    idev = dev.ip6_ptr
    if is_multicast(target):
        return "NOT_SPECIFIED"
    if is_multicast(daddr) and solicited:
        return "NOT_SPECIFIED"
    if not solicited and idev is not None and idev.cnf("drop_unsolicited_na"):
        return "NOT_SPECIFIED"
    opts = _parse_opts(dev, msg[24:])
    lladdr = opts.tlla
    if opts.bad_ll and lladdr is None:
        return "NOT_SPECIFIED"
    ifa = ipv6_get_ifaddr(net, target, dev)
    if ifa is not None:
        if pkt.pkt_type != PACKET_LOOPBACK and ifa.flags & IFA_F_TENTATIVE:
            addrconf_dad_failure(net, ifa)
        return "NOT_SPECIFIED"
    tbl = net.ipv6.nd_tbl
    n = tbl.lookup(dev, target)
    new_state = NUD_REACHABLE if solicited else NUD_STALE
    if n is None and lladdr is not None and idev is not None and idev.cnf("forwarding"):
        if _accept_untracked_na(net, dev, saddr):
            n = tbl.lookup_or_create(dev, target)
            new_state = NUD_STALE
    if n is None:
        return "NOT_SPECIFIED"
    if n.nud_state & NUD_FAILED:
        return "NOT_SPECIFIED"
    if (lladdr is not None and lladdr == bytes(dev.address)
            and net.sysctl.values["net.ipv6.conf.all.forwarding"]
            and net.sysctl.values["net.ipv6.conf.all.proxy_ndp"]
            and tbl.pneigh_lookup(target, dev) is not None):
        return "NOT_SPECIFIED"
    upd = NEIGH_UPDATE_F_WEAK_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE_ISROUTER
    if flags & NA_OVERRIDE:
        upd |= NEIGH_UPDATE_F_OVERRIDE
    if flags & NA_ROUTER:
        upd |= NEIGH_UPDATE_F_ISROUTER
    _update(n, lladdr, new_state, upd)
    return None


def ndisc_recv_rs(pkt: "Packet", msg: bytes, saddr: bytes) -> str | None:
    """``ndisc_recv_rs``: only routers learn the soliciting host's address."""
    dev = pkt.dev
    if len(msg) < 8:
        return "PKT_TOO_SMALL"
    idev = dev.ip6_ptr
    if idev is None or not idev.cnf("forwarding") or saddr == ANY:
        return "NOT_SPECIFIED"
    opts = _parse_opts(dev, msg[8:])
    if opts.bad_ll and opts.slla is None:
        return "NOT_SPECIFIED"
    n = dev.net.ipv6.nd_tbl.lookup_or_create(dev, saddr)
    if n is None:
        return "NOT_SPECIFIED"
    _update(n, opts.slla, NUD_STALE, NEIGH_UPDATE_F_WEAK_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE
            | NEIGH_UPDATE_F_OVERRIDE_ISROUTER)
    return None


def _accept_ra(idev) -> bool:  # type: ignore[no-untyped-def]
    """``ipv6_accept_ra``: any non-zero value when not forwarding, only 2 when forwarding."""
    from netstack.ipv6.addrconf import ipv6_accept_ra
    return ipv6_accept_ra(idev)


def ndisc_router_discovery(pkt: "Packet", msg: bytes, saddr: bytes) -> str | None:
    """``ndisc_router_discovery`` (without SLAAC/route information, see module doc)."""
    from netstack.ipv6 import route as r6
    from netstack.ipv6.addrconf import ipv6_chk_addr
    dev = pkt.dev
    net = dev.net
    if not is_linklocal(saddr):
        return "NOT_SPECIFIED"
    if len(msg) < 16:
        return "PKT_TOO_SMALL"
    idev = dev.ip6_ptr
    if idev is None:
        return "NOT_SPECIFIED"
    opts = _parse_opts(dev, msg[16:])
    sc = net.sysctl
    if _accept_ra(idev) and idev.rs_sent:
        idev.ra_rcvd = True  # IF_RA_RCVD: addrconf_rs_timer stops soliciting
    if _accept_ra(idev) and idev.cnf("accept_ra_defrtr"):
        lifetime = int.from_bytes(msg[6:8], "big")
        if not (lifetime and lifetime < idev.cnf("accept_ra_min_lft")) and not (
                not idev.cnf("accept_ra_from_local") and ipv6_chk_addr(net, saddr, dev)):
            metric = int(idev.cnf("ra_defrtr_metric"))
            existing = None
            main = r6.get_table(net, r6.RT_TABLE_MAIN)
            for rt in (main.node(ANY, 0) or []) if main else []:
                if rt.protocol == r6.RTPROT_RA and rt.nexthops and rt.nexthops[0].gw == saddr \
                        and rt.nexthops[0].dev is dev:
                    existing = rt
            if existing is not None and (lifetime == 0 or existing.priority != metric):
                main.node(ANY, 0).remove(existing)  # type: ignore[union-attr]
                main.prune(ANY, 0)  # type: ignore[union-attr]
                r6._invalidate(net)
                existing = None
            if existing is None and lifetime:
                r6.fib6_route_add(net, r6.Fib6Route(ANY, 0, r6.RTN_UNICAST, r6.RTPROT_RA, metric,
                                                    r6.RT_TABLE_MAIN,
                                                    [r6.Fib6Nexthop(saddr, dev)], addrconf=True))
            hl = msg[4]
            if hl and idev.cnf("accept_ra_min_hop_limit") <= hl:
                sc.values[f"net.ipv6.conf.{dev.name}.hop_limit"] = hl
        retrans = int.from_bytes(msg[12:16], "big")
        if retrans:
            sc.set(f"{NS_PREFIX}.{dev.name}.retrans_time_ms", max(retrans, 10))
        reach = int.from_bytes(msg[8:12], "big")
        if reach and max(reach, 100) != nd_parm(net, dev, "base_reachable_time_ms"):
            sc.set(f"{NS_PREFIX}.{dev.name}.base_reachable_time_ms", max(reach, 100))
    if opts.bad_ll and opts.slla is None:
        return "NOT_SPECIFIED"
    n = net.ipv6.nd_tbl.lookup_or_create(dev, saddr)
    if n is None:
        return "NOT_SPECIFIED"
    _update(n, opts.slla, NUD_STALE, NEIGH_UPDATE_F_WEAK_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE
            | NEIGH_UPDATE_F_OVERRIDE_ISROUTER | NEIGH_UPDATE_F_ISROUTER)
    n.flags |= NTF_ROUTER
    return None


def ndisc_redirect_rcv(pkt: "Packet", msg: bytes, saddr: bytes) -> str | None:
    """``ndisc_redirect_rcv`` + the neighbour part of ``rt6_do_redirect``: source must be
    link-local, destination not multicast; the target's entry is updated STALE (router
    flag when target != destination)."""
    dev = pkt.dev
    if len(msg) < 40:
        return "PKT_TOO_SMALL"
    if not is_linklocal(saddr):
        return "NOT_SPECIFIED"
    idev = dev.ip6_ptr
    target, dest = msg[8:24], msg[24:40]
    if is_multicast(dest):
        return "NOT_SPECIFIED"
    if idev is None or idev.cnf("forwarding") or not idev.cnf("accept_redirects"):
        return "NOT_SPECIFIED"
    on_link = target == dest
    if not on_link and not is_linklocal(target):
        return "NOT_SPECIFIED"
    opts = _parse_opts(dev, msg[40:])
    n = dev.net.ipv6.nd_tbl.lookup_or_create(dev, target)
    if n is None:
        return "NOT_SPECIFIED"
    _update(n, opts.tlla, NUD_STALE, NEIGH_UPDATE_F_WEAK_OVERRIDE | NEIGH_UPDATE_F_OVERRIDE
            | (0 if on_link else NEIGH_UPDATE_F_OVERRIDE_ISROUTER | NEIGH_UPDATE_F_ISROUTER))
    return None
