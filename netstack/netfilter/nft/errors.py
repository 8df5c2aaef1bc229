"""Errors of the nft front end.

Why a dedicated type: nft reports every problem in a ruleset (syntax or semantics) as
``FILE:LINE:COL1-COL2: Error: MESSAGE`` followed by the offending input line and a caret
line (src/erec.c ``erec_print``), and the whole transaction is then abandoned.  Carrying
the location with the message lets the CLI print exactly that."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Loc:
    """A span of input: 1-based line, 1-based first and last column (inclusive)."""

    line: int
    first: int
    last: int


class NftError(Exception):
    """A ruleset error at ``loc`` (None: no location, nft prints ``Error: MSG`` alone)."""

    def __init__(self, msg: str, loc: Loc | None = None, loc2: Loc | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.loc = loc
        self.loc2 = loc2          # a related span nft underlines with '~'
        self.extra: list["NftError"] = []     # further errors nft reports after this one
        # (file name, its lines, [(including file, include statement loc) …]) for an
        # error inside an ``include``d file
        self.origin: tuple[str, list[str], list[tuple[str, Loc]]] | None = None


class NftKernelError(Exception):
    """The (modelled) kernel refused a command: ``errno`` as netlink would return it."""

    def __init__(self, err: int, msg: str, loc: Loc | None = None) -> None:
        super().__init__(msg)
        self.errno = err
        self.msg = msg
        self.loc = loc


def format_error(err: "NftError | NftKernelError", name: str, lines: list[str]) -> str:
    """src/erec.c ``erec_print``: location header, the input line, carets under the span."""
    origin = getattr(err, "origin", None)
    prefix = ""
    if origin is not None:
        # an error inside an included file (src/erec.c print_location: "In file included
        # from FILE:LINE:FIRST-LAST:", the innermost include first)
        name, lines, chain = origin
        for i, (iname, iloc) in enumerate(chain):
            lead = "In file included from " if i == 0 else " " * 17 + "from "
            prefix += f"{lead}{iname}:{iloc.line}:{iloc.first}-{iloc.last}:\n"
    loc = err.loc
    if loc is None:
        return f"Error: {err.msg}\n"
    text = lines[loc.line - 1] if 0 < loc.line <= len(lines) else ""
    head = f"{name}:{loc.line}:{loc.first}-{loc.last}: Error: {err.msg}\n" if name \
        else f"Error: {err.msg}\n"
    out = prefix + head + text + "\n" + caret_line(text, loc, getattr(err, "loc2", None)) + \
        "\n"
    for more in getattr(err, "extra", []):
        out += format_error(more, name, lines)
    return out


def caret_line(text: str, loc: Loc, loc2: Loc | None = None) -> str:
    """The marker line: tabs of the input kept, '^' under the error, '~' under a related
    span on the same line (erec_print)."""
    width = max(loc.last, loc2.last if loc2 and loc2.line == loc.line else 0)
    out = []
    for col in range(1, width + 1):
        ch = text[col - 1] if col - 1 < len(text) else " "
        if loc.first <= col <= loc.last:
            out.append("^")
        elif loc2 is not None and loc2.line == loc.line and loc2.first <= col <= loc2.last:
            out.append("~")
        else:
            out.append("\t" if ch == "\t" else " ")
    return "".join(out)
