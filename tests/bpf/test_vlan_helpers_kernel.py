"""``bpf_skb_vlan_push`` (18) / ``bpf_skb_vlan_pop`` (19) against this machine's kernel.

Each SCHED_CLS program pushes and pops tags, then copies what the skb looks like into the
``__sk_buff`` control block -- ``vlan_present``, ``vlan_tci``, ``vlan_proto``, ``protocol``,
``len`` -- because ``BPF_PROG_TEST_RUN``'s ctx_out (``convert_skb_to___skb``) carries ``cb`` but
not the vlan fields themselves.  Kernel and netstack (interpreter and JIT) must give the same
retval (the last helper's return value, or a byte the program read), data_out (which holds the
in-packet tags, never the out-of-band one) and ctx_out.  Also checked: LD_ABS and direct packet
reads after a push (the packet moved), the headroom running out after many pushes, and that XDP
and socket filters may not call these helpers.  Skips, printing why, without root / bpf(2).
"""
from __future__ import annotations

import struct
from typing import Any, Callable

import pytest

from netstack.bpf import context as C
from netstack.bpf import helpers as H
from netstack.bpf import progs as P
from netstack.bpf.asm import assemble
from netstack.bpf.errors import BpfVerifyError
from netstack.bpf.kernel import KernelBpfError, KProg, available

REASON = available()
if REASON is not None:
    print(f"vlan helper kernel differential skipped: {REASON}")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"bpf(2) unusable here: {REASON}")

TC = C.BPF_PROG_TYPE_SCHED_CLS
DST, SRC = bytes.fromhex("020000000002"), bytes.fromhex("020000000001")
IPV4 = bytes.fromhex("45000028000140004011") + bytes(2) + bytes([10, 0, 0, 1, 10, 0, 0, 2]) + bytes(20)


def frame(*tags: tuple[int, int], ethertype: int = 0x0800, payload: bytes = IPV4) -> bytes:
    """An Ethernet frame with in-packet tags ``(tpid, tci)`` in order, then ``ethertype``."""
    out = DST + SRC
    for tpid, tci in tags:
        out += struct.pack(">HH", tpid, tci)
    return out + struct.pack(">H", ethertype) + payload


PUSH_Q = "mov %r1, %r6\nmov %r2, 0x0081\nmov %r3, {tci}\ncall 18\nmov %r7, %r0\n"
POP = "mov %r1, %r6\ncall 19\nmov %r7, %r0\n"
REPORT = """ldxw %r1, [%r6+20]
stxw [%r6+48], %r1
ldxw %r1, [%r6+24]
stxw [%r6+52], %r1
ldxw %r1, [%r6+28]
stxw [%r6+56], %r1
ldxw %r1, [%r6+16]
stxw [%r6+60], %r1
ldxw %r1, [%r6+0]
stxw [%r6+64], %r1
mov %r0, %r7
exit
"""


def prog(body: str) -> str:
    return "mov %r6, %r1\nmov %r7, 0\n" + body + REPORT


CASES: list[tuple[str, str, bytes]] = [
    ("push_untagged", prog(PUSH_Q.format(tci=0x1234)), frame()),
    ("push_twice_writes_first_into_packet", prog(PUSH_Q.format(tci=5) + PUSH_Q.format(tci=0x6007)), frame()),
    ("push_three_times", prog(PUSH_Q.format(tci=1) + PUSH_Q.format(tci=2) + PUSH_Q.format(tci=3)), frame()),
    ("push_8021ad", prog("mov %r1, %r6\nmov %r2, 0xa888\nmov %r3, 77\ncall 18\nmov %r7, %r0\n"
                         + PUSH_Q.format(tci=9)), frame()),
    ("push_other_tpid_becomes_8021q", prog("mov %r1, %r6\nmov %r2, 0x0008\nmov %r3, 3\ncall 18\n"
                                           "mov %r1, %r6\nlddw %r2, 0x1234567800000081\nmov %r3, 4\ncall 18\n"),
     frame()),
    ("push_tci_truncated_to_16_bits", prog("mov %r1, %r6\nmov %r2, 0x0081\nlddw %r3, 0xabcd00012345\ncall 18\n"
                                           + PUSH_Q.format(tci=1)), frame()),
    ("pop_untagged_is_noop", prog(POP), frame()),
    ("pop_in_packet_tag", prog(POP), frame((0x8100, 0x0123))),
    ("pop_qinq_moves_inner_out_of_band", prog(POP), frame((0x88A8, 0x0064), (0x8100, 0x00C8))),
    ("pop_twice_qinq", prog(POP + POP), frame((0x88A8, 0x0064), (0x8100, 0x00C8))),
    ("push_then_pop", prog(PUSH_Q.format(tci=10) + POP), frame()),
    ("push_push_pop", prog(PUSH_Q.format(tci=10) + PUSH_Q.format(tci=11) + POP), frame()),
    ("push_on_tagged_frame_then_pop", prog(PUSH_Q.format(tci=10) + POP + POP), frame((0x8100, 0x0042))),
    ("pop_llc_inside", prog(POP), frame((0x8100, 7), ethertype=0x0040, payload=b"\xaa\xaa\x03" + bytes(40))),
    ("pop_raw_ipx_inside", prog(POP), frame((0x8100, 7), ethertype=0x0040, payload=b"\xff\xff" + bytes(40))),
    ("pop_ipv6_inside", prog(POP), frame((0x8100, 7), ethertype=0x86DD, payload=bytes(60))),
    ("pop_too_short_is_enomem", prog(POP), DST + SRC + b"\x81\x00\x00"),
    ("pop_short_after_hw_clear", prog(PUSH_Q.format(tci=1) + POP), DST + SRC + b"\x81\x00\x00\x05"),
    ("ld_abs_after_push", prog(PUSH_Q.format(tci=0x0abc) + PUSH_Q.format(tci=0x0def)
                               + "ldabsh 12\nmov %r8, %r0\nldabsh 14\nlsh %r8, 16\nor %r8, %r0\n"
                               "ldabsb -1048576\nlsh %r8, 8\nor %r8, %r0\nstxw [%r6+8], %r8\n"
                               "ldabsb -2097140\nmov %r7, %r0\n"), frame()),
    ("direct_read_after_push", prog(PUSH_Q.format(tci=0x0abc) + PUSH_Q.format(tci=0x0def) + """ldxw %r2, [%r6+76]
ldxw %r3, [%r6+80]
mov %r4, %r2
add %r4, 20
jgt %r4, %r3, +2
ldxw %r7, [%r2+12]
ldxw %r8, [%r2+16]
"""), frame()),
    ("many_pushes_exhaust_headroom", prog("""mov %r8, 24
again:
mov %r1, %r6
mov %r2, 0x0081
mov %r3, %r8
call 18
sub %r8, 1
jne %r8, 0, again
"""), frame()),
]


def _outcome(fn: Callable[[], Any]) -> Any:
    try:
        return ("ok", fn())
    except (KernelBpfError, P.TestRunError) as exc:
        return ("errno", exc.errno)


CTX = bytes(C.SK_BUFF_SIZE)


def _kernel(src: str, data: bytes) -> Any:
    with KProg(TC, assemble(src)) as kp:
        return _outcome(lambda: tuple(kp.test_run(data, ctx=CTX, ctx_out_size=C.SK_BUFF_SIZE)[i] for i in (0, 1, 3)))


def _model(src: str, data: bytes, jit: bool) -> Any:
    p = P.Program(TC, assemble(src))
    if jit:
        from netstack.bpf.jit import jit_program
        jit_program(p)

    def go() -> tuple[int, bytes, bytes]:
        r = P.prog_test_run_full(p, data, ctx=CTX)
        return r.retval, r.data_out, r.ctx_out
    return _outcome(go)


@pytest.mark.parametrize("jit", [False, True], ids=["interp", "jit"])
@pytest.mark.parametrize("name,src,data", CASES, ids=[c[0] for c in CASES])
def test_vlan_helpers_match_kernel(name: str, src: str, data: bytes, jit: bool) -> None:
    want = _kernel(src, data)
    assert _model(src, data, jit) == want


def test_cases_really_exercise_the_tags() -> None:
    """The expectations of a few cases, so a kernel and a model both doing nothing cannot agree."""
    def cb(name: str) -> tuple[int, ...]:
        src, data = next((c[1], c[2]) for c in CASES if c[0] == name)
        res = _kernel(src, data)
        assert res[0] == "ok"
        return struct.unpack_from("<5I", res[1][2], 48) + (res[1][0], len(res[1][1]))

    # vlan_present, vlan_tci, vlan_proto (network order), protocol (network order), len, retval, len(data_out)
    assert cb("push_untagged") == (1, 0x1234, 0x0081, 0x0008, 54, 0, 54)
    assert cb("push_twice_writes_first_into_packet") == (1, 0x6007, 0x0081, 0x0081, 58, 0, 58)
    assert cb("pop_qinq_moves_inner_out_of_band") == (1, 0x00C8, 0x0081, 0x0008, 54, 0, 54)
    assert cb("pop_too_short_is_enomem")[5] == (-12) & 0xFFFFFFFF


@pytest.mark.parametrize("prog_type", [C.BPF_PROG_TYPE_XDP, C.BPF_PROG_TYPE_SOCKET_FILTER])
@pytest.mark.parametrize("hid", [H.BPF_FUNC_skb_vlan_push, H.BPF_FUNC_skb_vlan_pop])
def test_only_tc_may_call_the_vlan_helpers(prog_type: int, hid: int) -> None:
    src = f"mov %r2, 0x81\nmov %r3, 1\ncall {hid}\nmov %r0, 0\nexit"
    try:
        KProg(prog_type, assemble(src)).close()
        kernel: Any = "accepted"
    except KernelBpfError as exc:
        kernel = exc.errno
    try:
        P.Program(prog_type, assemble(src))
        model: Any = "accepted"
    except BpfVerifyError as exc:
        model = exc.errno
    assert model == kernel == 22


def test_pop_of_an_18_byte_llc_frame_matches_kernel() -> None:
    """A tagged 802.3 frame that ends right after its length field."""
    src, data = prog(POP), DST + SRC + b"\x81\x00\x00\x05\x00\x40"
    want = _kernel(src, data)
    assert struct.unpack_from("<I", want[1][2], 60)[0] == 0x0400  # htons(ETH_P_802_2)
    assert _model(src, data, False) == want
