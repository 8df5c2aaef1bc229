"""The loopback device (drivers/net/loopback.c).

Every namespace gets one at creation, ifindex 1, down, MTU 65536, no rtnl kind.
Transmit is receive: ``loopback_xmit`` runs ``eth_type_trans`` and ``netif_rx``.
"""
from __future__ import annotations

from netstack.core.dev import netif_rx
from netstack.core.eth import eth_type_trans
from netstack.core.netdevice import ARPHRD_LOOPBACK, IFF_LOOPBACK, NetDevice
from netstack.packet.skb import Packet

#: ``ethtool -k lo`` on Linux 6.18: what is on, and what the user may toggle.
LOOPBACK_FEATURES = frozenset({
    "rx-checksum", "tx-checksum-ip-generic", "tx-checksum-sctp", "tx-scatter-gather",
    "tx-scatter-gather-fraglist", "tx-tcp-segmentation", "tx-tcp-ecn-segmentation",
    "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation", "tx-tcp-accecn-segmentation",
    "tx-generic-segmentation", "rx-gro", "highdma", "vlan-challenged",
    "tx-sctp-segmentation", "tx-udp-segmentation", "tx-gso-list", "loopback",
})
LOOPBACK_HW_FEATURES = frozenset({
    "tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation",
    "tx-tcp6-segmentation", "tx-tcp-accecn-segmentation", "tx-generic-segmentation",
    "rx-gro", "tx-sctp-segmentation", "tx-udp-segmentation", "tx-gso-list", "rx-gro-list",
    "rx-udp-gro-forwarding",
})


class LoopbackDevice(NetDevice):
    """``lo``."""

    kind = ""
    type = ARPHRD_LOOPBACK
    default_features = LOOPBACK_FEATURES
    hw_features = LOOPBACK_HW_FEATURES
    netns_local = True

    def __init__(self) -> None:
        super().__init__("lo", b"\0" * 6, mtu=65536)
        self.broadcast = b"\0" * 6
        self.flags = IFF_LOOPBACK
        self.min_mtu = 0
        self.max_mtu = 0

    def start_xmit(self, pkt: Packet, more: bool) -> None:
        n = len(pkt)
        self.stats.tx_packets += 1
        self.stats.tx_bytes += n
        self.stats.rx_packets += 1
        self.stats.rx_bytes += n
        pkt.protocol = eth_type_trans(pkt, self)
        netif_rx(pkt)
        if not more:
            self.ring_doorbell()
