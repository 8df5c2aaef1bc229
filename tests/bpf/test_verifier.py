"""Verifier tests that need no kernel: pinned kernel verdicts, abstract-domain soundness
properties (tnum, ALU bounds, branch refinement), log format, unprivileged rules, limits on
hostile input, and the ``progs.Program`` hook."""
from __future__ import annotations

import errno as E
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.bpf import context as C
from netstack.bpf import insn as I
from netstack.bpf import maps as M
from netstack.bpf import progs as P
from netstack.bpf.asm import assemble
from netstack.bpf.errors import BpfVerifyError, NotSupported
from netstack.bpf.verifier import MapInfo, verify_program
from netstack.bpf.verifier import bounds as B
from netstack.bpf.verifier import reg_state as RS
from netstack.bpf.verifier.tnum import Tnum

from .test_verifier_cases import CASES, KERNEL_6_18, kernel_message

U64 = (1 << 64) - 1
XDP, TC = C.BPF_PROG_TYPE_XDP, C.BPF_PROG_TYPE_SCHED_CLS
FAKE_FDS = {"hash": 100, "array": 101, "array1": 102, "ringbuf": 103, "progs": 104}
FAKE_MAPS = {100: MapInfo(100, M.BPF_MAP_TYPE_HASH, 4, 8, 16, "hash"),
             101: MapInfo(101, M.BPF_MAP_TYPE_ARRAY, 4, 16, 4, "array"),
             102: MapInfo(102, M.BPF_MAP_TYPE_ARRAY, 4, 8, 1, "array1"),
             103: MapInfo(103, M.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096, "ringbuf"),
             104: MapInfo(104, M.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 4, "progs")}


def v(src: str, prog_type: int = XDP, **kw):  # type: ignore[no-untyped-def]
    return verify_program(assemble(src), prog_type, maps=FAKE_MAPS, **kw)


# --- the kernel's verdicts, pinned --------------------------------------------------------------

@pytest.mark.parametrize("name,prog_type,src", CASES, ids=[c[0] for c in CASES])
def test_pinned_kernel_verdict(name: str, prog_type: int, src: str) -> None:
    accepted, errno_, line = KERNEL_6_18[name]
    res = v(src.format(**FAKE_FDS), prog_type, log_level=1)
    assert res.accepted == accepted, res.log
    if not accepted:
        assert res.errno == errno_
        assert kernel_message(line) in res.log


# --- abstract domain soundness ------------------------------------------------------------------

def _tnum_and_member(draw):  # type: ignore[no-untyped-def]
    x = draw(st.integers(0, U64))
    mask = draw(st.one_of(st.integers(0, U64), st.integers(0, 0xFF), st.just(0)))
    flip = draw(st.integers(0, U64)) & mask
    return Tnum(x & ~mask & U64, mask), (x & ~mask | flip) & U64


tnums = st.composite(_tnum_and_member)()


@settings(max_examples=300, deadline=None)
@given(tnums, tnums, st.integers(0, 63))
def test_tnum_ops_are_sound(a, b, sh) -> None:  # type: ignore[no-untyped-def]
    (ta, x), (tb, y) = a, b
    assert ta.contains(Tnum.const(x)) and tb.contains(Tnum.const(y))
    for t, val in ((ta.add(tb), x + y), (ta.sub(tb), x - y), (ta.and_(tb), x & y), (ta.or_(tb), x | y),
                   (ta.xor(tb), x ^ y), (ta.mul(tb), x * y), (ta.lshift(sh), x << sh), (ta.rshift(sh), x >> sh),
                   (ta.arshift(sh, 64), (x - (1 << 64) if x >> 63 else x) >> sh), (ta.neg(), -x)):
        assert t.contains(Tnum.const(val & U64))
    r = Tnum.range(min(x, y), max(x, y))
    assert r.contains(Tnum.const(x)) and r.contains(Tnum.const(y))


def _reg_around(vals: list[int]) -> RS.Reg:
    """An abstract scalar covering the concrete ``vals`` (u64), built as the verifier would."""
    r = RS.mark_unknown(RS.Reg())
    r.umin, r.umax = min(vals), max(vals)
    t = Tnum.const(vals[0])
    for x in vals[1:]:
        t = Tnum(t.value & x, (t.mask | (t.value ^ x)) & U64)
        t = Tnum(t.value & ~t.mask & U64, t.mask)
    r.var_off = t
    B.sync(r)
    return r


def _contains(r: RS.Reg, x: int) -> bool:
    x &= U64
    lo = x & 0xFFFFFFFF
    return (r.umin <= x <= r.umax and r.smin <= B.s64(x) <= r.smax and r.u32min <= lo <= r.u32max
            and r.s32min <= B.s32(lo) <= r.s32max and r.var_off.contains(Tnum.const(x)))


def _concrete(op: int, x: int, y: int, alu32: bool) -> int:
    bits = 32 if alu32 else 64
    m = (1 << bits) - 1
    x, y = x & m, y & m
    sx = x - (1 << bits) if x >> (bits - 1) else x
    fns = {I.BPF_ADD: lambda: x + y, I.BPF_SUB: lambda: x - y, I.BPF_MUL: lambda: x * y,
           I.BPF_AND: lambda: x & y, I.BPF_OR: lambda: x | y, I.BPF_XOR: lambda: x ^ y,
           I.BPF_LSH: lambda: x << y, I.BPF_RSH: lambda: x >> y, I.BPF_ARSH: lambda: sx >> y,
           I.BPF_DIV: lambda: x // y if y else 0, I.BPF_MOD: lambda: x % y if y else x}
    return fns[op]() & m


vals = st.lists(st.one_of(st.integers(0, 300), st.integers(0, U64), st.integers(U64 - 300, U64),
                          st.integers(0xFFFFFF00, 0x1000000FF)), min_size=1, max_size=4)
ops = st.sampled_from([I.BPF_ADD, I.BPF_SUB, I.BPF_MUL, I.BPF_AND, I.BPF_OR, I.BPF_XOR, I.BPF_LSH, I.BPF_RSH,
                       I.BPF_ARSH, I.BPF_DIV, I.BPF_MOD])


@settings(max_examples=400, deadline=None)
@given(vals, vals, ops, st.booleans(), st.integers(0, 63))
def test_scalar_alu_bounds_are_sound(xs, ys, op, alu32, sh) -> None:  # type: ignore[no-untyped-def]
    if op in (I.BPF_LSH, I.BPF_RSH, I.BPF_ARSH):
        ys = [sh % (32 if alu32 else 64)]
    for x in xs:
        for y in ys:
            r, s = _reg_around(xs), _reg_around(ys)
            B.scalar_alu(r, s, op, alu32)
            assert _contains(r, _concrete(op, x, y, alu32)), (op, alu32, x, y, RS.reg_str(r))


jops = st.sampled_from([I.BPF_JEQ, I.BPF_JNE, I.BPF_JGT, I.BPF_JGE, I.BPF_JLT, I.BPF_JLE, I.BPF_JSGT,
                        I.BPF_JSGE, I.BPF_JSLT, I.BPF_JSLE, I.BPF_JSET])


def _holds(op: int, x: int, y: int, j32: bool) -> bool:
    m = 0xFFFFFFFF if j32 else U64
    x, y = x & m, y & m
    sx, sy = (B.s32(x), B.s32(y)) if j32 else (B.s64(x), B.s64(y))
    return {I.BPF_JEQ: x == y, I.BPF_JNE: x != y, I.BPF_JGT: x > y, I.BPF_JGE: x >= y, I.BPF_JLT: x < y,
            I.BPF_JLE: x <= y, I.BPF_JSGT: sx > sy, I.BPF_JSGE: sx >= sy, I.BPF_JSLT: sx < sy,
            I.BPF_JSLE: sx <= sy, I.BPF_JSET: bool(x & y)}[op]


@settings(max_examples=400, deadline=None)
@given(vals, vals, jops, st.booleans())
def test_branch_refinement_is_sound(xs, ys, op, j32) -> None:  # type: ignore[no-untyped-def]
    for x in xs:
        for y in ys:
            r1, r2 = _reg_around(xs), _reg_around(ys)
            pred = B.scalar_branch_taken(r1, r2, op, j32)
            truth = _holds(op, x, y, j32)
            assert pred in (-1, int(truth)), (op, j32, x, y)
            taken_op = op if truth else B.REV[op]
            B.refine(r1, r2, taken_op, j32)
            B.sync(r1)
            B.sync(r2)
            assert _contains(r1, x) and _contains(r2, y), (op, truth, x, y, RS.reg_str(r1), RS.reg_str(r2))


# --- log format ---------------------------------------------------------------------------------

def test_log_level_2_state_dumps() -> None:
    res = v("ldxw %r2, [%r1]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 14\njgt %r4, %r3, out\n"
            "ldxb %r0, [%r2+13]\nout:\nmov %r0, 2\nexit", log_level=2)
    assert res.accepted
    lines = res.log.splitlines()
    assert lines[0] == "0: R1=ctx() R10=fp0"
    assert lines[1].startswith("0: (61) r2 = *(u32 *)(r1 +0)") and lines[1].endswith("; R2=pkt(r=0)")
    assert "4: (2d) if r4 > r3 goto pc+1          ; R3=pkt_end() R4=pkt(off=14,r=14)" in lines
    assert any(ln.startswith("5: (71) r0 = *(u8 *)(r2 +13)") and "R0=scalar(smin=smin32=0,smax=umax=smax32=umax32=255"
               ",var_off=(0x0; 0xff))" in ln for ln in lines)
    assert any(ln.startswith("from 4 to 6: ") for ln in lines)
    assert lines[-1].startswith("processed ") and "(limit 1000000) max_states_per_insn" in lines[-1]


def test_log_level_1_keeps_only_the_failing_path_and_level_0_is_silent() -> None:
    src = ("ldxw %r2, [%r1]\nldxw %r3, [%r1+4]\nmov %r4, %r2\nadd %r4, 4\njgt %r4, %r3, +2\nldxw %r0, [%r2]\n"
           "exit\nldxw %r0, [%r2]\nexit")
    res = v(src, log_level=1)
    assert not res.accepted and "R2 offset is outside of the packet" in res.log
    assert "5: (61) r0 = *(u32 *)(r2 +0)" not in res.log  # the accepted fall-through path was dropped
    assert v(src, log_level=0).log == ""
    assert v("mov %r0, 0\nexit", log_level=1).log.startswith("processed 2 insns (limit 1000000)")


# --- unprivileged rules ---------------------------------------------------------------------------

@pytest.mark.parametrize("src,msg,errno_", [
    ("mov %r0, 0\nl:\nadd %r0, 1\njlt %r0, 4, l\nexit", "back-edge from insn 2 to 1", E.EINVAL),
    ("mov %r0, %r1\nexit", "R0 leaks addr as return value", E.EACCES),
    ("mov %r0, 0\njeq %r1, %r10, +0\nexit", "R10 pointer comparison prohibited", E.EACCES),
    ("mov %r0, 0\njeq %r1, 0, +0\nexit", "R1 pointer comparison prohibited", E.EACCES),
    ("ldxdw %r0, [%r10-8]\nexit", "invalid read from stack off -8+0 size 8", E.EACCES),
    ("mov32 %r0, %r1\nexit", "R1 partial copy of pointer", E.EACCES),
    ("mov %r0, %r10\nsub %r0, %r1\nexit", "R0 pointer -= pointer prohibited", E.EACCES),
    ("call local f\nexit\nf:\nmov %r0, 0\nexit", "allowed for CAP_BPF and CAP_SYS_ADMIN", E.EPERM),
    ("stw [%r10-4], 0\nmov %r2, %r10\nadd %r2, -4\nlddw %r1, {hash}, 1\ncall 1\njeq %r0, 0, +1\n"
     "stxdw [%r0], %r10\nmov %r0, 0\nexit", "R10 leaks addr into map", E.EACCES),
    ("mov %r1, %r10\nmov %r2, 0\ncall 23\nmov %r0, 0\nexit", "R1 leaks addr into helper function", E.EACCES),
])
def test_unprivileged_rules(src: str, msg: str, errno_: int) -> None:
    res = v(src.format(**FAKE_FDS), privileged=False, log_level=1)
    assert not res.accepted and res.errno == errno_ and msg in res.log, res.log


def test_same_programs_pass_when_privileged() -> None:
    for src in ("mov %r0, 0\nl:\nadd %r0, 1\njlt %r0, 4, l\nexit", "mov %r0, %r1\nexit",
                "ldxdw %r0, [%r10-8]\nexit", "mov32 %r0, %r1\nexit"):
        assert v(src).accepted


def test_unprivileged_insn_limit() -> None:
    insns = assemble("mov %r0, 0\n" * 4096 + "exit")
    res = verify_program(insns, XDP, privileged=False)
    assert not res.accepted and res.errno == E.E2BIG and res.log == ""
    assert verify_program(insns, XDP, privileged=True).accepted


# --- termination on hostile input ---------------------------------------------------------------

def test_infinite_loop_detected() -> None:
    res = v("mov %r0, 0\nl:\njeq %r0, 0, l\nexit", log_level=1)
    assert res.errno == E.EINVAL and "infinite loop detected at insn 1" in res.log
    # an unknown scalar stays unknown after += 1: the state repeats exactly (the kernel says the same)
    res = v("call 7\nl:\nadd %r0, 1\njne %r0, 0, l\nexit", log_level=1)
    assert res.errno == E.EINVAL and "infinite loop detected at insn 1" in res.log


def test_unbounded_loop_hits_the_complexity_limit() -> None:
    t0 = time.monotonic()
    res = v("mov %r0, 0\nl:\nadd %r0, 1\njne %r0, 0, l\nexit", complexity_limit=20_000, log_level=1)
    assert not res.accepted and res.errno == E.E2BIG
    assert "BPF program is too large. Processed 20001 insn" in res.log
    assert time.monotonic() - t0 < 10


def test_many_branches_terminate() -> None:
    """2^200 paths if nothing were pruned: the limit (or pruning) ends it quickly."""
    body = "".join(f"call 7\nmov %r{6 + i % 3}, %r0\njgt %r0, {i}, +1\nmov %r9, {i}\n" for i in range(200))
    t0 = time.monotonic()
    res = v("mov %r6, 0\nmov %r7, 0\nmov %r8, 0\nmov %r9, 0\n" + body + "mov %r0, 0\nexit",
            complexity_limit=50_000)
    assert res.accepted or res.errno == E.E2BIG
    assert time.monotonic() - t0 < 15


def test_long_straight_chain() -> None:
    src = "mov %r0, 0\n" + "add %r0, 1\n" * 20_000 + "and %r0, 1\nexit"
    res = v(src)
    assert res.accepted and res.insn_processed == 20_003


def test_deep_jump_sequence_limit() -> None:
    body = "".join(f"call 7\njgt %r0, {i}, +0\n" for i in range(50))
    res = v(body + "mov %r0, 0\nexit", complexity_limit=5_000)
    assert res.accepted or res.errno == E.E2BIG


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 10), st.integers(0, 10), st.integers(-8, 8),
                          st.integers(-64, 64)), min_size=1, max_size=24))
def test_random_bytecode_never_crashes(slots) -> None:  # type: ignore[no-untyped-def]
    insns = [I.Insn(op, d, s, off, imm) for op, d, s, off, imm in slots] + [I.Insn(0x95)]
    try:
        res = verify_program(insns, XDP, complexity_limit=5_000)
    except NotSupported:
        return
    assert isinstance(res.accepted, bool) and (res.accepted or res.errno)


# --- features outside the model ------------------------------------------------------------------

def test_unmodelled_helper_is_not_supported() -> None:
    with pytest.raises(NotSupported, match="helper #14"):
        v("call 14\nmov %r0, 0\nexit")


def test_map_pointer_field_read_is_not_supported() -> None:
    with pytest.raises(NotSupported, match="struct bpf_map"):
        v("lddw %r1, 100, 1\nldxw %r0, [%r1]\nexit")


def test_unknown_map_fd() -> None:
    res = v("lddw %r1, 999, 1\nmov %r0, 0\nexit", log_level=1)
    assert res.errno == E.EBADF and "fd 999 is not pointing to valid bpf_map" in res.log


# --- progs.Program hook ---------------------------------------------------------------------------

def test_program_runs_the_verifier_when_asked() -> None:
    bad = assemble("ldxw %r2, [%r1]\nldxb %r0, [%r2]\nmov %r0, 2\nexit")
    with pytest.raises(BpfVerifyError, match="offset is outside of the packet") as exc:
        P.Program(XDP, bad, verifier=True)
    assert exc.value.errno == E.EACCES and "invalid access to packet" in exc.value.log
    prog = P.Program(XDP, bad, verifier=False)  # unverified: the memory-safe interpreter still runs it
    assert prog.run_xdp(bytes(60))[0] == 2


def test_program_verifies_by_default() -> None:
    """bpf(BPF_PROG_LOAD) always runs the verifier, so Program(...) without a flag does too."""
    assert P.VERIFY_ON_LOAD is True
    bad = assemble("ldxw %r2, [%r1]\nldxb %r0, [%r2]\nmov %r0, 2\nexit")
    with pytest.raises(BpfVerifyError) as exc:
        P.Program(XDP, bad)
    assert exc.value.errno == E.EACCES
    assert exc.value.log.splitlines()[-2] == "R2 offset is outside of the packet"
    # Path-sensitive R%d !read_ok: R2 is written on every feasible path, which the all-paths
    # structural analysis of check.py (used with verifier=False) cannot see.
    maybe = assemble("mov %r3, 1\njne %r3, 1, +1\nmov %r2, 0\nmov %r0, %r2\nexit")
    assert P.Program(XDP, maybe).run_xdp(bytes(60))[0] == 0
    with pytest.raises(BpfVerifyError, match="R2 !read_ok"):
        P.Program(XDP, maybe, verifier=False)


def test_program_with_real_maps_verifies() -> None:
    m = P.new_map(M.BPF_MAP_TYPE_ARRAY, 4, 8, 1)
    src = (f"stw [%r10-4], 0\nmov %r2, %r10\nadd %r2, -4\nlddw %r1, {m.fd}, 1\ncall 1\njeq %r0, 0, +2\n"
           "mov %r1, 5\nstxdw [%r0], %r1\nmov %r0, 2\nexit")
    prog = P.Program(XDP, assemble(src), verifier=True)
    assert prog.run_xdp(bytes(60))[0] == 2
    assert m.lookup(bytes(4)) == (5).to_bytes(8, "little")


# --- clang-built objects ----------------------------------------------------------------------------

@pytest.mark.parametrize("obj", ["btf_maps", "global_data", "legacy_maps", "ringbuf", "socket_filter", "subprog",
                                 "tc_rewrite", "xdp_count"])
def test_clang_objects_pass_the_verifier(obj: str) -> None:
    from pathlib import Path

    from netstack.bpf import loader as L
    loaded = L.load_object(Path(__file__).parent / "progs" / f"{obj}.o")
    assert loaded.programs


def test_clang_object_rejected_like_the_kernel() -> None:
    from pathlib import Path

    from netstack.bpf import loader as L
    with pytest.raises(BpfVerifyError) as exc:
        L.load_object(Path(__file__).parent / "progs" / "reject_bounds.o")
    # the kernel (6.18) log ends with these two lines for this object
    assert "invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)\nR1 offset is outside of the packet\n" \
        in exc.value.log
    assert exc.value.errno == E.EACCES and exc.value.prog_name == "xdp_no_bounds"
