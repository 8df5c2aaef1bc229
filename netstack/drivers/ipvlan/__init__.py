"""IPVLAN (drivers/net/ipvlan/): virtual devices sharing their master's MAC, told apart by
L3 address.  :mod:`.ipvlan_main` (devices, ports, configuration, address notifiers),
:mod:`.ipvlan_core` (receive demux and transmit per mode), :mod:`.ipvlan_l3s` (the l3s
hooks)."""
from netstack.drivers.ipvlan.ipvlan_core import (IPVLAN_F_PRIVATE, IPVLAN_F_VEPA,
                                                 IPVLAN_MODE_L2, IPVLAN_MODE_L3,
                                                 IPVLAN_MODE_L3S, ipvlan_handle_frame)
from netstack.drivers.ipvlan.ipvlan_main import (EADDRINUSE_MSG, IpvlanDevice, IpvlanPort,
                                                 ipvlan_link_new, ipvlan_nl_changelink,
                                                 ipvlan_register_notifiers)

__all__ = ["IpvlanDevice", "IpvlanPort", "ipvlan_link_new", "ipvlan_nl_changelink",
           "ipvlan_register_notifiers", "ipvlan_handle_frame", "EADDRINUSE_MSG",
           "IPVLAN_MODE_L2", "IPVLAN_MODE_L3", "IPVLAN_MODE_L3S", "IPVLAN_F_PRIVATE",
           "IPVLAN_F_VEPA"]
