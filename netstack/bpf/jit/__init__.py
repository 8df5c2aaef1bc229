"""eBPF JIT: programs translated to LLVM IR (llvmlite) and compiled with MCJIT.

:class:`JitVm` is a drop-in :class:`~netstack.bpf.interp.Vm` running native
code under the interpreter's memory-safety model; :func:`jit_program` makes a
loaded :class:`~netstack.bpf.progs.Program` run on it; :class:`XdpBatch` runs
an XDP program over a whole batch of frames in one native call.  See the
"JIT" section of docs/bpf.md.
"""
from .batch import XdpBatch, jit_program, run_batch
from .engine import JitCompileError
from .vm import JitVm

__all__ = ["JitCompileError", "JitVm", "XdpBatch", "jit_program", "run_batch"]
