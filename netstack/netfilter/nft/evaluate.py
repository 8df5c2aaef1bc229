"""Evaluation (src/evaluate.c) and linearisation (src/netlink_linearize.c) of rules.

One pass turns a parsed rule into kernel expressions and, alongside, into the canonical
text ``nft list`` prints for it.  What nftables 1.0.6 does and this reproduces:

* symbols resolve against the left-hand side's datatype (``22`` after ``tcp dport`` is a
  big-endian inet_service);
* protocol dependencies are inserted and tracked in a per-rule protocol context
  (``ip saddr`` in an inet chain → ``meta nfproto ipv4`` first; ``tcp dport`` →
  ``meta l4proto tcp`` unless ``ip protocol tcp`` already said so) and conflicting ones are
  refused (``conflicting protocols specified: ip vs. ip6``);
* sub-byte header fields load the covering bytes, mask with ``bitwise`` and compare a
  shifted value; byte-aligned prefixes shorten the load instead of masking;
* flag types (``ct state``, ``tcp flags``) without an operator mean "any of these bits";
* host-order values compared with ``<``/``>`` or ranges go through ``byteorder``;
* ``eq`` ranges become ``cmp gte`` + ``cmp lte`` and ``!=`` ranges one ``range neq``;
* consecutive payload equality matches on adjacent fields that fit one 32-bit register
  are merged into one load and compare (``payload_try_merge``);
* anonymous sets and maps are created per rule (flags constant|anonymous, plus interval
  with the segment-tree encoding: each interval ``[a, b]`` becomes ``a`` and an
  interval-end element ``b + 1``)."""
from __future__ import annotations

import errno
import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

from netstack.errors import NotSupported
from netstack.netfilter.nft import ast as A
from netstack.netfilter.nft import types as T
from netstack.netfilter.nft import vm as V
from netstack.netfilter.nft.errors import Loc, NftError, NftKernelError
from netstack.netfilter.nft.protos import (CT, ETHERTYPE_OF, L4_NAME, L4_OF, META, NFPROTO_OF,
                                           NH, NH_OF, PAYLOAD, TH)
from netstack.netfilter.nft.ruleset import Element, NftSet, Table

UNQUALIFIED_META = ("iif", "oif", "iifname", "oifname", "iifgroup", "oifgroup")
OPS = {"": "eq", "==": "eq", "!=": "neq", "<": "lt", ">": "gt", "<=": "lte", ">=": "gte"}
OP_TEXT = {"eq": "", "neq": "!= ", "lt": "< ", "gt": "> ", "lte": "<= ", "gte": ">= "}
UNIT_SECS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}


@dataclass
class Loaded:
    """The result of loading a left-hand side into registers."""

    exprs: list[V.VmExpr]
    dtype: T.DataType
    nbytes: int                       # bytes the value occupies in the register
    text: str
    payload: tuple[int, int, int] | None = None     # (base, offset bits, length bits)
    field_types: list[T.DataType] = field(default_factory=list)


@dataclass
class StmtCode:
    exprs: list[V.VmExpr]
    text: list[Any]                   # str pieces and live VmExprs (counters …)
    merge: tuple | None = None        # base, byte offset, len, value, op
    dep: bool = False
    proto_key: Any = None             # (lhs, value) of an explicit protocol match
    json: list[Any] | None = None     # libnftables JSON statements (None: not expressible)


#: nft log flags (parser_bison.y log_flags) → NF_LOG_* bits.
LOG_FLAG_BITS = {"tcp sequence": 0x01, "tcp options": 0x02, "ip options": 0x04,
                 "skuid": 0x08, "ether": 0x20, "all": 0x2F}


def log_flags_text(flags: int) -> str:
    """statement.c log_stmt_print: ``flags all`` for the whole NF_LOG_MASK, else each
    group in a fixed order."""
    if flags & 0x2F == 0x2F:
        return " flags all"
    out = ""
    if flags & 0x03:
        out += " flags tcp " + ",".join(n for b, n in ((1, "sequence"), (2, "options"))
                                         if flags & b)
    if flags & 0x04:
        out += " flags ip options"
    if flags & 0x08:
        out += " flags skuid"
    if flags & 0x20:
        out += " flags ether"
    return out


def _end(loc: Loc) -> int:
    return loc.last


def _stmt_loc(st: A.Stmt) -> Loc:
    if isinstance(st, A.VerdictS):
        return st.verdict.loc
    return st.loc


def fmt_ms(ms: int) -> str:
    """nft's time printing (``1h``, ``10s``, ``1d2h``, ``500ms``)."""
    out = ""
    for unit, n in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000)):
        if ms >= n:
            out += f"{ms // n}{unit}"
            ms %= n
    if ms or not out:
        out += f"{ms}ms"
    return out


class RuleCompiler:
    """Compile one rule of ``table``; ``anon`` collects the anonymous sets it creates."""

    def __init__(self, family: str, table: Table, net: Any = None,
                 chain_lookup: Callable[[str, Loc], Any] | None = None) -> None:
        self.family = family
        self.table = table
        self.net = net
        self.chain_lookup = chain_lookup
        self.nh: str | None = {"ip": "ip", "ip6": "ip6"}.get(family)
        self.th: int | None = None
        self.anon: list[NftSet] = []
        self.codes: list[StmtCode] = []
        self.kernel_error: NftKernelError | None = None
        self._lhs_loc: Loc | None = None

    # ------------------------------------------------------------------ entry
    def compile(self, rule: A.RuleAst) -> tuple[list[V.VmExpr], list[Any]]:
        terminal: A.Stmt | None = None
        for st in rule.stmts:
            if terminal is not None:
                # src/evaluate.c rule_evaluate: nothing may follow a verdict
                raise NftError("Statement after terminal statement has no effect",
                               _stmt_loc(st), _stmt_loc(terminal))
            self.stmt(st)
            if isinstance(st, (A.VerdictS, A.RejectS, A.QueueS, A.FwdS)) or \
                    (isinstance(st, A.XtS) and st.spec.kind == "target") or \
                    (isinstance(st, A.VmapS)):
                terminal = st
        self.merge_payloads()
        exprs: list[V.VmExpr] = []
        text: list[Any] = []
        self.json: list[Any] = []
        for c in self.codes:
            exprs.extend(c.exprs)
            if not c.dep:
                if text:
                    text.append(" ")
                text.extend(c.text)
                self.json.extend(c.json if c.json is not None else [None])
        if rule.comment is not None:
            text.append(f' comment "{rule.comment}"')
        return exprs, text

    def emit(self, exprs: list[V.VmExpr], text: list[Any], **kw: Any) -> StmtCode:
        c = StmtCode(exprs, text, **kw)
        self.codes.append(c)
        return c

    # ------------------------------------------------------------------ dependencies
    def _vlan_type_satisfies(self) -> None:
        """An explicit ``vlan type X`` that a later X header needed anyway is not listed
        (payload_dependency_kill); when it was the rule's only VLAN field, the ``ether
        type 8021q`` it depended on shows instead (measured with nft 1.0.6)."""
        vt = getattr(self, "_vlan_type", None)
        if vt is None:
            return
        vt.dep = True
        self._vlan_type = None
        others = [c for c in self.codes if not c.dep and getattr(c, "vlan_field", False)]
        if not others and self._vlan is not None and self._vlan.dep:
            self._vlan.dep = False
            self._vlan.text = ["ether type 8021q"]
            self._vlan.json = [{"match": {"op": "==", "left": {"payload": {
                "protocol": "ether", "field": "type"}}, "right": "8021q"}}]

    def need_nh(self, proto: str, loc: Loc) -> None:
        if proto == "arp":
            if self.nh == "arp":
                self._vlan_type_satisfies()
            return self._need_arp(loc)
        if self.nh == proto:
            self._vlan_type_satisfies()
            if self.family == "inet":
                self.kill_dependency("nh", NFPROTO_OF[proto])
            return
        if self.nh is not None:
            raise NftError(f"conflicting protocols specified: {self.nh} vs. {proto}", loc)
        if self.family == "inet":
            self.dep_cmp(V.MetaLoad("nfproto", 0), bytes([NFPROTO_OF[proto]]))
        elif self.family in ("netdev", "bridge"):
            self._nh_dep(proto)
        else:
            raise NftError(f"conflicting protocols specified: {self.family} vs. {proto}", loc)
        self.nh = proto

    def need_vlan(self, loc: Loc) -> None:
        """The 802.1Q header (src/proto.c proto_vlan): the link layer must be Ethernet
        (``meta iiftype ether`` outside bridge) and its type 8021q — checked once per
        rule.  A later network header then depends on ``vlan type`` (offset 16) instead
        of ``meta protocol``."""
        if getattr(self, "_vlan", None) is not None:
            return
        explicit = getattr(self, "_ether_vlan", None)
        if explicit is not None:
            # an explicit ``ether type vlan`` already says so: nft lists only the vlan
            # match (payload_dependency_kill)
            explicit.dep = True
            self._vlan = explicit
            return
        self.need_ll(loc)
        self.dep_cmp(V.PayloadLoad(V.BASE_LL, 12, 2, 0), (0x8100).to_bytes(2, "big"))
        self._vlan = self.codes[-1]

    def _nh_dep(self, proto: str) -> None:
        """The network-protocol dependency of the netdev/bridge families: ``meta
        protocol``, or ``vlan type`` once a VLAN header is in the context."""
        value = (0x0806 if proto == "arp" else ETHERTYPE_OF[proto]).to_bytes(2, "big")
        if getattr(self, "_vlan", None) is not None:
            self.dep_cmp(V.PayloadLoad(V.BASE_LL, 16, 2, 0), value)
        else:
            self.dep_cmp(V.MetaLoad("protocol", 0), value)

    def _need_arp(self, loc: Loc) -> None:
        """The ARP header (src/proto.c proto_arp): nothing to check in the arp family;
        netdev checks ``meta protocol arp``, bridge the Ethernet type in the link
        header (measured with nft 1.0.6); IP families cannot carry it."""
        if self.nh == "arp":
            return
        if self.family == "arp":
            self.nh = "arp"
            return
        if self.nh is not None or self.family in ("ip", "ip6", "inet"):
            raise NftError(f"conflicting protocols specified: {self.nh or self.family} vs. "
                           "arp", loc)
        if self.family == "netdev" or getattr(self, "_vlan", None) is not None:
            self._nh_dep("arp")
        else:
            self.dep_cmp(V.PayloadLoad(V.BASE_LL, 12, 2, 0), (0x0806).to_bytes(2, "big"))
        self.nh = "arp"

    @staticmethod
    def is_proto_key(lhs: A.Expr) -> bool:
        return (isinstance(lhs, A.MetaE) and lhs.key in ("l4proto", "nfproto")) or \
            (isinstance(lhs, A.PayloadE) and (lhs.proto, lhs.field) in
             (("ip", "protocol"), ("ip6", "nexthdr")))

    def kill_dependency(self, kind: str, value: int) -> None:
        """src/payload.c ``payload_dependency_kill``: when a header match follows an
        explicit protocol match that it would have needed anyway, ``nft list`` does not
        show the protocol match (its bytecode stays)."""
        for c in reversed(self.codes):
            pk = getattr(c, "proto_key", None)
            if pk is None:
                continue
            lhs, val = pk
            is_l4 = not (isinstance(lhs, A.MetaE) and lhs.key == "nfproto")
            if (kind == "l4") == is_l4 and val[0] == value:
                c.dep = True
                c.proto_key = None
            return

    def need_l4(self, proto: str, loc: Loc, kill: bool = True) -> None:
        num = L4_OF[proto]
        if self.th == num:
            if kill:
                self.kill_dependency("l4", num)
            return
        if self.th is not None:
            raise NftError(f"conflicting protocols specified: {L4_NAME.get(self.th, self.th)}"
                           f" vs. {proto}", loc)
        self.dep_cmp(V.MetaLoad("l4proto", 0), bytes([num]))
        self.th = num

    def dep_cmp(self, load: V.VmExpr, value: bytes) -> None:
        self.emit([load, V.Cmp("eq", 0, value)], [], dep=True)

    def need_ll(self, loc: Loc) -> None:
        if self.family in ("ip", "ip6", "inet", "netdev") and not getattr(self, "_ll", False):
            self.dep_cmp(V.MetaLoad("iiftype", 0), (1).to_bytes(2, "little"))
            self._ll = True

    # ------------------------------------------------------------------ lhs
    def load(self, e: A.Expr, unit: int = 0) -> Loaded:
        if isinstance(e, A.RtE):
            from netstack.netfilter.nft.rt import RtLoad
            if e.key == "mtu":
                return Loaded([RtLoad("tcpmss", unit)], T.H16, 2, "rt mtu")
            fam = e.family or {"ip": "ip", "ip6": "ip6"}.get(self.family)
            if fam is None:
                raise NotSupported("rt nexthop without ip/ip6 outside ip and ip6 tables")
            key, dt = ("nexthop4", T.IPV4) if fam == "ip" else ("nexthop6", T.IPV6)
            text = f"rt {fam} nexthop"
            return Loaded([RtLoad(key, unit)], dt, dt.nbytes, text)
        if isinstance(e, A.ExthdrE):
            from netstack.netfilter.nft.eval_stmts import exthdr_load
            return exthdr_load(self, e, unit)
        if isinstance(e, A.PayloadE):
            tmpl = PAYLOAD.get(e.proto, {}).get(e.field)
            if tmpl is None:
                raise NftError("syntax error, unexpected string", e.loc)
            base, off, ln, dt = tmpl
            if e.proto == "ether":
                self.need_ll(e.loc)
            if e.proto == "vlan":
                self.need_vlan(e.loc)
            if e.proto in NH_OF:
                self.need_nh(NH_OF[e.proto], e.loc)
            if e.proto in L4_OF:
                self.need_l4(e.proto, e.loc)
            boff, nbytes = off // 8, (off % 8 + ln + 7) // 8
            return Loaded([V.PayloadLoad(base, boff, nbytes, unit)], T.with_size(dt, ln)
                          if dt.base == "integer" else dt, nbytes, f"{e.proto} {e.field}",
                          (base, off, ln))
        if isinstance(e, A.MetaE):
            if e.key not in META:
                raise NftError("syntax error, unexpected string", e.loc)
            key, dt = META[e.key]
            if e.key == "nfproto" and self.family != "inet":
                raise NftError("meta nfproto is only useful in the inet family", e.loc)
            text = e.key if e.key in UNQUALIFIED_META else f"meta {e.key}"
            return Loaded([V.MetaLoad(key, unit)], dt, dt.nbytes, text)
        if isinstance(e, A.CtE):
            if e.key not in CT:
                raise NftError("syntax error, unexpected string", e.loc)
            key, dt = CT[e.key]
            if key in ("src", "dst") and (self.nh == "ip6" or self.family == "ip6"):
                dt = T.IPV6
            d = e.direction
            text = f"ct {d + ' ' if d else ''}{e.key}"
            if key in ("src", "dst") and d:
                text = f"ct {d} {'ip6' if dt is T.IPV6 else 'ip'} {e.key}"
            self.need_ct(e.loc)
            return Loaded([V.CtLoad(key, unit, d)], dt, dt.nbytes, text)
        if isinstance(e, A.NumgenE):
            return Loaded([V.Numgen(unit, e.mode, e.modulus, e.offset)], T.H32, 4,
                          f"numgen {e.mode} mod {e.modulus}" +
                          (f" offset {e.offset}" if e.offset else ""))
        if isinstance(e, A.HashE):
            # the destination took a full register; the key goes in the next one
            # (netlink_gen_hash: get_register for the key after the dreg)
            if e.kind == "symhash":
                h = V.Hash(unit, None, 0, e.modulus, 0, e.offset, "symhash")
                return Loaded([h], T.H32, 4, f"symhash mod {e.modulus}" +
                              (f" offset {e.offset}" if e.offset else ""))
            ku = unit + 4
            kl = self.load(e.key, ku)
            h = V.Hash(unit, ku, kl.nbytes, e.modulus, e.seed or 0, e.offset)
            txt = f"jhash {kl.text} mod {e.modulus}"
            if e.seed:
                txt += f" seed 0x{e.seed:x}"
            if e.offset:
                txt += f" offset {e.offset}"
            return Loaded(kl.exprs + [h], T.H32, 4, txt)
        if isinstance(e, A.FibE):
            if self.family not in ("ip", "inet", "ip6"):
                raise NftError("fib expression is only valid in ip, ip6 and inet families",
                               e.loc)
            dt = {"oif": T.IFINDEX, "oifname": T.IFNAME, "type": T.FIB_ADDR}[e.result]
            order = [f for f in ("saddr", "daddr", "mark", "iif", "oif") if f in e.flags]
            return Loaded([V.Fib(unit, order, e.result)], dt, dt.nbytes,
                          f"fib {' . '.join(e.flags)} {e.result}")
        if isinstance(e, A.ConcatE):
            exprs: list[V.VmExpr] = []
            texts, types = [], []
            u = unit
            for item in e.items:
                ld = self.load(item, u)
                exprs.extend(ld.exprs)
                texts.append(ld.text)
                types.append(ld.dtype)
                u += (ld.nbytes + 3) // 4
            total = sum((t.nbytes + 3) // 4 * 4 for t in types)
            return Loaded(exprs, T.DataType("concat", total * 8, T.BIG), total,
                          " . ".join(texts), None, types)
        raise NftError("syntax error, unexpected " + ("number" if isinstance(e, A.Sym) and
                                                       e.text.isdigit() else "string"), e.loc)

    def need_ct(self, loc: Loc) -> None:
        if self.net is not None and V._conntrack() is None:
            raise NotSupported("ct expressions need netstack.netfilter."
                               "conntrack, which is not available")

    # ------------------------------------------------------------------ constants
    def const(self, dt: T.DataType, e: A.Expr) -> tuple[str, Any, str]:
        """Resolve a right-hand constant: ("value", bytes, text), ("prefix", (bytes, plen),
        text), ("range", (lo, hi), text) or ("wild", bytes, text)."""
        if isinstance(e, A.ListE):
            if not dt.flags:
                raise NftError("syntax error, unexpected comma", e.loc)
            v = 0
            names = []
            for it in e.items:
                b = self.const(dt, it)[1]
                v |= int.from_bytes(b, dt.byteorder)
                names.append(T.format_value(dt, b))
            return "value", v.to_bytes(dt.nbytes, dt.byteorder), ",".join(names)
        if isinstance(e, A.BinopE) and e.op == "|":
            a, b = self.const(dt, e.left)[1], self.const(dt, e.right)[1]
            v = int.from_bytes(a, dt.byteorder) | int.from_bytes(b, dt.byteorder)
            data = v.to_bytes(dt.nbytes, dt.byteorder)
            return "value", data, T.format_value(dt, data)
        if not isinstance(e, A.Sym):
            raise NftError("syntax error, unexpected string", e.loc)
        text = e.text
        if dt.base == "string":
            if text.endswith("*") and not text.endswith("\\*"):
                return "wild", text[:-1].encode(), f'"{text}"'
            data = T.parse_value(dt, text, e.loc, e.quoted)
            return "value", data, f'"{text}"'
        if dt is T.IFINDEX:
            idx = self.ifindex(text, e.loc)
            return "value", idx.to_bytes(4, "little"), f'"{text}"'
        if "/" in text and dt.name == "mark" and text.split("/", 1)[1].isdigit():
            vtxt, plen_s = text.split("/", 1)
            plen = int(plen_s)
            if plen > dt.size:
                raise NftError(f"Prefix length {plen} is invalid for type of {dt.size} "
                               "bits width", e.loc)
            data = T.parse_value(dt, vtxt, e.loc)
            return "prefix", (data, plen), f"0x{int.from_bytes(data, 'little'):08x}/{plen}"
        if "/" in text and dt.base in ("ipv4", "ipv6"):
            addr, plen_s = text.split("/", 1)
            if plen_s.isdigit() and int(plen_s) > dt.size:
                raise NftError(f"Prefix length {plen_s} is invalid for type of {dt.size} "
                               "bits width", e.loc)
            try:
                net = ipaddress.ip_network(text, strict=False)
                plen = int(plen_s)
            except ValueError:
                raise NftError("Could not resolve hostname: Name or service not known",
                               e.loc) from None
            data = net.network_address.packed
            if plen == dt.size:
                return "value", data, str(net.network_address)
            return "prefix", (data, plen), f"{net.network_address}/{plen}"
        try:
            data = T.parse_value(dt, text, e.loc)
            return "value", data, T.format_value(dt, data)
        except NftError:
            if "-" not in text:
                raise
        lo_t, hi_t = text.split("-", 1) if dt.base != "ipv6" else text.split("-", 1)
        lo = T.parse_value(dt, lo_t, e.loc)
        hi = T.parse_value(dt, hi_t, e.loc)
        if int.from_bytes(lo, dt.byteorder) > int.from_bytes(hi, dt.byteorder):
            raise NftError("Range has zero or negative size", e.loc)
        return "range", (lo, hi), f"{T.format_value(dt, lo)}-{T.format_value(dt, hi)}"

    def ifindex(self, name: str, loc: Loc) -> int:
        if name.isdigit():
            return int(name)
        if self.net is not None:
            dev = self.net.devices.get(name)
            if dev is not None:
                return dev.ifindex
        if name == "lo":
            return 1
        raise NftError("Interface does not exist", loc)

    # ------------------------------------------------------------------ statements
    def stmt(self, st: A.Stmt) -> None:
        n = len(self.codes)
        self._stmt(st)
        new = [c for c in self.codes[n:] if not c.dep]
        if new and new[-1].json is None and not isinstance(st, A.MatchS):
            new[-1].json = [self.stmt_json(st, new[-1])]

    def _stmt(self, st: A.Stmt) -> None:
        if isinstance(st, A.MatchS):
            return self.match(st)
        if isinstance(st, A.VerdictS):
            return self.verdict(st.verdict)
        if isinstance(st, A.CounterS):
            if st.name is not None:
                kind, name = ("counter", st.name)
                if ":" in st.name:
                    kind, name = st.name.split(":", 1)
                obj = self.table.objs.get((kind, name))
                if obj is None:
                    raise NftError("Could not process rule: No such file or directory",
                                   st.loc)
                num = {"counter": 1, "quota": 2, "limit": 4}[kind]
                ref = V.Objref(str(num), obj)
                self.emit([ref], [f'{kind} name "{name}"'])
                return
            c = V.Counter(st.packets, st.bytes)
            self.emit([c], [c])
            return
        if isinstance(st, A.LimitS):
            lim = V.Limit(st.rate, UNIT_SECS[st.unit], st.burst, st.bytes, st.over)
            txt = f"limit rate {'over ' if st.over else ''}{self.rate_text(st)}/{st.unit}"
            if st.bytes and st.burst:
                txt += f" burst {st.burst_text or st.burst}"
            elif not st.bytes and st.burst != 5:
                txt += f" burst {st.burst} packets"
            self.emit([lim], [txt])
            return
        if isinstance(st, A.QuotaS):
            q = V.Quota(st.nbytes, st.over, st.used)
            self.emit([q], [q])
            return
        if isinstance(st, A.LogS):
            return self.log(st)
        if isinstance(st, A.RejectS):
            return self.reject(st)
        if isinstance(st, A.NotrackS):
            self.emit([V.Notrack()], ["notrack"])
            return
        if isinstance(st, A.FlowS):
            return self.flow(st)
        if isinstance(st, A.SetS):
            return self.set_stmt(st)
        if isinstance(st, A.VmapS):
            ld = self.load(st.key)
            lk, txt = self.lookup_target(ld, st.mapping, vmap=True)
            self.emit(ld.exprs + [lk], [f"{ld.text} vmap {txt}"])
            return
        if isinstance(st, A.DynsetS):
            return self.dynset(st)
        if isinstance(st, A.NatS):
            return self.nat(st)
        from netstack.netfilter.nft import eval_stmts as ES
        if isinstance(st, A.QueueS):
            return ES.queue(self, st)
        if isinstance(st, A.DupS):
            return ES.dup(self, st)
        if isinstance(st, A.FwdS):
            return ES.fwd(self, st)
        if isinstance(st, A.MeterS):
            return ES.meter(self, st)
        if isinstance(st, A.XtS):
            return ES.xt(self, st)
        if isinstance(st, A.OptResetS):
            return ES.opt_reset(self, st)
        raise NotSupported(f"statement {type(st).__name__}")

    def nat(self, st: A.NatS) -> None:
        """src/evaluate.c stmt_evaluate_nat + netlink_gen_nat_stmt: every value goes in a
        full 128-bit register of its own (reg 1, reg 2 …)."""
        a = st.args
        fam = a["family"] or (self.family if self.family in ("ip", "ip6") else self.nh)
        if fam is None and st.kind in ("snat", "dnat"):
            fam = "ip"
        dt = T.IPV6 if fam == "ip6" else T.IPV4
        exprs: list[V.VmExpr] = []
        kind = {"masquerade": "masq", "redirect": "redir"}.get(st.kind, st.kind)
        nat = V.Nat(kind, fam or "ip", alen=dt.nbytes)
        unit = 0
        addr_txt, port_txt = None, None
        to = a["to"]
        if "addr6" in a:
            if dt is not T.IPV6:
                raise NftError("Could not resolve hostname: Address family for hostname "
                               "not supported", a["addr_loc"])
            addr_txt, port_txt = a["addr6"], a["port"]
        elif to is not None:
            addr_txt, port_txt = (to, None)
            if to.startswith(":"):
                addr_txt, port_txt = None, to[1:]
            elif dt is T.IPV4 and ":" in to:
                addr_txt, port_txt = to.rsplit(":", 1)
            elif st.kind == "redirect":
                addr_txt, port_txt = None, to
        if addr_txt is not None:
            if st.kind not in ("snat", "dnat"):
                raise NftError("syntax error, unexpected string", a["to_loc"])
            lo_t, _, hi_t = addr_txt.partition("-") if dt is T.IPV4 else \
                (addr_txt.partition("-"))
            lo = T.parse_value(dt, lo_t, a["to_loc"])
            exprs.append(V.Immediate(unit, lo))
            nat.addr_min = unit
            unit += 4
            if hi_t:
                exprs.append(V.Immediate(unit, T.parse_value(dt, hi_t, a["to_loc"])))
                nat.addr_max = unit
                unit += 4
        if port_txt is not None:
            if self.th is None:
                to_loc = a["to_loc"]
                ploc = a["port_loc"] if "port_loc" in a else \
                    Loc(to_loc.line, to_loc.last - len(port_txt) - (0 if addr_txt else 0),
                        to_loc.last) if to_loc else None
                raise NftError("transport protocol mapping is only valid after transport "
                               "protocol match", ploc, Loc(st.loc.line, st.loc.first,
                                                           st.loc.first + len(st.kind) - 1))
            plo, _, phi = port_txt.partition("-")
            exprs.append(V.Immediate(unit, T.parse_value(T.INET_SERVICE, plo, a["to_loc"])))
            nat.proto_min = unit
            unit += 4
            if phi:
                exprs.append(V.Immediate(unit, T.parse_value(T.INET_SERVICE, phi,
                                                             a["to_loc"])))
                nat.proto_max = unit
            nat.flags |= V.NAT_RANGE_PROTO_SPECIFIED
        for f in a["flags"]:
            nat.flags |= V.NAT_FLAGS[f]
        exprs.append(nat)
        text = st.kind
        if a["family"] and self.family == "inet":
            text += f" {a['family']}"
        if to is not None:
            text += f" to {to}"
        if a["flags"]:
            text += " " + ",".join(a["flags"])
        self.nat_used = True
        self.emit(exprs, [text])

    @staticmethod
    def rate_text(st: A.LimitS) -> str:
        if not st.bytes:
            return str(st.rate)
        for name, mult in (("mbytes", 1 << 20), ("kbytes", 1 << 10)):
            if st.rate % mult == 0:
                return f"{st.rate // mult} {name}"
        return f"{st.rate} bytes"

    def verdict(self, v: A.VerdictE) -> None:
        if v.kind in ("jump", "goto"):
            target = self.chain_lookup(v.chain, v.chain_loc or v.loc) if self.chain_lookup \
                else None
            self.emit([V.Immediate(None, verdict=v.kind, chain=v.chain, chain_obj=target)],
                      [f"{v.kind} {v.chain}"])
            return
        if v.kind == "queue":
            raise NotSupported("queue verdict (no nfqueue in netstack)")
        self.emit([V.Immediate(None, verdict=v.kind)], [v.kind])

    def log(self, st: A.LogS) -> None:
        level = None
        if st.level is not None:
            if st.level not in V.LOG_LEVELS:
                raise NftError("invalid log level", st.loc)
            level = V.LOG_LEVELS[st.level]
        flags = 0
        for f in st.flags:
            flags |= LOG_FLAG_BITS[f]
        if flags and st.group is not None:
            raise NftError("flags and group are mutually exclusive", st.loc)
        lg = V.Log(st.prefix, level, st.group, st.snaplen or 0, st.qthreshold or 0, flags)
        txt = "log"
        if st.prefix is not None:
            txt += f' prefix "{st.prefix}"'
        if st.group is not None:
            txt += f" group {st.group}"
        if st.level is not None and st.level != "warn":
            txt += f" level {st.level}"
        txt += log_flags_text(flags)
        self.emit([lg], [txt])

    def reject(self, st: A.RejectS) -> None:
        """``reject`` in every family: nft's stmt_evaluate_reject is reproduced in
        netstack/netfilter/nft/reject.py ``compile_reject``; the bridge and netdev
        families get the layer-2 expression of nft_reject_bridge.c /
        nft_reject_netdev.c."""
        from netstack.netfilter.nft.reject import L2Reject, compile_reject
        compile_reject(self, st, L2Reject if self.family in ("bridge", "netdev")
                       else V.Reject)

    def set_stmt(self, st: A.SetS) -> None:
        tgt = st.target
        if isinstance(tgt, A.ExthdrE):
            from netstack.netfilter.nft.eval_stmts import exthdr_set
            return exthdr_set(self, st)
        if isinstance(tgt, A.MetaE):
            if tgt.key not in META:
                raise NftError("syntax error, unexpected string", tgt.loc)
            key, dt = META[tgt.key]
            setter: V.VmExpr = V.MetaSet(key, 0)
            ttext = tgt.key if tgt.key in UNQUALIFIED_META else f"meta {tgt.key}"
        elif isinstance(tgt, A.CtE) and tgt.key in ("helper", "expectation") and \
                tgt.direction is None:
            from netstack.netfilter.nft.eval_stmts import ct_helper_set
            return ct_helper_set(self, st)
        elif isinstance(tgt, A.CtE):
            if tgt.key == "timeout":
                raise NotSupported("ct timeout objects / ct timeout set")
            if tgt.key not in ("mark", "zone", "label", "event", "helper", "expectation"):
                raise NftError("syntax error, unexpected set", tgt.loc)
            key, dt = CT[tgt.key]
            self.need_ct(tgt.loc)
            setter = V.CtSet(key, 0)
            ttext = f"ct {tgt.key}"
        elif isinstance(tgt, A.PayloadE):
            return self.payload_set(st)
        else:
            raise NotSupported("this set statement")
        val = st.value
        if isinstance(val, A.MapE):
            ld = self.load(val.key)
            lk, txt = self.lookup_target(ld, val.mapping, data_type=dt)
            self.emit(ld.exprs + [lk, setter], [f"{ttext} set {ld.text} map {txt}"])
            return
        if isinstance(val, A.BinopE):
            chain: list[A.BinopE] = []
            base: A.Expr = val
            while isinstance(base, A.BinopE):
                chain.append(base)
                base = base.left
            if isinstance(base, (A.MetaE, A.CtE, A.PayloadE)):
                return self._set_bitwise(tgt, ttext, setter, dt, base, chain[::-1])
        if isinstance(val, (A.MetaE, A.CtE, A.PayloadE, A.NumgenE, A.HashE, A.ConcatE)):
            ld = self.load(val)
            self.emit(ld.exprs + [setter], [f"{ttext} set {ld.text}"])
            return
        kind, data, text = self.const(dt, val)
        if kind != "value":
            raise NftError("syntax error, unexpected string", val.loc)
        if dt is T.MARK:
            text = f"0x{int.from_bytes(data, 'little'):08x}"
        self.emit([V.Immediate(0, data), setter], [f"{ttext} set {text}"])

    def _set_bitwise(self, tgt: A.Expr, ttext: str, setter: V.VmExpr, dt: T.DataType,
                     base: A.Expr, chain: list[A.BinopE]) -> None:
        """``meta mark set mark and 0xff xor 0x2``: every constant folds into one
        ``(x & mask) ^ xor`` (evaluate.c binop_transfer / constant folding): ``& c`` masks
        both, ``| c`` clears c from the mask and sets it in xor, ``^ c`` flips xor.  nft
        lists it back as netlink_delinearize.c does: ``& (mask|xor)`` unless all ones,
        then ``| xor`` when mask and xor are disjoint, else ``^ xor``."""
        ld = self.load(base)
        n = None
        mask = xor = 0
        for b in chain:
            c = self._const_fold(dt, b.right)
            if n is None:
                n = len(c)
                mask = (1 << (8 * n)) - 1
            v = int.from_bytes(c, dt.byteorder)
            if b.op == "&":
                mask &= v
                xor &= v
            elif b.op == "|":
                mask &= ~v
                xor |= v
            else:
                xor ^= v
        assert n is not None
        ones = (1 << (8 * n)) - 1

        def hexs(v: int) -> str:
            if dt is T.MARK:
                return f"0x{v:08x}"
            return T.format_value(dt, v.to_bytes(n, dt.byteorder))

        txt = f"{ttext} set {ld.text}"
        jv: Any = self.jlhs(base)
        shown = mask | xor
        if shown != ones:
            txt += f" & {hexs(shown)}"
            jv = {"&": [jv, self._jint(dt, shown, n)]}
        if xor:
            op = "|" if not mask & xor else "^"
            txt += f" {op} {hexs(xor)}"
            jv = {op: [jv, self._jint(dt, xor, n)]}
        code = self.emit(ld.exprs + [V.Bitwise(0, 0, mask.to_bytes(n, dt.byteorder),
                                               xor.to_bytes(n, dt.byteorder)), setter], [txt])
        code.json = [{"mangle": {"key": self.jlhs(tgt), "value": jv}}]

    def _const_fold(self, dt: T.DataType, e: A.Expr) -> bytes:
        """A constant operand, folding ``0x1 and 0x3`` (evaluate.c constant_binop_simplify)."""
        if isinstance(e, A.BinopE) and e.op in ("&", "|", "^"):
            a = int.from_bytes(self._const_fold(dt, e.left), dt.byteorder)
            b = int.from_bytes(self._const_fold(dt, e.right), dt.byteorder)
            v = a & b if e.op == "&" else (a | b if e.op == "|" else a ^ b)
            return v.to_bytes(dt.nbytes, dt.byteorder)
        if isinstance(e, (A.MetaE, A.CtE, A.PayloadE)):
            raise NotSupported("a set statement combining two packet fields")
        kind, c, _ = self.const(dt, e)
        if kind != "value":
            raise NftError("syntax error, unexpected string", e.loc)
        return c

    def _jint(self, dt: T.DataType, v: int, n: int) -> Any:
        from netstack.netfilter.nft.jsonfmt import jconst
        data = v.to_bytes(n, dt.byteorder)
        return jconst(dt, "value", data, T.format_value(dt, data))

    @staticmethod
    def check_field_range(ld: Loaded, kind: str, val: Any, e: A.Expr) -> None:
        """A constant for a payload field narrower than its type (``vlan id``: 12 bits,
        ``ip dscp``: 6) must fit the field: nft 1.0.6's integer_type_parse/expr_evaluate
        range check, "Value 5000 exceeds valid range 0-4095" at the value (measured)."""
        if ld.payload is None or kind not in ("value", "range"):
            return
        bits = ld.payload[2]
        parts = (val if kind == "range" else (val,))
        texts = e.text.split("-", 1) if kind == "range" and isinstance(e, A.Sym) else None
        for i, data in enumerate(parts):
            if bits >= 8 * len(data):
                return
            v = int.from_bytes(data, "big")
            if v >= 1 << bits:
                loc = e.loc
                if texts is not None and len(texts) == 2 and loc is not None:
                    # the range's bound in error, as nft locates it
                    first = loc.first if i == 0 else loc.first + len(texts[0]) + 1
                    loc = Loc(loc.line, first, first + len(texts[i].strip()) - 1)
                raise NftError(f"Value {v} exceeds valid range 0-{(1 << bits) - 1}", loc)

    def payload_set(self, st: A.SetS) -> None:
        """stmt_evaluate_payload: header rewrite with checksum fix-up information; a field
        that is not byte aligned, or not 16-bit aligned when a checksum covers it, is
        widened and merged into the packet's bytes with ``bitwise``."""
        tgt = st.target
        assert isinstance(tgt, A.PayloadE)
        ld = self.load(tgt)
        base, off, ln = ld.payload
        dt = ld.dtype
        kind, val, vtext = self.const(dt, st.value)
        if kind != "value":
            raise NftError("syntax error, unexpected string", st.value.loc)
        self.check_field_range(ld, kind, val, st.value)
        csum_type, csum_off, csum_flags = 0, 0, 0
        if base == NH and tgt.proto == "ip":
            csum_type, csum_off = 1, 10
            if tgt.field in ("saddr", "daddr"):
                csum_flags = 1
        elif base == NH and tgt.proto == "ip6" and tgt.field in ("saddr", "daddr"):
            csum_flags = 1
        elif base == TH:
            proto = tgt.proto if tgt.proto != "th" else L4_NAME.get(self.th or 0, "")
            if proto == "sctp" or not proto:
                raise NotSupported(f"rewriting {tgt.proto} headers")
            csum_type, csum_off = 1, {"tcp": 16, "udp": 6, "udplite": 6, "icmp": 2,
                                      "icmpv6": 2}[proto]
        boff = off // 8
        bsize = (off % 8 + ln + 7) // 8
        if csum_type:
            if boff & 1:
                boff -= 1
                bsize += 1
            if bsize & 1:
                bsize += 1
        exprs = [e for e in ld.exprs if not isinstance(e, V.PayloadLoad)]
        if boff * 8 != off or bsize * 8 != ln:
            shift = bsize * 8 - (off - boff * 8) - ln
            field = ((1 << ln) - 1) << shift
            mask = ((1 << (bsize * 8)) - 1) & ~field
            xor = int.from_bytes(val, "big") << shift
            exprs += [V.PayloadLoad(base, boff, bsize, 0),
                      V.Bitwise(0, 0, mask.to_bytes(bsize, "big"), xor.to_bytes(bsize, "big"))]
        else:
            exprs.append(V.Immediate(0, val))
        exprs.append(V.PayloadWrite(0, base, boff, bsize, csum_type, csum_off, csum_flags))
        self.emit(exprs, [f"{tgt.proto} {tgt.field} set {vtext}"])

    def flow(self, st: A.FlowS) -> None:
        if st.table not in self.table.flowtables:
            raise NftError("Could not process rule: No such file or directory", st.loc)
        self.emit([V.FlowOffload((self.table.family, self.table.name), st.table)],
                  [f"flow add @{st.table}"])

    def dynset(self, st: A.DynsetS) -> None:
        s = self.table.sets.get(st.setname)
        if s is None:
            raise NftError("Could not process rule: No such file or directory", st.loc)
        if st.timeout and "timeout" not in s.flags and not s.timeout:
            # nft_dynset_init: a per-element timeout needs a set with timeouts
            # raised by the caller after the rule was put in the batch (nft prints the
            # bytecode before the kernel refuses it)
            self.kernel_error = NftKernelError(errno.EOPNOTSUPP, "Could not process rule: "
                                               "Operation not supported", st.loc)
        s.flags.add("dynamic")
        ld = self.load(st.key)
        exprs = list(ld.exprs)
        sreg_data = None
        dtext = ""
        if st.data is not None:
            # get_register: a concatenation takes its exact size, anything else a full
            # 16-byte register
            du = (ld.nbytes + 3) // 4 if isinstance(st.key, A.ConcatE) else 4
            dl = self.load(st.data, du)
            exprs.extend(dl.exprs)
            sreg_data = du
            dtext = f" : {dl.text}"
        tmo = f" timeout {fmt_ms(st.timeout)}" if st.timeout else ""
        exprs.append(V.Dynset(st.op, 0, s, sreg_data, st.timeout))
        self.emit(exprs, [f"{st.op} @{st.setname} {{ {ld.text}{tmo}{dtext} }}"])

    # ------------------------------------------------------------------ relational
    def match(self, st: A.MatchS) -> None:
        n = len(self.codes)
        self._last_ld = None
        self._match(st)
        new = [c for c in self.codes[n:] if not c.dep]
        if new and new[-1].json is None and self._last_ld is not None:
            new[-1].json = [self.match_json(st, self._last_ld)]

    # ------------------------------------------------------------------ JSON
    def jlhs(self, e: A.Expr) -> Any:
        if isinstance(e, A.PayloadE):
            return {"payload": {"protocol": e.proto, "field": e.field}}
        if isinstance(e, A.MetaE):
            return {"meta": {"key": e.key}}
        if isinstance(e, A.CtE):
            d = {"key": e.key}
            if e.direction:
                d["dir"] = e.direction
            return {"ct": d}
        if isinstance(e, A.ConcatE):
            return {"concat": [self.jlhs(x) for x in e.items]}
        if isinstance(e, A.NumgenE):
            return {"numgen": {"mode": e.mode, "mod": e.modulus, "offset": e.offset}}
        if isinstance(e, A.HashE):
            d = {"mod": e.modulus}
            if e.kind == "jhash" and e.seed:
                d["seed"] = e.seed
            if e.kind == "jhash":
                d["expr"] = self.jlhs(e.key)
            if e.offset:
                d["offset"] = e.offset
            return {e.kind: d}
        if isinstance(e, A.FibE):
            return {"fib": {"result": e.result, "flags": e.flags}}
        if isinstance(e, A.ExthdrE):
            from netstack.netfilter.nft.eval_stmts import exthdr_json
            return exthdr_json(e)
        if isinstance(e, A.RtE):
            d = {"key": "mtu" if e.key == "mtu" else "nexthop"}
            if e.key == "nexthop":
                d["family"] = e.family or self.family
            return {"rt": d}
        return None

    def jrhs(self, dt: T.DataType, e: A.Expr) -> Any:
        from netstack.netfilter.nft.jsonfmt import jconst, jset_literal, jverdict
        if isinstance(e, A.SetRefE):
            return f"@{e.name}"
        if isinstance(e, A.AnonSetE):
            return jset_literal(self.anon[-1])
        if isinstance(e, A.VerdictE):
            return jverdict(e.kind, e.chain)
        if isinstance(e, A.Sym) and e.text in ("missing", "exists"):
            return e.text == "exists"
        if isinstance(e, A.ListE) and dt.flags:
            return [self.jrhs(dt, x) for x in e.items]
        if isinstance(e, A.BinopE) and e.op in ("&", "|", "^") and \
                isinstance(e.left, (A.MetaE, A.CtE, A.PayloadE)):
            return {e.op: [self.jlhs(e.left), self.jrhs(dt, e.right)]}
        if isinstance(e, (A.MetaE, A.CtE, A.PayloadE, A.NumgenE, A.HashE, A.FibE,
                          A.ConcatE)):
            return self.jlhs(e)
        kind, val, text = self.const(dt, e)
        return jconst(dt, kind, val, text)

    def match_json(self, st: A.MatchS, ld: Loaded) -> Any:
        lhs, rhs = st.left, st.right
        dt = ld.dtype
        left = self.jlhs(lhs.left if isinstance(lhs, A.BinopE) else lhs)
        mj = getattr(self, "_mask_json", None)
        self._mask_json = None
        if isinstance(lhs, A.BinopE) and mj is not None:
            if mj[0] == "in":
                return {"match": {"op": "in", "left": left,
                                  "right": self.jrhs(dt, lhs.right)}}
            return {"match": {"op": "==", "left": left, "right": {"prefix": {
                "addr": self.jrhs(dt, rhs), "len": mj[1]}}}}
        if isinstance(lhs, A.BinopE):
            left = {lhs.op: [left, self.jrhs(dt, lhs.right)]}
        elif isinstance(rhs, A.BinopE) and rhs.op == "/":
            left = {"&": [left, self.jrhs(dt, rhs.right)]}
            rhs = rhs.left
        op = st.op or "=="
        if st.op == "" and dt.flags and not isinstance(rhs, (A.AnonSetE, A.SetRefE)) \
                and not isinstance(lhs, A.BinopE) and not (isinstance(st.right, A.BinopE)):
            op = "in"
        return {"match": {"op": op, "left": left, "right": self.jrhs(dt, rhs)}}

    def stmt_json(self, st: A.Stmt, code: StmtCode) -> Any:
        from netstack.netfilter.nft.jsonfmt import jset_literal, jverdict
        if isinstance(st, A.VerdictS):
            return jverdict(st.verdict.kind, st.verdict.chain)
        if isinstance(st, A.CounterS):
            if st.name is not None:
                return {st.name.split(":")[0] if ":" in st.name else "counter":
                        st.name.split(":")[-1]}
            return code.exprs[-1]
        if isinstance(st, A.QuotaS):
            return code.exprs[-1]
        if isinstance(st, A.LimitS):
            d: dict = {"rate": st.rate, "burst": st.burst, "per": st.unit}
            if st.over:
                d["inv"] = True
            if st.bytes:
                num, unit = self.rate_text(st).split()
                d.update(rate=int(num), rate_unit=unit, burst_unit="bytes")
            return {"limit": d}
        if isinstance(st, A.LogS):
            d = {}
            if st.prefix is not None:
                d["prefix"] = st.prefix
            if st.group is not None:
                d["group"] = st.group
            if st.level is not None:
                d["level"] = st.level
            fl = code.exprs[-1].flags
            if fl:
                # json.c log_stmt_json: "all", else the set names, a string when alone
                names = ["all"] if fl & 0x2F == 0x2F else \
                    [n for b, n in ((1, "tcp sequence"), (2, "tcp options"),
                                    (4, "ip options"), (8, "skuid"), (0x20, "ether"))
                     if fl & b]
                d["flags"] = names[0] if len(names) == 1 else names
            return {"log": d or None}
        if isinstance(st, A.RejectS):
            r = code.exprs[-1]
            if r.type == 1:
                return {"reject": {"type": "tcp reset"}}
            kind = {0: "icmp" if (self.nh or self.family) != "ip6" else "icmpv6",
                    2: "icmpx"}[r.type]
            names = {"icmp": T.ICMP_CODES, "icmpv6": T.ICMP6_CODES, "icmpx": T.ICMPX_CODES}
            name = next(k for k, v in names[kind].items() if v == r.code)
            return {"reject": {"type": kind, "expr": name}}
        if isinstance(st, A.NotrackS):
            return {"notrack": None}
        if isinstance(st, A.SetS):
            if isinstance(st.target, A.PayloadE):
                dt = self.load_type(st.target)
            else:
                dt = META[st.target.key][1] if isinstance(st.target, A.MetaE) else \
                    CT[st.target.key][1]
            val = st.value
            if isinstance(val, A.MapE):
                v = {"map": {"key": self.jlhs(val.key),
                             "data": jset_literal(self.anon[-1])
                             if isinstance(val.mapping, A.AnonSetE)
                             else f"@{val.mapping.name}"}}
            else:
                v = self.jrhs(dt, val)
            return {"mangle": {"key": self.jlhs(st.target), "value": v}}
        if isinstance(st, A.VmapS):
            data = jset_literal(self.anon[-1]) if isinstance(st.mapping, A.AnonSetE) \
                else f"@{st.mapping.name}"
            return {"vmap": {"key": self.jlhs(st.key), "data": data}}
        if isinstance(st, A.NatS):
            a = st.args
            d = {}
            if a["family"] and self.family == "inet":
                d["family"] = a["family"]
            to = a["to"]
            if "addr6" in a:
                lo, _, hi = a["addr6"].partition("-")
                d["addr"] = {"range": [lo, hi]} if hi else lo
                port = a["port"]
                if port:
                    d["port"] = {"range": [int(x) for x in port.split("-", 1)]} \
                        if "-" in port else int(port)
            elif to:
                addr, port = (None, to[1:]) if to.startswith(":") else \
                    (to.rsplit(":", 1) if ":" in to and "." in to else (to, None))
                if st.kind == "redirect" and addr and port is None:
                    addr, port = None, addr
                if addr:
                    d["addr"] = {"range": addr.split("-", 1)} if "-" in addr else addr
                if port:
                    d["port"] = {"range": [int(x) for x in port.split("-", 1)]} \
                        if "-" in port else int(port)
            if a["flags"]:
                d["flags"] = a["flags"][0] if len(a["flags"]) == 1 else a["flags"]
            return {st.kind: d or None}
        if isinstance(st, A.DynsetS):
            return {"set": {"op": st.op, "elem": self.jlhs(st.key), "set": f"@{st.setname}"}}
        if isinstance(st, A.FlowS):
            return {"flow": {"op": "add", "flowtable": f"@{st.table}"}}
        return None

    def _negation(self, st: A.MatchS) -> None:
        """``ct state ! invalid`` (relational OP_NEG, evaluate.c): "none of these bits",
        ``(x & bits) == 0``; only for a bitmask type and a constant (a flag list or a
        one-element set counts: it is folded into one value)."""
        lhs, rhs = st.left, st.right
        if isinstance(rhs, A.AnonSetE) and len(rhs.elems) == 1 and rhs.elems[0].data is None:
            rhs = rhs.elems[0].key
        ld = self.load(lhs) if not isinstance(lhs, (A.BinopE, A.ConcatE)) else None
        if ld is None or not ld.dtype.flags or isinstance(rhs, (A.AnonSetE, A.SetRefE,
                                                                A.BinopE)):
            end = _end(rhs.loc) if not isinstance(rhs, A.ListE) else _end(rhs.items[-1].loc)
            raise NftError("negation can only be used with singleton bitmask values",
                           lhs.loc, Loc(rhs.loc.line, rhs.loc.first, end))
        self._last_ld = ld
        kind, val, vtext = self.const(ld.dtype, rhs)
        if kind != "value":
            raise NftError("syntax error, unexpected string", rhs.loc)
        val = self.shift(ld, val)
        code = self.emit(ld.exprs + [V.Bitwise(0, 0, val, bytes(len(val))),
                                     V.Cmp("eq", 0, bytes(len(val)))], [f"{ld.text} ! {vtext}"])
        code.json = [{"match": {"op": "!", "left": self.jlhs(lhs),
                                "right": self.jrhs(ld.dtype, rhs)}}]

    def load_type(self, e: A.PayloadE) -> T.DataType:
        base, off, ln, dt = PAYLOAD[e.proto][e.field]
        return T.with_size(dt, ln) if dt.base == "integer" else dt

    def _match(self, st: A.MatchS) -> None:
        if st.op == "!":
            return self._negation(st)
        if isinstance(st.left, A.ExthdrE) and st.left.field is None:
            from netstack.netfilter.nft.eval_stmts import exthdr_exists
            return exthdr_exists(self, st)
        op = OPS[st.op]
        lhs = st.left
        mask_binop = None
        if isinstance(lhs, A.BinopE):
            mask_binop = lhs
            lhs = lhs.left
        ld = self.load(lhs)
        self._last_ld = ld
        self._mask_json = None
        self._lhs_loc = lhs.loc if not isinstance(lhs, A.ConcatE) else \
            Loc(lhs.loc.line, lhs.loc.first, _end(lhs.items[-1].loc))
        dt = ld.dtype
        rhs = st.right
        if isinstance(rhs, A.BinopE) and rhs.op == "/" and mask_binop is None:
            mask_binop = A.BinopE(rhs.loc, "&", lhs, rhs.right)
            rhs = rhs.left
        if isinstance(rhs, (A.AnonSetE, A.SetRefE)):
            if op not in ("eq", "neq"):
                raise NftError("Relational expression size mismatch", st.loc)
            lk, txt = self.lookup_target(ld, rhs, invert=(op == "neq"))
            self.emit(ld.exprs + [lk], [f"{ld.text} {OP_TEXT[op]}{txt}"])
            self.update_ctx(lhs, op, None)
            return
        if isinstance(lhs, A.ConcatE):
            raise NotSupported("concatenation compared with a constant")
        exprs = list(ld.exprs)
        text = ld.text
        if mask_binop is not None:
            if mask_binop.op != "&":
                raise NotSupported(f"'{mask_binop.op}' on the left-hand side")
            mkind, mask, mtext = self.const(dt, mask_binop.right)
            kind, val, vtext = self.const(dt, rhs)
            if kind != "value":
                raise NftError("syntax error, unexpected string", rhs.loc)
            mask, val = self.shift(ld, mask), self.shift(ld, val)
            exprs.append(V.Bitwise(0, 0, mask, bytes(len(mask))))
            exprs.append(V.Cmp(op, 0, val))
            # how nft lists a masked comparison (netlink_delinearize.c
            # binop_postprocess / relational_binop_postprocess)
            mint = int.from_bytes(mask, dt.byteorder)       # nft tests the value, not bytes
            nbits = len(mask) * 8
            inv = ((1 << nbits) - 1) ^ mint
            is_prefix = mint and (inv & (inv + 1)) == 0
            self._mask_json = None
            if dt.flags and op == "neq" and not any(val):
                text += f" {mtext}"                      # "& bits != 0" is "any of bits"
                self._mask_json = ("in", "mask")
            elif dt.flags and op in ("eq", "neq"):
                text += f" {OP_TEXT[op]}{vtext} / {mtext}"
            elif is_prefix and dt.byteorder == T.HOST and dt.name == "mark" and op == "eq":
                plen = bin(mint).count("1")
                text += f" {vtext}/{plen}"
                self._mask_json = ("prefix", plen)
            else:
                text += f" & {mtext} {OP_TEXT[op] or '== '}{vtext}"
            self.emit(exprs, [text])
            return
        if isinstance(lhs, A.FibE) and isinstance(rhs, A.Sym) and \
                rhs.text in ("missing", "exists") and lhs.result in ("oif", "oifname"):
            exprs[-1].present = True
            val = struct.pack("<I", int(rhs.text == "exists"))
            exprs.append(V.Cmp(op, 0, val))
            self.emit(exprs, [f"{text} {OP_TEXT[op]}{rhs.text}"])
            return
        kind, val, vtext = self.const(dt, rhs)
        self.check_field_range(ld, kind, val, rhs)
        optext = "== " if (st.op == "==" and dt.flags) else OP_TEXT[op]
        ptext = f"{text} {optext}{vtext}"
        if kind == "wild":
            exprs.append(V.Cmp(op, 0, val))
            self.emit(exprs, [ptext])
            return
        if kind == "prefix":
            data, plen = val
            if op not in ("eq", "neq"):
                raise NftError("Relational expression size mismatch", st.loc)
            if dt.byteorder == T.HOST:
                nb = len(data)
                maskv = ((1 << plen) - 1) << (nb * 8 - plen)
                mask = maskv.to_bytes(nb, "little")
                exprs.append(V.Bitwise(0, 0, mask, bytes(nb)))
                exprs.append(V.Cmp(op, 0, bytes(a & m for a, m in zip(data, mask))))
            elif plen % 8 == 0 and ld.payload is not None:
                exprs[-1] = V.PayloadLoad(ld.payload[0], ld.payload[1] // 8, plen // 8, 0)
                exprs.append(V.Cmp(op, 0, data[:plen // 8]))
            else:
                nb = len(data)
                maskv = ((1 << plen) - 1) << (nb * 8 - plen)
                mask = maskv.to_bytes(nb, "big")
                exprs.append(V.Bitwise(0, 0, mask, bytes(nb)))
                exprs.append(V.Cmp(op, 0, bytes(a & m for a, m in zip(data, mask))))
            self.emit(exprs, [ptext])
            return
        if kind == "range":
            lo, hi = val
            if op not in ("eq", "neq"):
                raise NftError("Relational expression size mismatch", st.loc)
            if dt.byteorder == T.HOST and dt.nbytes > 1:
                exprs.append(V.Byteorder(0, 0, "hton", dt.nbytes, dt.nbytes))
                lo, hi = lo[::-1], hi[::-1]
            lo, hi = self.shift(ld, lo), self.shift(ld, hi)
            if ld.payload is not None and (ld.payload[1] % 8 or ld.payload[2] % 8):
                # a sub-byte field is masked before the range test (measured: ``vlan id
                # 1-5`` → bitwise & 0x0fff, then cmp gte/lte)
                nb = ld.payload[2]
                sh = ld.exprs[-1].length * 8 - ld.payload[1] % 8 - nb
                mask = (((1 << nb) - 1) << sh).to_bytes(ld.exprs[-1].length, "big")
                exprs.append(V.Bitwise(0, 0, mask, bytes(len(mask))))
            if op == "eq":
                exprs += [V.Cmp("gte", 0, lo), V.Cmp("lte", 0, hi)]
            else:
                exprs.append(V.Range("neq", 0, lo, hi))
            self.emit(exprs, [ptext])
            return
        # a single value
        if dt.flags and st.op == "":
            exprs.append(V.Bitwise(0, 0, self.shift(ld, val), bytes(len(val))))
            exprs.append(V.Cmp("neq", 0, bytes(len(val))))
            self.emit(exprs, [ptext])
            return
        if op in ("lt", "gt", "lte", "gte") and dt.byteorder == T.HOST and dt.nbytes > 1:
            exprs.append(V.Byteorder(0, 0, "hton", dt.nbytes, dt.nbytes))
            val = val[::-1]
        if dt is T.MARK or (isinstance(lhs, A.CtE) and lhs.key == "mark"):
            ptext = f"{text} {OP_TEXT[op]}0x{int.from_bytes(val, 'little'):08x}"
        mval = self.shift(ld, val)
        if ld.payload is not None and (ld.payload[1] % 8 or ld.payload[2] % 8):
            nb = ld.payload[2]
            shift = ld.exprs[-1].length * 8 - ld.payload[1] % 8 - nb
            mask = (((1 << nb) - 1) << shift).to_bytes(ld.exprs[-1].length, "big")
            exprs.append(V.Bitwise(0, 0, mask, bytes(len(mask))))
        exprs.append(V.Cmp(op, 0, mval))
        merge = None
        if op in ("eq", "neq") and ld.payload is not None and ld.payload[1] % 8 == 0 and \
                ld.payload[2] % 8 == 0:
            # nft merges "!=" matches as well (into one cmp neq over both fields)
            merge = (ld.payload[0], ld.payload[1] // 8, ld.payload[2] // 8, mval, op)
        code = self.emit(exprs, [ptext], merge=merge)
        if op == "eq" and st.op in ("", "==") and self.is_proto_key(lhs):
            code.proto_key = (lhs, val)
        self.update_ctx(lhs, op, val)

    def shift(self, ld: Loaded, val: bytes) -> bytes:
        """A value of a sub-byte field moved to its bit position in the loaded bytes."""
        if ld.payload is None or (ld.payload[1] % 8 == 0 and ld.payload[2] % 8 == 0):
            return val
        nbytes = ld.exprs[-1].length
        shift = nbytes * 8 - ld.payload[1] % 8 - ld.payload[2]
        return (int.from_bytes(val, "big") << shift).to_bytes(nbytes, "big")

    def update_ctx(self, lhs: A.Expr, op: str, val: bytes | None) -> None:
        """Protocol context (src/proto.c ``proto_ctx_update``): an equality on a protocol
        key tells later matches which header follows."""
        if op != "eq" or val is None:
            return
        if (isinstance(lhs, A.MetaE) and lhs.key == "l4proto") or \
                (isinstance(lhs, A.PayloadE) and (lhs.proto, lhs.field) in
                 (("ip", "protocol"), ("ip6", "nexthdr"))):
            self.th = val[0]
        elif isinstance(lhs, A.MetaE) and lhs.key == "nfproto":
            self.nh = {2: "ip", 10: "ip6"}.get(val[0], self.nh)
        elif (isinstance(lhs, A.PayloadE) and (lhs.proto, lhs.field) == ("ether", "type")) \
                or (isinstance(lhs, A.MetaE) and lhs.key == "protocol"):
            v = int.from_bytes(val, "big")
            self.nh = {0x0800: "ip", 0x86dd: "ip6"}.get(v, self.nh)
            if v == 0x8100 and isinstance(lhs, A.PayloadE):
                self._ether_vlan = self.codes[-1]
        elif isinstance(lhs, A.PayloadE) and (lhs.proto, lhs.field) == ("vlan", "type"):
            v = int.from_bytes(val, "big")
            nh = {0x0800: "ip", 0x86dd: "ip6", 0x0806: "arp"}.get(v)
            if nh is not None and self.nh is None:
                self.nh = nh
                self._vlan_type = self.codes[-1]
        if isinstance(lhs, A.PayloadE) and lhs.proto == "vlan" and lhs.field != "type":
            self.codes[-1].vlan_field = True

    def merge_payloads(self) -> None:
        """``payload_try_merge``: adjacent equality matches of one header become one load
        and one compare (see the size rule below)."""
        out: list[StmtCode] = []
        i = 0
        codes = self.codes
        while i < len(codes):
            c = codes[i]
            if c.merge is None:
                out.append(c)
                i += 1
                continue
            run = [c]
            j = i + 1
            while j < len(codes) and codes[j].merge is not None and \
                    codes[j].merge[0] == c.merge[0] and codes[j].merge[4] == c.merge[4]:
                run.append(codes[j])
                j += 1
            order = {id(c): n for n, c in enumerate(run)}
            run.sort(key=lambda s: s.merge[1])
            k = 0
            groups: list[tuple[int, StmtCode]] = []
            while k < len(run):
                cur = run[k]
                first = order[id(cur)]
                base, off, ln, val, mop = cur.merge
                texts = list(cur.text)
                jsons = list(cur.json or [None])
                while k + 1 < len(run):
                    nb, noff, nln, nval, _ = run[k + 1].merge
                    # payload_can_merge: adjacent, at most one 128-bit register, and
                    # two loads of up to 32 bits each only while the sum fits 32 bits
                    # (measured: ip saddr + daddr stay apart, arp operation + saddr
                    # ether + saddr ip become one 12-byte load)
                    total = ln + nln
                    if noff != off + ln or total > 16 or (total > 4 and ln <= 4 and
                                                          nln <= 4):
                        break
                    ln += nln
                    val += nval
                    texts += [" "] + list(run[k + 1].text)
                    jsons += list(run[k + 1].json or [None])
                    # payload_do_merge replaces the statement of the member later in
                    # offset order: the merged match sits where that one was
                    first = order[id(run[k + 1])]
                    k += 1
                if ln != cur.merge[2]:
                    cur = StmtCode([V.PayloadLoad(base, off, ln, 0), V.Cmp(mop, 0, val)],
                                   texts, json=jsons)
                groups.append((first, cur))
                k += 1
            # a merged statement takes the place of its last member in offset order
            out.extend(c for _, c in sorted(groups, key=lambda g: g[0]))
            i = j
        self.codes = out

    # ------------------------------------------------------------------ sets
    def lookup_target(self, ld: Loaded, target: A.Expr, invert: bool = False,
                      vmap: bool = False, data_type: T.DataType | None = None
                      ) -> tuple[V.VmExpr, str]:
        """A lookup in a named set (``@s``) or a new anonymous set/map."""
        if isinstance(target, A.SetRefE):
            s = self.table.sets.get(target.name)
            if s is None:
                raise NftError("No such file or directory", target.loc)
            if vmap and (s.data_type is None or s.data_type.base != "verdict"):
                raise NftError("Expression is not a map", target.loc)
            have = ld.field_types or [ld.dtype]
            if [t.name for t in have] != [t.name for t in s.key_types]:
                def desc(ts: list[T.DataType]) -> str:
                    if len(ts) == 1:
                        return ts[0].desc
                    return "concatenation of (" + ", ".join(t.desc for t in ts) + ")"
                raise NftError(f"datatype mismatch, expected {desc(have)}, expression has "
                               f"type {desc(s.key_types)}", target.loc, self._lhs_loc)
            dreg = -1 if vmap else (0 if data_type is not None else None)
            return V.Lookup(0, s, dreg, invert), f"@{target.name}"
        assert isinstance(target, A.AnonSetE)
        is_map = vmap or data_type is not None
        types = ld.field_types or [ld.dtype]
        dtype = T.VERDICT if vmap else data_type
        s = NftSet("__map%d" if is_map else "__set%d", types, dtype, {"constant"},
                   anonymous=True)
        s.nl_name = s.name
        if ld.payload is not None and len(types) == 1:
            for el in target.elems:          # "Value 5000 exceeds valid range 0-4095"
                kind, val, _ = self.const(types[0], el.key)
                self.check_field_range(ld, kind, val, el.key)
        self.fill_set(s, target.elems)
        s = self._subbyte_set(ld, s)
        from netstack.netfilter.nft.listing import elements_text
        self.anon.append(s)
        dreg = -1 if vmap else (0 if data_type is not None else None)
        return V.Lookup(0, s, dreg, invert), elements_text(s)

    def _subbyte_set(self, ld: Loaded, s: NftSet) -> NftSet:
        """A sub-byte payload field looked up in an anonymous set (``vlan pcp { 1, 5 }``,
        ``ip dscp { cs1, af41 }``): nft masks the loaded bytes (``bitwise``) and stores
        the elements at the field's bit position (measured: pcp 1 → element 0x20).  The
        set keeps ``key_shift`` so listings show the values as written."""
        if ld.payload is None or len(s.key_types) != 1 or not ld.exprs or \
                not isinstance(ld.exprs[-1], V.PayloadLoad) or \
                (ld.payload[1] % 8 == 0 and ld.payload[2] % 8 == 0):
            return s
        nbytes = ld.exprs[-1].length
        if s.key_types[0].nbytes != nbytes:
            return s
        shift = nbytes * 8 - ld.payload[1] % 8 - ld.payload[2]
        mask = (((1 << ld.payload[2]) - 1) << shift).to_bytes(nbytes, "big")
        ld.exprs.append(V.Bitwise(0, 0, mask, bytes(nbytes)))
        if not shift:
            return s
        out = NftSet(s.name, s.key_types, s.data_type, set(s.flags), anonymous=True)
        out.nl_name = s.nl_name
        out.key_shift = shift

        def sh(k: bytes | None) -> bytes | None:
            return None if k is None else \
                (int.from_bytes(k, "big") << shift).to_bytes(nbytes, "big")
        for e in s.elements():
            out.insert(Element(sh(e.key), sh(e.key_end), e.data, e.timeout, e.expiration,
                               e.comment, e.text))
        return out

    def element_key(self, s: NftSet, key: A.Expr) -> tuple[bytes, bytes | None, str]:
        items = key.items if isinstance(key, A.ConcatE) else [key]
        if len(items) != len(s.key_types):
            raise NftError("Unexpected concatenation size", key.loc)
        parts, parts_end, texts = [], [], []
        interval = False
        for it, dt in zip(items, s.key_types):
            kind, val, text = self.const(dt, it)
            if kind == "value":
                lo = hi = val
            elif kind == "prefix":
                data, plen = val
                n = len(data) * 8
                iv = int.from_bytes(data, "big")
                lo = data
                hi = (iv | ((1 << (n - plen)) - 1)).to_bytes(len(data), "big")
                interval = True
            elif kind == "range":
                lo, hi = val
                interval = True
            else:
                raise NftError("syntax error, unexpected string", it.loc)
            pad = b"\0" * (-len(lo) % 4) if len(s.key_types) > 1 else b""
            parts.append(lo + pad)
            parts_end.append(hi + pad)
            texts.append(text)
        k, ke = b"".join(parts), b"".join(parts_end)
        if interval:
            s.flags.add("interval")
        return k, (ke if interval else None), " . ".join(texts)

    def fill_set(self, s: NftSet, elems: list[A.SetElem]) -> list[str]:
        """Resolve and insert elements; an anonymous set becomes an interval set as soon
        as one element is a range or prefix (nft's ``set_is_interval``)."""
        resolved = []
        for el in elems:
            key, key_end, ktext = self.element_key(s, el.key)
            data, dtext = self.element_data(s, el)
            resolved.append((el, key, key_end, ktext, data, dtext))
        if "interval" in s.flags:
            if not s.anonymous and s.spec_flags is not None and \
                    "interval" not in s.spec_flags:
                raise NftError("You must add 'flags interval' to your set declaration if "
                               "you want to add prefix elements", elems[0].key.loc)
        texts = []
        for el, key, key_end, ktext, data, dtext in resolved:
            if "interval" in s.flags and key_end is None:
                key_end = key
            e = Element(key, key_end, data, el.timeout, None, el.comment, None)
            if el.timeout is not None and self.net is not None:
                e.expiration = self.net.world.clock.now + el.timeout * 1_000_000
            elif s.timeout and self.net is not None:
                e.expiration = self.net.world.clock.now + s.timeout * 1_000_000
            if s.interval and len(s.key_types) == 1 and s.overlaps(key, key_end or key):
                raise NftError("conflicting intervals specified", el.key.loc)
            if not s.insert(e) and not s.anonymous:
                e.text = "dup"
            texts.append(ktext + dtext)
        return texts

    def element_data(self, s: NftSet, el: A.SetElem) -> tuple[Any, str]:
        if s.data_type is None:
            if el.data is not None:
                raise NftError("syntax error, unexpected colon", el.data.loc)
            return None, ""
        if el.data is None:
            raise NftError("syntax error, unexpected '}', expecting colon", el.key.loc)
        if s.data_type.base == "verdict":
            if not isinstance(el.data, A.VerdictE):
                raise NftError("Could not parse netfilter verdict", el.data.loc)
            chain = None
            if el.data.kind in ("jump", "goto"):
                chain = self.chain_lookup(el.data.chain, el.data.chain_loc or el.data.loc) \
                    if self.chain_lookup else None
            dtext = f" : {el.data.kind}" + (f" {el.data.chain}" if el.data.chain else "")
            return (el.data.kind, chain, el.data.chain), dtext
        kind, data, vt = self.const(s.data_type, el.data)
        if s.data_type is T.MARK:
            vt = f"0x{int.from_bytes(data, 'little'):08x}"
        return data, f" : {vt}"
