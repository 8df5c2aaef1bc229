"""``ip link add … type ipip|sit …`` and their ``ip -d link`` part (iproute2 6.1
ip/link_iptnl.c; kernel net/ipv4/ipip.c ``ipip_netlink_parms``, net/ipv6/sit.c).

``mode`` (``ipip``/``any`` for ipip, ``ip6ip``/``any`` for sit), ``remote``/``local``,
``dev``, ``ttl``, ``tos``, ``[no]pmtudisc``, ``fwmark`` and the FOU/GUE words
(``encap fou|gue encap-sport auto|P encap-dport P [no]encap-csum [no]encap-remcsum``).
``ip6tnl`` (iproute2 ip/link_ip6tnl.c, kernel net/ipv6/ip6_tunnel.c) has its own parser
and output below.  ISATAP, 6rd, ``external`` and mode ``mplsip`` are refused as not
supported.
"""
from __future__ import annotations

import errno
import ipaddress
from typing import TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Args, get_addr, get_unsigned, invarg, matches, strtol
from netstack.core.netdevice import IFF_POINTOPOINT
from netstack.cli.iplink_gre import (TNL_ENCAP_USAGE, encap_json, encap_text, parse_common,
                                     parse_encap, tnl4_head_json, tnl4_head_text,
                                     tnl_lower_index, tnl_newlink_finish, tnl_newlink_name,
                                     tnl_parse_fwmark, tnl_parse_ttl, tnl_tail_json,
                                     tnl_tail_text)
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
         + TNL_ENCAP_USAGE)
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


def parse_iptnl_opts(ctx: "Ctx", kind: str, argv: list[str],
                     base: Any = None) -> tuple[TunnelParms, TunnelEncap, int]:
    """``iptunnel_parse_opt`` → (parms, encap, fwmark).  ``base`` (``ip link set``):
    iproute2 starts from the device's IFLA_IPTUN_* attributes — the encapsulation ports
    included, read with ``rta_getattr_u16`` and sent back through ``htons``, i.e.
    byte-swapped on a little-endian host unless given again (an iproute2 quirk kept)."""
    p = TunnelParms()
    p.protocol = IPPROTO_IPIP if kind == "ipip" else IPPROTO_IPV6
    enc = TunnelEncap()
    fwmark = 0
    if base is not None:
        q = base.parms
        p.link, p.saddr, p.daddr, p.ttl, p.tos = q.link, q.saddr, q.daddr, q.ttl, q.tos
        p.pmtudisc, p.protocol = q.pmtudisc, q.protocol
        e = base.encap

        def swab(v: int) -> int:
            return ((v & 0xFF) << 8) | (v >> 8)
        enc = TunnelEncap(e.type, e.flags, swab(e.sport), swab(e.dport))
        fwmark = base.fwmark
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
            fwmark = tnl_parse_fwmark(args.next_arg())
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
    if kind == "ip6tnl":
        _ip6tnl_add(ctx, req, net)
        return
    if kind not in ("ipip", "sit"):
        raise NotSupported(f"ip link add type {kind}")
    p, enc, fwmark = parse_iptnl_opts(ctx, kind, req.type_args)
    name = tnl_newlink_name(req, net, "ipip%d" if kind == "ipip" else "sit%d", first=1)
    dev = (IpipDevice if kind == "ipip" else SitDevice)(name, p, enc)
    dev.fwmark = fwmark
    iptnl_newlink(net, dev, req.mtu, req.index or 0)
    tnl_newlink_finish(req, net, dev)


def info_data_text(dev: IpipDevice) -> str:
    """``iptunnel_print_opt`` text (``ip6tunnel_print_opt`` for ip6tnl)."""
    if dev.kind == "ip6tnl":
        return str(_info_ip6tnl(dev, False))
    p = dev.parms
    s = f"{_PROTO_NAMES.get(p.protocol, str(p.protocol))} " + tnl4_head_text(dev)
    s += "pmtudisc " if p.pmtudisc else "nopmtudisc "
    return s + tnl_tail_text(dev)


def info_data_json(dev: IpipDevice) -> dict[str, Any]:
    """``iptunnel_print_opt`` JSON (``ip6tunnel_print_opt`` for ip6tnl)."""
    if dev.kind == "ip6tnl":
        return dict(_info_ip6tnl(dev, True))
    p = dev.parms
    d = tnl4_head_json(dev, {"proto": _PROTO_NAMES.get(p.protocol, str(p.protocol))})
    d["pmtudisc"] = p.pmtudisc
    return tnl_tail_json(dev, d)


# ------------------------------------------------------------------------ ip6tnl
#: iproute2 6.1 ip/link_ip6tnl.c ``print_usage`` (measured: the machine's ``ip``)
IP6TNL_USAGE = ("Usage: ... ip6tnl\t[ remote ADDR ]\n"
                "\t\t\t[ local ADDR ]\n"
                "\t\t\t[ encaplimit ELIM ]\n"
                "\t\t\t[ hoplimit HLIM ]\n"
                "\t\t\t[ tclass TCLASS ]\n"
                "\t\t\t[ flowlabel FLOWLABEL ]\n"
                "\t\t\t[ dscp inherit ]\n"
                "\t\t\t[ [no]allow-localremote ]\n"
                "\t\t\t[ dev PHYS_DEV ]\n"
                "\t\t\t[ fwmark MARK ]\n"
                + TNL_ENCAP_USAGE +
                "\t\t\t[ mode { ip6ip6 | ipip6 | any } ]\n"
                "\n"
                "Where:\tADDR\t  := IPV6_ADDRESS\n"
                "\tELIM\t  := { none | 0..255 }(default=4)\n"
                "\tHLIM\t  := 0..255 (default=64)\n"
                "\tTCLASS    := { 0x0..0xff | inherit }\n"
                "\tFLOWLABEL := { 0x0..0xfffff | inherit }\n"
                "\tMARK\t  := { 0x0..0xffffffff | inherit }\n")


def parse_ip6tnl_opts(ctx: "Ctx", argv: list[str], base: Any = None) -> tuple[Any, TunnelEncap,
                                                                           int]:
    """``ip6tunnel_parse_opt`` → (parms, encap, fwmark).  ``base`` (``ip link set``):
    iproute2 first reads the device's IFLA_IPTUN_* attributes and starts from them — but
    not from its encapsulation, which restarts at "none" with ``encap-csum6`` (so a
    changelink that does not repeat ``encap …`` removes FOU/GUE, as on the kernel)."""
    from netstack.drivers.ip6_gre import (IP6_TNL_F_IGN_ENCAP_LIMIT, IP6_TNL_F_USE_ORIG_FLOWLABEL,
                                          IP6_TNL_F_USE_ORIG_TCLASS, Ip6TunnelParms)
    from netstack.drivers.ip6_tunnel import (IP6_TNL_F_ALLOW_LOCAL_REMOTE,
                                             IP6_TNL_F_RCV_DSCP_COPY, IP6_TNL_F_USE_ORIG_FWMARK)
    from netstack.ipv4.ip_tunnel_core import TUNNEL_ENCAP_FLAG_CSUM6
    p = Ip6TunnelParms()
    p.protocol = 0
    fwmark = 0
    if base is not None:
        q = base.parms
        p.saddr, p.daddr, p.hop_limit, p.encap_limit = q.saddr, q.daddr, q.hop_limit, \
            q.encap_limit
        p.flowinfo, p.flags, p.link, p.protocol = q.flowinfo, q.flags, q.link, q.protocol
        fwmark = base.fwmark
    enc = TunnelEncap(flags=TUNNEL_ENCAP_FLAG_CSUM6)
    args = Args(argv)
    while args:
        a = args.cur
        if matches(a, "mode"):
            v = args.next_arg()
            if v in ("ipv6/ipv6", "ip6ip6"):
                p.protocol = IPPROTO_IPV6
            elif v in ("ip/ipv6", "ipv4/ipv6", "ipip6", "ip4ip6"):
                p.protocol = IPPROTO_IPIP
            elif v in ("any/ipv6", "any"):
                p.protocol = 0
            else:
                raise invarg("Cannot guess tunnel mode.", v)
        elif a in ("remote", "local"):
            raw = get_addr(args.next_arg(), 10).addr
            if a == "remote":
                p.daddr = raw
            else:
                p.saddr = raw
        elif matches(a, "dev"):
            p.link = tnl_lower_index(ctx, args.next_arg())
        elif a in ("ttl", "hoplimit", "hlim"):
            p.hop_limit = tnl_parse_ttl(args.next_arg(), "invalid HLIM\n")
        elif a == "encaplimit":
            v = args.next_arg()
            if v == "none":
                p.flags |= IP6_TNL_F_IGN_ENCAP_LIMIT
            else:
                n = get_unsigned(v, 8)
                if n is None:
                    # get_u8(...) < -1 never holds: iproute2 then sends an uninitialised
                    # byte, which netstack cannot reproduce
                    raise NotSupported(f"ip link ... type ip6tnl encaplimit {v}")
                p.encap_limit = n
                p.flags &= ~IP6_TNL_F_IGN_ENCAP_LIMIT
        elif a in ("tclass", "tc", "tos") or matches(a, "dsfield"):
            v = args.next_arg()
            p.flowinfo &= ~(0xFF << 20)
            if v == "inherit":
                p.flags |= IP6_TNL_F_USE_ORIG_TCLASS
            else:
                n = strtol(v, 16)
                if n is None or not 0 <= n <= 0xFF:
                    raise invarg("invalid TClass", v)
                p.flowinfo |= n << 20
                p.flags &= ~IP6_TNL_F_USE_ORIG_TCLASS
        elif a in ("flowlabel", "fl"):
            v = args.next_arg()
            p.flowinfo &= ~0xFFFFF
            if v == "inherit":
                p.flags |= IP6_TNL_F_USE_ORIG_FLOWLABEL
            else:
                n = strtol(v, 16)
                if n is None or not 0 <= n <= 0xFFFFF:
                    raise invarg("invalid Flowlabel", v)
                p.flowinfo |= n
                p.flags &= ~IP6_TNL_F_USE_ORIG_FLOWLABEL
        elif a == "dscp":
            v = args.next_arg()
            if v != "inherit":
                raise invarg("not inherit", v)
            p.flags |= IP6_TNL_F_RCV_DSCP_COPY
        elif a == "fwmark":
            v = args.next_arg()
            if v == "inherit":
                p.flags |= IP6_TNL_F_USE_ORIG_FWMARK
                fwmark = 0
            else:
                fwmark = tnl_parse_fwmark(v)
                p.flags &= ~IP6_TNL_F_USE_ORIG_FWMARK
        elif a == "allow-localremote":
            p.flags |= IP6_TNL_F_ALLOW_LOCAL_REMOTE
        elif a == "noallow-localremote":
            p.flags &= ~IP6_TNL_F_ALLOW_LOCAL_REMOTE
        elif a == "external":
            raise NotSupported("ip link add type ip6tnl external")
        elif not parse_encap(args, enc):
            raise ToolError(IP6TNL_USAGE, 1)
        args.advance()
    return p, enc, fwmark


def _ip6tnl_add(ctx: "Ctx", req: "LinkReq", net: Any) -> None:
    from netstack.drivers.ip6_tunnel import Ip6TnlDevice, ip6_tnl_newlink
    p, enc, fwmark = parse_ip6tnl_opts(ctx, req.type_args)
    # alloc_netdev("ip6tnl%d"): ip6tnl0 is the (unmodelled) fallback device
    name = tnl_newlink_name(req, net, "ip6tnl%d", first=1)
    dev = Ip6TnlDevice(name, p, enc)
    dev.fwmark = fwmark
    ip6_tnl_newlink(net, dev, req.mtu, req.index or 0)
    tnl_newlink_finish(req, net, dev)


def _info_ip6tnl(dev: Any, js: bool) -> Any:
    """``ip6tunnel_print_opt`` (text or JSON)."""
    from netstack.drivers.ip6_gre import (IP6_TNL_F_IGN_ENCAP_LIMIT, IP6_TNL_F_USE_ORIG_FLOWLABEL,
                                          IP6_TNL_F_USE_ORIG_TCLASS)
    from netstack.drivers.ip6_tunnel import (IP6_TNL_F_ALLOW_LOCAL_REMOTE, IP6_TNL_F_MIP6_DEV,
                                             IP6_TNL_F_RCV_DSCP_COPY, IP6_TNL_F_USE_ORIG_FWMARK)
    p = dev.parms
    d: dict[str, Any] = {}
    t = ""
    proto = {IPPROTO_IPIP: "ipip6", IPPROTO_IPV6: "ip6ip6", 0: "any"}.get(p.protocol)
    if proto is not None:
        d["proto"] = proto
        t += proto + " "
    d["remote"] = str(ipaddress.IPv6Address(p.daddr))
    d["local"] = str(ipaddress.IPv6Address(p.saddr))
    t += f"remote {d['remote']} local {d['local']} "
    if p.link and dev.net is not None:
        lower = dev.net.get_by_index(p.link)
        name = lower.name if lower is not None else f"if{p.link}"
        d["link"] = name
        t += f"dev {name} "
    d["ttl"] = p.hop_limit
    t += f"hoplimit {p.hop_limit} " if p.hop_limit else "hoplimit inherit "
    if p.flags & IP6_TNL_F_IGN_ENCAP_LIMIT:
        d["ip6_tnl_f_ign_encap_limit"] = True
        t += "encaplimit none "
    else:
        d["encap_limit"] = p.encap_limit
        t += f"encaplimit {p.encap_limit} "
    if p.flags & IP6_TNL_F_USE_ORIG_TCLASS:
        d["ip6_tnl_f_use_orig_tclass"] = True
        t += "tclass inherit "
    else:
        d["tclass"] = f"0x{(p.flowinfo >> 20) & 0xFF:02x}"
        t += f"tclass {d['tclass']} "
    if p.flags & IP6_TNL_F_USE_ORIG_FLOWLABEL:
        d["ip6_tnl_f_use_orig_flowlabel"] = True
        t += "flowlabel inherit "
    else:
        d["flowlabel"] = f"0x{p.flowinfo & 0xFFFFF:05x}"
        t += f"flowlabel {d['flowlabel']} "
    for flag, key, word in ((IP6_TNL_F_RCV_DSCP_COPY, "ip6_tnl_f_rcv_dscp_copy", "dscp inherit"),
                            (IP6_TNL_F_MIP6_DEV, "ip6_tnl_f_mip6_dev", "mip6"),
                            (IP6_TNL_F_ALLOW_LOCAL_REMOTE, "ip6_tnl_f_allow_local_remote",
                             "allow-localremote")):
        if p.flags & flag:
            d[key] = True
            t += word + " "
    if p.flags & IP6_TNL_F_USE_ORIG_FWMARK:
        d["ip6_tnl_f_use_orig_fwmark"] = True
        t += "fwmark inherit "
    elif dev.fwmark:
        d["fwmark"] = f"{dev.fwmark:#x}"
        t += f"fwmark {dev.fwmark:#x} "
    e = encap_json(dev.encap)
    if e is not None:
        d["encap"] = e
    t += encap_text(dev.encap)
    return d if js else t


def link_change(ctx: "Ctx", req: "LinkReq", dev: Any) -> None:
    """``ip link set DEV type ipip|sit|ip6tnl …`` → the kind's changelink."""
    if dev.kind == "ip6tnl":
        from netstack.drivers.ip6_tunnel import ip6_tnl_changelink
        p, enc, fwmark = parse_ip6tnl_opts(ctx, req.type_args, base=dev)
        ip6_tnl_changelink(ctx.net, dev, p, enc, fwmark)
        return
    _iptnl_change(ctx, req, dev)


def _iptnl_change(ctx: "Ctx", req: "LinkReq", dev: IpipDevice) -> None:
    """``ipip_changelink`` (net/ipv4/ipip.c → ``ip_tunnel_changelink`` /
    ``ip_tunnel_update``) and ``ipip6_changelink`` (net/ipv6/sit.c →
    ``ipip6_tunnel_update``): the encapsulation is replaced first; a point-to-point
    device must keep a remote and a device without one cannot get one (EINVAL); another
    tunnel of the kind with the same local/remote/link is EEXIST; then addresses, TTL, TOS
    and pmtudisc are replaced — the mode (protocol) is *not* (neither update copies it) —
    and a new link or fwmark rebinds the MTU (ipip: unless ``mtu`` is given too)."""
    from netstack.core.netdevice import IFF_BROADCAST
    from netstack.ipv4.ip_tunnel_core import ip_tunnel_bind_mtu, tunnels_of
    p, enc, fwmark = parse_iptnl_opts(ctx, dev.kind, req.type_args, base=dev)
    net = dev.net
    dev.encap = enc
    ptp = bool(dev.flags & IFF_POINTOPOINT)
    if ptp != any(p.daddr):
        raise KernelError(errno.EINVAL)
    for t in tunnels_of(net, dev.list_key):
        q = t.parms
        if t is not dev and q.saddr == p.saddr and q.daddr == p.daddr and q.link == p.link:
            raise KernelError(errno.EEXIST)
    if dev.kind == "ipip":
        nflags = IFF_BROADCAST if 224 <= p.daddr[0] <= 239 else \
            IFF_POINTOPOINT if any(p.daddr) else 0
        if (dev.flags ^ nflags) & (IFF_POINTOPOINT | IFF_BROADCAST):
            raise KernelError(errno.EINVAL)
    o = dev.parms
    o.saddr, o.daddr = p.saddr, p.daddr
    dev.address, dev.broadcast = p.saddr, p.daddr
    o.ttl, o.tos, o.pmtudisc = p.ttl, p.tos, p.pmtudisc
    if o.link != p.link or dev.fwmark != fwmark:
        o.link = p.link
        dev.fwmark = fwmark
        mtu = ip_tunnel_bind_mtu(net, dev, o, 20 + dev.tun_hlen(), False)
        if dev.kind == "sit":
            dev.mtu = max(mtu, 1280)
        elif req.mtu is None:
            dev.mtu = mtu
