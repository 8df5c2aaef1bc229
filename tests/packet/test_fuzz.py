"""Random and mutated input into every parser: only ParseError may escape."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.packet.arp import ArpView, build_arp
from netstack.packet.errors import DROP_REASONS, ParseError
from netstack.packet.ethernet import EthernetView, build_ethernet
from netstack.packet.flow_dissector import flow_dissect, skb_get_hash
from netstack.packet.icmp import IcmpView, build_icmp_echo
from netstack.packet.icmpv6 import Icmp6View, NdMessage, NdOption, build_nd, parse_nd, parse_nd_options
from netstack.packet.ipv4 import IPv4View, build_ipv4, parse_ipv4_options
from netstack.packet.ipv6 import IPv6View, build_ipv6, ext_ah, ext_fragment, ext_hopopts, ipv6_skip_exthdr
from netstack.packet.sctp import SctpChunk, SctpView, build_sctp
from netstack.packet.tcp import TcpOption, TcpView, build_tcp, parse_tcp_options
from netstack.packet.udp import UdpView, build_udp
from netstack.packet.vlan import VlanTag, build_vlan_frame, parse_vlan_stack


def _eth(b: bytearray) -> None:
    v = EthernetView.parse(b)
    v.dst, v.src, v.ethertype


def _vlan(b: bytearray) -> None:
    parse_vlan_stack(b)


def _arp(b: bytearray) -> None:
    v = ArpView.parse(b)
    v.sha, v.spa, v.tha, v.tpa, v.op


def _ipv4(b: bytearray) -> None:
    v = IPv4View.parse(b, verify_csum=False)
    v.parsed_options(), v.payload(), v.frag_offset, v.saddr
    parse_ipv4_options(b)


def _ipv6(b: bytearray) -> None:
    v = IPv6View.parse(b)
    v.ext_chain()
    v.skip_exthdr()
    ipv6_skip_exthdr(b, 0, b[0] if b else 0)


def _icmp(b: bytearray) -> None:
    v = IcmpView.parse(b)
    v.checksum_ok(), v.rest, v.payload()


def _icmp6(b: bytearray) -> None:
    v = Icmp6View.parse(b)
    v.checksum_ok(bytes(16), bytes(16))
    parse_nd(b)
    parse_nd_options(b)


def _udp(b: bytearray) -> None:
    v = UdpView.parse(b)
    v.checksum_ok(bytes(4), bytes(4)), v.payload()


def _tcp(b: bytearray) -> None:
    v = TcpView.parse(b)
    v.options(), v.payload(), v.checksum_ok(bytes(16), bytes(16))
    parse_tcp_options(b)


def _sctp(b: bytearray) -> None:
    v = SctpView.parse(b)
    v.chunks(), v.checksum_ok()


PARSERS: list[Callable[[bytearray], None]] = [_eth, _vlan, _arp, _ipv4, _ipv6, _icmp, _icmp6, _udp, _tcp, _sctp]


def run_all(data: bytes) -> None:
    for p in PARSERS:
        try:
            p(bytearray(data))
        except ParseError as e:
            assert e.reason in DROP_REASONS
    # the flow dissector never raises at all, like __skb_flow_dissect
    flow_dissect(data)
    skb_get_hash(data, bytes(16))
    for proto in (0x0800, 0x86DD, 0x8100, 0x8864, 0x88CA, 0x4305, 0x8906, 0x88F7):
        flow_dissect(data, proto=proto)


@settings(deadline=None, max_examples=400)
@given(st.binary(max_size=120))
def test_random_bytes(data: bytes) -> None:
    run_all(data)


A4, B4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
M1, M2 = b"\x02" * 6, b"\x04" * 6
VALID = [
    build_ethernet(M1, M2, 0x0800, build_ipv4(A4, B4, 6, build_tcp(1, 2, options=[TcpOption(2, 1460), TcpOption(1)]))),
    build_vlan_frame(M1, M2, [VlanTag.make(5), VlanTag.make(6, tpid=0x88A8)], 0x86DD,
                     build_ipv6(bytes(16), bytes(16), 17, build_udp(3, 4, b"x"), ext_headers=[ext_hopopts(), ext_ah(1, 2), ext_fragment(0, True, 9)])),
    build_ipv4(A4, B4, 17, build_udp(5, 6, b"abc"), options=b"\x94\x04\x00\x00"),
    build_ipv6(bytes(16), bytes(16), 58, build_nd(NdMessage(135, target=bytes(16), options=(NdOption(1, M1),)), bytes(16), bytes(16))),
    build_nd(NdMessage(134, cur_hop_limit=64, options=(NdOption(5, 1500),)), bytes(16), bytes(16)),
    build_icmp_echo(1, 2, b"ping"),
    build_tcp(80, 81, options=[TcpOption(8, (1, 2)), TcpOption(5, ((1, 2),))]),
    build_udp(7, 8, b"data"),
    build_sctp(1, 2, 3, [SctpChunk(0, 3, b"abcde"), SctpChunk(6)]),
    build_arp(1, M1, A4, bytes(6), B4),
    build_ethernet(M1, M2, 0x0800, build_ipv4(A4, B4, 47, bytes.fromhex("2000 6558 00000001") + build_ethernet(M1, M2, 0x0800, build_ipv4(B4, A4, 17, build_udp(1, 2))))),
]


@settings(deadline=None, max_examples=400)
@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4), st.integers(0, 200))
def test_mutated_valid_packets(pkt: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    b = bytearray(pkt)
    for pos, val in flips:
        if b:
            b[pos % len(b)] = val
    run_all(bytes(b))
    run_all(bytes(b[: len(b) - cut % (len(b) + 1)]))
