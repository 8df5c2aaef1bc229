"""IPv4 header codec (RFC 791) with the checks of ``ip_rcv_core``.

net/ipv4/ip_input.c ``ip_rcv_core`` drops, in this order: fewer than 20 bytes
or ``ihl < 5`` or ``version != 4`` → ``IP_INHDR``; header longer than the data
→ ``IP_INHDR``; bad header checksum → ``IP_CSUM``; ``tot_len`` beyond the data
→ ``PKT_TOO_SMALL``; ``tot_len < ihl*4`` → ``IP_INHDR``.  Option structure is
checked like ``ip_options_compile`` (net/ipv4/ip_options.c): a bad option
length is an ``IP_INHDR`` error.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._view import Buffer, put16, u16
from ._view import be16_field
from .checksum import csum_replace4, ip_decrease_ttl_csum, ip_fast_csum, ipv4_change_dsfield_csum
from .constants import IP_DF, IP_MF, IP_OFFSET, IPOPT_END, IPOPT_NOOP
from .errors import ParseError

__all__ = ["IPv4View", "IPv4Option", "parse_ipv4_options", "build_ipv4_options", "build_ipv4"]


@dataclass(frozen=True, slots=True)
class IPv4Option:
    """One option: ``type`` byte and its ``data`` (after type/length bytes)."""

    type: int
    data: bytes = b""

    def build(self) -> bytes:
        if self.type in (IPOPT_END, IPOPT_NOOP):
            return bytes((self.type,))
        if len(self.data) > 38:
            raise ValueError("IPv4 option too long")
        return bytes((self.type, len(self.data) + 2)) + self.data


def parse_ipv4_options(opts: Buffer) -> list[IPv4Option]:
    """Structural walk of the options area; stops at EOL.

    Single-byte options are EOL (0) and NOP (1); every other option needs a
    length byte ``2 <= optlen <= remaining`` (``ip_options_compile``).
    """
    out: list[IPv4Option] = []
    i, n = 0, len(opts)
    while i < n:
        t = opts[i]
        if t == IPOPT_END:
            break
        if t == IPOPT_NOOP:
            out.append(IPv4Option(IPOPT_NOOP))
            i += 1
            continue
        if n - i < 2:
            raise ParseError("IP_INHDR", "option without length byte")
        ol = opts[i + 1]
        if ol < 2 or ol > n - i:
            raise ParseError("IP_INHDR", f"bad option length {ol}")
        out.append(IPv4Option(t, bytes(opts[i + 2 : i + ol])))
        i += ol
    return out


def build_ipv4_options(options: list[IPv4Option]) -> bytes:
    """Serialise options and pad with EOL to a 4-byte multiple (max 40)."""
    raw = b"".join(o.build() for o in options)
    raw += bytes(-len(raw) % 4)
    if len(raw) > 40:
        raise ValueError("IPv4 options exceed 40 bytes")
    return raw


class IPv4View:
    """Zero-copy IPv4 header view."""

    __slots__ = ("buf", "off")

    def __init__(self, buf: Buffer, off: int = 0) -> None:
        self.buf = buf
        self.off = off

    @classmethod
    def parse(cls, buf: Buffer, off: int = 0, *, verify_csum: bool = True, check_options: bool = True) -> "IPv4View":
        """Validate like ``ip_rcv_core``; ``buf`` may extend past ``tot_len``.

        The view does not trim: callers use :attr:`end` (``off + tot_len``) as
        the end of the datagram, as ``pskb_trim_rcsum`` does.
        """
        avail = len(buf) - off
        if off < 0 or avail < 20:
            raise ParseError("IP_INHDR", "IPv4 header shorter than 20 bytes")
        b0 = buf[off]
        ihl = b0 & 0x0F
        if ihl < 5 or b0 >> 4 != 4:
            raise ParseError("IP_INHDR", f"version {b0 >> 4} ihl {ihl}")
        hl = ihl * 4
        if avail < hl:
            raise ParseError("IP_INHDR", "IPv4 header longer than the data")
        if verify_csum and ip_fast_csum(buf[off : off + hl]):
            raise ParseError("IP_CSUM", "bad IPv4 header checksum")
        tot = u16(buf, off + 2)
        if avail < tot:
            raise ParseError("PKT_TOO_SMALL", f"tot_len {tot} > {avail} bytes")
        if tot < hl:
            raise ParseError("IP_INHDR", f"tot_len {tot} < header length {hl}")
        if check_options and hl > 20:
            parse_ipv4_options(buf[off + 20 : off + hl])
        return cls(buf, off)

    # -- fields ---------------------------------------------------------
    @property
    def version(self) -> int:
        return self.buf[self.off] >> 4

    @property
    def ihl(self) -> int:
        return self.buf[self.off] & 0x0F

    @property
    def header_len(self) -> int:
        return (self.buf[self.off] & 0x0F) * 4

    @property
    def tos(self) -> int:
        return self.buf[self.off + 1]

    @tos.setter
    def tos(self, v: int) -> None:
        """Set TOS keeping the checksum valid, exactly as ``ipv4_change_dsfield``."""
        o = self.off
        self.check = ipv4_change_dsfield_csum(self.check, self.buf[o + 1], v)
        self.buf[o + 1] = v & 0xFF

    @property
    def dscp(self) -> int:
        return self.buf[self.off + 1] >> 2

    @property
    def ecn(self) -> int:
        return self.buf[self.off + 1] & 3

    total_length = be16_field(2)
    id = be16_field(4)

    @property
    def frag_field(self) -> int:
        """Raw 16-bit flags+fragment-offset field (``iph->frag_off``)."""
        return u16(self.buf, self.off + 6)

    @frag_field.setter
    def frag_field(self, v: int) -> None:
        put16(self.buf, self.off + 6, v)

    @property
    def df(self) -> bool:
        return bool(self.frag_field & IP_DF)

    @property
    def mf(self) -> bool:
        return bool(self.frag_field & IP_MF)

    @property
    def frag_offset(self) -> int:
        """Fragment offset in bytes."""
        return (self.frag_field & IP_OFFSET) << 3

    @property
    def is_fragment(self) -> bool:
        """``ip_is_fragment``: MF set or non-zero offset."""
        return bool(self.frag_field & (IP_MF | IP_OFFSET))

    @property
    def ttl(self) -> int:
        return self.buf[self.off + 8]

    @ttl.setter
    def ttl(self, v: int) -> None:
        """Raw store; use :meth:`decrease_ttl` on the forwarding path."""
        self.buf[self.off + 8] = v & 0xFF

    @property
    def protocol(self) -> int:
        return self.buf[self.off + 9]

    @protocol.setter
    def protocol(self, v: int) -> None:
        self.buf[self.off + 9] = v & 0xFF

    check = be16_field(10)

    @property
    def saddr(self) -> bytes:
        return bytes(self.buf[self.off + 12 : self.off + 16])

    @saddr.setter
    def saddr(self, v: bytes) -> None:
        self._set_addr(12, v)

    @property
    def daddr(self) -> bytes:
        return bytes(self.buf[self.off + 16 : self.off + 20])

    @daddr.setter
    def daddr(self, v: bytes) -> None:
        self._set_addr(16, v)

    def _set_addr(self, rel: int, v: bytes) -> None:
        """Rewrite an address with ``csum_replace4`` (as NAT does)."""
        if len(v) != 4:
            raise ValueError("IPv4 address must be 4 bytes")
        o = self.off + rel
        old = int.from_bytes(self.buf[o : o + 4], "big")
        self.buf[o : o + 4] = v
        self.check = csum_replace4(self.check, old, int.from_bytes(v, "big"))

    @property
    def options(self) -> bytes:
        return bytes(self.buf[self.off + 20 : self.off + self.header_len])

    def parsed_options(self) -> list[IPv4Option]:
        return parse_ipv4_options(self.buf[self.off + 20 : self.off + self.header_len])

    @property
    def payload_off(self) -> int:
        return self.off + self.header_len

    @property
    def end(self) -> int:
        """Offset one past the datagram (``off + tot_len``)."""
        return self.off + self.total_length

    def payload(self) -> memoryview:
        return memoryview(self.buf)[self.payload_off : self.end]

    # -- checksum -------------------------------------------------------
    def checksum_ok(self) -> bool:
        return ip_fast_csum(self.buf[self.off : self.off + self.header_len]) == 0

    def update_checksum(self) -> int:
        """``ip_send_check``: recompute and store the header checksum."""
        self.check = 0
        c = ip_fast_csum(self.buf[self.off : self.off + self.header_len])
        self.check = c
        return c

    def decrease_ttl(self) -> int:
        """``ip_decrease_ttl``: incremental checksum update, returns the new TTL."""
        self.check = ip_decrease_ttl_csum(self.check)
        t = (self.ttl - 1) & 0xFF
        self.buf[self.off + 8] = t
        return t


def build_ipv4(
    src: bytes,
    dst: bytes,
    proto: int,
    payload: bytes = b"",
    *,
    tos: int = 0,
    id: int = 0,
    df: bool = False,
    mf: bool = False,
    frag_offset: int = 0,
    ttl: int = 64,
    options: bytes | list[IPv4Option] = b"",
    total_length: int | None = None,
    check: int | None = None,
) -> bytes:
    """Build an IPv4 datagram, filling ``tot_len`` and the header checksum.

    ``frag_offset`` is in bytes (multiple of 8).  ``options`` may be raw bytes
    (padded with EOL) or a list of :class:`IPv4Option`.
    """
    if len(src) != 4 or len(dst) != 4:
        raise ValueError("IPv4 addresses must be 4 bytes")
    if frag_offset % 8 or not 0 <= frag_offset <= IP_OFFSET * 8:
        raise ValueError("fragment offset must be a multiple of 8 below 65536")
    opts = build_ipv4_options(options) if isinstance(options, list) else bytes(options) + bytes(-len(options) % 4)
    if len(opts) > 40:
        raise ValueError("IPv4 options exceed 40 bytes")
    hl = 20 + len(opts)
    tot = hl + len(payload) if total_length is None else total_length
    if tot > 0xFFFF:
        raise ValueError("IPv4 datagram longer than 65535 bytes")
    frag = (IP_DF if df else 0) | (IP_MF if mf else 0) | (frag_offset >> 3)
    hdr = bytearray(
        bytes(((4 << 4) | (hl // 4), tos & 0xFF))
        + tot.to_bytes(2, "big")
        + (id & 0xFFFF).to_bytes(2, "big")
        + frag.to_bytes(2, "big")
        + bytes((ttl & 0xFF, proto & 0xFF, 0, 0))
        + bytes(src)
        + bytes(dst)
        + opts
    )
    c = ip_fast_csum(hdr) if check is None else check
    hdr[10] = c >> 8
    hdr[11] = c & 0xFF
    return bytes(hdr) + bytes(payload)
