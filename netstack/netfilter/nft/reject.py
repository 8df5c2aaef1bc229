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


def _segment(info: Any) -> tuple[int, int, int, int, int, int, int] | None:
    """The offending segment's ports, seq, ack, data offset, flags and TCP length, or None
    when no reset may be sent for it."""
    pkt = info.pkt
    if not info.tprot_set or info.tprot != 6 or info.fragoff or info.net is None:
        return None
    th = info.thoff
    if th + 20 > pkt.tail:
        return None
    sport, dport, seq, ack_seq, doff_res, flags = struct.unpack_from(">HHIIBB", pkt.buf, th)
    if flags & 0x04:                       # never answer a reset
        return None
    return sport, dport, seq, ack_seq, doff_res >> 4, flags, pkt.tail - th


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
