"""eBPF maps with the kernel's create/update/lookup/delete/get_next_key semantics.

Each map type reproduces its kernel file:

* ``HashMap`` (HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH) -- kernel/bpf/hashtab.c.  Buckets
  are ``roundup_pow_of_two(max_entries)`` lists selected by
  ``jhash2``/``jhash`` of the key with ``hashrnd`` (0 with ``BPF_F_ZERO_SEED``;
  otherwise the ``hashrnd`` given at creation, a fixed constant by default,
  because the kernel's ``get_random_u32()`` is not reproducible).  New and
  replaced elements go to the *head* of their bucket (``hlist_nulls_add_head_rcu``),
  so ``get_next_key`` order is the kernel's order for the same seed.
* ``ArrayMap`` (ARRAY, PERCPU_ARRAY) -- kernel/bpf/arraymap.c.
* ``LpmTrie`` (LPM_TRIE) -- kernel/bpf/lpm_trie.c: longest-prefix lookup and the
  trie's post-order ``get_next_key`` (more specific prefixes before their
  parents, the 0 branch before the 1 branch).
* ``RingBuf`` (RINGBUF) -- kernel/bpf/ringbuf.c record layout and positions.
* ``FdArray`` (PROG_ARRAY, DEVMAP, XSKMAP, PERF_EVENT_ARRAY) -- arraymap.c's fd
  arrays, devmap.c, xskmap.c: slots holding Python objects.

Memory model.  A map's values live in one ``bytearray`` (``storage``), cut in
slots of ``round_up(value_size, 8)`` bytes (times ``ncpus`` for per-CPU maps,
CPU ``c`` of a slot at ``c * round_up(value_size, 8)``).  A running program
maps ``storage`` once into its address space, so ``bpf_map_lookup_elem``
returns an ordinary pointer into it; replacing a hash/LPM element takes a new
slot and frees the old one, as the kernel does, so a pointer obtained before
the update still reads the old value.  Bounds are checked per map, not per
element (the verifier's job in the kernel).

Per-CPU maps model ``ncpus`` possible CPUs (default :data:`DEFAULT_NCPUS`,
the count of this project's reference machine); a program runs on one CPU
chosen by its run environment.  From userspace a per-CPU value is
``round_up(value_size, 8) * ncpus`` bytes, as ``bpf(2)`` expects.

LRU.  ``lru.py`` reproduces ``bpf_lru_list.c`` (common and per-CPU lists,
local free/pending lists, rotation, batched shrinking by ``target_free``), so
the eviction order is the kernel's for operations issued from known CPUs:
programs run on ``RunEnv.cpu``, userspace operations on ``map.user_cpu``
(default 0; the kernel uses whatever CPU the calling thread is on).

Errors.  Userspace-style methods (:meth:`BpfMap.lookup`, ``update``, ``delete``,
``get_next_key``) raise :class:`MapError` with the kernel errno; the
``prog_*`` methods used by helpers return ``-errno`` or an offset, never raise
for a missing key.  Creation errors follow each type's ``map_alloc_check``
and were checked against this machine's kernel (tests/bpf/test_kernel_differential.py).
"""
from __future__ import annotations

import errno as E
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from netstack.packet.jhash import jhash, jhash2

from . import lru as L
from .errors import BpfError, NotSupported

# enum bpf_map_type (include/uapi/linux/bpf.h)
BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_PROG_ARRAY = 3
BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4
BPF_MAP_TYPE_PERCPU_HASH = 5
BPF_MAP_TYPE_PERCPU_ARRAY = 6
BPF_MAP_TYPE_LRU_HASH = 9
BPF_MAP_TYPE_LRU_PERCPU_HASH = 10
BPF_MAP_TYPE_LPM_TRIE = 11
BPF_MAP_TYPE_DEVMAP = 14
BPF_MAP_TYPE_XSKMAP = 17
BPF_MAP_TYPE_RINGBUF = 27

# update flags
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
BPF_F_LOCK = 4

# map_flags
BPF_F_NO_PREALLOC = 1 << 0
BPF_F_NO_COMMON_LRU = 1 << 1
BPF_F_NUMA_NODE = 1 << 2
BPF_F_RDONLY = 1 << 3
BPF_F_WRONLY = 1 << 4
BPF_F_ZERO_SEED = 1 << 6
BPF_F_RDONLY_PROG = 1 << 7
BPF_F_WRONLY_PROG = 1 << 8
BPF_F_MMAPABLE = 1 << 10
BPF_F_PRESERVE_ELEMS = 1 << 11
BPF_F_INNER_MAP = 1 << 12
_ACCESS = BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG

ENOTSUPP = 524  # kernel-internal errno that bpf(2) does return (include/linux/errno.h)

DEFAULT_NCPUS = 2
DEFAULT_HASHRND = 0x5EED5EED
KMALLOC_MAX_SIZE = 1 << 22   # x86-64, 4 KiB pages, MAX_PAGE_ORDER 10
HTAB_ELEM_SIZE = 48          # sizeof(struct htab_elem) on x86-64 (key+value limit, measured)
PCPU_MIN_UNIT_SIZE = 32768
LPM_DATA_SIZE_MAX = 256
LPM_VAL_SIZE_MAX = KMALLOC_MAX_SIZE - LPM_DATA_SIZE_MAX - 24  # - sizeof(struct lpm_trie_node)
MODEL_MEMORY_LIMIT = 64 << 20  # our own cap on a map's storage: -ENOMEM beyond it
PAGE_SIZE = 4096

_U32 = struct.Struct("<I")


class MapError(BpfError):
    """A map operation failed with the kernel's ``errno`` (positive)."""

    def __init__(self, err: int, what: str = "") -> None:
        name = E.errorcode.get(err, "ENOTSUPP" if err == ENOTSUPP else str(err))
        super().__init__(f"{name}" + (f": {what}" if what else ""))
        self.errno = err


def _round8(n: int) -> int:
    return (n + 7) & ~7


def _roundup_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _check_access_flags(flags: int) -> None:
    """``bpf_map_flags_access_ok``: RDONLY/WRONLY (and the _PROG pair) are exclusive."""
    if (flags & (BPF_F_RDONLY | BPF_F_WRONLY)) == (BPF_F_RDONLY | BPF_F_WRONLY) or \
            (flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)) == (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG):
        raise MapError(E.EINVAL, "conflicting access flags")


class BpfMap:
    """Common attributes and the userspace access checks of ``kernel/bpf/syscall.c``."""

    map_type: int = 0
    #: True when programs get pointers into ``storage`` from lookups.
    has_values = True

    def __init__(self, key_size: int, value_size: int, max_entries: int, map_flags: int, ncpus: int) -> None:
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.map_flags = map_flags
        self.ncpus = ncpus
        self.storage = bytearray()
        self.name = ""
        self.fd = -1  # set when registered in FD_TABLE (netstack.bpf.progs.new_map)

    # -- userspace access checks (syscall.c: FMODE_CAN_READ / FMODE_CAN_WRITE) ---------------
    def _can_read(self) -> None:
        if self.map_flags & BPF_F_WRONLY:
            raise MapError(E.EPERM, "map is write-only from userspace")

    def _can_write(self) -> None:
        if self.map_flags & BPF_F_RDONLY:
            raise MapError(E.EPERM, "map is read-only from userspace")

    def _key(self, key: bytes) -> bytes:
        key = bytes(key)
        if len(key) != self.key_size:
            raise MapError(E.EINVAL, f"key must be {self.key_size} bytes, got {len(key)}")
        return key

    @property
    def user_value_size(self) -> int:
        """Bytes of a value as seen through bpf(2) (per-CPU maps: one rounded value per CPU)."""
        return _round8(self.value_size) * self.ncpus if self.percpu else self.value_size

    percpu = False

    def _uvalue(self, value: bytes) -> bytes:
        value = bytes(value)
        if len(value) != self.user_value_size:
            raise MapError(E.EINVAL, f"value must be {self.user_value_size} bytes, got {len(value)}")
        return value

    # -- the userspace API; subclasses implement the _ops ----------------------------------------
    def lookup(self, key: bytes) -> bytes:
        self._can_read()
        return self._lookup(self._key(key))

    def update(self, key: bytes, value: Any, flags: int = BPF_ANY) -> None:
        self._can_write()
        if flags & BPF_F_LOCK:  # syscall.c map_update_elem: F_LOCK needs a bpf_spin_lock in the value
            raise MapError(E.EINVAL, "BPF_F_LOCK without a bpf_spin_lock")
        self._update(self._key(key), value, flags)

    def delete(self, key: bytes) -> None:
        self._can_write()
        self._delete(self._key(key))

    def get_next_key(self, key: bytes | None) -> bytes:
        self._can_read()
        return self._get_next_key(None if key is None else self._key(key))

    def keys(self) -> Iterator[bytes]:
        """Iterate with get_next_key from NULL, as ``bpftool map dump`` does."""
        k: bytes | None = None
        while True:
            try:
                k = self.get_next_key(k)
            except MapError:
                return
            yield k

    def _lookup(self, key: bytes) -> bytes:
        raise NotImplementedError

    def _update(self, key: bytes, value: Any, flags: int) -> None:
        raise NotImplementedError

    def _delete(self, key: bytes) -> None:
        raise NotImplementedError

    def _get_next_key(self, key: bytes | None) -> bytes:
        raise NotImplementedError

    # -- the program API (helpers) ---------------------------------------------------------------
    def prog_lookup(self, key: bytes, cpu: int) -> int | None:
        """Offset in ``storage`` of the value a program sees, or None (NULL)."""
        raise NotSupported(f"bpf_map_lookup_elem on map type {self.map_type}")

    def prog_update(self, key: bytes, value: bytes, flags: int, cpu: int) -> int:
        """0 or -errno, as the helper returns."""
        raise NotSupported(f"bpf_map_update_elem on map type {self.map_type}")

    def prog_delete(self, key: bytes) -> int:
        raise NotSupported(f"bpf_map_delete_elem on map type {self.map_type}")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(type={self.map_type}, key={self.key_size}, value={self.value_size}, "
                f"max_entries={self.max_entries}, flags=0x{self.map_flags:x})")


# ================================================================================================
# Slot storage shared by hash maps and the LPM trie
# ================================================================================================

class _Slots:
    """Value slots in a growing bytearray; freed slots are reused last-in first-out."""

    def __init__(self, storage: bytearray, slot_size: int, nslots: int) -> None:
        self.storage = storage
        self.slot_size = slot_size
        self.nslots = nslots
        self.free: list[int] = []
        self.used = 0  # slots handed out so far (storage grows lazily up to nslots)

    def alloc(self) -> int:
        if self.free:
            return self.free.pop()
        if self.used >= self.nslots:
            raise MapError(E.E2BIG, "no free element")
        idx = self.used
        self.used += 1
        self.storage.extend(bytes(self.slot_size))
        return idx * self.slot_size

    def release(self, off: int) -> None:
        self.free.append(off)


# ================================================================================================
# Hash maps
# ================================================================================================

@dataclass
class _Elem:
    key: bytes
    off: int
    node: L.Node | None = None  # LRU maps: the element's bpf_lru_node


class HashMap(BpfMap):
    """HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH (kernel/bpf/hashtab.c)."""

    def __init__(self, map_type: int, key_size: int, value_size: int, max_entries: int, map_flags: int,
                 ncpus: int, hashrnd: int) -> None:
        super().__init__(key_size, value_size, max_entries, map_flags, ncpus)
        self.map_type = map_type
        self.percpu = map_type in (BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_LRU_PERCPU_HASH)
        self.lru = map_type in (BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_LRU_PERCPU_HASH)
        self.hashrnd = 0 if map_flags & BPF_F_ZERO_SEED else hashrnd & 0xFFFFFFFF
        self.n_buckets = _roundup_pow2(max_entries)
        self.buckets: list[list[_Elem]] = [[] for _ in range(self.n_buckets)]
        self.elems: dict[bytes, _Elem] = {}
        self.rvs = _round8(value_size)
        slot = self.rvs * (ncpus if self.percpu else 1)
        self.user_cpu = 0
        if self.lru:
            if map_flags & BPF_F_NO_COMMON_LRU:  # every CPU gets the same number of nodes
                rounded = -(-max_entries // ncpus) * ncpus
                self.max_entries = rounded if rounded <= 0xFFFFFFFF else max_entries // ncpus * ncpus
            self.storage.extend(bytes(slot * self.max_entries))
            self.by_off: dict[int, _Elem] = {}
            nodes = [L.Node(i * slot) for i in range(self.max_entries)]
            self.lru_list = L.BpfLru(nodes, ncpus, bool(map_flags & BPF_F_NO_COMMON_LRU), self._del_from_htab)
        # Replacing an element of a plain hash needs one extra element (htab->extra_elems).
        extra = 0 if (self.percpu or self.lru) else 1
        self.slots = _Slots(self.storage, slot, max_entries + extra)

    # -- hashing ----------------------------------------------------------------------------
    def hash(self, key: bytes) -> int:
        """``htab_map_hash``: jhash2 over u32 words when the key is a multiple of 4 bytes."""
        if len(key) % 4 == 0:
            return jhash2(struct.unpack(f"<{len(key) // 4}I", key), self.hashrnd)
        return jhash(key, self.hashrnd)

    def _bucket(self, key: bytes) -> list[_Elem]:
        return self.buckets[self.hash(key) & (self.n_buckets - 1)]

    # -- element list maintenance -------------------------------------------------------------
    def _link(self, el: _Elem) -> None:
        self._bucket(el.key).insert(0, el)
        self.elems[el.key] = el
        if self.lru:
            self.by_off[el.off] = el

    def _unlink(self, el: _Elem) -> None:
        self._bucket(el.key).remove(el)
        del self.elems[el.key]
        if self.lru:
            del self.by_off[el.off]

    def _del_from_htab(self, node: L.Node) -> bool:
        """``htab_lru_map_delete_node``: the LRU evicts the element owning ``node``."""
        el = self.by_off.get(node.elem)
        if el is None or el.node is not node:
            return False
        self._unlink(el)
        return True

    @staticmethod
    def _check_flags(old: _Elem | None, flags: int) -> int:
        """hashtab.c ``check_flags``."""
        if old is not None and (flags & ~BPF_F_LOCK) == BPF_NOEXIST:
            return -E.EEXIST
        if old is None and (flags & ~BPF_F_LOCK) == BPF_EXIST:
            return -E.ENOENT
        return 0

    def _write_value(self, off: int, value: bytes, onallcpus: bool, cpu: int, fresh: bool) -> None:
        st = self.storage
        if not self.percpu:
            st[off:off + self.value_size] = value[:self.value_size]
            return
        if onallcpus:
            for c in range(self.ncpus):
                src = value[c * self.rvs:(c + 1) * self.rvs]
                st[off + c * self.rvs:off + (c + 1) * self.rvs] = src.ljust(self.rvs, b"\0")
        else:
            if fresh:  # pcpu_init_value: other CPUs start zeroed
                st[off:off + self.rvs * self.ncpus] = bytes(self.rvs * self.ncpus)
            st[off + cpu * self.rvs:off + cpu * self.rvs + self.value_size] = value[:self.value_size]

    def _do_update(self, key: bytes, value: bytes, flags: int, onallcpus: bool, cpu: int) -> int:
        if self.lru or self.percpu:
            if flags > BPF_EXIST:
                return -E.EINVAL
        elif (flags & ~BPF_F_LOCK) > BPF_EXIST:
            return -E.EINVAL
        if flags & BPF_F_LOCK:
            return -E.EINVAL  # no bpf_spin_lock in the value (no BTF here)
        if self.lru and self.percpu:  # __htab_lru_percpu_map_update_elem: values updated in place
            node = None
            if flags != BPF_EXIST:
                node = self.lru_list.pop_free(cpu)
                if node is None:
                    return -E.ENOMEM
            old = self.elems.get(key)
            err = self._check_flags(old, flags)
            if not err and old is not None:
                assert old.node is not None
                L.BpfLru.set_ref(old.node)
                self._write_value(old.off, value, onallcpus, cpu, False)
            elif not err:
                assert node is not None
                self._write_value(node.elem, value, onallcpus, cpu, True)
                self._link(_Elem(key, node.elem, node))
                node = None
            if node is not None:
                self.lru_list.push_free(node)
            return err
        if self.lru:  # htab_lru_map_update_elem: take a node first (this may evict), then check
            node = self.lru_list.pop_free(cpu)
            if node is None:
                return -E.ENOMEM
            old = self.elems.get(key)
            err = self._check_flags(old, flags)
            if err:
                self.lru_list.push_free(node)
                return err
            self._write_value(node.elem, value, onallcpus, cpu, True)
            if old is not None:
                L.BpfLru.set_ref(node)
                self._unlink(old)
                assert old.node is not None
                self.lru_list.push_free(old.node)
            self._link(_Elem(key, node.elem, node))
            return 0
        old = self.elems.get(key)
        err = self._check_flags(old, flags)
        if err:
            return err
        if self.percpu and old is not None:  # per-CPU values are updated in place
            self._write_value(old.off, value, onallcpus, cpu, False)
            return 0
        if old is None and len(self.elems) >= self.max_entries:
            return -E.E2BIG
        try:
            off = self.slots.alloc()
        except MapError as exc:
            return -exc.errno
        self._write_value(off, value, onallcpus, cpu, True)
        if old is not None:
            self._unlink(old)
            self.slots.release(old.off)
        self._link(_Elem(key, off))
        return 0

    # -- userspace ---------------------------------------------------------------------------
    def _lookup(self, key: bytes) -> bytes:
        el = self.elems.get(key)
        if el is None:
            raise MapError(E.ENOENT)
        if self.percpu:
            return bytes(self.storage[el.off:el.off + self.rvs * self.ncpus])
        return bytes(self.storage[el.off:el.off + self.value_size])

    def _update(self, key: bytes, value: Any, flags: int) -> None:
        err = self._do_update(key, self._uvalue(value), flags, True, self.user_cpu)
        if err:
            raise MapError(-err)

    def _delete(self, key: bytes) -> None:
        err = self.prog_delete(key)
        if err:
            raise MapError(-err)

    def _get_next_key(self, key: bytes | None) -> bytes:
        i = 0
        if key is not None and key in self.elems:
            bucket = self._bucket(key)
            pos = next(n for n, el in enumerate(bucket) if el.key == key)
            if pos + 1 < len(bucket):
                return bucket[pos + 1].key
            i = (self.hash(key) & (self.n_buckets - 1)) + 1
        for b in range(i, self.n_buckets):
            if self.buckets[b]:
                return self.buckets[b][0].key
        raise MapError(E.ENOENT)

    # -- programs ----------------------------------------------------------------------------
    def prog_lookup(self, key: bytes, cpu: int) -> int | None:
        el = self.elems.get(key)
        if el is None:
            return None
        if el.node is not None:
            L.BpfLru.set_ref(el.node)
        return el.off + (cpu * self.rvs if self.percpu else 0)

    def prog_update(self, key: bytes, value: bytes, flags: int, cpu: int) -> int:
        return self._do_update(key, value, flags, False, cpu)

    def prog_delete(self, key: bytes) -> int:
        el = self.elems.get(key)
        if el is None:
            return -E.ENOENT
        self._unlink(el)
        if el.node is not None:
            self.lru_list.push_free(el.node)
        else:
            self.slots.release(el.off)
        return 0


# ================================================================================================
# Arrays
# ================================================================================================

class ArrayMap(BpfMap):
    """ARRAY and PERCPU_ARRAY (kernel/bpf/arraymap.c): zero-filled, u32 index keys."""

    def __init__(self, map_type: int, value_size: int, max_entries: int, map_flags: int, ncpus: int) -> None:
        super().__init__(4, value_size, max_entries, map_flags, ncpus)
        self.map_type = map_type
        self.percpu = map_type == BPF_MAP_TYPE_PERCPU_ARRAY
        self.rvs = _round8(value_size)
        self.elem = self.rvs * (ncpus if self.percpu else 1)
        self.storage.extend(bytes(self.elem * max_entries))

    def _index(self, key: bytes) -> int:
        return _U32.unpack(key)[0]

    def _lookup(self, key: bytes) -> bytes:
        i = self._index(key)
        if i >= self.max_entries:
            raise MapError(E.ENOENT)
        off = i * self.elem
        return bytes(self.storage[off:off + (self.elem if self.percpu else self.value_size)])

    def _set(self, key: bytes, value: bytes, flags: int, onallcpus: bool, cpu: int) -> int:
        if (flags & ~BPF_F_LOCK) > BPF_EXIST:
            return -E.EINVAL
        i = self._index(key)
        if i >= self.max_entries:
            return -E.E2BIG
        if flags & BPF_NOEXIST:
            return -E.EEXIST  # all elements already exist
        if flags & BPF_F_LOCK:
            return -E.EINVAL  # no bpf_spin_lock in the value
        off = i * self.elem
        st = self.storage
        if self.percpu and onallcpus:
            for c in range(self.ncpus):
                st[off + c * self.rvs:off + (c + 1) * self.rvs] = value[c * self.rvs:(c + 1) * self.rvs]
        else:
            off += cpu * self.rvs if self.percpu else 0
            st[off:off + self.value_size] = value[:self.value_size]
        return 0

    def _update(self, key: bytes, value: Any, flags: int) -> None:
        err = self._set(key, self._uvalue(value), flags, True, 0)
        if err:
            raise MapError(-err)

    def _delete(self, key: bytes) -> None:
        raise MapError(E.EINVAL, "array elements cannot be deleted")

    def _get_next_key(self, key: bytes | None) -> bytes:
        i = self.max_entries if key is None else self._index(key)
        if i >= self.max_entries:
            return _U32.pack(0)
        if i == self.max_entries - 1:
            raise MapError(E.ENOENT)
        return _U32.pack(i + 1)

    def prog_lookup(self, key: bytes, cpu: int) -> int | None:
        i = self._index(key)
        if i >= self.max_entries:
            return None
        return i * self.elem + (cpu * self.rvs if self.percpu else 0)

    def prog_update(self, key: bytes, value: bytes, flags: int, cpu: int) -> int:
        return self._set(key, value, flags, False, cpu)

    def prog_delete(self, key: bytes) -> int:
        return -E.EINVAL


# ================================================================================================
# LPM trie
# ================================================================================================

@dataclass
class _LpmNode:
    prefixlen: int
    raw: bytes    # the data bytes as last written (returned by get_next_key)
    off: int


class LpmTrie(BpfMap):
    """LPM_TRIE (kernel/bpf/lpm_trie.c).  Key: ``u32 prefixlen`` (host order) + data (network order)."""

    map_type = BPF_MAP_TYPE_LPM_TRIE

    def __init__(self, key_size: int, value_size: int, max_entries: int, map_flags: int, ncpus: int) -> None:
        super().__init__(key_size, value_size, max_entries, map_flags, ncpus)
        self.data_size = key_size - 4
        self.max_prefixlen = 8 * self.data_size
        self.nodes: dict[tuple[int, int], _LpmNode] = {}
        self.lens: dict[int, int] = {}  # prefixlen -> number of nodes with it
        self.slots = _Slots(self.storage, _round8(value_size), max_entries + 1)

    def _split(self, key: bytes) -> tuple[int, int, bytes]:
        plen = _U32.unpack_from(key)[0]
        data = key[4:]
        return plen, int.from_bytes(data, "big"), data

    def _masked(self, bits: int, plen: int) -> int:
        shift = self.max_prefixlen - plen
        return (bits >> shift) << shift

    def _match(self, key: bytes) -> _LpmNode | None:
        plen, bits, _ = self._split(key)
        if plen > self.max_prefixlen:
            return None
        for length in sorted((n for n in self.lens if n <= plen), reverse=True):
            node = self.nodes.get((length, self._masked(bits, length)))
            if node is not None:
                return node
        return None

    def _lookup(self, key: bytes) -> bytes:
        node = self._match(key)
        if node is None:
            raise MapError(E.ENOENT)
        return bytes(self.storage[node.off:node.off + self.value_size])

    def _set(self, key: bytes, value: bytes, flags: int) -> int:
        if flags > BPF_EXIST:
            return -E.EINVAL
        plen, bits, data = self._split(key)
        if plen > self.max_prefixlen:
            return -E.EINVAL
        ident = (plen, self._masked(bits, plen))
        old = self.nodes.get(ident)
        if old is not None and flags == BPF_NOEXIST:
            return -E.EEXIST
        if old is None and flags == BPF_EXIST:
            return -E.ENOENT
        if old is None and len(self.nodes) >= self.max_entries:
            return -E.ENOSPC
        off = self.slots.alloc()
        self.storage[off:off + self.value_size] = value[:self.value_size]
        if old is not None:
            self.slots.release(old.off)
        else:
            self.lens[plen] = self.lens.get(plen, 0) + 1
        self.nodes[ident] = _LpmNode(plen, data, off)
        return 0

    def _update(self, key: bytes, value: Any, flags: int) -> None:
        err = self._set(key, self._uvalue(value), flags)
        if err:
            raise MapError(-err)

    def _delete(self, key: bytes) -> None:
        err = self.prog_delete(key)
        if err:
            raise MapError(-err)

    def _order(self) -> list[tuple[int, int]]:
        """Post-order of the trie: descendants before a prefix, the 0 branch before the 1 branch."""
        def sort_key(ident: tuple[int, int]) -> str:
            plen, bits = ident
            path = format(bits >> (self.max_prefixlen - plen), f"0{plen}b") if plen else ""
            return path + "2"
        return sorted(self.nodes, key=sort_key)

    def _get_next_key(self, key: bytes | None) -> bytes:
        order = self._order()
        if not order:
            raise MapError(E.ENOENT)
        nxt = 0
        if key is not None:
            plen, bits, _ = self._split(key)
            ident = (plen, self._masked(bits, plen)) if plen <= self.max_prefixlen else None
            if ident in self.nodes:
                nxt = order.index(ident) + 1
                if nxt == len(order):
                    raise MapError(E.ENOENT)
        node = self.nodes[order[nxt]]
        return _U32.pack(node.prefixlen) + node.raw

    def prog_lookup(self, key: bytes, cpu: int) -> int | None:
        node = self._match(key)
        return None if node is None else node.off

    def prog_update(self, key: bytes, value: bytes, flags: int, cpu: int) -> int:
        return self._set(key, value, flags)

    def prog_delete(self, key: bytes) -> int:
        plen, bits, _ = self._split(key)
        if plen > self.max_prefixlen:
            return -E.EINVAL
        node = self.nodes.pop((plen, self._masked(bits, plen)), None)
        if node is None:
            return -E.ENOENT
        self.slots.release(node.off)
        self.lens[plen] -= 1
        if not self.lens[plen]:
            del self.lens[plen]
        return 0


# ================================================================================================
# Ring buffer
# ================================================================================================

BPF_RINGBUF_BUSY_BIT = 1 << 31
BPF_RINGBUF_DISCARD_BIT = 1 << 30
BPF_RINGBUF_HDR_SZ = 8
BPF_RB_NO_WAKEUP = 1
BPF_RB_FORCE_WAKEUP = 2
# struct bpf_ringbuf: header page, consumer_pos page, producer_pos(+pending_pos) page, data.
RINGBUF_DATA_PGOFF = 3


@dataclass
class RingRecord:
    """A reservation handed to a program: its header position and its sample buffer."""

    pos: int
    size: int
    sample: bytearray = field(default_factory=bytearray)
    done: bool = False


class RingBuf(BpfMap):
    """RINGBUF (kernel/bpf/ringbuf.c).

    ``data`` is the ring of ``max_entries`` bytes; positions are free-running
    u64 counters (``consumer_pos``, ``producer_pos``, ``pending_pos``).  A record
    is an 8-byte header -- ``u32 len`` with BUSY (bit 31) while reserved and
    DISCARD (bit 30) if discarded, then ``u32 pg_off``, the page offset of the
    header from the start of ``struct bpf_ringbuf`` -- followed by the sample,
    padded to 8 bytes.  :meth:`consume` is libbpf's ``ringbuf_process_ring``.
    """

    map_type = BPF_MAP_TYPE_RINGBUF
    has_values = False

    def __init__(self, max_entries: int, map_flags: int, ncpus: int) -> None:
        super().__init__(0, 0, max_entries, map_flags, ncpus)
        self.data = bytearray(max_entries)
        self.mask = max_entries - 1
        self.consumer_pos = 0
        self.producer_pos = 0
        self.pending: list[RingRecord] = []  # reserved, not yet committed, in position order
        self.wakeups = 0

    # -- ring bytes ---------------------------------------------------------------------------
    def _put(self, pos: int, blob: bytes) -> None:
        start = pos & self.mask
        first = min(len(blob), self.max_entries - start)
        self.data[start:start + first] = blob[:first]
        if first < len(blob):
            self.data[0:len(blob) - first] = blob[first:]

    def _get(self, pos: int, n: int) -> bytes:
        start = pos & self.mask
        first = min(n, self.max_entries - start)
        out = bytes(self.data[start:start + first])
        return out + bytes(self.data[0:n - first]) if first < n else out

    def _hdr(self, pos: int, length: int) -> bytes:
        pg_off = RINGBUF_DATA_PGOFF + ((pos & self.mask) >> 12)
        return struct.pack("<II", length, pg_off)

    @property
    def pending_pos(self) -> int:
        return self.pending[0].pos if self.pending else self.producer_pos

    # -- program side -------------------------------------------------------------------------
    def reserve(self, size: int) -> RingRecord | None:
        """``__bpf_ringbuf_reserve``: None when the record does not fit."""
        if size > self.max_entries - BPF_RINGBUF_HDR_SZ:
            return None
        total = _round8(size + BPF_RINGBUF_HDR_SZ)
        pos = self.producer_pos
        new_prod = pos + total
        if new_prod - self.consumer_pos > self.mask or new_prod - self.pending_pos > self.mask:
            return None
        self._put(pos, self._hdr(pos, size | BPF_RINGBUF_BUSY_BIT))
        self.producer_pos = new_prod
        rec = RingRecord(pos, size, bytearray(size))
        self.pending.append(rec)
        return rec

    def commit(self, rec: RingRecord, discard: bool, flags: int = 0) -> None:
        """``bpf_ringbuf_commit``: write the sample, clear BUSY (set DISCARD), count a wakeup."""
        if rec.done:
            raise MapError(E.EINVAL, "record already committed")
        rec.done = True
        self._put(rec.pos + BPF_RINGBUF_HDR_SZ, bytes(rec.sample))
        length = rec.size | (BPF_RINGBUF_DISCARD_BIT if discard else 0)
        self._put(rec.pos, self._hdr(rec.pos, length))
        self.pending.remove(rec)
        if flags & BPF_RB_FORCE_WAKEUP or (not flags & BPF_RB_NO_WAKEUP and self.consumer_pos == rec.pos):
            self.wakeups += 1

    def output(self, data: bytes, flags: int = 0) -> int:
        """``bpf_ringbuf_output``: 0, -EINVAL for bad flags, -EAGAIN when full."""
        if flags & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP):
            return -E.EINVAL
        rec = self.reserve(len(data))
        if rec is None:
            return -E.EAGAIN
        rec.sample[:] = data
        self.commit(rec, False, flags)
        return 0

    # -- userspace --------------------------------------------------------------------------------
    def consume(self) -> list[bytes]:
        """Read committed samples from ``consumer_pos`` (skipping discarded ones); stop at a busy one."""
        out: list[bytes] = []
        while self.consumer_pos < self.producer_pos:
            length, _pg = struct.unpack("<II", self._get(self.consumer_pos, 8))
            if length & BPF_RINGBUF_BUSY_BIT:
                break
            size = length & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)
            if not length & BPF_RINGBUF_DISCARD_BIT:
                out.append(self._get(self.consumer_pos + BPF_RINGBUF_HDR_SZ, size))
            self.consumer_pos += _round8(size + BPF_RINGBUF_HDR_SZ)
        return out

    def query(self, what: int) -> int:
        """``bpf_ringbuf_query``: 0 avail data, 1 ring size, 2 consumer pos, 3 producer pos."""
        return {0: self.producer_pos - self.consumer_pos, 1: self.max_entries,
                2: self.consumer_pos, 3: self.producer_pos}.get(what, 0)

    def _lookup(self, key: bytes) -> bytes:
        raise MapError(E.EINVAL)

    def _update(self, key: bytes, value: Any, flags: int) -> None:
        raise MapError(E.EINVAL)

    def _delete(self, key: bytes) -> None:
        raise MapError(E.EINVAL)

    def _get_next_key(self, key: bytes | None) -> bytes:
        raise MapError(ENOTSUPP)

    def _key(self, key: bytes) -> bytes:
        return bytes(key)


# ================================================================================================
# fd arrays: prog_array, devmap, xskmap, perf_event_array
# ================================================================================================

#: Userspace file descriptors known to the model: fd -> object (Program, XskSocket, PerfEvent).
FD_TABLE: dict[int, object] = {}


class XskSocket:
    """Stand-in for an AF_XDP socket placed in an XSKMAP: records redirected frames."""

    def __init__(self, name: str = "xsk") -> None:
        self.name = name
        self.rx: list[bytes] = []


class PerfEvent:
    """Stand-in for a perf event fd in a PERF_EVENT_ARRAY: records output samples."""

    def __init__(self, name: str = "perf") -> None:
        self.name = name
        self.samples: list[bytes] = []


class FdArray(BpfMap):
    """PROG_ARRAY, DEVMAP, XSKMAP and PERF_EVENT_ARRAY: u32 index -> object."""

    has_values = False

    def __init__(self, map_type: int, value_size: int, max_entries: int, map_flags: int, ncpus: int,
                 ifindex_ok: Callable[[int], bool] | None = None) -> None:
        super().__init__(4, value_size, max_entries, map_flags, ncpus)
        self.map_type = map_type
        self.slots: list[Any] = [None] * max_entries
        self.ifindex_ok = ifindex_ok
        if map_type == BPF_MAP_TYPE_DEVMAP:  # programs may look up struct bpf_devmap_val
            self.has_values = True
            self.storage.extend(bytes(_round8(value_size) * max_entries))

    def _index(self, key: bytes) -> int:
        return _U32.unpack(key)[0]

    def _resolve(self, value: Any) -> Any:
        """bytes -> the object behind the fd (kernel ``map_fd_get_ptr``), with the kernel's errno."""
        t = self.map_type
        if not isinstance(value, (bytes, bytearray)):
            obj = value
        else:
            if len(value) != self.value_size:
                raise MapError(E.EINVAL, f"value must be {self.value_size} bytes")
            fd = _U32.unpack_from(value)[0]
            obj = FD_TABLE.get(fd)
            if obj is None:
                raise MapError({BPF_MAP_TYPE_XSKMAP: E.ENOTSOCK, BPF_MAP_TYPE_PERF_EVENT_ARRAY: E.EBADF}
                               .get(t, E.EINVAL), f"fd {fd} is not usable here")
        want = {BPF_MAP_TYPE_XSKMAP: XskSocket, BPF_MAP_TYPE_PERF_EVENT_ARRAY: PerfEvent}.get(t)
        if want is not None and not isinstance(obj, want):
            raise MapError(E.ENOTSOCK if t == BPF_MAP_TYPE_XSKMAP else E.EBADF, f"not a {want.__name__}")
        if t == BPF_MAP_TYPE_PROG_ARRAY and not hasattr(obj, "prog_type"):
            raise MapError(E.EINVAL, "not a program")
        return obj

    def _lookup(self, key: bytes) -> bytes:
        t = self.map_type
        if t == BPF_MAP_TYPE_XSKMAP:
            raise MapError(E.EOPNOTSUPP)
        if t == BPF_MAP_TYPE_PERF_EVENT_ARRAY:
            raise MapError(ENOTSUPP)
        i = self._index(key)
        if i >= self.max_entries or self.slots[i] is None:
            raise MapError(E.ENOENT)
        if t == BPF_MAP_TYPE_DEVMAP:
            off = i * _round8(self.value_size)
            return bytes(self.storage[off:off + self.value_size])
        return _U32.pack(getattr(self.slots[i], "prog_id", 0))  # prog_array: the program's id

    def _update(self, key: bytes, value: Any, flags: int) -> None:
        t, i = self.map_type, self._index(key)
        if t == BPF_MAP_TYPE_DEVMAP:
            self._devmap_update(i, value, flags)
            return
        if t in (BPF_MAP_TYPE_PROG_ARRAY, BPF_MAP_TYPE_PERF_EVENT_ARRAY):
            if flags != BPF_ANY:
                raise MapError(E.EINVAL)
            if i >= self.max_entries:
                raise MapError(E.E2BIG)
        else:  # xsk_map_update_elem
            if flags > BPF_EXIST:
                raise MapError(E.EINVAL)
            if i >= self.max_entries:
                raise MapError(E.E2BIG)
        obj = self._resolve(value)
        if t == BPF_MAP_TYPE_XSKMAP:
            if self.slots[i] is not None and flags == BPF_NOEXIST:
                raise MapError(E.EEXIST)
            if self.slots[i] is None and flags == BPF_EXIST:
                raise MapError(E.ENOENT)
        self.slots[i] = obj

    def _devmap_update(self, i: int, value: Any, flags: int) -> None:
        """devmap.c ``__dev_map_update_elem``: value is ``{u32 ifindex; [u32 prog_fd]}``."""
        if flags > BPF_EXIST:
            raise MapError(E.EINVAL)
        if i >= self.max_entries:
            raise MapError(E.E2BIG)
        if flags == BPF_NOEXIST:
            raise MapError(E.EEXIST)
        value = bytes(value)
        if len(value) != self.value_size:
            raise MapError(E.EINVAL, f"value must be {self.value_size} bytes")
        ifindex = _U32.unpack_from(value)[0]
        prog_fd = _U32.unpack_from(value, 4)[0] if self.value_size >= 8 else 0
        off = i * _round8(self.value_size)
        if not ifindex:
            if self.value_size >= 8 and 0 < prog_fd < 0x80000000:
                raise MapError(E.EINVAL, "prog fd without ifindex")
            self.slots[i] = None
            self.storage[off:off + self.value_size] = bytes(self.value_size)
            return
        if self.value_size >= 8 and prog_fd not in (0, 0xFFFFFFFF):
            raise NotSupported("devmap entries with a program (bpf_devmap_val.bpf_prog)")
        if self.ifindex_ok is not None and not self.ifindex_ok(ifindex):
            raise MapError(E.EINVAL, f"no device with ifindex {ifindex}")
        self.slots[i] = ifindex
        self.storage[off:off + self.value_size] = _U32.pack(ifindex) + bytes(self.value_size - 4)

    def _delete(self, key: bytes) -> None:
        err = self.prog_delete(key)
        if err:
            raise MapError(-err)

    def _get_next_key(self, key: bytes | None) -> bytes:
        i = self.max_entries if key is None else self._index(key)
        if i >= self.max_entries:
            return _U32.pack(0)
        if i == self.max_entries - 1:
            raise MapError(E.ENOENT)
        return _U32.pack(i + 1)

    def prog_lookup(self, key: bytes, cpu: int) -> int | None:
        if self.map_type != BPF_MAP_TYPE_DEVMAP:
            raise NotSupported(f"bpf_map_lookup_elem on map type {self.map_type}")
        i = self._index(key)
        if i >= self.max_entries or self.slots[i] is None:
            return None
        return i * _round8(self.value_size)

    def prog_delete(self, key: bytes) -> int:
        t, i = self.map_type, self._index(key)
        if t in (BPF_MAP_TYPE_PROG_ARRAY, BPF_MAP_TYPE_PERF_EVENT_ARRAY):
            if i >= self.max_entries:
                return -E.E2BIG
            if self.slots[i] is None:
                return -E.ENOENT
        elif i >= self.max_entries:
            return -E.EINVAL
        self.slots[i] = None
        if t == BPF_MAP_TYPE_DEVMAP:
            off = i * _round8(self.value_size)
            self.storage[off:off + self.value_size] = bytes(self.value_size)
        return 0

    def get(self, index: int) -> Any:
        """The object in slot ``index`` (None if empty or out of range)."""
        return self.slots[index] if 0 <= index < self.max_entries else None


# ================================================================================================
# Creation
# ================================================================================================

_ALLOWED_FLAGS = {
    BPF_MAP_TYPE_HASH: BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | BPF_F_ZERO_SEED | _ACCESS,
    BPF_MAP_TYPE_LRU_HASH: BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE | BPF_F_ZERO_SEED | _ACCESS,
    BPF_MAP_TYPE_PERCPU_HASH: BPF_F_NO_PREALLOC | BPF_F_ZERO_SEED | _ACCESS,
    BPF_MAP_TYPE_LRU_PERCPU_HASH: BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_ZERO_SEED | _ACCESS,
    BPF_MAP_TYPE_ARRAY: BPF_F_NUMA_NODE | _ACCESS | BPF_F_MMAPABLE | BPF_F_INNER_MAP,
    BPF_MAP_TYPE_PERCPU_ARRAY: _ACCESS,
    BPF_MAP_TYPE_LPM_TRIE: BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | _ACCESS,
    BPF_MAP_TYPE_RINGBUF: BPF_F_NUMA_NODE,
    BPF_MAP_TYPE_PROG_ARRAY: BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY,
    BPF_MAP_TYPE_DEVMAP: BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY,
    BPF_MAP_TYPE_XSKMAP: BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY,
    BPF_MAP_TYPE_PERF_EVENT_ARRAY: BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_PRESERVE_ELEMS,
}


def create_map(map_type: int, key_size: int, value_size: int, max_entries: int, map_flags: int = 0, *,
               ncpus: int = DEFAULT_NCPUS, hashrnd: int = DEFAULT_HASHRND,
               ifindex_ok: Callable[[int], bool] | None = None, name: str = "") -> BpfMap:
    """``bpf(BPF_MAP_CREATE)``: validate like the type's ``map_alloc_check`` and build the map.

    Raises :class:`MapError` with the kernel's errno (EINVAL, E2BIG, ENOTSUPP, ENOMEM);
    map types not modelled raise :class:`NotSupported`.
    """
    if map_type not in _ALLOWED_FLAGS:
        raise NotSupported(f"map type {map_type}")
    if ncpus < 1:
        raise MapError(E.EINVAL, "ncpus must be >= 1")
    allowed = _ALLOWED_FLAGS[map_type]
    if map_type in (BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_LRU_PERCPU_HASH) and map_flags & BPF_F_NO_PREALLOC \
            and not map_flags & ~allowed:
        raise MapError(ENOTSUPP, "LRU maps are always preallocated")
    if map_flags & ~allowed:
        raise MapError(E.EINVAL, f"flags 0x{map_flags & ~allowed:x} not valid for map type {map_type}")
    _check_access_flags(map_flags)
    m: BpfMap
    if map_type in (BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_LRU_HASH,
                    BPF_MAP_TYPE_LRU_PERCPU_HASH):
        pcpu = map_type in (BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_LRU_PERCPU_HASH)
        if not key_size or not value_size or not max_entries:
            raise MapError(E.EINVAL, "key_size, value_size and max_entries must be non-zero")
        if key_size + value_size >= KMALLOC_MAX_SIZE - HTAB_ELEM_SIZE:
            raise MapError(E.E2BIG, "element too large")
        if pcpu and _round8(value_size) > PCPU_MIN_UNIT_SIZE:
            raise MapError(E.E2BIG, "per-CPU value too large")
        if max_entries > 1 << 31:
            raise MapError(E.E2BIG, "max_entries too large")
        _cap(_round8(value_size) * (ncpus if pcpu else 1) * (max_entries + 1))
        m = HashMap(map_type, key_size, value_size, max_entries, map_flags, ncpus, hashrnd)
    elif map_type in (BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY):
        if not max_entries or key_size != 4 or not value_size:
            raise MapError(E.EINVAL, "array maps need key_size 4 and non-zero value_size, max_entries")
        if value_size > 0x7FFFFFFF:
            raise MapError(E.E2BIG, "value too large")
        if map_type == BPF_MAP_TYPE_PERCPU_ARRAY and _round8(value_size) > PCPU_MIN_UNIT_SIZE:
            raise MapError(E.E2BIG, "per-CPU value too large")
        _cap(_round8(value_size) * (ncpus if map_type == BPF_MAP_TYPE_PERCPU_ARRAY else 1) * max_entries)
        m = ArrayMap(map_type, value_size, max_entries, map_flags, ncpus)
    elif map_type == BPF_MAP_TYPE_LPM_TRIE:
        if (not max_entries or not map_flags & BPF_F_NO_PREALLOC or not 5 <= key_size <= 4 + LPM_DATA_SIZE_MAX
                or not 1 <= value_size <= LPM_VAL_SIZE_MAX):
            raise MapError(E.EINVAL, "bad LPM trie attributes")
        _cap(_round8(value_size) * (max_entries + 1))
        m = LpmTrie(key_size, value_size, max_entries, map_flags, ncpus)
    elif map_type == BPF_MAP_TYPE_RINGBUF:
        if key_size or value_size or not max_entries or max_entries & (max_entries - 1) \
                or max_entries % PAGE_SIZE:
            raise MapError(E.EINVAL, "ring buffer size must be a power-of-2 multiple of the page size")
        _cap(max_entries)
        m = RingBuf(max_entries, map_flags, ncpus)
    else:
        sizes_ok = key_size == 4 and max_entries and (
            value_size in (4, 8) if map_type == BPF_MAP_TYPE_DEVMAP else value_size == 4)
        if not sizes_ok:
            raise MapError(E.EINVAL, "fd arrays need key_size 4, value_size 4 (devmap: 4 or 8)")
        m = FdArray(map_type, value_size, max_entries, map_flags, ncpus, ifindex_ok)
    m.name = name
    return m


def _cap(nbytes: int) -> None:
    if nbytes > MODEL_MEMORY_LIMIT:
        raise MapError(E.ENOMEM, f"map needs {nbytes} bytes, over the model's {MODEL_MEMORY_LIMIT} limit")
