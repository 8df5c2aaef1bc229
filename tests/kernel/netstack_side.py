"""Run a scenario in netstack with the same inputs as ``oracle.run_kernel``.

The mapping onto netstack's API (contract in the project brief):

* ``Stack()`` is a fresh world with its virtual clock at 0;
  ``run_script`` executes the very same bash scenario text.
* A ``Send``'s delay becomes ``advance(delay)``; the frame goes out through
  ``inject`` which processes until idle - the counterpart of the kernel
  handling a veth transmit synchronously in the sender's context.
* "Settle" means the same thing on both sides: keep going until ``settle``
  seconds pass without a captured frame.  On the kernel side that is wall
  time; here the virtual clock is advanced in ``settle``-sized steps, so
  timer-driven output (ARP retries, host unreachable) appears exactly as it
  would after waiting on a real kernel.
* Arrival times are reported in seconds of virtual time since ``Stack()``
  was created (the kernel side reports seconds since the traffic began);
  only differences between times are meaningful across the two sides.
"""

from __future__ import annotations

from .oracle import OracleError, Result, Send

__all__ = ["run_netstack", "SETTLE_VIRTUAL_CAP_S"]

# A scenario that keeps producing frames for this long is broken; the kernel
# side has the same kind of cap (oracle.SETTLE_HARD_CAP_S).
SETTLE_VIRTUAL_CAP_S = 120.0


def run_netstack(
    script: str,
    sends: list[Send],
    captures: list[tuple[str, str]],
    queries: list[str],
    settle: float,
    *,
    name: str = "scenario.sh",
) -> Result:
    """Play a scenario against netstack; same contract as ``run_kernel``."""
    from netstack import Stack  # imported here so the kernel half never needs it

    if settle <= 0:
        raise ValueError("settle must be positive")
    st = Stack()
    st.run_script(script, name=name)
    result = Result()
    lists = {}
    for ns, dev in captures:
        lists[(ns, dev)] = st.capture(ns, dev)
    for snd in sends:
        if snd.delay_s > 0:
            st.advance(snd.delay_s)
        st.inject(snd.ns, snd.dev, [snd.frame])

    def count() -> int:
        return sum(len(v) for v in lists.values())

    elapsed = 0.0
    while True:
        before = count()
        st.advance(settle)
        elapsed += settle
        if count() == before:
            break
        if elapsed > SETTLE_VIRTUAL_CAP_S:
            raise OracleError(f"netstack traffic did not settle within {SETTLE_VIRTUAL_CAP_S}s")
    for key, captured in lists.items():
        result.frames[key] = [bytes(c.data) for c in captured]
        result.times[key] = [c.ts_ns / 1e9 for c in captured]
    for q in queries:
        res = st.command(q)
        if res.rc != 0:
            raise OracleError(f"netstack query failed (rc={res.rc}): {q}\n{res.stderr}")
        result.queries[q] = res.stdout
    return result
