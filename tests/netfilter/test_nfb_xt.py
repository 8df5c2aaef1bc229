"""iptables-nft rules as nf_tables holds them (xtables compat expressions) and as
``nft list ruleset`` shows them, against Linux 6.18 + iptables 1.8.9 + nft 1.0.6: the
goldens in nft_corpus/nfb/xt_goldens.json come from nft_corpus/nfb/regen_xt.py (each
block of xt_cases.txt in a fresh namespace).  Text listings and the warning on stderr
must match exactly, and so must the JSON and ``nft -a`` (netstack rebuilds a table from
the xtables view after each command but gives every object back the handle the kernel
gave it when iptables-nft created it)."""
from __future__ import annotations

import json
import os
import shlex

import pytest

from netstack import Stack

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nft_corpus", "nfb")
GOLDENS = json.load(open(os.path.join(DIR, "xt_goldens.json")))


def _run(cmds: list[str]) -> Stack:
    st = Stack()
    st.run_script("ip netns add q\n", name="q.sh")
    for c in cmds:
        r = st.command("ip netns exec q " + " ".join(shlex.quote(a) for a in shlex.split(c)))
        assert r.rc == 0, (c, r.stderr)
    return st


@pytest.mark.parametrize("g", GOLDENS, ids=[str(i) for i in range(len(GOLDENS))])
def test_listing_matches_kernel(g: dict) -> None:
    st = _run(g["cmds"])
    r = st.command("ip netns exec q nft list ruleset")
    assert (r.stdout, r.stderr) == (g["text"], g["stderr"])
    j = st.command("ip netns exec q nft -j list ruleset")
    assert json.loads(j.stdout) == json.loads(g["json"])
    assert st.command("ip netns exec q nft -a list ruleset").stdout == g["handles"]


def test_cases_file_and_goldens_agree() -> None:
    from importlib.util import module_from_spec, spec_from_file_location
    spec = spec_from_file_location("regen_xt", os.path.join(DIR, "regen_xt.py"))
    mod = module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert [g["cmds"] for g in GOLDENS] == mod.load_cases()


def test_netlink_shows_the_compat_expressions() -> None:
    """``nft --debug=netlink list ruleset`` is not modelled, but the expressions' own
    netlink text is what libnftnl prints for nft_compat (measured)."""
    from netstack.netfilter.nft.ruleset import nft_state
    st = _run(["iptables-nft -A INPUT -p tcp -m multiport --dports 22,80 -j REJECT"])
    net = st.world.netns("q")
    rule = nft_state(net).find_table("ip", "filter").chains["INPUT"].rules[0]
    lines = [e.netlink() for e in rule.exprs]
    assert lines[-3:] == ["[ match name multiport rev 1 ]", "[ counter pkts 0 bytes 0 ]",
                          "[ target name REJECT rev 0 ]"]
