"""Helpers run from programs in the model (kernel agreement is in test_kernel_differential.py)."""
from __future__ import annotations

import errno as E
import struct

import pytest
from hypothesis import given, settings, strategies as st

from netstack.bpf import context as C
from netstack.bpf import helpers as H
from netstack.bpf import maps as M
from netstack.bpf import progs as P
from netstack.bpf.asm import assemble
from netstack.bpf.errors import BpfRuntimeError, BpfVerifyError, NotSupported
from netstack.bpf.insn import Insn
from netstack.packet.checksum import ip_compute_csum

u32 = struct.Struct("<I").pack
FRAME = bytes.fromhex("ffffffffffff020000000001") + b"\x08\x00" + bytes(range(50))


def run(prog_type: int, src: str, data: bytes = FRAME, env: P.RunEnv | None = None) -> P.TestRunResult:
    return P.prog_test_run_full(P.Program(prog_type, assemble(src)), data, env=env)


# --- checksum arithmetic --------------------------------------------------------------------------
def _swap16(v: int) -> int:
    return ((v & 0xFF) << 8) | (v >> 8)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64).filter(lambda b: len(b) % 2 == 0))
def test_csum_partial_folds_to_the_internet_checksum(data: bytes) -> None:
    # Little-endian words sum to the byte-swapped big-endian (RFC 1071) sum.
    assert H.csum_fold(H.csum_partial(data)) == _swap16(ip_compute_csum(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=20, max_size=20), st.integers(0, 9), st.integers(0, 0xFFFF))
def test_csum_replace2_keeps_ipv4_header_valid(hdr: bytes, word: int, new: int) -> None:
    h = bytearray(hdr)
    h[10:12] = b"\0\0"
    h[10:12] = ip_compute_csum(bytes(h)).to_bytes(2, "big")
    if word == 5:
        return  # the checksum field itself
    old = int.from_bytes(h[2 * word:2 * word + 2], "little")
    h[2 * word:2 * word + 2] = new.to_bytes(2, "little")
    cur = int.from_bytes(h[10:12], "little")
    h[10:12] = H.csum_replace2(cur, old, new).to_bytes(2, "little")
    assert ip_compute_csum(bytes(h)) in (0, 0xFFFF)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=20, max_size=20), st.integers(0, 4), st.integers(0, 0xFFFFFFFF))
def test_csum_replace4_and_by_diff_agree(hdr: bytes, word: int, new: int) -> None:
    if word == 2:
        return  # bytes 8..11 hold the checksum
    h = bytearray(hdr)
    h[10:12] = b"\0\0"
    cur = ip_compute_csum(bytes(h)).to_bytes(2, "big")
    old = int.from_bytes(h[4 * word:4 * word + 4], "little")
    s = int.from_bytes(cur, "little")
    r4 = H.csum_replace4(s, old, new)
    diff = H.csum_add(~old & 0xFFFFFFFF, new)
    assert H.csum_replace_by_diff(s, diff) == r4


def test_csum_from32to16() -> None:
    assert H.csum_from32to16(0x0001FFFF) == 0x0001
    assert H.csum_from32to16(0xFFFFFFFD) == 0xFFFD


# --- helpers through programs ------------------------------------------------------------------------
def test_ktime_prandom_cpu_and_trace_printk() -> None:
    env = P.RunEnv(cpu=1, seed=42)
    src = """stdw [%r10-16], 0
lddw %r1, 0x0a7825206425
stxdw [%r10-16], %r1
call 5
mov %r6, %r0
call 5
sub %r0, %r6
mov %r7, %r0
call 8
mov %r8, %r0
mov %r1, %r10
add %r1, -16
mov %r2, 8
mov %r3, %r7
mov %r4, 255
call 6
mov %r0, %r8
exit"""
    res = run(C.BPF_PROG_TYPE_XDP, src, env=env)
    assert res.retval == 1
    assert env.trace_log == ["1000 ff\n"]
    a = run(C.BPF_PROG_TYPE_XDP, "call 7\nexit", env=P.RunEnv(seed=3)).retval
    b = run(C.BPF_PROG_TYPE_XDP, "call 7\nexit", env=P.RunEnv(seed=3)).retval
    assert a == b


def test_trace_printk_rejects_bad_formats() -> None:
    four = """lddw %r1, 0x6425642564256425
stxdw [%r10-16], %r1
stdw [%r10-8], 0
mov %r1, %r10
add %r1, -16
mov %r2, 9
call 6
exit"""
    assert run(C.BPF_PROG_TYPE_XDP, four).retval == (-E.EINVAL) & 0xFFFFFFFF  # 4 conversions
    unterminated = four.replace("mov %r2, 9", "mov %r2, 8")
    assert run(C.BPF_PROG_TYPE_XDP, unterminated).retval == (-E.EINVAL) & 0xFFFFFFFF
    three = four.replace("0x6425642564256425", "0x0064256425642564")
    env = P.RunEnv()
    assert run(C.BPF_PROG_TYPE_XDP, three.replace("mov %r2, 9", "mov %r2, 8"), env=env).retval == 4
    assert env.trace_log == ["d000"]


def _refused_at_load(prog_type: int, src: str, errno: int, line: str) -> list[Insn]:
    """The verifier refuses ``src`` as the kernel 6.18 does: same errno, same log line."""
    code = assemble(src)
    with pytest.raises(BpfVerifyError) as ei:
        P.Program(prog_type, code)
    assert ei.value.errno == errno and ei.value.message == line and line in ei.value.log.splitlines()
    return code


def test_helper_not_available_to_program_type() -> None:
    code = _refused_at_load(C.BPF_PROG_TYPE_SCHED_CLS, "mov %r2, 0\ncall 44\nexit", E.EINVAL,
                            "program of this type cannot use helper bpf_xdp_adjust_head#44")
    # verifier=False on purpose: the per-type helper table still refuses the call at run time.
    with pytest.raises(BpfRuntimeError, match="helper 44 is not available"):
        P.prog_test_run(P.Program(C.BPF_PROG_TYPE_SCHED_CLS, code, verifier=False), FRAME)


def test_fib_lookup_needs_a_fib() -> None:
    src = "mov %r2, %r10\nadd %r2, -64\nmov %r3, 64\nmov %r4, 0\ncall 69\nexit"
    with pytest.raises(NotSupported, match="bpf_fib_lookup"):
        run(C.BPF_PROG_TYPE_XDP, src)
    seen: list[int] = []

    def fib(params: bytearray, flags: int, ctx: object) -> int:
        seen.append(len(params))
        params[0] = 2
        return 0
    assert run(C.BPF_PROG_TYPE_XDP, src, env=P.RunEnv(fib_lookup=fib)).retval == 0 and seen == [64]


def test_redirect_and_redirect_map_record_target() -> None:
    env = P.RunEnv()
    assert run(C.BPF_PROG_TYPE_XDP, "mov %r1, 3\nmov %r2, 0\ncall 23\nexit", env=env).retval == C.XDP_REDIRECT
    assert env.redirect == ("ifindex", 3, 0)
    xsk = P.new_map(M.BPF_MAP_TYPE_XSKMAP, 4, 4, 4)
    xsk.update(u32(2), M.XskSocket())
    src = "lddw %r1, {fd}, 1\nmov %r2, {k}\nmov %r3, 1\ncall 51\nexit"
    env = P.RunEnv()
    assert run(C.BPF_PROG_TYPE_XDP, src.format(fd=xsk.fd, k=2), env=env).retval == C.XDP_REDIRECT
    assert env.redirect == ("map", xsk, 2)
    assert run(C.BPF_PROG_TYPE_XDP, src.format(fd=xsk.fd, k=3)).retval == C.XDP_DROP
    with pytest.raises(NotSupported):
        run(C.BPF_PROG_TYPE_XDP, "lddw %r1, {fd}, 1\nmov %r2, 0\nmov %r3, 8\ncall 51\nexit".format(fd=xsk.fd))


def test_perf_event_output_records_sample_and_packet_bytes() -> None:
    pe = P.new_map(M.BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, 2)
    ev = M.PerfEvent()
    pe.update(u32(1), ev)
    src = """mov %r6, %r1
stdw [%r10-8], 0x61
mov %r1, %r6
lddw %r2, {fd}, 1
lddw %r3, 0x0000000400000001
mov %r4, %r10
add %r4, -8
mov %r5, 2
call 25
exit""".format(fd=pe.fd)
    assert run(C.BPF_PROG_TYPE_XDP, src).retval == 0
    assert ev.samples == [b"a\0" + FRAME[:4]]
    empty = src.replace("0x0000000400000001", "0x0000000000000000")
    assert run(C.BPF_PROG_TYPE_XDP, empty).retval == (-E.ENOENT) & 0xFFFFFFFF


def test_percpu_lookup_uses_the_run_cpu() -> None:
    m = P.new_map(M.BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 1, ncpus=4)
    src = """stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, {fd}, 1
call 1
stw [%r0+0], 77
mov %r0, 0
exit""".format(fd=m.fd)
    run(C.BPF_PROG_TYPE_XDP, src, env=P.RunEnv(cpu=2))
    assert m.lookup(u32(0)) == bytes(16) + u32(77) + bytes(4) + bytes(8)


def test_ringbuf_sample_pointer_dies_after_submit() -> None:
    rb = P.new_map(M.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096)
    src = """lddw %r1, {fd}, 1
mov %r2, 8
mov %r3, 0
call 131
jeq %r0, 0, out
mov %r6, %r0
stdw [%r6+0], 5
mov %r1, %r6
mov %r2, 0
call 132
stdw [%r6+0], 6
out:
exit""".format(fd=rb.fd)
    code = _refused_at_load(C.BPF_PROG_TYPE_XDP, src, E.EACCES, "R6 invalid mem access 'scalar'")
    # verifier=False on purpose: the submitted sample's region is unmapped, so the interpreter
    # faults on the late store and the record keeps the value written before the submit.
    with pytest.raises(BpfRuntimeError):
        P.prog_test_run(P.Program(C.BPF_PROG_TYPE_XDP, code, verifier=False), FRAME)
    assert isinstance(rb, M.RingBuf) and rb.consume() == [struct.pack("<Q", 5)]


def test_map_helpers_reject_non_map_pointers() -> None:
    code = _refused_at_load(C.BPF_PROG_TYPE_XDP, "mov %r1, %r10\nmov %r2, %r10\ncall 1\nexit", E.EACCES,
                            "R1 type=fp expected=map_ptr")
    # verifier=False on purpose: the helper itself checks that R1 is a map pointer.
    with pytest.raises(BpfRuntimeError, match="not a (map )?pointer"):
        P.prog_test_run(P.Program(C.BPF_PROG_TYPE_XDP, code, verifier=False), FRAME)
