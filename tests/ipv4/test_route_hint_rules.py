"""Route-hint rules of the list receive path (net/ipv4/ip_input.c ``ip_extract_route_hint``
and route.c ``ip_route_use_hint``), end to end through the real control plane:

* a multipath route is never a hint (``IPSKB_MULTIPATH``): every packet is looked up;
* a local route is a hint, and ``ip_route_use_hint`` re-validates each packet's source
  against it (rp_filter drops a spoofed source even when the hint is reused);
* the per-sublist memo of accepted sources for a forwarding hint never lets a martian
  source through, and configuration changes between batches take effect.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("netstack.ipv4.route")

from netstack.api import Stack  # noqa: E402
from netstack.core.dev import dev_queue_xmit_list  # noqa: E402
from netstack.packet.ethernet import build_ethernet  # noqa: E402
from netstack.packet.ipv4 import build_ipv4  # noqa: E402
from netstack.packet.udp import build_udp  # noqa: E402

SETUP = """
ip netns add h1
ip netns add r
ip netns add h2
ip -n h1 link add eth0 address 02:00:00:00:01:01 type veth peer name r-h1 netns r address 02:00:00:00:01:fe
ip -n h2 link add eth0 address 02:00:00:00:02:02 type veth peer name r-h2 netns r address 02:00:00:00:02:fe
ip netns exec r sysctl -q -w net.ipv4.ip_forward=1
ip -n r addr add 10.0.1.254/24 dev r-h1
ip -n r addr add 10.0.2.254/24 dev r-h2
ip -n r neigh add 10.0.2.2 lladdr 02:00:00:00:02:02 dev r-h2 nud permanent
ip -n r neigh add 10.0.2.3 lladdr 02:00:00:00:02:02 dev r-h2 nud permanent
ip -n r link set lo up
ip -n r link set r-h1 up
ip -n r link set r-h2 up
ip -n h1 link set eth0 up
ip -n h2 link set eth0 up
"""
H1_MAC = bytes.fromhex("020000000101")
R_MAC = bytes.fromhex("0200000001fe")


def _a(s: str) -> bytes:
    return bytes(int(x) for x in s.split("."))


def frame(src: str, dst: str, sport: int = 1000, tos: int = 0) -> bytes:
    udp = build_udp(sport, 9, b"x" * 8, src=_a(src), dst=_a(dst))
    return build_ethernet(R_MAC, H1_MAC, 0x0800, build_ipv4(_a(src), _a(dst), 17, udp, tos=tos))


class Env:
    def __init__(self, extra: str = "") -> None:
        self.st = Stack()
        self.st.run_script(SETUP + extra, name="hint-setup")
        w = self.w = self.st.world
        self.r = w.netns("r")
        self.h1 = w.netns("h1").get("eth0")
        self.h2 = w.netns("h2").get("eth0")
        self.got: list[bytes] = []
        w.netns("h2").add_rx_tap(self.h2, self._tap)
        w.advance(5)  # let DAD and friends finish before counting
        self.got.clear()

    def _tap(self, pkt) -> None:  # type: ignore[no-untyped-def]
        if pkt.protocol == 0x0800:
            self.got.append(bytes(pkt.buf[pkt.mac_header:pkt.tail]))

    def send(self, frames: list[bytes]) -> None:
        """One list receive on r (all frames in one softirq batch)."""
        dev_queue_xmit_list(self.h1, [self.w.new_packet(f) for f in frames])
        self.w.run_until_idle()

    def counts(self) -> tuple[int, int]:
        ipv4 = self.r.ipv4
        return ipv4.route_lookups, ipv4.route_hints


def test_unicast_route_is_a_hint():
    e = Env()
    e.send([frame("10.0.1.1", "10.0.2.2", 1000 + i) for i in range(8)])
    assert len(e.got) == 8
    assert e.counts() == (1, 7)


def test_multipath_route_is_never_a_hint():
    e = Env("ip -n r route add 10.9.0.0/16 nexthop via 10.0.2.2 nexthop via 10.0.2.3\n")
    e.send([frame("10.0.1.1", "10.9.0.1", 1000 + i) for i in range(8)])
    assert len(e.got) == 8
    # each packet went through ip_route_input (fib_select_multipath), none took a hint
    assert e.counts() == (8, 0)
    # the single-path route right after it in the same batch is a hint again
    before = e.counts()
    e.send([frame("10.0.1.1", "10.9.0.1")] + [frame("10.0.1.1", "10.0.2.2")] * 4)
    after = e.counts()
    assert (after[0] - before[0], after[1] - before[1]) == (2, 3)


def test_local_route_is_a_hint_with_source_revalidated():
    e = Env()
    udp_in = e.r.ipv4.mib["UdpInDatagrams"] + e.r.ipv4.mib["UdpNoPorts"]
    e.send([frame("10.0.1.1", "10.0.1.254", 2000 + i) for i in range(6)])
    assert e.counts() == (1, 5)
    assert e.r.ipv4.mib["UdpInDatagrams"] + e.r.ipv4.mib["UdpNoPorts"] == udp_in + 6
    # strict rp_filter: 10.0.2.7 is reachable through r-h2, not r-h1.  The spoofed packet
    # shares daddr/tos with the hint, so the hint is tried and its source check drops it.
    e.r.sysctl.set("net.ipv4.conf.all.rp_filter", 1)
    drops = e.r.drops["IP_RPFILTER"]
    e.send([frame("10.0.1.1", "10.0.1.254"), frame("10.0.2.7", "10.0.1.254"),
            frame("10.0.1.1", "10.0.1.254")])
    assert e.r.drops["IP_RPFILTER"] == drops + 1
    assert e.counts() == (2, 6)  # route_hints counts accepted hints only
    assert e.r.ipv4.mib["TcpExtIPReversePathFilter"] >= 1


def test_forward_hint_never_passes_a_martian_source():
    e = Env()
    good = frame("10.0.1.1", "10.0.2.2")
    bad = [frame("224.0.0.9", "10.0.2.2"), frame("0.0.0.7", "10.0.2.2"),
           frame("255.255.255.255", "10.0.2.2"), frame("127.0.0.1", "10.0.2.2")]
    e.send([good, good] + [b for x in bad for b in (x, good)])
    assert len(e.got) == 2 + len(bad)
    assert e.r.drops["IP_INVALID_SOURCE"] == 3 and e.r.drops["IP_LOCALNET"] == 1
    assert e.counts() == (1, 1 + len(bad))  # the good packets after the first


def test_route_localnet_change_between_batches_takes_effect():
    e = Env()
    good = frame("10.0.1.1", "10.0.2.2")
    lo_src = frame("127.0.0.5", "10.0.2.2")
    e.send([good, lo_src, lo_src])
    assert len(e.got) == 1 and e.r.drops["IP_LOCALNET"] == 2
    e.r.sysctl.set("net.ipv4.conf.all.route_localnet", 1)
    e.send([good, lo_src, lo_src])
    assert len(e.got) == 4 and e.r.drops["IP_LOCALNET"] == 2
    e.r.sysctl.set("net.ipv4.conf.all.route_localnet", 0)
    e.send([good, lo_src, good])
    assert len(e.got) == 6 and e.r.drops["IP_LOCALNET"] == 3


def test_route_change_between_batches_takes_effect():
    e = Env()
    e.send([frame("10.0.1.1", "10.0.2.2")] * 3)
    assert len(e.got) == 3
    e.st.run_script("ip -n r route add prohibit 10.0.2.2/32\n", name="prohibit")
    e.send([frame("10.0.1.1", "10.0.2.2")] * 3)
    assert len(e.got) == 3
    e.st.run_script("ip -n r route del prohibit 10.0.2.2/32\n", name="unprohibit")
    e.send([frame("10.0.1.1", "10.0.2.2")] * 3)
    assert len(e.got) == 6


def test_tos_or_daddr_change_ends_the_hint():
    e = Env()
    e.send([frame("10.0.1.1", "10.0.2.2"), frame("10.0.1.1", "10.0.2.2", tos=0x10),
            frame("10.0.1.1", "10.0.2.3"), frame("10.0.1.1", "10.0.2.3")])
    assert len(e.got) == 4
    assert e.counts() == (3, 1)


@pytest.mark.parametrize("forwarding", [0, 1])
def test_error_route_sublist_equals_per_packet_ip_error(forwarding):
    """``ip_error_list`` (a sublist on an error route, e.g. h2 which has no address) does
    exactly what ``ip_error`` per packet does: same MIB counters, drop reasons and ICMP
    errors (rate limited per source when the device forwards)."""
    from netstack.ipv4.ip_input import ip_error, ip_error_list, ip_list_rcv_finish

    def run(batched: bool):  # type: ignore[no-untyped-def]
        # h2 gets an address and a way back to 10.0.1.0/24 so ICMP errors can be sent;
        # 192.0.2.1 has no route on h2.
        e = Env("ip -n h2 addr add 10.0.2.9/24 dev eth0\n"
                "ip -n h2 neigh add 10.0.2.254 lladdr 02:00:00:00:02:fe dev eth0 nud permanent\n"
                "ip -n h2 route add 10.0.1.0/24 via 10.0.2.254\n")
        h2net = e.w.netns("h2")
        h2net.sysctl.set("net.ipv4.ip_forward", forwarding)
        h2net.sysctl.set("net.ipv4.conf.eth0.forwarding", forwarding)
        sent: list[bytes] = []
        h2net.add_tx_tap(e.h2, lambda p: sent.append(p.bytes()))
        pkts = []
        for i in range(8):
            p = e.w.new_packet(frame("10.0.1.1", "192.0.2.1", 4000 + i)[14:])
            p.dev = e.h2
            p.protocol = 0x0800
            p.network_header = p.data
            pkts.append(p)
        ip_list_rcv_finish(h2net, pkts[:1], e.h2)  # a route for the others to share
        rt = pkts[0].dst
        for p in pkts[1:]:
            p.dst = rt
        if batched:
            ip_error_list(h2net, pkts[1:], rt)
        else:
            for p in pkts[1:]:
                ip_error(p)
        e.w.run_until_idle()
        mib = {k: v for k, v in h2net.ipv4.mib.items() if v}
        return mib, sorted(h2net.drops.as_dict().items()), sent
    batched = run(True)
    assert batched == run(False)
    reason = "IP_INNOROUTES" if forwarding else "IP_INADDRERRORS"
    assert dict(batched[1])[reason] == 8
    # with forwarding the ICMP net unreachables go out, limited by the token bucket
    assert (len(batched[2]) > 0) == bool(forwarding)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFF))
def test_forwarded_header_equals_ip_decrease_ttl(ttl, check, tos):
    """The forwarding loop's inline TTL/checksum update is ``ip_decrease_ttl``'s, for every
    checksum value (including the 0xFFFE/0xFFFF carry cases)."""
    from netstack.ipv4.ip_forward import ip_decrease_ttl
    e = _FWD_ENV[0] if _FWD_ENV else _FWD_ENV.append(Env()) or _FWD_ENV[0]
    f = bytearray(frame("10.0.1.1", "10.0.2.2"))
    f[14 + 1] = tos
    f[14 + 8] = ttl
    # choose the IP ID so that ``check`` is this header's valid checksum field
    f[14 + 10:14 + 12] = check.to_bytes(2, "big")
    f[14 + 4:14 + 6] = b"\0\0"
    s0 = sum(int.from_bytes(f[14 + i:16 + i], "big") for i in range(0, 20, 2))
    while s0 > 0xFFFF:
        s0 = (s0 & 0xFFFF) + (s0 >> 16)
    f[14 + 4:14 + 6] = (~s0 & 0xFFFF).to_bytes(2, "big")
    want = bytearray(f[14:])
    ip_decrease_ttl(want, 0)
    before = len(e.got)
    e.send([bytes(f)])
    assert len(e.got) == before + 1
    assert e.got[-1][14:] == bytes(want)


_FWD_ENV: list[Env] = []
