"""Program types, contexts and BPF_PROG_TEST_RUN in the model."""
from __future__ import annotations

import errno as E
import struct

import pytest

from netstack.bpf import context as C
from netstack.bpf import maps as M
from netstack.bpf import progs as P
from netstack.bpf.asm import assemble
from netstack.bpf.errors import BpfRuntimeError, BpfVerifyError, NotSupported

FRAME = bytes.fromhex("000000000000020000000001") + b"\x08\x00" + bytes(range(1, 47))


def prog(prog_type: int, src: str) -> P.Program:
    return P.Program(prog_type, assemble(src))


def test_struct_offset_goldens() -> None:
    assert C.XDP_MD == {"data": 0, "data_end": 4, "data_meta": 8, "ingress_ifindex": 12, "rx_queue_index": 16,
                        "egress_ifindex": 20}
    golden = {"len": 0, "pkt_type": 4, "mark": 8, "queue_mapping": 12, "protocol": 16, "vlan_present": 20,
              "vlan_tci": 24, "vlan_proto": 28, "priority": 32, "ingress_ifindex": 36, "ifindex": 40,
              "tc_index": 44, "cb": 48, "hash": 68, "tc_classid": 72, "data": 76, "data_end": 80, "napi_id": 84,
              "family": 88, "remote_ip4": 92, "local_ip4": 96, "remote_ip6": 100, "local_ip6": 116,
              "remote_port": 132, "local_port": 136, "data_meta": 140, "flow_keys": 144, "tstamp": 152,
              "wire_len": 160, "gso_segs": 164, "sk": 168, "gso_size": 176}
    assert {k: C.SK_BUFF[k][0] for k in golden} == golden


def test_program_load_runs_the_structural_verifier() -> None:
    with pytest.raises(BpfVerifyError, match="R2 !read_ok"):
        prog(C.BPF_PROG_TYPE_XDP, "mov %r0, %r2\nexit")
    with pytest.raises(NotSupported, match="program type 2"):
        P.Program(2, assemble("mov %r0, 0\nexit"))


@pytest.mark.parametrize("src", [
    "ldxh %r0, [%r1+0]\nexit",          # xdp_md: 4-byte reads only
    "ldxw %r0, [%r1+24]\nexit",         # past the struct
    "stw [%r1+12], 1\nmov %r0, 0\nexit",  # read-only
    "ldxw %r0, [%r1+20]\nexit",         # egress_ifindex: devmap programs only
])
def test_xdp_ctx_access_rules(src: str) -> None:
    _refused_at_load_and_at_run_time(C.BPF_PROG_TYPE_XDP, src)


def _refused_at_load_and_at_run_time(prog_type: int, src: str) -> None:
    """The verifier refuses the access at load as the kernel does (EACCES, ``invalid bpf_context
    access off=N size=M`` in the log); unverified, the interpreter refuses it at run time."""
    code = assemble(src)
    ins = code[0]
    size = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}[ins.opcode & 0x18]
    line = f"invalid bpf_context access off={ins.off} size={size}"
    with pytest.raises(BpfVerifyError) as ei:
        P.Program(prog_type, code)
    assert ei.value.errno == E.EACCES and ei.value.message == line and line in ei.value.log.splitlines()
    # verifier=False on purpose: this checks the interpreter's own run-time safety net.
    with pytest.raises(BpfRuntimeError, match="invalid bpf_context access"):
        P.prog_test_run(P.Program(prog_type, code, verifier=False), FRAME)


@pytest.mark.parametrize("prog_type,src", [
    (C.BPF_PROG_TYPE_SOCKET_FILTER, "ldxw %r0, [%r1+76]\nexit"),   # no data pointer for socket filters
    (C.BPF_PROG_TYPE_SOCKET_FILTER, "stw [%r1+8], 1\nmov %r0, 0\nexit"),  # mark is not writable there
    (C.BPF_PROG_TYPE_SCHED_CLS, "stw [%r1+0], 1\nmov %r0, 0\nexit"),   # len is never writable
    (C.BPF_PROG_TYPE_SCHED_CLS, "ldxw %r0, [%r1+92]\nexit"),           # remote_ip4: not for tc
    (C.BPF_PROG_TYPE_SCHED_CLS, "ldxh %r0, [%r1+76]\nexit"),           # data: u32 only
    (C.BPF_PROG_TYPE_SCHED_CLS, "ldxw %r0, [%r1+154]\nexit"),          # misaligned
    (C.BPF_PROG_TYPE_SCHED_CLS, "ldxw %r0, [%r1+152]\nexit"),          # tstamp: u64 only
    (C.BPF_PROG_TYPE_SCHED_CLS, "ldxdw %r0, [%r1+64]\nexit"),          # crosses the end of cb[]
    (C.BPF_PROG_TYPE_SCHED_CLS, "stdw [%r1+64], 0\nmov %r0, 0\nexit"),  # so does this write
    (C.BPF_PROG_TYPE_SCHED_CLS, "ldxw %r0, [%r1+168]\nexit"),         # sk: u64 only
])
def test_skb_ctx_access_rules(prog_type: int, src: str) -> None:
    _refused_at_load_and_at_run_time(prog_type, src)


def test_skb_sk_pointer_is_not_supported() -> None:
    with pytest.raises(NotSupported, match="__sk_buff.sk"):
        P.prog_test_run(prog(C.BPF_PROG_TYPE_SCHED_CLS, "ldxdw %r0, [%r1+168]\nexit"), FRAME)


def test_skb_narrow_loads_and_tc_writes() -> None:
    ctx = bytearray(C.SK_BUFF_SIZE)
    struct.pack_into("<I", ctx, 8, 0x11223344)
    p = prog(C.BPF_PROG_TYPE_SCHED_CLS, """ldxb %r0, [%r1+9]
ldxh %r2, [%r1+10]
lsh %r2, 8
or %r0, %r2
stw [%r1+8], 0x55
stb [%r1+49], 0x7f
stw [%r1+12], 0xffff
exit""")
    res = P.prog_test_run_full(p, FRAME, ctx=bytes(ctx))
    assert res.retval == 0x33 | (0x1122 << 8)
    assert struct.unpack_from("<I", res.ctx_out, 8)[0] == 0x55
    assert res.ctx_out[49] == 0x7F


def test_skb_view_of_the_frame() -> None:
    fields = {"len": 0, "protocol": 16, "pkt_type": 4, "ifindex": 40, "data_len": -1}
    got = {}
    for name, off in fields.items():
        src = (f"ldxw %r0, [%r1+{off}]\nexit" if off >= 0 else
               "ldxw %r2, [%r1+76]\nldxw %r0, [%r1+80]\nsub %r0, %r2\nexit")
        got[name] = P.prog_test_run(prog(C.BPF_PROG_TYPE_SCHED_CLS, src), FRAME)[0]
    assert got == {"len": len(FRAME), "protocol": 0x0008, "pkt_type": C.PACKET_HOST, "ifindex": 1,
                   "data_len": len(FRAME)}
    sf = P.prog_test_run(prog(C.BPF_PROG_TYPE_SOCKET_FILTER, "ldxw %r0, [%r1+0]\nexit"), FRAME)
    assert sf[0] == len(FRAME) - 14


def test_socket_filter_ld_abs_counts_from_the_network_header_and_zeroes_l2() -> None:
    retval, data_out, _ = P.prog_test_run(prog(C.BPF_PROG_TYPE_SOCKET_FILTER, "mov %r6, %r1\nldabsb 0\nexit"),
                                          FRAME)
    assert retval == FRAME[14]
    assert data_out == bytes(14) + FRAME[14:]
    oob = prog(C.BPF_PROG_TYPE_SOCKET_FILTER, "mov %r6, %r1\nldabsw 1000\nmov %r0, 9\nexit")
    assert P.prog_test_run(oob, FRAME)[0] == 0


def test_repeat_does_not_reset_the_packet() -> None:
    p = prog(C.BPF_PROG_TYPE_XDP, """ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r4, %r2
add %r4, 1
jgt %r4, %r3, out
ldxb %r5, [%r2+0]
add %r5, 1
stxb [%r2+0], %r5
out:
mov %r0, 2
exit""")
    retval, data_out, duration = P.prog_test_run(p, FRAME, repeat=5)
    assert retval == 2 and data_out[0] == 5 and data_out[1:] == FRAME[1:] and duration >= 0


def test_test_run_errors() -> None:
    p = prog(C.BPF_PROG_TYPE_XDP, "mov %r0, 2\nexit")
    with pytest.raises(P.TestRunError) as exc:
        P.prog_test_run(p, FRAME[:13])
    assert exc.value.errno == E.EINVAL
    with pytest.raises(P.TestRunError) as exc:
        P.prog_test_run_full(p, FRAME, data_size_out=8)
    assert exc.value.errno == E.ENOSPC and exc.value.data_out == FRAME[:8] and exc.value.size_out == len(FRAME)
    with pytest.raises(P.TestRunError) as exc:
        P.prog_test_run_full(p, FRAME, ctx=bytes(24) + b"\1")
    assert exc.value.errno == E.E2BIG
    with pytest.raises(NotSupported, match="multi-buffer"):
        P.prog_test_run(p, bytes(4000))
    tc = prog(C.BPF_PROG_TYPE_SCHED_CLS, "mov %r0, 0\nexit")
    with pytest.raises(P.TestRunError) as exc:
        P.prog_test_run_full(tc, FRAME, ctx=struct.pack("<I", 1) + bytes(188))
    assert exc.value.errno == E.EINVAL


def test_run_xdp_helper_and_adjust_head() -> None:
    p = prog(C.BPF_PROG_TYPE_XDP, "mov %r2, 14\ncall 44\nmov %r0, 2\nexit")
    assert p.run_xdp(FRAME) == (2, FRAME[14:])


def test_tail_call_chain_and_limit() -> None:
    pa = P.new_map(M.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 2)
    body = "lddw %r2, {fd}, 1\nmov %r3, {idx}\ncall 12\nmov %r0, {ret}\nexit"
    leaf = prog(C.BPF_PROG_TYPE_XDP, "mov %r0, 3\nexit")
    root = prog(C.BPF_PROG_TYPE_XDP, body.format(fd=pa.fd, idx=1, ret=1))
    assert P.prog_test_run(root, FRAME)[0] == 1  # empty slot: falls through
    pa.update(struct.pack("<I", 1), leaf)
    assert P.prog_test_run(root, FRAME)[0] == 3
    loop = prog(C.BPF_PROG_TYPE_XDP, body.format(fd=pa.fd, idx=0, ret=7))
    pa.update(struct.pack("<I", 0), loop)
    env = P.RunEnv()
    assert P.prog_test_run_full(loop, FRAME, env=env).retval == 7
    assert env.tail_calls == 33
    tc = prog(C.BPF_PROG_TYPE_SCHED_CLS, "mov %r0, 0\nexit")
    pa.update(struct.pack("<I", 1), tc)
    with pytest.raises(BpfRuntimeError, match="another type"):
        P.prog_test_run(root, FRAME)


def test_map_value_pseudo_lddw() -> None:
    g = P.new_map(M.BPF_MAP_TYPE_ARRAY, 4, 8, 1)
    p = prog(C.BPF_PROG_TYPE_XDP, "lddw %r1, {v}, 2\nstw [%r1+0], 9\nmov %r0, 2\nexit".format(
        v=g.fd | (4 << 32)))
    P.prog_test_run(p, FRAME)
    assert g.lookup(bytes(4)) == bytes(4) + struct.pack("<I", 9)
    big = P.new_map(M.BPF_MAP_TYPE_ARRAY, 4, 8, 2)
    src = f"lddw %r1, {big.fd}, 2\nmov %r0, 2\nexit"
    with pytest.raises(BpfVerifyError) as ei:  # resolve_pseudo_ldimm64: -ENOTSUPP (524), nothing simulated
        prog(C.BPF_PROG_TYPE_XDP, src)
    line = "invalid access to map value pointer, value_size=8 off=0"
    assert ei.value.errno == 524 and ei.value.message == line
    assert ei.value.log.splitlines()[:2] == [line, "processed 0 insns (limit 1000000) max_states_per_insn 0 "
                                             "total_states 0 peak_states 0 mark_read 0"]
    # verifier=False on purpose: the interpreter's own lddw resolution refuses it too.
    with pytest.raises(BpfRuntimeError, match="1-element array"):
        P.Program(C.BPF_PROG_TYPE_XDP, assemble(src), verifier=False)


def test_run_tc_for_a_datapath_hook() -> None:
    p = prog(C.BPF_PROG_TYPE_SCHED_CLS, """stw [%r1+8], 42
mov %r6, %r1
stdw [%r10-8], 0
mov %r2, 0
mov %r3, %r10
add %r3, -8
mov %r4, 6
mov %r5, 0
call 9
mov %r0, -1
exit""")
    verdict, frame, fields = p.run_tc(b"\xaa" * 6 + FRAME[6:])
    assert verdict == C.TC_ACT_UNSPEC and frame == bytes(6) + FRAME[6:] and fields.mark == 42
    assert fields.pkt_type == C.PACKET_OTHERHOST
    with pytest.raises(NotSupported):
        prog(C.BPF_PROG_TYPE_XDP, "mov %r0, 2\nexit").run_tc(FRAME)


@pytest.mark.parametrize("prog_type", [C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_PROG_TYPE_SOCKET_FILTER])
def test_skb_test_run_needs_the_whole_ip_header(prog_type: int) -> None:
    # Measured on 6.18 (kernel agreement: test_kernel_differential.py): an IPv4 EtherType needs
    # 14 + 20 bytes, IPv6 14 + 40; other EtherTypes run from a bare Ethernet header on.
    p = prog(prog_type, "mov %r0, 7\nexit")
    eth = bytes(6) + bytes.fromhex("020000000001")
    for ethertype, need in (("0800", 34), ("86dd", 54)):
        with pytest.raises(P.TestRunError) as ei:
            P.prog_test_run(p, eth + bytes.fromhex(ethertype) + bytes(need - 15))
        assert ei.value.errno == E.EINVAL
        assert P.prog_test_run(p, eth + bytes.fromhex(ethertype) + bytes(need - 14))[0] == 7
    for ethertype in ("8100", "0806", "1234", "05dc"):
        assert P.prog_test_run(p, eth + bytes.fromhex(ethertype))[0] == 7
    # the rule sits after the ifindex lookup (ENODEV) and before the ctx_in field checks
    ctx = bytearray(C.SK_BUFF_SIZE)
    struct.pack_into("<I", ctx, C.SK_BUFF["ifindex"][0], 77)
    with pytest.raises(P.TestRunError) as ei:
        P.prog_test_run_full(p, eth + b"\x08\x00", ctx=bytes(ctx))
    assert ei.value.errno == E.ENODEV
