#!/usr/bin/env python3
"""eBPF benchmark: the kernel, netstack's interpreter and netstack's JIT on the same XDP programs.

For each program (netstack/bpf/jit/programs.py) and the same 64-byte Ethernet/IPv4/UDP frame:

* ``kernel``: BPF_PROG_TEST_RUN's own ``duration`` (ns per run, averaged by the kernel over
  ``--kernel-repeat`` runs, default 1 000 000) through netstack.bpf.kernel -- when root and bpf(2)
  works, else reported as skipped with the reason;
* ``interp``: netstack's interpreter via ``Program.run_xdp`` (frame set-up included, as test_run
  includes it), in ns per run, and ns per executed instruction: ``Vm.run`` alone on a context
  mapped once, minus the same for a 2-instruction program, over the remaining instructions.
  These are CPU times (``time.process_time``) of ``--rounds`` interleaved rounds (program,
  trivial program, run_xdp, one after the other in each round), and the medians are reported:
  on a shared machine wall time mostly measures the neighbours;
* ``jit 1-by-1``: the same through the JIT (one native call per frame, Python set-up per frame);
* ``jit batch``: ``XdpBatch.run_buffer`` over ``--batch`` frames held in one buffer: one native
  call runs them all (ns per frame, whole call included, and the packet rate it implies).

Usage: ``python bench/bpf.py [--batch N] [--kernel-repeat N] [--json]``.  Results are recorded
in docs/performance.md.  This is a benchmark, not a test: nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import sys
import time
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from netstack.bpf import context as C  # noqa: E402
from netstack.bpf import kernel as K  # noqa: E402
from netstack.bpf import maps as M  # noqa: E402
from netstack.bpf import progs as P  # noqa: E402
from netstack.bpf.asm import assemble  # noqa: E402
from netstack.bpf.jit import XdpBatch, jit_program  # noqa: E402
from netstack.bpf.jit.programs import PARSER_COUNT, PARSER_UDP, udp_frame  # noqa: E402

FRAME = udp_frame(53, size=64)


def _best(fn: Callable[[], float], rounds: int = 3) -> float:
    return min(fn() for _ in range(rounds))


def count_insns(prog: P.Program, frame: bytes) -> int:
    """Instructions the interpreter executes on ``frame``: a run on the per-slot closures
    (``vm.slot_code``, one per instruction), each wrapped with a counter."""
    vm = prog.vm
    seen = [0]
    orig = vm.code

    def wrap(f: Callable[[], int]) -> Callable[[], int]:
        def g() -> int:
            seen[0] += 1
            return f()
        return g

    vm.code = [wrap(f) for f in vm.slot_code]
    try:
        prog.run_xdp(frame)
    finally:
        vm.code = orig
    return seen[0]


def cpu_per_call(fn: Callable[[], Any], n: int) -> float:
    """CPU ns per call of ``fn`` over ``n`` calls (``time.process_time_ns``)."""
    t = time.process_time_ns()
    for _ in range(n):
        fn()
    return (time.process_time_ns() - t) / n


def interleaved_medians(fns: dict[str, Callable[[], Any]], n: int, rounds: int) -> dict[str, float]:
    """Median over ``rounds`` of each ``fn``'s CPU ns per call, the fns taking turns in every round."""
    got: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            got[k].append(cpu_per_call(fn, n))
    return {k: statistics.median(v) for k, v in got.items()}


def per_run(fn: Callable[[], Any], n: int) -> float:
    def once() -> float:
        t = time.perf_counter_ns()
        for _ in range(n):
            fn()
        return (time.perf_counter_ns() - t) / n
    return _best(once)


def bound_run(prog: P.Program) -> Callable[[], int]:
    """``Vm.run`` on FRAME with the packet and context mapped once (Program._exec without the set-up)."""
    vm = prog.vm
    pkt = C.PacketBuf.build(FRAME, C.XDP_PACKET_HEADROOM, 4096 - C.SKB_SHARED_INFO_SIZE)
    ctx = C.XdpContext(pkt)
    vm.env, vm.ctx = P.RunEnv(), ctx
    vm.mem.reset()
    pkt.base = vm.mem.map(pkt.buf, name="packet")
    ctx_ptr = vm.mem.map_special(ctx, name="ctx")
    return lambda: vm.run((ctx_ptr,))


def kernel_ns(src: str, maps: dict[str, tuple[int, ...]], repeat: int) -> tuple[float | None, str]:
    why = K.available()
    if why is not None:
        return None, why
    kmaps = {name: K.KMap(*spec) for name, spec in maps.items()}
    try:
        with K.KProg(C.BPF_PROG_TYPE_XDP, assemble(src.format(**{n: m.fd for n, m in kmaps.items()}))) as kp:
            best = min(kp.test_run(FRAME, repeat=repeat)[2] for _ in range(3))
            return float(best), ""
    finally:
        for m in kmaps.values():
            m.close()


def bench_program(name: str, src: str, maps: dict[str, tuple[int, ...]], batch: int,
                  kernel_repeat: int, rounds: int) -> dict[str, Any]:
    mm = {n: P.new_map(*spec) for n, spec in maps.items()}
    text = src.format(**{n: m.fd for n, m in mm.items()})
    interp = P.Program(C.BPF_PROG_TYPE_XDP, assemble(text))
    insns = count_insns(interp, FRAME)
    # Per-instruction cost: the interpreter loop alone (Vm.run on a context mapped once), minus the
    # same for a 2-instruction program, over the instructions beyond those two.
    trivial = P.Program(C.BPF_PROG_TYPE_XDP, assemble("mov %r0, 2\nexit"))
    core = bound_run(interp)
    blocks, slots = interp.vm.code, interp.vm.slot_code

    def core_slots() -> int:  # the same with one closure per instruction (the pre-block dispatch)
        interp.vm.code = slots
        try:
            return core()
        finally:
            interp.vm.code = blocks
    med = interleaved_medians({"core": core, "base": bound_run(trivial), "slots": core_slots,
                               "run_xdp": lambda: interp.run_xdp(FRAME)}, 10_000, rounds)
    core_ns, base_ns, interp_ns = med["core"], med["base"], med["run_xdp"]
    slots_ns = med["slots"]
    t = time.perf_counter()
    jitted = jit_program(P.Program(C.BPF_PROG_TYPE_XDP, assemble(text)))
    compile_ms = (time.perf_counter() - t) * 1e3
    jit_1 = per_run(lambda: jitted.run_xdp(FRAME), 20_000)
    assert jitted.run_xdp(FRAME)[0] == interp.run_xdp(FRAME)[0]
    runner = XdpBatch(jitted)
    buf = FRAME * batch
    offs = (ctypes.c_uint32 * batch)(*range(0, len(FRAME) * batch, len(FRAME)))
    lens = (ctypes.c_uint32 * batch)(*([len(FRAME)] * batch))
    runner.run_buffer(buf, offs, lens)  # warm-up

    def one_batch() -> float:
        t0 = time.perf_counter_ns()
        out = runner.run_buffer(buf, offs, lens)
        dt = (time.perf_counter_ns() - t0) / batch
        assert out[0] == out[-1] == interp.run_xdp(FRAME)[0]
        return dt

    batch_ns = _best(one_batch, 5)
    k_ns, k_why = kernel_ns(src, maps, kernel_repeat)
    return {"program": name, "insns_per_run": insns, "kernel_ns_per_run": k_ns, "kernel_skipped": k_why,
            "interp_ns_per_run": round(interp_ns, 1), "interp_ns_per_insn": round(max(core_ns - base_ns, 0) / (insns - 2), 1),
            "interp_core_ns_per_run": round(core_ns, 1), "interp_base_ns_per_run": round(base_ns, 1),
            "interp_ns_per_insn_per_slot_dispatch": round(max(slots_ns - base_ns, 0) / (insns - 2), 1),
            "jit_compile_ms": round(compile_ms, 1), "jit_1by1_ns_per_run": round(jit_1, 1),
            "jit_batch_ns_per_run": round(batch_ns, 2), "jit_batch_mpps": round(1e3 / batch_ns, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=1_000_000)
    ap.add_argument("--kernel-repeat", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved interpreter rounds (median)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = [bench_program("eth/ipv4/udp parser", PARSER_UDP, {}, a.batch, a.kernel_repeat, a.rounds),
            bench_program("parser + array-map counter", PARSER_COUNT,
                          {"counters": (M.BPF_MAP_TYPE_ARRAY, 4, 8, 256)}, a.batch, a.kernel_repeat, a.rounds)]
    if a.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"64-byte frame, batch of {a.batch}, kernel repeat {a.kernel_repeat}")
    for r in rows:
        k = f"{r['kernel_ns_per_run']:.0f} ns/run" if r["kernel_ns_per_run"] is not None \
            else f"skipped ({r['kernel_skipped']})"
        print(f"\n{r['program']}  ({r['insns_per_run']} insns/run, JIT compile {r['jit_compile_ms']} ms)")
        print(f"  kernel BPF_PROG_TEST_RUN : {k}")
        print(f"  interpreter (CPU time)   : {r['interp_ns_per_run']:.0f} ns/run ({r['interp_core_ns_per_run']:.0f} "
              f"without test_run set-up, {r['interp_base_ns_per_run']:.0f} for 2 insns), "
              f"{r['interp_ns_per_insn']} ns/insn (one closure per insn: "
              f"{r['interp_ns_per_insn_per_slot_dispatch']} ns/insn)")
        print(f"  JIT, one frame per call  : {r['jit_1by1_ns_per_run']:.0f} ns/run")
        print(f"  JIT, batch mode          : {r['jit_batch_ns_per_run']} ns/run = {r['jit_batch_mpps']} Mpps")


if __name__ == "__main__":
    main()
