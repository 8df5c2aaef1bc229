"""FIB semantics: insert/delete flags and errors as fib_table_insert/delete (measured on a
6.18 kernel), LPM/TOS/metric lookup against a brute-force model, ECMP thresholds."""
from __future__ import annotations

import errno
import ipaddress
import types

import pytest
from hypothesis import given, settings, strategies as st

from netstack.core.world import World
from netstack.drivers import veth
from netstack.errors import KernelError
from netstack.ipv4 import devinet as D
from netstack.ipv4 import fib as F
from netstack.ipv4.fib_semantics import (
    RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_NOWHERE, RTN_BLACKHOLE, RTN_LOCAL, RTN_PROHIBIT,
    RTN_THROW, RTN_UNICAST, RTN_UNREACHABLE, RTNH_F_DEAD, RTNH_F_ONLINK, FIB_ERR, FibNexthop,
    FibRoute, fib_rebalance, fib_select_multipath,
)


def ip(s: str) -> bytes:
    return ipaddress.IPv4Address(s).packed


def make_net():
    w = World(subsystems=[])

    def init(net):
        net.ipv4 = types.SimpleNamespace()
        D.ipv4_control_init(net)

    w.pernet_inits.append(init)
    w.netdev_notifiers.append(D.ipv4_control_netdev_event)
    return w, w.netns_add("t")


def setup():
    w, net = make_net()
    a, b = veth.create_pair(net, "d0", b"\x02" * 6, net, "d1", b"\x04" * 6)
    net.dev_open(a)
    net.dev_open(b)
    D.inet_add_addr(net, a, D.IfAddr(local=ip("10.0.0.1"), prefixlen=24))
    D.inet_add_addr(net, b, D.IfAddr(local=ip("10.1.0.1"), prefixlen=16))
    return net, a, b


def R(dst: str, gw: str | None = None, dev=None, **kw) -> FibRoute:
    d, _, plen = dst.partition("/")
    nhs = [FibNexthop(gw=ip(gw) if gw else None, dev=dev)] if (gw or dev) else []
    return FibRoute(dst=ip(d), dst_len=int(plen or 32), nexthops=nhs, **kw)


def gws(net, dst="20.0.0.0", plen=24):
    tb = F.fib_get_table(net, 254)
    return [(r.tos, ipaddress.IPv4Address(r.nexthops[0].gw).exploded if r.nexthops[0].gw
             else None, r.priority) for r in tb.plens[plen][ipaddress.IPv4Address(dst)._ip]]


def err(fn, *a, **kw) -> KernelError:
    with pytest.raises(KernelError) as e:
        fn(*a, **kw)
    return e.value


def test_add_append_prepend_replace_order():
    net, a, b = setup()
    add = F.fib_route_add
    add(net, R("20.0.0.0/24", "10.1.0.5"), excl=True)
    add(net, R("20.0.0.0/24", "10.1.0.6"), append=True)
    add(net, R("20.0.0.0/24", "10.1.0.7"))                       # prepend
    add(net, R("20.0.0.0/24", "10.1.0.8", priority=5), excl=True)
    add(net, R("20.0.0.0/24", "10.1.0.9", tos=0x10), excl=True)
    assert err(add, net, R("20.0.0.0/24", "10.1.0.6"), append=True).errno == errno.EEXIST
    assert err(add, net, R("20.0.0.0/24", "10.1.0.1"), excl=True).errno == errno.EEXIST
    # replace: the perfect match is not the first of its (tos, metric) group -> EEXIST
    assert err(add, net, R("20.0.0.0/24", "10.1.0.6"), replace=True).errno == errno.EEXIST
    add(net, R("20.0.0.0/24", "10.1.0.7"), replace=True)         # is first: no-op
    assert gws(net) == [(0x10, "10.1.0.9", 0), (0, "10.1.0.7", 0), (0, "10.1.0.5", 0),
                        (0, "10.1.0.6", 0), (0, "10.1.0.8", 5)]
    F.fib_route_del(net, R("20.0.0.0/24", type=0, scope=RT_SCOPE_NOWHERE, protocol=0))
    assert gws(net)[1] == (0, "10.1.0.5", 0)
    add(net, R("20.0.0.0/24", "10.1.0.99"), replace=True)        # replaces the first
    assert gws(net)[1] == (0, "10.1.0.99", 0)
    # change = replace without create
    assert err(add, net, R("20.0.1.0/24", dev=a, scope=RT_SCOPE_LINK), replace=True,
               create=False).errno == errno.ENOENT
    add(net, R("20.0.0.0/24", "10.1.0.98", priority=5), replace=True, create=False)
    assert gws(net)[-1] == (0, "10.1.0.98", 5)


def test_delete_matching():
    net, a, b = setup()
    F.fib_route_add(net, R("20.0.0.0/24", "10.1.0.5"), excl=True)
    F.fib_route_add(net, R("20.0.0.0/24", "10.1.0.6", priority=3), excl=True)
    dm = dict(type=0, scope=RT_SCOPE_NOWHERE, protocol=0)
    assert err(F.fib_route_del, net, R("20.0.0.0/24", dev=a, **dm)).errno == errno.ESRCH
    assert err(F.fib_route_del, net, R("20.0.9.0/24", **dm)).errno == errno.ESRCH
    e = err(F.fib_route_del, net, R("20.0.0.0/24", table=77, **dm))
    assert (e.errno, e.extack) == (errno.ESRCH, "FIB table does not exist")
    F.fib_route_del(net, R("20.0.0.0/24", "10.1.0.6", **dm))
    assert gws(net) == [(0, "10.1.0.5", 0)]
    F.fib_route_del(net, R("20.0.0.0/24", priority=0, dev=b, **dm))
    assert F.fib_get_table(net, 254).plens[24].get(ipaddress.IPv4Address("20.0.0.0")._ip) is None


@pytest.mark.parametrize("route,kw,code,msg", [
    (dict(dst="1.2.3.0/24"), {}, errno.ENODEV, ""),
    (dict(dst="1.2.3.0/24", gw="10.9.0.1"), {}, errno.ENETUNREACH, "Nexthop has invalid gateway"),
    (dict(dst="1.2.3.0/24", gw="10.0.0.2", scope=RT_SCOPE_LINK), {}, errno.ENETUNREACH,
     "Nexthop has invalid gateway"),
    (dict(dst="1.2.5.0/23", dev="d0", scope=RT_SCOPE_LINK), {}, errno.EINVAL,
     "Invalid prefix for given prefix length"),
    (dict(dst="1.2.6.0/24", dev="d0", scope=RT_SCOPE_LINK, type=RTN_LOCAL), {}, errno.EINVAL,
     "Invalid scope"),
    (dict(dst="1.2.7.0/24", dev="d0", type=RTN_BLACKHOLE), {}, errno.EINVAL,
     "Gateway, device and multipath can not be specified for this route type"),
    (dict(dst="1.2.9.0/24", dev="d0", scope=RT_SCOPE_LINK, prefsrc="9.9.9.9"), {}, errno.EINVAL,
     "Invalid prefsrc address"),
    (dict(dst="1.2.3.0/24", gw="10.9.0.1", dev="d0", flags=RTNH_F_ONLINK, scope=RT_SCOPE_LINK),
     {}, errno.EINVAL, "Nexthop has invalid scope"),
    (dict(dst="1.2.3.0/24", gw="10.0.0.255", dev="d0", flags=RTNH_F_ONLINK), {}, errno.EINVAL,
     "Nexthop has invalid gateway"),
    (dict(dst="1.2.3.0/24", dev="d0", tos=0x11, scope=RT_SCOPE_LINK), {}, errno.EINVAL,
     "Invalid dsfield (tos): ECN bits must be 0"),
])
def test_route_errors(route, kw, code, msg):
    net, a, b = setup()
    d, _, plen = route.pop("dst").partition("/")
    gw = route.pop("gw", None)
    dev = net.get(route.pop("dev")) if "dev" in route else None
    prefsrc = route.pop("prefsrc", None)
    r = FibRoute(dst=ip(d), dst_len=int(plen), prefsrc=ip(prefsrc) if prefsrc else None,
                 nexthops=[FibNexthop(gw=ip(gw) if gw else None, dev=dev)] if gw or dev else [],
                 **route)
    e = err(F.fib_route_add, net, r, excl=True, **kw)
    assert (e.errno, e.extack) == (code, msg)


def test_accepted_variants():
    net, a, b = setup()
    F.fib_route_add(net, R("1.2.3.0/24", "10.0.0.1"), excl=True)   # own address as gw
    F.fib_route_add(net, R("1.2.4.0/24", dev=a, scope=RT_SCOPE_HOST), excl=True)
    F.fib_route_add(net, R("1.2.8.0/24", "10.9.0.1", dev=a, flags=RTNH_F_ONLINK), excl=True)
    F.fib_route_add(net, R("1.2.11.0/24", "10.0.0.0"), excl=True)
    F.fib_route_add(net, R("1.2.3.0/24", dev=a, table=77, scope=RT_SCOPE_LINK), excl=True)
    for t in (RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT, RTN_THROW):
        F.fib_route_add(net, R("5.0.0.0/8", type=t, priority=t), excl=True)
    dump = F.fib_dump(net)
    # table 77 sorts before main (FIB table hash order)
    assert dump[0].table == 77
    onlink = next(r for r in dump if r.dst == ip("1.2.8.0"))
    assert onlink.nexthops[0].scope == RT_SCOPE_LINK and onlink.nexthops[0].dev is a
    local_gw = next(r for r in dump if r.dst == ip("1.2.3.0") and r.table == 254)
    assert local_gw.nexthops[0].scope == RT_SCOPE_HOST


# ------------------------------------------------------------------- lookups
def brute(routes, daddr, tos, scope, oif):
    """Reference: every prefix covering daddr, longest first; then TOS desc, metric asc,
    insertion order; the kernel's per-alias filters."""
    cands = [(r, i) for i, r in enumerate(routes)
             if (daddr ^ int.from_bytes(r.dst, "big")) & F.MASKS[r.dst_len] == 0]
    cands.sort(key=lambda t: (-t[0].dst_len, -t[0].tos, t[0].priority, t[1]))
    for r, _ in cands:
        if r.tos and r.tos != tos & 0x1C:
            continue
        if r.scope < scope:
            continue
        if FIB_ERR[r.type]:
            return FIB_ERR[r.type]
        if oif and r.nexthops[0].dev.ifindex != oif:
            continue
        return r
    return -errno.EAGAIN


route_st = st.tuples(
    st.integers(0, 3),                 # address bits chosen below
    st.sampled_from([0, 8, 16, 24, 30, 32]),
    st.sampled_from([0, 0, 4, 8]),     # tos
    st.sampled_from([0, 0, 10, 20]),   # metric
    st.sampled_from([RTN_UNICAST] * 4 + [RTN_BLACKHOLE, RTN_UNREACHABLE]),
    st.sampled_from([0, RT_SCOPE_LINK]),
    st.booleans(),                     # device a or b
    st.integers(0, 2 ** 32 - 1),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(route_st, min_size=1, max_size=25),
       st.lists(st.tuples(st.integers(0, 2 ** 32 - 1), st.sampled_from([0, 4, 8, 0x10]),
                          st.sampled_from([0, RT_SCOPE_LINK, RT_SCOPE_HOST]),
                          st.sampled_from([0, 0, 2, 3])), min_size=1, max_size=20))
def test_lookup_agrees_with_brute_force(specs, flows):
    net, a, b = setup()
    tb = F.fib_new_table(net, 100)
    model: list[FibRoute] = []
    bases = [0x0A000000, 0x0A010000, 0x14000000, 0]
    for sel, plen, tos, metric, rtype, scope, use_a, rnd in specs:
        base = (bases[sel] | (rnd & 0xFFFF)) & F.MASKS[plen]
        dev = a if use_a else b
        r = FibRoute(dst=base.to_bytes(4, "big"), dst_len=plen, tos=tos, priority=metric,
                     type=rtype, scope=scope, table=100,
                     nexthops=[] if FIB_ERR[rtype] else [FibNexthop(dev=dev)])
        try:
            F.fib_table_insert(net, tb, r, create=True, append=True)
        except KernelError as e:
            assert e.errno == errno.EEXIST
            continue
        model.append(r)
    for rnd, tos, scope, oif in flows:
        sel = rnd & 3
        daddr = (bases[sel] | (rnd >> 16)) if sel != 3 else rnd
        fl = F.Flowi4(daddr=daddr, tos=tos, scope=scope, oif=oif)
        got = F.fib_table_lookup(net, tb, fl)
        want = brute(model, daddr, tos, scope, oif)
        if isinstance(want, int):
            assert got == want
        else:
            assert not isinstance(got, int)
            r = got.fi
            assert (r.dst, r.dst_len, r.tos, r.priority, r.type, r.nexthops[0].dev) == \
                (want.dst, want.dst_len, want.tos, want.priority, want.type,
                 want.nexthops[0].dev)


def test_merged_local_main_until_custom_rules():
    from netstack.core.fib_rules import FibRule
    from netstack.ipv4.fib_rules import fib_rule_add, fib_rule_del
    net, a, b = setup()
    # a more specific unicast route in main beats a shorter local route (merged trie)
    F.fib_route_add(net, R("10.0.0.1/32", dev=b, scope=RT_SCOPE_LINK, table=254), excl=True)
    res = F.fib_lookup(net, F.Flowi4(daddr=ip("10.0.0.1")))
    assert res.type == RTN_LOCAL            # equal length: local first
    F.fib_route_add(net, R("10.0.0.0/24", dev=b, scope=RT_SCOPE_HOST, type=RTN_LOCAL,
                           table=255), excl=True)
    res = F.fib_lookup(net, F.Flowi4(daddr=ip("10.0.0.9")))
    assert res.type == RTN_LOCAL
    F.fib_route_add(net, R("10.0.0.8/29", dev=b, scope=RT_SCOPE_LINK), excl=True)
    assert F.fib_lookup(net, F.Flowi4(daddr=ip("10.0.0.9"))).type == RTN_UNICAST
    # after a rule is added, the local table is consulted first, whole
    fib_rule_add(net, FibRule(priority=100, table=254, fwmark=7))
    assert net.ipv4.has_custom_rules
    assert F.fib_lookup(net, F.Flowi4(daddr=ip("10.0.0.9"))).type == RTN_LOCAL
    assert F.fib_lookup(net, F.Flowi4(daddr=ip("10.0.0.9"), mark=7)).type == RTN_LOCAL
    # move the local rule after the fwmark one: marked traffic now sees main only
    fib_rule_del(net, FibRule(priority=0))
    fib_rule_add(net, FibRule(priority=200, table=255))
    assert F.fib_lookup(net, F.Flowi4(daddr=ip("10.0.0.9"), mark=7)).type == RTN_UNICAST
    assert F.fib_lookup(net, F.Flowi4(daddr=ip("10.0.0.9"))).type == RTN_LOCAL


def test_lookup_errors_and_default_table():
    net, a, b = setup()
    res = F.fib_lookup(net, F.Flowi4(daddr=ip("8.8.8.8")))
    assert isinstance(res, KernelError) and res.errno == errno.ENETUNREACH
    F.fib_route_add(net, R("8.0.0.0/8", type=RTN_PROHIBIT), excl=True)
    assert F.fib_lookup(net, F.Flowi4(daddr=ip("8.8.8.8"))).errno == errno.EACCES
    F.fib_route_add(net, R("8.8.0.0/16", type=RTN_THROW), excl=True)
    assert F.fib_lookup(net, F.Flowi4(daddr=ip("8.8.8.8"))).errno == errno.ENETUNREACH
    F.fib_route_add(net, R("0.0.0.0/0", "10.0.0.2", table=253), excl=True)
    res = F.fib_lookup(net, F.Flowi4(daddr=ip("8.8.8.8")))
    assert res.table == 253 and res.nh.gw == ip("10.0.0.2")


# ---------------------------------------------------------------------- ECMP
def test_rebalance_thresholds():
    fi = FibRoute(nexthops=[FibNexthop(weight=1), FibNexthop(weight=3), FibNexthop(weight=4)])
    fib_rebalance(fi)
    assert [nh.upper_bound for nh in fi.nexthops] == [
        ((1 << 31) + 4) // 8 - 1, ((4 << 31) + 4) // 8 - 1, (1 << 31) - 1]
    fi.nexthops[1].flags |= RTNH_F_DEAD
    fib_rebalance(fi)
    assert [nh.upper_bound for nh in fi.nexthops] == [((1 << 31) + 2) // 5 - 1, -1,
                                                      (1 << 31) - 1]
    sel = [fib_select_multipath(fi, h, 0, False) for h in (0, 429496728, 429496730,
                                                           (1 << 31) - 1)]
    assert sel == [0, 0, 2, 2]


def test_multipath_route_and_device_down():
    net, a, b = setup()
    c, d = veth.create_pair(net, "d2", b"\x06" * 6, net, "d3", b"\x08" * 6)
    net.dev_open(c)
    net.dev_open(d)
    D.inet_add_addr(net, c, D.IfAddr(local=ip("10.2.0.1"), prefixlen=24))
    F.fib_route_add(net, FibRoute(dst=ip("30.0.0.0"), dst_len=8, nexthops=[
        FibNexthop(gw=ip("10.1.0.2"), weight=1), FibNexthop(gw=ip("10.2.0.2"), weight=3)]),
        excl=True)
    r = F.fib_dump(net, 254)
    mp = next(x for x in r if x.dst == ip("30.0.0.0"))
    assert [nh.dev.name for nh in mp.nexthops] == ["d1", "d2"]
    net.dev_close(c)
    assert mp.nexthops[1].flags & RTNH_F_DEAD and not mp.flags & RTNH_F_DEAD
    assert mp in F.fib_dump(net, 254)
    assert mp.nexthops[1].upper_bound == -1
    net.dev_open(c)
    assert not mp.nexthops[1].flags & RTNH_F_DEAD
    assert mp.nexthops[1].upper_bound == (1 << 31) - 1
