"""Bad input: arbitrary bytes into a bridge port (with VLAN filtering and without) are
forwarded, delivered or dropped with a counted reason — never an exception."""
from __future__ import annotations

from br1_topo import Bridge
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_PREFIXES = [b"", bytes.fromhex("ffffffffffff020000000101"), bytes.fromhex(
    "0180c2000000020000000101"), bytes.fromhex("01005e000001020000000101"),
    bytes.fromhex("020000000b00020000000101")]
_TYPES = [b"", b"\x81\x00", b"\x88\xa8", b"\x08\x06", b"\x86\xdd", b"\x08\x00", b"\x00\x10"]

frames = st.tuples(st.sampled_from(_PREFIXES), st.sampled_from(_TYPES),
                   st.binary(max_size=80)).map(lambda t: (t[0] + t[1] + t[2])[:120])

_BR = {}


def _bridge(vf: bool) -> Bridge:
    if vf not in _BR:
        _BR[vf] = Bridge("ip -n b addr add 10.9.0.254/24 dev br0\n" + (
            "ip -n b link set br0 type bridge vlan_filtering 1\n"
            "bridge -n b vlan add dev p1 vid 10\n" if vf else ""))
    return _BR[vf]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(frames, min_size=1, max_size=4), st.booleans())
def test_random_frames_never_raise(batch: list[bytes], vf: bool) -> None:
    b = _bridge(vf)
    frames_ok = [f for f in batch if len(f) >= 14]
    b.s.inject("h1", "e1", frames_ok or [bytes(14)])
    b.s.advance(0.001)
