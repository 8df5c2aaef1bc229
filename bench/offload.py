#!/usr/bin/env python3
"""Offload benchmark: software GSO and GRO of 64 KB TCP super-packets, checksum speed.

What is measured (one run, same process, CPU time with ``time.process_time``, medians of
``--rounds``):

* ``memcpy``: copying a 64 KB buffer (``bytes(bytearray)``), the bandwidth reference;
* ``csum``: ``csum_partial`` over the same 64 KB (the ones'-complement sum as one
  ``int.from_bytes`` and one modulo), GB/s and its ratio to memcpy;
* ``gso``: ``skb_gso_segment`` of a 64 KB TCP/IPv4 super-packet into 1448-byte segments,
  for a device that checksums (segments stay CHECKSUM_PARTIAL) and one that does not
  (every segment's TCP checksum in software), plain and inside VXLAN (outer UDP checksum);
* ``gro``: the same segments coalesced back by a NAPI instance (``Napi.receive_list``);
* ``gso+gro``: both, in Gbit/s of TCP payload.

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
from netstack.packet.checksum import csum_partial  # noqa: E402
from netstack.packet.skb import CHECKSUM_UNNECESSARY, Packet  # noqa: E402
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


def _received(segs: list[Packet], dev: _Dev) -> list[Packet]:
    out = []
    for s in segs:
        b = s.bytes()
        p = Packet(b)
        p.dev = dev
        p.mac_header = p.data
        p.protocol = 0x0800
        p.data += 14
        p.ip_summed = CHECKSUM_UNNECESSARY
        out.append(p)
    return out


def run(rounds: int) -> dict:
    res: dict = {}
    buf = bytearray(PAYLOAD)
    t_copy = _median_time(lambda: bytes(buf), 2000, rounds)
    t_csum = _median_time(lambda: csum_partial(buf), 2000, rounds)
    res["memcpy_GBps"] = 65536 / t_copy / 1e9
    res["csum_GBps"] = 65536 / t_csum / 1e9
    res["csum_vs_memcpy"] = t_copy / t_csum
    for tunnel in (False, True):
        n = 65536 - (200 if tunnel else 100)
        for hw in (True, False):
            feats = HW if hw else frozenset()
            dev = _Dev(feats)
            name = ("vxlan_" if tunnel else "tcp_") + ("hwcsum" if hw else "swcsum")

            proto = _super_packet(tunnel, n)
            proto.dev = dev

            def gso_once():
                return skb_gso_segment(proto.clone(), feats)

            segs = gso_once()
            t_gso = _median_time(gso_once, 30, rounds)
            rx_sets = [_received(segs, dev) for _ in range(30 * rounds)]
            it = iter(rx_sets)
            out: list = []
            napi = Napi(dev, out.extend)

            def gro_once():
                napi.receive_list(next(it))

            t_gro = _median_time(gro_once, 30, rounds)
            assert len(out) == 30 * rounds and out[0].gso_segs == len(segs)
            bits = n * 8
            res[name] = {"segments": len(segs), "gso_Gbps": bits / t_gso / 1e9,
                         "gro_Gbps": bits / t_gro / 1e9,
                         "gso+gro_Gbps": bits / (t_gso + t_gro) / 1e9}
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
    print(f"csum     {res['csum_GBps']:7.2f} GB/s  ({100 * res['csum_vs_memcpy']:.0f} % of memcpy)")
    for k, v in res.items():
        if isinstance(v, dict):
            print(f"{k:14s} {v['segments']:3d} segs  GSO {v['gso_Gbps']:6.2f}  GRO "
                  f"{v['gro_Gbps']:6.2f}  GSO+GRO {v['gso+gro_Gbps']:6.2f} Gbit/s")


if __name__ == "__main__":
    main()
