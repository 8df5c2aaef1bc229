"""Frames and object paths shared by the ELF loader and CLI tests."""
from __future__ import annotations

import struct
from pathlib import Path

PROGS = Path(__file__).parent


def obj(name: str) -> str:
    """Path of a committed test object (built by build.sh here)."""
    return str(PROGS / f"{name}.o")


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(proto: int = 17, *, ttl: int = 64, src: bytes = bytes([10, 0, 0, 1]), dst: bytes = bytes([10, 0, 0, 2]),
         sport: int = 1234, dport: int = 53, payload: bytes = b"hello world!", ihl: int = 5) -> bytes:
    """Ethernet + IPv4 (+ UDP/TCP with valid checksums for proto 17/6, raw payload otherwise)."""
    if proto == 17:
        l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        ck_off = 6
    elif proto == 6:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 1024, 0, 0) + payload
        ck_off = 16
    else:
        l4 = payload
        ck_off = -1
    if ck_off >= 0:
        pseudo = src + dst + struct.pack("!BBH", 0, proto, len(l4))
        ck = _csum(pseudo + l4) or 0xFFFF
        l4 = l4[:ck_off] + struct.pack("!H", ck) + l4[ck_off + 2:]
    opts = bytes(4 * (ihl - 5))
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(opts) + len(l4), 1, 0, ttl, proto, 0, src, dst) + opts
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    return b"\x00" * 6 + b"\x02" * 6 + b"\x08\x00" + ip + l4


def ipv6(nexthdr: int = 58, payload: bytes = b"\x80\x00\x00\x00" + bytes(12)) -> bytes:
    hdr = struct.pack("!IHBB16s16s", 6 << 28, len(payload), nexthdr, 64, b"\xfe\x80" + bytes(13) + b"\x01",
                      b"\xfe\x80" + bytes(13) + b"\x02")
    return b"\x33\x33\x00\x00\x00\x01" + b"\x02" * 6 + b"\x86\xdd" + hdr + payload


def arp() -> bytes:
    return b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + bytes.fromhex("0001080006040001") + b"\x02" * 6 + \
        bytes([10, 0, 0, 1]) + bytes(6) + bytes([10, 0, 0, 2])


FRAMES: dict[str, bytes] = {
    "udp53": ipv4(17),
    "udp_other": ipv4(17, dport=8000, sport=99, payload=bytes(range(40))),
    "tcp": ipv4(6, dport=80),
    "icmp": ipv4(1, payload=b"\x08\x00\xf7\xff\x00\x00\x00\x00"),
    "ttl1": ipv4(17, ttl=1),
    "ip_opts": ipv4(17, ihl=6),
    "magic": ipv4(17, dst=bytes([10, 0, 0, 0xEF])),
    "words": bytes.fromhex("34120000") + bytes(8) + b"\x08\x00" + bytes(60),
    "ipv6": ipv6(),
    "arp": arp(),
    "short": b"\x00" * 6 + b"\x02" * 6 + b"\x08\x00",
    "big": ipv4(17, payload=bytes(200)),
}
