"""TCP receive for a host without TCP sockets (net/ipv4/tcp_ipv4.c, Linux 6.18).

netstack has no TCP sockets, so every segment delivered locally takes the kernel's
``no_tcp_socket`` path of ``tcp_v4_rcv``.  What is reproduced, in the kernel's order:

1. ``skb->pkt_type != PACKET_HOST`` → drop NOT_SPECIFIED, nothing counted;
2. ``TCP_MIB_INSEGS`` (``TcpInSegs``) — "count it even if it's bad";
3. fewer than 20 bytes (``pskb_may_pull``) → drop NOT_SPECIFIED; ``doff < 5`` →
   ``TcpInErrs``, drop PKT_TOO_SMALL (``bad_packet``); fewer than ``doff * 4`` bytes →
   drop NOT_SPECIFIED;
4. ``skb_checksum_init(skb, IPPROTO_TCP, inet_compute_pseudo)``: a bad sum found now →
   ``TcpInCsumErrors`` + ``TcpInErrs``, drop TCP_CSUM;
5. ``__inet_lookup_skb`` misses (always, here) → ``no_tcp_socket``: the deferred checksum
   is completed (``tcp_checksum_complete``; bad → the same counters and TCP_CSUM), else
   ``tcp_v4_send_reset`` and drop NO_SOCKET.

``tcp_v4_send_reset`` (no socket): never for a RST; only when the input route is
RTN_LOCAL (a segment to a broadcast/multicast address gets none); no reset when the
options are malformed or carry an MD5 signature (``tcp_parse_auth_options``, then the
listener lookup for the MD5 key fails: "don't send rst if it can't find key").  RFC 9293
§3.10.7.1: an ACK-bearing segment is answered ``<SEQ=SEG.ACK><CTL=RST>``, any other
``<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`` where SEG.LEN counts SYN and FIN.  The
window is 0, no options.

The reply leaves through ``ip_send_unicast_reply`` (net/ipv4/ip_output.c) on the per-cpu
control socket created by ``tcp_sk_init`` with ``pmtudisc = IP_PMTUDISC_DO`` ("enforce
IP_DF and IPID==0 for RST"): source = the segment's destination, flow with the
segment's DS field (``arg->tos & INET_DSCP_MASK``), the segment's mark when
``net.ipv4.fwmark_reflect`` (``IP4_REPLY_MARK``), the reply's TOS byte the segment's TOS
without ECN bits (``inet->tos = arg->tos & ~INET_ECN_MASK``), TTL from the route's
hoplimit metric or ``ip_default_ttl``, DF set and ID 0, the segment's IP options echoed
(``__ip_options_echo``).  ``TcpOutSegs``/``TcpOutRsts`` are counted after the call even
when no route back exists, as the kernel does.

The TCP MIB is one per namespace for both families (``net->mib.tcp_statistics``); it is
kept in ``net.ipv4.mib`` under ``Tcp*`` names (nstat's), see :func:`tcp_mib`.

Not modelled: an oif from an L3 master (VRF) input device (netstack has no VRF) and
xfrm policy checks (no IPsec).  TCP sockets (listen/connect) are :func:`tcp_socket`,
which raises NotSupported.
"""
from __future__ import annotations

import struct
from collections import Counter
from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.skb_csum import (inet_compute_pseudo, skb_checksum_complete,
                                    skb_checksum_init)
from netstack.errors import NotSupported
from netstack.packet.checksum import csum_partial, csum_tcpudp_magic
from netstack.packet.skb import PACKET_HOST

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

IPPROTO_TCP = 6

TCPHDR_FIN = 0x01
TCPHDR_SYN = 0x02
TCPHDR_RST = 0x04
TCPHDR_ACK = 0x10

TCPOPT_EOL = 0
TCPOPT_NOP = 1
TCPOPT_MD5SIG = 19
TCPOPT_AO = 29
TCPOLEN_MD5SIG = 18
#: ``sizeof(struct tcp_ao_hdr)``
TCP_AO_HDR_LEN = 4

#: INET_ECN_MASK / INET_DSCP_MASK (include/net/inet_ecn.h, inet_dscp.h)
INET_ECN_MASK = 0x03
INET_DSCP_MASK = 0xFC

RTN_LOCAL = 2

_TH = struct.Struct(">HHIIBBHHH")


def tcp_mib(net: "Net") -> Counter[str]:
    """The namespace's TCP MIB (``net->mib.tcp_statistics``, shared by IPv4 and IPv6):
    ``net.ipv4.mib`` when IPv4 is registered, else a counter kept in ``net.proto``."""
    ipv4 = getattr(net, "ipv4", None)
    if ipv4 is not None:
        return ipv4.mib
    mib: Counter[str] = net.proto.setdefault("tcp_mib", Counter())
    return mib


def tcp_parse_auth_options(buf: bytearray | bytes, th: int) -> tuple[bool, bool]:
    """``tcp_parse_auth_options`` → ``tcp_do_parse_auth_options`` (net/ipv4/tcp_input.c)
    on a kernel with CONFIG_TCP_MD5SIG=y and CONFIG_TCP_AO unset (Linux 6.18 as
    measured): returns (ok, has_md5).  The walk stops once fewer than
    ``TCPOLEN_MD5SIG`` bytes remain, so short option lists are never examined; a bad
    option size, or a second MD5/AO option, makes it fail (no reset is sent)."""
    length = ((buf[th + 12] >> 4) << 2) - 20
    p = th + 20
    md5 = ao = False
    while length >= TCPOLEN_MD5SIG:
        opcode = buf[p]
        p += 1
        if opcode == TCPOPT_EOL:
            return True, md5
        if opcode == TCPOPT_NOP:
            length -= 1
            continue
        opsize = buf[p]
        p += 1
        if opsize < 2 or opsize > length:
            return False, md5
        if opcode == TCPOPT_MD5SIG:
            if opsize != TCPOLEN_MD5SIG:
                return False, md5
            if md5 or ao:
                return False, md5
            md5 = True
        elif opcode == TCPOPT_AO:
            if opsize <= TCP_AO_HDR_LEN:
                return False, md5
            if md5 or ao:
                return False, md5
            ao = True
        p += opsize - 2
        length -= opsize
    return True, md5


def reset_header(buf: bytearray | bytes, th: int, seg_len: int) -> tuple[int, int, int]:
    """The reset's (seq, ack_seq, flags) for the segment at ``th`` whose TCP length
    (header included, ``skb->len``) is ``seg_len`` — RFC 9293 §3.10.7.1 as
    ``tcp_v4_send_reset`` / ``tcp_v6_send_reset`` compute it."""
    flags = buf[th + 13]
    if flags & TCPHDR_ACK:
        return struct.unpack_from(">I", buf, th + 8)[0], 0, TCPHDR_RST
    seq = struct.unpack_from(">I", buf, th + 4)[0]
    doff = (buf[th + 12] >> 4) << 2
    ack = (seq + (flags & TCPHDR_SYN and 1) + (flags & TCPHDR_FIN and 1) + seg_len - doff)
    return 0, ack & 0xFFFFFFFF, TCPHDR_RST | TCPHDR_ACK


def build_reset(buf: bytearray | bytes, th: int, seg_len: int) -> bytearray:
    """The 20-byte reset header, check field 0 (the caller sums it with its pseudo
    header): ports swapped, doff 5, window 0."""
    seq, ack, flags = reset_header(buf, th, seg_len)
    sport, dport = struct.unpack_from(">HH", buf, th)
    return bytearray(_TH.pack(dport, sport, seq, ack, 5 << 4, flags, 0, 0, 0))


def may_send_reset(buf: bytearray | bytes, th: int) -> bool:
    """The socket-independent refusals of ``tcp_v{4,6}_send_reset``: never answer a
    RST; no reset for malformed auth options or an MD5-signed segment (no listener
    holds a key for it)."""
    if buf[th + 13] & TCPHDR_RST:
        return False
    ok, md5 = tcp_parse_auth_options(buf, th)
    return ok and not md5


def tcp_rcv_common(pkt: "Packet", net: "Net", compute_pseudo: Any) -> str | None:
    """The checks ``tcp_v4_rcv`` and ``tcp_v6_rcv`` share, up to the socket lookup.
    ``pkt.data`` is the TCP header.  Returns the drop reason when the segment is
    dropped before ``no_tcp_socket`` (counters done), else None."""
    if pkt.pkt_type != PACKET_HOST:
        return "NOT_SPECIFIED"
    mib = tcp_mib(net)
    mib["TcpInSegs"] += 1
    th = pkt.data
    n = pkt.tail - th
    if n < 20:
        return "NOT_SPECIFIED"
    doff = (pkt.buf[th + 12] >> 4) << 2
    if doff < 20:
        mib["TcpInErrs"] += 1
        return "PKT_TOO_SMALL"
    if n < doff:
        return "NOT_SPECIFIED"
    if skb_checksum_init(pkt, IPPROTO_TCP, compute_pseudo):
        return _csum_error(mib)
    # __inet_lookup_skb / __inet6_lookup_skb: no sockets, always a miss → no_tcp_socket
    if skb_checksum_complete(pkt):
        return _csum_error(mib)
    return None


def _csum_error(mib: Counter[str]) -> str:
    """``csum_error:`` then ``bad_packet:`` in tcp_v{4,6}_rcv."""
    mib["TcpInCsumErrors"] += 1
    mib["TcpInErrs"] += 1
    return "TCP_CSUM"


def tcp_v4_rcv(pkt: "Packet") -> None:
    """``tcp_v4_rcv`` for a namespace without TCP sockets (module docstring).  Called by
    ``ip_protocol_deliver`` with ``pkt.data`` at the TCP header."""
    net = pkt.dev.net
    reason = tcp_rcv_common(pkt, net, inet_compute_pseudo)
    if reason is None:
        reason = "NO_SOCKET"
        tcp_v4_send_reset(net, pkt)
    kfree_skb_reason(pkt, reason, net)


def tcp_v4_send_reset(net: "Net", pkt: "Packet") -> None:
    """``tcp_v4_send_reset(NULL, skb)`` → ``ip_send_unicast_reply`` (module docstring)."""
    buf = pkt.buf
    th = pkt.data
    if not may_send_reset(buf, th):
        return
    rt = pkt.dst
    if rt is None or getattr(rt, "type", None) != RTN_LOCAL:
        return
    nh = pkt.network_header
    saddr = bytes(buf[nh + 12:nh + 16])     # the segment's source: the reset's daddr
    daddr = bytes(buf[nh + 16:nh + 20])
    tcp = build_reset(buf, th, pkt.tail - th)
    c = csum_tcpudp_magic(daddr, saddr, 20, IPPROTO_TCP, csum_partial(bytes(tcp)))
    tcp[16] = c >> 8
    tcp[17] = c & 0xFF
    if pkt.trace is not None:
        f = tcp[13]
        pkt.trace.event(pkt, "tcp_send_reset",
                        info="flags=R." if f & TCPHDR_ACK else "flags=R")
    _ip_send_unicast_reply(net, pkt, saddr, daddr, tcp)
    mib = tcp_mib(net)
    mib["TcpOutSegs"] += 1
    mib["TcpOutRsts"] += 1


def _ip_send_unicast_reply(net: "Net", pkt: "Packet", daddr: bytes, saddr: bytes,
                           tcp: bytearray) -> None:
    """``ip_send_unicast_reply`` with the TCP control socket (module docstring)."""
    from netstack.errors import KernelError
    from netstack.ipv4 import af_inet
    from netstack.ipv4.icmp import _ip_options_build, ip_options_echo
    from netstack.ipv4.ip_output import IP_PMTUDISC_DO, EmsgSize, ip_local_out, ip_make_skb
    route = af_inet.route
    if route is None:
        return
    opts = ip_options_echo(net, pkt)
    if opts is None:
        return
    buf = pkt.buf
    nh = pkt.network_header
    tos = buf[nh + 1]
    mark = pkt.mark if net.sysctl.values.get("net.ipv4.fwmark_reflect", 0) else 0
    th = pkt.data
    fl4 = af_inet.flowi4(daddr=daddr, saddr=saddr, tos=tos & INET_DSCP_MASK, mark=mark,
                 proto=IPPROTO_TCP, sport=(buf[th] << 8) | buf[th + 1],
                 dport=(buf[th + 2] << 8) | buf[th + 3])
    try:
        rt = route.ip_route_output(net, fl4)
    except KernelError:
        return
    nskb = ip_make_skb(net, rt, saddr, daddr, IPPROTO_TCP, tcp, tos=tos & ~INET_ECN_MASK,
                       pmtudisc=IP_PMTUDISC_DO, options=opts[0], mark=mark)
    if opts[1]:
        _ip_options_build(net, nskb, opts[1])
    if pkt.trace is None:
        nskb.trace = None
    try:
        ip_local_out(net, nskb)
    except EmsgSize:                       # a 40-byte reply cannot exceed any MTU ≥ 68
        kfree_skb_reason(nskb, "NOT_SPECIFIED", net)


def tcp_socket(*_args: Any, **_kw: Any) -> Any:
    """TCP sockets (``listen``/``connect``/``accept``) are not modelled."""
    raise NotSupported("TCP sockets (listen/connect): netstack answers every TCP segment "
                       "as the kernel does for a closed port")


__all__ = ["tcp_v4_rcv", "tcp_v4_send_reset", "tcp_rcv_common", "tcp_mib",
           "tcp_parse_auth_options", "reset_header", "build_reset", "may_send_reset",
           "tcp_socket"]
