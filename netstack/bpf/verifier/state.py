"""Verifier states, stack slots, and state comparison for pruning (verifier.c).

A :class:`FuncState` is ``struct bpf_func_state`` (R0-R10 and a 512-byte
stack of 8-byte slots, each byte ``?`` STACK_INVALID, ``m`` STACK_MISC, ``0``
STACK_ZERO or ``r`` STACK_SPILL, plus the spilled register); a
:class:`VState` is ``struct bpf_verifier_state`` (the call frames, acquired
references, the parent checkpoint and its ``branches`` count).

:func:`states_equal` is the kernel's ``states_equal`` in RANGE_WITHIN mode
(old state's knowledge covers the current one, ids mapped consistently) and
in EXACT mode for loop detection.  Without precision tracking every scalar
is compared, which prunes less than the kernel but never wrongly.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import reg_state as RS
from .reg_state import Reg

INVALID, MISC, ZERO, SPILL = "?", "m", "0", "r"
NSLOTS = 64  # MAX_BPF_STACK / BPF_REG_SIZE


@dataclass
class Slot:
    """One 8-byte stack slot; ``types[k]`` is the byte at ``slot_base + k`` (k=0 lowest address)."""

    types: str = INVALID * 8
    spilled: Reg | None = None


class FuncState:
    __slots__ = ("regs", "stack", "frameno", "callsite", "depth", "subprog")

    def __init__(self, frameno: int, callsite: int = -1) -> None:
        self.regs: list[Reg] = [RS.not_init() for _ in range(11)]
        self.stack: dict[int, Slot] = {}   # spi -> slot (spi 0 = fp-8 .. fp-1)
        self.frameno = frameno
        self.callsite = callsite
        self.depth = 0                      # deepest byte touched (stack_depth)
        self.subprog = 0                    # index of the subprogram this frame runs

    def copy(self) -> "FuncState":
        f = FuncState.__new__(FuncState)
        f.regs = [r.copy() for r in self.regs]
        f.stack = {k: Slot(s.types, s.spilled) for k, s in self.stack.items()}
        f.frameno, f.callsite, f.depth, f.subprog = self.frameno, self.callsite, self.depth, self.subprog
        return f


class VState:
    __slots__ = ("frames", "refs", "parent", "branches", "insn_idx")

    def __init__(self) -> None:
        self.frames: list[FuncState] = []
        self.refs: list[tuple[int, int]] = []   # (id, insn that acquired it)
        self.parent: VState | None = None
        self.branches = 1
        self.insn_idx = 0

    @property
    def cur(self) -> FuncState:
        return self.frames[-1]

    def copy(self) -> "VState":
        s = VState.__new__(VState)
        s.frames = [f.copy() for f in self.frames]
        s.refs = list(self.refs)
        s.parent = self.parent
        s.branches = self.branches
        s.insn_idx = self.insn_idx
        return s

    def all_regs(self):  # bpf_for_each_reg_in_vstate
        """Yield (frame, setter, reg) for every register and spilled register of every frame."""
        for f in self.frames:
            for i, r in enumerate(f.regs):
                yield f, ("reg", i), r
            for spi, slot in f.stack.items():
                if slot.spilled is not None:
                    yield f, ("slot", spi), slot.spilled


# --- comparison -------------------------------------------------------------------------------

class _IdMap:
    def __init__(self) -> None:
        self.m: dict[int, int] = {}
        self.r: dict[int, int] = {}

    def check(self, old: int, cur: int) -> bool:
        if not old:
            return not cur or True
        if old in self.m:
            return self.m[old] == cur
        if cur in self.r:
            return False
        self.m[old] = cur
        self.r[cur] = old
        return True


def _range_within(o: Reg, c: Reg) -> bool:
    return (o.umin <= c.umin and o.umax >= c.umax and o.smin <= c.smin and o.smax >= c.smax
            and o.u32min <= c.u32min and o.u32max >= c.u32max and o.s32min <= c.s32min and o.s32max >= c.s32max)


def regsafe(o: Reg, c: Reg, ids: _IdMap, exact: bool) -> bool:
    """``regsafe``: is ``c`` at least as safe as ``o`` for everything that follows?"""
    if exact:
        ko, kc = o.key(), c.key()
        if ko[:3] != kc[:3] or ko[4:] != kc[4:]:
            return False
        return ids.check(o.id, c.id)
    if o.type == RS.NOT_INIT:
        return True
    if o.type != c.type:
        return False
    if o.type == RS.SCALAR:
        if o.id and not ids.check(o.id, c.id):
            return False
        return _range_within(o, c) and o.var_off.contains(c.var_off)
    if o.maybe_null != c.maybe_null or o.map is not c.map and (o.map is None or c.map is None or o.map.fd != c.map.fd):
        return False
    if o.is_pkt():
        if o.range < 0 or c.range < 0:
            if o.range != c.range:
                return False
        elif o.range > c.range:
            return False
        if o.off != c.off or not ids.check(o.id, c.id):
            return False
        return _range_within(o, c) and o.var_off.contains(c.var_off)
    if o.type in (RS.PTR_TO_MAP_VALUE, RS.PTR_TO_MEM):
        if o.off != c.off or o.mem_size != c.mem_size or not ids.check(o.id, c.id) \
                or not ids.check(o.ref_obj_id, c.ref_obj_id):
            return False
        return _range_within(o, c) and o.var_off.contains(c.var_off)
    return (o.off == c.off and o.var_off == c.var_off and o.frameno == c.frameno and ids.check(o.id, c.id)
            and o.range == c.range)


def _stacksafe(o: FuncState, c: FuncState, ids: _IdMap, exact: bool, allow_uninit: bool) -> bool:
    for spi, os_ in o.stack.items():
        cs = c.stack.get(spi, Slot())
        for k in range(8):
            ot, ct = os_.types[k], cs.types[k]
            if exact:
                if ot != ct:
                    return False
                continue
            if ot == INVALID:
                continue
            if ot == MISC and (ct == ZERO or allow_uninit or ct == MISC or ct == SPILL and
                               cs.spilled is not None and cs.spilled.type == RS.SCALAR):
                continue
            if ot != ct:
                return False
        if os_.types[7] == SPILL or os_.types[0] == SPILL or exact:
            a, b = os_.spilled, cs.spilled
            if a is None and b is None:
                continue
            if a is None or b is None or not regsafe(a, b, ids, exact):
                return False
    if exact:
        for spi, cs in c.stack.items():
            if spi not in o.stack and cs.types != INVALID * 8:
                return False
    return True


def states_equal(old: VState, cur: VState, exact: bool, allow_uninit: bool) -> bool:
    if len(old.frames) != len(cur.frames):
        return False
    if [r for r, _ in old.refs] != [r for r, _ in cur.refs] and exact:
        return False
    ids = _IdMap()
    if len(old.refs) != len(cur.refs):
        return False
    for (oi, _), (ci, _) in zip(old.refs, cur.refs):
        if not ids.check(oi, ci):
            return False
    for fo, fc in zip(old.frames, cur.frames):
        if fo.callsite != fc.callsite:
            return False
        for ro, rc in zip(fo.regs, fc.regs):
            if not regsafe(ro, rc, ids, exact):
                return False
        if not _stacksafe(fo, fc, ids, exact, allow_uninit):
            return False
    return True


def regs_key(st: VState) -> tuple:
    """The innermost frame's registers as one comparable value (``states_maybe_looping``)."""
    return (len(st.frames),) + tuple(r.key() for r in st.frames[-1].regs)


@dataclass
class Checkpoint:
    """An explored state kept at a prune point (``struct bpf_verifier_state_list``)."""

    state: VState
    key: tuple = ()
    hits: int = 0
    miss: int = 0
