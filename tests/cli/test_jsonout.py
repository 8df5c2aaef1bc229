"""iproute2's JSON writer: compact equals json.dumps, pretty parses back to the same value
and has json_writer.c's layout (pinned against ``ip -j -p addr`` output)."""
from __future__ import annotations

import json

from hypothesis import given, strategies as st

from netstack.cli.jsonout import dumps

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.text(max_size=8))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=20)


@given(_values)
def test_compact_and_pretty_round_trip(v) -> None:  # type: ignore[no-untyped-def]
    assert dumps(v) == json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(dumps(v, pretty=True)) == v


def test_pretty_layout_matches_ip_j_p_addr() -> None:
    v = [{"ifindex": 3, "flags": ["BROADCAST", "MULTICAST", "M-DOWN"],
          "addr_info": [{"family": "inet", "prefixlen": 24}]}]
    assert dumps(v, pretty=True) == (
        '[ {\n'
        '        "ifindex": 3,\n'
        '        "flags": [ "BROADCAST","MULTICAST","M-DOWN" ],\n'
        '        "addr_info": [ {\n'
        '                "family": "inet",\n'
        '                "prefixlen": 24\n'
        '            } ]\n'
        '    } ]')
