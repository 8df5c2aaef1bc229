"""IPv4 receive and forwarding: ip_rcv_core validation order and drop reasons, the route
hint, regrouping and batching, drop_unicast_in_l2_multicast, ip_forward's TTL/MTU rules
and ip_decrease_ttl (net/ipv4/ip_input.c, ip_forward.c)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_ip_env import (MAC_H1, MAC_H2, MAC_R1, MAC_R2, Env, eth, from_h1, ip, ipv4, udp4)

from netstack.ipv4.ip_forward import ip_decrease_ttl, rt_tos2priority
from netstack.packet.checksum import ip_decrease_ttl_csum, ip_fast_csum


def fwd(src: str = "10.0.1.1", dst: str = "10.0.2.1", **kw) -> bytes:
    return udp4(src, dst, 1000, 2000, kw.pop("data", b"payload"), **kw)


def test_forward_rewrites_ttl_checksum_and_macs(monkeypatch):
    env = Env(monkeypatch)
    dg = fwd(ident=0x1111, ttl=7)
    env.inject([from_h1(dg)])
    (out,) = env.out["v2r"]
    assert out[:6] == MAC_H2 and out[6:12] == MAC_R2 and out[12:14] == b"\x08\x00"
    ip_out = out[14:]
    assert ip_out[8] == 6
    assert ip_fast_csum(ip_out[:20]) == 0
    assert ip_out[:8] == dg[:8] and ip_out[9:10] == dg[9:10] and ip_out[12:] == dg[12:]
    assert env.mib["IpForwDatagrams"] == 1 and env.mib["IpOutTransmits"] == 1
    assert env.drops == {}


def test_ethernet_padding_is_trimmed(monkeypatch):
    env = Env(monkeypatch)
    dg = fwd(data=b"x")
    env.inject([from_h1(dg + b"\0" * 20)])
    (out,) = env.out["v2r"]
    assert len(out) == 14 + len(dg)


def test_otherhost_dropped_before_counting(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(fwd(), dst_mac=bytes.fromhex("020000009999"))])
    assert env.drops == {"OTHERHOST": 1}
    assert env.mib["IpInReceives"] == 0


def test_header_validation_reasons_and_counters(monkeypatch):
    env = Env(monkeypatch)
    good = fwd()
    bad_csum = bytearray(good)
    bad_csum[10] ^= 0xFF
    env.inject([
        from_h1(good[:19]),                                     # < 20 bytes
        from_h1(ipv4("10.0.1.1", "10.0.2.1", 17, b"x" * 8, version=6)),
        from_h1(ipv4("10.0.1.1", "10.0.2.1", 17, b"x" * 8, ihl=4)),
        from_h1(bytes(bad_csum)),
        from_h1(ipv4("10.0.1.1", "10.0.2.1", 17, b"x" * 8, tot_len=200)),
        from_h1(ipv4("10.0.1.1", "10.0.2.1", 17, b"x" * 8, tot_len=16)),
    ])
    assert env.drops == {"PKT_TOO_SMALL": 1, "IP_CSUM": 1, "IP_INHDR": 4}
    assert env.mib["IpInHdrErrors"] == 5
    assert env.mib["IpExtInCsumErrors"] == 1
    assert env.mib["IpExtInTruncatedPkts"] == 1
    assert env.mib["IpInReceives"] == 6
    assert env.out["v2r"] == []


def test_route_hint_counts_lookups(monkeypatch):
    env = Env(monkeypatch)
    a = [from_h1(fwd(dst="10.0.2.1", ident=i)) for i in range(4)]
    b = [from_h1(fwd(dst="10.0.2.7", ident=10 + i)) for i in range(2)]
    tos = [from_h1(fwd(dst="10.0.2.1", ident=20, tos=0x10))]
    env.inject(a + b + a[:1] + tos)
    ipv4net = env.r.ipv4
    # lookups: a[0], b[0], a again (hint is b's), tos differs -> lookup
    assert ipv4net.route_lookups == 4
    assert ipv4net.route_hints == 4
    assert env.cp.inputs["r"] == 4


def test_forwarded_sublist_is_one_batch_in_order(monkeypatch):
    env = Env(monkeypatch)
    before = env.v2r.doorbells
    frames = [from_h1(fwd(ident=i)) for i in range(10)]
    env.inject(frames)
    assert env.v2r.doorbells == before + 1
    ids = [int.from_bytes(f[14 + 4:14 + 6], "big") for f in env.out["v2r"]]
    assert ids == list(range(10))


def test_forwarding_disabled_drops_as_inaddrerrors(monkeypatch):
    env = Env(monkeypatch, forwarding=False)
    env.inject([from_h1(fwd())])
    assert env.drops == {"IP_INADDRERRORS": 1}
    assert env.mib["IpInAddrErrors"] == 1
    assert env.out["v1r"] == [] and env.out["v2r"] == []


def test_no_route_sends_net_unreachable(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(fwd(dst="192.168.9.9"))])
    (err,) = env.out["v1r"]
    assert err[14 + 20] == 3 and err[14 + 21] == 0
    assert env.drops == {"IP_INNOROUTES": 1}


def test_ip_error_is_rate_limited_per_source(monkeypatch):
    env = Env(monkeypatch)
    env.r.sysctl.set("net.ipv4.icmp_ratemask", 0)
    env.inject([from_h1(fwd(dst="192.168.9.9", ident=i)) for i in range(8)])
    assert len(env.out["v1r"]) == 5  # ip_rt_error_burst / ip_rt_error_cost
    env.world.advance(1.0)
    env.inject([from_h1(fwd(dst="192.168.9.9", ident=i)) for i in range(3)])
    assert len(env.out["v1r"]) == 6


def test_ip_error_and_icmp_limiter_share_the_peer(monkeypatch):
    # ip_error and icmpv4_xrlim_allow both spend the sender's inet_peer rate_tokens:
    # 5000 -> 4000 -> 3000 (sent), 2000 -> 1000 (sent), 0 -> refused by xrlim, then empty.
    env = Env(monkeypatch)
    env.inject([from_h1(fwd(dst="192.168.9.9", ident=i)) for i in range(8)])
    assert len(env.out["v1r"]) == 2
    assert env.mib["IcmpOutRateLimitHost"] == 1


def test_ttl_one_gives_time_exceeded(monkeypatch):
    env = Env(monkeypatch)
    dg = fwd(ttl=1, tos=0x2B)
    env.inject([from_h1(dg)])
    assert env.out["v2r"] == []
    (err,) = env.out["v1r"]
    assert err[:6] == MAC_H1 and err[6:12] == MAC_R1
    ih = err[14:34]
    assert ih[1] == (0x2B & 0x1E) | 0xC0          # RT_TOS | IPTOS_PREC_INTERNETCONTROL
    assert ih[6] & 0x40 == 0 and ih[8] == 64 and ih[9] == 1
    assert ih[12:16] == ip("10.0.1.254") and ih[16:20] == ip("10.0.1.1")
    assert err[34:36] == b"\x0b\x00"
    assert err[42:] == dg
    assert env.drops == {"IP_INHDR": 1}
    assert env.mib["IpInHdrErrors"] == 1 and env.mib["IcmpMsgOutType11"] == 1


def test_df_too_big_gives_frag_needed_with_mtu(monkeypatch):
    env = Env(monkeypatch)
    env.v2r.mtu = 1000
    dg = fwd(df=True, data=b"z" * 1200)
    env.inject([from_h1(dg)])
    assert env.out["v2r"] == []
    (err,) = env.out["v1r"]
    assert err[34:36] == b"\x03\x04"
    assert int.from_bytes(err[40:42], "big") == 1000
    assert env.drops == {"PKT_TOO_BIG": 1}
    assert env.mib["IpFragFails"] == 1


def test_route_mtu_metric_fragments_non_df(monkeypatch):
    env = Env(monkeypatch)
    env.cp.add_route(env.r, "10.0.3.0", 24, env.v2r, gw="10.0.2.1", mtu=576)
    dg = fwd(dst="10.0.3.5", data=b"q" * 1000, ident=0x4242)
    env.inject([from_h1(dg)])
    frags = env.out["v2r"]
    # 1008 payload bytes, 552 (= (576 - 20) & ~7) per fragment
    assert [len(f) - 14 for f in frags] == [572, 476]
    assert [int.from_bytes(f[14 + 6:14 + 8], "big") for f in frags] == [0x2000, 552 >> 3]
    assert all(f[14 + 4:14 + 6] == b"\x42\x42" for f in frags)
    assert env.mib["IpFragCreates"] == 2 and env.mib["IpFragOKs"] == 1


def test_priority_from_tos():
    assert [rt_tos2priority(t) for t in (0x00, 0x08, 0x10, 0x18, 0x02, 0x04)] == [0, 2, 6, 4, 0, 0]


def test_unknown_protocol_gets_protocol_unreachable(monkeypatch):
    env = Env(monkeypatch)
    dg = ipv4("10.0.1.1", "10.0.1.254", 99, b"data" * 3)
    env.inject([from_h1(dg)])
    (err,) = env.out["v1r"]
    assert err[34:36] == b"\x03\x02"
    assert err[26:30] == ip("10.0.1.254")
    assert env.drops == {"IP_NOPROTO": 1}
    assert env.mib["IpInUnknownProtos"] == 1


def test_drop_unicast_in_l2_multicast(monkeypatch):
    from netstack.ipv4.udp import udp_socket
    env = Env(monkeypatch)
    sk = udp_socket(env.r)
    sk.bind(("0.0.0.0", 5000))
    frame = eth(b"\xff" * 6, MAC_H1, udp4("10.0.1.1", "10.0.1.254", 1, 5000, b"hi"))
    env.inject([frame])
    assert sk.recvfrom() == (b"hi", ("10.0.1.1", 1))
    env.r.sysctl.set("net.ipv4.conf.v1r.drop_unicast_in_l2_multicast", 1)
    env.inject([frame])
    assert sk.recvfrom() is None
    assert env.drops == {"UNICAST_IN_L2_MULTICAST": 1}


def test_bad_option_gives_parameter_problem(monkeypatch):
    env = Env(monkeypatch)
    # RR option with a length running past the header.
    dg = ipv4("10.0.1.1", "10.0.2.1", 17, b"x" * 8, options=bytes((7, 15, 4, 0)))
    env.inject([from_h1(dg)])
    (err,) = env.out["v1r"]
    assert err[34:36] == b"\x0c\x00"
    assert err[38] == 20        # pointer to the option's type byte
    assert env.out["v2r"] == []


def test_record_route_filled_on_forward(monkeypatch):
    env = Env(monkeypatch)
    rr = bytes((7, 11, 4)) + bytes(8) + b"\x00"   # RR with room for two addresses, EOL
    dg = ipv4("10.0.1.1", "10.0.2.1", 17, b"x" * 8, options=rr)
    env.inject([from_h1(dg)])
    (out,) = env.out["v2r"]
    h = out[14:14 + 32]
    assert h[22] == 8 and h[23:27] == ip("10.0.2.254")
    assert ip_fast_csum(h) == 0


def test_source_route_dropped(monkeypatch):
    env = Env(monkeypatch)
    lsrr = bytes((131, 7, 4)) + ip("10.0.2.1") + b"\x00"
    env.inject([from_h1(ipv4("10.0.1.1", "10.0.2.1", 17, b"x" * 8, options=lsrr))])
    assert env.out["v2r"] == [] and env.drops == {"NOT_SPECIFIED": 1}


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=20, max_size=20), st.integers(2, 255))
def test_incremental_ttl_checksum_equals_full(hdr, ttl):
    h = bytearray(hdr)
    h[0] = 0x45
    h[8] = ttl
    h[10:12] = b"\0\0"
    c = ip_fast_csum(h)
    h[10:12] = c.to_bytes(2, "big")
    ip_decrease_ttl(h, 0)
    assert h[8] == ttl - 1
    assert ip_fast_csum(h) == 0
    assert int.from_bytes(h[10:12], "big") == ip_decrease_ttl_csum(c)


def test_timestamp_options_stamped_on_virtual_clock(monkeypatch):
    env = Env(monkeypatch)
    env.world.advance(12.345)
    ts_only = bytes((68, 8, 5, 0x00)) + bytes(4)
    ts_addr = bytes((68, 12, 5, 0x01)) + bytes(8)
    full = bytes((68, 8, 9, 0x30)) + bytes(4)          # no room: overflow 3 -> 4
    for opts in (ts_only, ts_addr, full):
        env.inject([from_h1(ipv4("10.0.1.1", "10.0.2.1", 17, b"x" * 8, options=opts))])
    a, b, c = (f[14:14 + 20 + 12] for f in env.out["v2r"])
    assert a[22] == 9 and int.from_bytes(a[24:28], "big") == 12345
    assert b[22] == 13 and b[24:28] == ip("10.0.2.254") and int.from_bytes(b[28:32], "big") == 12345
    assert c[22] == 9 and c[23] == 0x40 and c[24:28] == bytes(4)
    assert all(ip_fast_csum(h[:(h[0] & 15) * 4]) == 0 for h in (a, b, c))
