"""``ip fou add|del|show`` (iproute2 6.1 ip/ipfou.c; kernel net/ipv4/fou_nl.c/fou_core.c).

``add port P ipproto N|gue [local A] [peer A peer_port P] [dev D]`` opens the FOU/GUE
receive socket (:func:`netstack.ipv4.fou.fou_create`); ``del`` removes the mapping with
the same key (ENOENT otherwise); ``show`` lists the mappings in creation order, text and
``-j`` JSON as ``print_fou_mapping`` prints them.  ``-6`` (or ``ip -6 fou``) opens an IPv6
socket (net/ipv6/fou6.c receive through the same ``fou_udp_recv``/``gue_udp_recv``);
``peer A peer_port P`` makes it a connected socket that only takes datagrams from there
(``udp_sock_create`` with ``peer_ip``: ``compute_score`` in the UDP lookup).
"""
from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Args, get_addr, get_unsigned, invarg, kernel_error, matches
from netstack.cli.iplink_gre import tnl_lower_index
from netstack.cli.jsonout import dumps
from netstack.errors import KernelError
from netstack.ipv4.fou import FOU_ENCAP_DIRECT, FOU_ENCAP_GUE, Fou, fou_create, fou_destroy, fous
from netstack.ipv4.udp_tunnel import AF_INET, AF_INET6

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx

USAGE = ("Usage: ip fou add port PORT { ipproto PROTO  | gue } [ -6 ]\n"
         "\t\t   [ local IFADDR ] [ peer IFADDR ]\n"
         "\t\t   [ peer_port PORT ] [ dev IFNAME ]\n"
         "       ip fou del port PORT [ -6 ] [ local IFADDR ]\n"
         "\t\t   [ peer IFADDR ] [ peer_port PORT ]\n"
         "\t\t   [ dev IFNAME ]\n"
         "       ip fou show\n"
         "\n"
         "Where: PROTO { ipproto-name | 1..255 }\n"
         "       PORT { 1..65535 }\n"
         "       IFADDR { addr }\n")


def _proto(text: str) -> int | None:
    """lib/utils.c ``inet_proto_a2n``: a number or a /etc/protocols name."""
    n = get_unsigned(text, 8)
    if n is not None:
        return n
    try:
        return socket.getprotobyname(text)
    except OSError:
        return None


def _parse(ctx: "Ctx", argv: list[str], adding: bool) -> Fou:
    """``fou_parse_opt``."""
    port = None
    proto = None
    gue = False
    local = peer = b""
    peer_port = 0
    ifindex = 0
    family = AF_INET6 if ctx.family == AF_INET6 else AF_INET
    local_text = peer_text = None
    args = Args(argv)
    while args:
        a = args.cur
        if a == "port":
            v = args.next_arg()
            port = get_unsigned(v, 16)
            if not port:
                raise invarg("invalid port", v)
        elif a == "ipproto":
            v = args.next_arg()
            proto = _proto(v)
            if proto is None:
                raise invarg("bad ipproto", v)
        elif a == "gue":
            gue = True
        elif a == "-6":
            family = AF_INET6
        elif a == "local":
            local_text = args.next_arg()
        elif a == "peer":
            peer_text = args.next_arg()
        elif a == "peer_port":
            v = args.next_arg()
            n = get_unsigned(v, 16)
            if not n:
                raise invarg("invalid peer port", v)
            peer_port = n
        elif a == "dev":
            ifindex = tnl_lower_index(ctx, args.next_arg())
        else:
            raise ToolError(USAGE, 255)
        args.advance()
    if port is None:
        raise ToolError("fou: missing port\n", 1)
    if proto is None and not gue and adding:
        raise ToolError("fou: must set ipproto or gue\n", 1)
    if proto is not None and gue:
        raise ToolError("fou: cannot set ipproto and gue\n", 1)
    if bool(peer_port) != bool(peer_text):
        raise ToolError("fou: both peer and peer port must be set\n", 1)
    # the addresses are parsed after the loop, in the mapping's family
    if local_text is not None:
        local = get_addr(local_text, family).addr
    if peer_text is not None:
        peer = get_addr(peer_text, family).addr
    return Fou(port, family, FOU_ENCAP_GUE if gue else FOU_ENCAP_DIRECT, proto or 0,
               local=local, peer=peer, peer_port=peer_port, ifindex=ifindex)


def _show(ctx: "Ctx") -> None:
    rows = []
    text = []
    for f in fous(ctx.net):
        d: dict[str, object] = {"port": f.port}
        s = f"port {f.port}"
        if f.type == FOU_ENCAP_GUE:
            d["gue"] = None
            s += " gue"
        else:
            d["ipproto"] = f.protocol
            s += f" ipproto {f.protocol}"
        d["family"] = "inet6" if f.family == AF_INET6 else "inet"
        if f.family == AF_INET6:
            s += " -6"
        if f.local and any(f.local):
            d["local"] = str(ipaddress.ip_address(f.local))
            s += f" local {d['local']}"
        if f.peer and any(f.peer):
            d["peer"] = str(ipaddress.ip_address(f.peer))
            s += f" peer {d['peer']}"
        if f.peer_port:
            d["peer_port"] = f.peer_port
            s += f" peer_port {f.peer_port}"
        if f.ifindex:
            dev = ctx.net.get_by_index(f.ifindex)
            name = dev.name if dev is not None else str(f.ifindex)
            d["dev"] = name
            s += f" dev {name}"
        rows.append(d)
        text.append(s + "\n")
    if ctx.json:
        ctx.stdout.write(dumps(rows, ctx.pretty) + "\n")
    else:
        ctx.stdout.write("".join(text))


def main(ctx: "Ctx", argv: list[str]) -> int:
    """``do_ipfou``."""
    if not argv:
        raise ToolError(USAGE, 255)
    cmd, rest = argv[0], argv[1:]
    try:
        if matches(cmd, "add"):
            fou_create(ctx.net, _parse(ctx, rest, True))
        elif matches(cmd, "delete"):
            f = _parse(ctx, rest, False)
            fou_destroy(ctx.net, f.port, f.family, f.local, f.peer, f.peer_port, f.ifindex)
        elif matches(cmd, "show"):
            _show(ctx)
        elif matches(cmd, "help"):
            raise ToolError(USAGE, 255)
        else:
            raise ToolError(f'Command "{cmd}" is unknown, try "ip fou help".\n', 255)
    except KernelError as e:
        raise kernel_error(e) from None
    return 0
