"""Parser for nft command lines and ruleset files (src/parser_bison.y, hand-written).

Produces a list of :class:`Cmd`.  A ``table … { … }`` block is expanded the way nft's
``nft_cmd_expand`` does (table, then its chains, sets, stateful objects, and last the
rules), which is also the order ``--debug=netlink`` prints the batch in.  Syntax errors
carry the location of the offending token and nft's bison wording (``syntax error,
unexpected newline``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netstack.errors import NotSupported
from netstack.netfilter.nft import ast as A
from netstack.netfilter.nft.errors import Loc, NftError
from netstack.netfilter.nft.lexer import EOF, NL, OP, STRING, WORD, Token, tokenize

FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")
VERBS = ("add", "create", "insert", "replace", "delete", "destroy", "flush", "list",
         "reset", "rename")
OBJECTS = ("table", "chain", "rule", "set", "map", "element", "counter", "quota", "limit",
           "flowtable", "ruleset", "tables", "chains", "sets", "maps", "counters", "quotas",
           "limits", "flowtables")
PROTOS = ("ip", "ip6", "tcp", "udp", "icmp", "icmpv6", "ether", "th", "sctp", "udplite",
          "vlan", "arp")
BARE_META = ("mark", "iif", "oif", "iifname", "oifname", "iiftype", "oiftype", "skuid",
             "skgid", "nftrace", "rtclassid", "pkttype", "cpu", "iifgroup", "oifgroup",
             "cgroup", "priority")
CT_DIR_KEYS = ("saddr", "daddr", "protocol", "proto-src", "proto-dst", "l3proto",
               "packets", "bytes", "avgpkt", "zone", "ip saddr", "ip daddr")
VERDICTS = ("accept", "drop", "continue", "return", "jump", "goto", "queue")
#: nft words netstack does not model: refused with NotSupported rather than a misleading
#: syntax error.
UNSUPPORTED_WORDS = ("tproxy", "synproxy", "socket", "osf",
                     "ipsec", "srh", "tunnel", "xfrm",
                     "secmark", "ct timeout", "last",
                     "inner", "vxlan", "geneve", "gretap")
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
BYTE_UNITS = {"bytes": 1, "kbytes": 1024, "mbytes": 1024 * 1024}


@dataclass
class Cmd:
    """One command of a transaction (src/rule.h ``struct cmd``)."""

    op: str
    obj: str
    family: str = "ip"
    table: str | None = None
    name: str | None = None
    handle: int | None = None
    position: int | None = None
    index: int | None = None
    spec: Any = None
    loc: Loc | None = None
    newname: str | None = None
    tloc: Loc | None = None
    full_loc: Loc | None = None       # the whole command (kernel errors on chains)
    rule_loc: Loc | None = None       # rules of a chain block: the whole rule


@dataclass
class ChainSpec:
    type: str | None = None
    hook: str | None = None
    priority: int | None = None
    priority_text: str | None = None
    policy: str | None = None
    device: str | None = None
    comment: str | None = None
    loc: Loc | None = None
    hook_loc: Loc | None = None


@dataclass
class SetSpec:
    is_map: bool
    key_types: list[str] = field(default_factory=list)
    data_type: str | None = None
    flags: list[str] = field(default_factory=list)
    timeout: int | None = None        # ms
    gc_interval: int | None = None
    size: int | None = None
    policy: str | None = None
    elements: list[A.SetElem] | None = None
    counter: bool = False
    comment: str | None = None
    loc: Loc | None = None
    type_locs: list = field(default_factory=list)
    end_loc: Loc | None = None


@dataclass
class ObjSpec:
    kind: str                          # counter | quota | limit
    stmt: Any = None
    comment: str | None = None


#: scanner.l: ``"&" | "and"``, ``"|" | "or"``, ``"^" | "xor"``.
_BINOP_WORDS = {"and": "&", "or": "|", "xor": "^"}
_BINOP_LEVEL = {"|": 1, "^": 2, "&": 3}


def _fields(proto: str) -> dict:
    from netstack.netfilter.nft.protos import PAYLOAD
    return PAYLOAD.get(proto, {})


def parse_time(text: str, loc: Loc) -> int:
    """src/datatype.c ``time_parse``: ``1d2h3m4s5ms`` → milliseconds."""
    total, num, i = 0, "", 0
    mult = {"d": 86400000, "h": 3600000, "m": 60000, "s": 1000, "ms": 1}
    if text.isdigit():
        return int(text) * 1000
    while i < len(text):
        ch = text[i]
        if ch.isdigit():
            num += ch
            i += 1
            continue
        unit = "ms" if text[i:i + 2] == "ms" else ch
        if unit not in mult or not num:
            raise NftError("Wrong time format", loc)
        total += int(num) * mult[unit]
        num = ""
        i += len(unit)
    if num:
        raise NftError("Wrong time format", loc)
    return total


class Parser:
    """Recursive descent over the token list; one instance per input text."""

    def __init__(self, text: str, name: str | None = None, cwd: str | None = None,
                 depth: int = 0) -> None:
        self.toks = tokenize(text)
        self.i = 0
        self.defines: dict[str, list[Token]] = {}
        self.name = name              # file name for "In file included from" (None: cmdline)
        self.cwd = cwd
        self.depth = depth
        self.xt_specs: list | None = None     # iptables-nft compat expressions (``__xt N``)

    # ------------------------------------------------------------------ helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Token:
        t = self.toks[self.i]
        if self.i < len(self.toks) - 1:
            self.i += 1
        return t

    def unexpected(self, tok: Token | None = None) -> NftError:
        t = tok or self.tok
        if t.kind == NL:
            what, loc = "newline", Loc(t.line, t.col, t.col)
        elif t.kind == EOF:
            what, loc = "end of file", Loc(t.line, t.col, t.col)
        elif t.kind == STRING:
            what, loc = "quoted string", Loc(t.line, t.col, t.col + len(t.text) + 1)
        elif t.kind == OP:
            names = {";": "semicolon", "{": "'{'", "}": "'}'", ",": "comma", ":": "colon",
                     "(": "'('", ")": "')'", "@": "'@'", "$": "'$'", "!=": "!=",
                     "==": "==", ".": "dot", "/": "slash", "-": "dash", "*": "asterisk",
                     "|": "'|'", "&": "'&'", "^": "'^'", "=": "'='", "<": "'<'",
                     ">": "'>'", "!": "'!'"}
            what, loc = names.get(t.text, repr(t.text)), t.loc
        elif t.text.isdigit():
            what, loc = "number", t.loc
        elif t.text in VERBS or t.text in OBJECTS or t.text in PROTOS or \
                t.text in VERDICTS or t.text in ("counter", "meta", "ct", "log", "limit"):
            what, loc = t.text, t.loc
        else:
            what, loc = "string", t.loc
        return NftError(f"syntax error, unexpected {what}", loc)

    def expect_word(self, what: str | None = None) -> Token:
        t = self.tok
        if t.kind == STRING or (t.kind == WORD and (what is None or t.text == what)):
            return self.next()
        raise self.unexpected()

    def expect_op(self, s: str) -> Token:
        if self.tok.is_op(s):
            return self.next()
        raise self.unexpected()

    def at_end_of_stmt(self) -> bool:
        t = self.tok
        return t.kind in (NL, EOF) or t.is_op(";") or t.is_op("}")

    def skip_seps(self) -> None:
        while self.tok.kind == NL or self.tok.is_op(";"):
            self.next()

    # ------------------------------------------------------------------ commands
    def parse_commands(self) -> list[Cmd]:
        cmds: list[Cmd] = []
        while True:
            self.skip_seps()
            if self.tok.kind == EOF:
                return cmds
            first = self.tok
            got = self.parse_command()
            last = self.toks[self.i - 1]
            term = self.tok          # bison's @$ for a command runs through its terminator
            if got and first.line == last.line:
                end = term.col if term.line == last.line else \
                    last.col + max(1, len(last.text)) - 1
                got[0].full_loc = Loc(first.line, first.col, end)
            cmds.extend(got)
            if not (self.tok.kind in (NL, EOF) or self.tok.is_op(";")):
                e = self.unexpected()
                if got and got[-1].obj != "rule":
                    e = NftError(e.msg + ", expecting end of file or newline or semicolon",
                                 e.loc)
                raise e

    def family_and(self) -> str:
        if self.tok.kind == WORD and self.tok.text in FAMILIES and \
                self.peek().kind in (WORD, STRING):
            return self.next().text
        return "ip"

    def parse_command(self) -> list[Cmd]:
        t = self.tok
        if t.is_word("include"):
            return self.parse_include()
        if t.is_word("define"):
            self.next()
            name = self.expect_word().text
            self.expect_op("=")
            start = self.i
            while not (self.tok.kind in (NL, EOF) or self.tok.is_op(";")):
                self.next()
            self.defines[name] = self.toks[start:self.i]
            return []
        op = "add"
        if t.kind == WORD and t.text in VERBS:
            op = self.next().text
        obj_tok = self.tok
        if obj_tok.is_word("ct") and self.peek().kind == WORD and \
                self.peek().text in ("helper", "helpers", "expectation"):
            self.next()
            obj = "ct " + self.next().text
            if obj == "ct helpers":
                # parser_bison.y: ``list ct helpers table [FAMILY] NAME``
                if not self.tok.is_word("table"):
                    raise self._expecting(self.unexpected(), "table")
                self.next()
                fam = self.family_and()
                tt = self.expect_word()
                return [Cmd(op, obj, fam, tt.text, loc=obj_tok.loc, tloc=tt.loc)]
            fam = self.family_and()
            tname_tok = self.expect_word()
            name_tok = self.expect_word()
            cmd = Cmd(op, obj, fam, tname_tok.text, name_tok.text, loc=name_tok.loc,
                      tloc=tname_tok.loc)
            if self.tok.is_op("{"):
                cmd.spec = self.parse_ct_helper_block() if obj == "ct helper" else \
                    self.parse_ct_expect_block()
            elif op in ("add", "create"):
                raise self.unexpected()
            return [cmd]
        if obj_tok.kind != WORD or obj_tok.text not in OBJECTS:
            raise self.unexpected()
        obj = self.next().text
        loc = obj_tok.loc
        if obj == "ruleset":
            fam = self.next().text if self.tok.kind == WORD and self.tok.text in FAMILIES \
                else None
            return [Cmd(op, "ruleset", fam or "", loc=loc)]
        if obj in ("tables", "chains", "sets", "maps", "counters", "quotas", "limits",
                   "flowtables"):
            fam = self.next().text if self.tok.kind == WORD and self.tok.text in FAMILIES \
                else ""
            return [Cmd(op, obj, fam, loc=loc)]
        fam = self.family_and()
        tname_tok = self.expect_word()
        cmds = self._parse_command_rest(op, obj, obj_tok, fam, tname_tok, loc)
        for c in cmds:
            if c.tloc is None:
                c.tloc = tname_tok.loc
        return cmds

    def _parse_command_rest(self, op: str, obj: str, obj_tok: Token, fam: str,
                            tname_tok: Token, loc: Loc) -> list[Cmd]:
        tname = tname_tok.text
        if obj == "table":
            cmd = Cmd(op, "table", fam, tname, loc=tname_tok.loc)
            if op == "delete" and tname == "handle":
                cmd.table, cmd.handle = None, self._int_word()
            if self.tok.is_op("{"):
                return self.parse_table_block(cmd)
            return [cmd]
        if obj == "rule":
            return [self.parse_rule_cmd(op, fam, tname, loc)]
        name_tok = self.expect_word() if not (self.tok.is_word("handle") and op in
                                                ("delete", "destroy")) else None
        if name_tok is None:
            self.next()
            h = self.expect_word()
            return [Cmd(op, obj, fam, tname, None, handle=self._int_of(h), loc=h.loc)]
        name = name_tok.text
        if obj == "chain":
            cmd = Cmd(op, "chain", fam, tname, name, loc=name_tok.loc)
            if op == "rename":
                cmd.newname = self.expect_word().text
            elif self.tok.is_op("{"):
                spec, rules = self.parse_chain_block(fam, tname, name, name_tok.loc)
                cmd.spec = spec
                return [cmd] + rules
            return [cmd]
        if obj in ("set", "map"):
            cmd = Cmd(op, "set", fam, tname, name, loc=name_tok.loc)
            if self.tok.is_op("{"):
                cmd.spec = self.parse_set_block(obj == "map")
            return [cmd]
        if obj == "element":
            cmd = Cmd(op, "element", fam, tname, name, loc=name_tok.loc)
            if self.tok.is_op("{"):
                cmd.spec = self.parse_anon_set().elems
            elif op not in ("list",):
                raise self.unexpected()
            return [cmd]
        if obj in ("counter", "quota", "limit"):
            cmd = Cmd(op, obj, fam, tname, name, loc=name_tok.loc)
            if op in ("add", "create"):
                if self.tok.is_op("{"):
                    self.next()
                    self.skip_seps()
                    cmd.spec = self.parse_obj_body(obj)
                    self.skip_seps()
                    self.expect_op("}")
                else:
                    cmd.spec = self.parse_obj_body(obj)
            return [cmd]
        if obj == "flowtable":
            cmd = Cmd(op, "flowtable", fam, tname, name, loc=name_tok.loc)
            if self.tok.is_op("{"):
                cmd.spec = self.parse_flowtable_block()
            return [cmd]
        raise self.unexpected(obj_tok)

    def parse_table_block(self, tcmd: Cmd) -> list[Cmd]:
        self.expect_op("{")
        chains: list[Cmd] = []
        sets: list[Cmd] = []
        objs: list[Cmd] = []
        rules: list[Cmd] = []
        fam, tname = tcmd.family, tcmd.table
        while True:
            self.skip_seps()
            t = self.tok
            if t.is_op("}"):
                self.next()
                break
            if t.is_word("chain"):
                self.next()
                nt = self.expect_word()
                spec, crules = (self.parse_chain_block(fam, tname, nt.text, nt.loc)
                                if self.tok.is_op("{") else (ChainSpec(), []))
                chains.append(Cmd("add", "chain", fam, tname, nt.text, spec=spec, loc=nt.loc))
                rules.extend(crules)
            elif t.is_word("set") or t.is_word("map"):
                self.next()
                nt = self.expect_word()
                spec = self.parse_set_block(t.text == "map")
                sets.append(Cmd("add", "set", fam, tname, nt.text, spec=spec, loc=nt.loc))
            elif t.kind == WORD and t.text in ("counter", "quota", "limit"):
                self.next()
                nt = self.expect_word()
                self.expect_op("{")
                self.skip_seps()
                spec = self.parse_obj_body(t.text)
                self.skip_seps()
                if self.tok.is_word("comment"):
                    self.next()
                    spec.comment = self.expect_word().text
                    self.skip_seps()
                self.expect_op("}")
                objs.append(Cmd("add", t.text, fam, tname, nt.text, spec=spec, loc=nt.loc))
            elif t.is_word("ct") and self.peek().is_word("timeout"):
                raise NotSupported("ct timeout objects (per-connection timeout policies)")
            elif t.is_word("ct") and self.peek().kind == WORD and \
                    self.peek().text in ("helper", "expectation"):
                self.next()
                kind = self.next().text
                nt = self.expect_word()
                spec = self.parse_ct_helper_block() if kind == "helper" else \
                    self.parse_ct_expect_block()
                objs.append(Cmd("add", f"ct {kind}", fam, tname, nt.text, spec=spec,
                                loc=nt.loc))
            elif t.is_word("flowtable"):
                self.next()
                nt = self.expect_word()
                spec = self.parse_flowtable_block()
                objs.append(Cmd("add", "flowtable", fam, tname, nt.text, spec=spec,
                                loc=nt.loc))
            elif t.is_word("flags"):
                self.next()
                tcmd.spec = {"flags": [self.expect_word().text]}
            elif t.is_word("comment"):
                self.next()
                tcmd.spec = dict(tcmd.spec or {}, comment=self.expect_word().text)
            else:
                raise self.unexpected()
        return [tcmd] + chains + objs + sets + rules

    def parse_chain_block(self, fam: str, tname: str, cname: str,
                          cloc: Loc | None = None) -> tuple[ChainSpec, list[Cmd]]:
        self.expect_op("{")
        spec = ChainSpec()
        rules: list[Cmd] = []
        while True:
            self.skip_seps()
            t = self.tok
            if t.is_op("}"):
                self.next()
                return spec, rules
            if t.is_word("type") and self.peek().kind == WORD and \
                    self.peek().text in ("filter", "nat", "route"):
                spec.loc = t.loc
                self.next()
                spec.type = self.next().text
                self.expect_word("hook")
                ht = self.expect_word()
                spec.hook, spec.hook_loc = ht.text, ht.loc
                if self.tok.is_word("device"):
                    self.next()
                    spec.device = self.expect_word().text
                self.expect_word("priority")
                spec.priority, spec.priority_text = self.parse_priority()
                continue
            if t.is_word("policy"):
                self.next()
                p = self.expect_word()
                if p.text not in ("accept", "drop"):
                    raise NftError("syntax error, unexpected string, expecting accept or "
                                   "drop or '$'", p.loc)
                spec.policy = p.text
                continue
            if t.is_word("comment") and self.peek().kind == STRING and \
                    self.peek(2).kind in (NL,) or (t.is_word("comment") and
                                                   self.peek(2).is_op(";")):
                self.next()
                spec.comment = self.next().text
                continue
            start = self.i
            spec_r = self.parse_rule()
            if self.i == start or t.kind == EOF:
                # nothing consumed (end of file inside the block, e.g. after unbalanced
                # braces): bison stops with "unexpected end of file" instead of looping
                raise self.unexpected(t)
            last = self.toks[self.i - 1]
            rloc = Loc(t.line, t.col, last.col + max(1, len(last.text)) - 1 +
                       (2 if last.kind == STRING else 0)) if last.line == t.line else None
            rules.append(Cmd("add", "rule", fam, tname, cname, spec=spec_r, loc=t.loc,
                             rule_loc=rloc))

    def parse_priority(self) -> tuple[int, str]:
        """``priority N`` or a standard name with an optional offset (``filter + 10``)."""
        t = self.next()
        names = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50,
                 "srcnat": 100}
        if t.kind == WORD and t.text in names:
            base, text = names[t.text], t.text
            if self.tok.is_op("+") or self.tok.is_op("-"):
                sign = 1 if self.next().text == "+" else -1
                n = self.expect_word()
                if not n.text.isdigit():
                    raise self.unexpected(n)
                return base + sign * self._int_of(n), f"{text} {'+' if sign > 0 else '-'} {n.text}"
            if self.tok.kind == WORD and self.tok.text.startswith("-") and \
                    self.tok.text[1:].isdigit():
                return base + int(self.next().text), text
            return base, text
        try:
            return int(t.text, 0), t.text
        except ValueError:
            if t.text.startswith("-") and t.text[1:].isdigit():
                return int(t.text), t.text
            raise NftError(f"'{t.text}' is not a valid priority.", t.loc) from None

    def parse_set_block(self, is_map: bool) -> SetSpec:
        start = self.expect_op("{")
        spec = SetSpec(is_map, loc=start.loc)
        while True:
            self.skip_seps()
            t = self.tok
            if t.is_op("}"):
                spec.end_loc = self.toks[self.i - 1].loc    # bison's @$ ends before '}'
                self.next()
                return spec
            self.next()
            if t.text == "type":
                kt = self.expect_word()
                spec.key_types.append(kt.text)
                spec.type_locs.append(kt.loc)
                while self.tok.is_op("."):
                    self.next()
                    kt = self.expect_word()
                    spec.key_types.append(kt.text)
                    spec.type_locs.append(kt.loc)
                if is_map:
                    self.expect_op(":")
                    spec.data_type = self.expect_word().text
            elif t.text == "flags":
                spec.flags.append(self.expect_word().text)
                while self.tok.is_op(","):
                    self.next()
                    spec.flags.append(self.expect_word().text)
            elif t.text == "timeout":
                w = self.expect_word()
                spec.timeout = parse_time(w.text, w.loc)
            elif t.text == "gc-interval":
                w = self.expect_word()
                spec.gc_interval = parse_time(w.text, w.loc)
            elif t.text == "size":
                spec.size = self._int_word()
            elif t.text == "policy":
                spec.policy = self.expect_word().text
            elif t.text == "counter":
                spec.counter = True
            elif t.text == "comment":
                spec.comment = self.expect_word().text
            elif t.text == "elements":
                self.expect_op("=")
                spec.elements = self.parse_anon_set().elems
            else:
                raise self.unexpected(t)

    def parse_obj_body(self, kind: str) -> ObjSpec:
        loc = self.tok.loc
        if kind == "counter":
            c = A.CounterS(loc)
            if self.tok.is_word("packets"):
                self.next()
                c.packets = self._int_word()
                self.expect_word("bytes")
                c.bytes = self._int_word()
            return ObjSpec("counter", c)
        if kind == "quota":
            return ObjSpec("quota", self.parse_quota(loc))
        self.expect_word("rate")
        return ObjSpec("limit", self.parse_limit(loc))

    def parse_flowtable_block(self) -> dict:
        self.expect_op("{")
        spec: dict = {"devices": []}
        while True:
            self.skip_seps()
            t = self.next()
            if t.is_op("}"):
                return spec
            if t.text == "hook":
                spec["hook"] = self.expect_word().text
                self.expect_word("priority")
                spec["priority"], spec["priority_text"] = self.parse_priority()
            elif t.text == "devices":
                self.expect_op("=")
                if self.tok.is_op("{"):
                    self.next()
                    while not self.tok.is_op("}"):
                        if self.tok.is_op(","):
                            self.next()
                            continue
                        spec["devices"].append(self.expect_word().text)
                    self.next()
                else:
                    spec["devices"].append(self.expect_word().text)
            elif t.text == "flags":
                spec["flags"] = self.expect_word().text
            elif t.text == "counter":
                spec["counter"] = True
            else:
                raise self.unexpected(t)

    def parse_rule_cmd(self, op: str, fam: str, tname: str, loc: Loc) -> Cmd:
        ctok = self.expect_word()
        cmd = Cmd(op, "rule", fam, tname, ctok.text, loc=ctok.loc)
        for kw in ("handle", "position", "index"):
            if self.tok.is_word(kw):
                self.next()
                h = self.expect_word()
                if not h.text.isdigit():
                    raise self.unexpected(h)
                setattr(cmd, kw, self._int_of(h))
        if op in ("delete", "destroy", "list", "reset"):
            return cmd
        if self.at_end_of_stmt():
            raise self.unexpected()
        cmd.spec = self.parse_rule()
        return cmd

    # ------------------------------------------------------------------ include
    def parse_include(self) -> list[Cmd]:
        """``include "FILE"`` (src/scanner.l scanner_include_file): a name that does not
        start with ``/``, ``./`` or ``../`` is looked up in the include path (nft's
        default, ``/etc``); others are globbed relative to the working directory.  No file
        for a name without wildcards is "File not found"; a wildcard matching nothing is
        not an error.  The included text shares this file's ``define``s."""
        import glob
        import os
        kw = self.next()
        ft = self.tok
        if ft.kind != STRING:
            raise self.unexpected()
        self.next()
        term = self.tok
        end = term.col if term.line == ft.line else ft.col + len(ft.text) + 1
        loc = Loc(kw.line, kw.col, end)
        fname = ft.text
        if self.depth >= 16:
            raise NftError("Include nested too deeply, max 16 levels", loc)
        is_glob = any(c in fname for c in "*?[")
        if fname.startswith(("/", "./", "../")):
            bases = [""]
        else:
            bases = ["/etc"]
        found: list[tuple[str, str]] = []
        for base in bases:
            pattern = os.path.join(base, fname) if base else fname
            real = pattern if os.path.isabs(pattern) or self.cwd is None else \
                os.path.join(self.cwd, pattern)
            hits = sorted(glob.glob(real)) if is_glob else \
                ([real] if os.path.isfile(real) else [])
            for h in hits:
                # nft names the file as written, or as the glob expanded it
                shown = pattern
                if is_glob and real != pattern:
                    shown = os.path.relpath(h, self.cwd)
                    if pattern.startswith("./"):
                        shown = "./" + shown
                elif is_glob:
                    shown = h
                found.append((h, shown))
            if found:
                break
        if not found and not is_glob:
            raise NftError(f"File not found: {fname}", loc)
        cmds: list[Cmd] = []
        for real, shown in found:
            try:
                with open(real) as f:
                    text = f.read()
            except OSError:
                raise NftError(f"File not found: {fname}", loc) from None
            sub = Parser(text, shown, self.cwd, self.depth + 1)
            sub.defines = self.defines
            try:
                cmds.extend(sub.parse_commands())
            except NftError as e:
                here = (self.name or "<cmdline>", loc)
                if e.origin is None:
                    e.origin = (shown, text.split("\n"), [here])
                else:
                    e.origin[2].append(here)
                raise
        return cmds

    # ------------------------------------------------------------------ objects
    def parse_ct_helper_block(self) -> A.CtHelperSpec:
        """``{ type "ftp" protocol tcp; [l3proto ip;] [comment "…"] }``
        (parser_bison.y ct_helper_block)."""
        return self._object_block(A.CtHelperSpec, self._ct_helper_item)

    def _object_block(self, make: Any, item: Any) -> Any:
        """The ``{ item; item … }`` frame a stateful object's body has in
        parser_bison.y (ct_helper_block, ct_expect_block): ``make(loc=…)`` builds the
        spec at the ``{``, ``item(spec, tok)`` parses one item starting at ``tok``
        (not yet consumed); separators between items are skipped."""
        start = self.expect_op("{")
        spec = make(loc=start.loc)
        while True:
            self.skip_seps()
            t = self.tok
            if t.is_op("}"):
                self.next()
                return spec
            item(spec, t)

    def _ct_helper_item(self, spec: A.CtHelperSpec, t: Any) -> None:
        """One ct_helper_config item: ``type "NAME" protocol tcp|udp``, ``l3proto F``,
        ``comment "…"``."""
        if t.is_word("type"):
            self.next()
            nt = self.tok
            if nt.kind != STRING:
                raise self.unexpected()
            self.next()
            spec.type = nt.text
            self.expect_word("protocol")
            p = self.expect_word()
            if p.text not in ("tcp", "udp"):
                raise self.unexpected(p)
            spec.protocol = p.text
            spec.loc = Loc(t.line, t.col, p.col + len(p.text) - 1)
        elif t.is_word("l3proto"):
            self.next()
            spec.l3proto = self.expect_word().text
        elif t.is_word("comment"):
            self.next()
            spec.comment = self.expect_word().text
        else:
            raise self.unexpected()

    def parse_ct_expect_block(self) -> A.CtExpectSpec:
        """``{ protocol tcp; dport N; timeout T; size N; [l3proto ip;] }``
        (parser_bison.y ct_expect_config)."""
        return self._object_block(A.CtExpectSpec, self._ct_expect_item)

    def _ct_expect_item(self, spec: A.CtExpectSpec, t: Any) -> None:
        """One ct_expect_config item: ``protocol P``, ``dport N``, ``timeout T``,
        ``size N``, ``l3proto F``."""
        self.next()
        if t.text == "protocol":
            p = self.expect_word()
            if p.text not in ("tcp", "udp", "sctp", "dccp", "udplite"):
                raise self.unexpected(p)
            spec.protocol = p.text
        elif t.text == "dport":
            spec.dport = self._int_word()
        elif t.text == "timeout":
            w = self.expect_word()
            spec.timeout = parse_time(w.text, w.loc)
        elif t.text == "size":
            spec.size = self._int_word()
        elif t.text == "l3proto":
            spec.l3proto = self.expect_word().text
        else:
            raise self.unexpected(t)

    # ------------------------------------------------------------------ statements
    def parse_queue(self, loc: Loc) -> A.QueueS:
        """parser_bison.y queue_stmt: ``queue [num N[-M]] [bypass] [fanout]`` (compat
        order) or ``queue [flags F[,F]] {num|to} N[-M]``."""
        self.next()
        q = A.QueueS(loc)
        if self.tok.is_word("flags"):
            self.next()
            while True:
                f = self.expect_word()
                if f.text not in ("bypass", "fanout"):
                    raise self.unexpected(f)
                q.flags.append(f.text)
                if not self.tok.is_op(","):
                    break
                self.next()
            if not (self.tok.is_word("num") or self.tok.is_word("to")):
                raise self.unexpected()
        while self.tok.kind == WORD and self.tok.text in ("num", "to", "bypass", "fanout"):
            k = self.next()
            if k.text in ("bypass", "fanout"):
                q.flags.append(k.text)
                continue
            if k.text == "to" and self.tok.kind == WORD and \
                    self.tok.text in ("numgen", "jhash", "symhash"):
                first = self.tok
                q.expr = self.parse_special(first)
                last = self.toks[self.i - 1]
                q.num_loc = Loc(first.line, first.col, last.col + len(last.text) - 1)
                continue
            n = self.expect_word()
            last = n
            lo_t, _, hi_t = n.text.partition("-")
            if not hi_t and self.tok.is_op("-"):
                self.next()
                last = self.expect_word()
                hi_t = last.text
            if not lo_t.isdigit() or (hi_t and not hi_t.isdigit()):
                raise NotSupported("queue to a non-constant queue number expression")
            q.lo, q.hi = int(lo_t), int(hi_t) if hi_t else None
            q.num_loc = Loc(k.line, k.col, last.col + len(last.text) - 1)
        return q

    def parse_dup_fwd(self, loc: Loc, kind: str) -> A.Stmt:
        """``dup [ip|ip6] to ADDR [device DEV]``, ``dup to DEV``, ``fwd to DEV``, ``fwd
        ip|ip6 to ADDR device DEV`` (parser_bison.y dup_stmt / fwd_stmt)."""
        self.next()
        fam = None
        if self.tok.kind == WORD and self.tok.text in ("ip", "ip6"):
            fam = self.next().text
        self.expect_word("to")
        target = self.parse_value_expr()
        dev = None
        if self.tok.is_word("device"):
            self.next()
            dev = self.parse_value_expr()
        last = (dev or target).loc
        loc = Loc(loc.line, loc.first, last.last if last.line == loc.line else loc.last)
        if kind == "dup":
            return A.DupS(loc, target, dev, fam)
        if fam is not None and dev is None:
            raise self.unexpected()
        if fam is None:
            return A.FwdS(loc, target, None, None)
        return A.FwdS(loc, dev, target, fam)

    def parse_meter(self, loc: Loc) -> A.MeterS:
        """``meter NAME [size N] { KEY STMT }`` (parser_bison.y meter_stmt_alloc)."""
        self.next()
        m = A.MeterS(loc, self.expect_word().text)
        if self.tok.is_word("size"):
            self.next()
            m.size = self._int_word()
        self.expect_op("{")
        m.key = self.parse_concat()
        m.stmt = self.parse_stmt()
        self.expect_op("}")
        return m

    # ------------------------------------------------------------------ rules
    def parse_rule(self) -> A.RuleAst:
        start = self.tok.loc
        stmts: list[A.Stmt] = []
        comment = None
        while not self.at_end_of_stmt():
            if self.tok.is_word("comment"):
                self.next()
                comment = self.expect_word().text
                continue
            stmts.append(self.parse_stmt())
        return A.RuleAst(stmts, comment, start)

    def parse_stmt(self) -> A.Stmt:
        t = self.tok
        w = t.text if t.kind == WORD else ""
        loc = t.loc
        if w == "__xt" and self.xt_specs is not None:
            # only iptables-nft's sync writes these (netstack.netfilter.xtables)
            self.next()
            return A.XtS(loc, self.xt_specs[self._int_word()])
        if w == "queue":
            return self.parse_queue(loc)
        if w == "reset" and self.peek().is_word("tcp"):
            self.next()
            target = self.parse_exthdr()
            if target is None or target.field is not None:
                raise self.unexpected()
            return A.OptResetS(Loc(loc.line, loc.first, target.loc.last), target)
        if w in ("rt", "exthdr", "hbh", "frag", "dst", "mh") and self.peek().kind == WORD:
            from netstack.netfilter.nft.exthdr import IPV6_HDRS
            nxt = self.peek().text
            if not ((w == "exthdr" and nxt in IPV6_HDRS) or
                    (w in IPV6_HDRS and nxt in IPV6_HDRS[w][1]) or
                    (w == "rt" and nxt in ("nexthop", "mtu", "ip", "ip6", "classid",
                                           "ipsec"))):
                raise NotSupported(f"nft '{w}' expressions/statements")
        if w in ("dup", "fwd"):
            return self.parse_dup_fwd(loc, w)
        if w == "meter":
            return self.parse_meter(loc)
        if w in UNSUPPORTED_WORDS or (w in ("dccp", "ah", "esp", "comp",
                                             "ipcomp", "gre", "igmp", "cgroupv2")
                                      and self.peek().kind == WORD):
            raise NotSupported(f"nft '{w}' expressions/statements")
        if w in VERDICTS:
            return A.VerdictS(loc, self.parse_verdict())
        if w == "counter":
            self.next()
            c = A.CounterS(loc)
            if self.tok.is_word("name"):
                self.next()
                c.name = self.expect_word().text
            elif self.tok.is_word("packets"):
                self.next()
                c.packets = self._int_word()
                self.expect_word("bytes")
                c.bytes = self._int_word()
            return c
        if w == "limit":
            self.next()
            if self.tok.is_word("name"):
                self.next()
                return A.CounterS(loc, name="limit:" + self.expect_word().text)
            self.expect_word("rate")
            return self.parse_limit(loc)
        if w == "quota":
            self.next()
            if self.tok.is_word("name"):
                self.next()
                return A.CounterS(loc, name="quota:" + self.expect_word().text)
            return self.parse_quota(loc)
        if w == "log":
            self.next()
            return self.parse_log(loc)
        if w == "reject":
            self.next()
            r = A.RejectS(loc)
            if self.tok.is_word("with"):
                self.next()
                k = self.expect_word()
                if k.text == "tcp":
                    self.expect_word("reset")
                    r.kind = "tcp reset"
                elif k.text in ("icmp", "icmpv6", "icmpx"):
                    r.kind = k.text
                    if self.tok.is_word("type"):
                        self.next()
                    ct = self.expect_word()
                    r.code = ct.text
                    # where nft points its "Could not parse … code" errors
                    r.code_loc = ct.loc
                else:
                    raise self.unexpected(k)
            return r
        if w == "notrack":
            self.next()
            return A.NotrackS(loc)
        if w == "flow" and self.peek().kind == WORD and self.peek().text in ("add",
                                                                               "offload"):
            self.next()
            self.next()
            self.expect_op("@")
            n = self.expect_word()
            return A.FlowS(Loc(loc.line, loc.first, n.col + len(n.text) - 1), n.text)
        if w in ("snat", "dnat", "masquerade", "redirect"):
            self.next()
            return self.parse_nat(loc, w)
        if w in ("add", "update", "delete") and self.peek().is_op("@"):
            self.next()
            self.next()
            name = self.expect_word().text
            self.expect_op("{")
            key = self.parse_concat()
            timeout = None
            if self.tok.is_word("timeout"):
                self.next()
                tw = self.expect_word()
                timeout = parse_time(tw.text, tw.loc)
            data = None
            if self.tok.is_op(":"):
                self.next()
                data = self.parse_concat()
            end = self.expect_op("}")
            return A.DynsetS(Loc(loc.line, loc.first, end.col), w, name, key, data, timeout)
        lhs = self.parse_lhs()
        if self.tok.is_word("set"):
            self.next()
            val = self.parse_value_expr()
            return A.SetS(loc, lhs, val)
        if self.tok.is_word("vmap"):
            self.next()
            return A.VmapS(loc, lhs, self.parse_set_or_ref())
        op = ""
        if self.tok.kind == OP and self.tok.text in ("==", "!=", "<", ">", "<=", ">="):
            op = self.next().text
        elif self.tok.is_op("!"):
            # parser_bison.y relational_op: NOT is OP_NEG (``ct state ! invalid``: none of
            # these bits), not OP_NEQ
            self.next()
            op = "!"
        elif self.tok.kind == WORD and self.tok.text in ("eq", "ne", "lt", "gt", "le", "ge"):
            op = {"eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=",
                  "ge": ">="}[self.next().text]
        if self.at_end_of_stmt():
            raise self.unexpected()
        rhs = self.parse_rhs()
        return A.MatchS(loc, lhs, op, rhs)

    def parse_nat(self, loc: Loc, kind: str) -> A.NatS:
        """``snat|dnat [ip|ip6] to ADDR[-ADDR][:PORT[-PORT]]``, ``masquerade|redirect
        [to :PORT[-PORT]]``, then flags (random, fully-random, persistent)."""
        nat = A.NatS(loc, kind, {"family": None, "to": None, "to_loc": None, "flags": []})
        args = nat.args
        if kind in ("snat", "dnat") and self.tok.kind == WORD and \
                self.tok.text in ("ip", "ip6") and self.peek().is_word("to"):
            args["family"] = self.next().text
        if self.tok.is_word("to"):
            self.next()
            if self.tok.is_op("["):
                self._nat_bracketed(args)
            else:
                t = self.expect_word()
                args["to"], args["to_loc"] = t.text, t.loc
        elif kind in ("snat", "dnat"):
            raise self.unexpected()
        while self.tok.kind == WORD and self.tok.text in ("random", "fully-random",
                                                          "persistent"):
            args["flags"].append(self.next().text)
            if self.tok.is_op(","):
                self.next()
        return nat

    @staticmethod
    def _expecting(err: NftError, what: str) -> NftError:
        """bison's ", expecting X" suffix where the grammar allows only a few tokens."""
        err.msg += f", expecting {what}"
        err.args = (err.msg,)
        return err

    def _nat_bracketed(self, args: dict) -> None:
        """``[ADDR6][-[ADDR6]][:PORT[-PORT]]`` (parser_bison.y nat_stmt_args with
        ``'[' ip6addr ']'``): an IPv6 address in brackets so a port can follow.  The
        parts land in ``args["addr6"]``/``args["port"]``; ``args["to"]`` is how nft lists
        them (brackets kept only when a port follows)."""
        start = self.expect_op("[")
        addrs = [self.expect_word().text]
        end = self.expect_op("]")
        if self.tok.is_op("-") and self.peek().is_op("["):
            self.next()
            self.next()
            addrs.append(self.expect_word().text)
            end = self.expect_op("]")
        last = end.col
        port = None
        args["addr_loc"] = Loc(start.line, start.col, end.col)
        if self.tok.kind == WORD and self.tok.text.startswith(":") and \
                self.tok.col == end.col + 1:
            pt = self.next()
            port = pt.text[1:]
            last = pt.col + len(pt.text) - 1
            args["port_loc"] = Loc(pt.line, pt.col + 1, last)
        args["addr6"], args["port"] = "-".join(addrs), port
        args["to"] = ("-".join(f"[{x}]" for x in addrs) + f":{port}") if port is not None \
            else "-".join(addrs)
        args["to_loc"] = Loc(start.line, start.col, last)

    def parse_verdict(self) -> A.VerdictE:
        t = self.next()
        if t.text in ("jump", "goto"):
            c = self.expect_word()
            return A.VerdictE(Loc(t.line, t.col, c.col + len(c.text) - 1), t.text, c.text,
                              c.loc)
        return A.VerdictE(t.loc, t.text)

    def parse_limit(self, loc: Loc) -> A.LimitS:
        over = False
        if self.tok.is_word("over"):
            self.next()
            over = True
        elif self.tok.is_word("until"):
            self.next()
        w = self.expect_word()
        is_bytes = False
        if "/" in w.text:
            num, unit = w.text.split("/", 1)
        else:
            num = w.text
            u = self.expect_word()
            if "/" not in u.text:
                raise self.unexpected(u)
            bu, unit = u.text.split("/", 1)
            if bu not in BYTE_UNITS or not num.isdigit():
                raise NftError("Wrong rate format", u.loc)
            is_bytes = True
            num = str(int(num) * BYTE_UNITS[bu])
            rate_text = f"{w.text} {bu}"
        if unit not in UNITS or not num.isdigit() or int(num) == 0:
            raise NftError("Wrong rate format", w.loc)
        rate = int(num)
        burst, burst_text = (0 if is_bytes else 5), ""
        if self.tok.is_word("burst"):
            self.next()
            b = self.expect_word()
            burst = self._int_of(b)
            if self.tok.kind == WORD and self.tok.text in ("packets",) + tuple(BYTE_UNITS):
                bu = self.next().text
                if bu != "packets":
                    burst *= BYTE_UNITS[bu]
                    burst_text = f"{b.text} {bu}"
        lim = A.LimitS(loc, rate, unit, burst, is_bytes, over)
        lim.rate_text = rate_text if is_bytes else str(rate)
        lim.burst_text = burst_text
        return lim

    def parse_quota(self, loc: Loc) -> A.QuotaS:
        over = False
        if self.tok.is_word("over"):
            self.next()
            over = True
        elif self.tok.is_word("until"):
            self.next()
        n = self.expect_word()
        u = self.expect_word()
        if u.text not in BYTE_UNITS or not n.text.isdigit():
            raise NftError("Wrong quota format", u.loc)
        q = A.QuotaS(loc, self._int_of(n) * BYTE_UNITS[u.text], over, 0, f"{n.text} {u.text}")
        if self.tok.is_word("used"):
            self.next()
            un = self.expect_word()
            uu = self.expect_word()
            q.used = self._int_of(un) * BYTE_UNITS.get(uu.text, 1)
        return q

    def parse_log(self, loc: Loc) -> A.LogS:
        lg = A.LogS(loc)
        while self.tok.kind == WORD and self.tok.text in ("prefix", "level", "group",
                                                           "snaplen", "queue-threshold",
                                                           "flags"):
            k = self.next().text
            if k == "flags":
                lg.flags.extend(self._log_flags())
                continue
            v = self.expect_word()
            if k == "prefix":
                lg.prefix = v.text
            elif k == "level":
                lg.level = v.text
            elif k == "group":
                lg.group = self._int_of(v)
            elif k == "snaplen":
                lg.snaplen = self._int_of(v)
            else:
                lg.qthreshold = self._int_of(v)
        return lg

    def _log_flags(self) -> list[str]:
        """parser_bison.y ``log_flags``: ``tcp sequence[,options]``, ``ip options``,
        ``skuid``, ``ether``, ``all``."""
        w = self.expect_word()
        if w.text == "tcp":
            out = []
            while True:
                f = self.tok
                if not (f.kind == WORD and f.text in ("sequence", "options")):
                    raise self._expecting(self.unexpected(f), "seq or options")
                self.next()
                out.append("tcp " + f.text)
                if not self.tok.is_op(","):
                    return out
                self.next()
        if w.text == "ip":
            if not self.tok.is_word("options"):
                raise self._expecting(self.unexpected(), "options")
            self.next()
            return ["ip options"]
        if w.text in ("skuid", "ether", "all"):
            return [w.text]
        raise self.unexpected(w)

    # ------------------------------------------------------------------ expressions
    def _binop(self) -> str | None:
        """The bitwise operator at the cursor, if any: scanner.l reads ``and``/``or``/
        ``xor`` as the same tokens as ``&``/``|``/``^``."""
        t = self.tok
        if t.kind == OP and t.text in ("&", "|", "^"):
            return t.text
        if t.kind == WORD and t.text in _BINOP_WORDS:
            return _BINOP_WORDS[t.text]
        return None

    def parse_lhs(self) -> A.Expr:
        e = self.parse_concat()
        while (op := self._binop()) is not None:
            self.next()
            r = self.parse_primary_value()
            e = A.BinopE(e.loc, op, e, r)
        return e

    def parse_concat(self) -> A.Expr:
        first = self.parse_primary()
        items = [first]
        while self.tok.is_op("."):
            self.next()
            items.append(self.parse_primary())
        if len(items) == 1:
            return first
        return A.ConcatE(first.loc, items)

    def parse_exthdr(self) -> A.Expr | None:
        """``tcp option NAME [FIELD]``, ``exthdr NAME``, ``hbh|rt|frag|dst|mh FIELD``
        (parser_bison.y tcp_hdr_option / exthdr_exists_expr / exthdr_expr); None when
        the cursor is not at one."""
        from netstack.netfilter.nft.exthdr import IPV4_OPTS, IPV6_HDRS, TCPOPT
        t = self.tok
        if t.is_word("ip") and self.peek().is_word("option"):
            self.next()
            self.next()
            n = self.expect_word()
            if n.text not in IPV4_OPTS:
                raise self.unexpected(n)
            last, field = n, None
            if self.tok.kind == WORD and self.tok.text in IPV4_OPTS[n.text][1]:
                last = self.next()
                field = last.text
            return A.ExthdrE(Loc(t.line, t.col, last.col + len(last.text) - 1), "ipv4",
                             n.text, field)
        if t.is_word("tcp") and self.peek().is_word("option"):
            self.next()
            self.next()
            n = self.expect_word()
            last = n
            if not (n.text in TCPOPT or n.text.isdigit()):
                raise self.unexpected(n)
            field = None
            if n.text in TCPOPT and self.tok.kind == WORD and \
                    self.tok.text in TCPOPT[n.text][1]:
                last = self.next()
                field = last.text
            return A.ExthdrE(Loc(t.line, t.col, last.col + len(last.text) - 1), "tcpopt",
                             n.text, field)
        if t.is_word("exthdr") and self.peek().kind == WORD and self.peek().text in IPV6_HDRS:
            self.next()
            n = self.next()
            return A.ExthdrE(Loc(t.line, t.col, n.col + len(n.text) - 1), "ipv6", n.text)
        if t.kind == WORD and t.text in IPV6_HDRS and self.peek().kind == WORD and \
                self.peek().text in IPV6_HDRS[t.text][1]:
            self.next()
            f = self.next()
            return A.ExthdrE(Loc(t.line, t.col, f.col + len(f.text) - 1), "ipv6", t.text,
                             f.text)
        return None

    def parse_primary(self) -> A.Expr:
        t = self.tok
        ex = self.parse_exthdr()
        if ex is not None:
            return ex
        if t.is_word("rt") and self.peek().kind == WORD and \
                self.peek().text in ("nexthop", "mtu", "ip", "ip6", "classid", "ipsec"):
            # parser_bison.y rt_expr
            self.next()
            fam = None
            if self.tok.text in ("ip", "ip6"):
                fam = self.next().text
            k = self.expect_word()
            if k.text not in ("nexthop", "mtu", "classid", "ipsec") or \
                    (fam and k.text != "nexthop"):
                raise self.unexpected(k)
            if k.text in ("classid", "ipsec"):
                raise NotSupported(f"rt {k.text} (routing realms / IPsec are not modelled)")
            return A.RtE(Loc(t.line, t.col, k.col + len(k.text) - 1), k.text, fam)
        if t.is_word("arp") and self.peek().kind == WORD and \
                self.peek().text in ("saddr", "daddr") and self.peek(2).kind == WORD and \
                self.peek(2).text in ("ip", "ether"):
            # parser_bison.y arp_hdr_expr: ``arp saddr ip`` / ``arp daddr ether``
            self.next()
            f = self.next()
            k = self.next()
            return A.PayloadE(Loc(t.line, t.col, k.col + len(k.text) - 1), "arp",
                              f"{f.text} {k.text}")
        if t.kind == WORD and t.text in PROTOS and self.peek().kind == WORD and \
                self.peek().text in _fields(t.text):
            self.next()
            f = self.next()
            # ``vlan cfi`` is the old name of ``vlan dei`` (nft lists it as dei)
            field = "dei" if (t.text, f.text) == ("vlan", "cfi") else f.text
            return A.PayloadE(Loc(t.line, t.col, f.col + len(f.text) - 1), t.text, field)
        if t.is_word("meta"):
            self.next()
            k = self.expect_word()
            return A.MetaE(Loc(t.line, t.col, k.col + len(k.text) - 1), k.text)
        if t.kind == WORD and t.text in BARE_META:
            self.next()
            return A.MetaE(t.loc, t.text, explicit=False)
        if t.kind == WORD and t.text in ("numgen", "jhash", "symhash", "fib"):
            return self.parse_special(t)
        if t.is_word("ct"):
            self.next()
            d = None
            if self.tok.kind == WORD and self.tok.text in ("original", "reply"):
                d = self.next().text
            k = self.expect_word()
            return A.CtE(Loc(t.line, t.col, k.col + len(k.text) - 1), k.text, d)
        return self.parse_primary_value()

    def _int_word(self) -> int:
        return self._int_of(self.expect_word())

    def _int_of(self, w: Token) -> int:
        """A number where the grammar wants one; anything else is bison's syntax error."""
        try:
            return int(w.text, 0)
        except ValueError:
            raise self.unexpected(w) from None

    def parse_special(self, t: Token) -> A.Expr:
        """``numgen``, ``jhash``/``symhash`` and ``fib`` expressions (parser_bison.y)."""
        self.next()
        if t.text == "numgen":
            mode = self.expect_word()
            if mode.text not in ("inc", "random"):
                raise self.unexpected(mode)
            self.expect_word("mod")
            e = A.NumgenE(t.loc, mode.text, self._int_word())
            if self.tok.is_word("offset"):
                self.next()
                e.offset = self._int_word()
            return e
        if t.text in ("jhash", "symhash"):
            key = self.parse_concat() if t.text == "jhash" else None
            self.expect_word("mod")
            h = A.HashE(t.loc, t.text, key, self._int_word())
            while self.tok.kind == WORD and self.tok.text in ("seed", "offset"):
                k = self.next().text
                setattr(h, k, self._int_word())
            return h
        flags = [self.expect_word().text]
        while self.tok.is_op("."):
            self.next()
            flags.append(self.expect_word().text)
        res = self.expect_word()
        if flags[0] not in ("saddr", "daddr") or res.text not in ("oif", "oifname", "type") \
                or any(f not in ("iif", "oif", "mark") for f in flags[1:]):
            raise self.unexpected(res)
        return A.FibE(Loc(t.line, t.col, res.col + len(res.text) - 1), flags, res.text)

    def parse_primary_value(self) -> A.Expr:
        t = self.tok
        if t.is_op("("):
            self.next()
            e = self.parse_value_expr()
            self.expect_op(")")
            return e
        if t.is_op("$"):
            self.next()
            name = self.expect_word()
            if name.text not in self.defines:
                raise NftError(f"unknown identifier '{name.text}'",
                               Loc(t.line, t.col, name.col + len(name.text) - 1))
            sub = Parser.__new__(Parser)
            sub.toks = self.defines[name.text] + [Token(EOF, "", t.line, t.col)]
            sub.i, sub.defines = 0, self.defines
            return sub.parse_rhs()
        if t.is_op("@"):
            self.next()
            n = self.expect_word()
            return A.SetRefE(Loc(t.line, t.col, n.col + len(n.text) - 1), n.text)
        if t.is_op("{"):
            return self.parse_anon_set()
        if t.kind == WORD and t.text in VERDICTS:
            return self.parse_verdict()
        if t.kind in (WORD, STRING):
            self.next()
            return A.Sym(t.loc if t.kind == WORD else Loc(t.line, t.col, t.col + len(t.text) + 1),
                         t.text, t.kind == STRING)
        raise self.unexpected()

    def parse_value_expr(self) -> A.Expr:
        """A value with optional ``|``/``&``/``.``/``map`` (statement arguments, parens)."""
        e = self._binop_expr(1)
        if self.tok.is_word("map"):
            self.next()
            return A.MapE(e.loc, e, self.parse_set_or_ref())
        return e

    def _binop_expr(self, level: int) -> A.Expr:
        """parser_bison.y precedence: ``&`` (and_expr) binds tighter than ``^``
        (exclusive_or_expr), which binds tighter than ``|`` (inclusive_or_expr); each is
        left-associative.  ``mark or 0x1 and 0x3`` is ``mark | (0x1 & 0x3)``."""
        e = self.parse_concat() if level > 3 else self._binop_expr(level + 1)
        while (op := self._binop()) is not None and _BINOP_LEVEL[op] == level:
            self.next()
            r = self.parse_concat() if level == 3 else self._binop_expr(level + 1)
            e = A.BinopE(e.loc, op, e, r)
        return e

    def parse_rhs(self) -> A.Expr:
        first = self._rhs_list()
        if self.tok.is_op("/"):
            # ``tcp flags syn / syn,ack``: value / mask (nft's flag comparison syntax)
            self.next()
            return A.BinopE(first.loc, "/", first, self._rhs_list())
        return first

    def _rhs_list(self) -> A.Expr:
        first = self.parse_value_expr()
        if self.tok.is_op(","):
            items = [first]
            while self.tok.is_op(","):
                self.next()
                items.append(self.parse_value_expr())
            return A.ListE(first.loc, items)
        return first

    def parse_set_or_ref(self) -> A.Expr:
        if self.tok.is_op("@"):
            return self.parse_primary_value()
        if self.tok.is_op("{"):
            return self.parse_anon_set()
        raise self.unexpected()

    def parse_anon_set(self) -> A.AnonSetE:
        start = self.expect_op("{")
        elems: list[A.SetElem] = []
        while True:
            while self.tok.kind == NL:
                self.next()
            if self.tok.is_op("}"):
                end = self.next()
                break
            key = self.parse_concat()
            el = A.SetElem(key)
            while self.tok.kind == WORD and self.tok.text in ("timeout", "expires",
                                                               "comment"):
                k = self.next().text
                v = self.expect_word()
                if k == "comment":
                    el.comment = v.text
                else:
                    setattr(el, k, parse_time(v.text, v.loc))
            if self.tok.is_op(":"):
                self.next()
                el.data = self.parse_concat()
            elems.append(el)
            while self.tok.kind == NL:
                self.next()
            if self.tok.is_op(","):
                self.next()
                continue
            if not self.tok.is_op("}"):
                e = self.unexpected()
                raise NftError(e.msg + ", expecting comma or '}'", e.loc)
        return A.AnonSetE(Loc(start.line, start.col, end.col), elems)


def parse(text: str, name: str | None = None, cwd: str | None = None,
          xt_specs: list | None = None) -> list[Cmd]:
    """Parse a whole input (command line or file ``name``) into commands; ``cwd``
    resolves relative ``include`` names; ``xt_specs`` are the compat expressions an
    iptables-nft batch refers to as ``__xt N``."""
    p = Parser(text, name, cwd)
    p.xt_specs = xt_specs
    return p.parse_commands()
