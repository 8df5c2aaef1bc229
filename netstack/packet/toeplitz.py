"""Receive Side Scaling Toeplitz hash (Microsoft RSS specification).

The NIC hash that lands in ``skb->hash`` with ``PKT_HASH_TYPE_L3/L4`` when a
driver reports it; also what ``ethtool -X ... hfunc toeplitz`` configures.
The input is src addr, dst addr and (for the 4-tuple hash) src port, dst port,
all in network byte order.  The default key is Microsoft's verification key.
"""

from __future__ import annotations

__all__ = ["MS_DEFAULT_KEY", "toeplitz_hash", "rss_hash_ipv4", "rss_hash_ipv6"]

MS_DEFAULT_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
)


def toeplitz_hash(data: bytes | bytearray | memoryview, key: bytes = MS_DEFAULT_KEY) -> int:
    """32-bit Toeplitz hash of ``data``; the key must be at least len(data)+4 bytes."""
    data = bytes(data)
    if len(key) < len(data) + 4:
        raise ValueError("Toeplitz key too short for the input")
    k = int.from_bytes(key, "big")
    kbits = len(key) * 8
    result = 0
    bitpos = 0
    for byte in data:
        if byte:
            for j in range(8):
                if byte & (0x80 >> j):
                    result ^= (k >> (kbits - 32 - bitpos - j)) & 0xFFFFFFFF
        bitpos += 8
    return result


def rss_hash_ipv4(
    saddr: bytes, daddr: bytes, sport: int | None = None, dport: int | None = None, key: bytes = MS_DEFAULT_KEY
) -> int:
    """RSS hash over an IPv4 2-tuple, or 4-tuple when ports are given."""
    data = bytes(saddr) + bytes(daddr)
    if sport is not None and dport is not None:
        data += sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    return toeplitz_hash(data, key)


def rss_hash_ipv6(
    saddr: bytes, daddr: bytes, sport: int | None = None, dport: int | None = None, key: bytes = MS_DEFAULT_KEY
) -> int:
    """RSS hash over an IPv6 2-tuple, or 4-tuple when ports are given."""
    data = bytes(saddr) + bytes(daddr)
    if sport is not None and dport is not None:
        data += sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    return toeplitz_hash(data, key)
