"""Bridge multicast statistics (``mcast_stats_enabled``; ``br_multicast_count``,
``br_multicast_err_count``) against Linux 6.18: the counters of the bridge and of each
port as ``ip -j link xstats type bridge|bridge_slave`` shows them, after queries, v1/v2/v3
reports, a leave, MLD and malformed IGMP.  The netstack side reads the bridge's counters
through ``ip link xstats`` (``do_xstats``) and the ports' with ``mcast_stats_json`` (the
``bridge_slave`` kind also prints STP counters netstack does not keep)."""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for _p in (str(_HERE.parents[1]), str(_HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from kernel.conftest import _unavailable  # noqa: E402
from kernel.oracle import Send, run_kernel  # noqa: E402
from netstack.api import Stack  # noqa: E402
from netstack.cli.ipcommon import Ctx  # noqa: E402
from netstack.drivers.bridge.br_mdb import do_xstats, mcast_stats_json, mcast_stats_text  # noqa: E402
from netstack.errors import NotSupported  # noqa: E402
from test_br2_kernel import LEAVE, QUERY, REPORT, igmp, mld  # noqa: E402
from test_br2_topo import HOSTS, IP4, MAC, base_script, port  # noqa: E402
from test_br4_kernel import IS_EX, quiet_bridge_host, v3_report  # noqa: E402

# the bridge's own host reports off (random timing; see quiet_bridge_host)
SCRIPT = quiet_bridge_host(base_script(snooping=True)) + "ip -n b link set br0 type bridge mcast_stats_enabled 1\n"
BAD = bytearray(igmp(MAC[1], IP4[1], "239.9.9.9", 0x16, "239.9.9.9"))
BAD[-5] ^= 0xFF  # IGMP checksum broken
SENDS = (Send("h3", "v3h", QUERY),
         Send("h1", "v1h", REPORT, delay_s=0.2),
         Send("h2", "v2h", igmp(MAC[2], IP4[2], "239.1.1.1", 0x12, "239.1.1.1")),  # v1 report
         Send("h1", "v1h", v3_report(1, [(IS_EX, "239.3.3.3", [])])),
         Send("h1", "v1h", bytes(BAD)),
         Send("h3", "v3h", mld(3, 130, "::", "ff02::1", delay_ms=100)),
         Send("h1", "v1h", mld(1, 131, "ff0e::101", "ff0e::101")),
         Send("h1", "v1h", LEAVE))
QUERIES = ("ip -n b -j link xstats type bridge dev br0",
           "ip -n b link xstats type bridge dev br0") + tuple(
    f"ip -n b -j link xstats type bridge_slave dev p{i}" for i in (1, 2, 3))


@pytest.fixture(scope="module")
def kernel_result():  # type: ignore[no-untyped-def]
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    return run_kernel(SCRIPT, list(SENDS), list(HOSTS), list(QUERIES), 0.2)


def netstack() -> Stack:
    s = Stack()
    s.run_script(SCRIPT, name="br4_stats.sh")
    for snd in SENDS:
        if snd.delay_s:
            s.advance(snd.delay_s)
        s.inject(snd.ns, snd.dev, [snd.frame])
    s.advance(0.2)
    return s


def xstats(s: Stack, js: bool) -> str:
    out = io.StringIO()
    ctx = Ctx(s.world, s.world.netns("b"), out, io.StringIO())
    ctx.json = js
    do_xstats(ctx, ["type", "bridge", "dev", "br0"])
    return out.getvalue()


def test_stats_kernel(kernel_result) -> None:  # type: ignore[no-untyped-def]
    p1 = json.loads(kernel_result.queries[QUERIES[2]])[0]["multicast"]
    assert p1["igmp_reports"]["rx_v2"] == 1 and p1["igmp_reports"]["rx_v3"] == 1
    assert p1["igmp_parse_errors"] == 1 and p1["igmp_leaves"]["rx"] == 1
    assert p1["mld_reports"]["rx_v1"] == 1


def test_stats_netstack_matches(kernel_result) -> None:  # type: ignore[no-untyped-def]
    s = netstack()
    for i in (1, 2, 3):
        want = json.loads(kernel_result.queries[QUERIES[1 + i]])[0]["multicast"]
        got = mcast_stats_json(port(s, f"p{i}").multicast.stats)
        assert got == want, f"p{i}"
    want_br = json.loads(kernel_result.queries[QUERIES[0]])
    got_br = json.loads(xstats(s, True))
    assert got_br[0]["ifname"] == want_br[0]["ifname"] == "br0"
    assert got_br == want_br
    assert xstats(s, False) == kernel_result.queries[QUERIES[1]]


def test_stats_off_counts_nothing_and_slave_kind_is_refused() -> None:
    s = Stack()
    s.run_script(base_script(snooping=True), name="br4_stats_off.sh")
    s.inject("h1", "v1h", [REPORT, bytes(BAD)])
    st = port(s, "p1").multicast.stats
    assert mcast_stats_json(st)["igmp_reports"]["rx_v2"] == 0 and st.igmp_parse_errors == 0
    assert len(mcast_stats_text(st)) == 16
    out = io.StringIO()
    ctx = Ctx(s.world, s.world.netns("b"), out, io.StringIO())
    with pytest.raises(NotSupported):
        do_xstats(ctx, ["type", "bridge_slave"])
