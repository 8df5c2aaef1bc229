"""Set back ends at the sizes bench/netfilter.py uses (10 … 1 000 000 elements).

Single-field interval sets find an existing range (``NftSet._find_range``) and test a new
one for overlap (``NftSet.overlaps``) by bisecting the sorted starts instead of scanning
every range, so loading a large set is not quadratic.  The behaviour must stay that of the
plain scan: hypothesis compares insert / get / remove / lookup / overlaps against a list
model."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.netfilter.nft.ruleset import Element, NftSet
from netstack.netfilter.nft.types import IPV4 as IPV4_ADDR

ops = st.lists(st.tuples(st.sampled_from(["add", "del", "get", "lookup"]),
                         st.integers(0, 40), st.integers(0, 6)), max_size=60)


def _b(v: int) -> bytes:
    return v.to_bytes(4, "big")


@settings(max_examples=150)
@given(ops)
def test_interval_set_matches_list_model(seq):
    s = NftSet("r", [IPV4_ADDR], None, {"interval"})
    model: list[tuple[int, int]] = []
    for op, lo, width in seq:
        hi = lo + width
        if op == "add":
            # the front end refuses overlaps; the set stores what it is given
            if any(a <= hi and lo <= b for a, b in model if (a, b) != (lo, hi)):
                continue
            ok = s.insert(Element(_b(lo), key_end=_b(hi)))
            assert ok == ((lo, hi) not in model)
            if ok:
                model.append((lo, hi))
        elif op == "del":
            assert s.remove(_b(lo), _b(hi)) == ((lo, hi) in model)
            if (lo, hi) in model:
                model.remove((lo, hi))
        elif op == "get":
            e = s.get(_b(lo), _b(hi))
            assert (e is not None) == ((lo, hi) in model)
            if e is not None:
                assert (e.key, e.key_end) == (_b(lo), _b(hi))
        else:
            e = s.lookup(_b(lo), 0)
            want = [r for r in model if r[0] <= lo <= r[1]]
            assert (e is None) == (not want)
            if e is not None:
                assert (int.from_bytes(e.key, "big"), int.from_bytes(e.key_end, "big")) == want[0]
        assert len(s) == len(model)
        assert s._starts == sorted(s._starts)


def test_large_interval_and_hash_sets_build_and_look_up():
    """50 000 ranges and 50 000 exact keys: every element found, gaps and misses not."""
    n = 50_000
    r = NftSet("r", [IPV4_ADDR], None, {"interval"})
    h = NftSet("h", [IPV4_ADDR], None, set())
    for i in range(n):
        assert r.insert(Element(_b(4 * i), key_end=_b(4 * i + 1)))
        assert h.insert(Element(_b(7 * i)))
    assert len(r) == n and len(h) == n
    assert not r.insert(Element(_b(4 * 123), key_end=_b(4 * 123 + 1)))
    for i in (0, 1, 777, n - 1):
        assert r.lookup(_b(4 * i + 1), 0) is not None
        assert r.lookup(_b(4 * i + 2), 0) is None
        assert h.lookup(_b(7 * i), 0) is not None
        assert h.lookup(_b(7 * i + 1), 0) is None
    assert r.remove(_b(4 * 777), _b(4 * 777 + 1)) and r.lookup(_b(4 * 777), 0) is None


@settings(max_examples=150)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 5)), max_size=25),
       st.lists(st.tuples(st.integers(0, 70), st.integers(0, 8)), min_size=1, max_size=10))
def test_overlaps_matches_linear_scan(ranges, queries):
    """``overlaps`` as the front end uses it: ranges go in only when they do not overlap
    (nft's "conflicting intervals specified"); then any query range overlaps exactly when
    some stored range intersects it."""
    s = NftSet("r", [IPV4_ADDR], None, {"interval"})
    model: list[tuple[int, int]] = []
    for lo, w in ranges:
        hi = lo + w
        conflict = any(a <= hi and lo <= b for a, b in model)
        assert s.overlaps(_b(lo), _b(hi)) == conflict
        if not conflict:
            assert s.insert(Element(_b(lo), key_end=_b(hi)))
            model.append((lo, hi))
    for lo, w in queries:
        hi = lo + w
        assert s.overlaps(_b(lo), _b(hi)) == any(a <= hi and lo <= b for a, b in model)
