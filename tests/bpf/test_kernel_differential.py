"""The model against this machine's kernel through bpf(2).

Maps: the same create attributes and the same operation sequences go to a
kernel map and to a model map; errno, values and get_next_key order must
agree.  Programs: each hand-assembled program is loaded by the kernel (so its
verifier must accept it) and by the model, run through BPF_PROG_TEST_RUN on
the same input, and retval, data_out, ctx_out and the maps it touched are
compared.  Skips, printing why, when not root or when bpf(2) is refused.
"""
from __future__ import annotations

import mmap
import os
import random
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from netstack.bpf import context as C
from netstack.bpf import maps as M
from netstack.bpf import progs as P
from netstack.bpf.asm import assemble
from netstack.bpf.errors import BpfRuntimeError, BpfVerifyError
from netstack.bpf.kernel import KernelBpfError, KMap, KProg, available, possible_cpus

REASON = available()
if REASON is not None:
    print(f"kernel differential tests skipped: {REASON}")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"bpf(2) unusable here: {REASON}")

NCPU = possible_cpus()
u32 = struct.Struct("<I").pack


def _errno(fn: Callable[[], Any]) -> Any:
    try:
        out = fn()
    except (KernelBpfError, M.MapError, P.TestRunError) as exc:
        return ("errno", exc.errno)
    return ("ok", out)


# =================================================================================================
# map creation
# =================================================================================================

H, A, PA, PE, PH, PAR, LRU, LRUPC, LPM, DM, XSK, RB = 1, 2, 3, 4, 5, 6, 9, 10, 11, 14, 17, 27
NP, NCL, NUMA, RDO, WRO, ZS, RDP, WRP, MMAP, PRES, INNER = 1, 2, 4, 8, 16, 64, 128, 256, 1024, 2048, 4096

CREATE_CASES = [
    (H, 4, 4, 1, 0), (H, 0, 4, 1, 0), (H, 4, 0, 1, 0), (H, 4, 4, 0, 0), (H, 513, 4, 1, 0),
    (H, 4, 4, 1, 1 << 20), (H, 4, 4, 1, NP), (H, 4, 4, 1, NCL), (H, 4, 4, 1, ZS), (H, 4, 4, 1, RDO | WRO),
    (H, 4, 4, 1, RDP | WRP), (H, 4, 4, 1, RDO | RDP), (H, 4, 4194251, 1, 0), (H, 4, 4194252, 1, 0),
    (H, 100, 4194155, 1, 0), (H, 100, 4194156, 1, 0), (H, 4, 4, (1 << 31) + 1, 0), (H, 4, 4, 1, MMAP),
    (LRU, 4, 4, 1, NP), (LRU, 4, 4, 1, NCL), (LRU, 4, 4, 4, ZS), (LRU, 4, 4, 4, MMAP),
    (LRUPC, 4, 4, 4, 0), (LRUPC, 4, 4, 4, NP), (LRUPC, 4, 4, 4, NCL), (LRUPC, 4, 4, 4, NUMA),
    (LRUPC, 4, 32769, 4, 0), (LRUPC, 0, 4, 4, 0),
    (PH, 4, 32768, 1, 0), (PH, 4, 32769, 1, 0), (PH, 4, 8, 1, NUMA), (PH, 4, 8, 1, NP),
    (A, 8, 4, 1, 0), (A, 0, 4, 1, 0), (A, 4, 0, 1, 0), (A, 4, 4, 0, 0), (A, 4, 4, 1, NP), (A, 4, 4, 1, MMAP),
    (A, 4, 4, 1, INNER), (A, 4, 4, 1, ZS), (PAR, 4, 32768, 1, 0), (PAR, 4, 32769, 1, 0), (PAR, 4, 8, 1, NUMA),
    (LPM, 8, 4, 1, NP), (LPM, 8, 4, 1, 0), (LPM, 4, 4, 1, NP), (LPM, 5, 4, 1, NP), (LPM, 260, 4, 1, NP),
    (LPM, 261, 4, 1, NP), (LPM, 8, 0, 1, NP), (LPM, 8, 4, 0, NP), (LPM, 8, 4194024, 1, NP),
    (LPM, 8, 4194025, 1, NP), (LPM, 8, 4, 1, NP | ZS),
    (RB, 0, 0, 4096, 0), (RB, 4, 0, 4096, 0), (RB, 0, 4, 4096, 0), (RB, 0, 0, 8192, 0), (RB, 0, 0, 12288, 0),
    (RB, 0, 0, 2048, 0), (RB, 0, 0, 0, 0), (RB, 0, 0, 4096, NP), (RB, 0, 0, 4096, NUMA),
    (PA, 4, 4, 1, 0), (PA, 4, 8, 1, 0), (PA, 8, 4, 1, 0), (PA, 4, 4, 0, 0), (PA, 4, 4, 1, RDP),
    (DM, 4, 4, 1, 0), (DM, 4, 8, 1, 0), (DM, 4, 12, 1, 0), (DM, 8, 4, 1, 0), (DM, 4, 4, 0, 0),
    (XSK, 4, 4, 1, 0), (XSK, 4, 8, 1, 0), (XSK, 8, 4, 1, 0), (XSK, 4, 4, 0, 0),
    (PE, 4, 4, 1, 0), (PE, 4, 8, 1, 0), (PE, 8, 4, 1, 0), (PE, 4, 4, 0, 0), (PE, 4, 4, 1, PRES),
]


def _kcreate(*a: int) -> Any:
    def go() -> str:
        KMap(*a).close()
        return "created"
    return _errno(go)


def _mcreate(*a: int) -> Any:
    return _errno(lambda: M.create_map(*a, ncpus=NCPU) and "created")


@pytest.mark.parametrize("case", CREATE_CASES, ids=lambda c: "t%d-k%d-v%d-m%d-f%x" % c)
def test_map_create_errno_matches_kernel(case: tuple[int, ...]) -> None:
    assert _mcreate(*case) == _kcreate(*case)


# =================================================================================================
# element operations
# =================================================================================================

def _pair(map_type: int, k: int, v: int, n: int, flags: int = 0) -> tuple[KMap, M.BpfMap]:
    return KMap(map_type, k, v, n, flags), M.create_map(map_type, k, v, n, flags, ncpus=NCPU)


def _compare_ops(km: KMap, mm: M.BpfMap, ops: list[tuple[str, Any]]) -> None:
    for n, (op, args) in enumerate(ops):
        if op == "lookup":
            size = mm.user_value_size
            want = _errno(lambda: km.lookup(args, size))
        else:
            want = _errno(lambda: getattr(km, op)(*args))
        got = _errno(lambda: getattr(mm, op)(*((args,) if op == "lookup" else args)))
        want = ("ok", None) if want == ("ok", None) or (op in ("update", "delete") and want[0] == "ok") else want
        got = ("ok", None) if op in ("update", "delete") and got[0] == "ok" else got
        assert got == want, f"op {n} {op}{args!r}: model {got} kernel {want}"


def _dump(m: Any) -> list[bytes]:
    out, k = [], None
    while True:
        try:
            k = m.get_next_key(k)
        except (KernelBpfError, M.MapError):
            return out
        out.append(k)


def _random_ops(rnd: random.Random, key_size: int, value_size: int, nkeys: int, count: int,
                key_fn: Callable[[random.Random], bytes] | None = None) -> list[tuple[str, Any]]:
    keys = [key_fn(rnd) if key_fn else bytes(rnd.randrange(256) for _ in range(key_size)) for _ in range(nkeys)]
    ops: list[tuple[str, Any]] = []
    for i in range(count):
        key = rnd.choice(keys)
        r = rnd.random()
        if r < 0.45:
            value = bytes(rnd.randrange(256) for _ in range(value_size))
            ops.append(("update", (key, value, rnd.choice([0, 0, 1, 2, 3, 4]))))
        elif r < 0.65:
            ops.append(("delete", (key,)))
        elif r < 0.85:
            ops.append(("lookup", key))
        else:
            ops.append(("get_next_key", (rnd.choice([key, None]),)))
    return ops


@pytest.mark.parametrize("map_type,key_size,value_size,max_entries,flags", [
    (H, 4, 8, 4, ZS), (H, 6, 3, 8, ZS), (H, 8, 16, 64, ZS | NP), (PH, 4, 12, 4, ZS), (PH, 5, 8, 16, ZS),
])
def test_hash_ops_and_iteration_order_match_kernel(map_type: int, key_size: int, value_size: int,
                                                    max_entries: int, flags: int) -> None:
    km, mm = _pair(map_type, key_size, value_size, max_entries, flags)
    with km:
        rnd = random.Random(map_type * 1000 + key_size * 10 + max_entries)
        vs = mm.user_value_size
        ops = _random_ops(rnd, key_size, vs, max_entries + 3, 160)
        _compare_ops(km, mm, ops)
        assert _dump(mm) == _dump(km)
        for key in _dump(km):
            assert mm.lookup(key) == km.lookup(key, vs)


def lru_lookup_src(fd: int) -> str:
    """XDP program: look up the u32 key in the first 4 packet bytes (sets the LRU reference bit)."""
    return xdp_bounds(4) + f"""ldxw %r1, [%r2+0]
stxw [%r10-4], %r1
lddw %r1, {fd}, 1
mov %r2, %r10
add %r2, -4
call 1
mov %r1, %r0
mov %r0, 2
jeq %r1, 0, miss
mov %r0, 3
miss:
exit
""" + "out:\nmov %r0, 1\nexit\n"


@pytest.fixture
def on_cpu0():  # type: ignore[no-untyped-def]
    """Pin this thread to CPU 0 so the kernel's per-CPU LRU lists are those of CPU 0."""
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    yield
    os.sched_setaffinity(0, old)


@pytest.mark.parametrize("map_type", [LRU, LRUPC])
@pytest.mark.parametrize("flags", [ZS, ZS | NCL])
@pytest.mark.parametrize("max_entries", [3, 8, 50, 300])
def test_lru_eviction_order_matches_kernel(on_cpu0: None, map_type: int, flags: int, max_entries: int) -> None:
    """Updates, deletes, syscall lookups and program lookups (which set the reference bit)."""
    km, mm = _pair(map_type, 4, 4, max_entries, flags)
    with km:
        kp = KProg(6, assemble(lru_lookup_src(km.fd)))
        mp = P.Program(6, assemble(lru_lookup_src(P.register_fd(mm))))
        with kp:
            rnd = random.Random(max_entries * 7 + flags)
            for i in range(max_entries * 4):
                key = u32(rnd.randrange(max_entries * 2))
                r = rnd.random()
                if r < 0.25:
                    frame = key + PKT[4:]
                    assert P.prog_test_run(mp, frame)[0] == kp.test_run(frame)[0], f"step {i}"
                    continue
                if r < 0.8:
                    flag = rnd.choice([0, 0, 0, 1, 2])
                    value = u32(i) * (2 * NCPU if map_type == LRUPC else 1)
                    ops: list[tuple[str, Any]] = [("update", (key, value, flag))]
                elif r < 0.9:
                    ops = [("delete", (key,))]
                else:
                    ops = [("lookup", key)]
                _compare_ops(km, mm, ops)
            assert _dump(mm) == _dump(km)


@pytest.mark.parametrize("map_type,value_size", [(A, 4), (A, 13), (PAR, 8), (PAR, 3)])
def test_array_ops_match_kernel(map_type: int, value_size: int) -> None:
    km, mm = _pair(map_type, 4, value_size, 5)
    with km:
        rnd = random.Random(value_size)
        ops = _random_ops(rnd, 4, mm.user_value_size, 8, 120, key_fn=lambda r: u32(r.randrange(8)))
        ops += [("get_next_key", (None,)), ("get_next_key", (u32(4),)), ("get_next_key", (u32(77),)),
                ("update", (u32(0), bytes(mm.user_value_size), 1)), ("delete", (u32(9),))]
        _compare_ops(km, mm, ops)


def _lpm_key(r: random.Random) -> bytes:
    plen = r.choice([0, 8, 12, 16, 16, 24, 24, 32, 33])
    return u32(plen) + bytes([10, r.choice([0, 1, 2]), r.choice([0, 5]), r.randrange(4)])


def test_lpm_trie_ops_and_order_match_kernel() -> None:
    km, mm = _pair(LPM, 8, 4, 12, NP)
    with km:
        ops = _random_ops(random.Random(7), 8, 4, 30, 220, key_fn=_lpm_key)
        _compare_ops(km, mm, ops)
        assert _dump(mm) == _dump(km)


def test_lpm_trie_longest_prefix_lookup_matches_kernel() -> None:
    km, mm = _pair(LPM, 8, 4, 16, NP)
    with km:
        prefixes = [(8, [10, 0, 0, 0]), (16, [10, 1, 0, 0]), (24, [10, 1, 1, 0]), (0, [0, 0, 0, 0]),
                    (32, [10, 1, 1, 7]), (12, [10, 16, 0, 0]), (31, [192, 168, 0, 2])]
        for i, (plen, data) in enumerate(prefixes):
            for m in (km, mm):
                m.update(u32(plen) + bytes(data), u32(i))
        rnd = random.Random(3)
        for _ in range(80):
            key = u32(rnd.choice([32, 24, 20, 8, 40])) + bytes(
                [rnd.choice([10, 192, 11]), rnd.choice([0, 1, 16, 168]), rnd.choice([0, 1]), rnd.randrange(8)])
            assert _errno(lambda: mm.lookup(key)) == _errno(lambda: km.lookup(key))
        assert _dump(mm) == _dump(km)


def test_ringbuf_userspace_ops_match_kernel() -> None:
    km, mm = _pair(RB, 0, 0, 4096)
    with km:
        for op in (lambda m: m.lookup(b""), lambda m: m.update(b"", b""), lambda m: m.delete(b""),
                   lambda m: m.get_next_key(None)):
            want = _errno(lambda: op(km))
            assert want[0] == "errno"
            assert _errno(lambda: op(mm)) == want


def test_fd_array_maps_match_kernel() -> None:
    ret = assemble("mov %r0, 2\nexit")
    with KProg(C.BPF_PROG_TYPE_XDP, ret) as kp:
        mprog = P.Program(C.BPF_PROG_TYPE_XDP, ret)
        notprog = KMap(A, 4, 4, 1)
        with notprog:
            for t in (PA, DM, XSK, PE):
                km, mm = _pair(t, 4, 4, 3)
                with km:
                    if isinstance(mm, M.FdArray):
                        mm.ifindex_ok = lambda i: i == 1
                    kval = {PA: u32(kp.fd), DM: u32(1), XSK: u32(notprog.fd), PE: u32(notprog.fd)}[t]
                    mval: Any = {PA: mprog, DM: u32(1), XSK: M.PerfEvent(), PE: M.XskSocket()}[t]
                    bad_k = bad_m = u32(999999) if t == DM else u32(notprog.fd)
                    steps = [
                        (lambda m, v: m.lookup(u32(0), 4), None), (lambda m, v: m.lookup(u32(7), 4), None),
                        (lambda m, v: m.update(u32(0), v, 0), "good"), (lambda m, v: m.update(u32(7), v, 0), "good"),
                        (lambda m, v: m.update(u32(0), v, 1), "good"), (lambda m, v: m.update(u32(0), v, 2), "good"),
                        (lambda m, v: m.update(u32(0), v, 3), "good"), (lambda m, v: m.update(u32(1), v, 0), "bad"),
                        (lambda m, v: m.delete(u32(0)), None), (lambda m, v: m.delete(u32(0)), None),
                        (lambda m, v: m.delete(u32(7)), None), (lambda m, v: m.get_next_key(None), None),
                        (lambda m, v: m.get_next_key(u32(2)), None), (lambda m, v: m.get_next_key(u32(9)), None),
                    ]
                    for n, (fn, kind) in enumerate(steps):
                        kv = kval if kind == "good" else bad_k
                        mv = mval if kind == "good" else bad_m
                        want = _errno(lambda: fn(km, kv))
                        got = _errno(lambda: fn(mm, mv) if not isinstance(mm, M.FdArray) or n > 1
                                     else mm.lookup(u32(0 if n == 0 else 7)))
                        if t == PA and want[0] == "ok" and n < 2:
                            continue  # lookup returns a prog id, which differs
                        norm = lambda r: ("ok", None) if r[0] == "ok" and not isinstance(r[1], bytes) else r  # noqa
                        assert norm(got) == norm(want), f"map type {t} step {n}: model {got} kernel {want}"


# =================================================================================================
# programs through BPF_PROG_TEST_RUN
# =================================================================================================

@dataclass
class Case:
    name: str
    prog_type: int
    src: str
    data: bytes
    maps: dict[str, tuple[int, ...]] = field(default_factory=dict)
    setup: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # (map, key, value) before the run
    ctx: bytes | None = None
    ctx_out: int = 0
    check_maps: bool = True


def _frame_ipv4_udp() -> bytes:
    eth = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
    payload = b"hello, bpf world"
    udp = struct.pack("!HHHH", 4242, 53, 8 + len(payload), 0) + payload
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0x1234, 0, 64, 17, 0,
                               bytes([10, 1, 1, 7]), bytes([192, 168, 0, 2])))
    s = sum(struct.unpack("!10H", ip))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    struct.pack_into("!H", ip, 10, ~s & 0xFFFF)
    # UDP checksum over the pseudo-header
    pseudo = bytes(ip[12:20]) + struct.pack("!BBH", 0, 17, len(udp))
    blob = pseudo + udp + (b"\0" if len(udp) % 2 else b"")
    t = sum(struct.unpack(f"!{len(blob) // 2}H", blob))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    udp = udp[:6] + struct.pack("!H", ~t & 0xFFFF or 0xFFFF) + udp[8:]
    return eth + bytes(ip) + udp


PKT = _frame_ipv4_udp()
BCAST = b"\xff" * 6 + PKT[6:]


def xdp_bounds(n: int, out: str = "out") -> str:
    """r6 = ctx, r2 = data, r3 = data_end, and a proof that n bytes are readable."""
    return f"""mov %r6, %r1
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r4, %r2
add %r4, {n}
jgt %r4, %r3, {out}
"""


def tc_bounds(n: int, out: str = "out") -> str:
    return f"""mov %r6, %r1
ldxw %r2, [%r1+76]
ldxw %r3, [%r1+80]
mov %r4, %r2
add %r4, {n}
jgt %r4, %r3, {out}
"""


def skb_ctx(**fields: int) -> bytes:
    """A ``struct __sk_buff`` for ctx_in (``cbN`` sets cb[N])."""
    raw = bytearray(C.SK_BUFF_SIZE)
    for name, value in fields.items():
        off = C.SK_BUFF["cb"][0] + 4 * int(name[2:]) if name.startswith("cb") else C.SK_BUFF[name][0]
        struct.pack_into("<I", raw, off, value)
    return bytes(raw)


OUT1 = "out:\nmov %r0, 1\nexit\n"

CASES: list[Case] = [
    Case("xdp_pass", 6, "mov %r0, 2\nexit", PKT),
    Case("xdp_retval_low32", 6, "lddw %r0, 0x1234567800000003\nexit", PKT),
    Case("xdp_ethertype", 6, xdp_bounds(14) + "ldxh %r0, [%r2+12]\nbe16 %r0\nexit\n" + OUT1, PKT),
    Case("xdp_swap_macs_tx", 6, xdp_bounds(12) + """ldxw %r4, [%r2+0]
ldxh %r5, [%r2+4]
ldxw %r7, [%r2+6]
ldxh %r8, [%r2+10]
stxw [%r2+0], %r7
stxh [%r2+4], %r8
stxw [%r2+6], %r4
stxh [%r2+10], %r5
mov %r0, 3
exit
""" + OUT1, PKT),
    Case("xdp_array_counter", 6, """stw [%r10-4], 1
mov %r2, %r10
add %r2, -4
lddw %r1, {cnt}, 1
call 1
jeq %r0, 0, out
mov %r1, 5
lock add [%r0+0], %r1
ldxdw %r1, [%r0+0]
stxdw [%r0+8], %r1
mov %r0, 2
exit
""" + OUT1, PKT, maps={"cnt": (A, 4, 16, 4)}, setup=[("cnt", u32(1), struct.pack("<QQ", 40, 0))]),
    Case("xdp_hash_update_lookup", 6, xdp_bounds(34) + """ldxw %r1, [%r2+26]
stxw [%r10-4], %r1
ldxw %r3, [%r6+4]
ldxw %r2, [%r6+0]
sub %r3, %r2
stxdw [%r10-16], %r3
lddw %r1, {h}, 1
mov %r2, %r10
add %r2, -4
mov %r3, %r10
add %r3, -16
mov %r4, 1
call 2
mov %r7, %r0
lddw %r1, {h}, 1
mov %r2, %r10
add %r2, -4
call 1
jeq %r0, 0, out
ldxdw %r0, [%r0+0]
lsh %r0, 8
or %r0, %r7
exit
""" + OUT1, PKT, maps={"h": (H, 4, 8, 8, ZS)}),
    Case("xdp_hash_noexist_conflict", 6, """stw [%r10-4], 7
stdw [%r10-16], 99
lddw %r1, {h}, 1
mov %r2, %r10
add %r2, -4
mov %r3, %r10
add %r3, -16
mov %r4, 1
call 2
exit
""", PKT, maps={"h": (H, 4, 8, 8, ZS)}, setup=[("h", u32(7), bytes(8))]),
    Case("xdp_adjust_head_push", 6, """mov %r6, %r1
mov %r2, -16
call 44
jne %r0, 0, fail
ldxw %r2, [%r6+0]
ldxw %r3, [%r6+4]
mov %r4, %r2
add %r4, 30
jgt %r4, %r3, out
lddw %r5, 0x1122334455667788
stxdw [%r2+0], %r5
stxdw [%r2+8], %r5
mov %r0, 2
exit
fail:
exit
""" + OUT1, PKT),
    Case("xdp_adjust_head_pop", 6, "mov %r2, 14\ncall 44\njne %r0, 0, done\nmov %r0, 2\ndone:\nexit", PKT),
    Case("xdp_adjust_head_floor_ok", 6, "mov %r2, -216\ncall 44\nexit", PKT),
    Case("xdp_adjust_head_below_floor", 6, "mov %r2, -217\ncall 44\nexit", PKT),
    Case("xdp_adjust_head_past_end", 6, f"mov %r2, {len(PKT) - 13}\ncall 44\nexit", PKT),
    Case("xdp_adjust_tail_shrink", 6, "mov %r2, -10\ncall 65\njne %r0, 0, done\nmov %r0, 2\ndone:\nexit", PKT),
    Case("xdp_adjust_tail_grow", 6, "mov %r2, 20\ncall 65\njne %r0, 0, done\nmov %r0, 2\ndone:\nexit", PKT),
    Case("xdp_adjust_tail_max", 6, f"mov %r2, {4096 - 320 - 256 - len(PKT)}\ncall 65\nexit", PKT),
    Case("xdp_adjust_tail_over_max", 6, f"mov %r2, {4096 - 320 - 256 - len(PKT) + 1}\ncall 65\nexit", PKT),
    Case("xdp_adjust_tail_below_eth", 6, f"mov %r2, {14 - len(PKT) - 1}\ncall 65\nexit", PKT),
    Case("xdp_adjust_meta", 6, """mov %r6, %r1
mov %r2, -8
call 54
jne %r0, 0, done
ldxw %r2, [%r6+8]
ldxw %r3, [%r6+0]
mov %r4, %r2
add %r4, 8
jgt %r4, %r3, done
stdw [%r2+0], 0x55
mov %r0, 2
done:
exit
""", PKT),
    Case("xdp_csum_diff", 6, xdp_bounds(20) + """lddw %r5, 0x0102030405060708
stxdw [%r10-8], %r5
mov %r1, %r2
mov %r2, 8
mov %r3, %r10
add %r3, -8
mov %r4, 8
mov %r5, 0
call 28
exit
""" + OUT1, PKT),
    Case("xdp_csum_diff_to_only", 6, xdp_bounds(40) + """mov %r3, %r2
add %r3, 14
mov %r1, 0
mov %r2, 0
mov %r4, 20
mov %r5, 0x1234
call 28
exit
""" + OUT1, PKT),
    Case("xdp_csum_diff_from_only", 6, xdp_bounds(40) + """mov %r1, %r2
add %r1, 14
mov %r2, 20
mov %r3, 0
mov %r4, 0
mov %r5, 0x77
call 28
exit
""" + OUT1, PKT),
    Case("xdp_csum_diff_bad_size", 6, xdp_bounds(8) + """mov %r1, %r2
mov %r2, 3
mov %r3, 0
mov %r4, 0
mov %r5, 0
call 28
exit
""" + OUT1, PKT),
    Case("xdp_ipv4_header_checksum", 6, xdp_bounds(34) + "mov %r0, 0\n" + "".join(
        f"ldxh %r5, [%r2+{14 + 2 * i}]\nbe16 %r5\nadd %r0, %r5\n" for i in range(10)) + """mov %r5, %r0
rsh %r5, 16
and %r0, 0xffff
add %r0, %r5
exit
""" + OUT1, PKT),
    Case("xdp_ringbuf_output", 6, xdp_bounds(16) + """ldxdw %r5, [%r2+0]
stxdw [%r10-16], %r5
ldxdw %r5, [%r2+8]
stxdw [%r10-8], %r5
lddw %r1, {rb}, 1
mov %r2, %r10
add %r2, -16
mov %r3, 16
mov %r4, 0
call 130
exit
""" + OUT1, PKT, maps={"rb": (RB, 0, 0, 4096)}),
    Case("xdp_ringbuf_reserve_submit_discard", 6, """lddw %r1, {rb}, 1
mov %r2, 12
mov %r3, 0
call 131
jeq %r0, 0, out
stdw [%r0+0], 0x4142
stw [%r0+8], 0x43
mov %r1, %r0
mov %r2, 0
call 132
lddw %r1, {rb}, 1
mov %r2, 20
mov %r3, 0
call 131
jeq %r0, 0, out
mov %r1, %r0
mov %r2, 0
call 133
lddw %r1, {rb}, 1
mov %r2, 0
call 134
exit
""" + OUT1, PKT, maps={"rb": (RB, 0, 0, 4096)}),
    Case("xdp_ringbuf_too_big", 6, """lddw %r1, {rb}, 1
mov %r2, 4089
mov %r3, 0
call 131
jeq %r0, 0, out
mov %r1, %r0
mov %r2, 0
call 133
mov %r0, 2
exit
""" + OUT1, PKT, maps={"rb": (RB, 0, 0, 4096)}),
    Case("xdp_redirect_map_empty_slot", 6, "lddw %r1, {dm}, 1\nmov %r2, 0\nmov %r3, 2\ncall 51\nexit", PKT,
         maps={"dm": (DM, 4, 4, 4)}),
    Case("xdp_redirect_map_hit", 6, "lddw %r1, {dm}, 1\nmov %r2, 1\nmov %r3, 2\ncall 51\nexit", PKT,
         maps={"dm": (DM, 4, 4, 4)}, setup=[("dm", u32(1), u32(1))]),
    Case("xdp_redirect", 6, "mov %r1, 1\nmov %r2, 0\ncall 23\nexit", PKT),
    Case("xdp_redirect_bad_flags", 6, "mov %r1, 1\nmov %r2, 1\ncall 23\nexit", PKT),
    Case("xdp_md_fields", 6, """ldxw %r0, [%r1+12]
lsh %r0, 8
ldxw %r2, [%r1+16]
or %r0, %r2
exit""", PKT),
    Case("xdp_lpm_lookup", 6, xdp_bounds(34) + """stw [%r10-8], 32
ldxw %r1, [%r2+26]
stxw [%r10-4], %r1
lddw %r1, {lpm}, 1
mov %r2, %r10
add %r2, -8
call 1
jeq %r0, 0, out
ldxw %r0, [%r0+0]
exit
""" + OUT1, PKT, maps={"lpm": (LPM, 8, 4, 8, NP)},
         setup=[("lpm", u32(8) + bytes([10, 0, 0, 0]), u32(8)), ("lpm", u32(24) + bytes([10, 1, 1, 0]), u32(24)),
                ("lpm", u32(16) + bytes([10, 1, 0, 0]), u32(16))]),
    Case("xdp_percpu_array_write", 6, """stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, {pa}, 1
call 1
jeq %r0, 0, out
stdw [%r0+0], 0x1122
mov %r0, 2
exit
""" + OUT1, PKT, maps={"pa": (PAR, 4, 8, 2)}, check_maps=False),
    Case("xdp_direct_map_value", 6, """lddw %r1, {g}, 2
ldxw %r0, [%r1+4]
add %r0, 1
stxw [%r1+4], %r0
exit""", PKT, maps={"g": (A, 4, 8, 1)}, setup=[("g", u32(0), struct.pack("<II", 0, 41))]),
    Case("xdp_ctx_in_geometry", 6, """ldxw %r2, [%r1+8]
ldxw %r3, [%r1+0]
ldxw %r4, [%r1+4]
mov %r0, %r3
sub %r0, %r2
lsh %r0, 16
sub %r4, %r3
or %r0, %r4
ldxw %r2, [%r1+12]
lsh %r2, 24
or %r0, %r2
exit
""", b"\x2a\0\0\0" + PKT, ctx=struct.pack("<6I", 0, 4, 0, 0, 0, 0), ctx_out=24),
    # ---------------------------------------------------------------- tc
    *[Case(f"tc_field_{name}", 3, f"ldxw %r0, [%r1+{C.SK_BUFF[name][0]}]\nexit", frame)
      for name in ("len", "pkt_type", "mark", "queue_mapping", "protocol", "vlan_present", "vlan_tci", "vlan_proto",
                   "priority", "ingress_ifindex", "ifindex", "tc_index", "hash", "tc_classid", "napi_id",
                   "wire_len", "gso_segs", "gso_size")
      for frame in ((PKT, BCAST) if name == "pkt_type" else (PKT,))],
    Case("tc_narrow_protocol_byte", 3, "ldxb %r0, [%r1+17]\nexit", PKT),
    Case("tc_pkt_type_multicast", 3, "ldxw %r0, [%r1+4]\nexit", b"\x01\x00\x5e\0\0\1" + PKT[6:]),
    Case("tc_pkt_type_host", 3, "ldxw %r0, [%r1+4]\nexit", bytes(6) + PKT[6:]),
    Case("tc_protocol_8023", 3, "ldxw %r0, [%r1+16]\nexit", PKT[:12] + b"\x00\x40\xff\xff" + PKT[16:]),
    Case("tc_data_len", 3, "ldxw %r2, [%r1+76]\nldxw %r0, [%r1+80]\nsub %r0, %r2\nexit", PKT),
    Case("tc_ctx_in_fields", 3, """ldxw %r0, [%r1+8]
ldxw %r2, [%r1+32]
add %r0, %r2
ldxw %r2, [%r1+56]
add %r0, %r2
ldxw %r2, [%r1+160]
add %r0, %r2
ldxw %r2, [%r1+36]
lsh %r2, 16
add %r0, %r2
exit""", PKT, ctx=skb_ctx(mark=5, priority=1000, ingress_ifindex=3, cb2=7, wire_len=200), ctx_out=192),
    Case("tc_write_mark_cb_prio", 3, """stw [%r1+8], 0x1234
stw [%r1+56], 7
stw [%r1+32], 9
stw [%r1+72], 0x10002
mov %r0, 0
exit""", PKT, ctx=bytes(192), ctx_out=192),
    Case("tc_skb_load_bytes", 3, """mov %r2, 26
mov %r3, %r10
add %r3, -8
mov %r4, 8
call 26
jne %r0, 0, done
ldxdw %r0, [%r10-8]
done:
exit""", PKT),
    Case("tc_skb_load_bytes_oob", 3, f"""mov %r2, {len(PKT) - 3}
mov %r3, %r10
add %r3, -8
mov %r4, 4
call 26
ldxw %r1, [%r10-8]
lsh %r1, 32
or %r0, %r1
exit""", PKT),
    Case("tc_skb_store_bytes", 3, """mov %r6, %r1
lddw %r1, 0xdeadbeefcafef00d
stxdw [%r10-8], %r1
mov %r1, %r6
mov %r2, 42
mov %r3, %r10
add %r3, -8
mov %r4, 8
mov %r5, 0
call 9
exit""", PKT),
    Case("tc_skb_store_bytes_bad_flags", 3, """stdw [%r10-8], 1
mov %r2, 0
mov %r3, %r10
add %r3, -8
mov %r4, 4
mov %r5, 4
call 9
exit""", PKT),
    Case("tc_skb_store_bytes_past_end", 3, f"""stdw [%r10-8], 1
mov %r2, {len(PKT) - 2}
mov %r3, %r10
add %r3, -8
mov %r4, 4
mov %r5, 0
call 9
exit""", PKT),
    Case("tc_ttl_rewrite_l3_csum", 3, tc_bounds(34) + """ldxh %r7, [%r2+22]
mov %r8, %r7
add %r8, -1
stxh [%r2+22], %r8
mov %r1, %r6
mov %r2, 24
mov %r3, %r7
mov %r4, %r8
mov %r5, 2
call 10
exit
""" + OUT1, PKT),
    Case("tc_saddr_rewrite_l3_l4_csum", 3, tc_bounds(42) + """ldxw %r7, [%r2+26]
mov %r8, 0x0a0a0a0a
stxw [%r2+26], %r8
mov %r1, %r6
mov %r2, 24
mov %r3, %r7
mov %r4, %r8
mov %r5, 4
call 10
jne %r0, 0, done
mov %r1, %r6
mov %r2, 40
mov %r3, %r7
mov %r4, %r8
mov %r5, 0x34
call 11
done:
exit
""" + OUT1, PKT),
    Case("tc_dport_rewrite_l4_csum2", 3, tc_bounds(42) + """ldxh %r7, [%r2+36]
mov %r8, 0x3500
stxh [%r2+36], %r8
mov %r1, %r6
mov %r2, 40
mov %r3, %r7
mov %r4, %r8
mov %r5, 2
call 11
exit
""" + OUT1, PKT),
    Case("tc_l4_csum_by_diff", 3, tc_bounds(42) + """ldxw %r7, [%r2+30]
stxw [%r10-4], %r7
mov %r8, 0x01020304
stxw [%r10-8], %r8
stxw [%r2+30], %r8
mov %r1, %r10
add %r1, -4
mov %r2, 4
mov %r3, %r10
add %r3, -8
mov %r4, 4
mov %r5, 0
call 28
mov %r4, %r0
mov %r1, %r6
mov %r2, 40
mov %r3, 0
mov %r5, 0x10
call 11
exit
""" + OUT1, PKT),
    Case("tc_l3_csum_bad_offset", 3, "mov %r2, 25\nmov %r3, 0\nmov %r4, 0\nmov %r5, 2\ncall 10\nexit", PKT),
    Case("tc_l3_csum_bad_flags", 3, "mov %r2, 24\nmov %r3, 0\nmov %r4, 0\nmov %r5, 0x12\ncall 10\nexit", PKT),
    Case("tc_redirect_ingress", 3, "mov %r1, 1\nmov %r2, 1\ncall 23\nexit", PKT),
    Case("tc_redirect_bad_flags", 3, "mov %r1, 1\nmov %r2, 2\ncall 23\nexit", PKT),
    Case("tc_ld_abs_ethertype", 3, "mov %r6, %r1\nldabsh 12\nexit", PKT),
    Case("tc_tail_call_empty_slot", 3, """mov %r6, %r1
lddw %r2, {pa}, 1
mov %r3, 0
call 12
mov %r0, 5
exit""", PKT, maps={"pa": (PA, 4, 4, 2)}),
    # ---------------------------------------------------------------- socket filter
    Case("sf_ld_abs_proto", 1, "mov %r6, %r1\nldabsb 9\nexit", PKT),
    Case("sf_ld_abs_past_end", 1, "mov %r6, %r1\nldabsw 5000\nmov %r0, 7\nexit", PKT),
    Case("sf_ld_abs_just_past_end", 1, f"mov %r6, %r1\nldabsw {len(PKT) - 14 - 3}\nmov %r0, 7\nexit", PKT),
    Case("sf_ld_abs_last_word", 1, f"mov %r6, %r1\nldabsw {len(PKT) - 14 - 4}\nexit", PKT),
    Case("sf_ld_ind", 1, "mov %r6, %r1\nmov %r7, 20\nldindh %r7, 2\nexit", PKT),
    Case("sf_len", 1, "ldxw %r0, [%r1+0]\nexit", PKT),
    Case("sf_protocol", 1, "ldxw %r0, [%r1+16]\nexit", PKT),
    Case("sf_load_bytes", 1, """mov %r2, 12
mov %r3, %r10
add %r3, -4
mov %r4, 4
call 26
ldxw %r0, [%r10-4]
exit""", PKT),
    Case("sf_cb_write_read", 1, "stw [%r1+52], 0x77\nldxw %r0, [%r1+52]\nexit", PKT),
]


def _kernel_side(case: Case) -> tuple[Any, dict[str, KMap], str]:
    kmaps = {name: KMap(*spec) for name, spec in case.maps.items()}
    try:
        for name, key, value in case.setup:
            kmaps[name].update(key, value)
        src = case.src.format(**{n: m.fd for n, m in kmaps.items()})
        with KProg(case.prog_type, assemble(src)) as kp:
            res = _errno(lambda: kp.test_run(case.data, ctx=case.ctx, ctx_out_size=case.ctx_out))
        return res, kmaps, kp.log
    except BaseException:
        for m in kmaps.values():
            m.close()
        raise


def _model_side(case: Case) -> tuple[Any, dict[str, M.BpfMap]]:
    mmaps = {name: P.new_map(*spec, ncpus=NCPU, ifindex_ok=lambda i: i == 1) for name, spec in case.maps.items()}
    for name, key, value in case.setup:
        mmaps[name].update(key, value)
    src = case.src.format(**{n: m.fd for n, m in mmaps.items()})
    prog = P.Program(case.prog_type, assemble(src))
    res = _errno(lambda: P.prog_test_run_full(prog, case.data, ctx=case.ctx))
    if res[0] == "ok":
        r = res[1]
        res = ("ok", (r.retval, r.data_out, r.ctx_out if case.ctx_out else b""))
    return res, mmaps


def _ringbuf_records(km: KMap) -> tuple[int, int, bytes]:
    cons, prod = km.mmap_ringbuf()
    try:
        cpos = struct.unpack_from("<Q", cons, 0)[0]
        ppos = struct.unpack_from("<Q", prod, 0)[0]
        data = prod[mmap.PAGESIZE:mmap.PAGESIZE + km.max_entries]
    finally:
        cons.close()
        prod.close()
    return cpos, ppos, data


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_program_matches_kernel_test_run(case: Case) -> None:
    kres, kmaps, _log = _kernel_side(case)
    try:
        mres, mmaps = _model_side(case)
        if kres[0] == "ok":
            retval, data_out, _dur, ctx_out = kres[1]
            kres = ("ok", (retval, data_out, ctx_out if case.ctx_out else b""))
        assert mres == kres
        if not case.check_maps:
            return
        for name, km in kmaps.items():
            mm = mmaps[name]
            if isinstance(mm, M.RingBuf):
                cpos, ppos, data = _ringbuf_records(km)
                assert (mm.consumer_pos, mm.producer_pos) == (cpos, ppos)
                assert bytes(mm.data[:ppos]) == data[:ppos]
                continue
            if isinstance(mm, M.FdArray):
                continue
            assert _dump(mm) == _dump(km)
            for key in _dump(km):
                assert mm.lookup(key) == km.lookup(key, mm.user_value_size), name
    finally:
        for m in kmaps.values():
            m.close()


def test_percpu_write_lands_on_one_cpu_like_kernel() -> None:
    case = next(c for c in CASES if c.name == "xdp_percpu_array_write")
    kres, kmaps, _ = _kernel_side(case)
    with kmaps["pa"] as km:
        mres, mmaps = _model_side(case)
        kval = km.lookup(u32(0), 8 * NCPU)
        mval = mmaps["pa"].lookup(u32(0))
        nonzero = lambda v: sorted(v[i:i + 8] for i in range(0, len(v), 8) if any(v[i:i + 8]))  # noqa: E731
        assert nonzero(kval) == nonzero(mval) == [struct.pack("<Q", 0x1122)]


def test_ringbuf_consumer_reads_kernel_and_model_layout_alike() -> None:
    case = next(c for c in CASES if c.name == "xdp_ringbuf_output")
    kres, kmaps, _ = _kernel_side(case)
    with kmaps["rb"] as km:
        _, mmaps = _model_side(case)
        mm = mmaps["rb"]
        cpos, ppos, data = _ringbuf_records(km)
        shadow = M.RingBuf(km.max_entries, 0, 1)
        shadow.data[:] = data
        shadow.consumer_pos, shadow.producer_pos = cpos, ppos
        assert shadow.consume() == mm.consume() == [PKT[:16]]


@pytest.mark.parametrize("prog_type", [1, 3, 6])
def test_short_frames_are_einval_like_kernel(prog_type: int) -> None:
    code = assemble("mov %r0, 0\nexit")
    with KProg(prog_type, code) as kp:
        want = _errno(lambda: kp.test_run(b"\0" * 13))
    got = _errno(lambda: P.prog_test_run(P.Program(prog_type, code), b"\0" * 13))
    assert got == want == ("errno", 22)


@pytest.mark.parametrize("ctx", [
    struct.pack("<I", 1) + bytes(188),                           # len may not be set
    bytes(44) + u32(1) + bytes(144),                             # tc_index may not be set
    bytes(40) + u32(77) + bytes(148),                            # unknown ifindex
    bytes(160) + u32(10) + bytes(28),                            # wire_len shorter than the packet
    bytes(192) + b"\1",                                          # non-zero tail beyond the struct
])
def test_skb_ctx_in_rules_match_kernel(ctx: bytes) -> None:
    code = assemble("mov %r0, 0\nexit")
    with KProg(3, code) as kp:
        want = _errno(lambda: kp.test_run(PKT, ctx=ctx, ctx_out_size=192))
    got = _errno(lambda: P.prog_test_run_full(P.Program(3, code), PKT, ctx=ctx))
    assert got[0] == want[0] == "errno" and got == want


@pytest.mark.parametrize("ctx", [
    struct.pack("<6I", 1, 0, 0, 0, 0, 0),                        # data_meta set
    struct.pack("<6I", 0, 0, len(PKT), 0, 0, 0),                 # data_end set (6.18: must be 0)
    struct.pack("<6I", 0, len(PKT) + 4, 0, 0, 0, 0),             # data beyond the input
    struct.pack("<6I", 0, 256, 0, 0, 0, 0),                      # meta over 255 bytes
    struct.pack("<6I", 0, 0, 0, 0, 1, 0),                        # rx queue without ifindex
    struct.pack("<6I", 0, 0, 0, 0, 0, 1),                        # egress_ifindex set
    struct.pack("<6I", 0, 0, 0, 1, 5, 0),                        # rx queue beyond lo's queues
    struct.pack("<6I", 0, 0, 0, 99, 0, 0),                       # no such device
])
def test_xdp_ctx_in_rules_match_kernel(ctx: bytes) -> None:
    code = assemble("mov %r0, 2\nexit")
    with KProg(6, code) as kp:
        want = _errno(lambda: kp.test_run(PKT, ctx=ctx, ctx_out_size=24))
    got = _errno(lambda: P.prog_test_run_full(P.Program(6, code), PKT, ctx=ctx))
    assert got[0] == want[0] == "errno" and got == want


def test_short_output_buffer_is_enospc_like_kernel() -> None:
    code = assemble("mov %r0, 2\nexit")
    with KProg(6, code) as kp:
        want = _errno(lambda: kp.test_run(PKT, data_out_size=10))
    got = _errno(lambda: P.prog_test_run_full(P.Program(6, code), PKT, data_size_out=10))
    assert got == want == ("errno", 28)


TAIL_SELF = """mov %r6, %r1
stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, {cnt}, 1
call 1
jeq %r0, 0, out
mov %r1, 1
lock add [%r0+0], %r1
mov %r1, %r6
lddw %r2, {pa}, 1
mov %r3, 0
call 12
mov %r0, 9
exit
out:
mov %r0, 1
exit"""


def test_tail_call_limit_matches_kernel() -> None:
    """A program that tail-calls itself runs 1 + MAX_TAIL_CALL_CNT (33) times, then falls through."""
    with KMap(A, 4, 8, 1) as kcnt, KMap(PA, 4, 4, 1) as kpa:
        with KProg(6, assemble(TAIL_SELF.format(cnt=kcnt.fd, pa=kpa.fd))) as kp:
            kpa.update(u32(0), u32(kp.fd))
            kret = kp.test_run(PKT)[0]
            kpa.delete(u32(0))  # break the self-reference so the program can be freed
        kcount = struct.unpack("<Q", kcnt.lookup(u32(0)))[0]
    mcnt = P.new_map(A, 4, 8, 1)
    mpa = P.new_map(PA, 4, 4, 1)
    prog = P.Program(6, assemble(TAIL_SELF.format(cnt=mcnt.fd, pa=mpa.fd)))
    mpa.update(u32(0), prog)
    mret = P.prog_test_run(prog, PKT)[0]
    assert (mret, struct.unpack("<Q", mcnt.lookup(u32(0)))[0]) == (kret, kcount) == (9, 34)


def test_tail_call_to_other_program_matches_kernel() -> None:
    second = "mov %r0, 3\nexit"
    first = "lddw %r2, {pa}, 1\nmov %r3, 1\ncall 12\nmov %r0, 1\nexit"
    with KMap(PA, 4, 4, 2) as kpa, KProg(6, assemble(second)) as k2:
        kpa.update(u32(1), u32(k2.fd))
        with KProg(6, assemble(first.format(pa=kpa.fd))) as k1:
            kret = k1.test_run(PKT)[0]
    mpa = P.new_map(PA, 4, 4, 2)
    mpa.update(u32(1), P.Program(6, assemble(second)))
    m1 = P.Program(6, assemble(first.format(pa=mpa.fd)))
    assert P.prog_test_run(m1, PKT)[0] == kret == 3


def test_repeat_keeps_the_packet_like_kernel() -> None:
    src = xdp_bounds(1) + "ldxb %r5, [%r2+0]\nadd %r5, 1\nstxb [%r2+0], %r5\nmov %r0, 2\nexit\n" + OUT1
    with KProg(6, assemble(src)) as kp:
        kret, kout, _, _ = kp.test_run(PKT, repeat=7)
    mret, mout, _ = P.prog_test_run(P.Program(6, assemble(src)), PKT, repeat=7)
    assert (mret, mout) == (kret, kout) and mout[0] == (PKT[0] + 7) & 0xFF


CTX_ACCESS = [
    (6, "ldxh %r0, [%r1+0]"), (6, "ldxw %r0, [%r1+24]"), (6, "stw [%r1+12], 1"), (6, "ldxw %r0, [%r1+20]"),
    (6, "ldxw %r0, [%r1+16]"), (6, "ldxw %r0, [%r1+2]"),
    (1, "ldxw %r0, [%r1+76]"), (1, "stw [%r1+8], 1"), (1, "stw [%r1+48], 1"), (1, "ldxw %r0, [%r1+72]"),
    (1, "ldxb %r0, [%r1+9]"), (1, "ldxw %r0, [%r1+160]"), (1, "ldxdw %r0, [%r1+152]"),
    (3, "stw [%r1+0], 1"), (3, "ldxw %r0, [%r1+92]"), (3, "ldxh %r0, [%r1+76]"), (3, "ldxw %r0, [%r1+154]"),
    (3, "ldxw %r0, [%r1+152]"), (3, "ldxdw %r0, [%r1+152]"), (3, "ldxdw %r0, [%r1+64]"),
    (3, "stdw [%r1+64], 0"), (3, "stw [%r1+8], 1"), (3, "sth [%r1+8], 1"), (3, "stw [%r1+12], 3"),
    (3, "stw [%r1+44], 1"), (3, "stw [%r1+72], 1"), (3, "stw [%r1+32], 1"), (3, "stw [%r1+4], 1"),
    (3, "ldxh %r0, [%r1+18]"), (3, "ldxb %r0, [%r1+3]"), (3, "ldxw %r0, [%r1+144]"), (3, "ldxw %r0, [%r1+180]"),
    (3, "ldxdw %r0, [%r1+184]"), (3, "ldxw %r0, [%r1+188]"), (3, "ldxw %r0, [%r1+192]"),
]


@pytest.mark.parametrize("prog_type,insn", CTX_ACCESS, ids=lambda v: str(v))
def test_ctx_access_rules_match_the_kernel_verifier(prog_type: int, insn: str) -> None:
    """Whatever the kernel verifier refuses at load, the model refuses at load (same errno, the
    kernel's log line in our log), and vice versa; unverified, the interpreter's own run-time
    checks refuse exactly the same accesses."""
    code = assemble(insn + "\nmov %r0, 0\nexit" if insn.startswith("st") else insn + "\nexit")
    try:
        KProg(prog_type, code).close()
        kernel_err = None
    except KernelBpfError as exc:
        assert exc.errno == 13, exc.log
        kernel_err = exc
    try:
        P.Program(prog_type, code)
        model_err = None
    except BpfVerifyError as exc:
        model_err = exc
    assert (model_err is None) == (kernel_err is None)
    if kernel_err is not None and model_err is not None:
        kernel_line = [ln for ln in kernel_err.log.splitlines() if ln.strip()][-2]
        assert kernel_line.startswith("invalid bpf_context access")
        assert model_err.errno == kernel_err.errno and kernel_line in model_err.log.splitlines()
        assert model_err.message == kernel_line
    # verifier=False: the memory-safe interpreter's run-time refusal (what a datapath running an
    # unverified program relies on) must agree with the kernel verifier too.
    try:
        P.prog_test_run(P.Program(prog_type, code, verifier=False), PKT)
        run_ok = True
    except BpfRuntimeError as exc:
        assert "invalid bpf_context access" in str(exc)
        run_ok = False
    assert run_ok == (kernel_err is None)


@pytest.mark.parametrize("prog_type", [1, 3])
def test_skb_l3_header_length_rule_matches_kernel(prog_type: int) -> None:
    """test_run of an skb with an IP EtherType needs the whole IP header (measured on 6.18)."""
    code = assemble("mov %r0, 7\nexit")
    cases = [(et, n) for et in ("0800", "86dd", "8100", "0806", "1234", "05dc")
             for n in (14, 15, 33, 34, 53, 54)]
    with KProg(prog_type, code) as kp:
        for et, n in cases:
            frame = bytes(6) + bytes.fromhex("020000000001" + et) + bytes(n - 14)
            want = _errno(lambda: kp.test_run(frame)[:2])
            got = _errno(lambda: P.prog_test_run(P.Program(prog_type, code), frame)[:2])
            assert got == want, (et, n)


@pytest.mark.parametrize("map_type,max_entries,off", [(A, 1, 4), (A, 1, 8), (A, 2, 0), (PAR, 1, 0), (H, 1, 0)])
def test_direct_value_lddw_rules_match_kernel(map_type: int, max_entries: int, off: int) -> None:
    """``BPF_PSEUDO_MAP_VALUE`` is checked before simulation (``resolve_pseudo_ldimm64``): same
    decision, errno (-ENOTSUPP = 524 for a multi-element array) and log as the kernel."""
    src = "lddw %r1, {v}, 2\nmov %r0, 2\nexit"
    with KMap(map_type, 4, 8, max_entries) as km:
        try:
            KProg(6, assemble(src.format(v=km.fd | (off << 32)))).close()
            want = None
        except KernelBpfError as exc:
            want = (exc.errno, [ln for ln in exc.log.splitlines() if ln.strip()])
    m = P.new_map(map_type, 4, 8, max_entries)
    try:
        P.Program(6, assemble(src.format(v=m.fd | (off << 32))))
        got = None
    except BpfVerifyError as exc:
        got = (exc.errno, [ln for ln in exc.log.splitlines() if ln.strip()])
    assert got == want


def test_skb_ifindex_is_checked_before_the_l3_header_like_kernel() -> None:
    code = assemble("mov %r0, 0\nexit")
    ctx = bytes(40) + u32(77) + bytes(148)
    with KProg(3, code) as kp:
        want = _errno(lambda: kp.test_run(PKT[:14], ctx=ctx, ctx_out_size=192))
    got = _errno(lambda: P.prog_test_run_full(P.Program(3, code), PKT[:14], ctx=ctx))
    assert got == want == ("errno", 19)
