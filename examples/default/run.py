#!/usr/bin/env python3
"""`make run`: generate a little traffic on the fly and push it through the default scenario.

Writes ``out/default/h1-tx.pcap`` (what host h1 sends: UDP to a closed port, a ping, a
TTL-1 datagram, an IPv6 ping), then runs

    netstack run examples/default/setup.sh --inject h1:eth0=out/default/h1-tx.pcap \
        --capture h1:eth0=out/default/h1-rx.pcap --capture h2:eth0=out/default/h2-rx.pcap \
        --then examples/default/then.sh --trace --trace-limit 60

which prints each packet's path, the router's state after the traffic, and the summary.
The two capture files open in Wireshark/tshark.
"""
from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from netstack.cli.main import main  # noqa: E402
from netstack.packet.ethernet import build_ethernet  # noqa: E402
from netstack.packet.icmp import build_icmp_echo  # noqa: E402
from netstack.packet.icmpv6 import build_icmpv6  # noqa: E402
from netstack.packet.ipv4 import build_ipv4  # noqa: E402
from netstack.packet.ipv6 import build_ipv6  # noqa: E402
from netstack.packet.pcap import PcapWriter  # noqa: E402
from netstack.packet.udp import build_udp  # noqa: E402

H1_MAC = bytes.fromhex("020000000101")
R_H1_MAC = bytes.fromhex("0200000001fe")
H1 = bytes([10, 0, 1, 1])
H2 = bytes([10, 0, 2, 2])
H1_6 = bytes.fromhex("20010db8000100000000000000000001")
H2_6 = bytes.fromhex("20010db8000200000000000000000002")


def frames() -> list[tuple[int, bytes]]:
    """(timestamp ns, frame) pairs of what h1 sends."""
    out = []
    t = 1_000_000_000
    for i in range(3):  # UDP to a closed port on h2 -> ICMP port unreachable
        udp = build_udp(40000 + i, 9, b"hello netstack", src=H1, dst=H2)
        out.append((t, build_ethernet(R_H1_MAC, H1_MAC, 0x0800, build_ipv4(H1, H2, 17, udp, id=100 + i))))
    t += 10_000_000
    echo = build_icmp_echo(0x1234, 1, b"ping from h1")
    out.append((t, build_ethernet(R_H1_MAC, H1_MAC, 0x0800, build_ipv4(H1, H2, 1, echo, id=200))))
    t += 10_000_000
    udp = build_udp(40100, 33434, b"traceroute", src=H1, dst=H2)
    out.append((t, build_ethernet(R_H1_MAC, H1_MAC, 0x0800, build_ipv4(H1, H2, 17, udp, ttl=1, id=300))))
    t += 10_000_000
    body = (0x1234).to_bytes(2, "big") + (1).to_bytes(2, "big") + b"ping6 from h1"
    icmp6 = build_icmpv6(128, 0, body, H1_6, H2_6)
    out.append((t, build_ethernet(R_H1_MAC, H1_MAC, 0x86DD, build_ipv6(H1_6, H2_6, 58, icmp6))))
    return out


def run() -> int:
    outdir = os.path.join(ROOT, "out", "default")
    os.makedirs(outdir, exist_ok=True)
    tx = os.path.join(outdir, "h1-tx.pcap")
    with PcapWriter(tx) as w:
        for ts, f in frames():
            w.write(f, ts)
    argv = ["run", os.path.join(HERE, "setup.sh"),
            "--inject", f"h1:eth0={tx}",
            "--capture", f"h1:eth0={os.path.join(outdir, 'h1-rx.pcap')}",
            "--capture", f"h2:eth0={os.path.join(outdir, 'h2-rx.pcap')}",
            "--then", os.path.join(HERE, "then.sh"), "--trace", "--trace-limit", "60"]
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
