"""Shared fixtures for the tunnel tests.

``run_ns`` plays a scenario on netstack like ``tests/kernel/netstack_side.run_netstack``
but captures with a tap that finishes CHECKSUM_PARTIAL checksums as the kernel oracle's
capture does (``skb_checksum_help`` semantics, through PACKET_VNET_HDR), so the outer UDP
checksum of a tunnel packet can be compared byte for byte.  ``kernel_ok`` skips a kernel
half with the reason when the machine cannot be the oracle.
"""
from __future__ import annotations

import sys

import pytest

from kernel.oracle import Result, Send


def run_ns(script: str, sends: list[Send], captures: list[tuple[str, str]],
           queries: list[str] = (), settle: float = 0.2):  # type: ignore[assignment]
    """(Result, Stack) of a netstack run with completed PARTIAL checksums."""
    from netstack import Stack
    from tunnels.helpers import wire_tap
    st = Stack()
    st.run_script(script, name="tunnel.sh")
    res = Result()
    for ns, devname in captures:
        lst: list[bytes] = []
        res.frames[(ns, devname)] = lst
        wire_tap(st, ns, devname, lst)
    for s in sends:
        if s.delay_s:
            st.advance(s.delay_s)
        st.inject(s.ns, s.dev, [s.frame])
    st.advance(settle)
    for q in queries:
        r = st.command(q)
        assert r.rc == 0, r.stderr
        res.queries[q] = r.stdout
    return res, st


@pytest.fixture(scope="session")
def kernel_ok() -> None:
    from kernel.conftest import _unavailable
    reason = _unavailable()
    if reason:
        print(f"\nSKIP kernel oracle: {reason}", file=sys.stderr)
        pytest.skip(reason)
