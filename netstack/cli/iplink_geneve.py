"""``ip link add … type geneve …`` and the geneve part of ``ip -d link`` (iproute2 6.1
ip/iplink_geneve.c; kernel drivers/net/geneve.c ``geneve_nl2info``/``geneve_fill_info``).

Not modelled (refused as not supported): ``external`` (flow-based metadata mode).  The
kernel of the test machine has no geneve module, so the output follows the iproute2
source rather than a measurement.
"""
from __future__ import annotations

import errno
import ipaddress
from typing import TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Args, duparg2, get_addr, get_unsigned, invarg, matches
from netstack.cli.iplink_gre import tnl_newlink_finish, tnl_newlink_name
from netstack.cli.iplink_vxlan import udptnl_parse_df, udptnl_parse_ttl, udptnl_parse_vni
from netstack.drivers.geneve import (GENEVE_DF_INHERIT, GENEVE_DF_SET, GENEVE_DF_UNSET,
                                     GeneveConfig, GeneveDevice, geneve_newlink)
from netstack.errors import KernelError, NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.cli.iplink import LinkReq

USAGE = ("Usage: ... geneve id VNI\n"
         "\t\tremote ADDR\n"
         "\t\t[ ttl TTL ]\n"
         "\t\t[ tos TOS ]\n"
         "\t\t[ df DF ]\n"
         "\t\t[ flowlabel LABEL ]\n"
         "\t\t[ dstport PORT ]\n"
         "\t\t[ [no]external ]\n"
         "\t\t[ [no]udpcsum ]\n"
         "\t\t[ [no]udp6zerocsumtx ]\n"
         "\t\t[ [no]udp6zerocsumrx ]\n"
         "\t\t[ innerprotoinherit ]\n"
         "\n"
         "Where:\tVNI   := 0-16777215\n"
         "\tADDR  := IP_ADDRESS\n"
         "\tTOS   := { NUMBER | inherit }\n"
         "\tTTL   := { 1..255 | auto | inherit }\n"
         "\tDF    := { unset | set | inherit }\n"
         "\tLABEL := 0-1048575\n")


#: boolean keywords: (word, attribute, field, value) in geneve_parse_opt's order (the
#: first word an abbreviation matches wins)
_BOOLS = (
    ("udpcsum", "udpcsum", "udp_csum", True), ("noudpcsum", "udpcsum", "udp_csum", False),
    ("udp6zerocsumtx", "udp6zerocsumtx", "udp6_zero_csum_tx", True),
    ("noudp6zerocsumtx", "udp6zerocsumtx", "udp6_zero_csum_tx", False),
    ("udp6zerocsumrx", "udp6zerocsumrx", "udp6_zero_csum_rx", True),
    ("noudp6zerocsumrx", "udp6zerocsumrx", "udp6_zero_csum_rx", False),
)


def _bool_word(a: str) -> tuple[str, str, bool] | None:
    """The (attribute, field, value) of the first boolean keyword *a* abbreviates."""
    return next(((k, f, v) for w, k, f, v in _BOOLS if matches(a, w)), None)


def parse_geneve_opts(argv: list[str], set_op: bool = False,
                      seen: set[str] | None = None) -> GeneveConfig:
    """``geneve_parse_opt``.  ``set_op`` (``ip link set``): the VNI is still required (it
    identifies the device and is always sent), the remote is not; ``seen`` receives the
    attributes given (only those are sent on a set, as iproute2 does)."""
    cfg = GeneveConfig()
    if seen is None:
        seen = set()
    args = Args(argv)

    def dup(key: str, arg: str) -> None:
        if key in seen:
            raise duparg2(key, arg)
        seen.add(key)

    while args:
        a = args.cur
        if matches(a, "id") or matches(a, "vni"):
            v = args.next_arg()
            dup("id", v)
            cfg.vni = udptnl_parse_vni(v)
        elif matches(a, "remote"):
            v = args.next_arg()
            dup("remote", v)
            p = get_addr(v, 0)
            if (len(p.addr) == 4 and 224 <= p.addr[0] <= 239) or p.addr[0] == 0xFF and \
                    len(p.addr) == 16:
                raise invarg("invalid remote address", v)
            cfg.remote = p.addr
        elif matches(a, "ttl") or matches(a, "hoplimit"):
            v = args.next_arg()
            dup("ttl", v)
            if v == "inherit":
                cfg.ttl_inherit = True
            elif v != "auto":
                cfg.ttl = udptnl_parse_ttl(v)
        elif matches(a, "tos") or matches(a, "dsfield"):
            v = args.next_arg()
            dup("tos", v)
            if v == "inherit":
                cfg.tos = 1
            else:
                n = get_unsigned(v, 8)
                if n is None:
                    try:
                        n = int(v, 16)
                    except ValueError:
                        raise invarg("bad TOS value", v) from None
                if not 0 <= n <= 255:
                    raise invarg("bad TOS value", v)
                cfg.tos = n
        elif a == "df":
            v = args.next_arg()
            dup("df", v)
            cfg.df = udptnl_parse_df(v)
        elif matches(a, "label") or matches(a, "flowlabel"):
            v = args.next_arg()
            dup("flowlabel", v)
            n = get_unsigned(v)
            if n is None or n & ~0xFFFFF:
                raise invarg("invalid flowlabel", v)
            cfg.label = n
        elif matches(a, "dstport"):
            v = args.next_arg()
            dup("dstport", v)
            n = get_unsigned(v, 16)
            if n is None:
                raise invarg("dstport", v)
            cfg.dst_port = n
        elif matches(a, "external"):
            raise NotSupported("ip link add type geneve external (flow-based metadata)")
        elif matches(a, "noexternal"):
            dup("external", a)
        elif (flag := _bool_word(a)) is not None:
            key, fld, val = flag
            dup(key, a)
            setattr(cfg, fld, val)
        elif matches(a, "innerprotoinherit"):
            raise NotSupported("ip link add type geneve innerprotoinherit")
        elif matches(a, "help"):
            raise ToolError(USAGE, 1)
        else:
            raise ToolError(f'geneve: unknown command "{a}"?\n' + USAGE, 1)
        args.advance()
    if "id" not in seen:
        raise ToolError("geneve: missing virtual network identifier\n", 1)
    if "remote" not in seen and not set_op:
        raise ToolError("geneve: remote link partner not specified\n", 1)
    return cfg


def link_add(ctx: "Ctx", req: "LinkReq", net: Any) -> None:
    """``rtnl_newlink`` for kind geneve."""
    cfg = parse_geneve_opts(req.type_args)
    if req.link is not None:
        raise NotSupported("ip link add link DEV type geneve")
    name = tnl_newlink_name(req, net, "geneve%d")
    mac = req.address or ctx.world.random_mac()
    dev = geneve_newlink(net, name, mac, cfg, req.mtu, req.index or 0)
    tnl_newlink_finish(req, net, dev)


def info_data_text(dev: GeneveDevice) -> str:
    """``geneve_print_opt`` text."""
    c = dev.cfg
    s = f"id {c.vni} remote {ipaddress.ip_address(c.remote)} "
    if c.ttl_inherit:
        s += "ttl inherit "
    else:
        s += f"ttl {c.ttl} " if c.ttl else "ttl auto "
    if c.tos:
        s += "tos inherit " if c.tos == 1 else f"tos {c.tos:#x} "
    if c.df == GENEVE_DF_SET:
        s += "df set "
    elif c.df == GENEVE_DF_INHERIT:
        s += "df inherit "
    if c.label:
        s += f"flowlabel {c.label:#x} "
    s += f"dstport {c.dst_port} "
    if c.ipv6:
        s += ("" if c.udp6_zero_csum_tx else "no") + "udp6zerocsumtx "
    else:
        s += ("" if c.udp_csum else "no") + "udpcsum "
    s += ("" if _zero_csum6_rx(c) else "no") + "udp6zerocsumrx "
    return s


def _zero_csum6_rx(c: Any) -> bool:
    """geneve_fill_info always sends UDP_ZERO_CSUM6_RX = !use_udp6_rx_checksums, which
    only an IPv6 remote turns on (``geneve_nl2info``): an IPv4 device shows it set."""
    return c.udp6_zero_csum_rx if c.ipv6 else True


def info_data_json(dev: GeneveDevice) -> dict[str, Any]:
    """``geneve_print_opt`` JSON."""
    c = dev.cfg
    d: dict[str, Any] = {"id": c.vni, ("remote6" if c.ipv6 else "remote"):
                         str(ipaddress.ip_address(c.remote))}
    if not c.ttl_inherit:
        d["ttl"] = c.ttl
    if c.tos:
        d["tos"] = f"{c.tos:#x}"
    d["df"] = {GENEVE_DF_UNSET: "unset", GENEVE_DF_SET: "set", GENEVE_DF_INHERIT: "inherit"}[c.df]
    if c.label:
        d["label"] = f"{c.label:#x}"
    d["port"] = c.dst_port
    if c.ipv6:
        d["udp_zero_csum6_tx"] = c.udp6_zero_csum_tx
    else:
        d["udp_csum"] = c.udp_csum
    d["udp_zero_csum6_rx"] = _zero_csum6_rx(c)
    return d


#: geneve_nl2info's change_notsup message (drivers/net/geneve.c)
CHANGE_NOTSUP = ("Changing VNI, Port, endpoint IP address family, external, "
                 "inner_proto_inherit, and UDP checksum attributes are not supported")


def link_change(ctx: "Ctx", req: "LinkReq", dev: GeneveDevice) -> None:
    """``ip link set DEV type geneve …`` → ``geneve_changelink``: ``geneve_nl2info`` with
    changelink, in its attribute order — a remote of the other family, another VNI, any
    ``dstport`` (iproute2 sends it when non-zero) and any of the UDP checksum flags are
    EOPNOTSUPP with the kernel's message; a non-zero flow label on an IPv4 device is
    EINVAL; TTL, TOS, DF and label change; a new remote reruns ``geneve_link_config``
    (the MTU follows the new route unless ``mtu`` is given too)."""
    import dataclasses
    seen: set[str] = set()
    cfg = parse_geneve_opts(req.type_args, set_op=True, seen=seen)
    old = dev.cfg
    new = dataclasses.replace(old)
    eop = errno.EOPNOTSUPP
    if "remote" in seen:
        if cfg.ipv6 != old.ipv6:
            raise KernelError(eop, CHANGE_NOTSUP)
        new.remote = cfg.remote
    if cfg.vni != old.vni:
        raise KernelError(eop, CHANGE_NOTSUP)
    if "ttl" in seen:
        new.ttl, new.ttl_inherit = cfg.ttl, cfg.ttl_inherit
    if "tos" in seen:
        new.tos = cfg.tos
    if "df" in seen:
        new.df = cfg.df
    if "flowlabel" in seen:
        if cfg.label and not new.ipv6:
            raise KernelError(errno.EINVAL, "Label attribute only applies for IPv6 Geneve devices")
        new.label = cfg.label
    if "dstport" in seen and cfg.dst_port:
        raise KernelError(eop, CHANGE_NOTSUP)
    if seen & {"udpcsum", "udp6zerocsumtx", "udp6zerocsumrx"}:
        raise KernelError(eop, CHANGE_NOTSUP)
    if new.remote != old.remote and req.mtu is None:
        from netstack.drivers.geneve import geneve_link_mtu
        mtu = geneve_link_mtu(dev.net, new)
        if mtu is not None:
            dev.mtu = min(max(mtu, dev.min_mtu), dev.max_mtu)
    dev.cfg = new
