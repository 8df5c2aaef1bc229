"""Frames for the macvtap tests: Ethernet + IPv4 + UDP/TCP with correct checksums, and
virtio_net headers."""
from __future__ import annotations

import struct

from netstack.packet.virtio_net import VirtioNetHdr


def mac(s: str) -> bytes:
    return bytes.fromhex(s.replace(":", ""))


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def ipv4(plen: int, proto: int, src: bytes, dst: bytes, ident: int = 0x1234) -> bytes:
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + plen, ident, 0x4000, 64, proto, 0, src, dst)
    c = ~_csum(h) & 0xFFFF
    return h[:10] + struct.pack("!H", c) + h[12:]


SRC = bytes([10, 0, 0, 1])
DST = bytes([10, 0, 0, 2])


def udp_frame(dst: str, src: str, n: int, partial: bool = False) -> bytes:
    """A UDP datagram of ``n`` payload bytes; ``partial``: the checksum field holds the
    pseudo-header sum only (what a guest with checksum offload sends)."""
    payload = bytes((i * 7 + 1) & 0xFF for i in range(n))
    ln = 8 + n
    pseudo = SRC + DST + struct.pack("!BBH", 0, 17, ln)
    u = struct.pack("!HHHH", 4000, 5000, ln, 0) + payload
    if partial:
        c = _csum(pseudo)
    else:
        c = ~_csum(pseudo + u) & 0xFFFF or 0xFFFF
    u = u[:6] + struct.pack("!H", c) + u[8:]
    return mac(dst) + mac(src) + b"\x08\x00" + ipv4(ln, 17, SRC, DST) + u


def tcp_frame(dst: str, src: str, n: int) -> bytes:
    """A TCP segment with a pseudo-header-seeded checksum (for NEEDS_CSUM / TSO)."""
    payload = bytes((i * 13 + 5) & 0xFF for i in range(n))
    ln = 20 + n
    pseudo = SRC + DST + struct.pack("!BBH", 0, 6, ln)
    t = struct.pack("!HHIIBBHHH", 4000, 80, 1000, 1, 0x50, 0x18, 65535, _csum(pseudo), 0)
    return mac(dst) + mac(src) + b"\x08\x00" + ipv4(ln, 6, SRC, DST) + t + payload


def vh(flags: int = 0, gso_type: int = 0, hdr_len: int = 0, gso_size: int = 0,
       csum_start: int = 0, csum_offset: int = 0, size: int = 10) -> bytes:
    return VirtioNetHdr(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset).pack(size)
