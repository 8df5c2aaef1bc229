"""IPv6 policy rules (net/ipv6/fib6_rules.c) on the shared engine :mod:`netstack.core.fib_rules`.

The IPv6 part: source/destination prefix selectors (a source prefix only matches a flow
that has a source address, ``RT6_LOOKUP_F_HAS_SADDR``) and the traffic class
(``fib6_rule_match``); the actions (``fib6_rule_action``: a table lookup that finds
nothing — or a ``throw`` route — continues with the next rule (-EAGAIN); the
unreachable/prohibit/blackhole actions give the kernel's ip6_null_entry /
ip6_prohibit_entry / ip6_blk_hole_entry); ``suppress_prefixlength``/``suppress_ifgroup``;
the two default rules (0 → local, 32766 → main; IPv6 has no ``default`` table rule); and
``fib6_rule_configure``, which rejects a rule without a table ("Invalid table") and sets
``net.ipv6.has_custom_rules`` (which disables the input route hint).
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.core import fib_rules as core
from netstack.core.fib_rules import (FR_ACT_BLACKHOLE, FR_ACT_PROHIBIT, FR_ACT_TO_TBL,
                                     FR_ACT_UNREACHABLE, FibRule, FibRulesOps)
from netstack.errors import KernelError
from netstack.ipv6.addr import ANY, prefix_equal, prefix_mask
from netstack.core.rtnetlink import (  # noqa: F401  (re-exported)
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net


def fib6_rule_match(rule: FibRule, fl: Any) -> bool:
    """``fib6_rule_match``."""
    if rule.dst_len and not prefix_equal(fl.daddr, rule.dst, rule.dst_len):  # type: ignore[arg-type]
        return False
    if rule.src_len and (fl.saddr == ANY
                         or not prefix_equal(fl.saddr, rule.src, rule.src_len)):  # type: ignore[arg-type]
        return False
    if rule.tos and rule.tos != getattr(fl, "tclass", 0) & 0xFC:
        return False
    return True


def _make_action(net: "Net") -> Any:
    def fib6_rule_action(rule: FibRule, fl: Any, flags: int) -> tuple[int, Any]:
        from netstack.ipv6 import route as r6
        act = rule.action
        if act == FR_ACT_TO_TBL:
            res = r6._lookup_table(net, rule.table, fl.daddr, fl.oif)
            if res is None or res.route.type == r6.RTN_THROW:
                return -errno.EAGAIN, None
            return 0, res
        kind = {FR_ACT_UNREACHABLE: r6.RTN_UNREACHABLE, FR_ACT_PROHIBIT: r6.RTN_PROHIBIT,
                FR_ACT_BLACKHOLE: r6.RTN_BLACKHOLE}.get(act, r6.RTN_BLACKHOLE)
        err = {r6.RTN_UNREACHABLE: -errno.ENETUNREACH, r6.RTN_PROHIBIT: -errno.EACCES}.get(
            kind, -errno.EINVAL)
        return 0, r6.Fib6Result(r6.Fib6Route(ANY, 0, type=kind), None, 0, err)
    return fib6_rule_action


def fib6_rule_suppress(rule: FibRule, res: Any) -> bool:
    """``fib6_rule_suppress``."""
    if res is None or res.nh is None:
        return False
    if res.route.dst_len <= rule.suppress_prefixlen:
        return True
    if rule.suppress_ifgroup != -1 and res.nh.dev is not None \
            and res.nh.dev.group == rule.suppress_ifgroup:
        return True
    return False


def fib6_rule_configure(net: "Net", rule: FibRule) -> None:
    """``fib6_rule_configure``."""
    from netstack.ipv6.route import get_table
    if rule.action == FR_ACT_TO_TBL and not rule.table:
        raise KernelError(errno.EINVAL, "Invalid table")
    for ln, addr, what in ((rule.src_len, rule.src, "source"),
                           (rule.dst_len, rule.dst, "destination")):
        if ln and (addr is None or ln > 128 or len(addr) != 16):
            raise KernelError(errno.EINVAL, f"Invalid {what} address")
    if rule.src_len:
        rule.src = prefix_mask(rule.src, rule.src_len)  # type: ignore[arg-type]
    if rule.dst_len:
        rule.dst = prefix_mask(rule.dst, rule.dst_len)  # type: ignore[arg-type]
    if rule.action == FR_ACT_TO_TBL:
        get_table(net, rule.table, create=True)
    net.ipv6.has_custom_rules = True


def fib6_rule_compare(r: FibRule, m: FibRule) -> bool:
    """``fib6_rule_compare``."""
    if m.src_len and (r.src_len != m.src_len or r.src != prefix_mask(m.src, m.src_len)):  # type: ignore[arg-type]
        return False
    if m.dst_len and (r.dst_len != m.dst_len or r.dst != prefix_mask(m.dst, m.dst_len)):  # type: ignore[arg-type]
        return False
    if m.tos and r.tos != m.tos:
        return False
    return True


def fib6_rules_init(net: "Net") -> FibRulesOps:
    """``fib6_rules_net_init``: the ops and the two default rules."""
    ops = FibRulesOps(family=core.AF_INET6, match=fib6_rule_match, action=_make_action(net),
                      suppress=fib6_rule_suppress, configure=fib6_rule_configure,
                      compare=fib6_rule_compare)
    core.fib_default_rule_add(ops, 0, RT_TABLE_LOCAL)
    core.fib_default_rule_add(ops, 0x7FFE, RT_TABLE_MAIN)
    return ops


def fib_rule_add(net: "Net", rule: FibRule, excl: bool = True) -> FibRule:
    """``ip -6 rule add``."""
    rule.family = core.AF_INET6
    return core.fib_rule_add(net, net.ipv6.rules, rule, excl)


def fib_rule_del(net: "Net", rule: FibRule) -> FibRule:
    """``ip -6 rule del``."""
    rule.family = core.AF_INET6
    return core.fib_rule_del(net, net.ipv6.rules, rule)


def fib_rule_dump(net: "Net") -> list[FibRule]:
    """``ip -6 rule show``."""
    return core.fib_rule_dump(net.ipv6.rules)
