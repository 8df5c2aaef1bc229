"""Shared pieces of the bridge's kernel-differential tests (see tests/kernel/ and
docs/testing-kernel-oracle.md for the harness this reuses).

Topology (``base.sh``): bridge ``br0`` (02:00:00:00:0b:00) in namespace ``b`` with ports
p1..p3, whose veth peers e1..e3 live in h1..h3 (02:00:00:00:0N:01) and are played by the
harness.  IPv6 is off everywhere so the wire carries only the injected traffic.

Two normalisations, both because this oracle kernel is built without
CONFIG_BRIDGE_VLAN_FILTERING while netstack models a kernel with it: FDB entries with a
``vlan`` (the ports' local entries in the default VLAN 1) and the ``vlan_*`` link fields
are left out; and the ``self`` entries of ``ndo_dflt_fdb_dump`` (device multicast address
lists, not modelled) are left out.  Timers are compared as "running or not".
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from kernel.compare import results_diff, strip_noise  # noqa: E402
from kernel.conftest import _unavailable  # noqa: E402
from kernel.netstack_side import run_netstack  # noqa: E402
from kernel.oracle import Result, Send, run_kernel  # noqa: E402

HERE = Path(__file__).with_name("scenarios")
BR_MAC = "02:00:00:00:0b:00"
MAC = {i: f"02:00:00:00:0{i}:01" for i in (1, 2, 3)}
CAPS = (("h1", "e1"), ("h2", "e2"), ("h3", "e3"))


def script(*frags: str) -> str:
    return "".join((HERE / f"{n}.sh").read_text() if not n.startswith("\n") else n
                   for n in frags)


def eth(dst: str, src: str, etype: int = 0x88B5, payload: bytes = b"bridge test") -> bytes:
    b = bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", ""))
    return b + etype.to_bytes(2, "big") + payload.ljust(46, b".")


def send(h: int, dst: str, src: str | None = None, delay: float = 0.0, **kw: Any) -> Send:
    return Send(f"h{h}", f"e{h}", eth(dst, src or MAC[h], **kw), delay)


_CACHE: dict[str, Result] = {}


def kernel_run(name: str, scr: str, sends: list[Send], queries: list[str],
               settle: float = 0.15) -> Result:
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    if name not in _CACHE:
        _CACHE[name] = strip_noise(run_kernel(scr, sends, list(CAPS), queries, settle))
    return _CACHE[name]


def netstack_run(name: str, scr: str, sends: list[Send], queries: list[str],
                 settle: float = 0.15) -> Result:
    return strip_noise(run_netstack(scr, sends, list(CAPS), queries, settle, name=f"{name}.sh"))


def fdb_canon(text: str) -> list[dict[str, Any]]:
    out = []
    for e in json.loads(text or "[]"):
        if "self" in e.get("flags", []) or "vlan" in e:
            continue
        e.pop("used", None)
        e.pop("updated", None)
        out.append(e)
    return sorted(out, key=lambda e: json.dumps(e, sort_keys=True))


_VLAN_ONLY = {"vlan_protocol", "vlan_default_pvid", "vlan_stats_enabled",
              "vlan_stats_per_port"}


def link_canon(text: str) -> list[dict[str, Any]]:
    out = []
    for d in json.loads(text or "[]"):
        li = d.get("linkinfo", {})
        info = {k: v for k, v in li.get("info_data", {}).items() if k not in _VLAN_ONLY}
        slave = dict(li.get("info_slave_data", {}))
        for blk in (info, slave):
            for k in list(blk):
                if k.endswith("_timer"):
                    blk[k] = bool(blk[k])
        info.pop("gc_timer", None)  # always running while up; its value is timing
        out.append({"ifname": d["ifname"], "master": d.get("master"),
                    "flags": d["flags"], "mtu": d["mtu"], "address": d["address"],
                    "promiscuity": d.get("promiscuity"), "allmulti": d.get("allmulti"),
                    "tso_max_size": d.get("tso_max_size"),
                    "info_kind": li.get("info_kind"),
                    # "bridge" in the kernel's JSON; netstack's fmt_link says
                    # "bridge_slave" until patch BR1-1 is applied
                    "info_slave_kind": (li.get("info_slave_kind") or "").removesuffix(
                        "_slave") or None,
                    "info_data": info, "info_slave_data": slave})
    return out


def canon(query: str, text: str) -> Any:
    if " fdb" in query:
        return fdb_canon(text)
    if " sysctl " in query:
        return text
    if " bridge " in query:
        return json.loads(text or "[]")
    if " link" in query:
        return link_canon(text)
    return json.loads(text or "[]")


def compare(name: str, scr: str, sends: list[Send], queries: list[str] = (),
            settle: float = 0.15, originators: frozenset[str] = frozenset()
            ) -> tuple[Result, Result]:
    """Run on both, fail with a readable diff unless frames and the bridge state match."""
    queries = list(queries)
    k = kernel_run(name, scr, sends, queries, settle)
    n = netstack_run(name, scr, sends, queries, settle)
    kf = Result(frames=k.frames, times=k.times)
    nf = Result(frames=n.frames, times=n.times)
    # IP ID/checksum of packets the bridge's own stack sources are kernel-random (masked)
    diff = results_diff(kf, nf, originators)
    problems = [diff] if diff else []
    for q in queries:
        a, b = canon(q, k.queries.get(q, "")), canon(q, n.queries.get(q, ""))
        if a != b:
            problems.append(f"`{q}` differs:\nkernel:   {json.dumps(a, sort_keys=True)}\n"
                            f"netstack: {json.dumps(b, sort_keys=True)}")
    if problems:
        pytest.fail(f"netstack differs from the kernel in {name}:\n" + "\n".join(problems),
                    pytrace=False)
    return k, n


def got(res: Result, h: int) -> list[bytes]:
    return res.frames.get((f"h{h}", f"e{h}"), [])
