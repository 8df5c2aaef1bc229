"""ICMPv4 codec (RFC 792, include/uapi/linux/icmp.h, net/ipv4/icmp.c).

``icmp_rcv`` pulls the 8-byte header and validates the checksum over the
whole message (``ICMP_CSUM`` drop reason); this module exposes both.
"""

from __future__ import annotations

from ._view import Buffer, need_to, u16
from ._view import be16_field
from .checksum import csum_partial, csum_fold, csum_replace2
from .constants import (
    ICMP_ADDRESS,
    ICMP_ADDRESSREPLY,
    ICMP_ECHO,
    ICMP_ECHOREPLY,
    ICMP_INFO_REPLY,
    ICMP_INFO_REQUEST,
    ICMP_TIMESTAMP,
    ICMP_TIMESTAMPREPLY,
)

__all__ = ["IcmpView", "build_icmp", "build_icmp_echo", "icmp_has_id"]

_HAS_ID = frozenset(
    {ICMP_ECHO, ICMP_ECHOREPLY, ICMP_TIMESTAMP, ICMP_TIMESTAMPREPLY, ICMP_INFO_REQUEST, ICMP_INFO_REPLY, ICMP_ADDRESS, ICMP_ADDRESSREPLY}
)


def icmp_has_id(icmp_type: int) -> bool:
    """Types whose bytes 4..5 are an identifier (net/core/flow_dissector.c ``icmp_has_id``)."""
    return icmp_type in _HAS_ID


class IcmpView:
    """Zero-copy ICMP header view; ``end`` bounds the message for checksums."""

    __slots__ = ("buf", "off", "end")
    HLEN = 8

    def __init__(self, buf: Buffer, off: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.off = off
        self.end = len(buf) if end is None else end

    @classmethod
    def parse(cls, buf: Buffer, off: int = 0, end: int | None = None) -> "IcmpView":
        e = len(buf) if end is None else min(end, len(buf))
        need_to(e, off, 8, "PKT_TOO_SMALL", "icmp header")
        return cls(buf, off, e)

    @property
    def type(self) -> int:
        return self.buf[self.off]

    @type.setter
    def type(self, v: int) -> None:
        o = self.off
        old = u16(self.buf, o)
        self.buf[o] = v & 0xFF
        self.checksum = csum_replace2(self.checksum, old, u16(self.buf, o))

    @property
    def code(self) -> int:
        return self.buf[self.off + 1]

    checksum = be16_field(2)

    @property
    def rest(self) -> bytes:
        """Bytes 4..7 (``un``: echo id/seq, gateway, mtu, pointer...)."""
        return bytes(self.buf[self.off + 4 : self.off + 8])

    @property
    def id(self) -> int:
        return u16(self.buf, self.off + 4)

    @property
    def sequence(self) -> int:
        return u16(self.buf, self.off + 6)

    @property
    def gateway(self) -> bytes:
        return self.rest

    @property
    def mtu(self) -> int:
        """Next-hop MTU of a fragmentation-needed message (RFC 1191)."""
        return u16(self.buf, self.off + 6)

    @property
    def payload_off(self) -> int:
        return self.off + 8

    def payload(self) -> memoryview:
        return memoryview(self.buf)[self.off + 8 : self.end]

    def checksum_ok(self) -> bool:
        return csum_fold(csum_partial(self.buf[self.off : self.end])) == 0

    def update_checksum(self) -> int:
        self.checksum = 0
        c = csum_fold(csum_partial(self.buf[self.off : self.end]))
        self.checksum = c
        return c


def build_icmp(icmp_type: int, code: int = 0, rest: bytes = bytes(4), payload: bytes = b"", *, checksum: int | None = None) -> bytes:
    """Build an ICMP message with its checksum (``ip_compute_csum``)."""
    if len(rest) != 4:
        raise ValueError("ICMP rest-of-header is 4 bytes")
    msg = bytearray(bytes((icmp_type & 0xFF, code & 0xFF, 0, 0)) + bytes(rest) + bytes(payload))
    c = csum_fold(csum_partial(msg)) if checksum is None else checksum
    msg[2] = c >> 8
    msg[3] = c & 0xFF
    return bytes(msg)


def build_icmp_echo(ident: int, seq: int, payload: bytes = b"", *, reply: bool = False) -> bytes:
    """Echo request (type 8) or reply (type 0)."""
    return build_icmp(
        ICMP_ECHOREPLY if reply else ICMP_ECHO, 0, (ident & 0xFFFF).to_bytes(2, "big") + (seq & 0xFFFF).to_bytes(2, "big"), payload
    )
