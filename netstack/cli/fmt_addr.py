"""``ip addr`` address lines, text and JSON (ip/ipaddress.c ``print_addrinfo``).

Works on any object with the contract's address fields (``IfAddr`` for IPv4,
``Inet6IfAddr`` for IPv6): ``local``, ``prefixlen``, ``address`` (peer), ``broadcast``,
``scope``, ``flags``, ``label``, ``metric``, ``valid_lft``, ``preferred_lft``.
"""
from __future__ import annotations

from typing import Any

from netstack.cli.ipcommon import addr_to_str
from netstack.core.rtnetlink import (  # noqa: F401  (re-exported)
    IFA_F_PERMANENT,
)

INFINITY = 0xFFFFFFFF
#: print_ifa_flags order (ip/ipaddress.c ifa_flag_names), IPv4 name of 0x01 is secondary.
_IFA_FLAGS = ((0x01, "secondary", "temporary"), (0x02, "nodad", "nodad"),
              (0x04, "optimistic", "optimistic"), (0x08, "dadfailed", "dadfailed"),
              (0x10, "home", "home"), (0x20, "deprecated", "deprecated"),
              (0x40, "tentative", "tentative"), (0x100, "mngtmpaddr", "mngtmpaddr"),
              (0x200, "noprefixroute", "noprefixroute"), (0x400, "autojoin", "autojoin"),
              (0x800, "stable-privacy", "stable-privacy"))
_SCOPES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}


def scope_name(scope: int) -> str:
    """lib/rt_names.c ``rtnl_rtscope_n2a``."""
    return _SCOPES.get(scope, str(scope))


def _flag_names(ifa: Any, v6: bool) -> list[str]:
    flags = getattr(ifa, "flags", 0)
    out = []
    if not flags & IFA_F_PERMANENT:
        out.append("dynamic")
    for bit, n4, n6 in _IFA_FLAGS:
        if flags & bit:
            out.append(n6 if v6 else n4)
    return out


def _peer(ifa: Any) -> bytes | None:
    peer = getattr(ifa, "address", None)
    return peer if peer is not None and peer != ifa.local else None


def _lft(v: int) -> str:
    return "forever" if v == INFINITY else f"{v}sec"


def addr_text(ifa: Any, v6: bool) -> str:
    fam = "inet6" if v6 else "inet"
    peer = _peer(ifa)
    s = f"    {fam} {addr_to_str(ifa.local)}"
    s += f" peer {addr_to_str(peer)}/{ifa.prefixlen}" if peer else f"/{ifa.prefixlen}"
    metric = getattr(ifa, "metric", 0)
    if metric:   # print_addrinfo: IFA_RT_PRIORITY right after the prefix length
        s += f" metric {metric}"
    brd = getattr(ifa, "broadcast", None)
    if brd:
        s += f" brd {addr_to_str(brd)}"
    s += f" scope {scope_name(ifa.scope)} "
    s += "".join(f"{f} " for f in _flag_names(ifa, v6))
    label = getattr(ifa, "label", "") if not v6 else ""
    s += f"{label}\n" if label else "\n"
    s += (f"       valid_lft {_lft(ifa.valid_lft)} preferred_lft "
          f"{_lft(ifa.preferred_lft)}\n")
    return s


def addr_json(ifa: Any, v6: bool) -> dict[str, Any]:
    d: dict[str, Any] = {"family": "inet6" if v6 else "inet", "local": addr_to_str(ifa.local)}
    peer = _peer(ifa)
    if peer:
        d["address"] = addr_to_str(peer)
    d["prefixlen"] = ifa.prefixlen
    metric = getattr(ifa, "metric", 0)
    if metric:
        d["metric"] = metric
    brd = getattr(ifa, "broadcast", None)
    if brd:
        d["broadcast"] = addr_to_str(brd)
    d["scope"] = scope_name(ifa.scope)
    for f in _flag_names(ifa, v6):
        d[f] = True
    label = getattr(ifa, "label", "") if not v6 else ""
    if label:
        d["label"] = label
    d["valid_life_time"] = ifa.valid_lft
    d["preferred_life_time"] = ifa.preferred_lft
    return d


def addr_brief(ifa: Any) -> str:
    """``ip -br addr``: print_addrinfo stops (``brief_exit``) after the prefix length and
    the IFA_RT_PRIORITY metric."""
    peer = _peer(ifa)
    if peer:
        s = f"{addr_to_str(ifa.local)} peer {addr_to_str(peer)}/{ifa.prefixlen} "
    else:
        s = f"{addr_to_str(ifa.local)}/{ifa.prefixlen} "
    metric = getattr(ifa, "metric", 0)
    return s + (f"metric {metric} " if metric else "")
