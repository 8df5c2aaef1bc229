"""UDP segmentation and coalescing (net/ipv4/udp_offload.c, Linux 6.18).

GSO, by gso_type:

* UDP tunnels (SKB_GSO_UDP_TUNNEL[_CSUM]) — :func:`skb_udp_tunnel_segment`: the inner
  packet is segmented by its own layers (Ethernet for VXLAN/Geneve, an IP protocol for
  FOU), then every segment gets the outer UDP length and, with _CSUM, the outer checksum
  (computed from the per-segment running sum, or left to the device as the packet's one
  PARTIAL checksum when the device checksums and the inner one is already final).
  TUNNEL_REMCSUM: the inner checksum is not completed (the receiver does it).
* UDP_L4 (UDP GSO, ``UDP_SEGMENT``) — :func:`udp_gso_segment`: datagrams of gso_size,
  each with its own UDP length and checksum (0 sent as 0xffff).
* UDP (UFO) — the whole datagram's checksum is computed, then it is cut into IP
  fragments (``inet_gso_segment`` sets offsets and MF).

GRO: a datagram to a UDP tunnel socket with ``gro_receive`` goes to the tunnel's GRO
(outer checksum zero or verified, both ports equal, zero/non-zero checksum alike); other
datagrams are coalesced only to a socket with UDP_GRO or with ``rx-udp-gro-forwarding``
(``udp_gro_receive_segment``), else flushed.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.core.gro import (call_gro_receive, gro_len, gro_receive_network_flush,
                               inet_gro_compute_pseudo, skb_gro_checksum_try_convert,
                               skb_gro_checksum_validate_zero_check, skb_gro_postpull_rcsum,
                               skb_gro_pull, skb_gro_receive)
from netstack.core.gso import (CSUM_FEATURES, ENCAP_TYPE_ETHER, ENCAP_TYPE_IPPROTO, GSO_FEATURES,
                               SKB_GSO_PARTIAL, SKB_GSO_TUNNEL_REMCSUM, SKB_GSO_UDP,
                               SKB_GSO_UDP_L4, SKB_GSO_UDP_TUNNEL, SKB_GSO_UDP_TUNNEL_CSUM,
                               GsoCb, GsoError, get16, gso_make_checksum, gso_reset_checksum,
                               hw_enc_features, inet_offload, put16, skb_gso_ok,
                               skb_mac_gso_segment, skb_segment)
from netstack.core.skb_csum import CSUM_MANGLED_0
from netstack.ipv4.udp_tunnel import udp_tunnel_lookup
from netstack.packet.checksum import csum_partial, csum_tcpudp_magic
from netstack.packet.skb import (CHECKSUM_NONE, CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY,
                                 Packet)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.gro import Napi


def _csum16_add(a: int, b: int) -> int:
    """``csum16_add``: 16-bit ones'-complement addition."""
    s = a + b
    return (s + (s >> 16)) & 0xFFFF


def _csum16_sub(a: int, b: int) -> int:
    return _csum16_add(a, ~b & 0xFFFF)


# ------------------------------------------------------------------- GSO
def udp4_ufo_fragment(pkt: Packet, features: frozenset[str], cb: GsoCb) -> list[Packet] | None:
    """``udp4_ufo_fragment``: the UDP gso_segment of inet_offloads."""
    return _udp_ufo_fragment(pkt, features, cb, False)


def _udp_ufo_fragment(pkt: Packet, features: frozenset[str], cb: GsoCb,
                      ipv6: bool) -> list[Packet] | None:
    gt = pkt.gso_type
    if pkt.encapsulation and gt & (SKB_GSO_UDP_TUNNEL | SKB_GSO_UDP_TUNNEL_CSUM):
        return skb_udp_tunnel_segment(pkt, features, cb, ipv6)
    if not gt & (SKB_GSO_UDP | SKB_GSO_UDP_L4):
        raise GsoError(errno.EINVAL, "not a UDP GSO type")
    if not pkt.may_pull(8):
        raise GsoError(errno.EINVAL, "short UDP header")
    if gt & SKB_GSO_UDP_L4:
        return udp_gso_segment(pkt, features, cb, ipv6)
    if ipv6:
        from netstack.errors import NotSupported
        raise NotSupported("IPv6 UFO")
    mss = pkt.gso_size
    if len(pkt) <= mss:
        raise GsoError(errno.EINVAL, "UFO datagram not longer than gso_size")
    b = pkt.buf
    uh = pkt.transport_header
    nh = pkt.network_header
    b[uh + 6] = 0
    b[uh + 7] = 0
    s = csum_partial(memoryview(b)[pkt.data:pkt.tail])
    c = csum_tcpudp_magic(bytes(b[nh + 12:nh + 16]), bytes(b[nh + 16:nh + 20]), len(pkt), 17, s)
    put16(b, uh + 6, c or CSUM_MANGLED_0)
    pkt.ip_summed = CHECKSUM_UNNECESSARY
    if not getattr(pkt, "encap_hdr_csum", False):
        features = features | {"tx-checksum-ip-generic"}
    return skb_segment(pkt, features, cb)


def udp_gso_segment(pkt: Packet, features: frozenset[str], cb: GsoCb,
                    ipv6: bool) -> list[Packet] | None:
    """``__udp_gso_segment``: UDP_L4.  EINVAL unless longer than one datagram and the
    checksum starts at the UDP header; a device that segments UDP itself takes a
    DODGY packet with gso_segs recomputed (None)."""
    mss = pkt.gso_size
    if len(pkt) <= 8 + mss:
        raise GsoError(errno.EINVAL, "UDP GSO payload not longer than gso_size")
    if pkt.csum_start != pkt.transport_header:
        raise GsoError(errno.EINVAL, "csum_start is not the UDP header")
    if ipv6 and pkt.transport_header - pkt.network_header != 40:
        features = features - CSUM_FEATURES - GSO_FEATURES
    if skb_gso_ok(pkt, features | {"tx-gso-robust"}):
        pkt.gso_segs = -(-(len(pkt) - 8) // mss)
        return None
    b = pkt.buf
    uh = pkt.transport_header
    pkt.data += 8
    segs = skb_segment(pkt, features, cb)
    if segs[0].gso_size:
        mss *= segs[0].gso_segs
    oldlen = get16(b, uh + 4)
    check0 = get16(b, uh + 6)
    newlen = 8 + mss
    check = _csum16_add(_csum16_sub(check0, oldlen), newlen)
    last = len(segs) - 1
    for i, seg in enumerate(segs):
        sb = seg.buf
        u = seg.transport_header
        if i == last:
            newlen = seg.tail - u
            check = _csum16_add(_csum16_sub(check0, oldlen), newlen)
        put16(sb, u + 4, newlen)
        put16(sb, u + 6, check)
        if seg.ip_summed == CHECKSUM_PARTIAL:
            gso_reset_checksum(seg, cb, i, ~check & 0xFFFF)
        else:
            put16(sb, u + 6, gso_make_checksum(seg, cb, i, ~check & 0xFFFF) or CSUM_MANGLED_0)
    if pkt.ip_summed == CHECKSUM_NONE:
        pkt.ip_summed = CHECKSUM_UNNECESSARY
    return segs


def skb_udp_tunnel_segment(pkt: Packet, features: frozenset[str], cb: GsoCb,
                           ipv6: bool) -> list[Packet] | None:
    """``skb_udp_tunnel_segment``: pick the inner segmenter from ``inner_protocol_type``
    (Ethernet → ``skb_mac_gso_segment`` with ``inner_protocol``; IP protocol → that
    protocol's offload, FOU), then :func:`_udp_tunnel_segment`."""
    ptype = getattr(pkt, "inner_protocol_type", ENCAP_TYPE_ETHER)
    if ptype == ENCAP_TYPE_ETHER:
        protocol = pkt.inner_protocol
        inner = skb_mac_gso_segment
    elif ptype in (ENCAP_TYPE_IPPROTO, "ipproto"):
        # inner_ipproto shares its storage with inner_protocol (a union in the kernel;
        # ip_tunnel_core.skb_set_inner_ipproto stores it there)
        fn = inet_offload(pkt.__dict__.get("inner_ipproto", pkt.inner_protocol & 0xFF), ipv6)
        if fn is None:
            raise GsoError(errno.EINVAL, "no offload for the inner protocol")
        protocol = pkt.protocol
        inner = fn
    else:
        raise GsoError(errno.EINVAL, "unknown inner protocol type")
    return _udp_tunnel_segment(pkt, features, cb, inner, protocol, ipv6)


def _udp_tunnel_segment(pkt: Packet, features: frozenset[str], cb: GsoCb, inner: Any,
                        new_protocol: int, ipv6: bool) -> list[Packet] | None:
    """``__skb_udp_tunnel_segment``."""
    b = pkt.buf
    uh = pkt.transport_header
    tnl_hlen = pkt.inner_mac_header - uh
    if tnl_hlen < 8 or not pkt.may_pull(tnl_hlen):
        raise GsoError(errno.EINVAL, "tunnel header")
    gt = pkt.gso_type
    mac_offset = pkt.mac_header
    mac_len = pkt.network_header - pkt.mac_header
    protocol = pkt.protocol
    # partial = csum_sub(csum_unfold(uh->check), old length): the seed minus the length
    oldlen = get16(b, uh + 4) if gt & SKB_GSO_PARTIAL else len(pkt)
    seed = get16(b, uh + 6)
    pkt.encapsulation = False
    cb.encap_level = 0
    pkt.data += tnl_hlen
    pkt.mac_header = pkt.data
    pkt.network_header = pkt.inner_network_header
    pkt.transport_header = pkt.inner_transport_header
    pkt.protocol = new_protocol
    need_csum = bool(gt & SKB_GSO_UDP_TUNNEL_CSUM)
    pkt.encap_hdr_csum = need_csum
    remcsum = bool(gt & SKB_GSO_TUNNEL_REMCSUM)
    pkt.remcsum_offload = remcsum
    dev_features = cb.dev.features if cb.dev is not None else set()
    csum_feats = ({"tx-checksum-ip-generic", "tx-checksum-ipv6"} if ipv6
                  else {"tx-checksum-ip-generic", "tx-checksum-ipv4"})
    offload_csum = need_csum and bool(csum_feats & set(dev_features))
    features = features & hw_enc_features(cb.dev)
    if need_csum:
        features = features - {"tx-checksum-sctp"}
    if remcsum:
        features = features - CSUM_FEATURES
        if not need_csum or offload_csum:
            features = features | {"tx-checksum-ip-generic"}
    try:
        segs = inner(pkt, features, cb)
    except GsoError:
        _unwind(pkt, protocol, tnl_hlen, mac_offset, uh)
        raise
    if segs is None:
        _unwind(pkt, protocol, tnl_hlen, mac_offset, uh)
        return None
    gso_partial = bool(segs[0].gso_type & SKB_GSO_PARTIAL)
    outer_hlen = pkt.mac_header - mac_offset
    udp_offset = outer_hlen - tnl_hlen
    for i, seg in enumerate(segs):
        if remcsum:
            seg.ip_summed = CHECKSUM_NONE
        if seg.ip_summed == CHECKSUM_PARTIAL:
            seg.inner_mac_header = seg.mac_header
            seg.inner_network_header = seg.network_header
            seg.inner_transport_header = seg.transport_header
            seg.encapsulation = True
        seg.protocol = protocol
        seg.data -= outer_hlen
        seg.mac_header = seg.data
        seg.network_header = seg.data + mac_len
        seg.transport_header = seg.data + udp_offset
        u = seg.transport_header
        sb = seg.buf
        length = seg.tail - u
        if gso_partial and seg.gso_size:
            put16(sb, u + 4, seg.gso_size + cb.data_offset[i] - u)
        else:
            put16(sb, u + 4, length)
        if not need_csum:
            continue
        c = (seed + length - oldlen) % 0xFFFF or 0xFFFF  # ~csum_fold(partial + len)
        put16(sb, u + 6, c)
        if seg.encapsulation or not offload_csum:
            put16(sb, u + 6, gso_make_checksum(seg, cb, i, ~c & 0xFFFF) or CSUM_MANGLED_0)
        else:
            seg.ip_summed = CHECKSUM_PARTIAL
            seg.csum_start = u
            seg.csum_offset = 6
    return segs


def _unwind(pkt: Packet, protocol: int, tnl_hlen: int, mac_offset: int, uh: int) -> None:
    """``skb_gso_error_unwind``."""
    pkt.protocol = protocol
    pkt.encapsulation = True
    pkt.data -= tnl_hlen
    pkt.transport_header = uh
    pkt.mac_header = mac_offset


# ------------------------------------------------------------------- GRO
def _tunnel_sock(pkt: Packet, ipv6: bool, sport_off: int) -> Any:
    """``udp4_gro_lookup_skb``/``udp6_gro_lookup_skb``: the UDP tunnel socket bound to the
    destination port (only when a tunnel socket exists: ``udp_encap_needed_key``)."""
    net = pkt.dev.net
    if not net.proto.get("udp_encap_needed"):
        return None
    b = pkt.buf
    cbp = pkt.cb
    nh = cbp.network_offsets[1 if cbp.encap_mark else 0]
    dport = get16(b, sport_off + 2)
    if ipv6:
        return udp_tunnel_lookup(net, 10, dport, bytes(b[nh + 24:nh + 40]), pkt.dev.ifindex)
    return udp_tunnel_lookup(net, 2, dport, bytes(b[nh + 16:nh + 20]), pkt.dev.ifindex)


def udp_gro_receive(napi: "Napi", head: list[Packet], pkt: Packet, uh: int, sk: Any) -> Packet | None:
    """``udp_gro_receive``."""
    cbp = pkt.cb
    b = pkt.buf
    off = cbp.off
    pp = None
    flush = 1
    if sk is None or getattr(sk, "gro_receive", None) is None:
        if pkt.encapsulation:
            cbp.flush |= flush
            return None
        fwd = "rx-udp-gro-forwarding" in pkt.dev.features
        if (sk is None and fwd) or (sk is not None and getattr(sk, "gro_enabled", False)):
            return call_gro_receive(udp_gro_receive_segment, napi, head, pkt)
        cbp.flush |= flush
        return None
    check = get16(b, uh + 6)
    if cbp.encap_mark or (check and pkt.ip_summed != CHECKSUM_PARTIAL and cbp.csum_cnt == 0
                          and not cbp.csum_valid):
        cbp.flush |= flush
        return None
    cbp.encap_mark = True
    flush = 0
    rel = off - pkt.data
    ports = bytes(b[uh:uh + 4])
    for p in head:
        pc = p.cb
        if not pc.same_flow:
            continue
        u2 = p.data + rel
        pb = p.buf
        if pb[u2:u2 + 4] != ports or (not check) != (not get16(pb, u2 + 6)):
            pc.same_flow = False
    skb_gro_pull(pkt, 8)
    skb_gro_postpull_rcsum(pkt, uh, 8)
    cbp.recursion += 1
    if cbp.recursion >= 15:
        cbp.flush |= 1
        return None
    pp = sk.gro_receive(sk, napi, head, pkt)
    cbp.flush |= flush
    return pp


def udp_gro_receive_segment(napi: "Napi", head: list[Packet], pkt: Packet) -> Packet | None:
    """``udp_gro_receive_segment``: plain UDP coalescing (UDP_GRO socket or
    rx-udp-gro-forwarding): non-zero checksum, no padding, same ports; a longer
    datagram, a network-level mismatch or a short one ends the train; at most 64."""
    cbp = pkt.cb
    b = pkt.buf
    uh = cbp.off
    if not get16(b, uh + 6):
        cbp.flush = 1
        return None
    ulen = get16(b, uh + 4)
    if ulen <= 8 or ulen != gro_len(pkt):
        cbp.flush = 1
        return None
    skb_gro_pull(pkt, 8)
    ports = bytes(b[uh:uh + 4])
    for p in head:
        pc = p.cb
        if not pc.same_flow:
            continue
        u2 = p.transport_header
        pb = p.buf
        if pb[u2:u2 + 4] != ports:
            pc.same_flow = False
            continue
        flush = gro_receive_network_flush(napi, pkt, p, uh, u2)
        pp = None
        ok = True
        if ulen > get16(pb, u2 + 4) or flush:
            pp = p
        else:
            ok = skb_gro_receive(napi, p, pkt, uh + 8)
        if not ok or ulen != get16(pb, u2 + 4) or pc.count >= 64:
            pp = p
        return pp
    return None


def udp4_gro_receive(napi: "Napi", head: list[Packet], pkt: Packet) -> Packet | None:
    """``udp4_gro_receive``: verify (a zero checksum is fine), convert a verified
    non-zero checksum to a running sum, then :func:`udp_gro_receive`."""
    cbp = pkt.cb
    uh = cbp.off
    if pkt.tail - uh < 8:
        cbp.flush = 1
        return None
    check = get16(pkt.buf, uh + 6)
    if not cbp.flush:
        if skb_gro_checksum_validate_zero_check(napi, pkt, 17, check, inet_gro_compute_pseudo):
            cbp.flush = 1
            return None
        if check:
            skb_gro_checksum_try_convert(pkt, 17, inet_gro_compute_pseudo)
    cbp.is_ipv6 = False
    sk = _tunnel_sock(pkt, False, uh)
    return udp_gro_receive(napi, head, pkt, uh, sk)


def udp_gro_complete(napi: "Napi", pkt: Packet, nhoff: int, ipv6: bool) -> int:
    """``udp_gro_complete``: the UDP length of the merged packet; through a tunnel socket
    the packet becomes SKB_GSO_UDP_TUNNEL[_CSUM] with encapsulation set and the tunnel
    completes the inner layers; else UDP_L4."""
    b = pkt.buf
    put16(b, nhoff + 4, (pkt.tail - nhoff) & 0xFFFF)
    sk = _tunnel_sock(pkt, ipv6, nhoff)
    err = 0
    if sk is not None and getattr(sk, "gro_complete", None) is not None:
        pkt.gso_type = SKB_GSO_UDP_TUNNEL_CSUM if get16(b, nhoff + 6) else SKB_GSO_UDP_TUNNEL
        pkt.cb.encap_mark = False
        pkt.encapsulation = True
        err = sk.gro_complete(sk, napi, pkt, nhoff + 8)
    else:
        pkt.csum_start = nhoff
        pkt.csum_offset = 6
        pkt.ip_summed = CHECKSUM_PARTIAL
        pkt.gso_segs = pkt.cb.count
        pkt.gso_type |= SKB_GSO_UDP_L4
        if pkt.encapsulation:
            pkt.inner_transport_header = pkt.transport_header
    if getattr(pkt, "remcsum_offload", False):
        pkt.gso_type |= SKB_GSO_TUNNEL_REMCSUM
    return err


def udp4_gro_complete(napi: "Napi", pkt: Packet, nhoff: int) -> int:
    """``udp4_gro_complete``: a non-zero checksum gets the pseudo seed over the packet's
    network header (``ip_hdr``) — the outer one even when the received skb still says
    ``encapsulation`` (a locally encapsulated packet over a veth: measured on 6.18)."""
    from netstack.packet.checksum import pseudo_sum_v4
    b = pkt.buf
    nh = pkt.network_header
    if get16(b, nhoff + 6):
        put16(b, nhoff + 6, pseudo_sum_v4(bytes(b[nh + 12:nh + 16]), bytes(b[nh + 16:nh + 20]),
                                          pkt.tail - nhoff, 17))
    return udp_gro_complete(napi, pkt, nhoff, False)
