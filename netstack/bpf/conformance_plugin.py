"""bpf_conformance plugin: ``python -m netstack.bpf.conformance_plugin``.

Protocol of the suite's runner (lib/src/bpf_conformance.cc): the program
arrives as space-separated hex bytes on stdin (or after ``--program``); the
first other argument, if any, is the memory as space-separated hex bytes;
options ``--debug`` (verbose errors) and ``--elf`` (not supported here) may
follow.  On success the plugin prints R0 in hex and exits 0; on failure it
prints the error and exits 1.
"""
from __future__ import annotations

import sys
from typing import Sequence, TextIO

from .conformance import execute
from .errors import BpfError, NotSupported
from .insn import from_hex


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    inp = sys.stdin if stdin is None else stdin
    out = sys.stdout if stdout is None else stdout
    program: str | None = None
    memory = ""
    debug = False
    try:
        while args:
            arg = args.pop(0)
            if arg == "--program":
                if not args:
                    raise NotSupported("--program without a value")
                program = args.pop(0)
            elif arg == "--debug":
                debug = True
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
        r0 = execute(from_hex(program), mem)
    except BpfError as exc:
        print(f"{type(exc).__name__}: {exc}" if debug else str(exc), file=out)
        return 1
    print(f"{r0:x}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
