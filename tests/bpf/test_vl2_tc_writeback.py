"""Exact tc writeback after ``bpf_skb_vlan_push``/``_pop`` (netstack/core/hooks.py
``_tc_writeback_data`` with the offsets of ``Program.run_tc_headers``).

The skb a cls_bpf program leaves keeps the MAC/network header offsets the helpers gave it
(net/core/skbuff.c ``skb_vlan_push``: the network header moves back with the MAC header;
``__skb_vlan_pop``: it keeps its bytes but stays >= ``ETH_HLEN`` past the new MAC header).
When the network header starts more than 14 bytes past the MAC header -- a QinQ egress skb
whose inner tag ``validate_xmit_vlan`` wrote into the packet, or an ingress skb on a vlan
device with ``reorder_hdr off`` (``vlan_do_receive`` puts the tag back and resets
``mac_len`` to 18) -- a run that both pops and pushes in-packet tags cannot be told from the
net length change: these tests show the case where the length-only reconstruction was wrong
and check the hook against the helper-by-helper model for random runs.

Kernel pin: ``BPF_PROG_TEST_RUN`` always starts with ``mac_len`` 14 (``eth_type_trans``) and
the helpers never make it larger, so ``mac_len > 14`` itself cannot be produced there; what
is pinned is that the network-header offset ``run_tc_headers`` reports after random
push/pop runs is where the kernel's LD_ABS ``SKF_NET_OFF`` reads.
"""
from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.api import Stack
from netstack.bpf import context as C
from netstack.bpf.asm import assemble
from netstack.bpf.progs import Program
from netstack.core import hooks
from netstack.core.vlan_core import skb_vlan_pop, skb_vlan_push
from netstack.packet.skb import Packet

TC = C.BPF_PROG_TYPE_SCHED_CLS
DST, SRC = bytes.fromhex("020000000002"), bytes.fromhex("020000000001")
IPV4 = bytes.fromhex("45000028000140004011") + bytes(2) + bytes([10, 0, 0, 1, 10, 0, 0, 2]) + bytes(20)
SKF_NET_OFF = -0x100000
POP = "mov %r1, %r6\ncall 19\n"


def push(tpid_be: int, tci: int) -> str:
    return f"mov %r1, %r6\nmov %r2, {tpid_be:#x}\nmov %r3, {tci}\ncall 18\n"


def frame(*tags: tuple[int, int]) -> bytes:
    out = DST + SRC
    for tpid, tci in tags:
        out += struct.pack(">HH", tpid, tci)
    return out + b"\x08\x00" + IPV4


def tc_prog(body: str, tail: str = "mov %r0, 0\n") -> Program:
    return Program(TC, assemble("mov %r6, %r1\n" + body + tail + "exit"))


@pytest.fixture(scope="module")
def dev():  # type: ignore[no-untyped-def]
    s = Stack()
    s.run_script("ip netns add a\nip -n a link add v0 type veth peer name v1\n")
    return s.world.netns("a").get("v0")


def _skb(data: bytes, dev, oob: tuple[int, int] | None, ingress: bool,  # type: ignore[no-untyped-def]
         mac_len: int) -> Packet:
    """An skb of ``data`` on ``dev``: at ingress ``data`` points ``mac_len`` past the MAC header
    (where the network header is); at egress it is at the MAC header and ``network_header``
    is ``mac_len`` past it."""
    pkt = Packet(data, headroom=64)
    pkt.dev = dev
    pkt.mac_header = pkt.data
    pkt.network_header = pkt.data + mac_len
    # skb->protocol: what eth_type_trans/skb_vlan_untag left (the first non-VLAN type when
    # the stack already went past the tags, as vlan_do_receive does with reorder_hdr off)
    pkt.protocol = int.from_bytes(data[mac_len - 2:mac_len], "big")
    if oob is not None:
        pkt.vlan_proto, pkt.vlan_tci = oob
    if ingress:
        pkt.data += mac_len
    return pkt


def _model(data: bytes, oob: tuple[int, int] | None, mac_len: int,
           ops: list[tuple[int, int] | None]) -> Packet:
    """The same skb run through vlan_core's ``skb_vlan_push``/``skb_vlan_pop`` one by one
    (what the helpers call; the per-helper rules are pinned against the kernel in
    tests/core/test_vlan_push_headers.py and tests/bpf/test_vlan_helpers_kernel.py)."""
    p = _skb(data, None, oob, False, mac_len)
    for op in ops:
        if op is None:
            skb_vlan_pop(p)
        else:
            skb_vlan_push(p, op[0], op[1])
    return p


def _body(ops: list[tuple[int, int] | None]) -> str:
    return "".join(POP if op is None else
                   push(0x0081 if op[0] == 0x8100 else 0xA888, op[1]) for op in ops)


def _run_hook(dev, pkt: Packet, prog: Program, ingress: bool) -> int:  # type: ignore[no-untyped-def]
    chain = hooks.TcChain()
    chain.add(hooks.TcFilter(1, prog))
    return hooks._tc_classify(chain, pkt, dev, hooks._dev_env(dev), ingress)


# --------------------------------------------------------------- the case that was wrong
@pytest.mark.parametrize("ingress", [False, True], ids=["egress", "ingress"])
def test_push_push_pop_at_mac_len_18_is_exact(dev, ingress: bool) -> None:  # type: ignore[no-untyped-def]
    """mac_len 18, one in-packet tag T behind the MAC addresses, nothing out of band.  Push A
    (out of band), push B (A goes into the packet: MAC and network header move back 4), pop
    (B cleared, A removed from the packet: the MAC header moves forward 4, the network header
    keeps its bytes -- T's TCI, 14 past the new MAC header -- and T's TPID is the protocol).
    Net length change 0: the length-only reconstruction kept the network header on the IPv4
    header (18); the kernel's is on T's TCI (14), where ``skb_vlan_untag`` will read it."""
    data = frame((0x8100, 0x000A))
    ops: list[tuple[int, int] | None] = [(0x8100, 1), (0x8100, 2), None]
    want = _model(data, None, 18, ops)
    assert want.tail - want.mac_header == len(data)          # no net length change ...
    assert want.network_header - want.mac_header == 14       # ... yet mac_len 18 -> 14
    pkt = _skb(data, dev, None, ingress, 18)
    assert _run_hook(dev, pkt, tc_prog(_body(ops)), ingress) == 0
    assert bytes(pkt.buf[pkt.mac_header:pkt.tail]) == bytes(want.buf[want.mac_header:want.tail])
    assert pkt.network_header - pkt.mac_header == 14
    assert (pkt.data - pkt.mac_header) == (14 if ingress else 0)
    assert (pkt.vlan_proto, pkt.vlan_tci) == (0x8100, 1)
    assert pkt.protocol == 0x8100
    # the network header is on T's TCI
    assert pkt.buf[pkt.network_header:pkt.network_header + 2] == b"\x00\x0a"


def test_two_filters_second_sees_first_ones_headers(dev) -> None:  # type: ignore[no-untyped-def]
    """The next filter in the chain starts from the skb the previous one left: its LD_ABS
    ``SKF_NET_OFF`` reads at the network header the helpers of the first one moved."""
    data = frame((0x8100, 0x000A))
    first = tc_prog(_body([(0x8100, 1), (0x8100, 2), None]), "mov %r0, -1\n")  # TC_ACT_UNSPEC
    second = tc_prog("", f"ldabsh {SKF_NET_OFF}\nstxw [%r6+8], %r0\nmov %r0, 0\n")  # -> mark
    chain = hooks.TcChain()
    chain.add(hooks.TcFilter(1, first))
    chain.add(hooks.TcFilter(2, second))
    pkt = _skb(data, dev, None, False, 18)
    # the second puts the 2 bytes at the network header in skb->mark: T's TCI (10) -- with
    # the length-only reconstruction it read the IPv4 header's first bytes (0x4500)
    assert hooks._tc_classify(chain, pkt, dev, hooks._dev_env(dev), False) == 0
    assert pkt.mark == 10


def test_run_tc_headers_ld_abs_sees_mac_len() -> None:
    """``SKF_NET_OFF`` loads see the network header ``mac_len`` past the MAC header."""
    data = frame((0x88A8, 0x0064), (0x8100, 0x00C8))
    p = tc_prog("", f"ldabsh {SKF_NET_OFF}\n")
    assert p.run_tc_headers(data, mac_len=22).verdict == 0x4500  # the IPv4 header
    assert p.run_tc_headers(data, mac_len=14).verdict == 0x0064  # TCI of the 802.1ad tag
    r = p.run_tc_headers(data, mac_len=18)                        # TCI of the 802.1Q tag
    assert (r.verdict, r.mac_off, r.net_off, r.mac_len) == (0x00C8, 0, 18, 18)
    assert p.run_tc(data)[0] == 0x0064


def test_run_tc_headers_refuses_impossible_mac_len() -> None:
    from netstack.bpf.errors import BpfRuntimeError
    with pytest.raises(BpfRuntimeError):
        tc_prog("").run_tc_headers(frame(), mac_len=-1)


# ---------------------------------------------------------------------------- property
_OP = st.one_of(st.none(), st.tuples(st.sampled_from([0x8100, 0x88A8]), st.integers(0, 0xFFFF)))


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(_OP, max_size=5), n_tags=st.integers(0, 2), extra=st.integers(0, 2),
       oob=st.one_of(st.none(), st.tuples(st.sampled_from([0x8100, 0x88A8]), st.integers(0, 0xFFFF))),
       ingress=st.booleans())
def test_hook_leaves_the_helpers_headers(dev, ops, n_tags: int, extra: int, oob,  # type: ignore[no-untyped-def]
                                         ingress: bool) -> None:
    """For any push/pop run and any starting mac_len (14 up to behind every in-packet tag),
    the skb after the hook is, byte for byte and header for header, the one vlan_core's
    helpers leave."""
    data = frame(*((0x8100 if i else 0x88A8, 100 + i) for i in range(n_tags)))
    mac_len = 14 + 4 * min(extra, n_tags)
    want = _model(data, oob, mac_len, ops)
    pkt = _skb(data, dev, oob, ingress, mac_len)
    assert _run_hook(dev, pkt, tc_prog(_body(ops)), ingress) == 0
    assert bytes(pkt.buf[pkt.mac_header:pkt.tail]) == bytes(want.buf[want.mac_header:want.tail])
    assert pkt.network_header - pkt.mac_header == want.network_header - want.mac_header
    assert pkt.data - pkt.mac_header == (want.network_header - want.mac_header if ingress else 0)
    assert (pkt.protocol, pkt.vlan_proto, pkt.vlan_tci) == (want.protocol, want.vlan_proto,
                                                            want.vlan_tci)


# ------------------------------------------------------------------------ kernel pin
def _kernel_reason() -> str | None:
    from netstack.bpf.kernel import available
    return available()


_RNG = random.Random(5)
_KCASES = [([None if _RNG.random() < 0.4 else (_RNG.choice([0x8100, 0x88A8]), _RNG.randrange(4096))
             for _ in range(_RNG.randrange(1, 6))], _RNG.randrange(0, 3)) for _ in range(24)]


@pytest.mark.parametrize("ops,n_tags", _KCASES, ids=[f"k{i}" for i in range(len(_KCASES))])
def test_reported_network_header_is_where_kernel_ld_abs_reads(ops, n_tags: int) -> None:  # type: ignore[no-untyped-def]
    """After a random push/pop run, the kernel's LD_ABS at ``SKF_NET_OFF`` (+0 and +2) reads
    the bytes at the network header ``run_tc_headers`` reports, and data_out is its frame."""
    reason = _kernel_reason()
    if reason is not None:
        pytest.skip(f"bpf(2) unusable here: {reason}")
    from netstack.bpf.kernel import KProg
    data = frame(*((0x8100 if i else 0x88A8, 200 + i) for i in range(n_tags)))
    src = ("mov %r6, %r1\n" + _body(ops)
           + f"ldabsh {SKF_NET_OFF}\nmov %r7, %r0\nlsh %r7, 16\nldabsh {SKF_NET_OFF + 2}\n"
             "or %r0, %r7\nexit")
    with KProg(TC, assemble(src)) as kp:
        kret, kout = kp.test_run(data)[:2]
    r = Program(TC, assemble(src)).run_tc_headers(data)
    assert r.frame == kout
    assert r.verdict & 0xFFFFFFFF == kret
    assert int.from_bytes(r.frame[r.net_off:r.net_off + 4], "big") == kret


def test_jit_reports_the_same_headers() -> None:
    """The JIT's helper calls keep the same LD_ABS view, so the reported offsets agree."""
    from netstack.bpf.jit import jit_program
    data = frame((0x8100, 0x000A))
    body = _body([(0x8100, 1), (0x8100, 2), None]) + f"ldabsh {SKF_NET_OFF}\n"
    interp, jitted = tc_prog(body, ""), tc_prog(body, "")
    jit_program(jitted)
    a, b = interp.run_tc_headers(data, mac_len=18), jitted.run_tc_headers(data, mac_len=18)
    assert (a.verdict, a.frame, a.net_off) == (b.verdict, b.frame, b.net_off) == (10, data, 14)
