"""ipvtap: an ipvlan whose received frames go to ``/dev/tapN`` (drivers/net/ipvlan/ipvtap.c,
Linux 6.18; the queue is netstack/drivers/tap_queue.py = drivers/net/tap.c).

The kernel this project measures against has no ipvtap module: the behaviour follows the
source.  ``ipvtap_newlink`` registers :func:`tap_handle_frame` as the new device's
rx_handler, sets ``tap_features`` to ``TUN_OFFLOADS`` and runs ``ipvlan_link_new``;
``ipvtap_setup`` gives ``tx_queue_len`` 500 and clears IFF_NO_QUEUE (``pfifo_fast``).
Frames reach the handler wherever the ipvlan demux hands them to the device (l2 and l3
modes, ``RX_HANDLER_ANOTHER`` or ``dev_forward_skb``); in l3s mode the device switch
happens in the IP layer (l3mdev), after rx_handlers, so the reader gets nothing there —
as in the kernel.  Drops: a full ring counts ``ipvlan_count_rx(…, false)``; a refused
write ``tx_drps`` (tx_dropped).  TUNSETOFFLOAD feeds ``ipvtap_update_features`` →
``ipvlan->sfeatures`` → ``ipvlan_fix_features``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.core.netdevice import NetDevice, netdev_features_changed
from netstack.drivers.ipvlan.ipvlan_core import ipvlan_count_rx
from netstack.drivers.ipvlan.ipvlan_main import (IPVLAN_ALWAYS_ON, IPVLAN_FEATURES,
                                                 IpvlanDevice, IpvlanPort, ipvlan_link_new)
from netstack.drivers.tap_queue import TapDev, stacked_fix_features

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net


class IpvtapDevice(TapDev, IpvlanDevice):
    """``ip link add link MASTER name N type ipvtap [mode l2|l3|l3s] [bridge|private|vepa]``."""

    kind = "ipvtap"
    qdisc_up = "pfifo_fast"

    def __init__(self, name: str, phy_dev: NetDevice, port: IpvlanPort, mtu: int) -> None:
        self.tap_init()
        IpvlanDevice.__init__(self, name, phy_dev, port, mtu)
        #: ``ipvlan->sfeatures`` (ipvlan_init: IPVLAN_FEATURES)
        self.sfeatures: set[str] = set(IPVLAN_FEATURES)
        self.tap_setup()

    def count_rx_dropped(self) -> None:
        """``ipvtap_count_rx_dropped``: ``ipvlan_count_rx(vlan, 0, 0, 0)``."""
        ipvlan_count_rx(self, 0, False, False)

    def update_features(self, features: set[str]) -> None:
        """``ipvtap_update_features``: ``sfeatures`` then ``netdev_update_features``."""
        self.sfeatures = set(features)
        self.features = self.fix_features(set(self.features) | set(features))
        netdev_features_changed(self)

    def tap_set_mac(self, addr: bytes, family: int) -> None:
        """SIOCSIFHWADDR: ipvlan has no ``ndo_set_mac_address`` → EOPNOTSUPP."""
        self.set_mac_address(addr)

    def fix_features(self, features: set[str]) -> set[str]:
        """``ipvlan_fix_features``."""
        return stacked_fix_features(features, self.sfeatures, self.phy_dev.features,
                                    IPVLAN_FEATURES, IPVLAN_ALWAYS_ON, lro_follows=False)

    def dellink(self) -> None:
        """``ipvtap_dellink``: unregister the rx_handler, ``tap_del_queues``, then
        ``ipvlan_link_delete``."""
        self.tap_dellink()
        IpvlanDevice.dellink(self)


def ipvtap_newlink(net: "Net", name: str, phy: NetDevice, mode: int | None, flags: int | None,
                   mtu: int | None, ifindex: int = 0) -> IpvtapDevice:
    """``ipvtap_newlink``: an ipvlan of class :class:`IpvtapDevice`."""
    dev = ipvlan_link_new(net, name, phy, mode, flags, mtu, ifindex, cls=IpvtapDevice)
    assert isinstance(dev, IpvtapDevice)
    return dev


__all__ = ["IpvtapDevice", "ipvtap_newlink"]
