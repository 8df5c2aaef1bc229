"""``net.netfilter.nf_conntrack_frag6_{low,high}_thresh`` keep low <= high on writes
(nf_ct_frag6_sysctl_init: proc_doulongvec_minmax bounded by the other knob), as measured
on the kernel: the same ``sysctl`` sequence in a scratch namespace and in netstack."""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.api import Stack
from netstack.core.sysctl import SysctlError
from netstack.core.world import World
from netstack.netfilter import conntrack as nfct

LOW = "net.netfilter.nf_conntrack_frag6_low_thresh"
HIGH = "net.netfilter.nf_conntrack_frag6_high_thresh"
SEQ = [
    f"sysctl {LOW} {HIGH}",
    f"sysctl -w {LOW}=5000000",           # above high: EINVAL
    f"sysctl -w {HIGH}=1000",             # below low: EINVAL
    f"sysctl -w {HIGH}=3145728",          # equal: fine
    f"sysctl -w {LOW}=3145728",
    f"sysctl -w {LOW}=3145729",
    f"sysctl -w {LOW}=-1",
    f"sysctl -w {HIGH}=-1",
    f"sysctl -w {LOW}=0",
    f"sysctl -w {HIGH}=0",
    f"sysctl -w {LOW}=1",
    f"sysctl -w {HIGH}=abc",
    f"sysctl -w {HIGH}=8000000",
    f"sysctl -w {LOW}=7999999",
    f"sysctl {LOW} {HIGH}",
]


@contextmanager
def _scratch_ns(prefix: str) -> Iterator[str]:
    """A kernel namespace for the test's commands (skips when one cannot be created),
    deleted afterwards."""
    ns = f"{prefix}-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode:
        pytest.skip("cannot create a network namespace")
    try:
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def _kernel_runs(ns: str, seq: list[str]) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each command of ``seq`` run in kernel namespace
    ``ns``."""
    out = []
    for c in seq:
        r = subprocess.run(["ip", "netns", "exec", ns, *c.split()], capture_output=True,
                           text=True)
        out.append((r.returncode, r.stdout, r.stderr))
    return out


def _netstack_runs(st_: Stack, seq: list[str]) -> list[tuple[int, str, str]]:
    """The same for netstack's namespace ``a``."""
    out = []
    for c in seq:
        r = st_.command(["ip", "netns", "exec", "a", *c.split()])
        out.append((r.rc, r.stdout, r.stderr))
    return out


def _kernel() -> list[tuple[int, str, str]]:
    if os.geteuid() != 0 or shutil.which("sysctl") is None:
        pytest.skip("needs root and sysctl")
    with _scratch_ns("nfc-frag6") as ns:
        # conntrack (and its IPv6 defrag sysctls) for this namespace
        subprocess.run(["ip", "netns", "exec", ns, "nft", "add table ip6 t; add chain ip6 t c "
                        "{ type filter hook prerouting priority 0; }; add rule ip6 t c ct state "
                        "new"], capture_output=True)
        r = subprocess.run(["ip", "netns", "exec", ns, "sysctl", LOW], capture_output=True)
        if r.returncode:
            pytest.skip("nf_conntrack_frag6 sysctls not available")
        return _kernel_runs(ns, SEQ)


def _netstack() -> list[tuple[int, str, str]]:
    st_ = Stack()
    st_.run_script("ip netns add a\n"
                   "ip netns exec a nft 'add table ip6 t; add chain ip6 t c { type filter "
                   "hook prerouting priority 0; }; add rule ip6 t c ct state new'\n")
    return _netstack_runs(st_, SEQ)


def test_frag6_thresholds_cross_checked_like_kernel():
    assert _netstack() == _kernel()


def test_frag6_thresholds_without_root():
    n = dict(zip(SEQ, _netstack()))
    assert n[f"sysctl -w {LOW}=5000000"] == \
        (1, "", f'sysctl: setting key "{LOW}": Invalid argument\n')
    assert n[f"sysctl -w {HIGH}=1000"] == \
        (1, "", f'sysctl: setting key "{HIGH}": Invalid argument\n')
    assert n[f"sysctl -w {HIGH}=3145728"] == (0, f"{HIGH} = 3145728\n", "")
    assert n[f"sysctl {LOW} {HIGH}"][1] == f"{LOW} = 7999999\n{HIGH} = 8000000\n"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(-5, 10_000_000)), max_size=12))
def test_low_never_exceeds_high(writes):
    """Invariant: whatever is written, low <= high holds and a refused write changes
    nothing (EINVAL)."""
    w = World(subsystems=[])
    net = w.netns_add("x")
    nfct.ct_sysctl_init(net)
    tbl = net.sysctl
    for is_low, v in writes:
        key = LOW if is_low else HIGH
        before = (tbl.values[LOW], tbl.values[HIGH])
        other = before[1] if is_low else before[0]
        ok = v >= 0 and (v <= other if is_low else v >= other)
        try:
            tbl.set(key, str(v))
            assert ok
        except SysctlError as e:
            assert not ok and e.errno == 22
            assert (tbl.values[LOW], tbl.values[HIGH]) == before
        assert tbl.values[LOW] <= tbl.values[HIGH]


IPFRAG_SEQ = [
    "sysctl -w net.ipv4.ipfrag_low_thresh=9000000",
    "sysctl -w net.ipv4.ipfrag_high_thresh=100",
    "sysctl -w net.ipv4.ipfrag_high_thresh=-5",
    "sysctl -w net.ipv6.ip6frag_low_thresh=9000000",
    "sysctl -w net.ipv6.ip6frag_high_thresh=100",
    "sysctl -w net.ipv6.ip6frag_low_thresh=-5",
    "sysctl -w net.ipv6.ip6frag_low_thresh=4194304",
    "sysctl -w net.ipv4.ipfrag_high_thresh=3145728",
    "sysctl net.ipv4.ipfrag_low_thresh net.ipv4.ipfrag_high_thresh "
    "net.ipv6.ip6frag_low_thresh net.ipv6.ip6frag_high_thresh",
]


@pytest.mark.skipif(not hasattr(__import__("netstack.core.sysctl", fromlist=["x"]),
                                "bounded_pair"),
                    reason="patch NFC-4 (ipfrag/ip6frag threshold cross-check) not applied")
def test_ipfrag_thresholds_cross_checked_like_kernel():
    st_ = Stack()
    st_.run_script("ip netns add a\n")
    n = _netstack_runs(st_, IPFRAG_SEQ)
    assert n[0] == (1, "", 'sysctl: setting key "net.ipv4.ipfrag_low_thresh": '
                    'Invalid argument\n')
    if os.geteuid() != 0 or shutil.which("sysctl") is None:
        pytest.skip("needs root and sysctl for the kernel side")
    with _scratch_ns("nfc-ipfrag") as ns:
        k = _kernel_runs(ns, IPFRAG_SEQ)
    assert n == k
