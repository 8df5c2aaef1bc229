"""bpf_fib_lookup (helper 69) on a netstack router namespace: every return code of
net/core/filter.c ``bpf_ipv4_fib_lookup`` / ``bpf_ipv6_fib_lookup`` and the fields written
back into ``struct bpf_fib_lookup``, through the helper itself and through an XDP program."""
from __future__ import annotations

import errno
import ipaddress
import struct

import pytest
from hypothesis import given, settings, strategies as st

from netstack.api import Stack
from netstack.bpf import context as C
from netstack.bpf import fib_helper as F
from netstack.bpf.asm import assemble
from netstack.bpf.progs import Program, RunEnv

TOPO = """
ip netns add h1
ip netns add r
ip netns add h2
ip -n r link add rin index 10 address 02:00:00:00:01:02 type veth peer name e0 address 02:00:00:00:01:01 netns h1
ip -n r link add rout index 20 address 02:00:00:00:02:01 type veth peer name e0 address 02:00:00:00:02:02 netns h2
ip -n r link set lo up
ip -n r link set rin up
ip -n r link set rout up
ip -n h1 link set e0 up
ip -n h2 link set e0 up
ip -n r addr add 10.0.1.1/24 dev rin
ip -n r addr add 10.0.2.1/24 dev rout
ip -n r addr add 2001:db8:1::1/64 dev rin nodad
ip -n r addr add 2001:db8:2::1/64 dev rout nodad
ip netns exec r sysctl -w net.ipv4.ip_forward=1
ip netns exec r sysctl -w net.ipv6.conf.all.forwarding=1
ip -n r route add 10.9.0.0/16 via 10.0.2.2 metric 7
ip -n r route add blackhole 10.66.0.0/16
ip -n r route add unreachable 10.67.0.0/16
ip -n r route add prohibit 10.68.0.0/16
ip -n r route add 10.70.0.0/16 via 10.0.2.2 mtu lock 1400
ip -n r route add 10.100.0.0/16 via 10.0.2.2 table 100
ip -n r rule add fwmark 7 lookup 100
ip -n r neigh add 10.0.2.2 lladdr 02:00:00:00:02:02 dev rout nud permanent
ip -n r -6 route add 2001:db8:9::/48 via 2001:db8:2::2 metric 9
ip -n r -6 route add blackhole 2001:db8:66::/48
ip -n r -6 neigh add 2001:db8:2::2 lladdr 02:00:00:00:02:02 dev rout nud reachable
"""

GW_MAC = bytes.fromhex("020000000202")
ROUT_MAC = bytes.fromhex("020000000201")


@pytest.fixture(scope="module")
def stack() -> Stack:
    s = Stack()
    s.run_script(TOPO)
    return s


@pytest.fixture
def fresh() -> Stack:
    s = Stack()
    s.run_script(TOPO)
    return s


def params4(dst: str, *, src: str = "10.0.1.2", ifindex: int = 10, tot_len: int = 0,
            tos: int = 0, tbid: int = 0, mark: int = 0, family: int = F.AF_INET,
            proto: int = 17) -> bytearray:
    b = bytearray(64)
    b[0], b[1] = family, proto
    struct.pack_into("<HI", b, 6, tot_len, ifindex)
    b[12] = tos
    b[16:20] = ipaddress.IPv4Address(src).packed
    b[32:36] = ipaddress.IPv4Address(dst).packed
    struct.pack_into("<I", b, 48, tbid)
    if mark:
        struct.pack_into("<I", b, 52, mark)
    return b


def params6(dst: str, *, src: str = "2001:db8:1::2", ifindex: int = 10,
            tot_len: int = 0) -> bytearray:
    b = bytearray(64)
    b[0], b[1] = F.AF_INET6, 17
    struct.pack_into("<HI", b, 6, tot_len, ifindex)
    b[16:32] = ipaddress.IPv6Address(src).packed
    b[32:48] = ipaddress.IPv6Address(dst).packed
    return b


def xdp_ctx(frame: bytes = bytes(60)) -> C.XdpContext:
    return C.XdpContext(C.PacketBuf.build(frame, 256, 4096), 10, 0)


def skb_ctx(length: int) -> C.SkbContext:
    return C.SkbContext(C.PacketBuf.build(bytes(length), 64, length + 64 + 320),
                        C.SkbFields(), C.BPF_PROG_TYPE_SCHED_CLS)


def lookup(s: Stack, p: bytearray, flags: int = 0, ctx: object | None = None) -> int:
    return F.make_fib_lookup(s.world.netns("r"))(p, flags, ctx if ctx is not None else xdp_ctx())


def u16(b: bytearray, off: int) -> int:
    return int(struct.unpack_from("<H", b, off)[0])


def u32(b: bytearray, off: int) -> int:
    return int(struct.unpack_from("<I", b, off)[0])


# ------------------------------------------------------------------------------ IPv4
def test_success_via_gateway_fills_every_output(stack: Stack) -> None:
    p = params4("10.9.1.1", tot_len=1500)
    p[48:52] = b"\xaa\xbb\xcc\xdd"       # h_vlan_* must come back zero
    assert lookup(stack, p) == F.BPF_FIB_LKUP_RET_SUCCESS
    assert u32(p, 8) == 20                     # egress ifindex
    assert u32(p, 12) == 7                     # rt_metric
    assert bytes(p[32:36]) == bytes([10, 0, 2, 2])   # gateway
    assert bytes(p[16:20]) == bytes([10, 0, 1, 2])   # src untouched without SRC
    assert u16(p, 6) == 1500                   # mtu_result
    assert bytes(p[48:52]) == bytes(4)
    assert bytes(p[52:58]) == ROUT_MAC and bytes(p[58:64]) == GW_MAC


def test_no_neigh_for_on_link_destination_without_entry(stack: Stack) -> None:
    p = params4("10.0.2.77")
    assert lookup(stack, p) == F.BPF_FIB_LKUP_RET_NO_NEIGH
    assert u32(p, 8) == 20 and bytes(p[32:36]) == bytes([10, 0, 2, 77])
    assert bytes(p[52:64]) == bytes(12)        # no MACs


def test_no_neigh_for_an_entry_that_is_not_valid(fresh: Stack) -> None:
    fresh.run_script("ip -n r neigh replace 10.0.2.2 dev rout nud incomplete\n")
    assert lookup(fresh, params4("10.9.1.1")) == F.BPF_FIB_LKUP_RET_NO_NEIGH
    fresh.run_script("ip -n r neigh replace 10.0.2.2 lladdr 02:00:00:00:02:02 dev rout nud stale\n")
    assert lookup(fresh, params4("10.9.1.1")) == F.BPF_FIB_LKUP_RET_SUCCESS


def test_skip_neigh_succeeds_without_macs(stack: Stack) -> None:
    p = params4("10.0.2.77")
    assert lookup(stack, p, F.BPF_FIB_LOOKUP_SKIP_NEIGH) == F.BPF_FIB_LKUP_RET_SUCCESS
    assert u32(p, 8) == 20 and bytes(p[52:64]) == bytes(12)


@pytest.mark.parametrize("dst,rc", [
    ("10.66.0.1", F.BPF_FIB_LKUP_RET_BLACKHOLE),
    ("10.67.0.1", F.BPF_FIB_LKUP_RET_UNREACHABLE),
    ("10.68.0.1", F.BPF_FIB_LKUP_RET_PROHIBIT),
    ("10.0.2.1", F.BPF_FIB_LKUP_RET_NOT_FWDED),       # local
    ("10.0.2.255", F.BPF_FIB_LKUP_RET_NOT_FWDED),     # broadcast
    ("192.0.2.1", F.BPF_FIB_LKUP_RET_NOT_FWDED),      # no route
])
def test_route_types(stack: Stack, dst: str, rc: int) -> None:
    p = params4(dst)
    before = bytes(p)
    assert lookup(stack, p) == rc
    assert bytes(p) == before                  # nothing written back on these paths


def test_forwarding_disabled_on_the_named_device(fresh: Stack) -> None:
    fresh.run_script("ip netns exec r sysctl -w net.ipv4.conf.rin.forwarding=0\n")
    assert lookup(fresh, params4("10.9.1.1")) == F.BPF_FIB_LKUP_RET_FWD_DISABLED
    # the egress perspective names rout, still forwarding
    assert lookup(fresh, params4("10.9.1.1", ifindex=20), F.BPF_FIB_LOOKUP_OUTPUT) == 0


def test_frag_needed_xdp_always_checks(stack: Stack) -> None:
    p = params4("10.9.1.1", tot_len=1501)
    assert lookup(stack, p) == F.BPF_FIB_LKUP_RET_FRAG_NEEDED
    assert u16(p, 6) == 1500 and u32(p, 8) == 10   # ifindex not yet rewritten
    p = params4("10.70.0.1", tot_len=1401)          # locked route mtu
    assert lookup(stack, p) == F.BPF_FIB_LKUP_RET_FRAG_NEEDED and u16(p, 6) == 1400


def test_skb_without_tot_len_checks_the_skb_against_the_egress_device(stack: Stack) -> None:
    p = params4("10.9.1.1")
    assert lookup(stack, p, 0, skb_ctx(1518)) == F.BPF_FIB_LKUP_RET_SUCCESS
    assert u16(p, 6) == 1500
    p = params4("10.9.1.1")
    assert lookup(stack, p, 0, skb_ctx(1519)) == F.BPF_FIB_LKUP_RET_FRAG_NEEDED
    assert u16(p, 6) == 1500
    # with tot_len the skb length does not matter, the route MTU does
    p = params4("10.70.0.1", tot_len=1400)
    assert lookup(stack, p, 0, skb_ctx(9000)) == 0 and u16(p, 6) == 1400


def test_src_flag_returns_the_preferred_source(stack: Stack) -> None:
    p = params4("10.9.1.1", src="0.0.0.0")
    assert lookup(stack, p, F.BPF_FIB_LOOKUP_SRC) == 0
    assert bytes(p[16:20]) == bytes([10, 0, 2, 1])


def test_direct_tbid_and_mark(stack: Stack) -> None:
    # main has no route to 10.100/16
    assert lookup(stack, params4("10.100.0.1")) == F.BPF_FIB_LKUP_RET_NOT_FWDED
    assert lookup(stack, params4("10.100.0.1"), F.BPF_FIB_LOOKUP_DIRECT) == 4
    p = params4("10.100.0.1", tbid=100)
    assert lookup(stack, p, F.BPF_FIB_LOOKUP_DIRECT | F.BPF_FIB_LOOKUP_TBID) == 0
    assert u32(p, 8) == 20 and bytes(p[58:64]) == GW_MAC
    p = params4("10.100.0.1", tbid=101)        # no such table
    assert lookup(stack, p, F.BPF_FIB_LOOKUP_DIRECT | F.BPF_FIB_LOOKUP_TBID) == 4
    # the fwmark rule sends marked lookups to table 100 (only with the MARK flag)
    assert lookup(stack, params4("10.100.0.1", mark=7), F.BPF_FIB_LOOKUP_MARK) == 0
    assert lookup(stack, params4("10.100.0.1", mark=7)) == 4


def test_argument_errors(stack: Stack) -> None:
    assert lookup(stack, params4("10.9.1.1", ifindex=99)) == -errno.ENODEV
    assert lookup(stack, params4("10.9.1.1"), 1 << 6) == -errno.EINVAL
    assert lookup(stack, params4("10.9.1.1", family=7)) == -errno.EAFNOSUPPORT
    assert lookup(stack, bytearray(63)) == -errno.EINVAL


# ------------------------------------------------------------------------------ IPv6
def test_ipv6_success_and_codes(stack: Stack) -> None:
    p = params6("2001:db8:9::1", tot_len=1280)
    assert lookup(stack, p) == 0
    assert u32(p, 8) == 20 and u32(p, 12) == 9 and u16(p, 6) == 1500
    assert bytes(p[32:48]) == ipaddress.IPv6Address("2001:db8:2::2").packed
    assert bytes(p[52:58]) == ROUT_MAC and bytes(p[58:64]) == GW_MAC
    assert lookup(stack, params6("2001:db8:66::1")) == F.BPF_FIB_LKUP_RET_BLACKHOLE
    assert lookup(stack, params6("2001:db8:2::1")) == F.BPF_FIB_LKUP_RET_NOT_FWDED  # local
    assert lookup(stack, params6("fe80::1")) == F.BPF_FIB_LKUP_RET_NOT_FWDED
    assert lookup(stack, params6("2001:db8:9::1", src="fe80::2")) == 4
    assert lookup(stack, params6("3fff::1")) == F.BPF_FIB_LKUP_RET_NOT_FWDED
    assert lookup(stack, params6("2001:db8:2::55")) == F.BPF_FIB_LKUP_RET_NO_NEIGH
    p = params6("2001:db8:9::1", tot_len=1501)
    assert lookup(stack, p) == F.BPF_FIB_LKUP_RET_FRAG_NEEDED and u16(p, 6) == 1500
    p = params6("2001:db8:9::1", src="::")
    assert lookup(stack, p, F.BPF_FIB_LOOKUP_SRC) == 0
    assert bytes(p[16:32]) == ipaddress.IPv6Address("2001:db8:2::1").packed


def test_ipv6_unreachable_prohibit_and_forwarding(fresh: Stack) -> None:
    fresh.run_script("ip -n r -6 route add unreachable 2001:db8:67::/48\n"
                     "ip -n r -6 route add prohibit 2001:db8:68::/48\n")
    assert lookup(fresh, params6("2001:db8:67::1")) == F.BPF_FIB_LKUP_RET_UNREACHABLE
    assert lookup(fresh, params6("2001:db8:68::1")) == F.BPF_FIB_LKUP_RET_PROHIBIT
    fresh.run_script("ip netns exec r sysctl -w net.ipv6.conf.rin.forwarding=0\n")
    assert lookup(fresh, params6("2001:db8:9::1")) == F.BPF_FIB_LKUP_RET_FWD_DISABLED


def test_ipv6_route_mtu_limits_only_when_locked(fresh: Stack) -> None:
    """ip6_mtu_from_fib6: an unlocked mtu metric does not limit forwarding (kernel-checked)."""
    fresh.run_script("ip -n r -6 route add 2001:db8:70::/48 via 2001:db8:2::2 mtu 1400\n"
                     "ip -n r -6 route add 2001:db8:71::/48 via 2001:db8:2::2 mtu lock 1400\n")
    p = params6("2001:db8:70::1", tot_len=1401)
    assert lookup(fresh, p) == 0 and u16(p, 6) == 1500
    p = params6("2001:db8:71::1", tot_len=1401)
    assert lookup(fresh, p) == F.BPF_FIB_LKUP_RET_FRAG_NEEDED and u16(p, 6) == 1400


#: a forwarding namespace whose only IPv6-capable device has no address at all
NO_ADDR = """
ip netns add x
ip netns add y
ip -n x link add ra index 10 address 02:00:00:00:00:0a type veth peer name pb netns y
ip -n x link set ra addrgenmode none
ip -n x link set ra up
ip -n y link set pb up
ip netns exec x sysctl -w net.ipv6.conf.all.forwarding=1
ip -n x -6 route add 2001:db8:9::/48 dev ra
ip -n x -6 neigh add 2001:db8:9::1 lladdr 02:00:00:00:00:09 dev ra nud permanent
"""


def test_ipv6_no_src_addr() -> None:
    s = Stack()
    s.run_script(NO_ADDR)
    fib = F.make_fib_lookup(s.world.netns("x"))
    p = params6("2001:db8:9::1", src="::")
    assert fib(p, F.BPF_FIB_LOOKUP_SRC, xdp_ctx()) == F.BPF_FIB_LKUP_RET_NO_SRC_ADDR
    assert u32(p, 8) == 10 and u32(p, 12) == 1024      # written before the source choice
    assert bytes(p[16:32]) == bytes(16) and bytes(p[52:64]) == bytes(12)
    p = params6("2001:db8:9::1", src="::")
    assert fib(p, 0, xdp_ctx()) == 0 and bytes(p[58:64]) == bytes.fromhex("020000000009")


# ---------------------------------------------------------------------- through a program
def _prog_text(dst: int, flags: int) -> str:
    """An XDP program that fills bpf_fib_lookup on its stack (AF_INET, ifindex 10,
    ipv4_dst = dst, tot_len 100), calls the helper and copies the struct to the packet."""
    lines = ["mov %r6, %r1", "mov %r1, 0"]
    lines += [f"stxdw [%r10{off:+d}], %r1" for off in range(-64, 0, 8)]
    lines += ["stb [%r10-64], 2", "sth [%r10-58], 100", "stw [%r10-56], 10",
              f"stw [%r10-32], {dst}",
              "mov %r1, %r6", "mov %r2, %r10", "add %r2, -64", "mov %r3, 64",
              f"mov %r4, {flags}", "call 69", "mov %r7, %r0",
              "ldxw %r2, [%r6+0]", "ldxw %r3, [%r6+4]", "mov %r4, %r2", "add %r4, 64",
              "jgt %r4, %r3, out"]
    for off in range(0, 64, 8):
        lines += [f"ldxdw %r5, [%r10{off - 64:+d}]", f"stxdw [%r2+{off}], %r5"]
    lines += ["out:", "mov %r0, %r7", "exit"]
    return "\n".join(lines)


def test_helper_69_through_an_xdp_program(stack: Stack) -> None:
    dst = int.from_bytes(bytes([10, 9, 1, 1]), "little")
    prog = Program(C.BPF_PROG_TYPE_XDP, assemble(_prog_text(dst, 0)))
    env = RunEnv(fib_lookup=F.make_fib_lookup(stack.world.netns("r")))
    rc, out = prog.run_xdp(bytes(64), env, ingress_ifindex=10)
    assert rc == 0
    assert u32(bytearray(out), 8) == 20 and out[58:64] == GW_MAC and u16(bytearray(out), 6) == 1500


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=64, max_size=64), st.integers(0, 0xFFFFFFFF))
def test_arbitrary_params_never_raise(stack: Stack, raw: bytes, flags: int) -> None:
    """Any struct contents and flags give an int in the helper's range, never an exception."""
    p = bytearray(raw)
    p[0] = (F.AF_INET, F.AF_INET6, raw[0])[raw[1] % 3]
    rc = lookup(stack, p, flags)
    assert -errno.EAFNOSUPPORT <= rc <= F.BPF_FIB_LKUP_RET_NO_SRC_ADDR
    assert len(p) == 64


def _verdict_prog(dst: int) -> str:
    """XDP: bpf_fib_lookup(dst) from the stack; SUCCESS → XDP_DROP (1), anything else →
    XDP_PASS (2) — so the verdict on a live device shows what the helper answered."""
    text = _prog_text(dst, 0)
    head = text.split("call 69")[0]
    return head + "call 69\njne %r0, 0, pass\nmov %r0, 1\nexit\npass:\nmov %r0, 2\nexit"


@pytest.mark.parametrize(("dst", "action"), [("10.9.1.1", 1), ("10.66.0.1", 2)])
def test_helper_69_on_the_stack_hook_uses_the_namespace_fib(dst: str, action: int) -> None:
    """Attached with generic XDP on the router's ingress, the helper answers from the
    router namespace's FIB and neighbour table (core/hooks.py gives the RunEnv its FIB)."""
    from netstack.core import hooks

    s = Stack()
    s.run_script(TOPO)
    rin = s.world.netns("r").get("rin")
    d = int.from_bytes(bytes(int(x) for x in dst.split(".")), "little")
    att = hooks.xdp_attach(rin, Program(C.BPF_PROG_TYPE_XDP, assemble(_verdict_prog(d))))
    frame = bytes.fromhex("020000000102" "020000000101" "0800") + bytes(46)
    s.inject("h1", "e0", [frame])
    assert att.actions == {action: 1}
