"""``netstack run``: a setup scenario, replayed traffic, captures, follow-up commands.

Why virtual time: frames from ``--inject`` pcaps go out at their capture timestamps,
relative to the first frame (as ``tcpreplay`` keeps the inter-packet gaps), on the
world's clock — the world is advanced to each timestamp, firing neighbour/ICMP/reassembly
timers on the way — so a run is deterministic and takes no wall time.  Frames that share a
timestamp leave as one ``dev_queue_xmit_list`` batch of at most 64 (a NAPI budget), which
is what exercises the batched receive paths.  Input files are streamed (a heap merges the
readers' heads), never loaded whole.
"""
from __future__ import annotations

import heapq
import json
import os
import sys
from dataclasses import dataclass, field
from typing import IO, Iterator

from netstack.cli.errors import ToolError
from netstack.cli.scenario import run_script
from netstack.core.world import NetnsError, World
from netstack.errors import NotSupported, ScenarioError

BATCH = 64
LINKTYPE_EN10MB = 1
ETH_HLEN = 14


class RunError(Exception):
    """A ``netstack run`` failure outside the scenarios (bad spec, pcap problems)."""


@dataclass
class Endpoint:
    """``NS:DEV=FILE`` (NS empty = the initial namespace)."""

    ns: str
    dev: str
    path: str


def parse_endpoint(spec: str, opt: str) -> Endpoint:
    """Parse ``NS:DEV=FILE`` or ``DEV=FILE``."""
    where, eq, path = spec.partition("=")
    if not eq or not where or not path:
        raise RunError(f"{opt} expects NS:DEV=FILE, got {spec!r}")
    ns, colon, dev = where.rpartition(":")
    if not colon:
        ns, dev = "", where
    if not dev:
        raise RunError(f"{opt} expects NS:DEV=FILE, got {spec!r}")
    return Endpoint(ns, dev, path)


@dataclass
class RunOptions:
    setup: str
    inject: list[Endpoint] = field(default_factory=list)
    capture: list[Endpoint] = field(default_factory=list)
    then: str | None = None
    trace: bool = False
    json: bool = False
    quiet: bool = False
    #: at most this many trace lines (``--trace-limit``); None = all
    trace_limit: int | None = None


def _open_readers(specs: list[Endpoint], cwd: str) -> list:  # type: ignore[type-arg]
    from netstack.packet.pcap import PcapError, open_capture
    readers = []
    try:
        for ep in specs:
            path = os.path.join(cwd, ep.path)
            try:
                readers.append(open_capture(path))
            except PcapError as e:
                raise RunError(f"{ep.path}: {e.reason}" + (
                    f" at offset {e.offset}" if e.offset is not None else "")) from None
            except OSError as e:
                raise RunError(f"{ep.path}: {os.strerror(e.errno or 2)}") from None
    except BaseException:
        for r in readers:
            r.close()
        raise
    return readers


def _merged(readers: list,  # type: ignore[type-arg]
            specs: list[Endpoint]) -> Iterator[tuple[int, int, bytes]]:
    """Frames of all files in timestamp order (ties: file order, then file position)."""
    from netstack.packet.pcap import PcapError

    def gen(k: int) -> Iterator[tuple[int, int, int, bytes]]:
        seq = 0
        try:
            for fr in readers[k]:
                if fr.linktype != LINKTYPE_EN10MB:
                    raise RunError(f"{specs[k].path}: link type {fr.linktype} is not "
                                   "Ethernet (1)")
                yield fr.ts_ns, k, seq, bytes(fr.data)
                seq += 1
        except PcapError as e:
            raise RunError(f"{specs[k].path}: {e.reason}" + (
                f" at offset {e.offset}" if e.offset is not None else "")) from None

    for ts, k, _seq, data in heapq.merge(*(gen(k) for k in range(len(readers)))):
        yield ts, k, data


def _resolve(world: World, ep: Endpoint, opt: str):  # type: ignore[no-untyped-def]
    try:
        net = world.netns(ep.ns)
    except NetnsError as e:
        raise RunError(f"{opt} {ep.ns}:{ep.dev}: {e}") from None
    dev = net.get(ep.dev)
    if dev is None:
        raise RunError(f'{opt} {ep.ns}:{ep.dev}: Cannot find device "{ep.dev}"')
    return net, dev


def _frame_of(pkt) -> bytes:  # type: ignore[no-untyped-def]
    """What an AF_PACKET socket sees on receive: the frame from the MAC header on."""
    start = pkt.mac_header if pkt.mac_header >= 0 else pkt.data
    return bytes(pkt.buf[start:pkt.tail])


def _inject(world: World, readers: list, specs: list[Endpoint],  # type: ignore[type-arg]
            stderr: IO[str] | None = None) -> int:
    from netstack.core.af_packet import describe_refusal, packet_snd_check
    from netstack.core.dev import dev_queue_xmit_list
    devs = [_resolve(world, ep, "--inject")[1] for ep in specs]
    refused: list[tuple[Endpoint, int, str]] = []
    base_ts: int | None = None
    start = world.clock.now
    batch: list = []  # type: ignore[type-arg]
    batch_key: tuple[int, int] | None = None
    sent = 0

    def flush() -> None:
        nonlocal batch
        if batch:
            assert batch_key is not None
            dev_queue_xmit_list(devs[batch_key[1]], batch)
            batch = []

    for ts, k, data in _merged(readers, specs):
        if base_ts is None:
            base_ts = ts
        t = start + max(0, ts - base_ts)
        key = (t, k)
        if batch and (key != batch_key or len(batch) >= BATCH):
            flush()
        if not batch:
            if t > world.clock.now:
                world.run_until(t)
            batch_key = key
        err = packet_snd_check(devs[k], data)
        if err:
            # packet_snd refuses it before any skb exists: tcpreplay reports and goes on.
            refused.append((specs[k], sent + len(refused), describe_refusal(err)))
            continue
        pkt = world.new_packet(data)
        pkt.dev = devs[k]
        pkt.reset_mac_header()
        if len(data) >= ETH_HLEN:
            pkt.protocol = int.from_bytes(data[12:14], "big")
        batch.append(pkt)
        sent += 1
    flush()
    world.run_until_idle()
    if stderr is not None:
        for ep, idx, why in refused:
            stderr.write(f"netstack run: --inject {ep.ns}:{ep.dev}={ep.path}: frame {idx} "
                         f"not sent: {why}\n")
    return sent


def summary(world: World, injected: int) -> dict:  # type: ignore[type-arg]
    """Per device counters, drops per namespace, doorbells, route lookups."""
    nets = [world.init_net] + list(world.namespaces.values())
    devices = []
    drops: dict[str, dict[str, int]] = {}
    lookups: dict[str, int] = {}
    for net in nets:
        label = net.name or "-"
        for idx in sorted(net.by_index):
            d = net.by_index[idx]
            s = d.stats
            devices.append({"netns": label, "dev": d.name, "rx_packets": s.rx_packets,
                            "rx_bytes": s.rx_bytes, "tx_packets": s.tx_packets,
                            "tx_bytes": s.tx_bytes, "rx_dropped": s.rx_dropped,
                            "tx_dropped": s.tx_dropped, "doorbells": d.doorbells})
        if net.drops.total():
            drops[label] = net.drops.as_dict()
        for fam in ("ipv4", "ipv6"):
            n = getattr(getattr(net, fam, None), "route_lookups", None)
            if isinstance(n, int):
                lookups[f"{label}/{fam}"] = n
    return {"time_ns": world.clock.now, "injected": injected,
            "softirq_batches": world.softirq_batches, "devices": devices, "drops": drops,
            "route_lookups": lookups}


def format_summary(s: dict) -> str:  # type: ignore[type-arg]
    """The human table closing every run."""
    cols = ("netns", "dev", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "rx_dropped",
            "tx_dropped", "doorbells")
    heads = ("NETNS", "DEV", "RX_PKTS", "RX_BYTES", "TX_PKTS", "TX_BYTES", "RX_DROP",
             "TX_DROP", "DOORBELLS")
    rows = [[str(d[c]) for c in cols] for d in s["devices"]]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(heads)]

    def line(vals: list[str] | tuple[str, ...]) -> str:
        return "  ".join(v.ljust(widths[i]) if i < 2 else v.rjust(widths[i])
                         for i, v in enumerate(vals)).rstrip() + "\n"

    t = s["time_ns"]
    out = (f"== netstack run: {s['injected']} frames injected, virtual time "
           f"{t // 10**9}.{t % 10**9:09d} s, {s['softirq_batches']} softirq batches ==\n")
    out += line(heads) + "".join(line(r) for r in rows)
    if s["drops"]:
        out += "drops:\n"
        for ns, reasons in s["drops"].items():
            for r, n in reasons.items():
                out += f"  {ns:<12} {r:<28} {n}\n"
    else:
        out += "drops: none\n"
    if s["route_lookups"]:
        out += "route lookups: " + ", ".join(f"{k}={v}" for k, v in
                                             s["route_lookups"].items()) + "\n"
    return out


def _read(path: str, cwd: str) -> str:
    full = os.path.join(cwd, path)
    try:
        with open(full, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise RunError(f"{path}: {os.strerror(e.errno or 2)}") from None


def run(opts: RunOptions, stdout: IO[str] | None = None, stderr: IO[str] | None = None,
        cwd: str | None = None) -> int:
    """Execute a ``netstack run``; returns the process exit status."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    cwd = cwd or os.getcwd()
    readers: list = []  # type: ignore[type-arg]
    writers: list = []  # type: ignore[type-arg]
    try:
        setup = _read(opts.setup, cwd)
        then = _read(opts.then, cwd) if opts.then else None
        readers = _open_readers(opts.inject, cwd)
        world = World(trace=opts.trace, trace_sink=(lambda ln: err.write(ln + "\n"))
                      if opts.trace else None)
        if world.tracer is not None and opts.trace_limit is not None:
            world.tracer.limit = opts.trace_limit
        if world.tracer is not None and opts.json:
            # --json makes the whole stderr machine-readable: one trace record per line
            # (stable keys, netstack.core.trace.JSON_KEYS), then the summary object
            world.tracer.json = True
        run_script(world, setup, name=opts.setup, cwd=cwd, stdout=out, stderr=err)
        from netstack.packet.pcap import PcapWriter
        for ep in opts.capture:
            net, dev = _resolve(world, ep, "--capture")
            try:
                w = PcapWriter(os.path.join(cwd, ep.path))
            except OSError as e:
                raise RunError(f"{ep.path}: {os.strerror(e.errno or 2)}") from None
            writers.append(w)
            net.add_rx_tap(dev, lambda pkt, w=w: w.write(_frame_of(pkt), world.clock.now))
        injected = _inject(world, readers, opts.inject, stderr) if readers else 0
        if world.tracer is not None and world.tracer.dropped and opts.json:
            err.write(json.dumps({"trace_stopped": {"lines": world.tracer.count,
                                                    "more_events": world.tracer.dropped}})
                      + "\n")
        elif world.tracer is not None and world.tracer.dropped:
            err.write(f"... trace stopped after {world.tracer.count} lines "
                      f"({world.tracer.dropped} more events; --trace-limit sets the cap)\n")
        if then is not None:
            run_script(world, then, name=opts.then or "", cwd=cwd, stdout=out, stderr=err)
        if not opts.quiet:
            s = summary(world, injected)
            err.write(json.dumps(s) + "\n" if opts.json else format_summary(s))
        return 0
    except ScenarioError as e:
        return e.exit_code or 1
    except (RunError, NotSupported) as e:
        err.write(f"netstack: {e}\n")
        return 1
    except ToolError as e:
        err.write(e.stderr)
        return e.exit_code
    finally:
        for r in readers:
            r.close()
        for w in writers:
            w.close()
