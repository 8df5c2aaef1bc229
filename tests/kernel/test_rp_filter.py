"""Reverse-path filtering, strict (1) versus loose (2).

fib_validate_source() (net/ipv4/fib_frontend.c, RFC 3704): strict mode
drops a packet whose source is not reachable back through the interface it
came in on; loose mode only drops a source with no route at all.  Dropped
packets vanish silently (no ICMP), counted as LINUX_MIB_IPRPFILTER.
"""

from __future__ import annotations

from .cases import (H1, H2, IP_H1, IP_H2, MAC_H1, MAC_H2, MAC_R1, MAC_R2, V1H, V2H, Case, eth_ip,
                    forwarded4, frames, script, udp4)
from .conftest import Kernel
from .oracle import Send

LEGIT = udp4(IP_H1, IP_H2, 44000, 7400, b"legit", ident=0xC001)
SPOOFED = udp4("10.0.2.77", IP_H2, 44001, 7401, b"spoofed: h2's subnet from h1's side", ident=0xC002)
UNROUTABLE = udp4("198.51.100.7", IP_H2, 44002, 7402, b"no route back", ident=0xC003)
SENDS = tuple(Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, p)) for p in (LEGIT, SPOOFED, UNROUTABLE))

STRICT = Case(name="rp_filter_strict", script=script("ipv4_router", "rp_filter_strict"), sends=SENDS)
LOOSE = Case(name="rp_filter_loose", script=script("ipv4_router", "rp_filter_loose"), sends=SENDS)


def check(res, passed: list[bytes]) -> None:
    assert frames(res, H1, V1H) == []
    assert frames(res, H2, V2H) == [forwarded4(p, MAC_R2, MAC_H2) for p in passed]


def test_rp_filter_strict_kernel(kernel: Kernel) -> None:
    check(kernel.run(STRICT), [LEGIT])


def test_rp_filter_strict_netstack_matches(kernel: Kernel) -> None:
    check(kernel.compare_netstack(STRICT), [LEGIT])


def test_rp_filter_loose_kernel(kernel: Kernel) -> None:
    check(kernel.run(LOOSE), [LEGIT, SPOOFED])


def test_rp_filter_loose_netstack_matches(kernel: Kernel) -> None:
    check(kernel.compare_netstack(LOOSE), [LEGIT, SPOOFED])
