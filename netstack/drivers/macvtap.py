"""macvtap: a macvlan whose received frames go to ``/dev/tapN`` (drivers/net/macvtap.c,
Linux 6.18; the queue itself is netstack/drivers/tap_queue.py = drivers/net/tap.c).

``macvtap_newlink`` registers :func:`tap_handle_frame` as the new device's own
rx_handler (so the macvlan demux hands it frames as to any macvlan, and the handler
consumes them into the open queue), sets ``tap_features`` to ``TUN_OFFLOADS`` and then
runs ``macvlan_common_newlink``.  ``macvtap_setup`` gives it ``tx_queue_len`` 500
(``TUN_READQ_SIZE``) and, unlike macvlan, a real qdisc (no IFF_NO_QUEUE: ``pfifo_fast``).
Drops: a full ring counts ``macvlan_count_rx(…, false)`` (rx_errors, reported as
rx_dropped); a refused write counts tx_dropped.  TUNSETOFFLOAD feeds
``macvtap_update_features`` → ``vlan->set_features`` → ``macvlan_fix_features``.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from netstack.core.netdevice import NetDevice, netdev_features_changed
from netstack.drivers.macvlan import (ALWAYS_ON_FEATURES, MACVLAN_FEATURES, MacvlanDevice,
                                      MacvlanPort, macvlan_common_newlink)
from netstack.errors import KernelError
from netstack.drivers.tap_queue import TapDev, stacked_fix_features

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net

class MacvtapDevice(TapDev, MacvlanDevice):
    """``ip link add link LOWER name N type macvtap [mode M]``."""

    kind = "macvtap"
    qdisc_up = "pfifo_fast"

    def __init__(self, name: str, lower: NetDevice, port: MacvlanPort, mode: int,
                 address: bytes) -> None:
        self.tap_init()
        MacvlanDevice.__init__(self, name, lower, port, mode, address)
        #: ``vlan->set_features`` (macvlan_common_newlink: MACVLAN_FEATURES)
        self.set_features: set[str] = set(MACVLAN_FEATURES)
        self.tap_setup()

    def count_rx_dropped(self) -> None:
        """``macvtap_count_rx_dropped``: ``macvlan_count_rx(vlan, 0, 0, 0)``."""
        self.count_rx(0, False, False)

    def update_features(self, features: set[str]) -> None:
        """``macvtap_update_features``: ``vlan->set_features`` then
        ``netdev_update_features`` → :meth:`fix_features`."""
        self.set_features = set(features)
        self.features = self.fix_features(set(self.features) | set(features))
        netdev_features_changed(self)

    def tap_set_mac(self, addr: bytes, family: int) -> None:
        """SIOCSIFHWADDR: ``dev_set_mac_address`` (family must be ``dev->type``: EINVAL)
        → ``macvlan_set_mac_address`` (``is_valid_ether_addr``: EADDRNOTAVAIL)."""
        if family != self.type:
            raise KernelError(errno.EINVAL)
        if addr[0] & 1 or addr == bytes(6):
            raise KernelError(errno.EADDRNOTAVAIL)
        self.set_mac_address(addr)

    def fix_features(self, features: set[str]) -> set[str]:
        """``macvlan_fix_features``: what ``set_features`` allows of MACVLAN_FEATURES, as
        far as the lower device has it, LRO only if kept, plus ALWAYS_ON."""
        return stacked_fix_features(features, self.set_features, self.lowerdev.features,
                                    MACVLAN_FEATURES, ALWAYS_ON_FEATURES, lro_follows=True)

    def dellink(self) -> None:
        """``macvtap_dellink``: unregister the rx_handler, drop the queues' link to the
        device (``tap_del_queues``), then ``macvlan_dellink``."""
        self.tap_dellink()
        MacvlanDevice.dellink(self)


def macvtap_newlink(net: "Net", name: str, lower: NetDevice, mode: int, flags: int,
                    address: bytes | None, mtu: int | None, bc_queue_len: int | None = None,
                    macaddr_mode: int | None = None, macaddrs: list[bytes] | None = None,
                    ifindex: int = 0) -> MacvtapDevice:
    """``macvtap_newlink``: a macvlan of class :class:`MacvtapDevice`."""
    dev = macvlan_common_newlink(net, name, lower, mode, flags, address, mtu, bc_queue_len,
                                 macaddr_mode, macaddrs, ifindex, cls=MacvtapDevice)
    assert isinstance(dev, MacvtapDevice)
    return dev


__all__ = ["MacvtapDevice", "macvtap_newlink"]
