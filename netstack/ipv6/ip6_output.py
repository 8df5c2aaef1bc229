"""IPv6 output and forwarding (net/ipv6/ip6_output.c).

* ``ip6_forward``: (ND for an address proxied with ``proxy_ndp`` goes to local input,
  ``ip6_forward_proxy_check``) the forwarding sysctl (``conf.all.forwarding`` or the input device's
  ``force_forwarding``; else IP_INADDRERRORS), PACKET_HOST only, hop limit ≤ 1 → ICMPv6
  time exceeded (code 0) and IP_INHDR, a multicast/loopback/unspecified source →
  IP_INADDRERRORS, a link-local source → ICMPv6 "beyond scope" then IP_INADDRERRORS, size
  above the egress MTU (route mtu metric, else the device's IPv6 MTU, never below 1280) →
  ICMPv6 packet too big carrying that MTU and PKT_TOO_BIG; then hop limit − 1 and out.
  Forwarded lists leave as lists (one neighbour/driver batch per next hop).
* ``ip6_output``/``ip6_finish_output``: fragment when above the MTU (``ip6_fragment``: the
  unfragmentable part is the header plus hop-by-hop/routing headers, 8-byte aligned
  fragments, one identification per datagram), then ``ip6_finish_output2`` →
  ``neigh_output`` on the ND table with the route's next hop.
* ``ip6_send``: what ``ip6_append_data``/``ip6_push_pending_frames`` produce for a locally
  generated datagram: version 6, traffic class, flow label (``ip6_make_flowlabel`` with
  ``net.ipv6.auto_flowlabels``: the kernel hashes the flow with a random per-boot key;
  netstack hashes it with siphash keyed by the namespace's ``hash_secret`` — same bits
  set, different values), hop limit from the route/device (``conf.DEV.hop_limit``).

A packet leaving on its input interface triggers a Redirect to its source
(``ndisc_send_redirect``, rate limited per destination and per source at 1/s) and is
still forwarded.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.core.gso import skb_gso_validate_network_len
from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.neighbour import neigh_output
from netstack.ipv6.addr import LOOPBACK
from netstack.netfilter.core import (NF_INET_FORWARD, NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING,
                                     NFPROTO_IPV6, nf_hook)
from netstack.packet.siphash import siphash
from netstack.packet.skb import CHECKSUM_PARTIAL, PACKET_HOST

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.ipv6.route import Rt6Info
    from netstack.packet.skb import Packet

ETH_P_IPV6 = 0x86DD
IPV6_MIN_MTU = 1280
NEXTHDR_FRAGMENT = 44


# ------------------------------------------------------------------ forward
def _forward_one(pkt: "Packet") -> bool:
    """``ip6_forward`` up to the FORWARD hook; True if the packet goes on."""
    from netstack.ipv6.icmp import icmp6_send
    net = pkt.dev.net
    mib = net.ipv6.mib
    dst = pkt.dst
    idev = pkt.dev.ip6_ptr
    if pkt.trace is not None:
        pkt.trace.event(pkt, "ip6_forward")
    if not net.sysctl.values["net.ipv6.conf.all.forwarding"] and not (
            idev is not None and idev.cnf("force_forwarding")):
        mib["InAddrErrors"] += 1
        kfree_skb_reason(pkt, "IP_INADDRERRORS", net)
        return False
    if pkt.pkt_type != PACKET_HOST:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return False
    buf = pkt.buf
    o = pkt.network_header
    if buf[o + 7] <= 1:
        pkt_dev = pkt.dev
        icmp6_send(pkt, 3, 0, 0)
        pkt.dev = pkt_dev
        mib["InHdrErrors"] += 1
        kfree_skb_reason(pkt, "IP_INHDR", net)
        return False
    if net.sysctl.values["net.ipv6.conf.all.proxy_ndp"] and \
            net.ipv6.nd_tbl.pneigh_lookup(bytes(buf[o + 24:o + 40]), pkt.dev) is not None:
        proxied = _forward_proxy_check(pkt)
        if proxied > 0:
            from netstack.ipv6.ip6_input import ip6_input
            ip6_input(pkt)  # ND for a proxied address: handled locally, hop limit intact
            return False
        if proxied < 0:
            mib["InDiscards"] += 1
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return False
    cb = pkt.cb
    if cb is not None and cb.iif == dst.dev.ifindex:
        # in and out on the same link: tell the source (rate limited per destination)
        from netstack.ipv6.icmp import inet_peer_xrlim_allow
        from netstack.ipv6.ndisc import ndisc_send_redirect
        if inet_peer_xrlim_allow(net, bytes(buf[o + 24:o + 40]), 1000):
            ndisc_send_redirect(net, pkt, dst.nexthop(bytes(buf[o + 24:o + 40])))
    else:
        s = bytes(buf[o + 8:o + 24])
        if s == bytes(16) or s[0] == 0xFF or s == LOOPBACK:
            mib["InAddrErrors"] += 1
            kfree_skb_reason(pkt, "IP_INADDRERRORS", net)
            return False
        if s[0] == 0xFE and (s[1] & 0xC0) == 0x80:
            icmp6_send(pkt, 1, 2, 0)
            mib["InAddrErrors"] += 1
            kfree_skb_reason(pkt, "IP_INADDRERRORS", net)
            return False
    mtu = dst.metrics_mtu or (dst.dev.ip6_ptr.mtu6 if dst.dev.ip6_ptr is not None else IPV6_MIN_MTU)
    if net.ipv6.pmtu:
        from netstack.ipv6.route import ip6_dst_mtu
        mtu = min(mtu, ip6_dst_mtu(net, dst, bytes(buf[o + 24:o + 40])))
    if mtu < IPV6_MIN_MTU:
        mtu = IPV6_MIN_MTU
    n = pkt.tail - o
    # ip6_pkt_too_big: a GSO packet is too big only if its segments are
    if n > mtu and not (pkt.gso_size and skb_gso_validate_network_len(pkt, mtu)) \
            and not (cb is not None and cb.frag_max_size and cb.frag_max_size <= mtu):
        icmp6_send(pkt, 2, 0, mtu)
        mib["InTooBigErrors"] += 1
        kfree_skb_reason(pkt, "PKT_TOO_BIG", net)
        return False
    buf[o + 7] -= 1
    # NF_HOOK(NFPROTO_IPV6, NF_INET_FORWARD, …, skb->dev, dst->dev, ip6_forward_finish)
    if not nf_hook(net, NFPROTO_IPV6, NF_INET_FORWARD, pkt, pkt.dev, dst.dev):
        return False
    mib["OutForwDatagrams"] += 1
    return True


def _forward_proxy_check(pkt: "Packet") -> int:
    """``ip6_forward_proxy_check``: 1 for ND messages (local input), -1 for a link-local
    destination (link failure: ICMPv6 address unreachable), else 0 (forward)."""
    from netstack.ipv6.icmp import icmp6_send
    from netstack.packet.errors import ParseError
    from netstack.packet.ipv6 import ipv6_skip_exthdr
    buf = pkt.buf
    o = pkt.network_header
    try:
        nexthdr, off, _ = ipv6_skip_exthdr(buf, o + 40, buf[o + 6], pkt.tail)
    except ParseError:
        return 0
    if nexthdr == 58 and off < pkt.tail and 133 <= buf[off] <= 137:
        return 1
    if buf[o + 24] == 0xFE and (buf[o + 25] & 0xC0) == 0x80:
        icmp6_send(pkt, 1, 3, 0)
        return -1
    return 0


def ip6_forward_list(pkts: list["Packet"]) -> None:
    """Forward a sublist sharing one dst; survivors leave as one batch."""
    out = [p for p in pkts if _forward_one(p)]
    if out:
        ip6_output(out[0].dev.net, out)


def ip6_forward(pkt: "Packet") -> None:
    """Single-packet ``ip6_forward``."""
    ip6_forward_list([pkt])


# ------------------------------------------------------------------- output
def ip6_output(net: "Net", pkts: list["Packet"]) -> None:
    """``ip6_output`` → ``ip6_finish_output`` for packets sharing ``pkts[0].dst``.

    A down/disabled output device drops (``ip6_output``: IPV6DISABLED when the device's
    IPv6 is disabled)."""
    dst: Rt6Info = pkts[0].dst
    dev = dst.dev
    idev = dev.ip6_ptr if dev is not None else None
    if idev is None or idev.cnf("disable_ipv6"):
        for p in pkts:
            net.ipv6.mib["OutDiscards"] += 1
            kfree_skb_reason(p, "IPV6DISABLED", net)
        return
    mtu = dst.mtu()
    pmtu = net.ipv6.pmtu
    ready: list[Packet] = []
    for p in pkts:
        p.protocol = ETH_P_IPV6
        indev = p.dev
        p.dev = dev
        # NF_HOOK_COND(NFPROTO_IPV6, NF_INET_POST_ROUTING, …, indev, dev, ip6_finish_output)
        if not nf_hook(net, NFPROTO_IPV6, NF_INET_POST_ROUTING, p, indev, dev):
            continue
        if pmtu:
            from netstack.ipv6.route import ip6_dst_mtu
            o = p.network_header
            mtu = ip6_dst_mtu(net, dst, bytes(p.buf[o + 24:o + 40]))
        cb = p.cb
        fms = getattr(cb, "frag_max_size", 0) if cb is not None else 0
        # ip6_finish_output: conntrack defrag's frag_max_size also forces fragmentation
        if p.gso_size:
            # ip6_finish_output: a GSO packet whose segments exceed the MTU is segmented
            # here and each segment fragmented (ip6_finish_output_gso_slowpath_drop)
            if skb_gso_validate_network_len(p, mtu):
                ready.append(p)
            else:
                ready.extend(_gso_slowpath(net, p, mtu))
        elif (len(p) > mtu) or (fms and len(p) > fms):
            ready.extend(ip6_fragment(net, p, mtu))
        else:
            ready.append(p)
    if ready:
        ip6_finish_output2(net, dst, ready)


def _gso_slowpath(net: "Net", p: "Packet", mtu: int) -> list["Packet"]:
    """``ip6_finish_output_gso_slowpath_drop``: software GSO, then fragment."""
    from netstack.core.gso import GSO_FEATURES, GsoError, netif_skb_features, skb_gso_segment
    try:
        segs = skb_gso_segment(p, netif_skb_features(p, p.dev) - GSO_FEATURES)
    except GsoError:
        kfree_skb_reason(p, "NOT_SPECIFIED", net)
        return []
    out: list["Packet"] = []
    for s in segs or [p]:
        out.extend(ip6_fragment(net, s, mtu) if len(s) > mtu else [s])
    return out


def ip6_finish_output2(net: "Net", dst: "Rt6Info", pkts: list["Packet"]) -> None:
    """Resolve the next hop on the ND table and hand the batch to the neighbour layer;
    ``pkts`` are grouped by next hop (different destinations of an on-link route)."""
    tbl = net.ipv6.nd_tbl
    dev = dst.dev
    gw = dst.gateway
    if gw is not None:
        for p in pkts:
            if p.trace is not None:
                p.trace.event(p, "ip6_finish_output2")
        neigh_output(tbl, dev, gw, pkts)
        return
    groups: dict[bytes, list[Packet]] = {}
    for p in pkts:
        o = p.network_header
        groups.setdefault(bytes(p.buf[o + 24:o + 40]), []).append(p)
        if p.trace is not None:
            p.trace.event(p, "ip6_finish_output2")
    for nh, lst in groups.items():
        neigh_output(tbl, dev, nh, lst)


def _unfragmentable_len(buf: bytearray, o: int, end: int) -> tuple[int, int]:
    """``ip6_find_1stfragopt``: (length of the unfragmentable part, offset of the
    next-header byte that must become 44)."""
    nh_off = o + 6
    off = o + 40
    nexthdr = buf[nh_off]
    seen_rthdr = False
    while off + 2 <= end:
        if nexthdr == 0 or nexthdr == 43:
            if nexthdr == 43:
                seen_rthdr = True
        elif nexthdr == 60:
            # a destination header before a routing header is unfragmentable
            nxt_off = off + ((buf[off + 1] + 1) << 3)
            if seen_rthdr or nxt_off + 2 > end or buf[off] != 43:
                break
        else:
            break
        nh_off = off
        nexthdr = buf[off]
        off += (buf[off + 1] + 1) << 3
    return off - o, nh_off


def ipv6_select_ident(net: "Net", daddr: bytes, saddr: bytes) -> int:
    """``ipv6_select_ident``: the kernel hashes (daddr, saddr) with a random key into a
    table of counters bumped by random amounts; netstack keeps a counter per namespace
    started from a siphash of the addresses keyed by ``hash_secret`` (never 0)."""
    v6 = net.ipv6
    v6.ident += 1
    ident = (siphash(daddr + saddr, net.hash_secret) + v6.ident) & 0xFFFFFFFF
    return ident or 1


def _frag_list_geometry(pkt: "Packet", payload_len: int, room: int) -> list[int] | None:
    """``ip6_fragment``'s fast path: a datagram conntrack reassembled keeps its fragments
    as ``frag_list`` (``nf_ct_frag6_reasm`` does not coalesce), recorded by
    netstack/netfilter/defrag6.py as ``pkt.frag_pieces``; when every piece fits ``room``
    and all but the last are multiples of 8, the output fragments have exactly the
    received geometry.  None = slow path."""
    pieces = pkt.__dict__.get("frag_pieces")
    if not pieces or sum(pieces) != payload_len:
        return None
    last = len(pieces) - 1
    for i, n in enumerate(pieces):
        if n > room or (n & 7 and i != last):
            return None
    return list(pieces)


def ip6_fragment(net: "Net", pkt: "Packet", mtu: int) -> list["Packet"]:
    """``ip6_fragment`` (slow path): returns the fragments, or [] after sending a packet
    too big when the datagram may not be fragmented (forwarded, not ``ignore_df``)."""
    from netstack.ipv6.icmp import icmp6_send
    o = pkt.network_header
    buf = pkt.buf
    end = pkt.tail
    hlen, nh_off = _unfragmentable_len(buf, o, end)
    cb = pkt.cb
    fms = getattr(cb, "frag_max_size", 0) if cb is not None else 0
    if fms and fms <= mtu:
        # don't send fragments larger than what we received (conntrack defrag)
        mtu = max(fms, IPV6_MIN_MTU)
    if not getattr(pkt.sk, "ignore_df", True) or mtu < hlen + 8 + 8 or fms > mtu:
        icmp6_send(pkt, 2, 0, mtu)
        net.ipv6.mib["FragFails"] += 1
        kfree_skb_reason(pkt, "PKT_TOO_BIG", net)
        return []
    room = mtu - hlen - 8
    nexthdr = buf[nh_off]
    daddr = bytes(buf[o + 24:o + 40])
    saddr = bytes(buf[o + 8:o + 24])
    ident = ipv6_select_ident(net, daddr, saddr)
    head = bytearray(buf[o:o + hlen])
    head[nh_off - o] = NEXTHDR_FRAGMENT
    payload = bytes(buf[o + hlen:end])
    sizes = _frag_list_geometry(pkt, len(payload), room)
    if sizes is None:
        sizes = []
        left = len(payload)
        while left > 0:
            ln = min(left, room)
            if ln < left:
                ln &= ~7
            left -= ln
            sizes.append(ln)
    offset = 0
    frags: list[Packet] = []
    world = net.world
    for i, ln in enumerate(sizes):
        more = i < len(sizes) - 1
        fh = bytes((nexthdr, 0)) + (offset | (1 if more else 0)).to_bytes(2, "big") + \
            ident.to_bytes(4, "big")
        h = bytearray(head)
        plen = hlen - 40 + 8 + ln
        h[4], h[5] = plen >> 8, plen & 0xFF
        f = world.new_packet(bytes(h) + fh + payload[offset:offset + ln])
        f.trace = pkt.trace
        f.network_header = f.data
        f.transport_header = f.data + hlen + 8
        f.protocol = ETH_P_IPV6
        f.dst = pkt.dst
        f.dev = pkt.dev
        f.mark = pkt.mark
        f.priority = pkt.priority
        f.sk = pkt.sk
        offset += ln
        frags.append(f)
        net.ipv6.mib["FragCreates"] += 1
    net.ipv6.mib["FragOKs"] += 1
    if pkt.trace is not None:
        pkt.trace.event(pkt, "ip6_fragment", info=f"frags={len(frags)} id={ident:#x}")
    return frags


# ------------------------------------------------------------ local output
def ip6_make_flowlabel(net: "Net", saddr: bytes, daddr: bytes, proto: int, sport: int = 0,
                       dport: int = 0, autolabel: bool = True) -> int:
    """``ip6_make_flowlabel`` for an unset label: 0 when ``auto_flowlabels`` is 0 (or 1/3
    with the socket opted out), else a 20-bit hash of the flow (see the module docstring);
    ``flowlabel_state_ranges`` sets the stateless bit 0x80000."""
    mode = int(net.sysctl.values["net.ipv6.auto_flowlabels"])
    if not (mode == 2 or (mode in (1, 3) and autolabel)):
        return 0
    h = siphash(saddr + daddr + bytes((proto,)) + sport.to_bytes(2, "big")
                + dport.to_bytes(2, "big"), net.hash_secret)
    label = h & 0xFFFFF
    if net.sysctl.values["net.ipv6.flowlabel_state_ranges"]:
        label |= 0x80000
    return label


def ip6_dst_hoplimit(dst: "Rt6Info") -> int:
    """``ip6_dst_hoplimit``: the route's hoplimit metric, else ``conf.DEV.hop_limit``."""
    hl = dst.route.metrics.get("hoplimit", 0) if dst.route is not None else 0
    if hl:
        return hl
    dev = dst.dev
    if dev is not None and dev.ip6_ptr is not None:
        return int(dev.ip6_ptr.cnf("hop_limit"))
    return int(dst.dev.net.sysctl.values["net.ipv6.conf.all.hop_limit"])  # type: ignore[union-attr]


def ip6_send(net: "Net", dst: "Rt6Info", saddr: bytes, daddr: bytes, proto: int,
             payload: bytes, tclass: int = 0, hop_limit: int | None = None,
             flowlabel: int | None = None, sk: Any = None, sport: int = 0, dport: int = 0,
             mark: int = 0, trace_from: "Packet | None" = None,
             partial_csum: bool = False) -> None:
    """Build a datagram for a local sender and ``ip6_local_out`` it through ``dst``."""
    from netstack.packet.ipv6 import build_ipv6
    if hop_limit is None:
        hop_limit = ip6_dst_hoplimit(dst)
    if flowlabel is None:
        flowlabel = ip6_make_flowlabel(net, saddr, daddr, proto, sport, dport)
    data = build_ipv6(saddr, daddr, proto, payload, traffic_class=tclass,
                      flow_label=flowlabel, hop_limit=hop_limit)
    pkt = net.world.new_packet(data)
    if trace_from is not None and trace_from.trace is None:
        pkt.trace = None
    pkt.network_header = pkt.data
    pkt.transport_header = pkt.data + 40
    pkt.protocol = ETH_P_IPV6
    pkt.dst = dst
    pkt.dev = dst.dev
    pkt.sk = sk
    pkt.mark = mark
    if partial_csum:
        pkt.ip_summed = CHECKSUM_PARTIAL
        pkt.csum_start = pkt.transport_header
        pkt.csum_offset = 6
    ip6_local_out(net, pkt)


def ip6_local_out(net: "Net", pkt: "Packet") -> None:
    """``ip6_local_out`` → ``dst_output``: local destinations go through loopback —
    also our anycast addresses (``ip6_rt_get_dev_rcu``: RTF_LOCAL|RTF_ANYCAST copies get
    the loopback device), so an ICMPv6 error to one never reaches the wire."""
    from netstack.ipv6.route import RTN_ANYCAST, RTN_LOCAL
    net.ipv6.mib["OutRequests"] += 1
    dst = pkt.dst
    if pkt.trace is not None:
        pkt.trace.event(pkt, "ip6_local_out")
    # NF_HOOK(NFPROTO_IPV6, NF_INET_LOCAL_OUT, …, dst_output)
    if not nf_hook(net, NFPROTO_IPV6, NF_INET_LOCAL_OUT, pkt, None, dst.dev):
        return
    dst = pkt.dst
    if dst.type == RTN_LOCAL or (dst.type == RTN_ANYCAST and dst.input == "output"):
        lo = net.get("lo")
        if lo is None or not lo.is_up:
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return
        from netstack.ipv6.route import Rt6Info
        pkt.dst = Rt6Info(RTN_LOCAL, lo, None, dst.route, None, "output")
    ip6_output(net, [pkt])
