"""Policy rules: the generic engine (net/core/fib_rules.c) through the IPv4 ops.

Priorities, EEXIST/ENOENT, goto resolution and [detached] devices were measured on a
6.18 kernel with ``ip rule``."""
from __future__ import annotations

import errno
import ipaddress
import types

import pytest

from netstack.core.fib_rules import (
    FR_ACT_BLACKHOLE, FR_ACT_GOTO, FR_ACT_NOP, FR_ACT_PROHIBIT, FR_ACT_UNREACHABLE,
    FIB_RULE_IIF_DETACHED, FibRule,
)
from netstack.core.world import World
from netstack.drivers import veth
from netstack.errors import KernelError
from netstack.ipv4 import devinet as D
from netstack.ipv4 import fib as F
from netstack.ipv4.fib_rules import fib_rule_add, fib_rule_del, fib_rule_dump
from netstack.ipv4.fib_semantics import RT_SCOPE_LINK, FibNexthop, FibRoute


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


def prefs(net):
    return [(r.pref, r.table) for r in fib_rule_dump(net)]


def test_default_rules_and_auto_priority():
    w, net = make_net()
    assert prefs(net) == [(0, 255), (32766, 254), (32767, 253)]
    assert not net.ipv4.has_custom_rules
    fib_rule_add(net, FibRule(src=ip("1.2.3.4"), src_len=32, table=10))
    fib_rule_add(net, FibRule(src=ip("1.2.3.5"), src_len=32, table=11))
    fib_rule_add(net, FibRule(src=ip("1.2.3.4"), src_len=32, table=10))   # new pref: no EEXIST
    fib_rule_add(net, FibRule(priority=100, dst=ip("5.0.0.0"), dst_len=8, table=12))
    fib_rule_add(net, FibRule(fwmark=3, table=13))
    fib_rule_add(net, FibRule(priority=32766, iif="d0", table=14))
    assert prefs(net) == [(0, 255), (99, 13), (100, 12), (32763, 10), (32764, 11), (32765, 10),
                          (32766, 254), (32766, 14), (32767, 253)]
    assert net.ipv4.has_custom_rules


def test_exists_goto_detached_delete():
    w, net = make_net()
    fib_rule_add(net, FibRule(priority=100, src=ip("1.1.1.1"), src_len=32, table=10))
    with pytest.raises(KernelError) as e:
        fib_rule_add(net, FibRule(priority=100, src=ip("1.1.1.1"), src_len=32, table=10))
    assert e.value.errno == errno.EEXIST
    fib_rule_add(net, FibRule(priority=100, src=ip("1.1.1.0"), src_len=24, table=10))
    with pytest.raises(KernelError) as e:   # the kernel's lax compare: no prefix given
        fib_rule_add(net, FibRule(priority=100, table=10))
    assert e.value.errno == errno.EEXIST
    r = fib_rule_add(net, FibRule(priority=300, iif="nosuch", table=10))
    assert r.flags & FIB_RULE_IIF_DETACHED
    with pytest.raises(KernelError) as e:
        fib_rule_add(net, FibRule(priority=50, action=FR_ACT_GOTO, goto=40))
    assert (e.value.errno, e.value.extack) == (errno.EINVAL, "Backward goto not supported")
    g = fib_rule_add(net, FibRule(priority=50, action=FR_ACT_GOTO, goto=200))
    assert g.unresolved
    t = fib_rule_add(net, FibRule(priority=200, table=11))
    assert g.ctarget is t
    fib_rule_del(net, FibRule(priority=200))
    assert g.unresolved
    with pytest.raises(KernelError) as e:
        fib_rule_del(net, FibRule(src=ip("1.2.3.9"), src_len=32))
    assert e.value.errno == errno.ENOENT
    fib_rule_del(net, FibRule(table=10))          # first match in list order
    assert [(r.pref, r.src_len) for r in fib_rule_dump(net) if r.table == 10] == [(100, 24),
                                                                                  (300, 0)]
    # the device appears: the rule attaches
    a, b = veth.create_pair(net, "nosuch", b"\x02" * 6, net, "x1", b"\x04" * 6)
    assert not r.flags & FIB_RULE_IIF_DETACHED and r.iifindex == a.ifindex


@pytest.fixture
def routed():
    w, net = make_net()
    a, b = veth.create_pair(net, "d0", b"\x02" * 6, net, "d1", b"\x04" * 6)
    net.dev_open(a)
    net.dev_open(b)
    D.inet_add_addr(net, a, D.IfAddr(local=ip("10.0.0.1"), prefixlen=24))
    for table, gw in ((10, "10.0.0.10"), (11, "10.0.0.11"), (254, "10.0.0.254")):
        F.fib_route_add(net, FibRoute(dst=bytes(4), dst_len=0, table=table,
                                      nexthops=[FibNexthop(gw=ip(gw))]), excl=True)
    F.fib_route_add(net, FibRoute(dst=ip("9.9.0.0"), dst_len=16, table=11,
                                  nexthops=[FibNexthop(gw=ip("10.0.0.99"))]), excl=True)
    return net, a, b


def gw_of(net, **fl):
    res = F.fib_lookup(net, F.Flowi4(**fl))
    if isinstance(res, KernelError):
        return res.errno
    return str(ipaddress.IPv4Address(res.nh.gw))


def test_selectors_and_actions(routed):
    net, a, b = routed
    fib_rule_add(net, FibRule(priority=10, src=ip("1.1.0.0"), src_len=16, table=10))
    fib_rule_add(net, FibRule(priority=11, fwmark=0x10, fwmask=0xF0, table=11))
    fib_rule_add(net, FibRule(priority=12, iif="d1", table=11))
    fib_rule_add(net, FibRule(priority=13, ipproto=17, dport=(53, 53), table=10))
    fib_rule_add(net, FibRule(priority=14, tos=0x10, action=FR_ACT_PROHIBIT))
    fib_rule_add(net, FibRule(priority=15, dst=ip("7.0.0.0"), dst_len=8,
                              action=FR_ACT_UNREACHABLE))
    fib_rule_add(net, FibRule(priority=16, dst=ip("6.0.0.0"), dst_len=8,
                              action=FR_ACT_BLACKHOLE))
    fib_rule_add(net, FibRule(priority=17, dst=ip("5.0.0.0"), dst_len=8, action=FR_ACT_NOP))
    assert gw_of(net, daddr=ip("8.8.8.8"), saddr=ip("1.1.2.3")) == "10.0.0.10"
    assert gw_of(net, daddr=ip("8.8.8.8"), mark=0x1F) == "10.0.0.11"
    assert gw_of(net, daddr=ip("8.8.8.8"), mark=0x0F) == "10.0.0.254"
    assert gw_of(net, daddr=ip("8.8.8.8"), iif=b.ifindex) == "10.0.0.11"
    assert gw_of(net, daddr=ip("8.8.8.8"), proto=17, dport=53) == "10.0.0.10"
    assert gw_of(net, daddr=ip("8.8.8.8"), proto=17, dport=54) == "10.0.0.254"
    assert gw_of(net, daddr=ip("8.8.8.8"), tos=0x10) == errno.EACCES
    assert gw_of(net, daddr=ip("7.7.7.7")) == errno.ENETUNREACH
    assert gw_of(net, daddr=ip("6.6.6.6")) == errno.EINVAL
    assert gw_of(net, daddr=ip("5.5.5.5")) == "10.0.0.254"


def test_invert_goto_suppress_and_missing_table(routed):
    net, a, b = routed
    fib_rule_add(net, FibRule(priority=10, src=ip("1.1.0.0"), src_len=16, invert=True,
                              action=FR_ACT_GOTO, goto=30))
    fib_rule_add(net, FibRule(priority=20, table=10))
    fib_rule_add(net, FibRule(priority=30, table=11, suppress_prefixlen=0))
    fib_rule_add(net, FibRule(priority=40, table=4242))      # table that does not exist
    # not from 1.1/16 -> goto 30: table 11; its default route is suppressed (/0 <= 0),
    # the /16 is not
    assert gw_of(net, daddr=ip("9.9.1.1")) == "10.0.0.99"
    assert gw_of(net, daddr=ip("8.8.8.8")) == "10.0.0.254"
    # from 1.1/16: the goto does not match -> rule 20 (table 10)
    assert gw_of(net, daddr=ip("8.8.8.8"), saddr=ip("1.1.1.1")) == "10.0.0.10"
    # suppress_ifgroup
    fib_rule_del(net, FibRule(priority=20))
    fib_rule_add(net, FibRule(priority=20, table=10, suppress_ifgroup=0))
    assert gw_of(net, daddr=ip("8.8.8.8"), saddr=ip("1.1.1.1")) == "10.0.0.254"


def test_rule_validation():
    w, net = make_net()
    for rule, msg in [(FibRule(tos=0x01), "Invalid dsfield (tos): ECN bits must be 0"),
                      (FibRule(tos=0x20), "Invalid tos"),
                      (FibRule(action=FR_ACT_GOTO), "Missing goto target for action goto"),
                      (FibRule(goto=5), "Unexpected goto"),
                      (FibRule(dport=(10, 5)), "Invalid dport range")]:
        with pytest.raises(KernelError) as e:
            fib_rule_add(net, rule)
        assert (e.value.errno, e.value.extack) == (errno.EINVAL, msg)
    # a table-less lookup rule gets a fresh empty table
    r = fib_rule_add(net, FibRule(priority=5))
    assert r.table == 1 and 1 in net.ipv4.fib_tables
    F.fib_route_add(net, FibRoute(dst=ip("1.0.0.0"), dst_len=8, type=6, table=1), excl=True)
    assert gw_of(net, daddr=ip("1.2.3.4")) == errno.EINVAL


def test_scope_of_rule_lookups_use_link_routes(routed):
    net, a, b = routed
    F.fib_route_add(net, FibRoute(dst=ip("10.5.0.0"), dst_len=16, table=10, scope=RT_SCOPE_LINK,
                                  nexthops=[FibNexthop(dev=a)]), excl=True)
    fib_rule_add(net, FibRule(priority=10, table=10))
    res = F.fib_lookup(net, F.Flowi4(daddr=ip("10.5.1.1"), scope=RT_SCOPE_LINK))
    assert res.table == 10 and res.nh.dev is a
