"""Kernel differential for tunnel GSO: a guest's TSO frame written into a tap is routed
into a VXLAN device (outer checksum on or off) over a veth whose TSO is off, so the
kernel segments the encapsulated super-packet in software; the frames the veth peer
receives must equal netstack's.  The outer IPv4 ID is the kernel's hashed
``ip_select_ident`` (random secret), so it and the outer header checksum are masked —
the header checksum is verified on both sides instead."""
from __future__ import annotations

import os
import shutil

import pytest

from .pktbuild import rfc1071
from .tap_netstack import run_netstack
from .tap_oracle import run_kernel
from .test_tap_kernel import tcp_frame, vh

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/net/tun")
                                or shutil.which("ethtool") is None,
                                reason="needs root, /dev/net/tun and ethtool")

VX = ("ip -n {r} link add vxlan0 address 02:00:00:00:09:01 type vxlan id 42 local 10.2.0.1 "
      "remote 10.2.0.2 dstport 4789 srcport 5000 5001 dev vA df set {opt}\n"
      "ip -n {r} addr add 10.9.0.1/24 dev vxlan0\n"
      "ip -n {r} link set vxlan0 up\n"
      "ip -n {r} neigh add 10.9.0.2 lladdr 02:00:00:00:09:02 dev vxlan0 nud permanent\n")
DST = bytes([10, 9, 0, 2])
CASES = {
    "udpcsum_tso_off": ("", "tso off"),
    "noudpcsum_tso_off": ("noudpcsum", "tso off"),
    "udpcsum_tx_off": ("", "tx off"),
    "udpcsum_offloaded": ("", ""),
}


def _mask(frames: list[bytes]) -> list[str]:
    out = []
    for f in frames:
        assert rfc1071(f[14:34]) == 0          # outer IPv4 header checksum valid
        out.append((f[:18] + b"ID" + f[20:24] + b"CS" + f[26:]).hex())
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_vxlan_gso_matches_kernel(name: str) -> None:
    opt, feats = CASES[name]
    frames = [vh(1, 1, 54, 1400, 34, 16) + tcp_frame(3 * 1400 + 321, dst=DST)]
    extra = VX.replace("{opt}", opt)
    k = run_kernel(frames, 0, feats, extra=extra)
    n = run_netstack(frames, 0, feats, extra=extra)
    assert n[0] == k[0]
    assert len(k[2]) > 0
    assert _mask(n[2]) == _mask(k[2])


VX6 = ("ip -n {r} link add vxlan0 address 02:00:00:00:09:01 type vxlan id 42 local fd02::1 "
       "remote fd02::2 dstport 4789 srcport 5000 5001 dev vA {opt}\n"
       "ip -n {r} addr add 10.9.0.1/24 dev vxlan0\n"
       "ip -n {r} link set vxlan0 up\n"
       "ip -n {r} neigh add 10.9.0.2 lladdr 02:00:00:00:09:02 dev vxlan0 nud permanent\n")
CASES6 = {
    "v6_underlay_tso_off": ("", "tso off"),
    "v6_underlay_zero_csum_tso_off": ("udp6zerocsumtx", "tso off"),
    "v6_underlay_offloaded": ("", ""),
}


@pytest.mark.parametrize("name", sorted(CASES6))
def test_vxlan_ipv6_underlay_gso_matches_kernel(name: str) -> None:
    """VXLAN over an IPv6 underlay: ipv6_gso_segment + UDP tunnel segmentation with the
    IPv6 pseudo header (and the zero checksum of udp6zerocsumtx); no IP ID to mask."""
    from .test_tap6_kernel import V6
    opt, feats = CASES6[name]
    frames = [vh(1, 1, 54, 1300, 34, 16) + tcp_frame(3 * 1300 + 321, dst=DST)]
    extra = V6 + VX6.replace("{opt}", opt)
    k = run_kernel(frames, 0, feats, extra=extra, proto=0x86DD)
    n = run_netstack(frames, 0, feats, extra=extra, proto=0x86DD)
    # VXLAN frames carrying the guest's IPv4 (the kernel's vxlan0 may also send its own
    # IPv6 multicast through the tunnel at random times)
    kk = [f.hex() for f in k[2] if f[20] == 17 and f[82:84] == b"\x08\x00"]
    nn = [f.hex() for f in n[2] if f[20] == 17 and f[82:84] == b"\x08\x00"]
    assert n[0] == k[0] and kk
    assert nn == kk
