"""The dummy device (drivers/net/dummy.c): transmit counts and frees, nothing is received."""
from __future__ import annotations

from netstack.core.drop_reason import consume_skb
from netstack.core.netdevice import IFF_NOARP, NetDevice
from netstack.packet.skb import Packet

DUMMY_FEATURES = frozenset({
    "tx-scatter-gather", "tx-checksum-ip-generic", "tx-generic-segmentation",
    "tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation",
    "tx-tcp6-segmentation", "tx-udp-segmentation", "highdma", "tx-scatter-gather-fraglist",
    "rx-gro", "tx-gso-list", "tx-sctp-segmentation",
})


class DummyDevice(NetDevice):
    """``ip link add NAME type dummy``: NOARP, carrier always on, operstate UNKNOWN."""

    kind = "dummy"
    default_features = DUMMY_FEATURES
    hw_features = DUMMY_FEATURES

    def __init__(self, name: str, address: bytes) -> None:
        super().__init__(name, address)
        self.flags |= IFF_NOARP

    def start_xmit(self, pkt: Packet, more: bool) -> None:
        self.stats.tx_packets += 1
        self.stats.tx_bytes += len(pkt)
        consume_skb(pkt, "dummy_xmit")
        if not more:
            self.ring_doorbell()
