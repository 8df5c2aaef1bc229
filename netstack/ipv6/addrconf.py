"""IPv6 addresses: per-device state, add/delete, link-local autoconfiguration, DAD, the
routes the kernel installs for addresses, and the netdevice notifier (net/ipv6/addrconf.c).

What is reproduced (measured against Linux 6.18 with ``ip -6 -j route show table all``):

* ``inet6_add_addr`` (``inet6_addr_add``/``ipv6_add_addr``): EEXIST "ipv6: address already
  assigned.", EACCES when IPv6 is disabled on the device, addresses kept newest-first
  within a scope and higher scopes first (``ipv6_link_dev_addr``); every address starts
  TENTATIVE; the prefix route (``addrconf_prefix_route``: table main, proto kernel, metric
  256 unless given, /128 included, not for ``noprefixroute``) appears while the link is ready; the
  local route (table local, type local, the address's device, metric 0) appears when DAD
  completes (``addrconf_dad_completed`` → ``__ipv6_ifa_notify``).
* DAD (``addrconf_dad_begin``/``addrconf_dad_work``): skipped for NOARP/loopback devices,
  ``nodad`` addresses and when ``max(all.accept_dad, DEV.accept_dad) < 1``; otherwise the
  first NS goes out after a random delay below ``router_solicitation_delay`` (1 s, drawn
  from the world's seeded RNG) and the address becomes usable ``retrans_time`` after the
  last of ``dad_transmits`` probes.  An NA for the address, or a DAD NS from someone else,
  fails DAD (IFA_F_DADFAILED, address stays tentative).
* ``addrconf_notify``: on link up with carrier (``addrconf_link_ready``) the device gets
  ``ff00::/8`` (multicast, table local, metric 256, ``addrconf_add_mroute``) and, with
  ``addr_gen_mode`` 0 (eui64), the link-local fe80::EUI-64/64 plus the fe80::/64 route;
  loopback gets ::1/128.  On down every route through the device goes and addresses are
  removed unless ``keep_addr_on_down`` (permanent non-link-local ones survive);
  unregister removes everything; an MTU below 1280 disables IPv6 on the device.
* Router solicitation (``addrconf_dad_completed`` → ``ndisc_send_rs``, ``addrconf_rs_timer``):
  a host interface (``ipv6_accept_ra``: forwarding 0 and accept_ra ≠ 0, or accept_ra 2)
  sends an RS from its link-local address to ff02::2 as soon as its first link-local
  address is usable, then again after ``router_solicitation_interval`` (4 s) × 0.9…1.1,
  each wait doubling (× 1.9…2.1, RFC 7559) up to ``router_solicitation_max_interval``
  (3600 s) × 0.9…1.1, ``router_solicitations`` times (-1: until an RA is accepted).
  The random factors come from the world's seeded RNG.  Not modelled: SLAAC from the
  RAs that answer (see ndisc.py), MLD reports.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from netstack.core.clock import HZ, NSEC_PER_SEC
from netstack.core.netdevice import ARPHRD_ETHER, IFF_LOOPBACK, IFF_NOARP, IFF_UP
from netstack.errors import KernelError
from netstack.ipv6 import route as r6
from netstack.ipv6.addr import (ALL_NODES, ALL_ROUTERS, LOOPBACK,
                                addr_src_scope, common_prefix_len, is_linklocal, is_multicast,
                                link_local_from_mac, prefix_equal, prefix_mask, rt_scope,
                                solicited_node)
from netstack.core.rtnetlink import (  # noqa: F401  (re-exported)
    IFA_F_DADFAILED,
    IFA_F_DEPRECATED,
    IFA_F_HOMEADDRESS,
    IFA_F_MANAGETEMPADDR,
    IFA_F_MCAUTOJOIN,
    IFA_F_NODAD,
    IFA_F_NOPREFIXROUTE,
    IFA_F_OPTIMISTIC,
    IFA_F_PERMANENT,
    IFA_F_SECONDARY,
    IFA_F_TEMPORARY,
    IFA_F_TENTATIVE,
)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.clock import Timer
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice

# include/uapi/linux/if_addr.h
INFINITY_LIFE_TIME = 0xFFFFFFFF
IPV6_MIN_MTU = 1280

# enum inet6_ifaddr_state
STATE_PREDAD, STATE_DAD, STATE_POSTDAD, STATE_ERRDAD, STATE_DEAD = range(5)
CONF = "net.ipv6.conf"


@dataclass(eq=False)
class Inet6IfAddr:
    """``struct inet6_ifaddr`` (fields as ``ip -6 addr`` shows them)."""

    local: bytes
    prefixlen: int = 128
    address: bytes | None = None      # peer (IFA_ADDRESS), None when not point-to-point
    flags: int = 0
    valid_lft: int = INFINITY_LIFE_TIME
    preferred_lft: int = INFINITY_LIFE_TIME
    metric: int = 0                   # IFA_RT_PRIORITY (0 → 256)
    proto: int = 0
    label: str = ""
    scope: int = 0
    state: int = STATE_PREDAD
    dad_probes: int = 0
    dev: "NetDevice | None" = None
    dad_timer: "Timer | None" = None
    dad_nonce: bytes = b""
    in_anycast: bool = False          # joined its subnet-router anycast address

    @property
    def addr(self) -> bytes:
        return self.local

    @property
    def tentative(self) -> bool:
        return bool(self.flags & IFA_F_TENTATIVE)


@dataclass(eq=False)
class Inet6Dev:
    """``struct inet6_dev`` (``dev.ip6_ptr``)."""

    dev: "NetDevice"
    addrs: list[Inet6IfAddr] = field(default_factory=list)
    mtu6: int = 1280
    ready: bool = False               # IF_READY
    dead: bool = False
    mc: dict[bytes, int] = field(default_factory=dict)   # group -> users (ipv6_dev_mc_inc)
    ac: dict[bytes, int] = field(default_factory=dict)   # anycast -> users (ipv6_dev_ac_inc)
    rs_timer: "Timer | None" = None   # idev->rs_timer (addrconf_rs_timer)
    rs_probes: int = 0                # RS sent in this round
    rs_interval: int = 0              # jiffies until the next RS (RFC 3315 §14 backoff)
    rs_sent: bool = False             # IF_RS_SENT
    ra_rcvd: bool = False             # IF_RA_RCVD: an RA was accepted after our RS

    def cnf(self, name: str) -> Any:
        """``idev->cnf.NAME``."""
        net = self.dev.net
        return net.sysctl.values[f"{CONF}.{self.dev.name}.{name}"]  # type: ignore[union-attr]


def cnf_all(net: "Net", name: str) -> Any:
    """``net->ipv6.devconf_all->NAME``."""
    return net.sysctl.values[f"{CONF}.all.{name}"]


# ------------------------------------------------------------------ helpers
def _scope_key(a: bytes) -> int:
    return addr_src_scope(a)


def mc_inc(idev: Inet6Dev, group: bytes) -> None:
    """``ipv6_dev_mc_inc``: join a group; a new group starts its MLD reports
    (``igmp6_group_added``, netstack/ipv6/mcast.py)."""
    n = idev.mc.get(group, 0)
    idev.mc[group] = n + 1
    if n == 0:
        from netstack.ipv6.mcast import igmp6_group_added
        igmp6_group_added(idev, group)


def mc_dec(idev: Inet6Dev, group: bytes) -> None:
    """``ipv6_dev_mc_dec``: the last user leaving sends the MLD leave
    (``igmp6_group_dropped``)."""
    n = idev.mc.get(group, 0) - 1
    if n <= 0:
        if idev.mc.pop(group, None) is not None:
            from netstack.ipv6.mcast import igmp6_group_dropped
            igmp6_group_dropped(idev, group)
    else:
        idev.mc[group] = n


def ipv6_chk_mcast_addr(dev: "NetDevice", group: bytes) -> bool:
    """``ipv6_chk_mcast_addr``: has the device joined ``group``?"""
    idev = dev.ip6_ptr
    return idev is not None and group in idev.mc


def ipv6_get_ifaddr(net: "Net", addr: bytes, dev: "NetDevice | None" = None) -> Inet6IfAddr | None:
    """``ipv6_get_ifaddr``: the address entry, tentative or not."""
    for ifa in net.ipv6.addr_hash.get(addr, ()):
        if dev is None or ifa.dev is dev:
            return ifa
    return None


def ipv6_chk_addr(net: "Net", addr: bytes, dev: "NetDevice | None",
                  strict: bool = False) -> Inet6IfAddr | None:
    """``ipv6_chk_addr``: a non-tentative address of ours (on ``dev`` if strict, or for
    link-local addresses, which only count on their own device)."""
    for ifa in net.ipv6.addr_hash.get(addr, ()):
        if ifa.flags & IFA_F_TENTATIVE and not ifa.flags & IFA_F_OPTIMISTIC:
            continue
        if dev is None or ifa.dev is dev or (not strict and not is_linklocal(addr)):
            return ifa
    return None


def inet6_addrs(dev: "NetDevice") -> list[Inet6IfAddr]:
    """The device's addresses in ``ip -6 addr`` order."""
    idev = dev.ip6_ptr
    return list(idev.addrs) if idev is not None else []


# ------------------------------------------------------------------- routes
def _prefix_route(net: "Net", ifa: Inet6IfAddr, add: bool) -> None:
    """``addrconf_prefix_route`` / ``cleanup_prefix_route``.

    Every user address gets one, /128 included (measured on 6.18: ``2001:db8:9::1 dev d0
    proto kernel metric 256``), except with ``noprefixroute``.  The loopback's ::1 is made
    by ``init_loopback`` → ``add_addr``, which never adds a prefix route."""
    plen = ifa.prefixlen
    if ifa.flags & IFA_F_NOPREFIXROUTE:
        return
    if ifa.local == LOOPBACK and ifa.dev is not None and ifa.dev.flags & IFF_LOOPBACK:
        return
    base = ifa.address if ifa.address is not None else ifa.local
    pfx = prefix_mask(base, plen)
    metric = ifa.metric or r6.IP6_RT_PRIO_ADDRCONF
    dev = ifa.dev
    assert dev is not None
    existing = r6.route_exists(net, r6.RT_TABLE_MAIN, pfx, plen, dev, r6.RTN_UNICAST)
    if add:
        if existing is not None and existing.priority == metric:
            return
        rt = r6.Fib6Route(pfx, plen, r6.RTN_UNICAST, r6.RTPROT_KERNEL, metric, r6.RT_TABLE_MAIN,
                          [r6.Fib6Nexthop(None, dev)], addrconf=True)
        try:
            r6.fib6_route_add(net, rt)
        except KernelError:
            pass  # same prefix and metric already there (another address): the kernel ignores EEXIST
        return
    if existing is None:
        return
    for other in dev.ip6_ptr.addrs:
        if other is not ifa and other.prefixlen == plen and prefix_equal(other.local, pfx, plen) \
                and not other.flags & IFA_F_NOPREFIXROUTE:
            return
    _del_route(net, existing)


def _del_route(net: "Net", rt: r6.Fib6Route) -> None:
    t = r6.get_table(net, rt.table)
    lst = t.node(rt.dst, rt.dst_len) if t else None
    if lst and rt in lst:
        lst.remove(rt)
        t.prune(rt.dst, rt.dst_len)  # type: ignore[union-attr]
        r6._invalidate(net)


def _local_route(net: "Net", ifa: Inet6IfAddr, add: bool) -> None:
    """The ``local ADDR dev DEV table local proto kernel metric 0`` route of an address."""
    dev = ifa.dev
    assert dev is not None
    existing = r6.route_exists(net, r6.RT_TABLE_LOCAL, ifa.local, 128, dev, r6.RTN_LOCAL)
    if add and existing is None:
        r6.fib6_route_add(net, r6.Fib6Route(ifa.local, 128, r6.RTN_LOCAL, r6.RTPROT_KERNEL, 0,
                                            r6.RT_TABLE_LOCAL, [r6.Fib6Nexthop(None, dev)],
                                            addrconf=True))
    elif not add and existing is not None:
        _del_route(net, existing)


def _mroute(net: "Net", dev: "NetDevice") -> None:
    """``addrconf_add_mroute``: ff00::/8 in the local table."""
    pfx = bytes((0xFF,)) + bytes(15)
    if r6.route_exists(net, r6.RT_TABLE_LOCAL, pfx, 8, dev, r6.RTN_MULTICAST) is None:
        r6.fib6_route_add(net, r6.Fib6Route(pfx, 8, r6.RTN_MULTICAST, r6.RTPROT_KERNEL,
                                            r6.IP6_RT_PRIO_ADDRCONF, r6.RT_TABLE_LOCAL,
                                            [r6.Fib6Nexthop(None, dev)], addrconf=True))


# --------------------------------------------------------------- add / del
def _link_addr(idev: Inet6Dev, ifa: Inet6IfAddr) -> None:
    """``ipv6_link_dev_addr``: before the first entry whose scope is not above ours."""
    sc = _scope_key(ifa.local)
    for i, other in enumerate(idev.addrs):
        if sc >= _scope_key(other.local):
            idev.addrs.insert(i, ifa)
            return
    idev.addrs.append(ifa)


def inet6_add_addr(net: "Net", dev: "NetDevice", ifa: Inet6IfAddr, *,
                   find_idev: bool = True) -> Inet6IfAddr:
    """``inet6_addr_add``: validate, link, join the solicited-node group, add the prefix
    route if the link is ready, start DAD.  Raises KernelError like the kernel.

    ``find_idev``: the user path (``inet6_rtm_newaddr``) goes through
    ``ipv6_find_idev``, which runs ``ipv6_mc_up`` on an up device — every reportable
    group is reported again; addrconf's own link-local/loopback addresses
    (``addrconf_add_linklocal``, ``ipv6_add_addr``) pass False."""
    if not 0 <= ifa.prefixlen <= 128:
        raise KernelError(errno.EINVAL, "ipv6: Invalid prefix length.")
    if is_multicast(ifa.local) or ifa.local == bytes(16):
        raise KernelError(errno.EADDRNOTAVAIL if ifa.local == bytes(16) else errno.EINVAL)
    idev = dev.ip6_ptr
    if idev is None or idev.dead:
        raise KernelError(errno.ENOBUFS if dev.mtu < IPV6_MIN_MTU else errno.ENODEV)
    if find_idev and dev.flags & IFF_UP:
        from netstack.ipv6.mcast import ipv6_mc_up
        ipv6_mc_up(idev)
    if idev.cnf("disable_ipv6"):
        raise KernelError(errno.EACCES, "IPv6 is disabled on this device")
    for other in net.ipv6.addr_hash.get(ifa.local, ()):
        if other.dev is dev:
            raise KernelError(errno.EEXIST, "ipv6: address already assigned.")
    # inet6addr_validator_chain (NETDEV_UP): a driver may refuse the address (ipvlan)
    for validate in net.world.inet6addr_validator_chain:
        validate(dev, ifa.local)
    if ifa.valid_lft == INFINITY_LIFE_TIME:
        ifa.flags |= IFA_F_PERMANENT
    ifa.flags |= IFA_F_TENTATIVE
    ifa.flags &= ~(IFA_F_DADFAILED)
    ifa.dev = dev
    ifa.scope = rt_scope(ifa.local)
    ifa.state = STATE_PREDAD
    _link_addr(idev, ifa)
    net.ipv6.addr_hash.setdefault(ifa.local, []).append(ifa)
    if not dev.flags & (IFF_LOOPBACK | IFF_NOARP):
        mc_inc(idev, solicited_node(ifa.local))  # addrconf_join_solict skips lo/NOARP
    if idev.ready:
        _prefix_route(net, ifa, True)
    for fn in net.world.inet6addr_chain:
        fn("UP", dev, ifa.local)  # inet6addr_notifier_call_chain(NETDEV_UP)
    addrconf_dad_start(net, ifa)
    return ifa


#: Flags ``inet6_addr_modify`` takes from the request (``ip -6 addr replace/change``).
_MODIFY_FLAGS = IFA_F_NODAD | IFA_F_HOMEADDRESS | IFA_F_MANAGETEMPADDR | IFA_F_NOPREFIXROUTE


def inet6_addr_modify(net: "Net", dev: "NetDevice", req: Inet6IfAddr, *,
                      create: bool = True) -> Inet6IfAddr:
    """``inet6_rtm_newaddr`` with NLM_F_REPLACE: an address already on the device (looked
    up by address alone, ``ipv6_get_ifaddr``) gets the request's lifetimes, modifiable
    flags and metric if one is given (``inet6_addr_modify``); its prefix route follows —
    re-added with the new metric, removed when ``noprefixroute`` is set, added when it is
    cleared.
    Otherwise the address is added — also for ``ip addr change``, since the kernel does
    not look at NLM_F_CREATE here (measured); ``create=False`` gives ENOENT instead."""
    ifa = ipv6_get_ifaddr(net, req.local, dev)
    if ifa is None:
        if not create:
            raise KernelError(errno.ENOENT)
        return inet6_add_addr(net, dev, req)
    if req.valid_lft == 0 or req.preferred_lft > req.valid_lft:
        raise KernelError(errno.EINVAL)
    idev = dev.ip6_ptr
    ready = idev is not None and idev.ready
    had_route = ready and not ifa.flags & IFA_F_NOPREFIXROUTE
    if had_route:
        _prefix_route(net, ifa, False)
    ifa.flags = (ifa.flags & ~_MODIFY_FLAGS) | (req.flags & _MODIFY_FLAGS)
    ifa.valid_lft, ifa.preferred_lft = req.valid_lft, req.preferred_lft
    if ifa.valid_lft == INFINITY_LIFE_TIME:
        ifa.flags |= IFA_F_PERMANENT
    else:
        ifa.flags &= ~IFA_F_PERMANENT
    if req.metric:
        # measured: `ip -6 addr change` without "metric" keeps the old one (IFA_RT_PRIORITY
        # absent), unlike IPv4, where the missing attribute resets it to 0
        ifa.metric = req.metric
    if ready:
        _prefix_route(net, ifa, True)
    r6._invalidate(net)
    return ifa


def _del_ifa(net: "Net", ifa: Inet6IfAddr, routes: bool = True) -> None:
    """``ipv6_del_addr``: unlink, leave the group, stop DAD, remove its routes."""
    dev = ifa.dev
    assert dev is not None
    idev = dev.ip6_ptr
    if ifa.dad_timer is not None:
        ifa.dad_timer.cancel()
    ifa.state = STATE_DEAD
    if routes:
        _prefix_route(net, ifa, False)
        _local_route(net, ifa, False)
    if ifa in idev.addrs:
        idev.addrs.remove(ifa)
    lst = net.ipv6.addr_hash.get(ifa.local)
    if lst is not None and ifa in lst:
        lst.remove(ifa)
        if not lst:
            del net.ipv6.addr_hash[ifa.local]
    mc_dec(idev, solicited_node(ifa.local))
    _anycast(net, ifa, False)
    for fn in net.world.inet6addr_chain:
        fn("DOWN", dev, ifa.local)  # inet6addr_notifier_call_chain(NETDEV_DOWN)


def inet6_del_addr(net: "Net", dev: "NetDevice", local: bytes, prefixlen: int) -> None:
    """``inet6_addr_del``: EADDRNOTAVAIL "ipv6: address not found." when absent."""
    idev = dev.ip6_ptr
    if idev is None:
        raise KernelError(errno.ENODEV)
    for ifa in idev.addrs:
        if ifa.local == local and ifa.prefixlen == prefixlen:
            _del_ifa(net, ifa)
            return
    raise KernelError(errno.EADDRNOTAVAIL, "ipv6: address not found.")


def inet6_flush_addrs(net: "Net", dev: "NetDevice") -> None:
    """``ip -6 addr flush dev DEV``: delete every address (each with its routes)."""
    idev = dev.ip6_ptr
    if idev is None:
        return
    for ifa in list(idev.addrs):
        _del_ifa(net, ifa)


# ---------------------------------------------------------------------- DAD
def _dad_wanted(net: "Net", ifa: Inet6IfAddr) -> bool:
    dev = ifa.dev
    assert dev is not None
    idev = dev.ip6_ptr
    return not (dev.flags & (IFF_NOARP | IFF_LOOPBACK)
                or (cnf_all(net, "accept_dad") < 1 and idev.cnf("accept_dad") < 1)
                or ifa.flags & IFA_F_NODAD)


def addrconf_dad_start(net: "Net", ifa: Inet6IfAddr) -> None:
    """``addrconf_dad_start``/``addrconf_dad_begin``."""
    dev = ifa.dev
    assert dev is not None
    idev = dev.ip6_ptr
    if not idev.ready:
        return  # stays tentative until the link is ready (addrconf_dad_run on up)
    if not _dad_wanted(net, ifa):
        ifa.flags &= ~(IFA_F_TENTATIVE | IFA_F_OPTIMISTIC | IFA_F_DADFAILED)
        # The RS this may send is received before the command returns: the CLI settles
        # the world after every command (netstack/cli/scenario.py _settle).
        addrconf_dad_completed(net, ifa)
        return
    world = net.world
    ifa.state = STATE_DAD
    ifa.dad_probes = int(idev.cnf("dad_transmits"))
    delay_ms = int(idev.cnf("router_solicitation_delay")) * 1000
    rand_ms = world.rng.randrange(delay_ms) if delay_ms > 0 else 0
    if idev.cnf("enhanced_dad") or cnf_all(net, "enhanced_dad"):
        ifa.dad_nonce = bytes(world.rng.getrandbits(8) for _ in range(6))
    else:
        ifa.dad_nonce = b""
    if ifa.dad_timer is None:
        ifa.dad_timer = world.clock.timer(_dad_work, net, ifa)
    ifa.dad_timer.mod_in(rand_ms * 1_000_000)


def _dad_work(net: "Net", ifa: Inet6IfAddr) -> None:
    """``addrconf_dad_work``: one probe per run; done when the probes are used up."""
    if ifa.state != STATE_DAD:
        return
    if ifa.dad_probes <= 0:
        ifa.flags &= ~(IFA_F_TENTATIVE | IFA_F_OPTIMISTIC | IFA_F_DADFAILED)
        addrconf_dad_completed(net, ifa)
        return
    ifa.dad_probes -= 1
    from netstack.ipv6.ndisc import ndisc_send_ns, nd_parm
    dev = ifa.dev
    assert dev is not None and ifa.dad_timer is not None
    ifa.dad_timer.mod_in(int(nd_parm(net, dev, "retrans_time_ms")) * 1_000_000)
    ndisc_send_ns(net, dev, ifa.local, solicited_node(ifa.local), bytes(16), nonce=ifa.dad_nonce)


def addrconf_dad_completed(net: "Net", ifa: Inet6IfAddr) -> bool:
    """``addrconf_dad_completed`` → ``ipv6_ifa_notify(RTM_NEWADDR)``: the local route,
    on a forwarding interface the subnet-router anycast address, and on a host the
    first router solicitation.  True when an RS was sent."""
    ifa.state = STATE_POSTDAD
    dev = ifa.dev
    assert dev is not None
    if dev.ip6_ptr is not None and dev.ip6_ptr.ready:
        _prefix_route(net, ifa, True)
    _local_route(net, ifa, True)
    if dev.ip6_ptr is not None and dev.ip6_ptr.cnf("forwarding"):
        _anycast(net, ifa, True)
    if dev.ip6_ptr is not None and is_linklocal(ifa.local) and _lonely_lladdr(ifa):
        # send_mld: reports sent during DAD came from ::, resend from the link-local
        from netstack.ipv6.mcast import ipv6_mc_dad_complete
        ipv6_mc_dad_complete(dev.ip6_ptr)
    return _maybe_start_rs(net, ifa)


def _anycast(net: "Net", ifa: Inet6IfAddr, join: bool) -> None:
    """``addrconf_join_anycast``/``addrconf_leave_anycast``: the subnet-router anycast
    address (RFC 4291 §2.6.1) of the address's prefix, not for /127 and /128 (RFC 6164);
    the first user adds ``anycast PREFIX:: dev DEV table local proto kernel metric 0``."""
    if ifa.prefixlen >= 127:
        return
    ac = prefix_mask(ifa.local, ifa.prefixlen)
    if ac == bytes(16):
        return
    dev = ifa.dev
    assert dev is not None
    idev = dev.ip6_ptr
    if idev is None:
        return
    n = idev.ac.get(ac, 0)
    if join:
        if not ifa.in_anycast:
            ifa.in_anycast = True
            idev.ac[ac] = n + 1
        if r6.route_exists(net, r6.RT_TABLE_LOCAL, ac, 128, dev, r6.RTN_ANYCAST) is None:
            r6.fib6_route_add(net, r6.Fib6Route(ac, 128, r6.RTN_ANYCAST, r6.RTPROT_KERNEL, 0,
                                                r6.RT_TABLE_LOCAL, [r6.Fib6Nexthop(None, dev)],
                                                addrconf=True))
    elif ifa.in_anycast:
        ifa.in_anycast = False
        if n > 1:
            idev.ac[ac] = n - 1
            return
        idev.ac.pop(ac, None)
        rt = r6.route_exists(net, r6.RT_TABLE_LOCAL, ac, 128, dev, r6.RTN_ANYCAST)
        if rt is not None:
            _del_route(net, rt)


# ------------------------------------------------------- router solicitation
#: include/uapi/linux/if_arp.h: IPIP tunnels never solicit (addrconf_dad_completed).
ARPHRD_TUNNEL = 768


def ipv6_accept_ra(idev: Inet6Dev) -> bool:
    """``ipv6_accept_ra`` (include/net/addrconf.h): with forwarding on, only the hybrid
    mode ``accept_ra`` = 2; otherwise any non-zero value."""
    ra = int(idev.cnf("accept_ra"))
    return ra == 2 if idev.cnf("forwarding") else ra != 0


def ipv6_get_lladdr(dev: "NetDevice", banned_flags: int) -> bytes | None:
    """``ipv6_get_lladdr``: the device's first link-local address without ``banned_flags``
    (the RS paths ban IFA_F_TENTATIVE, which optimistic addresses also carry)."""
    for ifa in inet6_addrs(dev):
        if is_linklocal(ifa.local) and not ifa.flags & banned_flags:
            return ifa.local
    return None


def _lonely_lladdr(ifa: Inet6IfAddr) -> bool:
    """``ipv6_lonely_lladdr``: no *other* link-local address of the device is already
    usable (permanent, not tentative/optimistic/DAD-failed) — only the first usable
    link-local address starts MLD reports and router solicitation."""
    dev = ifa.dev
    assert dev is not None
    mask = IFA_F_PERMANENT | IFA_F_TENTATIVE | IFA_F_OPTIMISTIC | IFA_F_DADFAILED
    return not any(o is not ifa and is_linklocal(o.local) and o.flags & mask == IFA_F_PERMANENT
                   for o in inet6_addrs(dev))


def _backoff_init(net: "Net", irt: int) -> int:
    """``rfc3315_s14_backoff_init`` (RFC 3315 §14 as RFC 7559 asks): IRT × 0.9…1.1, in
    jiffies, with the kernel's integer arithmetic."""
    return net.world.rng.randint(900_000, 1_100_000) * irt // 1_000_000


def _backoff_update(net: "Net", rt: int, mrt: int) -> int:
    """``rfc3315_s14_backoff_update``: RT × 1.9…2.1, or MRT × 0.9…1.1 once past MRT."""
    rng = net.world.rng
    tmp = rng.randint(1_900_000, 2_100_000) * rt // 1_000_000
    if tmp > mrt:
        tmp = rng.randint(900_000, 1_100_000) * mrt // 1_000_000
    return tmp


def _jiffies_cnf(idev: Inet6Dev, name: str) -> int:
    """A ``proc_dointvec_jiffies`` knob (seconds in /proc/sys) as jiffies."""
    return int(idev.cnf(name)) * HZ


def _mod_rs_timer(net: "Net", idev: Inet6Dev, when_jiffies: int) -> None:
    """``addrconf_mod_rs_timer``: (re)arm ``idev->rs_timer`` ``when`` jiffies from now."""
    if idev.rs_timer is None:
        idev.rs_timer = net.world.clock.timer(addrconf_rs_timer, net, idev)
    idev.rs_timer.mod_in(when_jiffies * (NSEC_PER_SEC // HZ))


def _maybe_start_rs(net: "Net", ifa: Inet6IfAddr) -> bool:
    """The RS half of ``addrconf_dad_completed``: when the device's first usable
    link-local address comes out of DAD on an interface that takes RAs (a host:
    forwarding 0 and accept_ra 1), with ``router_solicitations`` != 0, not loopback and
    not an IPIP tunnel, the first RS goes out at once — DAD already supplied the random
    delay RFC 4861 §6.3.7 asks for — and ``addrconf_rs_timer`` is armed for
    ``router_solicitation_interval`` × 0.9…1.1.  Team ports (also excluded by the
    kernel) do not exist in netstack.  True when an RS was sent."""
    dev = ifa.dev
    assert dev is not None
    idev = dev.ip6_ptr
    if idev is None or not is_linklocal(ifa.local) or not _lonely_lladdr(ifa):
        return False
    if not ipv6_accept_ra(idev) or int(idev.cnf("router_solicitations")) == 0 \
            or dev.flags & IFF_LOOPBACK or dev.type == ARPHRD_TUNNEL:
        return False
    lladdr = ipv6_get_lladdr(dev, IFA_F_TENTATIVE)
    if lladdr is None:
        return False
    from netstack.ipv6.ndisc import ndisc_send_rs
    ndisc_send_rs(net, dev, lladdr, ALL_ROUTERS)
    idev.rs_interval = _backoff_init(net, _jiffies_cnf(idev, "router_solicitation_interval"))
    idev.rs_probes = 1
    idev.rs_sent = True
    _mod_rs_timer(net, idev, idev.rs_interval)
    return True


def addrconf_rs_timer(net: "Net", idev: Inet6Dev) -> None:
    """``addrconf_rs_timer``: retransmit until an RA is accepted (IF_RA_RCVD), the
    interface stops taking RAs (forwarding on, accept_ra 0) or goes down, or
    ``router_solicitations`` RS have gone out (-1: forever).  Each wait is the previous
    one × 1.9…2.1, capped near ``router_solicitation_max_interval``; after the last
    counted RS the timer runs once more, ``router_solicitation_delay`` later, and stops.
    No usable link-local address: nothing is sent and the timer is not re-armed."""
    if idev.dead or not idev.ready or not ipv6_accept_ra(idev) or idev.ra_rcvd:
        return
    solicits = int(idev.cnf("router_solicitations"))
    probes = idev.rs_probes
    idev.rs_probes += 1
    if not (probes < solicits or solicits < 0):
        return  # "no IPv6 routers present"
    lladdr = ipv6_get_lladdr(idev.dev, IFA_F_TENTATIVE)
    if lladdr is None:
        return
    from netstack.ipv6.ndisc import ndisc_send_rs
    ndisc_send_rs(net, idev.dev, lladdr, ALL_ROUTERS)
    idev.rs_interval = _backoff_update(net, idev.rs_interval,
                                       _jiffies_cnf(idev, "router_solicitation_max_interval"))
    # the wait after the last probe can be shorter
    _mod_rs_timer(net, idev, _jiffies_cnf(idev, "router_solicitation_delay")
                  if idev.rs_probes == solicits else idev.rs_interval)


def ipv6_chk_acast_addr(net: "Net", dev: "NetDevice | None", addr: bytes) -> bool:
    """``ipv6_chk_acast_addr``: is ``addr`` one of our anycast addresses (on ``dev``)?"""
    devs = [dev] if dev is not None else list(net.devices.values())
    return any(d is not None and d.ip6_ptr is not None and addr in d.ip6_ptr.ac for d in devs)


def addrconf_dad_failure(net: "Net", ifa: Inet6IfAddr) -> None:
    """``addrconf_dad_failure``: IFA_F_DADFAILED, the address stays tentative and unusable."""
    if ifa.state != STATE_DAD:
        return
    ifa.state = STATE_ERRDAD
    ifa.flags |= IFA_F_DADFAILED
    if ifa.dad_timer is not None:
        ifa.dad_timer.cancel()


# ------------------------------------------------------- source selection
def ipv6_dev_get_saddr(net: "Net", dst_dev: "NetDevice | None", daddr: bytes) -> bytes | None:
    """``ipv6_dev_get_saddr`` (RFC 6724 §5) over the rules netstack models: same address,
    appropriate scope, not deprecated, outgoing interface, longest matching prefix.
    Link-local/multicast-link-local destinations only consider ``dst_dev``."""
    dscope = addr_src_scope(daddr)
    only_dev = dst_dev is not None and (dscope <= 2 or (dst_dev.ip6_ptr is not None
                                                        and dst_dev.ip6_ptr.cnf("use_oif_addrs_only")))
    devs = [dst_dev] if only_dev else ([dst_dev] if dst_dev is not None else []) + [
        d for d in net.devices.values() if d is not dst_dev]
    best: tuple | None = None
    best_addr: bytes | None = None
    for dev in devs:
        idev = dev.ip6_ptr if dev is not None else None
        if idev is None:
            continue
        for ifa in idev.addrs:
            if ifa.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) and not ifa.flags & IFA_F_OPTIMISTIC:
                continue
            a = ifa.local
            sscope = addr_src_scope(a)
            same = a == daddr
            scope_score = -sscope if sscope >= dscope else sscope - 0x100
            score = (same, scope_score, not ifa.flags & IFA_F_DEPRECATED, dev is dst_dev,
                     min(common_prefix_len(a, daddr), ifa.prefixlen))
            if best is None or score > best:
                best, best_addr = score, a
    return best_addr


# ---------------------------------------------------------------- device events
def ipv6_add_dev(net: "Net", dev: "NetDevice") -> Inet6Dev | None:
    """``ipv6_add_dev``: no inet6_dev below the minimum MTU; joins ff02::1 (and ff01::1)."""
    if dev.mtu < IPV6_MIN_MTU and not dev.flags & IFF_LOOPBACK:
        return None
    idev = dev.ip6_ptr
    if idev is None or idev.dead:
        idev = Inet6Dev(dev, mtu6=dev.mtu)
        dev.ip6_ptr = idev
        # ipv6_add_dev joins interface-local all-nodes first, then link-local all-nodes
        # (the order /proc/net/igmp6 and `ip maddr` show, newest first)
        mc_inc(idev, bytes.fromhex("ff010000000000000000000000000001"))
        mc_inc(idev, ALL_NODES)
        if idev.cnf("forwarding"):
            mc_inc(idev, ALL_ROUTERS)
    return idev


def _link_ready(dev: "NetDevice") -> bool:
    return dev.running()


def addrconf_dev_config(net: "Net", dev: "NetDevice") -> None:
    """Link became ready: multicast route, link-local address, pending DAD, prefix routes."""
    idev = ipv6_add_dev(net, dev)
    if idev is None or idev.cnf("disable_ipv6"):
        return
    if idev.ready:
        return
    idev.ready = True
    if dev.flags & IFF_UP:
        # ipv6_find_idev (addrconf_dev_config / init_loopback) → ipv6_mc_up
        from netstack.ipv6.mcast import ipv6_mc_up
        ipv6_mc_up(idev)
    if dev.flags & IFF_LOOPBACK:
        if ipv6_get_ifaddr(net, LOOPBACK, dev) is None:
            inet6_add_addr(net, dev, Inet6IfAddr(LOOPBACK, 128), find_idev=False)
    else:
        _mroute(net, dev)
        if dev.type == ARPHRD_ETHER and idev.cnf("addr_gen_mode") in (0,) and any(dev.address):
            ll = link_local_from_mac(dev.address, getattr(dev, "dev_id", 0))
            if ipv6_get_ifaddr(net, ll, dev) is None:
                try:
                    inet6_add_addr(net, dev, Inet6IfAddr(ll, 64, proto=1), find_idev=False)
                except KernelError:
                    pass  # addrconf_add_linklocal: a validator's refusal is silent
        elif idev.cnf("addr_gen_mode") != 1 and dev.type == ARPHRD_ETHER and any(dev.address):
            from netstack.errors import NotSupported
            raise NotSupported("addr_gen_mode stable_privacy/random link-local generation")
    # addrconf_dad_run: restart DAD on addresses that waited for the link
    for ifa in list(idev.addrs):
        if ifa.flags & IFA_F_TENTATIVE and ifa.state in (STATE_PREDAD, STATE_DAD):
            _prefix_route(net, ifa, True)
            ifa.state = STATE_PREDAD
            addrconf_dad_start(net, ifa)
        else:
            _prefix_route(net, ifa, True)
            if not ifa.flags & IFA_F_TENTATIVE:
                _local_route(net, ifa, True)


def addrconf_ifdown(net: "Net", dev: "NetDevice", unregister: bool) -> None:
    """``addrconf_ifdown``: routes through the device, neighbours, and (unless kept)
    addresses go away; the device is no longer ready."""
    idev = dev.ip6_ptr
    r6.fib6_flush_dev(net, dev)
    tbl = net.ipv6.nd_tbl
    if tbl is not None:
        from netstack.ipv6.ndisc import nd_ifdown
        nd_ifdown(net, dev)
    if idev is None:
        return
    keep = 0
    if not unregister:
        keep = idev.cnf("keep_addr_on_down") or cnf_all(net, "keep_addr_on_down")
    for ifa in list(idev.addrs):
        if keep > 0 and ifa.flags & IFA_F_PERMANENT and not (is_linklocal(ifa.local)
                                                             or ifa.local == LOOPBACK):
            if ifa.dad_timer is not None:
                ifa.dad_timer.cancel()
            _anycast(net, ifa, False)
            ifa.flags |= IFA_F_TENTATIVE
            ifa.state = STATE_PREDAD
            continue
        _del_ifa(net, ifa, routes=False)
    idev.ready = False
    # Step 5: ipv6_mc_down (ipv6_mc_destroy_dev on unregister) stops the MLD works
    from netstack.ipv6.mcast import ipv6_mc_down
    ipv6_mc_down(idev)
    # Step 3 of addrconf_ifdown: IF_RS_SENT/IF_RA_RCVD cleared, the RS timer stopped
    idev.rs_sent = idev.ra_rcvd = False
    if idev.rs_timer is not None:
        idev.rs_timer.cancel()
    if unregister:
        idev.dead = True
        dev.ip6_ptr = None


def addrconf_notify(event: str, dev: "NetDevice") -> None:
    """The netdevice notifier (``addrconf_notify``)."""
    net = dev.net
    if net is None or net.ipv6 is None:
        return
    sc = net.sysctl
    if event == "REGISTER":
        key = f"{CONF}.{dev.name}.mtu"
        if key in sc.values:
            sc.values[key] = dev.mtu
        if dev.flags & IFF_LOOPBACK:
            sc.values[f"{CONF}.{dev.name}.accept_dad"] = -1
        ipv6_add_dev(net, dev)
    elif event in ("UP", "CHANGE"):
        idev = dev.ip6_ptr
        if getattr(dev, "no_addrconf", False):
            # IFF_NO_ADDRCONF (a bond/team slave, set before bond_enslave opens it): no
            # link-local address, no DAD/RS from the slave itself
            return
        if _link_ready(dev):
            if event == "CHANGE" and idev is not None and idev.ready:
                # already configured: resend MLD reports, we may have roamed
                from netstack.ipv6.mcast import ipv6_mc_up
                ipv6_mc_up(idev)
            addrconf_dev_config(net, dev)
        elif idev is not None and idev.ready and event == "CHANGE":
            # carrier lost: rt6_sync_down_dev(NETDEV_CHANGE) marks nexthops linkdown
            _mark_linkdown(net, dev, True)
            idev.ready = False
            return
        if dev.ip6_ptr is not None and _link_ready(dev):
            _mark_linkdown(net, dev, False)
    elif event == "DOWN":
        addrconf_ifdown(net, dev, unregister=False)
    elif event == "UNREGISTER":
        addrconf_ifdown(net, dev, unregister=True)
    elif event == "CHANGEMTU":
        key = f"{CONF}.{dev.name}.mtu"
        if key in sc.values:
            sc.values[key] = dev.mtu
        if dev.mtu < IPV6_MIN_MTU:
            addrconf_ifdown(net, dev, unregister=True)
            return
        idev = dev.ip6_ptr
        if idev is None:
            ipv6_add_dev(net, dev)
            if _link_ready(dev):
                addrconf_dev_config(net, dev)
        else:
            idev.mtu6 = dev.mtu
        r6._invalidate(net)
    elif event == "CHANGENAME":
        pass  # sysctl directories follow the name in the core


def _mark_linkdown(net: "Net", dev: "NetDevice", down: bool) -> None:
    for t in net.ipv6.fib_tables.values():
        for d in t.by_len.values():
            for lst in d.values():
                for rt in lst:
                    for nh in rt.nexthops:
                        if nh.dev is dev:
                            nh.flags = (nh.flags | r6.RTNH_F_LINKDOWN) if down else \
                                (nh.flags & ~r6.RTNH_F_LINKDOWN)
    r6._invalidate(net)


# ---------------------------------------------------------------- sysctl hooks
def conf_written(net: "Net", name: str) -> Callable[[str, Any, Any], None]:
    """The ``addrconf_sysctl_*`` handlers: ``all`` writes of disable_ipv6/forwarding go to
    ``default`` and every device (``addrconf_disable_change``/``addrconf_fixup_forwarding``);
    per-device writes take effect on that device; ``mtu`` is bounded by the device MTU."""

    def hook(key: str, old: Any, new: Any) -> None:
        from netstack.core.sysctl import SysctlError
        sub = key[len(CONF) + 1:].rpartition(".")[0]
        devs: list[NetDevice] = []
        if sub == "all" and name in ("disable_ipv6", "forwarding"):
            net.sysctl.values[f"{CONF}.default.{name}"] = new
            for dev in net.devices.values():
                net.sysctl.values[f"{CONF}.{dev.name}.{name}"] = new
                devs.append(dev)
        elif sub not in ("all", "default"):
            dev = net.get(sub)
            if dev is not None:
                devs.append(dev)
        for dev in devs:
            idev = dev.ip6_ptr
            if name == "mtu":
                if new > dev.mtu:
                    net.sysctl.values[key] = old
                    raise SysctlError(key, errno.EINVAL)
                if idev is not None:
                    idev.mtu6 = int(new)
                r6._invalidate(net)
            elif name == "disable_ipv6" and old != new:
                if new:
                    addrconf_ifdown(net, dev, unregister=False)
                elif _link_ready(dev):
                    addrconf_dev_config(net, dev)
            elif name == "forwarding" and idev is not None and bool(old) != bool(new):
                # dev_forward_change: all-routers group and the anycast addresses
                (mc_inc if new else mc_dec)(idev, ALL_ROUTERS)
                for ifa in list(idev.addrs):
                    if not ifa.flags & IFA_F_TENTATIVE:
                        _anycast(net, ifa, bool(new))

    return hook
