"""bond_xmit_hash golden vectors (drivers/net/bonding/bond_main.c, x86-64 byte order).

The literals were computed by hand from the kernel formulas: the 32-bit fields are the
little-endian reads of the network bytes (``(__force u32)`` of a __be32), folded with
``h ^= h >> 16; h ^= h >> 8`` and, for layer3+4, ``>> 1``."""
from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.drivers.bonding.bond_hash import (
    BOND_XMIT_POLICY_ENCAP23, BOND_XMIT_POLICY_ENCAP34, BOND_XMIT_POLICY_LAYER2,
    BOND_XMIT_POLICY_LAYER23, BOND_XMIT_POLICY_LAYER34, BOND_XMIT_POLICY_VLAN_SRCMAC,
    bond_xmit_hash,
)

DMAC = bytes.fromhex("020000000002")
SMAC = bytes.fromhex("020000000001")


def ipv4(src: str, dst: str, proto: int, payload: bytes, frag: int = 0) -> bytes:
    s = bytes(int(x) for x in src.split("."))
    d = bytes(int(x) for x in dst.split("."))
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, frag, 64, proto, 0,
                       s, d) + payload


def eth(l3: bytes, etype: int = 0x0800, dmac: bytes = DMAC, smac: bytes = SMAC) -> bytes:
    return dmac + smac + etype.to_bytes(2, "big") + l3


TCP = struct.pack("!HHIIBBHHH", 1234, 80, 0, 0, 0x50, 2, 0, 0, 0)
FRAME = eth(ipv4("10.0.0.1", "10.0.0.2", 6, TCP))


def le(b: bytes) -> int:
    return struct.unpack("<I", b)[0]


def fold(h: int, l34: bool) -> int:
    h &= 0xFFFFFFFF
    h ^= h >> 16
    h ^= h >> 8
    return h >> 1 if l34 else h


def test_layer2() -> None:
    assert bond_xmit_hash(BOND_XMIT_POLICY_LAYER2, FRAME) == 0x803


def test_layer23() -> None:
    assert bond_xmit_hash(BOND_XMIT_POLICY_LAYER23, FRAME) == 0x3030B08


def test_layer34_tcp() -> None:
    # ports 04d2 0050 read as LE 0x5000d204; ^ 0x03000000 → 0x5300d204 → 0x29a9c0c2
    assert bond_xmit_hash(BOND_XMIT_POLICY_LAYER34, FRAME) == 0x29A9C0C2


def test_layer34_icmp_echo_uses_id_word() -> None:
    echo = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1)
    f = eth(ipv4("10.0.0.1", "10.0.0.2", 1, echo))
    # type | code << 8 | id << 16 replaces the ports
    assert bond_xmit_hash(BOND_XMIT_POLICY_LAYER34, f) == 0x8929296


def test_layer34_icmp_echo_id_zero_counts_as_one() -> None:
    echo = struct.pack("!BBHHH", 8, 0, 0, 0, 1)
    f = eth(ipv4("10.0.0.1", "10.0.0.2", 1, echo))
    want = fold((8 | 1 << 16) ^ le(bytes([10, 0, 0, 1])) ^ le(bytes([10, 0, 0, 2])), True)
    assert bond_xmit_hash(BOND_XMIT_POLICY_LAYER34, f) == want


def test_layer34_icmp_error_hashes_the_embedded_flow() -> None:
    inner = ipv4("10.0.0.2", "192.168.1.9", 17, struct.pack("!HHHH", 5000, 53, 8, 0))
    err = struct.pack("!BBHI", 3, 3, 0, 0) + inner
    f = eth(ipv4("10.9.9.9", "10.0.0.2", 1, err))
    want = fold(le(struct.pack("!HH", 5000, 53)) ^ le(bytes([10, 0, 0, 2]))
                ^ le(bytes([192, 168, 1, 9])), True)
    assert bond_xmit_hash(BOND_XMIT_POLICY_LAYER34, f) == want
    # layer2+3 also takes the embedded addresses
    want23 = fold(0x803 ^ le(bytes([10, 0, 0, 2])) ^ le(bytes([192, 168, 1, 9])), False)
    assert bond_xmit_hash(BOND_XMIT_POLICY_LAYER23, f) == want23


def test_fragments_have_no_ports() -> None:
    f = eth(ipv4("10.0.0.1", "10.0.0.2", 6, TCP, frag=0x2000))  # MF
    assert bond_xmit_hash(BOND_XMIT_POLICY_LAYER34, f) == fold(0x03000000, True)


def test_non_ip_falls_back_to_layer2() -> None:
    arp = eth(bytes(28), etype=0x0806)
    for pol in (BOND_XMIT_POLICY_LAYER23, BOND_XMIT_POLICY_LAYER34):
        assert bond_xmit_hash(pol, arp) == 0x02 ^ 0x01 ^ 0x0806
    # the full dissector (encap*) accepts ARP without filling address keys: all zero
    assert bond_xmit_hash(BOND_XMIT_POLICY_ENCAP34, arp) == 0
    assert bond_xmit_hash(BOND_XMIT_POLICY_ENCAP23, arp) == fold(0x805, False)
    # truncated IPv4 header: bond_flow_ip fails too
    assert bond_xmit_hash(BOND_XMIT_POLICY_LAYER34, FRAME[:30]) == 0x803


def test_ipv6_uses_ipv6_addr_hash() -> None:
    src = bytes.fromhex("20010db8000000000000000000000001")
    dst = bytes.fromhex("20010db8000000000000000000000002")
    udp = struct.pack("!HHHH", 4000, 4001, 8, 0)
    ip6 = struct.pack("!IHBB", 0x60000000, 8, 17, 64) + src + dst + udp
    f = eth(ip6, etype=0x86DD)

    def ah(a: bytes) -> int:
        return le(a[0:4]) ^ le(a[4:8]) ^ le(a[8:12]) ^ le(a[12:16])
    want = fold(le(struct.pack("!HH", 4000, 4001)) ^ ah(src) ^ ah(dst), True)
    assert bond_xmit_hash(BOND_XMIT_POLICY_LAYER34, f) == want
    # src ^ dst differ only in the last word: 0x03000000
    assert ah(src) ^ ah(dst) == 0x03000000


def test_encap_sees_the_inner_header_of_ipip() -> None:
    inner = ipv4("172.16.0.1", "172.16.0.2", 6, TCP)
    f = eth(ipv4("10.0.0.1", "10.0.0.2", 4, inner))
    a, b = le(bytes([172, 16, 0, 1])), le(bytes([172, 16, 0, 2]))
    assert bond_xmit_hash(BOND_XMIT_POLICY_ENCAP23, f) == fold(0x803 ^ a ^ b, False)
    assert bond_xmit_hash(BOND_XMIT_POLICY_ENCAP34, f) == fold(
        le(struct.pack("!HH", 1234, 80)) ^ a ^ b, True)
    # layer3+4 stops at the outer header (IPIP has no ports)
    assert bond_xmit_hash(BOND_XMIT_POLICY_LAYER34, f) == fold(0x03000000, True)


def test_encap34_returns_an_l4_skb_hash() -> None:
    assert bond_xmit_hash(BOND_XMIT_POLICY_ENCAP34, FRAME, l4_hash=True,
                          skb_hash=0xDEADBEEF) == 0xDEADBEEF
    assert bond_xmit_hash(BOND_XMIT_POLICY_LAYER34, FRAME, l4_hash=True,
                          skb_hash=0xDEADBEEF) == 0x29A9C0C2


def test_vlan_srcmac() -> None:
    # 100 ^ 0x020000 ^ 0x000001
    assert bond_xmit_hash(BOND_XMIT_POLICY_VLAN_SRCMAC, FRAME, vlan_tci=100) == 0x20065
    # the whole TCI (PCP bits included) as skb_vlan_tag_get returns it
    assert bond_xmit_hash(BOND_XMIT_POLICY_VLAN_SRCMAC, FRAME, vlan_tci=0xA064) == \
        0xA064 ^ 0x020001


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 5), st.sampled_from([None, 0x800, 0x86DD]))
def test_fuzz_never_raises(data: bytes, policy: int, proto: int | None) -> None:
    h = bond_xmit_hash(policy, data, protocol=proto)
    assert 0 <= h <= 0xFFFFFFFF


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(min_size=4, max_size=4),
       st.binary(min_size=4, max_size=4))
def test_l34_matches_formula(sp: int, dp: int, s: bytes, d: bytes) -> None:
    f = eth(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0, s, d)
            + struct.pack("!HHHH", sp, dp, 8, 0))
    assert bond_xmit_hash(BOND_XMIT_POLICY_LAYER34, f) == fold(
        le(struct.pack("!HH", sp, dp)) ^ le(s) ^ le(d), True)
    assert bond_xmit_hash(BOND_XMIT_POLICY_LAYER23, f) == fold(0x803 ^ le(s) ^ le(d), False)
