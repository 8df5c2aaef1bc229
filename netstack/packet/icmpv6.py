"""ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861) codec.

The checksum covers the IPv6 pseudo-header (``csum_ipv6_magic``).  ND message
bodies follow net/ipv6/ndisc.c: NS/NA carry a 16-byte target after 4 bytes,
RS has 4 reserved bytes, RA has hop limit/flags/router lifetime/reachable/
retrans timers (12 bytes), Redirect carries target + destination (36
bytes).  Options are walked like ``ndisc_parse_options``: an option with
length 0 or running past the message is ``IPV6_NDISC_BAD_OPTIONS``; a body
shorter than its fixed part is ``PKT_TOO_SMALL``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._view import Buffer, need_to, u16, u32
from ._view import be16_field
from .checksum import csum_ipv6_magic, csum_partial
from .constants import (
    IPPROTO_ICMPV6,
    ND_OPT_MTU,
    ND_OPT_PREFIX_INFO,
    ND_OPT_REDIRECT_HDR,
    NDISC_NEIGHBOUR_ADVERTISEMENT,
    NDISC_NEIGHBOUR_SOLICITATION,
    NDISC_REDIRECT,
    NDISC_ROUTER_ADVERTISEMENT,
    NDISC_ROUTER_SOLICITATION,
)
from .errors import ParseError

__all__ = [
    "Icmp6View",
    "icmpv6_checksum",
    "build_icmpv6",
    "NdOption",
    "PrefixInfo",
    "NdMessage",
    "parse_nd_options",
    "build_nd_options",
    "parse_nd",
    "build_nd",
]


def icmpv6_checksum(src: bytes, dst: bytes, msg: Buffer) -> int:
    """Checksum over an ICMPv6 message (0 when verifying a valid one)."""
    return csum_ipv6_magic(src, dst, len(msg), IPPROTO_ICMPV6, csum_partial(msg))


class Icmp6View:
    """Zero-copy ICMPv6 header view; ``end`` bounds the message."""

    __slots__ = ("buf", "off", "end")
    HLEN = 4

    def __init__(self, buf: Buffer, off: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.off = off
        self.end = len(buf) if end is None else end

    @classmethod
    def parse(cls, buf: Buffer, off: int = 0, end: int | None = None) -> "Icmp6View":
        e = len(buf) if end is None else min(end, len(buf))
        need_to(e, off, 4, "PKT_TOO_SMALL", "icmpv6 header")
        return cls(buf, off, e)

    @property
    def type(self) -> int:
        return self.buf[self.off]

    @property
    def code(self) -> int:
        return self.buf[self.off + 1]

    checksum = be16_field(2)

    @property
    def body_off(self) -> int:
        return self.off + 4

    def body(self) -> bytes:
        return bytes(self.buf[self.off + 4 : self.end])

    def checksum_ok(self, src: bytes, dst: bytes) -> bool:
        return icmpv6_checksum(src, dst, self.buf[self.off : self.end]) == 0

    def update_checksum(self, src: bytes, dst: bytes) -> int:
        self.checksum = 0
        c = icmpv6_checksum(src, dst, self.buf[self.off : self.end])
        self.checksum = c
        return c


def build_icmpv6(icmp_type: int, code: int, body: bytes, src: bytes, dst: bytes, *, checksum: int | None = None) -> bytes:
    """ICMPv6 message with checksum over the pseudo-header (``src``/``dst``)."""
    msg = bytearray(bytes((icmp_type & 0xFF, code & 0xFF, 0, 0)) + bytes(body))
    c = icmpv6_checksum(src, dst, msg) if checksum is None else checksum
    msg[2] = c >> 8
    msg[3] = c & 0xFF
    return bytes(msg)


# -- ND options ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrefixInfo:
    """Prefix Information option (RFC 4861 §4.6.2); flags: L=0x80, A=0x40, R=0x20."""

    prefix_len: int
    flags: int
    valid_lifetime: int
    preferred_lifetime: int
    prefix: bytes

    @property
    def on_link(self) -> bool:
        return bool(self.flags & 0x80)

    @property
    def autonomous(self) -> bool:
        return bool(self.flags & 0x40)


@dataclass(frozen=True, slots=True)
class NdOption:
    """An ND option.  ``value`` by type: SLLA/TLLA → link-layer address bytes
    (the whole option data, 6 bytes on Ethernet); PREFIX_INFO → PrefixInfo;
    MTU → int; REDIRECT_HDR → the enclosed packet bytes; other → raw data."""

    type: int
    value: object

    def build(self) -> bytes:
        t, v = self.type, self.value
        if t == ND_OPT_PREFIX_INFO and isinstance(v, PrefixInfo):
            if len(v.prefix) != 16:
                raise ValueError("prefix must be 16 bytes")
            data = (
                bytes((v.prefix_len & 0xFF, v.flags & 0xFF))
                + (v.valid_lifetime & 0xFFFFFFFF).to_bytes(4, "big")
                + (v.preferred_lifetime & 0xFFFFFFFF).to_bytes(4, "big")
                + bytes(4)
                + v.prefix
            )
        elif t == ND_OPT_MTU and isinstance(v, int):
            data = bytes(2) + (v & 0xFFFFFFFF).to_bytes(4, "big")
        elif t == ND_OPT_REDIRECT_HDR and isinstance(v, (bytes, bytearray)):
            data = bytes(6) + bytes(v)
        elif isinstance(v, (bytes, bytearray)):
            data = bytes(v)
        else:
            raise ValueError(f"bad value for ND option {t}")
        data += bytes(-(len(data) + 2) % 8)
        n = (len(data) + 2) // 8
        if n > 255:
            raise ValueError("ND option too long")
        return bytes((t & 0xFF, n)) + data


def parse_nd_options(opts: Buffer) -> list[NdOption]:
    """Walk ND options (``ndisc_parse_options``)."""
    out: list[NdOption] = []
    i, n = 0, len(opts)
    while i < n:
        if n - i < 2:
            raise ParseError("IPV6_NDISC_BAD_OPTIONS", "truncated option header")
        t = opts[i]
        ol = opts[i + 1] << 3
        if ol == 0 or ol > n - i:
            raise ParseError("IPV6_NDISC_BAD_OPTIONS", f"option {t} length {ol}")
        data = bytes(opts[i + 2 : i + ol])
        if t == ND_OPT_PREFIX_INFO and ol == 32:
            out.append(NdOption(t, PrefixInfo(data[0], data[1], u32(data, 2), u32(data, 6), data[14:30])))
        elif t == ND_OPT_MTU and ol == 8:
            out.append(NdOption(t, u32(data, 2)))
        elif t == ND_OPT_REDIRECT_HDR:
            out.append(NdOption(t, data[6:]))
        else:
            out.append(NdOption(t, data))
        i += ol
    return out


def build_nd_options(options: list[NdOption]) -> bytes:
    return b"".join(o.build() for o in options)


# -- ND messages ----------------------------------------------------------

_FIXED = {
    NDISC_ROUTER_SOLICITATION: 4,
    NDISC_ROUTER_ADVERTISEMENT: 12,
    NDISC_NEIGHBOUR_SOLICITATION: 20,
    NDISC_NEIGHBOUR_ADVERTISEMENT: 20,
    NDISC_REDIRECT: 36,
}


@dataclass(frozen=True, slots=True)
class NdMessage:
    """Decoded ND message (body after type/code/checksum).

    NS/NA: ``target``; NA ``flags`` = R 0x80, S 0x40, O 0x20 (top byte).
    RA: ``cur_hop_limit``, ``flags`` (M 0x80, O 0x40, ...), ``router_lifetime``,
    ``reachable_time``, ``retrans_timer``.  Redirect: ``target``, ``dest``.
    """

    type: int
    code: int = 0
    target: bytes = b""
    dest: bytes = b""
    flags: int = 0
    cur_hop_limit: int = 0
    router_lifetime: int = 0
    reachable_time: int = 0
    retrans_timer: int = 0
    options: tuple[NdOption, ...] = field(default_factory=tuple)

    def body(self) -> bytes:
        t = self.type
        if t == NDISC_ROUTER_SOLICITATION:
            fixed = bytes(4)
        elif t == NDISC_ROUTER_ADVERTISEMENT:
            fixed = (
                bytes((self.cur_hop_limit & 0xFF, self.flags & 0xFF))
                + (self.router_lifetime & 0xFFFF).to_bytes(2, "big")
                + (self.reachable_time & 0xFFFFFFFF).to_bytes(4, "big")
                + (self.retrans_timer & 0xFFFFFFFF).to_bytes(4, "big")
            )
        elif t in (NDISC_NEIGHBOUR_SOLICITATION, NDISC_NEIGHBOUR_ADVERTISEMENT):
            if len(self.target) != 16:
                raise ValueError("target must be 16 bytes")
            flags = self.flags if t == NDISC_NEIGHBOUR_ADVERTISEMENT else 0
            fixed = bytes((flags & 0xFF, 0, 0, 0)) + self.target
        elif t == NDISC_REDIRECT:
            if len(self.target) != 16 or len(self.dest) != 16:
                raise ValueError("target/dest must be 16 bytes")
            fixed = bytes(4) + self.target + self.dest
        else:
            raise ValueError(f"ICMPv6 type {t} is not an ND message")
        return fixed + build_nd_options(list(self.options))


def parse_nd(msg: Buffer) -> NdMessage:
    """Decode an ND message starting at its ICMPv6 type byte."""
    if len(msg) < 4:
        raise ParseError("PKT_TOO_SMALL", "icmpv6 header")
    t, code = msg[0], msg[1]
    fixed = _FIXED.get(t)
    if fixed is None:
        raise ParseError("UNHANDLED_PROTO", f"ICMPv6 type {t} is not an ND message")
    if len(msg) - 4 < fixed:
        raise ParseError("PKT_TOO_SMALL", f"ND type {t} needs {fixed} body bytes")
    b = bytes(msg[4:])
    opts = tuple(parse_nd_options(b[fixed:]))
    if t == NDISC_ROUTER_SOLICITATION:
        return NdMessage(t, code, options=opts)
    if t == NDISC_ROUTER_ADVERTISEMENT:
        return NdMessage(
            t, code, flags=b[1], cur_hop_limit=b[0], router_lifetime=u16(b, 2), reachable_time=u32(b, 4),
            retrans_timer=u32(b, 8), options=opts,
        )
    if t == NDISC_REDIRECT:
        return NdMessage(t, code, target=b[4:20], dest=b[20:36], options=opts)
    flags = b[0] if t == NDISC_NEIGHBOUR_ADVERTISEMENT else 0
    return NdMessage(t, code, target=b[4:20], flags=flags, options=opts)


def build_nd(m: NdMessage, src: bytes, dst: bytes) -> bytes:
    """Encode an ND message as a complete ICMPv6 message with checksum."""
    return build_icmpv6(m.type, m.code, m.body(), src, dst)
