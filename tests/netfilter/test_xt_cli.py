"""``iptables``/``ip6tables``/``iptables-save`` sessions against the real iptables-nft 1.8.9.

data/xt_cli_golden.json holds what the real tools printed for each command of
data/xt_cli_scenarios.txt run in a fresh network namespace (stdout, stderr, exit code;
iptables-save's time stamps normalised).  When running as root with iptables installed the
sessions are also replayed live in a private namespace.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from netstack.cli import iptables_cmd
from netstack.cli.scenario import run_command, run_script
from netstack.core.world import World
from netstack.errors import ScenarioError
from netstack.netfilter.xtables.parse import Family
from netstack.netfilter.xtables.tables import state_of

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
sys.path.insert(0, DATA)
from xt_regen_goldens import normalise_save, sessions  # noqa: E402

with open(os.path.join(DATA, "xt_cli_golden.json"), encoding="utf-8") as _f:
    GOLDENS = json.load(_f)


def _run(world: World, argv: list[str]) -> tuple[str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    rc = run_command(world, argv, stdout=out, stderr=err)
    return normalise_save(out.getvalue()), err.getvalue(), rc


def test_goldens_match_scenarios() -> None:
    assert [(g["session"], [s["argv"] for s in g["steps"]]) for g in GOLDENS] == \
        [(n, c) for n, c in sessions()], "rerun data/xt_regen_goldens.py --cli"


@pytest.fixture
def front_end_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests compare the iptables front end's own output with the real tool; the
    hand-over to the nft front end is tested separately (it refuses what it does not
    model yet, which would mask the comparison)."""
    monkeypatch.setattr(iptables_cmd, "SYNC_TO_NFT", False)


@pytest.mark.parametrize("session", GOLDENS, ids=[g["session"] for g in GOLDENS])
def test_session_matches_real_iptables(session: dict, front_end_only: None) -> None:
    world = World()
    for step in session["steps"]:
        got = _run(world, step["argv"])
        assert got == (step["stdout"], step["stderr"], step["rc"]), step["argv"]


def test_nft_text_is_what_iptables_nft_creates(front_end_only: None) -> None:
    """The rules handed to the nft front end: only tables written to, only base chains that
    got a rule or a policy, in the order iptables-nft created them (measured: INPUT,
    LOGDROP, FORWARD), iptables-nft's priorities, ``-p`` as ``meta l4proto``, and the
    targets it writes as xtables compat expressions (MASQUERADE) as ``__xt N``."""
    world = World()
    for line in ("iptables -A INPUT -p tcp --dport 22 -j ACCEPT", "iptables -N LOGDROP",
                 "iptables -A LOGDROP -j DROP", "iptables -P FORWARD DROP",
                 "iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE"):
        assert run_command(world, line) == 0
    assert state_of(world.init_net, Family.IPV4).nft_text() == (
        "add table ip filter\n"
        "add chain ip filter INPUT { type filter hook input priority 0; policy accept; }\n"
        "add chain ip filter LOGDROP\n"
        "add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }\n"
        "add rule ip filter INPUT meta l4proto tcp tcp dport 22 counter accept\n"
        "add rule ip filter LOGDROP counter drop\n"
        "add table ip nat\n"
        "add chain ip nat POSTROUTING { type nat hook postrouting priority 100; "
        "policy accept; }\n"
        "add rule ip nat POSTROUTING oifname \"eth0\" counter __xt 0\n")
    assert state_of(world.init_net, Family.IPV6).nft_text() == ""


def test_namespaces_are_separate_and_scenario_failure_reports_line() -> None:
    world = World()
    run_script(world, "ip netns add a\nip netns exec a iptables -N X\niptables -S\n",
               stdout=io.StringIO(), stderr=io.StringIO())
    assert "X" in state_of(world.netns("a"), Family.IPV4).tables["filter"].chains
    assert "X" not in state_of(world.init_net, Family.IPV4).tables["filter"].chains
    err = io.StringIO()
    with pytest.raises(ScenarioError) as ei:
        run_script(world, "iptables -N Y\niptables -N Y\n", stdout=io.StringIO(), stderr=err)
    assert ei.value.line == 2 and ei.value.exit_code == 1
    assert err.getvalue().startswith("iptables: Chain already exists.\n")


def test_failed_command_changes_nothing() -> None:
    """Parsing completes before the state is touched: a bad option anywhere leaves the
    table as it was (and -A with two sources is all or nothing on the chain check)."""
    world = World()
    assert run_command(world, ["iptables", "-A", "INPUT", "-j", "ACCEPT", "--bogus"],
                       stdout=io.StringIO(), stderr=io.StringIO()) == 2
    st = state_of(world.init_net, Family.IPV4)
    assert not st.tables["filter"].exists
    assert st.tables["filter"].chains["INPUT"].rules == []


def _live_ok() -> bool:
    return (os.geteuid() == 0 and shutil.which("iptables") is not None and
            shutil.which("ip") is not None)


@pytest.mark.skipif(not _live_ok(), reason="needs root, ip and iptables-nft")
def test_live_sessions_against_kernel(front_end_only: None) -> None:
    """Replay one session live in a private namespace (differential against the kernel)."""
    ns = f"nsxt{os.getpid()}"
    name, cmds = next((n, c) for n, c in sessions() if n == "filter")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        world = World()
        for argv in cmds:
            p = subprocess.run(["ip", "netns", "exec", ns] + argv, capture_output=True,
                               text=True, env={"LC_ALL": "C", "PATH": os.environ["PATH"]})
            real = (normalise_save(p.stdout), p.stderr, p.returncode)
            assert _run(world, argv) == real, argv
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)


def test_rules_reach_the_nft_ruleset_with_counters() -> None:
    """With the hand-over on, the namespace's nf_tables ruleset holds what iptables-nft
    would create, counters read back from the nft rules show in ``-L -v`` and survive the
    rebuild of the table by the next command."""
    from netstack.netfilter.nft.cli import run_text
    from netstack.netfilter.nft.ruleset import nft_state
    world = World()
    for line in ("iptables -A INPUT -p tcp --dport 22 -j ACCEPT", "iptables -N LOGDROP",
                 "iptables -A LOGDROP -j DROP", "iptables -P FORWARD DROP"):
        assert run_command(world, line, stdout=io.StringIO(), stderr=io.StringIO()) == 0
    rc, out, _ = run_text(world.init_net, "list ruleset\n", None)
    assert rc == 0
    assert "tcp dport 22 counter packets 0 bytes 0 accept" in out
    assert "type filter hook forward priority filter; policy drop;" in out
    assert "chain LOGDROP" in out
    # pretend the datapath counted two packets on the first INPUT rule
    rule = nft_state(world.init_net).find_table("ip", "filter").chains["INPUT"].rules[0]
    ctr = next(e for e in rule.exprs if type(e).__name__ == "Counter")
    ctr.packets, ctr.bytes = 2, 120
    assert run_command(world, "iptables -A INPUT -j LOGDROP", stdout=io.StringIO(),
                       stderr=io.StringIO()) == 0
    out_io = io.StringIO()
    run_command(world, "iptables -L INPUT -n -v", stdout=out_io, stderr=io.StringIO())
    rows = out_io.getvalue().splitlines()
    assert rows[2].split()[:3] == ["2", "120", "ACCEPT"]
    rc, out, _ = run_text(world.init_net, "list ruleset\n", None)
    assert "tcp dport 22 counter packets 2 bytes 120 accept" in out
    assert "counter packets 0 bytes 0 jump LOGDROP" in out


def test_rule_without_native_form_is_refused_and_undone() -> None:
    """An xt compat expression whose effect netstack does not model (a directional CT
    zone template) is refused with NotSupported, and the xtables state stays as it was."""
    from netstack.errors import NotSupported
    world = World()
    assert run_command(world, "iptables -t raw -A PREROUTING -j CT --zone 5",
                       stdout=io.StringIO(), stderr=io.StringIO()) == 0
    with pytest.raises(NotSupported):
        run_command(world, "iptables -t raw -A PREROUTING -j CT --zone-orig 5")
    assert len(state_of(world.init_net, Family.IPV4).tables["raw"].chains["PREROUTING"]
               .rules) == 1
