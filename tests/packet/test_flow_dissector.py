"""Flow dissector keys, struct layout, symmetric hash and udp_flow_src_port."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.packet.ethernet import build_ethernet
from netstack.packet.flow_dissector import (
    FLOW_DIS_ENCAPSULATION,
    FLOW_DIS_FIRST_FRAG,
    FLOW_DIS_IS_FRAGMENT,
    FLOW_DISSECTOR_F_STOP_AT_ENCAP,
    FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL,
    FLOW_DISSECTOR_KEY_IPV4_ADDRS,
    FlowKeys,
    flow_dissect,
    flow_hash_from_keys,
    flow_keys_have_l4,
    skb_get_hash,
    udp_flow_src_port,
)
from netstack.packet.icmp import build_icmp_echo
from netstack.packet.ipv4 import build_ipv4
from netstack.packet.ipv6 import build_ipv6, ext_dstopts, ext_fragment, ext_hopopts
from netstack.packet.jhash import jhash
from netstack.packet.siphash import siphash
from netstack.packet.tcp import build_tcp
from netstack.packet.udp import build_udp
from netstack.packet.vlan import VlanTag, build_vlan_frame

A = lambda s: ipaddress.ip_address(s).packed  # noqa: E731
M1, M2 = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"
KEY = bytes(range(16))


def eth4(src: str, dst: str, l4: bytes, proto: int = 17, **kw) -> bytes:
    return build_ethernet(M1, M2, 0x0800, build_ipv4(A(src), A(dst), proto, l4, **kw))


def eth6(src: str, dst: str, l4: bytes, proto: int = 6, **kw) -> bytes:
    return build_ethernet(M1, M2, 0x86DD, build_ipv6(A(src), A(dst), proto, l4, **kw))


def test_struct_layout_golden() -> None:
    k = FlowKeys(
        thoff=34, addr_type=2, flags=0, n_proto=0x0800, ip_proto=17, flow_label=0x12345,
        vlan_id=100, vlan_priority=5, vlan_tpid=0x8100, vlan_eth_type=0x0800, keyid=0xAABBCCDD,
        src_port=1234, dst_port=53, icmp_type=8, icmp_code=0, icmp_id=7,
        src=A("10.0.0.1"), dst=A("10.0.0.2"),
    )
    b = k.to_bytes()
    assert len(b) == 80
    assert b[0:8] == bytes.fromhex("2200" "0200" "00000000")  # control: u16 thoff, u16 addr_type, u32 flags (LE)
    assert b[8:12] == bytes.fromhex("0800" "11" "00")  # basic: __be16 n_proto, ip_proto, padding
    assert b[12:16] == (0x12345).to_bytes(4, "little")  # tags.flow_label (host order)
    assert b[16:24] == ((5 << 13) | 100).to_bytes(2, "little") + bytes.fromhex("8100" "0800" "0000")  # vlan
    assert b[24:32] == bytes(8)  # cvlan
    assert b[32:36] == bytes.fromhex("aabbccdd")  # keyid (__be32)
    assert b[36:40] == bytes.fromhex("04d2" "0035")  # ports
    assert b[40:44] == bytes.fromhex("08" "00" "0700")  # icmp type, code, u16 id
    assert b[44:52] == A("10.0.0.1") + A("10.0.0.2") and b[52:] == bytes(28)
    assert k.hash_input() == b[8:56]  # IPv4: up to the end of v4addrs + 4 bytes (sizeof rounding)


def test_hash_region_lengths() -> None:
    assert len(FlowKeys(addr_type=2, src=bytes(4), dst=bytes(4)).hash_input()) == 48
    assert len(FlowKeys(addr_type=3, src=bytes(16), dst=bytes(16)).hash_input()) == 72
    assert len(FlowKeys().hash_input()) == 40


def test_ipv4_udp_keys() -> None:
    f = eth4("10.0.0.1", "10.0.0.2", build_udp(1234, 53, b"q"))
    k, ok = flow_dissect(f)
    assert ok and (k.n_proto, k.ip_proto, k.src_port, k.dst_port, k.thoff) == (0x0800, 17, 1234, 53, 34)
    assert (k.src, k.dst, k.addr_type) == (A("10.0.0.1"), A("10.0.0.2"), FLOW_DISSECTOR_KEY_IPV4_ADDRS)
    assert flow_keys_have_l4(k)
    # network-header entry point (skb after eth_type_trans)
    k2, _ = flow_dissect(f[14:], proto=0x0800)
    assert (k2.src_port, k2.dst_port, k2.thoff) == (1234, 53, 20)


def test_ipv4_fragments_have_no_ports() -> None:
    first = eth4("10.0.0.1", "10.0.0.2", build_tcp(80, 5000), proto=6, mf=True)
    k, ok = flow_dissect(first)
    assert ok and k.flags == FLOW_DIS_IS_FRAGMENT | FLOW_DIS_FIRST_FRAG and (k.src_port, k.dst_port) == (0, 0)
    assert k.ip_proto == 6
    later = eth4("10.0.0.1", "10.0.0.2", build_tcp(80, 5000), proto=6, frag_offset=1480)
    k, ok = flow_dissect(later)
    assert ok and k.flags == FLOW_DIS_IS_FRAGMENT and k.src_port == 0


def test_qinq_and_deep_vlan_stacks() -> None:
    inner = build_ipv4(A("1.1.1.1"), A("2.2.2.2"), 17, build_udp(7, 9))
    tags = [VlanTag.make(100, pcp=3, tpid=0x88A8), VlanTag.make(200)] + [VlanTag.make(i) for i in range(3)]
    f = build_vlan_frame(M1, M2, tags, 0x0800, inner)
    k, ok = flow_dissect(f)
    assert ok and (k.vlan_id, k.vlan_priority, k.vlan_tpid, k.vlan_eth_type) == (100, 3, 0x88A8, 0x8100)
    assert (k.cvlan_id, k.src_port, k.dst_port, k.n_proto) == (0, 7, 9, 0x0800)
    # a hardware-accelerated outer tag gives the same keys apart from thoff
    single = build_vlan_frame(M1, M2, [VlanTag.make(42, pcp=1)], 0x0800, inner)
    untagged = build_ethernet(M1, M2, 0x0800, inner)
    ka, _ = flow_dissect(single)
    kb, _ = flow_dissect(untagged, vlan_tag=(0x8100, VlanTag.make(42, pcp=1).tci))
    assert ka.thoff == kb.thoff + 4
    kb.thoff = ka.thoff
    assert ka == kb and skb_get_hash(single, KEY) == skb_get_hash(untagged, KEY, vlan_tag=(0x8100, 0x202A))


def test_ipv6_extension_headers_and_fragments() -> None:
    f = eth6("2001:db8::1", "2001:db8::2", build_tcp(443, 5555), ext_headers=[ext_hopopts(), ext_dstopts(b"\x01\x00")])
    k, ok = flow_dissect(f)
    assert ok and (k.ip_proto, k.src_port, k.dst_port, k.thoff) == (6, 443, 5555, 14 + 40 + 16)
    frag = eth6("2001:db8::1", "2001:db8::2", build_udp(1, 2), proto=17, ext_headers=[ext_fragment(0, True, 1)])
    k, ok = flow_dissect(frag)
    assert ok and k.flags == FLOW_DIS_IS_FRAGMENT | FLOW_DIS_FIRST_FRAG and k.ip_proto == 17 and k.src_port == 0


def test_ipv6_flow_label_stops_dissection_for_skb_hash() -> None:
    f = eth6("2001:db8::1", "2001:db8::2", build_tcp(443, 5555), flow_label=0xBEEF)
    k, _ = flow_dissect(f, flags=FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL)
    assert k.flow_label == 0xBEEF and (k.src_port, k.dst_port) == (0, 0) and k.ip_proto == 6
    k, _ = flow_dissect(f)
    assert k.flow_label == 0xBEEF and (k.src_port, k.dst_port) == (443, 5555)


def test_ipip_and_gre_encapsulation() -> None:
    inner = build_ipv4(A("10.0.0.1"), A("10.0.0.2"), 17, build_udp(1000, 2000))
    f = eth4("192.0.2.1", "192.0.2.2", inner, proto=4)
    k, ok = flow_dissect(f)
    assert ok and k.flags & FLOW_DIS_ENCAPSULATION and (k.src, k.src_port) == (A("10.0.0.1"), 1000)
    k, ok = flow_dissect(f, flags=FLOW_DISSECTOR_F_STOP_AT_ENCAP)
    assert ok and (k.src, k.ip_proto, k.src_port) == (A("192.0.2.1"), 4, 0)
    # GRE with key carrying Ethernet (gretap)
    gre = bytes.fromhex("2000" "6558") + (0x01020304).to_bytes(4, "big") + build_ethernet(M1, M2, 0x0800, inner)
    k, ok = flow_dissect(eth4("192.0.2.1", "192.0.2.2", gre, proto=47))
    assert ok and k.keyid == 0x01020304 and (k.dst, k.dst_port, k.n_proto) == (A("10.0.0.2"), 2000, 0x0800)


def test_malformed_frames_report_out_bad() -> None:
    assert flow_dissect(b"\x00" * 10) == (FlowKeys(), False)
    bad_ihl = bytearray(eth4("1.1.1.1", "2.2.2.2", b""))
    bad_ihl[14] = 0x44
    assert flow_dissect(bad_ihl)[1] is False
    k, ok = flow_dissect(build_ethernet(M1, M2, 0x1234, b"xx"))
    assert not ok and k.n_proto == 0x1234
    k, ok = flow_dissect(eth4("1.1.1.1", "2.2.2.2", b"\x00\x01", proto=6))  # TCP truncated: ports 0, still ok
    assert ok and k.src_port == 0


def test_icmp_key_when_requested() -> None:
    f = eth4("1.1.1.1", "2.2.2.2", build_icmp_echo(0, 5), proto=1)
    k, _ = flow_dissect(f, dissect_icmp=True)
    assert (k.icmp_type, k.icmp_code, k.icmp_id) == (8, 0, 1)  # id 0 is reported as 1
    assert flow_dissect(f)[0].icmp_type == 0


def test_consistentify_uses_x86_integer_order() -> None:
    # 1.0.0.2 vs 2.0.0.1: big-endian order keeps them, little-endian host order swaps
    k = FlowKeys(addr_type=2, n_proto=0x0800, ip_proto=17, src=A("1.0.0.2"), dst=A("2.0.0.1"), src_port=0x0102, dst_port=0x0201)
    expect = FlowKeys(addr_type=2, n_proto=0x0800, ip_proto=17, src=A("2.0.0.1"), dst=A("1.0.0.2"), src_port=0x0201, dst_port=0x0102)
    h = siphash(expect.hash_input(), KEY) & 0xFFFFFFFF
    assert flow_hash_from_keys(k, KEY) == (h or 1)


ports = st.integers(0, 0xFFFF)


@settings(deadline=None)
@given(st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4), ports, ports, st.binary(min_size=16, max_size=16))
def test_skb_hash_symmetric_v4(s: bytes, d: bytes, sp: int, dp: int, key: bytes) -> None:
    fwd = build_ethernet(M1, M2, 0x800, build_ipv4(s, d, 6, build_tcp(sp, dp)))
    rev = build_ethernet(M2, M1, 0x800, build_ipv4(d, s, 6, build_tcp(dp, sp)))
    h = skb_get_hash(fwd, key)
    assert h == skb_get_hash(rev, key) and 1 <= h <= 0xFFFFFFFF


@settings(deadline=None)
@given(st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16), ports, ports)
def test_skb_hash_symmetric_v6(s: bytes, d: bytes, sp: int, dp: int) -> None:
    fwd = build_ethernet(M1, M2, 0x86DD, build_ipv6(s, d, 17, build_udp(sp, dp)))
    rev = build_ethernet(M2, M1, 0x86DD, build_ipv6(d, s, 17, build_udp(dp, sp)))
    assert skb_get_hash(fwd, KEY) == skb_get_hash(rev, KEY)


def test_hash_depends_on_key_and_flow() -> None:
    f1 = eth4("10.0.0.1", "10.0.0.2", build_udp(1, 2))
    f2 = eth4("10.0.0.1", "10.0.0.2", build_udp(1, 3))
    assert skb_get_hash(f1, KEY) != skb_get_hash(f2, KEY)
    assert skb_get_hash(f1, KEY) != skb_get_hash(f1, bytes(16))


def test_udp_flow_src_port_arithmetic() -> None:
    h = 0x12345678
    mixed = (h ^ (h << 16)) & 0xFFFFFFFF
    assert mixed == 0x444C5678
    assert udp_flow_src_port(h, 1, 65535) == ((0x444C5678 * 65534) >> 32) + 1 == 17484
    # min >= max: the local port range [32768, 60999)
    assert udp_flow_src_port(h, 0, 0) == ((0x444C5678 * (60999 - 32768)) >> 32) + 32768
    # zero hash with use_eth: jhash(dst+src MAC, 12, (u32)skb->protocol) with protocol as little-endian u16
    eth = M1 + M2
    e = jhash(eth, 0x0008)
    e ^= (e << 16) & 0xFFFFFFFF
    assert udp_flow_src_port(0, 1000, 2000, eth_header=eth, protocol=0x0800) == ((e * 1000) >> 32) + 1000


@settings(deadline=None)
@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 65534), st.integers(1, 65535))
def test_udp_flow_src_port_range(h: int, lo: int, hi: int) -> None:
    p = udp_flow_src_port(h or 1, lo, hi)
    if lo < hi:
        assert lo <= p < hi
    else:
        assert 32768 <= p < 60999
