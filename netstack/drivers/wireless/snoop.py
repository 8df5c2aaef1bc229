"""hostapd's Proxy ARP snooping (src/ap/x_snoop.c, dhcp_snoop.c, ndisc_snoop.c).

Why: an 802.11 AP offering the Proxy ARP service (IEEE 802.11-2016 §11.22.14, Hotspot
2.0) answers ARP and NS for its stations itself, so stations in power save are not woken
by broadcast resolution and a forged GTK frame cannot poison them.  hostapd builds the
table the bridge answers from:

* ``x_snoop_init``: refused unless ``ap_isolate`` is on; turns on hairpin and
  ``proxyarp_wifi`` on the AP's bridge port (and, with ``per_sta_vif``, on every
  station's AP_VLAN port as it appears), ``arp_accept`` (GARP accept) on the bridge
  and multicast snooping.
* DHCP (``handle_dhcp``): a DHCPACK (option 53 = 5) with a non-zero ``yiaddr`` for an
  associated station (``chaddr``) replaces that station's IPv4 binding: the old neighbour
  entry is deleted and ``yiaddr → chaddr`` is added as a permanent entry on the bridge.
* ND (``handle_ndisc``): a NS whose first option is a source link-layer address of an
  associated station binds the NS source address (not ``::``) to the station (delete,
  then add; a station keeps a list of IPv6 addresses).
* Disassociation (``ap_free_sta``): the station's IPv4 and IPv6 entries are deleted.
* ``disable_dgaf`` (Hotspot 2.0 "downstream group-addressed forwarding" off): broadcast
  DHCP from the server side and RAs are re-sent on the bridge as one unicast copy per
  authorized station (``x_snoop_mcast_to_ucast_convert_send``); ``na_mcast_to_ucast``
  does the same for multicast NAs.

Beyond hostapd, as issue #5 asks, ARP requests/replies and NAs sent by an associated
station are also learned (sender IP / NA target bound to the station's address) — this
is a documented extension, switched off with ``learn_arp_na=False``.

The snooper listens like hostapd's ``l2_packet`` sockets: an AF_PACKET tap on the bridge
device (frames the bridge passes up or transmits).  Malformed DHCP, IPv4/IPv6 or ND
options are counted drops of the socket's copy (``kfree_skb_reason`` in the bridge's
namespace with the codec's reason) and in ``errors``; nothing is learned from them.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Iterable

from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.neighbour import NUD_PERMANENT, neigh_add, neigh_delete
from netstack.drivers.bridge.br_private import BR_HAIRPIN_MODE, BR_PROXYARP_WIFI, br_port_get
from netstack.errors import KernelError
from netstack.packet.constants import (
    ARPOP_REPLY,
    ARPOP_REQUEST,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    IPPROTO_ICMPV6,
    IPPROTO_UDP,
    ND_OPT_SOURCE_LL_ADDR,
    ND_OPT_TARGET_LL_ADDR,
    NDISC_NEIGHBOUR_ADVERTISEMENT,
    NDISC_NEIGHBOUR_SOLICITATION,
    NDISC_ROUTER_ADVERTISEMENT,
)
from netstack.packet.dhcp import DHCPACK, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, parse_dhcp
from netstack.packet.errors import ParseError
from netstack.packet.icmpv6 import parse_nd_options
from netstack.packet.skb import UNSET, Packet

from .ap import ApDevice, Station

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice

__all__ = ["ProxyArpSnooper", "x_snoop_init"]

ZERO4 = bytes(4)
ZERO6 = bytes(16)


class ProxyArpSnooper:
    """The binding table and its upkeep for one AP on one bridge."""

    def __init__(self, ap: ApDevice, bridge: "NetDevice", *, learn_arp_na: bool = True) -> None:
        self.ap = ap
        self.bridge = bridge
        self.learn_arp_na = learn_arp_na
        #: malformed frames seen, by drop reason
        self.errors: dict[str, int] = {}
        net = bridge.net
        assert net is not None
        net.add_rx_tap(bridge, self._tap)
        net.add_tx_tap(bridge, self._tap)
        ap.station_hooks.append(self._station_event)

    # ---------------------------------------------------------------- table
    def bindings(self) -> dict[bytes, tuple[bytes, tuple[bytes, ...]]]:
        """Station address → (IPv4 address or 0.0.0.0, IPv6 addresses)."""
        return {a: (s.ipaddr, tuple(s.ip6addrs)) for a, s in self.ap.stations.items()}

    def _tbl(self, family: int):  # type: ignore[no-untyped-def]
        net = self.bridge.net
        return net.ipv4.arp_tbl if family == 4 else net.ipv6.nd_tbl  # type: ignore[union-attr]

    def _add_neigh(self, family: int, ip: bytes, mac: bytes) -> bool:
        """``hostapd_drv_br_add_ip_neigh``: RTM_NEWNEIGH (NLM_F_CREATE) on the bridge,
        NUD_PERMANENT."""
        try:
            neigh_add(self._tbl(family), self.bridge, ip, mac, NUD_PERMANENT, create=True,
                      replace=True, excl=False)
        except KernelError:
            return False
        return True

    def _del_neigh(self, family: int, ip: bytes) -> None:
        """``hostapd_drv_br_delete_ip_neigh``: a missing entry is fine (ENOENT ignored)."""
        try:
            neigh_delete(self._tbl(family), self.bridge, ip)
        except KernelError as e:
            if e.errno != errno.ENOENT:
                raise

    def _ucast_to_stas(self, frame: bytes) -> None:
        """``x_snoop_mcast_to_ucast_convert_send`` for every authorized station: a group
        frame is sent again on the bridge with the station's address as destination (the
        original source kept), so it reaches each station as unicast."""
        if not frame[0] & 1:
            return
        from netstack.core.dev import dev_queue_xmit
        br = self.bridge
        for sta in list(self.ap.stations.values()):
            if not sta.authorized or br.net is None:
                continue
            pkt = br.net.world.new_packet(sta.addr + frame[6:])
            pkt.protocol = (frame[12] << 8) | frame[13]
            dev_queue_xmit(pkt, br)

    def _station_event(self, event: str, sta: Station) -> None:
        if event == "assoc":
            _port_flags(sta.vif)
            return
        if event != "disassoc":
            return
        if sta.ipaddr != ZERO4:
            self._del_neigh(4, sta.ipaddr)
            sta.ipaddr = ZERO4
        for a in sta.ip6addrs:
            self._del_neigh(6, a)
        sta.ip6addrs.clear()

    def _bind4(self, sta: Station, ip: bytes) -> None:
        """dhcp_snoop: one IPv4 address per station; a new one replaces the old."""
        if sta.ipaddr == ip:
            return
        if sta.ipaddr != ZERO4:
            self._del_neigh(4, sta.ipaddr)
        if self._add_neigh(4, ip, sta.addr):
            sta.ipaddr = ip

    def _bind6(self, sta: Station, ip: bytes) -> None:
        """ndisc_snoop: a station may hold several IPv6 addresses."""
        if ip in sta.ip6addrs:
            return
        self._del_neigh(6, ip)
        if self._add_neigh(6, ip, sta.addr):
            sta.ip6addrs.append(ip)

    # ---------------------------------------------------------------- input
    def _tap(self, pkt: Packet) -> None:
        start = pkt.mac_header if pkt.mac_header != UNSET and pkt.mac_header <= pkt.data else pkt.data
        frame = bytes(pkt.buf[start:pkt.tail])
        reason = self.handle_frame(frame)
        if reason is not None:
            copy = pkt.clone()
            kfree_skb_reason(copy, reason, self.bridge.net)

    def feed(self, frames: Iterable[bytes]) -> None:
        """Process captured frames (a pcap's, say) as if seen on the bridge; malformed ones
        are counted in ``errors`` and in the bridge namespace's drop counters."""
        net = self.bridge.net
        for f in frames:
            reason = self.handle_frame(bytes(f))
            if reason is not None and net is not None:
                net.drops.add(reason)

    def handle_frame(self, frame: bytes) -> str | None:
        """Snoop one Ethernet frame; returns a drop reason when it is malformed."""
        try:
            self._handle(frame)
        except ParseError as e:
            self.errors[e.reason] = self.errors.get(e.reason, 0) + 1
            return e.reason
        return None

    def _handle(self, frame: bytes) -> None:
        if len(frame) < 14:
            return
        off = 14
        proto = (frame[12] << 8) | frame[13]
        while proto in (0x8100, 0x88A8) and len(frame) >= off + 4:
            proto = (frame[off + 2] << 8) | frame[off + 3]
            off += 4
        if proto == ETH_P_IP:
            self._ipv4(frame, off)
        elif proto == ETH_P_IPV6:
            self._ipv6(frame, off)
        elif proto == ETH_P_ARP and self.learn_arp_na:
            self._arp(frame, off)

    def _ipv4(self, frame: bytes, off: int) -> None:
        if len(frame) - off < 20:
            raise ParseError("PKT_TOO_SMALL", "ipv4 header")
        ihl = (frame[off] & 0x0F) * 4
        tot = (frame[off + 2] << 8) | frame[off + 3]
        if frame[off] >> 4 != 4 or ihl < 20 or tot < ihl:
            raise ParseError("IP_INHDR", "ipv4 header")
        if tot > len(frame) - off:
            raise ParseError("PKT_TOO_SMALL", "ipv4 total length")
        if frame[off + 9] != IPPROTO_UDP or (frame[off + 6] & 0x3F) or frame[off + 7]:
            return  # not UDP, or a fragment: hostapd's filter does not match
        u = off + ihl
        if tot - ihl < 8:
            raise ParseError("PKT_TOO_SMALL", "udp header")
        sport = (frame[u] << 8) | frame[u + 1]
        dport = (frame[u + 2] << 8) | frame[u + 3]
        if sport != DHCP_SERVER_PORT or dport != DHCP_CLIENT_PORT:
            return
        ulen = (frame[u + 4] << 8) | frame[u + 5]
        if ulen < 8 or ulen > tot - ihl:
            raise ParseError("PKT_TOO_SMALL", "udp length")
        m = parse_dhcp(frame[u + 8:u + ulen])
        if self.ap.disable_dgaf and frame[:6] == b"\xff" * 6:
            self._ucast_to_stas(frame)
        if m.msg_type != DHCPACK or m.yiaddr == ZERO4:
            return
        sta = self.ap.stations.get(m.chaddr[:6])
        if sta is None:
            return
        self._bind4(sta, m.yiaddr)

    def _ipv6(self, frame: bytes, off: int) -> None:
        if len(frame) - off < 40:
            raise ParseError("PKT_TOO_SMALL", "ipv6 header")
        if frame[off + 6] != IPPROTO_ICMPV6:
            return
        plen = (frame[off + 4] << 8) | frame[off + 5]
        if plen > len(frame) - off - 40:
            raise ParseError("PKT_TOO_SMALL", "ipv6 payload length")
        msg = frame[off + 40:off + 40 + plen]
        if len(msg) >= 1 and msg[0] == NDISC_ROUTER_ADVERTISEMENT and self.ap.disable_dgaf:
            self._ucast_to_stas(frame)
        if len(msg) >= 1 and msg[0] == NDISC_NEIGHBOUR_ADVERTISEMENT and self.ap.na_mcast_to_ucast:
            self._ucast_to_stas(frame)
        if len(msg) < 1 or msg[0] not in (NDISC_NEIGHBOUR_SOLICITATION, NDISC_NEIGHBOUR_ADVERTISEMENT):
            return
        if len(msg) < 24:
            raise ParseError("PKT_TOO_SMALL", "nd message")
        if msg[0] == NDISC_NEIGHBOUR_ADVERTISEMENT and not self.learn_arp_na:
            return
        opts = parse_nd_options(msg[24:])
        saddr = frame[off + 8:off + 24]
        if msg[0] == NDISC_NEIGHBOUR_SOLICITATION:
            # hostapd looks at the first option only and needs it to be the SLLA
            if not opts or opts[0].type != ND_OPT_SOURCE_LL_ADDR or saddr == ZERO6:
                return
            ll = bytes(opts[0].value)[:6]
            sta = self.ap.stations.get(ll)
            if sta is not None:
                self._bind6(sta, saddr)
            return
        tlla = next((bytes(o.value)[:6] for o in opts if o.type == ND_OPT_TARGET_LL_ADDR), None)
        src = frame[6:12]
        sta = self.ap.stations.get(tlla if tlla is not None else src)
        if sta is not None and sta.addr == src:
            self._bind6(sta, msg[8:24])

    def _arp(self, frame: bytes, off: int) -> None:
        if len(frame) - off < 28:
            raise ParseError("PKT_TOO_SMALL", "arp")
        if frame[off + 2:off + 4] != b"\x08\x00" or frame[off + 4] != 6 or frame[off + 5] != 4:
            return
        op = (frame[off + 6] << 8) | frame[off + 7]
        if op not in (ARPOP_REQUEST, ARPOP_REPLY):
            return
        sha, sip = frame[off + 8:off + 14], frame[off + 14:off + 18]
        sta = self.ap.stations.get(sha)
        if sta is None or sha != frame[6:12] or sip == ZERO4:
            return
        self._bind4(sta, sip)


def _port_flags(dev: "NetDevice | None") -> None:
    """hairpin + proxyarp_wifi on the bridge port of ``dev`` (x_snoop_init's port attrs)."""
    port = br_port_get(dev) if dev is not None else None
    if port is not None:
        port.flags |= BR_HAIRPIN_MODE | BR_PROXYARP_WIFI


def x_snoop_init(ap: ApDevice, *, learn_arp_na: bool = True) -> ProxyArpSnooper:
    """hostapd ``proxy_arp=1``: ``x_snoop_init`` + ``dhcp_snoop_init`` +
    ``ndisc_snoop_init`` for ``ap``, which must be a bridge port with ``ap_isolate``."""
    if not ap.ap_isolate:
        raise KernelError(errno.EINVAL, "x_snoop: ap_isolate must be enabled for x_snoop")
    port = br_port_get(ap)
    if port is None:
        raise KernelError(errno.EINVAL, "x_snoop: Bridge must be configured for x_snoop")
    br = port.br
    _port_flags(ap)
    for sta in ap.stations.values():  # per_sta_vif: every station's own port as well
        _port_flags(sta.vif)
    net = br.dev.net
    net.sysctl.set(f"net.ipv4.conf.{br.dev.name}.arp_accept", "1")
    if br.multicast is not None:
        br.multicast.enabled = True
    return ProxyArpSnooper(ap, br.dev, learn_arp_na=learn_arp_na)
