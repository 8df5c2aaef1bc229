"""changelink of the tunnel kinds without a kernel module here (the kernel sources are the
reference: net/ipv4/ipip.c + ip_tunnel.c ``ip_tunnel_changelink``/``ip_tunnel_update``,
net/ipv6/sit.c ``ipip6_changelink``, net/ipv4/ip_gre.c ``ipgre_changelink`` +
``ipgre_link_update``, drivers/net/geneve.c ``geneve_changelink``/``geneve_nl2info``),
and ``ip fou … peer``: a connected FOU socket."""
from __future__ import annotations

import json

import pytest

BASE = """\
ip netns add a
ip -n a link add va type veth peer name vb
ip -n a addr add 10.1.0.1/24 dev va
ip -n a link set va up
ip -n a link add vx type veth peer name vy
ip -n a link set vx mtu 1400
ip -n a addr add 10.2.0.1/24 dev vx
ip -n a link set vx up
"""


def stack(extra: str):  # type: ignore[no-untyped-def]
    from netstack import Stack
    st = Stack()
    st.run_script(BASE + extra)
    return st


def info(st, dev: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    return json.loads(st.command(f"ip -n a -d -j link show {dev}").stdout)[0]


def run(st, cmd: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    r = st.command(cmd)
    return r.rc, r.stderr


def test_ipip_changelink_replaces_fields_keeps_mode_and_rebinds_mtu() -> None:
    st = stack("ip -n a link add t0 type ipip remote 10.1.0.2 local 10.1.0.1\n"
               "ip -n a link add t1 type ipip remote 10.1.0.3 local 10.1.0.1\n")
    assert run(st, "ip -n a link set t0 type ipip ttl 9 tos 0x10 mode any") == (0, "")
    d = info(st, "t0")["linkinfo"]["info_data"]
    assert (d["ttl"], d["tos"], d["proto"]) == (9, "0x10", "ipip")
    assert info(st, "t0")["mtu"] == 1480
    assert run(st, "ip -n a link set t0 type ipip remote 10.2.0.9 dev vx") == (0, "")
    d = info(st, "t0")
    assert d["mtu"] == 1380 and d["broadcast"] == "10.2.0.9"
    assert run(st, "ip -n a link set t1 type ipip remote 10.2.0.9 dev vx") == \
        (2, "RTNETLINK answers: File exists\n")
    assert run(st, "ip -n a link set t1 type ipip remote any") == \
        (2, "RTNETLINK answers: Invalid argument\n")
    assert run(st, "ip -n a link set t1 type ipip ttl 3 nopmtudisc") == \
        (255, "ttl != 0 and nopmtudisc are incompatible\n")


def test_iptnl_changelink_byte_swaps_untouched_encap_ports() -> None:
    """link_iptnl.c reads IFLA_IPTUN_ENCAP_[SD]PORT with rta_getattr_u16 and sends them
    back through htons: on a little-endian host an untouched port comes back swapped."""
    st = stack("ip -n a link add t0 type ipip remote 10.1.0.2 local 10.1.0.1 encap fou "
               "encap-sport 4000 encap-dport 5555\n")
    run(st, "ip -n a link set t0 type ipip ttl 5")
    e = info(st, "t0")["linkinfo"]["info_data"]["encap"]
    assert (e["sport"], e["dport"]) == (0xA00F, 0xB315)
    run(st, "ip -n a link set t0 type ipip encap-dport 5555")
    e = info(st, "t0")["linkinfo"]["info_data"]["encap"]
    assert (e["sport"], e["dport"]) == (4000, 5555)


def test_sit_changelink_rebinds_mtu_always() -> None:
    st = stack("ip -n a link add s0 type sit remote 10.1.0.2 local 10.1.0.1\n")
    assert run(st, "ip -n a link set s0 type sit remote 10.2.0.5 dev vx") == (0, "")
    assert info(st, "s0")["mtu"] == 1380


def test_gre_changelink_flags_mtu_features_and_refusals() -> None:
    st = stack("ip -n a link add g0 type gre remote 10.1.0.2 local 10.1.0.1\n"
               "ip -n a link add g1 type gre remote 10.1.0.2 local 10.1.0.1 key 7\n"
               "ip -n a link add gt type gretap remote 10.1.0.2 local 10.1.0.1 key 9\n")
    g0 = st._dev("a", "g0")
    assert g0.mtu == 1476 and "tx-tcp-segmentation" in g0.features
    assert run(st, "ip -n a link set g0 type gre oseq okey 5 ttl 3") == (0, "")
    assert g0.mtu == 1468 and "tx-tcp-segmentation" not in g0.features
    d = info(st, "g0")["linkinfo"]["info_data"]
    assert d["okey"] == "0.0.0.5" and d["oseq"] and d["ttl"] == 3
    assert run(st, "ip -n a link set g0 type gre key 7 nooseq") == \
        (2, "RTNETLINK answers: File exists\n")
    assert run(st, "ip -n a link set g0 type gre remote 224.1.1.1") == \
        (2, "RTNETLINK answers: Invalid argument\n")
    assert run(st, "ip -n a link set g0 type gre ignore-df") == \
        (2, "RTNETLINK answers: Invalid argument\n")
    gt = st._dev("a", "gt")
    assert run(st, "ip -n a link set gt type gretap csum") == (0, "")
    assert gt.mtu == 1500 - 14 - 20 - 8 - 4
    assert run(st, "ip -n a link set gt type gretap nocsum remote 10.2.0.7 dev vx") == (0, "")
    assert gt.mtu == 1400 - 14 - 20 - 8


def test_geneve_changelink_allowed_and_refused() -> None:
    st = stack("ip -n a link add gn type geneve id 5 remote 10.9.0.2\n")
    gn = st._dev("a", "gn")
    assert gn.mtu == 1500
    assert run(st, "ip -n a link set gn type geneve id 5 remote 10.2.0.2 ttl 7 tos 0x10 "
                   "df set") == (0, "")
    assert gn.mtu == 1400 - 50 and gn.cfg.remote == bytes([10, 2, 0, 2])
    assert (gn.cfg.ttl, gn.cfg.tos, gn.cfg.df) == (7, 0x10, 1)
    msg = ("Error: Changing VNI, Port, endpoint IP address family, external, "
           "inner_proto_inherit, and UDP checksum attributes are not supported.\n")
    for opts in ("id 6", "id 5 dstport 7000", "id 5 remote 2001:db8::1", "id 5 udpcsum",
                 "id 5 noudp6zerocsumrx"):
        assert run(st, f"ip -n a link set gn type geneve {opts}") == (2, msg), opts
    assert run(st, "ip -n a link set gn type geneve id 5 flowlabel 5") == \
        (2, "Error: Label attribute only applies for IPv6 Geneve devices.\n")
    assert run(st, "ip -n a link set gn type geneve ttl 3") == \
        (1, "geneve: missing virtual network identifier\n")


@pytest.mark.parametrize("peer_ok", [True, False])
def test_fou_peer_is_a_connected_socket(peer_ok: bool) -> None:
    """``ip fou add port P ipproto 4 local L peer R peer_port Q``: only datagrams from
    R:Q reach the FOU socket (compute_score); others go to plain UDP (port unreachable)."""
    from tunnels.helpers import Topo, udp_hdr, udp_ip
    t = Topo("ip -n b fou add port 5555 ipproto 4 local 10.1.0.2 peer 10.1.0.1 "
             "peer_port 4000\n"
             "ip -n b link add t0 type ipip remote 10.1.0.1 local 10.1.0.2\n"
             "ip -n b link set t0 up\n")
    got = t.capture("b", "t0")
    inner = udp_ip("192.168.9.1", "192.168.9.2", 1, 2, b"x")
    sport = 4000 if peer_ok else 4001
    payload = udp_hdr(sport, 5555, inner)
    from tunnels.helpers import outer4
    import dpkt
    frame = bytearray(outer4(17, payload))
    ip = frame[14:34]
    ip[10:12] = b"\0\0"
    frame[24:26] = dpkt.in_cksum(bytes(ip)).to_bytes(2, "big")
    t.inject(bytes(frame))
    t.st.world.run_until_idle()
    assert (got == [inner]) == peer_ok
    r = t.st.command("ip -n b fou show")
    assert r.stdout == "port 5555 ipproto 4 local 10.1.0.2 peer 10.1.0.1 peer_port 4000\n"
