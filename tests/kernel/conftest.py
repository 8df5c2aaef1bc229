"""Fixtures for the kernel-differential suite.

``kernel`` is session-wide and skips (with the reason printed) when this
machine cannot act as the oracle: not root, no ``ip``, or ``ip netns add``
failing.  It caches each Case's kernel result so a scenario's kernel half and
its netstack comparison share one kernel run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from .cases import Case
from .compare import results_diff, strip_noise
from .netstack_side import run_netstack
from .oracle import Result, run_kernel


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "kernel oracle needs root (netns, veth, AF_PACKET)"
    if shutil.which("ip") is None:
        return "kernel oracle needs iproute2's `ip`"
    if shutil.which("bash") is None:
        return "kernel oracle needs bash"
    probe = f"oracle-probe-{os.getpid()}"
    try:
        add = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True,
                             timeout=15, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`ip netns add` could not run: {exc}"
    if add.returncode != 0:
        return f"`ip netns add` failed: {add.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=15,
                   stdin=subprocess.DEVNULL)
    return None


class Kernel:
    """Runs Cases on the real kernel, once each per session."""

    def __init__(self) -> None:
        self._cache: dict[str, Result] = {}

    def run(self, case: Case) -> Result:
        """Kernel result of ``case`` with timer noise stripped (compare.py)."""
        if case.name not in self._cache:
            raw = run_kernel(case.script, list(case.sends), list(case.captures),
                             list(case.queries), case.settle)
            self._cache[case.name] = strip_noise(raw)
        return self._cache[case.name]

    def compare_netstack(self, case: Case) -> Result:
        """Run ``case`` in netstack, fail with a readable diff unless it matches."""
        expected = self.run(case)
        got = strip_noise(run_netstack(case.script, list(case.sends), list(case.captures),
                                       list(case.queries), case.settle,
                                       name=f"{case.name}.sh"))
        diff = results_diff(expected, got, case.ipv4_originators)
        if diff:
            pytest.fail(f"netstack differs from the kernel in {case.name}:\n{diff}", pytrace=False)
        return got


@pytest.fixture(scope="session")
def kernel() -> Kernel:
    reason = _unavailable()
    if reason:
        print(f"\nSKIP kernel oracle: {reason}", file=sys.stderr)
        pytest.skip(reason)
    return Kernel()
