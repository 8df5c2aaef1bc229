"""VXLAN (RFC 7348) as drivers/net/vxlan/ does it: the device and its transmit
(:mod:`.device`), the forwarding database (:mod:`.fdb`) and receive (:mod:`.rcv`)."""
from netstack.drivers.vxlan.device import VxlanConfig, VxlanDevice, VxlanSock, vxlan_newlink
from netstack.drivers.vxlan.fdb import FdbEntry, Rdst, VxlanFdb
from netstack.drivers.vxlan.rcv import vxlan_rcv

__all__ = ["VxlanConfig", "VxlanDevice", "VxlanSock", "vxlan_newlink", "FdbEntry", "Rdst",
           "VxlanFdb", "vxlan_rcv"]
