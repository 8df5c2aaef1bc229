"""Shared pieces of the kernel-differential scenarios.

Frames are built with ``dpkt`` on purpose: the comparison is only worth
something if the bytes we inject come from a builder independent of the
netstack codecs under test.  The topology constants match the scenario
scripts in ``scenarios/`` (see the diagram at the top of ``ipv4_router.sh``).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path

import dpkt

from .oracle import Result, Send

SCENARIOS = Path(__file__).with_name("scenarios")

# Topology: h1:v1h --- v1r:r:v2r --- v2h:h2
H1, H2, R = "h1", "h2", "r"
V1H, V1R, V2H, V2R = "v1h", "v1r", "v2h", "v2r"
MAC_H1 = "02:00:00:00:01:01"
MAC_R1 = "02:00:00:00:01:fe"
MAC_H2 = "02:00:00:00:02:01"
MAC_R2 = "02:00:00:00:02:fe"
MAC_BCAST = "ff:ff:ff:ff:ff:ff"
IP_H1, IP_R1, IP_H2, IP_R2 = "10.0.1.1", "10.0.1.254", "10.0.2.1", "10.0.2.254"
IP6_H1, IP6_R1 = "2001:db8:1::1", "2001:db8:1::fe"
IP6_H2, IP6_R2 = "2001:db8:2::1", "2001:db8:2::fe"
HOST_CAPTURES: tuple[tuple[str, str], ...] = ((H1, V1H), (H2, V2H))


def script(*names: str) -> str:
    """``scenarios/<name>.sh`` files concatenated, in order, into one script.

    A scenario is a base topology plus small fragments that change one knob,
    so every variant is still one plain bash script (print ``case.script``
    to replay it by hand).
    """
    return "".join((SCENARIOS / f"{n}.sh").read_text() for n in names)


@dataclass(frozen=True)
class Case:
    """One scenario run: the same inputs go to the kernel and to netstack.

    ``ipv4_originators`` lists the DUT's IPv4 addresses: packets it sources
    carry a kernel-randomised IP ID (and so header checksum) that the
    comparison masks (see compare.py).
    """

    name: str
    script: str
    sends: tuple[Send, ...]
    captures: tuple[tuple[str, str], ...] = HOST_CAPTURES
    queries: tuple[str, ...] = ()
    settle: float = 0.15
    ipv4_originators: frozenset[str] = field(default_factory=frozenset)


# --------------------------------------------------------------------------
# builders


def mac(text: str) -> bytes:
    return bytes(int(b, 16) for b in text.split(":"))


def ip4(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, text)


def ip6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


def eth(dst: str, src: str, ethertype: int, payload: bytes) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(dst=mac(dst), src=mac(src), type=ethertype, data=payload))


def ipv4(src: str, dst: str, proto: int, payload: bytes | dpkt.Packet, *, ttl: int = 64,
         ident: int = 0x1234, df: bool = False) -> bytes:
    pkt = dpkt.ip.IP(src=ip4(src), dst=ip4(dst), p=proto, ttl=ttl, id=ident, data=payload)
    pkt.df = 1 if df else 0
    return bytes(pkt)


def udp4(src: str, dst: str, sport: int, dport: int, payload: bytes, **kw: object) -> bytes:
    u = dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload)
    return ipv4(src, dst, dpkt.ip.IP_PROTO_UDP, u, **kw)  # type: ignore[arg-type]


def icmp4_echo(src: str, dst: str, echo_id: int, seq: int, payload: bytes, **kw: object) -> bytes:
    echo = dpkt.icmp.ICMP.Echo(id=echo_id, seq=seq, data=payload)
    msg = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_ECHO, code=0, data=echo)
    return ipv4(src, dst, dpkt.ip.IP_PROTO_ICMP, msg, **kw)  # type: ignore[arg-type]


def eth_ip(dst_mac: str, src_mac: str, ip_packet: bytes) -> bytes:
    return eth(dst_mac, src_mac, dpkt.ethernet.ETH_TYPE_IP, ip_packet)


def arp(op: int, sha: str, spa: str, tha: str, tpa: str) -> bytes:
    """An Ethernet/IPv4 ARP body (RFC 826)."""
    a = dpkt.arp.ARP(hrd=1, pro=0x0800, hln=6, pln=4, op=op,
                     sha=mac(sha), spa=ip4(spa), tha=mac(tha), tpa=ip4(tpa))
    return bytes(a)


def eth_arp(dst_mac: str, src_mac: str, body: bytes) -> bytes:
    return eth(dst_mac, src_mac, dpkt.ethernet.ETH_TYPE_ARP, body)


def ipv6(src: str, dst: str, nxt: int, payload: bytes | dpkt.Packet, *, hlim: int = 64) -> bytes:
    data = payload
    pkt = dpkt.ip6.IP6(v=6, fc=0, flow=0, nxt=nxt, hlim=hlim, src=ip6(src), dst=ip6(dst),
                       plen=len(bytes(data)), data=data)
    return bytes(pkt)


def udp6(src: str, dst: str, sport: int, dport: int, payload: bytes, *, hlim: int = 64) -> bytes:
    u = dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload)
    return ipv6(src, dst, dpkt.ip.IP_PROTO_UDP, u, hlim=hlim)


def eth_ip6(dst_mac: str, src_mac: str, ip_packet: bytes) -> bytes:
    return eth(dst_mac, src_mac, dpkt.ethernet.ETH_TYPE_IP6, ip_packet)


def icmp6_na(src: str, dst: str, target: str, tlla: str, *, solicited: bool,
             override: bool, router: bool = False) -> bytes:
    """Neighbour Advertisement (RFC 4861 4.4) with a target link-layer option."""
    flags = (0x80 if router else 0) | (0x40 if solicited else 0) | (0x20 if override else 0)
    body = struct.pack("!B3x16s", flags, ip6(target)) + struct.pack("!BB6s", 2, 1, mac(tlla))
    msg = dpkt.icmp6.ICMP6(type=136, code=0, data=body)
    return ipv6(src, dst, 58, msg, hlim=255)


# --------------------------------------------------------------------------
# decoding helpers used by the pinned kernel assertions


def decode(frame: bytes) -> dpkt.ethernet.Ethernet:
    return dpkt.ethernet.Ethernet(frame)


def frames(result: Result, ns: str, dev: str) -> list[bytes]:
    return result.frames[(ns, dev)]


def icmp4_of(frame: bytes) -> tuple[dpkt.ip.IP, dpkt.icmp.ICMP]:
    """The IPv4 header and ICMP message of an Ethernet frame (asserting both)."""
    e = decode(frame)
    assert isinstance(e.data, dpkt.ip.IP), f"not IPv4: {frame.hex()}"
    assert isinstance(e.data.data, dpkt.icmp.ICMP), f"not ICMP: {frame.hex()}"
    return e.data, e.data.data


def icmp6_of(frame: bytes) -> tuple[dpkt.ip6.IP6, dpkt.icmp6.ICMP6]:
    e = decode(frame)
    assert isinstance(e.data, dpkt.ip6.IP6), f"not IPv6: {frame.hex()}"
    assert isinstance(e.data.data, dpkt.icmp6.ICMP6), f"not ICMPv6: {frame.hex()}"
    return e.data, e.data.data


def forwarded4(sent_ip: bytes, src_mac: str, dst_mac: str, hops: int = 1) -> bytes:
    """The frame a router emits for ``sent_ip`` after ``hops`` IPv4 hops.

    The TTL drops by one per hop and the header checksum is recomputed from
    scratch (equivalent to the incremental update of ip_decrease_ttl(),
    include/net/ip.h); everything else is kept, the IP ID included.
    """
    hdr_len = (sent_ip[0] & 0x0F) * 4
    hdr = bytearray(sent_ip[:hdr_len])
    hdr[8] -= hops
    hdr[10:12] = b"\0\0"
    hdr[10:12] = struct.pack("!H", dpkt.in_cksum(bytes(hdr)))
    return eth_ip(dst_mac, src_mac, bytes(hdr) + sent_ip[hdr_len:])


def forwarded6(sent_ip: bytes, src_mac: str, dst_mac: str) -> bytes:
    pkt = bytearray(sent_ip)
    pkt[7] -= 1
    return eth_ip6(dst_mac, src_mac, bytes(pkt))
