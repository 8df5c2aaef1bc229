"""``ip link … type bond|bond_slave``, option validation and status output.

Parser errors were measured with the host's iproute2 6.1 (they happen before the request
reaches a kernel, so this bond-less kernel can answer them); kernel-side refusals follow
bond_options.c (``bond_opt_check_deps``/``bond_opt_parse`` extacks) and bond_enslave."""
from __future__ import annotations

import json

import pytest

from netstack.cli.iplink_bond import USAGE


@pytest.mark.parametrize("cmd,rc,err", [
    ("mode foo", 255, 'Error: argument "foo" is wrong: invalid mode\n'),
    ("mode 7", 255, 'Error: argument "7" is wrong: invalid mode\n'),
    ("miimon x", 255, 'Error: argument "x" is wrong: invalid miimon\n'),
    ("p x", 255, 'Error: argument "x" is wrong: invalid peer_notify_delay\n'),
    ("use_carrier 256", 255, 'Error: argument "256" is wrong: invalid use_carrier\n'),
    ("num_grat_arp 300", 255,
     'Error: argument "300" is wrong: invalid num_grat_arp|num_unsol_na\n'),
    ("xmit_hash_policy 9", 255, 'Error: argument "9" is wrong: invalid xmit_hash_policy\n'),
    ("arp_missed_max x", 255, 'Error: argument "x" is wrong: invalid arp_missed_max\n'),
    ("arp_ip_target foo", 1, 'Error: an IP address is expected rather than "foo"\n'),
    ("arp_ip_target 300.1.1.1", 1,
     'Error: an IP address is expected rather than "300.1.1.1"\n'),
    ("primary nodev", 1, 'Cannot find device "nodev"\n'),
    ("active_slave nodev", 1, 'Cannot find device "nodev"\n'),
    ("ad_actor_system zz", 1, '"zz" is invalid lladdr.\n'),
    ("bogus 1", 1, 'bond: unknown command "bogus"?\n' + USAGE),
    ("missed_max 3", 1, 'bond: unknown command "missed_max"?\n' + USAGE),
    ("help", 1, USAGE),
])
def test_iproute2_parser_errors(bed, cmd, rc, err) -> None:  # type: ignore[no-untyped-def]
    assert bed.run(f"ip link add bond0 type bond {cmd}") == (rc, "", err)


def test_bond_slave_parser_errors(bed) -> None:  # type: ignore[no-untyped-def]
    bed.ok("ip link add bond0 type bond")
    bed.ok("ip link add d0 type dummy")
    bed.ok("ip link set d0 master bond0")
    assert bed.run("ip link set d0 type bond_slave bogus") == (
        1, "", 'bond_slave: unknown option "bogus"?\n'
               'Usage: ... bond_slave [ queue_id ID ] [ prio PRIORITY ]\n')
    assert bed.run("ip link set d0 type bond_slave queue_id x") == (
        255, "", 'Error: argument "x" is wrong: queue_id is invalid\n')
    assert bed.run("ip link set d0 type bond_slave prio x") == (
        255, "", 'Error: argument "x" is wrong: prio is invalid\n')


@pytest.mark.parametrize("cmd,err", [
    ("mode active-backup packets_per_slave 2", "Error: option not supported in mode.\n"),
    ("lacp_rate fast", "Error: option not supported in mode.\n"),
    ("mode 802.3ad arp_interval 100", "Error: option not supported in mode.\n"),
    ("updelay 200", "RTNETLINK answers: Operation not permitted\n"),
    ("miimon 3000000000", "Error: invalid option value.\n"),
    ("mode 802.3ad ad_actor_sys_prio 0", "Error: invalid option value.\n"),
    ("mode 802.3ad ad_user_port_key 1024", "Error: invalid option value.\n"),
    ("mode 802.3ad ad_actor_system 01:00:00:00:00:01", "Error: invalid option value.\n"),
    ("arp_ip_target 255.255.255.255", "Error: invalid option value.\n"),
    ("arp_missed_max 0", "Error: invalid option value.\n"),
])
def test_kernel_option_refusals(bed, cmd, err) -> None:  # type: ignore[no-untyped-def]
    assert bed.run(f"ip link add bond0 type bond {cmd}") == (2, "", err)
    assert "bond0" not in bed.world.init_net.devices


def test_option_side_effects(bed) -> None:  # type: ignore[no-untyped-def]
    # 802.3ad/tlb/alb force miimon 100 when no monitor is set; delays are kept in miimon
    # units, rounded down
    bed.ok("ip link add b0 type bond mode 802.3ad updelay 250")
    js = json.loads(bed.ok("ip -d -j link show b0"))[0]["linkinfo"]["info_data"]
    assert (js["miimon"], js["updelay"]) == (100, 200)
    bed.ok("ip link set b0 type bond miimon 50")
    js = json.loads(bed.ok("ip -d -j link show b0"))[0]["linkinfo"]["info_data"]
    assert (js["miimon"], js["updelay"]) == (50, 100)
    # arp_interval and miimon exclude each other: in one request bond_changelink refuses
    # them, in two the later one switches the other off
    assert bed.run("ip link add b1 type bond miimon 100 arp_interval 200") == (
        2, "", "Error: ARP monitoring cannot be used with MII monitoring.\n")
    assert bed.run("ip link add b1 type bond miimon 100 arp_validate all") == (
        2, "", "Error: ARP validating cannot be used with MII monitoring.\n")
    bed.ok("ip link add b1 type bond miimon 100")
    bed.ok("ip link set b1 type bond arp_interval 200 arp_ip_target 10.0.0.1")
    js = json.loads(bed.ok("ip -d -j link show b1"))[0]["linkinfo"]["info_data"]
    assert (js["miimon"], js["arp_interval"], js["arp_ip_target"]) == (0, 200, ["10.0.0.1"])
    bed.ok("ip link set b1 type bond miimon 100")
    js = json.loads(bed.ok("ip -d -j link show b1"))[0]["linkinfo"]["info_data"]
    assert (js["miimon"], js["arp_interval"]) == (100, 0)
    # get_index takes the table index too; the mode can't change with slaves or while up
    bed.ok("ip link add b2 type bond mode 1")
    bed.ok("ip link add d0 type dummy")
    bed.ok("ip link set d0 master b2")
    assert bed.run("ip link set b2 type bond mode balance-xor")[2] == \
        "RTNETLINK answers: Directory not empty\n"
    bed.ok("ip link set b0 up")
    assert bed.run("ip link set b0 type bond lacp_rate fast")[2] == \
        "RTNETLINK answers: Device or resource busy\n"


def test_enslave_refusals(bed) -> None:  # type: ignore[no-untyped-def]
    bed.ok("ip link add bond0 type bond")
    bed.ok("ip link add d0 type dummy")
    bed.ok("ip link set d0 up")
    assert bed.run("ip link set d0 master bond0") == (
        2, "", "Error: Device can not be enslaved while up.\n")
    assert bed.run("ip link set bond0 master bond0") == (
        2, "", "Error: Cannot enslave bond to itself.\n")
    # "master X up" enslaves before opening (do_setlink's order) and works
    bed.ok("ip link set d0 down")
    bed.ok("ip link set d0 master bond0 up")
    assert bed.dev("d0").master is bed.dev("bond0")
    # moving to another bond: released (closed) first, then enslaved
    bed.ok("ip link add bond1 type bond")
    bed.ok("ip link set d0 master bond1")
    assert bed.dev("d0").master is bed.dev("bond1")


def test_mac_and_mtu_follow_the_kernel(bed) -> None:  # type: ignore[no-untyped-def]
    bed.ok("ip link add bond0 mtu 1400 type bond")
    bed.ok("ip link add d0 address 02:00:00:00:00:0d type dummy")
    bed.ok("ip link add d1 address 02:00:00:00:00:0e type dummy")
    bond, d0, d1 = bed.dev("bond0"), bed.dev("d0"), bed.dev("d1")
    bed.ok("ip link set d0 master bond0")
    bed.ok("ip link set d1 master bond0")
    # the bond takes the first slave's MAC, every slave the bond's MAC and MTU
    assert bond.address == d0.address == d1.address == bytes.fromhex("02000000000d")
    assert d0.mtu == d1.mtu == 1400
    bed.ok("ip link set d1 nomaster")
    assert d1.address == bytes.fromhex("02000000000e") and d1.mtu == 1500
    assert not d1.flags & 0x1                     # closed by the release
    bed.ok("ip link set d0 nomaster")
    # the last slave gone: a new random address
    assert bond.address != bytes.fromhex("02000000000d")
    bed.ok("ip link set d0 master bond0")
    bed.ok("ip link del d0")
    assert not bond.slaves


def test_active_backup_status_text(bed) -> None:  # type: ignore[no-untyped-def]
    bed.ok("ip link add bond0 type bond mode active-backup miimon 100 fail_over_mac active")
    bed.ok("ip link add d0 address 02:00:00:00:00:0d type dummy")
    bed.ok("ip link set d0 master bond0")
    bed.ok("ip link set bond0 up")
    bed.world.advance(0.05)
    text = bed.ok("cat /proc/net/bonding/bond0")
    head, slave = text.split("\nSlave Interface: ")
    assert head.split("\n", 2)[2] == (
        "Bonding Mode: fault-tolerance (active-backup) (fail_over_mac active)\n"
        "Primary Slave: None\n"
        "Currently Active Slave: d0\n"
        "MII Status: up\n"
        "MII Polling Interval (ms): 100\n"
        "Up Delay (ms): 0\n"
        "Down Delay (ms): 0\n"
        "Peer Notification Delay (ms): 0\n")
    assert slave == ("d0\nMII Status: up\nSpeed: Unknown\nDuplex: unknown\n"
                     "Link Failure Count: 0\nPermanent HW addr: 02:00:00:00:00:0d\n"
                     "Slave queue ID: 0\n")
    out = bed.ok("ip -d link show d0")
    assert "\n    bond_slave state ACTIVE mii_status UP link_failure_count 0 perm_hwaddr " \
           "02:00:00:00:00:0d queue_id 0 prio 0 addrgenmode" in out
    js = json.loads(bed.ok("ip -d -j link show bond0"))[0]["linkinfo"]["info_data"]
    assert js["active_slave"] == "d0" and js["fail_over_mac"] == "active"
    assert js["arp_validate"] is None and "ad_info" not in js
    assert bed.run("cat /proc/net/bonding/bond9") == (
        1, "", "cat: /proc/net/bonding/bond9: No such file or directory\n")


def test_cat_proc_sys(bed) -> None:  # type: ignore[no-untyped-def]
    assert bed.ok("cat /proc/sys/net/ipv4/ip_forward") == "0\n"
    from netstack.errors import NotSupported
    with pytest.raises(NotSupported):
        bed.run("cat /etc/passwd")


def test_bond_mtu_and_address_reach_the_slaves(bed) -> None:  # type: ignore[no-untyped-def]
    bed.ok("ip link add bond0 type bond")
    bed.ok("ip link add d0 type dummy")
    bed.ok("ip link set d0 master bond0")
    bed.ok("ip link set bond0 mtu 9000 address 02:00:00:00:00:42")
    d0 = bed.dev("d0")
    assert d0.mtu == 9000 and d0.address == bytes.fromhex("020000000042")
    bed.ok("ip link set d0 nomaster")
    assert d0.mtu == 1500


def test_bond_address_rules_per_mode(bed) -> None:  # type: ignore[no-untyped-def]
    """bond_set_mac_address: active-backup with fail_over_mac keeps its address."""
    bed.ok("ip link add b0 type bond mode active-backup fail_over_mac active")
    bed.ok("ip link add d0 address 02:00:00:00:00:0d type dummy")
    bed.ok("ip link set d0 master b0")
    before = bed.dev("b0").address
    bed.ok("ip link set b0 address 02:00:00:00:00:77")
    assert bed.dev("b0").address == before and bed.dev("d0").address == before


def test_promiscuity_goes_to_the_active_slave(bed) -> None:  # type: ignore[no-untyped-def]
    bed.ok("ip link add b0 type bond mode active-backup miimon 100")
    for d in ("d0", "d1"):
        bed.ok(f"ip link add {d} type dummy")
        bed.ok(f"ip link set {d} master b0")
    bed.ok("ip link set b0 up promisc on")
    bed.world.advance(0.05)
    assert bed.dev("d0").flags & 0x100 and not bed.dev("d1").flags & 0x100
