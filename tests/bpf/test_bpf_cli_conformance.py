"""The ``netstack-bpf-conformance`` plugin protocol: --interpret / --jit, errors on stderr."""
from __future__ import annotations

import io
import subprocess
import sys

import pytest

from netstack.bpf import conformance_plugin

# mov r0, 5; ldxb r2, [r1+1]; add r0, r2; exit  -> 5 + mem[1]
PROG = "b7 00 00 00 05 00 00 00 71 12 01 00 00 00 00 00 0f 20 00 00 00 00 00 00 95 00 00 00 00 00 00 00"


def _jit_available() -> bool:
    try:
        import netstack.bpf.jit  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("engine", ["--interpret", "--jit"])
def test_engines_agree(engine: str) -> None:
    if engine == "--jit" and not _jit_available():
        pytest.skip("JIT (llvmlite) not importable")
    out, err = io.StringIO(), io.StringIO()
    assert conformance_plugin.main(["01 07 03", engine], io.StringIO(PROG), out, err) == 0
    assert (out.getvalue(), err.getvalue()) == ("c\n", "")


@pytest.mark.parametrize("engine", ["--interpret", "--jit"])
def test_errors_go_to_stderr(engine: str) -> None:
    if engine == "--jit" and not _jit_available():
        pytest.skip("JIT (llvmlite) not importable")
    out, err = io.StringIO(), io.StringIO()
    assert conformance_plugin.main(["01", engine], io.StringIO(PROG), out, err) == 1  # mem[1] out of range
    assert out.getvalue() == "" and "invalid read of 1 bytes" in err.getvalue()


def test_console_script_protocol_in_a_subprocess() -> None:
    proc = subprocess.run([sys.executable, "-m", "netstack.bpf.conformance_plugin", "00 10", "--interpret"],
                          input=PROG + "\n", capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "15\n", "")
    proc = subprocess.run([sys.executable, "-m", "netstack.bpf.conformance_plugin", "--bogus"],
                          input=PROG, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == "" and "not supported: option --bogus" in proc.stderr
