"""``ip neigh`` semantics (net/core/neighbour.c neigh_add/neigh_delete, iproute2 flush and
show filters), device events, garbage collection and the parms sysctls — errno values
and resulting states were measured on Linux 6.18."""
from __future__ import annotations

import errno

import pytest
from test_neigh_env import KEY, MAC_H, make_env

from netstack.core.neighbour import (NUD_DELAY, NUD_FAILED, NUD_FILTER_NONE, NUD_INCOMPLETE,
                                     NUD_NOARP, NUD_NONE, NUD_PERMANENT, NUD_PROBE,
                                     NUD_REACHABLE, NUD_STALE, NTF_PROXY, NTF_ROUTER,
                                     neigh_add, neigh_carrier_down, neigh_delete, neigh_dump,
                                     neigh_flush, neigh_ifdown, neigh_lookup, neigh_output,
                                     pneigh_dump)
from netstack.errors import KernelError

S = 1_000_000_000
K2 = bytes([10, 0, 0, 3])


def key(i: int) -> bytes:
    return bytes([10, 0, i >> 8, i & 0xFF])


def test_add_exists_replace_change() -> None:
    e = make_env()
    neigh_add(e.tbl, e.r0, KEY, MAC_H)
    n = neigh_lookup(e.tbl, e.r0, KEY)
    assert n is not None and n.nud_state == NUD_PERMANENT and n.lladdr == MAC_H
    with pytest.raises(KernelError) as ex:
        neigh_add(e.tbl, e.r0, KEY, MAC_H)
    assert ex.value.errno == errno.EEXIST
    new = bytes.fromhex("02000000aaaa")
    neigh_add(e.tbl, e.r0, KEY, new, NUD_REACHABLE, replace=True, excl=False)
    assert n.ha == new and n.nud_state == NUD_REACHABLE
    with pytest.raises(KernelError) as ex:
        neigh_add(e.tbl, e.r0, K2, MAC_H, create=False, replace=True, excl=False)
    assert ex.value.errno == errno.ENOENT


def test_change_without_replace_does_not_override_address() -> None:
    """Without NLM_F_REPLACE neigh_add clears NEIGH_UPDATE_F_OVERRIDE."""
    e = make_env()
    neigh_add(e.tbl, e.r0, KEY, MAC_H, NUD_REACHABLE)
    neigh_add(e.tbl, e.r0, KEY, bytes.fromhex("02000000bbbb"), NUD_REACHABLE, excl=False)
    assert neigh_lookup(e.tbl, e.r0, KEY).ha == MAC_H


def test_bad_lladdr_and_missing_device() -> None:
    e = make_env()
    with pytest.raises(KernelError) as ex:
        neigh_add(e.tbl, e.r0, KEY, bytes(5))
    assert (ex.value.errno, ex.value.extack) == (errno.EINVAL, "Invalid link address")
    with pytest.raises(KernelError) as ex:
        neigh_add(e.tbl, None, KEY, MAC_H)
    assert ex.value.errno == errno.EINVAL
    # a longer address is accepted and truncated to addr_len (measured: exit 0)
    neigh_add(e.tbl, e.r0, KEY, MAC_H + b"\x03")
    assert neigh_lookup(e.tbl, e.r0, KEY).ha == MAC_H


def test_permanent_without_lladdr_on_unresolved_entry_is_einval() -> None:
    e = make_env()
    with pytest.raises(KernelError) as ex:
        neigh_add(e.tbl, e.r0, KEY)
    assert ex.value.errno == errno.EINVAL


@pytest.mark.parametrize("state,shown,has_ll", [
    (NUD_STALE, NUD_STALE, True), (NUD_REACHABLE, NUD_REACHABLE, True),
    (NUD_NOARP, NUD_NOARP, True), (NUD_FAILED, NUD_FAILED, False),
    (NUD_NONE, NUD_NONE, False), (NUD_INCOMPLETE, NUD_INCOMPLETE, False),
    # nud delay: the timer fires at once, confirmed is old → PROBE (measured)
    (NUD_DELAY, NUD_PROBE, True), (NUD_PROBE, NUD_PROBE, True),
])
def test_add_each_state(state: int, shown: int, has_ll: bool) -> None:
    e = make_env()
    neigh_add(e.tbl, e.r0, KEY, MAC_H, state)
    e.world.run_until_idle()
    n = neigh_lookup(e.tbl, e.r0, KEY)
    assert n.nud_state == shown
    assert (n.lladdr is not None) == has_ll


def test_admin_incomplete_has_no_timer() -> None:
    e = make_env()
    neigh_add(e.tbl, e.r0, KEY, None, NUD_INCOMPLETE)
    e.world.advance(10)
    assert neigh_lookup(e.tbl, e.r0, KEY).nud_state == NUD_INCOMPLETE
    assert e.ops.solicits == []


def test_delete() -> None:
    e = make_env()
    with pytest.raises(KernelError) as ex:
        neigh_delete(e.tbl, e.r0, KEY)
    assert ex.value.errno == errno.ENOENT
    neigh_add(e.tbl, e.r0, KEY, MAC_H, NUD_NOARP)
    neigh_delete(e.tbl, e.r0, KEY)
    assert neigh_lookup(e.tbl, e.r0, KEY) is None


def test_delete_incomplete_reports_queued_packets() -> None:
    """neigh_delete does a FAILED update first: queued packets see error_report."""
    e = make_env()
    p = e.ip_packet(1)
    neigh_output(e.tbl, e.r0, KEY, [p])
    neigh_delete(e.tbl, e.r0, KEY)
    assert e.ops.errors == [p.id]
    e.world.advance(5)
    assert len(e.ops.solicits) == 1  # the timer died with the entry


def test_router_flag() -> None:
    e = make_env()
    neigh_add(e.tbl, e.r0, KEY, MAC_H, flags=NTF_ROUTER)
    assert neigh_lookup(e.tbl, e.r0, KEY).flags & NTF_ROUTER
    neigh_add(e.tbl, e.r0, KEY, MAC_H, replace=True, excl=False)
    assert not neigh_lookup(e.tbl, e.r0, KEY).flags & NTF_ROUTER


def test_proxy_entries() -> None:
    e = make_env()
    neigh_add(e.tbl, e.r0, KEY, flags=NTF_PROXY)
    assert e.tbl.pneigh_lookup(KEY, e.r0) is not None
    assert e.tbl.pneigh_lookup(KEY, e.h0) is None
    assert [p.key for p in pneigh_dump(e.tbl)] == [KEY]
    with pytest.raises(KernelError) as ex:
        neigh_delete(e.tbl, e.r0, K2, proxy=True)
    assert ex.value.errno == errno.ENOENT
    neigh_add(e.tbl, None, K2, flags=NTF_PROXY)
    assert e.tbl.pneigh_lookup(K2, e.h0) is not None  # dev-less proxy matches any device
    neigh_delete(e.tbl, e.r0, KEY, proxy=True)
    assert e.tbl.pneigh_lookup(KEY, e.r0) is None


def test_dump_filters_and_order_is_stable() -> None:
    e = make_env()
    for i in range(1, 8):
        neigh_add(e.tbl, e.r0, key(i), MAC_H)
    neigh_add(e.tbl, e.r0, key(20), MAC_H, NUD_NOARP)
    neigh_add(e.tbl, e.r0, key(21), None, NUD_NONE)
    shown = neigh_dump(e.tbl)
    assert key(20) not in [n.key for n in shown] and key(21) not in [n.key for n in shown]
    assert len(neigh_dump(e.tbl, nud_mask=0xFF | NUD_FILTER_NONE)) == 9
    assert [n.key for n in neigh_dump(e.tbl, nud_mask=NUD_NOARP)] == [key(20)]
    # hash-bucket order, not insertion order, and the same on every run
    order = [n.key for n in shown]
    assert order == [n.key for n in neigh_dump(make_env_with(range(1, 8)).tbl)]
    assert order != [key(i) for i in range(1, 8)]
    buckets = [e.tbl.bucket_of(n) for n in shown]
    assert buckets == sorted(buckets)


def make_env_with(keys):  # type: ignore[no-untyped-def]
    e = make_env()
    for i in keys:
        neigh_add(e.tbl, e.r0, key(i), MAC_H)
    return e


def test_flush_default_keeps_permanent_and_noarp() -> None:
    e = make_env()
    neigh_add(e.tbl, e.r0, key(1), MAC_H)
    neigh_add(e.tbl, e.r0, key(2), MAC_H, NUD_NOARP)
    neigh_add(e.tbl, e.r0, key(3), MAC_H, NUD_STALE)
    neigh_add(e.tbl, e.h0, key(4), MAC_H, NUD_REACHABLE)
    assert neigh_flush(e.tbl, e.r0) == 1
    assert {n.key for n in e.tbl.entries.values()} == {key(1), key(2), key(4)}
    assert neigh_flush(e.tbl, nud_mask=0xFF) == 3
    assert not e.tbl.entries


def test_ifdown_removes_everything_carrier_down_keeps_permanent() -> None:
    e = make_env()
    neigh_add(e.tbl, e.r0, key(1), MAC_H)
    neigh_add(e.tbl, e.r0, key(2), MAC_H, NUD_STALE)
    neigh_add(e.tbl, e.r0, key(3), flags=NTF_PROXY)            # nud permanent (default)
    neigh_add(e.tbl, e.r0, key(4), None, NUD_STALE, flags=NTF_PROXY)
    neigh_carrier_down(e.tbl, e.r0)
    assert [n.key for n in e.tbl.entries.values()] == [key(1)]
    assert [p.key for p in e.tbl.pentries] == [key(3)]
    neigh_ifdown(e.tbl, e.r0)
    assert not e.tbl.entries and not e.tbl.pentries


def test_ifdown_drops_queued_packets() -> None:
    e = make_env()
    neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(1)])
    neigh_ifdown(e.tbl, e.r0)
    assert e.net.drops["NEIGH_DEAD"] == 1 and not e.tbl.entries


def test_gc_thresh3_overflow_is_enobufs_and_createfail() -> None:
    e = make_env()
    st = e.net.sysctl
    st.set("net.ipv4.neigh.default.gc_thresh3", "4")
    st.set("net.ipv4.neigh.default.gc_thresh2", "2")
    for i in range(4):
        neigh_add(e.tbl, e.r0, key(i), MAC_H, NUD_REACHABLE)
    with pytest.raises(KernelError) as ex:
        neigh_add(e.tbl, e.r0, key(9), MAC_H, NUD_REACHABLE)
    assert ex.value.errno == errno.ENOBUFS
    assert e.tbl.stats["table_fulls"] == 1
    neigh_output(e.tbl, e.r0, key(10), [e.ip_packet(1)])
    assert e.net.drops["NEIGH_CREATEFAIL"] == 1
    # permanent entries are exempt from the thresholds
    neigh_add(e.tbl, e.r0, key(11), MAC_H)


def test_forced_gc_evicts_old_entries() -> None:
    e = make_env()
    st = e.net.sysctl
    st.set("net.ipv4.neigh.default.gc_thresh3", "4")
    st.set("net.ipv4.neigh.default.gc_thresh2", "2")
    for i in range(4):
        neigh_add(e.tbl, e.r0, key(i), MAC_H, NUD_STALE)
    e.world.advance(6)  # older than 5 s: forced GC may evict (down to gc_thresh2)
    neigh_add(e.tbl, e.r0, key(9), MAC_H, NUD_STALE)
    assert set(e.tbl.gc_list) == {(key(2), e.r0.ifindex), (key(3), e.r0.ifindex),
                                  (key(9), e.r0.ifindex)}


def test_forced_gc_above_thresh2_runs_at_most_every_5s() -> None:
    e = make_env()
    e.net.sysctl.set("net.ipv4.neigh.default.gc_thresh2", "2")
    for i in range(3):
        neigh_add(e.tbl, e.r0, key(i), MAC_H, NUD_STALE)
    assert e.tbl.stats["forced_gc_runs"] == 0   # last_flush is less than 5 s ago
    e.world.advance(6)
    neigh_add(e.tbl, e.r0, key(9), MAC_H, NUD_STALE)
    assert e.tbl.stats["forced_gc_runs"] == 1
    assert [k for k, _ in e.tbl.gc_list] == [key(1), key(2), key(9)]


def test_periodic_gc_removes_stale_after_gc_stale_time() -> None:
    e = make_env()
    e.net.sysctl.set("net.ipv4.neigh.default.gc_thresh1", "0")
    neigh_add(e.tbl, e.r0, key(1), MAC_H, NUD_STALE)
    neigh_add(e.tbl, e.r0, key(2), MAC_H)  # permanent: never collected
    e.world.advance(45)
    assert neigh_lookup(e.tbl, e.r0, key(1)) is not None
    e.world.advance(30)
    assert neigh_lookup(e.tbl, e.r0, key(1)) is None
    assert neigh_lookup(e.tbl, e.r0, key(2)) is not None
    assert not e.world.clock.next_expiry()  # GC work disarms with nothing to collect


def test_gc_thresh1_protects_small_tables() -> None:
    e = make_env()
    neigh_add(e.tbl, e.r0, key(1), MAC_H, NUD_STALE)
    e.world.advance(120)
    assert neigh_lookup(e.tbl, e.r0, key(1)) is not None


def test_gc_stale_time_sysctl() -> None:
    e = make_env()
    e.net.sysctl.set("net.ipv4.neigh.default.gc_thresh1", "0")
    e.net.sysctl.set("net.ipv4.neigh.r0.gc_stale_time", "10")
    neigh_add(e.tbl, e.r0, key(1), MAC_H, NUD_STALE)
    e.world.advance(16)
    assert neigh_lookup(e.tbl, e.r0, key(1)) is None


def test_parms_sysctls_defaults_and_twins() -> None:
    e = make_env()
    st = e.net.sysctl
    expect = {"mcast_solicit": 3, "ucast_solicit": 3, "app_solicit": 0, "mcast_resolicit": 0,
              "retrans_time_ms": 1000, "retrans_time": 100, "base_reachable_time_ms": 30000,
              "base_reachable_time": 30, "delay_first_probe_time": 5, "gc_stale_time": 60,
              "unres_qlen": 101, "unres_qlen_bytes": 212992, "locktime": 100,
              "proxy_delay": 80, "proxy_qlen": 64, "anycast_delay": 100,
              "interval_probe_time_ms": 5000}
    for dev in ("default", "r0", "h0", "lo"):
        for k, v in expect.items():
            assert st.get(f"net.ipv4.neigh.{dev}.{k}") == v, (dev, k)
    for k, v in (("gc_thresh1", 128), ("gc_thresh2", 512), ("gc_thresh3", 1024),
                 ("gc_interval", 30)):
        assert st.get(f"net.ipv4.neigh.default.{k}") == v
    st.set("net.ipv4.neigh.r0.unres_qlen", "1")
    assert st.get("net.ipv4.neigh.r0.unres_qlen_bytes") == 2090
    st.set("net.ipv4.neigh.r0.unres_qlen_bytes", "2500")
    assert st.get("net.ipv4.neigh.r0.unres_qlen") == 1
    st.set("net.ipv4.neigh.r0.retrans_time", "3")
    assert st.get("net.ipv4.neigh.r0.retrans_time_ms") == 30
    st.set("net.ipv4.neigh.default.retrans_time_ms", "500")
    assert st.get("net.ipv4.neigh.h0.retrans_time") == 50
    assert st.get("net.ipv4.neigh.r0.retrans_time_ms") == 30  # written explicitly
    with pytest.raises(Exception):
        st.set("net.ipv4.neigh.r0.mcast_solicit", "-1")


def test_family_parm_defaults_override() -> None:
    """A second family (ND) registers its own directory with its own defaults."""
    from test_neigh_env import FakeOps

    from netstack.core.neighbour import NeighTable

    class NdLike(FakeOps):
        sysctl_prefix = "net.ipv6.neigh"
        parm_defaults = {"locktime": 0}

    e = make_env()
    NeighTable(e.net, NdLike())
    assert e.net.sysctl.get("net.ipv6.neigh.r0.locktime") == 0
    assert e.net.sysctl.get("net.ipv4.neigh.r0.locktime") == 100
    assert e.net.sysctl.get("net.ipv6.neigh.default.unres_qlen") == 101


def test_managed_entries_are_not_supported() -> None:
    from netstack.core.neighbour import NTF_MANAGED
    from netstack.errors import NotSupported
    e = make_env()
    with pytest.raises(NotSupported):
        neigh_add(e.tbl, e.r0, KEY, MAC_H, NUD_STALE, flags=NTF_MANAGED)


def test_ntf_use_triggers_resolution() -> None:
    from netstack.core.neighbour import NTF_USE
    e = make_env()
    neigh_add(e.tbl, e.r0, KEY, None, NUD_NONE, flags=NTF_USE)
    n = neigh_lookup(e.tbl, e.r0, KEY)
    assert n.nud_state == NUD_INCOMPLETE and len(e.ops.solicits) == 1
