"""Shared helpers for the CLI tests: a world, and running commands/scripts into strings."""
from __future__ import annotations

import io

import pytest

from netstack.cli import run_command, run_script
from netstack.core.world import World

IPV4 = ["netstack.ipv4.af_inet"]


class Shell:
    """A world plus captured stdout/stderr, like a terminal on a fresh host."""

    def __init__(self, subsystems: list[str] | None = None) -> None:
        self.world = World(subsystems=subsystems if subsystems is not None else [])
        self.out = io.StringIO()
        self.err = io.StringIO()

    def run(self, line: str | list[str], net: str = "") -> tuple[int, str, str]:
        """Run one command; return (exit code, stdout, stderr) of just that command."""
        self.out.seek(0), self.out.truncate()
        self.err.seek(0), self.err.truncate()
        rc = run_command(self.world, line, self.out, self.err, net_name=net)
        return rc, self.out.getvalue(), self.err.getvalue()

    def ok(self, line: str | list[str], net: str = "") -> str:
        rc, out, err = self.run(line, net)
        assert rc == 0, (line, rc, err)
        assert err == "", err
        return out

    def script(self, text: str, **kw: object) -> tuple[str, str]:
        out, err = io.StringIO(), io.StringIO()
        run_script(self.world, text, stdout=out, stderr=err, **kw)  # type: ignore[arg-type]
        return out.getvalue(), err.getvalue()


@pytest.fixture
def sh() -> Shell:
    return Shell()


@pytest.fixture
def sh4() -> Shell:
    return Shell(IPV4)


@pytest.fixture
def make_shell():  # type: ignore[no-untyped-def]
    """Factory for extra shells (the Shell class, without importing this conftest)."""
    return Shell
