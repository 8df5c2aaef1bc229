"""Evaluation and linearisation (src/evaluate.c, src/netlink_linearize.c of nftables
1.0.6) of ``queue``, ``dup``, ``fwd``, ``meter`` and ``ct helper set``, plus their
``list`` text (src/statement.c) and JSON (src/json.c).

Each function takes the :class:`~.evaluate.RuleCompiler` compiling the rule and emits
the statement's kernel expressions and canonical text through ``comp.emit``."""
from __future__ import annotations

import copy
import errno
from typing import TYPE_CHECKING, Any

from netstack.netfilter.nft import ast as A
from netstack.netfilter.nft import types as T
from netstack.netfilter.nft import vm as V
from netstack.netfilter.nft import vm_stmts as VS
from netstack.netfilter.nft.errors import Loc, NftError, NftKernelError
from netstack.netfilter.nft.ruleset import Element, NftSet

if TYPE_CHECKING:  # pragma: no cover
    from netstack.netfilter.nft.evaluate import RuleCompiler


def queue(comp: "RuleCompiler", st: A.QueueS) -> None:
    """stmt_evaluate_queue: the number must fit 16 bits, a range must grow, ``fanout``
    needs a range.  Listed as ``queue [flags …] to N[-M]`` (queue_stmt_print)."""
    loc = st.num_loc or st.loc
    for v in (st.lo, st.hi):
        if v is not None and v > 0xFFFF:
            raise NftError(f"Value {v} exceeds valid range 0-65535", loc)
    if st.hi is not None and st.hi <= st.lo:
        raise NftError("Range has zero or negative size", loc)
    flags = 0
    for f in st.flags:
        flags |= VS.QUEUE_FLAG_BITS[f]
    names = [n for n, b in (("bypass", 1), ("fanout", 2)) if flags & b]
    if st.expr is not None:
        if flags & VS.NFT_QUEUE_FLAG_CPU_FANOUT:
            raise NftError("fanout requires a range to be specified", st.num_loc)
        ld = comp.load(st.expr, 0)
        js = {"num": comp.jlhs(st.expr)}
        if names:
            js["flags"] = names[0] if len(names) == 1 else names
        txt = "queue" + (f" flags {','.join(names)}" if names else "") + f" to {ld.text}"
        comp.emit(ld.exprs + [VS.Queue(0, 1, flags, 0)], [txt], json=[{"queue": js}])
        return
    if flags & VS.NFT_QUEUE_FLAG_CPU_FANOUT and st.hi is None:
        raise NftError("fanout requires a range to be specified", loc)
    total = 1 if st.hi is None else st.hi - st.lo + 1
    q = VS.Queue(st.lo, total, flags)
    num = f"{st.lo}" if st.hi is None else f"{st.lo}-{st.hi}"
    txt = "queue" + (f" flags {','.join(names)}" if names else "") + f" to {num}"
    js: dict = {"num": st.lo if st.hi is None else {"range": [st.lo, st.hi]}}
    if names:
        js["flags"] = names[0] if len(names) == 1 else names
    comp.emit([q], [txt], json=[{"queue": js}])


def _sym(e: A.Expr | None, what: str) -> tuple[str, Loc]:
    if not isinstance(e, A.Sym):
        raise NftError(f"{what} must be a constant", e.loc if e is not None else None)
    return e.text, e.loc


def _dev_text(e: A.Expr) -> str:
    """How nft prints an interface name constant: quoted (ifname datatype)."""
    return f'"{e.text}"'


def dup(comp: "RuleCompiler", st: A.DupS) -> None:
    """stmt_evaluate_dup: ip/ip6 take a gateway address and an optional device; netdev
    takes a device; other families are "unsupported family".  nft 1.0.6's grammar has no
    ``dup ip to`` (inet tables cannot duplicate)."""
    fam = comp.family
    if st.family is not None:
        raise NftError("syntax error, unexpected " + st.family + ", expecting to",
                       Loc(st.loc.line, st.loc.first + 4, st.loc.first + 3 + len(st.family)))
    if fam == "netdev":
        name, loc = _sym(st.addr, "device")
        comp.emit([V.Immediate(0, comp.ifindex(name, loc).to_bytes(4, "little")),
                   VS.Dup("netdev", None, 0)], [f"dup to {_dev_text(st.addr)}"],
                  json=[{"dup": {"addr": name}}])     # json.c dup_stmt_json's quirk
        return
    if fam not in ("ip", "ip6"):
        raise NftError("unsupported family", st.loc)
    dt = T.IPV4 if fam == "ip" else T.IPV6
    atext, aloc = _sym(st.addr, "address")
    addr = T.parse_value(dt, atext, aloc)
    exprs: list[V.VmExpr] = [V.Immediate(0, addr)]
    txt = f"dup to {atext}"
    js: dict = {"addr": atext}
    sreg_dev = None
    if st.dev is not None:
        dname, dloc = _sym(st.dev, "device")
        exprs.append(V.Immediate(4, comp.ifindex(dname, dloc).to_bytes(4, "little")))
        sreg_dev = 4
        txt += f" device {_dev_text(st.dev)}"
        js["dev"] = dname
    exprs.append(VS.Dup(fam, 0, sreg_dev))
    comp.emit(exprs, [txt], json=[{"dup": js}])


def fwd(comp: "RuleCompiler", st: A.FwdS) -> None:
    """stmt_evaluate_fwd: only in the netdev family; ``fwd to DEV`` or ``fwd ip|ip6 to
    ADDR device DEV`` (device first in the registers, then the address)."""
    if comp.family != "netdev":
        raise NftError("unsupported family", st.loc)
    dname, dloc = _sym(st.dev, "device")
    exprs: list[V.VmExpr] = [V.Immediate(0, comp.ifindex(dname, dloc).to_bytes(4, "little"))]
    if st.addr is None:
        exprs.append(VS.Fwd(0))
        comp.emit(exprs, [f"fwd to {_dev_text(st.dev)}"], json=[{"fwd": {"dev": dname}}])
        return
    dt = T.IPV4 if st.family == "ip" else T.IPV6
    atext, aloc = _sym(st.addr, "address")
    exprs.append(V.Immediate(4, T.parse_value(dt, atext, aloc)))
    exprs.append(VS.Fwd(0, 4, 2 if st.family == "ip" else 10))
    comp.emit(exprs, [f"fwd {st.family} to {atext} device {_dev_text(st.dev)}"],
              json=[{"fwd": {"dev": dname, "family": st.family, "addr": atext}}])


# ---------------------------------------------------------------------------- meter
class MeterDynset(V.Dynset):
    """``nft_dynset`` with a per-element expression (NFTA_DYNSET_EXPR): the element is
    added if absent, then *its own* copy of the statement (limit, counter, quota) runs
    on the packet; a limit over its rate ends the rule (NFT_BREAK)."""

    def __init__(self, sreg: int, s: NftSet, template: V.VmExpr, stmt_nl: str) -> None:
        super().__init__("add", sreg, s)
        self.template = template
        self.stmt_nl = stmt_nl

    def netlink(self) -> str:
        return (f"[ dynset add reg_key {V.reg_name(self.sreg)} set {self.set.nl_name} "
                f"expr [ {self.stmt_nl} ] ]")

    def eval(self, regs: V.Regs, info: V.PktInfo) -> None:
        key = V._get(regs, self.sreg, self.set.klen)
        if not self.set.dynset("add", key, None, None, info.now_ns):
            regs.code = V.NFT_BREAK
            return
        el = self.set.exact.get(key)
        if el is None:
            return
        inst = getattr(el, "expr", None)
        if inst is None:
            inst = copy.deepcopy(self.template)
            el.expr = inst
        inst.eval(regs, info)


def meter(comp: "RuleCompiler", st: A.MeterS) -> None:
    """stmt_evaluate_meter: a set named after the meter (flags anonymous|dynamic, hidden
    from ``list ruleset``), key from the expression, and a dynset whose element
    expression is the statement.  Listed as ``meter NAME size N { KEY STMT }`` (size
    65535 when none was given, as nft 1.0.6 prints the kernel's default)."""
    ld = comp.load(st.key)
    inner = st.stmt
    if isinstance(inner, A.CounterS) and inner.name is None:
        template: V.VmExpr = V.Counter(0, 0)
        itext, ijson = "counter", {"counter": None}
    elif isinstance(inner, (A.LimitS, A.QuotaS)):
        n = len(comp.codes)
        comp._stmt(inner)
        code = comp.codes.pop()
        del comp.codes[n:]
        template = code.exprs[-1]
        itext = _plain(code.text)
        ijson = comp.stmt_json(inner, code)
        if isinstance(ijson, V.VmExpr):
            from netstack.netfilter.nft.jsonfmt import _live
            ijson = _live(ijson)
    else:
        raise NftError("meter statement must be stateful", inner.loc if inner else st.loc)
    types = ld.field_types or [ld.dtype]
    s = NftSet(st.name, types, None, {"dynamic"}, anonymous=True)
    s.size = st.size
    s.meter = True
    s.handle = comp.table.alloc_handle()
    comp.anon.append(s)
    dyn = MeterDynset(0, s, template, template.netlink()[2:-2])
    size = st.size if st.size is not None else 65535
    txt = f"meter {st.name} size {size} {{ {ld.text} {itext} }}"
    comp.emit(ld.exprs + [dyn], [txt], json=[{"meter": {
        "key": comp.jlhs(st.key), "stmt": ijson, "size": size, "name": st.name}}])


def _plain(parts: list[Any]) -> str:
    from netstack.netfilter.nft.listing import live_text
    return live_text(parts)


# ---------------------------------------------------------------------------- ct helper
def ct_helper_set(comp: "RuleCompiler", st: A.SetS) -> None:
    """``ct helper set "NAME"`` / ``ct expectation set "NAME"``: an object reference
    (``objref type 3|9 name NAME``, NFT_OBJECT_CT_HELPER / NFT_OBJECT_CT_EXPECT) to an
    object of the table."""
    val = st.value
    key = st.target.key
    if isinstance(val, A.MapE) and isinstance(val.mapping, A.AnonSetE):
        return _ct_obj_map(comp, st, val)
    if not isinstance(val, A.Sym):
        from netstack.errors import NotSupported
        raise NotSupported(f"ct {key} set from a named map or an expression")
    obj = comp.table.objs.get((f"ct {key}", val.text))
    if obj is None:
        # the kernel refuses the rule (nft_objref_init: no such object) after nft put
        # it in the batch
        comp.kernel_error = NftKernelError(errno.ENOENT, "Could not process rule: No such "
                                           "file or directory", val.loc)
    ref = VS.CtHelperRef(val.text, obj) if key == "helper" else VS.CtExpectRef(val.text, obj)
    comp.emit([ref], [f'ct {key} set "{val.text}"'], json=[{f"ct {key}": val.text}])


def _ct_obj_map(comp: "RuleCompiler", st: A.SetS, val: A.MapE) -> None:
    """``ct helper set udp dport map { 69 : "tftp-std" }`` (and ``ct expectation set …
    map``): an anonymous object map (``__objmap%d``, NFT_SET_OBJECT with the object type,
    flags anonymous|constant|object, +interval for ranges) and ``[ objref sreg 1 set
    __objmap%d ]`` — nft_objref_map_eval looks the key up and runs that object's eval; no
    element ends the rule.  An element naming no object of the table is ENOENT from the
    kernel, reported at that element's key (measured with nft 1.0.6)."""
    from netstack.netfilter.nft.listing import _delim, key_text
    from netstack.netfilter.nft.jsonfmt import jelement_key
    key = st.target.key
    ld = comp.load(val.key)
    assert isinstance(val.mapping, A.AnonSetE)
    s = NftSet("__objmap%d", ld.field_types or [ld.dtype], None, {"constant", "object"},
               anonymous=True)
    s.nl_name = s.name
    s.objtype = 3 if key == "helper" else 9
    for el in val.mapping.elems:
        k, k_end, _ = comp.element_key(s, el.key)
        if el.data is None:
            raise NftError("syntax error, unexpected '}', expecting colon", el.key.loc)
        if not isinstance(el.data, A.Sym):
            raise NftError("syntax error, unexpected string", el.data.loc)
        name = el.data.text
        obj = comp.table.objs.get((f"ct {key}", name))
        if obj is None and comp.kernel_error is None:
            comp.kernel_error = NftKernelError(errno.ENOENT, "Could not process rule: No "
                                               "such file or directory", el.key.loc)
        ref = VS.CtHelperRef(name, obj) if key == "helper" else VS.CtExpectRef(name, obj)
        if "interval" in s.flags and k_end is None:
            k_end = k
        s.insert(Element(k, k_end, ref))
    comp.anon.append(s)
    elems = s.elements()
    if len(s.key_types) == 1:
        dt = s.key_types[0]
        elems = sorted(elems, key=lambda e: int.from_bytes(e.key, dt.byteorder))
    txt = "{ "
    for i, e in enumerate(elems):
        if i:
            txt += _delim(s, 0)[0]
        txt += f'{key_text(s, e)} : "{e.data.name}"'
    txt += " }"
    jdata = {"set": [[jelement_key(s, e), e.data.name] for e in elems]}
    comp.emit(ld.exprs + [VS.ObjrefMap(0, s)], [f"ct {key} set {ld.text} map {txt}"],
              json=[{f"ct {key}": {"map": {"key": comp.jlhs(val.key), "data": jdata}}}])


# ---------------------------------------------------------------------------- xt compat
def xt(comp: "RuleCompiler", st: A.XtS) -> None:
    """An xtables compat expression: its native equivalent is compiled by a separate
    compiler (its protocol dependencies and anonymous sets stay inside the expression,
    as the kernel's xt extension carries its own data), listed with the text nft 1.0.6
    prints and as ``{"xt": {"type": …, "name": …}}`` in JSON (src/json.c)."""
    from netstack.netfilter.nft.evaluate import RuleCompiler
    from netstack.netfilter.nft.parser import Parser
    spec: VS.XtSpec = st.spec
    inner: list[V.VmExpr] = []
    if spec.native:
        sub = RuleCompiler(comp.family, comp.table, comp.net, comp.chain_lookup)
        sub.nh, sub.th = comp.nh, comp.th
        rule = Parser(spec.native + "\n").parse_rule()
        exprs, _ = sub.compile(rule)
        inner = exprs
    comp.emit([VS.XtCompat(spec, inner)], [spec.text],
              json=[{"xt": {"type": spec.kind, "name": spec.name}}])


# ---------------------------------------------------------------------------- exthdr
def _exthdr_geom(e: A.ExthdrE) -> tuple[int, int, int, int, T.DataType, str]:
    """(op, type, bit offset, bit length, datatype, listing text) of an exthdr
    expression (src/tcpopt.c, src/exthdr.c templates)."""
    from netstack.netfilter.nft import exthdr as X
    if e.kind == "ipv4":
        kind, fields = X.IPV4_OPTS[e.name]
        if e.field is None:
            return X.NFT_EXTHDR_OP_IPV4, kind, 0, 8, T.U8, f"ip option {e.name}"
        off, ln = fields[e.field]
        return (X.NFT_EXTHDR_OP_IPV4, kind, off, ln, T.with_size(T.U32, ln),
                f"ip option {e.name} {e.field}")
    if e.kind == "tcpopt":
        if e.name.isdigit():
            kind, fields = int(e.name), {}
            shown = e.name
        else:
            kind, fields = X.TCPOPT[e.name]
            shown = "sack" if e.name == "sack0" else e.name
        if e.field is None:
            return X.NFT_EXTHDR_OP_TCPOPT, kind, 0, 8, T.U8, f"tcp option {shown}"
        off, ln = fields[e.field]
        return (X.NFT_EXTHDR_OP_TCPOPT, kind, off, ln, T.with_size(T.U32, ln),
                f"tcp option {shown} {e.field}")
    num, fields = X.IPV6_HDRS[e.name]
    if e.field is None:
        return X.NFT_EXTHDR_OP_IPV6, num, 0, 8, T.U8, f"exthdr {e.name}"
    off, ln, dt = fields[e.field]
    dt = T.with_size(dt, ln) if dt.base == "integer" and dt is not T.INET_PROTO else dt
    return X.NFT_EXTHDR_OP_IPV6, num, off, ln, dt, f"{e.name} {e.field}"


def exthdr_load(comp: "RuleCompiler", e: A.ExthdrE, unit: int) -> Any:
    """The load of an option/extension-header field: covering bytes, with the
    sub-byte position kept for masking (like a payload field, but never merged)."""
    from netstack.netfilter.nft import exthdr as X
    from netstack.netfilter.nft.evaluate import Loaded
    op, typ, off, ln, dt, text = _exthdr_geom(e)
    if op == X.NFT_EXTHDR_OP_IPV6:
        comp.need_nh("ip6", e.loc)
    elif op == X.NFT_EXTHDR_OP_IPV4:
        comp.need_nh("ip", e.loc)
    nbytes = (off % 8 + ln + 7) // 8
    load = X.ExthdrLoad(op, typ, off // 8, nbytes, unit, present=e.field is None)
    sub = ("exthdr", off, ln) if (off % 8 or ln % 8) else None
    return Loaded([load], dt, nbytes, text, sub)


def exthdr_json(e: A.ExthdrE) -> Any:
    """src/json.c exthdr_expr_json / tcpopt: ``{"tcp option": {"name", "field"}}``, a
    numeric kind as ``{"base", "offset", "len"}``; ``{"exthdr": {"name", "field"}}``."""
    if e.kind == "ipv4":
        d = {"name": e.name}
        if e.field:
            d["field"] = e.field
        return {"ip option": d}
    if e.kind == "tcpopt":
        if e.name.isdigit():
            return {"tcp option": {"base": int(e.name), "offset": 0, "len": 8}}
        d = {"name": "sack" if e.name == "sack0" else e.name}
        if e.field:
            d["field"] = e.field
        return {"tcp option": d}
    d = {"name": e.name}
    if e.field:
        d["field"] = e.field
    return {"exthdr": d}


def exthdr_exists(comp: "RuleCompiler", st: A.MatchS) -> None:
    """``tcp option maxseg exists`` / ``exthdr frag missing``: the present flag compared
    with 1 or 0 (a boolean right-hand side)."""
    rhs = st.right
    if not (isinstance(rhs, A.Sym) and rhs.text in ("exists", "missing")):
        raise NftError("syntax error, unexpected string", rhs.loc)
    ld = exthdr_load(comp, st.left, 0)
    op = {"": "eq", "==": "eq", "!=": "neq"}.get(st.op)
    if op is None:
        raise NftError("Relational expression size mismatch", st.loc)
    val = bytes([rhs.text == "exists"])
    optext = "!= " if op == "neq" else ""
    comp.emit(ld.exprs + [V.Cmp(op, 0, val)], [f"{ld.text} {optext}{rhs.text}"],
              json=[{"match": {"op": "!=" if op == "neq" else "==",
                               "left": exthdr_json(st.left),
                               "right": rhs.text == "exists"}}])


def exthdr_set(comp: "RuleCompiler", st: A.SetS) -> None:
    """``tcp option maxseg size set N`` (nft_exthdr_tcp_set): only TCP option fields
    of 2 or 4 bytes can be written."""
    from netstack.netfilter.nft import exthdr as X
    e = st.target
    op, typ, off, ln, dt, text = _exthdr_geom(e)
    if op != X.NFT_EXTHDR_OP_TCPOPT or e.field is None or off % 8 or ln not in (16, 32):
        from netstack.errors import NotSupported
        raise NotSupported(f"setting {text}")
    if isinstance(st.value, A.RtE):
        # ``set rt mtu``: the host-order MSS turned to network order (nft's byteorder)
        ld = comp.load(st.value, 0)
        comp.emit(ld.exprs + [V.Byteorder(0, 0, "hton", ln // 8, ln // 8),
                              X.ExthdrWrite(typ, off // 8, ln // 8, 0)],
                  [f"{text} set {ld.text}"],
                  json=[{"mangle": {"key": exthdr_json(e), "value": comp.jlhs(st.value)}}])
        return
    kind, data, vtext = comp.const(dt, st.value)
    if kind != "value":
        raise NftError("syntax error, unexpected string", st.value.loc)
    comp.emit([V.Immediate(0, data), X.ExthdrWrite(typ, off // 8, ln // 8, 0)],
              [f"{text} set {vtext}"],
              json=[{"mangle": {"key": exthdr_json(e), "value": int.from_bytes(data, "big")}}])


def opt_reset(comp: "RuleCompiler", st: A.OptResetS) -> None:
    from netstack.netfilter.nft import exthdr as X
    op, typ, _, _, _, text = _exthdr_geom(st.target)
    comp.emit([X.ExthdrReset(typ)], [f"reset {text}"],
              json=[{"reset": exthdr_json(st.target)}])
