"""GSO: per-segment header rewrites as skb_segment/tcp_gso_segment/inet_gso_segment do
them, every segment's checksums valid (checked by an independent RFC 1071 loop), tunnel
GSO with and without outer checksum, GSO_PARTIAL, UDP_L4, UFO, DODGY handling, errors."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core.gso import (SKB_GSO_DODGY, SKB_GSO_PARTIAL, SKB_GSO_TCP_ACCECN,
                               SKB_GSO_TCP_FIXEDID, SKB_GSO_TCPV4, SKB_GSO_TCPV6, SKB_GSO_UDP,
                               SKB_GSO_UDP_L4, GsoError, netif_needs_gso, netif_skb_features,
                               skb_gso_segment, skb_gso_validate_network_len)
from netstack.core.skb_csum import skb_checksum_help
from netstack.packet.skb import CHECKSUM_NONE, CHECKSUM_PARTIAL

from .pktbuild import (IP_A, IP_B, check_l4, eth, gre_gso_packet, gso_packet, ipv4, pseudo4,
                       rfc1071, tcp4_frame, tcp6_frame, udp, vxlan_gso_packet)

PAY = bytes((i * 13 + 5) & 0xFF for i in range(70000))
HW = frozenset({"tx-checksum-ip-generic"})


class Dev:
    """A device as GSO sees it: features, no hw_enc_features of its own."""

    net = None
    hw_enc_features = None
    gso_partial_features: frozenset = frozenset()

    def __init__(self, features: frozenset = frozenset()) -> None:
        self.features = set(features)


def seg(p, features=frozenset()):
    p.dev = Dev(features)
    return skb_gso_segment(p, features)


def finish(s) -> bytes:
    """What the wire carries once a device filled the PARTIAL checksum."""
    if s.ip_summed == CHECKSUM_PARTIAL:
        assert skb_checksum_help(s) == 0
    return s.bytes()


@pytest.mark.parametrize("features", [frozenset(), HW])
def test_tcp4_segments_headers_and_checksums(features) -> None:
    fr = tcp4_frame(PAY[:3 * 1448 + 100], flags=0x80 | 0x19, ident=0xFFFF)
    segs = seg(gso_packet(fr, 14, 34, 1448, SKB_GSO_TCPV4), features)
    assert [len(s) for s in segs] == [1502, 1502, 1502, 154]
    for i, s in enumerate(segs):
        assert s.ip_summed == (CHECKSUM_PARTIAL if features else CHECKSUM_NONE)
        b = finish(s)
        assert check_l4(b, 14)
        assert struct.unpack("!H", b[18:20])[0] == (0xFFFF + i) & 0xFFFF   # IP ID increments
        assert struct.unpack("!I", b[38:42])[0] == 1000 + i * 1448          # seq
        flags = b[47]
        assert bool(flags & 0x80) == (i == 0)                                # CWR first only
        assert bool(flags & 0x09) == (i == 3) and (flags & 0x09 in (0, 0x09))  # FIN/PSH last
        assert b[54:] == PAY[i * 1448:(i + 1) * 1448][:len(b) - 54]


def test_tcp_accecn_keeps_cwr_and_fixedid_keeps_id() -> None:
    fr = tcp4_frame(PAY[:3000], flags=0x80 | 0x10, ident=0x1234)
    segs = seg(gso_packet(fr, 14, 34, 1000, SKB_GSO_TCPV4 | SKB_GSO_TCP_ACCECN | SKB_GSO_TCP_FIXEDID))
    assert all(s.bytes()[47] & 0x80 for s in segs)
    assert {s.bytes()[18:20] for s in segs} == {b"\x12\x34"}


def test_tcp6_segments() -> None:
    fr = tcp6_frame(PAY[:5000])
    segs = seg(gso_packet(fr, 14, 54, 1440, SKB_GSO_TCPV6))
    assert len(segs) == 4
    for s in segs:
        b = s.bytes()
        assert check_l4(b, 14)
        assert struct.unpack("!H", b[18:20])[0] == len(b) - 54


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 9000), mss=st.integers(100, 2000), hw=st.booleans(),
       flags=st.sampled_from([0x10, 0x18, 0x19, 0x90, 0x11]))
def test_property_every_segment_valid_and_payload_preserved(n, mss, hw, flags) -> None:
    if n <= mss:
        n = mss + 1
    fr = tcp4_frame(PAY[:n], flags=flags)
    segs = seg(gso_packet(fr, 14, 34, mss, SKB_GSO_TCPV4), HW if hw else frozenset())
    assert len(segs) == -(-n // mss)
    data = b""
    for s in segs:
        b = finish(s)
        assert check_l4(b, 14)
        data += b[54:]
    assert data == PAY[:n]


def test_payload_not_longer_than_mss_is_einval() -> None:
    fr = tcp4_frame(PAY[:1000])
    with pytest.raises(GsoError):
        seg(gso_packet(fr, 14, 34, 1000, SKB_GSO_TCPV4))


def test_csum_start_not_tcp_header_is_einval() -> None:
    p = gso_packet(tcp4_frame(PAY[:3000]), 14, 34, 1000, SKB_GSO_TCPV4)
    p.csum_start += 4
    with pytest.raises(GsoError):
        seg(p)


def test_wrong_gso_type_for_protocol_is_einval() -> None:
    with pytest.raises(GsoError):
        seg(gso_packet(tcp4_frame(PAY[:3000]), 14, 34, 1000, SKB_GSO_TCPV6))


def test_dodgy_packet_the_device_can_segment_gets_gso_segs_only() -> None:
    p = gso_packet(tcp4_frame(PAY[:3000]), 14, 34, 1000, SKB_GSO_TCPV4 | SKB_GSO_DODGY)
    feats = frozenset({"tx-tcp-segmentation", "tx-checksum-ip-generic", "tx-gso-robust"})
    assert seg(p, feats) is None
    assert p.gso_segs == 3


@pytest.mark.parametrize("outer_csum", [True, False])
@pytest.mark.parametrize("features", [frozenset(), HW])
def test_vxlan_tunnel_segments(outer_csum, features) -> None:
    segs = seg(vxlan_gso_packet(PAY[:4000], 1200, outer_csum), features)
    assert len(segs) == 4
    for i, s in enumerate(segs):
        b = finish(s)
        assert check_l4(b, 14) and check_l4(b, 64)            # outer and inner
        assert struct.unpack("!H", b[38:40])[0] == len(b) - 34  # outer UDP length
        assert (b[40:42] == b"\0\0") == (not outer_csum)
        assert struct.unpack("!H", b[18:20])[0] == 0x2000 + i   # outer IP ID
        assert struct.unpack("!H", b[68:70])[0] == 0x100 + i    # inner IP ID


def test_vxlan_remcsum_leaves_inner_checksum_to_the_receiver() -> None:
    """TUNNEL_REMCSUM: segments go out CHECKSUM_NONE with the inner TCP field still the
    pseudo seed; the outer checksum is computed as the kernel does (gso_reset_checksum
    then gso_make_checksum: the LCO formula), i.e. it is right once the receiver has
    restored the inner checksum."""
    segs = seg(vxlan_gso_packet(PAY[:3000], 1000, True, remcsum=True))
    for s in segs:
        assert s.ip_summed == CHECKSUM_NONE
        b = bytearray(s.bytes())
        assert not check_l4(bytes(b), 64)              # inner not filled
        t = 84
        b[t + 16:t + 18] = b"\0\0"
        inner_len = len(b) - t
        c = rfc1071(pseudo4(bytes([192, 168, 0, 1]), bytes([192, 168, 0, 2]), 6, inner_len)
                    + bytes(b[t:]))
        b[t + 16:t + 18] = c.to_bytes(2, "big")
        assert check_l4(bytes(b), 14) and check_l4(bytes(b), 64)


@pytest.mark.parametrize("csum", [True, False])
def test_gre_segments(csum) -> None:
    segs = seg(gre_gso_packet(PAY[:3000], 1000, csum, key=7))
    gl = 12 if csum else 8
    for s in segs:
        b = s.bytes()
        assert check_l4(b, 14 + 20 + gl)
        if csum:
            assert rfc1071(b[34:]) == 0
        assert b[34 + gl - 4:34 + gl] == b"\0\0\0\x07"


def test_gso_partial_cuts_mss_multiples() -> None:
    feats = frozenset({"tx-checksum-ip-generic", "tx-gso-partial", "tx-scatter-gather",
                       "tx-tcp-segmentation"})
    p = vxlan_gso_packet(PAY[:10 * 1000 + 500], 1000, True)
    p.dev = Dev(feats | {"tx-udp_tnl-csum-segmentation"})
    p.dev.gso_partial_features = frozenset({"tx-udp_tnl-csum-segmentation"})
    p.dev.hw_enc_features = feats
    segs = skb_gso_segment(p, feats)
    assert len(segs) == 2
    first, last = segs
    assert first.gso_size == 1000 and first.gso_segs == 10 and first.gso_type & SKB_GSO_PARTIAL
    assert last.gso_size == 0
    b = first.bytes()
    # every header except the inner L4 is written for one gso_size segment
    assert struct.unpack("!H", b[16:18])[0] == 20 + 8 + 8 + 14 + 20 + 20 + 1000
    assert struct.unpack("!H", b[38:40])[0] == 8 + 8 + 14 + 20 + 20 + 1000
    assert struct.unpack("!H", b[66:68])[0] == 20 + 20 + 1000


def test_udp_l4_segments() -> None:
    payload = PAY[:3500]
    d = udp(5000, 6000, payload, None)
    fr = eth(b"\2" * 6, b"\4" * 6, 0x0800) + ipv4(len(d), 17) + d
    p = gso_packet(fr, 14, 34, 1000, SKB_GSO_UDP_L4, csum_offset=6)
    segs = seg(p)
    assert [len(s) for s in segs] == [1042, 1042, 1042, 542]
    for s in segs:
        b = s.bytes()
        assert check_l4(b, 14)
        assert struct.unpack("!H", b[38:40])[0] == len(b) - 34


def test_ufo_fragments() -> None:
    payload = PAY[:3000]
    d = udp(5000, 6000, payload, pseudo4(IP_A, IP_B, 17, 8 + len(payload)))
    fr = eth(b"\2" * 6, b"\4" * 6, 0x0800) + ipv4(len(d), 17, df=False) + d
    p = gso_packet(fr, 14, 34, 1480, SKB_GSO_UDP, csum_offset=6)
    segs = seg(p)
    offs = [struct.unpack("!H", s.bytes()[20:22])[0] for s in segs]
    assert offs == [0x2000, 0x2000 | 185, 370]
    whole = b"".join(s.bytes()[34:] for s in segs)
    assert rfc1071(pseudo4(IP_A, IP_B, 17, len(whole)) + whole) == 0


def test_netif_skb_features_and_needs_gso() -> None:
    p = gso_packet(tcp4_frame(PAY[:3000]), 14, 34, 1000, SKB_GSO_TCPV4)
    dev = Dev(frozenset({"tx-checksum-ip-generic", "tx-tcp-segmentation", "tx-scatter-gather"}))
    f = netif_skb_features(p, dev)
    assert not netif_needs_gso(p, f)
    p.gso_segs = 70000
    assert netif_needs_gso(p, netif_skb_features(p, dev))
    p.gso_segs = 3
    dev.features.discard("tx-checksum-ip-generic")   # no checksum → no TSO (harmonize)
    assert netif_needs_gso(p, netif_skb_features(p, dev))


def test_validate_network_len() -> None:
    p = gso_packet(tcp4_frame(PAY[:3000]), 14, 34, 1000, SKB_GSO_TCPV4)
    assert skb_gso_validate_network_len(p, 1040)
    assert not skb_gso_validate_network_len(p, 1039)


def _ipip_packet(n: int, mss: int):
    """IPv4-in-IPv4 TCP super-packet (ipip's xmit state: IPXIP4, inner headers)."""
    from netstack.core.gso import SKB_GSO_IPXIP4
    from netstack.packet.checksum import pseudo_sum_v4
    from netstack.packet.skb import Packet
    isrc, idst = bytes([192, 168, 1, 1]), bytes([192, 168, 1, 2])
    from .pktbuild import tcp
    seg_ = tcp(1, 2, 100, 5, 0x18, PAY[:n], pseudo4(isrc, idst, 6, 20 + n))
    inner = ipv4(len(seg_), 6, src=isrc, dst=idst, ident=0x700, df=False) + seg_
    fr = eth(b"\2" * 6, b"\4" * 6, 0x0800) + ipv4(len(inner), 4, ident=0x900) + inner
    p = Packet(fr)
    d = p.data
    p.mac_header, p.network_header, p.transport_header = d, d + 14, d + 34
    p.inner_mac_header = p.inner_network_header = d + 34
    p.inner_transport_header = d + 54
    p.inner_protocol = 0x0800
    p.encapsulation = True
    p.protocol = 0x0800
    p.buf[d + 70:d + 72] = pseudo_sum_v4(isrc, idst, len(seg_), 6).to_bytes(2, "big")
    p.ip_summed = CHECKSUM_PARTIAL
    p.csum_start = d + 54
    p.csum_offset = 16
    p.gso_size = mss
    p.gso_type = SKB_GSO_TCPV4 | SKB_GSO_IPXIP4
    return p


def test_ipip_segments_both_ip_headers() -> None:
    segs = seg(_ipip_packet(2500, 1000))
    for i, s in enumerate(segs):
        b = s.bytes()
        assert check_l4(b, 34)
        assert rfc1071(b[14:34]) == 0
        assert struct.unpack("!H", b[16:18])[0] == len(b) - 14
        assert struct.unpack("!H", b[18:20])[0] == 0x900 + i    # outer ID
        assert struct.unpack("!H", b[38:40])[0] == 0x700 + i    # inner ID
        assert s.inner_network_header - s.mac_header == 34      # skb_reset_inner_headers


def test_ipip_without_ipxip4_type_is_einval() -> None:
    p = _ipip_packet(2500, 1000)
    p.gso_type = SKB_GSO_TCPV4
    with pytest.raises(GsoError):
        seg(p)


def test_fou_ipip_tunnel_segments_with_ipproto_inner() -> None:
    """FOU carrying IPIP: UDP tunnel GSO dispatching on the inner IP protocol
    (ENCAP_TYPE_IPPROTO, as skb_set_inner_ipproto leaves it)."""
    from netstack.core.gso import SKB_GSO_IPXIP4, SKB_GSO_UDP_TUNNEL_CSUM
    from netstack.ipv4.ip_tunnel_core import skb_set_inner_ipproto
    from netstack.packet.checksum import pseudo_sum_v4
    inner = _ipip_packet(2500, 1000)
    ib = inner.bytes()[34:]                       # the IPIP payload: inner IPv4 + TCP
    uh = struct.pack("!HHHH", 40000, 5555, 8 + len(ib), 0)
    fr = eth(b"\2" * 6, b"\4" * 6, 0x0800) + ipv4(8 + len(ib), 17, ident=0x1111) + uh + ib
    from netstack.packet.skb import Packet
    p = Packet(fr)
    d = p.data
    p.mac_header, p.network_header, p.transport_header = d, d + 14, d + 34
    p.inner_mac_header = p.inner_network_header = d + 42
    p.inner_transport_header = d + 62
    p.encapsulation = True
    p.protocol = 0x0800
    skb_set_inner_ipproto(p, 4)
    p.buf[d + 40:d + 42] = pseudo_sum_v4(IP_A, IP_B, 8 + len(ib), 17).to_bytes(2, "big")
    p.ip_summed = CHECKSUM_PARTIAL
    p.csum_start = d + 62
    p.csum_offset = 16
    p.gso_size = 1000
    p.gso_type = SKB_GSO_TCPV4 | SKB_GSO_UDP_TUNNEL_CSUM | SKB_GSO_IPXIP4
    segs = seg(p)
    assert len(segs) == 3
    for s in segs:
        b = s.bytes()
        assert check_l4(b, 14) and check_l4(b, 42)
        assert struct.unpack("!H", b[38:40])[0] == len(b) - 34
