"""Ethernet II header codec (IEEE 802.3, include/uapi/linux/if_ether.h).

``eth_type_trans`` (net/ethernet/eth.c) reads the 14-byte header; a frame
shorter than that is dropped before any protocol sees it.
"""

from __future__ import annotations

from ._view import Buffer, need
from ._view import be16_field
from .constants import ETH_HLEN, ETH_ZLEN

__all__ = ["EthernetView", "build_ethernet", "mac_str", "mac_bytes", "BROADCAST", "is_multicast_ether_addr"]

BROADCAST = b"\xff" * 6


def mac_str(mac: bytes) -> str:
    """``aa:bb:cc:dd:ee:ff`` text form of a 6-byte address."""
    if len(mac) != 6:
        raise ValueError("MAC address must be 6 bytes")
    return ":".join(f"{b:02x}" for b in mac)


def mac_bytes(text: str) -> bytes:
    """Parse ``aa:bb:cc:dd:ee:ff`` (or ``-`` separated) into 6 bytes."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
        raise ValueError(f"bad MAC address {text!r}")
    return bytes(int(p, 16) for p in parts)


def is_multicast_ether_addr(mac: bytes) -> bool:
    """Group bit set (include/linux/etherdevice.h); broadcast included."""
    return bool(mac[0] & 1)


class EthernetView:
    """Zero-copy view of an Ethernet II header at ``off``."""

    __slots__ = ("buf", "off")
    HLEN = ETH_HLEN

    def __init__(self, buf: Buffer, off: int = 0) -> None:
        self.buf = buf
        self.off = off

    @classmethod
    def parse(cls, buf: Buffer, off: int = 0) -> "EthernetView":
        need(buf, off, ETH_HLEN, "PKT_TOO_SMALL", "ethernet header")
        return cls(buf, off)

    @property
    def dst(self) -> bytes:
        return bytes(self.buf[self.off : self.off + 6])

    @dst.setter
    def dst(self, v: bytes) -> None:
        if len(v) != 6:
            raise ValueError("MAC address must be 6 bytes")
        self.buf[self.off : self.off + 6] = v

    @property
    def src(self) -> bytes:
        return bytes(self.buf[self.off + 6 : self.off + 12])

    @src.setter
    def src(self, v: bytes) -> None:
        if len(v) != 6:
            raise ValueError("MAC address must be 6 bytes")
        self.buf[self.off + 6 : self.off + 12] = v

    ethertype = be16_field(12)

    @property
    def payload_off(self) -> int:
        return self.off + ETH_HLEN

    def payload(self) -> memoryview:
        return memoryview(self.buf)[self.off + ETH_HLEN :]


def build_ethernet(dst: bytes, src: bytes, ethertype: int, payload: bytes = b"", *, pad: bool = False) -> bytes:
    """Build a frame; ``pad`` zero-fills to ETH_ZLEN (60) like ``eth_skb_pad``."""
    if len(dst) != 6 or len(src) != 6:
        raise ValueError("MAC addresses must be 6 bytes")
    frame = bytes(dst) + bytes(src) + ethertype.to_bytes(2, "big") + bytes(payload)
    if pad and len(frame) < ETH_ZLEN:
        frame += bytes(ETH_ZLEN - len(frame))
    return frame
