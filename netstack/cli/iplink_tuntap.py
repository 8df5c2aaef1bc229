"""The ``tun`` kind in ``ip link`` (iproute2 ip/iplink_tuntap.c; kernel drivers/net/tun.c
``tun_fill_info`` / ``tun_validate``).

A tun/tap cannot be created through rtnetlink: ``tun_validate`` answers EOPNOTSUPP with
"tun/tap creation via rtnetlink is not supported." — ``ip tuntap add`` is the way.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.drivers.tun import IFF_MULTI_QUEUE, IFF_NO_PI, IFF_TAP, IFF_VNET_HDR, TunDevice
from netstack.errors import KernelError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.cli.iplink import LinkReq
    from netstack.core.net_namespace import Net

_NAMES = {0: "root"}


def link_add(ctx: "Ctx", req: "LinkReq", net: "Net") -> None:
    """``tun_validate``: refused."""
    raise KernelError(errno.EOPNOTSUPP, "tun/tap creation via rtnetlink is not supported.")


def _id(n: int) -> str:
    return _NAMES.get(n, str(n))


def info_data_text(dev: TunDevice) -> str:
    """``tun_print_opt``: after ``tun ``."""
    f = dev.tun_flags
    s = (f"type {'tap' if f & IFF_TAP else 'tun'} pi {'off' if f & IFF_NO_PI else 'on'} "
         f"vnet_hdr {'on' if f & IFF_VNET_HDR else 'off'} ")
    if f & IFF_MULTI_QUEUE:
        s += f"multi_queue numqueues {dev.attached} numdisabled 0 "
    s += f"persist {'on' if f & 0x0800 else 'off'} "
    if dev.owner != -1:
        s += f"user {_id(dev.owner)} "
    if dev.group_id != -1:
        s += f"group {_id(dev.group_id)} "
    return s


def info_data_json(dev: TunDevice) -> dict[str, Any]:
    """``tun_print_opt`` JSON."""
    f = dev.tun_flags
    d: dict[str, Any] = {"type": "tap" if f & IFF_TAP else "tun", "pi": not f & IFF_NO_PI,
                         "vnet_hdr": bool(f & IFF_VNET_HDR),
                         "multi_queue": bool(f & IFF_MULTI_QUEUE)}
    if f & IFF_MULTI_QUEUE:
        d["numqueues"] = dev.attached
        d["numdisabled"] = 0
    d["persist"] = bool(f & 0x0800)
    if dev.owner != -1:
        d["user"] = _id(dev.owner)
    if dev.group_id != -1:
        d["group"] = _id(dev.group_id)
    return d
