"""End to end through bonds: two hosts each with an active-backup bond over the same
two veth pairs ping each other (ARP resolution out of the bond, replies received on the
active slave and delivered by the bond), a link fails, both sides fail over on their own
miimon and the ping keeps working; then the same over an 802.3ad pair with layer3+4."""
from __future__ import annotations

import pytest

from netstack.ipv4.ping import ping


def _pair(bed, mode: str) -> None:  # type: ignore[no-untyped-def]
    for ns, ip in (("a", "10.0.0.1"), ("b", "10.0.0.2")):
        bed.ok(f"ip netns add {ns}")
        bed.ok(f"ip -n {ns} link add bond0 type bond mode {mode} miimon 100 "
               + ("xmit_hash_policy layer3+4 lacp_rate fast" if mode == "802.3ad" else ""))
    for i in (1, 2):
        bed.ok(f"ip -n a link add a{i} type veth peer name b{i} netns b")
        bed.ok(f"ip -n a link set a{i} master bond0")
        bed.ok(f"ip -n b link set b{i} master bond0")
    for ns, ip in (("a", "10.0.0.1"), ("b", "10.0.0.2")):
        bed.ok(f"ip -n {ns} addr add {ip}/24 dev bond0")
        bed.ok(f"ip -n {ns} link set bond0 up")


def _pings(bed, n: int, seq0: int) -> int:  # type: ignore[no-untyped-def]
    net = bed.world.netns("a")
    got = 0
    for i in range(n):
        sk = ping(net, "10.0.0.2", 77, seq0 + i, b"bond")
        bed.world.advance(0.01)
        while sk.recvfrom() is not None:
            got += 1
    return got


@pytest.mark.parametrize("mode", ["active-backup", "802.3ad", "balance-rr"])
def test_ping_survives_a_link_failure(bed, mode) -> None:  # type: ignore[no-untyped-def]
    _pair(bed, mode)
    bed.world.advance(4 if mode == "802.3ad" else 0.5)
    assert _pings(bed, 4, 0) == 4
    bed.ok("ip -n a link set a1 down")          # b1 loses carrier too
    bed.world.advance(0.5 if mode != "802.3ad" else 1)
    a = bed.dev("bond0", "a")
    assert [s.dev.name for s in a.slaves if s.link == 0] == ["a2"]
    assert _pings(bed, 4, 10) == 4
    st = bed.dev("bond0", "b").stats
    assert st.rx_packets >= 8 and st.tx_packets >= 8
