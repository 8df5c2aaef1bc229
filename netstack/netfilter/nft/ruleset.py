"""The nf_tables object model of one namespace (net/netfilter/nf_tables_api.c).

Tables own chains, sets, stateful objects and flowtables; a base chain has a type, hook,
priority and policy; rules carry kernel handles.  Handles follow the kernel: a table's
handle comes from a per-namespace counter (``++nft_net->table_handle``), everything inside
a table — chains, sets (anonymous ones too), objects, flowtables, rules — from the
table's own generator (``nf_tables_alloc_handle``), in the order the batch creates them.

Sets implement the three lookup back ends that matter semantically: exact keys (a dict,
like nft_set_hash: lookup time does not grow with the set), single-field intervals (sorted
starts + bisect, like nft_set_rbtree) and concatenated intervals (per-field ranges, like
nft_set_pipapo).  Element timeouts are absolute virtual-clock nanoseconds; an expired
element is invisible to lookups (``nft_set_elem_expired``) before garbage collection."""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from netstack.netfilter.nft.types import DataType


@dataclass
class Element:
    key: bytes
    key_end: bytes | None = None       # interval sets: last key inside the interval
    data: Any = None                   # bytes, or (verdict, chain) for verdict maps
    timeout: int | None = None         # ms, as configured
    expiration: int | None = None      # absolute ns
    comment: str | None = None
    text: Any = None                   # the parsed source element (listing)


class NftSet:
    """``struct nft_set``."""

    def __init__(self, name: str, key_types: list[DataType], data_type: DataType | None,
                 flags: set[str], anonymous: bool = False) -> None:
        self.name = name
        self.handle = 0
        self.key_types = key_types
        self.field_lens = [t.nbytes for t in key_types]
        self.klen = sum((n + 3) // 4 * 4 for n in self.field_lens) if len(key_types) > 1 \
            else self.field_lens[0]
        self.data_type = data_type
        self.dlen = data_type.nbytes if data_type is not None else 0
        self.flags = flags
        self.anonymous = anonymous
        self.timeout: int | None = None
        self.gc_interval: int | None = None
        self.size: int | None = None
        self.policy: str | None = None
        self.comment: str | None = None
        self.counter = False
        self.exact: dict[bytes, Element] = {}
        self.ranges: list[Element] = []          # interval elements, sorted by key
        self._starts: list[bytes] = []
        self.nl_name = name
        self.use = 0
        self.spec: Any = None
        self.spec_flags: set[str] | None = None   # flags the declaration named
        #: anonymous sets of a sub-byte field hold values at the field's bit position
        self.key_shift = 0
        #: object maps: NFT_OBJECT_* of the elements' objects (3 ct helper, 9 expectation)
        self.objtype = 0

    @property
    def is_map(self) -> bool:
        return self.data_type is not None

    @property
    def interval(self) -> bool:
        return "interval" in self.flags

    def elements(self) -> list[Element]:
        if self.interval:
            return list(self.ranges)
        return list(self.exact.values())

    def __len__(self) -> int:
        return len(self.ranges) + len(self.exact)

    # ------------------------------------------------------------------ updates
    def _find_range(self, key: bytes, key_end: bytes) -> Element | None:
        if len(self.key_types) == 1:
            # single-field intervals are sorted by start: bisect to the equal starts
            # (a linear scan made building an N-range set O(N^2))
            starts = self._starts
            i = bisect.bisect_left(starts, key)
            while i < len(starts) and starts[i] == key:
                if self.ranges[i].key_end == key_end:
                    return self.ranges[i]
                i += 1
            return None
        for e in self.ranges:
            if e.key == key and e.key_end == key_end:
                return e
        return None

    def overlaps(self, key: bytes, key_end: bytes) -> bool:
        if len(self.key_types) > 1:
            return False
        # single-field ranges are disjoint (this check refuses overlaps, and lookup relies
        # on the same invariant), so their ends ascend with their starts: of the ranges
        # starting at or below key_end, the last one reaches furthest.  (Scanning all of
        # them made loading an N-range set O(N^2).)
        i = bisect.bisect_right(self._starts, key_end)
        if i == 0:
            return False
        e = self.ranges[i - 1]
        return e.key_end is not None and e.key_end >= key

    def insert(self, el: Element) -> bool:
        """Add ``el``; False when an equal key exists (the caller maps that to EEXIST)."""
        if self.interval:
            if self._find_range(el.key, el.key_end or el.key) is not None:
                return False
            if el.key_end is None:
                el.key_end = el.key
            if len(self.key_types) > 1:
                # concatenated intervals (nft_set_pipapo) keep insertion order
                self.ranges.append(el)
                self._starts.append(el.key)
                return True
            i = bisect.bisect_right(self._starts, el.key)
            self.ranges.insert(i, el)
            self._starts.insert(i, el.key)
            return True
        if el.key in self.exact:
            return False
        self.exact[el.key] = el
        return True

    def remove(self, key: bytes, key_end: bytes | None = None) -> bool:
        if self.interval:
            e = self._find_range(key, key_end or key)
            if e is None:
                return False
            i = self.ranges.index(e)
            del self.ranges[i]
            del self._starts[i]
            return True
        return self.exact.pop(key, None) is not None

    def flush(self) -> None:
        self.exact.clear()
        self.ranges.clear()
        self._starts.clear()

    def get(self, key: bytes, key_end: bytes | None = None) -> Element | None:
        if self.interval:
            return self._find_range(key, key_end or key)
        return self.exact.get(key)

    # ------------------------------------------------------------------ datapath
    def _split(self, key: bytes) -> list[bytes]:
        out, off = [], 0
        for n in self.field_lens:
            out.append(key[off:off + n])
            off += (n + 3) // 4 * 4
        return out

    def lookup(self, key: bytes, now: int) -> Element | None:
        """nft_lookup_eval's ``set->ops->lookup``; expired elements do not match."""
        if not self.interval:
            e = self.exact.get(key)
        elif len(self.key_types) == 1:
            # intervals never overlap (the front end refuses that), so the only
            # candidate is the last interval starting at or below the key
            i = bisect.bisect_right(self._starts, key) - 1
            e = self.ranges[i] if i >= 0 else None
            if e is not None and (e.key_end or e.key) < key:
                e = None
        else:
            parts = self._split(key)
            e = None
            for cand in self.ranges:
                lo, hi = self._split(cand.key), self._split(cand.key_end or cand.key)
                if all(a <= p <= b for a, p, b in zip(lo, parts, hi)):
                    e = cand
                    break
        if e is not None and e.expiration is not None and e.expiration <= now:
            return None
        return e

    def dynset(self, op: str, key: bytes, data: bytes | None, timeout: int | None,
               now: int) -> bool:
        """nft_dynset_eval: ``add`` inserts when absent, ``update`` also refreshes the
        timeout, ``delete`` removes; returns False when the rule must not match (set full)."""
        e = self.exact.get(key) if not self.interval else self.lookup(key, now)
        if e is not None and e.expiration is not None and e.expiration <= now:
            self.exact.pop(key, None)
            e = None
        if op == "delete":
            if e is not None:
                self.exact.pop(key, None)
            return True
        tmo = timeout if timeout is not None else self.timeout
        if e is None:
            if self.size is not None and len(self) >= self.size:
                return False
            e = Element(key, data=data, timeout=timeout)
            e.expiration = now + tmo * 1_000_000 if tmo else None
            self.exact[key] = e
            return True
        if op == "update" and tmo:
            e.expiration = now + tmo * 1_000_000
        return True


@dataclass
class Rule:
    handle: int
    ast: Any                           # netstack.netfilter.nft.ast.RuleAst (evaluated)
    exprs: list = field(default_factory=list)
    comment: str | None = None

    def __deepcopy__(self, memo: dict) -> "Rule":
        """A transaction's copy: everything but the compiled closure (``_fast``, which
        refers to this rule's own expression objects; the copy builds its own)."""
        import copy
        new = Rule.__new__(Rule)
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            if k != "_fast":
                new.__dict__[k] = copy.deepcopy(v, memo)
        return new


@dataclass
class Chain:
    name: str
    handle: int = 0
    type: str | None = None
    hook: str | None = None
    priority: int | None = None
    priority_text: str | None = None
    policy: str = "accept"
    device: str | None = None
    comment: str | None = None
    rules: list[Rule] = field(default_factory=list)
    table: "Table | None" = field(default=None, repr=False)
    use: int = 0

    @property
    def is_base(self) -> bool:
        return self.hook is not None


@dataclass
class StatefulObj:
    kind: str                          # counter | quota | limit
    name: str
    handle: int = 0
    expr: Any = None                   # the VM expression holding the state
    stmt: Any = None
    comment: str | None = None


@dataclass
class Flowtable:
    name: str
    handle: int = 0
    hook: str = "ingress"
    priority: int = 0
    priority_text: str = "0"
    devices: list[str] = field(default_factory=list)
    flags: str | None = None
    counter: bool = False


@dataclass
class Table:
    family: str
    name: str
    handle: int = 0
    flags: list[str] = field(default_factory=list)
    comment: str | None = None
    chains: dict[str, Chain] = field(default_factory=dict)
    sets: dict[str, NftSet] = field(default_factory=dict)
    objs: dict[tuple[str, str], StatefulObj] = field(default_factory=dict)
    flowtables: dict[str, Flowtable] = field(default_factory=dict)
    hgen: int = 0
    anon_count: int = 0

    def alloc_handle(self) -> int:
        self.hgen += 1
        return self.hgen


@dataclass
class NftState:
    """``net.nft``: every table of the namespace plus the generation counters."""

    tables: list[Table] = field(default_factory=list)
    table_handle: int = 0
    log: list = field(default_factory=list)
    hooks: list = field(default_factory=list)   # registered NfHookOps
    ct_pfs: set = field(default_factory=set)    # families for which we hold conntrack
    live_flowtables: dict = field(default_factory=dict)  # (family, table, name) -> NF2's

    def find_table(self, family: str, name: str) -> Table | None:
        for t in self.tables:
            if t.family == family and t.name == name:
                return t
        return None


def nft_state(net: Any) -> NftState:
    """The namespace's nftables state, created on first use (no cost until a rule)."""
    st = net.__dict__.get("nft") if hasattr(net, "__dict__") else None
    if st is None:
        st = NftState()
        net.nft = st
    return st
