"""fib6: LPM, metrics, add/append/prepend/replace/del semantics, ECMP, dump order, lookups."""
from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings, strategies as st

from netstack.errors import KernelError
from netstack.ipv6.addr import a6, prefix_equal, prefix_mask, s6
from netstack.ipv6.route import (RTN_PROHIBIT, RTN_UNREACHABLE, Fib6Nexthop, Fib6Route,
                                 Flowi6, fib6_dump, fib6_lookup, fib6_route_add,
                                 fib6_route_del, ip6_route_output)

from .helpers import addr, pair, world


def setup():
    w = world()
    a, va, _, _ = pair(w, "a", "va", "b", "vb")
    addr(a, va, "2001:db8:8::1/64")
    return w, a, va


def rt(dst: str, gw: str | None, dev, metric: int = 1024, **kw) -> Fib6Route:
    p, _, plen = dst.partition("/")
    return Fib6Route(a6(p), int(plen), priority=metric,
                     nexthops=[Fib6Nexthop(a6(gw) if gw else None, dev)], **kw)


def gws(net, dst: str) -> list[str]:
    p, _, plen = dst.partition("/")
    for r in fib6_dump(net, 254):
        if r.dst == a6(p) and r.dst_len == int(plen):
            return [s6(nh.gw) for nh in r.nexthops]
    return []


def test_add_append_prepend_like_kernel() -> None:
    _, a, va = setup()
    fib6_route_add(a, rt("2001:db8:5::/64", "2001:db8:8::2", va), excl=True)
    with pytest.raises(KernelError) as e:
        fib6_route_add(a, rt("2001:db8:5::/64", "2001:db8:8::3", va), excl=True)
    assert e.value.errno == errno.EEXIST
    fib6_route_add(a, rt("2001:db8:5::/64", "2001:db8:8::3", va), append=True)
    fib6_route_add(a, rt("2001:db8:5::/64", "2001:db8:8::4", va))  # prepend
    # measured: `ip -6 route` lists ::2, ::3, ::4 as one multipath route (siblings in
    # insertion order, even for prepend)
    assert gws(a, "2001:db8:5::/64") == ["2001:db8:8::2", "2001:db8:8::3", "2001:db8:8::4"]
    with pytest.raises(KernelError) as e:
        fib6_route_add(a, rt("2001:db8:5::/64", "2001:db8:8::3", va), append=True)
    assert e.value.errno == errno.EEXIST
    fib6_route_del(a, rt("2001:db8:5::/64", "2001:db8:8::3", va), match_gw=True)
    assert sorted(gws(a, "2001:db8:5::/64")) == ["2001:db8:8::2", "2001:db8:8::4"]
    fib6_route_del(a, rt("2001:db8:5::/64", None, None))
    assert gws(a, "2001:db8:5::/64") == []
    with pytest.raises(KernelError) as e:
        fib6_route_del(a, rt("2001:db8:5::/64", None, None))
    assert e.value.errno == errno.ESRCH


def test_metric_order_and_replace() -> None:
    _, a, va = setup()
    fib6_route_add(a, rt("2001:db8:5::/64", "2001:db8:8::2", va, 100), excl=True)
    fib6_route_add(a, rt("2001:db8:5::/64", "2001:db8:8::3", va, 50), excl=True)
    res = fib6_lookup(a, Flowi6(a6("2001:db8:5::1")))
    assert res.route.priority == 50 and s6(res.nh.gw) == "2001:db8:8::3"
    fib6_route_add(a, rt("2001:db8:5::/64", "2001:db8:8::9", va, 50), replace=True)
    res = fib6_lookup(a, Flowi6(a6("2001:db8:5::1")))
    assert s6(res.nh.gw) == "2001:db8:8::9"
    assert len([r for r in fib6_dump(a, 254) if r.dst == a6("2001:db8:5::")]) == 2


def test_gateway_validation() -> None:
    _, a, va = setup()
    with pytest.raises(KernelError) as e:
        fib6_route_add(a, rt("2001:db8:5::/64", "2001:db8:99::1", None), excl=True)
    assert e.value.errno == errno.ENETUNREACH
    with pytest.raises(KernelError) as e:
        fib6_route_add(a, rt("2001:db8:5::/64", "fe80::1", None), excl=True)
    assert e.value.errno == errno.EINVAL
    fib6_route_add(a, rt("2001:db8:5::/64", "2001:db8:8::2", None), excl=True)
    assert fib6_lookup(a, Flowi6(a6("2001:db8:5::1"))).nh.dev is va


def test_dump_order_is_tree_postorder() -> None:
    _, a, va = setup()
    fib6_route_add(a, rt("::/0", "2001:db8:8::2", va), excl=True)
    fib6_route_add(a, rt("2001:db8::/32", "2001:db8:8::2", va), excl=True)
    order = [f"{s6(r.dst)}/{r.dst_len}" for r in fib6_dump(a, 254)]
    assert order == ["2001:db8:8::/64", "2001:db8::/32", "fe80::/64", "::/0"]


def test_error_routes_output_errno() -> None:
    _, a, va = setup()
    fib6_route_add(a, Fib6Route(a6("2001:db8:6::"), 64, type=RTN_PROHIBIT), excl=True)
    fib6_route_add(a, Fib6Route(a6("2001:db8:7::"), 64, type=RTN_UNREACHABLE), excl=True)
    for dst, err in (("2001:db8:6::1", errno.EACCES), ("2001:db8:7::1", errno.ENETUNREACH),
                     ("2001:db8:99::1", errno.ENETUNREACH)):
        with pytest.raises(KernelError) as e:
            ip6_route_output(a, Flowi6(a6(dst)))
        assert e.value.errno == err


def test_ecmp_hash_threshold_is_deterministic_and_spreads() -> None:
    _, a, va = setup()
    fib6_route_add(a, rt("2001:db8:5::/64", "2001:db8:8::2", va), excl=True)
    fib6_route_add(a, rt("2001:db8:5::/64", "2001:db8:8::3", va), append=True)
    seen = {}
    for i in range(64):
        fl = Flowi6(a6("2001:db8:5::1"), a6(f"2001:db8:8::{i + 10:x}"), proto=17)
        d1 = ip6_route_output(a, fl)
        d2 = ip6_route_output(a, fl)
        assert d1.gateway == d2.gateway
        seen[s6(d1.gateway)] = seen.get(s6(d1.gateway), 0) + 1
    assert set(seen) == {"2001:db8:8::2", "2001:db8:8::3"}
    assert min(seen.values()) > 10


prefixes = st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(prefixes, st.integers(1, 3)), min_size=1, max_size=12),
       st.lists(st.integers(0, 2**128 - 1), min_size=1, max_size=8))
def test_lpm_agrees_with_brute_force(routes, probes) -> None:
    """The lookup returns the longest matching prefix with the lowest metric."""
    w = world()
    a, va, _, _ = pair(w, "a", "va", "b", "vb")
    installed: dict[tuple[bytes, int, int], None] = {}
    for (v, plen), metric in routes:
        dst = prefix_mask(v.to_bytes(16, "big"), plen)
        if dst[0] == 0xFF or (dst[0] == 0xFE and dst[1] & 0xC0 == 0x80):
            continue
        try:
            fib6_route_add(a, Fib6Route(dst, plen, priority=metric,
                                        nexthops=[Fib6Nexthop(None, va)]), excl=True)
            installed[(dst, plen, metric)] = None
        except KernelError:
            pass
    main = [r for r in fib6_dump(a, 254) if r.nexthops and r.nexthops[0].dev is va]
    for p in probes:
        d = p.to_bytes(16, "big")
        if d[0] == 0xFF:
            continue
        res = fib6_lookup(a, Flowi6(d))
        cands = [r for r in main if prefix_equal(r.dst, d, r.dst_len)]
        local = [r for r in fib6_dump(a, 255) if prefix_equal(r.dst, d, r.dst_len)]
        if local:
            continue
        if not cands:
            assert res is None
            continue
        best = max(r.dst_len for r in cands)
        want = min((r for r in cands if r.dst_len == best), key=lambda r: r.priority)
        assert res.route is want


def test_policy_rules_through_shared_engine() -> None:
    from netstack.core.fib_rules import FR_ACT_PROHIBIT, FibRule
    from netstack.ipv6.fib6_rules import fib_rule_add, fib_rule_dump
    _, a, va = setup()
    assert [(r.pref, r.table) for r in fib_rule_dump(a)] == [(0, 255), (32766, 254)]
    fib6_route_add(a, rt("2001:db8:5::/64", "2001:db8:8::9", va, table=100), excl=True)
    fib_rule_add(a, FibRule(src=a6("2001:db8:77::"), src_len=48, table=100))
    assert [(r.pref, r.table) for r in fib_rule_dump(a)] == [(0, 255), (32765, 100),
                                                            (32766, 254)]
    assert a.ipv6.has_custom_rules
    d = ip6_route_output(a, Flowi6(a6("2001:db8:5::1"), a6("2001:db8:77::1")))
    assert s6(d.gateway) == "2001:db8:8::9"
    with pytest.raises(KernelError) as e:  # no source: the source rule does not match
        ip6_route_output(a, Flowi6(a6("2001:db8:5::1")))
    assert e.value.errno == errno.ENETUNREACH
    fib_rule_add(a, FibRule(dst=a6("2001:db8:6::"), dst_len=64, action=FR_ACT_PROHIBIT))
    with pytest.raises(KernelError) as e:
        ip6_route_output(a, Flowi6(a6("2001:db8:6::1")))
    assert e.value.errno == errno.EACCES
    with pytest.raises(KernelError) as e:
        fib_rule_add(a, FibRule())
    assert e.value.extack == "Invalid table"
