"""UDP tunnel sockets and transmit (net/ipv4/udp_tunnel_core.c, net/ipv6/ip6_udp_tunnel.c,
include/net/udp_tunnel.h, include/net/udp.h ``udp_flow_src_port``).

Why a registry instead of ordinary sockets: a kernel tunnel (vxlan, geneve, fou/gue) opens
a kernel UDP socket and turns it into an encapsulation socket with
``setup_udp_tunnel_sock`` — ``encap_type``, ``encap_rcv`` (called by
``udp_queue_rcv_one_skb`` instead of queueing), ``gro_receive``/``gro_complete`` for UDP
tunnel GRO.  Netstack keeps these per namespace in ``net.proto["udp_tunnel"]``, keyed by
(family, port); ``udp_rcv``/``udpv6_rcv`` look there first, as the kernel's socket lookup
would find the tunnel's wildcard-bound socket.

``encap_rcv(sock, pkt) -> int`` follows the kernel's return convention: ``<= 0`` means the
packet was consumed (counted as InDatagrams by the caller), ``> 0`` means "resubmit the
payload to IP protocol N" (FOU returns ``-proto`` in the kernel; netstack's callers take
the positive protocol number).

Transmit: :func:`udp_tunnel_xmit_skb` / :func:`udp_tunnel6_xmit_skb` push the UDP header
over an already-built tunnel payload, set the outer checksum with OFF's ``udp_set_csum``
(LCO when the inner checksum is PARTIAL, otherwise the outer one becomes the PARTIAL one)
and hand over to ``iptunnel_xmit`` / ``ip6tunnel_xmit``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from netstack.core.skb_csum import udp6_set_csum, udp_set_csum
from netstack.errors import KernelError
from netstack.packet.flow_dissector import skb_get_hash
from netstack.packet.flow_dissector import udp_flow_src_port as _flow_src_port
from netstack.packet.skb import UNSET

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

AF_INET = 2
AF_INET6 = 10

# include/uapi/linux/udp.h UDP_ENCAP_* (what setup_udp_tunnel_sock stores in encap_type)
UDP_ENCAP_ESPINUDP = 2
UDP_ENCAP_L2TPINUDP = 3
UDP_ENCAP_GTP0 = 4
UDP_ENCAP_GTP1U = 5
UDP_ENCAP_RXRPC = 6
#: vxlan, geneve and fou all use encap_type 1 ("UDP_ENCAP_ESPINUDP_NON_IKE" value), as
#: ``setup_udp_tunnel_sock`` callers in drivers/net/vxlan and geneve.c do.
UDP_TUNNEL_ENCAP_TYPE = 1

EncapRcv = Callable[["UdpTunnelSock", "Packet"], int]


@dataclass
class UdpTunnelSock:
    """A kernel UDP socket after ``setup_udp_tunnel_sock`` (``struct udp_tunnel_sock_cfg``)."""

    net: "Net"
    family: int
    port: int
    encap_rcv: EncapRcv
    encap_type: int = UDP_TUNNEL_ENCAP_TYPE
    #: ``sk_user_data``: the vxlan_sock / geneve_sock / fou object
    user_data: Any = None
    gro_receive: Callable[..., Any] | None = None
    gro_complete: Callable[..., Any] | None = None
    encap_err_lookup: Callable[..., Any] | None = None
    #: UDP_NO_CHECK6_RX as the tunnel configured it (udp6zerocsumrx); shown by the
    #: device, not consulted on receive (see :func:`udp_tunnel_rcv`)
    no_check6_rx: bool = False
    #: UDP_NO_CHECK6_TX
    no_check6_tx: bool = False
    #: ``inet_set_convert_csum`` (``skb_checksum_try_convert`` on receive)
    convert_csum: bool = True
    #: bound local address (empty: wildcard, as vxlan/geneve/fou bind)
    local: bytes = b""
    bound_dev_if: int = 0
    #: connected peer (``udp_sock_create`` with ``peer_ip``/``peer_udp_port``: ``ip fou
    #: add … peer A peer_port P``): only datagrams from there match
    peer: bytes = b""
    peer_port: int = 0
    stats: dict[str, int] = field(default_factory=dict)


def _registry(net: "Net") -> dict[tuple[int, int], list[UdpTunnelSock]]:
    reg = net.proto.get("udp_tunnel")
    if reg is None:
        reg = net.proto["udp_tunnel"] = {}
    return reg


def setup_udp_tunnel_sock(sock: UdpTunnelSock) -> UdpTunnelSock:
    """``udp_sock_create`` + ``setup_udp_tunnel_sock``: bind the port (EADDRINUSE if a
    tunnel socket already holds it with an overlapping address) and register the
    encapsulation callbacks."""
    import errno
    socks = _registry(sock.net).setdefault((sock.family, sock.port), [])
    for s in socks:
        if not s.local or not sock.local or s.local == sock.local:
            raise KernelError(errno.EADDRINUSE)
    if _user_socket_on(sock.net, sock.family, sock.port, sock.local):
        # udp_lib_get_port: an application socket already holds the port
        raise KernelError(errno.EADDRINUSE)
    socks.append(sock)
    sock.net.proto["udp_encap_needed"] = True
    return sock


def udp_tunnel_dev_sock_setup(dev: Any, sock: UdpTunnelSock) -> None:
    """:func:`setup_udp_tunnel_sock` from a tunnel device's ``ndo_open`` (``vxlan_open``,
    ``geneve_open``): when the port cannot be bound, ``__dev_open`` leaves the device
    down (no ``IFF_UP``) and no qdisc is attached unless one was before, and the error
    reaches the caller (net/core/dev.c)."""
    try:
        setup_udp_tunnel_sock(sock)
    except KernelError:
        dev.flags &= ~0x1
        dev.qdisc_attached = dev.__dict__.get("activated", False)
        raise


def _user_socket_on(net: "Net", family: int, port: int, local: bytes) -> bool:
    """Is an ordinary UDP socket bound to ``port`` with an overlapping address?"""
    if family == AF_INET:
        for u in getattr(net.ipv4, "udp_sockets", ()):
            if u.num == port and (not local or u.rcv_saddr in (b"\0\0\0\0", local)):
                return True
        return False
    for u in (getattr(net.ipv6, "udp_socks", {}) or {}).get(port, ()):
        if not local or not any(u.laddr) or u.laddr == local:
            return True
    return False


def tunnel_port_in_use(net: "Net", family: int, port: int, local: bytes) -> bool:
    """For ``bind()``: does a tunnel socket hold ``port`` with an overlapping address
    (the kernel's tunnel sockets are ordinary UDP sockets in the same hash)?"""
    reg = net.proto.get("udp_tunnel")
    if not reg:
        return False
    for s in reg.get((family, port), ()):
        if not s.local or not local or not any(local) or s.local == local:
            return True
    return False


def udp_tunnel_sock_release(sock: UdpTunnelSock) -> None:
    """``udp_tunnel_sock_release``: unhash the socket."""
    reg = _registry(sock.net)
    socks = reg.get((sock.family, sock.port))
    if socks and sock in socks:
        socks.remove(sock)
        if not socks:
            del reg[(sock.family, sock.port)]


def udp_tunnel_lookup(net: "Net", family: int, port: int, daddr: bytes,
                      dif: int = 0, saddr: bytes = b"", sport: int = 0) -> UdpTunnelSock | None:
    """The tunnel socket that ``__udp4_lib_lookup``/``__udp6_lib_lookup`` would pick for a
    datagram from ``saddr``:``sport`` to ``daddr``:``port``: ``compute_score`` — every
    bound field (local address, connected peer address and port, device) must match and
    adds to the score; the highest score wins, the first registered on a tie."""
    reg = net.proto.get("udp_tunnel")
    if not reg:
        return None
    socks = reg.get((family, port))
    if not socks:
        return None
    best = None
    best_score = -1
    for s in socks:
        score = 0
        if s.bound_dev_if:
            if s.bound_dev_if != dif:
                continue
            score += 4
        if s.local:
            if s.local != daddr:
                continue
            score += 4
        if s.peer:
            if s.peer != saddr:
                continue
            score += 4
        if s.peer_port:
            if s.peer_port != sport:
                continue
            score += 4
        if score > best_score:
            best, best_score = s, score
    return best


def udp_tunnel_socks(net: "Net") -> list[UdpTunnelSock]:
    """All tunnel sockets of the namespace."""
    reg = net.proto.get("udp_tunnel") or {}
    return [s for lst in reg.values() for s in lst]


# ------------------------------------------------------------------ source port
def skb_flow_hash(pkt: "Packet") -> int:
    """``skb_get_hash`` of a packet whose ``data`` is at the inner Ethernet (or L3) header:
    a cached ``pkt.hash`` is reused (as the kernel reuses ``skb->hash``), otherwise the
    flow dissector's siphash over the namespace's ``hash_secret`` (``hashrnd``)."""
    if pkt.hash:
        return pkt.hash
    net = pkt.dev.net if pkt.dev is not None else None
    secret = net.hash_secret if net is not None else bytes(16)
    nh = pkt.network_header
    if nh != UNSET and pkt.protocol and nh >= pkt.data:
        # __skb_flow_dissect(skb, …): from the network header, with skb->protocol
        h = skb_get_hash(bytes(pkt.buf[nh:pkt.tail]), secret, proto=pkt.protocol)
    else:
        mh = pkt.mac_header if pkt.mac_header != UNSET else pkt.data
        h = skb_get_hash(bytes(pkt.buf[mh:pkt.tail]), secret)
    pkt.hash = h
    pkt.sw_hash = True
    return h


def udp_flow_src_port(net: "Net", pkt: "Packet", lo: int, hi: int, use_eth: bool) -> int:
    """``udp_flow_src_port`` (include/net/udp.h): the outer source port from the inner
    flow hash — symmetric and a function of the flow alone — scaled into [lo, hi); lo >= hi
    means the namespace's ``ip_local_port_range``.  A zero hash (nothing dissectable) falls
    back to ``jhash`` of the Ethernet addresses with ``use_eth`` — never reached in
    practice since ``__flow_hash_from_keys`` never returns 0."""
    h = skb_flow_hash(pkt)
    rng = str(net.sysctl.values.get("net.ipv4.ip_local_port_range", "32768 60999")).split()
    eth = None
    if use_eth and pkt.mac_header != UNSET:
        eth = bytes(pkt.buf[pkt.mac_header:pkt.mac_header + 12])
    return _flow_src_port(h, lo, hi, local_port_range=(int(rng[0]), int(rng[1])),
                          eth_header=eth, protocol=pkt.protocol,
                          fallback=int.from_bytes(net.hash_secret[:4], "big"))


# --------------------------------------------------------------------- transmit
def push_udp_header(pkt: "Packet", sport: int, dport: int) -> int:
    """``__skb_push`` + ``skb_reset_transport_header`` + the four UDP fields; returns
    the UDP length."""
    o = pkt.push(8)
    pkt.transport_header = o
    n = pkt.tail - o
    b = pkt.buf
    b[o] = sport >> 8
    b[o + 1] = sport & 0xFF
    b[o + 2] = dport >> 8
    b[o + 3] = dport & 0xFF
    b[o + 4] = (n >> 8) & 0xFF
    b[o + 5] = n & 0xFF
    b[o + 6] = 0
    b[o + 7] = 0
    return n


def udp_tunnel_xmit_skb(rt: Any, pkt: "Packet", src: bytes, dst: bytes, tos: int, ttl: int,
                        df: int, sport: int, dport: int, xnet: bool, nocheck: bool) -> None:
    """``udp_tunnel_xmit_skb``: UDP header, ``udp_set_csum``, ``iptunnel_xmit``."""
    from netstack.ipv4.ip_tunnel_core import iptunnel_xmit
    n = push_udp_header(pkt, sport, dport)
    udp_set_csum(nocheck, pkt, src, dst, n)
    iptunnel_xmit(rt, pkt, src, dst, 17, tos, ttl, df, xnet)


def udp_tunnel6_xmit_skb(dst_entry: Any, pkt: "Packet", saddr: bytes, daddr: bytes,
                         prio: int, ttl: int, label: int, sport: int, dport: int,
                         nocheck: bool) -> None:
    """``udp_tunnel6_xmit_skb`` (net/ipv6/ip6_udp_tunnel.c): UDP header,
    ``udp6_set_csum``, then the IPv6 header (``ip6_flow_hdr(prio, label)``, hop limit,
    nexthdr UDP) and ``ip6tunnel_xmit``."""
    from netstack.ipv4.ip_tunnel_core import ip6tunnel_xmit
    n = push_udp_header(pkt, sport, dport)
    udp6_set_csum(nocheck, pkt, saddr, daddr, n)
    ip6tunnel_xmit(dst_entry, pkt, saddr, daddr, 17, prio, ttl, label)


# ---------------------------------------------------------------------- receive
def udp_tunnel_rcv(sock: UdpTunnelSock, pkt: "Packet") -> None:
    """The part of ``__udp4_lib_rcv``/``__udp6_lib_rcv`` → ``udp_queue_rcv_one_skb`` that
    an encapsulation socket takes, for a datagram already trimmed to its UDP length with
    ``pkt.data`` at the UDP header:

    * ``udp4_csum_init``/``udp6_csum_init`` (``skb_checksum_init_zero_check``).  Over IPv6
      a zero checksum reaching a tunnel socket is accepted whatever UDP_NO_CHECK6_RX
      says: measured on Linux 6.18, a VXLAN device without ``udp6zerocsumrx`` delivers
      a zero-checksum IPv6 datagram (Udp6InDatagrams +1, no InCsumErrors), so the
      zero check of ``__udp6_lib_rcv`` does not apply to encapsulation sockets there;
    * ``skb_checksum_try_convert`` (``convert_csum``, non-zero field);
    * ``udp_lib_checksum_complete`` (a bad sum: UdpInCsumErrors, InErrors, UDP_CSUM);
    * a datagram no longer than the UDP header is left to plain UDP (consumed by the
      tunnel socket's queue, never read);
    * ``encap_rcv``: ``<= 0`` consumed (UdpInDatagrams), ``> 0`` resubmitted to that IP
      protocol (``ip_protocol_deliver_rcu``'s resubmit, FOU)."""
    from netstack.core.drop_reason import consume_skb, kfree_skb_reason
    from netstack.core.skb_csum import (inet_compute_pseudo, ip6_compute_pseudo,
                                        skb_checksum_complete, skb_checksum_complete_unset,
                                        skb_checksum_init_zero_check, skb_checksum_try_convert)
    from netstack.packet.skb import CHECKSUM_COMPLETE
    net = sock.net
    v6 = sock.family == AF_INET6
    mib = net.ipv6.mib if v6 else net.ipv4.mib
    b = pkt.buf
    d = pkt.data
    check = (b[d + 6] << 8) | b[d + 7]
    pseudo = ip6_compute_pseudo if v6 else inet_compute_pseudo

    def csum_error() -> None:
        mib["UdpInCsumErrors"] += 1
        mib["UdpInErrors"] += 1
        kfree_skb_reason(pkt, "UDP_CSUM", net)

    if skb_checksum_init_zero_check(pkt, 17, check, pseudo):
        csum_error()
        return
    if pkt.ip_summed == CHECKSUM_COMPLETE and not pkt.csum_valid:
        if pkt.__dict__.get("csum_complete_sw"):
            csum_error()
            return
        skb_checksum_complete_unset(pkt)
    if sock.convert_csum and check:
        skb_checksum_try_convert(pkt, 17, pseudo)
    if pkt.tail - d <= 8:
        mib["UdpInDatagrams"] += 1
        consume_skb(pkt, "udp_queue_rcv_one_skb")
        return
    if skb_checksum_complete(pkt):
        csum_error()
        return
    if pkt.trace is not None:
        pkt.trace.event(pkt, "udp_queue_rcv_one_skb", info=f"encap_rcv port={sock.port}")
    ret = sock.encap_rcv(sock, pkt)
    if ret <= 0:
        mib["UdpInDatagrams"] += 1
        return
    if v6:
        # ip6_protocol_deliver_rcu: a FINAL protocol (UDP) returning > 0 resubmits the
        # packet to that next header ("resubmit_final"); InDelivers is counted once
        from netstack.ipv6.ip6_input import _deliver_final
        _deliver_final(pkt, net, ret)
        net.ipv6.mib["InDelivers"] -= 1
        return
    from netstack.ipv4.ip_input import ip_protocol_deliver
    ip_protocol_deliver(net, pkt, ret)
    # ip_protocol_deliver_rcu counts InDelivers once for the resubmitted packet
    mib["IpInDelivers"] -= 1


# ------------------------------------------------------------ GRO remote checksum
@dataclass
class GroRemcsum:
    """``struct gro_remcsum`` (include/net/gro.h): where a ``nopartial`` GRO adjustment
    wrote the inner checksum and by how much, so it can be undone."""

    offset: int = 0
    delta: int = 0


def skb_gro_remcsum_process(pkt: "Packet", off: int, hdrlen: int, start: int, offset: int,
                            grc: GroRemcsum, nopartial: bool) -> bool:
    """``skb_gro_remcsum_process`` (include/net/gro.h) for a tunnel header at absolute
    ``off`` of ``hdrlen`` bytes whose RCO fields are ``start``/``offset`` (relative to the
    inner packet).  Default mode: record ``gro_remcsum_start`` so the inner transport GRO
    does not try to validate the checksum the sender left unfinished.  ``nopartial``:
    write the real checksum now (``remcsum_adjust`` over the GRO sum), fold the change
    into the GRO sum, remember it for :func:`skb_gro_remcsum_cleanup`.  False when the
    fields lie past the packet.  Callers have checked ``csum_valid``."""
    from netstack.core.skb_csum import remcsum_adjust
    from netstack.packet.checksum import csum_add
    cbp = pkt.cb
    if not nopartial:
        cbp.gro_remcsum_start = (off - pkt.data) + hdrlen + start
        return True
    if pkt.tail - off < hdrlen + max(offset + 2, start):
        return False
    delta = remcsum_adjust(pkt, off + hdrlen, cbp.csum, start, offset)
    cbp.csum = csum_add(cbp.csum, delta)
    grc.offset = off + hdrlen + offset
    grc.delta = delta
    return True


def skb_gro_remcsum_cleanup(pkt: "Packet", grc: GroRemcsum) -> None:
    """``skb_gro_remcsum_cleanup`` → ``remcsum_unadjust``: the field goes back to the
    sender's value once GRO is done with the packet (``skb_gro_flush_final_remcsum``);
    the decapsulation path redoes the adjustment on the (possibly merged) packet."""
    from netstack.packet.checksum import csum_fold, csum_sub
    if not grc.delta:
        return
    b = pkt.buf
    f = grc.offset
    cur = (b[f] << 8) | b[f + 1]
    new = csum_fold(csum_sub(grc.delta, cur))
    b[f] = new >> 8
    b[f + 1] = new & 0xFF


def udp_tunnel_gro_hdr_flows(head: list["Packet"], pkt: "Packet", off: int,
                             hlen: int) -> None:
    """GRO of a UDP encapsulation: a held packet whose encapsulation header (``hlen``
    bytes at the same place as in *pkt*, at *off*) differs is no longer the same flow
    (``vxlan_gro_prepare_receive``, ``geneve_gro_receive``, ``gue_gro_receive``:
    drivers/net/vxlan/vxlan_core.c, drivers/net/geneve.c, net/ipv4/fou_core.c)."""
    rel = off - pkt.data
    hdr = bytes(pkt.buf[off:off + hlen])
    for p in head:
        pc = p.cb
        if not pc.same_flow:
            continue
        o2 = p.data + rel
        if p.buf[o2:o2 + hlen] != hdr:
            pc.same_flow = False
