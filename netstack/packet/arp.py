"""ARP header codec (RFC 826, include/uapi/linux/if_arp.h, net/ipv4/arp.c).

The header is 8 fixed bytes then sha/spa/tha/tpa whose sizes come from
``ar_hln``/``ar_pln``; ``arp_rcv`` pulls ``arp_hdr_len(dev)`` and drops short
packets, so a truncated body is ``PKT_TOO_SMALL``.
"""

from __future__ import annotations

from ._view import Buffer, need, u16
from ._view import be16_field
from .constants import ARPHRD_ETHER, ETH_P_IP

__all__ = ["ArpView", "build_arp"]


class ArpView:
    """Zero-copy ARP header view (any hardware/protocol address lengths)."""

    __slots__ = ("buf", "off", "_hln", "_pln")

    def __init__(self, buf: Buffer, off: int = 0) -> None:
        self.buf = buf
        self.off = off
        self._hln = buf[off + 4]
        self._pln = buf[off + 5]

    @classmethod
    def parse(cls, buf: Buffer, off: int = 0) -> "ArpView":
        need(buf, off, 8, "PKT_TOO_SMALL", "arp header")
        hln, pln = buf[off + 4], buf[off + 5]
        need(buf, off, 8 + 2 * (hln + pln), "PKT_TOO_SMALL", "arp addresses")
        return cls(buf, off)

    @property
    def length(self) -> int:
        return 8 + 2 * (self._hln + self._pln)

    @property
    def htype(self) -> int:
        return u16(self.buf, self.off)

    @property
    def ptype(self) -> int:
        return u16(self.buf, self.off + 2)

    @property
    def hlen(self) -> int:
        return self._hln

    @property
    def plen(self) -> int:
        return self._pln

    op = be16_field(6)

    def _field(self, idx: int) -> tuple[int, int]:
        h, p = self._hln, self._pln
        starts = (0, h, h + p, 2 * h + p)
        sizes = (h, p, h, p)
        return self.off + 8 + starts[idx], sizes[idx]

    def _get(self, idx: int) -> bytes:
        o, n = self._field(idx)
        return bytes(self.buf[o : o + n])

    def _set(self, idx: int, v: bytes) -> None:
        o, n = self._field(idx)
        if len(v) != n:
            raise ValueError(f"address must be {n} bytes")
        self.buf[o : o + n] = v

    sha = property(lambda s: s._get(0), lambda s, v: s._set(0, v), doc="sender hardware address")
    spa = property(lambda s: s._get(1), lambda s, v: s._set(1, v), doc="sender protocol address")
    tha = property(lambda s: s._get(2), lambda s, v: s._set(2, v), doc="target hardware address")
    tpa = property(lambda s: s._get(3), lambda s, v: s._set(3, v), doc="target protocol address")


def build_arp(
    op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes, *, htype: int = ARPHRD_ETHER, ptype: int = ETH_P_IP
) -> bytes:
    """Build an ARP packet; address lengths come from ``sha``/``spa``."""
    if len(tha) != len(sha) or len(tpa) != len(spa) or len(sha) > 255 or len(spa) > 255:
        raise ValueError("inconsistent ARP address lengths")
    return (
        htype.to_bytes(2, "big")
        + ptype.to_bytes(2, "big")
        + bytes((len(sha), len(spa)))
        + op.to_bytes(2, "big")
        + bytes(sha)
        + bytes(spa)
        + bytes(tha)
        + bytes(tpa)
    )
