"""Malformed input never escapes the datapath: random frames of every interesting
EtherType (ARP, LACP/slow protocols, IPv4/IPv6, loopback) into and out of bonds of every
mode, with the ARP monitor (validation on) and alb's ARP snooping active."""
from __future__ import annotations

import random

import pytest

from netstack.core.dev import dev_queue_xmit, dev_queue_xmit_list

MODES = ["balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
         "balance-tlb", "balance-alb"]
TYPES = [b"\x08\x06", b"\x88\x09", b"\x08\x00", b"\x86\xdd", b"\x90\x00", b"\x81\x00"]


@pytest.mark.parametrize("mode", MODES)
def test_random_frames_in_and_out(bed, mode) -> None:  # type: ignore[no-untyped-def]
    mon = "arp_interval 100 arp_ip_target 10.0.0.9 arp_validate all" \
        if mode in ("balance-rr", "active-backup", "balance-xor", "broadcast") else "miimon 100"
    bed.ok("ip netns add s")
    bed.ok(f"ip link add bond0 type bond mode {mode} {mon} xmit_hash_policy encap3+4")
    for i in (1, 2):
        bed.ok(f"ip link add e{i} type veth peer name p{i} netns s")
        bed.ok(f"ip link set e{i} master bond0")
        bed.ok(f"ip -n s link set p{i} up")
    bed.ok("ip addr add 10.0.0.1/24 dev bond0")
    bed.ok("ip link set bond0 up")
    bed.world.advance(0.3)
    rnd = random.Random(mode)
    bond = bed.dev("bond0")
    dsts = [b"\xff" * 6, bytes.fromhex("0180c2000002"), bond.address,
            bytes.fromhex("333300000001")]
    for _ in range(150):
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 90)))
        frame = rnd.choice(dsts) + bytes.fromhex("02000000beef") + rnd.choice(TYPES) + body
        peer = bed.dev(rnd.choice(["p1", "p2"]), "s")
        dev_queue_xmit(bed.world.new_packet(frame), peer)
        out = bed.world.new_packet(frame[:6] + bond.address + frame[12:])
        out.protocol = int.from_bytes(frame[12:14], "big")
        out.network_header = out.data + 14
        dev_queue_xmit_list(bond, [out])
        bed.world.run_until_idle()
    bed.world.advance(1)
    assert bed.ok("cat /proc/net/bonding/bond0").startswith("Ethernet Channel Bonding")
