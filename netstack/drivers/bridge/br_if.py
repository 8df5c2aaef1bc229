"""Adding and removing ports, and the netdevice events a port reacts to
(net/bridge/br_if.c, br.c ``br_device_event``).

``br_add_if`` follows the kernel's order — refusals (EINVAL for loopback / non-Ethernet /
invalid MAC, ELOOP for a bridge, EBUSY for a device with a master or an rx_handler,
EXFULL without a free port number), then the port (``new_nbp``: lowest free port
number, default flags and path cost from the link speed), promiscuity and allmulti,
the rx_handler, the newest-first port list, the port's local FDB entry, its default
VLAN, the bridge id, and finally enabling the port if both it and the bridge are up.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from netstack.core.netdevice import ARPHRD_ETHER, IFF_LOOPBACK
from netstack.drivers.bridge.br_fdb import (br_fdb_changeaddr, br_fdb_delete_by_port,
                                            fdb_add_local, is_valid_ether_addr)
from netstack.drivers.bridge.br_input import br_handle_frame
from netstack.drivers.bridge.br_private import (BR_ADMIN_COST, BR_MAX_PORTS,
                                                BR_STATE_DISABLED, NetBridge, NetBridgePort,
                                                br2_hook)
from netstack.drivers.bridge.br_stp import (br_stp_disable_port, br_stp_enable_port,
                                            br_stp_recalculate_bridge_id, port_oper_up)
from netstack.drivers.bridge.br_vlan import nbp_vlan_init
from netstack.errors import KernelError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice

#: ethtool speed (Mb/s) → STP path cost (br_if.c ``port_cost``)
_SPEED_COST = {10000: 2, 5000: 3, 2500: 4, 1000: 4, 100: 19, 10: 100}
#: link speeds the drivers report through get_link_ksettings (veth: SPEED_10000)
_KIND_SPEED = {"veth": 10000}
ETH_DATA_LEN = 1500


def port_cost(dev: "NetDevice") -> int:
    """``port_cost``: from the ethtool speed; 100 ("assume old 10Mbps") without one."""
    speed = getattr(dev, "speed", None) or _KIND_SPEED.get(dev.kind)
    if speed is None:
        return 100
    if speed > 10000:
        return 1
    return _SPEED_COST.get(speed, 100)


def find_portno(br: NetBridge) -> int:
    """``find_portno``: the lowest free number in 1..BR_MAX_PORTS-1."""
    used = {p.port_no for p in br.port_list}
    for n in range(1, BR_MAX_PORTS):
        if n not in used:
            return n
    raise KernelError(errno.EXFULL)


def br_mtu_auto_adjust(br: NetBridge) -> None:
    """``br_mtu_auto_adjust``: the smallest port MTU, unless the user set the MTU."""
    dev = br.dev
    if dev.mtu_set_by_user:
        return
    mtu = min((p.dev.mtu for p in br.port_list), default=ETH_DATA_LEN)
    if mtu != dev.mtu:
        dev.mtu = mtu
        dev.auto_mtu = mtu
        if dev.net is not None:
            dev.net.notify("CHANGEMTU", dev)
    dev.auto_mtu = mtu


def br_add_if(br: NetBridge, dev: "NetDevice") -> None:
    """``br_add_if``."""
    from netstack.drivers.bridge.br_device import BridgeDevice
    if dev.flags & IFF_LOOPBACK or dev.type != ARPHRD_ETHER \
            or not is_valid_ether_addr(bytes(dev.address)):
        raise KernelError(errno.EINVAL)
    if isinstance(dev, BridgeDevice):
        raise KernelError(errno.ELOOP, "Can not enslave a bridge to a bridge")
    if dev.master is not None:
        raise KernelError(errno.EBUSY)
    if dev.rx_handler is not None:
        raise KernelError(errno.EBUSY, "Device is already in use.")
    if dev is br.dev:
        raise KernelError(errno.ELOOP)
    p = NetBridgePort(br, dev, find_portno(br))
    p.path_cost = port_cost(dev)
    from netstack.drivers.bridge.br_stp import br_become_designated_port
    br_become_designated_port(p)
    from netstack.core.dev_addr_lists import dev_set_allmulti, dev_set_promiscuity
    dev_set_promiscuity(dev, 1)  # nbp_update_port_count → br_manage_promisc
    dev_set_allmulti(dev, 1)     # br_add_if
    dev.rx_handler_data = p
    dev.rx_handler = br_handle_frame
    dev.master = br.dev
    br.port_list.insert(0, p)
    br.had_ports = True
    mc_add = br2_hook("br_multicast", "br_multicast_add_port")
    if mc_add is not None and br.multicast is not None:
        mc_add(p)
    fdb_add_local(br, p, bytes(dev.address), 0)
    nbp_vlan_init(p)
    changed_addr = br_stp_recalculate_bridge_id(br)
    if port_oper_up(dev) and br.dev.flags & 1:
        br_stp_enable_port(p)
    if changed_addr and br.dev.net is not None:
        br.dev.net.notify("CHANGEADDR", br.dev)
    br_mtu_auto_adjust(br)


def del_nbp(p: NetBridgePort) -> None:
    """``del_nbp``: disable, unlink, flush everything the port owned."""
    br = p.br
    dev = p.dev
    if p.state != BR_STATE_DISABLED:
        br_stp_disable_port(p)
    br.port_list.remove(p)
    br.recalculate_neigh_suppress_enabled()
    for vid in list(p.vlgrp.vlans):
        from netstack.drivers.bridge.br_vlan import nbp_vlan_delete
        nbp_vlan_delete(p, vid)
    br_fdb_delete_by_port(br, p, 0, True)
    from netstack.core.dev_addr_lists import dev_set_allmulti, dev_set_promiscuity
    dev_set_promiscuity(dev, -1)
    dev_set_allmulti(dev, -1)
    dev.rx_handler = None
    dev.rx_handler_data = None
    dev.master = None
    mc_del = br2_hook("br_multicast", "br_multicast_del_port")
    if mc_del is not None and br.multicast is not None:
        mc_del(p)
    for t in (p.forward_delay_timer, p.message_age_timer, p.hold_timer):
        if t is not None:
            t.cancel()


def br_del_if(br: NetBridge, dev: "NetDevice") -> None:
    """``br_del_if``: EINVAL if ``dev`` is not our port."""
    p = br.port_of(dev)
    if p is None:
        raise KernelError(errno.EINVAL)
    del_nbp(p)
    br_mtu_auto_adjust(br)
    if br_stp_recalculate_bridge_id(br) and br.dev.net is not None:
        br.dev.net.notify("CHANGEADDR", br.dev)


def br_port_carrier_check(p: NetBridgePort) -> None:
    """``br_port_carrier_check``: cost refresh, then enable/disable on carrier."""
    dev = p.dev
    br = p.br
    if not p.flags & BR_ADMIN_COST and port_oper_up(dev):
        p.path_cost = port_cost(dev)
    if not br.dev.flags & 1:
        return
    if port_oper_up(dev):
        if p.state == BR_STATE_DISABLED:
            br_stp_enable_port(p)
    elif p.state != BR_STATE_DISABLED:
        br_stp_disable_port(p)


def br_device_event(event: str, dev: "NetDevice") -> None:
    """``br_device_event`` (a netdevice notifier): the bridge's reaction to its ports'
    events, and to its own address change (``br_set_mac_address``)."""
    from netstack.drivers.bridge.br_device import BridgeDevice
    from netstack.drivers.bridge.br_private import br_port_get
    if event == "DOWN":
        from netstack.drivers.bridge.br_dflt_fdb import note_updown
        note_updown(event, dev)
    if isinstance(dev, BridgeDevice):
        if event == "CHANGEADDR":
            dev.address_changed()
        elif event == "CHANGEMTU" and dev.mtu != dev.auto_mtu:
            dev.mtu_set_by_user = True
        return
    p = br_port_get(dev)
    if p is None:
        return
    br = p.br
    if event == "CHANGEADDR":
        br_fdb_changeaddr(p, bytes(dev.address))
        if br_stp_recalculate_bridge_id(br) and br.dev.net is not None:
            br.dev.net.notify("CHANGEADDR", br.dev)
    elif event == "CHANGEMTU":
        br_mtu_auto_adjust(br)
    elif event == "CHANGE":
        br_port_carrier_check(p)
    elif event == "DOWN":
        if br.dev.flags & 1 and p.state != BR_STATE_DISABLED:
            br_stp_disable_port(p)
    elif event == "UP":
        if br.dev.flags & 1 and port_oper_up(dev) and p.state == BR_STATE_DISABLED:
            br_stp_enable_port(p)
    elif event == "UNREGISTER":
        br_del_if(br, dev)
