"""Helper calls and bpf-to-bpf calls: ``check_helper_call``, ``check_func_arg``,
``check_func_call`` and ``prepare_func_exit`` (kernel/bpf/verifier.c).

Arguments are checked against :mod:`.helper_protos` with the kernel's
messages (``R1 type=scalar expected=map_ptr``, ``R2 invalid zero-sized read:
u64=[0,0]``, ``R2 min value is negative, either use unsigned or 'var &=
const'``); R1-R5 are clobbered and R0 set from the return type: a
``map_value_or_null`` with a fresh id for ``bpf_map_lookup_elem`` (null
propagation), an acquired ``ringbuf_mem_or_null`` reference for
``bpf_ringbuf_reserve``.  Helpers that move packet data invalidate every
packet pointer (``clear_all_pkt_pointers``).
"""
from __future__ import annotations

import errno as E
from typing import TYPE_CHECKING

from .. import helpers as H
from .. import maps as M
from ..errors import NotSupported
from . import helper_protos as P
from . import bounds as B
from . import reg_state as RS
from .memaccess import READ, WRITE

if TYPE_CHECKING:  # pragma: no cover
    from .core import Verifier

MAX_CALL_FRAMES = 8
BPF_MAX_VAR_SIZ = 1 << 29

#: check_map_func_compatibility: map types usable only with these helpers
_MAP_ONLY = {
    M.BPF_MAP_TYPE_PROG_ARRAY: {H.BPF_FUNC_tail_call},
    M.BPF_MAP_TYPE_PERF_EVENT_ARRAY: {H.BPF_FUNC_perf_event_output},
    M.BPF_MAP_TYPE_RINGBUF: {H.BPF_FUNC_ringbuf_output, H.BPF_FUNC_ringbuf_reserve, H.BPF_FUNC_ringbuf_query},
    M.BPF_MAP_TYPE_DEVMAP: {H.BPF_FUNC_redirect_map, H.BPF_FUNC_map_lookup_elem},
    M.BPF_MAP_TYPE_XSKMAP: {H.BPF_FUNC_redirect_map, H.BPF_FUNC_map_lookup_elem, H.BPF_FUNC_map_delete_elem},
}
_MEM_TYPES = (RS.PTR_TO_STACK, RS.PTR_TO_PACKET, RS.PTR_TO_PACKET_META, RS.PTR_TO_MAP_KEY, RS.PTR_TO_MAP_VALUE,
              RS.PTR_TO_MEM)


class Calls:
    """Mixin of :class:`~netstack.bpf.verifier.core.Verifier` with call handling."""

    def check_helper_call(self: "Verifier", func_id: int) -> None:
        if func_id < 0 or func_id >= P.BPF_FUNC_MAX_ID:
            self.reject(f"invalid func unknown#{func_id}", E.EINVAL)
        proto = P.PROTOS.get(func_id)
        if proto is None:
            raise NotSupported(f"helper #{func_id} in the verifier (only netstack.bpf.helpers.HELPERS are modelled)")
        if func_id not in H.ALLOWED.get(self.prog_type, frozenset()):
            self.reject(f"program of this type cannot use helper {proto.name}#{func_id}", E.EINVAL)
        regs = self.st.cur.regs
        meta: dict = {}
        for i, arg in enumerate(proto.args):
            self.check_func_arg(i + 1, arg, proto, func_id, meta)
        m = meta.get("map")
        if func_id == H.BPF_FUNC_tail_call and m is not None and m.map_type != M.BPF_MAP_TYPE_PROG_ARRAY:
            self.reject_raw("expected prog array map for tail call", E.EINVAL)  # the kernel omits the newline
        if m is not None:
            only = _MAP_ONLY.get(m.map_type)
            if (only is not None and func_id not in only) or \
                    (proto.map_types is not None and m.map_type not in proto.map_types):
                self.reject(f"cannot pass map_type {m.map_type} into func {proto.name}#{func_id}", E.EINVAL)
        if "release" in meta:
            self.release_reference(meta["release"])
        if proto.changes_pkt_data:
            self.clear_all_pkt_pointers()
        for r in range(1, 6):
            regs[r] = RS.not_init()
        if proto.ret == P.RET_INTEGER:
            RS.mark_unknown(regs[0])
        elif proto.ret == P.RET_VOID:
            regs[0] = RS.not_init()
        elif proto.ret == P.RET_MAP_VALUE_OR_NULL:
            key = meta.get("const_key")
            if func_id == H.BPF_FUNC_map_lookup_elem and key is not None and 0 <= key < m.max_entries:
                regs[0] = RS.new_ptr(RS.PTR_TO_MAP_VALUE, map=m)  # in-bounds constant array key: never NULL
            else:
                regs[0] = RS.new_ptr(RS.PTR_TO_MAP_VALUE, map=m, maybe_null=True, id=self.new_id())
        else:  # ringbuf_reserve
            rid = self.new_id()
            self.st.refs.append((rid, self.idx))
            regs[0] = RS.new_ptr(RS.PTR_TO_MEM, maybe_null=True, id=rid, ref_obj_id=rid, mem_size=meta["alloc"])

    def _expect(self: "Verifier", regno: int, reg: RS.Reg, expected: str) -> None:
        self.reject(f"R{regno} type={RS.type_str(reg)} expected={expected}")

    def check_func_arg(self: "Verifier", argno: int, arg: str, proto: P.Proto, func_id: int, meta: dict) -> None:
        regno = argno
        reg = self.st.cur.regs[regno]
        self.check_read(regno)
        if arg == P.ANYTHING:
            if reg.is_pointer() and not self.privileged:
                self.reject(f"R{regno} leaks addr into helper function")
            return
        if arg == P.CONST_MAP_PTR:
            if reg.type != RS.CONST_PTR_TO_MAP:
                self._expect(regno, reg, "map_ptr")
            meta["map"] = reg.map
            return
        if arg == P.PTR_TO_CTX:
            if reg.type != RS.PTR_TO_CTX:
                self._expect(regno, reg, "ctx")
            self.check_ptr_off_reg(reg, regno)
            return
        if arg == P.PTR_TO_RINGBUF_MEM:
            if reg.type != RS.PTR_TO_MEM or reg.maybe_null:
                self._expect(regno, reg, "ringbuf_mem")
            if reg.off or not reg.var_off.is_const() or reg.var_off.value:
                self.reject(f"R{regno} must have zero offset when passed to release func or trusted arg to kfunc")
            if not reg.ref_obj_id:
                self.reject(f"release kernel function {proto.name} expects refcounted PTR_TO_BTF_ID", E.EINVAL)
            meta["release"] = reg.ref_obj_id
            return
        if arg in (P.CONST_SIZE, P.CONST_SIZE_OR_ZERO):
            if reg.type != RS.SCALAR:
                self._expect(regno, reg, "scalar")
            self.check_mem_size_reg(regno, reg, proto.args[argno - 2], arg == P.CONST_SIZE_OR_ZERO)
            return
        if arg == P.CONST_ALLOC_SIZE_OR_ZERO:
            if reg.type != RS.SCALAR:
                self._expect(regno, reg, "scalar")
            if not reg.is_const():
                self.reject(f"R{regno} is not a known constant'")
            meta["alloc"] = reg.var_off.value
            return
        # pointer-to-memory arguments
        nullable = arg == P.PTR_TO_MEM_OR_NULL
        if nullable and reg.is_scalar() and reg.is_const() and reg.var_off.value == 0:
            return
        if reg.type not in _MEM_TYPES or reg.maybe_null:
            self._expect(regno, reg, P.MEM_EXPECTED)
        if reg.is_pkt() and not self.pkt_access:
            self.reject("helper access to the packet is not allowed")
        if arg == P.PTR_TO_MAP_KEY:
            if meta.get("map") is None:
                self.reject("invalid map_ptr to access map->key")
            self.helper_mem_access(regno, meta["map"].key_size, READ, False)
            if meta["map"].map_type in (M.BPF_MAP_TYPE_ARRAY, M.BPF_MAP_TYPE_PERCPU_ARRAY):
                meta["const_key"] = self.constant_map_key(reg, meta["map"].key_size)
        elif arg == P.PTR_TO_MAP_VALUE:
            if meta.get("map") is None:
                self.reject("invalid map_ptr to access map->value")
            self.helper_mem_access(regno, meta["map"].value_size, READ, False)

    def constant_map_key(self: "Verifier", key: RS.Reg, key_size: int) -> int | None:
        """``get_constant_map_key``: the key a stack pointer points at, if the stack holds a constant.

        Either ``key_size`` STACK_ZERO bytes from the key upwards, or a scalar spill of exactly
        ``key_size`` bytes starting at the key whose value is known (privileged programs only).
        """
        if not self.privileged or key.type != RS.PTR_TO_STACK or not key.var_off.is_const():
            return None
        addr = key.off + B.s64(key.var_off.value)
        spi = (-addr - 1) // 8
        k = addr + 8 * (spi + 1)
        slot = self.st.frames[key.frameno].stack.get(spi)
        if slot is None:
            return None
        run = len(slot.types[k:]) - len(slot.types[k:].lstrip("0"))
        if run >= key_size:
            return 0
        sp = slot.spilled
        if slot.types[0] != "r" or sp is None or sp.type != RS.SCALAR:
            return None
        spill = len(slot.types[k:]) - len(slot.types[k:].lstrip("r"))
        if spill != key_size or not sp.is_const():
            return None
        return sp.var_off.value

    def check_mem_size_reg(self: "Verifier", regno: int, reg: RS.Reg, mem_arg: str, zero_ok: bool) -> None:
        """``check_mem_size_reg``: the size argument bounds the access through the previous argument."""
        if reg.smin < 0:
            self.reject(f"R{regno} min value is negative, either use unsigned or 'var &= const'")
        if reg.umin == 0 and not zero_ok:
            self.reject(f"R{regno} invalid zero-sized read: u64=[{reg.umin},{reg.umax}]")
        if reg.umax >= BPF_MAX_VAR_SIZ:
            self.reject(f"R{regno} unbounded memory access, use 'var &= const' or 'if (var < const)'")
        ptr = self.st.cur.regs[regno - 1]
        if mem_arg == P.PTR_TO_MEM_OR_NULL and ptr.is_scalar() and ptr.is_const() and ptr.var_off.value == 0:
            if reg.umax:
                self.reject(f"R{regno - 1} type=scalar expected={P.MEM_EXPECTED}")
            return
        raw = mem_arg == P.PTR_TO_UNINIT_MEM and reg.is_const()
        self.helper_mem_access(regno - 1, reg.umax, WRITE if mem_arg == P.PTR_TO_UNINIT_MEM else READ, zero_ok,
                               raw=raw)

    # --- references ---------------------------------------------------------------------------
    def release_reference(self: "Verifier", ref_id: int) -> None:
        self.st.refs = [(i, at) for i, at in self.st.refs if i != ref_id]
        for f, where, r in list(self.st.all_regs()):
            if r.ref_obj_id == ref_id:
                self._replace(f, where, self._invalid_reg())

    def _invalid_reg(self: "Verifier") -> RS.Reg:
        """``mark_reg_invalid``: unknown scalar for privileged programs, NOT_INIT otherwise."""
        return RS.mark_unknown(RS.Reg()) if self.privileged else RS.not_init()

    def _replace(self: "Verifier", f, where: tuple[str, int], new: RS.Reg) -> None:
        kind, i = where
        if kind == "reg":
            f.regs[i] = new
        else:
            slot = f.stack[i]
            slot.spilled = new
            if new.type == RS.NOT_INIT:
                slot.types = slot.types.replace("r", "m")

    def clear_all_pkt_pointers(self: "Verifier") -> None:
        for f, where, r in list(self.st.all_regs()):
            if r.is_pkt() or r.type == RS.PTR_TO_PACKET_END:
                self._replace(f, where, self._invalid_reg())

    # --- bpf-to-bpf calls ---------------------------------------------------------------------
    def check_func_call(self: "Verifier", target: int) -> None:
        if len(self.st.frames) >= MAX_CALL_FRAMES:
            self.reject(f"the call stack of {len(self.st.frames) + 1} frames is too deep", E.E2BIG)
        caller = self.st.cur
        from .state import FuncState
        callee = FuncState(len(self.st.frames), callsite=self.idx)
        for r in range(1, 6):
            callee.regs[r] = caller.regs[r].copy()
        callee.regs[10] = RS.new_ptr(RS.PTR_TO_STACK, frameno=callee.frameno)
        for r in range(0, 6):
            caller.regs[r] = RS.not_init()
        callee.subprog = self.subprog_index(target)
        self.st.frames.append(callee)

    def prepare_func_exit(self: "Verifier") -> int:
        callee = self.st.frames.pop()
        r0 = callee.regs[0]
        if r0.type == RS.PTR_TO_STACK and r0.frameno == callee.frameno:
            self.reject("cannot return stack pointer to the caller", E.EINVAL)
        self.st.cur.regs[0] = r0
        return callee.callsite + 1
