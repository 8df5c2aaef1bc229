"""Router solicitations from a host, kernel vs netstack.

Kernel paths: addrconf_dad_completed() (net/ipv6/addrconf.c) sends the first RS as
soon as the host's link-local address has passed DAD, through ndisc_send_rs()
(net/ipv6/ndisc.c: from the link-local address to ff02::2, hop limit 255, a source
link-layer address option); the router takes it in ndisc_recv_rs() and creates a
STALE neighbour entry for the host's link-local address.

The shared harness strips RS as noise (compare.NOISE_ICMP6_TYPES), so this test
calls ``run_kernel``/``run_netstack`` directly and keeps them.  The first RS is
compared: the next one comes 4 s × 0.9…1.1 later, normally beyond the settle time.
"""

from __future__ import annotations

import json

import dpkt

from .cases import ip6, mac
from .conftest import Kernel
from .netstack_side import run_netstack
from .oracle import Result, run_kernel

HOST_MAC, ROUTER_MAC = "02:00:00:00:0a:01", "02:00:00:00:0a:fe"
HOST_LL = "fe80::ff:fe00:a01"
# Host "rsh" keeps IPv6 defaults (DAD on, accept_ra 1, forwarding 0); router "rsr"
# forwards (so it neither solicits nor ignores RS) and skips DAD.  Distinct ifindexes
# make linkwatch report carrier at once (see scenarios/ipv6_router.sh).
SCRIPT = f"""\
ip netns add rsh
ip netns add rsr
ip netns exec rsr sysctl -q -w net.ipv6.conf.all.forwarding=1
ip netns exec rsr sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
ip -n rsr link add v1 index 11 address {ROUTER_MAC} type veth peer name v0 index 21 address {HOST_MAC} netns rsh
ip -n rsr link set lo up
ip -n rsh link set lo up
ip -n rsr link set v1 up
ip -n rsh link set v0 up
"""
CAPTURE = ("rsr", "v1")
QUERY = "ip -n rsr -j -6 neigh show"
#: long enough to see DAD (< 1 s random delay + 1 s) and the first RS, short enough
#: to stop before the second one (>= 3.6 s after the first)
SETTLE = 2.5


def solicitations(res: Result) -> list[bytes]:
    """The host's RS frames as the router's end of the veth received them."""
    out = []
    for f in res.frames[CAPTURE]:
        e = dpkt.ethernet.Ethernet(f)
        if e.src == mac(HOST_MAC) and isinstance(e.data, dpkt.ip6.IP6) \
                and e.data.nxt == 58 and bytes(e.data.data)[:1] == b"\x85":
            out.append(f)
    return out


def check_rs(frame: bytes) -> None:
    """RFC 4861 §4.1 / ndisc_send_rs, decoded with dpkt (not netstack's codecs)."""
    e = dpkt.ethernet.Ethernet(frame)
    assert e.dst == bytes.fromhex("333300000002") and e.src == mac(HOST_MAC)
    ip = e.data
    assert ip.src == ip6(HOST_LL) and ip.dst == ip6("ff02::2")
    assert ip.hlim == 255 and ip.fc == 0 and ip.flow == 0
    body = bytes(ip.data)
    assert body[:2] == b"\x85\x00" and body[4:8] == bytes(4)
    assert body[8:] == b"\x01\x01" + mac(HOST_MAC)  # source link-layer address option


def _router_neigh(res: Result) -> list[dict]:
    return [{k: n[k] for k in ("dst", "dev", "lladdr", "state")}
            for n in json.loads(res.queries[QUERY] or "[]")]


def test_rs_bytes_and_router_entry_match_kernel(kernel: Kernel) -> None:
    del kernel  # only for the skip when this machine cannot be the oracle
    k = run_kernel(SCRIPT, [], [CAPTURE], [QUERY], SETTLE)
    n = run_netstack(SCRIPT, [], [CAPTURE], [QUERY], SETTLE, name="router_solicit.sh")
    k_rs, n_rs = solicitations(k), solicitations(n)
    # the kernel's MLD reports also count as traffic for the settle wait, so a slow run
    # can record the retransmission too: compare the first RS
    assert k_rs, k.frames[CAPTURE]
    check_rs(k_rs[0])
    assert n_rs[:1] == k_rs[:1]
    expected = [{"dst": HOST_LL, "dev": "v1", "lladdr": HOST_MAC, "state": ["STALE"]}]
    assert _router_neigh(k) == expected
    assert _router_neigh(n) == expected
