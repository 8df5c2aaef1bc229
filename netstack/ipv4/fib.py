"""The IPv4 FIB: tables, longest-prefix match, insert/delete semantics
(net/ipv4/fib_trie.c, fib_frontend.c, the validation half of fib_semantics.c).

Data structure: the kernel's LC-trie is replaced by one dict per prefix length
(``plens[len][masked key] -> [routes]``) probed from the longest present length down.  The
observable semantics are the trie's:

* at one (key, length, table) the routes form the kernel's alias list, ordered by TOS
  descending, then priority (metric) ascending, then insertion order (``fib_find_alias``);
* a lookup walks lengths longest first and, at each, the aliases in list order, skipping
  TOS mismatches, routes of narrower scope than asked, dead routes and paths that do not
  match ``oif`` — exactly the loop of ``fib_table_lookup`` including its backtracking to
  shorter prefixes; an error-type route (unreachable, prohibit, blackhole, throw) that
  matches ends the lookup with its error;
* while no custom rule exists, ``local`` and ``main`` form one trie (``fib_trie_unmerge``
  has not run): a lookup sees both, longest prefix first, ``local`` before ``main`` at equal
  length.  Our tables stay physically separate and the merged view is built at lookup.

Dump order (``ip route show table all``) follows the kernel: tables in the order of the
FIB table hash (id & 255, newest first within a bucket), routes by key, then longest
prefix first, then alias-list order.

Errors are :class:`~netstack.errors.KernelError` with the kernel's errno and extack text.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.errors import KernelError, NotSupported
from netstack.ipv4.fib_semantics import (
    FIB_ERR, FIB_PROPS, RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_NOWHERE, RT_SCOPE_UNIVERSE,
    RT_TABLE_DEFAULT, RT_TABLE_LOCAL, RT_TABLE_MAIN, RTN_ANYCAST, RTN_BROADCAST, RTN_LOCAL,
    RTN_MAX, RTN_MULTICAST, RTN_NAT, RTN_UNICAST, RTN_XRESOLVE, RTNH_F_DEAD,
    RTNH_F_LINKDOWN, RTNH_F_ONLINK, RTNH_F_PERVASIVE, RTPROT_KERNEL, FibNexthop, FibRoute,
    fib_rebalance, int_to_ip, ip_ignore_linkdown, ip_to_int,
)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice

#: ``MASKS[len]``: the netmask of a prefix length as an int.
MASKS: tuple[int, ...] = tuple(((0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF) for n in range(33))

# flowi4 flags / fib lookup flags
FLOWI_FLAG_ANYSRC = 0x01
FLOWI_FLAG_KNOWN_NH = 0x02
FLOWI_FLAG_SKIP_NH_OIF = 0x04
FIB_LOOKUP_IGNORE_LINKSTATE = 0x02

LOOPBACK_IFINDEX = 1
#: Legacy TOS bits routes are matched on (INET_DSCP_LEGACY_TOS_MASK).
TOS_MATCH_MASK = 0x1C


class Flowi4:
    """``struct flowi4``: what a route lookup is keyed on.  Addresses may be given as
    4 bytes or ints; they are stored as ints.  ``tos`` is the DS field (ECN bits ignored)."""

    __slots__ = ("daddr", "saddr", "tos", "oif", "iif", "mark", "proto", "sport", "dport",
                 "flags", "scope", "uid")

    def __init__(self, daddr: bytes | int = 0, saddr: bytes | int = 0, tos: int = 0,
                 oif: int = 0, iif: int = 0, mark: int = 0, proto: int = 0, sport: int = 0,
                 dport: int = 0, flags: int = 0, scope: int = RT_SCOPE_UNIVERSE,
                 uid: int = 0) -> None:
        self.daddr = daddr if type(daddr) is int else int.from_bytes(daddr, "big")
        self.saddr = saddr if type(saddr) is int else int.from_bytes(saddr, "big")
        self.tos = tos
        self.oif = oif
        self.iif = iif
        self.mark = mark
        self.proto = proto
        self.sport = sport
        self.dport = dport
        self.flags = flags
        self.scope = scope
        self.uid = uid

    def __repr__(self) -> str:  # pragma: no cover
        return (f"<Flowi4 {int_to_ip(self.daddr).hex()} <- {int_to_ip(self.saddr).hex()} "
                f"tos {self.tos} oif {self.oif} iif {self.iif} mark {self.mark}>")


class FibResult:
    """``struct fib_result``: the matched route and the selected path."""

    __slots__ = ("prefix", "prefixlen", "nh_sel", "type", "scope", "fi", "table", "rule")

    def __init__(self, prefix: int, prefixlen: int, nh_sel: int, type_: int, scope: int,
                 fi: FibRoute, table: int) -> None:
        self.prefix = prefix
        self.prefixlen = prefixlen
        self.nh_sel = nh_sel
        self.type = type_
        self.scope = scope
        self.fi = fi
        self.table = table
        self.rule: Any = None

    @property
    def nh(self) -> FibNexthop | None:
        nhs = self.fi.nexthops
        return nhs[self.nh_sel] if nhs else None

    @property
    def dev(self) -> "NetDevice | None":
        """``FIB_RES_DEV``."""
        nh = self.nh
        return nh.dev if nh is not None else None


class FibTable:
    """One routing table: per-prefix-length dicts of alias lists."""

    __slots__ = ("id", "plens", "lens", "version", "num_default")

    def __init__(self, tb_id: int) -> None:
        self.id = tb_id
        self.plens: list[dict[int, list[FibRoute]]] = [{} for _ in range(33)]
        #: prefix lengths present, longest first
        self.lens: list[int] = []
        self.version = 0
        self.num_default = 0

    def _changed(self) -> None:
        self.version += 1
        self.lens = [n for n in range(32, -1, -1) if self.plens[n]]

    def routes(self) -> list[FibRoute]:
        """All routes in dump order (key ascending, longest prefix first per key)."""
        items: list[tuple[int, int, int, FibRoute]] = []
        for plen in range(33):
            for key, lst in self.plens[plen].items():
                for i, fa in enumerate(lst):
                    items.append((key, 32 - plen, i, fa))
        items.sort(key=lambda t: (t[0], t[1], t[2]))
        return [t[3] for t in items]

    def __len__(self) -> int:
        return sum(len(lst) for d in self.plens for lst in d.values())


# ---------------------------------------------------------------------- state
class FibState:
    """The FIB part of ``struct netns_ipv4``: tables by id, merged-view cache, flags."""

    def __init__(self) -> None:
        #: tables in creation order (for the dump's hash-bucket ordering)
        self.tables: dict[int, FibTable] = {}
        self.has_custom_local_routes = False
        self._merged_key: tuple[int, int] = (-1, -1)
        self._merged_lens: list[int] = []


def fib_state(net: "Net") -> FibState:
    return net.ipv4.fib


def fib_get_table(net: "Net", tb_id: int) -> FibTable | None:
    """``fib_get_table`` (id 0 means main)."""
    return net.ipv4.fib_tables.get(tb_id or RT_TABLE_MAIN)


def fib_new_table(net: "Net", tb_id: int) -> FibTable:
    """``fib_new_table``: get or create (id 0 means main)."""
    tb_id = tb_id or RT_TABLE_MAIN
    tables = net.ipv4.fib_tables
    tb = tables.get(tb_id)
    if tb is None:
        tb = tables[tb_id] = FibTable(tb_id)
    return tb


def fib_empty_table(net: "Net") -> FibTable:
    """``fib_empty_table``: the lowest unused table id (for a rule without a table)."""
    for tb_id in range(1, 2 ** 32):
        if tb_id not in net.ipv4.fib_tables:
            return fib_new_table(net, tb_id)
    raise KernelError(errno.ENOBUFS)  # pragma: no cover - 4G tables


# --------------------------------------------------------------------- lookup
def _merged_lens(net: "Net", local: FibTable, main: FibTable) -> list[int]:
    st: FibState = net.ipv4.fib
    key = (local.version, main.version)
    if st._merged_key != key:
        st._merged_lens = sorted(set(local.lens) | set(main.lens), reverse=True)
        st._merged_key = key
    return st._merged_lens


def fib_table_lookup_multi(tables: tuple[FibTable, ...], lens: list[int], fl: Flowi4,
                           flags: int = 0) -> FibResult | int:
    """``fib_table_lookup`` over one trie made of ``tables`` (one table, or local+main
    merged).  Returns a FibResult, or a negative errno: the route type's error
    (-EHOSTUNREACH, -EACCES, -EINVAL, -EAGAIN for throw) or -EAGAIN when nothing matches."""
    daddr = fl.daddr
    ftos = fl.tos & TOS_MATCH_MASK
    fscope = fl.scope
    oif = 0 if fl.flags & FLOWI_FLAG_SKIP_NH_OIF else fl.oif
    for plen in lens:
        key = daddr & MASKS[plen]
        for tb in tables:
            lst = tb.plens[plen].get(key)
            if lst is None:
                continue
            for fa in lst:
                if fa.tos and fa.tos != ftos:
                    continue
                if fa.scope < fscope:
                    continue
                err = FIB_ERR[fa.type]
                if err:
                    return err
                if fa.flags & RTNH_F_DEAD:
                    continue
                for i, nh in enumerate(fa.nexthops):
                    nf = nh.flags
                    if nf & RTNH_F_DEAD:
                        continue
                    if (nf & RTNH_F_LINKDOWN and not flags & FIB_LOOKUP_IGNORE_LINKSTATE
                            and ip_ignore_linkdown(nh.dev)):
                        continue
                    if oif and nh.dev is not None and oif != nh.dev.ifindex:
                        continue
                    if oif and nh.dev is None:
                        continue
                    return FibResult(key, plen, i, fa.type, fa.scope, fa, tb.id)
    return -errno.EAGAIN


def fib_table_lookup(net: "Net", tb: FibTable, fl: Flowi4, flags: int = 0) -> FibResult | int:
    """``fib_table_lookup`` on one table (the local/main merge applies while there are no
    custom rules: looking up either sees both, as in the kernel's shared trie)."""
    ipv4 = net.ipv4
    if not ipv4.has_custom_rules and tb.id in (RT_TABLE_LOCAL, RT_TABLE_MAIN):
        tables = ipv4.fib_tables
        local = tables.get(RT_TABLE_LOCAL)
        main = tables.get(RT_TABLE_MAIN)
        if local is not None and main is not None:
            return fib_table_lookup_multi((local, main), _merged_lens(net, local, main), fl,
                                          flags)
    return fib_table_lookup_multi((tb,), tb.lens, fl, flags)


def fib_lookup_errno(net: "Net", fl: Flowi4, flags: int = 0) -> FibResult | int:
    """``fib_lookup`` (include/net/ip_fib.h): without custom rules, main (merged with
    local) then default; with rules, the policy engine.  Negative errno on failure, with
    -EAGAIN/-ESRCH turned into -ENETUNREACH."""
    ipv4 = net.ipv4
    if ipv4.has_custom_rules:
        from netstack.ipv4.fib_rules import fib4_rules_lookup
        return fib4_rules_lookup(net, fl, flags)
    tables = ipv4.fib_tables
    main = tables.get(RT_TABLE_MAIN)
    err: FibResult | int = -errno.ENETUNREACH
    if main is not None:
        err = fib_table_lookup(net, main, fl, flags)
        if type(err) is not int:
            return err
    dflt = tables.get(RT_TABLE_DEFAULT)
    if dflt is not None:
        err = fib_table_lookup_multi((dflt,), dflt.lens, fl, flags)
    if err == -errno.EAGAIN:
        err = -errno.ENETUNREACH
    return err


def fib_lookup(net: "Net", fl4: Flowi4, flags: int = 0) -> FibResult | KernelError:
    """Contract API: the result, or a KernelError carrying the errno (not raised)."""
    res = fib_lookup_errno(net, fl4, flags)
    if type(res) is int:
        return KernelError(-res)
    return res


# ------------------------------------------------------------------ addr type
def inet_addr_type_table(net: "Net", addr: bytes | int, tb_id: int,
                         dev: "NetDevice | None" = None) -> int:
    """``__inet_dev_addr_type``: the type of ``addr`` per table ``tb_id`` (local by
    default); with ``dev``, only a route through that device counts."""
    a = ip_to_int(addr)
    if a == 0 or a == 0xFFFFFFFF:
        return 3  # RTN_BROADCAST
    if a >> 28 == 0xE:
        return RTN_MULTICAST
    tb = fib_get_table(net, tb_id)
    if tb is None:
        return 3
    res = fib_table_lookup(net, tb, Flowi4(daddr=a))
    if type(res) is int:
        return RTN_UNICAST
    if dev is None or res.fi.nexthops and res.fi.nexthops[0].dev is dev:
        return res.type
    return RTN_UNICAST


def inet_addr_type(net: "Net", addr: bytes | int) -> int:
    """``inet_addr_type``: per the local table."""
    return inet_addr_type_table(net, addr, RT_TABLE_LOCAL)


def inet_dev_addr_type(net: "Net", dev: "NetDevice", addr: bytes | int) -> int:
    """``inet_dev_addr_type``."""
    return inet_addr_type_table(net, addr, RT_TABLE_LOCAL, dev)


# ----------------------------------------------------------------- validation
def _err(code: int, msg: str = "") -> KernelError:
    return KernelError(code, msg)


def _check_nh_v4_gw(net: "Net", nh: FibNexthop, table: int, scope: int) -> None:
    """``fib_check_nh_v4_gw``: the gateway must be reachable through a unicast/local
    route of wider scope (or be declared ``onlink`` on an up device)."""
    gw = nh.gw_int
    if nh.flags & RTNH_F_ONLINK:
        if scope >= RT_SCOPE_LINK:
            raise _err(errno.EINVAL, "Nexthop has invalid scope")
        dev = nh.dev
        if dev is None or dev.net is not net:
            raise _err(errno.ENODEV, "Nexthop device required for onlink")
        if not dev.is_up:
            raise _err(errno.ENETDOWN, "Nexthop device is not up")
        if inet_addr_type_table(net, gw, RT_TABLE_LOCAL, dev) != RTN_UNICAST:
            raise _err(errno.EINVAL, "Nexthop has invalid gateway")
        if not dev.carrier_ok():
            nh.flags |= RTNH_F_LINKDOWN
        nh.scope = RT_SCOPE_LINK
        return
    fl = Flowi4(daddr=gw, scope=max(scope + 1, RT_SCOPE_LINK), oif=nh.oif,
                iif=LOOPBACK_IFINDEX)
    res: FibResult | int = -errno.ENETUNREACH
    tbl = fib_get_table(net, table) if table and table != RT_TABLE_MAIN else None
    if tbl is not None:
        res = fib_table_lookup(net, tbl, fl, FIB_LOOKUP_IGNORE_LINKSTATE)
    if tbl is None or type(res) is int:
        res = fib_lookup_errno(net, fl, FIB_LOOKUP_IGNORE_LINKSTATE)
    if type(res) is int:
        raise _err(-res, "Nexthop has invalid gateway")
    if res.type not in (RTN_UNICAST, RTN_LOCAL):
        raise _err(errno.EINVAL, "Nexthop has invalid gateway")
    nh.scope = res.scope
    dev = res.dev
    if dev is None:
        raise _err(errno.EINVAL, "No egress device for nexthop gateway")
    nh.dev = dev
    if not dev.carrier_ok():
        nh.flags |= RTNH_F_LINKDOWN
    if not dev.is_up:
        raise _err(errno.ENETDOWN)


def _check_nh_nongw(net: "Net", nh: FibNexthop) -> None:
    """``fib_check_nh_nongw``: a directly connected route needs an up device."""
    if nh.flags & (RTNH_F_PERVASIVE | RTNH_F_ONLINK):
        raise _err(errno.EINVAL,
                   "Invalid flags for nexthop - PERVASIVE and ONLINK can not be set")
    dev = nh.dev
    if dev is None or dev.net is not net or dev.ip_ptr is None:
        raise _err(errno.ENODEV)
    if not dev.is_up:
        raise _err(errno.ENETDOWN, "Device for nexthop is not up")
    nh.scope = RT_SCOPE_HOST
    if not dev.carrier_ok():
        nh.flags |= RTNH_F_LINKDOWN


def _valid_prefsrc(net: "Net", cfg: FibRoute, prefsrc: int) -> bool:
    """``fib_valid_prefsrc``: the preferred source must be a local address."""
    if cfg.type != RTN_LOCAL or not cfg.dst_int or cfg.dst_int != prefsrc:
        tb_id = cfg.table or RT_TABLE_MAIN
        if tb_id == RT_TABLE_MAIN:
            tb_id = RT_TABLE_LOCAL
        rc = inet_addr_type_table(net, prefsrc, tb_id)
        if rc != RTN_LOCAL and tb_id != RT_TABLE_LOCAL:
            rc = inet_addr_type_table(net, prefsrc, RT_TABLE_LOCAL)
        return rc == RTN_LOCAL
    return True


def fib_create_info(net: "Net", cfg: FibRoute) -> FibRoute:
    """``fib_create_info``: validate ``cfg`` and build the route the table will hold (a
    fresh object; the caller's is never stored).  Raises KernelError as the kernel."""
    rtype = cfg.type
    if rtype > RTN_MAX or rtype < 0:
        raise _err(errno.EINVAL, "Invalid route type")
    if rtype in (RTN_NAT, RTN_XRESOLVE):
        raise NotSupported(f"route type {rtype} (nat/xresolve)")
    if FIB_PROPS[rtype][1] > cfg.scope:
        raise _err(errno.EINVAL, "Invalid scope")
    if cfg.flags & (RTNH_F_DEAD | RTNH_F_LINKDOWN):
        raise _err(errno.EINVAL, "Invalid rtm_flags - can not contain DEAD or LINKDOWN")
    if cfg.dst_len > 32 or cfg.dst_len < 0:
        raise _err(errno.EINVAL, "Invalid prefix length")
    given = [nh for nh in cfg.nexthops]
    for nh in given:
        if len(given) > 1 and not 1 <= nh.weight <= 256:
            raise _err(errno.EINVAL, "Invalid nexthop weight")
    fi = FibRoute(dst=bytes(cfg.dst), dst_len=cfg.dst_len, tos=cfg.tos, type=rtype,
                  protocol=cfg.protocol, scope=cfg.scope,
                  prefsrc=bytes(cfg.prefsrc) if cfg.prefsrc is not None and
                  ip_to_int(cfg.prefsrc) else None,
                  priority=cfg.priority, table=cfg.table or RT_TABLE_MAIN,
                  metrics=dict(cfg.metrics), flags=0)
    if FIB_ERR[rtype]:
        if any(nh.gw is not None or nh.dev is not None for nh in given) or len(given) > 1:
            raise _err(errno.EINVAL,
                       "Gateway, device and multipath can not be specified for this route type")
    else:
        if rtype not in (RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST, RTN_ANYCAST, RTN_MULTICAST):
            raise _err(errno.EINVAL, "Invalid route type")  # pragma: no cover - props cover
        if cfg.scope > RT_SCOPE_HOST:
            raise _err(errno.EINVAL, "Invalid scope")
        if not given:
            given = [FibNexthop()]
        nhs = [FibNexthop(gw=bytes(nh.gw) if nh.gw is not None and ip_to_int(nh.gw) else None,
                          dev=nh.dev, weight=nh.weight if len(given) > 1 else 1,
                          flags=(nh.flags | (cfg.flags & RTNH_F_ONLINK)) & ~(
                              RTNH_F_DEAD | RTNH_F_LINKDOWN))
               for nh in given]
        fi.nexthops = nhs
        if cfg.scope == RT_SCOPE_HOST:
            if len(nhs) != 1:
                raise _err(errno.EINVAL, "Route with host scope can not have multiple nexthops")
            nh = nhs[0]
            if nh.gw is not None:
                raise _err(errno.EINVAL, "Route with host scope can not have a gateway")
            nh.scope = RT_SCOPE_NOWHERE
            if nh.dev is None or nh.dev.net is not net:
                raise _err(errno.ENODEV)
        else:
            linkdown = 0
            for nh in nhs:
                if nh.gw is not None:
                    _check_nh_v4_gw(net, nh, cfg.table, cfg.scope)
                else:
                    _check_nh_nongw(net, nh)
                if nh.flags & RTNH_F_LINKDOWN:
                    linkdown += 1
            if linkdown == len(nhs):
                fi.flags |= RTNH_F_LINKDOWN
    if fi.prefsrc is not None and not _valid_prefsrc(net, cfg, ip_to_int(fi.prefsrc)):
        raise _err(errno.EINVAL, "Invalid prefsrc address")
    fib_rebalance(fi)
    return fi


def _valid_key_len(key: int, plen: int) -> None:
    """``fib_valid_key_len``."""
    if plen > 32 or plen < 0:
        raise _err(errno.EINVAL, "Invalid prefix length")
    if key & ~MASKS[plen] & 0xFFFFFFFF:
        raise _err(errno.EINVAL, "Invalid prefix for given prefix length")


def _find_alias(lst: list[FibRoute] | None, tos: int, prio: int) -> int | None:
    """``fib_find_alias`` within one (key, length, table) list: the first alias with
    TOS <= ``tos`` whose priority >= ``prio`` (or with a smaller TOS)."""
    if not lst:
        return None
    for i, fa in enumerate(lst):
        if fa.tos > tos:
            continue
        if fa.priority >= prio or fa.tos < tos:
            return i
    return None


# ------------------------------------------------------------- insert/delete
def fib_table_insert(net: "Net", tb: FibTable, cfg: FibRoute, *, create: bool = True,
                     excl: bool = False, replace: bool = False, append: bool = False) -> None:
    """``fib_table_insert`` with the netlink flags CREATE/EXCL/REPLACE/APPEND.

    ``ip route add`` = create+excl, ``append`` = create+append, ``replace`` =
    create+replace, ``change`` = replace only, ``prepend`` = create."""
    key = cfg.dst_int
    plen = cfg.dst_len
    _valid_key_len(key, plen)
    if cfg.tos & 0x03:
        raise _err(errno.EINVAL, "Invalid dsfield (tos): ECN bits must be 0")
    fi = fib_create_info(net, cfg)
    fi.table = tb.id
    tos = cfg.tos
    bucket = tb.plens[plen]
    lst = bucket.get(key)
    idx = _find_alias(lst, tos, fi.priority)
    pos: int
    if lst is not None and idx is not None and lst[idx].tos == tos and \
            lst[idx].priority == fi.priority:
        if excl:
            raise _err(errno.EEXIST)
        first = idx
        match = None
        j = idx
        fkey = fi.info_key()
        while j < len(lst):
            fa = lst[j]
            if fa.tos != tos or fa.priority != fi.priority:
                break
            if fa.type == fi.type and fa.info_key() == fkey and not fa.dead:
                match = j
                break
            j += 1
        if replace:
            if match is not None:
                if match == first:
                    return
                raise _err(errno.EEXIST)
            lst[first] = fi
            tb._changed()
            return
        if match is not None:
            raise _err(errno.EEXIST)
        pos = j if append else first
    else:
        pos = idx if idx is not None else (len(lst) if lst is not None else 0)
    if not create:
        raise _err(errno.ENOENT)
    if lst is None:
        lst = bucket[key] = []
    lst.insert(pos, fi)
    if plen == 0:
        tb.num_default += 1
    tb._changed()


def _nh_match(cfg: FibRoute, fi: FibRoute) -> bool:
    """``fib_nh_match``: the nexthop part of a delete request matches ``fi``."""
    if cfg.priority and cfg.priority != fi.priority:
        return False
    want = cfg.nexthops
    if len(want) <= 1:
        if not want or (want[0].dev is None and want[0].gw is None):
            return True
        if not fi.nexthops:
            return False
        nh = fi.nexthops[0]
        w = want[0]
        if w.dev is not None and w.dev is not nh.dev:
            return False
        if w.gw is not None and ip_to_int(w.gw) != nh.gw_int:
            return False
        return True
    if len(want) != len(fi.nexthops):
        return False
    for w, nh in zip(want, fi.nexthops):
        if w.dev is not None and w.dev is not nh.dev:
            return False
        if w.gw is not None and ip_to_int(w.gw) != nh.gw_int:
            return False
    return True


def _metrics_match(cfg: FibRoute, fi: FibRoute) -> bool:
    """``fib_metrics_match``."""
    for k, v in cfg.metrics.items():
        if fi.metrics.get(k, 0) != v:
            return False
    return True


def fib_table_delete(net: "Net", tb: FibTable, cfg: FibRoute) -> FibRoute:
    """``fib_table_delete``: remove the first route matching ``cfg`` (wildcards as in
    :class:`FibRoute`); ESRCH when none.  Returns the removed route."""
    key = cfg.dst_int
    plen = cfg.dst_len
    _valid_key_len(key, plen)
    tos = cfg.tos
    lst = tb.plens[plen].get(key)
    idx = _find_alias(lst, tos, 0)
    if lst is None or idx is None:
        raise _err(errno.ESRCH)
    for j in range(idx, len(lst)):
        fa = lst[j]
        if fa.tos != tos:
            break
        if ((not cfg.type or fa.type == cfg.type)
                and (cfg.scope == RT_SCOPE_NOWHERE or fa.scope == cfg.scope)
                and (cfg.prefsrc is None or not ip_to_int(cfg.prefsrc)
                     or fa.prefsrc == bytes(cfg.prefsrc))
                and (not cfg.protocol or fa.protocol == cfg.protocol)
                and _nh_match(cfg, fa) and _metrics_match(cfg, fa)):
            del lst[j]
            if not lst:
                del tb.plens[plen][key]
            if plen == 0:
                tb.num_default -= 1
            tb._changed()
            return fa
    raise _err(errno.ESRCH)


# ----------------------------------------------------------------- frontends
def fib_route_add(net: "Net", route: FibRoute, replace: bool = False, append: bool = False,
                  excl: bool = False, create: bool = True) -> None:
    """``inet_rtm_newroute``: the table is created on demand.  ``create=False`` gives
    ``ip route change`` (REPLACE without CREATE)."""
    tb = fib_new_table(net, route.table)
    fib_table_insert(net, tb, route, create=create, excl=excl, replace=replace, append=append)
    if route.type == RTN_LOCAL:
        net.ipv4.fib.has_custom_local_routes = True


def fib_route_del(net: "Net", match_route: FibRoute) -> FibRoute:
    """``inet_rtm_delroute``: ESRCH "FIB table does not exist." for an unknown table."""
    tb = fib_get_table(net, match_route.table)
    if tb is None:
        raise _err(errno.ESRCH, "FIB table does not exist")
    return fib_table_delete(net, tb, match_route)


def fib_dump(net: "Net", table: int | None = None) -> list[FibRoute]:
    """All routes (or one table's) in the order ``ip route show table all`` prints them."""
    tables = net.ipv4.fib_tables
    if table is not None:
        tb = tables.get(table or RT_TABLE_MAIN)
        return tb.routes() if tb is not None else []
    order = list(tables.values())
    # FIB_TABLE_HASHSZ=256 buckets walked in order; hlist_add_head: newest first in one.
    pos = {id(tb): i for i, tb in enumerate(order)}
    order.sort(key=lambda tb: (tb.id & 0xFF, -pos[id(tb)]))
    out: list[FibRoute] = []
    for tb in order:
        out.extend(tb.routes())
    return out


def fib_all_routes(net: "Net") -> list[FibRoute]:
    """Every route of the namespace (for device sync)."""
    out: list[FibRoute] = []
    for tb in net.ipv4.fib_tables.values():
        for d in tb.plens:
            for lst in d.values():
                out.extend(lst)
    return out


def fib_flush(net: "Net") -> int:
    """``fib_flush`` / ``fib_table_flush``: drop the routes left without a live path."""
    n = 0
    for tb in net.ipv4.fib_tables.values():
        changed = False
        for plen in range(33):
            d = tb.plens[plen]
            for key in list(d):
                lst = d[key]
                keep = [fa for fa in lst if not fa.flags & RTNH_F_DEAD]
                if len(keep) != len(lst):
                    n += len(lst) - len(keep)
                    if plen == 0:
                        tb.num_default -= len(lst) - len(keep)
                    changed = True
                    if keep:
                        d[key] = keep
                    else:
                        del d[key]
        if changed:
            tb._changed()
    return n


def fib_magic(net: "Net", add: bool, rtype: int, dst: int, dst_len: int, dev: "NetDevice",
              prefsrc: bytes, priority: int = 0) -> None:
    """``fib_magic``: the kernel's own routes for an address (proto kernel; ``local``,
    ``broadcast`` in table local, the prefix route in main).  Failures are ignored, as
    the kernel ignores them (e.g. the EEXIST of a duplicate broadcast route)."""
    table = RT_TABLE_MAIN if rtype == RTN_UNICAST else RT_TABLE_LOCAL
    tb = fib_new_table(net, table)
    scope = RT_SCOPE_HOST if rtype == RTN_LOCAL else RT_SCOPE_LINK
    cfg = FibRoute(dst=int_to_ip(dst), dst_len=dst_len, type=rtype, protocol=RTPROT_KERNEL,
                   scope=scope, prefsrc=prefsrc, priority=priority, table=table,
                   nexthops=[FibNexthop(dev=dev)])
    try:
        if add:
            fib_table_insert(net, tb, cfg, create=True, append=True)
        else:
            fib_table_delete(net, tb, cfg)
    except KernelError:
        pass


def fib_init_net(net: "Net") -> None:
    """``ip_fib_net_init`` + ``fib4_rules_init``: tables local and main exist from the
    start (default is created by its first route), plus the three default rules."""
    from netstack.ipv4.fib_rules import fib4_rules_init
    ipv4 = net.ipv4
    ipv4.fib = FibState()
    ipv4.fib_tables = ipv4.fib.tables
    fib_new_table(net, RT_TABLE_MAIN)
    fib_new_table(net, RT_TABLE_LOCAL)
    fib4_rules_init(net)
