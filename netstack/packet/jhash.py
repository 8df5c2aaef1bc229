"""Bob Jenkins' lookup3 hash as include/linux/jhash.h.

``jhash`` is lookup3 ``hashlittle`` on a little-endian CPU (the kernel reads
words with ``get_unaligned_cpu32``; x86 is the oracle), ``jhash2`` is
``hashword`` over u32 words, and ``jhash_{1,2,3}words`` use the post-2015
initval (``initval + JHASH_INITVAL + (n << 2)``).  Used by rhashtable,
the inet/SCTP lookup tables and ``udp_flow_src_port``'s fallback.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["JHASH_INITVAL", "jhash", "jhash2", "jhash_1word", "jhash_2words", "jhash_3words"]

JHASH_INITVAL = 0xDEADBEEF
_U32 = 0xFFFFFFFF


def _rol(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _U32


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    """``__jhash_mix``."""
    a = ((a - c) & _U32) ^ _rol(c, 4)
    c = (c + b) & _U32
    b = ((b - a) & _U32) ^ _rol(a, 6)
    a = (a + c) & _U32
    c = ((c - b) & _U32) ^ _rol(b, 8)
    b = (b + a) & _U32
    a = ((a - c) & _U32) ^ _rol(c, 16)
    c = (c + b) & _U32
    b = ((b - a) & _U32) ^ _rol(a, 19)
    a = (a + c) & _U32
    c = ((c - b) & _U32) ^ _rol(b, 4)
    b = (b + a) & _U32
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    """``__jhash_final``; returns c."""
    c = ((c ^ b) - _rol(b, 14)) & _U32
    a = ((a ^ c) - _rol(c, 11)) & _U32
    b = ((b ^ a) - _rol(a, 25)) & _U32
    c = ((c ^ b) - _rol(b, 16)) & _U32
    a = ((a ^ c) - _rol(c, 4)) & _U32
    b = ((b ^ a) - _rol(a, 14)) & _U32
    c = ((c ^ b) - _rol(b, 24)) & _U32
    return c


def jhash(key: bytes | bytearray | memoryview, initval: int = 0) -> int:
    """Hash a byte string (``jhash(key, length, initval)``)."""
    key = bytes(key)
    length = len(key)
    a = b = c = (JHASH_INITVAL + length + initval) & _U32
    off = 0
    while length > 12:
        a = (a + int.from_bytes(key[off : off + 4], "little")) & _U32
        b = (b + int.from_bytes(key[off + 4 : off + 8], "little")) & _U32
        c = (c + int.from_bytes(key[off + 8 : off + 12], "little")) & _U32
        a, b, c = _mix(a, b, c)
        length -= 12
        off += 12
    if length == 0:
        return c
    tail = key[off:] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & _U32
    b = (b + int.from_bytes(tail[4:8], "little")) & _U32
    c = (c + int.from_bytes(tail[8:12], "little")) & _U32
    return _final(a, b, c)


def jhash2(words: Sequence[int], initval: int = 0) -> int:
    """Hash a sequence of u32 words (``jhash2(k, length, initval)``)."""
    length = len(words)
    a = b = c = (JHASH_INITVAL + (length << 2) + initval) & _U32
    i = 0
    while length > 3:
        a = (a + words[i]) & _U32
        b = (b + words[i + 1]) & _U32
        c = (c + words[i + 2]) & _U32
        a, b, c = _mix(a, b, c)
        length -= 3
        i += 3
    if length == 0:
        return c
    if length == 3:
        c = (c + words[i + 2]) & _U32
    if length >= 2:
        b = (b + words[i + 1]) & _U32
    a = (a + words[i]) & _U32
    return _final(a, b, c)


def _nwords(a: int, b: int, c: int, initval: int) -> int:
    """``__jhash_nwords``."""
    return _final((a + initval) & _U32, (b + initval) & _U32, (c + initval) & _U32)


def jhash_3words(a: int, b: int, c: int, initval: int = 0) -> int:
    """``jhash_3words``."""
    return _nwords(a, b, c, (initval + JHASH_INITVAL + (3 << 2)) & _U32)


def jhash_2words(a: int, b: int, initval: int = 0) -> int:
    """``jhash_2words``."""
    return _nwords(a, b, 0, (initval + JHASH_INITVAL + (2 << 2)) & _U32)


def jhash_1word(a: int, initval: int = 0) -> int:
    """``jhash_1word``."""
    return _nwords(a, 0, 0, (initval + JHASH_INITVAL + (1 << 2)) & _U32)
