"""Helper prototypes as the verifier sees them (``struct bpf_func_proto``).

Argument types are the kernel's ``enum bpf_arg_type`` names for the helpers
in :data:`netstack.bpf.helpers.HELPERS`, taken from each ``*_proto`` in
net/core/filter.c, kernel/bpf/helpers.c, kernel/bpf/ringbuf.c and
kernel/trace/bpf_trace.c.  ``changes_pkt_data`` is
``bpf_helper_changes_pkt_data``: after such a call every packet pointer is
invalidated (``clear_all_pkt_pointers``).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import helpers as H
from .. import maps as M

# argument kinds
ANYTHING = "anything"
CONST_MAP_PTR = "const_map_ptr"
PTR_TO_MAP_KEY = "map_key"
PTR_TO_MAP_VALUE = "map_value"
PTR_TO_CTX = "ctx"
PTR_TO_MEM = "mem"                 # ARG_PTR_TO_MEM | MEM_RDONLY (read by the helper)
PTR_TO_MEM_OR_NULL = "mem_or_null"
PTR_TO_UNINIT_MEM = "uninit_mem"   # written by the helper
CONST_SIZE = "const_size"
CONST_SIZE_OR_ZERO = "const_size_or_zero"
CONST_ALLOC_SIZE_OR_ZERO = "alloc_size_or_zero"
PTR_TO_RINGBUF_MEM = "ringbuf_mem_release"

# return kinds
RET_INTEGER = "integer"
RET_VOID = "void"
RET_MAP_VALUE_OR_NULL = "map_value_or_null"
RET_RINGBUF_MEM_OR_NULL = "ringbuf_mem_or_null"


@dataclass(frozen=True)
class Proto:
    name: str
    ret: str
    args: tuple[str, ...]
    changes_pkt_data: bool = False
    map_types: frozenset[int] | None = None   # check_map_func_compatibility


_RINGBUF = frozenset({M.BPF_MAP_TYPE_RINGBUF})

PROTOS: dict[int, Proto] = {
    H.BPF_FUNC_map_lookup_elem: Proto("bpf_map_lookup_elem", RET_MAP_VALUE_OR_NULL, (CONST_MAP_PTR, PTR_TO_MAP_KEY)),
    H.BPF_FUNC_map_update_elem: Proto("bpf_map_update_elem", RET_INTEGER,
                                      (CONST_MAP_PTR, PTR_TO_MAP_KEY, PTR_TO_MAP_VALUE, ANYTHING)),
    H.BPF_FUNC_map_delete_elem: Proto("bpf_map_delete_elem", RET_INTEGER, (CONST_MAP_PTR, PTR_TO_MAP_KEY)),
    H.BPF_FUNC_ktime_get_ns: Proto("bpf_ktime_get_ns", RET_INTEGER, ()),
    H.BPF_FUNC_trace_printk: Proto("bpf_trace_printk", RET_INTEGER, (PTR_TO_MEM, CONST_SIZE)),
    H.BPF_FUNC_get_prandom_u32: Proto("bpf_get_prandom_u32", RET_INTEGER, ()),
    H.BPF_FUNC_get_smp_processor_id: Proto("bpf_get_smp_processor_id", RET_INTEGER, ()),
    H.BPF_FUNC_skb_store_bytes: Proto("bpf_skb_store_bytes", RET_INTEGER,
                                      (PTR_TO_CTX, ANYTHING, PTR_TO_MEM, CONST_SIZE, ANYTHING), True),
    H.BPF_FUNC_l3_csum_replace: Proto("bpf_l3_csum_replace", RET_INTEGER,
                                      (PTR_TO_CTX, ANYTHING, ANYTHING, ANYTHING, ANYTHING), True),
    H.BPF_FUNC_l4_csum_replace: Proto("bpf_l4_csum_replace", RET_INTEGER,
                                      (PTR_TO_CTX, ANYTHING, ANYTHING, ANYTHING, ANYTHING), True),
    H.BPF_FUNC_tail_call: Proto("bpf_tail_call", RET_VOID, (PTR_TO_CTX, CONST_MAP_PTR, ANYTHING),
                                map_types=frozenset({M.BPF_MAP_TYPE_PROG_ARRAY})),
    H.BPF_FUNC_skb_vlan_push: Proto("bpf_skb_vlan_push", RET_INTEGER, (PTR_TO_CTX, ANYTHING, ANYTHING), True),
    H.BPF_FUNC_skb_vlan_pop: Proto("bpf_skb_vlan_pop", RET_INTEGER, (PTR_TO_CTX,), True),
    H.BPF_FUNC_redirect: Proto("bpf_redirect", RET_INTEGER, (ANYTHING, ANYTHING)),
    H.BPF_FUNC_perf_event_output: Proto("bpf_perf_event_output", RET_INTEGER,
                                        (PTR_TO_CTX, CONST_MAP_PTR, ANYTHING, PTR_TO_MEM, CONST_SIZE_OR_ZERO),
                                        map_types=frozenset({M.BPF_MAP_TYPE_PERF_EVENT_ARRAY})),
    H.BPF_FUNC_skb_load_bytes: Proto("bpf_skb_load_bytes", RET_INTEGER,
                                     (PTR_TO_CTX, ANYTHING, PTR_TO_UNINIT_MEM, CONST_SIZE)),
    H.BPF_FUNC_csum_diff: Proto("bpf_csum_diff", RET_INTEGER, (PTR_TO_MEM_OR_NULL, CONST_SIZE_OR_ZERO,
                                                               PTR_TO_MEM_OR_NULL, CONST_SIZE_OR_ZERO, ANYTHING)),
    H.BPF_FUNC_xdp_adjust_head: Proto("bpf_xdp_adjust_head", RET_INTEGER, (PTR_TO_CTX, ANYTHING), True),
    H.BPF_FUNC_redirect_map: Proto("bpf_redirect_map", RET_INTEGER, (CONST_MAP_PTR, ANYTHING, ANYTHING),
                                   map_types=frozenset({M.BPF_MAP_TYPE_DEVMAP, M.BPF_MAP_TYPE_XSKMAP})),
    H.BPF_FUNC_xdp_adjust_meta: Proto("bpf_xdp_adjust_meta", RET_INTEGER, (PTR_TO_CTX, ANYTHING), True),
    H.BPF_FUNC_xdp_adjust_tail: Proto("bpf_xdp_adjust_tail", RET_INTEGER, (PTR_TO_CTX, ANYTHING), True),
    H.BPF_FUNC_fib_lookup: Proto("bpf_fib_lookup", RET_INTEGER, (PTR_TO_CTX, PTR_TO_UNINIT_MEM, CONST_SIZE, ANYTHING)),
    H.BPF_FUNC_ringbuf_output: Proto("bpf_ringbuf_output", RET_INTEGER,
                                     (CONST_MAP_PTR, PTR_TO_MEM, CONST_SIZE_OR_ZERO, ANYTHING), map_types=_RINGBUF),
    H.BPF_FUNC_ringbuf_reserve: Proto("bpf_ringbuf_reserve", RET_RINGBUF_MEM_OR_NULL,
                                      (CONST_MAP_PTR, CONST_ALLOC_SIZE_OR_ZERO, ANYTHING), map_types=_RINGBUF),
    H.BPF_FUNC_ringbuf_submit: Proto("bpf_ringbuf_submit", RET_VOID, (PTR_TO_RINGBUF_MEM, ANYTHING)),
    H.BPF_FUNC_ringbuf_discard: Proto("bpf_ringbuf_discard", RET_VOID, (PTR_TO_RINGBUF_MEM, ANYTHING)),
    H.BPF_FUNC_ringbuf_query: Proto("bpf_ringbuf_query", RET_INTEGER, (CONST_MAP_PTR, ANYTHING), map_types=_RINGBUF),
}

#: ``__BPF_FUNC_MAX_ID`` of the kernel this was measured on (6.18): ids at or above are "invalid func".
BPF_FUNC_MAX_ID = 212

#: check_reg_type's "expected=" lists (compatible_reg_types) as the kernel prints them
MEM_EXPECTED = "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_"
