"""802.1Q / 802.1ad VLAN tags, any number stacked (include/linux/if_vlan.h).

A tag is TPID (the EtherType slot) + TCI (PCP:3, DEI:1, VID:12).  Only
0x8100 and 0x88a8 are VLAN TPIDs (``eth_type_vlan``).  ``vlan_push``/
``vlan_pop`` mirror ``skb_vlan_push``/``skb_vlan_pop`` on the in-band tag.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._view import Buffer, need, u16
from ._view import be16_field
from .constants import ETH_HLEN, VLAN_HLEN, VLAN_TPIDS
from .errors import ParseError

__all__ = ["VlanTag", "VlanView", "parse_vlan_stack", "build_vlan_frame", "vlan_push", "vlan_pop", "VLAN_VID_MASK"]

VLAN_VID_MASK = 0x0FFF
VLAN_PRIO_SHIFT = 13
VLAN_DEI = 0x1000


@dataclass(frozen=True, slots=True)
class VlanTag:
    """One tag: ``tpid`` is the EtherType that announced it, ``tci`` its TCI."""

    tpid: int
    tci: int

    @property
    def vid(self) -> int:
        return self.tci & VLAN_VID_MASK

    @property
    def pcp(self) -> int:
        return self.tci >> VLAN_PRIO_SHIFT

    @property
    def dei(self) -> int:
        return (self.tci >> 12) & 1

    @staticmethod
    def make(vid: int, pcp: int = 0, dei: int = 0, tpid: int = 0x8100) -> "VlanTag":
        if not 0 <= vid <= 0xFFF or not 0 <= pcp <= 7 or dei not in (0, 1):
            raise ValueError("vid 0..4095, pcp 0..7, dei 0/1")
        return VlanTag(tpid, (pcp << 13) | (dei << 12) | vid)


class VlanView:
    """View of the 4 bytes after a VLAN TPID: TCI and the encapsulated type."""

    __slots__ = ("buf", "off")
    HLEN = VLAN_HLEN

    def __init__(self, buf: Buffer, off: int) -> None:
        self.buf = buf
        self.off = off

    @classmethod
    def parse(cls, buf: Buffer, off: int) -> "VlanView":
        need(buf, off, VLAN_HLEN, "PKT_TOO_SMALL", "vlan header")
        return cls(buf, off)

    tci = be16_field(0)

    @property
    def vid(self) -> int:
        return self.tci & VLAN_VID_MASK

    @vid.setter
    def vid(self, v: int) -> None:
        self.tci = (self.tci & ~VLAN_VID_MASK & 0xFFFF) | (v & VLAN_VID_MASK)

    @property
    def pcp(self) -> int:
        return self.tci >> VLAN_PRIO_SHIFT

    @pcp.setter
    def pcp(self, v: int) -> None:
        self.tci = (self.tci & 0x1FFF) | ((v & 7) << VLAN_PRIO_SHIFT)

    @property
    def dei(self) -> int:
        return (self.tci >> 12) & 1

    inner_type = be16_field(2)


def parse_vlan_stack(frame: Buffer, off: int = 0) -> tuple[list[VlanTag], int, int]:
    """Walk every VLAN tag of the Ethernet frame at ``off``.

    Returns ``(tags outermost first, final EtherType, offset of the L3 header)``.
    """
    need(frame, off, ETH_HLEN, "PKT_TOO_SMALL", "ethernet header")
    tags: list[VlanTag] = []
    etype = u16(frame, off + 12)
    pos = off + ETH_HLEN
    while etype in VLAN_TPIDS:
        need(frame, pos, VLAN_HLEN, "PKT_TOO_SMALL", "vlan header")
        tags.append(VlanTag(etype, u16(frame, pos)))
        etype = u16(frame, pos + 2)
        pos += VLAN_HLEN
    return tags, etype, pos


def build_vlan_frame(
    dst: bytes, src: bytes, tags: list[VlanTag], ethertype: int, payload: bytes = b""
) -> bytes:
    """Ethernet frame with ``tags`` (outermost first) before ``ethertype``."""
    if len(dst) != 6 or len(src) != 6:
        raise ValueError("MAC addresses must be 6 bytes")
    out = bytearray(dst + src)
    for t in tags:
        out += t.tpid.to_bytes(2, "big") + t.tci.to_bytes(2, "big")
    out += ethertype.to_bytes(2, "big") + payload
    return bytes(out)


def vlan_push(frame: Buffer, tpid: int, tci: int) -> bytearray:
    """New frame with an outermost tag inserted after the MAC addresses."""
    need(frame, 0, ETH_HLEN, "PKT_TOO_SMALL", "ethernet header")
    return bytearray(frame[:12]) + tpid.to_bytes(2, "big") + tci.to_bytes(2, "big") + bytearray(frame[12:])


def vlan_pop(frame: Buffer) -> tuple[bytearray, VlanTag]:
    """Remove the outermost tag; ParseError if the frame is untagged/truncated."""
    need(frame, 0, ETH_HLEN + VLAN_HLEN, "PKT_TOO_SMALL", "vlan tagged frame")
    tpid = u16(frame, 12)
    if tpid not in VLAN_TPIDS:
        raise ParseError("INVALID_PROTO", f"ethertype {tpid:#06x} is not a VLAN TPID")
    tag = VlanTag(tpid, u16(frame, 14))
    return bytearray(frame[:12]) + bytearray(frame[16:]), tag
