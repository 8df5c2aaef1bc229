"""Generic Receive Offload: net/core/gro.c, include/net/gro.h, net/ethernet/eth.c
(eth_gro_receive), net/ipv4/af_inet.c (inet_gro_receive/complete), net/ipv6/ip6_offload.c
(ipv6_gro_receive/complete), Linux 6.18.

The model: a NAPI instance (:class:`Napi`) holds up to 8 packets per hash bucket
(``MAX_GRO_SKBS``, ``GRO_HASH_BUCKETS``).  Each received packet walks the protocol layers'
``gro_receive`` (Ethernet type → IPv4/IPv6 → TCP/UDP/GRE → tunnel → inner layers), each of
which clears ``same_flow`` on held packets that differ in its header and sets ``flush``
when the packet itself must not be held.  A packet is merged (its payload appended to the
held one, :func:`skb_gro_receive`), held, or passed on at once; held packets are completed
(``gro_complete``: lengths and the checksum seed rewritten, the packet becomes a GSO
packet of ``count`` segments) when a layer says so, when the bucket is full (oldest
first) or at the end of the poll.  Completed and passed-on packets go up in lists of
``gro_normal_batch`` (8) segments (``gro_normal_one``), which is why GRO reorders
packets across flows but never within one.

Packet state during GRO lives in ``pkt.cb`` (:class:`NapiGroCb`, the kernel's
``NAPI_GRO_CB(skb)``); offsets in it are absolute buffer offsets.

UDP tunnel GRO contract (TUN's sockets in netstack/ipv4/udp_tunnel.py): a tunnel socket
with ``gro_receive(sock, napi, held, pkt) -> Packet | None`` — called with the GRO offset
(``pkt.cb.off``) just past the outer UDP header; it parses its header, clears
``same_flow`` on held packets from another tunnel/VNI, advances ``pkt.cb.off`` over its
header (:func:`skb_gro_pull`) and returns ``eth_gro_receive(napi, held, pkt)`` (or the
IP layer's) — and ``gro_complete(sock, napi, pkt, nhoff) -> int`` which calls
:func:`eth_gro_complete` (or the IP one) at ``nhoff`` past its own header.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from netstack.core import gro_fast
from netstack.core.skb_csum import skb_incr_checksum_unnecessary
from netstack.packet.checksum import (csum_add, csum_fold, csum_partial, csum_partial_many,
                                      csum_replace2, csum_sub, ip_fast_csum, pseudo_sum_v4,
                                      pseudo_sum_v6)
from netstack.packet.skb import (CHECKSUM_COMPLETE, CHECKSUM_NONE, CHECKSUM_PARTIAL,
                                 CHECKSUM_UNNECESSARY, UNSET, Packet)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice
    from netstack.packet.skb_burst import SkbBurst

GRO_HASH_BUCKETS = 8
MAX_GRO_SKBS = 8
#: ``net.core.gro_normal_batch`` default.
GRO_NORMAL_BATCH = 8
#: ``netif_get_gro_max_size`` default (GRO_LEGACY_MAX_SIZE).
GRO_MAX_SIZE = 65536
GRO_RECURSION_LIMIT = 15
UDP_GRO_CNT_MAX = 64

GRO_MERGED = "MERGED"
GRO_HELD = "HELD"
GRO_NORMAL = "NORMAL"

GroReceive = Callable[["Napi", list[Packet], Packet], "Packet | None"]


class NapiGroCb:
    """``struct napi_gro_cb``: per-packet GRO state (in ``pkt.cb`` while GRO runs)."""

    __slots__ = ("off", "flush", "count", "proto", "same_flow", "encap_mark", "csum_valid",
                 "csum_cnt", "csum", "is_ipv6", "is_fou", "ip_fixedid", "recursion",
                 "network_offsets", "hold_off", "age", "gro_remcsum_start", "frags",
                 "frag_base")

    def __init__(self, pkt: Packet) -> None:
        self.off = pkt.data
        self.flush = 0
        self.count = 1
        self.proto = 0
        self.same_flow = False
        self.encap_mark = False
        self.csum_valid = False
        self.csum_cnt = 0
        self.csum = 0
        self.is_ipv6 = False
        self.is_fou = False
        self.ip_fixedid = 0
        self.recursion = 0
        self.network_offsets = [0, 0]
        self.hold_off = 0
        self.age = 0
        self.gro_remcsum_start = 0
        self.frags: list[memoryview] | None = None
        self.frag_base = 0


def gro_len(pkt: Packet) -> int:
    """``skb_gro_len``: bytes from the GRO offset to the end."""
    return pkt.tail - pkt.cb.off


def held_gro_len(p: Packet) -> int:
    """``skb_gro_len(p)`` of a held packet: its payload, merged segments included."""
    return p.tail - p.cb.hold_off


class Napi:
    """``struct napi_struct``'s GRO part (``struct gro_node``) for one device.

    ``deliver(list)`` is where completed batches go (``netif_receive_skb_list_internal``).
    """

    def __init__(self, dev: "NetDevice", deliver: Callable[[list[Packet]], None]) -> None:
        self.dev = dev
        self.deliver = deliver
        self.hash: list[list[Packet]] = [[] for _ in range(GRO_HASH_BUCKETS)]
        self.rx_list: list[Packet] = []
        self.rx_count = 0
        self.batch = GRO_NORMAL_BATCH
        self.tick = 0
        self.stats = {"merged": 0, "held": 0, "normal": 0, "flushed": 0}
        #: id(pkt) → (data, tail, sum of data..tail, pkt) for the poll in progress
        #: (:meth:`receive_list`): the batch's frame sums, computed in one vector pass.
        self.presum: dict[int, tuple] = {}

    def cb(self, pkt: Packet) -> NapiGroCb:
        """``NAPI_GRO_CB(skb)``."""
        return pkt.cb

    # ----------------------------------------------------------- batching
    def gro_normal_list(self) -> None:
        """``gro_normal_list``: pass the batched packets up."""
        if not self.rx_list:
            return
        lst = self.rx_list
        self.rx_list = []
        self.rx_count = 0
        self.deliver(lst)

    def gro_normal_one(self, pkt: Packet, segs: int) -> None:
        """``gro_normal_one``: queue; a full batch (counted in segments) goes up."""
        pkt.cb = None
        self.rx_list.append(pkt)
        self.rx_count += segs
        if self.rx_count >= self.batch:
            self.gro_normal_list()

    # ------------------------------------------------------------ receive
    def receive(self, pkt: Packet) -> str:
        """``napi_gro_receive``: ``pkt.data`` at the network header (after
        ``eth_type_trans``).  Returns GRO_MERGED / GRO_HELD / GRO_NORMAL."""
        dev = pkt.dev
        if "rx-gro" not in dev.features:  # netif_elide_gro
            self.gro_normal_one(pkt, 1)
            self.stats["normal"] += 1
            return GRO_NORMAL
        bucket = pkt.hash & (GRO_HASH_BUCKETS - 1)
        head = self.hash[bucket]
        gro_list_prepare(head, pkt)
        fn = gro_receive_by_type(pkt.protocol)
        cbp = NapiGroCb(pkt)
        pkt.cb = cbp
        if fn is None:
            self.gro_normal_one(pkt, 1)
            self.stats["normal"] += 1
            return GRO_NORMAL
        pkt.network_header = pkt.data
        if pkt.gso_size:
            cbp.count = pkt.gso_segs
            from netstack.core.gso import SKB_GSO_DODGY, SKB_GSO_TCPV4, SKB_GSO_TCPV6
            if not pkt.gso_type & (SKB_GSO_TCPV4 | SKB_GSO_TCPV6) or \
                    pkt.gso_type & SKB_GSO_DODGY:
                cbp.flush = 1
        if pkt.ip_summed == CHECKSUM_COMPLETE:
            cbp.csum = pkt.csum
            cbp.csum_valid = True
        elif pkt.ip_summed == CHECKSUM_UNNECESSARY:
            cbp.csum_cnt = pkt.csum_level + 1
        pp = fn(self, head, pkt)
        same_flow = cbp.same_flow
        if pp is not None:
            head.remove(pp)
            self.gro_complete(pp)
        if same_flow:
            self.stats["merged"] += 1
            return GRO_MERGED
        if cbp.flush:
            self.gro_normal_one(pkt, 1)
            self.stats["normal"] += 1
            return GRO_NORMAL
        if len(head) >= MAX_GRO_SKBS:
            oldest = head.pop()
            self.gro_complete(oldest)
        self.tick += 1
        cbp.age = self.tick
        cbp.hold_off = cbp.off
        if not pkt.gso_size:
            pkt.gso_size = gro_len(pkt)
        head.insert(0, pkt)
        self.stats["held"] += 1
        return GRO_HELD

    def gro_complete(self, pkt: Packet) -> None:
        """``gro_complete``: a single packet gets its gso_size back to 0; merged ones are
        finished by the layers (``inet_gro_complete`` …) and counted as ``count``
        segments toward the batch."""
        cbp = pkt.cb
        self.stats["flushed"] += 1
        if cbp.frags is not None:
            gro_join_frags(pkt)
        if cbp.count == 1:
            pkt.gso_size = 0
            self.gro_normal_one(pkt, 1)
            return
        fn = gro_complete_by_type(pkt.protocol)
        err = fn(self, pkt, pkt.data) if fn is not None else -1
        if err:
            from netstack.core.drop_reason import kfree_skb_reason
            kfree_skb_reason(pkt, "NOT_SPECIFIED")
            return
        self.gro_normal_one(pkt, cbp.count)

    def flush(self) -> None:
        """``napi_gro_flush`` + ``gro_normal_list`` (``napi_complete_done``): every held
        packet, bucket by bucket, oldest first, then the last partial batch."""
        for head in self.hash:
            while head:
                self.gro_complete(head.pop())
        self.gro_normal_list()

    def receive_list(self, pkts: list[Packet]) -> None:
        """One NAPI poll: GRO every packet, then complete at the end of the poll.

        Frames without a checksum verdict (CHECKSUM_NONE: GRO will have to sum them to
        validate their L4 checksum) get their sums from data to tail computed for the
        whole poll at once (:func:`csum_partial_many`); :func:`_gro_payload_sum` derives
        the L4 part from it."""
        if len(pkts) > 1:
            self.add_presum(pkts)
        try:
            if gro_fast.ENABLED and len(pkts) >= gro_fast.MIN_RUN:
                gro_fast.receive_list(self, pkts)
            else:
                for p in pkts:
                    self.receive(p)
        finally:
            self.presum = {}
        self.flush()

    def add_presum(self, pkts: list[Packet]) -> None:
        """:attr:`presum` for the CHECKSUM_NONE packets of ``pkts`` (two or more: one is
        left to the chain's own sum), in one vector pass."""
        todo = [p for p in pkts if p.ip_summed == CHECKSUM_NONE]
        if len(todo) > 1:
            sums = csum_partial_many([memoryview(p.buf)[p.data:p.tail] for p in todo])
            # the entry holds the packet too: keyed by id(), it must not outlive it (a
            # burst's rows are skbs made and dropped within the poll — a new one could
            # get a freed one's id and, with the same offsets, its sum)
            self.presum.update({id(p): (p.data, p.tail, s, p) for p, s in zip(todo, sums)})

    def receive_bursts(self, bursts: "list[SkbBurst]") -> None:
        """One NAPI poll over bursts (netstack/packet/skb_burst.py) — the rows of each in
        order, then the completion at the end of the poll: :meth:`receive_list` of all
        their rows, without making the skbs of the rows that continue a held flow
        (:func:`gro_fast.receive_burst`).  With the batch path off, exactly that list."""
        if not gro_fast.ENABLED:
            self.receive_list([p for b in bursts for p in b.packets()])
            return
        try:
            for b in bursts:
                gro_fast.receive_burst(self, b)
        finally:
            self.presum = {}
        self.flush()


def gro_list_prepare(head: list[Packet], pkt: Packet) -> None:
    """``gro_list_prepare``: a held packet is of the same flow only if its hash, device,
    VLAN tag and Ethernet header match (later layers narrow it down further)."""
    if not head:
        return
    mac = pkt.mac_header
    eh = pkt.buf[mac:mac + 14] if mac != UNSET else None
    for p in head:
        same = (p.hash == pkt.hash and p.dev is pkt.dev and p.vlan_proto == pkt.vlan_proto
                and p.vlan_tci == pkt.vlan_tci)
        if same and eh is not None and p.mac_header != UNSET:
            # in-place comparison (no slice of the held packet); a header cut short by
            # the buffer end compares as the slices did
            pm = p.mac_header
            same = (p.buf.startswith(eh, pm) if len(eh) == 14
                    else p.buf[pm:pm + 14] == eh)
        p.cb.same_flow = same


def skb_gro_pull(pkt: Packet, n: int) -> None:
    """``skb_gro_pull``."""
    pkt.cb.off += n


def skb_gro_postpull_rcsum(pkt: Packet, start: int, n: int) -> None:
    """``skb_gro_postpull_rcsum``: a pulled header leaves the running COMPLETE sum."""
    cbp = pkt.cb
    if cbp.csum_valid:
        cbp.csum = csum_sub(cbp.csum, csum_partial(pkt.buf[start:start + n]))


def skb_gro_receive(napi: Napi, p: Packet, pkt: Packet, payload: int) -> bool:
    """``skb_gro_receive``: append ``pkt``'s payload (from absolute ``payload``) to the
    held ``p``; False (-E2BIG) when the result would reach the GRO size limit or
    ``pkt`` is flagged flush."""
    n = pkt.tail - payload
    cbp = pkt.cb
    if (p.tail - p.data) + n >= GRO_MAX_SIZE or cbp.flush:
        return False
    pc = p.cb
    frags = pc.frags
    if frags is None:
        frags = pc.frags = []
        pc.frag_base = p.tail
    # The payload is chained like the kernel's frag_list/frags (no copy yet): held
    # packets are only ever read up to their headers until gro_complete joins them.
    frags.append(memoryview(pkt.buf)[payload:pkt.tail])
    p.tail += n
    pc.count += cbp.count
    cbp.same_flow = True
    return True


def gro_join_frags(p: Packet) -> None:
    """Make a held packet's merged payload linear, once per flush: one allocation and
    one copy of each merged payload (``skb_gro_receive`` appending into the buffer
    instead reallocates it every few segments).  Called by :meth:`Napi.gro_complete`
    before any layer completes the packet."""
    pc = p.cb
    frags = pc.frags
    pc.frags = None
    base = pc.frag_base
    mv = memoryview(p.buf)
    # tailroom beyond the merged end is kept, as skb_put into it would have left it
    p.buf = bytearray().join([mv[:base], *frags, mv[p.tail:]])


# ---------------------------------------------------------------- checksums
def inet_gro_compute_pseudo(pkt: Packet, proto: int) -> int:
    """``inet_gro_compute_pseudo``: over the current (innermost) IPv4 header."""
    cbp = pkt.cb
    nh = cbp.network_offsets[1 if cbp.encap_mark else 0]
    b = pkt.buf
    return pseudo_sum_v4(b[nh + 12:nh + 16], b[nh + 16:nh + 20], gro_len(pkt), proto)


def ip6_gro_compute_pseudo(pkt: Packet, proto: int) -> int:
    """``ip6_gro_compute_pseudo``."""
    cbp = pkt.cb
    nh = cbp.network_offsets[1 if cbp.encap_mark else 0]
    b = pkt.buf
    return pseudo_sum_v6(b[nh + 8:nh + 24], b[nh + 24:nh + 40], gro_len(pkt), proto)


def null_gro_compute_pseudo(pkt: Packet, proto: int) -> int:
    return 0


def _validate_needed(pkt: Packet, zero_okay: bool, check: int) -> bool:
    """``__skb_gro_checksum_validate_needed``."""
    cbp = pkt.cb
    return ((pkt.ip_summed != CHECKSUM_PARTIAL or pkt.csum_start < cbp.off)
            and cbp.gro_remcsum_start != cbp.off - pkt.data
            and cbp.csum_cnt == 0 and (not zero_okay or check != 0))


def _gro_checksum_validate(napi: Napi, pkt: Packet, proto: int, zero_okay: bool, check: int,
                           compute_pseudo: Callable[[Packet, int], int]) -> int:
    """``__skb_gro_checksum_validate``: 0 = good.  Verified layers raise the packet to
    CHECKSUM_UNNECESSARY (or consume one ``csum_cnt``)."""
    ret = 0
    cbp = pkt.cb
    if cbp.csum_cnt > 0:
        # a verdict from the device (CHECKSUM_UNNECESSARY level): nothing to sum
        cbp.csum_cnt -= 1
        return 0
    if _validate_needed(pkt, zero_okay, check):
        psum = compute_pseudo(pkt, proto)
        if not (cbp.csum_valid and not csum_fold(csum_add(psum, cbp.csum))):
            cbp.csum = psum
            w = _gro_payload_sum(napi, pkt, cbp)
            ret = csum_fold(csum_add(psum, w))
            cbp.csum = w
            cbp.csum_valid = True
    if not ret:
        if cbp.csum_cnt > 0:
            cbp.csum_cnt -= 1
        else:
            skb_incr_checksum_unnecessary(pkt)
    return ret


def _swab16(s: int) -> int:
    return ((s & 0xFF) << 8) | (s >> 8)


def _gro_payload_sum(napi: Napi | None, pkt: Packet, cbp: NapiGroCb) -> int:
    """``csum_partial`` from the GRO offset to the end of the packet.

    With a sum of the whole frame from the poll's vector pass — used only for the
    outermost L4 header (no ``encap_mark`` yet): below a tunnel header the bytes may have
    been rewritten since (VXLAN-RCO ``nopartial`` writes the inner checksum before the
    inner layer validates) — the part from ``off`` is the
    ones'-complement difference of the frame sum and the header sum, byte-swapped when
    the header length is odd (RFC 1071 §2(B), ``csum_block_sub``).  A difference of
    0xffff may stand for an all-zero tail, whose sum is 0: that case is summed again."""
    off = cbp.off
    presum = getattr(napi, "presum", None)
    pre = presum.get(id(pkt)) if presum else None
    if pre is not None and not cbp.encap_mark and pre[0] == pkt.data and pre[1] == pkt.tail:
        data = pkt.data
        w = csum_sub(pre[2], csum_partial(memoryview(pkt.buf)[data:off]))
        if (off - data) & 1:
            w = _swab16(w)
        if w != 0xFFFF:
            return w
    return csum_partial(memoryview(pkt.buf)[off:pkt.tail])


def skb_gro_checksum_validate(napi: Napi, pkt: Packet, proto: int,
                              compute_pseudo: Callable[[Packet, int], int]) -> int:
    return _gro_checksum_validate(napi, pkt, proto, False, 0, compute_pseudo)


def skb_gro_checksum_validate_zero_check(napi: Napi, pkt: Packet, proto: int, check: int,
                                         compute_pseudo: Callable[[Packet, int], int]) -> int:
    return _gro_checksum_validate(napi, pkt, proto, True, check, compute_pseudo)


def skb_gro_checksum_simple_validate(napi: Napi, pkt: Packet) -> int:
    return _gro_checksum_validate(napi, pkt, 0, False, 0, null_gro_compute_pseudo)


def skb_gro_checksum_try_convert(pkt: Packet, proto: int,
                                 compute_pseudo: Callable[[Packet, int], int]) -> None:
    """``skb_gro_checksum_try_convert``: a layer verified through csum_cnt (no sum known)
    gets ``~pseudo`` as its running sum so inner layers need no data pass."""
    cbp = pkt.cb
    if cbp.csum_cnt == 0 and not cbp.csum_valid:
        cbp.csum = ~compute_pseudo(pkt, proto) & 0xFFFF
        cbp.csum_valid = True


# --------------------------------------------------------- network flush
def inet_gro_flush(b1: bytearray, n1: int, b2: bytearray, n2: int, p: Packet, inner: bool) -> int:
    """``inet_gro_flush`` (include/net/gro.h): TTL, TOS and DF must match; the ID must
    advance by the held count, or stay fixed if the second packet kept it (recorded in
    ``ip_fixedid``, bit 0 outer, bit 1 inner)."""
    if b1[n1 + 8] != b2[n2 + 8] or b1[n1 + 1] != b2[n2 + 1] or \
            (b1[n1 + 6] ^ b2[n2 + 6]) & 0x40:
        return 1
    id1 = (b1[n1 + 4] << 8) | b1[n1 + 5]
    id2 = (b2[n2 + 4] << 8) | b2[n2 + 5]
    ipid_offset = (id1 - id2) & 0xFFFF
    pcb = p.cb
    count = pcb.count & 0xFFFF
    bit = 1 << int(inner)
    if count == 1 and not ipid_offset:
        pcb.ip_fixedid |= bit
    return int(ipid_offset != (0 if pcb.ip_fixedid & bit else count))


def ipv6_gro_flush(b1: bytearray, n1: int, b2: bytearray, n2: int) -> int:
    """``ipv6_gro_flush``: traffic class and hop limit must match."""
    w1 = int.from_bytes(b1[n1:n1 + 4], "big")
    w2 = int.from_bytes(b2[n2:n2 + 4], "big")
    return int(bool((w1 ^ w2) & 0x0FF00000) or b1[n1 + 7] != b2[n2 + 7])


def _net_flush(b1: bytearray, n1: int, b2: bytearray, n2: int, p: Packet, inner: bool) -> int:
    if b1[n1] >> 4 == 6:
        return ipv6_gro_flush(b1, n1, b2, n2)
    return inet_gro_flush(b1, n1, b2, n2, p, inner)


def gro_receive_network_flush(napi: Napi, pkt: Packet, p: Packet, th: int, th2: int) -> int:
    """``gro_receive_network_flush``: the IP-level checks at the L4 layer, for the outer
    header and, inside a tunnel, the inner one."""
    c1 = pkt.cb
    c2 = p.cb
    b1 = pkt.buf
    n1 = c1.network_offsets[0]
    # _net_flush inlined for the outer header (one call less per segment)
    if b1[n1] >> 4 == 6:
        flush = ipv6_gro_flush(b1, n1, p.buf, c2.network_offsets[0])
    else:
        flush = inet_gro_flush(b1, n1, p.buf, c2.network_offsets[0], p, False)
    if c2.encap_mark:
        flush |= _net_flush(pkt.buf, c1.network_offsets[1], p.buf, c2.network_offsets[1], p,
                            True)
    return flush


# ------------------------------------------------------------ dispatch
def gro_receive_by_type(ethertype: int) -> "GroReceive | None":
    """``gro_find_receive_by_type``: the packet_offload for an EtherType."""
    if ethertype == 0x0800:
        return inet_gro_receive
    if ethertype == 0x86DD:
        return ipv6_gro_receive
    if ethertype == 0x6558:
        return eth_gro_receive
    return None


def gro_complete_by_type(ethertype: int) -> "Callable[[Napi, Packet, int], int] | None":
    if ethertype == 0x0800:
        return inet_gro_complete
    if ethertype == 0x86DD:
        return ipv6_gro_complete
    if ethertype == 0x6558:
        return eth_gro_complete
    return None


_L4_RECEIVE: dict[tuple[int, bool], "GroReceive | None"] = {}


def _l4_receive(proto: int, ipv6: bool) -> "GroReceive | None":
    """``inet_offloads[proto]->callbacks.gro_receive`` (imported on first use: the L4
    modules import this one)."""
    key = (proto, ipv6)
    try:
        return _L4_RECEIVE[key]
    except KeyError:
        fn = _L4_RECEIVE[key] = _l4_receive_lookup(proto, ipv6)
        return fn


def _l4_receive_lookup(proto: int, ipv6: bool) -> "GroReceive | None":
    if proto == 4:
        return ipip_gro_receive          # ipip / ip4ip6: IPv4 inside
    if proto == 41:
        return sit_ip6ip6_gro_receive    # sit / ip6ip6: IPv6 inside
    if proto == 6:
        if ipv6:
            from netstack.ipv6.tcpv6_offload import tcp6_gro_receive
            return tcp6_gro_receive
        from netstack.ipv4.tcp_offload import tcp4_gro_receive
        return tcp4_gro_receive
    if proto == 17:
        if ipv6:
            from netstack.ipv6.udp_offload import udp6_gro_receive
            return udp6_gro_receive
        from netstack.ipv4.udp_offload import udp4_gro_receive
        return udp4_gro_receive
    if proto == 47:
        from netstack.ipv4.gre_offload import gre_gro_receive
        return gre_gro_receive
    return None


_L4_COMPLETE: dict[tuple[int, bool], "Callable[[Napi, Packet, int], int] | None"] = {}


def _l4_complete(proto: int, ipv6: bool) -> "Callable[[Napi, Packet, int], int] | None":
    """``inet_offloads[proto]->callbacks.gro_complete``, looked up once per (protocol,
    family) like :func:`_l4_receive` (every merged packet's completion asks)."""
    key = (proto, ipv6)
    try:
        return _L4_COMPLETE[key]
    except KeyError:
        fn = _L4_COMPLETE[key] = _l4_complete_lookup(proto, ipv6)
        return fn


def _l4_complete_lookup(proto: int, ipv6: bool) -> "Callable[[Napi, Packet, int], int] | None":
    if proto == 4:
        return ip4ip6_gro_complete if ipv6 else ipip_gro_complete
    if proto == 41:
        return ip6ip6_gro_complete if ipv6 else sit_gro_complete
    if proto == 6:
        if ipv6:
            from netstack.ipv6.tcpv6_offload import tcp6_gro_complete
            return tcp6_gro_complete
        from netstack.ipv4.tcp_offload import tcp4_gro_complete

        def _c(napi: Napi, pkt: Packet, off: int) -> int:
            tcp4_gro_complete(napi, pkt, off)
            return 0
        return _c
    if proto == 17:
        if ipv6:
            from netstack.ipv6.udp_offload import udp6_gro_complete
            return udp6_gro_complete
        from netstack.ipv4.udp_offload import udp4_gro_complete
        return udp4_gro_complete
    if proto == 47:
        from netstack.ipv4.gre_offload import gre_gro_complete
        return gre_gro_complete
    return None


def call_gro_receive(fn: GroReceive, napi: Napi, head: list[Packet], pkt: Packet) -> Packet | None:
    """``call_gro_receive``: recursion limit 15 (a nested tunnel bomb flushes)."""
    cbp = pkt.cb
    cbp.recursion += 1
    if cbp.recursion >= GRO_RECURSION_LIMIT:
        cbp.flush |= 1
        return None
    return fn(napi, head, pkt)


# ------------------------------------------------------------ Ethernet
def eth_gro_receive(napi: Napi, head: list[Packet], pkt: Packet) -> Packet | None:
    """``eth_gro_receive``: inner Ethernet of VXLAN/Geneve/GRE-TEB: held packets with
    another Ethernet header are another flow; dispatch on its EtherType."""
    cbp = pkt.cb
    off = cbp.off
    b = pkt.buf
    if pkt.tail - off < 14:
        cbp.flush |= 1
        return None
    rel = off - pkt.data
    eh = bytes(b[off:off + 14])
    for p in head:
        pc = p.cb
        if not pc.same_flow:
            continue
        o2 = p.data + rel
        if not p.buf.startswith(eh, o2):
            pc.same_flow = False
    fn = gro_receive_by_type((b[off + 12] << 8) | b[off + 13])
    if fn is None or fn is eth_gro_receive:
        cbp.flush |= 1
        return None
    skb_gro_pull(pkt, 14)
    skb_gro_postpull_rcsum(pkt, off, 14)
    return call_gro_receive(fn, napi, head, pkt)


def eth_gro_complete(napi: Napi, pkt: Packet, nhoff: int) -> int:
    """``eth_gro_complete``: record the inner MAC header, complete the inner L3."""
    b = pkt.buf
    if pkt.encapsulation:
        pkt.inner_mac_header = nhoff
    fn = gro_complete_by_type((b[nhoff + 12] << 8) | b[nhoff + 13])
    if fn is None or fn is eth_gro_complete:
        return -1
    return fn(napi, pkt, nhoff + 14)


# ------------------------------------------------------------------ IPv4
def inet_gro_receive(napi: Napi, head: list[Packet], pkt: Packet) -> Packet | None:
    """``inet_gro_receive``: only a 20-byte header, not a fragment, valid header checksum,
    total length equal to what is left; other flows are those with another protocol or
    address pair."""
    cbp = pkt.cb
    off = cbp.off
    b = pkt.buf
    pp = None
    flush = 1
    if pkt.tail - off >= 20:
        proto = b[off + 9]
        fn = _l4_receive(proto, False)
        if fn is not None and b[off] == 0x45 and not (b[off + 6] & 0x3F or b[off + 7]) \
                and not ip_fast_csum(b[off:off + 20]):
            cbp.proto = proto
            tot_len = (b[off + 2] << 8) | b[off + 3]
            flush = int(tot_len != ((pkt.tail - off) & 0xFFFF))
            if head:
                rel = off - pkt.data
                addrs = b[off + 12:off + 20]
                for p in head:
                    pc = p.cb
                    if not pc.same_flow:
                        continue
                    o2 = p.data + rel
                    pb = p.buf
                    if pb[o2 + 9] != proto or not pb.startswith(addrs, o2 + 12):
                        pc.same_flow = False
            cbp.flush |= flush
            cbp.network_offsets[1 if cbp.encap_mark else 0] = off
            cbp.off = off + 20  # skb_gro_pull
            pkt.transport_header = off + 20
            # call_gro_receive inlined
            cbp.recursion += 1
            if cbp.recursion >= GRO_RECURSION_LIMIT:
                cbp.flush |= 1
            else:
                pp = fn(napi, head, pkt)
    cbp.flush |= flush
    return pp


def inet_gro_complete(napi: Napi, pkt: Packet, nhoff: int) -> int:
    """``inet_gro_complete``: new total length (checksum updated incrementally), then the
    L4 completion; inside a tunnel, the inner IPv4 header is recorded."""
    b = pkt.buf
    if pkt.encapsulation:
        pkt.inner_protocol = 0x0800
        pkt.inner_network_header = nhoff
    old = (b[nhoff + 2] << 8) | b[nhoff + 3]
    new = pkt.tail - nhoff
    b[nhoff + 2] = (new >> 8) & 0xFF
    b[nhoff + 3] = new & 0xFF
    c = csum_replace2((b[nhoff + 10] << 8) | b[nhoff + 11], old, new & 0xFFFF)
    b[nhoff + 10] = c >> 8
    b[nhoff + 11] = c & 0xFF
    fn = _l4_complete(b[nhoff + 9], False)
    if fn is None:
        return -1
    return fn(napi, pkt, nhoff + 20)


# ------------------------------------------------------------------ IPv6
_EXTHDRS = (0, 43, 60)


def ipv6_gro_receive(napi: Napi, head: list[Packet], pkt: Packet) -> Packet | None:
    """``ipv6_gro_receive``: payload length must match, extension headers are skipped
    (and must be identical for the same flow); another flow differs in version, flow
    label, addresses or next header."""
    cbp = pkt.cb
    off = cbp.off
    b = pkt.buf
    pp = None
    flush = 1
    if pkt.tail - off >= 40:
        cbp.network_offsets[int(cbp.encap_mark)] = off
        flush += ((b[off + 4] << 8) | b[off + 5]) != (pkt.tail - off - 40)
        proto = b[off + 6]
        nlen = 40
        ok = True
        while proto in _EXTHDRS:
            if pkt.tail - off < nlen + 8:
                ok = False
                break
            hl = (b[off + nlen + 1] + 1) * 8
            proto = b[off + nlen]
            nlen += hl
        fn = _l4_receive(proto, True) if ok and pkt.tail - off >= nlen else None
        if fn is not None:
            skb_gro_pull(pkt, nlen)
            pkt.transport_header = cbp.off
            cbp.proto = proto
            flush -= 1
            rel = off - pkt.data
            w = int.from_bytes(b[off:off + 4], "big")
            rest = bytes(b[off + 6:off + 7]) + bytes(b[off + 8:off + 40])
            ext = bytes(b[off + 40:off + nlen])
            for p in head:
                pc = p.cb
                if not pc.same_flow:
                    continue
                o2 = p.data + rel
                pb = p.buf
                w2 = int.from_bytes(pb[o2:o2 + 4], "big")
                if (w ^ w2) & 0xF00FFFFF or bytes(pb[o2 + 6:o2 + 7]) + bytes(pb[o2 + 8:o2 + 40]) != rest \
                        or (nlen > 40 and pb[o2 + 40:o2 + nlen] != ext):
                    pc.same_flow = False
            cbp.flush |= flush
            skb_gro_postpull_rcsum(pkt, off, nlen)
            pp = call_gro_receive(fn, napi, head, pkt)
    cbp.flush |= flush
    return pp


def ipv6_gro_complete(napi: Napi, pkt: Packet, nhoff: int) -> int:
    """``ipv6_gro_complete``: the new payload length, then the L4 completion."""
    b = pkt.buf
    if pkt.encapsulation:
        pkt.inner_protocol = 0x86DD
        pkt.inner_network_header = nhoff
    plen = pkt.tail - nhoff - 40
    if plen > 0xFFFF:
        from netstack.errors import NotSupported
        raise NotSupported("BIG TCP GRO (IPv6 jumbogram)")
    b[nhoff + 4] = plen >> 8
    b[nhoff + 5] = plen & 0xFF
    proto = b[nhoff + 6]
    off = nhoff + 40
    while proto in _EXTHDRS:
        proto = b[off]
        off += (b[off + 1] + 1) * 8
    fn = _l4_complete(proto, True)
    if fn is None:
        return -1
    return fn(napi, pkt, off)


# ------------------------------------------------------------- IP-in-IP
def ipip_gro_receive(napi: Napi, head: list[Packet], pkt: Packet) -> Packet | None:
    """``ipip_gro_receive`` / ``ip4ip6_gro_receive``: one level of IP-in-IP, then the
    inner IPv4 layer."""
    cbp = pkt.cb
    if cbp.encap_mark:
        cbp.flush = 1
        return None
    cbp.encap_mark = True
    return inet_gro_receive(napi, head, pkt)


def sit_ip6ip6_gro_receive(napi: Napi, head: list[Packet], pkt: Packet) -> Packet | None:
    """``sit_ip6ip6_gro_receive``: IPv6 inside IPv4 (sit) or IPv6 (ip6ip6)."""
    cbp = pkt.cb
    if cbp.encap_mark:
        cbp.flush = 1
        return None
    cbp.encap_mark = True
    return ipv6_gro_receive(napi, head, pkt)


def _ipxip_complete(pkt: Packet, gso_bit: int) -> None:
    pkt.encapsulation = True
    pkt.gso_type |= gso_bit


def ipip_gro_complete(napi: Napi, pkt: Packet, nhoff: int) -> int:
    """``ipip_gro_complete``: SKB_GSO_IPXIP4, encapsulation, inner IPv4 completed."""
    _ipxip_complete(pkt, 1 << 8)
    return inet_gro_complete(napi, pkt, nhoff)


def sit_gro_complete(napi: Napi, pkt: Packet, nhoff: int) -> int:
    """``sit_gro_complete``: SKB_GSO_IPXIP4, inner IPv6 completed."""
    _ipxip_complete(pkt, 1 << 8)
    return ipv6_gro_complete(napi, pkt, nhoff)


def ip6ip6_gro_complete(napi: Napi, pkt: Packet, nhoff: int) -> int:
    """``ip6ip6_gro_complete``: SKB_GSO_IPXIP6, inner IPv6 completed."""
    _ipxip_complete(pkt, 1 << 9)
    return ipv6_gro_complete(napi, pkt, nhoff)


def ip4ip6_gro_complete(napi: Napi, pkt: Packet, nhoff: int) -> int:
    """``ip4ip6_gro_complete``: SKB_GSO_IPXIP6, inner IPv4 completed."""
    _ipxip_complete(pkt, 1 << 9)
    return inet_gro_complete(napi, pkt, nhoff)
