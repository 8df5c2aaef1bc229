"""Memory access checks: ``check_mem_access`` and its per-region helpers (verifier.c).

Stack, map value, ringbuf memory, context and packet accesses are checked
here with the kernel's messages (``invalid access to packet, off=0 size=1,
R2(id=0,off=0,r=0)``, ``invalid write to stack R10 off=-520 size=8``,
``invalid access to map value, value_size=8 off=8 size=4``, ``R0 invalid mem
access 'map_value_or_null'``, ...).  The stack model is the kernel's:
aligned 8-byte spills keep the register, narrower scalar spills at a slot
start keep the value, other writes leave STACK_MISC (STACK_ZERO for zeros).
"""
from __future__ import annotations

import errno as E
from typing import TYPE_CHECKING

from . import bounds as B
from . import reg_state as RS
from .ctx_access import ctx_access, may_access_direct_pkt_data
from ..errors import NotSupported
from .reg_state import Reg
from .state import INVALID, MISC, SPILL, ZERO, FuncState, Slot

if TYPE_CHECKING:  # pragma: no cover
    from .core import Verifier

BPF_MAX_VAR_OFF = 1 << 29
MAX_BPF_STACK = 512
READ, WRITE = "read", "write"


def tnum_text(r: Reg) -> str:
    return str(r.var_off.value) if r.var_off.is_const() else str(r.var_off)


class MemAccess:
    """Mixin of :class:`~netstack.bpf.verifier.core.Verifier` with the access checks."""

    # --- generic -------------------------------------------------------------------------
    def check_mem_access(self: "Verifier", regno: int, off: int, size: int, t: str, value_regno: int,
                         sx: bool = False, atomic: bool = False) -> None:
        regs = self.st.cur.regs
        reg = regs[regno]
        if reg.type == RS.CONST_PTR_TO_MAP and not reg.maybe_null:
            raise NotSupported("reading struct bpf_map through a map pointer (needs the kernel's BTF)")
        if reg.maybe_null or reg.type in (RS.SCALAR, RS.PTR_TO_PACKET_END, RS.NOT_INIT):
            self.reject(f"R{regno} invalid mem access '{RS.type_str(reg)}'")
        off += reg.off
        val = regs[value_regno] if value_regno >= 0 else None
        if reg.type == RS.PTR_TO_MAP_VALUE:
            if t == WRITE and val is not None and val.is_pointer() and not self.privileged:
                self.reject(f"R{value_regno} leaks addr into map")
            self.check_mem_region(regno, reg, off, size, reg.map.value_size, "map value")
            self._load_result(value_regno, t)
        elif reg.type == RS.PTR_TO_MEM:
            self.check_mem_region(regno, reg, off, size, reg.mem_size, "memory")
            self._load_result(value_regno, t)
        elif reg.type == RS.PTR_TO_CTX:
            if t == WRITE and val is not None and val.is_pointer() and not self.privileged:
                self.reject(f"R{value_regno} leaks addr into ctx")
            self.check_ptr_off_reg(reg, regno)
            rtype = ctx_access(self.prog_type, off, size, t == WRITE)
            if rtype is None:
                self.reject(f"invalid bpf_context access off={off} size={size}")
            if t == READ and value_regno >= 0:
                if rtype == RS.SCALAR:
                    RS.mark_unknown(regs[value_regno])
                else:
                    regs[value_regno] = RS.new_ptr(rtype)
        elif reg.type == RS.PTR_TO_STACK:
            self.check_stack_access(regno, reg, off, size, t, value_regno)
        elif reg.is_pkt():
            if t == WRITE and not may_access_direct_pkt_data(self.prog_type):
                self.reject("cannot write into packet")
            if t == WRITE and val is not None and val.is_pointer() and not self.privileged:
                self.reject(f"R{value_regno} leaks addr into packet")
            self.check_packet_access(regno, reg, off, size)
            self._load_result(value_regno, t)
        else:
            self.reject(f"R{regno} invalid mem access '{RS.type_str(reg)}'")
        if t == READ and value_regno >= 0 and size < 8 and regs[value_regno].type == RS.SCALAR:
            if sx:
                B.coerce_to_size_sx(regs[value_regno], size)
            else:
                B.coerce_to_size(regs[value_regno], size)

    def _load_result(self: "Verifier", value_regno: int, t: str) -> None:
        if t == READ and value_regno >= 0:
            RS.mark_unknown(self.st.cur.regs[value_regno])

    def check_ptr_off_reg(self: "Verifier", reg: Reg, regno: int) -> None:
        """``__check_ptr_off_reg`` with fixed_off_ok=false (ctx pointers must be unmodified)."""
        if reg.off < 0:
            self.reject(f"negative offset {RS.type_str(reg)} ptr R{regno} off={reg.off} disallowed")
        if reg.off:
            self.reject(f"dereference of modified {RS.type_str(reg)} ptr R{regno} off={reg.off} disallowed")
        if not reg.var_off.is_const() or reg.var_off.value:
            self.reject(f"variable {RS.type_str(reg)} access var_off={reg.var_off} disallowed")

    def _mem_fail(self: "Verifier", regno: int, reg: Reg, off: int, size: int, mem_size: int, what: str) -> str:
        if reg.is_pkt():
            return f"invalid access to packet, off={off} size={size}, R{regno}(id={reg.id},off={off},r={mem_size})"
        if what == "map value":
            return f"invalid access to map value, value_size={mem_size} off={off} size={size}"
        return f"invalid access to memory, mem_size={mem_size} off={off} size={size}"

    def _check_mem(self: "Verifier", regno: int, reg: Reg, off: int, size: int, mem_size: int, what: str,
                   zero_ok: bool = False) -> bool:
        size_ok = size > 0 or (size == 0 and zero_ok)
        if off >= 0 and size_ok and off + size <= mem_size:
            return True
        self.log(self._mem_fail(regno, reg, off, size, mem_size, what) + "\n")
        return False

    def check_mem_region(self: "Verifier", regno: int, reg: Reg, off: int, size: int, mem_size: int,
                         what: str, zero_ok: bool = False) -> None:
        """``check_mem_region_access``: the whole variable range must stay inside ``mem_size``."""
        if reg.smin < 0 and (reg.smin == RS.S64_MIN or not -(1 << 31) <= off + reg.smin < (1 << 31)
                             or reg.smin + off < 0):
            self.reject(f"R{regno} min value is negative, either use unsigned index or do a if (index >=0) check.")
        if not self._check_mem(regno, reg, reg.smin + off, size, mem_size, what, zero_ok):
            self.reject(f"R{regno} min value is outside of the allowed memory range")
        if reg.umax >= BPF_MAX_VAR_OFF:
            self.reject(f"R{regno} unbounded memory access, make sure to bounds check any such access")
        if not self._check_mem(regno, reg, reg.umax + off, size, mem_size, what, zero_ok):
            self.reject(f"R{regno} max value is outside of the allowed memory range")

    def check_packet_access(self: "Verifier", regno: int, reg: Reg, off: int, size: int,
                            zero_ok: bool = False) -> None:
        if reg.smin < 0:
            self.reject(f"R{regno} min value is negative, either use unsigned index or do a if (index >=0) check.")
        if reg.range < 0 or not self._check_mem(regno, reg, off, size, reg.range, "packet", zero_ok):
            self.reject(f"R{regno} offset is outside of the packet")

    # --- stack ---------------------------------------------------------------------------
    def stack_frame(self: "Verifier", reg: Reg) -> FuncState:
        return self.st.frames[reg.frameno]

    def check_stack_bounds(self: "Verifier", regno: int, reg: Reg, off: int, size: int, extra: str,
                           t: str) -> tuple[int, int]:
        """``check_stack_access_within_bounds``; returns (min_off, max_off) of the access."""
        if reg.var_off.is_const():
            min_off = reg.var_off.value + off
            if min_off >= 1 << 63:
                min_off -= 1 << 64
            max_off = min_off + size
        else:
            if reg.smax >= BPF_MAX_VAR_OFF or reg.smin <= -BPF_MAX_VAR_OFF:
                self.reject(f"invalid unbounded variable-offset{extra} stack R{regno}")
            min_off = reg.smin + off
            max_off = reg.smax + off + size
        err = 0
        min_valid = -MAX_BPF_STACK
        if min_off < min_valid or min_off > -1:
            err = E.EACCES
        elif max_off > 0 or size < 0:
            err = E.EINVAL
        if err:
            if reg.var_off.is_const():
                self.reject(f"invalid{extra} stack R{regno} off={off} size={size}", err)
            self.reject(f"invalid variable-offset{extra} stack R{regno} var_off={reg.var_off} off={off} size={size}",
                        err)
        return min_off, max_off

    def _touch_depth(self: "Verifier", frame: FuncState, min_off: int) -> None:
        sub = self.subprog_of_frame(frame)
        if -min_off > self.stack_depth[sub]:
            self.stack_depth[sub] = -min_off

    def check_stack_access(self: "Verifier", regno: int, reg: Reg, off: int, size: int, t: str,
                           value_regno: int) -> None:
        total = off + (reg.var_off.value if reg.var_off.is_const() else 0)
        if reg.var_off.is_const() and total % size:
            self.reject(f"misaligned stack access off {tnum_text(reg)}+{reg.off}+{off - reg.off} size {size}")
        if not reg.var_off.is_const() and not reg.var_off.add(RS.Tnum.const(off)).is_aligned(size):
            self.reject(f"misaligned stack access off {tnum_text(reg)}+{reg.off}+{off - reg.off} size {size}")
        extra = " read from" if t == READ else " write to"
        min_off, max_off = self.check_stack_bounds(regno, reg, off, size, extra, t)
        frame = self.stack_frame(reg)
        if not reg.var_off.is_const():
            if not self.privileged:
                self.reject(f"R{regno} variable stack access prohibited for !root, var_off={reg.var_off} off={off}")
            self._touch_depth(frame, min_off)
            if t == WRITE:
                val = self.st.cur.regs[value_regno] if value_regno >= 0 else None
                zero = (val is None and self.cur_insn.imm == 0) or (val is not None and val.is_scalar()
                                                                    and val.is_const() and val.var_off.value == 0)
                for o in range(min_off, max_off):
                    self._set_byte(frame, o, ZERO if zero else MISC, var=True)
            else:
                self.check_stack_range_init(regno, reg, frame, min_off, max_off, size, READ, " read from",
                                            var=True)
                if value_regno >= 0:
                    RS.mark_unknown(self.st.cur.regs[value_regno])
            return
        self._touch_depth(frame, min_off)
        if t == WRITE:
            self.stack_write_fixed(frame, min_off, size, value_regno)
        else:
            self.stack_read_fixed(frame, min_off, size, value_regno)

    def _slot(self: "Verifier", frame: FuncState, o: int, create: bool = True) -> tuple[int, int, Slot]:
        spi = (-o - 1) // 8
        k = o + 8 * (spi + 1)
        slot = frame.stack.get(spi)
        if slot is None:
            slot = Slot()
            if create:
                frame.stack[spi] = slot
        return spi, k, slot

    def _set_byte(self: "Verifier", frame: FuncState, o: int, typ: str, var: bool = False) -> None:
        spi, k, slot = self._slot(frame, o)
        if SPILL in slot.types:
            if not self.privileged and slot.spilled is not None and slot.spilled.type != RS.SCALAR:
                if var:
                    self.reject(f"spilled ptr in range of var-offset stack write; insn {self.idx}")
                self.reject("attempt to corrupt spilled pointer on stack")
            slot.types = slot.types.replace(SPILL, MISC)
            slot.spilled = None
        slot.types = slot.types[:k] + typ + slot.types[k + 1:]

    def stack_write_fixed(self: "Verifier", frame: FuncState, off: int, size: int, value_regno: int) -> None:
        """``check_stack_write_fixed_off``."""
        regs = self.st.cur.regs
        val = regs[value_regno] if value_regno >= 0 else None
        spi, k, slot = self._slot(frame, off)
        if val is not None and k == 0 and val.type == RS.SCALAR and self.privileged and size <= 8:
            self._spill(frame, spi, val, size, tie=val.umax < (1 << (8 * size)))
            return
        if val is None and k == 0 and self.privileged:
            fake = RS.mark_known(Reg(), self.cur_insn.imm)
            self._spill(frame, spi, fake, size, tie=False)
            return
        if val is not None and val.is_pointer():
            if size != 8:
                self.reject("invalid size of register spill")
            if frame is not self.st.cur and val.type == RS.PTR_TO_STACK:
                self.reject("cannot spill pointers to stack into stack frame of the caller", E.EINVAL)
            self._spill(frame, spi, val, 8, tie=False)
            return
        if val is not None and k == 0 and size == 8:  # unprivileged scalar spill
            self._spill(frame, spi, val, 8, tie=False)
            return
        zero = (val is not None and val.is_scalar() and val.is_const() and val.var_off.value == 0) or \
               (val is None and self.cur_insn.imm == 0)
        for o in range(off, off + size):
            self._set_byte(frame, o, ZERO if zero else MISC)

    def _spill(self: "Verifier", frame: FuncState, spi: int, val: Reg, size: int, tie: bool) -> None:
        old = frame.stack.get(spi, Slot())
        if SPILL in old.types and old.spilled is not None and old.spilled.type != RS.SCALAR \
                and size != 8 and not self.privileged:
            self.reject("attempt to corrupt spilled pointer on stack")
        if tie and val.type == RS.SCALAR and not val.id and not val.is_const():
            val.id = self.new_id()
        sp = val.copy()
        if not tie and val.type == RS.SCALAR and size < 8:
            sp.id = 0
        # mark_stack_slot_misc: the bytes a narrow spill does not cover stay ZERO/INVALID, else MISC
        rest = "".join(t if t in (ZERO, INVALID) else MISC for t in old.types[size:])
        frame.stack[spi] = Slot(SPILL * size + rest, sp)

    def stack_read_fixed(self: "Verifier", frame: FuncState, off: int, size: int, value_regno: int) -> None:
        """``check_stack_read_fixed_off``."""
        spi, k, slot = self._slot(frame, off, create=False)
        regs = self.st.cur.regs
        types = slot.types
        spill_size = len(types) - len(types.lstrip(SPILL)) if types.startswith(SPILL) else 0
        if slot.spilled is not None and SPILL in types:
            sp = slot.spilled
            if size != 8 or spill_size != 8:
                if sp.type != RS.SCALAR:
                    self.reject("invalid size of register fill")
                if value_regno < 0:
                    return
                if k == 0 and size <= spill_size:
                    regs[value_regno] = sp.copy()
                    if size < 8 and sp.umax >= (1 << (8 * size)):
                        regs[value_regno].id = 0
                    return
                for i in range(k, k + size):
                    t = types[i]
                    if t in (SPILL, MISC, ZERO) or (t == INVALID and self.privileged):
                        continue
                    self.reject(f"invalid read from stack off {off}+{i - k} size {size}")
                RS.mark_unknown(regs[value_regno])
                return
            if value_regno >= 0:
                regs[value_regno] = sp.copy()
            return
        zeros = 0
        for i in range(k, k + size):
            t = types[i]
            if t == MISC:
                continue
            if t == ZERO:
                zeros += 1
                continue
            if t == INVALID and self.privileged:
                continue
            self.reject(f"invalid read from stack off {off}+{i - k} size {size}")
        if value_regno >= 0:
            if zeros == size:
                RS.mark_known(regs[value_regno], 0)
            else:
                RS.mark_unknown(regs[value_regno])

    def check_stack_range_init(self: "Verifier", regno: int, reg: Reg, frame: FuncState, min_off: int,
                               max_off: int, size: int, t: str, extra: str, var: bool = False,
                               raw: bool = False) -> None:
        """``check_stack_range_initialized`` for helper arguments and variable-offset reads."""
        clobber = t == WRITE
        lo = min_off
        hi = (max_off if var else min_off + size)
        if raw:
            for o in range(lo, hi):
                self._set_byte(frame, o, MISC)
            return
        for o in range(lo, hi):
            spi, k, slot = self._slot(frame, o, create=False)
            st = slot.types[k]
            if st == MISC:
                continue
            if st == ZERO or (st == INVALID and self.privileged):
                if clobber:
                    self._set_byte(frame, o, MISC)
                continue
            if st == SPILL and slot.spilled is not None and (slot.spilled.type == RS.SCALAR or self.privileged):
                if clobber:
                    frame.stack[spi] = Slot(slot.types.replace(SPILL, MISC), None)
                continue
            if reg.var_off.is_const():
                self.reject(f"invalid{extra} read from stack R{regno} off {min_off}+{o - min_off} size {size}")
            self.reject(f"invalid{extra} read from stack R{regno} var_off {reg.var_off}+{o - min_off} size {size}")

    def helper_mem_access(self: "Verifier", regno: int, size: int, t: str, zero_ok: bool, raw: bool = False) -> None:
        """``check_helper_mem_access``: a helper reads/writes ``size`` bytes at register ``regno``."""
        reg = self.st.cur.regs[regno]
        if reg.is_pkt():
            self.check_packet_access(regno, reg, reg.off, size, zero_ok)
            return
        if reg.type == RS.PTR_TO_MAP_VALUE and not reg.maybe_null:
            self.check_mem_region(regno, reg, reg.off, size, reg.map.value_size, "map value", zero_ok)
            return
        if reg.type == RS.PTR_TO_MEM and not reg.maybe_null:
            self.check_mem_region(regno, reg, reg.off, size, reg.mem_size, "memory", zero_ok)
            return
        if reg.type == RS.PTR_TO_STACK:
            if size == 0 and not zero_ok:
                self.reject("invalid zero-sized read")
            min_off, max_off = self.check_stack_bounds(regno, reg, reg.off, size, " read from" if t == READ
                                                       else " write to", t)
            frame = self.stack_frame(reg)
            if not reg.var_off.is_const() and not self.privileged:
                self.reject(f"R{regno} variable offset stack access prohibited for !root, var_off={reg.var_off}")
            self._touch_depth(frame, min_off)
            self.check_stack_range_init(regno, reg, frame, min_off, max_off, size, t, " indirect",
                                        var=not reg.var_off.is_const(), raw=raw)
            return
        if zero_ok and size == 0 and reg.is_scalar() and reg.is_const() and reg.var_off.value == 0:
            return
        self.reject(f"R{regno} type={RS.type_str(reg)} expected=fp")
