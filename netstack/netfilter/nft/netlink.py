"""``nft --debug=netlink`` text of a batch (libnftnl ``nftnl_*_snprintf`` as nft 1.0.6
prints them while building the batch).

Messages are recorded while a transaction is evaluated and rendered only at the end,
because nft evaluates the whole batch before it prints anything: a set that a later rule
fills from the packet path (``add @s { … }``) is printed with the dynamic flag."""
from __future__ import annotations

from typing import Any

from netstack.netfilter.nft.ruleset import Chain, NftSet
from netstack.netfilter.nft.vm import VmExpr

# include/uapi/linux/netfilter/nf_tables.h enum nft_set_flags
SET_FLAG_BITS = {"anonymous": 0x1, "constant": 0x2, "interval": 0x4, "map": 0x8,
                 "timeout": 0x10, "dynamic": 0x20, "object": 0x40, "concat": 0x80}


def set_flags(s: NftSet) -> int:
    v = 0
    for f in s.flags:
        v |= SET_FLAG_BITS.get(f, 0)
    if s.anonymous:
        v |= 0x1
    if s.is_map:
        v |= 0x8
    if s.interval and len(s.key_types) > 1:
        v |= 0x80
    if s.timeout:
        v |= 0x10
    return v


def _word_key(key: bytes) -> str:
    pad = key + b"\0" * (-len(key) % 4)
    return " ".join(f"{int.from_bytes(pad[i:i + 4], 'little'):08x}" for i in
                    range(0, len(pad), 4))


def _data_text(s: NftSet, data: Any) -> str:
    if data is None or "object" in s.flags:
        return ""     # libnftnl prints no data for an object map's elements
    if isinstance(data, tuple):
        kind, _chain, name = data
        return f"{kind} -> {name} " if name else f"{kind} "
    return _word_key(data) + " "


def element_records(s: NftSet) -> list[tuple[bytes, Any, int]]:
    """The elements as sent to the kernel: (key, data, flags).  Single-field interval
    sets use the segment-tree encoding of src/segtree.c: a start element per interval and
    an interval-end element (flag 1) at ``end + 1``, plus a leading end element at zero
    when the first interval does not start there."""
    if not s.interval or len(s.key_types) > 1:
        elems = s.elements()
        return [(e.key, e.data, 0) for e in elems]
    out: list[tuple[bytes, Any, int]] = []
    n = len(s.ranges[0].key) if s.ranges else 0
    for i, e in enumerate(s.ranges):
        if i == 0 and any(e.key):
            out.append((bytes(n), None, 1))
        out.append((e.key, e.data, 0))
        end = int.from_bytes(e.key_end or e.key, "big") + 1
        if end < 1 << (8 * n):
            nxt = s.ranges[i + 1].key if i + 1 < len(s.ranges) else None
            endb = end.to_bytes(n, "big")
            if nxt != endb:
                out.append((endb, None, 1))
    return out


def render_set(s: NftSet, table: str) -> str:
    flags = set_flags(s)
    if getattr(s, "meter", False):
        # a meter's set: its own name, no elements, size only when given
        size = f" size {s.size}" if s.size is not None else ""
        return f"{s.nl_name} {table} {flags:x}{size}\n{s.nl_name} {table} 0\n"
    recs = element_records(s)
    if s.anonymous:
        head = f"{s.nl_name} {table} {flags:x} size {len(recs)}\n"
    else:
        head = f"{s.nl_name} {table} {flags:x}\n"
    if not recs:
        return head
    body = "".join(f"\telement {_word_key(k)}  : {_data_text(s, d)}{f} [end]"
                   for k, d, f in recs)
    return head + f"{s.nl_name} {table} 0\n" + body + "\n"


def render_chain(c: Chain, family: str) -> str:
    line = f"{family} (null) (null) use 0"
    if c.hook is not None:
        # libnftnl nftnl_hooknum2str: an inet ``ingress`` hook (NF_INET_INGRESS, 5) is
        # past the names it knows for inet-style families
        hook = "unknown" if family == "inet" and c.hook == "ingress" else c.hook
        line += f" type {c.type} hook {hook} prio {c.priority} packets 0 bytes 0"
        if c.device:
            line += f" dev {c.device} "
    return line + "\n"


def render_rule(family: str, table: str, chain: str, exprs: list[VmExpr],
                anon: list[NftSet]) -> str:
    out = "".join(render_set(s, table) for s in anon)
    out += f"{family} {table} {chain}\n"
    out += "".join(f"  {e.netlink()}\n" for e in exprs)
    return out + "\n"


class NetlinkLog:
    """Messages of one batch in order; rendered by :meth:`text` after evaluation."""

    def __init__(self) -> None:
        self.items: list[tuple] = []

    def chain(self, c: Chain, family: str) -> None:
        self.items.append(("chain", c, family))

    def set(self, s: NftSet, table: str) -> None:
        self.items.append(("set", s, table))

    def obj(self, text: str) -> None:
        """A stateful object (libnftnl obj_snprintf: the object's name and table are
        not filled in while the batch is built, hence ``(null)``)."""
        self.items.append(("obj", f"table (null) name (null) use 0 {text}\n"))

    def rule(self, family: str, table: str, chain: str, exprs: list[VmExpr],
             anon: list[NftSet]) -> None:
        self.items.append(("rule", family, table, chain, exprs, anon))

    def text(self) -> str:
        out = []
        for it in self.items:
            if it[0] == "chain":
                out.append(render_chain(it[1], it[2]))
            elif it[0] == "obj":
                out.append(it[1])
            elif it[0] == "set":
                out.append(render_set(it[1], it[2]))
            else:
                out.append(render_rule(*it[1:]))
        return "".join(out)
