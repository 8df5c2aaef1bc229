"""The oracle's captures show a received frame's out-of-band VLAN tag written back behind the
MAC addresses, as libpcap does from ``PACKET_AUXDATA`` (tests/kernel/oracle.py docstring).

Unit tests of the auxdata decoding need nothing; the last test runs the kernel (the
``kernel`` fixture skips without root / netns) and sends tagged frames across a veth pair:
the receiving end's ``__netif_receive_skb_core`` moves the outer tag out of band, yet the
capture must hold the frame exactly as it was sent.
"""
from __future__ import annotations

import struct

from hypothesis import given, strategies as st

from .cases import eth, udp4
from .conftest import Kernel
from .oracle import (PACKET_AUXDATA, SOL_PACKET, TP_STATUS_VLAN_TPID_VALID, TP_STATUS_VLAN_VALID,
                     Send, insert_vlan_tag, run_kernel, vlan_from_auxdata)


def aux(status: int, tci: int, tpid: int) -> list[tuple[int, int, bytes]]:
    """A ``PACKET_AUXDATA`` control message: struct tpacket_auxdata, little-endian here."""
    return [(SOL_PACKET, PACKET_AUXDATA, struct.pack("<IIIHHHH", status, 60, 60, 0, 14, tci, tpid))]


def test_auxdata_without_tag_is_none() -> None:
    assert vlan_from_auxdata([]) is None
    assert vlan_from_auxdata(aux(0x1, 0, 0)) is None  # TP_STATUS_USER only


def test_auxdata_tag_with_tpid() -> None:
    st_ = TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID
    assert vlan_from_auxdata(aux(st_, 0x2064, 0x88A8)) == (0x88A8, 0x2064)


def test_auxdata_priority_tag_vid0_pcp0_is_still_a_tag() -> None:
    """TCI 0 with TP_STATUS_VLAN_VALID: a tag (libpcap's VLAN_VALID), 802.1Q without a TPID."""
    assert vlan_from_auxdata(aux(TP_STATUS_VLAN_VALID, 0, 0)) == (0x8100, 0)


def test_auxdata_old_kernel_rule_nonzero_tci() -> None:
    """No status bits but a TCI (kernels before TP_STATUS_VLAN_VALID): a tag, TPID 802.1Q."""
    assert vlan_from_auxdata(aux(0, 7, 0)) == (0x8100, 7)


def test_other_control_messages_are_ignored() -> None:
    assert vlan_from_auxdata([(1, 29, bytes(16))] + aux(TP_STATUS_VLAN_VALID, 5, 0)) == (0x8100, 5)


@given(st.binary(min_size=12, max_size=80), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_insert_then_strip_is_identity(frame: bytes, tpid: int, tci: int) -> None:
    out = insert_vlan_tag(frame, tpid, tci)
    assert out[:12] == frame[:12] and out[16:] == frame[12:]
    assert struct.unpack("!HH", out[12:16]) == (tpid, tci)


SCRIPT = """\
ip netns add a
ip netns add b
ip netns exec a sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec a sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec b sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec b sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip -n a link add va type veth peer name vb netns b
ip -n a link set va up
ip -n b link set vb up
"""


def test_kernel_capture_shows_the_tag_it_moved_out_of_band(kernel: Kernel) -> None:
    """Single tag, 802.1ad over 802.1Q (only the outer one leaves the packet), and a VID 0
    priority tag: each arrives exactly as sent; an untagged frame is left alone."""
    payload = udp4("10.0.0.1", "10.0.0.2", 1000, 2000, b"vlan aux", ident=0x0101)
    plain = eth("02:00:00:00:00:02", "02:00:00:00:00:01", 0x0800, payload)
    frames = [plain,
              insert_vlan_tag(plain, 0x8100, 0x0064),
              insert_vlan_tag(insert_vlan_tag(plain, 0x8100, 0x00C8), 0x88A8, 0x2007),
              insert_vlan_tag(plain, 0x8100, 0x0000)]
    res = run_kernel(SCRIPT, [Send("a", "va", f) for f in frames], [("b", "vb")], [], 0.15)
    assert res.frames[("b", "vb")] == frames
