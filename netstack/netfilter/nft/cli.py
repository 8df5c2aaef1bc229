"""The ``nft`` command (nftables 1.0.6 src/main.c, src/libnftables.c).

Options handled: ``-f FILE`` (one atomic batch), ``-c``/``--check`` (evaluate, apply
nothing), ``-a``/``--handle``, ``--debug=netlink`` / ``-d netlink`` (print the batch's
kernel expressions), ``-s``/``--stateless``… and the command words themselves.  Errors are
printed as nft prints them (``erec_print``): with ``FILE:LINE:COL-COL:`` for files and
without for the command line, then the input line and carets; the exit status is 1."""
from __future__ import annotations

import os
from typing import Any

from netstack.cli.errors import ToolError
from netstack.errors import NotSupported
from netstack.netfilter.nft.commands import Transaction
from netstack.netfilter.nft.errors import NftError, NftKernelError, format_error
from netstack.netfilter.nft.netlink import NetlinkLog
from netstack.netfilter.nft.parser import parse
from netstack.netfilter.nft.ruleset import nft_state

USAGE = "Usage: nft [ options ] [ cmds... ]\n"


def run_nft(net: Any, args: list[str], cwd: str | None = None) -> tuple[int, str, str]:
    """Run one nft invocation against ``net``: returns (exit status, stdout, stderr)."""
    check = handles = debug_netlink = use_json = False
    fname: str | None = None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-c", "--check"):
            check = True
        elif a in ("-a", "--handle"):
            handles = True
        elif a in ("-f", "--file"):
            if i + 1 >= len(args):
                return 1, "", "nft: option requires an argument -- 'f'\n" + USAGE
            fname = args[i + 1]
            i += 1
        elif a.startswith("--debug="):
            if a[len("--debug="):] != "netlink":
                raise NotSupported(f"nft {a}")
            debug_netlink = True
        elif a == "-d":
            if i + 1 >= len(args) or args[i + 1] != "netlink":
                raise NotSupported("nft -d other than netlink")
            debug_netlink = True
            i += 1
        elif a in ("-j", "--json"):
            use_json = True
        elif a in ("-v", "--version"):
            return 0, "nftables v1.0.6 (Lester Gooch #5)\n", ""
        elif a in ("-n", "--numeric", "-s", "--stateless", "-N", "-e", "--echo", "-y",
                   "-t", "--terse", "-S", "--service", "-u", "--guid", "-p", "--numeric-protocol"):
            raise NotSupported(f"nft option {a}")
        elif a.startswith("-") and a != "-" and not a[1:2].isdigit():
            return 1, "", f"nft: invalid option -- '{a.lstrip('-')}'\n" + USAGE
        else:
            break
        i += 1
    rest = args[i:]
    if fname is not None:
        if rest:
            return 1, "", "Error: -i/--interactive and -f/--file options cannot be combined" \
                "\n" if False else (1, "", "Error: syntax error, unexpected junk\n")[2]
        path = fname if os.path.isabs(fname) or cwd is None else os.path.join(cwd, fname)
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            return 1, "", f"Error: Could not process rule: {os.strerror(e.errno or 2)}\n"
        name: str | None = fname
    else:
        if not rest:
            return 1, "", "Error: no command specified\n" if False else \
                (1, "", USAGE)[2]
        # nft hands the joined arguments to the parser with a trailing newline, which is
        # why a truncated command line reports "unexpected newline"
        text = " ".join(rest) + "\n"
        name = None
    if use_json and text.lstrip().startswith("{"):
        # JSON input: translated to nft commands (src/parser_json.c), one transaction
        import json as _json
        from netstack.netfilter.nft.jsonfmt import json_to_text
        try:
            text = json_to_text(_json.loads(text))
        except (ValueError, KeyError, TypeError) as e:
            return 1, "", f"Error: {e}\n" if str(e).startswith("Malformed") else \
                "Error: Malformed JSON input\n"
        name = None
    return run_text(net, text, name, check=check, handles=handles,
                    debug_netlink=debug_netlink, use_json=use_json, cwd=cwd)


def run_text(net: Any, text: str, name: str | None, check: bool = False,
             handles: bool = False, debug_netlink: bool = False,
             use_json: bool = False, cwd: str | None = None,
             xt_specs: list | None = None) -> tuple[int, str, str]:
    """Parse and run ``text`` as one batch."""
    lines = text.split("\n")
    state = nft_state(net)
    nl = NetlinkLog() if debug_netlink else None
    try:
        cmds = parse(text, name, cwd, xt_specs)
        tx = Transaction(state, None if check else net, handles, nl)
        tx.json = use_json
        tx.run(cmds)
    except NftError as e:
        return 1, "", _format(e, name, lines)
    except NftKernelError as e:
        # the batch was built (and printed with --debug=netlink) before the kernel refused it
        return 1, nl.text() if nl is not None else "", _format(e, name, lines)
    if not check:
        tx.commit()
    out = (nl.text() if nl is not None else "") + "".join(tx.out)
    return 0, out, "".join(tx.warnings)


def _format(e: "NftError | NftKernelError", name: str | None, lines: list[str]) -> str:
    return format_error(e, name or "", lines)


def do_nft(ctx: Any, argv: list[str]) -> int:
    """Scenario entry point: ``nft ARGS`` in ``ctx.net``."""
    rc, out, err = run_nft(ctx.net, argv, ctx.cwd)
    if rc:
        raise ToolError(err, rc, out)
    if err:
        ctx.stderr.write(err)
    ctx.stdout.write(out)
    return 0
