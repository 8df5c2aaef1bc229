"""fib6: IPv6 routing tables, ``ip -6 route`` semantics and the lookups the datapath uses.

Reproduces net/ipv6/ip6_fib.c (``fib6_add_rt2node``: per-prefix route lists ordered by
metric, ECMP siblings, NLM_F_EXCL/REPLACE/APPEND handling, ``fib6_del``), net/ipv6/route.c
(``ip6_route_add``/``ip6_route_del``, ``ip6_pol_route``, ``fib6_select_path`` hash-threshold
ECMP, ``ip6_route_input``/``ip6_route_output``, the null/prohibit/blackhole entries) and
net/ipv6/fib6_rules.c (the default rules ``0: lookup local`` and ``32766: lookup main``).

Why one route object per (prefix, metric) with a list of nexthops: that is how
``ip -6 route`` shows and edits ECMP routes ("nexthop via … weight 1"), even though the kernel
stores each sibling as its own fib6_info; both views give the same lookups and dumps.

Dump order is the fib6 radix tree's post-order walk (``fib6_walk_continue``: children before
the node), which is why ``::/0`` prints last: :func:`_walk_key` sorts prefixes that way.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from netstack.errors import KernelError, NotSupported
from netstack.ipv6.addr import ANY, is_linklocal, is_multicast, prefix_mask
from netstack.packet.siphash import siphash
from netstack.core.rtnetlink import (  # noqa: F401  (re-exported)
    RTNH_F_DEAD,
    RTNH_F_LINKDOWN,
    RTNH_F_ONLINK,
    RTN_ANYCAST,
    RTN_BLACKHOLE,
    RTN_BROADCAST,
    RTN_LOCAL,
    RTN_MULTICAST,
    RTN_NAT,
    RTN_PROHIBIT,
    RTN_THROW,
    RTN_UNICAST,
    RTN_UNREACHABLE,
    RTN_UNSPEC,
    RTPROT_BOOT,
    RTPROT_KERNEL,
    RTPROT_RA,
    RTPROT_REDIRECT,
    RTPROT_STATIC,
    RTPROT_UNSPEC,
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_DEFAULT,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    RT_TABLE_UNSPEC,
)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice


# include/uapi/linux/ipv6_route.h metrics priorities
IP6_RT_PRIO_USER = 1024
IP6_RT_PRIO_ADDRCONF = 256
#: ICMPV6_DEST_UNREACH codes used by the error routes (include/uapi/linux/icmpv6.h).
ICMPV6_NOROUTE = 0
ICMPV6_ADM_PROHIBITED = 1
ICMPV6_ADDR_UNREACH = 3

ERROR_TYPES = (RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT, RTN_THROW)


@dataclass(slots=True)
class Fib6Nexthop:
    """``struct fib6_nh``: gateway (None = on-link), device, weight, RTNH_F_* flags."""

    gw: bytes | None
    dev: "NetDevice | None"
    weight: int = 1
    flags: int = 0
    upper_bound: int = 0


@dataclass(slots=True, eq=False)
class Fib6Route:
    """``struct fib6_info`` as ``ip -6 route`` sees it (field names match IPv4 FibRoute)."""

    dst: bytes
    dst_len: int
    type: int = RTN_UNICAST
    protocol: int = RTPROT_BOOT
    priority: int = IP6_RT_PRIO_USER
    table: int = RT_TABLE_MAIN
    nexthops: list[Fib6Nexthop] = field(default_factory=list)
    prefsrc: bytes | None = None
    metrics: dict[str, int] = field(default_factory=dict)
    scope: int = RT_SCOPE_UNIVERSE
    tos: int = 0
    pref: str = "medium"
    #: ``RTF_ADDRCONF``-style origin ("addrconf" for kernel-made prefix/local routes).
    addrconf: bool = False
    src: bytes = ANY
    src_len: int = 0
    dsts: dict[int, Any] = field(default_factory=dict)

    @property
    def family(self) -> int:
        return 10

    def qualifies_for_ecmp(self) -> bool:
        """``rt6_qualify_for_ecmp``: gateway routes not made by addrconf."""
        return (not self.addrconf and self.type == RTN_UNICAST and bool(self.nexthops)
                and all(nh.gw is not None for nh in self.nexthops))


def _walk_key(r: Fib6Route) -> str:
    """Post-order of the fib6 tree: a prefix's bits followed by a terminator above 0/1."""
    bits = format(int.from_bytes(r.dst, "big"), "0128b")[: r.dst_len]
    return bits + "2"


class Fib6Table:
    """``struct fib6_table``: routes by prefix length, then by masked prefix."""

    def __init__(self, tb_id: int) -> None:
        self.id = tb_id
        self.by_len: dict[int, dict[int, list[Fib6Route]]] = {}
        self.lens: list[int] = []

    def node(self, dst: bytes, plen: int, create: bool = False) -> list[Fib6Route] | None:
        d = self.by_len.get(plen)
        if d is None:
            if not create:
                return None
            d = self.by_len[plen] = {}
            self.lens = sorted(self.by_len, reverse=True)
        key = int.from_bytes(dst, "big") >> (128 - plen) if plen else 0
        lst = d.get(key)
        if lst is None and create:
            lst = d[key] = []
        return lst

    def prune(self, dst: bytes, plen: int) -> None:
        d = self.by_len.get(plen)
        if d is None:
            return
        key = int.from_bytes(dst, "big") >> (128 - plen) if plen else 0
        if key in d and not d[key]:
            del d[key]
        if not d:
            del self.by_len[plen]
            self.lens = sorted(self.by_len, reverse=True)

    def routes(self) -> list[Fib6Route]:
        out = [r for d in self.by_len.values() for lst in d.values() for r in lst]
        # stable: within a node the list order (metric, insertion) is kept
        return sorted(out, key=_walk_key)

    def lookup(self, daddr: bytes) -> Iterable[list[Fib6Route]]:
        """Candidate route lists, longest prefix first (``fib6_node_lookup`` + backtrack)."""
        v = int.from_bytes(daddr, "big")
        for plen in self.lens:
            lst = self.by_len[plen].get(v >> (128 - plen) if plen else 0)
            if lst:
                yield lst


@dataclass(slots=True)
class Flowi6:
    """``struct flowi6``."""

    daddr: bytes
    saddr: bytes = ANY
    oif: int = 0
    iif: int = 0
    mark: int = 0
    proto: int = 0
    sport: int = 0
    dport: int = 0
    flowlabel: int = 0
    flags: int = 0


@dataclass(slots=True)
class Fib6Result:
    """``struct fib6_result``: the route and the nexthop chosen in it."""

    route: Fib6Route
    nh: Fib6Nexthop | None
    table: int
    error: int = 0
    rule: Any = None


class Rt6Info:
    """``struct rt6_info``: the dst attached to a packet (``pkt.dst``) by the lookups.

    ``input`` tells the datapath what ``dst->input`` would be: ``"local"``
    (ip6_input), ``"forward"`` (ip6_forward), ``"mcast"`` (ip6_mc_input) or ``"error"``
    (ip6_pkt_discard/prohibit/blackhole, with ``error`` the errno and ``icmp_code`` the
    ICMPv6 destination-unreachable code).
    """

    __slots__ = ("type", "dev", "gateway", "prefsrc", "route", "nh", "error", "icmp_code",
                 "input", "is_input_local", "metrics_mtu", "table")

    def __init__(self, type_: int, dev: "NetDevice | None", gateway: bytes | None,
                 route: Fib6Route | None, nh: Fib6Nexthop | None, input_: str,
                 error: int = 0, icmp_code: int = 0) -> None:
        self.type = type_
        self.dev = dev
        self.gateway = gateway
        self.prefsrc = route.prefsrc if route is not None else None
        self.route = route
        self.nh = nh
        self.error = error
        self.icmp_code = icmp_code
        self.input = input_
        self.is_input_local = input_ == "local"
        self.metrics_mtu = route.metrics.get("mtu", 0) if route is not None else 0
        self.table = route.table if route is not None else RT_TABLE_MAIN

    def mtu(self) -> int:
        """``ip6_mtu``: the route's mtu metric, else the device's IPv6 MTU (conf.DEV.mtu)."""
        if self.metrics_mtu:
            return self.metrics_mtu
        dev = self.dev
        if dev is None:
            return 1280
        idev = dev.ip6_ptr
        return idev.mtu6 if idev is not None else dev.mtu

    def nexthop(self, daddr: bytes) -> bytes:
        """``rt6_nexthop``: the gateway, or the destination itself when on-link."""
        return self.gateway if self.gateway is not None else daddr

    def __repr__(self) -> str:  # pragma: no cover
        return f"<Rt6Info {self.input} type={self.type} dev={getattr(self.dev, 'name', None)}>"


# --------------------------------------------------------------- management
def get_table(net: "Net", tb_id: int, create: bool = False) -> Fib6Table | None:
    tables = net.ipv6.fib_tables
    t = tables.get(tb_id)
    if t is None and create:
        t = tables[tb_id] = Fib6Table(tb_id)
    return t


def _nh_equal(a: Fib6Nexthop, b: Fib6Nexthop) -> bool:
    return a.gw == b.gw and a.dev is b.dev


def _validate(net: "Net", route: Fib6Route) -> None:
    """``ip6_route_check_nh``/``ip6_validate_gw`` and prefix sanity (``ip6_route_info_create``)."""
    if not 0 <= route.dst_len <= 128:
        raise KernelError(errno.EINVAL, "Invalid prefix length")
    if route.src_len:
        raise NotSupported("IPv6 source-specific routes (CONFIG_IPV6_SUBTREES)")
    route.dst = prefix_mask(route.dst, route.dst_len)
    if route.type in ERROR_TYPES or route.type in (RTN_LOCAL, RTN_MULTICAST, RTN_ANYCAST):
        return
    for nh in route.nexthops:
        if nh.dev is not None and (nh.dev.ip6_ptr is None or nh.dev.ip6_ptr.dead):
            raise KernelError(errno.ENODEV)
        if nh.gw is None:
            if nh.dev is None:
                raise KernelError(errno.ENODEV, "Nexthop device required for onlink")
            continue
        if is_multicast(nh.gw):
            raise KernelError(errno.EINVAL, "Invalid gateway address")
        if is_linklocal(nh.gw):
            if nh.dev is None:
                raise KernelError(errno.EINVAL, "Nexthop device required for link-local gateway")
            continue
        if nh.flags & RTNH_F_ONLINK:
            if nh.dev is None:
                raise KernelError(errno.EINVAL, "Nexthop device required for onlink")
            continue
        from netstack.ipv6.addrconf import ipv6_chk_addr
        if ipv6_chk_addr(net, nh.gw, None):
            raise KernelError(errno.EINVAL, "Gateway can not be a local address")
        res = _lookup_table(net, RT_TABLE_MAIN, nh.gw, nh.dev.ifindex if nh.dev else 0)
        if res is None or res.nh is None or res.nh.gw is not None or res.route.type != RTN_UNICAST:
            raise KernelError(errno.EHOSTUNREACH if nh.dev is not None else errno.ENETUNREACH,
                              "Nexthop has invalid gateway" if nh.dev is not None else "")
        if nh.dev is None:
            nh.dev = res.nh.dev
        elif res.nh.dev is not nh.dev:
            raise KernelError(errno.EINVAL, "Nexthop has invalid gateway")
    if route.type == RTN_UNICAST and not route.nexthops:
        raise KernelError(errno.ENODEV)
    _set_upper_bounds(route)


def _set_upper_bounds(route: Fib6Route) -> None:
    """``rt6_upper_bound_set``: hash-threshold bounds over the 31-bit hash space."""
    total = sum(nh.weight for nh in route.nexthops) or 1
    acc = 0
    for nh in route.nexthops:
        acc += nh.weight
        nh.upper_bound = ((acc << 31) + total - 1) // total - 1  # DIV_ROUND_CLOSEST_ULL-ish


def fib6_route_add(net: "Net", route: Fib6Route, replace: bool = False, append: bool = False,
                   excl: bool = False, create: bool = True) -> None:
    """``ip6_route_add`` → ``fib6_add_rt2node`` with the netlink flags' semantics.

    ``excl`` (``ip route add``): EEXIST if a route with the same metric exists.  ``append``
    / neither (``prepend``): a gateway route joins an ECMP-qualifying route of the same
    metric as more nexthops; an identical nexthop is EEXIST.  ``replace``: the first route
    with the same metric and the same ECMP qualification is replaced, failing that the first
    route with the same metric (``fallback_ins``), else the route is added — unless
    ``create`` is false (``ip -6 route change``: NLM_F_REPLACE without NLM_F_CREATE), which
    is ENOENT "Can not replace route - no match found" (fib6_add_rt2node).
    """
    _validate(net, route)
    table = get_table(net, route.table, create=True)
    lst = table.node(route.dst, route.dst_len, create=True)
    assert lst is not None
    can_ecmp = route.qualifies_for_ecmp()
    same = [r for r in lst if r.priority == route.priority]
    if replace:
        fallback = None
        for i, r in enumerate(lst):
            if r.priority == route.priority:
                if r.qualifies_for_ecmp() == can_ecmp:
                    fallback = i
                    break
                if fallback is None:
                    fallback = i   # fallback_ins: the first route of the same metric
        if fallback is not None:
            lst[fallback] = route
            _invalidate(net)
            return
        if not create:
            table.prune(route.dst, route.dst_len)
            raise KernelError(errno.ENOENT, "Can not replace route - no match found")
        excl = False
    elif same:
        if excl:
            raise KernelError(errno.EEXIST)
        for r in same:
            for nh in r.nexthops:
                for new in route.nexthops:
                    if _nh_equal(nh, new) and r.type == route.type:
                        raise KernelError(errno.EEXIST)
        if can_ecmp:
            for r in same:
                if r.qualifies_for_ecmp():
                    # measured: prepend and append both list the new sibling last
                    r.nexthops.extend(route.nexthops)
                    _set_upper_bounds(r)
                    _invalidate(net)
                    return
    idx = len(lst)
    for i, r in enumerate(lst):
        if r.priority > route.priority:
            idx = i
            break
    lst.insert(idx, route)
    _invalidate(net)


def _invalidate(net: "Net") -> None:
    """``fib6_update_sernum``: cached dsts built from the old tree are stale."""
    net.ipv6.fib_sernum += 1


def fib6_route_del(net: "Net", match: Fib6Route, match_gw: bool = False,
                   match_dev: bool = False, match_metric: bool = False,
                   match_proto: bool = False, match_type: bool = False) -> None:
    """``ip6_route_del``: first route at exactly (dst, dst_len) in the table that matches the
    given selectors; with a gateway only that nexthop goes (a sibling), else the whole
    route.  ESRCH when nothing matches."""
    table = get_table(net, match.table)
    lst = table.node(prefix_mask(match.dst, match.dst_len), match.dst_len) if table else None
    if not lst:
        raise KernelError(errno.ESRCH)
    want = match.nexthops[0] if match.nexthops else None
    for r in list(lst):
        if match_metric and r.priority != match.priority:
            continue
        if match_proto and r.protocol != match.protocol:
            continue
        if match_type and r.type != match.type:
            continue
        for nh in list(r.nexthops) or [None]:
            if match_dev and (nh is None or want is None or nh.dev is not want.dev):
                continue
            if match_gw and (nh is None or want is None or nh.gw != want.gw):
                continue
            if match_gw and len(r.nexthops) > 1:
                r.nexthops.remove(nh)  # type: ignore[arg-type]
                _set_upper_bounds(r)
            else:
                lst.remove(r)
                table.prune(r.dst, r.dst_len)  # type: ignore[union-attr]
            _invalidate(net)
            return
    raise KernelError(errno.ESRCH)


def fib6_dump(net: "Net", table: int | None = None) -> list[Fib6Route]:
    """Routes in netlink dump order (``inet6_dump_fib``): the FIB6_TABLE_HASHSZ=256 buckets
    in order (``id & 255``), newest table first within a bucket (``hlist_add_head_rcu`` in
    ``fib6_link_table``), each table in tree post-order.  Measured: tables 256, 2, 300, 77,
    1000, 510, main, local print in that order."""
    tables = net.ipv6.fib_tables
    pos = {tb: i for i, tb in enumerate(tables)}   # dict order = creation order
    order = sorted(tables, key=lambda tb: (tb & 0xFF, -pos[tb]))
    out: list[Fib6Route] = []
    for tb in order:
        if table is not None and tb != table:
            continue
        out.extend(tables[tb].routes())
    return out


def fib6_flush_dev(net: "Net", dev: "NetDevice") -> None:
    """``rt6_sync_down_dev``/``fib6_ifdown`` on NETDEV_DOWN/UNREGISTER: every route through
    the device disappears (measured: static routes too); multipath routes lose the nexthop."""
    changed = False
    for t in net.ipv6.fib_tables.values():
        for d in list(t.by_len.values()):
            for lst in list(d.values()):
                for r in list(lst):
                    keep = [nh for nh in r.nexthops if nh.dev is not dev]
                    if len(keep) == len(r.nexthops):
                        continue
                    changed = True
                    if keep:
                        r.nexthops = keep
                        _set_upper_bounds(r)
                    else:
                        lst.remove(r)
        for plen in list(t.by_len):
            d = t.by_len[plen]
            for k in [k for k, v in d.items() if not v]:
                del d[k]
            if not d:
                del t.by_len[plen]
        t.lens = sorted(t.by_len, reverse=True)
    if changed:
        _invalidate(net)


# ------------------------------------------------------------------ lookups
def _nh_alive(nh: Fib6Nexthop) -> bool:
    dev = nh.dev
    return dev is None or (dev.is_up and not nh.flags & RTNH_F_DEAD)


def _lookup_table(net: "Net", tb_id: int, daddr: bytes, oif: int = 0) -> Fib6Result | None:
    table = net.ipv6.fib_tables.get(tb_id)
    if table is None:
        return None
    for lst in table.lookup(daddr):
        for r in lst:
            if r.type in ERROR_TYPES or not r.nexthops:
                if oif:
                    continue
                return Fib6Result(r, None, tb_id)
            for nh in r.nexthops:
                if not _nh_alive(nh):
                    continue
                if oif and (nh.dev is None or nh.dev.ifindex != oif):
                    continue
                return Fib6Result(r, nh, tb_id)
    return None


def fib6_lookup(net: "Net", fl6: Flowi6) -> Fib6Result | None:
    """``fib6_rule_lookup``: the default rules are walked inline (local, then main, as
    ``fib6_rule_lookup`` does without custom rules); otherwise the shared rule engine.
    Returns None for "no route" (the kernel's ip6_null_entry)."""
    v6 = net.ipv6
    v6.route_lookups += 1
    if not v6.has_custom_rules:
        for tb in (RT_TABLE_LOCAL, RT_TABLE_MAIN):
            res = _lookup_table(net, tb, fl6.daddr, fl6.oif)
            if res is None or res.route.type == RTN_THROW:
                continue
            return res
        return None
    from netstack.core.fib_rules import fib_rules_lookup
    err, res = fib_rules_lookup(v6.rules, fl6)
    if err or res is None:
        return None
    return res


def rt6_multipath_hash(net: "Net", fl6: Flowi6) -> int:
    """``rt6_multipath_hash`` for ``fib_multipath_hash_policy`` 0 (L3: addresses, flow
    label, next header) and 1 (L4: addresses, ports, protocol), 31 bits.  The kernel keys
    ``flow_hash_from_keys`` with a random per-boot secret; netstack keys siphash with the
    namespace's ``hash_secret`` so runs are reproducible."""
    policy = int(net.sysctl.get("net.ipv6.fib_multipath_hash_policy"))
    if policy == 1:
        data = (fl6.saddr + fl6.daddr + fl6.sport.to_bytes(2, "big")
                + fl6.dport.to_bytes(2, "big") + bytes((fl6.proto,)))
    else:
        data = fl6.saddr + fl6.daddr + fl6.flowlabel.to_bytes(4, "big") + bytes((fl6.proto,))
    return siphash(data, net.hash_secret) >> 33


def fib6_select_path(net: "Net", res: Fib6Result, fl6: Flowi6) -> None:
    """``fib6_select_path``: hash-threshold choice among live nexthops of an ECMP route."""
    r = res.route
    if len(r.nexthops) < 2 or fl6.oif:
        return
    h = rt6_multipath_hash(net, fl6)
    for nh in r.nexthops:
        if h > nh.upper_bound:
            continue
        if _nh_alive(nh):
            res.nh = nh
        return


def _dst_for(net: "Net", res: Fib6Result, input_: str) -> Rt6Info:
    """Build (or reuse, while the tree's serial number is unchanged) the dst of a result."""
    r, nh = res.route, res.nh
    key = (id(nh), input_, net.ipv6.fib_sernum)
    cached = r.dsts.get(key)  # type: ignore[arg-type]
    if cached is not None:
        return cached
    if r.type in ERROR_TYPES:
        code = ICMPV6_ADM_PROHIBITED if r.type == RTN_PROHIBIT else ICMPV6_NOROUTE
        err = {RTN_PROHIBIT: errno.EACCES, RTN_BLACKHOLE: errno.EINVAL}.get(r.type, errno.ENETUNREACH)
        dst = Rt6Info(r.type, net.get("lo"), None, r, None, "error", err, code)
    else:
        dst = Rt6Info(r.type, nh.dev if nh else None, nh.gw if nh else None, r, nh, input_)
    if len(r.dsts) > 64:
        r.dsts.clear()
    r.dsts[key] = dst  # type: ignore[index]
    return dst


def null_entry(net: "Net") -> Rt6Info:
    """``ip6_null_entry``: no route — ENETUNREACH, ICMPv6 no-route on input."""
    return Rt6Info(RTN_UNREACHABLE, net.get("lo"), None, None, None, "error",
                   errno.ENETUNREACH, ICMPV6_NOROUTE)


def ip6_route_input_lookup(net: "Net", fl6: Flowi6) -> Rt6Info:
    """``ip6_pol_route_input``: the dst for a received packet."""
    res = fib6_lookup(net, fl6)
    if res is None:
        return null_entry(net)
    r = res.route
    if r.type in (RTN_LOCAL, RTN_ANYCAST):
        return _dst_for(net, res, "local")
    if r.type == RTN_MULTICAST:
        return _dst_for(net, res, "mcast")
    if r.type in ERROR_TYPES:
        return _dst_for(net, res, "error")
    fib6_select_path(net, res, fl6)
    return _dst_for(net, res, "forward")


def ip6_route_output(net: "Net", fl6: Flowi6) -> Rt6Info:
    """``ip6_route_output``: the dst for a locally generated packet.

    Link-local and multicast destinations with an ``oif`` use that device directly
    (``rt6_need_strict`` + RT6_LOOKUP_F_IFACE).  Errors raise KernelError with the dst's
    errno (ENETUNREACH for no route, EACCES prohibit, EINVAL blackhole).
    """
    strict = is_multicast(fl6.daddr) or is_linklocal(fl6.daddr)
    res: Fib6Result | None
    if strict and fl6.oif:
        res = fib6_lookup(net, Flowi6(fl6.daddr, fl6.saddr, fl6.oif, 0, fl6.mark, fl6.proto))
        if res is None:
            dev = net.get_by_index(fl6.oif)
            if dev is None or dev.ip6_ptr is None:
                raise KernelError(errno.ENODEV)
            return Rt6Info(RTN_MULTICAST if is_multicast(fl6.daddr) else RTN_UNICAST, dev,
                           None, None, None, "output")
    else:
        res = fib6_lookup(net, fl6)
    if res is None:
        raise KernelError(errno.ENETUNREACH)
    r = res.route
    if r.type in ERROR_TYPES:
        raise KernelError(_dst_for(net, res, "error").error)
    fib6_select_path(net, res, fl6)
    return _dst_for(net, res, "output")


def ip6_route_get_saddr(net: "Net", dst: Rt6Info, daddr: bytes) -> bytes:
    """``ip6_route_get_saddr``: the route's prefsrc, else source address selection on the
    route's output device (raises EADDRNOTAVAIL when there is none)."""
    if dst.prefsrc:
        return dst.prefsrc
    from netstack.ipv6.addrconf import ipv6_dev_get_saddr
    saddr = ipv6_dev_get_saddr(net, dst.dev, daddr)
    if saddr is None:
        raise KernelError(errno.EADDRNOTAVAIL)
    return saddr


def rt6_update_pmtu(net: "Net", daddr: bytes, mtu: int) -> None:
    """``ip6_update_pmtu`` → ``__ip6_rt_update_pmtu``: a route exception for ``daddr``
    with the reported MTU (never below 1280), only when it lowers the path MTU; it
    expires after ``net.ipv6.route.mtu_expires`` seconds."""
    mtu = max(mtu, 1280)
    try:
        dst = ip6_route_output(net, Flowi6(daddr))
    except KernelError:
        return
    if mtu >= ip6_dst_mtu(net, dst, daddr):
        return
    expires = net.world.clock.now + int(net.sysctl.values["net.ipv6.route.mtu_expires"]) \
        * 1_000_000_000
    net.ipv6.pmtu[daddr] = (mtu, expires)


def ip6_dst_mtu(net: "Net", dst: Rt6Info, daddr: bytes) -> int:
    """The path MTU toward ``daddr``: the route's MTU lowered by a live PMTU exception."""
    mtu = dst.mtu()
    pm = net.ipv6.pmtu
    if pm:
        e = pm.get(daddr)
        if e is not None:
            if e[1] <= net.world.clock.now:
                del pm[daddr]
            elif e[0] < mtu:
                mtu = e[0]
    return mtu


def route_exists(net: "Net", tb: int, dst: bytes, plen: int, dev: "NetDevice",
                 rtype: int) -> Fib6Route | None:
    """The kernel-made route of (prefix, device, type) if present (addrconf bookkeeping)."""
    t = get_table(net, tb)
    lst = t.node(dst, plen) if t else None
    for r in lst or ():
        if r.type == rtype and r.addrconf and any(nh.dev is dev for nh in r.nexthops):
            return r
    return None
