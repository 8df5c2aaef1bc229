"""Flowtable software fast path (net/netfilter/nf_flow_table_{core,ip}.c, nft_flow_offload.c).

* ``flow add @ft`` (:func:`nft_flow_offload_eval`) offloads a *confirmed* connection —
  TCP only when ESTABLISHED+ASSURED and the packet has no FIN/RST, UDP always; never with
  NAT clash or sequence adjustment — by storing one flow tuple per direction (src, dst,
  sport, dport, l3proto, l4proto, iif) with the output device, next hop and MTU, and sets
  ``IPS_OFFLOAD`` and TCP's be-liberal flags.
* The flowtable's netdev ingress hook (:func:`nf_flow_offload_list_hook`; per packet
  :func:`nf_flow_offload_ip_hook` / :func:`nf_flow_offload_ipv6_hook`, the list hook on a
  list of one) looks each IPv4/IPv6 TCP/UDP packet up; on a hit it refreshes the flow (30 s,
  ``nf_flowtable_*_timeout``; ``flow_offload_refresh`` writes only a move of more than 1 s),
  applies the connection's NAT, decrements the TTL and transmits through the neighbour
  layer (``neigh_xmit``): the packet is stolen, every later hook is bypassed.  Slow path
  instead for IP options, fragments, TTL <= 1 and packets over the MTU.  TCP (6.14+
  ``nf_flow_state_check``): a FIN or RST marks the flow *closing* and is forwarded on the
  fast path; a SYN on a closing flow tears it down and takes the slow path.  Timed-out
  flows are torn down by :meth:`Flowtable.gc` and on lookup; teardown clears
  ``IPS_OFFLOAD`` and gives the ct its state's timeout back (:func:`flow_offload_fixup_ct`).
  While offloaded the ct's own timeout is a day (``flow_offload_add``).  Conntrack
  accounting counts fast-path packets only for a flowtable with ``counter``
  (``NF_FLOWTABLE_COUNTER``).
* Batched: given a receive list, the hook handles every packet in order and queues the hits
  per output device; each device then gets one ``neigh_output`` → ``dev_queue_xmit_list``
  per run of the same next hop (``xmit_more``, one doorbell), and the misses go on as a list.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netstack.core.neighbour import neigh_output
from netstack.netfilter import conntrack as nfct
from netstack.netfilter.conntrack_tuple import (IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY,
                                                IPPROTO_TCP, IPPROTO_UDP)
from netstack.netfilter.core import (NF_ACCEPT, NF_NETDEV_INGRESS, NF_STOLEN, NFPROTO_IPV6,
                                     NFPROTO_NETDEV, NfHookOps, NfHookState,
                                     nf_register_net_hook, nf_unregister_net_hook)
from netstack.netfilter import conntrack_proto_tcp as tcpct
from netstack.packet.skb import CHECKSUM_PARTIAL

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.packet.skb import Packet

NSEC = 1_000_000_000
#: nf_flowtable_tcp_timeout / nf_flowtable_udp_timeout defaults (seconds).
FLOW_TIMEOUT = 30
#: ``NF_CT_DAY``: the ct timeout of an offloaded connection (``flow_offload_add``).
NF_CT_DAY = 86400
#: ``nf_flow_table_tcp_timeout``: the ct timeout the GC gives an offloaded TCP
#: connection by state (seconds; absent = left alone).
_TCP_OFFLOAD_CT_TIMEOUT = {"ESTABLISHED": NF_CT_DAY, "FIN_WAIT": 300, "CLOSE_WAIT": 300,
                           "LAST_ACK": 300, "TIME_WAIT": 300}


@dataclass(eq=False)
class FlowTupleDir:
    """One direction of a ``flow_offload``: how a packet of that direction arrives, where
    it leaves, and the NAT rewrite it gets (``nf_flow_snat_ip``/``nf_flow_dnat_ip``).

    A packet matching ``key`` always carries the same addresses and ports, so the
    rewrite's one's-complement checksum difference is fixed per direction: ``ip_delta``
    (addresses, for the IPv4 header) and ``l4_delta`` (pseudo-header addresses and ports,
    for TCP/UDP).  Adding it at once equals the kernel's successive
    ``csum_replace4``/``inet_proto_csum_replace{2,4}`` calls (RFC 1624 updates commute)."""

    key: tuple
    iif: int
    out_dev: "NetDevice"
    nexthop: bytes
    mtu: int
    new_addrs: bytes = b""     # saddr + daddr after NAT (empty: no NAT this way)
    new_ports: bytes = b""     # sport + dport after NAT
    ip_delta: int = 0
    l4_delta: int = 0
    #: the neighbour table of the output (ARP or ND), resolved once when the flow is
    #: added: ``neigh_xmit`` then only looks the next hop up in it.
    neigh_tbl: Any = None


@dataclass(eq=False)
class FlowOffload:
    """``struct flow_offload``."""

    ct: nfct.NfConn
    table: "Flowtable"
    dirs: list[FlowTupleDir]
    timeout: int = 0
    teardown: bool = False
    #: ``NF_FLOW_CLOSING``: a TCP FIN or RST went through the fast path
    #: (``nf_flow_state_check``); a SYN then tears the flow down.
    closing: bool = False

    def teardown_by_ct(self) -> None:
        """The ct was deleted (conntrack -D, flush): drop the flow."""
        self.table._remove(self)


@dataclass(eq=False)
class Flowtable:
    """``struct nf_flowtable``: the flows of one nft flowtable and its ingress hooks."""

    net: "Net"
    name: str
    priority: int = 0
    devices: list["NetDevice"] = field(default_factory=list)
    flows: dict[tuple, tuple[FlowOffload, int]] = field(default_factory=dict)
    ops: list[NfHookOps] = field(default_factory=list)
    #: slow-path fallbacks by reason (ip_options, fragment, ttl, mtu, syn_closing, dst).
    slow_stats: dict[str, int] = field(default_factory=dict)
    #: packets forwarded by the fast path.
    hits: int = 0
    #: ``flags``/``counter`` of the nft flowtable (``NF_FLOWTABLE_COUNTER``): conntrack
    #: accounting of fast-path packets.
    counter: bool = False
    #: the namespace's virtual clock (flow timeouts), looked up once.
    clock: Any = field(init=False, repr=False)
    #: ``gc_work``: the once-a-second GC (:meth:`gc`), armed while there are flows.
    gc_timer: Any = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self.clock = self.net.world.clock

    @property
    def stats(self) -> dict[str, int]:
        """Fast-path hits (``"hit"``) and slow-path fallbacks by reason, one dict."""
        d = dict(self.slow_stats)
        if self.hits:
            d["hit"] = self.hits
        return d

    def register(self) -> None:
        """Hook the ingress of every device (``nft_register_flowtable_net_hooks``)."""
        for dev in self.devices:
            # with its list form, for the traversal that hands the hook a whole receive
            # list (netfilter.core ``nf_hook_ingress_list``)
            o = NfHookOps(nf_flow_offload_ip_hook, NFPROTO_NETDEV, NF_NETDEV_INGRESS,
                          self.priority, priv=self, dev=dev, name=f"flowtable {self.name}",
                          list_hook=nf_flow_offload_list_hook)
            nf_register_net_hook(self.net, o)
            self.ops.append(o)
        from netstack.netfilter.core import nf_net
        nf_net(self.net).flowtables.append(self)

    def unregister(self) -> None:
        if self.gc_timer is not None:
            self.gc_timer.cancel()
        for o in self.ops:
            nf_unregister_net_hook(self.net, o)
        self.ops.clear()
        for flow, _ in list(self.flows.values()):
            self.teardown_flow(flow)
        from netstack.netfilter.core import nf_net
        lst = nf_net(self.net).flowtables
        if self in lst:
            lst.remove(self)

    # -- table operations
    def _remove(self, flow: FlowOffload) -> None:
        for d in flow.dirs:
            hit = self.flows.get(d.key)
            if hit is not None and hit[0] is flow:
                del self.flows[d.key]
        ct = flow.ct
        ct.status &= ~nfct.IPS_OFFLOAD
        ct.flow = None

    def teardown_flow(self, flow: FlowOffload) -> None:
        """``flow_offload_teardown``: clear ``IPS_OFFLOAD``, mark the flow torn down (the
        kernel's lookup refuses it until the GC frees it; here it leaves the table at
        once) and give the ct back to conntrack (``flow_offload_fixup_ct``)."""
        first = not flow.teardown
        flow.teardown = True
        self._remove(flow)
        if first:
            flow_offload_fixup_ct(self, flow)

    def gc(self) -> int:
        """``nf_flow_offload_gc_step`` over every flow: tear down the expired ones and those
        whose ct died; for the others, ``nf_flow_table_extend_ct_timeout`` — conntrack
        sees none of the fast-path packets, so a ct whose timeout fell under 5 minutes
        (a slow-path packet refreshed it) is pushed out again: UDP a day, TCP by state
        (ESTABLISHED a day, FIN_WAIT..TIME_WAIT 5 minutes, else left alone)."""
        now = self.net.world.clock.now
        seen = {id(f): f for f, _ in self.flows.values()}
        n = 0
        for f in seen.values():
            ct = f.ct
            if f.timeout <= now or ct.status & nfct.IPS_DYING:
                self.teardown_flow(f)
                n += 1
            elif ct.timeout - now < 300 * NSEC and ct.status & nfct.IPS_OFFLOAD:
                extra = NF_CT_DAY
                if ct.protonum == IPPROTO_TCP and isinstance(ct.proto, tcpct.TcpCt):
                    extra = _TCP_OFFLOAD_CT_TIMEOUT.get(tcpct.STATE_NAMES[ct.proto.state], 0)
                if extra:
                    ct.timeout = now + extra * NSEC
        return n

    def _gc_work(self) -> None:
        """``nf_flow_offload_work_gc``: run the GC, come back in a second (HZ) while the
        table holds flows."""
        self.gc()
        if self.flows:
            self.gc_timer.mod_in(NSEC)

    def gc_arm(self) -> None:
        """Start the once-a-second GC if it is not running (first flow added)."""
        if self.gc_timer is None:
            self.gc_timer = self.clock.timer(self._gc_work)
        if not self.gc_timer.active:
            self.gc_timer.mod_in(NSEC)

    def lookup(self, key: tuple) -> tuple[FlowOffload, int] | None:
        hit = self.flows.get(key)
        if hit is None:
            return None
        flow = hit[0]
        if flow.timeout <= self.net.world.clock.now or flow.ct.status & nfct.IPS_DYING:
            self.teardown_flow(flow)
            return None
        return hit

    def count(self) -> int:
        return len({id(f) for f, _ in self.flows.values()})


def _key(t: Any, iif: int) -> tuple:
    """Flow key: saddr daddr sport dport as the 12 bytes of the IPv4+L4 headers, the L4
    protocol and the input interface (``flow_offload_tuple``)."""
    return (t.src + t.dst + t.sport.to_bytes(2, "big") + t.dport.to_bytes(2, "big"),
            t.protonum, iif)


def _words_delta(old: bytes, new: bytes) -> int:
    """Sum of ~old + new over 16-bit words (the RFC 1624 update, not yet folded)."""
    d = 0
    for i in range(0, len(old), 2):
        d += (~int.from_bytes(old[i:i + 2], "big") & 0xFFFF) + int.from_bytes(new[i:i + 2], "big")
    return d


def _nat_rewrite(td: FlowTupleDir, ct: nfct.NfConn, d: int) -> None:
    """Precompute direction ``d``'s NAT rewrite from the ct's tuples."""
    from netstack.netfilter.conntrack_tuple import invert
    if not ct.status & nfct.IPS_NAT_MASK:
        return
    old = ct.tuplehash[d]
    new = invert(ct.tuplehash[1 - d])
    if new is None or new == old:
        return
    oa, na = old.src + old.dst, new.src + new.dst
    op = old.sport.to_bytes(2, "big") + old.dport.to_bytes(2, "big")
    np_ = new.sport.to_bytes(2, "big") + new.dport.to_bytes(2, "big")
    td.new_addrs, td.new_ports = na, np_
    td.ip_delta = _fold(_words_delta(oa, na))
    td.l4_delta = _fold(td.ip_delta + _words_delta(op, np_))


def _fold(v: int) -> int:
    """End-around-carry fold of a non-negative sum to 16 bits (its one's-complement
    value is unchanged, so it can stand for the whole RFC 1624 difference)."""
    while v >> 16:
        v = (v & 0xFFFF) + (v >> 16)
    return v


def _csum_apply(check: int, delta: int) -> int:
    """``csum_replace*`` with a precomputed difference folded to 16 bits (never yields
    0xffff, as the kernel's ``~csum_unfold`` trick guarantees a nonzero intermediate).

    Adding 0xFFFF (one's-complement zero) keeps the sum nonzero; with ``delta`` <= 0xFFFF
    the sum is at most 0x2FFFD, so two folds always end within 16 bits.  The fast path
    inlines this expression."""
    v = (~check & 0xFFFF) + delta + 0xFFFF
    v = (v & 0xFFFF) + (v >> 16)
    return ~((v & 0xFFFF) + (v >> 16)) & 0xFFFF


def _route_other_dir(net: "Net", ct: nfct.NfConn, d: int, in_dev: "NetDevice") -> Any:
    """``nft_flow_route`` for the opposite direction: an output route back towards the
    sender of direction ``d``, leaving by the device the packet came in on."""
    t = ct.tuplehash[d]
    if ct.l3num == NFPROTO_IPV6:
        from netstack.ipv6.route import Flowi6, ip6_route_output
        return ip6_route_output(net, Flowi6(daddr=t.src, oif=in_dev.ifindex))
    from netstack.ipv4.af_inet import flowi4
    from netstack.ipv4.route import ip_route_output
    # (the kernel passes the other side's address as saddr with FLOWI_FLAG_ANYSRC; the
    # source plays no part in choosing the device and next hop, so none is given here)
    rt = ip_route_output(net, flowi4(daddr=t.src, oif=in_dev.ifindex))
    return rt


def _mtu(rt: Any, dev: "NetDevice") -> int:
    m = getattr(rt, "mtu", None)
    if callable(m):
        try:
            return int(m())
        except Exception:  # noqa: BLE001 - a route without PMTU state: device MTU
            return dev.mtu
    return dev.mtu


def nft_flow_offload_eval(ft: Flowtable, pkt: "Packet", state: NfHookState) -> bool:
    """The ``flow add @ft`` statement; True when a flow was added."""
    ct, ctinfo = nfct.nf_ct_get(pkt)
    if ct is None or state.in_dev is None or state.out_dev is None:
        return False
    p = ct.protonum
    nh = pkt.network_header if pkt.network_header >= 0 else pkt.data
    if p == IPPROTO_TCP:
        l4 = nh + (pkt.buf[nh] & 0x0F) * 4
        flags = pkt.buf[l4 + 13] if pkt.tail - l4 >= 14 else 0
        st = ct.proto
        if flags & (tcpct.TH_FIN | tcpct.TH_RST) or not isinstance(st, tcpct.TcpCt) or \
                st.state != tcpct.ESTABLISHED or not ct.status & nfct.IPS_ASSURED:
            return False
    elif p != IPPROTO_UDP:
        return False
    if ct.status & (nfct.IPS_SEQ_ADJUST | nfct.IPS_NAT_CLASH | nfct.IPS_HELPER):
        return False
    if not ct.status & nfct.IPS_CONFIRMED or ct.status & nfct.IPS_OFFLOAD:
        return False
    d = nfct.ctinfo2dir(ctinfo)
    this_rt = pkt.dst
    try:
        other_rt = _route_other_dir(state.net, ct, d, state.in_dev)
    except Exception:  # noqa: BLE001 - no route back: no offload (err_flow_route)
        return False
    ct.status |= nfct.IPS_OFFLOAD
    flow = FlowOffload(ct, ft, [])
    dirs: list[FlowTupleDir | None] = [None, None]
    for dd, rt, iif, out in ((d, this_rt, state.in_dev.ifindex, state.out_dev),
                             (1 - d, other_rt, state.out_dev.ifindex,
                              getattr(other_rt, "dev", None) or state.in_dev)):
        # next hop for direction dd: the gateway, else the final destination of that
        # direction after NAT, i.e. the source of the other direction's tuple.
        gw = getattr(rt, "gateway", None)
        nexthop = gw if gw else ct.tuplehash[1 - dd].src
        dirs[dd] = FlowTupleDir(_key(ct.tuplehash[dd], iif), iif, out, nexthop, _mtu(rt, out))
        dirs[dd].neigh_tbl = (out.net.ipv6.nd_tbl if ct.l3num == NFPROTO_IPV6
                              else out.net.ipv4.arp_tbl)
        _nat_rewrite(dirs[dd], ct, dd)  # type: ignore[arg-type]
    flow.dirs = [dirs[0], dirs[1]]  # type: ignore[list-item]
    if isinstance(ct.proto, tcpct.TcpCt):
        ct.proto.seen[0].flags |= tcpct.IP_CT_TCP_FLAG_BE_LIBERAL
        ct.proto.seen[1].flags |= tcpct.IP_CT_TCP_FLAG_BE_LIBERAL
    now = state.net.world.clock.now
    flow.timeout = now + FLOW_TIMEOUT * NSEC
    for dd in (IP_CT_DIR_ORIGINAL, IP_CT_DIR_REPLY):
        ft.flows[flow.dirs[dd].key] = (flow, dd)
    ct.flow = flow
    # flow_offload_add: nf_ct_refresh(ct, NF_CT_DAY) -- conntrack sees no more packets
    # of the connection, so its own timeout must not run out under the flow
    ct.timeout = now + NF_CT_DAY * NSEC
    ft.gc_arm()
    return True


def flow_offload_fixup_ct(ft: Flowtable, flow: FlowOffload) -> None:
    """``flow_offload_fixup_ct`` (nf_flow_table_core.c, Linux 6.14+): the ct gets the
    timeout of its state back.  TCP: after a FIN/RST went through the fast path
    (``closing``) the ct enters CLOSE (``IP_CT_TCP_FLAG_CLOSE_INIT`` so a SYN can reopen
    it) with the close timeout; otherwise it keeps its state.  Both directions forget
    their window (``td_maxwin`` 0, ``MAXACK_SET`` cleared: the fast path moved the
    sequence numbers past what conntrack saw).  UDP: the replied/unreplied timeout.  A
    flow that ran out of its own timeout has the flow timeout (30 s) taken off, since
    that much idle time has passed; the result is written when the ct would otherwise
    live longer, and always when closing (``nf_ct_refresh``)."""
    ct = flow.ct
    cn = nfct.ct_net(ft.net)
    now = cn.now
    expired = flow.timeout <= now
    closing = False
    st = ct.proto
    if ct.protonum == IPPROTO_TCP and isinstance(st, tcpct.TcpCt):
        closing = flow.closing
        if closing:
            st.state = tcpct.STATE_NAMES.index("CLOSE")
            st.seen[0].flags |= tcpct.IP_CT_TCP_FLAG_CLOSE_INIT
            expired = False
        for seen in st.seen:
            seen.td_maxwin = 0
            seen.flags &= ~tcpct.IP_CT_TCP_FLAG_MAXACK_SET
        timeout = nfct.tcp_timeouts(cn)[st.state]
    elif ct.protonum == IPPROTO_UDP:
        timeout = cn.sysctl("nf_conntrack_udp_timeout_stream"
                            if ct.status & nfct.IPS_SEEN_REPLY else "nf_conntrack_udp_timeout")
    else:
        return
    if expired:
        timeout -= FLOW_TIMEOUT
    timeout = max(timeout, 0)
    if closing or ct.timeout - now > timeout * NSEC:
        ct.timeout = now + timeout * NSEC


def _nat_partial(buf: bytearray, nh: int, end: int, ct: nfct.NfConn, d: int) -> None:
    """NAT of a CHECKSUM_PARTIAL packet (its L4 field holds only the pseudo-header sum):
    the general mangler updates it as ``inet_proto_csum_replace4`` does in that case."""
    from netstack.netfilter.conntrack_tuple import invert
    from netstack.netfilter.nat import NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC, nf_nat_manip_pkt
    target = invert(ct.tuplehash[1 - d])
    if target is None:
        return
    if ct.status & nfct.IPS_SRC_NAT:
        nf_nat_manip_pkt(buf, nh, end, ct.l3num, target, NF_NAT_MANIP_SRC
                         if d == IP_CT_DIR_ORIGINAL else NF_NAT_MANIP_DST, True)
    if ct.status & nfct.IPS_DST_NAT:
        nf_nat_manip_pkt(buf, nh, end, ct.l3num, target, NF_NAT_MANIP_DST
                         if d == IP_CT_DIR_ORIGINAL else NF_NAT_MANIP_SRC, True)


def _nat6(buf: bytearray, nh: int, l4: int, proto: int, td: FlowTupleDir) -> None:
    """``nf_flow_nat_ipv6``: addresses and ports, the L4 checksum by the fixed delta (IPv6
    has no header checksum; a UDP checksum is mandatory, a computed zero becomes 0xffff)."""
    ck = l4 + 16 if proto == IPPROTO_TCP else l4 + 6
    c = _csum_apply(buf[ck] << 8 | buf[ck + 1], td.l4_delta)
    if proto == IPPROTO_UDP and c == 0:
        c = 0xFFFF
    buf[ck] = c >> 8
    buf[ck + 1] = c & 0xFF
    buf[nh + 8:nh + 40] = td.new_addrs
    buf[l4:l4 + 4] = td.new_ports


def _slow(ft: Flowtable, why: str) -> None:
    ft.slow_stats[why] = ft.slow_stats.get(why, 0) + 1


def nf_flow_offload_ip_hook(ft: Flowtable, pkt: "Packet", state: NfHookState) -> int:
    """``nf_flow_offload_inet_hook`` for one packet (``nf_hook_slow``'s per-packet call):
    NF_STOLEN when the fast path forwarded it, NF_ACCEPT otherwise.  It is the list hook on
    a list of one, so the per-packet and the batched traversal share every line."""
    return NF_ACCEPT if nf_flow_offload_list_hook(ft, [pkt], state) else NF_STOLEN


def nf_flow_offload_ipv6_hook(ft: Flowtable, pkt: "Packet", state: NfHookState) -> int:
    """``nf_flow_offload_ipv6_hook`` for one packet (see :func:`nf_flow_offload_ip_hook`)."""
    return NF_ACCEPT if nf_flow_offload_list_hook(ft, [pkt], state) else NF_STOLEN


def nf_flow_offload_list_hook(ft: Flowtable, pkts: list["Packet"], state: NfHookState
                              ) -> list["Packet"]:
    """The flowtable's netdev ingress hook over a list of packets received on
    ``state.in_dev``: returns the misses (NF_ACCEPT), in their order; forwards the hits.

    Per packet it does exactly what ``nf_flow_offload_ip_hook`` / ``_ipv6_hook`` do
    (nf_flow_table_ip.c), in list order, so a teardown, a FIN marking a flow closing or a
    refresh is seen by the next packet of the list as it would be one packet later:
    ``nf_flow_tuple_ip`` (no options, no fragment, TCP/UDP, TTL > 1, ports present), the
    lookup (``flow_offload_lookup``: a flow torn down or whose ct is dying is no hit; one
    past its timeout is torn down here, standing in for the GC work that would have run),
    the MTU check (``nf_flow_exceeds_mtu``), ``nf_flow_state_check`` (FIN/RST: closing;
    SYN on a closing flow: teardown, slow path),
    the output device check, ``flow_offload_refresh``, ``nf_flow_nat_ip`` with the
    per-direction checksum differences computed when the flow was added,
    ``ip_decrease_ttl``, conntrack accounting (``counter`` flowtables only).

    Only the transmit is batched: the kernel's ``neigh_xmit`` sends each skb on its own
    (no ``xmit_more``); here the hits are queued per output device and, within a device,
    per run of packets to the same next hop, and each run goes to ``neigh_output`` (one
    ``dev_queue_xmit_list``, one doorbell) after the whole list was looked at.  Packet
    order on every output device is the list order; what the batching changes is only the
    interleaving between different output devices (and against misses that a later hook
    transmits at once, e.g. a netdev chain's ``fwd``).  The IPv4 hit path is written
    inline: in Python every call is a large fraction of the per-packet budget."""
    accept: list[Packet] = []
    txq: dict[NetDevice, list[tuple[Any, bytes, list[Packet]]]] = {}
    last_td: FlowTupleDir | None = None
    cur: list[Packet] = accept
    #: output device last found running: nothing is transmitted (so nothing can change
    #: a device's state) until the whole list was looked at
    up_dev: NetDevice | None = None
    flows_get = ft.flows.get
    iif = state.in_dev.ifindex if state.in_dev is not None else -1
    now = ft.clock.now
    refresh = now + FLOW_TIMEOUT * NSEC
    fin_rst = tcpct.TH_FIN | tcpct.TH_RST
    counter = ft.counter
    for pkt in pkts:
        if pkt.protocol != 0x0800:
            td = _ipv6_hit(ft, pkt, iif, now, refresh) if pkt.protocol == 0x86DD else None
            if td is None:
                accept.append(pkt)
                continue
        else:
            buf = pkt.buf
            nh = pkt.data
            end = pkt.tail
            if end - nh < 20:
                accept.append(pkt)
                continue
            if buf[nh] != 0x45:
                _slow(ft, "ip_options")
                accept.append(pkt)
                continue
            if buf[nh + 6] & 0x3F or buf[nh + 7]:
                _slow(ft, "fragment")
                accept.append(pkt)
                continue
            proto = buf[nh + 9]
            if proto != IPPROTO_UDP and proto != IPPROTO_TCP:
                accept.append(pkt)
                continue
            if buf[nh + 8] <= 1:
                _slow(ft, "ttl")
                accept.append(pkt)
                continue
            l4 = nh + 20
            if end - l4 < (20 if proto == IPPROTO_TCP else 8):
                accept.append(pkt)
                continue
            hit = flows_get((bytes(buf[nh + 12:nh + 24]), proto, iif))
            if hit is None:
                accept.append(pkt)
                continue
            flow, d = hit
            ct = flow.ct
            if flow.timeout <= now or ct.status & nfct.IPS_DYING:
                ft.teardown_flow(flow)
                accept.append(pkt)
                continue
            td = flow.dirs[d]
            if (buf[nh + 2] << 8 | buf[nh + 3]) > td.mtu and not pkt.gso_size:
                _slow(ft, "mtu")
                accept.append(pkt)
                continue
            if proto == IPPROTO_TCP:
                # nf_flow_state_check (6.14+): a SYN on a closing flow tears it down
                # and takes the slow path; a FIN/RST marks the flow closing and stays
                # on the fast path
                fl = buf[l4 + 13]
                if fl & 0x02 and flow.closing:
                    ft.teardown_flow(flow)
                    _slow(ft, "syn_closing")
                    accept.append(pkt)
                    continue
                if fl & fin_rst:
                    flow.closing = True
            if td.out_dev is not up_dev:
                if not td.out_dev.running():
                    ft.teardown_flow(flow)
                    _slow(ft, "dst")
                    accept.append(pkt)
                    continue
                up_dev = td.out_dev
            # flow_offload_refresh: only a move of more than a second (HZ) is written
            if refresh - flow.timeout > NSEC:
                flow.timeout = refresh
            if td.new_addrs:
                if pkt.ip_summed == CHECKSUM_PARTIAL:
                    _nat_partial(buf, nh, end, ct, d)
                else:
                    # nf_flow_nat_ip: addresses and ports towards the other direction's
                    # inverted tuple, IPv4 and TCP/UDP checksums by the fixed differences
                    # (_csum_apply inline; a zero UDP checksum stays zero, a computed
                    # zero becomes 0xffff).
                    ck = l4 + 16 if proto == IPPROTO_TCP else l4 + 6
                    c = buf[ck] << 8 | buf[ck + 1]
                    if c or proto == IPPROTO_TCP:
                        v = (~c & 0xFFFF) + td.l4_delta + 0xFFFF
                        v = (v & 0xFFFF) + (v >> 16)
                        c = ~((v & 0xFFFF) + (v >> 16)) & 0xFFFF
                        if c == 0 and proto == IPPROTO_UDP:
                            c = 0xFFFF
                        buf[ck] = c >> 8
                        buf[ck + 1] = c & 0xFF
                    v = (~(buf[nh + 10] << 8 | buf[nh + 11]) & 0xFFFF) + td.ip_delta + 0xFFFF
                    v = (v & 0xFFFF) + (v >> 16)
                    c = ~((v & 0xFFFF) + (v >> 16)) & 0xFFFF
                    buf[nh + 10] = c >> 8
                    buf[nh + 11] = c & 0xFF
                    buf[nh + 12:nh + 20] = td.new_addrs
                    buf[l4:l4 + 4] = td.new_ports
            # ip_decrease_ttl (include/net/ip.h): ``check += htons(0x0100)`` on the
            # little-endian u16 with the carry folded back -- i.e. +1 on the low-address
            # byte, as checksum.ip_decrease_ttl_csum spells it out.
            buf[nh + 8] -= 1
            c = (buf[nh + 11] << 8 | buf[nh + 10]) + 1
            if c >= 0xFFFF:
                c = (c + 1) & 0xFFFF
            buf[nh + 10] = c & 0xFF
            buf[nh + 11] = c >> 8
            if counter and ct.acct is not None:
                a = ct.acct[d]
                a[0] += 1
                a[1] += end - nh
            ft.hits += 1
            if pkt.trace is not None:
                # a flowtable hit: which flowtable, flow direction, where it goes, the
                # NAT it applies (net/netfilter/nf_flow_table_ip.c)
                pkt.trace.event(pkt, "nf_flow_offload_ip_hook", verdict="STOLEN",
                                info=f"flowtable {ft.name} hit dir={d} out={td.out_dev.name}"
                                + (" nat" if td.new_addrs else ""),
                                attrs={"flowtable": ft.name, "dir": d,
                                       "out": td.out_dev.name, "nat": bool(td.new_addrs)})
            pkt.network_header = nh
            pkt.dst = None
        # queue the hit: per output device, per run of the same next hop
        if td is not last_td:
            last_td = td
            out = td.out_dev
            runs = txq.get(out)
            if runs is None:
                cur = []
                txq[out] = [(td.neigh_tbl, td.nexthop, cur)]
            else:
                tbl, nhop, cur = runs[-1]
                if tbl is not td.neigh_tbl or nhop != td.nexthop:
                    cur = []
                    runs.append((td.neigh_tbl, td.nexthop, cur))
        cur.append(pkt)
    for out, runs in txq.items():
        for tbl, nhop, lst in runs:
            neigh_output(tbl, out, nhop, lst)
    return accept


def _ipv6_hit(ft: Flowtable, pkt: "Packet", iif: int, now: int, refresh: int
              ) -> FlowTupleDir | None:
    """``nf_flow_offload_ipv6_hook`` up to the transmit: TCP/UDP directly after the IPv6
    header (any extension header takes the slow path), hop limit > 1, within the MTU;
    FIN/RST/SYN state check, refresh, NAT, hop limit decrement, accounting.  Returns the
    direction to transmit on, or None for NF_ACCEPT."""
    buf = pkt.buf
    nh = pkt.data
    end = pkt.tail
    if end - nh < 40:
        return None
    proto = buf[nh + 6]
    if proto not in (IPPROTO_TCP, IPPROTO_UDP):
        return None
    if buf[nh + 7] <= 1:
        _slow(ft, "ttl")
        return None
    l4 = nh + 40
    if end - l4 < (20 if proto == IPPROTO_TCP else 8):
        return None
    key = (bytes(buf[nh + 8:nh + 40]) + bytes(buf[l4:l4 + 4]), proto, iif)
    hit = ft.flows.get(key)
    if hit is None:
        return None
    flow, d = hit
    ct = flow.ct
    if flow.timeout <= now or ct.status & nfct.IPS_DYING:
        ft.teardown_flow(flow)
        return None
    td = flow.dirs[d]
    if 40 + (buf[nh + 4] << 8 | buf[nh + 5]) > td.mtu and not pkt.gso_size:
        _slow(ft, "mtu")
        return None
    if proto == IPPROTO_TCP:
        fl = buf[l4 + 13]
        if fl & 0x02 and flow.closing:
            ft.teardown_flow(flow)
            _slow(ft, "syn_closing")
            return None
        if fl & (tcpct.TH_FIN | tcpct.TH_RST):
            flow.closing = True
    if not td.out_dev.running():
        ft.teardown_flow(flow)
        _slow(ft, "dst")
        return None
    if refresh - flow.timeout > NSEC:
        flow.timeout = refresh
    if td.new_addrs:
        if pkt.ip_summed == CHECKSUM_PARTIAL:
            _nat_partial(buf, nh, end, ct, d)
        else:
            _nat6(buf, nh, l4, proto, td)
    buf[nh + 7] -= 1
    if ft.counter and ct.acct is not None:
        ct.acct[d][0] += 1
        ct.acct[d][1] += end - nh
    ft.hits += 1
    if pkt.trace is not None:
        pkt.trace.event(pkt, "nf_flow_offload_ipv6_hook", verdict="STOLEN",
                        info=f"flowtable {ft.name} hit out={td.out_dev.name}"
                        + (" nat" if td.new_addrs else ""),
                        attrs={"flowtable": ft.name, "out": td.out_dev.name,
                               "nat": bool(td.new_addrs)})
    pkt.network_header = nh
    pkt.dst = None
    return td


def flowtable_add(net: "Net", name: str, devices: list["NetDevice"],
                  priority: int = 0, counter: bool = False) -> Flowtable:
    """Create and hook a flowtable (what ``add flowtable`` commits); ``counter`` is the
    flowtable's ``counter`` keyword (conntrack accounting on the fast path)."""
    ft = Flowtable(net, name, priority, list(devices), counter=counter)
    ft.register()
    return ft
