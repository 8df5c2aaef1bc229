"""ip6tnl (net/ipv6/ip6_tunnel.c, RFC 2473) and FOU/GUE over IPv6 (net/ipv6/fou6.c) on
netstack: the kernel here has no ip6_tunnel/fou modules, so frames are checked against
layouts built with struct/dpkt, and the parser against the machine's ``ip`` (iproute2
parses before it asks the kernel)."""
from __future__ import annotations

import json
import struct

import dpkt
import pytest

from tunnels.helpers import udp_ip, wire_tap

INNER4 = udp_ip("192.168.9.1", "192.168.9.2", 1000, 7777, b"tunnel payload", ttl=33)
A6 = bytes.fromhex("20010db8000000000000000000000001")
B6 = bytes.fromhex("20010db8000000000000000000000002")

TOPO = """\
ip netns add c
ip netns add d
ip -n c link add vc address 02:00:00:00:00:0c type veth peer name vd address 02:00:00:00:00:0d netns d
ip -n c addr add 2001:db8::1/64 dev vc nodad
ip -n d addr add 2001:db8::2/64 dev vd nodad
ip -n c neigh add 2001:db8::2 lladdr 02:00:00:00:00:0d dev vc nud permanent
ip -n d neigh add 2001:db8::1 lladdr 02:00:00:00:00:0c dev vd nud permanent
ip -n c link set vc up
ip -n d link set vd up
ip -n c link add t6 type ip6tnl remote 2001:db8::2 local 2001:db8::1 {opts}
ip -n d link add t6 type ip6tnl remote 2001:db8::1 local 2001:db8::2 {dopts}
ip -n c link set t6 up
ip -n d link set t6 up
{extra}"""


def inner6(src: str = "2001:db8:9::1", dst: str = "2001:db8:9::2", tclass: int = 0,
           label: int = 0, hlim: int = 50, dstopt: bytes | None = None) -> bytes:
    import ipaddress
    payload = struct.pack("!HHHH", 1000, 7777, 8 + 4, 0) + b"data"
    nxt = 17
    if dstopt is not None:
        payload = bytes((17,)) + dstopt + payload
        nxt = 60
    hdr = struct.pack("!IHBB", (6 << 28) | (tclass << 20) | label, len(payload), nxt, hlim)
    return hdr + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + payload


class T:
    def __init__(self, opts: str = "", dopts: str | None = None, extra: str = "") -> None:
        from netstack import Stack
        self.st = Stack()
        self.st.run_script(TOPO.format(opts=opts, dopts=opts if dopts is None else dopts,
                                       extra=extra))
        self.wire: list[bytes] = []
        self.back: list[bytes] = []
        self.got: list[bytes] = []
        wire_tap(self.st, "d", "vd", self.wire)
        wire_tap(self.st, "c", "vc", self.back)
        wire_tap(self.st, "d", "t6", self.got, finish=False)

    def send(self, ip: bytes, proto: int = 0x0800, dev: str = "t6", ns: str = "c") -> None:
        from netstack.core.dev import dev_queue_xmit
        pkt = self.st.world.new_packet(ip)
        pkt.protocol = proto
        dev_queue_xmit(pkt, self.st._dev(ns, dev))
        self.st.world.run_until_idle()

    def tunnelled(self) -> list[bytes]:
        return [f for f in self.wire if f[12:14] == b"\x86\xdd" and f[20] in (60, 4, 41, 17)]


def test_ipip6_with_encap_limit_tclass_and_receive() -> None:
    """IPv4 in IPv6: destination option with the limit, then protocol 4; traffic class
    from ``tclass`` with the inner ECN (ECT(0)) copied; the peer decapsulates."""
    t = T("mode ipip6 encaplimit 3 tclass 0x20 flowlabel 0x12345 hoplimit 17")
    ect = bytearray(INNER4)
    ect[1] = 0x02
    ect[10:12] = b"\0\0"
    ect[10:12] = struct.pack("!H", dpkt.in_cksum(bytes(ect[:20])))
    t.send(bytes(ect))
    f = t.tunnelled()[0]
    ip6 = f[14:54]
    assert ip6[:4] == struct.pack("!I", (6 << 28) | (0x22 << 20) | 0x12345)
    assert struct.unpack("!H", ip6[4:6])[0] == 8 + len(INNER4)
    assert ip6[6:8] == bytes((60, 17)) and ip6[8:24] == A6 and ip6[24:40] == B6
    assert f[54:62] == bytes((4, 0, 4, 1, 3, 1, 1, 0))
    assert f[62:] == bytes(ect)
    assert t.got == [bytes(ect)]
    d6 = t.st._dev("d", "t6")
    assert (d6.stats.rx_packets, d6.stats.rx_bytes) == (1, len(INNER4))


def test_ip6ip6_inherit_and_inner_limit_decrement() -> None:
    """``tclass inherit flowlabel inherit hoplimit inherit``: the outer header copies the
    inner class (CE sent as ECT(0)), label and hop limit; an inner limit option of 2
    makes the outer one 1; mode ip6ip6 refuses IPv4."""
    t = T("mode ip6ip6 tclass inherit flowlabel inherit hoplimit inherit")
    opt = bytes((0, 4, 1, 2, 1, 1, 0))       # hdr ext len 0, TEL=2, PadN
    pkt = inner6(tclass=0xB7, label=0xABCDE, hlim=50, dstopt=opt)
    t.send(pkt, 0x86DD)
    f = t.tunnelled()[0]
    assert f[14:18] == struct.pack("!I", (6 << 28) | (0xB6 << 20) | 0xABCDE)
    assert f[21] == 50
    assert f[54:62] == bytes((41, 0, 4, 1, 1, 1, 1, 0))
    assert f[62:] == pkt
    t.send(INNER4)
    c6 = t.st._dev("c", "t6")
    assert (c6.stats.tx_errors, c6.stats.tx_dropped) == (1, 1)


def test_inner_encap_limit_zero_is_a_parameter_problem() -> None:
    t = T("mode ip6ip6")
    pkt = inner6(src="2001:db8::1", dstopt=bytes((0, 4, 1, 0, 1, 1, 0)))
    t.send(pkt, 0x86DD)
    assert t.tunnelled() == []
    assert t.st._dev("c", "t6").stats.tx_errors == 1


def test_encaplimit_none_mtu_and_too_big() -> None:
    """MTU = 1500 − 40 (no option); a larger IPv4 packet is refused with ICMP
    fragmentation needed (mtu 1460) — "even if DF is not set"."""
    t = T("encaplimit none", extra="ip -n c addr add 10.7.0.1/24 dev vc\n")
    c6 = t.st._dev("c", "t6")
    assert c6.mtu == 1460
    big = udp_ip("10.7.0.1", "192.168.9.2", 1, 2, b"x" * 1500, df=False)
    t.send(big)
    assert t.tunnelled() == []
    assert (c6.stats.tx_errors, c6.stats.tx_dropped) == (1, 1)
    t.send(INNER4)
    f = t.tunnelled()[0]
    assert f[20] == 4 and f[54:] == INNER4


def test_default_mtu_flags_and_automatic_names() -> None:
    t = T("", extra="ip -n c link add type ip6tnl remote 2001:db8::5 local 2001:db8::1\n")
    c6 = t.st._dev("c", "t6")
    assert c6.mtu == 1452 and c6.type == 769
    assert "ip6tnl1" in t.st.world.netns("c").devices
    out = json.loads(t.st.command("ip -n c -d -j link show t6").stdout)[0]
    assert out["flags"] == ["POINTOPOINT", "NOARP", "UP", "LOWER_UP"]
    assert out["linkinfo"]["info_data"] == {
        "proto": "any", "remote": "2001:db8::2", "local": "2001:db8::1", "ttl": 64,
        "encap_limit": 4, "tclass": "0x00", "flowlabel": "0x00000"}


def test_no_local_cannot_transmit_and_no_tunnel_is_port_unreachable() -> None:
    """ip6_tnl_xmit_ctl: without ``local`` the capability is per packet and the any
    source never qualifies (tx_carrier_errors); a packet for no tunnel gets ICMPv6 port
    unreachable back (tunnel6_rcv)."""
    t = T("", extra="ip -n c link add t9 type ip6tnl remote 2001:db8::2\n"
                     "ip -n c link set t9 up\n"
                     "ip -n d neigh add 2001:db8::7 lladdr 02:00:00:00:00:0c dev vd "
                     "nud permanent\n")
    t.send(INNER4, dev="t9")
    t9 = t.st._dev("c", "t9")
    assert (t9.stats.tx_carrier_errors, t9.stats.tx_errors) == (1, 1)
    # an ip6ip6 packet from an unknown source to d
    import ipaddress
    outer = struct.pack("!IHBB", 6 << 28, len(INNER4), 4, 64) + \
        ipaddress.IPv6Address("2001:db8::7").packed + B6 + INNER4
    frame = bytes.fromhex("02000000000d02000000000c86dd") + outer
    t.st.inject("c", "vc", [frame])
    t.st.world.run_until_idle()
    icmp = [f for f in t.back if f[12:14] == b"\x86\xdd" and f[20] == 58]
    assert icmp and icmp[0][54:56] == b"\x01\x04"
    assert t.got == []


def test_dscp_inherit_copies_outer_dscp_on_receive() -> None:
    t = T("tclass 0xb8", dopts="dscp inherit")
    t.send(INNER4)
    assert len(t.got) == 1
    got = t.got[0]
    assert got[1] == 0xB8 and dpkt.in_cksum(got[:20]) == 0
    assert got[2:] [:0] == b"" and got[20:] == INNER4[20:]


def test_fou_over_ipv6_both_ways() -> None:
    """``encap fou`` on ip6tnl: UDP under the IPv6 header (after the encapsulation limit
    option), checksum on by default (encap-csum6); ``ip fou add … -6`` on the peer
    resubmits the payload to next header 4."""
    extra = "ip -n d fou add port 5555 ipproto 4 -6\n"
    t = T("mode ipip6 encap fou encap-sport 4000 encap-dport 5555", extra=extra)
    t.send(INNER4)
    f = t.tunnelled()[0]
    assert f[54:62] == bytes((17, 0, 4, 1, 4, 1, 1, 0))
    udp = f[62:70]
    assert struct.unpack("!HHH", udp[:6]) == (4000, 5555, 8 + len(INNER4))
    ph = A6 + B6 + struct.pack("!IxxxB", 8 + len(INNER4), 17)
    assert dpkt.in_cksum(ph + f[62:]) == 0
    assert f[70:] == INNER4
    assert t.got == [INNER4]


def test_gue_over_ipv6_and_fou_show() -> None:
    extra = "ip -n d fou add port 6666 gue -6\n"
    t = T("mode ip6ip6 encap gue encap-sport 4001 encap-dport 6666 noencap-udp6-csum "
          "encaplimit none", extra=extra)
    pkt = inner6()
    t.send(pkt, 0x86DD)
    f = t.tunnelled()[0]
    assert f[20] == 17 and struct.unpack("!HHHH", f[54:62])[3] == 0
    assert f[62:66] == bytes((0, 41, 0, 0)) and f[66:] == pkt
    assert t.got == [pkt]
    r = t.st.command("ip -n d fou show")
    assert r.stdout == "port 6666 gue -6\n"
    r = t.st.command("ip -n d -j fou show")
    assert json.loads(r.stdout) == [{"port": 6666, "gue": None, "family": "inet6"}]


def test_changelink_replaces_everything_and_eexist() -> None:
    """``ip6_tnl_changelink`` → ``ip6_tnl_update``: all parameters are replaced (iproute2
    sends the old ones back, except the encapsulation which restarts at none); another
    tunnel's endpoints → EEXIST."""
    t = T("encap fou encap-dport 5555 tclass 0x10",
          extra="ip -n c link add t8 type ip6tnl remote 2001:db8::8 local 2001:db8::1\n")
    r = t.st.command("ip -n c link set t6 type ip6tnl hoplimit 9 encaplimit none")
    assert r.rc == 0, r.stderr
    d = json.loads(t.st.command("ip -n c -d -j link show t6").stdout)[0]
    info = d["linkinfo"]["info_data"]
    assert info["ttl"] == 9 and info["ip6_tnl_f_ign_encap_limit"] and "encap" not in info
    assert info["tclass"] == "0x10" and d["mtu"] == 1460
    r = t.st.command("ip -n c link set t6 type ip6tnl remote 2001:db8::8")
    assert (r.rc, r.stderr) == (2, "RTNETLINK answers: File exists\n")


PARSE_ERRORS = ["mode foo", "hoplimit 300", "hoplimit x", "tclass 0x1ff", "tclass x",
                "flowlabel 0x100000", "flowlabel x", "dscp foo", "bogus", "help",
                "dev nope", "remote 1.2.3.4", "local x", "encap bad", "encap-sport x",
                "encap-dport x", "fwmark x", "remote"]


@pytest.mark.parametrize("opts", PARSE_ERRORS)
def test_ip6tnl_parser_matches_iproute2(kernel_ok: None, opts: str) -> None:
    cmd = "ip -n {ns} link add t6 type ip6tnl " + opts
    from tunnels.helpers import assert_cli_matches_kernel
    assert_cli_matches_kernel(cmd, "tun2-p")


def test_ip6gre_over_fou6_both_ways() -> None:
    """``encap fou`` on ip6gre (``ip6_tnl_encap`` → fou6): IPv6 / dest-option / UDP /
    GRE; ``ip fou add port P ipproto 47 -6`` on the peer resubmits to ip6gre; MTU =
    1500 − 40 − 8 (UDP) − 4 (GRE) − 8 (option)."""
    script = TOPO.replace("type ip6tnl", "type ip6gre")
    from netstack import Stack
    st = Stack()
    st.run_script(script.format(opts="encap fou encap-sport 4002 encap-dport 5555",
                                dopts="", extra="ip -n d fou add port 5555 ipproto 47 -6\n"))
    assert st._dev("c", "t6").mtu == 1500 - 40 - 8 - 4 - 8
    from tunnels.helpers import wire_and_tunnel_taps
    wire, got = wire_and_tunnel_taps(st)
    from netstack.core.dev import dev_queue_xmit
    pkt = st.world.new_packet(INNER4)
    pkt.protocol = 0x0800
    dev_queue_xmit(pkt, st._dev("c", "t6"))
    st.world.run_until_idle()
    f = [x for x in wire if x[12:14] == b"\x86\xdd" and x[20] == 60][0]
    assert f[54:62] == bytes((17, 0, 4, 1, 4, 1, 1, 0))
    assert struct.unpack("!HH", f[62:66]) == (4002, 5555)
    ulen = struct.unpack("!H", f[66:68])[0]
    assert dpkt.in_cksum(A6 + B6 + struct.pack("!IxxxB", ulen, 17) + f[62:]) == 0
    assert f[70:74] == b"\x00\x00\x08\x00" and f[74:] == INNER4
    assert got == [INNER4]
    d = json.loads(st.command("ip -n c -d -j link show t6").stdout)[0]
    assert d["linkinfo"]["info_data"]["encap"] == {
        "type": "fou", "sport": 4002, "dport": 5555, "csum": False, "csum6": True,
        "remcsum": False}
