"""IGMP (RFC 1112, 2236, 3376) and MLD (RFC 2710, 3810) message codecs.

Why: bridge multicast snooping (net/bridge/br_multicast.c) reads membership
reports, leaves/dones and queries.  The kernel validates them with
``ip_mc_check_igmp`` (net/ipv4/igmp.c) and ``ipv6_mc_check_mld``
(net/ipv6/mcast_snoop.c); this module reproduces the message-level part of
those checks, the IP-level part (router alert, link-local MLD source, query
destination) lives in the snooping code that has the IP header:

* IGMP: the 8-byte ``igmphdr`` must be present and the checksum over the
  whole IP payload must be valid; a v3 report needs its 8-byte fixed part; a
  query is v1/v2 when the payload is exactly 8 bytes, else it must hold the
  12-byte ``igmpv3_query``.  Other types are "not IGMP for snooping"
  (``-ENOMSG``), which :func:`parse_igmp` returns as ``kind = "other"``.
* MLD: the ICMPv6 checksum (pseudo-header) must be valid; queries are MLDv1
  when the message is exactly 24 bytes, else at least the 28-byte
  ``mld2_query``; v1 report/done need the 24-byte ``mld_msg``; a v2 report its
  8-byte fixed part.

Malformed input raises ``ParseError``: a short header is ``PKT_TOO_SMALL``, a
record or source list running past the message ``HDR_TRUNC``, a bad checksum
``IP_CSUM`` for IGMP (the kernel's ``-EINVAL`` from ``ip_mc_check_igmp_csum``)
and ``PKT_TOO_SMALL``/``HDR_TRUNC`` alike for MLD.  The snooper maps any of
them to the bridge's drop (``br_multicast_rcv`` returning an error).

MLD lives here rather than in icmpv6.py because it is the IPv6 twin of IGMP
(include/linux/igmp.h / include/net/mld.h) and is used only by snooping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._view import Buffer, u16
from .checksum import csum_fold, csum_partial
from .errors import ParseError
from .icmpv6 import icmpv6_checksum

__all__ = [
    "IGMP_HOST_MEMBERSHIP_QUERY",
    "IGMP_HOST_MEMBERSHIP_REPORT",
    "IGMPV2_HOST_MEMBERSHIP_REPORT",
    "IGMP_HOST_LEAVE_MESSAGE",
    "IGMPV3_HOST_MEMBERSHIP_REPORT",
    "ICMPV6_MGM_QUERY",
    "ICMPV6_MGM_REPORT",
    "ICMPV6_MGM_REDUCTION",
    "ICMPV6_MLD2_REPORT",
    "MODE_IS_INCLUDE",
    "MODE_IS_EXCLUDE",
    "CHANGE_TO_INCLUDE",
    "CHANGE_TO_EXCLUDE",
    "ALLOW_NEW_SOURCES",
    "BLOCK_OLD_SOURCES",
    "GroupRecord",
    "IgmpMessage",
    "MldMessage",
    "igmp_checksum",
    "parse_igmp",
    "build_igmp",
    "parse_mld",
    "build_mld",
]

# include/uapi/linux/igmp.h
IGMP_HOST_MEMBERSHIP_QUERY = 0x11
IGMP_HOST_MEMBERSHIP_REPORT = 0x12
IGMPV2_HOST_MEMBERSHIP_REPORT = 0x16
IGMP_HOST_LEAVE_MESSAGE = 0x17
IGMPV3_HOST_MEMBERSHIP_REPORT = 0x22

# include/uapi/linux/icmpv6.h
ICMPV6_MGM_QUERY = 130
ICMPV6_MGM_REPORT = 131
ICMPV6_MGM_REDUCTION = 132
ICMPV6_MLD2_REPORT = 143

# Group record types (RFC 3376 §4.2.12, RFC 3810 §5.2.12)
MODE_IS_INCLUDE = 1
MODE_IS_EXCLUDE = 2
CHANGE_TO_INCLUDE = 3
CHANGE_TO_EXCLUDE = 4
ALLOW_NEW_SOURCES = 5
BLOCK_OLD_SOURCES = 6


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """One IGMPv3/MLDv2 group record: ``group`` is 4 or 16 bytes."""

    type: int
    group: bytes
    sources: tuple[bytes, ...] = ()
    aux: bytes = b""


@dataclass(frozen=True, slots=True)
class IgmpMessage:
    """Decoded IGMP message.

    ``kind``: "query", "report" (v1/v2: ``group``; v3: ``records``), "leave"
    or "other" (a type snooping ignores).  ``version`` is 1, 2 or 3 (for a
    query: 1 when max_resp is 0, as RFC 2236 §4 says a v1 query looks).
    """

    type: int
    kind: str
    version: int
    max_resp: int = 0
    group: bytes = bytes(4)
    sflag: bool = False
    qrv: int = 0
    qqic: int = 0
    sources: tuple[bytes, ...] = ()
    records: tuple[GroupRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class MldMessage:
    """Decoded MLD message; fields as :class:`IgmpMessage` (``max_resp`` is
    the Maximum Response Code in ms units for v1, the coded value for v2)."""

    type: int
    kind: str
    version: int
    max_resp: int = 0
    group: bytes = bytes(16)
    sflag: bool = False
    qrv: int = 0
    qqic: int = 0
    sources: tuple[bytes, ...] = ()
    records: tuple[GroupRecord, ...] = field(default_factory=tuple)


def igmp_checksum(msg: Buffer) -> int:
    """The Internet checksum over the whole IGMP message (0 when valid)."""
    return csum_fold(csum_partial(msg))


def _records(b: bytes, off: int, count: int, alen: int) -> tuple[GroupRecord, ...]:
    out = []
    for _ in range(count):
        if off + 4 + alen > len(b):
            raise ParseError("HDR_TRUNC", "group record header past the end")
        rtype, aux_words, nsrc = b[off], b[off + 1], u16(b, off + 2)
        group = b[off + 4 : off + 4 + alen]
        p = off + 4 + alen
        end = p + nsrc * alen + aux_words * 4
        if end > len(b):
            raise ParseError("HDR_TRUNC", f"group record with {nsrc} sources past the end")
        srcs = tuple(b[p + i * alen : p + (i + 1) * alen] for i in range(nsrc))
        out.append(GroupRecord(rtype, group, srcs, b[p + nsrc * alen : end]))
        off = end
    return tuple(out)


def _sources(b: bytes, off: int, alen: int) -> tuple[bytes, ...]:
    n = u16(b, off)
    p = off + 2
    if p + n * alen > len(b):
        raise ParseError("HDR_TRUNC", f"query with {n} sources past the end")
    return tuple(b[p + i * alen : p + (i + 1) * alen] for i in range(n))


def parse_igmp(msg: Buffer, *, verify_checksum: bool = True) -> IgmpMessage:
    """Decode the IGMP message ``msg`` (the whole IP payload, ``ip_mc_check_igmp``)."""
    b = bytes(msg)
    if len(b) < 8:
        raise ParseError("PKT_TOO_SMALL", "igmp header")
    if verify_checksum and igmp_checksum(b) != 0:
        raise ParseError("IP_CSUM", "igmp checksum")
    t = b[0]
    if t in (IGMP_HOST_MEMBERSHIP_REPORT, IGMPV2_HOST_MEMBERSHIP_REPORT):
        return IgmpMessage(t, "report", 1 if t == IGMP_HOST_MEMBERSHIP_REPORT else 2, b[1], b[4:8])
    if t == IGMP_HOST_LEAVE_MESSAGE:
        return IgmpMessage(t, "leave", 2, b[1], b[4:8])
    if t == IGMPV3_HOST_MEMBERSHIP_REPORT:
        return IgmpMessage(t, "report", 3, records=_records(b, 8, u16(b, 6), 4))
    if t == IGMP_HOST_MEMBERSHIP_QUERY:
        if len(b) == 8:
            return IgmpMessage(t, "query", 1 if b[1] == 0 else 2, b[1], b[4:8])
        if len(b) < 12:
            raise ParseError("PKT_TOO_SMALL", "igmpv3 query")
        return IgmpMessage(
            t, "query", 3, b[1], b[4:8], sflag=bool(b[8] & 0x08), qrv=b[8] & 0x07, qqic=b[9],
            sources=_sources(b, 10, 4),
        )
    return IgmpMessage(t, "other", 0, b[1], b[4:8])


def _records_bytes(records: tuple[GroupRecord, ...] | list[GroupRecord]) -> bytes:
    out = bytearray()
    for r in records:
        if len(r.aux) % 4:
            raise ValueError("aux data must be a multiple of 4 bytes")
        out += bytes((r.type & 0xFF, len(r.aux) // 4)) + len(r.sources).to_bytes(2, "big") + r.group
        out += b"".join(r.sources) + r.aux
    return bytes(out)


def build_igmp(m: IgmpMessage) -> bytes:
    """Encode an IGMP message with its checksum."""
    if m.kind == "report" and m.version == 3:
        body = bytearray(bytes((m.type, 0, 0, 0, 0, 0)) + len(m.records).to_bytes(2, "big") + _records_bytes(m.records))
    elif m.kind == "query" and m.version == 3:
        body = bytearray(
            bytes((m.type, m.max_resp & 0xFF, 0, 0)) + m.group
            + bytes(((0x08 if m.sflag else 0) | (m.qrv & 7), m.qqic & 0xFF))
            + len(m.sources).to_bytes(2, "big") + b"".join(m.sources)
        )
    else:
        body = bytearray(bytes((m.type, m.max_resp & 0xFF, 0, 0)) + m.group)
    c = igmp_checksum(body)
    body[2], body[3] = c >> 8, c & 0xFF
    return bytes(body)


def parse_mld(msg: Buffer, src: bytes | None = None, dst: bytes | None = None) -> MldMessage:
    """Decode an MLD message (starting at the ICMPv6 type byte).

    With ``src``/``dst`` the ICMPv6 checksum is verified (``ipv6_mc_check_icmpv6``).
    """
    b = bytes(msg)
    if len(b) < 4:
        raise ParseError("PKT_TOO_SMALL", "icmpv6 header")
    if src is not None and dst is not None and icmpv6_checksum(src, dst, b) != 0:
        raise ParseError("HDR_TRUNC", "mld checksum")
    t = b[0]
    if t in (ICMPV6_MGM_REPORT, ICMPV6_MGM_REDUCTION):
        if len(b) < 24:
            raise ParseError("PKT_TOO_SMALL", "mld_msg")
        return MldMessage(t, "report" if t == ICMPV6_MGM_REPORT else "leave", 1, u16(b, 4), b[8:24])
    if t == ICMPV6_MLD2_REPORT:
        if len(b) < 8:
            raise ParseError("PKT_TOO_SMALL", "mld2_report")
        return MldMessage(t, "report", 2, records=_records(b, 8, u16(b, 6), 16))
    if t == ICMPV6_MGM_QUERY:
        if len(b) == 24:
            return MldMessage(t, "query", 1, u16(b, 4), b[8:24])
        if len(b) < 28:
            raise ParseError("PKT_TOO_SMALL", "mld2_query")
        return MldMessage(
            t, "query", 2, u16(b, 4), b[8:24], sflag=bool(b[24] & 0x08), qrv=b[24] & 7, qqic=b[25],
            sources=_sources(b, 26, 16),
        )
    return MldMessage(t, "other", 0)


def build_mld(m: MldMessage, src: bytes, dst: bytes) -> bytes:
    """Encode an MLD message with its ICMPv6 checksum over ``src``/``dst``."""
    if m.kind == "report" and m.version == 2:
        body = bytearray(bytes((m.type, 0, 0, 0, 0, 0)) + len(m.records).to_bytes(2, "big") + _records_bytes(m.records))
    elif m.kind == "query" and m.version == 2:
        body = bytearray(
            bytes((m.type, 0, 0, 0)) + (m.max_resp & 0xFFFF).to_bytes(2, "big") + bytes(2) + m.group
            + bytes(((0x08 if m.sflag else 0) | (m.qrv & 7), m.qqic & 0xFF))
            + len(m.sources).to_bytes(2, "big") + b"".join(m.sources)
        )
    else:
        body = bytearray(bytes((m.type, 0, 0, 0)) + (m.max_resp & 0xFFFF).to_bytes(2, "big") + bytes(2) + m.group)
    c = icmpv6_checksum(src, dst, body)
    body[2], body[3] = c >> 8, c & 0xFF
    return bytes(body)
