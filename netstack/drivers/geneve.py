"""Geneve (RFC 8926) as drivers/net/geneve.c does it (Linux 6.18), plus the option TLV
codec of RFC 8926 §3.5.

Header (8 bytes + options)::

    Ver(2)=0 | Opt Len(6, 4-byte words) | O | C | Rsvd(6) | Protocol Type(16)
    VNI(24) | Reserved(8)
    Options: Class(16) | Type(8, high bit = critical) | R(3) | Length(5, words) | data

Transmit (``geneve_xmit_skb``/``geneve6_xmit_skb`` → ``geneve_build_skb``): the outer
source port is ``udp_flow_src_port(net, skb, 1, 65535, true)`` — the whole port space, not
the local port range as VXLAN's default; TOS/TTL/DF like VXLAN (``tos inherit``,
``ttl inherit``/auto, ``df set|inherit``); the outer UDP checksum is off by default over
IPv4 (``udpcsum`` turns it on) and on over IPv6 (``udp6zerocsumtx`` turns it off).  A
classic (non-``external``) device sends no options; :attr:`GeneveDevice.tx_options` holds
the options a flow-based sender (``tunnel_key``/lwtunnel metadata) would attach, encoded
by :func:`geneve_opts_build`.

Receive (``geneve_udp_encap_recv`` → ``geneve_rx``): header present, version 0, a device
whose VNI *and remote address* match the outer source (``geneve_lookup``), protocol
0x6558 (else rx_dropped), pull header and options, critical-option bit C set → drop
(rx_frame_errors: a classic device supports no options), own source MAC → drop
(rx_errors), RFC 6040 ECN.  The kernel frees these with plain ``kfree_skb``
(NOT_SPECIFIED); the counters say why.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netstack.core.dev import netif_rx
from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.eth import eth_type_trans
from netstack.core.netdevice import IFF_BROADCAST, IFF_MULTICAST, NetDevice
from netstack.core.skb_csum import skb_postpull_rcsum
from netstack.errors import KernelError
from netstack.ipv4.ip_tunnel_core import (GSO_SOFTWARE, IP_DF, TUNNEL_FEATURES, ecn_decapsulate,
                                          ip_tunnel_ecn_encap, ip_tunnel_get_dsfield,
                                          ip_tunnel_get_ttl, iptunnel_handle_offloads,
                                          iptunnel_pull_header, skb_set_inner_protocol,
                                          tunnel_route4, tunnel_route6, tunnel_start_xmit,
                                          tunnel_tx_loops, tunnel_tx_no_route, tunnels_of)
from netstack.ipv4.udp_tunnel import (AF_INET, AF_INET6, UdpTunnelSock,
                                      udp_flow_src_port, udp_tunnel6_xmit_skb,
                                      udp_tunnel_dev_sock_setup, udp_tunnel_gro_hdr_flows,
                                      udp_tunnel_sock_release, udp_tunnel_xmit_skb)
from netstack.packet.errors import ParseError
from netstack.packet.skb import SKB_GSO_UDP_TUNNEL, SKB_GSO_UDP_TUNNEL_CSUM, UNSET

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

GENEVE_UDP_PORT = 6081
GENEVE_VER = 0
GENEVE_BASE_HLEN = 8 + 8
ETH_P_TEB = 0x6558
GENEVE_HEADROOM_V4 = 14 + 20 + 8 + 8
GENEVE_HEADROOM_V6 = 14 + 40 + 8 + 8
GENEVE_DF_UNSET = 0
GENEVE_DF_SET = 1
GENEVE_DF_INHERIT = 2
GENEVE_CRIT_OPT_TYPE = 0x80
#: ``geneve_setup``: SG, HW_CSUM, RXCSUM, FRAGLIST, GSO_SOFTWARE, LLTX (as vxlan)
GENEVE_FEATURES = TUNNEL_FEATURES | GSO_SOFTWARE | {"rx-checksum"}


# ------------------------------------------------------------------ TLV codec
@dataclass(frozen=True)
class GeneveOpt:
    """One option TLV (``struct geneve_opt``): class, type (bit 7 = critical), data
    (a multiple of 4 bytes, at most 124)."""

    opt_class: int
    opt_type: int
    data: bytes = b""

    @property
    def critical(self) -> bool:
        return bool(self.opt_type & GENEVE_CRIT_OPT_TYPE)


def geneve_opts_build(opts: list[GeneveOpt]) -> bytes:
    """Encode options (RFC 8926 §3.5); the total must fit the 6-bit word count (252 B)."""
    out = bytearray()
    for o in opts:
        if len(o.data) % 4 or len(o.data) > 124:
            raise ValueError("geneve option data must be a multiple of 4 bytes, <= 124")
        out += o.opt_class.to_bytes(2, "big") + bytes((o.opt_type & 0xFF, len(o.data) // 4))
        out += o.data
    if len(out) > 63 * 4:
        raise ValueError("geneve options longer than 252 bytes")
    return bytes(out)


def geneve_opts_parse(raw: bytes | bytearray | memoryview) -> list[GeneveOpt]:
    """Decode an options area; an option running past the end is a ParseError."""
    opts = []
    i = 0
    n = len(raw)
    while i < n:
        if n - i < 4:
            raise ParseError("HDR_TRUNC", "geneve option header truncated")
        length = (raw[i + 3] & 0x1F) * 4
        if i + 4 + length > n:
            raise ParseError("HDR_TRUNC", "geneve option length past the end of the options")
        opts.append(GeneveOpt(int.from_bytes(raw[i:i + 2], "big"), raw[i + 2],
                              bytes(raw[i + 4:i + 4 + length])))
        i += 4 + length
    return opts


def geneve_header(vni: int, proto: int = ETH_P_TEB, options: bytes = b"", oam: bool = False,
                  critical: bool = False) -> bytes:
    """``geneve_build_header``."""
    if len(options) % 4:
        raise ValueError("geneve options must be a multiple of 4 bytes")
    b0 = (GENEVE_VER << 6) | (len(options) // 4)
    b1 = (0x80 if oam else 0) | (0x40 if critical else 0)
    return bytes((b0, b1)) + proto.to_bytes(2, "big") + ((vni & 0xFFFFFF) << 8).to_bytes(
        4, "big") + options


# ------------------------------------------------------------------- device
@dataclass
class GeneveConfig:
    """``struct geneve_config`` (the classic, non-``external`` subset)."""

    vni: int = 0
    remote: bytes = b""
    ttl: int = 0
    ttl_inherit: bool = False
    tos: int = 0
    df: int = GENEVE_DF_UNSET
    label: int = 0
    dst_port: int = GENEVE_UDP_PORT
    udp_csum: bool = False
    udp6_zero_csum_tx: bool = False
    udp6_zero_csum_rx: bool = False
    inner_proto_inherit: bool = False

    @property
    def ipv6(self) -> bool:
        return len(self.remote) == 16

    @property
    def family(self) -> int:
        return AF_INET6 if self.ipv6 else AF_INET


class GeneveSock:
    """``struct geneve_sock``: the shared UDP socket of a port/family; devices by
    (remote, VNI)."""

    def __init__(self, net: Any, family: int, port: int, no_check6_rx: bool) -> None:
        self.net = net
        self.family = family
        self.port = port
        self.devs: dict[tuple[bytes, int], "GeneveDevice"] = {}
        self.refcnt = 0
        self.sock = UdpTunnelSock(net, family, port, geneve_udp_encap_recv, user_data=self,
                                  gro_receive=geneve_gro_receive,
                                  gro_complete=geneve_gro_complete,
                                  no_check6_rx=no_check6_rx)


def _socks(net: Any) -> list[GeneveSock]:
    """``geneve_net->sock_list``: the namespace's open geneve sockets."""
    return tunnels_of(net, "geneve_socks")


class GeneveDevice(NetDevice):
    """``ip link add NAME type geneve id VNI remote ADDR …``."""

    kind = "geneve"
    default_features = GENEVE_FEATURES
    hw_features = GENEVE_FEATURES

    def __init__(self, name: str, address: bytes, cfg: GeneveConfig) -> None:
        super().__init__(name, address)
        self.flags = IFF_BROADCAST | IFF_MULTICAST
        self.cfg = cfg
        self.gs: GeneveSock | None = None
        #: options a flow-based sender would attach (empty for a classic device)
        self.tx_options: list[GeneveOpt] = []
        self.extra_stats: dict[str, int] = {}

    def open(self) -> None:
        """``geneve_open`` → ``geneve_sock_add``."""
        net = self.net
        cfg = self.cfg
        gs = next((s for s in _socks(net) if s.family == cfg.family and
                   s.port == cfg.dst_port), None)
        if gs is None:
            gs = GeneveSock(net, cfg.family, cfg.dst_port, cfg.udp6_zero_csum_rx)
            udp_tunnel_dev_sock_setup(self, gs.sock)
            _socks(net).append(gs)
        self.__dict__["activated"] = True
        gs.refcnt += 1
        gs.devs[(cfg.remote, cfg.vni)] = self
        self.gs = gs

    def stop(self) -> None:
        """``geneve_stop`` → ``geneve_sock_release``."""
        gs = self.gs
        if gs is not None:
            gs.devs.pop((self.cfg.remote, self.cfg.vni), None)
            gs.refcnt -= 1
            if gs.refcnt <= 0:
                udp_tunnel_sock_release(gs.sock)
                _socks(self.net).remove(gs)
        self.gs = None

    def _count(self, name: str) -> None:
        self.extra_stats[name] = self.extra_stats.get(name, 0) + 1

    # ---------------------------------------------------------------- transmit
    start_xmit = tunnel_start_xmit

    def _xmit(self, pkt: "Packet") -> None:
        """``geneve_xmit`` → ``geneve_xmit_skb``/``geneve6_xmit_skb``."""
        cfg = self.cfg
        net = self.net
        if self.gs is None or pkt.tail - pkt.data < 14:
            self.stats.tx_dropped += 1
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return
        pkt.mac_header = pkt.data
        inner_proto = (pkt.buf[pkt.data + 12] << 8) | pkt.buf[pkt.data + 13]
        if pkt.protocol == 0:
            pkt.protocol = inner_proto
        if pkt.network_header == UNSET or pkt.network_header < pkt.data:
            pkt.network_header = pkt.data + 14
        sport = udp_flow_src_port(net, pkt, 1, 0xFFFF, True)
        tos = cfg.tos
        if tos == 1:
            tos = ip_tunnel_get_dsfield(pkt, inner_proto)
        try:
            if cfg.ipv6:
                rt, saddr = tunnel_route6(net, cfg.remote, b"", 0, 17, sport, cfg.dst_port,
                                          pkt.mark)
            else:
                rt, saddr = tunnel_route4(net, cfg.remote, b"", 0, tos, 17, sport,
                                          cfg.dst_port, pkt.mark)
        except KernelError:
            tunnel_tx_no_route(self, pkt, net)
            return
        if tunnel_tx_loops(self, pkt, rt.dev, net):
            return
        tos = ip_tunnel_ecn_encap(tos, pkt, inner_proto)
        if pkt.trace is not None:
            # where the frame goes in the underlay: vni, remote/local, outer UDP ports,
            # the underlay output device (geneve_xmit_skb, drivers/net/geneve.c)
            from netstack.core.trace import fmt_addr
            pkt.trace.event(pkt, "geneve_xmit_skb", dev=self,
                            info=f"vni={cfg.vni} remote={fmt_addr(cfg.remote)} "
                            f"local={fmt_addr(saddr)} sport={sport} dport={cfg.dst_port} "
                            f"via={rt.dev.name}",
                            attrs={"vni": cfg.vni, "remote": fmt_addr(cfg.remote),
                                   "local": fmt_addr(saddr), "sport": sport,
                                   "dport": cfg.dst_port, "via": rt.dev.name})
        ttl = ip_tunnel_get_ttl(pkt, inner_proto) if cfg.ttl_inherit else cfg.ttl
        udp_sum = (not cfg.udp6_zero_csum_tx) if cfg.ipv6 else cfg.udp_csum
        # geneve_build_skb
        iptunnel_handle_offloads(pkt, SKB_GSO_UDP_TUNNEL_CSUM if udp_sum else
                                 SKB_GSO_UDP_TUNNEL)
        opts = geneve_opts_build(self.tx_options)
        hdr = geneve_header(cfg.vni, ETH_P_TEB, opts,
                            critical=any(o.critical for o in self.tx_options))
        o = pkt.push(len(hdr))
        pkt.buf[o:o + len(hdr)] = hdr
        skb_set_inner_protocol(pkt, ETH_P_TEB)
        if cfg.ipv6:
            from netstack.ipv6.ip6_output import ip6_dst_hoplimit
            ttl = ttl or ip6_dst_hoplimit(rt)
            udp_tunnel6_xmit_skb(rt, pkt, saddr, cfg.remote, tos, ttl, cfg.label, sport,
                                 cfg.dst_port, not udp_sum)
        else:
            from netstack.ipv4.ip_output import ip_select_ttl
            ttl = ttl or ip_select_ttl(net, rt)
            df = 0
            if cfg.df == GENEVE_DF_SET:
                df = IP_DF
            elif cfg.df == GENEVE_DF_INHERIT:
                nh = pkt.network_header
                if inner_proto == 0x86DD or (inner_proto == 0x0800 and pkt.buf[nh + 6] & 0x40):
                    df = IP_DF
            udp_tunnel_xmit_skb(rt, pkt, saddr, cfg.remote, tos, ttl, df, sport,
                                cfg.dst_port, False, not udp_sum)


def geneve_gro_receive(sock: UdpTunnelSock, napi: Any, head: list["Packet"],
                       pkt: "Packet") -> Any:
    """``geneve_gro_receive``: version 0 and not OAM; held packets stay the same flow only
    with an identical Geneve header (options included); TEB continues in
    ``eth_gro_receive``, other protocols in their own GRO handler."""
    from netstack.core.gro import (call_gro_receive, eth_gro_receive, gro_receive_by_type,
                                   skb_gro_postpull_rcsum, skb_gro_pull)
    cbp = pkt.cb
    off = cbp.off
    b = pkt.buf
    if pkt.tail - off < 8 or b[off] >> 6 != GENEVE_VER or b[off + 1] & 0x80:
        cbp.flush |= 1
        return None
    gh_len = 8 + (b[off] & 0x3F) * 4
    if pkt.tail - off < gh_len:
        cbp.flush |= 1
        return None
    udp_tunnel_gro_hdr_flows(head, pkt, off, gh_len)
    skb_gro_pull(pkt, gh_len)
    skb_gro_postpull_rcsum(pkt, off, gh_len)
    proto = (b[off + 2] << 8) | b[off + 3]
    if proto == ETH_P_TEB:
        return call_gro_receive(eth_gro_receive, napi, head, pkt)
    fn = gro_receive_by_type(proto)
    if fn is None:
        cbp.flush |= 1
        return None
    return call_gro_receive(fn, napi, head, pkt)


def geneve_gro_complete(sock: UdpTunnelSock, napi: Any, pkt: "Packet", nhoff: int) -> int:
    """``geneve_gro_complete``."""
    from netstack.core.gro import eth_gro_complete, gro_complete_by_type
    b = pkt.buf
    gh_len = 8 + (b[nhoff] & 0x3F) * 4
    proto = (b[nhoff + 2] << 8) | b[nhoff + 3]
    if proto == ETH_P_TEB:
        return eth_gro_complete(napi, pkt, nhoff + gh_len)
    fn = gro_complete_by_type(proto)
    err = fn(napi, pkt, nhoff + gh_len) if fn is not None else -1
    pkt.inner_mac_header = nhoff + gh_len
    return err


def geneve_udp_encap_recv(sock: UdpTunnelSock, pkt: "Packet") -> int:
    """``geneve_udp_encap_recv`` + ``geneve_rx``; ``pkt.data`` at the UDP header."""
    gs: GeneveSock = sock.user_data
    net = sock.net
    d = pkt.data
    b = pkt.buf
    if pkt.tail - d < GENEVE_BASE_HLEN:
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
        return 0
    g = d + 8
    if b[g] >> 6 != GENEVE_VER:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return 0
    nh = pkt.network_header
    if gs.family == AF_INET:
        saddr = bytes(b[nh + 12:nh + 16])
        outer_tos = b[nh + 1]
    else:
        saddr = bytes(b[nh + 8:nh + 24])
        outer_tos = ((b[nh] & 0x0F) << 4) | (b[nh + 1] >> 4)
    vni = int.from_bytes(b[g + 4:g + 7], "big")
    dev = gs.devs.get((saddr, vni))
    if dev is None:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return 0
    proto = (b[g + 2] << 8) | b[g + 3]
    if not dev.cfg.inner_proto_inherit and proto != ETH_P_TEB:
        dev.stats.rx_dropped += 1
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return 0
    opts_len = (b[g] & 0x3F) * 4
    critical = bool(b[g + 1] & 0x40)
    if not iptunnel_pull_header(pkt, GENEVE_BASE_HLEN + opts_len, proto, False,
                                dev.net is not net):
        dev.stats.rx_dropped += 1
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
        return 0
    if critical:
        dev._count("rx_frame_errors")
        dev.stats.rx_errors += 1
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return 0
    start = pkt.data
    pkt.protocol = eth_type_trans(pkt, dev)
    skb_postpull_rcsum(pkt, start, 14)
    if bytes(b[start + 6:start + 12]) == dev.address:
        dev.stats.rx_errors += 1
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return 0
    pkt.network_header = pkt.data
    proto_in = pkt.protocol
    need = 20 if proto_in == 0x0800 else 40 if proto_in == 0x86DD else 0
    if pkt.tail - pkt.data < need:
        # pskb_inet_may_pull
        dev._count("rx_length_errors")
        dev.stats.rx_errors += 1
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return 0
    if not ecn_decapsulate(pkt, outer_tos):
        dev._count("rx_frame_errors")
        dev.stats.rx_errors += 1
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return 0
    dev.stats.rx_packets += 1
    dev.stats.rx_bytes += pkt.tail - pkt.data
    if pkt.trace is not None:
        pkt.trace.event(pkt, "geneve_rx", info=f"vni={vni} dev={dev.name}")
    netif_rx(pkt)
    return 0


def geneve_newlink(net: Any, name: str, address: bytes, cfg: GeneveConfig, mtu: int | None,
                   ifindex: int = 0) -> GeneveDevice:
    """``geneve_newlink`` → ``geneve_configure``: a device with the same (remote, VNI,
    port) exists → EBUSY ("A geneve tunnel with the same VNI and remote already
    exists"); MTU default 1500 (``ETH_DATA_LEN``)."""
    for other in net.devices.values():
        if isinstance(other, GeneveDevice) and other.cfg.vni == cfg.vni and \
                other.cfg.remote == cfg.remote and other.cfg.dst_port == cfg.dst_port:
            raise KernelError(errno.EBUSY, "A geneve tunnel with the same VNI and remote already exists")
    dev = GeneveDevice(name, address, cfg)
    # geneve_setup: max_mtu = IP_MAX_MTU - GENEVE_BASE_HLEN - ETH_HLEN
    dev.max_mtu = 65535 - 8 - 14
    # geneve_link_config: the MTU of the device the remote is routed through, minus the
    # outer headers (GENEVE_IPV4_HLEN / GENEVE_IPV6_HLEN incl. the Ethernet header)
    hr = GENEVE_HEADROOM_V6 if cfg.ipv6 else GENEVE_HEADROOM_V4
    try:
        rt = (tunnel_route6(net, cfg.remote, b"", 0, 17)[0] if cfg.ipv6 else
              tunnel_route4(net, cfg.remote, b"", 0, 0, 17)[0]) if cfg.remote else None
    except KernelError:
        rt = None
    if rt is not None and rt.dev is not None and rt.dev.name != "lo":
        dev.mtu = max(rt.dev.mtu - hr, 68)
    if mtu is not None:
        if mtu < 68 or mtu > dev.max_mtu:
            raise KernelError(errno.EINVAL)
        dev.mtu = mtu
    net.register_netdevice(dev, ifindex=ifindex)
    return dev


def geneve_link_mtu(net: Any, cfg: GeneveConfig) -> int | None:
    """``geneve_link_config`` without IFLA_MTU: the MTU of the device the remote is
    routed through minus the outer headers, or None when there is no such device."""
    hr = GENEVE_HEADROOM_V6 if cfg.ipv6 else GENEVE_HEADROOM_V4
    try:
        rt = (tunnel_route6(net, cfg.remote, b"", 0, 17)[0] if cfg.ipv6 else
              tunnel_route4(net, cfg.remote, b"", 0, 0, 17)[0]) if cfg.remote else None
    except KernelError:
        return None
    if rt is None or rt.dev is None or rt.dev.name == "lo":
        return None
    return int(rt.dev.mtu) - hr
