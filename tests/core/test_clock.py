"""Virtual clock: timers fire in (expiry, arming order); cancel and re-arm work."""
from netstack.core.clock import VirtualClock
from netstack.core.world import World


def test_timers_fire_in_order_and_cancel() -> None:
    w = World(subsystems=[])
    fired: list[tuple[int, str]] = []
    c = w.clock
    c.call_at(2_000, lambda: fired.append((c.now, "b")))
    c.call_at(1_000, lambda: fired.append((c.now, "a")))
    c.call_at(2_000, lambda: fired.append((c.now, "c")))
    t = c.call_at(1_500, lambda: fired.append((c.now, "x")))
    t.cancel()
    w.run_until(5_000)
    assert fired == [(1_000, "a"), (2_000, "b"), (2_000, "c")]
    assert c.now == 5_000


def test_rearm_moves_timer() -> None:
    c = VirtualClock()
    hits: list[int] = []
    t = c.timer(lambda: hits.append(c.now))
    t.mod(100)
    t.mod(300)
    while (x := c.pop_due(1_000)) is not None:
        x.fn(*x.args)
    assert hits == [300]


def test_advance_fires_timer_armed_by_timer() -> None:
    w = World(subsystems=[])
    c = w.clock
    hits: list[int] = []

    def tick() -> None:
        hits.append(c.now)
        if len(hits) < 3:
            c.call_at(c.now + 1_000_000_000, tick)

    c.call_at(0, tick)
    w.advance(10)
    assert hits == [0, 1_000_000_000, 2_000_000_000]
    assert w.clock.jiffies == 10_000
