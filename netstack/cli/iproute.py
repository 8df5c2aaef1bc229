"""``ip route`` / ``ip -6 route`` (ip/iproute.c): add/del/replace/append/prepend/change/
show/get/flush for both families (IPv6 through :mod:`netstack.ipv6.route`).

``iproute_modify``'s parser is followed keyword by keyword (a route type word before the
prefix, ``via``/``dev``/``src``/``metric``/``proto``/``scope``/``table``/``onlink``/
metrics, ``nexthop`` groups via ``parse_nexthops``), including the default scope rules
(``link`` for a unicast route without gateway, ``host`` for local/nat, ``link`` for
broadcast/multicast/anycast, ``nowhere`` as the delete wildcard).  Routes become the
contract's :class:`FibRoute` and go to ``fib_route_add``/``fib_route_del``/``fib_dump``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netstack.cli import backend
from netstack.cli.errors import ToolError
from netstack.cli.fmt_route import (
    PROTO_BY_NAME, PROTO_NAMES, RTN_BY_NAME, RTN_NAMES, ShowFilter, metrics_text, route_json,
    route_metrics, route_text,
)
from netstack.cli.ipaddress import rtscope_a2n
from netstack.cli.ipcommon import (name_or_number,
    AF_INET, AF_INET6, Args, Ctx, Prefix, addr_to_str, duparg2, get_addr, get_prefix,
    get_unsigned, invarg, kernel_error, lookup_dev, matches, table_a2n, table_n2a,
)
from netstack.cli.jsonout import dumps
from netstack.errors import KernelError, NotSupported
from netstack.core.rtnetlink import (  # noqa: F401  (re-exported)
    RTNH_F_ONLINK,
)

_METRIC_KEYWORDS = ("mtu", "advmss", "hoplimit", "window", "rtt", "rttvar", "reordering",
                    "cwnd", "initcwnd", "initrwnd", "ssthresh", "rto_min", "features",
                    "quickack", "congctl", "fastopen_no_cookie")
# RTAX order (include/uapi/linux/rtnetlink.h) of the lockable metrics.
_LOCK_ORDER = ("mtu", "window", "rtt", "rttvar", "ssthresh", "cwnd", "advmss", "reordering",
               "hoplimit", "initcwnd", "rto_min", "initrwnd")
# Route types iproute_modify puts in table local when no table is given:
# RTN_LOCAL, RTN_BROADCAST, RTN_ANYCAST, RTN_NAT.
_LOCAL_TABLE_TYPES = (2, 3, 4, 10)
# RTA_PREF values (include/uapi/linux/icmpv6.h ICMPV6_ROUTER_PREF_*) by iproute2's names.
_PREFS = {"low": "low", "medium": "medium", "high": "high"}


def rtprot_a2n(text: str) -> int | None:
    """lib/rt_names.c ``rtnl_rtprot_a2n``: /etc/iproute2/rt_protos names or a u8."""
    return name_or_number(text, PROTO_BY_NAME, 255)


@dataclass
class NhReq:
    gw: Prefix | None = None
    dev: str | None = None
    weight: int = 1
    onlink: bool = False


@dataclass
class RouteReq:
    dst: Prefix | None = None
    type: int | None = None
    src: Prefix | None = None
    metric: int | None = None
    scope: int | None = None
    protocol: int | None = None
    table: int | None = None
    tos: int = 0
    onlink: bool = False
    gw: Prefix | None = None
    dev: str | None = None
    metrics: dict[str, int] = field(default_factory=dict)
    nexthops: list[NhReq] = field(default_factory=list)
    family: int = 0
    pref: str | None = None


def _parse_nexthops(args: Args, family: int) -> list[NhReq]:
    """``parse_nexthops``/``parse_one_nh``."""
    out: list[NhReq] = []
    while args:
        if args.cur != "nexthop":
            raise ToolError(f'Error: "nexthop" or end of line is expected instead of '
                            f'"{args.cur}"\n', 255)
        if args.i + 1 >= len(args.argv):
            raise ToolError('Error: unexpected end of line after "nexthop"\n', 255)
        nh = NhReq()
        args.advance()
        while args:
            a = args.cur
            if a == "via":
                nh.gw = get_addr(args.next_arg(), family)
            elif a == "dev":
                nh.dev = args.next_arg()
            elif a == "weight":
                v = args.next_arg()
                w = get_unsigned(v)
                if w is None or w == 0 or w > 256:
                    raise invarg('"weight" is invalid\n', v)
                nh.weight = w
            elif a == "onlink":
                nh.onlink = True
            elif matches(a, "realms") or a == "encap":
                raise NotSupported(f"ip route ... nexthop {a}")
            else:
                break
            args.advance()
        out.append(nh)
    return out


def parse_route(ctx: Ctx, argv: list[str], delete: bool) -> RouteReq:
    req = RouteReq(family=ctx.family)
    args = Args(argv)
    while args:
        a = args.cur
        if a == "src":
            req.src = get_addr(args.next_arg(), req.family)
        elif a == "via":
            v = args.next_arg()
            if v in ("inet", "inet6"):
                raise NotSupported("ip route ... via FAMILY ADDR")
            req.gw = get_addr(v, req.family)
            req.family = req.family or req.gw.family
        elif a in ("as", "from", "expires") or a == "nhid" or a == "encap" or \
                a == "ttl-propagate" or matches(a, "vrf") or matches(a, "realms"):
            raise NotSupported(f"ip route ... {a}")
        elif a == "tos" or matches(a, "dsfield"):
            v = args.next_arg()
            t = get_unsigned(v)
            if t is None or t > 255:
                raise invarg('"tos" value is invalid\n', v)
            req.tos = t
        elif matches(a, "metric") or matches(a, "priority") or a == "preference":
            v = args.next_arg()
            m = get_unsigned(v)
            if m is None:
                raise invarg('"metric" value is invalid\n', v)
            req.metric = m
        elif a == "scope":
            v = args.next_arg()
            sc = rtscope_a2n(v)
            if sc is None:
                raise invarg('invalid "scope" value\n', v)
            req.scope = sc
        elif a in _METRIC_KEYWORDS:
            v = args.next_arg()
            if v == "lock":
                # RTAX_LOCK: kept as the tuple of locked metric names (ipv4/route.py reads it)
                if a in ("congctl", "features", "fastopen_no_cookie", "quickack"):
                    raise NotSupported(f"ip route ... {a} lock")
                locked = set(req.metrics.get("lock", ())) | {a}  # type: ignore[arg-type]
                order = tuple(k for k in _LOCK_ORDER if k in locked)
                req.metrics["lock"] = order  # type: ignore[assignment]
                v = args.next_arg()
            n = get_unsigned(v)
            if n is None:
                raise invarg(f'"{a}" value is invalid\n', v)
            req.metrics[a] = n
        elif matches(a, "onlink"):
            req.onlink = True
        elif a == "nexthop":
            req.nexthops = _parse_nexthops(args, req.family)
            break
        elif matches(a, "protocol"):
            v = args.next_arg()
            p = rtprot_a2n(v)
            if p is None:
                raise invarg('"protocol" value is invalid\n', v)
            req.protocol = p
        elif matches(a, "table"):
            v = args.next_arg()
            t = table_a2n(v)
            if t is None:
                raise invarg('"table" value is invalid\n', v)
            req.table = t
        elif a in ("dev", "oif"):
            req.dev = args.next_arg()
        elif matches(a, "pref"):
            # RTA_PREF: only IPv6 routes carry it; the IPv4 policy ignores the attribute
            v = args.next_arg()
            if v not in _PREFS:
                raise invarg('"pref" value is invalid\n', v)
            req.pref = _PREFS[v]
        else:
            if a == "to":
                a = args.next_arg()
            if not a[:1].isdigit() and a in RTN_BY_NAME:
                req.type = RTN_BY_NAME[a]
                a = args.next_arg()
            if matches(a, "help"):
                raise NotSupported("ip route help")
            if req.dst is not None:
                raise duparg2("to", a)
            req.dst = get_prefix(a, req.family)
            if not req.dst.is_default:   # "default" takes the family of what follows
                req.family = req.family or req.dst.family
        args.advance()
    if req.dst is None:
        raise NotSupported("ip route add/del without a destination (usage text)")
    fam = req.family or next((nh.gw.family for nh in req.nexthops if nh.gw), 0)
    if req.dst.is_default and fam and fam != req.dst.family:
        req.dst = get_prefix("default", fam)
    req.family = fam or req.dst.family
    if req.table is None and req.type in _LOCAL_TABLE_TYPES:
        # iproute_modify: without "table", these types go to table local (both families,
        # add and delete alike)
        req.table = 255
    return req


def _nexthops6(ctx: Ctx, req: RouteReq, r6: Any) -> list[Any]:
    nhs = []
    for nh in req.nexthops:
        ndev = lookup_dev(ctx, nh.dev) if nh.dev is not None else None
        nhs.append(r6.Fib6Nexthop(gw=nh.gw.addr if nh.gw else None, dev=ndev,
                                  weight=nh.weight,
                                  flags=RTNH_F_ONLINK if (nh.onlink or req.onlink) else 0))
    dev = lookup_dev(ctx, req.dev) if req.dev is not None else None
    if not nhs and (req.gw is not None or dev is not None):
        nhs.append(r6.Fib6Nexthop(gw=req.gw.addr if req.gw else None, dev=dev,
                                  flags=RTNH_F_ONLINK if req.onlink else 0))
    return nhs


def _modify6(ctx: Ctx, cmd: str, req: RouteReq) -> None:
    """IPv6 routes: ``fib6_route_add``/``fib6_route_del`` (ip6_route_add/ip6_route_del)."""
    backend.need_ipv6(ctx.net, "ip -6 route")
    r6 = backend.route6()
    dst = req.dst
    assert dst is not None
    nhs = _nexthops6(ctx, req, r6)
    delete = cmd == "del"
    route = r6.Fib6Route(dst=dst.addr, dst_len=dst.bitlen,
                         type=req.type if req.type is not None else 1,
                         protocol=req.protocol if req.protocol is not None else 3,
                         priority=req.metric if req.metric is not None else 1024,
                         table=req.table or 254, nexthops=nhs,
                         prefsrc=req.src.addr if req.src else None,
                         metrics=dict(req.metrics), pref=req.pref or "medium")
    if delete:
        r6.fib6_route_del(ctx.net, route, match_gw=req.gw is not None,
                          match_dev=req.dev is not None, match_metric=req.metric is not None,
                          match_proto=req.protocol is not None,
                          match_type=req.type is not None)
    elif cmd == "add":
        r6.fib6_route_add(ctx.net, route, excl=True)
    elif cmd == "replace":
        r6.fib6_route_add(ctx.net, route, replace=True)
    elif cmd == "append":
        r6.fib6_route_add(ctx.net, route, append=True)
    elif cmd == "prepend":
        r6.fib6_route_add(ctx.net, route)
    elif cmd == "change":
        r6.fib6_route_add(ctx.net, route, replace=True, create=False)
    else:
        raise NotSupported(f"ip -6 route {cmd}")


def _to_fibroute(ctx: Ctx, req: RouteReq, delete: bool) -> Any:
    fs = backend.fib_semantics()
    dst = req.dst
    assert dst is not None
    dev = lookup_dev(ctx, req.dev) if req.dev is not None else None
    nhs = []
    for nh in req.nexthops:
        ndev = lookup_dev(ctx, nh.dev) if nh.dev is not None else None
        nhs.append(fs.FibNexthop(gw=nh.gw.addr if nh.gw else None, dev=ndev, weight=nh.weight,
                                 flags=RTNH_F_ONLINK if (nh.onlink or req.onlink) else 0))
    if not nhs and (req.gw is not None or dev is not None):
        nhs.append(fs.FibNexthop(gw=req.gw.addr if req.gw else None, dev=dev,
                                 flags=RTNH_F_ONLINK if req.onlink else 0))
    rtype = req.type if req.type is not None else (0 if delete else 1)
    scope = req.scope
    if scope is None:
        if rtype in (2, 10):
            scope = 254
        elif rtype in (3, 4, 5):
            scope = 253
        elif rtype in (0, 1) and delete:
            scope = 255
        elif rtype in (0, 1) and req.gw is None and not req.nexthops:
            scope = 253
        else:
            scope = 0
    plen = dst.bitlen
    addr = dst.addr
    return fs.FibRoute(dst=addr, dst_len=plen, tos=req.tos, type=rtype,
                       protocol=req.protocol if req.protocol is not None else (0 if delete else 3),
                       scope=scope, prefsrc=req.src.addr if req.src else None,
                       priority=req.metric or 0, table=req.table or 254, nexthops=nhs,
                       metrics=dict(req.metrics))


def _modify(ctx: Ctx, cmd: str, argv: list[str]) -> None:
    delete = cmd == "del"
    req = parse_route(ctx, argv, delete)
    if req.family == AF_INET6:
        if req.dev is not None:
            lookup_dev(ctx, req.dev)
        _modify6(ctx, cmd, req)
        return
    backend.need_ipv4(ctx.net, "ip route")
    route = _to_fibroute(ctx, req, delete)
    fib = backend.fib()
    if delete:
        fib.fib_route_del(ctx.net, route)
    elif cmd == "add":
        fib.fib_route_add(ctx.net, route, excl=True)
    elif cmd == "replace":
        fib.fib_route_add(ctx.net, route, replace=True)
    elif cmd == "change":
        fib.fib_route_add(ctx.net, route, replace=True, create=False)
    elif cmd == "append":
        fib.fib_route_add(ctx.net, route, append=True)
    elif cmd == "prepend":
        fib.fib_route_add(ctx.net, route)


@dataclass
class ListFilter:
    table: int | None = 254      # None = all
    dev: Any = None
    protocol: int | None = None
    scope: int | None = None
    type: int | None = None
    via: Prefix | None = None
    src: Prefix | None = None
    exact: Prefix | None = None
    root: Prefix | None = None
    match: Prefix | None = None


def parse_list(ctx: Ctx, argv: list[str]) -> ListFilter:
    f = ListFilter()
    args = Args(argv)
    while args:
        a = args.cur
        if matches(a, "table"):
            v = args.next_arg()
            t = table_a2n(v)
            if t is None:
                if v == "all":
                    f.table = None
                elif v == "cache":
                    raise NotSupported("ip route show table cache")
                else:
                    raise invarg("table id value is invalid\n", v)
            else:
                f.table = t
        elif matches(a, "protocol"):
            v = args.next_arg()
            p = rtprot_a2n(v)
            if p is None and v != "all":
                raise invarg('invalid "protocol"\n', v)
            f.protocol = p
        elif matches(a, "scope"):
            v = args.next_arg()
            sc = rtscope_a2n(v)
            if sc is None and v != "all":
                raise invarg('invalid "scope"\n', v)
            f.scope = sc
        elif matches(a, "type"):
            v = args.next_arg()
            if v not in RTN_BY_NAME:
                raise invarg("node type value is invalid\n", v)
            f.type = RTN_BY_NAME[v]
        elif a in ("dev", "oif"):
            f.dev = args.next_arg()
        elif a == "via":
            f.via = get_prefix(args.next_arg(), ctx.family)
        elif a == "src":
            f.src = get_prefix(args.next_arg(), ctx.family)
        elif a in ("iif", "mark", "tos") or matches(a, "vrf") or matches(a, "cached") or \
                matches(a, "cloned") or matches(a, "metric") or matches(a, "realms") or \
                matches(a, "from") or matches(a, "dsfield"):
            raise NotSupported(f"ip route show ... {a}")
        else:
            if matches(a, "to"):
                a = args.next_arg()
            if matches(a, "root"):
                f.root = get_prefix(args.next_arg(), ctx.family)
            elif matches(a, "match"):
                f.match = get_prefix(args.next_arg(), ctx.family)
            else:
                if matches(a, "exact"):
                    a = args.next_arg()
                elif matches(a, "help"):
                    raise NotSupported("ip route help")
                f.exact = get_prefix(a, ctx.family)
        args.advance()
    if f.dev is not None:
        f.dev = lookup_dev(ctx, f.dev)
    return f


def _in_prefix(addr: bytes, plen: int, p: Prefix) -> bool:
    a = int.from_bytes(addr, "big")
    b = int.from_bytes(p.addr, "big")
    bits = len(addr) * 8
    if plen < p.bitlen:
        return False
    shift = bits - p.bitlen
    return (a >> shift) == (b >> shift) if p.bitlen else True


_V6_REJECT = (6, 7, 8, 9)   # blackhole, unreachable, prohibit, throw


def _selected(r: Any, f: ListFilter) -> bool:
    for p in (f.exact, f.root, f.match, f.via, f.src):
        if p is not None and len(p.addr) != len(r.dst):
            return False
    if f.protocol is not None and r.protocol != f.protocol:
        return False
    if f.scope is not None and r.scope != f.scope:
        return False
    if f.type is not None and r.type != f.type:
        return False
    # iproute2 filters "dev"/"via" in userspace on RTA_OIF/RTA_GATEWAY, which a multipath
    # route does not carry (its nexthops are in RTA_MULTIPATH): such routes never match
    # (measured).  IPv6 reject routes report the loopback device.
    single = r.nexthops[0] if len(r.nexthops) == 1 else None
    if f.dev is not None:
        oif = single.dev if single is not None else None
        if single is None and len(r.dst) == 16 and r.type in _V6_REJECT:
            oif = f.dev.net.get("lo") if f.dev.net is not None else None
        if oif is not f.dev:
            return False
    # a zero-length via/src prefix matches every route (inet_addr_match_rta, measured)
    if f.via is not None and f.via.bitlen and (
            single is None or single.gw is None
            or not _in_prefix(single.gw, len(single.gw) * 8, f.via)):
        return False
    if f.src is not None and f.src.bitlen and (
            r.prefsrc is None or not _in_prefix(r.prefsrc, len(r.prefsrc) * 8, f.src)):
        return False
    if f.exact is not None and (r.dst_len != f.exact.bitlen or r.dst != f.exact.addr):
        return False
    if f.root is not None and not _in_prefix(r.dst, r.dst_len, f.root):
        return False
    if f.match is not None and not (r.dst_len <= f.match.bitlen and _in_prefix(
            f.match.addr, f.match.bitlen, Prefix(f.match.family, r.dst, r.dst_len))):
        return False

    return True


def _routes(ctx: Ctx, f: ListFilter) -> list[Any]:
    """IPv4 routes (``ip route``), IPv6 (``ip -6 route``), both for ``table all`` without
    a family, as iproute_list_flush_or_save dumps AF_UNSPEC only when no table is set."""
    out: list[Any] = []
    fam = ctx.family
    for p in (f.exact, f.root, f.match):
        if fam == 0 and p is not None:
            fam = p.family
    v4 = fam in (0, AF_INET)
    v6 = fam == AF_INET6 or (fam == 0 and f.table is None)
    if v4:
        if ctx.net.ipv4 is not None:
            fib = backend.fib()
            if f.table is not None and f.table not in ctx.net.ipv4.fib_tables:
                raise ToolError("Error: ipv4: FIB table does not exist.\nDump terminated\n",
                                2)
            out.extend(r for r in fib.fib_dump(ctx.net, f.table) if _selected(r, f))
    if v6 and ctx.net.ipv6 is not None:
        r6 = backend.route6()
        out.extend(r for r in r6.fib6_dump(ctx.net, f.table) if _selected(r, f))
    return out


def _show(ctx: Ctx, argv: list[str]) -> None:
    f = parse_list(ctx, argv)
    routes = _routes(ctx, f)
    sf = ShowFilter(table_pinned=f.table is not None, dev_pinned=f.dev is not None,
                    proto_pinned=f.protocol is not None, scope_pinned=f.scope is not None,
                    via_pinned=f.via is not None and f.via.bitlen == len(f.via.addr) * 8,
                    src_pinned=f.src is not None and f.src.bitlen == len(f.src.addr) * 8)
    if ctx.json:
        ctx.stdout.write(dumps([route_json(r, sf) for r in routes], ctx.pretty) + "\n")
        return
    for r in routes:
        ctx.stdout.write(route_text(r, sf))


def _flush(ctx: Ctx, argv: list[str]) -> None:
    if not argv:
        raise ToolError('"ip route flush" requires arguments.\n', 255)
    f = parse_list(ctx, argv)
    routes = _routes(ctx, f)
    for r in routes:
        if len(r.dst) == 16:
            backend.route6().fib6_route_del(
                ctx.net, r, match_metric=True, match_proto=True, match_type=True)
        else:
            backend.fib().fib_route_del(ctx.net, r)


def _get(ctx: Ctx, argv: list[str]) -> None:
    """``ip route get ADDR [from A] [oif DEV] [mark N]``: ``ip_route_output_key``."""
    args = Args(argv)
    dst: Prefix | None = None
    src: Prefix | None = None
    oif = None
    mark = 0
    while args:
        a = args.cur
        if a == "from":
            src = get_addr(args.next_arg(), ctx.family)
        elif a in ("oif", "dev"):
            oif = lookup_dev(ctx, args.next_arg())
        elif a == "mark":
            v = args.next_arg()
            m = get_unsigned(v)
            if m is None:
                raise invarg("invalid fwmark\n", v)
            mark = m
        elif a in ("iif", "tos", "dsfield", "vrf", "ipproto", "sport", "dport", "uid",
                   "connected", "fibmatch", "as", "notify", "cached"):
            raise NotSupported(f"ip route get ... {a}")
        else:
            if a == "to":
                a = args.next_arg()
            if dst is not None:
                raise duparg2("to", a)
            dst = get_prefix(a, ctx.family)
        args.advance()
    if dst is None:
        raise NotSupported("ip route get without an address")
    if dst.family == AF_INET6:
        _get6(ctx, dst, src, oif, mark)
        return
    backend.need_ipv4(ctx.net, "ip route get")
    route = backend.module("netstack.ipv4.route", "ip route get")
    fib = backend.fib()
    fl4 = fib.Flowi4(daddr=dst.addr, saddr=src.addr if src else 0,
                     oif=oif.ifindex if oif else 0, mark=mark)
    rt = route.ip_route_output(ctx.net, fl4)
    typ = getattr(rt, "type", 1)
    tname = RTN_NAMES.get(typ, str(typ)) if typ != 1 else ""
    table = getattr(rt, "table", None) or (255 if typ in (2, 3) else 254)
    if table == 255 and not ctx.net.ipv4.has_custom_rules:
        # Until the first rule, local routes live in the main trie (fib_unmerge splits
        # them off later), so rt_fill_info reports table main: measured, no "table local".
        table = 254
    met = route_metrics(rt)
    locked = (getattr(rt, "metrics", None) or {}).get("lock", ())
    dev = rt.dev.name if rt.dev is not None else ""
    saddr = fl4.saddr
    prefsrc = saddr.to_bytes(4, "big") if isinstance(saddr, int) and saddr else \
        getattr(rt, "prefsrc", None)
    gw = getattr(rt, "gateway", None)
    rflags = getattr(rt, "flags", 0)
    cache = [n for bit, n in ((0x80000000, "local"), (0x10000000, "brd"),
                              (0x20000000, "mc")) if rflags & bit]
    if not cache and typ == 2:
        cache = ["local"]
    if ctx.json:
        d: dict[str, Any] = {}
        if tname:
            d["type"] = tname
        d["dst"] = addr_to_str(dst.addr)
        if gw is not None:
            d["gateway"] = addr_to_str(gw)
        d["dev"] = dev
        if table != 254:
            d["table"] = table_n2a(table)
        if prefsrc is not None:
            d["prefsrc"] = addr_to_str(prefsrc)
        d["flags"] = []
        d["uid"] = 0
        d["cache"] = cache
        if met:
            d["metrics"] = [dict(met)]
        ctx.stdout.write(dumps([d], ctx.pretty) + "\n")
        return
    s = (f"{tname} " if tname else "") + addr_to_str(dst.addr) + " "
    if gw is not None:
        s += f"via {addr_to_str(gw)} "
    s += f"dev {dev} "
    if table != 254:
        s += f"table {table_n2a(table)} "
    if prefsrc is not None:
        s += f"src {addr_to_str(prefsrc)} "
    s += "uid 0 \n    cache " + (f"<{','.join(cache)}> " if cache else "")
    s += "".join(f"{k} {'lock ' if k in locked else ''}{v} " for k, v in met) + "\n"
    ctx.stdout.write(s)


def _get6(ctx: Ctx, dst: Prefix, src: Prefix | None, oif: Any, mark: int) -> None:
    """``ip -6 route get``: inet6_rtm_getroute → ip6_route_output, printed by
    rt6_fill_node: ``[TYPE ]DST from SRC|:: [via GW ]dev DEV [table T ][proto P ]
    [src PREFSRC ]metric M pref P``.

    A dst with an error is the command's error (measured: no route and unreachable
    ENETUNREACH, prohibit EACCES, blackhole EINVAL).  Local and anycast routes are shown
    with ``dev lo``: their dst uses the loopback device (``ip6_rt_get_dev_rcu``).  The
    source shown is the
    route's prefsrc, else source address selection on the output device
    (``ip6_route_get_saddr``), and is omitted when there is none.
    """
    backend.need_ipv6(ctx.net, "ip -6 route get")
    r6 = backend.route6()
    fl6 = r6.Flowi6(daddr=dst.addr, saddr=src.addr if src else bytes(16),
                    oif=oif.ifindex if oif else 0, mark=mark)
    rt = r6.ip6_route_output(ctx.net, fl6)
    route, gw, dev = rt.route, rt.gateway, rt.dev
    typ = route.type if route is not None else rt.type
    if typ in (r6.RTN_LOCAL, r6.RTN_ANYCAST):
        dev = ctx.net.get("lo")
    prefsrc = route.prefsrc if route is not None else None
    if prefsrc is None and dev is not None:
        prefsrc = backend.addrconf().ipv6_dev_get_saddr(ctx.net, dev, dst.addr)
    table = route.table if route is not None else 254
    proto = route.protocol if route is not None else 3
    metric = route.priority if route is not None else 0
    pref = route.pref if route is not None else "medium"
    tname = RTN_NAMES.get(typ, str(typ)) if typ != 1 else ""
    frm = addr_to_str(src.addr) if src else "::"
    if ctx.json:
        d: dict[str, Any] = {}
        if tname:
            d["type"] = tname
        d["dst"] = addr_to_str(dst.addr)
        d["from"] = frm
        if gw is not None:
            d["gateway"] = addr_to_str(gw)
        if dev is not None:
            d["dev"] = dev.name
        if table != 254:
            d["table"] = table_n2a(table)
        if proto != 3:
            d["protocol"] = PROTO_NAMES.get(proto, proto)
        if prefsrc is not None:
            d["prefsrc"] = addr_to_str(prefsrc)
        d["metric"] = metric
        d["flags"] = []
        if route is not None and route_metrics(route):
            d["metrics"] = [dict(route_metrics(route))]
        d["pref"] = pref
        ctx.stdout.write(dumps([d], ctx.pretty) + "\n")
        return
    s = (f"{tname} " if tname else "") + f"{addr_to_str(dst.addr)} from {frm} "
    if gw is not None:
        s += f"via {addr_to_str(gw)} "
    if dev is not None:
        s += f"dev {dev.name} "
    if table != 254:
        s += f"table {table_n2a(table)} "
    if proto != 3:
        s += f"proto {PROTO_NAMES.get(proto, str(proto))} "
    if prefsrc is not None:
        s += f"src {addr_to_str(prefsrc)} "
    s += f"metric {metric} " + (metrics_text(route) if route is not None else "")
    s += f"pref {pref}\n"
    ctx.stdout.write(s)


def do_iproute(ctx: Ctx, argv: list[str]) -> int:
    """``do_iproute``: subcommands by ``matches`` in iproute.c's order."""
    if not argv:
        _show(ctx, [])
        return 0
    cmd, rest = argv[0], argv[1:]
    try:
        if matches(cmd, "add"):
            _modify(ctx, "add", rest)
        elif matches(cmd, "change") or cmd == "chg":
            _modify(ctx, "change", rest)
        elif matches(cmd, "replace"):
            _modify(ctx, "replace", rest)
        elif matches(cmd, "prepend"):
            _modify(ctx, "prepend", rest)
        elif matches(cmd, "append"):
            _modify(ctx, "append", rest)
        elif matches(cmd, "test"):
            raise NotSupported("ip route test")
        elif matches(cmd, "delete"):
            _modify(ctx, "del", rest)
        elif matches(cmd, "list") or matches(cmd, "show") or matches(cmd, "lst"):
            _show(ctx, rest)
        elif matches(cmd, "get"):
            _get(ctx, rest)
        elif matches(cmd, "flush"):
            _flush(ctx, rest)
        elif matches(cmd, "save") or matches(cmd, "restore") or matches(cmd, "showdump"):
            raise NotSupported(f"ip route {cmd}")
        else:
            raise ToolError(f'Command "{cmd}" is unknown, try "ip route help".\n', 255)
    except KernelError as e:
        raise kernel_error(e) from None
    return 0


__all__ = ["do_iproute", "parse_route", "rtprot_a2n"]
