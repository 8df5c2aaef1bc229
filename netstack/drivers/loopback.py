"""The loopback device (drivers/net/loopback.c).

Every namespace gets one at creation, ifindex 1, down, MTU 65536, no rtnl kind.
Transmit is receive: ``loopback_xmit`` runs ``eth_type_trans`` and ``netif_rx``.
"""
from __future__ import annotations

from netstack.core.dev import netif_rx
from netstack.core.eth import eth_type_trans
from netstack.core.netdevice import ARPHRD_LOOPBACK, IFF_LOOPBACK, NetDevice
from netstack.packet.skb import Packet

LOOPBACK_FEATURES = frozenset({
    "tx-scatter-gather", "tx-checksum-ip-generic", "tx-generic-segmentation", "rx-gro",
    "tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation",
    "tx-tcp6-segmentation", "tx-udp-segmentation", "rx-checksum", "highdma",
    "tx-scatter-gather-fraglist", "loopback", "netns-local", "tx-sctp-segmentation",
    "tx-gso-list", "tx-sctp-crc", "rx-gro-list",
})


class LoopbackDevice(NetDevice):
    """``lo``."""

    kind = ""
    type = ARPHRD_LOOPBACK
    default_features = LOOPBACK_FEATURES

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
