"""GVRP for vlan devices (net/8021q/vlan_gvrp.c): the GARP application that declares the
VID of every 802.1Q vlan device with ``gvrp on`` to the link of its lower device, in LLC
frames to 01:80:c2:00:00:21 (attribute type 1 = VID, 2 bytes big endian).  Same life cycle
as MVRP (:mod:`netstack.net802.mvrp`): one applicant per lower device while it has vlans;
join on open / ``gvrp on`` while running, leave on stop / ``gvrp off`` / deletion; 802.1ad
vlans never declare."""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.net802.garp import (GarpApplicant, GarpApplication, garp_applicant,
                                  garp_init_applicant, garp_uninit_applicant)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice

ETH_P_8021Q = 0x8100
GARP_APPLICATION_GVRP = 0
GVRP_ATTR_VID = 1
GVRP_ATTR_MAX = GVRP_ATTR_VID
GARP_GVRP_ADDRESS = bytes.fromhex("0180c2000021")

VLAN_GVRP_APP = GarpApplication(type=GARP_APPLICATION_GVRP, maxattr=GVRP_ATTR_MAX,
                                group_address=GARP_GVRP_ADDRESS)


def _vid(dev: "NetDevice") -> bytes:
    return dev.vlan_id.to_bytes(2, "big")  # type: ignore[attr-defined]


def vlan_gvrp_request_join(dev: "NetDevice") -> None:
    """``vlan_gvrp_request_join`` (802.1Q vlans only)."""
    if dev.vlan_proto != ETH_P_8021Q:  # type: ignore[attr-defined]
        return
    app = garp_applicant(dev.real_dev, VLAN_GVRP_APP)  # type: ignore[attr-defined]
    if app is not None:
        app.request_join(_vid(dev), GVRP_ATTR_VID)


def vlan_gvrp_request_leave(dev: "NetDevice") -> None:
    """``vlan_gvrp_request_leave`` (802.1Q vlans only)."""
    if dev.vlan_proto != ETH_P_8021Q:  # type: ignore[attr-defined]
        return
    app = garp_applicant(dev.real_dev, VLAN_GVRP_APP)  # type: ignore[attr-defined]
    if app is not None:
        app.request_leave(_vid(dev), GVRP_ATTR_VID)


def vlan_gvrp_init_applicant(real_dev: "NetDevice") -> GarpApplicant:
    return garp_init_applicant(real_dev, VLAN_GVRP_APP)


def vlan_gvrp_uninit_applicant(real_dev: "NetDevice") -> None:
    garp_uninit_applicant(real_dev, VLAN_GVRP_APP)


def vlan_gvrp_state(real_dev: "NetDevice", vid: int) -> str | None:
    """The applicant state of ``vid`` on ``real_dev`` (None: not declared)."""
    app = garp_applicant(real_dev, VLAN_GVRP_APP)
    return None if app is None else app.state_of(vid.to_bytes(2, "big"), GVRP_ATTR_VID)
