"""Kernel differential for "LRO to guests": a guest behind tap2 (namespace h) sends a
TSO frame; h segments it in software out of vB (TSO off); vA (router r, GRO on)
coalesces the burst; r forwards the GRO packet to tap1 whose guest accepts TSO, so it
arrives as one frame with a GSO virtio header (hdr_len, gso_size, NEEDS_CSUM) — or, for
a guest without offloads, segmented again.  Reader bytes equal the kernel's."""
from __future__ import annotations

import os
import shutil

import pytest

from .pktbuild import ipv4, pseudo4, tcp
from .tap_netstack import run_netstack
from .tap_oracle import run_kernel
from .test_tap_kernel import CSUM, PAYLOAD, TSO, _mac, vh
from netstack.packet.checksum import pseudo_sum_v4

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/net/tun")
                                or shutil.which("ethtool") is None,
                                reason="needs root, /dev/net/tun and ethtool")

TAP2_MAC = "02:00:00:00:04:01"
G2 = bytes([10, 4, 0, 2])
G1 = bytes([10, 3, 0, 2])
EXTRA = """\
ip netns exec {h} sysctl -qw net.ipv4.ip_forward=1
ip -n {h} tuntap add dev tap2 mode tap vnet_hdr
ip -n {h} link set tap2 address 02:00:00:00:04:01
ip -n {h} addr add 10.4.0.1/24 dev tap2
ip -n {h} link set tap2 up
ip -n {h} route add 10.3.0.0/24 via 10.2.0.1
ip -n {h} neigh add 10.2.0.1 lladdr 02:00:00:00:02:01 dev vB nud permanent
ip netns exec {h} ethtool -K vB tso off
ip netns exec {r} ethtool -K vA gro on
"""


def frame(n: int, flags: int = 0x18) -> bytes:
    seg = tcp(4000, 80, 0x30000000, 7, flags, PAYLOAD[:n], pseudo4(G2, G1, 6, 20 + n))
    seg = seg[:16] + pseudo_sum_v4(G2, G1, len(seg), 6).to_bytes(2, "big") + seg[18:]
    return (_mac(TAP2_MAC) + _mac("02:00:00:00:04:02") + b"\x08\x00"
            + ipv4(len(seg), 6, src=G2, dst=G1, ident=0x77) + seg)


CASES = {
    "lro_to_tso_guest": (TSO, 3 * 1448 + 100),
    "lro_to_csum_guest": (CSUM, 3 * 1448 + 100),
    "lro_to_plain_guest": (0, 3 * 1448 + 100),
    "lro_six_segments_and_a_tail": (TSO, 6 * 1448 + 312),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_lro_to_guest_matches_kernel(name: str) -> None:
    off, n = CASES[name]
    frames = [vh(1, 1, 54, 1448, 34, 16) + frame(n)]
    k = run_kernel(frames, off, "", extra=EXTRA, writer=("h", "tap2"))
    nn = run_netstack(frames, off, "", extra=EXTRA, writer=("h", "tap2"))
    assert nn[0] == k[0] and k[1]
    assert [b.hex() for b in nn[1]] == [b.hex() for b in k[1]]
