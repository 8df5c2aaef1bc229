"""ARP with the real IPv4 stack (af_inet, devinet/fib/route, ip_output, ping): two
namespaces on a veth, addresses configured through devinet, traffic from ping sockets."""
from __future__ import annotations

import pytest

pytest.importorskip("netstack.ipv4.devinet")
pytest.importorskip("netstack.ipv4.ping")

from netstack.core import neighbour as nb  # noqa: E402
from netstack.core.world import World  # noqa: E402
from netstack.drivers import veth  # noqa: E402
from netstack.ipv4 import devinet  # noqa: E402
from netstack.ipv4.ping import ping  # noqa: E402

MAC_A = bytes.fromhex("02000000aa00")
MAC_B = bytes.fromhex("02000000bb00")
S = 1_000_000_000


def ip(s: str) -> bytes:
    return bytes(int(x) for x in s.split("."))


def topo():  # type: ignore[no-untyped-def]
    w = World(subsystems=["netstack.ipv4.af_inet"])
    a, b = w.netns_add("a"), w.netns_add("b")
    a0, b0 = veth.create_pair(a, "a0", MAC_A, b, "b0", MAC_B)
    for d in (a0, b0, a.get("lo"), b.get("lo")):
        d.net.dev_open(d)
    devinet.inet_add_addr(a, a0, devinet.IfAddr(local=ip("10.0.0.1"), prefixlen=24))
    devinet.inet_add_addr(b, b0, devinet.IfAddr(local=ip("10.0.0.2"), prefixlen=24))
    frames: list[bytes] = []
    a.add_tx_tap(a0, lambda p: frames.append(p.bytes()))
    return w, a, b, a0, b0, frames


def test_ping_resolves_then_replies() -> None:
    w, a, b, a0, b0, frames = topo()
    sk = ping(a, "10.0.0.2", 77, 1, b"x")
    w.run_until_idle()
    # request (42 bytes, no padding), then the queued echo request, in that order
    assert frames[0] == (b"\xff" * 6 + MAC_A + b"\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01"
                         + MAC_A + ip("10.0.0.1") + bytes(6) + ip("10.0.0.2"))
    assert frames[1][:14] == MAC_B + MAC_A + b"\x08\x00"
    assert sk.recvfrom() is not None
    na = nb.neigh_lookup(a.ipv4.arp_tbl, a0, ip("10.0.0.2"))
    nbb = nb.neigh_lookup(b.ipv4.arp_tbl, b0, ip("10.0.0.1"))
    assert (na.nud_state, na.ha) == (nb.NUD_REACHABLE, MAC_B)
    # b learnt a from the request (STALE), then used it for the reply (DELAY)
    assert (nbb.nud_state, nbb.ha) == (nb.NUD_DELAY, MAC_A)
    bframes: list[bytes] = []
    b.add_tx_tap(b0, lambda p: bframes.append(p.bytes()))
    w.advance(5.5)
    # at 5 s DELAY → PROBE: a unicast request to the cached MAC, which a answers at
    # once, so the entry is REACHABLE again, confirmed at 5 s
    assert bframes == [MAC_A + MAC_B + b"\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01" + MAC_B
                       + ip("10.0.0.2") + bytes(6) + ip("10.0.0.1")]
    assert nbb.nud_state == nb.NUD_REACHABLE and nbb.confirmed == 5 * S


def test_unanswered_three_requests_then_failed() -> None:
    w, a, b, a0, b0, frames = topo()
    ping(a, "10.0.0.9", 78, 1)
    w.run_until_idle()
    w.advance(2.5)
    reqs = [f for f in frames if f[12:14] == b"\x08\x06"]
    assert len(reqs) == 3 and all(f[38:42] == ip("10.0.0.9") for f in reqs)
    w.advance(0.6)
    n = nb.neigh_lookup(a.ipv4.arp_tbl, a0, ip("10.0.0.9"))
    assert n.nud_state == nb.NUD_FAILED
    assert a.drops["NEIGH_FAILED"] == 1


def test_link_down_flushes_permanent_entries() -> None:
    w, a, b, a0, b0, frames = topo()
    nb.neigh_add(a.ipv4.arp_tbl, a0, ip("10.0.0.7"), MAC_B)
    a.dev_close(a0)
    assert nb.neigh_lookup(a.ipv4.arp_tbl, a0, ip("10.0.0.7")) is None


def test_arp_notify_gratuitous_on_up() -> None:
    w, a, b, a0, b0, frames = topo()
    a.sysctl.set("net.ipv4.conf.a0.arp_notify", "1")
    a.dev_close(a0)
    frames.clear()
    a.dev_open(a0)
    assert frames == [b"\xff" * 6 + MAC_A + b"\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01"
                      + MAC_A + ip("10.0.0.1") + bytes(6) + ip("10.0.0.1")]
