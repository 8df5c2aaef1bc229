"""DHCP codec: dpkt-built messages decode, round trips, malformed options are ParseError."""

from __future__ import annotations

import dpkt
import pytest
from hypothesis import given, settings, strategies as st

from netstack.packet.dhcp import (
    DHCPACK,
    DHCPDISCOVER,
    DHCP_MAGIC,
    OPT_MSG_TYPE,
    OPT_OVERLOAD,
    OPT_SUBNET_MASK,
    DhcpMessage,
    parse_dhcp,
)
from netstack.packet.errors import ParseError

MAC = bytes.fromhex("020000000a01")


def _dpkt_ack() -> bytes:
    d = dpkt.dhcp.DHCP(
        op=dpkt.dhcp.DHCP_OP_REPLY,
        chaddr=MAC,
        xid=0x1234ABCD,
        yiaddr=0x0A000205,
        siaddr=0x0A000201,
        opts=[
            (dpkt.dhcp.DHCP_OPT_MSGTYPE, bytes([dpkt.dhcp.DHCPACK])),
            (dpkt.dhcp.DHCP_OPT_NETMASK, bytes([255, 255, 255, 0])),
            (dpkt.dhcp.DHCP_OPT_SERVER_ID, bytes([10, 0, 2, 1])),
        ],
    )
    return bytes(d)


def test_dpkt_ack_decodes() -> None:
    m = parse_dhcp(_dpkt_ack())
    assert m.op == 2 and m.xid == 0x1234ABCD
    assert m.msg_type == DHCPACK
    assert m.yiaddr == bytes([10, 0, 2, 5]) and m.siaddr == bytes([10, 0, 2, 1])
    assert m.client_mac == MAC
    assert m.subnet_mask == bytes([255, 255, 255, 0]) and m.prefixlen == 24
    assert m.option(54) == bytes([10, 0, 2, 1])


def test_build_matches_dpkt_fields() -> None:
    m = DhcpMessage(op=1, xid=7, chaddr=MAC, options=[(OPT_MSG_TYPE, bytes([DHCPDISCOVER])), (0, b""), (12, b"sta1")])
    raw = m.build()
    d = dpkt.dhcp.DHCP(raw)
    assert d.xid == 7 and d.chaddr == MAC
    assert (OPT_MSG_TYPE, bytes([DHCPDISCOVER])) in d.opts and (12, b"sta1") in d.opts
    assert parse_dhcp(raw).option(12) == b"sta1"


def test_plain_bootp_has_no_options() -> None:
    raw = DhcpMessage(op=2, options=None).build()
    assert len(raw) == 236
    m = parse_dhcp(raw)
    assert m.options is None and m.msg_type == 0


def test_short_fixed_part() -> None:
    with pytest.raises(ParseError) as e:
        parse_dhcp(bytes(235))
    assert e.value.reason == "PKT_TOO_SMALL"


@pytest.mark.parametrize("tail", [bytes([53]), bytes([53, 3, 5]), bytes([1, 4, 255, 255])])
def test_truncated_option(tail: bytes) -> None:
    raw = DhcpMessage(options=[]).build()[:-1] + tail  # drop END, append a broken option
    with pytest.raises(ParseError) as e:
        parse_dhcp(raw)
    assert e.value.reason == "HDR_TRUNC"


def test_overload_walks_file_then_sname() -> None:
    file = bytes([53, 1, DHCPACK, 255]).ljust(128, b"\0")
    sname = bytes([1, 4, 255, 255, 0, 0, 255]).ljust(64, b"\0")
    m = parse_dhcp(DhcpMessage(op=2, file=file, sname=sname, options=[(OPT_OVERLOAD, b"\x03")]).build())
    assert m.msg_type == DHCPACK and m.prefixlen == 16
    assert [c for c, _ in m.options] == [OPT_OVERLOAD, OPT_MSG_TYPE, OPT_SUBNET_MASK]


def test_bad_overload_value() -> None:
    with pytest.raises(ParseError):
        parse_dhcp(DhcpMessage(options=[(OPT_OVERLOAD, b"\x07")]).build())


def test_repeated_option_concatenates() -> None:
    m = parse_dhcp(DhcpMessage(options=[(12, b"ab"), (12, b"cd")]).build())
    assert m.option(12) == b"abcd"


opt = st.tuples(st.integers(1, 254).filter(lambda c: c != OPT_OVERLOAD), st.binary(max_size=40))


@settings(max_examples=150, deadline=None)
@given(st.lists(opt, max_size=8), st.integers(0, 2**32 - 1), st.binary(min_size=6, max_size=6))
def test_round_trip(opts: list[tuple[int, bytes]], xid: int, mac: bytes) -> None:
    m = DhcpMessage(op=2, xid=xid, chaddr=mac.ljust(16, b"\0"), options=opts)
    back = parse_dhcp(m.build())
    assert back == m
    assert back.build() == m.build()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_options_never_escape(tail: bytes) -> None:
    raw = bytes(236) + DHCP_MAGIC.to_bytes(4, "big") + tail
    try:
        m = parse_dhcp(raw)
    except ParseError as e:
        assert e.reason in ("HDR_TRUNC", "PKT_TOO_SMALL")
    else:
        assert m.options is not None
