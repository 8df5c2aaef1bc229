"""``ip route`` lines, text and JSON (ip/iproute.c ``print_route``) for IPv4 FibRoutes.

A field is left out when the show filter pinned it (``dev`` with ``ip route show dev X``,
``table`` when one table was asked for, ``proto``/``scope`` when filtered), exactly as
iproute2's ``filter.*mask`` logic does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netstack.cli.fmt_addr import scope_name
from netstack.cli.ipcommon import addr_to_str, table_n2a

RTN_NAMES = {0: "none", 1: "unicast", 2: "local", 3: "broadcast", 4: "anycast",
             5: "multicast", 6: "blackhole", 7: "unreachable", 8: "prohibit", 9: "throw",
             10: "nat", 11: "xresolve"}
RTN_BY_NAME = {v: k for k, v in RTN_NAMES.items() if k}
PROTO_NAMES = {0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 8: "gated",
               9: "ra", 10: "mrt", 11: "zebra", 12: "bird", 13: "dnrouted", 14: "xorp",
               15: "ntk", 16: "dhcp", 18: "keepalived", 42: "babel", 99: "openr",
               186: "bgp", 187: "isis", 188: "ospf", 189: "rip", 192: "eigrp"}
PROTO_BY_NAME = {v: k for k, v in PROTO_NAMES.items()}
#: print_rt_flags order.
_NH_FLAGS = ((1, "dead"), (4, "onlink"), (2, "pervasive"), (8, "offload"), (64, "trap"),
             (16, "linkdown"), (32, "unresolved"))
#: IPv6 reject routes: ip6_route_info_create gives them the loopback device, so
#: ``ip -6 route`` shows ``dev lo`` even though they have no path.
_REJECT = (6, 7, 8, 9)
#: RTAX_* metrics in kernel order, as iproute2 names them.
METRIC_ORDER = ("lock", "mtu", "window", "rtt", "rttvar", "ssthresh", "cwnd", "advmss",
                "reordering", "hoplimit", "initcwnd", "features", "rto_min", "initrwnd",
                "quickack", "congctl", "fastopen_no_cookie")


@dataclass
class ShowFilter:
    """Which fields the filter pinned (and so are not printed)."""

    table_pinned: bool = False
    dev_pinned: bool = False
    proto_pinned: bool = False
    scope_pinned: bool = False
    #: ``via``/``src`` given with a full-length address (print_route: the gateway and
    #: prefsrc are printed only when ``filter.rvia``/``rprefsrc`` is not a host match)
    via_pinned: bool = False
    src_pinned: bool = False


def dst_str(r: Any) -> str:
    if r.dst_len == 0 and not any(r.dst):
        return "default"
    a = addr_to_str(r.dst)
    return a if r.dst_len == len(r.dst) * 8 else f"{a}/{r.dst_len}"


def flag_names(flags: int) -> list[str]:
    return [n for bit, n in _NH_FLAGS if flags & bit]


def _route_flags(r: Any) -> int:
    f = getattr(r, "flags", 0)
    if len(r.nexthops) == 1:
        f |= r.nexthops[0].flags
    return f


def route_metrics(r: Any) -> list[tuple[str, Any]]:
    """Metrics in RTAX order; ``lock`` (the RTAX_LOCK bitmask, kept as the tuple of locked
    metric names) is not a metric of its own but a prefix of each locked one."""
    m = getattr(r, "metrics", None) or {}
    return [(k, m[k]) for k in METRIC_ORDER if k in m and k != "lock"]


def metrics_text(r: Any) -> str:
    """``print_rta_metrics``: ``NAME [lock ]VALUE`` (``lock`` only in text output)."""
    locked = (r.metrics or {}).get("lock", ())
    return "".join(f"{k} {'lock ' if k in locked else ''}{v} " for k, v in route_metrics(r))


def _is_v6(r: Any) -> bool:
    return len(r.dst) == 16


def route_text(r: Any, f: ShowFilter) -> str:
    """One route; IPv6 routes always show ``metric`` and end with ``pref P`` (no trailing
    blank), as print_route does for AF_INET6."""
    v6 = _is_v6(r)
    s = ""
    if r.type != 1:
        s += f"{RTN_NAMES.get(r.type, str(r.type))} "
    s += dst_str(r) + " "
    if r.tos:
        s += f"tos 0x{r.tos:02x} "
    single = r.nexthops[0] if len(r.nexthops) == 1 else None
    if single is not None:
        if single.gw is not None and not f.via_pinned:
            s += f"via {addr_to_str(single.gw)} "
        if single.dev is not None and not f.dev_pinned:
            s += f"dev {single.dev.name} "
    elif v6 and r.type in _REJECT and not f.dev_pinned:
        s += "dev lo "
    if r.table != 254 and not f.table_pinned:
        s += f"table {table_n2a(r.table)} "
    if r.protocol != 3 and not f.proto_pinned:
        s += f"proto {PROTO_NAMES.get(r.protocol, str(r.protocol))} "
    if r.scope != 0 and not f.scope_pinned and not v6:
        s += f"scope {scope_name(r.scope)} "
    if r.prefsrc is not None and not f.src_pinned:
        s += f"src {addr_to_str(r.prefsrc)} "
    if r.priority or v6:
        s += f"metric {r.priority} "
    s += "".join(f"{n} " for n in flag_names(_route_flags(r)))
    s += metrics_text(r)
    if v6:
        s += f"pref {getattr(r, 'pref', 'medium')}"
    if len(r.nexthops) > 1:
        for nh in r.nexthops:
            s += "\n\tnexthop "
            if nh.gw is not None:
                s += f"via {addr_to_str(nh.gw)} "
            if nh.dev is not None:
                s += f"dev {nh.dev.name} "
            s += f"weight {nh.weight} "
            s += "".join(f"{n} " for n in flag_names(nh.flags))
    return s + "\n"


def route_json(r: Any, f: ShowFilter) -> dict[str, Any]:
    v6 = _is_v6(r)
    d: dict[str, Any] = {}
    if r.type != 1:
        d["type"] = RTN_NAMES.get(r.type, str(r.type))
    d["dst"] = dst_str(r)
    if r.tos:
        d["tos"] = f"0x{r.tos:02x}"
    single = r.nexthops[0] if len(r.nexthops) == 1 else None
    if single is not None:
        if single.gw is not None and not f.via_pinned:
            d["gateway"] = addr_to_str(single.gw)
        if single.dev is not None and not f.dev_pinned:
            d["dev"] = single.dev.name
    elif v6 and r.type in _REJECT and not f.dev_pinned:
        d["dev"] = "lo"
    if r.table != 254 and not f.table_pinned:
        d["table"] = table_n2a(r.table)
    if r.protocol != 3 and not f.proto_pinned:
        d["protocol"] = PROTO_NAMES.get(r.protocol, r.protocol)
    if r.scope != 0 and not f.scope_pinned and not v6:
        d["scope"] = scope_name(r.scope)
    if r.prefsrc is not None and not f.src_pinned:
        d["prefsrc"] = addr_to_str(r.prefsrc)
    if r.priority or v6:
        d["metric"] = r.priority
    d["flags"] = flag_names(_route_flags(r))
    met = route_metrics(r)
    if met:
        d["metrics"] = [dict(met)]   # print_rta_metrics: one object in a one-item array
    if v6:
        d["pref"] = getattr(r, "pref", "medium")
    if len(r.nexthops) > 1:
        nhs = []
        for nh in r.nexthops:
            n: dict[str, Any] = {}
            if nh.gw is not None:
                n["gateway"] = addr_to_str(nh.gw)
            if nh.dev is not None:
                n["dev"] = nh.dev.name
            n["weight"] = nh.weight
            n["flags"] = flag_names(nh.flags)
            nhs.append(n)
        d["nexthops"] = nhs
    return d
