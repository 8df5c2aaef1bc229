"""``ip link add link DEV name N type ipvlan [mode l2|l3|l3s] [bridge|private|vepa]`` and
the ipvlan part of ``ip -d link`` (iproute2 6.1 ip/iplink_ipvlan.c; the kernel side is
drivers/net/ipvlan/ipvlan_main.c ``ipvlan_nl_validate``/``ipvlan_link_new``/
``ipvlan_nl_changelink``/``ipvlan_nl_fillinfo``).

``ipvlan_parse_opt`` always sends IFLA_IPVLAN_FLAGS (0 = bridge when no flag word is
given), so every ``add`` or ``set … type ipvlan`` also sets the port's flags; the mode is
sent only when given, but ``ipvlan_link_new`` puts the port in l3 when a new slave comes
without one.  Only the first of bridge/private/vepa counts; a second is an unknown option.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Args, matches
from netstack.cli.iplink_bridge import newlink_finish
from netstack.cli.iplink_macvlan import lower_newlink_checks
from netstack.drivers.ipvlan import (IPVLAN_F_PRIVATE, IPVLAN_F_VEPA, IPVLAN_MODE_L2,
                                     IPVLAN_MODE_L3, IPVLAN_MODE_L3S, IpvlanDevice,
                                     ipvlan_link_new, ipvlan_nl_changelink)
from netstack.drivers.ipvtap import ipvtap_newlink

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.cli.iplink import LinkReq

USAGE = ("Usage: ... {kind} [ mode MODE ] [ FLAGS ]\n"
         "\n"
         "MODE: l3 | l3s | l2\n"
         "FLAGS: bridge | private | vepa\n"
         "(first values are the defaults if nothing is specified).\n")
_MODES = {"l2": IPVLAN_MODE_L2, "l3": IPVLAN_MODE_L3, "l3s": IPVLAN_MODE_L3S}
MODE_NAMES = {v: k for k, v in _MODES.items()}


def parse_ipvlan_opts(argv: list[str], kind: str = "ipvlan") -> tuple[int | None, int]:
    """``ipvlan_parse_opt``: (IFLA_IPVLAN_MODE or None, IFLA_IPVLAN_FLAGS)."""
    mode: int | None = None
    flags = 0
    mflag_given = False
    args = Args(argv)
    while args:
        a = args.cur
        if matches(a, "mode"):
            v = args.next_arg()
            if v not in _MODES:
                raise ToolError('Error: argument of "mode" must be either "l2", "l3" or '
                                '"l3s"\n', 1)
            mode = _MODES[v]
        elif matches(a, "private") and not mflag_given:
            flags |= IPVLAN_F_PRIVATE
            mflag_given = True
        elif matches(a, "vepa") and not mflag_given:
            flags |= IPVLAN_F_VEPA
            mflag_given = True
        elif matches(a, "bridge") and not mflag_given:
            mflag_given = True
        elif matches(a, "help"):
            raise ToolError(USAGE.format(kind=kind), 1)
        else:
            raise ToolError(f'{kind}: unknown option "{a}"?\n' + USAGE.format(kind=kind), 1)
        args.advance()
    return mode, flags


def link_add(ctx: "Ctx", req: "LinkReq", net: Any) -> None:
    """``rtnl_newlink`` for kind ipvlan/ipvtap."""
    kind = req.kind or "ipvlan"
    mode, flags = parse_ipvlan_opts(req.type_args, kind)
    phy, name = lower_newlink_checks(ctx, req, net, kind)
    if kind == "ipvtap":  # ipvtap_newlink (drivers/net/ipvlan/ipvtap.c)
        dev = ipvtap_newlink(net, name, phy, mode, flags, req.mtu, req.index or 0)
    else:
        dev = ipvlan_link_new(net, name, phy, mode, flags, req.mtu, req.index or 0)
    newlink_finish(net, dev, req)


def link_change(ctx: "Ctx", req: "LinkReq", dev: IpvlanDevice) -> None:
    """``ip link set DEV type ipvlan …``: ``ipvlan_nl_changelink``."""
    mode, flags = parse_ipvlan_opts(req.type_args, req.kind or "ipvlan")
    ipvlan_nl_changelink(dev, mode, flags)


def info_data_text(dev: IpvlanDevice) -> str:
    """``ipvlan_print_opt`` text, after ``ipvlan ``: `` mode M FLAG ``."""
    port = dev.port
    s = f" mode {MODE_NAMES.get(port.mode, 'unknown')} "
    if port.flags & IPVLAN_F_PRIVATE:
        s += "private "
    elif port.flags & IPVLAN_F_VEPA:
        s += "vepa "
    else:
        s += "bridge "
    return s


def info_data_json(dev: IpvlanDevice) -> dict[str, Any]:
    """``ipvlan_print_opt`` JSON: ``mode`` and one of ``private``/``vepa``/``bridge``."""
    port = dev.port
    d: dict[str, Any] = {"mode": MODE_NAMES.get(port.mode, "unknown")}
    if port.flags & IPVLAN_F_PRIVATE:
        d["private"] = True
    elif port.flags & IPVLAN_F_VEPA:
        d["vepa"] = True
    else:
        d["bridge"] = True
    return d
