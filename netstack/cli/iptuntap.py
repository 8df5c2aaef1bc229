"""``ip tuntap`` (iproute2 ip/iptuntap.c): add/del/show persistent tun/tap devices.

The real tool opens /dev/net/tun, issues TUNSETIFF with the flags it parsed (IFF_NO_PI
unless ``pi``), TUNSETOWNER/TUNSETGROUP, then TUNSETPERSIST; ``del`` re-opens the device
with the given mode (a mismatch is "ioctl(TUNSETIFF): Invalid argument") and clears
persist — so deleting a device that does not exist succeeds silently.  ``show`` lists the
tun devices of the namespace from sysfs (``tun_flags``, ``owner``, ``group``).
"""
from __future__ import annotations

import errno
from typing import Any

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Ctx
from netstack.drivers.tun import (IFF_MULTI_QUEUE, IFF_NO_PI, IFF_ONE_QUEUE, IFF_TAP, IFF_TUN,
                                  IFF_VNET_HDR, TunDevice, tun_create)
from netstack.errors import KernelError

USAGE = ("Usage: ip tuntap { add | del | show | list | lst | help } [ dev PHYS_DEV ]\n"
         "       [ mode { tun | tap } ] [ user USER ] [ group GROUP ]\n"
         "       [ one_queue ] [ pi ] [ vnet_hdr ] [ multi_queue ] [ name NAME ]\n"
         "\n"
         "Where: USER  := { STRING | NUMBER }\n"
         "       GROUP := { STRING | NUMBER }\n")
_TYPE_MASK = IFF_TUN | IFF_TAP
_USERS = {"root": 0}
_GROUPS = {"root": 0}


def _matches(word: str, full: str) -> bool:
    return bool(word) and full.startswith(word)


def _parse(args: list[str]) -> tuple[str, int, int, int]:
    """``parse_args``: (name, flags, owner, group)."""
    name = ""
    flags = IFF_NO_PI
    owner = -1
    group = -1
    i = 0
    while i < len(args):
        a = args[i]
        if a == "mode":
            i += 1
            m = args[i] if i < len(args) else ""
            if _matches(m, "tun"):
                if flags & _TYPE_MASK:
                    raise ToolError("You managed to ask for more than one tunnel mode.\n", 255)
                flags |= IFF_TUN
            elif _matches(m, "tap"):
                if flags & _TYPE_MASK:
                    raise ToolError("You managed to ask for more than one tunnel mode.\n", 255)
                flags |= IFF_TAP
            else:
                raise ToolError(f'Unknown tunnel mode "{m}"\n', 255)
        elif a in ("user", "group"):
            i += 1
            v = args[i] if i < len(args) else ""
            table = _USERS if a == "user" else _GROUPS
            if v in table:
                n = table[v]
            elif v.isdigit():
                n = int(v)
            else:
                raise ToolError(f'{a} "{v}" is invalid\n', 255)
            if a == "user":
                owner = n
            else:
                group = n
        elif _matches(a, "pi"):
            flags &= ~IFF_NO_PI
        elif _matches(a, "one_queue"):
            flags |= IFF_ONE_QUEUE
        elif _matches(a, "vnet_hdr"):
            flags |= IFF_VNET_HDR
        elif _matches(a, "multi_queue"):
            flags |= IFF_MULTI_QUEUE
        elif a == "dev" or a == "name":
            i += 1
            if i >= len(args):
                raise ToolError('Command line is not complete. Try option "help"\n', 255)
            if name:
                raise ToolError(f'Error: either "{a}" is duplicate, or "{args[i]}" is a '
                                "garbage.\n", 255)
            name = args[i]
        else:
            if name:
                raise ToolError(f'Error: either "name" is duplicate, or "{a}" is a garbage.\n',
                                255)
            name = a
        i += 1
    if not flags & _TYPE_MASK:
        raise ToolError("You failed to specify a tunnel mode\n", 1)
    return name, flags, owner, group


def _pick_name(ctx: Ctx, flags: int) -> str:
    """``dev_get_valid_name`` with "tun%d"/"tap%d": the lowest free number."""
    base = "tap" if flags & IFF_TAP else "tun"
    i = 0
    while f"{base}{i}" in ctx.net.devices:
        i += 1
    return f"{base}{i}"


def _add(ctx: Ctx, args: list[str]) -> int:
    name, flags, owner, group = _parse(args)
    if not name:
        name = _pick_name(ctx, flags)
    if name in ctx.net.devices:
        raise ToolError("ioctl(TUNSETIFF): Device or resource busy\n", 1)
    try:
        tun_create(ctx.net, name, flags, ctx.world.random_mac(), owner, group)
    except KernelError as e:
        raise ToolError(f"ioctl(TUNSETIFF): {_strerror(e.errno)}\n", 1) from e
    return 0


def _strerror(err: int) -> str:
    import os
    return os.strerror(err)


def _del(ctx: Ctx, args: list[str]) -> int:
    name, flags, _owner, _group = _parse(args)
    dev = ctx.net.devices.get(name) if name else None
    if dev is None:
        return 0
    if not isinstance(dev, TunDevice):
        raise ToolError(f"ioctl(TUNSETIFF): {_strerror(errno.EINVAL)}\n", 1)
    want = dev.tun_flags & (_TYPE_MASK | IFF_NO_PI | IFF_ONE_QUEUE | IFF_VNET_HDR
                            | IFF_MULTI_QUEUE)
    if (flags & _TYPE_MASK) != (want & _TYPE_MASK) or \
            bool(flags & IFF_MULTI_QUEUE) != bool(want & IFF_MULTI_QUEUE):
        raise ToolError(f"ioctl(TUNSETIFF): {_strerror(errno.EINVAL)}\n", 1)
    if dev.attached:
        dev.tun_flags &= ~0x0800  # persist off; the fd holder keeps it until close
        return 0
    ctx.net.unregister_netdevice(dev)
    return 0


def flag_words(dev: TunDevice) -> list[str]:
    """``print_flags`` of iptuntap.c, in its order."""
    f = dev.tun_flags
    words = ["tap" if f & IFF_TAP else "tun"]
    if not f & IFF_NO_PI:
        words.append("pi")
    if f & IFF_ONE_QUEUE:
        words.append("one_queue")
    if f & IFF_VNET_HDR:
        words.append("vnet_hdr")
    if f & IFF_MULTI_QUEUE:
        words.append("multi_queue")
    if f & 0x0800:
        words.append("persist")
    if f & IFF_MULTI_QUEUE:
        words.append("filter")
    return words


def _show(ctx: Ctx, args: list[str]) -> int:
    devs = sorted((d for d in ctx.net.devices.values() if isinstance(d, TunDevice)),
                  key=lambda d: d.ifindex)
    if ctx.json:
        import json
        out: list[dict[str, Any]] = []
        for d in devs:
            e: dict[str, Any] = {"ifname": d.name, "flags": flag_words(d)}
            if d.owner != -1:
                e["user"] = d.owner
            if d.group_id != -1:
                e["group"] = d.group_id
            out.append(e)
        ctx.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
        return 0
    for d in devs:
        line = f"{d.name}: " + " ".join(flag_words(d))
        if d.owner != -1:
            line += f" user {d.owner}"
        if d.group_id != -1:
            line += f" group {d.group_id}"
        ctx.stdout.write(line + "\n")
    return 0


def main(ctx: Ctx, args: list[str]) -> int:
    """``do_iptuntap``."""
    if not args:
        return _show(ctx, [])
    cmd, rest = args[0], args[1:]
    if _matches(cmd, "add"):
        return _add(ctx, rest)
    if _matches(cmd, "delete"):
        return _del(ctx, rest)
    if _matches(cmd, "show") or _matches(cmd, "lst") or _matches(cmd, "list"):
        return _show(ctx, rest)
    if _matches(cmd, "help"):
        raise ToolError(USAGE, 255)
    raise ToolError(f'Command "{cmd}" is unknown, try "ip tuntap help".\n', 255)
