"""Kernel differential for GRO: a guest's TSO frame is segmented in software on the way
out of vA (TSO off), the segments cross the veth in one transmit burst, and vB (GRO on)
coalesces them in one NAPI poll — the frames a packet socket on vB sees (after GRO) must
equal netstack's.  Covers TCP (DF and incrementing IDs, CWR/PSH/FIN, software
checksums), UDP GSO with ``rx-udp-gro-forwarding``, VXLAN through the receiving VXLAN
socket's GRO (TUN's vxlan_gro_receive) with and without outer checksum, and VXLAN that
UDP forwarding GRO must leave alone (locally encapsulated)."""
from __future__ import annotations

import os
import shutil

import pytest

from .tap_netstack import run_netstack
from .tap_oracle import run_kernel
from .test_tap_kernel import HB, tcp_frame, udp_frame, vh
from .test_vxlan_gso_kernel import VX

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/net/tun")
                                or shutil.which("ethtool") is None,
                                reason="needs root, /dev/net/tun and ethtool")

GRO = "ip netns exec {h} ethtool -K vB gro on\n"
UDPFWD = "ip netns exec {h} ethtool -K vB gro on rx-udp-gro-forwarding on\n"
VXDST = bytes([10, 9, 0, 2])
#: a VXLAN device on the receiving side: its socket's gro_receive coalesces the tunnel
VXH = ("ip -n {h} link add vxlan1 type vxlan id 42 local 10.2.0.2 remote 10.2.0.1 "
       "dstport 4789 dev vB\nip -n {h} link set vxlan1 up\n")
CASES = {
    "tcp": ([vh(1, 1, 54, 1448, 34, 16) + tcp_frame(3 * 1448 + 7, dst=HB)], "tso off", GRO),
    "tcp_no_df": ([vh(1, 1, 54, 1000, 34, 16) + tcp_frame(3500, dst=HB, df=False)],
                  "tso off", GRO),
    "tcp_cwr_fin_psh": ([vh(1, 0x81, 54, 1000, 34, 16)
                         + tcp_frame(2500, dst=HB, flags=0x80 | 0x19)], "tso off", GRO),
    "tcp_sw_checksums": ([vh(1, 1, 54, 1000, 34, 16) + tcp_frame(3500, dst=HB)], "tx off",
                         GRO),
    "tcp_gro_off": ([vh(1, 1, 54, 1000, 34, 16) + tcp_frame(3500, dst=HB)], "tso off", ""),
    "udp_l4_fwd": ([vh(1, 5, 42, 1000, 34, 6) + udp_frame(3500, dst=HB)], "", UDPFWD),
    "udp_l4_no_fwd": ([vh(1, 5, 42, 1000, 34, 6) + udp_frame(3500, dst=HB)], "", GRO),
    "vxlan_tunnel_gro": ([vh(1, 1, 54, 1400, 34, 16) + tcp_frame(3 * 1400 + 1, dst=VXDST)],
                         "tso off", GRO + VX.replace("{opt}", "") + VXH),
    "vxlan_tunnel_gro_nocsum": ([vh(1, 1, 54, 1400, 34, 16)
                                 + tcp_frame(3 * 1400 + 1, dst=VXDST)],
                                "tso off", GRO + VX.replace("{opt}", "noudpcsum") + VXH),
    "vxlan_udp_fwd": ([vh(1, 1, 54, 1400, 34, 16) + tcp_frame(3 * 1400 + 1, dst=VXDST)],
                      "tso off", UDPFWD + VX.replace("{opt}", "")),
}


def _mask_vxlan(frames: list[bytes], vxlan: bool) -> list[str]:
    if not vxlan:
        return [f.hex() for f in frames]
    return [(f[:18] + b"ID" + f[20:24] + b"CS" + f[26:]).hex() for f in frames]


@pytest.mark.parametrize("name", sorted(CASES))
def test_gro_matches_kernel(name: str) -> None:
    frames, feats, extra = CASES[name]
    k = run_kernel(frames, 0, feats, extra=extra)
    n = run_netstack(frames, 0, feats, extra=extra)
    assert n[0] == k[0]
    assert k[2], "kernel delivered nothing"
    vx = name.startswith("vxlan")
    assert _mask_vxlan(n[2], vx) == _mask_vxlan(k[2], vx)
