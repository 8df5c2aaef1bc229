"""SCTP common header and chunk walk (RFC 9260 §3, net/sctp/input.c).

The 12-byte common header is followed by chunks ``type:8 flags:8 length:16``
whose value is padded to 4 bytes; ``length`` counts the 4-byte chunk header
but not the padding.  A chunk shorter than 4 or running past the packet is
discarded by ``sctp_inq_pop``; here that is ``HDR_TRUNC``.  The checksum is
CRC32c stored little-endian (see :mod:`netstack.packet.crc32c`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ._view import Buffer, need_to, u16, u32
from ._view import be16_field
from .crc32c import sctp_checksum, sctp_csum_field
from .errors import ParseError

__all__ = ["SctpView", "SctpChunk", "build_sctp", "SCTP_CID_DATA", "SCTP_CID_INIT", "SCTP_CID_ABORT"]

SCTP_CID_DATA = 0
SCTP_CID_INIT = 1
SCTP_CID_INIT_ACK = 2
SCTP_CID_SACK = 3
SCTP_CID_HEARTBEAT = 4
SCTP_CID_ABORT = 6
SCTP_CID_SHUTDOWN = 7
SCTP_CID_COOKIE_ECHO = 10


@dataclass(frozen=True, slots=True)
class SctpChunk:
    """One chunk: ``value`` excludes the 4-byte header and the padding."""

    type: int
    flags: int = 0
    value: bytes = b""

    def build(self) -> bytes:
        n = 4 + len(self.value)
        if n > 0xFFFF:
            raise ValueError("SCTP chunk too long")
        return bytes((self.type & 0xFF, self.flags & 0xFF)) + n.to_bytes(2, "big") + self.value + bytes(-n % 4)


class SctpView:
    """Zero-copy SCTP common-header view; ``end`` bounds the packet."""

    __slots__ = ("buf", "off", "end")
    HLEN = 12

    def __init__(self, buf: Buffer, off: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.off = off
        self.end = len(buf) if end is None else end

    @classmethod
    def parse(cls, buf: Buffer, off: int = 0, end: int | None = None, *, check_chunks: bool = True) -> "SctpView":
        e = len(buf) if end is None else min(end, len(buf))
        need_to(e, off, 12, "PKT_TOO_SMALL", "sctp common header")
        v = cls(buf, off, e)
        if check_chunks:
            for _ in v.chunk_offsets():
                pass
        return v

    sport = be16_field(0)
    dport = be16_field(2)

    @property
    def vtag(self) -> int:
        return u32(self.buf, self.off + 4)

    @property
    def checksum(self) -> int:
        """The CRC value (the wire field read little-endian)."""
        return int.from_bytes(self.buf[self.off + 8 : self.off + 12], "little")

    def chunk_offsets(self) -> Iterator[tuple[int, int]]:
        """Yield ``(offset, length)`` of every chunk; ParseError on a bad length."""
        pos, e = self.off + 12, self.end
        buf = self.buf
        while pos < e:
            if e - pos < 4:
                raise ParseError("HDR_TRUNC", "partial SCTP chunk header")
            clen = u16(buf, pos + 2)
            if clen < 4 or clen > e - pos:
                raise ParseError("HDR_TRUNC", f"SCTP chunk length {clen}")
            yield pos, clen
            pos += (clen + 3) & ~3

    def chunks(self) -> list[SctpChunk]:
        return [
            SctpChunk(self.buf[o], self.buf[o + 1], bytes(self.buf[o + 4 : o + n])) for o, n in self.chunk_offsets()
        ]

    def checksum_ok(self) -> bool:
        return self.checksum == sctp_checksum(self.buf, self.off, self.end)

    def update_checksum(self) -> int:
        crc = sctp_checksum(self.buf, self.off, self.end)
        self.buf[self.off + 8 : self.off + 12] = sctp_csum_field(crc)
        return crc


def build_sctp(sport: int, dport: int, vtag: int, chunks: list[SctpChunk], *, checksum: int | None = None) -> bytes:
    """Build an SCTP packet with its CRC32c (or an explicit ``checksum``)."""
    pkt = bytearray(
        (sport & 0xFFFF).to_bytes(2, "big") + (dport & 0xFFFF).to_bytes(2, "big") + (vtag & 0xFFFFFFFF).to_bytes(4, "big") + bytes(4)
    )
    for c in chunks:
        pkt += c.build()
    crc = sctp_checksum(pkt) if checksum is None else checksum
    pkt[8:12] = sctp_csum_field(crc)
    return bytes(pkt)
