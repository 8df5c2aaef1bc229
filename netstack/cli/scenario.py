"""Scenario files: the bash subset netstack runs, and the command dispatcher.

A scenario is a plain bash script that must also run unchanged on a real kernel, so the
splitter follows bash's own rules for what it accepts — quoting (``'…'`` literal, ``"…"``
with ``\\`` escaping ``$ ` " \\`` and newline), ``\\``-newline continuations, ``#``
comments at the start of a word, ``;`` and newlines between commands, a shebang — and
refuses everything that would need a shell (pipes, redirections, ``&&``/``||``,
variables and expansions, globs, subshells, compound commands) with a ``not supported``
error naming the line, instead of running something bash would run differently.

Each command is parsed and validated completely before it changes anything; a failing
command prints the tool's own message, then ``SCRIPT:LINE: summary``, and the run stops
with :class:`~netstack.errors.ScenarioError`.  ``set -e``/``-u``/``-x`` are accepted
(``-e`` is how netstack always behaves, ``-x`` traces commands to stderr like bash).
"""
from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Sequence

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Ctx
from netstack.errors import NotSupported, ScenarioError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.world import World

_KEYWORDS = {"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done",
             "case", "esac", "function", "select", "time", "coproc", "[[", "]]", "!", "{",
             "}"}
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\+?=")


class SplitError(Exception):
    """The script uses bash syntax netstack does not run; ``line`` is 1-based."""

    def __init__(self, line: int, what: str) -> None:
        super().__init__(f"not supported: {what}")
        self.line = line


@dataclass
class Command:
    """One simple command: the line it starts on and its words after quote removal."""

    line: int
    argv: list[str]


def _brace_expansion(text: str, i: int) -> bool:
    """Is the unquoted ``{`` at ``i`` the start of ``{a,b}`` / ``{1..3}`` on this line?"""
    end = text.find("}", i)
    nl = text.find("\n", i)
    if end < 0 or (0 <= nl < end):
        return False
    body = text[i + 1:end]
    return "," in body or ".." in body


def split_script(text: str) -> list[Command]:
    """Split a script into simple commands with bash's quoting rules."""
    cmds: list[Command] = []
    words: list[str] = []
    cur: list[str] = []
    in_word = False
    start_line = 0
    line = 1
    i, n = 0, len(text)
    if text.startswith("#!"):
        i = text.find("\n")
        i = n if i < 0 else i

    def end_word() -> None:
        nonlocal in_word, cur
        if in_word:
            words.append("".join(cur))
            cur = []
            in_word = False

    def end_cmd() -> None:
        nonlocal words
        end_word()
        if words:
            cmds.append(Command(start_line, words))
        words = []

    def begin(at: int) -> None:
        nonlocal in_word, start_line
        if not in_word:
            if not words:
                start_line = at
            in_word = True

    while i < n:
        c = text[i]
        if c == "\n":
            end_cmd()
            line += 1
            i += 1
        elif c in " \t":
            end_word()
            i += 1
        elif c == "#" and not in_word:
            while i < n and text[i] != "\n":
                i += 1
        elif c == "\\":
            if i + 1 < n and text[i + 1] == "\n":
                line += 1
                i += 2
                continue
            begin(line)
            if i + 1 < n:
                cur.append(text[i + 1])
            i += 2
        elif c == "'":
            begin(line)
            j = text.find("'", i + 1)
            if j < 0:
                raise SplitError(start_line, "unterminated single quote")
            chunk = text[i + 1:j]
            cur.append(chunk)
            line += chunk.count("\n")
            i = j + 1
        elif c == '"':
            begin(line)
            i += 1
            while True:
                if i >= n:
                    raise SplitError(start_line, "unterminated double quote")
                d = text[i]
                if d == '"':
                    i += 1
                    break
                if d == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
                    if text[i + 1] == "\n":
                        line += 1
                    else:
                        cur.append(text[i + 1])
                    i += 2
                    continue
                if d in "$`":
                    raise SplitError(line, f"expansions ('{d}') inside double quotes")
                if d == "\n":
                    line += 1
                cur.append(d)
                i += 1
        elif c == ";":
            if i + 1 < n and text[i + 1] == ";":
                raise SplitError(line, "';;' (case)")
            end_cmd()
            i += 1
        elif c in "|&<>()":
            two = text[i:i + 2]
            what = {"||": "'||' lists", "&&": "'&&' lists", "|": "pipes ('|')",
                    "&": "background jobs ('&')", "<": "redirections ('<')",
                    ">": "redirections ('>')", "(": "subshells ('(')",
                    ")": "subshells (')')"}
            raise SplitError(line, what.get(two, what[c]))
        elif c == "$" or c == "`":
            raise SplitError(line, f"variables and expansions ('{c}')")
        elif c in "*?[":
            raise SplitError(line, f"glob patterns ('{c}')")
        elif c == "~" and not in_word:
            raise SplitError(line, "tilde expansion ('~')")
        elif c in "{}" and not in_word and (i + 1 >= n or text[i + 1] in " \t\n;"):
            raise SplitError(line, f"command groups ('{c}')")
        else:
            if c == "{" and _brace_expansion(text, i):
                raise SplitError(line, "brace expansion ('{a,b}')")
            begin(line)
            cur.append(c)
            i += 1
    end_cmd()
    for cmd in cmds:
        w0 = cmd.argv[0]
        if w0 in _KEYWORDS:
            raise SplitError(cmd.line, f"shell keyword '{w0}'")
        if _ASSIGN.match(w0):
            raise SplitError(cmd.line, "variable assignments")
    return cmds


# ---------------------------------------------------------------- dispatching
class _Shell:
    """Shell state that survives between commands of one run (``set -x``, ``cd``)."""

    def __init__(self, cwd: str) -> None:
        self.xtrace = False
        self.cwd = cwd


def _set_builtin(sh: _Shell, argv: list[str]) -> int:
    """``set -e``/``-u``/``-x`` (and ``-o errexit|nounset|xtrace|pipefail``)."""
    args = argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-o", "+o"):
            if i + 1 >= len(args):
                raise NotSupported("set -o without an option name")
            name = args[i + 1]
            if name == "xtrace":
                sh.xtrace = a == "-o"
            elif name not in ("errexit", "nounset", "pipefail") or a == "+o":
                raise NotSupported(f"set {a} {name}")
            i += 2
            continue
        if len(a) >= 2 and a[0] in "-+" and all(ch in "eux" for ch in a[1:]):
            if "x" in a:
                sh.xtrace = a[0] == "-"
            if a[0] == "+" and ("e" in a or "u" in a):
                raise NotSupported(f"set {a} (netstack always stops at the first error)")
            i += 1
            continue
        raise NotSupported(f"set {a}")
    return 0


def _sleep(ctx: Ctx, argv: list[str]) -> int:
    """``sleep N``: advance virtual time (timers fire on the way), never wall time."""
    if len(argv) != 2:
        raise NotSupported("sleep with other than one argument")
    text = argv[1]
    mult = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(text[-1:], None)
    num = text[:-1] if mult is not None else text
    try:
        secs = float(num) * (mult or 1)
    except ValueError:
        raise ToolError(f"sleep: invalid time interval '{text}'\nTry 'sleep --help' for more "
                        "information.\n", 1) from None
    ctx.world.advance(secs)
    return 0


#: tool name → (module under netstack.cli, function taking (ctx, args))
_TOOL_MODULES: dict[str, tuple[str, str]] = {
    "bridge": ("bridge_cmd", "do_bridge"),
    "cat": ("proc_cmd", "do_cat"),
}


def dispatch(ctx: Ctx, argv: list[str]) -> int:
    """Run one command's argv in ``ctx``; raises ToolError / NotSupported."""
    name = argv[0]
    tool = os.path.basename(name)
    if tool == "ip":
        from netstack.cli.ip import do_ip
        return do_ip(ctx, argv[1:], dispatch)
    if tool == "tc":
        from netstack.cli.tc_cmd import do_tc
        return do_tc(ctx, argv[1:])
    if tool == "sysctl":
        from netstack.cli.sysctl_cmd import do_sysctl
        return do_sysctl(ctx, argv[1:])
    if tool == "ethtool":
        from netstack.cli.ethtool_cmd import do_ethtool
        return do_ethtool(ctx, argv[1:])
    if tool == "echo":
        from netstack.cli.echo_cmd import do_echo
        return do_echo(ctx, argv[1:])
    if tool.startswith(("iptables", "ip6tables")):
        from netstack.cli.iptables_cmd import TOOLS, dispatch_xtables
        if tool in TOOLS:
            return dispatch_xtables(ctx, argv)
    if tool == "conntrack":
        from netstack.cli.conntrack_cmd import do_conntrack
        return do_conntrack(ctx, argv[1:])
    if tool == "nft":
        from netstack.netfilter.nft.cli import do_nft
        return do_nft(ctx, argv[1:])
    mod = _TOOL_MODULES.get(tool)
    if mod is not None:
        # tools implemented in their own module (``do_<tool>(ctx, args)``)
        from netstack.cli.ipcommon import import_cli_module
        m = import_cli_module(mod[0], f"command '{name}'")
        return getattr(m, mod[1])(ctx, argv[1:])
    if tool == "sleep":
        return _sleep(ctx, argv)
    if tool in ("true", ":"):
        return 0
    if tool == "false":
        return 1
    raise NotSupported(f"command '{name}'")


def _summary(argv: Sequence[str], err: ToolError) -> str:
    first = next((ln for ln in err.stderr.splitlines() if ln.strip()), "")
    text = shlex.join(argv)
    return f"{text}: {first} (exit status {err.exit_code})" if first else \
        f"{text}: exit status {err.exit_code}"


def run_command(world: "World", line_or_argv: str | Sequence[str], stdout: IO[str] | None = None,
                stderr: IO[str] | None = None, net_name: str = "", cwd: str | None = None) -> int:
    """Run one command (a line of shell text or an argv) against ``world``; print what the
    real tool prints and return its exit status.  Unsupported features raise
    :class:`~netstack.errors.NotSupported`."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    if isinstance(line_or_argv, str):
        try:
            cmds = split_script(line_or_argv)
        except SplitError as e:
            raise NotSupported(str(e)[len("not supported: "):]) from None
        if not cmds:
            return 0          # blank or comment-only line, as in bash
        if len(cmds) != 1:
            raise NotSupported("run_command takes exactly one command")
        argv = cmds[0].argv
    else:
        argv = list(line_or_argv)
    if not argv:
        return 0
    ctx = Ctx(world, world.netns(net_name), out, err, cwd or os.getcwd())
    try:
        return dispatch(ctx, argv)
    except ToolError as e:
        out.write(e.stdout)
        err.write(e.stderr)
        return e.exit_code
    finally:
        _settle(world)


def _settle(world: "World") -> None:
    """What a command's packets do before the command returns.  On a real host the
    frames a configuration change sends (router solicitations, gratuitous ARP, DAD …) are
    received at ``local_bh_enable`` inside the same syscall, so the next command already
    sees their effect; in virtual time: process everything pending, without advancing the
    clock."""
    world.run_until_idle()


def run_script(world: "World", text: str, name: str = "SCRIPT", cwd: str | None = None,
               stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> None:
    """Run a scenario; raises :class:`ScenarioError` at the first failing line (after
    printing the tool's message and ``NAME:LINE: summary`` on stderr)."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    sh = _Shell(os.path.abspath(cwd) if cwd is not None else os.getcwd())
    try:
        cmds = split_script(text)
    except SplitError as e:
        err.write(f"{name}:{e.line}: {e}\n")
        raise ScenarioError(name, e.line, str(e), "", 2) from None
    _run_cmds(world, cmds, name, sh, out, err, depth=0)


def _run_cmds(world: "World", cmds: list[Command], name: str, sh: _Shell, out: IO[str],
              err: IO[str], depth: int) -> None:
    for cmd in cmds:
        argv = cmd.argv
        if sh.xtrace:
            err.write("+ " + " ".join(shlex.quote(a) for a in argv) + "\n")
        try:
            if argv[0] == "set":
                _set_builtin(sh, argv)
                continue
            if argv[0] == "cd":
                _cd(sh, argv)
                continue
            if argv[0] in ("source", "."):
                _source(world, sh, argv, out, err, depth)
                continue
            if argv[0] == "exit":
                code = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else 0
                if code:
                    raise ToolError("", code)
                return
            ctx = Ctx(world, world.init_net, out, err, sh.cwd)
            try:
                rc = dispatch(ctx, argv)
            finally:
                _settle(world)
            if rc:
                raise ToolError("", rc)
        except ToolError as e:
            out.write(e.stdout)
            err.write(e.stderr)
            msg = _summary(argv, e)
            err.write(f"{name}:{cmd.line}: {msg}\n")
            raise ScenarioError(name, cmd.line, msg, e.stderr, e.exit_code) from None
        except NotSupported as e:
            err.write(f"{name}:{cmd.line}: {e}\n")
            raise ScenarioError(name, cmd.line, str(e), "", 1) from None


def _cd(sh: _Shell, argv: list[str]) -> None:
    if len(argv) != 2:
        raise NotSupported("cd without exactly one directory")
    target = os.path.normpath(os.path.join(sh.cwd, argv[1]))
    if not os.path.isdir(target):
        raise ToolError(f"bash: cd: {argv[1]}: No such file or directory\n", 1)
    sh.cwd = target


def _source(world: "World", sh: _Shell, argv: list[str], out: IO[str], err: IO[str],
            depth: int) -> None:
    """``source FILE`` / ``. FILE``: run another scenario in the same shell; the path is
    relative to the current directory, as in bash (no $PATH search is done)."""
    if len(argv) != 2:
        raise NotSupported("source with arguments")
    if depth > 32:
        raise NotSupported("source nested more than 32 deep")
    path = os.path.join(sh.cwd, argv[1])
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ToolError(f"bash: {argv[1]}: {os.strerror(e.errno or 2)}\n", 1) from None
    try:
        cmds = split_script(text)
    except SplitError as e:
        err.write(f"{argv[1]}:{e.line}: {e}\n")
        raise ScenarioError(argv[1], e.line, str(e), "", 2) from None
    _run_cmds(world, cmds, argv[1], sh, out, err, depth + 1)
