"""TCP header and options codec (RFC 9293, RFC 7323, RFC 2018).

``tcp_v4_rcv`` drops a segment whose 20-byte header does not fit, or whose
``doff < 5`` (``PKT_TOO_SMALL``), or whose ``doff*4`` header does not fit.
Options are walked like ``tcp_parse_options`` (net/ipv4/tcp_input.c): EOL
ends the walk, NOP is one byte, and a length below 2 or beyond the option
space silently ends it ("don't parse partial options") — so option parsing
never raises; recognised options with the wrong length are kept raw.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._view import Buffer, need_to, u16, u32
from ._view import be16_field, be32_field
from .checksum import csum_ipv6_magic, csum_partial, csum_replace2, csum_tcpudp_magic
from .constants import (
    IPPROTO_TCP,
    TCPOPT_EOL,
    TCPOPT_MSS,
    TCPOPT_NOP,
    TCPOPT_SACK,
    TCPOPT_SACK_PERM,
    TCPOPT_TIMESTAMP,
    TCPOPT_WINDOW,
)
from .errors import ParseError

__all__ = ["TcpView", "TcpOption", "parse_tcp_options", "build_tcp_options", "build_tcp", "tcp_checksum"]


@dataclass(frozen=True, slots=True)
class TcpOption:
    """A TCP option.

    ``value`` by kind: MSS → int, WINDOW → shift count int, SACK_PERM → None,
    SACK → tuple of (left, right) pairs, TIMESTAMP → (tsval, tsecr), NOP →
    None; any other kind (or a known kind with a wrong length) → raw ``bytes``
    of the option data.
    """

    kind: int
    value: object = None

    def build(self) -> bytes:
        k, v = self.kind, self.value
        if k in (TCPOPT_NOP, TCPOPT_EOL):
            return bytes((k,))
        if isinstance(v, (bytes, bytearray)):
            data = bytes(v)
        elif k == TCPOPT_MSS:
            data = int(v).to_bytes(2, "big")  # type: ignore[call-overload]
        elif k == TCPOPT_WINDOW:
            data = bytes((int(v),))  # type: ignore[call-overload]
        elif k == TCPOPT_SACK_PERM:
            data = b""
        elif k == TCPOPT_SACK:
            data = b"".join(l.to_bytes(4, "big") + r.to_bytes(4, "big") for l, r in v)  # type: ignore[union-attr]
        elif k == TCPOPT_TIMESTAMP:
            a, b = v  # type: ignore[misc]
            data = a.to_bytes(4, "big") + b.to_bytes(4, "big")
        else:
            raise ValueError(f"option kind {k} needs raw bytes")
        if len(data) > 38:
            raise ValueError("TCP option too long")
        return bytes((k, len(data) + 2)) + data


_FIXED_LEN = {TCPOPT_MSS: 4, TCPOPT_WINDOW: 3, TCPOPT_SACK_PERM: 2, TCPOPT_TIMESTAMP: 10}


def parse_tcp_options(opts: Buffer) -> list[TcpOption]:
    """Decode the options area; never raises (``tcp_parse_options`` semantics)."""
    out: list[TcpOption] = []
    i, n = 0, len(opts)
    while i < n:
        k = opts[i]
        if k == TCPOPT_EOL:
            break
        if k == TCPOPT_NOP:
            out.append(TcpOption(TCPOPT_NOP))
            i += 1
            continue
        if n - i < 2:
            break
        ol = opts[i + 1]
        if ol < 2 or ol > n - i:
            break
        data = bytes(opts[i + 2 : i + ol])
        want = _FIXED_LEN.get(k)
        if want is not None and ol == want:
            if k == TCPOPT_MSS:
                out.append(TcpOption(k, u16(data, 0)))
            elif k == TCPOPT_WINDOW:
                out.append(TcpOption(k, data[0]))
            elif k == TCPOPT_SACK_PERM:
                out.append(TcpOption(k, None))
            else:
                out.append(TcpOption(k, (u32(data, 0), u32(data, 4))))
        elif k == TCPOPT_SACK and ol >= 10 and (ol - 2) % 8 == 0:
            out.append(TcpOption(k, tuple((u32(data, j), u32(data, j + 4)) for j in range(0, ol - 2, 8))))
        else:
            out.append(TcpOption(k, data))
        i += ol
    return out


def build_tcp_options(options: list[TcpOption]) -> bytes:
    """Serialise options, padded with EOL to a multiple of 4 (max 40 bytes)."""
    raw = b"".join(o.build() for o in options)
    raw += bytes(-len(raw) % 4)
    if len(raw) > 40:
        raise ValueError("TCP options exceed 40 bytes")
    return raw


def tcp_checksum(src: bytes, dst: bytes, segment: Buffer) -> int:
    """Checksum over a TCP segment (0 when verifying a valid one)."""
    s = csum_partial(segment)
    if len(src) == 4:
        return csum_tcpudp_magic(src, dst, len(segment), IPPROTO_TCP, s)
    return csum_ipv6_magic(src, dst, len(segment), IPPROTO_TCP, s)


class TcpView:
    """Zero-copy TCP header view; ``end`` bounds the segment."""

    __slots__ = ("buf", "off", "end")

    def __init__(self, buf: Buffer, off: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.off = off
        self.end = len(buf) if end is None else end

    @classmethod
    def parse(cls, buf: Buffer, off: int = 0, end: int | None = None) -> "TcpView":
        e = len(buf) if end is None else min(end, len(buf))
        need_to(e, off, 20, "PKT_TOO_SMALL", "tcp header")
        doff = buf[off + 12] >> 4
        if doff < 5:
            raise ParseError("PKT_TOO_SMALL", f"tcp doff {doff} < 5")
        need_to(e, off, doff * 4, "HDR_TRUNC", "tcp options")
        return cls(buf, off, e)

    sport = be16_field(0)
    dport = be16_field(2)
    seq = be32_field(4)
    ack_seq = be32_field(8)

    @property
    def doff(self) -> int:
        return self.buf[self.off + 12] >> 4

    @property
    def header_len(self) -> int:
        return (self.buf[self.off + 12] >> 4) * 4

    @property
    def flags(self) -> int:
        """CWR..FIN byte (byte 13)."""
        return self.buf[self.off + 13]

    @flags.setter
    def flags(self, v: int) -> None:
        o = self.off + 12
        old = u16(self.buf, o)
        self.buf[o + 1] = v & 0xFF
        self.check = csum_replace2(self.check, old, u16(self.buf, o))

    @property
    def ae(self) -> int:
        """AccECN / former NS bit (lowest bit of byte 12)."""
        return self.buf[self.off + 12] & 1

    window = be16_field(14)
    check = be16_field(16)

    @property
    def urg_ptr(self) -> int:
        return u16(self.buf, self.off + 18)

    @property
    def options_raw(self) -> bytes:
        return bytes(self.buf[self.off + 20 : self.off + self.header_len])

    def options(self) -> list[TcpOption]:
        return parse_tcp_options(self.buf[self.off + 20 : self.off + self.header_len])

    @property
    def payload_off(self) -> int:
        return self.off + self.header_len

    def payload(self) -> memoryview:
        return memoryview(self.buf)[self.payload_off : self.end]

    def checksum_ok(self, src: bytes, dst: bytes) -> bool:
        return tcp_checksum(src, dst, self.buf[self.off : self.end]) == 0

    def update_checksum(self, src: bytes, dst: bytes) -> int:
        self.check = 0
        c = tcp_checksum(src, dst, self.buf[self.off : self.end])
        self.check = c
        return c


def build_tcp(
    sport: int,
    dport: int,
    seq: int = 0,
    ack: int = 0,
    flags: int = 0,
    window: int = 65535,
    payload: bytes = b"",
    *,
    options: bytes | list[TcpOption] = b"",
    urg_ptr: int = 0,
    src: bytes | None = None,
    dst: bytes | None = None,
    check: int | None = None,
) -> bytes:
    """Build a TCP segment; the checksum is computed when ``src``/``dst`` are given."""
    opts = build_tcp_options(options) if isinstance(options, list) else bytes(options) + bytes(-len(options) % 4)
    if len(opts) > 40:
        raise ValueError("TCP options exceed 40 bytes")
    doff = (20 + len(opts)) // 4
    seg = bytearray(
        (sport & 0xFFFF).to_bytes(2, "big")
        + (dport & 0xFFFF).to_bytes(2, "big")
        + (seq & 0xFFFFFFFF).to_bytes(4, "big")
        + (ack & 0xFFFFFFFF).to_bytes(4, "big")
        + bytes((doff << 4, flags & 0xFF))
        + (window & 0xFFFF).to_bytes(2, "big")
        + b"\x00\x00"
        + (urg_ptr & 0xFFFF).to_bytes(2, "big")
        + opts
        + bytes(payload)
    )
    if check is None:
        if src is not None and dst is not None:
            if len(src) != len(dst) or len(src) not in (4, 16):
                raise ValueError("addresses must both be 4 or 16 bytes")
            check = tcp_checksum(src, dst, seg)
        else:
            check = 0
    seg[16] = check >> 8
    seg[17] = check & 0xFF
    return bytes(seg)
