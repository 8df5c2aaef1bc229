"""How iptables fails: ``xtables_error()`` (libxtables/xtables.c, iptables/xshared.c).

PARAMETER_PROBLEM (exit 2) prints ``PROG v1.8.9 (nf_tables): MSG`` then the try-help line;
some messages carry their own trailing ``\\n`` in the C source, which is why the real tool
prints an empty line before "Try …" for them — the message strings here keep those newlines.
Errors from the ruleset (no such chain, index too big) print ``PROG: MSG`` with exit 1
(iptables/nft.c ``nft_strerror``)."""
from __future__ import annotations

VERSION = "1.8.9"
PARAMETER_PROBLEM = 2
OTHER_PROBLEM = 1
RESOURCE_PROBLEM = 4


class XtablesError(Exception):
    """A failing iptables invocation: ``stderr`` exactly as the tool writes it, ``status``
    its exit code."""

    def __init__(self, stderr: str, status: int) -> None:
        super().__init__(stderr.rstrip("\n"))
        self.stderr = stderr
        self.status = status


def try_help(prog: str) -> str:
    return f"Try `{prog} -h' or '{prog} --help' for more information.\n"


def param_problem(prog: str, msg: str) -> XtablesError:
    """xtables_error(PARAMETER_PROBLEM, msg): versioned prefix, message, try-help."""
    return XtablesError(f"{prog} v{VERSION} (nf_tables): {msg}\n" + try_help(prog),
                        PARAMETER_PROBLEM)


def bare_problem(prog: str, msg: str) -> XtablesError:
    """exit_tryhelp after a message printed without the version prefix
    (``Bad argument `x'``)."""
    return XtablesError(f"{msg}\n" + try_help(prog), PARAMETER_PROBLEM)


def ruleset_problem(prog: str, msg: str, status: int = OTHER_PROBLEM) -> XtablesError:
    """nft_strerror() failures: ``iptables: MSG.``"""
    base = prog.split("-")[0]
    return XtablesError(f"{base}: {msg}\n", status)


class XtablesExit(Exception):
    """A successful early exit while parsing (``-V`` prints the version, exit 0)."""

    def __init__(self, stdout: str) -> None:
        super().__init__(stdout)
        self.stdout = stdout


class Untranslatable(Exception):
    """A match or target without an nft equivalent (its ``xlate`` returned 0)."""
