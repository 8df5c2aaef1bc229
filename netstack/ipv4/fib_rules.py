"""IPv4 policy rules (net/ipv4/fib_rules.c) on top of :mod:`netstack.core.fib_rules`.

The IPv4 part: source/destination prefix and TOS selectors (``fib4_rule_match``), the
actions (``fib4_rule_action``: table lookup, or ENETUNREACH/EACCES/EINVAL for
unreachable/prohibit/blackhole), ``suppress_prefixlength``/``suppress_ifgroup``
(``fib4_rule_suppress``), the default rules (0 local, 32766 main, 32767 default) and
``__fib_lookup``.  Adding *or deleting* any rule sets ``net.ipv4.has_custom_rules`` for
good (``fib4_rule_configure``/``fib4_rule_delete``), which also splits local from main
(``fib_unmerge``) and disables the input route hint.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.core import fib_rules as core
from netstack.core.fib_rules import (
    FR_ACT_BLACKHOLE, FR_ACT_PROHIBIT, FR_ACT_TO_TBL, FR_ACT_UNREACHABLE, FibRule,
    FibRulesOps,
)
from netstack.errors import KernelError
from netstack.ipv4.fib_semantics import RT_TABLE_DEFAULT, RT_TABLE_LOCAL, RT_TABLE_MAIN, ip_to_int

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net

#: IPTOS_TOS_MASK: "IPv4 currently doesn't handle high order DSCP bits correctly".
IPTOS_TOS_MASK = 0x1E


def _mask(n: int) -> int:
    return ((0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF) if n else 0


def fib4_rule_match(rule: FibRule, fl: Any) -> bool:
    """``fib4_rule_match``: prefixes and TOS (ports/proto are generic)."""
    if (fl.saddr ^ rule.src_int) & rule.mask_src or (fl.daddr ^ rule.dst_int) & rule.mask_dst:
        return False
    if rule.tos and rule.tos != (fl.tos & IPTOS_TOS_MASK):
        return False
    return True


def _make_action(net: "Net") -> Any:
    def fib4_rule_action(rule: FibRule, fl: Any, flags: int) -> tuple[int, Any]:
        """``fib4_rule_action``."""
        act = rule.action
        if act == FR_ACT_TO_TBL:
            from netstack.ipv4.fib import fib_table_lookup
            tb = net.ipv4.fib_tables.get(rule.table)
            if tb is None:
                return -errno.EAGAIN, None
            res = fib_table_lookup(net, tb, fl, flags)
            if type(res) is int:
                return res, None
            return 0, res
        if act == FR_ACT_UNREACHABLE:
            return -errno.ENETUNREACH, None
        if act == FR_ACT_PROHIBIT:
            return -errno.EACCES, None
        return -errno.EINVAL, None  # FR_ACT_BLACKHOLE and anything else
    return fib4_rule_action


def fib4_rule_suppress(rule: FibRule, res: Any) -> bool:
    """``fib4_rule_suppress``: reject a result whose prefix is not longer than
    suppress_prefixlength, or whose device is in suppress_ifgroup."""
    if res is None:
        return False
    if res.prefixlen <= rule.suppress_prefixlen:
        return True
    if rule.suppress_ifgroup != -1:
        nhs = res.fi.nexthops
        dev = nhs[0].dev if nhs else None
        if dev is not None and dev.group == rule.suppress_ifgroup:
            return True
    return False


def fib4_rule_configure(net: "Net", rule: FibRule) -> None:
    """``fib4_rule_configure``: TOS checks, prefixes, an empty table for a table-less
    rule, and the custom-rules flag."""
    from netstack.ipv4.fib import fib_empty_table
    if rule.tos & 0x03:
        raise KernelError(errno.EINVAL, "Invalid dsfield (tos): ECN bits must be 0")
    if rule.tos & ~IPTOS_TOS_MASK:
        raise KernelError(errno.EINVAL, "Invalid tos")
    for ln, addr, what in ((rule.src_len, rule.src, "source"), (rule.dst_len, rule.dst,
                                                                "destination")):
        if ln and (addr is None or ln > 32 or len(addr) != 4):
            raise KernelError(errno.EINVAL, f"Invalid {what} address")
    rule.src_int = ip_to_int(rule.src) if rule.src_len else 0
    rule.dst_int = ip_to_int(rule.dst) if rule.dst_len else 0
    rule.mask_src = _mask(rule.src_len)
    rule.mask_dst = _mask(rule.dst_len)
    if rule.table == 0 and rule.action == FR_ACT_TO_TBL:
        rule.table = fib_empty_table(net).id
    if rule.ipproto or rule.sport is not None or rule.dport is not None:
        net.ipv4.fib_rules_require_fldissect += 1
    net.ipv4.has_custom_rules = True


def fib4_rule_delete(net: "Net", rule: FibRule) -> None:
    """``fib4_rule_delete``: deleting a rule also counts as customising."""
    if (rule.ipproto or rule.sport is not None or rule.dport is not None) and \
            net.ipv4.fib_rules_require_fldissect:
        net.ipv4.fib_rules_require_fldissect -= 1
    net.ipv4.has_custom_rules = True


def fib4_rule_compare(r: FibRule, m: FibRule) -> bool:
    """``fib4_rule_compare``: the IPv4 fields given in ``m`` must match ``r``."""
    if m.src_len and r.src_len != m.src_len:
        return False
    if m.dst_len and r.dst_len != m.dst_len:
        return False
    if m.tos and r.tos != m.tos:
        return False
    if m.src_len and r.src_int != ip_to_int(m.src):
        return False
    if m.dst_len and r.dst_int != ip_to_int(m.dst):
        return False
    return True


def fib4_rules_init(net: "Net") -> None:
    """``fib4_rules_init``: the ops and the three default rules."""
    ipv4 = net.ipv4
    ipv4.fib_rules_require_fldissect = 0
    ops = FibRulesOps(family=core.AF_INET, match=fib4_rule_match, action=_make_action(net),
                      suppress=fib4_rule_suppress, configure=fib4_rule_configure,
                      compare=fib4_rule_compare, delete=fib4_rule_delete)
    core.fib_default_rule_add(ops, 0, RT_TABLE_LOCAL)
    core.fib_default_rule_add(ops, 0x7FFE, RT_TABLE_MAIN)
    core.fib_default_rule_add(ops, 0x7FFF, RT_TABLE_DEFAULT)
    ipv4.rules = ops


def fib4_rules_lookup(net: "Net", fl: Any, flags: int = 0) -> Any:
    """``__fib_lookup``: the FibResult, or a negative errno (-ESRCH becomes
    -ENETUNREACH; a throw or a miss in every table also ends as -ENETUNREACH)."""
    err, res = core.fib_rules_lookup(net.ipv4.rules, fl, flags)
    if err == -errno.ESRCH:
        return -errno.ENETUNREACH
    if err:
        return err
    return res


# --------------------------------------------------------------- public API
def fib_rule_add(net: "Net", rule: FibRule, excl: bool = True) -> FibRule:
    """``ip rule add`` for IPv4."""
    return core.fib_rule_add(net, net.ipv4.rules, rule, excl=excl)


def fib_rule_del(net: "Net", match: FibRule) -> FibRule:
    """``ip rule del`` for IPv4."""
    return core.fib_rule_del(net, net.ipv4.rules, match)


def fib_rule_dump(net: "Net") -> list[FibRule]:
    """``ip rule show`` for IPv4."""
    return core.fib_rule_dump(net.ipv4.rules)


__all__ = ["FibRule", "fib_rule_add", "fib_rule_del", "fib_rule_dump", "fib4_rules_lookup",
           "fib4_rules_init", "FR_ACT_BLACKHOLE", "FR_ACT_PROHIBIT", "FR_ACT_UNREACHABLE",
           "FR_ACT_TO_TBL"]
