"""TCP receive without sockets (net/ipv4/tcp_ipv4.c tcp_v4_rcv / tcp_v4_send_reset).

Segments are built with struct and dpkt.in_cksum (independent of netstack's codecs).
The counter values of the mixed batch are the ones the kernel showed for the same
segments (tests/kernel/test_tcp_rst_kernel.py, EXPECTED_COUNTERS4).
"""
from __future__ import annotations

import struct

import dpkt
from hypothesis import given, settings, strategies as st
from test_ip_env import Env, from_h1, ip, ipv4

from netstack.core.dev import dev_queue_xmit
from netstack.ipv4.tcp_ipv4 import reset_header, tcp_parse_auth_options, tcp_socket
from netstack.errors import NotSupported
from netstack.packet.skb import CHECKSUM_UNNECESSARY

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10
H1, R1, R2, H2 = "10.0.1.1", "10.0.1.254", "10.0.2.254", "10.0.2.1"


def tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
        payload: bytes = b"", *, options: bytes = b"", doff: int | None = None,
        bad: bool = False, tos: int = 0, ident: int = 0x99) -> bytes:
    hl = 20 + len(options)
    off = hl // 4 if doff is None else doff
    seg = bytearray(struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 1024,
                                0, 0) + options + payload)
    c = dpkt.in_cksum(ip(src) + ip(dst) + struct.pack("!BBH", 0, 6, len(seg)) + bytes(seg))
    seg[16:18] = struct.pack("!H", c ^ (0x1111 if bad else 0))
    return ipv4(src, dst, 6, bytes(seg), tos=tos, ident=ident)


def rst_of(frame: bytes) -> tuple[dpkt.ip.IP, dpkt.tcp.TCP]:
    e = dpkt.ethernet.Ethernet(frame)
    assert isinstance(e.data.data, dpkt.tcp.TCP)
    return e.data, e.data.data


def test_syn_to_closed_port_gets_rst_ack(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(tcp(H1, R1, 40000, 80, 1000, 0, SYN, b"abc", tos=0x13))])
    (f,) = env.out["v1r"]
    ip4, t = rst_of(f)
    assert (ip4.src, ip4.dst, ip4.tos, ip4.df, ip4.id, ip4.ttl, len(ip4)) == (
        ip(R1), ip(H1), 0x10, 1, 0, 64, 40)
    assert (t.sport, t.dport, t.seq, t.ack, t.flags, t.win, t.off) == (
        80, 40000, 0, 1004, RST | ACK, 0, 5)
    # the checksums are right (dpkt recomputes nothing when parsing)
    assert dpkt.in_cksum(bytes(ip4)[:20]) == 0
    assert dpkt.in_cksum(ip(R1) + ip(H1) + struct.pack("!BBH", 0, 6, 20) + bytes(t)) == 0
    assert env.drops == {"NO_SOCKET": 1}
    m = env.mib
    assert (m["TcpInSegs"], m["TcpOutSegs"], m["TcpOutRsts"], m["IpInDelivers"]) == (1, 1, 1, 1)


def test_ack_segment_reset_takes_seq_from_ack(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(tcp(H1, R1, 1, 2, 5, 0xDEADBEEF, ACK | PSH, b"data"))])
    _, t = rst_of(env.out["v1r"][0])
    assert (t.seq, t.ack, t.flags) == (0xDEADBEEF, 0, RST)


def test_syn_fin_both_count_and_seq_wraps(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(tcp(H1, R1, 1, 2, 0xFFFFFFFF, 0, SYN | FIN, b"xyz"))])
    _, t = rst_of(env.out["v1r"][0])
    assert (t.seq, t.ack) == (0, 4)


def test_rst_is_never_answered(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(tcp(H1, R1, 1, 2, 5, 0, RST)),
                from_h1(tcp(H1, R1, 1, 2, 5, 9, RST | ACK))])
    assert env.out["v1r"] == []
    assert env.drops == {"NO_SOCKET": 2}
    assert env.mib["TcpOutRsts"] == 0 and env.mib["TcpInSegs"] == 2


def test_bad_checksum_short_and_long_segments(monkeypatch):
    """≤ 76 bytes: found by skb_checksum_init; longer: by tcp_checksum_complete at
    no_tcp_socket.  Both: TcpInCsumErrors + TcpInErrs, TCP_CSUM, no reset."""
    env = Env(monkeypatch)
    env.inject([from_h1(tcp(H1, R1, 1, 2, 5, 0, SYN, bad=True)),
                from_h1(tcp(H1, R1, 1, 2, 5, 0, SYN, b"L" * 200, bad=True))])
    assert env.out["v1r"] == []
    assert env.drops == {"TCP_CSUM": 2}
    m = env.mib
    assert (m["TcpInCsumErrors"], m["TcpInErrs"], m["TcpInSegs"], m["TcpOutRsts"]) == (2, 2, 2, 0)


def test_checksum_unnecessary_is_trusted(monkeypatch):
    env = Env(monkeypatch)
    p = env.world.new_packet(from_h1(tcp(H1, R1, 1, 2, 5, 0, SYN, bad=True)))
    p.ip_summed = CHECKSUM_UNNECESSARY
    dev_queue_xmit(p, env.v1h)
    env.world.run_until_idle()
    assert len(env.out["v1r"]) == 1 and env.drops == {"NO_SOCKET": 1}


def test_header_length_checks(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(tcp(H1, R1, 1, 2, 5, 0, SYN, doff=4)),          # doff < 5
                from_h1(ipv4(H1, R1, 6, bytes(10))),                        # < 20 bytes
                from_h1(tcp(H1, R1, 1, 2, 5, 0, SYN, doff=15))])            # doff*4 > len
    assert env.out["v1r"] == []
    assert env.drops == {"PKT_TOO_SMALL": 1, "NOT_SPECIFIED": 2}
    assert env.mib["TcpInErrs"] == 1 and env.mib["TcpInSegs"] == 3


def test_mixed_batch_counters_match_kernel(monkeypatch):
    """The v4 sends of tests/kernel/test_tcp_rst_kernel.py minus the forwarded one."""
    env = Env(monkeypatch)
    md5 = bytes([19, 18]) + bytes(16) + b"\x01\x01"
    env.inject([from_h1(x) for x in (
        tcp(H1, R1, 1, 80, 1000, 0, SYN), tcp(H1, R1, 1, 81, 5, 9, ACK | PSH, b"data"),
        tcp(H1, R1, 1, 82, 1, 0, RST), tcp(H1, R1, 1, 83, 1, 0, SYN, bad=True),
        tcp(H1, R1, 1, 84, 1, 0, SYN, doff=4), tcp(H1, R1, 1, 85, 1, 0, SYN | FIN, b"x"),
        tcp(H1, R1, 1, 86, 7, 0, SYN, options=md5), ipv4(H1, R1, 6, bytes(10)),
        tcp(H1, "10.0.1.255", 1, 88, 1, 0, SYN), tcp(H1, R2, 1, 89, 100, 0, SYN))])
    m = env.mib
    got = {k: m["Tcp" + k] for k in ("InSegs", "OutSegs", "InErrs", "OutRsts", "InCsumErrors")}
    # the kernel counted 11 InSegs / 5 resets with one Record Route segment more
    assert got == {"InSegs": 10, "OutSegs": 4, "InErrs": 2, "OutRsts": 4, "InCsumErrors": 1}
    assert len(env.out["v1r"]) == 4


def test_broadcast_destination_gets_no_reset(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(tcp(H1, "10.0.1.255", 1, 2, 5, 0, SYN))])
    assert env.out["v1r"] == [] and env.drops == {"NO_SOCKET": 1}
    # a broadcast MAC makes it PACKET_BROADCAST: dropped before TcpInSegs
    env.inject([from_h1(tcp(H1, R1, 1, 2, 5, 0, SYN), dst_mac=b"\xff" * 6)])
    assert env.out["v1r"] == [] and env.mib["TcpInSegs"] == 1


def test_reply_source_is_the_segment_destination(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(tcp(H1, R2, 1, 2, 5, 0, SYN))])
    ip4, _ = rst_of(env.out["v1r"][0])
    assert ip4.src == ip(R2)


def test_forwarding_is_unaffected(monkeypatch):
    env = Env(monkeypatch)
    seg = tcp(H1, H2, 1, 2, 5, 0, SYN)
    env.inject([from_h1(seg)])
    (f,) = env.out["v2r"]
    assert f[14 + 20:] == seg[20:] and env.out["v1r"] == []
    assert env.mib["TcpInSegs"] == 0


def test_ttl_from_sysctl_and_fwmark_reflect(monkeypatch):
    from netstack.netfilter.core import (NF_ACCEPT, NF_INET_PRE_ROUTING, NFPROTO_IPV4,
                                         NfHookOps, nf_register_net_hook)
    env = Env(monkeypatch)
    env.r.sysctl.set("net.ipv4.ip_default_ttl", 33)

    def mark(priv, pkt, state):
        pkt.mark = 0x42
        return NF_ACCEPT
    nf_register_net_hook(env.r, NfHookOps(mark, NFPROTO_IPV4, NF_INET_PRE_ROUTING, 0))
    seen = []
    env.r.add_tx_tap(env.v1r, lambda p: seen.append(p.mark))
    env.inject([from_h1(tcp(H1, R1, 1, 2, 5, 0, SYN))])
    env.r.sysctl.set("net.ipv4.fwmark_reflect", 1)
    env.inject([from_h1(tcp(H1, R1, 1, 2, 5, 0, SYN))])
    assert seen == [0, 0x42]
    assert rst_of(env.out["v1r"][0])[0].ttl == 33


def test_md5_option_and_bad_options_get_no_reset(monkeypatch):
    env = Env(monkeypatch)
    md5 = bytes([19, 18]) + bytes(16) + b"\x01\x01"
    bad = bytes([8, 30]) + bytes(18)                       # opsize beyond the options
    short_bad = bytes([8, 30, 0, 0])                       # < 18 bytes: never parsed
    env.inject([from_h1(tcp(H1, R1, 1, 2, 5, 0, SYN, options=md5)),
                from_h1(tcp(H1, R1, 1, 2, 5, 0, SYN, options=bad)),
                from_h1(tcp(H1, R1, 1, 2, 5, 0, SYN, options=short_bad))])
    assert len(env.out["v1r"]) == 1
    assert env.drops == {"NO_SOCKET": 3} and env.mib["TcpOutRsts"] == 1


def test_trace_names_the_reset(monkeypatch):
    env = Env(monkeypatch)
    from netstack.core.trace import Tracer
    lines: list[str] = []
    p = env.world.new_packet(from_h1(tcp(H1, R1, 1, 2, 5, 0, SYN)))
    p.trace = Tracer(lambda: 0, lines.append)
    dev_queue_xmit(p, env.v1h)
    env.world.run_until_idle()
    text = "\n".join(lines)
    assert "tcp_send_reset" in text and "NO_SOCKET" in text and "not supported" not in text


def test_tcp_sockets_not_supported():
    try:
        tcp_socket()
    except NotSupported as e:
        assert "TCP sockets" in str(e)
    else:
        raise AssertionError("tcp_socket must raise NotSupported")


@given(seq=st.integers(0, 2**32 - 1), ack=st.integers(0, 2**32 - 1), flags=st.integers(0, 255),
       plen=st.integers(0, 1400), doff=st.integers(5, 15))
def test_reset_header_rfc9293(seq, ack, flags, plen, doff):
    th = struct.pack("!HHIIBBHHH", 1, 2, seq, ack, doff << 4, flags, 0, 0, 0)
    s, a, f = reset_header(th, 0, doff * 4 + plen)
    if flags & ACK:
        assert (s, a, f) == (ack, 0, RST)
    else:
        seg_len = plen + bool(flags & SYN) + bool(flags & FIN)
        assert (s, a, f) == (0, (seq + seg_len) % 2**32, RST | ACK)


@given(opts=st.binary(min_size=0, max_size=40))
def test_auth_option_parser_never_raises(opts):
    opts = opts[: len(opts) // 4 * 4]
    th = struct.pack("!HHIIBBHHH", 1, 2, 0, 0, (5 + len(opts) // 4) << 4, 2, 0, 0, 0) + opts
    ok, md5 = tcp_parse_auth_options(th, 0)
    assert isinstance(ok, bool) and isinstance(md5, bool)


def test_fuzz_segments_never_escape(monkeypatch):
    env = Env(monkeypatch)

    @settings(max_examples=60, deadline=None)
    @given(body=st.binary(min_size=0, max_size=80))
    def inner(body: bytes) -> None:
        env.inject([from_h1(ipv4(H1, R1, 6, body))])
    inner()
    assert env.mib["TcpInSegs"] >= 1
