"""``nft list`` output (nftables 1.0.6 src/rule.c ``table_print``, ``chain_print``,
``set_print``, ``obj_print``; src/expression.c ``set_expr_print``).

Rules print from the canonical text built when they were compiled; live state (counter
values, quota consumption) is read at listing time.  Within a table nft prints stateful
objects first, then sets and maps, flowtables, and chains last, separated by empty lines;
tables follow each other without one."""
from __future__ import annotations

from typing import Any

from netstack.netfilter.nft import types as T
from netstack.netfilter.nft import vm as V
from netstack.netfilter.nft.evaluate import fmt_ms
from netstack.netfilter.nft.ruleset import Chain, Element, Flowtable, NftSet, NftState, \
    StatefulObj, Table

STD_PRIO = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50,
            "srcnat": 100}
BRIDGE_PRIO = {"dstnat": -300, "filter": -200, "out": 100, "srcnat": 300}


def prio_text(family: str, ctype: str | None, hook: str | None, prio: int) -> str:
    """src/rule.c ``prio2str``: a standard priority name, or name ± offset when within 10
    of one (``filter + 10``), else the number.  ``dstnat`` only names priorities of the
    prerouting/output hooks, ``srcnat`` of input/postrouting (std_prio_family_hook_compat)."""
    table = BRIDGE_PRIO if family == "bridge" else STD_PRIO
    for name, val in table.items():
        if family != "bridge":
            if name == "dstnat" and hook not in ("prerouting", "output"):
                continue
            if name == "srcnat" and hook not in ("input", "postrouting"):
                continue
        off = prio - val
        if off == 0:
            return name
        if -10 <= off <= 10:
            return f"{name} {'+' if off > 0 else '-'} {abs(off)}"
    return str(prio)


def bytes_text(n: int) -> str:
    for name, mult in (("mbytes", 1 << 20), ("kbytes", 1 << 10)):
        if n >= mult and n % mult == 0:
            return f"{n // mult} {name}"
    return f"{n} bytes"


def live_text(parts: list[Any]) -> str:
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, V.Counter):
            out.append(f"counter packets {p.packets} bytes {p.bytes}")
        elif isinstance(p, V.Quota):
            s = f"quota {'over ' if p.invert else ''}{bytes_text(p.nbytes)}"
            if p.consumed:
                s += f" used {bytes_text(p.dumped)}"
            out.append(s)
    return "".join(out)


def _delim(s: NftSet, count: int) -> tuple[str, int]:
    """``calculate_delimiter``: named sets of addresses wrap every 4 elements, integers
    every 16, concatenations and other types after each element."""
    if s.anonymous:
        return ", ", count
    t = s.key_types[0] if len(s.key_types) == 1 else None
    if t is None:
        return ",\n\t\t\t     ", 0
    if t.name in ("integer", "inet_proto", "inet_service", "mark", "nf_proto",
                  "iface_index", "tcp_flag", "ct_dir"):
        limit = 5
    elif t.name in ("ipv4_addr", "ct_state", "ct_status", "pkt_type"):
        limit = 2
    else:
        return ",\n\t\t\t     ", 0
    if count < limit:
        return ", ", count
    return ",\n\t\t\t     ", 0


def key_text(s: NftSet, e: Element) -> str:
    shift = getattr(s, "key_shift", 0)
    if shift:
        # a sub-byte field's set stores values at their bit position: show them as written
        n = len(e.key)
        e = Element((int.from_bytes(e.key, "big") >> shift).to_bytes(n, "big"),
                    None if e.key_end is None else
                    (int.from_bytes(e.key_end, "big") >> shift).to_bytes(n, "big"))
    parts = []
    off = 0
    multi = len(s.key_types) > 1
    for dt in s.key_types:
        n = dt.nbytes
        lo = e.key[off:off + n]
        hi = (e.key_end or e.key)[off:off + n]
        off += (n + 3) // 4 * 4 if multi else n
        if lo == hi:
            parts.append(T.format_value(dt, lo))
            continue
        if dt.base in ("ipv4", "ipv6"):
            a, b = int.from_bytes(lo, "big"), int.from_bytes(hi, "big")
            size = b - a + 1
            if size & (size - 1) == 0 and a % size == 0:
                plen = dt.size - size.bit_length() + 1
                parts.append(f"{T.format_value(dt, lo)}/{plen}")
                continue
        parts.append(f"{T.format_value(dt, lo)}-{T.format_value(dt, hi)}")
    return " . ".join(parts)


def element_text(s: NftSet, e: Element, now: int | None = None) -> str:
    txt = key_text(s, e)
    if e.timeout is not None:
        txt += f" timeout {fmt_ms(e.timeout)}"
    if e.expiration is not None and now is not None:
        txt += f" expires {fmt_ms(max(0, (e.expiration - now) // 1_000_000))}"
    if e.comment is not None:
        txt += f' comment "{e.comment}"'
    if s.data_type is not None:
        if isinstance(e.data, tuple):
            txt += f" : {e.data[0]}" + (f" {e.data[2]}" if e.data[2] else "")
        elif s.data_type is T.MARK:
            txt += f" : 0x{int.from_bytes(e.data, 'little'):08x}"
        else:
            txt += f" : {T.format_value(s.data_type, e.data)}"
    return txt


def elements_text(s: NftSet, now: int | None = None) -> str:
    # expired elements are not dumped (nft_set_elem_expired in the dump walk)
    elems = [e for e in s.elements()
             if not (now is not None and e.expiration is not None and e.expiration <= now)]
    if len(s.key_types) == 1:
        # nft sorts single-field sets by value; concatenations keep the kernel's order
        dt = s.key_types[0]
        elems = sorted(elems, key=lambda e: int.from_bytes(e.key, dt.byteorder))
    out = "{ "
    count = 0
    for i, e in enumerate(elems):
        if i:
            d, count = _delim(s, count)
            out += d
        out += element_text(s, e, now)
        count += 1
    return out + " }"


def set_text(s: NftSet, handles: bool, heads_only: bool = False,
             now: int | None = None) -> str:
    kind = "map" if s.is_map else "set"
    out = f"\t{kind} {s.name} {{" + (f" # handle {s.handle}" if handles else "") + "\n"
    ktype = " . ".join(t.name for t in s.key_types)
    if s.is_map:
        ktype += f" : {s.data_type.name}"
    out += f"\t\ttype {ktype}\n"
    flags = [f for f in ("constant", "interval", "timeout", "dynamic") if f in s.flags]
    if s.timeout and "timeout" in flags:
        flags.remove("timeout")
    if flags:
        out += f"\t\tflags {','.join(flags)}\n"
    if s.timeout:
        out += f"\t\ttimeout {fmt_ms(s.timeout)}\n"
    if s.gc_interval:
        out += f"\t\tgc-interval {fmt_ms(s.gc_interval)}\n"
    if s.size:
        out += f"\t\tsize {s.size}\n"
    if s.policy == "memory":
        out += "\t\tpolicy memory\n"
    if s.counter:
        out += "\t\tcounter\n"
    if s.comment:
        out += f'\t\tcomment "{s.comment}"\n'
    live = [e for e in s.elements()
            if not (now is not None and e.expiration is not None and e.expiration <= now)]
    if live and not heads_only:
        out += f"\t\telements = {elements_text(s, now)}\n"
    return out + "\t}\n"


def obj_text(o: StatefulObj, handles: bool, family: str = "ip") -> str:
    out = f"\t{o.kind} {o.name} {{" + (f" # handle {o.handle}" if handles else "") + "\n"
    if o.comment:
        out += f'\t\tcomment "{o.comment}"\n'
    e = o.expr
    if o.kind == "ct helper":
        # src/rule.c obj_print_data: the kernel reports the table's family when no
        # l3proto was given
        from netstack.netfilter.nft.jsonfmt import L3PROTO_NAMES, NFPROTO_OF_FAMILY
        out += f'\t\ttype "{e.name}" protocol {({6: "tcp", 17: "udp"})[e.l4proto]}\n'
        out += f"\t\tl3proto {L3PROTO_NAMES[e.l3num or NFPROTO_OF_FAMILY[family]]}\n"
    elif o.kind == "ct expectation":
        from netstack.netfilter.nft.evaluate import fmt_ms
        from netstack.netfilter.nft.jsonfmt import L3PROTO_NAMES, L4PROTO_NAMES
        out += f"\t\tprotocol {L4PROTO_NAMES[e.l4proto]}\n\t\tdport {e.dport}\n"
        out += f"\t\ttimeout {fmt_ms(e.timeout)}\n\t\tsize {e.size}\n"
        out += f"\t\tl3proto {L3PROTO_NAMES[e.l3num]}\n"
    elif o.kind == "counter":
        out += f"\t\tpackets {e.packets} bytes {e.bytes}\n"
    elif o.kind == "quota":
        out += f"\t\t{'over ' if e.invert else ''}{bytes_text(e.nbytes)}"
        if e.consumed:
            out += f" used {bytes_text(e.dumped)}"
        out += "\n"
    else:
        units = {1: "second", 60: "minute", 3600: "hour", 86400: "day", 604800: "week"}
        rate = bytes_text(e.rate) if e.is_bytes else str(e.rate)
        out += f"\t\trate {'over ' if e.invert else ''}{rate}/{units[e.unit]}"
        if not e.is_bytes and e.burst != 5:
            out += f" burst {e.burst} packets"
        out += "\n"
    return out + "\t}\n"


def flowtable_text(f: Flowtable, handles: bool) -> str:
    out = f"\tflowtable {f.name} {{" + (f" # handle {f.handle}" if handles else "") + "\n"
    out += f"\t\thook {f.hook} priority {prio_text('', 'filter', f.hook, f.priority)}\n"
    if f.devices:
        devs = ", ".join(f.devices)
        out += f"\t\tdevices = {{ {devs} }}\n" if len(f.devices) > 1 else \
            f"\t\tdevices = {{ {devs} }}\n"
    if f.counter:
        out += "\t\tcounter\n"
    return out + "\t}\n"


def chain_text(t: Table, c: Chain, handles: bool, head_only: bool = False) -> str:
    out = f"\tchain {c.name} {{" + (f" # handle {c.handle}" if handles else "") + "\n"
    if c.comment:
        out += f'\t\tcomment "{c.comment}"\n'
    if c.is_base:
        dev = f' device "{c.device}"' if c.device else ""
        out += (f"\t\ttype {c.type} hook {c.hook}{dev} priority "
                f"{prio_text(t.family, c.type, c.hook, c.priority or 0)}; policy {c.policy};\n")
    if not head_only:
        for r in c.rules:
            out += "\t\t" + live_text(r.text) + (f" # handle {r.handle}" if handles else "") \
                + "\n"
    return out + "\t}\n"


def table_text(t: Table, handles: bool, chains: list[Chain] | None = None,
               sets: list[NftSet] | None = None, objs: list[StatefulObj] | None = None,
               flowtables: list[Flowtable] | None = None, chain_heads_only: bool = False,
               set_heads_only: bool = False, now: int | None = None) -> str:
    """One table block; the optional lists restrict what is printed (``list chain``…)."""
    full = chains is None and sets is None and objs is None
    if objs is None:
        # the kernel dumps a table's objects in creation order
        objs = sorted(t.objs.values(), key=lambda o: o.handle) if full else []
    if sets is None:
        sets = [s for s in t.sets.values() if not s.anonymous] if full else []
    if flowtables is None:
        flowtables = list(t.flowtables.values()) if full else []
    if chains is None:
        chains = list(t.chains.values()) if full else []
    blocks = [obj_text(o, handles, t.family) for o in objs]
    blocks += [set_text(s, handles, False, now) for s in sets]
    blocks += [flowtable_text(f, handles) for f in flowtables]
    blocks += [chain_text(t, c, handles, chain_heads_only) for c in chains]
    # only whole-table listings show the table's handle (measured with nft 1.0.6 -a)
    head = f"table {t.family} {t.name} {{" + (f" # handle {t.handle}" if handles and full
                                              else "") + "\n"
    if full and t.flags:
        head += f"\tflags {','.join(t.flags)}\n"
        if blocks:
            head += "\n"
    if full and t.comment:
        head += f'\tcomment "{t.comment}"\n'
    sep = "" if (chain_heads_only or set_heads_only) else "\n"
    return head + sep.join(blocks) + "}\n"


def ruleset_text(state: NftState, family: str | None, handles: bool,
                 now: int | None = None) -> str:
    return "".join(table_text(t, handles, now=now) for t in state.tables
                   if family is None or t.family == family)
