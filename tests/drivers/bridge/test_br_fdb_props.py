"""FDB invariants under random operation sequences (hypothesis): learned-entry count,
every port's own MAC stays a local entry, entries only point at current ports."""
from __future__ import annotations

from br1_topo import Bridge
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netstack.drivers.bridge.br_private import BR_FDB_DYNAMIC_LEARNED, BR_FDB_LOCAL

MACS = [f"02:00:00:00:0f:{i:02x}" for i in range(6)]
ops = st.one_of(
    st.tuples(st.just("rx"), st.integers(1, 3), st.sampled_from(MACS)),
    st.tuples(st.just("add"), st.integers(1, 3), st.sampled_from(MACS),
              st.sampled_from(["static", "permanent", "dynamic", "static sticky"])),
    st.tuples(st.just("replace"), st.integers(1, 3), st.sampled_from(MACS),
              st.sampled_from(["static", "dynamic"])),
    st.tuples(st.just("del"), st.integers(1, 3), st.sampled_from(MACS)),
    st.tuples(st.just("age"), st.floats(0.0, 40.0)),
    st.tuples(st.just("flush"), st.integers(1, 3)),
    st.tuples(st.just("down_up"), st.integers(1, 3)),
)
_B: list[Bridge] = []


def _bridge() -> Bridge:
    if not _B:
        _B.append(Bridge("ip -n b link set br0 type bridge ageing_time 1000\n"))
    return _B[0]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(ops, min_size=1, max_size=12))
def test_fdb_invariants(seq: list[tuple]) -> None:
    b = _bridge()
    for op in seq:
        kind = op[0]
        if kind == "rx":
            mac = bytes.fromhex(op[2].replace(":", ""))
            b.send(op[1], bytes.fromhex("ffffffffffff") + mac + b"\x88\xb5" + bytes(46))
        elif kind in ("add", "replace"):
            b.run(f"bridge -n b fdb {kind} {op[2]} dev p{op[1]} master {op[3]}")
        elif kind == "del":
            b.run(f"bridge -n b fdb del {op[2]} dev p{op[1]} master")
        elif kind == "age":
            b.s.advance(op[1])
        elif kind == "flush":
            b.run(f"ip -n b link set p{op[1]} type bridge_slave fdb_flush")
        elif kind == "down_up":
            b.run(f"ip -n h{op[1]} link set e{op[1]} down")
            b.run(f"ip -n h{op[1]} link set e{op[1]} up")
    br = b.br
    learned = sum(1 for f in br.fdb.values() if f.flags & BR_FDB_DYNAMIC_LEARNED)
    assert learned == br.fdb_n_learned
    ports = set(br.port_list)
    for p in br.port_list:
        f = br.fdb.get((bytes(p.dev.address), 0))
        assert f is not None and f.flags & BR_FDB_LOCAL and f.dst is p
    for (mac, vid), f in br.fdb.items():
        assert (f.addr, f.vid) == (mac, vid)
        assert f.dst is None or f.dst in ports
        if f.dst is None:
            assert f.flags & BR_FDB_LOCAL


def test_fdb_flush_and_default_pvid() -> None:
    b = Bridge()
    b.send(2, bytes.fromhex("ffffffffffff020000000201") + b"\x88\xb5" + bytes(46))
    b.sh("bridge -n b fdb add 02:00:00:00:0a:01 dev p2 master static")
    b.sh("ip -n b link set br0 type bridge fdb_flush")
    keys = {(f.addr.hex(), f.vid) for f in b.br.fdb.values()}
    assert ("020000000201", 0) not in keys and ("020000000a01", 0) in keys
    b.sh("ip -n b link set br0 type bridge vlan_default_pvid 5")
    p1 = next(p for p in b.br.port_list if p.dev.name == "p1")
    assert p1.vlgrp.pvid == 5 and 1 not in p1.vlgrp.vlans
    b.sh("ip -n b link set br0 type bridge vlan_default_pvid 0")
    assert p1.vlgrp.pvid == 0 and not p1.vlgrp.vlans
    assert not b.br.vlgrp.vlans or all(not v.brentry for v in b.br.vlgrp.vlans.values())
    b.sh("bridge -n b vlan add dev p2 vid 7 pvid untagged")
    b.sh("ip -n b link set br0 type bridge vlan_default_pvid 3")
    p2 = next(p for p in b.br.port_list if p.dev.name == "p2")
    # from "no default" every port gets the new one as pvid (kernel: old_pvid 0)
    assert p1.vlgrp.pvid == 3 and p2.vlgrp.pvid == 3 and set(p2.vlgrp.vlans) == {3, 7}
