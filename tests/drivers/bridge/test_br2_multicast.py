"""IGMP/MLD snooping (br_multicast.c) on netstack's bridge: the kernel-pinned flows of
test_br2_kernel.py driven from Python, timers on the virtual clock, MLD, fast leave,
router ports, the MDB API, bad IGMP dropped, option handling."""

from __future__ import annotations

import dpkt
import pytest

from netstack.drivers.bridge import br_multicast as bm
from netstack.drivers.bridge.br_mdb import br_mdb_add, br_mdb_del, br_mdb_dump
from netstack.drivers.bridge.br_private import BR_MULTICAST_FAST_LEAVE, BR_MULTICAST_TO_UNICAST
from netstack.errors import KernelError
from netstack.packet.igmp import (ICMPV6_MGM_QUERY, ICMPV6_MGM_REPORT, ICMPV6_MLD2_REPORT,
                                  CHANGE_TO_EXCLUDE, CHANGE_TO_INCLUDE, GroupRecord,
                                  IgmpMessage, MldMessage, build_igmp, build_mld)
from test_br2_kernel import LEAVE, QUERY, REPORT, SNOOP_SENDS, igmp, mcast_udp
from test_br2_topo import HOSTS, MAC, bridge, port, stack
from kernel.cases import eth, eth_ip, ip4, ip6  # noqa: E402
from kernel.oracle import Send  # noqa: E402

SEC = 1_000_000_000


def run(s, sends):  # type: ignore[no-untyped-def]
    caps = {i: s.capture(h, d) for i, (h, d) in enumerate(HOSTS, 1)}
    for snd in sends:
        if snd.delay_s:
            s.advance(snd.delay_s)
        s.inject(snd.ns, snd.dev, [snd.frame])
    return {i: [f.data for f in c] for i, c in caps.items()}


def test_snooping_flow_as_pinned_on_the_kernel() -> None:
    s = stack(snooping=True)
    got = run(s, SNOOP_SENDS)
    first = mcast_udp(2, "239.1.1.1", b"before any querier: flooded")
    member = mcast_udp(2, "239.1.1.1", b"member + router port")
    unreg = mcast_udp(2, "239.2.2.2", b"unregistered: router port only")
    assert got[1] == [first, QUERY, member]
    assert got[2] == [QUERY, LEAVE]
    assert got[3] == [first, REPORT, member, unreg, LEAVE]
    m = bridge(s).multicast
    assert [p.dev.name for p in bm.br_multicast_router_ports(bridge(s), 0x0800)] == ["p3"]
    assert m.ip4_querier == ip4("10.0.0.3")


def test_mcast_to_unicast_rewrites_destination() -> None:
    s = stack(snooping=True)
    port(s, "p1").flags |= BR_MULTICAST_TO_UNICAST
    got = run(s, SNOOP_SENDS[1:4])
    member = mcast_udp(2, "239.1.1.1", b"member + router port")
    assert got[1] == [QUERY, bytes.fromhex(MAC[1].replace(":", "")) + member[6:]]
    assert got[3][-1] == member


def test_snooping_waits_for_the_query_delay() -> None:
    """Until the first query's max response time (0.1 s) has passed, the delay timer
    runs and unregistered groups still flood; afterwards only the router port gets them."""
    s = stack(snooping=True)
    s.inject("h3", "v3h", [QUERY])
    early = mcast_udp(2, "239.2.2.2", b"early")
    late = mcast_udp(2, "239.2.2.2", b"late")
    got = run(s, [Send("h2", "v2h", early), Send("h2", "v2h", late, delay_s=0.2)])
    assert got[1] == [early]
    assert got[3] == [early, late]


def test_membership_and_router_timers_expire() -> None:
    s = stack(snooping=True)
    run(s, SNOOP_SENDS[1:3])
    br = bridge(s)
    assert [e.port for e in br_mdb_dump(br)] == ["p1"]
    (e,) = br_mdb_dump(br)
    assert e.grp == "239.1.1.1" and e.state == "temp" and 25900 <= e.timer_cs <= 26000
    probe = s.world.new_packet(b"")
    probe.protocol = 0x0800
    assert bm.br_multicast_querier_exists(br, probe, None)
    s.advance(255.5)  # querier_interval: the router port and other querier are forgotten
    assert bm.br_multicast_router_ports(br, 0x0800) == []
    assert not bm.br_multicast_querier_exists(br, probe, None)
    s.advance(5)  # membership_interval 260 s
    assert br_mdb_dump(br) == []


def test_leave_without_querier_times_out_after_last_member_interval() -> None:
    s = stack(snooping=True)
    s.inject("h1", "v1h", [REPORT])
    br = bridge(s)
    assert len(br_mdb_dump(br)) == 1
    s.inject("h1", "v1h", [LEAVE])  # no other querier: 2 × 1 s
    s.advance(1.9)
    assert len(br_mdb_dump(br)) == 1
    s.advance(0.2)
    assert br_mdb_dump(br) == []


def test_fast_leave_removes_at_once() -> None:
    s = stack(snooping=True)
    port(s, "p1").flags |= BR_MULTICAST_FAST_LEAVE
    s.inject("h3", "v3h", [QUERY])
    s.inject("h1", "v1h", [REPORT])
    assert len(br_mdb_dump(bridge(s))) == 1
    s.inject("h1", "v1h", [LEAVE])
    assert br_mdb_dump(bridge(s)) == []


def _igmpv3_report(src: int, recs: tuple[GroupRecord, ...]) -> bytes:
    body = build_igmp(IgmpMessage(0x22, "report", 3, records=recs))
    ip = dpkt.ip.IP(src=ip4(f"10.0.0.{src}"), dst=ip4("224.0.0.22"), p=2, ttl=1, tos=0xC0,
                    opts=b"\x94\x04\x00\x00", data=body)
    ip.hl = 6
    return eth_ip("01:00:5e:00:00:16", MAC[src], bytes(ip))


def test_igmpv3_report_read_as_v2() -> None:
    s = stack(snooping=True)
    g = ip4("239.9.9.9")
    s.inject("h1", "v1h", [_igmpv3_report(1, (GroupRecord(CHANGE_TO_EXCLUDE, g),))])
    assert [e.grp for e in br_mdb_dump(bridge(s))] == ["239.9.9.9"]
    port(s, "p1").flags |= BR_MULTICAST_FAST_LEAVE
    s.inject("h1", "v1h", [_igmpv3_report(1, (GroupRecord(CHANGE_TO_INCLUDE, g),))])
    assert br_mdb_dump(bridge(s)) == []


def test_truncated_v3_report_keeps_earlier_records_and_drops() -> None:
    s = stack(snooping=True)
    f = bytearray(_igmpv3_report(1, (GroupRecord(CHANGE_TO_EXCLUDE, ip4("239.9.9.9")),
                                      GroupRecord(CHANGE_TO_EXCLUDE, ip4("239.9.9.8"), (ip4("1.2.3.4"),)))))
    # claim 3 sources in the second record, fix the IGMP checksum
    off = 14 + 24 + 8 + 8
    f[off + 2:off + 4] = b"\x00\x03"
    igmp_msg = bytearray(f[14 + 24:])
    igmp_msg[2:4] = b"\0\0"
    c = dpkt.in_cksum(bytes(igmp_msg))
    f[14 + 24 + 2:14 + 24 + 4] = c.to_bytes(2, "big")
    caps = {i: s.capture(h, d) for i, (h, d) in enumerate(HOSTS, 1)}
    s.inject("h1", "v1h", [bytes(f)])
    assert [e.grp for e in br_mdb_dump(bridge(s))] == ["239.9.9.9"]
    assert caps[2] == [] and caps[3] == []  # -EINVAL from the report: the frame is dropped
    assert s.drops("b")["NOT_SPECIFIED"] >= 1


def test_bad_igmp_checksum_is_dropped() -> None:
    s = stack(snooping=True)
    bad = bytearray(REPORT)
    bad[-1] ^= 0xFF
    caps = {i: s.capture(h, d) for i, (h, d) in enumerate(HOSTS, 1)}
    s.inject("h1", "v1h", [bytes(bad)])
    assert caps[2] == caps[3] == [] and br_mdb_dump(bridge(s)) == []


def test_general_query_to_wrong_destination_is_invalid() -> None:
    s = stack(snooping=True)
    q = igmp(MAC[3], "10.0.0.3", "239.1.1.1", 0x11, "0.0.0.0", code=1)
    caps = {i: s.capture(h, d) for i, (h, d) in enumerate(HOSTS, 1)}
    s.inject("h3", "v3h", [q])
    assert caps[1] == [] and bm.br_multicast_router_ports(bridge(s), 0x0800) == []


def test_link_local_groups_are_not_snooped() -> None:
    s = stack(snooping=True)
    s.inject("h1", "v1h", [igmp(MAC[1], "10.0.0.1", "224.0.0.251", 0x16, "224.0.0.251")])
    assert br_mdb_dump(bridge(s)) == []


def _mld(src: int, msg: MldMessage, dst: str, hbh: bool = True) -> bytes:
    s6, d6 = ip6(f"fe80::{src}"), ip6(dst)
    body = build_mld(msg, s6, d6)
    hop = bytes([58, 0, 5, 2, 0, 0, 1, 0]) if hbh else b""
    nxt = 0 if hbh else 58
    ip = (bytes([0x60, 0, 0, 0]) + (len(hop) + len(body)).to_bytes(2, "big") + bytes([nxt, 1])
          + s6 + d6 + hop + body)
    return eth("33:33:" + ":".join(f"{b:02x}" for b in d6[12:]), MAC[src], 0x86DD, ip)


def test_mld_query_report_and_v2_report() -> None:
    s = stack(snooping=True)
    q = _mld(3, MldMessage(ICMPV6_MGM_QUERY, "query", 1, 100, bytes(16)), "ff02::1")
    g = "ff0e::101"
    r = _mld(1, MldMessage(ICMPV6_MGM_REPORT, "report", 1, group=ip6(g)), g)
    s.inject("h3", "v3h", [q])
    s.advance(0.2)
    s.inject("h1", "v1h", [r])
    r2 = _mld(2, MldMessage(ICMPV6_MLD2_REPORT, "report", 2,
                            records=(GroupRecord(CHANGE_TO_EXCLUDE, ip6("ff0e::202")),)), "ff02::16")
    s.inject("h2", "v2h", [r2])
    dump = {(e.port, e.grp) for e in br_mdb_dump(bridge(s))}
    assert dump == {("p1", g), ("p2", "ff0e::202")}
    assert [p.dev.name for p in bm.br_multicast_router_ports(bridge(s), 0x86DD)] == ["p3"]
    # MLD without the hop-by-hop header is not MLD for snooping
    s.inject("h2", "v2h", [_mld(2, MldMessage(ICMPV6_MGM_REPORT, "report", 1, group=ip6("ff0e::303")),
                                "ff0e::303", hbh=False)])
    assert ("p2", "ff0e::303") not in {(e.port, e.grp) for e in br_mdb_dump(bridge(s))}


def test_static_mdb_entries() -> None:
    s = stack(snooping=True)
    br = bridge(s)
    br_mdb_add(br, port(s, "p2"), "239.5.5.5", permanent=True)
    with pytest.raises(KernelError):
        br_mdb_add(br, port(s, "p2"), "239.5.5.5", permanent=True)
    with pytest.raises(KernelError):
        br_mdb_add(br, port(s, "p2"), "224.0.0.5")
    (e,) = br_mdb_dump(br)
    assert (e.port, e.state, e.timer_cs) == ("p2", "permanent", 0)
    s.advance(300)
    assert len(br_mdb_dump(br)) == 1
    br_mdb_del(br, port(s, "p2"), "239.5.5.5")
    with pytest.raises(KernelError):
        br_mdb_del(br, port(s, "p2"), "239.5.5.5")


def test_port_removal_forgets_groups() -> None:
    s = stack(snooping=True)
    s.inject("h1", "v1h", [REPORT])
    assert br_mdb_dump(bridge(s))
    s.run_script("ip -n b link set p1 nomaster\n")
    assert br_mdb_dump(bridge(s)) == []


def test_options() -> None:
    s = stack(snooping=True)
    br = bridge(s)
    bm.br_multicast_set_option(br, "mcast_membership_interval", 1000)
    assert dict(bm.br_multicast_info(br))["mcast_membership_interval"] == 1000
    with pytest.raises(KernelError):
        bm.br_multicast_set_option(br, "mcast_router", 7)
    with pytest.raises(KernelError):
        bm.br_multicast_set_option(br, "mcast_igmp_version", 4)
    with pytest.raises(KernelError):  # needs vlan_filtering (BR4)
        bm.br_multicast_set_option(br, "mcast_vlan_snooping", 1)
    bm.br_multicast_port_set_option(port(s, "p2"), "mcast_router", 2)
    assert [p.dev.name for p in bm.br_multicast_router_ports(br, 0x0800)] == ["p2"]
    bm.br_multicast_port_set_option(port(s, "p2"), "mcast_router", 0)
    assert bm.br_multicast_router_ports(br, 0x0800) == []
    bm.br_multicast_set_option(br, "mcast_snooping", 0)
    s.inject("h1", "v1h", [REPORT])
    assert br_mdb_dump(br) == []
    s.run_script("ip -n b link set br0 type bridge mcast_snooping 1 mcast_membership_interval 100\n")
    s.inject("h1", "v1h", [REPORT])
    (e,) = br_mdb_dump(br)
    assert e.timer_cs == 100


def test_port_router_cli_value_and_fuzzed_igmp_never_raises() -> None:
    from hypothesis import given, settings, strategies as st

    s = stack(snooping=True)
    s.run_script("ip -n b link set dev p2 type bridge_slave mcast_router 2\n")
    assert bm.br_multicast_port_router(port(s, "p2")) == 2
    assert "mcast_router 2" in s.command("ip -n b -d link show p2").stdout
    frames = [QUERY, REPORT, LEAVE, _igmpv3_report(1, (GroupRecord(CHANGE_TO_EXCLUDE, ip4("239.9.9.9")),)),
              _mld(3, MldMessage(ICMPV6_MGM_QUERY, "query", 1, 100, bytes(16)), "ff02::1")]

    @settings(max_examples=150, deadline=None)
    @given(st.integers(0, len(frames) - 1), st.integers(14, 90), st.binary(min_size=1, max_size=6),
           st.booleans())
    def fuzz(i: int, at: int, junk: bytes, cut: bool) -> None:
        f = bytearray(frames[i])
        at = min(at, len(f) - 1)
        if cut:
            del f[at:]
        else:
            f[at:at + len(junk)] = junk
        if len(f) >= 14:
            s.inject("h1", "v1h", [bytes(f)])

    fuzz()


def test_own_querier_startup_and_regular_queries() -> None:
    from test_br2_kernel import own_query

    s = stack(snooping=True)
    caps = {i: s.capture(h, d) for i, (h, d) in enumerate(HOSTS, 1)}
    s.run_script("ip -n b link set br0 type bridge mcast_querier 1\n")
    q = own_query("0.0.0.0", 100)  # query_response_interval 10 s
    assert all([f.data for f in c] == [q] for c in caps.values())
    s.advance(31.3)  # startup_query_interval (31.248 s at HZ=250): the 2nd startup query
    assert all(len(c) == 2 for c in caps.values())
    s.advance(124.9)  # startup_query_count (2) reached: query_interval 125 s from now on
    assert all(len(c) == 2 for c in caps.values())
    s.advance(0.1)
    assert all(len(c) == 3 for c in caps.values())
    # another querier heard: we fall silent
    s.inject("h3", "v3h", [QUERY])
    s.advance(130)
    assert len(caps[1]) == 4  # only the other querier's query, flooded
    assert "mcast_querier 1" in s.command("ip -n b -d link show br0").stdout


def test_own_querier_mld_needs_an_ipv6_source() -> None:
    s = stack(snooping=True)  # IPv6 disabled in "b": no MLD query, no IPv6 querier
    caps = {i: s.capture(h, d) for i, (h, d) in enumerate(HOSTS, 1)}
    s.run_script("ip -n b link set br0 type bridge mcast_querier 1\n")
    assert all(len(c) == 1 for c in caps.values())  # the IGMP query only
    br = bridge(s)
    assert not br.multicast.has_ipv6_addr
    probe = s.world.new_packet(b"")
    probe.protocol = 0x86DD
    s.advance(11)
    assert not bm.br_multicast_querier_exists(br, probe, None)
    probe.protocol = 0x0800
    assert bm.br_multicast_querier_exists(br, probe, None)
