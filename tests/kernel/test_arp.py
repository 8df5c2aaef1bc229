"""ARP resolution by the router for a next hop it does not know.

Kernel paths: neigh_resolve_output()/__neigh_event_send() (net/core/
neighbour.c) queue packets on an INCOMPLETE entry and send the first
solicitation at once; arp_solicit() (net/ipv4/arp.c) broadcasts a request
with the egress address as sender; arp_process() on the reply makes the
entry REACHABLE and neigh_update() releases the queue in order.  Unanswered,
neigh_timer_handler() retries every retrans_time (1 s) for mcast_solicit (3)
probes, then neigh_invalidate() hands each queued packet to
ipv4_link_failure(), which sends ICMP host unreachable.
"""

from __future__ import annotations

import json

import dpkt

from .cases import (H1, H2, IP_H1, IP_H2, IP_R2, MAC_H1, MAC_H2, MAC_R1, MAC_R2, V1H, V2H, Case,
                    arp, eth_arp, eth_ip, forwarded4, frames, icmp4_of, script, udp4)
from .conftest import Kernel
from .oracle import Send

ROUTER = frozenset({"10.0.1.254", "10.0.2.254"})
NEIGH_Q = "ip -n r -j neigh show"
QUEUED = [udp4(IP_H1, IP_H2, 43000, 7300 + i, b"queued %d" % i, ident=0xB000 + i) for i in range(3)]
REPLY = eth_arp(MAC_R2, MAC_H2, arp(2, MAC_H2, IP_H2, MAC_R2, IP_R2))
REQUEST = eth_arp("ff:ff:ff:ff:ff:ff", MAC_R2, arp(1, MAC_R2, IP_R2, "00:00:00:00:00:00", IP_H2))

RESOLVE = Case(
    name="arp_resolve",
    script=script("ipv4_router", "no_neigh_h2"),
    sends=tuple(Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, p)) for p in QUEUED)
    + (Send(H2, V2H, REPLY, delay_s=0.05),),
    queries=(NEIGH_Q,),
    ipv4_originators=ROUTER,
)


def neigh_of(res, dst: str) -> dict:
    (entry,) = [n for n in json.loads(res.queries[NEIGH_Q]) if n["dst"] == dst]
    return entry


def check_resolve(res) -> None:
    assert frames(res, H1, V1H) == []
    assert frames(res, H2, V2H) == [REQUEST] + [forwarded4(p, MAC_R2, MAC_H2) for p in QUEUED]
    entry = neigh_of(res, IP_H2)
    assert (entry["lladdr"], entry["state"]) == (MAC_H2, ["REACHABLE"])


def test_arp_resolve_kernel(kernel: Kernel) -> None:
    check_resolve(kernel.run(RESOLVE))


def test_arp_resolve_netstack_matches(kernel: Kernel) -> None:
    check_resolve(kernel.compare_netstack(RESOLVE))


LOST = udp4(IP_H1, IP_H2, 43100, 7310, b"nobody home", ident=0xB100)
UNANSWERED = Case(
    name="arp_unanswered",
    script=script("ipv4_router", "no_neigh_h2"),
    sends=(Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, LOST)),),
    queries=(NEIGH_Q,),
    settle=1.5,  # longer than the 1 s retransmit interval
    ipv4_originators=ROUTER,
)


def check_unanswered(res) -> None:
    reqs = frames(res, H2, V2H)
    assert reqs == [REQUEST] * 3
    t = res.times[(H2, V2H)]
    gaps = [b - a for a, b in zip(t, t[1:])]
    assert all(0.8 < g < 1.5 for g in gaps), gaps
    (err,) = frames(res, H1, V1H)
    ip, icmp = icmp4_of(err)
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_UNREACH, dpkt.icmp.ICMP_UNREACH_HOST)
    assert ip.src == bytes([10, 0, 1, 254]) and ip.dst == bytes([10, 0, 1, 1])
    # The quoted datagram is the one that was queued: TTL already decremented.
    assert bytes(icmp.data)[4:] == forwarded4(LOST, MAC_R2, MAC_H2)[14:]
    te = res.times[(H1, V1H)][0]
    assert 0.8 < te - t[-1] < 1.5
    entry = neigh_of(res, IP_H2)
    assert entry["state"] == ["FAILED"] and "lladdr" not in entry


def test_arp_unanswered_kernel(kernel: Kernel) -> None:
    check_unanswered(kernel.run(UNANSWERED))


def test_arp_unanswered_netstack_matches(kernel: Kernel) -> None:
    check_unanswered(kernel.compare_netstack(UNANSWERED))
