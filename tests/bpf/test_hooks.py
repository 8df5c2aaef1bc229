"""eBPF hooks in the datapath (netstack/core/hooks.py) end to end on veth topologies built
with ``netstack.Stack`` and scenario text: generic XDP (pass/drop/tx/redirect/aborted, head
adjustment, JIT batch mode), tc clsact ingress/egress (drop, mark rewrite, redirect),
packet-socket filters, tracing programs on ``kfree_skb``.

Until /tmp/bpf_hooks.patch is applied to netstack/core/dev.py the hooks are wired in by
``hooks_wiring.wire`` (monkeypatch); afterwards the same tests run on the real call sites."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from netstack.api import Stack
from netstack.bpf import context as C
from netstack.bpf import loader
from netstack.bpf.asm import assemble
from netstack.bpf.progs import Program
from netstack.core import hooks
from .hooks_wiring import wire
from .progs.frames import ipv4, ipv6, obj

HOOKS_O = str(Path(__file__).parent / "hook_progs" / "hooks.o")
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")

TOPO = """
ip netns add a
ip netns add b
ip netns add c
ip -n a link add v0 address 02:00:00:00:00:01 type veth peer name v1 address 02:00:00:00:00:02 netns b
ip -n b link add r0 index 20 address 02:00:00:00:00:03 type veth peer name r1 address 02:00:00:00:00:04 netns c
ip -n a link set v0 up
ip -n b link set v1 up
ip -n b link set r0 up
ip -n c link set r1 up
"""


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Stack:
    wire(monkeypatch)
    s = Stack(trace=True)
    s.run_script(TOPO)
    return s


def dev(s: Stack, ns: str, name: str):  # type: ignore[no-untyped-def]
    return s.world.netns(ns).get(name)


def to_b(frame: bytes) -> bytes:
    """Address a test frame from a:v0 to b:v1."""
    return MAC_B + MAC_A + frame[12:]


def forced(section: str, prog_type: int = C.BPF_PROG_TYPE_XDP):  # type: ignore[no-untyped-def]
    """Load the first program of ``section`` of hooks.o with its type forced, as ip/tc do
    (the XDP sections other than ``xdp`` have names libbpf does not know)."""
    from types import SimpleNamespace

    from netstack.cli.iplink_xdp import load_prog
    return load_prog(SimpleNamespace(cwd="/"), HOOKS_O, section, prog_type, jit=False)


def u64(m, key: int) -> int:  # type: ignore[no-untyped-def]
    return struct.unpack("<Q", m.lookup(struct.pack("<I", key)))[0]


@pytest.fixture(autouse=True)
def _no_leaks():  # type: ignore[no-untyped-def]
    """Every test leaves the static keys as it found them (attachments die with the world,
    so the counters are reset explicitly)."""
    keys = (hooks.generic_xdp_needed, hooks.tcx_ingress_needed, hooks.tcx_egress_needed)
    yield
    hooks.generic_xdp_needed, hooks.tcx_ingress_needed, hooks.tcx_egress_needed = keys


# ----------------------------------------------------------------------------------- XDP
@pytest.mark.parametrize("jit", [False, True])
def test_xdp_pass_and_drop(stack: Stack, jit: bool) -> None:
    o = loader.load_object(obj("xdp_count"))
    prog = o.program("xdp")
    if jit:
        from netstack.bpf.jit import jit_program
        jit_program(prog)
    att = hooks.xdp_attach(dev(stack, "b", "v1"), prog)
    assert (att.batch is not None) == jit
    cap = stack.capture("b", "v1")
    frames = [to_b(ipv4(17, ttl=64)), to_b(ipv4(17, ttl=1)), to_b(ipv4(6, ttl=1)), to_b(ipv6())]
    stack.inject("a", "v0", frames)
    # TTL <= 1 dropped by the program before the taps: the capture sees the other two
    assert [f.data for f in cap] == [frames[0], frames[3]]
    assert stack.drops("b")["XDP"] == 2
    assert u64(o.maps["proto_count"], 17) == 2 and u64(o.maps["proto_count"], 6) == 1
    assert u64(o.maps["proto_count"], 58) == 1
    assert att.actions == {C.XDP_PASS: 2, C.XDP_DROP: 2}
    assert sum("bpf_prog_run_xdp XDP_DROP" in ln for ln in stack.trace_lines) == 2
    hooks.xdp_detach(dev(stack, "b", "v1"))
    stack.inject("a", "v0", [frames[1]])
    assert len(cap) == 3 and stack.drops("b")["XDP"] == 2


@pytest.mark.parametrize("jit", [False, True])
def test_xdp_tx_swaps_and_sends_back(stack: Stack, jit: bool) -> None:
    o = loader.load_object(HOOKS_O, only=["xdp_tx"])
    prog = o.program("xdp_tx")
    if jit:
        from netstack.bpf.jit import jit_program
        jit_program(prog)
    hooks.xdp_attach(dev(stack, "b", "v1"), prog)
    back = stack.capture("a", "v0")
    seen_b = stack.capture("b", "v1")
    f = to_b(ipv4(17))
    stack.inject("a", "v0", [f, f])
    assert [x.data for x in back] == [MAC_A + MAC_B + f[12:]] * 2
    assert seen_b == []  # XDP_TX bypasses the stack on b
    assert u64(o.maps["xdp_seen"], 0) == 2
    assert dev(stack, "b", "v1").stats.tx_packets == 2


def test_xdp_redirect_ifindex(stack: Stack) -> None:
    o = forced("xdp_redirect")
    hooks.xdp_attach(dev(stack, "b", "v1"), o.prog)
    out_c = stack.capture("c", "r1")
    v4, v6 = to_b(ipv4(17)), to_b(ipv6())
    arp = MAC_B + MAC_A + b"\x08\x06" + bytes(28)
    stack.inject("a", "v0", [v4, v6, arp])
    assert [x.data for x in out_c] == [v4]  # redirected as is out of b:r0 (ifindex 20)
    assert stack.drops("b")["XDP"] == 1      # the IPv6 frame
    assert [u64(o.maps["xdp_seen"], k) for k in (1, 2, 3)] == [1, 1, 1]
    assert any("xdp_redirect" in ln and "to_ifindex=20" in ln for ln in stack.trace_lines)


def test_xdp_redirect_to_down_device_is_an_xdp_drop(stack: Stack) -> None:
    o = forced("xdp_redirect")
    hooks.xdp_attach(dev(stack, "b", "v1"), o.prog)
    stack.command("ip -n b link set r0 down")
    stack.inject("a", "v0", [to_b(ipv4(17))])
    assert stack.drops("b")["XDP"] == 1
    assert any("xdp_redirect_err" in ln and "ENETDOWN" in ln for ln in stack.trace_lines)


def test_xdp_aborted_traces_exception(stack: Stack) -> None:
    prog = Program(C.BPF_PROG_TYPE_XDP, assemble("mov %r0, 0\nexit"), name="abort")
    hooks.xdp_attach(dev(stack, "b", "v1"), prog)
    stack.inject("a", "v0", [to_b(ipv4(17))])
    assert stack.drops("b")["XDP"] == 1
    assert any("xdp_exception XDP_ABORTED" in ln for ln in stack.trace_lines)


def test_xdp_fault_is_a_counted_drop(stack: Stack) -> None:
    # a load through NULL: the kernel verifier would refuse it; here it is a drop
    prog = Program(C.BPF_PROG_TYPE_XDP, assemble("mov %r1, 0\nldxw %r0, [%r1]\nexit"),
                   verifier=False)
    att = hooks.xdp_attach(dev(stack, "b", "v1"), prog)
    stack.inject("a", "v0", [to_b(ipv4(17))])
    assert att.faults == 1 and stack.drops("b")["XDP"] == 1


def test_xdp_adjust_head_is_reflected_in_the_skb(stack: Stack) -> None:
    o = forced("xdp_head")
    hooks.xdp_attach(dev(stack, "b", "v1"), o.prog)
    cap = stack.capture("b", "v1")
    inner = to_b(ipv4(17, dst=bytes([10, 0, 0, 2])))
    tagged = inner[:12] + b"\x88\xb5\xab\xcd" + inner[12:]
    stack.inject("a", "v0", [tagged])
    assert [x.data for x in cap] == [inner]
    # the re-parsed skb is IPv4 now: it reached ip_rcv_core
    assert any("ip_rcv_core" in ln and "netns=b" in ln for ln in stack.trace_lines)


def test_xdp_on_non_xdp_program_type_refused(stack: Stack) -> None:
    tc = Program(C.BPF_PROG_TYPE_SCHED_CLS, assemble("mov %r0, 0\nexit"))
    with pytest.raises(Exception, match="not XDP"):
        hooks.xdp_attach(dev(stack, "b", "v1"), tc)


# ------------------------------------------------------------------------------------ tc
def test_tc_ingress_drop_mark_redirect(stack: Stack) -> None:
    o = loader.load_object(HOOKS_O, only=["tc_policy"])
    v1 = dev(stack, "b", "v1")
    assert hooks.clsact_add(v1) and not hooks.clsact_add(v1)
    f = hooks.tc_attach(v1, "ingress", o.program("tc_policy"), name="hooks.o:[tc]")
    assert f.pref == 49152
    # a tracing program records the mark the stack sees after tc (at ip_rcv_core)
    seen = Program(hooks.BPF_PROG_TYPE_TRACEPOINT, assemble(
        "ldxw %r0, [%r1+24]\nexit"), verifier=False)
    marks: list[int] = []
    orig = hooks.TraceAttachment.__call__

    att = hooks.attach_trace_program(stack.world, "ip_rcv_core", seen)

    def spy(self, pkt, *a):  # type: ignore[no-untyped-def]
        marks.append(pkt.mark)
        return orig(self, pkt, *a)

    hooks.TraceAttachment.__call__ = spy  # type: ignore[method-assign]
    try:
        out_c = stack.capture("c", "r1")
        udp9, udp53 = to_b(ipv4(17, dport=9)), to_b(ipv4(17, dport=53))
        icmp = to_b(ipv4(1, payload=b"\x08\x00\xf7\xff\x00\x00\x00\x00"))
        stack.inject("a", "v0", [udp9, udp53, icmp])
    finally:
        hooks.TraceAttachment.__call__ = orig  # type: ignore[method-assign]
    assert stack.drops("b")["TC_INGRESS"] == 1
    assert marks == [0x77]                       # only udp53 reached IP, with the new mark
    assert [x.data for x in out_c] == [icmp]     # ICMP redirected out of ifindex 20
    assert att.runs == 1
    assert f.runs == 3
    assert any("sch_handle_ingress TC_ACT_SHOT" in ln for ln in stack.trace_lines)


def test_tc_ingress_direct_call_rewrites_fields() -> None:
    s = Stack()
    s.run_script(TOPO)
    v1 = dev(s, "b", "v1")
    hooks.clsact_add(v1)
    try:
        o = loader.load_object(obj("tc_rewrite"))
        hooks.tc_attach(v1, "ingress", o.program("tc"))
        pkt = s.world.new_packet(to_b(ipv4(17, dport=53)))
        from netstack.core.eth import eth_type_trans
        pkt.protocol = eth_type_trans(pkt, v1)
        out = hooks.sch_handle_ingress(pkt)
        assert out is pkt and pkt.mark == 0x42
        data = pkt.buf[pkt.mac_header:pkt.tail]
        assert bytes(data[30:34]) == bytes([10, 0, 0, 99])        # new IPv4 destination
        assert struct.unpack("!H", data[36:38])[0] == 8080         # new UDP port
        assert pkt.data == pkt.mac_header + 14                     # still at the network header
    finally:
        hooks.clsact_del(v1)


def test_tc_da_opcodes_and_chain_order() -> None:
    s = Stack()
    s.run_script(TOPO)
    v1 = dev(s, "b", "v1")
    hooks.clsact_add(v1)
    try:
        def prog(ret: int, mark: int) -> Program:
            return Program(C.BPF_PROG_TYPE_SCHED_CLS, assemble(
                f"mov %r2, {mark}\nstxw [%r1+8], %r2\nmov %r0, {ret}\nexit"))
        # PIPE (3) and RECLASSIFY (1) are not direct-action opcodes: next filter runs
        hooks.tc_attach(v1, "ingress", prog(C.TC_ACT_PIPE, 1), pref=1)
        hooks.tc_attach(v1, "ingress", prog(C.TC_ACT_RECLASSIFY, 2), pref=2)
        hooks.tc_attach(v1, "ingress", prog(C.TC_ACT_STOLEN, 3), pref=3)
        hooks.tc_attach(v1, "ingress", prog(C.TC_ACT_SHOT, 4), pref=4)
        pkt = s.world.new_packet(to_b(ipv4(17)))
        from netstack.core.eth import eth_type_trans
        pkt.protocol = eth_type_trans(pkt, v1)
        assert hooks.sch_handle_ingress(pkt) is None       # stolen: consumed, no drop
        assert pkt.mark == 3 and s.drops("b").total() == 0
        hooks.tc_detach(v1, "ingress", pref=3)
        pkt = s.world.new_packet(to_b(ipv4(17)))
        pkt.protocol = eth_type_trans(pkt, v1)
        assert hooks.sch_handle_ingress(pkt) is None
        assert s.drops("b")["TC_INGRESS"] == 1
        hooks.tc_detach(v1, "ingress")
        pkt = s.world.new_packet(to_b(ipv4(17)))
        pkt.protocol = eth_type_trans(pkt, v1)
        assert hooks.sch_handle_ingress(pkt) is pkt
    finally:
        hooks.clsact_del(v1)


def test_tc_egress_drop_and_mark(stack: Stack) -> None:
    o = loader.load_object(HOOKS_O, only=["tc_policy"])
    v0 = dev(stack, "a", "v0")
    hooks.clsact_add(v0)
    hooks.tc_attach(v0, "egress", o.program("tc_policy"))
    got = stack.capture("b", "v1")
    udp9, udp53 = to_b(ipv4(17, dport=9)), to_b(ipv4(17, dport=53))
    stack.inject("a", "v0", [udp9, udp53])
    assert stack.drops("a")["TC_EGRESS"] == 1
    assert [x.data for x in got] == [udp53]
    assert any("sch_handle_egress TC_ACT_OK" in ln for ln in stack.trace_lines)


def test_tc_redirect_ingress_flag(stack: Stack) -> None:
    # bpf_redirect(20, BPF_F_INGRESS) from b:v1 ingress: received again on b:r0
    prog = Program(C.BPF_PROG_TYPE_SCHED_CLS, assemble(
        "mov %r1, 20\nmov %r2, 1\ncall 23\nexit"))
    v1 = dev(stack, "b", "v1")
    hooks.clsact_add(v1)
    hooks.tc_attach(v1, "ingress", prog)
    on_r0 = stack.capture("b", "r0")
    f = to_b(ipv4(17))
    stack.inject("a", "v0", [f])
    assert [x.data for x in on_r0] == [f]
    assert stack.drops("c").total() == 0 and dev(stack, "b", "r0").stats.tx_packets == 0


# --------------------------------------------------------------------- socket filters
def test_socket_filter_truncates_and_drops(stack: Stack) -> None:
    o = loader.load_object(HOOKS_O, only=["sock_udp53"])
    cap = stack.capture("b", "v1")
    other = stack.capture("b", "v1")
    net_b = stack.world.netns("b")
    sf = hooks.attach_socket_filter(net_b, dev(stack, "b", "v1"), o.program("sock_udp53"))
    late = stack.capture("b", "v1")  # opened after the attach: unfiltered
    dns = to_b(ipv4(17, dport=53, payload=bytes(100)))
    udp = to_b(ipv4(17, dport=1000, payload=bytes(100)))
    tcp = to_b(ipv4(6, dport=80))
    stack.inject("a", "v0", [dns, udp, tcp])
    assert [x.data for x in cap] == [dns, udp[:64]]
    assert [x.data for x in other] == [dns, udp[:64]]
    assert [x.data for x in late] == [dns, udp, tcp]
    assert (sf.accepted, sf.truncated, sf.filtered) == (2, 2, 2)
    assert stack.drops("b")["SOCKET_FILTER"] == 0  # a filtered frame is not a stack drop
    sf.detach()
    stack.inject("a", "v0", [tcp])
    assert cap[-1].data == tcp


# --------------------------------------------------------------------------- tracing
def test_tracing_program_counts_kfree_skb_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    wire(monkeypatch)
    s = Stack()                       # no --trace: attaching installs a silent tracer
    s.run_script(TOPO)
    o = loader.load_object(HOOKS_O, only=["tc_policy"])
    tprog, tmaps = hooks.load_trace_program(HOOKS_O, "count_drops")
    att = hooks.attach_trace_program(s.world, "kfree_skb", tprog)
    hooks.xdp_attach(dev(s, "b", "v1"), forced("xdp_redirect").prog)
    v0 = dev(s, "a", "v0")
    hooks.clsact_add(v0)
    hooks.tc_attach(v0, "egress", o.program("tc_policy"))
    s.inject("a", "v0", [to_b(ipv6()), to_b(ipv6()), to_b(ipv4(17, dport=9))])
    xdp, tce = hooks.drop_reason_value("XDP"), hooks.drop_reason_value("TC_EGRESS")
    assert u64(tmaps["drop_reasons"], xdp) == 2
    assert u64(tmaps["drop_reasons"], tce) == 1
    recs = [struct.unpack("<QII", r) for r in tmaps["drop_log"].consume()]
    assert [(r[1], r[2]) for r in recs] == [(tce, v0.ifindex), (xdp, 2), (xdp, 2)]
    assert att.runs == 3 and att.faults == 0
    assert s.world.tracer is not None and s.world.tracer.records == []
    att.detach()
    assert s.world.tracer is None


def test_trace_ctx_is_read_only() -> None:
    s = Stack()
    prog = Program(hooks.BPF_PROG_TYPE_TRACEPOINT,
                   assemble("mov %r2, 1\nstxw [%r1], %r2\nmov %r0, 0\nexit"), verifier=False)
    att = hooks.attach_trace_program(s.world, "kfree_skb", prog)
    pkt = s.world.new_packet(bytes(20))
    from netstack.core.drop_reason import kfree_skb_reason
    kfree_skb_reason(pkt, "NOT_SPECIFIED", s.world.init_net)
    assert att.runs == 1 and att.faults == 1
    assert hooks.drop_reason_value("NOT_SPECIFIED") == 2


def test_socket_filter_on_transmitted_frames_sees_packet_outgoing(stack: Stack) -> None:
    # return 0xffff only for pkt_type == PACKET_OUTGOING (4), else 0
    prog = Program(C.BPF_PROG_TYPE_SOCKET_FILTER, assemble(
        "ldxw %r2, [%r1+4]\nmov %r0, 0\njne %r2, 4, +1\nmov %r0, 0xffff\nexit"))
    net_a, v0 = stack.world.netns("a"), dev(stack, "a", "v0")
    sent: list[bytes] = []
    net_a.add_tx_tap(v0, lambda p: sent.append(bytes(p.buf[p.data:p.tail])))
    recv = stack.capture("b", "v1")
    hooks.attach_socket_filter(net_a, v0, prog)
    hooks.attach_socket_filter(stack.world.netns("b"), dev(stack, "b", "v1"), prog)
    f = to_b(ipv4(17))
    stack.inject("a", "v0", [f])
    assert sent == [f] and recv == []


def test_tc_wire_len_ingress_and_egress(stack: Stack) -> None:
    # mark = __sk_buff.wire_len (qdisc_skb_cb pkt_len)
    prog = Program(C.BPF_PROG_TYPE_SCHED_CLS, assemble(
        "ldxw %r2, [%r1+160]\nstxw [%r1+8], %r2\nmov %r0, 0\nexit"))
    v0, v1 = dev(stack, "a", "v0"), dev(stack, "b", "v1")
    for d, direction in ((v0, "egress"), (v1, "ingress")):
        hooks.clsact_add(d)
        hooks.tc_attach(d, direction, prog)
    marks: list[int] = []
    stack.world.netns("b").add_rx_tap(v1, lambda p: marks.append(p.mark))
    seen = Program(hooks.BPF_PROG_TYPE_TRACEPOINT, assemble("mov %r0, 0\nexit"), verifier=False)
    hooks.attach_trace_program(stack.world, "ip_rcv_core", seen)
    got: list[int] = []
    orig = hooks.TraceAttachment.__call__

    def spy(self, pkt, *a):  # type: ignore[no-untyped-def]
        got.append(pkt.mark)
        return orig(self, pkt, *a)

    hooks.TraceAttachment.__call__ = spy  # type: ignore[method-assign]
    try:
        f = to_b(ipv4(17, payload=bytes(50)))
        stack.inject("a", "v0", [f])
    finally:
        hooks.TraceAttachment.__call__ = orig  # type: ignore[method-assign]
    assert marks == [0]                 # egress mark is scrubbed crossing namespaces
    assert got == [len(f) - 14]         # ingress: pkt_len without the MAC header


@pytest.fixture(scope="module")
def head_stack():  # type: ignore[no-untyped-def]
    """One topology for the property test (hypothesis examples share it)."""
    mp = pytest.MonkeyPatch()
    wire(mp)
    s = Stack()
    s.run_script(TOPO)
    keys = (hooks.generic_xdp_needed, hooks.tcx_ingress_needed, hooks.tcx_egress_needed)
    yield s
    mp.undo()
    hooks.generic_xdp_needed, hooks.tcx_ingress_needed, hooks.tcx_egress_needed = keys


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(body=st.binary(min_size=0, max_size=120), delta=st.integers(-64, 64))
def test_xdp_adjust_head_writeback_property(head_stack: Stack, body: bytes, delta: int) -> None:
    """Any frame, any bpf_xdp_adjust_head delta: XDP_PASS hands on exactly the bytes the
    program left (the old frame minus ``delta`` leading bytes, or behind ``-delta`` new
    ones), the kernel's ETH_HLEN floor makes the helper fail (the program then drops)."""
    s = head_stack
    v1 = dev(s, "b", "v1")
    prog = Program(C.BPF_PROG_TYPE_XDP, assemble(
        f"mov %r6, %r1\nmov %r2, {delta}\ncall 44\nmov %r1, %r0\nmov %r0, 2\n"
        "jeq %r1, 0, +1\nmov %r0, 1\nexit"))
    hooks.xdp_attach(v1, prog)
    try:
        frame = MAC_B + MAC_A + b"\x88\xb6" + body
        cap = s.capture("b", "v1")
        before = s.drops("b")["XDP"]
        s.inject("a", "v0", [frame])
        if len(frame) - delta < 14:
            assert cap == [] and s.drops("b")["XDP"] == before + 1
        else:
            assert len(cap) == 1
            got = cap[0].data
            assert len(got) == len(frame) - delta
            assert got[max(-delta, 0):] == frame[max(delta, 0):]
    finally:
        hooks.xdp_detach(v1)
        s.world.netns("b").rx_taps.clear()
