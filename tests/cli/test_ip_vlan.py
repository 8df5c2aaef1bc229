"""``ip link add … type vlan`` and ``ip -d [-j] link show`` for vlans: the iproute2 6.1
texts (ip/iplink_vlan.c) and the kernel's refusals (net/8021q/vlan_netlink.c extacks)."""
from __future__ import annotations

import json

import pytest


@pytest.fixture
def vsh(sh):  # type: ignore[no-untyped-def]
    sh.ok("ip link add e0 address 02:00:00:00:00:01 type veth peer name e1 "
          "address 02:00:00:00:00:02")
    return sh


def test_details_text_with_maps_and_flags(vsh) -> None:  # type: ignore[no-untyped-def]
    vsh.ok("ip link add link e0 name v10 type vlan id 10 egress-qos-map 1:2 17:5 3:5 "
           "ingress-qos-map 1:6 0:4 reorder_hdr off loose_binding on")
    out = vsh.ok("ip -d link show v10")
    assert out == (
        "4: v10@e0: <BROADCAST,MULTICAST,M-DOWN> mtu 1500 qdisc noop state DOWN mode DEFAULT "
        "group default qlen 1000\n"
        "    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff promiscuity 0  allmulti 0 "
        "minmtu 68 maxmtu 65535 \n"
        "    vlan protocol 802.1Q id 10 <LOOSE_BINDING> \n"
        "      ingress-qos-map { 0:4 1:6 } \n"
        # bucket (priority & 15) order, newest first inside a bucket: 17 was added after 1
        "      egress-qos-map { 17:5 1:2 3:5 } addrgenmode eui64 numtxqueues 1 numrxqueues 1 "
        "gso_max_size 65536 gso_max_segs 65535 tso_max_size 524280 tso_max_segs 65535 "
        "gro_max_size 65536 \n")


def test_details_json_qinq(vsh) -> None:  # type: ignore[no-untyped-def]
    vsh.ok("ip link add link e0 name s100 type vlan proto 802.1ad id 100")
    vsh.ok("ip link add link s100 name c200 type vlan id 200 egress-qos-map 0:3")
    js = json.loads(vsh.ok("ip -d -j link show"))
    by = {d["ifname"]: d for d in js}
    assert by["s100"]["link"] == "e0" and by["c200"]["link"] == "s100"
    assert by["s100"]["linkinfo"] == {"info_kind": "vlan", "info_data": {
        "protocol": "802.1ad", "id": 100, "flags": ["REORDER_HDR"]}}
    assert by["c200"]["linkinfo"]["info_data"] == {
        "protocol": "802.1Q", "id": 200, "flags": ["REORDER_HDR"],
        "egress_qos": [{"from": 0, "to": 3}]}
    assert "info_data" not in by["e0"]["linkinfo"]
    # a mapping to PCP 0 is kept but no longer dumped (nr_egress_mappings)
    assert by["c200"]["address"] == "02:00:00:00:00:01"


def test_no_flags_no_flag_list(vsh) -> None:  # type: ignore[no-untyped-def]
    vsh.ok("ip link add link e0 name v3 type vlan id 3 reorder_hdr off")
    assert "    vlan protocol 802.1Q id 3 addrgenmode" in vsh.ok("ip -d link show v3")
    assert json.loads(vsh.ok("ip -d -j link show v3"))[0]["linkinfo"]["info_data"] == {
        "protocol": "802.1Q", "id": 3}


@pytest.mark.parametrize("cmd,rc,err", [
    ("ip link add link e0 name v type vlan id 4095", 2, "Error: 8021q: Invalid VLAN id.\n"),
    ("ip link add link e0 name v type vlan id 65536", 255,
     'Error: argument "65536" is wrong: id is invalid\n'),
    ("ip link add link e0 name v type vlan", 2,
     "Error: 8021q: VLAN properties not specified.\n"),
    ("ip link add link e0 name v type vlan reorder_hdr on", 2,
     "Error: 8021q: VLAN id not specified.\n"),
    ("ip link add name v type vlan id 5", 2, "Error: 8021q: link not specified.\n"),
    ("ip link add link nope name v type vlan id 5", 1, 'Cannot find device "nope"\n'),
    ("ip link add link e0 name v type vlan protocol ipv6 id 5", 2,
     "Error: 8021q: Invalid VLAN protocol.\n"),
    ("ip link add link e0 name v type vlan protocol bogus id 5", 255,
     'Error: argument "bogus" is wrong: protocol is invalid\n'),
    ("ip link add link e0 name v type vlan id 5 reorder_hdr maybe", 1,
     'Error: argument of "reorder_hdr" must be "on" or "off", not "maybe"\n'),
    ("ip link add link e0 name v type vlan id 5 egress-qos-map 1:x", 255,
     'Error: argument "1" is wrong: invalid egress-qos-map\n'),
    ("ip link add link e0 name v mtu 9000 type vlan id 5", 2,
     "RTNETLINK answers: Invalid argument\n"),
    ("ip link add link e0 name e1 type vlan id 5", 2, "RTNETLINK answers: File exists\n"),
])
def test_refusals(vsh, cmd: str, rc: int, err: str) -> None:  # type: ignore[no-untyped-def]
    got = vsh.run(cmd)
    assert (got[0], got[2]) == (rc, err)
    assert vsh.world.init_net.get("v") is None


def test_duplicate_proto_vid_is_eexist_but_other_proto_is_fine(vsh) -> None:  # type: ignore[no-untyped-def]
    vsh.ok("ip link add link e0 name v5 type vlan id 5")
    assert vsh.run("ip link add link e0 name w5 type vlan id 0x5")[2] == \
        "Error: 8021q: VLAN device already exists.\n"
    vsh.ok("ip link add link e0 name s5 type vlan protocol 0x88a8 id 5")
    vsh.ok("ip link add link e0 type vlan id 6")      # kernel-chosen name vlan%d
    assert vsh.world.init_net.get("vlan0") is not None
    vsh.ok("ip link del v5")
    vsh.ok("ip link add link e0 name w5 type vlan id 5")


def test_unknown_keyword_prints_usage(vsh) -> None:  # type: ignore[no-untyped-def]
    rc, _, err = vsh.run("ip link add link e0 name v type vlan id 5 frobnicate")
    assert rc == 1
    assert err.startswith('vlan: unknown command "frobnicate"?\nUsage: ... vlan id VLANID\n')


def test_gvrp_on_declares_the_vid_once_running(vsh) -> None:  # type: ignore[no-untyped-def]
    # GVRP/MVRP are modelled (netstack/net802): the VID is declared when the vlan runs
    from netstack.net802.gvrp import vlan_gvrp_state
    vsh.ok("ip link set e0 up")
    vsh.ok("ip link add link e0 name v type vlan id 5 gvrp on")
    assert vlan_gvrp_state(vsh.world.init_net.get("e0"), 5) is None
    vsh.ok("ip link set v up")
    assert vlan_gvrp_state(vsh.world.init_net.get("e0"), 5) == "VP"
    vsh.ok("ip link add link e0 name x type vlan id 7 gvrp off mvrp off")


def test_vlan_on_loopback_is_refused(vsh) -> None:  # type: ignore[no-untyped-def]
    assert vsh.run("ip link add link lo name v type vlan id 5")[2] == \
        "Error: 8021q: VLANs not supported on device.\n"


def test_vlan_mtu_is_bounded_by_the_lower_device(vsh) -> None:  # type: ignore[no-untyped-def]
    vsh.ok("ip link add link e0 name v5 type vlan id 5")
    assert vsh.run("ip link set v5 mtu 1501")[1:] == (
        "", "RTNETLINK answers: Numerical result out of range\n")
    vsh.ok("ip link set v5 mtu 1400")
    vsh.ok("ip link set e0 mtu 1300")
    assert vsh.world.init_net.get("v5").mtu == 1300
