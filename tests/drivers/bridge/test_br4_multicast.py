"""IGMPv3/MLDv2 source filtering on the virtual clock (netstack/drivers/bridge/
br_multicast.py): the RFC 3376 §6.4 / RFC 3810 §7.4 state table as br_multicast.c runs
it, source and group timers, the (S,G) forwarding entries and their invariants under
random record sequences, malformed reports, the source limit, mcast_vlan_snooping."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

_HERE = Path(__file__).resolve().parent
for _p in (str(_HERE.parents[1]), str(_HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from netstack.drivers.bridge import br_multicast as bm  # noqa: E402
from netstack.errors import KernelError, NotSupported  # noqa: E402
from test_br2_topo import bridge, port, stack  # noqa: E402
from test_br4_kernel import (ALLOW, BLOCK, IS_EX, IS_IN, TO_EX, TO_IN, V3, mcast_from,  # noqa: E402
                             mld2_report, v3_report)

G = "239.1.1.1"
GB = bytes([239, 1, 1, 1])
SEC = bm.SEC
GMI = 260 * SEC


def ip(x: str) -> bytes:
    return bytes(int(p) for p in x.split("."))


def pg_of(s, portname: str = "p1"):  # type: ignore[no-untyped-def]
    mp = bridge(s).multicast.mdb.get(bm.mdb_key(bm.ETH_P_IP, GB, 0))
    if mp is None:
        return None
    return next((p for p in mp.ports if p.port is port(s, portname)), None)


def state(s, portname: str = "p1"):  # type: ignore[no-untyped-def]
    """(mode, {source: remaining seconds or 0 when stopped}, group timer seconds)."""
    pg = pg_of(s, portname)
    if pg is None:
        return None
    now = s.world.clock.now
    srcs = {".".join(map(str, e.addr)): (round((e.expires - now) / SEC, 2) if e.timer.active else 0)
            for e in pg.src_list}
    gt = round((pg.timer.expires - now) / SEC, 2) if pg.timer.active else 0
    return ("INCLUDE" if pg.filter_mode == bm.MCAST_INCLUDE else "EXCLUDE", srcs, gt)


def rep(s, *records, host: int = 1) -> None:  # type: ignore[no-untyped-def]
    s.inject(f"h{host}", f"v{host}h", [v3_report(host, [(t, G, list(ss)) for t, ss in records])])


def v3stack():  # type: ignore[no-untyped-def]
    return stack(snooping=True, extra=V3)


A, B, C = "10.0.0.2", "10.0.0.3", "10.0.0.4"


def test_include_transitions() -> None:
    """INCLUDE(A) rows of RFC 3376 §6.4.1/6.4.2."""
    s = v3stack()
    rep(s, (IS_IN, [A]))
    assert state(s) == ("INCLUDE", {A: 260}, 0)
    rep(s, (ALLOW, [B]))                                 # INCLUDE (A+B), (B)=GMI
    assert state(s) == ("INCLUDE", {B: 260, A: 260}, 0)
    rep(s, (BLOCK, [A]))                                 # INCLUDE (A); Q(G,A*B): A → LMQT
    assert state(s) == ("INCLUDE", {B: 260, A: 2}, 0)    # (lowered even with no querier)
    rep(s, (TO_IN, [B]))                                 # (B)=GMI, Q(G,A-B): A already at LMQT
    assert state(s) == ("INCLUDE", {B: 260, A: 2}, 0)
    s.advance(2.5)                                       # A expires in INCLUDE mode: it goes
    assert state(s) == ("INCLUDE", {B: 257.5}, 0)
    rep(s, (TO_EX, [B, C]))                              # EXCLUDE (A*B, B-A): C blocked
    assert state(s) == ("EXCLUDE", {C: 0, B: 2}, 260)


def test_exclude_transitions_and_group_timer() -> None:
    s = v3stack()
    rep(s, (IS_EX, [A]))                                 # INCLUDE{} → EXCLUDE ({}, {A})
    assert state(s) == ("EXCLUDE", {A: 0}, 260)
    rep(s, (ALLOW, [A]))                                 # EXCLUDE (X+A, Y-A)
    assert state(s) == ("EXCLUDE", {A: 260}, 260)
    rep(s, (IS_EX, [B]))                                 # EXCLUDE (A-Y, Y*A): delete X-A
    assert state(s) == ("EXCLUDE", {B: 260}, 260)
    rep(s, (BLOCK, [C]))                                 # (A-X-Y) = group timer, Q(G,A-Y)
    assert state(s) == ("EXCLUDE", {C: 2, B: 260}, 260)
    rep(s, (TO_IN, [B]))                                 # Q(G,X-A), Q(G): group → LMQT
    assert state(s) == ("EXCLUDE", {C: 2, B: 260}, 2)
    s.advance(3)                                         # group timer: back to INCLUDE
    assert state(s) == ("INCLUDE", {B: 257}, 0)
    s.advance(257)
    assert state(s) == ("INCLUDE", {B: 0.0}, 0)          # due, but the timer wheel's slack
    s.advance(17)                                        # (4096 jiffies at this range) is kept
    assert state(s) is None and bridge(s).multicast.mdb == {}


def test_forwarding_follows_the_sg_entries() -> None:
    s = v3stack()
    s.run_script("ip -n b link set dev p3 type bridge_slave mcast_router 2\n"
                 "ip -n b link set br0 type bridge mcast_querier 1\n", name="q.sh")
    s.advance(11)  # the querier's response interval has passed
    cap = s.capture("h1", "v1h")
    rep(s, (IS_IN, [A]))
    rep(s, (IS_EX, [B]), host=2)
    m = bridge(s).multicast
    sg = m.mdb[bm.mdb_key(bm.ETH_P_IP, GB, 0, ip(A))]
    # p1's own (S,G) and p2 added because its (*,G) is EXCLUDE
    assert [(p.port.dev.name, p.flags) for p in sg.ports] == [("p1", 0), ("p2", bm.MDB_PG_FLAGS_STAR_EXCL)]
    n = len(cap)
    s.inject("h3", "v3h", [mcast_from(3, A, G, b"a"), mcast_from(3, B, G, b"b"), mcast_from(3, C, G, b"c")])
    assert [f.data[-1:] for f in cap[n:]] == [b"a"]
    rep(s, (TO_IN, []))                                  # p1 leaves (S,G) after LMQT; the
    s.advance(3)                                         # star-excl-only (S,G) goes with it
    assert bm.mdb_key(bm.ETH_P_IP, GB, 0, ip(A)) not in m.mdb
    assert pg_of(s, "p1") is None and pg_of(s, "p2") is not None


def test_source_limit_and_bad_sources() -> None:
    s = v3stack()
    rep(s, (IS_IN, ["0.1.2.3", "224.1.1.1"] + [f"10.1.0.{i}" for i in range(40)]))
    st_ = state(s)
    assert st_ is not None and len(st_[1]) == bm.PG_SRC_ENT_LIMIT
    assert "0.1.2.3" not in st_[1] and "224.1.1.1" not in st_[1]


def test_v2_report_in_v3_mode_keeps_include_and_arms_the_group_timer() -> None:
    from test_br2_kernel import REPORT
    s = v3stack()
    s.inject("h1", "v1h", [REPORT])
    mp = bridge(s).multicast.mdb[bm.mdb_key(bm.ETH_P_IP, GB, 0)]
    assert mp.ports[0].filter_mode == bm.MCAST_EXCLUDE and mp.ports[0].timer.active


def test_mldv2_state_uses_ipv6_sources() -> None:
    s = stack(snooping=True, extra="ip -n b link set br0 type bridge mcast_mld_version 2\n")
    s.inject("h1", "v1h", [mld2_report(1, [(IS_EX, "ff0e::1", ["2001:db8::9"])])])
    m = bridge(s).multicast
    import ipaddress
    g6 = ipaddress.ip_address("ff0e::1").packed
    s6 = ipaddress.ip_address("2001:db8::9").packed
    pg = m.mdb[bm.mdb_key(bm.ETH_P_IPV6, g6, 0)].ports[0]
    assert pg.filter_mode == bm.MCAST_EXCLUDE and [e.addr for e in pg.src_list] == [s6]
    assert m.mdb[bm.mdb_key(bm.ETH_P_IPV6, g6, 0, s6)].ports[0].flags & bm.MDB_PG_FLAGS_BLOCKED


def test_vlan_snooping_option() -> None:
    s = v3stack()
    with pytest.raises(KernelError, match="vlan filtering disabled"):
        bm.br_multicast_set_option(bridge(s), "mcast_vlan_snooping", 1)
    bm.br_multicast_set_option(bridge(s), "mcast_vlan_snooping", 0)
    bridge(s).vlan_enabled = True
    with pytest.raises(NotSupported):
        bm.br_multicast_set_option(bridge(s), "mcast_vlan_snooping", 1)


def _invariants(s) -> None:  # type: ignore[no-untyped-def]
    m = bridge(s).multicast
    for k, mp in m.mdb.items():
        assert k == bm.mdb_key(mp.proto, mp.group, mp.vid, mp.src)
        assert mp.ports or mp.host_joined
        for pg in mp.ports:
            assert pg.mp is mp
            if not mp.is_star_g:
                assert m.sg_port[(k, id(pg.port))] is pg
                assert not pg.src_list
            for e in pg.src_list:
                if e.flags & bm.BR_SGRP_F_INSTALLED:
                    sg = m.mdb.get(bm.mdb_key(mp.proto, mp.group, mp.vid, e.addr))
                    assert sg is not None and any(p.port is pg.port for p in sg.ports)
            if mp.is_star_g and pg.filter_mode == bm.MCAST_INCLUDE and not pg.src_list:
                # ALLOW {} / IS_IN {}… on a new group: INCLUDE {} without a timer stays,
                # as on Linux 6.18 (measured)
                assert not pg.timer.active
    for (k, _), pg in m.sg_port.items():
        assert k in m.mdb and pg in m.mdb[k].ports


RECORD = st.tuples(st.integers(1, 6), st.lists(st.sampled_from([A, B, C]), max_size=3, unique=True))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3), RECORD, st.sampled_from([0.0, 0.5, 3.0])), max_size=10))
def test_random_record_sequences_keep_the_mdb_consistent(seq) -> None:  # type: ignore[no-untyped-def]
    s = v3stack()
    for host, (rtype, srcs), dt in seq:
        rep(s, (rtype, srcs), host=host)
        _invariants(s)
        if dt:
            s.advance(dt)
            _invariants(s)
    s.advance(600)
    m = bridge(s).multicast
    assert m.sg_port == {}
    assert all(not pg.src_list and pg.filter_mode == bm.MCAST_INCLUDE
               for mp in m.mdb.values() for pg in mp.ports)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=80))
def test_fuzzed_v3_report_bodies_never_raise(body: bytes) -> None:
    import dpkt
    from kernel.cases import eth_ip, ip4
    msg = bytearray(bytes((0x22, 0, 0, 0)) + body)
    c = dpkt.in_cksum(bytes(msg))
    msg[2], msg[3] = c >> 8, c & 0xFF
    ipp = dpkt.ip.IP(src=ip4("10.0.0.1"), dst=ip4("224.0.0.22"), p=2, ttl=1, data=bytes(msg))
    s = _FUZZ_STACK
    s.inject("h1", "v1h", [eth_ip("01:00:5e:00:00:16", "02:00:00:00:01:01", bytes(ipp))])
    _invariants(s)


_FUZZ_STACK = v3stack()
