#!/usr/bin/env python3
"""Bond transmit benchmark: packets per second leaving a bond, per mode.

What is measured: batches of 64 UDP frames (64 different flows: source ports vary, so
the hash modes spread them) given to ``dev_queue_xmit_list(bond0)`` — the bond picks the
slave(s) per mode (``__bond_start_xmit``: round-robin counter, active slave, layer3+4
hash over the usable-slave array, every slave for broadcast, the tlb hash table, the alb
ARP/IP rules), hands per-slave sublists to the veths, and the frames are received on the
other side (three veth slaves, peers up in another namespace, nothing listening: the peer
drops them as unhandled after the taps).  802.3ad runs against a second bond so the LACP
machines have converged before timing.

CPU seconds of this process (``time.process_time``), median of ``--rounds`` runs.
Usage: ``python bench/l2_bond.py [--packets N] [--rounds R] [--json]``; the lead merges
``main()`` into bench/l2.py.  A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from netstack.api import Stack  # noqa: E402
from netstack.core.dev import dev_queue_xmit_list  # noqa: E402

MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
         "balance-tlb", "balance-alb")
CLOCK = time.process_time
BATCH = 64


def _setup(mode: str) -> Stack:
    s = Stack()
    extra = "xmit_hash_policy layer3+4" if mode in ("balance-xor", "802.3ad") else ""
    lines = ["ip netns add h", "ip netns add s",
             f"ip -n h link add bond0 type bond mode {mode} miimon 100 {extra}"]
    if mode == "802.3ad":
        lines.append(f"ip -n s link add bond0 type bond mode 802.3ad miimon 100 {extra}")
    for i in (1, 2, 3):
        lines.append(f"ip -n h link add e{i} type veth peer name p{i} netns s")
        lines.append(f"ip -n h link set e{i} master bond0")
        lines.append(f"ip -n s link set p{i} {'master bond0' if mode == '802.3ad' else 'up'}")
    lines.append("ip -n h link set bond0 up")
    if mode == "802.3ad":
        lines.append("ip -n s link set bond0 up")
    s.run_script("\n".join(lines) + "\n")
    s.world.advance(5 if mode == "802.3ad" else 0.2)
    return s


def _frames(src: bytes) -> list[bytes]:
    out = []
    for i in range(BATCH):
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0,
                         bytes([10, 0, 0, 1]), bytes([10, 0, 1, i]))
        out.append(bytes.fromhex("020000000099") + src + b"\x08\x00" + ip
                   + struct.pack("!HHHH", 1000 + i, 53, 8, 0))
    return out


def run(mode: str, packets: int) -> dict[str, float]:
    s = _setup(mode)
    world = s.world
    bond = world.netns("h").get("bond0")
    frames = _frames(bond.address)
    batches = max(1, packets // BATCH)
    t0 = CLOCK()
    for _ in range(batches):
        pkts = []
        for f in frames:
            p = world.new_packet(f)
            p.protocol = 0x0800
            p.network_header = p.data + 14
            pkts.append(p)
        dev_queue_xmit_list(bond, pkts)
        world.run_softirq()
    dt = CLOCK() - t0
    n = batches * BATCH
    return {"packets": n, "cpu_s": dt, "pps": n / dt if dt else float("inf")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    results = measure(a.packets, a.rounds)
    if a.json:
        print(json.dumps({"bond_tx": results}, indent=2))
    else:
        print_table(results)
    return 0


def measure(packets: int, rounds: int) -> dict[str, dict[str, float]]:
    """Median transmit pps (and CPU seconds per run) of every mode."""
    results = {}
    for mode in MODES:
        runs = [run(mode, packets) for _ in range(rounds)]
        med = statistics.median(r["pps"] for r in runs)
        results[mode] = {"pps": round(med), "cpu_s_per_run": round(
            statistics.median(r["cpu_s"] for r in runs), 4), "packets": runs[0]["packets"]}
    return results


def print_table(results: dict[str, dict[str, float]]) -> None:
    print(f"{'bond mode':<14} {'tx pps':>10} {'cpu s/run':>10}")
    for mode, r in results.items():
        print(f"{mode:<14} {r['pps']:>10} {r['cpu_s_per_run']:>10}")


if __name__ == "__main__":
    sys.exit(main())
