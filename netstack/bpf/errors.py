"""Error types of the eBPF subsystem.

Every failure the eBPF code can report is one of these, so a datapath caller
catches :class:`BpfError` once and turns it into a counted drop; nothing else
escapes from decoding, assembling, validating or running a program.

The split mirrors where the kernel fails: ``bpf(BPF_PROG_LOAD)`` rejects a
program before it runs (kernel/bpf/verifier.c -> :class:`BpfVerifyError`),
while the interpreter (kernel/bpf/core.c ``___bpf_prog_run``) can only fail at
run time in ways the verifier would have prevented (-> :class:`BpfRuntimeError`).
"""
from __future__ import annotations

from netstack.errors import NotSupported as _ProjectNotSupported


class BpfError(Exception):
    """Base class of every error raised by :mod:`netstack.bpf`."""


class NotSupported(BpfError, _ProjectNotSupported):
    """A well-formed request for a feature this implementation does not provide.

    Raised instead of silently doing something else, so the caller can tell
    "malformed" from "not implemented here".
    """

    def __init__(self, what: str) -> None:
        Exception.__init__(self, f"not supported: {what}")
        self.what = what


class BpfDecodeError(BpfError):
    """Bytes that are not a sequence of 8-byte eBPF instruction slots."""


class AsmError(BpfError):
    """Assembler error with the position it refers to.

    ``line`` is 1-based in the source text given to the assembler (0 when the
    error is not tied to one line, e.g. an unresolved label found at the end);
    ``message`` carries the bpf_conformance assembler's wording (for example
    ``Invalid register: %r50``) so its negative tests can match it.
    """

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        where = f"line {line}" + (f", column {column}" if column else "") if line else "end of input"
        super().__init__(f"{where}: {message}")
        self.message = message
        self.line = line
        self.column = column


class BpfVerifyError(BpfError):
    """The load-time checks rejected the program (kernel verifier wording).

    ``errno`` is what ``bpf(BPF_PROG_LOAD)`` would return (``EACCES`` for most
    verifier refusals, ``EINVAL`` for malformed programs, ...; ``None`` when
    only the structural checks of :mod:`netstack.bpf.check` ran) and ``log``
    the verifier log at level 1 (empty when not produced), so a loader can
    print what libbpf prints (``-- BEGIN PROG LOAD LOG --``); ``prog_name`` is the
    refused program's name when :func:`netstack.bpf.loader.load_object` loaded it.
    """

    def __init__(self, message: str, insn: int | None = None, *, errno: int | None = None,
                 log: str = "", prog_name: str = "") -> None:
        super().__init__(message if insn is None else f"insn {insn}: {message}")
        self.message = message
        self.insn = insn
        self.errno = errno
        self.log = log
        self.prog_name = prog_name  # set by the ELF loader: the program (function) refused


class BpfRuntimeError(BpfError):
    """The interpreter stopped: out-of-bounds access, call depth, budget, ...

    The VM state is left as it was at the faulting instruction; no Python
    object outside the VM's own regions is ever touched.
    """

    def __init__(self, message: str, pc: int | None = None) -> None:
        super().__init__(message if pc is None else f"pc {pc}: {message}")
        self.message = message
        self.pc = pc
