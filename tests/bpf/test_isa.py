"""Codec, assembler/disassembler round trip, interpreter semantics and safety."""
from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from netstack.bpf import insn as I
from netstack.bpf.asm import assemble
from netstack.bpf.check import verify
from netstack.bpf.disasm import disassemble
from netstack.bpf.errors import AsmError, BpfDecodeError, BpfRuntimeError, BpfVerifyError, NotSupported
from netstack.bpf.insn import Insn
from netstack.bpf.interp import Packet, ProgramExit, Vm

M64 = (1 << 64) - 1
regs = st.integers(0, 10)
wregs = st.integers(0, 9)
s16 = st.integers(-0x8000, 0x7FFF)
s32 = st.integers(-0x80000000, 0x7FFFFFFF)


# --- codec ---------------------------------------------------------------------------
def test_rfc_example_encoding() -> None:
    # RFC 9669 / reference 2.1: 07 01 00 00 44 33 22 11 = r1 += 0x11223344
    ins = I.decode(bytes.fromhex("0701000044332211"))[0]
    assert ins == Insn(I.BPF_ALU64 | I.BPF_ADD | I.BPF_K, 1, 0, 0, 0x11223344)
    assert disassemble([ins]) == ["add %r1, 0x11223344"]
    assert disassemble([ins], "llvm") == ["r1 += 287454020"]


@given(st.binary(min_size=8, max_size=8))
def test_slot_codec_roundtrip(raw: bytes) -> None:
    assert I.decode(raw)[0].encode() == raw


def test_ragged_program_is_a_decode_error() -> None:
    with pytest.raises(BpfDecodeError):
        I.decode(b"\x95" * 9)
    with pytest.raises(BpfDecodeError):
        I.from_hex("zz")


# --- valid-instruction strategy for the round trip ------------------------------------
def _alu(draw: st.DrawFn) -> list[Insn]:
    cls = draw(st.sampled_from([I.BPF_ALU, I.BPF_ALU64]))
    op = draw(st.sampled_from([I.BPF_ADD, I.BPF_SUB, I.BPF_MUL, I.BPF_DIV, I.BPF_OR, I.BPF_AND, I.BPF_LSH,
                               I.BPF_RSH, I.BPF_MOD, I.BPF_XOR, I.BPF_MOV, I.BPF_ARSH, I.BPF_NEG, I.BPF_END]))
    d = draw(wregs)
    if op == I.BPF_NEG:
        return [Insn(cls | op, d)]
    if op == I.BPF_END:
        src = I.BPF_K if cls == I.BPF_ALU64 else draw(st.sampled_from([I.BPF_K, I.BPF_X]))
        return [Insn(cls | op | src, d, 0, 0, draw(st.sampled_from([16, 32, 64])))]
    off = 0
    if op in (I.BPF_DIV, I.BPF_MOD):
        off = draw(st.sampled_from([0, 1]))
    if draw(st.booleans()):
        if op == I.BPF_MOV:
            off = draw(st.sampled_from([0, 8, 16, 32] if cls == I.BPF_ALU64 else [0, 8, 16]))
        return [Insn(cls | op | I.BPF_X, d, draw(regs), off, 0)]
    return [Insn(cls | op, d, 0, 0 if op == I.BPF_MOV else off, draw(s32))]


def _jmp(draw: st.DrawFn) -> list[Insn]:
    kind = draw(st.sampled_from(["ja", "ja32", "exit", "call", "callx", "local", "cond"]))
    if kind == "ja":
        return [Insn(I.BPF_JMP | I.BPF_JA, 0, 0, draw(s16))]
    if kind == "ja32":
        return [Insn(I.BPF_JMP32 | I.BPF_JA, 0, 0, 0, draw(s32))]
    if kind == "exit":
        return [Insn(I.BPF_JMP | I.BPF_EXIT)]
    if kind == "call":
        return [Insn(I.BPF_JMP | I.BPF_CALL, 0, 0, 0, draw(s32))]
    if kind == "callx":
        return [Insn(I.BPF_JMP | I.BPF_CALL | I.BPF_X, draw(regs))]
    if kind == "local":
        return [Insn(I.BPF_JMP | I.BPF_CALL, 0, 1, 0, draw(s32))]
    cls = draw(st.sampled_from([I.BPF_JMP, I.BPF_JMP32]))
    op = draw(st.sampled_from([0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xA0, 0xB0, 0xC0, 0xD0]))
    if draw(st.booleans()):
        return [Insn(cls | op | I.BPF_X, draw(regs), draw(regs), draw(s16), 0)]
    return [Insn(cls | op, draw(regs), 0, draw(s16), draw(s32))]


def _mem(draw: st.DrawFn) -> list[Insn]:
    size = draw(st.sampled_from([I.BPF_B, I.BPF_H, I.BPF_W, I.BPF_DW]))
    kind = draw(st.sampled_from(["ldx", "ldxs", "st", "stx", "atomic", "acq", "rel", "lddw", "abs", "ind"]))
    d, s, off = draw(wregs), draw(regs), draw(s16)
    if kind == "ldx":
        return [Insn(I.BPF_LDX | I.BPF_MEM | size, d, s, off)]
    if kind == "ldxs":
        return [Insn(I.BPF_LDX | I.BPF_MEMSX | (I.BPF_DW if size == I.BPF_DW else size), d, s, off)
                if size != I.BPF_DW else Insn(I.BPF_LDX | I.BPF_MEMSX | I.BPF_W, d, s, off)]
    if kind == "st":
        return [Insn(I.BPF_ST | I.BPF_MEM | size, d, 0, off, draw(s32))]
    if kind == "stx":
        return [Insn(I.BPF_STX | I.BPF_MEM | size, d, s, off)]
    if kind == "acq":
        return [Insn(I.BPF_STX | I.BPF_ATOMIC | size, d, s, off, I.BPF_LOAD_ACQ)]
    if kind == "rel":
        return [Insn(I.BPF_STX | I.BPF_ATOMIC | size, d, s, off, I.BPF_STORE_REL)]
    if kind == "atomic":
        imm = draw(st.sampled_from([0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xA0, 0xA1, I.BPF_XCHG, I.BPF_CMPXCHG]))
        return [Insn(I.BPF_STX | I.BPF_ATOMIC | draw(st.sampled_from([I.BPF_W, I.BPF_DW])), d, s, off, imm)]
    if kind == "lddw":
        return list(I.lddw(d, draw(st.integers(0, M64))))
    if kind == "abs":
        return [Insn(I.BPF_LD | I.BPF_ABS | (I.BPF_W if size == I.BPF_DW else size), 0, 0, 0, draw(s32))]
    return [Insn(I.BPF_LD | I.BPF_IND | (I.BPF_W if size == I.BPF_DW else size), 0, s, 0, draw(s32))]


@st.composite
def programs(draw: st.DrawFn) -> list[Insn]:
    out: list[Insn] = []
    for _ in range(draw(st.integers(1, 12))):
        out += draw(st.sampled_from([_alu, _jmp, _mem]))(draw)
    return out


@settings(max_examples=300, deadline=None)
@given(programs())
def test_disassemble_assemble_roundtrip_is_exact(prog: list[Insn]) -> None:
    text = "\n".join(disassemble(prog))
    assert I.encode(assemble(text)) == I.encode(prog)
    assert len(disassemble(prog, "llvm")) == len(disassemble(prog))


def test_llvm_syntax_samples() -> None:
    prog = assemble("ldxw %r0, [%r1+4]\njgt %r1, 2, +3\nldxsh %r2, [%r10-2]\nlock add32 [%r1+8], %r3\n"
                    "movsx1664 %r4, %r5\nsdiv32 %r1, %r2\nbe16 %r1\nswap64 %r2\nexit")
    assert disassemble(prog, "llvm", labels=True) == [
        "w0 = *(u32 *)(r1 + 4)",
        "if r1 > 0x2 goto +3 <LBB0_0>",
        "r2 = *(s16 *)(r10 - 2)",
        "lock *(u32 *)(r1 + 8) += w3",
        "r4 = (s16)r5",
        "w1 s/= w2",
        "r1 = be16 r1",
        "r2 = bswap64 r2",
        "exit",
    ]


def test_assembler_errors_carry_position() -> None:
    with pytest.raises(AsmError) as info:
        assemble("mov %r0, 1\n  add %r0, %r99\nexit")
    assert info.value.line == 2 and info.value.column == 12 and "Invalid register: %r99" in str(info.value)
    with pytest.raises(AsmError, match="Duplicate label"):
        assemble("a:\na:\nexit")
    with pytest.raises(AsmError, match="Invalid call mode"):
        assemble("call far 3\nexit")


# --- interpreter semantics against independent big-int references ----------------------
def _s(v: int, bits: int) -> int:
    return int.from_bytes(v.to_bytes(bits // 8, "little"), "little", signed=True)


def _run(text: str, *args: int) -> int:
    prog = assemble(text)
    verify(prog, entry_regs=range(1, 6), kernel_imm_rules=False)
    return Vm(prog).run(args)


u64 = st.integers(0, M64)
edge64 = st.sampled_from([0, 1, M64, 1 << 63, (1 << 63) - 1, 0xFFFFFFFF, 0x80000000, 7, M64 - 6]) | u64


@settings(max_examples=150, deadline=None)
@given(edge64, edge64)
def test_alu64_division_rules(a: int, b: int) -> None:
    got = _run("mov %r0, %r1\ndiv %r0, %r2\nmov %r3, %r1\nmod %r3, %r2\nmov %r4, %r1\nsdiv %r4, %r2\n"
               "mov %r5, %r1\nsmod %r5, %r2\nxor %r0, %r3\nlsh %r4, 1\nxor %r0, %r4\nxor %r0, %r5\nexit", a, b)
    sa, sb = _s(a, 64), _s(b, 64)
    q = a // b if b else 0
    m = a % b if b else a
    sq = int(Fraction(sa, sb)) & M64 if b else 0
    sm = (sa - sb * int(Fraction(sa, sb))) & M64 if b else a
    assert got == q ^ m ^ ((sq << 1) & M64) ^ sm


@settings(max_examples=150, deadline=None)
@given(edge64, edge64)
def test_alu32_zero_extends_and_masks_shifts(a: int, b: int) -> None:
    a32, b32 = a & 0xFFFFFFFF, b & 0xFFFFFFFF
    assert _run("mov %r0, %r1\nmod32 %r0, %r2\nexit", a, b) == (a32 % b32 if b32 else a32)
    assert _run("mov %r0, %r1\nsdiv32 %r0, %r2\nexit", a, b) == (
        int(Fraction(_s(a32, 32), _s(b32, 32))) & 0xFFFFFFFF if b32 else 0)
    assert _run("mov %r0, %r1\narsh32 %r0, %r2\nexit", a, b) == (_s(a32, 32) >> (b & 31)) & 0xFFFFFFFF
    assert _run("mov %r0, %r1\nlsh %r0, %r2\nexit", a, b) == (a << (b & 63)) & M64
    assert _run("mov %r0, %r1\narsh %r0, %r2\nexit", a, b) == (_s(a, 64) >> (b & 63)) & M64
    assert _run("mov %r0, %r1\nneg32 %r0\nexit", a) == (-a32) & 0xFFFFFFFF
    assert _run("mov %r0, %r1\nmovsx832 %r0, %r1\nexit", a) == _s(a & 0xFF, 8) & 0xFFFFFFFF
    assert _run("mov %r0, %r1\nmovsx3264 %r0, %r1\nexit", a) == _s(a32, 32) & M64
    assert _run("mov %r0, %r1\nbe32 %r0\nexit", a) == int.from_bytes(a32.to_bytes(4, "little"), "big")
    assert _run("mov %r0, %r1\nle16 %r0\nexit", a) == a & 0xFFFF
    assert _run("mov %r0, %r1\nswap64 %r0\nexit", a) == int.from_bytes(a.to_bytes(8, "little"), "big")


@settings(max_examples=100, deadline=None)
@given(edge64, edge64)
def test_signed_and_32bit_jumps(a: int, b: int) -> None:
    got = _run("mov %r0, 0\njslt %r1, %r2, +1\nja +1\nor %r0, 1\njlt32 %r1, %r2, +1\nja +1\nor %r0, 2\n"
               "jset %r1, %r2, +1\nja +1\nor %r0, 4\nexit", a, b)
    want = (1 if _s(a, 64) < _s(b, 64) else 0) | (2 if (a & 0xFFFFFFFF) < (b & 0xFFFFFFFF) else 0) | (
        4 if a & b else 0)
    assert got == want


def test_atomics_32_zero_extend_fetched_value() -> None:
    r = _run("lddw %r1, 0xffffffff00000005\nstxdw [%r10-8], %r1\nmov %r2, -1\n"
             "lock fetch add32 [%r10-8], %r2\nmov %r0, %r2\nexit")
    assert r == 5
    r = _run("mov %r1, 3\nstxdw [%r10-8], %r1\nmov %r0, 3\nmov %r2, 9\nlock cmpxchg [%r10-8], %r2\n"
             "ldxdw %r0, [%r10-8]\nexit")
    assert r == 9


# --- memory safety --------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "ldxdw %r0, [%r10+0]\nexit",            # at r10: one past the stack
    "ldxb %r0, [%r10-513]\nexit",           # below the stack
    "mov %r1, 0\nldxw %r0, [%r1]\nexit",   # NULL
    "lddw %r1, 0x123456789\nstxw [%r1], %r1\nmov %r0, 0\nexit",  # wild pointer
    "lddw %r2, 0x1000000000\nmov %r1, %r10\nadd %r1, %r2\nldxb %r0, [%r1-1]\nexit",  # unmapped region
])
def test_out_of_bounds_is_a_runtime_error(text: str) -> None:
    with pytest.raises(BpfRuntimeError) as info:
        _run(text)
    assert info.value.pc is not None


@settings(max_examples=200, deadline=None)
@given(u64, st.integers(-0x8000, 0x7FFF), st.sampled_from(["ldxb", "ldxh", "ldxw", "ldxdw"]))
def test_arbitrary_loads_never_escape(addr: int, off: int, op: str) -> None:
    vm = Vm(assemble(f"{op} %r0, [%r1{'+' if off >= 0 else '-'}{abs(off)}]\nexit"))
    try:
        vm.run((addr,))
    except BpfRuntimeError:
        pass
    else:
        rid = ((addr + off) & M64) >> 32
        assert 0 < rid <= I.MAX_CALL_FRAMES  # only a stack region could have been hit


def test_read_only_region_rejects_writes() -> None:
    vm = Vm(assemble("stb [%r1], 1\nmov %r0, 0\nexit"))
    vm.mem.reset()
    base = vm.mem.map(b"abc", name="ro")
    with pytest.raises(BpfRuntimeError, match="invalid write"):
        vm.run((base,))


# --- calls, frames, helpers -------------------------------------------------------------
def test_local_calls_get_their_own_stack_and_restore_callee_saved() -> None:
    r = _run("mov %r6, 7\nstdw [%r10-8], 11\ncall local f\nldxdw %r1, [%r10-8]\nadd %r0, %r1\nadd %r0, %r6\nexit\n"
             "f:\nstdw [%r10-8], 100\nmov %r6, 1000\nldxdw %r0, [%r10-8]\nexit")
    assert r == 100 + 11 + 7


def test_recursion_is_bounded_by_eight_frames() -> None:
    deep = "mov %r1, {n}\ncall local f\nexit\nf:\njeq %r1, 0, +3\nsub %r1, 1\ncall local f\nexit\nmov %r0, 5\nexit"
    assert _run(deep.format(n=6)) == 5  # main + 7 nested frames
    with pytest.raises(BpfRuntimeError, match="call depth"):
        _run(deep.format(n=7))


def test_helpers_callx_and_program_exit() -> None:
    def add(vm: Vm, a: int, b: int, *_: int) -> int:
        return a + b

    def stop(vm: Vm, a: int, *_: int) -> int:
        raise ProgramExit(a)

    vm = Vm(assemble("mov %r1, 2\nmov %r2, 40\ncall 1\nmov %r6, %r0\nmov %r3, 1\nmov %r1, %r6\ncall %r3\n"
                     "mov %r1, 9\ncall 2\nmov %r0, 0\nexit"), {1: add, 2: stop})
    assert vm.run() == 9
    with pytest.raises(BpfRuntimeError, match="unknown helper 3"):
        Vm(assemble("call 3\nexit")).run()


def test_unbounded_loop_hits_the_budget() -> None:
    with pytest.raises(BpfRuntimeError, match="budget"):
        Vm(assemble("l:\nja l\nexit"), budget=1000).run()


def test_kfunc_and_pseudo_lddw_are_not_supported() -> None:
    with pytest.raises(NotSupported):
        Vm(assemble("call runtime 5\nexit"))
    with pytest.raises(NotSupported):
        Vm(assemble("lddw %r1, 3, 1\nexit"))
    assert Vm(assemble("lddw %r0, 3, 1\nexit"), ld_imm64=lambda src, lo, hi: 0x100 * src + lo).run() == 0x103


# --- legacy packet loads ---------------------------------------------------------------
def test_ld_abs_ind_network_order_and_oob_returns_zero() -> None:
    frame = bytes(range(40))
    pkt = Packet(frame, data_off=0, mac_off=0, net_off=14)
    prog = assemble("ldabsh 12\nmov %r6, %r0\nmov %r7, 2\nldindw %r7, 12\nadd %r0, %r6\nexit")
    assert Vm(prog).run(packet=pkt) == 0x0C0D + 0x0E0F1011
    assert Vm(assemble(f"ldabsb {I.SKF_NET_OFF + 1}\nexit")).run(packet=pkt) == 15
    assert Vm(assemble("mov %r0, 7\nldabsw 38\nmov %r0, 1\nexit")).run(packet=pkt) == 0


# --- load-time checks --------------------------------------------------------------------
@pytest.mark.parametrize("text,message", [
    ("mov %r0, 1", "last insn is not an exit or jmp"),
    ("ja +5\nexit", "jump out of range from insn 0 to 6"),
    ("mov %r10, 1\nexit", "frame pointer is read only"),
    ("mov %r0, %r11\nexit", "R11 is invalid"),
    ("mov %r0, %r3\nexit", "R3 !read_ok"),
    ("call 1\nmov %r0, %r1\nexit", "R1 !read_ok"),
    ("mov %r0, 0\nexit\nmov %r0, 1\nexit", "unreachable insn 2"),
    ("mov %r0, 1\ndiv %r0, 0\nexit", "division by zero"),
    ("mov %r0, 1\nlsh32 %r0, 32\nexit", "invalid shift 32"),
    ("lddw %r0, 1\nja -2\nexit", "jump out of range from insn 2 to 1"),
])
def test_verifier_structural_rejections(text: str, message: str) -> None:
    with pytest.raises(BpfVerifyError) as info:
        verify(assemble(text))
    assert info.value.message == message


def test_verifier_field_checks_use_kernel_wording() -> None:
    with pytest.raises(BpfVerifyError, match="unknown opcode 8e"):
        verify([Insn(0x8E), Insn(0x95)])
    with pytest.raises(BpfVerifyError, match="BPF_EXIT uses reserved fields"):
        verify([Insn(0x95, 0, 0, 0, 1)])
    with pytest.raises(BpfVerifyError, match="empty program"):
        verify([])
    verify(assemble("mov %r0, 0\ncall local f\nexit\nf:\nmov %r0, %r1\nexit"))


def test_unverified_out_of_range_jumps_fault_instead_of_exiting() -> None:
    for text in ("mov %r0, 1\nja -5\nexit", "mov %r0, 1\njeq %r0, 1, +9\nexit", "call local +7\nexit"):
        with pytest.raises(BpfRuntimeError, match="out of range"):
            Vm(assemble(text)).run()


def test_structural_checker_flow_hook() -> None:
    """check.StructuralChecker is the documented base of the verifier's check_cfg: run() builds the
    graph, then hands it to flow(); a subclass replacing flow() skips the must-init analysis."""
    from netstack.bpf.check import StructuralChecker
    from netstack.bpf.verifier.core import _CfgChecker

    assert issubclass(_CfgChecker, StructuralChecker)
    code = assemble("mov %r0, %r3\ncall local f\nexit\nf:\nmov %r0, 1\nexit")
    seen: dict[str, object] = {}

    class Graph(StructuralChecker):
        def flow(self, entry: int, succ: list[list[int]], calls: dict[int, int], second_half: list[bool]) -> None:
            seen.update(entry=entry, succ=succ, calls=calls, second_half=second_half)

    Graph(code, True).run(0b10)
    assert seen == {"entry": 0b10, "succ": [[1], [2], [], [4], []], "calls": {1: 3},
                    "second_half": [False] * 5}
    with pytest.raises(BpfVerifyError, match="R3 !read_ok"):  # the base flow() is the must-init pass
        StructuralChecker(code, True).run(0b10)
    with pytest.raises(BpfVerifyError, match="insn 0: invalid BPF_ALU opcode f0"):  # field checks come first
        Graph([Insn(0xF4), *code], True).run(0b10)
