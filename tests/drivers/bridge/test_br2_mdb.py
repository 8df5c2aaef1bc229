"""``bridge mdb`` (netstack/drivers/bridge/br_mdb.py): the dump compared with Linux 6.18
(text, -d, -j, -d -j) after learned and static entries, and the kernel's error texts.

The command is reached through ``do_mdb`` directly (``mdb_cmd`` below parses the global
options as bridge_cmd.do_bridge does); test_br2_kernel.py also runs ``bridge -j mdb show``
through the CLI."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[2]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from kernel.conftest import _unavailable  # noqa: E402
from kernel.oracle import run_kernel  # noqa: E402
from netstack.api import Stack  # noqa: E402
from netstack.cli.errors import ToolError  # noqa: E402
from netstack.cli.ipcommon import Ctx  # noqa: E402
from netstack.drivers.bridge.br_mdb import do_mdb  # noqa: E402
from test_br2_kernel import SNOOP_SENDS  # noqa: E402
from test_br2_topo import HOSTS, base_script  # noqa: E402

STATIC = ("bridge -n b mdb add dev br0 port p2 grp 239.7.7.7 permanent\n"
          "bridge -n b mdb add dev br0 port p3 grp ff0e::7 temp\n"
          "bridge -n b mdb add dev br0 port br0 grp 239.8.8.8\n")
QUERIES = ("bridge -n b mdb show", "bridge -n b -j mdb show", "bridge -n b -d mdb show",
           "bridge -n b -d -j mdb show")


def mdb_cmd(s: Stack, line: str) -> tuple[int, str, str]:
    """``bridge [-n NS] [-j] [-d] [-s] mdb …`` → (rc, stdout, stderr)."""
    argv = line.split()
    assert argv[0] == "bridge"
    out, err = io.StringIO(), io.StringIO()
    ctx = Ctx(s.world, s.world.init_net, out, err)
    i = 1
    while argv[i].startswith("-"):
        o = argv[i].lstrip("-")
        if o == "n":
            i += 1
            ctx.net = s.world.netns(argv[i])
        elif o == "j":
            ctx.json = True
        elif o == "d":
            ctx.details += 1
        elif o == "s":
            ctx.stats += 1
        i += 1
    assert argv[i] == "mdb"
    try:
        rc = do_mdb(ctx, argv[i + 1:])
    except ToolError as e:
        return e.exit_code, out.getvalue(), e.stderr
    return rc, out.getvalue(), err.getvalue()


def netstack_side(script: str, sends) -> Stack:  # type: ignore[no-untyped-def]
    s = Stack()
    lines = [ln for ln in script.splitlines() if not ln.startswith("bridge ")]
    s.run_script("\n".join(lines) + "\n", name="mdb.sh")
    for ln in script.splitlines():
        if ln.startswith("bridge "):
            rc, _, err = mdb_cmd(s, ln)
            assert rc == 0, err
    for snd in sends:
        if snd.delay_s:
            s.advance(snd.delay_s)
        s.inject(snd.ns, snd.dev, [snd.frame])
    s.advance(0.2)
    return s


@pytest.fixture(scope="module")
def kernel_result():  # type: ignore[no-untyped-def]
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    return run_kernel(base_script(snooping=True) + STATIC, list(SNOOP_SENDS[1:3]), list(HOSTS),
                      list(QUERIES), 0.2)


def test_mdb_dump_kernel(kernel_result) -> None:  # type: ignore[no-untyped-def]
    assert kernel_result.queries["bridge -n b mdb show"] == (
        "dev br0 port p1 grp 239.1.1.1 temp\n"
        "dev br0 port br0 grp 239.8.8.8 temp\n"
        "dev br0 port p3 grp ff0e::7 temp\n"
        "dev br0 port p2 grp 239.7.7.7 permanent\n")


def test_mdb_dump_netstack_matches(kernel_result) -> None:  # type: ignore[no-untyped-def]
    s = netstack_side(base_script(snooping=True) + STATIC, SNOOP_SENDS[1:3])
    for q in QUERIES:
        rc, out, err = mdb_cmd(s, q)
        assert rc == 0, err
        assert out == kernel_result.queries[q], q


def test_mdb_errors_as_the_kernel() -> None:
    s = netstack_side(base_script(snooping=True) + STATIC, ())
    cases = [
        ("bridge -n b mdb add dev br0 port br0 grp 239.8.8.9 permanent",
         "Error: bridge: Flags are not allowed for host groups.\n"),
        ("bridge -n b mdb add dev br0 port p2 grp 239.7.7.7 temp",
         "Error: bridge: (*, G) group is already joined by port.\n"),
        ("bridge -n b mdb del dev br0 port p1 grp 239.9.9.9", "RTNETLINK answers: Invalid argument\n"),
        ("bridge -n b mdb add dev br0 port p1 grp 224.0.0.5",
         "Error: IPv4 entry group address is local multicast.\n"),
        ("bridge -n b mdb add dev br0 port p1 grp 239.1.1.2 vid 4095", "Error: Invalid entry VLAN id.\n"),
        ("bridge -n b mdb show dev nosuch", 'Cannot find device "nosuch"\n'),
    ]
    for line, text in cases:
        rc, _, err = mdb_cmd(s, line)
        assert (rc, err) == (255, text), line
    s.run_script("ip -n b link set br0 type bridge mcast_snooping 0\n")
    rc, _, err = mdb_cmd(s, "bridge -n b mdb add dev br0 port p1 grp 239.7.7.9")
    assert err == "Error: bridge: Bridge's multicast processing is disabled.\n"
    # disabling snooping flushed learned/temporary port entries, kept permanent and host ones
    rc, out, _ = mdb_cmd(s, "bridge -n b mdb show")
    assert out == "dev br0 port br0 grp 239.8.8.8 temp\ndev br0 port p2 grp 239.7.7.7 permanent\n"


def test_mdb_stats_and_vid() -> None:
    s = netstack_side(base_script(snooping=True)
                      + "bridge -n b mdb add dev br0 port p1 grp 239.7.7.7 permanent vid 5\n", ())
    rc, out, _ = mdb_cmd(s, "bridge -n b -d -s mdb show")
    assert out == "dev br0 port p1 grp 239.7.7.7 permanent proto static  vid 5    0.00\n"
    rc, out, _ = mdb_cmd(s, "bridge -n b -j mdb show")
    assert out == ('[{"mdb":[{"index":10,"dev":"br0","port":"p1","grp":"239.7.7.7",'
                   '"state":"permanent","flags":[],"vid":5}],"router":{}}]\n')
    rc, out, _ = mdb_cmd(s, "bridge -n b -j mdb show dev p1")
    assert out == '[{"mdb":[],"router":{}}]\n'


@pytest.fixture(scope="module")
def kernel_stats():  # type: ignore[no-untyped-def]
    from test_br2_kernel import QUERY, REPORT
    from kernel.oracle import Send
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    script = base_script(snooping=True) + "ip -n b link set dev p2 type bridge_slave mcast_router 2\n"
    sends = [Send("h3", "v3h", QUERY), Send("h1", "v1h", REPORT)]
    qs = ["bridge -n b -d -s mdb show", "bridge -n b -d -s -j mdb show", "bridge -n b -s mdb show"]
    return script, sends, qs, run_kernel(script, sends, list(HOSTS), qs, 0.1)


def _untimed(text: str) -> str:
    """The kernel's timers ran while its harness settled: compare the layout, not the value
    (the width of the timer field stays: ``%4d.%02d``)."""
    import re
    return re.sub(r"\d+\.\d\d", lambda mo: "9" * (len(mo.group()) - 3) + ".99", text)


def test_mdb_stats_kernel_and_netstack(kernel_stats) -> None:  # type: ignore[no-untyped-def]
    """``-s`` timers and, with ``-d``, one line per router port with its timer and type."""
    import re
    script, sends, qs, res = kernel_stats
    lines = res.queries[qs[0]].splitlines()
    assert re.fullmatch(r"router ports on br0: p3  25\d\.\d\d temp", lines[1])
    assert lines[2] == "router ports on br0: p2    0.00 permanent"
    s = netstack_side(script, sends)
    for q in qs:
        rc, out, err = mdb_cmd(s, q)
        assert rc == 0, err
        assert _untimed(out) == _untimed(res.queries[q]), (q, out, res.queries[q])
