"""Device address lists (netstack/core/dev_addr_lists.py vs net/core/dev_addr_lists.c):
refcounts, static (global) entries, exclusive adds, upper→lower sync/unsync, the
uc_promisc rule of __dev_set_rx_mode, the IPv6 fold, /proc/net/dev_mcast; hypothesis
properties against a reference model."""
from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core import dev_addr_lists as L
from netstack.core.netdevice import IFF_UP
from netstack.drivers.dummy import DummyDevice
from netstack.errors import KernelError

M1 = bytes.fromhex("01005e010203")
M2 = bytes.fromhex("01005e040506")
U1 = bytes.fromhex("020000000009")


def _dev(name: str = "d0") -> DummyDevice:
    return DummyDevice(name, bytes.fromhex("020000000001"))


def test_refcount_and_order() -> None:
    d = _dev()
    L.dev_mc_add(d, M2)
    L.dev_mc_add(d, M1)
    L.dev_mc_add(d, M2)
    assert [(h.addr, h.refcount) for h in L.dev_mc_list(d)] == [(M2, 2), (M1, 1)]
    L.dev_mc_del(d, M2)
    L.dev_mc_del(d, M2)
    assert [h.addr for h in L.dev_mc_list(d)] == [M1]
    with pytest.raises(KernelError) as ei:
        L.dev_mc_del(d, M2)
    assert ei.value.errno == errno.ENOENT


def test_global_counted_once() -> None:
    """SIOCADDMULTI twice is one reference; the second SIOCDELMULTI is ENOENT even when a
    protocol still holds the address (as `ip maddr` on Linux shows)."""
    d = _dev()
    L.dev_mc_add(d, M1)
    L.dev_mc_add_global(d, M1)
    L.dev_mc_add_global(d, M1)
    h = L.dev_mc_list(d).entries[M1]
    assert (h.refcount, h.global_use) == (2, True)
    L.dev_mc_del_global(d, M1)
    with pytest.raises(KernelError):
        L.dev_mc_del_global(d, M1)
    assert L.dev_mc_list(d).entries[M1].refcount == 1


def test_uc_excl() -> None:
    d = _dev()
    L.dev_uc_add_excl(d, U1)
    with pytest.raises(KernelError) as ei:
        L.dev_uc_add_excl(d, U1)
    assert ei.value.errno == errno.EEXIST


def test_uc_promisc_rule() -> None:
    d = _dev()
    L.dev_uc_add(d, U1)
    assert d.promiscuity_refs == 0  # down: __dev_set_rx_mode does nothing
    d.flags |= IFF_UP
    L.dev_set_rx_mode(d)
    assert d.promiscuity_refs == 1 and L.promiscuous(d)
    L.dev_uc_add(d, U1)
    assert d.promiscuity_refs == 1
    L.dev_uc_del(d, U1)
    L.dev_uc_del(d, U1)
    assert d.promiscuity_refs == 0 and not L.promiscuous(d)


def test_unicast_filter_device_no_promisc() -> None:
    d = _dev()
    d.unicast_flt = True  # type: ignore[attr-defined]
    d.flags |= IFF_UP
    L.dev_uc_add(d, U1)
    assert d.promiscuity_refs == 0


def test_sync_unsync() -> None:
    upper, lower = _dev("up"), _dev("low")
    L.dev_mc_add(upper, M1)
    L.dev_mc_add(lower, M1)  # the lower device's own user
    L.dev_mc_sync(lower, upper)
    L.dev_mc_sync(lower, upper)  # idempotent
    assert L.dev_mc_list(lower).entries[M1].refcount == 2
    assert L.dev_mc_list(upper).entries[M1].sync_cnt == 1
    L.dev_mc_del(upper, M1)      # the upper's user goes; the sync still holds it there
    assert M1 in L.dev_mc_list(upper)
    L.dev_mc_sync(lower, upper)  # sync_cnt == refcount: taken back on both sides
    assert M1 not in L.dev_mc_list(upper)
    assert L.dev_mc_list(lower).entries[M1].refcount == 1
    L.dev_uc_add(upper, U1)
    L.dev_uc_sync(lower, upper)
    assert U1 in L.dev_uc_list(lower)
    L.dev_uc_unsync(lower, upper)
    assert U1 not in L.dev_uc_list(lower)


def test_dev_mcast_text() -> None:
    d = _dev()
    d.ifindex = 3
    L.dev_mc_add(d, M1)
    L.dev_mc_add_global(d, M2)
    assert L.dev_mcast_text([d]) == ("3    d0              1     0     01005e010203\n"
                                     "3    d0              1     1     01005e040506\n")


def test_ipv6_fold_skips_interface_local() -> None:
    d = _dev()

    class Idev:
        mc = {bytes.fromhex("ff020000000000000000000000000001"): 1,
              bytes.fromhex("ff010000000000000000000000000001"): 1}
    d.ip6_ptr = Idev()  # type: ignore[assignment]
    assert [(h.addr.hex(), h.refcount) for h in L.dev_mc_list(d)] == [("333300000001", 1)]
    Idev.mc = {}
    assert len(L.dev_mc_list(d)) == 0


def test_macvlan_reexports_gone_but_ipvlan_uses_core() -> None:
    import netstack.drivers.ipvlan.ipvlan_main as ipv
    assert ipv.dev_mc_addrs is L.dev_mc_addrs


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "del", "gadd", "gdel"]),
                          st.sampled_from([M1, M2])), max_size=30))
def test_property_matches_model(ops: list[tuple[str, bytes]]) -> None:
    d = _dev()
    users: dict[bytes, int] = {}
    glob: dict[bytes, bool] = {}
    for op, a in ops:
        total = users.get(a, 0) + glob.get(a, False)
        try:
            if op == "add":
                L.dev_mc_add(d, a)
                users[a] = users.get(a, 0) + 1
            elif op == "gadd":
                L.dev_mc_add_global(d, a)
                glob[a] = True
            elif op == "del":
                L.dev_mc_del(d, a)
                assert total > 0
                if users.get(a, 0):
                    users[a] -= 1
                else:
                    glob[a] = False  # a plain del may take the static reference
            else:
                L.dev_mc_del_global(d, a)
                assert glob.get(a, False)
                glob[a] = False
        except KernelError as e:
            assert e.errno == errno.ENOENT
            assert op in ("del", "gdel") and (total == 0 or op == "gdel")
        for addr in (M1, M2):
            want = users.get(addr, 0) + glob.get(addr, False)
            entries = L.dev_mc_list(d).entries
            assert (entries[addr].refcount if addr in entries else 0) == want


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from([M1, M2, U1])), max_size=25))
def test_property_sync_mirrors_upper(ops: list[tuple[bool, bytes]]) -> None:
    """After every change + dev_mc_sync, the lower list holds exactly the upper's
    addresses that still have a user (the lower device has no users of its own)."""
    upper, lower = _dev("up"), _dev("low")
    users: dict[bytes, int] = {}
    for add, a in ops:
        if add:
            L.dev_mc_add(upper, a)
            users[a] = users.get(a, 0) + 1
        elif users.get(a, 0):
            L.dev_mc_del(upper, a)
            users[a] -= 1
        L.dev_mc_sync(lower, upper)
        assert {h.addr for h in L.dev_mc_list(lower)} == {k for k, v in users.items() if v}
    L.dev_mc_unsync(lower, upper)
    assert len(L.dev_mc_list(lower)) == 0
