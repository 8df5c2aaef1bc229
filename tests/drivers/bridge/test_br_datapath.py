"""Bridge datapath on the virtual clock: learning, ageing, flooding flags, STP timers,
VLAN filtering (which the oracle kernel lacks: CONFIG_BRIDGE_VLAN_FILTERING is off there),
local delivery, and malformed frames as counted drops."""
from __future__ import annotations

import json

import pytest
from br1_topo import Bridge
from kernel_helpers import BR_MAC, MAC, eth

from netstack.drivers.bridge.br_private import (BR_STATE_FORWARDING, BR_STATE_LEARNING,
                                                BR_STATE_LISTENING)

UNK = "02:00:00:00:09:09"


def test_learning_then_unicast(bridge: Bridge) -> None:
    bridge.send(1, eth(MAC[2], MAC[1]))
    assert bridge.counts() == (0, 1, 1)
    bridge.send(2, eth(MAC[1], MAC[2]))
    assert bridge.counts() == (1, 1, 1)
    f = bridge.br.fdb[(bytes.fromhex("020000000201"), 0)]
    assert f.dst.dev.name == "p2"


def test_ageing_on_virtual_clock() -> None:
    """ageing_time 10 s: the entry lives until 10 s after the last frame, the gc (re-armed
    for the earliest expiry) removes it, then traffic floods again."""
    b = Bridge("ip -n b link set br0 type bridge ageing_time 1000\n")
    b.send(2, eth(MAC[1], MAC[2]))
    key = (bytes.fromhex("020000000201"), 0)
    assert key in b.br.fdb
    b.s.advance(9.5)
    assert key in b.br.fdb
    b.s.advance(1.0)
    assert key not in b.br.fdb
    b.send(1, eth(MAC[2], MAC[1]))
    assert b.counts() == (1, 1, 2)          # flooded again, h3 sees it too


def test_ageing_time_zero_never_learns() -> None:
    b = Bridge("ip -n b link set br0 type bridge ageing_time 0\n")
    b.send(2, eth(MAC[1], MAC[2]))
    assert not any(f.dst is not None and f.dst.dev.name == "p2" and not f.is_local
                   for f in b.br.fdb.values())


def test_station_moves_port(bridge: Bridge) -> None:
    bridge.send(2, eth(MAC[1], "02:00:00:00:07:07"))
    bridge.send(3, eth(MAC[1], "02:00:00:00:07:07"))
    assert bridge.br.fdb[(bytes.fromhex("020000000707"), 0)].dst.dev.name == "p3"


def test_sticky_entry_does_not_roam(bridge: Bridge) -> None:
    bridge.sh("bridge -n b fdb add 02:00:00:00:07:07 dev p2 master static sticky")
    bridge.send(3, eth(MAC[1], "02:00:00:00:07:07"))
    assert bridge.br.fdb[(bytes.fromhex("020000000707"), 0)].dst.dev.name == "p2"


def test_stp_enabled_walks_listening_learning_forwarding() -> None:
    b = Bridge("ip -n b link set br0 type bridge stp_state 1 forward_delay 400\n")
    br = b.br
    # br_stp_start leaves forwarding ports forwarding; a bridge restart re-enables the
    # ports from blocking
    assert {p.state for p in br.port_list} == {BR_STATE_FORWARDING}
    b.sh("ip -n b link set br0 down")
    b.sh("ip -n b link set br0 up")
    assert {p.state for p in br.port_list} == {BR_STATE_LISTENING}
    assert not br.dev.carrier_ok()
    b.s.advance(4.0)
    assert {p.state for p in br.port_list} == {BR_STATE_LEARNING}
    n = b.counts()
    b.send(1, eth(MAC[2], MAC[1]))
    assert b.counts() == n              # learning: learned, not forwarded
    assert (bytes.fromhex("020000000101"), 0) in br.fdb
    b.s.advance(4.0)
    assert {p.state for p in br.port_list} == {BR_STATE_FORWARDING}
    assert br.dev.carrier_ok()
    n = b.counts()
    b.send(2, eth(MAC[1], MAC[2]))
    assert b.counts() == (n[0] + 1, n[1], n[2])   # h1 was learned while p1 was learning


def test_stp_forward_delay_range_with_stp() -> None:
    b = Bridge("ip -n b link set br0 type bridge stp_state 1\n")
    r = b.run("ip -n b link set br0 type bridge forward_delay 100")
    assert (r.rc, r.stderr) == (2, "RTNETLINK answers: Numerical result out of range\n")


def test_user_state_with_stp_is_ebusy() -> None:
    b = Bridge("ip -n b link set br0 type bridge stp_state 1\n")
    r = b.run("bridge -n b link set dev p1 state 3")
    assert (r.rc, r.stderr) == (255, "RTNETLINK answers: Device or resource busy\n")


def test_port_down_disables_and_flushes(bridge: Bridge) -> None:
    bridge.send(2, eth(MAC[1], MAC[2]))
    bridge.sh("ip -n h2 link set e2 down")
    p2 = next(p for p in bridge.br.port_list if p.dev.name == "p2")
    assert p2.state == 0
    assert (bytes.fromhex("020000000201"), 0) not in bridge.br.fdb
    bridge.sh("ip -n h2 link set e2 up")
    assert p2.state == BR_STATE_FORWARDING


def test_bridge_down_then_up(bridge: Bridge) -> None:
    bridge.sh("ip -n b link set br0 down")
    assert {p.state for p in bridge.br.port_list} == {0}
    bridge.send(1, eth(MAC[2], MAC[1]))
    assert bridge.counts() == (0, 0, 0)
    bridge.sh("ip -n b link set br0 up")
    bridge.send(1, eth(MAC[2], MAC[1]))
    assert bridge.counts() == (0, 1, 1)


def test_bridge_mac_follows_lowest_port_and_user_address() -> None:
    b = Bridge()
    assert b.br.dev.address == bytes.fromhex(BR_MAC.replace(":", ""))  # set by the user
    s = b.s
    s.run_script("ip -n b link add br9 type bridge\n"
                 "ip -n b link add q1 address 02:00:00:00:0f:09 type veth peer name r1\n"
                 "ip -n b link add q2 address 02:00:00:00:0f:05 type veth peer name r2\n")
    br9 = s.world.netns("b").get("br9")
    assert br9.br.bridge_id[2:] == b"\0" * 6
    s.run_script("ip -n b link set q1 master br9\nip -n b link set q2 master br9\n")
    assert br9.address == bytes.fromhex("02000000 0f05".replace(" ", ""))
    s.run_script("ip -n b link set q2 nomaster\n")
    assert br9.address == bytes.fromhex("020000000f09")
    s.run_script("ip -n b link set q1 nomaster\n")
    assert br9.address == b"\0" * 6


def test_local_delivery_bridge_as_ip_interface() -> None:
    """The bridge answers ARP and ping on its own address; nothing leaks to other ports."""
    import dpkt
    b = Bridge("ip -n b addr add 10.9.0.254/24 dev br0\n")
    arp = dpkt.arp.ARP(op=dpkt.arp.ARP_OP_REQUEST, sha=bytes.fromhex("020000000101"),
                       spa=bytes([10, 9, 0, 1]), tha=b"\0" * 6, tpa=bytes([10, 9, 0, 254]))
    b.send(1, bytes.fromhex("ffffffffffff020000000101") + b"\x08\x06" + bytes(arp))
    (reply,) = b.got(1)
    assert reply[:12] == bytes.fromhex("020000000101" + BR_MAC.replace(":", ""))
    assert b.counts() == (1, 1, 1)        # the request itself was flooded to h2/h3


@pytest.mark.parametrize("frame, reason", [
    (eth(MAC[2], "01:00:00:00:00:01"), "MAC_INVALID_SOURCE"),
    (eth(MAC[2], "00:00:00:00:00:00"), "MAC_INVALID_SOURCE"),
    (eth("01:80:c2:00:00:01", MAC[1], 0x8808), "MAC_IEEE_MAC_CONTROL"),
])
def test_malformed_frames_are_counted_drops(bridge: Bridge, frame: bytes, reason: str) -> None:
    bridge.send(1, frame)
    assert bridge.counts() == (0, 0, 0)
    assert bridge.s.drops("b")[reason] == 1


def test_disabled_port_drop_reason(bridge: Bridge) -> None:
    bridge.sh("bridge -n b link set dev p1 state 0")
    bridge.send(1, eth(MAC[2], MAC[1]))
    assert bridge.s.drops("b")["BRIDGE_INGRESS_STP_STATE"] == 1


# ------------------------------------------------------------------ VLAN filtering
VF = ("ip -n b link set br0 type bridge vlan_filtering 1\n"
      "bridge -n b vlan add dev p1 vid 10 pvid untagged\n"
      "bridge -n b vlan add dev p2 vid 10\n"
      "bridge -n b vlan add dev p3 vid 20 pvid untagged\n")


def tagged(dst: str, src: str, vid: int, tpid: int = 0x8100) -> bytes:
    b = eth(dst, src)
    return b[:12] + tpid.to_bytes(2, "big") + vid.to_bytes(2, "big") + b[12:]


def test_vlan_pvid_ingress_tagged_egress() -> None:
    """Untagged on p1 (pvid 10) leaves p2 tagged 10 and never reaches p3 (VLAN 20)."""
    b = Bridge(VF)
    b.send(1, eth("ff:ff:ff:ff:ff:ff", MAC[1]))
    assert b.counts() == (0, 1, 0)
    (f,) = b.got(2)
    assert f[12:16] == b"\x81\x00\x00\x0a" and f[16:] == eth("ff:ff:ff:ff:ff:ff", MAC[1])[12:]
    assert (bytes.fromhex("020000000101"), 10) in b.br.fdb


def test_vlan_tagged_ingress_untagged_egress() -> None:
    b = Bridge(VF)
    b.send(2, tagged("ff:ff:ff:ff:ff:ff", MAC[2], 10))
    (f,) = b.got(1)
    assert f == eth("ff:ff:ff:ff:ff:ff", MAC[2])
    assert b.counts() == (1, 0, 0)


def test_vlan_ingress_filter_drops_unknown_vid() -> None:
    b = Bridge(VF)
    b.send(2, tagged("ff:ff:ff:ff:ff:ff", MAC[2], 30))
    assert b.counts() == (0, 0, 0)
    b.send(2, eth("ff:ff:ff:ff:ff:ff", MAC[2]))   # p2's pvid is still the default 1
    assert b.counts() == (1, 0, 1)


def test_vlan_8021ad_bridge() -> None:
    """An 802.1ad bridge tags with 0x88a8; a customer (802.1Q) tag is just payload."""
    b = Bridge(VF.replace("vlan_filtering 1", "vlan_filtering 1 vlan_protocol 802.1ad"))
    inner = tagged("ff:ff:ff:ff:ff:ff", MAC[1], 99)
    b.send(1, inner)
    (f,) = b.got(2)
    assert f[12:16] == b"\x88\xa8\x00\x0a" and f[16:20] == b"\x81\x00\x00\x63"
    assert b.br.group_fwd_mask_required == 0xB801


def test_vlan_show_json() -> None:
    b = Bridge(VF)
    out = json.loads(b.sh("bridge -n b -j vlan show"))
    assert out == [
        {"ifname": "br0", "vlans": [{"vlan": 1, "flags": ["PVID", "Egress Untagged"]}]},
        {"ifname": "p1", "vlans": [{"vlan": 1, "flags": ["Egress Untagged"]},
                                   {"vlan": 10, "flags": ["PVID", "Egress Untagged"]}]},
        {"ifname": "p2", "vlans": [{"vlan": 1, "flags": ["PVID", "Egress Untagged"]},
                                   {"vlan": 10}]},
        {"ifname": "p3", "vlans": [{"vlan": 1, "flags": ["Egress Untagged"]},
                                   {"vlan": 20, "flags": ["PVID", "Egress Untagged"]}]}]
    text = b.sh("bridge -n b vlan show dev p2")
    assert text == ("port              vlan-id  \n"
                    "p2                1 PVID Egress Untagged\n"
                    "                  10\n")


def test_vlan_del_and_errors() -> None:
    b = Bridge(VF)
    b.sh("bridge -n b vlan del dev p2 vid 10")
    r = b.run("bridge -n b vlan del dev p2 vid 10")
    assert (r.rc, r.stderr) == (255, "RTNETLINK answers: No such file or directory\n")
    r = b.run("bridge -n b vlan add dev p2 vid 4095")
    assert r.rc == 255


def test_hairpin_and_isolation_unit() -> None:
    b = Bridge("bridge -n b link set dev p1 hairpin on\n")
    b.send(1, eth("ff:ff:ff:ff:ff:ff", MAC[1]))
    assert b.counts() == (1, 1, 1)


def test_proxy_arp_port_is_never_flooded(bridge: Bridge) -> None:
    bridge.sh("bridge -n b link set dev p3 proxy_arp on")
    bridge.send(1, eth(UNK, MAC[1]))
    assert bridge.counts() == (0, 1, 0)


def test_bridge_nf_call_iptables_off_forwards_bad_ipv4() -> None:
    """With net.bridge.bridge-nf-call-iptables=0 the bridge no longer validates IPv4."""
    bad = (bytes.fromhex("020000000201020000000101") + b"\x08\x00"
           + bytes.fromhex("4500001c000100004011ffff0a0000010a000002") + bytes(8))
    b = Bridge()
    b.send(1, bad)
    assert b.counts() == (0, 0, 0)
    b.sh("ip netns exec b sysctl -w net.bridge.bridge-nf-call-iptables=0")
    b.send(1, bad)
    assert b.counts() == (0, 1, 1)
    r = b.run("ip netns exec b sysctl -w net.bridge.bridge-nf-filter-vlan-tagged=0")
    assert r.rc == 0


def test_per_vlan_state() -> None:
    """``bridge vlan set … state``: a VLAN in learning state on the egress port is not
    delivered there; the port state itself stays forwarding."""
    b = Bridge(VF + "bridge -n b vlan set dev p2 vid 10 state learning\n")
    b.send(1, eth("ff:ff:ff:ff:ff:ff", MAC[1]))
    assert b.counts() == (0, 0, 0)
    b.sh("bridge -n b vlan set dev p2 vid 10 state forwarding")
    b.send(1, eth("ff:ff:ff:ff:ff:ff", MAC[1]))
    assert b.counts() == (0, 1, 0)
    r = b.run("bridge -n b vlan set dev p2 vid 99 state 3")
    assert (r.rc, r.stderr) == (255, "Error: Vlan doesn't exist, can't update options.\n")


def test_bridge_own_broadcast_ignores_bcast_flood() -> None:
    """br_flood: frames the bridge itself sends ignore mcast_flood/bcast_flood (but not
    flood for unknown unicast)."""
    from netstack.core.dev import dev_queue_xmit
    b = Bridge("bridge -n b link set dev p2 bcast_flood off mcast_flood off\n"
               "bridge -n b link set dev p3 flood off\n")
    net = b.s.world.netns("b")
    for dst in ("ffffffffffff", "01005e000001", "020000000909"):
        pkt = b.s.world.new_packet(bytes.fromhex(dst + BR_MAC.replace(":", "")) + b"\x88\xb5"
                                   + bytes(46))
        pkt.protocol = 0x88B5
        dev_queue_xmit(pkt, net.get("br0"))
        b.s.advance(0.001)
    assert b.counts() == (3, 3, 2)     # p2: all three; p3: no unknown unicast
