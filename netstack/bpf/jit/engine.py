"""LLVM set-up and compilation with MCJIT (llvmlite.binding).

The module is optimised with the new pass manager's default pipeline at
``-O2`` (which includes mem2reg/SROA, so the register allocas become SSA
values) for the host CPU, then handed to an MCJIT engine that lives as long
as the compiled program.
"""
from __future__ import annotations

import threading

from llvmlite import binding as llvm
from llvmlite import ir

from ..errors import BpfError

_lock = threading.Lock()
_host: tuple[str, str] | None = None


class JitCompileError(BpfError):
    """LLVM refused the generated module (a JIT bug, reported as a BpfError so callers count it)."""


def target_machine() -> llvm.TargetMachine:
    """A new host target machine (LLVM's native target initialised on first use).

    A fresh one per engine: ``create_mcjit_compiler`` takes ownership of the
    target machine and frees it with the engine.  The host CPU name and
    features are looked up once.
    """
    global _host
    with _lock:
        if _host is None:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            _host = (llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten())
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=_host[0], features=_host[1], opt=2, codemodel="jitdefault")


class Compiled:
    """An MCJIT engine holding one program's machine code; ``address(name)`` of its functions."""

    def __init__(self, module: ir.Module, opt: int = 2) -> None:
        tm = target_machine()
        try:
            mod = llvm.parse_assembly(str(module))
            mod.verify()
        except RuntimeError as exc:
            raise JitCompileError(f"LLVM rejected the generated IR: {exc}") from None
        if opt:
            pto = llvm.create_pipeline_tuning_options(speed_level=opt)
            pb = llvm.create_pass_builder(tm, pto)
            pb.getModulePassManager().run(mod, pb)
        self.module = mod
        self.tm = tm
        self.engine = llvm.create_mcjit_compiler(mod, tm)
        self.engine.finalize_object()

    def address(self, name: str) -> int:
        addr = self.engine.get_function_address(name)
        if not addr:
            raise JitCompileError(f"no function {name} in the compiled module")
        return addr

    def asm(self) -> str:
        """The machine code as assembly text (for inspection and docs)."""
        return self.tm.emit_assembly(self.module)
