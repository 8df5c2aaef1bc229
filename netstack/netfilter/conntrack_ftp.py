"""The FTP conntrack helper (net/netfilter/nf_conntrack_ftp.c).

Reads the control connection and expects the data connection it announces:

* client → server (original direction): ``PORT h1,h2,h3,h4,p1,p2\\r`` (RFC 959) and
  ``EPRT |1|a.b.c.d|port|`` / ``EPRT |2|v6addr|port|`` (RFC 2428);
* server → client (reply): ``227 `` + the first digits found (RFC 1123's PASV reply
  scan) and ``229 (|||port|)`` (EPSV).
* Commands are only looked for at the start of a segment that follows a newline: the
  helper remembers up to two sequence numbers just after a ``\\n`` per direction
  (``seq_aft_nl``, ``update_nl_seq``), so the first segment of each direction is never
  parsed, and a command split over two segments is not seen.
* Only ESTABLISHED / ESTABLISHED_REPLY packets with payload are looked at.  A segment
  whose payload is a *prefix* of a command keyword, or a keyword followed by an
  unparseable argument, is dropped (``find_pattern`` returning -1: "partial matching").
* The expectation: from the peer's address (``tuplehash[!dir].src``) to the address in
  the command — which must equal the sender's own address (``loose=0``, the default;
  otherwise no expectation) — and the announced port, any source port; class default,
  policy max 1, 300 s.
* On a NATed master ``nf_nat_ftp`` takes over: the expectation is for the NAT address
  (the master's other-direction destination) and follows the master's translations
  (``nf_nat_follow_master``), keeping the announced port unless it clashes; the numbers
  in the payload are rewritten to that address and port (``nf_nat_mangle_tcp_packet``)
  and the length change is recorded for sequence adjustment
  (:mod:`netstack.netfilter.seqadj`).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netstack.netfilter.core import NF_ACCEPT, NF_DROP, NFPROTO_IPV4, NFPROTO_IPV6

if TYPE_CHECKING:  # pragma: no cover
    from netstack.netfilter.conntrack import NfConn
    from netstack.netfilter.conntrack_expect import Expectation
    from netstack.packet.skb import Packet

NUM_SEQ_TO_REMEMBER = 2
NF_CT_FTP_SEQ_PICKUP = 1 << 0

# enum nf_ct_ftp_type
NF_CT_FTP_PORT = 0
NF_CT_FTP_PASV = 1
NF_CT_FTP_EPRT = 2
NF_CT_FTP_EPSV = 3


@dataclass
class FtpMaster:
    """``struct nf_ct_ftp_master``."""

    seq_aft_nl: list[list[int]] = field(default_factory=lambda: [[0, 0], [0, 0]])
    seq_aft_nl_num: list[int] = field(default_factory=lambda: [0, 0])
    flags: list[int] = field(default_factory=lambda: [0, 0])


@dataclass
class FtpCmd:
    """``struct nf_conntrack_man``: the address and port a command announced."""

    l3num: int
    addr: bytes
    port: int = 0
    #: where the numbers are in the payload (``numoff``/``numlen``): what NAT rewrites.
    matchoff: int = 0
    matchlen: int = 0


def _before(a: int, b: int) -> bool:
    return ((a - b) & 0xFFFFFFFF) >= 0x80000000


def _try_number(data: bytes, count: int, sep: int, term: int) -> tuple[int, list[int]]:
    """``try_number``: ``count`` decimal numbers separated by ``sep`` and ended by
    ``term`` (or anything when ``term`` is 0); (length consumed, numbers) or (0, _)."""
    arr = [0] * count
    i = 0
    for n, c in enumerate(data):
        if i >= count:
            break
        if 0x30 <= c <= 0x39:
            arr[i] = (arr[i] * 10 + c - 0x30) & 0xFFFFFFFF
        elif c == sep:
            i += 1
        else:
            if (c == term or not term) and i == count - 1:
                return n, arr
            return 0, arr
    return 0, arr


def _try_rfc959(data: bytes, cmd: FtpCmd, term: int) -> int:
    n, a = _try_number(data, 6, 0x2C, term)
    if n == 0:
        return 0
    cmd.addr = (((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]) & 0xFFFFFFFF).to_bytes(
        4, "big")
    cmd.port = ((a[4] << 8) | a[5]) & 0xFFFF
    return n


def _get_port(data: bytes, start: int, delim: int, cmd: FtpCmd) -> int:
    """``get_port``: digits up to ``delim``; a zero port fails."""
    port = 0
    for i in range(start, len(data)):
        c = data[i]
        if c == delim:
            if port == 0:
                return 0
            cmd.port = port
            return i + 1
        if 0x30 <= c <= 0x39:
            port = (port * 10 + c - 0x30) & 0xFFFF
        else:
            return 0
    return 0


def _delim_ok(d: int) -> bool:
    return not (0x30 <= d <= 0x39) and 33 <= d <= 126


def _in6_pton(data: bytes, delim: int) -> tuple[int, bytes]:
    """``in6_pton`` up to ``delim``: (length, address) or (0, b"")."""
    end = data.find(bytes([delim]))
    if end <= 0:
        return 0, b""
    text = data[:end]
    if any(c not in b"0123456789abcdefABCDEF:." for c in text):
        return 0, b""
    try:
        return end, ipaddress.IPv6Address(text.decode()).packed
    except ValueError:
        return 0, b""


def _try_eprt(data: bytes, cmd: FtpCmd, term: int) -> int:
    if len(data) <= 3:
        return 0
    d = data[0]
    if not _delim_ok(d) or data[2] != d:
        return 0
    if (cmd.l3num == NFPROTO_IPV4 and data[1] != 0x31) or \
            (cmd.l3num == NFPROTO_IPV6 and data[1] != 0x32):
        return 0
    if data[1] == 0x31:
        n, a = _try_number(data[3:], 4, 0x2E, d)
        if n:
            cmd.addr = (((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3])
                        & 0xFFFFFFFF).to_bytes(4, "big")
    else:
        n, addr = _in6_pton(data[3:], d)
        if n:
            cmd.addr = addr
    if n == 0:
        return 0
    return _get_port(data, 3 + n + 1, d, cmd)


def _try_rfc1123(data: bytes, cmd: FtpCmd, term: int) -> tuple[int, int]:
    """PASV reply: scan for the first digit, then RFC 959 numbers; (skipped, length)."""
    for i, c in enumerate(data):
        if 0x30 <= c <= 0x39:
            return i, _try_rfc959(data[i:], cmd, 0)
    return 0, 0


def _try_epsv(data: bytes, cmd: FtpCmd, term: int) -> int:
    if len(data) <= 3:
        return 0
    d = data[0]
    if not _delim_ok(d) or data[1] != d or data[2] != d:
        return 0
    return _get_port(data, 3, d, cmd)


#: ``search[dir]``: (pattern, skip, term, type)
_SEARCH = (
    ((b"PORT", 0x20, 0x0D, NF_CT_FTP_PORT), (b"EPRT", 0x20, 0x0D, NF_CT_FTP_EPRT)),
    ((b"227 ", 0, 0, NF_CT_FTP_PASV), (b"229 ", 0x28, 0x29, NF_CT_FTP_EPSV)),
)


def find_pattern(data: bytes, pattern: bytes, skip: int, term: int, ftype: int,
                 cmd: FtpCmd) -> int:
    """``find_pattern``: 1 found (``cmd`` filled), 0 no match, -1 partial match."""
    dlen, plen = len(data), len(pattern)
    if dlen <= plen:
        return -1 if data.lower() == pattern[:dlen].lower() else 0
    if data[:plen].lower() != pattern.lower():
        return 0
    i = plen
    if skip:
        while data[i] != skip:
            if i == dlen - 1:
                return -1
            i += 1
        i += 1
    rest = data[i:]
    if ftype == NF_CT_FTP_PORT:
        n = _try_rfc959(rest, cmd, term)
    elif ftype == NF_CT_FTP_EPRT:
        n = _try_eprt(rest, cmd, term)
    elif ftype == NF_CT_FTP_PASV:
        skipped, n = _try_rfc1123(rest, cmd, term)
        i += skipped
    else:
        n = _try_epsv(rest, cmd, term)
    cmd.matchoff, cmd.matchlen = i, n
    return 1 if n else -1


def _update_nl_seq(info: FtpMaster, nl_seq: int, d: int) -> None:
    """``update_nl_seq``: remember at most two, replacing the oldest by a newer one."""
    seqs = info.seq_aft_nl[d]
    num = info.seq_aft_nl_num[d]
    if nl_seq in seqs[:num]:
        return
    if num < NUM_SEQ_TO_REMEMBER:
        seqs[num] = nl_seq
        info.seq_aft_nl_num[d] = num + 1
        return
    oldest = 0 if _before(seqs[0], seqs[1]) else 1
    if _before(seqs[oldest], nl_seq):
        seqs[oldest] = nl_seq


def ftp_help(pkt: "Packet", protoff: int, ct: "NfConn", ctinfo: int) -> int:
    """``help()`` of nf_conntrack_ftp.c (see the module docstring)."""
    from netstack.netfilter.conntrack import (IP_CT_ESTABLISHED, IP_CT_ESTABLISHED_REPLY,
                                              IPS_NAT_MASK, ctinfo2dir)
    from netstack.netfilter.conntrack_expect import (NF_CT_EXPECT_CLASS_DEFAULT,
                                                     nf_ct_expect_init, nf_ct_expect_related)
    from netstack.netfilter.conntrack_tuple import IPPROTO_TCP
    if ctinfo not in (IP_CT_ESTABLISHED, IP_CT_ESTABLISHED_REPLY):
        return NF_ACCEPT
    buf = pkt.buf
    end = pkt.tail
    if end - protoff < 20:
        return NF_ACCEPT
    dataoff = protoff + ((buf[protoff + 12] >> 4) << 2)
    if dataoff >= end:
        return NF_ACCEPT
    data = bytes(buf[dataoff:end])
    d = ctinfo2dir(ctinfo)
    info: FtpMaster = ct.help.data
    th_seq = int.from_bytes(buf[protoff + 4:protoff + 8], "big")
    ends_in_nl = data[-1] == 0x0A
    seq = (th_seq + len(data)) & 0xFFFFFFFF
    if th_seq not in info.seq_aft_nl[d][:info.seq_aft_nl_num[d]]:
        if info.flags[d] & NF_CT_FTP_SEQ_PICKUP:
            info.flags[d] ^= NF_CT_FTP_SEQ_PICKUP
        else:
            if ends_in_nl:
                _update_nl_seq(info, seq, d)
            return NF_ACCEPT
    cmd = FtpCmd(ct.l3num, ct.tuplehash[d].src)
    found = 0
    ftype = NF_CT_FTP_PORT
    for pattern, skip, term, ftype in _SEARCH[d]:
        found = find_pattern(data, pattern, skip, term, ftype, cmd)
        if found:
            break
    if found == -1:
        return NF_DROP  # "partial matching of `%s'"
    if found == 0:
        if ends_in_nl:
            _update_nl_seq(info, seq, d)
        return NF_ACCEPT
    ret = NF_ACCEPT
    if cmd.addr != ct.tuplehash[d].src:
        pass  # not loose: an address other than the sender's own opens nothing
    else:
        daddr = ct.tuplehash[1 - d].dst
        exp = nf_ct_expect_init(ct, NF_CT_EXPECT_CLASS_DEFAULT, cmd.l3num,
                                ct.tuplehash[1 - d].src, daddr, IPPROTO_TCP, None, cmd.port)
        if ct.status & IPS_NAT_MASK:
            ret = nf_nat_ftp(pkt, ctinfo, ftype, protoff, cmd.matchoff, cmd.matchlen, exp)
        elif nf_ct_expect_related(exp) != 0:
            ret = NF_DROP  # "cannot add expectation"
    if ends_in_nl:
        _update_nl_seq(info, seq, d)
    return ret


def _fmt_cmd(l3num: int, ftype: int, addr: bytes, port: int) -> bytes:
    """``nf_nat_ftp_fmt_cmd``."""
    if ftype in (NF_CT_FTP_PORT, NF_CT_FTP_PASV):
        return (",".join(str(b) for b in addr[:4]) + f",{port >> 8},{port & 0xFF}").encode()
    if ftype == NF_CT_FTP_EPRT:
        if l3num == NFPROTO_IPV4:
            return f"|1|{ipaddress.IPv4Address(addr)}|{port}|".encode()
        return f"|2|{ipaddress.IPv6Address(addr)}|{port}|".encode()
    return f"|||{port}|".encode()


def nf_nat_ftp(pkt: "Packet", ctinfo: int, ftype: int, protoff: int, matchoff: int,
               matchlen: int, exp: "Expectation") -> int:
    """``nf_nat_ftp`` (net/netfilter/nf_nat_ftp.c): the data connection will come to
    wherever this packet goes (the master's other-direction destination, i.e. the NAT
    address); the expectation follows the master's NAT and keeps the announced port when
    free; the command in the payload is rewritten with that address and port, and the
    size change is recorded for sequence adjustment."""
    from netstack.netfilter.conntrack import ctinfo2dir
    from netstack.netfilter.conntrack_expect import nf_ct_unlink_expect
    from netstack.netfilter.seqadj import (nf_nat_exp_find_port, nf_nat_follow_master,
                                           nf_nat_mangle_tcp_packet)
    d = ctinfo2dir(ctinfo)
    ct = exp.master
    newaddr = ct.tuplehash[1 - d].dst
    exp.saved_proto = exp.tuple.dport
    exp.dir = 1 - d
    exp.expectfn = nf_nat_follow_master
    port = nf_nat_exp_find_port(exp, exp.saved_proto)
    if port == 0:
        return NF_DROP  # "all ports in use"
    rep = _fmt_cmd(ct.l3num, ftype, newaddr, port)
    if not nf_nat_mangle_tcp_packet(pkt, ct, ctinfo, protoff, matchoff, matchlen, rep):
        from netstack.netfilter.conntrack import ct_net
        nf_ct_unlink_expect(ct_net(ct.net), exp)  # "cannot mangle packet"
        return NF_DROP
    return NF_ACCEPT
