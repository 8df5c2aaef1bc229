"""IPVLAN devices and ports (drivers/net/ipvlan/ipvlan_main.c).

The first ipvlan on a master creates the *port* (``ipvlan_port_create``: the master's
rx_handler slot, so a bridge port, bond slave or macvlan lower cannot also be one).  The
port holds what all its slaves share: the **mode** (l2 / l3 / l3s) and the **flags**
(bridge = 0, private, vepa) — per port, the last ``ip link add/set … type ipvlan``
wins, and a new slave created without ``mode`` puts the port back to l3
(``ipvlan_link_new`` calls ``ipvlan_set_port_mode(port, mode = L3 default)``).

Every slave takes the master's MAC (``eth_hw_addr_set``) and a unique 16-bit ``dev_id``
(the IPv6 link-local interface identifier uses it, ``addrconf_ifid_eui48``, so slaves
do not collide).  In l3/l3s the slaves are NOARP.

Addresses: ipvlan keeps its own table of slave addresses (``ipvlan->addrs``, hashed into
the port while the slave is up) fed by the inetaddr/inet6addr notifier chains, and it
refuses an address another slave of the same port already has through the address
*validator* chains: ``Error: Address already assigned to an ipvlan device.``
(EADDRINUSE).  netstack's devinet/addrconf call the chains kept on the World
(``inetaddr_validator_chain``, ``inetaddr_chain``, ``inet6addr_validator_chain``,
``inet6addr_chain``), which :func:`ipvlan_register_notifiers` fills.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, Callable

from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.netdevice import (ARPHRD_ETHER, IFF_ALLMULTI, IFF_LOOPBACK, IFF_NOARP,
                                     IFF_PROMISC, IFF_UP, NetDevice)
from netstack.drivers.ipvlan import ipvlan_core as core
from netstack.drivers.ipvlan.ipvlan_core import (IPVLAN_F_PRIVATE, IPVLAN_F_VEPA,
                                                 IPVLAN_MODE_L2, IPVLAN_MODE_L3,
                                                 IPVLAN_MODE_L3S, IPVLAN_MODE_MAX,
                                                 IPVLAN_QBACKLOG_LIMIT)
from netstack.core.dev_addr_lists import dev_mc_addrs, dev_set_allmulti
from netstack.drivers.macvlan import LowerStackedDevice
from netstack.errors import KernelError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.world import World
    from netstack.packet.skb import Packet

EADDRINUSE_MSG = "Address already assigned to an ipvlan device"

#: ``IPVLAN_FEATURES`` / ``IPVLAN_ALWAYS_ON`` by ethtool feature string (ipvlan_init).
IPVLAN_FEATURES = frozenset({
    "tx-scatter-gather", "tx-checksum-ip-generic", "highdma", "tx-scatter-gather-fraglist",
    "tx-generic-segmentation", "tx-tcp-segmentation", "tx-tcp-ecn-segmentation",
    "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation", "tx-gso-robust", "rx-gro",
    "rx-checksum", "rx-vlan-filter", "rx-vlan-stag-filter"})
IPVLAN_ALWAYS_ON = frozenset({
    "tx-scatter-gather", "tx-checksum-ip-generic", "tx-gso-robust",
    "tx-generic-segmentation", "tx-tcp-segmentation", "tx-tcp-ecn-segmentation",
    "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation", "tx-udp-segmentation",
    "tx-gre-segmentation", "tx-gre-csum-segmentation", "tx-ipxip4-segmentation",
    "tx-ipxip6-segmentation", "tx-udp_tnl-segmentation", "tx-udp_tnl-csum-segmentation",
    "tx-lockless", "vlan-challenged"})

#: An address as the port hashes it: (is_v6, 4 or 16 bytes).
AddrKey = tuple[bool, bytes]


class IpvlanPort:
    """``struct ipvl_port``: the master's rx_handler_data."""

    def __init__(self, dev: NetDevice) -> None:
        self.dev = dev
        self.mode = IPVLAN_MODE_L3
        self.flags = 0
        #: ``ipvlans``: slaves in creation order
        self.ipvlans: list[IpvlanDevice] = []
        #: ``hlhead``: the addresses of up slaves → slave (``ipvlan_ht_addr_lookup``)
        self.ht: dict[AddrKey, IpvlanDevice] = {}
        #: ``backlog``: (group frame, from the transmit path?) waiting for the work item
        self.backlog: list[tuple[Packet, bool]] = []
        self.wq: Any = None
        #: ``ida`` / ``dev_id_start``
        self.ids: set[int] = set()
        self.dev_id_start = 1
        #: the namespace whose LOCAL_IN hooks l3s registered in (``port->pnet``)
        self.l3s_net: Net | None = None

    @property
    def private(self) -> bool:
        return bool(self.flags & IPVLAN_F_PRIVATE)

    @property
    def vepa(self) -> bool:
        return bool(self.flags & IPVLAN_F_VEPA)

    def addr_busy(self, key: AddrKey) -> bool:
        """``ipvlan_addr_busy``: any slave's address list (up or not)."""
        return any(key in v.addrs for v in self.ipvlans)

    def alloc_dev_id(self) -> int:
        """``ida_simple_get`` from ``dev_id_start`` up to 0xFFFE, then from 1; the start
        moves past the id given (wrapping at 0xFFFE)."""
        if self.dev_id_start == 0xFFFE:
            self.dev_id_start = 1
        for lo, hi in ((self.dev_id_start, 0xFFFE), (1, self.dev_id_start)):
            for i in range(lo, hi):
                if i not in self.ids:
                    self.ids.add(i)
                    self.dev_id_start = i + 1
                    return i
        raise KernelError(errno.ENOSPC)

    def multicast_enqueue(self, pkt: "Packet", tx_pkt: bool) -> None:
        """``ipvlan_multicast_enqueue``: PAUSE frames are dropped; a full backlog counts
        rx_dropped on the frame's device."""
        if pkt.protocol == core.ETH_P_PAUSE:
            kfree_skb_reason(pkt, "NOT_SPECIFIED", self.dev.net)
            return
        if len(self.backlog) >= IPVLAN_QBACKLOG_LIMIT:
            if pkt.dev is not None:
                pkt.dev.stats.rx_dropped += 1
            kfree_skb_reason(pkt, "NOT_SPECIFIED", self.dev.net)
            return
        self.backlog.append((pkt, tx_pkt))
        net = self.dev.net
        if net is None:
            return
        if self.wq is None:
            self.wq = net.world.clock.timer(core.process_multicast, self)
        if not self.wq.active:
            self.wq.mod(net.world.clock.now)

    def destroy(self) -> None:
        """``ipvlan_port_destroy``."""
        from netstack.drivers.ipvlan.ipvlan_l3s import ipvlan_l3s_unregister
        if self.mode == IPVLAN_MODE_L3S:
            ipvlan_l3s_unregister(self)
        dev = self.dev
        dev.rx_handler = None
        dev.rx_handler_data = None
        dev.ipvlan_port = None  # type: ignore[attr-defined]
        if self.wq is not None:
            self.wq.cancel()
        for pkt, _ in self.backlog:
            kfree_skb_reason(pkt, "NOT_SPECIFIED", dev.net)
        self.backlog = []


class IpvlanDevice(LowerStackedDevice):
    """``ip link add link MASTER name N type ipvlan [mode l2|l3|l3s] [bridge|private|vepa]``."""

    kind = "ipvlan"
    unicast_flt = True

    def __init__(self, name: str, phy_dev: NetDevice, port: IpvlanPort, mtu: int) -> None:
        super().__init__(name, phy_dev.address, mtu)
        self.phy_dev = phy_dev
        self.port = port
        #: ``ipvlan->addrs`` in insertion order
        self.addrs: list[AddrKey] = []
        self.dev_id = 0
        self.max_mtu = 65535
        self.addr_assign_type = 3  # eth_hw_addr_set → NET_ADDR_SET
        self.features = set((set(phy_dev.features) & IPVLAN_FEATURES) | IPVLAN_ALWAYS_ON)

    @property
    def real_dev(self) -> NetDevice:
        """IFLA_LINK, shown after ``@`` by ``ip link``."""
        return self.phy_dev

    def mc_filter_hit(self, dest: bytes) -> bool:
        """``ipvlan->mac_filters`` (``ipvlan_set_multicast_mac_filter``): everything when
        promiscuous/allmulti, else broadcast and the device's multicast list.  The kernel
        keeps a jhash bitmap with a random seed, whose false positives are not
        reproducible; netstack matches exactly."""
        if self.flags & (IFF_PROMISC | IFF_ALLMULTI):
            return True
        return dest == self.broadcast or dest in dev_mc_addrs(self)

    # ------------------------------------------------------------------- ndo
    def open(self) -> None:
        """``ipvlan_open``: NOARP in l3/l3s, then the addresses join the port's table."""
        if self.port.mode in (IPVLAN_MODE_L3, IPVLAN_MODE_L3S):
            self.flags |= IFF_NOARP
        else:
            self.flags &= ~IFF_NOARP
        for key in self.addrs:
            self.port.ht.setdefault(key, self)

    def stop(self) -> None:
        """``ipvlan_stop``: the addresses leave the table."""
        for key in self.addrs:
            if self.port.ht.get(key) is self:
                del self.port.ht[key]

    def change_mtu_check(self, mtu: int) -> None:
        """ipvlan has no ``ndo_change_mtu``: only the generic 68..max_mtu range applies,
        even above the master's MTU (the master's own changes still overwrite it)."""

    def change_rx_flags(self, change: int) -> None:
        """``ipvlan_change_rx_flags``: allmulti reaches the master (promisc does not)."""
        if change & IFF_ALLMULTI:
            dev_set_allmulti(self.phy_dev, 1 if self.flags & IFF_ALLMULTI else -1)

    def set_mac_address(self, addr: bytes) -> None:
        """ipvlan has no ``ndo_set_mac_address``: ``dev_set_mac_address`` → EOPNOTSUPP."""
        raise KernelError(errno.EOPNOTSUPP)

    def start_xmit(self, pkt: "Packet", more: bool) -> None:
        """``ipvlan_start_xmit``: tx_packets/bytes when taken, else tx_dropped."""
        n = pkt.tail - pkt.data
        if core.ipvlan_queue_xmit(pkt, self):
            self.stats.tx_packets += 1
            self.stats.tx_bytes += n
        else:
            self.stats.tx_dropped += 1
        if not more:
            self.ring_doorbell()

    def dellink(self) -> None:
        """``ipvlan_link_delete`` + ``ipvlan_uninit``: forget the addresses, free the
        dev_id, leave the port (destroyed with its last slave), unregister."""
        port = self.port
        self.stop()
        self.addrs = []
        port.ids.discard(self.dev_id)
        if self in port.ipvlans:
            port.ipvlans.remove(self)
        if self.net is not None and self.net.devices.get(self.name) is self:
            self.net.unregister_netdevice(self)
        if not port.ipvlans:
            port.destroy()

    # ---------------------------------------------------------- addresses
    def add_addr(self, key: AddrKey) -> bool:
        """``ipvlan_add_addr4/6``: refused (False) when another slave has it."""
        if self.port.addr_busy(key):
            return False
        self.addrs.append(key)
        if self.flags & IFF_UP:
            self.port.ht.setdefault(key, self)
        return True

    def del_addr(self, key: AddrKey) -> None:
        """``ipvlan_del_addr``."""
        if key in self.addrs:
            self.addrs.remove(key)
            if self.port.ht.get(key) is self:
                del self.port.ht[key]


# -------------------------------------------------------------- configuration
def ipvlan_nl_validate(mode: int | None, flags: int | None) -> None:
    """``ipvlan_nl_validate``: a mode below IPVLAN_MODE_MAX; only the private and vepa
    flags, and not both."""
    if mode is not None and not 0 <= mode < IPVLAN_MODE_MAX:
        raise KernelError(errno.EINVAL)
    if flags is not None:
        if flags & ~(IPVLAN_F_PRIVATE | IPVLAN_F_VEPA):
            raise KernelError(errno.EINVAL)
        if flags & (IPVLAN_F_PRIVATE | IPVLAN_F_VEPA) == IPVLAN_F_PRIVATE | IPVLAN_F_VEPA:
            raise KernelError(errno.EINVAL)


def ipvlan_set_port_mode(port: IpvlanPort, nval: int) -> None:
    """``ipvlan_set_port_mode``: every slave's NOARP follows the mode
    (``dev_change_flags``: NETDEV_CHANGE when it is up); l3s registers / unregisters
    its hooks."""
    from netstack.drivers.ipvlan.ipvlan_l3s import ipvlan_l3s_register, ipvlan_l3s_unregister
    if port.mode == nval:
        return
    for v in port.ipvlans:
        old = v.flags
        if nval in (IPVLAN_MODE_L3, IPVLAN_MODE_L3S):
            v.flags |= IFF_NOARP
        else:
            v.flags &= ~IFF_NOARP
        if old != v.flags and v.flags & IFF_UP and v.net is not None:
            v.net.notify("CHANGE", v)
    if nval == IPVLAN_MODE_L3S:
        ipvlan_l3s_register(port)
    elif port.mode == IPVLAN_MODE_L3S:
        ipvlan_l3s_unregister(port)
    port.mode = nval


def ipvlan_port_create(dev: NetDevice) -> IpvlanPort:
    """``ipvlan_port_create``: take the rx_handler slot."""
    port = IpvlanPort(dev)
    dev.rx_handler = core.ipvlan_handle_frame
    dev.rx_handler_data = port
    dev.ipvlan_port = port  # type: ignore[attr-defined]
    return port


def ipvlan_link_new(net: "Net", name: str, phy_dev: NetDevice, mode: int | None,
                    flags: int | None, mtu: int | None, ifindex: int = 0,
                    cls: "type[IpvlanDevice] | None" = None) -> IpvlanDevice:
    """``ipvlan_link_new``: an ipvlan on an ipvlan sits on the same master; a master must
    be a non-loopback Ethernet device (EINVAL) with a free rx_handler slot (EBUSY)."""
    ipvlan_nl_validate(mode, flags)
    if isinstance(phy_dev, IpvlanDevice):
        phy_dev = phy_dev.phy_dev
    elif getattr(phy_dev, "ipvlan_port", None) is None:
        if phy_dev.type != ARPHRD_ETHER or phy_dev.flags & IFF_LOOPBACK:
            raise KernelError(errno.EINVAL)
        if phy_dev.rx_handler is not None:
            raise KernelError(errno.EBUSY)
    port: IpvlanPort | None = getattr(phy_dev, "ipvlan_port", None)
    created = port is None
    if port is None:
        port = ipvlan_port_create(phy_dev)
    dev = (cls or IpvlanDevice)(name, phy_dev, port, mtu if mtu is not None else phy_dev.mtu)
    ipvlan_register_notifiers(net.world)
    try:
        net.register_netdevice(dev, ifindex=ifindex)
    except Exception:
        if created:
            port.destroy()
        raise
    dev.dev_id = port.alloc_dev_id()
    if flags is not None:
        port.flags = flags
    # ipvlan_set_port_mode only touches the slaves already on the list; the new one gets
    # its NOARP from ipvlan_open
    ipvlan_set_port_mode(port, mode if mode is not None else IPVLAN_MODE_L3)
    port.ipvlans.append(dev)
    net.world.linkwatch_fire_event(dev)
    return dev


def ipvlan_nl_changelink(dev: IpvlanDevice, mode: int | None, flags: int | None) -> None:
    """``ipvlan_nl_changelink``: the port's mode, then its flags."""
    ipvlan_nl_validate(mode, flags)
    port = dev.port
    if mode is not None:
        ipvlan_set_port_mode(port, mode)
    if flags is not None:
        port.flags = flags & (IPVLAN_F_PRIVATE | IPVLAN_F_VEPA)


# ----------------------------------------------------------------- notifiers
def _ipvlan_of(dev: "NetDevice | None") -> IpvlanDevice | None:
    """``ipvlan_is_valid_dev``."""
    if isinstance(dev, IpvlanDevice) and dev.port is not None:
        return dev
    return None


def ipvlan_addr4_validator_event(dev: NetDevice, addr: bytes) -> None:
    """``ipvlan_addr4_validator_event`` (NETDEV_UP): EADDRINUSE with the extack."""
    v = _ipvlan_of(dev)
    if v is not None and v.port.addr_busy((False, bytes(addr))):
        raise KernelError(errno.EADDRINUSE, EADDRINUSE_MSG)


def ipvlan_addr6_validator_event(dev: NetDevice, addr: bytes) -> None:
    """``ipvlan_addr6_validator_event``."""
    v = _ipvlan_of(dev)
    if v is not None and v.port.addr_busy((True, bytes(addr))):
        raise KernelError(errno.EADDRINUSE, EADDRINUSE_MSG)


def ipvlan_addr4_event(event: str, dev: NetDevice, addr: bytes) -> None:
    """``ipvlan_addr4_event``: NETDEV_UP adds, NETDEV_DOWN removes (``ifa_address``)."""
    v = _ipvlan_of(dev)
    if v is None:
        return
    if event == "UP":
        v.add_addr((False, bytes(addr)))
    elif event == "DOWN":
        v.del_addr((False, bytes(addr)))


def ipvlan_addr6_event(event: str, dev: NetDevice, addr: bytes) -> None:
    """``ipvlan_addr6_event``."""
    v = _ipvlan_of(dev)
    if v is None:
        return
    if event == "UP":
        v.add_addr((True, bytes(addr)))
    elif event == "DOWN":
        v.del_addr((True, bytes(addr)))


def ipvlan_device_event(event: str, dev: NetDevice) -> None:
    """``ipvlan_device_event`` for a master with a port."""
    port: IpvlanPort | None = getattr(dev, "ipvlan_port", None)
    if port is None:
        return
    if event in ("UP", "DOWN", "CHANGE"):
        for v in port.ipvlans:
            if v.net is not None:
                v.net.world.linkwatch_fire_event(v)
    elif event == "UNREGISTER":
        for v in list(port.ipvlans):
            v.dellink()
    elif event == "CHANGEMTU":
        for v in port.ipvlans:
            if v.mtu != dev.mtu and v.net is not None:
                v.mtu = dev.mtu  # ipvlan_adjust_mtu: follows up and down
                v.net.notify("CHANGEMTU", v)
    elif event == "CHANGEADDR":
        for v in port.ipvlans:
            v.address = dev.address
            if v.net is not None:
                v.net.notify("CHANGEADDR", v)


def _chain(world: "World", name: str) -> list[Callable[..., Any]]:
    chain = getattr(world, name, None)
    if chain is None:
        chain = []
        setattr(world, name, chain)
    return chain


def ipvlan_register_notifiers(world: "World") -> None:
    """``ipvlan_init_module``'s registrations, once per world: the netdevice notifier, the
    inet/inet6 address chains and their validator chains."""
    if ipvlan_device_event in world.netdev_notifiers:
        return
    world.netdev_notifiers.append(ipvlan_device_event)
    _chain(world, "inet6addr_chain").append(ipvlan_addr6_event)
    _chain(world, "inet6addr_validator_chain").append(ipvlan_addr6_validator_event)
    _chain(world, "inetaddr_chain").append(ipvlan_addr4_event)
    _chain(world, "inetaddr_validator_chain").append(ipvlan_addr4_validator_event)


__all__ = ["IpvlanDevice", "IpvlanPort", "ipvlan_link_new", "ipvlan_nl_changelink",
           "ipvlan_set_port_mode", "ipvlan_register_notifiers", "EADDRINUSE_MSG",
           "IPVLAN_MODE_L2", "IPVLAN_MODE_L3", "IPVLAN_MODE_L3S", "IPVLAN_F_PRIVATE",
           "IPVLAN_F_VEPA"]
