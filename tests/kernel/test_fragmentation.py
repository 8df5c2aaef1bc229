"""Forwarding a 1400-byte IPv4 datagram onto an MTU-1000 link.

DF clear: ip_do_fragment() (net/ipv4/ip_output.c, slow path) cuts the
payload into 8-byte aligned pieces of at most MTU - header = 976 bytes,
copying the (already TTL-decremented) header and keeping the IP ID.
DF set: ip_forward() sends ICMP fragmentation needed carrying the next-hop
MTU (RFC 1191) before touching the TTL.
"""

from __future__ import annotations

import struct

import dpkt

from .cases import (H1, H2, IP_H1, IP_H2, MAC_H1, MAC_H2, MAC_R1, MAC_R2, V1H, V2H, Case, decode,
                    eth_ip, frames, icmp4_of, script, udp4)
from .conftest import Kernel
from .oracle import Send

ROUTER = frozenset({"10.0.1.254", "10.0.2.254"})
PAYLOAD = bytes((i * 7) & 0xFF for i in range(1400 - 28))
NO_DF = udp4(IP_H1, IP_H2, 42000, 7200, PAYLOAD, ident=0xA1A1, ttl=33)
WITH_DF = udp4(IP_H1, IP_H2, 42001, 7201, PAYLOAD, ident=0xA2A2, ttl=33, df=True)
CASE = Case(
    name="ipv4_fragmentation",
    script=script("ipv4_router", "mtu1000"),
    sends=(Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, NO_DF)),
           Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, WITH_DF))),
    ipv4_originators=ROUTER,
)


def check(res) -> None:
    assert len(NO_DF) == 1400
    frags = frames(res, H2, V2H)
    assert len(frags) == 2
    ips = [decode(f).data for f in frags]
    for f in frags:
        e = decode(f)
        assert (e.src, e.dst) == (bytes.fromhex(MAC_R2.replace(":", "")),
                                  bytes.fromhex(MAC_H2.replace(":", "")))
    assert [ip._flags_offset for ip in ips] == [0x2000, 976 // 8]
    assert [ip.len for ip in ips] == [996, 20 + 1380 - 976]
    assert all(ip.id == 0xA1A1 and ip.ttl == 32 for ip in ips)
    assert frags[0][14 + 20:] + frags[1][14 + 20:] == NO_DF[20:]
    for ip in ips:  # header checksums valid
        assert dpkt.in_cksum(bytes(ip)[:20]) == 0
    (err,) = frames(res, H1, V1H)
    ip, icmp = icmp4_of(err)
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_UNREACH, dpkt.icmp.ICMP_UNREACH_NEEDFRAG)
    assert struct.unpack("!HH", bytes(icmp.data)[:4]) == (0, 1000)
    assert ip.src == bytes([10, 0, 1, 254])
    assert bytes(icmp.data)[4:] == WITH_DF[: 576 - 28]


def test_ipv4_fragmentation_kernel(kernel: Kernel) -> None:
    check(kernel.run(CASE))


def test_ipv4_fragmentation_netstack_matches(kernel: Kernel) -> None:
    check(kernel.compare_netstack(CASE))
