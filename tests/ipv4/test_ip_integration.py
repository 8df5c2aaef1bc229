"""The IPv4 datapath over the real control plane (devinet/fib/route) and the real
neighbour/ARP code: the router scenario of tests/kernel (ipv4_router.sh) built through the
Python APIs."""
from __future__ import annotations

import pytest

pytest.importorskip("netstack.ipv4.route")

from netstack.core.dev import dev_queue_xmit  # noqa: E402
from netstack.core.neighbour import NUD_PERMANENT, neigh_add  # noqa: E402
from netstack.core.world import World  # noqa: E402
from netstack.drivers import veth  # noqa: E402
from netstack.ipv4 import devinet  # noqa: E402
from netstack.ipv4.ping import ping  # noqa: E402
from netstack.ipv4.udp import udp_socket  # noqa: E402
from netstack.packet.checksum import ip_fast_csum  # noqa: E402
from test_ip_env import MAC_H1, MAC_H2, MAC_R1, MAC_R2, from_h1, ip, ipv4, udp4  # noqa: E402


class Router:
    def __init__(self) -> None:
        self.world = w = World(subsystems=["netstack.ipv4.af_inet"])
        self.r = r = w.netns_add("r")
        h1 = w.netns_add("h1")
        h2 = w.netns_add("h2")
        r.sysctl.set("net.ipv4.ip_forward", 1)
        r.sysctl.set("net.ipv4.icmp_ratemask", 0)
        self.v1r, self.v1h = veth.create_pair(r, "v1r", MAC_R1, h1, "v1h", MAC_H1)
        self.v2r, self.v2h = veth.create_pair(r, "v2r", MAC_R2, h2, "v2h", MAC_H2)
        devinet.inet_add_addr(r, self.v1r, devinet.IfAddr(local=ip("10.0.1.254"), prefixlen=24))
        devinet.inet_add_addr(r, self.v2r, devinet.IfAddr(local=ip("10.0.2.254"), prefixlen=24))
        neigh_add(r.ipv4.arp_tbl, self.v1r, ip("10.0.1.1"), MAC_H1, state=NUD_PERMANENT)
        neigh_add(r.ipv4.arp_tbl, self.v2r, ip("10.0.2.1"), MAC_H2, state=NUD_PERMANENT)
        for net, devs in ((h1, [self.v1h]), (h2, [self.v2h]), (r, [r.get("lo"), self.v1r, self.v2r])):
            for d in devs:
                net.dev_open(d)
        self.out: dict[str, list[bytes]] = {"v1r": [], "v2r": []}
        r.add_tx_tap(self.v1r, lambda p: self.out["v1r"].append(p.bytes()))
        r.add_tx_tap(self.v2r, lambda p: self.out["v2r"].append(p.bytes()))

    def inject(self, frames: list[bytes]) -> None:
        for f in frames:
            dev_queue_xmit(self.world.new_packet(f), self.v1h)
        self.world.run_until_idle()


def test_forward_and_hint_with_real_control_plane():
    rt = Router()
    dgs = [udp4("10.0.1.1", "10.0.2.1", 40000, 7000, b"hello", ident=i) for i in range(5)]
    rt.inject([from_h1(d) for d in dgs])
    out = rt.out["v2r"]
    assert len(out) == 5
    for d, f in zip(dgs, out):
        assert f[:12] == MAC_H2 + MAC_R2 and f[14 + 8] == 63 and ip_fast_csum(f[14:34]) == 0
        assert f[14 + 12:] == d[12:]
    assert rt.r.ipv4.route_lookups == 1 and rt.r.ipv4.route_hints == 4
    assert rt.v2r.doorbells == 1


def test_icmp_errors_and_echo_with_real_control_plane():
    rt = Router()
    rt.inject([from_h1(udp4("10.0.1.1", "10.0.2.1", 1, 2, b"x", ttl=1)),
               from_h1(udp4("10.0.1.1", "10.0.2.254", 1, 9, b"closed")),
               from_h1(udp4("10.0.1.1", "192.0.2.1", 1, 2, b"nowhere"))])
    types = [(f[34], f[35], f[26:30]) for f in rt.out["v1r"]]
    assert types == [(11, 0, ip("10.0.1.254")), (3, 3, ip("10.0.2.254")),
                     (3, 0, ip("10.0.1.254"))]
    sk = ping(rt.r, "10.0.2.254", 42, 1, b"self")
    rt.world.run_until_idle()
    data, addr = sk.recvfrom()
    assert data[0] == 0 and data[8:] == b"self" and addr == ("10.0.2.254", 0)


def test_udp_socket_with_real_control_plane():
    rt = Router()
    sk = udp_socket(rt.r)
    sk.bind(("10.0.1.254", 53))
    rt.inject([from_h1(udp4("10.0.1.1", "10.0.1.254", 999, 53, b"query"))])
    assert sk.recvfrom() == (b"query", ("10.0.1.1", 999))
    sk.sendto(b"answer", ("10.0.1.1", 999))
    (f,) = rt.out["v1r"]
    assert f[14 + 12:14 + 20] == ip("10.0.1.254") + ip("10.0.1.1") and f[42:] == b"answer"


def test_forwarding_off_with_real_control_plane():
    rt = Router()
    rt.r.sysctl.set("net.ipv4.ip_forward", 0)
    rt.inject([from_h1(udp4("10.0.1.1", "10.0.2.1", 1, 2, b"x"))])
    assert rt.out["v2r"] == [] and rt.out["v1r"] == []
    assert rt.r.drops.as_dict() == {"IP_INADDRERRORS": 1}
    rt.inject([from_h1(ipv4("10.0.1.1", "10.0.1.254", 1, b"\x08\x00\xf7\xff\x00\x00\x00\x00"))])
    assert rt.out["v1r"][0][34] == 0


def test_redirect_with_backoff():
    """Forwarding back out of the input interface sends ICMP redirects with the
    ip_rt_send_redirect backoff (measured on the kernel: sends at t=0 ×3, +0.2 s, +0.03 s,
    +0.2 s give redirects for the 1st, 4th and 6th packet)."""
    from netstack.ipv4.fib import fib_route_add
    from netstack.ipv4.fib_semantics import FibNexthop, FibRoute
    rt = Router()
    neigh_add(rt.r.ipv4.arp_tbl, rt.v1r, ip("10.0.1.2"), bytes.fromhex("020000000102"),
              state=NUD_PERMANENT)
    fib_route_add(rt.r, FibRoute(dst=ip("10.0.3.0"), dst_len=24, protocol=3,
                                 nexthops=[FibNexthop(gw=ip("10.0.1.2"))]))
    for i, delay in enumerate((0, 0, 0, 0.2, 0.03, 0.2)):
        rt.world.advance(delay)
        rt.inject([from_h1(udp4("10.0.1.1", "10.0.3.5", 1, 2, b"r%d" % i, ident=i))])
    redirects = [f for f in rt.out["v1r"] if f[14 + 9] == 1]
    assert [f[-2:] for f in redirects] == [b"r0", b"r3", b"r5"]
    f = redirects[0]
    assert f[34:36] == b"\x05\x01" and f[38:42] == ip("10.0.1.2")
    assert f[42 + 8] == 63          # the quoted packet already had its TTL decremented
    assert len(rt.out["v1r"]) == 9


def test_unresolved_next_hop_gives_host_unreachable():
    """neigh_invalidate → arp error_report → icmp_send(HOST_UNREACH) for the queued,
    already TTL-decremented packet (tests/kernel/test_arp.py arp_unanswered)."""
    from netstack.core.neighbour import neigh_delete
    rt = Router()
    neigh_delete(rt.r.ipv4.arp_tbl, rt.v2r, ip("10.0.2.1"))
    lost = udp4("10.0.1.1", "10.0.2.1", 43100, 7310, b"nobody home", ident=0xB100)
    rt.inject([from_h1(lost)])
    assert rt.out["v1r"] == []
    rt.world.advance(3.5)
    assert len([f for f in rt.out["v2r"] if f[12:14] == b"\x08\x06"]) == 3
    (err,) = rt.out["v1r"]
    assert err[34:36] == b"\x03\x01"
    assert err[26:30] == ip("10.0.1.254") and err[30:34] == ip("10.0.1.1")
    quoted = err[42:]
    assert quoted[8] == 63 and quoted[12:] == lost[12:]
    assert rt.r.drops.as_dict().get("NEIGH_FAILED") == 1
