"""eBPF -> LLVM IR (llvmlite.ir), with the interpreter's semantics and safety model.

One LLVM function per entry point: slot 0 and every bpf-to-bpf call target
(``bpf_f<pc>``); each holds the code reachable from its entry by jumps and
fall-through, so a subprogram is a real function with its own registers.
Registers are ``i64`` allocas (promoted to SSA by the optimiser's mem2reg).
All functions share the signature ``void f(u64 *state, u64 *regs, u64 depth)``:
``regs`` holds R0-R9 on entry (the callee sees the caller's registers, as in
the interpreter's shared register file) and receives R0-R5 on exit (R6-R9
and R10 are the caller's again afterwards -- kernel/bpf/core.c semantics as
the interpreter models them).

Memory safety (see :mod:`.layout`).  Every load, store and atomic computes
``addr = reg + off`` (64-bit wrap), ``rid = addr >> 32``, ``o = addr & 0xffffffff``
and takes the native path only when ``rid < nregions`` and
``o + size <= table[rid].size`` (``.wsize`` for stores, so read-only regions
refuse writes).  Region 0 has size 0, so NULL and small integers never
dereference.  Anything else goes to the Python slow path, which is the
interpreter's own ``AddressSpace`` access: it serves special regions (program
contexts) and raises the interpreter's fault otherwise.  4-byte loads from
the XDP context region are answered natively from the state block.

Runtime rules reproduced (kernel/bpf/core.c, RFC 9669): ``x / 0 = 0``,
``x % 0 = x``; ``INT_MIN s/ -1 = INT_MIN``, ``INT_MIN s% -1 = 0``; shift
counts masked; ALU32 results zero-extended; MOVSX, MEMSX, byte swaps; JMP32;
atomics as load-op-store (the runtime is single-threaded, as the
interpreter); one unit of budget per taken backward jump and per call.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from llvmlite import ir

from .. import insn as I
from ..errors import NotSupported
from ..insn import Insn
from . import layout as L

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
I64P = I64.as_pointer()
I8P = I8.as_pointer()
VOID = ir.VoidType()
M32 = (1 << 32) - 1
M64 = (1 << 64) - 1

FN_TY = ir.FunctionType(VOID, [I64P, I64P, I64])
SLOW_TY = ir.FunctionType(I64, [I64] * 5)
HELPER_TY = ir.FunctionType(I64, [I64] * 8)
LDPKT_TY = ir.FunctionType(I64, [I64] * 3)
_INT = {1: I8, 2: I16, 4: I32, 8: I64}
CSUM_DIFF = 28  # BPF_FUNC_csum_diff

def c64(v: int) -> ir.Constant:
    return ir.Constant(I64, v & M64)

@dataclass
class NativeArrayMap:
    """A non-per-CPU array map whose ``bpf_map_lookup_elem`` is inlined (kernel/bpf/arraymap.c
    ``array_map_lookup_elem``: index < max_entries -> value pointer, else NULL)."""

    ref: int          # the map pointer lddw produces
    values: int       # pointer to element 0 (storage region base)
    max_entries: int
    elem: int         # round_up(value_size, 8)

@dataclass
class Plan:
    """What the code generator needs besides the instructions."""

    insns: Sequence[Insn]
    lddw: dict[int, int]                       # pc -> resolved 64-bit value
    uses_stack: bool
    native_maps: list[NativeArrayMap] = field(default_factory=list)
    inline_lookup: bool = False                # helper 1 is the stock map_lookup_elem
    inline_csum_diff: bool = False             # helper 28 is the stock csum_diff
    batch: bool = False                        # also emit the XDP batch loop (bpf_batch)
    trap_msgs: dict[int, str] = field(default_factory=dict)

def entry_points(insns: Sequence[Insn]) -> list[int]:
    """Slot 0 and every in-range bpf-to-bpf call target."""
    out = {0}
    for pc, ins in enumerate(insns):
        if ins.opcode == (I.BPF_JMP | I.BPF_CALL) and ins.src == I.BPF_PSEUDO_CALL:
            t = pc + 1 + ins.imm
            if 0 <= t < len(insns):
                out.add(t)
    return sorted(out)

def _lddw_seconds(insns: Sequence[Insn]) -> set[int]:
    seconds: set[int] = set()
    pc = 0
    while pc < len(insns):
        if insns[pc].is_lddw:
            seconds.add(pc + 1)
            pc += 2
        else:
            pc += 1
    return seconds

class FunctionGen:
    """Emits one ``bpf_f<entry>`` function."""

    def __init__(self, mod: "ModuleGen", entry: int) -> None:
        self.mod = mod
        self.plan = mod.plan
        self.entry = entry
        self.fn = mod.functions[entry]
        self.state, self.regs_in, self.depth = self.fn.args
        eb = self.fn.append_basic_block("entry")
        self.b = ir.IRBuilder(eb)
        self.r = [self.b.alloca(I64, name=f"r{k}") for k in range(11)]
        self.callbuf = self.b.alloca(ir.ArrayType(I64, 11), name="callregs")
        self.blocks: dict[int, ir.Block] = {}
        self.work: list[int] = []
        self.ret_block = self.fn.append_basic_block("fault_ret")
        ir.IRBuilder(self.ret_block).ret_void()

    # -- small helpers --------------------------------------------------------------------
    def slot(self, k: int, b: ir.IRBuilder | None = None) -> ir.Value:
        b = b or self.b
        return b.gep(self.state, [c64(k)])

    def ld_slot(self, k: int) -> ir.Value:
        return self.b.load(self.slot(k))

    def st_slot(self, k: int, v: ir.Value) -> None:
        self.b.store(v, self.slot(k))

    def get(self, reg: int) -> ir.Value:
        return self.b.load(self.r[reg])

    def set(self, reg: int, v: ir.Value) -> None:
        self.b.store(v, self.r[reg])

    def block(self, pc: int) -> ir.Block:
        blk = self.blocks.get(pc)
        if blk is None:
            blk = self.fn.append_basic_block(f"pc{pc}")
            self.blocks[pc] = blk
            self.work.append(pc)
        return blk

    def new(self, name: str) -> ir.Block:
        return self.fn.append_basic_block(name)

    def trap(self, code: int, pc: int) -> None:
        """Record the fault in the state block and leave the function (callers propagate)."""
        self.st_slot(L.S_FAULT, c64(code))
        self.st_slot(L.S_FAULT_PC, c64(pc))
        self.b.ret_void()

    def check_fault(self, cont: ir.Block) -> None:
        f = self.ld_slot(L.S_FAULT)
        self.b.cbranch(self.b.icmp_unsigned("!=", f, c64(0)), self.ret_block, cont)

    def callback(self, slot: int, ty: ir.FunctionType, args: list[ir.Value]) -> ir.Value:
        fp = self.b.inttoptr(self.ld_slot(slot), ty.as_pointer())
        return self.b.call(fp, args)

    # -- function body --------------------------------------------------------------------
    def build(self) -> None:
        b = self.b
        for k in range(10):
            b.store(b.load(b.gep(self.regs_in, [c64(k)])), self.r[k])
        stack_rid = b.add(self.ld_slot(L.S_STACK0), self.depth)
        b.store(b.add(b.shl(stack_rid, c64(32)), c64(I.MAX_BPF_STACK)), self.r[10])
        if self.plan.uses_stack:
            # Each frame starts with a zeroed stack, as the interpreter's _fresh_stack.
            table = b.inttoptr(self.ld_slot(L.S_REGIONS), I64P)
            base = b.load(b.gep(table, [b.mul(stack_rid, c64(3))]))
            b.call(self.mod.memset, [b.inttoptr(base, I8P), ir.Constant(I8, 0), c64(I.MAX_BPF_STACK),
                                     ir.Constant(I1, 0)])
        b.branch(self.block(self.entry))
        while self.work:
            pc = self.work.pop()
            self.b = ir.IRBuilder(self.blocks[pc])
            self.emit(pc)

    def invalid(self, pc: int, why: str) -> None:
        self.plan.trap_msgs[pc] = why
        self.trap(L.FAULT_INVALID, pc)

    def emit(self, pc: int) -> None:
        insns = self.plan.insns
        if pc >= len(insns):
            self.invalid(pc, "fell off the end of the program")
            return
        if pc in self.mod.lddw_seconds:
            self.invalid(pc, "jump into the middle of lddw")
            return
        ins = insns[pc]
        cls = ins.opcode & 0x07
        if ins.is_lddw:
            self.set(ins.dst, c64(self.plan.lddw[pc]))
            self.b.branch(self.block(pc + 2))
        elif cls in (I.BPF_ALU, I.BPF_ALU64):
            self.alu(ins, pc)
            self.b.branch(self.block(pc + 1))
        elif cls in (I.BPF_JMP, I.BPF_JMP32):
            self.jmp(ins, pc)
        elif cls == I.BPF_LDX:
            self.ldx(ins, pc)
        elif cls in (I.BPF_ST, I.BPF_STX):
            self.store_insn(ins, pc)
        elif cls == I.BPF_LD:
            self.ld_legacy(ins, pc)
        else:
            raise NotSupported(f"opcode 0x{ins.opcode:02x} at insn {pc}")

    # -- ALU ------------------------------------------------------------------------------
    def alu(self, ins: Insn, pc: int) -> None:
        b = self.b
        wide = (ins.opcode & 0x07) == I.BPF_ALU64
        ty = I64 if wide else I32
        op = ins.opcode & 0xF0
        a64 = self.get(ins.dst)
        a = a64 if wide else b.trunc(a64, I32)
        if op == I.BPF_NEG:
            self.set(ins.dst, self.widen(b.neg(a), wide))
            return
        if op == I.BPF_END:
            width = ins.imm
            if width not in (16, 32, 64):
                raise NotSupported(f"byte swap width {width}")
            t = b.trunc(a64, ir.IntType(width)) if width < 64 else a64
            if wide or ins.opcode & I.BPF_X:
                fn = self.mod.intrinsic("llvm.bswap", ir.IntType(width))
                t = b.call(fn, [t])
            self.set(ins.dst, b.zext(t, I64) if width < 64 else t)
            return
        if ins.opcode & I.BPF_X:
            s = self.get(ins.src)
            bv = s if wide else b.trunc(s, I32)
        else:
            bv = ir.Constant(ty, ins.imm & (M64 if wide else M32))
        bits = 64 if wide else 32
        zero, one = ir.Constant(ty, 0), ir.Constant(ty, 1)
        if op == I.BPF_ADD:
            v = b.add(a, bv)
        elif op == I.BPF_SUB:
            v = b.sub(a, bv)
        elif op == I.BPF_MUL:
            v = b.mul(a, bv)
        elif op in (I.BPF_DIV, I.BPF_MOD):
            is0 = b.icmp_unsigned("==", bv, zero)
            if ins.off == 0:
                safe = b.select(is0, one, bv)
                q = b.udiv(a, safe) if op == I.BPF_DIV else b.urem(a, safe)
            else:
                # sdiv/srem trap on INT_MIN / -1; dividing by 1 instead gives the defined results.
                intmin = ir.Constant(ty, 1 << (bits - 1))
                ovf = b.and_(b.icmp_unsigned("==", a, intmin), b.icmp_unsigned("==", bv, ir.Constant(ty, -1)))
                safe = b.select(b.or_(is0, ovf), one, bv)
                q = b.sdiv(a, safe) if op == I.BPF_DIV else b.srem(a, safe)
            v = b.select(is0, zero if op == I.BPF_DIV else a, q)
        elif op == I.BPF_OR:
            v = b.or_(a, bv)
        elif op == I.BPF_AND:
            v = b.and_(a, bv)
        elif op == I.BPF_XOR:
            v = b.xor(a, bv)
        elif op in (I.BPF_LSH, I.BPF_RSH, I.BPF_ARSH):
            cnt = b.and_(bv, ir.Constant(ty, bits - 1))
            v = {I.BPF_LSH: b.shl, I.BPF_RSH: b.lshr, I.BPF_ARSH: b.ashr}[op](a, cnt)
        elif op == I.BPF_MOV:
            if ins.off == 0:
                v = bv
            elif ins.off >= bits:
                v = bv  # sign bit beyond the operand: the interpreter's formula is the identity
            else:
                # MOVSX (off 8/16/32; the interpreter's rule for any width): sign-extend the low `off` bits.
                sh = ir.Constant(ty, bits - ins.off)
                v = b.ashr(b.shl(bv, sh), sh)
        else:
            raise NotSupported(f"ALU op 0x{op:02x} at insn {pc}")
        self.set(ins.dst, self.widen(v, wide))

    def widen(self, v: ir.Value, wide: bool) -> ir.Value:
        return v if wide else self.b.zext(v, I64)

    # -- jumps, calls, exit ---------------------------------------------------------------
    def charge_then(self, pc: int, target: ir.Block) -> ir.Block:
        """A block that takes one unit of budget and continues to ``target`` (or faults)."""
        blk = self.new(f"charge{pc}")
        save = self.b
        self.b = ir.IRBuilder(blk)
        left = self.b.sub(self.ld_slot(L.S_BUDGET), c64(1))
        self.st_slot(L.S_BUDGET, left)
        bad = self.new(f"budget{pc}")
        self.b.cbranch(self.b.icmp_signed("<", left, c64(0)), bad, target)
        self.b = ir.IRBuilder(bad)
        self.trap(L.FAULT_BUDGET, pc)
        self.b = save
        return blk

    def jmp(self, ins: Insn, pc: int) -> None:
        b = self.b
        op = ins.opcode & 0xF0
        wide = (ins.opcode & 0x07) == I.BPF_JMP
        n = pc + 1
        ninsns = len(self.plan.insns)
        if op == I.BPF_JA:
            t = n + (ins.off if wide else ins.imm)
            if not 0 <= t < ninsns:
                self.invalid(pc, f"jump out of range to {t}")
                return
            b.branch(self.charge_then(pc, self.block(t)) if t <= pc else self.block(t))
            return
        if op == I.BPF_EXIT:
            for k in range(6):
                b.store(self.get(k), b.gep(self.regs_in, [c64(k)]))
            b.ret_void()
            return
        if op == I.BPF_CALL:
            self.call(ins, pc)
            return
        conds = {I.BPF_JEQ: ("==", False), I.BPF_JNE: ("!=", False), I.BPF_JGT: (">", False),
                 I.BPF_JGE: (">=", False), I.BPF_JLT: ("<", False), I.BPF_JLE: ("<=", False),
                 I.BPF_JSGT: (">", True), I.BPF_JSGE: (">=", True), I.BPF_JSLT: ("<", True),
                 I.BPF_JSLE: ("<=", True)}
        if op not in conds and op != I.BPF_JSET:
            raise NotSupported(f"jump op 0x{ins.opcode:02x} at insn {pc}")
        t = n + ins.off
        if not 0 <= t < ninsns:
            self.invalid(pc, f"jump out of range to {t}")
            return
        a = self.get(ins.dst)
        if ins.opcode & I.BPF_X:
            bv = self.get(ins.src)
        else:
            bv = c64(ins.imm)
        if not wide:
            a, bv = b.trunc(a, I32), b.trunc(bv, I32)
        if op == I.BPF_JSET:
            cond = b.icmp_unsigned("!=", b.and_(a, bv), ir.Constant(a.type, 0))
        else:
            pred, signed = conds[op]
            cond = b.icmp_signed(pred, a, bv) if signed else b.icmp_unsigned(pred, a, bv)
        taken = self.charge_then(pc, self.block(t)) if t <= pc else self.block(t)
        b.cbranch(cond, taken, self.block(n))

    def call(self, ins: Insn, pc: int) -> None:
        b = self.b
        n = pc + 1
        if ins.opcode & I.BPF_X:
            self.helper_call(self.get(ins.dst), pc)
            return
        if ins.src == I.BPF_PSEUDO_CALL:
            t = n + ins.imm
            if not 0 <= t < len(self.plan.insns):
                self.invalid(pc, f"call out of range to {t}")
                return
            d1 = b.add(self.depth, c64(1))
            deep, ok = self.new(f"deep{pc}"), self.new(f"calldepth_ok{pc}")
            b.cbranch(b.icmp_unsigned(">=", d1, c64(I.MAX_CALL_FRAMES)), deep, ok)
            self.b = ir.IRBuilder(deep)
            self.trap(L.FAULT_DEPTH, pc)
            do = self.new(f"docall{pc}")
            self.b = ir.IRBuilder(ok)
            self.b.branch(self.charge_then(pc, do))
            self.b = b = ir.IRBuilder(do)
            arr = b.bitcast(self.callbuf, I64P)
            for k in range(10):
                b.store(self.get(k), b.gep(arr, [c64(k)]))
            b.call(self.mod.functions[t], [self.state, arr, d1])
            back = self.new(f"ret{pc}")
            self.check_fault(back)
            self.b = b = ir.IRBuilder(back)
            for k in range(6):
                self.set(k, b.load(b.gep(arr, [c64(k)])))
            b.branch(self.block(n))
            return
        if ins.src != 0:
            raise NotSupported(f"call with src {ins.src} (kfunc) at insn {pc}")
        if ins.imm == 1 and self.plan.inline_lookup and self.plan.native_maps:
            self.inline_map_lookup(pc)
            return
        if ins.imm == CSUM_DIFF and self.plan.inline_csum_diff:
            self.inline_csum_diff(pc)
            return
        self.helper_call(c64(ins.imm), pc)

    def helper_call(self, hid: ir.Value, pc: int) -> None:
        args = [hid] + [self.get(k) for k in range(6)] + [c64(pc)]
        v = self.callback(L.S_HELPER, HELPER_TY, args)
        cont = self.new(f"helper_ok{pc}")
        self.check_fault(cont)
        self.b = ir.IRBuilder(cont)
        self.set(0, v)
        self.b.branch(self.block(pc + 1))

    def inline_map_lookup(self, pc: int) -> None:
        """``bpf_map_lookup_elem`` on a known array map without leaving native code.

        The key must lie inside an ordinary region (the fast check below); any
        other case -- another map, a key pointer the fast path refuses -- goes
        through the Python helper so faults stay the interpreter's.
        """
        b = self.b
        r1, r2 = self.get(1), self.get(2)
        slow = self.new(f"lookup_slow{pc}")
        join = self.block(pc + 1)
        nxt = self.new(f"lookup_try{pc}_0")
        b.branch(nxt)
        for k, m in enumerate(self.plan.native_maps):
            self.b = b = ir.IRBuilder(nxt)
            hit = self.new(f"lookup_hit{pc}_{k}")
            nxt = self.new(f"lookup_try{pc}_{k + 1}")
            b.cbranch(b.icmp_unsigned("==", r1, c64(m.ref)), hit, nxt)
            self.b = b = ir.IRBuilder(hit)
            key_ptr, ok = self.fast_ptr(r2, 4, False)
            have = self.new(f"lookup_key{pc}_{k}")
            b.cbranch(ok, have, slow)
            self.b = b = ir.IRBuilder(have)
            key = b.zext(b.load(b.inttoptr(key_ptr, I32.as_pointer()), align=1), I64)
            inr = b.icmp_unsigned("<", key, c64(m.max_entries))
            val = b.select(inr, b.add(c64(m.values), b.mul(key, c64(m.elem))), c64(0))
            self.set(0, val)
            b.branch(join)
        self.b = ir.IRBuilder(nxt)
        self.b.branch(slow)
        self.b = ir.IRBuilder(slow)
        self.helper_call(c64(1), pc)

    def inline_csum_diff(self, pc: int) -> None:
        """``bpf_csum_diff(from, from_size, to, to_size, seed)`` natively (helpers.csum_diff, 6.12+ form).

        Both spans must pass the fast range check (the helper reads them with
        ``read_bytes``, which never consults special regions); otherwise, or for
        a zero size paired with a bad pointer, the Python helper runs and faults
        exactly as in the interpreter.
        """
        b = self.b
        r1, r3 = self.get(1), self.get(3)
        fsz = b.and_(self.get(2), c64(M32))
        tsz = b.and_(self.get(4), c64(M32))
        seed = b.and_(self.get(5), c64(M32))
        fptr, fok = self.fast_ptr(r1, fsz, False)
        tptr, tok = self.fast_ptr(r3, tsz, False)
        zero = c64(0)
        fok = b.or_(fok, b.icmp_unsigned("==", fsz, zero))
        tok = b.or_(tok, b.icmp_unsigned("==", tsz, zero))
        fast, slow = self.new(f"csum_fast{pc}"), self.new(f"csum_slow{pc}")
        b.cbranch(b.and_(fok, tok), fast, slow)
        self.b = b = ir.IRBuilder(fast)
        partial = self.mod.csum_partial()
        fp8, tp8 = b.inttoptr(fptr, I8P), b.inttoptr(tptr, I8P)
        has_f = b.icmp_unsigned("!=", fsz, zero)
        has_t = b.icmp_unsigned("!=", tsz, zero)
        pt_seed = b.call(partial, [tp8, b.select(has_t, tsz, zero), seed])
        pf_zero = b.call(partial, [fp8, b.select(has_f, fsz, zero), zero])
        pf_inv = b.call(partial, [fp8, b.select(has_f, fsz, zero), b.xor(seed, c64(M32))])
        both = self.mod.csum_from32to16(b, self.mod.csum_add(b, pt_seed, b.xor(pf_zero, c64(M32))))
        to_only = self.mod.csum_from32to16(b, pt_seed)
        from_only = self.mod.csum_from32to16(b, b.xor(pf_inv, c64(M32)))
        seed_only = self.mod.csum_from32to16(b, seed)  # both sizes 0: the seed, folded too
        v = b.select(has_f, b.select(has_t, both, from_only), b.select(has_t, to_only, seed_only))
        self.set(0, v)
        b.branch(self.block(pc + 1))
        self.b = ir.IRBuilder(slow)
        self.helper_call(c64(CSUM_DIFF), pc)

    # -- memory ---------------------------------------------------------------------------
    def fast_ptr(self, addr: ir.Value, size: int | ir.Value, write: bool) -> tuple[ir.Value, ir.Value]:
        """(native address, ok) for an access of ``size`` bytes at ``addr``; ``ok`` is the full check.

        Emitted branch-free with a clamped table index so it can sit in any block.
        """
        b = self.b
        rid = b.lshr(addr, c64(32))
        off = b.and_(addr, c64(M32))
        n = self.ld_slot(L.S_NREGIONS)
        inr = b.icmp_unsigned("<", rid, n)
        idx = b.select(inr, rid, c64(0))
        table = b.inttoptr(self.ld_slot(L.S_REGIONS), I64P)
        ent = b.mul(idx, c64(3))
        lim = b.load(b.gep(table, [b.add(ent, c64(2 if write else 1))]))
        nbytes = c64(size) if isinstance(size, int) else size
        ok = b.and_(inr, b.icmp_unsigned("<=", b.add(off, nbytes), lim))
        base = b.load(b.gep(table, [ent]))
        return b.add(base, off), ok

    def load(self, addr: ir.Value, size: int, pc: int) -> ir.Value:
        """Checked load; the value zero-extended to i64."""
        b = self.b
        ptr, ok = self.fast_ptr(addr, size, False)
        fast, slow, join = self.new(f"ld_fast{pc}"), self.new(f"ld_slow{pc}"), self.new(f"ld_join{pc}")
        b.cbranch(ok, fast, slow)
        b = ir.IRBuilder(fast)
        v_fast = b.load(b.inttoptr(ptr, _INT[size].as_pointer()), align=1)
        v_fast = b.zext(v_fast, I64) if size < 8 else v_fast
        b.branch(join)
        incoming = [(v_fast, fast)]
        self.b = b = ir.IRBuilder(slow)
        if size == 4:
            # xdp_md fields (xdp_convert_ctx_access): 4-byte aligned loads at offsets 0..16.
            rid = b.lshr(addr, c64(32))
            off = b.and_(addr, c64(M32))
            is_ctx = b.and_(b.icmp_unsigned("==", rid, self.ld_slot(L.S_CTX_RID)),
                            b.and_(b.icmp_unsigned("<", off, c64(20)),
                                   b.icmp_unsigned("==", b.and_(off, c64(3)), c64(0))))
            xdp, call = self.new(f"ld_xdp{pc}"), self.new(f"ld_call{pc}")
            b.cbranch(is_ctx, xdp, call)
            bx = ir.IRBuilder(xdp)
            v_ctx = bx.load(bx.gep(self.state, [bx.add(c64(L.S_XDP), bx.lshr(off, c64(2)))]))
            bx.branch(join)
            incoming.append((v_ctx, xdp))
            self.b = b = ir.IRBuilder(call)
        v_slow = self.callback(L.S_SLOW_MEM, SLOW_TY, [c64(L.SLOW_LOAD), addr, c64(size), c64(0), c64(pc)])
        slow_end = self.b.block
        self.check_fault(join)
        incoming.append((v_slow, slow_end))
        self.b = b = ir.IRBuilder(join)
        phi = b.phi(I64)
        for v, blk in incoming:
            phi.add_incoming(v, blk)
        return phi

    def store(self, addr: ir.Value, size: int, value: ir.Value, pc: int) -> None:
        b = self.b
        ptr, ok = self.fast_ptr(addr, size, True)
        fast, slow, join = self.new(f"st_fast{pc}"), self.new(f"st_slow{pc}"), self.new(f"st_join{pc}")
        b.cbranch(ok, fast, slow)
        b = ir.IRBuilder(fast)
        v = b.trunc(value, _INT[size]) if size < 8 else value
        b.store(v, b.inttoptr(ptr, _INT[size].as_pointer()), align=1)
        # Batch mode re-zeroes the whole packet buffer after a packet that stored into it.
        is_pkt = b.icmp_unsigned("==", b.lshr(addr, c64(32)), b.load(self.slot(L.S_PKT_RID, b)))
        dirty = b.load(self.slot(L.S_PKT_DIRTY, b))
        b.store(b.or_(dirty, b.zext(is_pkt, I64)), self.slot(L.S_PKT_DIRTY, b))
        b.branch(join)
        self.b = ir.IRBuilder(slow)
        self.callback(L.S_SLOW_MEM, SLOW_TY, [c64(L.SLOW_STORE), addr, c64(size), value, c64(pc)])
        self.check_fault(join)
        self.b = ir.IRBuilder(join)

    def addr(self, reg: int, off: int) -> ir.Value:
        return self.b.add(self.get(reg), c64(off))

    def ldx(self, ins: Insn, pc: int) -> None:
        size = I.SIZE_BYTES[ins.opcode & 0x18]
        mode = ins.opcode & 0xE0
        if mode not in (I.BPF_MEM, I.BPF_MEMSX) or (mode == I.BPF_MEMSX and size == 8):
            raise NotSupported(f"LDX mode 0x{mode:02x} at insn {pc}")
        v = self.load(self.addr(ins.src, ins.off), size, pc)
        if mode == I.BPF_MEMSX:
            v = self.b.sext(self.b.trunc(v, _INT[size]), I64)
        self.set(ins.dst, v)
        self.b.branch(self.block(pc + 1))

    def store_insn(self, ins: Insn, pc: int) -> None:
        size = I.SIZE_BYTES[ins.opcode & 0x18]
        mode = ins.opcode & 0xE0
        if ins.opcode & 0x07 == I.BPF_ST:
            if mode != I.BPF_MEM:
                raise NotSupported(f"ST mode 0x{mode:02x} at insn {pc}")
            self.store(self.addr(ins.dst, ins.off), size, c64(ins.imm), pc)
        elif mode == I.BPF_MEM:
            self.store(self.addr(ins.dst, ins.off), size, self.get(ins.src), pc)
        elif mode == I.BPF_ATOMIC:
            self.atomic(ins, pc, size)
        else:
            raise NotSupported(f"STX mode 0x{mode:02x} at insn {pc}")
        self.b.branch(self.block(pc + 1))

    def atomic(self, ins: Insn, pc: int, size: int) -> None:
        imm, d, s = ins.imm, ins.dst, ins.src
        mask = (1 << (8 * size)) - 1
        if imm == I.BPF_LOAD_ACQ:
            self.set(d, self.load(self.addr(s, ins.off), size, pc))
            return
        if imm == I.BPF_STORE_REL:
            self.store(self.addr(d, ins.off), size, self.get(s), pc)
            return
        if size not in (4, 8):
            raise NotSupported(f"atomic op on {size}-byte operand at insn {pc}")
        addr = self.addr(d, ins.off)
        old = self.load(addr, size, pc)
        if imm == I.BPF_XCHG:
            self.store(addr, size, self.get(s), pc)
            self.set(s, old)
            return
        if imm == I.BPF_CMPXCHG:
            b = self.b
            eq = b.icmp_unsigned("==", old, b.and_(self.get(0), c64(mask)))
            do, join = self.new(f"cmpxchg_st{pc}"), self.new(f"cmpxchg_done{pc}")
            b.cbranch(eq, do, join)
            self.b = ir.IRBuilder(do)
            self.store(addr, size, self.get(s), pc)
            self.b.branch(join)
            self.b = ir.IRBuilder(join)
            self.set(0, old)
            return
        base, fetch = imm & ~I.BPF_FETCH, imm & I.BPF_FETCH
        if base not in (I.BPF_ADD, I.BPF_OR, I.BPF_AND, I.BPF_XOR) or imm & ~0xF1:
            raise NotSupported(f"atomic op 0x{imm:x} at insn {pc}")
        b = self.b
        v = b.and_(self.get(s), c64(mask))
        new = {I.BPF_ADD: b.add, I.BPF_OR: b.or_, I.BPF_AND: b.and_, I.BPF_XOR: b.xor}[base](old, v)
        self.store(addr, size, new, pc)
        if fetch:
            self.set(s, old)

    def ld_legacy(self, ins: Insn, pc: int) -> None:
        mode = ins.opcode & 0xE0
        if mode not in (I.BPF_ABS, I.BPF_IND) or ins.opcode & 0x18 == I.BPF_DW:
            raise NotSupported(f"LD opcode 0x{ins.opcode:02x} at insn {pc}")
        b = self.b
        size = I.SIZE_BYTES[ins.opcode & 0x18]
        if mode == I.BPF_IND:
            # filter.c bpf_gen_ld_abs: (int)(src + imm)
            offset = b.sext(b.trunc(b.add(self.get(ins.src), c64(ins.imm)), I32), I64)
        else:
            offset = c64(ins.imm)
        v = self.callback(L.S_LDPKT, LDPKT_TY, [offset, c64(size), c64(pc)])
        cont = self.new(f"ldpkt_ok{pc}")
        self.check_fault(cont)
        self.b = ir.IRBuilder(cont)
        self.set(0, v)
        self.b.branch(self.block(pc + 1))

class ModuleGen:
    """The whole program as one LLVM module: the functions plus the XDP batch loop."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.module = ir.Module(name="bpf")
        self.lddw_seconds = _lddw_seconds(plan.insns)
        self._intrinsics: dict[tuple[str, str], ir.Function] = {}
        self._csum: ir.Function | None = None
        self.memset = self.module.declare_intrinsic("llvm.memset", [I8P, I64])
        self.memcpy = self.module.declare_intrinsic("llvm.memcpy", [I8P, I8P, I64])
        self.entries = entry_points(plan.insns)
        self.functions = {pc: ir.Function(self.module, FN_TY, name=f"bpf_f{pc}") for pc in self.entries}
        for fn in self.functions.values():
            fn.linkage = "internal" if fn.name != "bpf_f0" else "external"

    def csum_partial(self) -> ir.Function:
        """``u64 csum_partial(u8 *p, u64 len, u64 seed)`` as helpers.csum_partial (x86-64 semantics):
        the sum of little-endian u32 words (the tail zero-padded) plus the seed, folded mod 2^32-1
        with 0 only for an all-zero sum."""
        fn = self._csum
        if fn is not None:
            return fn
        fn = self._csum = ir.Function(self.module, ir.FunctionType(I64, [I8P, I64, I64]), name="csum_partial")
        fn.linkage = "internal"
        p, n, seed = fn.args
        entry, loop, body, tail, tloop, tbody, fin = (fn.append_basic_block(x) for x in (
            "entry", "loop", "body", "tail", "tloop", "tbody", "fin"))
        b = ir.IRBuilder(entry)
        words = b.lshr(n, c64(2))
        b.branch(loop)
        b = ir.IRBuilder(loop)
        i = b.phi(I64)
        acc = b.phi(I64)
        i.add_incoming(c64(0), entry)
        acc.add_incoming(seed, entry)
        b.cbranch(b.icmp_unsigned("<", i, words), body, tail)
        b = ir.IRBuilder(body)
        w = b.load(b.bitcast(b.gep(p, [b.shl(i, c64(2))]), I32.as_pointer()), align=1)
        acc2 = b.add(acc, b.zext(w, I64))
        i2 = b.add(i, c64(1))
        i.add_incoming(i2, body)
        acc.add_incoming(acc2, body)
        b.branch(loop)
        b = ir.IRBuilder(tail)
        start = b.shl(words, c64(2))
        b.branch(tloop)
        b = ir.IRBuilder(tloop)
        j = b.phi(I64)
        t = b.phi(I64)
        j.add_incoming(start, tail)
        t.add_incoming(c64(0), tail)
        b.cbranch(b.icmp_unsigned("<", j, n), tbody, fin)
        b = ir.IRBuilder(tbody)
        byte = b.zext(b.load(b.gep(p, [j])), I64)
        t2 = b.or_(t, b.shl(byte, b.shl(b.sub(j, start), c64(3))))
        j2 = b.add(j, c64(1))
        j.add_incoming(j2, tbody)
        t.add_incoming(t2, tbody)
        b.branch(tloop)
        b = ir.IRBuilder(fin)
        total = b.add(acc, t)
        r = b.urem(total, c64(M32))
        r = b.select(b.icmp_unsigned("==", r, c64(0)), c64(M32), r)
        b.ret(b.select(b.icmp_unsigned("==", total, c64(0)), c64(0), r))
        return fn

    @staticmethod
    def csum_add(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
        """include/net/checksum.h ``csum_add``: 32-bit add with end-around carry (inputs < 2^32)."""
        s = b.add(x, y)
        return b.and_(b.add(s, b.lshr(s, c64(32))), c64(M32))

    @staticmethod
    def csum_from32to16(b: ir.IRBuilder, c: ir.Value) -> ir.Value:
        """``csum_from32to16``: c + ror(c, 16) in 32 bits, upper half."""
        c = b.and_(c, c64(M32))
        rot = b.and_(b.or_(b.lshr(c, c64(16)), b.shl(c, c64(16))), c64(M32))
        return b.lshr(b.and_(b.add(c, rot), c64(M32)), c64(16))

    def intrinsic(self, name: str, ty: ir.Type) -> ir.Function:
        key = (name, str(ty))
        fn = self._intrinsics.get(key)
        if fn is None:
            fn = self._intrinsics[key] = self.module.declare_intrinsic(name, [ty])
        return fn

    def build(self) -> ir.Module:
        for pc in self.entries:
            FunctionGen(self, pc).build()
        if self.plan.batch:
            self.build_batch()
        return self.module

    def build_batch(self) -> None:
        """``bpf_batch``: run ``bpf_f0`` over frames ``start..n-1`` of one buffer (XDP, see batch.py).

        Per frame: re-zero the packet buffer (all of it after a packet that stored
        into it or called a helper, else only the previous frame's bytes), copy
        the frame behind the headroom, point data/data_end/data_meta at it, reset
        the budget and registers, run.  Returns ``n``, or the index of the first
        frame that faulted (its fault stays in the state block).
        """
        ty = ir.FunctionType(I64, [I64P, I8P, I32.as_pointer(), I32.as_pointer(), I64, I64, I32.as_pointer(),
                                   I64P, I8P, I64, I64, I64, I64, I64])
        fn = ir.Function(self.module, ty, name="bpf_batch")
        (state, frames, offs, lens, start, n, results, regs, pktbuf, budget, pkt_vaddr, ctx_vaddr,
         buflen, headroom) = fn.args
        entry, head, body, done = (fn.append_basic_block(x) for x in ("entry", "head", "body", "done"))
        full, part, copy, ok, bad, nxt, badframe, clean = (fn.append_basic_block(x) for x in (
            "full", "part", "copy", "ok", "bad", "next", "badframe", "clean"))
        b = ir.IRBuilder(entry)
        b.branch(head)
        b = ir.IRBuilder(head)
        i = b.phi(I64)
        i.add_incoming(start, entry)
        b.cbranch(b.icmp_unsigned("<", i, n), body, done)
        b = ir.IRBuilder(body)
        slot = lambda bb, k: bb.gep(state, [c64(k)])  # noqa: E731
        ln = b.zext(b.load(b.gep(lens, [i])), I64)
        fo = b.zext(b.load(b.gep(offs, [i])), I64)
        too_long = b.icmp_unsigned(">", ln, b.load(slot(b, L.S_MAX_FRAME)))
        outside = b.icmp_unsigned(">", b.add(fo, ln), b.load(slot(b, L.S_FRAMES_LEN)))
        b.cbranch(b.or_(too_long, outside), badframe, clean)
        bb = ir.IRBuilder(badframe)
        bb.store(c64(L.FAULT_FRAME), slot(bb, L.S_FAULT))
        bb.ret(i)
        b = ir.IRBuilder(clean)
        b.cbranch(b.icmp_unsigned("!=", b.load(slot(b, L.S_PKT_DIRTY)), c64(0)), full, part)
        bf = ir.IRBuilder(full)
        bf.call(self.memset, [pktbuf, ir.Constant(I8, 0), buflen, ir.Constant(I1, 0)])
        bf.branch(copy)
        bp = ir.IRBuilder(part)
        bp.call(self.memset, [bp.gep(pktbuf, [headroom]), ir.Constant(I8, 0), bp.load(slot(bp, L.S_PREV_LEN)),
                              ir.Constant(I1, 0)])
        bp.branch(copy)
        b = ir.IRBuilder(copy)
        b.call(self.memcpy, [b.gep(pktbuf, [headroom]), b.gep(frames, [fo]), ln, ir.Constant(I1, 0)])
        b.store(ln, slot(b, L.S_PREV_LEN))
        b.store(c64(0), slot(b, L.S_PKT_DIRTY))
        data = b.add(pkt_vaddr, headroom)
        b.store(data, slot(b, L.S_XDP))
        b.store(b.add(data, ln), slot(b, L.S_XDP + 1))
        b.store(data, slot(b, L.S_XDP + 2))
        b.store(budget, slot(b, L.S_BUDGET))
        b.store(c64(0), slot(b, L.S_FAULT))
        for k in range(11):
            b.store(ctx_vaddr if k == 1 else c64(0), b.gep(regs, [c64(k)]))
        b.call(self.functions[0], [state, regs, c64(0)])
        b.cbranch(b.icmp_unsigned("!=", b.load(slot(b, L.S_FAULT)), c64(0)), bad, ok)
        bb = ir.IRBuilder(bad)
        bb.ret(i)
        b = ir.IRBuilder(ok)
        b.store(b.trunc(b.load(regs), I32), b.gep(results, [i]))
        out_on, out_fits, out_full, out_copy = (fn.append_basic_block(x) for x in (
            "out_on", "out_fits", "out_full", "out_copy"))
        b.cbranch(b.icmp_unsigned("!=", b.load(slot(b, L.S_OUT_ON)), c64(0)), out_on, nxt)
        # Copy the frame as the program left it ([data_meta, data_end), what run_xdp returns).
        b = ir.IRBuilder(out_on)
        meta = b.sub(b.load(slot(b, L.S_XDP + 2)), pkt_vaddr)
        end = b.sub(b.load(slot(b, L.S_XDP + 1)), pkt_vaddr)
        sane = b.and_(b.icmp_unsigned("<=", meta, end), b.icmp_unsigned("<=", end, buflen))
        olen = b.select(sane, b.sub(end, meta), c64(0))
        meta = b.select(sane, meta, c64(0))
        pos = b.load(slot(b, L.S_OUT_POS))
        b.cbranch(b.icmp_unsigned(">", b.add(pos, olen), b.load(slot(b, L.S_OUT_CAP))), out_full, out_copy)
        b = ir.IRBuilder(out_full)
        b.store(c64(L.FAULT_OUTPUT), slot(b, L.S_FAULT))
        b.ret(i)
        b = ir.IRBuilder(out_copy)
        arena = b.inttoptr(b.load(slot(b, L.S_OUT_ARENA)), I8P)
        b.call(self.memcpy, [b.gep(arena, [pos]), b.gep(pktbuf, [meta]), olen, ir.Constant(I1, 0)])
        u32p = I32.as_pointer()
        b.store(b.trunc(pos, I32), b.gep(b.inttoptr(b.load(slot(b, L.S_OUT_OFFS)), u32p), [i]))
        b.store(b.trunc(olen, I32), b.gep(b.inttoptr(b.load(slot(b, L.S_OUT_LENS)), u32p), [i]))
        b.store(b.add(pos, olen), slot(b, L.S_OUT_POS))
        b.branch(out_fits)
        b = ir.IRBuilder(out_fits)
        b.branch(nxt)
        b = ir.IRBuilder(nxt)
        i1 = b.add(i, c64(1))
        i.add_incoming(i1, nxt)
        b.branch(head)
        b = ir.IRBuilder(done)
        b.ret(n)

def generate(plan: Plan) -> ir.Module:
    """The LLVM module for ``plan`` (raises :class:`NotSupported` for what it cannot translate)."""
    return ModuleGen(plan).build()

