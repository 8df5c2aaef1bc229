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
  (``__copy_skb_header``), no GSO state.

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
"""
from __future__ import annotations

import struct
from itertools import repeat
from typing import Any

from netstack.packet.checksum import csum_partial, csum_partial_rows, pseudo_sum_v4, pseudo_sum_v6
from netstack.packet.skb import (CHECKSUM_NONE, CHECKSUM_PARTIAL, DEFAULT_HEADROOM, SKB_GSO_DODGY,
                                 SKB_GSO_TCP_ACCECN, SKB_GSO_TCP_ECN, SKB_GSO_TCP_FIXEDID,
                                 SKB_GSO_TCP_FIXEDID_INNER, SKB_GSO_TCPV4, SKB_GSO_TCPV6, UNSET,
                                 Packet)

#: Module switch: False sends every packet down the layered path (the reference; the
#: property test compares the two).
ENABLED = True

#: gso_type bits the fast path handles; any other bit (tunnels, PARTIAL, UDP, …) falls
#: back.  FIXEDID_INNER only matters for an inner IPv4 header (there is none here).
_FAST_TYPES = (SKB_GSO_TCPV4 | SKB_GSO_TCPV6 | SKB_GSO_DODGY | SKB_GSO_TCP_ECN
               | SKB_GSO_TCP_ACCECN | SKB_GSO_TCP_FIXEDID | SKB_GSO_TCP_FIXEDID_INNER)

_M = 0xFFFF
_CWR = 0x80
_NOFINPSH = ~(0x01 | 0x08) & 0xFF
_H = DEFAULT_HEADROOM
_ETH_IPV4 = b"\x08\x00"
_ETH_IPV6 = b"\x86\xdd"

# numpy, bound on first use (as netstack/packet/checksum.py does: CLI commands that never
# segment do not pay its import)
_np: Any = None
_u8: Any = None

# Row packers: the bytes from the first to the last varying field of ``n`` header rows
# (one row per segment), the varying fields as integers and the invariant runs between
# them as byte strings.  One Struct per (IP version, IPv4 header length, n), in a bounded
# cache: the super-packets of a flow share it.
_row_cache: dict[tuple[bool, int, int], Any] = {}
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


def _numpy() -> Any:
    """Import numpy on first use and bind the names the buffer assembly uses."""
    global _np, _u8
    import numpy

    _np = numpy
    _u8 = numpy.uint8
    return numpy


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


def tcp_gso_segment_fast(pkt: Packet, features: frozenset[str]) -> list[Packet] | None:
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
    oldlen = tail - th
    if ip_summed != CHECKSUM_PARTIAL:
        pkt.ip_summed = ip_summed = CHECKSUM_PARTIAL
        pkt.csum_start = th
        pkt.csum_offset = 16
        if v6:
            ps = pseudo_sum_v6(bytes(buf[nh + 8:nh + 24]), bytes(buf[nh + 24:nh + 40]), oldlen, 6)
        else:
            ps = pseudo_sum_v4(buf[nh + 12:nh + 16], buf[nh + 16:nh + 20], oldlen, 6)
        buf[th + 16] = ps >> 8
        buf[th + 17] = ps & 0xFF

    # ---- the varying fields of every segment's header, column by column
    n = -(-plen // mss)
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
        seg_ip_summed = ip_summed
    else:
        # gso_make_checksum: fold(header sum + payload sum).  The header sum is that of
        # the invariant words (the super-packet's TCP header minus seq, flags and check:
        # sums are modulo 0xffff) plus each segment's seq, flags and the pseudo sum
        # tcp_gso_segment writes first; the payload sums are skb_segment's.
        seg_ip_summed = CHECKSUM_NONE
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
        # inet_gso_segment (_inet_gso_headers): total length, ID + 1 per segment unless
        # FIXEDID, the header checksum from the sum of the other words (the header's
        # sum minus total length, checksum and — unless fixed — ID) plus those two
        k = 8
        ip_id = (buf[nh + 4] << 8) | buf[nh + 5]
        base = (int.from_bytes(buf[nh:th], "big") - ((buf[nh + 2] << 8) | buf[nh + 3])
                - ((buf[nh + 10] << 8) | buf[nh + 11]))
        tot = ihl + thlen + mss
        tot_last = ihl + thlen + lastlen
        if gso_type & SKB_GSO_TCP_FIXEDID:
            totids = [tot << 16 | ip_id] * n
            totids[last] = tot_last << 16 | ip_id
            ipcs = [-(base + tot) % _M] * n
            ipcs[last] = -(base + tot_last) % _M
        else:
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
        flat = [hdr[20:24]] * (k * n)
        flat[0::k] = totids
        flat[2::k] = ipcs
        flat[3::k] = [hdr[26:t0 + 4]] * n
        flat[4::k] = seqs
        flat[5::k] = [hdr[t0 + 8:t0 + 12]] * n
        r0 = 16
    flat[k - 2::k] = dfws
    flat[k - 1::k] = tchecks

    # ---- every segment's buffer in one bytearray: the template row (headroom, header,
    # payload room) repeated, the varying header bytes of all rows and the payload
    # copied in by two array assignments; each segment then takes its slice (one copy)
    rl = _H + t0 + thlen
    stride = rl + mss
    row = bytearray(stride)
    row[_H:rl] = hdr
    big = row * n
    np = _np or _numpy()
    o = np.frombuffer(big, _u8).reshape(n, stride)
    r1 = t0 + 18
    o[:, _H + r0:_H + r1] = np.frombuffer(_rows_pack(v6, ihl, n)(*flat), _u8).reshape(n, r1 - r0)
    o[:full, rl:] = np.frombuffer(buf, _u8, full * mss, data).reshape(full, mss)
    del o
    if full < n:
        big[last * stride + rl:last * stride + rl + lastlen] = memoryview(buf)[data + full * mss:tail]

    # ---- the skbs (skb_segment's __copy_skb_header, as netstack/core/gso.py does it)
    base_off = _H - mac
    d = dict(pkt.__dict__)
    for name in ("inner_mac_header", "inner_network_header", "inner_transport_header"):
        v = getattr(pkt, name)
        if v != UNSET:
            d[name] = v + base_off
    d["gso_size"] = 0
    d["gso_segs"] = 0
    d["gso_type"] = 0
    d["csum_start"] = pkt.csum_start + base_off
    s_nh = _H + 14
    s_th = s_nh + ihl
    protocol, pkt_type, dev, skb_iif = pkt.protocol, pkt.pkt_type, pkt.dev, pkt.skb_iif
    mark, priority, tstamp, ct, dst = pkt.mark, pkt.priority, pkt.tstamp, pkt.ct, pkt.dst
    trace, pid = pkt.trace, pkt.id
    dcopy = d.copy
    segs = [*map(Packet.__new__, repeat(Packet, n))]
    k = 0
    for seg in segs:
        seg.buf = big[k:k + stride]
        k += stride
        seg.head = 0
        seg.data = _H
        seg.tail = stride
        seg.mac_header = _H
        seg.network_header = s_nh
        seg.transport_header = s_th
        seg.protocol = protocol
        seg.pkt_type = pkt_type
        seg.dev = dev
        seg.skb_iif = skb_iif
        seg.mark = mark
        seg.priority = priority
        seg.ip_summed = seg_ip_summed
        seg.csum = 0
        seg.tstamp = tstamp
        seg.ct = ct
        seg.dst = dst
        seg.cb = None
        seg.trace = trace
        seg.id = pid
        seg.__dict__ = dcopy()
    if full < n:
        seg.buf = big[k - stride:k - stride + rl + lastlen]
        seg.tail = rl + lastlen
    return segs
