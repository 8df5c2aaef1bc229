"""bpf_conformance plugin: ``python -m netstack.bpf.conformance_plugin``.

Protocol of the suite's runner (lib/src/bpf_conformance.cc): the program
arrives as space-separated hex bytes on stdin (or after ``--program``); the
first other argument, if any, is the memory as space-separated hex bytes;
options may follow: ``--interpret`` (the default: :class:`~netstack.bpf.interp.Vm`),
``--jit`` (the LLVM JIT, :class:`netstack.bpf.jit.JitVm`; ``not supported: jit``
when llvmlite or the JIT package is missing), ``--debug`` (error type in the
message) and ``--elf`` (not supported here).  On success the plugin prints R0
in hex and exits 0; on failure it prints the error on stderr and exits 1.  An
in-process caller that passes only ``stdout`` gets the error there too.

Installed as the console script ``netstack-bpf-conformance``.
"""
from __future__ import annotations

import sys
from typing import Sequence, TextIO

from .check import verify
from .conformance import ENTRY_REGS, HELPERS, execute
from .errors import BpfError, NotSupported
from .insn import Insn, from_hex


def execute_jit(insns: list[Insn], mem: bytes = b"") -> int:
    """:func:`conformance.execute` on the JIT: same checks, native code instead of the interpreter."""
    try:
        from .jit import JitVm
    except ImportError as exc:
        raise NotSupported(f"jit ({exc})") from None
    verify(insns, entry_regs=ENTRY_REGS, kernel_imm_rules=False)
    return JitVm(insns, HELPERS).run_mem(mem)


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    inp = sys.stdin if stdin is None else stdin
    out = sys.stdout if stdout is None else stdout
    err = stderr if stderr is not None else (stdout if stdout is not None else sys.stderr)
    program: str | None = None
    memory = ""
    debug = False
    jit = False
    try:
        while args:
            arg = args.pop(0)
            if arg == "--program":
                if not args:
                    raise NotSupported("--program without a value")
                program = args.pop(0)
            elif arg == "--debug":
                debug = True
            elif arg == "--interpret":
                jit = False
            elif arg == "--jit":
                jit = True
            elif arg == "--elf":
                raise NotSupported("ELF input to the conformance plugin")
            elif arg.startswith("--"):
                raise NotSupported(f"option {arg}")
            else:
                memory = arg
        if program is None:
            program = inp.read()
        try:
            mem = bytes.fromhex("".join(memory.split()))
        except ValueError as exc:
            raise BpfError(f"invalid memory hex: {exc}") from None
        r0 = (execute_jit if jit else execute)(from_hex(program), mem)
    except BpfError as exc:
        print(f"{type(exc).__name__}: {exc}" if debug else str(exc), file=err)
        return 1
    print(f"{r0:x}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
