"""BOOTP/DHCP message codec (RFC 951, RFC 2131, options RFC 2132).

Why it exists: the wireless AP model's snooper learns a station's IPv4
address from the server's DHCPACK, as hostapd's ``src/ap/dhcp_snoop.c`` does
(it reads ``yiaddr``, ``chaddr`` and the message-type option 53).  The kernel
never parses DHCP, so malformed input here is reported with the generic
reasons the codecs share: a message shorter than the 236-byte fixed BOOTP part
is ``PKT_TOO_SMALL``; an option whose length byte is missing or runs past the
end of its field is ``HDR_TRUNC`` (a length field pointing past the data).

Layout (RFC 2131 §2, figure 1): op, htype, hlen, hops (1 byte each), xid (4),
secs (2), flags (2), ciaddr, yiaddr, siaddr, giaddr (4 each), chaddr (16),
sname (64), file (128), then the magic cookie 99.130.83.99 and options.
Options are code/length/value except PAD (0) and END (255), which are one
byte.  Option 52 (overload, RFC 2132 §9.3) says that ``file`` (1), ``sname``
(2) or both (3) carry more options; they are walked after the main field, in
the order RFC 2131 §4.1 gives (options, then file, then sname).  A message
without the cookie is plain BOOTP: ``options`` is None.  Options without a
closing END are accepted (hostapd's loop stops at the end of the data too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._view import Buffer, u16, u32
from .errors import ParseError

__all__ = [
    "BOOTP_FIXED_LEN",
    "DHCP_MAGIC",
    "DHCP_SERVER_PORT",
    "DHCP_CLIENT_PORT",
    "BOOTREQUEST",
    "BOOTREPLY",
    "DHCPDISCOVER",
    "DHCPOFFER",
    "DHCPREQUEST",
    "DHCPDECLINE",
    "DHCPACK",
    "DHCPNAK",
    "DHCPRELEASE",
    "DHCPINFORM",
    "OPT_PAD",
    "OPT_SUBNET_MASK",
    "OPT_ROUTER",
    "OPT_REQUESTED_IP",
    "OPT_LEASE_TIME",
    "OPT_OVERLOAD",
    "OPT_MSG_TYPE",
    "OPT_SERVER_ID",
    "OPT_END",
    "DhcpMessage",
    "parse_dhcp",
    "parse_dhcp_options",
    "build_dhcp_options",
    "build_dhcp",
]

BOOTP_FIXED_LEN = 236
DHCP_MAGIC = 0x63825363
DHCP_SERVER_PORT = 67
DHCP_CLIENT_PORT = 68
BOOTREQUEST = 1
BOOTREPLY = 2

# Message types (RFC 2132 §9.6)
DHCPDISCOVER = 1
DHCPOFFER = 2
DHCPREQUEST = 3
DHCPDECLINE = 4
DHCPACK = 5
DHCPNAK = 6
DHCPRELEASE = 7
DHCPINFORM = 8

# Option codes (RFC 2132)
OPT_PAD = 0
OPT_SUBNET_MASK = 1
OPT_ROUTER = 3
OPT_REQUESTED_IP = 50
OPT_LEASE_TIME = 51
OPT_OVERLOAD = 52
OPT_MSG_TYPE = 53
OPT_SERVER_ID = 54
OPT_END = 255


def parse_dhcp_options(buf: Buffer, start: int, end: int, what: str) -> list[tuple[int, bytes]]:
    """Walk one option field; PAD is skipped, END stops the walk.

    A code with no length byte, or a length running past ``end``, is
    ``HDR_TRUNC`` — where hostapd silently stops, we report it so that the
    caller counts a drop instead of learning from half an option.
    """
    out: list[tuple[int, bytes]] = []
    i = start
    while i < end:
        code = buf[i]
        if code == OPT_END:
            break
        if code == OPT_PAD:
            i += 1
            continue
        if i + 1 >= end:
            raise ParseError("HDR_TRUNC", f"dhcp {what}: option {code} has no length byte")
        n = buf[i + 1]
        if i + 2 + n > end:
            raise ParseError("HDR_TRUNC", f"dhcp {what}: option {code} length {n} past the end")
        out.append((code, bytes(buf[i + 2 : i + 2 + n])))
        i += 2 + n
    return out


def build_dhcp_options(options: list[tuple[int, bytes]], *, end: bool = True) -> bytes:
    """Encode options (value ≤ 255 bytes each; RFC 3396 splitting is the caller's)."""
    out = bytearray()
    for code, value in options:
        if code in (OPT_PAD, OPT_END):
            out.append(code)
            continue
        if len(value) > 255:
            raise ValueError(f"dhcp option {code}: value longer than 255 bytes")
        out += bytes((code, len(value))) + bytes(value)
    if end:
        out.append(OPT_END)
    return bytes(out)


def _ip(b: bytes) -> bytes:
    if len(b) != 4:
        raise ValueError("IPv4 address must be 4 bytes")
    return bytes(b)


@dataclass(slots=True)
class DhcpMessage:
    """A decoded BOOTP/DHCP message.

    ``options`` keeps the wire order, one ``(code, value)`` per option
    instance (RFC 3396 concatenation is done by :meth:`option`); None means
    plain BOOTP (no magic cookie).  Addresses are 4-byte ``bytes``.
    """

    op: int = BOOTREQUEST
    htype: int = 1
    hlen: int = 6
    hops: int = 0
    xid: int = 0
    secs: int = 0
    flags: int = 0
    ciaddr: bytes = bytes(4)
    yiaddr: bytes = bytes(4)
    siaddr: bytes = bytes(4)
    giaddr: bytes = bytes(4)
    chaddr: bytes = bytes(16)
    sname: bytes = bytes(64)
    file: bytes = bytes(128)
    options: list[tuple[int, bytes]] | None = field(default_factory=list)

    @property
    def client_mac(self) -> bytes:
        """The client hardware address (``chaddr`` cut to ``hlen``, at most 16)."""
        return self.chaddr[: min(self.hlen, 16)]

    def option(self, code: int) -> bytes | None:
        """The value of option ``code``; repeated instances are concatenated (RFC 3396)."""
        if self.options is None:
            return None
        parts = [v for c, v in self.options if c == code]
        return b"".join(parts) if parts else None

    @property
    def msg_type(self) -> int:
        """Option 53, or 0 when absent (plain BOOTP, as hostapd's ``msgtype = 0``)."""
        v = self.option(OPT_MSG_TYPE)
        return v[0] if v else 0

    @property
    def subnet_mask(self) -> bytes | None:
        v = self.option(OPT_SUBNET_MASK)
        return v if v is not None and len(v) == 4 else None

    @property
    def prefixlen(self) -> int:
        """Prefix length of the subnet-mask option (32 without one), counted as
        hostapd does: trailing zero bits are removed from 32."""
        m = self.subnet_mask
        if m is None:
            return 32
        v = u32(m, 0)
        if v == 0:
            return 0
        n = 32
        while not v & 1:
            v >>= 1
            n -= 1
        return n

    def build(self) -> bytes:
        """Encode; the options (if not None) follow the magic cookie and end with END."""
        if len(self.chaddr) > 16 or len(self.sname) > 64 or len(self.file) > 128:
            raise ValueError("chaddr/sname/file too long")
        fixed = (
            bytes((self.op & 0xFF, self.htype & 0xFF, self.hlen & 0xFF, self.hops & 0xFF))
            + (self.xid & 0xFFFFFFFF).to_bytes(4, "big")
            + (self.secs & 0xFFFF).to_bytes(2, "big")
            + (self.flags & 0xFFFF).to_bytes(2, "big")
            + _ip(self.ciaddr)
            + _ip(self.yiaddr)
            + _ip(self.siaddr)
            + _ip(self.giaddr)
            + self.chaddr.ljust(16, b"\0")
            + self.sname.ljust(64, b"\0")
            + self.file.ljust(128, b"\0")
        )
        if self.options is None:
            return fixed
        return fixed + DHCP_MAGIC.to_bytes(4, "big") + build_dhcp_options(self.options)


def parse_dhcp(buf: Buffer) -> DhcpMessage:
    """Decode a BOOTP/DHCP message (the UDP payload)."""
    n = len(buf)
    if n < BOOTP_FIXED_LEN:
        raise ParseError("PKT_TOO_SMALL", f"bootp needs {BOOTP_FIXED_LEN} bytes, have {n}")
    b = bytes(buf)
    m = DhcpMessage(
        op=b[0],
        htype=b[1],
        hlen=b[2],
        hops=b[3],
        xid=u32(b, 4),
        secs=u16(b, 8),
        flags=u16(b, 10),
        ciaddr=b[12:16],
        yiaddr=b[16:20],
        siaddr=b[20:24],
        giaddr=b[24:28],
        chaddr=b[28:44],
        sname=b[44:108],
        file=b[108:236],
        options=None,
    )
    if n < BOOTP_FIXED_LEN + 4 or u32(b, BOOTP_FIXED_LEN) != DHCP_MAGIC:
        return m
    opts = parse_dhcp_options(b, BOOTP_FIXED_LEN + 4, n, "options")
    ov = [v for c, v in opts if c == OPT_OVERLOAD]
    if ov:
        if len(ov[0]) != 1 or ov[0][0] not in (1, 2, 3):
            raise ParseError("HDR_TRUNC", f"dhcp overload option {ov[0].hex()}")
        if ov[0][0] & 1:
            opts += parse_dhcp_options(b, 108, 236, "file")
        if ov[0][0] & 2:
            opts += parse_dhcp_options(b, 44, 108, "sname")
    m.options = opts
    return m


def build_dhcp(msg: DhcpMessage) -> bytes:
    """Encode ``msg`` (same as ``msg.build()``)."""
    return msg.build()
