"""Differential check of the new keywords against the host's iproute2 6.1.

The host kernel has no bonding module, so what can be compared is what iproute2 decides
before the request leaves (``bond_parse_opt``): the ``ns_ip6_target`` address errors
(``get_addr(AF_INET6)``: exit 1, "inet6 address is expected") and the keywords
iproute2 6.1 does not know (``broadcast_neighbor``, ``coupled_control``: usage, exit 1).
Runs as root in a scratch namespace named with the BOND2 prefix; skips otherwise."""
from __future__ import annotations

import subprocess

import pytest

CASES = [
    "link add bond0 type bond ns_ip6_target zzz",
    "link add bond0 type bond ns_ip6_target 1.2.3.4",
    "link add bond0 type bond ns_ip6_target 2001:db8::1,,zz",
    "link add bond0 type bond arp_interval 100 ns_ip6_target fe80::1,2001:db8::1:",
    "link add bond0 type bond broadcast_neighbor on",
    "link add bond0 type bond coupled_control off",
    "link add bond0 type bond ns_ip6_target 2001:db8::1 use_carrier 300",
]


KNS_PREFIX = "BOND2-kt"  # the scratch namespace of the conftest ``kns`` fixture


@pytest.mark.parametrize("cmd", CASES)
def test_parser_matches_iproute2(kns, bed, cmd) -> None:  # type: ignore[no-untyped-def]
    real = subprocess.run(["ip", "-n", kns] + cmd.split(), capture_output=True, text=True,
                          timeout=10)
    assert real.returncode != 0
    rc, out, err = bed.run("ip " + cmd)
    assert (rc, out, err) == (real.returncode, real.stdout, real.stderr)
