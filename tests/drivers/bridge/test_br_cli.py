"""The bridge's configuration surface: error texts and exit codes as measured with
iproute2 6.1 on Linux 6.18 (pinned here because a failing command stops a scenario
script), and the text forms of ``ip -d link`` / ``bridge fdb|link``."""
from __future__ import annotations

import json

import pytest
from br1_topo import Bridge


@pytest.mark.parametrize("cmd, rc, err", [
    ("ip -n b link set br0 type bridge hello_time 50", 2,
     "RTNETLINK answers: Numerical result out of range\n"),
    ("ip -n b link set br0 type bridge max_age 100", 2,
     "RTNETLINK answers: Numerical result out of range\n"),
    ("ip -n b link set br0 type bridge group_fwd_mask 1", 2,
     "RTNETLINK answers: Invalid argument\n"),
    ("ip -n b link set br0 type bridge priority 70000", 255,
     'Error: argument "70000" is wrong: invalid priority\n'),
    ("ip -n b link set br0 type bridge forward_delay abc", 255,
     'Error: argument "abc" is wrong: invalid forward_delay\n'),
    ("ip -n b link set br0 type bridge group_address 01:80:c2:00:00:11", 2,
     "RTNETLINK answers: Invalid argument\n"),
    ("ip -n b link set p1 type bridge_slave state 5", 2,
     "RTNETLINK answers: Invalid argument\n"),
    ("ip -n b link add br1 type bridge", 0, ""),
    ("bridge -n b fdb add 02:00:00:00:0b:01 dev p1 master", 255,
     "RTNETLINK answers: File exists\n"),
    ("bridge -n b fdb del 02:00:00:00:0c:09 dev p1 master", 255,
     "RTNETLINK answers: No such file or directory\n"),
    ("bridge -n b fdb add 02:00:00:00:0c:01 dev p1 master sticky", 255,
     "RTNETLINK answers: Invalid argument\n"),
    ("bridge -n b fdb add 02:00:00:00:0c:01 dev p1 master static vlan 10", 255,
     "RTNETLINK answers: Invalid argument\n"),
    ("ip -n b link set lo master br0", 2, "RTNETLINK answers: Invalid argument\n"),
])
def test_errors_as_measured(bridge: Bridge, cmd: str, rc: int, err: str) -> None:
    r = bridge.run(cmd)
    assert (r.rc, r.stderr) == (rc, err)


def test_unknown_bridge_option_prints_usage(bridge: Bridge) -> None:
    r = bridge.run("ip -n b link set br0 type bridge foo 1")
    assert r.rc == 1 and r.stderr.startswith('bridge: unknown command "foo"?\nUsage: ... '
                                             "bridge [ fdb_flush ]\n")
    assert r.stderr.endswith("Where: VLAN_PROTOCOL := { 802.1Q | 802.1ad }\n")


def test_bridge_in_bridge_is_eloop(bridge: Bridge) -> None:
    bridge.sh("ip -n b link add br1 type bridge")
    r = bridge.run("ip -n b link set br0 master br1")
    assert (r.rc, r.stderr) == (2, "Error: Can not enslave a bridge to a bridge.\n")


def test_stp_state_2_shows_1_and_clamps_forward_delay(bridge: Bridge) -> None:
    bridge.sh("ip -n b link add br2 type bridge forward_delay 100")
    bridge.sh("ip -n b link set br2 type bridge stp_state 2")
    d = json.loads(bridge.sh("ip -n b -d -j link show br2"))[0]["linkinfo"]["info_data"]
    assert (d["stp_state"], d["forward_delay"]) == (1, 200)
    assert d["bridge_id"] == "8000.0:0:0:0:0:0"      # no port yet (measured)


def test_ip_d_link_text_as_measured() -> None:
    b = Bridge()
    text = b.sh("ip -n b -d link show br0").splitlines()[2]
    assert text.startswith(
        "    bridge forward_delay 1500 hello_time 200 max_age 2000 ageing_time 30000 "
        "stp_state 0 priority 32768 vlan_filtering 0 vlan_protocol 802.1Q "
        "bridge_id 8000.2:0:0:0:b:0 designated_root 8000.2:0:0:0:b:0 root_port 0 "
        "root_path_cost 0 topology_change 0 topology_change_detected 0 "
        "hello_timer    0.00 tcn_timer    0.00 topology_change_timer    0.00 gc_timer ")
    assert ("vlan_default_pvid 1 vlan_stats_enabled 0 vlan_stats_per_port 0 group_fwd_mask 0 "
            "group_address 01:80:c2:00:00:00 mcast_snooping 0 no_linklocal_learn 0 "
            "mcast_vlan_snooping 0 mcast_router 1 ") in text
    port = b.sh("ip -n b -d link show p1").splitlines()[3]
    assert port.startswith(
        "    bridge_slave state forwarding priority 32 cost 2 hairpin off guard off "
        "root_block off fastleave off learning on flood on port_id 0x8001 port_no 0x1 "
        "designated_port 32769 designated_cost 0 designated_bridge 8000.2:0:0:0:b:0 "
        "designated_root 8000.2:0:0:0:b:0 hold_timer    0.00 message_age_timer    0.00 "
        "forward_delay_timer ")
    assert port.endswith("topology_change_ack 0 config_pending 0 proxy_arp off "
                         "proxy_arp_wifi off mcast_router 1 mcast_fast_leave off "
                         "mcast_flood on bcast_flood on mcast_to_unicast off "
                         "neigh_suppress off group_fwd_mask 0 group_fwd_mask_str 0x0 "
                         "vlan_tunnel off isolated off locked off addrgenmode eui64 "
                         "numtxqueues 2 numrxqueues 2 gso_max_size 65536 "
                         "gso_max_segs 65535 tso_max_size 524280 tso_max_segs 65535 "
                         "gro_max_size 65536 ")


def test_fdb_text_forms(bridge: Bridge) -> None:
    bridge.sh("bridge -n b fdb add 02:00:00:00:0a:01 dev p3 master static")
    bridge.sh("bridge -n b fdb add 02:00:00:00:0a:04 dev p1 master static sticky")
    bridge.s.inject("h2", "e2", [bytes.fromhex("ffffffffffff020000000201") + b"\x88\xb5"
                                 + b"x" * 46])
    bridge.s.advance(0.01)
    out = bridge.sh("bridge -n b fdb show br br0")
    assert "02:00:00:00:0a:01 dev p3 master br0 static\n" in out
    assert "02:00:00:00:0a:04 dev p1 sticky master br0 static\n" in out
    assert "02:00:00:00:02:01 dev p2 master br0 \n" in out
    assert "02:00:00:00:0b:00 dev br0 master br0 permanent\n" in out
    assert "02:00:00:00:0b:01 dev p1 master br0 permanent\n" in out
    s = bridge.sh("bridge -n b -s fdb show dev p2")
    assert s.startswith("02:00:00:00:02:01 used 0/0 master br0 \n")


def test_bridge_link_text(bridge: Bridge) -> None:
    bridge.sh("bridge -n b link set dev p2 state 2 cost 9 priority 3")
    out = bridge.sh("bridge -n b link show dev p2")
    assert out == ("12: p2@if22: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 master br0 "
                   "state learning priority 3 cost 9 \n")
    d = bridge.sh("bridge -n b -d link show dev p2").splitlines()[1]
    assert d == ("    hairpin off guard off root_block off fastleave off learning on flood on "
                 "mcast_flood on bcast_flood on mcast_router 1 mcast_to_unicast off "
                 "neigh_suppress off vlan_tunnel off isolated off locked off ")


def test_ip_link_show_master(bridge: Bridge) -> None:
    out = bridge.sh("ip -n b -br link show master br0")
    assert [line.split()[0] for line in out.splitlines()] == ["p1@if21", "p2@if22", "p3@if23"]
    r = bridge.run("ip -n b link show master nope")
    assert (r.rc, r.stderr) == (255, 'Error: argument "nope" is wrong: Device does not exist'
                                     '\n\n')


def test_nomaster_and_delete_bridge(bridge: Bridge) -> None:
    bridge.sh("ip -n b link set p1 nomaster")
    net = bridge.s.world.netns("b")
    p1 = net.get("p1")
    assert p1.master is None and p1.rx_handler is None
    assert not any(f.dst is not None and f.dst.dev is p1 for f in bridge.br.fdb.values())
    bridge.sh("ip -n b link del br0")
    assert net.get("br0") is None and net.get("p2").master is None
    assert net.get("p2").rx_handler is None

