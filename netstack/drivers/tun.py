"""TUN/TAP devices (drivers/net/tun.c, drivers/net/tun_vnet.h, Linux 6.18).

The device's other side is a byte stream (the fd a VMM or a VPN reads and writes): here
:meth:`TunDevice.write` (``tun_get_user``: the guest transmits) and :meth:`TunDevice.read`
(``tun_put_user``: the host delivers to the guest).  With IFF_VNET_HDR every frame is
preceded by a ``virtio_net_hdr`` (10 bytes, or TUNSETVNETHDRSZ), which is how a guest's
TSO/checksum-offloaded frames enter the stack (CHECKSUM_PARTIAL, SKB_GSO_* | DODGY) and
how GSO/GRO packets reach a guest unsegmented ("LRO to guests").

Offloads toward the guest are what the guest agreed to (TUNSETOFFLOAD, :meth:`set_offload`:
TUN_F_CSUM → tx-checksum-ip-generic, TUN_F_TSO4/6/ECN → TSO, TUN_F_USO4+6 → UDP
segmentation); without them the stack checksums and segments in software before the
packet is queued (validate_xmit_skb), exactly as the kernel does.

Errors as the kernel's: a frame shorter than its header → -EINVAL; a virtio header the
kernel rejects → -EINVAL with ``rx_frame_errors`` counted; device down → -EIO and
rx_dropped; the transmit ring (txqlen packets) full → tx_dropped (FULL_RING); no reader
attached → the device has no carrier.
"""
from __future__ import annotations

import errno
from collections import deque

from netstack.core.dev import netif_rx
from netstack.core.drop_reason import consume_skb, kfree_skb_reason
from netstack.core.eth import eth_type_trans
from netstack.core.netdevice import (ARPHRD_NONE, IFF_MULTICAST, IFF_NOARP, IFF_POINTOPOINT,
                                     IFF_UP, NetDevice, netdev_update_features)
from netstack.packet.errors import ParseError
from netstack.packet.skb import Packet
from netstack.packet.virtio_net import (VNET_HDR_LEN, VirtioNetHdr, virtio_net_hdr_from_skb,
                                        virtio_net_hdr_to_skb)

# include/uapi/linux/if_tun.h
IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_NAPI = 0x0010
IFF_NAPI_FRAGS = 0x0020
IFF_NO_CARRIER = 0x0040
IFF_NO_PI = 0x1000
IFF_ONE_QUEUE = 0x2000
IFF_VNET_HDR = 0x4000
IFF_TUN_EXCL = 0x8000
IFF_MULTI_QUEUE = 0x0100
IFF_PERSIST = 0x0800
IFF_NOFILTER = 0x1000

TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08
TUN_F_UFO = 0x10
TUN_F_USO4 = 0x20
TUN_F_USO6 = 0x40

TUN_PI_LEN = 4
MAX_TAP_QUEUES = 256

#: ``TUN_USER_FEATURES``: the offloads TUNSETOFFLOAD switches (the rest are fixed on).
TUN_USER_FEATURES = frozenset({
    "tx-checksum-ip-generic", "tx-tcp-ecn-segmentation", "tx-tcp-segmentation",
    "tx-tcp6-segmentation", "tx-udp-segmentation", "tx-udp_tnl-segmentation",
    "tx-udp_tnl-csum-segmentation"})
#: ``tun_net_initialize`` → ``ethtool -k tap0`` of a fresh tap on Linux 6.18 (measured):
#: the user features are wanted but off until TUNSETOFFLOAD.
TAP_BASE_FEATURES = frozenset({
    "tx-scatter-gather", "tx-scatter-gather-fraglist", "tx-generic-segmentation", "rx-gro",
    "tx-vlan-hw-insert", "tx-vlan-stag-hw-insert"})
#: ``register_netdevice`` adds MANGLEID to a device whose hw_features have TSO.
TAP_HW_FEATURES = TAP_BASE_FEATURES | TUN_USER_FEATURES | {"tx-tcp-mangleid-segmentation"}


class TunDevice(NetDevice):
    """A tun (L3, ``link/none``) or tap (Ethernet) device and its fd side."""

    kind = "tun"
    qdisc_up = "pfifo_fast"
    default_features = TAP_BASE_FEATURES
    hw_features = TAP_HW_FEATURES

    def __init__(self, name: str, address: bytes, flags: int, owner: int = -1,
                 group: int = -1) -> None:
        self.tun_flags = flags | IFF_PERSIST
        if not flags & IFF_TAP:
            self.type = ARPHRD_NONE
        super().__init__(name, address if flags & IFF_TAP else b"", 1500)
        self.owner = owner
        self.group_id = group
        if flags & IFF_TAP:
            self.max_mtu = 65535 - 14
            self.txqlen = 1000
        else:
            self.flags = IFF_POINTOPOINT | IFF_MULTICAST | IFF_NOARP
            self.txqlen = 500
            self.max_mtu = 65535
        self.vnet_hdr_sz = VNET_HDR_LEN
        self.little_endian = True
        self.set_features: frozenset[str] = frozenset()
        #: ``hw_enc_features``: tun sets none — tunnel GSO is done before the guest.
        self.hw_enc_features = frozenset()
        self.attached = 0
        self.ring: deque[Packet] = deque()
        self.rx_frame_errors = 0
        self.num_queues = MAX_TAP_QUEUES if flags & IFF_MULTI_QUEUE else 1
        #: ``alloc_netdev_mqs`` queue counts and ``tso_max_size`` as ``ip -d link`` shows
        self.num_tx_queues = self.num_queues
        self.tso_max_size = 65536
        #: tun_net_initialize: every user feature is wanted, none active before
        #: TUNSETOFFLOAD (``ethtool -k``: "off [requested on]")
        self.wanted_features = set(TAP_HW_FEATURES) - {"tx-tcp-mangleid-segmentation"}

    # ------------------------------------------------------------ state
    @property
    def is_tap(self) -> bool:
        return bool(self.tun_flags & IFF_TAP)

    def carrier_ok(self) -> bool:
        """``netif_carrier_on`` only while a queue file is attached (``tun_attach``)."""
        return self.attached > 0

    def operstate_up(self) -> str:
        return "UNKNOWN"

    def attach(self) -> None:
        """TUNSETIFF on an open fd: a reader/writer is attached, carrier on."""
        self.attached += 1
        if self.net is not None:
            self.net.notify("CHANGE", self)

    def detach(self) -> None:
        """Closing the fd: carrier off, queued packets freed."""
        if self.attached:
            self.attached -= 1
        if not self.attached:
            while self.ring:
                consume_skb(self.ring.popleft(), "tun_detach")
            if self.net is not None:
                self.net.notify("CHANGE", self)

    def set_offload(self, arg: int) -> None:
        """``set_offload`` (TUNSETOFFLOAD): which offloads the guest accepts; an unknown
        bit is EINVAL.  USO needs both USO4 and USO6."""
        features: set[str] = set()
        if arg & TUN_F_CSUM:
            features.add("tx-checksum-ip-generic")
            arg &= ~TUN_F_CSUM
            if arg & (TUN_F_TSO4 | TUN_F_TSO6):
                if arg & TUN_F_TSO_ECN:
                    features.add("tx-tcp-ecn-segmentation")
                    arg &= ~TUN_F_TSO_ECN
                if arg & TUN_F_TSO4:
                    features.add("tx-tcp-segmentation")
                if arg & TUN_F_TSO6:
                    features.add("tx-tcp6-segmentation")
                arg &= ~(TUN_F_TSO4 | TUN_F_TSO6)
            arg &= ~TUN_F_UFO
            if arg & TUN_F_USO4 and arg & TUN_F_USO6:
                features.add("tx-udp-segmentation")
                arg &= ~(TUN_F_USO4 | TUN_F_USO6)
        if arg:
            from netstack.errors import KernelError
            raise KernelError(errno.EINVAL)
        self.set_features = frozenset(features)
        self.wanted_features = (self.wanted_features - TUN_USER_FEATURES) | features
        netdev_update_features(self)

    def fix_features(self, features: set[str]) -> set[str]:
        """``tun_net_fix_features``: the user features only as far as the guest set them."""
        return (features & set(self.set_features)) | (features - TUN_USER_FEATURES)

    # ------------------------------------------------------- guest → host
    def write(self, frame: bytes | bytearray) -> int:
        """``tun_get_user``: one ``write()`` on the fd.  Returns the byte count or -errno."""
        return self.write_list([frame])[0]

    def write_list(self, frames: list[bytes | bytearray]) -> list[int]:
        """Several ``write()`` calls.  Each is processed to the end before the next, as
        the kernel does (``tun_rx_batched`` → ``netif_receive_skb`` in the writer's
        context, then the softirqs it raised at ``local_bh_enable``) — which is why
        frames written one by one are never coalesced by GRO further on."""
        results: list[int] = []
        world = self.net.world  # type: ignore[union-attr]
        for frame in frames:
            results.append(self._get_user(frame))
            world.run_softirq()
        return results

    def _get_user(self, frame: bytes | bytearray) -> int:
        total = len(frame)
        off = 0
        pi_proto = 0
        if not self.tun_flags & IFF_NO_PI:
            if total < TUN_PI_LEN:
                return -errno.EINVAL
            pi_proto = (frame[2] << 8) | frame[3]
            off = TUN_PI_LEN
        hdr = None
        if self.tun_flags & IFF_VNET_HDR:
            sz = self.vnet_hdr_sz
            if total - off < sz:
                return -errno.EINVAL
            try:
                hdr = VirtioNetHdr.unpack(memoryview(frame)[off:off + sz], sz, self.little_endian)
            except ParseError:
                return -errno.EINVAL
            hdr_len = hdr.hdr_len
            if hdr.flags & 1:  # NEEDS_CSUM: tun_vnet_hdr_get raises hdr_len
                hdr_len = max(hdr.csum_start + hdr.csum_offset + 2, hdr_len)
                hdr.hdr_len = hdr_len
            off += sz
            if hdr_len > total - off:
                return -errno.EINVAL
        length = total - off
        if self.is_tap and (length < 14 or (hdr is not None and hdr.hdr_len and hdr.hdr_len < 14)):
            return -errno.EINVAL
        if length <= 0:
            return -errno.EINVAL
        world = self.net.world  # type: ignore[union-attr]
        pkt = world.new_packet(memoryview(frame)[off:])
        pkt.dev = self
        if hdr is not None:
            if virtio_net_hdr_to_skb(pkt, hdr) < 0:
                self.rx_frame_errors += 1
                kfree_skb_reason(pkt, "NOT_SPECIFIED", self.net)
                return -errno.EINVAL
            if pkt.gso_size:
                # where the kernel skb's linear part ends (an absolute offset: headers
                # pushed later, e.g. the Ethernet header after routing, add to it)
                pkt.headlen_end = pkt.data + tun_linear_len(length, hdr, pkt)
        if self.is_tap:
            pkt.protocol = eth_type_trans(pkt, self)
        else:
            if self.tun_flags & IFF_NO_PI:
                v = pkt.buf[pkt.data] & 0xF0
                if v == 0x40:
                    pi_proto = 0x0800
                elif v == 0x60:
                    pi_proto = 0x86DD
                else:
                    self.stats.rx_dropped += 1
                    kfree_skb_reason(pkt, "INVALID_PROTO", self.net)
                    return -errno.EINVAL
            pkt.protocol = pi_proto
            pkt.mac_header = pkt.data
        pkt.network_header = pkt.data
        if not self.flags & IFF_UP:
            self.stats.rx_dropped += 1
            kfree_skb_reason(pkt, "DEV_READY", self.net)
            return -errno.EIO
        self.stats.rx_packets += 1
        self.stats.rx_bytes += length
        netif_rx(pkt)
        return total

    # ------------------------------------------------------- host → guest
    def start_xmit(self, pkt: Packet, more: bool) -> None:
        """``tun_net_xmit``: queue for the reader; no reader or a full ring drops."""
        if not self.attached:
            self.stats.tx_dropped += 1
            kfree_skb_reason(pkt, "DEV_READY", self.net)
        elif len(self.ring) >= self.txqlen:
            self.stats.tx_dropped += 1
            kfree_skb_reason(pkt, "FULL_RING", self.net)
        else:
            pkt.ct = None
            self.ring.append(pkt)
        if not more:
            self.ring_doorbell()

    def read(self) -> bytes | None:
        """``tun_do_read`` → ``tun_put_user``: the next queued packet as the reader gets
        it (PI, virtio header, frame with any VLAN tag inline), or None when empty.  A
        packet whose GSO type the virtio header cannot carry is dropped (-EINVAL)."""
        while self.ring:
            pkt = self.ring.popleft()
            out = self._put_user(pkt)
            if out is not None:
                return out
        return None

    def _put_user(self, pkt: Packet) -> bytes | None:
        from netstack.core.vlan_core import tap_packet
        vlan_hlen = 4 if pkt.vlan_proto else 0
        parts: list[bytes] = []
        if not self.tun_flags & IFF_NO_PI:
            parts.append(b"\0\0" + (pkt.protocol & 0xFFFF).to_bytes(2, "big"))
        if self.tun_flags & IFF_VNET_HDR:
            hdr = virtio_net_hdr_from_skb(pkt, True, vlan_hlen)
            if isinstance(hdr, int):
                self.stats.tx_dropped += 1
                kfree_skb_reason(pkt, "NOT_SPECIFIED", self.net)
                return None
            parts.append(hdr.pack(self.vnet_hdr_sz, self.little_endian))
        body = tap_packet(pkt).bytes() if vlan_hlen else pkt.bytes()
        parts.append(body)
        self.stats.tx_packets += 1
        self.stats.tx_bytes += len(body)
        consume_skb(pkt, "tun_put_user")
        return b"".join(parts)


#: ``TUN_RX_PAD`` (NET_IP_ALIGN + NET_SKB_PAD on x86-64) and the page size.
TUN_RX_PAD = 64
PAGE_SIZE = 4096
#: ``SKB_MAX_HEAD(NET_SKB_PAD)``: the most tun_get_user puts in the linear part.
GOOD_LINEAR = 3712


def tun_linear_len(length: int, hdr: VirtioNetHdr, pkt: Packet) -> int:
    """How much of a written frame the kernel's skb holds linearly (``skb_headlen``),
    which is what a GSO packet's virtio ``hdr_len`` reports when it leaves through a
    tap: a frame under a page (``tun_alloc_skb``: prepad + len < PAGE_SIZE, or
    ``tun_build_skb``) is all linear; a larger one has ``hdr_len`` (at most
    ``good_linear``) plus what the header checks and IPv4 receive pulled."""
    if TUN_RX_PAD + length < PAGE_SIZE:
        return length
    linear = min(hdr.hdr_len, GOOD_LINEAR)
    pulled = 34
    if pkt.transport_header != -1 and pkt.transport_header >= pkt.mac_header:
        th = pkt.transport_header - pkt.mac_header
        pulled = max(pulled, th + (20 if pkt.gso_type & 0x11 else 8))
    return max(linear, pulled)


def tun_create(net: "object", name: str, flags: int, address: bytes, owner: int = -1,
               group: int = -1) -> TunDevice:
    """``tun_set_iff`` creating a persistent device (``ip tuntap add``)."""
    dev = TunDevice(name, address, flags, owner, group)
    net.register_netdevice(dev)  # type: ignore[attr-defined]
    return dev
