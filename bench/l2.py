#!/usr/bin/env python3
"""Layer-2 benchmark: bridged packets per second with a small and a huge FDB.

What is measured: frames from h1 to h2 through bridge ``br0`` (veth in, ``br_handle_frame``,
learning refresh of the source, FDB lookup of the destination, ``br_forward``, veth out),
once with 10 FDB entries and once with 100 000 (static entries on the ingress port, as a
big switched segment would have).  The FDB is a dict keyed by (MAC, VID), as the kernel's
rhashtable, so the two rates should be the same ("flat"); the ratio is printed.

Times are CPU seconds of this process (``time.process_time``), median of ``--rounds``
runs, so load from other processes on a shared machine does not decide the result.  The
second part is bond transmit pps per mode (``bench/l2_bond.py``, also runnable alone).

Usage: ``python bench/l2.py [--packets N] [--rounds R] [--json]``.  Results go to
docs/performance.md.  This is a benchmark, not a test: nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from netstack.api import Stack  # noqa: E402

SETUP = """
ip netns add h1
ip netns add h2
ip netns add b
ip -n b link add br0 type bridge mcast_snooping 0
ip -n b link add p1 address 02:00:00:00:0b:01 type veth peer name eth0 netns h1 address 02:00:00:00:01:01
ip -n b link add p2 address 02:00:00:00:0b:02 type veth peer name eth0 netns h2 address 02:00:00:00:02:01
ip -n b link set p1 master br0
ip -n b link set p2 master br0
ip -n b link set p1 up
ip -n b link set p2 up
ip -n b link set br0 up
ip -n h1 link set eth0 up
ip -n h2 link set eth0 up
"""
CLOCK = time.process_time
H1 = bytes.fromhex("020000000101")
H2 = bytes.fromhex("020000000201")
BATCH = 64
FREEZE = True


def _setup(fdb_size: int) -> tuple[Stack, list]:
    """A bridge whose FDB holds ``fdb_size`` entries (h2 learned on p2, the rest static
    on p1)."""
    from netstack.drivers.bridge.br_fdb import fdb_create
    from netstack.drivers.bridge.br_private import BR_FDB_ADDED_BY_USER, BR_FDB_STATIC
    s = Stack()
    s.run_script(SETUP)
    br = s.world.netns("b").get("br0").br
    p1 = next(p for p in br.port_list if p.dev.name == "p1")
    # h2 and h1 are learned first (one frame each), then the filler entries
    s.inject("h2", "eth0", [H1 + H2 + b"\x88\xb5" + bytes(46)])
    s.inject("h1", "eth0", [H2 + H1 + b"\x88\xb5" + bytes(46)])
    s.advance(0.001)
    n = fdb_size - len(br.fdb)
    for i in range(max(0, n)):
        mac = bytes([0x06, 0, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF, 0x77])
        fdb_create(br, p1, mac, 0, BR_FDB_STATIC | BR_FDB_ADDED_BY_USER)
    cap: list = []
    net = s.world.netns("h2")
    net.add_rx_tap(net.get("eth0"), cap.append)
    return s, cap


def run(fdb_size: int, packets: int) -> dict[str, float]:
    s, cap = _setup(fdb_size)
    # The FDB entries are long-lived objects: move them out of the cyclic GC's reach
    # (gc.freeze) so that the measurement is the lookup, not Python's periodic full
    # collections over 100 000 extra objects (reported separately, see --no-freeze).
    if FREEZE:
        gc.collect()
        gc.freeze()
    # a valid IPv4/UDP datagram: br_netfilter validates bridged IPv4 (bridge-nf-call-
    # iptables is 1 by default, as on the kernel)
    ip = bytearray(bytes.fromhex("4500005600010000401100000a0000010a000002") + bytes(66))
    s_ = sum(int.from_bytes(ip[i:i + 2], "big") for i in range(0, 20, 2))
    s_ = (s_ & 0xFFFF) + (s_ >> 16)
    ip[10:12] = (~s_ & 0xFFFF).to_bytes(2, "big")
    frame = H2 + H1 + b"\x08\x00" + bytes(ip)
    batches = [[frame] * BATCH for _ in range(packets // BATCH)]
    t0 = CLOCK()
    for b in batches:
        s.inject("h1", "eth0", b)
        s.world.run_until_idle()
    dt = CLOCK() - t0
    if FREEZE:
        gc.unfreeze()
    n = len(batches) * BATCH
    assert len(cap) == n, (len(cap), n)
    return {"fdb": len(s.world.netns("b").get("br0").br.fdb), "packets": n, "cpu_s": dt,
            "pps": n / dt if dt else float("inf")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-freeze", action="store_true",
                    help="leave the FDB in the cyclic GC's generations")
    a = ap.parse_args(argv)
    global FREEZE
    FREEZE = not a.no_freeze
    out = {}
    res: dict[int, list[dict[str, float]]] = {10: [], 100_000: []}
    for _ in range(a.rounds):
        # alternate the two sizes so that machine load hits both alike
        for size in (10, 100_000):
            res[size].append(run(size, a.packets))
    for size, rs in res.items():
        out[size] = {"fdb": rs[0]["fdb"], "packets": rs[0]["packets"],
                     "pps": statistics.median(r["pps"] for r in rs)}
    ratio = out[100_000]["pps"] / out[10]["pps"]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import l2_bond
    bond = l2_bond.measure(a.packets, a.rounds)
    if a.json:
        print(json.dumps({"bridge": out, "ratio_100k_vs_10": ratio, "bond_tx": bond}))
    else:
        for size, r in out.items():
            print(f"bridge, FDB {r['fdb']:>6} entries: {r['pps']:>9.0f} pps "
                  f"({r['packets']} packets, median of {a.rounds})")
        print(f"100k/10 ratio: {ratio:.3f}")
        l2_bond.print_table(bond)
    return 0


if __name__ == "__main__":
    sys.exit(main())
