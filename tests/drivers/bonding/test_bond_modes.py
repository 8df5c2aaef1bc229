"""Mode × traffic matrix: which slave each frame leaves by, what the bond delivers from
which slave (bond_main.c ``__bond_start_xmit`` per mode, ``bond_handle_frame`` /
``bond_should_deliver_exact_match``; bond_alb.c for tlb/alb)."""
from __future__ import annotations

import struct

import pytest

from netstack.core.dev import dev_queue_xmit, dev_queue_xmit_list
from netstack.drivers.bonding.bond_hash import bond_xmit_hash

PEER = bytes.fromhex("020000000099")


def _bond(bed, mode: str, n: int = 3, extra: str = "") -> None:  # type: ignore[no-untyped-def]
    bed.ok("ip netns add s")
    bed.ok(f"ip link add bond0 type bond mode {mode} {extra}")
    for i in range(1, n + 1):
        bed.ok(f"ip link add e{i} address 02:00:00:00:00:0{i} type veth peer name p{i} "
               f"netns s address 02:00:00:00:01:0{i}")
        bed.ok(f"ip link set e{i} master bond0")
        bed.ok(f"ip -n s link set p{i} up")
    bed.ok("ip link set bond0 up")


def _udp(bed, dst_mac: bytes, sport: int, dst_ip: bytes = bytes([10, 0, 0, 2]),  # type: ignore[no-untyped-def]
         proto: int = 17) -> bytes:
    src = bed.dev("bond0").address
    l4 = struct.pack("!HHHH", sport, 53, 8, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, proto, 0,
                     bytes([10, 0, 0, 1]), dst_ip)
    return dst_mac + src + b"\x08\x00" + ip + l4


def _send(bed, frames: list[bytes]) -> None:  # type: ignore[no-untyped-def]
    bond = bed.dev("bond0")
    pkts = []
    for f in frames:
        p = bed.world.new_packet(f)
        p.protocol = int.from_bytes(f[12:14], "big")
        p.network_header = p.data + 14
        pkts.append(p)
    dev_queue_xmit_list(bond, pkts)
    bed.world.run_until_idle()


def _taps(bed, n: int = 3) -> list[list[bytes]]:  # type: ignore[no-untyped-def]
    return [bed.capture_rx(f"p{i}", "s") for i in range(1, n + 1)]


def _data(frames: list[bytes]) -> list[bytes]:
    return [f for f in frames if f[12:14] == b"\x08\x00"]


def test_round_robin_starts_at_slave_one(bed) -> None:  # type: ignore[no-untyped-def]
    _bond(bed, "balance-rr")
    taps = _taps(bed)
    frames = [_udp(bed, PEER, 1000 + i) for i in range(6)]
    _send(bed, frames)
    # rr_tx_counter is incremented before use: the first packet goes to slave 1
    assert _data(taps[1]) == [frames[0], frames[3]]
    assert _data(taps[2]) == [frames[1], frames[4]]
    assert _data(taps[0]) == [frames[2], frames[5]]


def test_round_robin_packets_per_slave(bed) -> None:  # type: ignore[no-untyped-def]
    _bond(bed, "balance-rr", extra="packets_per_slave 2")
    taps = _taps(bed)
    frames = [_udp(bed, PEER, 1000 + i) for i in range(6)]
    _send(bed, frames)
    # counter 1..6 // 2 = 0,1,1,2,2,3 → e1,e2,e2,e3,e3,e1
    assert _data(taps[0]) == [frames[0], frames[5]]
    assert _data(taps[1]) == frames[1:3]
    assert _data(taps[2]) == frames[3:5]


def test_round_robin_igmp_uses_the_active_slave(bed) -> None:  # type: ignore[no-untyped-def]
    _bond(bed, "balance-rr")
    taps = _taps(bed)
    igmp = [_udp(bed, bytes.fromhex("01005e000016"), 7, bytes([224, 0, 0, 22]), proto=2)
            for _ in range(3)]
    _send(bed, igmp)
    assert len(_data(taps[0])) == 3 and not _data(taps[1]) and not _data(taps[2])


def test_active_backup_sends_on_the_active_slave_only(bed) -> None:  # type: ignore[no-untyped-def]
    _bond(bed, "active-backup", extra="miimon 100")
    bed.world.advance(0.01)
    taps = _taps(bed)
    frames = [_udp(bed, PEER, 1000 + i) for i in range(4)]
    _send(bed, frames)
    assert _data(taps[0]) == frames and not _data(taps[1]) and not _data(taps[2])


@pytest.mark.parametrize("policy,num", [("layer2", 0), ("layer2+3", 2), ("layer3+4", 1)])
def test_xor_slave_is_hash_modulo_count(bed, policy, num) -> None:  # type: ignore[no-untyped-def]
    _bond(bed, "balance-xor", extra=f"xmit_hash_policy {policy}")
    taps = _taps(bed)
    frames = [_udp(bed, bytes([2, 0, 0, 0, 0, m]), sp, bytes([10, 0, 0, d]))
              for m, sp, d in ((1, 100, 2), (2, 200, 3), (3, 300, 4), (4, 401, 5),
                               (5, 555, 9), (6, 1234, 7))]
    _send(bed, frames)
    for f in frames:
        want = bond_xmit_hash(num, f) % 3
        assert f in taps[want], (policy, f.hex())


def test_broadcast_sends_everything_everywhere(bed) -> None:  # type: ignore[no-untyped-def]
    _bond(bed, "broadcast")
    taps = _taps(bed)
    frames = [_udp(bed, PEER, 1000 + i) for i in range(2)]
    _send(bed, frames)
    assert all(_data(t) == frames for t in taps)
    bed.ok("ip -n s link set p3 down")   # no miimon: the link state stays up …
    _send(bed, frames)
    assert all(len(_data(t)) == 4 for t in taps[:2])


def test_tlb_balances_unicast_and_rewrites_source_mac(bed) -> None:  # type: ignore[no-untyped-def]
    _bond(bed, "balance-tlb", n=2)
    bed.world.advance(0.05)
    bond = bed.dev("bond0")
    assert bond.curr_active.dev.name == "e1"
    taps = _taps(bed, 2)
    # layer2 hashing (the default): one flow per destination MAC
    frames = [_udp(bed, bytes([2, 0, 0, 0, 0, 0x10 + i]), 1000) for i in range(8)]
    _send(bed, frames)
    # new hash entries have no load history: all go to the first least-loaded slave
    assert _data(taps[0]) == frames and not _data(taps[1])
    # the rebalance (every 10 s) gives each used entry a load history (1 + bytes / 10)
    # and rebinds the entries one by one to the least loaded slave
    bed.world.advance(10.1)
    _send(bed, frames)
    got1, got2 = _data(taps[0])[8:], _data(taps[1])
    assert len(got1) + len(got2) == 8 and len(got1) == len(got2) == 4
    # frames leaving the non-active slave carry that slave's own MAC as source
    assert all(f[6:12] == bed.dev("e2").address for f in got2)
    assert all(f[6:12] == bond.address for f in got1)
    assert bed.dev("e2").address != bond.address
    # broadcast is never balanced: the active slave
    _send(bed, [_udp(bed, b"\xff" * 6, 9)])
    assert _data(taps[0])[-1][0:6] == b"\xff" * 6


def test_tlb_and_alb_send_learning_packets(bed) -> None:  # type: ignore[no-untyped-def]
    _bond(bed, "balance-alb", n=2)
    taps = _taps(bed, 2)
    bed.world.advance(1.05)
    for i, t in enumerate(taps, start=1):
        lp = [f for f in t if f[12:14] == b"\x90\x00"]
        assert lp, i
        mac = bed.dev(f"e{i}").address
        assert lp[0] == mac + mac + b"\x90\x00" + bytes(46)


def test_alb_arp_replies_name_the_clients_slave(bed) -> None:  # type: ignore[no-untyped-def]
    _bond(bed, "balance-alb", n=2)
    bed.ok("ip addr add 10.0.0.1/24 dev bond0")
    bed.world.advance(0.05)
    taps = _taps(bed, 2)
    bond = bed.dev("bond0")
    replies = []
    for i, client in enumerate((bytes([10, 0, 0, 7]), bytes([10, 0, 0, 8]))):
        cmac = bytes([2, 0, 0, 0, 7, i])
        arp = (cmac + bond.address + b"\x08\x06" + bytes.fromhex("0001080006040002")
               + bond.address + bytes([10, 0, 0, 1]) + cmac + client)
        replies.append(arp)
    _send(bed, replies)
    arps = [[f for f in t if f[12:14] == b"\x08\x06"] for t in taps]
    # one reply per slave (round robin of __rlb_next_rx_slave), the ARP sender MAC is
    # the slave's own
    assert len(arps[0]) == 1 and len(arps[1]) == 1
    for i in (0, 1):
        assert arps[i][0][22:28] == bed.dev(f"e{i + 1}").address


def test_receive_rules(bed) -> None:  # type: ignore[no-untyped-def]
    """active-backup: frames on the backup are dropped (exact match, rx_nohandler) except
    link-local destinations; round-robin: every slave delivers, broadcasts twice."""
    _bond(bed, "active-backup", n=2, extra="miimon 100")
    bed.world.advance(0.05)
    seen = bed.capture_rx("bond0")
    p1, p2 = bed.dev("p1", "s"), bed.dev("p2", "s")
    bond = bed.dev("bond0")
    bcast = b"\xff" * 6 + PEER + b"\x08\x00" + bytes(28)
    lldp = bytes.fromhex("0180c200000e") + PEER + b"\x88\xcc" + bytes(30)
    for dev in (p1, p2):
        dev_queue_xmit(bed.world.new_packet(bcast), dev)
        dev_queue_xmit(bed.world.new_packet(lldp), dev)
    bed.world.run_until_idle()
    assert len([f for f in seen if f[12:14] == b"\x08\x00"]) == 1     # only via e1
    e2 = bed.dev("e2")
    assert e2.stats.rx_nohandler == 1
    # the LLDP frame on the backup is passed on with skb->dev = e2 (RX_HANDLER_PASS)
    assert len([f for f in seen if f[12:14] == b"\x88\xcc"]) == 1
    assert bond.stats.rx_packets == 4


def test_receive_round_robin_delivers_from_all(bed) -> None:  # type: ignore[no-untyped-def]
    _bond(bed, "balance-rr", n=2)
    seen = bed.capture_rx("bond0")
    bcast = b"\xff" * 6 + PEER + b"\x08\x00" + bytes(28)
    for i in (1, 2):
        dev_queue_xmit(bed.world.new_packet(bcast), bed.dev(f"p{i}", "s"))
    bed.world.run_until_idle()
    assert len(seen) == 2


def test_no_usable_slave_is_a_tx_drop(bed) -> None:  # type: ignore[no-untyped-def]
    bed.ok("ip link add bond0 type bond mode balance-xor")
    bed.ok("ip link set bond0 up")
    _send(bed, [_udp(bed, PEER, 1)])
    assert bed.dev("bond0").stats.tx_dropped == 1
    assert bed.world.init_net.drops["NOT_SPECIFIED"] == 1


def test_tlb_without_dynamic_lb_uses_the_hash(bed) -> None:  # type: ignore[no-untyped-def]
    _bond(bed, "balance-tlb", n=2, extra="tlb_dynamic_lb 0 xmit_hash_policy layer3+4")
    bed.world.advance(0.05)
    taps = _taps(bed, 2)
    frames = [_udp(bed, PEER, 1000 + i, bytes([10, 0, 0, 2 + i])) for i in range(8)]
    _send(bed, frames)
    bond = bed.dev("bond0")
    for f in frames:
        i = bond_xmit_hash(1, f) % 2
        got = [g for g in _data(taps[i]) if g[12:] == f[12:]]
        assert got, f.hex()
        want_src = bond.address if i == 0 else bed.dev("e2").address
        assert got[0][6:12] == want_src


def test_alb_inactive_slaves_take_unicast_only(bed) -> None:  # type: ignore[no-untyped-def]
    _bond(bed, "balance-alb", n=2)
    bed.world.advance(0.05)
    seen = bed.capture_rx("bond0")
    e2 = bed.dev("e2")
    uni = e2.address + PEER + b"\x08\x00" + bytes(28)
    bcast = b"\xff" * 6 + PEER + b"\x08\x00" + bytes(28)
    for f in (uni, bcast):
        dev_queue_xmit(bed.world.new_packet(f), bed.dev("p2", "s"))
    bed.world.run_until_idle()
    assert [f[0:6] for f in seen if f[12:14] == b"\x08\x00"] == [e2.address]
    assert e2.stats.rx_nohandler == 1
