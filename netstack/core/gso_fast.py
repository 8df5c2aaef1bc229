"""Template fast path for software GSO of plain TCP over IPv4/IPv6 behind Ethernet.

Why: the layered path (netstack/core/gso.py ``skb_gso_segment`` → ``inet_gso_segment`` /
``ipv6_gso_segment`` → ``tcp4/6_gso_segment`` → ``skb_segment``, then every layer
rewriting its header in every segment) is the kernel's structure and stays the reference,
but for the common case — one TCP stream, no tunnel — it spends most of its time in
per-segment Python: a header copy, then three layers each touching every segment again.
In that case every segment's header is the same bytes except a handful of fields, so
all headers can be computed at once from one template and written in one block:

* IPv4 total length (only the last segment differs), IP ID (+1 per segment unless
  SKB_GSO_TCP_FIXEDID), IPv4 header checksum — ``inet_gso_segment``
  (net/ipv4/af_inet.c); IPv6 payload length (only the last differs) —
  ``ipv6_gso_segment`` (net/ipv6/ip6_offload.c);
* TCP sequence number (+gso_size per segment), flags (CWR only on the first unless
  SKB_GSO_TCP_ACCECN, FIN/PSH only on the last) and checksum: with device checksums
  (CHECKSUM_PARTIAL) the pseudo-header sum for the segment length — one value for every
  full segment — else the complete checksum, from the payload sums of the vectorised
  ``csum_partial_rows`` plus the header sum — ``tcp_gso_segment``
  (net/ipv4/tcp_offload.c);
* the segments themselves — ``skb_segment`` (net/core/skbuff.c): headroom + header +
  ``gso_size`` bytes of payload each, the super-packet's skb fields copied
  (``__copy_skb_header``), no GSO state.  Every segment is written into a row of one
  buffer; with ``burst`` (a driver that takes bursts) that buffer and one set of fields
  are returned as an :class:`~netstack.packet.skb_burst.SkbBurst`, else each row becomes
  an skb (``SkbBurst.packets``).

:func:`tcp_gso_segment_fast` returns None whenever its preconditions do not hold, and
``skb_gso_segment`` then takes the layered path: anything encapsulated or tunnelled,
GSO_PARTIAL (``tx-gso-partial`` in the features), a packet the device can segment
itself (its TSO feature present: the DODGY ``gso_segs`` recomputation, or a type it
cannot take), UDP/UFO/other L4, IPv6 extension headers, a network header not right
after a 14-byte Ethernet header whose EtherType is the packet's protocol, remote
checksum offload, and every malformed case the layered path refuses with an error.
Its output — every segment's bytes and every skb field, and what it leaves in the
super-packet — is the layered path's: tests/offload/test_gso_fast.py checks that
property against the layered path (``ENABLED = False``).

:func:`udp_tunnel_gso_segment_fast` does the same for the UDP-tunnel case with an
Ethernet inner frame (VXLAN; Geneve, whose options keep the tunnel header's length
even; not FOU/GUE, whose inner packet is an IP protocol): outer Ethernet + outer
IPv4/IPv6 + outer UDP (SKB_GSO_UDP_TUNNEL, or SKB_GSO_UDP_TUNNEL_CSUM) + tunnel header
+ inner Ethernet + inner IPv4/IPv6 + TCP.  The layered path for it is
``inet/ipv6_gso_segment`` → ``udp4/6_ufo_fragment`` → ``skb_udp_tunnel_segment`` →
``__skb_udp_tunnel_segment`` (net/ipv4/udp_offload.c) → ``skb_mac_gso_segment`` →
inner ``inet/ipv6_gso_segment`` → ``tcp4/6_gso_segment`` → ``skb_segment``; the template
path adds the outer columns to the same rows: outer IPv4 total length/ID/checksum or
IPv6 payload length, outer UDP length, and the outer UDP checksum — by local checksum
offload from the inner TCP pseudo-header sum (which makes it one value for every full
segment and one for the last), or the pseudo-header sum left to a device that
checksums (CHECKSUM_PARTIAL at the outer UDP header).  See its docstring for what falls
back (tests/offload/test_gso_fast_tunnel.py checks the same property for it).
"""
from __future__ import annotations

import struct
from typing import Any

from netstack.packet.checksum import csum_partial, csum_partial_rows, pseudo_sum_v4, pseudo_sum_v6
from netstack.packet.skb import (CHECKSUM_NONE, CHECKSUM_PARTIAL, DEFAULT_HEADROOM, SKB_GSO_DODGY,
                                 SKB_GSO_TCP_ACCECN, SKB_GSO_TCP_ECN, SKB_GSO_TCP_FIXEDID,
                                 SKB_GSO_TCP_FIXEDID_INNER, SKB_GSO_TCPV4, SKB_GSO_TCPV6,
                                 SKB_GSO_UDP_TUNNEL, SKB_GSO_UDP_TUNNEL_CSUM, UNSET, Packet)
from netstack.packet.skb_burst import SkbBurst

#: Module switch: False sends every packet down the layered path (the reference; the
#: property test compares the two).
ENABLED = True

#: gso_type bits the fast path handles; any other bit (tunnels, PARTIAL, UDP, …) falls
#: back.  FIXEDID_INNER only matters for an inner IPv4 header (there is none here).
_FAST_TYPES = (SKB_GSO_TCPV4 | SKB_GSO_TCPV6 | SKB_GSO_DODGY | SKB_GSO_TCP_ECN
               | SKB_GSO_TCP_ACCECN | SKB_GSO_TCP_FIXEDID | SKB_GSO_TCP_FIXEDID_INNER)
#: The UDP tunnel bits (``skb_udp_tunnel_segment``'s types).
TUNNEL_TYPES = SKB_GSO_UDP_TUNNEL | SKB_GSO_UDP_TUNNEL_CSUM
#: gso_type bits the tunnel fast path handles: the plain ones plus the tunnel bits; any
#: other (TUNNEL_REMCSUM, PARTIAL, GRE, IPXIP, UDP/UDP_L4, …) falls back.
_TUNNEL_FAST_TYPES = _FAST_TYPES | TUNNEL_TYPES

_M = 0xFFFF
_CWR = 0x80
_NOFINPSH = ~(0x01 | 0x08) & 0xFF
_H = DEFAULT_HEADROOM
_ETH_IPV4 = b"\x08\x00"
_ETH_IPV6 = b"\x86\xdd"
_ETH_P_TEB = 0x6558

# numpy, bound on first use (as netstack/packet/checksum.py does: CLI commands that never
# segment do not pay its import)
_np: Any = None
_u8: Any = None
# netstack.core.gso, bound on first use (it imports this module)
_gso: Any = None

# Row packers: the bytes from the first to the last varying field of ``n`` header rows
# (one row per segment), the varying fields as integers and the invariant runs between
# them as byte strings.  One Struct per header layout and ``n``, in a bounded cache:
# the super-packets of a flow share it.  Plain TCP keys are (IP version, IPv4 header
# length, n); tunnel keys are longer tuples (:func:`_tunnel_rows_pack`).
_row_cache: dict[tuple[Any, ...], Any] = {}
_ROW_CACHE_MAX = 64


def _rows_pack(v6: bool, ihl: int, n: int) -> Any:
    """``pack`` of ``n`` rows.  IPv4 (header bytes 16 .. TCP checksum end): total length
    and ID (one 32-bit word), fragment/TTL/protocol, header checksum, addresses +
    options + ports, seq, ack, doff/flags/window (one 32-bit word), TCP checksum.
    IPv6 (bytes 18 .. TCP checksum end): payload length, next header/hop limit/
    addresses + ports, then the TCP fields as for IPv4."""
    key = (v6, ihl, n)
    pack = _row_cache.get(key)
    if pack is None:
        row = "H38sI4sIH" if v6 else f"I4sH{ihl - 8}sI4sIH"
        if len(_row_cache) >= _ROW_CACHE_MAX:
            _row_cache.clear()
        pack = _row_cache[key] = struct.Struct("!" + row * n).pack
    return pack


def _tunnel_rows_pack(ov6: bool, o_u: int, tnl: int, iv6: bool, o_th: int, n: int) -> Any:
    """``pack`` of ``n`` tunnel header rows, from the outer IP header's first varying
    field to the inner TCP checksum (offsets from the outer MAC header: ``o_u`` the outer
    UDP header, ``tnl`` the UDP + tunnel header length, ``o_th`` the inner TCP header).

    Outer IPv4: total length + ID (one 32-bit word), fragment/TTL/protocol, header
    checksum, addresses + options + UDP ports; outer IPv6: payload length, the rest of
    the header + UDP ports.  Then UDP length, UDP checksum; inner IPv4: tunnel header +
    inner Ethernet + version/TOS, total length + ID, fragment/TTL/protocol, header
    checksum, addresses + options + TCP ports; inner IPv6: tunnel header + inner
    Ethernet + the first word, payload length, the rest + TCP ports; then seq, ack,
    doff/flags/window, TCP checksum (as :func:`_rows_pack`)."""
    key = (ov6, o_u, tnl, iv6, o_th, n)
    pack = _row_cache.get(key)
    if pack is None:
        o_inh = o_u + tnl + 14
        outer = f"H{o_u - 16}s" if ov6 else f"I4sH{o_u - 22}s"
        if iv6:
            inner = f"{o_inh - o_u - 4}sH{o_th - o_inh - 2}s"
        else:
            inner = f"{o_inh - o_u - 6}sI4sH{o_th - o_inh - 8}s"
        row = outer + "HH" + inner + "I4sIH"
        if len(_row_cache) >= _ROW_CACHE_MAX:
            _row_cache.clear()
        pack = _row_cache[key] = struct.Struct("!" + row * n).pack
    return pack


def _numpy() -> Any:
    """Import numpy on first use and bind the names the buffer assembly uses."""
    global _np, _u8
    import numpy

    _np = numpy
    _u8 = numpy.uint8
    return numpy


def _gso_module() -> Any:
    """netstack.core.gso (``hw_enc_features``, ``skb_gso_ok``), bound on first use: it
    imports this module at its top."""
    global _gso
    from netstack.core import gso

    _gso = gso
    return gso


def _wrapping_range(start: int, step: int, count: int, modulus: int, offset: int = 0) -> list[int]:
    """``[offset + (start + i*step) % modulus for i in range(count)]`` built from C-level
    ranges (``0 <= start < modulus``; each wrap starts a new run): IP IDs (mod 2**16,
    ``offset`` the total length above them) and TCP sequence numbers (mod 2**32)."""
    out: list[int] = []
    while count:
        stop = start + count * step
        if stop <= modulus:
            out += range(offset + start, offset + stop, step)
            return out
        run = range(start, modulus, step)
        out += range(offset + start, offset + modulus, step)
        count -= len(run)
        start = run[-1] + step - modulus
    return out


def _ip_checks(a: int, ip_id: int, count: int) -> list[int]:
    """``[(a - id_i) % 0xffff for id_i in IDs]`` for the IDs ``ip_id, ip_id + 1, …`` mod
    2**16, from C-level ranges: the IPv4 header checksum of each segment when ``a`` is
    minus the sum of the header's other words.  The value drops by one per segment
    (0 → 0xfffe: ones'-complement arithmetic mod 0xffff) and repeats once where the ID
    wraps (65535 → 0 changes the sum by 0xffff ≡ 0)."""
    out: list[int] = []
    c = (a - ip_id) % _M
    while count:
        run = min(count, 0x10000 - ip_id)   # IDs up to the wrap
        count -= run
        while run:
            k = min(run, c + 1)             # checks down to 0
            out += range(c, c - k, -1)
            run -= k
            c = (c - k) % _M
        if count:
            ip_id = 0
            c = a % _M
    return out


# ---- the steps both fast paths share (plain TCP and UDP tunnels): one copy each; five
# calls cost the plain path ~1 µs of its ~45 (measured), within the noise.
def _seed_tcp_pseudo(pkt: Packet, buf: bytearray, nh: int, th: int, v6: bool) -> None:
    """``__tcp_v4_send_check`` / ``__tcp_v6_send_check`` as ``tcp4/6_gso_segment`` run it
    for a super-packet that is not CHECKSUM_PARTIAL: PARTIAL at the TCP header, the
    pseudo-header sum for the whole TCP length in the check field."""
    pkt.ip_summed = CHECKSUM_PARTIAL
    pkt.csum_start = th
    pkt.csum_offset = 16
    oldlen = pkt.tail - th
    if v6:
        ps = pseudo_sum_v6(bytes(buf[nh + 8:nh + 24]), bytes(buf[nh + 24:nh + 40]), oldlen, 6)
    else:
        ps = pseudo_sum_v4(buf[nh + 12:nh + 16], buf[nh + 16:nh + 20], oldlen, 6)
    buf[th + 16] = ps >> 8
    buf[th + 17] = ps & 0xFF


def _tcp_columns(buf: bytearray, th: int, thlen: int, tail: int, mss: int, n: int, gso_type: int,
                 csum: bool) -> tuple[list[int], list[int], list[int], int, int]:
    """The TCP columns of ``tcp_gso_segment`` (net/ipv4/tcp_offload.c) for ``n`` segments
    of a super-packet whose check field holds the pseudo-header sum: sequence numbers
    (+mss each, mod 2**32), the doff/flags/window word (CWR only on the first unless
    SKB_GSO_TCP_ACCECN, FIN/PSH only on the last) and the checksums — the pseudo sum
    re-targeted to each segment's length (``csum_adjust_len``) when the device fills
    them (``csum``), else complete (``gso_make_checksum``: the payload sums of the
    vectorised ``csum_partial_rows`` plus the header sum).  Also returns the re-targeted
    pseudo sums of a full and of the last segment (``newcheck``, ``c_last``): what the
    running checksum of each segment (``SKB_GSO_CB(skb)->csum``) is the complement of,
    which an outer UDP checksum builds on."""
    data = th + thlen
    oldlen = tail - th
    plen = tail - data
    full = plen // mss
    last = n - 1
    lastlen = plen - last * mss
    check = (buf[th + 16] << 8) | buf[th + 17]
    # tcp_gso_segment's csum_adjust_len: the pseudo sum re-targeted from the super-
    # packet's TCP length to each segment's
    newcheck = (check + thlen + mss - oldlen) % _M or _M
    c_last = (check + thlen + lastlen - oldlen) % _M or _M
    seq0 = int.from_bytes(buf[th + 4:th + 8], "big")
    if seq0 + n * mss <= 0x100000000:
        seqs = list(range(seq0, seq0 + n * mss, mss))
    else:
        seqs = _wrapping_range(seq0, mss, n, 0x100000000)
    # flags: CWR only on the first segment (unless AccECN), FIN/PSH only on the last
    f0 = buf[th + 13]
    fmid = f0 if gso_type & SKB_GSO_TCP_ACCECN else f0 & ~_CWR & 0xFF
    dfw = int.from_bytes(buf[th + 12:th + 16], "big") & ~0xFF0000
    dfws = [dfw | (fmid & _NOFINPSH) << 16] * n
    dfws[0] = dfw | (f0 & _NOFINPSH) << 16
    dfws[last] = dfw | fmid << 16
    if csum:
        tchecks = [newcheck] * n
        tchecks[last] = c_last
    else:
        # gso_make_checksum: fold(header sum + payload sum).  The header sum is that of
        # the invariant words (the super-packet's TCP header minus seq, flags and check:
        # sums are modulo 0xffff) plus each segment's seq, flags and the pseudo sum
        # tcp_gso_segment writes first; the payload sums are skb_segment's.
        mv = memoryview(buf)
        psums = csum_partial_rows(mv, data, full, mss)
        if full < n:
            psums.append(csum_partial(mv[data + full * mss:tail]))
        del mv
        hs = int.from_bytes(buf[th:data], "big") - seq0 - f0 - check + newcheck
        fmid_mid = fmid & _NOFINPSH
        tchecks = [-(hs + fmid_mid + q + p) % _M for q, p in zip(seqs, psums)]
        tchecks[0] = -(hs + (f0 & _NOFINPSH) + seq0 + psums[0]) % _M
        tchecks[last] = -(hs - newcheck + c_last + fmid + seqs[last] + psums[last]) % _M
    return seqs, dfws, tchecks, newcheck, c_last


def _ipv4_columns(buf: bytearray, nh: int, ihl: int, tot: int, tot_last: int, n: int,
                  fixedid: bool) -> tuple[list[int], list[int]]:
    """The IPv4 columns of ``inet_gso_segment`` (net/ipv4/af_inet.c, _inet_gso_headers)
    for the header at ``nh``: total length and ID as one 32-bit word (ID + 1 per segment
    unless ``fixedid``; only the last segment's length differs), and the header
    checksum from the sum of the other words (the header's sum minus total length,
    checksum and — unless fixed — ID) plus those two."""
    last = n - 1
    ip_id = (buf[nh + 4] << 8) | buf[nh + 5]
    base = (int.from_bytes(buf[nh:nh + ihl], "big")
            - ((buf[nh + 2] << 8) | buf[nh + 3]) - ((buf[nh + 10] << 8) | buf[nh + 11]))
    if fixedid:
        totids = [tot << 16 | ip_id] * n
        totids[last] = tot_last << 16 | ip_id
        ipcs = [-(base + tot) % _M] * n
        ipcs[last] = -(base + tot_last) % _M
        return totids, ipcs
    base -= ip_id
    a = -(base + tot)
    c0 = (a - ip_id) % _M
    if ip_id + n <= 0x10000 and c0 >= last:     # no ID wrap, no checksum wrap
        totids = list(range(tot << 16 | ip_id, (tot << 16 | ip_id) + n))
        ipcs = list(range(c0, c0 - n, -1))
    else:
        totids = _wrapping_range(ip_id, 1, n, 0x10000, tot << 16)
        ipcs = _ip_checks(a, ip_id, n)
    if tot_last != tot:
        id_last = totids[last] & 0xFFFF
        totids[last] = tot_last << 16 | id_last
        ipcs[last] = -(base + tot_last + id_last) % _M
    return totids, ipcs


def _segment_dict(pkt: Packet, base_off: int) -> dict[str, Any]:
    """The cold skb fields every segment gets (``__copy_skb_header`` in ``skb_segment``, as
    netstack/core/gso.py copies them): the super-packet's ``__dict__``, the inner header
    offsets and ``csum_start`` moved to the segment's buffer, no GSO state."""
    d = dict(pkt.__dict__)
    for name in ("inner_mac_header", "inner_network_header", "inner_transport_header"):
        v = getattr(pkt, name)
        if v != UNSET:
            d[name] = v + base_off
    d["gso_size"] = 0
    d["gso_segs"] = 0
    d["gso_type"] = 0
    d["csum_start"] = pkt.csum_start + base_off
    return d


def _build_segments(pkt: Packet, hdr: bytes, rows: bytes, r0: int, r1: int, data: int, mss: int,
                    n: int, s_nh: int, s_th: int, protocol: int, seg_ip_summed: int,
                    d: dict[str, Any], burst: bool = False) -> list[Packet] | SkbBurst:
    """``skb_segment``'s output from the header template ``hdr`` (outer MAC header ..
    payload) and the packed varying bytes ``rows`` (row i = header bytes ``r0 .. r1`` of
    segment i): every segment's buffer in one bytearray — the template row (headroom,
    header, payload room) repeated, the rows and the payload copied in by two array
    assignments; each segment then takes its slice (one copy) and the super-packet's
    skb fields (``d`` the cold ones) — or, with ``burst``, the buffer and one set of
    fields are returned as they are (netstack/packet/skb_burst.py)."""
    buf = pkt.buf
    tail = pkt.tail
    plen = tail - data
    full = plen // mss
    last = n - 1
    lastlen = plen - last * mss
    rl = _H + len(hdr)
    stride = rl + mss
    row = bytearray(stride)
    row[_H:rl] = hdr
    big = row * n
    np = _np or _numpy()
    o = np.frombuffer(big, _u8).reshape(n, stride)
    o[:, _H + r0:_H + r1] = np.frombuffer(rows, _u8).reshape(n, r1 - r0)
    o[:full, rl:] = np.frombuffer(buf, _u8, full * mss, data).reshape(full, mss)
    del o
    if full < n:
        at = last * stride + rl
        big[at:at + lastlen] = memoryview(buf)[data + full * mss:tail]

    # ---- one set of skb fields for every row (skb_segment's __copy_skb_header, as
    # netstack/core/gso.py does it): the burst; its skbs are made here unless the caller
    # takes the burst itself (a driver with start_xmit_burst)
    t = Packet.__new__(Packet)
    t.buf = big
    t.head = 0
    t.data = _H
    t.tail = stride
    t.mac_header = _H
    t.network_header = s_nh
    t.transport_header = s_th
    t.protocol = protocol
    t.pkt_type = pkt.pkt_type
    t.dev = pkt.dev
    t.skb_iif = pkt.skb_iif
    t.mark = pkt.mark
    t.priority = pkt.priority
    t.ip_summed = seg_ip_summed
    t.csum = 0
    t.tstamp = pkt.tstamp
    t.ct = pkt.ct
    t.dst = pkt.dst
    t.cb = None
    t.trace = pkt.trace
    t.id = pkt.id
    t.__dict__ = d
    tails = [stride] * n
    if full < n:
        tails[last] = rl + lastlen
    b = SkbBurst(t, stride, tails)
    return b if burst else b.packets()


def tcp_gso_segment_fast(pkt: Packet, features: frozenset[str],
                         burst: bool = False) -> list[Packet] | SkbBurst | None:
    """Segment a plain TCP/IPv4 or TCP/IPv6 super-packet (``data`` at its Ethernet header)
    in one pass, or return None when the layered path must do it (see the module
    docstring for the conditions).

    The result is exactly what ``skb_gso_segment`` → ``inet_gso_segment`` /
    ``ipv6_gso_segment`` → ``tcp4/6_gso_segment`` → ``tcp_gso_segment`` →
    ``skb_segment`` produce (net/core/gso.c, net/ipv4/af_inet.c, net/ipv6/ip6_offload.c,
    net/ipv4/tcp_offload.c, net/core/skbuff.c), and the super-packet is left as they leave
    it: header offsets set, the pseudo-header sum seeded when it was not PARTIAL."""
    # ---- preconditions: nothing is modified until all hold
    gso_type = pkt.gso_type
    mss = pkt.gso_size
    if gso_type & ~_FAST_TYPES or mss <= 0 or "tx-gso-partial" in features:
        return None
    protocol = pkt.protocol
    if protocol == 0x0800:
        v6 = False
        if gso_type & (SKB_GSO_TCPV4 | SKB_GSO_TCPV6) != SKB_GSO_TCPV4:
            return None
        # tcp_gso_segment's skb_gso_ok(): with TSO the device (or a DODGY check) decides
        if "tx-tcp-segmentation" in features:
            return None
        csum = "tx-checksum-ip-generic" in features or "tx-checksum-ipv4" in features
    elif protocol == 0x86DD:
        v6 = True
        if gso_type & (SKB_GSO_TCPV4 | SKB_GSO_TCPV6) != SKB_GSO_TCPV6:
            return None
        if "tx-tcp6-segmentation" in features:
            return None
        csum = "tx-checksum-ip-generic" in features or "tx-checksum-ipv6" in features
    else:
        return None
    if pkt.encapsulation or pkt.__dict__.get("remcsum_offload"):
        return None
    buf = pkt.buf
    mac = pkt.data
    tail = pkt.tail
    nh = mac + 14
    onh = pkt.network_header
    if onh != UNSET and onh >= mac and onh != nh:
        return None
    if buf[mac + 12:nh] != (_ETH_IPV6 if v6 else _ETH_IPV4):
        return None
    if v6:
        if tail - nh < 40 or buf[nh] >> 4 != 6 or buf[nh + 6] != 6:
            return None
        ihl = 40
    else:
        if tail - nh < 20 or buf[nh] >> 4 != 4 or buf[nh + 9] != 6:
            return None
        ihl = (buf[nh] & 0x0F) * 4
        if ihl < 20 or tail - nh < ihl:
            return None
    th = nh + ihl
    if tail - th < 20:
        return None
    thlen = (buf[th + 12] >> 4) * 4
    ip_summed = pkt.ip_summed
    if (thlen < 20 or tail - th < thlen
            or (ip_summed == CHECKSUM_PARTIAL and pkt.csum_start != th)):
        return None
    data = th + thlen
    plen = tail - data
    if plen <= mss:
        return None

    # ---- the super-packet as the layered path leaves it (skb_mac_gso_segment,
    # inet/ipv6_gso_segment, tcp4/6_gso_segment's __tcp_v4/v6_send_check seeding)
    pkt.mac_header = mac
    pkt.network_header = nh
    pkt.transport_header = th
    if ip_summed != CHECKSUM_PARTIAL:
        _seed_tcp_pseudo(pkt, buf, nh, th, v6)
        ip_summed = CHECKSUM_PARTIAL

    # ---- the varying fields of every segment's header, column by column
    n = -(-plen // mss)
    last = n - 1
    lastlen = plen - last * mss
    seqs, dfws, tchecks, _, _ = _tcp_columns(buf, th, thlen, tail, mss, n, gso_type, csum)
    seg_ip_summed = ip_summed if csum else CHECKSUM_NONE
    hdr = bytes(buf[mac:data])
    t0 = th - mac
    if v6:
        # ipv6_gso_segment: the payload length
        k = 6
        flat = [thlen + mss] * (k * n)
        flat[k * last] = thlen + lastlen
        flat[1::k] = [hdr[20:58]] * n
        flat[2::k] = seqs
        flat[3::k] = [hdr[62:66]] * n
        r0 = 18
    else:
        # inet_gso_segment (_inet_gso_headers): total length, ID, header checksum
        k = 8
        totids, ipcs = _ipv4_columns(buf, nh, ihl, ihl + thlen + mss, ihl + thlen + lastlen,
                                     n, bool(gso_type & SKB_GSO_TCP_FIXEDID))
        flat = [hdr[20:24]] * (k * n)
        flat[0::k] = totids
        flat[2::k] = ipcs
        flat[3::k] = [hdr[26:t0 + 4]] * n
        flat[4::k] = seqs
        flat[5::k] = [hdr[t0 + 8:t0 + 12]] * n
        r0 = 16
    flat[k - 2::k] = dfws
    flat[k - 1::k] = tchecks

    # ---- the buffers and skbs (skb_segment's copies and __copy_skb_header)
    return _build_segments(pkt, hdr, _rows_pack(v6, ihl, n)(*flat), r0, t0 + 18, data, mss,
                           n, _H + 14, _H + 14 + ihl, pkt.protocol, seg_ip_summed,
                           _segment_dict(pkt, _H - mac), burst)


def udp_tunnel_gso_segment_fast(pkt: Packet, features: frozenset[str],
                                burst: bool = False) -> list[Packet] | SkbBurst | None:
    """Segment a UDP-tunnelled TCP super-packet (``data`` at its outer Ethernet header) in
    one pass, or return None when the layered path must do it.

    Covered: outer Ethernet (14 bytes, EtherType = ``protocol``) + outer IPv4 (options
    allowed) or IPv6 (no extension header) + UDP + a tunnel header of even length
    (VXLAN's 8 bytes; Geneve's 8 + options, multiples of 4) + inner Ethernet + inner
    IPv4 (options allowed) or IPv6 (no extension header) + TCP; SKB_GSO_UDP_TUNNEL or
    SKB_GSO_UDP_TUNNEL_CSUM with the plain path's TCP bits (TCPV4/TCPV6 matching the
    inner header, DODGY, ECN, AccECN, FIXEDID, FIXEDID_INNER); ``encapsulation`` set,
    ``inner_protocol`` ETH_P_TEB with the Ethernet inner type, ``inner_network_header``
    14 bytes after ``inner_mac_header``; the super-packet CHECKSUM_PARTIAL at the inner
    TCP header or not PARTIAL (seeded, as ``tcp4/6_gso_segment`` does).

    Falls back (None, the packet untouched): TUNNEL_REMCSUM, GSO_PARTIAL (type bit or
    ``tx-gso-partial``), GRE/IPIP/UDP/UDP_L4 and every other type bit, FOU/GUE
    (``inner_protocol_type`` IP protocol), inner VLAN tags or a non-IP inner EtherType,
    odd tunnel header lengths, IPv6 extension headers, a device whose features for the
    inner packet (``features & hw_enc_features``) keep the tunnel offloaded (the
    ``skb_gso_ok`` of ``tcp_gso_segment``: the DODGY ``gso_segs`` recomputation or the
    device segmenting itself), inner features with only a protocol-specific checksum
    (``tx-checksum-ipv4``/``ipv6``: ``skb_segment`` would decide from
    ``skb_network_protocol`` of the ETH_P_TEB packet, which reads the inner payload), a
    segment longer than 64 KB, and every malformed case the layered path refuses.

    The result is exactly what ``skb_gso_segment`` → ``skb_mac_gso_segment`` →
    ``inet_gso_segment`` / ``ipv6_gso_segment`` → ``udp4/6_ufo_fragment`` →
    ``skb_udp_tunnel_segment`` → ``__skb_udp_tunnel_segment`` (net/ipv4/udp_offload.c) →
    ``skb_mac_gso_segment`` → inner ``inet/ipv6_gso_segment`` → ``tcp4/6_gso_segment``
    → ``skb_segment`` (net/core/skbuff.c) produce, and the super-packet is left as they
    leave it: ``data`` and the header offsets at the inner packet, ``protocol`` the
    inner protocol (ETH_P_TEB), ``encapsulation`` cleared, ``encap_hdr_csum`` /
    ``remcsum_offload`` recorded, the inner pseudo sum seeded when it was not PARTIAL.

    What the segments get, as the layered path does it:

    * inner TCP/IP columns as in :func:`tcp_gso_segment_fast`, the inner checksum by the
      device (CHECKSUM_PARTIAL, ``encapsulation`` and ``inner_*`` headers set on every
      segment) only when the inner features (``features & hw_enc_features``) have
      HW_CSUM — ``skb_segment``'s ``can_checksum_protocol`` — else complete in software;
      the IPv4 ID of both headers follows SKB_GSO_TCP_FIXEDID (the inner
      ``inet_gso_segment`` runs with ``encap_level`` reset by
      ``__skb_udp_tunnel_segment``, so it reads the outer flag as the outer one does);
    * outer UDP length; with _CSUM the outer checksum: ``~csum_fold(partial + len)``
      (the seed minus the super-packet's UDP length plus the segment's) left to the
      device (CHECKSUM_PARTIAL at the UDP header) when the inner checksum is complete
      and the device checksums the outer family, else computed by ``gso_make_checksum``
      from the running sum — the inner TCP segment's sum is the complement of its pseudo
      sum whatever its bytes, and a valid inner IPv4 header sums to zero, so the value
      depends only on the segment length: one for every full segment, one for the last;
    * outer IPv4 total length, ID, header checksum (``inet_gso_segment``) or IPv6
      payload length (``ipv6_gso_segment``)."""
    # ---- preconditions: nothing is modified until all hold
    gso_type = pkt.gso_type
    mss = pkt.gso_size
    if (gso_type & ~_TUNNEL_FAST_TYPES or not gso_type & TUNNEL_TYPES or mss <= 0
            or "tx-gso-partial" in features or not pkt.encapsulation):
        return None
    tcpv = gso_type & (SKB_GSO_TCPV4 | SKB_GSO_TCPV6)
    if (tcpv != SKB_GSO_TCPV4 and tcpv != SKB_GSO_TCPV6) or pkt.inner_protocol != _ETH_P_TEB:
        return None
    # skb_udp_tunnel_segment: ENCAP_TYPE_ETHER (0) → skb_mac_gso_segment on the inner frame
    if getattr(pkt, "inner_protocol_type", 0) != 0:
        return None
    buf = pkt.buf
    mac = pkt.data
    tail = pkt.tail
    nh = mac + 14
    onh = pkt.network_header
    if onh != UNSET and onh >= mac and onh != nh:
        return None
    protocol = pkt.protocol
    if protocol == 0x0800:
        ov6 = False
        if (tail - nh < 20 or buf[mac + 12:nh] != _ETH_IPV4 or buf[nh] >> 4 != 4
                or buf[nh + 9] != 17):
            return None
        ohl = (buf[nh] & 0x0F) * 4
        if ohl < 20 or tail - nh < ohl:
            return None
    elif protocol == 0x86DD:
        ov6 = True
        if (tail - nh < 40 or buf[mac + 12:nh] != _ETH_IPV6 or buf[nh] >> 4 != 6
                or buf[nh + 6] != 17):
            return None
        ohl = 40
    else:
        return None
    uh = nh + ohl
    im = pkt.inner_mac_header
    tnl = im - uh
    # __skb_udp_tunnel_segment: tnl_hlen ≥ 8 and pullable; an even length keeps the inner
    # headers' 16-bit words aligned with the outer UDP checksum's
    if tnl < 8 or tnl & 1 or tail - uh < tnl:
        return None
    inh = im + 14
    if tail - im < 14 or pkt.inner_network_header != inh:
        return None
    etype = buf[im + 12:inh]
    if etype == _ETH_IPV4:
        iv6 = False
        if (tcpv != SKB_GSO_TCPV4 or tail - inh < 20 or buf[inh] >> 4 != 4
                or buf[inh + 9] != 6):
            return None
        ihl = (buf[inh] & 0x0F) * 4
        if ihl < 20 or tail - inh < ihl:
            return None
    elif etype == _ETH_IPV6:
        iv6 = True
        if (tcpv != SKB_GSO_TCPV6 or tail - inh < 40 or buf[inh] >> 4 != 6
                or buf[inh + 6] != 6):
            return None
        ihl = 40
    else:
        return None
    th = inh + ihl
    if tail - th < 20:
        return None
    thlen = (buf[th + 12] >> 4) * 4
    ip_summed = pkt.ip_summed
    if (thlen < 20 or tail - th < thlen
            or (ip_summed == CHECKSUM_PARTIAL and pkt.csum_start != th)):
        return None
    data = th + thlen
    plen = tail - data
    if plen <= mss or data - nh + mss > 0xFFFF:
        return None
    # the features the inner segmentation sees (__skb_udp_tunnel_segment:
    # features & hw_enc_features) and what skb_segment / tcp_gso_segment decide from them
    dev = pkt.dev
    if dev is None:
        dev_features: Any = ()
    else:
        dev_features = getattr(dev, "features", None)
        if dev_features is None:
            return None
    gso = _gso or _gso_module()
    fin = features & gso.hw_enc_features(dev)
    if "tx-checksum-ip-generic" in fin:
        csum = True
    elif "tx-checksum-ipv4" in fin or "tx-checksum-ipv6" in fin:
        return None
    else:
        csum = False
    if (("tx-udp_tnl-segmentation" in fin or "tx-udp_tnl-csum-segmentation" in fin)
            and gso.skb_gso_ok(pkt, fin | {"tx-gso-robust"})):
        return None
    need_csum = bool(gso_type & SKB_GSO_UDP_TUNNEL_CSUM)
    offload = need_csum and ("tx-checksum-ip-generic" in dev_features
                             or ("tx-checksum-ipv6" if ov6 else "tx-checksum-ipv4") in dev_features)

    # ---- the super-packet as the layered path leaves it (__skb_udp_tunnel_segment's
    # inner setup, the inner layers' header offsets, skb_mac_gso_segment's data reset,
    # tcp4/6_gso_segment's seeding)
    pkt.encapsulation = False
    pkt.encap_hdr_csum = need_csum
    pkt.remcsum_offload = False
    pkt.protocol = _ETH_P_TEB
    pkt.data = im
    pkt.mac_header = im
    pkt.network_header = inh
    pkt.transport_header = th
    if ip_summed != CHECKSUM_PARTIAL:
        _seed_tcp_pseudo(pkt, buf, inh, th, iv6)

    # ---- the varying fields of every segment's header, column by column
    n = -(-plen // mss)
    last = n - 1
    lastlen = plen - last * mss
    seqs, dfws, tchecks, newcheck, c_last = _tcp_columns(buf, th, thlen, tail, mss, n, gso_type,
                                                         csum)
    fixedid = bool(gso_type & SKB_GSO_TCP_FIXEDID)
    tcplen = thlen + mss
    tcplen_last = thlen + lastlen
    ulen = th - uh + tcplen
    ulen_last = th - uh + tcplen_last
    seed = (buf[uh + 6] << 8) | buf[uh + 7]
    if not need_csum:
        uc = uc_last = seed
    else:
        # ~csum_fold(partial + len): partial = the seed minus the super-packet's length
        oldlen = tail - uh
        uc = (seed + ulen - oldlen) % _M or _M
        uc_last = (seed + ulen_last - oldlen) % _M or _M
        if csum or not offload:
            # gso_make_checksum from the UDP header to the inner TCP header plus the
            # running sum (~ the TCP pseudo sum: the complement of the inner segment's
            # sum); ports, tunnel header and inner Ethernet are invariant, an inner
            # IPv4 header sums to 0 (mod 0xffff), an IPv6 one to its invariant words
            # plus the payload length (= the TCP length).  0 is sent as 0xffff.
            inv = int.from_bytes(buf[uh:uh + 4], "big") + int.from_bytes(buf[uh + 8:inh], "big")
            if iv6:
                inv += int.from_bytes(buf[inh:th], "big") - ((buf[inh + 4] << 8) | buf[inh + 5])
                uc = -(inv + ulen + uc + _M - newcheck + tcplen) % _M or _M
                uc_last = -(inv + ulen_last + uc_last + _M - c_last + tcplen_last) % _M or _M
            else:
                uc = -(inv + ulen + uc + _M - newcheck) % _M or _M
                uc_last = -(inv + ulen_last + uc_last + _M - c_last) % _M or _M
    hdr = bytes(buf[mac:data])
    o_u = uh - mac
    o_inh = inh - mac
    o_th = th - mac
    # one full segment's row (what does not vary per segment as itself, invariant runs
    # as bytes), repeated; then the columns that vary and the last segment's lengths
    row: list[Any]
    if ov6:
        row = [ulen, hdr[20:o_u + 4]]              # ipv6_gso_segment: payload length
        r0 = 18
    else:
        row = [0, hdr[20:24], 0, hdr[26:o_u + 4]]   # total length + ID, header checksum
        r0 = 16
    ju = len(row)
    row += (ulen, uc)
    if iv6:
        row += (hdr[o_u + 8:o_inh + 4], tcplen, hdr[o_inh + 6:o_th + 4])
    else:
        row += (hdr[o_u + 8:o_inh + 2], 0, hdr[o_inh + 6:o_inh + 10], 0, hdr[o_inh + 12:o_th + 4])
    jt = len(row)
    row += (0, hdr[o_th + 8:o_th + 12], 0, 0)
    k = len(row)
    flat = row * n
    lastrow = k * last
    if ov6:
        flat[lastrow] = ulen_last
    else:
        ototids, oipcs = _ipv4_columns(buf, nh, ohl, ohl + ulen, ohl + ulen_last, n, fixedid)
        flat[0::k] = ototids
        flat[2::k] = oipcs
    flat[lastrow + ju] = ulen_last
    flat[lastrow + ju + 1] = uc_last
    if iv6:
        flat[lastrow + ju + 3] = tcplen_last
    else:
        itotids, iipcs = _ipv4_columns(buf, inh, ihl, ihl + tcplen, ihl + tcplen_last, n, fixedid)
        flat[ju + 3::k] = itotids
        flat[ju + 5::k] = iipcs
    flat[jt::k] = seqs
    flat[jt + 2::k] = dfws
    flat[jt + 3::k] = tchecks
    rows = _tunnel_rows_pack(ov6, o_u, tnl, iv6, o_th, n)(*flat)

    # ---- the skbs: __copy_skb_header's fields, then what __skb_udp_tunnel_segment sets
    d = _segment_dict(pkt, _H - mac)
    if csum:
        seg_ip_summed = CHECKSUM_PARTIAL
        d["inner_mac_header"] = _H + o_inh - 14
        d["inner_network_header"] = _H + o_inh
        d["inner_transport_header"] = _H + o_th
        d["encapsulation"] = True
    elif offload:
        seg_ip_summed = CHECKSUM_PARTIAL
        d["csum_start"] = _H + o_u
        d["csum_offset"] = 6
    else:
        seg_ip_summed = CHECKSUM_NONE
    return _build_segments(pkt, hdr, rows, r0, o_th + 18, data, mss, n, _H + 14, _H + o_u,
                           protocol, seg_ip_summed, d, burst)
