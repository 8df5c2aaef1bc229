"""TCP over IPv6 for a host without TCP sockets (net/ipv6/tcp_ipv6.c, Linux 6.18).

``tcp_v6_rcv`` runs the same checks as ``tcp_v4_rcv`` (see
:mod:`netstack.ipv4.tcp_ipv4`: PACKET_HOST, ``TcpInSegs``, header length, checksum with
the IPv6 pseudo header, ``no_tcp_socket``) and answers with ``tcp_v6_send_reset``:

* no reset for a RST, for malformed auth options or an MD5-signed segment, or when the
  destination is not one of our unicast addresses (``ipv6_unicast_destination``: the
  input route must be RTF_LOCAL, so an anycast destination gets none);
* seq/ack as RFC 9293 §3.10.7.1 (SYN and FIN count one each), window 0, no options;
* ``tcp_v6_send_response``: flow from the segment's destination to its source (output
  interface = the input one for a link-local/multicast/loopback destination,
  ``rt6_need_strict``), the segment's mark with ``net.ipv6.fwmark_reflect``
  (``IP6_REPLY_MARK``), flow label reflected only with bit 2 (FLOWLABEL_REFLECT_TCP_RESET)
  of ``net.ipv6.flowlabel_reflect`` — otherwise ``ip6_make_flowlabel`` with the control
  socket's default autolabel —, traffic class = the segment's DS field without ECN bits,
  hop limit from the route (``ip6_dst_hoplimit``); the kernel leaves the checksum
  CHECKSUM_PARTIAL (``__tcp_v6_send_check``), netstack fills it (same wire bytes);
* ``TcpOutSegs``/``TcpOutRsts`` only when a route back exists (unlike IPv4).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.skb_csum import ip6_compute_pseudo, skb_postpull_rcsum
from netstack.ipv4.tcp_ipv4 import (INET_ECN_MASK, IPPROTO_TCP, TCPHDR_ACK, build_reset,
                                    may_send_reset, tcp_mib, tcp_rcv_common)
from netstack.packet.checksum import csum_ipv6_magic, csum_partial

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

#: FLOWLABEL_REFLECT_TCP_RESET (include/net/ipv6.h)
FLOWLABEL_REFLECT_TCP_RESET = 2
#: IP6_AUTO_FLOW_LABEL_OPTIN
_AUTO_FLOW_LABEL_OPTIN = 3


def tcp_v6_rcv(pkt: "Packet") -> None:
    """``tcp_v6_rcv`` for a namespace without TCP sockets.  Registered in
    ``net.proto["inet6_protos"]``; the TCP header is at ``pkt.transport_header``.  The
    IPv6 and extension headers are pulled first, with their bytes leaving a
    CHECKSUM_COMPLETE sum (``skb_postpull_rcsum`` in ``ip6_protocol_deliver_rcu``)."""
    net = pkt.dev.net
    th = pkt.transport_header
    old = pkt.data
    if old != th:
        pkt.data = th
        skb_postpull_rcsum(pkt, old, th - old)
    reason = tcp_rcv_common(pkt, net, ip6_compute_pseudo)
    if reason is None:
        reason = "NO_SOCKET"
        tcp_v6_send_reset(net, pkt)
    kfree_skb_reason(pkt, reason, net)


def _need_strict(addr: bytes) -> bool:
    """``rt6_need_strict``: multicast, link-local or loopback destination."""
    return addr[0] == 0xFF or (addr[0] == 0xFE and addr[1] & 0xC0 == 0x80) or \
        addr == bytes(15) + b"\x01"


def tcp_v6_send_reset(net: "Net", pkt: "Packet") -> None:
    """``tcp_v6_send_reset(NULL, skb)`` → ``tcp_v6_send_response`` (module docstring)."""
    from netstack.errors import KernelError
    from netstack.ipv6.ip6_output import ip6_dst_hoplimit, ip6_local_out, ip6_make_flowlabel
    from netstack.ipv6.route import RTN_LOCAL, Flowi6, ip6_route_output
    from netstack.packet.ipv6 import build_ipv6
    buf = pkt.buf
    th = pkt.data
    if not may_send_reset(buf, th):
        return
    dst = pkt.dst
    if dst is None or dst.type != RTN_LOCAL:
        return
    nh = pkt.network_header
    seg_src = bytes(buf[nh + 8:nh + 24])
    seg_dst = bytes(buf[nh + 24:nh + 40])
    tcp = build_reset(buf, th, pkt.tail - th)
    values = net.sysctl.values
    label = 0
    if int(values.get("net.ipv6.flowlabel_reflect", 0)) & FLOWLABEL_REFLECT_TCP_RESET:
        label = ((buf[nh + 1] & 0x0F) << 16) | (buf[nh + 2] << 8) | buf[nh + 3]
    tclass = (((buf[nh] & 0x0F) << 4) | (buf[nh + 1] >> 4)) & ~INET_ECN_MASK & 0xFF
    oif = pkt.skb_iif if _need_strict(seg_src) else 0
    mark = pkt.mark if values.get("net.ipv6.fwmark_reflect", 0) else 0
    sport, dport = (tcp[0] << 8) | tcp[1], (tcp[2] << 8) | tcp[3]
    try:
        rt = ip6_route_output(net, Flowi6(seg_src, seg_dst, oif, 0, mark, IPPROTO_TCP,
                                          sport, dport, label))
    except KernelError:
        return
    if getattr(rt, "error", 0):
        return
    # __tcp_v6_send_check leaves the sum CHECKSUM_PARTIAL for the device; netstack fills
    # it here (the bytes on the wire are the same, see docs/tcp.md "Known differences")
    c = csum_ipv6_magic(seg_dst, seg_src, 20, IPPROTO_TCP, csum_partial(bytes(tcp)))
    tcp[16] = c >> 8
    tcp[17] = c & 0xFF
    if not label:
        mode = int(values.get("net.ipv6.auto_flowlabels", 1))
        label = ip6_make_flowlabel(net, seg_dst, seg_src, IPPROTO_TCP, sport, dport,
                                   autolabel=mode != _AUTO_FLOW_LABEL_OPTIN)
    if pkt.trace is not None:
        pkt.trace.event(pkt, "tcp_send_reset",
                        info="flags=R." if tcp[13] & TCPHDR_ACK else "flags=R")
    data = build_ipv6(seg_dst, seg_src, IPPROTO_TCP, bytes(tcp), traffic_class=tclass,
                      flow_label=label, hop_limit=ip6_dst_hoplimit(rt))
    nskb = net.world.new_packet(data)
    if pkt.trace is None:
        nskb.trace = None
    nskb.network_header = nskb.data
    nskb.transport_header = nskb.data + 40
    nskb.protocol = 0x86DD
    nskb.dst = rt
    nskb.dev = rt.dev
    nskb.mark = mark
    ip6_local_out(net, nskb)
    mib = tcp_mib(net)
    mib["TcpOutSegs"] += 1
    mib["TcpOutRsts"] += 1


__all__ = ["tcp_v6_rcv", "tcp_v6_send_reset"]
