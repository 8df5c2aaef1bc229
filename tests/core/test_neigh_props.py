"""Property tests: whatever the interleaving of traffic, confirmations, replies, sysctl
writes and time, the neighbour core never loses or duplicates a packet, keeps its queue
accounting exact and within unres_qlen_bytes, and keeps timers consistent with states."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_neigh_env import KEY, MAC_H, make_env

from netstack.core.neighbour import (NEIGH_UPDATE_F_ADMIN, NEIGH_UPDATE_F_OVERRIDE, NUD_DELAY,
                                     NUD_FAILED, NUD_INCOMPLETE, NUD_IN_TIMER, NUD_NONE,
                                     NUD_PROBE, NUD_REACHABLE, NUD_STALE, neigh_confirm,
                                     neigh_output, neigh_update_entry, pkt_truesize)

OTHER = bytes.fromhex("0200000000ee")
STATES = {NUD_NONE, NUD_INCOMPLETE, NUD_REACHABLE, NUD_STALE, NUD_DELAY, NUD_PROBE, NUD_FAILED}

op = st.one_of(
    st.tuples(st.just("send"), st.integers(1, 4), st.sampled_from([20, 400, 1500])),
    st.tuples(st.just("reply"), st.sampled_from([NUD_REACHABLE, NUD_STALE]),
              st.sampled_from([MAC_H, OTHER]), st.booleans()),
    st.tuples(st.just("advance"), st.sampled_from([0.001, 0.3, 1.0, 2.5, 7.0, 40.0])),
    st.tuples(st.just("confirm")),
    st.tuples(st.just("qlen"), st.integers(0, 4)),
    st.tuples(st.just("fail")),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(op, min_size=1, max_size=25), st.integers(0, 3))
def test_packets_conserved_and_queue_accounting(ops, seed) -> None:  # type: ignore[no-untyped-def]
    e = make_env(seed)
    sent_ids: list[int] = []
    e.net.add_tx_tap(e.r0, lambda p: sent_ids.append(p.id))
    made: list[int] = []
    tag = 0
    for o in ops:
        n = e.tbl.lookup(e.r0, KEY)
        if o[0] == "send":
            batch = []
            for _ in range(o[1]):
                tag += 1
                batch.append(e.ip_packet(tag, o[2]))
            made += [p.id for p in batch]
            neigh_output(e.tbl, e.r0, KEY, batch)
        elif o[0] == "reply" and n is not None:
            neigh_update_entry(n, o[2], o[1], NEIGH_UPDATE_F_OVERRIDE if o[3] else 0)
        elif o[0] == "advance":
            e.world.advance(o[1])
        elif o[0] == "confirm" and n is not None:
            neigh_confirm(n)
        elif o[0] == "qlen":
            e.net.sysctl.set("net.ipv4.neigh.r0.unres_qlen", str(o[1]))
        elif o[0] == "fail" and n is not None:
            neigh_update_entry(n, None, NUD_FAILED, NEIGH_UPDATE_F_OVERRIDE | NEIGH_UPDATE_F_ADMIN)
        n = e.tbl.lookup(e.r0, KEY)
        queued = [p.id for p in n.arp_queue] if n is not None else []
        drops = sum(e.net.drops[r] for r in ("NEIGH_FAILED", "NEIGH_QUEUEFULL", "NEIGH_DEAD"))
        # every packet made is sent, queued or dropped, exactly once
        assert len(made) == len(sent_ids) + len(queued) + drops
        assert len(set(sent_ids)) == len(sent_ids) and not set(sent_ids) & set(queued)
        if n is None:
            continue
        assert n.nud_state in STATES
        assert n.arp_queue_len_bytes == sum(pkt_truesize(p) for p in n.arp_queue)
        limit = e.tbl.parm(e.r0, "unres_qlen_bytes")
        if o[0] == "send":
            # enforced at enqueue time (a lowered limit trims on the next enqueue)
            assert n.arp_queue_len_bytes <= limit or len(n.arp_queue) == 1
        if n.arp_queue:
            assert n.nud_state == NUD_INCOMPLETE
        # states in NUD_IN_TIMER always have their timer armed, others never
        assert bool(n.nud_state & NUD_IN_TIMER) == n.timer.active
