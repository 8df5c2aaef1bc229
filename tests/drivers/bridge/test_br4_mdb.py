"""``bridge mdb`` with sources (netstack/drivers/bridge/br_mdb.py) against Linux 6.18 and
its iproute2 6.1: static (S,G) entries next to (*,G) ones under ``mcast_igmp_version 3``
(filter modes, added_by_star_ex, forwarding by source), the words iproute2 6.1 skips
(``filter_mode``/``source_list``/``proto``, which arrived in 6.3) and ``replace`` (unknown
there), the kernel's error texts; then the RTM_NEWMDB attributes of newer iproute2
(filter mode, source list, protocol, NLM_F_REPLACE) through ``br_mdb_add`` directly."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for _p in (str(_HERE.parents[1]), str(_HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from kernel.conftest import _unavailable  # noqa: E402
from kernel.oracle import Send, run_kernel  # noqa: E402
from netstack.drivers.bridge import br_multicast as bm  # noqa: E402
from netstack.drivers.bridge.br_mdb import br_mdb_add, br_mdb_dump  # noqa: E402
from netstack.errors import KernelError  # noqa: E402
from test_br2_mdb import mdb_cmd  # noqa: E402
from test_br2_topo import HOSTS, base_script, bridge, port, stack  # noqa: E402
from test_br4_kernel import V3, mcast_from, norm, quiet_bridge_host  # noqa: E402

STATIC = ("bridge -n b mdb add dev br0 port p1 grp 239.1.1.1 src 10.0.0.5 permanent\n"
          "bridge -n b mdb add dev br0 port p2 grp 239.1.1.1 permanent\n"
          "bridge -n b mdb add dev br0 port p3 grp 239.2.2.2 temp filter_mode include source_list 10.0.0.3 proto static\n"
          "bridge -n b mdb add dev br0 port p2 grp 239.2.2.2 src 10.0.0.4 vid 0\n")
# the bridge's own host reports off (random timing; see quiet_bridge_host)
SCRIPT = quiet_bridge_host(base_script(snooping=True)) + V3
QUERIES = ("bridge -n b -d mdb show", "bridge -n b -d -j mdb show", "bridge -n b mdb show")
ERRORS = (
    "bridge -n b mdb add dev br0 port p1 grp 239.1.1.1 src 10.0.0.5",
    "bridge -n b mdb add dev br0 port br0 grp 239.5.5.5 src 10.0.0.1",
    "bridge -n b mdb add dev br0 port p1 grp 239.5.5.5 src 239.0.0.1",
    "bridge -n b mdb add dev br0 port p1 grp 239.5.5.5 src 2001:db8::1",
    "bridge -n b mdb add dev br0 port p1 grp 239.5.5.5 src nonsense",
    "bridge -n b mdb del dev br0 port p1 grp 239.1.1.1 src 10.0.0.6",
    "bridge -n b mdb replace dev br0 port p1 grp 239.1.1.1 src 10.0.0.5",
)
SENDS = (Send("h3", "v3h", mcast_from(3, "10.0.0.5", "239.1.1.1", b"from five")),
         Send("h3", "v3h", mcast_from(3, "10.0.0.6", "239.1.1.1", b"from six")),
         Send("h1", "v1h", mcast_from(1, "10.0.0.4", "239.2.2.2", b"four")))


@pytest.fixture(scope="module")
def kernel_result():  # type: ignore[no-untyped-def]
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    q = list(QUERIES) + [f"{e} 2>&1; echo rc=$?" for e in ERRORS]
    return run_kernel(SCRIPT + STATIC, list(SENDS), list(HOSTS), q, 0.2)


def test_static_sg_dump_kernel(kernel_result) -> None:  # type: ignore[no-untyped-def]
    d = kernel_result.queries["bridge -n b -d mdb show"]
    assert "port p1 grp 239.1.1.1 src 10.0.0.5 permanent filter_mode include proto static " in d
    assert "port p3 grp 239.2.2.2 src 10.0.0.4 temp filter_mode include proto kernel  added_by_star_ex" in d
    assert "port p2 grp 239.1.1.1 permanent filter_mode exclude proto static " in d
    # filter_mode/source_list were skipped by iproute2 6.1: a plain EXCLUDE (*,G)
    assert "port p3 grp 239.2.2.2 temp filter_mode exclude proto static " in d


def test_static_sg_netstack_matches(kernel_result) -> None:  # type: ignore[no-untyped-def]
    from netstack.api import Stack
    s = Stack()
    s.run_script(SCRIPT, name="br4_mdb.sh")
    caps = {h: s.capture(*h) for h in HOSTS}
    for ln in STATIC.splitlines():
        rc, _, err = mdb_cmd(s, ln)
        assert rc == 0, err
    for snd in SENDS:
        s.inject(snd.ns, snd.dev, [snd.frame])
    s.advance(0.2)
    for q in QUERIES:
        rc, out, _ = mdb_cmd(s, q)
        assert rc == 0
        assert norm(out) == norm(kernel_result.queries[q]), q
    for h in HOSTS:
        assert [f.data for f in caps[h]] == kernel_result.frames[h], h
    for e in ERRORS:
        rc, out, err = mdb_cmd(s, e)
        assert out + err + f"rc={rc}\n" == kernel_result.queries[f"{e} 2>&1; echo rc=$?"], e


# ----------------------------------- RTM_NEWMDB attributes of iproute2 >= 6.3
def test_star_g_with_source_list_and_replace() -> None:
    """A (*,G) INCLUDE {S} installs (S,G); EXCLUDE {S} installs it blocked and joins the
    other (S,G) entries; replace swaps mode and sources; the kernel's refusals."""
    s = stack(snooping=True, extra=V3.replace("ip -n b ", "ip -n b "))
    br, p1, p2 = bridge(s), port(s, "p1"), port(s, "p2")
    br_mdb_add(br, p1, "239.9.9.9", filter_mode="include", source_list=["10.0.0.3"])
    rows = {(e.port, e.src): e for e in br_mdb_dump(br)}
    assert rows[("p1", "")].filter_mode == "include" and rows[("p1", "")].source_list[0][0] == "10.0.0.3"
    assert rows[("p1", "10.0.0.3")].flags == ()
    br_mdb_add(br, p2, "239.9.9.9", filter_mode="exclude", source_list=["10.0.0.4"])
    rows = {(e.port, e.src): e for e in br_mdb_dump(br)}
    assert rows[("p2", "10.0.0.4")].flags == ("blocked",)
    assert rows[("p2", "10.0.0.3")].flags == ("added_by_star_ex",)
    with pytest.raises(KernelError, match="already joined"):
        br_mdb_add(br, p2, "239.9.9.9", filter_mode="exclude")
    br_mdb_add(br, p2, "239.9.9.9", filter_mode="include", source_list=["10.0.0.7"], replace=True)
    rows = {(e.port, e.src): e for e in br_mdb_dump(br)}
    assert ("p2", "10.0.0.4") not in rows and ("p2", "10.0.0.3") not in rows
    assert rows[("p2", "")].filter_mode == "include" and ("p2", "10.0.0.7") in rows
    for kw, msg in ((dict(filter_mode="include"), "empty source list"),
                    (dict(source_list=["10.0.0.1"]), "without filter mode"),
                    (dict(src="10.0.0.1", filter_mode="exclude"), "only be set for"),
                    (dict(filter_mode="exclude", source_list=["224.1.1.1"]), "multicast source")):
        with pytest.raises(KernelError, match=msg):
            br_mdb_add(br, port(s, "p3"), "239.9.9.8", **kw)  # type: ignore[arg-type]
    with pytest.raises(KernelError, match="host groups"):
        br_mdb_add(br, None, "239.9.9.8", filter_mode="exclude")


def test_deleting_star_g_removes_its_sg_entries() -> None:
    s = stack(snooping=True, extra=V3)
    br, p1 = bridge(s), port(s, "p1")
    br_mdb_add(br, p1, "239.9.9.9", filter_mode="include", source_list=["10.0.0.3", "10.0.0.4"])
    assert len(br.multicast.mdb) == 3
    mp = br.multicast.mdb[bm.mdb_key(bm.ETH_P_IP, bytes([239, 9, 9, 9]), 0)]
    bm.br_multicast_del_pg(br.multicast, mp, mp.ports[0])
    assert br.multicast.mdb == {} and br.multicast.sg_port == {}
