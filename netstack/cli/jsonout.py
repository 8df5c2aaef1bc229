"""iproute2's JSON output (lib/json_writer.c), compact and ``-p`` pretty.

Why not ``json.dumps(indent=4)``: ``ip -j -p`` has its own layout (``[ {`` on one line,
scalar arrays inline as ``[ "A","B" ]``, empty arrays ``[ ]``), and scripts diff it.
The compact form is the same as ``json.dumps`` with no spaces.
"""
from __future__ import annotations

import json
from typing import Any


def dumps(value: Any, pretty: bool = False) -> str:
    """Serialise ``value`` exactly as ``ip -j`` (``pretty=False``) or ``ip -j -p`` would,
    without the final newline."""
    if not pretty:
        raws: list[str] = []
        text = json.dumps(_raw_marks(value, raws), separators=(",", ":"), ensure_ascii=False)
        for i, raw in enumerate(raws):
            text = text.replace(f'"\\u0000{i}\\u0000"', raw, 1)
        return text
    w = _PrettyWriter()
    w.value(value)
    return "".join(w.out)


def _raw_marks(v: Any, raws: list[str]) -> Any:
    """Replace values that print themselves (a ``json_text()`` method: iproute2's
    ``print_float``/``%.2f`` timers such as ``"hello_timer":0.00``, which ``json.dumps``
    would render as ``0.0``) by numbered placeholders ``dumps`` substitutes afterwards."""
    if isinstance(v, dict):
        return {k: _raw_marks(x, raws) for k, x in v.items()}
    if isinstance(v, list):
        return [_raw_marks(x, raws) for x in v]
    text = getattr(v, "json_text", None)
    if text is not None:
        raws.append(text())
        return f"\0{len(raws) - 1}\0"
    return v


class _PrettyWriter:
    """A transcription of json_writer.c's state machine: ``sep`` is the pending separator,
    ``depth`` the nesting; names start a new indented line, array items do not."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.depth = 0
        self.sep = ""

    def _eor(self) -> None:
        if self.sep:
            self.out.append(self.sep)
        self.sep = ","

    def _eol(self) -> None:
        self.out.append("\n" + "    " * self.depth)

    def _begin(self, c: str) -> None:
        self._eor()
        self.out.append(c)
        self.depth += 1
        self.sep = ""

    def _end(self, c: str) -> None:
        self.depth -= 1
        if self.sep:
            self._eol()
        self.out.append(c)
        self.sep = ","

    def value(self, v: Any) -> None:
        if isinstance(v, dict):
            self._begin("{")
            for k, item in v.items():
                self._eor()
                self._eol()
                self.sep = ""
                self.out.append(json.dumps(k, ensure_ascii=False) + ": ")
                self.value(item)
            self._end("}")
        elif isinstance(v, list):
            self._begin("[")
            self.out.append(" ")
            for item in v:
                self.value(item)
            if self.sep:
                self.out.append(" ")
            self.sep = ""
            self._end("]")
        else:
            self._eor()
            text = getattr(v, "json_text", None)
            self.out.append(text() if text is not None else json.dumps(v, ensure_ascii=False))
