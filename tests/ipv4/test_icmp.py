"""ICMP: echo/timestamp replies, the rules of __icmp_send (what is never answered,
quoting, source address, TOS) and the two rate limiters on the virtual clock
(net/ipv4/icmp.c, net/ipv4/inetpeer.c)."""
from __future__ import annotations

from test_ip_env import Env, eth, from_h1, from_h2, ip, ipv4, udp4, MAC_H1

from netstack.packet.checksum import csum_fold, csum_partial, ip_fast_csum


def echo(src: str, dst: str, ident: int = 0x77, seq: int = 1, data: bytes = b"ping!",
         **kw) -> bytes:
    msg = bytearray(bytes((8, 0, 0, 0)) + ident.to_bytes(2, "big") + seq.to_bytes(2, "big")
                    + data)
    c = csum_fold(csum_partial(msg))
    msg[2:4] = c.to_bytes(2, "big")
    return ipv4(src, dst, 1, bytes(msg), **kw)


def ttl1(i: int = 0, src: str = "10.0.1.1", **kw) -> bytes:
    return udp4(src, "10.0.2.1", 40000 + i, 7000, b"ttl1 #%d" % i, ttl=1, ident=0x7000 + i,
                **kw)


def test_echo_reply(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(echo("10.0.1.1", "10.0.1.254", tos=0x12, ttl=9))])
    (rep,) = env.out["v1r"]
    ih = rep[14:34]
    assert ih[1] == 0x12                      # the request's TOS is echoed
    assert ih[12:16] == ip("10.0.1.254") and ih[16:20] == ip("10.0.1.1")
    assert ih[8] == 64 and ip_fast_csum(ih) == 0
    icmp = rep[34:]
    assert icmp[0] == 0 and icmp[4:8] == bytes((0, 0x77, 0, 1)) and icmp[8:] == b"ping!"
    assert csum_fold(csum_partial(icmp)) == 0
    assert env.mib["IcmpInMsgs"] == 1 and env.mib["IcmpMsgInType8"] == 1
    assert env.mib["IcmpOutMsgs"] == 1 and env.mib["IcmpMsgOutType0"] == 1


def test_echo_to_other_interface_address(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(echo("10.0.1.1", "10.0.2.254"))])
    (rep,) = env.out["v1r"]
    assert rep[14 + 12:14 + 16] == ip("10.0.2.254")


def test_echo_ignore_all(monkeypatch):
    env = Env(monkeypatch)
    env.r.sysctl.set("net.ipv4.icmp_echo_ignore_all", 1)
    env.inject([from_h1(echo("10.0.1.1", "10.0.1.254"))])
    assert env.out["v1r"] == []
    assert env.drops == {}


def test_broadcast_echo_ignored_by_default(monkeypatch):
    env = Env(monkeypatch)
    frame = eth(b"\xff" * 6, MAC_H1, echo("10.0.1.1", "10.0.1.255"))
    env.inject([frame])
    assert env.out["v1r"] == []
    assert env.drops == {"INVALID_PROTO": 1}
    env.r.sysctl.set("net.ipv4.icmp_echo_ignore_broadcasts", 0)
    env.inject([frame])
    (rep,) = env.out["v1r"]
    assert rep[14 + 12:14 + 16] == ip("10.0.1.254")


def test_bad_icmp_checksum(monkeypatch):
    env = Env(monkeypatch)
    dg = bytearray(echo("10.0.1.1", "10.0.1.254"))
    dg[-1] ^= 1
    env.inject([from_h1(bytes(dg))])
    assert env.out["v1r"] == []
    assert env.drops == {"ICMP_CSUM": 1}
    assert env.mib["IcmpInCsumErrors"] == 1 and env.mib["IcmpInErrors"] == 1


def test_timestamp_reply_uses_virtual_clock(monkeypatch):
    env = Env(monkeypatch)
    env.world.advance(3.5)
    msg = bytearray(bytes((13, 0, 0, 0, 0, 1, 0, 2)) + (1234).to_bytes(4, "big") + bytes(8))
    msg[2:4] = csum_fold(csum_partial(msg)).to_bytes(2, "big")
    env.inject([from_h1(ipv4("10.0.1.1", "10.0.1.254", 1, bytes(msg)))])
    (rep,) = env.out["v1r"]
    icmp = rep[34:]
    assert icmp[0] == 14 and len(icmp) == 20
    assert int.from_bytes(icmp[8:12], "big") == 1234
    assert int.from_bytes(icmp[12:16], "big") == 3500 == int.from_bytes(icmp[16:20], "big")


def test_no_error_about_icmp_error(monkeypatch):
    env = Env(monkeypatch)
    env.r.sysctl.set("net.ipv4.icmp_ratemask", 0)
    inner = udp4("10.0.2.1", "10.0.1.1", 1, 2, b"x")
    unreach = bytearray(bytes((3, 3, 0, 0, 0, 0, 0, 0)) + inner)
    unreach[2:4] = csum_fold(csum_partial(unreach)).to_bytes(2, "big")
    env.inject([from_h1(ipv4("10.0.1.1", "10.0.2.1", 1, bytes(unreach), ttl=1)),
                from_h1(echo("10.0.1.1", "10.0.2.1", ttl=1))])
    # the echo request is not an error: it gets its time exceeded; the unreachable does not
    (te,) = env.out["v1r"]
    assert te[34] == 11 and te[34 + 8 + 20] == 8


def test_no_error_for_non_first_fragment(monkeypatch):
    env = Env(monkeypatch)
    env.r.sysctl.set("net.ipv4.icmp_ratemask", 0)
    env.inject([from_h1(ipv4("10.0.1.1", "10.0.2.1", 17, b"x" * 16, ttl=1, frag_off=64)),
                from_h1(ipv4("10.0.1.1", "10.0.2.1", 17, b"x" * 16, ttl=1, mf=True))])
    (te,) = env.out["v1r"]
    assert int.from_bytes(te[34 + 8 + 6:34 + 8 + 8], "big") == 0x2000


def test_quote_limited_to_576_bytes(monkeypatch):
    env = Env(monkeypatch)
    dg = udp4("10.0.1.1", "10.0.2.1", 1, 2, b"y" * 1200, ttl=1)
    env.inject([from_h1(dg)])
    (te,) = env.out["v1r"]
    assert len(te) - 14 == 576
    assert te[42:] == dg[:576 - 28]


def test_errors_use_inbound_ifaddr(monkeypatch):
    env = Env(monkeypatch)
    env.r.sysctl.set("net.ipv4.icmp_ratemask", 0)
    # arrives on v2r, sender 10.0.1.1 lives behind v1r
    env.inject([from_h2(ttl1(0))], dev="v2h")
    (te,) = env.out["v1r"]
    assert te[14 + 12:14 + 16] == ip("10.0.1.254")
    env.r.sysctl.set("net.ipv4.icmp_errors_use_inbound_ifaddr", 1)
    env.inject([from_h2(ttl1(1))], dev="v2h")
    assert env.out["v1r"][1][14 + 12:14 + 16] == ip("10.0.2.254")


def test_peer_limiter_default_mask_six_of_twenty(monkeypatch):
    env = Env(monkeypatch)
    pkts = [ttl1(i) for i in range(20)]
    env.inject([from_h1(p) for p in pkts])
    got = env.out["v1r"]
    assert len(got) == 6
    assert [g[42:] for g in got] == pkts[:6]
    assert env.mib["IcmpOutRateLimitHost"] == 14
    # one token per icmp_ratelimit (1000 ms) of virtual time
    env.world.advance(0.999)
    env.inject([from_h1(ttl1(20))])
    assert len(env.out["v1r"]) == 6
    env.world.advance(0.001)
    env.inject([from_h1(ttl1(21)), from_h1(ttl1(22))])
    assert len(env.out["v1r"]) == 7


def test_ratemask_zero_and_ratelimit_zero_send_all(monkeypatch):
    env = Env(monkeypatch)
    env.r.sysctl.set("net.ipv4.icmp_ratemask", 0)
    env.inject([from_h1(ttl1(i)) for i in range(20)])
    assert len(env.out["v1r"]) == 20
    env2 = Env(monkeypatch)
    env2.r.sysctl.set("net.ipv4.icmp_ratelimit", 0)
    env2.inject([from_h1(ttl1(i)) for i in range(20)])
    assert len(env2.out["v1r"]) == 20


def test_frag_needed_is_never_rate_limited(monkeypatch):
    env = Env(monkeypatch)
    env.v2r.mtu = 1000
    env.inject([from_h1(udp4("10.0.1.1", "10.0.2.1", 1, i, b"z" * 1200, df=True))
                for i in range(1, 21)])
    assert len(env.out["v1r"]) == 20


def test_per_destination_buckets_are_separate(monkeypatch):
    env = Env(monkeypatch)
    env.cp.add_route(env.r, "10.0.9.0", 24, env.v1r, gw="10.0.1.1")
    env.inject([from_h1(ttl1(i)) for i in range(8)] +
               [from_h1(ttl1(i, src="10.0.9.9")) for i in range(8)])
    assert len(env.out["v1r"]) == 12


def test_global_limiter_on_virtual_clock(monkeypatch):
    env = Env(monkeypatch, seed=7)
    s = env.r.sysctl
    s.set("net.ipv4.icmp_ratelimit", 0)       # no per-peer limit, global only
    s.set("net.ipv4.icmp_msgs_burst", 4)
    s.set("net.ipv4.icmp_msgs_per_sec", 100)
    env.inject([from_h1(ttl1(i)) for i in range(40)])
    sent = len(env.out["v1r"])
    # 4 credits, each message consumes 0..2 of them (random): between 2 and 40 messages
    # can never all pass, and every refusal is counted.
    assert 2 <= sent < 40
    assert env.mib["IcmpOutRateLimitGlobal"] == 40 - sent
    # Refill needs at least HZ/50 = 20 ms of virtual time.
    env.world.advance(0.019)
    env.inject([from_h1(ttl1(50))])
    assert len(env.out["v1r"]) == sent
    env.world.advance(0.001)
    env.inject([from_h1(ttl1(51))])
    assert len(env.out["v1r"]) == sent + 1
    # The same seed gives the same run.
    env2 = Env(monkeypatch, seed=7)
    for k, v in (("icmp_ratelimit", 0), ("icmp_msgs_burst", 4), ("icmp_msgs_per_sec", 100)):
        env2.r.sysctl.set(f"net.ipv4.{k}", v)
    env2.inject([from_h1(ttl1(i)) for i in range(40)])
    assert len(env2.out["v1r"]) == sent


def test_port_unreachable_source_is_the_local_address(monkeypatch):
    env = Env(monkeypatch)
    dg = udp4("10.0.1.1", "10.0.2.254", 5555, 9, b"nobody home")
    env.inject([from_h1(dg)])
    (pu,) = env.out["v1r"]
    assert pu[34:36] == b"\x03\x03"
    assert pu[26:30] == ip("10.0.2.254")
    assert pu[42:] == dg


def test_errors_and_replies_echo_record_route(monkeypatch):
    """Measured on 6.18: a TTL-exceeded for a packet with an empty two-slot RR option
    carries RR with both slots = the router's address (one recorded on receive, one on
    output) and the pointer at 12; the echo reply does the same."""
    env = Env(monkeypatch)
    rr = bytes((7, 11, 4)) + bytes(8) + b"\0"
    env.inject([from_h1(ipv4("10.0.1.1", "10.0.2.1", 17, b"x" * 8, ttl=1, options=rr)),
                from_h1(echo("10.0.1.1", "10.0.1.254", options=rr))])
    te, rep = env.out["v1r"]
    want = bytes((7, 11, 12)) + ip("10.0.1.254") * 2 + b"\0"
    for f in (te, rep):
        assert f[14] == 0x48 and f[34:46] == want and ip_fast_csum(f[14:46]) == 0
    assert te[46] == 11 and rep[46] == 0
    # the quoted datagram shows the slot recorded on receive
    assert te[54 + 20:54 + 27] == bytes((7, 11, 8)) + ip("10.0.1.254")
