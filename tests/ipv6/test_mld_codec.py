"""MLD frames as Linux 6.18 sends them (netstack/ipv6/mcast.py; net/ipv6/mcast.c).

The hex fixtures were captured with AF_PACKET on the veth peer of a Linux 6.18 host:
link up (DAD running, then finished), ``ip addr add ff0e::1:2/128 dev X autojoin``
and ``ip addr del`` — with MLDv2 and with ``force_mld_version=1``.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.ipv6.mcast import (ALL_NODES, ICMPV6_MGM_REDUCTION, ICMPV6_MGM_REPORT,
                                 MLD2_CHANGE_TO_EXCLUDE, MLD2_CHANGE_TO_INCLUDE, MldQuery,
                                 Mld2Record, build_mld_query, ipv6_eth_mc_map, mld1_message,
                                 mld2_report, mld_eth_frame, mld_scope_reportable, mldv2_mrc,
                                 mldv2_qqi, parse_mld_query, with_query_checksum)
from netstack.packet.checksum import csum_ipv6_magic, csum_partial
from netstack.packet.errors import ParseError

MAC_A = bytes.fromhex("02000000000a")
LL_A = bytes.fromhex("fe80000000000000000000fffe00000a")
ANY = bytes(16)
SOL_A = bytes.fromhex("ff0200000000000000000001ff00000a")
SOL_G = bytes.fromhex("ff0200000000000000000001ff010002")
G = bytes.fromhex("ff0e0000000000000000000000010002")

# MLDv2, DAD still running: source ::
K_V2_INIT = ("33330000001602000000000a86dd600000000024000100000000000000000000000000000000"
             "ff0200000000000000000000000000163a000502000001008f006f800000000104000000"
             "ff0200000000000000000001ff00000a")
# MLDv2 after DAD (the DAD-complete initial report), source the link-local address
K_V2_DAD = ("33330000001602000000000a86dd6000000000240001fe80000000000000000000fffe00000a"
            "ff0200000000000000000000000000163a000502000001008f0071f50000000104000000"
            "ff0200000000000000000001ff00000a")
# autojoin ff0e::1:2: TO_EX for the new solicited-node group, the group, ff02::1:ff00:a
K_V2_JOIN = ("33330000001602000000000a86dd60000000004c0001fe80000000000000000000fffe00000a"
             "ff0200000000000000000000000000163a000502000001008f006cb10000000304000000"
             "ff0200000000000000000001ff01000204000000ff0e00000000000000000000000100020400"
             "0000ff0200000000000000000001ff00000a")
# ip addr del: TO_IN for both (tomb list, newest deletion first)
K_V2_LEAVE = ("33330000001602000000000a86dd6000000000380001fe80000000000000000000fffe00000a"
              "ff0200000000000000000000000000163a000502000001008f0070d50000000203000000"
              "ff0e000000000000000000000001000203000000ff0200000000000000000001ff010002")
# force_mld_version=1: reports to the group, dones to ff02::2
K_V1_REP_ANY = ("3333ff00000a02000000000a86dd600000000020000100000000000000000000000000000000"
                "ff0200000000000000000001ff00000a3a000502000001008300808f00000000"
                "ff0200000000000000000001ff00000a")
K_V1_REP_G = ("33330001000202000000000a86dd6000000000200001fe80000000000000000000fffe00000a"
              "ff0e00000000000000000000000100023a00050200000100830080fe00000000"
              "ff0e0000000000000000000000010002")
K_V1_REP_SOLG = ("3333ff01000202000000000a86dd6000000000200001fe80000000000000000000fffe00000a"
                 "ff0200000000000000000001ff0100023a000502000001008300831200000000"
                 "ff0200000000000000000001ff010002")
K_V1_DONE_SOLG = ("33330000000202000000000a86dd6000000000200001fe80000000000000000000fffe00000a"
                  "ff0200000000000000000000000000023a000502000001008400811500000000"
                  "ff0200000000000000000001ff010002")
K_V1_DONE_G = ("33330000000202000000000a86dd6000000000200001fe80000000000000000000fffe00000a"
               "ff0200000000000000000000000000023a000502000001008400800b00000000"
               "ff0e0000000000000000000000010002")


def _v2(saddr: bytes, recs: list[Mld2Record]) -> str:
    icmp = mld2_report(saddr, recs)
    return mld_eth_frame(MAC_A, saddr, bytes.fromhex("ff020000000000000000000000000016"),
                         icmp).hex()


@pytest.mark.parametrize("saddr,recs,want", [
    (ANY, [Mld2Record(MLD2_CHANGE_TO_EXCLUDE, SOL_A)], K_V2_INIT),
    (LL_A, [Mld2Record(MLD2_CHANGE_TO_EXCLUDE, SOL_A)], K_V2_DAD),
    (LL_A, [Mld2Record(MLD2_CHANGE_TO_EXCLUDE, g) for g in (SOL_G, G, SOL_A)], K_V2_JOIN),
    (LL_A, [Mld2Record(MLD2_CHANGE_TO_INCLUDE, g) for g in (G, SOL_G)], K_V2_LEAVE),
])
def test_mld2_report_matches_kernel(saddr: bytes, recs: list[Mld2Record], want: str) -> None:
    assert _v2(saddr, recs) == want


@pytest.mark.parametrize("saddr,type_,group,want", [
    (ANY, ICMPV6_MGM_REPORT, SOL_A, K_V1_REP_ANY),
    (LL_A, ICMPV6_MGM_REPORT, G, K_V1_REP_G),
    (LL_A, ICMPV6_MGM_REPORT, SOL_G, K_V1_REP_SOLG),
    (LL_A, ICMPV6_MGM_REDUCTION, SOL_G, K_V1_DONE_SOLG),
    (LL_A, ICMPV6_MGM_REDUCTION, G, K_V1_DONE_G),
])
def test_mld1_matches_kernel(saddr: bytes, type_: int, group: bytes, want: str) -> None:
    daddr, icmp = mld1_message(saddr, type_, group)
    assert mld_eth_frame(MAC_A, saddr, daddr, icmp).hex() == want


def test_mld1_rejects_query_type() -> None:
    with pytest.raises(ValueError):
        mld1_message(LL_A, 130, G)


def test_eth_map_and_scope() -> None:
    assert ipv6_eth_mc_map(SOL_A) == bytes.fromhex("3333ff00000a")
    assert not mld_scope_reportable(ALL_NODES)
    assert not mld_scope_reportable(bytes.fromhex("ff010000000000000000000000000001"))
    assert mld_scope_reportable(SOL_A) and mld_scope_reportable(G)
    assert mld_scope_reportable(bytes.fromhex("ff020000000000000000000000000002"))
    assert not mld_scope_reportable(LL_A)


def test_mrc_qqic_decoding() -> None:
    """RFC 3810 §5.1.3 / §5.1.9 worked values."""
    assert mldv2_mrc(10000) == 10000
    assert mldv2_mrc(0x7FFF) == 0x7FFF
    assert mldv2_mrc(0x8000) == 0x1000 << 3
    assert mldv2_mrc(0xFFFF) == 0x1FFF << 10
    assert mldv2_qqi(125) == 125
    assert mldv2_qqi(0x80) == 0x10 << 3
    assert mldv2_qqi(0xFF) == 0x1F << 10


def test_query_versions_and_errors() -> None:
    v1 = build_mld_query(MldQuery(1, bytes(16), 10000))
    q = parse_mld_query(v1)
    assert (q.version, q.general, q.max_resp_ms) == (1, True, 10000)
    v2 = build_mld_query(MldQuery(2, G, 1000, s_flag=True, qrv=2, qqi=125, sources=(LL_A,)))
    q = parse_mld_query(v2)
    assert (q.version, q.group, q.s_flag, q.qrv, q.qqi, q.sources) == (2, G, True, 2, 125,
                                                                        (LL_A,))
    with pytest.raises(ParseError) as e:
        parse_mld_query(v1[:23])
    assert e.value.reason == "PKT_TOO_SMALL"
    with pytest.raises(ParseError):
        parse_mld_query(v1 + b"\x00\x00")          # 26 bytes: neither v1 nor v2
    with pytest.raises(ParseError):
        parse_mld_query(v2[:-1])                   # a source cut short
    with pytest.raises(ParseError):                # general query with sources
        parse_mld_query(build_mld_query(MldQuery(2, bytes(16), 1, sources=(LL_A,))))
    with pytest.raises(ParseError):                # unicast group
        parse_mld_query(build_mld_query(MldQuery(1, LL_A, 1)))


def test_query_checksum_verifies() -> None:
    msg = with_query_checksum(LL_A, ALL_NODES, build_mld_query(MldQuery(2, bytes(16), 1000,
                                                                        qrv=2, qqi=125)))
    assert csum_ipv6_magic(LL_A, ALL_NODES, len(msg), 58, csum_partial(msg)) == 0


_grp = st.binary(min_size=15, max_size=15).map(lambda b: b"\xff" + b)


@settings(max_examples=150, deadline=None)
@given(ver=st.sampled_from([1, 2]), group=st.one_of(st.just(bytes(16)), _grp),
       mrc=st.integers(0, 0x7FFF), s=st.booleans(), qrv=st.integers(0, 7),
       qqi=st.integers(0, 0x7F), srcs=st.lists(st.binary(min_size=16, max_size=16),
                                               max_size=4))
def test_query_roundtrip(ver: int, group: bytes, mrc: int, s: bool, qrv: int, qqi: int,
                         srcs: list[bytes]) -> None:
    if ver == 1:
        q = MldQuery(1, group, mrc)
    else:
        q = MldQuery(2, group, mrc, s_flag=s, qrv=qrv, qqi=qqi,
                     sources=tuple(srcs) if group != bytes(16) else ())
    assert parse_mld_query(build_mld_query(q)) == q


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_query_parser_fuzz(data: bytes) -> None:
    """Only ParseError escapes, and what parses has a consistent version."""
    try:
        q = parse_mld_query(b"\x82" + data)
    except ParseError:
        return
    assert q.version == (1 if len(data) + 1 == 24 else 2)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), _grp), max_size=6), st.booleans())
def test_report_checksum_and_length(recs: list[tuple[int, bytes]], any_src: bool) -> None:
    saddr = ANY if any_src else LL_A
    icmp = mld2_report(saddr, [Mld2Record(t, g) for t, g in recs])
    assert len(icmp) == 8 + 20 * len(recs)
    dst = bytes.fromhex("ff020000000000000000000000000016")
    assert csum_ipv6_magic(saddr, dst, len(icmp), 58, csum_partial(icmp)) == 0
