"""IPv4 addresses and the control plane's per-namespace setup (net/ipv4/devinet.c and
the address half of net/ipv4/fib_frontend.c).

Why the list discipline matters: the order of a device's address list decides source
address selection (``inet_select_addr`` takes the first primary of suitable scope), which
address is primary for a subnet (the first one added; later ones of the same subnet are
*secondary* and their routes use the primary as ``src``), and what ``ip addr`` prints.
``__inet_insert_ifa`` inserts a primary after the last primary of the same or wider scope
and appends secondaries; ``__inet_del_ifa`` deletes the secondaries with their primary
unless ``promote_secondaries`` is set, in which case the first secondary is promoted and
moved to the primary's place and the subnet's routes are re-added with the new ``src``.

The routes an address brings (``fib_add_ifaddr``, checked against a 6.18 kernel with
``ip -j route show table all``): ``local ADDR`` in table local (even while the device is
down), and once the device is up ``broadcast`` for an explicit broadcast address, the
prefix route in main (``proto kernel scope link src ADDR``, metric = the address metric;
``local`` in table local on loopback) unless ``noprefixroute``/a /32 or the zero network,
and ``broadcast`` of the subnet broadcast address for prefixes shorter than /31.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netstack.errors import KernelError
from netstack.ipv4 import fib as F
from netstack.ipv4.fib_semantics import (
    RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, RTN_BROADCAST, RTN_LOCAL, RTN_UNICAST,
    RTNH_F_DEAD, RTNH_F_LINKDOWN, fib_sync_down_dev, fib_sync_up, int_to_ip, ip_to_int,
)
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
    IFA_F_STABLE_PRIVACY,
    IFA_F_TEMPORARY,
    IFA_F_TENTATIVE,
)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice


INFINITY_LIFE_TIME = 0xFFFFFFFF
INADDR_LOOPBACK = 0x7F000001

CONF = "net.ipv4.conf"


@dataclass(eq=False)
class IfAddr:
    """``struct in_ifaddr``.  ``address`` is the peer (= ``local`` unless ``peer`` was
    given); ``broadcast`` None means none was given (the kernel's 0).  ``label`` ""
    means the device name.  ``metric`` is ``ifa_rt_priority``."""

    local: bytes = b"\0\0\0\0"
    prefixlen: int = 32
    address: bytes | None = None
    broadcast: bytes | None = None
    scope: int = RT_SCOPE_UNIVERSE
    label: str = ""
    flags: int = 0
    valid_lft: int = INFINITY_LIFE_TIME
    preferred_lft: int = INFINITY_LIFE_TIME
    metric: int = 0
    proto: int = 0
    #: set on insertion
    dev: "NetDevice | None" = None
    #: creation / last-update time (virtual ns), as ifa_cstamp / ifa_tstamp
    cstamp: int = 0
    tstamp: int = 0

    @property
    def local_int(self) -> int:
        return int.from_bytes(self.local, "big")

    @property
    def address_int(self) -> int:
        return int.from_bytes(self.address if self.address is not None else self.local, "big")

    @property
    def mask(self) -> int:
        return F.MASKS[self.prefixlen]

    @property
    def broadcast_int(self) -> int:
        return ip_to_int(self.broadcast)

    @property
    def secondary(self) -> bool:
        return bool(self.flags & IFA_F_SECONDARY)

    def match(self, addr: int) -> bool:
        """``inet_ifa_match``: ``addr`` is in this address's (peer) prefix."""
        return not ((addr ^ self.address_int) & self.mask)


class InDevice:
    """``struct in_device``: a device's IPv4 state (``dev.ip_ptr``)."""

    def __init__(self, dev: "NetDevice") -> None:
        self.dev = dev
        self.ifa_list: list[IfAddr] = []
        self.dead = False

    def conf(self, name: str) -> int:
        """``IN_DEV_CONF_GET``: the device's own value."""
        dev = self.dev
        return dev.net.sysctl.values.get(f"{CONF}.{dev.name}.{name}", 0)  # type: ignore[union-attr]

    def orconf(self, name: str) -> int:
        """``IN_DEV_ORCONF``: all || dev."""
        v = self.dev.net.sysctl.values  # type: ignore[union-attr]
        return v.get(f"{CONF}.all.{name}", 0) or v.get(f"{CONF}.{self.dev.name}.{name}", 0)

    def andconf(self, name: str) -> int:
        """``IN_DEV_ANDCONF``: all && dev."""
        v = self.dev.net.sysctl.values  # type: ignore[union-attr]
        return v.get(f"{CONF}.all.{name}", 0) and v.get(f"{CONF}.{self.dev.name}.{name}", 0)

    def maxconf(self, name: str) -> int:
        """``IN_DEV_MAXCONF``: max(all, dev)."""
        v = self.dev.net.sysctl.values  # type: ignore[union-attr]
        return max(v.get(f"{CONF}.all.{name}", 0), v.get(f"{CONF}.{self.dev.name}.{name}", 0))


def in_dev_get(dev: "NetDevice") -> InDevice | None:
    """``__in_dev_get_rtnl``."""
    idev = dev.ip_ptr
    return idev if isinstance(idev, InDevice) else None


# ------------------------------------------------------------------ sysctls
def _forward_change(net: "Net", on: int) -> None:
    """``inet_forward_change``: conf.all.forwarding == net.ipv4.ip_forward; writing it
    sets every device's and the default's forwarding, and all.accept_redirects = !on."""
    vals = net.sysctl.values
    vals["net.ipv4.ip_forward"] = on
    vals[f"{CONF}.all.forwarding"] = on
    vals[f"{CONF}.default.forwarding"] = on
    if f"{CONF}.all.accept_redirects" in vals:
        vals[f"{CONF}.all.accept_redirects"] = 0 if on else 1
    for dev in net.devices.values():
        key = f"{CONF}.{dev.name}.forwarding"
        if key in vals:
            vals[key] = on


def _register_sysctls(net: "Net") -> None:
    """The knobs this module reads, with the defaults of a fresh 6.18 namespace."""
    s = net.sysctl

    def on_all_forwarding(key: str, old: Any, new: Any) -> None:
        if key == f"{CONF}.all.forwarding" and old != new:
            _forward_change(net, int(new))

    def on_ip_forward(key: str, old: Any, new: Any) -> None:
        if old != new:
            _forward_change(net, int(new))

    rc = s.register_conf
    rc(CONF, "forwarding", 0, 0, 1, on_write=on_all_forwarding)
    rc(CONF, "rp_filter", 0, 0, 2)
    rc(CONF, "accept_local", 0, 0, 1)
    rc(CONF, "src_valid_mark", 0, 0, 1)
    rc(CONF, "route_localnet", 0, 0, 1)
    rc(CONF, "promote_secondaries", 0, 0, 1)
    rc(CONF, "send_redirects", 1, 0, 1)
    rc(CONF, "shared_media", 1, 0, 1)
    rc(CONF, "bc_forwarding", 0, 0, 1)
    rc(CONF, "ignore_routes_with_linkdown", 0, 0, 1)
    rc(CONF, "secure_redirects", 1, 0, 1)
    if f"{CONF}.all.accept_redirects" not in s:
        rc(CONF, "accept_redirects", 1, 0, 1)
    s.register("net.ipv4.ip_forward", 0, 0, 1, on_write=on_ip_forward)
    s.register("net.ipv4.fib_multipath_hash_policy", 0, 0, 3)
    s.register("net.ipv4.fib_multipath_hash_fields", 0x0007, 1, 0x0FFF)
    s.register("net.ipv4.fib_multipath_use_neigh", 0, 0, 1)


def ipv4_control_init(net: "Net") -> None:
    """Attach the control-plane state to ``net.ipv4`` (created by af_inet): FIB tables,
    rules, the address hash, sysctls."""
    ipv4 = net.ipv4
    ipv4.has_custom_rules = False
    #: ``inet_addr_lst``: local address -> addresses (for inet_lookup_ifaddr).
    ipv4.inet_addr_lst = {}
    #: ``ip_error``'s inet_peer rate limiting falls back to this when af_inet has none.
    F.fib_init_net(net)
    _register_sysctls(net)
    from netstack.ipv4.route import route_sysctls_init
    route_sysctls_init(net)


# -------------------------------------------------------------- address index
def inet_lookup_ifaddr(net: "Net", addr: bytes | int) -> IfAddr | None:
    """``inet_lookup_ifaddr_rcu``: an address of this namespace equal to ``addr``."""
    lst = net.ipv4.inet_addr_lst.get(ip_to_int(addr))
    return lst[0] if lst else None


def ip_dev_find(net: "Net", addr: bytes | int) -> "NetDevice | None":
    """``__ip_dev_find``: the device owning local address ``addr``."""
    ifa = inet_lookup_ifaddr(net, addr)
    if ifa is not None:
        return ifa.dev
    res = F.fib_table_lookup(net, F.fib_new_table(net, F.RT_TABLE_LOCAL),
                             F.Flowi4(daddr=ip_to_int(addr)))
    if type(res) is not int and res.type == RTN_LOCAL:
        return res.dev
    return None


def _hash_insert(net: "Net", ifa: IfAddr) -> None:
    net.ipv4.inet_addr_lst.setdefault(ifa.local_int, []).append(ifa)


def _hash_remove(net: "Net", ifa: IfAddr) -> None:
    lst = net.ipv4.inet_addr_lst.get(ifa.local_int)
    if lst and ifa in lst:
        lst.remove(ifa)
        if not lst:
            del net.ipv4.inet_addr_lst[ifa.local_int]


def inet_ifa_byprefix(idev: InDevice, prefix: int, mask: int) -> IfAddr | None:
    """``inet_ifa_byprefix``: the primary address of a subnet."""
    for ifa in idev.ifa_list:
        if ifa.mask == mask and not ifa.secondary and ifa.match(prefix):
            return ifa
    return None


# ---------------------------------------------------------- address routes
def fib_add_ifaddr(net: "Net", ifa: IfAddr) -> None:
    """``fib_add_ifaddr``."""
    dev = ifa.dev
    assert dev is not None
    idev = in_dev_get(dev)
    assert idev is not None
    prim = ifa
    mask = ifa.mask
    addr = ifa.local_int
    prefix = ifa.address_int & mask
    if ifa.secondary:
        p = inet_ifa_byprefix(idev, prefix, mask)
        if p is None:
            return
        prim = p
    F.fib_magic(net, True, RTN_LOCAL, addr, 32, dev, prim.local)
    if not dev.is_up:
        return
    brd = ifa.broadcast_int
    if brd and brd != 0xFFFFFFFF:
        F.fib_magic(net, True, RTN_BROADCAST, brd, 32, dev, prim.local)
    if prefix and not ifa.secondary and (prefix != addr or ifa.prefixlen < 32):
        if not ifa.flags & IFA_F_NOPREFIXROUTE:
            F.fib_magic(net, True, RTN_LOCAL if dev.flags & 0x8 else RTN_UNICAST, prefix,
                        ifa.prefixlen, dev, prim.local, ifa.metric)
        if ifa.prefixlen < 31:
            F.fib_magic(net, True, RTN_BROADCAST, prefix | (~mask & 0xFFFFFFFF), 32, dev,
                        prim.local)


def fib_sync_down_addr(net: "Net", dev: "NetDevice", local: int) -> int:
    """``fib_sync_down_addr``: main-table routes whose ``src`` was this address die."""
    n = 0
    main = F.fib_get_table(net, F.RT_TABLE_MAIN)
    if main is None:
        return 0
    lb = int_to_ip(local)
    for fi in main.routes():
        if fi.prefsrc == lb:
            fi.flags |= RTNH_F_DEAD
            n += 1
    return n


def fib_del_ifaddr(net: "Net", ifa: IfAddr, iprim: IfAddr | None) -> None:
    """``fib_del_ifaddr``: remove the routes of ``ifa`` that no remaining address still
    needs (the LOCAL_OK/BRD_OK/BRD0_OK/BRD1_OK scan of the kernel)."""
    dev = ifa.dev
    assert dev is not None
    idev = in_dev_get(dev)
    assert idev is not None
    mask = ifa.mask
    brd = ifa.address_int | (~mask & 0xFFFFFFFF)
    any_ = ifa.address_int & mask
    LOCAL_OK, BRD_OK, BRD0_OK, BRD1_OK = 1, 2, 4, 8
    ok = 0
    subnet = False
    gone = True
    same_prefsrc = False
    prim = ifa
    prim1: IfAddr | None = None
    if ifa.secondary:
        p = inet_ifa_byprefix(idev, any_, mask)
        if p is None:
            return
        if iprim is not None and iprim is not p:
            return
        prim = p
    elif any_ and (any_ != ifa.local_int or ifa.prefixlen < 32):
        if not ifa.flags & IFA_F_NOPREFIXROUTE:
            F.fib_magic(net, False, RTN_LOCAL if dev.flags & 0x8 else RTN_UNICAST, any_,
                        ifa.prefixlen, dev, prim.local, 0)
        subnet = True
    if not idev.dead:
        for ifa1 in idev.ifa_list:
            if ifa1 is ifa:
                gone = False
                continue
            if iprim is not None and ifa1.mask == iprim.mask and iprim.match(ifa1.address_int):
                continue
            if ifa1.secondary:
                if ifa1.mask == prim.mask and prim.match(ifa1.address_int):
                    prim1 = prim
                else:
                    if not same_prefsrc:
                        continue
                    if prim1 is None or ifa1.mask != prim1.mask or \
                            not prim1.match(ifa1.address_int):
                        prim1 = inet_ifa_byprefix(idev, ifa1.address_int, ifa1.mask)
                    if prim1 is None:
                        continue
                    if prim1.local != prim.local:
                        continue
            else:
                if prim.local != ifa1.local:
                    continue
                prim1 = ifa1
                if prim is not prim1:
                    same_prefsrc = True
            if ifa.local == ifa1.local:
                ok |= LOCAL_OK
            if ifa.broadcast_int == ifa1.broadcast_int:
                ok |= BRD_OK
            if brd == ifa1.broadcast_int:
                ok |= BRD1_OK
            if any_ == ifa1.broadcast_int:
                ok |= BRD0_OK
            if prim1 is ifa1 and ifa1.prefixlen < 31:
                brd1 = ifa1.address_int | (~ifa1.mask & 0xFFFFFFFF)
                any1 = ifa1.address_int & ifa1.mask
                if any1:
                    if ifa.broadcast_int in (brd1, any1):
                        ok |= BRD_OK
                    if brd in (brd1, any1):
                        ok |= BRD1_OK
                    if any_ in (brd1, any1):
                        ok |= BRD0_OK
    if not ok & BRD_OK:
        F.fib_magic(net, False, RTN_BROADCAST, ifa.broadcast_int, 32, dev, prim.local)
    if subnet and ifa.prefixlen < 31:
        if not ok & BRD1_OK:
            F.fib_magic(net, False, RTN_BROADCAST, brd, 32, dev, prim.local)
        if not ok & BRD0_OK:
            F.fib_magic(net, False, RTN_BROADCAST, any_, 32, dev, prim.local)
    if not ok & LOCAL_OK:
        F.fib_magic(net, False, RTN_LOCAL, ifa.local_int, 32, dev, prim.local)
        if gone and F.inet_addr_type_table(net, ifa.local, F.RT_TABLE_LOCAL, dev) != RTN_LOCAL:
            if fib_sync_down_addr(net, dev, ifa.local_int):
                F.fib_flush(net)


def _inetaddr_up(net: "Net", ifa: IfAddr) -> None:
    """inetaddr_chain NETDEV_UP → ``fib_inetaddr_event``, then the drivers' notifiers
    (``inetaddr_chain`` on the World: ipvlan learns its slaves' addresses)."""
    fib_add_ifaddr(net, ifa)
    assert ifa.dev is not None
    fib_sync_up(F.fib_all_routes(net), ifa.dev, RTNH_F_DEAD)
    for fn in net.world.inetaddr_chain:
        fn("UP", ifa.dev, ifa.address)


def _inetaddr_down(net: "Net", ifa: IfAddr) -> None:
    """inetaddr_chain NETDEV_DOWN → ``fib_inetaddr_event``: routes go; when the device
    has no address left, its paths are disabled (``fib_disable_ip``)."""
    fib_del_ifaddr(net, ifa, None)
    dev = ifa.dev
    assert dev is not None
    for fn in net.world.inetaddr_chain:
        fn("DOWN", dev, ifa.address)
    idev = in_dev_get(dev)
    if idev is not None and not idev.ifa_list:
        # fib_disable_ip(dev, NETDEV_DOWN, force=true): every path through dev dies
        if fib_sync_down_dev(F.fib_all_routes(net), dev, "DOWN", True):
            F.fib_flush(net)


# ----------------------------------------------------------- add / delete
def inet_add_addr(net: "Net", dev: "NetDevice", ifa: IfAddr, *, replace: bool = False,
                  create: bool = True) -> IfAddr:
    """``inet_rtm_newaddr``/``__inet_insert_ifa``.  ``ip addr add`` = create (EXCL);
    ``replace`` updates metric and lifetimes of an existing address.  Returns the stored
    address (``ifa`` itself when inserted)."""
    idev = in_dev_get(dev)
    if idev is None or dev.net is not net:
        raise KernelError(errno.ENODEV)
    if not 0 <= ifa.prefixlen <= 32:
        raise KernelError(errno.EINVAL)
    if ifa.valid_lft == 0 or ifa.preferred_lft > ifa.valid_lft:
        raise KernelError(errno.EINVAL)
    if ifa.address is None:
        ifa.address = ifa.local
    if not ifa.label:
        ifa.label = dev.name
    ifa.flags &= ~IFA_F_SECONDARY
    ifa.dev = dev
    mask = ifa.mask
    # find_matching_ifa
    for ifa1 in idev.ifa_list:
        if ifa1.mask == mask and ifa.match(ifa1.address_int) and ifa1.local == ifa.local:
            if not replace:
                raise KernelError(errno.EEXIST, "ipv4: Address already assigned")
            if ifa1.metric != ifa.metric:
                _modify_prefix_metric(net, ifa1, ifa.metric)
                ifa1.metric = ifa.metric
            ifa1.proto = ifa.proto
            ifa1.valid_lft = ifa.valid_lft
            ifa1.preferred_lft = ifa.preferred_lft
            ifa1.tstamp = net.world.clock.now
            _lifetime_flags(ifa1)
            _schedule_check_lifetime(net, 0)
            return ifa1
    if not create:
        raise KernelError(errno.ENOENT)
    if ifa.flags & IFA_F_MCAUTOJOIN:
        # inet_rtm_newaddr: ip_mc_autojoin_config(net, true, ifa) before the insert; a
        # failure refuses the address (netstack/ipv4/igmp.py)
        autojoin = getattr(net.ipv4, "mc_autojoin", None)
        if autojoin is not None:
            autojoin(net, True, dev, ifa.address)
    if not ifa.local_int:
        return ifa
    last_primary = 0
    for i, ifa1 in enumerate(idev.ifa_list):
        if not ifa1.secondary and ifa.scope <= ifa1.scope:
            last_primary = i + 1
        if ifa1.mask == mask and ifa.match(ifa1.address_int):
            if ifa1.local == ifa.local:
                raise KernelError(errno.EEXIST)
            if ifa1.scope != ifa.scope:
                raise KernelError(errno.EINVAL, "ipv4: Invalid scope value")
            ifa.flags |= IFA_F_SECONDARY
    # inetaddr_validator_chain (NETDEV_UP, ivi_addr = ifa_address): a driver may refuse
    # the address before anything is committed (ipvlan: EADDRINUSE)
    for validate in net.world.inetaddr_validator_chain:
        validate(dev, ifa.address)
    ifa.cstamp = ifa.tstamp = net.world.clock.now
    _lifetime_flags(ifa)
    if ifa.secondary:
        idev.ifa_list.append(ifa)
    else:
        idev.ifa_list.insert(last_primary, ifa)
    _hash_insert(net, ifa)
    _inetaddr_up(net, ifa)
    _schedule_check_lifetime(net, 0)
    return ifa


def _lifetime_flags(ifa: IfAddr) -> None:
    """``set_ifa_lifetime``: PERMANENT when valid is infinite, DEPRECATED when preferred
    is zero."""
    ifa.flags &= ~(IFA_F_PERMANENT | IFA_F_DEPRECATED)
    if ifa.valid_lft == INFINITY_LIFE_TIME:
        ifa.flags |= IFA_F_PERMANENT
    if ifa.preferred_lft == 0:
        ifa.flags |= IFA_F_DEPRECATED


# ------------------------------------------------------------ lifetimes
HZ = 1000
ADDR_CHECK_FREQUENCY = 120 * HZ
ADDRCONF_TIMER_FUZZ_MINUS = HZ // 50
ADDRCONF_TIMER_FUZZ = HZ // 4
ADDRCONF_TIMER_FUZZ_MAX = HZ


def _round_jiffies_up(j: int) -> int:
    """``round_jiffies_up`` on CPU 0: the next whole second (always strictly later)."""
    return j - j % HZ + HZ


def _schedule_check_lifetime(net: "Net", delay_j: int) -> None:
    """``queue_delayed_work(check_lifetime_work, delay)`` on the virtual clock."""
    ipv4 = net.ipv4
    t = getattr(ipv4, "lifetime_timer", None)
    if t is None:
        t = ipv4.lifetime_timer = net.world.clock.timer(_check_lifetime, net)
    t.mod_in(delay_j * 1_000_000)


def _check_lifetime(net: "Net") -> None:
    """``check_lifetime``: delete addresses whose valid lifetime ran out, deprecate those
    past their preferred lifetime, and re-arm for the next expiry (whole seconds, at
    least 1 s, at most ADDR_CHECK_FREQUENCY away), as devinet.c does."""
    if net.ipv4 is None:
        return
    now = net.world.clock.jiffies
    nxt = _round_jiffies_up(now + ADDR_CHECK_FREQUENCY)
    for lst in list(net.ipv4.inet_addr_lst.values()):
        for ifa in list(lst):
            if ifa.flags & IFA_F_PERMANENT:
                continue
            tstamp = ifa.tstamp // 1_000_000
            age = (now - tstamp + ADDRCONF_TIMER_FUZZ_MINUS) // HZ
            if ifa.valid_lft != INFINITY_LIFE_TIME and age >= ifa.valid_lft:
                idev = in_dev_get(ifa.dev) if ifa.dev is not None else None
                if idev is not None and ifa in idev.ifa_list:
                    _del_ifa(net, idev, ifa)
            elif ifa.preferred_lft == INFINITY_LIFE_TIME:
                continue
            elif age >= ifa.preferred_lft:
                nxt = min(nxt, tstamp + ifa.valid_lft * HZ)
                ifa.flags |= IFA_F_DEPRECATED
            else:
                nxt = min(nxt, tstamp + ifa.preferred_lft * HZ)
    if not any(not x.flags & IFA_F_PERMANENT for lst in net.ipv4.inet_addr_lst.values()
               for x in lst):
        # the kernel's worker keeps polling every 120 s; with nothing that can expire
        # that is unobservable, and stopping keeps dead namespaces off the clock
        return
    next_sec = _round_jiffies_up(nxt)
    sched = next_sec if next_sec < nxt + ADDRCONF_TIMER_FUZZ else nxt
    now = net.world.clock.jiffies
    sched = max(sched, now + ADDRCONF_TIMER_FUZZ_MAX)
    _schedule_check_lifetime(net, sched - now)


def _modify_prefix_metric(net: "Net", ifa: IfAddr, new_metric: int) -> None:
    """``fib_modify_prefix_metric``: re-add the prefix route with the new metric."""
    dev = ifa.dev
    assert dev is not None
    prefix = ifa.address_int & ifa.mask
    if (ifa.secondary or not dev.is_up or ifa.flags & IFA_F_NOPREFIXROUTE or not prefix
            or (prefix == ifa.local_int and ifa.prefixlen == 32)):
        return
    rtype = RTN_LOCAL if dev.flags & 0x8 else RTN_UNICAST
    F.fib_magic(net, True, rtype, prefix, ifa.prefixlen, dev, ifa.local, new_metric)
    F.fib_magic(net, False, rtype, prefix, ifa.prefixlen, dev, ifa.local, ifa.metric)


def _del_ifa(net: "Net", idev: InDevice, ifa1: IfAddr) -> None:
    """``__inet_del_ifa``: delete, with secondaries removed or promoted."""
    lst = idev.ifa_list
    i1 = lst.index(ifa1)
    promote: IfAddr | None = None
    prev_prom = False
    last_prim = i1
    do_promote = in_dev_promote(idev)
    if not idev.dead and not ifa1.secondary:
        j = i1 + 1
        while j < len(lst):
            ifa = lst[j]
            if not ifa.secondary and ifa1.scope <= ifa.scope:
                last_prim = j + 1
            if not ifa.secondary or ifa1.mask != ifa.mask or not ifa1.match(ifa.address_int):
                prev_prom = True
                j += 1
                continue
            if not do_promote:
                _hash_remove(net, ifa)
                del lst[j]
                _inetaddr_down(net, ifa)
            else:
                promote = ifa
                break
        if promote is not None:
            k = lst.index(promote)
            for ifa in lst[k:]:
                if ifa1.mask == ifa.mask and ifa1.match(ifa.address_int):
                    fib_del_ifaddr(net, ifa, ifa1)
    lst.remove(ifa1)
    _hash_remove(net, ifa1)
    _inetaddr_down(net, ifa1)
    if promote is not None:
        k = lst.index(promote)
        next_sec = lst[k + 1:]
        if prev_prom:
            del lst[k]
            pos = i1 if last_prim == i1 else last_prim - 1
            lst.insert(pos, promote)
        promote.flags &= ~IFA_F_SECONDARY
        _inetaddr_up(net, promote)
        for ifa in next_sec:
            if ifa1.mask != ifa.mask or not ifa1.match(ifa.address_int):
                continue
            fib_add_ifaddr(net, ifa)


def in_dev_promote(idev: InDevice) -> bool:
    return bool(idev.orconf("promote_secondaries"))


def inet_del_addr(net: "Net", dev: "NetDevice", local: bytes | int | None,
                  prefixlen: int | None = None, *, peer: bytes | None = None,
                  label: str | None = None) -> IfAddr:
    """``inet_rtm_deladdr``: the first address matching ``local`` (and, when
    ``prefixlen`` is given, the prefix of ``peer``/``local``).  EADDRNOTAVAIL
    "ipv4: Address not found" otherwise."""
    idev = in_dev_get(dev)
    if idev is None or dev.net is not net:
        raise KernelError(errno.ENODEV)
    loc = None if local is None else ip_to_int(local)
    for ifa in idev.ifa_list:
        if loc is not None and ifa.local_int != loc:
            continue
        if label is not None and ifa.label != label:
            continue
        if prefixlen is not None:
            want = ip_to_int(peer) if peer is not None else loc
            if ifa.prefixlen != prefixlen or want is None or not ifa.match(want):
                continue
        autojoin = getattr(net.ipv4, "mc_autojoin", None)
        if autojoin is not None and ifa.address[0] & 0xF0 == 0xE0:
            autojoin(net, False, dev, ifa.address)  # inet_rtm_deladdr: any multicast address
        _del_ifa(net, idev, ifa)
        return ifa
    raise KernelError(errno.EADDRNOTAVAIL, "ipv4: Address not found")


def inet_addrs(dev: "NetDevice") -> list[IfAddr]:
    """The device's addresses in list order (what ``ip addr`` prints)."""
    idev = in_dev_get(dev)
    return list(idev.ifa_list) if idev is not None else []


def inet_flush_addrs(net: "Net", dev: "NetDevice") -> None:
    """``ip addr flush dev DEV``: iproute2 deletes the addresses one by one in list
    order (secondaries first die with their primary unless promoted)."""
    idev = in_dev_get(dev)
    if idev is None:
        return
    while idev.ifa_list:
        _del_ifa(net, idev, idev.ifa_list[0])


# ----------------------------------------------------------- address choice
def _localnet_scope(idev: InDevice) -> int:
    return RT_SCOPE_LINK if idev.orconf("route_localnet") else RT_SCOPE_HOST


def _in_dev_select_addr(idev: InDevice, scope: int) -> int:
    """``in_dev_select_addr``: first primary of suitable scope that is not link-scope."""
    lns = _localnet_scope(idev)
    for ifa in idev.ifa_list:
        if min(ifa.scope, lns) > scope:
            continue
        if not ifa.secondary and ifa.scope != RT_SCOPE_LINK:
            return ifa.local_int
    return 0


def inet_select_addr_int(dev: "NetDevice", dst: int, scope: int) -> int:
    """``inet_select_addr`` on ints: the device's first primary address of scope no
    narrower than ``scope`` (preferring one whose subnet holds ``dst``), else any
    suitable address of another device, loopback first."""
    idev = in_dev_get(dev)
    addr = 0
    if idev is not None:
        lns = _localnet_scope(idev)
        for ifa in idev.ifa_list:
            if ifa.secondary:
                continue
            if min(ifa.scope, lns) > scope:
                continue
            if not dst or ifa.match(dst):
                return ifa.local_int
            if not addr:
                addr = ifa.local_int
        if addr:
            return addr
    net = dev.net
    if net is None:
        return 0
    for d in net.devices.values():
        i2 = in_dev_get(d)
        if i2 is None:
            continue
        addr = _in_dev_select_addr(i2, scope)
        if addr:
            return addr
    return 0


def inet_select_addr(net: "Net", dev: "NetDevice", dst: bytes | int | None,
                     scope: int) -> bytes:
    """Contract API of ``inet_select_addr``: 4 bytes (0.0.0.0 when none)."""
    return int_to_ip(inet_select_addr_int(dev, ip_to_int(dst), scope))


def _confirm_addr_indev(idev: InDevice, dst: int, local: int, scope: int) -> int:
    lns = _localnet_scope(idev)
    addr = 0
    same = False
    for ifa in idev.ifa_list:
        min_scope = min(ifa.scope, lns)
        if not addr and (local == ifa.local_int or not local) and min_scope <= scope:
            addr = ifa.local_int
            if same:
                break
        if not same:
            same = (not local or ifa.match(local)) and (not dst or ifa.match(dst))
            if same and addr:
                if local or not dst:
                    break
                if ifa.match(addr):
                    break
                if min_scope <= scope:
                    addr = ifa.local_int
                    break
                same = False
    return addr if same else 0


def inet_confirm_addr(net: "Net", dev: "NetDevice | None", dst: bytes | int | None,
                      local: bytes | int | None, scope: int) -> bytes:
    """``inet_confirm_addr``: is there an address ``local`` (or any, if 0) of scope
    <= ``scope`` in the same subnet as ``dst``?  Returns it, or 0.0.0.0."""
    d = ip_to_int(dst)
    lo = ip_to_int(local)
    if dev is not None:
        idev = in_dev_get(dev)
        return int_to_ip(_confirm_addr_indev(idev, d, lo, scope) if idev else 0)
    for dv in net.devices.values():
        idev = in_dev_get(dv)
        if idev is not None:
            a = _confirm_addr_indev(idev, d, lo, scope)
            if a:
                return int_to_ip(a)
    return b"\0\0\0\0"


def inet_addr_type(net: "Net", addr: bytes | int) -> int:
    """``inet_addr_type`` (RTN_* per the local table)."""
    return F.inet_addr_type(net, addr)


def inet_addr_onlink(idev: InDevice, a: int, b: int) -> bool:
    """``inet_addr_onlink``: ``a`` (and ``b`` if non-zero) are on one of the device's
    subnets."""
    for ifa in idev.ifa_list:
        if ifa.match(a):
            if not b or ifa.match(b):
                return True
    return False


# ----------------------------------------------------------- netdev events
def _inetdev_destroy(net: "Net", dev: "NetDevice") -> None:
    """``inetdev_destroy``: all addresses go (no promotion), then the in_device."""
    idev = in_dev_get(dev)
    if idev is None:
        return
    idev.dead = True
    while idev.ifa_list:
        _del_ifa(net, idev, idev.ifa_list[0])
    dev.ip_ptr = None


def _changename(dev: "NetDevice") -> None:
    """``inetdev_changename``: labels follow the device name (aliases keep suffixes)."""
    idev = in_dev_get(dev)
    if idev is None:
        return
    for named, ifa in enumerate(idev.ifa_list):
        old = ifa.label
        if named == 0:
            ifa.label = dev.name
            continue
        dot = old[old.index(":"):] if ":" in old else f":{named}"
        if len(dot) + len(dev.name) < 16:
            ifa.label = dev.name + dot
        else:
            ifa.label = dev.name[:16 - len(dot) - 1] + dot


def ipv4_control_netdev_event(event: str, dev: "NetDevice") -> None:
    """The control plane's netdevice notifier: ``inetdev_event`` (devinet.c), then
    ``fib_netdev_event`` (fib_frontend.c), then ``fib_rules_event``, in the kernel's
    registration order."""
    net = dev.net
    if net is None or net.ipv4 is None or not hasattr(net.ipv4, "fib"):
        return
    from netstack.core.fib_rules import fib_rules_netdev_event
    # ---- inetdev_event
    if event == "REGISTER":
        if dev.ip_ptr is None:
            dev.ip_ptr = InDevice(dev)
        # conf.default.forwarding is copied at registration only: its handler
        # (devinet_sysctl_forward) never propagates to existing devices, unlike the other
        # conf knobs (devinet_copy_dflt_conf).  Pinning the value keeps it that way.
        key = f"{CONF}.{dev.name}.forwarding"
        if key in net.sysctl:
            net.sysctl.set(key, net.sysctl.get(key))
    elif event == "UP":
        idev = in_dev_get(dev)
        if idev is not None and dev.mtu >= 68 and dev.flags & 0x8:
            lo = IfAddr(local=int_to_ip(INADDR_LOOPBACK), prefixlen=8, scope=RT_SCOPE_HOST,
                        label=dev.name)
            try:
                inet_add_addr(net, dev, lo)
            except KernelError:
                pass
    elif event == "CHANGENAME":
        _changename(dev)
    elif event == "CHANGEMTU" and dev.mtu < 68 or event == "UNREGISTER":
        _inetdev_destroy(net, dev)
    # ---- fib_netdev_event
    routes = F.fib_all_routes
    if event == "UNREGISTER":
        if fib_sync_down_dev(routes(net), dev, "UNREGISTER", True):
            F.fib_flush(net)
    elif in_dev_get(dev) is not None:
        if event == "UP":
            idev = in_dev_get(dev)
            assert idev is not None
            for ifa in list(idev.ifa_list):
                fib_add_ifaddr(net, ifa)
            fib_sync_up(routes(net), dev, RTNH_F_DEAD)
        elif event == "DOWN":
            if fib_sync_down_dev(routes(net), dev, "DOWN", False):
                F.fib_flush(net)
        elif event == "CHANGE":
            if dev.running():
                fib_sync_up(routes(net), dev, RTNH_F_LINKDOWN)
            else:
                fib_sync_down_dev(routes(net), dev, "CHANGE", False)
    # ---- fib_rules_event
    if event in ("REGISTER", "UNREGISTER", "CHANGENAME"):
        fib_rules_netdev_event(net, net.ipv4.rules, event, dev)
    if event in ("UP", "DOWN"):
        _linkwatch_peer(dev)


def _linkwatch_peer(dev: "NetDevice") -> None:
    """The carrier change a device's UP/DOWN causes on its peer (veth_open/veth_close
    call ``netif_carrier_on/off(peer)``; linkwatch then sends NETDEV_CHANGE *after* the
    state changed).  netstack's veth notifies the peer from ``ndo_stop`` while the
    closing end still has IFF_UP, so the peer's carrier is re-evaluated here, once the
    state is final.  Idempotent with a correctly ordered CHANGE."""
    peer = getattr(dev, "peer", None)
    pnet = getattr(peer, "net", None)
    if peer is None or pnet is None or pnet.ipv4 is None or not hasattr(pnet.ipv4, "fib"):
        return
    if not peer.is_up or in_dev_get(peer) is None:
        return
    if peer.running():
        fib_sync_up(F.fib_all_routes(pnet), peer, RTNH_F_LINKDOWN)
    else:
        fib_sync_down_dev(F.fib_all_routes(pnet), peer, "CHANGE", False)


__all__ = [
    "IfAddr", "InDevice", "inet_add_addr", "inet_del_addr", "inet_addrs", "inet_flush_addrs",
    "inet_select_addr", "inet_addr_type", "inet_confirm_addr", "ipv4_control_init",
    "ipv4_control_netdev_event", "IFA_F_SECONDARY", "IFA_F_NOPREFIXROUTE",
    "IFA_F_PERMANENT", "RT_SCOPE_HOST", "RTNH_F_LINKDOWN",
]
