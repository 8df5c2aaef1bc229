#!/usr/bin/env python3
"""Traffic for the vxlan-overlay example, and ``netstack run`` on it.

vm1 pings vm2 across the overlay (the first frame floods through the bridge into the
tunnel's default remote; vm2 resolves vm1 with an ARP broadcast that crosses the tunnel
the other way), then sends two UDP datagrams of different flows: each VXLAN packet's outer
UDP source port is taken from the inner flow's hash (``udp_flow_src_port``,
include/net/udp.h), so the two flows may leave with different ports — a value the kernel
seeds per boot, which a comparison masks.  Captures: both VMs and both underlay ends.
"""
from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from examplelib.framegen import ETH_P_IP, Send, echo4, eth, udp4  # noqa: E402
from examplelib.runner import run_example  # noqa: E402

VM1_MAC, VM2_MAC = "02:00:00:00:a0:01", "02:00:00:00:a0:02"
VM1, VM2 = "192.168.100.1", "192.168.100.2"

SENDS = [
    Send("vm1", "eth0", eth(VM2_MAC, VM1_MAC, ETH_P_IP,
                            echo4(VM1, VM2, 0x5101, 1, b"across the overlay", ident=0x3001))),
    Send("vm1", "eth0", eth(VM2_MAC, VM1_MAC, ETH_P_IP,
                            echo4(VM1, VM2, 0x5101, 2, b"across the overlay", ident=0x3002)), 0.05),
    Send("vm1", "eth0", eth(VM2_MAC, VM1_MAC, ETH_P_IP,
                            udp4(VM1, VM2, 41000, 9, b"flow one", ident=0x3003))),
    Send("vm1", "eth0", eth(VM2_MAC, VM1_MAC, ETH_P_IP,
                            udp4(VM1, VM2, 41001, 9, b"flow two", ident=0x3004))),
]
CAPTURES = [("vm1", "eth0"), ("vm2", "eth0"), ("hv1", "u1"), ("hv2", "u2")]
ORIGINATORS = [VM1, VM2, "10.0.0.1", "10.0.0.2"]

if __name__ == "__main__":
    sys.exit(run_example(HERE, SENDS, CAPTURES, sys.argv[1:]))
