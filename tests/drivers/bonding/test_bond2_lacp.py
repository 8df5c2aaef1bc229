"""802.3ad leftovers on the virtual clock: passive LACP (``lacp_active off``, with the
6.17 periodic rules of bond_3ad.c), the independent control mux machine
(``coupled_control off``), ``broadcast_neighbor`` (6.17) and the 6.17 defaults of
``ad_initialize_port``."""
from __future__ import annotations

import errno

import pytest

from netstack.core.dev import dev_queue_xmit
from netstack.drivers.bonding import bond_3ad as ad
from netstack.drivers.bonding.bond_options import bond_opt_set
from netstack.errors import KernelError

MS = 1_000_000


def _bond(bed, ns: str):  # type: ignore[no-untyped-def]
    return bed.world.netns(ns).devices["bond0"]


def _lacpdus(frames: list[bytes]) -> list[ad.Lacpdu]:
    return [ad.Lacpdu.parse(f[14:]) for f in frames
            if f[12:14] == b"\x88\x09" and f[14] == ad.AD_TYPE_LACPDU]


def test_passive_port_speaks_only_when_spoken_to_then_periodically(bed) -> None:  # type: ignore[no-untyped-def]
    """6.17 ("send LACPDUs periodically in passive mode after receiving partner's
    LACPDU"): the actor's LACP_Activity bit follows lacp_active, no periodic machine
    while both ends are passive (the defaulted partner is no longer assumed active), and
    a periodic machine once an active partner is heard — so the aggregation holds."""
    bed.lacp_pair(2, opts="lacp_rate fast lacp_active off", opts_b="lacp_rate fast",
                  up=False)
    bed.ok("ip -n a link set bond0 up")
    a = _bond(bed, "a")
    tx = bed.capture_tx("a1", "a")
    bed.world.run_until(5000 * MS)
    # alone: no periodic transmissions (only the ntt of the mux machine's entries)
    for s in a.slaves:
        assert s.ad_port.sm_periodic_state == ad.AD_NO_PERIODIC
        assert not s.ad_port.actor_oper_port_state & ad.LACP_STATE_LACP_ACTIVITY
    alone = _lacpdus(tx)
    assert 1 <= len(alone) <= 2
    assert all(not p.actor_state & ad.LACP_STATE_LACP_ACTIVITY for p in alone)
    # the active partner comes up: the passive side now runs its periodic machine (fast,
    # the partner asks for short timeouts) and the aggregation converges and stays
    bed.ok("ip -n b link set bond0 up")
    bed.world.run_until(15_000 * MS)
    b = _bond(bed, "b")
    for bond in (a, b):
        for s in bond.slaves:
            assert s.ad_port.sm_mux_state == ad.AD_MUX_COLLECTING_DISTRIBUTING
        assert bond.carrier_ok() and len(bond.usable_slaves) == 2
    assert a.slaves[0].ad_port.sm_periodic_state == ad.AD_FAST_PERIODIC
    n0 = len(_lacpdus(tx))
    bed.world.run_until(75_000 * MS)
    sent = _lacpdus(tx)[n0:]
    assert 55 <= len(sent) <= 65                     # one a second
    assert all(s.ad_port.sm_mux_state == ad.AD_MUX_COLLECTING_DISTRIBUTING
               and s.ad_port.churn_actor_count == 0 for s in a.slaves)
    # the partner sees a passive actor
    assert not b.slaves[0].ad_port.partner_oper.port_state & ad.LACP_STATE_LACP_ACTIVITY


def test_lacp_active_follows_the_option_and_needs_the_bond_down(bed) -> None:  # type: ignore[no-untyped-def]
    bed.ok("ip link add bond0 type bond mode 802.3ad")
    bed.ok("ip link add d0 type dummy")
    bed.ok("ip link set d0 master bond0")
    port = bed.dev("bond0").slaves[0].ad_port
    assert port.actor_oper_port_state & ad.LACP_STATE_LACP_ACTIVITY
    bed.ok("ip link set bond0 type bond lacp_active off")
    assert not port.actor_oper_port_state & ad.LACP_STATE_LACP_ACTIVITY
    assert "LACP active: off\n" in bed.ok("cat /proc/net/bonding/bond0")
    assert " lacp_active off " in bed.ok("ip -d link show bond0")
    bed.ok("ip link set bond0 type bond lacp_active on")
    assert port.actor_oper_port_state & ad.LACP_STATE_LACP_ACTIVITY
    bed.ok("ip link set bond0 up")
    assert bed.run("ip link set bond0 type bond lacp_active off") == (
        2, "", "RTNETLINK answers: Device or resource busy\n")


def test_expired_no_longer_assumes_an_active_partner(bed) -> None:  # type: ignore[no-untyped-def]
    bed.lacp_pair(1, opts="lacp_rate fast lacp_active off", opts_b="lacp_rate fast")
    bed.world.run_until(5000 * MS)
    port = _bond(bed, "a").slaves[0].ad_port
    assert port.partner_oper.port_state & ad.LACP_STATE_LACP_ACTIVITY
    bed.ok("ip -n b link set bond0 down")
    # current_while (3 s) runs out: EXPIRED sets the partner's Timeout bit but (6.17) no
    # longer its Activity bit — which still holds what the partner last said …
    bed.world.run_until(8300 * MS)
    assert port.sm_rx_state == ad.AD_RX_EXPIRED
    assert port.partner_oper.port_state & ad.LACP_STATE_LACP_TIMEOUT
    # … and DEFAULTED takes the admin template, port_state 0: both passive → no periodic
    bed.world.run_until(11_500 * MS)
    assert port.sm_rx_state == ad.AD_RX_DEFAULTED
    assert port.partner_oper.port_state == 0
    assert port.sm_periodic_state == ad.AD_NO_PERIODIC


def _uncoupled_pair(bed, b_uncoupled: bool) -> None:  # type: ignore[no-untyped-def]
    bed.lacp_pair(2, up=False)
    bond_opt_set(_bond(bed, "a"), "coupled_control", 0)
    if b_uncoupled:
        bond_opt_set(_bond(bed, "b"), "coupled_control", 0)


@pytest.mark.parametrize("b_uncoupled", [False, True])
def test_independent_control_collects_before_distributing(bed, b_uncoupled) -> None:  # type: ignore[no-untyped-def]
    """coupled_control off (bond_3ad.c, IEEE 802.1AX-2008 5.4.15): ATTACHED →
    COLLECTING (Collecting set, Distributing clear, the slave not yet in the transmit
    array) → DISTRIBUTING once the partner says it collects."""
    _uncoupled_pair(bed, b_uncoupled)
    a = _bond(bed, "a")
    bed.ok("ip -n a link set bond0 up")
    bed.ok("ip -n b link set bond0 up")
    port = a.slaves[0].ad_port
    seen: list[int] = []
    collecting_ok = []
    for _ in range(60):
        bed.world.advance(0.1)
        st = port.sm_mux_state
        if not seen or seen[-1] != st:
            seen.append(st)
        if st == ad.AD_MUX_COLLECTING:
            collecting_ok.append(
                port.actor_oper_port_state & ad.LACP_STATE_COLLECTING
                and not port.actor_oper_port_state & ad.LACP_STATE_DISTRIBUTING
                and a.slaves[0] not in a.usable_slaves and not a.slaves[0].rx_disabled)
    assert seen[-3:] == [ad.AD_MUX_ATTACHED, ad.AD_MUX_COLLECTING, ad.AD_MUX_DISTRIBUTING]
    assert collecting_ok and all(collecting_ok)
    st = port.actor_oper_port_state
    assert st & ad.LACP_STATE_COLLECTING and st & ad.LACP_STATE_DISTRIBUTING
    assert len(a.usable_slaves) == 2 and a.carrier_ok()
    assert "LACP coupled_control: off\n" in bed.ok("cat /proc/net/bonding/bond0", "a")
    # the partner stops collecting (its port goes back to ATTACHED): distributing stops,
    # the port stays collecting
    bport = _bond(bed, "b").slaves[0].ad_port
    bport.sm_vars &= ~ad.AD_PORT_SELECTED
    bed.world.advance(1)
    assert port.sm_mux_state in (ad.AD_MUX_COLLECTING, ad.AD_MUX_DISTRIBUTING)


def test_coupled_control_option_checks(bed) -> None:  # type: ignore[no-untyped-def]
    bed.ok("ip link add bond0 type bond")
    bond = bed.dev("bond0")
    with pytest.raises(KernelError) as e:
        bond_opt_set(bond, "coupled_control", 0)
    assert e.value.errno == errno.EACCES
    bed.ok("ip link set bond0 type bond mode 802.3ad")
    with pytest.raises(KernelError) as e:
        bond_opt_set(bond, "coupled_control", 2)
    assert e.value.errno == errno.EINVAL
    bed.ok("ip link set bond0 up")
    with pytest.raises(KernelError) as e:
        bond_opt_set(bond, "coupled_control", 0)
    assert e.value.errno == errno.EBUSY
    assert bond.params.coupled_control == 1


def _frame(dst: bytes, src: bytes, proto: int, payload: bytes) -> bytes:
    return dst + src + proto.to_bytes(2, "big") + payload


def test_broadcast_neighbor_sends_arp_and_nd_on_every_usable_slave(bed) -> None:  # type: ignore[no-untyped-def]
    bed.lacp_pair(2, up=False)
    a = _bond(bed, "a")
    bond_opt_set(a, "broadcast_neighbor", 1)
    bed.ok("ip -n a link set bond0 up")
    bed.ok("ip -n b link set bond0 up")
    bed.world.run_until(5000 * MS)
    assert len(a.usable_slaves) == 2
    txs = [bed.capture_tx(f"a{i}", "a") for i in (1, 2)]
    src = a.address
    arp = _frame(b"\xff" * 6, src, 0x0806, bytes.fromhex("0001080006040001") + src
                 + bytes(4) + bytes(6) + bytes(4))
    ip6 = bytes.fromhex("6000000000083aff") + bytes(15) + b"\x01" + bytes(15) + b"\x02"
    na = _frame(b"\x33\x33\x00\x00\x00\x01", src, 0x86DD, ip6 + bytes((136, 0, 0, 0, 0, 0, 0, 0)))
    echo = _frame(b"\x33\x33\x00\x00\x00\x01", src, 0x86DD, ip6 + bytes((128, 0, 0, 0, 0, 0, 0, 0)))
    udp = _frame(b"\x02" * 6, src, 0x0800, bytes(28))
    for f, proto in ((arp, 0x0806), (na, 0x86DD), (echo, 0x86DD), (udp, 0x0800)):
        pkt = bed.world.new_packet(f)
        pkt.protocol = proto
        pkt.mac_header = pkt.data
        dev_queue_xmit(pkt, a)
    got = [[f for f in t if f[12:14] != b"\x88\x09"] for t in txs]
    both = [f for f in got[0] if f in got[1]]
    assert arp in both and na in both
    assert echo not in both and udp not in both
    assert sum(f == echo for t in got for f in t) == 1
    assert sum(f == udp for t in got for f in t) == 1


def test_broadcast_neighbor_renotifies_peers_on_both_links(bed) -> None:  # type: ignore[no-untyped-def]
    """ad_cond_set_peer_notif: a port entering collecting/distributing re-arms the
    notifications; the gratuitous ARP then leaves on every usable slave."""
    bed.lacp_pair(2, up=False)
    a = _bond(bed, "a")
    bond_opt_set(a, "broadcast_neighbor", 1)
    bed.ok("ip -n a addr add 10.0.0.1/24 dev bond0")
    rx = [bed.capture_rx(f"b{i}", "b") for i in (1, 2)]
    bed.ok("ip -n a link set bond0 up")
    bed.ok("ip -n b link set bond0 up")
    bed.world.run_until(6000 * MS)
    garp = [[f for f in r if f[12:14] == b"\x08\x06" and f[28:32] == f[38:42]
             == bytes([10, 0, 0, 1])] for r in rx]
    assert garp[0] and garp[1]


def test_broadcast_neighbor_is_802_3ad_only_and_cleared_by_a_mode_change(bed) -> None:  # type: ignore[no-untyped-def]
    bed.ok("ip link add bond0 type bond")
    bond = bed.dev("bond0")
    with pytest.raises(KernelError) as e:
        bond_opt_set(bond, "broadcast_neighbor", 1)
    assert e.value.errno == errno.EACCES
    bed.ok("ip link set bond0 type bond mode 802.3ad")
    bond_opt_set(bond, "broadcast_neighbor", 1)
    bed.ok("ip link set bond0 type bond mode balance-xor")
    assert bond.params.broadcast_neighbor == 0
    # iproute2 6.1 has no keyword for it (nor for coupled_control)
    rc, _out, err = bed.run("ip link set bond0 type bond broadcast_neighbor on")
    assert rc == 1 and err.startswith('bond: unknown command "broadcast_neighbor"?\n')
