"""Tristate numbers: the known-bits abstraction of kernel/bpf/tnum.c.

A :class:`Tnum` ``(value, mask)`` stands for every 64-bit ``x`` with
``x & ~mask == value``: bits set in ``mask`` are unknown, the others equal
``value``'s.  The verifier keeps one per scalar register (``var_off``) next to
the interval bounds; each operation here is the kernel's, so a program's
register knowledge (and thus accept/reject) matches kernel/bpf/verifier.c.
"""
from __future__ import annotations

from typing import NamedTuple

U64 = (1 << 64) - 1
U32 = 0xFFFFFFFF


class Tnum(NamedTuple):
    value: int
    mask: int

    # --- constructors -----------------------------------------------------------------
    @staticmethod
    def const(v: int) -> "Tnum":
        return Tnum(v & U64, 0)

    @staticmethod
    def range(lo: int, hi: int) -> "Tnum":
        """``tnum_range``: the smallest tnum containing ``[lo, hi]`` (unsigned)."""
        chi = (lo ^ hi) & U64
        bits = chi.bit_length()
        if bits > 63:
            return UNKNOWN
        delta = (1 << bits) - 1
        return Tnum(lo & ~delta & U64, delta)

    # --- predicates -------------------------------------------------------------------
    def is_const(self) -> bool:
        return self.mask == 0

    def is_unknown(self) -> bool:
        return self.mask == U64

    def contains(self, other: "Tnum") -> bool:
        """``tnum_in(self, other)``: every value of ``other`` is a value of ``self``."""
        if other.mask & ~self.mask & U64:
            return False
        return self.value == other.value & ~self.mask & U64

    def is_aligned(self, size: int) -> bool:
        return not size or not ((self.value | self.mask) & (size - 1))

    # --- arithmetic (tnum.c) ----------------------------------------------------------
    def lshift(self, n: int) -> "Tnum":
        return Tnum((self.value << n) & U64, (self.mask << n) & U64)

    def rshift(self, n: int) -> "Tnum":
        return Tnum(self.value >> n, self.mask >> n)

    def arshift(self, n: int, insn_bitness: int) -> "Tnum":
        """``tnum_arshift``: sign bit of a 32- or 64-bit quantity shifted in."""
        if insn_bitness == 32:
            return Tnum(_sext(self.value, 32) >> n & U32, _sext(self.mask, 32) >> n & U32)
        return Tnum(_sext(self.value, 64) >> n & U64, _sext(self.mask, 64) >> n & U64)

    def add(self, b: "Tnum") -> "Tnum":
        sm = (self.mask + b.mask) & U64
        sv = (self.value + b.value) & U64
        sigma = (sm + sv) & U64
        chi = sigma ^ sv
        mu = chi | self.mask | b.mask
        return Tnum(sv & ~mu & U64, mu & U64)

    def sub(self, b: "Tnum") -> "Tnum":
        dv = (self.value - b.value) & U64
        alpha = (dv + self.mask) & U64
        beta = (dv - b.mask) & U64
        chi = alpha ^ beta
        mu = chi | self.mask | b.mask
        return Tnum(dv & ~mu & U64, mu & U64)

    def neg(self) -> "Tnum":
        return ZERO.sub(self)

    def and_(self, b: "Tnum") -> "Tnum":
        alpha = self.value | self.mask
        beta = b.value | b.mask
        v = self.value & b.value
        return Tnum(v, alpha & beta & ~v & U64)

    def or_(self, b: "Tnum") -> "Tnum":
        v = self.value | b.value
        mu = self.mask | b.mask
        return Tnum(v, mu & ~v & U64)

    def xor(self, b: "Tnum") -> "Tnum":
        v = self.value ^ b.value
        mu = self.mask | b.mask
        return Tnum(v & ~mu & U64, mu)

    def mul(self, b: "Tnum") -> "Tnum":
        """``tnum_mul`` (the 6.x long-multiplication form)."""
        a = self
        acc_v = (a.value * b.value) & U64
        acc_m = ZERO
        while a.value or a.mask:
            if a.value & 1:
                acc_m = acc_m.add(Tnum(0, b.mask))
            elif a.mask & 1:
                acc_m = acc_m.add(Tnum(0, b.value | b.mask))
            a = a.rshift(1)
            b = b.lshift(1)
        return Tnum(acc_v, 0).add(acc_m)

    def intersect(self, b: "Tnum") -> "Tnum":
        v = self.value | b.value
        mu = self.mask & b.mask
        return Tnum(v & ~mu & U64, mu)

    def cast(self, size: int) -> "Tnum":
        """``tnum_cast``: keep the low ``size`` bytes."""
        m = (1 << (size * 8)) - 1
        return Tnum(self.value & m, self.mask & m)

    def subreg(self) -> "Tnum":
        return self.cast(4)

    def clear_subreg(self) -> "Tnum":
        return self.rshift(32).lshift(32)

    def with_subreg(self, sub: "Tnum") -> "Tnum":
        return self.clear_subreg().or_(sub.cast(4))

    def const_subreg(self, v: int) -> "Tnum":
        return self.with_subreg(Tnum.const(v & U32))

    def umin(self) -> int:
        return self.value

    def umax(self) -> int:
        return self.value | self.mask

    def __str__(self) -> str:
        return f"(0x{self.value:x}; 0x{self.mask:x})"


def _sext(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


UNKNOWN = Tnum(0, U64)
ZERO = Tnum(0, 0)
