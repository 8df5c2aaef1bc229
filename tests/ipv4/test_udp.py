"""UDP sockets and receive path (net/ipv4/udp.c) and ping sockets (net/ipv4/ping.c)."""
from __future__ import annotations

import errno

import pytest
from test_ip_env import Env, eth, from_h1, ip, ipv4, udp4, MAC_H1, MAC_R1

from netstack.core.dev import dev_queue_xmit
from netstack.errors import KernelError
from netstack.ipv4.ping import ping
from netstack.ipv4.udp import udp_socket
from netstack.packet.checksum import csum_fold, csum_partial, ip_fast_csum, pseudo_sum_v4
from netstack.packet.skb import CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY
from netstack.packet.udp import build_udp


def test_bind_receive_and_counters(monkeypatch):
    env = Env(monkeypatch)
    sk = udp_socket(env.r)
    sk.bind(("10.0.1.254", 5000))
    env.inject([from_h1(udp4("10.0.1.1", "10.0.1.254", 1234, 5000, b"hello"))])
    assert env.mib["UdpInDatagrams"] == 0          # counted when read
    assert sk.recvfrom() == (b"hello", ("10.0.1.1", 1234))
    assert sk.recvfrom() is None
    assert env.mib["UdpInDatagrams"] == 1 and env.mib["IpInDelivers"] == 1


def test_specific_bind_beats_wildcard_and_connected_beats_both(monkeypatch):
    env = Env(monkeypatch)
    wild = udp_socket(env.r)
    wild.reuse = True
    wild.bind(("0.0.0.0", 6000))
    spec = udp_socket(env.r)
    spec.reuse = True
    spec.bind(("10.0.2.254", 6000))
    conn = udp_socket(env.r)
    conn.reuse = True
    conn.bind(("10.0.2.254", 6000))
    conn.connect(("10.0.1.1", 9))
    env.inject([from_h1(udp4("10.0.1.1", "10.0.2.254", 1, 6000, b"a")),
                from_h1(udp4("10.0.1.1", "10.0.1.254", 1, 6000, b"b")),
                from_h1(udp4("10.0.1.1", "10.0.2.254", 9, 6000, b"c"))])
    assert spec.recvfrom() == (b"a", ("10.0.1.1", 1)) and spec.recvfrom() is None
    assert wild.recvfrom() == (b"b", ("10.0.1.1", 1))
    assert conn.recvfrom() == (b"c", ("10.0.1.1", 9))


def test_no_socket_port_unreachable(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(udp4("10.0.1.1", "10.0.1.254", 1, 9999, b"x"))])
    (pu,) = env.out["v1r"]
    assert pu[34:36] == b"\x03\x03"
    assert env.drops == {"NO_SOCKET": 1}
    assert env.mib["UdpNoPorts"] == 1


def _bad_csum(dg: bytes) -> bytes:
    b = bytearray(dg)
    b[26] ^= 0x55
    return bytes(b)


def test_bad_checksum_without_socket_is_silent(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(_bad_csum(udp4("10.0.1.1", "10.0.1.254", 1, 9999, b"x" * 100)))])
    assert env.out["v1r"] == []
    assert env.drops == {"UDP_CSUM": 1}
    assert env.mib["UdpInCsumErrors"] == 1 and env.mib["UdpInErrors"] == 1


def test_bad_checksum_with_socket(monkeypatch):
    env = Env(monkeypatch)
    sk = udp_socket(env.r)
    sk.bind(("0.0.0.0", 7))
    # short datagrams (<= 76 bytes) are verified at once, longer ones when read
    env.inject([from_h1(_bad_csum(udp4("10.0.1.1", "10.0.1.254", 1, 7, b"s"))),
                from_h1(_bad_csum(udp4("10.0.1.1", "10.0.1.254", 1, 7, b"L" * 100))),
                from_h1(udp4("10.0.1.1", "10.0.1.254", 1, 7, b"good"))])
    assert env.drops == {"UDP_CSUM": 1}
    assert sk.recvfrom() == (b"good", ("10.0.1.1", 1))
    assert env.mib["UdpInCsumErrors"] == 2 and env.mib["UdpInDatagrams"] == 1


def test_checksum_states_are_honoured(monkeypatch):
    env = Env(monkeypatch)
    sk = udp_socket(env.r)
    sk.bind(("0.0.0.0", 7))
    bad = _bad_csum(udp4("10.0.1.1", "10.0.1.254", 1, 7, b"offloaded"))
    for state in (CHECKSUM_UNNECESSARY, CHECKSUM_PARTIAL):
        p = env.world.new_packet(from_h1(bad))
        p.ip_summed = state
        dev_queue_xmit(p, env.v1h)
    env.world.run_until_idle()
    assert sk.recvfrom() == (b"offloaded", ("10.0.1.1", 1))
    assert sk.recvfrom() == (b"offloaded", ("10.0.1.1", 1))
    zero = ipv4("10.0.1.1", "10.0.1.254", 17, build_udp(1, 7, b"nocsum"))
    env.inject([from_h1(zero)])
    assert sk.recvfrom() == (b"nocsum", ("10.0.1.1", 1))


def test_udp_length_checks(monkeypatch):
    env = Env(monkeypatch)
    seg = bytearray(build_udp(1, 7, b"abc", src=ip("10.0.1.1"), dst=ip("10.0.1.254")))
    seg[4:6] = (40).to_bytes(2, "big")
    env.inject([from_h1(ipv4("10.0.1.1", "10.0.1.254", 17, bytes(seg))),
                from_h1(ipv4("10.0.1.1", "10.0.1.254", 17, b"\0\1\0"))])
    assert env.drops == {"PKT_TOO_SMALL": 2}


def test_rcvbuf_overflow(monkeypatch):
    env = Env(monkeypatch)
    sk = udp_socket(env.r)
    sk.bind(("0.0.0.0", 7))
    sk.rcvbuf = 3000
    env.inject([from_h1(udp4("10.0.1.1", "10.0.1.254", 1, 7, b"q" * 600)) for _ in range(6)])
    assert env.drops == {"SOCKET_RCVBUFF": 3}
    assert env.mib["UdpRcvbufErrors"] == 3
    assert len(sk.queue) == 3


def test_sendto_builds_datagram_with_offloaded_checksum(monkeypatch):
    env = Env(monkeypatch)
    sk = udp_socket(env.r)
    sk.bind(("0.0.0.0", 4444))
    sent: list = []
    env.r.add_tx_tap(env.v1r, lambda p: sent.append((p.ip_summed, p.csum_start - p.data,
                                                     p.csum_offset)))
    assert sk.sendto(b"data!", ("10.0.1.1", 53)) == 5
    (f,) = env.out["v1r"]
    assert f[:6] == MAC_H1 and f[6:12] == MAC_R1
    ih = f[14:34]
    assert ih[6] == 0x40 and ih[4:6] == b"\0\0"      # DF (PMTU discovery), ID 0
    assert ih[8] == 64 and ih[9] == 17 and ip_fast_csum(ih) == 0
    assert ih[12:16] == ip("10.0.1.254")
    uh = f[34:42]
    assert uh[:6] == (4444).to_bytes(2, "big") + (53).to_bytes(2, "big") + (13).to_bytes(2, "big")
    assert int.from_bytes(uh[6:8], "big") == pseudo_sum_v4(ip("10.0.1.254"), ip("10.0.1.1"), 13, 17)
    assert sent == [(CHECKSUM_PARTIAL, 34, 6)]
    assert env.mib["UdpOutDatagrams"] == 1 and env.mib["IpOutRequests"] == 1


def test_sendto_without_offload_computes_checksum(monkeypatch):
    env = Env(monkeypatch)
    env.v1r.features.discard("tx-checksum-ip-generic")
    sk = udp_socket(env.r)
    sk.sendto(b"data!", ("10.0.1.1", 53))
    (f,) = env.out["v1r"]
    seg = f[34:]
    assert csum_fold(csum_partial(seg, pseudo_sum_v4(ip("10.0.1.254"), ip("10.0.1.1"),
                                                     len(seg), 17))) == 0
    lo, hi = 32768, 60999
    assert lo <= int.from_bytes(seg[:2], "big") <= hi


def test_large_datagram_is_fragmented_without_df(monkeypatch):
    env = Env(monkeypatch)
    sk = udp_socket(env.r)
    sk.bind(("0.0.0.0", 4444))
    sk.sendto(b"B" * 3000, ("10.0.1.1", 53))
    frags = env.out["v1r"]
    assert [len(f) - 14 for f in frags] == [1500, 1500, 3008 - 2 * 1480 + 20]
    ids = {f[14 + 4:14 + 6] for f in frags}
    assert len(ids) == 1 and ids != {b"\0\0"}
    assert all(f[14 + 6] & 0x40 == 0 for f in frags)
    payload = b"".join(f[34:] for f in frags)
    assert csum_fold(csum_partial(payload, pseudo_sum_v4(ip("10.0.1.254"), ip("10.0.1.1"),
                                                         3008, 17))) == 0


def test_pmtudisc_do_refuses_large(monkeypatch):
    from netstack.ipv4.ip_output import IP_PMTUDISC_DO
    env = Env(monkeypatch)
    sk = udp_socket(env.r)
    sk.pmtudisc = IP_PMTUDISC_DO
    with pytest.raises(KernelError) as e:
        sk.sendto(b"B" * 3000, ("10.0.1.1", 53))
    assert e.value.errno == errno.EMSGSIZE


def test_connected_socket_ids_and_refused(monkeypatch):
    env = Env(monkeypatch)
    sk = udp_socket(env.r)
    sk.connect(("10.0.1.1", 53))
    sk.send(b"1")
    sk.send(b"2")
    a, b = (int.from_bytes(f[18:20], "big") for f in env.out["v1r"])
    assert b == (a + 1) & 0xFFFF
    # the peer answers with port unreachable: a connected socket sees ECONNREFUSED
    dg = env.out["v1r"][0][14:]
    icmp = bytearray(bytes((3, 3, 0, 0, 0, 0, 0, 0)) + dg[:28])
    icmp[2:4] = csum_fold(csum_partial(icmp)).to_bytes(2, "big")
    env.inject([from_h1(ipv4("10.0.1.1", "10.0.1.254", 1, bytes(icmp)))])
    with pytest.raises(KernelError) as e:
        sk.recvfrom()
    assert e.value.errno == errno.ECONNREFUSED


def test_bind_errors(monkeypatch):
    env = Env(monkeypatch)
    a = udp_socket(env.r)
    a.bind(("0.0.0.0", 53))
    b = udp_socket(env.r)
    with pytest.raises(KernelError) as e:
        b.bind(("10.0.1.254", 53))
    assert e.value.errno == errno.EADDRINUSE
    with pytest.raises(KernelError) as e:
        b.bind(("192.0.2.1", 54))
    assert e.value.errno == errno.EADDRNOTAVAIL
    with pytest.raises(KernelError) as e:
        a.bind(("0.0.0.0", 55))
    assert e.value.errno == errno.EINVAL


def test_broadcast_needs_so_broadcast(monkeypatch):
    env = Env(monkeypatch)
    sk = udp_socket(env.r)
    with pytest.raises(KernelError) as e:
        sk.sendto(b"x", ("10.0.1.255", 9))
    assert e.value.errno == errno.EACCES
    sk.broadcast = True
    sk.sendto(b"x", ("10.0.1.255", 9))
    assert len(env.out["v1r"]) == 1


def test_broadcast_delivery_and_ignored_multi(monkeypatch):
    env = Env(monkeypatch)
    s1 = udp_socket(env.r)
    s1.bind(("0.0.0.0", 67))
    frame = eth(b"\xff" * 6, MAC_H1, udp4("10.0.1.1", "255.255.255.255", 68, 67, b"dhcp"))
    env.inject([frame])
    assert s1.recvfrom() == (b"dhcp", ("10.0.1.1", 68))
    env.inject([eth(b"\xff" * 6, MAC_H1, udp4("10.0.1.1", "10.0.1.255", 68, 99, b"x"))])
    assert env.mib["UdpIgnoredMulti"] == 1 and env.out["v1r"] == []


def test_ping_socket_round_trip(monkeypatch):
    env = Env(monkeypatch)
    sk = ping(env.r, "10.0.1.1", 0x3131, 7, b"abc")
    (req,) = env.out["v1r"]
    icmp = req[34:]
    assert icmp[0] == 8 and icmp[4:8] == bytes((0x31, 0x31, 0, 7)) and icmp[8:] == b"abc"
    assert csum_fold(csum_partial(icmp)) == 0
    assert req[14 + 6] == 0x40 and req[14 + 4:14 + 6] == b"\0\0"
    reply = bytearray(bytes((0, 0, 0, 0)) + icmp[4:])
    reply[2:4] = csum_fold(csum_partial(reply)).to_bytes(2, "big")
    env.inject([from_h1(ipv4("10.0.1.1", "10.0.1.254", 1, bytes(reply)))])
    data, addr = sk.recvfrom()
    assert data == bytes(reply) and addr == ("10.0.1.1", 0)
    # a reply nobody waits for
    other = bytearray(bytes((0, 0, 0, 0, 0, 9, 0, 1)))
    other[2:4] = csum_fold(csum_partial(other)).to_bytes(2, "big")
    env.inject([from_h1(ipv4("10.0.1.1", "10.0.1.254", 1, bytes(other)))])
    assert env.drops == {"NO_SOCKET": 1}


def test_ping_own_address_over_loopback(monkeypatch):
    env = Env(monkeypatch)
    sk = ping(env.r, "10.0.2.254", 5, 1, b"me")
    env.world.run_until_idle()
    data, addr = sk.recvfrom()
    assert data[0] == 0 and data[8:] == b"me" and addr == ("10.0.2.254", 0)
    assert env.out["lo"]


def test_ip_no_pmtu_disc_clears_df(monkeypatch):
    env = Env(monkeypatch)
    env.r.sysctl.set("net.ipv4.ip_no_pmtu_disc", 1)
    sk = udp_socket(env.r)
    sk.sendto(b"a", ("10.0.1.1", 9))
    sk.sendto(b"b", ("10.0.1.1", 9))
    f1, f2 = env.out["v1r"]
    assert f1[20] == 0 and f2[20] == 0                        # no DF
    i1, i2 = int.from_bytes(f1[18:20], "big"), int.from_bytes(f2[18:20], "big")
    assert i2 == (i1 + 1) & 0xFFFF                            # per-destination counter


def test_checksum_complete_with_ethernet_padding(monkeypatch):
    """CHECKSUM_COMPLETE covers the whole frame payload, padding included: ip_rcv_core's
    trim (pskb_trim_rcsum) takes the padding out of skb->csum (odd offsets byte-swapped,
    csum_block_sub), so UDP validates from skb->csum without a software pass."""
    from netstack.ipv4.ip_input import ip_rcv_core
    env = Env(monkeypatch)
    for n in (3, 4):                                     # odd and even datagram lengths
        dg = udp4("10.0.1.1", "10.0.1.254", 1, 7, b"o" * n)
        p = env.world.new_packet(dg + b"\x5a\x33\x01" * 5)
        p.dev = env.v1r
        p.ip_summed = 2  # CHECKSUM_COMPLETE
        p.csum = csum_partial(p.bytes())
        assert ip_rcv_core(p, env.r)
        assert p.bytes() == dg
        assert csum_fold(csum_partial(dg)) == csum_fold(p.csum)
    sk = udp_socket(env.r)
    sk.bind(("0.0.0.0", 7))
    calls = []
    import netstack.ipv4.udp as udp_mod
    real = udp_mod.csum_partial
    monkeypatch.setattr(udp_mod, "csum_partial", lambda *a: calls.append(1) or real(*a))
    frame = from_h1(udp4("10.0.1.1", "10.0.1.254", 1, 7, b"odd") + b"\x5a" * 15)
    p = env.world.new_packet(frame)
    p.ip_summed = 2
    p.csum = csum_partial(frame[14:])
    dev_queue_xmit(p, env.v1h)
    env.world.run_until_idle()
    assert sk.recvfrom() == (b"odd", ("10.0.1.1", 1))
    assert calls == []                                   # validated from skb->csum alone


def test_no_route_counts_outnoroutes(monkeypatch):
    env = Env(monkeypatch)
    sk = udp_socket(env.r)
    with pytest.raises(KernelError) as e:
        sk.sendto(b"x", ("192.0.2.1", 9))
    assert e.value.errno == errno.ENETUNREACH
    assert env.mib["IpOutNoRoutes"] == 1
