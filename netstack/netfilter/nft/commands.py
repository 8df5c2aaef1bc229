"""Transactions: apply a list of parsed commands to a namespace's nftables state
(net/netfilter/nf_tables_api.c ``nf_tables_newtable`` … and the commit/abort logic).

Why the copy: a batch is atomic in the kernel — ``nft -f FILE`` with an error on its last
line leaves the ruleset exactly as it was.  The batch runs against a deep copy of the
tables; only when every command succeeded does the copy replace the live state (and the
base chains' hooks are re-registered with NF2's hook infrastructure).  ``-c`` runs the same
way and throws the copy away."""
from __future__ import annotations

import copy
import errno
from typing import Any

from netstack.errors import NotSupported
from netstack.netfilter.nft import listing
from netstack.netfilter.nft import types as T
from netstack.netfilter.nft import vm as V
from netstack.netfilter.nft import vm_stmts as VS
from netstack.netfilter.nft.errors import Loc, NftError, NftKernelError
from netstack.netfilter.nft.evaluate import RuleCompiler
from netstack.netfilter.nft.netlink import NetlinkLog
from netstack.netfilter.nft.parser import ChainSpec, Cmd, ObjSpec, SetSpec
from netstack.netfilter.nft.ruleset import (Chain, Flowtable, NftSet, NftState, Rule,
                                            StatefulObj, Table)

HOOKS = {"ip": ("prerouting", "input", "forward", "output", "postrouting"),
         "ip6": ("prerouting", "input", "forward", "output", "postrouting"),
         "inet": ("prerouting", "input", "forward", "output", "postrouting", "ingress"),
         "netdev": ("ingress", "egress"), "bridge": ("prerouting", "input", "forward",
                                                     "output", "postrouting"),
         "arp": ("input", "output")}


def _enoent(loc: Loc | None) -> NftKernelError:
    return NftKernelError(errno.ENOENT, "Could not process rule: No such file or directory",
                          loc)


def _eexist(loc: Loc | None) -> NftKernelError:
    return NftKernelError(errno.EEXIST, "Could not process rule: File exists", loc)


def _ebusy(loc: Loc | None) -> NftKernelError:
    return NftKernelError(errno.EBUSY, "Could not process rule: Device or resource busy",
                          loc)


class Transaction:
    """One batch against ``state`` (a deep copy is modified; see module doc)."""

    def __init__(self, state: NftState, net: Any = None, handles: bool = False,
                 netlink: NetlinkLog | None = None) -> None:
        self.orig = state
        # only the tables are copied: the registered hook ops point at devices and
        # therefore at the whole namespace, which must not be duplicated
        self.state = NftState(copy.deepcopy(state.tables), state.table_handle)
        self.net = net
        self.handles = handles
        self.nl = netlink
        self.out: list[str] = []
        self.warnings: list[str] = []  # stderr lines of a successful run
        self.json = False             # -j: list commands print libnftables JSON
        clock = getattr(getattr(net, "world", None), "clock", None)
        self.now: int | None = clock.now if clock is not None else None

    # ------------------------------------------------------------------ lookup
    def table(self, cmd: Cmd) -> Table:
        t = self.state.find_table(cmd.family, cmd.table or "")
        if t is None:
            if cmd.op in ("list", "reset") or (cmd.op in ("add", "create") and cmd.obj in (
                    "chain", "set", "map", "element", "counter", "quota", "limit",
                    "flowtable", "ct helper", "ct expectation")):
                # nft finds the table missing in its own cache before asking the kernel
                raise NftError("No such file or directory", cmd.tloc or cmd.loc)
            raise _enoent(cmd.tloc or cmd.loc)
        return t

    def chain(self, t: Table, cmd: Cmd) -> Chain:
        c = t.chains.get(cmd.name or "")
        if c is None:
            raise _enoent(cmd.loc)
        return c

    # ------------------------------------------------------------------ dispatch
    def run(self, cmds: list[Cmd]) -> None:
        for cmd in cmds:
            if self.json and cmd.op == "list" and cmd.obj not in ("ruleset", "table"):
                raise NotSupported(f"nft -j list {cmd.obj}")
            fn = getattr(self, f"do_{cmd.op}_{cmd.obj.replace(' ', '_')}", None)
            if fn is None:
                fn = getattr(self, f"do_{cmd.op}_{ {'map': 'set'}.get(cmd.obj, cmd.obj)}",
                             None)
            if fn is None:
                raise NotSupported(f"nft {cmd.op} {cmd.obj}")
            fn(cmd)

    def commit(self) -> None:
        """Make the copy live and re-register the base chains' hooks."""
        self.orig.tables = self.state.tables
        self.orig.table_handle = self.state.table_handle
        if self.net is not None:
            from netstack.netfilter.nft.hooks import sync_hooks
            sync_hooks(self.net, self.orig)

    # ------------------------------------------------------------------ tables
    def do_add_table(self, cmd: Cmd, create: bool = False) -> None:
        t = self.state.find_table(cmd.family, cmd.table or "")
        if t is not None:
            if create:
                raise _eexist(cmd.tloc or cmd.loc)
            return
        self.state.table_handle += 1
        t = Table(cmd.family, cmd.table or "", self.state.table_handle)
        if isinstance(cmd.spec, dict):
            t.flags = cmd.spec.get("flags", [])
            t.comment = cmd.spec.get("comment")
        self.state.tables.append(t)

    def do_create_table(self, cmd: Cmd) -> None:
        self.do_add_table(cmd, create=True)

    def do_delete_table(self, cmd: Cmd) -> None:
        if cmd.handle is not None:
            for t in self.state.tables:
                if t.family == cmd.family and t.handle == cmd.handle:
                    self.state.tables.remove(t)
                    return
            raise _enoent(cmd.loc)
        self.state.tables.remove(self.table(cmd))

    def do_destroy_table(self, cmd: Cmd) -> None:
        t = self.state.find_table(cmd.family, cmd.table or "")
        if t is not None:
            self.state.tables.remove(t)

    def do_flush_table(self, cmd: Cmd) -> None:
        for c in self.table(cmd).chains.values():
            self._flush_chain(c)

    def _xt_warning(self, t: Table) -> None:
        """nft 1.0.6 warns on stderr, when listing as text, about a table whose rules
        hold xtables compat expressions (measured: not for native-only tables, not
        with -j)."""
        if any(isinstance(e, VS.XtCompat) for c in t.chains.values() for r in c.rules
               for e in r.exprs):
            self.warnings.append(f"# Warning: table {t.family} {t.name} is managed by "
                                 "iptables-nft, do not touch!\n")

    def do_list_table(self, cmd: Cmd) -> None:
        if not self.json:
            self._xt_warning(self.table(cmd))
        if self.json:
            import json
            from netstack.netfilter.nft.jsonfmt import META_INFO, table_objects
            self.out.append(json.dumps({"nftables": [META_INFO] +
                                        table_objects(self.table(cmd))}) + "\n")
            return
        self.out.append(listing.table_text(self.table(cmd), self.handles, now=self.now))

    def do_list_tables(self, cmd: Cmd) -> None:
        for t in self.state.tables:
            if not cmd.family or t.family == cmd.family:
                self.out.append(f"table {t.family} {t.name}\n")

    def do_list_ruleset(self, cmd: Cmd) -> None:
        if self.json:
            from netstack.netfilter.nft.jsonfmt import ruleset_json
            self.out.append(ruleset_json(self.state, cmd.family or None))
            return
        for t in self.state.tables:
            if not cmd.family or t.family == cmd.family:
                self._xt_warning(t)
        self.out.append(listing.ruleset_text(self.state, cmd.family or None, self.handles,
                                                 now=self.now))

    def do_flush_ruleset(self, cmd: Cmd) -> None:
        self.state.tables = [t for t in self.state.tables
                             if cmd.family and t.family != cmd.family]

    def do_reset_ruleset(self, cmd: Cmd) -> None:
        raise NotSupported("nft reset ruleset (nft 1.0.6 has no such command)")

    # ------------------------------------------------------------------ chains
    def do_add_chain(self, cmd: Cmd, create: bool = False) -> None:
        t = self.table(cmd)
        spec: ChainSpec = cmd.spec or ChainSpec()
        c = t.chains.get(cmd.name or "")
        if c is not None:
            if create:
                raise _eexist(cmd.loc)
            if spec.policy is not None and c.is_base:
                c.policy = spec.policy
            if spec.comment is not None:
                c.comment = spec.comment
            return
        c = Chain(cmd.name or "", t.alloc_handle(), table=t)
        if spec.hook is not None:
            fam = cmd.family
            if spec.hook not in HOOKS.get(fam, ()):
                raise NftError("unknown chain hook", spec.hook_loc or spec.loc)
            ok_hooks = {"nat": ("prerouting", "input", "output", "postrouting"),
                        "route": ("output",)}.get(spec.type or "filter")
            if (spec.type == "nat" and fam in ("netdev", "arp")) or \
                    (ok_hooks is not None and spec.hook not in ok_hooks) or \
                    (spec.type == "route" and fam not in ("ip", "ip6", "inet")):
                # nf_tables_chain_type / nft_chain_validate_hooks refuse it
                raise NftKernelError(errno.EOPNOTSUPP, "Could not process rule: Operation "
                                     "not supported", cmd.full_loc or cmd.loc)
            if fam in ("netdev",) or spec.hook == "ingress":
                if spec.device is None:
                    raise NftError("Missing `device' in this chain definition", spec.loc)
            c.type, c.hook, c.priority = spec.type, spec.hook, spec.priority
            c.priority_text, c.device = spec.priority_text, spec.device
            c.policy = spec.policy or "accept"
        elif spec.policy is not None:
            raise NftError("policy requires type and hook", spec.loc or cmd.loc)
        c.comment = spec.comment
        t.chains[c.name] = c
        if self.nl is not None:
            self.nl.chain(c, cmd.family)

    def do_create_chain(self, cmd: Cmd) -> None:
        self.do_add_chain(cmd, create=True)

    def _chain_refs(self, t: Table, c: Chain) -> int:
        n = 0
        for ch in t.chains.values():
            for r in ch.rules:
                n += sum(1 for e in r.exprs if isinstance(e, V.Immediate) and e.chain == c.name)
        for s in t.sets.values():
            for el in s.elements():
                if isinstance(el.data, tuple) and el.data[2] == c.name:
                    n += 1
        return n

    def do_delete_chain(self, cmd: Cmd) -> None:
        t = self.table(cmd)
        if cmd.handle is not None:
            c = next((c for c in t.chains.values() if c.handle == cmd.handle), None)
            if c is None:
                raise _enoent(cmd.loc)
        else:
            c = self.chain(t, cmd)
        if c.rules or self._chain_refs(t, c):
            raise _ebusy(cmd.loc)
        del t.chains[c.name]

    def do_destroy_chain(self, cmd: Cmd) -> None:
        t = self.state.find_table(cmd.family, cmd.table or "")
        if t is not None and cmd.name in t.chains:
            self.do_delete_chain(cmd)

    def _flush_chain(self, c: Chain) -> None:
        c.rules.clear()

    def do_flush_chain(self, cmd: Cmd) -> None:
        self._flush_chain(self.chain(self.table(cmd), cmd))

    def do_list_chain(self, cmd: Cmd) -> None:
        t = self.table(cmd)
        self._xt_warning(t)
        c = self.chain(t, cmd)
        self.out.append(listing.table_text(t, self.handles, chains=[c]))

    def do_list_chains(self, cmd: Cmd) -> None:
        for t in self.state.tables:
            if cmd.family and t.family != cmd.family:
                continue
            self.out.append(listing.table_text(t, self.handles, chains=list(t.chains.values()),
                                               chain_heads_only=True))

    def do_rename_chain(self, cmd: Cmd) -> None:
        t = self.table(cmd)
        c = self.chain(t, cmd)
        if cmd.newname in t.chains:
            raise _eexist(cmd.loc)
        del t.chains[c.name]
        c.name = cmd.newname or c.name
        t.chains[c.name] = c

    # ------------------------------------------------------------------ rules
    def compile_rule(self, t: Table, c: Chain, cmd: Cmd) -> Rule:
        def chain_lookup(name: str, loc: Loc) -> Chain:
            target = t.chains.get(name)
            if target is None:
                raise _enoent(loc)
            if target.is_base:
                raise NftKernelError(errno.EOPNOTSUPP, "Could not process rule: Operation "
                                     "not supported", loc)
            return target

        comp = RuleCompiler(cmd.family, t, self.net, chain_lookup)
        exprs, text = comp.compile(cmd.spec)
        for s in comp.anon:
            if getattr(s, "meter", False):
                # a meter's set keeps the meter's name and took its handle when created
                continue
            s.handle = t.alloc_handle()
            kind = "objmap" if "object" in s.flags else ("map" if s.is_map else "set")
            s.name = f"__{kind}{t.anon_count}"
            t.anon_count += 1
        rule = Rule(0, cmd.spec, exprs, cmd.spec.comment)
        rule.text = text
        rule.json = comp.json
        rule.anon = comp.anon
        if self.nl is not None:
            self.nl.rule(cmd.family, t.name, c.name, exprs, comp.anon)
        if comp.kernel_error is not None:
            raise comp.kernel_error
        if self.net is not None:
            # like loops, hook restrictions are checked when the batch is validated
            # for commit, which nft -c never reaches (measured: rc 0 under -c)
            self.validate_hooks(t, c, exprs, cmd)
            # the kernel finds loops when the batch is validated for commit, which a
            # check-only run (-c) never reaches
            self.check_loops(t, c, exprs, cmd)
        return rule

    # nft_reject_validate / nft_reject_inet_validate (net/netfilter/nft_reject*.c): the
    # hooks from which a chain holding ``reject`` may be reached
    REJECT_HOOKS = {"ip": ("prerouting", "input", "forward", "output"),
                    "ip6": ("prerouting", "input", "forward", "output"),
                    "inet": ("prerouting", "input", "forward", "output", "ingress"),
                    "netdev": ("ingress",),
                    # nft_reject_bridge_validate: NF_BR_PRE_ROUTING and NF_BR_LOCAL_IN only
                    "bridge": ("prerouting", "input")}

    @staticmethod
    def _targets(exprs: list, t: Table) -> list[tuple[Chain, Any]]:
        """Chains a rule jumps or goes to (immediates and verdict-map elements)."""
        out: list[tuple[Chain, Any]] = []
        for e in exprs:
            if isinstance(e, V.Immediate) and e.chain_obj is not None:
                out.append((e.chain_obj, e))
            elif isinstance(e, V.Lookup) and getattr(e.set, "data_type", None) is not None:
                for el in e.set.elements():
                    if isinstance(el.data, tuple) and el.data[2] in t.chains:
                        out.append((t.chains[el.data[2]], e))
        return out

    def _has_reject(self, t: Table, c: Chain, seen: set[str]) -> bool:
        if c.name in seen:
            return False
        seen.add(c.name)
        for r in c.rules:
            if any(isinstance(e, V.Reject) for e in r.exprs):
                return True
            if any(self._has_reject(t, x, seen) for x, _ in self._targets(r.exprs, t)):
                return True
        return False

    def _reaching_hooks(self, t: Table, target: Chain) -> set[str]:
        """Hooks of the base chains from which ``target`` can be reached."""
        hooks: set[str] = set()
        for base in t.chains.values():
            if not base.is_base:
                continue
            stack, seen = [base], set()
            while stack:
                ch = stack.pop()
                if ch.name in seen:
                    continue
                seen.add(ch.name)
                if ch is target:
                    hooks.add(base.hook or "")
                    break
                for r in ch.rules:
                    stack.extend(x for x, _ in self._targets(r.exprs, t))
        return hooks

    def validate_hooks(self, t: Table, c: Chain, exprs: list, cmd: Cmd) -> None:
        """``nft_chain_validate_hooks`` as the kernel runs it for the batch: a rule with
        ``reject`` in (or reachable from) a base chain of another hook is EOPNOTSUPP —
        reported at the whole rule for a rule of a chain block, at the whole command
        for ``add rule``, and at the jump for a jump into such a chain."""
        allowed = self.REJECT_HOOKS.get(t.family, ())
        hooks = self._reaching_hooks(t, c)
        if c.is_base:
            hooks.add(c.hook or "")
        bad = any(h not in allowed for h in hooks)
        if not bad:
            return
        if any(isinstance(e, V.Reject) for e in exprs):
            raise NftKernelError(errno.EOPNOTSUPP, "Could not process rule: Operation not "
                                 "supported", cmd.rule_loc or cmd.full_loc or cmd.loc)
        for x, e in self._targets(exprs, t):
            if self._has_reject(t, x, set()):
                loc = None
                for st in cmd.spec.stmts:
                    v = getattr(st, "verdict", None)
                    if v is not None and getattr(v, "chain", None) == x.name:
                        loc = v.loc
                raise NftKernelError(errno.EOPNOTSUPP, "Could not process rule: Operation "
                                     "not supported", loc or cmd.full_loc or cmd.loc)

    def check_loops(self, t: Table, c: Chain, exprs: list, cmd: Cmd) -> None:
        """nf_tables_check_loops: a jump back into the chain itself is ELOOP."""
        seen: set[str] = set()

        def reaches(ch: Chain) -> bool:
            if ch.name == c.name:
                return True
            if ch.name in seen:
                return False
            seen.add(ch.name)
            for r in ch.rules:
                for e in r.exprs:
                    if isinstance(e, V.Immediate) and e.chain_obj is not None and \
                            reaches(e.chain_obj):
                        return True
            return False

        for e in exprs:
            if isinstance(e, V.Immediate) and e.chain_obj is not None and reaches(e.chain_obj):
                raise NftKernelError(errno.ELOOP, "Could not process rule: Too many levels "
                                     "of symbolic links", cmd.loc)

    def _rule_index(self, c: Chain, handle: int, loc: Loc | None) -> int:
        for i, r in enumerate(c.rules):
            if r.handle == handle:
                return i
        raise _enoent(loc)

    def do_add_rule(self, cmd: Cmd, insert: bool = False) -> None:
        t = self.table(cmd)
        c = self.chain(t, cmd)
        rule = self.compile_rule(t, c, cmd)
        rule.handle = t.alloc_handle()
        if cmd.handle is not None or cmd.position is not None:
            i = self._rule_index(c, cmd.handle if cmd.handle is not None else cmd.position,
                                 cmd.loc)
            c.rules.insert(i if insert else i + 1, rule)
        elif cmd.index is not None:
            if cmd.index >= len(c.rules) + (0 if insert else 0) and cmd.index > len(c.rules):
                raise _enoent(cmd.loc)
            c.rules.insert(cmd.index if insert else cmd.index + 1, rule)
        elif insert:
            c.rules.insert(0, rule)
        else:
            c.rules.append(rule)

    def do_insert_rule(self, cmd: Cmd) -> None:
        self.do_add_rule(cmd, insert=True)

    def do_create_rule(self, cmd: Cmd) -> None:
        self.do_add_rule(cmd)

    def do_replace_rule(self, cmd: Cmd) -> None:
        t = self.table(cmd)
        c = self.chain(t, cmd)
        if cmd.handle is None:
            raise NftError("syntax error, unexpected end of file", cmd.loc)
        i = self._rule_index(c, cmd.handle, cmd.loc)
        rule = self.compile_rule(t, c, cmd)
        rule.handle = cmd.handle          # nf_tables_newrule reuses NFTA_RULE_HANDLE
        c.rules[i] = rule

    def do_delete_rule(self, cmd: Cmd) -> None:
        t = self.table(cmd)
        c = self.chain(t, cmd)
        if cmd.handle is None:
            raise NftError("syntax error, unexpected end of file, expecting handle", cmd.loc)
        del c.rules[self._rule_index(c, cmd.handle, cmd.loc)]

    def do_reset_rules(self, cmd: Cmd) -> None:
        raise NotSupported("nft reset rules (not in nft 1.0.6)")

    # ------------------------------------------------------------------ sets
    def do_add_set(self, cmd: Cmd, create: bool = False) -> None:
        t = self.table(cmd)
        spec: SetSpec | None = cmd.spec
        if cmd.name in t.sets:
            if create:
                raise _eexist(cmd.loc)
            if spec is not None and spec.elements:
                self.add_elements(t, t.sets[cmd.name], spec.elements, cmd)
            return
        if spec is None or not spec.key_types:
            raise NftError("set definition does not specify key", cmd.loc)
        types = []
        for i, name in enumerate(spec.key_types):
            if name not in T.SET_TYPES:
                loc = spec.type_locs[i] if i < len(spec.type_locs) else spec.loc
                err = NftError(f"unknown datatype {name}", loc)
                if spec.loc is not None and spec.end_loc is not None and \
                        spec.loc.line == spec.end_loc.line:
                    # nft goes on and also reports the set as keyless
                    err.extra.append(NftError("set definition does not specify key",
                                              Loc(spec.loc.line, spec.loc.first,
                                                  spec.end_loc.last)))
                raise err
            types.append(T.SET_TYPES[name][0])
        dtype = None
        if spec.is_map:
            if spec.data_type not in T.SET_TYPES:
                raise NftError(f"unknown datatype {spec.data_type}", spec.loc)
            dtype = T.SET_TYPES[spec.data_type or ""][0]
        s = NftSet(cmd.name or "", types, dtype, set(spec.flags))
        s.spec_flags = set(spec.flags)
        for f in spec.flags:
            if f not in ("constant", "interval", "timeout", "dynamic"):
                raise NftError(f"unknown set flag {f}", spec.loc)
        s.timeout, s.gc_interval, s.size = spec.timeout, spec.gc_interval, spec.size
        s.policy, s.comment, s.counter = spec.policy, spec.comment, spec.counter
        s.handle = t.alloc_handle()
        s.is_map_decl = spec.is_map
        t.sets[s.name] = s
        if self.nl is not None:
            self.nl.set(s, t.name)
        if spec.elements:
            self.add_elements(t, s, spec.elements, cmd, log=False)

    def do_create_set(self, cmd: Cmd) -> None:
        self.do_add_set(cmd, create=True)

    def _set(self, t: Table, cmd: Cmd) -> NftSet:
        s = t.sets.get(cmd.name or "")
        if s is None or s.anonymous:
            raise _enoent(cmd.loc)
        return s

    def do_delete_set(self, cmd: Cmd) -> None:
        t = self.table(cmd)
        s = self._set(t, cmd)
        for c in t.chains.values():
            for r in c.rules:
                if any(getattr(e, "set", None) is s for e in r.exprs):
                    raise _ebusy(cmd.loc)
        del t.sets[s.name]

    def do_flush_set(self, cmd: Cmd) -> None:
        self._set(self.table(cmd), cmd).flush()

    def do_list_set(self, cmd: Cmd) -> None:
        t = self.table(cmd)
        s = self._set(t, cmd)
        self.out.append(listing.table_text(t, self.handles, chains=[], sets=[s], now=self.now))

    def do_list_sets(self, cmd: Cmd) -> None:
        for t in self.state.tables:
            if cmd.family and t.family != cmd.family:
                continue
            sets = [s for s in t.sets.values() if not s.anonymous and not s.is_map]
            self.out.append(listing.table_text(t, self.handles, chains=[], sets=sets,
                                               set_heads_only=True))

    def do_list_maps(self, cmd: Cmd) -> None:
        for t in self.state.tables:
            if cmd.family and t.family != cmd.family:
                continue
            maps = [s for s in t.sets.values() if not s.anonymous and s.is_map]
            self.out.append(listing.table_text(t, self.handles, chains=[], sets=maps,
                                               set_heads_only=True))

    def do_list_flowtables(self, cmd: Cmd) -> None:
        for t in self.state.tables:
            if cmd.family and t.family != cmd.family:
                continue
            self.out.append(listing.table_text(t, self.handles, chains=[], sets=[], objs=[],
                                               flowtables=list(t.flowtables.values())))

    def add_elements(self, t: Table, s: NftSet, elems: list, cmd: Cmd,
                     log: bool = True) -> None:
        comp = RuleCompiler(cmd.family, t, self.net,
                            lambda name, loc: t.chains.get(name) or (_ for _ in ()).throw(
                                _enoent(loc)))
        before = len(s)
        comp.fill_set(s, elems)
        if cmd.op == "create" and len(s) != before + len(elems):
            raise _eexist(cmd.loc)

    def do_add_element(self, cmd: Cmd) -> None:
        t = self.table(cmd)
        self.add_elements(t, self._set(t, cmd), cmd.spec or [], cmd)

    def do_create_element(self, cmd: Cmd) -> None:
        self.do_add_element(cmd)

    def do_delete_element(self, cmd: Cmd) -> None:
        t = self.table(cmd)
        s = self._set(t, cmd)
        comp = RuleCompiler(cmd.family, t, self.net, None)
        for el in cmd.spec or []:
            key, key_end, _ = comp.element_key(s, el.key)
            if not s.remove(key, key_end):
                raise _enoent(cmd.loc)

    def do_list_element(self, cmd: Cmd) -> None:
        self.do_list_set(cmd)

    # ------------------------------------------------------------------ objects
    def do_add_counter(self, cmd: Cmd) -> None:
        self._add_obj(cmd, "counter")

    def do_add_quota(self, cmd: Cmd) -> None:
        self._add_obj(cmd, "quota")

    def do_add_limit(self, cmd: Cmd) -> None:
        self._add_obj(cmd, "limit")

    def _add_obj(self, cmd: Cmd, kind: str) -> None:
        t = self.table(cmd)
        key = (kind, cmd.name or "")
        if key in t.objs:
            return
        spec: ObjSpec = cmd.spec or ObjSpec(kind)
        st = spec.stmt
        if kind == "counter":
            expr: V.VmExpr = V.Counter(st.packets if st else 0, st.bytes if st else 0)
        elif kind == "quota":
            expr = V.Quota(st.nbytes, st.over, st.used)
        else:
            from netstack.netfilter.nft.evaluate import UNIT_SECS
            expr = V.Limit(st.rate, UNIT_SECS[st.unit], st.burst, st.bytes, st.over)
        obj = StatefulObj(kind, cmd.name or "", t.alloc_handle(), expr, st, spec.comment)
        t.objs[key] = obj
        if self.nl is not None:
            # libnftnl's object printers differ from the expressions' for limit/quota
            if kind == "counter":
                self.nl.obj(expr.netlink())
            elif kind == "quota":
                self.nl.obj(f"[ quota bytes {expr.nbytes} flags {int(bool(expr.invert))} ]")
            else:
                self.nl.obj(f"[ limit rate {expr.rate} unit {expr.unit} burst {expr.burst} "
                            f"type {int(bool(expr.is_bytes))} flags "
                            f"{int(bool(expr.invert))} ]")

    def _ct_obj_begin(self, cmd: Cmd, kind: str, create: bool
                      ) -> tuple[Table, tuple[str, str], int] | None:
        """What adding a ct helper and a ct expectation object start with: an existing
        name is EEXIST for ``create`` and nothing for ``add`` (NLM_F_EXCL,
        nf_tables_newobj), returned as None; else the table, the object key and the
        ``l3proto`` item as an NFPROTO number (0 when absent; a word other than
        ip/ip6/inet is nft's syntax error)."""
        t = self.table(cmd)
        key = (kind, cmd.name or "")
        if key in t.objs:
            if create:
                raise _eexist(cmd.loc)
            return None
        spec = cmd.spec
        l3 = {"ip": 2, "ip6": 10, "inet": 1}.get(spec.l3proto or "", 0)
        if spec.l3proto is not None and not l3:
            raise NftError(f"syntax error, unexpected {spec.l3proto}", spec.loc)
        return t, key, l3

    def do_add_ct_helper(self, cmd: Cmd, create: bool = False) -> None:
        """nft_ct_helper_obj_init (net/netfilter/nft_ct.c): the helper is looked up for
        the table's family (inet/netdev/bridge: IPv4 and IPv6, either suffices); an
        ``l3proto`` contradicting an ip/ip6 table is EINVAL, no helper ENOENT."""
        begun = self._ct_obj_begin(cmd, "ct helper", create)
        if begun is None:
            return
        t, key, l3 = begun
        spec = cmd.spec
        fam = cmd.family
        l4 = {"tcp": 6, "udp": 17}[spec.protocol]
        if self.nl is not None:
            self.nl.obj(f"[ ct_helper name {spec.type} family {l3} protocol {l4} ]")
        want = l3 or {"ip": 2, "ip6": 10}.get(fam, 1)
        if (fam == "ip" and want == 10) or (fam == "ip6" and want == 2):
            raise NftKernelError(errno.EINVAL, "Could not process rule: Invalid argument",
                                 cmd.loc)
        obj = VS.CtHelperObj(spec.type, l3, l4)
        if fam in ("ip", "ip6"):
            found = self._helper(spec.type, want, l4)
            if want == 2:
                obj.helper4 = found
            else:
                obj.helper6 = found
        elif fam in ("inet", "netdev", "bridge"):
            if want in (2, 1):
                obj.helper4 = self._helper(spec.type, 2, l4)
            if want in (10, 1):
                obj.helper6 = self._helper(spec.type, 10, l4)
        else:
            raise NftKernelError(errno.EAFNOSUPPORT, "Could not process rule: Address "
                                 "family not supported by protocol", cmd.loc)
        if obj.helper4 is None and obj.helper6 is None:
            raise NftKernelError(errno.ENOENT, "Could not process rule: No such file or "
                                 "directory", cmd.full_loc or cmd.loc)
        t.objs[key] = StatefulObj("ct helper", cmd.name or "", t.alloc_handle(), obj, spec,
                                  spec.comment)

    def do_add_ct_expectation(self, cmd: Cmd, create: bool = False) -> None:
        """nft_ct_expect_obj_init: protocol, dport, timeout, size (and l3proto) make an
        expectation template; nft prints ``family`` only when l3proto was given."""
        begun = self._ct_obj_begin(cmd, "ct expectation", create)
        if begun is None:
            return
        t, key, l3 = begun
        spec = cmd.spec
        l4 = {"tcp": 6, "udp": 17, "sctp": 132, "dccp": 33, "udplite": 136}[spec.protocol]
        if self.nl is not None:
            fam = f"family {l3} " if l3 else ""
            self.nl.obj(f"[ ct_expect {fam}protocol {l4} dport {spec.dport} timeout "
                        f"{spec.timeout} size {spec.size} ]")
        # nft_ct_expect_obj_init: l3num is NFTA_CT_EXPECT_L3PROTO or the table's family;
        # IPv4/IPv6 must be the table's (or any in inet, else EINVAL), anything else —
        # inet itself, netdev, bridge — is EAFNOSUPPORT (measured on 6.18)
        fam_num = {"ip": 2, "ip6": 10, "inet": 1, "netdev": 5, "bridge": 7,
                   "arp": 3}[cmd.family]
        l3num = l3 or fam_num
        if l3num not in (2, 10):
            raise NftKernelError(errno.EAFNOSUPPORT, "Could not process rule: Address "
                                 "family not supported by protocol", cmd.loc)
        if l3num != fam_num and cmd.family != "inet":
            raise NftKernelError(errno.EINVAL, "Could not process rule: Invalid argument",
                                 cmd.loc)
        obj = VS.CtExpectObj(l3num, l4, spec.dport, spec.timeout, spec.size)
        t.objs[key] = StatefulObj("ct expectation", cmd.name or "", t.alloc_handle(), obj,
                                  spec, None)

    def do_create_ct_expectation(self, cmd: Cmd) -> None:
        self.do_add_ct_expectation(cmd, create=True)

    def do_delete_ct_expectation(self, cmd: Cmd) -> None:
        self._del_obj(cmd, "ct expectation")

    def do_list_ct_expectation(self, cmd: Cmd) -> None:
        self._list_obj(cmd, "ct expectation")

    def do_create_ct_helper(self, cmd: Cmd) -> None:
        self.do_add_ct_helper(cmd, create=True)

    @staticmethod
    def _helper(name: str, l3num: int, l4: int) -> Any:
        """NFA's ``helper_lookup`` (netstack.netfilter.conntrack_helper): the registered
        conntrack helper called ``name`` for that family and protocol, or None."""
        try:
            from netstack.netfilter.conntrack_helper import helper_lookup
        except ImportError:
            raise NotSupported("ct helper objects: netstack.netfilter.conntrack_helper "
                               "is not available") from None
        return helper_lookup(name, l3num, l4)

    def do_delete_ct_helper(self, cmd: Cmd) -> None:
        self._del_obj(cmd, "ct helper")

    def do_destroy_ct_helper(self, cmd: Cmd) -> None:
        t = self.state.find_table(cmd.family, cmd.table or "")
        if t is not None and ("ct helper", cmd.name or "") in t.objs:
            self.do_delete_ct_helper(cmd)

    def do_list_ct_helpers(self, cmd: Cmd) -> None:
        """``list ct helpers table T``: the table's helper objects, without the blank
        line between blocks that a table listing has (measured with nft 1.0.6)."""
        t = self.table(cmd)
        objs = [o for o in sorted(t.objs.values(), key=lambda o: o.handle)
                if o.kind == "ct helper"]
        head = f"table {t.family} {t.name} {{\n"
        self.out.append(head + "".join(listing.obj_text(o, self.handles, t.family)
                                       for o in objs) + "}\n")

    def do_list_ct_helper(self, cmd: Cmd) -> None:
        self._list_obj(cmd, "ct helper")

    def _obj(self, cmd: Cmd, kind: str) -> tuple[Table, StatefulObj]:
        t = self.table(cmd)
        obj = t.objs.get((kind, cmd.name or ""))
        if obj is None:
            raise _enoent(cmd.loc)
        return t, obj

    def do_delete_counter(self, cmd: Cmd) -> None:
        self._del_obj(cmd, "counter")

    def do_delete_quota(self, cmd: Cmd) -> None:
        self._del_obj(cmd, "quota")

    def do_delete_limit(self, cmd: Cmd) -> None:
        self._del_obj(cmd, "limit")

    def _del_obj(self, cmd: Cmd, kind: str) -> None:
        """``delete <kind> T N`` for every stateful object kind: nf_tables_delobj refuses
        an object a rule still references (``obj->use``, EBUSY).  A reference is any
        expression whose ``obj`` is this object: ``Objref`` for counter/quota/limit, the
        ct helper/expectation set expressions for those kinds."""
        t, obj = self._obj(cmd, kind)
        for c in t.chains.values():
            for r in c.rules:
                if any(getattr(e, "obj", None) is obj for e in r.exprs):
                    raise _ebusy(cmd.loc)
        del t.objs[(kind, obj.name)]

    def _list_obj(self, cmd: Cmd, kind: str) -> StatefulObj:
        """``list``/``reset <kind> T N``: the table with only that object (nft's
        do_list_obj output), for every stateful object kind; returns the object so that
        ``reset`` zeroes it after listing (NFT_MSG_GETOBJ_RESET dumps, then resets)."""
        t, obj = self._obj(cmd, kind)
        self.out.append(listing.table_text(t, self.handles, chains=[], sets=[], objs=[obj]))
        return obj

    def do_list_counter(self, cmd: Cmd) -> None:
        self._list_obj(cmd, "counter")

    def do_list_quota(self, cmd: Cmd) -> None:
        self._list_obj(cmd, "quota")

    def do_list_limit(self, cmd: Cmd) -> None:
        self._list_obj(cmd, "limit")

    def do_reset_counter(self, cmd: Cmd) -> None:
        obj = self._list_obj(cmd, "counter")
        obj.expr.packets = obj.expr.bytes = 0

    def do_reset_quota(self, cmd: Cmd) -> None:
        obj = self._list_obj(cmd, "quota")
        obj.expr.consumed = 0

    def do_reset_counters(self, cmd: Cmd) -> None:
        self._reset_all(cmd, "counter")

    def do_reset_quotas(self, cmd: Cmd) -> None:
        self._reset_all(cmd, "quota")

    def _reset_all(self, cmd: Cmd, kind: str) -> None:
        for t in self.state.tables:
            if cmd.family and t.family != cmd.family:
                continue
            objs = [o for o in t.objs.values() if o.kind == kind]
            if not objs:
                continue
            self.out.append(listing.table_text(t, self.handles, chains=[], sets=[],
                                               objs=objs))
            for o in objs:
                if kind == "counter":
                    o.expr.packets = o.expr.bytes = 0
                else:
                    o.expr.consumed = 0

    def do_list_counters(self, cmd: Cmd) -> None:
        self._list_objs(cmd, "counter")

    def do_list_quotas(self, cmd: Cmd) -> None:
        self._list_objs(cmd, "quota")

    def do_list_limits(self, cmd: Cmd) -> None:
        self._list_objs(cmd, "limit")

    def _list_objs(self, cmd: Cmd, kind: str) -> None:
        for t in self.state.tables:
            if cmd.family and t.family != cmd.family:
                continue
            objs = [o for o in t.objs.values() if o.kind == kind]
            if objs:
                self.out.append(listing.table_text(t, self.handles, chains=[], sets=[],
                                                   objs=objs))

    # ------------------------------------------------------------------ flowtables
    def do_add_flowtable(self, cmd: Cmd) -> None:
        t = self.table(cmd)
        if cmd.name in t.flowtables:
            return
        spec = cmd.spec or {}
        if "hook" not in spec:
            raise NftError("missing hook and priority in flowtable declaration", cmd.loc)
        if spec["hook"] != "ingress":
            raise NftError(f"unknown flowtable hook {spec['hook']}", cmd.loc)
        ft = Flowtable(cmd.name or "", t.alloc_handle(), spec["hook"], spec["priority"],
                       spec.get("priority_text", "0"), list(spec.get("devices", [])),
                       spec.get("flags"), bool(spec.get("counter")))
        if self.net is not None:
            for d in ft.devices:
                if d not in self.net.devices:
                    raise NftKernelError(errno.ENOENT, "Could not process rule: No such file "
                                         "or directory", cmd.loc)
        t.flowtables[ft.name] = ft

    def do_delete_flowtable(self, cmd: Cmd) -> None:
        t = self.table(cmd)
        if cmd.name not in t.flowtables:
            raise _enoent(cmd.loc)
        del t.flowtables[cmd.name or ""]

    def do_list_flowtable(self, cmd: Cmd) -> None:
        t = self.table(cmd)
        ft = t.flowtables.get(cmd.name or "")
        if ft is None:
            raise _enoent(cmd.loc)
        self.out.append(listing.table_text(t, self.handles, chains=[], sets=[], objs=[],
                                           flowtables=[ft]))
