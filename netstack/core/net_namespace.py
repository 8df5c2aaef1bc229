"""Network namespaces (net/core/net_namespace.c): everything stateful lives in one.

A :class:`Net` owns its devices (with per-namespace ifindex allocation, as
``dev_index_reserve`` does since v3.7), its sysctls, its drop counters and the protocols'
per-namespace state (``net.ipv4``, ``net.ipv6`` …), which the protocols attach from their
pernet ``init`` hooks.  Nothing outside a namespace holds packet-path state; the
:class:`~netstack.core.world.World` only owns time, the namespace list and the softirq
backlog.
"""
from __future__ import annotations

import errno
import hashlib
from typing import TYPE_CHECKING, Any, Callable

from netstack.core.drop_reason import DropCounters
from netstack.core.netdevice import IFF_UP, NetDevice
from netstack.core.sysctl import SysctlTable
from netstack.errors import KernelError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.world import World
    from netstack.packet.skb import Packet

#: netdevice notifier events (include/linux/netdevice.h NETDEV_*).
NETDEV_UP = "UP"
NETDEV_DOWN = "DOWN"
NETDEV_GOING_DOWN = "GOING_DOWN"
NETDEV_REGISTER = "REGISTER"
NETDEV_UNREGISTER = "UNREGISTER"
NETDEV_CHANGE = "CHANGE"              # carrier / operstate
NETDEV_CHANGEMTU = "CHANGEMTU"
NETDEV_CHANGEADDR = "CHANGEADDR"
NETDEV_CHANGENAME = "CHANGENAME"

Tap = Callable[["Packet"], None]


class DeviceExists(Exception):
    """EEXIST from register_netdevice."""


class Net:
    """One network namespace."""

    def __init__(self, world: "World", name: str) -> None:
        self.world = world
        self.name = name
        self.devices: dict[str, NetDevice] = {}
        self.by_index: dict[int, NetDevice] = {}
        self._next_ifindex = 1
        self.sysctl = SysctlTable()
        self.drops = DropCounters()
        #: ptype_all taps per ifindex (AF_PACKET sockets / captures bound to a device).
        self.rx_taps: dict[int, list[Tap]] = {}
        self.tx_taps: dict[int, list[Tap]] = {}
        #: ``net_hash_mix``/``hashrnd`` stand-in: a per-namespace secret derived from the
        #: namespace name so runs are reproducible (the kernel's is random per boot).
        self.hash_secret: bytes = hashlib.sha256(b"netstack-netns:" + name.encode()).digest()[:16]
        #: peer namespaces -> nsid (``ip netns set`` / link_netnsid), allocated on demand.
        self.nsids: dict[int, int] = {}
        self.ipv4: Any = None
        self.ipv6: Any = None
        self.proto: dict[str, Any] = {}

    # ------------------------------------------------------------- devices
    def register_netdevice(self, dev: NetDevice, ifindex: int = 0,
                           fallback: bool = False) -> NetDevice:
        """``register_netdevice``: name check, ifindex, sysctl dirs, NETDEV_REGISTER.

        A requested ``ifindex`` that is taken fails with EBUSY (``dev_index_reserve``)
        unless ``fallback`` (moving namespaces keeps the index only if it is free)."""
        if dev.name in self.devices:
            raise DeviceExists(dev.name)
        if ifindex and ifindex in self.by_index and not fallback:
            raise KernelError(errno.EBUSY)
        if ifindex and ifindex not in self.by_index:
            dev.ifindex = ifindex
        else:
            while self._next_ifindex in self.by_index:
                self._next_ifindex += 1
            dev.ifindex = self._next_ifindex
            self._next_ifindex += 1
        dev.net = self
        self.devices[dev.name] = dev
        self.by_index[dev.ifindex] = dev
        self.sysctl.add_device(dev.name)
        self.notify(NETDEV_REGISTER, dev)
        return dev

    def unregister_netdevice(self, dev: NetDevice) -> None:
        """``unregister_netdevice``: close, NETDEV_UNREGISTER, forget."""
        if dev.flags & IFF_UP:
            self.dev_close(dev)
        self.notify(NETDEV_UNREGISTER, dev)
        self.sysctl.del_device(dev.name)
        self.devices.pop(dev.name, None)
        self.by_index.pop(dev.ifindex, None)
        self.rx_taps.pop(dev.ifindex, None)
        self.tx_taps.pop(dev.ifindex, None)

    def move_netdevice(self, dev: NetDevice, target: "Net") -> None:
        """``dev_change_net_namespace``: the ifindex is kept unless taken in the target."""
        was_up = bool(dev.flags & IFF_UP)
        self.unregister_netdevice(dev)
        if dev.name in target.devices:
            raise DeviceExists(dev.name)
        target.register_netdevice(dev, ifindex=dev.ifindex, fallback=True)
        del was_up  # a moved device comes up DOWN in the target, as in the kernel

    def rename_netdevice(self, dev: NetDevice, new: str) -> None:
        """``dev_change_name`` (the device must be down, checked by the caller)."""
        if new in self.devices:
            raise DeviceExists(new)
        self.sysctl.rename_device(dev.name, new)
        del self.devices[dev.name]
        dev.name = new
        self.devices[new] = dev
        self.notify(NETDEV_CHANGENAME, dev)

    def dev_open(self, dev: NetDevice) -> None:
        """``dev_open``: IFF_UP, ndo_open, NETDEV_UP (idempotent)."""
        if dev.flags & IFF_UP:
            return
        dev.flags |= IFF_UP
        dev.qdisc_attached = True
        dev.open()
        self.notify(NETDEV_UP, dev)
        self.world.linkwatch_run()

    def dev_close(self, dev: NetDevice) -> None:
        """``dev_close``: NETDEV_GOING_DOWN, ndo_stop, clear IFF_UP, NETDEV_DOWN."""
        if not dev.flags & IFF_UP:
            return
        self.notify(NETDEV_GOING_DOWN, dev)
        dev.stop()
        dev.flags &= ~IFF_UP
        self.notify(NETDEV_DOWN, dev)
        self.world.linkwatch_run()

    def get(self, name: str) -> NetDevice | None:
        return self.devices.get(name)

    def get_by_index(self, ifindex: int) -> NetDevice | None:
        return self.by_index.get(ifindex)

    def notify(self, event: str, dev: NetDevice) -> None:
        """``call_netdevice_notifiers``: protocols react (addresses, routes, neighbours)."""
        for fn in self.world.netdev_notifiers:
            fn(event, dev)

    def nsid_of(self, other: "Net") -> int:
        """``peernet2id_alloc``: a stable small id for another namespace, as link_netnsid."""
        key = id(other)
        if key not in self.nsids:
            self.nsids[key] = len(self.nsids)
        return self.nsids[key]

    # ---------------------------------------------------------------- taps
    def add_rx_tap(self, dev: NetDevice, fn: Tap) -> None:
        """Like an AF_PACKET socket bound to ``dev`` that sees received frames."""
        self.rx_taps.setdefault(dev.ifindex, []).append(fn)

    def add_tx_tap(self, dev: NetDevice, fn: Tap) -> None:
        """Like an AF_PACKET socket bound to ``dev`` that sees transmitted frames."""
        self.tx_taps.setdefault(dev.ifindex, []).append(fn)

    def __repr__(self) -> str:  # pragma: no cover
        return f"<Net {self.name or '(root)'}>"
