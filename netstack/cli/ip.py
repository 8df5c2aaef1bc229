"""The ``ip`` front end (ip/ip.c): global options, then the object by ``matches``.

Object lookup walks ip.c's ``cmds[]`` table in order and takes the first entry the word
abbreviates, which is why ``ip a`` is ``address``, ``ip r`` is ``route`` (before
``rule``), ``ip n`` is ``neighbor`` and ``ip l`` is ``link``.
"""
from __future__ import annotations

from typing import Callable

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import AF_INET, AF_INET6, Ctx, matches
from netstack.core.world import NetnsError
from netstack.errors import NotSupported

Runner = Callable[[Ctx, list[str]], int]

#: ip.c cmds[] in order; None = an object netstack does not model.
_OBJECTS: tuple[tuple[str, str | None], ...] = (
    ("address", "addr"), ("addrlabel", None), ("maddress", "maddr"), ("route", "route"),
    ("rule", "rule"), ("neighbor", "neigh"), ("neighbour", "neigh"), ("ntable", None),
    ("ntbl", None), ("link", "link"), ("l2tp", None), ("fou", "fou"), ("ila", None),
    ("macsec", None), ("tunnel", None), ("tunl", None), ("tuntap", "tuntap"), ("tap", "tuntap"),
    ("token", None), ("tcpmetrics", None), ("tcp_metrics", None), ("monitor", None),
    ("xfrm", None), ("mroute", None), ("mrule", None), ("netns", "netns"),
    ("netconf", None), ("vrf", None), ("sr", None), ("nexthop", None), ("mptcp", None),
    ("ioam", None), ("help", None), ("stats", None),
)


def _global_options(ctx: Ctx, argv: list[str]) -> list[str]:
    """ip.c main(): options while argv[0] starts with '-' ('--x' is '-x'; '--' ends)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        opt = argv[i]
        if opt == "--":
            i += 1
            break
        if opt.startswith("--"):
            opt = opt[1:]
        if matches(opt, "-loops"):
            raise NotSupported("ip -loops")
        elif matches(opt, "-family"):
            i += 1
            if i >= len(argv):
                raise ToolError('Command line is not complete. Try option "help"\n', 255)
            fam = argv[i]
            table = {"inet": AF_INET, "inet6": AF_INET6}
            if fam not in table:
                raise NotSupported(f"ip -family {fam}")
            ctx.family = table[fam]
        elif opt == "-4":
            ctx.family = AF_INET
        elif opt == "-6":
            ctx.family = AF_INET6
        elif opt in ("-0", "-M", "-B"):
            raise NotSupported(f"ip {opt}")
        elif matches(opt, "-human") or matches(opt, "-human-readable") or matches(opt, "-iec"):
            raise NotSupported(f"ip {opt}")
        elif matches(opt, "-stats") or matches(opt, "-statistics"):
            ctx.stats += 1
        elif matches(opt, "-details"):
            ctx.details += 1
        elif matches(opt, "-resolve"):
            raise NotSupported("ip -resolve")
        elif matches(opt, "-oneline"):
            raise NotSupported("ip -oneline")
        elif matches(opt, "-timestamp") or matches(opt, "-tshort") or matches(opt, "-Version") \
                or matches(opt, "-force") or matches(opt, "-batch"):
            raise NotSupported(f"ip {opt}")
        elif matches(opt, "-brief"):
            ctx.brief = True
        elif matches(opt, "-json"):
            ctx.json = True
        elif matches(opt, "-pretty"):
            ctx.pretty = True
        elif matches(opt, "-rcvbuf"):
            raise NotSupported("ip -rcvbuf")
        elif matches(opt, "-color") or opt.startswith("-color="):
            pass  # colour only applies to a terminal; scenario output is never one
        elif matches(opt, "-help"):
            raise NotSupported("ip -help")
        elif matches(opt, "-netns"):
            i += 1
            name = argv[i] if i < len(argv) else "(null)"
            try:
                ctx.net = ctx.world.netns(name if i < len(argv) else "\0")
            except NetnsError:
                raise ToolError(f'Cannot open network namespace "{name}": '
                                "No such file or directory\n", 255) from None
            ctx.ns_name = name
        elif matches(opt, "-Numeric"):
            ctx.numeric = True
        elif matches(opt, "-all") or matches(opt, "-echo"):
            raise NotSupported(f"ip {opt}")
        else:
            raise ToolError(f'Option "{opt}" is unknown, try "ip -help".\n', 255)
        i += 1
    return argv[i:]


def do_ip(ctx: Ctx, argv: list[str], run: Runner) -> int:
    """``ip [OPTIONS] OBJECT [COMMAND [ARGS]]``."""
    rest = _global_options(ctx, argv)
    if not rest:
        raise NotSupported("ip without an object (usage text)")
    obj, args = rest[0], rest[1:]
    for name, mod in _OBJECTS:
        if matches(obj, name):
            if mod is None:
                raise NotSupported(f"ip {name}")
            if mod == "link":
                from netstack.cli.iplink import do_iplink
                return do_iplink(ctx, args)
            if mod == "netns":
                from netstack.cli.ipnetns import do_netns
                return do_netns(ctx, args, run)
            if mod == "addr":
                from netstack.cli.ipaddress import do_ipaddr
                return do_ipaddr(ctx, args)
            if mod == "route":
                from netstack.cli.iproute import do_iproute
                return do_iproute(ctx, args)
            if mod == "rule":
                from netstack.cli.iprule import do_iprule
                return do_iprule(ctx, args)
            if mod in ("fou", "tuntap", "maddr"):
                from netstack.cli.ipcommon import import_cli_module
                m = import_cli_module(f"ip{mod}", f"ip {name}")
                return m.main(ctx, args)  # type: ignore[no-any-return]
            from netstack.cli.ipneigh import do_ipneigh
            return do_ipneigh(ctx, args)
    raise ToolError(f'Object "{obj}" is unknown, try "ip help".\n', 1)
