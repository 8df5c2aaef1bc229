"""Test environment for ARP: a small fake IPv4 control plane behind the contract names.

ARP talks to the control plane only through ``inet_addr_type``, ``inet_select_addr``,
``inet_addrs``, ``ip_route_input``, ``ip_route_output`` and ``Flowi4``; the fakes below
give those functions connected-subnet semantics (local addresses, subnet broadcasts, one
route per configured prefix plus explicit extra routes), which is all ARP relies on.

Topology: namespace ``r`` (the host under test, ``ip_ptr`` set on its devices) has
``r0`` ↔ ``h0`` (namespace ``h``) and ``r1`` ↔ ``g0`` (namespace ``g``).  Every frame
``r`` transmits is recorded per device; :meth:`ArpEnv.inject` sends a frame from the far
end so it arrives through veth and ``eth_type_trans`` like a real one.
"""
from __future__ import annotations

import errno
import sys
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from netstack.core.dev import dev_queue_xmit
from netstack.core.net_namespace import Net
from netstack.core.netdevice import NetDevice
from netstack.core.world import World
from netstack.drivers import veth
from netstack.errors import KernelError
from netstack.ipv4 import arp

RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST, RTN_MULTICAST = 1, 2, 3, 5
MAC_R0 = bytes.fromhex("02000000aa00")
MAC_R1 = bytes.fromhex("02000000aa01")
MAC_H = bytes.fromhex("02000000bb00")
MAC_G = bytes.fromhex("02000000cc00")
BCAST = b"\xff" * 6


def ip(s: str) -> bytes:
    return bytes(int(x) for x in s.split("."))


def _b(a: bytes | int) -> bytes:
    return a.to_bytes(4, "big") if isinstance(a, int) else bytes(a)


@dataclass
class IfAddr:
    """The contract's ``IfAddr`` fields ARP reads."""

    local: bytes
    prefixlen: int
    address: bytes = b""
    scope: int = 0

    def __post_init__(self) -> None:
        if not self.address:
            self.address = self.local

    def contains(self, a: bytes) -> bool:
        m = (0xFFFFFFFF << (32 - self.prefixlen)) & 0xFFFFFFFF if self.prefixlen else 0
        return (int.from_bytes(a, "big") & m) == (int.from_bytes(self.address, "big") & m)

    def bcast(self) -> bytes:
        m = (0xFFFFFFFF << (32 - self.prefixlen)) & 0xFFFFFFFF
        return ((int.from_bytes(self.address, "big") & m) | (~m & 0xFFFFFFFF)).to_bytes(4, "big")


@dataclass
class Rt:
    """The ``Rtable`` fields ARP reads."""

    type: int
    dev: NetDevice | None


class Flowi4:
    def __init__(self, daddr: bytes = b"", saddr: bytes = b"", tos: int = 0, oif: int = 0,
                 **_: Any) -> None:
        self.daddr, self.saddr, self.tos, self.oif = daddr, saddr, tos, oif


class FakeDevinet:
    def __init__(self) -> None:
        self.addrs: dict[int, list[IfAddr]] = {}   # id(dev) -> addresses
        self.select_calls: list[tuple[str, bytes, int]] = []

    def inet_addrs(self, dev: NetDevice) -> list[IfAddr]:
        return self.addrs.get(id(dev), [])

    def _all(self, net: Net):  # type: ignore[no-untyped-def]
        for d in net.devices.values():
            for ifa in self.addrs.get(id(d), []):
                yield d, ifa

    def inet_addr_type(self, net: Net, addr: bytes | int) -> int:
        a = _b(addr)
        if a in (b"\0\0\0\0", b"\xff" * 4):
            return RTN_BROADCAST
        if a[0] >> 4 == 0xE:
            return RTN_MULTICAST
        for _, ifa in self._all(net):
            if ifa.local == a:
                return RTN_LOCAL
            if ifa.bcast() == a:
                return RTN_BROADCAST
        return RTN_UNICAST

    def inet_select_addr(self, net: Net, dev: NetDevice, dst: bytes, scope: int) -> bytes:
        self.select_calls.append((dev.name, bytes(dst), scope))
        cands = [i for i in self.inet_addrs(dev) if i.scope <= scope]
        for ifa in cands:
            if ifa.contains(dst):
                return ifa.local
        if cands:
            return cands[0].local
        for _, ifa in self._all(net):
            if ifa.scope <= scope:
                return ifa.local
        return b"\0\0\0\0"


class FakeRoute:
    Flowi4 = Flowi4

    def __init__(self, devinet: FakeDevinet) -> None:
        self.devinet = devinet
        self.extra: list[tuple[bytes, int, NetDevice]] = []

    def _lookup(self, net: Net, daddr: bytes) -> Rt | None:
        t = self.devinet.inet_addr_type(net, daddr)
        if t == RTN_LOCAL:
            return Rt(RTN_LOCAL, net.get("lo"))
        for d, ifa in self.devinet._all(net):
            if ifa.contains(daddr):
                return Rt(RTN_BROADCAST if t == RTN_BROADCAST else RTN_UNICAST, d)
        for pfx, plen, d in self.extra:
            if IfAddr(pfx, plen).contains(daddr):
                return Rt(RTN_UNICAST, d)
        return None

    def ip_route_input(self, net: Net, pkt: Any, daddr: bytes, saddr: bytes, tos: int,
                       dev: NetDevice) -> str | None:
        rt = self._lookup(net, _b(daddr))
        if rt is None:
            return "IP_INNOROUTES"
        pkt.dst = rt
        return None

    def ip_route_output(self, net: Net, fl4: Flowi4) -> Rt:
        rt = self._lookup(net, _b(fl4.daddr))
        if rt is None:
            raise KernelError(errno.ENETUNREACH)
        return rt


class FakeIcmp:
    def __init__(self) -> None:
        self.sent: list[tuple[int, int, int, int]] = []

    def icmp_send(self, pkt: Any, t: int, c: int, info: int) -> None:
        self.sent.append((pkt.id, t, c, info))


def register(world: World) -> None:
    """Used as a World subsystem: ARP's packet type/notifier and a pernet init standing in
    for af_inet's (``net.ipv4`` + the devinet knobs ARP reads, then ``arp_init``)."""
    arp.arp_register(world)

    def pernet(net: Net) -> None:
        net.ipv4 = SimpleNamespace()
        for name in ("forwarding", "route_localnet"):
            net.sysctl.register_conf("net.ipv4.conf", name, 0)
        arp.arp_init(net)

    world.pernet_inits.append(pernet)


@dataclass
class ArpEnv:
    world: World
    r: Net
    h: Net
    g: Net
    r0: NetDevice
    r1: NetDevice
    h0: NetDevice
    g0: NetDevice
    devinet: FakeDevinet
    route: FakeRoute
    icmp: FakeIcmp
    out: dict[str, list[bytes]] = field(default_factory=dict)

    @property
    def tbl(self):  # type: ignore[no-untyped-def]
        return self.r.ipv4.arp_tbl

    def add_addr(self, dev: NetDevice, addr: str, plen: int, scope: int = 0) -> None:
        self.devinet.addrs.setdefault(id(dev), []).append(IfAddr(ip(addr), plen, scope=scope))

    def inject(self, far: NetDevice, frame: bytes) -> None:
        """Send ``frame`` from the far end of a veth and let the host process it."""
        pkt = self.world.new_packet(frame)
        dev_queue_xmit(pkt, far)
        self.world.run_until_idle()

    def sysctl(self, key: str, value: int) -> None:
        self.r.sysctl.set(key, str(value))

    def take(self, dev: str) -> list[bytes]:
        frames = self.out.get(dev, [])
        self.out[dev] = []
        return frames


def make_env(monkeypatch: Any, seed: int = 0) -> ArpEnv:
    devinet = FakeDevinet()
    route = FakeRoute(devinet)
    icmp = FakeIcmp()
    monkeypatch.setattr(arp, "devinet", devinet)
    monkeypatch.setattr(arp, "route", route)
    monkeypatch.setattr(arp, "fib", None)
    monkeypatch.setattr(arp, "icmp", icmp)
    world = World(subsystems=[__name__], seed=seed)
    r, h, g = world.netns_add("r"), world.netns_add("h"), world.netns_add("g")
    r0, h0 = veth.create_pair(r, "r0", MAC_R0, h, "h0", MAC_H)
    r1, g0 = veth.create_pair(r, "r1", MAC_R1, g, "g0", MAC_G)
    for d in r.devices.values():
        d.ip_ptr = SimpleNamespace()
    env = ArpEnv(world, r, h, g, r0, r1, h0, g0, devinet, route, icmp)
    for d in (r0, r1, h0, g0):
        d.net.dev_open(d)  # type: ignore[union-attr]
    for d in (r0, r1):
        r.add_tx_tap(d, lambda p, n=d.name: env.out.setdefault(n, []).append(p.bytes()))
    return env


def eth(dst: bytes, src: bytes, proto: int, payload: bytes) -> bytes:
    return dst + src + proto.to_bytes(2, "big") + payload


def arp_pkt(op: int, sha: bytes, sip: str, tha: bytes, tip: str, hrd: int = 1,
            pro: int = 0x0800, hln: int = 6, pln: int = 4) -> bytes:
    return (hrd.to_bytes(2, "big") + pro.to_bytes(2, "big") + bytes((hln, pln))
            + op.to_bytes(2, "big") + sha + ip(sip) + tha + ip(tip))


def arp_frame(dst: bytes, src: bytes, op: int, sha: bytes, sip: str, tha: bytes, tip: str) -> bytes:
    return eth(dst, src, 0x0806, arp_pkt(op, sha, sip, tha, tip))


# make the module importable by name for World(subsystems=[...]) whichever way pytest
# imported it
sys.modules.setdefault(__name__, sys.modules[__name__])
