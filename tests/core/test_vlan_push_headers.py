"""Header geometry of ``skb_vlan_push`` over an out-of-band tag (net/core/skbuff.c), as this
machine's kernel does it (see the ``vlan_core.skb_vlan_push`` docstring and the kernel
differentials tests/bpf/test_skb_one_object_kernel.py / test_vlan_helpers_kernel.py): the tag
is written behind the MAC addresses, the MAC header and the network header both move 4 bytes
back, so ``mac_len`` is unchanged and the network header is on the inserted tag's TCI."""
from __future__ import annotations

from hypothesis import given, strategies as st

from netstack.core.vlan_core import skb_vlan_pop, skb_vlan_push
from netstack.packet.skb import UNSET, Packet

DST, SRC = bytes.fromhex("020000000002"), bytes.fromhex("020000000001")
IPV4 = bytes.fromhex("4500001c000140004011") + bytes(10)


def tx_packet() -> Packet:
    """An untagged frame on transmit: data at the MAC header, network header behind it."""
    p = Packet(DST + SRC + b"\x08\x00" + IPV4, headroom=32)
    p.mac_header = p.data
    p.network_header = p.data + 14
    p.protocol = 0x0800
    return p


def test_first_push_only_sets_the_out_of_band_tag() -> None:
    p = tx_packet()
    before = (p.data, p.mac_header, p.network_header, bytes(p.buf[p.data:p.tail]))
    skb_vlan_push(p, 0x8100, 5)
    assert (p.data, p.mac_header, p.network_header, bytes(p.buf[p.data:p.tail])) == before
    assert (p.vlan_proto, p.vlan_tci, p.protocol) == (0x8100, 5, 0x0800)


def test_push_over_a_tag_moves_the_network_header_with_the_mac_header() -> None:
    p = tx_packet()
    skb_vlan_push(p, 0x8100, 0x0ABC)
    mac_len = p.mac_len()
    skb_vlan_push(p, 0x88A8, 0x0DEF)
    assert bytes(p.buf[p.data:p.tail]) == DST + SRC + b"\x81\x00\x0a\xbc\x08\x00" + IPV4
    assert p.data == p.mac_header
    assert p.mac_len() == mac_len == 14
    assert p.network_header == p.data + 14
    assert p.buf[p.network_header:p.network_header + 2] == b"\x0a\xbc"  # the inserted TCI
    assert (p.vlan_proto, p.vlan_tci, p.protocol) == (0x88A8, 0x0DEF, 0x8100)
    assert p.transport_header == UNSET or p.transport_header >= p.network_header


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 0xFFF)), max_size=6))
def test_network_header_never_leaves_the_frame_nor_precedes_the_ethertype(ops: list[tuple[bool, int]]) -> None:
    """Whatever push/pop sequence: data stays at the MAC header and the network header at
    least ETH_HLEN behind it, inside the frame."""
    p = tx_packet()
    for push, vid in ops:
        if push:
            skb_vlan_push(p, 0x8100, vid)
        else:
            skb_vlan_pop(p)
        assert p.data == p.mac_header
        assert p.mac_header + 14 <= p.network_header <= p.tail
