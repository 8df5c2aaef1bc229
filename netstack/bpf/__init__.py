"""eBPF: instruction codec, assembler/disassembler, load-time checks and a memory-safe interpreter.

See docs/bpf.md.  Entry points: :func:`netstack.bpf.asm.assemble`,
:func:`netstack.bpf.disasm.disassemble`, :func:`netstack.bpf.check.verify`,
:class:`netstack.bpf.interp.Vm`.  Every failure is a :class:`BpfError`.
"""
from .errors import AsmError, BpfDecodeError, BpfError, BpfRuntimeError, BpfVerifyError, NotSupported

__all__ = ["AsmError", "BpfDecodeError", "BpfError", "BpfRuntimeError", "BpfVerifyError", "NotSupported"]
