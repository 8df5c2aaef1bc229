#!/usr/bin/env python3
"""Traffic for the bridge-nat example, and ``netstack run`` on it.

``SENDS`` is what the hosts transmit (injected raw, as ``tcpreplay`` would), ``CAPTURES``
where frames are recorded, ``ORIGINATORS`` the addresses whose own IPv4 packets carry a
kernel-chosen IP ID (``ip_select_ident``, net/ipv4/route.c) that a comparison must mask.
tests/kernel/test_examples.py plays exactly these on the kernel and on netstack.

Running this file writes one pcap per injecting device to ``out/bridge-nat/`` and runs

    netstack run examples/bridge-nat/setup.sh --inject h1:eth0=out/bridge-nat/h1-eth0.pcap \
        --inject h2:eth0=out/bridge-nat/h2-eth0.pcap --capture h1:eth0=… --capture h2:eth0=… \
        --capture srv:eth0=… --then examples/bridge-nat/then.sh --trace
"""
from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from examplelib.framegen import ETH_P_IP, Send, echo4, eth, udp4  # noqa: E402
from examplelib.runner import run_example  # noqa: E402

H1_MAC, H2_MAC, R_LAN_MAC = "02:00:00:00:01:01", "02:00:00:00:01:02", "02:00:00:00:01:fe"
H1, H2, SRV = "10.10.0.1", "10.10.0.2", "203.0.113.2"

SENDS = [
    # h1 pings the server on the WAN: bridged to r, masqueraded to 203.0.113.1, answered
    # by srv (which ARPs for the router first), de-masqueraded back to h1.
    Send("h1", "eth0", eth(R_LAN_MAC, H1_MAC, ETH_P_IP,
                           echo4(H1, SRV, 0x4101, 1, b"h1 to srv", ident=0x1001))),
    # UDP to a closed port on srv: the port unreachable comes back through NAT as a
    # RELATED packet, with the quoted header translated back to h1's address and port.
    Send("h1", "eth0", eth(R_LAN_MAC, H1_MAC, ETH_P_IP,
                           udp4(H1, SRV, 40001, 9, b"discard?", ident=0x1002))),
    # h2 talks to h1 on the LAN: the switch filters UDP port 7, lets the ping through;
    # h1 answers after resolving h2 with ARP (broadcast, flooded by the bridge).
    Send("h2", "eth0", eth(H1_MAC, H2_MAC, ETH_P_IP,
                           udp4(H2, H1, 40002, 7, b"echo me", ident=0x2001))),
    Send("h2", "eth0", eth(H1_MAC, H2_MAC, ETH_P_IP,
                           echo4(H2, H1, 0x4202, 1, b"h2 to h1", ident=0x2002))),
    # A second ping from h1 a little later: every MAC is learned now, no flooding.
    Send("h1", "eth0", eth(R_LAN_MAC, H1_MAC, ETH_P_IP,
                           echo4(H1, SRV, 0x4101, 2, b"h1 to srv", ident=0x1003)), 0.05),
]
CAPTURES = [("h1", "eth0"), ("h2", "eth0"), ("srv", "eth0")]
ORIGINATORS = [H1, H2, SRV]

if __name__ == "__main__":
    sys.exit(run_example(HERE, SENDS, CAPTURES, sys.argv[1:]))
