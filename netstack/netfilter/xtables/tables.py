"""The xtables view of a namespace's nf_tables ruleset, as iptables-nft 1.8.9 keeps it.

iptables-nft creates ``table ip filter`` (etc.) and the builtin base chain it needs lazily
(nft.c ``nft_xt_builtin_init``): a table exists once a command wrote to it, a base chain once a
rule or policy was put in it; listings show every builtin chain anyway, with policy ACCEPT.
The kernel's answers become iptables' messages (nft.c ``nft_strerror``): ENOENT "No
chain/target/match by that name.", EEXIST "Chain already exists.", EBUSY on deleting a
referenced or builtin chain, ELOOP on a jump cycle (nf_tables_check_loops)."""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netstack.errors import NotSupported
from netstack.netfilter.xtables.errors import (XtablesError, param_problem, ruleset_problem,
                                               try_help, VERSION)
from netstack.netfilter.xtables.parse import Family, ParsedCommand, Rule
from netstack.netfilter.xtables.render import list_header, list_row, print_num, save_rule
from netstack.netfilter.xtables.matches import PortMatch
from netstack.netfilter.xtables.targets import STANDARD, Standard

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net

# builtin chains per table in display order: (name, hook, nft type, priority)
BUILTINS: dict[str, list[tuple[str, str, str, int]]] = {
    "filter": [("INPUT", "input", "filter", 0), ("FORWARD", "forward", "filter", 0),
               ("OUTPUT", "output", "filter", 0)],
    "nat": [("PREROUTING", "prerouting", "nat", -100), ("INPUT", "input", "nat", 100),
            ("OUTPUT", "output", "nat", -100), ("POSTROUTING", "postrouting", "nat", 100)],
    "mangle": [("PREROUTING", "prerouting", "filter", -150),
               ("INPUT", "input", "filter", -150), ("FORWARD", "forward", "filter", -150),
               ("OUTPUT", "output", "route", -150),
               ("POSTROUTING", "postrouting", "filter", -150)],
    "raw": [("PREROUTING", "prerouting", "filter", -300),
            ("OUTPUT", "output", "filter", -300)],
    "security": [("INPUT", "input", "filter", 50), ("FORWARD", "forward", "filter", 50),
                 ("OUTPUT", "output", "filter", 50)],
}
TABLE_ORDER = ["mangle", "security", "raw", "filter", "nat"]   # nft.h enum nft_table_type


@dataclass
class Chain:
    name: str
    builtin: bool
    policy: str = "ACCEPT"
    rules: list[Rule] = field(default_factory=list)
    created: bool = False      # base chain present in nf_tables (user chains always are)
    seq: int = 0               # creation order in nf_tables (its chain handles / listing)
    pcnt: int = 0
    bcnt: int = 0


# hooks each target's kernel side accepts (xt_REJECT reject_tg_check hooks, nft_masq /
# nft_nat validate: nat chain type and hook) and the table xt_CT insists on
_TARGET_HOOKS = {"REJECT": {"INPUT", "FORWARD", "OUTPUT"}, "MASQUERADE": {"POSTROUTING"},
                 "SNAT": {"POSTROUTING", "INPUT"}, "DNAT": {"PREROUTING", "OUTPUT"}}
_TARGET_TABLE = {"MASQUERADE": "nat", "SNAT": "nat", "DNAT": "nat", "CT": "raw",
                 "NOTRACK": "raw", "REJECT": "filter"}


def kernel_form(rule: Rule) -> Rule:
    """The rule as iptables-nft reads it back from the kernel.  A negated port range from 0
    is stored as one ``gt`` comparison (nft.c add_nft_tcpudp flips ``lte``) and is read back
    as the complementary, non-negated range; a negated range up to 65535 (``lt``) is read
    back as it was written."""
    for m in rule.matches:
        if isinstance(m, PortMatch):
            for attr, inv_attr in (("spts", "sinv"), ("dpts", "dinv")):
                lo, hi = getattr(m, attr)
                if getattr(m, inv_attr) and lo != hi:
                    if lo == 0 and hi < 65535:
                        setattr(m, attr, (hi + 1, 65535))
                        setattr(m, inv_attr, False)
    return rule


def rule_valid(table: str, rule: Rule, hooks: set[str]) -> bool:
    """Would the kernel accept ``rule`` in ``table`` for a chain reachable from ``hooks``?
    An inverted match on the zero-length any-address, REJECT --reject-with tcp-reset
    without ``-p tcp``, CT/NOTRACK outside raw, and targets outside their hooks/chain type
    are refused with EINVAL."""
    if (rule.src_inv and rule.src.mask == 0) or (rule.dst_inv and rule.dst.mask == 0):
        return False
    t = rule.target
    if t is None or isinstance(t, Standard):
        return True
    if t.name == "REJECT" and t.save().endswith("tcp-reset") and (
            rule.proto != 6 or rule.proto_inv):
        return False
    need = _TARGET_TABLE.get(t.name)
    if need in ("raw", "filter") and table != need:      # checked when the rule is added
        return False
    if hooks:
        if need == "nat" and table != "nat":
            return False
        allowed = _TARGET_HOOKS.get(t.name)
        if allowed is not None and not hooks <= allowed:
            return False
    return True


class XtTable:
    """One xtables table of one family: builtin chains (display order) then user chains."""

    def __init__(self, name: str, family: Family) -> None:
        self.name = name
        self.family = family
        self.exists = False
        self.chains: dict[str, Chain] = {n: Chain(n, True) for n, *_ in BUILTINS[name]}
        self.next_seq = 1

    def mark_created(self, ch: Chain) -> None:
        """iptables-nft creates a base chain when a command first needs it and a user
        chain at ``-N``: nf_tables lists chains in that order."""
        if not ch.seq:
            ch.seq = self.next_seq
            self.next_seq += 1

    def user_chains(self) -> list[Chain]:
        return sorted((c for c in self.chains.values() if not c.builtin), key=lambda c: c.name)

    def ordered(self) -> list[Chain]:
        return [c for c in self.chains.values() if c.builtin] + self.user_chains()

    def refs(self, name: str) -> int:
        return sum(1 for c in self.chains.values() for r in c.rules
                   if isinstance(r.target, Standard) and r.target.name == name)

    def reaches(self, start: str, goal: str) -> bool:
        """Can ``start`` reach ``goal`` by jumps/gotos (nf_tables_check_loops)?"""
        seen: set[str] = set()
        todo = [start]
        while todo:
            n = todo.pop()
            if n == goal:
                return True
            if n in seen or n not in self.chains:
                continue
            seen.add(n)
            todo += [r.target.name for r in self.chains[n].rules
                     if isinstance(r.target, Standard) and r.target.name not in STANDARD]
        return False

    def hooks_of(self, name: str) -> set[str]:
        """The builtin chains from which ``name`` is reachable (itself if builtin)."""
        return {c.name for c in self.chains.values() if c.builtin and
                self.reaches(c.name, name)}

    def subtree_valid(self, start: str, hooks: set[str]) -> bool:
        """nft_chain_validate(): every rule reachable from ``start`` is valid in ``hooks``."""
        seen: set[str] = set()
        todo = [start]
        while todo:
            n = todo.pop()
            if n in seen or n not in self.chains:
                continue
            seen.add(n)
            for r in self.chains[n].rules:
                if not rule_valid(self.name, r, hooks):
                    return False
                if isinstance(r.target, Standard) and r.target.name in self.chains:
                    todo.append(r.target.name)
        return True

    def nft_text(self, with_counts: bool = False, specs: list | None = None) -> str:
        """This table as nft commands (what iptables-nft puts into nf_tables), for the nft
        front end to load: table, the chains in creation order (base chains with
        type/hook/priority/policy), then every rule as iptables-nft writes it
        (:mod:`.compat`: native expressions, and ``__xt N`` for the xtables compat
        expressions it appends to ``specs``)."""
        from netstack.netfilter.xtables.compat import rule_to_nft_sync
        if not self.exists:
            return ""
        fam = self.family.value
        out = [f"add table {fam} {self.name}"]
        base = {n: (hook, typ, prio) for n, hook, typ, prio in BUILTINS[self.name]}
        chains = sorted((c for c in self.chains.values() if c.created),
                        key=lambda c: (c.seq == 0, c.seq))
        for c in chains:
            if c.builtin:
                hook, typ, prio = base[c.name]
                out.append(f"add chain {fam} {self.name} {c.name} {{ type {typ} hook "
                           f"{hook} priority {prio}; policy {c.policy.lower()}; }}")
            else:
                out.append(f"add chain {fam} {self.name} {c.name}")
        if specs is None:
            specs = []
        for c in chains:
            for r in c.rules:
                body = rule_to_nft_sync(r, with_counts, specs)
                out.append(f"add rule {fam} {self.name} {c.name} {body}")
        return "\n".join(out) + "\n"


class XtState:
    """All xtables tables of one family in one namespace."""

    def __init__(self, family: Family) -> None:
        self.family = family
        self.tables = {t: XtTable(t, family) for t in TABLE_ORDER}

    # ------------------------------------------------------------ commands
    def run(self, pc: ParsedCommand) -> str:
        """Execute a parsed command; returns stdout, raises XtablesError."""
        prog = pc.prog
        if pc.table not in self.tables:
            raise XtablesError(f"{prog} v{VERSION} (nf_tables): table '{pc.table}' does not "
                               "exist\nPerhaps iptables or your kernel needs to be upgraded.\n",
                               3)
        t = self.tables[pc.table]
        c = pc.command
        if c in "AIRDC" and pc.rule.target is not None and not pc.rule.goto and \
                isinstance(pc.rule.target, Standard) and \
                pc.rule.target.name not in STANDARD and pc.rule.target.name not in t.chains:
            raise param_problem(prog, f"Chain '{pc.rule.target.name}' does not exist")
        if pc.rule.goto and pc.rule.target is not None and pc.rule.target.name not in t.chains:
            raise param_problem(prog, f"Chain '{pc.rule.target.name}' does not exist")
        handler = {"A": self._append, "I": self._insert, "R": self._replace,
                   "D": self._delete, "C": self._check, "N": self._new, "X": self._delchain,
                   "E": self._rename, "P": self._policy, "F": self._flush, "Z": self._zero,
                   "L": self._list, "S": self._list_rules}[c]
        return handler(t, pc)

    def _chain(self, t: XtTable, pc: ParsedCommand, name: str | None) -> Chain:
        ch = t.chains.get(name or "")
        if ch is None:
            raise ruleset_problem(pc.prog, "No chain/target/match by that name.")
        return ch

    def _loop_check(self, t: XtTable, pc: ParsedCommand, ch: Chain, what: str) -> None:
        """What the kernel checks when the rule is committed: jump loops (ELOOP), then
        each expression's validate/checkentry for the hooks the chain is reachable from
        (EINVAL), including every rule of a chain the new rule jumps to."""
        tgt = pc.rule.target
        fail = f"{pc.prog} v{VERSION} (nf_tables):  {what} failed ({{}}): rule in chain " \
               f"{ch.name}\n"
        if isinstance(tgt, Standard) and tgt.name not in STANDARD and \
                t.reaches(tgt.name, ch.name):
            raise XtablesError(fail.format("Too many links"), 4)
        hooks = t.hooks_of(ch.name)
        for rule in [kernel_form(r) for r in pc.rules()]:
            if not rule_valid(t.name, rule, hooks) or (
                    isinstance(rule.target, Standard) and rule.target.name in t.chains and
                    not t.subtree_valid(rule.target.name, hooks)):
                raise XtablesError(fail.format("Invalid argument"), 4)

    def _materialise(self, t: XtTable, ch: Chain) -> None:
        t.exists = True
        ch.created = True
        t.mark_created(ch)

    def _append(self, t: XtTable, pc: ParsedCommand) -> str:
        ch = self._chain(t, pc, pc.chain)
        self._loop_check(t, pc, ch, "RULE_APPEND")
        self._materialise(t, ch)
        ch.rules.extend([kernel_form(r) for r in pc.rules()])
        return ""

    def _insert(self, t: XtTable, pc: ParsedCommand) -> str:
        ch = self._chain(t, pc, pc.chain)
        pos = max(pc.rulenum, 1) - 1
        if pos > len(ch.rules):
            raise ruleset_problem(pc.prog, "Index of insertion too big.")
        self._loop_check(t, pc, ch, "RULE_INSERT")
        self._materialise(t, ch)
        ch.rules[pos:pos] = [kernel_form(r) for r in pc.rules()]
        return ""

    def _replace(self, t: XtTable, pc: ParsedCommand) -> str:
        ch = self._chain(t, pc, pc.chain)
        if pc.rulenum > len(ch.rules):
            raise ruleset_problem(pc.prog, "Index of replacement too big.")
        if len(pc.srcs) > 1 or len(pc.dsts) > 1:
            raise param_problem(pc.prog, "Replacement rule does not specify a unique address")
        self._loop_check(t, pc, ch, "RULE_REPLACE")
        new = [kernel_form(r) for r in pc.rules()][0]
        old = ch.rules[pc.rulenum - 1]
        if getattr(old, "nft_handle", 0):
            # NFT_MSG_NEWRULE with NLM_F_REPLACE on the rule's handle: the replacement
            # keeps it (measured: ``nft -a`` after iptables-nft -R)
            new.nft_handle = old.nft_handle
        ch.rules[pc.rulenum - 1] = new
        return ""

    def _delete(self, t: XtTable, pc: ParsedCommand) -> str:
        ch = self._chain(t, pc, pc.chain)
        if pc.rulenum:
            if pc.rulenum > len(ch.rules):
                raise ruleset_problem(pc.prog, "Index of deletion too big.")
            del ch.rules[pc.rulenum - 1]
            return ""
        for want in [kernel_form(r) for r in pc.rules()]:
            key = want.key()
            for i, r in enumerate(ch.rules):
                if r.key() == key:
                    del ch.rules[i]
                    break
            else:
                raise ruleset_problem(pc.prog, "Bad rule (does a matching rule exist in that "
                                               "chain?).")
        return ""

    def _check(self, t: XtTable, pc: ParsedCommand) -> str:
        ch = self._chain(t, pc, pc.chain)
        keys = {r.key() for r in ch.rules}
        for want in [kernel_form(r) for r in pc.rules()]:
            if want.key() not in keys:
                raise ruleset_problem(pc.prog, "Bad rule (does a matching rule exist in that "
                                               "chain?).")
        return ""

    def _new(self, t: XtTable, pc: ParsedCommand) -> str:
        name = pc.chain or ""
        if name in t.chains:
            raise ruleset_problem(pc.prog, "Chain already exists.")
        t.exists = True
        t.chains[name] = Chain(name, False, policy="", created=True)
        t.mark_created(t.chains[name])
        return ""

    def _busy(self, pc: ParsedCommand, name: str) -> XtablesError:
        return XtablesError(f"{pc.prog} v{VERSION} (nf_tables):  CHAIN_DEL failed (Device or "
                            f"resource busy): chain {name}\n", 4)

    def _delchain(self, t: XtTable, pc: ParsedCommand) -> str:
        """-X: the kernel counts a chain's rules and the jumps to it in ``chain->use`` and
        iptables-nft deletes with NLM_F_NONREC, so only an empty, unreferenced user chain
        goes (EBUSY otherwise); without a name every user chain goes in one batch, which
        fails as a whole at the first busy one."""
        if pc.chain:
            victims = [self._chain(t, pc, pc.chain)]
        else:
            victims = t.user_chains()
        for ch in victims:
            if ch.builtin or ch.rules or t.refs(ch.name) > 0:
                raise self._busy(pc, ch.name)
        for ch in victims:
            del t.chains[ch.name]
        return ""

    def _rename(self, t: XtTable, pc: ParsedCommand) -> str:
        ch = self._chain(t, pc, pc.chain)
        if ch.builtin:
            # iptables-nft renames the base chain and leaves a table it then calls
            # "incompatible"; netstack does not model that state
            raise NotSupported(f"{pc.prog} -E of the builtin chain {ch.name}")
        if pc.newname in t.chains:
            raise ruleset_problem(pc.prog, "File exists.")
        chains = {}
        for n, c in t.chains.items():
            if n == ch.name:
                c.name = pc.newname
                chains[pc.newname] = c
            else:
                chains[n] = c
        t.chains = chains
        for c in t.chains.values():
            for r in c.rules:
                if isinstance(r.target, Standard) and r.target.name == pc.chain:
                    r.target = Standard(pc.newname, r.target.goto)
        return ""

    def _policy(self, t: XtTable, pc: ParsedCommand) -> str:
        ch = t.chains.get(pc.chain or "")
        if ch is None or not ch.builtin:
            raise ruleset_problem(pc.prog, "Bad built-in chain name.")
        if pc.policy not in ("ACCEPT", "DROP"):
            raise ruleset_problem(pc.prog, "Bad policy name. Run `dmesg' for more "
                                           "information.")
        self._materialise(t, ch)
        ch.policy = pc.policy
        return ""

    def _flush(self, t: XtTable, pc: ParsedCommand) -> str:
        chains = [self._chain(t, pc, pc.chain)] if pc.chain else list(t.chains.values())
        for ch in chains:
            ch.rules.clear()
        return ""

    def _zero(self, t: XtTable, pc: ParsedCommand) -> str:
        chains = [self._chain(t, pc, pc.chain)] if pc.chain else list(t.chains.values())
        for ch in chains:
            ch.pcnt = ch.bcnt = 0
            for r in ch.rules:
                r.pcnt = r.bcnt = 0
        return ""

    def _incompatible(self, t: XtTable, pc: ParsedCommand) -> XtablesError:
        return XtablesError(f"{pc.prog} v{VERSION} (nf_tables): chain `{pc.chain}' in table "
                            f"`{t.name}' is incompatible, use 'nft' tool.\n", 1)

    def _list(self, t: XtTable, pc: ParsedCommand) -> str:
        if pc.chain and pc.chain not in t.chains:
            raise self._incompatible(t, pc)
        chains = [t.chains[pc.chain]] if pc.chain else t.ordered()
        kw = dict(verbose=pc.verbose, numeric=pc.numeric, line_numbers=pc.line_numbers,
                  exact=pc.exact)
        if pc.rulenum:
            rules = chains[0].rules
            if pc.rulenum > len(rules):
                return ""
            return list_row(rules[pc.rulenum - 1], pc.rulenum, **kw)
        parts = []
        for ch in chains:
            if ch.builtin:
                head = f"Chain {ch.name} (policy {ch.policy}"
                if pc.verbose:
                    head += (" " + print_num(ch.pcnt, pc.exact, True) + "packets, " +
                             print_num(ch.bcnt, pc.exact, True) + "bytes")
                head += ")\n"
            else:
                head = f"Chain {ch.name} ({t.refs(ch.name)} references)\n"
            text = head + list_header(pc.verbose, pc.line_numbers, pc.exact)
            for i, r in enumerate(ch.rules, 1):
                text += list_row(r, i, **kw)
            parts.append(text)
        return "\n".join(parts)

    def _list_rules(self, t: XtTable, pc: ParsedCommand) -> str:
        if pc.chain and pc.chain not in t.chains:
            raise self._incompatible(t, pc)
        chains = [t.chains[pc.chain]] if pc.chain else t.ordered()
        if pc.rulenum:
            rules = chains[0].rules
            if pc.rulenum > len(rules):
                return ""
            return save_rule(chains[0].name, rules[pc.rulenum - 1], inline=pc.verbose) + "\n"
        out = ""
        for ch in chains:
            if ch.builtin:
                out += f"-P {ch.name} {ch.policy}"
                out += f" -c {ch.pcnt} {ch.bcnt}\n" if pc.verbose else "\n"
            else:
                out += f"-N {ch.name}\n"
        for ch in chains:
            for r in ch.rules:
                out += save_rule(ch.name, r, inline=pc.verbose) + "\n"
        return out

    # ------------------------------------------------------------ save
    def save(self, prog: str, only: str | None, counters: bool, date: str) -> str:
        """iptables-save: every existing table (or ``-t`` only) in nft.h table order."""
        out = ""
        for name in TABLE_ORDER:
            t = self.tables[name]
            if (only and name != only) or not t.exists:
                continue
            out += f"# Generated by {prog} v{VERSION} (nf_tables) on {date}\n*{name}\n"
            for ch in t.ordered():
                pol = ch.policy if ch.builtin else "-"
                out += f":{ch.name} {pol} [{ch.pcnt}:{ch.bcnt}]\n"
            for ch in t.ordered():
                for r in ch.rules:
                    out += save_rule(ch.name, r, counters) + "\n"
            out += f"COMMIT\n# Completed on {date}\n"
        return out

    def nft_text(self) -> str:
        """The whole family's xtables ruleset as nft commands (see XtTable.nft_text)."""
        return "".join(self.tables[n].nft_text() for n in TABLE_ORDER)


_STATES: "weakref.WeakKeyDictionary[Net, dict[Family, XtState]]" = \
    weakref.WeakKeyDictionary()


def state_of(net: "Net", family: Family) -> XtState:
    """The xtables state of ``net`` for ``family`` (created empty on first use)."""
    per = _STATES.setdefault(net, {})
    if family not in per:
        per[family] = XtState(family)
    return per[family]


def set_state(net: "Net", family: Family, st: XtState) -> None:
    """Replace the state (after a command ran on a copy of it)."""
    _STATES.setdefault(net, {})[family] = st


__all__ = ["XtState", "XtTable", "Chain", "state_of", "BUILTINS", "TABLE_ORDER", "try_help"]
