"""Kernel differential, IPv6: a guest's TCPv6 TSO and NEEDS_CSUM frames through the
tap router (IPv6 forwarding, static neighbours), out of the second tap with and without
TSO and out of a veth with TSO off; only the forwarded TCP frames are compared (the
kernel's own MLD/RS chatter is filtered out on both sides)."""
from __future__ import annotations

import os
import shutil

import pytest

from netstack.packet.checksum import pseudo_sum_v6

from .pktbuild import ipv6, pseudo6, tcp
from .tap_netstack import run_netstack
from .tap_oracle import GUEST0_MAC, TAP0_MAC, run_kernel
from .test_tap_kernel import CSUM, PAYLOAD, TSO, _mac, vh

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/net/tun")
                                or shutil.which("ethtool") is None,
                                reason="needs root, /dev/net/tun and ethtool")

G0 = bytes.fromhex("fd010000000000000000000000000002")
G1 = bytes.fromhex("fd030000000000000000000000000002")
HB = bytes.fromhex("fd020000000000000000000000000002")
V6 = """\
ip netns exec {r} sysctl -qw net.ipv6.conf.all.disable_ipv6=0
ip netns exec {r} sysctl -qw net.ipv6.conf.tap0.disable_ipv6=0
ip netns exec {r} sysctl -qw net.ipv6.conf.tap1.disable_ipv6=0
ip netns exec {r} sysctl -qw net.ipv6.conf.vA.disable_ipv6=0
ip netns exec {r} sysctl -qw net.ipv6.conf.all.forwarding=1
ip -n {r} addr add fd01::1/64 dev tap0 nodad
ip -n {r} addr add fd03::1/64 dev tap1 nodad
ip -n {r} addr add fd02::1/64 dev vA nodad
ip -n {r} neigh add fd03::2 lladdr 02:00:00:00:03:02 dev tap1 nud permanent
ip -n {r} neigh add fd02::2 lladdr 02:00:00:00:02:02 dev vA nud permanent
"""


def tcp6_frame(n: int, dst: bytes, flags: int = 0x18) -> bytes:
    seg = tcp(4000, 80, 0x20000000, 7, flags, PAYLOAD[:n], pseudo6(G0, dst, 6, 20 + n))
    ps = pseudo_sum_v6(G0, dst, len(seg), 6)
    seg = seg[:16] + ps.to_bytes(2, "big") + seg[18:]
    return (_mac(TAP0_MAC) + _mac(GUEST0_MAC) + b"\x86\xdd"
            + ipv6(len(seg), 6, src=G0, dst=dst) + seg)


def _tcp_only(frames: list[bytes], hdr: int) -> list[str]:
    return [f.hex() for f in frames
            if f[hdr + 12:hdr + 14] == b"\x86\xdd" and f[hdr + 14 + 6] == 6]


CASES = {
    "tso6_to_tso_guest": ([vh(1, 4, 74, 1400, 54, 16) + tcp6_frame(3 * 1400 + 50, G1)], TSO | 4, ""),
    "tso6_to_plain_guest": ([vh(1, 4, 74, 1400, 54, 16) + tcp6_frame(3 * 1400 + 50, G1)], 0, ""),
    "csum6_to_csum_guest": ([vh(1, 0, 0, 0, 54, 16) + tcp6_frame(900, G1)], CSUM, ""),
    "tso6_veth_tso_off": ([vh(1, 4 | 0x80, 74, 1000, 54, 16)
                           + tcp6_frame(2500, HB, flags=0x80 | 0x19)], 0, "tso off"),
    "bad_tso6_in_v4_type": ([vh(1, 1, 74, 1400, 54, 16) + tcp6_frame(3000, G1)], 0, ""),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tap_ipv6_matches_kernel(name: str) -> None:
    frames, off, feats = CASES[name]
    k = run_kernel(frames, off, feats, extra=V6, proto=0x86DD)
    n = run_netstack(frames, off, feats, extra=V6, proto=0x86DD)
    assert n[0] == k[0]
    assert _tcp_only(n[1], 10) == _tcp_only(k[1], 10)
    assert _tcp_only(n[2], 0) == _tcp_only(k[2], 0)
    forwarded = _tcp_only(k[1], 10) + _tcp_only(k[2], 0)
    assert bool(forwarded) == (not name.startswith("bad")), "kernel forwarded nothing?"


MTU6 = V6 + "ip -n {r} link set vA mtu 1300\nip -n {h} link set vB mtu 1300\n"


@pytest.mark.parametrize("mss,expect", [(1400, False), (1200, True)])
def test_tso6_over_small_mtu_matches_kernel(mss: int, expect: bool) -> None:
    """A forwarded IPv6 GSO packet: too big only if its segments are (ip6_pkt_too_big
    with skb_gso_validate_network_len); IPv6 routers never fragment."""
    frames = [vh(1, 4, 74, mss, 54, 16) + tcp6_frame(3 * mss + 77, HB)]
    k = run_kernel(frames, 0, "tso off", extra=MTU6, proto=0x86DD)
    n = run_netstack(frames, 0, "tso off", extra=MTU6, proto=0x86DD)
    assert n[0] == k[0]
    assert _tcp_only(n[2], 0) == _tcp_only(k[2], 0)
    assert bool(_tcp_only(k[2], 0)) == expect
