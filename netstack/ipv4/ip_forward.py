"""IPv4 forwarding (net/ipv4/ip_forward.c ``ip_forward``/``ip_forward_finish``, Linux 6.18).

Per packet, in the kernel's order: not for this host at L2 → drop; TTL ≤ 1 → ICMP time
exceeded (InHdrErrors, reason IP_INHDR); larger than the next-hop MTU with DF → ICMP
fragmentation needed carrying that MTU (FragFails, reason PKT_TOO_BIG); then the TTL is
decremented with the kernel's incremental checksum (``ip_decrease_ttl``), an ICMP
redirect is sent when the route asks for one, ``skb->priority`` is set from the TOS
(``ip_forward_update_priority``) and ``ip_forward_finish`` counts ForwDatagrams, updates
RR/TS options and hands the packet to ``dst_output``.

Unlike the kernel (which forwards one skb at a time), :func:`ip_forward_list` forwards a
sublist that shares one route and passes the survivors to ``ip_output_list`` together, so
they reach the output device as one batch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.core.drop_reason import kfree_skb_reason
from netstack.ipv4 import af_inet
from netstack.core.gso import skb_gso_validate_network_len
from netstack.ipv4.ip_output import ip_dst_mtu_maybe_forward, ip_output_list
from netstack.netfilter.core import NF_INET_FORWARD, NFPROTO_IPV4, nf_hook, nf_hook_entries
from netstack.packet.skb import PACKET_HOST

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

IP_DF = 0x4000
RTCF_DOREDIRECT = 0x01000000

#: ``ip_tos2prio`` (net/ipv4/route.c) indexed by ``IPTOS_TOS(tos) >> 1``:
#: TC_PRIO_BESTEFFORT 0, BULK 2, INTERACTIVE 6, INTERACTIVE_BULK 4.
IP_TOS2PRIO = (0, 0, 0, 0, 2, 2, 2, 2, 6, 6, 6, 6, 4, 4, 4, 4)


def rt_tos2priority(tos: int) -> int:
    """``rt_tos2priority``."""
    return IP_TOS2PRIO[(tos & 0x1E) >> 1]


def ip_decrease_ttl(buf: bytearray, nh: int) -> int:
    """``ip_decrease_ttl`` (include/net/ip.h): add ``htons(0x0100)`` to the checksum field
    as the little-endian u16 the kernel sees on x86, fold the carry with
    ``check + (check >= 0xFFFF)``, and decrement the TTL.  Returns the new TTL."""
    # The field bytes as a native (little-endian) u16: low byte first.
    check = buf[nh + 10] | (buf[nh + 11] << 8)
    check += 0x0001  # htons(0x0100) on a little-endian machine
    check = (check + (check >= 0xFFFF)) & 0xFFFF
    buf[nh + 10] = check & 0xFF
    buf[nh + 11] = check >> 8
    ttl = buf[nh + 8] - 1
    buf[nh + 8] = ttl
    return ttl


def ip_forward_list(net: "Net", pkts: list["Packet"]) -> None:
    """``ip_forward`` for every packet of a sublist sharing ``pkts[0].dst``."""
    from netstack.ipv4.icmp import (ICMP_DEST_UNREACH, ICMP_EXC_TTL, ICMP_FRAG_NEEDED,
                                    ICMP_TIME_EXCEEDED, icmp_send)
    rt = pkts[0].dst
    ipv4 = net.ipv4
    mib = ipv4.mib
    values = net.sysctl.values
    mtu = ip_dst_mtu_maybe_forward(net, rt, True)
    update_prio = values.get("net.ipv4.ip_forward_update_priority", 1)
    redirect = rt.flags & RTCF_DOREDIRECT
    fwd_hooks = nf_hook_entries(net, NFPROTO_IPV4, NF_INET_FORWARD)
    out: list[Packet] = []
    append = out.append
    for pkt in pkts:
        if pkt.pkt_type != PACKET_HOST or pkt.sk is not None:
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            continue
        buf = pkt.buf
        nh = pkt.network_header
        # (ip_call_ra_chain would divert router-alert packets to IP_ROUTER_ALERT sockets;
        # netstack has none, so such packets are forwarded like the others.)
        ttl = buf[nh + 8]
        if ttl <= 1:
            mib["IpInHdrErrors"] += 1
            icmp_send(pkt, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL, 0)
            kfree_skb_reason(pkt, "IP_INHDR", net)
            continue
        if pkt.tail - pkt.data > mtu and buf[nh + 6] & 0x40 and (
                pkt.__dict__.get("frag_max_size", 0) > mtu
                or not (pkt.__dict__.get("ignore_df")
                        or (pkt.gso_size and skb_gso_validate_network_len(pkt, mtu)))):
            # ip_exceeds_mtu: a datagram conntrack reassembled has ignore_df and is
            # refused only when one of its fragments was larger than the MTU; a GSO
            # packet passes when each of its segments would fit
            mib["IpFragFails"] += 1
            icmp_send(pkt, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu)
            kfree_skb_reason(pkt, "PKT_TOO_BIG", net)
            continue
        # ip_decrease_ttl, inline (see that function for the arithmetic): the checksum
        # field read as a little-endian u16 gains 1 with the carry folded.
        check = (buf[nh + 10] | (buf[nh + 11] << 8)) + 1
        if check >= 0xFFFF:
            check = (check + 1) & 0xFFFF
        buf[nh + 10] = check & 0xFF
        buf[nh + 11] = check >> 8
        buf[nh + 8] = ttl - 1
        cb = pkt.cb
        if redirect and (cb is None or not cb.srr):
            ip_rt_send_redirect(net, pkt)
        if update_prio:
            pkt.priority = IP_TOS2PRIO[(buf[nh + 1] & 0x1E) >> 1]
        if pkt.trace is not None:
            pkt.trace.event(pkt, "ip_forward")
        # NF_HOOK(NFPROTO_IPV4, NF_INET_FORWARD, …, skb->dev, rt->dst.dev, ip_forward_finish)
        if fwd_hooks and not nf_hook(net, NFPROTO_IPV4, NF_INET_FORWARD, pkt, pkt.dev,
                                     rt.dev):
            continue
        # ip_forward_finish
        if cb is not None and cb.optlen:
            ip_forward_options(pkt)
        pkt.tstamp = 0
        append(pkt)
    if out:
        mib["IpForwDatagrams"] += len(out)
        ip_output_list(net, out, rt, True)


#: ip_rt_redirect_number / ip_rt_redirect_load / ip_rt_redirect_silence (net/ipv4/route.c),
#: in jiffies at HZ=1000.
IP_RT_REDIRECT_NUMBER = 9
IP_RT_REDIRECT_LOAD = 1000 // 50
IP_RT_REDIRECT_SILENCE = (1000 // 50) << (9 + 1)
ICMP_REDIRECT = 5
ICMP_REDIR_HOST = 1


def ip_rt_send_redirect(net: "Net", pkt: "Packet") -> None:
    """``ip_rt_send_redirect`` (net/ipv4/route.c): tell the sender of a packet we forward
    back out of the interface it came in on about the better next hop, with the
    inet_peer backoff: after a first redirect the next needs ``ip_rt_redirect_load <<
    n_redirects`` jiffies, at most ``ip_rt_redirect_number`` are sent, and the count
    resets after ``ip_rt_redirect_silence`` without redirected packets."""
    from netstack.ipv4.icmp import icmp_send
    rt = pkt.dst
    dev = rt.dev
    vals = net.sysctl.values
    if not (vals.get("net.ipv4.conf.all.send_redirects", 1)
            or vals.get(f"net.ipv4.conf.{dev.name}.send_redirects", 1)):
        return
    buf = pkt.buf
    nh = pkt.network_header
    peer = net.ipv4.inet_getpeer(bytes(buf[nh + 12:nh + 16]))
    now = net.world.clock.jiffies
    gw = af_inet.addr_bytes(rt.gateway) if rt.gateway else bytes(buf[nh + 16:nh + 20])
    if now - peer.rate_last > IP_RT_REDIRECT_SILENCE:
        peer.rate_tokens = 0
        peer.n_redirects = 0
    if peer.n_redirects >= IP_RT_REDIRECT_NUMBER:
        peer.rate_last = now
        return
    if peer.n_redirects == 0 or \
            now - (peer.rate_last + (IP_RT_REDIRECT_LOAD << peer.n_redirects)) > 0:
        icmp_send(pkt, ICMP_REDIRECT, ICMP_REDIR_HOST, int.from_bytes(gw, "big"))
        peer.rate_last = now
        peer.n_redirects += 1


def ip_forward_options(pkt: "Packet") -> None:
    """``ip_forward_options``: overwrite the address ``ip_options_compile`` recorded in
    Record Route / Timestamp-with-address on receive with the source address of the
    outgoing route (``ip_rt_get_source``), and recompute the header checksum if any
    option changed."""
    from netstack.ipv4.ip_output import ip_send_check
    opt = pkt.cb
    buf = pkt.buf
    nh = pkt.network_header
    if opt.rr_needaddr or opt.ts_needaddr:
        rt = pkt.dst
        spec = af_inet.addr_bytes(getattr(rt, "prefsrc", None))
        if not spec or spec == b"\0\0\0\0":
            select = getattr(af_inet.devinet, "inet_select_addr", None)
            gw = af_inet.addr_bytes(rt.gateway) if rt.gateway else bytes(buf[nh + 16:nh + 20])
            spec = af_inet.addr_bytes(select(pkt.dev.net, rt.dev, gw, 0)) if select \
                else b"\0\0\0\0"
        if opt.rr_needaddr:
            o = nh + opt.rr
            at = o + buf[o + 2] - 5
            buf[at:at + 4] = spec
            opt.is_changed = True
        if opt.ts_needaddr:
            o = nh + opt.ts
            at = o + buf[o + 2] - 9
            buf[at:at + 4] = spec
            opt.is_changed = True
    if opt.is_changed:
        opt.is_changed = False
        ip_send_check(buf, nh)
