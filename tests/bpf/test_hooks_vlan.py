"""tc programs that change the skb's VLAN state, run on the stack (netstack/core/hooks.py
``_tc_writeback_data`` / ``_tc_writeback_vlan``).

A cls_bpf program runs on the skb itself (net/sched/cls_bpf.c ``cls_bpf_classify``), so after
``bpf_skb_vlan_push``/``bpf_skb_vlan_pop`` the stack goes on with exactly what the helpers
left: the bytes and length of the frame, the MAC/network header offsets, ``skb->protocol`` and
the out-of-band tag.  End to end on a veth pair built with :class:`netstack.api.Stack`:

* an ingress program pops a tag and the packet reaches IPv4 (an echo request is answered);
* an egress program pushes tags and the wire carries them (802.1Q, 802.1ad, two pushes);
* a QinQ frame popped twice at ingress (the frame shrinks by the inner tag);
* the headroom running out under pushes (``skb_cow_head``);
* an ingress push over a received tag: the network header (and ``skb->data``) moves back
  onto the TCI of the tag written into the packet, so the stack untags it again;
* property: for random push/pop sequences the skb after the hook is what ``Program.run_tc``
  (the test_run model, itself checked against the kernel in test_vlan_helpers_kernel.py)
  reports.

The kernel differential (same programs compiled with clang, attached with the real ``tc``) is
in test_hooks_kernel.py."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.api import Stack
from netstack.bpf import context as C
from netstack.bpf.asm import assemble
from netstack.bpf.progs import Program
from netstack.core import hooks
from netstack.packet.skb import Packet
from .hooks_wiring import wire
from .progs.frames import ipv4

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
TOPO = """
ip netns add a
ip netns add b
ip -n a link add v0 address 02:00:00:00:00:01 type veth peer name v1 address 02:00:00:00:00:02 netns b
ip -n a addr add 10.0.0.1/24 dev v0
ip -n b addr add 10.0.0.2/24 dev v1
ip -n b neigh add 10.0.0.1 lladdr 02:00:00:00:00:01 dev v1 nud permanent
ip -n a link set v0 up
ip -n b link set v1 up
"""
#: ICMP echo request 10.0.0.1 -> 10.0.0.2 (id 0, seq 0), a:v0 -> b:v1
ECHO = MAC_B + MAC_A + ipv4(1, payload=b"\x08\x00\xf7\xff\x00\x00\x00\x00")[12:]


def tag(tpid: int, tci: int) -> bytes:
    return struct.pack(">HH", tpid, tci)


def tagged(frame: bytes, *tags: bytes) -> bytes:
    """``frame`` with in-packet tags behind the MAC addresses (outermost first)."""
    return frame[:12] + b"".join(tags) + frame[12:]


def tc_prog(body: str) -> Program:
    """A SCHED_CLS program: ``body`` with the ctx in %r6, then ``return TC_ACT_OK``."""
    return Program(C.BPF_PROG_TYPE_SCHED_CLS, assemble("mov %r6, %r1\n" + body + "mov %r0, 0\nexit"))


def push(tpid_be: int, tci: int) -> str:
    return f"mov %r1, %r6\nmov %r2, {tpid_be:#x}\nmov %r3, {tci}\ncall 18\n"


POP = "mov %r1, %r6\ncall 19\n"
PUSH_Q100 = push(0x0081, 100)


@pytest.fixture(autouse=True)
def _no_leaks():  # type: ignore[no-untyped-def]
    keys = (hooks.generic_xdp_needed, hooks.tcx_ingress_needed, hooks.tcx_egress_needed)
    yield
    hooks.generic_xdp_needed, hooks.tcx_ingress_needed, hooks.tcx_egress_needed = keys


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Stack:
    wire(monkeypatch)
    s = Stack(trace=True)
    s.run_script(TOPO)
    return s


def attach(s: Stack, ns: str, name: str, direction: str, prog: Program) -> hooks.TcFilter:
    d = s.world.netns(ns).get(name)
    hooks.clsact_add(d)
    return hooks.tc_attach(d, direction, prog)


def echo_replies(frames: list) -> list[bytes]:  # type: ignore[type-arg]
    """The ICMP echo replies (type 0) among captured untagged IPv4 frames."""
    return [f.data for f in frames if f.data[12:14] == b"\x08\x00" and f.data[23] == 1
            and f.data[34] == 0]


def test_ingress_pop_lets_ip_answer(stack: Stack) -> None:
    back = stack.capture("a", "v0")
    stack.inject("a", "v0", [tagged(ECHO, tag(0x8100, 100))])
    # no program: the tag stays, check_vlan_id makes it PACKET_OTHERHOST, IP drops it
    assert echo_replies(back) == []
    attach(stack, "b", "v1", "ingress", tc_prog(POP))
    stack.inject("a", "v0", [tagged(ECHO, tag(0x8100, 100))])
    (reply,) = echo_replies(back)
    assert reply[:12] == MAC_A + MAC_B and reply[26:30] == bytes([10, 0, 0, 2])


def test_ingress_pop_of_qinq_twice_shrinks_the_frame(stack: Stack) -> None:
    """Outer 802.1ad tag out of band (skb_vlan_untag before tc), inner 802.1Q in the packet:
    the first pop clears the outer one and moves the inner one out of band (4 bytes fewer),
    the second clears that -- IPv4 with the MAC header 4 bytes further on."""
    attach(stack, "b", "v1", "ingress", tc_prog(POP + POP))
    seen: list[tuple[int, int, int, int]] = []
    hooks.attach_trace_program(stack.world, "ip_rcv_core", Program(
        hooks.BPF_PROG_TYPE_TRACEPOINT, assemble("mov %r0, 0\nexit"), verifier=False))
    orig = hooks.TraceAttachment.__call__

    def spy(self, pkt, *a):  # type: ignore[no-untyped-def]
        if pkt.dev.name == "v1":  # the request at b, not the reply at a
            seen.append((pkt.protocol, pkt.vlan_proto, pkt.data - pkt.mac_header, pkt.tail - pkt.data))
        return orig(self, pkt, *a)

    back = stack.capture("a", "v0")
    hooks.TraceAttachment.__call__ = spy  # type: ignore[method-assign]
    try:
        stack.inject("a", "v0", [tagged(ECHO, tag(0x88A8, 7), tag(0x8100, 100))])
    finally:
        hooks.TraceAttachment.__call__ = orig  # type: ignore[method-assign]
    assert seen == [(0x0800, 0, 14, len(ECHO) - 14)]
    assert len(echo_replies(back)) == 1


def test_ingress_single_pop_of_qinq_leaves_the_inner_tag_out_of_band(stack: Stack) -> None:
    """One pop: the inner tag (VID 100) is now the out-of-band one; no vlan device has it,
    so check_vlan_id makes the packet PACKET_OTHERHOST and IPv4 drops it."""
    attach(stack, "b", "v1", "ingress", tc_prog(POP))
    got: list[tuple[int, int, int, bytes]] = []
    orig = hooks._tc_classify

    def spy(chain, pkt, dev, env, ingress):  # type: ignore[no-untyped-def]
        r = orig(chain, pkt, dev, env, ingress)
        got.append((pkt.vlan_proto, pkt.vlan_tci, pkt.protocol, bytes(pkt.buf[pkt.mac_header:pkt.data])))
        return r

    back = stack.capture("a", "v0")
    hooks._tc_classify = spy  # type: ignore[assignment]
    try:
        stack.inject("a", "v0", [tagged(ECHO, tag(0x88A8, 7), tag(0x8100, 100))])
    finally:
        hooks._tc_classify = orig  # type: ignore[assignment]
    assert got == [(0x8100, 100, 0x0800, MAC_B + MAC_A + b"\x08\x00")]
    assert echo_replies(back) == []
    assert stack.drops("b")["OTHERHOST"] == 1


@pytest.mark.parametrize("body,tags", [
    (PUSH_Q100, [tag(0x8100, 100)]),
    (push(0xA888, 0x2007), [tag(0x88A8, 0x2007)]),
    # the first tag goes into the packet, the second is the out-of-band (outer) one
    (push(0x0081, 5) + push(0xA888, 6), [tag(0x88A8, 6), tag(0x8100, 5)]),
    (push(0x0081, 5) + push(0x0081, 6) + push(0x0081, 7),
     [tag(0x8100, 7), tag(0x8100, 6), tag(0x8100, 5)]),
    (PUSH_Q100 + POP, []),
])
def test_egress_push_is_on_the_wire(stack: Stack, body: str, tags: list[bytes]) -> None:
    attach(stack, "a", "v0", "egress", tc_prog(body))
    wire_b = stack.capture("b", "v1")
    stack.inject("a", "v0", [ECHO])
    assert [f.data for f in wire_b] == [tagged(ECHO, *tags)]


def test_egress_push_and_ingress_pop_end_to_end(stack: Stack) -> None:
    attach(stack, "a", "v0", "egress", tc_prog(PUSH_Q100))
    attach(stack, "b", "v1", "ingress", tc_prog(POP))
    back = stack.capture("a", "v0")
    wire_b = stack.capture("b", "v1")
    stack.inject("a", "v0", [ECHO])
    assert wire_b[0].data == tagged(ECHO, tag(0x8100, 100))
    assert len(echo_replies(back)) == 1


def test_egress_push_over_a_tag_without_headroom(stack: Stack) -> None:
    """The frame grows at the front with no headroom left: ``skb_cow_head`` adds some, the
    header offsets move with the data, the tail does not move relative to it."""
    v0 = stack.world.netns("a").get("v0")
    attach(stack, "a", "v0", "egress", tc_prog(push(0x0081, 1) + push(0x0081, 2)))
    pkt = Packet(ECHO, headroom=0)
    pkt.network_header = 14
    pkt.transport_header = 34
    pkt.dev = v0
    out = hooks.sch_handle_egress(pkt, v0)
    assert out is pkt
    assert pkt.data == pkt.mac_header and pkt.data - pkt.head >= 0
    assert bytes(pkt.buf[pkt.data:pkt.tail]) == tagged(ECHO, tag(0x8100, 1))
    assert (pkt.vlan_proto, pkt.vlan_tci, pkt.protocol) == (0x8100, 2, 0x8100)
    # skb_vlan_push moves the network header back with the MAC header (onto the TCI of the
    # tag written into the packet); the transport header keeps its bytes
    assert pkt.network_header - pkt.data == 14 and pkt.transport_header - pkt.data == 38
    assert pkt.buf[pkt.network_header:pkt.network_header + 2] == b"\x00\x01"


def test_ingress_priority_push_over_a_received_tag_reaches_ip(stack: Stack) -> None:
    """A priority-tagged request (802.1Q, VID 0, out of band after ``skb_vlan_untag``) and an
    ingress program pushing another priority tag over it: the received tag goes into the
    packet, ``mac_len`` stays 14 and ``skb->data`` after the hook is on its TCI, where
    ``__netif_receive_skb_core``'s ``skb_vlan_untag`` (VID 0 out of band, 802.1Q
    ``protocol``) reads it -- so the packet is untagged again and IPv4 answers.  Kernel
    differential: test_hooks_kernel.py ``test_tc_ingress_vlan_push_then_delivery``."""
    attach(stack, "b", "v1", "ingress", tc_prog(push(0x0081, 0x6000)))
    got: list[tuple[int, int, int, int, bytes]] = []
    orig = hooks._tc_classify

    def spy(chain, pkt, dev, env, ingress):  # type: ignore[no-untyped-def]
        r = orig(chain, pkt, dev, env, ingress)
        got.append((pkt.vlan_proto, pkt.vlan_tci, pkt.protocol, pkt.data - pkt.mac_header,
                    bytes(pkt.buf[pkt.data:pkt.data + 4])))
        return r

    back = stack.capture("a", "v0")
    hooks._tc_classify = spy  # type: ignore[assignment]
    try:
        stack.inject("a", "v0", [tagged(ECHO, tag(0x8100, 0x2000))])
    finally:
        hooks._tc_classify = orig  # type: ignore[assignment]
    assert got == [(0x8100, 0x6000, 0x8100, 14, b"\x20\x00\x08\x00")]
    (reply,) = echo_replies(back)
    assert reply[26:30] == bytes([10, 0, 0, 2])


def test_ingress_push_over_a_received_tag_with_a_vid_is_otherhost(stack: Stack) -> None:
    """The same with the received tag's VID 100: untagged again, no vlan device has it,
    PACKET_OTHERHOST -- IPv4 drops it."""
    attach(stack, "b", "v1", "ingress", tc_prog(push(0x0081, 0)))
    back = stack.capture("a", "v0")
    stack.inject("a", "v0", [tagged(ECHO, tag(0x8100, 100))])
    assert echo_replies(back) == []
    assert stack.drops("b")["OTHERHOST"] == 1


def test_a_fault_after_a_push_is_a_drop_and_leaves_no_tag(stack: Stack) -> None:
    """A program faulting (here an out-of-bounds ctx read) after a helper changed the skb
    is TC_ACT_SHOT: the packet is dropped, never forwarded half-rewritten."""
    bad = Program(C.BPF_PROG_TYPE_SCHED_CLS, assemble(
        "mov %r6, %r1\n" + PUSH_Q100 + "ldxw %r0, [%r6+4000]\nexit"), verifier=False)
    f = attach(stack, "a", "v0", "egress", bad)
    wire_b = stack.capture("b", "v1")
    stack.inject("a", "v0", [ECHO])
    assert wire_b == [] and f.faults == 1
    assert stack.drops("a")["TC_EGRESS"] == 1


# ------------------------------------------------------------------- property vs run_tc
_OPS = st.lists(st.one_of(st.just(POP), st.builds(push, st.sampled_from([0x0081, 0xA888]),
                                                      st.integers(0, 0xFFFF))), max_size=5)


@pytest.fixture(scope="module")
def veth_dev():  # type: ignore[no-untyped-def]
    s = Stack()
    s.run_script(TOPO)
    return s.world.netns("a").get("v0")


def _model_mac_len(frame: bytes, oob: int, mac_len: int, ops: list[str]) -> tuple[int, bool]:
    """``network_header - mac_header`` after ``ops`` run one by one through vlan_core's
    ``skb_vlan_push``/``skb_vlan_pop`` (what the helpers call, pinned against the kernel in
    tests/core/test_vlan_push_headers.py), and whether the run both inserted and removed
    in-packet tags (the one case the hook, seeing only the net length change, cannot tell
    apart when ``mac_len > ETH_HLEN``)."""
    from netstack.core.vlan_core import skb_vlan_pop, skb_vlan_push
    p = Packet(frame, headroom=64)
    p.mac_header = p.data
    p.network_header = p.data + mac_len
    p.protocol = int.from_bytes(frame[12:14], "big")
    if oob:
        p.vlan_proto, p.vlan_tci = oob, 0x0123
    grew = shrank = False
    for op in ops:
        n = p.tail - p.data
        if op == POP:
            skb_vlan_pop(p)
        else:
            tpid = int(op.split("mov %r2, ")[1].split("\n")[0], 16)
            tci = int(op.split("mov %r3, ")[1].split("\n")[0])
            skb_vlan_push(p, 0x88A8 if tpid == 0xA888 else 0x8100, tci)
        grew |= p.tail - p.data > n
        shrank |= p.tail - p.data < n
    return p.network_header - p.mac_header, grew and shrank


@settings(max_examples=40, deadline=None)
@given(ops=_OPS, in_band=st.lists(st.sampled_from([0x8100, 0x88A8]), max_size=2),
       oob=st.sampled_from([0, 0x8100, 0x88A8]), ingress=st.booleans(), behind_tags=st.booleans())
def test_skb_after_hook_is_what_the_program_left(veth_dev, ops: list[str], in_band: list[int],  # type: ignore[no-untyped-def]
                                                 oob: int, ingress: bool, behind_tags: bool) -> None:
    frame = tagged(ECHO, *(tag(t, 10 + i) for i, t in enumerate(in_band)))
    prog = tc_prog("".join(ops))
    # mac_len is always ETH_HLEN at tc ingress (eth_type_trans, skb_vlan_untag); at egress
    # the network header may also sit behind in-packet tags
    mac_len = 14 + 4 * len(in_band) if behind_tags and not ingress else 14
    fields = hooks._skb_fields(_skb(frame, veth_dev, oob, ingress), veth_dev, ingress)
    want_ret, want_frame, want = prog.run_tc(frame, None, fields)
    assert want_ret == 0
    pkt = _skb(frame, veth_dev, oob, ingress)
    if not ingress:
        pkt.network_header = pkt.data + mac_len
    want_mac_len, ambiguous = _model_mac_len(frame, oob, mac_len, ops)
    chain = hooks.TcChain()
    chain.add(hooks.TcFilter(1, prog))
    ret = hooks._tc_classify(chain, pkt, veth_dev, hooks._dev_env(veth_dev), ingress)
    assert ret == 0
    assert bytes(pkt.buf[pkt.mac_header:pkt.tail]) == want_frame
    assert pkt.protocol == hooks._swap16(want.protocol)
    assert (pkt.vlan_proto, pkt.vlan_tci) == ((hooks._swap16(want.vlan_proto), want.vlan_tci)
                                              if want.vlan_present else (0, 0))
    # skb->data: egress at the MAC header; ingress at the network header (the pull by
    # mac_len), which is where the helpers' own header rules put it
    nh = pkt.data if ingress else pkt.network_header
    assert pkt.mac_header + 14 <= nh <= pkt.tail
    if mac_len == 14 or not ambiguous:
        assert nh - pkt.mac_header == want_mac_len
    if not ingress:
        assert pkt.data == pkt.mac_header
    assert pkt.tail - pkt.mac_header == len(want_frame)


def _skb(frame: bytes, dev, oob: int, ingress: bool) -> Packet:  # type: ignore[no-untyped-def]
    """A received (data at the network header) or transmitted (data at the MAC header) skb
    of ``frame`` on ``dev``, with an out-of-band tag ``oob`` (0 = none)."""
    pkt = Packet(frame)
    pkt.dev = dev
    pkt.mac_header = pkt.data
    pkt.protocol = int.from_bytes(frame[12:14], "big")
    if ingress:
        pkt.data += 14
    else:
        pkt.network_header = pkt.data + 14
    if oob:
        pkt.vlan_proto, pkt.vlan_tci = oob, 0x0123
    return pkt
