"""``ip link add … type ipip|sit …`` and their ``ip -d link`` part (iproute2 6.1
ip/link_iptnl.c; kernel net/ipv4/ipip.c ``ipip_netlink_parms``, net/ipv6/sit.c).

``mode`` (``ipip``/``any`` for ipip, ``ip6ip``/``any`` for sit), ``remote``/``local``,
``dev``, ``ttl``, ``tos``, ``[no]pmtudisc``, ``fwmark`` and the FOU/GUE words
(``encap fou|gue encap-sport auto|P encap-dport P [no]encap-csum [no]encap-remcsum``).
``ip6tnl``, ISATAP, 6rd, ``external`` and mode ``mplsip`` are refused as not supported.
"""
from __future__ import annotations

import errno
import ipaddress
from typing import TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Args, get_unsigned, invarg
from netstack.cli.iplink_gre import encap_json, encap_text, parse_common, parse_encap
from netstack.drivers.ipip import IPPROTO_IPIP, IPPROTO_IPV6, IpipDevice, SitDevice, iptnl_newlink
from netstack.errors import KernelError, NotSupported
from netstack.ipv4.ip_tunnel_core import TunnelEncap, TunnelParms

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.cli.iplink import LinkReq

_BODY = ("\t\t\t[ local ADDR ]\n"
         "\t\t\t[ ttl TTL ]\n"
         "\t\t\t[ tos TOS ]\n"
         "\t\t\t[ [no]pmtudisc ]\n"
         "\t\t\t[ 6rd-prefix ADDR ]\n"
         "\t\t\t[ 6rd-relay_prefix ADDR ]\n"
         "\t\t\t[ 6rd-reset ]\n"
         "\t\t\t[ dev PHYS_DEV ]\n"
         "\t\t\t[ fwmark MARK ]\n"
         "\t\t\t[ external ]\n"
         "\t\t\t[ noencap ]\n"
         "\t\t\t[ encap { fou | gue | none } ]\n"
         "\t\t\t[ encap-sport PORT ]\n"
         "\t\t\t[ encap-dport PORT ]\n"
         "\t\t\t[ [no]encap-csum ]\n"
         "\t\t\t[ [no]encap-csum6 ]\n"
         "\t\t\t[ [no]encap-remcsum ]\n")
_WHERE = ("\n"
          "Where:\tADDR := { IP_ADDRESS | any }\n"
          "\tTOS  := { NUMBER | inherit }\n"
          "\tTTL  := { 1..255 | inherit }\n"
          "\tMARK := { 0x0..0xffffffff }\n")


def usage(kind: str) -> ToolError:
    """link_iptnl.c ``print_usage`` (``%-6s`` kind column; sit adds ip6ip and isatap)."""
    mode = ("\t\t\t[ mode { ip6ip | ipip | mplsip | any } ]\n\t\t\t[ isatap ]\n"
            if kind == "sit" else "\t\t\t[ mode { ipip | mplsip | any } ]\n")
    return ToolError(f"Usage: ... {kind:<6}\t[ remote ADDR ]\n" + _BODY + mode + _WHERE, 1)


_PROTO_NAMES = {IPPROTO_IPIP: "ipip", IPPROTO_IPV6: "ip6ip", 137: "mplsip", 0: "any"}


def parse_iptnl_opts(ctx: "Ctx", kind: str, argv: list[str]) -> tuple[TunnelParms, TunnelEncap,
                                                                        int]:
    """``iptunnel_parse_opt`` → (parms, encap, fwmark)."""
    p = TunnelParms()
    p.protocol = IPPROTO_IPIP if kind == "ipip" else IPPROTO_IPV6
    enc = TunnelEncap()
    fwmark = 0
    args = Args(argv)
    while args:
        a = args.cur
        if a == "mode":
            v = args.next_arg()
            if kind == "sit" and v in ("ipv6/ipv4", "ip6ip"):
                p.protocol = IPPROTO_IPV6
            elif kind == "ipip" and v in ("ip/ip", "ipip"):
                p.protocol = IPPROTO_IPIP
            elif v in ("mpls/ipv4", "mplsip"):
                raise NotSupported(f"ip link add type {kind} mode mplsip")
            elif v == "any":
                p.protocol = 0
            else:
                raise invarg("Cannot guess tunnel mode.", v)
        elif a == "fwmark":
            v = args.next_arg()
            n = get_unsigned(v)
            if n is None:
                raise invarg("invalid fwmark\n", v)
            fwmark = n
        elif a in ("external", "isatap") or a.startswith("6rd"):
            raise NotSupported(f"ip link add type {kind} {a}")
        elif not (parse_common(ctx, args, p) or parse_encap(args, enc)):
            raise usage(kind)
        args.advance()
    if p.ttl and not p.pmtudisc:
        raise ToolError("ttl != 0 and nopmtudisc are incompatible\n", 255)
    return p, enc, fwmark


def link_add(ctx: "Ctx", req: "LinkReq", net: Any) -> None:
    """``rtnl_newlink`` for ipip/sit (ip6tnl: not supported)."""
    kind = req.kind
    if kind not in ("ipip", "sit"):
        raise NotSupported(f"ip link add type {kind}")
    p, enc, fwmark = parse_iptnl_opts(ctx, kind, req.type_args)
    name = req.name or req.dev
    if name is not None and len(name) >= 16:
        raise KernelError(errno.EINVAL, "Attribute failed policy validation")
    if name is not None and name in net.devices:
        raise KernelError(errno.EEXIST)
    if name is None:
        tmpl = "ipip%d" if kind == "ipip" else "sit%d"
        i = 1
        while tmpl % i in net.devices:
            i += 1
        name = tmpl % i
    dev = (IpipDevice if kind == "ipip" else SitDevice)(name, p, enc)
    dev.fwmark = fwmark
    iptnl_newlink(net, dev, req.mtu, req.index or 0)
    if req.txqlen is not None:
        dev.txqlen = req.txqlen
    dev.flags = (dev.flags | req.flags_on) & ~req.flags_off
    if req.up:
        net.dev_open(dev)


def _ip(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw)) if any(raw) else "any"


def info_data_text(dev: IpipDevice) -> str:
    """``iptunnel_print_opt`` text."""
    p = dev.parms
    s = f"{_PROTO_NAMES.get(p.protocol, str(p.protocol))} remote {_ip(p.daddr)} " \
        f"local {_ip(p.saddr)} "
    if p.link and dev.net is not None:
        lower = dev.net.get_by_index(p.link)
        if lower is not None:
            s += f"dev {lower.name} "
    s += f"ttl {p.ttl} " if p.ttl else "ttl inherit "
    if p.tos:
        s += "tos inherit " if p.tos == 1 else f"tos {p.tos:#x} "
    s += "pmtudisc " if p.pmtudisc else "nopmtudisc "
    if dev.fwmark:
        s += f"fwmark {dev.fwmark:#x} "
    return s + encap_text(dev.encap)


def info_data_json(dev: IpipDevice) -> dict[str, Any]:
    """``iptunnel_print_opt`` JSON."""
    p = dev.parms
    d: dict[str, Any] = {"proto": _PROTO_NAMES.get(p.protocol, str(p.protocol)),
                         "remote": _ip(p.daddr), "local": _ip(p.saddr)}
    if p.link and dev.net is not None:
        lower = dev.net.get_by_index(p.link)
        if lower is not None:
            d["link"] = lower.name
    d["ttl"] = p.ttl
    if p.tos:
        d["tos"] = f"{p.tos:#x}"
    d["pmtudisc"] = p.pmtudisc
    if dev.fwmark:
        d["fwmark"] = f"{dev.fwmark:#x}"
    e = encap_json(dev.encap)
    if e is not None:
        d["encap"] = e
    return d
