"""IPv4 receive (net/ipv4/ip_input.c, Linux 6.18): ``ip_list_rcv`` → ``ip_rcv_core`` →
``ip_list_rcv_finish`` (route hint, regrouping by dst) → ``dst_input``: local delivery
(``ip_local_deliver``: reassembly, protocol demux) or forwarding (``ip_forward``), or the
error input of an unreachable/prohibit/blackhole route (``ip_error``, net/ipv4/route.c).

Why lists: ``netif_receive_skb_list`` hands a whole sublist to the protocol; IPv4 validates
each packet, looks the route up only when the previous packet's route cannot be reused
(``ip_can_use_hint``: same daddr and tos, no custom rules, not broadcast/zeronet), then
regroups consecutive packets with the same dst.  netstack goes one step further than the
kernel for forwarding: a forward sublist is forwarded as a list so it reaches the output
device as one batch (one doorbell), see :func:`netstack.ipv4.ip_forward.ip_forward_list`.

Netfilter hooks (PREROUTING, LOCAL_IN) are not called from here: netstack has no IPv4
netfilter yet.  UDP early demux (a per-socket cached input route) is not modelled; every
packet goes through the route hint / ``ip_route_input`` instead.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.ipv4 import af_inet
from netstack.ipv4.mib import ECN_COUNTERS
from netstack.netfilter.core import (NF_INET_LOCAL_IN, NF_INET_PRE_ROUTING, NFPROTO_IPV4,
                                     nf_hook, nf_hook_entries)
from netstack.packet.skb import (CHECKSUM_COMPLETE, PACKET_BROADCAST, PACKET_HOST,
                                 PACKET_MULTICAST, PACKET_OTHERHOST)
from netstack.core.rtnetlink import (  # noqa: F401  (re-exported)
    RTN_ANYCAST,
    RTN_BLACKHOLE,
    RTN_BROADCAST,
    RTN_LOCAL,
    RTN_MULTICAST,
    RTN_NAT,
    RTN_PROHIBIT,
    RTN_THROW,
    RTN_UNICAST,
    RTN_UNREACHABLE,
    RTN_UNSPEC,
)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.packet.skb import Packet


# rt_flags (include/uapi/linux/in_route.h).
RTCF_DOREDIRECT = 0x01000000
RTCF_DIRECTSRC = 0x04000000
RTCF_BROADCAST = 0x10000000
RTCF_MULTICAST = 0x20000000
RTCF_LOCAL = 0x80000000

IP_MF = 0x2000
IP_OFFSET = 0x1FFF

#: A 20-byte IPv4 header as big-endian 64 + 64 + 32-bit words (checksum verification).
_unpack_hdr20 = struct.Struct(">QQI").unpack_from
IPPROTO_ICMP = 1
IPPROTO_IGMP = 2
IPPROTO_TCP = 6
IPPROTO_UDP = 17

#: Protocols the kernel always has a handler for but netstack does not model: a packet for
#: them is dropped (counted, traced "not supported") rather than answered with an ICMP
#: protocol unreachable the kernel would never send.
UNMODELLED_PROTOS = {IPPROTO_IGMP: "IGMP"}

#: ``ip_rt_error_cost`` / ``ip_rt_error_burst`` (net/ipv4/route.c), in jiffies.
IP_RT_ERROR_COST = 1000
IP_RT_ERROR_BURST = 5 * 1000

# ip_options_compile option types (include/uapi/linux/ip.h).
IPOPT_END = 0
IPOPT_NOOP = 1
IPOPT_RR = 7
IPOPT_TIMESTAMP = 68
IPOPT_SEC = 130
IPOPT_LSRR = 131
IPOPT_CIPSO = 134
IPOPT_SSRR = 137
IPOPT_RA = 148


class IpOptions:
    """``struct ip_options`` as ``ip_options_compile`` fills it (offsets are relative to the
    IP header).  Only packets that carry options get one (in ``pkt.cb``)."""

    __slots__ = ("optlen", "srr", "rr", "ts", "is_strictroute", "router_alert",
                 "rr_needaddr", "ts_needaddr", "ts_needtime", "cipso", "is_changed")

    def __init__(self, optlen: int) -> None:
        self.optlen = optlen
        self.srr = 0
        self.rr = 0
        self.ts = 0
        self.is_strictroute = False
        self.router_alert = 0
        self.rr_needaddr = False
        self.ts_needaddr = False
        self.ts_needtime = False
        self.cipso = 0
        self.is_changed = False


IPOPT_TS_TSONLY = 0
IPOPT_TS_TSANDADDR = 1
IPOPT_TS_PRESPEC = 3


def ip_options_compile(buf: bytearray, nh: int, optlen: int, spec_dst: bytes = b"\0\0\0\0",
                       now_ms: int = 0, addr_is_unicast: Any = None
                       ) -> tuple[IpOptions | None, int]:
    """``__ip_options_compile`` for a received packet (``skb`` and ``rt`` set): validate
    the options and, as the kernel does on receive, record ``spec_dst`` (the local
    address, ``spec_dst_fill``) in Record Route and Timestamp-with-address slots, stamp
    Timestamp options with ``now_ms`` (ms since midnight UTC), advance their pointers,
    bump a full timestamp option's overflow counter and pad after END with END.
    Returns ``(opt, 0)`` or ``(None, pp_ptr)``, ``pp_ptr`` being the offset (from the IP
    header) of the offending byte for the parameter problem.  ``addr_is_unicast(addr)``
    tells whether a prespecified timestamp address is someone else's (skip)."""
    opt = IpOptions(optlen)
    off = 20
    end = 20 + optlen
    while off < end:
        t = buf[nh + off]
        if t == IPOPT_END:
            for i in range(off + 1, end):
                if buf[nh + i] != IPOPT_END:
                    buf[nh + i] = IPOPT_END
                    opt.is_changed = True
            break
        if t == IPOPT_NOOP:
            off += 1
            continue
        if end - off < 2:
            return None, off
        olen = buf[nh + off + 1]
        if olen < 2 or olen > end - off:
            return None, off
        o = nh + off
        if t in (IPOPT_SSRR, IPOPT_LSRR):
            if olen < 3:
                return None, off + 1
            if buf[o + 2] < 4:
                return None, off + 2
            # "NB: cf RFC-1812 5.2.4.1": a second source route is an error.
            if opt.srr:
                return None, off
            opt.is_strictroute = t == IPOPT_SSRR
            opt.srr = off
        elif t == IPOPT_RR:
            if olen < 3:
                return None, off + 1
            ptr = buf[o + 2]
            if ptr < 4:
                return None, off + 2
            if ptr <= olen:
                if ptr + 3 > olen:
                    return None, off + 2
                buf[o + ptr - 1:o + ptr + 3] = spec_dst
                opt.is_changed = True
                buf[o + 2] = ptr + 4
                opt.rr_needaddr = True
            opt.rr = off
        elif t == IPOPT_TIMESTAMP:
            if olen < 4:
                return None, off + 1
            ptr = buf[o + 2]
            if ptr < 5:
                return None, off + 2
            flg = buf[o + 3] & 0x0F
            if ptr <= olen:
                if ptr + 3 > olen:
                    return None, off + 2
                timeptr = -1
                if flg == IPOPT_TS_TSONLY:
                    timeptr = o + ptr - 1
                    opt.ts_needtime = True
                    buf[o + 2] = ptr + 4
                elif flg == IPOPT_TS_TSANDADDR:
                    if ptr + 7 > olen:
                        return None, off + 2
                    buf[o + ptr - 1:o + ptr + 3] = spec_dst
                    timeptr = o + ptr + 3
                    opt.ts_needaddr = True
                    opt.ts_needtime = True
                    buf[o + 2] = ptr + 8
                elif flg == IPOPT_TS_PRESPEC:
                    if ptr + 7 > olen:
                        return None, off + 2
                    addr = bytes(buf[o + ptr - 1:o + ptr + 3])
                    if addr_is_unicast is None or not addr_is_unicast(addr):
                        timeptr = o + ptr + 3
                        opt.ts_needtime = True
                        buf[o + 2] = ptr + 8
                if timeptr >= 0:
                    buf[timeptr:timeptr + 4] = now_ms.to_bytes(4, "big")
                    opt.is_changed = True
            elif flg != IPOPT_TS_PRESPEC:
                overflow = buf[o + 3] >> 4
                if overflow == 15:
                    return None, off + 3
                buf[o + 3] = flg | ((overflow + 1) << 4)
                opt.is_changed = True
            opt.ts = off
        elif t == IPOPT_RA:
            if olen < 4:
                return None, off + 1
            if buf[o + 2] == 0 and buf[o + 3] == 0:
                opt.router_alert = off
        elif t == IPOPT_CIPSO:
            # cipso_v4_validate: short option (offset 1) or no such DOI (offset 2) — netstack
            # has no CIPSO DOI configured, so every CIPSO option is rejected.
            return None, off + (1 if olen < 8 else 2)
        off += olen
    return opt, 0


# --------------------------------------------------------------------------- receive
def ip_list_rcv(pkts: list["Packet"]) -> None:
    """``ip_list_rcv``: validate each packet, then hand per-device sublists on.

    The per-packet receive counters (InReceives, InOctets, the ECN codepoint counters)
    are accumulated in a local array and added once per sublist."""
    cur_dev: Any = None
    net: Any = None
    sub: list[Packet] = []
    stats = [0, 0, 0, 0, 0, 0]
    pre: Any = None
    for pkt in pkts:
        dev = pkt.dev
        if dev is not cur_dev:
            if cur_dev is not None:
                _flush_rcv_stats(net, stats)
                if sub:
                    ip_list_rcv_finish(net, sub, cur_dev)
                sub = []
            cur_dev = dev
            net = dev.net
            pre = nf_hook_entries(net, NFPROTO_IPV4, NF_INET_PRE_ROUTING)
        if _ip_rcv_core(pkt, net, stats):
            # NF_HOOK_LIST(NFPROTO_IPV4, NF_INET_PRE_ROUTING, …, ip_rcv_finish)
            if pre and not nf_hook(net, NFPROTO_IPV4, NF_INET_PRE_ROUTING, pkt, dev, None):
                continue
            sub.append(pkt)
    if cur_dev is not None:
        _flush_rcv_stats(net, stats)
        if sub:
            ip_list_rcv_finish(net, sub, cur_dev)


def _flush_rcv_stats(net: "Net", stats: list[int]) -> None:
    if stats[0]:
        mib = net.ipv4.mib
        mib["IpInReceives"] += stats[0]
        mib["IpExtInOctets"] += stats[1]
        for i in range(4):
            if stats[2 + i]:
                mib[ECN_COUNTERS[i]] += stats[2 + i]
        stats[:] = [0, 0, 0, 0, 0, 0]


def _drop(pkt: "Packet", reason: str, net: "Net", counter: str | None = None) -> bool:
    if counter is not None:
        net.ipv4.mib[counter] += 1
    kfree_skb_reason(pkt, reason, net)
    return False


def ip_rcv_core(pkt: "Packet", net: "Net", stats: list[int] | None = None) -> bool:
    """``ip_rcv_core``: header validation in the kernel's order; True if the packet lives.

    On success the packet is trimmed to ``tot_len`` (Ethernet padding removed, with the
    CHECKSUM_COMPLETE value corrected as ``pskb_trim_rcsum``), ``network_header`` and
    ``transport_header`` are set and ``pkt.cb`` is cleared (``IPCB``).  ``stats``
    (InReceives, InOctets, four ECN counters) is where the per-packet counters go; None
    means "count in the MIB now".
    """
    if stats is not None:
        return _ip_rcv_core(pkt, net, stats)
    stats = [0, 0, 0, 0, 0, 0]
    ok = _ip_rcv_core(pkt, net, stats)
    _flush_rcv_stats(net, stats)
    return ok


def _ip_rcv_core(pkt: "Packet", net: "Net", stats: list[int]) -> bool:
    """:func:`ip_rcv_core` with the counters going to ``stats`` (the list receive loop's
    per-sublist accumulator)."""
    if pkt.pkt_type == PACKET_OTHERHOST:
        return _drop(pkt, "OTHERHOST", net)
    data = pkt.data
    n = pkt.tail - data
    stats[0] += 1
    stats[1] += n
    pkt.network_header = data
    if n < 20:
        return _drop(pkt, "IP_INHDR", net, "IpInHdrErrors")
    buf = pkt.buf
    b0 = buf[data]
    if b0 == 0x45:
        ihl = 20
    else:
        ihl = (b0 & 0x0F) << 2
        if ihl < 20 or b0 >> 4 != 4:
            return _drop(pkt, "IP_INHDR", net, "IpInHdrErrors")
    stats[2 + (buf[data + 1] & 3)] += 1
    if n < ihl:
        return _drop(pkt, "IP_INHDR", net, "IpInHdrErrors")
    # ip_fast_csum == 0 <=> the header's ones'-complement sum is 0xFFFF ("negative
    # zero"): a non-zero multiple of 0xFFFF.  Summing 16-bit words mod 0xFFFF is the
    # header read as one big integer mod 0xFFFF (2**16 == 1 mod 0xFFFF), and so is the
    # sum of its 64/64/32-bit pieces (2**32 == 2**64 == 1 mod 0xFFFF): for the usual
    # 20-byte header that is one unpack_from, without copying the header out.
    if ihl == 20:
        q0, q1, q2 = _unpack_hdr20(buf, data)
        v = q0 + q1 + q2
    else:
        v = int.from_bytes(buf[data:data + ihl], "big")
    if v % 0xFFFF or not v:
        net.ipv4.mib["IpExtInCsumErrors"] += 1
        return _drop(pkt, "IP_CSUM", net, "IpInHdrErrors")
    tot = (buf[data + 2] << 8) | buf[data + 3]
    if n < tot:
        return _drop(pkt, "PKT_TOO_SMALL", net, "IpExtInTruncatedPkts")
    if tot < ihl:
        return _drop(pkt, "IP_INHDR", net, "IpInHdrErrors")
    if n > tot:
        if pkt.ip_summed == CHECKSUM_COMPLETE:
            _trim_rcsum(pkt, tot)
        pkt.tail = data + tot
    pkt.transport_header = data + ihl
    pkt.cb = None
    if pkt.trace is not None:
        pkt.trace.event(pkt, "ip_rcv_core")
    return True


def _trim_rcsum(pkt: "Packet", length: int) -> None:
    """``pskb_trim_rcsum_slow`` for CHECKSUM_COMPLETE: subtract the trimmed bytes from
    ``skb->csum`` (``csum_block_sub``: a block starting at an odd offset is byte-swapped)."""
    from netstack.packet.checksum import csum_partial, csum_sub
    start = pkt.data + length
    part = csum_partial(pkt.buf[start:pkt.tail])
    if length & 1:
        part = ((part & 0xFF) << 8) | (part >> 8)
    pkt.csum = csum_sub(pkt.csum, part)


def _martian_source(saddr: bytes, net: "Net", dev: "NetDevice") -> str | None:
    """The source checks ``ip_route_use_hint`` repeats for every packet that reuses a hint
    (net/ipv4/route.c): multicast, limited broadcast, zeronet, loopback (unless
    route_localnet)."""
    b0 = saddr[0]
    if b0 >= 224 and b0 < 240 or saddr == b"\xff\xff\xff\xff" or b0 == 0:
        return "IP_INVALID_SOURCE"
    if b0 == 127:
        vals = net.sysctl.values
        if not (vals.get("net.ipv4.conf.all.route_localnet", 0)
                or vals.get(f"net.ipv4.conf.{dev.name}.route_localnet", 0)):
            return "IP_LOCALNET"
    return None


def ip_list_rcv_finish(net: "Net", pkts: list["Packet"], dev: "NetDevice") -> None:
    """``ip_list_rcv_finish`` + ``ip_rcv_finish_core`` for a sublist from one device.

    Route hint (``ip_can_use_hint`` / ``ip_extract_route_hint``, net/ipv4/ip_input.c): a
    packet with the previous route's daddr and tos reuses that route after
    ``ip_route_use_hint``'s source checks.  The route becomes the hint unless there are
    custom FIB rules, the destination is limited broadcast or zeronet, or the route came
    from a multipath selection (``IPSKB_MULTIPATH``: another packet of the same daddr
    may hash to another path); a local route may be a hint because ``ip_route_use_hint``
    re-validates the source of each packet against it (without that control-plane
    function a local route is never a hint).

    ``ip_route_use_hint`` on a non-local hint depends only on the source address and on
    configuration nothing in this loop can change, so once it accepted a source for the
    current hint, further packets from that source take the hint directly (``ok_key``:
    saddr and daddr as they sit in the header); the memo is dropped whenever the hint
    changes, and the hint changes whenever a sublist is delivered (delivery can run
    arbitrary code, e.g. a socket callback writing a sysctl).  A memoized packet with no
    options, no trace, unicast at L2 and a unicast/local hint has nothing else to check
    in ``ip_rcv_finish_core`` and joins the current sublist directly.
    """
    ipv4 = net.ipv4
    mib = ipv4.mib
    route = af_inet.route
    use_hint = getattr(route, "ip_route_use_hint", None)
    values = net.sysctl.values
    hint_dst: Any = None
    hint_key = b""
    hint_tos = -1
    ok_key: Any = None
    hint_plain = False
    curr_dst: Any = None
    sub: list[Packet] = []
    append = sub.append
    lookups = hints = 0
    # l3mdev_ip_rcv: a master with IFF_L3MDEV_RX_HANDLER (an ipvlan l3s port) may route
    # the packet itself (in a slave's namespace) before the lookup here
    l3mdev = getattr(dev, "l3mdev_l3_rcv", None)
    for pkt in pkts:
        buf = pkt.buf
        nh = pkt.network_header
        tos = buf[nh + 1]
        if l3mdev is not None and pkt.dst is None:
            l3mdev(pkt, 4)
        if hint_dst is not None and tos == hint_tos and pkt.dst is None:
            # (bytearray.startswith(prefix, start) compares in place, without a slice)
            if ok_key is not None and buf.startswith(ok_key, nh + 12):
                pkt.dst = hint_dst
                hints += 1
                if hint_plain and buf[nh] == 0x45 and pkt.pkt_type == PACKET_HOST \
                        and pkt.trace is None:
                    append(pkt)  # the hint is curr_dst: same sublist
                    continue
            elif buf.startswith(hint_key, nh + 16):
                saddr = bytes(buf[nh + 12:nh + 16])
                if use_hint is not None:
                    reason = use_hint(net, pkt, hint_key, saddr, tos, dev, hint_dst)
                else:
                    reason = _martian_source(saddr, net, dev)
                    if reason is None:
                        pkt.dst = hint_dst
                if reason:
                    if reason == "IP_RPFILTER":
                        mib["TcpExtIPReversePathFilter"] += 1
                    kfree_skb_reason(pkt, reason, net)
                    continue
                if not hint_dst.flags & RTCF_LOCAL:
                    ok_key = saddr + hint_key
                hints += 1
        if pkt.dst is None:
            if route is None:
                kfree_skb_reason(pkt, "IP_INNOROUTES", net)
                if pkt.trace is not None:
                    pkt.trace.event(pkt, "ip_route_input_noref",
                                    info="not supported: no IPv4 control plane loaded")
                continue
            lookups += 1
            reason = route.ip_route_input(net, pkt, bytes(buf[nh + 16:nh + 20]),
                                          bytes(buf[nh + 12:nh + 16]), tos, dev)
            if reason:
                if reason == "IP_RPFILTER":
                    mib["TcpExtIPReversePathFilter"] += 1
                elif reason == "IP_INNOROUTES":
                    mib["IpExtInNoRoutes"] += 1
                kfree_skb_reason(pkt, reason, net)
                continue
        if buf[nh] != 0x45:
            if not _ip_rcv_options(pkt, net, dev):
                continue
        rt = pkt.dst
        rtype = rt.type
        if rtype == RTN_MULTICAST:
            mib["IpExtInMcastPkts"] += 1
            mib["IpExtInMcastOctets"] += pkt.tail - pkt.data
        elif rtype == RTN_BROADCAST:
            mib["IpExtInBcastPkts"] += 1
            mib["IpExtInBcastOctets"] += pkt.tail - pkt.data
        elif pkt.pkt_type == PACKET_BROADCAST or pkt.pkt_type == PACKET_MULTICAST:
            if values.get("net.ipv4.conf.all.drop_unicast_in_l2_multicast") or \
                    values.get(f"net.ipv4.conf.{dev.name}.drop_unicast_in_l2_multicast"):
                kfree_skb_reason(pkt, "UNICAST_IN_L2_MULTICAST", net)
                continue
        if pkt.trace is not None:
            pkt.trace.event(pkt, "ip_rcv_finish_core")
        if rt is not curr_dst:
            # ip_extract_route_hint
            daddr = bytes(buf[nh + 16:nh + 20])
            if ipv4.has_custom_rules or daddr == b"\xff\xff\xff\xff" or daddr[0] == 0 \
                    or getattr(rt, "multipath", False) \
                    or (rtype == RTN_LOCAL and use_hint is None):
                hint_dst = None
            else:
                hint_dst, hint_key, hint_tos = rt, daddr, tos
                hint_plain = rtype != RTN_MULTICAST and rtype != RTN_BROADCAST
            ok_key = None
            if sub:
                dst_input_list(net, sub, curr_dst)
            sub = [pkt]
            append = sub.append
            curr_dst = rt
        else:
            append(pkt)
    ipv4.route_lookups += lookups
    ipv4.route_hints += hints
    if sub:
        dst_input_list(net, sub, curr_dst)


def _ip_rcv_options(pkt: "Packet", net: "Net", dev: "NetDevice") -> bool:
    """``ip_rcv_options``: compile the options; a bad one gives a parameter problem, a
    source route is dropped unless ``accept_source_route``; True if the packet lives."""
    buf = pkt.buf
    nh = pkt.network_header
    optlen = ((buf[nh] & 0x0F) << 2) - 20
    spec = spec_dst(net, pkt)
    addr_type = getattr(af_inet.devinet, "inet_addr_type", None)
    from netstack.ipv4.icmp import inet_current_timestamp
    opt, pp_ptr = ip_options_compile(
        buf, nh, optlen, spec, inet_current_timestamp(net),
        (lambda a: addr_type(net, a) == RTN_UNICAST) if addr_type is not None else None)
    if opt is None:
        net.ipv4.mib["IpInHdrErrors"] += 1
        from netstack.ipv4.icmp import ICMP_PARAMETERPROB, icmp_send
        icmp_send(pkt, ICMP_PARAMETERPROB, 0, pp_ptr << 24)
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return False
    pkt.cb = opt
    if opt.srr:
        vals = net.sysctl.values
        if not (vals.get("net.ipv4.conf.all.accept_source_route", 0)
                and vals.get(f"net.ipv4.conf.{dev.name}.accept_source_route", 0)):
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return False
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        if pkt.trace is not None:
            pkt.trace.event(pkt, "ip_options_rcv_srr", info="not supported: source routing")
        return False
    return True


def spec_dst(net: "Net", pkt: "Packet") -> bytes:
    """``fib_compute_spec_dst``: the local address a reply to ``pkt`` comes from — the
    control plane's function when it has one; else the destination of a unicast local
    packet, or an address of the input device."""
    fn = getattr(af_inet.route, "fib_compute_spec_dst", None)
    if fn is not None:
        return af_inet.addr_bytes(fn(net, pkt))
    buf = pkt.buf
    nh = pkt.network_header
    rt = pkt.dst
    if rt is not None and (rt.flags & (RTCF_BROADCAST | RTCF_MULTICAST | RTCF_LOCAL)) == \
            RTCF_LOCAL:
        return bytes(buf[nh + 16:nh + 20])
    select = getattr(af_inet.devinet, "inet_select_addr", None)
    if select is None or pkt.dev is None:
        return b"\0\0\0\0"
    return af_inet.addr_bytes(select(net, pkt.dev, bytes(buf[nh + 12:nh + 16]), 0))


def dst_input_list(net: "Net", pkts: list["Packet"], rt: Any) -> None:
    """``ip_sublist_rcv_finish``: ``dst_input`` for a sublist that shares one route."""
    inp = getattr(rt, "input", None)
    if inp:
        # the control plane names dst.input: "local", "forward" or "error"
        is_local = inp == "local"
        is_fwd = inp == "forward"
    else:
        rtype = rt.type
        is_local = rtype == RTN_LOCAL or rtype == RTN_BROADCAST or \
            rtype == RTN_MULTICAST or bool(rt.flags & RTCF_LOCAL)
        is_fwd = not is_local and rtype == RTN_UNICAST
    if is_local:
        for pkt in pkts:
            ip_local_deliver(pkt)
    elif is_fwd:
        from netstack.ipv4.ip_forward import ip_forward_list
        ip_forward_list(net, pkts)
    else:
        ip_error_list(net, pkts, rt)


# ------------------------------------------------------------------------ ip_error
def ip_error(pkt: "Packet") -> None:
    """``ip_error`` (net/ipv4/route.c): the input of unreachable/prohibit/blackhole routes.

    Without forwarding on the input device the packet is only counted; otherwise an ICMP
    destination unreachable is sent, limited per source by the inet_peer token bucket
    (``ip_rt_error_cost`` 1 s, ``ip_rt_error_burst`` 5 s).  ``rt.error`` is the ICMP code
    (contract); a blackhole route has none and drops silently.
    """
    dev = pkt.dev
    net = dev.net
    rt = pkt.dst
    mib = net.ipv4.mib
    code = getattr(rt, "error", None)
    if rt.type == RTN_BLACKHOLE or code is None:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    vals = net.sysctl.values
    forwarding = vals.get(f"net.ipv4.conf.{dev.name}.forwarding",
                          vals.get("net.ipv4.ip_forward", 0))
    from netstack.ipv4.icmp import ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, ICMP_NET_UNREACH
    reason = "NOT_SPECIFIED"
    if not forwarding:
        if code == ICMP_HOST_UNREACH:
            reason = "IP_INADDRERRORS"
            mib["IpInAddrErrors"] += 1
        elif code == ICMP_NET_UNREACH:
            reason = "IP_INNOROUTES"
            mib["IpExtInNoRoutes"] += 1
        kfree_skb_reason(pkt, reason, net)
        return
    if code == ICMP_NET_UNREACH:
        reason = "IP_INNOROUTES"
        mib["IpExtInNoRoutes"] += 1
    nh = pkt.network_header
    peer = net.ipv4.inet_getpeer(bytes(pkt.buf[nh + 12:nh + 16]))
    now = net.world.clock.jiffies
    peer.rate_tokens = min(peer.rate_tokens + now - peer.rate_last, IP_RT_ERROR_BURST)
    peer.rate_last = now
    if peer.rate_tokens >= IP_RT_ERROR_COST:
        peer.rate_tokens -= IP_RT_ERROR_COST
        from netstack.ipv4.icmp import icmp_send
        icmp_send(pkt, ICMP_DEST_UNREACH, code, 0)
    kfree_skb_reason(pkt, reason, net)


def ip_error_list(net: "Net", pkts: list["Packet"], rt: Any) -> None:
    """:func:`ip_error` for a sublist sharing the error route ``rt`` on one input device
    (``ip_list_rcv_finish`` sublists come from one device).  Without forwarding on that
    device — the common case, e.g. a host receiving traffic for an address it does not
    have — every packet is only counted and dropped, so the sysctl read and the counter
    choice are made once; with forwarding each packet goes through :func:`ip_error` for
    the per-source ICMP rate limiter."""
    code = getattr(rt, "error", None)
    if rt.type == RTN_BLACKHOLE or code is None:
        _drop_list(pkts, "NOT_SPECIFIED", net)
        return
    dev = pkts[0].dev
    vals = net.sysctl.values
    if vals.get(f"net.ipv4.conf.{dev.name}.forwarding", vals.get("net.ipv4.ip_forward", 0)):
        for pkt in pkts:
            ip_error(pkt)
        return
    from netstack.ipv4.icmp import ICMP_HOST_UNREACH, ICMP_NET_UNREACH
    reason = "NOT_SPECIFIED"
    if code == ICMP_HOST_UNREACH:
        reason = "IP_INADDRERRORS"
        net.ipv4.mib["IpInAddrErrors"] += len(pkts)
    elif code == ICMP_NET_UNREACH:
        reason = "IP_INNOROUTES"
        net.ipv4.mib["IpExtInNoRoutes"] += len(pkts)
    _drop_list(pkts, reason, net)


def _drop_list(pkts: list["Packet"], reason: str, net: "Net") -> None:
    """``kfree_skb_reason`` for each packet of a list: one counter update for the
    untraced ones, the full call (with its trace event) for traced ones."""
    n = 0
    for pkt in pkts:
        if pkt.trace is not None:
            kfree_skb_reason(pkt, reason, net)
        else:
            n += 1
    if n:
        net.drops.add(reason, n)


# ------------------------------------------------------------------ local delivery
def ip_local_deliver(pkt: "Packet") -> None:
    """``ip_local_deliver``: reassemble fragments, then ``ip_local_deliver_finish``."""
    buf = pkt.buf
    nh = pkt.network_header
    if ((buf[nh + 6] << 8) | buf[nh + 7]) & (IP_MF | IP_OFFSET):
        from netstack.ipv4.ip_fragment import ip_defrag
        pkt = ip_defrag(pkt.dev.net, pkt)
        if pkt is None:
            return
        buf = pkt.buf
        nh = pkt.network_header
    # NF_HOOK(NFPROTO_IPV4, NF_INET_LOCAL_IN, …, ip_local_deliver_finish)
    if not nf_hook(pkt.dev.net, NFPROTO_IPV4, NF_INET_LOCAL_IN, pkt, pkt.dev, None):
        return
    buf = pkt.buf
    nh = pkt.network_header
    # ip_local_deliver_finish: pull the IP header, deliver to the protocol.
    pkt.data = pkt.transport_header = nh + ((buf[nh] & 0x0F) << 2)
    if pkt.trace is not None:
        pkt.trace.event(pkt, "ip_local_deliver")
    ip_protocol_deliver(pkt.dev.net, pkt, buf[nh + 9])


def ip_protocol_deliver(net: "Net", pkt: "Packet", protocol: int) -> None:
    """``ip_protocol_deliver_rcu``: the inet_protos demux; unknown → protocol unreachable."""
    ipv4 = net.ipv4
    handler = ipv4.protos.get(protocol)
    if handler is not None:
        handler(pkt)
        ipv4.mib["IpInDelivers"] += 1
        return
    name = UNMODELLED_PROTOS.get(protocol)
    if name is not None:
        if pkt.trace is not None:
            pkt.trace.event(pkt, "ip_protocol_deliver_rcu", info=f"not supported: {name}")
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    ipv4.mib["IpInUnknownProtos"] += 1
    from netstack.ipv4.icmp import ICMP_DEST_UNREACH, ICMP_PROT_UNREACH, icmp_send
    icmp_send(pkt, ICMP_DEST_UNREACH, ICMP_PROT_UNREACH, 0)
    kfree_skb_reason(pkt, "IP_NOPROTO", net)


__all__ = ["ip_list_rcv", "ip_rcv_core", "ip_list_rcv_finish", "ip_local_deliver",
           "ip_protocol_deliver", "ip_error", "ip_error_list", "dst_input_list",
           "ip_options_compile"]
