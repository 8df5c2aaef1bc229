"""``iptables``/``ip6tables``, ``iptables-save``/``ip6tables-save`` and
``iptables-translate``/``ip6tables-translate`` (iptables 1.8.9, nf_tables variant) against
the current namespace.

Each command is parsed completely before anything changes (as xtables does: the parse ends
in exit(2) on any bad option), then applied to the namespace's xtables state
(:mod:`netstack.netfilter.xtables.tables`).  Messages and exit codes are the real tool's.
"""
from __future__ import annotations

import os
import time

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Ctx
from netstack.errors import NotSupported
from netstack.netfilter.xtables.errors import XtablesError, XtablesExit, param_problem
from netstack.netfilter.xtables.parse import Family, parse_command
from netstack.netfilter.xtables.nftsync import apply_synced, pull_counters
from netstack.netfilter.xtables.tables import TABLE_ORDER, set_state, state_of
from netstack.netfilter.xtables.translate import translate_main

TOOLS = ("iptables", "ip6tables", "iptables-nft", "ip6tables-nft", "iptables-save",
         "ip6tables-save", "iptables-nft-save", "ip6tables-nft-save", "iptables-translate",
         "ip6tables-translate")


def _family(prog: str) -> Family:
    return Family.IPV6 if prog.startswith("ip6") else Family.IPV4


#: hand every change to the nft front end (the datapath's ruleset); tests of the
#: iptables front end alone turn this off
SYNC_TO_NFT = True
_WRITES = set("AIRDNXEPFZ")


def do_iptables(ctx: Ctx, argv: list[str], prog: str) -> int:
    """``iptables ARGS`` / ``ip6tables ARGS``: one command against ctx.net."""
    prog = prog.replace("-nft", "")
    fam = _family(prog)
    try:
        pc = parse_command(prog, argv)
        st = state_of(ctx.net, fam)
        if SYNC_TO_NFT:
            st, out = apply_synced(ctx.net, st, pc.table, lambda s: s.run(pc),
                                   pc.command in _WRITES)
            set_state(ctx.net, fam, st)
        else:
            out = st.run(pc)
    except XtablesError as e:
        raise ToolError(e.stderr, e.status) from None
    except XtablesExit as e:
        out = e.stdout
    ctx.stdout.write(out)
    return 0


def _ctime() -> str:
    """ctime(3) without the newline: day of month padded with a space."""
    t = time.localtime()
    return time.strftime("%a %b ", t) + f"{t.tm_mday:2d}" + time.strftime(" %H:%M:%S %Y", t)


def do_iptables_save(ctx: Ctx, argv: list[str], prog: str) -> int:
    """``iptables-save [-c] [-t TABLE]`` (xtables-save.c)."""
    prog = prog.replace("-nft", "")
    table: str | None = None
    counters = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-c", "--counters"):
            counters = True
        elif a in ("-t", "--table"):
            if i + 1 >= len(argv):
                raise ToolError(f"{prog}: option requires an argument -- 't'\n", 1)
            i += 1
            table = argv[i]
        elif a.startswith("-t") and len(a) > 2:
            table = a[2:]
        else:
            raise NotSupported(f"{prog} {a}")
        i += 1
    if table is not None and table not in TABLE_ORDER:
        raise ToolError(f"{prog} v1.8.9 (nf_tables): table '{table}' does not exist\n", 1)
    st = state_of(ctx.net, _family(prog))
    if SYNC_TO_NFT:
        pull_counters(ctx.net, st)
    ctx.stdout.write(st.save(prog, table, counters, _ctime()))
    return 0


def do_iptables_translate(ctx: Ctx, argv: list[str], prog: str) -> int:
    """``iptables-translate ARGS``: print the nft command, change nothing."""
    out, err, rc = translate_main(prog, argv)
    ctx.stdout.write(out)
    if rc:
        raise ToolError(err, rc)
    ctx.stderr.write(err)
    return 0


def dispatch_xtables(ctx: Ctx, argv: list[str]) -> int:
    """Entry point for the scenario dispatcher and ``netstack iptables…``."""
    prog = os.path.basename(argv[0])
    if prog.endswith("-save"):
        return do_iptables_save(ctx, argv[1:], prog.replace("-nft", ""))
    if prog.endswith("-translate"):
        return do_iptables_translate(ctx, argv[1:], prog)
    return do_iptables(ctx, argv[1:], prog)


__all__ = ["TOOLS", "dispatch_xtables", "do_iptables", "do_iptables_save",
           "do_iptables_translate", "param_problem"]
