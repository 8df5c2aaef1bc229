"""``ip maddress`` (iproute2 6.1 ip/ipmaddr.c).

``show [dev D]`` reads what iproute2 reads from procfs: ``/proc/net/dev_mcast`` (link
entries: ``dev->mc``, refcount as ``users``, ``global_use`` as ``static``,
netstack/core/dev_addr_lists.py), ``/proc/net/igmp`` (IPv4 groups, newest first,
netstack/ipv4/igmp.py) and ``/proc/net/igmp6`` (the IPv6 groups of
netstack/ipv6/addrconf.py, newest first); entries are grouped by ifindex keeping that
read order (``maddr_ins``).  ``-4``/``-6``/``-0`` keep one family.  ``add|del LLADDR dev
D`` is ``SIOCADDMULTI``/``SIOCDELMULTI`` (``dev_mc_add_global``/``dev_mc_del_global``).
"""
from __future__ import annotations

import errno
import ipaddress
import os
from typing import TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import (AF_INET, AF_INET6, duparg, duparg2, incomplete, matches,
                                   parse_lladdr)
from netstack.cli.jsonout import dumps
from netstack.core.dev_addr_lists import dev_mc_add_global, dev_mc_del_global, dev_mc_list
from netstack.errors import KernelError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice

AF_PACKET = 17
IFF_LOOPBACK = 0x8
USAGE = ("Usage: ip maddr [ add | del ] MULTIADDR dev STRING\n"
         "       ip maddr show [ dev STRING ]\n")


def _usage() -> ToolError:
    return ToolError(USAGE, 255)


def _entries(net: "Net", family: int, devname: str | None) -> list[dict[str, Any]]:
    """(index, name, family, address text, users, static) in ``maddr_ins`` order."""
    from netstack.ipv4.igmp import ip_mc_groups
    rows: list[dict[str, Any]] = []
    devs = sorted(net.devices.values(), key=lambda d: d.ifindex)
    if family in (0, AF_PACKET):
        for d in devs:
            if devname is not None and d.name != devname:
                continue
            for ha in dev_mc_list(d):
                rows.append(dict(index=d.ifindex, name=d.name, family=AF_PACKET,
                                 addr=":".join(f"{b:02x}" for b in ha.addr),
                                 users=ha.refcount, static=ha.global_use))
    if family in (0, AF_INET):
        for d in devs:
            if devname is not None and d.name != devname:
                continue
            for group, users in ip_mc_groups(d):
                rows.append(dict(index=d.ifindex, name=d.name, family=AF_INET,
                                 addr=str(ipaddress.IPv4Address(group)), users=users,
                                 static=False))
    if family in (0, AF_INET6):
        for d in devs:
            if devname is not None and d.name != devname:
                continue
            idev = getattr(d, "ip6_ptr", None)
            groups = getattr(idev, "mc", None) or {}
            for group, users in reversed(list(groups.items())):
                rows.append(dict(index=d.ifindex, name=d.name, family=AF_INET6,
                                 addr=str(ipaddress.IPv6Address(group)), users=users,
                                 static=False))
    rows.sort(key=lambda r: r["index"])  # stable: maddr_ins keeps the read order per index
    return rows


def _show(ctx: "Ctx", argv: list[str]) -> int:
    """``multiaddr_list``."""
    devname: str | None = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "dev":
            i += 1
            if i >= len(argv):
                raise incomplete()
            a = argv[i]
        elif matches(a, "help"):
            raise _usage()
        if devname is not None:
            raise duparg2("dev", a)
        devname = a
        i += 1
    family = ctx.family
    rows = _entries(ctx.net, family, devname)
    if ctx.json:
        out: list[dict[str, Any]] = []
        cur = 0
        for r in rows:
            if r["index"] != cur or ctx.oneline:
                cur = r["index"]
                out.append({"ifindex": cur, "ifname": r["name"], "maddr": []})
            e: dict[str, Any]
            if r["family"] == AF_PACKET:
                e = {"link": r["addr"]}
            else:
                e = {"family": "inet" if r["family"] == AF_INET else "inet6",
                     "address": r["addr"]}
            if r["users"] != 1:
                e["users"] = r["users"]
            if r["static"]:
                e["features"] = "static"
            out[-1]["maddr"].append(e)
        ctx.stdout.write(dumps(out, ctx.pretty) + "\n")
        return 0
    text: list[str] = []
    cur = 0
    for r in rows:
        if r["index"] != cur or ctx.oneline:
            cur = r["index"]
            text.append(f"{cur}:\t{r['name']}" + ("\\" if ctx.oneline else "\n"))
        if r["family"] == AF_PACKET:
            line = f"\tlink  {r['addr']}"
        else:
            fam = "inet" if r["family"] == AF_INET else "inet6"
            line = f"\t{fam:<5s} {r['addr']}"
        if r["users"] != 1:
            line += f" users {r['users']}"
        if r["static"]:
            line += " static"
        text.append(line + "\n")
    ctx.stdout.write("".join(text))
    return 0


def _modify(ctx: "Ctx", argv: list[str], add: bool) -> int:
    """``multiaddr_modify``: the ioctl, ``perror("ioctl")`` and exit 1 on failure."""
    devname = ""
    addr: bytes | None = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "dev":
            i += 1
            if i >= len(argv):
                raise incomplete()
            if devname:
                raise duparg("dev", argv[i])
            if len(argv[i]) >= 16 or "/" in argv[i] or " " in argv[i]:
                raise ToolError(f'Error: argument "{argv[i]}" is wrong: '
                                '"dev" not a valid ifname\n', 255)
            devname = argv[i]
        else:
            if matches(a, "address"):
                i += 1
                if i >= len(argv):
                    raise incomplete()
                a = argv[i]
            if matches(a, "help"):
                raise _usage()
            if addr is not None and addr[:1] != b"\x00":
                raise duparg("address", a)
            addr = parse_lladdr(a)
        i += 1
    if not devname:
        raise ToolError('Not enough information: "dev" is required.\n', 255)
    dev = ctx.net.get(devname)
    try:
        if dev is None:
            raise KernelError(errno.ENODEV)
        _ioctl(dev, addr or b"", add)
    except KernelError as e:
        raise ToolError(f"ioctl: {os.strerror(e.errno)}\n", 1) from None
    return 0


def _ioctl(dev: "NetDevice", addr: bytes, add: bool) -> None:
    """``dev_ifsioc`` SIOCADDMULTI/SIOCDELMULTI: a device without ``ndo_set_rx_mode``
    (loopback) refuses with EINVAL; the address is ``dev->addr_len`` bytes of
    ``ifr_hwaddr.sa_data`` (the rest of the 14 zero-filled)."""
    if dev.flags & IFF_LOOPBACK:
        raise KernelError(errno.EINVAL)
    a = (addr + bytes(14))[:len(dev.address) or 6]
    if add:
        dev_mc_add_global(dev, a)
    else:
        dev_mc_del_global(dev, a)


def main(ctx: "Ctx", argv: list[str]) -> int:
    """``do_multiaddr``."""
    if not argv:
        return _show(ctx, [])
    cmd, rest = argv[0], argv[1:]
    if matches(cmd, "add"):
        return _modify(ctx, rest, True)
    if matches(cmd, "delete"):
        return _modify(ctx, rest, False)
    if matches(cmd, "list") or matches(cmd, "show") or matches(cmd, "lst"):
        return _show(ctx, rest)
    if matches(cmd, "help"):
        raise _usage()
    raise ToolError(f'Command "{cmd}" is unknown, try "ip maddr help".\n', 255)
