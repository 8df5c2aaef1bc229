"""The bpf_conformance suite's test-file format and execution convention.

A ``.data`` file (github.com/Alan-Jowett/bpf_conformance, tests/ and
negative/) has sections introduced by ``-- name`` lines: ``asm`` (assembler
text), ``raw`` (pre-encoded slots), ``mem`` (hex bytes given to the program),
``result`` (expected R0) or ``error`` (expected failure text), plus ``c`` and
``no register offset`` which carry nothing to run.  ``#`` starts a comment
anywhere.  A program runs with R1 = pointer to the memory and R2 = its
length; helper 5 is the suite's "unwind" helper: it returns its first
argument and, when that is 0, ends the program (R0 = 0).

netstack does not depend on the suite at run time; this module only reads
the format so tests and :mod:`netstack.bpf.conformance_plugin` can use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .asm import assemble
from .check import verify
from .errors import BpfError
from .insn import Insn, decode
from .interp import Helper, ProgramExit, Vm

_SECTIONS = {"asm", "raw", "mem", "result", "error", "c", "no register offset"}

# The suite passes R1 (memory) and R2 (length) to every program.
ENTRY_REGS = (1, 2)


class DataFileError(BpfError):
    """A ``.data`` file that the suite's parser would skip or reject."""


@dataclass
class DataTest:
    """One parsed ``.data`` file."""

    name: str
    asm: str | None = None
    raw: bytes | None = None
    mem: bytes = b""
    result: int | None = None
    error: str | None = None

    def program(self) -> list[Insn]:
        """The instruction slots: ``raw`` if present, else the assembled ``asm``."""
        if self.raw is not None:
            insns = decode(self.raw)
        elif self.asm is not None:
            insns = assemble(self.asm)
        else:
            insns = []
        if not insns:
            raise DataFileError(f"{self.name}: Test file has no BPF instructions")
        return insns


def _raw_line(tokens: list[str]) -> bytes:
    """``aa bb ...`` (eight bytes) or ``0x<slot>`` 64-bit little-endian values."""
    if len(tokens) == 8 and all(len(t) == 2 for t in tokens):
        return bytes(int(t, 16) for t in tokens)
    return b"".join((int(t, 16) if t.startswith("0x") else int(t)).to_bytes(8, "little") for t in tokens)


def parse(text: str, name: str = "<data>") -> DataTest:
    """Parse ``.data`` text; unknown directives or missing expectations raise :class:`DataFileError`."""
    test = DataTest(name)
    section: str | None = None
    body: dict[str, list[str]] = {}
    for raw_line in text.splitlines():
        line = raw_line.split("#", 1)[0].rstrip()
        if line.startswith("--"):
            section = line[2:].strip()
            if section not in _SECTIONS:
                raise DataFileError(f"{name}: Unknown directive {line}")
            body.setdefault(section, [])
            continue
        if section is not None and line.strip():
            body[section].append(line)
    try:
        if "asm" in body:
            test.asm = "\n".join(body["asm"])
        if "raw" in body:
            test.raw = b"".join(_raw_line(line.split()) for line in body["raw"])
        if "mem" in body:
            test.mem = bytes.fromhex("".join("".join(body["mem"]).split()))
        if body.get("result"):
            value = body["result"][-1].strip()
            test.result = int(value, 16) if "0x" in value else int(value)
        if "error" in body:
            test.error = body["error"][-1].strip() if body["error"] else ""
    except ValueError as exc:
        raise DataFileError(f"{name}: {exc}") from None
    if test.result is None and test.error is None:
        raise DataFileError(f"{name}: No result or error in test file")
    return test


def load(path: str | Path) -> DataTest:
    p = Path(path)
    return parse(p.read_text(), p.name)


def unwind_helper(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Helper 5 of the suite: return R1, or end the program with R0 = 0 when R1 is 0."""
    if r1 == 0:
        raise ProgramExit(0)
    return r1


HELPERS: dict[int, Helper] = {5: unwind_helper}


def execute(insns: list[Insn], mem: bytes = b"") -> int:
    """Check and run a program the way the suite's plugins do; return R0."""
    verify(insns, entry_regs=ENTRY_REGS, kernel_imm_rules=False)
    return Vm(insns, HELPERS).run_mem(mem)
