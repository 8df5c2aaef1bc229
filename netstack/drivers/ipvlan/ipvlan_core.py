"""IPVLAN datapath (drivers/net/ipvlan/ipvlan_core.c).

All slaves of a port share the master's MAC; what tells them apart is their L3 addresses,
so both directions demultiplex on the L3 header (``ipvlan_get_L3_hdr`` +
``ipvlan_addr_lookup``): the IPv4 source/destination, the IPv6 one, the ARP sender/target
protocol address, and for an IPv6 packet from ``::`` (DAD) the target of a Neighbour
Solicitation.

Receive (the master's ``rx_handler``, :func:`ipvlan_handle_frame`):

* **l3**: a frame whose destination address belongs to a slave is handed to that slave
  (``RX_HANDLER_ANOTHER``); everything else stays with the master.  No multicast or
  broadcast ever reaches a slave.
* **l2**: unicast as l3; a multicast/broadcast frame that did not come from one of our
  own slaves (``ipvlan_external_frame``) is queued for deferred delivery to every slave
  (``ipvlan_multicast_enqueue`` → the port work item :meth:`IpvlanPort.process_multicast`),
  while the master gets the original at once.
* **l3s**: the handler passes everything; the demux happens in the master namespace's
  IPv4/IPv6 input through the l3mdev hook (route lookup in the slave's namespace) and a
  netfilter ``LOCAL_IN`` hook (:mod:`.ipvlan_l3s`).

Transmit (``ipvlan_queue_xmit``):

* **l2**: a frame to our own MAC is local: to a slave owning the destination address
  (unless *private*), else to the master's stack (``dev_forward_skb``); a group frame is
  queued (the work item gives it to the other slaves, then sends it out of the master);
  anything else leaves through the master.  *vepa* skips the local check, so even
  slave-to-slave traffic goes out and relies on the switch's hairpin.
* **l3/l3s**: a packet to a sibling's address is handed to it (unless *private*; never in
  *vepa*); otherwise the L2 header is dropped and the IP packet is routed and sent in the
  master's namespace (``ipvlan_process_outbound``: ``ip_route_output`` with
  ``FLOWI_FLAG_ANYSRC`` and the master as output device, then ``ip_local_out``); group
  frames are dropped.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.core.dev import dev_queue_xmit, netif_rx
from netstack.core.drop_reason import consume_skb, kfree_skb_reason
from netstack.core.eth import ETH_HLEN
from netstack.core.netdevice import IFF_UP, RxHandlerResult
from netstack.drivers.macvlan import dev_forward_skb
from netstack.packet.skb import PACKET_BROADCAST, PACKET_MULTICAST, Packet

if TYPE_CHECKING:  # pragma: no cover
    from netstack.drivers.ipvlan.ipvlan_main import IpvlanDevice, IpvlanPort

# include/uapi/linux/if_link.h
IPVLAN_MODE_L2 = 0
IPVLAN_MODE_L3 = 1
IPVLAN_MODE_L3S = 2
IPVLAN_MODE_MAX = 3
IPVLAN_F_PRIVATE = 0x01
IPVLAN_F_VEPA = 0x02

# ipvlan.h: enum ipvl_addr_type
IPVL_IPV6 = 0
IPVL_ICMPV6 = 1
IPVL_IPV4 = 2
IPVL_ARP = 3

IPVLAN_QBACKLOG_LIMIT = 1000
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETH_P_PAUSE = 0x8808
NEXTHDR_ICMP = 58
NDISC_NEIGHBOUR_SOLICITATION = 135

#: An L3 header found by :func:`ipvlan_get_l3_hdr`: (type, offset of the header).
L3Hdr = tuple[int, int]


def ipvlan_get_l3_hdr(pkt: Packet, proto: int, off: int) -> L3Hdr | None:
    """``ipvlan_get_L3_hdr``: the header at ``off`` (the network header) if it is long
    and sane enough to look an address up in; None otherwise (the frame is then not an
    ipvlan frame — never an exception).  ``proto`` is the EtherType."""
    buf = pkt.buf
    avail = pkt.tail - off
    if proto == ETH_P_ARP:
        # arp_hdr_len(dev) for Ethernet: 8 + 2 * (6 + 4)
        if avail < 28:
            return None
        return IPVL_ARP, off
    if proto == ETH_P_IP:
        if avail < 20:
            return None
        ihl = buf[off] & 0x0F
        if ihl < 5 or buf[off] >> 4 != 4:
            return None
        pktlen = (buf[off + 2] << 8) | buf[off + 3]
        if avail < pktlen or pktlen < ihl * 4:
            return None
        return IPVL_IPV4, off
    if proto == ETH_P_IPV6:
        if avail < 40 or buf[off] >> 4 != 6:
            return None
        if buf[off + 6] == NEXTHDR_ICMP and not any(buf[off + 8:off + 24]):
            if avail < 40 + 4:
                return None
            if buf[off + 40] == NDISC_NEIGHBOUR_SOLICITATION and avail < 40 + 8 + 16:
                return None
            return IPVL_ICMPV6, off + 40
        return IPVL_IPV6, off
    return None


def l3_key(pkt: Packet, hdr: L3Hdr, use_dest: bool) -> tuple[bool, bytes] | None:
    """The (is_v6, address) ``ipvlan_addr_lookup`` would hash, or None (an ICMPv6 packet
    from ``::`` that is not a Neighbour Solicitation has no address to look up)."""
    t, o = hdr
    buf = pkt.buf
    if t == IPVL_IPV6:
        return True, bytes(buf[o + 24:o + 40] if use_dest else buf[o + 8:o + 24])
    if t == IPVL_ICMPV6:
        if buf[o] == NDISC_NEIGHBOUR_SOLICITATION:
            return True, bytes(buf[o + 8:o + 24])
        return None
    if t == IPVL_IPV4:
        return False, bytes(buf[o + 16:o + 20] if use_dest else buf[o + 12:o + 16])
    # ARP: sender protocol address after sha (6), target after sha+spa+tha (6+4+6)
    p = o + 8 + (16 if use_dest else 6)
    return False, bytes(buf[p:p + 4])


def ipvlan_addr_lookup(port: "IpvlanPort", pkt: Packet, hdr: L3Hdr,
                       use_dest: bool) -> "IpvlanDevice | None":
    """``ipvlan_addr_lookup``: the slave whose (hashed, i.e. up) address it is."""
    key = l3_key(pkt, hdr, use_dest)
    if key is None:
        return None
    return port.ht.get(key)


def ipvlan_count_rx(ipvlan: "IpvlanDevice", n: int, success: bool, mcast: bool) -> None:
    """``ipvlan_count_rx``: counted as macvlan counts (see
    :meth:`netstack.drivers.macvlan.LowerStackedDevice.count_rx`)."""
    ipvlan.count_rx(n, success, mcast)


def ipvlan_rcv_frame(slave: "IpvlanDevice", pkt: Packet,
                     local: bool) -> tuple[RxHandlerResult, Packet]:
    """``ipvlan_rcv_frame``: from a sibling (``local``), received on the slave as from a
    wire (``dev_forward_skb``, the slave must be up); from the master's rx_handler,
    re-targeted to the slave for another round."""
    if local:
        n = pkt.tail - pkt.data  # the frame still has its MAC header
        if not slave.flags & IFF_UP:
            kfree_skb_reason(pkt, "NOT_SPECIFIED", slave.net)
            ipvlan_count_rx(slave, n, False, False)
            return RxHandlerResult.CONSUMED, pkt
        ok = dev_forward_skb(slave, pkt)
        ipvlan_count_rx(slave, n, ok, False)
        return RxHandlerResult.CONSUMED, pkt
    ipvlan_count_rx(slave, pkt.tail - pkt.data + ETH_HLEN, True, False)
    pkt.dev = slave
    return RxHandlerResult.ANOTHER, pkt


def _skb_crossing_ns(pkt: Packet, dev: object | None) -> None:
    """``ipvlan_skb_crossing_ns`` → ``skb_scrub_packet``."""
    xnet = True
    if dev is not None:
        xnet = pkt.dev is None or pkt.dev.net is not dev.net  # type: ignore[attr-defined]
    pkt.skb_iif = 0
    pkt.dst = None
    pkt.ct = None
    if xnet:
        pkt.mark = 0
        pkt.tstamp = 0
    if dev is not None:
        pkt.dev = dev  # type: ignore[assignment]


# ------------------------------------------------------------------- receive
def ipvlan_handle_frame(pkt: Packet) -> tuple[RxHandlerResult, Packet]:
    """``ipvlan_handle_frame``: the master's rx_handler."""
    port: IpvlanPort | None = pkt.dev.rx_handler_data  # type: ignore[union-attr]
    if port is None:
        return RxHandlerResult.PASS, pkt
    if port.mode == IPVLAN_MODE_L2:
        return _handle_mode_l2(pkt, port)
    if port.mode == IPVLAN_MODE_L3:
        return _handle_mode_l3(pkt, port)
    return RxHandlerResult.PASS, pkt  # l3s: the l3mdev and LOCAL_IN hooks demux


def _handle_mode_l3(pkt: Packet, port: "IpvlanPort") -> tuple[RxHandlerResult, Packet]:
    """``ipvlan_handle_mode_l3``."""
    hdr = ipvlan_get_l3_hdr(pkt, pkt.protocol, pkt.data)
    if hdr is None:
        return RxHandlerResult.PASS, pkt
    slave = ipvlan_addr_lookup(port, pkt, hdr, True)
    if slave is None:
        return RxHandlerResult.PASS, pkt
    return ipvlan_rcv_frame(slave, pkt, False)


def _external_frame(pkt: Packet, port: "IpvlanPort") -> bool:
    """``ipvlan_external_frame``: not ours unless it has the master's source MAC *and* a
    slave's source address."""
    mh = pkt.mac_header
    if pkt.buf[mh + 6:mh + 12] == pkt.dev.address:  # type: ignore[union-attr]
        hdr = ipvlan_get_l3_hdr(pkt, pkt.protocol, pkt.data)
        if hdr is None:
            return True
        if ipvlan_addr_lookup(port, pkt, hdr, False) is not None:
            return False
    return True


def _handle_mode_l2(pkt: Packet, port: "IpvlanPort") -> tuple[RxHandlerResult, Packet]:
    """``ipvlan_handle_mode_l2``: group frames from outside are queued for the slaves
    (a copy; the master keeps the original), unicast as in l3."""
    mh = pkt.mac_header
    if pkt.buf[mh] & 1:
        if _external_frame(pkt, port):
            nskb = pkt.clone()
            _skb_crossing_ns(nskb, None)
            port.multicast_enqueue(nskb, False)
        return RxHandlerResult.PASS, pkt
    return _handle_mode_l3(pkt, port)


# ------------------------------------------------------------------ transmit
def ipvlan_queue_xmit(pkt: Packet, dev: "IpvlanDevice") -> bool:
    """``ipvlan_queue_xmit``: True when the packet was taken (NET_XMIT_SUCCESS)."""
    port = dev.port
    if pkt.tail - pkt.data < ETH_HLEN:
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", dev.net)
        return False
    if port.mode == IPVLAN_MODE_L2:
        return _xmit_mode_l2(pkt, dev)
    return _xmit_mode_l3(pkt, dev)


def _frame_proto(pkt: Packet) -> int:
    d = pkt.data
    return (pkt.buf[d + 12] << 8) | pkt.buf[d + 13]


def _xmit_mode_l2(pkt: Packet, dev: "IpvlanDevice") -> bool:
    """``ipvlan_xmit_mode_l2``."""
    port = dev.port
    d = pkt.data
    buf = pkt.buf
    phy = dev.phy_dev
    if not port.vepa and buf[d:d + 6] == buf[d + 6:d + 12]:
        hdr = ipvlan_get_l3_hdr(pkt, _frame_proto(pkt), d + ETH_HLEN)
        if hdr is not None:
            done = _xmit_to_slave(pkt, port, hdr, d, "ipvlan_xmit_mode_l2")
            if done is not None:
                return done
        # the destination is local but no slave's: the master's stack gets it
        pkt.mac_header = d
        return dev_forward_skb(phy, pkt)
    if buf[d] & 1:
        pkt.mac_header = d
        pkt.protocol = _frame_proto(pkt)
        _skb_crossing_ns(pkt, None)
        port.multicast_enqueue(pkt, True)
        return True
    pkt.dev = phy
    dev_queue_xmit(pkt, phy)
    return bool(phy.flags & IFF_UP)


def _xmit_to_slave(pkt: Packet, port: "IpvlanPort", hdr: L3Hdr, d: int, where: str) -> bool | None:
    """The step ``ipvlan_xmit_mode_l2`` and ``ipvlan_xmit_mode_l3`` share
    (drivers/net/ipvlan/ipvlan_core.c): a destination address owned by a slave of the same
    port is delivered to it directly (``ipvlan_rcv_frame(addr, skb, true)``), or consumed
    in private mode; None when no slave owns it, so the caller goes on."""
    slave = ipvlan_addr_lookup(port, pkt, hdr, True)
    if slave is None:
        return None
    if port.private:
        consume_skb(pkt, where)
        return False
    pkt.mac_header = d
    ipvlan_rcv_frame(slave, pkt, True)
    return True


def _xmit_mode_l3(pkt: Packet, dev: "IpvlanDevice") -> bool:
    """``ipvlan_xmit_mode_l3``."""
    port = dev.port
    d = pkt.data
    hdr = ipvlan_get_l3_hdr(pkt, _frame_proto(pkt), d + ETH_HLEN)
    if hdr is not None and not port.vepa:
        done = _xmit_to_slave(pkt, port, hdr, d, "ipvlan_xmit_mode_l3")
        if done is not None:
            return done
    _skb_crossing_ns(pkt, dev.phy_dev)
    return _process_outbound(pkt, dev)


def _process_outbound(pkt: Packet, dev: "IpvlanDevice") -> bool:
    """``ipvlan_process_outbound``: drop the L2 header (group frames are dropped), then
    route the IP packet in the master's namespace."""
    buf = pkt.buf
    d = pkt.data
    net = dev.phy_dev.net
    if buf[d] & 1:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return False
    proto = _frame_proto(pkt)
    pkt.data = d + ETH_HLEN
    pkt.mac_header = -1
    pkt.network_header = pkt.data
    pkt.protocol = proto
    if proto == ETH_P_IPV6:
        return _process_v6_outbound(pkt, dev)
    if proto == ETH_P_IP:
        return _process_v4_outbound(pkt, dev)
    kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
    return False


def _tx_error(pkt: Packet, dev: "IpvlanDevice", reason: str, net: Any) -> bool:
    """The ``err:`` label of ``ipvlan_process_v4_outbound``/``_v6_outbound``
    (drivers/net/ipvlan/ipvlan_core.c): ``DEV_STATS_INC(dev, tx_errors)`` and the packet
    freed with ``reason``; False (not transmitted)."""
    dev.stats.tx_errors += 1
    kfree_skb_reason(pkt, reason, net)
    return False


def _process_v4_outbound(pkt: Packet, dev: "IpvlanDevice") -> bool:
    """``ipvlan_process_v4_outbound``: only unicast and local routes; errors count
    ``tx_errors`` on the slave."""
    from netstack.errors import KernelError
    from netstack.ipv4.fib import FLOWI_FLAG_ANYSRC, Flowi4
    from netstack.ipv4.fib_semantics import RTN_LOCAL, RTN_UNICAST
    from netstack.ipv4.ip_output import ip_local_out
    from netstack.ipv4.route import ip_route_output
    phy = dev.phy_dev
    net = phy.net
    buf = pkt.buf
    nh = pkt.network_header
    if pkt.tail - nh < 20 or buf[nh] >> 4 != 4:
        return _tx_error(pkt, dev, "NOT_SPECIFIED", net)
    fl4 = Flowi4(daddr=bytes(buf[nh + 16:nh + 20]), saddr=bytes(buf[nh + 12:nh + 16]),
                 tos=buf[nh + 1] & 0x1C, oif=phy.ifindex, mark=pkt.mark,
                 flags=FLOWI_FLAG_ANYSRC)
    try:
        rt = ip_route_output(net, fl4)  # type: ignore[arg-type]
    except KernelError:
        return _tx_error(pkt, dev, "IP_OUTNOROUTES", net)
    if rt.type not in (RTN_UNICAST, RTN_LOCAL):
        return _tx_error(pkt, dev, "IP_OUTNOROUTES", net)
    pkt.dst = rt
    ip_local_out(net, pkt)  # type: ignore[arg-type]
    return True


def _process_v6_outbound(pkt: Packet, dev: "IpvlanDevice") -> bool:
    """``ipvlan_process_v6_outbound``."""
    from netstack.errors import KernelError
    from netstack.ipv6.ip6_output import ip6_local_out
    from netstack.ipv6.route import Flowi6, ip6_route_output
    phy = dev.phy_dev
    net = phy.net
    buf = pkt.buf
    nh = pkt.network_header
    if pkt.tail - nh < 40 or buf[nh] >> 4 != 6:
        return _tx_error(pkt, dev, "NOT_SPECIFIED", net)
    fl6 = Flowi6(bytes(buf[nh + 24:nh + 40]), bytes(buf[nh + 8:nh + 24]), phy.ifindex, 0,
                 pkt.mark, buf[nh + 6],
                 flowlabel=((buf[nh + 1] & 0x0F) << 16) | (buf[nh + 2] << 8) | buf[nh + 3])
    try:
        dst = ip6_route_output(net, fl6)  # type: ignore[arg-type]
    except KernelError:
        return _tx_error(pkt, dev, "IP_OUTNOROUTES", net)
    pkt.dst = dst
    ip6_local_out(net, pkt)  # type: ignore[arg-type]
    return True


# ---------------------------------------------------- deferred group delivery
def process_multicast(port: "IpvlanPort") -> None:
    """``ipvlan_process_multicast``: each queued group frame to every up slave whose
    filter has the destination (not the sender of a transmitted one); a transmitted
    frame then leaves through the master."""
    queue, port.backlog = port.backlog, []
    phy = port.dev
    for pkt, tx_pkt in queue:
        mh = pkt.mac_header
        dest = bytes(pkt.buf[mh:mh + 6])
        pkt_type = PACKET_BROADCAST if dest == phy.broadcast else PACKET_MULTICAST
        sender = pkt.dev
        consumed = False
        n = pkt.tail - pkt.data + ETH_HLEN  # skb->len + ETH_HLEN, as the kernel counts
        for slave in list(port.ipvlans):
            if tx_pkt and slave is sender:
                continue
            if not slave.mc_filter_hit(dest):
                continue
            if not slave.flags & IFF_UP:
                continue
            nskb = pkt.clone()
            consumed = True
            nskb.pkt_type = pkt_type
            if tx_pkt:
                ok = dev_forward_skb(slave, nskb)
            else:
                nskb.dev = slave
                netif_rx(nskb)
                ok = True
            ipvlan_count_rx(slave, n, ok, True)
        if tx_pkt:
            pkt.dev = phy
            pkt.pkt_type = pkt_type
            dev_queue_xmit(pkt, phy)
        elif consumed:
            consume_skb(pkt, "ipvlan_process_multicast")
        else:
            kfree_skb_reason(pkt, "NOT_SPECIFIED", phy.net)
