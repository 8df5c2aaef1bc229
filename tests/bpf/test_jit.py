"""The LLVM JIT against the interpreter: the bpf_conformance suite, the 85 test_run programs of the
kernel differential test, faults, and the XDP batch entry point."""
from __future__ import annotations

import ctypes
import json
import random
import struct
from pathlib import Path

import pytest

from netstack.bpf import conformance
from netstack.bpf import context as C
from netstack.bpf import maps as M
from netstack.bpf import progs as P
from netstack.bpf.asm import assemble
from netstack.bpf.check import verify
from netstack.bpf.errors import BpfError, BpfRuntimeError, NotSupported
from netstack.bpf.insn import from_hex
from netstack.bpf.interp import Vm
from netstack.bpf.jit import JitVm, XdpBatch, jit_program, run_batch
from netstack.bpf.jit.batch import MAX_FRAME, JitProgVm
from netstack.bpf.jit.programs import PARSER_COUNT, PARSER_UDP, udp_frame
from netstack.bpf.kernel import KProg, available

from . import test_kernel_differential as KD

_ROOT = Path(__file__).resolve().parents[2]
_CANDIDATES = [_ROOT.parent / "shared" / "bpf_conformance", Path("/work/shared/bpf_conformance")]
SUITE = next((p for p in _CANDIDATES if (p / "bytecode.json").is_file()), None)
KERNEL = available()
BYTECODE: dict[str, dict[str, object]] = json.loads((SUITE / "bytecode.json").read_text()) if SUITE else {}


# ------------------------------------------------------------------------------------------------
# bpf_conformance through the JIT
# ------------------------------------------------------------------------------------------------

@pytest.mark.skipif(SUITE is None, reason=f"bpf_conformance suite not found in {_CANDIDATES}")
def test_conformance_suite_is_complete() -> None:
    assert len(BYTECODE) == 313


@pytest.mark.skipif(SUITE is None, reason=f"bpf_conformance suite not found in {_CANDIDATES}")
@pytest.mark.parametrize("name", sorted(BYTECODE))
def test_conformance_on_jit(name: str) -> None:
    """The suite's own bytes, checked as its plugins do, give the expected R0 natively."""
    ref = BYTECODE[name]
    insns = from_hex(str(ref["bytecode"]))
    verify(insns, entry_regs=conformance.ENTRY_REGS, kernel_imm_rules=False)
    vm = JitVm(insns, conformance.HELPERS)
    assert vm.run_mem(bytes.fromhex(str(ref.get("mem", "")))) == ref["result"]


# ------------------------------------------------------------------------------------------------
# the kernel differential test's programs: JIT == interpreter (retval, data_out, ctx_out, maps)
# ------------------------------------------------------------------------------------------------

def _model(case: KD.Case, jit: bool) -> tuple[object, dict[str, object]]:
    mmaps = {name: P.new_map(*spec, ncpus=KD.NCPU, ifindex_ok=lambda i: i == 1) for name, spec in case.maps.items()}
    for name, key, value in case.setup:
        mmaps[name].update(key, value)
    prog = P.Program(case.prog_type, assemble(case.src.format(**{n: m.fd for n, m in mmaps.items()})))
    if jit:
        jit_program(prog)
        assert isinstance(prog.vm, JitProgVm)
    res = KD._errno(lambda: P.prog_test_run_full(prog, case.data, ctx=case.ctx))
    if res[0] == "ok":
        r = res[1]
        res = ("ok", (r.retval, r.data_out, r.ctx_out))
    dumps: dict[str, object] = {}
    for name, m in mmaps.items():
        if isinstance(m, M.RingBuf):
            dumps[name] = (m.consumer_pos, m.producer_pos, bytes(m.data))
        elif not isinstance(m, M.FdArray):
            dumps[name] = [(k, m.lookup(k)) for k in KD._dump(m)]
    return res, dumps


@pytest.mark.parametrize("case", KD.CASES, ids=lambda c: c.name)
def test_test_run_programs_match_interpreter(case: KD.Case) -> None:
    assert _model(case, True) == _model(case, False)


# ------------------------------------------------------------------------------------------------
# faults: the interpreter's errors, never a crash
# ------------------------------------------------------------------------------------------------

def _both(src: str, mem: bytes = b"", budget: int = 1000) -> tuple[object, object]:
    insns = assemble(src)
    out = []
    for cls in (Vm, JitVm):
        try:
            out.append(cls(insns, conformance.HELPERS, budget=budget).run_mem(mem))
        except BpfError as exc:
            out.append((type(exc).__name__, str(exc)))
    return out[0], out[1]


@pytest.mark.parametrize("src,kind", [
    ("mov %r0, 0\nldxdw %r0, [%r0+0]\nexit", "NULL"),
    ("ldxdw %r0, [%r1+4]\nexit", "past the end"),
    ("ldxb %r0, [%r10+0]\nexit", "past the stack"),
    ("ldxw %r0, [%r10-514]\nexit", "below the stack"),
    ("mov %r2, %r1\nadd %r2, -1\nldxb %r0, [%r2+0]\nexit", "offset wraps"),
    ("lddw %r1, 0x100000000\nstb [%r1+0], 1\nmov %r0, 0\nexit", "store to a stack by a forged pointer"),
    ("lddw %r1, 0x5500000000\nldxb %r0, [%r1+0]\nexit", "unmapped region"),
    ("mov %r0, 0\nlock add [%r0+0], %r0\nexit", "atomic on NULL"),
    ("mov %r0, 1\nlp:\nja lp", "budget"),
    ("mov %r0, 0\ncall local f\nexit\nf:\ncall local f\nexit", "call depth"),
    ("mov %r1, 0\ncall 5\nmov %r0, 7\nexit", "helper unwinds"),
    ("mov %r1, 9\ncall 77\nexit", "unknown helper"),
    ("mov %r1, 9\ncall 5\nmov %r0, %r1\nexit", "helper keeps R1"),
])
def test_faults_are_the_interpreters(src: str, kind: str) -> None:
    interp, jit = _both(src, bytes(range(8)))
    assert interp == jit, kind


def test_fault_message_names_the_pc() -> None:
    _, jit = _both("mov %r0, 0\nmov %r1, 0\nldxw %r0, [%r1+0]\nexit")
    assert jit == ("BpfRuntimeError", "pc 2: invalid read of 4 bytes at 0x0 (unmapped)")


def test_jit_refuses_what_the_interpreter_refuses() -> None:
    kfunc = assemble("call 1\nexit")
    kfunc[0] = kfunc[0]._replace(src=2)
    with pytest.raises(NotSupported, match="kfunc"):
        JitVm(kfunc)


def test_pointers_are_the_interpreters() -> None:
    """R10, memory pointers and their arithmetic have the interpreter's values (region << 32 | offset)."""
    fp, mem = (1 << 32) + 512, 9 << 32     # frame-0 stack is region 1, run_mem's buffer region 9
    assert _both("mov %r0, %r10\nexit") == (fp, fp)
    assert _both("mov %r0, %r10\nsub %r0, %r1\nexit") == ((fp - mem) % (1 << 64),) * 2
    assert _both("mov %r0, %r1\nadd %r0, 3\nexit", b"1234") == (mem + 3, mem + 3)


# ------------------------------------------------------------------------------------------------
# XDP: programs on packets, and the batch entry point
# ------------------------------------------------------------------------------------------------

def xdp(src: str) -> P.Program:
    """An XDP program loaded without the path-sensitive verifier: these tests feed the JIT programs
    the kernel would refuse (wild packet accesses) to check that it faults like the interpreter."""
    return P.Program(C.BPF_PROG_TYPE_XDP, assemble(src), verifier=False)


def _frames(seed: int, n: int) -> list[bytes]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        kind = rnd.randrange(6)
        if kind == 0:
            out.append(udp_frame(53, size=rnd.choice([42, 64, 128])))
        elif kind == 1:
            out.append(udp_frame(rnd.randrange(65536), size=64))
        elif kind == 2:
            out.append(udp_frame(53)[:rnd.randrange(14, 42)])   # truncated headers
        elif kind == 3:
            f = bytearray(udp_frame(53))
            f[14] = 0x40 | rnd.randrange(16)                    # odd IHL
            out.append(bytes(f))
        elif kind == 4:
            f = bytearray(udp_frame(53))
            f[23] = rnd.choice([6, 17, 1])
            out.append(bytes(f))
        else:
            out.append(bytes(rnd.randrange(256) for _ in range(rnd.randrange(14, 100))))
    return out


def test_xdp_parser_batch_equals_interpreter_frame_by_frame() -> None:
    frames = _frames(1, 300)
    interp = P.Program(C.BPF_PROG_TYPE_XDP, assemble(PARSER_UDP))
    expect = [interp.run_xdp(f)[0] for f in frames]
    assert {1, 2, 0} <= set(expect)
    prog = P.Program(C.BPF_PROG_TYPE_XDP, assemble(PARSER_UDP))
    assert run_batch(prog, frames) == expect
    # one contiguous buffer + offsets, reusing the batch object
    batch = XdpBatch(prog)
    offs, pos = [], 0
    for f in frames:
        offs.append(pos)
        pos += len(f)
    assert batch.run_buffer(b"".join(frames), offs, [len(f) for f in frames]) == expect
    assert batch.errors == []
    assert run_batch(prog, buffer=b"".join(frames), offsets=offs, lengths=[len(f) for f in frames]) == expect


@pytest.mark.skipif(KERNEL is not None, reason=f"bpf(2) unusable here: {KERNEL}")
def test_xdp_parser_batch_equals_kernel_test_run() -> None:
    """The kernel as the oracle: BPF_PROG_TEST_RUN of the same program on each frame."""
    frames = _frames(7, 60)
    with KProg(C.BPF_PROG_TYPE_XDP, assemble(PARSER_UDP)) as kp:
        kernel = [kp.test_run(f)[0] for f in frames]
    assert run_batch(P.Program(C.BPF_PROG_TYPE_XDP, assemble(PARSER_UDP)), frames) == kernel


def test_batch_with_map_lookup_counts_like_the_interpreter() -> None:
    frames = _frames(2, 200)
    counts = []
    for batch_mode in (False, True):
        m = P.new_map(M.BPF_MAP_TYPE_ARRAY, 4, 8, 256)
        prog = P.Program(C.BPF_PROG_TYPE_XDP, assemble(PARSER_COUNT.format(counters=m.fd)))
        if batch_mode:
            batch = XdpBatch(prog)
            assert batch.prog.vm.plan.native_maps, "array lookup should be inlined"
            assert batch.run(frames) == [2] * len(frames)
        else:
            assert [prog.run_xdp(f)[0] for f in frames] == [2] * len(frames)
        counts.append(bytes(m.storage))
    assert counts[0] == counts[1] and any(counts[0])


def test_batch_frames_do_not_see_earlier_frames() -> None:
    """A program that writes into its packet (even the headroom) and reads bytes past data_end:
    each frame still starts from a clean buffer, as run_xdp builds one per frame."""
    src = """ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r4, %r2
add %r4, -8
ldxdw %r0, [%r4+0]
mov %r5, %r3
ldxdw %r6, [%r5+0]
add %r0, %r6
stdw [%r4+0], 0x55
stdw [%r5+0], 0x66
exit"""
    frames = [bytes([k]) * (20 + k) for k in range(30)]
    interp = xdp(src)
    expect = [interp.run_xdp(f)[0] for f in frames]
    assert run_batch(xdp(src), frames) == expect == [0] * 30


def test_batch_helpers_and_adjust_head() -> None:
    """A helper that moves data: the native ctx view follows it within the frame and resets after."""
    src = """mov %r6, %r1
mov %r2, -14
call 44
ldxw %r2, [%r6+0]
ldxw %r3, [%r6+4]
mov %r0, %r3
sub %r0, %r2
exit"""
    frames = _frames(3, 40)
    interp = xdp(src)
    expect = [interp.run_xdp(f)[0] for f in frames]
    assert run_batch(xdp(src), frames) == expect
    assert expect == [len(f) + 14 for f in frames]


def test_batch_faults_become_none_and_the_rest_still_runs() -> None:
    src = """ldxw %r2, [%r1+0]
ldxb %r0, [%r2+0]
jne %r0, 0xee, ok
ldxdw %r0, [%r2+4000]
ok:
exit"""
    frames = [b"\x01" * 20, b"\xee" * 20, b"\x02" * 20, b"\x01" * (MAX_FRAME + 1), b"\x03" * 20]
    batch = XdpBatch(xdp(src))
    assert batch.run(frames) == [1, None, 2, None, 3]
    assert [k for k, _ in batch.errors] == [1, 3]
    assert isinstance(batch.errors[0][1], BpfRuntimeError) and "pc 3" in str(batch.errors[0][1])
    assert isinstance(batch.errors[1][1], NotSupported)


def test_batch_with_tail_calls_runs_frame_by_frame() -> None:
    target = P.Program(C.BPF_PROG_TYPE_XDP, assemble("mov %r0, 3\nexit"))
    pa = P.new_map(M.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 2)
    pa.update(struct.pack("<I", 1), struct.pack("<I", target.fd))
    src = f"""ldxw %r2, [%r1+0]
ldxb %r3, [%r2+0]
lddw %r2, {pa.fd}, 1
call 12
mov %r0, 1
exit"""
    frames = [b"\x01" * 20, b"\x00" * 20]
    batch = XdpBatch(xdp(src))
    assert batch.per_frame
    assert batch.run(frames) == [3, 1]


def test_batch_is_xdp_only() -> None:
    with pytest.raises(NotSupported, match="XDP only"):
        XdpBatch(P.Program(C.BPF_PROG_TYPE_SCHED_CLS, assemble("mov %r0, 0\nexit")))


def test_batch_accepts_ctypes_offsets() -> None:
    frames = [udp_frame(53), udp_frame(80)]
    offs = (ctypes.c_uint32 * 2)(0, 64)
    lens = (ctypes.c_uint32 * 2)(64, 64)
    batch = XdpBatch(P.Program(C.BPF_PROG_TYPE_XDP, assemble(PARSER_UDP)))
    assert batch.run_buffer(b"".join(frames), offs, lens) == [1, 2]


def test_machine_code_is_inspectable_and_size_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    from netstack.bpf.jit import vm as jv
    asm = jv.jit_asm(JitVm(assemble("mov %r0, 1\nexit"), batch=True))
    assert "bpf_f0" in asm and "bpf_batch" in asm
    assert "bpf_batch" not in jv.jit_asm(JitVm(assemble("mov %r0, 1\nexit")))
    monkeypatch.setattr(jv, "MAX_JIT_INSNS", 2)
    with pytest.raises(NotSupported, match="over 2 instructions"):
        JitVm(assemble("mov %r0, 1\nmov %r0, 2\nexit"))


def test_batch_frames_out_equal_run_xdp_frames() -> None:
    """Frames as the program left them (MAC swap for XDP_TX, 200 bytes pushed in front): enough
    growth to overflow the output arena several times, plus faulting frames in between."""
    src = """mov %r6, %r1
ldxw %r2, [%r6+0]
ldxw %r3, [%r6+4]
mov %r4, %r2
add %r4, 12
jgt %r4, %r3, short
ldxw %r4, [%r2+0]
ldxh %r5, [%r2+4]
ldxw %r7, [%r2+6]
ldxh %r8, [%r2+10]
stxw [%r2+0], %r7
stxh [%r2+4], %r8
stxw [%r2+6], %r4
stxh [%r2+10], %r5
ldxb %r4, [%r2+12]
jne %r4, 0xee, push
ldxdw %r0, [%r2+5000]
push:
mov %r1, %r6
mov %r2, -200
call 44
mov %r0, 3
exit
short:
mov %r0, 2
exit"""
    frames = _frames(4, 80) + [b"\x01" * 5, b"\xee" * 30]
    interp = xdp(src)
    expect = []
    for f in frames:
        try:
            expect.append(interp.run_xdp(f))
        except BpfRuntimeError:
            expect.append((None, None))
    batch = XdpBatch(xdp(src))
    actions = batch.run(frames, frames_out=True)
    assert list(zip(actions, batch.frames_out)) == expect
    assert sum(len(f or b"") for f in batch.frames_out) > sum(map(len, frames)) + 4096
    assert [k for k, _ in batch.errors] == [len(frames) - 1]
    assert batch.run(frames) == actions and batch.frames_out == []


def test_stack_is_zeroed_per_run_even_through_a_forged_pointer() -> None:
    """No R10 in sight, but a forged stack pointer: each run must still see a zeroed stack."""
    src = "lddw %r1, 0x100000008\nldxdw %r0, [%r1+0]\nstdw [%r1+0], 7\nexit"
    for cls in (Vm, JitVm):
        vm = cls(assemble(src))
        assert [vm.run(), vm.run()] == [0, 0], cls.__name__
