"""TCP segmentation and coalescing (net/ipv4/tcp_offload.c, Linux 6.18).

GSO (:func:`tcp_gso_segment`): after ``skb_segment`` cut the payload, every segment gets
seq = first seq + i·mss, FIN and PSH only on the last, CWR only on the first (unless the
flow uses AccECN, SKB_GSO_TCP_ACCECN), and its checksum: the pseudo-header sum for the
segment's length when the device fills it (PARTIAL), else the full checksum.

GRO (:func:`tcp_gro_receive`): a packet merges into a held flow only if its flags equal
the held one's except CWR/FIN/PSH, ACK number and every option word are equal, the IP
headers agree (``gro_receive_network_flush``), it is contiguous in sequence, no longer
than the held mss, and carries data; URG/PSH/RST/SYN/FIN/CWR or a short segment flush.
"""
from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from netstack.core.gro import (gro_receive_network_flush, inet_gro_compute_pseudo,
                               skb_gro_checksum_validate, skb_gro_receive)
from netstack.core.gso import (SKB_GSO_TCP_ACCECN, SKB_GSO_TCP_ECN,
                               SKB_GSO_TCP_FIXEDID, SKB_GSO_TCP_FIXEDID_INNER, SKB_GSO_TCPV4,
                               GsoCb, GsoError, csum_adjust_len, get16, gso_make_checksum,
                               put16, skb_gso_ok, skb_segment)
from netstack.packet.checksum import pseudo_sum_v4
from netstack.packet.skb import CHECKSUM_PARTIAL, Packet

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.gro import Napi

TCP_FLAG_CWR = 0x80
TCP_FLAG_ECE = 0x40
TCP_FLAG_URG = 0x20
TCP_FLAG_ACK = 0x10
TCP_FLAG_PSH = 0x08
TCP_FLAG_RST = 0x04
TCP_FLAG_SYN = 0x02
TCP_FLAG_FIN = 0x01


def tcp4_gso_segment(pkt: Packet, features: frozenset[str], cb: GsoCb) -> list[Packet] | None:
    """``tcp4_gso_segment``: needs SKB_GSO_TCPV4; a packet that is not PARTIAL gets its
    pseudo-header sum seeded first (``__tcp_v4_send_check``)."""
    if not pkt.gso_type & SKB_GSO_TCPV4:
        raise GsoError(errno.EINVAL, "not TCPV4")
    if not pkt.may_pull(20):
        raise GsoError(errno.EINVAL, "short TCP header")
    if pkt.ip_summed != CHECKSUM_PARTIAL:
        nh = pkt.network_header
        th = pkt.transport_header
        b = pkt.buf
        pkt.ip_summed = CHECKSUM_PARTIAL
        pkt.csum_start = th
        pkt.csum_offset = 16
        put16(b, th + 16, pseudo_sum_v4(b[nh + 12:nh + 16], b[nh + 16:nh + 20],
                                        pkt.tail - th, 6))
    return tcp_gso_segment(pkt, features, cb)


def tcp_gso_segment(pkt: Packet, features: frozenset[str], cb: GsoCb) -> list[Packet] | None:
    """``tcp_gso_segment``: see the module docstring.  EINVAL for a bad doff, a checksum
    start that is not the TCP header, or a payload not longer than gso_size; a DODGY
    packet the device can segment itself only gets ``gso_segs`` recomputed (None)."""
    buf = pkt.buf
    th = pkt.transport_header
    thlen = (buf[th + 12] >> 4) * 4
    if thlen < 20:
        raise GsoError(errno.EINVAL, "doff < 5")
    if pkt.csum_start != th:
        raise GsoError(errno.EINVAL, "csum_start is not the TCP header")
    if not pkt.may_pull(thlen):
        raise GsoError(errno.EINVAL, "short TCP header")
    oldlen = pkt.tail - pkt.data
    pkt.data += thlen
    mss = pkt.gso_size
    plen = pkt.tail - pkt.data
    if plen <= mss:
        raise GsoError(errno.EINVAL, "payload not longer than gso_size")
    if skb_gso_ok(pkt, features | {"tx-gso-robust"}):
        pkt.gso_segs = -(-plen // mss)
        return None
    segs = skb_segment(pkt, features, cb)
    if segs[0].gso_size:
        mss *= segs[0].gso_segs
    check = get16(buf, th + 16)
    seq = int.from_bytes(buf[th + 4:th + 8], "big")
    keep_cwr = bool(pkt.gso_type & SKB_GSO_TCP_ACCECN)
    newcheck = csum_adjust_len(check, oldlen, thlen + mss)
    last = len(segs) - 1
    # flags of the first / middle / last segment (the header is the same copy in all)
    f0 = buf[th + 13]
    fmid = f0 if keep_cwr else f0 & ~TCP_FLAG_CWR & 0xFF
    nofinpsh = ~(TCP_FLAG_FIN | TCP_FLAG_PSH) & 0xFF
    seg_csum = cb.seg_csum
    seg_csum_start = cb.seg_csum_start
    res_mid = ~newcheck & 0xFFFF
    for i, seg in enumerate(segs):
        sb = seg.buf
        t = seg.transport_header
        if i:
            _pack_u32(sb, t + 4, seq & 0xFFFFFFFF)
        if i < last:
            sb[t + 13] = (fmid if i else f0) & nofinpsh
            c = newcheck
            res = res_mid
        else:
            if i:
                sb[t + 13] = fmid
            c = csum_adjust_len(check, oldlen, seg.tail - t)
            res = ~c & 0xFFFF
        if seg.ip_summed == CHECKSUM_PARTIAL:
            _pack_u16(sb, t + 16, c)
            seg_csum[i] = res  # gso_reset_checksum
            seg_csum_start[i] = seg.csum_start
        else:
            _pack_u16(sb, t + 16, c)
            _pack_u16(sb, t + 16, gso_make_checksum(seg, cb, i, res))
        seq += mss
    return segs


_pack_u16 = struct.Struct("!H").pack_into
_pack_u32 = struct.Struct("!I").pack_into
#: TCP seq and the 8 bytes after it (ack, doff/reserved, flags, window), big-endian.
_SEQ_WORD = struct.Struct("!IQ").unpack_from
_WORD_MASK = 0xFFFFFFFFFFFFFFFF & ~((TCP_FLAG_CWR | TCP_FLAG_FIN | TCP_FLAG_PSH) << 16)


# --------------------------------------------------------------------- GRO
def tcp_gro_receive(gro: "Napi", pkt: Packet, th: int, held: list[Packet]) -> Packet | None:
    """``tcp_gro_receive``: try to merge ``pkt`` (TCP header at absolute ``th``) into the
    held packet of the same flow; returns the held packet to flush now, or None.  Sets
    ``gro.flush`` for ``pkt`` when it must not be held itself."""
    buf = pkt.buf
    thlen = (buf[th + 12] >> 4) * 4
    cbp = pkt.cb
    plen = pkt.tail - th - thlen
    flags = buf[th + 13] | ((buf[th + 12] & 0x0F) << 8)
    p = None
    ports = buf[th:th + 4]
    for q in held:
        qcb = q.cb
        if not qcb.same_flow:
            continue
        # in-place prefix tests instead of slicing the held packet (same result: the
        # header is whole, tcp_gro_pull_header checked it)
        if not q.buf.startswith(ports, q.transport_header):
            qcb.same_flow = False
            continue
        p = q
        break
    mss = 1
    flush = 1
    if p is not None:
        pb = p.buf
        t2 = p.transport_header
        flush = flags & TCP_FLAG_CWR
        # seq, then bytes 8..15 (ack, doff, flags, window) as one word each side: ack,
        # doff and window must match, the flags except CWR/FIN/PSH (byte 13, bits 16..23)
        seq, w = _SEQ_WORD(buf, th + 4)
        seq2, w2 = _SEQ_WORD(pb, t2 + 4)
        if (w ^ w2) & _WORD_MASK:
            flush |= 1
        if thlen > 20 and buf[th + 20:th + thlen] != pb[t2 + 20:t2 + thlen]:
            flush |= 1
        flush |= gro_receive_network_flush(gro, pkt, p, th, t2)
        mss = p.gso_size
        if pkt.gso_size:
            flush |= mss != pkt.gso_size
        else:
            flush |= (plen - 1) >= mss
        flush |= ((seq2 + p.tail - p.cb.hold_off) & 0xFFFFFFFF) != seq  # held_gro_len
        if flush or not skb_gro_receive(gro, p, pkt, th + thlen):
            mss = 1
        else:
            pb[t2 + 13] |= flags & (TCP_FLAG_FIN | TCP_FLAG_PSH)
    if pkt.gso_size:
        flush = int(plen != cbp.count * pkt.gso_size)
    else:
        flush = int(plen < mss)
    # 6.18 also ends the train on CWR (measured: a CWR segment goes up on its own and
    # is never held), so the ECN signal is not merged into later segments
    flush |= flags & (TCP_FLAG_URG | TCP_FLAG_PSH | TCP_FLAG_RST | TCP_FLAG_SYN
                      | TCP_FLAG_FIN | TCP_FLAG_CWR)
    pp = None
    if p is not None and (not cbp.same_flow or flush):
        pp = p
    cbp.flush |= flush != 0
    return pp


def tcp4_gro_receive(gro: "Napi", held: list[Packet], pkt: Packet) -> Packet | None:
    """``tcp4_gro_receive``: validate the checksum (unless flushing anyway), then
    :func:`tcp_gro_receive`."""
    cbp = pkt.cb
    if not cbp.flush and skb_gro_checksum_validate(gro, pkt, 6, inet_gro_compute_pseudo):
        cbp.flush = True
        return None
    th = tcp_gro_pull_header(pkt)
    if th < 0:
        cbp.flush = True
        return None
    return tcp_gro_receive(gro, pkt, th, held)


def tcp_gro_pull_header(pkt: Packet) -> int:
    """``tcp_gro_pull_header``: the TCP header at the GRO offset, pulled; -1 if short or
    doff < 5."""
    cbp = pkt.cb
    th = cbp.off
    if pkt.tail - th < 20:
        return -1
    thlen = (pkt.buf[th + 12] >> 4) * 4
    if thlen < 20 or pkt.tail - th < thlen:
        return -1
    cbp.off += thlen
    return th


def tcp_gro_complete(gro: "Napi", pkt: Packet) -> None:
    """``tcp_gro_complete``: the merged packet becomes a PARTIAL GSO packet (the TCP check
    field gets the pseudo sum from the caller), gso_segs = merged count, ECN type if CWR."""
    th = pkt.transport_header
    if pkt.encapsulation:
        pkt.inner_transport_header = th
    pkt.csum_start = th
    pkt.csum_offset = 16
    pkt.ip_summed = CHECKSUM_PARTIAL
    pkt.gso_segs = gro.cb(pkt).count
    if pkt.buf[th + 13] & TCP_FLAG_CWR:
        pkt.gso_type |= SKB_GSO_TCP_ECN


def tcp4_gro_complete(gro: "Napi", pkt: Packet, thoff: int) -> None:
    """``tcp4_gro_complete``: seed the pseudo sum for the merged length, SKB_GSO_TCPV4 and
    the FIXEDID flags the IP layers recorded (outer bit 0, inner bit 1)."""
    cbp = gro.cb(pkt)
    nh = cbp.network_offsets[1 if pkt.encapsulation else 0]
    b = pkt.buf
    put16(b, thoff + 16, pseudo_sum_v4(b[nh + 12:nh + 16], b[nh + 16:nh + 20],
                                       pkt.tail - thoff, 6))
    pkt.gso_type |= SKB_GSO_TCPV4
    if cbp.ip_fixedid & 1:
        pkt.gso_type |= SKB_GSO_TCP_FIXEDID
    if cbp.ip_fixedid & 2:
        pkt.gso_type |= SKB_GSO_TCP_FIXEDID_INNER
    tcp_gro_complete(gro, pkt)

