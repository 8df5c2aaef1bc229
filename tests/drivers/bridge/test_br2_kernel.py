"""Kernel-differential scenarios for BR2's bridge parts: proxy_arp, proxy_arp_wifi,
neigh_suppress (ARP and ND), IGMP/MLD snooping, mcast_to_unicast and the bridge as IGMP
querier, on a real bridge with veth ports.

Each case runs the same bash script on Linux (tests/kernel/oracle.py) and in netstack,
sends the same dpkt-built frames from the hosts and compares what h1..h3 receive byte
for byte.  Filtered from both sides besides the harness' usual noise (MLD, RS, DAD):
IGMP reports sent by the bridge device itself (its membership of 224.0.0.106 when
snooping is on) — netstack's IP layer has no IGMP host side.  The bridge's queries as
querier are compared.
"""

from __future__ import annotations

import struct

import sys
from pathlib import Path

import dpkt
import pytest

_TESTS = Path(__file__).resolve().parents[2]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from kernel.cases import Case, arp, eth, eth_arp, eth_ip, eth_ip6, icmp6_na, ip4, ip6, mac, udp4  # noqa: E402
from kernel.compare import results_diff, strip_noise  # noqa: E402
from kernel.conftest import Kernel  # noqa: E402
from kernel.netstack_side import run_netstack  # noqa: E402
from kernel.oracle import Result, Send  # noqa: E402
from test_br2_topo import HOSTS, IP4, IP6, MAC, MAC_BR, base_script  # noqa: E402

BCAST = "ff:ff:ff:ff:ff:ff"
ZERO = "00:00:00:00:00:00"


def _own_igmp(frame: bytes) -> bool:
    """IGMP membership reports/leaves of the bridge device's host side (see the module
    docstring); the queries of the bridge as querier are compared."""
    if frame[6:12] != mac(MAC_BR) or frame[12:14] != b"\x08\x00" or frame[23] != 2:
        return False
    ihl = (frame[14] & 0x0F) * 4
    return len(frame) > 14 + ihl and frame[14 + ihl] != 0x11


def _clean(res: Result) -> Result:
    res = strip_noise(res)
    for key, frs in res.frames.items():
        res.frames[key] = [f for f in frs if not _own_igmp(f)]
    return res


def compare(kernel: Kernel, case: Case) -> Result:
    """Frames byte for byte (tests/kernel/compare.py); the queries (``bridge -j mdb show``
    …, which compare.py's ``ip -j`` projection does not know) as exact text."""
    expected = _clean(kernel.run(case))
    got = _clean(run_netstack(case.script, list(case.sends), list(case.captures),
                              list(case.queries), case.settle, name=f"{case.name}.sh"))
    frames_only = [Result(frames=r.frames, times=r.times) for r in (expected, got)]
    diff = results_diff(frames_only[0], frames_only[1], case.ipv4_originators)
    if diff:
        pytest.fail(f"netstack differs from the kernel in {case.name}:\n{diff}", pytrace=False)
    for q in case.queries:
        assert got.queries[q] == expected.queries[q], q
    return got


def fr(res: Result, i: int) -> list[bytes]:
    """What host ``i`` received, without the bridge's own IGMP."""
    return [f for f in res.frames[HOSTS[i - 1]] if not _own_igmp(f)]


# ------------------------------------------------------------------ ARP cases
NEIGH2 = f"ip -n b neigh add {IP4[2]} lladdr {MAC[2]} dev br0 nud permanent\n" \
         f"bridge -n b fdb add {MAC[2]} dev p2 master static\n"


def arp_req(src: int, tip: str, sip: str | None = None) -> bytes:
    return eth_arp(BCAST, MAC[src], arp(1, MAC[src], sip or IP4[src], ZERO, tip))


def arp_reply_for(asker: int, owner: int) -> bytes:
    """The reply br_arp_send builds: Ethernet and ARP source = the neighbour's MAC."""
    return eth_arp(MAC[asker], MAC[owner], arp(2, MAC[owner], IP4[owner], MAC[asker], IP4[asker]))


PROXY_ARP = Case(
    name="br2_proxy_arp",
    script=base_script() + "ip -n b link set dev p1 type bridge_slave proxy_arp on\n" + NEIGH2,
    sends=(Send("h1", "v1h", arp_req(1, IP4[2])),),
    captures=HOSTS)

PROXY_ARP_WIFI = Case(
    name="br2_proxy_arp_wifi",
    script=base_script() + "ip -n b link set dev p2 type bridge_slave proxy_arp_wifi on\n" + NEIGH2,
    sends=(Send("h1", "v1h", arp_req(1, IP4[2])),
           Send("h3", "v3h", arp_req(3, "10.0.0.99"))),
    captures=HOSTS)

SUPPRESS_ARP = Case(
    name="br2_neigh_suppress_arp",
    script=base_script() + "ip -n b link set dev p1 type bridge_slave neigh_suppress on\n"
    "ip -n b link set dev p2 type bridge_slave neigh_suppress on\n" + NEIGH2,
    sends=(Send("h3", "v3h", arp_req(3, IP4[2])),          # answered, kept off p1/p2
           Send("h1", "v1h", arp_req(1, IP4[2])),          # from a suppress port: flooded
           Send("h3", "v3h", arp_req(3, "10.0.0.99")),     # unknown: flooded everywhere
           Send("h3", "v3h", arp_req(3, IP4[3], IP4[3]))),  # gratuitous: not to p1/p2
    captures=HOSTS)


def test_proxy_arp_kernel(kernel: Kernel) -> None:
    res = kernel.run(PROXY_ARP)
    assert fr(res, 1) == [arp_reply_for(1, 2)]
    assert fr(res, 2) == fr(res, 3) == [arp_req(1, IP4[2])]  # proxy_arp does not stop the flood


def test_proxy_arp_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, PROXY_ARP)


def test_proxy_arp_wifi_kernel(kernel: Kernel) -> None:
    res = kernel.run(PROXY_ARP_WIFI)
    assert fr(res, 1) == [arp_reply_for(1, 2), arp_req(3, "10.0.0.99")]
    assert fr(res, 3) == [arp_req(1, IP4[2])]
    # replied: not flooded to the proxy_arp_wifi port; unanswered ones still are
    assert fr(res, 2) == [arp_req(3, "10.0.0.99")]


def test_proxy_arp_wifi_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, PROXY_ARP_WIFI)


def test_neigh_suppress_arp_kernel(kernel: Kernel) -> None:
    res = kernel.run(SUPPRESS_ARP)
    assert fr(res, 3) == [arp_reply_for(3, 2), arp_req(1, IP4[2])]
    assert fr(res, 1) == [arp_req(3, "10.0.0.99")]
    assert fr(res, 2) == [arp_req(1, IP4[2]), arp_req(3, "10.0.0.99")]


def test_neigh_suppress_arp_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, SUPPRESS_ARP)


# ------------------------------------------------------------------- ND cases
def ns(src: int, target: str, *, slla: str | None, dst: str | None = None,
       src_ip: str | None = None) -> bytes:
    """Neighbour Solicitation to the target's solicited-node group."""
    t = ip6(target)
    sn = dst or "ff02::1:ff" + t[13:].hex()[:2] + ":" + t[14:].hex()
    body = struct.pack("!4x16s", t)
    if slla:
        body += struct.pack("!BB6s", 1, 1, mac(slla))
    msg = dpkt.icmp6.ICMP6(type=135, code=0, data=body)
    ip = dpkt.ip6.IP6(v=6, fc=0, flow=0, nxt=58, hlim=255, src=ip6(src_ip or IP6[src]),
                      dst=ip6(sn), plen=len(bytes(msg)), data=msg)
    d = ip6(sn)
    return eth("33:33:" + ":".join(f"{b:02x}" for b in d[12:]), MAC[src], 0x86DD, bytes(ip))


NEIGH2_6 = f"ip -n b -6 neigh add {IP6[2]} lladdr {MAC[2]} dev br0 nud permanent\n" \
           f"bridge -n b fdb add {MAC[2]} dev p2 master static\n"
SUPPRESS_ND = Case(
    name="br2_neigh_suppress_nd",
    script=base_script(ipv6=True) + "ip -n b link set dev p1 type bridge_slave neigh_suppress on\n"
    "ip -n b link set dev p2 type bridge_slave neigh_suppress on\n" + NEIGH2_6,
    sends=(Send("h3", "v3h", ns(3, IP6[2], slla=MAC[3])),
           Send("h3", "v3h", ns(3, IP6[2], slla="02:00:00:00:03:99")),  # reply to the option
           Send("h3", "v3h", eth_ip6("33:33:00:00:00:01", MAC[3],
                                     icmp6_na(IP6[3], "ff02::1", IP6[3], MAC[3],
                                              solicited=False, override=True)))),
    captures=HOSTS)


def na_reply(to_mac: str, to_ip: str) -> bytes:
    """br_nd_send's NA: from the neighbour's MAC/address, S=1 O=1, hop limit 255, TLLA."""
    return eth_ip6(to_mac, MAC[2], bytes(dpkt.ip6.IP6(
        v=6, fc=0, flow=0, nxt=58, hlim=255, src=ip6(IP6[2]), dst=ip6(to_ip), plen=32,
        data=dpkt.icmp6.ICMP6(type=136, code=0, data=struct.pack("!B3x16s", 0x60, ip6(IP6[2]))
                              + struct.pack("!BB6s", 2, 1, mac(MAC[2]))))))


def test_neigh_suppress_nd_kernel(kernel: Kernel) -> None:
    res = kernel.run(SUPPRESS_ND)
    replies = fr(res, 3)
    assert replies == [na_reply(MAC[3], IP6[3]), na_reply("02:00:00:00:03:99", IP6[3])]
    assert fr(res, 1) == fr(res, 2) == []  # NS answered, unsolicited NA kept off


def test_neigh_suppress_nd_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, SUPPRESS_ND)


# -------------------------------------------------------------- IGMP snooping
def igmp(src_mac: str, src_ip: str, dst_ip: str, typ: int, group: str, code: int = 0,
         df: bool = False) -> bytes:
    """IGMPv1/v2 message with the router alert option (RFC 2236 §2)."""
    m = dpkt.igmp.IGMP(type=typ, maxresp=code, group=ip4(group))
    ip = dpkt.ip.IP(src=ip4(src_ip), dst=ip4(dst_ip), p=2, ttl=1, id=0, tos=0xC0,
                    opts=b"\x94\x04\x00\x00", data=m)
    ip.hl = 6
    ip.df = 1 if df else 0
    d = ip4(dst_ip)
    dmac = "01:00:5e:" + ":".join(f"{b:02x}" for b in (d[1] & 0x7F, d[2], d[3]))
    return eth_ip(dmac, src_mac, bytes(ip))


def mcast_udp(src: int, group: str, payload: bytes) -> bytes:
    d = ip4(group)
    dmac = "01:00:5e:" + ":".join(f"{b:02x}" for b in (d[1] & 0x7F, d[2], d[3]))
    return eth_ip(dmac, MAC[src], udp4(IP4[src], group, 4000, 5000, payload, ttl=8, ident=0x4242))


QUERY = igmp(MAC[3], IP4[3], "224.0.0.1", 0x11, "0.0.0.0", code=1)   # max resp 0.1 s
REPORT = igmp(MAC[1], IP4[1], "239.1.1.1", 0x16, "239.1.1.1")
LEAVE = igmp(MAC[1], IP4[1], "224.0.0.2", 0x17, "239.1.1.1")
SNOOP_SENDS = (
    Send("h2", "v2h", mcast_udp(2, "239.1.1.1", b"before any querier: flooded")),
    Send("h3", "v3h", QUERY),
    Send("h1", "v1h", REPORT, delay_s=0.3),
    Send("h2", "v2h", mcast_udp(2, "239.1.1.1", b"member + router port"), delay_s=0.1),
    Send("h2", "v2h", mcast_udp(2, "239.2.2.2", b"unregistered: router port only")),
    Send("h1", "v1h", LEAVE),
)
MDB_QUERIES = ("bridge -n b -j mdb show", "bridge -n b -d mdb show")
SNOOPING = Case(name="br2_igmp_snooping", script=base_script(snooping=True),
                sends=SNOOP_SENDS, captures=HOSTS, settle=0.3, queries=MDB_QUERIES)
TO_UNICAST = Case(name="br2_mcast_to_unicast",
                  script=base_script(snooping=True)
                  + "ip -n b link set dev p1 type bridge_slave mcast_to_unicast on\n",
                  sends=SNOOP_SENDS[1:4], captures=HOSTS, settle=0.3)


def test_igmp_snooping_kernel(kernel: Kernel) -> None:
    res = kernel.run(SNOOPING)
    assert res.queries["bridge -n b -j mdb show"] == (
        '[{"mdb":[{"index":10,"dev":"br0","port":"p1","grp":"239.1.1.1","state":"temp",'
        '"flags":[]}],"router":{}}]\n')
    assert res.queries["bridge -n b -d mdb show"] == (
        "dev br0 port p1 grp 239.1.1.1 temp proto kernel \nrouter ports on br0: p3 \n")
    first = mcast_udp(2, "239.1.1.1", b"before any querier: flooded")
    member = mcast_udp(2, "239.1.1.1", b"member + router port")
    unreg = mcast_udp(2, "239.2.2.2", b"unregistered: router port only")
    assert fr(res, 1) == [first, QUERY, member]
    assert fr(res, 2) == [QUERY, LEAVE]       # the report goes to the router port only
    assert fr(res, 3) == [first, REPORT, member, unreg, LEAVE]


def test_igmp_snooping_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, SNOOPING)


def test_mcast_to_unicast_kernel(kernel: Kernel) -> None:
    res = kernel.run(TO_UNICAST)
    member = mcast_udp(2, "239.1.1.1", b"member + router port")
    assert fr(res, 1) == [QUERY, mac(MAC[1]) + member[6:]]
    assert fr(res, 3)[-1] == member


def test_mcast_to_unicast_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, TO_UNICAST)


# ------------------------------------------------------------------ MLD snooping
def mld(src: int, typ: int, group: str, dst: str, delay_ms: int = 0) -> bytes:
    """MLDv1 message (RFC 2710) behind a Hop-by-Hop header with router alert, from fe80::N."""
    s6, d6 = ip6(f"fe80::{src}"), ip6(dst)
    body = struct.pack("!BBHHH16s", typ, 0, 0, delay_ms, 0, ip6(group))
    ph = s6 + d6 + struct.pack("!I3xB", len(body), 58)
    c = dpkt.in_cksum(ph + body)
    body = body[:2] + struct.pack("!H", c) + body[4:]
    hbh = bytes([58, 0, 5, 2, 0, 0, 1, 0])
    ip = (bytes([0x60, 0, 0, 0]) + struct.pack("!H", len(hbh) + len(body)) + bytes([0, 1])
          + s6 + d6 + hbh + body)
    return eth("33:33:" + ":".join(f"{b:02x}" for b in d6[12:]), MAC[src], 0x86DD, ip)


def mcast_udp6(src: int, group: str, payload: bytes) -> bytes:
    d6 = ip6(group)
    return eth("33:33:" + ":".join(f"{b:02x}" for b in d6[12:]), MAC[src], 0x86DD,
               bytes(dpkt.ip6.IP6(v=6, fc=0, flow=0, nxt=17, hlim=8, src=ip6(f"fe80::{src}"),
                                  dst=d6, plen=8 + len(payload),
                                  data=dpkt.udp.UDP(sport=4000, dport=5000, ulen=8 + len(payload),
                                                    data=payload))))


MLD_QUERY = mld(3, 130, "::", "ff02::1", delay_ms=100)
MLD_SENDS = (
    Send("h3", "v3h", MLD_QUERY),
    Send("h1", "v1h", mld(1, 131, "ff0e::101", "ff0e::101"), delay_s=0.3),
    Send("h2", "v2h", mcast_udp6(2, "ff0e::101", b"member + router port"), delay_s=0.1),
    Send("h2", "v2h", mcast_udp6(2, "ff0e::202", b"unregistered")),
)
MLD_SNOOPING = Case(name="br2_mld_snooping", script=base_script(snooping=True), sends=MLD_SENDS,
                    captures=HOSTS, settle=0.3, queries=MDB_QUERIES)


def test_mld_snooping_kernel(kernel: Kernel) -> None:
    res = _clean(kernel.run(MLD_SNOOPING))
    member = mcast_udp6(2, "ff0e::101", b"member + router port")
    unreg = mcast_udp6(2, "ff0e::202", b"unregistered")
    assert res.frames[HOSTS[0]] == [MLD_QUERY, member]
    assert res.frames[HOSTS[1]] == [MLD_QUERY]
    assert res.frames[HOSTS[2]] == [member, unreg]  # the (filtered) report went here too


def test_mld_snooping_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, MLD_SNOOPING)


# ------------------------------------------------- suppression of our own address
SUPPRESS_LOCAL = Case(
    name="br2_neigh_suppress_local",
    script=base_script() + "ip -n b link set dev p1 type bridge_slave neigh_suppress on\n"
    "ip -n b addr add 10.0.0.254/24 dev br0\n",
    sends=(Send("h3", "v3h", arp_req(3, "10.0.0.254")),),
    captures=HOSTS)


def test_neigh_suppress_local_kernel(kernel: Kernel) -> None:
    res = kernel.run(SUPPRESS_LOCAL)
    # br0 itself answers; the request is marked replied and kept off the suppress port
    assert fr(res, 3) == [eth_arp(MAC[3], MAC_BR, arp(2, MAC_BR, "10.0.0.254", MAC[3], IP4[3]))]
    assert fr(res, 1) == [] and fr(res, 2) == [arp_req(3, "10.0.0.254")]


def test_neigh_suppress_local_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, SUPPRESS_LOCAL)


# ----------------------------------------- a request from the neighbour itself
SELF_REQ = eth_arp(BCAST, MAC[2], arp(1, MAC[2], "10.0.0.22", ZERO, IP4[2]))
PROXY_ARP_SELF = Case(
    name="br2_proxy_arp_self",
    script=base_script() + "ip -n b link set dev p2 type bridge_slave proxy_arp on\n" + NEIGH2,
    sends=(Send("h2", "v2h", SELF_REQ),),
    captures=HOSTS)


def test_proxy_arp_self_kernel(kernel: Kernel) -> None:
    """Linux 6.18 answers even the owner of the address (the proposed "don't reply when
    n->ha == sha" change is not in this kernel)."""
    res = kernel.run(PROXY_ARP_SELF)
    assert fr(res, 2) == [eth_arp(MAC[2], MAC[2], arp(2, MAC[2], IP4[2], MAC[2], "10.0.0.22"))]
    assert fr(res, 1) == fr(res, 3) == [SELF_REQ]


def test_proxy_arp_self_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, PROXY_ARP_SELF)


# ------------------------------------------------------ the bridge as IGMP querier
QUERIER = Case(
    name="br2_igmp_querier",
    script=base_script(snooping=True)
    + "ip -n b link set br0 type bridge mcast_query_response_interval 10 mcast_last_member_interval 20\n"
    "ip -n b link set br0 type bridge mcast_querier 1\n",
    sends=(Send("h1", "v1h", REPORT, delay_s=0.2),
           Send("h2", "v2h", mcast_udp(2, "239.1.1.1", b"m")),
           Send("h2", "v2h", mcast_udp(2, "239.2.2.2", b"u")),
           Send("h1", "v1h", LEAVE),
           Send("h2", "v2h", mcast_udp(2, "239.1.1.1", b"after the leave"), delay_s=0.6)),
    captures=HOSTS, settle=0.3)


def own_query(group: str, code: int) -> bytes:
    """br_ip4_multicast_alloc_query: from 0.0.0.0 and the bridge's MAC to 224.0.0.1, DF."""
    return igmp(MAC_BR, "0.0.0.0", "224.0.0.1", 0x11, group, code=code, df=True)


def test_igmp_querier_kernel(kernel: Kernel) -> None:
    """Our own querier: after the 0.1 s response interval the table is trusted (the
    unregistered group goes nowhere); a leave gets a group-specific query on its port only,
    and last_member_count × last_member_interval later that port's general query, by
    which time the group is gone."""
    res = kernel.run(QUERIER)
    assert fr(res, 1) == [mcast_udp(2, "239.1.1.1", b"m"), own_query("239.1.1.1", 2),
                          own_query("0.0.0.0", 1)]
    assert fr(res, 2) == fr(res, 3) == [LEAVE]
    t = [t for f, t in zip(res.frames[HOSTS[0]], res.times[HOSTS[0]]) if not _own_igmp(f)]
    assert 0.35 <= t[2] - t[1] <= 0.5


def test_igmp_querier_netstack_matches(kernel: Kernel) -> None:
    got = compare(kernel, QUERIER)
    t = got.times[HOSTS[0]]
    assert abs((t[2] - t[1]) - 0.4) < 0.01


# ------------------------------------------------------ the bridge as MLD querier
MLD_DONE = mld(1, 132, "ff0e::101", "ff02::2")
MLD_QUERIER = Case(
    name="br2_mld_querier",
    script=base_script(ipv6=True, snooping=True)
    + "ip -n b link set br0 type bridge mcast_query_response_interval 10 mcast_last_member_interval 20\n"
    "ip -n b link set br0 type bridge mcast_querier 1\n",
    sends=(Send("h1", "v1h", mld(1, 131, "ff0e::101", "ff0e::101"), delay_s=0.2),
           Send("h2", "v2h", mcast_udp6(2, "ff0e::101", b"m")),
           Send("h2", "v2h", mcast_udp6(2, "ff0e::202", b"u")),
           Send("h1", "v1h", MLD_DONE),
           Send("h2", "v2h", mcast_udp6(2, "ff0e::101", b"after the done"), delay_s=0.6)),
    captures=HOSTS, settle=0.3)
BR_LL = "fe80::ff:fe00:b0"  # EUI-64 of 02:00:00:00:00:b0


def own_mld_query(group: str, delay_ms: int) -> bytes:
    """br_ip6_multicast_alloc_query: from the bridge's link-local to ff02::1, hop limit 1,
    Hop-by-Hop router alert padded with two Pad1."""
    s6, d6 = ip6(BR_LL), ip6("ff02::1")
    body = struct.pack("!BBHHH16s", 130, 0, 0, delay_ms, 0, ip6(group))
    c = dpkt.in_cksum(s6 + d6 + struct.pack("!I3xB", len(body), 58) + body)
    body = body[:2] + struct.pack("!H", c) + body[4:]
    hbh = bytes([58, 0, 5, 2, 0, 0, 0, 0])
    ip = bytes([0x60, 0, 0, 0]) + struct.pack("!H", 32) + bytes([0, 1]) + s6 + d6 + hbh + body
    return eth("33:33:00:00:00:01", MAC_BR, 0x86DD, ip)


def test_mld_querier_kernel(kernel: Kernel) -> None:
    res = _clean(kernel.run(MLD_QUERIER))
    assert res.frames[HOSTS[0]] == [mcast_udp6(2, "ff0e::101", b"m"), own_mld_query("ff0e::101", 200),
                                    own_mld_query("::", 100)]
    assert res.frames[HOSTS[1]] == res.frames[HOSTS[2]] == []  # the done itself is filtered noise


def test_mld_querier_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, MLD_QUERIER)


# -------------------------------------------- permanent router port, fast leave
ROUTER_FASTLEAVE = Case(
    name="br2_mcast_router_fastleave",
    script=base_script(snooping=True)
    + "ip -n b link set dev p2 type bridge_slave mcast_router 2\n"
    "ip -n b link set dev p1 type bridge_slave fastleave on\n",
    sends=(Send("h3", "v3h", QUERY),
           Send("h1", "v1h", REPORT, delay_s=0.3),
           Send("h3", "v3h", mcast_udp(3, "239.1.1.1", b"to the member and p2"), delay_s=0.1),
           Send("h1", "v1h", LEAVE),
           Send("h3", "v3h", mcast_udp(3, "239.1.1.1", b"after a fast leave"))),
    captures=HOSTS, settle=0.3)


def test_mcast_router_fastleave_kernel(kernel: Kernel) -> None:
    """p2 is a permanent router port: it gets the report and every group's traffic; the
    fast-leave port p1 loses the group at its leave although another querier exists."""
    res = kernel.run(ROUTER_FASTLEAVE)
    m1 = mcast_udp(3, "239.1.1.1", b"to the member and p2")
    m2 = mcast_udp(3, "239.1.1.1", b"after a fast leave")
    assert fr(res, 1) == [QUERY, m1]
    assert fr(res, 2) == [QUERY, REPORT, m1, LEAVE, m2]
    assert fr(res, 3) == [REPORT, LEAVE]


def test_mcast_router_fastleave_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, ROUTER_FASTLEAVE)


# ------------------------------------------------ IGMPv3 report, igmp_version 2
def igmpv3_report(src: int, records: list[tuple[int, str]]) -> bytes:
    body = b"".join(struct.pack("!BBH4s", t, 0, 0, ip4(g)) for t, g in records)
    msg = struct.pack("!BBHHH", 0x22, 0, 0, 0, len(records)) + body
    msg = msg[:2] + struct.pack("!H", dpkt.in_cksum(msg)) + msg[4:]
    ip = dpkt.ip.IP(src=ip4(IP4[src]), dst=ip4("224.0.0.22"), p=2, ttl=1, id=0, tos=0xC0,
                    opts=b"\x94\x04\x00\x00", data=msg)
    ip.hl = 6
    return eth_ip("01:00:5e:00:00:16", MAC[src], bytes(ip))


V3_JOIN = igmpv3_report(1, [(4, "239.3.3.3"), (2, "239.4.4.4")])  # TO_EX {}, IS_EX {}
IGMPV3 = Case(
    name="br2_igmpv3_as_v2",
    script=base_script(snooping=True),
    sends=(Send("h3", "v3h", QUERY),
           Send("h1", "v1h", V3_JOIN, delay_s=0.3),
           Send("h2", "v2h", mcast_udp(2, "239.3.3.3", b"three")),
           Send("h2", "v2h", mcast_udp(2, "239.4.4.4", b"four"))),
    captures=HOSTS, settle=0.3, queries=MDB_QUERIES)


def test_igmpv3_as_v2_kernel(kernel: Kernel) -> None:
    """With mcast_igmp_version 2 a v3 report's records are (*,G) joins; the report itself
    (to 224.0.0.22, link-local) is flooded."""
    res = kernel.run(IGMPV3)
    three, four = mcast_udp(2, "239.3.3.3", b"three"), mcast_udp(2, "239.4.4.4", b"four")
    assert fr(res, 1) == [QUERY, three, four]
    assert fr(res, 2) == [QUERY, V3_JOIN]
    assert fr(res, 3) == [V3_JOIN, three, four]


def test_igmpv3_as_v2_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, IGMPV3)


QUERIER_IFADDR = Case(
    name="br2_igmp_querier_ifaddr",
    script=base_script(snooping=True) + "ip -n b addr add 10.0.0.254/24 dev br0\n"
    "ip -n b link set br0 type bridge mcast_query_use_ifaddr 1 mcast_last_member_interval 30\n"
    "ip -n b link set br0 type bridge mcast_querier 1\n",
    sends=(Send("h1", "v1h", REPORT), Send("h1", "v1h", LEAVE)),
    captures=HOSTS, settle=0.2)


def test_igmp_querier_ifaddr_kernel(kernel: Kernel) -> None:
    """mcast_query_use_ifaddr: the group-specific query comes from the bridge's address."""
    res = kernel.run(QUERIER_IFADDR)
    assert fr(res, 1) == [igmp(MAC_BR, "10.0.0.254", "224.0.0.1", 0x11, "239.1.1.1", code=3, df=True)]


def test_igmp_querier_ifaddr_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, QUERIER_IFADDR)


# ------------------------------------------- router discovery: PIM hello, MRD (v4/v6)
def _pim_hello(src: int) -> bytes:
    body = bytes([0x20, 0, 0, 0]) + bytes([0, 1, 0, 2, 0, 105])  # v2 hello, holdtime 105
    body = body[:2] + struct.pack("!H", dpkt.in_cksum(body)) + body[4:]
    return eth_ip("01:00:5e:00:00:0d", MAC[src], bytes(dpkt.ip.IP(
        src=ip4(IP4[src]), dst=ip4("224.0.0.13"), p=103, ttl=1, data=body)))


def _mrd_adv4(src: int) -> bytes:
    body = bytes([0x30, 20, 0, 0, 0, 125, 0, 2])  # RFC 4286 advertisement
    body = body[:2] + struct.pack("!H", dpkt.in_cksum(body)) + body[4:]
    ip = dpkt.ip.IP(src=ip4(IP4[src]), dst=ip4("224.0.0.106"), p=2, ttl=1, tos=0xC0,
                    opts=b"\x94\x04\x00\x00", data=body)
    ip.hl = 6
    return eth_ip("01:00:5e:00:00:6a", MAC[src], bytes(ip))


def _mrd_adv6(src: int) -> bytes:
    s6, d6 = ip6(f"fe80::{src}"), ip6("ff02::6a")
    body = bytes([151, 20, 0, 0, 0, 125, 0, 2])
    c = dpkt.in_cksum(s6 + d6 + struct.pack("!I3xB", len(body), 58) + body)
    body = body[:2] + struct.pack("!H", c) + body[4:]
    hbh = bytes([58, 0, 5, 2, 0, 0, 1, 0])
    return eth("33:33:00:00:00:6a", MAC[src], 0x86DD,
               bytes([0x60, 0, 0, 0]) + struct.pack("!H", 16) + bytes([0, 1]) + s6 + d6 + hbh + body)


ROUTER_DISCOVERY = Case(
    name="br2_router_discovery",
    script=base_script(snooping=True),
    sends=(Send("h2", "v2h", QUERY), Send("h3", "v3h", _pim_hello(3)),
           Send("h1", "v1h", _mrd_adv4(1)), Send("h3", "v3h", MLD_QUERY),
           Send("h1", "v1h", _mrd_adv6(1)),
           Send("h2", "v2h", mcast_udp(2, "239.5.5.5", b"v4"), delay_s=0.3),
           Send("h2", "v2h", mcast_udp6(2, "ff0e::505", b"v6"))),
    captures=HOSTS, settle=0.3)


def test_router_discovery_kernel(kernel: Kernel) -> None:
    """A PIM hello and IPv4/IPv6 MRD advertisements make their ports router ports, so the
    unregistered groups reach them (and the IPv4/IPv6 queriers' ports)."""
    res = _clean(kernel.run(ROUTER_DISCOVERY))
    v4, v6 = mcast_udp(2, "239.5.5.5", b"v4"), mcast_udp6(2, "ff0e::505", b"v6")
    assert res.frames[HOSTS[0]][-2:] == [v4, v6]
    assert res.frames[HOSTS[2]][-2:] == [v4, v6]
    assert v4 not in res.frames[HOSTS[1]] and v6 not in res.frames[HOSTS[1]]


def test_router_discovery_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, ROUTER_DISCOVERY)


SUPPRESS_ND_ROUTER = Case(
    name="br2_neigh_suppress_nd_router",
    script=base_script(ipv6=True) + "ip -n b link set dev p2 type bridge_slave neigh_suppress on\n"
    + NEIGH2_6.replace("nud permanent", "router nud permanent"),
    sends=(Send("h3", "v3h", eth_ip6("33:33:ff:00:00:02", MAC[3], bytes(dpkt.ip6.IP6(
        v=6, fc=0xA0, flow=0, nxt=58, hlim=255, src=ip6(IP6[3]), dst=ip6("ff02::1:ff00:2"), plen=32,
        data=dpkt.icmp6.ICMP6(type=135, code=0, data=struct.pack("!4x16s", ip6(IP6[2]))
                              + struct.pack("!BB6s", 1, 1, mac(MAC[3]))))))),),
    captures=HOSTS)


def test_neigh_suppress_nd_router_kernel(kernel: Kernel) -> None:
    """A router neighbour answers with R=1; the NA keeps the NS's top 4 traffic-class bits
    (tclass 0xa0 → 0xa0), flow label 0."""
    res = kernel.run(SUPPRESS_ND_ROUTER)
    (na,) = [f for f in fr(res, 3) if f[12:14] == b"\x86\xdd"]
    assert na[14:16] == b"\x6a\x00" and na[14 + 40 + 4] == 0xE0  # R|S|O


def test_neigh_suppress_nd_router_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, SUPPRESS_ND_ROUTER)


# ------------------------------------- a local address on an upper device (macvlan)
SUPPRESS_UPPER = Case(
    name="br2_neigh_suppress_upper",
    script=base_script() + "ip -n b link set dev p1 type bridge_slave neigh_suppress on\n"
    "ip -n b link add link br0 name mv0 address 02:00:00:00:00:99 type macvlan mode bridge\n"
    "ip -n b addr add 10.0.0.250/24 dev mv0\n"
    "ip -n b link set mv0 up\n",
    sends=(Send("h3", "v3h", arp_req(3, "10.0.0.250")),),
    captures=HOSTS, settle=0.2)


def test_neigh_suppress_upper_kernel(kernel: Kernel) -> None:
    """br_is_local_ip walks the bridge's uppers: an address on a macvlan above br0 marks
    the request (kept off the suppress port); br0 and mv0 both answer it (arp_ignore 0)."""
    res = kernel.run(SUPPRESS_UPPER)
    assert fr(res, 1) == [] and fr(res, 2) == [arp_req(3, "10.0.0.250")]
    assert [f[6:12] for f in fr(res, 3)] == [mac(MAC_BR), mac("02:00:00:00:00:99")]


def test_neigh_suppress_upper_netstack_matches(kernel: Kernel) -> None:
    compare(kernel, SUPPRESS_UPPER)
