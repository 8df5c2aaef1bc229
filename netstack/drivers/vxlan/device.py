"""The VXLAN device (drivers/net/vxlan/vxlan_core.c, include/net/vxlan.h, RFC 7348; Linux
6.18): configuration, open/stop (the shared UDP tunnel socket), transmit.

Transmit (``vxlan_xmit`` → ``vxlan_xmit_one`` → ``vxlan_build_skb`` →
``udp_tunnel_xmit_skb``/``udp_tunnel6_xmit_skb``):

* the destination comes from the FDB (the inner destination MAC, else the all-zeros
  default entry; no entry → tx_dropped); every remote of the entry gets a copy;
* TTL: ``ttl`` (0 = ``auto``: the route's hop limit, 1 for a multicast remote) or
  ``ttl inherit``; TOS: ``tos`` or ``inherit`` (the inner DS field), then RFC 6040 ECN
  (``ip_tunnel_ecn_encap``); DF: ``df set|inherit|unset``;
* the outer source port is ``udp_flow_src_port`` over the inner flow hash in
  [srcport low, high) — the kernel's default range (0 0) is ``ip_local_port_range``;
* the VXLAN header: I flag and VNI; with ``remcsumtx`` and an inner CHECKSUM_PARTIAL
  whose start is even and <= 254 bytes into the inner frame at a UDP/TCP check offset,
  the RCO bit and (start >> 1 | UDP bit) in the VNI word's low byte and the packet goes
  out CHECKSUM_NONE (the receiver finishes the inner checksum); with ``gbp`` and a
  non-zero ``skb->mark`` the G bit and the policy (RFC draft-smith-vxlan-group-policy);
* the outer UDP checksum per ``udpcsum``/``udp6zerocsumtx`` (``udp_set_csum``).

Receive lives in :mod:`netstack.drivers.vxlan.rcv`.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.netdevice import IFF_BROADCAST, IFF_MULTICAST, NetDevice
from netstack.drivers.vxlan.fdb import ALL_ZEROS_MAC, Rdst, VxlanFdb, is_any, is_multicast_ip
from netstack.errors import KernelError
from netstack.ipv4.ip_tunnel_core import (GSO_SOFTWARE, IP_DF, TUNNEL_FEATURES, ip_tunnel_ecn_encap,
                                          ip_tunnel_get_dsfield, ip_tunnel_get_ttl,
                                          iptunnel_handle_offloads, skb_set_inner_protocol,
                                          tunnel_route4, tunnel_route6, tunnel_start_xmit,
                                          tunnel_tx_loops, tunnel_tx_no_route, tunnels_of)
from netstack.ipv4.udp_tunnel import (AF_INET, AF_INET6, UdpTunnelSock,
                                      udp_flow_src_port, udp_tunnel6_xmit_skb,
                                      udp_tunnel_dev_sock_setup,
                                      udp_tunnel_sock_release, udp_tunnel_xmit_skb)
from netstack.packet.skb import (CHECKSUM_NONE, CHECKSUM_PARTIAL, SKB_GSO_TUNNEL_REMCSUM,
                                 SKB_GSO_UDP_TUNNEL, SKB_GSO_UDP_TUNNEL_CSUM, UNSET)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

# include/net/vxlan.h
VXLAN_HLEN = 16                 # UDP + VXLAN header
VXLAN_HF_VNI = 0x08000000       # I flag (bit 27 of word 0)
VXLAN_HF_RCO = 0x00200000       # remote checksum offload (bit 21)
VXLAN_HF_GBP = 0x80000000       # group based policy (bit 31)
VXLAN_GBP_DONT_LEARN = 0x400000  # D bit (bit 22)
VXLAN_GBP_POLICY_APPLIED = 0x080000  # A bit (bit 19)
VXLAN_GBP_ID_MASK = 0xFFFF
VXLAN_GBP_USED_BITS = VXLAN_HF_GBP | VXLAN_GBP_DONT_LEARN | VXLAN_GBP_POLICY_APPLIED
VXLAN_VNI_MASK = 0xFFFFFF00
VXLAN_RCO_MASK = 0x7F
VXLAN_RCO_UDP = 0x80
VXLAN_RCO_SHIFT = 1
VXLAN_RCO_SHIFT_MASK = 1
VXLAN_MAX_REMCSUM_START = VXLAN_RCO_MASK << VXLAN_RCO_SHIFT
VXLAN_HEADROOM = 20 + 8 + 8 + 14    # vxlan_headroom for IPv4: 50
VXLAN6_HEADROOM = 40 + 8 + 8 + 14   # 70
#: The Linux default UDP port (IANA's is 4789).
IANA_VXLAN_UDP_PORT = 4789
VXLAN_DEFAULT_PORT = 8472
ETH_P_TEB = 0x6558

VXLAN_DF_UNSET = 0
VXLAN_DF_SET = 1
VXLAN_DF_INHERIT = 2

#: ethtool features vxlan_setup turns on (NETIF_F_SG | HW_CSUM | RXCSUM | GSO_SOFTWARE
#: | FRAGLIST, LLTX; vlan challenged is off)
VXLAN_FEATURES = TUNNEL_FEATURES | GSO_SOFTWARE | {"rx-checksum"}


@dataclass
class VxlanConfig:
    """``struct vxlan_config`` — what ``ip link add … type vxlan`` sets."""

    vni: int = 0
    remote: bytes = b""          # remote or group (4/16 bytes); empty = none
    local: bytes = b""
    link: int = 0                # lower device ifindex (``dev``)
    dst_port: int = VXLAN_DEFAULT_PORT
    port_min: int = 0
    port_max: int = 0
    ttl: int = 0
    ttl_inherit: bool = False
    tos: int = 0                 # 1 = inherit
    df: int = VXLAN_DF_UNSET
    label: int = 0
    learning: bool = True
    age_interval: int = 300
    addrmax: int = 0
    udp_csum: bool = True        # IPv4: !VXLAN_F_UDP_ZERO_CSUM_TX
    udp6_zero_csum_tx: bool = False
    udp6_zero_csum_rx: bool = False
    remcsum_tx: bool = False
    remcsum_rx: bool = False
    remcsum_nopartial: bool = False
    gbp: bool = False
    ipv6: bool = False
    #: VXLAN_F_PROXY / RSC / L2MISS / L3MISS (:mod:`netstack.drivers.vxlan.proxy`)
    proxy: bool = False
    rsc: bool = False
    l2miss: bool = False
    l3miss: bool = False

    @property
    def family(self) -> int:
        return AF_INET6 if self.ipv6 else AF_INET

    def rcv_flags_key(self) -> tuple[bool, bool, bool, bool]:
        """``VXLAN_F_RCV_FLAGS``: devices sharing one socket must agree on these."""
        return (self.udp6_zero_csum_rx, self.remcsum_rx, self.remcsum_nopartial, self.gbp)


class VxlanSock:
    """``struct vxlan_sock``: one UDP tunnel socket shared by the vxlan devices of a
    namespace with the same family, port and receive flags; VNI → device."""

    def __init__(self, net: Any, family: int, port: int, flags: tuple[bool, ...]) -> None:
        from netstack.drivers.vxlan.rcv import vxlan_rcv
        self.net = net
        self.family = family
        self.port = port
        self.flags = flags
        self.devs: dict[int, "VxlanDevice"] = {}
        self.refcnt = 0
        from netstack.drivers.vxlan.gro import vxlan_gro_complete, vxlan_gro_receive
        self.sock = UdpTunnelSock(net, family, port, vxlan_rcv, user_data=self,
                                  gro_receive=vxlan_gro_receive,
                                  gro_complete=vxlan_gro_complete,
                                  no_check6_rx=bool(flags[0]))


def _vxlan_socks(net: Any) -> list[VxlanSock]:
    """``vxlan_net->sock_list``: the namespace's open vxlan sockets."""
    return tunnels_of(net, "vxlan_socks")


class VxlanDevice(NetDevice):
    """``ip link add NAME type vxlan …``."""

    kind = "vxlan"
    default_features = VXLAN_FEATURES
    hw_features = VXLAN_FEATURES

    def __init__(self, name: str, address: bytes, cfg: VxlanConfig) -> None:
        super().__init__(name, address)
        self.flags = IFF_BROADCAST | IFF_MULTICAST
        self.cfg = cfg
        self.fdb = VxlanFdb(self)
        self.vs: VxlanSock | None = None
        #: ``vxlan->net``: the namespace the device was created in; its socket, routes
        #: and lower device stay there when the device moves (``ip link set … netns``)
        self.link_net: Any = None
        #: l2miss/l3miss notifications (the kernel's RTM_GETNEIGH), see vxlan.proxy
        self.misses: list[tuple[str, bytes]] = []
        self.extra_stats: dict[str, int] = {}

    # ---------------------------------------------------------------- lifecycle
    def open(self) -> None:
        """``vxlan_open`` → ``vxlan_sock_add``: find or create the shared socket and
        register the VNI; start the ageing timer."""
        net = self.link_net or self.net
        cfg = self.cfg
        assert net is not None
        key = cfg.rcv_flags_key()
        vs = next((s for s in _vxlan_socks(net) if s.family == cfg.family and
                   s.port == cfg.dst_port and s.flags == key), None)
        if vs is None:
            vs = VxlanSock(net, cfg.family, cfg.dst_port, key)
            udp_tunnel_dev_sock_setup(self, vs.sock)
            _vxlan_socks(net).append(vs)
        self.__dict__["activated"] = True
        vs.refcnt += 1
        vs.devs[cfg.vni] = self
        self.vs = vs
        if is_multicast_ip(cfg.remote):
            vxlan_igmp_join(net, cfg.link, cfg.remote)
        self.fdb._arm()

    def stop(self) -> None:
        """``vxlan_stop``: leave the group, release the socket, flush the dynamic FDB
        entries."""
        net = self.link_net or self.net
        if is_multicast_ip(self.cfg.remote) and net is not None:
            vxlan_igmp_leave(net, self.cfg.link, self.cfg.remote)
        vs = self.vs
        if vs is not None:
            if vs.devs.get(self.cfg.vni) is self:
                del vs.devs[self.cfg.vni]
            vs.refcnt -= 1
            if vs.refcnt <= 0 and net is not None:
                udp_tunnel_sock_release(vs.sock)
                socks = _vxlan_socks(net)
                if vs in socks:
                    socks.remove(vs)
        self.vs = None
        self.fdb.flush(False)
        if self.fdb.timer is not None:
            self.fdb.timer.cancel()
            self.fdb.timer = None

    def link_index(self) -> int:
        return self.cfg.link or self.ifindex

    def dellink(self) -> None:
        """``vxlan_dellink``: flush everything, unregister."""
        net = self.net
        assert net is not None
        self.fdb.flush(True)
        net.unregister_netdevice(self)

    # ------------------------------------------------------------------ FDB ndo
    def ndo_fdb_add(self, req: Any) -> None:
        from netstack.drivers.vxlan.fdb import fdb_request_apply
        fdb_request_apply(self, req, delete=False)

    def ndo_fdb_del(self, req: Any) -> None:
        from netstack.drivers.vxlan.fdb import fdb_request_apply
        fdb_request_apply(self, req, delete=True)

    def ndo_fdb_dump(self) -> list[dict[str, Any]]:
        return self.fdb.dump()

    # ------------------------------------------------------------------ transmit
    start_xmit = tunnel_start_xmit

    def _xmit(self, pkt: "Packet") -> None:
        """``vxlan_xmit``: FDB lookup on the inner destination MAC (the all-zeros default
        entry if unknown) and one encapsulated copy per remote."""
        from netstack.drivers.vxlan import proxy
        pkt.mac_header = pkt.data
        if pkt.tail - pkt.data < 14:
            self.stats.tx_dropped += 1
            kfree_skb_reason(pkt, "PKT_TOO_SMALL", self.net)
            return
        dmac = bytes(pkt.buf[pkt.data:pkt.data + 6])
        if pkt.network_header == UNSET or pkt.network_header < pkt.data:
            pkt.network_header = pkt.data + 14
        cfg = self.cfg
        h_proto = (pkt.buf[pkt.data + 12] << 8) | pkt.buf[pkt.data + 13]
        if cfg.proxy:
            # vxlan_xmit: ARP and neighbour solicitations are answered or consumed
            if h_proto == proxy.ETH_P_ARP:
                proxy.arp_reduce(self, pkt)
                return
            if h_proto == proxy.ETH_P_IPV6 and proxy.ns_is_candidate(pkt):
                proxy.neigh_reduce(self, pkt)
                return
        f = self.fdb.lookup_tx(dmac, cfg.vni)
        did_rsc = False
        if f is not None and f.flags & proxy.NTF_ROUTER and cfg.rsc and \
                h_proto in (proxy.ETH_P_IP, proxy.ETH_P_IPV6):
            did_rsc = proxy.route_shortcircuit(self, pkt)
            if did_rsc:
                dmac = bytes(pkt.buf[pkt.data:pkt.data + 6])
                f = self.fdb.lookup_tx(dmac, cfg.vni)
        if f is None:
            f = self.fdb.lookup_tx(ALL_ZEROS_MAC, cfg.vni)
            if f is None:
                if cfg.l2miss and not dmac[0] & 1:
                    proxy.vxlan_miss(self, "l2miss", dmac)
                    if pkt.trace is not None:
                        pkt.trace.event(pkt, "vxlan_fdb_miss", info=dmac.hex(":"))
                self.stats.tx_dropped += 1
                kfree_skb_reason(pkt, "NO_TX_TARGET", self.net)
                return
        remotes = f.remotes
        if not remotes:
            self.stats.tx_dropped += 1
            kfree_skb_reason(pkt, "NO_TX_TARGET", self.net)
            return
        # vxlan_xmit: the first remote (fdst) is kept for the original skb and sent
        # last; every other remote gets a clone, in list order, first
        for rd in remotes[1:]:
            self.xmit_one(pkt.clone(), rd, did_rsc)
        self.xmit_one(pkt, remotes[0], did_rsc)

    def xmit_one(self, pkt: "Packet", rd: Rdst, did_rsc: bool = False) -> None:
        """``vxlan_xmit_one`` for one remote (routes in ``vxlan->net``).  An any-address
        remote reached through route short circuit is a bridge-local destination: the
        frame is handed back to this device (``vxlan_encap_bypass`` to itself)."""
        cfg = self.cfg
        net = self.link_net or self.net
        assert net is not None
        if is_any(rd.ip):
            if did_rsc:
                self._bypass_to(pkt, self, cfg.vni)
                return
            self.stats.tx_dropped += 1
            kfree_skb_reason(pkt, "NO_TX_TARGET", net)
            return
        if self.vs is None:
            self.stats.tx_errors += 1
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return
        dport = rd.port or cfg.dst_port
        vni = rd.vni or cfg.vni
        ifindex = rd.ifindex
        inner_proto = (pkt.buf[pkt.data + 12] << 8) | pkt.buf[pkt.data + 13]
        if pkt.protocol == 0:
            pkt.protocol = inner_proto
        if cfg.ttl_inherit:
            ttl = ip_tunnel_get_ttl(pkt, inner_proto)
        else:
            ttl = cfg.ttl
            if not ttl and is_multicast_ip(rd.ip):
                ttl = 1
        tos = cfg.tos
        if tos == 1:
            tos = ip_tunnel_get_dsfield(pkt, inner_proto)
        mark = pkt.mark
        sport = udp_flow_src_port(self.net, pkt, cfg.port_min, cfg.port_max, True)
        try:
            if len(rd.ip) == 4:
                rt, saddr = tunnel_route4(net, rd.ip, cfg.local, ifindex, tos, 17,
                                          sport, dport, mark)
            else:
                rt, saddr = tunnel_route6(net, rd.ip, cfg.local, ifindex, 17, sport, dport,
                                          mark)
        except KernelError as e:
            tunnel_tx_no_route(self, pkt, net, carrier=e.errno == errno.ENETUNREACH)
            return
        if tunnel_tx_loops(self, pkt, rt.dev, net):  # circular route (ELOOP)
            return
        rflags = getattr(rt, "flags", 0) or 0
        if (len(rd.ip) == 4 and rflags & 0x80000000 and not rflags & 0x30000000) or \
                (len(rd.ip) == 16 and getattr(rt, "type", None) == 2):
            # encap_bypass_if_local: RTCF_LOCAL (RTF_LOCAL), not broadcast/multicast
            self._encap_bypass(pkt, net, rd.ip, dport, vni)
            return
        tos = ip_tunnel_ecn_encap(tos, pkt, inner_proto)
        if pkt.trace is not None:
            # where the frame goes in the underlay: vni, remote/local, outer UDP ports,
            # the underlay output device (vxlan_xmit_one, drivers/net/vxlan/vxlan_core.c)
            from netstack.core.trace import fmt_addr
            pkt.trace.event(pkt, "vxlan_xmit_one", dev=self,
                            info=f"vni={vni} remote={fmt_addr(rd.ip)} local={fmt_addr(saddr)}"
                            f" sport={sport} dport={dport} via={rt.dev.name}",
                            attrs={"vni": vni, "remote": fmt_addr(rd.ip),
                                   "local": fmt_addr(saddr), "sport": sport, "dport": dport,
                                   "via": rt.dev.name})
        if len(rd.ip) == 4:
            df = 0
            if cfg.df == VXLAN_DF_SET:
                df = IP_DF
            elif cfg.df == VXLAN_DF_INHERIT:
                nh = pkt.data + 14
                if inner_proto == 0x86DD or (inner_proto == 0x0800 and
                                             pkt.buf[nh + 6] & 0x40):
                    df = IP_DF
            if not ttl:
                from netstack.ipv4.ip_output import ip_select_ttl
                ttl = ip_select_ttl(net, rt)
            udp_sum = cfg.udp_csum
            if not self._build(pkt, vni, udp_sum):
                return
            udp_tunnel_xmit_skb(rt, pkt, saddr, rd.ip, tos, ttl, df, sport, dport,
                                self.net is not net, not udp_sum)
        else:
            if not ttl:
                from netstack.ipv6.ip6_output import ip6_dst_hoplimit
                ttl = ip6_dst_hoplimit(rt)
            udp_sum = not cfg.udp6_zero_csum_tx
            if not self._build(pkt, vni, udp_sum):
                return
            udp_tunnel6_xmit_skb(rt, pkt, saddr, rd.ip, tos, ttl, cfg.label, sport, dport,
                                 not udp_sum)

    def _encap_bypass(self, pkt: "Packet", net: Any, daddr: bytes, dport: int,
                      vni: int) -> None:
        """``encap_bypass_if_local`` + ``vxlan_encap_bypass``: a remote that is one of our
        own addresses hands the frame straight to the VXLAN device of that VNI on the
        socket for (family, port, receive flags) — no headers are built; the source MAC is
        learned behind the loopback address; the frame arrives as PACKET_HOST whatever its
        destination MAC, with its protocol unchanged."""
        family = AF_INET if len(daddr) == 4 else AF_INET6
        vs = next((s for s in _vxlan_socks(net) if s.family == family and s.port == dport
                   and s.flags == self.cfg.rcv_flags_key()), None)
        dst = vs.devs.get(vni) if vs is not None else None
        if dst is None:
            self.stats.tx_errors += 1
            kfree_skb_reason(pkt, "VXLAN_VNI_NOT_FOUND", self.net)
            return
        self._bypass_to(pkt, dst, vni)

    def _bypass_to(self, pkt: "Packet", dst: "VxlanDevice", vni: int) -> None:
        """``vxlan_encap_bypass(skb, self, dst, vni, snoop=true)``."""
        length = pkt.tail - pkt.data
        pkt.pkt_type = 0  # PACKET_HOST
        pkt.encapsulation = False
        src_mac = bytes(pkt.buf[pkt.mac_header + 6:pkt.mac_header + 12])
        if pkt.protocol == 0:
            pkt.protocol = (pkt.buf[pkt.mac_header + 12] << 8) | pkt.buf[pkt.mac_header + 13]
        pkt.data = pkt.network_header
        pkt.dev = dst
        if not dst.is_up:
            dst.stats.rx_dropped += 1
            kfree_skb_reason(pkt, "DEV_READY", self.net)
            return
        if dst.cfg.learning:
            loopback = b"\x7f\0\0\x01" if len(dst.cfg.remote or b"1234") == 4 else \
                bytes(15) + b"\x01"
            dst.fdb.snoop(loopback, src_mac, 0, vni)
        self.stats.tx_packets += 1
        self.stats.tx_bytes += length
        dst.stats.rx_packets += 1
        dst.stats.rx_bytes += length
        if pkt.trace is not None:
            pkt.trace.event(pkt, "vxlan_encap_bypass", info=f"to {dst.name}")
        from netstack.core.dev import netif_rx
        netif_rx(pkt)

    def _build(self, pkt: "Packet", vni: int, udp_sum: bool) -> bool:
        """``vxlan_build_skb``: GSO type, RCO decision, the 8-byte VXLAN header."""
        cfg = self.cfg
        gso = SKB_GSO_UDP_TUNNEL_CSUM if udp_sum else SKB_GSO_UDP_TUNNEL
        rco = False
        if cfg.remcsum_tx and pkt.ip_summed == CHECKSUM_PARTIAL:
            start = pkt.csum_start - pkt.data
            if start <= VXLAN_MAX_REMCSUM_START and not start & VXLAN_RCO_SHIFT_MASK and \
                    pkt.csum_offset in (6, 16):
                gso |= SKB_GSO_TUNNEL_REMCSUM
                rco = True
        iptunnel_handle_offloads(pkt, gso)
        flags = VXLAN_HF_VNI
        vni_field = (vni & 0xFFFFFF) << 8
        if rco:
            start = pkt.csum_start - pkt.data
            vni_field |= start >> VXLAN_RCO_SHIFT
            if pkt.csum_offset == 6:
                vni_field |= VXLAN_RCO_UDP
            flags |= VXLAN_HF_RCO
            if not pkt.gso_size:
                pkt.ip_summed = CHECKSUM_NONE
                pkt.encapsulation = False
        if cfg.gbp and pkt.mark:
            md = pkt.mark
            flags |= VXLAN_HF_GBP
            if md & VXLAN_GBP_DONT_LEARN:
                flags |= VXLAN_GBP_DONT_LEARN
            if md & VXLAN_GBP_POLICY_APPLIED:
                flags |= VXLAN_GBP_POLICY_APPLIED
            flags |= md & VXLAN_GBP_ID_MASK
        o = pkt.push(8)
        pkt.buf[o:o + 4] = flags.to_bytes(4, "big")
        pkt.buf[o + 4:o + 8] = vni_field.to_bytes(4, "big")
        skb_set_inner_protocol(pkt, ETH_P_TEB)
        return True


IGMP_ALL_HOSTS = 0xE0000001


def vxlan_igmp_join(net: Any, ifindex: int, group: bytes) -> None:
    """``vxlan_igmp_join`` → ``ip_mc_join_group`` on the lower device: the namespace's
    ``ip_check_mc`` (``ip_check_mc_rcu``) accepts the group on that device from now on,
    chained in front of whatever answered before (all-hosts only without IGMP).  Only the
    membership is modelled: netstack sends no IGMP reports."""
    if len(group) == 16:
        # vxlan_igmp_join → ipv6_sock_mc_join: the lower device joins (no MLD reports)
        from netstack.ipv6.addrconf import mc_inc
        lower = net.get_by_index(ifindex)
        if lower is not None and lower.ip6_ptr is not None:
            mc_inc(lower.ip6_ptr, group)
        return
    groups = net.proto.get("vxlan_mc")
    if groups is None:
        groups = net.proto["vxlan_mc"] = {}
        prev = getattr(net.ipv4, "ip_check_mc", None)

        def ip_check_mc(dev: Any, daddr: int, saddr: int, proto: int) -> bool:
            if groups.get((dev.ifindex, daddr)):
                return True
            if prev is not None:
                return bool(prev(dev, daddr, saddr, proto))
            return daddr == IGMP_ALL_HOSTS and dev.is_up

        net.ipv4.ip_check_mc = ip_check_mc
    key = (ifindex, int.from_bytes(group, "big"))
    groups[key] = groups.get(key, 0) + 1


def vxlan_igmp_leave(net: Any, ifindex: int, group: bytes) -> None:
    """``vxlan_igmp_leave`` → ``ip_mc_leave_group`` / ``ipv6_sock_mc_drop``."""
    if len(group) == 16:
        from netstack.ipv6.addrconf import mc_dec
        lower = net.get_by_index(ifindex)
        if lower is not None and lower.ip6_ptr is not None:
            mc_dec(lower.ip6_ptr, group)
        return
    groups = net.proto.get("vxlan_mc") or {}
    key = (ifindex, int.from_bytes(group, "big"))
    if groups.get(key):
        groups[key] -= 1
        if not groups[key]:
            del groups[key]


def vxlan_mtu(cfg: VxlanConfig, lower: NetDevice | None) -> tuple[int, int]:
    """``vxlan_dev_configure``: (default MTU, max MTU): the lower device's MTU minus the
    headroom (50 for IPv4, 70 for IPv6) when ``dev`` is given, else 1500 / 65535."""
    headroom = VXLAN6_HEADROOM if cfg.ipv6 else VXLAN_HEADROOM
    if lower is not None:
        return lower.mtu - headroom, 65535
    return 1500, 65535


def vxlan_newlink(net: Any, name: str, address: bytes, cfg: VxlanConfig, mtu: int | None,
                  ifindex: int = 0) -> VxlanDevice:
    """``vxlan_dev_create``/``__vxlan_dev_create``: validate, register, and create the
    default FDB entry from ``remote``/``group``."""
    lower = net.get_by_index(cfg.link) if cfg.link else None
    for other in net.devices.values():
        if isinstance(other, VxlanDevice) and other.cfg.vni == cfg.vni and \
                other.cfg.dst_port == cfg.dst_port and other.cfg.family == cfg.family and \
                other.cfg.link == cfg.link and \
                other.cfg.rcv_flags_key() == cfg.rcv_flags_key():
            raise KernelError(errno.EEXIST, "A VXLAN device with the specified VNI already exists")
    dflt, max_mtu = vxlan_mtu(cfg, lower)
    dev = VxlanDevice(name, address, cfg)
    dev.max_mtu = max_mtu
    dev.mtu = dflt
    if mtu is not None:
        if mtu < 68 or mtu > max_mtu:
            raise KernelError(errno.EINVAL)
        dev.mtu = mtu
    net.register_netdevice(dev, ifindex=ifindex)
    dev.link_net = net
    if cfg.remote and not is_any(cfg.remote):
        dev.fdb.create(ALL_ZEROS_MAC, Rdst(cfg.remote, cfg.dst_port, cfg.vni, cfg.link),
                       0x02 | 0x80, 0, cfg.vni)
    return dev
