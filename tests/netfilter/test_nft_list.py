"""``nft list ruleset`` (and ``-a``) byte for byte against the Linux 6.18 + nft 1.0.6
output stored in nft_corpus/list/*.out (regenerate with nft_corpus/list/regen_list.sh)."""
from __future__ import annotations

import glob
import json
import os

import pytest

from netstack.core.world import World
from netstack.netfilter.nft.cli import run_nft

FILES = sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                      "nft_corpus", "list", "*.nft")))


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(p) for p in FILES])
def test_list_ruleset_matches_kernel(path: str) -> None:
    net = World().netns("")
    assert run_nft(net, ["-f", path]) == (0, "", "")
    for opts, suffix in (([], ".out"), (["-a"], ".handles.out")):
        rc, out, err = run_nft(net, opts + ["list", "ruleset"])
        with open(path[:-4] + suffix) as f:
            assert out == f.read()


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(p) for p in FILES])
def test_listing_reloads_to_the_same_listing(path: str) -> None:
    """What ``list ruleset`` prints is itself a valid ruleset giving the same listing."""
    a = World().netns("")
    run_nft(a, ["-f", path])
    text = run_nft(a, ["list", "ruleset"])[1]
    b = World().netns("")
    from netstack.netfilter.nft.cli import run_text
    assert run_text(b, text, "x")[0] == 0
    assert run_nft(b, ["list", "ruleset"])[1] == text


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(p) for p in FILES])
def test_json_output_matches_nft(path: str) -> None:
    net = World().netns("")
    run_nft(net, ["-f", path])
    rc, out, err = run_nft(net, ["-j", "list", "ruleset"])
    with open(path[:-4] + ".json.out") as f:
        assert (rc, err) == (0, "") and out == f.read()


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(p) for p in FILES])
def test_json_input_rebuilds_the_ruleset(path: str) -> None:
    """nft's own JSON (from the kernel) fed back with ``-j -f`` gives the same ruleset.
    nft 1.0.6 leaves chain comments out of its JSON, so those lines cannot come back."""
    net = World().netns("")
    assert run_nft(net, ["-j", "-f", path[:-4] + ".json.out"]) == (0, "", "")
    with open(path[:-4] + ".out") as f:
        want = "".join(ln for ln in f.read().splitlines(True)
                       if not (ln.startswith("\t\tcomment ") and "handle" not in ln))
    assert run_nft(net, ["list", "ruleset"])[1] == want


def test_json_input_is_one_transaction() -> None:
    net = World().netns("")
    doc = ('{"nftables": [{"add": {"table": {"family": "ip", "name": "t"}}}, '
           '{"add": {"chain": {"family": "ip", "table": "t", "name": "c"}}}, '
           '{"add": {"rule": {"family": "ip", "table": "t", "chain": "nope", '
           '"expr": [{"accept": null}]}}}]}')
    rc, out, err = run_nft(net, ["-j", doc])
    assert rc == 1 and "No such file or directory" in err
    assert run_nft(net, ["list", "ruleset"]) == (0, "", "")


def _can_unshare() -> bool:
    import shutil
    import subprocess
    if os.geteuid() != 0 or not shutil.which("unshare") or not \
            (shutil.which("nft") or os.path.exists("/usr/sbin/nft")):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs root, unshare and Debian's nft")
@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(p) for p in FILES])
def test_list_ruleset_live_against_the_kernel(path: str) -> None:
    """The same file loaded by the real nft into a fresh kernel namespace lists the same."""
    import subprocess
    p = subprocess.run(["unshare", "-n", "sh", "-c", f"nft -f '{path}' && nft list ruleset"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    net = World().netns("")
    run_nft(net, ["-f", path])
    assert run_nft(net, ["list", "ruleset"])[1] == p.stdout


LISTCMDS = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                       "nft_corpus", "list_cmd_goldens.json")))


@pytest.mark.parametrize("c", LISTCMDS, ids=[" ".join(c["args"]) for c in LISTCMDS])
def test_list_and_reset_subcommands_match_kernel(c: dict) -> None:
    net = World().netns("")
    base = os.path.dirname(FILES[0])
    run_nft(net, ["-f", os.path.join(base, "filter.nft")])
    run_nft(net, ["-f", os.path.join(base, "sets.nft")])
    assert run_nft(net, c["args"]) == (c["rc"], c["stdout"], c["stderr"])
