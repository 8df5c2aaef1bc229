"""Map semantics without the kernel: errno rules, iteration, LPM, LRU, per-CPU layout, ring buffer."""
from __future__ import annotations

import errno as E
import struct

import pytest
from hypothesis import given, settings, strategies as st

from netstack.bpf import maps as M
from netstack.bpf.errors import NotSupported

u32 = struct.Struct("<I").pack


def err(fn) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(M.MapError) as exc:
        fn()
    return exc.value.errno


# --- creation --------------------------------------------------------------------------------
@pytest.mark.parametrize("args,errno_", [
    ((M.BPF_MAP_TYPE_HASH, 0, 4, 1), E.EINVAL),
    ((M.BPF_MAP_TYPE_HASH, 4, 4, 1, M.BPF_F_NO_COMMON_LRU), E.EINVAL),
    ((M.BPF_MAP_TYPE_HASH, 4, 4, 1, M.BPF_F_RDONLY | M.BPF_F_WRONLY), E.EINVAL),
    ((M.BPF_MAP_TYPE_HASH, 4, 1 << 22, 1), E.E2BIG),
    ((M.BPF_MAP_TYPE_LRU_HASH, 4, 4, 1, M.BPF_F_NO_PREALLOC), M.ENOTSUPP),
    ((M.BPF_MAP_TYPE_ARRAY, 8, 4, 1), E.EINVAL),
    ((M.BPF_MAP_TYPE_PERCPU_ARRAY, 4, 32769, 1), E.E2BIG),
    ((M.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 1, 0), E.EINVAL),
    ((M.BPF_MAP_TYPE_RINGBUF, 0, 0, 12288), E.EINVAL),
    ((M.BPF_MAP_TYPE_DEVMAP, 4, 12, 1), E.EINVAL),
    ((M.BPF_MAP_TYPE_ARRAY, 4, 1 << 20, 1 << 10), E.ENOMEM),  # the model's own storage cap
])
def test_create_errors(args: tuple[int, ...], errno_: int) -> None:
    assert err(lambda: M.create_map(*args)) == errno_


def test_unmodelled_map_type_is_not_supported() -> None:
    with pytest.raises(NotSupported, match="not supported: map type 16"):
        M.create_map(16, 4, 4, 1)


# --- hash --------------------------------------------------------------------------------------
def test_hash_update_flags_and_capacity() -> None:
    m = M.create_map(M.BPF_MAP_TYPE_HASH, 4, 4, 2)
    assert err(lambda: m.update(u32(1), u32(1), M.BPF_EXIST)) == E.ENOENT
    m.update(u32(1), u32(10), M.BPF_NOEXIST)
    assert err(lambda: m.update(u32(1), u32(1), M.BPF_NOEXIST)) == E.EEXIST
    m.update(u32(2), u32(20))
    assert err(lambda: m.update(u32(3), u32(30))) == E.E2BIG
    m.update(u32(2), u32(21), M.BPF_EXIST)  # replacing works when full
    assert m.lookup(u32(2)) == u32(21)
    assert err(lambda: m.update(u32(2), u32(1), 3)) == E.EINVAL
    assert err(lambda: m.update(u32(2), u32(1), M.BPF_F_LOCK)) == E.EINVAL
    assert err(lambda: m.delete(u32(9))) == E.ENOENT
    assert err(lambda: m.lookup(b"\0\0")) == E.EINVAL  # wrong key size


def test_hash_replace_gives_a_new_slot_so_old_pointers_see_old_value() -> None:
    m = M.create_map(M.BPF_MAP_TYPE_HASH, 4, 8, 4)
    m.update(u32(1), b"A" * 8)
    old = m.prog_lookup(u32(1), 0)
    m.update(u32(1), b"B" * 8)
    new = m.prog_lookup(u32(1), 0)
    assert old != new and bytes(m.storage[old:old + 8]) == b"A" * 8 and bytes(m.storage[new:new + 8]) == b"B" * 8


def test_get_next_key_missing_key_restarts_and_end_is_enoent() -> None:
    m = M.create_map(M.BPF_MAP_TYPE_HASH, 4, 4, 8, M.BPF_F_ZERO_SEED)
    for k in range(5):
        m.update(u32(k), u32(k))
    keys = list(m.keys())
    assert sorted(keys) == [u32(k) for k in range(5)]
    assert m.get_next_key(u32(99)) == keys[0]
    assert err(lambda: m.get_next_key(keys[-1])) == E.ENOENT


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["update", "delete"]), st.integers(0, 9), st.integers(0, 3)),
                max_size=60))
def test_hash_behaves_like_a_bounded_dict(ops: list[tuple[str, int, int]]) -> None:
    m = M.create_map(M.BPF_MAP_TYPE_HASH, 4, 4, 5)
    ref: dict[int, int] = {}
    for n, (op, k, flags) in enumerate(ops):
        if op == "update":
            want = 0
            if flags == 3:
                want = E.EINVAL
            elif flags == M.BPF_NOEXIST and k in ref:
                want = E.EEXIST
            elif flags == M.BPF_EXIST and k not in ref:
                want = E.ENOENT
            elif k not in ref and len(ref) >= 5:
                want = E.E2BIG
            got = err(lambda: m.update(u32(k), u32(n), flags)) if want else m.update(u32(k), u32(n), flags) or 0
            assert got == want
            if not want:
                ref[k] = n
        else:
            if k in ref:
                m.delete(u32(k))
                del ref[k]
            else:
                assert err(lambda: m.delete(u32(k))) == E.ENOENT
    keys = list(m.keys())
    assert len(keys) == len(set(keys)) == len(ref)
    assert {struct.unpack("<I", k)[0]: struct.unpack("<I", m.lookup(k))[0] for k in keys} == ref


def test_percpu_hash_value_layout_and_program_view() -> None:
    m = M.create_map(M.BPF_MAP_TYPE_PERCPU_HASH, 4, 4, 4, ncpus=3)
    assert m.user_value_size == 24
    m.update(u32(1), b"".join(u32(c + 1) + bytes(4) for c in range(3)))
    off = m.prog_lookup(u32(1), 2)
    assert bytes(m.storage[off:off + 4]) == u32(3)
    assert m.prog_update(u32(2), u32(7), 0, 1) == 0  # new element from a program: other CPUs zeroed
    assert m.lookup(u32(2)) == bytes(8) + u32(7) + bytes(4) + bytes(8)


def test_lru_evicts_oldest_unreferenced_and_respects_references() -> None:
    m = M.create_map(M.BPF_MAP_TYPE_LRU_HASH, 4, 4, 3)
    for k in (1, 2, 3):
        m.update(u32(k), u32(k))
    m.prog_lookup(u32(1), 0)  # sets the reference bit of 1
    m.update(u32(4), u32(4))  # 1 gets a second chance, 2 is evicted
    assert sorted(m.keys()) == [u32(1), u32(3), u32(4)]
    m.lookup(u32(3))  # userspace lookups do not set the bit
    m.update(u32(5), u32(5))
    assert err(lambda: m.lookup(u32(3))) == E.ENOENT
    assert len(list(m.keys())) == 3


# --- arrays ------------------------------------------------------------------------------------
def test_array_rules() -> None:
    m = M.create_map(M.BPF_MAP_TYPE_ARRAY, 4, 6, 3)
    assert m.lookup(u32(2)) == bytes(6)
    assert err(lambda: m.lookup(u32(3))) == E.ENOENT
    assert err(lambda: m.update(u32(3), bytes(6))) == E.E2BIG
    assert err(lambda: m.update(u32(0), bytes(6), M.BPF_NOEXIST)) == E.EEXIST
    assert err(lambda: m.delete(u32(0))) == E.EINVAL
    assert [m.get_next_key(None), m.get_next_key(u32(0)), m.get_next_key(u32(50))] == [u32(0), u32(1), u32(0)]
    assert err(lambda: m.get_next_key(u32(2))) == E.ENOENT
    assert m.prog_lookup(u32(1), 0) == 8  # values are 8-byte aligned slots


def test_access_flags() -> None:
    ro = M.create_map(M.BPF_MAP_TYPE_ARRAY, 4, 4, 1, M.BPF_F_RDONLY)
    assert err(lambda: ro.update(u32(0), u32(1))) == E.EPERM
    assert ro.lookup(u32(0)) == u32(0)
    wo = M.create_map(M.BPF_MAP_TYPE_ARRAY, 4, 4, 1, M.BPF_F_WRONLY)
    assert err(lambda: wo.lookup(u32(0))) == E.EPERM


# --- LPM trie --------------------------------------------------------------------------------------
def lpm_key(plen: int, *octets: int) -> bytes:
    return u32(plen) + bytes(octets)


def test_lpm_longest_prefix_and_errors() -> None:
    m = M.create_map(M.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 3, M.BPF_F_NO_PREALLOC)
    m.update(lpm_key(8, 10, 0, 0, 0), u32(8))
    m.update(lpm_key(16, 10, 1, 0, 0), u32(16))
    assert m.lookup(lpm_key(32, 10, 1, 2, 3)) == u32(16)
    assert m.lookup(lpm_key(32, 10, 2, 2, 3)) == u32(8)
    assert m.lookup(lpm_key(12, 10, 1, 2, 3)) == u32(8)  # only prefixes <= the key's length
    assert err(lambda: m.lookup(lpm_key(32, 11, 0, 0, 0))) == E.ENOENT
    assert err(lambda: m.update(lpm_key(33, 1, 0, 0, 0), u32(0))) == E.EINVAL
    m.update(lpm_key(24, 10, 1, 1, 0), u32(24))
    assert err(lambda: m.update(lpm_key(4, 0, 0, 0, 0), u32(0))) == E.ENOSPC
    assert err(lambda: m.delete(lpm_key(12, 10, 0, 0, 0))) == E.ENOENT
    # post-order: more specific first
    assert list(m.keys()) == [lpm_key(24, 10, 1, 1, 0), lpm_key(16, 10, 1, 0, 0), lpm_key(8, 10, 0, 0, 0)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 16), st.integers(0, 0xFFFF)), max_size=12),
       st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=8))
def test_lpm_lookup_matches_brute_force(prefixes: list[tuple[int, int]], probes: list[int]) -> None:
    m = M.create_map(M.BPF_MAP_TYPE_LPM_TRIE, 6, 4, 64, M.BPF_F_NO_PREALLOC)
    ref: dict[tuple[int, int], int] = {}
    for i, (plen, bits) in enumerate(prefixes):
        m.update(u32(plen) + bits.to_bytes(2, "big"), u32(i))
        ref[(plen, bits >> (16 - plen) if plen else 0)] = i
    for probe in probes:
        best = max((p for p in ref if (probe >> (16 - p[0]) if p[0] else 0) == p[1]), default=None,
                   key=lambda p: p[0])
        key = u32(16) + probe.to_bytes(2, "big")
        if best is None:
            assert err(lambda: m.lookup(key)) == E.ENOENT
        else:
            assert m.lookup(key) == u32(ref[best])
    assert len(list(m.keys())) == len(ref)


# --- ring buffer --------------------------------------------------------------------------------------
def test_ringbuf_record_layout() -> None:
    rb = M.create_map(M.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096)
    assert isinstance(rb, M.RingBuf)
    assert rb.output(b"abc") == 0
    assert rb.producer_pos == 16  # 8-byte header + 3 bytes, rounded to 8
    assert struct.unpack_from("<II", rb.data, 0) == (3, M.RINGBUF_DATA_PGOFF)
    rec = rb.reserve(5)
    assert rec is not None and struct.unpack_from("<I", rb.data, 16)[0] == 5 | M.BPF_RINGBUF_BUSY_BIT
    assert rb.consume() == [b"abc"]  # stops at the busy record
    rec.sample[:] = b"hello"
    rb.commit(rec, discard=True)
    assert struct.unpack_from("<I", rb.data, 16)[0] == 5 | M.BPF_RINGBUF_DISCARD_BIT
    assert rb.consume() == [] and rb.consumer_pos == rb.producer_pos == 32
    assert rb.output(b"x", flags=4) == -E.EINVAL


def test_ringbuf_full_and_wraparound() -> None:
    rb = M.create_map(M.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096)
    assert isinstance(rb, M.RingBuf)
    assert rb.reserve(4089) is None  # larger than the ring minus a header
    big = bytes(range(256)) * 12  # 3072 bytes
    assert rb.output(big) == 0
    assert rb.output(big) == -E.EAGAIN  # would overrun the consumer
    assert rb.consume() == [big]
    assert rb.output(big[:2000]) == 0  # wraps past the end of the data area
    assert rb.consume() == [big[:2000]]
    assert rb.query(0) == 0 and rb.query(1) == 4096


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.binary(min_size=0, max_size=700), st.none()), max_size=40))
def test_ringbuf_delivers_every_accepted_sample_in_order(items: list[bytes | None]) -> None:
    rb = M.create_map(M.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096)
    assert isinstance(rb, M.RingBuf)
    sent: list[bytes] = []
    got: list[bytes] = []
    for item in items:
        if item is None:
            got += rb.consume()
        elif rb.output(item) == 0:
            sent.append(item)
        assert rb.producer_pos % 8 == 0 and rb.producer_pos - rb.consumer_pos <= 4096
    got += rb.consume()
    assert got == sent


# --- fd arrays -------------------------------------------------------------------------------------------
def test_fd_array_rules() -> None:
    pa = M.create_map(M.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 2)
    assert err(lambda: pa.update(u32(0), u32(424242))) == E.EINVAL
    assert err(lambda: pa.update(u32(0), object(), M.BPF_NOEXIST)) == E.EINVAL
    assert err(lambda: pa.delete(u32(0))) == E.ENOENT
    assert err(lambda: pa.delete(u32(5))) == E.E2BIG
    dm = M.create_map(M.BPF_MAP_TYPE_DEVMAP, 4, 8, 2, ifindex_ok=lambda i: i in (1, 2))
    dm.update(u32(0), u32(2) + u32(0))
    assert dm.lookup(u32(0)) == u32(2) + u32(0)
    assert err(lambda: dm.update(u32(1), u32(7) + u32(0))) == E.EINVAL
    assert err(lambda: dm.update(u32(1), u32(1) + u32(0), M.BPF_NOEXIST)) == E.EEXIST
    dm.delete(u32(1))  # deleting an empty devmap slot is fine
    xsk = M.create_map(M.BPF_MAP_TYPE_XSKMAP, 4, 4, 2)
    assert err(lambda: xsk.lookup(u32(0))) == E.EOPNOTSUPP
    sock = M.XskSocket()
    xsk.update(u32(0), sock)
    assert err(lambda: xsk.update(u32(0), sock, M.BPF_NOEXIST)) == E.EEXIST
    pe = M.create_map(M.BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, 2)
    assert err(lambda: pe.lookup(u32(0))) == M.ENOTSUPP
    assert err(lambda: pe.update(u32(0), sock)) == E.EBADF


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 20), st.booleans(),
       st.lists(st.tuples(st.sampled_from(["update", "delete", "ref"]), st.integers(0, 40), st.integers(0, 1)),
                max_size=80))
def test_lru_invariants(max_entries: int, percpu_lru: bool, ops: list[tuple[str, int, int]]) -> None:
    """Updates with BPF_ANY never fail while a CPU still owns nodes; the map never exceeds max_entries;
    every node is in exactly one list."""
    flags = M.BPF_F_NO_COMMON_LRU if percpu_lru else 0
    m = M.create_map(M.BPF_MAP_TYPE_LRU_HASH, 4, 4, max_entries, flags)
    assert isinstance(m, M.HashMap)
    for op, k, cpu in ops:
        m.user_cpu = cpu
        if op == "update":
            try:
                m.update(u32(k), u32(k))
            except M.MapError as exc:  # a per-CPU LRU whose CPU has no nodes at all
                assert percpu_lru and exc.errno == E.ENOMEM
            else:
                assert m.lookup(u32(k)) == u32(k)
        elif op == "delete":
            if u32(k) in m.elems:
                m.delete(u32(k))
        else:
            m.prog_lookup(u32(k), cpu)
        assert len(m.elems) <= m.max_entries
    seen: list[int] = []
    lists = m.lru_list.lists if percpu_lru else [m.lru_list.l]
    heads = [h for l in lists for h in l.heads.values()]
    if not percpu_lru:
        heads += [h for loc in m.lru_list.locals for h in (loc.free, loc.pending)]
    for head in heads:
        cur = head.next
        while cur is not head:
            seen.append(cur.elem)
            cur = cur.next
    assert sorted(seen) == sorted(set(seen)) and len(seen) == m.max_entries
    assert {el.off for el in m.elems.values()} <= set(seen)


def test_lru_steals_from_another_cpus_local_lists() -> None:
    m = M.create_map(M.BPF_MAP_TYPE_LRU_HASH, 4, 4, 4)
    assert isinstance(m, M.HashMap)
    for k in range(4):  # CPU 0 pulls target_free (1) node at a time into its local list
        m.update(u32(k), u32(k))
    m.user_cpu = 1
    m.update(u32(10), u32(10))  # CPU 1 has nothing local and the global lists are exhausted
    assert u32(10) in m.elems and len(m.elems) == 4
