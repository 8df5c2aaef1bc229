"""State traces on the virtual clock: what a pwru-like trace shows for IPv6."""
from __future__ import annotations

from netstack.ipv6.udp import udp6_socket

from .helpers import addr, pair, world


def test_resolution_and_delivery_trace() -> None:
    w = world(trace=True)
    a, va, b, vb = pair(w, "a", "va", "b", "vb")
    addr(a, va, "2001:db8::1/64")
    addr(b, vb, "2001:db8::2/64")
    w.advance(3)
    w.tracer.records.clear()
    rx = udp6_socket(b)
    rx.bind(("::", 9))
    udp6_socket(a).sendto(b"x", ("2001:db8::2", 9))
    w.advance(0.5)
    rows = [(r.ts_ns, r.netns, r.stage, r.verdict, r.info) for r in w.tracer.records]
    stages = [s for _, _, s, _, _ in rows]
    # the datagram waits in the neighbour queue while the NS goes out; the NA releases it
    assert stages.index("ndisc_send_skb") < stages.index("dev_hard_start_xmit")
    assert ("udpv6_queue_rcv_skb" in stages) and rx.recvfrom() == (b"x", ("2001:db8::1",
                                                                          rx_port(a)))
    assert all(t == 3_000_000_000 for t, *_ in rows)
    ns_rows = [r for r in rows if r[2] == "ndisc_send_skb"]
    assert [(r[1], r[4]) for r in ns_rows] == [("a", "type=135"), ("b", "type=136")]


def rx_port(net) -> int:
    (port,) = [p for p in net.ipv6.udp_socks]
    return port


def test_dad_probe_time_is_deterministic_per_seed() -> None:
    times = []
    for _ in range(2):
        w = world(trace=True)
        a, va, b, vb = pair(w, "a", "va", "b", "vb")
        addr(a, va, "2001:db8::1/64", nodad=False)
        w.advance(2.5)
        # NS only: the router solicitation after DAD is not a probe
        times.append([r.ts_ns for r in w.tracer.records if r.stage == "ndisc_send_skb"
                      and r.netns == "a" and r.info == "type=135"])
    assert times[0] == times[1] and len(times[0]) == 2  # link-local + global probes
    assert all(0 <= t < 1_000_000_000 for t in times[0])
