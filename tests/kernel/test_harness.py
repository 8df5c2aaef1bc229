"""Tests of the harness itself: renaming, checksum completion, masking, diffs.

Most need no privileges; the last few use the kernel fixture to show that
the oracle is reproducible once masked and that it cleans up after itself.
"""

from __future__ import annotations

import json
import os
import struct

import dpkt
import pytest
from hypothesis import given, strategies as st

from . import compare
from .cases import IP_H1, IP_R1, MAC_H1, MAC_R1, eth, eth_ip, icmp4_echo, ip6, udp4
from .conftest import Kernel
from .oracle import (NETNS_RUN_DIR, OracleError, complete_partial_checksum, namespaces_in,
                     rename_namespaces, run_kernel)
from .test_ipv4_forward import ECHO, FORWARD

# --- namespace renaming -------------------------------------------------------

SCRIPT = """\
ip netns add r   # router
ip netns add h1
ip netns exec r sysctl -w net.ipv4.ip_forward=1
ip -n r link add r index 3 type veth peer name h1 netns h1
ip -netns h1 link set h1 up
ip link set dev x netns r
"""


def test_namespaces_in_finds_adds_in_order() -> None:
    assert namespaces_in(SCRIPT) == ["r", "h1"]
    assert namespaces_in("# ip netns add ghost\n") == []


def test_rename_touches_only_namespace_positions() -> None:
    out = rename_namespaces(SCRIPT, {"r": "r-k1", "h1": "h1-k1"})
    assert out.splitlines() == [
        "ip netns add r-k1   # router",
        "ip netns add h1-k1",
        "ip netns exec r-k1 sysctl -w net.ipv4.ip_forward=1",
        "ip -n r-k1 link add r index 3 type veth peer name h1 netns h1-k1",
        "ip -netns h1-k1 link set h1 up",
        "ip link set dev x netns r-k1",
    ]


@given(st.text(alphabet="ip -netns addexc rh1\n", max_size=80))
def test_rename_with_identity_mapping_is_identity(text: str) -> None:
    assert rename_namespaces(text, {"r": "r", "h1": "h1"}) == text


# --- checksum completion (skb_checksum_help) -----------------------------------


def _pseudo_partial(payload: bytes) -> tuple[bytes, int]:
    """A UDP/IPv4 frame carrying only the pseudo-header sum, as veth sends it."""
    ip = dpkt.ip.IP(bytes(eth_ip(MAC_R1, MAC_H1, udp4(IP_R1, IP_H1, 1, 2, payload)))[14:])
    pseudo = struct.pack("!4s4sxBH", ip.src, ip.dst, 17, 8 + len(payload))
    folded = dpkt.in_cksum_done(dpkt.in_cksum_add(0, pseudo))
    partial_field = (~folded) & 0xFFFF  # the kernel stores the non-complemented sum
    frame = bytearray(eth_ip(MAC_R1, MAC_H1, udp4(IP_R1, IP_H1, 1, 2, payload)))
    full = struct.unpack("!H", frame[14 + 20 + 6 : 14 + 20 + 8])[0]
    frame[14 + 20 + 6 : 14 + 20 + 8] = struct.pack("!H", partial_field)
    return bytes(frame), full


@given(st.binary(max_size=200))
def test_complete_partial_checksum_matches_full_checksum(payload: bytes) -> None:
    frame, full = _pseudo_partial(payload)
    done = complete_partial_checksum(frame, 14 + 20, 6)
    assert struct.unpack("!H", done[14 + 20 + 6 : 14 + 20 + 8])[0] == full
    assert done[: 14 + 26] == frame[: 14 + 26] and done[14 + 28 :] == frame[14 + 28 :]


def test_complete_partial_checksum_rejects_bad_offsets() -> None:
    with pytest.raises(OracleError):
        complete_partial_checksum(b"\0" * 20, 18, 6)


# --- masking, noise, diffs ------------------------------------------------------

REPLY_A = eth_ip(MAC_H1, MAC_R1, icmp4_echo(IP_R1, IP_H1, 1, 1, b"x", ident=0x1111))
REPLY_B = eth_ip(MAC_H1, MAC_R1, icmp4_echo(IP_R1, IP_H1, 1, 1, b"x", ident=0x2222))


def test_mask_hides_id_and_checksum_of_originated_packets_only() -> None:
    assert REPLY_A != REPLY_B
    assert compare.mask_frame(REPLY_A, [IP_R1]) == compare.mask_frame(REPLY_B, [IP_R1])
    assert compare.mask_frame(REPLY_A, ["10.9.9.9"]) == REPLY_A
    assert compare.frames_diff(("h1", "v1h"), [REPLY_A], [REPLY_B], [IP_R1]) is None
    assert compare.frames_diff(("h1", "v1h"), [REPLY_A], [REPLY_B]) is not None


@given(st.binary(max_size=80))
def test_mask_is_idempotent_and_never_raises(frame: bytes) -> None:
    once = compare.mask_frame(frame, [IP_R1])
    assert compare.mask_frame(once, [IP_R1]) == once and len(once) == len(frame)
    compare.describe(frame)
    compare.is_noise(frame)


def _icmp6_frame(src: str, dst: str, icmp: bytes, hbh: bool = False) -> bytes:
    payload = (bytes([58, 0, 5, 2, 0, 0, 1, 0]) + icmp) if hbh else icmp
    hdr = struct.pack("!IHBB16s16s", 6 << 28, len(payload), 0 if hbh else 58, 1 if hbh else 255,
                      ip6(src), ip6(dst))
    return eth("33:33:00:00:00:16", MAC_R1, 0x86DD, hdr + payload)


def test_noise_is_mld_rs_and_dad_only() -> None:
    mld2 = _icmp6_frame("fe80::1", "ff02::16", bytes([143, 0, 0, 0, 0, 0, 0, 1]) + bytes(20), True)
    rs = _icmp6_frame("fe80::1", "ff02::2", bytes([133, 0, 0, 0, 0, 0, 0, 0]))
    dad = _icmp6_frame("::", "ff02::1:ff00:1", bytes([135, 0, 0, 0, 0, 0, 0, 0]) + ip6("fe80::1"))
    ns = _icmp6_frame("fe80::2", "ff02::1:ff00:1", bytes([135, 0, 0, 0, 0, 0, 0, 0]) + ip6("fe80::1"))
    assert compare.is_noise(mld2) and compare.is_noise(rs) and compare.is_noise(dad)
    assert not compare.is_noise(ns)
    assert not compare.is_noise(REPLY_A)


def test_diff_names_the_first_differing_field() -> None:
    a = eth_ip(MAC_H1, MAC_R1, udp4(IP_H1, IP_R1, 1, 2, b"p", ttl=9))
    b = eth_ip(MAC_H1, MAC_R1, udp4(IP_H1, IP_R1, 1, 2, b"p", ttl=8))
    text = compare.frames_diff(("h1", "v1h"), [a], [b])
    assert text and "ttl" in text and "frame #0" in text
    missing = compare.frames_diff(("h1", "v1h"), [a], [])
    assert missing and "(none)" in missing


def test_canonical_json_drops_unmodelled_fields_and_order() -> None:
    k = json.dumps([{"dst": "10.0.0.2", "dev": "v1r", "state": ["STALE"], "used": 3},
                    {"dst": "10.0.0.1", "dev": "v1r", "state": ["PERMANENT"]}])
    n = json.dumps([{"dst": "10.0.0.1", "dev": "v1r", "state": ["PERMANENT"]},
                    {"dst": "10.0.0.2", "dev": "v1r", "state": ["STALE"]}])
    assert compare.state_diff("ip -n r -j neigh show", k, n) is None
    n2 = n.replace("STALE", "REACHABLE")
    assert "REACHABLE" in (compare.state_diff("ip -n r -j neigh show", k, n2) or "")


def test_kind_of() -> None:
    assert compare.kind_of("ip -n r -j neigh show") == "neigh"
    assert compare.kind_of("ip -j -6 -n r r") == "route"
    assert compare.kind_of("ip -n r -j addr show dev v1r") == "addr"
    with pytest.raises(ValueError):
        compare.kind_of("ip -n r -j xfrm state")


# --- the oracle against itself ---------------------------------------------------


def test_kernel_is_its_own_match_after_masking(kernel: Kernel) -> None:
    """Two fresh kernel runs agree once masked; the echo reply ID shows why masking is needed."""
    for case in (ECHO, FORWARD):
        a = run_kernel(case.script, list(case.sends), list(case.captures), list(case.queries),
                       case.settle)
        b = kernel.run(case)
        assert compare.results_diff(a, b, case.ipv4_originators) is None


def test_failed_script_cleans_up(kernel: Kernel) -> None:
    tag = f"-k{os.getpid()}"
    with pytest.raises(OracleError, match="scenario script failed"):
        run_kernel("ip netns add zzq\nfalse\n", [], [], [], 0.05)
    assert not os.path.exists(os.path.join(NETNS_RUN_DIR, "zzq" + tag))


def test_successful_run_cleans_up(kernel: Kernel) -> None:
    run_kernel("ip netns add zzq\nip -n zzq link set lo up\n", [], [], ["ip -n zzq -j link show"],
               0.05)
    assert not os.path.exists(os.path.join(NETNS_RUN_DIR, f"zzq-k{os.getpid()}"))


# --- the netstack driver against a scripted double ----------------------------------


class _Frame:
    def __init__(self, ts_ns: int, data: bytes) -> None:
        self.ts_ns, self.data = ts_ns, data


class _Cmd:
    def __init__(self, rc: int, stdout: str, stderr: str = "") -> None:
        self.rc, self.stdout, self.stderr = rc, stdout, stderr


class _FakeStack:
    """Echoes each injected frame to h2 and emits one 'timer' frame 2.5 s later."""

    calls: list[tuple] = []

    def __init__(self) -> None:
        self.now = 0
        self.caps: dict[tuple[str, str], list[_Frame]] = {}
        self.timers: list[tuple[int, bytes]] = []
        _FakeStack.calls = []

    def run_script(self, text: str, name: str = "scenario.sh") -> None:
        _FakeStack.calls.append(("run_script", name))

    def capture(self, ns: str, dev: str) -> list[_Frame]:
        return self.caps.setdefault((ns, dev), [])

    def inject(self, ns: str, dev: str, frames: list[bytes]) -> None:
        _FakeStack.calls.append(("inject", ns, dev, self.now))
        for f in frames:
            self.caps[("h2", "v2h")].append(_Frame(self.now, f))
            self.timers.append((self.now + 2_500_000_000, b"timer:" + f))

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1e9)
        due = [t for t in self.timers if t[0] <= self.now]
        self.timers = [t for t in self.timers if t[0] > self.now]
        for ts, f in due:
            self.caps[("h1", "v1h")].append(_Frame(ts, f))

    def command(self, cmd: str) -> _Cmd:
        return _Cmd(0, "[]\n")


def test_run_netstack_drives_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    import netstack

    from .netstack_side import run_netstack
    from .oracle import Send

    monkeypatch.setattr(netstack, "Stack", _FakeStack, raising=False)
    res = run_netstack("ip netns add h1\n", [Send("h1", "v1h", b"A"), Send("h1", "v1h", b"B", 1.0)],
                       [("h1", "v1h"), ("h2", "v2h")], ["ip -n r -j neigh show"], 1.5, name="x.sh")
    assert _FakeStack.calls == [("run_script", "x.sh"), ("inject", "h1", "v1h", 0),
                                ("inject", "h1", "v1h", 1_000_000_000)]
    assert res.frames[("h2", "v2h")] == [b"A", b"B"]
    # Settling (1.5 s of silence) waited for both timer frames, due at 2.5 s and 3.5 s.
    assert res.frames[("h1", "v1h")] == [b"timer:A", b"timer:B"]
    assert res.times[("h1", "v1h")] == [2.5, 3.5]
    assert res.queries == {"ip -n r -j neigh show": "[]\n"}
