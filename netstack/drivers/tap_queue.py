"""The tap character device shared by macvtap and ipvtap (drivers/net/tap.c,
include/linux/if_tap.h, Linux 6.18).

A macvtap (ipvtap) is a macvlan (ipvlan) whose own ``rx_handler`` is :func:`tap_handle_frame`:
what the macvlan/ipvlan demux hands to the device is queued to an open ``/dev/tapN``
file (N = the device's ifindex) instead of going up the stack.  Each open file is a
:class:`TapQueue` (``struct tap_queue``): a ring of ``txqueuelen`` packets
(``ptr_ring_init(&q->ring, dev->tx_queue_len)`` at open, resized by
``tap_queue_resize`` when the length changes), a ``virtio_net_hdr`` on by default
(``tap_open``: ``IFF_VNET_HDR | IFF_NO_PI | IFF_TAP``, 10 bytes, little-endian on x86).

* **receive** (:func:`tap_handle_frame`): no queue open → ``RX_HANDLER_PASS`` (the device
  behaves as a plain macvlan/ipvlan); otherwise the queue is picked by flow hash over the
  enabled queues (``tap_get_queue``), the Ethernet header pushed back, and a GSO packet the
  reader did not accept (TUNSETOFFLOAD → ``tap_features``, only with IFF_VNET_HDR) is
  segmented with ``__skb_gso_segment`` (``tx_path`` false); a CHECKSUM_PARTIAL packet for
  a reader without checksum offload is checksummed (``skb_checksum_help``).  A full ring
  drops (``count_rx_dropped``: rx_errors, shown as rx_dropped too).
* **read** (:meth:`TapQueue.read`, ``tap_put_user``): virtio header (``virtio_net_hdr_from_skb``
  with DATA_VALID), then the frame with an out-of-band VLAN tag put back inline.
* **write** (:meth:`TapQueue.write`, ``tap_get_user``): header checks (-EINVAL, counted
  as tx_dropped on the device), ``virtio_net_hdr_to_skb``, then ``dev_queue_xmit`` on the
  device — i.e. the macvlan/ipvlan transmit path.
"""
from __future__ import annotations

import errno
from collections import deque
from typing import TYPE_CHECKING

from netstack.core.dev import dev_queue_xmit
from netstack.core.drop_reason import consume_skb, kfree_skb_reason
from netstack.core.gso import GsoError, netif_needs_gso, skb_gso_segment
from netstack.core.netdevice import RxHandlerResult
from netstack.core.skb_csum import skb_checksum_help
from netstack.errors import KernelError
from netstack.packet.errors import ParseError
from netstack.packet.skb import CHECKSUM_PARTIAL, Packet
from netstack.packet.virtio_net import (VIRTIO_NET_HDR_F_NEEDS_CSUM, VNET_HDR_LEN, VirtioNetHdr,
                                        virtio_net_hdr_from_skb, virtio_net_hdr_to_skb)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice

# include/uapi/linux/if_tun.h
IFF_TAP = 0x0002
IFF_MULTI_QUEUE = 0x0100
IFF_ATTACH_QUEUE = 0x0200
IFF_DETACH_QUEUE = 0x0400
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08
TUN_F_UFO = 0x10
TUN_F_USO4 = 0x20
TUN_F_USO6 = 0x40

#: drivers/net/tap.c
TAP_IFFEATURES = IFF_VNET_HDR | IFF_MULTI_QUEUE
TAP_VNET_LE = 0x80000000
TAP_VNET_BE = 0x40000000
#: include/linux/if_tap.h ``MAX_TAP_QUEUES`` (= 256) and ``TUN_READQ_SIZE``
MAX_TAP_QUEUES = 256
TUN_READQ_SIZE = 500
ETH_HLEN = 14
#: ``TAP_RESERVE`` = HH_DATA_OFF(ETH_HLEN); ``SKB_MAX_HEAD(TAP_RESERVE)`` on x86-64 with
#: 4 KiB pages and a 320-byte skb_shared_info.
TAP_RESERVE = 2
PAGE_SIZE = 4096
GOOD_LINEAR = PAGE_SIZE - 320 - TAP_RESERVE

#: ``TAP_FEATURES``: what a reader always takes (GSO itself, SG, FRAGLIST)
TAP_FEATURES = frozenset({"tx-generic-segmentation", "tx-scatter-gather",
                          "tx-scatter-gather-fraglist"})
#: ``TUN_OFFLOADS`` of macvtap.c/ipvtap.c: the ``tap_features`` of a new device
TUN_OFFLOADS = frozenset({"tx-checksum-ip-generic", "tx-tcp-ecn-segmentation",
                          "tx-tcp-segmentation", "tx-tcp6-segmentation"})
#: ``RX_OFFLOADS``: switched on the device by set_offload
RX_OFFLOADS = frozenset({"rx-gro", "large-receive-offload"})
#: ``NETIF_F_CSUM_MASK``
CSUM_MASK = frozenset({"tx-checksum-ipv4", "tx-checksum-ipv6", "tx-checksum-ip-generic"})


#: ``NETIF_F_ONE_FOR_ALL`` by ethtool name (netdev_increment_features)
ONE_FOR_ALL = frozenset({
    "tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation",
    "tx-tcp6-segmentation", "tx-sctp-segmentation", "tx-udp-segmentation",
    "tx-gso-list", "tx-gso-robust", "tx-scatter-gather", "highdma",
    "tx-scatter-gather-fraglist", "vlan-challenged"})


def stacked_fix_features(features: set[str], set_features: set[str],
                         lower: "set[str] | frozenset[str]", dev_features: frozenset[str],
                         always_on: frozenset[str], lro_follows: bool) -> set[str]:
    """``macvlan_fix_features`` / ``ipvlan_fix_features``: the device's feature class
    (``dev_features``) only as far as ``set_features`` (what TUNSETOFFLOAD left) allows,
    combined with the lower device's by ``netdev_increment_features`` (the lower device's
    set plus the one-for-all and checksum bits of the requested set), then ALWAYS_ON, all
    limited to the class.  ``lro_follows``: macvlan drops the lower device's LRO when
    the request has none."""
    f = set(features) - (dev_features - set(set_features))
    mask = set(f)
    low = set(lower)
    if lro_follows and "large-receive-offload" not in f:
        low.discard("large-receive-offload")
    if "tx-checksum-ip-generic" in mask:
        mask |= CSUM_MASK
    mask.add("vlan-challenged")
    out = low | (f & (ONE_FOR_ALL | CSUM_MASK) & mask)
    if "tx-checksum-ip-generic" in out:
        out -= CSUM_MASK - {"tx-checksum-ip-generic"}
    out |= always_on
    out &= always_on | dev_features
    return out


class TapDev:
    """``struct tap_dev``: mixed into the macvtap/ipvtap device classes.  The device
    provides ``count_rx_dropped`` / ``count_tx_dropped`` / ``update_features``."""

    def tap_init(self) -> None:
        #: ``taps[]``: the enabled queues, index = ``queue_index``
        self.taps: list[TapQueue] = []
        #: ``queue_list``: every attached queue (enabled or not)
        self.queue_list: list[TapQueue] = []
        self.tap_features: frozenset[str] = TUN_OFFLOADS
        self.tap_deleted = False

    @property
    def numvtaps(self) -> int:
        return len(self.taps)

    @property
    def numqueues(self) -> int:
        return len(self.queue_list)

    def tap_setup(self) -> None:
        """What ``macvtap_newlink``/``ipvtap_newlink`` do once the lower-device part is
        set up (drivers/net/macvtap.c, drivers/net/ipvlan/ipvtap.c): ``dev->tx_queue_len``
        = TUN_READQ_SIZE, and ``netdev_rx_handler_register(dev, tap_handle_frame, tap)``."""
        self.txqlen = TUN_READQ_SIZE
        self.rx_handler = tap_handle_frame
        self.rx_handler_data = self

    def tap_dellink(self) -> None:
        """The start of ``macvtap_dellink``/``ipvtap_dellink``: unregister the rx_handler,
        then ``tap_del_queues``; the caller then deletes the macvlan/ipvlan part."""
        self.rx_handler = None
        self.rx_handler_data = None
        self.tap_del_queues()

    @property
    def txqlen(self) -> int:
        return self._txqlen

    @txqlen.setter
    def txqlen(self, value: int) -> None:
        """NETDEV_CHANGE_TX_QUEUE_LEN (``macvtap_device_event``/``ipvtap_device_event``)
        → ``tap_queue_resize``."""
        self._txqlen = value
        self.tap_queue_resize()

    # hooks (macvtap_count_* / ipvtap_count_*)
    def count_rx_dropped(self) -> None:
        """``macvtap_count_rx_dropped``/``ipvtap_count_rx_dropped``: the two drivers count
        in different places (the macvlan port's per-cpu stats vs the ipvlan's), so each
        class supplies its own; a TapDev is never used without one of them."""
        raise NotImplementedError(f"{type(self).__name__} must count its rx drops")

    def count_tx_dropped(self) -> None:
        """``macvtap_count_tx_dropped``/``ipvtap_count_tx_dropped``: the same per-cpu
        ``tx_dropped`` (``tx_drps``) counter in both drivers."""
        self.stats.tx_dropped += 1  # type: ignore[attr-defined]

    def update_features(self, features: set[str]) -> None:
        """``macvtap_update_features``/``ipvtap_update_features`` (TUNSETOFFLOAD): the
        driver-specific feature mask; supplied by MacvtapDevice and IpvtapDevice."""
        raise NotImplementedError(f"{type(self).__name__} must update its features")

    def tap_set_mac(self, addr: bytes, family: int) -> None:
        """SIOCSIFHWADDR on the queue: ``dev_set_mac_address`` on the macvtap/ipvtap
        device, with each driver's own rules; supplied by the subclasses."""
        raise NotImplementedError(f"{type(self).__name__} must set its address")

    def tap_open(self) -> "TapQueue":
        """``tap_open`` on ``/dev/tapN``: a new queue, enabled (ENODEV once the device is
        gone, EBUSY past MAX_TAP_QUEUES)."""
        if self.tap_deleted:
            raise KernelError(errno.ENODEV)
        if self.numqueues == MAX_TAP_QUEUES:
            raise KernelError(errno.EBUSY)
        q = TapQueue(self)
        q.queue_index = len(self.taps)
        q.enabled = True
        self.taps.append(q)
        self.queue_list.append(q)
        return q

    def tap_queue_resize(self) -> None:
        """``tap_queue_resize`` (NETDEV_CHANGE_TX_QUEUE_LEN): every ring gets the new size;
        ``ptr_ring_resize`` keeps the oldest entries that fit and frees the rest."""
        size = self.txqlen  # type: ignore[attr-defined]
        for q in self.queue_list:
            q.ring_size = size
            while len(q.ring) > size:
                net = self.net  # type: ignore[attr-defined]
                kfree_skb_reason(q.ring.pop(), "NOT_SPECIFIED", net)

    def tap_del_queues(self) -> None:
        """``tap_del_queues`` (dellink): the files stay open but lose the device; queued
        packets stay readable until the file is closed; no new open succeeds."""
        for q in self.queue_list:
            q.tap = None
            q.enabled = False
        self.queue_list = []
        self.taps = []
        self.tap_deleted = True

    def tap_get_queue(self, pkt: Packet) -> "TapQueue | None":
        """``tap_get_queue``: one queue → it; several → ``skb_get_hash % numvtaps``,
        else the recorded rx queue, else the first."""
        n = len(self.taps)
        if not n:
            return None
        if n == 1:
            return self.taps[0]
        from netstack.ipv4.udp_tunnel import skb_flow_hash
        h = skb_flow_hash(pkt)
        if h:
            return self.taps[h % n]
        rxq = pkt.queue_mapping
        if rxq:
            return self.taps[(rxq - 1) % n]  # skb_get_rx_queue = queue_mapping - 1
        return self.taps[0]


def tap_handle_frame(pkt: Packet) -> tuple[RxHandlerResult, Packet]:
    """``tap_handle_frame``: the macvtap/ipvtap device's rx_handler (see module doc)."""
    dev = pkt.dev
    tap: TapDev | None = dev.rx_handler_data  # type: ignore[union-attr]
    if tap is None:
        return RxHandlerResult.PASS, pkt
    q = tap.tap_get_queue(pkt)
    if q is None:
        return RxHandlerResult.PASS, pkt
    net = dev.net  # type: ignore[union-attr]
    pkt.data -= ETH_HLEN  # skb_push(skb, ETH_HLEN)
    features = TAP_FEATURES
    if q.flags & IFF_VNET_HDR:
        features = features | tap.tap_features
    if netif_needs_gso(pkt, features):
        try:
            segs = skb_gso_segment(pkt, features, tx_path=False)
        except GsoError:
            tap.count_rx_dropped()
            kfree_skb_reason(pkt, "SKB_GSO_SEG", net)
            return RxHandlerResult.CONSUMED, pkt
        if segs is None:
            if not q.produce(pkt):
                tap.count_rx_dropped()
                kfree_skb_reason(pkt, "FULL_RING", net)
            return RxHandlerResult.CONSUMED, pkt
        consume_skb(pkt, "tap_handle_frame")
        for i, seg in enumerate(segs):
            if not q.produce(seg):
                # the rest of the list is freed, not counted (as the kernel)
                for rest in segs[i:]:
                    kfree_skb_reason(rest, "FULL_RING", net)
                break
        return RxHandlerResult.CONSUMED, pkt
    if (pkt.ip_summed == CHECKSUM_PARTIAL and not features & CSUM_MASK
            and skb_checksum_help(pkt)):
        tap.count_rx_dropped()
        kfree_skb_reason(pkt, "SKB_CSUM", net)
        return RxHandlerResult.CONSUMED, pkt
    if not q.produce(pkt):
        tap.count_rx_dropped()
        kfree_skb_reason(pkt, "FULL_RING", net)
    return RxHandlerResult.CONSUMED, pkt


def tap_linear_len(length: int, hdr: VirtioNetHdr, pkt: Packet) -> int:
    """``skb_headlen`` of a written frame (``tap_alloc_skb``): a frame under a page is all
    linear; a larger one has ``hdr_len`` clamped to [ETH_HLEN, good_linear], plus what
    ``virtio_net_hdr_to_skb`` pulled (up to the end of the transport header)."""
    if TAP_RESERVE + length < PAGE_SIZE:
        return length
    linear = min(max(hdr.hdr_len, ETH_HLEN), GOOD_LINEAR)
    th = pkt.transport_header
    pulled = ETH_HLEN
    if th >= pkt.data:
        pulled = th - pkt.data + (20 if pkt.gso_type & 0x11 else 8)
    return max(linear, pulled)


class TapQueue:
    """``struct tap_queue``: one open ``/dev/tapN`` file (see the module doc)."""

    def __init__(self, tap: TapDev) -> None:
        self.tap: TapDev | None = tap
        self.flags = IFF_VNET_HDR | IFF_NO_PI | IFF_TAP
        self.vnet_hdr_sz = VNET_HDR_LEN
        self.ring: deque[Packet] = deque()
        self.ring_size: int = tap.txqlen  # type: ignore[attr-defined]
        self.queue_index = 0
        self.enabled = False
        self.closed = False
        self.sndbuf = 212992

    # ------------------------------------------------------------ ring
    def produce(self, pkt: Packet) -> bool:
        """``ptr_ring_produce``: False (-ENOSPC) when full (a 0-sized ring is always full)."""
        if len(self.ring) >= self.ring_size:
            return False
        self.ring.append(pkt)
        return True

    def poll_in(self) -> bool:
        """``tap_poll`` EPOLLIN: something to read."""
        return bool(self.ring)

    @property
    def little_endian(self) -> bool:
        """``tap_is_little_endian``: TUNSETVNETLE, or the legacy (host, x86: little)
        order — TUNSETVNETBE is refused without CONFIG_TUN_VNET_CROSS_LE."""
        return True

    # ------------------------------------------------------------ ioctls
    def set_iff(self, flags: int) -> None:
        """TUNSETIFF: only IFF_VNET_HDR / IFF_MULTI_QUEUE may change, and the rest must be
        exactly IFF_TAP | IFF_NO_PI (EINVAL); the name is ignored."""
        flags &= 0xFFFF
        if flags & ~TAP_IFFEATURES != IFF_NO_PI | IFF_TAP:
            raise KernelError(errno.EINVAL)
        self.flags = (self.flags & ~TAP_IFFEATURES) | flags

    def get_iff(self) -> tuple[str, int]:
        """TUNGETIFF: (device name, flags); ENOLINK once the device is gone."""
        tap = self._dev(errno.ENOLINK)
        return tap.name, self.flags & 0xFFFF  # type: ignore[attr-defined]

    @staticmethod
    def get_features() -> int:
        """TUNGETFEATURES."""
        return IFF_TAP | IFF_NO_PI | TAP_IFFEATURES

    def set_vnet_hdr_sz(self, size: int) -> None:
        """TUNSETVNETHDRSZ: at least ``sizeof(struct virtio_net_hdr)`` (EINVAL)."""
        if size < VNET_HDR_LEN:
            raise KernelError(errno.EINVAL)
        self.vnet_hdr_sz = size

    def set_vnet_le(self, on: bool) -> None:
        """TUNSETVNETLE."""
        self.flags = self.flags | TAP_VNET_LE if on else self.flags & ~TAP_VNET_LE

    def set_vnet_be(self, on: bool) -> None:
        """TUNSETVNETBE: -EINVAL without CONFIG_TUN_VNET_CROSS_LE, which the x86-64
        kernels measured (6.18) do not set: the legacy order stays little-endian."""
        raise KernelError(errno.EINVAL)

    def set_sndbuf(self, size: int) -> None:
        """TUNSETSNDBUF: positive (EINVAL)."""
        if size <= 0:
            raise KernelError(errno.EINVAL)
        self.sndbuf = size

    def set_queue(self, flags: int) -> None:
        """TUNSETQUEUE: IFF_ATTACH_QUEUE enables (EINVAL if already), IFF_DETACH_QUEUE
        disables (EINVAL if not enabled): the last enabled queue takes the freed index."""
        tap = self._dev(errno.EINVAL)
        if flags & IFF_ATTACH_QUEUE:
            if self.enabled:
                raise KernelError(errno.EINVAL)
            self.queue_index = len(tap.taps)
            tap.taps.append(self)
            self.enabled = True
        elif flags & IFF_DETACH_QUEUE:
            self._disable(tap)
        else:
            raise KernelError(errno.EINVAL)

    def _disable(self, tap: TapDev) -> None:
        """``tap_disable_queue``."""
        if not self.enabled:
            raise KernelError(errno.EINVAL)
        index = self.queue_index
        last = tap.taps.pop()
        if last is not self:
            last.queue_index = index
            tap.taps[index] = last
        self.enabled = False

    def set_offload(self, arg: int) -> None:
        """TUNSETOFFLOAD (``set_offload``): unknown bits EINVAL, no device ENOLINK.
        ``tap_features`` become HW_CSUM (+TSO/TSO6/TSO_ECN); the device's GRO/LRO follow
        whether TSO was accepted.  USO4+USO6 only add GSO_UDP_L4 to the device's features
        (always on for macvlan/ipvlan): ``tap_features`` never carry it, so UDP GSO is
        still segmented before the reader."""
        if arg & ~(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO
                   | TUN_F_USO4 | TUN_F_USO6):
            raise KernelError(errno.EINVAL)
        tap = self._dev(errno.ENOLINK)
        features = set(tap.features)  # type: ignore[attr-defined]
        mask: set[str] = set()
        if arg & TUN_F_CSUM:
            mask.add("tx-checksum-ip-generic")
            if arg & (TUN_F_TSO4 | TUN_F_TSO6):
                if arg & TUN_F_TSO_ECN:
                    mask.add("tx-tcp-ecn-segmentation")
                if arg & TUN_F_TSO4:
                    mask.add("tx-tcp-segmentation")
                if arg & TUN_F_TSO6:
                    mask.add("tx-tcp6-segmentation")
            if arg & (TUN_F_USO4 | TUN_F_USO6) == TUN_F_USO4 | TUN_F_USO6:
                features.add("tx-udp-segmentation")
        if mask & {"tx-tcp-segmentation", "tx-tcp6-segmentation"}:
            features |= RX_OFFLOADS
        else:
            features -= RX_OFFLOADS
        tap.tap_features = frozenset(mask)
        tap.update_features(features)

    def get_hwaddr(self) -> tuple[str, int, bytes]:
        """SIOCGIFHWADDR: (device name, ``dev->type``, address); ENOLINK without device."""
        tap = self._dev(errno.ENOLINK)
        return tap.name, tap.type, tap.address  # type: ignore[attr-defined]

    def set_hwaddr(self, addr: bytes, family: int = 1) -> None:
        """SIOCSIFHWADDR → ``dev_set_mac_address``: ENOLINK without device, the device's
        own rules (``tap_set_mac``), a family other than ``dev->type`` EINVAL."""
        tap = self._dev(errno.ENOLINK)
        tap.tap_set_mac(addr, family)

    def _dev(self, err: int) -> TapDev:
        if self.tap is None:
            raise KernelError(err)
        return self.tap

    # -------------------------------------------------------- host → guest
    def read(self, size: int = 65536 + 64) -> bytes | None:
        """``tap_do_read`` (non-blocking): the next packet as the reader gets it, or None
        (-EAGAIN) when the ring is empty.  A buffer shorter than the virtio header is
        -EINVAL and the packet is lost; a short buffer truncates (``read`` returns at most
        ``size``)."""
        if not self.ring:
            return None
        pkt = self.ring.popleft()
        tap = self.tap
        net = tap.net if tap is not None else None  # type: ignore[attr-defined]
        parts: list[bytes] = []
        vlan_hlen = 4 if pkt.vlan_proto else 0
        if self.flags & IFF_VNET_HDR:
            if size < self.vnet_hdr_sz:
                kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
                raise KernelError(errno.EINVAL)
            hdr = virtio_net_hdr_from_skb(pkt, True, vlan_hlen)
            if isinstance(hdr, int):  # the kernel BUG()s: segmentation made this impossible
                kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
                raise KernelError(-hdr)
            parts.append(hdr.pack(self.vnet_hdr_sz, self.little_endian))
        from netstack.core.vlan_core import tap_packet
        parts.append(tap_packet(pkt).bytes() if vlan_hlen else pkt.bytes())
        consume_skb(pkt, "tap_do_read")
        return b"".join(parts)[:size]

    # -------------------------------------------------------- guest → host
    def write(self, frame: bytes | bytearray) -> int:
        """One ``write()`` (``tap_get_user``), processed to the end with the softirqs it
        raised, as the kernel does in the writer's context.  Returns the byte count or
        -errno."""
        r = self._get_user(frame)
        tap = self.tap
        if tap is not None and tap.net is not None:  # type: ignore[attr-defined]
            tap.net.world.run_softirq()  # type: ignore[attr-defined]
        return r

    def write_list(self, frames: list[bytes | bytearray]) -> list[int]:
        """Several ``write()`` calls, each completed before the next."""
        return [self.write(f) for f in frames]

    def _err(self, err: int) -> int:
        if self.tap is not None:
            self.tap.count_tx_dropped()
        return -err

    def _get_user(self, frame: bytes | bytearray) -> int:
        total = len(frame)
        length = total
        off = 0
        hdr: VirtioNetHdr | None = None
        if self.flags & IFF_VNET_HDR:
            sz = self.vnet_hdr_sz
            if length < sz:
                return self._err(errno.EINVAL)
            length -= sz
            try:
                hdr = VirtioNetHdr.unpack(memoryview(frame)[:VNET_HDR_LEN], VNET_HDR_LEN,
                                          self.little_endian)
            except ParseError:
                return self._err(errno.EINVAL)
            if (hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM
                    and hdr.csum_start + hdr.csum_offset + 2 > hdr.hdr_len):
                hdr.hdr_len = (hdr.csum_start + hdr.csum_offset + 2) & 0xFFFF
            if hdr.hdr_len > length:
                return self._err(errno.EINVAL)
            off = sz
        if length < ETH_HLEN:
            return self._err(errno.EINVAL)
        tap = self.tap
        if tap is None or tap.net is None:  # type: ignore[attr-defined]
            return total  # no device: the skb is freed, the write still succeeds
        dev: NetDevice = tap  # type: ignore[assignment]
        pkt = dev.net.world.new_packet(memoryview(frame)[off:])  # type: ignore[union-attr]
        pkt.dev = dev
        pkt.mac_header = pkt.data
        pkt.network_header = pkt.data + ETH_HLEN
        pkt.protocol = (pkt.buf[pkt.data + 12] << 8) | pkt.buf[pkt.data + 13]
        if hdr is not None:
            if virtio_net_hdr_to_skb(pkt, hdr, nh_present=True) < 0:
                kfree_skb_reason(pkt, "NOT_SPECIFIED", dev.net)
                return self._err(errno.EINVAL)
            if pkt.gso_size:
                pkt.headlen_end = pkt.data + tap_linear_len(length, hdr, pkt)
        if pkt.protocol in (0x8100, 0x88A8):
            # __vlan_get_protocol: the network header after the tags
            depth = ETH_HLEN
            proto = pkt.protocol
            while proto in (0x8100, 0x88A8) and pkt.tail - pkt.data >= depth + 4:
                proto = (pkt.buf[pkt.data + depth + 2] << 8) | pkt.buf[pkt.data + depth + 3]
                depth += 4
            pkt.network_header = pkt.data + depth
        dev_queue_xmit(pkt, dev)
        return total

    def close(self) -> None:
        """``tap_release`` → ``tap_put_queue``: leave the device (disabling the queue if
        enabled); queued packets are freed."""
        if self.closed:
            return
        self.closed = True
        tap = self.tap
        net = tap.net if tap is not None else None  # type: ignore[attr-defined]
        if tap is not None:
            if self.enabled:
                self._disable(tap)
            tap.queue_list.remove(self)
            self.tap = None
        while self.ring:
            kfree_skb_reason(self.ring.popleft(), "NOT_SPECIFIED", net)


def tap_chardev_open(net: object, path: str) -> TapQueue:
    """``open("/dev/tapN")``: N is the ifindex of a macvtap/ipvtap device in ``net`` (the
    kernel's device node is named after the ifindex); ENOENT when there is none."""
    name = path.rsplit("/", 1)[-1]
    if not name.startswith("tap") or not name[3:].isdigit():
        raise KernelError(errno.ENOENT)
    dev = net.by_index.get(int(name[3:]))  # type: ignore[attr-defined]
    if not isinstance(dev, TapDev):
        raise KernelError(errno.ENOENT)
    return dev.tap_open()


__all__ = ["TapDev", "TapQueue", "tap_handle_frame", "tap_chardev_open", "TUN_OFFLOADS",
           "TAP_FEATURES", "TUN_READQ_SIZE", "IFF_VNET_HDR", "IFF_MULTI_QUEUE", "IFF_TAP",
           "IFF_NO_PI", "IFF_ATTACH_QUEUE", "IFF_DETACH_QUEUE"]
