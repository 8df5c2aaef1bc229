"""drop_unicast_in_l2_multicast: unicast IP carried in a broadcast frame.

ip_rcv_finish_core() (net/ipv4/ip_input.c) drops a unicast-routed packet
that arrived with pkt_type BROADCAST/MULTICAST when the knob is set
(RFC 1122 3.3.6).  With the knob clear the router still answers an echo
request addressed to itself, but ip_forward() never forwards a frame whose
pkt_type is not PACKET_HOST, so the datagram for h2 is dropped either way.
"""

from __future__ import annotations

import dpkt

from .cases import (H1, H2, IP_H1, IP_H2, IP_R1, MAC_BCAST, MAC_H1, V1H, V2H, Case, eth_ip, frames,
                    icmp4_echo, icmp4_of, script, udp4)
from .conftest import Kernel
from .oracle import Send

ROUTER = frozenset({"10.0.1.254", "10.0.2.254"})
ECHO = icmp4_echo(IP_H1, IP_R1, 0x0D0D, 1, b"in a broadcast frame", ident=0xD001)
TO_H2 = udp4(IP_H1, IP_H2, 45000, 7500, b"broadcast-framed unicast", ident=0xD002)
SENDS = (Send(H1, V1H, eth_ip(MAC_BCAST, MAC_H1, ECHO)),
         Send(H1, V1H, eth_ip(MAC_BCAST, MAC_H1, TO_H2)))
ON = Case(name="drop_l2mc_on", script=script("ipv4_router", "drop_l2mc_on"), sends=SENDS,
          ipv4_originators=ROUTER)
OFF = Case(name="drop_l2mc_off", script=script("ipv4_router", "drop_l2mc_off"), sends=SENDS,
           ipv4_originators=ROUTER)


def check_on(res) -> None:
    assert frames(res, H1, V1H) == [] and frames(res, H2, V2H) == []


def check_off(res) -> None:
    assert frames(res, H2, V2H) == []
    (f,) = frames(res, H1, V1H)
    _, icmp = icmp4_of(f)
    assert (icmp.type, icmp.data.id, icmp.data.data) == (dpkt.icmp.ICMP_ECHOREPLY, 0x0D0D,
                                                         b"in a broadcast frame")


def test_drop_unicast_in_l2_multicast_on_kernel(kernel: Kernel) -> None:
    check_on(kernel.run(ON))


def test_drop_unicast_in_l2_multicast_on_netstack_matches(kernel: Kernel) -> None:
    check_on(kernel.compare_netstack(ON))


def test_drop_unicast_in_l2_multicast_off_kernel(kernel: Kernel) -> None:
    check_off(kernel.run(OFF))


def test_drop_unicast_in_l2_multicast_off_netstack_matches(kernel: Kernel) -> None:
    check_off(kernel.compare_netstack(OFF))
