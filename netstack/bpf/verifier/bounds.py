"""Scalar bounds: reg_bounds_sync, ALU transfer functions and branch refinement.

These are the algorithms of kernel/bpf/verifier.c (6.x): ``__update_reg_bounds``,
``__reg_deduce_bounds`` (32<->64 and signed<->unsigned deductions),
``__reg_bound_offset``, ``adjust_scalar_min_max_vals`` with the per-operator
``scalar{32,}_min_max_*`` helpers, ``is_scalar_branch_taken`` and
``regs_refine_cond_op``.  C's wrap-around arithmetic is reproduced by masking.
"""
from __future__ import annotations

from . import reg_state as RS
from .reg_state import S32_MAX, S32_MIN, S64_MAX, S64_MIN, U32_MAX, U64_MAX, Reg
from .tnum import UNKNOWN, Tnum

from .. import insn as I


def s64(v: int) -> int:
    v &= U64_MAX
    return v - (1 << 64) if v >> 63 else v


def s32(v: int) -> int:
    v &= U32_MAX
    return v - (1 << 32) if v >> 31 else v


def u64(v: int) -> int:
    return v & U64_MAX


def u32(v: int) -> int:
    return v & U32_MAX


# --- reg_bounds_sync --------------------------------------------------------------------------

def update_reg32_bounds(r: Reg) -> None:
    t = r.var_off.subreg()
    r.s32min = max(r.s32min, s32(t.value | (t.mask & 0x80000000)))
    r.s32max = min(r.s32max, s32(t.value | (t.mask & 0x7FFFFFFF)))
    r.u32min = max(r.u32min, t.value)
    r.u32max = min(r.u32max, t.value | t.mask)


def update_reg64_bounds(r: Reg) -> None:
    t = r.var_off
    r.smin = max(r.smin, s64(t.value | (t.mask & (1 << 63))))
    r.smax = min(r.smax, s64(t.value | (t.mask & S64_MAX)))
    r.umin = max(r.umin, t.value)
    r.umax = min(r.umax, t.value | t.mask)


def update_reg_bounds(r: Reg) -> None:
    update_reg32_bounds(r)
    update_reg64_bounds(r)


def _deduce32(r: Reg) -> None:
    if (r.umin >> 32) == (r.umax >> 32):
        r.u32min = max(r.u32min, u32(r.umin))
        r.u32max = min(r.u32max, u32(r.umax))
        if s32(r.umin) <= s32(r.umax):
            r.s32min = max(r.s32min, s32(r.umin))
            r.s32max = min(r.s32max, s32(r.umax))
    if (r.smin >> 32) == (r.smax >> 32):
        if u32(r.smin) <= u32(r.smax):
            r.u32min = max(r.u32min, u32(r.smin))
            r.u32max = min(r.u32max, u32(r.smax))
        if s32(r.smin) <= s32(r.smax):
            r.s32min = max(r.s32min, s32(r.smin))
            r.s32max = min(r.s32max, s32(r.smax))
    if u32(r.umin >> 32) + 1 == u32(r.umax >> 32) and s32(r.umin) < 0 and s32(r.umax) >= 0:
        r.s32min = max(r.s32min, s32(r.umin))
        r.s32max = min(r.s32max, s32(r.umax))
    if u32(r.smin >> 32) + 1 == u32(r.smax >> 32) and s32(r.smin) < 0 and s32(r.smax) >= 0:
        r.s32min = max(r.s32min, s32(r.smin))
        r.s32max = min(r.s32max, s32(r.smax))
    if s32(r.u32min) <= s32(r.u32max):
        r.s32min = max(r.s32min, s32(r.u32min))
        r.s32max = min(r.s32max, s32(r.u32max))
    if u32(r.s32min) <= u32(r.s32max):
        r.u32min = max(r.u32min, u32(r.s32min))
        r.u32max = min(r.u32max, u32(r.s32max))


def _deduce64(r: Reg) -> None:
    if s64(r.umin) <= s64(r.umax):
        r.smin = max(r.smin, s64(r.umin))
        r.smax = min(r.smax, s64(r.umax))
    if u64(r.smin) <= u64(r.smax):
        r.umin = max(r.umin, u64(r.smin))
        r.umax = min(r.umax, u64(r.smax))
    elif r.umax < u64(r.smin):
        r.smin = s64(r.umin) if s64(r.umin) > r.smin else r.smin
        r.umax = min(r.umax, u64(r.smax))
    elif u64(r.smax) < r.umin:
        r.smax = min(r.smax, s64(r.umax))
        r.umin = max(r.umin, u64(r.smin))


def _deduce_mixed(r: Reg) -> None:
    hi = ~U32_MAX & U64_MAX
    r.umin = max(r.umin, (r.umin & hi) | r.u32min)
    r.umax = min(r.umax, (r.umax & hi) | r.u32max)
    r.smin = max(r.smin, s64((u64(r.smin) & hi) | r.u32min))
    r.smax = min(r.smax, s64((u64(r.smax) & hi) | r.u32max))
    if r.s32min >= 0 and r.smin >= S32_MIN and r.smax <= S32_MAX:
        r.smin = max(r.smin, r.s32min)
        r.smax = min(r.smax, r.s32max)
        r.umin = max(r.umin, r.s32min)
        r.umax = min(r.umax, r.s32max)
        r.var_off = r.var_off.intersect(Tnum.range(max(r.smin, 0), max(r.smax, 0)))


def deduce_bounds(r: Reg) -> None:
    _deduce32(r)
    _deduce64(r)
    _deduce_mixed(r)


def bound_offset(r: Reg) -> None:
    v64 = r.var_off.intersect(Tnum.range(r.umin, r.umax))
    v32 = v64.subreg().intersect(Tnum.range(r.u32min, r.u32max))
    r.var_off = v64.clear_subreg().or_(v32)


def sync(r: Reg) -> None:
    """``reg_bounds_sync``."""
    t = r.var_off
    if not t.mask:  # constant: the bounds collapse to it when they contain it (fast path)
        v = t.value
        lo = v & U32_MAX
        sv, slo = s64(v), s32(lo)
        if (r.umin <= v <= r.umax and r.smin <= sv <= r.smax and r.u32min <= lo <= r.u32max
                and r.s32min <= slo <= r.s32max):
            r.umin = r.umax = v
            r.smin = r.smax = sv
            r.u32min = r.u32max = lo
            r.s32min = r.s32max = slo
            return
    update_reg_bounds(r)
    deduce_bounds(r)
    deduce_bounds(r)
    bound_offset(r)
    update_reg_bounds(r)


def sane(r: Reg) -> bool:
    """``reg_bounds_sanity_check`` (False on an impossible, i.e. dead, state)."""
    if r.umin > r.umax or r.smin > r.smax or r.u32min > r.u32max or r.s32min > r.s32max:
        return False
    t = r.var_off
    if t.value & t.mask:
        return False
    if r.umin == r.umax and t.is_const() and t.value != r.umin:
        return False
    if t.value > r.umax or (t.value | t.mask) < r.umin:
        return False
    return True


def mark_unbounded(r: Reg) -> None:
    r.smin, r.smax, r.umin, r.umax = S64_MIN, S64_MAX, 0, U64_MAX
    r.s32min, r.s32max, r.u32min, r.u32max = S32_MIN, S32_MAX, 0, U32_MAX


def mark32_unbounded(r: Reg) -> None:
    r.s32min, r.s32max, r.u32min, r.u32max = S32_MIN, S32_MAX, 0, U32_MAX


def mark64_unbounded(r: Reg) -> None:
    r.smin, r.smax, r.umin, r.umax = S64_MIN, S64_MAX, 0, U64_MAX


def assign_32_into_64(r: Reg) -> None:
    """``__reg_assign_32_into_64`` after a 32-bit ALU op (zero extension)."""
    r.umin, r.umax = r.u32min, r.u32max
    if r.s32min >= 0 and r.s32max >= 0:
        r.smin, r.smax = r.s32min, r.s32max
    else:
        r.smin, r.smax = 0, U32_MAX


def zext_32_to_64(r: Reg) -> None:
    r.var_off = r.var_off.subreg()
    assign_32_into_64(r)


def coerce_to_size(r: Reg, size: int) -> None:
    """``coerce_reg_to_size``: keep the low ``size`` bytes (zero-extending loads/movs)."""
    r.var_off = r.var_off.cast(size)
    mask = (1 << (size * 8)) - 1
    if (r.umin & ~mask) == (r.umax & ~mask):
        r.umin &= mask
        r.umax &= mask
    else:
        r.umin, r.umax = 0, mask
    r.smin, r.smax = r.umin, r.umax
    if size >= 4:
        if size == 4:
            r.u32min, r.u32max = r.umin, r.umax
            r.s32min, r.s32max = S32_MIN, S32_MAX
    else:
        r.u32min, r.u32max = r.umin, r.umax
        r.s32min, r.s32max = r.umin, r.umax
    sync(r)


def coerce_to_size_sx(r: Reg, size: int) -> None:
    """Sign-extending load or ``movsx``: ``coerce_reg_to_size_sx`` for constants, else its default range."""
    bits = size * 8
    if r.var_off.is_const():
        v = r.var_off.value & ((1 << bits) - 1)
        RS.mark_known(r, v - (1 << bits) if v >> (bits - 1) else v)
        return
    top = (1 << (bits - 1))
    if r.smin >= 0 and r.umax < top:  # the value already fits: sign extension changes nothing
        return
    mark_unbounded(r)
    r.var_off = UNKNOWN
    r.smin, r.smax = -top, top - 1
    if bits < 32:
        r.s32min, r.s32max = -top, top - 1
    sync(r)


# --- ALU on two scalars (adjust_scalar_min_max_vals) ------------------------------------------

def _add(r: Reg, src: Reg, alu32: bool) -> None:
    # 32-bit part
    smin, smax = r.s32min + src.s32min, r.s32max + src.s32max
    if not (S32_MIN <= smin <= S32_MAX and S32_MIN <= smax <= S32_MAX):
        r.s32min, r.s32max = S32_MIN, S32_MAX
    else:
        r.s32min, r.s32max = smin, smax
    umin, umax = r.u32min + src.u32min, r.u32max + src.u32max
    if umin > U32_MAX and umax > U32_MAX:
        r.u32min, r.u32max = u32(umin), u32(umax)
    elif umax > U32_MAX:
        r.u32min, r.u32max = 0, U32_MAX
    else:
        r.u32min, r.u32max = umin, umax
    if alu32:
        return
    smin, smax = r.smin + src.smin, r.smax + src.smax
    if not (S64_MIN <= smin <= S64_MAX and S64_MIN <= smax <= S64_MAX):
        r.smin, r.smax = S64_MIN, S64_MAX
    else:
        r.smin, r.smax = smin, smax
    umin, umax = r.umin + src.umin, r.umax + src.umax
    if umin > U64_MAX and umax > U64_MAX:
        r.umin, r.umax = u64(umin), u64(umax)
    elif umax > U64_MAX:
        r.umin, r.umax = 0, U64_MAX
    else:
        r.umin, r.umax = umin, umax


def _sub(r: Reg, src: Reg, alu32: bool) -> None:
    smin, smax = r.s32min - src.s32max, r.s32max - src.s32min
    if not (S32_MIN <= smin <= S32_MAX and S32_MIN <= smax <= S32_MAX):
        r.s32min, r.s32max = S32_MIN, S32_MAX
    else:
        r.s32min, r.s32max = smin, smax
    umin, umax = r.u32min - src.u32max, r.u32max - src.u32min
    if umin < 0 and umax < 0:
        r.u32min, r.u32max = u32(umin), u32(umax)
    elif umin < 0:
        r.u32min, r.u32max = 0, U32_MAX
    else:
        r.u32min, r.u32max = umin, umax
    if alu32:
        return
    smin, smax = r.smin - src.smax, r.smax - src.smin
    if not (S64_MIN <= smin <= S64_MAX and S64_MIN <= smax <= S64_MAX):
        r.smin, r.smax = S64_MIN, S64_MAX
    else:
        r.smin, r.smax = smin, smax
    umin, umax = r.umin - src.umax, r.umax - src.umin
    if umin < 0 and umax < 0:
        r.umin, r.umax = u64(umin), u64(umax)
    elif umin < 0:
        r.umin, r.umax = 0, U64_MAX
    else:
        r.umin, r.umax = umin, umax


def _mul(r: Reg, src: Reg, alu32: bool) -> None:
    umax, umin = r.u32max * src.u32max, r.u32min * src.u32min
    if umax > U32_MAX or umin > U32_MAX:
        r.u32min, r.u32max = 0, U32_MAX
    else:
        r.u32min, r.u32max = umin, umax
    prods = [a * b for a in (r.s32min, r.s32max) for b in (src.s32min, src.s32max)]
    if any(not S32_MIN <= p <= S32_MAX for p in prods):
        r.s32min, r.s32max = S32_MIN, S32_MAX
    else:
        r.s32min, r.s32max = min(prods), max(prods)
    if alu32:
        return
    umax, umin = r.umax * src.umax, r.umin * src.umin
    if umax > U64_MAX or umin > U64_MAX:
        r.umin, r.umax = 0, U64_MAX
    else:
        r.umin, r.umax = umin, umax
    prods = [a * b for a in (r.smin, r.smax) for b in (src.smin, src.smax)]
    if any(not S64_MIN <= p <= S64_MAX for p in prods):
        r.smin, r.smax = S64_MIN, S64_MAX
    else:
        r.smin, r.smax = min(prods), max(prods)


def _bitwise(r: Reg, src: Reg, op: int, alu32: bool) -> None:
    """and/or/xor: bounds from the (already computed) var_off and the operands."""
    t32 = r.var_off.subreg()
    src_known32, dst_known32 = src.var_off.subreg().is_const(), False
    # 32-bit part
    if op == I.BPF_AND:
        r.u32min = t32.value
        r.u32max = min(r.u32max, src.u32max)
    elif op == I.BPF_OR:
        r.u32min = max(r.u32min, src.u32min)
        r.u32max = t32.value | t32.mask
    else:
        r.u32min = t32.value
        r.u32max = t32.value | t32.mask
    if s32(r.u32min) <= s32(r.u32max):
        r.s32min, r.s32max = s32(r.u32min), s32(r.u32max)
    else:
        r.s32min, r.s32max = S32_MIN, S32_MAX
    del src_known32, dst_known32
    if alu32:
        return
    t = r.var_off
    if op == I.BPF_AND:
        r.umin = t.value
        r.umax = min(r.umax, src.umax)
    elif op == I.BPF_OR:
        r.umin = max(r.umin, src.umin)
        r.umax = t.value | t.mask
    else:
        r.umin = t.value
        r.umax = t.value | t.mask
    if s64(r.umin) <= s64(r.umax):
        r.smin, r.smax = s64(r.umin), s64(r.umax)
    else:
        r.smin, r.smax = S64_MIN, S64_MAX
    update_reg_bounds(r)


def _lsh(r: Reg, n: int, alu32: bool) -> None:
    if alu32:
        mark32_unbounded_s(r)
        if r.u32max > (1 << (31 - n)):
            r.u32min, r.u32max = 0, U32_MAX
        else:
            r.u32min, r.u32max = r.u32min << n, r.u32max << n
        r.var_off = r.var_off.subreg().lshift(n).subreg()
        update_reg32_bounds(r)
        return
    smax = r.s32max << 32 if n == 32 and r.s32max >= 0 else S64_MAX
    smin = r.s32min << 32 if n == 32 and r.s32min >= 0 else S64_MIN
    r.smin, r.smax = smin, smax
    if r.umax > (1 << (63 - n)):
        r.umin, r.umax = 0, U64_MAX
    else:
        r.umin, r.umax = r.umin << n, r.umax << n
    # 32-bit part (computed on the unshifted 32-bit bounds)
    mark32_unbounded_s(r)
    if n > 31 or r.u32max > (1 << (31 - n)):
        r.u32min, r.u32max = 0, U32_MAX
    else:
        r.u32min, r.u32max = r.u32min << n, r.u32max << n
    r.var_off = r.var_off.lshift(n)
    update_reg_bounds(r)


def mark32_unbounded_s(r: Reg) -> None:
    r.s32min, r.s32max = S32_MIN, S32_MAX


def _rsh(r: Reg, n: int, alu32: bool) -> None:
    if alu32:
        r.s32min, r.s32max = S32_MIN, S32_MAX
        r.var_off = r.var_off.subreg().rshift(n)
        r.u32min >>= n
        r.u32max >>= n
        mark64_unbounded(r)
        update_reg32_bounds(r)
        return
    r.smin, r.smax = S64_MIN, S64_MAX
    r.var_off = r.var_off.rshift(n)
    r.umin >>= n
    r.umax >>= n
    mark32_unbounded(r)
    update_reg_bounds(r)


def _arsh(r: Reg, n: int, alu32: bool) -> None:
    if alu32:
        r.s32min >>= n
        r.s32max >>= n
        r.var_off = r.var_off.subreg().arshift(n, 32)
        r.u32min, r.u32max = 0, U32_MAX
        update_reg32_bounds(r)
        return
    r.smin >>= n
    r.smax >>= n
    r.var_off = r.var_off.arshift(n, 64)
    r.umin, r.umax = 0, U64_MAX
    mark32_unbounded(r)
    update_reg_bounds(r)


def scalar_alu(r: Reg, src: Reg, op: int, alu32: bool) -> None:
    """``adjust_scalar_min_max_vals`` for two scalars; ``r`` is updated in place."""
    bits = 32 if alu32 else 64
    src_const = src.var_off.subreg().is_const() if alu32 else src.var_off.is_const()
    if op in (I.BPF_LSH, I.BPF_RSH, I.BPF_ARSH):
        amount = src.u32max if alu32 else src.umax
        if not src_const or amount >= bits:
            RS.mark_unknown(r)
            if alu32:
                zext_32_to_64(r)
                sync(r)
            return
    elif op not in (I.BPF_ADD, I.BPF_SUB, I.BPF_MUL, I.BPF_AND, I.BPF_OR, I.BPF_XOR):
        RS.mark_unknown(r)
        if alu32:
            zext_32_to_64(r)
            sync(r)
        return
    r.id = 0
    if op == I.BPF_ADD:
        _add(r, src, alu32)
        r.var_off = r.var_off.add(src.var_off)
    elif op == I.BPF_SUB:
        _sub(r, src, alu32)
        r.var_off = r.var_off.sub(src.var_off)
    elif op == I.BPF_MUL:
        r.var_off = r.var_off.mul(src.var_off)
        _mul(r, src, alu32)
    elif op in (I.BPF_AND, I.BPF_OR, I.BPF_XOR):
        if op == I.BPF_AND:
            r.var_off = r.var_off.and_(src.var_off)
        elif op == I.BPF_OR:
            r.var_off = r.var_off.or_(src.var_off)
        else:
            r.var_off = r.var_off.xor(src.var_off)
        if (r.var_off.subreg().is_const() if alu32 else r.var_off.is_const()):
            v = r.var_off.value
            RS.mark_known(r, v & U32_MAX if alu32 else v)
            return
        _bitwise(r, src, op, alu32)
    elif op == I.BPF_LSH:
        _lsh(r, src.umax if not alu32 else src.u32max, alu32)
    elif op == I.BPF_RSH:
        _rsh(r, src.umax if not alu32 else src.u32max, alu32)
    else:
        _arsh(r, src.umax if not alu32 else src.u32max, alu32)
    if alu32:
        zext_32_to_64(r)
    sync(r)


def neg(r: Reg, alu32: bool) -> None:
    """BPF_NEG as ``0 - r`` (the kernel's fake-register subtraction)."""
    src = r.copy()
    RS.mark_known(r, 0)
    scalar_alu(r, src, I.BPF_SUB, alu32)


def _swap(v: int, nbytes: int) -> int:
    return int.from_bytes((v & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, "little"), "big")


def bswap(r: Reg, size_bits: int, to_be: bool, alu64: bool) -> None:
    """BPF_END / bswap on the tnum: truncate to ``size_bits`` and, for ``be``/``bswap`` on a
    little-endian machine, swap the known bits; the bounds are then derived from the tnum."""
    nbytes = size_bits // 8
    t = r.var_off.cast(nbytes)
    if to_be or alu64:
        t = Tnum(_swap(t.value, nbytes), _swap(t.mask, nbytes))
    r.id = 0
    if t.is_const():
        RS.mark_known(r, t.value)
        return
    mark_unbounded(r)
    r.var_off = t
    sync(r)


# --- branches -----------------------------------------------------------------------------

FLIP = {I.BPF_JEQ: I.BPF_JEQ, I.BPF_JNE: I.BPF_JNE, I.BPF_JSET: I.BPF_JSET, I.BPF_JGT: I.BPF_JLT,
        I.BPF_JGE: I.BPF_JLE, I.BPF_JLT: I.BPF_JGT, I.BPF_JLE: I.BPF_JGE, I.BPF_JSGT: I.BPF_JSLT,
        I.BPF_JSGE: I.BPF_JSLE, I.BPF_JSLT: I.BPF_JSGT, I.BPF_JSLE: I.BPF_JSGE}
JSET_X = I.BPF_JSET | I.BPF_X   # "not jset", the reverse of BPF_JSET (rev_opcode)
REV = {I.BPF_JEQ: I.BPF_JNE, I.BPF_JNE: I.BPF_JEQ, I.BPF_JSET: JSET_X, JSET_X: I.BPF_JSET,
       I.BPF_JGT: I.BPF_JLE, I.BPF_JLE: I.BPF_JGT, I.BPF_JGE: I.BPF_JLT, I.BPF_JLT: I.BPF_JGE,
       I.BPF_JSGT: I.BPF_JSLE, I.BPF_JSLE: I.BPF_JSGT, I.BPF_JSGE: I.BPF_JSLT, I.BPF_JSLT: I.BPF_JSGE}


def _view(r: Reg, j32: bool) -> tuple[Tnum, int, int, int, int]:
    if j32:
        return r.var_off.subreg(), r.u32min, r.u32max, r.s32min, r.s32max
    return r.var_off, r.umin, r.umax, r.smin, r.smax


def _is_const(r: Reg, j32: bool) -> bool:
    return r.var_off.subreg().is_const() if j32 else r.var_off.is_const()


def scalar_branch_taken(r1: Reg, r2: Reg, op: int, j32: bool) -> int:
    """``is_scalar_branch_taken``: 1 taken, 0 not taken, -1 unknown."""
    t1, umin1, umax1, smin1, smax1 = _view(r1, j32)
    t2, umin2, umax2, smin2, smax2 = _view(r2, j32)
    if op in (I.BPF_JEQ, I.BPF_JNE):
        eq = op == I.BPF_JEQ
        if t1.is_const() and t2.is_const():
            return int((t1.value == t2.value) == eq)
        if umin1 > umax2 or umax1 < umin2 or smin1 > smax2 or smax1 < smin2:
            return 0 if eq else 1
        if not j32 and (r1.u32min > r2.u32max or r1.u32max < r2.u32min
                        or r1.s32min > r2.s32max or r1.s32max < r2.s32min):
            return 0 if eq else 1
        if (t1.value ^ t2.value) & ~(t1.mask | t2.mask) & (U32_MAX if j32 else U64_MAX):
            return 0 if eq else 1  # tnum_overlap: a known bit differs
        return -1
    if op == I.BPF_JSET:
        if not _is_const(r2, j32):
            t1, t2 = t2, t1
            if not _is_const(r1, j32):
                return -1
        if (~t1.mask & t1.value) & t2.value:
            return 1
        if not ((t1.mask | t1.value) & t2.value):
            return 0
        return -1
    if op == I.BPF_JGT:
        return 1 if umin1 > umax2 else 0 if umax1 <= umin2 else -1
    if op == I.BPF_JSGT:
        return 1 if smin1 > smax2 else 0 if smax1 <= smin2 else -1
    if op == I.BPF_JLT:
        return 1 if umax1 < umin2 else 0 if umin1 >= umax2 else -1
    if op == I.BPF_JSLT:
        return 1 if smax1 < smin2 else 0 if smin1 >= smax2 else -1
    if op == I.BPF_JGE:
        return 1 if umin1 >= umax2 else 0 if umax1 < umin2 else -1
    if op == I.BPF_JSGE:
        return 1 if smin1 >= smax2 else 0 if smax1 < smin2 else -1
    if op == I.BPF_JLE:
        return 1 if umax1 <= umin2 else 0 if umin1 > umax2 else -1
    if op == I.BPF_JSLE:
        return 1 if smax1 <= smin2 else 0 if smin1 > smax2 else -1
    return -1


def refine(r1: Reg, r2: Reg, op: int, j32: bool) -> None:
    """``regs_refine_cond_op``: narrow r1/r2 knowing ``r1 op r2`` holds."""
    if op in (I.BPF_JGE, I.BPF_JGT, I.BPF_JSGE, I.BPF_JSGT):
        op = FLIP[op]
        r1, r2 = r2, r1
    if op == I.BPF_JEQ:
        if j32:
            lo_u, hi_u = max(r1.u32min, r2.u32min), min(r1.u32max, r2.u32max)
            lo_s, hi_s = max(r1.s32min, r2.s32min), min(r1.s32max, r2.s32max)
            for r in (r1, r2):
                r.u32min, r.u32max, r.s32min, r.s32max = lo_u, hi_u, lo_s, hi_s
            t = r1.var_off.subreg().intersect(r2.var_off.subreg())
            r1.var_off = r1.var_off.with_subreg(t)
            r2.var_off = r2.var_off.with_subreg(t)
        else:
            lo_u, hi_u = max(r1.umin, r2.umin), min(r1.umax, r2.umax)
            lo_s, hi_s = max(r1.smin, r2.smin), min(r1.smax, r2.smax)
            for r in (r1, r2):
                r.umin, r.umax, r.smin, r.smax = lo_u, hi_u, lo_s, hi_s
            t = r1.var_off.intersect(r2.var_off)
            r1.var_off = r2.var_off = t
        return
    if op in (I.BPF_JNE, I.BPF_JSET, JSET_X):
        if not _is_const(r2, j32):
            r1, r2 = r2, r1
        if not _is_const(r2, j32):
            return
        val = r2.var_off.value & (U32_MAX if j32 else U64_MAX)
        if op == I.BPF_JNE:
            if j32:
                if r1.u32min == val:
                    r1.u32min += 1
                if r1.u32max == val:
                    r1.u32max -= 1
                if r1.s32min == s32(val):
                    r1.s32min += 1
                if r1.s32max == s32(val):
                    r1.s32max -= 1
            else:
                if r1.umin == val:
                    r1.umin += 1
                if r1.umax == val:
                    r1.umax -= 1
                if r1.smin == s64(val):
                    r1.smin += 1
                if r1.smax == s64(val):
                    r1.smax -= 1
        elif op == I.BPF_JSET:
            if val == 0 or val & (val - 1):
                return
            if j32:
                r1.var_off = r1.var_off.with_subreg(r1.var_off.subreg().or_(Tnum.const(val)))
            else:
                r1.var_off = r1.var_off.or_(Tnum.const(val))
        else:
            mark_unbounded(r1)
            if j32:
                r1.var_off = r1.var_off.with_subreg(r1.var_off.subreg().and_(Tnum.const(~val & U32_MAX)))
            else:
                r1.var_off = r1.var_off.and_(Tnum.const(~val & U64_MAX))
        return
    if op == I.BPF_JLE:
        if j32:
            r1.u32max = min(r1.u32max, r2.u32max)
            r2.u32min = max(r1.u32min, r2.u32min)
        else:
            r1.umax = min(r1.umax, r2.umax)
            r2.umin = max(r1.umin, r2.umin)
    elif op == I.BPF_JLT:
        if j32:
            r1.u32max = min(r1.u32max, u32(r2.u32max - 1))
            r2.u32min = max(u32(r1.u32min + 1), r2.u32min)
        else:
            r1.umax = min(r1.umax, u64(r2.umax - 1))
            r2.umin = max(u64(r1.umin + 1), r2.umin)
    elif op == I.BPF_JSLE:
        if j32:
            r1.s32max = min(r1.s32max, r2.s32max)
            r2.s32min = max(r1.s32min, r2.s32min)
        else:
            r1.smax = min(r1.smax, r2.smax)
            r2.smin = max(r1.smin, r2.smin)
    elif op == I.BPF_JSLT:
        if j32:
            r1.s32max = min(r1.s32max, s32(r2.s32max - 1))
            r2.s32min = max(s32(r1.s32min + 1), r2.s32min)
        else:
            r1.smax = min(r1.smax, s64(r2.smax - 1))
            r2.smin = max(s64(r1.smin + 1), r2.smin)
