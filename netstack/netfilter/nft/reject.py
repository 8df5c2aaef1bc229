"""``reject with tcp reset``: ``nf_send_reset`` (net/ipv4/netfilter/nf_reject_ipv4.c) and
``nf_send_reset6`` (net/ipv6/netfilter/nf_reject_ipv6.c).

The reset answers the offending segment from its destination: addresses and ports
swapped; if the segment carried an ACK the reset takes its sequence number from that
ACK, otherwise it ACKs everything the segment occupied (SYN and FIN count one each)
with sequence 0; no reset is sent for a reset, for a non-first fragment, or for a
segment whose TCP checksum is wrong (``nf_reject_ip_tcphdr_get`` /
``nf_reject_ip6_tcphdr_get`` → ``nf_ip_checksum``/``nf_ip6_checksum``).  IPv4: DF set,
id 0, the default TTL; IPv6: traffic class and flow label 0, the route's hop limit and no
reset unless both addresses are unicast.  The reset is attached to the segment's
connection (``nf_ct_attach``, so NAT rewrites it) and leaves through a fresh output route
with ``ip_local_out`` / ``ip6_local_out``."""
from __future__ import annotations

import struct
from typing import Any

from netstack.packet.checksum import csum_ipv6_magic, csum_partial, csum_tcpudp_magic
from netstack.packet.skb import CHECKSUM_COMPLETE, CHECKSUM_NONE


def _tcphdr_get(pkt: Any, th: int) -> tuple[int, int, int, int, int, int, int] | None:
    """The part nf_reject_ip_tcphdr_get and nf_reject_ip6_tcphdr_get share: the TCP
    header at ``th`` must be whole and not a RST (a reset is never answered); returns
    what ``_tcp_reset`` builds the reply from — ports, sequence, ack, data offset in
    words, flags and oldskb->len minus the IP header(s) (the length from ``th``,
    Ethernet padding included, as the kernel does not trim before this)."""
    if th + 20 > pkt.tail:
        return None
    sport, dport, seq, ack_seq, doff_res, flags = struct.unpack_from(">HHIIBB", pkt.buf, th)
    if flags & 0x04:
        return None
    return (sport, dport, seq, ack_seq, doff_res >> 4, flags, pkt.tail - th)


def _segment(info: Any) -> tuple[int, int, int, int, int, int, int] | None:
    """The offending segment's ports, seq, ack, data offset, flags and TCP length, or None
    when no reset may be sent for it."""
    pkt = info.pkt
    if not info.tprot_set or info.tprot != 6 or info.fragoff or info.net is None:
        return None
    return _tcphdr_get(pkt, info.thoff)


def _csum_bad(info: Any, saddr: bytes, daddr: bytes, v6: bool, proto: int = 6,
              end: int | None = None) -> bool:
    """``nf_ip_checksum`` / ``nf_ip6_checksum``: only CHECKSUM_NONE and CHECKSUM_COMPLETE
    packets are verified (UNNECESSARY is trusted, PARTIAL is ours and not yet filled)."""
    pkt = info.pkt
    if pkt.ip_summed not in (CHECKSUM_NONE, CHECKSUM_COMPLETE):
        return False
    seg = bytes(pkt.buf[info.thoff:pkt.tail if end is None else end])
    magic = csum_ipv6_magic if v6 else csum_tcpudp_magic
    return magic(saddr, daddr, len(seg), proto, csum_partial(seg)) != 0


def _verify_csum(info: Any, proto: int) -> bool:
    """``nf_reject_verify_csum`` (include/net/netfilter/nf_reject.h): whether the payload
    carries a one's complement checksum over all of it worth verifying — not for UDP
    with checksum 0, GRE, AH, ESP, SCTP, UDP-Lite, DCCP."""
    if proto == 17:
        th = info.thoff
        pkt = info.pkt
        return th + 8 > pkt.tail or pkt.buf[th + 6:th + 8] != b"\0\0"
    return proto not in (47, 51, 50, 132, 136, 33)


def unreach_csum_ok(info: Any, v6: bool) -> bool:
    """The checksum test of ``nf_send_unreach`` / ``reject6_csum_ok``: an ICMP error
    answers only a packet whose transport checksum verifies (or needs no verifying);
    IPv6 also refuses a fragment.  Packets whose header did not validate (no l4proto)
    are answered as the kernel does for protocols it cannot check."""
    pkt = info.pkt
    if pkt.ip_summed not in (CHECKSUM_NONE, CHECKSUM_COMPLETE):
        return True                                      # skb_csum_unnecessary
    if not info.tprot_set:
        return True
    if v6 and info.fragoff:
        return False
    proto = info.tprot
    if not _verify_csum(info, proto):
        return True
    nh = pkt.network_header
    buf = pkt.buf
    if v6:
        plen = struct.unpack_from(">H", buf, nh + 4)[0]
        return not _csum_bad(info, bytes(buf[nh + 8:nh + 24]), bytes(buf[nh + 24:nh + 40]),
                             True, proto, nh + 40 + plen)
    tot = struct.unpack_from(">H", buf, nh + 2)[0]
    if proto == 1:
        # ICMP: a plain sum over the message (nf_ip_checksum with protocol 0)
        return csum_fold_zero(bytes(buf[info.thoff:nh + tot]))
    return not _csum_bad(info, bytes(buf[nh + 12:nh + 16]), bytes(buf[nh + 16:nh + 20]),
                         False, proto, nh + tot)


def csum_fold_zero(data: bytes) -> bool:
    from netstack.packet.checksum import csum_fold
    return csum_fold(csum_partial(data)) == 0


def fill_skb_dst(info: Any) -> bool:
    """``nf_reject_fill_skb_dst`` (6.18: only when the packet has no route yet, i.e. in
    prerouting): the output route to the packet's source becomes its dst, so the reply's
    route, the broadcast/multicast test and icmp_send's checks see it.  False (no reply)
    when there is no such route."""
    pkt = info.pkt
    if pkt.dst is not None:
        return True
    net = info.net
    if net is None:
        return False
    from netstack.errors import KernelError
    from netstack.ipv4.fib import Flowi4
    from netstack.ipv4.route import ip_route_output
    nh = pkt.network_header
    try:
        pkt.dst = ip_route_output(net, Flowi4(daddr=bytes(pkt.buf[nh + 12:nh + 16])))
    except KernelError:
        return False
    return True


def _tcp_reset(seg: tuple[int, int, int, int, int, int, int], saddr: bytes,
               daddr: bytes, v6: bool) -> bytes:
    """``nf_reject_ip_tcphdr_put`` / ``nf_reject_ip6_tcphdr_put``."""
    sport, dport, seq, ack_seq, doff, flags, tcplen = seg
    if flags & 0x10:
        nseq, nack, nflags = ack_seq, 0, 0x04
    else:
        nseq = 0
        nack = (seq + (flags & 0x02 and 1) + (flags & 0x01 and 1) + tcplen - doff * 4) \
            & 0xFFFFFFFF
        nflags = 0x14
    tcp = bytearray(struct.pack(">HHIIBBHHH", dport, sport, nseq, nack, 5 << 4, nflags,
                                0, 0, 0))
    magic = csum_ipv6_magic if v6 else csum_tcpudp_magic
    struct.pack_into(">H", tcp, 16, magic(saddr, daddr, 20, 6, csum_partial(bytes(tcp))))
    return bytes(tcp)


def _attach(nskb: Any, pkt: Any) -> None:
    from netstack.netfilter.conntrack import nf_ct_attach
    nf_ct_attach(nskb, pkt)


def send_tcp_reset(info: Any, pf: int) -> None:
    """Build and send the reset for ``info.pkt`` (a :class:`~.vm.PktInfo`) of family
    ``pf`` (2 IPv4, 10 IPv6)."""
    if pf == 10:
        _send_reset6(info)
        return
    seg = _segment(info)
    if seg is None:
        return
    pkt, net = info.pkt, info.net
    buf, nh = pkt.buf, pkt.network_header
    tot = struct.unpack_from(">H", buf, nh + 2)[0]
    seg = seg[:6] + (nh + tot - info.thoff,)
    saddr, daddr = bytes(buf[nh + 16:nh + 20]), bytes(buf[nh + 12:nh + 16])
    if _csum_bad(info, daddr, saddr, False):
        return
    if not fill_skb_dst(info):
        return
    from netstack.ipv4.route import RTCF_BROADCAST, RTCF_MULTICAST
    if getattr(pkt.dst, "flags", 0) & (RTCF_BROADCAST | RTCF_MULTICAST):
        # the segment was addressed to (prerouting: came from) a broadcast or multicast
        # address: never answered
        return
    # IP4_REPLY_MARK: the reset carries the segment's mark with net.ipv4.fwmark_reflect,
    # and ip_route_me_harder routes it with that mark
    mark = pkt.mark if net.sysctl.values.get("net.ipv4.fwmark_reflect", 0) else 0
    from netstack.ipv4.fib import FLOWI_FLAG_ANYSRC, Flowi4
    from netstack.ipv4.route import ip_route_output
    # ip_route_me_harder (net/ipv4/netfilter.c) keeps a local or unicast source with
    # FLOWI_FLAG_ANYSRC: a reset for a forwarded segment leaves from the address the
    # segment was sent to, which is not one of ours; other source types route with 0.
    if saddr[0] >= 224 or saddr == b"\x00\x00\x00\x00":
        fl4 = Flowi4(daddr=daddr, saddr=0, proto=6, mark=mark)
    else:
        fl4 = Flowi4(daddr=daddr, saddr=saddr, proto=6, flags=FLOWI_FLAG_ANYSRC, mark=mark)
    try:
        rt = ip_route_output(net, fl4)
    except Exception:                      # no route back: nothing is sent (as the kernel)
        return
    tcp = _tcp_reset(seg, saddr, daddr, False)
    ttl = net.sysctl.get("net.ipv4.ip_default_ttl")
    iph = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 40, 0, 0x4000, ttl, 6, 0, saddr, daddr)
    from netstack.ipv4.ip_output import ip_local_out   # fills the header checksum
    nskb = net.world.new_packet(iph + tcp)
    nskb.dst = rt
    nskb.mark = mark
    _attach(nskb, pkt)
    ip_local_out(net, nskb)


def _unicast6(a: bytes) -> bool:
    """``ipv6_addr_type(a) & IPV6_ADDR_UNICAST``: not multicast, not unspecified."""
    return a[0] != 0xFF and a != bytes(16)


def _send_reset6(info: Any) -> None:
    pkt, net = info.pkt, info.net
    buf, nh = pkt.buf, pkt.network_header
    osrc, odst = bytes(buf[nh + 8:nh + 24]), bytes(buf[nh + 24:nh + 40])
    if not (_unicast6(osrc) and _unicast6(odst)):
        return
    seg = _segment(info)
    if seg is None:
        return
    plen = struct.unpack_from(">H", buf, nh + 4)[0]
    seg = seg[:6] + (nh + 40 + plen - info.thoff,)
    if _csum_bad(info, osrc, odst, True):
        return
    from netstack.ipv6.ip6_output import ip6_dst_hoplimit, ip6_local_out
    from netstack.ipv6.route import Flowi6, ip6_route_output
    try:
        dst = ip6_route_output(net, Flowi6(osrc, odst, proto=6, sport=seg[1], dport=seg[0]))
    except Exception:                      # dst->error: nothing is sent
        return
    tcp = _tcp_reset(seg, odst, osrc, True)
    ip6h = struct.pack(">IHBB16s16s", 6 << 28, 20, 6, ip6_dst_hoplimit(dst), odst, osrc)
    from netstack.ipv6.ip6_output import ETH_P_IPV6
    nskb = net.world.new_packet(ip6h + tcp)
    nskb.network_header = nskb.data
    nskb.transport_header = nskb.data + 40
    nskb.protocol = ETH_P_IPV6
    nskb.dst = dst
    nskb.dev = dst.dev
    _attach(nskb, pkt)
    ip6_local_out(net, nskb)


# ---------------------------------------------------------------------------------------
# bridge and netdev families: net/bridge/netfilter/nft_reject_bridge.c and
# net/netfilter/nft_reject_netdev.c.  The reply is built whole at layer 2 by
# nf_reject_skb_v4_tcp_reset / nf_reject_skb_v4_unreach (net/ipv4/netfilter/
# nf_reject_ipv4.c) and their IPv6 twins (net/ipv6/netfilter/nf_reject_ipv6.c): no route
# lookup, no conntrack attach, default TTL / all.hop_limit, the Ethernet addresses of the
# offending frame swapped.  The bridge sends it back through the input port with
# br_forward (keeping the frame's VLAN tag), netdev with dev_hard_header + dev_queue_xmit.

from dataclasses import dataclass as _dataclass

from netstack.netfilter.nft import vm as _vm

#: nft_reject_icmp_code / nft_reject_icmpv6_code (net/netfilter/nft_reject.c):
#: NFT_REJECT_ICMPX_{NO_ROUTE, PORT_UNREACH, HOST_UNREACH, ADMIN_PROHIBITED}
ICMPX_TO_V4 = {0: 0, 1: 3, 2: 1, 3: 13}
ICMPX_TO_V6 = {0: 0, 1: 4, 2: 3, 3: 1}


def _iphdr_validate(pkt: Any) -> bool:
    """``nf_reject_iphdr_validate``: version 4, ihl >= 5, tot_len within the skb and
    covering the header."""
    nh = pkt.network_header
    if nh + 20 > pkt.tail:
        return False
    vihl = pkt.buf[nh]
    ihl = (vihl & 0x0F) * 4
    if ihl < 20 or vihl >> 4 != 4:
        return False
    tot = struct.unpack_from(">H", pkt.buf, nh + 2)[0]
    return tot <= pkt.tail - nh and tot >= ihl and nh + ihl <= pkt.tail


def _ip6hdr_validate(pkt: Any) -> bool:
    """``nf_reject_ip6hdr_validate``: version 6, payload_len within the skb."""
    nh = pkt.network_header
    if nh + 40 > pkt.tail or pkt.buf[nh] >> 4 != 6:
        return False
    return struct.unpack_from(">H", pkt.buf, nh + 4)[0] + 40 <= pkt.tail - nh


def _iph(saddr: bytes, daddr: bytes, proto: int, ttl: int, total: int) -> bytes:
    """``nf_reject_iphdr_put`` + ``ip_send_check``: tos 0, id 0, DF."""
    from netstack.packet.checksum import csum_fold
    h = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, ttl, proto, 0,
                              saddr, daddr))
    struct.pack_into(">H", h, 10, csum_fold(csum_partial(bytes(h))))
    return bytes(h)


def _ip6h(saddr: bytes, daddr: bytes, proto: int, hlim: int, plen: int) -> bytes:
    """``nf_reject_ip6hdr_put``: traffic class and flow label 0."""
    return struct.pack(">IHBB16s16s", 6 << 28, plen, proto, hlim, saddr, daddr)


def skb_v4_tcp_reset(info: Any) -> bytes | None:
    """``nf_reject_skb_v4_tcp_reset``: the IPv4 packet of the reset, or None."""
    pkt = info.pkt
    if not _iphdr_validate(pkt):
        return None
    nh = pkt.network_header
    buf = pkt.buf
    ihl = (buf[nh] & 0x0F) * 4
    if struct.unpack_from(">H", buf, nh + 6)[0] & 0x1FFF or buf[nh + 9] != 6:
        return None
    th = nh + ihl
    seg = _tcphdr_get(pkt, th)
    if seg is None:
        return None
    saddr, daddr = bytes(buf[nh + 16:nh + 20]), bytes(buf[nh + 12:nh + 16])
    saved = info.thoff
    info.thoff = th
    try:
        # nf_ip_checksum sums skb->len - dataoff bytes: nothing trimmed the skb to
        # tot_len at bridge prerouting / netdev ingress
        if _csum_bad(info, daddr, saddr, False, 6, pkt.tail):
            return None
    finally:
        info.thoff = saved
    ttl = info.net.sysctl.get("net.ipv4.ip_default_ttl")
    return _iph(saddr, daddr, 6, ttl, 40) + _tcp_reset(seg, saddr, daddr, False)


def skb_v4_unreach(info: Any, code: int) -> bytes | None:
    """``nf_reject_skb_v4_unreach``: destination unreachable carrying up to 536 bytes of
    the packet (RFC 792; "as much as we can without exceeding 576 bytes")."""
    pkt = info.pkt
    if not _iphdr_validate(pkt):
        return None
    nh, buf = pkt.network_header, pkt.buf
    if struct.unpack_from(">H", buf, nh + 6)[0] & 0x1FFF:
        return None
    ihl = (buf[nh] & 0x0F) * 4
    proto = buf[nh + 9]
    if proto == 1 and nh + 20 < pkt.tail and buf[nh + 20] == 3:
        return None                    # nf_skb_is_icmp_unreach (looks at nh + 20)
    length = min(536, pkt.tail - nh)
    tot = struct.unpack_from(">H", buf, nh + 2)[0]
    saved = info.thoff, info.tprot, info.tprot_set, info.fragoff
    info.thoff, info.tprot, info.tprot_set, info.fragoff = nh + ihl, proto, True, 0
    try:
        if pkt.ip_summed in (CHECKSUM_NONE, CHECKSUM_COMPLETE) and \
                _verify_csum(info, proto):
            src, dst = bytes(buf[nh + 12:nh + 16]), bytes(buf[nh + 16:nh + 20])
            if proto == 1:
                if not csum_fold_zero(bytes(buf[nh + ihl:nh + tot])):
                    return None
            elif _csum_bad(info, src, dst, False, proto, nh + tot):
                return None
    finally:
        info.thoff, info.tprot, info.tprot_set, info.fragoff = saved
    from netstack.packet.checksum import csum_fold
    icmp = bytearray(struct.pack(">BBHI", 3, code, 0, 0) + bytes(buf[nh:nh + length]))
    struct.pack_into(">H", icmp, 2, csum_fold(csum_partial(bytes(icmp))))
    ttl = info.net.sysctl.get("net.ipv4.ip_default_ttl")
    return _iph(bytes(buf[nh + 16:nh + 20]), bytes(buf[nh + 12:nh + 16]), 1, ttl,
                20 + len(icmp)) + bytes(icmp)


def _hop_limit(net: Any) -> int:
    return net.sysctl.get("net.ipv6.conf.all.hop_limit")


def skb_v6_tcp_reset(info: Any) -> bytes | None:
    """``nf_reject_skb_v6_tcp_reset`` (``nf_reject_ip6_tcphdr_get`` /
    ``nf_reject_ip6_tcphdr_put``)."""
    pkt = info.pkt
    if not _ip6hdr_validate(pkt) or not info.tprot_set or info.tprot != 6 or info.fragoff:
        return None
    nh, buf, th = pkt.network_header, pkt.buf, info.thoff
    seg = _tcphdr_get(pkt, th)
    if seg is None:
        return None
    osrc, odst = bytes(buf[nh + 8:nh + 24]), bytes(buf[nh + 24:nh + 40])
    if _csum_bad(info, osrc, odst, True, 6, pkt.tail):
        return None
    return _ip6h(odst, osrc, 6, _hop_limit(info.net), 20) + _tcp_reset(seg, odst, osrc,
                                                                        True)


def skb_v6_unreach(info: Any, code: int) -> bytes | None:
    """``nf_reject_skb_v6_unreach``: destination unreachable carrying up to 1220 bytes
    (RFC 4443 2.4(c): as much as fits the minimum IPv6 MTU)."""
    pkt = info.pkt
    if not _ip6hdr_validate(pkt):
        return None
    nh, buf = pkt.network_header, pkt.buf
    if pkt.ip_summed in (CHECKSUM_NONE, CHECKSUM_COMPLETE):
        # nf_reject_v6_csum_ok: a non-first fragment or an unparsable chain is refused
        if not info.tprot_set or info.fragoff:
            return None
        if _verify_csum(info, info.tprot):
            plen = struct.unpack_from(">H", buf, nh + 4)[0]
            if _csum_bad(info, bytes(buf[nh + 8:nh + 24]), bytes(buf[nh + 24:nh + 40]),
                         True, info.tprot, nh + 40 + plen):
                return None
    length = min(1220, pkt.tail - nh)
    osrc, odst = bytes(buf[nh + 8:nh + 24]), bytes(buf[nh + 24:nh + 40])
    icmp = bytearray(struct.pack(">BBHI", 1, code, 0, 0) + bytes(buf[nh:nh + length]))
    struct.pack_into(">H", icmp, 2, csum_ipv6_magic(odst, osrc, len(icmp), 58,
                                                    csum_partial(bytes(icmp))))
    return _ip6h(odst, osrc, 58, _hop_limit(info.net), len(icmp)) + bytes(icmp)


def l2_reply(info: Any, rtype: int, code: int) -> tuple[bytes, int] | None:
    """The IP packet ``nft_reject_{bridge,netdev}_eval`` would send for the frame in
    ``info.pkt`` and its Ethernet type, or None (no answer: broadcast or multicast
    destination MAC, not IPv4/IPv6, or a check of nf_reject_ipv{4,6}.c refused it)."""
    pkt = info.pkt
    mh = pkt.mac_header
    from netstack.packet.skb import UNSET
    if mh == UNSET or mh + 14 > pkt.tail:
        return None
    if pkt.buf[mh] & 0x01:                 # is_broadcast / is_multicast_ether_addr
        return None
    proto = struct.unpack_from(">H", pkt.buf, mh + 12)[0]
    if proto == 0x0800:
        if rtype == 1:
            ip = skb_v4_tcp_reset(info)
        else:
            ip = skb_v4_unreach(info, ICMPX_TO_V4[code] if rtype == 2 else code)
    elif proto == 0x86DD:
        if rtype == 1:
            ip = skb_v6_tcp_reset(info)
        else:
            ip = skb_v6_unreach(info, ICMPX_TO_V6[code] if rtype == 2 else code)
    else:
        return None                        # "No explicit way to reject this protocol"
    return None if ip is None else (ip, proto)


@_dataclass
class L2Reject(_vm.Reject):
    """The ``reject`` expression of the bridge and netdev families: same netlink form
    as :class:`~netstack.netfilter.nft.vm.Reject`, evaluated by nft_reject_bridge_eval /
    nft_reject_netdev_eval.  The verdict is always NF_DROP."""

    def eval(self, regs: Any, info: Any) -> None:
        regs.code = _vm.NF_DROP
        pkt, state = info.pkt, info.state
        in_dev = getattr(state, "in_dev", None) or pkt.dev
        if info.net is None or in_dev is None:
            return
        got = l2_reply(info, self.type, self.code)
        if pkt.trace is not None:
            pkt.trace.event(pkt, f"nft_reject_{self.family}_eval", verdict="drop",
                            info="reject" + (" (reply sent)" if got else " (no reply)"),
                            attrs={"reject": self.type, "code": self.code})
        if got is None:
            return
        ip, ethertype = got
        mh = pkt.mac_header
        src_mac = bytes(pkt.buf[mh:mh + 6])          # the frame's destination
        dst_mac = bytes(pkt.buf[mh + 6:mh + 12])
        nskb = info.net.world.new_packet(ip)
        nskb.network_header = nskb.data
        nskb.transport_header = nskb.data + (20 if ethertype == 0x0800 else 40)
        nskb.protocol = ethertype
        if self.family == "bridge":
            from netstack.drivers.bridge.br_forward import br_forward
            from netstack.drivers.bridge.br_private import BrInputCb, br_port_get
            # nft_reject_br_push_etherhdr: h_proto of the frame, tag kept out of band
            nskb.push(14)
            nskb.reset_mac_header()
            nskb.buf[nskb.data:nskb.data + 14] = dst_mac + src_mac + \
                struct.pack(">H", ethertype)
            nskb.pull(14)
            if pkt.vlan_tag_present():
                nskb.vlan_proto, nskb.vlan_tci = pkt.vlan_proto, pkt.vlan_tci
            # nf_reject_skb_v4_*(net, oldskb, NULL, hook): the reply has no device yet,
            # so should_deliver lets it out of the very port it answers
            nskb.dev = None
            nskb.cb = BrInputCb()          # alloc_skb: a zeroed control block
            br_forward(br_port_get(in_dev), nskb, False, True)
        else:
            from netstack.core.dev import dev_queue_xmit
            # nft_reject_queue_xmit: dev_hard_header(…, ntohs(oldskb->protocol), …)
            nskb.push(14)
            nskb.reset_mac_header()
            nskb.buf[nskb.data:nskb.data + 14] = dst_mac + src_mac + \
                struct.pack(">H", pkt.protocol)
            nskb.dev = in_dev
            dev_queue_xmit(nskb, in_dev)


def _code_loc(st: Any) -> Any:
    """Where the ICMP code of ``reject with KIND CODE`` is: the parser's ``code_loc``
    when it records one, else counted from the statement (single spaces)."""
    loc = getattr(st, "code_loc", None)
    if loc is not None or st.code is None:
        return loc or st.loc
    from netstack.netfilter.nft.errors import Loc
    first = st.loc.first + len(f"reject with {st.kind} ")
    return Loc(st.loc.line, first, first + len(st.code) - 1)


#: protocol-key matches: nft underlines the whole relational expression that set the
#: protocol context; for any other header match it underlines the header field
_KEY_MATCHES = ({"meta": {"key": "l4proto"}}, {"meta": {"key": "nfproto"}},
                {"meta": {"key": "protocol"}},
                {"payload": {"protocol": "ether", "field": "type"}},
                {"payload": {"protocol": "ip", "field": "protocol"}},
                {"payload": {"protocol": "ip6", "field": "nexthdr"}})


def _ctx_loc(rc: Any) -> Any:
    """The location nft gives the protocol context (``~~~`` under it in an error): the
    last header match of the rule (netstack keeps only its left-hand side's location;
    a protocol-key match is widened to the text it lists as)."""
    loc = rc._lhs_loc
    if loc is None:
        return None
    last = next((c for c in reversed(rc.codes) if not c.dep), None)
    js = (last.json or [None])[0] if last is not None else None
    if isinstance(js, dict) and "match" in js and js["match"].get("left") in _KEY_MATCHES:
        from netstack.netfilter.nft.errors import Loc
        text = "".join(t for t in last.text if isinstance(t, str))
        return Loc(loc.line, loc.first, loc.first + len(text) - 1)
    return loc


def _only_matches(rc: Any, upto: int) -> bool:
    """Whether every statement before the reject is a match: nft's delinearizer
    (rule_maybe_reset_payload_deps, src/netlink_delinearize.c) forgets a dependency at
    any other statement, after which the reject cannot hide it."""
    for c in rc.codes[:upto]:
        if c.dep:
            continue
        js = c.json or [None]
        if not all(isinstance(j, dict) and "match" in j for j in js):
            return False
    return True


def _hoist(rc: Any, had: int, text: str, json: dict, listed: bool) -> None:
    """stmt_reject_gen_dependency (nft src/evaluate.c) puts the dependency it creates
    at the head of the rule; ``listed`` says whether ``nft list`` shows it."""
    if len(rc.codes) <= had:
        return
    dep = rc.codes.pop()
    upto = len(rc.codes)
    if not listed and not _only_matches(rc, upto):
        listed = True
    dep.dep = not listed
    dep.text = [text] if listed else []
    dep.json = [json] if listed else None
    rc.codes.insert(0, dep)


def _emit(rc: Any, cls: type, rtype: int, code: int, text: list[str]) -> None:
    """Emit the reject expression with its listing and its JSON form (named by the
    expression's own type and family, as nft's reject_stmt_json does)."""
    from netstack.netfilter.nft import types as T
    if rtype == 1:
        js: dict = {"type": "tcp reset"}
    else:
        v6 = rc.family == "ip6" or (rc.family != "ip" and rc.nh == "ip6")
        kind = "icmpx" if rtype == 2 else "icmpv6" if v6 else "icmp"
        table = {"icmpx": T.ICMPX_CODES, "icmp": T.ICMP_CODES, "icmpv6": T.ICMP6_CODES}
        name = next(k for k, v in table[kind].items() if v == code)
        js = {"type": kind, "expr": name}
    rc.emit([cls(rtype, code, rc.family)], text, json=[{"reject": js}])


def compile_reject(rc: Any, st: Any, cls: type) -> None:
    """``stmt_evaluate_reject`` (nft 1.0.6 src/evaluate.c) for every family, emitting
    ``cls`` on the rule compiler ``rc``.  Forms, dependencies, listing and error texts
    as measured with Debian's nft 1.0.6:

    * ``tcp reset``: ``meta l4proto tcp`` goes to the head of the rule; ip/ip6 list it
      only when a non-match statement precedes the reject, inet/bridge/netdev always;
      after another transport protocol: "you cannot use tcp reset with this protocol";
    * ``icmp``/``icmpv6 CODE``: inet adds ``meta nfproto``, bridge/netdev ``meta
      protocol``, at the head, listed only when a non-match statement precedes; the
      other IP version: "conflicting protocols specified: ip vs ip6"; outside ip/ip6 the
      listing always names the code;
    * bare ``reject``: ICMP(v6) port unreachable when the family or context is IPv4 /
      IPv6, else icmpx port-unreachable; ARP in the context: "cannot reject this
      network family"."""
    from netstack.netfilter.nft import types as T
    from netstack.netfilter.nft.errors import NftError
    fam = rc.family
    fixed = fam in ("ip", "ip6")
    key = None if fixed else _nh_key_match(rc)
    # bridge/netdev take the network protocol from the link layer: an ARP match there
    # is a context nft cannot reject in (inet ignores it and rejects with icmpx)
    if rc.nh == "arp" or (fam != "inet" and key is not None and
                          key[0].json[0]["match"].get("right") == "arp"):
        raise NftError("cannot reject this network family", st.loc, _ctx_loc(rc))
    if fam == "inet" and st.kind is None and key is not None and key[1] == "ether" and \
            key[0].json[0]["match"].get("right") == "arp":
        # stmt_evaluate_reject_default: an inet rule whose link layer says ARP (the
        # message carries its own newline, so nft prints a blank line after it)
        raise NftError("cannot infer ICMP reject variant to use: explicit value "
                       "required.\n", st.loc)
    if st.kind == "tcp reset":
        if rc.th is not None and rc.th != 6:
            raise NftError("you cannot use tcp reset with this protocol", st.loc,
                           _ctx_loc(rc))
        had = len(rc.codes)
        # ip/ip6: stmt_reject_postprocess releases an explicit transport match as the
        # reset's dependency (``ip6 nexthdr tcp`` is not listed); other families keep it
        rc.need_l4("tcp", st.loc, kill=fixed)
        _hoist(rc, had, "meta l4proto tcp", {"match": {"op": "==", "left": {"meta": {
            "key": "l4proto"}}, "right": "tcp"}}, not fixed)
        _emit(rc, cls, 1, 0, ["reject with tcp reset"])
        return
    if st.kind == "icmpx":
        code = T.ICMPX_CODES.get(st.code or "")
        if code is None:
            raise NftError("Could not parse icmpx code", _code_loc(st))
        if fixed:
            raise NftError("abstracted ICMP unreachable not supported", _code_loc(st),
                           st.loc)
        _emit(rc, cls, 2, code, ["reject" if code == 1 else
                                      f"reject with icmpx {st.code}"])
        return
    if st.kind in ("icmp", "icmpv6"):
        proto = "ip" if st.kind == "icmp" else "ip6"
        table = T.ICMP_CODES if st.kind == "icmp" else T.ICMP6_CODES
        code = table.get(st.code or "")
        if code is None:
            raise NftError(f"Could not parse {st.kind} code", _code_loc(st))
        if fixed and fam != proto:
            raise NftError("conflicting protocols specified: ip vs ip6", _code_loc(st),
                           st.loc)
        if rc.nh is not None and rc.nh != proto:
            raise NftError("conflicting protocols specified: ip vs ip6", _code_loc(st),
                           _ctx_loc(rc))
        had = len(rc.codes)
        rc.need_nh(proto, st.loc)
        if fam == "inet":
            name = "ipv4" if proto == "ip" else "ipv6"
            _hoist(rc, had, f"meta nfproto {name}", {"match": {"op": "==", "left": {
                "meta": {"key": "nfproto"}}, "right": name}}, False)
        elif not fixed:
            _hoist(rc, had, f"meta protocol {proto}", {"match": {"op": "==", "left": {
                "meta": {"key": "protocol"}}, "right": proto}}, False)
        # reject_stmt_print: ip/ip6 print the default code as a bare ``reject``
        default = (3 if proto == "ip" else 4)
        txt = "reject" if fixed and code == default else f"reject with {st.kind} {st.code}"
        _emit(rc, cls, 0, code, [txt])
        return
    if fixed:
        # the family decides, whatever a ``meta protocol``/``ether type`` match says
        _emit(rc, cls, 0, 3 if fam == "ip" else 4, ["reject"])
        return
    nh = rc.nh
    if fam == "inet" and key is not None and key[1] == "meta":
        nh = None                  # inet takes the network protocol from nfproto only
    if nh not in ("ip", "ip6"):
        _emit(rc, cls, 2, 1, ["reject"])
        return
    if key is not None:
        # stmt_reject_postprocess: the match that gave the network protocol is
        # released as the reject's dependency (not listed)
        key[0].dep = True
    if nh == "ip":
        _emit(rc, cls, 0, 3, ["reject with icmp port-unreachable"])
    else:
        _emit(rc, cls, 0, 4, ["reject with icmpv6 port-unreachable"])


def _nh_key_match(rc: Any) -> tuple[Any, str] | None:
    """The listed ``meta protocol`` / ``ether type`` equality match of the rule, if any,
    with which of the two it is."""
    for c in reversed(rc.codes):
        if c.dep:
            continue
        js = (c.json or [None])[0]
        if not (isinstance(js, dict) and "match" in js and js["match"].get("op") == "=="):
            continue
        left = js["match"].get("left")
        if left == {"meta": {"key": "protocol"}}:
            return c, "meta"
        if left == {"payload": {"protocol": "ether", "field": "type"}}:
            return c, "ether"
    return None
