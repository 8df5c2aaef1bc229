"""iptables-translate / ip6tables-translate parity with Debian's iptables 1.8.9.

The goldens (data/xt_translate_golden.json) were produced by the real tools with
data/xt_regen_goldens.py; when the tools are installed the same corpus is also compared live.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from netstack.cli.scenario import run_command
from netstack.core.world import World
from netstack.netfilter.xtables.translate import translate_main

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
sys.path.insert(0, DATA)
from xt_regen_goldens import corpus  # noqa: E402

with open(os.path.join(DATA, "xt_translate_golden.json"), encoding="utf-8") as _f:
    GOLDENS = json.load(_f)


def test_corpus_is_large_enough_and_goldens_current() -> None:
    assert len(GOLDENS) >= 60
    assert [g["argv"] for g in GOLDENS] == corpus(), "rerun data/xt_regen_goldens.py"
    # the corpus exercises success, untranslatable and error paths
    assert sum(1 for g in GOLDENS if g["rc"] == 0 and "'" in g["stdout"]) >= 60
    assert any("# " in g["stdout"] for g in GOLDENS)
    assert any(g["rc"] == 2 for g in GOLDENS) and any(g["rc"] == 1 for g in GOLDENS)


@pytest.mark.parametrize("case", GOLDENS, ids=[" ".join(g["argv"]) for g in GOLDENS])
def test_translate_matches_golden(case: dict) -> None:
    argv = case["argv"]
    assert translate_main(argv[0], argv[1:]) == (case["stdout"], case["stderr"], case["rc"])


def test_translate_through_cli_dispatch() -> None:
    """``netstack iptables-translate`` prints stdout/stderr and returns the exit code."""
    out, err = io.StringIO(), io.StringIO()
    rc = run_command(World(), ["iptables-translate", "-A", "INPUT", "-p", "tcp", "--dport",
                               "22", "-j", "ACCEPT"], stdout=out, stderr=err)
    assert (rc, out.getvalue(), err.getvalue()) == (
        0, "nft 'add rule ip filter INPUT tcp dport 22 counter accept'\n", "")
    out, err = io.StringIO(), io.StringIO()
    rc = run_command(World(), ["ip6tables-translate", "-P", "INPUT", "DROP"], stdout=out,
                     stderr=err)
    assert (rc, out.getvalue(), err.getvalue()) == (1, "nft ", "Translation not implemented\n")


def test_main_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    from netstack.cli.main import main
    assert main(["iptables-translate", "-A", "INPUT", "-j", "DROP", "-x", "-y"]) == 2
    cap = capsys.readouterr()
    assert cap.err.startswith("iptables-translate v1.8.9 (nf_tables): unknown option \"-y\"")


@pytest.mark.skipif(shutil.which("iptables-translate") is None,
                    reason="Debian's iptables-translate not installed")
def test_live_corpus_against_real_tool() -> None:
    """Run the whole corpus through the real tools in one process each (fast enough:
    translation needs no kernel) and compare with netstack."""
    mismatches = []
    for argv in corpus():
        p = subprocess.run(argv, capture_output=True, text=True,
                           env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "")})
        got = translate_main(argv[0], argv[1:])
        if got != (p.stdout, p.stderr, p.returncode):
            mismatches.append((argv, got, (p.stdout, p.stderr, p.returncode)))
    assert not mismatches, mismatches[:3]


@pytest.mark.parametrize("argv", [["-A", "INPUT", "-j", "NFLOG"],
                                  ["-A", "INPUT", "-m", "recent", "--set"],
                                  ["-A", "INPUT", "-m", "hashlimit", "--hashlimit", "1/s"]])
def test_unmodelled_extensions_say_so(argv: list[str]) -> None:
    """Real extensions netstack does not model raise NotSupported instead of being taken
    for chain names or unknown matches."""
    from netstack.errors import NotSupported
    with pytest.raises(NotSupported):
        translate_main("iptables-translate", argv)
