"""``ip_rcv_core``'s header checksum verdict (the 64/64/32-bit word sum for 20-byte
headers, the big-integer form with options) is ``ip_fast_csum(header) == 0``, for any
header bytes, including the all-zero and 0xFFFF-sum edge cases."""
from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from netstack.core.world import World
from netstack.ipv4.ip_input import ip_rcv_core
from netstack.packet.checksum import ip_fast_csum


def _fix_length(hdr: bytearray, ihl: int) -> None:
    hdr[0] = 0x40 | (ihl // 4)
    hdr[2:4] = len(hdr).to_bytes(2, "big")


def _verdict(hdr: bytes) -> bool:
    w = World(subsystems=["netstack.ipv4.af_inet"])
    net = w.init_net
    p = w.new_packet(hdr)
    return ip_rcv_core(p, net) and not net.drops.as_dict()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([20, 24, 60]), st.binary(min_size=60, max_size=60), st.booleans())
@example(20, bytes(60), False)
@example(20, b"\xff" * 60, False)
@example(20, b"\xff" * 60, True)
def test_checksum_verdict_is_ip_fast_csum(ihl, raw, fix):
    hdr = bytearray(raw[:ihl])
    _fix_length(hdr, ihl)
    if fix:  # make it valid, so both verdicts are exercised
        hdr[10:12] = b"\0\0"
        hdr[10:12] = ip_fast_csum(bytes(hdr)).to_bytes(2, "big")
    want = ip_fast_csum(bytes(hdr)) == 0
    assert _verdict(bytes(hdr)) == want
