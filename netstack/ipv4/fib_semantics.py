"""Routes and nexthops as the FIB stores them (net/ipv4/fib_semantics.c, include/net/ip_fib.h).

Why one :class:`FibRoute` object instead of the kernel's ``fib_alias`` + shared
``fib_info``: Python has no refcounted sharing to exploit, and the two only differ in which
fields decide "same route" (``fib_find_info``) — that comparison is :meth:`FibRoute.info_key`.

What lives here is the part of fib_semantics.c that needs no lookup: the per-type
properties (``fib_props``), ECMP weight thresholds (``fib_rebalance``), path selection
(``fib_select_multipath``) and the reactions to device state (``fib_sync_down_dev``,
``fib_sync_up``).  Nexthop validation needs route lookups and lives in :mod:`fib`.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from netstack.core.rtnetlink import (  # noqa: F401  (re-exported)
    RTNH_F_DEAD,
    RTNH_F_LINKDOWN,
    RTNH_F_OFFLOAD,
    RTNH_F_ONLINK,
    RTNH_F_PERVASIVE,
    RTNH_F_TRAP,
    RTNH_F_UNRESOLVED,
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
    RTN_XRESOLVE,
    RTPROT_BOOT,
    RTPROT_KERNEL,
    RTPROT_REDIRECT,
    RTPROT_STATIC,
    RTPROT_UNSPEC,
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RT_SCOPE_NOWHERE,
    RT_SCOPE_SITE,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_DEFAULT,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    RT_TABLE_UNSPEC,
)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice

# include/uapi/linux/rtnetlink.h: route types
RTN_MAX = 11

RTN_NAMES = {
    RTN_UNSPEC: "none", RTN_UNICAST: "unicast", RTN_LOCAL: "local", RTN_BROADCAST: "broadcast",
    RTN_ANYCAST: "anycast", RTN_MULTICAST: "multicast", RTN_BLACKHOLE: "blackhole",
    RTN_UNREACHABLE: "unreachable", RTN_PROHIBIT: "prohibit", RTN_THROW: "throw",
    RTN_NAT: "nat", RTN_XRESOLVE: "xresolve",
}

# enum rt_scope_t

# rtm_protocol

# enum rt_class_t
TABLE_NAMES = {RT_TABLE_DEFAULT: "default", RT_TABLE_MAIN: "main", RT_TABLE_LOCAL: "local"}

# rtnh_flags
#: Flags ignored when comparing nexthops (RTNH_COMPARE_MASK).
RTNH_COMPARE_MASK = RTNH_F_DEAD | RTNH_F_LINKDOWN | RTNH_F_OFFLOAD | RTNH_F_TRAP

#: ``fib_props[type] = {error, scope}``: the lookup error a route type returns and the
#: narrowest scope a route of that type may be given.
FIB_PROPS: dict[int, tuple[int, int]] = {
    RTN_UNSPEC: (0, RT_SCOPE_NOWHERE),
    RTN_UNICAST: (0, RT_SCOPE_UNIVERSE),
    RTN_LOCAL: (0, RT_SCOPE_HOST),
    RTN_BROADCAST: (0, RT_SCOPE_LINK),
    RTN_ANYCAST: (0, RT_SCOPE_LINK),
    RTN_MULTICAST: (0, RT_SCOPE_UNIVERSE),
    RTN_BLACKHOLE: (-errno.EINVAL, RT_SCOPE_UNIVERSE),
    RTN_UNREACHABLE: (-errno.EHOSTUNREACH, RT_SCOPE_UNIVERSE),
    RTN_PROHIBIT: (-errno.EACCES, RT_SCOPE_UNIVERSE),
    RTN_THROW: (-errno.EAGAIN, RT_SCOPE_UNIVERSE),
    RTN_NAT: (-errno.EINVAL, RT_SCOPE_NOWHERE),
    RTN_XRESOLVE: (-errno.EINVAL, RT_SCOPE_NOWHERE),
}
#: Per-type error only (hot path).
FIB_ERR: tuple[int, ...] = tuple(FIB_PROPS[t][0] for t in range(RTN_MAX + 1))


def ip_to_int(a: bytes | int | None) -> int:
    """Accept an address as 4 network-order bytes or an int (0 for None)."""
    if a is None:
        return 0
    if type(a) is int:
        return a
    return int.from_bytes(a, "big")


def int_to_ip(v: int) -> bytes:
    return v.to_bytes(4, "big")


@dataclass(eq=False)
class FibNexthop:
    """``struct fib_nh``: one path of a route.

    ``gw`` None means on-link (the destination itself is the next hop).  ``dev`` may be
    None when the route is added with only a gateway: validation fills it in from the
    gateway's route, as ``fib_check_nh_v4_gw``.  ``scope`` (``fib_nh_scope``) and
    ``upper_bound`` (the ECMP hash threshold) are computed by the FIB."""

    gw: bytes | None = None
    dev: "NetDevice | None" = None
    weight: int = 1
    flags: int = 0
    scope: int = RT_SCOPE_NOWHERE
    upper_bound: int = 0
    #: Per-nexthop realms (RTA_FLOW) are not modelled; kept for iproute2 output symmetry.
    realm: int = 0
    #: ``nhc_exceptions``: next-hop exceptions (learned PMTU / redirect gateway) by
    #: destination address; they die with the route, as the kernel's die with fib_info.
    exceptions: dict[int, Any] = field(default_factory=dict)

    @property
    def gw_int(self) -> int:
        return ip_to_int(self.gw)

    @property
    def oif(self) -> int:
        return self.dev.ifindex if self.dev is not None else 0

    def compare_key(self) -> tuple[Any, ...]:
        """What ``nh_comp`` compares."""
        return (self.oif, self.gw, self.weight, self.flags & ~RTNH_COMPARE_MASK)


@dataclass(eq=False)
class FibRoute:
    """A route (``fib_alias`` + ``fib_info``).

    For :func:`~netstack.ipv4.fib.fib_route_del` the same class describes the route to
    match, with the kernel's wildcard values: ``type`` RTN_UNSPEC, ``scope``
    RT_SCOPE_NOWHERE, ``protocol`` 0, ``priority`` 0, ``prefsrc`` None and an empty
    ``nexthops`` list (or a nexthop without dev/gw) match anything — exactly the zero
    fields of the kernel's ``fib_config`` on RTM_DELROUTE.
    """

    dst: bytes = b"\0\0\0\0"
    dst_len: int = 0
    tos: int = 0
    type: int = RTN_UNICAST
    protocol: int = RTPROT_BOOT
    scope: int = RT_SCOPE_UNIVERSE
    prefsrc: bytes | None = None
    priority: int = 0
    table: int = RT_TABLE_MAIN
    nexthops: list[FibNexthop] = field(default_factory=list)
    metrics: dict[str, int | str] = field(default_factory=dict)
    #: ``fib_flags`` (RTNH_F_DEAD / RTNH_F_LINKDOWN of the whole route) and rtm_flags given
    #: at creation (RTNH_F_ONLINK applies to each nexthop).
    flags: int = 0
    #: ``fa_default``: the default-route round-robin state of fib_select_default.
    fa_default: int = -1

    @property
    def dst_int(self) -> int:
        return ip_to_int(self.dst)

    @property
    def dead(self) -> bool:
        return bool(self.flags & RTNH_F_DEAD)

    def info_key(self) -> tuple[Any, ...]:
        """The fields ``fib_find_info`` compares to decide two routes share one fib_info
        (used for the EEXIST "perfect match" and replace no-op checks)."""
        return (self.protocol, self.scope, self.prefsrc, self.priority, self.type,
                tuple(sorted(self.metrics.items(), key=lambda kv: kv[0])),
                self.flags & ~RTNH_COMPARE_MASK,
                tuple(nh.compare_key() for nh in self.nexthops))

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        d = ".".join(str(b) for b in self.dst)
        return (f"<FibRoute {RTN_NAMES.get(self.type)} {d}/{self.dst_len} tos {self.tos} "
                f"table {self.table} metric {self.priority} nhs={len(self.nexthops)}>")


def ip_ignore_linkdown(dev: "NetDevice | None") -> bool:
    """``ip_ignore_linkdown``: IN_DEV_IGNORE_ROUTES_WITH_LINKDOWN (or of all/dev)."""
    if dev is None or dev.net is None:
        return False
    s = dev.net.sysctl.values
    return bool(s.get("net.ipv4.conf.all.ignore_routes_with_linkdown", 0)
                or s.get(f"net.ipv4.conf.{dev.name}.ignore_routes_with_linkdown", 0))


def fib_rebalance(fi: FibRoute) -> None:
    """``fib_rebalance``: give every live nexthop the upper bound of its hash range.

    The 31-bit hash space is split in proportion to the weights: nexthop *i* owns hashes
    ``<= round(sum(w[0..i]) << 31 / total) - 1``; dead (and, with
    ignore_routes_with_linkdown, carrier-less) nexthops get -1 and never match."""
    nhs = fi.nexthops
    if len(nhs) < 2:
        return
    total = 0
    for nh in nhs:
        if nh.flags & RTNH_F_DEAD:
            continue
        if nh.flags & RTNH_F_LINKDOWN and ip_ignore_linkdown(nh.dev):
            continue
        total += nh.weight
    w = 0
    for nh in nhs:
        if nh.flags & RTNH_F_DEAD or (nh.flags & RTNH_F_LINKDOWN and ip_ignore_linkdown(nh.dev)):
            nh.upper_bound = -1
        else:
            w += nh.weight
            # DIV_ROUND_CLOSEST_ULL((u64)w << 31, total) - 1
            nh.upper_bound = (((w << 31) + total // 2) // total) - 1


def fib_select_multipath(fi: FibRoute, hash_: int, saddr: int, use_neigh: bool,
                         neigh_ok: Any = None) -> int:
    """``fib_select_multipath``: index of the nexthop owning ``hash_`` (31 bits).

    A nexthop whose preferred source differs from a given ``saddr`` is skipped in favour
    of the first that matches, as the kernel does for sockets bound to an address.
    ``neigh_ok(nh) -> bool`` implements ``fib_good_nh`` when fib_multipath_use_neigh=1."""
    sel = 0
    found = False
    for i, nh in enumerate(fi.nexthops):
        ub = nh.upper_bound
        if ub == -1 or (use_neigh and neigh_ok is not None and not neigh_ok(nh)):
            continue
        nh_saddr = None
        if saddr:
            nh_saddr = nh_source_addr(nh)
        if not found:
            sel = i
            found = not saddr or nh_saddr == saddr
        if hash_ > ub:
            continue
        if not saddr or nh_saddr == saddr:
            return i
        if found:
            return sel
    return sel


def nh_source_addr(nh: FibNexthop) -> int:
    """``fib_info_update_nhc_saddr``: the source a path implies,
    ``inet_select_addr(nh.dev, nh.gw, nh.scope)``; computed on demand (never cached)."""
    if nh.dev is None:
        return 0
    from netstack.ipv4.devinet import inet_select_addr_int
    return inet_select_addr_int(nh.dev, nh.gw_int, nh.scope)


def fib_sync_down_dev(routes: list[FibRoute], dev: "NetDevice", event: str, force: bool) -> int:
    """``fib_sync_down_dev``: mark the paths through ``dev`` DEAD (DOWN/UNREGISTER) or
    LINKDOWN (CHANGE, carrier lost).  Host-scope paths (local/broadcast routes, nh scope
    NOWHERE) survive a plain DOWN; ``force`` (UNREGISTER) kills them too.  Returns the
    number of routes left with no live path (the caller then runs ``fib_flush``)."""
    scope = -1 if force else RT_SCOPE_NOWHERE
    ret = 0
    for fi in routes:
        if not any(nh.dev is dev for nh in fi.nexthops):
            continue
        dead = 0
        for nh in fi.nexthops:
            if nh.flags & RTNH_F_DEAD:
                dead += 1
            elif nh.dev is dev and nh.scope != scope:
                if event in ("DOWN", "UNREGISTER"):
                    nh.flags |= RTNH_F_DEAD
                nh.flags |= RTNH_F_LINKDOWN
                dead += 1
            if event == "UNREGISTER" and nh.dev is dev:
                dead = len(fi.nexthops)
                break
        if dead == len(fi.nexthops):
            if event in ("DOWN", "UNREGISTER"):
                fi.flags |= RTNH_F_DEAD
            fi.flags |= RTNH_F_LINKDOWN
            ret += 1
        fib_rebalance(fi)
    return ret


def fib_sync_up(routes: list[FibRoute], dev: "NetDevice", nh_flags: int) -> int:
    """``fib_sync_up``: clear ``nh_flags`` (DEAD and/or LINKDOWN) on the paths through a
    device that came up or got its carrier back; a route with a live path is alive."""
    if not dev.is_up:
        return 0
    if nh_flags & RTNH_F_DEAD and dev.running():
        nh_flags |= RTNH_F_LINKDOWN
    ret = 0
    for fi in routes:
        if not any(nh.dev is dev for nh in fi.nexthops):
            continue
        alive = 0
        for nh in fi.nexthops:
            if not nh.flags & nh_flags:
                alive += 1
                continue
            if nh.dev is None or not nh.dev.is_up:
                continue
            if nh.dev is not dev or dev.ip_ptr is None:
                continue
            alive += 1
            nh.flags &= ~nh_flags
        if alive > 0:
            fi.flags &= ~nh_flags
            ret += 1
        fib_rebalance(fi)
    return ret


# ----------------------------------------------------------- default routes
NUD_INCOMPLETE = 0x01
NUD_REACHABLE = 0x02
NUD_VALID = 0x80 | 0x40 | 0x02 | 0x10 | 0x04 | 0x08


def _detect_death(net: Any, fi: FibRoute, order: int, state_: list[Any], dflt: int) -> bool:
    """``fib_detect_death``: True when the gateway of ``fi`` looks dead (its ARP entry
    is not REACHABLE); remembers the best fallback in ``state_`` = [last_resort,
    last_idx].  No neighbour entry at all counts as alive, as in the kernel."""
    nh = fi.nexthops[0]
    tbl = getattr(net.ipv4, "arp_tbl", None)
    n = None
    if tbl is not None and nh.gw is not None and nh.dev is not None:
        from netstack.core.neighbour import neigh_lookup
        n = neigh_lookup(tbl, nh.dev, nh.gw)
    if n is None:
        return False
    state = n.nud_state
    if state == NUD_REACHABLE:
        return False
    if state & NUD_VALID and order != dflt:
        return False
    if state & NUD_VALID or (state_[1] < 0 and order > dflt and state != NUD_INCOMPLETE):
        state_[0] = fi
        state_[1] = order
    return True


def fib_select_default(net: Any, fl4: Any, res: Any, tb: Any) -> None:
    """``fib_select_default``: with several default routes of equal metric, move to the
    next gateway when the current one's neighbour entry is not reachable (the kernel's
    round robin over dead-looking routers, state kept in ``fa_default``)."""
    fi: FibRoute | None = None
    state_: list[Any] = [None, -1]
    order = -1
    fa1: FibRoute | None = None
    last_prio = res.fi.priority
    last_tos = 0
    ftos = fl4.tos & 0x1C   # INET_DSCP_LEGACY_TOS_MASK
    for fa in tb.plens[0].get(0, []):
        if fa.tos and fa.tos != ftos:
            continue
        if fa.priority > last_prio and fa.tos == last_tos:
            if last_tos:
                continue
            break
        if fa.flags & RTNH_F_DEAD:
            continue
        last_tos = fa.tos
        last_prio = fa.priority
        if fa.scope != res.scope or fa.type != RTN_UNICAST:
            continue
        nh = fa.nexthops[0] if fa.nexthops else None
        if nh is None or nh.gw is None or nh.scope != RT_SCOPE_LINK:
            continue
        if fi is None:
            if fa is not res.fi:
                break
            fa1 = fa
        elif fa1 is not None and not _detect_death(net, fi, order, state_, fa1.fa_default):
            res.fi, res.nh_sel = fi, 0
            fa1.fa_default = order
            return
        fi = fa
        order += 1
    if order <= 0 or fi is None or fa1 is None:
        if fa1 is not None:
            fa1.fa_default = -1
        return
    if not _detect_death(net, fi, order, state_, fa1.fa_default):
        res.fi, res.nh_sel = fi, 0
        fa1.fa_default = order
        return
    if state_[1] >= 0:
        res.fi, res.nh_sel = state_[0], 0
    fa1.fa_default = state_[1]


