"""Bad input: lying GSO metadata from a guest (the kernel's DODGY handling).  Random
virtio headers over mutated TCP/UDP frames are written into a tap of a router whose
egress needs software GSO; nothing may raise, and every frame is accounted for (refused
by the write, dropped with a reason, or delivered)."""
from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.cli.scenario import run_script
from netstack.core.world import World
from netstack.packet.virtio_net import VirtioNetHdr

from .tap_oracle import setup_text
from .test_tap_kernel import tcp_frame, udp_frame

_W: list = []


def _world():
    if not _W:
        w = World()
        run_script(w, setup_text("OFFfr", "OFFfh") + "ip netns exec OFFfr ethtool -K vA tso off\n",
                   stdout=io.StringIO(), stderr=io.StringIO())
        r = w.netns("OFFfr")
        tap0, tap1 = r.get("tap0"), r.get("tap1")
        tap0.attach()
        tap1.attach()
        _W.append((w, tap0, tap1))
    return _W[0]


@settings(max_examples=250, deadline=None)
@given(flags=st.integers(0, 3), gso_type=st.sampled_from([0, 1, 3, 4, 5, 0x81, 2, 6]),
       hdr_len=st.integers(0, 300), gso_size=st.integers(0, 3000),
       csum_start=st.integers(0, 120), csum_offset=st.integers(0, 40),
       n=st.integers(0, 5000), udp=st.booleans(), to_veth=st.booleans(),
       flips=st.lists(st.tuples(st.integers(0, 80), st.integers(1, 255)), max_size=3))
def test_fuzz_lying_gso_metadata(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset,
                                 n, udp, to_veth, flips) -> None:
    w, tap0, tap1 = _world()
    dst = bytes([10, 2, 0, 2]) if to_veth else bytes([10, 3, 0, 2])
    fr = bytearray(udp_frame(n, dst=dst) if udp else tcp_frame(n, dst=dst))
    for off, x in flips:
        if 14 <= off < len(fr):
            fr[off] ^= x
    hdr = VirtioNetHdr(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset).pack()
    r = tap0.write(hdr + bytes(fr))
    assert r == len(hdr) + len(fr) or r < 0
    w.run_until_idle()
    while tap1.read() is not None:
        pass
