"""``ip link add … type vxlan …`` and the vxlan part of ``ip -d link`` (iproute2 6.1
ip/iplink_vxlan.c; the kernel side is drivers/net/vxlan/vxlan_core.c ``vxlan_nl2conf``).

The parser follows ``vxlan_parse_opt`` keyword by keyword (``matches`` abbreviations in
its order, ``check_duparg``, the ``invarg`` texts, the "return -1" errors that make ip
exit 1, the dstport warning); the output follows ``vxlan_print_opt`` as measured on Linux
6.18 with iproute2 6.1 (text and JSON).  Flow-based (``external``), GPE and maxaddress
limits are refused as not supported rather than accepted and ignored; ``proxy``, ``rsc``,
``l2miss`` and ``l3miss`` are modelled (:mod:`netstack.drivers.vxlan.proxy`).
"""
from __future__ import annotations

import errno
import ipaddress
from typing import TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import (AF_INET6, AF_UNSPEC, Args, duparg2, get_addr, get_unsigned,
                                   invarg, matches)
from netstack.cli.iplink_gre import tnl_lower_index, tnl_newlink_finish, tnl_newlink_name
from netstack.drivers.vxlan.device import (VXLAN_DF_INHERIT, VXLAN_DF_SET, VXLAN_DF_UNSET,
                                           VxlanConfig, VxlanDevice, vxlan_newlink)
from netstack.errors import KernelError, NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.cli.iplink import LinkReq

USAGE = ("Usage: ... vxlan id VNI\n"
         "\t\t[ { group | remote } IP_ADDRESS ]\n"
         "\t\t[ local ADDR ]\n"
         "\t\t[ ttl TTL ]\n"
         "\t\t[ tos TOS ]\n"
         "\t\t[ df DF ]\n"
         "\t\t[ flowlabel LABEL ]\n"
         "\t\t[ dev PHYS_DEV ]\n"
         "\t\t[ dstport PORT ]\n"
         "\t\t[ srcport MIN MAX ]\n"
         "\t\t[ [no]learning ]\n"
         "\t\t[ [no]proxy ]\n"
         "\t\t[ [no]rsc ]\n"
         "\t\t[ [no]l2miss ]\n"
         "\t\t[ [no]l3miss ]\n"
         "\t\t[ ageing SECONDS ]\n"
         "\t\t[ maxaddress NUMBER ]\n"
         "\t\t[ [no]udpcsum ]\n"
         "\t\t[ [no]udp6zerocsumtx ]\n"
         "\t\t[ [no]udp6zerocsumrx ]\n"
         "\t\t[ [no]remcsumtx ] [ [no]remcsumrx ]\n"
         "\t\t[ [no]external ] [ gbp ] [ gpe ]\n"
         "\t\t[ [no]vnifilter ]\n"
         "\n"
         "Where:\tVNI\t:= 0-16777215\n"
         "\tADDR\t:= { IP_ADDRESS | any }\n"
         "\tTOS\t:= { NUMBER | inherit }\n"
         "\tTTL\t:= { 1..255 | auto | inherit }\n"
         "\tDF\t:= { unset | set | inherit }\n"
         "\tLABEL := 0-1048575\n")

#: boolean keywords: (word, attribute, field, value) in vxlan_parse_opt's order
_BOOLS = (
    ("nolearning", "learning", "learning", False), ("learning", "learning", "learning", True),
    ("noproxy", "proxy", "proxy", False), ("proxy", "proxy", "proxy", True),
    ("norsc", "rsc", "rsc", False), ("rsc", "rsc", "rsc", True),
    ("nol2miss", "l2miss", "l2miss", False), ("l2miss", "l2miss", "l2miss", True),
    ("nol3miss", "l3miss", "l3miss", False), ("l3miss", "l3miss", "l3miss", True),
    ("udpcsum", "udpcsum", "udp_csum", True), ("noudpcsum", "udpcsum", "udp_csum", False),
    ("udp6zerocsumtx", "z6tx", "udp6_zero_csum_tx", True),
    ("noudp6zerocsumtx", "z6tx", "udp6_zero_csum_tx", False),
    ("udp6zerocsumrx", "z6rx", "udp6_zero_csum_rx", True),
    ("noudp6zerocsumrx", "z6rx", "udp6_zero_csum_rx", False),
    ("remcsumtx", "rtx", "remcsum_tx", True), ("noremcsumtx", "rtx", "remcsum_tx", False),
    ("remcsumrx", "rrx", "remcsum_rx", True), ("noremcsumrx", "rrx", "remcsum_rx", False),
    ("external", "external", None, True), ("noexternal", "external", None, False),
    ("gbp", "gbp", "gbp", True), ("gpe", "gpe", None, True),
)

#: iproute2's /etc/iproute2/rt_dsfield names (rtnl_dsfield_a2n)
_DSFIELD = {"default": 0, "AF11": 0x28, "AF12": 0x30, "AF13": 0x38, "AF21": 0x48,
            "AF22": 0x50, "AF23": 0x58, "AF31": 0x68, "AF32": 0x70, "AF33": 0x78,
            "AF41": 0x88, "AF42": 0x90, "AF43": 0x98, "CS1": 0x20, "CS2": 0x40,
            "CS3": 0x60, "CS4": 0x80, "CS5": 0xA0, "CS6": 0xC0, "CS7": 0xE0, "EF": 0xB8}


def udptnl_parse_vni(v: str) -> int:
    """``id``/``vni`` of vxlan and geneve: a 24-bit number (``invalid id`` otherwise;
    iproute2 link_vxlan.c/link_geneve.c)."""
    n = get_unsigned(v)
    if n is None or n >= 1 << 24:
        raise invarg("invalid id", v)
    return n


def udptnl_parse_ttl(v: str) -> int:
    """A numeric ``ttl``/``hoplimit`` of vxlan and geneve (``inherit``/``auto`` are the
    callers'): ``get_u32`` then the ``TTL must be <= 255`` check of both parsers."""
    n = get_unsigned(v)
    if n is None:
        raise invarg("invalid TTL", v)
    if n > 255:
        raise invarg("TTL must be <= 255", v)
    return n


#: ``df`` words of vxlan and geneve (``VXLAN_DF_*`` = ``GENEVE_DF_*``)
_DF_WORDS = {"unset": VXLAN_DF_UNSET, "set": VXLAN_DF_SET, "inherit": VXLAN_DF_INHERIT}


def udptnl_parse_df(v: str) -> int:
    """``df unset|set|inherit`` of vxlan and geneve (same values, same error text)."""
    if v not in _DF_WORDS:
        raise invarg("DF must be 'unset', 'set' or 'inherit'", v)
    return _DF_WORDS[v]


def _is_mc(raw: bytes) -> bool:
    return (len(raw) == 4 and 224 <= raw[0] <= 239) or (len(raw) == 16 and raw[0] == 0xFF)


def _dsfield(text: str) -> int | None:
    if text in _DSFIELD:
        return _DSFIELD[text]
    v = get_unsigned(text, 8)
    if v is None:
        try:
            v = int(text, 16)
        except ValueError:
            return None
    return v if 0 <= v <= 255 else None


def parse_vxlan_opts(ctx: "Ctx", argv: list[str], set_op: bool = False,
                     base: VxlanConfig | None = None) -> tuple[VxlanConfig, set[str], bool]:
    """``vxlan_parse_opt`` → (config, attributes given, remote-is-any).  ``set_op``
    (``ip link set … type vxlan``): no VNI required, no dstport warning, and the config
    starts from the device's (``base``), as ``vxlan_nl2conf`` does for changelink."""
    import dataclasses
    cfg = dataclasses.replace(base) if base is not None else VxlanConfig()
    attrs: set[str] = set()
    args = Args(argv)
    daddr: bytes = b""
    saddr: bytes = b""
    fam = AF_UNSPEC

    def dup(attr: str, key: str, arg: str) -> None:
        if attr in attrs:
            raise duparg2(key, arg)
        attrs.add(attr)

    while args:
        a = args.cur
        if matches(a, "id") or matches(a, "vni"):
            v = args.next_arg()
            dup("id", "id", v)
            cfg.vni = udptnl_parse_vni(v)
        elif matches(a, "group") or matches(a, "remote"):
            is_group = matches(a, "group")
            if daddr and _is_mc(daddr) != is_group:
                raise ToolError("vxlan: both group and remote cannot be specified\n", 1)
            v = args.next_arg()
            dup("group", "group" if is_group else "remote", v)
            p = get_addr(v, fam)
            if is_group and not _is_mc(p.addr):
                raise invarg("invalid group address", v)
            if not is_group and _is_mc(p.addr):
                raise invarg("invalid remote address", v)
            daddr = p.addr
            fam = p.family
        elif matches(a, "local"):
            v = args.next_arg()
            dup("local", "local", v)
            p = get_addr(v, fam)
            if _is_mc(p.addr):
                raise invarg("invalid local address", v)
            saddr = p.addr
            fam = p.family
        elif matches(a, "dev"):
            v = args.next_arg()
            dup("dev", "dev", v)
            cfg.link = tnl_lower_index(ctx, v)
        elif matches(a, "ttl") or matches(a, "hoplimit"):
            v = args.next_arg()
            dup("ttl", "ttl", v)
            if v == "inherit":
                cfg.ttl_inherit = True
            elif v == "auto":
                cfg.ttl = 0
            else:
                cfg.ttl = udptnl_parse_ttl(v)
        elif matches(a, "tos") or matches(a, "dsfield"):
            v = args.next_arg()
            dup("tos", "tos", v)
            if v == "inherit":
                cfg.tos = 1
            else:
                n = _dsfield(v)
                if n is None:
                    raise invarg("bad TOS value", v)
                cfg.tos = n
        elif a == "df":
            v = args.next_arg()
            dup("df", "df", v)
            cfg.df = udptnl_parse_df(v)
        elif matches(a, "label") or matches(a, "flowlabel"):
            v = args.next_arg()
            dup("label", "flowlabel", v)
            n = get_unsigned(v)
            if n is None or n & ~0xFFFFF:
                raise invarg("invalid flowlabel", v)
            cfg.label = n
        elif matches(a, "ageing"):
            v = args.next_arg()
            dup("ageing", "ageing", v)
            if v == "none":
                cfg.age_interval = 0
            else:
                n = get_unsigned(v)
                if n is None:
                    raise invarg("ageing timer", v)
                cfg.age_interval = n
        elif matches(a, "maxaddress"):
            v = args.next_arg()
            dup("maxaddress", "maxaddress", v)
            n = 0 if v == "unlimited" else get_unsigned(v)
            if n is None:
                raise invarg("max addresses", v)
            cfg.addrmax = n
        elif matches(a, "port") or matches(a, "srcport"):
            v = args.next_arg()
            dup("srcport", "srcport", v)
            lo = get_unsigned(v, 16)
            if lo is None:
                raise invarg("min port", v)
            v = args.next_arg()
            hi = get_unsigned(v, 16)
            if hi is None:
                raise invarg("max port", v)
            cfg.port_min, cfg.port_max = lo, hi
        elif matches(a, "dstport"):
            v = args.next_arg()
            dup("dstport", "dstport", v)
            n = get_unsigned(v, 16)
            if n is None:
                raise invarg("dst port", v)
            cfg.dst_port = n
        elif matches(a, "help"):
            raise ToolError(USAGE, 1)
        else:
            for word, attr, fld, val in _BOOLS:
                if matches(a, word):
                    dup(attr, a, a)
                    if fld is None:
                        if val:
                            raise NotSupported(f"ip link add type vxlan {word}")
                    else:
                        setattr(cfg, fld, val)
                    break
            else:
                raise ToolError(f'vxlan: unknown command "{a}"?\n' + USAGE, 1)
        args.advance()
    if "id" not in attrs and not set_op:
        raise ToolError("vxlan: missing virtual network identifier\n", 1)
    if daddr and _is_mc(daddr) and "dev" not in attrs:
        raise ToolError("vxlan: 'group' requires 'dev' to be specified\n", 1)
    if set_op:
        # only what was given is sent; "dstport 0" is not sent at all
        if "dstport" in attrs and cfg.dst_port == 0:
            attrs.discard("dstport")
        if "group" in attrs:
            cfg.remote = daddr
        if "local" in attrs:
            cfg.local = saddr
        return cfg, attrs, not daddr
    if "dstport" not in attrs:
        ctx.stderr.write("vxlan: destination port not specified\n"
                         "Will use Linux kernel default (non-standard value)\n"
                         "Use 'dstport 4789' to get the IANA assigned value\n"
                         "Use 'dstport 0' to get default and quiet this message\n")
    if cfg.dst_port == 0:
        cfg.dst_port = 8472
    cfg.remote = daddr
    cfg.local = saddr
    cfg.ipv6 = fam == AF_INET6
    return cfg, attrs, not daddr


def link_add(ctx: "Ctx", req: "LinkReq", net: Any) -> None:
    """``rtnl_newlink`` for kind vxlan: parse, ``vxlan_nl2conf`` checks, create."""
    cfg, _attrs, _any = parse_vxlan_opts(ctx, req.type_args)
    if req.link is not None:
        raise NotSupported("ip link add link DEV type vxlan (use dev)")
    if cfg.remote and cfg.local and len(cfg.remote) != len(cfg.local):
        raise KernelError(errno.EINVAL, "Local and remote address must be from the same family")
    if "label" in _attrs and not cfg.ipv6:
        raise KernelError(errno.EINVAL, "Label attribute only applies to IPv6 VXLAN devices")
    if cfg.port_max and cfg.port_max < cfg.port_min:
        raise KernelError(errno.EINVAL, "Invalid source port range")
    if cfg.remote and _is_mc(cfg.remote) and not cfg.link:
        raise KernelError(errno.EINVAL, "Local interface required for multicast remote destination")
    name = tnl_newlink_name(req, net, "vxlan%d")
    if req.index is not None and req.index in net.by_index:
        raise KernelError(errno.EEXIST)
    if req.address is not None:
        if len(req.address) != 6:
            raise KernelError(errno.EINVAL)
        if req.address[0] & 1 or not any(req.address):
            raise KernelError(errno.EADDRNOTAVAIL)
    mac = req.address or ctx.world.random_mac()
    dev = vxlan_newlink(net, name, mac, cfg, req.mtu, req.index or 0)
    if req.address is not None:
        dev.addr_assign_type = 3
    else:
        dev.addr_assign_type = 1  # NET_ADDR_RANDOM (eth_hw_addr_random)
    if req.alias:
        dev.alias = req.alias
    tnl_newlink_finish(req, net, dev)


def link_change(ctx: "Ctx", req: "LinkReq", dev: VxlanDevice) -> None:
    """``ip link set DEV type vxlan …`` → ``vxlan_changelink``: ``vxlan_nl2conf`` with
    changelink refuses what cannot change (errors and order measured on 6.18), then the
    default remote moves in the FDB (append the new one, delete the old exact remote), the
    group membership follows, and the rest of the configuration is applied."""
    old = dev.cfg
    cfg, attrs, _ = parse_vxlan_opts(ctx, req.type_args, set_op=True, base=old)
    if not attrs:
        raise KernelError(errno.EINVAL, "Required attributes not provided to perform the operation")
    eop = errno.EOPNOTSUPP
    if "id" in attrs and cfg.vni != old.vni:
        raise KernelError(eop, "Cannot change VNI")
    if "group" in attrs and cfg.remote and (len(cfg.remote) == 16) != old.ipv6:
        raise KernelError(eop, "New group address family does not match old group")
    if "local" in attrs and cfg.local and (len(cfg.local) == 16) != old.ipv6:
        raise KernelError(eop, "New local address family does not match old")
    if "ttl" in attrs and cfg.ttl_inherit != old.ttl_inherit:
        raise KernelError(eop, "vxlan: cannot change TTL_INHERIT flag")
    for attr in ("proxy", "rsc", "l2miss", "l3miss"):
        # vxlan_nl2conf → vxlan_set_flag(…, changelink): the attribute's presence is
        # refused whatever its value (measured: "proxy" on a proxy device fails too)
        if attr in attrs:
            raise KernelError(eop, f"vxlan: cannot change {attr.upper()} flag")
    if "maxaddress" in attrs:
        raise KernelError(eop, "Cannot change limit")
    if "srcport" in attrs:
        raise KernelError(eop, "Cannot change port range")
    if "dstport" in attrs:
        raise KernelError(eop, "Cannot change port")
    if "udpcsum" in attrs:
        raise KernelError(eop, "Cannot change UDP_CSUM flag")
    for attr, name in (("z6tx", "UDP_ZERO_CSUM6_TX"), ("z6rx", "UDP_ZERO_CSUM6_RX"),
                       ("rtx", "REMCSUM_TX"), ("rrx", "REMCSUM_RX"), ("gbp", "GBP")):
        if attr in attrs:
            raise KernelError(eop, f"vxlan: cannot change {name} flag")
    if "label" in attrs and not old.ipv6:
        raise KernelError(errno.EINVAL, "Label attribute only applies to IPv6 VXLAN devices")
    from netstack.drivers.vxlan.device import vxlan_igmp_join, vxlan_igmp_leave
    from netstack.drivers.vxlan.fdb import ALL_ZEROS_MAC, Rdst
    net = dev.link_net or dev.net
    rem_changed = cfg.remote != old.remote
    change_igmp = dev.is_up and (rem_changed or cfg.link != old.link)
    if change_igmp and _is_mc(old.remote):
        vxlan_igmp_leave(net, old.link, old.remote)
    if rem_changed:
        if cfg.remote and any(cfg.remote):
            dev.fdb.update(ALL_ZEROS_MAC, cfg.remote, 0x02 | 0x80, 0x400 | 0x800,
                           old.dst_port, old.vni, old.vni, cfg.link, 0)
        if old.remote and any(old.remote):
            f = dev.fdb.find(ALL_ZEROS_MAC, old.vni)
            rd = Rdst(old.remote, old.dst_port, old.vni, old.link)
            if f is not None and rd in f.remotes:
                if len(f.remotes) > 1:
                    f.remotes.remove(rd)
                else:
                    dev.fdb.destroy(f)
    dev.cfg = cfg
    if change_igmp and _is_mc(cfg.remote):
        vxlan_igmp_join(net, cfg.link, cfg.remote)


# ------------------------------------------------------------------------ output
def _addr(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def info_data_text(dev: VxlanDevice) -> str:
    """``vxlan_print_opt`` text, after ``vxlan ``."""
    c = dev.cfg
    s = f"id {c.vni} "
    if c.remote and any(c.remote):
        s += ("group " if _is_mc(c.remote) else "remote ") + _addr(c.remote) + " "
    if c.local and any(c.local):
        s += f"local {_addr(c.local)} "
    lnet = dev.link_net or dev.net
    if c.link and lnet is not None:
        lower = lnet.get_by_index(c.link)
        if lower is not None:
            s += f"dev {lower.name} "
    s += f"srcport {c.port_min} {c.port_max} dstport {c.dst_port} "
    if not c.learning:
        s += "nolearning "
    for flag in ("proxy", "rsc", "l2miss", "l3miss"):
        if getattr(c, flag):
            s += flag + " "
    if c.tos:
        s += "tos inherit " if c.tos == 1 else f"tos {c.tos:#x} "
    if c.ttl_inherit:
        s += "ttl inherit "
    elif c.ttl:
        s += f"ttl {c.ttl} "
    else:
        s += "ttl auto "
    if c.df == VXLAN_DF_SET:
        s += "df set "
    elif c.df == VXLAN_DF_INHERIT:
        s += "df inherit "
    if c.label:
        s += f"flowlabel {c.label:#x} "
    s += f"ageing {c.age_interval} "
    if c.addrmax:
        s += f"maxaddr {c.addrmax} "
    s += ("" if c.udp_csum else "no") + "udpcsum "
    s += ("" if c.udp6_zero_csum_tx else "no") + "udp6zerocsumtx "
    s += ("" if c.udp6_zero_csum_rx else "no") + "udp6zerocsumrx "
    if c.remcsum_tx:
        s += "remcsumtx "
    if c.remcsum_rx:
        s += "remcsumrx "
    if c.gbp:
        s += "gbp "
    return s


def info_data_json(dev: VxlanDevice) -> dict[str, Any]:
    """``vxlan_print_opt`` JSON (``info_data``), key order as iproute2 prints it."""
    c = dev.cfg
    d: dict[str, Any] = {"id": c.vni}
    v6 = c.ipv6
    if c.remote and any(c.remote):
        key = "group" if _is_mc(c.remote) else "remote"
        d[key + ("6" if v6 else "")] = _addr(c.remote)
    if c.local and any(c.local):
        d["local6" if v6 else "local"] = _addr(c.local)
    lnet = dev.link_net or dev.net
    if c.link and lnet is not None:
        lower = lnet.get_by_index(c.link)
        if lower is not None:
            d["link"] = lower.name
    d["port_range"] = {"low": c.port_min, "high": c.port_max}
    d["port"] = c.dst_port
    d["learning"] = c.learning
    for flag in ("proxy", "rsc", "l2miss", "l3miss"):
        if getattr(c, flag):
            d[flag] = True
    if c.tos:
        d["tos"] = f"{c.tos:#x}"
    if not c.ttl_inherit:
        d["ttl"] = c.ttl
    d["df"] = {VXLAN_DF_UNSET: "unset", VXLAN_DF_SET: "set", VXLAN_DF_INHERIT: "inherit"}[c.df]
    if c.label:
        d["label"] = f"{c.label:#x}"
    d["ageing"] = c.age_interval
    if c.addrmax:
        d["limit"] = c.addrmax
    d["udp_csum"] = c.udp_csum
    d["udp_zero_csum6_tx"] = c.udp6_zero_csum_tx
    d["udp_zero_csum6_rx"] = c.udp6_zero_csum_rx
    if c.remcsum_tx:
        d["remcsum_tx"] = True
    if c.remcsum_rx:
        d["remcsum_rx"] = True
    if c.gbp:
        d["gbp"] = True
    return d
