"""The out-of-band tag helpers (netstack/core/vlan_core.py) against a pure in-packet
reference: whatever sequence of skb_vlan_push/skb_vlan_pop and whatever TX offload
setting, the bytes on the wire are those of doing the same on the frame bytes."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core.vlan_core import (VlanError, frame_with_tag, skb_vlan_pop, skb_vlan_push,
                                     skb_vlan_untag, tap_packet, validate_xmit_vlan,
                                     vlan_hwaccel_push_inside)
from netstack.packet.checksum import csum_partial
from netstack.packet.skb import CHECKSUM_COMPLETE, Packet
from netstack.packet.vlan import VlanTag, build_vlan_frame, vlan_pop, vlan_push

import pytest

TPIDS = (0x8100, 0x88A8)
M1 = bytes.fromhex("020000000001")
M2 = bytes.fromhex("020000000002")


class FakeDev:
    """Only what validate_xmit_vlan reads: the feature strings."""

    def __init__(self, ctag: bool, stag: bool) -> None:
        self.features = set()
        if ctag:
            self.features.add("tx-vlan-hw-insert")
        if stag:
            self.features.add("tx-vlan-stag-hw-insert")


def tx_packet(frame: bytes, headroom: int = 32) -> Packet:
    """An skb as dev_queue_xmit gets it: data at the MAC header, protocol from the frame."""
    p = Packet(frame, headroom=headroom)
    p.mac_header = p.data
    p.network_header = p.data + 14
    p.protocol = int.from_bytes(frame[12:14], "big")
    return p


def wire(p: Packet, dev: FakeDev) -> bytes:
    """The bytes a NIC puts on the wire: validate_xmit_vlan, then hardware insertion of a
    tag the device kept out of band."""
    if p.vlan_proto:
        validate_xmit_vlan(p, dev)  # type: ignore[arg-type]
    if p.vlan_proto:
        return frame_with_tag(p, p.data)
    return p.bytes()


def ref_pop(frame: bytes) -> bytes:
    if len(frame) >= 18 and int.from_bytes(frame[12:14], "big") in TPIDS:
        return bytes(vlan_pop(frame)[0])
    return frame


tags = st.lists(st.builds(VlanTag, st.sampled_from(TPIDS), st.integers(0, 0xFFFF)),
                max_size=3)
ops = st.lists(st.one_of(
    st.tuples(st.just("push"), st.sampled_from(TPIDS), st.integers(0, 0xFFFF)),
    st.tuples(st.just("pop"), st.just(0), st.just(0)),
    st.tuples(st.just("xmit"), st.booleans(), st.booleans())), max_size=8)


@settings(max_examples=300, deadline=None)
@given(tags, st.sampled_from([0x0800, 0x86DD, 0x0806, 0x88CC]), st.binary(max_size=40),
       ops, st.booleans(), st.booleans(), st.integers(0, 8))
def test_push_pop_any_offload_matches_inband_reference(
        tg: list[VlanTag], et: int, payload: bytes, seq: list[tuple[str, int, int]],
        ctag: bool, stag: bool, headroom: int) -> None:
    frame = build_vlan_frame(M1, M2, tg, et, payload)
    ref = frame
    p = tx_packet(frame, headroom)
    for op, a, b in seq:
        if op == "push":
            skb_vlan_push(p, a, b)
            ref = bytes(vlan_push(ref, a, b))
        elif op == "pop":
            skb_vlan_pop(p)
            ref = ref_pop(ref)
        else:
            # an intermediate device (e.g. a vlan device, which has no tag offload) may
            # write the tag into the packet: the wire bytes must not change
            if p.vlan_proto:
                validate_xmit_vlan(p, FakeDev(bool(a), bool(b)))  # type: ignore[arg-type]
        # at most one tag out of band, and the protocol names what follows the MACs
        assert p.vlan_proto in (0,) + TPIDS
        assert p.protocol == int.from_bytes(p.bytes()[12:14], "big") or p.protocol < 0x600
        assert wire(_copy(p), FakeDev(ctag, stag)) == ref
    assert wire(p, FakeDev(ctag, stag)) == ref


def _copy(p: Packet) -> Packet:
    return p.clone()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.builds(VlanTag, st.sampled_from(TPIDS), st.integers(0, 0xFFFF)),
                min_size=1, max_size=3), st.binary(min_size=2, max_size=30))
def test_untag_then_capture_shows_the_received_frame(tg: list[VlanTag], payload: bytes) -> None:
    frame = build_vlan_frame(M1, M2, tg, 0x0800, payload)
    p = Packet(frame)
    p.mac_header = p.data
    p.data += 14
    p.protocol = tg[0].tpid
    p.ip_summed = CHECKSUM_COMPLETE
    p.csum = csum_partial(p.view())
    assert skb_vlan_untag(p)
    assert (p.vlan_proto, p.vlan_tci) == (tg[0].tpid, tg[0].tci)
    # skb_pull_rcsum: the CHECKSUM_COMPLETE sum still covers exactly data..tail
    assert p.csum % 0xFFFF == csum_partial(p.view()) % 0xFFFF
    # the MAC header is contiguous with the rest: addresses then the inner type
    assert bytes(p.buf[p.mac_header:p.mac_header + 12]) == M1 + M2
    assert p.network_header == p.data == p.mac_header + 14
    inner = tg[1].tpid if len(tg) > 1 else 0x0800
    assert p.protocol == inner
    q = tap_packet(p)
    assert bytes(q.buf[q.mac_header:q.tail]) == frame
    assert bytes(q.buf[q.data:q.tail]) == frame[18:]


def test_untag_truncated_tag_is_refused() -> None:
    p = Packet(M1 + M2 + b"\x81\x00\x00\x05\x08")
    p.mac_header = p.data
    p.data += 14
    p.protocol = 0x8100
    assert not skb_vlan_untag(p)
    assert p.vlan_proto == 0


def test_encap_length_field_gives_8023_protocols() -> None:
    for rest, proto in ((b"\x00\x40\xff\xff", 0x0001), (b"\x00\x40\xaa\xaa", 0x0004)):
        p = Packet(M1 + M2 + b"\x81\x00\x00\x07" + rest + bytes(10))
        p.mac_header = p.data
        p.data += 14
        p.protocol = 0x8100
        assert skb_vlan_untag(p) and p.protocol == proto


def test_pop_truncated_inband_tag_raises_vlan_error() -> None:
    p = tx_packet(M1 + M2 + b"\x81\x00\x00")
    with pytest.raises(VlanError):
        skb_vlan_pop(p)


def test_push_with_data_past_the_mac_header_is_refused() -> None:
    p = tx_packet(M1 + M2 + b"\x08\x00" + bytes(20))
    skb_vlan_push(p, 0x8100, 5)
    p.data += 14
    with pytest.raises(VlanError):
        skb_vlan_push(p, 0x8100, 6)


def test_push_inside_sets_protocol_and_keeps_network_header() -> None:
    p = tx_packet(M1 + M2 + b"\x08\x00" + bytes(range(20)), headroom=0)
    nh = bytes(p.buf[p.network_header:p.network_header + 4])
    skb_vlan_push(p, 0x88A8, 0x2064)
    vlan_hwaccel_push_inside(p)
    assert p.protocol == 0x88A8 and p.vlan_proto == 0
    assert p.bytes()[12:18] == b"\x88\xa8\x20\x64\x08\x00"
    assert bytes(p.buf[p.network_header:p.network_header + 4]) == nh
    assert p.mac_header == p.data
