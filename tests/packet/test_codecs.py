"""Round trips parse(build(x)) == x for every codec, in-place edits, dpkt cross-checks."""

from __future__ import annotations

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.packet.arp import ArpView, build_arp
from netstack.packet.constants import (
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_IP,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    ND_OPT_MTU,
    ND_OPT_PREFIX_INFO,
    ND_OPT_SOURCE_LL_ADDR,
    ND_OPT_TARGET_LL_ADDR,
    NDISC_NEIGHBOUR_ADVERTISEMENT,
    NDISC_NEIGHBOUR_SOLICITATION,
    NDISC_REDIRECT,
    NDISC_ROUTER_ADVERTISEMENT,
    NDISC_ROUTER_SOLICITATION,
    TCPOPT_MSS,
    TCPOPT_NOP,
    TCPOPT_SACK,
    TCPOPT_SACK_PERM,
    TCPOPT_TIMESTAMP,
    TCPOPT_WINDOW,
)
from netstack.packet.errors import ParseError
from netstack.packet.ethernet import EthernetView, build_ethernet, mac_bytes, mac_str
from netstack.packet.icmp import IcmpView, build_icmp, build_icmp_echo
from netstack.packet.icmpv6 import Icmp6View, NdMessage, NdOption, PrefixInfo, build_nd, parse_nd
from netstack.packet.ipv4 import IPv4Option, IPv4View, build_ipv4, parse_ipv4_options
from netstack.packet.ipv6 import (
    IPv6View,
    ext_ah,
    ext_dstopts,
    ext_fragment,
    ext_hopopts,
    ext_routing,
    build_ipv6,
    ipv6_skip_exthdr,
)
from netstack.packet.sctp import SctpChunk, SctpView, build_sctp
from netstack.packet.tcp import TcpOption, TcpView, build_tcp, parse_tcp_options
from netstack.packet.udp import UdpView, build_udp
from netstack.packet.vlan import VlanTag, build_vlan_frame, parse_vlan_stack, vlan_pop, vlan_push

mac = st.binary(min_size=6, max_size=6)
ip4 = st.binary(min_size=4, max_size=4)
ip6 = st.binary(min_size=16, max_size=16)
u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
payload = st.binary(max_size=64)


# -- Ethernet / VLAN / ARP ------------------------------------------------------

@settings(deadline=None)
@given(mac, mac, st.integers(0x600, 0xFFFF), payload)
def test_ethernet_roundtrip(dst: bytes, src: bytes, et: int, pl: bytes) -> None:
    f = bytearray(build_ethernet(dst, src, et, pl))
    v = EthernetView.parse(f)
    assert (v.dst, v.src, v.ethertype, bytes(v.payload())) == (dst, src, et, pl)
    v.dst, v.src = src, dst
    assert f[:12] == src + dst


def test_mac_helpers_and_padding() -> None:
    assert mac_str(b"\x02\x00\x00\xab\xcd\xef") == "02:00:00:ab:cd:ef"
    assert mac_bytes("02-00-00-AB-CD-EF") == b"\x02\x00\x00\xab\xcd\xef"
    with pytest.raises(ValueError):
        mac_bytes("02:00:00")
    assert len(build_ethernet(b"\1" * 6, b"\2" * 6, ETH_P_IP, b"x", pad=True)) == 60


vlan_tags = st.lists(
    st.builds(VlanTag, st.sampled_from([ETH_P_8021Q, ETH_P_8021AD]), u16), max_size=4
)


@settings(deadline=None)
@given(mac, mac, vlan_tags, st.sampled_from([0x0800, 0x86DD, 0x0806]), payload)
def test_vlan_stack_roundtrip(dst: bytes, src: bytes, tags: list[VlanTag], et: int, pl: bytes) -> None:
    f = build_vlan_frame(dst, src, tags, et, pl)
    got, etype, l3 = parse_vlan_stack(f)
    assert got == tags and etype == et and f[l3:] == pl
    pushed = vlan_push(f, ETH_P_8021AD, 0x2064)
    assert parse_vlan_stack(pushed)[0] == [VlanTag(ETH_P_8021AD, 0x2064)] + tags
    popped, tag = vlan_pop(pushed)
    assert tag == VlanTag(ETH_P_8021AD, 0x2064) and bytes(popped) == f


def test_vlan_tag_fields() -> None:
    t = VlanTag.make(vid=100, pcp=5, dei=1)
    assert (t.vid, t.pcp, t.dei, t.tci) == (100, 5, 1, (5 << 13) | (1 << 12) | 100)
    with pytest.raises(ParseError):
        vlan_pop(build_ethernet(b"\1" * 6, b"\2" * 6, ETH_P_IP, b"1234"))


@settings(deadline=None)
@given(u16, mac, ip4, mac, ip4)
def test_arp_roundtrip(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> None:
    b = bytearray(build_arp(op, sha, spa, tha, tpa))
    v = ArpView.parse(b)
    assert (v.htype, v.ptype, v.hlen, v.plen, v.op, v.sha, v.spa, v.tha, v.tpa) == (1, 0x800, 6, 4, op, sha, spa, tha, tpa)
    v.tha = sha
    v.op = 2
    assert ArpView.parse(b).tha == sha and ArpView.parse(b).op == 2
    assert dpkt.arp.ARP(bytes(b)).spa == spa


# -- IPv4 ---------------------------------------------------------------------

ipv4_opts = st.lists(
    st.one_of(
        st.just(IPv4Option(1)),
        st.builds(IPv4Option, st.sampled_from([7, 68, 130, 131, 137, 148]), st.binary(max_size=6)),
    ),
    max_size=4,
)


@settings(deadline=None, max_examples=200)
@given(ip4, ip4, u8, payload, u8, u16, st.booleans(), st.booleans(), st.integers(0, 8191), u8, ipv4_opts)
def test_ipv4_roundtrip(src, dst, proto, pl, tos, ident, df, mf, fo, ttl, opts) -> None:
    raw = build_ipv4(src, dst, proto, pl, tos=tos, id=ident, df=df, mf=mf, frag_offset=fo * 8, ttl=ttl, options=opts)
    v = IPv4View.parse(raw)
    assert (v.version, v.saddr, v.daddr, v.protocol, v.tos, v.id, v.df, v.mf, v.frag_offset, v.ttl) == (
        4, src, dst, proto, tos, ident, df, mf, fo * 8, ttl,
    )
    assert bytes(v.payload()) == pl and v.checksum_ok()
    assert v.parsed_options() == opts
    assert v.is_fragment == (mf or fo != 0)
    d = dpkt.ip.IP(raw)
    assert d.src == src and d.sum == v.check


def test_ipv4_parse_errors() -> None:
    good = bytearray(build_ipv4(b"\1\2\3\4", b"\5\6\7\x08", 17, b"payload!"))
    cases = {
        "IP_INHDR": [good[:19], bytearray(b"\x65") + good[1:], bytearray(b"\x44") + good[1:]],
        "PKT_TOO_SMALL": [good[:-1]],
    }
    for reason, pkts in cases.items():
        for p in pkts:
            with pytest.raises(ParseError) as ei:
                IPv4View.parse(p, verify_csum=False)
            assert ei.value.reason == reason
    bad = bytearray(good)
    bad[8] ^= 1
    with pytest.raises(ParseError) as ei:
        IPv4View.parse(bad)
    assert ei.value.reason == "IP_CSUM"
    short_tot = bytearray(good)
    short_tot[2:4] = (12).to_bytes(2, "big")
    IPv4View(short_tot).update_checksum()
    with pytest.raises(ParseError) as ei:
        IPv4View.parse(short_tot)
    assert ei.value.reason == "IP_INHDR"
    with pytest.raises(ParseError):
        parse_ipv4_options(b"\x07\x01\x00\x00")  # length 1


def test_ipv4_in_place_edits_keep_checksum() -> None:
    b = bytearray(build_ipv4(b"\1\2\3\4", b"\5\6\7\x08", 6, b"", ttl=64))
    v = IPv4View.parse(b)
    assert v.decrease_ttl() == 63
    v.daddr = b"\xc0\xa8\x00\x01"
    v.tos = 0xB8
    assert IPv4View.parse(b).checksum_ok()


# -- IPv6 ---------------------------------------------------------------------

ext_strategy = st.lists(
    st.one_of(
        st.builds(ext_hopopts, st.binary(max_size=10)),
        st.builds(ext_dstopts, st.binary(max_size=10)),
        st.builds(lambda sl, a: ext_routing(0, sl, bytes(4) + a), u8, st.sampled_from([b"", bytes(16)])),
        st.builds(lambda spi, seq: ext_ah(spi, seq), u32, u32),
        st.builds(lambda o, m, i: ext_fragment(0, m, i), st.integers(0, 8191), st.booleans(), u32),
    ),
    max_size=4,
)


@settings(deadline=None, max_examples=200)
@given(ip6, ip6, st.sampled_from([6, 17, 58, 132]), payload, u8, st.integers(0, 0xFFFFF), u8, ext_strategy)
def test_ipv6_roundtrip(src, dst, nh, pl, tc, fl, hl, exts) -> None:
    raw = bytearray(build_ipv6(src, dst, nh, pl, traffic_class=tc, flow_label=fl, hop_limit=hl, ext_headers=exts))
    v = IPv6View.parse(raw)
    assert (v.version, v.saddr, v.daddr, v.traffic_class, v.flow_label, v.hop_limit) == (6, src, dst, tc, fl, hl)
    chain = v.ext_chain()
    assert [h for h, _ in chain.headers] == exts
    assert chain.upper_proto == nh and bytes(raw[chain.upper_off : v.end]) == pl
    nexthdr, upper_off, _ = v.skip_exthdr()
    assert (nexthdr, upper_off) == (nh, chain.upper_off)
    v.flow_label = 0xABCDE
    v.traffic_class = 0x2E
    assert (v.flow_label, v.traffic_class) == (0xABCDE, 0x2E)


def test_ipv6_nonfirst_fragment_stops_at_fragment_header() -> None:
    raw = build_ipv6(bytes(16), bytes(16), 17, b"x" * 16, ext_headers=[ext_hopopts(), ext_fragment(1480, True, 7)])
    nexthdr, off, frag = ipv6_skip_exthdr(raw, 40, IPPROTO_HOPOPTS)
    assert nexthdr == IPPROTO_FRAGMENT and off == 48 and frag == 1480 | 1
    chain = IPv6View.parse(raw).ext_chain()
    assert chain.fragment is not None and chain.fragment.frag_offset == 1480 and chain.fragment.more_fragments
    assert chain.fragment.identification == 7


def test_ipv6_errors() -> None:
    raw = bytearray(build_ipv6(bytes(16), bytes(16), 17, b"abcd", ext_headers=[ext_dstopts(b"\x01\x02\x00\x00")]))
    with pytest.raises(ParseError) as ei:
        IPv6View.parse(raw[:-1])
    assert ei.value.reason == "PKT_TOO_SMALL"
    with pytest.raises(ParseError) as ei:
        IPv6View.parse(b"\x40" + raw[1:])
    assert ei.value.reason == "IP_INHDR"
    raw[41] = 9  # dstopts length 80 bytes: past the end
    with pytest.raises(ParseError) as ei:
        IPv6View.parse(raw).ext_chain()
    assert ei.value.reason == "IPV6_BAD_EXTHDR"


# -- ICMP / ICMPv6 / ND ---------------------------------------------------------

@settings(deadline=None)
@given(u8, u8, st.binary(min_size=4, max_size=4), payload)
def test_icmp_roundtrip(t, c, rest, pl) -> None:
    b = bytearray(build_icmp(t, c, rest, pl))
    v = IcmpView.parse(b)
    assert (v.type, v.code, v.rest, bytes(v.payload())) == (t, c, rest, pl)
    assert v.checksum_ok()
    v.type = 8 if t != 8 else 3  # incremental update (non-zero: an all-zero message never verifies)
    assert IcmpView.parse(b).checksum_ok()


def test_icmp_echo_matches_dpkt() -> None:
    b = build_icmp_echo(0x1234, 7, b"ping")
    d = dpkt.icmp.ICMP(b)
    assert d.type == 8 and d.data.id == 0x1234 and d.data.seq == 7
    d2 = dpkt.icmp.ICMP(type=8, data=dpkt.icmp.ICMP.Echo(id=0x1234, seq=7, data=b"ping"))
    assert bytes(d2) == b


nd_opts = st.lists(
    st.one_of(
        st.builds(NdOption, st.sampled_from([ND_OPT_SOURCE_LL_ADDR, ND_OPT_TARGET_LL_ADDR]), mac),
        st.builds(NdOption, st.just(ND_OPT_MTU), u32),
        st.builds(
            lambda pl, f, v, p, pre: NdOption(ND_OPT_PREFIX_INFO, PrefixInfo(pl, f, v, p, pre)),
            st.integers(0, 128), u8, u32, u32, ip6,
        ),
    ),
    max_size=3,
)


@settings(deadline=None, max_examples=150)
@given(st.sampled_from([NDISC_ROUTER_SOLICITATION, NDISC_ROUTER_ADVERTISEMENT, NDISC_NEIGHBOUR_SOLICITATION,
                        NDISC_NEIGHBOUR_ADVERTISEMENT, NDISC_REDIRECT]), ip6, ip6, u8, u8, u16, u32, u32, nd_opts, ip6, ip6)
def test_nd_roundtrip(t, target, dest, flags, hop, life, reach, retrans, opts, src, dst) -> None:
    kw: dict = {"options": tuple(opts)}
    if t == NDISC_ROUTER_ADVERTISEMENT:
        kw.update(flags=flags, cur_hop_limit=hop, router_lifetime=life, reachable_time=reach, retrans_timer=retrans)
    elif t in (NDISC_NEIGHBOUR_SOLICITATION, NDISC_NEIGHBOUR_ADVERTISEMENT):
        kw.update(target=target, flags=flags & 0xE0 if t == NDISC_NEIGHBOUR_ADVERTISEMENT else 0)
    elif t == NDISC_REDIRECT:
        kw.update(target=target, dest=dest)
    m = NdMessage(t, 0, **kw)
    wire = build_nd(m, src, dst)
    assert Icmp6View.parse(wire).checksum_ok(src, dst)
    assert parse_nd(wire) == m


def test_nd_bad_option_length() -> None:
    m = NdMessage(NDISC_NEIGHBOUR_SOLICITATION, target=bytes(16), options=(NdOption(ND_OPT_SOURCE_LL_ADDR, b"\2" * 6),))
    wire = bytearray(build_nd(m, bytes(16), bytes(16)))
    wire[25] = 0
    with pytest.raises(ParseError) as ei:
        parse_nd(wire)
    assert ei.value.reason == "IPV6_NDISC_BAD_OPTIONS"
    with pytest.raises(ParseError) as ei:
        parse_nd(wire[:20])
    assert ei.value.reason == "PKT_TOO_SMALL"


# -- UDP / TCP / SCTP -----------------------------------------------------------

@settings(deadline=None)
@given(u16, u16, payload, st.one_of(st.tuples(ip4, ip4), st.tuples(ip6, ip6)))
def test_udp_roundtrip(sp, dp, pl, addrs) -> None:
    src, dst = addrs
    b = bytearray(build_udp(sp, dp, pl, src=src, dst=dst))
    v = UdpView.parse(b)
    assert (v.sport, v.dport, v.length, bytes(v.payload())) == (sp, dp, 8 + len(pl), pl)
    assert v.check != 0 and v.checksum_ok(src, dst)
    v.dport = dp ^ 1  # a change of +-1 is never a multiple of 0xffff
    assert not v.checksum_ok(src, dst)
    v.update_checksum(src, dst)
    assert v.checksum_ok(src, dst)


def test_udp_zero_checksum_rules_and_errors() -> None:
    b = build_udp(1, 2, b"abc")
    assert UdpView.parse(b).checksum_ok(b"\1\1\1\1", b"\2\2\2\2")
    assert not UdpView.parse(b).checksum_ok(bytes(16), bytes(16))
    for bad in (b[:7], build_udp(1, 2, b"abc", length=7), build_udp(1, 2, b"abc", length=12)):
        with pytest.raises(ParseError) as ei:
            UdpView.parse(bad)
        assert ei.value.reason == "PKT_TOO_SMALL"


tcp_opts = st.lists(
    st.one_of(
        st.just(TcpOption(TCPOPT_NOP)),
        st.builds(TcpOption, st.just(TCPOPT_MSS), u16),
        st.builds(TcpOption, st.just(TCPOPT_WINDOW), st.integers(0, 14)),
        st.just(TcpOption(TCPOPT_SACK_PERM)),
        st.builds(TcpOption, st.just(TCPOPT_TIMESTAMP), st.tuples(u32, u32)),
        st.builds(TcpOption, st.just(TCPOPT_SACK), st.lists(st.tuples(u32, u32), min_size=1, max_size=2).map(tuple)),
        st.builds(TcpOption, st.sampled_from([30, 34, 254]), st.binary(max_size=4)),
    ),
    max_size=3,
).filter(lambda opts: sum(len(o.build()) for o in opts) <= 40)


@settings(deadline=None, max_examples=200)
@given(u16, u16, u32, u32, u8, u16, payload, tcp_opts, st.tuples(ip4, ip4))
def test_tcp_roundtrip(sp, dp, seq, ack, flags, win, pl, opts, addrs) -> None:
    src, dst = addrs
    b = bytearray(build_tcp(sp, dp, seq, ack, flags, win, pl, options=opts, src=src, dst=dst))
    v = TcpView.parse(b)
    assert (v.sport, v.dport, v.seq, v.ack_seq, v.flags, v.window, bytes(v.payload())) == (sp, dp, seq, ack, flags, win, pl)
    assert v.options() == opts and v.checksum_ok(src, dst)
    v.flags = flags ^ 0x10  # incremental
    assert v.checksum_ok(src, dst)
    d = dpkt.tcp.TCP(bytes(b))
    assert (d.sport, d.seq, d.data) == (sp, seq, pl)


def test_tcp_option_parsing_is_lenient_like_kernel() -> None:
    # MSS then a truncated option: walk stops, nothing raised
    assert parse_tcp_options(b"\x02\x04\x05\xb4\x08\x0a\x00") == [TcpOption(TCPOPT_MSS, 1460)]
    # a bad length ends parsing
    assert parse_tcp_options(b"\x01\x03\x01\x00") == [TcpOption(TCPOPT_NOP)]
    # MSS with wrong length kept raw
    assert parse_tcp_options(b"\x02\x03\x05") == [TcpOption(TCPOPT_MSS, b"\x05")]
    seg = bytearray(build_tcp(1, 2))
    seg[12] = 4 << 4
    with pytest.raises(ParseError) as ei:
        TcpView.parse(seg)
    assert ei.value.reason == "PKT_TOO_SMALL"
    seg[12] = 6 << 4
    with pytest.raises(ParseError) as ei:
        TcpView.parse(seg)
    assert ei.value.reason == "HDR_TRUNC"


@settings(deadline=None)
@given(u16, u16, u32, st.lists(st.builds(SctpChunk, u8, u8, st.binary(max_size=20)), max_size=4))
def test_sctp_roundtrip(sp, dp, vtag, chunks) -> None:
    b = build_sctp(sp, dp, vtag, chunks)
    v = SctpView.parse(b)
    assert (v.sport, v.dport, v.vtag) == (sp, dp, vtag)
    assert v.chunks() == chunks and v.checksum_ok()


def test_sctp_bad_chunk_length() -> None:
    b = bytearray(build_sctp(1, 2, 3, [SctpChunk(0, 3, b"abcd")]))
    b[14:16] = (2).to_bytes(2, "big")
    with pytest.raises(ParseError) as ei:
        SctpView.parse(b)
    assert ei.value.reason == "HDR_TRUNC"
