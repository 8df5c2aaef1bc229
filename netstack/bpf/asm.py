"""Assembler for the bpf_conformance text syntax.

The syntax is the one of the public bpf_conformance suite's ``-- asm``
sections (github.com/Alan-Jowett/bpf_conformance, lib/src/bpf_assembler.cc),
reimplemented here from its observable behaviour:

* one instruction per line, ``#`` starts a comment, ``name:`` defines a label;
* registers ``%r0``..``%r10`` (``%r11``..``%r15`` encode, so negative tests
  can reach the loader, which rejects them);
* ``add``/``add32`` (ALU64/ALU), ``sdiv``/``smod`` (off = 1), ``movsx864`` ...
  ``movsx1632`` (MOVSX, off = 8/16/32), ``neg``, ``be16``/``le32``/``swap64``
  (``bswap64`` alias) byte swaps;
* ``ldx{b,h,w,dw} %rD, [%rS+off]``, ``ldxs{b,h,w}`` (MEMSX), ``st{b,h,w,dw}
  [%rD+off], imm``, ``stx{b,h,w,dw} [%rD+off], %rS``, ``lddw %rD, imm64``;
* ``lock [fetch] {add,or,and,xor,xchg,cmpxchg}[32] [%rD+off], %rS``;
* ``ja label``/``ja +N``, ``ja32`` (offset in imm), ``jeq[32] %rD, imm|%rS, target``,
  ``call N`` / ``call helper N``, ``call %rX`` (callx), ``call local label``,
  ``call runtime N`` (kfunc), ``exit``.  The first ``exit`` also defines the
  implicit label ``exit``.

Extensions beyond the suite (so every instruction netstack runs can be
written down): ``ldabs{b,h,w} imm``, ``ldind{b,h,w} %rS, imm`` (legacy packet
loads), ``ldacq{b,h,w,dw} %rD, [%rS+off]`` and ``strel{b,h,w,dw} [%rD+off], %rS``
(load-acquire / store-release), and ``lddw %rD, imm64, src`` for pseudo sources.

Errors are :class:`AsmError` carrying the suite's wording (``Invalid register:
%r50``, ``Invalid label: X`` ...) plus the 1-based line and column.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import insn as I
from .errors import AsmError
from .insn import Insn
from .opnames import ALU_OPS, ATOMIC_OPS, JMP_OPS, SIGNED_ALU_OPS, SUFFIX_SIZE

_MAX_REG = 15


@dataclass
class _Tok:
    text: str
    col: int  # 1-based


@dataclass
class _Line:
    number: int
    mnemonic: _Tok
    operands: list[_Tok]


def _split(line: str, number: int) -> _Line | None:
    """Tokenize one line: whitespace-separated, a trailing ',' dropped from operands."""
    code = line.split("#", 1)[0]
    toks: list[_Tok] = []
    i, n = 0, len(code)
    while i < n:
        if code[i].isspace():
            i += 1
            continue
        j = i
        while j < n and not code[j].isspace():
            j += 1
        toks.append(_Tok(code[i:j], i + 1))
        i = j
    if not toks:
        return None
    ops = [_Tok(t.text[:-1] if t.text.endswith(",") else t.text, t.col) for t in toks[1:]]
    return _Line(number, toks[0], [t for t in ops if t.text])


class _Assembler:
    def __init__(self) -> None:
        self.out: list[Insn] = []
        self.labels: dict[str, int] = {}
        # (slot index, label token, line, field) to patch once all labels are known
        self.fixups: list[tuple[int, _Tok, int, str]] = []
        self.line = 0

    # --- operand decoders ----------------------------------------------------
    def err(self, message: str, tok: _Tok | None = None) -> AsmError:
        return AsmError(message, self.line, tok.col if tok else 0)

    def reg(self, tok: _Tok) -> int:
        t = tok.text
        if t.startswith("%r") and t[2:].isdigit() and (len(t) == 3 or t[2] != "0"):
            n = int(t[2:])
            if n <= _MAX_REG:
                return n
        raise self.err(f"Invalid register: {t}", tok)

    def imm32(self, tok: _Tok, text: str | None = None) -> int:
        """Signed decimal in s32 range or hex in [0, 0xffffffff]; returns s32."""
        t = tok.text if text is None else text
        try:
            if "0x" in t:
                v = int(t, 16)
                if not 0 <= v <= 0xFFFFFFFF or t.startswith("-"):
                    raise self.err(f"Immediate out of 32-bit range: {t}", tok)
                return v - (1 << 32) if v & 0x80000000 else v
            v = int(t, 10)
        except ValueError:
            raise self.err(f"Invalid immediate: {t}", tok) from None
        if not -0x80000000 <= v <= 0x7FFFFFFF:
            raise self.err(f"Immediate out of 32-bit range: {t}", tok)
        return v

    def imm64(self, tok: _Tok) -> int:
        t = tok.text
        try:
            v = int(t, 16) if "0x" in t else int(t, 10)
        except ValueError:
            raise self.err(f"Invalid immediate: {t}", tok) from None
        if "0x" in t and t.startswith("-") or not -(1 << 63) <= v < (1 << 64):
            raise self.err(f"Immediate out of 64-bit range: {t}", tok)
        return v & 0xFFFFFFFFFFFFFFFF

    def offset(self, tok: _Tok, text: str) -> int:
        """Signed decimal in s16 range or hex in [0, 0xffff]; returns s16."""
        try:
            if "0x" in text:
                v = int(text, 16)
                if not 0 <= v <= 0xFFFF or text.startswith("-"):
                    raise self.err(f"Offset out of 16-bit range: {text}", tok)
                return v - 0x10000 if v & 0x8000 else v
            v = int(text, 10)
        except ValueError:
            raise self.err(f"Invalid offset: {text}", tok) from None
        if not -0x8000 <= v <= 0x7FFF:
            raise self.err(f"Offset out of 16-bit range: {text}", tok)
        return v

    def mem(self, tok: _Tok) -> tuple[int, int]:
        """``[%rN]``, ``[%rN+off]`` or ``[%rN-off]`` -> (reg, off)."""
        t = tok.text
        if not (t.startswith("[") and t.endswith("]")):
            raise self.err(f"Failed to decode register and offset: {t}", tok)
        body = t[1:-1]
        cut = next((k for k, ch in enumerate(body) if ch in "+-"), len(body))
        r = self.reg(_Tok(body[:cut], tok.col + 1))
        return r, (self.offset(tok, body[cut:]) if cut < len(body) else 0)

    def target(self, tok: _Tok, field: str) -> int:
        """``+N``/``-N`` relative target, or a label resolved at the end."""
        t = tok.text
        if t.startswith(("+", "-")):
            return self.offset(tok, t) if field == "off" else self.imm32(tok)
        self.fixups.append((len(self.out), tok, self.line, field))
        return 0

    # --- encoders: each returns the slots of one instruction -------------------
    def alu(self, name: str, ops: list[_Tok]) -> list[Insn]:
        cls, base = I.BPF_ALU64, name
        if name.endswith("32"):
            cls, base = I.BPF_ALU, name[:-2]
        elif name.endswith("64"):
            base = name[:-2]
        off = 0
        if base in SIGNED_ALU_OPS:
            op, off = SIGNED_ALU_OPS[base], 1
        elif base.startswith("movsx"):
            op, off = I.BPF_MOV, int(base[5:])
        else:
            op = ALU_OPS[base]
        dst = self.reg(ops[0])
        if ops[1].text.startswith("%"):
            return [Insn(cls | op | I.BPF_X, dst, self.reg(ops[1]), off, 0)]
        return [Insn(cls | op | I.BPF_K, dst, 0, off, self.imm32(ops[1]))]

    def neg(self, name: str, ops: list[_Tok]) -> list[Insn]:
        cls = I.BPF_ALU if name == "neg32" else I.BPF_ALU64
        return [Insn(cls | I.BPF_NEG, self.reg(ops[0]))]

    def end(self, name: str, ops: list[_Tok]) -> list[Insn]:
        if name.startswith("be"):
            code, width = I.BPF_ALU | I.BPF_END | I.BPF_TO_BE, name[2:]
        elif name.startswith("le"):
            code, width = I.BPF_ALU | I.BPF_END | I.BPF_TO_LE, name[2:]
        else:
            code, width = I.BPF_ALU64 | I.BPF_END | I.BPF_TO_LE, name.removeprefix("b").removeprefix("swap")
        return [Insn(code, self.reg(ops[0]), 0, 0, int(width))]

    def ldx(self, name: str, ops: list[_Tok]) -> list[Insn]:
        mode = I.BPF_MEMSX if name.startswith("ldxs") else I.BPF_MEM
        size = SUFFIX_SIZE[name[4:] if mode == I.BPF_MEMSX else name[3:]]
        dst = self.reg(ops[0])
        src, off = self.mem(ops[1])
        return [Insn(I.BPF_LDX | mode | size, dst, src, off, 0)]

    def st(self, name: str, ops: list[_Tok]) -> list[Insn]:
        dst, off = self.mem(ops[0])
        return [Insn(I.BPF_ST | I.BPF_MEM | SUFFIX_SIZE[name[2:]], dst, 0, off, self.imm32(ops[1]))]

    def stx(self, name: str, ops: list[_Tok]) -> list[Insn]:
        dst, off = self.mem(ops[0])
        return [Insn(I.BPF_STX | I.BPF_MEM | SUFFIX_SIZE[name[3:]], dst, self.reg(ops[1]), off, 0)]

    def ldacq(self, name: str, ops: list[_Tok]) -> list[Insn]:
        dst = self.reg(ops[0])
        src, off = self.mem(ops[1])
        return [Insn(I.BPF_STX | I.BPF_ATOMIC | SUFFIX_SIZE[name[5:]], dst, src, off, I.BPF_LOAD_ACQ)]

    def strel(self, name: str, ops: list[_Tok]) -> list[Insn]:
        dst, off = self.mem(ops[0])
        return [Insn(I.BPF_STX | I.BPF_ATOMIC | SUFFIX_SIZE[name[5:]], dst, self.reg(ops[1]), off, I.BPF_STORE_REL)]

    def lddw(self, name: str, ops: list[_Tok]) -> list[Insn]:
        src = 0
        if len(ops) == 3:
            src = self.imm32(ops[2])
            if not 0 <= src <= 15:
                raise self.err(f"Invalid lddw source: {ops[2].text}", ops[2])
        return list(I.lddw(self.reg(ops[0]), self.imm64(ops[1]), src))

    def ldabs(self, name: str, ops: list[_Tok]) -> list[Insn]:
        size = SUFFIX_SIZE[name[5:]]
        if name.startswith("ldabs"):
            return [Insn(I.BPF_LD | I.BPF_ABS | size, 0, 0, 0, self.imm32(ops[0]))]
        return [Insn(I.BPF_LD | I.BPF_IND | size, 0, self.reg(ops[0]), 0, self.imm32(ops[1]))]

    def ja(self, name: str, ops: list[_Tok]) -> list[Insn]:
        if name == "ja32":
            return [Insn(I.BPF_JMP32 | I.BPF_JA, 0, 0, 0, self.target(ops[0], "imm"))]
        return [Insn(I.BPF_JMP | I.BPF_JA, 0, 0, self.target(ops[0], "off"), 0)]

    def jcc(self, name: str, ops: list[_Tok]) -> list[Insn]:
        cls, base = (I.BPF_JMP32, name[:-2]) if name.endswith("32") else (I.BPF_JMP, name)
        code = cls | JMP_OPS[base]
        dst = self.reg(ops[0])
        if ops[1].text.startswith("%"):
            src, imm, code = self.reg(ops[1]), 0, code | I.BPF_X
        else:
            src, imm = 0, self.imm32(ops[1])
        return [Insn(code, dst, src, self.target(ops[2], "off"), imm)]

    def call(self, name: str, ops: list[_Tok]) -> list[Insn]:
        if len(ops) == 1:
            mode, tgt = "helper", ops[0]
        else:
            mode, tgt = ops[0].text, ops[1]
        code = I.BPF_JMP | I.BPF_CALL
        if mode == "helper":
            if tgt.text.startswith("%"):
                return [Insn(code | I.BPF_X, self.reg(tgt))]
            return [Insn(code, 0, 0, 0, self.imm32(tgt))]
        if mode == "local":
            return [Insn(code, 0, I.BPF_PSEUDO_CALL, 0, self.target(tgt, "imm"))]
        if mode == "runtime":
            return [Insn(code, 0, I.BPF_PSEUDO_KFUNC_CALL, 0, self.imm32(tgt))]
        raise self.err("Invalid call mode", ops[0])

    def exit(self, name: str, ops: list[_Tok]) -> list[Insn]:
        return [Insn(I.BPF_JMP | I.BPF_EXIT)]

    def lock(self, ops: list[_Tok]) -> tuple[str, list[_Tok]]:
        """``lock [fetch] op mem, src`` -> (atomic mnemonic, [mem, src])."""
        fetch = bool(ops) and ops[0].text == "fetch"
        rest = ops[1:] if fetch else ops
        if len(rest) != 3:
            raise self.err("Invalid number of operands for lock", ops[0] if ops else None)
        op = rest[0].text
        base = op[:-2] if op.endswith("32") else op
        if base not in ATOMIC_OPS and base not in ("xchg", "cmpxchg"):
            raise self.err(f"Invalid mnemonic: {op}", rest[0])
        return ("fetch " if fetch else "") + op, rest[1:]

    def atomic(self, name: str, ops: list[_Tok]) -> list[Insn]:
        fetch = name.startswith("fetch ")
        op = name[6:] if fetch else name
        size = I.BPF_W if op.endswith("32") else I.BPF_DW
        base = op[:-2] if op.endswith("32") else op
        if base == "xchg":
            imm = I.BPF_XCHG
        elif base == "cmpxchg":
            imm = I.BPF_CMPXCHG
        else:
            imm = ATOMIC_OPS[base] | (I.BPF_FETCH if fetch else 0)
        dst, off = self.mem(ops[0])
        return [Insn(I.BPF_STX | I.BPF_ATOMIC | size, dst, self.reg(ops[1]), off, imm)]

    # --- driver ------------------------------------------------------------------
    def table(self) -> dict[str, tuple[Callable[[str, list[_Tok]], list[Insn]], tuple[int, ...]]]:
        t: dict[str, tuple[Callable[[str, list[_Tok]], list[Insn]], tuple[int, ...]]] = {}
        for base in list(ALU_OPS) + list(SIGNED_ALU_OPS):
            for suffix in ("", "32", "64"):
                t[base + suffix] = (self.alu, (2,))
        for name in ("movsx864", "movsx1664", "movsx3264", "movsx832", "movsx1632"):
            t[name] = (self.alu, (2,))
        for name in ("neg", "neg32", "neg64"):
            t[name] = (self.neg, (1,))
        for w in ("16", "32", "64"):
            for p in ("be", "le", "swap", "bswap"):
                t[p + w] = (self.end, (1,))
        for s in ("b", "h", "w", "dw"):
            t["ldx" + s] = (self.ldx, (2,))
            t["st" + s] = (self.st, (2,))
            t["stx" + s] = (self.stx, (2,))
            t["ldacq" + s] = (self.ldacq, (2,))
            t["strel" + s] = (self.strel, (2,))
        for s in ("b", "h", "w"):
            t["ldxs" + s] = (self.ldx, (2,))
            t["ldabs" + s] = (self.ldabs, (1,))
            t["ldind" + s] = (self.ldabs, (2,))
        for base in JMP_OPS:
            t[base] = t[base + "32"] = (self.jcc, (3,))
        t["ja"] = t["ja32"] = (self.ja, (1,))
        t["call"] = (self.call, (1, 2))
        t["exit"] = (self.exit, (0,))
        t["lddw"] = (self.lddw, (2, 3))
        return t

    def run(self, text: str) -> list[Insn]:
        table = self.table()
        for number, raw in enumerate(text.splitlines(), 1):
            self.line = number
            parsed = _split(raw, number)
            if parsed is None:
                continue
            mn, ops = parsed.mnemonic, parsed.operands
            name = mn.text
            if name.endswith(":") and not ops:
                label = name[:-1]
                if label in self.labels:
                    raise self.err(f"Duplicate label ({label})", mn)
                self.labels[label] = len(self.out)
                continue
            if name == "exit" and "exit" not in self.labels:
                self.labels["exit"] = len(self.out)
            if name == "lock":
                name, ops = self.lock(ops)
                slots = self.atomic(name, ops)
            else:
                entry = table.get(name)
                if entry is None:
                    raise self.err(f"Invalid mnemonic: {name}", mn)
                encoder, counts = entry
                if len(ops) not in counts:
                    raise self.err(f"Invalid number of operands for mnemonic: {name}", mn)
                slots = encoder(name, ops)
            self.out.extend(slots)
        for index, tok, line, field in self.fixups:
            self.line = line
            if tok.text not in self.labels:
                raise self.err(f"Invalid label: {tok.text}", tok)
            rel = self.labels[tok.text] - index - 1
            old = self.out[index]
            if field == "off":
                if not -0x8000 <= rel <= 0x7FFF:
                    raise self.err(f"Offset out of 16-bit range: {tok.text}", tok)
                self.out[index] = old._replace(off=rel)
            else:
                self.out[index] = old._replace(imm=rel)
        return self.out


def assemble(text: str) -> list[Insn]:
    """Assemble conformance-syntax ``text`` into instruction slots."""
    return _Assembler().run(text)


def assemble_bytes(text: str) -> bytes:
    """Assemble and encode to the kernel's byte layout."""
    return I.encode(assemble(text))
