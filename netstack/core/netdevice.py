"""``struct net_device``: what every device has, whatever its driver.

A device declares its capabilities the way a kernel driver does (``features`` /
``hw_features`` by their ethtool/netdev feature-string names from net/ethtool/common.c),
counts its traffic in ``rtnl_link_stats64`` fields, and transmits batches: the core calls
:meth:`NetDevice.start_xmit` once per packet with the ``more`` hint (``netdev_xmit_more``)
and the driver rings its doorbell only when ``more`` is false (include/linux/netdevice.h,
net/core/dev.c ``dev_hard_start_xmit``).  ``doorbells`` counts those rings.

``rx_handler`` is the slot bridge/bond/macvlan/ipvlan attach to
(``netdev_rx_handler_register``): it sees every received packet before the protocol
handlers and returns an :class:`RxHandlerResult`.
"""
from __future__ import annotations

import enum
import errno
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

# include/uapi/linux/if.h
IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_DEBUG = 0x4
IFF_LOOPBACK = 0x8
IFF_POINTOPOINT = 0x10
IFF_NOTRAILERS = 0x20
IFF_RUNNING = 0x40
IFF_NOARP = 0x80
IFF_PROMISC = 0x100
IFF_ALLMULTI = 0x200
IFF_MASTER = 0x400
IFF_SLAVE = 0x800
IFF_MULTICAST = 0x1000
IFF_LOWER_UP = 0x10000
IFF_DORMANT = 0x20000
IFF_ECHO = 0x40000

# ARPHRD_* (include/uapi/linux/if_arp.h)
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
ARPHRD_NONE = 0xFFFE


class RxHandlerResult(enum.Enum):
    """``enum rx_handler_result`` (include/linux/netdevice.h)."""

    CONSUMED = 0     # the handler took the packet
    ANOTHER = 1      # skb->dev changed: run the receive loop again
    EXACT = 2        # deliver only to ptype handlers bound to this exact device
    PASS = 3         # continue as if no handler


@dataclass(slots=True)
class LinkStats:
    """``struct rtnl_link_stats64`` fields that netstack maintains."""

    rx_packets: int = 0
    tx_packets: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_errors: int = 0
    tx_errors: int = 0
    rx_dropped: int = 0
    tx_dropped: int = 0
    multicast: int = 0
    collisions: int = 0
    rx_over_errors: int = 0
    tx_carrier_errors: int = 0
    rx_nohandler: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class NetDevice:
    """Base class of all devices.  Drivers override :meth:`start_xmit` and may override
    :meth:`open`/:meth:`stop`/:meth:`carrier_ok`."""

    #: ``rtnl_link_ops->kind`` (``ip -d link`` shows it as linkinfo.info_kind).
    kind: str = ""
    type: int = ARPHRD_ETHER
    #: Feature strings the driver enables by default and those the user may toggle.
    default_features: frozenset[str] = frozenset()
    hw_features: frozenset[str] = frozenset()
    #: ``dev->hw_enc_features``: what stays offloaded for encapsulated packets (None: the
    #: driver sets none; ``register_netdevice`` adds SG and GSO_PARTIAL, see
    #: netstack/core/gso.py ``hw_enc_features``).
    hw_enc_features: "frozenset[str] | None" = None
    #: ``dev->gso_partial_features``: GSO types the device does only with GSO_PARTIAL.
    gso_partial_features: frozenset[str] = frozenset()
    #: ``dev->vlan_features`` (None: no restriction modelled).
    vlan_features: "frozenset[str] | None" = None
    #: ``gso_max_size``/``gso_max_segs`` (``ip -d link``; netif_skb_features honours them).
    gso_max_size: int = 65536
    gso_max_segs: int = 65535
    #: The driver receives through NAPI and so does GRO when ``rx-gro`` is on (veth);
    #: packets of a device without NAPI (backlog, tun) never see GRO.
    napi_gro: bool = False
    #: ``dev->netns_local`` (NETIF_F_NETNS_LOCAL before 6.12): may not change namespace.
    netns_local: bool = False
    #: Default qdisc when up: virtual devices use ``noqueue``.
    qdisc_up: str = "noqueue"

    def __init__(self, name: str, address: bytes = b"\0" * 6, mtu: int = 1500) -> None:
        self.name = name
        self.ifindex = 0
        self.net: Net | None = None
        self.address = address
        self.broadcast = b"\xff" * 6 if self.type == ARPHRD_ETHER else b"\0" * 6
        self.perm_addr = address
        self.addr_assign_type = 0  # NET_ADDR_PERM
        self.mtu = mtu
        self.min_mtu = 68
        self.max_mtu = 65535
        self.flags = IFF_BROADCAST | IFF_MULTICAST
        self.txqlen = 1000
        self.group = 0
        self.features: set[str] = set(self.default_features)
        #: ``dev->wanted_features``: what the user asked for (``ethtool -K``); the active
        #: set is this after ``ndo_fix_features`` and :func:`netdev_fix_features`.
        self.wanted_features: set[str] = set(self.default_features)
        #: the NAPI GRO instance while GRO is active (see :func:`netdev_features_changed`)
        self.napi: Any = None
        self.stats = LinkStats()
        self.doorbells = 0
        self.rx_handler: Callable[[Packet], tuple[RxHandlerResult, Packet]] | None = None
        self.rx_handler_data: Any = None
        self.master: NetDevice | None = None
        self.alias = ""
        #: set by the first open (``dev_activate`` → ``attach_default_qdiscs``)
        self.qdisc_attached = False
        # Per-protocol device state (``struct in_device`` / ``struct inet6_dev``),
        # attached by the protocols on NETDEV_REGISTER.
        self.ip_ptr: Any = None
        self.ip6_ptr: Any = None

    # ------------------------------------------------------------- state
    @property
    def is_up(self) -> bool:
        return bool(self.flags & IFF_UP)

    def carrier_ok(self) -> bool:
        """``netif_carrier_ok``; virtual devices without a peer always have carrier."""
        return True

    def running(self) -> bool:
        """``netif_running`` && carrier: what the stack needs to transmit/receive."""
        return bool(self.flags & IFF_UP) and self.carrier_ok()

    def operstate(self) -> str:
        """RFC 2863 operstate as ``ip link`` prints it."""
        if not self.flags & IFF_UP:
            return "DOWN"
        if not self.carrier_ok():
            return "DOWN"
        return self.operstate_up()

    def operstate_up(self) -> str:
        """Drivers that never call ``netif_carrier_on`` report UNKNOWN (loopback, dummy)."""
        return "UNKNOWN"

    def qdisc(self) -> str:
        """``noop`` until the first ``dev_activate`` attaches the default qdisc; a later
        ``dev_deactivate`` (link down) does not detach it, so it keeps showing."""
        return self.qdisc_up if self.qdisc_attached else "noop"

    # -------------------------------------------------------------- ndo
    def open(self) -> None:
        """``ndo_open``."""

    def stop(self) -> None:
        """``ndo_stop``."""

    def start_xmit(self, pkt: "Packet", more: bool) -> None:
        """``ndo_start_xmit``: take ownership of ``pkt``; ring the doorbell unless ``more``."""
        raise NotImplementedError(f"{type(self).__name__} must implement start_xmit")

    def fix_features(self, features: set[str]) -> set[str]:
        """``ndo_fix_features``: a driver's own restrictions (none by default)."""
        return features

    def ring_doorbell(self) -> None:
        """The MMIO write a NIC driver does after the last packet of a batch."""
        self.doorbells += 1

    # ------------------------------------------------- stacking (masters)
    def add_slave(self, slave: "NetDevice") -> None:
        """``ndo_add_slave`` (``ip link set SLAVE master SELF``): a master kind (bridge,
        bond) overrides this; the base device is no master (``do_set_master``: EOPNOTSUPP).
        Raise :class:`netstack.errors.KernelError` with the driver's errno/extack."""
        from netstack.errors import KernelError
        raise KernelError(errno.EOPNOTSUPP)

    def del_slave(self, slave: "NetDevice") -> None:
        """``ndo_del_slave`` (``ip link set SLAVE nomaster``)."""
        from netstack.errors import KernelError
        raise KernelError(errno.EOPNOTSUPP)

    def slave_info(self, slave: "NetDevice") -> "tuple[str, str, dict[str, Any]] | None":
        """For ``ip -d link`` of a slave: (``info_slave_kind``, the text the kind's
        ``print_opt`` writes, the JSON ``info_slave_data``) — e.g. ("bridge_slave", …)."""
        return None

    def peer_netns(self) -> "Net | None":
        """For ``link_netnsid``: the namespace of the device's peer/lower device, if any."""
        return None

    def link_index(self) -> int:
        """``iflink``: the peer/lower device ifindex (``link_index`` in ip -j)."""
        return self.ifindex

    def __repr__(self) -> str:  # pragma: no cover
        return f"<{type(self).__name__} {self.name} ifindex={self.ifindex}>"


#: NETIF_F_ALL_TSO (the AccECN bit is not part of it: measured, SG off leaves it on).
ALL_TSO = frozenset({"tx-tcp-segmentation", "tx-tcp-ecn-segmentation",
                     "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation"})


def netdev_fix_features(dev: NetDevice, f: set[str]) -> set[str]:
    """``netdev_fix_features`` (net/core/dev.c): the dependencies between offloads —
    TSO needs SG and a checksum offload for its family, MANGLEID needs TSO, ECN alone
    is nothing, software GSO needs SG, USO needs a checksum offload, GRO_HW needs RX
    checksumming, LRO and GRO_HW exclude each other and RX-FCS."""
    f = set(f)
    hw = "tx-checksum-ip-generic" in f
    if f & ALL_TSO and "tx-scatter-gather" not in f:
        f -= ALL_TSO
    if "tx-tcp-segmentation" in f and not hw and "tx-checksum-ipv4" not in f:
        f -= {"tx-tcp-segmentation", "tx-tcp-ecn-segmentation"}
    if "tx-tcp6-segmentation" in f and not hw and "tx-checksum-ipv6" not in f:
        f.discard("tx-tcp6-segmentation")
    if "tx-tcp-mangleid-segmentation" in f and "tx-tcp-segmentation" not in f:
        f.discard("tx-tcp-mangleid-segmentation")
    if f & ALL_TSO == {"tx-tcp-ecn-segmentation"}:
        f.discard("tx-tcp-ecn-segmentation")
    if "tx-generic-segmentation" in f and "tx-scatter-gather" not in f:
        f.discard("tx-generic-segmentation")
    partial = set(dev.gso_partial_features)
    if f & partial and "tx-gso-partial" not in f:
        f -= partial
    if "rx-checksum" not in f:
        f.discard("rx-gro-hw")
    if "rx-fcs" in f:
        f -= {"rx-lro", "rx-gro-hw"}
    if "rx-gro-hw" in f and "rx-lro" in f:
        f.discard("rx-lro")
    if "tx-udp-segmentation" in f and not hw and not (
            "tx-checksum-ipv4" in f and "tx-checksum-ipv6" in f):
        f.discard("tx-udp-segmentation")
    return f


def netdev_update_features(dev: NetDevice) -> None:
    """``__netdev_update_features``: active = fix(fixed bits as they are + wanted)."""
    hw = set(dev.hw_features) | {"tx-generic-segmentation", "rx-gro", "rx-gro-list",
                                 "rx-udp-gro-forwarding"}
    f = (set(dev.features) - hw) | (dev.wanted_features & hw)
    dev.features = netdev_fix_features(dev, dev.fix_features(f))
    netdev_features_changed(dev)


def netdev_features_changed(dev: NetDevice) -> None:
    """``netdev_features_change`` as far as the datapath cares: a NAPI driver's GRO
    instance exists exactly while ``rx-gro`` is on (veth_set_features enables its NAPI
    with GRO); turning GRO off flushes what it held."""
    want = dev.napi_gro and "rx-gro" in dev.features
    if want and dev.napi is None:
        from netstack.core.dev import netif_receive_skb_list
        from netstack.core.gro import Napi
        dev.napi = Napi(dev, lambda lst: netif_receive_skb_list(lst, False))
    elif not want and dev.napi is not None:
        dev.napi.flush()
        dev.napi = None
