"""The virtual clock: discrete-event time for the whole simulated world.

Why: the kernel's timers (neighbour retransmits, ICMP rate limiting, reassembly and
conntrack timeouts) run on jiffies.  netstack runs them on a virtual nanosecond clock that
only moves when the event loop says so (driven by pcap timestamps or ``advance``), so the
same input gives the same output on every run and a 30-second timeout costs nothing.

Timers fire in (expiry, sequence) order, so two timers due at the same instant fire in the
order they were armed — deterministic, like a single-CPU timer wheel.
"""
from __future__ import annotations

import heapq
import itertools
from typing import Any, Callable

NSEC_PER_SEC = 1_000_000_000
#: The kernel's HZ for jiffies-based arithmetic that must round like the kernel's.
HZ = 1000


class Timer:
    """A one-shot timer (``struct timer_list``); ``mod`` re-arms, ``cancel`` disarms."""

    __slots__ = ("clock", "fn", "args", "expires", "_seq", "active")

    def __init__(self, clock: "VirtualClock", fn: Callable[..., Any], *args: Any) -> None:
        self.clock = clock
        self.fn = fn
        self.args = args
        self.expires = 0
        self._seq = -1
        self.active = False

    def mod(self, expires_ns: int) -> None:
        """``mod_timer``: (re)arm to fire at absolute virtual time ``expires_ns``."""
        self.clock._arm(self, expires_ns)

    def mod_in(self, delay_ns: int) -> None:
        """Arm to fire ``delay_ns`` from now."""
        self.clock._arm(self, self.clock.now + max(0, delay_ns))

    def cancel(self) -> None:
        """``del_timer``: the heap entry is left in place and ignored when popped."""
        self.active = False
        self._seq = -1


class VirtualClock:
    """Nanosecond virtual time plus a heap of timers."""

    def __init__(self, start_ns: int = 0) -> None:
        self.now = start_ns
        self._heap: list[tuple[int, int, Timer]] = []
        self._counter = itertools.count()

    @property
    def jiffies(self) -> int:
        """``jiffies`` at HZ=1000, for code that reproduces jiffy rounding."""
        return self.now * HZ // NSEC_PER_SEC

    def timer(self, fn: Callable[..., Any], *args: Any) -> Timer:
        """``timer_setup``: a disarmed timer that calls ``fn(*args)``."""
        return Timer(self, fn, *args)

    def call_at(self, when_ns: int, fn: Callable[..., Any], *args: Any) -> Timer:
        """Arm a one-shot timer at an absolute time."""
        t = Timer(self, fn, *args)
        t.mod(when_ns)
        return t

    def _arm(self, t: Timer, expires: int) -> None:
        seq = next(self._counter)
        t.expires = expires
        t._seq = seq
        t.active = True
        heapq.heappush(self._heap, (expires, seq, t))

    def next_expiry(self) -> int | None:
        """Expiry of the earliest live timer, or None."""
        h = self._heap
        while h and (not h[0][2].active or h[0][2]._seq != h[0][1]):
            heapq.heappop(h)
        return h[0][0] if h else None

    def pop_due(self, until_ns: int) -> Timer | None:
        """Remove and return the earliest live timer due at or before ``until_ns``,
        moving ``now`` to its expiry; None when nothing is due."""
        nxt = self.next_expiry()
        if nxt is None or nxt > until_ns:
            return None
        _, _, t = heapq.heappop(self._heap)
        t.active = False
        if t.expires > self.now:
            self.now = t.expires
        return t
