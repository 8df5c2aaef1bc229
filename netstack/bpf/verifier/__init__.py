"""The eBPF verifier: path-sensitive abstract interpretation as kernel/bpf/verifier.c.

``verify_program(insns, prog_type, maps=..., privileged=True, log_level=0)``
returns a :class:`VerifierResult` (``accepted``, ``log``, ``errno``, ``error``,
``insn_processed``, ...).  Modules: :mod:`.tnum` (known bits), :mod:`.reg_state`
(register types and printing), :mod:`.bounds` (scalar ranges, ALU, branch
refinement), :mod:`.state` (stack slots, states, pruning comparison),
:mod:`.memaccess` (memory access checks), :mod:`.calls` (helpers and
bpf-to-bpf calls), :mod:`.helper_protos`, :mod:`.ctx_access`, :mod:`.log`,
:mod:`.core` (check_cfg and the main loop).
"""
from .core import BPF_COMPLEXITY_LIMIT_INSNS, BPF_MAXINSNS, VerifierResult, verify_program
from .reg_state import MapInfo

__all__ = ["verify_program", "VerifierResult", "MapInfo", "BPF_COMPLEXITY_LIMIT_INSNS", "BPF_MAXINSNS"]
