"""802.1Q / 802.1ad VLAN devices (net/8021q/vlan.c, vlan_dev.c, vlan_netlink.c).

A vlan device sits on a lower ("real") device and is found on receive by (proto, VID) in
the lower device's group (``vlan_group_get_device``): :func:`netstack.core.vlan_core.
vlan_do_receive` switches ``skb->dev`` to it.  On transmit it puts its tag out of band
(``vlan_dev_hard_start_xmit``) with the PCP from the egress QoS map and queues the packet
on the lower device, whose ``validate_xmit_vlan`` writes the tag into the packet if that
device lacks the offload.  Stacking a ``vlan`` on a ``vlan`` gives QinQ: the upper tag is
pushed inside on the lower vlan device (which has no tag offload, as in vlan_dev_init), and
the lower one becomes the out-of-band tag.

State changes of the lower device follow ``vlan_device_event`` (net/8021q/vlan.c): DOWN
closes the vlans and UP reopens them (unless ``loose_binding``), UP/DOWN/CHANGE transfer
the carrier (``netif_stacked_transfer_operstate``, not with ``bridge_binding``),
CHANGEADDR lets a vlan that inherited the address follow it, CHANGEMTU clamps the vlan
MTU, UNREGISTER removes the vlans.  ``ip link set … type vlan`` is
:meth:`VlanDevice.change_flags` plus the QoS map setters; ``mvrp`` declares the VID
through :mod:`netstack.net802.mvrp`; docs/vlan.md has the whole picture.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.core.dev import dev_queue_xmit, dev_queue_xmit_list
from netstack.core.netdevice import ARPHRD_ETHER, IFF_UP, NetDevice
from netstack.core.vlan_core import ETH_P_8021AD, ETH_P_8021Q, VLAN_PRIO_SHIFT
from netstack.errors import KernelError
from netstack.net802.gvrp import (vlan_gvrp_init_applicant, vlan_gvrp_request_join,
                                  vlan_gvrp_request_leave, vlan_gvrp_uninit_applicant)
from netstack.net802.mvrp import (vlan_mvrp_init_applicant, vlan_mvrp_request_join,
                                  vlan_mvrp_request_leave, vlan_mvrp_uninit_applicant)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

# enum vlan_flags (include/uapi/linux/if_vlan.h)
VLAN_FLAG_REORDER_HDR = 0x1
VLAN_FLAG_GVRP = 0x2
VLAN_FLAG_LOOSE_BINDING = 0x4
VLAN_FLAG_MVRP = 0x8
VLAN_FLAG_BRIDGE_BINDING = 0x10
VLAN_FLAGS_ALL = (VLAN_FLAG_REORDER_HDR | VLAN_FLAG_GVRP | VLAN_FLAG_LOOSE_BINDING
                  | VLAN_FLAG_MVRP | VLAN_FLAG_BRIDGE_BINDING)
VLAN_PRIO_MASK = 0xE000
VLAN_N_VID = 4096
NET_ADDR_STOLEN = 2

#: ``vlan_dev_init``: the vlan device's own features (no tag offload of its own).
VLAN_FEATURES = frozenset({
    "tx-checksum-ip-generic", "tx-scatter-gather", "tx-scatter-gather-fraglist",
    "tx-generic-segmentation", "tx-tcp-segmentation", "tx-tcp-ecn-segmentation",
    "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation", "tx-udp-segmentation",
    "highdma", "tx-checksum-sctp", "tx-gre-segmentation", "tx-gre-csum-segmentation",
    "tx-ipxip4-segmentation", "tx-ipxip6-segmentation", "tx-udp_tnl-segmentation",
    "tx-udp_tnl-csum-segmentation", "tx-gso-list", "rx-gro",
})


class VlanDevice(NetDevice):
    """``ip link add link REAL name N type vlan [protocol P] id VID``."""

    kind = "vlan"
    default_features = VLAN_FEATURES
    hw_features = VLAN_FEATURES

    def __init__(self, name: str, real_dev: NetDevice, proto: int, vid: int,
                 address: bytes | None = None) -> None:
        super().__init__(name, address if address is not None else real_dev.address,
                         real_dev.mtu)
        #: NET_ADDR_STOLEN when the address is the lower device's (vlan_dev_init)
        self.addr_assign_type = 3 if address is not None else NET_ADDR_STOLEN
        self.real_dev = real_dev
        self.vlan_proto = proto
        self.vlan_id = vid
        #: ``vlan->flags`` (VLAN_FLAG_*); REORDER_HDR by default (vlan_newlink)
        self.vlan_flags = VLAN_FLAG_REORDER_HDR
        #: ``ingress_priority_map[8]``: PCP → skb priority
        self.ingress_map = [0] * 8
        self.nr_ingress_mappings = 0
        #: ``egress_priority_map[16]``: hash buckets (priority & 0xF) of [priority, vlan_qos]
        #: entries, newest first, exactly as vlan_dev_set_egress_priority links them.
        self.egress_buckets: list[list[list[int]]] = [[] for _ in range(16)]
        self.nr_egress_mappings = 0
        self.max_mtu = 65535
        #: the vlan device's own carrier bit (``__LINK_STATE_NOCARRIER`` clear on a fresh
        #: netdev); moved by :meth:`transfer_operstate`, :meth:`open`, :meth:`stop` as
        #: net/8021q/vlan.c and vlan_dev.c move it
        self.carrier = True

    # ------------------------------------------------------------------- QoS maps
    def set_ingress_priority(self, skb_prio: int, vlan_prio: int) -> None:
        """``vlan_dev_set_ingress_priority``: PCP ``vlan_prio & 7`` → ``skb_prio``."""
        i = vlan_prio & 7
        old = self.ingress_map[i]
        if old and not skb_prio:
            self.nr_ingress_mappings -= 1
        elif not old and skb_prio:
            self.nr_ingress_mappings += 1
        self.ingress_map[i] = skb_prio & 0xFFFFFFFF

    def set_egress_priority(self, skb_prio: int, vlan_prio: int) -> None:
        """``vlan_dev_set_egress_priority``: skb priority → PCP; a 0 PCP keeps the entry but
        no longer counts (nor dumps) it."""
        qos = (vlan_prio << VLAN_PRIO_SHIFT) & VLAN_PRIO_MASK
        bucket = self.egress_buckets[skb_prio & 0xF]
        for mp in bucket:
            if mp[0] == skb_prio:
                if mp[1] and not qos:
                    self.nr_egress_mappings -= 1
                elif not mp[1] and qos:
                    self.nr_egress_mappings += 1
                mp[1] = qos
                return
        bucket.insert(0, [skb_prio, qos])
        if qos:
            self.nr_egress_mappings += 1

    def egress_qos_mask(self, skb_prio: int) -> int:
        """``vlan_dev_get_egress_qos_mask``: the PCP bits for an skb priority (0 if none)."""
        for mp in self.egress_buckets[skb_prio & 0xF]:
            if mp[0] == skb_prio:
                return mp[1]
        return 0

    def ingress_priority(self, tci: int) -> int:
        """``vlan_get_ingress_priority``."""
        return self.ingress_map[(tci >> VLAN_PRIO_SHIFT) & 7]

    def ingress_mappings(self) -> list[tuple[int, int]]:
        """IFLA_VLAN_INGRESS_QOS as vlan_fill_info dumps it (PCP order, non-zero only)."""
        return [(i, p) for i, p in enumerate(self.ingress_map) if p]

    def egress_mappings(self) -> list[tuple[int, int]]:
        """IFLA_VLAN_EGRESS_QOS as vlan_fill_info dumps it (bucket order, newest first)."""
        return [(mp[0], (mp[1] >> VLAN_PRIO_SHIFT) & 7)
                for bucket in self.egress_buckets for mp in bucket if mp[1]]

    # --------------------------------------------------------------------- state
    def lower_carrier(self) -> bool:
        """``netif_carrier_ok(real_dev)``: the lower device's carrier bit, whatever its admin
        state (veth clears it in ``veth_close``; a device that never touches its carrier,
        like dummy, keeps it on even while down)."""
        return self.real_dev.carrier_ok()

    def transfer_operstate(self) -> None:
        """net/8021q/vlan.c ``vlan_stacked_transfer_operstate``: the lower device's carrier
        becomes ours (``netif_stacked_transfer_operstate``) -- unless ``bridge_binding`` is
        on, where the carrier is the bridge's business (br_vlan.c
        ``br_vlan_set_vlan_dev_state``) and a non-bridge lower device's changes no longer
        reach it at all.  A change queues a linkwatch event (NETDEV_CHANGE for our uppers)."""
        if self.vlan_flags & VLAN_FLAG_BRIDGE_BINDING:
            return
        self._set_carrier(self.lower_carrier())

    def _set_carrier(self, on: bool) -> None:
        """``netif_carrier_on``/``_off``: only a change fires linkwatch."""
        if on != self.carrier:
            self.carrier = on
            if self.net is not None:
                self.net.world.linkwatch_fire_event(self)

    def carrier_ok(self) -> bool:
        """``netif_carrier_ok`` of the vlan device (see :meth:`transfer_operstate`)."""
        return self.carrier

    def operstate(self) -> str:
        """net/core/link_watch.c ``default_operstate``: without carrier, LOWERLAYERDOWN when
        the lower device (``dev_get_iflink``) is not operationally up, DOWN otherwise."""
        if not self.flags & IFF_UP:
            return "DOWN"
        if not self.carrier:
            real = self.real_dev
            return "DOWN" if real.operstate() in ("UP", "UNKNOWN") else "LOWERLAYERDOWN"
        return "UP"

    def open(self) -> None:
        """``vlan_dev_open``: the lower device must be up (ENETDOWN) unless loose_binding --
        checked by :func:`vlan_open_check` before IFF_UP is set -- then the GVRP and MVRP
        joins (net/8021q/vlan_gvrp.c, vlan_mvrp.c) and carrier on if the lower device has
        it (not with bridge_binding)."""
        if self.vlan_flags & VLAN_FLAG_GVRP:
            vlan_gvrp_request_join(self)
        if self.vlan_flags & VLAN_FLAG_MVRP:
            vlan_mvrp_request_join(self)
        if self.lower_carrier() and not self.vlan_flags & VLAN_FLAG_BRIDGE_BINDING:
            self._set_carrier(True)

    def stop(self) -> None:
        """``vlan_dev_stop``: the GVRP/MVRP leaves, carrier off (not with bridge_binding)."""
        if self.vlan_flags & VLAN_FLAG_GVRP:
            vlan_gvrp_request_leave(self)
        if self.vlan_flags & VLAN_FLAG_MVRP:
            vlan_mvrp_request_leave(self)
        if not self.vlan_flags & VLAN_FLAG_BRIDGE_BINDING:
            self._set_carrier(False)

    def change_flags(self, flags: int, mask: int) -> None:
        """net/8021q/vlan_dev.c ``vlan_dev_change_flags`` (``ip link set … type vlan
        reorder_hdr|gvrp|mvrp|loose_binding|bridge_binding on|off``).

        The new flags apply at once: REORDER_HDR to the next received/sent packet
        (``vlan_do_receive``, :meth:`start_xmit`), LOOSE_BINDING to the next lower-device
        UP/DOWN (:func:`vlan_device_event`).  On a running device, switching GVRP / MVRP
        on or off is the GARP / MRP applicant's join or leave of our VID
        (:mod:`netstack.net802.gvrp`, :mod:`netstack.net802.mvrp`).  Switching
        BRIDGE_BINDING on a running vlan of a bridge notifies the bridge
        (NETDEV_CHANGE_DETAILS -> :func:`br_vlan_upper_change`); on any other lower device
        the kernel just stops transferring the carrier, and so does
        :meth:`transfer_operstate`.  All of this only on a running device: the kernel
        returns early otherwise."""
        if mask & ~VLAN_FLAGS_ALL:
            raise KernelError(errno.EINVAL)
        old = self.vlan_flags
        new = (old & ~mask) | (flags & mask)
        self.vlan_flags = new
        if not self.flags & IFF_UP:
            return
        if (new ^ old) & VLAN_FLAG_GVRP:
            if new & VLAN_FLAG_GVRP:
                vlan_gvrp_request_join(self)
            else:
                vlan_gvrp_request_leave(self)
        if (new ^ old) & VLAN_FLAG_MVRP:
            if new & VLAN_FLAG_MVRP:
                vlan_mvrp_request_join(self)
            else:
                vlan_mvrp_request_leave(self)
        if (new ^ old) & VLAN_FLAG_BRIDGE_BINDING and _is_bridge(self.real_dev):
            # NETDEV_CHANGE_DETAILS -> br_vlan_upper_change(linking = bridge_binding); note
            # that switching it off returns early there (the upper is no longer bound)
            br_vlan_upper_change(self.real_dev, self, bool(new & VLAN_FLAG_BRIDGE_BINDING))

    def link_index(self) -> int:
        return self.real_dev.ifindex

    def peer_netns(self) -> "Net | None":
        return self.real_dev.net

    def dellink(self) -> None:
        """``unregister_vlan_dev``: the MVRP/GVRP leaves, leave the lower device's group,
        unregister; the lower device's last vlan takes the applicants with it."""
        if self.vlan_flags & VLAN_FLAG_MVRP:
            vlan_mvrp_request_leave(self)
        if self.vlan_flags & VLAN_FLAG_GVRP:
            vlan_gvrp_request_leave(self)
        group = getattr(self.real_dev, "vlan_group", None)
        if group is not None and group.get((self.vlan_proto, self.vlan_id)) is self:
            del group[(self.vlan_proto, self.vlan_id)]
        if _is_bridge(self.real_dev):  # netdev_upper_dev_unlink: NETDEV_CHANGEUPPER
            br_vlan_upper_change(self.real_dev, self, False)
        if self.net is not None and self.net.devices.get(self.name) is self:
            self.net.unregister_netdevice(self)
        if group is not None and not group:  # the last vlan: flush the leaves
            vlan_mvrp_uninit_applicant(self.real_dev)
            vlan_gvrp_uninit_applicant(self.real_dev)

    # ---------------------------------------------------------------------- xmit
    def start_xmit(self, pkt: "Packet", more: bool) -> None:
        """``vlan_dev_hard_start_xmit``: put our tag out of band (unless, with
        REORDER_HDR off, the frame already carries our TPID in-band) and queue the packet
        on the lower device; count it by the result."""
        buf = pkt.buf
        d = pkt.data
        inband = (buf[d + 12] << 8) | buf[d + 13] if pkt.tail - d >= 14 else 0
        if self.vlan_flags & VLAN_FLAG_REORDER_HDR or inband != self.vlan_proto:
            tci = self.vlan_id | self.egress_qos_mask(pkt.priority)
            pkt.vlan_proto = self.vlan_proto
            pkt.vlan_tci = tci
        n = pkt.tail - pkt.data
        real = self.real_dev
        if not real.flags & IFF_UP:
            # dev_queue_xmit on a down device: dropped there, and NET_XMIT_DROP here
            self.stats.tx_dropped += 1
        else:
            self.stats.tx_packets += 1
            self.stats.tx_bytes += n
        pkt.dev = real
        dev_queue_xmit(pkt, real)
        if not more:
            self.ring_doorbell()

    def start_xmit_list(self, pkts: list["Packet"]) -> None:
        """The batch form of :meth:`start_xmit`: the same tagging and counting per packet,
        then the whole batch goes to the lower device in one ``dev_queue_xmit_list`` call,
        so the lower device still rings one doorbell per batch."""
        reorder = self.vlan_flags & VLAN_FLAG_REORDER_HDR
        proto = self.vlan_proto
        vid = self.vlan_id
        real = self.real_dev
        up = real.flags & IFF_UP
        nbytes = 0
        for pkt in pkts:
            if not reorder:
                d = pkt.data
                if pkt.tail - d >= 14 and ((pkt.buf[d + 12] << 8) | pkt.buf[d + 13]) == proto:
                    nbytes += pkt.tail - d
                    continue
            pkt.vlan_proto = proto
            pkt.vlan_tci = vid | self.egress_qos_mask(pkt.priority)
            nbytes += pkt.tail - pkt.data
        if up:
            self.stats.tx_packets += len(pkts)
            self.stats.tx_bytes += nbytes
        else:
            self.stats.tx_dropped += len(pkts)
        dev_queue_xmit_list(real, pkts)
        self.ring_doorbell()


# ------------------------------------------------------------------ configuration
def vlan_check_real_dev(real_dev: NetDevice, proto: int, vid: int) -> None:
    """``vlan_check_real_dev`` (net/8021q/vlan.c)."""
    if "vlan-challenged" in real_dev.features or real_dev.type != ARPHRD_ETHER:
        raise KernelError(errno.EOPNOTSUPP, "8021q: VLANs not supported on device")
    if (proto, vid) in getattr(real_dev, "vlan_group", {}):
        raise KernelError(errno.EEXIST, "8021q: VLAN device already exists")


# ------------------------------------------------------- bridge binding (br_vlan.c)
def _is_bridge(dev: NetDevice) -> bool:
    """``netif_is_bridge_master``."""
    return dev.kind == "bridge" and getattr(dev, "br", None) is not None


def _br_vlan_is_dev_up(dev: NetDevice) -> bool:
    """``br_vlan_is_dev_up``: IFF_UP and ``netif_oper_up`` (operstate UP or UNKNOWN)."""
    return bool(dev.flags & IFF_UP) and dev.operstate() in ("UP", "UNKNOWN")


def _bind_vlan_devs(br_dev: NetDevice) -> list[VlanDevice]:
    """The bridge's vlan uppers with ``bridge_binding`` (``br_vlan_is_bind_vlan_dev``)."""
    group = getattr(br_dev, "vlan_group", None) or {}
    return [v for v in group.values()
            if v.vlan_flags & VLAN_FLAG_BRIDGE_BINDING and v.net is not None]


def _upper_bind_vlan_dev(br_dev: NetDevice, vid: int) -> VlanDevice | None:
    """``br_vlan_get_upper_bind_vlan_dev``."""
    return next((v for v in _bind_vlan_devs(br_dev) if v.vlan_id == vid), None)


def br_vlan_set_vlan_dev_state(br_dev: NetDevice, vdev: VlanDevice) -> None:
    """net/bridge/br_vlan.c ``br_vlan_set_vlan_dev_state``: a bridge-bound vlan device has
    carrier iff the bridge has it and some port in that VLAN is up (IFF_UP + oper up)."""
    if not br_dev.carrier_ok():
        vdev._set_carrier(False)
        return
    vid = vdev.vlan_id
    on = any(vid in p.vlgrp.vlans and _br_vlan_is_dev_up(p.dev)
             for p in br_dev.br.port_list)  # type: ignore[attr-defined]
    vdev._set_carrier(on)


def _br_vlan_set_all_vlan_dev_state(port: Any) -> None:
    """``br_vlan_set_all_vlan_dev_state``: a port event; for each of its VLANs with a bound
    vlan device: an up port turns it on (if the bridge has carrier), a down one makes the
    bridge look again."""
    br_dev = port.br.dev
    for vid in list(port.vlgrp.vlans):
        vdev = _upper_bind_vlan_dev(br_dev, vid)
        if vdev is None:
            continue
        if _br_vlan_is_dev_up(port.dev):
            if br_dev.carrier_ok():
                vdev._set_carrier(True)
        else:
            br_vlan_set_vlan_dev_state(br_dev, vdev)


def br_vlan_upper_change(br_dev: NetDevice, vdev: VlanDevice, linking: bool) -> None:
    """``br_vlan_upper_change`` (NETDEV_CHANGEUPPER / the bridge-binding toggle): only for
    a bound vlan device; linking sets its state and BROPT_VLAN_BRIDGE_BINDING, unlinking
    recomputes the option from the remaining bound uppers."""
    if not vdev.vlan_flags & VLAN_FLAG_BRIDGE_BINDING:
        return
    if linking:
        br_vlan_set_vlan_dev_state(br_dev, vdev)
        br_dev.vlan_bridge_binding = True  # type: ignore[attr-defined]
    else:
        br_dev.vlan_bridge_binding = bool(_bind_vlan_devs(br_dev))  # type: ignore[attr-defined]


def nbp_vlan_set_vlan_dev_state(port: Any, vid: int) -> None:
    """``nbp_vlan_set_vlan_dev_state``: a VLAN added to / removed from a bridge port
    (``__vlan_add``/``__vlan_del``, also on port join/leave) re-evaluates its bound vlan
    device.  Called by netstack/drivers/bridge/br_vlan.py."""
    br_dev = port.br.dev
    if not getattr(br_dev, "vlan_bridge_binding", False):
        return
    vdev = _upper_bind_vlan_dev(br_dev, vid)
    if vdev is not None:
        br_vlan_set_vlan_dev_state(br_dev, vdev)


def _br_vlan_events(event: str, dev: NetDevice) -> None:
    """The bridge-binding part of the bridge's netdev notifier (br.c ``br_device_event``):
    ``br_vlan_bridge_event`` for the bridge itself (UP/CHANGE: every bound vlan device is
    re-evaluated) and ``br_vlan_port_event`` for its ports (UP/DOWN/CHANGE)."""
    if _is_bridge(dev):
        if event in ("UP", "CHANGE") and getattr(dev, "vlan_bridge_binding", False):
            for vdev in _bind_vlan_devs(dev):
                br_vlan_set_vlan_dev_state(dev, vdev)
        return
    port = getattr(dev, "rx_handler_data", None)
    br = getattr(port, "br", None)
    if br is None or getattr(port, "dev", None) is not dev or not hasattr(port, "vlgrp"):
        return
    if event in ("UP", "DOWN", "CHANGE") and getattr(br.dev, "vlan_bridge_binding", False):
        _br_vlan_set_all_vlan_dev_state(port)


def register_vlan_dev(net: "Net", dev: VlanDevice, ifindex: int = 0) -> None:
    """``register_vlan_dev``: register the device, enter it in the lower device's group
    and make sure the lower device's events reach :func:`vlan_device_event`."""
    real = dev.real_dev
    world = net.world
    if vlan_device_event not in world.netdev_notifiers:
        world.netdev_notifiers.append(vlan_device_event)
    net.register_netdevice(dev, ifindex=ifindex)
    group = getattr(real, "vlan_group", None)
    if group is None:
        group = {}
        real.vlan_group = group  # type: ignore[attr-defined]
    if not group:  # grp->nr_vlan_devs == 0: the lower device's GVRP/MVRP applicants
        vlan_gvrp_init_applicant(real)
        vlan_mvrp_init_applicant(real)
    group[(dev.vlan_proto, dev.vlan_id)] = dev
    dev.transfer_operstate()  # register_vlan_dev: vlan_stacked_transfer_operstate
    if _is_bridge(real):  # netdev_upper_dev_link: NETDEV_CHANGEUPPER on the bridge
        br_vlan_upper_change(real, dev, True)


def vlan_open_check(dev: NetDevice) -> None:
    """``vlan_dev_open``'s refusal: ENETDOWN while the lower device is down (unless
    loose_binding).  Callers bringing a vlan device up call this first."""
    if not isinstance(dev, VlanDevice):
        return
    if not dev.real_dev.flags & IFF_UP and not dev.vlan_flags & VLAN_FLAG_LOOSE_BINDING:
        raise KernelError(errno.ENETDOWN)


def vlan_device_event(event: str, dev: NetDevice) -> None:
    """``vlan_device_event`` (net/8021q/vlan.c): the lower device's state changes reach its
    vlans.  DOWN closes them and UP reopens them unless ``loose_binding`` (their admin state
    then stays as it is), and either way their carrier follows the lower device's
    (``vlan_stacked_transfer_operstate``, skipped with ``bridge_binding``); so does CHANGE."""
    _br_vlan_events(event, dev)
    group = getattr(dev, "vlan_group", None)
    if not group:
        return
    vdevs = [v for v in group.values() if v.net is not None]
    for vdev in vdevs:
        net = vdev.net
        loose = vdev.vlan_flags & VLAN_FLAG_LOOSE_BINDING
        if event == "DOWN":
            if vdev.flags & IFF_UP and not loose:
                net.dev_close(vdev)
            # the kernel transfers here for the vlans that were up, and for all of them on
            # the NETDEV_CHANGE that the lower device's own netif_carrier_off/_on queues;
            # netstack's drivers queue that event only for the peer, so transfer for all now
            vdev.transfer_operstate()
        elif event == "UP":
            if not vdev.flags & IFF_UP and not loose:
                net.dev_open(vdev)
            vdev.transfer_operstate()
        elif event == "CHANGE":
            vdev.transfer_operstate()
        elif event == "CHANGEADDR":
            if vdev.addr_assign_type == NET_ADDR_STOLEN and vdev.address != dev.address:
                vdev.address = dev.address
                net.notify("CHANGEADDR", vdev)
        elif event == "CHANGEMTU":
            if vdev.mtu > dev.mtu:
                vdev.mtu = dev.mtu
                net.notify("CHANGEMTU", vdev)
        elif event == "UNREGISTER":
            vdev.dellink()


__all__ = ["VlanDevice", "register_vlan_dev", "vlan_check_real_dev", "vlan_open_check",
           "vlan_device_event", "br_vlan_set_vlan_dev_state", "nbp_vlan_set_vlan_dev_state",
           "ETH_P_8021Q", "ETH_P_8021AD", "VLAN_FLAG_REORDER_HDR",
           "VLAN_FLAG_GVRP", "VLAN_FLAG_MVRP", "VLAN_FLAG_LOOSE_BINDING",
           "VLAN_FLAG_BRIDGE_BINDING"]
