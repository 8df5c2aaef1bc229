"""Hypothesis differential tests: random programs give the same result (or the same fault) on the
JIT as on the interpreter."""
from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from netstack.bpf import insn as I
from netstack.bpf.errors import BpfError
from netstack.bpf.insn import Insn
from netstack.bpf.interp import Vm
from netstack.bpf.jit import JitVm

_ALU_OPS = [I.BPF_ADD, I.BPF_SUB, I.BPF_MUL, I.BPF_DIV, I.BPF_OR, I.BPF_AND, I.BPF_LSH, I.BPF_RSH,
            I.BPF_NEG, I.BPF_MOD, I.BPF_XOR, I.BPF_MOV, I.BPF_ARSH]
_JMP_OPS = [I.BPF_JEQ, I.BPF_JGT, I.BPF_JGE, I.BPF_JSET, I.BPF_JNE, I.BPF_JSGT, I.BPF_JSGE, I.BPF_JLT,
            I.BPF_JLE, I.BPF_JSLT, I.BPF_JSLE]
_SIZES = [I.BPF_B, I.BPF_H, I.BPF_W, I.BPF_DW]
_INTERESTING = [0, 1, -1, 2, 7, 31, 32, 63, 64, 0x7FFFFFFF, -0x80000000, 0xFFFF, 0x8000, 0x80]
REGS = st.integers(0, 9)
IMM = st.one_of(st.sampled_from(_INTERESTING), st.integers(-(1 << 31), (1 << 31) - 1))
VAL64 = st.one_of(st.sampled_from([0, 1, M := (1 << 64) - 1, 1 << 63, (1 << 63) - 1, 0xFFFFFFFF, 1 << 32]),
                  st.integers(0, M))


@st.composite
def alu(draw: st.DrawFn) -> list[Insn]:
    cls = draw(st.sampled_from([I.BPF_ALU, I.BPF_ALU64]))
    op = draw(st.sampled_from(_ALU_OPS + [I.BPF_END]))
    d = draw(REGS)
    if op == I.BPF_END:
        x = I.BPF_X if cls == I.BPF_ALU and draw(st.booleans()) else 0
        return [Insn(cls | op | x, d, 0, 0, draw(st.sampled_from([16, 32, 64])))]
    if op == I.BPF_NEG:
        return [Insn(cls | op, d, 0, 0, 0)]
    off = 0
    if op in (I.BPF_DIV, I.BPF_MOD):
        off = draw(st.sampled_from([0, 1]))
    if op == I.BPF_MOV and draw(st.booleans()):
        off = draw(st.sampled_from([8, 16] + ([32] if cls == I.BPF_ALU64 else [])))
        return [Insn(cls | op | I.BPF_X, d, draw(REGS), off, 0)]
    if draw(st.booleans()):
        return [Insn(cls | op | I.BPF_X, d, draw(REGS), off, 0)]
    imm = draw(IMM)
    if op in (I.BPF_LSH, I.BPF_RSH, I.BPF_ARSH):
        imm = draw(st.integers(0, 63 if cls == I.BPF_ALU64 else 31))
    return [Insn(cls | op | I.BPF_K, d, 0, off, imm)]


@st.composite
def mem(draw: st.DrawFn) -> list[Insn]:
    """Stack traffic through R10 (some of it out of bounds on purpose) and atomics."""
    size = draw(st.sampled_from(_SIZES))
    nbytes = I.SIZE_BYTES[size]
    off = draw(st.one_of(st.integers(-64, -1).map(lambda o: o - o % nbytes), st.integers(-520, 8)))
    kind = draw(st.sampled_from(["ldx", "ldxsx", "st", "stx", "atomic"]))
    d = draw(REGS)
    if kind == "ldx":
        return [Insn(I.BPF_LDX | I.BPF_MEM | size, d, 10, off, 0)]
    if kind == "ldxsx" and size != I.BPF_DW:
        return [Insn(I.BPF_LDX | I.BPF_MEMSX | size, d, 10, off, 0)]
    if kind == "st":
        return [Insn(I.BPF_ST | I.BPF_MEM | size, 10, 0, off, draw(IMM))]
    if kind == "atomic" and size in (I.BPF_W, I.BPF_DW):
        aop = draw(st.sampled_from([I.BPF_ADD, I.BPF_OR, I.BPF_AND, I.BPF_XOR, I.BPF_ADD | I.BPF_FETCH,
                                    I.BPF_XOR | I.BPF_FETCH, I.BPF_XCHG, I.BPF_CMPXCHG]))
        return [Insn(I.BPF_STX | I.BPF_ATOMIC | size, 10, d, off, aop)]
    return [Insn(I.BPF_STX | I.BPF_MEM | size, 10, d, off, 0)]


@st.composite
def programs(draw: st.DrawFn) -> list[Insn]:
    """R0-R9 set to random 64-bit values, a body of ALU/memory ops and jumps, then exit."""
    out: list[Insn] = []
    for r in range(10):
        out += I.lddw(r, draw(VAL64))
    body = draw(st.lists(st.one_of(alu(), alu(), mem()), min_size=1, max_size=25))
    flat = [ins for group in body for ins in group]
    n = len(flat)
    # Sprinkle conditional jumps (forward and backward; a backward loop exhausts the budget in both).
    jumps = draw(st.lists(st.tuples(st.integers(0, n), st.sampled_from(_JMP_OPS), st.booleans(), st.booleans(),
                                    REGS, REGS, IMM, st.integers(-4, 8)), max_size=6))
    for pos, op, wide, reg, d, s, imm, delta in sorted(jumps, reverse=True):
        cls = I.BPF_JMP if wide else I.BPF_JMP32
        ins = Insn(cls | op | (I.BPF_X if reg else I.BPF_K), d, s if reg else 0, 0, 0 if reg else imm)
        flat.insert(pos, ins)
    total = len(flat)
    fixed = []
    for k, ins in enumerate(flat):
        if ins.opcode & 0x07 in (I.BPF_JMP, I.BPF_JMP32) and ins.opcode & 0xF0 in _JMP_OPS:
            delta = draw(st.integers(-3, 6))
            target = max(0, min(total, k + 1 + delta))  # may land on the exit
            ins = ins._replace(off=target - (k + 1))
        fixed.append(ins)
    return out + fixed + [Insn(I.BPF_JMP | I.BPF_EXIT, 0, 0, 0, 0)]


def _outcome(cls: type[Vm], prog: list[Insn]) -> object:
    try:
        return cls(prog, budget=200).run()
    except BpfError as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_random_programs_jit_equals_interpreter(prog: list[Insn]) -> None:
    assert _outcome(JitVm, prog) == _outcome(Vm, prog)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(_ALU_OPS), st.booleans(), VAL64, VAL64, st.sampled_from([0, 1]))
def test_alu_on_edge_values(op: int, wide: bool, a: int, b: int, off: int) -> None:
    """One ALU op on two loaded 64-bit values: the division / shift / sign rules at their edges."""
    cls = I.BPF_ALU64 if wide else I.BPF_ALU
    if op not in (I.BPF_DIV, I.BPF_MOD):
        off = 0
    prog = [*I.lddw(0, a), *I.lddw(1, b), Insn(cls | op | I.BPF_X, 0, 1, off, 0),
            Insn(I.BPF_JMP | I.BPF_EXIT, 0, 0, 0, 0)]
    assert _outcome(JitVm, prog) == _outcome(Vm, prog)


@st.composite
def csum_args(draw: st.DrawFn) -> tuple[bytes, int, int, int, int, bool]:
    """Spans mostly inside the buffer (the interesting case), sometimes past it or from NULL."""
    data = draw(st.binary(min_size=1, max_size=80))
    n = len(data)
    inside = draw(st.integers(0, 9)) > 0
    hi = n if inside else n + 8
    from_size = draw(st.integers(0, hi))
    to_off = draw(st.integers(0, hi))
    to_size = draw(st.integers(0, max(hi - to_off, 0) if inside else hi))
    return data, from_size, to_off, to_size, draw(st.integers(0, (1 << 32) - 1)), draw(st.integers(0, 9)) == 0


@settings(max_examples=40, deadline=None)
@given(csum_args())
@example((b"\xff" * 4, 0, 0, 4, 0, False))    # sum == 2^32 - 1: folds to 0xffffffff, not 0
@example((bytes(12), 12, 0, 0, 0, False))      # all-zero sum
@example((b"\x01\x02\x03", 3, 1, 2, 5, False))  # tails shorter than a word
def test_native_csum_diff_equals_helper(args: tuple[bytes, int, int, int, int, bool]) -> None:
    """bpf_csum_diff inlined in native code == helpers.csum_diff (results, and faults past the buffer)."""
    data, from_size, to_off, to_size, seed, null_from = args
    from netstack.bpf import helpers as H
    prog = [Insn(I.BPF_ALU64 | I.BPF_MOV | I.BPF_X, 6, 1, 0, 0),
            *I.lddw(2, from_size), *I.lddw(4, to_size), *I.lddw(5, seed | (0xABCD << 32)),
            Insn(I.BPF_ALU64 | I.BPF_MOV | I.BPF_X, 3, 1, 0, 0),
            Insn(I.BPF_ALU64 | I.BPF_ADD | I.BPF_K, 3, 0, 0, to_off),
            Insn(I.BPF_ALU64 | I.BPF_MOV | I.BPF_K, 1, 0, 0, 0) if null_from else
            Insn(I.BPF_ALU64 | I.BPF_MOV | I.BPF_X, 1, 6, 0, 0),
            Insn(I.BPF_JMP | I.BPF_CALL, 0, 0, 0, H.BPF_FUNC_csum_diff),
            Insn(I.BPF_JMP | I.BPF_EXIT, 0, 0, 0, 0)]
    helpers = {H.BPF_FUNC_csum_diff: H.csum_diff}
    out = []
    for cls in (Vm, JitVm):
        try:
            vm = cls(prog, helpers)
            assert not isinstance(vm, JitVm) or vm.plan.inline_csum_diff
            out.append(vm.run_mem(data))
        except BpfError as exc:
            out.append((type(exc).__name__, str(exc)))
    assert out[0] == out[1]


@st.composite
def xdp_programs(draw: st.DrawFn) -> str:
    """XDP programs poking the packet at random offsets from data / data_end / data_meta (in the
    frame, in the headroom, past the end, past the buffer) and mixing what they read."""
    lines = ["mov %r9, %r1", "ldxw %r2, [%r9+0]", "ldxw %r3, [%r9+4]", "ldxw %r4, [%r9+8]", "mov %r0, 0"]
    for _ in range(draw(st.integers(1, 8))):
        base = draw(st.sampled_from(["%r2", "%r3", "%r4"]))
        off = draw(st.one_of(st.integers(-300, 120), st.integers(-300, 4000)))
        size = draw(st.sampled_from(["b", "h", "w", "dw"]))
        kind = draw(st.sampled_from(["load", "load", "store", "ctx"]))
        if kind == "load":
            lines += [f"ldx{size} %r5, [{base}{off:+d}]", "add %r0, %r5"]
        elif kind == "store":
            lines.append(f"st{size} [{base}{off:+d}], {draw(st.integers(-1000, 1000))}")
        else:
            field = draw(st.sampled_from([12, 16, 0, 4, 8, 20, 2, 24]))
            lines += [f"ldxw %r5, [%r9+{field}]", "add %r0, %r5"]
    lines += ["mov %r5, %r3", "sub %r5, %r2", "add %r0, %r5", "exit"]
    return "\n".join(lines)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(xdp_programs(), st.lists(st.binary(min_size=14, max_size=120), min_size=1, max_size=12))
def test_random_xdp_programs_batch_equals_interpreter(src: str, frames: list[bytes]) -> None:
    """Batch mode (native ctx fields, packet region checks, buffer re-zeroing) == run_xdp per frame."""
    from netstack.bpf import context as C
    from netstack.bpf import progs as P
    from netstack.bpf.asm import assemble
    from netstack.bpf.jit import XdpBatch
    interp = P.Program(C.BPF_PROG_TYPE_XDP, assemble(src), verifier=False)
    expect: list[object] = []
    for f in frames:
        try:
            expect.append(interp.run_xdp(f, ingress_ifindex=1, rx_queue_index=0))
        except BpfError as exc:
            expect.append(str(exc))
    batch = XdpBatch(P.Program(C.BPF_PROG_TYPE_XDP, assemble(src), verifier=False))
    actions = batch.run(frames, frames_out=True)
    errors = dict(batch.errors)
    got = [(a, f) if a is not None else str(errors[k]) for k, (a, f) in enumerate(zip(actions, batch.frames_out))]
    assert got == expect
