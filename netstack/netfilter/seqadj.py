"""TCP sequence adjustment after payload mangling (net/netfilter/nf_conntrack_seqadj.c) and
the NAT helper toolbox (net/netfilter/nf_nat_helper.c).

When a NAT helper rewrites an address inside a TCP payload (FTP ``PORT``) the segment
changes length, so every later sequence number of that direction, and every
acknowledgement of the other, must be shifted:

* ``nf_ct_seqadj_set``: per direction one correction point (``correction_pos``, the
  sequence number of the mangled segment) with the offset before and after it; a new
  correction is only recorded for a segment after the last one (a retransmission of the
  mangled segment reuses it).
* ``nf_ct_seq_adjust`` (run by ``nf_confirm`` for IPS_SEQ_ADJUST connections): the
  segment's sequence number gets this direction's offset, its acknowledgement and SACK
  blocks lose the other direction's; the TCP checksum is updated incrementally.
* ``nf_ct_seq_offset`` lets the TCP tracker map acknowledgements back
  (``tcp_in_window``: ``ack -= nf_ct_seq_offset(ct, !dir, ack - 1)``).
* ``nf_nat_mangle_tcp_packet``: replace ``match_len`` payload bytes at ``match_off`` with
  ``rep``, fix the IP length (and IPv4 header checksum), recompute the TCP checksum and
  record the size difference with ``nf_ct_seqadj_set``.
* ``nf_nat_follow_master``: the expected connection is NATed to mirror its master.
* ``nf_nat_exp_find_port``: register the expectation on the announced port, or on random
  other ones (128 attempts) while the port clashes (EBUSY).
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netstack.netfilter.conntrack_proto_tcp import after, before

if TYPE_CHECKING:  # pragma: no cover
    from netstack.netfilter.conntrack import NfConn
    from netstack.netfilter.conntrack_expect import Expectation
    from netstack.packet.skb import Packet

M32 = 0xFFFFFFFF
TCPOPT_EOL, TCPOPT_NOP, TCPOPT_SACK = 0, 1, 5


@dataclass
class SeqAdjDir:
    """``struct nf_ct_seqadj``."""

    correction_pos: int = 0
    offset_before: int = 0
    offset_after: int = 0


@dataclass
class SeqAdj:
    """``struct nf_conn_seqadj``: one record per direction."""

    seq: list[SeqAdjDir] = field(default_factory=lambda: [SeqAdjDir(), SeqAdjDir()])


def nf_ct_seqadj_set(ct: "NfConn", direction: int, seq: int, off: int) -> None:
    """``nf_ct_seqadj_set``."""
    from netstack.netfilter.conntrack import IPS_SEQ_ADJUST
    if off == 0:
        return
    ct.status |= IPS_SEQ_ADJUST
    if ct.seqadj is None:
        ct.seqadj = SeqAdj()
    w = ct.seqadj.seq[direction]
    if w.offset_before == w.offset_after or before(w.correction_pos, seq):
        w.correction_pos = seq
        w.offset_before = w.offset_after
        w.offset_after += off


def nf_ct_seq_offset(ct: "NfConn", direction: int, seq: int) -> int:
    """``nf_ct_seq_offset``: the offset applying to ``seq`` in ``direction``."""
    if ct.seqadj is None:
        return 0
    w = ct.seqadj.seq[direction]
    return w.offset_after if after(seq & M32, w.correction_pos) else w.offset_before


def _csum_replace4(buf: bytearray, at: int, old: int, new: int) -> None:
    from netstack.packet.checksum import csum_replace4
    check = int.from_bytes(buf[at:at + 2], "big")
    buf[at:at + 2] = csum_replace4(check, old, new).to_bytes(2, "big")


def nf_ct_seq_adjust(pkt: "Packet", ct: "NfConn", ctinfo: int, protoff: int) -> bool:
    """``nf_ct_seq_adjust``: False when the TCP options are malformed (the packet is then
    dropped by ``nf_confirm``)."""
    from netstack.netfilter.conntrack import ctinfo2dir
    if ct.seqadj is None:
        return True
    buf = pkt.buf
    if pkt.tail - protoff < 20:
        return False
    d = ctinfo2dir(ctinfo)
    this_way, other_way = ct.seqadj.seq[d], ct.seqadj.seq[1 - d]
    seq = int.from_bytes(buf[protoff + 4:protoff + 8], "big")
    ack = int.from_bytes(buf[protoff + 8:protoff + 12], "big")
    seqoff = this_way.offset_after if after(seq, this_way.correction_pos) \
        else this_way.offset_before
    ackoff = other_way.offset_after if after((ack - other_way.offset_before) & M32,
                                             other_way.correction_pos) \
        else other_way.offset_before
    newseq = (seq + seqoff) & M32
    newack = (ack - ackoff) & M32
    _csum_replace4(buf, protoff + 16, seq, newseq)
    _csum_replace4(buf, protoff + 16, ack, newack)
    buf[protoff + 4:protoff + 8] = newseq.to_bytes(4, "big")
    buf[protoff + 8:protoff + 12] = newack.to_bytes(4, "big")
    return _sack_adjust(buf, protoff, pkt.tail, other_way)


def _sack_adjust(buf: bytearray, protoff: int, tail: int, w: SeqAdjDir) -> bool:
    """``nf_ct_sack_adjust`` + ``nf_ct_sack_block_adjust``."""
    optoff = protoff + 20
    optend = min(protoff + ((buf[protoff + 12] >> 4) << 2), tail)
    while optoff < optend:
        kind = buf[optoff]
        if kind == TCPOPT_EOL:
            return True
        if kind == TCPOPT_NOP:
            optoff += 1
            continue
        if optoff + 1 == optend or optoff + buf[optoff + 1] > optend or buf[optoff + 1] < 2:
            return False
        ln = buf[optoff + 1]
        if kind == TCPOPT_SACK and ln >= 10 and (ln - 2) % 8 == 0:
            o = optoff + 2
            while o < optoff + ln:
                for at in (o, o + 4):
                    old = int.from_bytes(buf[at:at + 4], "big")
                    off = w.offset_after if after((old - w.offset_before) & M32,
                                                  w.correction_pos) else w.offset_before
                    new = (old - off) & M32
                    _csum_replace4(buf, protoff + 16, old, new)
                    buf[at:at + 4] = new.to_bytes(4, "big")
                o += 8
        optoff += ln
    return True


def nf_nat_mangle_tcp_packet(pkt: "Packet", ct: "NfConn", ctinfo: int, protoff: int,
                             match_off: int, match_len: int, rep: bytes) -> bool:
    """``__nf_nat_mangle_tcp_packet`` (with ``adjust``): offsets are relative to the TCP
    payload.  False when the result would exceed 65535 bytes."""
    from netstack.netfilter.conntrack import ctinfo2dir
    from netstack.packet.checksum import csum_ipv6_magic, csum_partial, csum_tcpudp_magic
    from netstack.ipv4.ip_output import ip_send_check
    buf = pkt.buf
    nh = pkt.network_header if pkt.network_header >= 0 else pkt.data
    delta = len(rep) - match_len
    if pkt.tail - nh + delta > 65535:
        return False
    dataoff = protoff + ((buf[protoff + 12] >> 4) << 2)
    start = dataoff + match_off
    buf[start:start + match_len] = rep
    pkt.tail += delta
    total = pkt.tail - nh
    if ct.l3num == 2:
        buf[nh + 2:nh + 4] = total.to_bytes(2, "big")
        ip_send_check(buf, nh)
        src, dst = bytes(buf[nh + 12:nh + 16]), bytes(buf[nh + 16:nh + 20])
    else:
        buf[nh + 4:nh + 6] = (total - 40).to_bytes(2, "big")
        src, dst = bytes(buf[nh + 8:nh + 24]), bytes(buf[nh + 24:nh + 40])
    seglen = pkt.tail - protoff
    buf[protoff + 16:protoff + 18] = b"\0\0"
    seg = bytes(buf[protoff:pkt.tail])
    magic = csum_tcpudp_magic if ct.l3num == 2 else csum_ipv6_magic
    buf[protoff + 16:protoff + 18] = magic(src, dst, seglen, 6, csum_partial(seg)).to_bytes(
        2, "big")
    if delta:
        seq = int.from_bytes(buf[protoff + 4:protoff + 8], "big")
        nf_ct_seqadj_set(ct, ctinfo2dir(ctinfo), seq, delta)
    return True


def nf_nat_follow_master(ct: "NfConn", exp: "Expectation") -> None:
    """``nf_nat_follow_master``: SNAT to where the master sends to, DNAT to the master's
    source with the saved port."""
    from netstack.netfilter.nat import (NF_NAT_MANIP_DST, NF_NAT_MANIP_SRC,
                                        NF_NAT_RANGE_MAP_IPS, NF_NAT_RANGE_PROTO_SPECIFIED,
                                        NfNatRange, nf_nat_setup_info)
    m = ct.master
    assert m is not None
    a = m.tuplehash[1 - exp.dir].dst
    nf_nat_setup_info(ct, NfNatRange(NF_NAT_RANGE_MAP_IPS, a, a), NF_NAT_MANIP_SRC)
    a = m.tuplehash[1 - exp.dir].src
    nf_nat_setup_info(ct, NfNatRange(NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED,
                                     a, a, exp.saved_proto, exp.saved_proto),
                      NF_NAT_MANIP_DST)


def nf_nat_exp_find_port(exp: "Expectation", port: int) -> int:
    """``nf_nat_exp_find_port``: the port the expectation got registered on, or 0."""
    from netstack.netfilter.conntrack import ct_net
    from netstack.netfilter.conntrack_expect import nf_ct_expect_related
    lo = port
    rng = 0xFFFF - port
    attempts = min(rng, 128)
    rand = ct_net(exp.master.net).rng
    while True:
        exp.tuple = exp.tuple._replace(dport=port)
        res = nf_ct_expect_related(exp)
        if res == 0:
            return port
        attempts -= 1
        if res != -errno.EBUSY or attempts < 0 or rng <= 0:
            return 0
        port = lo + rand.randrange(rng)
