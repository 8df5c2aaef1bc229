"""AP-mode interface, stations and the air between them (net/mac80211).

Why a model and not a radio: what the Linux dataplane around an AP sees is decided by a
few mac80211 rules, reproduced here on Ethernet frames (the 802.11 header, encryption and
rate control are not modelled):

* AP → stations (``ieee80211_subif_start_xmit``): a unicast frame goes to the associated,
  authorized station with that address, or is dropped (no station: ``tx_dropped``); a
  group-addressed frame is sent once under the group key (GTK) and every associated
  station receives it — except the one whose address is the frame's source (a station
  discards its own group frames coming back, ``ieee80211_accept_frame``).  With
  ``multicast_to_unicast`` (``ieee80211_multicast_to_unicast``) ARP/IPv4/IPv6 group frames
  become one unicast copy per station instead (the sender excluded).
* Station → AP (``ieee80211_deliver_skb``): unless ``ap_isolate``
  (IEEE80211_SDATA_DONT_BRIDGE_PACKETS) a unicast frame for another associated station is
  relayed over the air and never reaches the bridge, and a group frame is both relayed
  over the air and passed up; with ``ap_isolate`` everything goes up to the bridge, which
  can send it back only through the port's hairpin mode.  Frames of a station that is
  not associated are dropped.
* ``per_sta_vif`` (hostapd's option of that name): every station gets its own AP_VLAN
  interface ``wlan0.staN`` that joins the AP's bridge as a port of its own; frames of the
  station come up through it (mac80211 never relays for an AP_VLAN bound to a station,
  so ``ap_isolate`` does not matter there) and whatever the bridge sends on it — group
  frames included — reaches that station only.
* The receiving station classifies the frame like any Ethernet device
  (``eth_type_trans``), so a group-addressed frame arrives with pkt_type
  BROADCAST/MULTICAST: that is where ``drop_unicast_in_l2_multicast``,
  ``drop_gratuitous_arp`` and ``drop_unsolicited_na`` on the station act (RFC 1122
  §3.3.6 / "Hole 196": a station holding the GTK can forge group frames).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from netstack.core.dev import netif_rx
from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.eth import ETH_HLEN, eth_type_trans
from netstack.core.netdevice import IFF_UP, NetDevice
from netstack.errors import KernelError
from netstack.packet.constants import ETH_P_ARP, ETH_P_IP, ETH_P_IPV6
from netstack.packet.skb import Packet

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net

__all__ = ["Station", "ApDevice", "ApVlanDevice", "StationDevice", "create_ap"]

BCAST = b"\xff" * 6


@dataclass(eq=False)
class Station:
    """``struct sta_info`` + hostapd's per-station snooping state (``ipaddr``,
    ``ip6addr`` list)."""

    addr: bytes
    dev: "StationDevice"
    authorized: bool = True
    ipaddr: bytes = bytes(4)
    ip6addrs: list[bytes] = field(default_factory=list)
    #: the station's AP_VLAN interface in per_sta_vif mode
    vif: "ApVlanDevice | None" = None


class StationDevice(NetDevice):
    """A station's wireless interface (managed mode), in the station's namespace."""

    kind = "wlan"

    def __init__(self, name: str, address: bytes, ap: "ApDevice") -> None:
        super().__init__(name, address)
        self.ap: ApDevice | None = ap

    def carrier_ok(self) -> bool:
        return self.ap is not None

    def start_xmit(self, pkt: Packet, more: bool) -> None:
        frame = bytes(pkt.buf[pkt.data:pkt.tail])
        ap = self.ap
        if ap is None or len(frame) < ETH_HLEN:
            self.stats.tx_dropped += 1
            kfree_skb_reason(pkt, "NOT_SPECIFIED", self.net)
        else:
            self.stats.tx_packets += 1
            self.stats.tx_bytes += len(frame)
            ap.rx_from_station(self.address, frame)
        if not more:
            self.ring_doorbell()


class ApVlanDevice(NetDevice):
    """A per-station AP_VLAN interface (``per_sta_vif``): a bridge port for one station."""

    kind = "wlan"

    def __init__(self, name: str, ap: "ApDevice", sta: Station) -> None:
        super().__init__(name, ap.address)
        self.ap = ap
        self.sta = sta

    def start_xmit(self, pkt: Packet, more: bool) -> None:
        frame = bytes(pkt.buf[pkt.data:pkt.tail])
        sta = self.sta
        if len(frame) < ETH_HLEN or not sta.authorized or self.ap.stations.get(sta.addr) is not sta \
                or (frame[0] & 1 and frame[6:12] == sta.addr):
            self.stats.tx_dropped += 1
            kfree_skb_reason(pkt, "NOT_SPECIFIED", self.net)
        else:
            self.stats.tx_packets += 1
            self.stats.tx_bytes += len(frame)
            self.ap._to_station(sta, frame)
        if not more:
            self.ring_doorbell()


class ApDevice(NetDevice):
    """The AP interface (``wlan0`` in AP mode), normally a bridge port.

    ``stations`` maps a station address to its :class:`Station`; ``ap_isolate`` and
    ``multicast_to_unicast`` are the hostapd/iw settings of the same names.
    ``station_hooks`` are called ``fn(event, station)`` with "assoc"/"disassoc" (the
    snooper removes a station's neighbour entries on "disassoc", as ``ap_free_sta``).
    """

    kind = "wlan"

    def __init__(self, name: str, address: bytes, *, ap_isolate: bool = False,
                 multicast_to_unicast: bool = False, per_sta_vif: bool = False,
                 disable_dgaf: bool = False, na_mcast_to_ucast: bool = False) -> None:
        super().__init__(name, address)
        #: hostapd disable_dgaf: every station gets its own random GTK (``disable_gtk``),
        #: so no station can decrypt group-addressed frames; the snooper re-sends DHCP and
        #: RAs as unicast instead
        self.disable_dgaf = disable_dgaf
        #: hostapd na_mcast_to_ucast: multicast NAs re-sent as unicast by the snooper
        self.na_mcast_to_ucast = na_mcast_to_ucast
        self.stations: dict[bytes, Station] = {}
        self.ap_isolate = ap_isolate
        self.multicast_to_unicast = multicast_to_unicast
        self.per_sta_vif = per_sta_vif
        self.station_hooks: list[Callable[[str, Station], None]] = []
        self._next_aid = 1

    # ------------------------------------------------------------ association
    def associate(self, net: "Net", name: str, addr: bytes, *, ifindex: int = 0,
                  authorized: bool = True) -> StationDevice:
        """A station with address ``addr`` joins the BSS; its interface ``name`` is
        registered in ``net`` (EEXIST if the address is already associated)."""
        addr = bytes(addr)
        if addr in self.stations:
            raise KernelError(17, "station already associated")
        dev = StationDevice(name, addr, self)
        net.register_netdevice(dev, ifindex=ifindex)
        sta = Station(addr, dev, authorized)
        self.stations[addr] = sta
        if self.per_sta_vif:
            self._add_vif(sta)
        for fn in list(self.station_hooks):
            fn("assoc", sta)
        return dev

    def _add_vif(self, sta: Station) -> None:
        """hostapd per_sta_vif: ``wlan0.staAID`` is created, put into the AP's bridge and
        brought up."""
        assert self.net is not None
        vif = ApVlanDevice(f"{self.name}.sta{self._next_aid}", self, sta)
        self._next_aid += 1
        self.net.register_netdevice(vif)
        sta.vif = vif
        if self.master is not None:
            self.master.add_slave(vif)
        self.net.dev_open(vif)

    def _del_vif(self, sta: Station) -> None:
        vif = sta.vif
        sta.vif = None
        if vif is None or vif.net is None:
            return
        if vif.master is not None:
            vif.master.del_slave(vif)
        vif.net.unregister_netdevice(vif)

    def disassociate(self, addr: bytes) -> None:
        """The station leaves (ENOENT if unknown); its interface loses carrier."""
        sta = self.stations.pop(bytes(addr), None)
        if sta is None:
            raise KernelError(2, "no such station")
        sta.dev.ap = None
        for fn in list(self.station_hooks):
            fn("disassoc", sta)
        self._del_vif(sta)

    # ------------------------------------------------------------------- air
    def _to_station(self, sta: Station, frame: bytes) -> None:
        """The station's radio hands ``frame`` to its stack."""
        dev = sta.dev
        if dev.net is None or not dev.flags & IFF_UP:
            return
        pkt = dev.net.world.new_packet(frame)
        dev.stats.rx_packets += 1
        dev.stats.rx_bytes += len(frame)
        pkt.protocol = eth_type_trans(pkt, dev)
        netif_rx(pkt)

    def air_xmit(self, frame: bytes) -> int:
        """Send ``frame`` on the BSS; returns the number of stations that got a copy."""
        dst, src = frame[:6], frame[6:12]
        if dst[0] & 1:
            proto = (frame[12] << 8) | frame[13]
            # stations with their own AP_VLAN get group traffic through it only
            stas = [s for s in self.stations.values()
                    if s.authorized and s.addr != src and s.vif is None]
            if self.multicast_to_unicast and proto in (ETH_P_ARP, ETH_P_IP, ETH_P_IPV6):
                for s in stas:
                    self._to_station(s, s.addr + frame[6:])
            elif self.disable_dgaf:
                return 0  # sent under a GTK no station holds
            else:
                for s in stas:
                    self._to_station(s, frame)
            return len(stas)
        s = self.stations.get(dst)
        if s is None or not s.authorized:
            return 0
        self._to_station(s, frame)
        return 1

    def start_xmit(self, pkt: Packet, more: bool) -> None:
        """``ieee80211_subif_start_xmit``: the bridge (or the AP host) transmits."""
        frame = bytes(pkt.buf[pkt.data:pkt.tail])
        # a unicast frame for no (authorized) station is dropped: "unauthorized port"
        sent = len(frame) >= ETH_HLEN and (self.air_xmit(frame) > 0 or bool(frame[0] & 1))
        if not sent:
            self.stats.tx_dropped += 1
            kfree_skb_reason(pkt, "NOT_SPECIFIED", self.net)
        else:
            self.stats.tx_packets += 1
            self.stats.tx_bytes += len(frame)
        if not more:
            self.ring_doorbell()

    def rx_from_station(self, sta_addr: bytes, frame: bytes) -> None:
        """A station transmitted ``frame`` (``ieee80211_deliver_skb``)."""
        sta = self.stations.get(sta_addr)
        if sta is None or not sta.authorized or self.net is None or not self.flags & IFF_UP:
            self.stats.rx_dropped += 1
            return
        if sta.vif is not None:
            self._up(sta.vif, frame)
            return
        dst = frame[:6]
        up = True
        if not self.ap_isolate:
            if dst[0] & 1:
                self.air_xmit(frame)
            elif dst != frame[6:12] and dst in self.stations:
                self.air_xmit(frame)
                up = False
        if up:
            self._up(self, frame)

    @staticmethod
    def _up(dev: NetDevice, frame: bytes) -> None:
        """Hand a station's frame to the AP host's stack (the bridge) on ``dev``."""
        if dev.net is None or not dev.flags & IFF_UP:
            dev.stats.rx_dropped += 1
            return
        pkt = dev.net.world.new_packet(frame)
        dev.stats.rx_packets += 1
        dev.stats.rx_bytes += len(frame)
        pkt.protocol = eth_type_trans(pkt, dev)
        netif_rx(pkt)


def create_ap(net: "Net", name: str, address: bytes, *, ifindex: int = 0,
              ap_isolate: bool = False, multicast_to_unicast: bool = False,
              per_sta_vif: bool = False, disable_dgaf: bool = False,
              na_mcast_to_ucast: bool = False) -> ApDevice:
    """Register an AP interface in ``net`` (keyword options as hostapd's / iw's)."""
    dev = ApDevice(name, address, ap_isolate=ap_isolate, multicast_to_unicast=multicast_to_unicast,
                   per_sta_vif=per_sta_vif, disable_dgaf=disable_dgaf,
                   na_mcast_to_ucast=na_mcast_to_ucast)
    net.register_netdevice(dev, ifindex=ifindex)
    return dev
