"""Virtual Ethernet pairs (drivers/net/veth.c).

What a frame experiences crossing a veth, as ``veth_xmit`` → ``veth_forward_skb`` →
``__dev_forward_skb2`` do it: dropped if the peer is down or the frame is longer than
``peer.mtu + 14 + 4`` (``is_skb_forwardable``), scrubbed (``skb_scrub_packet``: pkt_type,
skb_iif, dst, conntrack; across namespaces also mark and timestamp), priority cleared,
classified by ``eth_type_trans`` on the peer, and queued with ``netif_rx``.  Carrier is on
only while both ends are up (``veth_open``/``veth_close``), which is what makes ``ip link``
show NO-CARRIER / LOWERLAYERDOWN.
"""
from __future__ import annotations

from netstack.core.dev import netif_rx, netif_rx_burst
from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.eth import ETH_HLEN, eth_type_trans
from netstack.core.netdevice import IFF_UP, NetDevice
from netstack.packet.skb import PACKET_HOST, Packet
from netstack.packet.skb_burst import SkbBurst

VLAN_HLEN = 4

#: ``ethtool -k`` of a veth on Linux 6.18 (features on by default; all of them toggleable).
VETH_FEATURES = frozenset({
    "rx-checksum", "tx-checksum-ip-generic", "tx-checksum-sctp", "tx-scatter-gather",
    "tx-scatter-gather-fraglist", "tx-tcp-segmentation", "tx-tcp-ecn-segmentation",
    "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation", "tx-tcp-accecn-segmentation",
    "tx-generic-segmentation", "rx-gro", "highdma", "tx-gre-segmentation",
    "tx-gre-csum-segmentation", "tx-ipxip4-segmentation", "tx-ipxip6-segmentation",
    "tx-udp_tnl-segmentation", "tx-udp_tnl-csum-segmentation", "tx-sctp-segmentation",
    "tx-udp-segmentation", "tx-gso-list", "tx-vlan-hw-insert", "rx-vlan-hw-parse",
    "tx-vlan-stag-hw-insert", "rx-vlan-stag-hw-parse",
})


class VethDevice(NetDevice):
    """One end of a veth pair; :func:`create_pair` makes both."""

    kind = "veth"
    #: GRO is off on a new veth (measured on 6.18: ``ethtool -k`` generic-receive-offload
    #: off; veth GRO needs its NAPI, enabled with ``ethtool -K DEV gro on``)
    default_features = VETH_FEATURES - {"rx-gro"}
    hw_features = VETH_FEATURES | {"rx-gro-list", "rx-udp-gro-forwarding", "tx-nocache-copy"}
    #: ``veth_setup``: dev->hw_enc_features = VETH_FEATURES (tunnel GSO stays offloaded)
    hw_enc_features = VETH_FEATURES
    #: veth receives through its NAPI when GRO is on (veth_set_features → veth_napi_enable)
    napi_gro = True

    def __init__(self, name: str, address: bytes) -> None:
        super().__init__(name, address)
        self.peer: VethDevice | None = None
        #: ``netif_carrier_ok``: switched by veth_open/veth_close, not derived from flags,
        #: so the peer sees carrier loss while the closing end is still marked up.
        self.carrier = False

    def carrier_ok(self) -> bool:
        return self.carrier

    def operstate(self) -> str:
        if not self.flags & IFF_UP:
            return "DOWN"
        if not self.carrier_ok():
            return "LOWERLAYERDOWN"
        return "UP"

    def open(self) -> None:
        """``veth_open``: carrier on for both ends once the peer is up too.  The peer hears
        of it through linkwatch, i.e. after this device's own NETDEV_UP."""
        peer = self.peer
        if peer is not None and peer.flags & IFF_UP:
            self.carrier = True
            peer.carrier = True
            self._linkwatch(peer)

    def stop(self) -> None:
        """``veth_close``: carrier off on both ends."""
        self.carrier = False
        peer = self.peer
        if peer is not None:
            peer.carrier = False
            self._linkwatch(peer)

    def _linkwatch(self, dev: "VethDevice") -> None:
        if dev.net is not None:
            dev.net.world.linkwatch_fire_event(dev)

    def peer_netns(self):  # type: ignore[no-untyped-def]
        return self.peer.net if self.peer is not None else None

    def link_index(self) -> int:
        return self.peer.ifindex if self.peer is not None else 0

    def dellink(self) -> None:
        """``veth_dellink``: deleting either end destroys the pair."""
        peer = self.peer
        if self.net is not None:
            self.net.unregister_netdevice(self)
        if peer is not None and peer.net is not None and peer.net.devices.get(peer.name) is peer:
            peer.net.unregister_netdevice(peer)
        self.peer = None
        if peer is not None:
            peer.peer = None

    def start_xmit(self, pkt: Packet, more: bool) -> None:
        rcv = self.peer
        n = len(pkt)
        if rcv is None or n < ETH_HLEN:
            self.stats.tx_dropped += 1
            kfree_skb_reason(pkt, "NOT_SPECIFIED", self.net)
        elif not rcv.flags & IFF_UP or (n > rcv.mtu + ETH_HLEN + VLAN_HLEN
                                         and not pkt.gso_size):
            # is_skb_forwardable failed (a GSO packet is forwardable whatever its
            # length): counted on the peer's rx_dropped.
            self.stats.tx_dropped += 1
            rcv.stats.rx_dropped += 1
            kfree_skb_reason(pkt, "NOT_SPECIFIED", self.net)
        else:
            self.stats.tx_packets += 1
            self.stats.tx_bytes += n
            rs = rcv.stats
            rs.rx_packets += 1
            rs.rx_bytes += n
            # skb_scrub_packet(skb, xnet)
            pkt.pkt_type = PACKET_HOST
            pkt.skb_iif = 0
            pkt.dst = None
            pkt.ct = None
            pkt.priority = 0
            if rcv.net is not self.net:
                pkt.mark = 0
                pkt.tstamp = 0
            pkt.protocol = eth_type_trans(pkt, rcv)
            if pkt.trace is not None:
                pkt.trace.event(pkt, "veth_xmit", info=f"from={self.name}")
            netif_rx(pkt)
        if not more:
            self.ring_doorbell()

    def start_xmit_list(self, pkts: list[Packet]) -> None:
        """``veth_xmit`` for a batch, as ``dev_hard_start_xmit`` would call it with
        ``netdev_xmit_more()`` true for all but the last packet: the same per-packet work
        as :meth:`start_xmit`, with the per-batch parts (peer state, the
        ``is_skb_forwardable`` limit, the namespace crossing, the backlog, the counters)
        done once, and one doorbell at the end.  A packet that would be dropped, or one
        being traced, takes :meth:`start_xmit` itself so drops and events stay identical."""
        rcv = self.peer
        if rcv is None or not rcv.flags & IFF_UP:
            for pkt in pkts:
                self.start_xmit(pkt, True)
            self.ring_doorbell()
            return
        limit = rcv.mtu + ETH_HLEN + VLAN_HLEN
        xnet = rcv.net is not self.net
        backlog_append = rcv.net.world.backlog.append  # type: ignore[union-attr]
        address = rcv.address
        npkts = nbytes = 0
        for pkt in pkts:
            n = pkt.tail - pkt.data
            if n < ETH_HLEN or (n > limit and not pkt.gso_size) or pkt.trace is not None:
                self.start_xmit(pkt, True)
                continue
            npkts += 1
            nbytes += n
            # skb_scrub_packet(skb, xnet)
            pkt.skb_iif = 0
            pkt.dst = None
            pkt.ct = None
            pkt.priority = 0
            if xnet:
                pkt.mark = 0
                pkt.tstamp = 0
            # eth_type_trans (net/ethernet/eth.c), the unicast-to-us case inline; anything
            # else (group address, other host, 802.3 length field) takes the function.
            buf = pkt.buf
            off = pkt.data
            if buf[off] & 1 or buf[off + 12] < 0x06 or not buf.startswith(address, off):
                pkt.pkt_type = PACKET_HOST
                pkt.protocol = eth_type_trans(pkt, rcv)
            else:
                pkt.dev = rcv
                pkt.mac_header = off
                pkt.data = off + ETH_HLEN
                pkt.pkt_type = PACKET_HOST
                pkt.protocol = (buf[off + 12] << 8) | buf[off + 13]
            backlog_append(pkt)  # netif_rx
        if npkts:
            st = self.stats
            st.tx_packets += npkts
            st.tx_bytes += nbytes
            rs = rcv.stats
            rs.rx_packets += npkts
            rs.rx_bytes += nbytes
        self.ring_doorbell()

    def start_xmit_burst(self, b: SkbBurst) -> None:
        """:meth:`start_xmit_list` for the rows of a burst (netstack/packet/skb_burst.py:
        software GSO's segments in one buffer).  The per-packet work of a veth crossing
        reads only the skb fields and the Ethernet header, which the rows share, so it
        is done once on the burst's fields: the ``is_skb_forwardable`` length check (the
        longest row), ``skb_scrub_packet``, ``eth_type_trans`` for a unicast frame to the
        peer, the counters (every row), then one ``netif_rx`` for the whole burst and
        one doorbell.  Anything else — a peer down or missing, a row too short or too
        long, a traced burst, a frame not unicast to the peer — takes
        :meth:`start_xmit_list` on the rows as skbs, so drops and events stay its own."""
        rcv = self.peer
        t = b.tmpl
        off = t.data
        buf = t.buf
        if (rcv is None or not rcv.flags & IFF_UP or t.trace is not None or t.gso_size
                or min(b.tails) - off < ETH_HLEN
                or b.max_len() > rcv.mtu + ETH_HLEN + VLAN_HLEN
                or buf[off] & 1 or buf[off + 12] < 0x06 or not buf.startswith(rcv.address, off)):
            self.start_xmit_list(b.packets())
            return
        npkts = len(b)
        nbytes = b.nbytes()
        # skb_scrub_packet(skb, xnet)
        t.skb_iif = 0
        t.dst = None
        t.ct = None
        t.priority = 0
        if rcv.net is not self.net:
            t.mark = 0
            t.tstamp = 0
        # eth_type_trans, the unicast-to-us case (as start_xmit_list inlines it)
        t.dev = rcv
        t.mac_header = off
        t.data = off + ETH_HLEN
        t.pkt_type = PACKET_HOST
        t.protocol = (buf[off + 12] << 8) | buf[off + 13]
        netif_rx_burst(b)
        st = self.stats
        st.tx_packets += npkts
        st.tx_bytes += nbytes
        rs = rcv.stats
        rs.rx_packets += npkts
        rs.rx_bytes += nbytes
        self.ring_doorbell()


def create_pair(net_a, name_a: str, mac_a: bytes, net_b, name_b: str, mac_b: bytes,  # type: ignore[no-untyped-def]
                index_a: int = 0, index_b: int = 0):
    """``veth_newlink``: the peer is registered first (it gets the lower ifindex when both
    ends share a namespace, as on a real kernel), then the device itself.  ``index_*``
    request ifindexes (``ip link add … index N``); a taken one fails with EBUSY."""
    a = VethDevice(name_a, mac_a)
    b = VethDevice(name_b, mac_b)
    a.peer, b.peer = b, a
    net_b.register_netdevice(b, ifindex=index_b)
    try:
        net_a.register_netdevice(a, ifindex=index_a)
    except Exception:
        net_b.unregister_netdevice(b)
        raise
    return a, b
