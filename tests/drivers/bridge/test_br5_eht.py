"""Explicit host tracking on ``fastleave`` ports under IGMPv3/MLDv2
(netstack/drivers/bridge/br_multicast_eht.py, net/bridge/br_multicast_eht.c).

Against Linux 6.18: two hosts (10.0.0.1 and 10.0.0.11) report through the same
fast-leave port p1; the kernel keeps the group while one of them still wants it and drops
it (or a source) the moment the last one leaves — without EHT the port group would wait
LMQT (2 s) and still be in ``bridge mdb show``.  Frames the three hosts receive are
compared byte for byte, the MDB as text (source timers as ``T``).  Then the host-side
rules on the virtual clock: set timers (GMI), ``eht_hosts_limit``, 32 sources per host,
MLDv2, cleanup with the port group."""
from __future__ import annotations

import struct
import sys
from pathlib import Path

import dpkt
import pytest

_HERE = Path(__file__).resolve().parent
for _p in (str(_HERE.parents[1]), str(_HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from kernel.cases import eth_ip, eth_ip6, ip4, ip6  # noqa: E402
from kernel.conftest import _unavailable  # noqa: E402
from kernel.oracle import Send, run_kernel  # noqa: E402
from netstack.api import Stack  # noqa: E402
from netstack.drivers.bridge import br_multicast as bm  # noqa: E402
from netstack.drivers.bridge.br_multicast_eht import (  # noqa: E402
    BR_MCAST_DEFAULT_EHT_HOSTS_LIMIT,
    br_multicast_eht_set_hosts_limit,
)
from netstack.errors import KernelError  # noqa: E402
from test_br2_mdb import mdb_cmd  # noqa: E402
from test_br2_topo import HOSTS, MAC, base_script, bridge, port  # noqa: E402
from test_br4_kernel import (ALLOW, BLOCK, IS_EX, IS_IN, QUERY, TO_EX, TO_IN, V3,  # noqa: E402
                             mcast_from, norm, quiet_bridge_host)

FAST = "ip -n b link set p1 type bridge_slave fastleave on\n"
SCRIPT = quiet_bridge_host(base_script(snooping=True)) + V3 + FAST
G = "239.1.1.1"
QUERIES = ("bridge -n b -d mdb show", "bridge -n b -d -j mdb show")


def v3(ip: str, records: list[tuple[int, str, list[str]]]) -> bytes:
    """IGMPv3 report from h1's MAC with IP source ``ip`` (a host behind port p1)."""
    body = b"".join(struct.pack("!BBH4s", t, 0, len(ss), ip4(g)) + b"".join(ip4(x) for x in ss)
                    for t, g, ss in records)
    msg = struct.pack("!BBHHH", 0x22, 0, 0, 0, len(records)) + body
    msg = msg[:2] + struct.pack("!H", dpkt.in_cksum(msg)) + msg[4:]
    pkt = dpkt.ip.IP(src=ip4(ip), dst=ip4("224.0.0.22"), p=2, ttl=1, id=0, tos=0xC0,
                     opts=b"\x94\x04\x00\x00", data=msg)
    pkt.hl = 6
    return eth_ip("01:00:5e:00:00:16", MAC[1], bytes(pkt))


A, B = "10.0.0.1", "10.0.0.11"
CASES = {
    # two hosts in EXCLUDE {}: the first TO_IN {} keeps the group, the second drops it
    "group": (Send("h3", "v3h", QUERY),
              Send("h1", "v1h", v3(A, [(TO_EX, G, [])])),
              Send("h1", "v1h", v3(B, [(TO_EX, G, [])])),
              Send("h1", "v1h", v3(A, [(TO_IN, G, [])])),
              Send("h1", "v1h", v3(B, [(IS_EX, "239.2.2.2", [])])),
              Send("h2", "v2h", mcast_from(2, "10.0.0.2", G, b"B still wants it")),
              Send("h1", "v1h", v3(B, [(TO_IN, G, [])])),
              Send("h2", "v2h", mcast_from(2, "10.0.0.2", G, b"nobody on p1"))),
    # INCLUDE: A {S1,S2}, B {S2}; A blocks both: S1 goes at once, S2 stays for B
    "sources": (Send("h3", "v3h", QUERY),
                Send("h1", "v1h", v3(A, [(ALLOW, G, ["10.0.0.5", "10.0.0.6"])])),
                Send("h1", "v1h", v3(B, [(IS_IN, G, ["10.0.0.6"])])),
                Send("h1", "v1h", v3(A, [(BLOCK, G, ["10.0.0.5", "10.0.0.6"])])),
                Send("h3", "v3h", mcast_from(3, "10.0.0.5", G, b"from five")),
                Send("h3", "v3h", mcast_from(3, "10.0.0.6", G, b"from six"))),
    # the only host leaves with BLOCK of its last source: the port group goes
    "single": (Send("h3", "v3h", QUERY),
               Send("h1", "v1h", v3(A, [(ALLOW, G, ["10.0.0.5"]), (TO_EX, "239.3.3.3", [])])),
               Send("h1", "v1h", v3(A, [(BLOCK, G, ["10.0.0.5"]), (TO_IN, "239.3.3.3", [])])),
               Send("h3", "v3h", mcast_from(3, "10.0.0.5", G, b"after the leave"))),
}


@pytest.fixture(scope="module")
def kernel_results():  # type: ignore[no-untyped-def]
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    return {name: run_kernel(SCRIPT, list(sends), list(HOSTS), list(QUERIES), 0.2)
            for name, sends in CASES.items()}


def netstack_run(sends) -> tuple[Stack, dict]:  # type: ignore[no-untyped-def]
    s = Stack()
    s.run_script(SCRIPT, name="br5_eht.sh")
    caps = {h: s.capture(*h) for h in HOSTS}
    for snd in sends:
        s.inject(snd.ns, snd.dev, [snd.frame])
    s.advance(0.2)
    return s, caps


@pytest.mark.parametrize("name", sorted(CASES))
def test_eht_matches_kernel(kernel_results, name: str) -> None:  # type: ignore[no-untyped-def]
    want = kernel_results[name]
    s, caps = netstack_run(CASES[name])
    for h in HOSTS:
        assert [f.data for f in caps[h]] == want.frames[h], (name, h)
    for q in QUERIES:
        rc, out, _ = mdb_cmd(s, q)
        assert rc == 0
        assert norm(out) == norm(want.queries[q]), (name, q)


def test_eht_kernel_facts(kernel_results) -> None:  # type: ignore[no-untyped-def]
    """What the kernel showed, pinned: fast leave per host, not per port."""
    grp = kernel_results["group"].queries[QUERIES[0]]
    assert f"port p1 grp {G}" not in grp and "port p1 grp 239.2.2.2" in grp
    src = kernel_results["sources"].queries[QUERIES[0]]
    assert f"port p1 grp {G} src 10.0.0.6" in src and "src 10.0.0.5" not in src
    assert f"grp {G}" not in kernel_results["single"].queries[QUERIES[0]]
    # measured: h1 still gets the stream from 10.0.0.5 — with no (S,G) entry left the
    # lookup falls back to the (*,G) entry, whose INCLUDE port group forwards any source
    h1 = kernel_results["sources"].frames[HOSTS[0]]
    assert mcast_from(3, "10.0.0.6", G, b"from six") in h1
    assert mcast_from(3, "10.0.0.5", G, b"from five") in h1


# ------------------------------------------------------------- virtual clock
def _stack() -> Stack:
    s = Stack()
    s.run_script(SCRIPT, name="br5_eht_unit.sh")
    s.inject("h3", "v3h", [QUERY])
    return s


def _pg(s: Stack, group: str = G):  # type: ignore[no-untyped-def]
    br = bridge(s)
    mp = br.multicast.mdb.get(bm.mdb_key(bm.ETH_P_IP, ip4(group), 0))
    return None if mp is None else next((p for p in mp.ports if p.port.dev.name == "p1"), None)


def test_without_fastleave_no_hosts_are_tracked() -> None:
    s = Stack()
    s.run_script(quiet_bridge_host(base_script(snooping=True)) + V3, name="br5_noeht.sh")
    s.inject("h1", "v1h", [v3(A, [(TO_EX, G, [])]), v3(A, [(TO_IN, G, [])])])
    pg = _pg(s)
    assert pg is not None and pg.eht_hosts == {}  # waits for LMQT instead
    s.advance(2.1)
    assert _pg(s) is None


def test_set_entries_and_hosts_time_out_after_gmi() -> None:
    s = _stack()
    s.inject("h1", "v1h", [v3(A, [(ALLOW, G, ["10.0.0.5"])])])
    pg, pm = _pg(s), port(s, "p1").multicast
    assert set(pg.eht_hosts) == {ip4(A)} and set(pg.eht_sets) == {ip4("10.0.0.5")}
    assert pm.eht_hosts_cnt == 1
    s.advance(200)
    s.inject("h1", "v1h", [v3(B, [(ALLOW, G, ["10.0.0.5"])])])
    # A's entry times out after GMI (260 s, up to 16 s later on the timer wheel); the
    # port group and the set live on for B
    s.advance(80)
    assert _pg(s) is pg and set(pg.eht_hosts) == {ip4(B)} and pm.eht_hosts_cnt == 1
    assert set(pg.eht_sets[ip4("10.0.0.5")].entries) == {ip4(B)}
    s.advance(200)
    assert pg.eht_hosts == {} and pg.eht_sets == {} and pm.eht_hosts_cnt == 0


def test_exclude_host_holds_the_zero_source_entry() -> None:
    s = _stack()
    s.inject("h1", "v1h", [v3(A, [(IS_EX, G, ["10.0.0.7"])])])
    pg = _pg(s)
    host = pg.eht_hosts[ip4(A)]
    assert host.filter_mode == bm.MCAST_EXCLUDE
    assert set(pg.eht_sets) == {bytes(4), ip4("10.0.0.7")}
    assert host.num_entries == 1  # the zero entry is not counted
    # ALLOW in EXCLUDE mode removes the host's blocked-source entry and the source
    s.inject("h1", "v1h", [v3(A, [(ALLOW, G, ["10.0.0.7"])])])
    assert set(pg.eht_sets) == {bytes(4)} and bm._find_group_src(pg, ip4("10.0.0.7")) is None


def test_hosts_limit_is_per_port() -> None:
    s = _stack()
    p1 = port(s, "p1")
    assert p1.multicast.eht_hosts_limit == BR_MCAST_DEFAULT_EHT_HOSTS_LIMIT
    with pytest.raises(KernelError):
        br_multicast_eht_set_hosts_limit(p1, 0)
    br_multicast_eht_set_hosts_limit(p1, 2)
    s.inject("h1", "v1h", [v3(f"10.0.0.{20 + i}", [(ALLOW, G, ["10.0.0.5"]),
                                                     (ALLOW, "239.4.4.4", ["10.0.0.5"])])
                           for i in range(3)])
    # 10.0.0.20 counts once in each group: the two slots of the port are used up
    assert p1.multicast.eht_hosts_cnt == 2
    assert set(_pg(s).eht_hosts) == set(_pg(s, "239.4.4.4").eht_hosts) == {ip4("10.0.0.20")}
    # the untracked host's BLOCK finds no host: the source stays (queried, not deleted)
    s.inject("h1", "v1h", [v3("10.0.0.22", [(BLOCK, G, ["10.0.0.5"])])])
    assert bm._find_group_src(_pg(s), ip4("10.0.0.5")) is not None


def test_a_host_tracks_at_most_32_sources() -> None:
    s = _stack()
    srcs = [f"10.1.0.{i}" for i in range(1, 41)]
    s.inject("h1", "v1h", [v3(A, [(ALLOW, G, srcs)])])
    pg = _pg(s)
    assert pg.eht_hosts[ip4(A)].num_entries == 32 and len(pg.eht_sets) == 32


def test_deleting_the_port_group_cleans_hosts() -> None:
    s = _stack()
    s.inject("h1", "v1h", [v3(A, [(TO_EX, G, [])]), v3(B, [(TO_EX, G, [])])])
    pg, pm = _pg(s), port(s, "p1").multicast
    assert pm.eht_hosts_cnt == 2
    rc, _, err = mdb_cmd(s, f"bridge -n b mdb del dev br0 port p1 grp {G}")
    assert rc == 0, err
    assert pg.eht_hosts == {} and pg.eht_sets == {} and pm.eht_hosts_cnt == 0


def test_mldv2_hosts_are_tracked_too() -> None:
    s = Stack()
    s.run_script(quiet_bridge_host(base_script(ipv6=True, snooping=True)) + FAST +
                 "ip -n b link set br0 type bridge mcast_mld_version 2\n", name="br5_mld.sh")
    g6 = "ff0e::101"

    def mld2(src: str, rtype: int) -> bytes:
        rec = struct.pack("!BBH16s", rtype, 0, 0, ip6(g6))
        body = struct.pack("!BBHHH", 143, 0, 0, 0, 1) + rec
        s6, d6 = ip6(src), ip6("ff02::16")
        ph = s6 + d6 + struct.pack("!I3xB", len(body), 58)
        body = body[:2] + struct.pack("!H", dpkt.in_cksum(ph + body)) + body[4:]
        hbh = bytes([58, 0, 5, 2, 0, 0, 1, 0])  # Hop-by-Hop with router alert
        hdr = struct.pack("!IHBB16s16s", 0x60000000, len(hbh) + len(body), 0, 1, s6, d6)
        return eth_ip6("33:33:00:00:00:16", MAC[1], hdr + hbh + body)

    s.inject("h1", "v1h", [mld2("fe80::1", TO_EX), mld2("fe80::2", TO_EX)])
    br = bridge(s)
    key = bm.mdb_key(bm.ETH_P_IPV6, ip6(g6), 0)
    pg = br.multicast.mdb[key].ports[0]
    assert set(pg.eht_hosts) == {ip6("fe80::1"), ip6("fe80::2")}
    s.inject("h1", "v1h", [mld2("fe80::1", TO_IN)])
    assert key in br.multicast.mdb
    s.inject("h1", "v1h", [mld2("fe80::2", TO_IN)])
    assert key not in br.multicast.mdb


# ------------------------------------------------------------- invariants
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_REC = st.tuples(st.sampled_from([IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK]),
                 st.sampled_from(["239.1.1.1", "239.2.2.2"]),
                 st.lists(st.sampled_from(["10.0.0.5", "10.0.0.6", "10.0.0.7"]), max_size=3,
                          unique=True))
_STEP = st.tuples(st.sampled_from([A, B, "10.0.0.12"]), st.lists(_REC, min_size=1, max_size=2),
                  st.sampled_from([0.0, 1.0, 100.0]))


def _check(s: Stack) -> None:
    """Hosts, sets and entries point at each other; the port's host count is the sum over
    its port groups; every (source, host) entry belongs to a tracked host."""
    br, p1 = bridge(s), port(s, "p1")
    total = 0
    for mp in br.multicast.mdb.values():
        for pg in mp.ports:
            if pg.port is not p1:
                continue
            total += len(pg.eht_hosts)
            for h, host in pg.eht_hosts.items():
                assert host.h_addr == h and host.set_entries
                for e in host.set_entries:
                    assert e.linked and e.eht_set.entries[h] is e and pg.eht_sets[e.eht_set.src_addr] is e.eht_set
                assert host.num_entries <= 32
            for src, sset in pg.eht_sets.items():
                assert sset.entries and sset.src_addr == src
                for h, e in sset.entries.items():
                    assert pg.eht_hosts[h] is e.host
    assert p1.multicast.eht_hosts_cnt == total


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_STEP, min_size=1, max_size=6))
def test_eht_state_stays_consistent(steps) -> None:  # type: ignore[no-untyped-def]
    s = _stack()
    for ip, recs, wait in steps:
        s.inject("h1", "v1h", [v3(ip, recs)])
        _check(s)
        if wait:
            s.advance(wait)
            _check(s)
    s.advance(600)
    _check(s)
    assert port(s, "p1").multicast.eht_hosts_cnt == 0
