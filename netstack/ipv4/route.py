"""IPv4 route resolution for packets (net/ipv4/route.c, fib_frontend.c fib_validate_source).

``ip_route_input`` decides what happens to a received packet — local delivery, broadcast,
forwarding, an error route (``ip_error``), or a drop with the kernel's reason — in the
order of ``ip_route_input_slow``: source martians first (multicast/limited broadcast
source, zeronet source, loopback without route_localnet), limited broadcast, the FIB
lookup, then per result type, with ``fib_validate_source`` (rp_filter = max(all, dev),
accept_local, src_valid_mark) on local and forwarded paths.

``ip_route_output`` is ``ip_route_output_key_hash_rcu``: source checks, ``oif``
handling, local destinations through loopback, path selection (ECMP hash) and source
address choice.

Nothing is cached: every call does the lookup; the listified receive path reuses a
previous packet's route itself (route hint, :func:`ip_route_use_hint`).  What the kernel
*learns* per destination — ICMP redirect gateways (``ip_rt_redirect``) and path MTUs
(``ipv4_update_pmtu``) — lives as next-hop exceptions on the route's path, with their
expiry (``net.ipv4.route.gc_timeout`` / ``mtu_expires``) and generation
(``net.ipv4.route.flush``), and is applied to every route built through that path.

ECMP hash: the kernel hashes the flow keys with siphash under a random boot key
(``flow_hash_from_keys``); netstack uses keyed BLAKE2b over the same fields under the
namespace's ``hash_secret`` — reproducible per namespace name, so which path a flow takes
differs from a given kernel, while the properties (same flow → same path, spread in
proportion to weights) are the kernel's.
"""
from __future__ import annotations

import errno
import hashlib
from typing import TYPE_CHECKING, Any

from netstack.errors import KernelError
from netstack.ipv4 import fib as F
from netstack.ipv4.devinet import inet_addr_onlink, inet_lookup_ifaddr, inet_select_addr_int, \
    in_dev_get, ip_dev_find
from netstack.ipv4.fib import (  # re-exported: contract names
    FLOWI_FLAG_ANYSRC, LOOPBACK_IFINDEX, FibResult, Flowi4, fib_lookup_errno,
)
from netstack.ipv4.route_exceptions import (  # re-exported: contract/datapath names
    _bind_exception, find_exception, ip_rt_redirect, ipv4_update_pmtu, route_sysctls_init,
)
from netstack.ipv4.fib_semantics import (
    RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, RTN_BLACKHOLE, RTN_BROADCAST, RTN_LOCAL,
    RTN_MULTICAST, RTN_UNICAST, RTN_UNREACHABLE, RTN_PROHIBIT, FibRoute, fib_select_multipath,
    fib_select_default, int_to_ip, ip_to_int, nh_source_addr,
)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.packet.skb import Packet

__all__ = ["Rtable", "Flowi4", "ip_route_input", "ip_route_output", "ip_route_use_hint",
           "inet_rtm_getroute", "fib_select_default", "ip_rt_redirect", "ipv4_update_pmtu",
           "route_sysctls_init",
           "fib_validate_source", "fib_multipath_hash", "fib_compute_spec_dst",
           "fib_result_prefsrc", "RTCF_LOCAL", "RTCF_BROADCAST", "RTCF_MULTICAST",
           "RTCF_DOREDIRECT", "RTN_BLACKHOLE", "RTN_PROHIBIT"]

# include/uapi/linux/in_route.h
RTCF_NOTIFY = 0x00010000
RTCF_REDIRECTED = 0x00040000
RTCF_DOREDIRECT = 0x01000000
RTCF_DIRECTSRC = 0x04000000
RTCF_BROADCAST = 0x10000000
RTCF_MULTICAST = 0x20000000
RTCF_LOCAL = 0x80000000

IP_MAX_MTU = 0xFFFF
ETH_P_IP = 0x0800
IGMP_ALL_HOSTS = 0xE0000001

# ICMP destination unreachable codes for ip_error (include/uapi/linux/icmp.h)
ICMP_NET_UNREACH = 0
ICMP_HOST_UNREACH = 1
ICMP_PKT_FILTERED = 13
_ERR_TO_ICMP = {errno.EHOSTUNREACH: ICMP_HOST_UNREACH, errno.ENETUNREACH: ICMP_NET_UNREACH,
                errno.EACCES: ICMP_PKT_FILTERED}

# fib_multipath_hash_fields bits (include/net/ip_fib.h)
FIB_MULTIPATH_HASH_FIELD_SRC_IP = 1 << 0
FIB_MULTIPATH_HASH_FIELD_DST_IP = 1 << 1
FIB_MULTIPATH_HASH_FIELD_IP_PROTO = 1 << 2
FIB_MULTIPATH_HASH_FIELD_FLOWLABEL = 1 << 3
FIB_MULTIPATH_HASH_FIELD_SRC_PORT = 1 << 4
FIB_MULTIPATH_HASH_FIELD_DST_PORT = 1 << 5
FIB_MULTIPATH_HASH_FIELD_INNER_SRC_IP = 1 << 6
FIB_MULTIPATH_HASH_FIELD_INNER_DST_IP = 1 << 7
FIB_MULTIPATH_HASH_FIELD_INNER_IP_PROTO = 1 << 8
FIB_MULTIPATH_HASH_FIELD_INNER_FLOWLABEL = 1 << 9
FIB_MULTIPATH_HASH_FIELD_INNER_SRC_PORT = 1 << 10
FIB_MULTIPATH_HASH_FIELD_INNER_DST_PORT = 1 << 11


class Rtable:
    """``struct rtable``: the route a packet follows.

    ``gateway`` is the next hop (None: on-link, use the destination); ``flags`` are
    RTCF_*; ``input`` names the ``dst.input`` the kernel would run ("local"
    = ip_local_deliver, "forward" = ip_forward, "error" = ip_error, "" for output routes);
    ``error`` is the ICMP unreachable code ip_error sends (None: none, e.g. blackhole on a
    forwarding device) and ``dst_error`` the kernel's ``dst.error`` errno."""

    __slots__ = ("type", "dev", "gateway", "prefsrc", "flags", "is_input", "iif", "error",
                 "dst_error", "input", "metrics", "pmtu", "uses_gateway", "fi", "table",
                 "nh_sel", "multipath", "expires")

    def __init__(self, rtype: int, dev: "NetDevice | None", flags: int = 0) -> None:
        self.type = rtype
        self.dev = dev
        self.gateway: bytes | None = None
        self.prefsrc: bytes | None = None
        self.flags = flags
        self.is_input = False
        self.iif = 0
        self.error: int | None = None
        self.dst_error = 0
        self.input = ""
        self.metrics: dict[str, Any] = {}
        self.pmtu = 0
        self.uses_gateway = False
        self.fi: FibRoute | None = None
        self.table = 0
        self.nh_sel = 0
        self.multipath = False
        #: virtual ns when a learned exception bound to this route expires (0: none) —
        #: what ``ip route get`` prints as "expires Nsec"
        self.expires = 0

    @property
    def is_input_local(self) -> bool:
        return self.is_input and bool(self.flags & RTCF_LOCAL)

    def mtu(self) -> int:
        """``ipv4_mtu``: route PMTU, else the ``mtu`` metric, else the device MTU (576 cap
        for a locked mtu through a gateway), at most IP_MAX_MTU."""
        mtu = self.pmtu or int(self.metrics.get("mtu", 0) or 0)
        if not mtu:
            mtu = self.dev.mtu if self.dev is not None else 0
            if "mtu" in self.metrics.get("lock", ()) and self.uses_gateway and mtu > 576:
                mtu = 576
        return min(mtu, IP_MAX_MTU)

    def __repr__(self) -> str:  # pragma: no cover
        gw = ".".join(map(str, self.gateway)) if self.gateway else "-"
        return (f"<Rtable type={self.type} dev={getattr(self.dev, 'name', None)} gw={gw} "
                f"flags={self.flags:#x} input={self.input} error={self.error}>")


# ------------------------------------------------------------------- helpers
def _is_multicast(a: int) -> bool:
    return (a >> 28) == 0xE


def _is_zeronet(a: int) -> bool:
    return (a >> 24) == 0


def _is_loopback(a: int) -> bool:
    return (a >> 24) == 127


def _is_local_multicast(a: int) -> bool:
    return (a & 0xFFFFFF00) == 0xE0000000


def _conf(net: "Net", dev: "NetDevice", name: str) -> int:
    return net.sysctl.values.get(f"net.ipv4.conf.{dev.name}.{name}", 0)


def _orconf(net: "Net", dev: "NetDevice", name: str) -> int:
    v = net.sysctl.values
    return v.get(f"net.ipv4.conf.all.{name}", 0) or v.get(f"net.ipv4.conf.{dev.name}.{name}", 0)


def _ip_header(pkt: "Packet") -> tuple[bytearray, int]:
    nh = pkt.network_header
    return pkt.buf, (nh if nh >= 0 else pkt.data)


def _l4_keys(buf: bytearray, nh: int, tail: int) -> tuple[int, int, int]:
    """(proto, sport, dport) of an IPv4 packet as the flow dissector sees it: ports only
    for the first fragment of TCP/UDP/UDP-Lite/SCTP/DCCP."""
    if tail - nh < 20:
        return 0, 0, 0
    proto = buf[nh + 9]
    ihl = (buf[nh] & 0x0F) * 4
    if (buf[nh + 6] & 0x1F) or buf[nh + 7] or buf[nh + 6] & 0x20:
        return proto, 0, 0
    if proto in (6, 17, 136, 132, 33) and tail - nh >= ihl + 4:
        o = nh + ihl
        return proto, (buf[o] << 8) | buf[o + 1], (buf[o + 2] << 8) | buf[o + 3]
    return proto, 0, 0


def _early_flow_dissect(net: "Net", pkt: "Packet | None", fl: Flowi4) -> bool:
    """``fib4_rules_early_flow_dissect``: rules with ipproto/sport/dport need the L4 keys
    in the flow."""
    if pkt is None or not getattr(net.ipv4, "fib_rules_require_fldissect", 0):
        return False
    if pkt.protocol and pkt.protocol != ETH_P_IP:   # e.g. ARP asking for proxy decisions
        fl.proto = fl.sport = fl.dport = 0
        return True
    buf, nh = _ip_header(pkt)
    fl.proto, fl.sport, fl.dport = _l4_keys(buf, nh, pkt.tail)
    return True


def fib_result_prefsrc(net: "Net", res: FibResult) -> int:
    """``fib_result_prefsrc``: the route's ``src``, else the path's implied source."""
    fi = res.fi
    if fi.prefsrc is not None:
        return int.from_bytes(fi.prefsrc, "big")
    nh = res.nh
    return nh_source_addr(nh) if nh is not None else 0


# ------------------------------------------------------------------ ECMP hash
def _hash_keys(net: "Net", *fields: int) -> int:
    """The flow hash of ``fields`` under the namespace key (siphash's stand-in)."""
    data = b"".join(f.to_bytes(16, "big") for f in fields)
    h = int.from_bytes(hashlib.blake2b(data, digest_size=4, key=net.hash_secret).digest(),
                       "little")
    return h or 1


def _icmp_is_err(t: int) -> bool:
    return t in (3, 4, 5, 11, 12)


def _l3_keys(buf: bytearray, nh: int, tail: int) -> tuple[int, int]:
    """``ip_multipath_l3_keys``: source/destination, taken from the quoted header of an
    ICMP error so that errors follow their flow's path."""
    src = int.from_bytes(buf[nh + 12:nh + 16], "big")
    dst = int.from_bytes(buf[nh + 16:nh + 20], "big")
    if buf[nh + 9] != 1 or (buf[nh + 6] & 0x1F) or buf[nh + 7]:
        return src, dst
    ihl = (buf[nh] & 0x0F) * 4
    o = nh + ihl
    if tail - o < 8 or not _icmp_is_err(buf[o]):
        return src, dst
    i = o + 8
    if tail - i < 20:
        return src, dst
    return int.from_bytes(buf[i + 12:i + 16], "big"), int.from_bytes(buf[i + 16:i + 20], "big")


def _inner(buf: bytearray, nh: int, tail: int) -> tuple[int, int, int, int, int, int, int] | None:
    """The encapsulated header the flow dissector reaches (IPIP, SIT, GRE v0 carrying
    IPv4/IPv6): (family 4/6, src, dst, proto, sport, dport, flowlabel) or None."""
    proto = buf[nh + 9]
    if (buf[nh + 6] & 0x1F) or buf[nh + 7] or buf[nh + 6] & 0x20:
        return None
    o = nh + (buf[nh] & 0x0F) * 4
    if proto == 47:
        if tail - o < 4:
            return None
        flags = (buf[o] << 8) | buf[o + 1]
        if flags & 0x0007:  # version != 0 (PPTP etc. not dissected here)
            return None
        ptype = (buf[o + 2] << 8) | buf[o + 3]
        hl = 4 + (4 if flags & 0x8000 else 0) + (4 if flags & 0x2000 else 0) + \
            (4 if flags & 0x1000 else 0)
        o += hl
        if ptype == 0x0800:
            proto = 4
        elif ptype == 0x86DD:
            proto = 41
        else:
            return None
    if proto == 4 and tail - o >= 20 and buf[o] >> 4 == 4:
        p, sp, dp = _l4_keys(buf, o, tail)
        return (4, int.from_bytes(buf[o + 12:o + 16], "big"),
                int.from_bytes(buf[o + 16:o + 20], "big"), p, sp, dp, 0)
    if proto == 41 and tail - o >= 40 and buf[o] >> 4 == 6:
        fl = ((buf[o + 1] & 0x0F) << 16) | (buf[o + 2] << 8) | buf[o + 3]
        p = buf[o + 6]
        sp = dp = 0
        if p in (6, 17, 132, 33, 136) and tail - o >= 44:
            sp = (buf[o + 40] << 8) | buf[o + 41]
            dp = (buf[o + 42] << 8) | buf[o + 43]
        return (6, int.from_bytes(buf[o + 8:o + 24], "big"),
                int.from_bytes(buf[o + 24:o + 40], "big"), p, sp, dp, fl)
    return None


def fib_multipath_hash(net: "Net", fl4: Flowi4 | None, pkt: "Packet | None") -> int:
    """``fib_multipath_hash``: the 31-bit path selector for policy 0 (L3), 1 (L4),
    2 (inner L3 when encapsulated) and 3 (the fields of fib_multipath_hash_fields)."""
    vals = net.sysctl.values
    policy = vals.get("net.ipv4.fib_multipath_hash_policy", 0)
    if pkt is not None:
        buf, nh = _ip_header(pkt)
        tail = pkt.tail
    if policy == 0 or (policy == 2 and pkt is None):
        if pkt is not None:
            src, dst = _l3_keys(buf, nh, tail)
        else:
            assert fl4 is not None
            src, dst = fl4.saddr, fl4.daddr
        h = _hash_keys(net, 4, src, dst)
    elif policy == 1:
        if pkt is not None:
            if pkt.l4_hash:
                return (pkt.hash & 0xFFFFFFFF) >> 1
            src = int.from_bytes(buf[nh + 12:nh + 16], "big")
            dst = int.from_bytes(buf[nh + 16:nh + 20], "big")
            proto, sp, dp = _l4_keys(buf, nh, tail)
        else:
            assert fl4 is not None
            src, dst, proto, sp, dp = fl4.saddr, fl4.daddr, fl4.proto, fl4.sport, fl4.dport
        h = _hash_keys(net, 4, src, dst, sp, dp, proto)
    elif policy == 2:
        inner = _inner(buf, nh, tail)
        if inner is None:
            src = int.from_bytes(buf[nh + 12:nh + 16], "big")
            dst = int.from_bytes(buf[nh + 16:nh + 20], "big")
            h = _hash_keys(net, 4, src, dst)
        elif inner[0] == 4:
            h = _hash_keys(net, 4, inner[1], inner[2])
        else:
            h = _hash_keys(net, 6, inner[1], inner[2], inner[6], inner[3])
    else:
        fields = vals.get("net.ipv4.fib_multipath_hash_fields", 7)
        if pkt is not None:
            src = int.from_bytes(buf[nh + 12:nh + 16], "big")
            dst = int.from_bytes(buf[nh + 16:nh + 20], "big")
            proto, sp, dp = _l4_keys(buf, nh, tail)
            inner = _inner(buf, nh, tail) if fields & 0xFC0 else None
        else:
            assert fl4 is not None
            src, dst, proto, sp, dp = fl4.saddr, fl4.daddr, fl4.proto, fl4.sport, fl4.dport
            inner = None
        keys = [
            src if fields & FIB_MULTIPATH_HASH_FIELD_SRC_IP else 0,
            dst if fields & FIB_MULTIPATH_HASH_FIELD_DST_IP else 0,
            proto if fields & FIB_MULTIPATH_HASH_FIELD_IP_PROTO else 0,
            sp if fields & FIB_MULTIPATH_HASH_FIELD_SRC_PORT else 0,
            dp if fields & FIB_MULTIPATH_HASH_FIELD_DST_PORT else 0,
        ]
        if inner is not None:
            keys += [
                inner[1] if fields & FIB_MULTIPATH_HASH_FIELD_INNER_SRC_IP else 0,
                inner[2] if fields & FIB_MULTIPATH_HASH_FIELD_INNER_DST_IP else 0,
                inner[3] if fields & FIB_MULTIPATH_HASH_FIELD_INNER_IP_PROTO else 0,
                inner[6] if fields & FIB_MULTIPATH_HASH_FIELD_INNER_FLOWLABEL else 0,
                inner[4] if fields & FIB_MULTIPATH_HASH_FIELD_INNER_SRC_PORT else 0,
                inner[5] if fields & FIB_MULTIPATH_HASH_FIELD_INNER_DST_PORT else 0,
            ]
        h = _hash_keys(net, 3, *keys)
    return h >> 1


def _neigh_ok(net: "Net") -> Any:
    """``fib_good_nh``: a path is good unless its neighbour entry is FAILED."""
    tbl = getattr(net.ipv4, "arp_tbl", None)
    if tbl is None:
        return None
    from netstack.core import neighbour

    def ok(nh: Any) -> bool:
        if nh.scope != RT_SCOPE_LINK or nh.dev is None:
            return True
        key = nh.gw if nh.gw is not None else None
        if key is None:
            return True
        n = neighbour.neigh_lookup(tbl, nh.dev, key)
        return n is None or not (n.nud_state & 0x20)  # NUD_FAILED
    return ok


def _select_multipath(net: "Net", res: FibResult, h: int, saddr: int) -> None:
    use_neigh = bool(net.sysctl.values.get("net.ipv4.fib_multipath_use_neigh", 0))
    res.nh_sel = fib_select_multipath(res.fi, h, saddr, use_neigh,
                                      _neigh_ok(net) if use_neigh else None)


# --------------------------------------------------------- source validation
def fib_validate_source(net: "Net", pkt: "Packet | None", saddr: int, daddr: int, tos: int,
                        oif: int, dev: "NetDevice") -> tuple[str | None, bool]:
    """``fib_validate_source``: (drop reason or None, source-is-on-link).

    The reverse lookup swaps the addresses and asks whether the route back to the source
    leaves through ``dev`` (rp_filter 1) or exists at all (2).  With rp_filter 0 only a
    source equal to one of our addresses is refused (unless accept_local).  The boolean
    is what the kernel returns as 1 to request ICMP redirects."""
    idev = in_dev_get(dev)
    assert idev is not None
    vals = net.sysctl.values
    rpf = max(vals.get("net.ipv4.conf.all.rp_filter", 0),
              vals.get(f"net.ipv4.conf.{dev.name}.rp_filter", 0))
    if not rpf and (dev.ifindex != oif or not _orconf(net, dev, "send_redirects")):
        if _orconf(net, dev, "accept_local"):
            return None, False
        if not (net.ipv4.fib.has_custom_local_routes or net.ipv4.has_custom_rules):
            if inet_lookup_ifaddr(net, saddr) is not None:
                return "IP_LOCAL_SOURCE", False
            return None, False
    return _fib_validate_source(net, pkt, saddr, daddr, tos, oif, dev, rpf, idev)


def _fib_validate_source(net: "Net", pkt: "Packet | None", saddr: int, daddr: int, tos: int,
                         oif: int, dev: "NetDevice", rpf: int,
                         idev: Any) -> tuple[str | None, bool]:
    """``__fib_validate_source``."""
    fl = Flowi4(daddr=saddr, saddr=daddr, tos=tos, iif=oif or LOOPBACK_IFINDEX)
    no_addr = not idev.ifa_list
    if _orconf(net, dev, "src_valid_mark") and pkt is not None:
        fl.mark = pkt.mark
    if _early_flow_dissect(net, pkt, fl):
        fl.sport, fl.dport = fl.dport, fl.sport
    res = fib_lookup_errno(net, fl)
    if type(res) is not int:
        if res.type != RTN_UNICAST:
            if res.type != RTN_LOCAL:
                return "IP_INVALID_SOURCE", False
            if not _orconf(net, dev, "accept_local"):
                return "IP_LOCAL_SOURCE", False
        dev_match = any(nh.dev is dev for nh in res.fi.nexthops)
        if not dev_match and res.type == RTN_LOCAL and dev.flags & 0x8:
            dev_match = True
        if dev_match:
            nh = res.nh
            return None, bool(nh is not None and nh.scope >= RT_SCOPE_HOST)
        if no_addr:
            return ("IP_RPFILTER", False) if rpf else (None, False)
        if rpf == 1:
            return "IP_RPFILTER", False
        fl.oif = dev.ifindex
        res2 = fib_lookup_errno(net, fl, F.FIB_LOOKUP_IGNORE_LINKSTATE)
        if type(res2) is not int and res2.type == RTN_UNICAST:
            nh = res2.nh
            return None, bool(nh is not None and nh.scope >= RT_SCOPE_HOST)
        return None, False
    if rpf:
        return "IP_RPFILTER", False
    return None, False


# --------------------------------------------------------------------- input
def _error_route(net: "Net", dev: "NetDevice", err: int) -> Rtable:
    """The ``no_route`` branch: an RTN_UNREACHABLE route whose input is ``ip_error``."""
    rt = Rtable(RTN_UNREACHABLE, net.get("lo") or dev, 0)
    rt.is_input = True
    rt.iif = dev.ifindex
    rt.input = "error"
    rt.dst_error = -err
    rt.error = _ERR_TO_ICMP.get(-err)
    return rt


def _local_route(net: "Net", dev: "NetDevice", rtype: int, flags: int,
                 res: FibResult | None) -> Rtable:
    """The ``local_input`` branch: delivered locally (dst.dev is loopback)."""
    rt = Rtable(rtype, net.get("lo") or dev, flags | RTCF_LOCAL)
    rt.is_input = True
    rt.iif = dev.ifindex
    rt.input = "local"
    if res is not None:
        rt.fi = res.fi
        rt.table = res.table
    return rt


def _set_nexthop(rt: Rtable, res: FibResult | None, fi: FibRoute | None,
                 daddr: int = 0, net: "Net | None" = None) -> None:
    """``rt_set_nexthop``: gateway (only for a link-scope path), metrics, and the
    next-hop exception for ``daddr`` if one was learned (``rt_bind_exception``)."""
    if res is None or fi is None:
        return
    nh = res.nh
    if nh is not None and nh.gw is not None and nh.scope == RT_SCOPE_LINK:
        rt.gateway = nh.gw
        rt.uses_gateway = True
    rt.metrics = fi.metrics
    rt.prefsrc = fi.prefsrc
    rt.fi = fi
    rt.table = res.table
    rt.nh_sel = res.nh_sel
    if nh is not None and nh.exceptions and net is not None:
        fnhe = find_exception(net, nh, daddr)
        if fnhe is not None:
            _bind_exception(net, rt, fnhe)


def _ip_check_mc(net: "Net", dev: "NetDevice", daddr: int, saddr: int, proto: int) -> bool:
    """``ip_check_mc_rcu``: groups joined on ``dev``.  Without an IGMP module only the
    all-hosts group (joined by ``ip_mc_up`` on every device) is known; a module may
    provide ``net.ipv4.ip_check_mc(dev, daddr, saddr, proto)``."""
    hook = getattr(net.ipv4, "ip_check_mc", None)
    if hook is not None:
        return bool(hook(dev, daddr, saddr, proto))
    return daddr == IGMP_ALL_HOSTS and dev.is_up


def _route_input_mc(net: "Net", pkt: "Packet", daddr: int, saddr: int, tos: int,
                    dev: "NetDevice", our: bool) -> str | None:
    """``ip_route_input_mc`` with ``ip_mc_validate_source``."""
    if _is_multicast(saddr) or saddr == 0xFFFFFFFF:
        return "IP_INVALID_SOURCE"
    if pkt.protocol and pkt.protocol != ETH_P_IP:
        return "INVALID_PROTO"
    if _is_loopback(saddr) and not _orconf(net, dev, "route_localnet"):
        return "IP_LOCALNET"
    if _is_zeronet(saddr):
        buf, nh = _ip_header(pkt)
        if not _is_local_multicast(daddr) and buf[nh + 9] != 2:
            return "IP_INVALID_SOURCE"
    else:
        reason, _ = fib_validate_source(net, pkt, saddr, 0, tos, 0, dev)
        if reason:
            return reason
    rt = Rtable(RTN_MULTICAST, net.get("lo") or dev, RTCF_MULTICAST)
    rt.is_input = True
    rt.iif = dev.ifindex
    if our:
        rt.input = "local"
        rt.flags |= RTCF_LOCAL
    pkt.dst = rt
    return None


def ip_route_input(net: "Net", pkt: "Packet", daddr: bytes | int, saddr: bytes | int, tos: int,
                   dev: "NetDevice") -> str | None:
    """``ip_route_input_noref``: set ``pkt.dst`` (an :class:`Rtable`) and return None,
    or return the drop reason name."""
    d = daddr if type(daddr) is int else int.from_bytes(daddr, "big")
    s = saddr if type(saddr) is int else int.from_bytes(saddr, "big")
    tos &= 0xFC
    idev = in_dev_get(dev)
    if idev is None:
        return "NOT_SPECIFIED"
    if _is_multicast(d):
        buf, nh = _ip_header(pkt)
        proto = buf[nh + 9] if pkt.tail - nh >= 20 else 0
        our = _ip_check_mc(net, dev, d, s, proto)
        if our:
            return _route_input_mc(net, pkt, d, s, tos, dev, our)
        return "NOT_SPECIFIED"
    return _route_input_slow(net, pkt, d, s, tos, dev, idev)


def _route_input_slow(net: "Net", pkt: "Packet", daddr: int, saddr: int, tos: int,
                      dev: "NetDevice", idev: Any) -> str | None:
    """``ip_route_input_slow``."""
    pkt.dst = None
    s8 = saddr >> 24
    d8 = daddr >> 24
    if 224 <= s8 < 240 or saddr == 0xFFFFFFFF:
        return "IP_INVALID_SOURCE"
    vals = net.sysctl.values
    res: FibResult | int
    if daddr == 0xFFFFFFFF or (saddr == 0 and daddr == 0):
        return _brd_input(net, pkt, daddr, saddr, tos, dev)
    if s8 == 0:
        return "IP_INVALID_SOURCE"
    if d8 == 0:
        return "IP_INVALID_DEST"
    if d8 == 127:
        if not _orconf(net, dev, "route_localnet"):
            return "IP_LOCALNET"
    elif s8 == 127:
        if not _orconf(net, dev, "route_localnet"):
            return "IP_LOCALNET"
    fl = Flowi4(daddr, saddr, tos, 0, dev.ifindex, pkt.mark)
    if net.ipv4.fib_rules_require_fldissect:
        _early_flow_dissect(net, pkt, fl)
    res = fib_lookup_errno(net, fl)
    forwarding = vals.get(f"net.ipv4.conf.{dev.name}.forwarding", 0)
    if type(res) is int:
        err = res if forwarding else -errno.EHOSTUNREACH
        pkt.dst = _error_route(net, dev, err)
        return None
    rtype = res.type
    if rtype == RTN_BROADCAST:
        if vals.get("net.ipv4.conf.all.bc_forwarding", 0) and \
                vals.get(f"net.ipv4.conf.{dev.name}.bc_forwarding", 0):
            return _mkroute_input(net, pkt, res, idev, daddr, saddr, tos)
        return _brd_input(net, pkt, daddr, saddr, tos, dev, res)
    if rtype == RTN_LOCAL:
        reason, _ = fib_validate_source(net, pkt, saddr, daddr, tos, 0, dev)
        if reason:
            return reason
        pkt.dst = _local_route(net, dev, RTN_LOCAL, 0, res)
        return None
    if not forwarding:
        pkt.dst = _error_route(net, dev, -errno.EHOSTUNREACH)
        return None
    if rtype != RTN_UNICAST:
        return "IP_INVALID_DEST"
    return _mkroute_input(net, pkt, res, idev, daddr, saddr, tos)


def _brd_input(net: "Net", pkt: "Packet", daddr: int, saddr: int, tos: int,
               dev: "NetDevice", res: FibResult | None = None) -> str | None:
    """The ``brd_input`` branch: only IP is accepted; the source is validated unless 0."""
    if pkt.protocol and pkt.protocol != ETH_P_IP:
        return "INVALID_PROTO"
    if not _is_zeronet(saddr):
        reason, _ = fib_validate_source(net, pkt, saddr, 0, tos, 0, dev)
        if reason:
            return reason
    pkt.dst = _local_route(net, dev, RTN_BROADCAST, RTCF_BROADCAST, res)
    return None


def _mkroute_input(net: "Net", pkt: "Packet", res: FibResult, idev: Any, daddr: int,
                   saddr: int, tos: int) -> str | None:
    """``ip_mkroute_input`` + ``__mkroute_input``: choose the path, validate the source
    against it and build the forwarding route (with the redirect decision)."""
    fi = res.fi
    multipath = False
    if len(fi.nexthops) > 1:
        h = fib_multipath_hash(net, None, pkt)
        _select_multipath(net, res, h, 0)
        multipath = True
    nh = res.nh
    out_dev = nh.dev if nh is not None else None
    in_dev = idev.dev
    if out_dev is None or in_dev_get(out_dev) is None:
        return "NOT_SPECIFIED"
    reason, onlink = fib_validate_source(net, pkt, saddr, daddr, tos, out_dev.ifindex, in_dev)
    if reason:
        return reason
    flags = 0
    if out_dev is in_dev and onlink and _orconf(net, in_dev, "send_redirects") and \
            (not pkt.protocol or pkt.protocol == ETH_P_IP):
        gw = nh.gw_int if nh is not None else 0
        if _orconf(net, out_dev, "shared_media") or inet_addr_onlink(idev, saddr, gw):
            flags |= RTCF_DOREDIRECT
    if pkt.protocol and pkt.protocol != ETH_P_IP:
        if out_dev is in_dev and not _orconf(net, in_dev, "proxy_arp_pvlan"):
            return "NOT_SPECIFIED"
    rt = Rtable(res.type, out_dev, flags)
    rt.is_input = True
    rt.iif = in_dev.ifindex
    rt.input = "forward"
    rt.multipath = multipath
    _set_nexthop(rt, res, fi, daddr, net)
    pkt.dst = rt
    return None


def ip_route_use_hint(net: "Net", pkt: "Packet", daddr: bytes | int, saddr: bytes | int,
                      tos: int, dev: "NetDevice", hint: Rtable) -> str | None:
    """``ip_route_use_hint``: reuse the previous packet's route after the source martian
    checks; only a local route re-validates the source (forwarded hints skip rp_filter,
    as in the kernel)."""
    s = saddr if type(saddr) is int else int.from_bytes(saddr, "big")
    d = daddr if type(daddr) is int else int.from_bytes(daddr, "big")
    if in_dev_get(dev) is None:
        return "NOT_SPECIFIED"
    if _is_multicast(s) or s == 0xFFFFFFFF or _is_zeronet(s):
        return "IP_INVALID_SOURCE"
    if _is_loopback(s) and not _orconf(net, dev, "route_localnet"):
        return "IP_LOCALNET"
    if hint.flags & RTCF_LOCAL:
        reason, _ = fib_validate_source(net, pkt, s, d, tos & 0xFC, 0, dev)
        if reason:
            return reason
    pkt.dst = hint
    return None


def fib_compute_spec_dst(net: "Net", pkt: "Packet") -> bytes:
    """``fib_compute_spec_dst``: the local address a reply to ``pkt`` should come from
    (the destination if it was a unicast local one, else the source the route back to
    the sender prefers)."""
    rt = pkt.dst
    buf, nh = _ip_header(pkt)
    if rt is not None and (rt.flags & (RTCF_BROADCAST | RTCF_MULTICAST | RTCF_LOCAL)) == \
            RTCF_LOCAL:
        return bytes(buf[nh + 16:nh + 20])
    dev = pkt.dev
    saddr = int.from_bytes(buf[nh + 12:nh + 16], "big")
    scope = RT_SCOPE_UNIVERSE
    if not _is_zeronet(saddr):
        fl = Flowi4(daddr=saddr, tos=buf[nh + 1] & 0xFC, iif=LOOPBACK_IFINDEX)
        if dev is not None and _orconf(net, dev, "src_valid_mark"):
            fl.mark = pkt.mark
        res = fib_lookup_errno(net, fl)
        if type(res) is not int:
            return int_to_ip(fib_result_prefsrc(net, res))
    else:
        scope = RT_SCOPE_LINK
    if dev is None:
        return b"\0\0\0\0"
    return int_to_ip(inet_select_addr_int(dev, saddr, scope))


# -------------------------------------------------------------------- output
def _mkroute_output(net: "Net", res: FibResult | None, fl4: Flowi4, orig_oif: int,
                    dev_out: "NetDevice", flags: int, rtype: int) -> Rtable:
    """``__mkroute_output``."""
    if in_dev_get(dev_out) is None:
        raise KernelError(errno.EINVAL)
    if not _orconf(net, dev_out, "route_localnet") and _is_loopback(fl4.saddr) and \
            not dev_out.flags & 0x8:
        raise KernelError(errno.EINVAL)
    fi = res.fi if res is not None else None
    d = fl4.daddr
    if d == 0xFFFFFFFF:
        rtype = RTN_BROADCAST
        fi = None
    elif _is_multicast(d):
        rtype = RTN_MULTICAST
    elif _is_zeronet(d):
        raise KernelError(errno.EINVAL)
    if dev_out.flags & 0x8:
        flags |= RTCF_LOCAL
    if rtype == RTN_BROADCAST:
        flags |= RTCF_BROADCAST | RTCF_LOCAL
    elif rtype == RTN_MULTICAST:
        flags |= RTCF_MULTICAST | RTCF_LOCAL
        if not _ip_check_mc(net, dev_out, d, fl4.saddr, fl4.proto):
            flags &= ~RTCF_LOCAL
        if fi is not None and res is not None and res.prefixlen < 4:
            fi = None
    rt = Rtable(rtype, dev_out, flags)
    rt.iif = orig_oif
    _set_nexthop(rt, res, fi, d, net)
    return rt


def ip_route_output(net: "Net", fl4: Flowi4) -> Rtable:
    """``ip_route_output_key_hash_rcu``.  Fills ``fl4.saddr`` (and ``daddr`` for a
    zero destination) like the kernel; raises KernelError (EINVAL, ENETUNREACH,
    ENODEV, EHOSTUNREACH, EACCES …) on failure."""
    fl4.iif = LOOPBACK_IFINDEX
    orig_oif = fl4.oif
    flags = 0
    dev_out: "NetDevice | None" = None
    s = fl4.saddr
    d = fl4.daddr
    if s:
        if _is_multicast(s) or s == 0xFFFFFFFF or _is_zeronet(s):
            raise KernelError(errno.EINVAL)
        if fl4.oif == 0 and (_is_multicast(d) or d == 0xFFFFFFFF):
            dev_out = ip_dev_find(net, s)
            if dev_out is None:
                raise KernelError(errno.ENETUNREACH)
            fl4.oif = dev_out.ifindex
            return _mkroute_output(net, None, fl4, orig_oif, dev_out, flags, RTN_UNICAST)
        if not fl4.flags & FLOWI_FLAG_ANYSRC and ip_dev_find(net, s) is None:
            raise KernelError(errno.ENETUNREACH)
    if fl4.oif:
        dev_out = net.get_by_index(fl4.oif)
        if dev_out is None:
            raise KernelError(errno.ENODEV)
        if not dev_out.is_up or in_dev_get(dev_out) is None:
            raise KernelError(errno.ENETUNREACH)
        if _is_local_multicast(d) or d == 0xFFFFFFFF or fl4.proto == 2:
            if not fl4.saddr:
                fl4.saddr = inet_select_addr_int(dev_out, 0, RT_SCOPE_LINK)
            return _mkroute_output(net, None, fl4, orig_oif, dev_out, flags, RTN_UNICAST)
        if not fl4.saddr:
            if _is_multicast(d):
                fl4.saddr = inet_select_addr_int(dev_out, 0, fl4.scope)
            elif not d:
                fl4.saddr = inet_select_addr_int(dev_out, 0, RT_SCOPE_HOST)
    if not fl4.daddr:
        fl4.daddr = fl4.saddr
        if not fl4.daddr:
            fl4.daddr = fl4.saddr = 0x7F000001
        lo = net.get("lo")
        assert lo is not None
        fl4.oif = lo.ifindex
        return _mkroute_output(net, None, fl4, orig_oif, lo, flags | RTCF_LOCAL, RTN_LOCAL)
    res = fib_lookup_errno(net, fl4)
    if type(res) is int:
        if fl4.oif and dev_out is not None:
            if not fl4.saddr:
                fl4.saddr = inet_select_addr_int(dev_out, 0, RT_SCOPE_LINK)
            return _mkroute_output(net, None, fl4, orig_oif, dev_out, flags, RTN_UNICAST)
        raise KernelError(-res)
    if res.type == RTN_LOCAL:
        if not fl4.saddr:
            fl4.saddr = ip_to_int(res.fi.prefsrc) if res.fi.prefsrc else fl4.daddr
        lo = net.get("lo")
        assert lo is not None
        nh = res.nh
        orig_oif = nh.dev.ifindex if nh is not None and nh.dev is not None else orig_oif
        fl4.oif = lo.ifindex
        return _mkroute_output(net, res, fl4, orig_oif, lo, flags | RTCF_LOCAL, RTN_LOCAL)
    _select_path(net, res, fl4)
    dev_out = res.dev
    if dev_out is None:
        raise KernelError(errno.EINVAL)
    return _mkroute_output(net, res, fl4, orig_oif, dev_out, flags, res.type)


def _select_path(net: "Net", res: FibResult, fl4: Flowi4) -> None:
    """``fib_select_path``: ECMP hash unless an output device was forced; among several
    default routes of one table, ``fib_select_default``; then the source address."""
    if not fl4.oif:
        if len(res.fi.nexthops) > 1:
            h = fib_multipath_hash(net, fl4, None)
            _select_multipath(net, res, h, fl4.saddr)
        elif not res.prefixlen and res.type == RTN_UNICAST:
            tb = net.ipv4.fib_tables.get(res.table)
            if tb is not None and tb.num_default > 1:
                fib_select_default(net, fl4, res, tb)
    if not fl4.saddr:
        fl4.saddr = fib_result_prefsrc(net, res)


# ------------------------------------------------------------- ip route get
def inet_rtm_getroute(net: "Net", daddr: bytes | int, saddr: bytes | int = 0,
                      iif: "NetDevice | None" = None, oif: int = 0, mark: int = 0,
                      tos: int = 0, proto: int = 0, sport: int = 0, dport: int = 0,
                      uid: int = 0) -> tuple[Rtable, Flowi4]:
    """``inet_rtm_getroute`` (``ip route get``): with ``iif`` the input path on a dummy
    packet (any drop is EINVAL, an error route gives its ``dst.error``), else the output
    path.  Returns the route and the flow (its ``saddr`` filled in)."""
    d = ip_to_int(daddr)
    s = ip_to_int(saddr)
    fl4 = Flowi4(daddr=d, saddr=s, tos=tos, oif=oif, mark=mark, proto=proto, sport=sport,
                 dport=dport, uid=uid)
    if iif is not None:
        from netstack.packet.skb import Packet
        hdr = bytearray(28)
        hdr[0] = 0x45
        hdr[1] = tos
        hdr[2:4] = (28).to_bytes(2, "big")
        hdr[8] = 64
        hdr[9] = proto
        hdr[12:16] = int_to_ip(s)
        hdr[16:20] = int_to_ip(d)
        hdr[20:24] = sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
        pkt = Packet(bytes(hdr))
        pkt.reset_network_header()
        pkt.protocol = ETH_P_IP
        pkt.dev = iif
        pkt.mark = mark
        fl4.iif = iif.ifindex
        reason = ip_route_input(net, pkt, d, s, tos, iif)
        if reason:
            raise KernelError(errno.EINVAL)
        rt = pkt.dst
        if rt.dst_error:
            raise KernelError(rt.dst_error)
        return rt, fl4
    return ip_route_output(net, fl4), fl4
