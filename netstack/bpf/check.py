"""Load-time checks: the structural part of the kernel verifier.

This is not the path-sensitive verifier (kernel/bpf/verifier.c
``do_check``); the interpreter is memory-safe without it.  It rejects what
the kernel rejects before simulation, with the kernel's wording:

* empty / oversized programs, unknown opcodes (``unknown opcode %02x``) and
  reserved fields that are not zero (``BPF_ALU uses reserved fields`` ...;
  RFC 9669 section 3: "unused fields must be set to zero");
* invalid registers (``R%d is invalid``) and writes to R10 (``frame pointer is
  read only``);
* malformed ``lddw`` (``invalid BPF_LD_IMM insn``), jumps and calls that leave
  the program or land on the second half of an ``lddw`` (``jump out of range
  from insn %d to %d``), ``last insn is not an exit or jmp``, unreachable code
  (``unreachable insn %d``);
* reads of registers no path has written (``R%d !read_ok``): a forward
  must-analysis where helper calls clobber R1-R5 and set R0, and a local call
  passes R1-R5 and R10 to the callee and returns R0 with R6-R9 preserved;
* with ``kernel_imm_rules`` (default), division by an immediate zero and
  shifts by an out-of-range immediate (``division by zero``, ``invalid shift
  %d``), which the kernel rejects at load while RFC 9669 defines them.
"""
from __future__ import annotations

from typing import Sequence

from . import insn as I
from .errors import BpfVerifyError, NotSupported
from .insn import Insn

MAX_INSNS = 1_000_000  # BPF_COMPLEXITY_LIMIT_INSNS
ARGS = 0b111110  # R1-R5
R0, R10 = 1 << 0, 1 << 10

_COND_OPS = {I.BPF_JEQ, I.BPF_JGT, I.BPF_JGE, I.BPF_JSET, I.BPF_JNE, I.BPF_JSGT, I.BPF_JSGE,
             I.BPF_JLT, I.BPF_JLE, I.BPF_JSLT, I.BPF_JSLE}
_ATOMIC_RMW = {I.BPF_ADD, I.BPF_OR, I.BPF_AND, I.BPF_XOR}


def _bit(reg: int) -> int:
    return 1 << reg


class StructuralChecker:
    """The structural pass over a program, reusable by the path-sensitive verifier.

    Public API (used by :mod:`netstack.bpf.verifier.core`, whose ``check_cfg`` subclasses it):

    * ``StructuralChecker(insns, kernel_imm_rules)`` then ``run(entry_mask)``, where
      ``entry_mask`` has bit ``r`` set for every register initialised at entry (R10 is added);
      every failure raises :class:`BpfVerifyError` with the kernel's wording and the insn index.
    * :meth:`run` checks each slot (opcodes, reserved fields, registers, ``lddw`` pairs), builds
      the control-flow graph, checks the last insn and jump targets, and then calls
      :meth:`flow` -- the one extension point.  The base :meth:`flow` is the must-initialised
      register analysis and the unreachable-code check; a subclass overrides it to keep the
      graph and do its own analysis (the verifier decides ``R%d !read_ok`` per path, as
      kernel/bpf/verifier.c ``check_reg_arg`` does, and runs its own ``check_cfg`` DFS).
    * After :meth:`run`, per slot: ``reads``/``writes``/``clobbers`` register bitmasks and
      ``is_tail`` (exit or unconditional jump), as filled by the field checks.
    """

    def __init__(self, insns: Sequence[Insn], kernel_imm_rules: bool) -> None:
        self.insns = insns
        self.kernel_imm_rules = kernel_imm_rules
        self.n = len(insns)
        # reads/writes bitmasks per slot; second halves of lddw are marked.
        self.reads = [0] * self.n
        self.writes = [0] * self.n
        self.clobbers = [0] * self.n
        self.is_tail = [False] * self.n

    def fail(self, msg: str, pc: int) -> BpfVerifyError:
        return BpfVerifyError(msg, pc)

    def reg(self, r: int, pc: int) -> int:
        if r > I.BPF_REG_FP:
            raise self.fail(f"R{r} is invalid", pc)
        return r

    def dst_w(self, r: int, pc: int) -> int:
        if self.reg(r, pc) == I.BPF_REG_FP:
            raise self.fail("frame pointer is read only", pc)
        return r

    # --- per-instruction field checks -----------------------------------------------
    def alu(self, ins: Insn, pc: int) -> None:
        op, wide, x = ins.opcode & 0xF0, ins.opcode & 0x07 == I.BPF_ALU64, ins.opcode & I.BPF_X
        d = self.dst_w(ins.dst, pc)
        self.writes[pc] = _bit(d)
        if op == I.BPF_NEG:
            if x or ins.src or ins.off or ins.imm:
                raise self.fail("BPF_NEG uses reserved fields", pc)
            self.reads[pc] = _bit(d)
            return
        if op == I.BPF_END:
            if ins.src or ins.off or ins.imm not in (16, 32, 64) or (wide and x):
                raise self.fail("BPF_END uses reserved fields", pc)
            self.reads[pc] = _bit(d)
            return
        if op > I.BPF_END:
            raise self.fail(f"invalid BPF_ALU opcode {op:x}", pc)
        if op == I.BPF_MOV:
            allowed = ((0, 8, 16, 32) if wide else (0, 8, 16)) if x else (0,)
            if ins.off not in allowed or (x and ins.imm) or (not x and ins.src):
                raise self.fail("BPF_MOV uses reserved fields", pc)
            self.reads[pc] = _bit(self.reg(ins.src, pc)) if x else 0
            return
        allowed = (0, 1) if op in (I.BPF_DIV, I.BPF_MOD) else (0,)
        if ins.off not in allowed or (x and ins.imm) or (not x and ins.src):
            raise self.fail("BPF_ALU uses reserved fields", pc)
        self.reads[pc] = _bit(d) | (_bit(self.reg(ins.src, pc)) if x else 0)
        if not x and self.kernel_imm_rules:
            if op in (I.BPF_DIV, I.BPF_MOD) and ins.imm == 0:
                raise self.fail("division by zero", pc)
            if op in (I.BPF_LSH, I.BPF_RSH, I.BPF_ARSH) and not 0 <= ins.imm < (64 if wide else 32):
                raise self.fail(f"invalid shift {ins.imm}", pc)

    def jmp(self, ins: Insn, pc: int) -> list[int]:
        """Field checks; returns the jump targets other than fall-through."""
        op, x, wide = ins.opcode & 0xF0, ins.opcode & I.BPF_X, ins.opcode & 0x07 == I.BPF_JMP
        if op == I.BPF_JA:
            used = ins.off if wide else ins.imm
            unused = ins.imm if wide else ins.off
            if x or ins.src or ins.dst or unused:
                raise self.fail("BPF_JA uses reserved fields", pc)
            self.is_tail[pc] = True
            return [pc + 1 + used]
        if op == I.BPF_EXIT and wide:
            if x or ins.src or ins.dst or ins.off or ins.imm:
                raise self.fail("BPF_EXIT uses reserved fields", pc)
            self.reads[pc] = R0
            self.is_tail[pc] = True
            return []
        if op == I.BPF_CALL and wide:
            if x:
                if ins.src or ins.off or ins.imm:
                    raise self.fail("BPF_CALL uses reserved fields", pc)
                self.reads[pc] = _bit(self.reg(ins.dst, pc))
            elif ins.off or ins.dst or ins.src not in (0, I.BPF_PSEUDO_CALL, I.BPF_PSEUDO_KFUNC_CALL):
                raise self.fail("BPF_CALL uses reserved fields", pc)
            elif ins.src == I.BPF_PSEUDO_KFUNC_CALL:
                raise NotSupported(f"kfunc call (insn {pc})")
            self.writes[pc], self.clobbers[pc] = R0, ARGS
            return []
        if op not in _COND_OPS:
            raise self.fail(f"unknown opcode {ins.opcode:02x}", pc)
        if (x and ins.imm) or (not x and ins.src):
            raise self.fail(f"BPF_{'JMP' if wide else 'JMP32'} uses reserved fields", pc)
        self.reads[pc] = _bit(self.reg(ins.dst, pc)) | (_bit(self.reg(ins.src, pc)) if x else 0)
        return [pc + 1 + ins.off]

    def mem(self, ins: Insn, pc: int) -> None:
        cls, mode, size = ins.opcode & 0x07, ins.opcode & 0xE0, ins.opcode & 0x18
        if cls == I.BPF_LDX:
            if not (mode == I.BPF_MEM or (mode == I.BPF_MEMSX and size != I.BPF_DW)):
                raise self.fail(f"unknown opcode {ins.opcode:02x}", pc)
            if ins.imm:
                raise self.fail("BPF_LDX uses reserved fields", pc)
            self.reads[pc] = _bit(self.reg(ins.src, pc))
            self.writes[pc] = _bit(self.dst_w(ins.dst, pc))
        elif cls == I.BPF_ST:
            if mode != I.BPF_MEM:
                raise self.fail(f"unknown opcode {ins.opcode:02x}", pc)
            if ins.src:
                raise self.fail("BPF_ST uses reserved fields", pc)
            self.reads[pc] = _bit(self.reg(ins.dst, pc))
        elif mode == I.BPF_MEM:
            if ins.imm:
                raise self.fail("BPF_STX uses reserved fields", pc)
            self.reads[pc] = _bit(self.reg(ins.dst, pc)) | _bit(self.reg(ins.src, pc))
        elif mode == I.BPF_ATOMIC:
            self.atomic(ins, pc)
        else:
            raise self.fail(f"unknown opcode {ins.opcode:02x}", pc)

    def atomic(self, ins: Insn, pc: int) -> None:
        imm, size = ins.imm, ins.opcode & 0x18
        d, s = self.reg(ins.dst, pc), self.reg(ins.src, pc)
        if imm == I.BPF_LOAD_ACQ:
            self.reads[pc], self.writes[pc] = _bit(s), _bit(self.dst_w(d, pc))
            return
        if imm == I.BPF_STORE_REL:
            self.reads[pc] = _bit(d) | _bit(s)
            return
        ok_op = imm in (I.BPF_XCHG, I.BPF_CMPXCHG) or (imm & ~I.BPF_FETCH) in _ATOMIC_RMW
        if not ok_op or size not in (I.BPF_W, I.BPF_DW):
            raise self.fail(f"BPF_ATOMIC uses invalid atomic opcode {imm:02x}", pc)
        self.reads[pc] = _bit(d) | _bit(s)
        if imm == I.BPF_CMPXCHG:
            self.reads[pc] |= R0
            self.writes[pc] = R0
        elif imm & I.BPF_FETCH:
            self.writes[pc] = _bit(self.dst_w(s, pc))

    def ld(self, ins: Insn, pc: int) -> bool:
        """Returns True for ``lddw`` (two slots)."""
        mode, size = ins.opcode & 0xE0, ins.opcode & 0x18
        if ins.is_lddw:
            if pc + 1 >= self.n:
                raise self.fail("invalid BPF_LD_IMM insn", pc)
            nxt = self.insns[pc + 1]
            if nxt.opcode or nxt.dst or nxt.src or nxt.off or ins.off or ins.src > I.BPF_PSEUDO_MAP_IDX_VALUE:
                raise self.fail("invalid BPF_LD_IMM insn", pc)
            self.writes[pc] = _bit(self.dst_w(ins.dst, pc))
            return True
        if mode in (I.BPF_ABS, I.BPF_IND) and size != I.BPF_DW:
            if ins.dst or ins.off or (mode == I.BPF_ABS and ins.src):
                raise self.fail("BPF_LD_[ABS|IND] uses reserved fields", pc)
            self.reads[pc] = _bit(6) | (_bit(self.reg(ins.src, pc)) if mode == I.BPF_IND else 0)
            self.writes[pc], self.clobbers[pc] = R0, ARGS
            return False
        raise self.fail(f"unknown opcode {ins.opcode:02x}", pc)

    # --- whole program ----------------------------------------------------------------
    def run(self, entry_regs: int) -> None:
        n = self.n
        if n == 0:
            raise BpfVerifyError("empty program")
        if n > MAX_INSNS:
            raise BpfVerifyError(f"program of {n} insns is too large")
        second_half = [False] * n
        succ: list[list[int]] = [[] for _ in range(n)]
        calls: dict[int, int] = {}
        pc = last = 0
        while pc < n:
            last = pc
            ins = self.insns[pc]
            cls = ins.opcode & 0x07
            width = 1
            if cls in (I.BPF_ALU, I.BPF_ALU64):
                self.alu(ins, pc)
            elif cls in (I.BPF_JMP, I.BPF_JMP32):
                targets = self.jmp(ins, pc)
                if ins.opcode == I.BPF_JMP | I.BPF_CALL and ins.src == I.BPF_PSEUDO_CALL:
                    calls[pc] = pc + 1 + ins.imm
                succ[pc].extend(targets)
            elif cls == I.BPF_LD:
                if self.ld(ins, pc):
                    second_half[pc + 1] = True
                    width = 2
            else:
                self.mem(ins, pc)
            if not self.is_tail[pc]:
                succ[pc].append(pc + width)
            pc += width
        if not self.is_tail[last]:
            raise self.fail("last insn is not an exit or jmp", last)
        for pc in range(n):
            for t in succ[pc] + ([calls[pc]] if pc in calls else []):
                if not 0 <= t < n or second_half[t]:
                    raise self.fail(f"jump out of range from insn {pc} to {t}", pc)
        self.flow(entry_regs, succ, calls, second_half)

    def flow(self, entry: int, succ: list[list[int]], calls: dict[int, int], second_half: list[bool]) -> None:
        """Must-initialised register sets; reports ``R%d !read_ok`` and unreachable code.

        Called once by :meth:`run` with ``entry`` (the entry register mask), ``succ[pc]`` (the
        successors of each slot, local-call targets excluded), ``calls`` (call-site pc -> callee
        entry pc, for ``BPF_PSEUDO_CALL``) and ``second_half`` (slots that are the second half of
        an ``lddw``).  Subclasses override this to replace the analysis.
        """
        state: list[int | None] = [None] * self.n
        state[0] = entry | R10
        work = [0]
        while work:
            pc = work.pop()
            have = state[pc]
            assert have is not None
            missing = self.reads[pc] & ~have
            if missing:
                reg = (missing & -missing).bit_length() - 1
                raise self.fail(f"R{reg} !read_ok", pc)
            out = (have & ~self.clobbers[pc]) | self.writes[pc]
            edges = [(t, out) for t in succ[pc]]
            if pc in calls:
                edges.append((calls[pc], (have & ARGS) | R10))
            for t, m in edges:
                cur = state[t]
                new = m if cur is None else cur & m
                if new != cur:
                    state[t] = new
                    work.append(t)
        for pc in range(self.n):
            if state[pc] is None and not second_half[pc]:
                raise self.fail(f"unreachable insn {pc}", pc)


def verify(insns: Sequence[Insn], *, entry_regs: Sequence[int] = (1,), kernel_imm_rules: bool = True) -> None:
    """Raise :class:`BpfVerifyError` if ``insns`` would not pass the structural checks.

    ``entry_regs`` are the registers initialised at entry besides R10 (the
    kernel passes only R1 = ctx; the conformance suite also passes R2).
    """
    mask = 0
    for r in entry_regs:
        mask |= _bit(r)
    StructuralChecker(insns, kernel_imm_rules).run(mask)
