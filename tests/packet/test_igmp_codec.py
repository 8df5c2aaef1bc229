"""IGMP/MLD codecs: dpkt/handbuilt vectors, round trips, malformed → ParseError (fuzz)."""

from __future__ import annotations

import dpkt
import pytest
from hypothesis import given, settings, strategies as st

from netstack.packet.errors import ParseError
from netstack.packet.icmpv6 import icmpv6_checksum
from netstack.packet.igmp import (
    CHANGE_TO_EXCLUDE,
    ICMPV6_MGM_QUERY,
    ICMPV6_MGM_REPORT,
    ICMPV6_MLD2_REPORT,
    IGMP_HOST_LEAVE_MESSAGE,
    IGMP_HOST_MEMBERSHIP_QUERY,
    IGMPV2_HOST_MEMBERSHIP_REPORT,
    IGMPV3_HOST_MEMBERSHIP_REPORT,
    GroupRecord,
    IgmpMessage,
    MldMessage,
    build_igmp,
    build_mld,
    parse_igmp,
    parse_mld,
)

G = bytes([239, 1, 1, 1])
LL = bytes.fromhex("fe800000000000000000000000000001")
ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
G6 = bytes.fromhex("ff0e0000000000000000000000000101")


def test_v2_report_from_dpkt() -> None:
    raw = bytes(dpkt.igmp.IGMP(type=IGMPV2_HOST_MEMBERSHIP_REPORT, maxresp=0, group=G))
    m = parse_igmp(raw)
    assert m.kind == "report" and m.version == 2 and m.group == G
    assert build_igmp(m) == raw  # dpkt computes the same checksum


def test_bad_checksum() -> None:
    raw = bytearray(build_igmp(IgmpMessage(IGMPV2_HOST_MEMBERSHIP_REPORT, "report", 2, group=G)))
    raw[3] ^= 1
    with pytest.raises(ParseError) as e:
        parse_igmp(raw)
    assert e.value.reason == "IP_CSUM"
    assert parse_igmp(raw, verify_checksum=False).group == G


def test_query_versions_by_length() -> None:
    v1 = parse_igmp(build_igmp(IgmpMessage(IGMP_HOST_MEMBERSHIP_QUERY, "query", 1, 0, bytes(4))))
    v2 = parse_igmp(build_igmp(IgmpMessage(IGMP_HOST_MEMBERSHIP_QUERY, "query", 2, 100, G)))
    q3 = IgmpMessage(IGMP_HOST_MEMBERSHIP_QUERY, "query", 3, 100, G, True, 2, 125, (bytes([10, 0, 0, 1]),))
    v3 = parse_igmp(build_igmp(q3))
    assert (v1.version, v2.version, v3) == (1, 2, q3)
    # 9..11 bytes: neither v1/v2 nor a whole v3 query (ip_mc_check_igmp_query)
    bad = bytearray(build_igmp(IgmpMessage(IGMP_HOST_MEMBERSHIP_QUERY, "query", 2, 100, G)) + b"\0\0")
    with pytest.raises(ParseError):
        parse_igmp(bad, verify_checksum=False)


def test_v3_report_records() -> None:
    recs = (GroupRecord(CHANGE_TO_EXCLUDE, G), GroupRecord(1, bytes([239, 2, 2, 2]), (bytes([10, 0, 0, 9]),), b"abcd"))
    m = IgmpMessage(IGMPV3_HOST_MEMBERSHIP_REPORT, "report", 3, records=recs)
    raw = build_igmp(m)
    assert raw[6:8] == b"\x00\x02" and parse_igmp(raw) == m
    with pytest.raises(ParseError) as e:
        parse_igmp(raw[:-2], verify_checksum=False)
    assert e.value.reason == "HDR_TRUNC"


def test_leave_and_other() -> None:
    assert parse_igmp(build_igmp(IgmpMessage(IGMP_HOST_LEAVE_MESSAGE, "leave", 2, group=G))).kind == "leave"
    assert parse_igmp(build_igmp(IgmpMessage(0x13, "other", 0))).kind == "other"  # DVMRP: -ENOMSG


def test_mld_v1_report_checksum() -> None:
    m = MldMessage(ICMPV6_MGM_REPORT, "report", 1, group=G6)
    raw = build_mld(m, LL, G6)
    assert icmpv6_checksum(LL, G6, raw) == 0
    assert parse_mld(raw, LL, G6) == m
    with pytest.raises(ParseError):
        parse_mld(raw, LL, ALL_NODES)  # wrong pseudo-header
    with pytest.raises(ParseError) as e:
        parse_mld(raw[:20])
    assert e.value.reason == "PKT_TOO_SMALL"


def test_mld_v2_query_and_report() -> None:
    q = MldMessage(ICMPV6_MGM_QUERY, "query", 2, 1000, bytes(16), False, 2, 125, (LL,))
    assert parse_mld(build_mld(q, LL, ALL_NODES), LL, ALL_NODES) == q
    r = MldMessage(ICMPV6_MLD2_REPORT, "report", 2, records=(GroupRecord(CHANGE_TO_EXCLUDE, G6),))
    assert parse_mld(build_mld(r, LL, ALL_NODES)) == r
    with pytest.raises(ParseError):
        parse_mld(build_mld(q, LL, ALL_NODES)[:26])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 6), st.binary(min_size=4, max_size=4), st.lists(st.binary(min_size=4, max_size=4), max_size=3)),
        max_size=4,
    )
)
def test_v3_report_round_trip(recs: list) -> None:
    m = IgmpMessage(IGMPV3_HOST_MEMBERSHIP_REPORT, "report", 3, records=tuple(GroupRecord(t, g, tuple(s)) for t, g, s in recs))
    assert parse_igmp(build_igmp(m)) == m


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_never_escapes(data: bytes) -> None:
    for fn in (lambda: parse_igmp(data, verify_checksum=False), lambda: parse_mld(data)):
        try:
            fn()
        except ParseError:
            pass
