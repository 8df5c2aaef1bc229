"""Disassembler: bpf_conformance syntax (round-trips through :mod:`.asm`) and
llvm-objdump's C-like syntax (``r0 = *(u32 *)(r1 + 4)``, ``if r1 > 0x2 goto +3``).

``disassemble(insns)`` returns one line per instruction (``lddw`` is one line
for its two slots).  In the conformance syntax the output re-assembles to the
same bytes for every instruction :func:`netstack.bpf.check.verify` accepts
field-wise; jump targets are written relative (``+3``/``-2``).  The llvm
syntax follows llvm/lib/Target/BPF/BPFInstrInfo.td's asm strings; with
``labels=True`` branch targets get ``<LBBn>``-style annotations.
"""
from __future__ import annotations

from typing import Sequence

from . import insn as I
from .errors import BpfDecodeError, NotSupported
from .insn import Insn
from .opnames import (ALU_C, ALU_NAMES, ATOMIC_NAMES, JMP_C, JMP_NAMES, SIGNED_ALU_NAMES, SIZE_C,
                      SIZE_C_SIGNED, SIZE_SUFFIX)


def _imm(v: int) -> str:
    return str(v) if 0 <= v <= 9 else f"0x{v & 0xFFFFFFFF:x}"


def _rel(v: int) -> str:
    return f"+{v}" if v >= 0 else str(v)


def _memop(reg: int, off: int) -> str:
    return f"[%r{reg}]" if off == 0 else f"[%r{reg}{_rel(off)}]"


def _conformance(ins: Insn, nxt: Insn | None) -> str:
    cls, op, code = ins.opcode & 0x07, ins.opcode & 0xF0, ins.opcode
    d, s = f"%r{ins.dst}", f"%r{ins.src}"
    if cls in (I.BPF_ALU, I.BPF_ALU64):
        sfx = "" if cls == I.BPF_ALU64 else "32"
        if op == I.BPF_NEG:
            return f"neg{sfx} {d}"
        if op == I.BPF_END:
            if cls == I.BPF_ALU64:
                return f"swap{ins.imm} {d}"
            return f"{'be' if code & I.BPF_X else 'le'}{ins.imm} {d}"
        if op == I.BPF_MOV and ins.off:
            return f"movsx{ins.off}{'64' if cls == I.BPF_ALU64 else '32'} {d}, {s}"
        name = SIGNED_ALU_NAMES[op] if ins.off == 1 and op in SIGNED_ALU_NAMES else ALU_NAMES.get(op)
        if name is None:
            raise NotSupported(f"ALU opcode 0x{code:02x}")
        return f"{name}{sfx} {d}, {s if code & I.BPF_X else _imm(ins.imm)}"
    if cls in (I.BPF_JMP, I.BPF_JMP32):
        if code == I.BPF_JMP | I.BPF_JA:
            return f"ja {_rel(ins.off)}"
        if code == I.BPF_JMP32 | I.BPF_JA:
            return f"ja32 {_rel(ins.imm)}"
        if code == I.BPF_JMP | I.BPF_EXIT:
            return "exit"
        if code == I.BPF_JMP | I.BPF_CALL:
            if ins.src == I.BPF_PSEUDO_CALL:
                return f"call local {_rel(ins.imm)}"
            if ins.src == I.BPF_PSEUDO_KFUNC_CALL:
                return f"call runtime {_imm(ins.imm)}"
            return f"call {_imm(ins.imm)}"
        if code == I.BPF_JMP | I.BPF_CALL | I.BPF_X:
            return f"call {d}"
        name = JMP_NAMES.get(op)
        if name is None:
            raise NotSupported(f"jump opcode 0x{code:02x}")
        sfx = "32" if cls == I.BPF_JMP32 else ""
        return f"{name}{sfx} {d}, {s if code & I.BPF_X else _imm(ins.imm)}, {_rel(ins.off)}"
    size, mode = code & 0x18, code & 0xE0
    sz = SIZE_SUFFIX[size]
    if cls == I.BPF_LDX:
        return f"ldx{'s' if mode == I.BPF_MEMSX else ''}{sz} {d}, {_memop(ins.src, ins.off)}"
    if cls == I.BPF_ST:
        return f"st{sz} {_memop(ins.dst, ins.off)}, {_imm(ins.imm)}"
    if cls == I.BPF_STX and mode == I.BPF_MEM:
        return f"stx{sz} {_memop(ins.dst, ins.off)}, {s}"
    if cls == I.BPF_STX and mode == I.BPF_ATOMIC:
        if ins.imm == I.BPF_LOAD_ACQ:
            return f"ldacq{sz} {d}, {_memop(ins.src, ins.off)}"
        if ins.imm == I.BPF_STORE_REL:
            return f"strel{sz} {_memop(ins.dst, ins.off)}, {s}"
        w = "32" if size == I.BPF_W else ""
        if ins.imm == I.BPF_XCHG:
            return f"lock xchg{w} {_memop(ins.dst, ins.off)}, {s}"
        if ins.imm == I.BPF_CMPXCHG:
            return f"lock cmpxchg{w} {_memop(ins.dst, ins.off)}, {s}"
        name = ATOMIC_NAMES.get(ins.imm & ~I.BPF_FETCH)
        if name is None:
            raise NotSupported(f"atomic op 0x{ins.imm:x}")
        fetch = "fetch " if ins.imm & I.BPF_FETCH else ""
        return f"lock {fetch}{name}{w} {_memop(ins.dst, ins.off)}, {s}"
    if cls == I.BPF_LD and ins.is_lddw:
        if nxt is None:
            raise BpfDecodeError("lddw without its second slot")
        value = f"0x{I.lddw_value(ins, nxt):x}"
        return f"lddw {d}, {value}" + (f", {ins.src}" if ins.src else "")
    if cls == I.BPF_LD and mode == I.BPF_ABS:
        return f"ldabs{sz} {_imm(ins.imm)}"
    if cls == I.BPF_LD and mode == I.BPF_IND:
        return f"ldind{sz} {s}, {_imm(ins.imm)}"
    raise NotSupported(f"opcode 0x{code:02x}")


def _hex(v: int) -> str:
    return f"0x{v:x}" if v >= 0 else f"-0x{-v:x}"


def _addr(reg: int, off: int) -> str:
    return f"r{reg} + {off}" if off >= 0 else f"r{reg} - {-off}"


def _llvm(ins: Insn, nxt: Insn | None, target: str) -> str:
    cls, op, code = ins.opcode & 0x07, ins.opcode & 0xF0, ins.opcode
    wide = cls in (I.BPF_ALU64, I.BPF_JMP)
    p = "r" if wide else "w"
    d, s = f"{p}{ins.dst}", f"{p}{ins.src}"
    if cls in (I.BPF_ALU, I.BPF_ALU64):
        if op == I.BPF_NEG:
            return f"{d} = -{d}"
        if op == I.BPF_END:
            if cls == I.BPF_ALU64:
                return f"r{ins.dst} = bswap{ins.imm} r{ins.dst}"
            return f"r{ins.dst} = {'be' if code & I.BPF_X else 'le'}{ins.imm} r{ins.dst}"
        if op == I.BPF_MOV and ins.off:
            return f"{d} = (s{ins.off}){s}"
        sym = ALU_C.get(op)
        if sym is None:
            raise NotSupported(f"ALU opcode 0x{code:02x}")
        if ins.off == 1 and op in (I.BPF_DIV, I.BPF_MOD):
            sym = "s" + sym
        return f"{d} {sym} {s if code & I.BPF_X else ins.imm}"
    if cls in (I.BPF_JMP, I.BPF_JMP32):
        if op == I.BPF_JA:
            return f"goto {target}" if cls == I.BPF_JMP else f"gotol {target}"
        if code == I.BPF_JMP | I.BPF_EXIT:
            return "exit"
        if code == I.BPF_JMP | I.BPF_CALL:
            if ins.src == I.BPF_PSEUDO_CALL:
                return f"call {target}"
            return f"call {ins.imm}"
        if code == I.BPF_JMP | I.BPF_CALL | I.BPF_X:
            return f"callx r{ins.dst}"
        sym = JMP_C.get(op)
        if sym is None:
            raise NotSupported(f"jump opcode 0x{code:02x}")
        rhs = s if code & I.BPF_X else _hex(ins.imm)
        return f"if {d} {sym} {rhs} goto {target}"
    size, mode = code & 0x18, code & 0xE0
    if cls == I.BPF_LDX:
        ty = SIZE_C_SIGNED[size] if mode == I.BPF_MEMSX else SIZE_C[size]
        dst = f"r{ins.dst}" if size == I.BPF_DW or mode == I.BPF_MEMSX else f"w{ins.dst}"
        return f"{dst} = *({ty} *)({_addr(ins.src, ins.off)})"
    if cls == I.BPF_ST:
        return f"*({SIZE_C[size]} *)({_addr(ins.dst, ins.off)}) = {ins.imm}"
    src_name = f"r{ins.src}" if size == I.BPF_DW else f"w{ins.src}"
    if cls == I.BPF_STX and mode == I.BPF_MEM:
        return f"*({SIZE_C[size]} *)({_addr(ins.dst, ins.off)}) = {src_name}"
    if cls == I.BPF_STX and mode == I.BPF_ATOMIC:
        ref = f"*({SIZE_C[size]} *)({_addr(ins.dst, ins.off)})"
        if ins.imm == I.BPF_LOAD_ACQ:
            return f"{'r' if size == I.BPF_DW else 'w'}{ins.dst} = load_acquire(({SIZE_C[size]} *)" \
                   f"({_addr(ins.src, ins.off)}))"
        if ins.imm == I.BPF_STORE_REL:
            return f"store_release(({SIZE_C[size]} *)({_addr(ins.dst, ins.off)}), {src_name})"
        if ins.imm == I.BPF_XCHG:
            return f"{src_name} = xchg{'' if size == I.BPF_DW else '32_32'}({_addr(ins.dst, ins.off)}, {src_name})"
        if ins.imm == I.BPF_CMPXCHG:
            r0 = "r0" if size == I.BPF_DW else "w0"
            return f"{r0} = cmpxchg{'' if size == I.BPF_DW else '32_32'}({_addr(ins.dst, ins.off)}, {r0}, {src_name})"
        name = ATOMIC_NAMES.get(ins.imm & ~I.BPF_FETCH)
        if name is None:
            raise NotSupported(f"atomic op 0x{ins.imm:x}")
        if ins.imm & I.BPF_FETCH:
            fn = f"atomic_fetch_{name}" + ("" if size == I.BPF_DW else "32")
            return f"{src_name} = {fn}(({SIZE_C[size]} *)({_addr(ins.dst, ins.off)}), {src_name})"
        sym = {"add": "+=", "or": "|=", "and": "&=", "xor": "^="}[name]
        return f"lock {ref} {sym} {src_name}"
    if cls == I.BPF_LD and ins.is_lddw:
        if nxt is None:
            raise BpfDecodeError("lddw without its second slot")
        value = I.lddw_value(ins, nxt)
        if ins.src:
            return f"r{ins.dst} = pseudo({ins.src}) 0x{value:x} ll"
        return f"r{ins.dst} = 0x{value:x} ll"
    if cls == I.BPF_LD and mode in (I.BPF_ABS, I.BPF_IND):
        where = f"skb[{ins.imm}]" if mode == I.BPF_ABS else f"skb[r{ins.src} + {ins.imm}]"
        return f"r0 = *({SIZE_C[size]} *){where}"
    raise NotSupported(f"opcode 0x{code:02x}")


def _targets(insns: Sequence[Insn]) -> dict[int, int]:
    """pc -> absolute target of every jump and local call (for labels)."""
    out: dict[int, int] = {}
    for pc, ins in enumerate(insns):
        cls, op = ins.opcode & 0x07, ins.opcode & 0xF0
        if cls not in (I.BPF_JMP, I.BPF_JMP32) or op == I.BPF_EXIT:
            continue
        if op == I.BPF_CALL:
            if ins.src == I.BPF_PSEUDO_CALL and cls == I.BPF_JMP:
                out[pc] = pc + 1 + ins.imm
            continue
        out[pc] = pc + 1 + (ins.imm if ins.opcode == I.BPF_JMP32 | I.BPF_JA else ins.off)
    return out


def disassemble(insns: Sequence[Insn], syntax: str = "conformance", *, labels: bool = False) -> list[str]:
    """One text line per instruction.

    ``syntax`` is ``"conformance"`` (re-assemblable by :func:`netstack.bpf.asm.assemble`)
    or ``"llvm"`` (llvm-objdump style; with ``labels=True`` targets read ``+3 <LBB0_2>``).
    """
    if syntax not in ("conformance", "llvm"):
        raise NotSupported(f"disassembly syntax {syntax!r}")
    targets = _targets(insns)
    label_of = {t: f"LBB0_{k}" for k, t in enumerate(sorted(set(targets.values())))}
    lines: list[str] = []
    pc = 0
    while pc < len(insns):
        ins = insns[pc]
        nxt = insns[pc + 1] if pc + 1 < len(insns) else None
        if syntax == "conformance":
            lines.append(_conformance(ins, nxt))
        else:
            rel = targets.get(pc, pc + 1) - pc - 1
            tgt = f"{_rel(rel)}"
            if labels and pc in targets:
                tgt += f" <{label_of[targets[pc]]}>"
            lines.append(_llvm(ins, nxt, tgt))
        pc += 2 if ins.is_lddw else 1
    return lines


def disassemble_text(insns: Sequence[Insn], syntax: str = "conformance") -> str:
    return "\n".join(disassemble(insns, syntax)) + "\n"
