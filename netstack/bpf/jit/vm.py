"""``JitVm``: the interpreter's :class:`~netstack.bpf.interp.Vm` with a native code engine.

It *is* a ``Vm`` -- same constructor, address space, stacks, helper table and
``run``/``run_mem`` API -- so everything built on the interpreter (helpers,
contexts, :class:`~netstack.bpf.progs.Program`, test_run) works unchanged;
only the instruction execution is native.  The Python side:

* publishes the region table before each run and after each helper call
  (helpers may map regions, e.g. ``ringbuf_reserve``, or grow map storage);
  a ``bytearray``'s address is taken through a momentary buffer export, a
  ``bytes`` object's through ``c_char_p`` (read-only: ``wsize = 0``), and any
  other or empty buffer gets size 0 so every access takes the slow path;
* serves the slow path with the interpreter's ``AddressSpace`` loaders and
  storers (special regions, faults with the interpreter's messages);
* calls helpers exactly as ``Vm._call_helper`` does, with ``vm.regs`` R0-R5
  set first (``bpf_tail_call`` returns R0 when it falls through);
* turns native faults into the interpreter's exceptions (``ProgramExit`` from
  a helper or a failed LD_ABS ends the run with that R0).
"""
from __future__ import annotations

import ctypes
from typing import Any, Mapping, Sequence

from .. import context as C
from .. import helpers as H
from .. import insn as I
from .. import maps as M
from ..errors import BpfError, BpfRuntimeError, NotSupported
from ..insn import Insn
from ..interp import DEFAULT_BUDGET, M64, Helper, LdImm64Resolver, Packet, ProgramExit, Vm
from . import codegen as G
from . import layout as L
from .engine import Compiled

_TABLE_MIN = 64
#: Longest program compiled: LLVM's time grows with function size and a verified program may be
#: up to 1 M instructions (BPF_COMPLEXITY_LIMIT_INSNS); beyond this, use the interpreter.
MAX_JIT_INSNS = 100_000


def _buffer_address(buf: Any) -> tuple[int, int, bool]:
    """(address, length, writable) of a region buffer; length 0 means "slow path only"."""
    n = len(buf)
    if n == 0:
        return 0, 0, False
    if type(buf) is bytearray:
        return ctypes.addressof(ctypes.c_char.from_buffer(buf)), n, True
    if type(buf) is bytes:
        return ctypes.cast(ctypes.c_char_p(buf), ctypes.c_void_p).value or 0, n, False
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(buf)), n, True
    except (TypeError, ValueError):
        return 0, 0, False


class JitVm(Vm):
    """A :class:`Vm` whose program runs as native code (LLVM MCJIT); see the module docstring.

    ``opt`` is the LLVM optimisation level (2 by default; 0 compiles faster); ``batch`` also
    compiles the XDP batch loop (:class:`~netstack.bpf.jit.batch.XdpBatch` needs it).
    Raises :class:`~netstack.bpf.errors.NotSupported` for what the interpreter
    also refuses at construction.
    """

    def __init__(self, program: Sequence[Insn] | bytes, helpers: Mapping[int, Helper] | None = None, *,
                 ld_imm64: LdImm64Resolver | None = None, budget: int = DEFAULT_BUDGET, opt: int = 2,
                 batch: bool = False) -> None:
        super().__init__(program, helpers, ld_imm64=ld_imm64, budget=budget)
        # A subclass (JitProgVm) may have decided already, before the Vm constructors ran.
        self._jit_batch: bool = getattr(self, "_jit_batch", batch)
        self._jit_setup(opt)

    # -- compilation ------------------------------------------------------------------------
    def _jit_setup(self, opt: int) -> None:
        if len(self.insns) > MAX_JIT_INSNS:
            raise NotSupported(f"JIT of programs over {MAX_JIT_INSNS} instructions ({len(self.insns)})")
        rids = [s >> 32 for s in self.stacks]
        if rids != list(range(rids[0], rids[0] + len(rids))) or any(s & 0xFFFFFFFF for s in self.stacks):
            raise BpfRuntimeError("JIT needs the call-frame stacks as consecutive regions")
        self.plan = self._plan()
        self.plan.batch = self._jit_batch
        self.compiled = Compiled(G.generate(self.plan), opt=opt)
        self._f0 = L.FUNC_CFUNC(self.compiled.address("bpf_f0"))
        self._batch_fn = L.BATCH_CFUNC(self.compiled.address("bpf_batch")) if self._jit_batch else None
        self.state = (ctypes.c_uint64 * L.STATE_SLOTS)()
        self._regs_buf = (ctypes.c_uint64 * I.MAX_BPF_REG)()
        self._table: ctypes.Array[ctypes.c_uint64] = (ctypes.c_uint64 * (3 * _TABLE_MIN))()
        self._pending: BaseException | None = None
        self._xdp: C.XdpContext | None = None
        # Keep the trampolines alive as long as the code that calls them.
        self._cb_slow = L.SLOW_MEM_CFUNC(self._slow_mem)
        self._cb_helper = L.HELPER_CFUNC(self._helper)
        self._cb_ldpkt = L.LDPKT_CFUNC(self._ldpkt)
        st = self.state
        st[L.S_REGIONS] = ctypes.addressof(self._table)
        st[L.S_SLOW_MEM] = ctypes.cast(self._cb_slow, ctypes.c_void_p).value or 0
        st[L.S_HELPER] = ctypes.cast(self._cb_helper, ctypes.c_void_p).value or 0
        st[L.S_LDPKT] = ctypes.cast(self._cb_ldpkt, ctypes.c_void_p).value or 0
        st[L.S_CTX_RID] = L.NO_RID
        st[L.S_PKT_RID] = L.NO_RID
        st[L.S_STACK0] = rids[0]
        # The stacks are ours and never resized: hold a buffer export on each (which also forbids
        # resizing) so their addresses are fixed and need no lookup per run.
        self._fixed: dict[int, tuple[object, int, ctypes.Array[ctypes.c_char]]] = {}
        for base in self.stacks:
            buf = self.mem.bufs[base >> 32]
            view = (ctypes.c_char * len(buf)).from_buffer(buf)
            self._fixed[base >> 32] = (buf, ctypes.addressof(view), view)

    def _plan(self) -> G.Plan:
        insns = self.insns
        lddw: dict[int, int] = {}
        pc = 0
        while pc < len(insns):
            ins = insns[pc]
            if ins.is_lddw and pc + 1 < len(insns):
                if ins.src == 0:
                    lddw[pc] = I.lddw_value(ins, insns[pc + 1])
                elif self.ld_imm64 is not None:
                    lddw[pc] = self.ld_imm64(ins.src, ins.imm & 0xFFFFFFFF, insns[pc + 1].imm & 0xFFFFFFFF) & M64
                pc += 2
                continue
            pc += 1
        # The per-frame stack zeroing can be skipped only when nothing can ever write a stack: no
        # store and no call at all (a forged pointer could reach the stack without naming R10).
        uses_stack = any(ins.dst == 10 or ins.src == 10 or ins.opcode & 0x07 in (I.BPF_ST, I.BPF_STX)
                         or ins.opcode & 0xF0 == I.BPF_CALL and ins.opcode & 0x07 in (I.BPF_JMP, I.BPF_JMP32)
                         for ins in insns)
        plan = G.Plan(insns, lddw, uses_stack)
        plan.inline_lookup = self.helpers.get(1) is H.map_lookup_elem
        plan.inline_csum_diff = self.helpers.get(G.CSUM_DIFF) is H.csum_diff
        if plan.inline_lookup:
            plan.native_maps = self._native_maps(lddw.values())
        return plan

    def _native_maps(self, values: Any) -> list[G.NativeArrayMap]:
        """Array maps the program names with ``lddw rX, fd`` whose lookups can be inlined."""
        out: list[G.NativeArrayMap] = []
        bases = getattr(self, "_map_bases", {})
        for v in set(values):
            try:
                obj = self.mem.object_at(v)
            except BpfRuntimeError:
                continue
            if not isinstance(obj, H.MapRef) or v & 0xFFFFFFFF:
                continue
            m = obj.map
            if (isinstance(m, M.ArrayMap) and not m.percpu and not m.map_flags & M.BPF_F_WRONLY_PROG
                    and id(m) in bases):
                out.append(G.NativeArrayMap(v, bases[id(m)], m.max_entries, m.elem))
        return out

    # -- region table ---------------------------------------------------------------------------
    def _sync_regions(self) -> None:
        bufs, writable = self.mem.bufs, self.mem.writable
        n = len(bufs)
        if 3 * n > len(self._table):
            self._table = (ctypes.c_uint64 * (3 * max(n, 2 * len(self._table) // 3)))()
            self.state[L.S_REGIONS] = ctypes.addressof(self._table)
        t = self._table
        t[0] = t[1] = t[2] = 0
        fixed = self._fixed
        for rid in range(1, n):
            buf = bufs[rid]
            pinned = fixed.get(rid)
            if pinned is not None and pinned[0] is buf:
                base, size, w = pinned[1], len(buf), True
            else:
                base, size, w = _buffer_address(buf)
            k = 3 * rid
            t[k] = base
            t[k + 1] = size
            t[k + 2] = size if (w and writable[rid]) else 0
        self.state[L.S_NREGIONS] = n
        xdp = None
        for rid, handler in self.mem.special.items():
            if isinstance(handler, C.XdpContext) and rid < n:
                xdp = handler
                self.state[L.S_CTX_RID] = rid
        if xdp is None:
            self.state[L.S_CTX_RID] = L.NO_RID
        self._xdp = xdp
        if xdp is not None:
            self._xdp_to_state()

    def _xdp_to_state(self) -> None:
        x = self._xdp
        assert x is not None
        p, st = x.pkt, self.state
        st[L.S_XDP] = p.base + p.data
        st[L.S_XDP + 1] = p.base + p.data_end
        st[L.S_XDP + 2] = p.base + p.data_meta
        st[L.S_XDP + 3] = x.ingress_ifindex & 0xFFFFFFFF
        st[L.S_XDP + 4] = x.rx_queue_index & 0xFFFFFFFF

    def _xdp_from_state(self) -> None:
        x = self._xdp
        assert x is not None
        p, st = x.pkt, self.state
        p.data = st[L.S_XDP] - p.base
        p.data_end = st[L.S_XDP + 1] - p.base
        p.data_meta = st[L.S_XDP + 2] - p.base

    # -- callbacks (never let an exception cross into native code) ---------------------------------
    def _fail(self, exc: BaseException, pc: int) -> int:
        self._pending = exc
        self.state[L.S_FAULT] = L.FAULT_PY
        self.state[L.S_FAULT_PC] = pc
        return 0

    def _slow_mem(self, kind: int, addr: int, size: int, value: int, pc: int) -> int:
        try:
            if kind == L.SLOW_LOAD:
                return self.mem.load[size](addr) & M64
            self.mem.store[size](addr, value)
            return 0
        except BaseException as exc:  # noqa: BLE001 -- re-raised by run()
            return self._fail(exc, pc)

    def _helper(self, hid: int, r0: int, r1: int, r2: int, r3: int, r4: int, r5: int, pc: int) -> int:
        try:
            if self._xdp is not None:
                self._xdp_from_state()
            r = self.regs
            r[0], r[1], r[2], r[3], r[4], r[5] = r0, r1, r2, r3, r4, r5
            self._call_helper(hid)
            self._sync_regions()
            self.state[L.S_PKT_DIRTY] = 1
            return r[0] & M64
        except BaseException as exc:  # noqa: BLE001 -- re-raised by run()
            return self._fail(exc, pc)

    def _ldpkt(self, offset: int, size: int, pc: int) -> int:
        try:
            pkt = self.packet
            if pkt is None:
                raise BpfRuntimeError("LD_ABS/LD_IND without a packet")
            value = pkt.load(offset, size)
            if value is None:
                raise ProgramExit(0)
            return value
        except BaseException as exc:  # noqa: BLE001 -- re-raised by run()
            return self._fail(exc, pc)

    # -- running ------------------------------------------------------------------------------------
    def _raise_fault(self) -> int:
        """Turn the state block's fault into the interpreter's outcome: R0 or an exception."""
        st = self.state
        code, pc = st[L.S_FAULT], st[L.S_FAULT_PC]
        st[L.S_FAULT] = 0
        if code == L.FAULT_PY:
            exc, self._pending = self._pending, None
            if isinstance(exc, ProgramExit):
                self.regs[0] = exc.value
                return exc.value
            if isinstance(exc, BpfRuntimeError):
                if exc.pc is None:
                    exc.pc = pc
                    exc.args = (f"pc {pc}: {exc.message}",)
                raise exc
            if isinstance(exc, BpfError) or exc is None:
                raise exc or BpfRuntimeError("native fault without an exception", pc)
            if isinstance(exc, (ArithmeticError, ValueError, TypeError, IndexError)):
                raise BpfRuntimeError(f"helper or runtime failure: {exc!r}", pc) from exc
            raise exc
        if code == L.FAULT_BUDGET:
            raise BpfRuntimeError("instruction budget exhausted (unbounded loop?)", pc)
        if code == L.FAULT_DEPTH:
            raise BpfRuntimeError(f"call depth exceeds {I.MAX_CALL_FRAMES} frames", pc)
        raise BpfRuntimeError(self.plan.trap_msgs.get(pc, "invalid instruction"), pc)

    def run(self, args: Sequence[int] = (), *, packet: Packet | None = None) -> int:
        """As :meth:`Vm.run`, executing native code."""
        if len(args) > 5:
            raise BpfRuntimeError("at most 5 arguments (R1-R5)")
        r = self.regs
        for k in range(I.MAX_BPF_REG):
            r[k] = 0
        rb = self._regs_buf
        ctypes.memset(rb, 0, ctypes.sizeof(rb))
        for k, v in enumerate(args, 1):
            rb[k] = r[k] = v & M64
        self.frames.clear()
        self.packet = packet
        st = self.state
        st[L.S_BUDGET] = self.budget_limit
        st[L.S_FAULT] = 0
        self._pending = None
        self._sync_regions()
        self._f0(ctypes.addressof(st), ctypes.addressof(rb), 0)
        if st[L.S_FAULT]:
            return self._raise_fault()
        r[0] = rb[0]
        return r[0]


def jit_asm(vm: JitVm) -> str:
    """Machine code of a compiled program as assembly text."""
    return vm.compiled.asm()
