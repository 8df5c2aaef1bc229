"""NUD state machine traces on the virtual clock (net/core/neighbour.c
neigh_timer_handler, __neigh_event_send, __neigh_update)."""
from __future__ import annotations

import pytest
from test_neigh_env import KEY, MAC_H, MAC_R, make_env

from netstack.core.neighbour import (NEIGH_UPDATE_F_ADMIN, NEIGH_UPDATE_F_OVERRIDE,
                                     NEIGH_UPDATE_F_WEAK_OVERRIDE, NTF_EXT_VALIDATED,
                                     NUD_DELAY, NUD_FAILED, NUD_INCOMPLETE, NUD_PERMANENT,
                                     NUD_PROBE, NUD_REACHABLE, NUD_STALE, neigh_confirm,
                                     neigh_output, neigh_update, neigh_update_entry, pkt_truesize)

S = 1_000_000_000
OTHER = bytes.fromhex("0200000000ee")


def test_unresolved_probe_schedule_and_failure() -> None:
    """First solicitation at once, then every retrans_time; FAILED after mcast_solicit
    probes, each queued packet goes to error_report in order and is dropped."""
    e = make_env()
    pkts = [e.ip_packet(i) for i in range(3)]
    neigh_output(e.tbl, e.r0, KEY, pkts[:1])
    n = e.tbl.lookup(e.r0, KEY)
    assert n is not None and n.nud_state == NUD_INCOMPLETE
    # __neigh_event_send starts probes at ucast_solicit; arp_solicit sees 3 → broadcast
    assert e.ops.solicits == [(0, KEY, 3, pkts[0].id)]
    neigh_output(e.tbl, e.r0, KEY, pkts[1:])
    assert len(n.arp_queue) == 3 and e.sent == []
    e.world.advance(2.5)
    assert [s[0] for s in e.ops.solicits] == [0, 1 * S, 2 * S]
    # neigh_probe passes the newest queued packet
    assert e.ops.solicits[1][3] == pkts[2].id
    assert n.nud_state == NUD_INCOMPLETE
    e.world.advance(0.5)
    assert n.nud_state == NUD_FAILED and n.updated == 3 * S
    assert e.ops.errors == [p.id for p in pkts]
    assert e.net.drops["NEIGH_FAILED"] == 3
    assert n.arp_queue == [] and n.arp_queue_len_bytes == 0
    assert e.world.clock.next_expiry() is None or not n.timer.active


def test_mcast_solicit_sysctl_sets_probe_count() -> None:
    e = make_env()
    e.net.sysctl.set("net.ipv4.neigh.r0.mcast_solicit", "5")
    neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(1)])
    e.world.advance(10)
    assert [s[0] for s in e.ops.solicits] == [0, S, 2 * S, 3 * S, 4 * S]
    assert e.tbl.lookup(e.r0, KEY).nud_state == NUD_FAILED


def test_retrans_time_sysctl() -> None:
    e = make_env()
    e.net.sysctl.set("net.ipv4.neigh.r0.retrans_time_ms", "250")
    neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(1)])
    e.world.advance(2)
    assert [s[0] for s in e.ops.solicits] == [0, 250_000_000, 500_000_000]
    assert e.tbl.lookup(e.r0, KEY).nud_state == NUD_FAILED


def test_no_mcast_no_app_fails_at_once() -> None:
    e = make_env()
    e.net.sysctl.set("net.ipv4.neigh.r0.mcast_solicit", "0")
    p = e.ip_packet(1)
    neigh_output(e.tbl, e.r0, KEY, [p])
    assert e.tbl.lookup(e.r0, KEY).nud_state == NUD_FAILED
    assert e.ops.solicits == [] and e.net.drops["NEIGH_FAILED"] == 1


def test_app_solicit_counts_in_max_probes() -> None:
    e = make_env()
    e.net.sysctl.set("net.ipv4.neigh.r0.mcast_solicit", "0")
    e.net.sysctl.set("net.ipv4.neigh.r0.app_solicit", "2")
    neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(1)])
    e.world.advance(5)
    assert [s[0] for s in e.ops.solicits] == [0, S]
    assert e.tbl.lookup(e.r0, KEY).nud_state == NUD_FAILED


def test_resolution_releases_queue_in_order_as_one_batch() -> None:
    e = make_env()
    pkts = [e.ip_packet(i) for i in range(4)]
    for p in pkts:
        neigh_output(e.tbl, e.r0, KEY, [p])
    bells = e.r0.doorbells
    n = e.tbl.lookup(e.r0, KEY)
    assert neigh_update_entry(n, MAC_H, NUD_REACHABLE, NEIGH_UPDATE_F_OVERRIDE) == 0
    assert n.nud_state == NUD_REACHABLE and n.confirmed == 0
    assert [f[33] for f in e.sent] == [0, 1, 2, 3]
    assert all(f[:14] == MAC_H + MAC_R + b"\x08\x00" for f in e.sent)
    assert e.r0.doorbells == bells + 1
    assert n.arp_queue == [] and n.arp_queue_len_bytes == 0


def test_connected_output_uses_cached_header_and_one_doorbell() -> None:
    e = make_env()
    neigh_update(e.tbl, e.r0, KEY, MAC_H, NUD_PERMANENT, NEIGH_UPDATE_F_ADMIN)
    batch = [e.ip_packet(i) for i in range(5)]
    bells = e.r0.doorbells
    e.world.advance(1)
    neigh_output(e.tbl, e.r0, KEY, batch)
    assert e.r0.doorbells == bells + 1 and len(e.sent) == 5
    n = e.tbl.lookup(e.r0, KEY)
    # neigh_hh_output does not touch ``used`` (only neigh_event_send does)
    assert n.hh == MAC_H + MAC_R + b"\x08\x00" and n.used == 0
    assert all(f[:14] == n.hh for f in e.sent)


def test_unres_qlen_drops_oldest() -> None:
    e = make_env()
    e.net.sysctl.set("net.ipv4.neigh.r0.unres_qlen", "2")
    pkts = [e.ip_packet(i, size=1500) for i in range(4)]
    neigh_output(e.tbl, e.r0, KEY, pkts)
    n = e.tbl.lookup(e.r0, KEY)
    assert [p.id for p in n.arp_queue] == [pkts[2].id, pkts[3].id]
    assert n.arp_queue_len_bytes == 2 * pkt_truesize(pkts[0]) == 2 * 2090
    assert e.net.drops["NEIGH_QUEUEFULL"] == 2
    assert e.tbl.stats["unres_discards"] == 2


def test_unres_qlen_bytes_counts_bytes_not_packets() -> None:
    e = make_env()
    e.net.sysctl.set("net.ipv4.neigh.r0.unres_qlen_bytes", str(3 * pkt_truesize(e.ip_packet(0, 100))))
    neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(i, 100) for i in range(3)])
    assert e.net.drops["NEIGH_QUEUEFULL"] == 0
    big = e.ip_packet(9, 1000)
    neigh_output(e.tbl, e.r0, KEY, [big])
    n = e.tbl.lookup(e.r0, KEY)
    # 3*690 + 1590 > limit: all three small ones must go to make room for the big one
    assert e.net.drops["NEIGH_QUEUEFULL"] == 3
    assert [p.id for p in n.arp_queue] == [big.id] and n.arp_queue_len_bytes == 1590


def test_reachable_to_stale_after_randomised_reachable_time() -> None:
    e = make_env(seed=7)
    n = e.tbl.create(e.r0, KEY)
    neigh_update_entry(n, MAC_H, NUD_REACHABLE, NEIGH_UPDATE_F_OVERRIDE)
    rt = e.tbl.reachable_time_ns(e.r0)
    assert 15 * S <= rt < 45 * S
    # time_before_eq(now, confirmed + reachable_time) still holds at the expiry itself,
    # so the entry goes STALE one HZ/100 (10 ms) later
    e.world.run_until(rt + 10_000_000 - 1)
    assert n.nud_state == NUD_REACHABLE
    e.world.run_until(rt + 10_000_000)
    assert n.nud_state == NUD_STALE and n.updated == rt + 10_000_000


def test_reachable_time_is_deterministic_per_seed() -> None:
    a, b, c = make_env(seed=3), make_env(seed=3), make_env(seed=4)
    ra, rb, rc = (x.tbl.reachable_time_ns(x.r0) for x in (a, b, c))
    assert ra == rb and ra != rc


def test_base_reachable_time_write_redraws() -> None:
    e = make_env()
    e.net.sysctl.set("net.ipv4.neigh.r0.base_reachable_time_ms", "2000")
    assert 1 * S <= e.tbl.reachable_time_ns(e.r0) < 3 * S
    assert e.net.sysctl.get("net.ipv4.neigh.r0.base_reachable_time") == 2


def test_reachable_in_use_still_goes_stale_then_delay_on_next_packet() -> None:
    """The connected fast path does not refresh ``used`` (measured on 6.18 with
    base_reachable_time_ms=3000, delay_first_probe_time=1, a packet every 0.5 s:
    REACHABLE → STALE → DELAY on the next packet → PROBE one second later)."""
    e = make_env()
    st = e.net.sysctl
    st.set("net.ipv4.neigh.r0.base_reachable_time_ms", "3000")
    st.set("net.ipv4.neigh.r0.delay_first_probe_time", "1")
    n = e.tbl.create(e.r0, KEY)
    neigh_update_entry(n, MAC_H, NUD_REACHABLE, NEIGH_UPDATE_F_OVERRIDE)
    rt = e.tbl.reachable_time_ns(e.r0)
    t = 0
    states = []
    while t < rt + 2 * S:
        t += S // 2
        e.world.run_until(t)
        states.append(n.nud_state)
        neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(1)])
    assert NUD_STALE in states
    first_delay = states.index(NUD_STALE) + 1
    assert n.used > 0
    assert set(states[first_delay + 1:]) <= {NUD_DELAY, NUD_PROBE}


def test_reachable_recently_used_goes_delay_then_probe_then_failed() -> None:
    """REACHABLE running out within delay_first_probe_time of the last resolve-path use
    (here: packets sent while DELAY) → DELAY; unconfirmed → PROBE with ucast_solicit
    unicast probes one retrans_time apart, then FAILED."""
    e = make_env()
    e.net.sysctl.set("net.ipv4.neigh.r0.base_reachable_time_ms", "2000")
    n = e.tbl.create(e.r0, KEY)
    neigh_update_entry(n, MAC_H, NUD_STALE, NEIGH_UPDATE_F_OVERRIDE)
    for t in range(5):                                   # STALE → DELAY, then used = 4 s
        e.world.run_until(t * S)
        neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(t)])
    assert n.nud_state == NUD_DELAY and n.used == 4 * S
    e.world.run_until(4 * S + S // 2)
    neigh_confirm(n)
    e.world.run_until(5 * S)
    assert n.nud_state == NUD_REACHABLE
    rt = e.tbl.reachable_time_ns(e.r0)                   # in [1 s, 3 s)
    expiry = 4 * S + S // 2 + rt
    e.world.run_until(expiry)                           # time_before_eq: still alive,
    assert n.nud_state == NUD_REACHABLE                 # re-armed HZ/100 later
    assert n.timer.expires == expiry + 10_000_000
    e.world.run_until(expiry + 10_000_000)
    assert n.nud_state == NUD_DELAY
    t = expiry + 10_000_000
    e.world.run_until(t + 5 * S)
    assert n.nud_state == NUD_PROBE
    assert e.ops.solicits[0] == (t + 5 * S, KEY, 0, None)   # first ucast probe: probes=0
    e.world.run_until(t + 7 * S)
    assert [s[2] for s in e.ops.solicits] == [0, 1, 2]
    e.world.run_until(t + 8 * S)
    assert n.nud_state == NUD_FAILED


def test_stale_use_goes_delay_and_transmits() -> None:
    e = make_env()
    n = e.tbl.create(e.r0, KEY)
    neigh_update_entry(n, MAC_H, NUD_STALE, NEIGH_UPDATE_F_OVERRIDE)
    neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(1), e.ip_packet(2)])
    assert n.nud_state == NUD_DELAY and len(e.sent) == 2
    assert n.timer.expires == 5 * S
    # confirmation during DELAY → REACHABLE at the timer
    e.world.advance(3)
    neigh_confirm(n)
    e.world.advance(2)
    assert n.nud_state == NUD_REACHABLE


def test_delay_first_probe_time_sysctl() -> None:
    e = make_env()
    e.net.sysctl.set("net.ipv4.neigh.r0.delay_first_probe_time", "2")
    n = e.tbl.create(e.r0, KEY)
    neigh_update_entry(n, MAC_H, NUD_STALE, NEIGH_UPDATE_F_OVERRIDE)
    neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(1)])
    e.world.advance(2)
    assert n.nud_state == NUD_PROBE


def test_delay_first_probe_time_in_timer_handler() -> None:
    """delay_first_probe_time bounds both DELAY → REACHABLE (confirmed within it) and
    the DELAY period entered from REACHABLE."""
    e = make_env()
    e.net.sysctl.set("net.ipv4.neigh.r0.base_reachable_time_ms", "2000")
    e.net.sysctl.set("net.ipv4.neigh.r0.delay_first_probe_time", "10")
    n = e.tbl.create(e.r0, KEY)
    neigh_update_entry(n, MAC_H, NUD_STALE, NEIGH_UPDATE_F_OVERRIDE)
    neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(0)])     # DELAY until 10 s
    e.world.run_until(9 * S)
    neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(1)])     # used = 9 s
    e.world.run_until(9 * S + S // 2)
    neigh_confirm(n)                                     # confirmed = 9.5 s
    e.world.run_until(10 * S)
    assert n.nud_state == NUD_REACHABLE                  # 10 <= 9.5 + 10
    e.world.run_until(9 * S + S // 2 + e.tbl.reachable_time_ns(e.r0) + 10_000_000)
    assert n.nud_state == NUD_DELAY                      # within used + 10 s
    assert n.timer.expires == e.world.clock.now + 10 * S


def test_ucast_solicit_sysctl_in_probe() -> None:
    e = make_env()
    e.net.sysctl.set("net.ipv4.neigh.r0.ucast_solicit", "1")
    n = e.tbl.create(e.r0, KEY)
    neigh_update_entry(n, MAC_H, NUD_STALE, NEIGH_UPDATE_F_OVERRIDE)
    neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(1)])
    e.world.advance(5)
    assert n.nud_state == NUD_PROBE
    e.world.advance(1.01)
    assert n.nud_state == NUD_FAILED and len(e.ops.solicits) == 1


def test_mcast_resolicit_adds_probes_in_probe_state() -> None:
    e = make_env()
    e.net.sysctl.set("net.ipv4.neigh.r0.mcast_resolicit", "2")
    n = e.tbl.create(e.r0, KEY)
    neigh_update_entry(n, MAC_H, NUD_STALE, NEIGH_UPDATE_F_OVERRIDE)
    neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(1)])
    e.world.advance(5 + 4.5)
    assert n.nud_state == NUD_PROBE and len(e.ops.solicits) == 5
    e.world.advance(1)
    assert n.nud_state == NUD_FAILED


def test_ext_validated_probe_falls_back_to_stale() -> None:
    e = make_env()
    n = e.tbl.create(e.r0, KEY)
    n.flags |= NTF_EXT_VALIDATED
    neigh_update_entry(n, MAC_H, NUD_PROBE, NEIGH_UPDATE_F_OVERRIDE)
    e.world.advance(4)
    assert n.nud_state == NUD_STALE


def test_failed_entry_reresolves_on_new_traffic() -> None:
    e = make_env()
    neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(1)])
    e.world.advance(3)
    n = e.tbl.lookup(e.r0, KEY)
    assert n.nud_state == NUD_FAILED
    neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(2)])
    assert n.nud_state == NUD_INCOMPLETE and e.ops.solicits[-1][0] == 3 * S


def test_update_without_override_keeps_address() -> None:
    e = make_env()
    n = e.tbl.create(e.r0, KEY)
    neigh_update_entry(n, MAC_H, NUD_REACHABLE, NEIGH_UPDATE_F_OVERRIDE)
    assert neigh_update_entry(n, OTHER, NUD_REACHABLE, 0) == 0
    assert n.ha == MAC_H and n.nud_state == NUD_REACHABLE
    # WEAK_OVERRIDE on a connected entry: keep the address, become STALE
    neigh_update_entry(n, OTHER, NUD_REACHABLE, NEIGH_UPDATE_F_WEAK_OVERRIDE)
    assert n.ha == MAC_H and n.nud_state == NUD_STALE
    neigh_update_entry(n, OTHER, NUD_STALE, NEIGH_UPDATE_F_OVERRIDE)
    assert n.ha == OTHER and n.hh is None


def test_same_address_stale_does_not_demote() -> None:
    e = make_env()
    n = e.tbl.create(e.r0, KEY)
    neigh_update_entry(n, MAC_H, NUD_REACHABLE, NEIGH_UPDATE_F_OVERRIDE)
    e.world.advance(0.5)
    neigh_update_entry(n, MAC_H, NUD_STALE, NEIGH_UPDATE_F_OVERRIDE)
    assert n.nud_state == NUD_REACHABLE and n.updated == 0


def test_permanent_refuses_non_admin_updates() -> None:
    e = make_env()
    n = e.tbl.create(e.r0, KEY)
    neigh_update_entry(n, MAC_H, NUD_PERMANENT, NEIGH_UPDATE_F_ADMIN | NEIGH_UPDATE_F_OVERRIDE)
    assert neigh_update_entry(n, OTHER, NUD_REACHABLE, NEIGH_UPDATE_F_OVERRIDE) < 0
    assert n.ha == MAC_H and n.nud_state == NUD_PERMANENT


@pytest.mark.parametrize("state", [NUD_STALE, NUD_DELAY, NUD_PROBE])
def test_valid_unconfirmed_states_transmit(state: int) -> None:
    e = make_env()
    n = e.tbl.create(e.r0, KEY)
    neigh_update_entry(n, MAC_H, state, NEIGH_UPDATE_F_OVERRIDE)
    neigh_output(e.tbl, e.r0, KEY, [e.ip_packet(1)])
    assert len(e.sent) == 1 and e.sent[0][:6] == MAC_H
