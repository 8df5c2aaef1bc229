"""UDP header codec (RFC 768, net/ipv4/udp.c, net/ipv6/udp.c).

``__udp4_lib_rcv`` drops a datagram whose header does not fit or whose
``len`` is below 8 or beyond the data (``PKT_TOO_SMALL``, "short_packet").
A computed checksum of 0 is sent as 0xffff (``CSUM_MANGLED_0``); a received
0 means "no checksum", allowed over IPv4 only.
"""

from __future__ import annotations

from ._view import Buffer, need_to, u16
from ._view import be16_field
from .checksum import csum_ipv6_magic, csum_partial, csum_tcpudp_magic
from .constants import IPPROTO_UDP
from .errors import ParseError

__all__ = ["UdpView", "build_udp", "udp_checksum", "CSUM_MANGLED_0"]

CSUM_MANGLED_0 = 0xFFFF


def udp_checksum(src: bytes, dst: bytes, segment: Buffer, proto: int = IPPROTO_UDP) -> int:
    """Checksum of a UDP segment (check field included as stored).

    Over a segment whose check field is 0 this is the value to store (before
    the 0 → 0xffff mangling); over a received segment, 0 means valid.
    """
    s = csum_partial(segment)
    if len(src) == 4:
        return csum_tcpudp_magic(src, dst, len(segment), proto, s)
    return csum_ipv6_magic(src, dst, len(segment), proto, s)


class UdpView:
    """Zero-copy UDP header view."""

    __slots__ = ("buf", "off")
    HLEN = 8

    def __init__(self, buf: Buffer, off: int = 0) -> None:
        self.buf = buf
        self.off = off

    @classmethod
    def parse(cls, buf: Buffer, off: int = 0, end: int | None = None) -> "UdpView":
        """``end`` is the end of the IP payload (defaults to the buffer end)."""
        e = len(buf) if end is None else min(end, len(buf))
        need_to(e, off, 8, "PKT_TOO_SMALL", "udp header")
        ulen = u16(buf, off + 4)
        if ulen < 8 or ulen > e - off:
            raise ParseError("PKT_TOO_SMALL", f"udp length {ulen} with {e - off} bytes")
        return cls(buf, off)

    sport = be16_field(0)
    dport = be16_field(2)
    length = be16_field(4)
    check = be16_field(6)

    @property
    def payload_off(self) -> int:
        return self.off + 8

    @property
    def end(self) -> int:
        return self.off + self.length

    def payload(self) -> memoryview:
        return memoryview(self.buf)[self.off + 8 : self.off + self.length]

    def checksum_ok(self, src: bytes, dst: bytes) -> bool:
        """Valid when 0 over IPv4 (no checksum) or the sum verifies."""
        if self.check == 0:
            return len(src) == 4
        return udp_checksum(src, dst, self.buf[self.off : self.end]) == 0

    def update_checksum(self, src: bytes, dst: bytes) -> int:
        self.check = 0
        c = udp_checksum(src, dst, self.buf[self.off : self.end]) or CSUM_MANGLED_0
        self.check = c
        return c


def build_udp(
    sport: int,
    dport: int,
    payload: bytes = b"",
    *,
    src: bytes | None = None,
    dst: bytes | None = None,
    length: int | None = None,
    check: int | None = None,
) -> bytes:
    """Build a UDP datagram.  With ``src``/``dst`` (4 or 16 bytes) the checksum
    is computed; without them (and no explicit ``check``) it is 0."""
    ulen = 8 + len(payload) if length is None else length
    seg = bytearray(
        (sport & 0xFFFF).to_bytes(2, "big") + (dport & 0xFFFF).to_bytes(2, "big") + (ulen & 0xFFFF).to_bytes(2, "big") + b"\x00\x00" + bytes(payload)
    )
    if check is None:
        if src is not None and dst is not None:
            if len(src) != len(dst) or len(src) not in (4, 16):
                raise ValueError("addresses must both be 4 or 16 bytes")
            check = udp_checksum(src, dst, seg) or CSUM_MANGLED_0
        else:
            check = 0
    seg[6] = check >> 8
    seg[7] = check & 0xFF
    return bytes(seg)
