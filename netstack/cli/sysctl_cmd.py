"""``sysctl`` (procps-ng sysctl.c) for the ``net.*`` tree of the current namespace.

Reads print ``KEY = VALUE``; writes (``-w`` or any ``KEY=VALUE`` argument) echo
``KEY = VALUE`` as given unless ``-q``; ``-n`` prints values only; ``-e`` ignores unknown
keys; ``-p FILE`` loads a file.  Keys may use ``/`` instead of ``.``.  Every argument is
checked before any value is written, so a failing line changes nothing.
"""
from __future__ import annotations

import os

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Ctx
from netstack.core.sysctl import SysctlError
from netstack.errors import NotSupported

_USAGE_HINT = "Try `sysctl --help' for more information.\n"


def _norm(key: str) -> str:
    """procps accepts ``net/ipv4/ip_forward``: '/' and '.' swap roles."""
    return key.strip().replace("/", ".") if "/" in key and "." not in key.split("/")[0] \
        else key.strip()


def _proc_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def _parse_opts(argv: list[str]) -> tuple[dict[str, object], list[str]]:
    """getopt_long over ``sysctl``'s options (combined short flags allowed)."""
    opts: dict[str, object] = {"w": False, "n": False, "N": False, "q": False, "e": False,
                               "p": None}
    args: list[str] = []
    i = 0
    longs = {"--write": "w", "--values": "n", "--names": "N", "--quiet": "q",
             "--ignore": "e"}
    while i < len(argv):
        a = argv[i]
        if a == "--":
            args.extend(argv[i + 1:])
            break
        if a.startswith("--"):
            if a in longs:
                opts[longs[a]] = True
            elif a.startswith("--load"):
                opts["p"] = a.partition("=")[2] or "/etc/sysctl.conf"
            elif a in ("--all", "--system", "--pattern", "--binary", "--dry-run",
                       "--deprecated", "--help", "--version"):
                raise NotSupported(f"sysctl {a}")
            else:
                raise ToolError(f"sysctl: unrecognized option '{a}'\n" + _USAGE_HINT, 1)
        elif a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                c = a[j]
                if c in "wnNqe":
                    opts[c] = True
                elif c in "ox":
                    pass  # "does nothing"
                elif c in "pf":
                    rest = a[j + 1:]
                    if rest:
                        opts["p"] = rest
                    elif i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                        i += 1
                        opts["p"] = argv[i]
                    else:
                        opts["p"] = "/etc/sysctl.conf"
                    break
                elif c in "aAXbrhdV":
                    raise NotSupported(f"sysctl -{c}")
                else:
                    raise ToolError(f"sysctl: invalid option -- '{c}'\n" + _USAGE_HINT, 1)
                j += 1
        else:
            args.append(a)
        i += 1
    return opts, args


def _check_key(ctx: Ctx, key: str) -> None:
    if not key.startswith("net."):
        raise NotSupported(f"sysctl {key} (netstack models net.* only)")


def do_sysctl(ctx: Ctx, argv: list[str]) -> int:
    opts, args = _parse_opts(argv)
    pairs: list[tuple[str, str | None]] = []   # (key, value or None for a read)
    if opts["p"] is not None:
        pairs.extend(_load_file(ctx, str(opts["p"])))
    elif not args:
        raise ToolError("sysctl: no variables specified\n" + _USAGE_HINT, 1)
    errors: list[str] = []
    for a in args:
        if opts["w"] or "=" in a:
            key, eq, val = a.partition("=")
            if not eq or not key.strip():
                errors.append("sysctl: command line(0): invalid syntax, continuing...\n")
                continue
            pairs.append((_norm(key), val.strip()))
        else:
            pairs.append((_norm(a), None))
    table = ctx.net.sysctl
    plan: list[tuple[str, str | None]] = []
    for key, val in pairs:
        _check_key(ctx, key)
        if key not in table:
            if not opts["e"]:
                errors.append(f"sysctl: cannot stat {_proc_path(key)}: No such file or "
                              "directory\n")
            continue
        if val is not None and not _valid(table, key, val):
            errors.append(f'sysctl: setting key "{key}": Invalid argument\n')
            continue
        plan.append((key, val))
    if errors:
        raise ToolError("".join(errors), 1)
    out = ctx.stdout.write
    for key, val in plan:
        if val is not None:
            try:
                table.set(key, val)
            except SysctlError as e:
                raise ToolError(f'sysctl: setting key "{key}": {os.strerror(e.errno)}\n',
                                1) from None
            shown = val
        else:
            v = table.get(key)
            shown = str(v).replace(" ", "\t") if isinstance(v, str) else str(v)
        if val is not None and opts["q"]:
            continue
        if opts["n"]:
            out(f"{shown}\n")
        elif opts["N"]:
            out(f"{key}\n")
        else:
            out(f"{key} = {shown}\n")
    return 0


def _valid(table, key: str, val: str) -> bool:  # type: ignore[no-untyped-def]
    """Would ``proc_dointvec_minmax`` accept ``val``?  Checked on a scratch copy of the
    definition so nothing is written."""
    sd = table.defs[key]
    if sd.is_str:
        return True
    words = val.split()
    if not words:
        return False
    w = words[0]
    try:
        n = int(w, 0) if w.lower().startswith(("0x", "-0x")) else int(w)
    except ValueError:
        return False
    return not ((sd.minv is not None and n < sd.minv) or (sd.maxv is not None and n > sd.maxv))


def _load_file(ctx: Ctx, path: str) -> list[tuple[str, str | None]]:
    """``sysctl -p FILE``: ``key = value`` lines, '#' and ';' comments; a leading '-'
    on a key means "ignore if unknown" (procps ≥ 3.3.17 syntax is not modelled)."""
    full = path if os.path.isabs(path) else os.path.join(ctx.cwd, path)
    try:
        with open(full, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ToolError(f'sysctl: cannot open "{path}": {os.strerror(e.errno or 2)}\n',
                        1) from None
    out: list[tuple[str, str | None]] = []
    for n, line in enumerate(lines, start=1):
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        key, eq, val = s.partition("=")
        if not eq:
            raise ToolError(f"sysctl: {path}({n}): invalid syntax, continuing...\n", 1)
        if key.strip().startswith("-"):
            raise NotSupported("sysctl -p with '-key' lines")
        out.append((_norm(key), val.strip()))
    return out
