"""``ip link add link DEV name N type macvlan|macvtap …`` and the macvlan part of
``ip -d link`` (iproute2 6.1 ip/iplink_macvlan.c; the kernel side is
drivers/net/macvlan.c ``macvlan_validate``/``macvlan_common_newlink``/``macvlan_changelink``).

The parser follows ``macvlan_parse_opt`` (usage and error texts measured on iproute2 6.1):
``mode``, ``flag``, ``macaddr add|del|set|flush``, ``nopromisc``, ``nodst``,
``bcqueuelen``; ``nopromisc`` is refused by iproute2 itself outside passthru.  The output
follows ``macvlan_print_opt``: ``mode M [nopromisc] [nodst] bcqueuelen N usedbcqueuelen N``
and, in source mode, ``remotes (COUNT) MAC…`` in the kernel's hash-bucket order.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Args, get_unsigned, mac_str, matches, no_device, parse_lladdr
from netstack.cli.iplink_bridge import newlink_finish
from netstack.drivers.macvlan import (MACVLAN_FLAG_NODST, MACVLAN_FLAG_NOPROMISC,
                                      MACVLAN_MACADDR_ADD, MACVLAN_MACADDR_DEL,
                                      MACVLAN_MACADDR_FLUSH, MACVLAN_MACADDR_SET,
                                      MACVLAN_MODE_BRIDGE, MACVLAN_MODE_PASSTHRU,
                                      MACVLAN_MODE_PRIVATE, MACVLAN_MODE_SOURCE,
                                      MACVLAN_MODE_VEPA, MODE_NAMES, MacvlanDevice,
                                      macvlan_changelink, macvlan_common_newlink)
from netstack.drivers.macvtap import macvtap_newlink
from netstack.errors import KernelError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.cli.iplink import LinkReq

USAGE = ("Usage: ... {kind} mode MODE [flag MODE_FLAG] MODE_OPTS [bcqueuelen BC_QUEUE_LEN]\n"
         "\n"
         "MODE: private | vepa | bridge | passthru | source\n"
         "MODE_FLAG: null | nopromisc | nodst\n"
         "MODE_OPTS: for mode \"source\":\n"
         "\tmacaddr { { add | del } <macaddr> | set [ <macaddr> [ <macaddr>  ... ] ] "
         "| flush }\n"
         "BC_QUEUE_LEN: Length of the rx queue for broadcast/multicast: [0-4294967295]\n")

_MODES = {"private": MACVLAN_MODE_PRIVATE, "vepa": MACVLAN_MODE_VEPA,
          "bridge": MACVLAN_MODE_BRIDGE, "passthru": MACVLAN_MODE_PASSTHRU,
          "source": MACVLAN_MODE_SOURCE}
_MACADDR_MODES = {"add": MACVLAN_MACADDR_ADD, "del": MACVLAN_MACADDR_DEL,
                  "set": MACVLAN_MACADDR_SET, "flush": MACVLAN_MACADDR_FLUSH}


@dataclass
class MacvlanOpts:
    """The IFLA_INFO_DATA attributes ``macvlan_parse_opt`` put in the request."""

    mode: int | None = None
    flags: int | None = None
    macaddr_mode: int | None = None
    macaddrs: list[bytes] = field(default_factory=list)
    bc_queue_len: int | None = None


def _usage(kind: str, prefix: str = "") -> ToolError:
    return ToolError(prefix + USAGE.replace("{kind}", kind), 1)


def _lladdr(text: str) -> bytes | None:
    """``ll_addr_a2n`` + the ETH_ALEN check: a bad text prints iproute2's message, a wrong
    length gives None (the caller decides)."""
    mac = parse_lladdr(text)
    return mac if len(mac) == 6 else None


def parse_macvlan_opts(argv: list[str], kind: str = "macvlan",
                       warn: Any = None) -> MacvlanOpts:
    """``macvlan_parse_opt``; ``warn(text)`` receives what ``ll_addr_a2n`` prints for a
    word that ends a ``macaddr set`` list (the command goes on)."""
    o = MacvlanOpts()
    flags = 0
    has_flags = False
    mode = 0
    args = Args(argv)
    while args:
        a = args.cur
        if matches(a, "mode"):
            v = args.next_arg()
            if v not in _MODES:
                raise ToolError('Error: argument of "mode" must be "private", "vepa", '
                                f'"bridge", "passthru" or "source", not "{v}"\n', 1)
            mode = _MODES[v]
        elif matches(a, "flag"):
            v = args.next_arg()
            if v == "nopromisc":
                flags |= MACVLAN_FLAG_NOPROMISC
            elif v == "nodst":
                flags |= MACVLAN_FLAG_NODST
            elif v != "null":
                raise ToolError('Error: argument of "flag" must be "nopromisc", "nodst" or '
                                f'"null", not "{v}"\n', 1)
            has_flags = True
        elif matches(a, "macaddr"):
            v = args.next_arg()
            if v not in _MACADDR_MODES:
                raise _usage(kind)
            o.macaddr_mode = _MACADDR_MODES[v]
            if v in ("add", "del"):
                mac = _lladdr(args.next_arg())
                if mac is None:
                    raise ToolError("", 1)
                o.macaddrs = [mac]
            elif v == "set":
                o.macaddrs = []
                while args.i + 1 < len(args.argv):
                    try:
                        mac = _lladdr(args.argv[args.i + 1])
                    except ToolError as e:
                        # ll_addr_a2n printed its message; the word is parsed as an option
                        if warn is not None:
                            warn(e.stderr)
                        break
                    if mac is None:
                        break
                    args.advance()
                    o.macaddrs.append(mac)
        elif matches(a, "nopromisc"):
            flags |= MACVLAN_FLAG_NOPROMISC
            has_flags = True
        elif matches(a, "nodst"):
            flags |= MACVLAN_FLAG_NODST
            has_flags = True
        elif matches(a, "bcqueuelen"):
            v = args.next_arg()
            n = get_unsigned(v)
            if n is None:
                raise ToolError('Error: argument of "bcqueuelen" must be a positive integer '
                                f'[0-4294967295], not "{v}"\n', 1)
            o.bc_queue_len = n
        elif matches(a, "help"):
            raise _usage(kind)
        else:
            raise _usage(kind, f'{kind}: unknown option "{a}"?\n')
        args.advance()
    if mode:
        o.mode = mode
    if has_flags:
        if flags & MACVLAN_FLAG_NOPROMISC and mode != MACVLAN_MODE_PASSTHRU:
            raise _usage(kind, f"{kind}: nopromisc flag only valid in passthru mode\n")
        o.flags = flags
    return o


def lower_newlink_checks(ctx: "Ctx", req: "LinkReq", net: Any, kind: str,
                         macs: "list[bytes] | tuple[bytes, ...]" = ()) -> tuple[Any, str]:
    """What ``rtnl_newlink`` and the driver's validate/newlink check, in the kernel's order,
    before a device stacked on a lower one (macvlan/macvtap, ipvlan/ipvtap) is created:
    ``link DEV`` must exist (iproute2's "Cannot find device"); IFLA_ADDRESS 6 bytes
    (EINVAL), unicast and non-zero (EADDRNOTAVAIL, ``macvlan_validate``/``eth_validate_addr``),
    likewise each source-mode ``macs``; IFNAMSIZ and a free name/ifindex (EINVAL/EEXIST);
    a lower device and an MTU of 68 or more (EINVAL).  Returns (lower, name), the name
    allocated as ``KIND%d`` when none was given (``dev_alloc_name``)."""
    lower = None
    if req.link is not None:
        lower = ctx.net.get(req.link)
        if lower is None:
            raise no_device(req.link)
    if req.address is not None:
        if len(req.address) != 6:
            raise KernelError(errno.EINVAL)
        if req.address[0] & 1 or req.address == b"\0" * 6:
            raise KernelError(errno.EADDRNOTAVAIL)
    for mac in macs:
        if mac[0] & 1 or mac == b"\0" * 6:
            raise KernelError(errno.EADDRNOTAVAIL)
    name = req.name or req.dev
    if name is not None and len(name) >= 16:
        raise KernelError(errno.EINVAL, "Attribute failed policy validation")
    if name is not None and name in net.devices:
        raise KernelError(errno.EEXIST)
    if req.index is not None and req.index in net.by_index:
        raise KernelError(errno.EEXIST)
    if lower is None or (req.mtu is not None and req.mtu < 68):
        raise KernelError(errno.EINVAL)
    if name is None:
        i = 0
        while f"{kind}{i}" in net.devices:
            i += 1
        name = f"{kind}{i}"
    return lower, name


def link_add(ctx: "Ctx", req: "LinkReq", net: Any) -> None:
    """``rtnl_newlink`` for kind macvlan/macvtap: ``macvlan_validate`` then
    ``macvlan_common_newlink`` (``macvtap_newlink`` for a macvtap)."""
    kind = req.kind or "macvlan"
    o = parse_macvlan_opts(req.type_args, kind, ctx.stderr.write)
    lower, name = lower_newlink_checks(ctx, req, net, kind, o.macaddrs)
    # macvtap_newlink: the same, with the tap queue's rx_handler (drivers/net/macvtap.c)
    newlink = macvtap_newlink if kind == "macvtap" else macvlan_common_newlink
    dev = newlink(net, name, lower,
                                 o.mode if o.mode is not None else MACVLAN_MODE_VEPA,
                                 o.flags or 0, req.address, req.mtu, o.bc_queue_len,
                                 o.macaddr_mode, o.macaddrs, req.index or 0)
    newlink_finish(net, dev, req)


def link_change(ctx: "Ctx", req: "LinkReq", dev: MacvlanDevice) -> None:
    """``ip link set DEV type macvlan …``: ``macvlan_changelink``."""
    o = parse_macvlan_opts(req.type_args, req.kind or "macvlan", ctx.stderr.write)
    for mac in o.macaddrs:
        if mac[0] & 1 or mac == b"\0" * 6:
            raise KernelError(errno.EADDRNOTAVAIL)
    macvlan_changelink(dev, o.mode, o.flags, o.bc_queue_len, o.macaddr_mode, o.macaddrs)


# ------------------------------------------------------------------------ output
def info_data_text(dev: MacvlanDevice) -> str:
    """``macvlan_print_opt`` text, after ``macvlan ``."""
    s = f"mode {MODE_NAMES.get(dev.mode, 'unknown')} "
    if dev.macvlan_flags & MACVLAN_FLAG_NOPROMISC:
        s += "nopromisc "
    if dev.macvlan_flags & MACVLAN_FLAG_NODST:
        s += "nodst "
    s += f"bcqueuelen {dev.bc_queue_len_req} usedbcqueuelen {dev.port.bc_queue_len_used} "
    if dev.mode == MACVLAN_MODE_SOURCE:
        s += f"remotes ({dev.macaddr_count}) "
        for a in dev.port.source_entries(dev):
            s += mac_str(a) + " "
    return s


def info_data_json(dev: MacvlanDevice) -> dict[str, Any]:
    """``macvlan_print_opt`` JSON (``info_data``)."""
    d: dict[str, Any] = {"mode": MODE_NAMES.get(dev.mode, "unknown")}
    if dev.macvlan_flags & MACVLAN_FLAG_NOPROMISC:
        d["nopromisc"] = True
    if dev.macvlan_flags & MACVLAN_FLAG_NODST:
        d["nodst"] = True
    d["bcqueuelen"] = dev.bc_queue_len_req
    d["usedbcqueuelen"] = dev.port.bc_queue_len_used
    if dev.mode == MACVLAN_MODE_SOURCE:
        d["macaddr_count"] = dev.macaddr_count
        entries = dev.port.source_entries(dev)
        if entries:
            d["macaddr_data"] = [mac_str(a) for a in entries]
    return d
