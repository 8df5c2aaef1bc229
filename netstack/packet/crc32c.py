"""CRC-32C (Castagnoli) and the SCTP checksum (RFC 9260 App. B, RFC 3720 B.4).

Reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF, as
lib/crc32 ``crc32c`` and include/net/sctp/checksum.h.  The SCTP header stores
the result ``cpu_to_le32``: least significant byte first on the wire.

Speed: "slicing-by-8" tables process eight bytes per Python-level iteration.
"""

from __future__ import annotations

import struct

__all__ = ["crc32c", "crc32c_update", "sctp_checksum", "sctp_csum_field", "sctp_verify", "sctp_set_checksum"]

_POLY = 0x82F63B78


def _make_tables() -> list[list[int]]:
    t0 = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        t0.append(c)
    tables = [t0]
    for k in range(1, 8):
        prev = tables[k - 1]
        tables.append([(prev[i] >> 8) ^ t0[prev[i] & 0xFF] for i in range(256)])
    return tables


_T = _make_tables()
_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7 = _T
_iter8 = struct.Struct("<IBBBB").iter_unpack


def crc32c_update(crc: int, data: bytes | bytearray | memoryview) -> int:
    """Raw register update (no pre/post inversion), like the kernel's ``__crc32c_le``."""
    mv = memoryview(data).cast("B")
    n = len(mv)
    end8 = n - (n & 7)
    t0, t1, t2, t3, t4, t5, t6, t7 = _T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7
    for lo, b4, b5, b6, b7 in _iter8(mv[:end8]):
        lo ^= crc
        crc = (
            t7[lo & 0xFF]
            ^ t6[(lo >> 8) & 0xFF]
            ^ t5[(lo >> 16) & 0xFF]
            ^ t4[lo >> 24]
            ^ t3[b4]
            ^ t2[b5]
            ^ t1[b6]
            ^ t0[b7]
        )
    for i in range(end8, n):
        crc = (crc >> 8) ^ t0[(crc ^ mv[i]) & 0xFF]
    return crc


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """Standard CRC-32C of ``data``; ``crc`` continues a previous result."""
    return crc32c_update(crc ^ 0xFFFFFFFF, data) ^ 0xFFFFFFFF


def sctp_checksum(packet: bytes | bytearray | memoryview, off: int = 0, end: int | None = None) -> int:
    """CRC-32C of an SCTP packet with its checksum field (bytes 8..11) taken as zero."""
    mv = memoryview(packet)[off:end]
    if len(mv) < 12:
        from .errors import ParseError

        raise ParseError("PKT_TOO_SMALL", "SCTP common header is 12 bytes")
    crc = crc32c_update(0xFFFFFFFF, mv[:8])
    crc = crc32c_update(crc, b"\x00\x00\x00\x00")
    crc = crc32c_update(crc, mv[12:])
    return crc ^ 0xFFFFFFFF


def sctp_csum_field(crc: int) -> bytes:
    """The 4 wire bytes for a CRC value (``cpu_to_le32``)."""
    return crc.to_bytes(4, "little")


def sctp_verify(packet: bytes | bytearray | memoryview, off: int = 0, end: int | None = None) -> bool:
    """True when the stored SCTP checksum matches (``sctp_rcv_checksum`` == 0)."""
    mv = memoryview(packet)[off:end]
    if len(mv) < 12:
        return False
    return bytes(mv[8:12]) == sctp_csum_field(sctp_checksum(mv))


def sctp_set_checksum(packet: bytearray | memoryview, off: int = 0, end: int | None = None) -> int:
    """Compute and store the SCTP checksum in place; returns the CRC value."""
    crc = sctp_checksum(packet, off, end)
    memoryview(packet)[off + 8 : off + 12] = sctp_csum_field(crc)
    return crc
