"""Kernel differential for GSO packets bigger than the egress MTU: a guest TSO frame is
forwarded to a veth with MTU 1000 — with DF clear, ``ip_finish_output_gso`` segments it
and fragments every segment; with DF set, ``ip_exceeds_mtu`` refuses it (nothing leaves);
with segments that fit, it goes on whole."""
from __future__ import annotations

import os
import shutil

import pytest

from .tap_netstack import run_netstack
from .tap_oracle import run_kernel
from .test_tap_kernel import HB, tcp_frame, vh

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/net/tun")
                                or shutil.which("ethtool") is None,
                                reason="needs root, /dev/net/tun and ethtool")

MTU = "ip -n {r} link set vA mtu 1000\nip -n {h} link set vB mtu 1000\n"
CASES = {
    "df_clear_segment_and_fragment": (tcp_frame(3 * 1448 + 5, dst=HB, df=False), 1448, ""),
    "df_clear_segment_and_fragment_sw": (tcp_frame(3 * 1448 + 5, dst=HB, df=False), 1448,
                                         "tx off"),
    "df_set_refused": (tcp_frame(3 * 1448 + 5, dst=HB), 1448, ""),
    "segments_fit": (tcp_frame(3 * 900 + 5, dst=HB), 900, ""),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gso_over_small_mtu_matches_kernel(name: str) -> None:
    fr, mss, feats = CASES[name]
    frames = [vh(1, 1, 54, mss, 34, 16) + fr]
    k = run_kernel(frames, 0, feats, extra=MTU)
    n = run_netstack(frames, 0, feats, extra=MTU)
    assert n[0] == k[0]
    assert [b.hex() for b in n[2]] == [b.hex() for b in k[2]]
    assert bool(k[2]) == (name != "df_set_refused")
