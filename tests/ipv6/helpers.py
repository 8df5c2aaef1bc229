"""Shared fixtures for the IPv6 tests: worlds with only the IPv6 subsystem, veth pairs,
address/route helpers and frame capture."""
from __future__ import annotations

from netstack.core.world import World
from netstack.drivers import veth
from netstack.ipv6.addr import a6
from netstack.ipv6.addrconf import IFA_F_NODAD, Inet6IfAddr, inet6_add_addr
from netstack.ipv6.route import (Fib6Nexthop, Fib6Route, fib6_route_add)

SUBSYS = ["netstack.ipv6.af_inet6"]
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
MAC_C = bytes.fromhex("020000000003")
MAC_D = bytes.fromhex("020000000004")


def world(trace: bool = False) -> World:
    return World(subsystems=SUBSYS, trace=trace)


def pair(w: World, na: str, a: str, nb: str, b: str, mac_a: bytes = MAC_A,
         mac_b: bytes = MAC_B, up: bool = True):
    """A veth pair between namespaces ``na``/``nb`` (created if needed), both ends up."""
    nsa = w.namespaces.get(na) or (w.init_net if na == "" else w.netns_add(na))
    nsb = w.namespaces.get(nb) or (w.init_net if nb == "" else w.netns_add(nb))
    da, db = veth.create_pair(nsa, a, mac_a, nsb, b, mac_b)
    if up:
        for ns, d in ((nsa, da), (nsb, db)):
            ns.dev_open(ns.get("lo"))
            ns.dev_open(d)
    return nsa, da, nsb, db


def addr(net, dev, text: str, nodad: bool = True, **kw) -> Inet6IfAddr:
    a, _, plen = text.partition("/")
    return inet6_add_addr(net, dev, Inet6IfAddr(a6(a), int(plen or 128),
                                                flags=IFA_F_NODAD if nodad else 0, **kw))


def route(net, dst: str, via: str | None = None, dev=None, metric: int = 1024, **kw) -> None:
    a, _, plen = dst.partition("/")
    fib6_route_add(net, Fib6Route(a6(a), int(plen or 128), priority=metric,
                                  nexthops=[Fib6Nexthop(a6(via) if via else None, dev)], **kw),
                   excl=True)


def is_mld(frame: bytes) -> bool:
    """An Ethernet frame carrying MLD (ICMPv6 130-132/143 behind the hop-by-hop Router
    Alert header) — what every IPv6 host sends on link-up and on joins
    (net/ipv6/mcast.c); left out of captures as tests/kernel/compare.py does."""
    return len(frame) > 62 and frame[12:14] == b"\x86\xdd" and frame[20] == 0 \
        and frame[54] == 58 and frame[62] in (130, 131, 132, 143)


class _Frames(list):
    """A capture list that does not take MLD frames (see :func:`is_mld`)."""

    def append(self, frame: bytes) -> None:  # type: ignore[override]
        if not is_mld(frame):
            super().append(frame)


def capture(net, dev, mld: bool = False) -> list[bytes]:
    """Frames ``dev`` receives, from the Ethernet header on (as AF_PACKET sees them);
    MLD reports only with ``mld=True``."""
    got: list[bytes] = [] if mld else _Frames()
    net.add_rx_tap(dev, lambda p: got.append(bytes(p.buf[p.mac_header:p.tail])
                                             if p.mac_header >= 0 else p.bytes()))
    return got


def txcapture(net, dev, mld: bool = False) -> list[bytes]:
    got: list[bytes] = [] if mld else _Frames()
    net.add_tx_tap(dev, lambda p: got.append(p.bytes()))
    return got


def is_rs(frame: bytes) -> bool:
    """An Ethernet frame carrying an ICMPv6 Router Solicitation (type 133) right after
    the IPv6 header — what hosts send on their own once their link-local address is
    usable (addrconf_dad_completed), filtered like tests/kernel/compare.py does."""
    return len(frame) > 54 and frame[12:14] == b"\x86\xdd" and frame[20] == 58 \
        and frame[54] == 133


def no_rs(frames: list[bytes]) -> list[bytes]:
    """``frames`` without router solicitations (see :func:`is_rs`)."""
    return [f for f in frames if not is_rs(f)]


def inject(w: World, dev, frames: list[bytes]) -> None:
    """Transmit raw Ethernet frames out of ``dev`` (the peer receives them), then run."""
    from netstack.core.dev import dev_queue_xmit_list
    pkts = []
    for f in frames:
        p = w.new_packet(f)
        p.dev = dev
        pkts.append(p)
    dev_queue_xmit_list(dev, pkts)
    w.run_until_idle()


def eth(dst: bytes, src: bytes, payload: bytes) -> bytes:
    return dst + src + b"\x86\xdd" + payload


def host_router(trace: bool = False):
    """h (IPv6 disabled: the test is the host) -- veth -- r (2001:db8:1::fe/64, forwarding)
    -- veth (MTU 1280) -- h2 side (2001:db8:2::fe/64 on r; h2 has IPv6 disabled too).  Permanent
    neighbours on r for the hosts, as the oracle scenarios do."""
    from netstack.core.neighbour import neigh_add
    w = world(trace)
    # the knobs are set before the links come up, in the order of the kernel scenario
    # (tests/kernel/scenarios/ipv6_router.sh): a router that is not yet forwarding when
    # its link-local address becomes usable solicits routers like a host
    for name in ("h", "h2"):
        hn = w.netns_add(name)
        hn.sysctl.set("net.ipv6.conf.all.disable_ipv6", 1)
        hn.sysctl.set("net.ipv6.conf.default.disable_ipv6", 1)
    r0 = w.netns_add("r")
    r0.sysctl.set("net.ipv6.conf.all.forwarding", 1)
    r0.sysctl.set("net.ipv6.conf.all.accept_dad", 0)
    r0.sysctl.set("net.ipv6.conf.default.accept_dad", 0)
    h, vh, r, vr = pair(w, "h", "vh", "r", "vr", MAC_A, MAC_B)
    _, vr2, h2, vh2 = pair(w, "r", "vr2", "h2", "vh2", MAC_C, MAC_D)
    r.sysctl.set("net.ipv6.auto_flowlabels", 0)
    r.sysctl.set("net.ipv6.icmp.ratelimit", 0)
    vr2.mtu = 1280  # ip -n r link set v2r mtu 1280 (tests/kernel/scenarios/ipv6_router.sh)
    r.notify("CHANGEMTU", vr2)
    addr(r, vr, "2001:db8:1::fe/64")
    addr(r, vr2, "2001:db8:2::fe/64")
    neigh_add(r.ipv6.nd_tbl, vr, a6("2001:db8:1::1"), MAC_A)
    neigh_add(r.ipv6.nd_tbl, vr2, a6("2001:db8:2::1"), MAC_D)
    return w, h, vh, r, vr, vr2, h2, vh2
