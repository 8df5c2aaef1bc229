"""The bridge network device (net/bridge/br_device.c).

``BridgeDevice`` is the ``net_device`` whose private part is the :class:`NetBridge`
(``dev.br``, ``br.dev``).  Transmitting on it (``br_dev_xmit``) is how the host sends
into the bridged segment: the frame gets a VLAN from the bridge's own VLAN group, is
offered to BR2's ARP/ND suppression, and is forwarded, flooded or multicast exactly like
a received frame, but with ``local_orig`` (NF_BR_LOCAL_OUT, and mcast/bcast flooding
ignores the ports' mcast_flood/bcast_flood flags).

The bridge's carrier is "some port forwards", set by br_port_state_selection whenever a
port changes state, so a bridge whose ports are all down (or whose last port left) is
NO-CARRIER / DOWN even when administratively up; a bridge that never had a port keeps
the carrier every new device starts with (UP,LOWER_UP, state UNKNOWN) unless it was
created with an address (br_stp_change_bridge_id runs the selection) — all measured on
6.18.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.netdevice import NetDevice
from netstack.drivers.bridge.br_fdb import br_fdb_delete_by_port
from netstack.drivers.bridge.br_forward import br_flood, br_forward
from netstack.drivers.bridge.br_private import (BR_PKT_BROADCAST, BR_PKT_MULTICAST,
                                                BR_PKT_UNICAST, BrInputCb, NetBridge, br2_hook)
from netstack.drivers.bridge.br_vlan import br_allowed_ingress

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

ETH_HLEN = 14
NET_ADDR_RANDOM = 1
NET_ADDR_SET = 3
#: br_device.c COMMON_FEATURES + the VLAN TX offloads br_dev_setup adds
BRIDGE_FEATURES = frozenset({
    "scatter-gather", "tx-checksum-ip-generic", "highdma", "tx-gso-robust",
    "tcp-segmentation-offload", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation",
    "tx-tcp6-segmentation", "tx-gso-partial", "tx-udp-segmentation", "tx-gso-list",
    "tx-vlan-hw-insert", "tx-vlan-stag-hw-insert", "generic-receive-offload",
    "tx-fcoe-segmentation", "tx-gre-segmentation", "tx-gre-csum-segmentation",
    "tx-ipxip4-segmentation", "tx-ipxip6-segmentation", "tx-udp_tnl-segmentation",
    "tx-udp_tnl-csum-segmentation", "tx-sctp-segmentation", "tx-esp-segmentation",
    "netns-local",
})

ETH_P_ARP = 0x0806
ETH_P_RARP = 0x8035
ETH_P_IPV6 = 0x86DD


class BridgeDevice(NetDevice):
    """``br_dev_setup``'d net_device: kind ``bridge``, ``noqueue``, netns-local."""

    kind = "bridge"
    default_features = BRIDGE_FEATURES
    netns_local = True

    def __init__(self, name: str, address: bytes, addr_set: bool = False) -> None:
        super().__init__(name, address)
        self.addr_assign_type = NET_ADDR_SET if addr_set else NET_ADDR_RANDOM
        self.br = NetBridge(self)
        # a new net_device has its carrier on; only br_port_state_selection (ports
        # coming and going) turns it off — measured on 6.18: a bridge that never had a
        # port is UP,LOWER_UP (state UNKNOWN), one whose last port left is NO-CARRIER
        self.carrier = True
        self.mtu_set_by_user = False
        self.auto_mtu = self.mtu
        #: the address the bridge's own local FDB entries were made for
        self.fdb_addr = bytes(address)

    @property
    def tso_max_size(self) -> int:
        """``br_set_gso_limits``: the smallest port value once a port was ever added
        (TSO_MAX_SIZE with none left); a bridge that never had a port keeps the netdev
        default GSO_LEGACY_MAX_SIZE (measured: 65536, then 524280)."""
        if not self.br.had_ports:
            return 65536
        return min((getattr(p.dev, "tso_max_size", 524280) for p in self.br.port_list),
                   default=524280)

    # ------------------------------------------------------------------ state
    def carrier_ok(self) -> bool:
        return self.carrier

    def operstate_up(self) -> str:
        return "UP"

    def set_carrier(self, on: bool) -> None:
        """``netif_carrier_on/off``: linkwatch tells the stack (NETDEV_CHANGE)."""
        if on == self.carrier:
            return
        self.carrier = on
        if self.net is not None:
            self.net.world.linkwatch_fire_event(self)
            self.net.world.linkwatch_run()

    def set_mac(self, addr: bytes) -> None:
        """``eth_hw_addr_set`` from br_stp_change_bridge_id (no notifier here: br_add_if/
        br_del_if send NETDEV_CHANGEADDR afterwards)."""
        self.address = bytes(addr)
        self.fdb_addr = bytes(addr)

    def address_changed(self) -> None:
        """``br_set_mac_address`` after ``ip link set br0 address X`` (the generic code
        already stored the address and marked it NET_ADDR_SET): the bridge id, the local
        FDB entry and the tree follow (``br_stp_change_bridge_id``)."""
        from netstack.drivers.bridge.br_stp import br_stp_change_bridge_id
        new = bytes(self.address)
        if new == self.fdb_addr:
            return
        self.address = self.fdb_addr
        br_stp_change_bridge_id(self.br, new)

    # -------------------------------------------------------------------- ndo
    def open(self) -> None:
        """``br_dev_open``: STP/ports on, multicast open."""
        from netstack.drivers.bridge.br_stp import br_stp_enable_bridge
        br_stp_enable_bridge(self.br)
        fn = br2_hook("br_multicast", "br_multicast_open")
        if fn is not None and self.br.multicast is not None:
            fn(self.br)

    def stop(self) -> None:
        """``br_dev_stop``."""
        from netstack.drivers.bridge.br_stp import br_stp_disable_bridge
        br_stp_disable_bridge(self.br)
        fn = br2_hook("br_multicast", "br_multicast_stop")
        if fn is not None and self.br.multicast is not None:
            fn(self.br)

    def start_xmit(self, pkt: "Packet", more: bool) -> None:
        """``br_dev_xmit``."""
        br = self.br
        if "nf_bridge_bridged_dnat" in pkt.__dict__:
            # nf_br_ops->br_dev_xmit_hook, before the tx counters
            from netstack.drivers.bridge.br_netfilter import (
                br_nf_pre_routing_finish_bridge_slow)
            if br_nf_pre_routing_finish_bridge_slow(pkt):
                return
        self.stats.tx_packets += 1
        self.stats.tx_bytes += len(pkt)
        cb = BrInputCb()
        cb.brdev = self
        pkt.cb = cb
        if len(pkt) < ETH_HLEN:
            kfree_skb_reason(pkt, "PKT_TOO_SMALL", self.net)
            return
        pkt.mac_header = pkt.data
        pkt.data += ETH_HLEN
        ok, vid = br_allowed_ingress(br, br.vlgrp, pkt)
        if not ok:
            return
        buf = pkt.buf
        mac = pkt.mac_header
        h_proto = (buf[mac + 12] << 8) | buf[mac + 13]
        if br.neigh_suppress_enabled:
            if h_proto in (ETH_P_ARP, ETH_P_RARP):
                fn = br2_hook("br_arp_nd_proxy", "br_do_proxy_suppress_arp")
                if fn is not None:
                    fn(pkt, br, vid, None)
            elif pkt.protocol == ETH_P_IPV6 and pkt.tail - pkt.data >= 40 + 24 \
                    and buf[pkt.data + 6] == 58:
                is_nd = br2_hook("br_arp_nd_proxy", "br_is_nd_neigh_msg")
                if is_nd is not None:
                    msg = is_nd(pkt)
                    if msg is not None:
                        br2_hook("br_arp_nd_proxy", "br_do_suppress_nd")(pkt, br, vid, None,
                                                                         msg)
        dest = bytes(buf[mac:mac + 6])
        if dest == b"\xff\xff\xff\xff\xff\xff":
            br_flood(br, pkt, BR_PKT_BROADCAST, False, True, vid)
        elif dest[0] & 1:
            if br.multicast is not None:
                rcv = br2_hook("br_multicast", "br_multicast_rcv")
                if rcv is not None and rcv(br, None, pkt, vid):
                    kfree_skb_reason(pkt, "NOT_SPECIFIED", self.net)
                    return
                mdst = br2_hook("br_multicast", "br_mdb_get")(br, pkt, vid)
                if (mdst is not None or cb.mrouters_only) and br2_hook(
                        "br_multicast", "br_multicast_querier_exists")(br, pkt, mdst):
                    br2_hook("br_multicast", "br_multicast_flood")(mdst, pkt, br, False, True)
                    return
            br_flood(br, pkt, BR_PKT_MULTICAST, False, True, vid)
        else:
            f = br.fdb.get((dest, vid))
            if f is not None:
                br_forward(f.dst, pkt, False, True)
            else:
                br_flood(br, pkt, BR_PKT_UNICAST, False, True, vid)

    # ---------------------------------------------------------------- masters
    def add_slave(self, slave: NetDevice) -> None:
        """``br_add_slave`` → ``br_add_if``."""
        from netstack.drivers.bridge.br_if import br_add_if
        br_add_if(self.br, slave)

    def del_slave(self, slave: NetDevice) -> None:
        """``br_del_slave`` → ``br_del_if``."""
        from netstack.drivers.bridge.br_if import br_del_if
        br_del_if(self.br, slave)

    def slave_info(self, slave: NetDevice) -> "tuple[str, str, dict[str, Any]] | None":
        """``br_port_fill_attrs`` as iproute2's bridge_slave print_opt shows it."""
        from netstack.cli.iplink_bridge_slave import slave_info
        p = self.br.port_of(slave)
        return slave_info(p) if p is not None else None

    def dellink(self) -> None:
        """``br_dev_delete``: every port leaves, the FDB is flushed, then unregister."""
        from netstack.drivers.bridge.br_if import del_nbp
        br = self.br
        for p in list(br.port_list):
            del_nbp(p)
        br_fdb_delete_by_port(br, None, 0, True)
        if br.gc_timer is not None:
            br.gc_timer.cancel()
        if self.net is not None:
            self.net.unregister_netdevice(self)


def br_dev_newlink(net: "Net", name: str, address: bytes | None,
                   ifindex: int = 0) -> BridgeDevice:
    """``br_dev_newlink`` + ``br_dev_init``: a random MAC unless one is given, the STP
    identity, the bridge's local FDB entry, the netdevice notifier (once per world)."""
    from netstack.drivers.bridge.br_fdb import fdb_add_local
    from netstack.drivers.bridge.br_if import br_device_event
    from netstack.drivers.bridge.br_netfilter import br_netfilter_register
    from netstack.drivers.bridge.br_stp_bpdu import register_llc
    world = net.world
    dev = BridgeDevice(name, address if address is not None else world.random_mac(),
                       addr_set=address is not None)
    br = dev.br
    # br_dev_init leaves bridge_id's address zero until the first port (or the user's
    # address) sets it: ``ip -d link`` shows 8000.0:0:0:0:0:0 on a new bridge (6.18)
    br.bridge_id = br.priority.to_bytes(2, "big") + (bytes(address) if address else b"\0" * 6)
    br.designated_root = br.bridge_id
    if address is not None:
        # the user's address goes through br_stp_change_bridge_id, whose
        # br_port_state_selection finds no live port: netif_carrier_off (measured:
        # "ip link add br0 address X type bridge" comes up NO-CARRIER, without it UNKNOWN)
        dev.carrier = False
    if br_device_event not in world.netdev_notifiers:
        world.netdev_notifiers.append(br_device_event)
    register_llc(world)
    br_netfilter_register(world)
    net.register_netdevice(dev, ifindex=ifindex)
    fdb_add_local(br, None, bytes(dev.address), 0)
    init = br2_hook("br_multicast", "br_multicast_init")
    if init is not None:
        init(br)
    return dev
