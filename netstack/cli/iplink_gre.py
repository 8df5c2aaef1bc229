"""``ip link add … type gre|gretap|ip6gre|ip6gretap …`` and their ``ip -d link`` part
(iproute2 6.1 ip/link_gre.c, ip/link_gre6.c, ip/tunnel.c ``tnl_print_encap``; kernel
net/ipv4/ip_gre.c ``ipgre_netlink_parms``, net/ipv6/ip6_gre.c).

The option words and their texts follow ``gre_parse_opt``: ``[i|o]key KEY`` (a number or
a dotted quad), ``[i|o]seq``, ``[i|o]csum``, ``[no]pmtudisc``, ``[no]ignore-df``,
``remote``/``local`` (``any`` = 0), ``dev``, ``ttl``/``hoplimit`` (``inherit`` = 0),
``tos``/``dsfield`` (``inherit`` = 1), ``fwmark``, and the encapsulation words shared with
ipip/sit (:func:`parse_encap`).  The kernel of the test machine has no GRE module, so the
output follows the iproute2 source.
"""
from __future__ import annotations

import errno
import ipaddress
from typing import TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Args, get_addr, get_unsigned, invarg, matches
from netstack.drivers.ip_gre import GreDevice, GretapDevice, gre_newlink
from netstack.errors import KernelError, NotSupported
from netstack.ipv4.ip_tunnel_core import (TUNNEL_CSUM, TUNNEL_ENCAP_FLAG_CSUM,
                                          TUNNEL_ENCAP_FLAG_CSUM6, TUNNEL_ENCAP_FLAG_REMCSUM,
                                          TUNNEL_ENCAP_FOU, TUNNEL_ENCAP_GUE, TUNNEL_ENCAP_NONE,
                                          TUNNEL_KEY, TUNNEL_SEQ, TunnelEncap, TunnelParms)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.cli.iplink import LinkReq

#: The usage lines every IP tunnel kind prints for the collect-metadata and FOU/GUE
#: encapsulation words (iproute2 6.1 link_gre.c, link_gre6.c, link_iptnl.c,
#: link_ip6tnl.c ``print_usage``)
TNL_ENCAP_USAGE = ("\t\t\t[ external ]\n"
                   "\t\t\t[ noencap ]\n"
                   "\t\t\t[ encap { fou | gue | none } ]\n"
                   "\t\t\t[ encap-sport PORT ]\n"
                   "\t\t\t[ encap-dport PORT ]\n"
                   "\t\t\t[ [no]encap-csum ]\n"
                   "\t\t\t[ [no]encap-csum6 ]\n"
                   "\t\t\t[ [no]encap-remcsum ]\n")
_GRE_BODY = ("\t\t\t[ local ADDR ]\n"
             "\t\t\t[ [no][i|o]seq ]\n"
             "\t\t\t[ [i|o]key KEY | no[i|o]key ]\n"
             "\t\t\t[ [no][i|o]csum ]\n"
             "\t\t\t[ ttl TTL ]\n"
             "\t\t\t[ tos TOS ]\n"
             "\t\t\t[ [no]pmtudisc ]\n"
             "\t\t\t[ [no]ignore-df ]\n"
             "\t\t\t[ dev PHYS_DEV ]\n"
             "\t\t\t[ fwmark MARK ]\n"
             + TNL_ENCAP_USAGE +
             "\n"
             "Where:\tADDR := { IP_ADDRESS | any }\n"
             "\tTOS  := { NUMBER | inherit }\n"
             "\tTTL  := { 1..255 | inherit }\n"
             "\tKEY  := { DOTTED_QUAD | NUMBER }\n"
             "\tMARK := { 0x0..0xffffffff }\n")
_GRE6_BODY = ("\t\t\t[ local ADDR ]\n"
              "\t\t\t[ [no][i|o]seq ]\n"
              "\t\t\t[ [i|o]key KEY | no[i|o]key ]\n"
              "\t\t\t[ [no][i|o]csum ]\n"
              "\t\t\t[ hoplimit TTL ]\n"
              "\t\t\t[ encaplimit ELIM ]\n"
              "\t\t\t[ tclass TCLASS ]\n"
              "\t\t\t[ flowlabel FLOWLABEL ]\n"
              "\t\t\t[ dscp inherit ]\n"
              "\t\t\t[ dev PHYS_DEV ]\n"
              "\t\t\t[ fwmark MARK ]\n"
              "\t\t\t[ [no]allow-localremote ]\n"
              + TNL_ENCAP_USAGE +
              "\t\t\t[ erspan_ver version ]\n"
              "\t\t\t[ erspan IDX ]\n"
              "\t\t\t[ erspan_dir { ingress | egress } ]\n"
              "\t\t\t[ erspan_hwid hwid ]\n"
              "\n"
              "Where:\tADDR\t  := IPV6_ADDRESS\n"
              "\tTTL\t  := { 0..255 } (default=64)\n"
              "\tKEY\t  := { DOTTED_QUAD | NUMBER }\n"
              "\tELIM\t  := { none | 0..255 }(default=4)\n"
              "\tTCLASS\t  := { 0x0..0xff | inherit }\n"
              "\tFLOWLABEL := { 0x0..0xfffff | inherit }\n"
              "\tMARK\t  := { 0x0..0xffffffff | inherit }\n")


def usage(kind: str) -> ToolError:
    """``gre_print_help``/``gre6`` ``print_usage`` (iproute2 6.1: ``%-9s`` kind column),
    printed on stderr for an unknown word; ip exits 1."""
    body = _GRE6_BODY if kind.startswith("ip6") else _GRE_BODY
    return ToolError(f"Usage: ... {kind:<9}\t[ remote ADDR ]\n" + body, 1)


def tnl_parse_key(name: str, text: str) -> int:
    """ip/tunnel.c ``tnl_parse_key``: a dotted quad (``get_addr32``) or a u32."""
    if "." in text:
        return int.from_bytes(get_addr32(text), "big")
    v = get_unsigned(text)
    if v is None:
        raise ToolError(f'invalid value for "{name}": "{text}"; it should be an unsigned '
                        "integer\n", 255)
    return v


def get_addr32(text: str) -> bytes:
    """lib/utils.c ``get_addr32``: an IPv4 address or exit 1."""
    try:
        return ipaddress.IPv4Address(text).packed
    except ValueError:
        raise ToolError(f'Error: an IP address is expected rather than "{text}"\n', 1) from None


def parse_encap(args: Args, enc: TunnelEncap) -> bool:
    """The encapsulation words of link_gre.c/link_iptnl.c; True when ``args.cur`` was one."""
    a = args.cur
    if a == "noencap":
        enc.type = TUNNEL_ENCAP_NONE
    elif a == "encap":
        v = args.next_arg()
        if v == "fou":
            enc.type = TUNNEL_ENCAP_FOU
        elif v == "gue":
            enc.type = TUNNEL_ENCAP_GUE
        elif v == "none":
            enc.type = TUNNEL_ENCAP_NONE
        else:
            raise invarg("Invalid encap type.", v)
    elif a == "encap-sport":
        v = args.next_arg()
        if v == "auto":
            enc.sport = 0
        else:
            n = get_unsigned(v, 16)
            if n is None:
                raise invarg("Invalid source port.", v)
            enc.sport = n
    elif a == "encap-dport":
        v = args.next_arg()
        n = get_unsigned(v, 16)
        if n is None:
            raise invarg("Invalid destination port.", v)
        enc.dport = n
    elif a == "encap-csum":
        enc.flags |= TUNNEL_ENCAP_FLAG_CSUM
    elif a == "noencap-csum":
        enc.flags &= ~TUNNEL_ENCAP_FLAG_CSUM
    elif a == "encap-udp6-csum":
        enc.flags |= TUNNEL_ENCAP_FLAG_CSUM6
    elif a == "noencap-udp6-csum":
        enc.flags &= ~TUNNEL_ENCAP_FLAG_CSUM6
    elif a == "encap-remcsum":
        enc.flags |= TUNNEL_ENCAP_FLAG_REMCSUM
    elif a == "noencap-remcsum":
        enc.flags &= ~TUNNEL_ENCAP_FLAG_REMCSUM
    else:
        return False
    return True


def tnl_lower_index(ctx: "Ctx", name: str) -> int:
    """``dev NAME`` of a tunnel (gre/ip6gre/ip6tnl/vxlan link options, ``ip fou``):
    ``ll_name_to_index``, and when there is no such device iproute2's link parsers print
    ``Cannot find device "NAME"`` and ``exit(-1)`` (status 255, unlike the exit 1 of
    :func:`netstack.cli.ipcommon.lookup_dev`)."""
    d = ctx.net.get(name)
    if d is None:
        raise ToolError(f'Cannot find device "{name}"\n', 255)
    return d.ifindex


def tnl_parse_ttl(v: str, err: str) -> int:
    """``ttl``/``hoplimit`` of gre/ipip/sit/ip6gre/ip6tnl: ``inherit`` is 0, else a
    ``get_u8`` number; *err* is the parser's own text (``invalid TTL``/``invalid HLIM``)."""
    if v == "inherit":
        return 0
    n = get_unsigned(v, 8)
    if n is None:
        raise invarg(err, v)
    return n


def tnl_parse_hex_u8(v: str, err: str) -> int:
    """The ``tos``/``tclass`` byte of link_gre.c/link_gre6.c: a hexadecimal number up to
    255 (``rtnl_dsfield_a2n`` without its name table); *err* is the ``invarg`` text."""
    try:
        n = int(v, 16)
    except ValueError:
        raise invarg(err, v) from None
    if not 0 <= n <= 255:
        raise invarg(err, v)
    return n


def tnl_parse_fwmark(v: str) -> int:
    """``fwmark MARK`` of gre/ip6gre/ipip/sit/ip6tnl: a ``get_u32`` number (``invalid
    fwmark``)."""
    n = get_unsigned(v)
    if n is None:
        raise invarg("invalid fwmark\n", v)
    return n


def _io_flag_word(a: str, p: TunnelParms) -> bool:
    """``[i|o]seq``, ``[i|o]csum`` and their ``no`` forms (gre_parse_opt): set or clear
    the flag on the input side, the output side or both; False if *a* is none of them
    (abbreviations match in gre_parse_opt's order)."""
    for word, flag in (("seq", TUNNEL_SEQ), ("csum", TUNNEL_CSUM)):
        if matches(a, word):
            p.i_flags |= flag
            p.o_flags |= flag
        elif matches(a, "i" + word):
            p.i_flags |= flag
        elif matches(a, "o" + word):
            p.o_flags |= flag
        elif a in ("no" + word, "noi" + word, "noo" + word):
            if a != "noo" + word:
                p.i_flags &= ~flag
            if a != "noi" + word:
                p.o_flags &= ~flag
        else:
            continue
        return True
    return False


def parse_common(ctx: "Ctx", args: Args, p: TunnelParms) -> bool:
    """remote/local/dev/ttl/tos/pmtudisc words shared by gre and iptnl."""
    a = args.cur
    if a == "remote":
        v = args.next_arg()
        p.daddr = b"\0\0\0\0" if v == "any" else get_addr(v, 2).addr
    elif a == "local":
        v = args.next_arg()
        p.saddr = b"\0\0\0\0" if v == "any" else get_addr(v, 2).addr
    elif matches(a, "dev"):
        p.link = tnl_lower_index(ctx, args.next_arg())
    elif matches(a, "ttl") or matches(a, "hoplimit") or matches(a, "hlim"):
        p.ttl = tnl_parse_ttl(args.next_arg(), "invalid TTL\n")
    elif matches(a, "tos") or matches(a, "tclass") or matches(a, "dsfield"):
        v = args.next_arg()
        p.tos = 1 if v == "inherit" else tnl_parse_hex_u8(v, "bad TOS value")
    elif a == "nopmtudisc":
        p.pmtudisc = False
    elif a == "pmtudisc":
        p.pmtudisc = True
    else:
        return False
    return True


def parse_gre_opts(ctx: "Ctx", kind: str, argv: list[str],
                   base: Any = None) -> tuple[TunnelParms, TunnelEncap, bool, int]:
    """``gre_parse_opt`` → (parms, encap, ignore_df, fwmark).  ``base`` (``ip link
    set``): iproute2 starts from the device's IFLA_GRE_* attributes (link_gre.c reads
    them with RTM_GETLINK first); the encapsulation ports come back byte-swapped
    (``rta_getattr_u16`` then ``htons``), as with link_iptnl.c."""
    p = TunnelParms()
    p.protocol = 47
    enc = TunnelEncap()
    ignore_df = False
    fwmark = 0
    if base is not None:
        q = base.parms
        for f in ("link", "i_flags", "o_flags", "i_key", "o_key", "saddr", "daddr", "ttl",
                  "tos", "pmtudisc"):
            setattr(p, f, getattr(q, f))
        e = base.encap

        def swab(v: int) -> int:
            return ((v & 0xFF) << 8) | (v >> 8)
        enc = TunnelEncap(e.type, e.flags, swab(e.sport), swab(e.dport))
        ignore_df, fwmark = base.ignore_df, base.fwmark
    args = Args(argv)
    while args:
        a = args.cur
        if matches(a, "key"):
            v = args.next_arg()
            k = tnl_parse_key("key", v)
            p.i_key = p.o_key = k
            p.i_flags |= TUNNEL_KEY
            p.o_flags |= TUNNEL_KEY
        elif matches(a, "ikey"):
            v = args.next_arg()
            p.i_key = tnl_parse_key("ikey", v)
            p.i_flags |= TUNNEL_KEY
        elif matches(a, "okey"):
            v = args.next_arg()
            p.o_key = tnl_parse_key("okey", v)
            p.o_flags |= TUNNEL_KEY
        elif a in ("nokey", "noikey", "nookey"):
            if a != "nookey":
                p.i_flags &= ~TUNNEL_KEY
                p.i_key = 0
            if a != "noikey":
                p.o_flags &= ~TUNNEL_KEY
                p.o_key = 0
        elif _io_flag_word(a, p):
            pass
        elif a == "ignore-df":
            ignore_df = True
        elif a == "noignore-df":
            ignore_df = False
        elif a == "fwmark":
            fwmark = tnl_parse_fwmark(args.next_arg())
        elif a == "external":
            raise NotSupported(f"ip link add type {kind} external")
        elif a.startswith("erspan"):
            raise NotSupported(f"ip link add type {kind} {a}")
        elif not (parse_common(ctx, args, p) or parse_encap(args, enc)):
            raise usage(kind)
        args.advance()
    if 224 <= p.daddr[0] <= 239:
        # a broadcast (multicast) tunnel keys on its group unless a key was given
        if not p.i_key:
            p.i_key = int.from_bytes(p.daddr, "big")
            p.i_flags |= TUNNEL_KEY
        if not p.o_key:
            p.o_key = int.from_bytes(p.daddr, "big")
            p.o_flags |= TUNNEL_KEY
        if not any(p.saddr):
            raise ToolError("A broadcast tunnel requires a source address.\n", 1)
    return p, enc, ignore_df, fwmark


def tnl_newlink_name(req: "LinkReq", net: Any, template: str, first: int = 0) -> str:
    """The name ``rtnl_newlink`` gives a new tunnel device: ``IFLA_IFNAME`` must pass the
    netlink policy (shorter than ``IFNAMSIZ``) and be free (``EEXIST``); without one,
    ``alloc_netdev(template)`` takes the lowest free ``%d`` from *first* (1 where the
    kernel keeps index 0 for the per-namespace fallback device, e.g. ``ipip0``, ``sit0``,
    ``ip6tnl0``).  Shared by every tunnel kind (net/core/rtnetlink.c, net/core/dev.c
    ``dev_alloc_name``) so the checks live in one place.
    """
    name = req.name or req.dev
    if name is not None and len(name) >= 16:
        raise KernelError(errno.EINVAL, "Attribute failed policy validation")
    if name is not None and name in net.devices:
        raise KernelError(errno.EEXIST)
    if name is None:
        i = first
        while template % i in net.devices:
            i += 1
        name = template % i
    return name


def tnl_newlink_finish(req: "LinkReq", net: Any, dev: Any) -> None:
    """What ``rtnl_newlink`` applies to a registered tunnel device after the kind's
    ``newlink``: ``IFLA_TXQLEN``, the ``ifi_flags``/``ifi_change`` pair and ``up``
    (``rtnl_configure_link`` → ``dev_open``).  One place for all tunnel kinds.
    """
    if req.txqlen is not None:
        dev.txqlen = req.txqlen
    dev.flags = (dev.flags | req.flags_on) & ~req.flags_off
    if req.up:
        net.dev_open(dev)


def link_add(ctx: "Ctx", req: "LinkReq", net: Any) -> None:
    """``rtnl_newlink`` for gre/gretap (ip6gre/ip6gretap: not supported)."""
    kind = req.kind
    if kind in ("ip6gre", "ip6gretap"):
        _link_add6(ctx, req, net)
        return
    p, enc, ignore_df, fwmark = parse_gre_opts(ctx, kind, req.type_args)
    if ignore_df and p.pmtudisc:
        # ipgre_netlink_parms: ignore-df needs nopmtudisc (DF set otherwise)
        raise KernelError(errno.EINVAL)
    name = tnl_newlink_name(req, net, "gre%d" if kind == "gre" else "gretap%d")
    if kind == "gretap":
        dev: GreDevice = GretapDevice(name, p, enc, req.address or ctx.world.random_mac())
    else:
        dev = GreDevice(name, p, enc)
    dev.ignore_df = ignore_df
    dev.fwmark = fwmark
    gre_newlink(net, dev, req.mtu, req.index or 0)
    tnl_newlink_finish(req, net, dev)


# ------------------------------------------------------------------------ output
def tnl_addr_text(raw: bytes) -> str:
    """A tunnel endpoint as ``ip -d link`` prints it: ``any`` for the unspecified address
    (iproute2 ip/tunnel.c ``tnl_print_endpoint``)."""
    return str(ipaddress.ip_address(raw)) if any(raw) else "any"


def tnl_lower_name(dev: Any) -> str | None:
    """The name of a tunnel's ``dev`` (``IFLA_*_LINK``) for ``ip -d link``, None when the
    tunnel is not bound or the device is gone (``ll_index_to_name`` in gre_print_opt,
    gre6_print_opt, iptunnel_print_opt)."""
    link = dev.parms.link
    if link and dev.net is not None:
        lower = dev.net.get_by_index(link)
        if lower is not None:
            return str(lower.name)
    return None


def tnl4_head_text(dev: Any) -> str:
    """``remote``, ``local``, ``dev``, ``ttl`` and ``tos`` as gre_print_opt and
    iptunnel_print_opt print them for an IPv4 tunnel."""
    p = dev.parms
    s = f"remote {tnl_addr_text(p.daddr)} local {tnl_addr_text(p.saddr)} "
    lower = tnl_lower_name(dev)
    if lower is not None:
        s += f"dev {lower} "
    s += f"ttl {p.ttl} " if p.ttl else "ttl inherit "
    if p.tos:
        s += "tos inherit " if p.tos == 1 else f"tos {p.tos:#x} "
    return s


def tnl4_head_json(dev: Any, d: dict[str, Any]) -> dict[str, Any]:
    """JSON twin of :func:`tnl4_head_text`, added to *d* (returned)."""
    p = dev.parms
    d["remote"] = tnl_addr_text(p.daddr)
    d["local"] = tnl_addr_text(p.saddr)
    lower = tnl_lower_name(dev)
    if lower is not None:
        d["link"] = lower
    d["ttl"] = p.ttl
    if p.tos:
        d["tos"] = f"{p.tos:#x}"
    return d


def tnl_tail_text(dev: Any) -> str:
    """The end every IP tunnel's ``print_opt`` text shares: ``fwmark`` when set, then
    :func:`encap_text`."""
    s = f"fwmark {dev.fwmark:#x} " if dev.fwmark else ""
    return s + encap_text(dev.encap)


def tnl_tail_json(dev: Any, d: dict[str, Any]) -> dict[str, Any]:
    """JSON twin of :func:`tnl_tail_text`: ``fwmark`` and the ``encap`` object, added
    to *d* (returned)."""
    if dev.fwmark:
        d["fwmark"] = f"{dev.fwmark:#x}"
    e = encap_json(dev.encap)
    if e is not None:
        d["encap"] = e
    return d


def encap_text(enc: TunnelEncap) -> str:
    """``tnl_print_encap`` text."""
    if enc.type == TUNNEL_ENCAP_NONE:
        return ""
    s = "encap " + ("fou " if enc.type == TUNNEL_ENCAP_FOU else "gue ")
    s += "encap-sport auto " if not enc.sport else f"encap-sport {enc.sport} "
    s += f"encap-dport {enc.dport} "
    s += ("" if enc.flags & TUNNEL_ENCAP_FLAG_CSUM else "no") + "encap-csum "
    s += ("" if enc.flags & TUNNEL_ENCAP_FLAG_CSUM6 else "no") + "encap-csum6 "
    s += ("" if enc.flags & TUNNEL_ENCAP_FLAG_REMCSUM else "no") + "encap-remcsum "
    return s


def encap_json(enc: TunnelEncap) -> dict[str, Any] | None:
    """``tnl_print_encap`` JSON object ``encap``."""
    if enc.type == TUNNEL_ENCAP_NONE:
        return None
    return {"type": "fou" if enc.type == TUNNEL_ENCAP_FOU else "gue", "sport": enc.sport,
            "dport": enc.dport, "csum": bool(enc.flags & TUNNEL_ENCAP_FLAG_CSUM),
            "csum6": bool(enc.flags & TUNNEL_ENCAP_FLAG_CSUM6),
            "remcsum": bool(enc.flags & TUNNEL_ENCAP_FLAG_REMCSUM)}


def info_data_text(dev: GreDevice) -> str:
    """``gre_print_opt`` / ``gre6_print_opt`` text."""
    if dev.kind in ("ip6gre", "ip6gretap"):
        return _info6_text(dev)
    p = dev.parms
    s = tnl4_head_text(dev)
    if not p.pmtudisc:
        s += "nopmtudisc "
    if dev.ignore_df:
        s += "ignore-df "
    return s + _keys_text(p) + tnl_tail_text(dev)


def info_data_json(dev: GreDevice) -> dict[str, Any]:
    """``gre_print_opt`` / ``gre6_print_opt`` JSON."""
    if dev.kind in ("ip6gre", "ip6gretap"):
        return _info6_json(dev)
    p = dev.parms
    d = tnl4_head_json(dev, {})
    d["pmtudisc"] = p.pmtudisc
    if dev.ignore_df:
        d["ignore_df"] = True
    _keys_json(p, d)
    return tnl_tail_json(dev, d)


# ------------------------------------------------------------------ ip6gre (link_gre6.c)
def parse_gre6_opts(ctx: "Ctx", kind: str, argv: list[str],
                    enc: TunnelEncap | None = None) -> tuple[Any, int]:
    """``gre6_parse_opt`` → (parms, fwmark); the FOU/GUE words fill ``enc`` (link_gre6.c
    starts from ``encap-csum6``, as link_ip6tnl.c)."""
    from netstack.drivers.ip6_gre import (IP6_TNL_F_IGN_ENCAP_LIMIT, IP6_TNL_F_USE_ORIG_FLOWLABEL,
                                          IP6_TNL_F_USE_ORIG_TCLASS, Ip6TunnelParms)
    p = Ip6TunnelParms()
    fwmark = 0
    args = Args(argv)
    gre_words = []
    while args:
        a = args.cur
        if a in ("remote", "local"):
            v = args.next_arg()
            raw = bytes(16) if v == "any" else get_addr(v, 10).addr
            if a == "remote":
                p.daddr = raw
            else:
                p.saddr = raw
        elif matches(a, "dev"):
            p.link = tnl_lower_index(ctx, args.next_arg())
        elif matches(a, "ttl") or matches(a, "hoplimit") or matches(a, "hlim"):
            p.hop_limit = tnl_parse_ttl(args.next_arg(), "invalid HLIM\n")
        elif matches(a, "tos") or matches(a, "tclass") or matches(a, "dsfield"):
            v = args.next_arg()
            p.flowinfo &= ~(0xFF << 20)
            if v == "inherit":
                p.flags |= IP6_TNL_F_USE_ORIG_TCLASS
            else:
                p.flowinfo |= tnl_parse_hex_u8(v, "invalid TClass") << 20
                p.flags &= ~IP6_TNL_F_USE_ORIG_TCLASS
        elif matches(a, "flowlabel") or matches(a, "fl"):
            v = args.next_arg()
            p.flowinfo &= ~0xFFFFF
            if v == "inherit":
                p.flags |= IP6_TNL_F_USE_ORIG_FLOWLABEL
            else:
                try:
                    n = int(v, 16)
                except ValueError:
                    raise invarg("invalid Flowlabel", v) from None
                if n > 0xFFFFF:
                    raise invarg("invalid Flowlabel", v)
                p.flowinfo |= n
                p.flags &= ~IP6_TNL_F_USE_ORIG_FLOWLABEL
        elif a == "encaplimit":
            v = args.next_arg()
            if v == "none":
                p.flags |= IP6_TNL_F_IGN_ENCAP_LIMIT
            else:
                n = get_unsigned(v, 8)
                if n is None:
                    raise invarg("invalid ELIM", v)
                p.encap_limit = n
                p.flags &= ~IP6_TNL_F_IGN_ENCAP_LIMIT
        elif a == "fwmark":
            fwmark = tnl_parse_fwmark(args.next_arg())
        elif enc is not None and parse_encap(args, enc):
            pass
        elif a in ("external", "allow-localremote", "noallow-localremote") or \
                a.startswith("erspan"):
            raise NotSupported(f"ip link add type {kind} {a}")
        else:
            gre_words.append(a)
            if a in ("key", "ikey", "okey") or matches(a, "key") or matches(a, "ikey") \
                    or matches(a, "okey"):
                gre_words.append(args.next_arg())
        args.advance()
    q, _enc, _idf, _fw = parse_gre_opts(ctx, kind, gre_words)
    p.i_flags, p.o_flags, p.i_key, p.o_key = q.i_flags, q.o_flags, q.i_key, q.o_key
    p.protocol = 47
    return p, fwmark


def _link_add6(ctx: "Ctx", req: "LinkReq", net: Any) -> None:
    from netstack.drivers.ip6_gre import Ip6GreDevice, Ip6GretapDevice, ip6gre_newlink
    from netstack.ipv4.ip_tunnel_core import TUNNEL_ENCAP_FLAG_CSUM6
    kind = req.kind
    enc = TunnelEncap(flags=TUNNEL_ENCAP_FLAG_CSUM6)
    p, fwmark = parse_gre6_opts(ctx, kind, req.type_args, enc)
    name = tnl_newlink_name(req, net, "ip6gre%d" if kind == "ip6gre" else "ip6gretap%d")
    if kind == "ip6gretap":
        dev: Any = Ip6GretapDevice(name, p, enc, req.address or ctx.world.random_mac())
    else:
        dev = Ip6GreDevice(name, p, enc)
    dev.fwmark = fwmark
    ip6gre_newlink(net, dev, req.mtu, req.index or 0)
    tnl_newlink_finish(req, net, dev)


def _keys_json(p: TunnelParms, d: dict[str, Any]) -> None:
    """``ikey``/``okey`` (dotted quads) and ``iseq``/``oseq``/``icsum``/``ocsum`` of
    gre_print_opt/gre6_print_opt, added to *d*."""
    if p.i_flags & TUNNEL_KEY:
        d["ikey"] = str(ipaddress.IPv4Address(p.i_key))
    if p.o_flags & TUNNEL_KEY:
        d["okey"] = str(ipaddress.IPv4Address(p.o_key))
    for flag, key in ((TUNNEL_SEQ, "seq"), (TUNNEL_CSUM, "csum")):
        if p.i_flags & flag:
            d["i" + key] = True
        if p.o_flags & flag:
            d["o" + key] = True


def _keys_text(p: TunnelParms) -> str:
    """Text twin of :func:`_keys_json`."""
    s = ""
    if p.i_flags & TUNNEL_KEY:
        s += f"ikey {ipaddress.IPv4Address(p.i_key)} "
    if p.o_flags & TUNNEL_KEY:
        s += f"okey {ipaddress.IPv4Address(p.o_key)} "
    for flag, word in ((TUNNEL_SEQ, "seq"), (TUNNEL_CSUM, "csum")):
        if p.i_flags & flag:
            s += f"i{word} "
        if p.o_flags & flag:
            s += f"o{word} "
    return s


def _info6_text(dev: Any) -> str:
    from netstack.drivers.ip6_gre import (IP6_TNL_F_IGN_ENCAP_LIMIT, IP6_TNL_F_USE_ORIG_FLOWLABEL,
                                          IP6_TNL_F_USE_ORIG_TCLASS)
    p = dev.parms
    s = f"remote {tnl_addr_text(p.daddr)} local {tnl_addr_text(p.saddr)} "
    lower = tnl_lower_name(dev)
    if lower is not None:
        s += f"dev {lower} "
    s += f"hoplimit {p.hop_limit} " if p.hop_limit else "hoplimit inherit "
    if p.flags & IP6_TNL_F_IGN_ENCAP_LIMIT:
        s += "encaplimit none "
    else:
        s += f"encaplimit {p.encap_limit} "
    if p.flags & IP6_TNL_F_USE_ORIG_FLOWLABEL:
        s += "flowlabel inherit "
    else:
        s += f"flowlabel 0x{p.flowinfo & 0xFFFFF:05x} "
    if p.flags & IP6_TNL_F_USE_ORIG_TCLASS:
        s += "tclass inherit "
    else:
        s += f"tclass 0x{(p.flowinfo >> 20) & 0xFF:02x} "
    return s + _keys_text(p) + tnl_tail_text(dev)


def _info6_json(dev: Any) -> dict[str, Any]:
    from netstack.drivers.ip6_gre import (IP6_TNL_F_IGN_ENCAP_LIMIT, IP6_TNL_F_USE_ORIG_FLOWLABEL,
                                          IP6_TNL_F_USE_ORIG_TCLASS)
    p = dev.parms
    d: dict[str, Any] = {"remote": tnl_addr_text(p.daddr), "local": tnl_addr_text(p.saddr)}
    lower = tnl_lower_name(dev)
    if lower is not None:
        d["link"] = lower
    d["ttl"] = p.hop_limit
    if p.flags & IP6_TNL_F_IGN_ENCAP_LIMIT:
        d["ip6_tnl_f_ign_encap_limit"] = True
    else:
        d["encap_limit"] = p.encap_limit
    if p.flags & IP6_TNL_F_USE_ORIG_FLOWLABEL:
        d["ip6_tnl_f_use_orig_flowlabel"] = True
    else:
        d["flowlabel"] = f"0x{p.flowinfo & 0xFFFFF:05x}"
    if p.flags & IP6_TNL_F_USE_ORIG_TCLASS:
        d["ip6_tnl_f_use_orig_tclass"] = True
    else:
        d["tclass"] = f"0x{(p.flowinfo >> 20) & 0xFF:02x}"
    _keys_json(p, d)
    return tnl_tail_json(dev, d)


def link_change(ctx: "Ctx", req: "LinkReq", dev: Any) -> None:
    """``ip link set DEV type gre|gretap …`` → ``ipgre_changelink`` (net/ipv4/ip_gre.c);
    ip6gre/ip6gretap changelink is not modelled."""
    if dev.kind not in ("gre", "gretap"):
        raise NotSupported(f"ip link set ... type {dev.kind}")
    from netstack.drivers.ip_gre import gre_changelink
    p, enc, ignore_df, fwmark = parse_gre_opts(ctx, dev.kind, req.type_args, base=dev)
    gre_changelink(dev, p, enc, ignore_df, fwmark, req.mtu is None)
