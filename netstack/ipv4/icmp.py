"""ICMP (net/ipv4/icmp.c, Linux 6.18): receive, echo/timestamp replies, error generation
with the kernel's rules, and the two rate limiters.

Sending an error (``__icmp_send``), in the kernel's order:

1. no route on the offending packet, header not inside the packet → nothing;
2. not PACKET_HOST at L2, a broadcast/multicast route, a non-first fragment, or an ICMP
   error about an ICMP error (unknown inner types count as errors) → nothing;
3. unless the packet came in on loopback, the per-namespace **global** limiter for the
   types in ``icmp_ratemask`` (``icmp_global_allow``: a token bucket of
   ``icmp_msgs_per_sec`` refilled at most every HZ/50, capped at ``icmp_msgs_burst``;
   it only *checks* — the credit is consumed later) → OutRateLimitGlobal;
4. source address: the offending packet's daddr if it was for us, else (input route and
   ``icmp_errors_use_inbound_ifaddr``) an address of the input device, else chosen by
   the route lookup back to the sender; TOS = ``RT_TOS(tos) | IPTOS_PREC_INTERNETCONTROL``;
5. output route to the sender; then the **per-destination** limiter
   (``icmpv4_xrlim_allow`` → ``inet_peer_xrlim_allow``: ``icmp_ratelimit`` ms per message,
   burst ``XRLIM_BURST_FACTOR`` = 6 messages, a new peer starts full; not on loopback,
   off when ``icmp_ratelimit`` is 0) → OutRateLimitHost; when it passes,
   ``icmp_global_consume`` takes a random 0–2 credits (``get_random_u32_below(3)``,
   drawn here from the world's seeded RNG so runs are reproducible);
6. quote as much of the offending datagram as fits in 576 bytes (or the route MTU if
   smaller); a missing source becomes 192.0.0.8 (INADDR_DUMMY).

The ICMP socket is unconnected with ``IP_PMTUDISC_DONT``: no DF, hashed IP ID.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import consume_skb, kfree_skb_reason
from netstack.errors import KernelError
from netstack.ipv4 import af_inet
from netstack.ipv4.ip_output import IP_PMTUDISC_DONT, EmsgSize, dst_mtu, ip_local_out, ip_make_skb
from netstack.packet.checksum import csum_fold, csum_partial
from netstack.packet.skb import (CHECKSUM_COMPLETE, CHECKSUM_NONE, CHECKSUM_PARTIAL,
                                 CHECKSUM_UNNECESSARY, PACKET_HOST)
from netstack.core.rtnetlink import (  # noqa: F401  (re-exported)
    RTN_BROADCAST,
    RTN_MULTICAST,
    RT_SCOPE_LINK,
    RT_SCOPE_UNIVERSE,
)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

from netstack.packet.constants import (  # noqa: E402,F401  (include/uapi/linux/icmp.h)
    ICMP_ADDRESS, ICMP_ADDRESSREPLY, ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_ECHOREPLY,
    ICMP_INFO_REPLY, ICMP_INFO_REQUEST, ICMP_PARAMETERPROB, ICMP_REDIRECT,
    ICMP_SOURCE_QUENCH, ICMP_TIME_EXCEEDED, ICMP_TIMESTAMP, ICMP_TIMESTAMPREPLY)

NR_ICMP_TYPES = 18

# Codes for DEST_UNREACH.
ICMP_NET_UNREACH = 0
ICMP_HOST_UNREACH = 1
ICMP_PROT_UNREACH = 2
ICMP_PORT_UNREACH = 3
ICMP_FRAG_NEEDED = 4
ICMP_SR_FAILED = 5
ICMP_PKT_FILTERED = 13
NR_ICMP_UNREACH = 15
# Codes for TIME_EXCEEDED.
ICMP_EXC_TTL = 0
ICMP_EXC_FRAGTIME = 1

#: ``icmp_pointers[type].error`` (the "unused" types 1, 2, 6, 7, 9, 10 are errors too).
ICMP_ERROR_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12})

IPTOS_PREC_INTERNETCONTROL = 0xC0
INADDR_DUMMY = bytes((192, 0, 0, 8))
XRLIM_BURST_FACTOR = 6
HZ = 1000
RTCF_BROADCAST = 0x10000000
RTCF_MULTICAST = 0x20000000
RTCF_LOCAL = 0x80000000
IFF_LOOPBACK = 0x8


# ------------------------------------------------------------------ rate limiting
def icmp_global_allow(net: "Net") -> bool:
    """``icmp_global_allow``: may one more rate-limited message go out?  Checks (and
    refills) the per-namespace bucket but does not consume."""
    ipv4 = net.ipv4
    if ipv4.icmp_global_credit > 0:
        return True
    now = net.world.clock.jiffies
    delta = min((now - ipv4.icmp_global_stamp) & 0xFFFFFFFF, HZ)
    if delta < HZ // 50:
        return False
    vals = net.sysctl.values
    incr = vals["net.ipv4.icmp_msgs_per_sec"] * delta // HZ
    if not incr:
        return False
    ipv4.icmp_global_stamp = now
    ipv4.icmp_global_credit = min(ipv4.icmp_global_credit + incr,
                                  vals["net.ipv4.icmp_msgs_burst"])
    return True


def icmp_global_consume(net: "Net") -> None:
    """``icmp_global_consume``: take 0, 1 or 2 credits at random (may go negative)."""
    net.ipv4.icmp_global_credit -= net.world.rng.randrange(3)


def icmpv4_mask_allow(net: "Net", icmp_type: int, code: int) -> bool:
    """``icmpv4_mask_allow``: True if this type is *not* rate limited."""
    if icmp_type > NR_ICMP_TYPES:
        return True
    if icmp_type == ICMP_DEST_UNREACH and code == ICMP_FRAG_NEEDED:
        return True  # "Don't limit PMTU discovery."
    return not ((1 << icmp_type) & net.sysctl.values["net.ipv4.icmp_ratemask"])


def icmpv4_global_allow(net: "Net", icmp_type: int, code: int) -> tuple[bool, bool]:
    """``icmpv4_global_allow`` → (allowed, apply_ratelimit)."""
    if icmpv4_mask_allow(net, icmp_type, code):
        return True, False
    if icmp_global_allow(net):
        return True, True
    net.ipv4.mib["IcmpOutRateLimitGlobal"] += 1
    return False, False


def inet_peer_xrlim_allow(peer: Any, timeout: int, now: int) -> bool:
    """``inet_peer_xrlim_allow`` (net/ipv4/inetpeer.c): token bucket in jiffies."""
    token = peer.rate_tokens
    delta = now - peer.rate_last
    if delta:
        peer.rate_last = now
        token = min(token + delta, XRLIM_BURST_FACTOR * timeout)
    rc = False
    if token >= timeout:
        token -= timeout
        rc = True
    peer.rate_tokens = token
    return rc


def icmpv4_xrlim_allow(net: "Net", rt: Any, daddr: bytes, apply_ratelimit: bool) -> bool:
    """``icmpv4_xrlim_allow``: the per-destination limiter, then the global consume."""
    if not apply_ratelimit:
        return True
    timeout = net.sysctl.values["net.ipv4.icmp_ratelimit"]  # ms == jiffies at HZ=1000
    rc = True
    if timeout:
        dev = rt.dev
        if not (dev is not None and dev.flags & IFF_LOOPBACK):
            peer = net.ipv4.inet_getpeer(daddr)
            rc = inet_peer_xrlim_allow(peer, timeout, net.world.clock.jiffies)
    if not rc:
        net.ipv4.mib["IcmpOutRateLimitHost"] += 1
    else:
        icmp_global_consume(net)
    return rc


# ------------------------------------------------------------------ output helpers
def _route_output(net: "Net", daddr: bytes, saddr: bytes, tos: int) -> tuple[Any, bytes] | None:
    """``ip_route_output_key`` for an ICMP message: (rt, chosen source) or None."""
    route = af_inet.route
    if route is None:
        return None
    fl4 = af_inet.flowi4(daddr=daddr, saddr=saddr or 0, tos=tos & 0x1E, proto=1)
    try:
        rt = route.ip_route_output(net, fl4)
    except KernelError:
        return None
    src = af_inet.addr_bytes(getattr(fl4, "saddr", None)) or saddr or \
        af_inet.addr_bytes(getattr(rt, "prefsrc", None))
    if not src or src == b"\0\0\0\0":
        select = getattr(af_inet.devinet, "inet_select_addr", None)
        src = af_inet.addr_bytes(select(net, rt.dev, daddr, RT_SCOPE_UNIVERSE)) if select else b""
    return rt, src


def ip_options_echo(net: "Net", pkt: "Packet") -> tuple[bytes, list[tuple[str, int]]] | None:
    """``__ip_options_echo`` (net/ipv4/ip_options.c): the options a reply to ``pkt`` must
    carry — its Record Route and Timestamp options (as compiled on receive), with their
    pointers advanced past one more slot for us.  Returns (padded option bytes, slots to
    fill at build time) or None when the options cannot be echoed (no reply then).
    Source routes never reach here (dropped on receive) and CIPSO is always rejected."""
    from netstack.ipv4.ip_input import IPOPT_TS_PRESPEC, IpOptions
    opt = pkt.cb
    if not isinstance(opt, IpOptions) or not opt.optlen:
        return b"", []
    buf = pkt.buf
    nh = pkt.network_header
    out = bytearray()
    fill: list[tuple[str, int]] = []
    if opt.rr:
        olen = buf[nh + opt.rr + 1]
        soff = buf[nh + opt.rr + 2]
        start = len(out)
        out += buf[nh + opt.rr:nh + opt.rr + olen]
        if opt.rr_needaddr and soff <= olen:
            if soff + 3 > olen:
                return None
            out[start + 2] = soff + 4
            fill.append(("rr", start))
    if opt.ts:
        olen = buf[nh + opt.ts + 1]
        soff = buf[nh + opt.ts + 2]
        start = len(out)
        out += buf[nh + opt.ts:nh + opt.ts + olen]
        if soff <= olen:
            if opt.ts_needaddr:
                if soff + 3 > olen:
                    return None
                fill.append(("ts_addr", start))
                soff += 4
            if opt.ts_needtime:
                if soff + 3 > olen:
                    return None
                if out[start + 3] & 0x0F != IPOPT_TS_PRESPEC:
                    fill.append(("ts_time", start))
                    soff += 4
                elif soff + 7 <= olen:
                    addr = bytes(out[start + soff - 1:start + soff + 3])
                    addr_type = getattr(af_inet.devinet, "inet_addr_type", None)
                    if addr_type is None or addr_type(net, addr) != 1:
                        fill.append(("ts_time", start))
                        soff += 8
            out[start + 2] = soff
    while len(out) & 3:
        out.append(0)
    return bytes(out), fill


def _ip_options_build(net: "Net", pkt: "Packet", fill: list[tuple[str, int]]) -> None:
    """``ip_options_build``: our address (``ip_rt_get_source`` of an output route: the
    packet's source) and the time into the slots ``ip_options_echo`` reserved."""
    buf = pkt.buf
    o = pkt.network_header + 20
    src = bytes(buf[o - 8:o - 4])
    for kind, start in fill:
        at = o + start + buf[o + start + 2]
        if kind == "rr":
            buf[at - 5:at - 1] = src
        elif kind == "ts_addr":
            buf[at - 9:at - 5] = src
        else:
            buf[at - 5:at - 1] = inet_current_timestamp(net).to_bytes(4, "big")


def icmp_push(net: "Net", rt: Any, saddr: bytes, daddr: bytes, tos: int, head: bytes,
              payload: bytes | bytearray, mark: int = 0,
              options: tuple[bytes, list[tuple[str, int]]] = (b"", []),
              orig: "Packet | None" = None) -> None:
    """``icmp_push_reply``: checksum the message, build the datagram (with the echoed IP
    options) and send it.

    ``orig`` is the packet an error answers: ``icmp_glue_bits`` calls
    ``nf_ct_attach(skb, icmp_param->skb)`` for error types, so the error joins the
    offending packet's connection as RELATED and NAT rewrites its quoted header on the way
    out (net/ipv4/icmp.c)."""
    msg = bytearray(head)
    msg[2:4] = b"\0\0"
    msg += payload
    c = csum_fold(csum_partial(msg))
    msg[2] = c >> 8
    msg[3] = c & 0xFF
    pkt = ip_make_skb(net, rt, saddr, daddr, 1, msg, tos=tos, pmtudisc=IP_PMTUDISC_DONT,
                      mark=mark, options=options[0])
    if options[1]:
        _ip_options_build(net, pkt, options[1])
    if orig is not None and orig.ct is not None and head[0] in ICMP_ERROR_TYPES:
        from netstack.netfilter.conntrack import nf_ct_attach
        nf_ct_attach(pkt, orig)
    mib = net.ipv4.mib
    mib["IcmpOutMsgs"] += 1
    mib[f"IcmpMsgOutType{head[0]}"] += 1
    if pkt.trace is not None:
        pkt.trace.event(pkt, "icmp_push_reply", info=f"type={head[0]} code={head[1]}")
    try:
        ip_local_out(net, pkt)
    except EmsgSize:
        mib["IcmpOutErrors"] += 1


def _rt_flags(rt: Any) -> int:
    flags = rt.flags
    t = rt.type
    if t == RTN_BROADCAST:
        flags |= RTCF_BROADCAST
    elif t == RTN_MULTICAST:
        flags |= RTCF_MULTICAST
    return flags


# ------------------------------------------------------------------------ icmp_send
def icmp_send(pkt: "Packet", icmp_type: int, code: int, info: int) -> None:
    """``__icmp_send``: answer ``pkt`` (whose ``network_header`` is its IP header and whose
    ``dst`` is its route) with an ICMP error or message; see the module docstring."""
    rt = pkt.dst
    if rt is None:
        return
    dev = rt.dev if rt.dev is not None else pkt.dev
    if dev is None or dev.net is None:
        return
    net = dev.net
    buf = pkt.buf
    nh = pkt.network_header
    if nh < 0 or nh + 20 > pkt.tail:
        return
    if pkt.pkt_type != PACKET_HOST:
        return
    rflags = _rt_flags(rt)
    if rflags & (RTCF_BROADCAST | RTCF_MULTICAST):
        return
    if ((buf[nh + 6] << 8) | buf[nh + 7]) & 0x1FFF:
        return
    ihl = (buf[nh] & 0x0F) << 2
    if icmp_type in ICMP_ERROR_TYPES and buf[nh + 9] == 1:
        itp = nh + ihl
        if itp >= pkt.tail:
            return
        inner = buf[itp]
        if inner > NR_ICMP_TYPES or inner in ICMP_ERROR_TYPES:
            return
    apply_ratelimit = False
    in_dev = pkt.dev
    if not (in_dev is not None and in_dev.flags & IFF_LOOPBACK):
        ok, apply_ratelimit = icmpv4_global_allow(net, icmp_type, code)
        if not ok:
            return
    saddr_in = bytes(buf[nh + 12:nh + 16])
    daddr_in = bytes(buf[nh + 16:nh + 20])
    if rflags & RTCF_LOCAL:
        saddr = daddr_in
    else:
        saddr = b""
        is_input = getattr(rt, "is_input", None)
        if is_input is None:
            is_input = bool(pkt.skb_iif)
        if is_input and net.sysctl.values["net.ipv4.icmp_errors_use_inbound_ifaddr"]:
            idev = net.get_by_index(pkt.skb_iif)
            select = getattr(af_inet.devinet, "inet_select_addr", None)
            if idev is not None and select is not None:
                saddr = bytes(select(net, idev, saddr_in, RT_SCOPE_LINK) or b"")
                if saddr == b"\0\0\0\0":
                    saddr = b""
    tos_in = buf[nh + 1]
    tos = ((tos_in & 0x1E) | IPTOS_PREC_INTERNETCONTROL) if icmp_type in ICMP_ERROR_TYPES \
        else tos_in
    opts = ip_options_echo(net, pkt)
    if opts is None:
        return
    res = _route_output(net, saddr_in, saddr, tos)
    if res is None:
        return
    ort, src = res
    if not icmpv4_xrlim_allow(net, ort, saddr_in, apply_ratelimit):
        return
    room = min(dst_mtu(ort), 576) - 20 - len(opts[0]) - 8
    if room <= 20:
        return
    data_len = min(pkt.tail - nh, room)
    if not src or src == b"\0\0\0\0":
        src = INADDR_DUMMY
    head = bytes((icmp_type, code, 0, 0)) + (info & 0xFFFFFFFF).to_bytes(4, "big")
    icmp_push(net, ort, src, saddr_in, tos, head, buf[nh:nh + data_len], mark=0, options=opts,
              orig=pkt)


# ----------------------------------------------------------------------- receive
def _checksum_simple_validate(pkt: "Packet") -> bool:
    """``skb_checksum_simple_validate``: True if the ICMP checksum is good (honouring
    CHECKSUM_UNNECESSARY/PARTIAL/COMPLETE as ``__skb_checksum_validate`` does)."""
    s = pkt.ip_summed
    if s == CHECKSUM_UNNECESSARY:
        if pkt.csum_level == 0:
            pkt.ip_summed = CHECKSUM_NONE
        else:
            pkt.csum_level -= 1
        return True
    if s == CHECKSUM_PARTIAL or pkt.csum_valid:
        return True
    if s == CHECKSUM_COMPLETE and not csum_fold(pkt.csum):
        pkt.csum_valid = True
        return True
    ok = not csum_fold(csum_partial(pkt.buf[pkt.data:pkt.tail]))
    pkt.csum_valid = ok
    return ok


def icmp_rcv(pkt: "Packet") -> None:
    """``icmp_rcv``: ``pkt.data`` is at the ICMP header (IP header pulled)."""
    rt = pkt.dst
    net = pkt.dev.net
    mib = net.ipv4.mib
    mib["IcmpInMsgs"] += 1
    reason: str | None
    if not _checksum_simple_validate(pkt):
        mib["IcmpInCsumErrors"] += 1
        mib["IcmpInErrors"] += 1
        kfree_skb_reason(pkt, "ICMP_CSUM", net)
        return
    if pkt.tail - pkt.data < 8:
        mib["IcmpInErrors"] += 1
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    buf = pkt.buf
    t = buf[pkt.data]
    mib[f"IcmpMsgInType{t}"] += 1
    if t > NR_ICMP_TYPES:
        mib["IcmpInErrors"] += 1
        kfree_skb_reason(pkt, "UNHANDLED_PROTO", net)
        return
    if _rt_flags(rt) & (RTCF_BROADCAST | RTCF_MULTICAST):
        if t in (ICMP_ECHO, ICMP_TIMESTAMP) and \
                net.sysctl.values["net.ipv4.icmp_echo_ignore_broadcasts"]:
            mib["IcmpInErrors"] += 1
            kfree_skb_reason(pkt, "INVALID_PROTO", net)
            return
        if t not in (ICMP_ECHO, ICMP_TIMESTAMP, ICMP_ADDRESS, ICMP_ADDRESSREPLY):
            mib["IcmpInErrors"] += 1
            kfree_skb_reason(pkt, "INVALID_PROTO", net)
            return
    if t == ICMP_ECHO:
        reason = icmp_echo(net, pkt)
    elif t == ICMP_ECHOREPLY:
        from netstack.ipv4.ping import ping_rcv
        reason = ping_rcv(net, pkt)
    elif t in (ICMP_DEST_UNREACH, ICMP_SOURCE_QUENCH, ICMP_TIME_EXCEEDED, ICMP_PARAMETERPROB):
        reason = icmp_unreach(net, pkt)
    elif t == ICMP_TIMESTAMP:
        reason = icmp_timestamp(net, pkt)
    elif t == ICMP_REDIRECT:
        reason = icmp_redirect(net, pkt)
    else:
        reason = None  # icmp_discard
    if reason is None:
        consume_skb(pkt, "icmp_rcv")
    else:
        kfree_skb_reason(pkt, reason, net)


def icmp_reply(net: "Net", pkt: "Packet", head: bytes, payload: bytes | bytearray) -> None:
    """``icmp_reply``: answer a request (echo, timestamp) back to its sender.  The reply
    keeps the request's full TOS byte and leaves from the address it was sent to
    (``fib_compute_spec_dst``)."""
    opts = ip_options_echo(net, pkt)
    if opts is None:
        return
    ok, apply_ratelimit = icmpv4_global_allow(net, head[0], head[1])
    if not ok:
        return
    buf = pkt.buf
    nh = pkt.network_header
    tos = buf[nh + 1]
    daddr = bytes(buf[nh + 12:nh + 16])
    from netstack.ipv4.ip_input import spec_dst
    spec = spec_dst(net, pkt)
    if spec == b"\0\0\0\0":
        spec = b""
    res = _route_output(net, daddr, spec, tos)
    if res is None:
        return
    ort, src = res
    if not icmpv4_xrlim_allow(net, ort, daddr, apply_ratelimit):
        return
    icmp_push(net, ort, src or INADDR_DUMMY, daddr, tos, head, payload, mark=0, options=opts)


def icmp_echo(net: "Net", pkt: "Packet") -> str | None:
    """``icmp_echo``: reply unless ``icmp_echo_ignore_all``."""
    if net.sysctl.values["net.ipv4.icmp_echo_ignore_all"]:
        return None
    d = pkt.data
    head = bytes((ICMP_ECHOREPLY, pkt.buf[d + 1], 0, 0)) + bytes(pkt.buf[d + 4:d + 8])
    icmp_reply(net, pkt, head, pkt.buf[d + 8:pkt.tail])
    return None


def inet_current_timestamp(net: "Net") -> int:
    """``inet_current_timestamp``: milliseconds since midnight UTC, on the virtual clock."""
    return (net.world.clock.now // 1_000_000) % 86_400_000


def icmp_timestamp(net: "Net", pkt: "Packet") -> str | None:
    """``icmp_timestamp``: originate copied, receive = transmit = now."""
    d = pkt.data
    if pkt.tail - d - 8 < 4:
        net.ipv4.mib["IcmpInErrors"] += 1
        return "PKT_TOO_SMALL"
    now = inet_current_timestamp(net).to_bytes(4, "big")
    head = bytes((ICMP_TIMESTAMPREPLY, 0, 0, 0)) + bytes(pkt.buf[d + 4:d + 8]) + \
        bytes(pkt.buf[d + 8:d + 12]) + now + now
    icmp_reply(net, pkt, head, b"")
    return None


def icmp_redirect(net: "Net", pkt: "Packet") -> str | None:
    """``icmp_redirect`` → ``icmp_socket_deliver``: the redirect is acted on only by the
    error handler of the quoted datagram's protocol, never by ICMP itself.

    * fewer than 20 quoted bytes: IcmpInErrors, drop PKT_TOO_SMALL; fewer than the quoted
      header plus 8 bytes: IcmpInErrors, no action (``icmp_socket_deliver``);
    * ICMP (``icmp_err``): a quoted echo *reply* (one the kernel itself sent) goes to
      ``ipv4_redirect`` with no socket involved; any other quoted ICMP goes to
      ``ping_err``, which acts (``ipv4_sk_redirect``) only when a ping socket owns the
      quoted identifier and silently ignores it otherwise;
    * UDP (``__udp4_lib_err``): only with a socket for the quoted ports; without one
      IcmpInErrors is counted;
    * TCP (``tcp_v4_err``): netstack has no TCP sockets, so it is always the no-socket
      case: IcmpInErrors, no action;
    * any other protocol has no error handler here: nothing happens.

    The route exception itself is ``ip_rt_redirect`` (``__ip_do_redirect``), which keys
    the flow on the quoted header (``ipv4_sk_redirect`` would take oif/mark/tos from the
    socket; netstack's ping and UDP sockets set none of those on the flow).  Measured on
    Linux 6.18 in tests/kernel/test_state_icmp_redirect.py.
    """
    mib = net.ipv4.mib
    d = pkt.data
    buf = pkt.buf
    inner = d + 8
    if pkt.tail - inner < 20:
        mib["IcmpInErrors"] += 1
        return "PKT_TOO_SMALL"
    ihl = (buf[inner] & 0x0F) << 2
    if pkt.tail - inner < ihl + 8:
        mib["IcmpInErrors"] += 1
        return None
    proto = buf[inner + 9]
    if not _redirect_owner_accepts(net, pkt, inner, ihl, proto):
        return None
    handler = getattr(af_inet.route, "ip_rt_redirect", None)
    if handler is not None:
        handler(net, pkt)
    return None


def _redirect_owner_accepts(net: "Net", pkt: "Packet", inner: int, ihl: int,
                            proto: int) -> bool:
    """Does the quoted protocol's ``err_handler`` pass the redirect on to the routing
    code?  (See :func:`icmp_redirect`; counts IcmpInErrors where the handler does.)"""
    buf = pkt.buf
    l4 = inner + ihl
    isaddr = bytes(buf[inner + 12:inner + 16])
    idaddr = bytes(buf[inner + 16:inner + 20])
    if proto == 1:
        if buf[l4] == ICMP_ECHOREPLY:
            return True
        # ping_err → ping_lookup keys on the identifier field whatever the quoted type
        from netstack.ipv4.ping import _lookup as ping_lookup
        ident = (buf[l4 + 4] << 8) | buf[l4 + 5]
        return ping_lookup(net, ident, isaddr, pkt.dev.ifindex) is not None
    if proto == 17:
        from netstack.ipv4.udp import _lookup as udp_lookup
        sport = (buf[l4] << 8) | buf[l4 + 1]
        dport = (buf[l4 + 2] << 8) | buf[l4 + 3]
        if udp_lookup(net, idaddr, dport, isaddr, sport, pkt.dev.ifindex) is None:
            net.ipv4.mib["IcmpInErrors"] += 1
            return False
        return True
    if proto == 6:
        net.ipv4.mib["IcmpInErrors"] += 1
        return False
    return False


#: ``icmp_err_convert`` errno for DEST_UNREACH codes 0..15 (errno values of Linux).
_UNREACH_ERRNO = (101, 113, 92, 111, 90, 95, 101, 113, 64, 101, 113, 101, 113, 113, 113, 113)
EHOSTUNREACH = 113
EPROTO = 71


def icmp_unreach(net: "Net", pkt: "Packet") -> str | None:
    """``icmp_unreach``: pass DEST_UNREACH/TIME_EXCEEDED/PARAMETERPROB/SOURCE_QUENCH to
    the transport that sent the quoted datagram (UDP, ping sockets)."""
    mib = net.ipv4.mib
    buf = pkt.buf
    d = pkt.data
    t = buf[d]
    code = buf[d + 1]
    inner = d + 8
    if pkt.tail - inner < 20:
        mib["IcmpInErrors"] += 1
        return "NOT_SPECIFIED"
    ihl = (buf[inner] & 0x0F) << 2
    if ihl < 20:
        mib["IcmpInErrors"] += 1
        return "IP_INHDR"
    info = 0
    err = EHOSTUNREACH
    if t == ICMP_DEST_UNREACH:
        if code & 15 == ICMP_FRAG_NEEDED:
            info = (buf[d + 6] << 8) | buf[d + 7]
            if net.sysctl.values["net.ipv4.ip_no_pmtu_disc"] == 2:
                return None
        if code > NR_ICMP_UNREACH:
            return None
        err = _UNREACH_ERRNO[code]
    elif t == ICMP_PARAMETERPROB:
        info = int.from_bytes(buf[d + 4:d + 8], "big") >> 24
        err = EPROTO
    elif t == ICMP_TIME_EXCEEDED:
        if code == ICMP_EXC_FRAGTIME:
            return None
    elif t == ICMP_SOURCE_QUENCH:
        return None
    if not net.sysctl.values["net.ipv4.icmp_ignore_bogus_error_responses"]:
        addr_type = getattr(af_inet.devinet, "inet_addr_type", None)
        if addr_type is not None and \
                addr_type(net, bytes(buf[inner + 16:inner + 20])) == RTN_BROADCAST:
            return None
    if pkt.tail - inner < ihl + 8:
        mib["IcmpInErrors"] += 1
        return None
    proto = buf[inner + 9]
    if proto == 17:
        from netstack.ipv4.udp import udp_err
        udp_err(net, pkt, inner, t, code, info, err)
    elif proto == 1:
        from netstack.ipv4.ping import ping_err
        ping_err(net, pkt, inner, t, code, info, err)
    return None
