"""``ip link add link DEV name N type vlan …`` and the vlan part of ``ip -d link``
(iproute2 6.1 ip/iplink_vlan.c; the kernel side is net/8021q/vlan_netlink.c).

The parser follows ``vlan_parse_opt`` keyword by keyword (``matches`` abbreviations,
``parse_mapping`` for the QoS maps, ``invarg``/``on_off`` errors), the checks follow
``vlan_validate`` then ``vlan_newlink``/``vlan_check_real_dev`` with their extack strings
(NL_SET_ERR_MSG_MOD, hence the ``8021q:`` prefix), and the output follows
``vlan_print_opt`` (text and JSON).
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Args, get_unsigned, invarg, matches, no_device
from netstack.drivers.vlan import (ETH_P_8021AD, ETH_P_8021Q, VLAN_FLAG_BRIDGE_BINDING,
                                   VLAN_FLAG_GVRP, VLAN_FLAG_LOOSE_BINDING, VLAN_FLAG_MVRP,
                                   VLAN_FLAG_REORDER_HDR, VlanDevice, register_vlan_dev,
                                   vlan_check_real_dev, vlan_open_check)
from netstack.errors import KernelError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.cli.iplink import LinkReq

USAGE = ("Usage: ... vlan id VLANID\n"
         "\t\t[ protocol VLANPROTO ]\n"
         "\t\t[ reorder_hdr { on | off } ]\n"
         "\t\t[ gvrp { on | off } ]\n"
         "\t\t[ mvrp { on | off } ]\n"
         "\t\t[ loose_binding { on | off } ]\n"
         "\t\t[ bridge_binding { on | off } ]\n"
         "\t\t[ ingress-qos-map QOS-MAP ]\n"
         "\t\t[ egress-qos-map QOS-MAP ]\n"
         "\n"
         "VLANID := 0-4095\n"
         "VLANPROTO: [ 802.1Q | 802.1ad ]\n"
         "QOS-MAP := [ QOS-MAP ] QOS-MAPPING\n"
         "QOS-MAPPING := FROM:TO\n")

#: A part of iproute2's lib/ll_proto.c table (names compared with strcasecmp).
LL_PROTO_NAMES = {"802.1q": ETH_P_8021Q, "802.1ad": ETH_P_8021AD, "ip": 0x0800,
                  "arp": 0x0806, "ipv6": 0x86DD, "mpls_uc": 0x8847, "lldp": 0x88CC}
LL_PROTO_PRINT = {ETH_P_8021Q: "802.1Q", ETH_P_8021AD: "802.1ad"}

#: (keyword, flag) in vlan_parse_opt's order
_FLAG_WORDS = (("reorder_hdr", VLAN_FLAG_REORDER_HDR), ("gvrp", VLAN_FLAG_GVRP),
               ("mvrp", VLAN_FLAG_MVRP), ("loose_binding", VLAN_FLAG_LOOSE_BINDING),
               ("bridge_binding", VLAN_FLAG_BRIDGE_BINDING))


@dataclass
class VlanOpts:
    """IFLA_INFO_DATA of a vlan request (what vlan_parse_opt put in the message)."""

    present: bool = False
    proto: int | None = None
    vid: int | None = None
    flags: int = 0
    mask: int = 0
    ingress: list[tuple[int, int]] | None = None
    egress: list[tuple[int, int]] | None = None
    extra: list[str] = field(default_factory=list)


def ll_proto_a2n(text: str) -> int | None:
    """lib/ll_proto.c ``ll_proto_a2n``: a name from the table, else a number (get_be16)."""
    v = LL_PROTO_NAMES.get(text.lower())
    if v is not None:
        return v
    return get_unsigned(text, 16)


def _parse_map(args: Args, name: str) -> list[tuple[int, int]]:
    """``parse_mapping``: FROM:TO words (u32 each) until a word without a colon."""
    out: list[tuple[int, int]] = []
    while args:
        word = args.cur
        if ":" not in word:
            break
        key, _, val = word.partition(":")
        k = get_unsigned(key)
        v = get_unsigned(val) if k is not None else None
        if k is None or v is None:
            # *colon = '\0' already happened: invarg prints the key part
            raise invarg(f"invalid {name}", key)
        out.append((k, v))
        args.advance()
    return out


def parse_vlan_opts(argv: list[str]) -> VlanOpts:
    """``vlan_parse_opt``."""
    o = VlanOpts(present=bool(argv))
    args = Args(argv)
    while args:
        a = args.cur
        if matches(a, "protocol"):
            v = args.next_arg()
            p = ll_proto_a2n(v)
            if p is None:
                raise invarg("protocol is invalid", v)
            o.proto = p
        elif matches(a, "id"):
            v = args.next_arg()
            n = get_unsigned(v, 16)
            if n is None:
                raise invarg("id is invalid", v)
            o.vid = n
        elif any(matches(a, w) for w, _ in _FLAG_WORDS):
            word, bit = next((w, b) for w, b in _FLAG_WORDS if matches(a, w))
            v = args.next_arg()
            o.mask |= bit
            if v == "on":
                o.flags |= bit
            elif v == "off":
                o.flags &= ~bit
            else:
                raise ToolError(f'Error: argument of "{word}" must be "on" or "off", not '
                                f'"{v}"\n', 1)
        elif matches(a, "ingress-qos-map"):
            args.next_arg()
            o.ingress = (o.ingress or []) + _parse_map(args, "ingress-qos-map")
            continue
        elif matches(a, "egress-qos-map"):
            args.next_arg()
            o.egress = (o.egress or []) + _parse_map(args, "egress-qos-map")
            continue
        elif matches(a, "help"):
            raise ToolError(USAGE, 1)
        else:
            raise ToolError(f'vlan: unknown command "{a}"?\n' + USAGE, 1)
        args.advance()
    return o


def vlan_validate(o: VlanOpts, address: bytes | None = None) -> None:
    """``vlan_validate`` (net/8021q/vlan_netlink.c), in its order: the link address
    (IFLA_ADDRESS), then the vlan attributes."""
    if address is not None:
        if len(address) != 6:
            raise KernelError(errno.EINVAL, "8021q: Invalid link address")
        if address[0] & 1 or address == b"\0" * 6:
            raise KernelError(errno.EADDRNOTAVAIL, "8021q: Invalid link address")
    if not o.present:
        raise KernelError(errno.EINVAL, "8021q: VLAN properties not specified")
    if o.proto is not None and o.proto not in (ETH_P_8021Q, ETH_P_8021AD):
        raise KernelError(errno.EPROTONOSUPPORT, "8021q: Invalid VLAN protocol")
    if o.vid is not None and o.vid >= 0xFFF:
        raise KernelError(errno.ERANGE, "8021q: Invalid VLAN id")


def vlan_link_add(ctx: "Ctx", req: "LinkReq", net: Any) -> None:
    """``rtnl_newlink`` for kind vlan: validate, name, ``vlan_newlink``, register."""
    o = parse_vlan_opts(req.type_args)
    if req.link is not None:
        real = ctx.net.get(req.link)
        if real is None:
            raise no_device(req.link)
    else:
        real = None
    vlan_validate(o, req.address)
    name = req.name or req.dev
    if name is not None and len(name) >= 16:
        raise KernelError(errno.EINVAL, "Attribute failed policy validation")
    if name is not None and name in net.devices:
        raise KernelError(errno.EEXIST)
    if req.index is not None and req.index in net.by_index:
        raise KernelError(errno.EEXIST)
    if o.vid is None:
        raise KernelError(errno.EINVAL, "8021q: VLAN id not specified")
    if real is None:
        raise KernelError(errno.EINVAL, "8021q: link not specified")
    proto = o.proto if o.proto is not None else ETH_P_8021Q
    vlan_check_real_dev(real, proto, o.vid)
    if req.mtu is not None and (req.mtu > real.mtu or req.mtu < 68):
        raise KernelError(errno.EINVAL)
    if name is None:
        i = 0
        while f"vlan{i}" in net.devices:
            i += 1
        name = f"vlan{i}"
    dev = VlanDevice(name, real, proto, o.vid, req.address)
    # vlan_dev_init: flags from the lower device, minus the per-device ones
    dev.flags = real.flags & ~(0x1 | 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40)
    dev.broadcast = real.broadcast
    if req.mtu is not None:
        dev.mtu = req.mtu
    dev.vlan_flags = (dev.vlan_flags & ~o.mask) | (o.flags & o.mask)
    for frm, to in o.ingress or []:
        dev.set_ingress_priority(to, frm)
    for frm, to in o.egress or []:
        dev.set_egress_priority(frm, to)
    if req.txqlen is not None:
        dev.txqlen = req.txqlen
    if req.alias:
        dev.alias = req.alias
    dev.flags = (dev.flags | req.flags_on) & ~req.flags_off
    register_vlan_dev(net, dev, req.index or 0)
    if req.up:
        vlan_open_check(dev)
        net.dev_open(dev)


def vlan_link_change(ctx: "Ctx", req: "LinkReq", dev: VlanDevice) -> None:
    """``ip link set DEV type vlan …``: iproute2 sends IFLA_INFO_DATA only when words follow
    ``type vlan`` (ip/iplink.c ``iplink_modify``), the kernel runs ``vlan_validate`` then
    ``vlan_changelink`` (net/8021q/vlan_netlink.c).

    ``vlan_changelink`` looks only at IFLA_VLAN_FLAGS (``vlan_dev_change_flags``) and the
    QoS maps; IFLA_VLAN_ID and IFLA_VLAN_PROTOCOL are validated (ERANGE "Invalid VLAN id",
    EPROTONOSUPPORT "Invalid VLAN protocol") and otherwise ignored: ``id``/``protocol`` of
    an existing vlan device never change, and asking for other valid values succeeds
    without effect.  Ingress mappings replace the PCP's entry (``to`` 0 removes it);
    egress entries are replaced or added per skb priority (``vlan_dev_set_egress_priority``:
    a PCP of 0 keeps the entry but no longer counts or dumps it).  Everything is checked
    before the first change, so a refusal leaves the device as it was."""
    o = parse_vlan_opts(req.type_args)
    vlan_validate(o, req.address)
    if o.mask:
        dev.change_flags(o.flags, o.mask)
    for frm, to in o.ingress or []:
        dev.set_ingress_priority(to, frm)
    for frm, to in o.egress or []:
        dev.set_egress_priority(frm, to)


# ------------------------------------------------------------------------ output
def _flag_words(flags: int) -> list[str]:
    """``vlan_print_flags``: names in REORDER_HDR, GVRP, MVRP, LOOSE_BINDING,
    BRIDGE_BINDING order, then leftover bits in hex."""
    out = []
    for word, bit in (("REORDER_HDR", VLAN_FLAG_REORDER_HDR), ("GVRP", VLAN_FLAG_GVRP),
                      ("MVRP", VLAN_FLAG_MVRP), ("LOOSE_BINDING", VLAN_FLAG_LOOSE_BINDING),
                      ("BRIDGE_BINDING", VLAN_FLAG_BRIDGE_BINDING)):
        if flags & bit:
            out.append(word)
            flags &= ~bit
    if flags:
        out.append(f"{flags:x}")
    return out


def info_data_text(dev: VlanDevice) -> str:
    """``vlan_print_opt`` text, after ``vlan ``."""
    s = f"protocol {LL_PROTO_PRINT[dev.vlan_proto]} id {dev.vlan_id} "
    if dev.vlan_flags:  # vlan_fill_info sends IFLA_VLAN_FLAGS only if non-zero
        s += "<" + ",".join(_flag_words(dev.vlan_flags)) + "> "
    if dev.nr_ingress_mappings:
        s += "\n      ingress-qos-map { " + "".join(
            f"{f}:{t} " for f, t in dev.ingress_mappings()) + "} "
    if dev.nr_egress_mappings:
        s += "\n      egress-qos-map { " + "".join(
            f"{f}:{t} " for f, t in dev.egress_mappings()) + "} "
    return s


def info_data_json(dev: VlanDevice) -> dict[str, Any]:
    """``vlan_print_opt`` JSON (``info_data``)."""
    d: dict[str, Any] = {"protocol": LL_PROTO_PRINT[dev.vlan_proto], "id": dev.vlan_id}
    if dev.vlan_flags:
        d["flags"] = _flag_words(dev.vlan_flags)
    if dev.nr_ingress_mappings:
        d["ingress_qos"] = [{"from": f, "to": t} for f, t in dev.ingress_mappings()]
    if dev.nr_egress_mappings:
        d["egress_qos"] = [{"from": f, "to": t} for f, t in dev.egress_mappings()]
    return d


#: the kind-module entry points (netstack.cli.iplink.kind_module)
link_add = vlan_link_add
link_change = vlan_link_change
