#!/usr/bin/env python3
"""Offload benchmark: software GSO and GRO of 64 KB TCP super-packets, checksum speed.

What is measured (one run, same process, CPU time with ``time.process_time``, medians of
``--rounds``):

* ``memcpy``: copying a 64 KB buffer (``bytes(bytearray)``), the bandwidth reference;
* ``csum``: ``csum_partial`` over the same 64 KB (the llvmlite-compiled loop of
  netstack/packet/csum_native.py, or numpy if the JIT is unavailable), GB/s and its ratio
  to memcpy; ``csum_numpy``: the numpy twin (``_numpy_sum_le``) in the same run, for
  comparison; ``csum_impl`` says which one ``csum_partial`` used, ``jit_compile_ms`` what
  the one-time compilation cost;
* ``gso``: ``skb_gso_segment`` of a 64 KB TCP/IPv4 super-packet into 1448-byte segments,
  for a device that checksums (segments stay CHECKSUM_PARTIAL) and one that does not
  (every segment's TCP checksum in software), plain and inside VXLAN (outer UDP checksum);
  each call on a fresh copy of the super-packet made just before it, not timed (until
  session 4 the copy, ~5 µs, was timed with it);
* ``gro``: the same segments coalesced back by a NAPI instance (``Napi.receive_list``),
  received CHECKSUM_UNNECESSARY (the device verified them); the ``*_rxsw`` rows receive
  them CHECKSUM_NONE, so GRO validates every TCP (and outer UDP) checksum in software.
  Each poll runs right after its burst was copied onto fresh receive skbs (untimed), and
  what GRO delivers is dropped, as a receiver meets and consumes a burst just sent
  (until session 3 the bench queued 150 bursts first and kept every merged packet: cold
  caches and a growing heap — ~2× slower, numbers in docs/performance.md);
* ``gso+gro``: both, in Gbit/s of TCP payload (one core doing both halves);
* ``burst``: the same three with the segments as a burst (netstack/packet/skb_burst.py):
  GSO leaves them in one buffer (``burst=True``, what a veth gets), GRO receives them as
  one (``Napi.receive_bursts`` on a receive ring the frames were copied into, untimed);
  the ``skbs`` columns are the list paths;
* ``veth``: the whole datapath — a 64 KB TSO packet sent on a veth with TSO off,
  segmented by ``validate_xmit_skb``, the peer's NAPI coalescing it back, the merged
  packet up to IPv4 — with the batch GSO/GRO paths (netstack/core/gso_fast.py,
  gro_fast.py) and bursts, with the batch paths but an skb per segment (``veth_skbs``),
  and without either (``veth_layered``);
* ``floor``: what per-segment Python costs before any work — allocating the 46 skbs with
  their fields and payload copies, and a GRO control block plus ten calls per segment —
  the ceiling of a per-segment Python design on this machine.

Usage: ``python bench/offload.py [--rounds R] [--json]``.  Results are recorded in
docs/performance.md; nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from netstack.core.gro import Napi  # noqa: E402
from netstack.core.gso import SKB_GSO_TCPV4, skb_gso_segment  # noqa: E402
from netstack.packet import checksum as _checksum  # noqa: E402
from netstack.packet import csum_native  # noqa: E402
from netstack.packet.checksum import csum_partial  # noqa: E402
from netstack.packet import skb_burst  # noqa: E402
from netstack.packet.skb import CHECKSUM_NONE, CHECKSUM_UNNECESSARY, Packet  # noqa: E402
from netstack.packet.skb_burst import ring_burst  # noqa: E402
from tests.offload.pktbuild import gso_packet, tcp4_frame, vxlan_gso_packet  # noqa: E402

CLOCK = time.process_time
MSS = 1448
PAYLOAD = bytes((i * 7 + 1) & 0xFF for i in range(65536))
HW = frozenset({"tx-checksum-ip-generic"})


class _Net:
    """The namespace part GRO looks at: the UDP tunnel socket registry with one VXLAN
    socket on 4789 (TUN's vxlan GRO callbacks)."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        from netstack.drivers.vxlan.gro import vxlan_gro_complete, vxlan_gro_receive
        from netstack.ipv4.udp_tunnel import UdpTunnelSock
        sk = UdpTunnelSock(net=self, family=2, port=4789,  # type: ignore[arg-type]
                           encap_rcv=lambda s, p: 0, user_data=SimpleNamespace(devs={}),
                           gro_receive=vxlan_gro_receive, gro_complete=vxlan_gro_complete)
        self.proto = {"udp_tunnel": {(2, 4789): [sk]}, "udp_encap_needed": True}


class _Dev:
    """A device for GSO/GRO: its features, no encapsulation features of its own."""

    hw_enc_features = None
    gso_partial_features: frozenset = frozenset()
    ifindex = 2

    def __init__(self, features: frozenset) -> None:
        self.features = set(features) | {"rx-gro"}
        self.net = _Net()


def _median_time(fn, n: int, rounds: int) -> float:
    ts = []
    for _ in range(rounds):
        t0 = CLOCK()
        for _ in range(n):
            fn()
        ts.append((CLOCK() - t0) / n)
    return statistics.median(ts)


def _super_packet(tunnel: bool, n: int):
    if tunnel:
        return vxlan_gso_packet(PAYLOAD[:n], MSS, True)
    return gso_packet(tcp4_frame(PAYLOAD[:n], flags=0x18), 14, 34, MSS, SKB_GSO_TCPV4)


def _wire(segs: list[Packet]) -> list[bytes]:
    """What the device puts on the wire for ``segs``: a checksum left to it
    (CHECKSUM_PARTIAL) filled in (``skb_checksum_help`` on a copy), so a receiver that
    is told "verified" (CHECKSUM_UNNECESSARY) gets frames that are."""
    from netstack.core.skb_csum import skb_checksum_help
    out = []
    for s in segs:
        if s.ip_summed == 3:
            s = s.clone()
            skb_checksum_help(s)
        out.append(s.bytes())
    return out


def _received(segs: list[Packet], dev: _Dev, ip_summed: int = CHECKSUM_UNNECESSARY) -> list[Packet]:
    out = []
    for b in _wire(segs):
        p = Packet(b)
        p.dev = dev
        p.mac_header = p.data
        p.protocol = 0x0800
        p.data += 14
        p.ip_summed = ip_summed
        out.append(p)
    return out


def _floor_gso(mv: memoryview, head: bytes, n: int) -> list[Packet]:
    """The least any Python GSO can do: one skb per segment, its 21 hot fields set and
    its payload copied once — no header rewritten."""
    segs = []
    new = Packet.__new__
    for off in range(0, n, MSS):
        s = new(Packet)
        nb = bytearray(head)
        nb += mv[off:off + MSS]
        s.buf = nb
        s.head = 0
        s.data = s.mac_header = 128
        s.tail = len(nb)
        s.network_header = 142
        s.transport_header = 162
        s.protocol = 0x0800
        s.pkt_type = s.skb_iif = s.mark = s.priority = s.csum = s.tstamp = s.id = 0
        s.ip_summed = 3
        s.dev = s.ct = s.dst = s.cb = s.trace = None
        segs.append(s)
    return segs


def _noop() -> None:
    return None


def _floor_gro(segs: list[Packet]) -> None:
    """The least a layered Python GRO can do: a control block per segment and ten calls
    (the receive → IPv4 → TCP → merge chain), no header read."""
    from netstack.core.gro import NapiGroCb
    for s in segs:
        s.cb = NapiGroCb(s)
        for _ in range(10):
            _noop()


def _gso_time(proto: Packet, feats: frozenset, n: int, rounds: int, burst: bool = False) -> float:
    """Median CPU time of ``skb_gso_segment`` of one super-packet: each call gets a fresh
    copy of ``proto`` (segmentation writes into it; the copy is made just before and not
    timed, as the GRO half does not time the wire).  ``burst``: the segments are left
    in one buffer (netstack/packet/skb_burst.py), as for a driver that takes bursts."""
    ts = []
    for _ in range(rounds):
        t = 0.0
        for _ in range(n):
            p = proto.clone()
            t0 = CLOCK()
            skb_gso_segment(p, feats, burst=burst)
            t += CLOCK() - t0
        ts.append(t / n)
    return statistics.median(ts)


def _gro_time(segs: list[Packet], dev: _Dev, rx_summed: int, n: int, rounds: int,
              burst: bool = False) -> float:
    """Median CPU time of one NAPI poll coalescing the burst ``segs``: each round copies
    the burst onto fresh receive skbs (the wire, not timed) and times
    ``Napi.receive_list`` on them right away, as a receiver meets a burst just sent; what
    GRO delivers is counted and dropped (a stack consumes it), so the merged buffers do
    not pile up in the heap.  ``burst``: the frames arrive as one burst — copied into a
    fresh buffer, a row per frame (``ring_burst``: what a receive ring holds after the
    NIC's DMA; not timed) — and ``Napi.receive_bursts`` is timed."""
    got = [0, 0]

    def sink(lst: list[Packet]) -> None:
        got[0] += len(lst)
        got[1] = lst[0].gso_segs

    napi = Napi(dev, sink)  # type: ignore[arg-type]
    # the burst's receive ring: the wire's frames, each in a row after the headroom
    frames = _wire(segs)
    rx_proto = _received(segs[:1], dev, rx_summed)[0]
    stride = rx_proto.mac_header + max(map(len, frames))
    ts = []
    for _ in range(rounds):
        t = 0.0
        for _ in range(n):
            if burst:
                rb = [ring_burst(rx_proto, frames, stride)]
                t0 = CLOCK()
                napi.receive_bursts(rb)  # type: ignore[arg-type]
                t += CLOCK() - t0
                continue
            rx = _received(segs, dev, rx_summed)
            t0 = CLOCK()
            napi.receive_list(rx)
            t += CLOCK() - t0
            del rx
        ts.append(t / n)
    assert got[0] == n * rounds and got[1] == len(segs), got
    return statistics.median(ts)


VETH_SETUP = """
ip netns add a
ip netns add b
ip -n a link add eth0 address 02:00:00:00:00:01 type veth peer name eth0 netns b address 02:00:00:00:00:02
ip netns exec a ethtool -K eth0 tso off gso off
ip netns exec b ethtool -K eth0 gro on
ip -n a link set eth0 up
ip -n b link set eth0 up
"""


def veth_path(rounds: int, n: int = 65536 - 100, fast: bool = True, bursts: bool = True) -> dict:
    """The whole datapath: a 64 KB TSO super-packet sent on a veth without TSO
    (``validate_xmit_skb`` segments it in software), the peer's NAPI coalescing the
    segments back (GRO on), the merged packet up to IPv4 (no address: dropped there).
    ``fast`` False turns both batch paths off (netstack/core/gso_fast.py,
    gro_fast.py) — the layered per-segment reference; ``bursts`` False keeps the batch
    paths but makes an skb per segment (netstack/packet/skb_burst.py off)."""
    from netstack.api import Stack
    from netstack.core import gro_fast, gso_fast
    from netstack.core.dev import dev_queue_xmit_list
    st = Stack()
    st.run_script(VETH_SETUP, name="bench-veth")
    w = st.world
    a = w.netns("a").get("eth0")
    b = w.netns("b").get("eth0")
    got = [0, 0]

    def tap(p: Packet) -> None:
        got[0] += 1
        got[1] = p.gso_segs

    w.netns("b").add_rx_tap(b, tap)
    proto = _super_packet(False, n)
    proto.buf[proto.data:proto.data + 6] = b.address
    proto.dev = a
    saved = gso_fast.ENABLED, gro_fast.ENABLED, skb_burst.ENABLED
    gso_fast.ENABLED = gro_fast.ENABLED = fast
    skb_burst.ENABLED = fast and bursts
    try:
        def once() -> None:
            dev_queue_xmit_list(a, [proto.clone()])
            w.run_until_idle()

        t = _median_time(once, 30, rounds)
    finally:
        gso_fast.ENABLED, gro_fast.ENABLED, skb_burst.ENABLED = saved
    assert got[1] == -(-n // MSS), got
    return {"us": t * 1e6, "Gbps": n * 8 / t / 1e9}


def run(rounds: int) -> dict:
    res: dict = {}
    buf = bytearray(PAYLOAD)
    t0 = time.perf_counter()
    native = csum_native.load()
    res["jit_compile_ms"] = (time.perf_counter() - t0) * 1e3
    res["csum_impl"] = "llvmlite" if native is not None else "numpy"
    np_sum = _checksum._numpy_sum_le
    # steady state: the first thousand reductions of a process run slower (numpy's
    # first-use page faults and caches), which would otherwise land in round one
    _median_time(lambda: csum_partial(buf), 1000, 1)
    _median_time(lambda: np_sum(buf), 1000, 1)
    t_copy = _median_time(lambda: bytes(buf), 2000, rounds)
    t_csum = _median_time(lambda: csum_partial(buf), 2000, rounds)
    t_np = _median_time(lambda: (np_sum(buf) << 8) % 0xFFFF, 2000, rounds)
    res["memcpy_GBps"] = 65536 / t_copy / 1e9
    res["csum_GBps"] = 65536 / t_csum / 1e9
    res["csum_vs_memcpy"] = t_copy / t_csum
    res["csum_numpy_GBps"] = 65536 / t_np / 1e9
    res["csum_numpy_vs_memcpy"] = t_copy / t_np
    n = 65536 - 100
    mv = memoryview(bytearray(PAYLOAD))
    head = bytes(128 + 54)
    t_fg = _median_time(lambda: _floor_gso(mv, head, n), 30, rounds)
    fsegs = _floor_gso(mv, head, n)
    t_fr = _median_time(lambda: _floor_gro(fsegs), 30, rounds)
    res["floor"] = {"gso_Gbps": n * 8 / t_fg / 1e9, "gro_Gbps": n * 8 / t_fr / 1e9,
                    "gso+gro_Gbps": n * 8 / (t_fg + t_fr) / 1e9}
    for tunnel in (False, True):
        n = 65536 - (200 if tunnel else 100)
        for hw, rx_summed in ((True, CHECKSUM_UNNECESSARY), (False, CHECKSUM_UNNECESSARY),
                              (False, CHECKSUM_NONE)):
            feats = HW if hw else frozenset()
            dev = _Dev(feats)
            name = (("vxlan_" if tunnel else "tcp_") + ("hwcsum" if hw else "swcsum")
                    + ("_rxsw" if rx_summed == CHECKSUM_NONE else ""))

            proto = _super_packet(tunnel, n)
            proto.dev = dev

            segs = skb_gso_segment(proto.clone(), feats)
            t_gso = _gso_time(proto, feats, 30, rounds)
            t_gro = _gro_time(segs, dev, rx_summed, 30, rounds)
            t_gso_b = _gso_time(proto, feats, 30, rounds, burst=True)
            t_gro_b = _gro_time(segs, dev, rx_summed, 30, rounds, burst=True)
            bits = n * 8
            res[name] = {"segments": len(segs), "gso_Gbps": bits / t_gso / 1e9,
                         "gro_Gbps": bits / t_gro / 1e9,
                         "gso+gro_Gbps": bits / (t_gso + t_gro) / 1e9,
                         "burst_gso_Gbps": bits / t_gso_b / 1e9,
                         "burst_gro_Gbps": bits / t_gro_b / 1e9,
                         "burst_gso+gro_Gbps": bits / (t_gso_b + t_gro_b) / 1e9}
    res["veth"] = veth_path(rounds)
    res["veth_skbs"] = veth_path(rounds, bursts=False)
    res["veth_layered"] = veth_path(rounds, fast=False)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = run(a.rounds)
    if a.json:
        print(json.dumps(res, indent=1))
        return
    print(f"memcpy   {res['memcpy_GBps']:7.2f} GB/s")
    print(f"csum     {res['csum_GBps']:7.2f} GB/s  ({100 * res['csum_vs_memcpy']:.0f} % of memcpy; "
          f"{res['csum_impl']}, JIT compile {res['jit_compile_ms']:.0f} ms)")
    print(f"csum_numpy {res['csum_numpy_GBps']:5.2f} GB/s  "
          f"({100 * res['csum_numpy_vs_memcpy']:.0f} % of memcpy)")
    f = res["floor"]
    print(f"python floor (allocation + calls only)  GSO {f['gso_Gbps']:6.2f}  GRO "
          f"{f['gro_Gbps']:6.2f}  GSO+GRO {f['gso+gro_Gbps']:6.2f} Gbit/s")
    for k in ("veth", "veth_skbs", "veth_layered"):
        print(f"{k:18s} 64 KB TSO -> veth (TSO off) -> peer GRO -> IPv4: "
              f"{res[k]['us']:6.0f} us  {res[k]['Gbps']:6.2f} Gbit/s")
    for k, v in res.items():
        if isinstance(v, dict) and k not in ("floor",) and not k.startswith("veth"):
            print(f"{k:18s} {v['segments']:3d} segs  skbs:  GSO {v['gso_Gbps']:6.2f}  GRO "
                  f"{v['gro_Gbps']:6.2f}  GSO+GRO {v['gso+gro_Gbps']:6.2f}   burst:  GSO "
                  f"{v['burst_gso_Gbps']:6.2f}  GRO {v['burst_gro_Gbps']:6.2f}  GSO+GRO "
                  f"{v['burst_gso+gro_Gbps']:6.2f} Gbit/s")


if __name__ == "__main__":
    main()
