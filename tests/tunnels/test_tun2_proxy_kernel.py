"""VXLAN ``proxy`` / ``rsc`` / ``l2miss`` / ``l3miss`` against the kernel
(drivers/net/vxlan/vxlan_core.c ``arp_reduce``, ``neigh_reduce``, ``route_shortcircuit``).

Topology: h1 --- v1r [br0 in r] vx0 ~~ VXLAN over v2r ~~ h2.  h1's frames are bridged into
vx0; proxy replies come back out of vx0 through the bridge to h1; tunnelled frames are
captured on h2.  Frames are compared byte for byte (outer IPv4 ID / checksum and UDP source
port / checksum masked, as in test_vxlan_kernel.py).
"""
from __future__ import annotations

import struct

import dpkt
import pytest

from kernel.cases import eth
from kernel.compare import is_noise
from kernel.oracle import Send, run_kernel
from tunnels.conftest import run_ns

H1MAC = "02:00:00:00:01:01"
PEER = "02:00:00:00:0a:01"
RMAC = "02:00:00:00:0b:01"
LOCALMAC = "02:00:00:00:0c:01"

BASE = """\
ip netns add h1
ip netns add h2
ip netns add r
ip netns exec h1 sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec h1 sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec h2 sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec h2 sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec r sysctl -w net.ipv6.conf.all.accept_dad=0
ip netns exec r sysctl -w net.ipv6.conf.default.accept_dad=0
ip -n r link add v1r index 11 address 02:00:00:00:01:fe type veth peer name v1h index 21 address 02:00:00:00:01:01 netns h1
ip -n r link add v2r index 12 address 02:00:00:00:02:fe type veth peer name v2h index 22 address 02:00:00:00:02:01 netns h2
ip netns exec r sysctl -w net.ipv6.conf.v1r.disable_ipv6=1
ip netns exec r sysctl -w net.ipv6.conf.v2r.disable_ipv6=1
ip -n r addr add 10.0.2.254/24 dev v2r
ip -n r neigh add 10.0.2.1 lladdr 02:00:00:00:02:01 dev v2r nud permanent
ip -n r link add br0 index 14 address 02:00:00:00:0e:fe type bridge
ip netns exec r sysctl -w net.ipv6.conf.br0.disable_ipv6=1
ip -n r link add vx0 index 13 address 02:00:00:00:0a:fe type vxlan id 42 remote 10.0.2.1 local 10.0.2.254 dev v2r dstport 4789 srcport 5000 5001 nolearning {opts}
ip -n r link set vx0 addrgenmode none
ip -n r link set v1r master br0
ip -n r link set vx0 master br0
ip -n r neigh add 192.168.0.1 lladdr 02:00:00:00:0a:01 dev vx0 nud permanent
ip -n r neigh add 192.168.0.2 lladdr 02:00:00:00:0c:01 dev vx0 nud permanent
ip -n r neigh add 192.168.0.3 lladdr 02:00:00:00:0a:03 dev vx0 nud noarp
ip -n r neigh add 2001:db8:a::1 lladdr 02:00:00:00:0a:01 dev vx0 nud permanent
ip -n h1 link set v1h up
ip -n h2 link set v2h up
ip -n r link set v1r up
ip -n r link set v2r up
ip -n r link set vx0 up
ip -n r link set br0 up
{extra}"""

CAPS = [("h1", "v1h"), ("h2", "v2h")]


def scr(opts: str, extra: str = "") -> str:
    return BASE.format(opts=opts, extra=extra)


def arp_req(tpa: str, spa: str = "192.168.0.100", op: int = 1, hrd: int = 1) -> bytes:
    a = dpkt.arp.ARP(op=op, hrd=hrd, sha=bytes.fromhex(H1MAC.replace(":", "")),
                     spa=bytes(map(int, spa.split("."))), tha=b"\0" * 6,
                     tpa=bytes(map(int, tpa.split("."))))
    return eth("ff:ff:ff:ff:ff:ff", H1MAC, 0x0806, bytes(a))


def ns6(target: str, src: str = "2001:db8:a::64", slla: bool = True, tclass: int = 0,
        dst_mac: str = "33:33:ff:00:00:01", zero_opt: bool = False) -> bytes:
    """A neighbour solicitation built with struct/dpkt checksum (independent of netstack)."""
    import ipaddress
    t = ipaddress.IPv6Address(target).packed
    s = ipaddress.IPv6Address(src).packed
    d = ipaddress.IPv6Address("ff02::1:ff00:0").packed[:13] + t[13:]
    body = struct.pack("!BBHI", 135, 0, 0, 0) + t
    if zero_opt:
        body += bytes((1, 0)) + bytes(6)
    elif slla:
        body += bytes((1, 1)) + bytes.fromhex(H1MAC.replace(":", ""))
    ph = s + d + struct.pack("!IxxxB", len(body), 58)
    c = dpkt.in_cksum(ph + body)
    body = body[:2] + struct.pack("!H", c) + body[4:]
    ip6 = struct.pack("!IHBB", (6 << 28) | (tclass << 20) | 0x12345, len(body), 58, 255) + s + d
    return eth(dst_mac, H1MAC, 0x86DD, ip6 + body)


def ip_to(dst_mac: str, dst_ip: str) -> bytes:
    u = dpkt.udp.UDP(sport=1111, dport=2222, ulen=8 + 5, data=b"hello")
    ip = dpkt.ip.IP(src=bytes([192, 168, 0, 100]), dst=bytes(map(int, dst_ip.split("."))),
                    p=17, ttl=64, id=0x4242, data=u)
    return eth(dst_mac, H1MAC, 0x0800, bytes(ip))


def mask(frame: bytes) -> bytes:
    b = bytearray(frame)
    if b[12:14] == b"\x08\x00" and len(b) > 42 and b[23] == 17 and \
            (b[36] << 8 | b[37]) == 4789:
        b[18:20] = b"\0\0"
        b[24:26] = b"\0\0"
        b[34:36] = b"\0\0"
        b[40:42] = b"\0\0"
    return bytes(b)


_kcache: dict[str, object] = {}


def _noise(f: bytes) -> bool:
    """Kernel timer traffic: IPv6 control (``is_noise``), IGMP — and br0's IGMP reports
    flooded into vx0 and tunnelled (inner IPv4 protocol 2 behind the VXLAN header)."""
    if is_noise(f) or (f[12:14] == b"\x08\x00" and f[23] == 2):
        return True
    return len(f) > 74 and f[12:14] == b"\x08\x00" and f[23] == 17 and \
        f[62:64] == b"\x08\x00" and f[73] == 2


def both(name: str, script: str, sends: list[Send], queries: list[str] = ()):  # type: ignore[assignment]
    if name not in _kcache:
        _kcache[name] = run_kernel(script, sends, CAPS, list(queries), 0.1)
    k = _kcache[name]
    n, st = run_ns(script, sends, CAPS, [])
    for res in (k, n):
        for key in res.frames:
            res.frames[key] = [mask(f) for f in res.frames[key] if not _noise(f)]
    return k, n, st


PROXY_SENDS = [
    Send("h1", "v1h", arp_req("192.168.0.1")),       # answered (permanent)
    Send("h1", "v1h", arp_req("192.168.0.7")),       # unknown: consumed
    Send("h1", "v1h", arp_req("192.168.0.3")),       # NOARP entry: answered
    Send("h1", "v1h", arp_req("192.168.0.1", op=2)),  # a reply: consumed
    Send("h1", "v1h", arp_req("127.0.0.1")),         # loopback target: consumed
    Send("h1", "v1h", ns6("2001:db8:a::1")),         # NA to the SLLA
    Send("h1", "v1h", ns6("2001:db8:a::1", slla=False, tclass=0xB8,
                          dst_mac="02:00:00:00:0a:01")),  # NA to the Ethernet source
    Send("h1", "v1h", ns6("2001:db8:a::1", zero_opt=True)),  # zero-length option: nothing
    Send("h1", "v1h", ns6("2001:db8:a::9")),         # unknown target: consumed
    Send("h1", "v1h", ip_to(PEER, "192.168.0.1")),   # not ARP/NS: tunnelled
]


def test_proxy_matches_kernel(kernel_ok: None) -> None:
    """ARP requests and NS answered from vx0's neighbour entries, everything ARP/NS
    consumed (never tunnelled), other traffic tunnelled."""
    k, n, _ = both("proxy", scr("proxy"), PROXY_SENDS)
    kh1, kh2 = k.frames[("h1", "v1h")], k.frames[("h2", "v2h")]
    assert len(kh1) == 4 and len(kh2) == 1, (len(kh1), len(kh2))
    assert n.frames[("h1", "v1h")] == kh1
    assert n.frames[("h2", "v2h")] == kh2


def test_without_proxy_arp_is_tunnelled(kernel_ok: None) -> None:
    k, n, _ = both("noproxy", scr(""), PROXY_SENDS[:2])
    assert len(k.frames[("h2", "v2h")]) == 2 and k.frames[("h1", "v1h")] == []
    assert n.frames == k.frames


def test_proxy_skips_bridge_local_neighbour(kernel_ok: None) -> None:
    """A neighbour whose MAC has an FDB entry with the any address as first remote is
    bridge-local: no answer."""
    extra = "bridge -n r fdb add 02:00:00:00:0c:01 dev vx0 dst 0.0.0.0\n"
    k, n, _ = both("proxy_local", scr("proxy", extra), [Send("h1", "v1h",
                                                             arp_req("192.168.0.2"))])
    assert k.frames[("h1", "v1h")] == [] == n.frames[("h1", "v1h")]
    assert k.frames[("h2", "v2h")] == [] == n.frames[("h2", "v2h")]


RSC_EXTRA = """\
bridge -n r fdb add 02:00:00:00:0b:01 dev vx0 dst 10.0.2.1 router
bridge -n r fdb add 02:00:00:00:0a:01 dev vx0 dst 10.0.2.1 vni 77
"""
RSC_SENDS = [
    Send("h1", "v1h", ip_to(RMAC, "192.168.0.1")),   # re-addressed to PEER (VNI 77)
    Send("h1", "v1h", ip_to(RMAC, "192.168.0.9")),   # no neighbour: unchanged
    Send("h1", "v1h", ip_to(RMAC, "192.168.0.3")),   # re-addressed, default remote
    Send("h1", "v1h", ip_to(PEER, "192.168.0.3")),   # not a router entry: unchanged
]


@pytest.mark.parametrize("opts", ["rsc", "rsc l3miss", ""])
def test_rsc_matches_kernel(kernel_ok: None, opts: str) -> None:
    k, n, _ = both("rsc" + opts, scr(opts, RSC_EXTRA), RSC_SENDS)
    kh2 = k.frames[("h2", "v2h")]
    assert len(kh2) == 4
    inner = [f[50:62] for f in kh2]
    if "rsc" in opts:
        assert inner[0][:6] == bytes.fromhex("02000000 0a01".replace(" ", ""))
    assert n.frames == k.frames


def test_rsc_to_a_bridge_local_neighbour_matches_kernel(kernel_ok: None) -> None:
    """Short circuit to a MAC whose remote is the any address: ``vxlan_encap_bypass`` back
    into vx0, so the bridge delivers the re-addressed frame to h1."""
    extra = RSC_EXTRA + "bridge -n r fdb add 02:00:00:00:0c:01 dev vx0 dst 0.0.0.0\n" + \
        "bridge -n r fdb add 02:00:00:00:0c:01 dev v1r master static\n"
    k, n, _ = both("rsc_local", scr("rsc", extra), [Send("h1", "v1h",
                                                         ip_to(RMAC, "192.168.0.2"))])
    assert len(k.frames[("h1", "v1h")]) == 1
    assert n.frames == k.frames


def test_l2miss_matches_kernel_datapath(kernel_ok: None) -> None:
    """Without a default remote, an unknown unicast MAC is dropped (tx_dropped) — the
    notification is the only difference l2miss makes; netstack records it."""
    s = scr("l2miss").replace("remote 10.0.2.1 ", "").replace(
        "ip -n r link set vx0 addrgenmode none\n",
        "ip netns exec r sysctl -w net.ipv6.conf.vx0.disable_ipv6=1\n").replace(
        "ip -n r neigh add 2001:db8:a::1 lladdr 02:00:00:00:0a:01 dev vx0 nud permanent\n", "")
    q = ["ip -n r -s -j link show vx0", "ip -n r -s -j link show v1r"]
    k, n, st = both("l2miss", s, [Send("h1", "v1h", ip_to(PEER, "192.168.0.1")),
                                  Send("h1", "v1h", ip_to("02:00:00:00:0d:01", "192.168.0.1"))],
                    q)
    import json
    # br0's own IGMP reports (kernel timers, not modelled) are flooded to v1r and to vx0,
    # where they are dropped too: subtract them as counted on v1r
    kdrop = json.loads(k.queries[q[0]])[0]["stats64"]["tx"]["dropped"]
    knoise = json.loads(k.queries[q[1]])[0]["stats64"]["tx"]["packets"]
    vx0 = st._dev("r", "vx0")
    assert vx0.stats.tx_dropped == kdrop - knoise == 2
    assert n.frames == k.frames
    assert vx0.misses == [("l2miss", bytes.fromhex("020000000a01")),
                          ("l2miss", bytes.fromhex("020000000d01"))]
    assert vx0.extra_stats["l2miss"] == 2
