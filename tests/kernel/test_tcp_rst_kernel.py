"""TCP to a closed port on router r: resets and silent drops, kernel vs netstack.

Kernel paths: tcp_v4_rcv / tcp_v6_rcv ``no_tcp_socket`` → tcp_v4_send_reset
(ip_send_unicast_reply) / tcp_v6_send_reset (tcp_v6_send_response), Linux 6.18.
All segments of one family go in one case (one topology set-up); the order of the
captured frames is the order of the sends that were answered.  IPv4 resets leave with
DF and ID 0 (the control socket is IP_PMTUDISC_DO), so nothing is masked.
"""
from __future__ import annotations

import struct

import dpkt

from .cases import (H1, H2, IP6_H1, IP6_H2, IP6_R1, IP_H1, IP_H2, IP_R1, IP_R2, MAC_H1, MAC_H2, MAC_R1,
                    MAC_R2, V1H, V2H, Case, eth_ip, eth_ip6, forwarded4, forwarded6, frames,
                    ip4, ip6, ipv4, script)
from .conftest import Kernel
from .oracle import Send

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10


def tcp_bytes(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
              payload: bytes = b"", *, options: bytes = b"", doff: int | None = None,
              bad_csum: bool = False) -> bytes:
    """A TCP segment built with struct, checksum from dpkt.in_cksum (RFC 9293 §3.1)."""
    hl = 20 + len(options)
    off = (hl // 4) if doff is None else doff
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 8192, 0, 0)
    seg = bytearray(hdr + options + payload)
    if len(src) == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(seg))
    else:
        pseudo = src + dst + struct.pack("!IxxxB", len(seg), 6)
    c = dpkt.in_cksum(pseudo + bytes(seg))
    if bad_csum:
        c ^= 0x5A5A
    seg[16:18] = struct.pack("!H", c)
    return bytes(seg)


def tcp4(src: str, dst: str, *a: object, tos: int = 0, ident: int = 0x7777, **kw: object) -> bytes:
    seg = tcp_bytes(ip4(src), ip4(dst), *a, **kw)  # type: ignore[arg-type]
    raw = bytearray(ipv4(src, dst, 6, seg, ident=ident))
    raw[1] = tos
    raw[10:12] = b"\0\0"
    raw[10:12] = struct.pack("!H", dpkt.in_cksum(bytes(raw[:20])))
    return bytes(raw)


def tcp6(src: str, dst: str, *a: object, tclass: int = 0, flow: int = 0, **kw: object) -> bytes:
    seg = tcp_bytes(ip6(src), ip6(dst), *a, **kw)  # type: ignore[arg-type]
    first = (6 << 28) | (tclass << 20) | flow
    return struct.pack("!IHBB", first, len(seg), 6, 64) + ip6(src) + ip6(dst) + seg


MD5 = bytes([19, 18]) + bytes(16) + b"\x01\x01"   # MD5 signature option + NOP NOP

V4_SYN = tcp4(IP_H1, IP_R1, 40000, 80, 1000, 0, SYN, tos=0x13)
V4_ACK = tcp4(IP_H1, IP_R1, 40001, 81, 5000, 0xDEADBEEF, ACK | PSH, b"data")
V4_RST = tcp4(IP_H1, IP_R1, 40002, 82, 1, 0, RST)
V4_BAD = tcp4(IP_H1, IP_R1, 40003, 83, 1, 0, SYN, bad_csum=True)
V4_TRUNC = tcp4(IP_H1, IP_R1, 40004, 84, 1, 0, SYN, doff=4)
V4_SYNFIN = tcp4(IP_H1, IP_R1, 40005, 85, 0xFFFFFFFF, 0, SYN | FIN, b"xyz")
V4_MD5 = tcp4(IP_H1, IP_R1, 40006, 86, 7, 0, SYN, options=MD5)
V4_FWD = tcp4(IP_H1, IP_H2, 40007, 87, 9, 0, SYN)
V4_SHORT = ipv4(IP_H1, IP_R1, 6, b"\x9c\x40\x00\x50" + bytes(6))   # 10 bytes of "TCP"
V4_BCAST = tcp4(IP_H1, "10.0.1.255", 40008, 88, 1, 0, SYN)       # RTN_BROADCAST: no reset
V4_OTHER = tcp4(IP_H1, IP_R2, 40009, 89, 100, 0, SYN)             # r's other address
# Record Route (RFC 791 §3.1) with room for two addresses: the reset echoes it with
# r's address recorded (__ip_options_echo / ip_options_build)


def _with_rr(dg: bytes) -> bytes:
    opt = bytes([7, 11, 4]) + bytes(8) + b"\x00"
    b = bytearray(dg[:20] + opt + dg[20:])
    b[0] = 0x40 | (len(opt) + 20) // 4
    b[2:4] = struct.pack("!H", len(b))
    b[10:12] = b"\0\0"
    b[10:12] = struct.pack("!H", dpkt.in_cksum(bytes(b[:20 + len(opt)])))
    return bytes(b)


V4_RR = _with_rr(tcp4(IP_H1, IP_R1, 40010, 90, 5, 0, SYN))

SENDS4 = tuple(Send(H1, V1H, eth_ip(MAC_R1, MAC_H1, p)) for p in
               (V4_SYN, V4_ACK, V4_RST, V4_BAD, V4_TRUNC, V4_SYNFIN, V4_MD5, V4_FWD, V4_SHORT,
                V4_BCAST, V4_OTHER, V4_RR))
CASE4 = Case(name="tcp_rst_v4", script=script("ipv4_router"), sends=SENDS4)
COUNT4 = Case(name="tcp_rst_v4_counters", script=script("ipv4_router"), sends=SENDS4,
              queries=("ip netns exec r cat /proc/net/snmp",))


def _tcp_of(frame: bytes) -> tuple[dpkt.ip.IP, dpkt.tcp.TCP]:
    e = dpkt.ethernet.Ethernet(frame)
    assert isinstance(e.data, dpkt.ip.IP) and isinstance(e.data.data, dpkt.tcp.TCP)
    return e.data, e.data.data


def check4(res) -> None:
    assert frames(res, H2, V2H) == [forwarded4(V4_FWD, MAC_R2, MAC_H2)]
    syn, ack, synfin, other, rr = frames(res, H1, V1H)
    ip, t = _tcp_of(syn)
    # reply from the segment's destination, TOS without ECN bits, DF, ID 0, TTL 64
    assert (ip.src, ip.dst, ip.tos, ip.df, ip.id, ip.ttl) == (ip4(IP_R1), ip4(IP_H1), 0x10,
                                                              1, 0, 64)
    assert (t.sport, t.dport, t.seq, t.ack, t.flags, t.win) == (80, 40000, 0, 1001,
                                                                RST | ACK, 0)
    _, t = _tcp_of(ack)
    assert (t.seq, t.ack, t.flags) == (0xDEADBEEF, 0, RST)
    _, t = _tcp_of(synfin)
    assert (t.seq, t.ack, t.flags) == (0, (0xFFFFFFFF + 2 + 3) & 0xFFFFFFFF, RST | ACK)
    ip, t = _tcp_of(other)
    assert (ip.src, t.sport, t.ack) == (ip4(IP_R2), 89, 101)
    ip, t = _tcp_of(rr)
    # r recorded itself on receive (ip_options_compile), the reset records it again
    assert ip.opts == bytes([7, 11, 12]) + ip4(IP_R1) * 2 + b"\x00"
    assert (t.sport, t.ack) == (90, 6)


def test_tcp_rst_v4_kernel(kernel: Kernel) -> None:
    check4(kernel.run(CASE4))


def test_tcp_rst_v4_netstack_matches(kernel: Kernel) -> None:
    check4(kernel.compare_netstack(CASE4))


def snmp_tcp(text: str) -> dict[str, int]:
    """The ``Tcp:`` group of /proc/net/snmp as a dict."""
    rows = [line.split()[1:] for line in text.splitlines() if line.startswith("Tcp:")]
    return dict(zip(rows[0], map(int, rows[1])))


def test_tcp_rst_v4_kernel_counters(kernel: Kernel) -> None:
    """The counters tests/ipv4/test_tcp_rst.py pins for netstack: InSegs counts every
    segment that reached tcp_v4_rcv (not the forwarded one), InErrs the doff<5 and the
    bad checksum, OutRsts the five resets."""
    tcp = snmp_tcp(kernel.run(COUNT4).queries["ip netns exec r cat /proc/net/snmp"])
    assert {k: tcp[k] for k in ("InSegs", "OutSegs", "InErrs", "OutRsts", "InCsumErrors")} \
        == EXPECTED_COUNTERS4


EXPECTED_COUNTERS4 = {"InSegs": 11, "OutSegs": 5, "InErrs": 2, "OutRsts": 5,
                      "InCsumErrors": 1}

# ---------------------------------------------------------------- IPv6

V6_SYN = tcp6(IP6_H1, IP6_R1, 40000, 80, 1000, 0, SYN, b"hello", tclass=0x23, flow=0x12345)
V6_ACK = tcp6(IP6_H1, IP6_R1, 40001, 81, 5000, 77, ACK)
V6_RST = tcp6(IP6_H1, IP6_R1, 40002, 82, 1, 0, RST | ACK)
V6_BAD = tcp6(IP6_H1, IP6_R1, 40003, 83, 1, 0, SYN, bad_csum=True)
V6_FIN = tcp6(IP6_H1, IP6_R1, 40004, 84, 10, 0, FIN)
V6_FWD = tcp6(IP6_H1, IP6_H2, 40005, 85, 10, 0, SYN, flow=0x54321)
V6_MCAST = tcp6(IP6_H1, "ff02::1", 40006, 86, 10, 0, SYN)
SENDS6 = tuple(Send(H1, V1H, eth_ip6(MAC_R1, MAC_H1, p)) for p in
               (V6_SYN, V6_ACK, V6_RST, V6_BAD, V6_FIN, V6_FWD)) + (
    Send(H1, V1H, eth_ip6("33:33:00:00:00:01", MAC_H1, V6_MCAST)),)
CASE6 = Case(name="tcp_rst_v6", script=script("ipv6_router"), sends=SENDS6)
COUNT6 = Case(name="tcp_rst_v6_counters", script=script("ipv6_router"), sends=SENDS6,
              queries=("ip netns exec r cat /proc/net/snmp",))
# flowlabel_reflect bit 2 (FLOWLABEL_REFLECT_TCP_RESET) and the device hop_limit
REFLECT6 = Case(name="tcp_rst_v6_reflect",
                script=script("ipv6_router")
                + "ip netns exec r sysctl -w net.ipv6.flowlabel_reflect=2\n"
                + "ip netns exec r sysctl -w net.ipv6.conf.v1r.hop_limit=9\n",
                sends=(Send(H1, V1H, eth_ip6(MAC_R1, MAC_H1, V6_SYN)),))


def check6(res) -> None:
    assert frames(res, H2, V2H) == [forwarded6(V6_FWD, MAC_R2, MAC_H2)]
    syn, ack, fin = frames(res, H1, V1H)
    e = dpkt.ethernet.Ethernet(syn)
    ip6h, t = e.data, e.data.data
    # traffic class without ECN bits, no reflected label (auto_flowlabels=0 here)
    assert (ip6h.src, ip6h.dst, ip6h.fc, ip6h.flow, ip6h.hlim) == (ip6(IP6_R1), ip6(IP6_H1),
                                                                   0x20, 0, 64)
    assert (t.sport, t.dport, t.seq, t.ack, t.flags, t.win) == (80, 40000, 0, 1006,
                                                                RST | ACK, 0)
    t = dpkt.ethernet.Ethernet(ack).data.data
    assert (t.seq, t.ack, t.flags) == (77, 0, RST)
    t = dpkt.ethernet.Ethernet(fin).data.data
    assert (t.seq, t.ack, t.flags) == (0, 11, RST | ACK)


def test_tcp_rst_v6_kernel(kernel: Kernel) -> None:
    check6(kernel.run(CASE6))


def test_tcp_rst_v6_netstack_matches(kernel: Kernel) -> None:
    check6(kernel.compare_netstack(CASE6))


def test_tcp_rst_v6_kernel_counters(kernel: Kernel) -> None:
    """Tcp counters are one MIB for both families: 6 segments reach tcp_v6_rcv (not the
    forwarded one; the multicast one is PACKET_MULTICAST and dropped before InSegs)."""
    tcp = snmp_tcp(kernel.run(COUNT6).queries["ip netns exec r cat /proc/net/snmp"])
    assert {k: tcp[k] for k in ("InSegs", "OutSegs", "InErrs", "OutRsts", "InCsumErrors")} \
        == EXPECTED_COUNTERS6


EXPECTED_COUNTERS6 = {"InSegs": 5, "OutSegs": 3, "InErrs": 1, "OutRsts": 3,
                      "InCsumErrors": 1}


def check_reflect6(res) -> None:
    (f,) = frames(res, H1, V1H)
    ip6h = dpkt.ethernet.Ethernet(f).data
    assert (ip6h.flow, ip6h.hlim) == (0x12345, 9)


def test_tcp_rst_v6_reflect_kernel(kernel: Kernel) -> None:
    check_reflect6(kernel.run(REFLECT6))


def test_tcp_rst_v6_reflect_netstack_matches(kernel: Kernel) -> None:
    check_reflect6(kernel.compare_netstack(REFLECT6))
