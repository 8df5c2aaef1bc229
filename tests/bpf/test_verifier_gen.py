"""Random verifier-relevant XDP programs for the kernel-differential property test.

A program keeps ``r6 = data``, ``r9 = data_end`` and works on scalars in
r7/r8 (r0 too, before the final ``r0 = 2``): random ALU64/ALU32 operations
with immediates or registers, bounds checks (conditional forward jumps that
refine or skip), helper results (``bpf_get_prandom_u32``) and packet accesses
through a pointer built from ``r6`` plus a constant or a scalar, checked or not
against ``r9``; stack stores, spills and fills; map value accesses (``{array}``: an array map
with 16-byte values) with or without the null check.  Every generated program passes the structural checks, so the
decision is about ranges, packet proofs and pointer rules.
"""
from __future__ import annotations

from hypothesis import strategies as st

ALU = ["add", "sub", "mul", "and", "or", "xor", "lsh", "rsh", "arsh", "mov"]
JMP = ["jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jsle", "jset"]
SIZES = {"b": 1, "h": 2, "w": 4, "dw": 8}
SC = ["%r7", "%r8"]


@st.composite
def _alu(draw: st.DrawFn) -> list[str]:
    if draw(st.integers(0, 5)) == 0:  # unary and sign-extending forms
        dst = draw(st.sampled_from(SC))
        form = draw(st.sampled_from(["neg", "neg32", "be16", "be32", "be64", "le16", "le32", "movsx"]))
        if form == "movsx":
            mn = draw(st.sampled_from(["movsx864", "movsx1664", "movsx3264", "movsx832", "movsx1632"]))
            return [f"{mn} {dst}, {draw(st.sampled_from(SC))}"]
        return [f"{form} {dst}"]
    op = draw(st.sampled_from(ALU))
    w = draw(st.sampled_from(["", "32"]))
    dst = draw(st.sampled_from(SC))
    if op in ("lsh", "rsh", "arsh"):
        return [f"{op}{w} {dst}, {draw(st.integers(0, 31 if w else 63))}"]
    if draw(st.booleans()):
        return [f"{op}{w} {dst}, {draw(st.sampled_from(SC))}"]
    imm = draw(st.one_of(st.integers(-4, 70), st.sampled_from([0xff, 0xffff, -1, 0x7fffffff, -0x80000000, 1 << 20])))
    return [f"{op}{w} {dst}, {imm}"]


@st.composite
def _rand(draw: st.DrawFn) -> list[str]:
    dst = draw(st.sampled_from(SC))
    return ["call 7", f"mov {dst}, %r0"]


@st.composite
def _cond(draw: st.DrawFn) -> list[str]:
    """``if (scalar op K) skip the next block``: refines both branches."""
    op = draw(st.sampled_from(JMP))
    w = draw(st.sampled_from(["", "32"]))
    reg = draw(st.sampled_from(SC))
    rhs = draw(st.one_of(st.integers(-2, 64).map(str), st.sampled_from(SC)))
    inner = draw(st.lists(st.one_of(_alu(), _pkt()), min_size=1, max_size=2))
    body = [i for b in inner for i in b]
    return [f"{op}{w} {reg}, {rhs}, +{len(body)}"] + body


@st.composite
def _pkt(draw: st.DrawFn) -> list[str]:
    """A packet load through r4 = data + (const | scalar), with or without a data_end check."""
    size = draw(st.sampled_from(list(SIZES)))
    base = ["mov %r4, %r6"]
    if draw(st.booleans()):
        base.append(f"add %r4, {draw(st.integers(-2, 40))}")
    else:
        base.append(f"add %r4, {draw(st.sampled_from(SC))}")
    off = draw(st.integers(-1, 12))
    check = draw(st.sampled_from(["none", "exact", "short", "jlt"]))
    n = SIZES[size]
    if check == "none":
        return base + [f"ldx{size} %r5, [%r4{off:+d}]"]
    extent = off + n if check != "short" else off + n - 1
    if check == "jlt":
        return base + ["mov %r5, %r4", f"add %r5, {extent}", "jlt %r5, %r9, +1", "ja +1",
                       f"ldx{size} %r5, [%r4{off:+d}]"]
    return base + ["mov %r5, %r4", f"add %r5, {extent}", "jgt %r5, %r9, +1", f"ldx{size} %r5, [%r4{off:+d}]"]


@st.composite
def _stack(draw: st.DrawFn) -> list[str]:
    """Stack stores, spills and fills at random (possibly bad or misaligned) offsets."""
    size = draw(st.sampled_from(list(SIZES)))
    off = draw(st.one_of(st.sampled_from([-8, -16, -4, -2, -1, -512, -520, 0]), st.integers(-40, 4)))
    kind = draw(st.sampled_from(["st", "stx", "ldx", "spill_fill", "var"]))
    reg = draw(st.sampled_from(SC))
    if kind == "st":
        return [f"st{size} [%r10{off:+d}], {draw(st.integers(-3, 300))}"]
    if kind == "stx":
        return [f"stx{size} [%r10{off:+d}], {reg}"]
    if kind == "ldx":
        return [f"ldx{size} {reg}, [%r10{off:+d}]"]
    if kind == "spill_fill":
        o = draw(st.sampled_from([-8, -16, -24]))
        return [f"stx{size} [%r10{o:+d}], {reg}", f"ldx{size} {draw(st.sampled_from(SC))}, [%r10{o:+d}]"]
    return ["mov %r4, %r10", f"add %r4, {draw(st.sampled_from([-64, -32, -16]))}", f"add %r4, {reg}",
            f"st{size} [%r4{off if off < 0 else 0:+d}], 0"]


@st.composite
def _mapval(draw: st.DrawFn) -> list[str]:
    """Look up key 0 of ``{array}`` (16-byte values) and access the value, null-checked or not."""
    size = draw(st.sampled_from(list(SIZES)))
    off = draw(st.integers(-2, 17))
    out = ["stw [%r10-4], 0", "mov %r2, %r10", "add %r2, -4", "lddw %r1, {array}, 1", "call 1"]
    access = []
    if draw(st.booleans()):
        access += [f"add %r0, {draw(st.sampled_from(SC))}"]
    access.append(f"ldx{size} %r4, [%r0{off:+d}]")
    if draw(st.integers(0, 4)):
        out.append(f"jeq %r0, 0, +{len(access)}")
    return out + access


@st.composite
def programs(draw: st.DrawFn) -> str:
    head = ["ldxw %r6, [%r1]", "ldxw %r9, [%r1+4]",
            f"mov %r7, {draw(st.integers(0, 20))}", f"mov %r8, {draw(st.integers(-5, 300))}"]
    blocks = draw(st.lists(st.one_of(_alu(), _alu(), _cond(), _pkt(), _rand(), _stack(), _mapval()),
                           min_size=1, max_size=8))
    body = [i for b in blocks for i in b]
    return "\n".join(head + body + ["mov %r0, 2", "exit"])
