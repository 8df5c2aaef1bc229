"""A TSO super-packet across a veth as a burst (netstack/packet/skb_burst.py) against the
same path with bursts off.

``dev_queue_xmit_list(a, [pkt])`` on a veth without TSO segments the packet in software;
with ``skb_burst.ENABLED`` the segments stay in one buffer and cross the veth as one
(``VethDevice.start_xmit_burst`` → ``netif_rx_burst``), the softirq loop counts their rows
(``World._poll_bursts``) and the peer's NAPI coalesces them from the buffer
(``Napi.receive_bursts``).  Whatever the case, the outcome must be the one of the skb
path (``skb_burst.ENABLED = False``): what an AF_PACKET tap on the peer sees (every byte,
every skb field, gso_size/gso_segs), both devices' counters, doorbells, softirq polls, the
peer NAPI's counters, the drop counters, the trace.  Cases: peer GRO on (the burst path —
checked to be taken), GRO off, peer down, peer MTU too small, a tx tap on the sender, a
traced packet, more rows than one poll takes, two super-packets in the backlog, a plain
packet queued before the burst, a broadcast destination, IPv6, software checksums, a
pair in one namespace.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Any

import pytest

from netstack.api import Stack
from netstack.core.dev import dev_queue_xmit_list, netif_rx
from netstack.core.eth import eth_type_trans
from netstack.core.gro import Napi
from netstack.core.gso import SKB_GSO_TCPV4, SKB_GSO_TCPV6
from netstack.drivers import veth as veth_mod
from netstack.drivers.veth import VethDevice
from netstack.packet import skb_burst
from netstack.packet.skb import Packet
from offload.pktbuild import eth, gso_packet, ipv4, pseudo4, tcp, tcp4_frame, tcp6_frame

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _bench() -> Any:
    """bench/offload.py (its VETH_SETUP and super-packet), loaded by path."""
    spec = importlib.util.spec_from_file_location("_bench_offload_for_veth_burst",
                                                  os.path.join(_ROOT, "bench", "offload.py"))
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


BENCH = _bench()
VETH_SETUP: str = BENCH.VETH_SETUP
MSS: int = BENCH.MSS
PAYLOAD: bytes = BENCH.PAYLOAD

#: a pair inside one namespace (no namespace crossing: mark and tstamp survive)
ONE_NS_SETUP = """
ip link add eth0 address 02:00:00:00:00:01 type veth peer name eth1 address 02:00:00:00:00:02
ethtool -K eth0 tso off gso off
ethtool -K eth1 gro on
ip link set eth0 up
ip link set eth1 up
"""

_SKIP = {"buf", "dev", "cb", "trace", "ct", "dst", "__dict__"}
_SLOTS = [s for s in Packet.__slots__ if s not in _SKIP]


def _name(x: Any) -> Any:
    """A device (or anything else of one world) by name, so two worlds compare."""
    if x is None or isinstance(x, (int, str, bytes, bool, float)):
        return x
    return (type(x).__name__, getattr(x, "name", None))


def snap(p: Packet) -> tuple:
    """Everything of an skb at the tap: the whole buffer, every slot, the cold fields."""
    return (bytes(p.buf), tuple((s, getattr(p, s)) for s in _SLOTS), _name(p.dev),
            p.cb is None, p.trace is None, _name(p.ct), _name(p.dst),
            sorted((k, _name(v)) for k, v in p.__dict__.items()))


class Spy:
    """Counts the burst entry points while a scenario runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = {"start_xmit_burst": 0, "netif_rx_burst": 0, "receive_bursts": 0,
                      "burst_rows_to_napi": 0}
        real_xmit = VethDevice.start_xmit_burst
        real_rx = veth_mod.netif_rx_burst
        real_recv = Napi.receive_bursts
        calls = self.calls

        def xmit(dev: VethDevice, b: Any) -> None:
            calls["start_xmit_burst"] += 1
            real_xmit(dev, b)

        def rx(b: Any) -> None:
            calls["netif_rx_burst"] += 1
            real_rx(b)

        def recv(napi: Napi, bursts: list) -> None:
            calls["receive_bursts"] += 1
            calls["burst_rows_to_napi"] += sum(len(b) for b in bursts)
            real_recv(napi, bursts)

        monkeypatch.setattr(VethDevice, "start_xmit_burst", xmit)
        monkeypatch.setattr(veth_mod, "netif_rx_burst", rx)
        monkeypatch.setattr(Napi, "receive_bursts", recv)


def super_packet(n: int = 65536 - 100, mss: int = MSS, *, v6: bool = False, seq: int = 1000,
                 sport: int = 4000) -> Packet:
    """A TSO super-packet as bench/offload.py's ``_super_packet`` builds it (TCP/IPv4, or
    IPv6), data at the MAC header, CHECKSUM_PARTIAL."""
    if v6:
        fr = tcp6_frame(PAYLOAD[:n], seq=seq, flags=0x18)
        return gso_packet(fr, 14, 54, mss, SKB_GSO_TCPV6)
    if mss == MSS and seq == 1000 and sport == 4000:
        return BENCH._super_packet(False, n)
    return gso_packet(tcp4_frame(PAYLOAD[:n], seq=seq, flags=0x18, sport=sport), 14, 34, mss,
                      SKB_GSO_TCPV4)


def scenario(enabled: bool, monkeypatch: pytest.MonkeyPatch, *, extra: str = "",
             setup: str = VETH_SETUP, pkts: list[dict] | None = None, dst: bytes | None = None,
             tx_tap: bool = False, trace: bool = False, plain_first: bool = False,
             fields: dict | None = None) -> tuple[dict, dict]:
    """Run one case with bursts on or off; returns (everything observable, spy counts)."""
    monkeypatch.setattr(skb_burst, "ENABLED", enabled)
    spy = Spy(monkeypatch)
    st = Stack(trace=trace)
    st.run_script(setup + extra, name="veth-burst")
    w = st.world
    one_ns = setup is ONE_NS_SETUP
    na = w.netns("") if one_ns else w.netns("a")
    nb = na if one_ns else w.netns("b")
    a = na.get("eth0")
    b = nb.get("eth1" if one_ns else "eth0")
    seen: list[tuple] = []
    nb.add_rx_tap(b, lambda p: seen.append(snap(p)))
    sent: list[tuple] = []
    if tx_tap:
        na.add_tx_tap(a, lambda p: sent.append(snap(p)))
    if plain_first:
        # a frame of another flow already in the backlog (netif_rx on the peer)
        q = w.new_packet(tcp4_frame(PAYLOAD[:300], seq=77, sport=5555))
        q.buf[q.data:q.data + 6] = b.address
        q.dev = b
        q.protocol = eth_type_trans(q, b)
        netif_rx(q)
    for kw in pkts or [{}]:
        p = super_packet(**kw)
        p.buf[p.data:p.data + 6] = dst if dst is not None else b.address
        p.dev = a
        if trace:
            p.trace = w.tracer
            p.id = 4242
        for k, v in (fields or {}).items():
            setattr(p, k, v)
        dev_queue_xmit_list(a, [p])
    w.run_until_idle()
    assert not w.backlog and w.backlog_bursts == 0
    out = {
        "seen": seen,
        "sent": sent,
        "stats": (a.stats.as_dict(), b.stats.as_dict()),
        "doorbells": (a.doorbells, b.doorbells),
        "softirq_batches": w.softirq_batches,
        "napi": dict(b.napi.stats) if b.napi is not None else None,
        "drops": (dict(na.drops.counts), dict(nb.drops.counts), dict(w.init_net.drops.counts)),
        "trace": list(st.trace_lines),
    }
    return out, dict(spy.calls)


def same(monkeypatch: pytest.MonkeyPatch, **kw: Any) -> tuple[dict, dict]:
    """Bursts on and off give the same outcome; returns it and the burst run's spy."""
    want, off = scenario(False, monkeypatch, **kw)
    got, on = scenario(True, monkeypatch, **kw)
    assert set(off.values()) == {0}, f"burst code used with bursts off: {off}"
    for k in want:
        assert got[k] == want[k], f"{k} differs with bursts on"
    return got, on


# ---------------------------------------------------------------------------- cases
def test_gro_on_takes_the_burst_path(monkeypatch) -> None:
    got, on = same(monkeypatch)
    assert on == {"start_xmit_burst": 1, "netif_rx_burst": 1, "receive_bursts": 1,
                  "burst_rows_to_napi": 46}
    assert len(got["seen"]) == 1                     # coalesced back into one packet
    fields = dict(got["seen"][0][1])
    cold = dict(got["seen"][0][-1])
    assert cold["gso_segs"] == 46 and cold["gso_size"] == MSS
    assert got["stats"][0]["tx_packets"] == 46 and got["stats"][1]["rx_packets"] == 46
    assert got["doorbells"][0] == 1 and got["softirq_batches"] == 1
    assert got["napi"]["merged"] == 45
    assert fields["pkt_type"] == 0


def test_gro_off_rows_become_skbs(monkeypatch) -> None:
    got, on = same(monkeypatch, extra="ip netns exec b ethtool -K eth0 gro off\n")
    assert on["start_xmit_burst"] == 1 and on["netif_rx_burst"] == 1
    assert on["receive_bursts"] == 0
    assert len(got["seen"]) == 46 and got["napi"] is None


def test_peer_down(monkeypatch) -> None:
    got, on = same(monkeypatch, extra="ip -n b link set eth0 down\n")
    assert on["start_xmit_burst"] == 1 and on["netif_rx_burst"] == 0
    assert got["seen"] == [] and got["stats"][0]["tx_dropped"] == 46
    assert got["stats"][1]["rx_dropped"] == 46


@pytest.mark.parametrize("mtu", [1000, 1400, 1483])
def test_peer_mtu_too_small(monkeypatch, mtu) -> None:
    """Every full segment too long for the peer; the last, shorter one fits."""
    got, on = same(monkeypatch, extra=f"ip -n b link set eth0 mtu {mtu}\n")
    assert on["start_xmit_burst"] == 1 and on["netif_rx_burst"] == 0
    assert got["stats"][0]["tx_dropped"] == 45
    assert got["stats"][1]["rx_packets"] == 1 and len(got["seen"]) == 1


def test_peer_mtu_just_enough(monkeypatch) -> None:
    """mtu 1484: the longest row (1502 bytes) is exactly peer.mtu + 14 + 4."""
    got, on = same(monkeypatch, extra="ip -n b link set eth0 mtu 1484\n")
    assert on["netif_rx_burst"] == 1 and got["stats"][1]["rx_dropped"] == 0


def test_tx_tap_on_the_sender(monkeypatch) -> None:
    got, on = same(monkeypatch, tx_tap=True)
    assert on["start_xmit_burst"] == 0
    assert len(got["sent"]) == 46 and len(got["seen"]) == 1


def test_traced_packet(monkeypatch) -> None:
    got, on = same(monkeypatch, trace=True)
    assert on["start_xmit_burst"] == 0
    assert got["trace"] and any("veth_xmit" in line for line in got["trace"])
    assert len(got["seen"]) == 1


@pytest.mark.parametrize("mss,n", [(500, 65436), (300, 20000), (1000, 64000)])
def test_more_rows_than_a_poll(monkeypatch, mss, n) -> None:
    """More than DEV_WEIGHT (64) rows: the poll the budget ends in takes the first 64 as
    skbs, the rest wait for the next poll, as the segments would."""
    got, on = same(monkeypatch, pkts=[{"n": n, "mss": mss}])
    rows = -(-n // mss)
    assert on["netif_rx_burst"] == 1
    assert got["softirq_batches"] == -(-rows // 64)
    assert got["stats"][1]["rx_packets"] == rows
    assert on["receive_bursts"] == (1 if rows <= 64 else 0)


def test_two_super_packets_in_the_backlog(monkeypatch) -> None:
    # two small ones of one flow: one poll of two bursts, the flow goes on across them
    n = 20 * MSS
    got, on = same(monkeypatch, pkts=[{"n": n, "mss": MSS}, {"n": n, "mss": MSS, "seq": 1000 + n}])
    assert on["netif_rx_burst"] == 2 and on["receive_bursts"] == 1
    assert on["burst_rows_to_napi"] == 40 and got["softirq_batches"] == 1
    # two flows
    got, on = same(monkeypatch, pkts=[{"n": n, "mss": MSS}, {"n": n, "mss": MSS, "sport": 4001}])
    assert on["receive_bursts"] == 1 and len(got["seen"]) == 2
    # two 64 KB ones: the second is split by the poll budget
    got, on = same(monkeypatch, pkts=[{}, {"seq": 1000 + 65436}])
    assert on["netif_rx_burst"] == 2 and on["receive_bursts"] == 0
    assert got["softirq_batches"] == 2 and got["stats"][1]["rx_packets"] == 92


def test_plain_packet_before_the_burst(monkeypatch) -> None:
    got, on = same(monkeypatch, plain_first=True)
    assert on["netif_rx_burst"] == 1 and on["receive_bursts"] == 0
    assert len(got["seen"]) == 2


@pytest.mark.parametrize("dst", [b"\xff" * 6, bytes.fromhex("333300000001"),
                                 bytes.fromhex("020000000099")])
def test_not_unicast_to_the_peer(monkeypatch, dst) -> None:
    """Broadcast, multicast, another host's address: the per-skb fallback
    (eth_type_trans decides the packet type)."""
    got, on = same(monkeypatch, dst=dst)
    assert on["start_xmit_burst"] == 1 and on["netif_rx_burst"] == 0
    assert got["stats"][1]["rx_packets"] == 46


def test_ipv6(monkeypatch) -> None:
    """TCP/IPv6 (the IPv6 MSS of a 1500-byte MTU: 1428); with the IPv4 MSS the full
    segments are too long for the peer (the fallback's drops)."""
    got, on = same(monkeypatch, pkts=[{"v6": True, "n": 60000, "mss": 1428}])
    assert on["receive_bursts"] == 1 and len(got["seen"]) == 1
    assert dict(got["seen"][0][-1])["gso_segs"] == -(-60000 // 1428)
    got, on = same(monkeypatch, pkts=[{"v6": True, "n": 20000, "mss": MSS}])
    assert on["start_xmit_burst"] == 1 and on["netif_rx_burst"] == 0
    assert got["stats"][1]["rx_dropped"] == 13


def test_software_checksums(monkeypatch) -> None:
    """The sender cannot checksum: the segments are CHECKSUM_NONE, the peer's GRO sums
    them (one super-packet, and two of one flow in one poll)."""
    extra = "ip netns exec a ethtool -K eth0 tx off\n"
    got, on = same(monkeypatch, extra=extra)
    assert on["receive_bursts"] == 1 and len(got["seen"]) == 1
    n = 20 * MSS
    got, on = same(monkeypatch, extra=extra,
                   pkts=[{"n": n, "mss": MSS}, {"n": n, "mss": MSS, "seq": 1000 + n}])
    assert on["receive_bursts"] == 1


def test_pair_in_one_namespace(monkeypatch) -> None:
    """No namespace crossing: mark and tstamp are kept (scrubbed only across)."""
    got, on = same(monkeypatch, setup=ONE_NS_SETUP,
                   fields={"mark": 7, "priority": 3, "tstamp": 99, "skb_iif": 5})
    assert on["receive_bursts"] == 1
    assert dict(got["seen"][0][1])["mark"] == 7
    assert dict(got["seen"][0][1])["priority"] == 0


# ---------------------------------------------------------------- several devices
def observe(st: Stack, taps: dict) -> dict:
    """Every device's counters, doorbells and NAPI counters, every namespace's drops,
    the taps' records, the softirq polls and the trace of a finished run."""
    w = st.world
    assert not w.backlog and w.backlog_bursts == 0
    nets = {"": w.init_net, **w.namespaces}
    devs = {}
    for ns, net in nets.items():
        for name, d in net.devices.items():
            napi = getattr(d, "napi", None)
            devs[(ns, name)] = (d.stats.as_dict(), d.doorbells,
                                dict(napi.stats) if napi is not None else None)
    return {"taps": taps, "devs": devs, "softirq_batches": w.softirq_batches,
            "drops": {ns: dict(net.drops.counts) for ns, net in nets.items()},
            "trace": list(st.trace_lines)}


TWO_PAIRS = VETH_SETUP + """
ip -n a link add eth1 address 02:00:00:00:01:01 type veth peer name eth1 netns b address 02:00:00:00:01:02
ip netns exec a ethtool -K eth1 tso off gso off
ip netns exec b ethtool -K eth1 gro on
ip -n a link set eth1 up
ip -n b link set eth1 up
"""


def two_pairs(enabled: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict]:
    monkeypatch.setattr(skb_burst, "ENABLED", enabled)
    spy = Spy(monkeypatch)
    st = Stack()
    st.run_script(TWO_PAIRS, name="veth-burst-two-pairs")
    w = st.world
    taps: dict = {"eth0": [], "eth1": []}
    for name in taps:
        b = w.netns("b").get(name)
        w.netns("b").add_rx_tap(b, lambda p, n=name: taps[n].append(snap(p)))
    n = 20 * MSS
    for k, name in enumerate(("eth0", "eth1")):
        a, b = w.netns("a").get(name), w.netns("b").get(name)
        p = super_packet(n, MSS, sport=4000 + k)
        p.buf[p.data:p.data + 6] = b.address
        p.dev = a
        dev_queue_xmit_list(a, [p])
    w.run_until_idle()
    return observe(st, taps), dict(spy.calls)


def test_two_pairs_one_poll(monkeypatch) -> None:
    """Two veth pairs, a super-packet on each: one poll of two bursts for two NAPIs."""
    want, off = two_pairs(False, monkeypatch)
    got, on = two_pairs(True, monkeypatch)
    assert set(off.values()) == {0}
    assert got == want
    assert on["netif_rx_burst"] == 2 and on["receive_bursts"] == 2
    assert got["softirq_batches"] == 1
    assert [len(v) for v in got["taps"].values()] == [1, 1]


ROUTER = """
ip netns add h1
ip netns add r
ip netns add h2
ip -n h1 link add eth0 address 02:00:00:00:01:01 type veth peer name r-h1 netns r address 02:00:00:00:01:fe
ip -n h2 link add eth0 address 02:00:00:00:02:02 type veth peer name r-h2 netns r address 02:00:00:00:02:fe
ip netns exec r sysctl -q -w net.ipv4.ip_forward=1
ip netns exec h1 ethtool -K eth0 tso off gso off
ip netns exec r ethtool -K r-h1 gro on
ip netns exec r ethtool -K r-h2 tso off gso off
ip netns exec h2 ethtool -K eth0 gro on
ip -n r addr add 10.0.1.254/24 dev r-h1
ip -n r addr add 10.0.2.254/24 dev r-h2
ip -n h2 addr add 10.0.2.2/24 dev eth0
ip -n r neigh add 10.0.2.2 lladdr 02:00:00:00:02:02 dev r-h2 nud permanent
ip -n r link set r-h1 up
ip -n r link set r-h2 up
ip -n h1 link set eth0 up
ip -n h2 link set eth0 up
"""


def routed(enabled: bool, monkeypatch: pytest.MonkeyPatch, count: int, trace: bool) -> tuple[dict, dict]:
    """h1 → r → h2: a super-packet segmented on h1 (burst), coalesced by r's GRO,
    forwarded and segmented again on r-h2 (TSO off), coalesced by h2's GRO."""
    monkeypatch.setattr(skb_burst, "ENABLED", enabled)
    spy = Spy(monkeypatch)
    st = Stack(trace=trace)
    st.run_script(ROUTER, name="veth-burst-router")
    w = st.world
    h1 = w.netns("h1").get("eth0")
    taps: dict = {"r": [], "h2": []}
    w.netns("r").add_rx_tap(w.netns("r").get("r-h1"), lambda p: taps["r"].append(snap(p)))
    h2 = w.netns("h2").get("eth0")
    w.netns("h2").add_rx_tap(h2, lambda p: taps["h2"].append(snap(p)))
    src, dst = bytes([10, 0, 1, 1]), bytes([10, 0, 2, 2])
    n = 20 * MSS + 100
    for k in range(count):
        pay = PAYLOAD[k * n:(k + 1) * n]
        seg = tcp(4000, 80, 1000 + k * n, 1, 0x18, pay, pseudo4(src, dst, 6, 20 + len(pay)))
        fr = (eth(bytes.fromhex("0200000001fe"), h1.address, 0x0800)
              + ipv4(len(seg), 6, src=src, dst=dst, ident=k * 100) + seg)
        p = gso_packet(fr, 14, 34, MSS, SKB_GSO_TCPV4)
        p.dev = h1
        if trace:
            p.trace = w.tracer
            p.id = 100 + k
        dev_queue_xmit_list(h1, [p])
    w.run_until_idle()
    return observe(st, taps), dict(spy.calls)


@pytest.mark.parametrize("count,trace", [(1, False), (2, False), (1, True)])
def test_forwarded_through_a_router(monkeypatch, count, trace) -> None:
    want, off = routed(False, monkeypatch, count, trace)
    got, on = routed(True, monkeypatch, count, trace)
    assert set(off.values()) == {0}
    for k in want:
        assert got[k] == want[k], f"{k} differs with bursts on"
    assert len(got["taps"]["h2"]) >= 1
    seen = got["taps"]["h2"][0]
    assert dict(seen[-1]).get("gso_size") == MSS      # coalesced again on h2
    if not trace:
        assert on["start_xmit_burst"] >= 2 and on["receive_bursts"] >= 2
