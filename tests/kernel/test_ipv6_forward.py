"""IPv6 forwarding through router r: forward, hop limit exceeded, too big.

Kernel paths: ip6_forward() (net/ipv6/ip6_output.c: hop limit check sends
ICMPV6_TIME_EXCEED, ip6_pkt_too_big() sends ICMPV6_PKT_TOOBIG with the egress
MTU) and icmp6_send() (net/ipv6/icmp.c: the error quotes as much of the
offending packet as fits in the IPv6 minimum MTU, RFC 4443 2.4(c)).
"""

from __future__ import annotations

import struct

from .cases import (H1, H2, IP6_H1, IP6_H2, MAC_H1, MAC_H2, MAC_R1, MAC_R2, V1H, V2H, Case,
                    eth_ip6, forwarded6, frames, icmp6_of, ip6, script, udp6)
from .conftest import Kernel
from .oracle import Send

OK = udp6(IP6_H1, IP6_H2, 40000, 7000, b"v6 hello", hlim=5)
HLIM1 = udp6(IP6_H1, IP6_H2, 40001, 7001, b"dying", hlim=1)
BIG = udp6(IP6_H1, IP6_H2, 40002, 7002, bytes(1400 - 48), hlim=64)
CASE = Case(
    name="ipv6_forward",
    script=script("ipv6_router"),
    sends=(Send(H1, V1H, eth_ip6(MAC_R1, MAC_H1, OK)),
           Send(H1, V1H, eth_ip6(MAC_R1, MAC_H1, HLIM1)),
           Send(H1, V1H, eth_ip6(MAC_R1, MAC_H1, BIG))),
    queries=("ip -n r -j -6 neigh show", "ip -n r -j -6 route show", "ip -n r -j -6 addr show"),
)


def check(res) -> None:
    assert len(BIG) == 1400
    assert frames(res, H2, V2H) == [forwarded6(OK, MAC_R2, MAC_H2)]
    got = frames(res, H1, V1H)
    assert len(got) == 2, got
    ip, icmp = icmp6_of(got[0])
    assert (icmp.type, icmp.code) == (3, 0)  # time exceeded, hop limit
    assert ip.src == ip6("2001:db8:1::fe") and ip.dst == ip6(IP6_H1) and ip.hlim == 64
    assert bytes(icmp.data)[4:] == HLIM1
    ip, icmp = icmp6_of(got[1])
    assert (icmp.type, icmp.code) == (2, 0)  # packet too big
    assert struct.unpack("!I", bytes(icmp.data)[:4])[0] == 1280
    assert ip.src == ip6("2001:db8:1::fe")
    assert len(ip) == 1280 and bytes(icmp.data)[4:] == BIG[: 1280 - 48]


def test_ipv6_forward_kernel(kernel: Kernel) -> None:
    check(kernel.run(CASE))


def test_ipv6_forward_netstack_matches(kernel: Kernel) -> None:
    check(kernel.compare_netstack(CASE))
