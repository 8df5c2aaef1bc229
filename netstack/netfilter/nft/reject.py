"""``reject with tcp reset`` for IPv4: net/ipv4/netfilter/nf_reject_ipv4.c ``nf_send_reset``.

The reset answers the offending segment from its destination: addresses and ports
swapped; if the segment carried an ACK the reset takes its sequence number from that
ACK, otherwise it ACKs everything the segment occupied (SYN and FIN count one each)
with sequence 0; no reset is sent for a reset or for a non-first fragment.  The IP
header has DF set, id 0 and the default TTL, and leaves through a fresh output route
(``ip_route_me_harder``) with ``ip_local_out``."""
from __future__ import annotations

import struct
from typing import Any

from netstack.errors import NotSupported


def send_tcp_reset(info: Any, pf: int) -> None:
    """Build and send the reset for ``info.pkt`` (a :class:`~.vm.PktInfo`)."""
    if pf != 2:
        raise NotSupported("reject with tcp reset for IPv6")
    pkt, net = info.pkt, info.net
    if not info.tprot_set or info.tprot != 6 or info.fragoff or net is None:
        return
    buf, th = pkt.buf, info.thoff
    nh = pkt.network_header
    if th + 20 > pkt.tail:
        return
    sport, dport, seq, ack_seq, doff_res, flags = struct.unpack_from(">HHIIBB", buf, th)
    if flags & 0x04:                       # never answer a reset
        return
    tot = struct.unpack_from(">H", buf, nh + 2)[0]
    payload = max(0, nh + tot - th - (doff_res >> 4) * 4)
    if flags & 0x10:
        nseq, nack, nflags = ack_seq, 0, 0x04
    else:
        nseq = 0
        nack = (seq + (flags & 0x02 and 1) + (flags & 0x01 and 1) + payload) & 0xFFFFFFFF
        nflags = 0x14
    saddr, daddr = bytes(buf[nh + 16:nh + 20]), bytes(buf[nh + 12:nh + 16])
    from netstack.ipv4.fib import Flowi4
    from netstack.ipv4.route import ip_route_output
    from netstack.packet.tcp import tcp_checksum
    try:
        rt = ip_route_output(net, Flowi4(daddr=daddr, saddr=saddr, proto=6))
    except Exception:                      # no route back: nothing is sent (as the kernel)
        return
    tcp = bytearray(struct.pack(">HHIIBBHHH", dport, sport, nseq, nack, 5 << 4, nflags,
                                0, 0, 0))
    struct.pack_into(">H", tcp, 16, tcp_checksum(saddr, daddr, bytes(tcp)))
    ttl = net.sysctl.get("net.ipv4.ip_default_ttl")
    iph = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 40, 0, 0x4000, ttl, 6, 0, saddr, daddr)
    from netstack.ipv4.ip_output import ip_local_out
    nskb = net.world.new_packet(iph + bytes(tcp))
    nskb.dst = rt
    ip_local_out(net, nskb)
