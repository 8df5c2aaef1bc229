"""Checksum arithmetic: RFC vectors, kernel-exact incremental updates, properties."""

from __future__ import annotations

import struct

import dpkt
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.packet.checksum import (
    csum_add,
    csum_block_add,
    csum_block_sub,
    csum_fold,
    csum_ipv6_magic,
    csum_partial,
    csum_replace2,
    csum_replace4,
    csum_replace_bytes,
    csum_sub,
    csum_tcpudp_magic,
    ip_decrease_ttl_csum,
    ip_fast_csum,
    pseudo_sum_v4,
    pseudo_sum_v6,
)
from netstack.packet.ipv4 import IPv4View, build_ipv4


def ref_sum(data: bytes, seed: int = 0) -> int:
    """Word-by-word end-around-carry sum (RFC 1071 §4.1 reference loop)."""
    if len(data) % 2:
        data += b"\x00"
    s = seed
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return s


def test_rfc1071_example() -> None:
    d = bytes.fromhex("0001f203f4f5f6f7")
    assert csum_partial(d) == 0xDDF2
    assert csum_fold(csum_partial(d)) == 0x220D


def test_known_ipv4_header() -> None:
    hdr = bytearray.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert ip_fast_csum(hdr) == 0xB861
    hdr[10:12] = b"\xb8\x61"
    assert ip_fast_csum(hdr) == 0


def test_zero_and_negative_zero() -> None:
    assert csum_partial(b"") == 0
    assert csum_partial(bytes(10)) == 0
    assert csum_fold(0) == 0xFFFF
    assert csum_partial(b"\xff\xff") == 0xFFFF  # non-zero input never sums to 0
    assert csum_fold(0xFFFFFFFF) == 0  # kernel csum_fold of ~0


@settings(deadline=None)
@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_csum_partial_matches_reference(data: bytes, seed: int) -> None:
    assert csum_partial(data, seed) == ref_sum(data, seed)


@settings(deadline=None)
@given(st.binary(max_size=100).filter(lambda b: len(b) % 2 == 0), st.binary(max_size=100))
def test_csum_partial_chains(a: bytes, b: bytes) -> None:
    assert csum_partial(a + b) == csum_add(csum_partial(a), csum_partial(b))
    assert csum_partial(b, csum_partial(a)) == csum_partial(a + b)


@settings(deadline=None)
@given(st.binary(max_size=60), st.binary(max_size=60))
def test_csum_block_add_any_offset(a: bytes, b: bytes) -> None:
    whole = csum_partial(a + b)
    assert csum_block_add(csum_partial(a), csum_partial(b), len(a)) % 0xFFFF == whole % 0xFFFF
    assert csum_block_sub(whole, csum_partial(b), len(a)) % 0xFFFF == csum_partial(a) % 0xFFFF


@settings(deadline=None)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_csum_sub_inverts_add(a: int, b: int) -> None:
    # equal modulo 0xffff (0 and 0xffff are the same ones'-complement value)
    assert csum_sub(csum_add(a, b), b) % 0xFFFF == a % 0xFFFF


def kernel_csum_replace2(check: int, old: int, new: int) -> int:
    """Literal transcription of include/net/checksum.h 16-bit helpers."""

    def csum16_add(csum: int, addend: int) -> int:
        res = (csum + addend) & 0xFFFF
        return (res + (1 if res < addend else 0)) & 0xFFFF

    def csum16_sub(csum: int, addend: int) -> int:
        return csum16_add(csum, ~addend & 0xFFFF)

    return ~csum16_add(csum16_sub(~check & 0xFFFF, old), new) & 0xFFFF


def kernel_csum_replace4(check: int, old: int, new: int) -> int:
    def csum_add32(a: int, b: int) -> int:
        res = (a + b) & 0xFFFFFFFF
        return (res + (1 if res < b else 0)) & 0xFFFFFFFF

    def fold(s: int) -> int:
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        return ~s & 0xFFFF

    tmp = csum_add32(~check & 0xFFFFFFFF, ~old & 0xFFFFFFFF)  # ~csum_unfold(): 32-bit NOT
    return fold(csum_add32(tmp, new))


@settings(deadline=None)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_csum_replace2_kernel_exact(check: int, old: int, new: int) -> None:
    assert csum_replace2(check, old, new) == kernel_csum_replace2(check, old, new)


@settings(deadline=None)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF))
def test_csum_replace4_kernel_exact(check: int, old: int, new: int) -> None:
    assert csum_replace4(check, old, new) == kernel_csum_replace4(check, old, new)


def kernel_ip_decrease_ttl(check_field: bytes) -> bytes:
    """include/net/ip.h on little-endian: check is a native u16 of the wire bytes."""
    (check,) = struct.unpack("<H", check_field)
    check += struct.unpack("<H", struct.pack(">H", 0x0100))[0]  # htons(0x0100)
    check = (check + (1 if check >= 0xFFFF else 0)) & 0xFFFF
    return struct.pack("<H", check)


@settings(deadline=None)
@given(st.integers(0, 0xFFFF))
def test_ip_decrease_ttl_kernel_exact(check: int) -> None:
    assert ip_decrease_ttl_csum(check).to_bytes(2, "big") == kernel_ip_decrease_ttl(check.to_bytes(2, "big"))


ipv4_headers = st.builds(
    lambda src, dst, proto, tos, ident, ttl, df, opts: build_ipv4(
        src, dst, proto, b"", tos=tos, id=ident, ttl=ttl, df=df, options=opts
    ),
    st.binary(min_size=4, max_size=4),
    st.binary(min_size=4, max_size=4),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.integers(1, 255),
    st.booleans(),
    st.sampled_from([b"", b"\x01\x01\x01\x00", b"\x94\x04\x00\x00"]),
)


@settings(deadline=None, max_examples=300)
@given(ipv4_headers, st.integers(1, 10))
def test_ttl_decrement_incremental_equals_full(hdr: bytes, n: int) -> None:
    buf = bytearray(hdr)
    v = IPv4View.parse(buf)
    for _ in range(min(n, v.ttl)):
        v.decrease_ttl()
        incremental = v.check
        assert ip_fast_csum(buf) == 0
        full = bytearray(buf)
        IPv4View(full).update_checksum()
        assert incremental == IPv4View(full).check


@settings(deadline=None, max_examples=300)
@given(ipv4_headers, st.binary(min_size=4, max_size=4), st.integers(0, 0xFFFF))
def test_replace_incremental_equals_full(hdr: bytes, new_addr: bytes, new_id: int) -> None:
    buf = bytearray(hdr)
    v = IPv4View.parse(buf)
    v.saddr = new_addr  # csum_replace4
    old_id = v.id
    v.id = new_id
    v.check = csum_replace2(v.check, old_id, new_id)
    full = bytearray(buf)
    IPv4View(full).update_checksum()
    assert v.check == IPv4View(full).check
    assert v.checksum_ok()


@settings(deadline=None, max_examples=300)
@given(ipv4_headers, st.integers(0, 255))
def test_change_dsfield_keeps_header_valid(hdr: bytes, tos: int) -> None:
    buf = bytearray(hdr)
    v = IPv4View.parse(buf)
    v.tos = tos
    assert v.tos == tos and ip_fast_csum(buf) == 0


@settings(deadline=None)
@given(st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16), st.binary(max_size=64).filter(lambda b: len(b) % 2 == 0))
def test_csum_replace_bytes(old: bytes, new: bytes, rest: bytes) -> None:
    data = b"\x45\x00" + old + rest
    check = csum_fold(csum_partial(data))
    upd = csum_replace_bytes(check, old, new)
    assert upd % 0xFFFF == csum_fold(csum_partial(b"\x45\x00" + new + rest)) % 0xFFFF


def test_udp_and_tcp_checksums_match_dpkt() -> None:
    src, dst = bytes([10, 0, 0, 1]), bytes([192, 168, 1, 2])
    u = dpkt.udp.UDP(sport=1234, dport=53, data=b"hello world!!")
    ip = dpkt.ip.IP(src=src, dst=dst, p=17, data=u)
    raw = bytes(ip)
    seg = raw[20:]
    # with the check field in place the magic over the segment is 0
    assert csum_tcpudp_magic(src, dst, len(seg), 17, csum_partial(seg)) == 0
    z = bytearray(seg)
    z[6:8] = b"\x00\x00"
    assert csum_tcpudp_magic(src, dst, len(z), 17, csum_partial(z)) == int.from_bytes(seg[6:8], "big")

    s6, d6 = bytes(range(16)), bytes(range(16, 32))
    t = dpkt.tcp.TCP(sport=80, dport=4000, seq=1, flags=dpkt.tcp.TH_SYN, data=b"abc")
    ip6 = dpkt.ip6.IP6(src=s6, dst=d6, nxt=6, hlim=64, data=t, plen=len(bytes(t)))
    raw6 = bytes(ip6)
    seg6 = raw6[40:]
    assert csum_ipv6_magic(s6, d6, len(seg6), 6, csum_partial(seg6)) == 0


def test_pseudo_sums() -> None:
    s, d = bytes([1, 2, 3, 4]), bytes([5, 6, 7, 8])
    assert pseudo_sum_v4(s, d, 100, 17) == csum_partial(s + d + bytes([0, 17]) + (100).to_bytes(2, "big"))
    s6, d6 = bytes(range(16)), bytes(range(100, 116))
    assert pseudo_sum_v6(s6, d6, 70000, 6) == csum_partial(s6 + d6 + (70000).to_bytes(4, "big") + bytes([0, 0, 0, 6]))
