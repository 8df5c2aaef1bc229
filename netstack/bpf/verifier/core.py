"""The verifier's main loop: ``bpf_check`` / ``check_cfg`` / ``do_check`` (kernel/bpf/verifier.c).

Path-sensitive abstract interpretation: one path is followed at a time, a
conditional jump whose outcome is unknown pushes the other branch (with the
registers refined by ``reg_set_min_max``, packet ranges from
``find_good_pkt_pointers`` and null checks from ``mark_ptr_or_null_regs``),
a known outcome follows only the live edge (dead-branch pruning).  At prune
points the current state is compared with the explored ones
(``is_state_visited``): covered states end the path, an identical state still
in progress on the same path is an infinite loop.  The 1 M processed
instructions limit bounds every loop; back-edges are refused for
unprivileged programs by ``check_cfg``.
"""
from __future__ import annotations

import errno as E
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .. import insn as I
from .. import maps as M
from ..check import StructuralChecker
from ..errors import BpfVerifyError, NotSupported
from ..insn import Insn
from . import bounds as B
from . import reg_state as RS
from .calls import Calls
from .ctx_access import may_access_direct_pkt_data
from .errors import Reject
from .helper_protos import PROTOS
from .log import ALU_STR, VLog, insn_str
from .memaccess import READ, WRITE, MemAccess
from .reg_state import MapInfo, Reg
from .state import Checkpoint, FuncState, VState, regs_key, states_equal

BPF_COMPLEXITY_LIMIT_INSNS = 1_000_000
BPF_MAXINSNS = 4096
BPF_COMPLEXITY_LIMIT_JMP_SEQ = 8192
MAX_PACKET_OFF = 0xFFFF
ENOTSUPP = 524  # include/linux/errno.h: kernel-internal, returned by bpf(2) as is
U64 = (1 << 64) - 1


@dataclass
class VerifierResult:
    """Outcome of :func:`verify_program` (what ``bpf(BPF_PROG_LOAD)`` reports)."""

    accepted: bool
    log: str
    errno: int = 0
    error: str = ""
    insn_processed: int = 0
    total_states: int = 0
    peak_states: int = 0
    max_states_per_insn: int = 0
    stack_depth: tuple[int, ...] = ()


class _CfgChecker(StructuralChecker):
    """The structural checks of :mod:`netstack.bpf.check` without its must-init analysis
    (here the path-sensitive pass decides ``R%d !read_ok``): overrides the documented
    :meth:`StructuralChecker.flow` hook to keep the control-flow graph for ``check_cfg``."""

    def flow(self, entry: int, succ: list[list[int]], calls: dict[int, int], second_half: list[bool]) -> None:
        self.succ, self.calls, self.second_half = succ, calls, second_half


def _map_info(fd: int, m: Any) -> MapInfo:
    if isinstance(m, MapInfo):
        return m
    if isinstance(m, M.BpfMap):
        return MapInfo(fd, m.map_type, m.key_size, m.value_size, m.max_entries, getattr(m, "name", "") or "", m)
    raise NotSupported(f"map object {type(m).__name__} for fd {fd}")


class _Explored:
    """The checkpoints kept at one prune point (``explored_states`` for one insn)."""

    __slots__ = ("done", "inprog", "by_key", "_swept")

    def __init__(self) -> None:
        self.done: list[Checkpoint] = []
        self.inprog: list[Checkpoint] = []
        self.by_key: dict[tuple, list[Checkpoint]] = {}
        self._swept = 0

    def add(self, cp: Checkpoint) -> None:
        self.inprog.append(cp)
        self.by_key.setdefault(cp.key, []).append(cp)

    def _finish(self, cp: Checkpoint) -> None:
        self.done.append(cp)
        lst = self.by_key.get(cp.key)
        if lst is not None:
            lst.remove(cp)
            if not lst:
                del self.by_key[cp.key]

    def settle(self) -> None:
        """Move finished checkpoints to ``done``: the newest eagerly, all of them now and then."""
        while self.inprog and not self.inprog[-1].state.branches:
            self._finish(self.inprog.pop())
        if len(self.inprog) > 2 * self._swept + 8:
            still = []
            for cp in self.inprog:
                if cp.state.branches:
                    still.append(cp)
                else:
                    self._finish(cp)
            self.inprog = still
            self._swept = len(still)


class Verifier(MemAccess, Calls):
    def __init__(self, insns: Sequence[Insn], prog_type: int, maps: Mapping[int, Any] | None, privileged: bool,
                 log_level: int, complexity_limit: int) -> None:
        self.insns = list(insns)
        self.prog_type = prog_type
        self.maps = maps
        self.privileged = privileged
        self.log = VLog(log_level)
        self.level = log_level
        self.limit = complexity_limit
        self.pkt_access = may_access_direct_pkt_data(prog_type)
        self.id_gen = 0
        self.insn_processed = 0
        self.explored: dict[int, _Explored] = {}
        self.total_states = self.peak_states = self.cur_states = self.max_per_insn = 0
        self.prev_insn_processed = self.jmps_processed = self.prev_jmps_processed = 0
        self.idx = 0
        self.cur_insn = self.insns[0] if self.insns else Insn(0)
        self.st = VState()

    # --- plumbing -----------------------------------------------------------------------------
    def reject(self, msg: str, errno: int = E.EACCES) -> None:
        self.log(msg + "\n")
        raise Reject(msg, errno)

    def reject_raw(self, msg: str, errno: int) -> None:
        """A rejection whose kernel message has no trailing newline (it runs into the stats line)."""
        self.log(msg)
        raise Reject(msg, errno)

    def new_id(self) -> int:
        self.id_gen += 1
        return self.id_gen

    def check_read(self, regno: int) -> None:
        if self.st.cur.regs[regno].type == RS.NOT_INIT:
            self.reject(f"R{regno} !read_ok")

    def subprog_index(self, start: int) -> int:
        return self.subprog_starts.index(start)

    def subprog_of_frame(self, frame: FuncState) -> int:
        return frame.subprog

    # --- check_cfg ----------------------------------------------------------------------------
    def check_cfg(self) -> None:
        n = len(self.insns)
        limit = BPF_COMPLEXITY_LIMIT_INSNS if self.privileged else BPF_MAXINSNS
        if n == 0 or n > limit:
            raise Reject("", E.E2BIG if n else E.EINVAL)
        chk = _CfgChecker(self.insns, True)
        try:
            chk.run(0)
        except BpfVerifyError as exc:
            # check.py words an immediate division by zero as RFC 9669 does; the kernel says "div by zero"
            self.reject("div by zero" if exc.message == "division by zero" else exc.message, E.EINVAL)
        self.second_half = chk.second_half
        calls = chk.calls
        if calls and not self.privileged:
            self.reject("loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN",
                        E.EPERM)
        self.subprog_starts = sorted({0, *calls.values()})
        # jumps may not leave their subprogram (check_subprogs)
        ends = self.subprog_starts[1:] + [n]
        for si, start in enumerate(self.subprog_starts):
            end = ends[si]
            last = end - 1
            if self.second_half[last]:
                last -= 1
            lins = self.insns[last]
            cls, op = lins.opcode & 7, lins.opcode & 0xF0
            if not (cls in (I.BPF_JMP, I.BPF_JMP32) and op in (I.BPF_EXIT, I.BPF_JA)):
                self.reject("last insn is not an exit or jmp", E.EINVAL)
            for pc in range(start, end):
                for t in chk.succ[pc]:
                    if not start <= t < end:
                        self.reject(f"jump out of range from insn {pc} to {t}", E.EINVAL)
        # DFS for reachability and (unprivileged) back-edges
        self.prune = [False] * n
        for t in calls.values():
            self.prune[t] = True
        state = [0] * n  # 0 unseen, 1 on stack, 2 done
        for root in [0]:
            stack = [(root, iter(self._edges(root, chk)))]
            state[root] = 1
            while stack:
                pc, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    state[pc] = 2
                    stack.pop()
                    continue
                w, is_branch = nxt
                if is_branch:
                    self.prune[w] = True
                if state[w] == 1 and not self.privileged:
                    self.reject(f"back-edge from insn {pc} to {w}", E.EINVAL)
                if state[w] == 0:
                    state[w] = 1
                    stack.append((w, iter(self._edges(w, chk))))
        for pc in range(n):
            if state[pc] == 0 and not self.second_half[pc]:
                self.reject(f"unreachable insn {pc}", E.EINVAL)

    def _edges(self, pc: int, chk: _CfgChecker) -> list[tuple[int, bool]]:
        ins = self.insns[pc]
        cls, op = ins.opcode & 7, ins.opcode & 0xF0
        out: list[tuple[int, bool]] = []
        if cls in (I.BPF_JMP, I.BPF_JMP32) and op not in (I.BPF_CALL, I.BPF_EXIT, I.BPF_JA):
            self.prune[pc] = True
            return [(pc + 1, False), (chk.succ[pc][0], True)]
        if pc in chk.calls:
            out.append((chk.calls[pc], True))
        if cls in (I.BPF_JMP, I.BPF_JMP32) and op == I.BPF_CALL and pc + 1 < len(self.insns):
            self.prune[pc + 1] = True
        for t in chk.succ[pc]:
            out.append((t, cls in (I.BPF_JMP, I.BPF_JMP32) and op == I.BPF_JA))
        return out

    # --- run --------------------------------------------------------------------------------
    def run(self) -> VerifierResult:
        try:
            self.check_cfg()
            self.resolve_pseudo_ldimm64()
            self.stack_depth = [0] * len(self.subprog_starts)
            self.do_check()
            self.check_max_stack_depth()
        except Reject as rej:
            self.log(self.stats())
            return VerifierResult(False, self.log.text(), rej.errno, rej.message, self.insn_processed,
                                  self.total_states, self.peak_states, self._max_per_insn(),
                                  tuple(getattr(self, "stack_depth", ())))
        if self.level == 1:
            self.log.reset(0)
        self.log(self.stats())
        return VerifierResult(True, self.log.text(), 0, "", self.insn_processed, self.total_states,
                              self.peak_states, self._max_per_insn(), tuple(self.stack_depth))

    def _max_per_insn(self) -> int:
        return self.max_per_insn

    def stats(self) -> str:
        return (f"processed {self.insn_processed} insns (limit {BPF_COMPLEXITY_LIMIT_INSNS}) max_states_per_insn "
                f"{self._max_per_insn()} total_states {self.total_states} peak_states {self.peak_states} "
                f"mark_read 0\n")

    def check_max_stack_depth(self) -> None:
        """``check_max_stack_depth``: the frames of any call chain share 512 bytes."""
        starts = self.subprog_starts
        callees: dict[int, set[int]] = {i: set() for i in range(len(starts))}
        for pc, ins in enumerate(self.insns):
            if ins.opcode == I.BPF_JMP | I.BPF_CALL and ins.src == I.BPF_PSEUDO_CALL and not self.second_half[pc]:
                caller = max(i for i, s in enumerate(starts) if s <= pc)
                callees[caller].add(starts.index(pc + 1 + ins.imm))

        def rnd(d: int) -> int:  # round_up_stack_depth with the JIT on (x86-64 default)
            return (d + 15) // 16 * 16

        def walk(sub: int, total: int, chain: int) -> None:
            total += rnd(self.stack_depth[sub])
            if total > 512:
                self.reject(f"combined stack size of {chain} calls is {total}. Too large")
            for c in callees[sub]:
                walk(c, total, chain + 1)
        walk(0, 0, 1)

    # --- do_check -----------------------------------------------------------------------------
    def initial_state(self) -> VState:
        st = VState()
        f = FuncState(0)
        f.regs[1] = RS.new_ptr(RS.PTR_TO_CTX)
        f.regs[10] = RS.new_ptr(RS.PTR_TO_STACK)
        st.frames.append(f)
        return st

    def state_str(self, st: VState) -> str:
        f = st.cur
        parts = []
        for i, r in enumerate(f.regs):
            if r.type != RS.NOT_INIT:
                parts.append(f"R{i}={RS.reg_str(r)}")
        for spi in sorted(f.stack):
            slot = f.stack[spi]
            if slot.types == "?" * 8:
                continue
            off = -8 * (spi + 1)
            if slot.spilled is not None and "r" in slot.types:
                parts.append(f"fp{off}={RS.reg_str(slot.spilled)}")
            else:
                parts.append(f"fp{off}={slot.types[::-1]}")
        prefix = f"frame{f.frameno}: " if f.frameno else ""
        return prefix + " ".join(parts)

    def do_check(self) -> None:
        self.st = self.initial_state()
        self.idx = 0
        self.branch_stack: list[tuple[VState, int, int, int]] = []
        from_idx = -1
        print_state = True
        n = len(self.insns)
        while True:
            idx = self.idx
            if idx >= n:
                self.reject(f"invalid insn idx {idx} insn_cnt {n}", E.EFAULT)
            self.insn_processed += 1
            if self.insn_processed > self.limit:
                self.reject(f"BPF program is too large. Processed {self.insn_processed} insn", E.E2BIG)
            if self.prune[idx] and self.is_state_visited(idx):
                if self.level > 1:
                    self.log(f"{idx}: safe\n")
                from_idx = self.path_done()
                if from_idx is None:
                    return
                print_state = True
                continue
            if self.level and print_state:
                if from_idx >= 0:
                    self.log(f"\nfrom {from_idx} to {idx}: {self.state_str(self.st)}\n")
                self.log(f"{idx}: {self.state_str(self.st)}\n")
            print_state = False
            ins = self.cur_insn = self.insns[idx]
            nxt = self.insns[idx + 1] if idx + 1 < n else None
            hname = PROTOS[ins.imm].name if (ins.opcode == I.BPF_JMP | I.BPF_CALL and ins.src == 0
                                            and ins.imm in PROTOS) else None
            if self.level:
                self.log.pending = f"{idx}: ({ins.opcode:02x}) {insn_str(ins, nxt, hname)}"
            done = self.do_insn(ins, ins.opcode & 7)
            if self.level and self.log.pending is not None:
                line = self.log.pending
                self.log.pending = None
                touched = self._touched(ins) if not done else []
                suffix = " ".join(f"R{r}={RS.reg_str(self.st.cur.regs[r])}" for r in touched
                                  if self.st.cur.regs[r].type != RS.NOT_INIT)
                self.log(line + ((" " * max(1, 38 - len(line)) + "; " + suffix) if suffix else "") + "\n")
            if done:
                from_idx = self.path_done()
                if from_idx is None:
                    return
                print_state = True

    def _touched(self, ins: Insn) -> list[int]:
        cls = ins.opcode & 7
        if cls in (I.BPF_ALU, I.BPF_ALU64, I.BPF_LDX) or (cls == I.BPF_LD):
            return sorted({ins.dst} | ({ins.src} if cls == I.BPF_ALU64 and ins.opcode & I.BPF_X
                                      and ins.opcode & 0xF0 == I.BPF_MOV else set()))
        if cls in (I.BPF_JMP, I.BPF_JMP32) and ins.opcode & 0xF0 not in (I.BPF_CALL, I.BPF_EXIT, I.BPF_JA):
            return sorted({ins.dst} | ({ins.src} if ins.opcode & I.BPF_X else set()))
        if cls in (I.BPF_JMP,) and ins.opcode & 0xF0 == I.BPF_CALL:
            return [0]
        return []

    # --- path bookkeeping ---------------------------------------------------------------------
    def push_branch(self, st: VState, target: int) -> None:
        if len(self.branch_stack) >= BPF_COMPLEXITY_LIMIT_JMP_SEQ:
            self.reject(f"The sequence of {len(self.branch_stack)} jumps is too complex.", E.E2BIG)
        if st.parent is not None:
            st.parent.branches += 1
        self.branch_stack.append((st, target, self.idx, self.log.pos()))

    def update_branch_counts(self, st: VState | None) -> None:
        while st is not None:
            st.branches -= 1
            if st.branches:
                break
            st = st.parent

    def path_done(self) -> int | None:
        """The current path ended (exit or pruned); continue with a pushed branch.

        Returns the index of the jump the resumed branch came from, None when all is explored.
        """
        self.update_branch_counts(self.st)
        if not self.branch_stack:
            return None
        st, target, from_idx, log_pos = self.branch_stack.pop()
        if self.level == 1:
            self.log.reset(log_pos)
        self.st = st
        self.idx = target
        return from_idx

    def is_state_visited(self, idx: int) -> bool:
        """``is_state_visited``: prune against explored states, detect loops, maybe add a checkpoint.

        Checkpoints still being explored (``branches > 0``: ancestors of the current path) are kept
        apart from finished ones; only finished ones may prune, and an in-progress one with exactly
        the current state means the path came back to it unchanged: an infinite loop.
        """
        cur = self.st
        ex = self.explored.get(idx)
        if ex is None:
            ex = self.explored[idx] = _Explored()
        add = (self.jmps_processed - self.prev_jmps_processed >= 2
               and self.insn_processed - self.prev_insn_processed >= 8)
        allow_uninit = self.privileged
        ex.settle()
        if ex.inprog:
            cur_key = regs_key(cur)
            for cp in ex.by_key.get(cur_key, ()):
                if cp.state.branches and states_equal(cp.state, cur, True, allow_uninit):
                    self.log(f"infinite loop detected at insn {idx}\ncur state: {self.state_str(cur)}\n"
                             f"old state: {self.state_str(cp.state)}\n")
                    raise Reject(f"infinite loop detected at insn {idx}", E.EINVAL)
            if self.jmps_processed - self.prev_jmps_processed < 20 and \
                    self.insn_processed - self.prev_insn_processed < 100:
                add = False
        keep: list[Checkpoint] = []
        pruned = False
        for cp in ex.done:
            if pruned:
                keep.append(cp)
            elif states_equal(cp.state, cur, False, allow_uninit):
                cp.hits += 1
                keep.append(cp)
                pruned = True
            else:
                cp.miss += 1
                if cp.miss <= cp.hits * 3 + 3:  # the kernel frees states that keep missing
                    keep.append(cp)
        ex.done = keep
        if pruned or not add:
            return pruned
        self.total_states += 1
        self.cur_states += 1
        self.peak_states = max(self.peak_states, self.cur_states)
        self.prev_insn_processed = self.insn_processed
        self.prev_jmps_processed = self.jmps_processed
        new = cur.copy()
        new.branches = 1
        new.insn_idx = idx
        ex.add(Checkpoint(new, key=regs_key(new)))
        self.max_per_insn = max(self.max_per_insn, len(ex.done) + len(ex.inprog))
        cur.parent = new
        return False

    # --- instructions -------------------------------------------------------------------------
    def do_insn(self, ins: Insn, cls: int) -> bool:
        """Simulate one instruction; True when the path ends here (exit of the main program)."""
        idx = self.idx
        if cls in (I.BPF_ALU, I.BPF_ALU64):
            self.check_alu(ins, cls == I.BPF_ALU64)
            self.idx = idx + 1
        elif cls == I.BPF_LDX:
            self.check_read(ins.src)
            self.check_mem_access(ins.src, ins.off, I.SIZE_BYTES[ins.opcode & 0x18], READ, ins.dst,
                                  sx=(ins.opcode & 0xE0) == I.BPF_MEMSX)
            self.idx = idx + 1
        elif cls == I.BPF_STX:
            self.check_store(ins)
            self.idx = idx + 1
        elif cls == I.BPF_ST:
            self.check_read(ins.dst)
            self.check_mem_access(ins.dst, ins.off, I.SIZE_BYTES[ins.opcode & 0x18], WRITE, -1)
            self.idx = idx + 1
        elif cls == I.BPF_LD:
            if ins.is_lddw:
                self.check_ld_imm(ins, self.insns[idx + 1])
                self.idx = idx + 2
            else:
                self.check_ld_abs(ins)
                self.idx = idx + 1
        else:
            return self.check_jmp(ins, cls)
        return False

    def check_ld_imm(self, ins: Insn, nxt: Insn) -> None:
        regs = self.st.cur.regs
        if ins.src == 0:
            RS.mark_known(regs[ins.dst], ((nxt.imm & 0xFFFFFFFF) << 32) | (ins.imm & 0xFFFFFFFF))
            return
        if ins.src not in (I.BPF_PSEUDO_MAP_FD, I.BPF_PSEUDO_MAP_VALUE):
            raise NotSupported(f"lddw pseudo source {ins.src} in the verifier")
        info = self.ld_imm_map(ins, nxt)
        if ins.src == I.BPF_PSEUDO_MAP_FD:
            regs[ins.dst] = RS.new_ptr(RS.CONST_PTR_TO_MAP, map=info)
            return
        regs[ins.dst] = RS.new_ptr(RS.PTR_TO_MAP_VALUE, map=info, off=nxt.imm & 0xFFFFFFFF)

    def ld_imm_map(self, ins: Insn, nxt: Insn) -> MapInfo:
        """The map of a ``BPF_PSEUDO_MAP_FD``/``_VALUE`` ``lddw``, checked as ``resolve_pseudo_ldimm64``.

        Only ``BPF_MAP_TYPE_ARRAY`` has ``map_direct_value_addr`` among the modelled maps
        (``array_map_direct_value_addr``: ``-ENOTSUPP`` unless ``max_entries == 1``, ``-EINVAL``
        for ``off >= value_size``; both logged as ``invalid access to map value pointer``).
        """
        fd = ins.imm
        table = self.maps if self.maps is not None else M.FD_TABLE
        obj = table.get(fd)
        if obj is None or (not isinstance(obj, (MapInfo, M.BpfMap))):
            self.reject(f"fd {fd} is not pointing to valid bpf_map", E.EBADF)
        info = _map_info(fd, obj)
        if ins.src == I.BPF_PSEUDO_MAP_VALUE:
            off = nxt.imm & 0xFFFFFFFF
            if info.map_type != M.BPF_MAP_TYPE_ARRAY:
                self.reject("no direct value access support for this map type", E.EINVAL)
            if info.max_entries != 1 or off >= info.value_size:
                self.reject(f"invalid access to map value pointer, value_size={info.value_size} off={off}",
                            ENOTSUPP if info.max_entries != 1 else E.EINVAL)
        return info

    def resolve_pseudo_ldimm64(self) -> None:
        """Check every map ``lddw`` before simulation, as the kernel's ``resolve_pseudo_ldimm64``
        (kernel/bpf/verifier.c) does: such a refusal logs no instruction and ``processed 0 insns``."""
        n = len(self.insns)
        for pc, ins in enumerate(self.insns):
            if (ins.opcode == I.BPF_LD | I.BPF_IMM | I.BPF_DW and not self.second_half[pc] and pc + 1 < n
                    and ins.src in (I.BPF_PSEUDO_MAP_FD, I.BPF_PSEUDO_MAP_VALUE)):
                self.ld_imm_map(ins, self.insns[pc + 1])

    def check_ld_abs(self, ins: Insn) -> None:
        from .. import context as C
        if self.prog_type not in (C.BPF_PROG_TYPE_SOCKET_FILTER, C.BPF_PROG_TYPE_SCHED_CLS,
                                  C.BPF_PROG_TYPE_SCHED_ACT):
            self.reject("BPF_LD_[ABS|IND] instructions not allowed for this program type", E.EINVAL)
        regs = self.st.cur.regs
        self.check_read(6)
        if ins.opcode & 0xE0 == I.BPF_IND:
            self.check_read(ins.src)
        if regs[6].type != RS.PTR_TO_CTX:
            self.reject("at the time of BPF_LD_ABS|IND R6 != pointer to skb", E.EINVAL)
        for r in range(1, 6):
            regs[r] = RS.not_init()
        RS.mark_unknown(regs[0])
        size = I.SIZE_BYTES[ins.opcode & 0x18]
        B.coerce_to_size(regs[0], size)

    def check_store(self, ins: Insn) -> None:
        mode, size = ins.opcode & 0xE0, I.SIZE_BYTES[ins.opcode & 0x18]
        regs = self.st.cur.regs
        if mode == I.BPF_MEM:
            self.check_read(ins.src)
            self.check_read(ins.dst)
            self.check_mem_access(ins.dst, ins.off, size, WRITE, ins.src)
            return
        # atomics
        imm = ins.imm
        if imm == I.BPF_LOAD_ACQ:
            self.check_read(ins.src)
            self.check_mem_access(ins.src, ins.off, size, READ, ins.dst)
            return
        self.check_read(ins.src)
        self.check_read(ins.dst)
        if imm == I.BPF_STORE_REL:
            self.check_mem_access(ins.dst, ins.off, size, WRITE, ins.src)
            return
        if imm == I.BPF_CMPXCHG:
            self.check_read(0)
        d = regs[ins.dst]
        if d.type == RS.PTR_TO_CTX or d.is_pkt():
            self.reject(f"BPF_ATOMIC stores into R{ins.dst} {RS.type_str(d)} is not allowed")
        if regs[ins.src].is_pointer() and not self.privileged:
            self.reject(f"R{ins.src} leaks addr into mem")
        load_reg = -1
        if imm & I.BPF_FETCH:
            load_reg = 0 if imm == I.BPF_CMPXCHG else ins.src
        saved = regs[ins.src].copy()
        self.check_mem_access(ins.dst, ins.off, size, READ, load_reg, atomic=True)
        if load_reg >= 0:
            fetched = regs[load_reg]
            regs[load_reg] = saved if load_reg == ins.src else regs[load_reg]
            self.check_mem_access(ins.dst, ins.off, size, WRITE, ins.src, atomic=True)
            regs[load_reg] = fetched
            if regs[load_reg].is_pointer():
                if not self.privileged:
                    self.reject(f"R{load_reg} leaks addr into mem")
                RS.mark_unknown(regs[load_reg])
        else:
            self.check_mem_access(ins.dst, ins.off, size, WRITE, ins.src, atomic=True)

    # --- ALU --------------------------------------------------------------------------------
    def check_alu(self, ins: Insn, alu64: bool) -> None:
        regs = self.st.cur.regs
        op, x = ins.opcode & 0xF0, ins.opcode & I.BPF_X
        dst = regs[ins.dst]
        if op in (I.BPF_NEG, I.BPF_END):
            self.check_read(ins.dst)
            if dst.is_pointer():
                if not self.privileged:
                    self.reject(f"R{ins.dst} pointer arithmetic prohibited")
                if op == I.BPF_NEG:
                    self.reject(f"R{ins.dst} pointer arithmetic with neg operator prohibited")
                RS.mark_unknown(dst)
                return
            if op == I.BPF_NEG:
                B.neg(dst, not alu64)
            else:
                B.bswap(dst, ins.imm, bool(x), alu64)
            return
        if op == I.BPF_MOV:
            if x:
                self.check_read(ins.src)
                src = regs[ins.src]
                if alu64:
                    if ins.off:  # movsx
                        if src.is_pointer():
                            if not self.privileged:
                                self.reject(f"R{ins.src} sign-extension part of pointer")
                            RS.mark_unknown(dst)
                            return
                        new = src.copy()
                        new.id = 0
                        B.coerce_to_size_sx(new, ins.off // 8)
                        regs[ins.dst] = new
                        return
                    if src.type == RS.SCALAR and not src.id and not src.is_const():
                        src.id = self.new_id()
                    regs[ins.dst] = src.copy()
                    return
                if src.is_pointer():
                    if not self.privileged:
                        self.reject(f"R{ins.src} partial copy of pointer")
                    RS.mark_unknown(dst)
                    B.zext_32_to_64(dst)
                    B.sync(dst)
                    return
                new = src.copy()
                if ins.off:
                    new.id = 0
                    B.coerce_to_size_sx(new, ins.off // 8)
                    B.zext_32_to_64(new)
                    B.sync(new)
                else:
                    if src.umax <= 0xFFFFFFFF and not src.is_const() and src.type == RS.SCALAR:
                        if not src.id:
                            src.id = self.new_id()
                        new.id = src.id
                    else:
                        new.id = 0
                    B.zext_32_to_64(new)
                    B.sync(new)
                regs[ins.dst] = new
                return
            if alu64:
                RS.mark_known(dst, ins.imm)
            else:
                RS.mark_known(dst, ins.imm & 0xFFFFFFFF)
            return
        # binary ops
        if x:
            self.check_read(ins.src)
            src = regs[ins.src]
        else:
            src = RS.mark_known(Reg(), ins.imm if alu64 else ins.imm & 0xFFFFFFFF)
        self.check_read(ins.dst)
        dst = regs[ins.dst]
        opname = ALU_STR.get(op, "?")
        if src.is_pointer():
            if dst.is_pointer():
                if op == I.BPF_SUB and self.privileged:
                    RS.mark_unknown(dst)
                    return
                self.reject(f"R{ins.dst} pointer {opname} pointer prohibited")
            if op != I.BPF_ADD:
                if not alu64:
                    if op == I.BPF_SUB and self.privileged:
                        RS.mark_unknown(dst)
                        return
                    self.reject(f"R{ins.dst} 32-bit pointer arithmetic prohibited")
                if op == I.BPF_SUB:
                    self.reject(f"R{ins.dst} tried to subtract pointer from scalar")
            self.ptr_alu(ins, op, alu64, src, dst, opname)
            return
        if dst.is_pointer():
            self.ptr_alu(ins, op, alu64, dst, src, opname)
            return
        B.scalar_alu(dst, src, op, not alu64)

    def ptr_alu(self, ins: Insn, op: int, alu64: bool, ptr: Reg, off_reg: Reg, opname: str) -> None:
        """``adjust_ptr_min_max_vals``: pointer +/- scalar."""
        regs = self.st.cur.regs
        d = ins.dst
        if not alu64:
            if op == I.BPF_SUB and self.privileged:
                RS.mark_unknown(regs[d])
                return
            self.reject(f"R{d} 32-bit pointer arithmetic prohibited")
        if ptr.maybe_null:
            self.reject(f"R{d} pointer arithmetic on {RS.type_str(ptr)} prohibited, null-check it first")
        known = off_reg.is_const()
        if (known and (off_reg.smin != off_reg.smax or off_reg.umin != off_reg.umax)) or \
                off_reg.smin > off_reg.smax or off_reg.umin > off_reg.umax:
            RS.mark_unknown(regs[d])
            return
        ok_types = (RS.PTR_TO_CTX, RS.PTR_TO_MAP_VALUE, RS.PTR_TO_MAP_KEY, RS.PTR_TO_STACK, RS.PTR_TO_PACKET,
                    RS.PTR_TO_PACKET_META, RS.PTR_TO_MEM)
        if ptr.type not in ok_types:
            if not (ptr.type == RS.CONST_PTR_TO_MAP and known and off_reg.smin == 0 and op == I.BPF_ADD):
                self.reject(f"R{d} pointer arithmetic on {RS.type_str(ptr)} prohibited")
        if op in (I.BPF_AND, I.BPF_OR, I.BPF_XOR):
            self.reject(f"R{d} bitwise operator {opname} on pointer prohibited")
        if op not in (I.BPF_ADD, I.BPF_SUB):
            self.reject(f"R{d} pointer arithmetic with {opname} operator prohibited")
        self.check_sane_offset(off_reg, ptr.type)
        self.check_sane_offset(ptr, ptr.type)
        res = ptr.copy()
        smin_val, smax_val, umin_val, umax_val = off_reg.smin, off_reg.smax, off_reg.umin, off_reg.umax
        if op == I.BPF_SUB and ptr.type == RS.PTR_TO_STACK:
            self.reject(f"R{d} subtraction from stack pointer prohibited")
        if op == I.BPF_ADD:
            if known and -(1 << 31) <= ptr.off + smin_val < (1 << 31):
                res.off = ptr.off + smin_val
            else:
                s_lo, s_hi = ptr.smin + smin_val, ptr.smax + smax_val
                res.smin, res.smax = (s_lo, s_hi) if (RS.S64_MIN <= s_lo and s_hi <= RS.S64_MAX) \
                    else (RS.S64_MIN, RS.S64_MAX)
                u_lo, u_hi = ptr.umin + umin_val, ptr.umax + umax_val
                res.umin, res.umax = (u_lo, u_hi) if u_hi <= U64 else (0, U64)
                res.var_off = ptr.var_off.add(off_reg.var_off)
                if ptr.is_pkt():
                    res.id = self.new_id()
                    res.range = 0
        else:
            if known and -(1 << 31) <= ptr.off - smin_val < (1 << 31):
                res.off = ptr.off - smin_val
            else:
                s_lo, s_hi = ptr.smin - smax_val, ptr.smax - smin_val
                res.smin, res.smax = (s_lo, s_hi) if (RS.S64_MIN <= s_lo and s_hi <= RS.S64_MAX) \
                    else (RS.S64_MIN, RS.S64_MAX)
                if ptr.umin < umax_val:
                    res.umin, res.umax = 0, U64
                else:
                    res.umin, res.umax = ptr.umin - umax_val, ptr.umax - umin_val
                res.var_off = ptr.var_off.sub(off_reg.var_off)
                if ptr.is_pkt():
                    res.id = self.new_id()
                    if smin_val < 0:
                        res.range = 0
        B.mark32_unbounded(res)
        self.check_sane_offset(res, ptr.type)
        B.sync(res)
        regs[d] = res

    def check_sane_offset(self, reg: Reg, ptype: str) -> None:
        tname = RS.type_str(Reg(type=ptype))
        limit = 1 << 29
        if reg.var_off.is_const():
            val = B.s64(reg.var_off.value)
            if val >= limit or val <= -limit:
                self.reject(f"math between {tname} pointer and {val} is not allowed", E.EINVAL)
        if reg.off >= limit or reg.off <= -limit:
            self.reject(f"{tname} pointer offset {reg.off} is not allowed", E.EINVAL)
        if reg.smin == RS.S64_MIN:
            self.reject(f"math between {tname} pointer and register with unbounded min value is not allowed", E.EINVAL)
        if reg.smin >= limit or reg.smin <= -limit:
            self.reject(f"value {reg.smin} makes {tname} pointer be out of bounds", E.EINVAL)

    # --- jumps ------------------------------------------------------------------------------
    def check_jmp(self, ins: Insn, cls: int) -> bool:
        op = ins.opcode & 0xF0
        idx = self.idx
        if op == I.BPF_JA:
            self.jmps_processed += 1
            self.idx = idx + 1 + (ins.off if cls == I.BPF_JMP else ins.imm)
            return False
        if op == I.BPF_CALL:
            self.jmps_processed += 1
            if ins.src == I.BPF_PSEUDO_CALL:
                self.check_func_call(idx + 1 + ins.imm)
                self.idx = idx + 1 + ins.imm
                return False
            if ins.opcode & I.BPF_X:
                raise NotSupported("callx in the verifier")
            self.check_helper_call(ins.imm)
            self.idx = idx + 1
            return False
        if op == I.BPF_EXIT:
            return self.check_exit()
        self.jmps_processed += 1
        return self.check_cond_jmp(ins, cls == I.BPF_JMP32)

    def check_exit(self) -> bool:
        self.check_read(0)
        if len(self.st.frames) > 1:
            self.idx = self.prepare_func_exit()
            return False
        if self.st.refs:
            rid, at = self.st.refs[0]
            self.log(f"Unreleased reference id={rid} alloc_insn={at}\n")
            self.reject("BPF_EXIT instruction in main prog would lead to reference leak", E.EINVAL)
        r0 = self.st.cur.regs[0]
        if r0.is_pointer() and not self.privileged:
            self.reject("R0 leaks addr as return value")
        return True

    def check_cond_jmp(self, ins: Insn, j32: bool) -> bool:
        regs = self.st.cur.regs
        op, x = ins.opcode & 0xF0, ins.opcode & I.BPF_X
        if x:
            self.check_read(ins.src)
            src = regs[ins.src]
            if src.is_pointer() and not self.privileged:
                self.reject(f"R{ins.src} pointer comparison prohibited")
        else:
            src = RS.mark_known(Reg(), ins.imm)
        self.check_read(ins.dst)
        dst = regs[ins.dst]
        pred = self.branch_taken(dst, src, op, j32)
        target = self.idx + 1 + ins.off
        if pred == 1:
            self.idx = target
            return False
        if pred == 0:
            self.idx = self.idx + 1
            return False
        other = self.st.copy()
        oregs = other.cur.regs
        osrc = oregs[ins.src] if x else src.copy()
        if dst.type == RS.SCALAR and src.type == RS.SCALAR:
            fsrc = src if x else src.copy()
            B.refine(dst, fsrc, B.REV[op], j32)
            B.refine(oregs[ins.dst], osrc, op, j32)
            dead_this = dead_other = False
            for r in (dst, fsrc):
                B.sync(r)
                dead_this |= not B.sane(r)
            for r in (oregs[ins.dst], osrc):
                B.sync(r)
                dead_other |= not B.sane(r)
            if x and src.id:
                self.sync_linked(self.st, src)
                self.sync_linked(other, osrc)
            if dst.id:
                self.sync_linked(self.st, dst)
                self.sync_linked(other, oregs[ins.dst])
            if dead_other and dead_this:
                return True
            if dead_other:
                self.idx += 1
                return False
            if dead_this:
                self.st = other
                self.idx = target
                return False
        elif not j32 and not x and ins.imm == 0 and op in (I.BPF_JEQ, I.BPF_JNE) and dst.maybe_null:
            self.mark_ptr_or_null(self.st, ins.dst, op == I.BPF_JNE)
            self.mark_ptr_or_null(other, ins.dst, op == I.BPF_JEQ)
        elif x and not j32 and self.match_pkt_pointers(op, dst, src, ins, other):
            pass
        elif dst.is_pointer() and not self.privileged:
            self.reject(f"R{ins.dst} pointer comparison prohibited")
        self.push_branch(other, target)
        self.idx += 1
        return False

    def branch_taken(self, r1: Reg, r2: Reg, op: int, j32: bool) -> int:
        """``is_branch_taken``."""
        if r1.is_pkt() or r1.type == RS.PTR_TO_PACKET_END:
            if (r2.is_pkt() or r2.type == RS.PTR_TO_PACKET_END) and not j32:
                return self.pkt_branch_taken(r1, r2, op)
        if r1.is_pointer() or r2.is_pointer():
            if not (r2.is_scalar() and r2.is_const()):
                op = B.FLIP.get(op, op)
                r1, r2 = r2, r1
            if not (r2.is_scalar() and (r2.var_off.subreg().is_const() if j32 else r2.is_const())):
                return -1
            if r1.maybe_null or r1.type not in (RS.PTR_TO_MAP_VALUE, RS.PTR_TO_MAP_KEY, RS.PTR_TO_MEM):
                return -1
            val = r2.var_off.value & (0xFFFFFFFF if j32 else U64)
            if val != 0:
                return -1
            return 0 if op == I.BPF_JEQ else 1 if op == I.BPF_JNE else -1
        return B.scalar_branch_taken(r1, r2, op, j32)

    @staticmethod
    def pkt_branch_taken(dst: Reg, src: Reg, op: int) -> int:
        if src.type == RS.PTR_TO_PACKET_END:
            pkt = dst
        elif dst.type == RS.PTR_TO_PACKET_END:
            pkt = src
            op = B.FLIP.get(op, op)
        else:
            return -1
        if pkt.range >= 0:
            return -1
        if op in (I.BPF_JLE, I.BPF_JGT):
            if pkt.range == RS.BEYOND_PKT_END:
                return int(op == I.BPF_JGT)
        elif op in (I.BPF_JLT, I.BPF_JGE):
            if pkt.range in (RS.BEYOND_PKT_END, RS.AT_PKT_END):
                return int(op == I.BPF_JGE)
        return -1

    def sync_linked(self, st: VState, known: Reg) -> None:
        """``sync_linked_regs``: scalars sharing an id learn the refined bounds."""
        for f, where, r in list(st.all_regs()):
            if r is known or r.type != RS.SCALAR or r.id != known.id:
                continue
            new = known.copy()
            self._replace(f, where, new)

    def mark_ptr_or_null(self, st: VState, regno: int, is_null: bool) -> None:
        """``mark_ptr_or_null_regs``: every register with the same id is null or not null."""
        reg = st.cur.regs[regno]
        rid, ref = reg.id, reg.ref_obj_id
        if ref and ref == rid and is_null:
            st.refs = [(i, at) for i, at in st.refs if i != rid]
        for f, where, r in list(st.all_regs()):
            if not (r.maybe_null and r.id == rid):
                continue
            if is_null:
                new = RS.mark_known(Reg(), 0)
            else:
                new = r.copy()
                new.maybe_null = False
                if new.type != RS.PTR_TO_MEM:
                    new.id = 0
            self._replace(f, where, new)

    def match_pkt_pointers(self, op: int, dst: Reg, src: Reg, ins: Insn, other: VState) -> bool:
        """``try_match_pkt_pointers``; ``self.st`` is the fall-through branch, ``other`` the taken one."""
        def init_pkt(r: Reg) -> bool:
            return r.type == RS.PTR_TO_PACKET and r.off == 0 and r.var_off == RS.Tnum(0, 0)

        fwd = (dst.type == RS.PTR_TO_PACKET and src.type == RS.PTR_TO_PACKET_END) or \
              (dst.type == RS.PTR_TO_PACKET_META and init_pkt(src))
        rev = (dst.type == RS.PTR_TO_PACKET_END and src.type == RS.PTR_TO_PACKET) or \
              (init_pkt(dst) and src.type == RS.PTR_TO_PACKET_META)
        this = self.st
        if not (fwd or rev) or op not in (I.BPF_JGT, I.BPF_JLT, I.BPF_JGE, I.BPF_JLE):
            return False
        if fwd:
            good, open_, bad, beyond, regno = {
                I.BPF_JGT: (this, False, other, True), I.BPF_JLT: (other, True, this, False),
                I.BPF_JGE: (this, True, other, False), I.BPF_JLE: (other, False, this, True)}[op] + (ins.dst,)
            pkt = dst
        else:
            good, open_, bad, beyond, regno = {
                I.BPF_JGT: (other, True, this, False), I.BPF_JLT: (this, False, other, True),
                I.BPF_JGE: (other, False, this, True), I.BPF_JLE: (this, True, other, False)}[op] + (ins.src,)
            pkt = src
        self.find_good_pkt_pointers(good, pkt, open_)
        breg = bad.cur.regs[regno]
        if breg.type == RS.PTR_TO_PACKET:
            nb = breg.copy()
            nb.range = RS.BEYOND_PKT_END if beyond else RS.AT_PKT_END
            bad.cur.regs[regno] = nb
        return True

    def find_good_pkt_pointers(self, st: VState, dreg: Reg, right_open: bool) -> None:
        if dreg.off < 0 or (dreg.off == 0 and right_open):
            return
        if dreg.umax > MAX_PACKET_OFF or dreg.umax + dreg.off > MAX_PACKET_OFF:
            return
        new_range = dreg.off + (1 if right_open else 0)
        for f, where, r in list(st.all_regs()):
            if r.type == dreg.type and r.id == dreg.id and r.range < new_range:
                nr = r.copy()
                nr.range = max(nr.range, new_range)
                self._replace(f, where, nr)


def verify_program(insns: Sequence[Insn] | bytes, prog_type: int, *, maps: Mapping[int, Any] | None = None,
                   privileged: bool = True, log_level: int = 0,
                   complexity_limit: int = BPF_COMPLEXITY_LIMIT_INSNS) -> VerifierResult:
    """Verify ``insns`` for ``prog_type`` as ``bpf(BPF_PROG_LOAD)`` would.

    ``maps`` maps the fds used by ``lddw`` map loads to :class:`~netstack.bpf.maps.BpfMap`
    objects or :class:`MapInfo` (default: :data:`netstack.bpf.maps.FD_TABLE`).
    ``complexity_limit`` lowers the 1 M processed-instruction limit (for tests).
    Raises :class:`NotSupported` for features outside the model (kfuncs, unknown helpers).
    """
    code = I.decode(insns) if isinstance(insns, (bytes, bytearray)) else list(insns)
    v = Verifier(code, prog_type, maps, privileged, log_level, complexity_limit)
    return v.run()
