"""The skb is one object across a tail-call chain and across ``repeat`` runs, against this
machine's kernel.

net/core/filter.c ``bpf_skb_vlan_push``/``_pop`` move ``skb->data``, the MAC header and (on a pop,
or a push over an out-of-band tag) the network header.  A tail call (kernel/bpf/core.c
``JMP_TAIL_CALL``) hands the *same* skb to the next program, and ``BPF_PROG_TEST_RUN`` with
``repeat`` runs the program again on the same skb (net/bpf/test_run.c ``bpf_test_run``), so in
both cases LD_ABS/LD_IND -- plain, ``SKF_NET_OFF`` and ``SKF_LL_OFF`` relative -- must read the
packet as the earlier helpers left it.  Kernel and netstack (interpreter and JIT) must give the
same retval, data_out and ctx_out.  Skips, printing why, without root / bpf(2).
"""
from __future__ import annotations

import struct
from typing import Any

import pytest

from netstack.bpf import context as C
from netstack.bpf import maps as M
from netstack.bpf import progs as P
from netstack.bpf.asm import assemble
from netstack.bpf.kernel import KernelBpfError, KMap, KProg, available

REASON = available()
if REASON is not None:
    print(f"skb one-object kernel differential skipped: {REASON}")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"bpf(2) unusable here: {REASON}")

TC = C.BPF_PROG_TYPE_SCHED_CLS
DST, SRC = bytes.fromhex("020000000002"), bytes.fromhex("020000000001")
IPV4 = bytes.fromhex("45000028000140004011") + bytes(2) + bytes([10, 0, 0, 1, 10, 0, 0, 2]) + bytes(20)
CTX = bytes(C.SK_BUFF_SIZE)


def frame(*tags: tuple[int, int], ethertype: int = 0x0800) -> bytes:
    out = DST + SRC
    for tpid, tci in tags:
        out += struct.pack(">HH", tpid, tci)
    return out + struct.pack(">H", ethertype) + IPV4


PUSH = "mov %r1, %r6\nmov %r2, 0x0081\nmov %r3, {tci}\ncall 18\n"
POP = "mov %r1, %r6\ncall 19\n"
#: r0 = (LD_ABS h 12) << 16 | (byte at the network header) << 8 | (byte 14 of the MAC header);
#: also skb->len into cb[0] so ctx_out shows the length the program saw.
READ = """ldabsh 12
mov %r8, %r0
lsh %r8, 16
ldabsb -1048576
lsh %r0, 8
or %r8, %r0
ldabsb -2097138
or %r8, %r0
ldxw %r1, [%r6+0]
stxw [%r6+48], %r1
mov %r0, %r8
exit
"""
#: the tail-call target: only reads
TARGET = "mov %r6, %r1\n" + READ
#: the first program: helpers, then a tail call to slot 0 (falling through returns 77)
FIRST = "mov %r6, %r1\n{body}mov %r1, %r6\nlddw %r2, {{pa}}, 1\nmov %r3, 0\ncall 12\nmov %r0, 77\nexit\n"

CASES: list[tuple[str, str, bytes]] = [
    ("pop_in_packet_tag", POP, frame((0x8100, 0x0123))),
    ("pop_qinq_inner_out_of_band", POP, frame((0x88A8, 0x0064), (0x8100, 0x00C8))),
    ("pop_twice_qinq", POP + POP, frame((0x88A8, 0x0064), (0x8100, 0x00C8))),
    ("push_over_out_of_band_tag", PUSH.format(tci=0x0ABC) + PUSH.format(tci=0x0DEF), frame()),
    ("push_on_tagged_frame", PUSH.format(tci=0x0ABC) + PUSH.format(tci=0x0DEF), frame((0x8100, 0x0042))),
    ("untouched", "", frame()),
]


def _outcome(fn: Any) -> Any:
    try:
        return ("ok", fn())
    except (KernelBpfError, P.TestRunError) as exc:
        return ("errno", exc.errno)


def _kernel(body: str, data: bytes, repeat: int = 1) -> Any:
    with KMap(M.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 1) as kpa, KProg(TC, assemble(TARGET)) as k2:
        kpa.update(struct.pack("<I", 0), struct.pack("<I", k2.fd))
        with KProg(TC, assemble(FIRST.format(body=body).format(pa=kpa.fd))) as k1:
            return _outcome(lambda: tuple(k1.test_run(data, repeat=repeat, ctx=CTX,
                                                      ctx_out_size=C.SK_BUFF_SIZE)[i] for i in (0, 1, 3)))


def _model(body: str, data: bytes, jit: bool, repeat: int = 1) -> Any:
    pa = P.new_map(M.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 1)
    progs = [P.Program(TC, assemble(TARGET)), P.Program(TC, assemble(FIRST.format(body=body).format(pa=pa.fd)))]
    if jit:
        from netstack.bpf.jit import jit_program
        for p in progs:
            jit_program(p)
    pa.update(struct.pack("<I", 0), progs[0])

    def go() -> tuple[int, bytes, bytes]:
        r = P.prog_test_run_full(progs[1], data, repeat, ctx=CTX)
        return r.retval, r.data_out, r.ctx_out
    return _outcome(go)


@pytest.mark.parametrize("jit", [False, True], ids=["interp", "jit"])
@pytest.mark.parametrize("name,body,data", CASES, ids=[c[0] for c in CASES])
def test_tail_call_sees_the_packet_the_helpers_left(name: str, body: str, data: bytes, jit: bool) -> None:
    want = _kernel(body, data)
    assert want[0] == "ok" and want[1][0] != 77  # the tail call happened
    assert _model(body, data, jit) == want


@pytest.mark.parametrize("name,body,data", CASES[:4], ids=[c[0] for c in CASES[:4]])
def test_repeat_runs_on_the_skb_the_previous_run_left(name: str, body: str, data: bytes) -> None:
    want = _kernel(body, data, repeat=3)
    assert _model(body, data, False, repeat=3) == want


def test_the_cases_really_move_the_headers() -> None:
    """Kernel facts the cases rest on, so a model that ignores the helpers cannot agree.

    After popping the in-packet tag, LD_ABS 12 reads the IPv4 EtherType and the network header
    is the IPv4 header.  After a push over an out-of-band tag (``skb_vlan_push`` writes the old
    tag into the packet), this kernel reads the *inserted TCI* at ``SKF_NET_OFF``: the network
    header moved back with the 4 new bytes (``skb->network_header -= VLAN_HLEN``), it did not
    stay on the IPv4 header (the older ``mac_len += VLAN_HLEN`` variant would read 0x45)."""
    def r0(name: str) -> int:
        body, data = next((c[1], c[2]) for c in CASES if c[0] == name)
        res = _kernel(body, data)
        assert res[0] == "ok"
        return res[1][0]

    assert r0("pop_in_packet_tag") == 0x0800_45_45
    assert r0("push_over_out_of_band_tag") == 0x8100_0A_0A
    assert r0("untouched") == 0x0800_45_45
