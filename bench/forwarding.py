#!/usr/bin/env python3
"""Forwarding benchmark: UDP through a router namespace, against dpkt's parse speed.

What is measured (all in one run, same machine, same pcap):

* ``dpkt``: read the pcap with dpkt and parse every frame down to UDP
  (Ethernet → IPv4 → UDP objects) — the baseline the foundation issue names.
* ``netstack``: replay the same pcap into ``h1:eth0`` (veth in, IPv4 receive with the route
  hint, forward with TTL decrement and incremental checksum, neighbour output, veth out) and
  capture what ``h2:eth0`` receives into a pcap file — trace off.
* route lookups per packet with batches of 64 and with batches of 1, doorbells per packet.
* peak memory (max RSS) of a 1 M-packet streamed replay, in a child process (``--memory``).

Times are CPU seconds of this process (``time.process_time``), and dpkt and netstack run
alternately ``--rounds`` times with the medians reported, so load from other processes on
the machine does not decide the ratio.

Usage: ``python bench/forwarding.py [--packets N] [--rounds R] [--memory] [--json]``.  Results are recorded
in docs/performance.md.  This is a benchmark, not a test: nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from netstack.api import Stack  # noqa: E402
from netstack.core.dev import dev_queue_xmit_list  # noqa: E402
from netstack.packet.ethernet import build_ethernet  # noqa: E402
from netstack.packet.ipv4 import build_ipv4  # noqa: E402
from netstack.packet.pcap import PcapWriter, open_capture  # noqa: E402
from netstack.packet.udp import build_udp  # noqa: E402

SETUP = """
ip netns add h1
ip netns add r
ip netns add h2
ip -n h1 link add eth0 address 02:00:00:00:01:01 type veth peer name r-h1 netns r address 02:00:00:00:01:fe
ip -n h2 link add eth0 address 02:00:00:00:02:02 type veth peer name r-h2 netns r address 02:00:00:00:02:fe
ip netns exec r sysctl -q -w net.ipv4.ip_forward=1
ip -n r addr add 10.0.1.254/24 dev r-h1
ip -n r addr add 10.0.2.254/24 dev r-h2
ip -n r neigh add 10.0.2.2 lladdr 02:00:00:00:02:02 dev r-h2 nud permanent
ip -n r link set r-h1 up
ip -n r link set r-h2 up
ip -n h1 link set eth0 up
ip -n h2 link set eth0 up
"""
#: CPU time of this process, not wall time: both contestants are single-threaded and
#: CPU-bound, and on a shared 2-core machine wall time mostly measures the neighbours.
CLOCK = time.process_time
H1_MAC = bytes.fromhex("020000000101")
R_MAC = bytes.fromhex("0200000001fe")
SRC = bytes([10, 0, 1, 1])
DST = bytes([10, 0, 2, 2])


def make_pcap(path: str, n: int, flows: int = 16, same_ts: int = 64) -> None:
    """n UDP frames, ``flows`` source ports round-robin, ``same_ts`` frames per timestamp."""
    templates = []
    for f in range(flows):
        udp = build_udp(10000 + f, 9, bytes(18), src=SRC, dst=DST)
        templates.append(build_ethernet(R_MAC, H1_MAC, 0x0800, build_ipv4(SRC, DST, 17, udp, id=f)))
    with PcapWriter(path) as w:
        for i in range(n):
            w.write(templates[i % flows], 1_000_000_000 + (i // same_ts) * 1000)


def bench_dpkt(path: str) -> tuple[int, float]:
    import dpkt
    t0 = CLOCK()
    n = 0
    with open(path, "rb") as f:
        for _ts, buf in dpkt.pcap.Reader(f):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            udp = ip.data
            n += udp.dport > 0
    return n, CLOCK() - t0


def replay(path: str, capture_path: str | None, batch: int) -> dict:
    """Stream the pcap into h1:eth0 in batches of frames sharing a timestamp (≤ batch)."""
    st = Stack()
    st.run_script(SETUP, name="bench-setup")
    w = st.world
    h1 = w.netns("h1").get("eth0")
    h2net = w.netns("h2")
    h2 = h2net.get("eth0")
    r = w.netns("r")
    # got[0]: IPv4 frames h2 received (the forwarded ones); got[1]: every frame captured,
    # which also includes the router's own traffic (e.g. the IPv6 DAD probe r-h2 sends
    # when it comes up).
    got = [0, 0]
    writer = PcapWriter(capture_path) if capture_path else None
    clock = w.clock
    if writer is not None:
        def tap(pkt) -> None:  # type: ignore[no-untyped-def]
            writer.write(pkt.buf[pkt.mac_header:pkt.tail], clock.now)
            got[1] += 1
            if pkt.protocol == 0x0800:
                got[0] += 1
    else:
        def tap(pkt) -> None:  # type: ignore[no-untyped-def]
            got[1] += 1
            if pkt.protocol == 0x0800:
                got[0] += 1
    h2net.add_rx_tap(h2, tap)
    new_packet = w.new_packet
    t0 = CLOCK()
    n = 0
    pending: list = []
    pending_ts = -1
    with open_capture(path) as rd:
        for fr in rd:
            if pending and (fr.ts_ns != pending_ts or len(pending) >= batch):
                w.run_until(pending_ts)
                dev_queue_xmit_list(h1, pending)
                w.run_until_idle()
                pending = []
            pending_ts = fr.ts_ns
            pending.append(new_packet(fr.data))
            n += 1
    if pending:
        w.run_until(pending_ts)
        dev_queue_xmit_list(h1, pending)
        w.run_until_idle()
    dt = CLOCK() - t0
    if writer is not None:
        writer.close()
    ipv4 = r.ipv4
    return {
        "packets": n, "forwarded": got[0], "captured": got[1], "seconds": dt, "pps": n / dt if dt else 0.0,
        "route_lookups_per_packet": getattr(ipv4, "route_lookups", 0) / max(n, 1),
        "doorbells_per_packet": r.get("r-h2").doorbells / max(got[0], 1),
        "drops": {ns: w.netns(ns).drops.as_dict() for ns in ("h1", "r", "h2")},
    }


def memory_child(n: int) -> int:
    """Run a 1 M-packet streamed replay in this process; return max RSS in KiB."""
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "in.pcap")
        make_pcap(p, n)
        replay(p, os.path.join(d, "out.pcap"), 64)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=100_000)
    ap.add_argument("--memory", action="store_true", help="also measure a 1M-packet replay's peak RSS")
    ap.add_argument("--memory-packets", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternate dpkt and netstack this many times; report the medians")
    ap.add_argument("--_child-memory", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child_memory:
        print(memory_child(args._child_memory))
        return 0
    res: dict = {"python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "in.pcap")
        make_pcap(p, args.packets)
        dpkt_runs, ns_runs = [], []
        for _ in range(max(1, args.rounds)):      # interleaved, so drift hits both alike
            n, dt = bench_dpkt(p)
            dpkt_runs.append({"packets": n, "seconds": dt, "pps": n / dt})
            ns_runs.append(replay(p, os.path.join(d, "out.pcap"), 64))
        res["dpkt"] = sorted(dpkt_runs, key=lambda r: r["pps"])[len(dpkt_runs) // 2]
        res["netstack"] = sorted(ns_runs, key=lambda r: r["pps"])[len(ns_runs) // 2]
        res["rounds"] = {"dpkt_pps": [r["pps"] for r in dpkt_runs],
                         "netstack_pps": [r["pps"] for r in ns_runs]}
        small = os.path.join(d, "small.pcap")
        make_pcap(small, min(args.packets, 10_000))
        res["unbatched"] = replay(small, None, 1)
    res["ratio_netstack_over_dpkt"] = res["netstack"]["pps"] / res["dpkt"]["pps"]
    if args.memory:
        out = subprocess.run([sys.executable, __file__, "--_child-memory", str(args.memory_packets)],
                             capture_output=True, text=True, check=True)
        res["memory_1M_replay_maxrss_MiB"] = int(out.stdout.strip()) / 1024
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"dpkt parse:          {res['dpkt']['pps']:>10.0f} pkt/s")
        print(f"netstack forwarding: {res['netstack']['pps']:>10.0f} pkt/s  "
              f"(forwarded {res['netstack']['forwarded']}/{res['netstack']['packets']})")
        print(f"ratio netstack/dpkt: {res['ratio_netstack_over_dpkt']:.2f}")
        print(f"route lookups/pkt:   batched {res['netstack']['route_lookups_per_packet']:.4f}, "
              f"unbatched {res['unbatched']['route_lookups_per_packet']:.4f}")
        print(f"doorbells/pkt:       batched {res['netstack']['doorbells_per_packet']:.4f}, "
              f"unbatched {res['unbatched']['doorbells_per_packet']:.4f}")
        if "memory_1M_replay_maxrss_MiB" in res:
            print(f"1M-packet replay peak RSS: {res['memory_1M_replay_maxrss_MiB']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
