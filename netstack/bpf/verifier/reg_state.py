"""Abstract register and stack state (include/linux/bpf_verifier.h).

:class:`Reg` is ``struct bpf_reg_state``: a type, a fixed offset ``off`` for
pointers, the packet ``range`` proven by ``data_end`` comparisons, an ``id``
shared by registers known to hold the same value (null propagation, packet
ranges, scalar ties), the map a map pointer refers to, and for every type the
variable part as signed/unsigned 64- and 32-bit bounds plus a tnum.  Types
are the kernel's ``enum bpf_reg_type`` names; ``maybe_null`` is its
``PTR_MAYBE_NULL`` flag.

The textual forms (:func:`reg_str`) are those of kernel/bpf/log.c
``print_reg_state``, so level-2 logs read like the kernel's
(``R1=ctx() R2=pkt(off=14,r=14) R0=scalar(smin=smin32=0,...)``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .tnum import UNKNOWN, Tnum

S64_MIN, S64_MAX = -(1 << 63), (1 << 63) - 1
U64_MAX = (1 << 64) - 1
S32_MIN, S32_MAX = -(1 << 31), (1 << 31) - 1
U32_MAX = (1 << 32) - 1

# enum bpf_reg_type (the subset modelled)
NOT_INIT = "not_init"
SCALAR = "scalar"
PTR_TO_CTX = "ctx"
CONST_PTR_TO_MAP = "map_ptr"
PTR_TO_MAP_VALUE = "map_value"
PTR_TO_MAP_KEY = "map_key"
PTR_TO_STACK = "fp"
PTR_TO_PACKET = "pkt"
PTR_TO_PACKET_META = "pkt_meta"
PTR_TO_PACKET_END = "pkt_end"
PTR_TO_MEM = "mem"           # ringbuf_reserve's result (PTR_TO_MEM | MEM_RINGBUF)

PKT_TYPES = (PTR_TO_PACKET, PTR_TO_PACKET_META)
#: find_good_pkt_pointers markers for comparisons against pkt_end (verifier.c)
AT_PKT_END = -1
BEYOND_PKT_END = -2


_new = object.__new__


@dataclass(frozen=True)
class MapInfo:
    """What the verifier knows of a map: ``struct bpf_map``'s type and sizes."""

    fd: int
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    name: str = ""
    obj: Any = None


@dataclass(slots=True)
class Reg:
    type: str = NOT_INIT
    off: int = 0
    range: int = 0
    id: int = 0
    ref_obj_id: int = 0
    maybe_null: bool = False
    map: MapInfo | None = None
    mem_size: int = 0
    frameno: int = 0
    smin: int = S64_MIN
    smax: int = S64_MAX
    umin: int = 0
    umax: int = U64_MAX
    s32min: int = S32_MIN
    s32max: int = S32_MAX
    u32min: int = 0
    u32max: int = U32_MAX
    var_off: Tnum = field(default=UNKNOWN)

    def copy(self) -> "Reg":
        n = _new(Reg)
        n.type = self.type
        n.off = self.off
        n.range = self.range
        n.id = self.id
        n.ref_obj_id = self.ref_obj_id
        n.maybe_null = self.maybe_null
        n.map = self.map
        n.mem_size = self.mem_size
        n.frameno = self.frameno
        n.smin = self.smin
        n.smax = self.smax
        n.umin = self.umin
        n.umax = self.umax
        n.s32min = self.s32min
        n.s32max = self.s32max
        n.u32min = self.u32min
        n.u32max = self.u32max
        n.var_off = self.var_off
        return n

    # --- shapes ---------------------------------------------------------------------
    def is_scalar(self) -> bool:
        return self.type == SCALAR

    def is_pointer(self) -> bool:
        return self.type not in (SCALAR, NOT_INIT)

    def is_const(self) -> bool:
        return self.var_off.is_const()

    def is_pkt(self) -> bool:
        return self.type in PKT_TYPES

    def key(self) -> tuple:
        """Everything that identifies the abstract value (for exact state comparison)."""
        return (self.type, self.off, self.range, self.id, self.ref_obj_id, self.maybe_null,
                self.map.fd if self.map else None, self.mem_size, self.frameno, self.smin, self.smax,
                self.umin, self.umax, self.s32min, self.s32max, self.u32min, self.u32max, self.var_off)


def mark_unknown(r: Reg) -> Reg:
    """``__mark_reg_unknown``: a scalar about which nothing is known."""
    r.type = SCALAR
    r.off = r.range = r.id = r.ref_obj_id = r.mem_size = r.frameno = 0
    r.maybe_null = False
    r.map = None
    r.smin, r.smax, r.umin, r.umax = S64_MIN, S64_MAX, 0, U64_MAX
    r.s32min, r.s32max, r.u32min, r.u32max = S32_MIN, S32_MAX, 0, U32_MAX
    r.var_off = UNKNOWN
    return r


def mark_known(r: Reg, v: int) -> Reg:
    """``__mark_reg_known``: the constant ``v`` (as u64)."""
    mark_unknown(r)
    v &= U64_MAX
    r.var_off = Tnum(v, 0)
    r.umin = r.umax = v
    r.smin = r.smax = v - (1 << 64) if v >> 63 else v
    lo = v & U32_MAX
    r.u32min = r.u32max = lo
    r.s32min = r.s32max = lo - (1 << 32) if lo >> 31 else lo
    return r


def mark_var_zero(r: Reg) -> None:
    """Pointer with a zero variable offset (``__mark_reg_known_zero`` of the var part)."""
    r.var_off = Tnum(0, 0)
    r.smin = r.smax = r.umin = r.umax = 0
    r.s32min = r.s32max = r.u32min = r.u32max = 0


def new_ptr(ptype: str, **kw: Any) -> Reg:
    r = Reg(type=ptype, **kw)
    mark_var_zero(r)
    return r


def not_init() -> Reg:
    return Reg()


# --- printing (kernel/bpf/log.c) ------------------------------------------------------------

def _snum(v: int) -> str:
    return str(v) if -512 <= v <= 512 else f"{v & U64_MAX:#x}" if v < 0 else f"{v:#x}"


def _unum(v: int) -> str:
    return str(v) if v <= 512 else f"{v:#x}"


def _ranges(r: Reg) -> list[str]:
    items = [["smin", r.smin, r.smin == S64_MIN], ["smax", r.smax, r.smax == S64_MAX],
             ["umin", r.umin, r.umin == 0], ["umax", r.umax, r.umax == U64_MAX],
             ["smin32", r.s32min, r.s32min == S32_MIN], ["smax32", r.s32max, r.s32max == S32_MAX],
             ["umin32", r.u32min, r.u32min == 0], ["umax32", r.u32max, r.u32max == U32_MAX]]
    out: list[str] = []
    for i, (name, val, omit) in enumerate(items):
        if omit:
            continue
        names = [name]
        neg1 = name[0] == "s" and val < 0
        for j in range(i + 2, len(items), 2):
            n2, v2, o2 = items[j]
            if o2 or v2 != val or (n2[0] == "s" and v2 < 0) != neg1:
                continue
            items[j][2] = True
            names.append(n2)
        out.append("=".join(names) + "=" + (_snum(val) if name[0] == "s" else _unum(val)))
    return out


def type_str(r: Reg) -> str:
    """``reg_type_str``: the name used in error messages (``map_value_or_null``)."""
    if r.type == PTR_TO_MEM:
        base = "ringbuf_mem"
    else:
        base = r.type
    return base + ("_or_null" if r.maybe_null else "")


def reg_str(r: Reg) -> str:
    if r.type == SCALAR and r.is_const() and not r.id:
        return _snum(r.smin)
    if r.type == PTR_TO_STACK and r.is_const() and not r.id:
        return f"fp{r.off + r.var_off.value:d}" if r.frameno == 0 else f"fp[{r.frameno}]{r.off + r.var_off.value:d}"
    parts: list[str] = []
    if r.id:
        parts.append(f"id={r.id}")
    if r.ref_obj_id:
        parts.append(f"ref_obj_id={r.ref_obj_id}")
    if r.map is not None:
        parts.append(f"map={r.map.name},ks={r.map.key_size},vs={r.map.value_size}")
    if r.type != SCALAR and r.off:
        parts.append(f"off={r.off}")
    if r.is_pkt():
        parts.append(f"r={_unum(r.range & U64_MAX)}")
    if r.type == PTR_TO_MEM:
        parts.append(f"sz={r.mem_size}")
    if r.type == SCALAR or not r.is_const():
        if r.is_const():
            parts.append(f"imm={r.var_off.value}")
        else:
            parts.extend(_ranges(r))
            if not r.var_off.is_unknown():
                parts.append(f"var_off={r.var_off}")
    return f"{type_str(r)}({','.join(parts)})"
