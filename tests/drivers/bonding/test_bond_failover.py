"""Link monitoring and failover on the virtual clock (bond_main.c ``bond_mii_monitor``:
inspect/commit with up/downdelay counted in miimon ticks, ``bond_select_active_slave``,
peer notification with ``num_grat_arp`` gratuitous ARPs and unsolicited NAs), the ARP
monitor, primary/primary_reselect and fail_over_mac."""
from __future__ import annotations

import pytest

from netstack.drivers.bonding.bond_main import BOND_LINK_BACK, BOND_LINK_DOWN, BOND_LINK_FAIL, \
    BOND_LINK_UP

MS = 1_000_000


def _ab(bed, opts: str) -> None:  # type: ignore[no-untyped-def]
    bed.ok("ip netns add s")
    bed.ok(f"ip link add bond0 type bond mode active-backup {opts}")
    for i in (1, 2):
        bed.ok(f"ip link add e{i} address 02:00:00:00:00:0{i} type veth peer name p{i} "
               f"netns s address 02:00:00:00:01:0{i}")
        bed.ok(f"ip link set e{i} master bond0")
        bed.ok(f"ip -n s link set p{i} up")


def _garp(mac: bytes, ip: bytes) -> bytes:
    return (b"\xff" * 6 + mac + b"\x08\x06" + bytes.fromhex("0001080006040001") + mac + ip
            + bytes(6) + ip)


def test_miimon_downdelay_updelay_timing_and_grat_arps(bed) -> None:  # type: ignore[no-untyped-def]
    _ab(bed, "miimon 100 updelay 200 downdelay 300 num_grat_arp 2")
    bed.ok("ip addr add 10.0.0.1/24 dev bond0")
    bed.ok("ip link set bond0 up")
    bond = bed.dev("bond0")
    bed.world.advance(0.05)
    assert bond.curr_active.dev.name == "e1"
    rx2 = bed.capture_rx("p2", "s")
    # the miimon work runs at 0, 100, 200 … ms after the open
    bed.world.run_until(1000 * MS)
    bed.ok("ip -n s link set p1 down")               # carrier lost between ticks
    e1 = bond.slaves[0]
    bed.world.run_until(1050 * MS)
    assert e1.link == BOND_LINK_UP
    bed.world.run_until(1100 * MS)                   # first tick to see it: FAIL
    assert e1.link == BOND_LINK_FAIL and bond.curr_active is e1
    bed.world.run_until(1350 * MS)
    assert e1.link == BOND_LINK_FAIL
    bed.world.run_until(1400 * MS)                   # 300 ms = 3 ticks later: DOWN
    assert e1.link == BOND_LINK_DOWN and bond.curr_active.dev.name == "e2"
    assert e1.link_failure_count == 1
    g = _garp(bond.address, bytes([10, 0, 0, 1]))
    assert rx2.count(g) == 1                         # the first notification, at once
    bed.world.run_until(1500 * MS)
    assert rx2.count(g) == 2                         # num_grat_arp 2: one more a tick later
    bed.world.run_until(3000 * MS)
    assert rx2.count(g) == 2
    # recovery: DOWN → BACK, up after updelay (200 ms = 2 ticks), no failback (always
    # reselects only for the primary / a higher prio)
    bed.ok("ip -n s link set p1 up")
    bed.world.run_until(3100 * MS)
    assert e1.link == BOND_LINK_BACK
    bed.world.run_until(3200 * MS)
    assert e1.link == BOND_LINK_BACK
    bed.world.run_until(3300 * MS)
    assert e1.link == BOND_LINK_UP and bond.curr_active.dev.name == "e2"
    text = bed.ok("cat /proc/net/bonding/bond0")
    assert "Currently Active Slave: e2\n" in text
    assert "Slave Interface: e1\nMII Status: up\nSpeed: 10000 Mbps\nDuplex: full\n" \
           "Link Failure Count: 1\nPermanent HW addr: 02:00:00:00:00:01\n" in text


def test_unsolicited_na_on_failover(bed46) -> None:  # type: ignore[no-untyped-def]
    bed = bed46
    _ab(bed, "miimon 100")
    bed.ok("ip addr add 2001:db8::1/64 dev bond0 nodad")
    bed.ok("ip link set bond0 up")
    bed.world.advance(1)
    rx2 = bed.capture_rx("p2", "s")
    bed.ok("ip -n s link set p1 down")
    bed.world.advance(0.3)
    nas = [f for f in rx2 if f[12:14] == b"\x86\xdd" and f[20] == 58 and f[54] == 136]
    targets = {f[62:78] for f in nas}
    assert bytes.fromhex("20010db8000000000000000000000001") in targets
    na = next(f for f in nas if f[62:78] == bytes.fromhex("20010db8000000000000000000000001"))
    mac = bed.dev("bond0").address
    assert na[0:6] == bytes.fromhex("333300000001") and na[6:12] == mac
    assert na[21] == 255                                   # hop limit
    assert na[38:54] == bytes.fromhex("ff020000000000000000000000000001")
    assert na[58] == 0x20                                  # override, not solicited/router
    assert na[78:86] == bytes([2, 1]) + mac                # target link-layer address


def test_primary_and_primary_reselect(bed) -> None:  # type: ignore[no-untyped-def]
    _ab(bed, "miimon 100")
    bed.ok("ip link set bond0 type bond primary e2")
    bed.ok("ip link set bond0 up")
    bond = bed.dev("bond0")
    bed.world.advance(0.05)
    assert bond.curr_active.dev.name == "e2"
    bed.ok("ip -n s link set p2 down")
    bed.world.advance(0.25)
    assert bond.curr_active.dev.name == "e1"
    bed.ok("ip -n s link set p2 up")
    bed.world.advance(0.25)
    assert bond.curr_active.dev.name == "e2"           # always: the primary comes back
    bed.ok("ip link set bond0 type bond primary_reselect failure")
    bed.ok("ip -n s link set p2 down")
    bed.world.advance(0.25)
    bed.ok("ip -n s link set p2 up")
    bed.world.advance(0.25)
    assert bond.curr_active.dev.name == "e1"           # failure: stays until e1 fails
    assert "Primary Slave: e2 (primary_reselect failure)\n" in bed.ok(
        "cat /proc/net/bonding/bond0")


def test_slave_prio_picks_the_new_active(bed) -> None:  # type: ignore[no-untyped-def]
    _ab(bed, "miimon 100")
    bed.ok("ip link set e2 type bond_slave prio 10")
    bed.ok("ip link set bond0 up")
    bed.world.advance(0.05)
    assert bed.dev("bond0").curr_active.dev.name == "e2"


@pytest.mark.parametrize("fom,bond_mac_after,e2_after", [
    ("none", "02:00:00:00:00:01", "02:00:00:00:00:01"),
    ("active", "02:00:00:00:00:02", "02:00:00:00:00:02"),
    ("follow", "02:00:00:00:00:01", "02:00:00:00:00:01"),
])
def test_fail_over_mac(bed, fom, bond_mac_after, e2_after) -> None:  # type: ignore[no-untyped-def]
    _ab(bed, f"miimon 100 fail_over_mac {fom}")
    bed.ok("ip link set bond0 up")
    bond = bed.dev("bond0")
    bed.world.advance(0.05)
    bed.ok("ip -n s link set p1 down")
    bed.world.advance(0.25)
    assert bond.curr_active.dev.name == "e2"
    mac = lambda b: ":".join(f"{x:02x}" for x in b)  # noqa: E731
    assert mac(bond.address) == bond_mac_after
    assert mac(bed.dev("e2").address) == e2_after
    if fom == "follow":
        # the old active took the new one's address (a random one given at enslave)
        assert bed.dev("e1").address != bond.address
    bed.ok("ip link set e2 nomaster")
    assert mac(bed.dev("e2").address) == ("02:00:00:00:00:02" if fom != "active"
                                          else "02:00:00:00:00:02")


def test_arp_monitor_brings_slaves_down_without_replies(bed) -> None:  # type: ignore[no-untyped-def]
    bed.ok("ip netns add s")
    bed.ok("ip link add bond0 type bond mode balance-rr arp_interval 100 "
           "arp_ip_target 10.0.0.9")
    bed.ok("ip link add e1 type veth peer name p1 netns s")
    bed.ok("ip link set e1 master bond0")
    bed.ok("ip -n s link set p1 up")
    bed.ok("ip addr add 10.0.0.1/24 dev bond0")
    bed.ok("ip link set bond0 up")
    tx = bed.capture_rx("p1", "s")
    bond = bed.dev("bond0")
    bed.world.advance(0.05)
    assert bond.slaves[0].link == BOND_LINK_UP
    bed.world.advance(1)
    # one request per interval from 10.0.0.1 for the target, and no reply: down after
    # missed_max (2) intervals
    reqs = [f for f in tx if f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x01"]
    assert reqs and reqs[0][28:32] == bytes([10, 0, 0, 1]) and reqs[0][38:42] == \
        bytes([10, 0, 0, 9])
    assert bond.slaves[0].link == BOND_LINK_DOWN
    assert not bond.carrier_ok()
    # the target answers: the slave comes back
    bed.ok("ip -n s addr add 10.0.0.9/24 dev p1")
    bed.world.advance(1)
    assert bond.slaves[0].link == BOND_LINK_UP and bond.carrier_ok()


def test_active_backup_arp_monitor_with_validation(bed) -> None:  # type: ignore[no-untyped-def]
    """bond_activebackup_arp_mon: the probing finds e1 (its ARP is answered), the backup
    that sees no validated ARP goes down once out of its 2·interval grace and
    (missed_max + 1) intervals since its last receive."""
    bed.ok("ip netns add s")
    bed.ok("ip link add bond0 type bond mode active-backup arp_interval 100 "
           "arp_ip_target 10.0.0.9 arp_validate all")
    for i in (1, 2):
        bed.ok(f"ip link add e{i} type veth peer name p{i} netns s")
        bed.ok(f"ip link set e{i} master bond0")
        bed.ok(f"ip -n s link set p{i} up")
    bed.ok("ip -n s addr add 10.0.0.9/24 dev p1")
    bed.ok("ip addr add 10.0.0.1/24 dev bond0")
    bed.ok("ip link set bond0 up")
    bond = bed.dev("bond0")
    bed.world.run_until(250 * MS)
    assert bond.curr_active.dev.name == "e1" and bond.slaves[1].link == BOND_LINK_UP
    bed.world.run_until(300 * MS)
    assert bond.slaves[1].link == BOND_LINK_DOWN
    bed.world.advance(2)
    assert bond.curr_active.dev.name == "e1" and bond.slaves[0].link == BOND_LINK_UP
    assert "arp_validate all " in bed.ok("ip -d link show bond0")
    # the target goes away: the active slave fails after missed_max intervals
    bed.ok("ip -n s addr del 10.0.0.9/24 dev p1")
    bed.world.advance(0.5)
    assert bond.slaves[0].link != BOND_LINK_UP and not bond.carrier_ok()


def test_peer_notif_delay_spaces_the_notifications(bed) -> None:  # type: ignore[no-untyped-def]
    _ab(bed, "miimon 100 num_grat_arp 3 peer_notify_delay 200")
    bed.ok("ip addr add 10.0.0.1/24 dev bond0")
    bed.ok("ip link set bond0 up")
    bed.world.run_until(1000 * MS)
    rx2 = bed.capture_rx("p2", "s")
    times: list[int] = []
    n = bed.world.netns("s")
    n.add_rx_tap(n.devices["p2"], lambda p: times.append(bed.world.clock.now)
                 if p.protocol == 0x0806 else None)
    bed.ok("ip -n s link set p1 down")
    bed.world.run_until(2000 * MS)
    g = _garp(bed.dev("bond0").address, bytes([10, 0, 0, 1]))
    assert rx2.count(g) == 3
    # send_peer_notif = 3 * 2; one at the failover (1100 ms), then whenever the counter
    # is a multiple of peer_notif_delay (2 ticks): 1300 and 1500 ms
    assert [t // MS for t in times] == [1100, 1300, 1500]
