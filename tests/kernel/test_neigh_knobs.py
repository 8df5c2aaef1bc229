"""Neighbour-table sysctls: drop_gratuitous_arp and drop_unsolicited_na.

arp_process() (net/ipv4/arp.c) drops an ARP whose sender and target IP are
equal when drop_gratuitous_arp is set; otherwise a gratuitous ARP (see
arp_is_garp()) overrides an existing entry despite the 1 s locktime and
leaves it STALE (a broadcast is never confirmation of reachability).
ndisc_recv_na() (net/ipv6/ndisc.c) drops an NA without the S flag when
drop_unsolicited_na is set; otherwise an NA with O=1, S=0 overrides the
link-layer address and leaves the entry STALE (RFC 4861 7.2.5).
Neither message makes the router send anything.
"""

from __future__ import annotations

import json

from .cases import (H1, IP_H1, IP6_H1, MAC_H1, V1H, Case, arp, eth_arp, eth_ip6, icmp6_na, script)
from .conftest import Kernel
from .oracle import Send

NEW_MAC = "02:00:00:00:01:99"
GARP = eth_arp("ff:ff:ff:ff:ff:ff", NEW_MAC, arp(1, NEW_MAC, IP_H1, "00:00:00:00:00:00", IP_H1))
UNA = eth_ip6("33:33:00:00:00:01", NEW_MAC,
              icmp6_na(IP6_H1, "ff02::1", IP6_H1, NEW_MAC, solicited=False, override=True))
NEIGH4 = "ip -n r -j neigh show"
NEIGH6 = "ip -n r -j -6 neigh show"


def _case(name: str, base: str, frag: str, knob: str, frame: bytes, query: str) -> Case:
    return Case(name=name, script=script(base, frag, knob), sends=(Send(H1, V1H, frame),),
                queries=(query,))


GARP_ON = _case("drop_garp_on", "ipv4_router", "garp_stale_h1", "drop_garp_on", GARP, NEIGH4)
GARP_OFF = _case("drop_garp_off", "ipv4_router", "garp_stale_h1", "drop_garp_off", GARP, NEIGH4)
UNA_ON = _case("drop_una_on", "ipv6_router", "na_stale_h1", "drop_una_on", UNA, NEIGH6)
UNA_OFF = _case("drop_una_off", "ipv6_router", "na_stale_h1", "drop_una_off", UNA, NEIGH6)


def check(res, query: str, dst: str, lladdr: str) -> None:
    assert all(f == [] for f in res.frames.values()), res.frames
    (entry,) = [n for n in json.loads(res.queries[query]) if n["dst"] == dst]
    assert (entry["lladdr"], entry["state"]) == (lladdr, ["STALE"])


def test_drop_gratuitous_arp_on_kernel(kernel: Kernel) -> None:
    check(kernel.run(GARP_ON), NEIGH4, IP_H1, MAC_H1)


def test_drop_gratuitous_arp_on_netstack_matches(kernel: Kernel) -> None:
    check(kernel.compare_netstack(GARP_ON), NEIGH4, IP_H1, MAC_H1)


def test_drop_gratuitous_arp_off_kernel(kernel: Kernel) -> None:
    check(kernel.run(GARP_OFF), NEIGH4, IP_H1, NEW_MAC)


def test_drop_gratuitous_arp_off_netstack_matches(kernel: Kernel) -> None:
    check(kernel.compare_netstack(GARP_OFF), NEIGH4, IP_H1, NEW_MAC)


def test_drop_unsolicited_na_on_kernel(kernel: Kernel) -> None:
    check(kernel.run(UNA_ON), NEIGH6, IP6_H1, MAC_H1)


def test_drop_unsolicited_na_on_netstack_matches(kernel: Kernel) -> None:
    check(kernel.compare_netstack(UNA_ON), NEIGH6, IP6_H1, MAC_H1)


def test_drop_unsolicited_na_off_kernel(kernel: Kernel) -> None:
    check(kernel.run(UNA_OFF), NEIGH6, IP6_H1, NEW_MAC)


def test_drop_unsolicited_na_off_netstack_matches(kernel: Kernel) -> None:
    check(kernel.compare_netstack(UNA_OFF), NEIGH6, IP6_H1, NEW_MAC)


def test_frames_are_what_they_claim() -> None:
    """The injected messages really are gratuitous / unsolicited (no root needed)."""
    a = GARP[14:]
    assert a[14:18] == a[24:28]  # spa == tpa
    na = UNA[14 + 40:]
    assert na[0] == 136 and na[4] & 0x40 == 0 and na[4] & 0x20
