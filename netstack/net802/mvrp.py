"""MVRP for vlan devices (net/8021q/vlan_mvrp.c): the MRP application that declares the
VID of every 802.1Q vlan device with ``mvrp on`` to the link of its lower device.

One applicant per lower device exists while it has vlan devices (``register_vlan_dev`` /
``unregister_vlan_dev``); a vlan device joins its VID when it opens with MVRP set or MVRP
is switched on while it runs, and leaves on stop / switch-off / deletion.  PDUs go to the
Customer-bridge MVRP address 01:80:c2:00:00:21 with EtherType 0x88f5, one attribute type
(VID, 2 bytes, big endian).  802.1ad vlan devices never declare (``vlan_mvrp_request_join``
returns early)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.net802.mrp import (MrpApplicant, MrpApplication, mrp_applicant,
                                 mrp_init_applicant, mrp_uninit_applicant)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice

ETH_P_MVRP = 0x88F5
ETH_P_8021Q = 0x8100
MRP_APPLICATION_MVRP = 0
MVRP_ATTR_VID = 1
MVRP_ATTR_MAX = MVRP_ATTR_VID
MRP_MVRP_ADDRESS = bytes.fromhex("0180c2000021")

VLAN_MRP_APP = MrpApplication(type=MRP_APPLICATION_MVRP, maxattr=MVRP_ATTR_MAX,
                              ethertype=ETH_P_MVRP, group_address=MRP_MVRP_ADDRESS, version=0)


def vlan_mvrp_request_join(dev: "NetDevice") -> None:
    """``vlan_mvrp_request_join``: declare the VID (802.1Q vlans only)."""
    if dev.vlan_proto != ETH_P_8021Q:  # type: ignore[attr-defined]
        return
    app = mrp_applicant(dev.real_dev, VLAN_MRP_APP)  # type: ignore[attr-defined]
    if app is not None:
        app.request_join(dev.vlan_id.to_bytes(2, "big"), MVRP_ATTR_VID)  # type: ignore[attr-defined]


def vlan_mvrp_request_leave(dev: "NetDevice") -> None:
    """``vlan_mvrp_request_leave``: withdraw the VID (802.1Q vlans only)."""
    if dev.vlan_proto != ETH_P_8021Q:  # type: ignore[attr-defined]
        return
    app = mrp_applicant(dev.real_dev, VLAN_MRP_APP)  # type: ignore[attr-defined]
    if app is not None:
        app.request_leave(dev.vlan_id.to_bytes(2, "big"), MVRP_ATTR_VID)  # type: ignore[attr-defined]


def vlan_mvrp_init_applicant(real_dev: "NetDevice") -> MrpApplicant:
    """``vlan_mvrp_init_applicant``: the lower device's first vlan device."""
    return mrp_init_applicant(real_dev, VLAN_MRP_APP)


def vlan_mvrp_uninit_applicant(real_dev: "NetDevice") -> None:
    """``vlan_mvrp_uninit_applicant``: the lower device's last vlan device is gone; the
    pending Leave goes out now (the applicant's last tx!)."""
    mrp_uninit_applicant(real_dev, VLAN_MRP_APP)


def vlan_mvrp_state(real_dev: "NetDevice", vid: int) -> str | None:
    """The applicant state of ``vid`` on ``real_dev`` (None: not declared)."""
    app = mrp_applicant(real_dev, VLAN_MRP_APP)
    return None if app is None else app.state_of(vid.to_bytes(2, "big"), MVRP_ATTR_VID)
