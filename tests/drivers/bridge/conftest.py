"""Fixtures for the bridge tests: ``bridge`` is BR1's three-port topology (br1_topo)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from br1_topo import Bridge  # noqa: E402
from kernel.conftest import Kernel, _unavailable  # noqa: E402


@pytest.fixture
def bridge() -> Bridge:
    return Bridge()


@pytest.fixture(scope="module")
def kernel() -> Kernel:
    """The kernel oracle of the BR2/BR4 differential modules (tests/kernel/conftest.py's
    ``Kernel``); skips with the reason when no root/netns/tool."""
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    return Kernel()
