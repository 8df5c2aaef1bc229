"""Fixtures for the bridge tests: ``bridge`` is BR1's three-port topology (br1_topo)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from br1_topo import Bridge  # noqa: E402


@pytest.fixture
def bridge() -> Bridge:
    return Bridge()
