"""Verifier log: kernel-style instruction text and state dumps (kernel/bpf/disasm.c, log.c).

``insn_str`` reproduces ``print_bpf_insn`` (``(61) r2 = *(u32 *)(r1 +0)``,
``if r4 > r3 goto pc+1``, ``call bpf_map_lookup_elem#1``); :class:`VLog` is the
log buffer with the kernel's level rules: level 1 keeps only the path that
failed (a finished branch's lines are dropped when the next one is popped,
``bpf_vlog_reset``), level 2 keeps everything.
"""
from __future__ import annotations

from .. import insn as I
from ..insn import Insn

_ALU = {I.BPF_ADD: "+=", I.BPF_SUB: "-=", I.BPF_MUL: "*=", I.BPF_DIV: "/=", I.BPF_OR: "|=", I.BPF_AND: "&=",
        I.BPF_LSH: "<<=", I.BPF_RSH: ">>=", I.BPF_NEG: "neg", I.BPF_MOD: "%=", I.BPF_XOR: "^=", I.BPF_MOV: "=",
        I.BPF_ARSH: "s>>=", I.BPF_END: "endian"}
_JMP = {I.BPF_JEQ: "==", I.BPF_JGT: ">", I.BPF_JGE: ">=", I.BPF_JSET: "&", I.BPF_JNE: "!=", I.BPF_JSGT: "s>",
        I.BPF_JSGE: "s>=", I.BPF_JLT: "<", I.BPF_JLE: "<=", I.BPF_JSLT: "s<", I.BPF_JSLE: "s<="}
_SZ = {I.BPF_B: "u8", I.BPF_H: "u16", I.BPF_W: "u32", I.BPF_DW: "u64"}
_SSZ = {I.BPF_B: "s8", I.BPF_H: "s16", I.BPF_W: "s32"}
ALU_STR = _ALU


def insn_str(ins: Insn, nxt: Insn | None = None, helper_name: str | None = None) -> str:
    """``print_bpf_insn`` text without the ``N: (op)`` prefix."""
    cls, op = ins.opcode & 7, ins.opcode & 0xF0
    x = ins.opcode & I.BPF_X
    if cls in (I.BPF_ALU, I.BPF_ALU64):
        p = "r" if cls == I.BPF_ALU64 else "w"
        d = f"{p}{ins.dst}"
        if op == I.BPF_NEG:
            return f"{d} = -{d}"
        if op == I.BPF_END:
            if cls == I.BPF_ALU64:
                return f"{d} = bswap{ins.imm} {d}"
            return f"{d} = {'be' if x else 'le'}{ins.imm} {d}"
        src = f"{p}{ins.src}" if x else str(ins.imm)
        opname = _ALU.get(op, "?")
        if op in (I.BPF_DIV, I.BPF_MOD) and ins.off == 1:
            opname = "s" + opname
        if op == I.BPF_MOV and x and ins.off:
            return f"{d} = (s{ins.off}){p}{ins.src}"
        return f"{d} {opname} {src}"
    if cls in (I.BPF_JMP, I.BPF_JMP32):
        if op == I.BPF_EXIT:
            return "exit"
        if op == I.BPF_CALL:
            if ins.src == I.BPF_PSEUDO_CALL:
                return f"call pc{ins.imm:+d}"
            return f"call {helper_name or 'unknown'}#{ins.imm}"
        if op == I.BPF_JA:
            return f"goto pc{(ins.off if cls == I.BPF_JMP else ins.imm):+d}"
        p = "r" if cls == I.BPF_JMP else "w"
        src = f"{p}{ins.src}" if x else f"{ins.imm & 0xFFFFFFFF if ins.imm < 0 and cls == I.BPF_JMP32 else ins.imm:#x}"
        return f"if {p}{ins.dst} {_JMP.get(op, '?')} {src} goto pc{ins.off:+d}"
    size = ins.opcode & 0x18
    mode = ins.opcode & 0xE0
    if cls == I.BPF_LDX:
        t = _SSZ.get(size, "?") if mode == I.BPF_MEMSX else _SZ[size]
        return f"r{ins.dst} = *({t} *)(r{ins.src} {ins.off:+d})"
    if cls == I.BPF_ST:
        return f"*({_SZ[size]} *)(r{ins.dst} {ins.off:+d}) = {ins.imm}"
    if cls == I.BPF_STX:
        if mode == I.BPF_ATOMIC:
            return f"lock *({_SZ[size]} *)(r{ins.dst} {ins.off:+d}) {_ALU.get(ins.imm & 0xF0, 'op')} r{ins.src}"
        return f"*({_SZ[size]} *)(r{ins.dst} {ins.off:+d}) = r{ins.src}"
    if ins.is_lddw:
        hi = nxt.imm if nxt is not None else 0
        v = ((hi & 0xFFFFFFFF) << 32) | (ins.imm & 0xFFFFFFFF)
        if ins.src == I.BPF_PSEUDO_MAP_FD:
            return f"r{ins.dst} = map[id:{ins.imm}]"
        return f"r{ins.dst} = {v:#x}"
    if mode == I.BPF_ABS:
        return f"r0 = *({_SZ[size]} *)skb[{ins.imm}]"
    if mode == I.BPF_IND:
        return f"r0 = *({_SZ[size]} *)skb[r{ins.src} + {ins.imm}]"
    return f"(bad {ins.opcode:02x})"


class VLog:
    """The log buffer (``struct bpf_verifier_log``)."""

    def __init__(self, level: int) -> None:
        self.level = level
        self.parts: list[str] = []
        #: the current instruction's line, written with its state suffix once the insn is done
        #: (or alone, before an error message about it)
        self.pending: str | None = None

    def __call__(self, text: str) -> None:
        if self.level:
            if self.pending is not None:
                self.parts.append(self.pending + "\n")
                self.pending = None
            self.parts.append(text)

    def pos(self) -> int:
        return len(self.parts)

    def reset(self, pos: int) -> None:
        del self.parts[pos:]

    def text(self) -> str:
        return "".join(self.parts)
