"""Checksum states (include/linux/skbuff.h "DOC: skb checksums"): TX help and offload
decisions, UDP zero-checksum rules, LCO, SCTP CRC32c, receive validation with csum_level,
conversion, remote checksum offload, and the nested IPv6→UDP→GRE→IPv4→TCP packet."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core import skb_csum as C
from netstack.packet.checksum import csum_partial, pseudo_sum_v4
from netstack.packet.crc32c import sctp_verify
from netstack.packet.skb import (CHECKSUM_COMPLETE, CHECKSUM_NONE, CHECKSUM_PARTIAL,
                                 CHECKSUM_UNNECESSARY, Packet)

from .pktbuild import (IP6_A, IP6_B, IP_A, IP_B, check_l4, ipv4, ipv6, pseudo4, pseudo6, rfc1071,
                       tcp, udp)

PAY = bytes((i * 17 + 1) & 0xFF for i in range(5000))


def test_rfc1071_vector() -> None:
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert csum_partial(data) == 0xDDF2
    assert rfc1071(data) == 0x220D


def _udp4_partial(payload: bytes) -> Packet:
    d = udp(1, 2, payload, None)
    p = Packet(ipv4(len(d), 17) + d)
    p.network_header = p.data
    p.transport_header = p.data + 20
    p.protocol = 0x0800
    C.udp_set_csum(False, p, IP_A, IP_B, len(d))
    return p


def test_checksum_help_fills_partial_and_mangles_zero() -> None:
    p = _udp4_partial(PAY[:333])
    assert p.ip_summed == CHECKSUM_PARTIAL and p.csum_offset == 6
    assert C.skb_checksum_help(p) == 0 and p.ip_summed == CHECKSUM_NONE
    assert check_l4(p.bytes(), 0)
    # a datagram whose checksum computes to 0 goes out as 0xffff (CSUM_MANGLED_0)
    for x in range(65536):
        pl = struct.pack("!H", x) + PAY[:10]
        q = _udp4_partial(pl)
        C.skb_checksum_help(q)
        if q.bytes()[26:28] == b"\xff\xff":
            assert rfc1071(pseudo4(IP_A, IP_B, 17, 8 + len(pl)) + q.bytes()[20:]) == 0
            break
    else:
        pytest.fail("no zero-checksum datagram found")


def test_checksum_help_refuses_gso_and_bad_offsets_and_completes_complete() -> None:
    p = _udp4_partial(PAY[:100])
    p.gso_size = 50
    assert C.skb_checksum_help(p) < 0 and p.ip_summed == CHECKSUM_PARTIAL
    p = _udp4_partial(PAY[:100])
    p.csum_offset = 200
    assert C.skb_checksum_help(p) < 0
    p.ip_summed = CHECKSUM_COMPLETE
    assert C.skb_checksum_help(p) == 0 and p.ip_summed == CHECKSUM_NONE


def test_hwoffload_help_decisions() -> None:
    p = _udp4_partial(PAY[:100])
    assert C.skb_csum_hwoffload_help(p, {"tx-checksum-ipv4"}) == 0
    assert p.ip_summed == CHECKSUM_PARTIAL            # left to the device
    p.csum_offset = 4                                 # not TCP/UDP: IP_CSUM cannot
    assert not C.csum_features_ok(p, {"tx-checksum-ipv4"})
    assert C.csum_features_ok(p, {"tx-checksum-ip-generic"})
    # IPv6 with an extension header: IPV6_CSUM falls back to software
    q = Packet(bytes(48) + udp(1, 2, PAY[:40], None))
    q.protocol = 0x86DD
    q.network_header = q.data
    q.transport_header = q.data + 48
    q.ip_summed = CHECKSUM_PARTIAL
    q.csum_start = q.transport_header
    q.csum_offset = 6
    assert not C.csum_features_ok(q, {"tx-checksum-ipv6"})


def test_sctp_crc32c_is_the_non_inet_checksum() -> None:
    sctp = struct.pack("!HHII", 5000, 6000, 0x11223344, 0) + bytes(range(40))

    def fresh() -> Packet:
        p = Packet(ipv4(len(sctp), 132) + sctp)
        p.ip_summed = CHECKSUM_PARTIAL
        p.csum_start = p.data + 20
        p.csum_offset = 8
        p.csum_not_inet = True
        return p
    p = fresh()
    assert C.skb_csum_hwoffload_help(p, {"tx-checksum-sctp"}) == 0
    assert p.ip_summed == CHECKSUM_PARTIAL             # left to a device with SCTP_CRC
    p = fresh()
    # HW_CSUM is the inet checksum: it does not cover CRC32c, software does it
    assert C.skb_csum_hwoffload_help(p, {"tx-checksum-ip-generic"}) == 0
    assert p.ip_summed == CHECKSUM_NONE and not p.csum_not_inet
    assert sctp_verify(p.bytes(), 20)


def test_udp_set_csum_branches_and_lco_equals_recompute() -> None:
    inner = tcp(1, 2, 3, 4, 0x18, PAY[:700], pseudo4(IP_A, IP_B, 6, 720))
    ips = ipv4(len(inner), 6) + inner
    outer_len = 8 + len(ips)
    p = Packet(struct.pack("!HHHH", 7, 8, outer_len, 0) + ips)
    p.transport_header = p.data
    C.udp_set_csum(True, p, IP_A, IP_B, outer_len)
    assert p.bytes()[6:8] == b"\0\0"                    # nocheck
    p.gso_size = 100
    C.udp_set_csum(False, p, IP_A, IP_B, outer_len)
    assert int.from_bytes(p.bytes()[6:8], "big") == pseudo_sum_v4(IP_A, IP_B, outer_len, 17)
    p.gso_size = 0
    # inner PARTIAL (the TCP field holds its pseudo sum): outer by LCO
    it = p.data + 8 + 20
    p.buf[it + 16:it + 18] = pseudo_sum_v4(IP_A, IP_B, len(inner), 6).to_bytes(2, "big")
    p.ip_summed = CHECKSUM_PARTIAL
    p.csum_start = it
    p.csum_offset = 16
    C.udp_set_csum(False, p, IP_A, IP_B, outer_len)
    assert p.ip_summed == CHECKSUM_PARTIAL and p.csum_start == it   # one PARTIAL: inner
    C.skb_checksum_help(p)                              # the device fills the inner
    wire = p.bytes()
    assert rfc1071(pseudo4(IP_A, IP_B, 17, outer_len) + wire) == 0   # LCO == recompute
    assert check_l4(wire[8:], 0)


def test_udp6_zero_checksum_rules() -> None:
    d = udp(1, 2, PAY[:50], None)
    p = Packet(ipv6(len(d), 17) + d)
    p.network_header = p.data
    p.transport_header = p.data + 40
    p.data = p.transport_header
    # IPv4 accepts a zero checksum as "none" (init_zero_check), IPv6 does not
    assert C.skb_checksum_init_zero_check(p, 17, 0, C.ip6_compute_pseudo) == 0
    p.csum_valid = False
    p.ip_summed = CHECKSUM_NONE
    assert C.skb_checksum_validate(p, 17, C.ip6_compute_pseudo) != 0


def _nested() -> tuple[Packet, int]:
    """IPv6 → UDP → GRE → IPv4 → TCP, all checksums valid; returns the packet with data
    at the UDP header and the offset of the inner IPv4 header from it."""
    tcp_seg = tcp(1000, 80, 1, 1, 0x18, PAY[:500], pseudo4(IP_A, IP_B, 6, 520))
    inner = ipv4(len(tcp_seg), 6) + tcp_seg
    gre = struct.pack("!HHHH", 0x8000, 0x0800, 0, 0) + inner
    c = rfc1071(gre)
    gre = gre[:4] + struct.pack("!H", c) + gre[6:]
    u = udp(4754, 4754, gre, pseudo6(IP6_A, IP6_B, 17, 8 + len(gre)))
    p = Packet(ipv6(len(u), 17) + u)
    p.network_header = p.data
    p.data += 40
    p.transport_header = p.data
    return p, 8 + 8


def test_nested_csum_level_consumed_layer_by_layer() -> None:
    p, _ = _nested()
    p.ip_summed = CHECKSUM_UNNECESSARY
    p.csum_level = 2          # UDP, GRE and TCP verified by the device
    check = int.from_bytes(p.bytes()[6:8], "big")
    assert C.skb_checksum_init_zero_check(p, 17, check, C.ip6_compute_pseudo) == 0
    assert (p.ip_summed, p.csum_level) == (CHECKSUM_UNNECESSARY, 1)
    C.skb_pull_rcsum(p, 8)
    assert C.skb_checksum_simple_validate(p) == 0                        # GRE
    assert (p.ip_summed, p.csum_level) == (CHECKSUM_UNNECESSARY, 0)
    C.skb_pull_rcsum(p, 8)
    p.network_header = p.data
    C.skb_pull_rcsum(p, 20)
    assert C.skb_checksum_validate(p, 6, C.inet_compute_pseudo) == 0     # TCP
    assert p.ip_summed == CHECKSUM_NONE and p.csum_valid


def test_nested_convert_then_inner_validates_from_csum_alone() -> None:
    p, _ = _nested()
    p.ip_summed = CHECKSUM_UNNECESSARY
    p.csum_level = 0          # only the outer UDP checksum verified by the device
    check = int.from_bytes(p.bytes()[6:8], "big")
    assert C.skb_checksum_init_zero_check(p, 17, check, C.ip6_compute_pseudo) == 0
    assert p.ip_summed == CHECKSUM_NONE and p.csum_valid
    C.skb_checksum_try_convert(p, 17, C.ip6_compute_pseudo)
    assert p.ip_summed == CHECKSUM_COMPLETE
    assert p.csum == csum_partial(p.bytes())            # exactly the bytes' sum
    C.skb_pull_rcsum(p, 8)
    assert C.skb_checksum_simple_validate(p) == 0       # GRE from csum
    C.skb_pull_rcsum(p, 8)
    p.network_header = p.data
    C.skb_pull_rcsum(p, 20)
    assert C.skb_checksum_validate(p, 6, C.inet_compute_pseudo) == 0
    assert not p.__dict__.get("csum_complete_sw")       # no software pass happened


def test_nested_complete_with_corrupted_byte_fails_and_is_not_fixed() -> None:
    p, _ = _nested()
    p.buf[p.tail - 1] ^= 0x40
    before = p.bytes()
    p.ip_summed = CHECKSUM_COMPLETE
    p.csum = csum_partial(p.bytes())                    # what a NIC reports
    check = int.from_bytes(p.bytes()[6:8], "big")
    assert C.skb_checksum_init_zero_check(p, 17, check, C.ip6_compute_pseudo) == 0
    assert not p.csum_valid                             # deferred: bad sum known
    assert C.skb_checksum_complete(p) != 0
    assert p.bytes() == before                          # never "fixed"


def test_short_packets_are_checked_at_once_long_ones_deferred() -> None:
    for n, deferred in ((40, False), (200, True)):
        d = udp(1, 2, PAY[:n], pseudo4(IP_A, IP_B, 17, 8 + n))
        p = Packet(ipv4(len(d), 17) + d)
        p.network_header = p.data
        p.data += 20
        p.buf[p.tail - 1] ^= 1
        r = C.skb_checksum_init(p, 17, C.inet_compute_pseudo)
        assert (r == 0) == deferred
        if deferred:
            assert C.skb_checksum_complete(p) != 0


@settings(max_examples=80, deadline=None)
@given(data=st.binary(min_size=1, max_size=300), k=st.integers(0, 299), t=st.integers(0, 299))
def test_property_postpull_and_trim_keep_complete_exact(data, k, t) -> None:
    p = Packet(data)
    p.ip_summed = CHECKSUM_COMPLETE
    p.csum = csum_partial(data)
    k = k % (len(data) + 1)
    k -= k & 1
    C.skb_pull_rcsum(p, k)
    assert p.csum % 0xFFFF == csum_partial(p.bytes()) % 0xFFFF
    t = t % (len(p) + 1)
    C.pskb_trim_rcsum(p, t)
    assert p.csum % 0xFFFF == csum_partial(p.bytes()) % 0xFFFF


@pytest.mark.parametrize("nopartial", [True, False])
def test_remcsum_restore_equals_full_recompute(nopartial) -> None:
    seg = tcp(1, 2, 3, 4, 0x18, PAY[:900], pseudo4(IP_A, IP_B, 6, 920))
    want = ipv4(len(seg), 6) + seg
    sent = bytearray(want)
    # the sender left the pseudo-header sum in the TCP field (RCO TX)
    sent[20 + 16:20 + 18] = pseudo_sum_v4(IP_A, IP_B, len(seg), 6).to_bytes(2, "big")
    p = Packet(bytes(sent))
    p.ip_summed = CHECKSUM_COMPLETE
    p.csum = csum_partial(bytes(sent))
    C.skb_remcsum_process(p, p.data, 20, 20 + 16, nopartial)
    if nopartial:
        assert p.bytes() == want
        assert p.csum % 0xFFFF == csum_partial(want) % 0xFFFF
    else:
        assert p.ip_summed == CHECKSUM_PARTIAL and p.csum_start == p.data + 20
        assert C.skb_checksum_help(p) == 0 and p.bytes() == want
    q = Packet(bytes(sent))   # no device sum: computed first, same result
    C.skb_remcsum_process(q, q.data, 20, 36, True)
    assert q.bytes() == want
