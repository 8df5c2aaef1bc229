"""IPv6 header and extension-header chain (RFC 8200, RFC 4302 for AH).

Validation follows net/ipv6/ip6_input.c ``ip6_rcv_core``: fewer than 40 bytes
or ``version != 6`` → ``IP_INHDR``; ``payload_len + 40`` beyond the data →
``PKT_TOO_SMALL``.  The chain walk is ``ipv6_skip_exthdr``
(net/ipv6/exthdrs_core.c): hop-by-hop, routing and destination options are
``(hdrlen + 1) * 8`` bytes, AH is ``(hdrlen + 2) * 4``, a fragment header is 8
bytes and a *non-first* fragment stops the walk at the fragment header.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._view import Buffer, put16, u16, u32
from ._view import be16_field
from .constants import (
    IPPROTO_AH,
    IPPROTO_DSTOPTS,
    IPPROTO_FRAGMENT,
    IPPROTO_HOPOPTS,
    IPPROTO_NONE,
    IPPROTO_ROUTING,
    IPV6_EXT_HDRS,
)
from .errors import ParseError

__all__ = [
    "IPv6View",
    "ExtHeader",
    "ExtChain",
    "ipv6_skip_exthdr",
    "walk_ext_headers",
    "build_ipv6",
    "ext_hopopts",
    "ext_dstopts",
    "ext_routing",
    "ext_fragment",
    "ext_ah",
]

IPV6_HLEN = 40
_EXT_OR_NONE = IPV6_EXT_HDRS | {IPPROTO_NONE}


@dataclass(frozen=True, slots=True)
class ExtHeader:
    """One extension header as it appears on the wire, minus ``next header``.

    ``body`` is everything after the first two bytes (next header and length)
    for HBH/routing/dstopts/AH, and the 6 bytes after next header/reserved for
    a fragment header.  ``build`` chooses the length field from ``body``.
    """

    type: int
    body: bytes

    def build(self, next_header: int) -> bytes:
        n = len(self.body) + 2
        if self.type == IPPROTO_FRAGMENT:
            if len(self.body) != 6:
                raise ValueError("fragment header body is 6 bytes")
            return bytes((next_header, 0)) + self.body
        if self.type == IPPROTO_AH:
            if n % 4 or n < 12:
                raise ValueError("AH length must be a multiple of 4, at least 12")
            return bytes((next_header, n // 4 - 2)) + self.body
        if n % 8:
            raise ValueError("extension header length must be a multiple of 8")
        return bytes((next_header, n // 8 - 1)) + self.body

    # -- helpers for typed access --------------------------------------
    @property
    def frag_offset(self) -> int:
        """Fragment offset in bytes (fragment header only)."""
        return u16(self.body, 0) & 0xFFF8

    @property
    def more_fragments(self) -> bool:
        return bool(self.body[1] & 1)

    @property
    def identification(self) -> int:
        return u32(self.body, 2)


def ext_hopopts(options: bytes = b"") -> ExtHeader:
    """Hop-by-hop header; ``options`` is padded with PadN/Pad1 to 8n-2 bytes."""
    return ExtHeader(IPPROTO_HOPOPTS, _pad_tlv(options))


def ext_dstopts(options: bytes = b"") -> ExtHeader:
    """Destination options header, padded like :func:`ext_hopopts`."""
    return ExtHeader(IPPROTO_DSTOPTS, _pad_tlv(options))


def _pad_tlv(options: bytes) -> bytes:
    pad = -(len(options) + 2) % 8
    if pad == 1:
        return options + b"\x00"
    if pad:
        return options + bytes((1, pad - 2)) + bytes(pad - 2)
    return options


def ext_routing(rtype: int, segments_left: int, data: bytes) -> ExtHeader:
    """Routing header; ``data`` is the type-specific part (4 + 8n bytes)."""
    return ExtHeader(IPPROTO_ROUTING, bytes((rtype & 0xFF, segments_left & 0xFF)) + data)


def ext_fragment(offset: int, more: bool, ident: int) -> ExtHeader:
    """Fragment header; ``offset`` in bytes (multiple of 8)."""
    if offset % 8 or not 0 <= offset < 65536:
        raise ValueError("fragment offset must be a multiple of 8 below 65536")
    return ExtHeader(IPPROTO_FRAGMENT, (offset | int(more)).to_bytes(2, "big") + (ident & 0xFFFFFFFF).to_bytes(4, "big"))


def ext_ah(spi: int, seq: int, icv: bytes = bytes(12)) -> ExtHeader:
    """Authentication header (RFC 4302); reserved is zero."""
    return ExtHeader(IPPROTO_AH, b"\x00\x00" + spi.to_bytes(4, "big") + seq.to_bytes(4, "big") + icv)


def ipv6_skip_exthdr(buf: Buffer, start: int, nexthdr: int, end: int | None = None) -> tuple[int, int, int]:
    """``ipv6_skip_exthdr``: returns ``(nexthdr, offset, frag_off)``.

    ``frag_off`` is the raw fragment-offset field of the last fragment header
    seen (0 if none).  For a non-first fragment the walk stops *at* the
    fragment header, so ``nexthdr`` is 44, as in the kernel.  ``No Next
    Header`` (59) is returned with the offset where it was found.  A header
    running past ``end`` raises ``IPV6_BAD_EXTHDR`` (the kernel's -1).
    """
    if end is None:
        end = len(buf)
    frag_off = 0
    while nexthdr in _EXT_OR_NONE:
        if nexthdr == IPPROTO_NONE:
            return nexthdr, start, frag_off
        if end - start < 2:
            raise ParseError("IPV6_BAD_EXTHDR", f"extension header {nexthdr} truncated")
        if nexthdr == IPPROTO_FRAGMENT:
            if end - start < 4:
                raise ParseError("IPV6_BAD_EXTHDR", "fragment header truncated")
            frag_off = u16(buf, start + 2)
            if frag_off & ~0x7:
                break
            hdrlen = 8
        elif nexthdr == IPPROTO_AH:
            hdrlen = (buf[start + 1] + 2) << 2
        else:
            hdrlen = (buf[start + 1] + 1) << 3
        nexthdr = buf[start]
        start += hdrlen
    if start > end:
        raise ParseError("IPV6_BAD_EXTHDR", "extension header runs past the packet")
    return nexthdr, start, frag_off


@dataclass(slots=True)
class ExtChain:
    """Result of :func:`walk_ext_headers`."""

    headers: list[tuple[ExtHeader, int]] = field(default_factory=list)  # (header, offset)
    upper_proto: int = IPPROTO_NONE
    upper_off: int = 0
    fragment: ExtHeader | None = None


def walk_ext_headers(buf: Buffer, start: int, nexthdr: int, end: int | None = None) -> ExtChain:
    """Decode every extension header up to the upper-layer protocol.

    Unlike :func:`ipv6_skip_exthdr` this keeps each header and walks past a
    non-first fragment header too (its upper protocol is reported, its
    payload is not an upper-layer header); each header must fit in
    ``end`` (``IPV6_BAD_EXTHDR`` otherwise).
    """
    if end is None:
        end = len(buf)
    chain = ExtChain()
    while nexthdr in IPV6_EXT_HDRS:
        if end - start < 8:
            raise ParseError("IPV6_BAD_EXTHDR", f"extension header {nexthdr} truncated")
        if nexthdr == IPPROTO_FRAGMENT:
            hdrlen = 8
        elif nexthdr == IPPROTO_AH:
            hdrlen = (buf[start + 1] + 2) << 2
        else:
            hdrlen = (buf[start + 1] + 1) << 3
        if end - start < hdrlen:
            raise ParseError("IPV6_BAD_EXTHDR", f"extension header {nexthdr} length {hdrlen} past the end")
        h = ExtHeader(nexthdr, bytes(buf[start + 2 : start + hdrlen]))
        chain.headers.append((h, start))
        if nexthdr == IPPROTO_FRAGMENT:
            chain.fragment = h
        nexthdr = buf[start]
        start += hdrlen
    chain.upper_proto = nexthdr
    chain.upper_off = start
    return chain


class IPv6View:
    """Zero-copy IPv6 fixed-header view."""

    __slots__ = ("buf", "off")
    HLEN = IPV6_HLEN

    def __init__(self, buf: Buffer, off: int = 0) -> None:
        self.buf = buf
        self.off = off

    @classmethod
    def parse(cls, buf: Buffer, off: int = 0) -> "IPv6View":
        avail = len(buf) - off
        if off < 0 or avail < IPV6_HLEN:
            raise ParseError("IP_INHDR", "IPv6 header shorter than 40 bytes")
        if buf[off] >> 4 != 6:
            raise ParseError("IP_INHDR", f"version {buf[off] >> 4}")
        plen = u16(buf, off + 4)
        if plen + IPV6_HLEN > avail:
            raise ParseError("PKT_TOO_SMALL", f"payload_len {plen} > {avail - IPV6_HLEN}")
        return cls(buf, off)

    @property
    def version(self) -> int:
        return self.buf[self.off] >> 4

    @property
    def traffic_class(self) -> int:
        return (u16(self.buf, self.off) >> 4) & 0xFF

    @traffic_class.setter
    def traffic_class(self, v: int) -> None:
        w = u16(self.buf, self.off)
        put16(self.buf, self.off, (w & 0xF00F) | ((v & 0xFF) << 4))

    @property
    def flow_label(self) -> int:
        return u32(self.buf, self.off) & 0xFFFFF

    @flow_label.setter
    def flow_label(self, v: int) -> None:
        w = u32(self.buf, self.off)
        self.buf[self.off : self.off + 4] = ((w & 0xFFF00000) | (v & 0xFFFFF)).to_bytes(4, "big")

    payload_length = be16_field(4)

    @property
    def next_header(self) -> int:
        return self.buf[self.off + 6]

    @next_header.setter
    def next_header(self, v: int) -> None:
        self.buf[self.off + 6] = v & 0xFF

    @property
    def hop_limit(self) -> int:
        return self.buf[self.off + 7]

    @hop_limit.setter
    def hop_limit(self, v: int) -> None:
        self.buf[self.off + 7] = v & 0xFF

    @property
    def saddr(self) -> bytes:
        return bytes(self.buf[self.off + 8 : self.off + 24])

    @saddr.setter
    def saddr(self, v: bytes) -> None:
        if len(v) != 16:
            raise ValueError("IPv6 address must be 16 bytes")
        self.buf[self.off + 8 : self.off + 24] = v

    @property
    def daddr(self) -> bytes:
        return bytes(self.buf[self.off + 24 : self.off + 40])

    @daddr.setter
    def daddr(self, v: bytes) -> None:
        if len(v) != 16:
            raise ValueError("IPv6 address must be 16 bytes")
        self.buf[self.off + 24 : self.off + 40] = v

    @property
    def payload_off(self) -> int:
        return self.off + IPV6_HLEN

    @property
    def end(self) -> int:
        return self.off + IPV6_HLEN + self.payload_length

    def ext_chain(self) -> ExtChain:
        return walk_ext_headers(self.buf, self.payload_off, self.next_header, self.end)

    def skip_exthdr(self) -> tuple[int, int, int]:
        return ipv6_skip_exthdr(self.buf, self.payload_off, self.next_header, self.end)


def build_ipv6(
    src: bytes,
    dst: bytes,
    next_header: int,
    payload: bytes = b"",
    *,
    traffic_class: int = 0,
    flow_label: int = 0,
    hop_limit: int = 64,
    ext_headers: list[ExtHeader] | tuple[ExtHeader, ...] = (),
    payload_length: int | None = None,
) -> bytes:
    """Build an IPv6 packet; ``next_header`` is the upper-layer protocol and
    ``ext_headers`` are chained in order in front of ``payload``."""
    if len(src) != 16 or len(dst) != 16:
        raise ValueError("IPv6 addresses must be 16 bytes")
    exts = b""
    nh = next_header
    for h in reversed(list(ext_headers)):
        exts = h.build(nh) + exts
        nh = h.type
    body = exts + bytes(payload)
    plen = len(body) if payload_length is None else payload_length
    if plen > 0xFFFF:
        raise ValueError("IPv6 payload longer than 65535 bytes (jumbograms not supported)")
    w0 = (6 << 28) | ((traffic_class & 0xFF) << 20) | (flow_label & 0xFFFFF)
    return w0.to_bytes(4, "big") + plen.to_bytes(2, "big") + bytes((nh, hop_limit & 0xFF)) + bytes(src) + bytes(dst) + body
