"""Mnemonic tables shared by the assembler and the disassembler.

One table per direction would drift; keeping the name <-> code maps in one
module makes ``disasm(asm(x)) == x`` hold by construction.  Names are those of
the bpf_conformance assembler syntax (``add``/``add32``, ``jne``/``jne32``, ...).
"""
from __future__ import annotations

from . import insn as I

ALU_OPS: dict[str, int] = {
    "add": I.BPF_ADD, "sub": I.BPF_SUB, "mul": I.BPF_MUL, "div": I.BPF_DIV,
    "or": I.BPF_OR, "and": I.BPF_AND, "lsh": I.BPF_LSH, "rsh": I.BPF_RSH,
    "mod": I.BPF_MOD, "xor": I.BPF_XOR, "mov": I.BPF_MOV, "arsh": I.BPF_ARSH,
}
ALU_NAMES: dict[int, str] = {v: k for k, v in ALU_OPS.items()}

# Signed variants encoded with off = 1 (RFC 9669 section 4.1, cpu v4).
SIGNED_ALU_OPS: dict[str, int] = {"sdiv": I.BPF_DIV, "smod": I.BPF_MOD}
SIGNED_ALU_NAMES: dict[int, str] = {v: k for k, v in SIGNED_ALU_OPS.items()}

JMP_OPS: dict[str, int] = {
    "jeq": I.BPF_JEQ, "jgt": I.BPF_JGT, "jge": I.BPF_JGE, "jset": I.BPF_JSET,
    "jne": I.BPF_JNE, "jsgt": I.BPF_JSGT, "jsge": I.BPF_JSGE, "jlt": I.BPF_JLT,
    "jle": I.BPF_JLE, "jslt": I.BPF_JSLT, "jsle": I.BPF_JSLE,
}
JMP_NAMES: dict[int, str] = {v: k for k, v in JMP_OPS.items()}

# C operators used by the llvm-objdump syntax.
ALU_C: dict[int, str] = {
    I.BPF_ADD: "+=", I.BPF_SUB: "-=", I.BPF_MUL: "*=", I.BPF_DIV: "/=", I.BPF_OR: "|=",
    I.BPF_AND: "&=", I.BPF_LSH: "<<=", I.BPF_RSH: ">>=", I.BPF_MOD: "%=", I.BPF_XOR: "^=",
    I.BPF_MOV: "=", I.BPF_ARSH: "s>>=",
}
JMP_C: dict[int, str] = {
    I.BPF_JEQ: "==", I.BPF_JGT: ">", I.BPF_JGE: ">=", I.BPF_JSET: "&", I.BPF_JNE: "!=",
    I.BPF_JSGT: "s>", I.BPF_JSGE: "s>=", I.BPF_JLT: "<", I.BPF_JLE: "<=",
    I.BPF_JSLT: "s<", I.BPF_JSLE: "s<=",
}

SIZE_SUFFIX: dict[int, str] = {I.BPF_B: "b", I.BPF_H: "h", I.BPF_W: "w", I.BPF_DW: "dw"}
SUFFIX_SIZE: dict[str, int] = {v: k for k, v in SIZE_SUFFIX.items()}
SIZE_C: dict[int, str] = {I.BPF_B: "u8", I.BPF_H: "u16", I.BPF_W: "u32", I.BPF_DW: "u64"}
SIZE_C_SIGNED: dict[int, str] = {I.BPF_B: "s8", I.BPF_H: "s16", I.BPF_W: "s32"}

# Atomic read-modify-write operations (imm without BPF_FETCH).
ATOMIC_OPS: dict[str, int] = {"add": I.BPF_ADD, "or": I.BPF_OR, "and": I.BPF_AND, "xor": I.BPF_XOR}
ATOMIC_NAMES: dict[int, str] = {v: k for k, v in ATOMIC_OPS.items()}
