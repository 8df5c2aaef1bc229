"""eBPF instruction encoding: opcode constants and 8-byte slot codec.

Layout (RFC 9669 section 3, include/uapi/linux/bpf.h ``struct bpf_insn``)::

    opcode:8 | dst_reg:4 | src_reg:4 | off:s16 | imm:s32      (little endian)

On a little-endian host ``dst_reg`` is the low nibble of byte 1.  The wide
``lddw`` instruction (``BPF_LD | BPF_IMM | BPF_DW``) occupies two slots; the
second slot is all zero except its ``imm`` (the upper 32 bits).  Programs are
kept as a list of slots exactly as the kernel stores them (``prog->insnsi``),
so a jump offset counts slots and ``lddw`` is two list entries.

Constant names follow include/uapi/linux/bpf_common.h and bpf.h.
"""
from __future__ import annotations

import struct
from typing import Iterable, NamedTuple

from .errors import BpfDecodeError

# --- instruction classes (bpf_common.h) -------------------------------------
BPF_LD = 0x00
BPF_LDX = 0x01
BPF_ST = 0x02
BPF_STX = 0x03
BPF_ALU = 0x04
BPF_JMP = 0x05
BPF_JMP32 = 0x06
BPF_ALU64 = 0x07

# --- load/store sizes --------------------------------------------------------
BPF_W = 0x00
BPF_H = 0x08
BPF_B = 0x10
BPF_DW = 0x18

# --- load/store modes --------------------------------------------------------
BPF_IMM = 0x00
BPF_ABS = 0x20
BPF_IND = 0x40
BPF_MEM = 0x60
BPF_LEN = 0x80  # classic BPF only
BPF_MSH = 0xA0  # classic BPF only
BPF_MEMSX = 0x80
BPF_ATOMIC = 0xC0

# --- source operand ----------------------------------------------------------
BPF_K = 0x00
BPF_X = 0x08

# --- ALU operations ----------------------------------------------------------
BPF_ADD = 0x00
BPF_SUB = 0x10
BPF_MUL = 0x20
BPF_DIV = 0x30
BPF_OR = 0x40
BPF_AND = 0x50
BPF_LSH = 0x60
BPF_RSH = 0x70
BPF_NEG = 0x80
BPF_MOD = 0x90
BPF_XOR = 0xA0
BPF_MOV = 0xB0
BPF_ARSH = 0xC0
BPF_END = 0xD0

# BPF_END source bit selects the byte order (bpf.h)
BPF_TO_LE = 0x00
BPF_TO_BE = 0x08
BPF_FROM_LE = BPF_TO_LE
BPF_FROM_BE = BPF_TO_BE

# --- jump operations ---------------------------------------------------------
BPF_JA = 0x00
BPF_JEQ = 0x10
BPF_JGT = 0x20
BPF_JGE = 0x30
BPF_JSET = 0x40
BPF_JNE = 0x50
BPF_JSGT = 0x60
BPF_JSGE = 0x70
BPF_CALL = 0x80
BPF_EXIT = 0x90
BPF_JLT = 0xA0
BPF_JLE = 0xB0
BPF_JSLT = 0xC0
BPF_JSLE = 0xD0

# --- atomic operations (imm of BPF_STX | BPF_ATOMIC) -------------------------
BPF_FETCH = 0x01
BPF_XCHG = 0xE0 | BPF_FETCH
BPF_CMPXCHG = 0xF0 | BPF_FETCH
BPF_LOAD_ACQ = 0x100
BPF_STORE_REL = 0x110

# --- pseudo sources ----------------------------------------------------------
BPF_PSEUDO_MAP_FD = 1
BPF_PSEUDO_MAP_VALUE = 2
BPF_PSEUDO_BTF_ID = 3
BPF_PSEUDO_FUNC = 4
BPF_PSEUDO_MAP_IDX = 5
BPF_PSEUDO_MAP_IDX_VALUE = 6
BPF_PSEUDO_CALL = 1
BPF_PSEUDO_KFUNC_CALL = 2

# --- limits (include/linux/bpf.h, filter.h) ----------------------------------
MAX_BPF_REG = 11
BPF_REG_FP = 10
MAX_BPF_STACK = 512
MAX_CALL_FRAMES = 8
INSN_SIZE = 8

# --- classic-BPF ancillary offsets used by LD_ABS/LD_IND (uapi filter.h) -----
SKF_NET_OFF = -0x100000
SKF_LL_OFF = -0x200000

SIZE_BYTES = {BPF_B: 1, BPF_H: 2, BPF_W: 4, BPF_DW: 8}

_SLOT = struct.Struct("<BBhi")


def BPF_CLASS(code: int) -> int:
    return code & 0x07


def BPF_SIZE(code: int) -> int:
    return code & 0x18


def BPF_MODE(code: int) -> int:
    return code & 0xE0


def BPF_OP(code: int) -> int:
    return code & 0xF0


def BPF_SRC(code: int) -> int:
    return code & 0x08


class Insn(NamedTuple):
    """One 8-byte instruction slot.  ``off`` is signed 16-bit, ``imm`` signed 32-bit."""

    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def encode(self) -> bytes:
        """Pack this slot; fields out of range raise :class:`BpfDecodeError`."""
        if not (0 <= self.opcode <= 0xFF and 0 <= self.dst <= 0xF and 0 <= self.src <= 0xF):
            raise BpfDecodeError(f"field out of range in {self!r}")
        if not (-0x8000 <= self.off <= 0x7FFF and -0x80000000 <= self.imm <= 0x7FFFFFFF):
            raise BpfDecodeError(f"off/imm out of range in {self!r}")
        return _SLOT.pack(self.opcode, (self.src << 4) | self.dst, self.off, self.imm)

    @property
    def is_lddw(self) -> bool:
        """True for the first slot of the 16-byte ``BPF_LD | BPF_IMM | BPF_DW``."""
        return self.opcode == (BPF_LD | BPF_IMM | BPF_DW)


def decode_slot(data: bytes, offset: int = 0) -> Insn:
    """Decode the 8-byte slot at ``offset`` of ``data``."""
    if len(data) - offset < INSN_SIZE or offset < 0:
        raise BpfDecodeError(f"truncated instruction at byte {offset}")
    opcode, regs, off, imm = _SLOT.unpack_from(data, offset)
    return Insn(opcode, regs & 0xF, regs >> 4, off, imm)


def decode(data: bytes) -> list[Insn]:
    """Split program bytes into slots, as ``bpf_prog_load`` copies ``insns``.

    The kernel requires ``insn_cnt * 8`` bytes; a ragged tail is malformed.
    """
    if len(data) % INSN_SIZE:
        raise BpfDecodeError(f"program length {len(data)} is not a multiple of {INSN_SIZE}")
    return [Insn(op, regs & 0xF, regs >> 4, off, imm) for op, regs, off, imm in _SLOT.iter_unpack(data)]


def encode(insns: Iterable[Insn]) -> bytes:
    """Concatenate encoded slots."""
    return b"".join(i.encode() for i in insns)


def lddw(dst: int, value: int, src: int = 0) -> tuple[Insn, Insn]:
    """Build the two slots of ``lddw dst, value`` (value taken modulo 2**64)."""
    value &= 0xFFFFFFFFFFFFFFFF
    lo, hi = value & 0xFFFFFFFF, value >> 32
    return (
        Insn(BPF_LD | BPF_IMM | BPF_DW, dst, src, 0, lo - (1 << 32) if lo & 0x80000000 else lo),
        Insn(0, 0, 0, 0, hi - (1 << 32) if hi & 0x80000000 else hi),
    )


def lddw_value(first: Insn, second: Insn) -> int:
    """The unsigned 64-bit immediate of an ``lddw`` pair."""
    return ((second.imm & 0xFFFFFFFF) << 32) | (first.imm & 0xFFFFFFFF)


def from_hex(text: str) -> list[Insn]:
    """Decode a hex string (whitespace allowed), the conformance plugin's input form."""
    try:
        data = bytes.fromhex("".join(text.split()))
    except ValueError as exc:
        raise BpfDecodeError(f"invalid hex program: {exc}") from None
    return decode(data)
