"""IPv4 forwarding through router r and the ICMP errors/replies it makes.

Kernel paths reproduced: ip_forward() (net/ipv4/ip_forward.c: TTL check,
ip_decrease_ttl, neighbour output), ip_error()/icmp_send() for an unroutable
destination (net/ipv4/route.c, net/ipv4/icmp.c), __udp4_lib_rcv() sending
port unreachable (net/ipv4/udp.c) and icmp_echo() (net/ipv4/icmp.c).
"""

from __future__ import annotations

import dpkt

from .cases import (H1, H2, IP_H1, IP_H2, IP_R1, MAC_H1, MAC_H2, MAC_R1, MAC_R2, V1H, V2H,
                    Case, eth_ip, forwarded4, frames, icmp4_echo, icmp4_of, script, udp4)
from .conftest import Kernel
from .oracle import Send

ROUTER = frozenset({"10.0.1.254", "10.0.2.254"})

# --- plain forwarding in both directions ----------------------------------

FWD_12 = udp4(IP_H1, IP_H2, 40000, 7000, b"hello from h1", ident=0x1111)
FWD_21 = udp4(IP_H2, IP_H1, 7000, 40000, b"reply from h2", ident=0x2222, ttl=3, df=True)
FORWARD = Case(
    name="ipv4_forward",
    script=script("ipv4_router"),
    sends=(Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, FWD_12)),
           Send(H2, V2H, eth_ip(MAC_R2, MAC_H2, FWD_21))),
    queries=("ip -n r -j neigh show", "ip -n r -j route show", "ip -n r -j addr show"),
    ipv4_originators=ROUTER,
)


def check_forward(res) -> None:
    assert frames(res, H2, V2H) == [forwarded4(FWD_12, MAC_R2, MAC_H2)]
    assert frames(res, H1, V1H) == [forwarded4(FWD_21, MAC_R1, MAC_H1)]


def test_ipv4_forward_kernel(kernel: Kernel) -> None:
    check_forward(kernel.run(FORWARD))


def test_ipv4_forward_netstack_matches(kernel: Kernel) -> None:
    check_forward(kernel.compare_netstack(FORWARD))


# --- TTL 1 -> time exceeded -------------------------------------------------

TTL1 = udp4(IP_H1, IP_H2, 40001, 7001, b"x" * 32, ttl=1, ident=0x3333)
TTL = Case(
    name="ipv4_ttl_exceeded",
    script=script("ipv4_router"),
    sends=(Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, TTL1)),),
    ipv4_originators=ROUTER,
)


def check_ttl(res) -> None:
    assert frames(res, H2, V2H) == []
    (f,) = frames(res, H1, V1H)
    ip, icmp = icmp4_of(f)
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_TIMEXCEED, 0)
    assert ip.src == bytes([10, 0, 1, 254]) and ip.dst == bytes([10, 0, 1, 1])
    # RFC 792: the quoted datagram is the one received, TTL 1 and all.
    assert bytes(icmp.data)[4:] == TTL1


def test_ipv4_ttl_exceeded_kernel(kernel: Kernel) -> None:
    check_ttl(kernel.run(TTL))


def test_ipv4_ttl_exceeded_netstack_matches(kernel: Kernel) -> None:
    check_ttl(kernel.compare_netstack(TTL))


# --- no route -> net unreachable --------------------------------------------

NOROUTE_PKT = udp4(IP_H1, "192.0.2.9", 40002, 7002, b"nowhere", ident=0x4444)
NOROUTE = Case(
    name="ipv4_no_route",
    script=script("ipv4_router"),
    sends=(Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, NOROUTE_PKT)),),
    ipv4_originators=ROUTER,
)


def check_noroute(res) -> None:
    assert frames(res, H2, V2H) == []
    (f,) = frames(res, H1, V1H)
    ip, icmp = icmp4_of(f)
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_UNREACH, dpkt.icmp.ICMP_UNREACH_NET)
    assert ip.src == bytes([10, 0, 1, 254])
    assert bytes(icmp.data)[4:] == NOROUTE_PKT


def test_ipv4_no_route_kernel(kernel: Kernel) -> None:
    check_noroute(kernel.run(NOROUTE))


def test_ipv4_no_route_netstack_matches(kernel: Kernel) -> None:
    check_noroute(kernel.compare_netstack(NOROUTE))


# --- UDP to a closed port on the router -> port unreachable -----------------

CLOSED_PKT = udp4(IP_H1, IP_R1, 40003, 9, b"discard?" * 100, ident=0x5555)
CLOSED = Case(
    name="ipv4_port_unreachable",
    script=script("ipv4_router"),
    sends=(Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, CLOSED_PKT)),),
    ipv4_originators=ROUTER,
)


def check_closed(res) -> None:
    assert frames(res, H2, V2H) == []
    (f,) = frames(res, H1, V1H)
    ip, icmp = icmp4_of(f)
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_UNREACH, dpkt.icmp.ICMP_UNREACH_PORT)
    assert ip.src == bytes([10, 0, 1, 254])
    # icmp_send() quotes at most 576 - 20 - 8 bytes of the offending datagram.
    assert len(ip) == 576
    assert bytes(icmp.data)[4:] == CLOSED_PKT[: 576 - 28]


def test_ipv4_port_unreachable_kernel(kernel: Kernel) -> None:
    check_closed(kernel.run(CLOSED))


def test_ipv4_port_unreachable_netstack_matches(kernel: Kernel) -> None:
    check_closed(kernel.compare_netstack(CLOSED))


# --- echo request to the router ---------------------------------------------

ECHO_PKT = icmp4_echo(IP_H1, IP_R1, 0xBEEF, 7, bytes(range(56)), ident=0x6666)
ECHO = Case(
    name="ipv4_echo_reply",
    script=script("ipv4_router"),
    sends=(Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, ECHO_PKT)),),
    ipv4_originators=ROUTER,
)


def check_echo(res) -> None:
    assert frames(res, H2, V2H) == []
    (f,) = frames(res, H1, V1H)
    ip, icmp = icmp4_of(f)
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_ECHOREPLY, 0)
    assert (ip.src, ip.dst, ip.ttl) == (bytes([10, 0, 1, 254]), bytes([10, 0, 1, 1]), 64)
    assert (icmp.data.id, icmp.data.seq, icmp.data.data) == (0xBEEF, 7, bytes(range(56)))


def test_ipv4_echo_reply_kernel(kernel: Kernel) -> None:
    check_echo(kernel.run(ECHO))


def test_ipv4_echo_reply_netstack_matches(kernel: Kernel) -> None:
    check_echo(kernel.compare_netstack(ECHO))
