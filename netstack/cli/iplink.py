"""``ip link`` (ip/iplink.c, ip/link_veth.c): parse → validate → apply.

The parser follows ``iplink_parse`` keyword by keyword (``strcmp`` vs ``matches``
abbreviation per keyword, ``type`` ending the generic options, ``peer`` starting a second
``iplink_parse`` for veth), and the apply step follows ``do_setlink``'s order (netns move,
address, MTU, name, alias, flags, txqlen) with ``dev_validate_mtu`` /
``is_valid_ether_addr`` checks done before anything changes, so a failing command leaves
the namespace as it was.
"""
from __future__ import annotations

import errno
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netstack.cli import fmt_link
from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import (
    Args, Ctx, duparg, duparg2, get_integer, invarg, kernel_error, matches, no_device,
)
from netstack.cli.ipcommon import parse_lladdr
from netstack.cli.jsonout import dumps
from netstack.core.net_namespace import (
    NETDEV_CHANGE, NETDEV_CHANGEADDR, NETDEV_CHANGEMTU, DeviceExists,
)
from netstack.core.netdevice import (
    IFF_ALLMULTI, IFF_MULTICAST, IFF_NOARP, IFF_NOTRAILERS, IFF_PROMISC,
)
from netstack.core.world import NetnsError
from netstack.errors import KernelError, NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice

IFNAMSIZ = 16
IFALIASZ = 256
_NETNS_LOCAL_MSG = "The interface netns is immutable"
ALTIFNAMSIZ = 128
#: ``type KIND`` → the module ``netstack.cli.iplink_<NAME>`` that implements the kind
#: (ip/iplink_*.c + the driver's rtnl_link_ops).  Such a module provides
#: ``link_add(ctx, req, net)`` (parse ``req.type_args``, validate, create, register),
#: optionally ``link_change(ctx, req, dev)`` (``ip link set DEV type KIND …``: the
#: driver's ``changelink``/``slave_changelink``, run before the generic changes as in
#: ``rtnl_newlink``), ``info_data_text(dev)`` / ``info_data_json(dev)`` (``ip -d``).
#: A kind whose module does not exist (yet) is "not supported".
_KIND_MODULES = {
    "vlan": "vlan",
    "bridge": "bridge", "bridge_slave": "bridge_slave",
    "bond": "bond", "bond_slave": "bond_slave",
    "macvlan": "macvlan", "macvtap": "macvlan", "ipvlan": "ipvlan", "ipvtap": "ipvlan",
    "vxlan": "vxlan", "geneve": "geneve",
    "gre": "gre", "gretap": "gre", "ip6gre": "gre", "ip6gretap": "gre",
    "ipip": "iptnl", "sit": "iptnl", "ip6tnl": "iptnl",
    "tun": "tuntap", "tap": "tuntap",
}


def kind_module(kind: str) -> Any:
    """The CLI module implementing ``type KIND``, or None (see :data:`_KIND_MODULES`)."""
    name = _KIND_MODULES.get(kind)
    if name is None:
        return None
    modname = f"netstack.cli.iplink_{name}"
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as e:
        if e.name != modname:
            raise
        return None


#: Kinds the kernel knows but netstack does not model (so the error is "not supported",
#: not the kernel's "Unknown device type").
_KNOWN_UNMODELLED = {"bridge", "bond", "macvlan", "macvtap", "ipvlan", "ipvtap",
                     "vxlan", "gre", "gretap", "ip6gre", "ipip", "sit", "ip6tnl", "vrf",
                     "geneve", "wireguard", "team", "nlmon", "ifb", "netdevsim", "tun",
                     "tap", "bareudp", "macsec", "xfrm", "vti", "ip6vti", "erspan", "hsr",
                     "batadv", "can", "vcan", "vxcan", "gtp", "rmnet", "ipoib"}


#: ``ip link set DEV WORD on|off``: (IFF_* bit, True when "on" clears it).
_FLAG_WORDS = {"multicast": (IFF_MULTICAST, False), "allmulticast": (IFF_ALLMULTI, False),
               "promisc": (IFF_PROMISC, False), "trailers": (IFF_NOTRAILERS, True),
               "arp": (IFF_NOARP, True)}
#: ``addrgenmode`` words (ip/iplink.c) → enum in6_addr_gen_mode.
_ADDRGENMODES = {"eui64": 0, "none": 1, "stable_secret": 2, "random": 3}
#: dev_change_flags sends NETDEV_CHANGE for these when the device is up.
_NOTIFY_FLAGS = IFF_MULTICAST | IFF_NOARP | IFF_NOTRAILERS


def check_ifname(name: str) -> bool:
    """lib/utils.c ``check_ifname``: non-empty, < IFNAMSIZ, no '/', ':' or blanks."""
    return bool(name) and len(name) < IFNAMSIZ and not any(c in name for c in "/: \t\n")


@dataclass
class LinkReq:
    """What one ``iplink_parse`` collected (the RTM_NEWLINK request)."""

    dev: str | None = None
    name: str | None = None
    up: bool | None = None
    address: bytes | None = None
    mtu: int | None = None
    txqlen: int | None = None
    netns: str | None = None
    alias: str | None = None
    #: IFLA_INET6_ADDR_GEN_MODE (``addrgenmode``)
    addrgenmode: int | None = None
    index: int | None = None
    kind: str | None = None
    #: IFF_* bits to set / clear (multicast, allmulticast, promisc, arp, trailers)
    flags_on: int = 0
    flags_off: int = 0
    peer: "LinkReq | None" = None
    #: ``link DEV`` (IFLA_LINK): the lower device of a stacked device (vlan)
    link: str | None = None
    #: ``master DEV`` / ``nomaster`` (IFLA_MASTER; 0 = nomaster)
    master: str | None = None
    nomaster: bool = False
    type_args: list[str] = field(default_factory=list)


def iplink_parse(args: Args, req: LinkReq) -> None:
    """Generic link options, until ``type`` (whose remaining argv is kept for the kind)."""
    while args:
        a = args.cur
        if a == "up":
            req.up = True
        elif a == "down":
            req.up = False
        elif a == "name":
            v = args.next_arg()
            if req.name is not None:
                raise duparg("name", v)
            if not check_ifname(v):
                raise invarg('"name" not a valid ifname', v)
            req.name = v
            if req.dev is None:
                req.dev = v
        elif a == "index":
            v = args.next_arg()
            if req.index is not None:
                raise duparg("index", v)
            n = get_integer(v)  # atoi() in iproute2; a non-number reads as 0
            if n is None or n <= 0:
                raise invarg('Invalid "index" value', v)
            req.index = n
        elif matches(a, "link"):
            req.link = args.next_arg()
        elif matches(a, "address"):
            req.address = parse_lladdr(args.next_arg())
        elif matches(a, "broadcast") or a == "brd":
            raise NotSupported("ip link ... broadcast")
        elif matches(a, "txqueuelen") or a == "qlen" or matches(a, "txqlen"):
            v = args.next_arg()
            if req.txqlen is not None:
                raise duparg("txqueuelen", v)
            n = get_integer(v)
            if n is None:
                raise invarg('Invalid "txqueuelen" value\n', v)
            req.txqlen = n
        elif a == "mtu":
            v = args.next_arg()
            if req.mtu is not None:
                raise duparg("mtu", v)
            n = get_integer(v)
            if n is None:
                raise invarg('Invalid "mtu" value\n', v)
            req.mtu = n
        elif a == "netns":
            v = args.next_arg()
            if req.netns is not None:
                raise duparg("netns", v)
            req.netns = v
        elif a in _FLAG_WORDS:
            v = args.next_arg()
            if v not in ("on", "off"):
                raise ToolError(f'Error: argument of "{a}" must be "on" or "off", not '
                                f'"{v}"\n', 1)
            bit, inverted = _FLAG_WORDS[a]
            if (v == "on") != inverted:
                req.flags_on |= bit
                req.flags_off &= ~bit
            else:
                req.flags_off |= bit
                req.flags_on &= ~bit
        elif matches(a, "master"):
            v = args.next_arg()
            req.master = v
            req.nomaster = False
        elif a == "nomaster":
            req.nomaster = True
            req.master = None
        elif a in ("dynamic", "carrier", "group", "mode", "state", "vf", "protodown",
                   "gso_max_size",
                   "gso_max_segs", "gro_max_size") \
                or matches(a, "numtxqueues") or matches(a, "numrxqueues"):
            raise NotSupported(f"ip link ... {a}")
        elif matches(a, "type"):
            req.kind = args.next_arg()
            args.advance()
            req.type_args = args.rest()
            args.i = len(args.argv)
            return
        elif a == "addrgenmode":
            v = args.next_arg()
            if v not in _ADDRGENMODES:
                raise invarg("Invalid address generation mode\n", v)
            if v in ("stable_secret", "random"):
                raise NotSupported(f"ip link ... addrgenmode {v}")
            req.addrgenmode = _ADDRGENMODES[v]
        elif matches(a, "alias"):
            v = args.next_arg()
            if len(v) >= IFALIASZ:
                raise invarg("alias too long\n", v)
            req.alias = v
        else:
            if matches(a, "help"):
                raise NotSupported("ip link help")
            if a == "dev":
                a = args.next_arg()
            if req.dev != req.name:
                raise duparg2("dev", a)
            if not a or len(a) >= ALTIFNAMSIZ or any(c in a for c in "/: \t\n"):
                raise invarg('"dev" not a valid ifname', a)  # check_altifname
            req.dev = a
        args.advance()


def _parse_veth(req: LinkReq) -> None:
    """ip/link_veth.c: nothing, or ``peer`` followed by a second set of link options."""
    rest = req.type_args
    if not rest:
        return
    if rest[0] != "peer":
        raise ToolError("", 1, stdout="Usage: ip link <options> type veth [peer <options>]\n"
                                      "To get <options> type 'ip link add help'\n")
    peer = LinkReq()
    iplink_parse(Args(rest[1:]), peer)
    if peer.kind is not None:
        raise NotSupported("ip link add ... type veth peer ... type")
    req.peer = peer


# ------------------------------------------------------------------ validation
def _netns_target(ctx: Ctx, spec: str) -> "Net":
    """``netns_get_fd`` by name; a number would be a PID, which netstack does not have."""
    try:
        return ctx.world.netns(spec)
    except NetnsError:
        if get_integer(spec) is not None:
            raise NotSupported("ip link ... netns PID") from None
        raise invarg('Invalid "netns" value\n', spec) from None


def _check_mtu(dev: "NetDevice", mtu: int) -> None:
    """net/core/dev.c ``dev_validate_mtu``."""
    if mtu < 0 or mtu < dev.min_mtu:
        raise KernelError(errno.EINVAL, "mtu less than device minimum")
    if dev.max_mtu > 0 and mtu > dev.max_mtu:
        raise KernelError(errno.EINVAL, "mtu greater than device maximum")


def _check_mac(mac: bytes) -> None:
    """``eth_prepare_mac_addr_change``: 6 bytes (EINVAL), valid unicast (EADDRNOTAVAIL)."""
    if len(mac) != 6:
        raise KernelError(errno.EINVAL)
    if mac[0] & 1 or mac == b"\0" * 6:
        raise KernelError(errno.EADDRNOTAVAIL)


def _alloc_name(taken: set[str], template: str) -> str:
    """``dev_alloc_name``: the lowest free ``%d``."""
    i = 0
    while template % i in taken:
        i += 1
    return template % i


# ------------------------------------------------------------------------ add
def _link_add(ctx: Ctx, req: LinkReq) -> None:
    if req.kind is None:
        raise ToolError('Not enough information: "type" argument is required\n', 1)
    kind = req.kind
    master = _master_dev(ctx, req)
    mod = kind_module(kind)
    if mod is not None and hasattr(mod, "link_add"):
        net = _netns_target(ctx, req.netns) if req.netns is not None else ctx.net
        before = set(net.devices)
        mod.link_add(ctx, req, net)
        if master is not None:
            # rtnl_newlink_create: do_set_master after the device is registered
            new = [net.devices[n] for n in net.devices if n not in before]
            for dev in new[:1]:
                do_set_master(dev, master)
        return
    if req.link is not None:
        raise NotSupported(f"ip link add link DEV type {kind}")
    if kind == "veth":
        _parse_veth(req)
    elif kind == "dummy":
        if req.type_args:
            raise KernelError(errno.EOPNOTSUPP, "Unknown device type")
    elif kind in _KNOWN_UNMODELLED:
        raise NotSupported(f"ip link add type {kind}")
    else:
        raise KernelError(errno.EOPNOTSUPP, "Unknown device type")
    net = _netns_target(ctx, req.netns) if req.netns is not None else ctx.net
    peer = req.peer or LinkReq()
    # veth_newlink: the peer defaults to the namespace the request came from (src_net),
    # not to the one the device itself is created in.
    pnet = _netns_target(ctx, peer.netns) if peer.netns is not None else ctx.net
    name = req.name or req.dev
    if name is not None and len(name) >= IFNAMSIZ:
        raise KernelError(errno.EINVAL, "Attribute failed policy validation")
    for mac in (req.address, peer.address):
        if mac is not None:
            _check_mac(mac)
    for mtu, lo in ((req.mtu, 68), (peer.mtu, 68)):
        if mtu is not None and mtu < lo:
            raise KernelError(errno.EINVAL)
    world = ctx.world
    if kind == "dummy":
        from netstack.drivers.dummy import DummyDevice
        if name is None:
            name = _alloc_name(set(net.devices), "dummy%d")
        if name in net.devices:
            raise KernelError(errno.EEXIST)
        dev = DummyDevice(name, req.address or world.random_mac())
        if req.mtu is not None:
            _check_mtu(dev, req.mtu)
            dev.mtu = req.mtu
        if req.txqlen is not None:
            dev.txqlen = req.txqlen
        if req.alias:
            dev.alias = req.alias
        dev.flags = (dev.flags | req.flags_on) & ~req.flags_off
        if req.index is not None and req.index in net.by_index:
            raise KernelError(errno.EEXIST)
        net.register_netdevice(dev, ifindex=req.index or 0)
        if master is not None:
            do_set_master(dev, master)
        if req.up:
            net.dev_open(dev)
        return
    from netstack.drivers.veth import create_pair
    pname = peer.name or peer.dev
    if pname is None:
        pname = _alloc_name(set(pnet.devices) | ({name} if name and pnet is net else set()),
                            "veth%d")
    if pname in pnet.devices:
        raise KernelError(errno.EEXIST)
    if name is None:
        name = _alloc_name(set(net.devices) | ({pname} if pnet is net else set()), "veth%d")
    if name in net.devices or (pnet is net and name == pname):
        raise KernelError(errno.EEXIST)
    # rtnl_newlink finds a device with the requested index first (EEXIST); the peer's
    # index is only checked when it registers (dev_index_reserve: EBUSY), and so is the
    # device's against its just-registered peer.
    if req.index is not None and req.index in net.by_index:
        raise KernelError(errno.EEXIST)
    if peer.index is not None and peer.index in pnet.by_index:
        raise KernelError(errno.EBUSY)
    if req.index is not None and pnet is net and peer.index == req.index:
        raise KernelError(errno.EBUSY)
    # veth_newlink: the peer MAC is drawn first, then the device's.
    pmac = peer.address or world.random_mac()
    mac = req.address or world.random_mac()
    try:
        a, b = create_pair(net, name, mac, pnet, pname, pmac, req.index or 0, peer.index or 0)
    except DeviceExists:
        raise KernelError(errno.EEXIST) from None
    for dev, r in ((a, req), (b, peer)):
        if r.mtu is not None:
            dev.mtu = r.mtu
        if r.txqlen is not None:
            dev.txqlen = r.txqlen
        if r.alias:
            dev.alias = r.alias
        dev.flags = (dev.flags | r.flags_on) & ~r.flags_off
    if master is not None:
        do_set_master(a, master)
    if peer.up:
        pnet.dev_open(b)
    if req.up:
        net.dev_open(a)


# ------------------------------------------------------------------------ set
def _link_set(ctx: Ctx, req: LinkReq) -> None:
    if req.dev is None:
        raise ToolError('Not enough information: "dev" argument is required.\n', 255)
    if req.index is not None:
        if req.netns is None:
            raise ToolError("index can be used only when creating devices or when moving "
                            "device to another netns.\n", 255)
        raise NotSupported("ip link set ... netns NS index N")
    dev = ctx.net.get(req.dev)
    if dev is None:
        raise no_device(req.dev)
    master = _master_dev(ctx, req)
    if req.kind is not None:
        _link_change_kind(ctx, req, dev)
    new_name = req.name if req.name is not None and req.name != req.dev else None
    target = _netns_target(ctx, req.netns) if req.netns is not None else None
    # Validate everything before the first change (a real do_setlink can fail half way;
    # netstack prefers the "nothing applied" guarantee the scenario runner promises).
    if target is not None and target is not dev.net:
        if dev.netns_local:
            raise KernelError(errno.EINVAL, _NETNS_LOCAL_MSG)
        if (new_name or dev.name) in target.devices:
            raise KernelError(errno.EEXIST)
    if req.address is not None:
        _check_mac(req.address)
    if req.mtu is not None:
        _check_mtu(dev, req.mtu)
    change_mtu = getattr(dev, "change_mtu_check", None)
    if req.mtu is not None and change_mtu is not None:
        change_mtu(req.mtu)  # the driver's ndo_change_mtu refusal (macvlan: EINVAL)
    elif req.mtu is not None and getattr(dev, "real_dev", None) is not None \
            and req.mtu > dev.real_dev.mtu:  # type: ignore[attr-defined]
        raise KernelError(errno.ERANGE)  # vlan_dev_change_mtu: above the lower device's
    if req.link is not None:
        raise NotSupported("ip link set ... link DEV")
    if req.up is True and not dev.flags & 0x1:
        from netstack.drivers.vlan import vlan_open_check
        vlan_open_check(dev)  # vlan_dev_open: ENETDOWN while the lower device is down
    if req.addrgenmode is not None and dev.net is not None and \
            getattr(dev.net, "ipv6", None) is not None and dev.ip6_ptr is None:
        # inet6_validate_link_af: no inet6_dev on the device
        raise KernelError(errno.EAFNOSUPPORT)
    home = target if target is not None else dev.net
    if new_name is not None and new_name in home.devices:  # type: ignore[union-attr]
        raise KernelError(errno.EEXIST)
    net = dev.net
    assert net is not None
    if target is not None and target is not net:
        net.move_netdevice(dev, target)
        net = target
    if req.address is not None and req.address != dev.address:
        setter = getattr(dev, "set_mac_address", None)
        if setter is not None:
            # ndo_set_mac_address of a driver with rules (macvlan: EADDRINUSE, passthru
            # changes the lower device); it notifies NETDEV_CHANGEADDR itself
            setter(req.address)
        else:
            dev.address = req.address
            dev.addr_assign_type = 3  # NET_ADDR_SET
            net.notify(NETDEV_CHANGEADDR, dev)
    if req.mtu is not None and req.mtu != dev.mtu:
        dev.mtu = req.mtu
        net.notify(NETDEV_CHANGEMTU, dev)
    if master is not None or req.nomaster:
        # do_setlink: a requested "down" first (backward compat), then do_set_master,
        # then the other flag changes — so "master X up" enslaves before opening.
        if req.up is False:
            net.dev_close(dev)
        do_set_master(dev, master)
    if new_name is not None:
        net.rename_netdevice(dev, new_name)
    if req.alias is not None:
        dev.alias = req.alias
    _apply_flags(dev, req)
    if req.up is True:
        net.dev_open(dev)
    elif req.up is False:
        net.dev_close(dev)
    if req.txqlen is not None:
        dev.txqlen = req.txqlen
    if req.addrgenmode is not None:
        # inet6_set_link_af (IFLA_AF_SPEC, after the flags in do_setlink): only the knob
        # changes; the link-local address is generated with it at the next link-up.
        key = f"net.ipv6.conf.{dev.name}.addr_gen_mode"
        if key in net.sysctl.values:
            net.sysctl.values[key] = req.addrgenmode


def _master_dev(ctx: Ctx, req: LinkReq) -> "NetDevice | None":
    """iproute2 resolves ``master DEV`` to an ifindex first (``Device does not exist``)."""
    if req.master is None:
        return None
    m = ctx.net.get(req.master)
    if m is None:
        raise invarg("Device does not exist\n", req.master)
    return m


def do_set_master(dev: "NetDevice", master: "NetDevice | None") -> None:
    """net/core/rtnetlink.c ``do_set_master``: leave the current master (its
    ``ndo_del_slave``; EOPNOTSUPP without one), then join the new one (``ndo_add_slave``).
    Setting the same master again is a no-op."""
    cur = dev.master
    if cur is not None:
        if master is cur:
            return
        cur.del_slave(dev)
    if master is not None:
        master.add_slave(dev)


def _link_change_kind(ctx: Ctx, req: LinkReq, dev: "NetDevice") -> None:
    """``ip link set DEV type KIND …``: rtnl_newlink on an existing device: the kind must
    be the device's own (``changelink``) or, for ``X_slave``, its master's slave kind
    (``slave_changelink``); anything else is EOPNOTSUPP."""
    kind = req.kind
    assert kind is not None
    if kind.endswith("_slave"):
        ok = dev.master is not None and dev.master.kind == kind[:-len("_slave")]
    else:
        ok = dev.kind == kind
    mod = kind_module(kind)
    if mod is None:
        if _KIND_MODULES.get(kind) is not None or kind in _KNOWN_UNMODELLED:
            raise NotSupported(f"ip link set ... type {kind}")
        raise KernelError(errno.EOPNOTSUPP)
    parse = getattr(mod, "parse_type_args", None)
    if parse is not None:
        # iproute2 runs the kind's parse_opt before the request reaches the kernel, so
        # its argument errors win over the kernel's EOPNOTSUPP
        parse(ctx, req.type_args)
    if not ok:
        raise KernelError(errno.EOPNOTSUPP)
    change = getattr(mod, "link_change", None)
    if change is None:
        if req.type_args:
            raise NotSupported(f"ip link set ... type {kind} {' '.join(req.type_args)}")
        return
    change(ctx, req, dev)


def _apply_flags(dev: "NetDevice", req: LinkReq) -> None:
    """``dev_change_flags`` for the non-UP bits (NETDEV_CHANGE if up and it matters)."""
    old = dev.flags
    dev.flags = (dev.flags | req.flags_on) & ~req.flags_off
    change_rx_flags = getattr(dev, "change_rx_flags", None)
    if change_rx_flags is not None and (old ^ dev.flags) & (IFF_PROMISC | IFF_ALLMULTI):
        # __dev_set_promiscuity/__dev_set_allmulti → ndo_change_rx_flags (macvlan passes
        # them on to its lower device)
        change_rx_flags((old ^ dev.flags) & (IFF_PROMISC | IFF_ALLMULTI))
    if dev.is_up and (old ^ dev.flags) & _NOTIFY_FLAGS and dev.net is not None:
        dev.net.notify(NETDEV_CHANGE, dev)


def _link_del(ctx: Ctx, req: LinkReq) -> None:
    if req.dev is None:
        raise ToolError('Not enough information: "dev" argument is required.\n', 255)
    dev = ctx.net.get(req.dev)
    if dev is None:
        raise no_device(req.dev)
    if not dev.kind:
        raise KernelError(errno.EOPNOTSUPP)
    dellink = getattr(dev, "dellink", None)
    if dellink is not None:
        dellink()
    else:
        ctx.net.unregister_netdevice(dev)


# ----------------------------------------------------------------------- show
def parse_show_filter(args: Args) -> tuple[str | None, bool, Any]:
    """The device/``up``/``type``/``master`` part of ``ipaddr_list_flush_or_save``'s parser.

    The third element is the ``type`` filter, or — when ``master DEV`` was given — the
    pair (type filter, master name); ``select_links`` takes either."""
    dev: str | None = None
    up = False
    kind: str | None = None
    master: str | None = None
    while args:
        a = args.cur
        if a == "up":
            up = True
        elif a == "type":
            kind = args.next_arg()
        elif a == "master":
            master = args.next_arg()
        elif a in ("to", "scope", "label", "group", "vrf", "nomaster") \
                or matches(a, "dynamic") or matches(a, "permanent"):
            raise NotSupported(f"ip link/addr show ... {a}")
        else:
            if a == "dev":
                a = args.next_arg()
            elif matches(a, "help"):
                raise NotSupported("ip link help")
            if dev is not None:
                raise duparg2("dev", a)
            dev = a
        args.advance()
    if master is not None:
        return dev, up, (kind, master)
    return dev, up, kind


def select_links(ctx: Ctx, dev: str | None, up: bool, kind: Any) -> list["NetDevice"]:
    """Devices in ifindex order after the filters; unknown DEV → ``Device "X" does not
    exist.`` (exit 1); unknown ``master`` DEV → invarg ``Device does not exist`` (255)."""
    master = None
    if isinstance(kind, tuple):
        kind, mname = kind
        master = ctx.net.get(mname)
        if master is None:
            raise invarg("Device does not exist\n", mname)
    if dev is not None and ctx.net.get(dev) is None:
        raise ToolError(f'Device "{dev}" does not exist.\n', 1)
    out = []
    for idx in sorted(ctx.net.by_index):
        d = ctx.net.by_index[idx]
        if dev is not None and d.name != dev:
            continue
        if up and not d.flags & 1:
            continue
        if kind is not None and d.kind != kind:
            continue
        if master is not None and d.master is not master:
            continue
        out.append(d)
    return out


def _link_show(ctx: Ctx, args: Args) -> None:
    dev, up, kind = parse_show_filter(args)
    devs = select_links(ctx, dev, up, kind)
    w = ctx.stdout.write
    if ctx.json:
        w(dumps([fmt_link.link_json(d, bool(ctx.details), bool(ctx.stats)) for d in devs],
                ctx.pretty) + "\n")
        return
    for d in devs:
        if ctx.brief:
            w(fmt_link.link_brief(d))
        else:
            w(fmt_link.link_text(d, bool(ctx.details), bool(ctx.stats)))


def do_iplink(ctx: Ctx, argv: list[str]) -> int:
    """``do_iplink``: subcommand by ``matches`` in iplink.c's order."""
    if not argv:
        _link_show(ctx, Args([]))
        return 0
    cmd, rest = argv[0], argv[1:]
    try:
        if matches(cmd, "add"):
            req = LinkReq()
            iplink_parse(Args(rest), req)
            _link_add(ctx, req)
        elif matches(cmd, "set") or matches(cmd, "change"):
            from netstack.cli.iplink_xdp import prepare_xdp, split_xdp
            rest, xdp = split_xdp(rest)
            req = LinkReq()
            iplink_parse(Args(rest), req)
            staged = prepare_xdp(ctx, req.dev, xdp) if xdp is not None else None
            _link_set(ctx, req)
            if staged is not None:
                staged.commit()
        elif matches(cmd, "replace"):
            raise NotSupported("ip link replace")
        elif matches(cmd, "delete"):
            req = LinkReq()
            iplink_parse(Args(rest), req)
            _link_del(ctx, req)
        elif matches(cmd, "show") or matches(cmd, "lst") or matches(cmd, "list"):
            _link_show(ctx, Args(rest))
        elif matches(cmd, "xstats"):
            from netstack.drivers.bridge.br_mdb import do_xstats
            return do_xstats(ctx, rest)
        else:
            raise ToolError(f'Command "{cmd}" is unknown, try "ip link help".\n', 255)
    except KernelError as e:
        raise kernel_error(e) from None
    return 0
