"""Transactions and the ``nft`` command: ``-f`` atomicity, ``-c``, handles and
add/insert/replace/delete/flush/list/reset, the scenario command and ``netstack nft``."""
from __future__ import annotations

import io

import pytest

from netstack.cli.main import main as netstack_main
from netstack.cli.scenario import run_command, run_script
from netstack.core.world import World
from netstack.errors import ScenarioError
from netstack.netfilter.nft.cli import run_nft, run_text


@pytest.fixture
def net():
    return World().netns("")


def nft(net, *args: str) -> tuple[int, str, str]:
    return run_nft(net, list(args))


def test_file_with_failing_last_line_applies_nothing(net, tmp_path) -> None:
    assert nft(net, "add table ip keep")[0] == 0
    f = tmp_path / "r.nft"
    f.write_text("add table ip t\nadd chain ip t c\nadd rule ip t c accept\n"
                 "add rule ip t c jump missing\n")
    rc, out, err = nft(net, "-f", str(f))
    assert rc == 1 and "Could not process rule: No such file or directory" in err
    assert nft(net, "list", "ruleset")[1] == "table ip keep {\n}\n"


def test_check_mode_applies_nothing(net) -> None:
    assert nft(net, "-c", "add table ip t") == (0, "", "")
    assert nft(net, "list", "ruleset") == (0, "", "")


def test_handles_insert_replace_delete(net) -> None:
    run_text(net, "add table ip t\nadd chain ip t c\nadd rule ip t c tcp dport 1 accept\n"
                  "add rule ip t c tcp dport 2 accept\n", "x")
    assert nft(net, "insert", "rule", "ip", "t", "c", "tcp", "dport", "0", "accept")[0] == 0
    assert nft(net, "add", "rule", "ip", "t", "c", "position", "2", "tcp", "dport", "5",
               "drop")[0] == 0
    assert nft(net, "replace", "rule", "ip", "t", "c", "handle", "3", "tcp", "dport", "3",
               "drop")[0] == 0
    assert nft(net, "delete", "rule", "ip", "t", "c", "handle", "4")[0] == 0
    out = nft(net, "-a", "list", "chain", "ip", "t", "c")[1]
    # replace keeps the handle (nf_tables_newrule uses NFTA_RULE_HANDLE; measured on 6.18)
    assert out == ("table ip t {\n\tchain c { # handle 1\n"
                   "\t\ttcp dport 1 accept # handle 2\n"
                   "\t\ttcp dport 5 drop # handle 5\n"
                   "\t\ttcp dport 3 drop # handle 3\n\t}\n}\n")
    rc, _, err = nft(net, "delete", "rule", "ip", "t", "c", "handle", "99")
    assert rc == 1 and err.startswith("Error: Could not process rule: No such file or "
                                      "directory\n")


def test_rule_order_after_insert_and_position(net) -> None:
    run_text(net, "add table ip t\nadd chain ip t c\nadd rule ip t c tcp dport 1 accept\n"
                  "add rule ip t c tcp dport 2 accept\n", "x")   # handles 2, 3
    nft(net, "insert", "rule", "ip", "t", "c", "tcp", "dport", "0", "accept")      # 4
    nft(net, "add", "rule", "ip", "t", "c", "position", "2", "tcp", "dport", "9", "drop")
    ports = [ln.split()[2] for ln in nft(net, "list", "ruleset")[1].splitlines()
             if "dport" in ln]
    assert ports == ["0", "1", "9", "2"]


def test_flush_delete_and_busy_objects(net) -> None:
    run_text(net, "table ip t {\n set s { type ipv4_addr; elements = { 1.1.1.1 } }\n"
                  " chain c { ip saddr @s jump d\n }\n chain d { }\n}\n", "x")
    assert nft(net, "delete", "chain", "ip", "t", "d")[2].startswith(
        "Error: Could not process rule: Device or resource busy")
    assert nft(net, "delete", "set", "ip", "t", "s")[0] == 1
    assert nft(net, "flush", "chain", "ip", "t", "c")[0] == 0
    assert nft(net, "delete", "chain", "ip", "t", "d")[0] == 0
    assert nft(net, "flush", "set", "ip", "t", "s")[0] == 0
    assert "elements" not in nft(net, "list", "set", "ip", "t", "s")[1]
    assert nft(net, "add", "element", "ip", "t", "s", "{ 2.2.2.2, 3.3.3.3 }")[0] == 0
    assert nft(net, "delete", "element", "ip", "t", "s", "{ 2.2.2.2 }")[0] == 0
    assert "elements = { 3.3.3.3 }" in nft(net, "list", "set", "ip", "t", "s")[1]
    assert nft(net, "flush", "ruleset") == (0, "", "")
    assert nft(net, "list", "ruleset") == (0, "", "")


def test_named_counter_reset(net) -> None:
    run_text(net, "table ip t {\n counter c1 { packets 3 bytes 30 }\n}\n", "x")
    assert nft(net, "reset", "counter", "ip", "t", "c1")[1] == (
        "table ip t {\n\tcounter c1 {\n\t\tpackets 3 bytes 30\n\t}\n}\n")
    assert "packets 0 bytes 0" in nft(net, "list", "counter", "ip", "t", "c1")[1]


def test_create_table_exists(net) -> None:
    nft(net, "add table ip t")
    rc, out, err = nft(net, "create", "table", "ip", "t")
    assert rc == 1
    assert err == ("Error: Could not process rule: File exists\n"
                   "create table ip t\n                ^\n")


def test_scenario_command_and_netstack_nft(capsys) -> None:
    w = World()
    out, err = io.StringIO(), io.StringIO()
    run_script(w, "nft add table inet f\nnft 'add chain inet f c { type filter hook input "
                  "priority 0; }'\nnft list tables\n", stdout=out, stderr=err)
    assert out.getvalue() == "table inet f\n"
    with pytest.raises(ScenarioError):
        run_script(w, "nft add rule inet f c tcp dport 22 acept\n", stdout=out,
                   stderr=err)
    assert "syntax error, unexpected newline" in err.getvalue()
    assert run_command(w, "nft list chains", stdout=out, stderr=err) == 0
    assert netstack_main(["nft", "--debug=netlink", "-c", "add table ip t; add chain ip t c;"
                          " add rule ip t c ip ttl 1 drop"]) == 0
    got = capsys.readouterr().out
    assert got == ("ip (null) (null) use 0\nip t c\n"
                   "  [ payload load 1b @ network header + 8 => reg 1 ]\n"
                   "  [ cmp eq reg 1 0x00000001 ]\n  [ immediate reg 0 drop ]\n\n")
    assert netstack_main(["nft", "add", "rule", "ip", "t", "c", "accept"]) == 1
