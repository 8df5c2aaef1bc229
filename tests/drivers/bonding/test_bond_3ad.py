"""802.3ad: the LACPDU byte layout (include/net/bond_3ad.h ``struct lacpdu``), two netstack
bonds converging to collecting+distributing over veths, the rx machine's timeouts on the
virtual clock (bond_3ad.c ``ad_rx_machine``: current_while 3 s fast / 90 s slow, then 3 s
in EXPIRED before DEFAULTED), aggregator selection and malformed PDUs."""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core.dev import dev_queue_xmit
from netstack.drivers.bonding import bond_3ad as ad
from netstack.packet.errors import ParseError

C_D = (ad.LACP_STATE_LACP_ACTIVITY | ad.LACP_STATE_AGGREGATION | ad.LACP_STATE_SYNCHRONIZATION
       | ad.LACP_STATE_COLLECTING | ad.LACP_STATE_DISTRIBUTING)


def test_lacpdu_layout() -> None:
    pdu = ad.Lacpdu(actor_system_priority=0x1234, actor_system=bytes.fromhex("0a0b0c0d0e0f"),
                    actor_key=0x0F, actor_port_priority=0xFF, actor_port=2, actor_state=0x3F,
                    partner_system_priority=0xFFFF, partner_system=bytes(6), partner_key=1,
                    partner_port_priority=0xFF, partner_port=1, partner_state=0x01)
    b = pdu.build()
    assert len(b) == 110
    assert b[0:4] == bytes([1, 1, 1, 0x14])              # subtype, version, actor TLV
    assert b[4:6] == b"\x12\x34" and b[6:12] == bytes.fromhex("0a0b0c0d0e0f")
    assert b[12:14] == b"\x00\x0f" and b[14:16] == b"\x00\xff" and b[16:18] == b"\x00\x02"
    assert b[18] == 0x3F and b[19:22] == bytes(3)
    assert b[22:24] == bytes([2, 0x14])                  # partner TLV
    assert b[24:26] == b"\xff\xff" and b[38] == 0x01
    assert b[42:46] == bytes([3, 0x10, 0, 0])            # collector TLV, max delay 0
    assert b[46:58] == bytes(12) and b[58:60] == bytes(2) and b[60:] == bytes(50)
    assert ad.Lacpdu.parse(b) == pdu


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=110, max_size=140))
def test_parse_build_roundtrip_of_any_pdu(data: bytes) -> None:
    pdu = ad.Lacpdu.parse(data)
    again = pdu.build()
    # everything but the reserved octets survives
    keep = [i for i in range(110) if not (19 <= i < 22 or 39 <= i < 42 or 46 <= i < 58
                                          or i >= 60)]
    assert bytes(again[i] for i in keep) == bytes(data[i] for i in keep)
    assert ad.Lacpdu.parse(again) == pdu


def test_short_pdu_is_a_parse_error() -> None:
    with pytest.raises(ParseError) as e:
        ad.Lacpdu.parse(bytes(109))
    assert e.value.reason == "PKT_TOO_SMALL"


def _state(bed, ns: str, dev: str) -> int:  # type: ignore[no-untyped-def]
    return bed.dev(dev, ns).master.slave_of(bed.dev(dev, ns)).ad_port.actor_oper_port_state


def test_two_bonds_converge_and_lacpdus_are_byte_exact(bed) -> None:  # type: ignore[no-untyped-def]
    bed.lacp_pair()
    tx = bed.capture_tx("a1", "a")
    t_cd = None
    for _ in range(40):
        bed.world.advance(0.1)
        if t_cd is None and all(_state(bed, ns, d) == C_D | ad.LACP_STATE_LACP_TIMEOUT
                                for ns, d in (("a", "a1"), ("a", "a2"), ("b", "b1"),
                                              ("b", "b2"))):
            t_cd = bed.world.clock.now
    assert t_cd is not None
    # WAITING holds AD_AGGREGATE_WAIT_TIME (2 s) before ATTACHED
    assert 2.0e9 <= t_cd <= 3.0e9
    bond_a, bond_b = bed.dev("bond0", "a"), bed.dev("bond0", "b")
    last = tx[-1]
    assert len(last) == 124
    assert last[0:6] == bytes.fromhex("0180c2000002")
    assert last[6:12] == bytes.fromhex("020000000a01")   # the slave's permanent MAC
    assert last[12:14] == b"\x88\x09"
    pdu = ad.Lacpdu.parse(last[14:])
    assert pdu.actor_system == bond_a.address and pdu.partner_system == bond_b.address
    assert pdu.actor_key == pdu.partner_key == 15          # 10 Gb/s (7 << 1) | full duplex
    assert pdu.actor_port == 1 and pdu.partner_port == 1
    assert pdu.actor_state == pdu.partner_state == C_D | ad.LACP_STATE_LACP_TIMEOUT
    # fast rate: one periodic LACPDU a second once converged
    n = len(tx)
    bed.world.advance(3)
    assert len(tx) - n == 3
    js = json.loads(bed.ok("ip -n a -d -j link show bond0"))[0]["linkinfo"]["info_data"]
    assert js["ad_info"] == {"aggregator": 1, "num_ports": 2, "actor_key": 15,
                             "partner_key": 15,
                             "partner_mac": ":".join(f"{x:02x}" for x in bond_b.address)}
    s = json.loads(bed.ok("ip -n a -d -j link show a2"))[0]["linkinfo"]["info_slave_data"]
    assert s["ad_aggregator_id"] == 1 and s["ad_actor_oper_port_state"] == 63
    assert s["ad_actor_oper_port_state_str"] == ["active", "short_timeout", "aggregating",
                                                 "in_sync", "collecting", "distributing"]


def _last_rx_time(bed, dev: str, ns: str) -> list[int]:  # type: ignore[no-untyped-def]
    times: list[int] = []
    n = bed.world.netns(ns)
    n.add_rx_tap(n.devices[dev], lambda p: times.append(bed.world.clock.now)
                 if p.protocol == 0x8809 else None)
    return times


@pytest.mark.parametrize("rate,current_while", [("fast", 3.0), ("slow", 90.0)])
def test_partner_silence_expires_then_defaults(bed, rate, current_while) -> None:  # type: ignore[no-untyped-def]
    bed.lacp_pair(n=1, opts=f"lacp_rate {rate}", opts_b="lacp_rate fast")
    times = _last_rx_time(bed, "a1", "a")
    bed.world.advance(4)
    assert _state(bed, "a", "a1") & C_D == C_D
    bed.ok("ip -n b link set bond0 down")       # the partner stops sending LACPDUs
    last = times[-1]
    port = bed.dev("bond0", "a").slaves[0].ad_port
    bed.world.run_until(last + int((current_while - 0.15) * 1e9))
    assert port.sm_rx_state == ad.AD_RX_CURRENT
    bed.world.run_until(last + int((current_while + 0.15) * 1e9))
    assert port.sm_rx_state == ad.AD_RX_EXPIRED
    assert port.actor_oper_port_state & ad.LACP_STATE_EXPIRED
    # EXPIRED: partner sync cleared, partner assumed fast (not active since 6.17);
    # mux leaves C+D
    assert not port.partner_oper.port_state & ad.LACP_STATE_SYNCHRONIZATION
    assert port.partner_oper.port_state & ad.LACP_STATE_LACP_TIMEOUT
    bed.world.run_until(last + int((current_while + 3.15) * 1e9))
    assert port.sm_rx_state == ad.AD_RX_DEFAULTED
    st_ = port.actor_oper_port_state
    assert st_ & ad.LACP_STATE_DEFAULTED and not st_ & ad.LACP_STATE_EXPIRED
    assert port.partner_oper == port.partner_admin
    text = bed.ok("cat /proc/net/bonding/bond0", "a")
    # the partner_admin template's port_state is 0 since 6.17 (ad_initialize_port)
    assert "    oper key: 1\n    port priority: 255\n    port number: 1\n    port state: 0\n" \
        in text


def test_min_links_drives_carrier(bed) -> None:  # type: ignore[no-untyped-def]
    bed.lacp_pair(opts="lacp_rate fast min_links 2")
    bed.world.advance(4)
    a = bed.dev("bond0", "a")
    assert a.carrier_ok()
    bed.ok("ip -n b link set b2 down")
    bed.world.advance(0.3)
    assert not a.carrier_ok()
    assert "MII Status: down" in bed.ok("cat /proc/net/bonding/bond0", "a").split(
        "Slave Interface")[0]
    bed.ok("ip -n b link set b2 up")
    bed.world.advance(4)
    assert a.carrier_ok()


def test_xor_and_3ad_spread_by_hash_over_collecting_ports(bed) -> None:  # type: ignore[no-untyped-def]
    bed.lacp_pair(opts="lacp_rate fast xmit_hash_policy layer3+4")
    bed.world.advance(4)
    a = bed.dev("bond0", "a")
    assert [s.dev.name for s in a.usable_slaves] == ["a1", "a2"]
    bed.ok("ip -n b link set b1 down")
    bed.world.advance(0.3)
    assert [s.dev.name for s in a.usable_slaves] == ["a2"]


def test_ad_select_count_prefers_more_ports(bed) -> None:  # type: ignore[no-untyped-def]
    """Two partners: a1 to bond b (1 port), a2+a3 to bond c (2 ports); count picks c."""
    w = bed
    w.ok("ip netns add a")
    for ns in ("b", "c"):
        w.ok(f"ip netns add {ns}")
        w.ok(f"ip -n {ns} link add bond0 type bond mode 802.3ad lacp_rate fast")
    w.ok("ip -n a link add bond0 type bond mode 802.3ad lacp_rate fast ad_select count")
    for i, ns in ((1, "b"), (2, "c"), (3, "c")):
        w.ok(f"ip -n a link add a{i} type veth peer name p{i} netns {ns}")
        w.ok(f"ip -n a link set a{i} master bond0")
        w.ok(f"ip -n {ns} link set p{i} master bond0")
    for ns in ("a", "b", "c"):
        w.ok(f"ip -n {ns} link set bond0 up")
    w.world.advance(5)
    a = w.dev("bond0", "a")
    act = a.ad.active_agg()
    assert act is not None and act.partner_system == w.dev("bond0", "c").address
    assert sorted(s.dev.name for s in a.usable_slaves) == ["a2", "a3"]


def _one_port_bond(bed) -> None:  # type: ignore[no-untyped-def]
    """An 802.3ad bond0 in namespace a with one port a1, whose veth peer b1 (namespace b,
    up) is where the tests inject LACPDUs/markers."""
    bed.ok("ip netns add a")
    bed.ok("ip netns add b")
    bed.ok("ip -n a link add bond0 type bond mode 802.3ad")
    bed.ok("ip -n a link add a1 type veth peer name b1 netns b")
    bed.ok("ip -n a link set a1 master bond0")
    bed.ok("ip -n a link set bond0 up")
    bed.ok("ip -n b link set b1 up")


def test_malformed_lacpdus_are_counted_drops(bed) -> None:  # type: ignore[no-untyped-def]
    _one_port_bond(bed)
    b1 = bed.dev("b1", "b")
    rnd = __import__("random").Random(5)
    net_a = bed.world.netns("a")
    for n in list(range(0, 112)) + [rnd.randrange(0, 300) for _ in range(50)]:
        body = bytes([rnd.choice([1, 2, 3, 9])]) + os.urandom(max(0, n - 1)) if n else b""
        frame = bytes.fromhex("0180c2000002") + b1.address + b"\x88\x09" + body
        pkt = bed.world.new_packet(frame)
        dev_queue_xmit(pkt, b1)
        bed.world.run_until_idle()
    st_ = bed.dev("bond0", "a").ad.stats
    assert st_.lacpdu_illegal_rx > 0
    # short PDUs are not consumed: they reach the bond and no protocol takes 0x8809
    assert net_a.drops["UNHANDLED_PROTO"] >= st_.lacpdu_illegal_rx
    bed.world.advance(2)


def test_marker_information_gets_a_response(bed) -> None:  # type: ignore[no-untyped-def]
    _one_port_bond(bed)
    got = bed.capture_rx("b1", "b")
    b1 = bed.dev("b1", "b")
    marker = bytes([2, 1, 1, 0x10]) + b"\x00\x07" + b1.address + b"\x00\x00\x00\x2a" + \
        bytes(2) + bytes([0, 0]) + bytes(90)
    dev_queue_xmit(bed.world.new_packet(bytes.fromhex("0180c2000002") + b1.address
                                        + b"\x88\x09" + marker), b1)
    bed.world.run_until_idle()
    resp = [f for f in got if f[14] == 2]
    assert len(resp) == 1
    r = resp[0]
    assert len(r) == 124 and r[6:12] == bed.dev("a1", "a").address
    assert r[14:] == marker[:2] + b"\x02" + marker[3:]


def test_release_moves_ports_and_sends_a_last_lacpdu(bed) -> None:  # type: ignore[no-untyped-def]
    bed.lacp_pair(n=3)
    bed.world.advance(4)
    rx = bed.capture_rx("b1", "b")
    bed.ok("ip -n a link set a1 nomaster")
    last = ad.Lacpdu.parse(rx[0][14:])
    # sync, collecting, distributing and aggregation cleared (bond_3ad_unbind_slave)
    assert last.actor_state == ad.LACP_STATE_LACP_ACTIVITY | ad.LACP_STATE_LACP_TIMEOUT
    a = bed.dev("bond0", "a")
    # a1's aggregator (id 1) held a2/a3 too: they moved to the first free one (a2's, id 2)
    assert {s.dev.name: s.ad_port.aggregator.aggregator_identifier for s in a.slaves} == \
        {"a2": 2, "a3": 2}
    bed.world.advance(4)
    assert [s.dev.name for s in a.usable_slaves] == ["a2", "a3"]
    assert a.carrier_ok()


def test_lacp_rate_follows_the_option(bed) -> None:  # type: ignore[no-untyped-def]
    bed.lacp_pair(n=1, opts="lacp_rate slow", opts_b="lacp_rate slow", up=False)
    port = bed.dev("bond0", "a").slaves[0].ad_port
    assert not port.actor_oper_port_state & ad.LACP_STATE_LACP_TIMEOUT
    bed.ok("ip -n a link set bond0 type bond lacp_rate fast")
    assert port.actor_oper_port_state & ad.LACP_STATE_LACP_TIMEOUT
    bed.ok("ip -n a link set bond0 up")
    bed.ok("ip -n b link set bond0 up")
    bed.world.advance(5)
    # a asks for fast: b sends every second; b asks for slow: a sends every 30 s
    rx_a = bed.capture_rx("a1", "a")
    rx_b = bed.capture_rx("b1", "b")
    bed.world.advance(10)
    assert 9 <= len(rx_a) <= 11 and len(rx_b) <= 1


def test_bond_delete_releases_slaves(bed) -> None:  # type: ignore[no-untyped-def]
    bed.lacp_pair(n=2)
    bed.world.advance(4)
    bed.ok("ip -n a link del bond0")
    a1 = bed.dev("a1", "a")
    assert a1.master is None and a1.rx_handler is None and a1.address == \
        bytes.fromhex("020000000a01")
    bed.world.advance(5)
