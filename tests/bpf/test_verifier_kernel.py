"""Kernel differential tests of the verifier: the same programs into bpf(2) and into
:func:`netstack.bpf.verifier.verify_program` give the same accept/reject decision, the same
errno, and for rejects the kernel's error line appears in our log.

Skipped (with the reason printed) when not root or bpf(2) is refused.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from netstack.bpf import kernel as K
from netstack.bpf import maps as M
from netstack.bpf.asm import assemble
from netstack.bpf.verifier import MapInfo, verify_program

from .test_verifier_cases import CASES, kernel_message
from .test_verifier_gen import programs

_WHY = K.available()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"kernel bpf(2) not usable: {_WHY}")

SPECS = {"hash": (M.BPF_MAP_TYPE_HASH, 4, 8, 16), "array": (M.BPF_MAP_TYPE_ARRAY, 4, 16, 4),
         "array1": (M.BPF_MAP_TYPE_ARRAY, 4, 8, 1), "ringbuf": (M.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096),
         "progs": (M.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 4)}


def kernel_error_line(log: str) -> str:
    """The last message line of a kernel verifier log (before the statistics line)."""
    lines = [ln for ln in log.splitlines() if ln.strip() and not ln.startswith(("cur state:", "old state:"))]
    if lines and lines[-1].startswith("processed "):
        lines.pop()
    return kernel_message(lines[-1].split("processed ")[0]) if lines else ""


def kernel_load(prog_type: int, insns: list) -> tuple[bool, int, str]:
    try:
        K.KProg(prog_type, insns, log_level=1, log_size=1 << 20).close()
        return True, 0, ""
    except K.KernelBpfError as exc:
        return False, exc.errno, kernel_error_line(exc.log)


@pytest.fixture(scope="module")
def kmaps():  # type: ignore[no-untyped-def]
    made = {name: K.KMap(*spec) for name, spec in SPECS.items()}
    yield made
    for m in made.values():
        m.close()


@pytest.mark.parametrize("name,prog_type,src", CASES, ids=[c[0] for c in CASES])
def test_hand_written_program_matches_kernel(kmaps, name: str, prog_type: int, src: str) -> None:  # type: ignore[no-untyped-def]
    fds = {k: m.fd for k, m in kmaps.items()}
    infos = {m.fd: MapInfo(m.fd, *SPECS[k], name=k) for k, m in kmaps.items()}
    insns = assemble(src.format(**fds))
    kacc, kerrno, kline = kernel_load(prog_type, insns)
    ours = verify_program(insns, prog_type, maps=infos, log_level=1)
    assert ours.accepted == kacc, (kline, ours.log)
    if not kacc:
        assert ours.errno == kerrno, (kline, ours.error)
        assert kline in ours.log, (kline, ours.log)


def test_case_count() -> None:
    assert len(CASES) >= 80
    assert sum(1 for c in CASES if c[1] != 6) >= 15  # not only XDP


_seen = {"accepted": 0, "rejected": 0}


@settings(max_examples=300, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(src=programs())
def test_random_programs_match_kernel(kmaps, src: str) -> None:  # type: ignore[no-untyped-def]
    insns = assemble(src.replace("{array}", str(kmaps["array"].fd)))
    infos = {kmaps["array"].fd: MapInfo(kmaps["array"].fd, *SPECS["array"], name="array")}
    kacc, kerrno, kline = kernel_load(6, insns)
    ours = verify_program(insns, 6, maps=infos, log_level=1)
    _seen["accepted" if kacc else "rejected"] += 1
    assert ours.accepted == kacc, (src, kline, ours.error)
    if not kacc:
        assert ours.errno == kerrno and kline in ours.log, (src, kline, ours.log)


def test_random_programs_exercise_both_outcomes(kmaps) -> None:  # type: ignore[no-untyped-def]
    """The generator is only useful if the kernel both accepts and rejects its programs."""
    if _seen["accepted"] + _seen["rejected"] == 0:
        test_random_programs_match_kernel(kmaps)
    assert _seen["accepted"] >= 50 and _seen["rejected"] >= 50, _seen
