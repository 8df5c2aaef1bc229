"""Fixtures for the macvlan tests: the kernel-differential harness of ``tests/kernel``
(oracle.py, netstack_side.py, compare.py) reused with macvlan topologies."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from kernel.conftest import Kernel, _unavailable  # noqa: E402


@pytest.fixture(scope="session")
def mv_kernel() -> Kernel:
    """The real kernel as oracle (skips with the reason when it cannot be used)."""
    reason = _unavailable()
    if reason:
        print(f"\nSKIP kernel oracle: {reason}", file=sys.stderr)
        pytest.skip(reason)
    return Kernel()
