"""Context access rules per program type (``*_is_valid_access`` in net/core/filter.c).

:func:`ctx_access` answers what ``check_ctx_access`` asks the program type's
``is_valid_access``: may a load/store of ``size`` bytes at ``off`` happen, and
if it is a load, which register type results (``PTR_TO_PACKET`` for ``data``
and so on, else a scalar).  XDP allows only aligned 4-byte reads of
``struct xdp_md`` (not ``egress_ifindex`` outside devmap programs);
``__sk_buff`` follows ``bpf_skb_is_valid_access`` plus
``sk_filter_is_valid_access`` / ``tc_cls_act_is_valid_access``.

Which narrow reads are valid is ``bpf_ctx_narrow_access_ok`` (a power-of-two size, aligned, within
the 4-byte field) whatever the ``sk_buff`` member behind the field; *what* they read is
``convert_ctx_accesses``' ``target_size`` rule, :func:`netstack.bpf.context.narrow_ctx_value`, which
the run-time context applies.  Either way the result fits in the access size (an unshifted value
comes from a member no wider than the access), so the verifier's ``coerce_reg_to_size`` bound on
the loaded scalar holds for both outcomes.
"""
from __future__ import annotations

from .. import context as C
from ..errors import NotSupported
from . import reg_state as RS

_XDP_PTRS = {0: RS.PTR_TO_PACKET, 4: RS.PTR_TO_PACKET_END, 8: RS.PTR_TO_PACKET_META}
_SKB_PTRS = {"data": RS.PTR_TO_PACKET, "data_end": RS.PTR_TO_PACKET_END, "data_meta": RS.PTR_TO_PACKET_META}
_TC_WRITABLE = {"mark", "tc_index", "priority", "cb", "tc_classid", "tstamp", "queue_mapping"}
_SF_DENIED = {"tc_classid", "data", "data_meta", "data_end", "family", "remote_ip4", "local_ip4", "remote_ip6",
              "local_ip6", "remote_port", "local_port", "tstamp", "wire_len", "hwtstamp"}
_TC_DENIED = {"family", "remote_ip4", "local_ip4", "remote_ip6", "local_ip6", "remote_port", "local_port"}
_BY_OFF = sorted((o, s, n) for n, (o, s) in C.SK_BUFF.items())


def ctx_size(prog_type: int) -> int:
    return C.XDP_MD_SIZE if prog_type == C.BPF_PROG_TYPE_XDP else C.SK_BUFF_SIZE


def _xdp(off: int, size: int, write: bool) -> str | None:
    if off < 0 or off >= C.XDP_MD_SIZE or off % size or size != 4 or write or off == C.XDP_MD["egress_ifindex"]:
        return None
    return _XDP_PTRS.get(off, RS.SCALAR)


def _field(off: int) -> tuple[str, int, int] | None:
    for start, fsize, name in _BY_OFF:
        if start <= off < start + fsize:
            return name, start, fsize
    return None


def _skb(prog_type: int, off: int, size: int, write: bool) -> str | None:
    if off < 0 or off >= C.SK_BUFF_SIZE or off % size:
        return None
    hit = _field(off)
    if hit is None:
        return None  # padding
    name, start, fsize = hit
    tc = prog_type in (C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_PROG_TYPE_SCHED_ACT)
    if name in (_TC_DENIED if tc else _SF_DENIED) or name in ("flow_keys", "tstamp_type"):
        return None
    if write:
        if name not in (_TC_WRITABLE if tc else {"cb"}):
            return None
        if name == "cb":
            return RS.SCALAR if off + size <= start + fsize else None
        return RS.SCALAR if size == fsize or (name == "tstamp" and size == 8) else None
    if name == "sk":
        if size != 8:
            return None
        raise NotSupported("reading __sk_buff.sk (socket pointers) in the verifier")
    if name == "cb":
        return RS.SCALAR if off + size <= start + fsize else None
    if name in _SKB_PTRS:
        return _SKB_PTRS[name] if size == 4 else None
    if name in ("tstamp", "hwtstamp"):
        return RS.SCALAR if size == 8 else None
    if name in ("remote_ip6", "local_ip6"):
        return RS.SCALAR if size == 4 or (off % 4 == 0 and size <= 4) else None
    # bpf_ctx_narrow_access_ok: any power-of-two size within the (4-byte) field
    return RS.SCALAR if size <= fsize and off + size <= start + fsize else None


def ctx_access(prog_type: int, off: int, size: int, write: bool) -> str | None:
    """The register type a valid access yields (``"scalar"`` for plain fields), None if invalid."""
    if prog_type == C.BPF_PROG_TYPE_XDP:
        return _xdp(off, size, write)
    if prog_type in (C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_PROG_TYPE_SCHED_ACT, C.BPF_PROG_TYPE_SOCKET_FILTER):
        return _skb(prog_type, off, size, write)
    raise NotSupported(f"context access rules of program type {prog_type}")


def may_access_direct_pkt_data(prog_type: int) -> bool:
    """``may_access_direct_pkt_data``: which types see packet pointers at all (and may write)."""
    return prog_type in (C.BPF_PROG_TYPE_XDP, C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_PROG_TYPE_SCHED_ACT)
