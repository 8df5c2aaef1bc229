#!/usr/bin/env python3
"""Traffic for the macvlan-firewall example, and ``netstack run`` on it.

The containers' and the server's frames are injected, and their kernels answer what no
socket expects (ICMP port unreachable, nothing for a reset), which is part of the record:

1. c1 → srv:5000 UDP (accepted by rule, conntrack NEW); srv has no listener: its port
   unreachable goes back as RELATED (nf_conntrack_icmp_error / icmp_error_message).
2. srv:5000 → c1 UDP, the "reply" (ESTABLISHED); c1 answers with a port unreachable,
   RELATED again.
3. Two more c1 → srv:5000 datagrams: ESTABLISHED, accepted by the first rule.
4. A ping (accepted), a telnet SYN (answered by the router with a RST that looks as if
   srv sent it: nf_send_reset, net/ipv4/netfilter/nf_reject_ipv4.c), UDP to port 6000
   (ICMP 3/13 from the router: nf_send_unreach), UDP to port 7000 (dropped, counted).
5. c2 pings c1: macvlan bridge mode delivers it inside the host (macvlan_queue_xmit,
   drivers/net/macvlan.c), and c1's ARP broadcast for c2 reaches c2 and, through the
   uplink, the router; the router's capture never sees the unicast frames between them.
   c2's UDP to port 6000 is refused by the router like c1's.
"""
from __future__ import annotations

import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from examplelib.framegen import ETH_P_IP, Send, csum, echo4, eth, ip4, ipv4, udp4  # noqa: E402
from examplelib.runner import run_example  # noqa: E402

C1_MAC, C2_MAC, LAN_MAC = "02:00:00:00:01:01", "02:00:00:00:01:02", "02:00:00:00:01:fe"
SRV_MAC, DMZ_MAC = "02:00:00:00:02:02", "02:00:00:00:02:fe"
C1, C2, SRV = "10.20.0.1", "10.20.0.2", "10.30.0.2"


def tcp_syn(src: str, dst: str, sport: int, dport: int, seq: int, ident: int) -> bytes:
    """A bare SYN (RFC 9293 header, no options)."""
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 6, len(hdr))
    hdr = hdr[:16] + struct.pack("!H", csum(pseudo + hdr)) + hdr[18:]
    return ipv4(src, dst, 6, hdr, ident=ident)


def from_c1(pkt: bytes, delay: float = 0.0) -> Send:
    return Send("c1", "eth0", eth(LAN_MAC, C1_MAC, ETH_P_IP, pkt), delay)


SENDS = [
    from_c1(udp4(C1, SRV, 40000, 5000, b"request 1", ident=0x4001)),
    Send("srv", "eth0", eth(DMZ_MAC, SRV_MAC, ETH_P_IP,
                            udp4(SRV, C1, 5000, 40000, b"response 1", ident=0x5001)), 0.02),
    from_c1(udp4(C1, SRV, 40000, 5000, b"request 2", ident=0x4002), 0.02),
    from_c1(udp4(C1, SRV, 40000, 5000, b"request 3", ident=0x4003)),
    from_c1(echo4(C1, SRV, 0x6001, 1, b"ping through the filter", ident=0x4004)),
    from_c1(tcp_syn(C1, SRV, 40100, 23, 0x1000, ident=0x4005)),
    from_c1(udp4(C1, SRV, 40200, 6000, b"not allowed", ident=0x4006)),
    from_c1(udp4(C1, SRV, 40300, 7000, b"not allowed", ident=0x4007)),
    Send("c2", "eth0", eth(C1_MAC, C2_MAC, ETH_P_IP,
                           echo4(C2, C1, 0x6002, 1, b"neighbour container", ident=0x7001))),
    Send("c2", "eth0", eth(LAN_MAC, C2_MAC, ETH_P_IP,
                           udp4(C2, SRV, 40400, 6000, b"not allowed either", ident=0x7002))),
]
CAPTURES = [("c1", "eth0"), ("c2", "eth0"), ("r", "lan"), ("srv", "eth0")]
ORIGINATORS = [C1, C2, SRV, "10.20.0.254", "10.30.0.254"]

if __name__ == "__main__":
    sys.exit(run_example(HERE, SENDS, CAPTURES, sys.argv[1:]))
