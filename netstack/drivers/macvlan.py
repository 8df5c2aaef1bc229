"""MAC-address based VLANs (drivers/net/macvlan.c, include/linux/if_macvlan.h).

A macvlan device sits on a lower Ethernet device.  The first one creates a *port* on the
lower device (``macvlan_port_create``): the lower device's ``rx_handler`` becomes
:func:`macvlan_handle_frame`, which demultiplexes received frames by destination MAC
(``macvlan_hash_lookup`` over the 256-bucket hash of the *open* macvlans), and the
per-mode rules decide who sees group traffic and sibling traffic:

* **private**: no traffic between siblings at all; a group frame that comes back from the
  wire with a private macvlan's source MAC is given to that macvlan only.
* **vepa**: sibling traffic leaves through the lower device and must come back from an
  adjacent switch (hairpin); group frames from the wire reach every VEPA/bridge sibling
  except the sender.
* **bridge**: unicast to a bridge-mode sibling is forwarded inside the port
  (``dev_forward_skb`` on the lower device, so its taps see it); group frames are given
  to the other bridge-mode siblings at transmit time, and go out on the wire too.
* **passthru**: one macvlan only, it inherits the lower device's MAC, puts the lower
  device in promiscuous mode and receives every unicast frame (``list_first_or_null``).
* **source**: frames whose *source* MAC is in the device's allowed list are copied to it
  (``macvlan_forward_source``); with the ``nodst`` flag the frame is consumed there.

Group frames from the wire go through the port's broadcast queue, processed later by a
work item (``macvlan_broadcast_enqueue`` / ``macvlan_process_broadcast``): here a
zero-delay timer on the world's clock, i.e. after the current softirq batch, as the
kernel's workqueue runs after the softirq.  The lower device meanwhile gets the frame
too (``RX_HANDLER_PASS``).

The lower device's address filter: an open, non-passthru macvlan adds its MAC to the
lower device's unicast list (``dev_uc_add``); a lower device without ``IFF_UNICAST_FLT``
(veth, dummy) then goes promiscuous (``__dev_set_rx_mode``), which ``ip -d link`` shows
as ``promiscuity 1``.  Those counts live on the lower device as ``promiscuity_refs`` /
``allmulti_refs`` (what ``dev_set_promiscuity``/``dev_set_allmulti`` add on top of the
user's own flag).  The lists and counters are netstack/core/dev_addr_lists.py; the
macvlan's own unicast/multicast lists are synced into the lower device's by
``set_rx_mode`` (``macvlan_set_mac_lists`` → ``dev_uc_sync``/``dev_mc_sync``).
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.core.dev import dev_queue_xmit_list, netif_rx
from netstack.core.dev_addr_lists import (allmulti, dev_mc_addrs, dev_mc_sync, dev_mc_unsync,
                                          dev_set_allmulti, dev_set_promiscuity,
                                          dev_set_rx_mode, dev_uc_add, dev_uc_del, dev_uc_sync,
                                          dev_uc_unsync, promiscuous)
from netstack.core.drop_reason import consume_skb, kfree_skb_reason
from netstack.core.eth import ETH_HLEN, eth_type_trans
from netstack.core.netdevice import (ARPHRD_ETHER, IFF_ALLMULTI, IFF_LOOPBACK, IFF_PROMISC,
                                     IFF_UP, NetDevice, RxHandlerResult)
from netstack.errors import KernelError
from netstack.packet.skb import (PACKET_BROADCAST, PACKET_HOST, PACKET_LOOPBACK,
                                 PACKET_MULTICAST, Packet)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net

# enum macvlan_mode (include/uapi/linux/if_link.h)
MACVLAN_MODE_PRIVATE = 1
MACVLAN_MODE_VEPA = 2
MACVLAN_MODE_BRIDGE = 4
MACVLAN_MODE_PASSTHRU = 8
MACVLAN_MODE_SOURCE = 16
MODE_NAMES = {MACVLAN_MODE_PRIVATE: "private", MACVLAN_MODE_VEPA: "vepa",
              MACVLAN_MODE_BRIDGE: "bridge", MACVLAN_MODE_PASSTHRU: "passthru",
              MACVLAN_MODE_SOURCE: "source"}
# IFLA_MACVLAN_FLAGS
MACVLAN_FLAG_NOPROMISC = 1
MACVLAN_FLAG_NODST = 2
# enum macvlan_macaddr_mode
MACVLAN_MACADDR_ADD = 0
MACVLAN_MACADDR_DEL = 1
MACVLAN_MACADDR_FLUSH = 2
MACVLAN_MACADDR_SET = 3

MACVLAN_HASH_BITS = 8
MACVLAN_HASH_SIZE = 1 << MACVLAN_HASH_BITS
MACVLAN_DEFAULT_BC_QUEUE_LEN = 1000
ETH_P_PAUSE = 0x8808
VLAN_HLEN = 4
BCAST = b"\xff" * 6

#: include/linux/hash.h
GOLDEN_RATIO_32 = 0x61C88647
GOLDEN_RATIO_64 = 0x61C8864680B583EB
_M64 = (1 << 64) - 1

#: ``MACVLAN_FEATURES`` / ``ALWAYS_ON_OFFLOADS`` by ethtool feature string: what a macvlan
#: inherits from its lower device, and what it always has (macvlan_init).
MACVLAN_FEATURES = frozenset({
    "tx-scatter-gather", "tx-checksum-ip-generic", "highdma", "tx-scatter-gather-fraglist",
    "tx-generic-segmentation", "tx-tcp-segmentation", "large-receive-offload",
    "tx-tcp-ecn-segmentation", "tx-tcp6-segmentation", "rx-gro", "rx-checksum",
    "rx-vlan-filter", "rx-vlan-stag-filter"})
ALWAYS_ON_FEATURES = frozenset({
    "tx-scatter-gather", "tx-checksum-ip-generic", "tx-generic-segmentation",
    "tx-tcp-segmentation", "tx-tcp-ecn-segmentation", "tx-tcp-mangleid-segmentation",
    "tx-tcp6-segmentation", "tx-udp-segmentation", "tx-gso-robust", "tx-gre-segmentation",
    "tx-gre-csum-segmentation", "tx-ipxip4-segmentation", "tx-ipxip6-segmentation",
    "tx-udp_tnl-segmentation", "tx-udp_tnl-csum-segmentation", "tx-lockless"})


# ------------------------------------------------------------------------ hashing
def hash_32(val: int, bits: int) -> int:
    """include/linux/hash.h ``hash_32`` (``__hash_32`` = multiply by GOLDEN_RATIO_32)."""
    return ((val * GOLDEN_RATIO_32) & 0xFFFFFFFF) >> (32 - bits)


def hash_64(val: int, bits: int) -> int:
    """include/linux/hash.h ``hash_64`` on a 64-bit machine."""
    return ((val * GOLDEN_RATIO_64) & _M64) >> (64 - bits)


def macvlan_eth_hash(addr: bytes) -> int:
    """``macvlan_eth_hash``: the 6 address bytes as a little-endian u64 shifted left by 16
    (the two bytes after the address fall off the top), hashed to 8 bits."""
    value = (int.from_bytes(addr[:6], "little") << 16) & _M64
    return hash_64(value, MACVLAN_HASH_BITS)


def mc_hash_port(addr: bytes) -> int:
    """``mc_hash(NULL, addr)``: the port filter's bit (bytes 2..5 as a CPU-order u32)."""
    return hash_32(int.from_bytes(addr[2:6], "little"), 8)


# ------------------------------------------------- lower device address lists
# dev_uc_add & co. live in netstack/core/dev_addr_lists.py (net/core/dev_addr_lists.c).


def dev_forward_skb(dev: NetDevice, pkt: Packet) -> bool:
    """``__dev_forward_skb`` + ``netif_rx`` (net/core/dev.c): the frame is received on
    ``dev`` as if it came off a wire: ``is_skb_forwardable`` (up, length ≤ MTU + header
    + one tag unless GSO), ``skb_scrub_packet`` (more across namespaces), ``eth_type_trans``.
    Returns False (and counts ``rx_dropped`` on ``dev``) when it cannot."""
    n = pkt.tail - pkt.data
    # is_skb_forwardable: a GSO packet may exceed the MTU (it is segmented later)
    if (not dev.flags & IFF_UP or (n > dev.mtu + ETH_HLEN + VLAN_HLEN and not pkt.gso_size)
            or n < ETH_HLEN):
        dev.stats.rx_dropped += 1
        kfree_skb_reason(pkt, "NOT_SPECIFIED", dev.net)
        return False
    xnet = pkt.dev is not None and pkt.dev.net is not dev.net
    pkt.pkt_type = PACKET_HOST
    pkt.skb_iif = 0
    pkt.dst = None
    pkt.ct = None
    if xnet:
        pkt.mark = 0
        pkt.tstamp = 0
    pkt.protocol = eth_type_trans(pkt, dev)
    netif_rx(pkt)
    return True


IP_DEFRAG_MACVLAN = "IP_DEFRAG_MACVLAN"
IP_MF = 0x2000
IP_OFFSET = 0x1FFF


def ip_check_defrag(pkt: Packet) -> Packet | None:
    """``ip_check_defrag(net, skb, IP_DEFRAG_MACVLAN)`` (net/ipv4/ip_fragment.c): an IPv4
    fragment whose header is sane is queued in the namespace's reassembly queues under its
    own defrag user; the fragment that completes the datagram comes back as the whole
    datagram (None while it is incomplete).  Anything else is returned untouched.  The
    reassembled packet keeps the first fragment's Ethernet header, as the kernel's head
    skb does, because macvlan reads ``eth_hdr`` again afterwards."""
    if pkt.protocol != 0x0800:
        return pkt
    dev = pkt.dev
    net = dev.net if dev is not None else None
    if net is None or getattr(net, "ipv4", None) is None:
        return pkt
    buf = pkt.buf
    nh = pkt.data
    if pkt.tail - nh < 20:
        return pkt
    ihl = buf[nh] & 0x0F
    if ihl < 5 or buf[nh] >> 4 != 4:
        return pkt
    length = (buf[nh + 2] << 8) | buf[nh + 3]
    if pkt.tail - nh < length or length < ihl * 4:
        return pkt
    if not ((buf[nh + 6] << 8) | buf[nh + 7]) & (IP_MF | IP_OFFSET):
        return pkt
    from netstack.ipv4.ip_fragment import Ipq, ip_frag_queue
    ipv4 = net.ipv4
    ipv4.mib["IpReasmReqds"] += 1
    pkt.tail = nh + length  # pskb_trim_rcsum
    pkt.network_header = nh
    pkt.cb = None
    vals = net.sysctl.values
    high = vals["net.ipv4.ipfrag_high_thresh"]
    if not high or ipv4.frag_mem > high:
        ipv4.mib["IpReasmFails"] += 1
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return None
    saddr = bytes(buf[nh + 12:nh + 16])
    key = (bytes(buf[nh + 4:nh + 6]), saddr, bytes(buf[nh + 16:nh + 20]), buf[nh + 9],
           IP_DEFRAG_MACVLAN)
    heads: dict = net.proto.setdefault("ip_check_defrag_eth", {})
    for k in [k for k in heads if k not in ipv4.frags and k != key]:
        del heads[k]  # queues that timed out or failed
    if not ((buf[nh + 6] << 8) | buf[nh + 7]) & IP_OFFSET and pkt.mac_header >= 0:
        heads[key] = bytes(buf[pkt.mac_header:nh])
    q = ipv4.frags.get(key)
    if q is None:
        peer = ipv4.inet_getpeer(saddr) if vals["net.ipv4.ipfrag_max_dist"] else None
        q = Ipq(net, key, peer)
        ipv4.frags[key] = q
        q.timer.mod_in(vals["net.ipv4.ipfrag_time"] * 1_000_000_000)
    new = ip_frag_queue(q, pkt)
    if ipv4.frags.get(key) is not q:
        eth = heads.pop(key, None)
    else:
        eth = heads.get(key)
    if new is None:
        return None
    if eth is None:  # the head's header was not seen (cannot happen: offset 0 is in)
        eth = bytes(ETH_HLEN)
    new.data -= len(eth)
    new.buf[new.data:new.data + len(eth)] = eth
    new.mac_header = new.data
    new.data += len(eth)
    return new


# --------------------------------------------------------------------- the port
class MacvlanPort:
    """``struct macvlan_port``: lives on the lower device as its ``rx_handler_data``."""

    def __init__(self, dev: NetDevice) -> None:
        self.dev = dev
        #: ``vlans``: every macvlan on the port, in creation order (passthru uses the first)
        self.vlans: list[MacvlanDevice] = []
        #: ``vlan_hash``: open macvlans by hash of their MAC; each bucket head-first
        self.vlan_hash: list[list[MacvlanDevice]] = [[] for _ in range(MACVLAN_HASH_SIZE)]
        #: ``vlan_source_hash``: (allowed source MAC, macvlan) by hash of the MAC
        self.source_hash: list[list[tuple[bytes, MacvlanDevice]]] = \
            [[] for _ in range(MACVLAN_HASH_SIZE)]
        self.passthru = False
        self.addr_change = False
        self.perm_addr = dev.address
        self.bc_queue: list[tuple[Packet, MacvlanDevice | None]] = []
        self.bc_queue_len_used = 0
        self.bc_timer: Any = None

    @property
    def count(self) -> int:
        return len(self.vlans)

    # ------------------------------------------------------------ lookups
    def hash_lookup(self, addr: bytes) -> "MacvlanDevice | None":
        """``macvlan_hash_lookup``."""
        for v in self.vlan_hash[macvlan_eth_hash(addr)]:
            if v.address == addr:
                return v
        return None

    def hash_add(self, vlan: "MacvlanDevice") -> None:
        self.vlan_hash[macvlan_eth_hash(vlan.address)].insert(0, vlan)

    def hash_del(self, vlan: "MacvlanDevice") -> None:
        bucket = self.vlan_hash[macvlan_eth_hash(vlan.address)]
        if vlan in bucket:
            bucket.remove(vlan)

    def hashed(self) -> list["MacvlanDevice"]:
        """``hash_for_each``: bucket order, each bucket head-first."""
        return [v for bucket in self.vlan_hash for v in bucket]

    def addr_busy(self, addr: bytes) -> bool:
        """``macvlan_addr_busy``: the lower device's own address (unless passthru or an
        address change in progress) or an open sibling's."""
        if not self.passthru and not self.addr_change and self.dev.address == addr:
            return True
        return self.hash_lookup(addr) is not None

    def update_bc_queue_len(self) -> None:
        """``update_port_bc_queue_len``: the largest request of the port's macvlans."""
        self.bc_queue_len_used = max((v.bc_queue_len_req for v in self.vlans), default=0)

    def mc_filter_hit(self, dest: bytes) -> bool:
        """The port's ``mc_filter``: everything when the lower device is promiscuous or
        allmulti, else the hash bits of its multicast list and broadcast address."""
        lower = self.dev
        if promiscuous(lower) or allmulti(lower):
            return True
        h = mc_hash_port(dest)
        return any(mc_hash_port(a) == h for a in dev_mc_addrs(lower) | {lower.broadcast})

    # ---------------------------------------------------------- source mode
    def source_entries(self, vlan: "MacvlanDevice") -> list[bytes]:
        """``macvlan_fill_info_macaddr`` order: bucket by bucket, head-first."""
        return [a for bucket in self.source_hash for a, v in bucket if v is vlan]

    def source_add(self, vlan: "MacvlanDevice", addr: bytes) -> None:
        """``macvlan_hash_add_source``: a duplicate is a no-op."""
        bucket = self.source_hash[macvlan_eth_hash(addr)]
        if any(a == addr and v is vlan for a, v in bucket):
            return
        bucket.insert(0, (addr, vlan))
        vlan.macaddr_count += 1

    def source_del(self, vlan: "MacvlanDevice", addr: bytes) -> None:
        bucket = self.source_hash[macvlan_eth_hash(addr)]
        for i, (a, v) in enumerate(bucket):
            if a == addr and v is vlan:
                del bucket[i]
                vlan.macaddr_count -= 1
                return

    def flush_sources(self, vlan: "MacvlanDevice") -> None:
        """``macvlan_flush_sources``."""
        for i, bucket in enumerate(self.source_hash):
            self.source_hash[i] = [(a, v) for a, v in bucket if v is not vlan]
        vlan.macaddr_count = 0

    def forward_source(self, pkt: Packet, src: bytes) -> bool:
        """``macvlan_forward_source``: a copy for each open source-mode macvlan that
        allows ``src``; True when one of them has ``nodst`` (the frame is consumed)."""
        consume = False
        for addr, vlan in self.source_hash[macvlan_eth_hash(src)]:
            if addr != src:
                continue
            if vlan.macvlan_flags & MACVLAN_FLAG_NODST:
                consume = True
            if not vlan.flags & IFF_UP:
                continue
            nskb = pkt.clone()
            n = nskb.tail - nskb.data + ETH_HLEN
            nskb.dev = vlan
            if pkt.buf[pkt.mac_header:pkt.mac_header + 6] == vlan.address:
                nskb.pkt_type = PACKET_HOST
            netif_rx(nskb)
            vlan.count_rx(n, True, False)
        return consume

    # ------------------------------------------------------- group delivery
    def broadcast(self, pkt: Packet, src: "NetDevice | None", mode: int) -> None:
        """``macvlan_broadcast``: a copy to every hashed macvlan of a mode in ``mode``
        (not the sender) whose multicast filter has the destination; with ``mode`` exactly
        BRIDGE (the transmit path) the copy is received as from a wire
        (``__dev_forward_skb``), else it is re-targeted (``macvlan_broadcast_one``)."""
        if pkt.protocol == ETH_P_PAUSE:
            return
        mh = pkt.mac_header
        dest = bytes(pkt.buf[mh:mh + 6])
        local = mode == MACVLAN_MODE_BRIDGE
        n = pkt.tail - mh
        for vlan in self.hashed():
            if vlan is src or not vlan.mode & mode:
                continue
            if not vlan.mc_filter_hit(dest):
                continue
            nskb = pkt.clone()
            if local:
                nskb.data = nskb.mac_header
                ok = dev_forward_skb(vlan, nskb)
            else:
                nskb.dev = vlan
                nskb.pkt_type = PACKET_BROADCAST if dest == vlan.broadcast else PACKET_MULTICAST
                netif_rx(nskb)
                ok = True
            vlan.count_rx(n, ok, True)

    def broadcast_enqueue(self, pkt: Packet, src: "MacvlanDevice | None") -> None:
        """``macvlan_broadcast_enqueue``: a clone waits for the work item; a full queue
        counts ``rx_dropped`` on the receiving device."""
        if len(self.bc_queue) < self.bc_queue_len_used:
            self.bc_queue.append((pkt.clone(), src))
        else:
            pkt.dev.stats.rx_dropped += 1  # type: ignore[union-attr]
        net = self.dev.net
        if net is None:
            return
        if self.bc_timer is None:
            self.bc_timer = net.world.clock.timer(self.process_broadcast)
        if not self.bc_timer.active:
            self.bc_timer.mod(net.world.clock.now)

    def process_broadcast(self) -> None:
        """``macvlan_process_broadcast``: from outside, to every mode; from a VEPA sibling
        (the hairpin), to the other VEPA and bridge siblings; from a bridge sibling, only
        to VEPA ones (bridge siblings saw it when it was sent)."""
        queue, self.bc_queue = self.bc_queue, []
        for pkt, src in queue:
            if src is None:
                self.broadcast(pkt, None, MACVLAN_MODE_PRIVATE | MACVLAN_MODE_VEPA
                               | MACVLAN_MODE_PASSTHRU | MACVLAN_MODE_BRIDGE)
            elif src.mode == MACVLAN_MODE_VEPA:
                self.broadcast(pkt, src, MACVLAN_MODE_VEPA | MACVLAN_MODE_BRIDGE)
            else:
                self.broadcast(pkt, src, MACVLAN_MODE_VEPA)
            consume_skb(pkt, "macvlan_process_broadcast")

    def destroy(self) -> None:
        """``macvlan_port_destroy``: unhook from the lower device, drop queued frames,
        give a passthru lower device its address back."""
        lower = self.dev
        lower.rx_handler = None
        lower.rx_handler_data = None
        lower.macvlan_port = None  # type: ignore[attr-defined]
        if self.bc_timer is not None:
            self.bc_timer.cancel()
        for pkt, _ in self.bc_queue:
            kfree_skb_reason(pkt, "NOT_SPECIFIED", lower.net)
        self.bc_queue = []
        if self.passthru and lower.address != self.perm_addr and lower.net is not None:
            lower.address = self.perm_addr
            lower.net.notify("CHANGEADDR", lower)


def _mode_name(mode: int) -> str:
    """``ip -d link`` words for a macvlan mode (trace events)."""
    return {MACVLAN_MODE_PRIVATE: "private", MACVLAN_MODE_VEPA: "vepa",
            MACVLAN_MODE_BRIDGE: "bridge", MACVLAN_MODE_PASSTHRU: "passthru",
            MACVLAN_MODE_SOURCE: "source"}.get(mode, str(mode))


def macvlan_handle_frame(pkt: Packet) -> tuple[RxHandlerResult, Packet]:
    """``macvlan_handle_frame``: the lower device's rx_handler."""
    if pkt.pkt_type == PACKET_LOOPBACK:
        return RxHandlerResult.PASS, pkt
    port: MacvlanPort = pkt.dev.rx_handler_data  # type: ignore[union-attr]
    buf = pkt.buf
    mh = pkt.mac_header
    dest = bytes(buf[mh:mh + 6])
    src_mac = bytes(buf[mh + 6:mh + 12])
    if dest[0] & 1:
        defragged = ip_check_defrag(pkt)
        if defragged is None:
            return RxHandlerResult.CONSUMED, pkt
        pkt = defragged
        buf = pkt.buf
        mh = pkt.mac_header
        dest = bytes(buf[mh:mh + 6])
        src_mac = bytes(buf[mh + 6:mh + 12])
        if port.forward_source(pkt, src_mac):
            kfree_skb_reason(pkt, "NOT_SPECIFIED")
            return RxHandlerResult.CONSUMED, pkt
        src = port.hash_lookup(src_mac)
        if src is not None and src.mode not in (MACVLAN_MODE_VEPA, MACVLAN_MODE_BRIDGE):
            # forward to original port
            n = pkt.tail - pkt.data + ETH_HLEN
            pkt.dev = src
            pkt.pkt_type = PACKET_BROADCAST if dest == src.broadcast else PACKET_MULTICAST
            netif_rx(pkt)
            src.count_rx(n, True, False)
            return RxHandlerResult.CONSUMED, pkt
        if port.mc_filter_hit(dest):
            port.broadcast_enqueue(pkt, src)
        return RxHandlerResult.PASS, pkt
    if port.forward_source(pkt, src_mac):
        kfree_skb_reason(pkt, "NOT_SPECIFIED")
        return RxHandlerResult.CONSUMED, pkt
    if port.passthru:
        vlan = port.vlans[0] if port.vlans else None
    else:
        vlan = port.hash_lookup(dest)
    if vlan is None or vlan.mode == MACVLAN_MODE_SOURCE:
        if pkt.trace is not None:
            pkt.trace.event(pkt, "macvlan_handle_frame", info=f"no macvlan for {dest.hex(':')}"
                            " (lower device's own)", attrs={"to": "", "dst": dest.hex(":")})
        return RxHandlerResult.PASS, pkt
    if pkt.trace is not None:
        pkt.trace.event(pkt, "macvlan_handle_frame",
                        info=f"to={vlan.name} mode={_mode_name(vlan.mode)}",
                        attrs={"to": vlan.name, "mode": _mode_name(vlan.mode),
                               "dst": dest.hex(":")})
    if not vlan.flags & IFF_UP:
        kfree_skb_reason(pkt, "NOT_SPECIFIED")
        return RxHandlerResult.CONSUMED, pkt
    vlan.count_rx(pkt.tail - pkt.data + ETH_HLEN, True, False)
    pkt.dev = vlan
    pkt.pkt_type = PACKET_HOST
    return RxHandlerResult.ANOTHER, pkt


# ----------------------------------------------------------------- the device
class LowerStackedDevice(NetDevice):
    """What macvlan and ipvlan devices share as devices stacked on one lower device
    (drivers/net/macvlan.c, drivers/net/ipvlan/ipvlan_main.c): IFLA_LINK and the link
    namespace are the lower device's (``real_dev``, which the subclass names: ``lowerdev``
    / ``phy_dev``); ``netif_stacked_transfer_operstate`` copies only the lower device's
    carrier (a lower device that keeps its carrier while down, like dummy, leaves them
    LOWER_UP); and ``macvlan_count_rx``/``ipvlan_count_rx`` count alike."""

    if TYPE_CHECKING:  # pragma: no cover
        @property
        def real_dev(self) -> NetDevice: ...

    def link_index(self) -> int:
        return self.real_dev.ifindex

    def peer_netns(self) -> "Net | None":
        return self.real_dev.net

    def carrier_ok(self) -> bool:
        """``netif_stacked_transfer_operstate``: the lower device's carrier only."""
        return self.real_dev.carrier_ok()

    def operstate(self) -> str:
        if not self.flags & IFF_UP:
            return "DOWN"
        if not self.carrier_ok():
            return "LOWERLAYERDOWN"
        return "UP"

    def count_rx(self, n: int, success: bool, multicast: bool) -> None:
        """``macvlan_count_rx``/``ipvlan_count_rx``: a failure counts rx_errors (reported
        as rx_dropped too)."""
        st = self.stats
        if success:
            st.rx_packets += 1
            st.rx_bytes += n
            if multicast:
                st.multicast += 1
        else:
            st.rx_errors += 1
            st.rx_dropped += 1


class MacvlanDevice(LowerStackedDevice):
    """``ip link add link LOWER name N type macvlan [mode M]``."""

    kind = "macvlan"
    unicast_flt = True

    def __init__(self, name: str, lower: NetDevice, port: MacvlanPort, mode: int,
                 address: bytes) -> None:
        super().__init__(name, address, lower.mtu)
        self.lowerdev = lower
        self.port = port
        self.mode = mode
        self.macvlan_flags = 0
        self.macaddr_count = 0
        self.bc_queue_len_req = MACVLAN_DEFAULT_BC_QUEUE_LEN
        self.max_mtu = lower.max_mtu
        self.addr_assign_type = 1  # NET_ADDR_RANDOM until an address is given
        self.features = set((set(lower.features) & MACVLAN_FEATURES) | ALWAYS_ON_FEATURES)

    # ``real_dev`` is what ``ip link`` prints after ``@`` (IFLA_LINK)
    @property
    def real_dev(self) -> NetDevice:
        return self.lowerdev

    def mc_filter_hit(self, dest: bytes) -> bool:
        """The device's ``mc_filter`` (``macvlan_compute_filter``): everything when it is
        promiscuous/allmulti, else its multicast list and broadcast address.  The kernel
        keeps a 256-bit hash of these salted with the device's address in memory, so its
        false positives cannot be reproduced; netstack matches exactly."""
        if self.flags & (IFF_PROMISC | IFF_ALLMULTI):
            return True
        return dest == self.broadcast or dest in dev_mc_addrs(self)

    # --------------------------------------------------------------- ndo
    def open(self) -> None:
        """``macvlan_open``: passthru takes a promiscuity reference on the lower device;
        others refuse an address in use (EADDRINUSE), add their MAC to the lower
        device's unicast list and pass on allmulti/promisc, then join the hash."""
        lower = self.lowerdev
        port = self.port
        if port.passthru:
            if not self.macvlan_flags & MACVLAN_FLAG_NOPROMISC:
                dev_set_promiscuity(lower, 1)
        else:
            if port.addr_busy(self.address):
                self.flags &= ~IFF_UP
                raise KernelError(errno.EADDRINUSE)
            dev_uc_add(lower, self.address)
            if self.flags & IFF_ALLMULTI:
                dev_set_allmulti(lower, 1)
            if self.flags & IFF_PROMISC:
                dev_set_promiscuity(lower, 1)
        port.hash_add(self)
        dev_set_rx_mode(self)  # __dev_open → dev_set_rx_mode → macvlan_set_mac_lists

    def set_rx_mode(self) -> None:
        """``macvlan_set_mac_lists``: this device's unicast and multicast lists are synced
        into the lower device's (``dev_uc_sync``/``dev_mc_sync``, refcounted there)."""
        dev_uc_sync(self.lowerdev, self)
        dev_mc_sync(self.lowerdev, self)

    def stop(self) -> None:
        """``macvlan_stop``."""
        lower = self.lowerdev
        port = self.port
        if port.passthru:
            if not self.macvlan_flags & MACVLAN_FLAG_NOPROMISC:
                dev_set_promiscuity(lower, -1)
        else:
            dev_uc_unsync(lower, self)
            dev_mc_unsync(lower, self)
            if self.flags & IFF_ALLMULTI:
                dev_set_allmulti(lower, -1)
            if self.flags & IFF_PROMISC:
                dev_set_promiscuity(lower, -1)
            dev_uc_del(lower, self.address)
        port.hash_del(self)

    def change_mtu_check(self, mtu: int) -> None:
        """``macvlan_change_mtu``: not above the lower device's MTU (EINVAL)."""
        if mtu > self.lowerdev.mtu:
            raise KernelError(errno.EINVAL)

    def change_rx_flags(self, change: int) -> None:
        """``macvlan_change_rx_flags``: an up macvlan's promisc/allmulti reach the lower
        device as references."""
        if self.flags & IFF_UP:
            if change & IFF_ALLMULTI:
                dev_set_allmulti(self.lowerdev, 1 if self.flags & IFF_ALLMULTI else -1)
            if change & IFF_PROMISC:
                dev_set_promiscuity(self.lowerdev, 1 if self.flags & IFF_PROMISC else -1)

    def set_mac_address(self, addr: bytes) -> None:
        """``macvlan_set_mac_address``: passthru changes the lower device's address (and
        follows it); others refuse an address in use, then rehash and move their
        unicast filter entry (``macvlan_sync_address``)."""
        if addr == self.address:
            return
        port = self.port
        if self.mode == MACVLAN_MODE_PASSTHRU:
            port.addr_change = True
            lower = self.lowerdev
            lower.address = addr
            if lower.net is not None:
                lower.net.notify("CHANGEADDR", lower)
            return
        if port.addr_busy(addr):
            raise KernelError(errno.EADDRINUSE)
        self.sync_address(addr)

    def sync_address(self, addr: bytes) -> None:
        """``macvlan_sync_address``."""
        port = self.port
        if not self.flags & IFF_UP:
            self.address = addr
        else:
            if port.addr_busy(addr):
                raise KernelError(errno.EADDRINUSE)
            if not port.passthru:
                dev_uc_add(self.lowerdev, addr)
                dev_uc_del(self.lowerdev, self.address)
            port.hash_del(self)
            self.address = addr
            port.hash_add(self)
        self.addr_assign_type = 3  # NET_ADDR_SET
        if port.passthru and not port.addr_change:
            port.perm_addr = self.lowerdev.address
        port.addr_change = False
        if self.net is not None:
            self.net.notify("CHANGEADDR", self)

    def dellink(self) -> None:
        """``macvlan_dellink`` + ``macvlan_uninit``: leave the port (destroyed with its
        last macvlan), unregister."""
        port = self.port
        if self.mode == MACVLAN_MODE_SOURCE:
            port.flush_sources(self)
        if self.net is not None and self.net.devices.get(self.name) is self:
            self.net.unregister_netdevice(self)
        if self in port.vlans:
            port.vlans.remove(self)
            port.update_bc_queue_len()
            port.flush_sources(self)
            if not port.vlans:
                port.destroy()

    # -------------------------------------------------------------- xmit
    def start_xmit(self, pkt: Packet, more: bool) -> None:
        self.start_xmit_list([pkt])

    def start_xmit_list(self, pkts: list[Packet]) -> None:
        """``macvlan_start_xmit`` → ``macvlan_queue_xmit`` for a batch: bridge mode keeps
        sibling traffic in the port (group frames are also copied to the bridge
        siblings and then go out); everything else goes to the lower device, as one
        ``dev_queue_xmit_list`` so the lower device rings one doorbell."""
        lower = self.lowerdev
        port = self.port
        out: list[Packet] = []
        st = self.stats
        lower_up = bool(lower.flags & IFF_UP)
        for pkt in pkts:
            n = pkt.tail - pkt.data
            if n < ETH_HLEN:
                st.tx_dropped += 1
                kfree_skb_reason(pkt, "PKT_TOO_SMALL", self.net)
                continue
            if self.mode == MACVLAN_MODE_BRIDGE:
                d = pkt.data
                dest = bytes(pkt.buf[d:d + 6])
                if dest[0] & 1:
                    pkt.mac_header = d
                    # macvlan_broadcast reads skb->protocol for the PAUSE check
                    pkt.protocol = (pkt.buf[d + 12] << 8) | pkt.buf[d + 13]
                    port.broadcast(pkt, self, MACVLAN_MODE_BRIDGE)
                else:
                    dst_vlan = port.hash_lookup(dest)
                    if dst_vlan is not None and dst_vlan.mode == MACVLAN_MODE_BRIDGE:
                        if pkt.trace is not None:
                            pkt.trace.event(pkt, "macvlan_queue_xmit",
                                            info=f"bridge to={dst_vlan.name}",
                                            attrs={"mode": "bridge", "to": dst_vlan.name})
                        # to the lower device first, for its taps
                        st.tx_packets += 1
                        st.tx_bytes += n
                        dev_forward_skb(lower, pkt)
                        continue
            if lower_up:
                st.tx_packets += 1
                st.tx_bytes += n
            else:
                st.tx_dropped += 1
            if pkt.trace is not None:
                pkt.trace.event(pkt, "macvlan_queue_xmit", dev=self,
                                info=f"{_mode_name(self.mode)} to lower={lower.name}",
                                attrs={"mode": _mode_name(self.mode), "to": lower.name})
            out.append(pkt)
        if out:
            dev_queue_xmit_list(lower, out)
        self.ring_doorbell()


# ------------------------------------------------------------- configuration
def macvlan_port_create(lower: NetDevice) -> MacvlanPort:
    """``macvlan_port_create``: Ethernet, not loopback (EINVAL); the rx_handler slot must
    be free (EBUSY: a bridge port, bond slave, ipvlan master …)."""
    if lower.type != ARPHRD_ETHER or lower.flags & IFF_LOOPBACK:
        raise KernelError(errno.EINVAL)
    if lower.rx_handler is not None:
        raise KernelError(errno.EBUSY)
    port = MacvlanPort(lower)
    lower.rx_handler = macvlan_handle_frame
    lower.rx_handler_data = port
    lower.macvlan_port = port  # type: ignore[attr-defined]
    return port


def macvlan_common_newlink(net: "Net", name: str, lower: NetDevice, mode: int, flags: int,
                           address: bytes | None, mtu: int | None,
                           bc_queue_len: int | None = None,
                           macaddr_mode: int | None = None,
                           macaddrs: list[bytes] | None = None,
                           ifindex: int = 0, cls: type[MacvlanDevice] = MacvlanDevice
                           ) -> MacvlanDevice:
    """``macvlan_common_newlink``: a macvlan on a macvlan sits on the real device; the MTU
    may not exceed the lower one's (EINVAL); only one passthru per port, and passthru
    only on an empty port (EINVAL); ``macaddr`` only with source mode (EINVAL)."""
    if isinstance(lower, MacvlanDevice):
        lower = lower.lowerdev
    if mtu is not None and mtu > lower.mtu:
        raise KernelError(errno.EINVAL)
    port = getattr(lower, "macvlan_port", None)
    create = port is None
    if create:
        port = macvlan_port_create(lower)
    assert port is not None
    try:
        if port.passthru:
            raise KernelError(errno.EINVAL)
        if mode == MACVLAN_MODE_PASSTHRU and port.count:
            raise KernelError(errno.EINVAL)
        if macaddr_mode is not None and mode != MACVLAN_MODE_SOURCE:
            raise KernelError(errno.EINVAL)
        mac = address if address is not None else net.world.random_mac()
        dev = cls(name, lower, port, mode, mac)
        if address is not None:
            dev.addr_assign_type = 3
        dev.macvlan_flags = flags
        if mtu is not None:
            dev.mtu = mtu
        if mode == MACVLAN_MODE_PASSTHRU:
            port.passthru = True
            dev.address = lower.address  # eth_hw_addr_inherit
            dev.addr_assign_type = 0
        if macaddr_mode is not None:
            macvlan_changelink_sources(dev, macaddr_mode, macaddrs or [])
        if bc_queue_len is not None:
            dev.bc_queue_len_req = bc_queue_len
        if macvlan_device_event not in net.world.netdev_notifiers:
            net.world.netdev_notifiers.append(macvlan_device_event)
        net.register_netdevice(dev, ifindex=ifindex)
    except Exception:
        if port.passthru and not any(v.mode == MACVLAN_MODE_PASSTHRU for v in port.vlans):
            port.passthru = False
        if create:
            port.destroy()
        raise
    port.vlans.append(dev)
    port.update_bc_queue_len()
    net.world.linkwatch_fire_event(dev)
    return dev


def macvlan_changelink_sources(vlan: MacvlanDevice, mode: int, addrs: list[bytes]) -> None:
    """``macvlan_changelink_sources``: add / del / flush / set the allowed source MACs."""
    port = vlan.port
    if mode == MACVLAN_MACADDR_ADD:
        if not addrs:
            raise KernelError(errno.EINVAL)
        port.source_add(vlan, addrs[0])
    elif mode == MACVLAN_MACADDR_DEL:
        if not addrs:
            raise KernelError(errno.EINVAL)
        port.source_del(vlan, addrs[0])
    elif mode == MACVLAN_MACADDR_FLUSH:
        port.flush_sources(vlan)
    elif mode == MACVLAN_MACADDR_SET:
        port.flush_sources(vlan)
        for a in addrs:
            port.source_add(vlan, a)
    else:
        raise KernelError(errno.EINVAL)


def macvlan_changelink(vlan: MacvlanDevice, mode: int | None, flags: int | None,
                       bc_queue_len: int | None, macaddr_mode: int | None,
                       macaddrs: list[bytes]) -> None:
    """``macvlan_changelink``: passthru can be neither set nor cleared (EINVAL); leaving
    source mode flushes the list; ``nopromisc`` on passthru moves the promiscuity
    reference; ``macaddr`` needs source mode (EINVAL)."""
    if mode is not None:
        if (mode == MACVLAN_MODE_PASSTHRU) != (vlan.mode == MACVLAN_MODE_PASSTHRU):
            raise KernelError(errno.EINVAL)
        if vlan.mode == MACVLAN_MODE_SOURCE and mode != vlan.mode:
            vlan.port.flush_sources(vlan)
    if flags is not None:
        if vlan.port.passthru and (flags ^ vlan.macvlan_flags) & MACVLAN_FLAG_NOPROMISC:
            dev_set_promiscuity(vlan.lowerdev, -1 if flags & MACVLAN_FLAG_NOPROMISC else 1)
        vlan.macvlan_flags = flags
    if bc_queue_len is not None:
        vlan.bc_queue_len_req = bc_queue_len
        vlan.port.update_bc_queue_len()
    if mode is not None:
        vlan.mode = mode
    if macaddr_mode is not None:
        if vlan.mode != MACVLAN_MODE_SOURCE:
            raise KernelError(errno.EINVAL)
        macvlan_changelink_sources(vlan, macaddr_mode, macaddrs)


def macvlan_device_event(event: str, dev: NetDevice) -> None:
    """``macvlan_device_event`` for a lower device with a port, and the macvlan's own
    address changes (``ndo_set_mac_address`` path, see :meth:`MacvlanDevice.sync_address`)."""
    port: MacvlanPort | None = getattr(dev, "macvlan_port", None)
    if port is None:
        if event == "UP" and "uc" in dev.__dict__:
            dev_set_rx_mode(dev)  # dev_open → dev_set_rx_mode
        return
    if event == "UP":
        dev_set_rx_mode(dev)
    if event in ("UP", "DOWN", "CHANGE"):
        for v in port.vlans:
            if v.net is not None:
                v.net.world.linkwatch_fire_event(v)
    elif event == "CHANGEMTU":
        for v in port.vlans:
            if v.mtu > dev.mtu and v.net is not None:
                v.mtu = dev.mtu
                v.net.notify("CHANGEMTU", v)
    elif event == "CHANGEADDR":
        if port.passthru and port.vlans:
            port.vlans[0].sync_address(dev.address)
    elif event == "UNREGISTER":
        for v in list(port.vlans):
            v.dellink()


__all__ = ["MacvlanDevice", "MacvlanPort", "macvlan_common_newlink", "macvlan_changelink",
           "macvlan_handle_frame", "macvlan_eth_hash", "dev_forward_skb", "MODE_NAMES",
           "MACVLAN_MODE_PRIVATE", "MACVLAN_MODE_VEPA", "MACVLAN_MODE_BRIDGE",
           "MACVLAN_MODE_PASSTHRU", "MACVLAN_MODE_SOURCE", "MACVLAN_FLAG_NOPROMISC",
           "MACVLAN_FLAG_NODST"]
