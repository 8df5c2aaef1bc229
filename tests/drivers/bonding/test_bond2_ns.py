"""The IPv6 NS monitor (bond_main.c ``bond_ns_send_all``/``bond_ns_send``,
``bond_rcv_validate`` → ``bond_na_rcv`` → ``bond_validate_na``) and the
``ns_ip6_target`` option (bond_netlink.c / bond_options.c), on the virtual clock."""
from __future__ import annotations

import json
import struct

import pytest

from netstack.drivers.bonding.bond_main import BOND_LINK_UP
from netstack.drivers.bonding.bond_ns import na_rcv, ns_create, solicited_node

MS = 1_000_000
T9 = bytes.fromhex("20010db8000000000000000000000009")
B1 = bytes.fromhex("20010db8000000000000000000000001")


def _csum(data: bytes) -> int:
    """RFC 1071 one's complement sum, written independently of netstack's codec."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _ns_frame(src_mac: bytes, saddr: bytes, target: bytes, sllao: bool) -> bytes:
    """An NS as RFC 4861 §4.3 lays it out, to the target's solicited-node group."""
    dst = bytes.fromhex("ff0200000000000000000001ff") + target[13:]
    body = bytes(4) + target + ((b"\x01\x01" + src_mac) if sllao else b"")
    icmp = bytes((135, 0, 0, 0)) + body
    pseudo = saddr + dst + struct.pack("!I", len(icmp)) + b"\0\0\0\x3a"
    c = _csum(pseudo + icmp)
    icmp = icmp[:2] + struct.pack("!H", c) + icmp[4:]
    ip6 = bytes.fromhex("60000000") + struct.pack("!H", len(icmp)) + b"\x3a\xff" + saddr + dst
    return b"\x33\x33" + dst[12:] + src_mac + b"\x86\xdd" + ip6 + icmp


def _ab(bed, opts: str, n: int = 2) -> None:  # type: ignore[no-untyped-def]
    bed.ok("ip netns add s")
    bed.ok(f"ip link add bond0 type bond mode active-backup arp_interval 100 {opts}")
    for i in range(1, n + 1):
        bed.ok(f"ip link add e{i} address 02:00:00:00:00:0{i} type veth peer name p{i} "
               f"netns s address 02:00:00:00:01:0{i}")
        bed.ok(f"ip link set e{i} master bond0")
        bed.ok(f"ip -n s link set p{i} up")


def _ns_only(frames: list[bytes], target: bytes = T9) -> list[bytes]:
    """The NS probes for ``target`` (the bond's own DAD solicitations left aside)."""
    return [f for f in frames if f[12:14] == b"\x86\xdd" and f[54] == 135
            and f[62:78] == target]


def test_solicited_node_and_ns_body() -> None:
    assert solicited_node(T9) == bytes.fromhex("ff0200000000000000000001ff000009")
    mac = bytes.fromhex("020000000001")
    assert ns_create(mac, T9, B1) == bytes(4) + T9 + b"\x01\x01" + mac
    assert ns_create(mac, T9, bytes(16)) == bytes(4) + T9


def test_ns_probe_bytes_and_target_keeps_the_link_up(bed46) -> None:  # type: ignore[no-untyped-def]
    bed = bed46
    _ab(bed, "ns_ip6_target 2001:db8::9 arp_validate active")
    bed.ok("ip -n s addr add 2001:db8::9/64 dev p1 nodad")
    bed.ok("ip addr add 2001:db8::1/64 dev bond0 nodad")
    bed.ok("ip link set bond0 up")
    rx = bed.capture_rx("p1", "s")
    bond = bed.dev("bond0")
    bed.world.run_until(2000 * MS)
    ns = _ns_only(rx)
    # one NS per interval on the active slave: from the bond's address, with the slave's
    # MAC in the source link-layer option, hop limit 255, to ff02::1:ff00:9
    assert ns and ns[0] == _ns_frame(bed.dev("e1").address, B1, T9, True)
    assert 15 <= len(ns) <= 21
    assert bond.curr_active.dev.name == "e1" and bond.slaves[0].link == BOND_LINK_UP
    assert bond.carrier_ok()
    # the target disappears: no validated NA any more → the active slave goes down
    bed.ok("ip -n s addr del 2001:db8::9/64 dev p1")
    # sampled: the peer's MLD reports after the delete (net/ipv6/mcast.c, random times)
    # are traffic a down backup slave counts, as on Linux, and may bring it back later
    down = False
    for t in range(2010, 3001, 10):
        bed.world.run_until(t * MS)
        down = down or bond.slaves[0].link != BOND_LINK_UP
    assert down


def test_without_validation_any_traffic_counts_and_no_route_sends_from_any(bed46) -> None:  # type: ignore[no-untyped-def]
    """No IPv6 address on the bond: ip6_route_output fails → NS from :: without the
    source link-layer option ("try to send arp probe to generate any traffic")."""
    bed = bed46
    _ab(bed, "ns_ip6_target 2001:db8::9", n=1)
    bed.ok("ip link set bond0 up")
    rx = bed.capture_rx("p1", "s")
    bed.world.run_until(500 * MS)
    ns = _ns_only(rx)
    assert ns and ns[0] == _ns_frame(bed.dev("e1").address, bytes(16), T9, False)
    # nothing answers :: solicitations: rx silence takes the slave out (it then cycles
    # through BACK as the probe slave) and the carrier off
    bond = bed.dev("bond0")
    # sampled: the peer's own IPv6 traffic (MLD reports, DAD, RS at random times) counts
    # as rx here, as on Linux, and may bring the slave back for a while
    seen = False
    for t in range(510, 1501, 10):
        bed.world.run_until(t * MS)
        seen = seen or (bond.slaves[0].link != BOND_LINK_UP and not bond.carrier_ok())
    assert seen
    assert bond.slaves[0].link_failure_count >= 1


def test_route_through_another_device_skips_the_target(bed46) -> None:  # type: ignore[no-untyped-def]
    bed = bed46
    _ab(bed, "ns_ip6_target 2001:db8:5::9", n=1)
    bed.ok("ip link add d0 type dummy")
    bed.ok("ip link set d0 up")
    bed.ok("ip addr add 2001:db8:5::1/64 dev d0 nodad")
    bed.ok("ip link set bond0 up")
    rx = bed.capture_rx("p1", "s")
    bed.world.run_until(500 * MS)
    assert _ns_only(rx, bytes.fromhex("20010db8000500000000000000000009")) == []


def _na(src: bytes, dst: bytes, typ: int = 136) -> bytes:
    icmp = bytes((typ, 0, 0, 0)) + bytes(4) + src
    return bytes.fromhex("60000000") + struct.pack("!H", len(icmp)) + b"\x3a\xff" + src + \
        dst + icmp


class _Pkt:
    def __init__(self, data: bytes, pkt_type: int = 0) -> None:
        self.buf = bytearray(data)
        self.data = 0
        self.tail = len(data)
        self.pkt_type = pkt_type


def test_bond_validate_na_rules(bed46) -> None:  # type: ignore[no-untyped-def]
    bed = bed46
    _ab(bed, "ns_ip6_target 2001:db8::9 arp_validate all")
    bed.ok("ip addr add 2001:db8::1/64 dev bond0 nodad")
    bed.ok("ip link set bond0 up")
    bed.world.run_until(50 * MS)
    bond = bed.dev("bond0")
    act = bond.curr_active
    bed.world.run_until(1000 * MS)
    now = bed.world.clock.now
    other = bytes.fromhex("20010db8000000000000000000000077")
    for pkt in (_Pkt(_na(other, B1)),                   # source not a target
                _Pkt(_na(T9, other)),                   # destination not ours
                _Pkt(_na(bytes(16), B1)),               # unspecified source
                _Pkt(_na(T9, B1), pkt_type=3),          # PACKET_OTHERHOST
                _Pkt(_na(T9, B1, typ=128)),             # an echo request
                _Pkt(_na(T9, B1)[:47])):                # truncated: not an exception
        na_rcv(bond, pkt, act)  # type: ignore[arg-type]
        assert act.last_rx < now
    na_rcv(bond, _Pkt(_na(T9, B1)), act)  # type: ignore[arg-type]
    assert act.last_rx == now and act.target_last_arp_rx[0] == now
    bed.world.run_until(1100 * MS)
    na_rcv(bond, _Pkt(_na(T9, bytes.fromhex("ff020000000000000000000000000001"), typ=135)),
           act)  # type: ignore[arg-type]
    assert act.last_rx == bed.world.clock.now


@pytest.mark.parametrize("value", ["::", "::1", "ff02::1", "2001:db8::9,2001:db8::9"])
def test_bad_targets_are_invalid_option_values(bed, value) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = bed.run(f"ip link add b0 type bond ns_ip6_target {value}")
    assert (rc, out, err) == (2, "", "Error: invalid option value.\n")


def test_ns_ip6_target_list_output_and_clear(bed) -> None:  # type: ignore[no-untyped-def]
    many = ",".join(f"2001:db8::{i:x}" for i in range(1, 19))
    bed.ok(f"ip link add b0 type bond arp_interval 100 ns_ip6_target {many}")
    js = json.loads(bed.ok("ip -d -j link show b0"))[0]["linkinfo"]["info_data"]
    # iproute2 sends at most BOND_MAX_NS_TARGETS (16)
    assert js["ns_ip6_target"] == [f"2001:db8::{i:x}" for i in range(1, 17)]
    text = bed.ok("ip -d link show b0")
    assert " arp_missed_max 2 ns_ip6_target 2001:db8::1,2001:db8::2," in text
    assert ",2001:db8::10 arp_validate none " in text
    proc = bed.ok("cat /proc/net/bonding/b0")
    assert "NS IPv6 target/s (xx::xx form): 2001:db8::1, 2001:db8::2, 2001:db8::3," in proc
    bed.ok("ip link set b0 type bond ns_ip6_target")
    js = json.loads(bed.ok("ip -d -j link show b0"))[0]["linkinfo"]["info_data"]
    assert "ns_ip6_target" not in js
    assert "NS IPv6 target/s (xx::xx form):\n" in bed.ok("cat /proc/net/bonding/b0")


def test_ns_ip6_target_parse_errors(bed) -> None:  # type: ignore[no-untyped-def]
    assert bed.run("ip link add b0 type bond ns_ip6_target zzz") == (
        1, "", 'Error: inet6 address is expected rather than "zzz".\n')
    assert bed.run("ip link add b0 type bond ns_ip6_target 2001:db8::1,10.0.0.1") == (
        1, "", 'Error: inet6 address is expected rather than "10.0.0.1".\n')
    assert "b0" not in bed.world.netns("").devices


def test_use_carrier_is_obsolete(bed) -> None:  # type: ignore[no-untyped-def]
    """6.18 ("bonding: Remove support for use_carrier"): only 1 is accepted, checked in
    bond_changelink before the option machinery (so in every mode, up or down)."""
    assert bed.run("ip link add b0 type bond use_carrier 0") == (
        2, "", "Error: option obsolete, use_carrier cannot be disabled.\n")
    bed.ok("ip link add b0 type bond mode 802.3ad use_carrier 1")
    bed.ok("ip link set b0 up")
    assert bed.run("ip link set b0 type bond use_carrier 0")[0] == 2
    js = json.loads(bed.ok("ip -d -j link show b0"))[0]["linkinfo"]["info_data"]
    assert js["use_carrier"] == 1


def test_arp_validate_filter_counts_ipv6_frames_on_unvalidated_slaves(bed46) -> None:  # type: ignore[no-untyped-def]
    """bond_rcv_validate: with filter_active a slave in backup state (not validated)
    still takes any ARP *or IPv6* frame as traffic, and nothing else."""
    bed = bed46
    _ab(bed, "ns_ip6_target 2001:db8::9 arp_validate filter_active")
    bed.ok("ip link set bond0 up")
    bed.world.run_until(500 * MS)
    bond = bed.dev("bond0")
    backup = bond.slaves[1]
    bond.set_slave_inactive(backup)
    before = backup.last_rx
    v4 = _Pkt(bytes(48))
    v4.protocol = 0x0800  # type: ignore[attr-defined]
    bond._rcv_validate(v4, backup)  # type: ignore[arg-type]
    assert backup.last_rx == before
    v6 = _Pkt(_na(bytes.fromhex("20010db8000000000000000000000077"), B1, typ=128))
    v6.protocol = 0x86DD  # type: ignore[attr-defined]
    bond._rcv_validate(v6, backup)  # type: ignore[arg-type]
    assert backup.last_rx == bed.world.clock.now


def test_fuzz_ipv6_frames_into_the_ns_monitor_and_broadcast_neighbor(bed46) -> None:  # type: ignore[no-untyped-def]
    """Random (often truncated) IPv6 frames through the NS validation of every slave
    state and through an 802.3ad bond with broadcast_neighbor: nothing raises."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from netstack.core.dev import dev_queue_xmit
    from netstack.drivers.bonding.bond_options import bond_opt_set
    bed = bed46
    _ab(bed, "ns_ip6_target 2001:db8::9 arp_validate all")
    bed.ok("ip addr add 2001:db8::1/64 dev bond0 nodad")
    bed.ok("ip link set bond0 up")
    bed.ok("ip link add b3 type bond mode 802.3ad")
    bed.ok("ip link add d0 type dummy")
    bed.ok("ip link set d0 master b3")
    bond_opt_set(bed.dev("b3"), "broadcast_neighbor", 1)
    bed.ok("ip link set b3 up")
    bed.world.run_until(300 * MS)
    bond, b3 = bed.dev("bond0"), bed.dev("b3")

    @settings(max_examples=150, deadline=None)
    @given(st.binary(max_size=90), st.sampled_from([0, 1, 2, 3, 5]))
    def run(data: bytes, pkt_type: int) -> None:
        for s in bond.slaves:
            na_rcv(bond, _Pkt(data, pkt_type), s)  # type: ignore[arg-type]
        pkt = bed.world.new_packet(b"\x33\x33\0\0\0\1" + b3.address + b"\x86\xdd" + data)
        pkt.protocol = 0x86DD
        dev_queue_xmit(pkt, b3)

    run()


def test_arp_ip_target_rules_of_bond_changelink(bed) -> None:  # type: ignore[no-untyped-def]
    """bond_option_arp_ip_target_add: a duplicate or a 0.0.0.0/8 address is EINVAL;
    the option itself has no unsupported modes (only arp_interval has)."""
    for bad in ("10.0.0.1,10.0.0.1", "0.1.2.3"):
        assert bed.run(f"ip link add b0 type bond arp_ip_target {bad}") == (
            2, "", "Error: invalid option value.\n")
    bed.ok("ip link add b0 type bond mode 802.3ad arp_ip_target 10.0.0.1")
    bed.ok("ip link add b1 type bond arp_ip_target 10.0.0.1")
    bed.ok("ip link add d0 type dummy")
    bed.ok("ip link set d0 master b1")
    bed.dev("b1").slaves[0].target_last_arp_rx[0] = 12345
    bed.ok("ip link set b1 type bond arp_ip_target 10.0.0.2,10.0.0.3")
    # the table was cleared then refilled: the slots restart at "now" (0 here)
    assert bed.dev("b1").slaves[0].target_last_arp_rx[:3] == [0, 0, 0]
