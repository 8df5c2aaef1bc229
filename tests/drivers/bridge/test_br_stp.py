"""802.1D between netstack bridges on the virtual clock: root election by bridge id, a
redundant link blocked, topology change and recovery when a link fails; BPDU codec."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netstack.api import Stack
from netstack.drivers.bridge.br_private import (BR_STATE_BLOCKING, BR_STATE_DISABLED,
                                                BR_STATE_FORWARDING)
from netstack.drivers.bridge.br_stp_bpdu import ConfigBpdu, decode, encode_config, encode_tcn
from netstack.packet.errors import ParseError

LOOP = """
ip netns add a
ip netns add b
ip -n a link add brA address 02:00:00:00:0a:00 type bridge stp_state 1 forward_delay 200 priority 4096 mcast_snooping 0
ip -n b link add brB address 02:00:00:00:0b:00 type bridge stp_state 1 forward_delay 200 mcast_snooping 0
ip -n a link add a1 address 02:00:00:00:0a:01 type veth peer name b1 netns b address 02:00:00:00:0b:01
ip -n a link add a2 address 02:00:00:00:0a:02 type veth peer name b2 netns b address 02:00:00:00:0b:02
ip -n a link set a1 master brA
ip -n a link set a2 master brA
ip -n b link set b1 master brB
ip -n b link set b2 master brB
ip -n a link set a1 up
ip -n a link set a2 up
ip -n b link set b1 up
ip -n b link set b2 up
ip -n a link set brA up
ip -n b link set brB up
"""


def _ports(s: Stack, ns: str, br: str) -> dict[str, int]:
    b = s.world.netns(ns).get(br).br
    return {p.dev.name: p.state for p in b.port_list}


def test_two_bridges_elect_root_and_block_the_loop() -> None:
    s = Stack()
    s.run_script(LOOP)
    s.advance(10.0)
    a = s.world.netns("a").get("brA").br
    b = s.world.netns("b").get("brB").br
    assert a.designated_root == a.bridge_id            # priority 4096 wins
    assert b.designated_root == a.bridge_id and b.root_port != 0
    assert b.root_path_cost == 2
    assert _ports(s, "a", "brA") == {"a1": BR_STATE_FORWARDING, "a2": BR_STATE_FORWARDING}
    # brB: root port via the lower designated port id (a1 = 0x8001), b2 blocks the loop
    assert _ports(s, "b", "brB") == {"b1": BR_STATE_FORWARDING, "b2": BR_STATE_BLOCKING}
    # a broadcast sent by brA reaches brB once, not in a loop
    cap = s.capture("b", "brB")
    na = s.world.netns("a")
    from netstack.core.dev import dev_queue_xmit
    pkt = s.world.new_packet(bytes.fromhex("ffffffffffff02000000aa00") + b"\x88\xb5"
                             + bytes(46))
    pkt.protocol = 0x88B5
    dev_queue_xmit(pkt, na.get("brA"))
    s.advance(1.0)
    assert len([f for f in cap if f.data[:6] == b"\xff" * 6]) == 1


def test_link_failure_unblocks_the_redundant_port() -> None:
    s = Stack()
    s.run_script(LOOP)
    s.advance(10.0)
    s.command("ip -n a link set a1 down")       # b1 loses carrier: brB re-elects
    s.advance(10.0)
    assert _ports(s, "b", "brB")["b1"] == BR_STATE_DISABLED
    assert _ports(s, "b", "brB")["b2"] == BR_STATE_FORWARDING
    b = s.world.netns("b").get("brB").br
    assert b.root_port == next(p.port_no for p in b.port_list if p.dev.name == "b2")


def test_bpdu_guard_disables_the_port() -> None:
    s = Stack()
    s.run_script(LOOP + "ip -n b link set b2 type bridge_slave guard on\n")
    s.advance(5.0)
    assert _ports(s, "b", "brB")["b2"] == BR_STATE_DISABLED


@given(st.booleans(), st.booleans(), st.binary(min_size=8, max_size=8),
       st.integers(0, 2**32 - 1), st.binary(min_size=8, max_size=8), st.integers(0, 0xFFFF),
       st.lists(st.integers(0, 255), min_size=4, max_size=4))
def test_config_bpdu_roundtrip(tc: bool, tca: bool, root: bytes, cost: int, bid: bytes,
                               port: int, secs: list[int]) -> None:
    ns = [x * 1_000_000_000 for x in secs]
    b = ConfigBpdu(tc, tca, root, cost, bid, port, *ns)
    assert decode(encode_config(b)) == b


@pytest.mark.parametrize("raw", [b"", b"\x00\x00", b"\x00\x01\x00\x00", b"\x00\x00\x00\x00",
                                 b"\x00\x00\x00\x05" + bytes(31)])
def test_bad_bpdus_are_parse_errors(raw: bytes) -> None:
    with pytest.raises(ParseError):
        decode(raw)
    assert decode(encode_tcn()) == "tcn"
