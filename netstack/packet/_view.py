"""Shared helpers for the zero-copy header views.

A view is ``(buf, off)``: properties read fields straight from ``buf`` and
setters write them back in place, so the datapath can rewrite a TTL or a MAC
without copying the packet (the smoltcp ``src/wire`` idea).  ``buf`` is a
``bytearray`` or writable ``memoryview`` for in-place edits; ``bytes`` works
for read-only use.
"""

from __future__ import annotations

from typing import Union

from .errors import ParseError

Buffer = Union[bytes, bytearray, memoryview]

__all__ = ["Buffer", "need", "need_to", "u16", "u32", "put16", "put32", "be16_field", "be32_field"]


def need(buf: Buffer, off: int, n: int, reason: str, what: str) -> None:
    """Raise ParseError unless ``n`` bytes are available at ``off``."""
    if off < 0 or len(buf) - off < n:
        raise ParseError(reason, f"{what}: need {n} bytes at offset {off}, have {max(len(buf) - off, 0)}")


def u16(buf: Buffer, off: int) -> int:
    return (buf[off] << 8) | buf[off + 1]


def u32(buf: Buffer, off: int) -> int:
    return int.from_bytes(buf[off : off + 4], "big")


def put16(buf: Buffer, off: int, v: int) -> None:
    buf[off] = (v >> 8) & 0xFF
    buf[off + 1] = v & 0xFF


def put32(buf: Buffer, off: int, v: int) -> None:
    buf[off : off + 4] = (v & 0xFFFFFFFF).to_bytes(4, "big")


def need_to(end: int, off: int, n: int, reason: str, what: str) -> None:
    """Raise ParseError unless ``n`` bytes fit between ``off`` and ``end``."""
    if off < 0 or end - off < n:
        raise ParseError(reason, f"{what}: need {n} bytes at offset {off}, have {max(end - off, 0)}")


def be16_field(rel: int) -> property:
    """A read/write big-endian 16-bit header field at ``self.off + rel`` — the one shape
    every view's port, length and checksum accessors share."""
    def get(self) -> int:  # type: ignore[no-untyped-def]
        b = self.buf
        o = self.off + rel
        return (b[o] << 8) | b[o + 1]

    def put(self, v: int) -> None:  # type: ignore[no-untyped-def]
        put16(self.buf, self.off + rel, v)

    return property(get, put)


def be32_field(rel: int) -> property:
    """A read/write big-endian 32-bit header field at ``self.off + rel``."""
    def get(self) -> int:  # type: ignore[no-untyped-def]
        return u32(self.buf, self.off + rel)

    def put(self, v: int) -> None:  # type: ignore[no-untyped-def]
        put32(self.buf, self.off + rel, v)

    return property(get, put)
