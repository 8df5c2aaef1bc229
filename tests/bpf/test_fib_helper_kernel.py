"""Kernel differential for bpf_fib_lookup: the router topology of test_fib_helper.py is built
in real namespaces, one XDP program (copy a ``struct bpf_fib_lookup`` and the flags from the
packet, call helper 69, copy the struct back) runs with BPF_PROG_TEST_RUN inside the router
namespace (setns around the call) and through netstack's interpreter with
``RunEnv.fib_lookup = make_fib_lookup(router)``; retval and the written-back struct must be
equal.  Skips, saying why, without root, bpf(2) or iproute2."""
from __future__ import annotations

import ipaddress
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from netstack.api import Stack
from netstack.bpf import context as C
from netstack.bpf import fib_helper as F
from netstack.bpf import kernel as K
from netstack.bpf.asm import assemble
from netstack.bpf.progs import Program, RunEnv

from .test_fib_helper import NO_ADDR, TOPO, params4, params6

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from kernel.oracle import _InNetns, namespaces_in, rename_namespaces  # noqa: E402

#: the program: r6 = ctx; need 68 bytes (struct + u32 flags) in the packet
PROG = "\n".join(
    ["mov %r6, %r1", "ldxw %r7, [%r6+0]", "ldxw %r8, [%r6+4]", "mov %r2, %r7", "add %r2, 68",
     "jgt %r2, %r8, short"]
    + [f"ldxdw %r3, [%r7+{o}]\nstxdw [%r10{o - 64:+d}], %r3" for o in range(0, 64, 8)]
    + ["ldxw %r4, [%r7+64]", "mov %r1, %r6", "mov %r2, %r10", "add %r2, -64", "mov %r3, 64",
       "call 69", "mov %r9, %r0",
       # packet pointers are invalidated by the helper call: reload and re-check
       "ldxw %r7, [%r6+0]", "ldxw %r8, [%r6+4]", "mov %r2, %r7", "add %r2, 68",
       "jgt %r2, %r8, short"]
    + [f"ldxdw %r3, [%r10{o - 64:+d}]\nstxdw [%r7+{o}], %r3" for o in range(0, 64, 8)]
    + ["mov %r0, %r9", "exit", "short:", "mov %r0, 1000", "exit"])

#: the same for SCHED_CLS: packet pointers are __sk_buff data (76) / data_end (80)
PROG_TC = PROG.replace("[%r6+0]", "[%r6+76]").replace("[%r6+4]", "[%r6+80]")

V4 = [("10.9.1.1", 0, 1500), ("10.9.1.1", 0, 1501), ("10.70.0.1", 0, 1401),
      ("10.70.0.1", 0, 1400), ("10.0.2.77", 0, 0), ("10.0.2.77", F.BPF_FIB_LOOKUP_SKIP_NEIGH, 0),
      ("10.66.0.1", 0, 0), ("10.67.0.1", 0, 0), ("10.68.0.1", 0, 0), ("10.0.2.1", 0, 0),
      ("10.0.2.255", 0, 0), ("192.0.2.1", 0, 0), ("10.100.0.1", 0, 0),
      ("10.100.0.1", F.BPF_FIB_LOOKUP_DIRECT, 0), ("10.9.1.1", F.BPF_FIB_LOOKUP_SRC, 0),
      ("10.9.1.1", F.BPF_FIB_LOOKUP_DIRECT | F.BPF_FIB_LOOKUP_SRC, 100),
      ("10.9.1.1", 1 << 7, 0)]
V6 = [("2001:db8:9::1", 0, 1280), ("2001:db8:9::1", 0, 1501), ("2001:db8:66::1", 0, 0),
      ("2001:db8:2::1", 0, 0), ("fe80::1", 0, 0), ("3fff::1", 0, 0), ("2001:db8:2::55", 0, 0),
      ("2001:db8:2::55", F.BPF_FIB_LOOKUP_SKIP_NEIGH, 0), ("2001:db8:9::1", F.BPF_FIB_LOOKUP_SRC, 0)]


def _cases() -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for dst, flags, tl in V4:
        out.append((f"v4 {dst} flags={flags:#x} tot_len={tl}",
                    bytes(params4(dst, tot_len=tl, src="0.0.0.0" if flags & 16 else "10.0.1.2"))
                    + struct.pack("<I", flags)))
    out.append(("v4 tbid 100", bytes(params4("10.100.0.1", tbid=100)) + struct.pack("<I", 9)))
    out.append(("v4 tbid 101", bytes(params4("10.100.0.1", tbid=101)) + struct.pack("<I", 9)))
    out.append(("v4 mark 7", bytes(params4("10.100.0.1", mark=7)) + struct.pack("<I", 32)))
    out.append(("v4 output rout", bytes(params4("10.9.1.1", ifindex=20)) + struct.pack("<I", 2)))
    out.append(("v4 bad ifindex", bytes(params4("10.9.1.1", ifindex=99)) + bytes(4)))
    out.append(("family 7", bytes(params4("10.9.1.1", family=7)) + bytes(4)))
    for dst, flags, tl in V6:
        out.append((f"v6 {dst} flags={flags:#x} tot_len={tl}",
                    bytes(params6(dst, tot_len=tl, src="::" if flags & 16 else "2001:db8:1::2"))
                    + struct.pack("<I", flags)))
    return out


def _why_not() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2 `ip` not found"
    return K.available()


def _build(text: str, suffix: str = ""):  # type: ignore[no-untyped-def]
    """Build ``text`` in real namespaces with unique names; yield the name mapping."""
    why = _why_not()
    if why:
        print(f"SKIP bpf_fib_lookup kernel differential: {why}")
        pytest.skip(why)
    tag = f"fl{os.getpid()}{suffix}"
    mapping = {n: f"{tag}{n}" for n in namespaces_in(text)}
    try:
        _kernel_script(text, mapping)
        yield mapping
    finally:
        for n in mapping.values():
            subprocess.run(["ip", "netns", "del", n], capture_output=True, timeout=20)


@pytest.fixture(scope="module")
def kernel_router():  # type: ignore[no-untyped-def]
    for mapping in _build(TOPO):
        yield mapping["r"], mapping


def test_no_src_addr_agrees() -> None:
    s = Stack()
    s.run_script(NO_ADDR)
    insns = assemble(PROG)
    prog = Program(C.BPF_PROG_TYPE_XDP, insns)
    env = RunEnv(fib_lookup=F.make_fib_lookup(s.world.netns("x")))
    cases = [(f"no addr flags={fl}", bytes(params6("2001:db8:9::1", src="::"))
              + struct.pack("<I", fl)) for fl in (0, F.BPF_FIB_LOOKUP_SRC, 4 | 16)]
    for mapping in _build(NO_ADDR, "n"):
        diffs = _compare(mapping["x"], prog, env, insns, cases)
        assert not diffs, "\n".join(diffs)


#: applied to both sides after the first comparison: forwarding off on rin, more route
#: types and neighbour states
PHASE2 = """
ip -n r -6 route add unreachable 2001:db8:67::/48
ip -n r -6 route add prohibit 2001:db8:68::/48
ip -n r -6 route add 2001:db8:70::/48 via 2001:db8:2::2 mtu 1400
ip -n r -6 route add 2001:db8:71::/48 via 2001:db8:2::2 mtu lock 1400
ip -n r neigh replace 10.0.2.2 lladdr 02:00:00:00:02:02 dev rout nud stale
ip -n r neigh add 10.0.2.3 dev rout nud incomplete
ip -n r neigh add 10.0.2.4 lladdr 02:00:00:00:02:04 dev rout nud noarp
"""
PHASE3 = """
ip netns exec r sysctl -w net.ipv4.conf.rin.forwarding=0
ip netns exec r sysctl -w net.ipv6.conf.rin.forwarding=0
"""


def _cases2() -> list[tuple[str, bytes]]:
    out = []
    for dst, flags, tl in [("2001:db8:67::1", 0, 0), ("2001:db8:68::1", 0, 0),
                           ("2001:db8:70::1", 0, 1400), ("2001:db8:70::1", 0, 1401),
                           ("2001:db8:71::1", 0, 1400), ("2001:db8:71::1", 0, 1401),
                           ("2001:db8:2::1", F.BPF_FIB_LOOKUP_DIRECT, 0),
                           ("2001:db8:9::1", F.BPF_FIB_LOOKUP_DIRECT, 0),
                           ("2001:db8:9::1", F.BPF_FIB_LOOKUP_MARK, 0)]:
        out.append((f"v6 {dst} flags={flags:#x} tot_len={tl}",
                    bytes(params6(dst, tot_len=tl)) + struct.pack("<I", flags)))
    out.append(("v6 output rout", bytes(params6("2001:db8:9::1", ifindex=20)) + struct.pack("<I", 2)))
    for dst, flags in [("10.9.1.1", 0), ("10.0.2.3", 0), ("10.0.2.4", 0),
                       ("10.0.2.1", F.BPF_FIB_LOOKUP_DIRECT), ("10.0.2.3", 4)]:
        out.append((f"v4 {dst} flags={flags:#x}", bytes(params4(dst)) + struct.pack("<I", flags)))
    return out


def _kernel_script(text: str, mapping: dict[str, str]) -> None:
    for line in rename_namespaces(text, mapping).strip().splitlines():
        r = subprocess.run(line.split(), capture_output=True, text=True, timeout=20)
        if r.returncode:
            pytest.fail(f"{line}: {r.stderr.strip()}")


def _compare(ns: str, prog: Program, env: RunEnv, insns: list, cases: list[tuple[str, bytes]]
             ) -> list[str]:
    diffs: list[str] = []
    with _InNetns(ns):
        kprog = K.KProg(C.BPF_PROG_TYPE_XDP, insns)
        try:
            for name, data in cases:
                frame = data + bytes(8)
                kret, kout, _, _ = kprog.test_run(frame)
                nret, nout = prog.run_xdp(frame, env)
                if (kret, kout[:64]) != (nret, nout[:64]):
                    diffs.append(f"{name}: kernel rc={kret} {kout[:64].hex()}\n"
                                 f"{' ' * len(name)}  netstack rc={nret} {nout[:64].hex()}")
        finally:
            kprog.close()
    return diffs


def test_kernel_and_netstack_agree(kernel_router: tuple[str, dict[str, str]]) -> None:
    ns, mapping = kernel_router
    insns = assemble(PROG)
    s = Stack()
    s.run_script(TOPO)
    prog = Program(C.BPF_PROG_TYPE_XDP, insns)
    env = RunEnv(fib_lookup=F.make_fib_lookup(s.world.netns("r")))
    diffs = _compare(ns, prog, env, insns, _cases())
    _kernel_script(PHASE2, mapping)
    s.run_script(PHASE2)
    diffs += _compare(ns, prog, env, insns, _cases2())
    _kernel_script(PHASE3, mapping)
    s.run_script(PHASE3)
    diffs += _compare(ns, prog, env, insns, [(f"fwd off: {n}", d) for n, d in _cases()[:3]]
                      + [(f"fwd off: {n}", d) for n, d in _cases()[-3:]])
    assert not diffs, "\n".join(diffs)


def test_program_reports_helper_codes() -> None:
    """The program itself (no kernel): the copied-back struct and rc reach the packet."""
    s = Stack()
    s.run_script(TOPO)
    prog = Program(C.BPF_PROG_TYPE_XDP, assemble(PROG))
    env = RunEnv(fib_lookup=F.make_fib_lookup(s.world.netns("r")))
    rc, out = prog.run_xdp(bytes(params4("10.66.0.1")) + bytes(12), env)
    assert rc == F.BPF_FIB_LKUP_RET_BLACKHOLE
    rc, out = prog.run_xdp(bytes(params4("10.9.1.1")) + bytes(12), env)
    assert rc == 0 and struct.unpack_from("<I", out, 8)[0] == 20
    assert bytes(out[32:36]) == ipaddress.IPv4Address("10.0.2.2").packed
    assert prog.run_xdp(bytes(20), env)[0] == 1000


def test_tc_skb_mtu_rules_agree() -> None:
    """bpf_skb_fib_lookup: without tot_len the skb is checked against the egress device and
    mtu_result is the device MTU; with tot_len the route MTU applies."""
    for mapping in _build(TOPO, "t"):
        _tc_compare(mapping["r"])


def _tc_compare(ns: str) -> None:
    insns = assemble(PROG_TC)
    s = Stack()
    s.run_script(TOPO)
    prog = Program(C.BPF_PROG_TYPE_SCHED_CLS, insns)
    env = RunEnv(fib_lookup=F.make_fib_lookup(s.world.netns("r")))
    cases = [(dst, tl, pad) for dst in ("10.9.1.1", "10.70.0.1", "10.0.2.77")
             for tl in (0, 1400, 1401) for pad in (0, 1518 - 68, 1519 - 68)]
    cases += [("2001:db8:9::1", tl, pad) for tl in (0, 1501) for pad in (0, 1519 - 68)]
    diffs: list[str] = []
    with _InNetns(ns):
        kprog = K.KProg(C.BPF_PROG_TYPE_SCHED_CLS, insns)
        try:
            for dst, tl, pad in cases:
                pr = params6(dst, tot_len=tl) if ":" in dst else params4(dst, tot_len=tl)
                frame = bytes(pr) + bytes(4) + bytes(pad)
                kret, kout, _, _ = kprog.test_run(frame)
                nret, nout, _ = prog.run_tc(frame, env)
                if (kret, kout[:64]) != (nret & 0xFFFFFFFF, nout[:64]):
                    diffs.append(f"{dst} tot_len={tl} len={len(frame)}: kernel rc={kret} "
                                 f"{kout[:64].hex()}\n  netstack rc={nret} {nout[:64].hex()}")
        finally:
            kprog.close()
    assert not diffs, "\n".join(diffs)
