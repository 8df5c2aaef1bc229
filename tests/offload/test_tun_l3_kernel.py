"""Kernel differential for an L3 tun with IFF_VNET_HDR: IP packets (no Ethernet header,
csum_start counted from the IP header) with TSO/NEEDS_CSUM headers written into tun5,
forwarded to the tap guest and the veth peer; results and bytes equal the kernel's."""
from __future__ import annotations

import os
import shutil

import pytest

from .tap_netstack import run_netstack
from .tap_oracle import run_kernel
from .test_tap_kernel import CSUM, HB, TSO, tcp_frame, vh

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/net/tun")
                                or shutil.which("ethtool") is None,
                                reason="needs root, /dev/net/tun and ethtool")

TUN = """\
ip -n {r} tuntap add dev tun5 mode tun vnet_hdr
ip -n {r} addr add 10.1.0.1/24 dev tun5
ip -n {r} link set tun5 up
"""
G1 = bytes([10, 3, 0, 2])


def ip_only(f: bytes) -> bytes:
    return f[14:]


CASES = {
    "tun_tso_to_tso_guest": ([vh(1, 1, 40, 1448, 20, 16) + ip_only(tcp_frame(3 * 1448 + 9))],
                             TSO, ""),
    "tun_tso_to_plain_guest": ([vh(1, 1, 40, 1448, 20, 16) + ip_only(tcp_frame(3000))], 0, ""),
    "tun_csum_to_csum_guest": ([vh(1, 0, 0, 0, 20, 16) + ip_only(tcp_frame(700))], CSUM, ""),
    "tun_tso_veth_tso_off": ([vh(1, 1, 40, 1000, 20, 16) + ip_only(tcp_frame(2500, dst=HB))],
                             0, "tso off"),
    "tun_not_ip": ([vh() + b"\x10" + bytes(60)], 0, ""),
    "tun_bad_gso": ([vh(1, 1, 40, 1448, 10, 16) + ip_only(tcp_frame(3000))], 0, ""),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tun_l3_vnet_hdr_matches_kernel(name: str) -> None:
    frames, off, feats = CASES[name]
    # addresses of tap0 move to tun5: the guest 10.1.0.2 is behind the tun now
    extra = "ip -n {r} addr del 10.1.0.1/24 dev tap0\n" + TUN
    k = run_kernel(frames, off, feats, extra=extra, writer=("r", "tun5"))
    n = run_netstack(frames, off, feats, extra=extra, writer=("r", "tun5"))
    assert n[0] == k[0]
    assert [b.hex() for b in n[1]] == [b.hex() for b in k[1]]
    assert [b.hex() for b in n[2]] == [b.hex() for b in k[2]]
    assert k[1] or k[2] or name in ("tun_not_ip", "tun_bad_gso")
