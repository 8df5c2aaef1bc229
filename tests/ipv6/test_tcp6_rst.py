"""TCP over IPv6 without sockets (net/ipv6/tcp_ipv6.c tcp_v6_rcv / tcp_v6_send_reset)."""
from __future__ import annotations

import struct

import dpkt
from hypothesis import given, settings, strategies as st

from netstack.ipv4.tcp_ipv4 import tcp_mib
from netstack.ipv6.addr import a6
from netstack.packet.skb import CHECKSUM_COMPLETE

from .helpers import MAC_A, MAC_B, capture, eth, host_router, inject

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10
H1, R1, R2, H2 = "2001:db8:1::1", "2001:db8:1::fe", "2001:db8:2::fe", "2001:db8:2::1"


def seg6(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
         payload: bytes = b"", *, bad: bool = False, tclass: int = 0, flow: int = 0,
         doff: int | None = None, nxt_hdrs: bytes = b"") -> bytes:
    off = 5 if doff is None else doff
    seg = bytearray(struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 1000,
                                0, 0) + payload)
    c = dpkt.in_cksum(a6(src) + a6(dst) + struct.pack("!IxxxB", len(seg), 6) + bytes(seg))
    seg[16:18] = struct.pack("!H", c ^ (0x2222 if bad else 0))
    first = (6 << 28) | (tclass << 20) | flow
    if nxt_hdrs:     # one destination-options header (PadN) before TCP
        body = bytes([6, 0, 1, 4, 0, 0, 0, 0]) + bytes(seg)
        return struct.pack("!IHBB", first, len(body), 60, 64) + a6(src) + a6(dst) + body
    return struct.pack("!IHBB", first, len(seg), 6, 64) + a6(src) + a6(dst) + bytes(seg)


def frame(p: bytes, dst_mac: bytes = MAC_B) -> bytes:
    return eth(dst_mac, MAC_A, p)


def rst6(f: bytes) -> tuple[dpkt.ip6.IP6, dpkt.tcp.TCP]:
    e = dpkt.ethernet.Ethernet(f)
    return e.data, e.data.data


def test_syn_gets_rst_ack_with_tclass_without_ecn():
    w, h, vh, r, *_ = host_router()
    got = capture(h, vh)
    inject(w, vh, [frame(seg6(H1, R1, 40000, 80, 1000, 0, SYN, b"hello", tclass=0x23,
                              flow=0x12345))])
    (f,) = got
    ip6, t = rst6(f)
    assert (ip6.src, ip6.dst, ip6.fc, ip6.flow, ip6.hlim, ip6.nxt) == (a6(R1), a6(H1), 0x20,
                                                                      0, 64, 6)
    assert (t.sport, t.dport, t.seq, t.ack, t.flags, t.win) == (80, 40000, 0, 1006,
                                                                RST | ACK, 0)
    assert dpkt.in_cksum(a6(R1) + a6(H1) + struct.pack("!IxxxB", 20, 6) + bytes(t)) == 0
    assert r.drops["NO_SOCKET"] == 1
    m = tcp_mib(r)
    assert (m["TcpInSegs"], m["TcpOutSegs"], m["TcpOutRsts"]) == (1, 1, 1)


def test_ack_rst_and_bad_checksum():
    w, h, vh, r, *_ = host_router()
    got = capture(h, vh)
    inject(w, vh, [frame(seg6(H1, R1, 1, 2, 5, 77, ACK)),
                   frame(seg6(H1, R1, 1, 2, 5, 0, RST | ACK)),
                   frame(seg6(H1, R1, 1, 2, 5, 0, SYN, bad=True)),
                   frame(seg6(H1, R1, 1, 2, 5, 0, SYN, b"z" * 300, bad=True))])
    (f,) = got
    _, t = rst6(f)
    assert (t.seq, t.ack, t.flags) == (77, 0, RST)
    assert r.drops["NO_SOCKET"] == 2 and r.drops["TCP_CSUM"] == 2
    m = tcp_mib(r)
    assert (m["TcpInSegs"], m["TcpInErrs"], m["TcpInCsumErrors"], m["TcpOutRsts"]) == (4, 2, 2, 1)


def test_counters_match_kernel_batch():
    """tests/kernel/test_tcp_rst_kernel.py SENDS6 → EXPECTED_COUNTERS6."""
    w, h, vh, r, vr, vr2, h2, vh2 = host_router()
    got = capture(h, vh)
    fwd = capture(h2, vh2)
    fw = seg6(H1, H2, 40005, 85, 10, 0, SYN, flow=0x54321)
    inject(w, vh, [frame(seg6(H1, R1, 1, 80, 1000, 0, SYN, b"hello")),
                   frame(seg6(H1, R1, 1, 81, 5000, 77, ACK)),
                   frame(seg6(H1, R1, 1, 82, 1, 0, RST | ACK)),
                   frame(seg6(H1, R1, 1, 83, 1, 0, SYN, bad=True)),
                   frame(seg6(H1, R1, 1, 84, 10, 0, FIN)), frame(fw),
                   frame(seg6(H1, "ff02::1", 1, 86, 10, 0, SYN), b"\x33\x33\0\0\0\x01")])
    m = tcp_mib(r)
    assert {k: m["Tcp" + k] for k in ("InSegs", "OutSegs", "InErrs", "OutRsts",
                                      "InCsumErrors")} == {
        "InSegs": 5, "OutSegs": 3, "InErrs": 1, "OutRsts": 3, "InCsumErrors": 1}
    assert len(got) == 3
    (f,) = fwd
    assert f[14 + 8:] == fw[8:] and f[14 + 7] == 63


def test_flowlabel_reflect_and_hop_limit():
    w, h, vh, r, vr, *_ = host_router()
    r.sysctl.set("net.ipv6.flowlabel_reflect", 2)
    r.sysctl.set("net.ipv6.conf.vr.hop_limit", 9)
    got = capture(h, vh)
    inject(w, vh, [frame(seg6(H1, R1, 1, 2, 5, 0, SYN, flow=0xABCDE))])
    ip6, _ = rst6(got[0])
    assert (ip6.flow, ip6.hlim) == (0xABCDE, 9)


def test_auto_flowlabel_when_enabled():
    w, h, vh, r, *_ = host_router()
    r.sysctl.set("net.ipv6.auto_flowlabels", 1)
    got = capture(h, vh)
    inject(w, vh, [frame(seg6(H1, R1, 1, 2, 5, 0, SYN)), frame(seg6(H1, R1, 1, 2, 5, 0, SYN))])
    a, b = (rst6(f)[0].flow for f in got)
    assert a == b and a != 0           # a hash of the flow: stable per flow


def test_extension_header_before_tcp_and_complete_checksum():
    """A destination-options header is pulled before tcp_v6_rcv; under CHECKSUM_COMPLETE
    its bytes leave the sum (skb_postpull_rcsum); either way (device sum accepted, or
    the software re-check of a long segment) a good segment is answered."""
    from netstack.packet.checksum import csum_partial
    from netstack.core.dev import dev_queue_xmit_list
    w, h, vh, r, *_ = host_router()
    got = capture(h, vh)
    inject(w, vh, [frame(seg6(H1, R1, 1, 2, 5, 0, SYN, nxt_hdrs=b"x"))])
    assert len(got) == 1
    raw = frame(seg6(H1, R1, 1, 3, 5, 0, SYN, b"q" * 200, nxt_hdrs=b"x"))
    p = w.new_packet(raw)
    p.dev = vh
    p.ip_summed = CHECKSUM_COMPLETE
    p.csum = csum_partial(raw[14:])
    dev_queue_xmit_list(vh, [p])
    w.run_until_idle()
    assert len(got) == 2 and r.drops.as_dict().get("TCP_CSUM", 0) == 0


def test_multicast_and_anycast_destinations_get_no_reset():
    w, h, vh, r, *_ = host_router()
    got = capture(h, vh)
    # subnet-router anycast 2001:db8:1:: (RTF_ANYCAST, not RTF_LOCAL)
    inject(w, vh, [frame(seg6(H1, "2001:db8:1::", 1, 2, 5, 0, SYN)),
                   frame(seg6(H1, "ff02::1", 1, 2, 5, 0, SYN))])
    assert got == []


def test_fuzz_segments_never_escape():
    w, h, vh, r, *_ = host_router()

    @settings(max_examples=60, deadline=None)
    @given(body=st.binary(min_size=0, max_size=80))
    def inner(body: bytes) -> None:
        ip6 = struct.pack("!IHBB", 6 << 28, len(body), 6, 64) + a6(H1) + a6(R1) + body
        inject(w, vh, [frame(ip6)])
    inner()
    assert tcp_mib(r)["TcpInSegs"] >= 1
