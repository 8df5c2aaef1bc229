"""Frame builders and a pcap writer for the example traffic, in plain ``struct``.

Why not netstack's own codecs: the examples' traffic is also what the kernel-differential
test (tests/kernel/test_examples.py) injects into the real kernel, and a comparison is only
worth something when the injected bytes come from a builder independent of the code under
test.  Header layouts: Ethernet II (IEEE 802.3 clause 3), IPv4 (RFC 791), UDP (RFC 768),
ICMP echo (RFC 792); checksums as RFC 1071.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

ETH_P_IP = 0x0800


@dataclass(frozen=True)
class Send:
    """Transmit ``frame`` out of ``dev`` in ``ns``, ``delay_s`` after the previous send."""

    ns: str
    dev: str
    frame: bytes
    delay_s: float = 0.0


def mac(text: str) -> bytes:
    return bytes(int(b, 16) for b in text.split(":"))


def ip4(text: str) -> bytes:
    return bytes(int(b) for b in text.split("."))


def csum(data: bytes) -> int:
    """RFC 1071 Internet checksum."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(dst: str, src: str, ethertype: int, payload: bytes) -> bytes:
    return mac(dst) + mac(src) + struct.pack("!H", ethertype) + payload


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, ident: int, ttl: int = 64,
         df: bool = True, tos: int = 0) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload), ident,
                      0x4000 if df else 0, ttl, proto, 0, ip4(src), ip4(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def udp4(src: str, dst: str, sport: int, dport: int, data: bytes, **kw: object) -> bytes:
    ulen = 8 + len(data)
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 17, ulen)
    seg = struct.pack("!HHHH", sport, dport, ulen, 0) + data
    c = csum(pseudo + seg) or 0xFFFF
    seg = seg[:6] + struct.pack("!H", c) + seg[8:]
    return ipv4(src, dst, 17, seg, **kw)  # type: ignore[arg-type]


def echo4(src: str, dst: str, echo_id: int, seq: int, data: bytes, **kw: object) -> bytes:
    msg = struct.pack("!BBHHH", 8, 0, 0, echo_id, seq) + data
    msg = msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]
    return ipv4(src, dst, 1, msg, **kw)  # type: ignore[arg-type]


def write_pcap(path: str, frames: list[tuple[int, bytes]]) -> None:
    """A classic libpcap file (nanosecond magic, LINKTYPE_ETHERNET) of (ts_ns, frame)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        for ts, fr in frames:
            f.write(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(fr), len(fr)))
            f.write(fr)


def pcaps_by_device(sends: list[Send], start_ns: int = 1_000_000_000
                    ) -> dict[tuple[str, str], list[tuple[int, bytes]]]:
    """Turn a send list into per-device (timestamp, frame) lists for ``--inject``.

    Consecutive sends get distinct timestamps (1 ms apart plus their delay) so that
    ``netstack run`` keeps their order across files, as the harness sends them one by one.
    """
    out: dict[tuple[str, str], list[tuple[int, bytes]]] = {}
    t = start_ns
    for s in sends:
        t += int(s.delay_s * 1e9) + 1_000_000
        out.setdefault((s.ns, s.dev), []).append((t, s.frame))
    return out
