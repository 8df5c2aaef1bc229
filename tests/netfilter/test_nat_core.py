"""NAT: bindings, port allocation and clash handling, reply-path translation with
incremental checksums, ICMP error inner translation (nf_nat_core.c, nf_nat_proto.c)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.netfilter import conntrack as nfct
from netstack.netfilter import core as nfc
from netstack.netfilter import nat
from netstack.packet.checksum import csum_partial, csum_tcpudp_magic, ip_compute_csum, ip_fast_csum
from netstack.packet.icmp import build_icmp
from netstack.packet.ipv4 import build_ipv4
from test_ct_core import A, B, C, CtEnv, icmp4, ip, pkt, tcp4, udp4

PUB = ip("203.0.113.5")


def snat_rule(r: nat.NfNatRange):
    def fn(p, state):
        ct, _ = nfct.nf_ct_get(p)
        return nat.nf_nat_setup_info(ct, r, nat.NF_NAT_MANIP_SRC)
    return fn


def dnat_rule(r: nat.NfNatRange, match_dport: int | None = None):
    def fn(p, state):
        ct, _ = nfct.nf_ct_get(p)
        if match_dport is not None and ct.tuplehash[0].dport != match_dport:
            return nfc.NF_ACCEPT
        return nat.nf_nat_setup_info(ct, r, nat.NF_NAT_MANIP_DST)
    return fn


def one(addr: bytes, lo: int = 0, hi: int = 0) -> nat.NfNatRange:
    flags = nat.NF_NAT_RANGE_MAP_IPS | (nat.NF_NAT_RANGE_PROTO_SPECIFIED if lo else 0)
    return nat.NfNatRange(flags, addr, addr, lo, hi)


def l4_ok(b: bytes) -> bool:
    """Full recomputation of the IPv4 header and TCP/UDP/ICMP checksums."""
    ihl = (b[0] & 15) * 4
    if ip_fast_csum(b[:ihl]) != 0:
        return False
    proto, seg = b[9], b[ihl:]
    if proto == 1:
        return ip_compute_csum(seg) == 0
    if proto == 17 and seg[6:8] == b"\0\0":
        return True
    return csum_tcpudp_magic(b[12:16], b[16:20], len(seg), proto, csum_partial(seg)) == 0


def data(p) -> bytes:
    return bytes(p.buf[p.data:p.tail])


@pytest.fixture()
def env() -> CtEnv:
    return CtEnv()


def test_snat_keeps_port_and_translates_reply(env):
    nat.nf_nat_register_fn(env.net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, 100,
                           snat_rule(one(PUB)))
    p = udp4(A, C, 40000, 53, b"query")
    env.run(p)
    out = data(p)
    assert out[12:16] == PUB and out[16:20] == C and out[20:22] == (40000).to_bytes(2, "big")
    assert l4_ok(out)
    ct = nfct.nf_ct_get(p)[0]
    assert ct.status & nfct.IPS_SRC_NAT and ct.status & nfct.IPS_SRC_NAT_DONE
    assert ct.tuplehash[1].dst == PUB
    r = udp4(C, PUB, 53, 40000, b"answer")
    env.run(r)
    back = data(r)
    assert back[12:16] == C and back[16:20] == A and back[22:24] == (40000).to_bytes(2, "big")
    assert l4_ok(back) and nfct.nf_ct_get(r) == (ct, nfct.IP_CT_ESTABLISHED_REPLY)


def test_snat_port_clash_allocates_another_port(env):
    nat.nf_nat_register_fn(env.net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, 100,
                           snat_rule(one(PUB)))
    p1 = udp4(A, C, 40000, 53)
    env.run(p1)
    p2 = udp4(B, C, 40000, 53)  # same source port from another host
    env.run(p2)
    port2 = int.from_bytes(data(p2)[20:22], "big")
    assert data(p2)[12:16] == PUB and port2 != 40000 and 1024 <= port2 <= 65535
    assert l4_ok(data(p2))
    # the reply to the reallocated port reaches B
    r = udp4(C, PUB, 53, port2)
    env.run(r)
    assert data(r)[16:20] == B and data(r)[22:24] == (40000).to_bytes(2, "big")


def test_snat_low_port_stays_low_and_port_range(env):
    nat.nf_nat_register_fn(env.net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, 100,
                           snat_rule(one(PUB)))
    env.run(udp4(A, C, 123, 123))
    p = udp4(B, C, 123, 123)
    env.run(p)
    port = int.from_bytes(data(p)[20:22], "big")
    assert 1 <= port <= 511 and port != 123
    e2 = CtEnv()
    nat.nf_nat_register_fn(e2.net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, 100,
                           snat_rule(one(PUB, 2000, 2003)))
    ports = set()
    for i in range(4):
        q = udp4(A, C, 5000 + i, 53)
        e2.run(q)
        ports.add(int.from_bytes(data(q)[20:22], "big"))
    assert ports == {2000, 2001, 2002, 2003}


def test_snat_range_exhausted_reuses_tuple_and_confirm_drops(env):
    nat.nf_nat_register_fn(env.net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, 100,
                           snat_rule(one(PUB, 2000, 2000)))
    assert env.run(udp4(A, C, 1, 53))
    # single-port range: the same mapping is chosen and the insert clashes
    assert env.run(udp4(B, C, 1, 53)) is False
    assert env.cn.stats["insert_failed"] == 1


def test_dnat_and_reply(env):
    nat.nf_nat_register_fn(env.net, nfc.NFPROTO_IPV4, nfc.NF_INET_PRE_ROUTING, -100,
                           dnat_rule(one(B, 8080, 8080)))
    p = tcp4(C, PUB, 50000, 80, 1, 0, 0x02)
    env.run(p)
    d = data(p)
    assert d[16:20] == B and d[22:24] == (8080).to_bytes(2, "big") and l4_ok(d)
    r = tcp4(B, C, 8080, 50000, 9, 2, 0x12)
    env.run(r)
    d = data(r)
    assert d[12:16] == PUB and d[20:22] == (80).to_bytes(2, "big") and l4_ok(d)
    ct = nfct.nf_ct_get(r)[0]
    assert ct.proto.state == 2 and ct.status & nfct.IPS_DST_NAT


def test_null_binding_for_unmatched_flows(env):
    nat.nf_nat_register_fn(env.net, nfc.NFPROTO_IPV4, nfc.NF_INET_PRE_ROUTING, -100,
                           dnat_rule(one(B, 8080, 8080), match_dport=80))
    p = udp4(A, C, 1, 53)
    env.run(p)
    ct = nfct.nf_ct_get(p)[0]
    assert ct.status & nfct.IPS_DST_NAT_DONE and not ct.status & nfct.IPS_NAT_MASK
    assert data(p)[16:20] == C


def test_nat_chains_run_only_for_new_connections(env):
    calls = []

    def counting(p, state):
        calls.append(1)
        return nfc.NF_ACCEPT
    nat.nf_nat_register_fn(env.net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, 100, counting)
    for _ in range(3):
        env.run(udp4(A, C, 1, 2))
    env.run(udp4(C, A, 2, 1))
    assert len(calls) == 1


def test_chain_priority_order_within_nat_hook(env):
    order = []
    for prio, name in ((50, "b"), (-10, "a")):
        nat.nf_nat_register_fn(env.net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, prio,
                               lambda p, s, name=name: order.append(name) or nfc.NF_ACCEPT)
    env.run(udp4(A, C, 1, 2))
    assert order == ["a", "b"]
    assert len(nfc.nf_hook_entries(env.net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING)) == 2


def test_icmp_echo_id_translation_on_clash(env):
    nat.nf_nat_register_fn(env.net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, 100,
                           snat_rule(one(PUB)))
    env.run(icmp4(A, C, 99))
    p = icmp4(B, C, 99)
    env.run(p)
    d = data(p)
    new_id = int.from_bytes(d[24:26], "big")
    assert d[12:16] == PUB and new_id != 99 and l4_ok(d)
    r = icmp4(C, PUB, new_id, reply=True)
    env.run(r)
    d = data(r)
    assert d[16:20] == B and d[24:26] == (99).to_bytes(2, "big") and l4_ok(d)


def test_icmp_error_inner_header_is_translated(env):
    nat.nf_nat_register_fn(env.net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, 100,
                           snat_rule(one(PUB)))
    p = udp4(A, C, 40000, 33434, b"probe")
    env.run(p)
    sent = data(p)  # as it left: PUB:40000 -> C
    err = pkt(build_ipv4(C, PUB, 1, build_icmp(3, 3, bytes(4), sent[:28])))
    env.run(err)
    d = data(err)
    assert nfct.nf_ct_get(err)[1] == nfct.IP_CT_RELATED_REPLY
    assert d[12:16] == C and d[16:20] == A  # outer destination restored
    inner = d[28:]
    assert inner[12:16] == A and inner[16:20] == C  # quoted source restored
    assert ip_fast_csum(inner[:20]) == 0 and l4_ok(d)


def test_masquerade_device_down_kills_flows(env):
    from netstack.drivers.dummy import DummyDevice
    dev = DummyDevice("wan0", b"\x02\0\0\0\0\x01")
    env.net.register_netdevice(dev)
    p = udp4(A, C, 1, 2)
    env.run(p)
    ct = nfct.nf_ct_get(p)[0]
    ct.masq_index = dev.ifindex
    nat.masq_device_event("DOWN", dev)
    assert ct.status & nfct.IPS_DYING and env.cn.count == 0


@given(st.sampled_from([6, 17]), st.integers(1, 65535), st.integers(1, 65535),
       st.binary(max_size=40), st.integers(1, 65535))
@settings(max_examples=80, deadline=None)
def test_incremental_checksums_equal_full_recompute(proto, sp, dp, payload, newport):
    e = CtEnv()
    r = nat.NfNatRange(nat.NF_NAT_RANGE_MAP_IPS | nat.NF_NAT_RANGE_PROTO_SPECIFIED, PUB, PUB,
                       newport, newport)
    nat.nf_nat_register_fn(e.net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING, 100, snat_rule(r))
    p = tcp4(A, C, sp, dp, 1, 0, 0x02, payload) if proto == 6 else udp4(A, C, sp, dp, payload)
    e.run(p)
    d = data(p)
    assert d[12:16] == PUB and int.from_bytes(d[20:22], "big") == newport and l4_ok(d)


def test_unregister_removes_nat_hook(env):
    h = nat.nf_nat_register_fn(env.net, nfc.NFPROTO_INET, nfc.NF_INET_POST_ROUTING, 100,
                               snat_rule(one(PUB)))
    assert len(nfc.nf_hook_entries(env.net, nfc.NFPROTO_IPV6, nfc.NF_INET_POST_ROUTING)) == 2
    nat.nf_nat_unregister_fn(env.net, h)
    assert len(nfc.nf_hook_entries(env.net, nfc.NFPROTO_IPV4, nfc.NF_INET_POST_ROUTING)) == 1


def test_ipv6_snat_tcp_checksum_and_reply(env):
    from netstack.packet.checksum import csum_ipv6_magic
    from netstack.packet.ipv6 import build_ipv6
    a6, c6, pub6 = ip("fd00::1"), ip("2001:db8::9"), ip("2001:db8:ffff::5")

    def seg(src, dst, sp, dp, flags):
        return pkt(build_ipv6(src, dst, 6, tcp_bytes(src, dst, sp, dp, flags)), 0x86DD)

    def tcp_bytes(src, dst, sp, dp, flags):
        from netstack.packet.tcp import build_tcp
        return build_tcp(sp, dp, 1, 0, flags, src=src, dst=dst)

    def ok6(b):
        return csum_ipv6_magic(b[8:24], b[24:40], len(b) - 40, 6, csum_partial(b[40:])) == 0
    r = nat.NfNatRange(nat.NF_NAT_RANGE_MAP_IPS, pub6, pub6)
    nat.nf_nat_register_fn(env.net, nfc.NFPROTO_IPV6, nfc.NF_INET_POST_ROUTING, 100,
                           snat_rule(r))
    p = seg(a6, c6, 3333, 443, 0x02)
    env.run(p, pf=nfc.NFPROTO_IPV6)
    d = data(p)
    assert d[8:24] == pub6 and ok6(d)
    q = seg(c6, pub6, 443, 3333, 0x12)
    env.run(q, pf=nfc.NFPROTO_IPV6)
    d = data(q)
    assert d[24:40] == a6 and ok6(d)


def test_conntrack_count_sysctl_tracks_table(env):
    env.run(udp4(A, C, 1, 2))
    env.run(udp4(A, C, 3, 4))
    assert env.net.sysctl.get("net.netfilter.nf_conntrack_count") == 2
    nfct.nf_ct_flush(env.net)
    assert env.net.sysctl.get("net.netfilter.nf_conntrack_count") == 0
