"""Test environment for the IPv4 datapath: a small fake control plane behind the contract
names (``ip_route_input``, ``ip_route_output``, ``Flowi4``, ``inet_select_addr``,
``inet_addr_type``) and a router topology.

The fake gives connected-subnet semantics: local addresses (input routes via ``lo`` with
RTCF_LOCAL), limited and subnet broadcasts, one route per configured prefix plus explicit
extra routes, forwarding per ``net.ipv4.conf.DEV.forwarding`` (off → an unreachable route
with ICMP code HOST_UNREACH, no route → NET_UNREACH), exactly the facts the datapath
consumes.  ``Flowi4`` stores addresses as ints like the real one.

Topology: router namespace ``r`` with ``v1r`` 10.0.1.254/24 ↔ ``v1h`` (namespace ``h1``)
and ``v2r`` 10.0.2.254/24 ↔ ``v2h`` (namespace ``h2``); permanent neighbours 10.0.1.1 and
10.0.2.1.  Every frame ``r`` transmits on a device is recorded; :meth:`Env.inject` sends a
frame from the far end so it arrives through veth like a real one.
"""
from __future__ import annotations

import errno
import struct
from typing import Any

from netstack.core.dev import dev_queue_xmit
from netstack.core.neighbour import NUD_PERMANENT, neigh_add
from netstack.core.world import World
from netstack.drivers import veth
from netstack.errors import KernelError
from netstack.ipv4 import af_inet
from netstack.packet.checksum import ip_fast_csum
from netstack.packet.udp import build_udp

RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST, RTN_MULTICAST, RTN_UNREACHABLE = 1, 2, 3, 5, 7
RTCF_BROADCAST = 0x10000000
RTCF_LOCAL = 0x80000000
MAC_R1 = bytes.fromhex("0200000001fe")
MAC_H1 = bytes.fromhex("020000000101")
MAC_R2 = bytes.fromhex("0200000002fe")
MAC_H2 = bytes.fromhex("020000000201")


def ip(s: str) -> bytes:
    return bytes(int(x) for x in s.split("."))


def _b(a: bytes | int) -> bytes:
    return a.to_bytes(4, "big") if isinstance(a, int) else bytes(a)


class FakeRt:
    """The ``Rtable`` fields the datapath reads."""

    def __init__(self, type_: int, dev: Any, gateway: bytes | None = None, flags: int = 0,
                 error: int | None = None, prefsrc: bytes | None = None,
                 mtu: int | None = None) -> None:
        self.type = type_
        self.dev = dev
        self.gateway = gateway
        self.flags = flags
        self.error = error
        self.prefsrc = prefsrc
        self.metrics: dict[str, int] = {"mtu": mtu} if mtu else {}

    def mtu(self) -> int:
        return self.metrics.get("mtu") or self.dev.mtu


class Flowi4:
    def __init__(self, daddr: bytes | int = 0, saddr: bytes | int = 0, tos: int = 0,
                 oif: int = 0, iif: int = 0, mark: int = 0, proto: int = 0, sport: int = 0,
                 dport: int = 0, flags: int = 0) -> None:
        self.daddr = daddr if isinstance(daddr, int) else int.from_bytes(daddr, "big")
        self.saddr = saddr if isinstance(saddr, int) else int.from_bytes(saddr, "big")
        self.tos, self.oif, self.iif, self.mark, self.proto = tos, oif, iif, mark, proto
        self.sport, self.dport, self.flags = sport, dport, flags


class FakeCP:
    """Addresses and routes per namespace, and the contract functions over them."""

    Flowi4 = Flowi4

    def __init__(self) -> None:
        self.addrs: dict[int, list[tuple[Any, bytes, int]]] = {}
        self.routes: dict[int, list[tuple[int, int, Any, bytes | None, int | None]]] = {}
        #: ip_route_input calls per namespace name
        self.inputs: dict[str, int] = {}

    # configuration
    def add_addr(self, net: Any, dev: Any, addr: str, plen: int) -> None:
        self.addrs.setdefault(id(net), []).append((dev, ip(addr), plen))
        self.add_route(net, addr, plen, dev)

    def add_route(self, net: Any, prefix: str, plen: int, dev: Any, gw: str | None = None,
                  mtu: int | None = None) -> None:
        m = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
        p = int.from_bytes(ip(prefix), "big") & m
        lst = self.routes.setdefault(id(net), [])
        lst.append((p, plen, dev, ip(gw) if gw else None, mtu))
        lst.sort(key=lambda r: -r[1])

    # helpers
    def _local(self, net: Any, a: bytes) -> Any:
        for dev, addr, _ in self.addrs.get(id(net), []):
            if addr == a:
                return dev
        return None

    def _bcast(self, net: Any, a: bytes) -> bool:
        if a == b"\xff" * 4:
            return True
        for _, addr, plen in self.addrs.get(id(net), []):
            m = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
            if int.from_bytes(a, "big") == (int.from_bytes(addr, "big") | (~m & 0xFFFFFFFF)):
                return True
        return False

    def _lookup(self, net: Any, a: bytes) -> Any:
        v = int.from_bytes(a, "big")
        for p, plen, dev, gw, mtu in self.routes.get(id(net), []):
            m = (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0
            if v & m == p:
                return dev, gw, mtu
        return None

    # contract
    def inet_addr_type(self, net: Any, a: bytes | int) -> int:
        a = _b(a)
        if self._local(net, a) is not None:
            return RTN_LOCAL
        if self._bcast(net, a):
            return RTN_BROADCAST
        if 224 <= a[0] < 240:
            return RTN_MULTICAST
        return RTN_UNICAST

    def inet_select_addr(self, net: Any, dev: Any, dst: Any, scope: int) -> bytes:
        for d, addr, _ in self.addrs.get(id(net), []):
            if d is dev:
                return addr
        for _, addr, _ in self.addrs.get(id(net), []):
            return addr
        return b"\0\0\0\0"

    def ip_route_input(self, net: Any, pkt: Any, daddr: bytes, saddr: bytes, tos: int,
                       dev: Any) -> str | None:
        self.inputs[net.name] = self.inputs.get(net.name, 0) + 1
        if saddr[0] == 0 or saddr[0] >= 224 or saddr[0] == 127:
            return "IP_INVALID_SOURCE"
        lo = net.get("lo")
        if self._bcast(net, daddr):
            pkt.dst = FakeRt(RTN_BROADCAST, lo, flags=RTCF_BROADCAST | RTCF_LOCAL)
            return None
        if self._local(net, daddr) is not None:
            pkt.dst = FakeRt(RTN_LOCAL, lo, flags=RTCF_LOCAL)
            return None
        fwd = net.sysctl.values.get(f"net.ipv4.conf.{dev.name}.forwarding", 0)
        if not fwd:
            pkt.dst = FakeRt(RTN_UNREACHABLE, lo, error=1)
            return None
        r = self._lookup(net, daddr)
        if r is None:
            pkt.dst = FakeRt(RTN_UNREACHABLE, lo, error=0)
            return None
        odev, gw, mtu = r
        pkt.dst = FakeRt(RTN_UNICAST, odev, gateway=gw, mtu=mtu)
        return None

    def ip_route_output(self, net: Any, fl4: Flowi4) -> FakeRt:
        daddr = _b(fl4.daddr)
        if self._local(net, daddr) is not None:
            if not fl4.saddr:
                fl4.saddr = int.from_bytes(daddr, "big")
            return FakeRt(RTN_LOCAL, net.get("lo"), flags=RTCF_LOCAL)
        r = self._lookup(net, daddr)
        if r is None:
            raise KernelError(errno.ENETUNREACH)
        odev, gw, mtu = r
        flags = RTCF_BROADCAST if self._bcast(net, daddr) else 0
        if not fl4.saddr:
            fl4.saddr = int.from_bytes(self.inet_select_addr(net, odev, daddr, 0), "big")
        return FakeRt(RTN_BROADCAST if flags else RTN_UNICAST, odev, gateway=gw, flags=flags,
                      mtu=mtu)


class Env:
    """The router topology on a fresh world with the fake control plane."""

    def __init__(self, monkeypatch: Any, forwarding: bool = True, seed: int = 0) -> None:
        cp = FakeCP()
        monkeypatch.setattr(af_inet, "route", cp)
        monkeypatch.setattr(af_inet, "devinet", cp)
        monkeypatch.setattr(af_inet, "fib", None)
        from netstack.ipv4 import arp
        monkeypatch.setattr(arp, "devinet", cp)
        monkeypatch.setattr(arp, "route", cp)
        monkeypatch.setattr(arp, "fib", None)
        self.cp = cp
        self.world = w = World(subsystems=["netstack.ipv4.af_inet"], seed=seed)
        self.r = r = w.netns_add("r")
        self.h1 = h1 = w.netns_add("h1")
        self.h2 = h2 = w.netns_add("h2")
        for net in (r, h1, h2):
            s = net.sysctl
            if "net.ipv4.conf.all.forwarding" not in s:
                s.register_conf("net.ipv4.conf", "forwarding", 0)
        self.v1r, self.v1h = veth.create_pair(r, "v1r", MAC_R1, h1, "v1h", MAC_H1)
        self.v2r, self.v2h = veth.create_pair(r, "v2r", MAC_R2, h2, "v2h", MAC_H2)
        self.set_forwarding(forwarding)
        cp.add_addr(r, self.v1r, "10.0.1.254", 24)
        cp.add_addr(r, self.v2r, "10.0.2.254", 24)
        for net in (r, h1, h2):
            for dev in list(net.devices.values()):
                net.dev_open(dev)
        tbl = r.ipv4.arp_tbl
        neigh_add(tbl, self.v1r, ip("10.0.1.1"), MAC_H1, state=NUD_PERMANENT)
        neigh_add(tbl, self.v2r, ip("10.0.2.1"), MAC_H2, state=NUD_PERMANENT)
        self.out: dict[str, list[bytes]] = {"v1r": [], "v2r": [], "lo": []}
        r.add_tx_tap(self.v1r, lambda p: self.out["v1r"].append(p.bytes()))
        r.add_tx_tap(self.v2r, lambda p: self.out["v2r"].append(p.bytes()))
        r.add_tx_tap(r.get("lo"), lambda p: self.out["lo"].append(p.bytes()))

    def set_forwarding(self, on: bool) -> None:
        s = self.r.sysctl
        for k in ("all", "default", "v1r", "v2r", "lo"):
            s.set(f"net.ipv4.conf.{k}.forwarding", int(on))

    def inject(self, frames: list[bytes], dev: str = "v1h") -> None:
        """Send frames from the host end of a veth into ``r``, as one softirq batch."""
        d = self.v1h if dev == "v1h" else self.v2h
        for f in frames:
            dev_queue_xmit(self.world.new_packet(f), d)
        self.world.run_until_idle()

    @property
    def mib(self) -> Any:
        return self.r.ipv4.mib

    @property
    def drops(self) -> dict[str, int]:
        return self.r.drops.as_dict()


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, ttl: int = 64, ident: int = 0,
         tos: int = 0, df: bool = False, mf: bool = False, frag_off: int = 0,
         options: bytes = b"", tot_len: int | None = None, check: int | None = None,
         version: int = 4, ihl: int | None = None) -> bytes:
    """An IPv4 datagram built with struct (every field overridable for malformed tests)."""
    hl = 20 + len(options)
    tot = hl + len(payload) if tot_len is None else tot_len
    fo = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_off >> 3)
    vihl = (version << 4) | ((hl >> 2) if ihl is None else ihl)
    h = bytearray(struct.pack("!BBHHHBBH4s4s", vihl, tos, tot, ident, fo, ttl, proto, 0,
                              ip(src), ip(dst)) + options)
    c = ip_fast_csum(h) if check is None else check
    h[10:12] = c.to_bytes(2, "big")
    return bytes(h) + payload


def udp4(src: str, dst: str, sport: int, dport: int, data: bytes, **kw: Any) -> bytes:
    seg = build_udp(sport, dport, data, src=ip(src), dst=ip(dst))
    return ipv4(src, dst, 17, seg, **kw)


def eth(dst: bytes, src: bytes, payload: bytes, ethertype: int = 0x0800) -> bytes:
    return dst + src + ethertype.to_bytes(2, "big") + payload


def from_h1(payload: bytes, dst_mac: bytes = MAC_R1) -> bytes:
    return eth(dst_mac, MAC_H1, payload)


def from_h2(payload: bytes, dst_mac: bytes = MAC_R2) -> bytes:
    return eth(dst_mac, MAC_H2, payload)
