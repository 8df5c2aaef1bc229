"""Kernel differential on seeded random programs: bpf(2) against netstack, interpreter and JIT.

Issue 3's "Tests" bullet: seeded random verifier-valid programs loaded into the kernel
(``BPF_PROG_LOAD``) and into netstack (:class:`~netstack.bpf.progs.Program`, which runs the
verifier at load), then run through ``BPF_PROG_TEST_RUN`` and through
:func:`~netstack.bpf.progs.prog_test_run_full` on the interpreter *and* on the JIT
(:func:`~netstack.bpf.jit.jit_program`): the same accept/reject decision (and errno), and for
every accepted program, on several packets, the same retval, data_out and ctx_out, and the same
map contents afterwards.

The generator extends the building blocks of ``test_verifier_gen.py`` (ALU64/ALU32 operations,
conditional skips, packet accesses behind ``data_end`` checks, stack spills and fills, array-map
values) from read-only XDP programs to programs whose results depend on everything they do:

* three program types -- XDP (``xdp_md``), SCHED_CLS and SOCKET_FILTER (``__sk_buff``) -- with
  their own packet access: direct packet loads and stores (XDP, tc), LD_ABS/LD_IND (tc, socket
  filter), ``bpf_skb_load_bytes``;
* the whole ALU (div/mod incl. by a zero register, sdiv/smod, movsx, byte swaps, 32-bit forms),
  JMP32, bounded loops, atomics on stack and map values, a bpf-to-bpf call;
* helpers that change the packet or return data-dependent results: ``skb_store_bytes``,
  ``l3/l4_csum_replace``, ``csum_diff``, ``skb_vlan_push/pop``, ``xdp_adjust_head/meta/tail``;
* context reads (incl. narrow ones) and writes (mark, priority, cb, tc_index, tc_classid,
  tstamp), compared through ``ctx_out`` with a random ``ctx_in``;
* the return value is built from the scalars, so every ALU result and every packet byte read
  reaches ``retval``.

Nothing nondeterministic in the kernel is used (no ``get_prandom_u32``, ``ktime``, CPU id,
``skb->hash`` or uninitialised stack: the first 64 stack bytes are zeroed first).  The seed is
fixed, so the same programs run every time; ``NETSTACK_BPF_RANDOM_SEED`` picks another set.
The kernel tests are skipped, with the reason printed, when not root or when bpf(2) is refused;
``test_block_dispatch_equals_one_closure_per_instruction`` (the interpreter's basic blocks against
its one-closure-per-instruction form on the same samples, unverified so faults are compared too)
runs everywhere.
"""
from __future__ import annotations

import os
import random
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netstack.bpf import context as C
from netstack.bpf import maps as M
from netstack.bpf import progs as P
from netstack.bpf.asm import assemble
from netstack.bpf.errors import BpfRuntimeError, BpfVerifyError
from netstack.bpf.insn import Insn
from netstack.bpf.kernel import KernelBpfError, KMap, KProg, available

REASON = available()
if REASON is not None:
    print(f"random-program kernel differential skipped: {REASON}")
needs_kernel = pytest.mark.skipif(REASON is not None, reason=f"bpf(2) unusable here: {REASON}")

SEED = int(os.environ.get("NETSTACK_BPF_RANDOM_SEED", "20261124"))
XDP, TC, SF = C.BPF_PROG_TYPE_XDP, C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_PROG_TYPE_SOCKET_FILTER
#: programs generated per type; the kernel must accept at least MIN_ACCEPTED of them in all
PER_TYPE = {XDP: 130, TC: 130, SF: 90}
MIN_ACCEPTED = 300
PACKETS_PER_PROGRAM = 4
#: the JIT test compiles every JIT_EVERY-th sample (see its docstring)
JIT_EVERY = 3

SC = ["%r7", "%r8", "%r9"]          # scalars: callee-saved, so they survive helper calls
SIZES = {"b": 1, "h": 2, "w": 4, "dw": 8}
ALU = ["add", "sub", "mul", "div", "mod", "or", "and", "xor", "lsh", "rsh", "arsh", "mov", "sdiv", "smod"]
JMP = ["jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jsle", "jset"]
IMMS = [0, 1, 2, 3, 7, 8, 14, 31, 32, 63, 64, 255, 0x100, 0xFFFF, 0x7FFFFFFF, -1, -2, -8, -0x80000000, 1 << 20]
#: (data, data_end) offsets in the context
PKT_FIELDS = {XDP: (0, 4), TC: (76, 80)}
#: __sk_buff u32 fields whose test_run value is the same in the kernel and the model
SKB_READ = {"len": 0, "pkt_type": 4, "mark": 8, "queue_mapping": 12, "protocol": 16, "vlan_present": 20,
            "vlan_tci": 24, "vlan_proto": 28, "priority": 32, "ingress_ifindex": 36, "ifindex": 40,
            "tc_index": 44, "cb0": 48, "cb1": 52, "cb2": 56, "cb3": 60, "cb4": 64, "gso_segs": 164,
            "gso_size": 176}
SKB_READ_TC = dict(SKB_READ, tc_classid=72, wire_len=160)
SKB_WRITE_TC = {"mark": 8, "priority": 32, "tc_index": 44, "cb0": 48, "cb1": 52, "cb2": 56, "cb3": 60,
                "cb4": 64, "tc_classid": 72, "queue_mapping": 12}
SKB_WRITE_SF = {"cb0": 48, "cb1": 52, "cb2": 56, "cb3": 60, "cb4": 64}
ARRAY = (M.BPF_MAP_TYPE_ARRAY, 4, 16, 4)


class Gen:
    """One random program of ``prog_type`` (see the module docstring); ``text()`` is its assembly.

    Register use: r6 = ctx throughout (LD_ABS needs it), r7-r9 scalars, r0-r5 scratch (helper
    calls clobber them), r10-8 .. r10-64 zeroed at entry.  Jumps go to unique labels.
    """

    def __init__(self, rng: random.Random, prog_type: int) -> None:
        self.r = rng
        self.t = prog_type
        self.out: list[str] = []
        self.labels = 0
        self.uses_map = False
        self.subprog: list[str] = []

    # -- small pieces ------------------------------------------------------------------------------
    def label(self) -> str:
        self.labels += 1
        return f"L{self.labels}"

    def sc(self) -> str:
        return self.r.choice(SC)

    def imm(self) -> int:
        return self.r.choice(IMMS) if self.r.random() < 0.6 else self.r.randint(-300, 300)

    def emit(self, *lines: str) -> None:
        self.out.extend(lines)

    # -- blocks ------------------------------------------------------------------------------------
    def alu(self) -> None:
        r = self.r
        dst = self.sc()
        k = r.random()
        if k < 0.12:
            form = r.choice(["neg", "neg32", "be16", "be32", "be64", "le16", "le32", "le64", "swap16", "swap32",
                             "swap64"])
            self.emit(f"{form} {dst}")
            return
        if k < 0.2:
            mn = r.choice(["movsx864", "movsx1664", "movsx3264", "movsx832", "movsx1632"])
            self.emit(f"{mn} {dst}, {self.sc()}")
            return
        op = r.choice(ALU)
        w = r.choice(["", "32"])
        if op in ("lsh", "rsh", "arsh") and r.random() < 0.7:
            self.emit(f"{op}{w} {dst}, {r.randint(0, 31 if w else 63)}")
            return
        if r.random() < 0.45:
            self.emit(f"{op}{w} {dst}, {self.sc()}")
            return
        imm = self.imm()
        if op in ("div", "mod", "sdiv", "smod") and imm == 0:
            imm = r.choice([3, -7, 10])
        if op in ("lsh", "rsh", "arsh"):
            imm &= 31 if w else 63
        self.emit(f"{op}{w} {dst}, {imm}")

    def cond(self, depth: int) -> None:
        """``if (scalar op K|reg) skip`` over one or two inner blocks (JMP or JMP32)."""
        r = self.r
        end = self.label()
        rhs = str(r.choice(IMMS[:12] + [r.randint(-10, 100)])) if r.random() < 0.6 else self.sc()
        self.emit(f"{r.choice(JMP)}{r.choice(['', '32'])} {self.sc()}, {rhs}, {end}")
        for _ in range(r.randint(1, 2)):
            self.block(depth + 1)
        self.emit(f"{end}:")

    def loop(self) -> None:
        """A bounded loop: a counter in r5 from N down to 0 around ALU work on the scalars."""
        top = self.label()
        self.emit(f"mov %r5, {self.r.randint(1, 5)}", f"{top}:")
        for _ in range(self.r.randint(1, 3)):
            self.alu()
        cmp = self.r.choice(["jne %r5, 0", "jsgt %r5, 0", "jgt32 %r5, 0"])
        self.emit("sub %r5, 1", f"{cmp}, {top}")

    def stack(self) -> None:
        r = self.r
        slot = -8 * r.randint(1, 8)
        size = r.choice(list(SIZES))
        n = SIZES[size]
        off = slot + r.randrange(0, 8, n)
        kind = r.random()
        if kind < 0.3:
            self.emit(f"stx{size} [%r10{off:+d}], {self.sc()}")
        elif kind < 0.45:
            self.emit(f"st{size} [%r10{off:+d}], {self.imm()}")
        elif kind < 0.7:
            mn = f"ldxs{size}" if size != "dw" and r.random() < 0.3 else f"ldx{size}"
            self.emit(f"{mn} {self.sc()}, [%r10{off:+d}]")
        elif kind < 0.85:  # spill and fill
            self.emit(f"stxdw [%r10{slot:+d}], {self.sc()}", f"ldx{size} {self.sc()}, [%r10{off:+d}]")
        else:  # atomics on an 8-byte slot
            w = r.choice(["", "32"])
            op = r.choice(["add", "or", "and", "xor", "fetch add", "fetch or", "fetch and", "fetch xor",
                           "xchg", "cmpxchg"])
            if op == "cmpxchg":
                self.emit(f"mov %r0, {self.sc()}")
            self.emit(f"lock {op}{w} [%r10{slot:+d}], {self.sc()}")
            if op == "cmpxchg":
                self.emit(f"mov {self.sc()}, %r0")

    def _pkt_ptr(self, extent: int, skip: str) -> None:
        """r2 = data (+ a bounded scalar), r3 = data_end, and a proof that ``extent`` bytes follow r2."""
        d, de = PKT_FIELDS[self.t]
        var = self.r.random() < 0.35
        if var:
            self.emit(f"mov %r5, {self.sc()}", f"and %r5, {self.r.choice([0x7, 0x1f, 0x3f])}")
        self.emit(f"ldxw %r2, [%r6+{d}]", f"ldxw %r3, [%r6+{de}]")
        if var:
            self.emit("add %r2, %r5")
        self.emit("mov %r4, %r2", f"add %r4, {extent}")
        if self.r.random() < 0.8:
            self.emit(f"jgt %r4, %r3, {skip}")
        else:
            ok = self.label()
            self.emit(f"jle %r4, %r3, {ok}", f"ja {skip}", f"{ok}:")

    def pkt_load(self) -> None:
        r = self.r
        size = r.choice(list(SIZES))
        n = SIZES[size]
        off = r.randint(0, 60)
        skip = self.label()
        self._pkt_ptr(off + n, skip)
        mn = f"ldxs{size}" if size != "dw" and r.random() < 0.2 else f"ldx{size}"
        self.emit(f"{mn} {self.sc()}, [%r2+{off}]", f"{skip}:")

    def pkt_store(self) -> None:
        r = self.r
        size = r.choice(list(SIZES))
        n = SIZES[size]
        off = r.randint(0, 60)
        skip = self.label()
        self._pkt_ptr(off + n, skip)
        if r.random() < 0.7:
            self.emit(f"stx{size} [%r2+{off}], {self.sc()}", f"{skip}:")
        else:
            self.emit(f"st{size} [%r2+{off}], {self.imm()}", f"{skip}:")

    def ld_abs(self) -> None:
        r = self.r
        size = r.choice(["b", "h", "w"])
        if r.random() < 0.5:
            self.emit(f"ldabs{size} {r.randint(0, 70)}")
        else:
            self.emit(f"mov %r1, {self.sc()}", f"and %r1, {r.choice([0xF, 0x3F, 0xFF])}",
                      f"ldind{size} %r1, {r.randint(-4, 40)}")
        self.emit(f"mov {self.sc()}, %r0")

    def load_bytes(self) -> None:
        r = self.r
        n = r.choice([1, 2, 4, 8, 16])
        off = str(r.randint(0, 70)) if r.random() < 0.7 else None
        if off is None:
            self.emit(f"mov %r2, {self.sc()}", "and %r2, 0x3f")
        else:
            self.emit(f"mov %r2, {off}")
        self.emit("mov %r1, %r6", "mov %r3, %r10", "add %r3, -32", f"mov %r4, {n}", "call 26",
                  f"add {self.sc()}, %r0", f"ldx{r.choice(['b', 'h', 'w', 'dw'])} {self.sc()}, [%r10-32]")

    def store_bytes(self) -> None:
        r = self.r
        n = r.choice([1, 2, 4, 8])
        self.emit(f"stxdw [%r10-16], {self.sc()}", "mov %r1, %r6", f"mov %r2, {r.randint(0, 70)}",
                  "mov %r3, %r10", "add %r3, -16", f"mov %r4, {n}",
                  f"mov %r5, {r.choice([0, 0, 1, 2, 3, 4])}", "call 9", f"add {self.sc()}, %r0")

    def csum_replace(self) -> None:
        r = self.r
        hid = r.choice([10, 11])
        kind = r.choice([0, 2, 4])
        flags = kind | (r.choice([0, 0x10, 0x20, 0x60]) if hid == 11 else 0)
        if r.random() < 0.05:
            flags |= 0x100
        frm = "0" if kind == 0 else self.sc()
        self.emit("mov %r1, %r6", f"mov %r2, {r.choice([24, 40, 50, r.randint(0, 80)])}", f"mov %r3, {frm}",
                  f"mov %r4, {self.sc()}", f"mov %r5, {flags}", f"call {hid}", f"add {self.sc()}, %r0")

    def csum_diff(self) -> None:
        r = self.r
        fs, ts = r.choice([0, 4, 8, 12]), r.choice([0, 4, 8, 16, 20])
        if r.random() < 0.2:
            fs, ts = r.choice([0, 2, 6]), r.choice([1, 3, 8])
        self.emit(f"stxdw [%r10-40], {self.sc()}", f"stxdw [%r10-48], {self.sc()}")
        self.emit("mov %r1, 0" if fs == 0 else "mov %r1, %r10", *([] if fs == 0 else ["add %r1, -56"]),
                  f"mov %r2, {fs}", "mov %r3, 0" if ts == 0 else "mov %r3, %r10",
                  *([] if ts == 0 else ["add %r3, -48"]), f"mov %r4, {ts}", f"mov %r5, {self.sc()}",
                  "call 28", f"xor {self.sc()}, %r0")

    def xdp_adjust(self) -> None:
        r = self.r
        hid, delta = r.choice([(44, r.choice([-64, -14, -4, 4, 14, 20, r.randint(-300, 60)])),
                               (54, r.choice([-4, -8, -32, -6, 4, 0])),
                               (65, r.choice([-4, -20, -60, 8, 100, r.randint(-80, 200)]))])
        self.emit("mov %r1, %r6", f"mov %r2, {delta}", f"call {hid}", f"add {self.sc()}, %r0")

    def vlan(self) -> None:
        """``bpf_skb_vlan_push`` (a random TPID: 802.1Q, 802.1ad or another one) or ``bpf_skb_vlan_pop``."""
        r = self.r
        if r.random() < 0.6:
            tpid = r.choice(["0x0081", "0xa888", "0x0008", self.sc()])
            self.emit("mov %r1, %r6", f"mov %r2, {tpid}", f"mov %r3, {self.sc()}", "call 18")
        else:
            self.emit("mov %r1, %r6", "call 19")
        self.emit(f"add {self.sc()}, %r0")

    def ctx_read(self) -> None:
        r = self.r
        if self.t == XDP:
            self.emit(f"ldxw {self.sc()}, [%r6+{r.choice([12, 16])}]")
            return
        fields = SKB_READ_TC if self.t == TC else SKB_READ
        name = r.choice(list(fields))
        off = fields[name]
        size = r.choice(["w", "w", "h", "b"])
        sub = {"w": 0, "h": r.choice([0, 2]), "b": r.randint(0, 3)}[size]
        self.emit(f"ldx{size} {self.sc()}, [%r6+{off + sub}]")

    def ctx_write(self) -> None:
        r = self.r
        fields = SKB_WRITE_TC if self.t == TC else SKB_WRITE_SF
        off = r.choice(list(fields.values()))
        if self.t == TC and r.random() < 0.1:
            self.emit(f"stxdw [%r6+152], {self.sc()}")  # tstamp
        elif r.random() < 0.7:
            self.emit(f"stxw [%r6+{off}], {self.sc()}")
        else:
            self.emit(f"stw [%r6+{off}], {self.imm()}")

    def map_value(self) -> None:
        """Array-map element ``scalar & 3`` (16-byte values): read, write or atomically update it."""
        r = self.r
        self.uses_map = True
        skip = self.label()
        key = f"mov %r1, {self.sc()}\nand %r1, 3\nstxw [%r10-4], %r1" if r.random() < 0.7 \
            else f"stw [%r10-4], {r.randint(0, 5)}"
        self.emit(*key.split("\n"), "mov %r2, %r10", "add %r2, -4", "lddw %r1, {array}, 1", "call 1",
                  f"jeq %r0, 0, {skip}")
        kind = r.random()
        size = r.choice(list(SIZES))
        off = r.randrange(0, 17 - SIZES[size], SIZES[size])
        if kind < 0.35:
            self.emit(f"ldx{size} {self.sc()}, [%r0+{off}]")
        elif kind < 0.7:
            self.emit(f"stx{size} [%r0+{off}], {self.sc()}")
        else:
            w = r.choice(["", "32"])
            aoff = r.choice([0, 8]) + (r.choice([0, 4]) if w else 0)
            self.emit(f"lock {r.choice(['add', 'xor', 'fetch add', 'fetch or', 'xchg'])}{w} [%r0+{aoff}], "
                      f"{self.sc()}")
        self.emit(f"{skip}:")

    def call_local(self) -> None:
        """A bpf-to-bpf call of a subprogram computing on r1/r2 with its own stack slot."""
        if not self.subprog:
            body = ["sub:", "mov %r0, %r1", "stxdw [%r10-8], %r2"]
            for _ in range(self.r.randint(1, 3)):
                op = self.r.choice(["add", "xor", "mul", "sub", "or", "rsh"])
                body.append(f"{op} %r0, {self.r.randint(1, 40) if op != 'rsh' else self.r.randint(0, 8)}")
            body += ["ldxdw %r2, [%r10-8]", "add %r0, %r2", "exit"]
            self.subprog = body
        self.emit(f"mov %r1, {self.sc()}", f"mov %r2, {self.sc()}", "call local sub", f"mov {self.sc()}, %r0")

    def invalid(self) -> None:
        """Something the kernel verifier refuses, so the decisions are compared on refusals too."""
        r = self.r
        if self.t != SF and r.random() < 0.5:  # a packet read without a data_end proof
            self.emit(f"ldxw %r2, [%r6+{PKT_FIELDS[self.t][0]}]", f"ldx{r.choice(list(SIZES))} {self.sc()}, "
                      f"[%r2+{r.randint(0, 20)}]")
        else:  # a context field this program type may not read
            bad = {XDP: [20, 24, 2], TC: [92, 168, 77], SF: [76, 80, 152]}[self.t]
            self.emit(f"ldxw {self.sc()}, [%r6+{r.choice(bad)}]")

    def block(self, depth: int = 0) -> None:
        choices: list[tuple[Callable[[], None], int]] = [(self.alu, 6), (self.stack, 2), (self.ctx_read, 2),
                                                         (self.map_value, 1), (self.call_local, 1)]
        if depth < 2:
            choices += [(lambda: self.cond(depth), 2), (self.loop, 1)]
        if self.t in (XDP, TC):
            choices += [(self.pkt_load, 3), (self.pkt_store, 2), (self.csum_diff, 1)]
        if self.t in (TC, SF):
            choices += [(self.ld_abs, 2), (self.load_bytes, 1)]
        if self.t != XDP:
            choices += [(self.ctx_write, 1)]
        if self.t == TC:
            choices += [(self.store_bytes, 1), (self.csum_replace, 1), (self.vlan, 1)]
        if self.t == XDP:
            choices += [(self.xdp_adjust, 1)]
        fns = [c[0] for c in choices]
        self.r.choices(fns, weights=[c[1] for c in choices])[0]()

    def text(self) -> str:
        r = self.r
        self.emit("mov %r6, %r1", *(f"stdw [%r10-{8 * k}], 0" for k in range(1, 9)),
                  *(f"mov {reg}, {self.imm()}" for reg in SC))
        bad = r.randint(0, 9) if r.random() < 0.06 else -1
        for k in range(r.randint(2, 9)):
            if k == bad:
                self.invalid()
            self.block()
        ret = r.random()
        if ret < 0.7:
            self.emit(f"mov %r0, {self.sc()}", f"{r.choice(['xor', 'add', 'sub'])} %r0, {self.sc()}")
        elif ret < 0.85:
            self.emit(f"mov32 %r0, {self.sc()}")
        else:
            self.emit(f"mov %r0, {r.choice([0, 1, 2, 3, 4, 7, -1])}")
        self.emit("exit")
        return "\n".join(self.out + self.subprog)


def _frame(rng: random.Random, kind: str) -> bytes:
    """A random Ethernet frame: IPv4/UDP, IPv4/TCP, 802.1Q-tagged IPv4, IPv6, ARP or a short oddity."""
    dst = rng.choice([bytes(6), b"\xff" * 6, bytes([0x02, 0, 0, 0, 0, 1]), bytes([0x01, 0, 0x5e, 0, 0, 1])])
    src = bytes([0x02]) + rng.randbytes(5)
    if kind in ("udp", "tcp"):
        proto, l4 = (17, 8) if kind == "udp" else (6, 20)
        payload = rng.randbytes(rng.randint(0, 40))
        total = 20 + l4 + len(payload)
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, rng.randrange(1 << 16), 0x4000, 64, proto, 0,
                         rng.randbytes(4), rng.randbytes(4))
        return dst + src + b"\x08\x00" + ip + rng.randbytes(l4) + payload
    if kind == "vlan":
        return dst + src + b"\x81\x00" + rng.randbytes(2) + b"\x08\x00" + rng.randbytes(rng.randint(20, 60))
    if kind == "ipv6":
        return dst + src + b"\x86\xdd" + rng.randbytes(rng.randint(40, 80))
    if kind == "arp":
        return dst + src + b"\x08\x06" + rng.randbytes(28)
    return dst + src + rng.choice([b"\x88\xcc", b"\x00\x40", b"\x88\x47"]) + rng.randbytes(rng.randint(0, 20))


def _skb_ctx(rng: random.Random) -> bytes:
    """A ``__sk_buff`` ctx_in with the fields test_run lets userspace set (mark, priority, cb)."""
    raw = bytearray(C.SK_BUFF_SIZE)
    struct.pack_into("<I", raw, 8, rng.randrange(1 << 32))
    struct.pack_into("<I", raw, 32, rng.randrange(1 << 16))
    raw[48:68] = rng.randbytes(20)
    return bytes(raw)


@dataclass
class Sample:
    """One generated program with its packets (and per packet an optional ctx_in)."""

    prog_type: int
    src: str
    uses_map: bool
    runs: list[tuple[bytes, bytes | None]] = field(default_factory=list)


def samples(seed: int = SEED) -> list[Sample]:
    rng = random.Random(seed)
    out = []
    for prog_type, count in PER_TYPE.items():
        for _ in range(count):
            g = Gen(rng, prog_type)
            s = Sample(prog_type, g.text(), g.uses_map)
            for k in range(PACKETS_PER_PROGRAM):
                kind = ["udp", "tcp", "vlan", rng.choice(["ipv6", "arp", "odd", "udp"])][k]
                ctx = _skb_ctx(rng) if prog_type != XDP and rng.random() < 0.5 else None
                s.runs.append((_frame(rng, kind), ctx))
            out.append(s)
    return out


def _outcome(fn: Callable[[], Any]) -> Any:
    try:
        return ("ok", fn())
    except (KernelBpfError, P.TestRunError) as exc:
        return ("errno", exc.errno)


def _kernel(s: Sample, insns: list[Insn], kmap: KMap | None) -> tuple[Any, list[Any], list[bytes]]:
    try:
        kp = KProg(s.prog_type, insns, log_size=1 << 20)
    except KernelBpfError as exc:
        return ("rejected", exc.errno), [], []
    with kp:
        res = []
        for d, c in s.runs:
            def go() -> tuple[int, bytes, bytes]:
                retval, data_out, _duration, ctx_out = kp.test_run(d, ctx=c, ctx_out_size=C.SK_BUFF_SIZE if c else 0)
                return retval, data_out, ctx_out
            res.append(_outcome(go))
    values = [kmap.lookup(struct.pack("<I", k)) for k in range(4)] if kmap else []
    return ("accepted", 0), res, values


def _model(s: Sample, src: str, mmap_: M.BpfMap | None, jit: bool) -> tuple[Any, list[Any], list[bytes]]:
    try:
        prog = P.Program(s.prog_type, assemble(src))
    except BpfVerifyError as exc:
        return ("rejected", exc.errno), [], []
    if jit:
        from netstack.bpf.jit import jit_program
        jit_program(prog)
    res = []
    for d, c in s.runs:
        def go() -> tuple[int, bytes, bytes]:
            r = P.prog_test_run_full(prog, d, ctx=c)
            return r.retval, r.data_out, r.ctx_out
        res.append(_outcome(go))
    values = [mmap_.lookup(struct.pack("<I", k)) for k in range(4)] if mmap_ else []
    return ("accepted", 0), res, values


SAMPLES = samples()
_stats = {"accepted": 0, "rejected": 0, "runs": 0}


def _check(s: Sample, jit: bool) -> None:
    kmap = KMap(*ARRAY) if s.uses_map else None
    try:
        mmap_ = P.new_map(*ARRAY) if s.uses_map else None
        ksrc = s.src.replace("{array}", str(kmap.fd)) if kmap else s.src
        msrc = s.src.replace("{array}", str(mmap_.fd)) if mmap_ else s.src
        kdec, kres, kvals = _kernel(s, assemble(ksrc), kmap)
        mdec, mres, mvals = _model(s, msrc, mmap_, jit)
        where = f"{'jit' if jit else 'interp'} type {s.prog_type}\n{s.src}"
        assert mdec == kdec, where
        for n, (a, b) in enumerate(zip(mres, kres)):
            assert a == b, f"packet {n}: model {a} kernel {b}\n{where}"
        assert mvals == kvals, where
        if not jit:
            _stats[kdec[0]] += 1
            _stats["runs"] += len(kres)
    finally:
        if kmap is not None:
            kmap.close()


@needs_kernel
def test_random_programs_match_kernel_interpreter() -> None:
    """Every sample, on the interpreter: decision, errno, retval/data_out/ctx_out, map contents."""
    for s in SAMPLES:
        _check(s, jit=False)
    assert _stats["accepted"] >= MIN_ACCEPTED, _stats
    assert _stats["rejected"] >= 1, _stats  # the generator also reaches the verifier's refusals


@needs_kernel
def test_random_programs_match_kernel_jit() -> None:
    """The same on the JIT (default optimisation level) for every JIT_EVERY-th sample.

    A JIT compilation costs 50-100 ms of CPU (LLVM), so all samples would take ~30 s on this
    machine; ``NETSTACK_BPF_RANDOM_JIT_ALL=1`` runs every one of them.
    """
    step = 1 if os.environ.get("NETSTACK_BPF_RANDOM_JIT_ALL") else JIT_EVERY
    for s in SAMPLES[::step]:
        _check(s, jit=True)


NARROW_QUIRK = """mov %r6, %r1
ldxh %r7, [%r6+18]
ldxb %r8, [%r6+7]
lsh %r7, 8
or %r7, %r8
mov %r0, %r7
exit"""


@needs_kernel
@pytest.mark.parametrize("prog_type", [TC, SF])
def test_narrow_ctx_read_of_a_short_field_is_the_kernel_s(prog_type: int) -> None:
    """Found by the random programs: the kernel's narrow-read rule for short sk_buff members."""
    frame = _frame(random.Random(1), "udp")
    frame = b"\xff" * 6 + frame[6:]  # PACKET_MULTICAST on lo: pkt_type 2
    with KProg(prog_type, assemble(NARROW_QUIRK)) as kp:
        kret = kp.test_run(frame)[0]
    assert kret == 0x0802  # protocol 0x0008 (network order) and pkt_type 2, unshifted
    assert P.prog_test_run(P.Program(prog_type, assemble(NARROW_QUIRK)), frame)[0] == kret


def _outcomes(prog: P.Program, runs: list[tuple[bytes, bytes | None]]) -> list[Any]:
    out: list[Any] = []
    for d, c in runs:
        try:
            r = P.prog_test_run_full(prog, d, ctx=c)
            out.append((r.retval, r.data_out, r.ctx_out))
        except BpfRuntimeError as exc:
            out.append(("fault", exc.pc, exc.message))
        except P.TestRunError as exc:
            out.append(("errno", exc.errno))
    return out


def test_block_dispatch_equals_one_closure_per_instruction() -> None:
    """No kernel needed: the interpreter's basic-block code (``vm.code``) and its per-slot closures
    (``vm.slot_code``) give the same results on every sample, run *unverified* so that the
    invalid samples fault -- with the same pc and message."""
    faults = 0
    for s in SAMPLES:
        src = s.src.replace("{array}", "0")
        if s.uses_map:
            continue
        a = P.Program(s.prog_type, assemble(src), verifier=False)
        b = P.Program(s.prog_type, assemble(src), verifier=False)
        b.vm.code = b.vm.slot_code
        got, want = _outcomes(a, s.runs), _outcomes(b, s.runs)
        assert got == want, s.src
        faults += sum(1 for g in got if g[0] == "fault")
    print(f"{faults} faulting runs compared")
    assert faults >= 5  # the invalid samples really fault (at their instruction)


def _every_narrow_read(prog_type: int, off: int) -> str:
    """Reads the field at ``off`` whole and at every narrow (size, offset) the verifier allows,
    then copies the seven results into ``cb`` (ctx_out); retval is the 4-byte read.  On tc the
    u16 members are first made non-zero (writes of tc_index, tc_classid -- with bits above 16 that
    the kernel's ``BPF_STX_MEM(BPF_H, ...)`` drops --, queue_mapping, and a pushed tag for the
    ``vlan_*`` fields)."""
    pro = ["mov %r6, %r1"]
    if prog_type == TC:
        pro += ["stw [%r6+44], 0xa1b2", "stw [%r6+72], 0x7ed4e5f6", "stw [%r6+12], 0x1234",
                "mov %r1, %r6", "mov %r2, 0x0081", "mov %r3, 0xe123", "call 18"]
    reads = [("w", 0, 0), ("h", 1, 0), ("h", 2, 2), ("b", 3, 0), ("b", 4, 1), ("b", 5, 2), ("b", 7, 3)]
    body = [f"ldx{sz} %r{reg}, [%r6+{off + sub}]" for sz, reg, sub in reads]
    cb, stores = 48, []
    for sz, reg, _ in reads:
        stores.append(f"stx{sz} [%r6+{cb}], %r{reg}")
        cb += {"w": 4, "h": 2, "b": 1}[sz]
    return "\n".join(pro + body + stores + ["exit"])


@needs_kernel
@pytest.mark.parametrize("prog_type", [TC, SF])
def test_every_narrow_ctx_read_matches_kernel(prog_type: int) -> None:
    """Every readable ``__sk_buff`` u32 field at every (size, offset) ``bpf_ctx_narrow_access_ok``
    allows: the model's ``target_size`` table (context.SKB_TARGET_SIZE) against
    bpf_convert_ctx_access + convert_ctx_accesses, through retval and ctx_out."""
    frame = b"\xff" * 6 + _frame(random.Random(7), "udp")[6:]  # pkt_type PACKET_MULTICAST on lo
    ctx = bytearray(C.SK_BUFF_SIZE)
    for name, value in (("mark", 0x89ABCDEF), ("priority", 0x01234567), ("gso_segs", 0x0203),
                        ("gso_size", 0x0405), ("wire_len", 0x0607)):
        struct.pack_into("<I", ctx, C.SK_BUFF[name][0], value)
    fields = dict(SKB_READ_TC if prog_type == TC else SKB_READ, napi_id=84)
    unshifted = 0
    for name, off in fields.items():
        src = _every_narrow_read(prog_type, off)
        with KProg(prog_type, assemble(src)) as kp:
            kret, kdata, _, kctx = kp.test_run(frame, ctx=bytes(ctx), ctx_out_size=C.SK_BUFF_SIZE)
        got = P.prog_test_run_full(P.Program(prog_type, assemble(src)), frame, ctx=bytes(ctx))
        assert (got.retval, got.data_out, got.ctx_out[48:60]) == (kret, kdata, kctx[48:60]), name
        # a short member read at +2 gives its whole value where a plain shift would give 0
        unshifted += 0 < kret < 0x10000 and kctx[54:56] == kret.to_bytes(4, "little")[0:2]
        if name == "protocol":  # 0x0008 in network order: unshifted at +2 and +3
            assert kctx[52:60] == bytes([8, 0, 8, 0, 8, 0, 0, 0])
    assert unshifted >= 4  # the whole-value rule was really exercised, not just all-zero fields


@given(value=st.integers(0, (1 << 32) - 1), target=st.sampled_from([1, 2, 4]),
       size=st.sampled_from([1, 2, 4]), data=st.data())
def test_narrow_ctx_value_rule(value: int, target: int, size: int, data: Any) -> None:
    """No kernel needed: ``narrow_ctx_value`` is the little-endian byte slice of the member when
    the access is narrower than it, else the member's whole value; never wider than the access."""
    sub = data.draw(st.sampled_from(range(0, 4, size)))
    got = C.narrow_ctx_value(value, target, 16 + sub, size)
    member = value & ((1 << (8 * target)) - 1)
    if size < target:
        assert got == int.from_bytes(member.to_bytes(4, "little")[sub:sub + size], "little")
    else:
        assert got == member
    assert got < 1 << (8 * size)
