"""Interpreter for the 64-bit eBPF ISA (cpu v1-v4), memory-safe on its own.

Semantics follow kernel/bpf/core.c ``___bpf_prog_run`` and RFC 9669:

* ALU results are 64-bit; ALU32 results are zero-extended.  ALU64 sign-extends
  ``imm``; ALU32 uses its low 32 bits.  Shift counts are masked (63 / 31).
* ``x / 0 = 0``; ``x % 0 = x`` (ALU32 keeps the low 32 bits, zero-extended).
  SDIV/SMOD (off = 1) truncate toward zero; ``INT_MIN s/ -1 = INT_MIN`` and
  ``INT_MIN s% -1 = 0`` (core.c uses div64_s64 / abs tricks with that result).
* MOVSX (off 8/16/32), BPF_END to-le/to-be and ALU64 bswap, MEMSX loads,
  JMP32 comparisons on the low 32 bits, ``gotol`` (JMP32 | JA, offset in imm).
* Atomics (STX | ATOMIC | W/DW): add/or/and/xor with or without FETCH, XCHG,
  CMPXCHG (compares with R0, old value to R0); 32-bit fetched values are
  zero-extended.  Load-acquire / store-release (B/H/W/DW) as plain ordered
  accesses -- the interpreter is single-threaded.
* ``lddw`` (src 0; pseudo sources through a resolver), legacy LD_ABS/LD_IND on
  the packet with ``bpf_skb_load_helper_convert_offset`` rules; an
  out-of-bounds legacy load ends the program with R0 = 0 (net/core/filter.c).
* Helper calls through a table of Python callables; ``callx`` calls the helper
  whose id is in the register; bpf-to-bpf calls with up to
  ``MAX_CALL_FRAMES`` (8) frames, each with its own 512-byte stack, R6-R9 and
  R10 restored on return.  (The kernel verifier additionally caps the
  *combined* stack of a call chain at 512 bytes; that is a load-time rule.)

Every memory access goes through :class:`~netstack.bpf.memory.AddressSpace`,
so an out-of-bounds access is a :class:`BpfRuntimeError`, never Python state
corruption.  Termination is guaranteed by a budget on taken backward jumps
and calls (the verifier's job in the kernel).

For speed the program is compiled once, in two layers.  ``slot_code`` holds one
closure per slot that performs its instruction and returns the next pc (built
from small source templates specialised per opcode).  ``code`` runs whole basic
blocks: each block (from a jump target or fall-through point to the next jump,
exit or bpf-to-bpf call) is one generated Python function whose body is the
block's instructions as straight-line statements -- ALU operations, register
moves, loads/stores through the address space's checked accessors, helper
calls, the conditional jump at the end -- so the run loop ``pc = code[pc]()``
pays one call per block rather than one per instruction.  Instructions without
an inline form (atomics, legacy packet loads, ``lddw``, invalid slots) call
their slot closure from inside the block.  A fault inside a block is attributed
to its instruction through the generated code's line table, so errors carry the
same pc as with one closure per instruction.
"""
from __future__ import annotations

import itertools
import re
import struct
from dataclasses import dataclass
from types import TracebackType
from typing import Callable, Mapping, Sequence

from . import insn as I
from .errors import BpfError, BpfRuntimeError, NotSupported
from .insn import Insn
from .memory import AddressSpace

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1

Helper = Callable[["Vm", int, int, int, int, int], int]
LdImm64Resolver = Callable[[int, int, int], int]  # (src, imm_lo_u32, imm_hi_u32) -> value

DEFAULT_BUDGET = 1_000_000
#: programs longer than this (BPF_MAXINSNS, the unprivileged limit) run on the per-slot closures
#: only: compiling the generated source costs ~50 us per instruction (0.2 s at this size), more
#: than it saves on the few runs such a program usually gets here
MAX_BLOCK_COMPILE_INSNS = 4096
_block_files = itertools.count()
_BLOCKS_PER_MAKER = 64


class ProgramExit(Exception):
    """Raised by a helper (or a failed legacy packet load) to end the program.

    ``value`` becomes R0.  This is how the kernel's LD_ABS failure path
    (``return 0`` from the program) and the conformance suite's "unwind"
    helper are expressed; it never escapes :meth:`Vm.run`.
    """

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value & M64


@dataclass
class Packet:
    """The skb seen by legacy LD_ABS/LD_IND: a linear frame and header offsets.

    Offsets are into ``frame``; ``data_off`` is where ``skb->data`` points
    (offset 0 of LD_ABS), ``mac_off`` is None when no MAC header was set.
    """

    frame: bytes
    data_off: int = 0
    mac_off: int | None = 0
    net_off: int = 14

    def load(self, offset: int, size: int) -> int | None:
        """``bpf_skb_load_helper_{8,16,32}``: big-endian value, or None (-EFAULT)."""
        if offset >= 0:
            rel = offset
        elif offset >= I.SKF_NET_OFF:
            rel = offset - I.SKF_NET_OFF + self.net_off - self.data_off
        elif offset >= I.SKF_LL_OFF and self.mac_off is not None:
            rel = offset - I.SKF_LL_OFF + self.mac_off - self.data_off
        else:
            return None
        start = self.data_off + rel
        if start < 0 or start + size > len(self.frame):
            return None
        return int.from_bytes(self.frame[start:start + size], "big")


# ----------------------------------------------------------------------------
# Closure templates.  {EXPR} placeholders are filled per opcode; the generated
# factory is compiled once per distinct template and cached.
# ----------------------------------------------------------------------------

_S64 = "((({v}) ^ 0x8000000000000000) - 0x8000000000000000)"
_S32 = "((({v}) ^ 0x80000000) - 0x80000000)"


def _s64(v: str) -> str:
    return _S64.format(v=v)


def _s32(v: str) -> str:
    return _S32.format(v=v)


def sdiv(a: int, b: int, bits: int) -> int:
    """Signed division truncating toward zero on ``bits``-wide two's complement (0 if b == 0)."""
    if not b:
        return 0
    sign = 1 << (bits - 1)
    sa, sb = (a ^ sign) - sign, (b ^ sign) - sign
    q = abs(sa) // abs(sb)
    return (q if (sa < 0) == (sb < 0) else -q) & ((1 << bits) - 1)


def smod(a: int, b: int, bits: int) -> int:
    """Signed remainder with the dividend's sign (C semantics); ``a`` unchanged if b == 0."""
    if not b:
        return a
    sign = 1 << (bits - 1)
    sa, sb = (a ^ sign) - sign, (b ^ sign) - sign
    m = abs(sa) % abs(sb)
    return (m if sa >= 0 else -m) & ((1 << bits) - 1)


def _alu_expr(op: int, off: int, wide: bool) -> str:
    """Expression for the new dst value from ``a`` (dst) and ``b`` (operand), both masked."""
    mask, bits = ("M64", 63) if wide else ("M32", 31)
    sx = _s64 if wide else _s32
    if op == I.BPF_ADD:
        return f"(a + b) & {mask}"
    if op == I.BPF_SUB:
        return f"(a - b) & {mask}"
    if op == I.BPF_MUL:
        return f"(a * b) & {mask}"
    if op == I.BPF_DIV:
        return "(a // b if b else 0)" if off == 0 else f"sdiv(a, b, {bits + 1})"
    if op == I.BPF_MOD:
        return "(a % b if b else a)" if off == 0 else f"smod(a, b, {bits + 1})"
    if op == I.BPF_OR:
        return "a | b"
    if op == I.BPF_AND:
        return "a & b"
    if op == I.BPF_XOR:
        return "a ^ b"
    if op == I.BPF_LSH:
        return f"(a << (b & {bits})) & {mask}"
    if op == I.BPF_RSH:
        return f"a >> (b & {bits})"
    if op == I.BPF_ARSH:
        return f"({sx('a')} >> (b & {bits})) & {mask}"
    if op == I.BPF_MOV:
        if off == 0:
            return "b"
        sign = 1 << (off - 1)
        return f"((((b & {(1 << off) - 1}) ^ {sign}) - {sign}) & {mask})"
    raise NotSupported(f"ALU op 0x{op:02x}")


_ALU_TEMPLATE = """
def make(r, d, s, k, n):
    def f():
        a = r[d]{amask}
        b = {operand}
        r[d] = {expr}
        return n
    return f
"""

_JMP_TEMPLATE = """
def make(r, d, s, k, n, t, budget):
    def f():
        a = r[d]{amask}
        b = {operand}
        if {cond}:
{charge}            return t
        return n
    return f
"""

_CHARGE = """            budget[0] -= 1
            if budget[0] < 0:
                raise BpfRuntimeError("instruction budget exhausted (unbounded loop?)")
"""

_COND = {
    I.BPF_JEQ: "a == b", I.BPF_JNE: "a != b", I.BPF_JGT: "a > b", I.BPF_JGE: "a >= b",
    I.BPF_JLT: "a < b", I.BPF_JLE: "a <= b", I.BPF_JSET: "a & b",
}
_SCOND = {I.BPF_JSGT: ">", I.BPF_JSGE: ">=", I.BPF_JSLT: "<", I.BPF_JSLE: "<="}
_COND_OP = {I.BPF_JEQ: "==", I.BPF_JNE: "!=", I.BPF_JGT: ">", I.BPF_JGE: ">=", I.BPF_JLT: "<", I.BPF_JLE: "<=",
            I.BPF_JSET: "&"}
_ST = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I"), 8: struct.Struct("<Q")}
_A = re.compile(r"\ba\b")
_B = re.compile(r"\bb\b")

_factories: dict[str, Callable[..., Callable[[], int]]] = {}


def _factory(src: str) -> Callable[..., Callable[[], int]]:
    fac = _factories.get(src)
    if fac is None:
        ns: dict[str, object] = {"M64": M64, "M32": M32, "BpfRuntimeError": BpfRuntimeError,
                                 "sdiv": sdiv, "smod": smod}
        exec(compile(src, "<bpf-template>", "exec"), ns)  # our own fixed templates only
        fac = ns["make"]  # type: ignore[assignment]
        _factories[src] = fac  # type: ignore[assignment]
    return fac  # type: ignore[return-value]


def _bswap(v: str, width: int) -> str:
    return f"int.from_bytes(({v} & {(1 << width) - 1}).to_bytes({width // 8}, 'little'), 'big')"


@dataclass
class _Frame:
    ret_pc: int
    saved: tuple[int, int, int, int, int]  # r6..r10


class Vm:
    """A compiled eBPF program bound to its registers and address space.

    ``helpers`` maps helper ids to ``fn(vm, r1, r2, r3, r4, r5) -> r0``;
    ``ld_imm64`` resolves pseudo ``lddw`` sources (map fds etc.); ``budget``
    bounds the number of taken backward jumps plus calls per run.
    """

    def __init__(self, program: Sequence[Insn] | bytes, helpers: Mapping[int, Helper] | None = None, *,
                 ld_imm64: LdImm64Resolver | None = None, budget: int = DEFAULT_BUDGET) -> None:
        self.insns: list[Insn] = I.decode(program) if isinstance(program, (bytes, bytearray)) else list(program)
        self.helpers: dict[int, Helper] = dict(helpers or {})
        self.ld_imm64 = ld_imm64
        self.budget_limit = budget
        self.regs: list[int] = [0] * I.MAX_BPF_REG
        self.mem = AddressSpace()
        self.stacks = [self.mem.map(bytearray(I.MAX_BPF_STACK), name=f"stack{k}") for k in range(I.MAX_CALL_FRAMES)]
        self.mem.pin()
        self.frames: list[_Frame] = []
        self.packet: Packet | None = None
        self._budget = [budget]
        self._lddw_values: dict[int, int] = {}
        #: one closure per slot (each returns the next pc); what ``code`` falls back on
        self.slot_code: list[Callable[[], int]] = self._compile()
        self._block_file = ""
        self._block_lines: dict[int, int] = {}
        #: what ``run`` dispatches on: a basic-block function at every block leader
        self.code: list[Callable[[], int]] = self._compile_blocks()

    # --- public API ------------------------------------------------------------------
    def run(self, args: Sequence[int] = (), *, packet: Packet | None = None) -> int:
        """Run from slot 0 with R1.. = ``args``; return R0 (unsigned 64-bit).

        Regions mapped with ``vm.mem.map`` before the call stay valid during it.
        """
        if len(args) > 5:
            raise BpfRuntimeError("at most 5 arguments (R1-R5)")
        r = self.regs
        for k in range(I.MAX_BPF_REG):
            r[k] = 0
        for k, v in enumerate(args, 1):
            r[k] = v & M64
        self.frames.clear()
        self._fresh_stack(0)
        r[10] = self.stacks[0] + I.MAX_BPF_STACK
        self.packet = packet
        self._budget[0] = self.budget_limit
        code = self.code
        pc = 0
        try:
            while pc >= 0:
                pc = code[pc]()
        except ProgramExit as stop:
            r[0] = stop.value
        except BpfRuntimeError as exc:
            if exc.pc is None:
                at = self._fault_pc(exc.__traceback__, pc)
                exc.pc = at
                exc.args = (f"pc {at}: {exc.message}",)
            raise
        except BpfError:
            raise
        except (ArithmeticError, ValueError, TypeError, IndexError) as exc:
            # A helper misbehaved; report it as the VM's error, never as a raw Python one.
            raise BpfRuntimeError(f"helper or runtime failure: {exc!r}",
                                  self._fault_pc(exc.__traceback__, pc)) from exc
        return r[0]

    def _fault_pc(self, tb: TracebackType | None, block_pc: int) -> int:
        """The instruction a fault came from: the innermost line of generated block code in the
        traceback, mapped through the line table; ``block_pc`` when it came from a slot closure."""
        line = None
        while tb is not None:
            if self._block_file and tb.tb_frame.f_code.co_filename == self._block_file:
                line = tb.tb_lineno
            tb = tb.tb_next
        return self._block_lines.get(line, block_pc) if line is not None else block_pc

    def run_mem(self, data: bytearray | bytes | None) -> int:
        """The conformance-suite convention: R1 = pointer to ``data``, R2 = its length."""
        self.mem.reset()
        buf = bytearray(data or b"")
        return self.run((self.mem.map(buf, name="mem"), len(buf)))

    # --- frames ------------------------------------------------------------------------
    def _fresh_stack(self, depth: int) -> None:
        self.mem.replace(self.stacks[depth], bytearray(I.MAX_BPF_STACK))

    def _call_local(self, ret_pc: int, target: int) -> int:
        r = self.regs
        depth = len(self.frames) + 1
        if depth >= I.MAX_CALL_FRAMES:
            raise BpfRuntimeError(f"call depth exceeds {I.MAX_CALL_FRAMES} frames")
        self._charge()
        self.frames.append(_Frame(ret_pc, (r[6], r[7], r[8], r[9], r[10])))
        self._fresh_stack(depth)
        r[10] = self.stacks[depth] + I.MAX_BPF_STACK
        return target

    def _exit(self) -> int:
        if not self.frames:
            return -1
        fr = self.frames.pop()
        r = self.regs
        r[6], r[7], r[8], r[9], r[10] = fr.saved
        return fr.ret_pc

    def _charge(self) -> None:
        self._budget[0] -= 1
        if self._budget[0] < 0:
            raise BpfRuntimeError("instruction budget exhausted (unbounded loop?)")

    def _call_helper(self, hid: int) -> None:
        fn = self.helpers.get(hid)
        if fn is None:
            raise BpfRuntimeError(f"unknown helper {hid}")
        r = self.regs
        r[0] = int(fn(self, r[1], r[2], r[3], r[4], r[5])) & M64

    # --- compilation ----------------------------------------------------------------------
    def _compile(self) -> list[Callable[[], int]]:
        insns = self.insns
        code: list[Callable[[], int]] = []
        pc = 0
        while pc < len(insns):
            ins = insns[pc]
            if ins.is_lddw:
                if pc + 1 >= len(insns):
                    raise BpfRuntimeError("lddw is missing its second slot", pc)
                code.append(self._op_lddw(ins, insns[pc + 1], pc))
                code.append(self._op_invalid(pc + 1, "jump into the middle of lddw"))
                pc += 2
                continue
            code.append(self._compile_one(ins, pc))
            pc += 1
        code.append(self._op_invalid(len(insns), "fell off the end of the program"))
        return code

    # --- basic blocks ------------------------------------------------------------------------
    def _leaders(self) -> list[bool]:
        """Block starts: slot 0, every jump/call target, and whatever follows a jump, exit or
        bpf-to-bpf call (where a block must end because control may not fall through)."""
        insns, n = self.insns, len(self.insns)
        lead = [False] * (n + 1)
        lead[0] = True
        pc = 0
        while pc < n:
            ins = insns[pc]
            cls, op = ins.opcode & 0x07, ins.opcode & 0xF0
            if ins.is_lddw:
                pc += 2
                continue
            if cls in (I.BPF_JMP, I.BPF_JMP32):
                if op == I.BPF_CALL:
                    if ins.src == I.BPF_PSEUDO_CALL and not ins.opcode & I.BPF_X:
                        t = pc + 1 + ins.imm
                        if 0 <= t < n:
                            lead[t] = True
                        lead[pc + 1] = True
                elif op == I.BPF_EXIT:
                    lead[pc + 1] = True
                else:
                    t = pc + 1 + (ins.imm if op == I.BPF_JA and cls == I.BPF_JMP32 else ins.off)
                    if 0 <= t < n:
                        lead[t] = True
                    lead[pc + 1] = True
            pc += 1
        return lead

    def _inline(self, ins: Insn, pc: int) -> tuple[list[str], bool]:
        """Statements performing ``ins`` inside a block, and whether they end the block."""
        cls, op, d, s = ins.opcode & 0x07, ins.opcode & 0xF0, ins.dst, ins.src
        n = pc + 1
        if cls in (I.BPF_ALU, I.BPF_ALU64):
            wide = cls == I.BPF_ALU64
            mask = M64 if wide else M32
            if op == I.BPF_MOV and ins.off == 0:
                if ins.opcode & I.BPF_X:
                    return [f"r[{d}] = r[{s}]" if wide else f"r[{d}] = r[{s}] & {M32}"], False
                return [f"r[{d}] = {ins.imm & mask}"], False
            if op == I.BPF_NEG:
                return [f"r[{d}] = (-r[{d}]) & {mask}" if wide else f"r[{d}] = (-(r[{d}] & {M32})) & {M32}"], False
            if op == I.BPF_END:
                width = ins.imm
                expr = _bswap("a", width) if wide or ins.opcode & I.BPF_X else f"a & {(1 << width) - 1}"
                return [f"a = r[{d}]", f"r[{d}] = {expr}"], False
            operand = (f"r[{s}]" if wide else f"(r[{s}] & {M32})") if ins.opcode & I.BPF_X else str(ins.imm & mask)
            expr = _alu_expr(op, ins.off, wide).replace("M64", str(M64)).replace("M32", str(M32))
            # dst and operand substituted into the expression (both are pure, so repeating them is safe)
            expr = _B.sub(operand, _A.sub(f"r[{d}]" if wide else f"(r[{d}] & {M32})", expr))
            return [f"r[{d}] = {expr}"], False
        if cls in (I.BPF_JMP, I.BPF_JMP32):
            wide = cls == I.BPF_JMP
            charge = ["budget[0] -= 1", "if budget[0] < 0: raise BpfRuntimeError("
                      "'instruction budget exhausted (unbounded loop?)')"]
            if op == I.BPF_EXIT:
                return ["return EXIT()"], True
            if op == I.BPF_CALL:
                if ins.opcode & I.BPF_X:
                    return [f"CALL(r[{d}])"], False
                if ins.src == 0:
                    if ins.imm in self.helpers:  # bound at load, as fixup_bpf_calls resolves helper ids
                        return [f"r[0] = int(H[{ins.imm}](VM, r[1], r[2], r[3], r[4], r[5])) & {M64}"], False
                    return [f"CALL({ins.imm})"], False  # refused at run time, with the VM's error
                return [f"return C[{pc}]()"], True  # bpf-to-bpf call (or its range error)
            if op == I.BPF_JA:
                t = n + (ins.off if wide else ins.imm)
                if not 0 <= t < len(self.insns):
                    return [f"return C[{pc}]()"], True
                return (charge if t <= pc else []) + [f"return {t}"], True
            t = n + ins.off
            if not 0 <= t < len(self.insns):
                return [f"return C[{pc}]()"], True
            mask = M64 if wide else M32
            bits = 64 if wide else 32
            lhs = f"r[{d}]" if wide else f"(r[{d}] & {M32})"
            if ins.opcode & I.BPF_X:
                rhs = f"r[{s}]" if wide else f"(r[{s}] & {M32})"
                srhs = (_s64 if wide else _s32)(rhs)
            else:
                k = ins.imm & mask
                rhs, srhs = str(k), str(k - (1 << bits) if k >> (bits - 1) else k)
            if op in _COND:
                cond = f"{lhs} {_COND_OP[op]} {rhs}"
            else:
                cond = f"{(_s64 if wide else _s32)(lhs)} {_SCOND[op]} {srhs}"
            body = [f"if {cond}:"]
            body += ["    " + c for c in (charge if t <= pc else [])] + [f"    return {t}", f"return {n}"]
            return body, True
        mode, size = ins.opcode & 0xE0, I.SIZE_BYTES.get(ins.opcode & 0x18, 0)
        # Loads and stores inline the address space's fast path (an ordinary region, in bounds,
        # writable for a store) and call its checked accessor for everything else: special
        # regions (contexts) and faults, which it reports exactly as before.
        if cls == I.BPF_LDX and mode in (I.BPF_MEM, I.BPF_MEMSX):
            addr = f"r[{s}]" if ins.off == 0 else f"(r[{s}] + {ins.off}) & {M64}"
            sign = 1 << (8 * size - 1)
            fix = (lambda v: v) if mode == I.BPF_MEM else (lambda v: f"(({v} ^ {sign}) - {sign}) & {M64}")
            return [f"x = {addr}", "h = x >> 32", "if 0 < h < len(BUFS):", "    m = BUFS[h]",
                    f"    o = x & {M32}",
                    f"    r[{d}] = {fix(f'U{size}(m, o)[0]')} if o + {size} <= len(m) else {fix(f'L{size}(x)')}",
                    "else:", f"    r[{d}] = {fix(f'L{size}(x)')}"], False
        if cls in (I.BPF_ST, I.BPF_STX) and mode == I.BPF_MEM:
            addr = f"r[{d}]" if ins.off == 0 else f"(r[{d}] + {ins.off}) & {M64}"
            vmask = (1 << (8 * size)) - 1
            value = f"r[{s}]" if cls == I.BPF_STX else str(ins.imm & M64)
            return [f"x = {addr}", "h = x >> 32", "o = x & 4294967295",
                    f"if 0 < h < len(BUFS) and WR[h] and o + {size} <= len(BUFS[h]):",
                    f"    P{size}(BUFS[h], o, {value} & {vmask})", "else:", f"    S{size}(x, {value})"], False
        if ins.is_lddw and pc in self._lddw_values:
            return [f"r[{d}] = {self._lddw_values[pc]}"], False
        if cls == I.BPF_STX and mode == I.BPF_ATOMIC and size in (4, 8) and \
                ins.imm & ~I.BPF_FETCH in (I.BPF_ADD, I.BPF_OR, I.BPF_AND, I.BPF_XOR) and not ins.imm & ~0xF1:
            # read-modify-write on an ordinary writable region inline, else the slot closure
            addr = f"r[{d}]" if ins.off == 0 else f"(r[{d}] + {ins.off}) & {M64}"
            vmask = (1 << (8 * size)) - 1
            opc = {I.BPF_ADD: "+", I.BPF_OR: "|", I.BPF_AND: "&", I.BPF_XOR: "^"}[ins.imm & ~I.BPF_FETCH]
            return [f"x = {addr}", "h = x >> 32", "o = x & 4294967295",
                    f"if 0 < h < len(BUFS) and WR[h] and o + {size} <= len(BUFS[h]):",
                    "    m = BUFS[h]", f"    old = U{size}(m, o)[0]",
                    f"    P{size}(m, o, (old {opc} (r[{s}] & {vmask})) & {vmask})",
                    *([f"    r[{s}] = old"] if ins.imm & I.BPF_FETCH else []),
                    "else:", f"    C[{pc}]()"], False
        return [f"C[{pc}]()"], False  # other atomics, legacy packet loads, invalid slots

    def _compile_blocks(self) -> list[Callable[[], int]]:
        slot = self.slot_code
        insns, n = self.insns, len(self.insns)
        if n > MAX_BLOCK_COMPILE_INSNS:
            return slot
        lead = self._leaders()
        self._block_file = f"<bpf-blocks-{next(_block_files)}>"
        header = ("(r, C, L1, L2, L4, L8, S1, S2, S4, S8, CALL, EXIT, budget, BpfRuntimeError, "
                  "sdiv, smod, BUFS, WR, U1, U2, U4, U8, P1, P2, P4, P8, H, VM, blocks):")
        lines: list[str] = []
        linemap: dict[int, int] = {}
        starts = [pc for pc in range(n) if lead[pc]]
        makers = 0
        for k, start in enumerate(starts):
            if k % _BLOCKS_PER_MAKER == 0:  # CPython compiles one huge nested scope superlinearly
                lines.append(f"def make{makers}{header}")
                makers += 1
            lines.append(f"    def b{start}():")
            pc, ended = start, False
            while pc < n and not ended:
                if pc != start and lead[pc]:
                    break
                ins = insns[pc]
                stmts, ended = self._inline(ins, pc)
                for st in stmts:
                    lines.append("        " + st)
                    linemap[len(lines)] = pc
                pc += 2 if ins.is_lddw else 1
            if not ended:
                lines.append(f"        return {pc}")
                linemap[len(lines)] = pc
            lines.append(f"    blocks[{start}] = b{start}")
        ns: dict[str, object] = {}
        exec(compile("\n".join(lines), self._block_file, "exec"), ns)  # generated from our own templates only
        ld, stv = self.mem.load, self.mem.store
        blocks: dict[int, Callable[[], int]] = {}
        env = (self.regs, slot, ld[1], ld[2], ld[4], ld[8], stv[1], stv[2], stv[4], stv[8],
               self._call_helper, self._exit, self._budget, BpfRuntimeError, sdiv, smod,
               self.mem.bufs, self.mem.writable, *(_ST[k].unpack_from for k in (1, 2, 4, 8)),
               *(_ST[k].pack_into for k in (1, 2, 4, 8)), dict(self.helpers), self, blocks)
        for k in range(makers):
            ns[f"make{k}"](*env)  # type: ignore[operator]
        self._block_lines = linemap
        code = list(slot)
        for start, fn in blocks.items():
            code[start] = fn
        return code

    def _op_invalid(self, pc: int, why: str) -> Callable[[], int]:
        def f() -> int:
            raise BpfRuntimeError(why, pc)
        return f

    def _compile_one(self, ins: Insn, pc: int) -> Callable[[], int]:
        cls = ins.opcode & 0x07
        if cls in (I.BPF_ALU, I.BPF_ALU64):
            return self._op_alu(ins, pc)
        if cls in (I.BPF_JMP, I.BPF_JMP32):
            return self._op_jmp(ins, pc)
        if cls == I.BPF_LDX:
            return self._op_ldx(ins, pc)
        if cls in (I.BPF_ST, I.BPF_STX):
            return self._op_store(ins, pc)
        if cls == I.BPF_LD:
            return self._op_ld_legacy(ins, pc)
        raise NotSupported(f"opcode 0x{ins.opcode:02x} at insn {pc}")

    def _op_alu(self, ins: Insn, pc: int) -> Callable[[], int]:
        r, n = self.regs, pc + 1
        wide = (ins.opcode & 0x07) == I.BPF_ALU64
        op, d, s = ins.opcode & 0xF0, ins.dst, ins.src
        mask = M64 if wide else M32
        if op == I.BPF_NEG:
            src = _ALU_TEMPLATE.format(amask="", operand="0", expr=f"(-a) & {'M64' if wide else 'M32'}")
            return _factory(src)(r, d, s, 0, n)
        if op == I.BPF_END:
            width = ins.imm
            if width not in (16, 32, 64):
                raise NotSupported(f"byte swap width {width}")
            if wide or ins.opcode & I.BPF_X:  # ALU64 bswap, or to-be on a little-endian machine
                expr = _bswap("a", width)
            else:  # to-le on a little-endian machine: truncate only
                expr = f"a & {(1 << width) - 1}"
            return _factory(_ALU_TEMPLATE.format(amask="", operand="0", expr=expr))(r, d, s, 0, n)
        if ins.opcode & I.BPF_X:
            operand = "r[s]" if wide else "r[s] & M32"
            k = 0
        else:
            operand = "k"
            k = ins.imm & mask
        expr = _alu_expr(op, ins.off, wide)
        src = _ALU_TEMPLATE.format(amask="" if wide else " & M32", operand=operand, expr=expr)
        return _factory(src)(r, d, s, k, n)

    def _op_jmp(self, ins: Insn, pc: int) -> Callable[[], int]:
        r, n = self.regs, pc + 1
        op = ins.opcode & 0xF0
        wide = (ins.opcode & 0x07) == I.BPF_JMP
        if op == I.BPF_JA:
            target = n + (ins.off if wide else ins.imm)
            if not 0 <= target < len(self.insns):
                return self._op_invalid(pc, f"jump out of range to {target}")
            budget = self._budget
            if target <= pc:
                def ja_back() -> int:
                    budget[0] -= 1
                    if budget[0] < 0:
                        raise BpfRuntimeError("instruction budget exhausted (unbounded loop?)")
                    return target
                return ja_back
            return lambda: target
        if op == I.BPF_EXIT:
            return self._exit
        if op == I.BPF_CALL:
            return self._op_call(ins, pc)
        if op in _COND:
            cond = _COND[op]
        elif op in _SCOND:
            sx = _s64 if wide else _s32
            cond = f"{sx('a')} {_SCOND[op]} {sx('b')}"
        else:
            raise NotSupported(f"jump op 0x{ins.opcode:02x} at insn {pc}")
        mask = M64 if wide else M32
        if ins.opcode & I.BPF_X:
            operand, k = ("r[s]" if wide else "r[s] & M32"), 0
        else:
            operand, k = "k", ins.imm & mask
        target = n + ins.off
        if not 0 <= target < len(self.insns):
            return self._op_invalid(pc, f"jump out of range to {target}")
        src = _JMP_TEMPLATE.format(amask="" if wide else " & M32", operand=operand, cond=cond,
                                   charge=_CHARGE if target <= pc else "")
        return _factory(src)(r, ins.dst, ins.src, k, n, target, self._budget)

    def _op_call(self, ins: Insn, pc: int) -> Callable[[], int]:
        n = pc + 1
        if ins.opcode & I.BPF_X:  # callx: helper id in a register
            r, d, call = self.regs, ins.dst, self._call_helper

            def callx() -> int:
                call(r[d])
                return n
            return callx
        if ins.src == I.BPF_PSEUDO_CALL:
            target, call_local = n + ins.imm, self._call_local
            if not 0 <= target < len(self.insns):
                return self._op_invalid(pc, f"call out of range to {target}")
            return lambda: call_local(n, target)
        if ins.src == 0:
            hid, call = ins.imm, self._call_helper

            def call_helper() -> int:
                call(hid)
                return n
            return call_helper
        raise NotSupported(f"call with src {ins.src} (kfunc) at insn {pc}")

    def _op_lddw(self, first: Insn, second: Insn, pc: int) -> Callable[[], int]:
        r, d, n = self.regs, first.dst, pc + 2
        if first.src == 0:
            value = I.lddw_value(first, second)
        elif self.ld_imm64 is not None:
            value = self.ld_imm64(first.src, first.imm & M32, second.imm & M32) & M64
        else:
            raise NotSupported(f"lddw pseudo source {first.src} without a resolver (insn {pc})")
        self._lddw_values[pc] = value

        def f() -> int:
            r[d] = value
            return n
        return f

    def _op_ldx(self, ins: Insn, pc: int) -> Callable[[], int]:
        r, d, s, off, n = self.regs, ins.dst, ins.src, ins.off, pc + 1
        size = I.SIZE_BYTES[ins.opcode & 0x18]
        load = self.mem.load[size]
        mode = ins.opcode & 0xE0
        if mode == I.BPF_MEM:
            def ldx() -> int:
                r[d] = load((r[s] + off) & M64)
                return n
            return ldx
        if mode == I.BPF_MEMSX and size < 8:
            sign = 1 << (8 * size - 1)

            def ldxsx() -> int:
                r[d] = ((load((r[s] + off) & M64) ^ sign) - sign) & M64
                return n
            return ldxsx
        raise NotSupported(f"LDX mode 0x{mode:02x} at insn {pc}")

    def _op_store(self, ins: Insn, pc: int) -> Callable[[], int]:
        r, d, s, off, n = self.regs, ins.dst, ins.src, ins.off, pc + 1
        size = I.SIZE_BYTES[ins.opcode & 0x18]
        store, load = self.mem.store[size], self.mem.load[size]
        mode = ins.opcode & 0xE0
        if ins.opcode & 0x07 == I.BPF_ST:
            if mode != I.BPF_MEM:
                raise NotSupported(f"ST mode 0x{mode:02x} at insn {pc}")
            value = ins.imm & M64  # sign-extended, truncated by the store

            def st() -> int:
                store((r[d] + off) & M64, value)
                return n
            return st
        if mode == I.BPF_MEM:
            def stx() -> int:
                store((r[d] + off) & M64, r[s])
                return n
            return stx
        if mode != I.BPF_ATOMIC:
            raise NotSupported(f"STX mode 0x{mode:02x} at insn {pc}")
        return self._op_atomic(ins, pc, size, load, store)

    def _op_atomic(self, ins: Insn, pc: int, size: int, load: Callable[[int], int],
                   store: Callable[[int, int], None]) -> Callable[[], int]:
        r, d, s, off, n, imm = self.regs, ins.dst, ins.src, ins.off, pc + 1, ins.imm
        mask = (1 << (8 * size)) - 1
        if imm == I.BPF_LOAD_ACQ:
            def load_acq() -> int:
                r[d] = load((r[s] + off) & M64)
                return n
            return load_acq
        if imm == I.BPF_STORE_REL:
            def store_rel() -> int:
                store((r[d] + off) & M64, r[s])
                return n
            return store_rel
        if size not in (4, 8):
            raise NotSupported(f"atomic op on {size}-byte operand at insn {pc}")
        if imm == I.BPF_XCHG:
            def xchg() -> int:
                addr = (r[d] + off) & M64
                old = load(addr)
                store(addr, r[s])
                r[s] = old
                return n
            return xchg
        if imm == I.BPF_CMPXCHG:
            def cmpxchg() -> int:
                addr = (r[d] + off) & M64
                old = load(addr)
                if old == r[0] & mask:
                    store(addr, r[s])
                r[0] = old
                return n
            return cmpxchg
        base, fetch = imm & ~I.BPF_FETCH, imm & I.BPF_FETCH
        if base not in (I.BPF_ADD, I.BPF_OR, I.BPF_AND, I.BPF_XOR) or imm & ~0xF1:
            raise NotSupported(f"atomic op 0x{imm:x} at insn {pc}")
        expr = {I.BPF_ADD: "old + v", I.BPF_OR: "old | v", I.BPF_AND: "old & v", I.BPF_XOR: "old ^ v"}[base]
        src = f"""
def make(r, d, s, off, n, load, store, M):
    def f():
        addr = (r[d] + off) & M64
        old = load(addr)
        v = r[s] & M
        store(addr, {expr})
        {"r[s] = old" if fetch else "pass"}
        return n
    return f
"""
        return _factory(src)(r, d, s, off, n, load, store, mask)

    def _op_ld_legacy(self, ins: Insn, pc: int) -> Callable[[], int]:
        mode = ins.opcode & 0xE0
        if mode not in (I.BPF_ABS, I.BPF_IND) or ins.opcode & 0x18 == I.BPF_DW:
            raise NotSupported(f"LD opcode 0x{ins.opcode:02x} at insn {pc}")
        r, s, imm, n = self.regs, ins.src, ins.imm, pc + 1
        size = I.SIZE_BYTES[ins.opcode & 0x18]
        ind = mode == I.BPF_IND
        vm = self

        def ld_pkt() -> int:
            pkt = vm.packet
            if pkt is None:
                raise BpfRuntimeError("LD_ABS/LD_IND without a packet")
            # filter.c bpf_gen_ld_abs: offset = (int)(src + imm) for IND, imm for ABS.
            offset = ((((r[s] + imm) & M32) ^ 0x80000000) - 0x80000000) if ind else imm
            value = pkt.load(offset, size)
            if value is None:
                raise ProgramExit(0)
            r[0] = value
            return n
        return ld_pkt
