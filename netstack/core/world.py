"""The simulated machine: virtual time, namespaces and the softirq loop.

Why a World object instead of module globals: several independent simulations (tests,
sharded replays) must coexist in one process, and "no global state outside a namespace"
means the only shared things are those a real machine shares between its namespaces —
time, the CPU's softirq backlog, and the static protocol registrations (``ptype_base``,
netdevice notifiers, pernet init hooks), which are configuration, not packet state.

Processing model: a frame handed to ``netif_rx`` waits in :attr:`World.backlog`; the loop
drains it in batches of ``dev_weight`` (64) packets as ``net_rx_action`` would, calling
``netif_receive_skb_list`` per batch.  Timers (neighbour, ICMP, reassembly …) fire in
virtual-time order between batches.  Everything is single-threaded and deterministic.
"""
from __future__ import annotations

import importlib
import itertools
import random
from collections import deque
from typing import TYPE_CHECKING, Callable, NamedTuple

from netstack.core.clock import NSEC_PER_SEC, VirtualClock
from netstack.core.dev import netif_receive_bursts, netif_receive_skb_list
from netstack.core.net_namespace import Net
from netstack.core.trace import Tracer
from netstack.packet.skb import Packet
from netstack.packet.skb_burst import SkbBurst

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.dev import ListHandler
    from netstack.core.netdevice import NetDevice

#: Protocol modules registered in every world (each has ``register(world)``).
SUBSYSTEMS: list[str] = ["netstack.ipv4.af_inet", "netstack.ipv6.af_inet6",
                         "netstack.netfilter.conntrack", "netstack.netfilter.nat",
                         "netstack.ipv4.igmp"]

#: ``net.core.dev_weight``: packets per backlog poll.
DEV_WEIGHT = 64


class Frame(NamedTuple):
    """A captured frame: virtual receive time and the bytes from the MAC header on."""

    ts_ns: int
    data: bytes


class NetnsError(Exception):
    """An ``ip netns`` failure, with iproute2's message."""


class World:
    """One simulated host kernel: time, namespaces, the backlog, protocol registrations."""

    def __init__(self, trace: bool = False, trace_sink: Callable[[str], None] | None = None,
                 seed: int = 0, subsystems: list[str] | None = None) -> None:
        self.clock = VirtualClock()
        self.backlog: deque[Packet | SkbBurst] = deque()
        self.ptype_base: dict[int, ListHandler] = {}
        self.netdev_notifiers: list[Callable[[str, NetDevice], None]] = []
        self.pernet_inits: list[Callable[[Net], None]] = []
        self.pernet_exits: list[Callable[[Net], None]] = []
        #: Address notifier chains (net/ipv4/devinet.c ``inetaddr_chain`` and
        #: ``inetaddr_validator_chain``, net/ipv6/addrconf.c ``inet6addr_chain`` and
        #: ``inet6addr_validator_chain``): ``fn(event, dev, addr)`` / ``fn(dev, addr)``;
        #: a validator refuses an address by raising KernelError (ipvlan's duplicates).
        self.inetaddr_chain: list[Callable[..., None]] = []
        self.inetaddr_validator_chain: list[Callable[..., None]] = []
        self.inet6addr_chain: list[Callable[..., None]] = []
        self.inet6addr_validator_chain: list[Callable[..., None]] = []
        self.tracer: Tracer | None = Tracer(lambda: self.clock.now, trace_sink) if trace else None
        self.rng = random.Random(seed)
        self._pkt_ids = itertools.count(1)
        self.softirq_batches = 0
        #: bursts (netstack/packet/skb_burst.py) in :attr:`backlog`: while there are any,
        #: the loop counts their rows (:meth:`_poll_bursts`)
        self.backlog_bursts = 0
        #: Devices whose carrier changed, waiting for the linkwatch work to send
        #: NETDEV_CHANGE (net/core/link_watch.c): flushed after the open/close that
        #: caused them has finished its own notifications.
        self.linkwatch: list[NetDevice] = []
        for mod in (SUBSYSTEMS if subsystems is None else subsystems):
            importlib.import_module(mod).register(self)
        self.namespaces: dict[str, Net] = {}
        self.init_net = self._create_net("")

    # ----------------------------------------------------------- namespaces
    def _create_net(self, name: str) -> Net:
        from netstack.drivers.loopback import LoopbackDevice
        net = Net(self, name)
        for init in self.pernet_inits:
            init(net)
        net.register_netdevice(LoopbackDevice())
        return net

    def netns_add(self, name: str) -> Net:
        """``ip netns add NAME``."""
        if not name or "/" in name or name in (".", ".."):
            raise NetnsError(f'Invalid netns name "{name}"')
        if name in self.namespaces:
            raise NetnsError(f'Cannot create namespace file "/run/netns/{name}": File exists')
        net = self._create_net(name)
        self.namespaces[name] = net
        return net

    def netns_del(self, name: str) -> None:
        """``ip netns del NAME``: devices are unregistered (veth peers die with them)."""
        net = self.namespaces.get(name)
        if net is None:
            raise NetnsError(f'Cannot remove namespace file "/run/netns/{name}": '
                             "No such file or directory")
        for dev in list(net.devices.values()):
            if dev.name in net.devices:
                destroy = getattr(dev, "dellink", None)
                if destroy is not None:
                    destroy()
                else:
                    net.unregister_netdevice(dev)
        for fn in self.pernet_exits:
            fn(net)
        del self.namespaces[name]

    def netns(self, name: str) -> Net:
        """Look a namespace up by name; "" is the initial namespace."""
        if name == "":
            return self.init_net
        try:
            return self.namespaces[name]
        except KeyError:
            raise NetnsError(f'Cannot open network namespace "{name}": '
                             "No such file or directory") from None

    def linkwatch_fire_event(self, dev: "NetDevice") -> None:
        """``linkwatch_fire_event``: queue a carrier change notification."""
        if dev not in self.linkwatch:
            self.linkwatch.append(dev)

    def linkwatch_run(self) -> None:
        """``__linkwatch_run_queue``: NETDEV_CHANGE for every queued device still registered."""
        while self.linkwatch:
            dev = self.linkwatch.pop(0)
            net = dev.net
            if net is not None and net.devices.get(dev.name) is dev:
                net.notify("CHANGE", dev)

    # -------------------------------------------------------------- packets
    def new_packet(self, data: bytes | bytearray | memoryview = b"", headroom: int = 128) -> Packet:
        """Allocate an skb (``alloc_skb``) with an id and the tracer if tracing is on."""
        pkt = Packet(data, headroom)
        pkt.id = next(self._pkt_ids)
        pkt.tstamp = self.clock.now
        pkt.trace = self.tracer
        return pkt

    def random_mac(self) -> bytes:
        """``eth_random_addr``: locally administered unicast, from the world's seeded RNG."""
        b = bytearray(self.rng.getrandbits(8) for _ in range(6))
        b[0] = (b[0] & 0xFE) | 0x02
        return bytes(b)

    # ------------------------------------------------------------ the loop
    def run_softirq(self) -> None:
        """``net_rx_action``: drain the backlog in batches of DEV_WEIGHT."""
        backlog = self.backlog
        popleft = backlog.popleft
        while backlog:
            if self.backlog_bursts:
                batch = self._poll_bursts()
                self.softirq_batches += 1
                if batch:
                    netif_receive_skb_list(batch)
                continue
            if len(backlog) <= DEV_WEIGHT:
                # the common case: the whole backlog is one poll's worth
                batch = list(backlog)
                backlog.clear()
            else:
                batch = [popleft() for _ in range(DEV_WEIGHT)]
            self.softirq_batches += 1
            netif_receive_skb_list(batch)

    def _poll_bursts(self) -> list[Packet]:
        """One poll of DEV_WEIGHT packets from a backlog holding bursts
        (netstack/packet/skb_burst.py: a burst's rows count one each).  A poll made only
        of bursts goes to their devices' NAPI as bursts (``netif_receive_bursts``) and
        nothing is returned; otherwise the bursts' rows become skbs (a burst the budget
        ends inside is split: the rows past it wait, in order, for the next poll) and
        the poll's packets are returned for ``netif_receive_skb_list``."""
        backlog = self.backlog
        items: list = []
        count = 0
        while backlog and count < DEV_WEIGHT:
            x = backlog.popleft()
            if type(x) is SkbBurst:
                self.backlog_bursts -= 1
                m = len(x)
                if count + m > DEV_WEIGHT:
                    rows = x.packets()
                    k = DEV_WEIGHT - count
                    items.extend(rows[:k])
                    backlog.extendleft(reversed(rows[k:]))
                    break
                count += m
            else:
                count += 1
            items.append(x)
        if all(type(x) is SkbBurst for x in items) and netif_receive_bursts(items):
            return []
        out: list[Packet] = []
        for x in items:
            if type(x) is SkbBurst:
                out += x.packets()
            else:
                out.append(x)
        return out

    def run_until(self, t_ns: int) -> None:
        """Process everything pending and every timer due up to ``t_ns``; then now = t_ns."""
        self.run_softirq()
        clock = self.clock
        while True:
            t = clock.pop_due(t_ns)
            if t is None:
                break
            t.fn(*t.args)
            self.run_softirq()
        if t_ns > clock.now:
            clock.now = t_ns

    def run_until_idle(self) -> None:
        """Process pending packets and timers due now (time does not advance)."""
        self.run_until(self.clock.now)

    def advance(self, seconds: float) -> None:
        """Run the virtual clock forward by ``seconds``, firing timers on the way."""
        self.run_until(self.clock.now + int(round(seconds * NSEC_PER_SEC)))
