"""Foo-over-UDP and Generic UDP Encapsulation (net/ipv4/fou_core.c, include/net/gue.h,
draft-ietf-intarea-gue, draft-herbert-remotecsumoffload; Linux 6.18).

Receive side: ``ip fou add port P ipproto N`` opens a UDP tunnel socket whose
``encap_rcv`` (``fou_udp_recv``) strips the UDP header, lowers the outer IPv4 total
length by 8 (the header checksum is left as is, as the kernel does) and resubmits the
payload to IP protocol N.  ``ip fou add port P gue`` (``gue_udp_recv``): version 1 is a
bare IPv4/IPv6 packet (protocol 4/41); version 0 carries ``C|Hlen|Proto|Flags`` plus
options — unknown flags, unknown private flags, or options longer than Hlen are drops; a
control message (C) is dropped ("no support yet"); the private REMCSUM option restores the
inner checksum
(``gue_remcsum`` → ``skb_remcsum_process``).

Transmit side (``ip link … encap fou|gue encap-sport auto|P encap-dport P
[no]encap-csum [no]encap-remcsum``): ``fou_build_header``/``gue_build_header`` push
the UDP (and GUE) header under the tunnel's IP header.  As in the kernel the outer UDP
checksum uses the tunnel's configured ``local`` address (the flow's saddr before the
route lookup): without ``local`` the pseudo header has 0.0.0.0 and the receiver will
reject a checksummed packet — a kernel quirk kept on purpose.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import consume_skb, kfree_skb_reason
from netstack.core.skb_csum import (skb_postpull_rcsum, skb_remcsum_process, udp6_set_csum,
                                    udp_set_csum)
from netstack.errors import KernelError
from netstack.ipv4.ip_tunnel_core import (TUNNEL_ENCAP_FLAG_CSUM, TUNNEL_ENCAP_FLAG_CSUM6,
                                          TUNNEL_ENCAP_FLAG_REMCSUM,
                                          TUNNEL_ENCAP_FOU, TUNNEL_ENCAP_GUE, TunnelEncap,
                                          iptunnel_handle_offloads)
from netstack.ipv4.udp_tunnel import (AF_INET, UdpTunnelSock, push_udp_header,
                                      setup_udp_tunnel_sock, udp_flow_src_port,
                                      udp_tunnel_sock_release)
from netstack.packet.skb import (CHECKSUM_NONE, CHECKSUM_PARTIAL, SKB_GSO_TUNNEL_REMCSUM,
                                 SKB_GSO_UDP_TUNNEL, SKB_GSO_UDP_TUNNEL_CSUM)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

# include/net/gue.h
GUE_FLAG_PRIV = 0x0001          # htons(1 << 0)
GUE_FLAGS_ALL = GUE_FLAG_PRIV
GUE_LEN_PRIV = 4
GUE_PFLAG_REMCSUM = 0x80000000  # htonl(1U << 31)
GUE_PFLAGS_ALL = GUE_PFLAG_REMCSUM
GUE_PLEN_REMCSUM = 4
GUE_HLEN = 4

# include/uapi/linux/fou.h
FOU_ENCAP_UNSPEC = 0
FOU_ENCAP_DIRECT = 1
FOU_ENCAP_GUE = 2
FOU_F_REMCSUM_NOPARTIAL = 1 << 0

IPPROTO_IPIP = 4
IPPROTO_IPV6 = 41


# ----------------------------------------------------------------------- codec
def gue_header(proto: int, control: bool = False, options: bytes = b"", flags: int = 0,
               version: int = 0) -> bytes:
    """``struct guehdr``: ``Ver(2)|C(1)|Hlen(5)`` (Hlen in 4-byte words), proto/ctype,
    flags (network order), then the options."""
    if len(options) % 4 or len(options) > 31 * 4:
        raise ValueError("GUE options must be a multiple of 4 bytes, at most 124")
    b0 = ((version & 3) << 6) | (0x20 if control else 0) | (len(options) >> 2)
    return bytes((b0, proto & 0xFF)) + flags.to_bytes(2, "big") + options


def validate_gue_flags(flags: int, options: bytes | bytearray | memoryview) -> bool:
    """``validate_gue_flags`` (include/net/gue.h): True when the flags are acceptable:
    only known flags, and the flag fields (and private-flag fields) fit in Hlen."""
    optlen = len(options)
    if flags & ~GUE_FLAGS_ALL:
        return False
    length = GUE_LEN_PRIV if flags & GUE_FLAG_PRIV else 0
    if length > optlen:
        return False
    if flags & GUE_FLAG_PRIV:
        pflags = int.from_bytes(options[length - GUE_LEN_PRIV:length], "big")
        if pflags & ~GUE_PFLAGS_ALL:
            return False
        length += GUE_PLEN_REMCSUM if pflags & GUE_PFLAG_REMCSUM else 0
        if length > optlen:
            return False
    return True


# ------------------------------------------------------------------ FOU socket
@dataclass
class Fou:
    """``struct fou``: one ``ip fou add`` mapping."""

    port: int
    family: int
    type: int              # FOU_ENCAP_DIRECT / FOU_ENCAP_GUE
    protocol: int = 0
    flags: int = 0
    local: bytes = b""
    peer: bytes = b""
    peer_port: int = 0
    ifindex: int = 0
    sock: UdpTunnelSock | None = None


def fous(net: Any) -> list[Fou]:
    """The namespace's ``fou_net->fou_list`` (newest last, as list_add_tail)."""
    lst = net.proto.get("fou_list")
    if lst is None:
        lst = net.proto["fou_list"] = []
    return lst


def fou_create(net: Any, cfg: Fou) -> Fou:
    """``fou_create``: EALREADY for a port (and family/addresses) already mapped;
    EINVAL for a FOU mapping without a protocol."""
    for f in fous(net):
        if f.port == cfg.port and f.family == cfg.family and f.local == cfg.local and \
                f.peer == cfg.peer and f.peer_port == cfg.peer_port and \
                f.ifindex == cfg.ifindex:
            raise KernelError(errno.EALREADY)
    if cfg.type == FOU_ENCAP_DIRECT and not cfg.protocol:
        raise KernelError(errno.EINVAL)
    direct = cfg.type == FOU_ENCAP_DIRECT
    sock = UdpTunnelSock(net, cfg.family, cfg.port, fou_udp_recv if direct else gue_udp_recv,
                         user_data=cfg, local=cfg.local, bound_dev_if=cfg.ifindex,
                         peer=cfg.peer, peer_port=cfg.peer_port,
                         gro_receive=fou_gro_receive if direct else gue_gro_receive,
                         gro_complete=fou_gro_complete if direct else gue_gro_complete)
    setup_udp_tunnel_sock(sock)
    cfg.sock = sock
    fous(net).append(cfg)
    return cfg


def fou_destroy(net: Any, port: int, family: int, local: bytes = b"", peer: bytes = b"",
                peer_port: int = 0, ifindex: int = 0) -> None:
    """``fou_destroy``: ENOENT ("fou: port not found" is printed by nobody: plain errno)."""
    for f in fous(net):
        if f.port == port and f.family == family and f.local == local and f.peer == peer \
                and f.peer_port == peer_port and f.ifindex == ifindex:
            if f.sock is not None:
                udp_tunnel_sock_release(f.sock)
            fous(net).remove(f)
            return
    raise KernelError(errno.ENOENT)


def _shorten_outer(pkt: "Packet", fou: Fou, length: int) -> None:
    """Take the ``length`` bytes FOU/GUE remove off the outer header's length field:
    IPv4 ``tot_len`` or IPv6 ``payload_len`` (``fou_recv_pull``, ``gue_udp_recv``)."""
    nh = pkt.network_header
    b = pkt.buf
    if fou.family == AF_INET:
        tot = ((b[nh + 2] << 8) | b[nh + 3]) - length
        b[nh + 2] = (tot >> 8) & 0xFF
        b[nh + 3] = tot & 0xFF
    else:
        pl = ((b[nh + 4] << 8) | b[nh + 5]) - length
        b[nh + 4] = (pl >> 8) & 0xFF
        b[nh + 5] = pl & 0xFF


def _recv_pull(pkt: "Packet", fou: Fou, length: int) -> None:
    """``fou_recv_pull``: shorten the outer IPv4 total length, pull ``length`` bytes."""
    _shorten_outer(pkt, fou, length)
    start = pkt.data
    pkt.pull(length)
    skb_postpull_rcsum(pkt, start, length)
    pkt.transport_header = pkt.data


def fou_udp_recv(sock: UdpTunnelSock, pkt: "Packet") -> int:
    """``fou_udp_recv``: the payload is a bare packet of the mapping's protocol."""
    fou: Fou = sock.user_data
    _recv_pull(pkt, fou, 8)
    return fou.protocol


def gue_udp_recv(sock: UdpTunnelSock, pkt: "Packet") -> int:
    """``gue_udp_recv``; returns the inner protocol to resubmit, or 0 when the packet
    was consumed or dropped here."""
    fou: Fou = sock.user_data
    net = sock.net
    d = pkt.data
    b = pkt.buf
    length = 8 + GUE_HLEN
    if pkt.tail - d < length:
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
        return 0
    g = d + 8
    version = b[g] >> 6
    if version == 1:
        # direct encapsulation of IPv4 or IPv6: the "header" is the inner IP version nibble
        ipver = b[g] >> 4
        if ipver == 4:
            _recv_pull(pkt, fou, 8)
            return IPPROTO_IPIP
        if ipver == 6:
            _recv_pull(pkt, fou, 8)
            return IPPROTO_IPV6
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return 0
    if version != 0:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return 0
    optlen = (b[g] & 0x1F) << 2
    length += optlen
    if pkt.tail - d < length:
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
        return 0
    flags = (b[g + 2] << 8) | b[g + 3]
    opts = b[g + 4:g + 4 + optlen]
    if not validate_gue_flags(flags, opts):
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return 0
    hdrlen = GUE_HLEN + optlen
    _shorten_outer(pkt, fou, length)
    skb_postpull_rcsum(pkt, d, length)
    if flags & GUE_FLAG_PRIV:
        pflags = int.from_bytes(b[g + 4:g + 8], "big")
        if pflags & GUE_PFLAG_REMCSUM and not pkt.__dict__.get("remcsum_offload"):
            start = (b[g + 8] << 8) | b[g + 9]
            offset = (b[g + 10] << 8) | b[g + 11]
            plen = 8 + hdrlen + max(offset + 2, start)
            if pkt.tail - d < plen:
                kfree_skb_reason(pkt, "PKT_TOO_SMALL", net)
                return 0
            skb_remcsum_process(pkt, g + hdrlen, start, offset,
                                bool(fou.flags & FOU_F_REMCSUM_NOPARTIAL))
    if b[g] & 0x20:
        # gue_control_message: "No support yet" — freed with kfree_skb
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return 0
    proto = b[g + 1]
    pkt.pull(8 + hdrlen)
    pkt.transport_header = pkt.data
    return proto if proto else _drop_zero(pkt, net)


def _drop_zero(pkt: "Packet", net: Any) -> int:
    """Protocol 0 would be "consumed" by the kernel's ``-0`` return (ret <= 0): the
    packet is then leaked to nobody; netstack frees it as consumed."""
    consume_skb(pkt, "gue_udp_recv")
    return 0


# ------------------------------------------------------------------------- TX
def tunnel_encap_sport(pkt: "Packet", e: TunnelEncap) -> int:
    """``__fou_build_header``/``__gue_build_header``: ``encap-sport`` or the flow hash
    over the local port range (``udp_flow_src_port(net, skb, 0, 0, false)``)."""
    if e.sport:
        return e.sport
    net = pkt.dev.net if pkt.dev is not None else None
    return udp_flow_src_port(net, pkt, 0, 0, False)


def ip_tunnel_encap(pkt: "Packet", e: TunnelEncap, protocol: int, saddr: bytes, daddr: bytes,
                    sport: int, v6: bool = False) -> int:
    """``ip_tunnel_encap`` → ``fou_build_header``/``gue_build_header`` (or, ``v6``,
    ``ip6_tnl_encap`` → net/ipv6/fou6.c ``fou6_build_header``/``gue6_build_header``):
    push GUE (if any) and UDP, set the outer checksum; returns the new outer protocol (17)
    or -1 (``-EINVAL``: RCO with a checksum start inside the GUE header).  Over IPv6 the
    checksum is governed by ``encap-csum6`` (TUNNEL_ENCAP_FLAG_CSUM6, iproute2's default
    for ip6tnl/ip6gre) and computed with ``udp6_set_csum``."""
    csum = bool(e.flags & (TUNNEL_ENCAP_FLAG_CSUM6 if v6 else TUNNEL_ENCAP_FLAG_CSUM))
    gso = SKB_GSO_UDP_TUNNEL_CSUM if csum else SKB_GSO_UDP_TUNNEL
    if e.type == TUNNEL_ENCAP_FOU:
        iptunnel_handle_offloads(pkt, gso)
    elif e.type == TUNNEL_ENCAP_GUE:
        optlen = 0
        need_priv = False
        if e.flags & TUNNEL_ENCAP_FLAG_REMCSUM and pkt.ip_summed == CHECKSUM_PARTIAL:
            optlen += GUE_PLEN_REMCSUM
            gso |= SKB_GSO_TUNNEL_REMCSUM
            need_priv = True
        optlen += GUE_LEN_PRIV if need_priv else 0
        iptunnel_handle_offloads(pkt, gso)
        hdrlen = GUE_HLEN + optlen
        o = pkt.push(hdrlen)
        b = pkt.buf
        b[o] = optlen >> 2
        b[o + 1] = protocol
        b[o + 2] = 0
        b[o + 3] = GUE_FLAG_PRIV if need_priv else 0
        if need_priv:
            pflags = 0
            if gso & SKB_GSO_TUNNEL_REMCSUM:
                cs = pkt.csum_start - pkt.data
                if cs < hdrlen:
                    return -1
                cs -= hdrlen
                b[o + 8:o + 10] = cs.to_bytes(2, "big")
                b[o + 10:o + 12] = (cs + pkt.csum_offset).to_bytes(2, "big")
                if not pkt.gso_size:
                    pkt.ip_summed = CHECKSUM_NONE
                    pkt.encapsulation = False
                pflags |= GUE_PFLAG_REMCSUM
            b[o + 4:o + 8] = pflags.to_bytes(4, "big")
    else:
        return protocol
    n = push_udp_header(pkt, sport, e.dport)
    if v6:
        udp6_set_csum(not csum, pkt, saddr, daddr, n)
    else:
        udp_set_csum(not csum, pkt, saddr, daddr, n)
    return 17


# ------------------------------------------------------------------------ GRO
def fou_gro_receive(sock: UdpTunnelSock, napi: Any, head: list["Packet"], pkt: "Packet") -> Any:
    """``fou_gro_receive``: the payload goes straight to the mapped protocol's GRO
    handler, with ``encap_mark`` cleared and ``is_fou`` set (FOU is the outer encap)."""
    from netstack.core.gro import _l4_receive, call_gro_receive
    fou: Fou = sock.user_data
    cbp = pkt.cb
    cbp.encap_mark = False
    cbp.is_fou = True
    fn = _l4_receive(fou.protocol, cbp.is_ipv6)
    if fn is None:
        cbp.flush |= 1
        return None
    return call_gro_receive(fn, napi, head, pkt)


def fou_gro_complete(sock: UdpTunnelSock, napi: Any, pkt: "Packet", nhoff: int) -> int:
    """``fou_gro_complete``."""
    from netstack.core.gro import _l4_complete
    fou: Fou = sock.user_data
    fn = _l4_complete(fou.protocol, False)
    err = fn(napi, pkt, nhoff) if fn is not None else -1
    pkt.inner_mac_header = nhoff
    return err


def gue_gro_receive(sock: UdpTunnelSock, napi: Any, head: list["Packet"], pkt: "Packet") -> Any:
    """``gue_gro_receive``: v1 goes to IPIP/IPv6 without a pull; v0 must be a data message
    with valid flags, held packets stay the same flow only with the same GUE word and
    options.  A GUE-RCO packet goes through ``gue_gro_remcsum`` (a validated outer
    checksum is required, else it is flushed): see
    :func:`netstack.ipv4.udp_tunnel.skb_gro_remcsum_process`."""
    from netstack.core.gro import _l4_receive, call_gro_receive, skb_gro_postpull_rcsum, skb_gro_pull
    from netstack.ipv4.udp_tunnel import (GroRemcsum, skb_gro_remcsum_cleanup,
                                          skb_gro_remcsum_process, udp_tunnel_gro_hdr_flows)
    grc = GroRemcsum()
    cbp = pkt.cb
    off = cbp.off
    b = pkt.buf
    if pkt.tail - off < GUE_HLEN:
        cbp.flush |= 1
        return None
    version = b[off] >> 6
    if version == 1:
        ipver = b[off] >> 4
        proto = IPPROTO_IPIP if ipver == 4 else IPPROTO_IPV6 if ipver == 6 else -1
        if proto < 0:
            cbp.flush |= 1
            return None
    elif version == 0:
        optlen = (b[off] & 0x1F) << 2
        hdrlen = GUE_HLEN + optlen
        flags = (b[off + 2] << 8) | b[off + 3]
        opts = b[off + 4:off + hdrlen]
        if pkt.tail - off < hdrlen or b[off] & 0x20 or not validate_gue_flags(flags, opts):
            cbp.flush |= 1
            return None
        skb_gro_postpull_rcsum(pkt, off, hdrlen)
        if flags & GUE_FLAG_PRIV and int.from_bytes(opts[:4], "big") & GUE_PFLAG_REMCSUM \
                and not pkt.__dict__.get("remcsum_offload"):
            # gue_gro_remcsum: start/offset follow the private flags word
            fou: Fou = sock.user_data
            start = (b[off + 8] << 8) | b[off + 9]
            offset = (b[off + 10] << 8) | b[off + 11]
            if not cbp.csum_valid or not skb_gro_remcsum_process(
                    pkt, off, hdrlen, start, offset, grc,
                    bool(fou.flags & FOU_F_REMCSUM_NOPARTIAL)):
                cbp.flush |= 1
                return None
        skb_gro_pull(pkt, hdrlen)
        udp_tunnel_gro_hdr_flows(head, pkt, off, hdrlen)
        proto = b[off + 1]
    else:
        cbp.flush |= 1
        return None
    cbp.encap_mark = False
    cbp.is_fou = True
    fn = _l4_receive(proto, cbp.is_ipv6)
    if fn is None:
        cbp.flush |= 1
        skb_gro_remcsum_cleanup(pkt, grc)
        return None
    pp = call_gro_receive(fn, napi, head, pkt)
    skb_gro_remcsum_cleanup(pkt, grc)
    return pp


def gue_gro_complete(sock: UdpTunnelSock, napi: Any, pkt: "Packet", nhoff: int) -> int:
    """``gue_gro_complete``."""
    from netstack.core.gro import _l4_complete
    b = pkt.buf
    version = b[nhoff] >> 6
    if version == 0:
        proto = b[nhoff + 1]
        hlen = GUE_HLEN + ((b[nhoff] & 0x1F) << 2)
    elif version == 1:
        ipver = b[nhoff] >> 4
        if ipver not in (4, 6):
            return -1
        proto = IPPROTO_IPIP if ipver == 4 else IPPROTO_IPV6
        hlen = 0
    else:
        return -1
    fn = _l4_complete(proto, False)
    err = fn(napi, pkt, nhoff + hlen) if fn is not None else -1
    pkt.inner_mac_header = nhoff + hlen
    return err
