"""VLAN devices end to end through a veth: QinQ ping both ways with every TX offload
setting, QoS maps (skb priority ↔ PCP), PACKET_OTHERHOST for an unknown VID, captures that
show the tag as libpcap does, malformed tags counted as drops."""
from __future__ import annotations

import io

import pytest

from netstack.cli import run_command
from netstack.core.dev import dev_queue_xmit
from netstack.core.world import World
from netstack.ipv4.ping import ping
from netstack.packet.skb import PACKET_OTHERHOST
from netstack.packet.vlan import parse_vlan_stack

IPV4 = ["netstack.ipv4.af_inet"]


def sh(w: World, line: str, ns: str = "") -> str:
    out, err = io.StringIO(), io.StringIO()
    rc = run_command(w, line, out, err, net_name=ns)
    assert rc == 0, (line, err.getvalue())
    return out.getvalue()


def qinq_world(offload_a: bool = True, offload_b: bool = True) -> World:
    """h1 and h2 joined by a veth; on each end an 802.1ad S-VLAN 100 and on it a C-VLAN
    200 carrying 10.0.0.1/24 and 10.0.0.2/24."""
    w = World(subsystems=IPV4)
    for ns in ("h1", "h2"):
        sh(w, f"ip netns add {ns}")
    sh(w, "ip -n h1 link add e0 type veth peer name e0 netns h2")
    for ns, addr, off in (("h1", "10.0.0.1", offload_a), ("h2", "10.0.0.2", offload_b)):
        if not off:
            sh(w, f"ip netns exec {ns} ethtool -K e0 txvlan off tx-vlan-stag-hw-insert off")
            assert not {"tx-vlan-hw-insert", "tx-vlan-stag-hw-insert"} & w.netns(ns).get(
                "e0").features
        sh(w, f"ip -n {ns} link set e0 up")
        sh(w, f"ip -n {ns} link add link e0 name s100 type vlan protocol 802.1ad id 100")
        sh(w, f"ip -n {ns} link set s100 up")
        sh(w, f"ip -n {ns} link add link s100 name c200 type vlan id 200")
        sh(w, f"ip -n {ns} link set c200 up")
        sh(w, f"ip -n {ns} addr add {addr}/24 dev c200")
    return w


@pytest.mark.parametrize("off_a,off_b", [(True, True), (False, False), (True, False)])
def test_qinq_ping_both_ways_any_offload(off_a: bool, off_b: bool) -> None:
    w = qinq_world(off_a, off_b)
    h1, h2 = w.netns("h1"), w.netns("h2")
    wire: list[bytes] = []
    h2.add_rx_tap(h2.get("e0"), lambda p: wire.append(bytes(p.buf[p.mac_header:p.tail])))
    sk = ping(h1, "10.0.0.2", 7, 1, b"qinq")
    w.run_until_idle()
    assert sk.recvfrom() is not None
    # every frame on the wire into h2 carries S-tag 100 (802.1ad) then C-tag 200
    assert wire
    for f in wire:
        tags, etype, _ = parse_vlan_stack(f)
        assert [(t.tpid, t.vid) for t in tags] == [(0x88A8, 100), (0x8100, 200)]
        assert etype in (0x0800, 0x0806)
    assert h2.get("c200").stats.rx_packets >= 2   # ARP request + echo request
    assert h2.get("s100").stats.rx_packets == h2.get("c200").stats.rx_packets
    assert h1.get("c200").stats.tx_packets >= 2


def test_egress_and_ingress_qos_maps() -> None:
    w = World(subsystems=IPV4)
    sh(w, "ip link add p0 type veth peer name p1")
    sh(w, "ip link set p0 up")
    sh(w, "ip link set p1 up")
    sh(w, "ip link add link p0 name p05 type vlan id 5 egress-qos-map 3:6 7:1")
    sh(w, "ip link add link p1 name p15 type vlan id 5 ingress-qos-map 6:42 1:9")
    sh(w, "ip link set p05 up")
    sh(w, "ip link set p15 up")
    net = w.init_net
    got: list[tuple[int, int, bytes]] = []
    net.add_rx_tap(net.get("p15"), lambda p: got.append((p.priority, p.vlan_proto,
                                                        bytes(p.buf[p.mac_header:p.tail]))))
    wire: list[bytes] = []
    net.add_rx_tap(net.get("p1"), lambda p: wire.append(bytes(p.buf[p.mac_header:p.tail])))
    for prio in (3, 7, 0):
        p = w.new_packet(b"\xff" * 6 + net.get("p05").address + b"\x88\xb5" + bytes(46))
        p.priority = prio
        p.protocol = 0x88B5
        dev_queue_xmit(p, net.get("p05"))
    w.run_until_idle()
    assert [int.from_bytes(f[14:16], "big") for f in wire] == [(6 << 13) | 5, (1 << 13) | 5, 5]
    assert [g[0] for g in got] == [42, 9, 0]
    # on the vlan device the tag is gone (consumed by vlan_do_receive)
    assert all(g[1] == 0 and g[2][12:14] == b"\x88\xb5" for g in got)


def test_unknown_vid_is_otherhost_and_ip_drops_it() -> None:
    w = World(subsystems=IPV4)
    sh(w, "ip link add p0 type veth peer name p1")
    sh(w, "ip link set p0 up")
    sh(w, "ip link set p1 up")
    sh(w, "ip link add link p1 name p15 type vlan id 5")
    sh(w, "ip link set p15 up")
    net = w.init_net
    seen: list[tuple[int, bytes]] = []
    b = net.get("p1")
    net.add_rx_tap(b, lambda p: seen.append((p.pkt_type, bytes(p.buf[p.mac_header:p.tail]))))
    frame = b.address + net.get("p0").address + b"\x81\x00\x00\x09\x08\x00" + bytes(40)
    p = w.new_packet(frame)
    dev_queue_xmit(p, net.get("p0"))
    w.run_until_idle()
    assert seen == [(0, frame)]           # the capture shows the tag, as libpcap does
    assert p.pkt_type == PACKET_OTHERHOST  # then check_vlan_id marked it
    assert p.vlan_proto == 0
    assert net.get("p15").stats.rx_packets == 0
    assert net.drops.as_dict().get("OTHERHOST", 0) == 1


def test_priority_tagged_vid0_over_known_inner_vlan() -> None:
    """An 802.1p tag (VID 0) outside a C-tag: stripped, and the inner VLAN is found."""
    w = World(subsystems=IPV4)
    sh(w, "ip link add p0 type veth peer name p1")
    sh(w, "ip link set p0 up")
    sh(w, "ip link set p1 up")
    sh(w, "ip link add link p1 name p17 type vlan id 7")
    sh(w, "ip link set p17 up")
    net = w.init_net
    b = net.get("p1")
    frame = (b.address + net.get("p0").address + b"\x81\x00\x60\x00" + b"\x81\x00\x00\x07"
             + b"\x88\xb5" + bytes(40))
    dev_queue_xmit(w.new_packet(frame), net.get("p0"))
    w.run_until_idle()
    assert net.get("p17").stats.rx_packets == 1


def test_capture_on_lower_device_shows_the_tag_and_truncated_tag_is_a_drop() -> None:
    w = World(subsystems=IPV4)
    sh(w, "ip link add p0 type veth peer name p1")
    sh(w, "ip link set p0 up")
    sh(w, "ip link set p1 up")
    sh(w, "ip link add link p0 name p05 type vlan id 5")
    sh(w, "ip link set p05 up")
    net = w.init_net
    tx: list[bytes] = []
    net.add_tx_tap(net.get("p0"), lambda p: tx.append(p.bytes()))
    f = b"\xff" * 6 + net.get("p0").address + b"\x88\xb5" + bytes(46)
    p = w.new_packet(f)
    p.protocol = 0x88B5
    dev_queue_xmit(p, net.get("p05"))
    w.run_until_idle()
    # veth keeps the tag out of band (tx-vlan-hw-insert); the capture shows it in place
    assert tx == [f[:12] + b"\x81\x00\x00\x05" + f[12:]]
    before = net.drops.as_dict().get("NOT_SPECIFIED", 0)
    bad = w.new_packet(net.get("p1").address + net.get("p0").address + b"\x81\x00\x00")
    dev_queue_xmit(bad, net.get("p0"))
    w.run_until_idle()
    assert net.drops.as_dict().get("NOT_SPECIFIED", 0) == before + 1


def test_lower_device_events_reach_the_vlan() -> None:
    w = World(subsystems=IPV4)
    sh(w, "ip link add p0 type veth peer name p1")
    sh(w, "ip link add link p0 name p05 type vlan id 5")
    out, err = io.StringIO(), io.StringIO()
    assert run_command(w, "ip link set p05 up", out, err) == 2
    assert err.getvalue() == "RTNETLINK answers: Network is down\n"
    sh(w, "ip link set p0 up")
    sh(w, "ip link set p05 up")
    net = w.init_net
    assert net.get("p05").operstate() == "LOWERLAYERDOWN"   # peer b still down
    sh(w, "ip link set p1 up")
    assert net.get("p05").operstate() == "UP"
    sh(w, "ip link set p0 down")
    assert not net.get("p05").flags & 1
    sh(w, "ip link set p0 up")
    assert net.get("p05").flags & 1                         # vlan_device_event NETDEV_UP
    sh(w, "ip link set p0 mtu 1400")
    assert net.get("p05").mtu == 1400
    sh(w, "ip link set p0 address 02:00:00:00:00:aa")
    assert net.get("p05").address == bytes.fromhex("0200000000aa")
    sh(w, "ip link del p0")
    assert net.get("p05") is None


def test_reorder_hdr_off_keeps_the_tag_in_the_frame_on_receive() -> None:
    """vlan_do_receive without VLAN_FLAG_REORDER_HDR: the tag is written back after the
    MAC addresses (mac_len 18), data stays on the payload, the protocol is the inner one."""
    w = World(subsystems=IPV4)
    sh(w, "ip link add p0 type veth peer name p1")
    sh(w, "ip link set p0 up")
    sh(w, "ip link set p1 up")
    sh(w, "ip link add link p1 name p15 type vlan id 5 reorder_hdr off")
    sh(w, "ip link set p15 up")
    net = w.init_net
    got: list[tuple[int, int, bytes, bytes]] = []
    net.add_rx_tap(net.get("p15"), lambda p: got.append(
        (p.protocol, p.mac_len(), bytes(p.buf[p.mac_header:p.tail]), p.bytes())))
    frame = (net.get("p1").address + net.get("p0").address + b"\x81\x00\xa0\x05\x88\xb5"
             + bytes(range(40)))
    dev_queue_xmit(w.new_packet(frame), net.get("p0"))
    w.run_until_idle()
    assert got == [(0x88B5, 18, frame, bytes(range(40)))]


def test_batch_through_vlan_rings_one_doorbell_on_the_lower_device() -> None:
    w = World(subsystems=IPV4)
    sh(w, "ip link add p0 type veth peer name p1")
    sh(w, "ip link set p0 up")
    sh(w, "ip link set p1 up")
    sh(w, "ip link add link p0 name p05 type vlan id 5")
    sh(w, "ip link set p05 up")
    net = w.init_net
    p0, p05 = net.get("p0"), net.get("p05")
    before = p0.doorbells
    pkts = []
    for i in range(5):
        p = w.new_packet(b"\xff" * 6 + p05.address + b"\x88\xb5" + bytes([i]) * 46)
        p.protocol = 0x88B5
        pkts.append(p)
    from netstack.core.dev import dev_queue_xmit_list
    dev_queue_xmit_list(p05, pkts)
    w.run_until_idle()
    assert p0.doorbells == before + 1
    assert p05.stats.tx_packets == 5 and net.get("p1").stats.rx_packets == 5


def test_loose_binding_keeps_the_vlan_up() -> None:
    w = World(subsystems=IPV4)
    sh(w, "ip link add p0 type veth peer name p1")
    sh(w, "ip link add link p0 name p05 type vlan id 5 loose_binding on")
    sh(w, "ip link set p05 up")          # allowed although p0 is down
    sh(w, "ip link set p0 up")
    sh(w, "ip link set p0 down")
    assert w.init_net.get("p05").flags & 1


def test_traced_qinq_ping_shows_both_vlan_rounds() -> None:
    lines: list[str] = []
    w = World(subsystems=IPV4, trace=True, trace_sink=lines.append)
    for ns in ("h1", "h2"):
        sh(w, f"ip netns add {ns}")
    sh(w, "ip -n h1 link add e0 type veth peer name e0 netns h2")
    for ns, addr in (("h1", "10.0.0.1"), ("h2", "10.0.0.2")):
        sh(w, f"ip -n {ns} link set e0 up")
        sh(w, f"ip -n {ns} link add link e0 name s100 type vlan protocol 802.1ad id 100")
        sh(w, f"ip -n {ns} link add link s100 name c200 type vlan id 200")
        sh(w, f"ip -n {ns} link set s100 up")
        sh(w, f"ip -n {ns} link set c200 up")
        sh(w, f"ip -n {ns} addr add {addr}/24 dev c200")
    sk = ping(w.netns("h1"), "10.0.0.2", 9, 1, b"t")
    w.run_until_idle()
    assert sk.recvfrom() is not None
    text = "\n".join(lines)
    assert "vid=100 dev=s100" in text and "vid=200 dev=c200" in text


_FUZZ: dict[str, World] = {}


def _fuzz_world() -> World:
    if "w" not in _FUZZ:
        w = World(subsystems=IPV4)
        sh(w, "ip link add p0 type veth peer name p1")
        sh(w, "ip link set p0 up")
        sh(w, "ip link set p1 up")
        sh(w, "ip link add link p1 name s1 type vlan protocol 802.1ad id 1")
        sh(w, "ip link add link s1 name c2 type vlan id 2 reorder_hdr off")
        sh(w, "ip link add link p1 name z0 type vlan id 0")
        for d in ("s1", "c2", "z0"):
            sh(w, f"ip link set {d} up")
        sh(w, "ip addr add 10.9.0.1/24 dev c2")
        _FUZZ["w"] = w
    return _FUZZ["w"]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_tpid = st.sampled_from([b"\x81\x00", b"\x88\xa8", b"\x08\x00", b"\x08\x06", b"\x00\x10"])
_tci = st.sampled_from([b"\x00\x00", b"\x00\x01", b"\x00\x02", b"\xe0\x02", b"\x0f\xff"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_tpid, _tci), max_size=4), st.binary(max_size=30),
       st.booleans())
def test_malformed_and_stacked_tags_never_raise(tags: list[tuple[bytes, bytes]],
                                               tail: bytes, cut: bool) -> None:
    w = _fuzz_world()
    net = w.init_net
    frame = net.get("p1").address + net.get("p0").address + b"".join(a + b for a, b in tags)
    frame += tail
    if cut and len(frame) > 14:
        frame = frame[:-(len(frame) - 14) // 2 or None]
    if len(frame) < 14:
        frame += bytes(14 - len(frame))
    dev_queue_xmit(w.new_packet(frame), net.get("p0"))
    w.run_until_idle()
