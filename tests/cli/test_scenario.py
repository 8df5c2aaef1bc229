"""run_script: error reporting, line numbers, nothing applied on a failing line, relative
paths, set -x, sleep in virtual time, namespaces via ip netns exec."""
from __future__ import annotations

import io

import pytest

from netstack.cli import run_command, run_script
from netstack.core.world import World
from netstack.errors import NotSupported, ScenarioError

SETUP = """#!/bin/bash
set -eu
ip netns add a
ip -n a link add v0 type veth peer name v1

# comment line
ip -n a link set v0 up mtu 1400 address 01:00:00:00:00:01
"""


def test_failing_line_prints_tool_text_and_location() -> None:
    w = World()
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(ScenarioError) as ei:
        run_script(w, SETUP, name="setup.sh", stdout=out, stderr=err)
    e = ei.value
    assert (e.script, e.line, e.exit_code) == ("setup.sh", 7, 2)
    assert e.tool_stderr == "RTNETLINK answers: Cannot assign requested address\n"
    assert err.getvalue() == (
        "RTNETLINK answers: Cannot assign requested address\n"
        "setup.sh:7: ip -n a link set v0 up mtu 1400 address 01:00:00:00:00:01: "
        "RTNETLINK answers: Cannot assign requested address (exit status 2)\n")
    assert str(e).startswith("setup.sh:7: ")
    # the lines before ran; nothing of line 7 was applied (not even "up" or "mtu")
    v0 = w.netns("a").get("v0")
    assert v0 is not None and v0.mtu == 1500 and not v0.is_up


def test_unsupported_syntax_fails_before_running_anything() -> None:
    w = World()
    err = io.StringIO()
    with pytest.raises(ScenarioError) as ei:
        run_script(w, "ip netns add a\nip link | grep lo\n", stderr=err)
    assert ei.value.line == 2 and "not supported: pipes" in str(ei.value)
    assert err.getvalue() == "SCRIPT:2: not supported: pipes ('|')\n"
    assert w.namespaces == {}


def test_unsupported_command_names_line() -> None:
    with pytest.raises(ScenarioError) as ei:
        run_script(World(), "true\ntcpdump -i lo\n", stderr=io.StringIO())
    assert ei.value.line == 2 and str(ei.value) == "SCRIPT:2: not supported: command 'tcpdump'"


def test_set_x_traces_and_sleep_advances_virtual_time() -> None:
    w = World()
    out, err = io.StringIO(), io.StringIO()
    run_script(w, "set -x\necho 'hello world'\nsleep 1.5\n", stdout=out, stderr=err)
    assert out.getvalue() == "hello world\n"
    assert err.getvalue() == "+ echo 'hello world'\n+ sleep 1.5\n"
    assert w.clock.now == 1_500_000_000


def test_relative_paths_follow_cwd_source_and_cd(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.sh").write_text("ip link add d0 type dummy\n")
    (tmp_path / "sub" / "s.conf").write_text("net.ipv4.ip_forward = 1\n")
    w = World(subsystems=["netstack.ipv4.af_inet"])
    out = io.StringIO()
    run_script(w, ". sub/inner.sh\ncd sub\nsysctl -p s.conf\n", cwd=str(tmp_path),
               stdout=out)
    assert w.init_net.get("d0") is not None
    assert w.init_net.sysctl.get("net.ipv4.ip_forward") == 1
    assert out.getvalue() == "net.ipv4.ip_forward = 1\n"
    err = io.StringIO()
    with pytest.raises(ScenarioError) as ei:
        run_script(w, "cd sub\nsource missing.sh\n", cwd=str(tmp_path), stderr=err)
    assert ei.value.line == 2
    assert err.getvalue().startswith("bash: missing.sh: No such file or directory\n")


def test_error_inside_sourced_file_names_that_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "inner.sh").write_text("echo ok\nip link del nodev\n")
    with pytest.raises(ScenarioError) as ei:
        run_script(World(), "source inner.sh\n", cwd=str(tmp_path), stdout=io.StringIO(),
                   stderr=io.StringIO())
    assert (ei.value.script, ei.value.line, ei.value.exit_code) == ("inner.sh", 2, 1)


def test_netns_exec_runs_inside_namespace() -> None:
    w = World()
    out = io.StringIO()
    run_script(w, "ip netns add a\nip netns exec a ip link add d0 type dummy\n"
               "ip netns exec a ip -br link show d0\n", stdout=out)
    assert w.netns("a").get("d0") is not None and w.init_net.get("d0") is None
    assert out.getvalue().startswith("d0               DOWN           ")


def test_run_command_accepts_line_or_argv_and_returns_exit_code() -> None:
    w = World()
    out, err = io.StringIO(), io.StringIO()
    assert run_command(w, "ip link add d0 type dummy", out, err) == 0
    assert run_command(w, ["ip", "link", "add", "d0", "type", "dummy"], out, err) == 2
    assert err.getvalue() == "RTNETLINK answers: File exists\n"
    with pytest.raises(NotSupported):
        run_command(w, "ip link | cat", out, err)


def test_false_and_exit_status() -> None:
    with pytest.raises(ScenarioError) as ei:
        run_script(World(), "true\nfalse\n", stderr=io.StringIO())
    assert ei.value.exit_code == 1 and ei.value.line == 2
    run_script(World(), "exit 0\nfalse\n")
    with pytest.raises(ScenarioError) as ei:
        run_script(World(), "exit 3\n", stderr=io.StringIO())
    assert ei.value.exit_code == 3
