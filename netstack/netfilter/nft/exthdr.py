"""Extension headers: ``tcp option …`` (nftables src/tcpopt.c, kernel
net/netfilter/nft_exthdr.c ``nft_exthdr_tcp_eval`` / ``_set_eval`` / ``_strip_eval``) and
IPv6 extension headers ``exthdr hbh exists``, ``frag more-fragments 1`` … (src/exthdr.c,
``nft_exthdr_ipv6_eval`` with ``ipv6_find_hdr``).

Why a module of its own: these loads do not address a fixed header offset but search
the packet (the TCP option list, the IPv6 header chain) for the option or header first;
``present`` turns the search into an existence flag.  nft 1.0.6 puts no protocol
dependency in front of a TCP option (measured: ``[ exthdr load tcpopt … ]`` alone), so a
non-TCP packet simply does not match; IPv6 headers get the network-protocol dependency
of the family (``meta nfproto ipv6`` in inet)."""
from __future__ import annotations

import struct
from dataclasses import dataclass

from netstack.netfilter.nft import types as T
from netstack.netfilter.nft.vm import (NFT_BREAK, PktInfo, Regs, VmExpr, _get, _put,
                                       reg_name)

NFT_EXTHDR_OP_IPV6, NFT_EXTHDR_OP_TCPOPT, NFT_EXTHDR_OP_IPV4 = 0, 1, 2
OP_NAMES = {NFT_EXTHDR_OP_IPV6: "ipv6", NFT_EXTHDR_OP_TCPOPT: "tcpopt",
            NFT_EXTHDR_OP_IPV4: "ipv4"}

_SRR_FIELDS = {"type": (0, 8), "length": (8, 8), "ptr": (16, 8), "addr": (24, 32)}
#: src/ipopt.c ipopt_protocols: the options nft can find (all fields integers)
IPV4_OPTS: dict[str, tuple[int, dict[str, tuple[int, int]]]] = {
    "lsrr": (131, _SRR_FIELDS), "rr": (7, _SRR_FIELDS), "ssrr": (137, _SRR_FIELDS),
    "ra": (148, {"type": (0, 8), "length": (8, 8), "value": (16, 16)}),
}


def ipv4_find_option(pkt, target: int) -> int | None:
    """``ipv4_find_option`` (nft_exthdr.c, with the 6.x offset fix): the options are
    compiled on a copy (``__ip_options_compile`` without an skb); the offset of the
    wanted option from the IPv4 header, or None (no options, malformed options, or not
    present; LSRR and SSRR are told apart by ``is_strictroute``)."""
    from netstack.ipv4.ip_input import ip_options_compile
    nh = pkt.network_header
    if nh < 0 or nh + 20 > pkt.tail:
        return None
    optlen = (pkt.buf[nh] & 0x0F) * 4 - 20
    if optlen <= 0 or nh + 20 + optlen > pkt.tail:
        return None
    copy = bytearray(pkt.buf[nh:nh + 20 + optlen])
    try:
        opt, _ = ip_options_compile(copy, 0, optlen)
    except Exception:                                  # malformed: -EBADMSG
        return None
    if opt is None:
        return None
    if target in (131, 137):
        if not opt.srr or opt.is_strictroute != (target == 137):
            return None
        return opt.srr
    if target == 7:
        return opt.rr or None
    if target == 148:
        return opt.router_alert or None
    return None

#: src/tcpopt.c tcpopt_protocols: option kind and fields (bit offset, bit length)
TCPOPT: dict[str, tuple[int, dict[str, tuple[int, int]]]] = {
    "eol": (0, {"kind": (0, 8)}),
    "nop": (1, {"kind": (0, 8)}),
    "maxseg": (2, {"kind": (0, 8), "length": (8, 8), "size": (16, 16)}),
    "window": (3, {"kind": (0, 8), "length": (8, 8), "count": (16, 8)}),
    "sack-perm": (4, {"kind": (0, 8), "length": (8, 8)}),
    "sack": (5, {"kind": (0, 8), "length": (8, 8), "left": (16, 32), "right": (48, 32)}),
    "sack0": (5, {"kind": (0, 8), "length": (8, 8), "left": (16, 32), "right": (48, 32)}),
    "sack1": (5, {"kind": (0, 8), "length": (8, 8), "left": (80, 32), "right": (112, 32)}),
    "sack2": (5, {"kind": (0, 8), "length": (8, 8), "left": (144, 32), "right": (176, 32)}),
    "sack3": (5, {"kind": (0, 8), "length": (8, 8), "left": (208, 32), "right": (240, 32)}),
    "timestamp": (8, {"kind": (0, 8), "length": (8, 8), "tsval": (16, 32),
                      "tsecr": (48, 32)}),
}
#: the name nft prints back for an option kind (``sack0`` lists as ``sack``)
TCPOPT_NAME = {2: "maxseg", 3: "window", 4: "sack-perm", 5: "sack", 8: "timestamp",
               0: "eol", 1: "nop"}

#: src/exthdr.c: IPv6 extension headers (protocol number, fields, field datatypes)
IPV6_HDRS: dict[str, tuple[int, dict[str, tuple[int, int, T.DataType]]]] = {
    "hbh": (0, {"nexthdr": (0, 8, T.INET_PROTO), "hdrlength": (8, 8, T.U8)}),
    "rt": (43, {"nexthdr": (0, 8, T.INET_PROTO), "hdrlength": (8, 8, T.U8),
                "type": (16, 8, T.U8), "seg-left": (24, 8, T.U8)}),
    "frag": (44, {"nexthdr": (0, 8, T.INET_PROTO), "reserved": (8, 8, T.U8),
                  "frag-off": (16, 13, T.U16), "reserved2": (29, 2, T.U8),
                  "more-fragments": (31, 1, T.U8), "id": (32, 32, T.U32)}),
    "dst": (60, {"nexthdr": (0, 8, T.INET_PROTO), "hdrlength": (8, 8, T.U8)}),
    "mh": (135, {"nexthdr": (0, 8, T.INET_PROTO), "hdrlength": (8, 8, T.U8),
                 "type": (16, 8, T.U8), "reserved": (24, 8, T.U8),
                 "checksum": (32, 16, T.U16)}),
}
IPV6_NAME = {v[0]: k for k, v in IPV6_HDRS.items()}

NFT_EXTHDR_F_PRESENT = 1
_IPV6_EXT_CHAIN = (0, 43, 44, 50, 51, 60, 135)


def ipv6_find_hdr(pkt, target: int) -> int | None:
    """``ipv6_find_hdr`` (net/ipv6/exthdrs_core.c) for the headers nft asks about: walk
    the chain from the fixed header; the offset of header ``target``, or None (not
    present, chain ended, truncated, or a non-first fragment hides what follows)."""
    nh = pkt.network_header
    buf = pkt.buf
    if nh < 0 or nh + 40 > pkt.tail or buf[nh] >> 4 != 6:
        return None
    nexthdr = buf[nh + 6]
    off = nh + 40
    while True:
        if nexthdr == target:
            return off
        if nexthdr not in _IPV6_EXT_CHAIN or nexthdr == 50:
            return None
        if off + 8 > pkt.tail:
            return None
        if nexthdr == 44:
            frag_off = struct.unpack_from(">H", buf, off + 2)[0] & 0xFFF8
            if frag_off:
                return None
            hlen = 8
        elif nexthdr == 51:
            hlen = (buf[off + 1] + 2) * 4
        else:
            hlen = (buf[off + 1] + 1) * 8
        nexthdr = buf[off]
        off += hlen


def tcp_option(info: PktInfo, kind: int) -> tuple[int, int, int] | None:
    """The TCP header start, the option's offset in the header and its length, or None
    (``nft_exthdr_tcp_eval``'s walk: kinds 0/1 and a zero length count one byte)."""
    pkt = info.pkt
    if not info.tprot_set or info.tprot != 6 or info.fragoff:
        return None
    th = info.thoff
    if th + 20 > pkt.tail:
        return None
    hl = (pkt.buf[th + 12] >> 4) * 4
    if hl < 20 or th + hl > pkt.tail:
        return None
    opt = pkt.buf
    i = 20
    while i < hl:
        k = opt[th + i]
        olen = 1 if k <= 1 or i + 1 >= hl or opt[th + i + 1] == 0 else opt[th + i + 1]
        if k == kind:
            if i + olen > hl:
                return None
            return th, i, olen
        i += olen
    return None


@dataclass
class ExthdrLoad(VmExpr):
    """``[ exthdr load tcpopt|ipv6 LENb @ TYPE + OFFSET [present] => reg N ]``."""

    op: int
    type: int
    offset: int
    length: int
    dreg: int
    present: bool = False

    def netlink(self) -> str:
        p = " present" if self.present else ""
        return (f"[ exthdr load {OP_NAMES[self.op]} {self.length}b @ {self.type} + "
                f"{self.offset}{p} => reg {reg_name(self.dreg)} ]")

    def eval(self, regs: Regs, info: PktInfo) -> None:
        # each op finds where the field starts (None: header/option absent); the
        # ``present`` flag and the not-found break are then the same for all three
        # (nft_exthdr_ipv4_eval, nft_exthdr_tcp_eval, nft_exthdr_ipv6_eval)
        pkt = info.pkt
        start: int | None
        if self.op == NFT_EXTHDR_OP_IPV4:
            if pkt.protocol != 0x0800:
                regs.code = NFT_BREAK
                return
            off = ipv4_find_option(pkt, self.type)
            start = None if off is None else pkt.network_header + off + self.offset
        elif self.op == NFT_EXTHDR_OP_TCPOPT:
            found = tcp_option(info, self.type)
            if found is None or self.length + self.offset > found[2]:
                start = None
            else:
                start = found[0] + found[1] + self.offset
        else:
            off = ipv6_find_hdr(pkt, self.type)
            start = None if off is None else off + self.offset
        if self.present:
            _put(regs, self.dreg, bytes([start is not None]))
            return
        if start is None or start + self.length > pkt.tail:
            regs.code = NFT_BREAK
            return
        _put(regs, self.dreg, bytes(pkt.buf[start:start + self.length]))


def _csum_replace(pkt, th: int, old: bytes, new: bytes) -> None:
    """``inet_proto_csum_replace2/4`` on the TCP checksum (RFC 1624 incremental)."""
    check = struct.unpack_from(">H", pkt.buf, th + 16)[0]
    s = (~check) & 0xFFFF
    for i in range(0, len(old), 2):
        o = int.from_bytes(old[i:i + 2], "big")
        n = int.from_bytes(new[i:i + 2], "big")
        s += ((~o) & 0xFFFF) + n
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    struct.pack_into(">H", pkt.buf, th + 16, (~s) & 0xFFFF)


@dataclass
class ExthdrWrite(VmExpr):
    """``nft_exthdr_tcp_set_eval``: overwrite a 2- or 4-byte option field with the
    register and fix the checksum; the MSS is only ever lowered (a larger value leaves
    the option alone)."""

    type: int
    offset: int
    length: int
    sreg: int

    def netlink(self) -> str:
        return (f"[ exthdr write tcpopt reg {reg_name(self.sreg)} => {self.length}b @ "
                f"{self.type} + {self.offset} ]")

    def eval(self, regs: Regs, info: PktInfo) -> None:
        found = tcp_option(info, self.type)
        if found is None:
            return
        th, i, olen = found
        if self.offset + self.length > olen:
            return
        pkt = info.pkt
        at = th + i + self.offset
        old = bytes(pkt.buf[at:at + self.length])
        new = _get(regs, self.sreg, self.length)
        if self.type == 2 and int.from_bytes(new, "big") >= int.from_bytes(old, "big"):
            return
        pkt.buf[at:at + self.length] = new
        _csum_replace(pkt, th, old, new)


@dataclass
class ExthdrReset(VmExpr):
    """``nft_exthdr_tcp_strip_eval``: the option's bytes become NOPs (checksum fixed)."""

    type: int

    def netlink(self) -> str:
        return f"[ exthdr reset tcpopt {self.type} ]"

    def eval(self, regs: Regs, info: PktInfo) -> None:
        found = tcp_option(info, self.type)
        if found is None:
            return
        th, i, olen = found
        pkt = info.pkt
        at = th + i
        old = bytes(pkt.buf[at:at + olen])
        new = b"\x01" * olen
        pkt.buf[at:at + olen] = new
        # checksum over 16-bit words: align the replaced span to the header's words
        lo = (at - th) & ~1
        hi = (at - th + olen + 1) & ~1
        before = bytearray(pkt.buf[th + lo:th + hi])
        before[at - th - lo:at - th - lo + olen] = old
        _csum_replace(pkt, th, bytes(before), bytes(pkt.buf[th + lo:th + hi]))
