"""Trace records: text and JSON forms (hypothesis), device/namespace attribution, limit."""
from __future__ import annotations

import ipaddress
import json
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from netstack.core.trace import JSON_KEYS, TraceRecord, Tracer, fmt_addr, fmt_tuple
from netstack.netfilter.conntrack_tuple import CtTuple

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(ts=st.integers(0, 10**12), pid=st.integers(0, 10**6), netns=text, dev=text,
       stage=text, verdict=text, reason=text, info=text,
       attrs=st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), text, st.booleans()),
                             max_size=4))
def test_json_record_round_trips_with_stable_keys(ts, pid, netns, dev, stage, verdict,  # type: ignore[no-untyped-def]
                                                  reason, info, attrs) -> None:
    rec = TraceRecord(ts, pid, netns, dev, stage, verdict, reason, info, attrs)
    line = rec.format_json()
    assert "\n" not in line
    d = json.loads(line)
    assert tuple(d) == JSON_KEYS
    assert d["netns"] == (netns or "-") and d["dev"] == (dev or "-")
    assert (d["ts_ns"], d["pkt_id"], d["stage"], d["info"], d["attrs"]) == (
        ts, pid, stage, info, attrs)
    txt = rec.format()
    sec, ns = divmod(ts, 10**9)
    assert txt.startswith(f"[{sec:5d}.{ns:09d}] #{pid:<4d} netns={netns or '-'} ")
    assert (f"reason={reason}" in txt) == bool(reason)


@given(src=st.binary(min_size=4, max_size=4), dst=st.binary(min_size=4, max_size=4),
       sport=st.integers(0, 65535), dport=st.integers(0, 65535),
       proto=st.sampled_from([1, 6, 17, 47]))
def test_fmt_tuple_v4(src, dst, sport, dport, proto) -> None:  # type: ignore[no-untyped-def]
    s = fmt_tuple(CtTuple(2, src, sport, dst, dport, proto))
    words = dict(w.split("=", 1) for w in s.split()[1:])
    assert ipaddress.IPv4Address(words["src"]).packed == src
    assert ipaddress.IPv4Address(words["dst"]).packed == dst
    if proto in (6, 17):
        assert (int(words["sport"]), int(words["dport"])) == (sport, dport)
    elif proto == 1:
        assert (int(words["type"]), int(words["code"]), int(words["id"])) == (
            dport >> 8, dport & 0xFF, sport)
    else:
        assert "sport" not in words and s.startswith("gre ")


@given(a=st.binary(min_size=16, max_size=16))
def test_fmt_addr_v6(a: bytes) -> None:
    assert ipaddress.IPv6Address(fmt_addr(a)).packed == a


def _pkt(dev=None, dst=None):  # type: ignore[no-untyped-def]
    return SimpleNamespace(id=7, dev=dev, dst=dst)


def test_event_device_attribution() -> None:
    """skb->dev first; a locally generated packet without one: its route's device; with
    neither, the namespace the caller names."""
    net = SimpleNamespace(name="r")
    eth = SimpleNamespace(name="eth0", net=net)
    tr = Tracer(lambda: 5)
    tr.event(_pkt(dev=eth), "a")
    tr.event(_pkt(dst=SimpleNamespace(dev=eth)), "b")
    tr.event(_pkt(), "c", net=net)
    tr.event(_pkt(), "d")
    assert [(r.netns, r.dev) for r in tr.records] == [("r", "eth0"), ("r", "eth0"),
                                                      ("r", ""), ("", "")]


def test_limit_and_json_sink() -> None:
    lines: list[str] = []
    tr = Tracer(lambda: 1, lines.append, limit=2)
    tr.json = True
    for i in range(4):
        tr.event(_pkt(), f"s{i}", attrs={"i": i})
    assert tr.count == 2 and tr.dropped == 2 and tr.records == []
    assert [json.loads(ln)["attrs"] for ln in lines] == [{"i": 0}, {"i": 1}]
