"""``echo`` as bash's builtin: ``-n`` (no newline), ``-e``/``-E`` (escapes on/off)."""
from __future__ import annotations

from netstack.cli.ipcommon import Ctx

_ESC = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r",
        "t": "\t", "v": "\v", "\\": "\\"}


def _unescape(s: str) -> tuple[str, bool]:
    """``echo -e`` escapes; ``\\c`` stops all output (returns stop=True)."""
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            d = s[i + 1]
            if d in _ESC:
                out.append(_ESC[d])
                i += 2
                continue
            if d == "c":
                return "".join(out), True
            if d == "0":
                j = i + 2
                while j < len(s) and j < i + 5 and s[j] in "01234567":
                    j += 1
                out.append(chr(int(s[i + 2:j] or "0", 8)))
                i = j
                continue
            if d == "x":
                j = i + 2
                while j < len(s) and j < i + 4 and s[j] in "0123456789abcdefABCDEF":
                    j += 1
                if j > i + 2:
                    out.append(chr(int(s[i + 2:j], 16)))
                    i = j
                    continue
        out.append(c)
        i += 1
    return "".join(out), False


def do_echo(ctx: Ctx, argv: list[str]) -> int:
    newline, escapes = True, False
    i = 0
    while i < len(argv) and len(argv[i]) > 1 and argv[i][0] == "-" and \
            all(c in "neE" for c in argv[i][1:]):
        for c in argv[i][1:]:
            if c == "n":
                newline = False
            elif c == "e":
                escapes = True
            else:
                escapes = False
        i += 1
    text = " ".join(argv[i:])
    if escapes:
        text, stop = _unescape(text)
        if stop:
            ctx.stdout.write(text)
            return 0
    ctx.stdout.write(text + ("\n" if newline else ""))
    return 0
