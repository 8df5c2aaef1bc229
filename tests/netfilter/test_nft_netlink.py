"""``--debug=netlink`` bytecode: netstack vs Debian's nft 1.0.6 for the rule corpus.

The goldens (nft_corpus/goldens.json) were produced by ``nft --debug=netlink -c -f`` on
each corpus rule wrapped in nft_corpus_common.PREAMBLE (regenerate with
nft_corpus/regen_goldens.py).  When nft is installed the test also runs it live."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from netstack.core.world import World
from netstack.netfilter.nft.cli import run_text
from nft_corpus_common import load_corpus, load_error_cases, wrap

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDENS = json.load(open(os.path.join(HERE, "nft_corpus", "goldens.json")))
ERRORS = json.load(open(os.path.join(HERE, "nft_corpus", "error_goldens.json")))
NFT = shutil.which("nft") or (os.path.exists("/usr/sbin/nft") and "/usr/sbin/nft")


def _ours(text: str, debug: bool = True) -> tuple[int, str, str]:
    net = World().netns("")
    return run_text(net, text, "FILE", check=True, debug_netlink=debug)


def test_corpus_is_large_enough_and_current() -> None:
    assert len(GOLDENS) >= 100
    assert [(g["family"], g["rule"]) for g in GOLDENS] == load_corpus()
    assert len(ERRORS) == len(load_error_cases())


@pytest.mark.parametrize("g", GOLDENS, ids=[f"{g['family']}|{g['rule']}" for g in GOLDENS])
def test_bytecode_matches_nft(g: dict) -> None:
    rc, out, err = _ours(wrap(g["family"], g["rule"]))
    assert (rc, err) == (g["rc"], g["stderr"])
    assert out == g["stdout"]


@pytest.mark.parametrize("e", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_error_text_and_caret_match_nft(e: dict) -> None:
    rc, out, err = _ours(e["input"], debug=False)
    assert (rc, out, err) == (e["rc"], e["stdout"], e["stderr"])


@pytest.mark.skipif(not NFT, reason="Debian's nft is not installed")
def test_live_against_installed_nft() -> None:
    """A sample of the corpus (every 7th rule, to stay fast) against the real binary."""
    for g in GOLDENS[::7]:
        text = wrap(g["family"], g["rule"])
        with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
            f.write(text)
        try:
            p = subprocess.run([NFT, "--debug=netlink", "-c", "-f", f.name],
                               capture_output=True, text=True, timeout=20)
        finally:
            os.unlink(f.name)
        assert _ours(text)[1] == p.stdout, g["rule"]


CMDLINE = json.load(open(os.path.join(HERE, "nft_corpus", "cmdline_error_goldens.json")))


@pytest.mark.parametrize("c", CMDLINE, ids=[" ".join(c["args"]) for c in CMDLINE])
def test_command_line_errors_match_nft(c: dict) -> None:
    """nft ARGS against an empty namespace: message, caret line and exit status."""
    from netstack.netfilter.nft.cli import run_nft
    got = run_nft(World().netns(""), c["args"])
    assert got == (c["rc"], c["stdout"], c["stderr"])
