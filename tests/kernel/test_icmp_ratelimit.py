"""ICMP error rate limiting on the router (net/ipv4/icmp.c).

icmpv4_xrlim_allow(): types in net.ipv4.icmp_ratemask go through the
per-destination token bucket of inet_peer_xrlim_allow() (net/ipv4/inetpeer.c:
icmp_ratelimit = 1 s per token, burst XRLIM_BURST_FACTOR = 6, a new peer
starts full) and the per-netns icmp_global_allow(); with the mask at 0 no
type is limited.  20 back-to-back TTL-1 datagrams therefore give 6 time
exceeded messages with the default mask and 20 with mask 0.
"""

from __future__ import annotations

import dpkt

from .cases import H1, H2, IP_H1, IP_H2, MAC_H1, MAC_R1, V1H, V2H, Case, eth_ip, frames, icmp4_of, script, udp4
from .conftest import Kernel
from .oracle import Send

ROUTER = frozenset({"10.0.1.254", "10.0.2.254"})
PKTS = [udp4(IP_H1, IP_H2, 41000 + i, 7100, b"ttl1 #%d" % i, ttl=1, ident=0x7000 + i)
        for i in range(20)]
SENDS = tuple(Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, p)) for p in PKTS)

DEFAULT_MASK = Case(name="icmp_ratemask_default", script=script("ipv4_router", "ratemask_default"),
                    sends=SENDS, ipv4_originators=ROUTER)
ZERO_MASK = Case(name="icmp_ratemask_zero", script=script("ipv4_router"),
                 sends=SENDS, ipv4_originators=ROUTER)


def check(res, expected: int) -> None:
    assert frames(res, H2, V2H) == []
    got = frames(res, H1, V1H)
    assert len(got) == expected, [len(got)]
    for i, f in enumerate(got):
        _, icmp = icmp4_of(f)
        assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_TIMEXCEED, 0)
        # The first `expected` datagrams are the ones answered, in order.
        assert bytes(icmp.data)[4:] == PKTS[i]


def test_icmp_ratemask_default_kernel(kernel: Kernel) -> None:
    check(kernel.run(DEFAULT_MASK), 6)


def test_icmp_ratemask_default_netstack_matches(kernel: Kernel) -> None:
    check(kernel.compare_netstack(DEFAULT_MASK), 6)


def test_icmp_ratemask_zero_kernel(kernel: Kernel) -> None:
    check(kernel.run(ZERO_MASK), 20)


def test_icmp_ratemask_zero_netstack_matches(kernel: Kernel) -> None:
    check(kernel.compare_netstack(ZERO_MASK), 20)
