"""eBPF: instruction codec, assembler/disassembler, load-time checks, a memory-safe interpreter,
maps, helpers, program contexts and BPF_PROG_TEST_RUN.

See docs/bpf.md.  Entry points: :func:`netstack.bpf.asm.assemble`,
:func:`netstack.bpf.disasm.disassemble`, :func:`netstack.bpf.check.verify`,
:class:`netstack.bpf.interp.Vm`, :func:`netstack.bpf.maps.create_map`,
:class:`netstack.bpf.progs.Program`, :func:`netstack.bpf.progs.prog_test_run`.
Every failure is a :class:`BpfError`.
"""
from .errors import AsmError, BpfDecodeError, BpfError, BpfRuntimeError, BpfVerifyError, NotSupported

__all__ = ["AsmError", "BpfDecodeError", "BpfError", "BpfRuntimeError", "BpfVerifyError", "NotSupported"]
