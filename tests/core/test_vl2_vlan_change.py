"""``ip link set DEV type vlan …`` (net/8021q/vlan_netlink.c ``vlan_validate`` +
``vlan_changelink``, vlan_dev.c ``vlan_dev_change_flags``) and what the flags do:
REORDER_HDR on receive, LOOSE_BINDING and BRIDGE_BINDING on the vlan device's admin state
and carrier (vlan.c ``vlan_device_event`` / ``vlan_stacked_transfer_operstate``), GVRP/MVRP
refused ("not supported") exactly when the applicant would start sending.

The kernel here has no 8021q module, so these follow the kernel source (cited per test)
and iproute2 6.1's ip/iplink_vlan.c output."""
from __future__ import annotations

import io
import json

import pytest

from netstack.cli import run_command
from netstack.core.dev import dev_queue_xmit
from netstack.core.world import World
from netstack.ipv4.ping import ping

IPV4 = ["netstack.ipv4.af_inet"]


class Sh:
    def __init__(self, subsystems: list[str] | None = None) -> None:
        self.world = World(subsystems=subsystems or [])

    def run(self, line: str, ns: str = "") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        rc = run_command(self.world, line, out, err, net_name=ns)
        return rc, out.getvalue(), err.getvalue()

    def ok(self, line: str, ns: str = "") -> str:
        rc, out, err = self.run(line, ns)
        assert rc == 0 and err == "", (line, rc, err)
        return out

    def dev(self, name: str, ns: str = ""):  # type: ignore[no-untyped-def]
        return self.world.netns(ns).get(name)

    def info(self, name: str) -> dict:  # type: ignore[type-arg]
        return json.loads(self.ok(f"ip -d -j link show {name}"))[0]["linkinfo"]["info_data"]


@pytest.fixture
def s() -> Sh:
    sh = Sh()
    sh.ok("ip link add e0 address 02:00:00:00:00:01 type veth peer name e1 "
          "address 02:00:00:00:00:02")
    sh.ok("ip link add link e0 name v10 type vlan id 10")
    return sh


# ------------------------------------------------------------------------ changelink
def test_flags_change_and_show(s: Sh) -> None:
    s.ok("ip link set v10 type vlan reorder_hdr off loose_binding on")
    assert s.info("v10") == {"protocol": "802.1Q", "id": 10, "flags": ["LOOSE_BINDING"]}
    assert "    vlan protocol 802.1Q id 10 <LOOSE_BINDING> addrgenmode" in \
        s.ok("ip -d link show v10")
    s.ok("ip link set v10 type vlan reorder_hdr on bridge_binding on gvrp on mvrp on")
    assert s.info("v10")["flags"] == ["REORDER_HDR", "GVRP", "MVRP", "LOOSE_BINDING",
                                      "BRIDGE_BINDING"]
    # only the words given change (the mask): loose_binding stays
    s.ok("ip link set v10 type vlan gvrp off mvrp off bridge_binding off")
    assert s.info("v10")["flags"] == ["REORDER_HDR", "LOOSE_BINDING"]
    # every flag off: vlan_fill_info sends no IFLA_VLAN_FLAGS, nothing is printed
    s.ok("ip link set v10 type vlan reorder_hdr off loose_binding off")
    assert s.info("v10") == {"protocol": "802.1Q", "id": 10}


def test_egress_map_entries_replace_add_and_zero(s: Sh) -> None:
    """vlan_dev_set_egress_priority: per skb priority, replaced in place or added at the
    head of bucket ``priority & 15``; a PCP of 0 keeps the entry but undumps it."""
    s.ok("ip link set v10 type vlan egress-qos-map 1:2 3:5")
    s.ok("ip link set v10 type vlan egress-qos-map 17:6 1:4")       # 17 shares bucket 1
    assert s.info("v10")["egress_qos"] == [{"from": 17, "to": 6}, {"from": 1, "to": 4},
                                           {"from": 3, "to": 5}]
    s.ok("ip link set v10 type vlan egress-qos-map 17:0")
    assert s.info("v10")["egress_qos"] == [{"from": 1, "to": 4}, {"from": 3, "to": 5}]
    v = s.dev("v10")
    assert v.nr_egress_mappings == 2 and v.egress_qos_mask(17) == 0
    s.ok("ip link set v10 type vlan egress-qos-map 17:7")          # same entry, back again
    assert s.info("v10")["egress_qos"][0] == {"from": 17, "to": 7}
    assert v.egress_qos_mask(17) == 7 << 13
    s.ok("ip link set v10 type vlan egress-qos-map 1:0 3:0 17:0")
    assert "egress_qos" not in s.info("v10")
    assert "egress-qos-map" not in s.ok("ip -d link show v10")


def test_ingress_map_replace_and_remove(s: Sh) -> None:
    s.ok("ip link set v10 type vlan ingress-qos-map 1:6 0:4")
    s.ok("ip link set v10 type vlan ingress-qos-map 1:9 0:0")
    assert s.info("v10")["ingress_qos"] == [{"from": 1, "to": 9}]
    assert "\n      ingress-qos-map { 1:9 } addrgenmode" in s.ok("ip -d link show v10")
    assert s.dev("v10").nr_ingress_mappings == 1


def test_id_and_protocol_are_validated_then_ignored(s: Sh) -> None:
    """vlan_changelink never looks at IFLA_VLAN_ID / IFLA_VLAN_PROTOCOL; vlan_validate
    still refuses out-of-range values."""
    s.ok("ip link set v10 type vlan id 20 protocol 802.1ad")
    assert (s.dev("v10").vlan_id, s.dev("v10").vlan_proto) == (10, 0x8100)
    assert s.info("v10")["id"] == 10


@pytest.mark.parametrize("cmd,rc,err", [
    ("ip link set v10 type vlan reorder_hdr off id 4095", 2, "Error: 8021q: Invalid VLAN id.\n"),
    ("ip link set v10 type vlan reorder_hdr off protocol ipv6", 2,
     "Error: 8021q: Invalid VLAN protocol.\n"),
    ("ip link set v10 type vlan", 2, "Error: 8021q: VLAN properties not specified.\n"),
    ("ip link set v10 address 01:00:00:00:00:01 type vlan reorder_hdr off", 2,
     "Error: 8021q: Invalid link address.\n"),
    ("ip link set v10 type vlan reorder_hdr maybe", 1,
     'Error: argument of "reorder_hdr" must be "on" or "off", not "maybe"\n'),
    ("ip link set v10 type vlan egress-qos-map 2:x", 255,
     'Error: argument "2" is wrong: invalid egress-qos-map\n'),
    ("ip link set e0 type vlan id 3", 2, "RTNETLINK answers: Operation not supported\n"),
])
def test_refusals_change_nothing(s: Sh, cmd: str, rc: int, err: str) -> None:
    got = s.run(cmd)
    assert (got[0], got[2]) == (rc, err)
    assert s.dev("v10").vlan_flags == 1 and s.dev("v10").nr_egress_mappings == 0


def test_unknown_word_prints_usage(s: Sh) -> None:
    rc, _, err = s.run("ip link set v10 type vlan frob on")
    assert rc == 1 and err.startswith('vlan: unknown command "frob"?\nUsage: ... vlan id')


# ------------------------------------------------------------------------ semantics
def _world_with_vlan() -> Sh:
    sh = Sh(IPV4)
    sh.ok("ip netns add a")
    sh.ok("ip netns add b")
    sh.ok("ip -n a link add e0 type veth peer name e0 netns b")
    for ns, addr in (("a", "10.0.5.1"), ("b", "10.0.5.2")):
        sh.ok(f"ip -n {ns} link set e0 up")
        sh.ok(f"ip -n {ns} link add link e0 name v5 type vlan id 5")
        sh.ok(f"ip -n {ns} link set v5 up")
        sh.ok(f"ip -n {ns} addr add {addr}/24 dev v5")
    return sh


def test_reorder_hdr_off_set_at_runtime_keeps_the_tag_and_ping_works() -> None:
    """vlan_do_receive without REORDER_HDR puts the tag back after the MAC addresses
    (mac_len 18); IPv4 still gets the packet (data on the IP header)."""
    sh = _world_with_vlan()
    sh.ok("ip -n b link set v5 type vlan reorder_hdr off")
    b = sh.world.netns("b")
    seen: list[tuple[int, bytes]] = []
    b.add_rx_tap(b.get("v5"), lambda p: seen.append(
        (p.mac_len(), bytes(p.buf[p.mac_header + 12:p.mac_header + 16]))))
    a = sh.world.netns("a")
    sk = ping(a, "10.0.5.2", 7, 1)
    sh.world.run_until_idle()
    assert sk.recvfrom() is not None                # the echo reply came back
    assert seen and seen[0] == (18, b"\x81\x00\x00\x05")
    sh.ok("ip -n b link set v5 type vlan reorder_hdr on")
    seen.clear()
    ping(a, "10.0.5.2", 7, 2)
    sh.world.run_until_idle()
    assert sk.recvfrom() is not None
    assert seen[0][0] == 14


def test_loose_binding_set_at_runtime() -> None:
    """vlan_device_event NETDEV_DOWN: a loose vlan keeps IFF_UP, its carrier follows the
    lower device's (operstate LOWERLAYERDOWN); NETDEV_UP: back to UP."""
    sh = Sh()
    sh.ok("ip link add p0 type veth peer name p1")
    sh.ok("ip link set p0 up")
    sh.ok("ip link set p1 up")
    sh.ok("ip link add link p0 name p05 type vlan id 5")
    sh.ok("ip link set p05 up")
    sh.ok("ip link set p05 type vlan loose_binding on")
    v = sh.dev("p05")
    sh.ok("ip link set p0 down")
    assert v.flags & 1 and v.operstate() == "LOWERLAYERDOWN"
    assert "NO-CARRIER" in sh.ok("ip link show p05")
    sh.ok("ip link set p0 up")
    assert v.operstate() == "UP"
    sh.ok("ip link set p05 type vlan loose_binding off")
    sh.ok("ip link set p0 down")
    assert not v.flags & 1 and v.operstate() == "DOWN"


def test_carrier_follows_lower_through_qinq() -> None:
    """The outer vlan's carrier change is a NETDEV_CHANGE for the inner one."""
    sh = Sh()
    sh.ok("ip link add p0 type veth peer name p1")
    sh.ok("ip link set p0 up")
    sh.ok("ip link add link p0 name s1 type vlan protocol 802.1ad id 1")
    sh.ok("ip link set s1 up")
    sh.ok("ip link add link s1 name c2 type vlan id 2")
    sh.ok("ip link set c2 up")
    assert (sh.dev("s1").operstate(), sh.dev("c2").operstate()) == ("LOWERLAYERDOWN",
                                                                    "LOWERLAYERDOWN")
    sh.ok("ip link set p1 up")
    assert (sh.dev("s1").operstate(), sh.dev("c2").operstate()) == ("UP", "UP")
    sh.ok("ip link set p1 down")
    assert sh.dev("c2").operstate() == "LOWERLAYERDOWN"


def test_bridge_binding_on_a_non_bridge_lower_freezes_the_carrier() -> None:
    """vlan_stacked_transfer_operstate skips the transfer with BRIDGE_BINDING, vlan_dev_open
    and _stop leave the carrier alone: on a veth the vlan keeps the carrier it had."""
    sh = Sh()
    sh.ok("ip link add p0 type veth peer name p1")
    sh.ok("ip link set p0 up")
    sh.ok("ip link set p1 up")
    sh.ok("ip link add link p0 name p05 type vlan id 5 loose_binding on")
    sh.ok("ip link set p05 up")
    sh.ok("ip link set p05 type vlan bridge_binding on")
    v = sh.dev("p05")
    sh.ok("ip link set p1 down")
    assert v.operstate() == "UP" and v.carrier_ok()
    sh.ok("ip link set p05 type vlan bridge_binding off")
    sh.ok("ip link set p1 up")
    sh.ok("ip link set p1 down")                 # transfers again
    assert v.operstate() == "LOWERLAYERDOWN"
    sh.ok("ip link set p05 type vlan bridge_binding on")
    sh.ok("ip link set p1 up")
    # frozen without carrier while the lower device is up: default_operstate says DOWN
    assert v.operstate() == "DOWN" and "NO-CARRIER" in sh.ok("ip link show p05")


def test_bridge_binding_created_on_stays_with_the_fresh_carrier() -> None:
    """A new netdev has carrier; with bridge_binding register_vlan_dev does not transfer
    the lower device's, so the vlan is UP once opened although the veth peer is down."""
    sh = Sh()
    sh.ok("ip link add p0 type veth peer name p1")
    sh.ok("ip link set p0 up")
    sh.ok("ip link add link p0 name p05 type vlan id 5 bridge_binding on")
    sh.ok("ip link set p05 up")
    assert sh.dev("p05").operstate() == "UP"


def _bridge_with_ports() -> Sh:
    """br0 (vlan_filtering) with veth ports p1 and p2, both oper up; p1 carries VID 10."""
    sh = Sh()
    rc, _, err = sh.run("ip link add br0 type bridge vlan_filtering 1")
    if rc != 0:
        pytest.skip(f"no bridge here: {err.strip()}")
    for line in ("ip link add p1 type veth peer name q1", "ip link add p2 type veth peer name q2",
                 "ip link set p1 master br0", "ip link set p2 master br0",
                 "ip link set br0 up", "ip link set p1 up", "ip link set p2 up",
                 "ip link set q1 up", "ip link set q2 up", "bridge vlan add dev p1 vid 10"):
        sh.ok(line)
    return sh


def test_bridge_binding_follows_the_ports_in_the_vlan() -> None:
    """br_vlan.c: a bound vlan of a bridge has carrier iff the bridge has it and a port
    carrying its VID is up (IFF_UP + oper up): set when it is linked
    (br_vlan_upper_change), re-evaluated on port events (br_vlan_port_event) and VLAN
    changes on ports (nbp_vlan_set_vlan_dev_state)."""
    sh = _bridge_with_ports()
    sh.ok("ip link add link br0 name br0.10 type vlan id 10 bridge_binding on")
    sh.ok("ip link add link br0 name br0.20 type vlan id 20 bridge_binding on")
    sh.ok("ip link add link br0 name br0.30 type vlan id 30")
    for v in ("br0.10", "br0.20", "br0.30"):
        sh.ok(f"ip link set {v} up")
    v10, v20, v30 = sh.dev("br0.10"), sh.dev("br0.20"), sh.dev("br0.30")
    assert (v10.operstate(), v20.operstate(), v30.operstate()) == ("UP", "DOWN", "UP")
    sh.ok("ip link set q1 down")                  # p1 loses carrier: port event
    # br0 keeps carrier through p2: no carrier and the lower oper up is DOWN
    assert v10.operstate() == "DOWN" and v30.operstate() == "UP"
    sh.ok("ip link set q1 up")
    assert v10.operstate() == "UP"
    sh.ok("ip link set p2 down")
    sh.ok("bridge vlan add dev p2 vid 20")
    sh.ok("ip link set p2 up")                    # p2, now in VID 20, comes up
    assert v20.operstate() == "UP"
    sh.ok("ip link set q2 down")
    assert v20.operstate() == "DOWN"
    sh.ok("ip link set q2 up")
    # a VLAN removed from / added to a port: nbp_vlan_set_vlan_dev_state (from br_vlan.py)
    sh.ok("bridge vlan del dev p1 vid 10")
    assert v10.operstate() == "DOWN"
    sh.ok("bridge vlan add dev p2 vid 10")
    assert v10.operstate() == "UP"
    sh.ok("ip link set p2 nomaster")               # the port leaves: its VLANs go with it
    assert v10.operstate() == "DOWN" and v20.operstate() == "DOWN"


def test_bridge_binding_toggle_on_a_running_vlan_of_a_bridge() -> None:
    """vlan_dev_change_flags -> br_vlan_upper_change(linking = flag): on sets the state at
    once; off returns early there (the upper is no longer bound) and the carrier is the
    lower device's again only at its next event."""
    sh = _bridge_with_ports()
    sh.ok("ip link add link br0 name br0.20 type vlan id 20")
    sh.ok("ip link set br0.20 up")
    v = sh.dev("br0.20")
    assert v.operstate() == "UP"                  # follows br0
    sh.ok("ip link set br0.20 type vlan bridge_binding on")
    assert v.operstate() == "DOWN"                # no port carries VID 20
    sh.ok("ip link set br0.20 type vlan bridge_binding off")
    assert v.operstate() == "DOWN"
    sh.ok("ip link set br0 down")                 # closes the vlan ...
    sh.ok("ip link set br0 up")                   # ... reopens it: carrier from br0 again
    assert v.operstate() == sh.dev("br0").operstate() == "UP"


def test_gvrp_and_mvrp_flags_declare_on_open_and_change(s: Sh) -> None:
    """vlan_dev_change_flags joins/leaves only on a running device; vlan_dev_open joins
    when the flag is set (the PDUs: tests/core/test_vl2_mvrp.py, test_vl2_gvrp.py)."""
    from netstack.net802.gvrp import vlan_gvrp_state
    from netstack.net802.mvrp import vlan_mvrp_state
    e0 = s.dev("e0")
    s.ok("ip link set v10 type vlan gvrp on mvrp on")          # down: nothing declared
    assert (vlan_gvrp_state(e0, 10), vlan_mvrp_state(e0, 10)) == (None, None)
    s.ok("ip link set e0 up")
    s.ok("ip link set v10 up")
    assert (vlan_gvrp_state(e0, 10), vlan_mvrp_state(e0, 10)) == ("VP", "VP")
    s.ok("ip link set v10 type vlan gvrp off")                  # ReqLeave in VP: VO
    assert (vlan_gvrp_state(e0, 10), vlan_mvrp_state(e0, 10)) == ("VO", "VP")
    s.ok("ip link set v10 down")                                # MRP Lv! in VP: VO
    assert vlan_mvrp_state(e0, 10) == "VO"


def test_tx_with_reorder_hdr_off_uses_an_inband_tag_of_the_vlan() -> None:
    """vlan_dev_hard_start_xmit: with REORDER_HDR off, a frame already carrying our TPID is
    passed on as it is (no second tag); the wire shows one tag."""
    sh = Sh()
    sh.ok("ip link add p0 type veth peer name p1")
    sh.ok("ip link set p0 up")
    sh.ok("ip link set p1 up")
    sh.ok("ip link add link p0 name p05 type vlan id 5")
    sh.ok("ip link set p05 up")
    sh.ok("ip link set p05 type vlan reorder_hdr off")
    net = sh.world.init_net
    wire: list[bytes] = []
    net.add_rx_tap(net.get("p1"), lambda p: wire.append(bytes(p.buf[p.mac_header:p.tail])))
    frame = b"\xff" * 6 + net.get("p05").address + b"\x81\x00\x00\x05\x88\xb5" + bytes(46)
    pkt = sh.world.new_packet(frame)
    pkt.protocol = 0x8100
    dev_queue_xmit(pkt, net.get("p05"))
    sh.world.run_until_idle()
    assert wire == [frame]
