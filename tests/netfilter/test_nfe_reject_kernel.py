"""Kernel-differential traffic for ``reject`` in the netdev family (nft_reject_netdev.c,
which this 6.18 kernel has; nft_reject_bridge is absent, see test_nfe_reject_l2.py).

An ingress chain on the router's port toward h1 (``v1r`` of ipv4_router.sh /
ipv6_router.sh) rejects what h1 sends; the reply is built at layer 2 and leaves through
v1r again, so h1's veth sees it.  Frames seen by h1/h2 must match byte for byte and
``nft list ruleset`` exactly.  The kernel half is pinned first on what the kernel does."""
from __future__ import annotations

import dpkt

from test_ct_kernel import kernel_result, require_oracle, tcp4, to_h2
from test_scenarios_kernel import assert_same, both, nft, udp6_sends

from kernel.cases import (H1, IP_H1, IP_H2, MAC_BCAST, MAC_H1, V1H, eth_ip, script,
                          udp4)
from kernel.oracle import Send

ING = nft(
    "add table netdev n",
    "add chain netdev n ing { type filter hook ingress device \"v1r\" priority 0; }",
    "add rule netdev n ing udp dport 7000 counter reject",
    "add rule netdev n ing tcp dport 80 counter reject with tcp reset",
    "add rule netdev n ing udp dport 7002 counter reject with icmpx admin-prohibited",
    "add rule netdev n ing udp dport 7003 counter reject with icmp host-unreachable",
    "add rule netdev n ing tcp dport 81 counter reject with tcp reset",
)


def _bad_udp_csum(ip_pkt: bytes) -> bytes:
    b = bytearray(ip_pkt)
    b[20 + 6] ^= 0x5A
    return bytes(b)


SENDS = [
    to_h2(udp4(IP_H1, IP_H2, 40000, 7000, b"p1", ident=0x3001)),
    to_h2(tcp4(IP_H1, IP_H2, 40001, 80, 500, 0, 0x02, ident=0x3002)),
    to_h2(udp4(IP_H1, IP_H2, 40002, 7002, b"p3", ident=0x3003)),
    to_h2(udp4(IP_H1, IP_H2, 40003, 7003, b"p4", ident=0x3004)),
    # an ACK: the reset takes its sequence number from the ACK
    to_h2(tcp4(IP_H1, IP_H2, 40004, 80, 700, 12345, 0x10, b"data", ident=0x3005)),
    # a reset is never answered
    to_h2(tcp4(IP_H1, IP_H2, 40005, 81, 800, 0, 0x04, ident=0x3006)),
    # bad UDP checksum: dropped without answer
    to_h2(_bad_udp_csum(udp4(IP_H1, IP_H2, 40006, 7000, b"p7", ident=0x3007))),
    # broadcast destination MAC: dropped without answer
    Send(H1, V1H, eth_ip(MAC_BCAST, MAC_H1, udp4(IP_H1, IP_H2, 40007, 7000, b"p8",
                                                  ident=0x3008))),
]


def _replies(res) -> list[tuple[int, int, int]]:
    out = []
    for f in res.frames[(H1, V1H)]:
        ip = dpkt.ethernet.Ethernet(f).data
        if isinstance(ip, dpkt.ip.IP) and ip.p == 1:
            out.append((1, ip.data.type, ip.data.code))
        elif isinstance(ip, dpkt.ip.IP) and ip.p == 6:
            out.append((6, ip.data.flags, ip.data.seq))
    return out


def test_netdev_reject_kernel_half() -> None:
    require_oracle()
    k = kernel_result("nfe_netdev", script("ipv4_router") + ING, SENDS,
                      ["ip netns exec r nft list ruleset"])
    assert _replies(k) == [(1, 3, 3), (6, 0x14, 0), (1, 3, 13), (1, 3, 1),
                           (6, 0x04, 12345)], _replies(k)


def test_netdev_reject_matches_kernel() -> None:
    require_oracle()
    assert_same(*both("nfe_netdev", ING, SENDS))


ING6 = nft(
    "add table netdev n",
    "add chain netdev n ing { type filter hook ingress device \"v1r\" priority 0; }",
    "add rule netdev n ing udp dport 7000 reject",
    "add rule netdev n ing udp dport 7001 reject with icmpx admin-prohibited",
)


def test_netdev_reject_ipv6_matches_kernel() -> None:
    require_oracle()
    k, n = both("nfe_netdev6", ING6, udp6_sends(b"six"), base="ipv6_router")
    errs = [dpkt.ethernet.Ethernet(f).data for f in k.frames[(H1, V1H)]]
    errs = [ip.data for ip in errs if isinstance(ip, dpkt.ip6.IP6) and ip.nxt == 58
            and ip.data.type == 1]
    assert [(e.type, e.code) for e in errs] == [(1, 4), (1, 1)]
    assert_same(k, n)
