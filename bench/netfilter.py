#!/usr/bin/env python3
"""Netfilter benchmark: rule-set scaling, conntrack table, NAT with and without flowtable.

What is measured (issue 4, "Speed"), each on the router namespace ``r`` of the same
h1 — r — h2 veth topology as ``bench/forwarding.py``, UDP frames (16 flows) streamed into
``h1:eth0`` in batches of 64 and counted by an rx tap on ``h2:eth0``:

* **linear rules**: a forward base chain of N rules ``ip saddr 172.x.y.z drop`` (none
  matches, so every packet evaluates all N) — N = 10, 1 000, 10 000;
* **set**: one rule ``ip saddr @s drop`` against a hash set (``ipv4_addr``) of N
  elements that do not contain the source — N = 10, 10 000, 1 000 000;
* **verdict map**: one rule ``ip saddr vmap @m`` against N elements, the source mapping
  to ``accept`` — N = 10, 10 000, 1 000 000;
* **interval set**: one rule ``ip saddr @r drop`` against N disjoint /32..ranges
  (``flags interval``) that do not contain the source — N = 10, 10 000, 1 000 000;
* **NAT**: ``masquerade`` in postrouting with conntrack, the forward chain either
  counting (slow path: ingress → IPv4 receive → conntrack → forward chain → NAT →
  output) or doing ``flow add @f`` (the established flows then take the flowtable's
  netdev ingress fast path, which gets each receive list whole and sends its hits with
  one ``dev_queue_xmit_list`` per output device: ``pkts_per_doorbell`` reports how many
  packets left ``r-h2`` per driver doorbell);
* **conntrack** (in a child process, so the RSS difference is clean): N confirmed UDP
  entries (default 1 000 000) cloned from one entry the real datapath created, bytes per
  entry as the RSS difference over N, ``CtNet.find`` lookups per second over random
  existing tuples and over absent ones, and the NAT slow path's pps with the full table.

Rules and small sets are loaded with ``nft -f``; sets of 10 000 and 1 000 000 elements get
their elements through ``NftSet.insert`` after an ``nft -f`` that declares them (parsing a
million-element file is not what is measured).  Times are CPU seconds of this process
(``time.process_time``); every configuration runs ``--rounds`` times, interleaved with the
others, and medians are reported.

Usage: ``python bench/netfilter.py [--rounds R] [--scale F] [--ct-entries N] [--json]``.
``--scale`` multiplies every packet count (0.1 for a smoke run).  Results are recorded in
docs/performance.md.  This is a benchmark, not a test: nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from netstack.api import Stack  # noqa: E402
from netstack.core.dev import dev_queue_xmit_list  # noqa: E402
from netstack.packet.ethernet import build_ethernet  # noqa: E402
from netstack.packet.ipv4 import build_ipv4  # noqa: E402
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
ip -n r neigh add 10.0.1.1 lladdr 02:00:00:00:01:01 dev r-h1 nud permanent
ip -n r link set r-h1 up
ip -n r link set r-h2 up
ip -n h1 link set eth0 up
ip -n h2 link set eth0 up
"""
#: CPU time of this process: the datapath is single-threaded and CPU-bound, and on a
#: shared 2-core machine wall time mostly measures the neighbours.
CLOCK = time.process_time
H1_MAC, R1_MAC = bytes.fromhex("020000000101"), bytes.fromhex("0200000001fe")
H2_MAC, R2_MAC = bytes.fromhex("020000000202"), bytes.fromhex("0200000002fe")
SRC, DST, R2 = bytes([10, 0, 1, 1]), bytes([10, 0, 2, 2]), bytes([10, 0, 2, 254])
FLOWS = 16
BATCH = 64


def _addr(i: int) -> str:
    """The i-th address of 172.16.0.0/12 onwards (never 10.0.1.1)."""
    return f"172.{16 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"


class Router:
    """The h1 — r — h2 topology with a ruleset loaded into r."""

    def __init__(self, ruleset: str) -> None:
        self.st = st = Stack()
        st.run_script(SETUP, name="bench-setup")
        w = self.world = st.world
        self.r = w.netns("r")
        self.h1 = w.netns("h1").get("eth0")
        h2net = w.netns("h2")
        self.h2 = h2net.get("eth0")
        self.r2 = self.r.get("r-h2")
        self.got = [0]
        got = self.got

        def tap(pkt: Any) -> None:
            if pkt.protocol == 0x0800:
                got[0] += 1
        h2net.add_rx_tap(self.h2, tap)
        with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
            f.write(ruleset)
            path = f.name
        try:
            res = st.command(["ip", "netns", "exec", "r", "nft", "-f", path])
        finally:
            os.unlink(path)
        if res.rc != 0:
            raise SystemExit(f"nft -f failed: {res.stderr}")
        self.frames = []
        for fl in range(FLOWS):
            udp = build_udp(10000 + fl, 9, bytes(18), src=SRC, dst=DST)
            self.frames.append(build_ethernet(R1_MAC, H1_MAC, 0x0800,
                                              build_ipv4(SRC, DST, 17, udp, id=fl)))

    def nft_set(self, table: str, name: str) -> Any:
        from netstack.netfilter.nft.ruleset import nft_state
        t = nft_state(self.r).find_table("ip", table)
        assert t is not None
        return t.sets[name]

    def reply_all(self) -> None:
        """h2 answers every flow (to the masquerade address): the cts become
        bidirectional, so ``flow add`` offloads them."""
        w = self.world
        for fl in range(FLOWS):
            dev_queue_xmit_list(self.h1, [w.new_packet(self.frames[fl])])
            w.run_until_idle()
            udp = build_udp(9, 10000 + fl, bytes(18), src=DST, dst=R2)
            rep = build_ethernet(R2_MAC, H2_MAC, 0x0800, build_ipv4(DST, R2, 17, udp, id=fl))
            dev_queue_xmit_list(self.h2, [w.new_packet(rep)])
            w.run_until_idle()

    def run(self, n: int) -> dict:
        """Send ``n`` frames h1 → h2 in batches of 64; pps over CPU time."""
        w = self.world
        new_packet = w.new_packet
        frames = self.frames
        h1 = self.h1
        self.got[0] = 0
        bells = self.r2.doorbells
        t0 = CLOCK()
        for i in range(0, n, BATCH):
            dev_queue_xmit_list(h1, [new_packet(frames[j % FLOWS])
                                     for j in range(i, min(n, i + BATCH))])
            w.run_until_idle()
        dt = CLOCK() - t0
        bells = self.r2.doorbells - bells
        return {"packets": n, "forwarded": self.got[0], "seconds": dt,
                "pps": n / dt if dt else 0.0,
                "pkts_per_doorbell": self.got[0] / bells if bells else 0.0}


# ----------------------------------------------------------------------- configurations
def linear(n: int) -> Router:
    body = "\n".join(f"  ip saddr {_addr(i)} drop" for i in range(n))
    return Router("table ip filter {\n chain fwd {\n"
                  "  type filter hook forward priority 0; policy accept;\n"
                  f"{body}\n }}\n}}\n")


def _fill(rt: Router, name: str, n: int, data: Any, interval: bool) -> None:
    from netstack.netfilter.nft.ruleset import Element
    s = rt.nft_set("filter", name)
    n0 = len(s)
    ins = s.insert
    for i in range(n):
        k = (0xAC100000 + (i << 2 if interval else i)).to_bytes(4, "big")
        ins(Element(k, key_end=(0xAC100000 + (i << 2) + 1).to_bytes(4, "big")
                    if interval else None, data=data))
    assert len(s) == n0 + n


def set_cfg(n: int) -> Router:
    rt = Router("table ip filter {\n set s { type ipv4_addr; }\n chain fwd {\n"
                "  type filter hook forward priority 0; policy accept;\n"
                "  ip saddr @s drop\n }\n}\n")
    _fill(rt, "s", n, None, False)
    return rt


def vmap_cfg(n: int) -> Router:
    rt = Router("table ip filter {\n map m { type ipv4_addr : verdict; "
                "elements = { 10.0.1.1 : accept } }\n chain fwd {\n"
                "  type filter hook forward priority 0; policy drop;\n"
                "  ip saddr vmap @m\n }\n}\n")
    _fill(rt, "m", n - 1, ("drop", None, None), False)
    return rt


def interval_cfg(n: int) -> Router:
    rt = Router("table ip filter {\n set r { type ipv4_addr; flags interval; }\n"
                " chain fwd {\n  type filter hook forward priority 0; policy accept;\n"
                "  ip saddr @r drop\n }\n}\n")
    _fill(rt, "r", n, None, True)
    return rt


NAT = """table ip nat {
 chain post { type nat hook postrouting priority 100; policy accept;
  oifname "r-h2" masquerade }
}
table ip filter {
 %s
 chain fwd { type filter hook forward priority 0; policy accept; %s }
}
"""


def nat_cfg(flowtable: bool) -> Router:
    if flowtable:
        rt = Router(NAT % ('flowtable f { hook ingress priority 0; devices = { "r-h1", "r-h2" }; }',
                           "meta l4proto udp flow add @f"))
    else:
        rt = Router(NAT % ("", "meta l4proto udp counter"))
    rt.reply_all()
    return rt


# ---------------------------------------------------------------------------- conntrack
def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def conntrack_child(n: int, lookups: int, pkts: int = 20000) -> dict:
    """Fill r's conntrack table with ``n`` UDP entries cloned from a real one (same
    fields, proto state, accounting), then time ``CtNet.find``."""
    from netstack.netfilter import conntrack as nfct
    from netstack.netfilter.conntrack_tuple import CtTuple
    rt = nat_cfg(False)
    cn = nfct.ct_net(rt.r)
    tmpl = next(iter(cn.conns))
    o0, r0 = tmpl.tuplehash
    gc.collect()
    before = _rss_bytes()
    t0 = CLOCK()
    insert = cn.insert
    for i in range(n):
        src = (0x0A000000 + (i >> 14)).to_bytes(4, "big")   # 10.x.y.z, 16 384 ports each
        port = 1024 + (i & 0x3FFF)
        o = CtTuple(o0.l3num, src, port, o0.dst, o0.dport, o0.protonum)
        r = CtTuple(r0.l3num, r0.src, r0.sport, r0.dst, port, r0.protonum)
        ct = nfct.NfConn([o, r], tmpl.zone, tmpl.status, tmpl.timeout + 3600 * 10**9,
                         tmpl.mark, proto=tmpl.proto, id=i + 1000, net=tmpl.net,
                         acct=[[1, 46], [1, 46]] if tmpl.acct is not None else None,
                         start=tmpl.start, masq_index=tmpl.masq_index)
        insert(ct)
    fill_s = CLOCK() - t0
    gc.collect()
    after = _rss_bytes()
    rng = random.Random(1)
    conns = list(cn.conns)
    keys = [conns[rng.randrange(len(conns))].tuplehash[rng.randrange(2)] for _ in range(lookups)]
    misses = [CtTuple(2, bytes([192, 0, 2, rng.randrange(256)]), rng.randrange(65536),
                      o0.dst, 9, 17) for _ in range(lookups)]
    zone = tmpl.zone
    find = cn.find
    res: dict = {"entries": cn.count, "fill_seconds": fill_s,
                 "bytes_per_entry": (after - before) / n, "rss_MiB": after / 2**20}
    for label, ks in (("hit", keys), ("miss", misses)):
        t0 = CLOCK()
        found = 0
        for k in ks:
            found += find(k, zone) is not None
        dt = CLOCK() - t0
        res[f"lookups_per_s_{label}"] = len(ks) / dt if dt else 0.0
        res[f"found_{label}"] = found
    # the whole NAT slow path (conntrack lookup per packet) with the full table, against
    # the same router with only its 16 flows (the "NAT slow path" configuration)
    rt.run(2 * BATCH)
    res["nat_slow_pps_full_table"] = rt.run(pkts)["pps"]
    return res


# --------------------------------------------------------------------------------- main
def _median(runs: list[dict]) -> dict:
    s = sorted(runs, key=lambda r: r["pps"])
    out = dict(s[len(s) // 2])
    out["rounds_pps"] = [round(r["pps"]) for r in runs]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every packet count")
    ap.add_argument("--ct-entries", type=int, default=1_000_000)
    ap.add_argument("--ct-lookups", type=int, default=200_000)
    ap.add_argument("--sizes", default="10,10000,1000000",
                    help="set / map / interval sizes (comma separated)")
    ap.add_argument("--rules", default="10,1000,10000", help="linear chain lengths")
    ap.add_argument("--skip", default="", help="comma list of: rules,sets,nat,conntrack")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--_child-ct", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child_ct:
        print(json.dumps(conntrack_child(args._child_ct, args.ct_lookups,
                                         max(BATCH, int(20000 * args.scale)))))
        return 0
    skip = set(filter(None, args.skip.split(",")))
    sc = args.scale

    def pk(n: int) -> int:
        return max(BATCH, int(n * sc))
    cfgs: list[tuple[str, Callable[[], Router], int]] = []
    if "rules" not in skip:
        for n in map(int, args.rules.split(",")):
            cfgs.append((f"linear {n} rules", lambda n=n: linear(n),
                         pk(20000 if n <= 10 else 4000 if n <= 1000 else 512)))
    if "sets" not in skip:
        for n in map(int, args.sizes.split(",")):
            cfgs.append((f"set {n} elements", lambda n=n: set_cfg(n), pk(20000)))
            cfgs.append((f"vmap {n} elements", lambda n=n: vmap_cfg(n), pk(20000)))
            cfgs.append((f"interval set {n} ranges", lambda n=n: interval_cfg(n), pk(20000)))
    if "nat" not in skip:
        cfgs.append(("NAT slow path", lambda: nat_cfg(False), pk(20000)))
        cfgs.append(("NAT flowtable", lambda: nat_cfg(True), pk(40000)))
    res: dict = {"python": sys.version.split()[0], "batch": BATCH, "results": {}}
    built: list[tuple[str, Router, int, float]] = []
    for name, mk, n in cfgs:
        t0 = time.perf_counter()
        built.append((name, mk(), n, time.perf_counter() - t0))
    runs: dict[str, list[dict]] = {name: [] for name, *_ in built}
    for _ in range(max(1, args.rounds)):       # interleaved: drift hits every config alike
        for name, rt, n, _setup in built:
            rt.run(min(n, 2 * BATCH))          # warm the caches of this router
            runs[name].append(rt.run(n))
    for name, rt, n, setup in built:
        m = _median(runs[name])
        m["setup_seconds"] = setup
        res["results"][name] = m
    r = res["results"]
    if "NAT slow path" in r and "NAT flowtable" in r:
        res["flowtable_speedup"] = r["NAT flowtable"]["pps"] / r["NAT slow path"]["pps"]
    del built
    gc.collect()
    if "conntrack" not in skip:
        out = subprocess.run([sys.executable, __file__, "--_child-ct", str(args.ct_entries),
                              "--ct-lookups", str(args.ct_lookups), "--scale", str(sc)],
                             capture_output=True, text=True, check=True)
        res["conntrack"] = json.loads(out.stdout)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    for name, m in r.items():
        print(f"{name:<28} {m['pps']:>10.0f} pkt/s  (forwarded {m['forwarded']}/{m['packets']}, "
              f"rounds {m['rounds_pps']}, setup {m['setup_seconds']:.1f} s, "
              f"{m['pkts_per_doorbell']:.1f} pkt/doorbell on r-h2)")
    if "flowtable_speedup" in res:
        print(f"flowtable / slow path:       {res['flowtable_speedup']:.2f}x")
    if "conntrack" in res:
        c = res["conntrack"]
        print(f"conntrack {c['entries']} entries: {c['bytes_per_entry']:.0f} bytes/entry "
              f"(RSS {c['rss_MiB']:.0f} MiB, fill {c['fill_seconds']:.1f} s), "
              f"lookups/s hit {c['lookups_per_s_hit']:.0f} miss {c['lookups_per_s_miss']:.0f}; "
              f"NAT slow path with the full table {c['nat_slow_pps_full_table']:.0f} pkt/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
