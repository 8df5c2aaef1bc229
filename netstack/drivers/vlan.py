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
closes the vlans and UP reopens them (unless ``loose_binding``), CHANGE transfers the
carrier (``netif_stacked_transfer_operstate``), CHANGEADDR lets a vlan that inherited the
address follow it, CHANGEMTU clamps the vlan MTU, UNREGISTER removes the vlans.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from netstack.core.dev import dev_queue_xmit, dev_queue_xmit_list
from netstack.core.netdevice import ARPHRD_ETHER, IFF_UP, NetDevice
from netstack.core.vlan_core import ETH_P_8021AD, ETH_P_8021Q, VLAN_PRIO_SHIFT
from netstack.errors import KernelError

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
    def carrier_ok(self) -> bool:
        """``netif_stacked_transfer_operstate``: the lower device's carrier."""
        real = self.real_dev
        return bool(real.flags & IFF_UP) and real.carrier_ok()

    def operstate(self) -> str:
        """``default_operstate``: LOWERLAYERDOWN when the lower device has no carrier."""
        if not self.flags & IFF_UP:
            return "DOWN"
        if not self.carrier_ok():
            return "LOWERLAYERDOWN"
        return "UP"

    def open(self) -> None:
        """``vlan_dev_open``: the lower device must be up (ENETDOWN) unless loose_binding.
        The check is done by :func:`vlan_open_check` before IFF_UP is set."""

    def link_index(self) -> int:
        return self.real_dev.ifindex

    def peer_netns(self) -> "Net | None":
        return self.real_dev.net

    def dellink(self) -> None:
        """``unregister_vlan_dev``: leave the lower device's group, then unregister."""
        group = getattr(self.real_dev, "vlan_group", None)
        if group is not None and group.get((self.vlan_proto, self.vlan_id)) is self:
            del group[(self.vlan_proto, self.vlan_id)]
        if self.net is not None and self.net.devices.get(self.name) is self:
            self.net.unregister_netdevice(self)

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
    group[(dev.vlan_proto, dev.vlan_id)] = dev


def vlan_open_check(dev: NetDevice) -> None:
    """``vlan_dev_open``'s refusal: ENETDOWN while the lower device is down (unless
    loose_binding).  Callers bringing a vlan device up call this first."""
    if isinstance(dev, VlanDevice) and not dev.real_dev.flags & IFF_UP \
            and not dev.vlan_flags & VLAN_FLAG_LOOSE_BINDING:
        raise KernelError(errno.ENETDOWN)


def vlan_device_event(event: str, dev: NetDevice) -> None:
    """``vlan_device_event``: the lower device's state changes reach its vlans."""
    group = getattr(dev, "vlan_group", None)
    if not group:
        return
    for vdev in list(group.values()):
        net = vdev.net
        if net is None:
            continue
        loose = vdev.vlan_flags & VLAN_FLAG_LOOSE_BINDING
        if event == "DOWN":
            if not loose and vdev.flags & IFF_UP:
                net.dev_close(vdev)
        elif event == "UP":
            if not loose and not vdev.flags & IFF_UP:
                net.dev_open(vdev)
        elif event == "CHANGE":
            net.world.linkwatch_fire_event(vdev)
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
           "vlan_device_event", "ETH_P_8021Q", "ETH_P_8021AD", "VLAN_FLAG_REORDER_HDR",
           "VLAN_FLAG_GVRP", "VLAN_FLAG_MVRP", "VLAN_FLAG_LOOSE_BINDING",
           "VLAN_FLAG_BRIDGE_BINDING"]
