"""libnftables JSON (nftables 1.0.6 src/json.c for output, src/parser_json.c for input).

Output: ``nft -j list …`` prints ``{"nftables": [metainfo, table, objects, sets, chains,
rules]}`` on one line; each rule's ``expr`` is built while the rule is compiled (see
``StmtCode.json`` in :mod:`netstack.netfilter.nft.evaluate`), live statements (counters,
quotas) read at print time.

Input: ``nft -j -f FILE`` (or a JSON command line) is translated into the equivalent nft
commands and runs through the same parser and transaction, so it is exactly as atomic and
produces exactly the same errors' effects.  Expressions outside the subset netstack
prints raise NotSupported."""
from __future__ import annotations

import json
from typing import Any

from netstack.errors import NotSupported
from netstack.netfilter.nft import types as T
from netstack.netfilter.nft import vm as V
from netstack.netfilter.nft.ruleset import Element, NftSet, NftState, Table

META_INFO = {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5",
                          "json_schema_version": 1}}


# ---------------------------------------------------------------------- values
def jvalue(dt: T.DataType, data: bytes) -> Any:
    """A constant as src/json.c prints it: symbols and addresses as strings, numbers as
    numbers, flag sets as a list of names."""
    if dt.base in ("ipv4", "ipv6", "ether"):
        return T.format_value(dt, data)
    if dt.base == "string":
        return data.rstrip(b"\0").decode(errors="replace")
    if dt.name == "tc_handle":
        return T.format_value(dt, data)
    v = int.from_bytes(data, dt.byteorder)
    if dt.flags:
        names = [k for k, bit in dt.symbols.items() if v & bit]
        if names and sum(dt.symbols[k] for k in names) == v:
            return names[0] if len(names) == 1 else names
        return v
    if dt.symbols and dt is not T.INET_SERVICE:
        s = dt.sym_by_value(v)
        if s is not None:
            return s
    return v


def jconst(dt: T.DataType, kind: str, val: Any, text: str) -> Any:
    if kind == "value":
        if dt is T.IFINDEX:
            return text.strip('"')
        return jvalue(dt, val)
    if kind == "prefix":
        data, plen = val
        addr = jvalue(dt, data) if dt.base == "integer" else T.format_value(dt, data)
        return {"prefix": {"addr": addr, "len": plen}}
    if kind == "range":
        return {"range": [jvalue(dt, val[0]), jvalue(dt, val[1])]}
    return text.strip('"')                       # ifname wildcard


def jelement_key(s: NftSet, e: Element) -> Any:
    from netstack.netfilter.nft.listing import key_text
    shift = getattr(s, "key_shift", 0)
    if shift:                              # see listing.key_text
        n = len(e.key)
        e = Element((int.from_bytes(e.key, "big") >> shift).to_bytes(n, "big"),
                    None if e.key_end is None else
                    (int.from_bytes(e.key_end, "big") >> shift).to_bytes(n, "big"))
    parts = []
    off = 0
    multi = len(s.key_types) > 1
    for dt in s.key_types:
        n = dt.nbytes
        lo, hi = e.key[off:off + n], (e.key_end or e.key)[off:off + n]
        off += (n + 3) // 4 * 4 if multi else n
        if lo == hi:
            parts.append(jvalue(dt, lo))
            continue
        fake = NftSet("x", [dt], None, {"interval"})
        txt = key_text(fake, Element(lo, hi))
        if "/" in txt:
            a, ln = txt.rsplit("/", 1)
            parts.append({"prefix": {"addr": a, "len": int(ln)}})
        else:
            parts.append({"range": [jvalue(dt, lo), jvalue(dt, hi)]})
    return parts[0] if not multi else {"concat": parts}


def jverdict(kind: str, chain: str | None) -> Any:
    return {kind: {"target": chain}} if chain else {kind: None}


def jelement(s: NftSet, e: Element) -> Any:
    k = jelement_key(s, e)
    if s.data_type is None:
        return k
    if isinstance(e.data, tuple):
        return [k, jverdict(e.data[0], e.data[2])]
    return [k, jvalue(s.data_type, e.data)]


def jset_literal(s: NftSet) -> Any:
    elems = s.elements()
    if len(s.key_types) == 1:
        dt = s.key_types[0]
        elems = sorted(elems, key=lambda e: int.from_bytes(e.key, dt.byteorder))
    return {"set": [jelement(s, e) for e in elems]}


# ---------------------------------------------------------------------- output
def _live(x: Any) -> Any:
    if isinstance(x, V.Counter):
        return {"counter": {"packets": x.packets, "bytes": x.bytes}}
    if isinstance(x, V.Quota):
        from netstack.netfilter.nft.listing import bytes_text
        num, unit = bytes_text(x.nbytes).split()
        q: dict = {"val": int(num), "val_unit": unit}
        if x.consumed:
            un, uu = bytes_text(x.dumped).split()
            q["used"], q["used_unit"] = int(un), uu
        if x.invert:
            q["inv"] = True
        return {"quota": q}
    return x


#: NFPROTO_* → the name nft prints for a ct helper's l3proto (family2str).
L3PROTO_NAMES = {1: "inet", 2: "ip", 10: "ip6", 3: "arp", 5: "netdev", 7: "bridge"}
NFPROTO_OF_FAMILY = {"inet": 1, "ip": 2, "ip6": 10, "arp": 3, "netdev": 5, "bridge": 7}
L4PROTO_NAMES = {6: "tcp", 17: "udp", 132: "sctp", 33: "dccp", 136: "udplite"}


def table_objects(t: Table, handles: bool = True) -> list[dict]:
    out: list[dict] = [{"table": {"family": t.family, "name": t.name, "handle": t.handle}}]
    for o in sorted(t.objs.values(), key=lambda o: o.handle):
        d: dict = {"family": t.family, "name": o.name, "table": t.name, "handle": o.handle}
        e = o.expr
        if o.kind == "ct expectation":
            d.update(protocol=L4PROTO_NAMES[e.l4proto], dport=e.dport, timeout=e.timeout,
                     size=e.size, l3proto=L3PROTO_NAMES[e.l3num])
        elif o.kind == "ct helper":
            # json.c obj_print_json: type, protocol, l3proto
            d.update(type=e.name, protocol={6: "tcp", 17: "udp"}[e.l4proto],
                     l3proto=L3PROTO_NAMES.get(e.l3num or NFPROTO_OF_FAMILY[t.family],
                                               "unknown"))
        elif o.kind == "counter":
            d.update(packets=e.packets, bytes=e.bytes)
        elif o.kind == "quota":
            d.update(bytes=e.nbytes, used=e.dumped, inv=bool(e.invert))
        else:
            units = {1: "second", 60: "minute", 3600: "hour", 86400: "day", 604800: "week"}
            d.update(rate=e.rate, per=units[e.unit], burst=e.burst)
        out.append({o.kind: d})
    for s in t.sets.values():
        if s.anonymous:
            continue
        key = [k.name for k in s.key_types]
        d = {"family": t.family, "name": s.name, "table": t.name,
             "type": key if len(key) > 1 else key[0], "handle": s.handle}
        if s.is_map:
            d["map"] = s.data_type.name
        flags = [f for f in ("constant", "interval", "timeout", "dynamic") if f in s.flags]
        if flags:
            d["flags"] = flags
        if s.timeout:
            d["timeout"] = s.timeout // 1000
        if len(s):
            d["elem"] = jset_literal(s)["set"]
        out.append({"map" if s.is_map else "set": d})
    for c in t.chains.values():
        d = {"family": t.family, "table": t.name, "name": c.name, "handle": c.handle}
        if c.is_base:
            # nft 1.0.6 leaves the device of a netdev/ingress chain out of its JSON
            # (measured on Linux 6.18: the kernel reports it as a device array)
            d.update(type=c.type, hook=c.hook, prio=c.priority, policy=c.policy)
        out.append({"chain": d})
    for c in t.chains.values():
        for r in c.rules:
            js = getattr(r, "json", None)
            if js is None or any(x is None for x in js):
                raise NotSupported("JSON output of this rule")
            d = {"family": t.family, "table": t.name, "chain": c.name, "handle": r.handle}
            if r.comment:
                d["comment"] = r.comment
            d["expr"] = [_live(x) for x in js]
            out.append({"rule": d})
    return out


def ruleset_json(state: NftState, family: str | None) -> str:
    objs: list[dict] = [META_INFO]
    for t in state.tables:
        if family is None or t.family == family:
            objs.extend(table_objects(t))
    return json.dumps({"nftables": objs}) + "\n"


# ---------------------------------------------------------------------- input
def _q(s: str) -> str:
    return f'"{s}"'


def expr_text(e: Any) -> str:
    """One JSON expression back to nft syntax."""
    if isinstance(e, bool):
        return "1" if e else "0"
    if isinstance(e, (int, float)):
        return str(e)
    if isinstance(e, str):
        if e.startswith("@"):
            return e
        if any(ch in e for ch in ' "') or e.endswith("*"):
            return _q(e)
        return e
    if isinstance(e, list):
        return ",".join(expr_text(x) for x in e)
    if not isinstance(e, dict) or len(e) != 1:
        raise NotSupported(f"JSON expression {json.dumps(e)}")
    (k, v), = e.items()
    if k == "payload":
        return f"{v['protocol']} {v['field']}"
    if k == "rt":
        return f"rt {v['family']} nexthop" if v.get("key") == "nexthop" else f"rt {v['key']}"
    if k == "ip option":
        return f"ip option {v['name']}" + (f" {v['field']}" if "field" in v else "")
    if k == "tcp option":
        if "base" in v:
            return f"tcp option {v['base']}"
        return f"tcp option {v['name']}" + (f" {v['field']}" if "field" in v else "")
    if k == "exthdr":
        return f"{v['name']} {v['field']}" if "field" in v else f"exthdr {v['name']}"
    if k == "meta":
        return f"meta {v['key']}"
    if k == "ct":
        return f"ct {v['dir'] + ' ' if 'dir' in v else ''}{v['key']}"
    if k == "concat":
        return " . ".join(expr_text(x) for x in v)
    if k == "prefix":
        a = v["addr"]
        return f"{hex(a) if isinstance(a, int) else a}/{v['len']}"
    if k == "range":
        return f"{expr_text(v[0])}-{expr_text(v[1])}"
    if k == "set":
        items = v if isinstance(v, list) else [v]
        return "{ " + ", ".join(
            f"{expr_text(x[0])} : {stmt_text(x[1]) if isinstance(x[1], dict) else expr_text(x[1])}"
            if isinstance(x, list) and len(x) == 2 and not isinstance(x[0], list) and
            isinstance(items, list) and _is_map_item(x) else expr_text(x)
            for x in items) + " }"
    if k in ("&", "|", "^"):
        rhs = v[1]
        r = f"({'|'.join(expr_text(x) for x in rhs)})" if isinstance(rhs, list) \
            else expr_text(rhs)
        return f"{expr_text(v[0])} {k} {r}"
    if k == "map":
        return f"{expr_text(v['key'])} map {expr_text(v['data'])}"
    if k == "numgen":
        off = f" offset {v['offset']}" if v.get("offset") else ""
        return f"numgen {v['mode']} mod {v['mod']}{off}"
    if k == "jhash":
        seed = f" seed {hex(v['seed'])}" if v.get("seed") else ""
        return f"jhash {expr_text(v['expr'])} mod {v['mod']}{seed}"
    if k == "fib":
        return f"fib {' . '.join(v['flags'])} {v['result']}"
    raise NotSupported(f"JSON expression {k}")


def _is_map_item(x: list) -> bool:
    return True


def stmt_text(s: dict) -> str:
    if not isinstance(s, dict) or len(s) != 1:
        raise NotSupported(f"JSON statement {json.dumps(s)}")
    (k, v), = s.items()
    if k in ("accept", "drop", "continue", "return"):
        return k
    if k in ("jump", "goto"):
        return f"{k} {v['target']}"
    if k == "match":
        op = v.get("op", "==")
        left = expr_text(v["left"])
        right = ("exists" if v["right"] else "missing") if isinstance(v["right"], bool) \
            else expr_text(v["right"])
        if op == "in":
            return f"{left} {right}"
        return f"{left} {op} {right}"
    if k == "counter":
        if isinstance(v, str):
            return f"counter name {_q(v)}"
        return f"counter packets {v.get('packets', 0)} bytes {v.get('bytes', 0)}" if v \
            else "counter"
    if k == "notrack":
        return "notrack"
    if k == "mangle":
        return f"{expr_text(v['key'])} set {expr_text(v['value'])}"
    if k == "vmap":
        return f"{expr_text(v['key'])} vmap {expr_text(v['data'])}"
    if k == "limit":
        rate = f"{v['rate']} {v['rate_unit']}" if v.get("rate_unit", "packets") != "packets" \
            else str(v["rate"])
        txt = f"limit rate {'over ' if v.get('inv') else ''}{rate}/{v.get('per', 'second')}"
        if v.get("burst") and v.get("rate_unit", "packets") == "packets" and v["burst"] != 5:
            txt += f" burst {v['burst']} packets"
        return txt
    if k == "quota":
        txt = f"quota {'over ' if v.get('inv') else ''}{v['val']} {v.get('val_unit', 'bytes')}"
        if v.get("used"):
            txt += f" used {v['used']} {v.get('used_unit', 'bytes')}"
        return txt
    if k == "log":
        txt = "log"
        if v:
            if "prefix" in v:
                txt += f" prefix {_q(v['prefix'])}"
            if "group" in v:
                txt += f" group {v['group']}"
            if "level" in v:
                txt += f" level {v['level']}"
            fl = v.get("flags")
            for f in ([fl] if isinstance(fl, str) else fl or []):
                # each JSON flag name is nft syntax after "flags" (json.c log flags)
                txt += f" flags {f}"
        return txt
    if k == "reject":
        if not v:
            return "reject"
        if v.get("type") == "tcp reset":
            return "reject with tcp reset"
        return f"reject with {v['type']} {v['expr']}" if "expr" in v else "reject"
    if k in ("snat", "dnat", "masquerade", "redirect"):
        txt = k
        if v:
            to = ""
            if "family" in v:
                txt += f" {v['family']}"
            if "addr" in v:
                to = expr_text(v["addr"])
            if "port" in v:
                if ":" in to:
                    # an IPv6 address before a port goes in brackets (nat_stmt_args)
                    to = "-".join(f"[{a}]" for a in to.split("-"))
                to += ":" + expr_text(v["port"])
            if to:
                txt += f" to {to}"
            if "flags" in v:
                fl = v["flags"]
                txt += " " + (",".join(fl) if isinstance(fl, list) else fl)
        return txt
    if k == "set":
        return f"{v['op']} {v['set']} {{ {expr_text(v['elem'])} }}"
    if k == "flow":
        return f"flow add {v['flowtable']}"
    if k in ("ct helper", "ct expectation"):
        if isinstance(v, dict):                 # {"map": {"key": …, "data": {"set": …}}}
            return f"{k} set {expr_text(v)}"
        return f"{k} set {_q(v)}"
    if k == "reset":
        return f"reset {expr_text(v)}"
    if k == "queue":
        txt = "queue"
        if v:
            fl = v.get("flags")
            if fl:
                txt += " flags " + (",".join(fl) if isinstance(fl, list) else fl)
            if "num" in v:
                txt += " num " + expr_text(v["num"])
        return txt
    if k == "dup":
        txt = f"dup to {expr_text(v['addr'])}" if "addr" in v else f"dup to {_q(v['dev'])}"
        if "addr" in v and "dev" in v:
            txt += f" device {_q(v['dev'])}"
        return txt
    if k == "fwd":
        if "addr" in v:
            return f"fwd {v['family']} to {expr_text(v['addr'])} device {_q(v['dev'])}"
        return f"fwd to {_q(v['dev'])}"
    if k == "meter":
        size = f" size {v['size']}" if "size" in v else ""
        return f"meter {v['name']}{size} {{ {expr_text(v['key'])} {stmt_text(v['stmt'])} }}"
    raise NotSupported(f"JSON statement {k}")


def _obj_text(kind: str, o: dict, verb: str) -> str:
    fam = o.get("family", "ip")
    if kind == "table":
        return f"{verb} table {fam} {o['name']}"
    if kind == "chain":
        head = f"{verb} chain {fam} {o['table']} {o['name']}"
        if "hook" in o:
            dev = f" device {_q(o['dev'])}" if "dev" in o else ""
            head += (f" {{ type {o.get('type', 'filter')} hook {o['hook']}{dev} priority "
                     f"{o.get('prio', 0)}; policy {o.get('policy', 'accept')}; }}")
        return head
    if kind == "rule":
        pos = f" handle {o['handle']}" if verb in ("replace", "delete") and "handle" in o \
            else ""
        body = " ".join(stmt_text(x) for x in o.get("expr", []))
        if o.get("comment"):
            body += f" comment {_q(o['comment'])}"
        return f"{verb} rule {fam} {o['table']} {o['chain']}{pos} {body}".rstrip()
    if kind in ("set", "map"):
        t = o["type"]
        key = " . ".join(t) if isinstance(t, list) else t
        if kind == "map":
            key += f" : {o['map']}"
        body = f"type {key};"
        if o.get("flags"):
            fl = o["flags"]
            body += f" flags {','.join(fl) if isinstance(fl, list) else fl};"
        if o.get("timeout"):
            body += f" timeout {o['timeout']}s;"
        if o.get("elem"):
            body += f" elements = {expr_text({'set': o['elem']})};"
        return f"{verb} {kind} {fam} {o['table']} {o['name']} {{ {body} }}"
    if kind == "element":
        return f"{verb} element {fam} {o['table']} {o['name']} {expr_text({'set': o['elem']})}"
    if kind == "counter":
        return (f"{verb} counter {fam} {o['table']} {o['name']} {{ packets "
                f"{o.get('packets', 0)} bytes {o.get('bytes', 0)} }}")
    if kind == "quota":
        from netstack.netfilter.nft.listing import bytes_text
        over = "over " if o.get("inv") else ""
        used = f" used {bytes_text(o['used'])}" if o.get("used") else ""
        return (f"{verb} quota {fam} {o['table']} {o['name']} {{ {over}"
                f"{bytes_text(o['bytes'])}{used} }}")
    if kind == "limit":
        burst = f" burst {o['burst']} packets" if o.get("burst", 5) != 5 else ""
        return (f"{verb} limit {fam} {o['table']} {o['name']} {{ rate {o['rate']}/"
                f"{o.get('per', 'second')}{burst} }}")
    if kind == "ct expectation":
        l3 = f" l3proto {o['l3proto']};" if "l3proto" in o else ""
        return (f"{verb} ct expectation {fam} {o['table']} {o['name']} {{ protocol "
                f"{o['protocol']}; dport {o['dport']}; timeout {o['timeout']}ms; size "
                f"{o['size']};{l3} }}")
    if kind == "ct helper":
        l3 = f" l3proto {o['l3proto']};" if "l3proto" in o else ""
        return (f"{verb} ct helper {fam} {o['table']} {o['name']} {{ type {_q(o['type'])} "
                f"protocol {o['protocol']};{l3} }}")
    raise NotSupported(f"JSON object {kind}")


def json_to_text(doc: Any) -> str:
    """src/parser_json.c: a ``{"nftables": [...]}`` document as nft commands."""
    if not isinstance(doc, dict) or not isinstance(doc.get("nftables"), list):
        raise ValueError("Malformed object (no nftables array)")
    lines = []
    for item in doc["nftables"]:
        if not isinstance(item, dict) or len(item) != 1:
            raise ValueError("Malformed object")
        (k, v), = item.items()
        if k == "metainfo":
            continue
        if k in ("add", "create", "insert", "replace", "delete", "flush", "list", "reset"):
            (kind, o), = v.items()
            if kind == "ruleset":
                lines.append(f"{k} ruleset")
                continue
            if k in ("flush", "list", "delete") and kind in ("table", "chain", "set", "map"):
                fam = o.get("family", "ip")
                rest = o["name"] if kind == "table" else f"{o['table']} {o['name']}"
                lines.append(f"{k} {kind} {fam} {rest}")
                continue
            lines.append(_obj_text(kind, o, k))
        else:
            lines.append(_obj_text(k, v, "add"))
    return "\n".join(lines) + "\n"
