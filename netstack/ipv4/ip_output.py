"""IPv4 output (net/ipv4/ip_output.c, Linux 6.18): ``ip_local_out`` → ``ip_output`` →
``ip_finish_output`` (fragment if needed) → ``ip_finish_output2`` → ``neigh_output``.

Why lists: forwarding hands a whole sublist that shares one route to
:func:`ip_output_list`; consecutive packets with the same next hop go to the neighbour
layer as one list, which queues them on the device in one ``dev_queue_xmit_list`` call
(one doorbell) — the batching the kernel gets from xmit_more.

Locally generated packets are built by :func:`ip_make_skb` (the ``ip_make_skb`` /
``__ip_make_skb`` header rules: TTL from ``ip_select_ttl``, DF from the socket's PMTU
discovery mode, IP ID from ``ip_select_ident``).

IP ID (``ip_select_ident_segs``): a connected socket uses its own counter (``inet_id``,
seeded from the world's RNG at connect, as ``get_random_u16()`` is); an unconnected
sender with DF set uses 0; everything else draws from a per-(daddr, saddr, protocol)
counter.  The kernel keys that counter with a random siphash key and adds a random
time-based jump (``ip_idents_reserve``); netstack starts each counter at a value derived
from the namespace's ``hash_secret`` and increments it by one per datagram, which is
deterministic and keeps the property that matters (IDs of one flow advance).
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.ipv4 import af_inet
from netstack.netfilter.core import (NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING, NFPROTO_IPV4,
                                     nf_hook, nf_hook_entries)
from netstack.packet.checksum import ip_fast_csum
from netstack.core.rtnetlink import (  # noqa: F401  (re-exported)
    RTN_BROADCAST,
    RTN_MULTICAST,
)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.packet.skb import Packet

ETH_P_IP = 0x0800
IP_DF = 0x4000
IP_MF = 0x2000
IP_MAX_MTU = 0xFFFF

# Socket PMTU discovery modes (include/uapi/linux/in.h IP_PMTUDISC_*).
IP_PMTUDISC_DONT = 0
IP_PMTUDISC_WANT = 1
IP_PMTUDISC_DO = 2
IP_PMTUDISC_PROBE = 3
IP_PMTUDISC_INTERFACE = 4
IP_PMTUDISC_OMIT = 5

#: ``pkt.cb`` of a locally built datagram that may be fragmented despite DF
#: (``skb->ignore_df``); received packets carry their compiled IP options there instead.
CB_IGNORE_DF = "ignore_df"


class EmsgSize(Exception):
    """``-EMSGSIZE`` from ``ip_fragment`` for a DF packet a local socket may not fragment;
    ``mtu`` is what ``ip_local_error`` would report."""

    def __init__(self, mtu: int) -> None:
        super().__init__(f"message too long (mtu {mtu})")
        self.mtu = mtu


def default_pmtudisc(net: "Net") -> int:
    """``inet_create``: ``ip_no_pmtu_disc`` 0 → IP_PMTUDISC_WANT, else DONT."""
    return IP_PMTUDISC_DONT if net.sysctl.values.get("net.ipv4.ip_no_pmtu_disc", 0) \
        else IP_PMTUDISC_WANT


def ip_select_ident(net: "Net", daddr: bytes, saddr: bytes, proto: int) -> int:
    """``__ip_select_ident``: the next ID of the (daddr, saddr, protocol) counter."""
    idents = net.ipv4.ip_idents
    key = (daddr, saddr, proto)
    v = idents.get(key)
    if v is None:
        h = hashlib.blake2s(daddr + saddr + bytes((proto,)), key=net.hash_secret).digest()
        v = int.from_bytes(h[:2], "big")
    v = (v + 1) & 0xFFFF
    idents[key] = v
    return v


def ip_select_ttl(net: "Net", rt: Any, uc_ttl: int = -1) -> int:
    """``ip_select_ttl``: the socket's TTL, else the route's hoplimit metric, else
    ``ip_default_ttl``."""
    if uc_ttl >= 0:
        return uc_ttl
    metrics = getattr(rt, "metrics", None)
    if metrics:
        hl = metrics.get("hoplimit")
        if hl:
            return hl
    return net.sysctl.values["net.ipv4.ip_default_ttl"]


def dst_mtu(rt: Any) -> int:
    """``dst_mtu``: the route's path MTU (learned PMTU, route metric or device MTU)."""
    m = getattr(rt, "mtu", None)
    if callable(m):
        return min(m(), IP_MAX_MTU)
    return min(rt.dev.mtu, IP_MAX_MTU)


def ip_dst_mtu_maybe_forward(net: "Net", rt: Any, forwarding: bool) -> int:
    """``ip_dst_mtu_maybe_forward``: a forwarded packet honours the route's ``mtu``
    metric or the device MTU, and a learned PMTU only with ``ip_forward_use_pmtu``."""
    if not forwarding or net.sysctl.values.get("net.ipv4.ip_forward_use_pmtu", 0):
        return dst_mtu(rt)
    metrics = getattr(rt, "metrics", None)
    if metrics:
        m = metrics.get("mtu")
        if m:
            return min(m, IP_MAX_MTU)
    return min(rt.dev.mtu, IP_MAX_MTU)


def ip_make_skb(net: "Net", rt: Any, saddr: bytes, daddr: bytes, proto: int,
                transport: bytes | bytearray, *, tos: int = 0, ttl: int = -1,
                pmtudisc: int = IP_PMTUDISC_DONT, inet_id: list[int] | None = None,
                options: bytes = b"", mark: int = 0, priority: int = 0) -> "Packet":
    """``ip_make_skb``/``__ip_make_skb`` for one datagram: an skb whose data starts at the
    IP header.  ``inet_id`` is the connected socket's ID counter (a one-element list it
    advances), None for unconnected senders.  The DF rule is ``__ip_make_skb``'s: always
    for DO/PROBE, for WANT only when the datagram fits the route MTU (a larger one is sent
    fragmented, without DF)."""
    hl = 20 + len(options)
    tot = hl + len(transport)
    mtu = dst_mtu(rt)
    df = pmtudisc in (IP_PMTUDISC_DO, IP_PMTUDISC_PROBE) or \
        (pmtudisc == IP_PMTUDISC_WANT and tot <= mtu)
    pkt = net.world.new_packet(b"")
    pkt.put(tot)
    buf = pkt.buf
    o = pkt.data
    buf[o] = 0x40 | (hl >> 2)
    buf[o + 1] = tos & 0xFF
    buf[o + 2:o + 4] = tot.to_bytes(2, "big")
    if inet_id is not None:
        inet_id[0] = (inet_id[0] + 1) & 0xFFFF
        ident = inet_id[0]
    elif df:
        ident = 0
    else:
        ident = ip_select_ident(net, daddr, saddr, proto)
    buf[o + 4:o + 6] = ident.to_bytes(2, "big")
    buf[o + 6] = 0x40 if df else 0
    buf[o + 8] = ip_select_ttl(net, rt, ttl)
    buf[o + 9] = proto
    buf[o + 12:o + 16] = saddr
    buf[o + 16:o + 20] = daddr
    if options:
        buf[o + 20:o + hl] = options
    buf[o + hl:o + tot] = transport
    pkt.network_header = o
    pkt.transport_header = o + hl
    pkt.protocol = ETH_P_IP
    pkt.dst = rt
    pkt.mark = mark
    pkt.priority = priority
    # ignore_df (ip_sk_ignore_df): a WANT/DONT socket's datagram may be fragmented locally.
    pkt.cb = CB_IGNORE_DF if pmtudisc < IP_PMTUDISC_DO or pmtudisc == IP_PMTUDISC_OMIT else None
    return pkt


def ip_send_check(buf: bytearray, nh: int) -> None:
    """``ip_send_check``: recompute the header checksum in place."""
    hl = (buf[nh] & 0x0F) << 2
    buf[nh + 10] = 0
    buf[nh + 11] = 0
    c = ip_fast_csum(buf[nh:nh + hl])
    buf[nh + 10] = c >> 8
    buf[nh + 11] = c & 0xFF


def ip_local_out(net: "Net", pkt: "Packet") -> None:
    """``ip_local_out``/``__ip_local_out``: set tot_len and the checksum, count
    OutRequests, then ``dst_output``.  ``pkt.dst`` is the output route.  May raise
    :class:`EmsgSize` (a DF datagram larger than the MTU from a socket that may not
    fragment), which socket callers turn into an error for the application."""
    net.ipv4.mib["IpOutRequests"] += 1
    buf = pkt.buf
    nh = pkt.network_header = pkt.data
    n = pkt.tail - nh
    buf[nh + 2] = n >> 8
    buf[nh + 3] = n & 0xFF
    ip_send_check(buf, nh)
    pkt.protocol = ETH_P_IP
    if pkt.trace is not None:
        pkt.trace.event(pkt, "__ip_local_out")
    # NF_HOOK(NFPROTO_IPV4, NF_INET_LOCAL_OUT, …, dst_output); a DNAT there re-routes
    # (ip_route_me_harder), so pkt.dst is read after the hook.
    if not nf_hook(net, NFPROTO_IPV4, NF_INET_LOCAL_OUT, pkt, None, pkt.dst.dev):
        return
    ip_output_list(net, [pkt], pkt.dst, False)


def ip_output(net: "Net", pkt: "Packet") -> None:
    """``ip_output`` for one packet (``dst_output`` of a unicast/local route)."""
    ip_output_list(net, [pkt], pkt.dst, False)


def ip_output_list(net: "Net", pkts: list["Packet"], rt: Any, forwarded: bool) -> None:
    """``ip_output`` → ``ip_finish_output`` for packets sharing route ``rt``: fragment
    the ones above the MTU, then ``ip_finish_output2`` for the whole list."""
    dev = rt.dev
    mtu = ip_dst_mtu_maybe_forward(net, rt, forwarded)
    post = nf_hook_entries(net, NFPROTO_IPV4, NF_INET_POST_ROUTING)
    out: list[Packet] = []
    for pkt in pkts:
        indev = pkt.dev
        pkt.dev = dev
        # NF_HOOK_COND(NFPROTO_IPV4, NF_INET_POST_ROUTING, …, indev, dev, ip_finish_output)
        if post and not nf_hook(net, NFPROTO_IPV4, NF_INET_POST_ROUTING, pkt, indev, dev):
            continue
        # __ip_finish_output: a GSO packet goes to ip_finish_output_gso; else "skb->len >
        # mtu || IPCB(skb)->frag_max_size" — a datagram conntrack reassembled
        # (netfilter/defrag.py) is refragmented as it arrived.
        if pkt.gso_size:
            out.extend(ip_finish_output_gso(net, pkt, mtu))
        elif pkt.tail - pkt.data > mtu or pkt.__dict__.get("frag_max_size"):
            from netstack.ipv4.ip_fragment import ip_fragment
            frags = ip_fragment(net, pkt, mtu)
            if frags:
                out.extend(frags)
        else:
            out.append(pkt)
    if out:
        ip_finish_output2(net, out, rt)


def ip_finish_output_gso(net: "Net", pkt: "Packet", mtu: int) -> list["Packet"]:
    """``ip_finish_output_gso``: a GSO packet whose segments fit the MTU goes on whole;
    otherwise (a forwarded GRO packet without DF, a guest's TSO frame) it is segmented
    in software here and every segment fragmented as needed."""
    from netstack.core.gso import (GSO_FEATURES, GsoError, netif_skb_features,
                                   skb_gso_segment, skb_gso_validate_network_len)
    if skb_gso_validate_network_len(pkt, mtu):
        return [pkt]
    from netstack.ipv4.ip_fragment import ip_fragment
    features = netif_skb_features(pkt, pkt.dev) - GSO_FEATURES
    try:
        segs = skb_gso_segment(pkt, features)
    except GsoError:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return []
    out: list[Packet] = []
    for s in segs or [pkt]:
        # every segment goes through ip_fragment, as in the kernel: one that fits comes
        # out as a single "fragment" — with its checksum completed by ip_do_fragment
        out.extend(ip_fragment(net, s, mtu) or [])
    return out


def ip_finish_output2(net: "Net", pkts: list["Packet"], rt: Any) -> None:
    """``ip_finish_output2``: count, then hand each run of packets with the same next hop
    (``ip_neigh_for_gw``: the gateway, else the packet's daddr) to ``neigh_output``."""
    mib = net.ipv4.mib
    total = 0
    for p in pkts:
        total += p.tail - p.data
    n = len(pkts)
    rtype = rt.type
    if rtype == RTN_MULTICAST:
        mib["IpExtOutMcastPkts"] += n
        mib["IpExtOutMcastOctets"] += total
    elif rtype == RTN_BROADCAST:
        mib["IpExtOutBcastPkts"] += n
        mib["IpExtOutBcastOctets"] += total
    mib["IpOutTransmits"] += n
    mib["IpExtOutOctets"] += total
    dev = rt.dev
    tbl = getattr(net.ipv4, "arp_tbl", None)
    neighbour = af_inet.neighbour
    if tbl is None or neighbour is None:
        for p in pkts:
            if p.trace is not None:
                p.trace.event(p, "ip_finish_output2",
                              info="not supported: no neighbour subsystem loaded")
            kfree_skb_reason(p, "NEIGH_CREATEFAIL", net)
        return
    gw = rt.gateway
    if gw:
        neighbour.neigh_output(tbl, dev, af_inet.addr_bytes(gw), pkts)
        return
    neigh_output = neighbour.neigh_output
    cur = b""
    run: list[Packet] = []
    append = run.append
    for p in pkts:
        nh = p.network_header
        buf = p.buf
        if run and buf.startswith(cur, nh + 16):  # same daddr: compared in place
            append(p)
            continue
        if run:
            neigh_output(tbl, dev, cur, run)
        run = [p]
        append = run.append
        cur = bytes(buf[nh + 16:nh + 20])
    if run:
        neigh_output(tbl, dev, cur, run)
