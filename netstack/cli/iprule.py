"""``ip rule`` / ``ip -6 rule`` (ip/iprule.c): add/del/show of policy routing rules.

IPv4 rules go to :mod:`netstack.ipv4.fib_rules`, IPv6 rules to
:mod:`netstack.ipv6.fib6_rules`; both are the shared engine underneath, so only the
address width differs in parsing and printing (``/LEN`` is omitted at the host length,
32 or 128, as ``print_rule`` does).

Selectors and actions map onto the contract's :class:`FibRule`; the kernel engine
(netstack.core.fib_rules) assigns the default preference and reports EEXIST/ENOENT.
Output follows ``print_rule``: ``PRIO:\\tfrom …``, selectors in iproute2's order, then the
action (``lookup T``, ``goto N``, ``blackhole`` …).
"""
from __future__ import annotations

import errno
from typing import Any

from netstack.cli import backend
from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import (
    AF_INET, AF_INET6, Args, Ctx, addr_to_str, get_prefix, get_unsigned, invarg, kernel_error,
    matches, table_a2n, table_n2a,
)
from netstack.cli.jsonout import dumps
from netstack.errors import KernelError, NotSupported

FR_ACT_TO_TBL, FR_ACT_GOTO, FR_ACT_NOP = 1, 2, 3
FR_ACT_BLACKHOLE, FR_ACT_UNREACHABLE, FR_ACT_PROHIBIT = 6, 7, 8
_ACTIONS = {"blackhole": FR_ACT_BLACKHOLE, "unreachable": FR_ACT_UNREACHABLE,
            "prohibit": FR_ACT_PROHIBIT, "nop": FR_ACT_NOP}
_ACTION_NAMES = {v: k for k, v in _ACTIONS.items()}


def _parse(ctx: Ctx, argv: list[str], delete: bool) -> tuple[Any, int]:
    """The rule and its family (iprule_modify): the prefixes are parsed with the
    preferred family, and only afterwards does an unspecified family become AF_INET —
    so ``ip rule add from 2001:db8::/32`` sends an IPv4 rule with a 16-byte address,
    which the kernel refuses (``fib_nl2rule``: "Invalid source address", measured)."""
    cr = backend.core_rules()
    family = ctx.family
    wrong: str | None = None
    rule = cr.FibRule(action=FR_ACT_TO_TBL if not delete else 0)
    table_given = False
    args = Args(argv)
    while args:
        a = args.cur
        if a == "not":
            rule.invert = True
        elif a == "from":
            p = get_prefix(args.next_arg(), family)
            if not family and p.family == AF_INET6 and wrong is None:
                wrong = "Invalid source address"
            if not p.is_default:
                rule.src, rule.src_len = p.addr, p.bitlen
        elif a == "to":
            p = get_prefix(args.next_arg(), family)
            if not family and p.family == AF_INET6 and wrong is None:
                wrong = "Invalid destination address"
            if not p.is_default:
                rule.dst, rule.dst_len = p.addr, p.bitlen
        elif a in ("preference", "order", "priority") or matches(a, "preference") \
                or matches(a, "order") or matches(a, "priority"):
            v = args.next_arg()
            n = get_unsigned(v)
            if n is None:
                raise invarg("preference value is invalid\n", v)
            rule.priority = n
        elif a == "tos" or matches(a, "dsfield"):
            v = args.next_arg()
            n = get_unsigned(v)
            if n is None or n > 255:
                raise invarg("TOS value is invalid\n", v)
            rule.tos = n
        elif a == "fwmark":
            v = args.next_arg()
            mark, slash, mask = v.partition("/")
            m = get_unsigned(mark)
            if m is None:
                raise invarg("fwmark value is invalid\n", v)
            rule.fwmark = m
            if slash:
                mm = get_unsigned(mask)
                if mm is None:
                    raise invarg("fwmask value is invalid\n", mask)
                rule.fwmask = mm
        elif a in ("dev", "iif") or matches(a, "iif"):
            rule.iif = args.next_arg()
        elif a == "oif" or matches(a, "oif"):
            rule.oif = args.next_arg()
        elif a in ("table", "lookup") or matches(a, "table") or matches(a, "lookup"):
            v = args.next_arg()
            t = table_a2n(v)
            if t is None:
                raise invarg("invalid table ID\n", v)
            rule.table = t
            rule.action = FR_ACT_TO_TBL
            table_given = True
        elif matches(a, "suppress_prefixlength"):
            v = args.next_arg()
            n = get_unsigned(v)
            if n is None:
                raise invarg("suppress_prefixlength value is invalid\n", v)
            rule.suppress_prefixlen = n
        elif matches(a, "goto"):
            v = args.next_arg()
            n = get_unsigned(v)
            if n is None:
                raise invarg("invalid target\n", v)
            rule.goto = n
            rule.action = FR_ACT_GOTO
        elif a in _ACTIONS or (matches(a, "blackhole") and a) or matches(a, "unreachable") \
                or matches(a, "prohibit"):
            name = next(k for k in ("blackhole", "unreachable", "prohibit", "nop")
                        if matches(a, k))
            rule.action = _ACTIONS[name]
        elif a in ("realms", "uidrange", "ipproto", "sport", "dport", "tun_id", "l3mdev",
                   "protocol", "nat", "map-to", "suppress_ifgroup") or matches(a, "realms"):
            raise NotSupported(f"ip rule ... {a}")
        else:
            if matches(a, "help"):
                raise NotSupported("ip rule help")
            raise invarg("Failed to parse rule type", a)
        args.advance()
    if not delete and rule.action == FR_ACT_TO_TBL and not table_given:
        rule.table = 254
    if wrong is not None:
        raise KernelError(errno.EINVAL, wrong)
    return rule, family or AF_INET


def _host_len(r: Any) -> int:
    """``af_bit_len(frh->family)``: the prefix length printed without ``/LEN``."""
    for a in (r.src, r.dst):
        if a is not None:
            return len(a) * 8
    return 32


def _text(r: Any) -> str:
    host = _host_len(r)
    s = f"{r.pref}:\t"
    if r.invert:
        s += "not "
    s += f"from {addr_to_str(r.src)}" + (f"/{r.src_len}" if r.src_len != host else "") \
        if r.src is not None and r.src_len else "from all"
    if r.dst is not None and r.dst_len:
        s += f" to {addr_to_str(r.dst)}" + (f"/{r.dst_len}" if r.dst_len != host else "")
    if r.tos:
        s += f" tos 0x{r.tos:x}"
    if r.fwmark or r.fwmask is not None:
        s += f" fwmark 0x{r.fwmark:x}"
        if r.fwmask is not None and r.fwmask != 0xFFFFFFFF:
            s += f"/0x{r.fwmask:x}"
    if r.iif:
        s += f" iif {r.iif}" + (" [detached]" if r.iifindex == -1 else "")
    if r.oif:
        s += f" oif {r.oif}" + (" [detached]" if r.oifindex == -1 else "")
    if r.action == FR_ACT_TO_TBL:
        s += f" lookup {table_n2a(r.table)}"
        if r.suppress_prefixlen != -1:
            s += f" suppress_prefixlength {r.suppress_prefixlen}"
    elif r.action == FR_ACT_GOTO:
        s += f" goto {r.goto}"
        if r.unresolved:
            s += " [unresolved]"
    else:
        s += f" {_ACTION_NAMES.get(r.action, str(r.action))}"
    return s + "\n"


def _json(r: Any) -> dict[str, Any]:
    host = _host_len(r)
    d: dict[str, Any] = {"priority": r.pref}
    if r.invert:
        d["not"] = None
    if r.src is not None and r.src_len:
        d["src"] = addr_to_str(r.src)
        if r.src_len != host:
            d["srclen"] = r.src_len
    else:
        d["src"] = "all"
    if r.dst is not None and r.dst_len:
        d["dst"] = addr_to_str(r.dst)
        if r.dst_len != host:
            d["dstlen"] = r.dst_len
    if r.tos:
        d["tos"] = f"0x{r.tos:x}"
    if r.fwmark or r.fwmask is not None:
        d["fwmark"] = f"0x{r.fwmark:x}"
        if r.fwmask is not None and r.fwmask != 0xFFFFFFFF:
            d["fwmask"] = f"0x{r.fwmask:x}"
    if r.iif:
        d["iif"] = r.iif
        if r.iifindex == -1:
            d["iif_detached"] = None
    if r.oif:
        d["oif"] = r.oif
        if r.oifindex == -1:
            d["oif_detached"] = None
    if r.action == FR_ACT_TO_TBL:
        d["table"] = table_n2a(r.table)
        if r.suppress_prefixlen != -1:
            d["suppress_prefixlen"] = r.suppress_prefixlen
    elif r.action == FR_ACT_GOTO:
        d["goto"] = r.goto
        if r.unresolved:
            d["unresolved"] = None  # print_null(PRINT_ANY, "unresolved", " [unresolved]")
    elif r.action == FR_ACT_NOP:
        d["nop"] = None  # print_null(PRINT_ANY, "nop", ...)
    else:
        d["action"] = _ACTION_NAMES.get(r.action, str(r.action))
    return d


def _family_layer(ctx: Ctx, family: int) -> tuple[Any, Any]:
    """(rules module, per-family state or None) for ``ip rule`` / ``ip -6 rule``."""
    if family == AF_INET6:
        return backend.rules6(), ctx.net.ipv6
    return backend.rules4(), ctx.net.ipv4


def do_iprule(ctx: Ctx, argv: list[str]) -> int:
    cmd, rest = (argv[0], argv[1:]) if argv else ("show", [])
    what = "ip -6 rule" if ctx.family == AF_INET6 else "ip rule"
    try:
        if matches(cmd, "add"):
            rule, family = _parse(ctx, rest, delete=False)
            mod, state = _family_layer(ctx, family)
            if state is None:
                raise NotSupported(f"{what}: the address family is not registered")
            mod.fib_rule_add(ctx.net, rule)
        elif matches(cmd, "delete"):
            rule, family = _parse(ctx, rest, delete=True)
            mod, state = _family_layer(ctx, family)
            if state is None:
                raise NotSupported(f"{what}: the address family is not registered")
            mod.fib_rule_del(ctx.net, rule)
        elif matches(cmd, "list") or matches(cmd, "lst") or matches(cmd, "show"):
            if rest:
                raise NotSupported("ip rule show with selectors")
            mod, state = _family_layer(ctx, ctx.family)
            rules = mod.fib_rule_dump(ctx.net) if state is not None else []
            if ctx.json:
                ctx.stdout.write(dumps([_json(r) for r in rules], ctx.pretty) + "\n")
            else:
                ctx.stdout.write("".join(_text(r) for r in rules))
        elif matches(cmd, "flush") or matches(cmd, "save") or matches(cmd, "restore"):
            raise NotSupported(f"ip rule {cmd}")
        else:
            raise ToolError(f'Command "{cmd}" is unknown, try "ip rule help".\n', 255)
    except KernelError as e:
        raise kernel_error(e) from None
    return 0
