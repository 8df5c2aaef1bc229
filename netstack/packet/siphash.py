"""SipHash-2-4 as lib/siphash.c (``siphash()``), used for the flow hash.

The key is ``siphash_key_t`` = two u64 read little-endian from 16 bytes, the
message is consumed as little-endian u64 words and the length goes in the top
byte of the last word, exactly as the reference implementation
(Aumasson & Bernstein, 2012) that the kernel follows.
"""

from __future__ import annotations

__all__ = ["siphash", "siphash_key"]

_U64 = 0xFFFFFFFFFFFFFFFF


def siphash_key(key: bytes) -> tuple[int, int]:
    """Split 16 key bytes into ``key[0], key[1]`` (native little-endian u64s)."""
    if len(key) != 16:
        raise ValueError("siphash key must be 16 bytes")
    return int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")


def siphash(data: bytes | bytearray | memoryview, key: bytes) -> int:
    """64-bit SipHash-2-4 of ``data`` under the 16-byte ``key``.

    The SipRounds are written out inline: function calls dominate the cost
    of 64-bit arithmetic on Python ints.
    """
    k0, k1 = siphash_key(key)
    M = _U64
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    data = bytes(data)
    n = len(data)
    end = n - (n & 7)
    words = [int.from_bytes(data[i : i + 8], "little") for i in range(0, end, 8)]
    words.append(((n & 0xFF) << 56) | int.from_bytes(data[end:], "little"))
    for m in words:
        v3 ^= m
        for _ in (0, 1):
            v0 = (v0 + v1) & M
            v1 = ((v1 << 13) | (v1 >> 51)) & M ^ v0
            v0 = ((v0 << 32) | (v0 >> 32)) & M
            v2 = (v2 + v3) & M
            v3 = ((v3 << 16) | (v3 >> 48)) & M ^ v2
            v0 = (v0 + v3) & M
            v3 = ((v3 << 21) | (v3 >> 43)) & M ^ v0
            v2 = (v2 + v1) & M
            v1 = ((v1 << 17) | (v1 >> 47)) & M ^ v2
            v2 = ((v2 << 32) | (v2 >> 32)) & M
        v0 ^= m
    v2 ^= 0xFF
    for _ in (0, 1, 2, 3):
        v0 = (v0 + v1) & M
        v1 = ((v1 << 13) | (v1 >> 51)) & M ^ v0
        v0 = ((v0 << 32) | (v0 >> 32)) & M
        v2 = (v2 + v3) & M
        v3 = ((v3 << 16) | (v3 >> 48)) & M ^ v2
        v0 = (v0 + v3) & M
        v3 = ((v3 << 21) | (v3 >> 43)) & M ^ v0
        v2 = (v2 + v1) & M
        v1 = ((v1 << 17) | (v1 >> 47)) & M ^ v2
        v2 = ((v2 << 32) | (v2 >> 32)) & M
    return v0 ^ v1 ^ v2 ^ v3
