"""Header codecs of the tunnels against the RFC layouts, with property tests.

Vectors are written out by hand from the RFC figures (RFC 7348 §5, RFC 8926 §3/§3.5,
RFC 2784/2890, draft-ietf-intarea-gue §3), not produced by the code under test.
"""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, strategies as st

from netstack.drivers.geneve import (GeneveOpt, geneve_header, geneve_opts_build,
                                     geneve_opts_parse)
from netstack.drivers.ip_gre import GRE_CSUM, GRE_KEY, GRE_SEQ, gre_calc_hlen, gre_header, gre_parse
from netstack.drivers.vxlan.rcv import reserved_bits
from netstack.drivers.vxlan.device import VxlanConfig
from netstack.ipv4.fou import (GUE_FLAG_PRIV, GUE_PFLAG_REMCSUM, gue_header, validate_gue_flags)
from netstack.packet.errors import ParseError
from netstack.packet.flow_dissector import udp_flow_src_port


# ------------------------------------------------------------------- VXLAN
def test_vxlan_reserved_bits_follow_the_device_options() -> None:
    """Only I + VNI are allowed by default; RCO adds C and the VNI low byte; GBP adds
    G, D, A and the policy."""
    rf, rv = reserved_bits(VxlanConfig())
    assert rf == 0xF7FFFFFF and rv == 0x000000FF
    rf, rv = reserved_bits(VxlanConfig(remcsum_rx=True))
    assert not rf & 0x00200000 and rv == 0
    rf, _ = reserved_bits(VxlanConfig(gbp=True))
    assert not rf & (0x80000000 | 0x00400000 | 0x00080000 | 0xFFFF)


# ------------------------------------------------------------------ Geneve
def test_geneve_header_rfc8926_layout() -> None:
    """Figure 2 of RFC 8926: Ver=0, Opt Len, O, C, Protocol Type, VNI, Reserved."""
    opt = GeneveOpt(0x0102, 0x80 | 0x03, b"\xde\xad\xbe\xef")
    raw = geneve_header(0x123456, 0x6558, geneve_opts_build([opt]), oam=True, critical=True)
    assert raw == bytes([0x02, 0xC0, 0x65, 0x58, 0x12, 0x34, 0x56, 0x00,
                         0x01, 0x02, 0x83, 0x01, 0xDE, 0xAD, 0xBE, 0xEF])
    assert geneve_opts_parse(raw[8:]) == [opt]
    assert opt.critical


@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFF),
                          st.integers(0, 8).map(lambda n: bytes(4 * n))), max_size=6))
def test_geneve_options_roundtrip(items: list[tuple[int, int, bytes]]) -> None:
    opts = [GeneveOpt(c, t, d) for c, t, d in items]
    assert geneve_opts_parse(geneve_opts_build(opts)) == opts


@pytest.mark.parametrize("raw", [b"\x01\x02\x03", b"\x01\x02\x03\x02\xaa\xbb\xcc\xdd",
                                 b"\x00\x00\x00\x1f" + bytes(8)])
def test_geneve_option_past_the_end_is_a_parse_error(raw: bytes) -> None:
    with pytest.raises(ParseError):
        geneve_opts_parse(raw)


# --------------------------------------------------------------------- GRE
def test_gre_header_vectors_rfc2784_2890() -> None:
    assert gre_header(0x0800) == b"\x00\x00\x08\x00"
    assert gre_header(0x6558, GRE_KEY, key=42) == b"\x20\x00\x65\x58\x00\x00\x00\x2a"
    assert gre_header(0x0800, GRE_CSUM | GRE_KEY | GRE_SEQ, key=1, seq=2, csum=0xBEEF) == (
        b"\xb0\x00\x08\x00\xbe\xef\x00\x00\x00\x00\x00\x01\x00\x00\x00\x02")
    assert [gre_calc_hlen(f) for f in (0, GRE_KEY, GRE_CSUM | GRE_SEQ,
                                       GRE_CSUM | GRE_KEY | GRE_SEQ)] == [4, 8, 12, 16]


def test_gre_parse_fields_and_rejections() -> None:
    t = gre_parse(gre_header(0x86DD, GRE_KEY | GRE_SEQ, key=7, seq=9) + b"payload")
    assert (t.proto, t.key, t.seq, t.hdr_len) == (0x86DD, 7, 9, 12)
    for bad in (b"\x40\x00\x08\x00" + bytes(8),   # routing bit (RFC 1701 source route)
                b"\x00\x01\x08\x00" + bytes(8),   # version 1
                b"\x20\x00\x08\x00\x00\x00",      # key truncated
                b"\x00"):
        with pytest.raises(ParseError):
            gre_parse(bad)


# --------------------------------------------------------------------- GUE
def test_gue_header_layout_and_flag_validation() -> None:
    """draft-ietf-intarea-gue §3.1: Ver(2) C(1) Hlen(5) | Proto/ctype | Flags."""
    opts = struct.pack("!IHH", GUE_PFLAG_REMCSUM, 24, 30)
    raw = gue_header(47, flags=GUE_FLAG_PRIV, options=opts)
    assert raw[:4] == b"\x02\x2f\x00\x01"
    assert validate_gue_flags(GUE_FLAG_PRIV, opts)
    assert not validate_gue_flags(0x8000, b"")                       # unknown flag
    assert not validate_gue_flags(GUE_FLAG_PRIV, b"")                # private flags absent
    assert not validate_gue_flags(GUE_FLAG_PRIV, struct.pack("!I", 1))  # unknown private flag
    assert not validate_gue_flags(GUE_FLAG_PRIV, struct.pack("!I", GUE_PFLAG_REMCSUM))  # no RCO option
    assert gue_header(4, control=True)[0] == 0x20


# ---------------------------------------------------------- source port
def test_udp_flow_src_port_arithmetic() -> None:
    """include/net/udp.h: h ^= h << 16; ((u64)h * (max - min) >> 32) + min."""
    h = 0x12345678
    x = (h ^ (h << 16)) & 0xFFFFFFFF
    assert udp_flow_src_port(h, 1, 65535) == ((x * 65534) >> 32) + 1
    assert udp_flow_src_port(h, 0, 0) == ((x * (60999 - 32768)) >> 32) + 32768


@given(st.integers(1, 0xFFFFFFFF), st.integers(1, 60000), st.integers(1, 5000))
def test_udp_flow_src_port_range(h: int, lo: int, span: int) -> None:
    p = udp_flow_src_port(h, lo, lo + span)
    assert lo <= p < lo + span
