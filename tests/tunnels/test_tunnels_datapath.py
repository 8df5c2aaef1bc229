"""Geneve, GRE/gretap, ipip/sit and FOU/GUE on netstack: encapsulated bytes against frames
built independently from the RFC layouts (this kernel has none of these modules), the
receive checks that make the kernel drop, and remote checksum offload restore.
"""
from __future__ import annotations

import struct

import dpkt
import pytest

from tunnels.helpers import (Topo, ipv4_ok, mac, mask_outer4, outer4, udp4_csum_ok,
                             udp_hdr, udp_ip)

INNER = udp_ip("192.168.9.1", "192.168.9.2", 1000, 7777, b"tunnel payload", ttl=33)
INNER_MAC_DST = "02:00:00:00:09:02"
INNER_MAC_SRC = "02:00:00:00:09:01"


def gre_csum(gre_and_payload: bytes) -> int:
    return dpkt.in_cksum(gre_and_payload)


# ------------------------------------------------------------------------ GRE
GRE_SCRIPT = """\
ip -n a link add g0 type gre remote 10.1.0.2 local 10.1.0.1 {opts}
ip -n b link add g0 type gre remote 10.1.0.1 local 10.1.0.2 {opts}
ip -n a link set g0 up
ip -n b link set g0 up
ip -n b addr add 192.168.9.2/24 dev g0
"""


def test_gre_plain_encap_bytes() -> None:
    """RFC 2784: 4-byte header, protocol 0x0800; outer DF (pmtudisc), TTL inherited."""
    t = Topo(GRE_SCRIPT.format(opts=""))
    t.send_l3("a", "g0", INNER)
    assert len(t.wire) == 1
    want = outer4(47, b"\x00\x00\x08\x00" + INNER, ttl=33)
    assert mask_outer4(t.wire[0]) == want
    assert ipv4_ok(t.wire[0])


def test_gre_key_csum_seq_encap_bytes_and_sequence() -> None:
    """RFC 2890: C|K|S, checksum over GRE header + payload, key, sequence 0, 1, …"""
    t = Topo(GRE_SCRIPT.format(opts="key 42 csum seq ttl 9"))
    t.send_l3("a", "g0", INNER)
    t.send_l3("a", "g0", INNER)
    assert len(t.wire) == 2
    for seq, frame in enumerate(t.wire):
        body = bytearray(b"\xb0\x00\x08\x00" + b"\0\0\0\0" + struct.pack("!II", 42, seq) + INNER)
        body[4:6] = struct.pack("!H", gre_csum(bytes(body)))
        assert mask_outer4(frame) == outer4(47, bytes(body), ttl=9)
        assert dpkt.in_cksum(frame[34:]) == 0


def test_gretap_encap_bytes() -> None:
    """gretap: protocol 0x6558 (TEB) and the whole Ethernet frame."""
    t = Topo("ip -n a link add g1 type gretap remote 10.1.0.2 local 10.1.0.1 okey 7 ttl 5\n"
             "ip -n a link set g1 up\n")
    frame = mac(INNER_MAC_DST) + mac(INNER_MAC_SRC) + b"\x08\x00" + INNER
    t.send_l2("a", "g1", frame)
    assert len(t.wire) == 1
    want = outer4(47, b"\x20\x00\x65\x58" + struct.pack("!I", 7) + frame, ttl=5)
    assert mask_outer4(t.wire[0]) == want


def _gre_frame(gre: bytes, src: str = "10.1.0.1") -> bytes:
    f = bytearray(outer4(47, gre + INNER, src=src))
    hdr = bytes(f[14:34])
    f[24:26] = struct.pack("!H", dpkt.in_cksum(hdr))
    return bytes(f)


@pytest.mark.parametrize("opts,gre,delivered,counter", [
    ("", b"\x00\x00\x08\x00", 1, None),
    ("key 42", b"\x20\x00\x08\x00" + struct.pack("!I", 42), 1, None),
    ("key 42", b"\x20\x00\x08\x00" + struct.pack("!I", 43), 0, "icmp"),   # no tunnel: ICMP
    ("key 42", b"\x00\x00\x08\x00", 0, "icmp"),                           # key missing
    ("icsum", b"\x00\x00\x08\x00", 0, "rx_crc_errors"),                   # C expected
    ("", b"\x40\x00\x08\x00" + bytes(8), 0, None),                        # routing bit
    ("", b"\x00\x01\x08\x00" + bytes(8), 0, None),                        # version 1 (PPTP)
    ("iseq", b"\x00\x00\x08\x00", 0, "rx_fifo_errors"),                   # S expected
])
def test_gre_receive_checks(opts: str, gre: bytes, delivered: int, counter: str | None) -> None:
    t = Topo(GRE_SCRIPT.format(opts=opts))
    got = t.capture("b", "g0")
    back = t.capture("a", "va")
    t.inject(_gre_frame(gre))
    assert len(got) == delivered
    if delivered:
        assert got[0] == INNER
    g0 = t.dev("b", "g0")
    if counter == "icmp":
        icmp = [f for f in back if f[23] == 1]
        assert len(icmp) == 1 and icmp[0][34:36] == b"\x03\x03"   # port unreachable
    elif counter is not None:
        assert g0.extra_stats.get(counter) == 1 and g0.stats.rx_errors == 1
    if not delivered:
        assert sum(t.drops("b").values()) >= 1


def test_gre_sequence_numbers_must_advance() -> None:
    t = Topo(GRE_SCRIPT.format(opts="iseq"))
    got = t.capture("b", "g0")
    for seq in (5, 6, 4, 7):
        t.inject(_gre_frame(b"\x10\x00\x08\x00" + struct.pack("!I", seq)))
    assert len(got) == 3
    assert t.dev("b", "g0").extra_stats["rx_fifo_errors"] == 1


def test_gre_checksum_verified_on_receive() -> None:
    t = Topo(GRE_SCRIPT.format(opts="csum"))
    got = t.capture("b", "g0")
    body = bytearray(b"\x80\x00\x08\x00\0\0\0\0" + INNER)
    body[4:6] = struct.pack("!H", gre_csum(bytes(body)))
    t.inject(_gre_frame(bytes(body[:8])))
    assert len(got) == 1
    bad = bytearray(body[:8])
    bad[4] ^= 0x55
    t.inject(_gre_frame(bytes(bad)))
    assert len(got) == 1


# --------------------------------------------------------------------- Geneve
GENEVE_SCRIPT = """\
ip -n a link add gn0 address 02:00:00:00:09:01 type geneve id 77 remote 10.1.0.2 {opts}
ip -n b link add gn0 address 02:00:00:00:09:02 type geneve id 77 remote 10.1.0.1 {opts}
ip -n a link set gn0 up
ip -n b link set gn0 up
"""


def _frame() -> bytes:
    return mac(INNER_MAC_DST) + mac(INNER_MAC_SRC) + b"\x08\x00" + INNER


def test_geneve_encap_bytes() -> None:
    """RFC 8926 §3.4: Ver 0, no options, protocol 0x6558, VNI 77; UDP 6081, no checksum
    over IPv4 by default; the source port comes from the flow hash (masked)."""
    t = Topo(GENEVE_SCRIPT.format(opts="ttl 17"))
    t.send_l2("a", "gn0", _frame())
    assert len(t.wire) == 1
    geneve = b"\x00\x00\x65\x58" + struct.pack("!I", 77 << 8)
    want = outer4(17, udp_hdr(0, 6081, geneve + _frame()), ttl=17, df=False)
    assert mask_outer4(t.wire[0], sport=True) == want
    sport = struct.unpack("!H", t.wire[0][34:36])[0]
    assert 1 <= sport < 65535


def test_geneve_udpcsum_and_options() -> None:
    t = Topo(GENEVE_SCRIPT.format(opts="udpcsum"))
    from netstack.drivers.geneve import GeneveOpt
    t.dev("a", "gn0").tx_options = [GeneveOpt(0x0104, 0x01, b"\x00\x00\x00\x2a")]
    t.send_l2("a", "gn0", _frame())
    f = t.wire[0]
    assert udp4_csum_ok(f) and f[40:42] != b"\0\0"
    assert f[42:50] == b"\x02\x00\x65\x58" + struct.pack("!I", 77 << 8)
    assert f[50:58] == b"\x01\x04\x01\x01\x00\x00\x00\x2a"


def _geneve_in(geneve: bytes, src: str = "10.1.0.1", inner: bytes | None = None) -> bytes:
    payload = udp_hdr(40000, 6081, geneve + (inner if inner is not None else _frame()))
    f = bytearray(outer4(17, payload, src=src, df=False))
    f[24:26] = struct.pack("!H", dpkt.in_cksum(bytes(f[14:34])))
    return bytes(f)


@pytest.mark.parametrize("geneve,src,delivered", [
    (b"\x00\x00\x65\x58" + struct.pack("!I", 77 << 8), "10.1.0.1", 1),
    (b"\x01\x00\x65\x58" + struct.pack("!I", 77 << 8) + b"\x01\x04\x01\x00", "10.1.0.1", 1),
    (b"\x01\x40\x65\x58" + struct.pack("!I", 77 << 8) + b"\x01\x04\x81\x00", "10.1.0.1", 0),
    (b"\x40\x00\x65\x58" + struct.pack("!I", 77 << 8), "10.1.0.1", 0),     # version 1
    (b"\x00\x00\x65\x58" + struct.pack("!I", 78 << 8), "10.1.0.1", 0),     # other VNI
    (b"\x00\x00\x08\x00" + struct.pack("!I", 77 << 8), "10.1.0.1", 0),     # not TEB
    (b"\x3f\x00\x65\x58" + struct.pack("!I", 77 << 8), "10.1.0.1", 0),     # options past end
])
def test_geneve_receive_checks(geneve: bytes, src: str, delivered: int) -> None:
    t = Topo(GENEVE_SCRIPT.format(opts=""))
    got = t.capture("b", "gn0")
    t.inject(_geneve_in(geneve, src))
    assert len(got) == delivered
    if delivered:
        assert got[0] == _frame()
    else:
        assert sum(t.drops("b").values()) >= 1


# -------------------------------------------------------------- ipip / sit / FOU
def test_ipip_encap_bytes() -> None:
    t = Topo("ip -n a link add t0 type ipip remote 10.1.0.2 local 10.1.0.1 tos inherit\n"
             "ip -n a link set t0 up\n")
    inner = udp_ip("192.168.9.1", "192.168.9.2", 1, 2, b"x", ttl=12)
    inner = bytearray(inner)
    inner[1] = 0x2A  # DSCP 0x28 + ECT(0)
    inner[10:12] = b"\0\0"
    inner[10:12] = struct.pack("!H", dpkt.in_cksum(bytes(inner[:20])))
    t.send_l3("a", "t0", bytes(inner))
    assert mask_outer4(t.wire[0]) == outer4(4, bytes(inner), ttl=12, tos=0x2A)


def test_ipip_over_fou_bytes_and_receive() -> None:
    """FOU: UDP (fixed encap-sport) carrying the bare inner packet; the receiver resubmits
    it to protocol 4 and the ipip tunnel gets the inner packet."""
    script = """\
ip -n b fou add port 5555 ipproto 4
ip -n a link add t0 type ipip remote 10.1.0.2 local 10.1.0.1 encap fou encap-sport 4000 encap-dport 5555 encap-csum
ip -n b link add t0 type ipip remote 10.1.0.1 local 10.1.0.2 encap fou encap-sport 4000 encap-dport 5555
ip -n a link set t0 up
ip -n b link set t0 up
"""
    t = Topo(script)
    got = t.capture("b", "t0")
    t.send_l3("a", "t0", INNER)
    f = t.wire[0]
    assert mask_outer4(f, udp_csum=True) == outer4(17, udp_hdr(4000, 5555, INNER), ttl=33)
    assert udp4_csum_ok(f) and f[40:42] != b"\0\0"
    assert got == [INNER]
    out = t.st.command("ip -n b fou show")
    assert out.stdout == "port 5555 ipproto 4\n"


def _gue_in(gue: bytes, inner: bytes, port: int = 5556) -> bytes:
    f = bytearray(outer4(17, udp_hdr(4000, port, gue + inner), df=False))
    f[24:26] = struct.pack("!H", dpkt.in_cksum(bytes(f[14:34])))
    return bytes(f)


GUE_SCRIPT = """\
ip -n b fou add port 5556 gue
ip -n b link add t0 type ipip remote 10.1.0.1 local 10.1.0.2
ip -n b link set t0 up
"""


@pytest.mark.parametrize("gue,delivered", [
    (b"\x00\x04\x00\x00", 1),                          # v0, proto 4
    (b"", 1),                                          # v1: the inner IPv4 header itself
    (b"\x80\x04\x00\x00", 0),                          # version 2
    (b"\x20\x04\x00\x00", 0),                          # control message: dropped
    (b"\x00\x04\x80\x00", 0),                          # unknown flag
    (b"\x01\x04\x00\x01" + b"\x40\x00\x00\x00", 0),    # unknown private flag
    (b"\x1f\x04\x00\x00", 0),                          # hlen past the end
    (b"\x00\x04\x00\x01", 0),                          # P flag without the private word
])
def test_gue_receive_classification(gue: bytes, delivered: int) -> None:
    t = Topo(GUE_SCRIPT)
    got = t.capture("b", "t0")
    if gue == b"":
        # GUE version 1: the UDP payload is the IPv4 packet (first nibble 4 = 01|00…)
        t.inject(_gue_in(b"", INNER))
    else:
        t.inject(_gue_in(gue, INNER))
    assert len(got) == delivered
    if delivered:
        assert got[0] == INNER
    else:
        assert sum(t.drops("b").values()) >= 1


def _pseudo(ip: bytes) -> int:
    ulen = len(ip) - 20
    s = sum(struct.unpack("!6H", ip[12:20] + struct.pack("!BBH", 0, 17, ulen)))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _partial_inner() -> bytes:
    """INNER with its UDP checksum field holding the pseudo-header sum (a PARTIAL sender)."""
    b = bytearray(INNER)
    b[26:28] = struct.pack("!H", _pseudo(INNER))
    return bytes(b)


def test_gue_remcsum_tx_header() -> None:
    """draft-herbert-remotecsumoffload: private flag REMCSUM and {start, offset} relative
    to the GUE payload; the inner field keeps the pseudo sum; the outer UDP checksum is
    the packet's single computed checksum."""
    t = Topo("ip -n a link add t0 type ipip remote 10.1.0.2 local 10.1.0.1 encap gue "
             "encap-sport 4000 encap-dport 5556 encap-csum encap-remcsum\n"
             "ip -n a link set t0 up\n")
    t.send_l3("a", "t0", _partial_inner(), partial=(20, 6))
    f = t.wire[0]
    gue = f[42:54]
    assert gue == b"\x02\x04\x00\x01" + b"\x80\x00\x00\x00" + struct.pack("!HH", 20, 26)
    assert f[54:] == _partial_inner()
    assert udp4_csum_ok(f)


@pytest.mark.parametrize("nopartial", [False, True])
def test_gue_remcsum_rx_restores_the_checksum(nopartial: bool) -> None:
    """RCO receive equals a full recompute: default mode leaves CHECKSUM_PARTIAL that the
    capture finishes; nopartial writes the checksum into the packet at once."""
    t = Topo(GUE_SCRIPT)
    if nopartial:
        from netstack.ipv4.fou import FOU_F_REMCSUM_NOPARTIAL, fous
        fous(t.st.world.netns("b"))[0].flags |= FOU_F_REMCSUM_NOPARTIAL
    got = t.capture("b", "t0")
    gue = b"\x02\x04\x00\x01" + b"\x80\x00\x00\x00" + struct.pack("!HH", 20, 26)
    t.inject(_gue_in(gue, _partial_inner()))
    assert got == [INNER]


def test_sit_encap_and_receive() -> None:
    script = """\
ip -n a link add s0 type sit remote 10.1.0.2 local 10.1.0.1 ttl 20
ip -n b link add s0 type sit remote 10.1.0.1 local 10.1.0.2
ip -n a link set s0 up
ip -n b link set s0 up
"""
    t = Topo(script)
    got = t.capture("b", "s0")
    ip6 = bytes(dpkt.ip6.IP6(src=bytes(15) + b"\x01", dst=bytes(15) + b"\x02", nxt=59,
                             hlim=7, plen=0, data=b""))
    t.send_l3("a", "s0", ip6, protocol=0x86DD)
    assert mask_outer4(t.wire[0]) == outer4(41, ip6, ttl=20)
    assert got == [ip6]


def test_ipip_no_tunnel_sends_port_unreachable() -> None:
    t = Topo("ip -n b link add t0 type ipip remote 10.1.0.9 local 10.1.0.2\n"
             "ip -n b link set t0 up\n")
    back = t.capture("a", "va")
    f = bytearray(outer4(4, INNER, df=False))
    f[24:26] = struct.pack("!H", dpkt.in_cksum(bytes(f[14:34])))
    t.inject(bytes(f))
    icmp = [x for x in back if x[23] == 1]
    assert len(icmp) == 1 and icmp[0][34:36] == b"\x03\x03"


# -------------------------------------------------------------------- ip6gre
IP6GRE = """\
ip netns add c
ip netns add d
ip -n c link add vc address 02:00:00:00:00:0c type veth peer name vd address 02:00:00:00:00:0d netns d
ip -n c addr add 2001:db8::1/64 dev vc nodad
ip -n d addr add 2001:db8::2/64 dev vd nodad
ip -n c neigh add 2001:db8::2 lladdr 02:00:00:00:00:0d dev vc nud permanent
ip -n c link set vc up
ip -n d link set vd up
ip -n c link add t6 type {kind} remote 2001:db8::2 local 2001:db8::1 {opts}
ip -n d link add t6 type {kind} remote 2001:db8::1 local 2001:db8::2 {opts}
ip -n c link set t6 up
ip -n d link set t6 up
"""


def _ip6gre_topo(kind: str, opts: str):  # type: ignore[no-untyped-def]
    from netstack import Stack
    st = Stack()
    st.run_script(IP6GRE.format(kind=kind, opts=opts))
    from tunnels.helpers import wire_and_tunnel_taps
    wire, got = wire_and_tunnel_taps(st)
    return st, wire, got


def test_ip6gre_encap_limit_option_gre_fields_and_receive() -> None:
    """RFC 2473 §4.1.1 destination option (limit 4) between the IPv6 and GRE headers;
    hop limit 64; GRE K/C; the peer decapsulates."""
    from netstack.core.dev import dev_queue_xmit
    st, wire, got = _ip6gre_topo("ip6gre", "key 5 csum flowlabel 0x12345 tclass 0x20")
    pkt = st.world.new_packet(INNER)
    pkt.protocol = 0x0800
    dev_queue_xmit(pkt, st._dev("c", "t6"))
    st.world.run_until_idle()
    f = [x for x in wire if x[12:14] == b"\x86\xdd" and x[20] == 60][0]
    ip6 = f[14:54]
    assert ip6[:4] == struct.pack("!I", (6 << 28) | (0x20 << 20) | 0x12345)
    assert ip6[6:8] == b"\x3c\x40"
    assert f[54:62] == b"\x2f\x00\x04\x01\x04\x01\x01\x00"
    gre = f[62:74]
    assert gre[:4] == b"\xa0\x00\x08\x00" and gre[8:12] == struct.pack("!I", 5)
    assert dpkt.in_cksum(f[62:]) == 0
    assert f[74:] == INNER
    assert got == [INNER]


def test_ip6gretap_without_encap_limit() -> None:
    from netstack.core.dev import dev_queue_xmit
    st, wire, got = _ip6gre_topo("ip6gretap", "encaplimit none hoplimit 9")
    frame = _frame()
    pkt = st.world.new_packet(frame)
    pkt.protocol = 0x0800
    dev_queue_xmit(pkt, st._dev("c", "t6"))
    st.world.run_until_idle()
    f = [x for x in wire if x[12:14] == b"\x86\xdd" and x[20] == 47][0]
    assert f[21] == 9 and f[54:58] == b"\x00\x00\x65\x58" and f[58:] == frame
    assert got == [frame]
    assert st._dev("d", "t6").mtu == 1500 - 40 - 4 - 14



def test_fou_checksum_without_local_uses_a_zero_source() -> None:
    """ip_tunnel_xmit builds the FOU header before the route lookup, so without ``local``
    the outer UDP pseudo header has 0.0.0.0 as its source: on a wire the receiver counts a
    checksum error (a kernel quirk kept on purpose)."""
    script = """\
ip -n b fou add port 5555 ipproto 4
ip -n a link add t0 type ipip remote 10.1.0.2 encap fou encap-sport 4000 encap-dport 5555 encap-csum
ip -n b link add t0 type ipip remote 10.1.0.1 local 10.1.0.2
ip -n a link set t0 up
ip -n b link set t0 up
"""
    t = Topo(script)
    got = t.capture("b", "t0")
    t.send_l3("a", "t0", INNER)
    assert not udp4_csum_ok(t.wire[0])
    u = t.wire[0][34:]
    ph = bytes(4) + t.wire[0][30:34] + struct.pack("!BBH", 0, 17, len(u))
    assert dpkt.in_cksum(ph + u) == 0
    # over the veth the packet stays CHECKSUM_PARTIAL and is trusted (as on the kernel)
    assert got == [INNER]
    # the same bytes from a raw sender (as a real wire would carry them) are a bad checksum
    t.inject(t.wire[0])
    assert got == [INNER] and t.drops("b").get("UDP_CSUM") == 1


@pytest.mark.parametrize("opts,zero", [("", False), ("udp6zerocsumtx udp6zerocsumrx", True)])
def test_geneve_ipv6_underlay_checksum_default_on(opts: str, zero: bool) -> None:
    """Over IPv6 Geneve checksums the outer UDP by default (geneve_nl2info sets
    TUNNEL_CSUM for a remote6); ``udp6zerocsumtx`` sends 0; the peer decapsulates both."""
    from netstack import Stack
    from netstack.core.dev import dev_queue_xmit
    st = Stack()
    st.run_script(IP6GRE.replace("type {kind} remote 2001:db8::2 local 2001:db8::1 {opts}",
                                 "address 02:00:00:00:09:01 type geneve id 5 remote 2001:db8::2 {opts}")
                  .replace("type {kind} remote 2001:db8::1 local 2001:db8::2 {opts}",
                           "address 02:00:00:00:09:02 type geneve id 5 remote 2001:db8::1 {opts}")
                  .format(opts=opts))
    from tunnels.helpers import wire_and_tunnel_taps
    wire, got = wire_and_tunnel_taps(st)
    pkt = st.world.new_packet(_frame())
    pkt.protocol = 0x0800
    dev_queue_xmit(pkt, st._dev("c", "t6"))
    st.world.run_until_idle()
    f = [x for x in wire if x[12:14] == b"\x86\xdd" and x[20] == 17][0]
    u = f[54:]
    assert u[2:4] == struct.pack("!H", 6081)
    if zero:
        assert u[6:8] == b"\0\0"
    else:
        ph = f[22:54] + struct.pack("!IxxxB", len(u), 17)
        assert u[6:8] != b"\0\0" and dpkt.in_cksum(ph + u) == 0
    assert got == [_frame()]
