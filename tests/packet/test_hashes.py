"""Vectors and properties for jhash, CRC32c/SCTP, SipHash and Toeplitz."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.packet.crc32c import crc32c, sctp_checksum, sctp_csum_field, sctp_set_checksum, sctp_verify
from netstack.packet.jhash import jhash, jhash2, jhash_1word, jhash_2words, jhash_3words
from netstack.packet.sctp import SctpChunk, SctpView, build_sctp
from netstack.packet.siphash import siphash
from netstack.packet.toeplitz import MS_DEFAULT_KEY, rss_hash_ipv4, rss_hash_ipv6, toeplitz_hash

u32 = st.integers(0, 0xFFFFFFFF)


# -- jhash (reference doc §1.2; Bob Jenkins' lookup3 driver values) ---------

def test_jhash_vectors() -> None:
    assert jhash(b"", 0) == 0xDEADBEEF
    assert jhash(b"", 0xDEADBEEF) == 0xBD5B7DDE
    assert jhash(b"Four score and seven years ago", 0) == 0x17770551
    assert jhash(b"Four score and seven years ago", 1) == 0xCD628161


@settings(deadline=None)
@given(st.lists(u32, max_size=12), u32)
def test_jhash2_equals_jhash_on_le_words(words: list[int], iv: int) -> None:
    raw = b"".join(w.to_bytes(4, "little") for w in words)
    assert jhash2(words, iv) == jhash(raw, iv)


@settings(deadline=None)
@given(u32, u32, u32, u32)
def test_jhash_nwords_equal_jhash2(a: int, b: int, c: int, iv: int) -> None:
    assert jhash_3words(a, b, c, iv) == jhash2([a, b, c], iv)
    assert jhash_2words(a, b, iv) == jhash2([a, b], iv)
    assert jhash_1word(a, iv) == jhash2([a], iv)


# -- CRC32c (RFC 3720 B.4, reference doc §1.5) -------------------------------

def test_crc32c_vectors() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert sctp_csum_field(crc32c(bytes(32))) == bytes.fromhex("aa36918a")
    assert sctp_csum_field(crc32c(b"\xff" * 32)) == bytes.fromhex("43aba862")
    assert sctp_csum_field(crc32c(bytes(range(32)))) == bytes.fromhex("4e79dd46")
    assert sctp_csum_field(crc32c(bytes(range(31, -1, -1)))) == bytes.fromhex("5cdb3f11")


def crc32c_bitwise(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


@settings(deadline=None)
@given(st.binary(max_size=80), st.binary(max_size=40))
def test_crc32c_reference_and_chaining(a: bytes, b: bytes) -> None:
    assert crc32c(a) == crc32c_bitwise(a)
    assert crc32c(b, crc32c(a)) == crc32c(a + b)
    assert crc32c(memoryview(a + b)) == crc32c(a + b)


def test_sctp_checksum_roundtrip_and_corruption() -> None:
    pkt = bytearray(build_sctp(5000, 80, 0xDEADBEEF, [SctpChunk(1, 0, bytes(range(16)))]))
    assert sctp_verify(pkt)
    assert SctpView.parse(pkt).checksum_ok()
    # the field is little-endian on the wire
    assert pkt[8:12] == sctp_checksum(pkt).to_bytes(4, "little")
    pkt[20] ^= 1
    assert not sctp_verify(pkt)
    sctp_set_checksum(pkt)
    assert sctp_verify(pkt)


# -- SipHash-2-4 (reference vectors, as lib/test_siphash.c) -------------------

def test_siphash_vectors() -> None:
    key = bytes(range(16))
    assert siphash(b"", key) == 0x726FDB47DD0E0E31
    assert siphash(bytes(range(1)), key) == 0x74F839C593DC67FD
    assert siphash(bytes(range(8)), key) == 0x93F5F5799A932462
    assert siphash(bytes(range(15)), key) == 0xA129CA6149BE45E5
    assert siphash(bytes(range(63)), key) == 0x958A324CEB064572


# -- Toeplitz (Microsoft "Verifying the RSS Hash Calculation") ------------------

A = lambda s: ipaddress.ip_address(s).packed  # noqa: E731

V4 = [
    ("66.9.149.187", 2794, "161.142.100.80", 1766, 0x323E8FC2, 0x51CCC178),
    ("199.92.111.2", 14230, "65.69.140.83", 4739, 0xD718262A, 0xC626B0EA),
    ("24.19.198.95", 12898, "12.22.207.184", 38024, 0xD2D0A5DE, 0x5C2B394A),
    ("38.27.205.30", 48228, "209.142.163.6", 2217, 0x82989176, 0xAFC7327F),
    ("153.39.163.191", 44251, "202.188.127.2", 1303, 0x5D1809C5, 0x10E828A2),
]
V6 = [
    ("3ffe:2501:200:1fff::7", 2794, "3ffe:2501:200:3::1", 1766, 0x2CC18CD5, 0x40207D3D),
    ("3ffe:501:8::260:97ff:fe40:efab", 14230, "ff02::1", 4739, 0x0F0C461C, 0xDDE51BBF),
    ("3ffe:1900:4545:3:200:f8ff:fe21:67cf", 44251, "fe80::200:f8ff:fe21:67cf", 38024, 0x4B61E985, 0x02D1FEEF),
]


def test_toeplitz_ms_vectors_ipv4() -> None:
    for s, sp, d, dp, h2, h4 in V4:
        assert rss_hash_ipv4(A(s), A(d)) == h2
        assert rss_hash_ipv4(A(s), A(d), sp, dp) == h4


def test_toeplitz_ms_vectors_ipv6() -> None:
    for s, sp, d, dp, h2, h4 in V6:
        assert rss_hash_ipv6(A(s), A(d)) == h2
        assert rss_hash_ipv6(A(s), A(d), sp, dp) == h4


@settings(deadline=None)
@given(st.binary(max_size=36), st.binary(max_size=36))
def test_toeplitz_is_linear(a: bytes, b: bytes) -> None:
    n = max(len(a), len(b))
    a, b = a.ljust(n, b"\0"), b.ljust(n, b"\0")
    x = bytes(p ^ q for p, q in zip(a, b))
    assert toeplitz_hash(x, MS_DEFAULT_KEY) == toeplitz_hash(a) ^ toeplitz_hash(b)
