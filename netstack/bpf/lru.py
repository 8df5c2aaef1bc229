"""The LRU lists behind LRU hash maps, as kernel/bpf/bpf_lru_list.c.

The kernel keeps, per map (common LRU) or per CPU (``BPF_F_NO_COMMON_LRU``),
an active, an inactive and a free list of preallocated nodes, plus -- for the
common LRU -- a per-CPU local free list and local pending list.  Nodes move
between them with ``list_move`` to the list head, scans walk from the tail,
and eviction (``__bpf_lru_list_shrink``) frees up to ``target_free`` nodes at a
time.  All of that is reproduced here with the same intrusive circular lists
(a sentinel head per list, ``list_add`` after the head), so for operations
issued from known CPUs the eviction order is the kernel's; what stays
non-deterministic in the kernel is only which CPU an operation runs on.

``target_free`` is ``clamp((nr_elems / num_possible_cpus()) / 2, 1,
LOCAL_FREE_TARGET)`` (6.16+), ``nr_scans`` is ``LOCAL_NR_SCANS`` (128); a
per-CPU LRU shrinks ``PERCPU_FREE_TARGET`` (4) nodes at a time and scans
``PERCPU_NR_SCANS`` (4) nodes.
"""
from __future__ import annotations

from typing import Callable

# enum bpf_lru_list_type
ACTIVE = 0
INACTIVE = 1
FREE = 2
LOCAL_FREE = 3
LOCAL_PENDING = 4

LOCAL_FREE_TARGET = 128
LOCAL_NR_SCANS = LOCAL_FREE_TARGET
PERCPU_FREE_TARGET = 4
PERCPU_NR_SCANS = PERCPU_FREE_TARGET


class Node:
    """``struct bpf_lru_node`` and its ``list_head``; ``elem`` is the owner's handle (a slot offset)."""

    __slots__ = ("prev", "next", "type", "ref", "cpu", "elem")

    def __init__(self, elem: int = -1, cpu: int = 0) -> None:
        self.prev: Node = self
        self.next: Node = self
        self.type = FREE
        self.ref = False
        self.cpu = cpu
        self.elem = elem


def _head() -> Node:
    return Node()


def _del(n: Node) -> None:
    n.prev.next = n.next
    n.next.prev = n.prev


def _add(n: Node, head: Node) -> None:
    """``list_add``: insert right after ``head``."""
    n.next = head.next
    n.prev = head
    head.next.prev = n
    head.next = n


def _move(n: Node, head: Node) -> None:
    _del(n)
    _add(n, head)


def _reverse(head: Node) -> list[Node]:
    """Snapshot of the list from tail to head (``list_for_each_entry_safe_reverse``)."""
    out, cur = [], head.prev
    while cur is not head:
        out.append(cur)
        cur = cur.prev
    return out


def _empty(head: Node) -> bool:
    return head.next is head


class _List:
    """``struct bpf_lru_list``."""

    def __init__(self) -> None:
        self.heads = {ACTIVE: _head(), INACTIVE: _head(), FREE: _head()}
        self.counts = {ACTIVE: 0, INACTIVE: 0}
        self.next_inactive_rotation = self.heads[INACTIVE]


class _Local:
    """``struct bpf_lru_locallist``."""

    def __init__(self, cpu: int) -> None:
        self.free = _head()
        self.pending = _head()
        self.next_steal = cpu


DelFromHtab = Callable[[Node], bool]


class BpfLru:
    """Common or per-CPU LRU over ``nodes`` (already-allocated elements)."""

    def __init__(self, nodes: list[Node], ncpus: int, percpu: bool, del_from_htab: DelFromHtab) -> None:
        self.ncpus = ncpus
        self.percpu = percpu
        self.del_from_htab = del_from_htab
        self.nr_scans = PERCPU_NR_SCANS if percpu else LOCAL_NR_SCANS
        if percpu:
            self.lists = [_List() for _ in range(ncpus)]
            per = len(nodes) // ncpus
            for cpu in range(ncpus):
                for node in nodes[cpu * per:(cpu + 1) * per]:
                    node.type, node.ref, node.cpu = FREE, False, cpu
                    _add(node, self.lists[cpu].heads[FREE])
        else:
            self.l = _List()
            self.locals = [_Local(cpu) for cpu in range(ncpus)]
            for node in nodes:
                node.type, node.ref = FREE, False
                _add(node, self.l.heads[FREE])
            self.target_free = max(1, min((len(nodes) // ncpus) // 2, LOCAL_FREE_TARGET))

    # -- list primitives on the global lists --------------------------------------------------------
    def _node_move(self, l: _List, node: Node, tgt: int) -> None:
        """``__bpf_lru_node_move``."""
        if node.type != tgt:
            if node.type in l.counts:
                l.counts[node.type] -= 1
            if tgt in l.counts:
                l.counts[tgt] += 1
            node.type = tgt
        node.ref = False
        if node is l.next_inactive_rotation:
            l.next_inactive_rotation = l.next_inactive_rotation.prev
        _move(node, l.heads[tgt])

    def _node_move_in(self, l: _List, node: Node, tgt: int) -> None:
        l.counts[tgt] += 1
        node.type = tgt
        node.ref = False
        _move(node, l.heads[tgt])

    def _move_to_free(self, l: _List, node: Node, free_head: Node, tgt: int) -> None:
        """``__bpf_lru_node_move_to_free``."""
        if node.type in l.counts:
            l.counts[node.type] -= 1
        if node is l.next_inactive_rotation:
            l.next_inactive_rotation = l.next_inactive_rotation.prev
        node.type = tgt
        node.ref = False
        _move(node, free_head)

    def _rotate_active(self, l: _List) -> None:
        active = l.heads[ACTIVE]
        if _empty(active):
            return
        first = active.next
        for i, node in enumerate(_reverse(active), 1):
            self._node_move(l, node, ACTIVE if node.ref else INACTIVE)
            if i == self.nr_scans or node is first:
                break

    def _rotate_inactive(self, l: _List) -> None:
        inactive = l.heads[INACTIVE]
        if _empty(inactive):
            return
        last = l.next_inactive_rotation.next
        if last is inactive:
            last = last.next
        cur = l.next_inactive_rotation
        nxt = inactive
        i = 0
        while i < self.nr_scans:
            if cur is inactive:
                cur = cur.prev
                continue
            nxt = cur.prev
            if cur.ref:
                self._node_move(l, cur, ACTIVE)
            if cur is last:
                break
            cur = nxt
            i += 1
        l.next_inactive_rotation = nxt

    def _rotate(self, l: _List) -> None:
        if l.counts[INACTIVE] < l.counts[ACTIVE]:
            self._rotate_active(l)
        self._rotate_inactive(l)

    def _shrink_inactive(self, l: _List, target: int, free_head: Node, tgt: int) -> int:
        n = 0
        for i, node in enumerate(_reverse(l.heads[INACTIVE]), 1):
            if node.ref:
                self._node_move(l, node, ACTIVE)
            elif self.del_from_htab(node):
                self._move_to_free(l, node, free_head, tgt)
                n += 1
                if n == target:
                    break
            if i == self.nr_scans:
                break
        return n

    def _shrink(self, l: _List, target: int, free_head: Node, tgt: int) -> int:
        n = self._shrink_inactive(l, target, free_head, tgt)
        if n:
            return n
        force = l.heads[INACTIVE] if not _empty(l.heads[INACTIVE]) else l.heads[ACTIVE]
        for node in _reverse(force):
            if self.del_from_htab(node):
                self._move_to_free(l, node, free_head, tgt)
                return 1
        return 0

    # -- common LRU local lists ----------------------------------------------------------------------
    def _flush(self, loc: _Local) -> None:
        for node in _reverse(loc.pending):
            self._node_move_in(self.l, node, ACTIVE if node.ref else INACTIVE)

    def _pop_free_to_local(self, loc: _Local) -> None:
        l = self.l
        self._flush(loc)
        self._rotate(l)
        nfree = 0
        cur = l.heads[FREE].next
        while cur is not l.heads[FREE]:
            nxt = cur.next
            self._move_to_free(l, cur, loc.free, LOCAL_FREE)
            nfree += 1
            if nfree == self.target_free:
                break
            cur = nxt
        if nfree < self.target_free:
            self._shrink(l, self.target_free - nfree, loc.free, LOCAL_FREE)

    @staticmethod
    def _local_pop_free(loc: _Local) -> Node | None:
        if _empty(loc.free):
            return None
        node = loc.free.next
        _del(node)
        return node

    def _local_pop_pending(self, loc: _Local) -> Node | None:
        for force in (False, True):
            for node in _reverse(loc.pending):
                if (not node.ref or force) and self.del_from_htab(node):
                    _del(node)
                    return node
        return None

    @staticmethod
    def _add_pending(loc: _Local, node: Node, cpu: int) -> None:
        node.cpu = cpu
        node.type = LOCAL_PENDING
        node.ref = False
        _add(node, loc.pending)

    # -- public ------------------------------------------------------------------------------------------
    def pop_free(self, cpu: int) -> Node | None:
        """``bpf_lru_pop_free``: a node for a new element on ``cpu``, evicting if needed; None = -ENOMEM."""
        if self.percpu:
            l = self.lists[cpu]
            self._rotate(l)
            free = l.heads[FREE]
            if _empty(free):
                self._shrink(l, PERCPU_FREE_TARGET, free, FREE)
            if _empty(free):
                return None
            node = free.next
            node.ref = False
            self._node_move(l, node, INACTIVE)
            return node
        loc = self.locals[cpu]
        node = self._local_pop_free(loc)
        if node is None:
            self._pop_free_to_local(loc)
            node = self._local_pop_free(loc)
        if node is not None:
            self._add_pending(loc, node, cpu)
            return node
        first = steal = loc.next_steal
        while True:
            victim = self.locals[steal]
            node = self._local_pop_free(victim) or self._local_pop_pending(victim)
            steal = (steal + 1) % self.ncpus
            if node is not None or steal == first:
                break
        loc.next_steal = steal
        if node is not None:
            self._add_pending(loc, node, cpu)
        return node

    def push_free(self, node: Node) -> None:
        """``bpf_lru_push_free``: return a deleted or unused element's node."""
        if self.percpu:
            self._node_move(self.lists[node.cpu], node, FREE)
            return
        if node.type == LOCAL_PENDING:
            node.type = LOCAL_FREE
            node.ref = False
            _move(node, self.locals[node.cpu].free)
            return
        self._node_move(self.l, node, FREE)

    @staticmethod
    def set_ref(node: Node) -> None:
        node.ref = True
