"""State after a setup script: every namespace's ``ip -j`` views, kernel vs netstack.

Each scenario is a plain bash script (``scenarios/state_*.sh`` and the project's
``examples/default/setup.sh``) run on the kernel and in netstack; then, for every
namespace it creates, ``ip -j addr``, ``ip -j [-6] route show table all``,
``ip -j [-6] rule``, ``ip -j neigh`` and ``ip -j [-d] link`` must agree, the text
forms of the same views must be identical, and so must ``ip [-j] [-6] route get``
for a few destinations.

Unlike ``compare.canonical_json`` (which keeps a short list of fields for the
traffic tests) everything is compared, ifindex values included: a namespace
numbers its devices deterministically, and the scripts pin MAC addresses so
link-local addresses are deterministic too.  Only what the kernel makes
time-dependent is removed (:data:`VOLATILE`).  List order is compared as well,
except for neighbours (ARP and ND hash with a random key, so their dump order
differs from boot to boot) and for scenarios where link-up timing decides the
order (:attr:`StateCase.ordered`).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .cases import SCENARIOS, Case
from .conftest import Kernel
from .netstack_side import run_netstack
from .oracle import Result, namespaces_in

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "default" / "setup.sh"

#: Text views compared verbatim too (neighbours only as JSON: their order is random;
#: proxy entries are hashed without a random key, so their order is compared).
TEXT_VIEWS = ("addr show", "route show table all", "-6 route show table all", "rule show",
              "-6 rule show", "-d link show", "-br addr show", "-br link show",
              "neigh show proxy")
VIEWS = ("addr show", "route show table all", "-6 route show table all", "rule show",
         "-6 rule show", "neigh show", "neigh show proxy", "link show", "-d link show")
#: Views only compared as text (their JSON is the same as a full view's subset).
TEXT_ONLY = ("-br addr show", "-br link show")

#: Fields whose values depend on wall-clock time on the kernel side: packet
#: counters (``-s`` is not used, but be safe) and operstate, which linkwatch
#: sets asynchronously (see oracle._wait_links_ready).
VOLATILE = frozenset({"stats", "stats64", "operstate"})


@dataclass(frozen=True)
class StateCase:
    """A setup script and how strictly its state is compared.

    ``ordered``: compare route/address/rule/link lists in dump order.  False
    where the kernel's order depends on when linkwatch reports carrier (a veth
    whose ifindex equals its peer's iflink gets its event up to 1 s late, so its
    IPv6 routes are created after those of a device brought up later).
    ``settle``: seconds to wait (virtual seconds in netstack) before the
    queries; long enough, where the script leaves DAD running, for every DAD to
    be over on both sides (random delay below 1 s plus one 1 s probe), so the
    state no longer depends on how fast the queries run.
    """

    name: str
    script: str
    ordered: bool = True
    settle: float = 0.05
    views: tuple[str, ...] = VIEWS

    def queries(self) -> tuple[str, ...]:
        return tuple(f"ip -n {ns} -j {v}" for ns in namespaces_in(self.script)
                     for v in self.views)

    def text_queries(self) -> tuple[str, ...]:
        return tuple(f"ip -n {ns} {v}" for ns in namespaces_in(self.script)
                     for v in TEXT_VIEWS if v in self.views or (
                         v in TEXT_ONLY and "addr show" in self.views))

    def case(self) -> Case:
        return Case(name=f"state_{self.name}", script=self.script, sends=(), captures=(),
                    queries=self.queries() + self.text_queries(), settle=self.settle)


def _scenario(name: str) -> str:
    return (SCENARIOS / f"{name}.sh").read_text()


CASES = {
    c.name: c for c in (
        # settle 5 s: h1's first RS can reach r before linkwatch has made r-h1 ready
        # (equal ifindexes, see StateCase) and be dropped there; its retransmission,
        # 4 s x 0.9..1.1 later (addrconf_rs_timer), always gets r's STALE entry made
        StateCase("default", EXAMPLE.read_text(), ordered=False, settle=5.0),
        StateCase("dad_pending", _scenario("state_dad_pending"),
                  views=("addr show", "-6 route show table all", "neigh show")),
        StateCase("rules", _scenario("state_rules")),
        StateCase("secondary", _scenario("state_secondary")),
        StateCase("special_routes", _scenario("state_special_routes")),
        StateCase("linkflap", _scenario("state_linkflap")),
        StateCase("ipv6", _scenario("state_ipv6")),
        StateCase("misc", _scenario("state_misc")),
        StateCase("corners", _scenario("state_corners")),
        StateCase("addr_edges", _scenario("state_addr_edges")),
        StateCase("neigh", _scenario("state_neigh")),
    )
}

# Known differences not fixed yet
# (strict: the test fails once they are fixed, so the mark gets removed).
KNOWN: dict[tuple[str, str], str] = {}


# --------------------------------------------------------------------------
# canonical form


def canonical(command: str, text: str, ordered: bool) -> Any:
    """Parsed ``ip -j`` output without :data:`VOLATILE` fields; lists sorted unless
    ``ordered`` (neighbour lists always)."""
    data = json.loads(text) if text.strip() else []
    keep_order = ordered and " neigh " not in f" {command} "

    def walk(obj: Any, top: bool) -> Any:
        if isinstance(obj, dict):
            return {k: walk(v, False) for k, v in obj.items() if k not in VOLATILE}
        if isinstance(obj, list):
            items = [walk(v, False) for v in obj]
            if top and not keep_order:
                items.sort(key=lambda v: json.dumps(v, sort_keys=True))
            return items
        return obj

    return walk(data, True)


def state_differences(case: StateCase, kernel: Result, netstack: Result,
                      only: str | None = None) -> list[str]:
    out = []
    for q in case.queries():
        if only is not None and q != only:
            continue
        a = canonical(q, kernel.queries[q], case.ordered)
        b = canonical(q, netstack.queries[q], case.ordered)
        if a != b:
            ka = json.dumps(a, indent=1, sort_keys=True).splitlines()
            kb = json.dumps(b, indent=1, sort_keys=True).splitlines()
            body = "\n".join(difflib.unified_diff(ka, kb, "kernel", "netstack", lineterm=""))
            out.append(f"`{q}` differs:\n{body}")
    return out


_NETSTACK: dict[str, Result] = {}


def netstack_state(case: StateCase) -> Result:
    if case.name not in _NETSTACK:
        c = case.case()
        _NETSTACK[case.name] = run_netstack(c.script, [], [], list(c.queries), c.settle,
                                            name=f"state_{case.name}.sh")
    return _NETSTACK[case.name]


# --------------------------------------------------------------------------
# unit tests of the canonical form (no kernel needed)


def test_canonical_drops_only_volatile_fields_and_keeps_ifindex() -> None:
    text = json.dumps([{"ifindex": 3, "ifname": "d0", "operstate": "UP",
                        "stats64": {"rx": {"bytes": 1}}, "addr_info": [{"local": "10.0.0.1"}]}])
    assert canonical("ip -j addr show", text, True) == [
        {"ifindex": 3, "ifname": "d0", "addr_info": [{"local": "10.0.0.1"}]}]


def test_canonical_order_is_significant_except_for_neighbours() -> None:
    a = json.dumps([{"dst": "10.0.0.1"}, {"dst": "10.0.0.2"}])
    b = json.dumps([{"dst": "10.0.0.2"}, {"dst": "10.0.0.1"}])
    assert canonical("ip -n x -j route show", a, True) != canonical("ip -n x -j route show", b, True)
    assert canonical("ip -n x -j route show", a, False) == canonical("ip -n x -j route show", b, False)
    assert canonical("ip -n x -j neigh show", a, True) == canonical("ip -n x -j neigh show", b, True)


def test_every_state_scenario_names_its_namespaces() -> None:
    for case in CASES.values():
        assert namespaces_in(case.script), case.name
        assert len(case.queries()) == len(case.views) * len(namespaces_in(case.script))


# --------------------------------------------------------------------------
# the differential tests


def _params() -> list[Any]:
    out = []
    for case in CASES.values():
        for q in case.queries():
            marks = []
            why = KNOWN.get((case.name, q))
            if why:
                marks.append(pytest.mark.xfail(reason=why, strict=True))
            out.append(pytest.param(case.name, q, marks=marks, id=f"{case.name}:{q[3:]}"))
    return out


@pytest.mark.parametrize(("name", "query"), _params())
def test_state_matches_kernel(kernel: Kernel, name: str, query: str) -> None:
    case = CASES[name]
    diffs = state_differences(case, kernel.run(case.case()), netstack_state(case), only=query)
    if diffs:
        pytest.fail(f"netstack state differs from the kernel after {name}:\n"
                    + "\n\n".join(diffs), pytrace=False)


def test_ip_rule_add_without_table_uses_main(kernel: Kernel) -> None:
    """iprule.c: ``ip rule add`` without ``table`` asks for RT_TABLE_MAIN (a table id
    of 0 would make the kernel create an empty table); pinned with the real ``ip``."""
    case = CASES["rules"]
    q = "ip -n p -j rule show"
    for res in (kernel.run(case.case()), netstack_state(case)):
        rules = json.loads(res.queries[q])
        assert {"priority": 998, "src": "10.5.0.0", "srclen": 16, "table": "main"} in rules


# --------------------------------------------------------------------------
# route lookups and filtered listings after the scripts: `ip [-6] route get|show ...`,
# text and JSON, compared verbatim

LOOKUPS = {
    "ipv6": ("ip -n b -6 route get 2001:db8:6::1", "ip -n b -6 route get 2001:db8:99::1",
             "ip -n b -6 route get 2001:db8:1::b", "ip -n b -6 route get fe80::ff:fe00:5001 dev vb",
             "ip -n a -6 route get 2001:db8:9::1", "ip -n a -6 route get 2001:db8:7::9",
             "ip -n b -6 route get 2001:db8:6::1 from 2001:db8:1::b",
             "ip -n b -6 route show dev vb", "ip -n b -6 route show table all type unicast",
             "ip -n a -6 route show table local", "ip -n b -6 route show root 2001:db8::/32",
             "ip -n b -6 route show match 2001:db8:6::1", "ip -n b -6 route show exact ::/0",
             "ip -n a -6 route show table all proto kernel", "ip -n b -6 route show table 44",
             "ip -n a -6 route show via 2001:db8:1::b", "ip -n b -6 route show via ::/0",
             "ip -n b -6 route get ff02::1 dev vb", "ip -n a -6 route get 2001:db8:1::"),
    "special_routes": ("ip -n t route get 10.5.0.1", "ip -n t route get 10.7.0.1",
                       "ip -n t route get 10.9.0.1", "ip -n t route get 192.0.2.1",
                       "ip -n t route get 10.12.0.1", "ip -n t route show table 50",
                       "ip -n t route show table all type blackhole",
                       "ip -n t route show scope link", "ip -n t route show proto static",
                       "ip -n t route show match 10.5.1.1", "ip -n t route show root 10.0.0.0/8",
                       "ip -n t route show dev d0 table all", "ip -n t route show via 192.0.2.254",
                       "ip -n t route show src 192.0.2.1", "ip -n t route show via 192.0.2.0/24"),
}


def _lookup_case(name: str) -> Case:
    qs = tuple(q for g in LOOKUPS[name] for q in (g, re.sub(r"^(ip -n \S+) ", r"\1 -j ", g)))
    return Case(name=f"state_lookup_{name}", script=CASES[name].script, sends=(), captures=(),
                queries=qs, settle=0.05)


@pytest.mark.parametrize("name", sorted(LOOKUPS))
def test_route_lookups_and_listings_match_kernel(kernel: Kernel, name: str) -> None:
    case = _lookup_case(name)
    k = kernel.run(case)
    n = run_netstack(case.script, [], [], list(case.queries), case.settle, name=f"{name}.sh")
    bad = [f"`{q}`\n  kernel:   {k.queries[q]!r}\n  netstack: {n.queries[q]!r}"
           for q in case.queries if k.queries[q] != n.queries[q]]
    assert not bad, "\n".join(bad)


# --------------------------------------------------------------------------
# the same state as iproute2 prints it for people

_HARNESS_NETNS_TAG = re.compile(r"(link-netns \S+?)-k\d+\b")


def text_differences(case: StateCase, kernel: Result, netstack: Result) -> list[str]:
    """Verbatim text differences; the kernel side's per-process namespace suffix
    (oracle.rename_namespaces) is taken out of ``link-netns NAME`` first, and lines are
    sorted where the kernel's order is timing-dependent (``ordered=False``)."""
    out = []
    for q in case.text_queries():
        a = _HARNESS_NETNS_TAG.sub(r"\1", kernel.queries[q]).splitlines()
        b = netstack.queries[q].splitlines()
        if not case.ordered:
            a, b = sorted(a), sorted(b)
        if a != b:
            body = "\n".join(difflib.unified_diff(a, b, "kernel", "netstack", lineterm=""))
            out.append(f"`{q}` differs:\n{body}")
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_state_text_matches_kernel(kernel: Kernel, name: str) -> None:
    case = CASES[name]
    diffs = text_differences(case, kernel.run(case.case()), netstack_state(case))
    if diffs:
        pytest.fail(f"`ip` text output differs from the kernel after {name}:\n"
                    + "\n\n".join(diffs), pytrace=False)
