"""Policy routing rules, family independent (net/core/fib_rules.c).

A family supplies a :class:`FibRulesOps` (match, action, suppress, configure, compare);
this module owns what is common: the ordered rule list, priority auto-assignment
(``fib_default_rule_pref``: one below the *second* rule's priority, measured on 6.18:
with the default 0/32766/32767 rules, new rules get 32765, 32764 …), insertion after the
rules of equal priority, ``goto`` resolution (forward only, "[unresolved]" while the
target priority has no rule, re-pointed when the target is deleted), the generic
selectors (iif/oif by *name*, so a rule survives its device's absence; fwmark/mask;
ipproto; sport/dport ranges; ``not``) and the lookup loop ``fib_rules_lookup``.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from netstack.errors import KernelError, NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net

# include/uapi/linux/fib_rules.h
FR_ACT_UNSPEC = 0
FR_ACT_TO_TBL = 1
FR_ACT_GOTO = 2
FR_ACT_NOP = 3
FR_ACT_RES3 = 4
FR_ACT_RES4 = 5
FR_ACT_BLACKHOLE = 6
FR_ACT_UNREACHABLE = 7
FR_ACT_PROHIBIT = 8
FR_ACT_MAX = 8

FIB_RULE_PERMANENT = 0x1
FIB_RULE_INVERT = 0x2
FIB_RULE_UNRESOLVED = 0x4
FIB_RULE_IIF_DETACHED = 0x8
FIB_RULE_OIF_DETACHED = 0x10

AF_INET = 2
AF_INET6 = 10


@dataclass(eq=False)
class FibRule:
    """``struct fib_rule`` plus the family's selectors (``fib4_rule``/``fib6_rule``).

    ``priority`` None means "not given" (auto-assigned on add; wildcard on delete).
    ``src``/``dst`` are address bytes of the family (None = any).  ``iif``/``oif`` are
    device *names* ("" = any).  ``sport``/``dport`` are inclusive (lo, hi) ranges.
    ``table`` 0 with action FR_ACT_TO_TBL on add means "a fresh empty table"
    (``fib_empty_table``)."""

    priority: int | None = None
    family: int = AF_INET
    table: int = 0
    action: int = FR_ACT_TO_TBL
    src: bytes | None = None
    src_len: int = 0
    dst: bytes | None = None
    dst_len: int = 0
    iif: str = ""
    oif: str = ""
    fwmark: int = 0
    fwmask: int | None = None
    tos: int = 0
    invert: bool = False
    goto: int | None = None
    suppress_prefixlen: int = -1
    suppress_ifgroup: int = -1
    ipproto: int = 0
    sport: tuple[int, int] | None = None
    dport: tuple[int, int] | None = None
    protocol: int = 0
    l3mdev: int = 0
    uidrange: tuple[int, int] | None = None
    tun_id: int = 0
    # -------- resolved state (set by the engine)
    iifindex: int = 0
    oifindex: int = 0
    ctarget: "FibRule | None" = None
    mask_src: int = 0
    mask_dst: int = 0
    src_int: int = 0
    dst_int: int = 0

    @property
    def pref(self) -> int:
        return self.priority if self.priority is not None else 0

    @property
    def mark_mask(self) -> int:
        if self.fwmask is not None:
            return self.fwmask
        return 0xFFFFFFFF if self.fwmark else 0

    @property
    def flags(self) -> int:
        f = FIB_RULE_INVERT if self.invert else 0
        if self.action == FR_ACT_GOTO and self.ctarget is None:
            f |= FIB_RULE_UNRESOLVED
        if self.iif and self.iifindex == -1:
            f |= FIB_RULE_IIF_DETACHED
        if self.oif and self.oifindex == -1:
            f |= FIB_RULE_OIF_DETACHED
        return f

    @property
    def unresolved(self) -> bool:
        return self.action == FR_ACT_GOTO and self.ctarget is None


@dataclass
class FibRulesOps:
    """``struct fib_rules_ops``: one family's rule list and callbacks.

    ``action(rule, flow, flags) -> (err, result)``: 0/None with a result, or a negative
    errno (-EAGAIN continues with the next rule).  ``suppress(rule, result) -> bool``.
    ``match(rule, flow) -> bool`` for the family selectors.  ``configure(net, rule)``
    validates/normalises the family part (raises KernelError).  ``compare(rule, r)`` is
    the family part of delete matching."""

    family: int
    match: Callable[[FibRule, Any], bool]
    action: Callable[[FibRule, Any, int], tuple[int, Any]]
    suppress: Callable[[FibRule, Any], bool]
    configure: Callable[["Net", FibRule], None]
    compare: Callable[[FibRule, FibRule], bool]
    delete: Callable[["Net", FibRule], None] | None = None
    rules: list[FibRule] | None = None
    nr_goto_rules: int = 0
    unresolved_rules: int = 0

    def __post_init__(self) -> None:
        if self.rules is None:
            self.rules = []


def fib_default_rule_pref(ops: FibRulesOps) -> int:
    """``fib_default_rule_pref``: the second rule's priority minus one (0 if none)."""
    rules = ops.rules
    assert rules is not None
    if len(rules) >= 2 and rules[1].pref:
        return rules[1].pref - 1
    return 0


def fib_default_rule_add(ops: FibRulesOps, pref: int, table: int) -> FibRule:
    """``fib_default_rule_add``: appended, protocol kernel."""
    r = FibRule(priority=pref, family=ops.family, table=table, protocol=2)
    assert ops.rules is not None
    ops.rules.append(r)
    return r


def _port_in(rng: tuple[int, int] | None, port: int) -> bool:
    return rng is None or rng[0] <= port <= rng[1]


def fib_rule_match(rule: FibRule, ops: FibRulesOps, fl: Any) -> bool:
    """``fib_rule_match``: generic selectors, then the family's, then ``not`` (which
    inverts the whole result, generic selectors included, as the kernel's ``out:`` label)."""
    ret = (not (rule.iifindex and rule.iifindex != fl.iif)
           and not (rule.oifindex and rule.oifindex != fl.oif)
           and not (rule.fwmark ^ fl.mark) & rule.mark_mask
           and not (rule.ipproto and rule.ipproto != fl.proto)
           and _port_in(rule.sport, fl.sport) and _port_in(rule.dport, fl.dport)
           and (rule.uidrange is None or rule.uidrange[0] <= fl.uid <= rule.uidrange[1])
           and bool(ops.match(rule, fl)))
    return (not ret) if rule.invert else ret


def fib_rules_lookup(ops: FibRulesOps, fl: Any, flags: int = 0) -> tuple[int, Any]:
    """``fib_rules_lookup``: first matching rule whose action does not ask to continue.
    Returns (0, result) or (negative errno, None); -ESRCH when no rule decides."""
    rules = ops.rules
    assert rules is not None
    i = 0
    n = len(rules)
    while i < n:
        rule = rules[i]
        i += 1
        while True:
            if not fib_rule_match(rule, ops, fl):
                break
            if rule.action == FR_ACT_GOTO:
                target = rule.ctarget
                if target is None:
                    break
                rule = target
                i = rules.index(target) + 1
                continue
            if rule.action == FR_ACT_NOP:
                break
            err, res = ops.action(rule, fl, flags)
            if not err and ops.suppress(rule, res):
                break
            if err != -errno.EAGAIN:
                if res is not None:
                    res.rule = rule
                return err, res
            break
    return -errno.ESRCH, None


def _resolve_dev(net: "Net", name: str) -> int:
    if not name:
        return 0
    dev = net.devices.get(name)
    return dev.ifindex if dev is not None else -1


def _rule_exists(ops: FibRulesOps, rule: FibRule) -> bool:
    """``rule_exists`` (NLM_F_EXCL duplicate check)."""
    assert ops.rules is not None
    for r in ops.rules:
        if (r.action != rule.action or r.table != rule.table or r.pref != rule.pref
                or r.iif != rule.iif or r.oif != rule.oif or r.fwmark != rule.fwmark
                or r.suppress_ifgroup != rule.suppress_ifgroup
                or r.suppress_prefixlen != rule.suppress_prefixlen
                or r.mark_mask != rule.mark_mask or r.tun_id != rule.tun_id
                or r.l3mdev != rule.l3mdev or r.uidrange != rule.uidrange
                or r.ipproto != rule.ipproto or r.sport != rule.sport
                or r.dport != rule.dport):
            continue
        if not ops.compare(r, rule):
            continue
        return True
    return False


def fib_rule_add(net: "Net", ops: FibRulesOps, rule: FibRule, excl: bool = True) -> FibRule:
    """``fib_newrule`` (``ip rule add`` sends NLM_F_EXCL).  The rule object is stored
    (with its priority filled in) and returned."""
    assert ops.rules is not None
    if rule.l3mdev or rule.tun_id:
        raise NotSupported("l3mdev / tun_id rule selectors")
    if not 0 <= rule.action <= FR_ACT_MAX or rule.action in (FR_ACT_RES3, FR_ACT_RES4):
        raise KernelError(errno.EINVAL)
    if rule.priority is None:
        rule.priority = fib_default_rule_pref(ops)
    rule.family = ops.family
    rule.iifindex = _resolve_dev(net, rule.iif)
    rule.oifindex = _resolve_dev(net, rule.oif)
    if rule.goto is not None:
        if rule.action != FR_ACT_GOTO:
            raise KernelError(errno.EINVAL, "Unexpected goto")
        if rule.goto <= rule.pref:
            raise KernelError(errno.EINVAL, "Backward goto not supported")
    elif rule.action == FR_ACT_GOTO:
        raise KernelError(errno.EINVAL, "Missing goto target for action goto")
    for rng, what in ((rule.sport, "sport"), (rule.dport, "dport")):
        if rng is not None and not (0 < rng[0] <= rng[1] <= 0xFFFF):
            raise KernelError(errno.EINVAL, f"Invalid {what} range")
    if excl and _rule_exists(ops, rule):
        raise KernelError(errno.EEXIST)
    ops.configure(net, rule)
    rule.ctarget = None
    if rule.action == FR_ACT_GOTO:
        for r in ops.rules:
            if r.pref == rule.goto:
                rule.ctarget = r
                break
    last = -1
    for i, r in enumerate(ops.rules):
        if r.pref > rule.pref:
            break
        last = i
    ops.rules.insert(last + 1, rule)
    for r in ops.rules:
        if r.action == FR_ACT_GOTO and r.ctarget is None and r.goto == rule.pref and r is not rule:
            r.ctarget = rule
    if rule.action == FR_ACT_GOTO:
        ops.nr_goto_rules += 1
    ops.unresolved_rules = sum(1 for r in ops.rules if r.unresolved)
    return rule


def _rule_find(ops: FibRulesOps, m: FibRule) -> FibRule | None:
    """``rule_find``: fields set in ``m`` must match."""
    assert ops.rules is not None
    for r in ops.rules:
        if m.action and r.action != m.action:
            continue
        if m.table and r.table != m.table:
            continue
        if m.priority is not None and r.pref != m.priority:
            continue
        if m.iif and r.iif != m.iif:
            continue
        if m.oif and r.oif != m.oif:
            continue
        if m.fwmark and r.fwmark != m.fwmark:
            continue
        if m.suppress_ifgroup != -1 and r.suppress_ifgroup != m.suppress_ifgroup:
            continue
        if m.suppress_prefixlen != -1 and r.suppress_prefixlen != m.suppress_prefixlen:
            continue
        if m.fwmask and r.mark_mask != m.fwmask:
            continue
        if m.ipproto and r.ipproto != m.ipproto:
            continue
        if m.protocol and r.protocol != m.protocol:
            continue
        if m.sport is not None and r.sport != m.sport:
            continue
        if m.dport is not None and r.dport != m.dport:
            continue
        if m.uidrange is not None and r.uidrange != m.uidrange:
            continue
        if not ops.compare(r, m):
            continue
        return r
    return None


def fib_rule_del(net: "Net", ops: FibRulesOps, match: FibRule) -> FibRule:
    """``fib_delrule``: ENOENT when nothing matches; goto rules pointing at the deleted
    rule move to the next rule of the same priority or become unresolved."""
    assert ops.rules is not None
    rule = _rule_find(ops, match)
    if rule is None:
        raise KernelError(errno.ENOENT)
    if ops.delete is not None:
        ops.delete(net, rule)
    idx = ops.rules.index(rule)
    ops.rules.pop(idx)
    if rule.action == FR_ACT_GOTO:
        ops.nr_goto_rules -= 1
    nxt = ops.rules[idx] if idx < len(ops.rules) and ops.rules[idx].pref == rule.pref else None
    for r in ops.rules:
        if r.ctarget is rule:
            r.ctarget = nxt
    ops.unresolved_rules = sum(1 for r in ops.rules if r.unresolved)
    return rule


def fib_rule_dump(ops: FibRulesOps) -> list[FibRule]:
    """The rules in list (priority) order."""
    assert ops.rules is not None
    return list(ops.rules)


def fib_rules_netdev_event(net: "Net", ops: FibRulesOps, event: str, dev: Any,
                           old_name: str | None = None) -> None:
    """``fib_rules_event``: iif/oif names attach on REGISTER (and rename), detach (-1)
    on UNREGISTER."""
    assert ops.rules is not None
    for r in ops.rules:
        if event in ("REGISTER", "CHANGENAME"):
            if r.iif == dev.name:
                r.iifindex = dev.ifindex
            elif event == "CHANGENAME" and r.iifindex == dev.ifindex:
                r.iifindex = -1
            if r.oif == dev.name:
                r.oifindex = dev.ifindex
            elif event == "CHANGENAME" and r.oifindex == dev.ifindex:
                r.oifindex = -1
        elif event == "UNREGISTER":
            if r.iifindex == dev.ifindex:
                r.iifindex = -1
            if r.oifindex == dev.ifindex:
                r.oifindex = -1
