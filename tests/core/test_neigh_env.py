"""Shared fixtures for the neighbour-core tests: a protocol-neutral fake ``NeighOps``.

The core must not know ARP, so these tests drive it with a minimal protocol whose solicit
and error_report only record what they were asked to do (the ARP tests cover the real
protocol).  The world has two veth ends in one namespace: ``r0`` (the table's device)
and ``h0`` (its peer), and a tx tap on ``r0`` that records every frame leaving it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.neighbour import NeighTable, Neighbour, NUD_NOARP
from netstack.core.netdevice import IFF_NOARP, NetDevice
from netstack.core.world import World
from netstack.drivers import veth
from netstack.packet.skb import Packet

MAC_R = bytes.fromhex("020000000001")
MAC_H = bytes.fromhex("020000000002")
KEY = bytes([10, 0, 0, 2])


class FakeOps:
    """A protocol for the core: records solicitations and error reports."""

    family = 99
    key_len = 4
    sysctl_prefix = "net.ipv4.neigh"

    def __init__(self) -> None:
        self.solicits: list[tuple[int, bytes, int, int | None]] = []
        self.errors: list[int] = []
        self.redone: list[Packet] = []
        self.clock = None

    def hash(self, key: bytes, dev: NetDevice, hash_rnd: int) -> int:
        return ((int.from_bytes(key, "little") ^ dev.ifindex) * hash_rnd) & 0xFFFFFFFF

    def constructor(self, n: Neighbour) -> None:
        if n.dev.flags & IFF_NOARP:
            n.nud_state = NUD_NOARP
            n.ha = n.dev.address

    def solicit(self, n: Neighbour, pkt: Packet | None) -> None:
        self.solicits.append((n.tbl.clock.now, n.key, n.probes, None if pkt is None else pkt.id))

    def error_report(self, n: Neighbour, pkt: Packet) -> None:
        self.errors.append(pkt.id)
        kfree_skb_reason(pkt, "NEIGH_FAILED", n.tbl.net)

    def is_multicast(self, key: bytes) -> bool:
        return key[0] >= 224

    def proxy_redo(self, pkt: Packet) -> None:
        self.redone.append(pkt)

    def output_key(self, dev: NetDevice, key: bytes) -> bytes:
        return key


@dataclass
class Env:
    world: World
    tbl: NeighTable
    ops: FakeOps
    r0: NetDevice
    h0: NetDevice
    sent: list[bytes] = field(default_factory=list)

    @property
    def net(self):  # type: ignore[no-untyped-def]
        return self.world.init_net

    def ip_packet(self, tag: int, size: int = 20) -> Packet:
        """A fake IPv4 packet of ``size`` bytes whose byte 19 is ``tag``."""
        body = bytearray(size)
        body[0] = 0x45
        body[19] = tag & 0xFF
        p = self.world.new_packet(bytes(body))
        p.protocol = 0x0800
        p.reset_network_header()
        return p

    def now_s(self) -> float:
        return self.world.clock.now / 1e9


def make_env(seed: int = 0) -> Env:
    world = World(subsystems=[], seed=seed)
    net = world.init_net
    r0, h0 = veth.create_pair(net, "r0", MAC_R, net, "h0", MAC_H)
    net.dev_open(r0)
    net.dev_open(h0)
    ops = FakeOps()
    tbl = NeighTable(net, ops)
    env = Env(world, tbl, ops, r0, h0)
    net.add_tx_tap(r0, lambda p: env.sent.append(p.bytes()))
    return env
