"""Differential check against the host's iproute2 + kernel.

This kernel has no bonding module, so only what iproute2 decides before talking to the
kernel can be compared: its parser errors, usage texts and exit codes
(ip/iplink_bond.c, ip/iplink_bond_slave.c), and the kernel's answer to ``type bond`` when
the module is missing (which netstack does not imitate: it has bonding).  Runs as root in a
scratch namespace named with the BOND prefix; skips with the reason otherwise."""
from __future__ import annotations

import subprocess

import pytest

CASES = [
    "link add bond0 type bond mode foo",
    "link add bond0 type bond mode 7",
    "link add bond0 type bond miimon x",
    "link add bond0 type bond p x",
    "link add bond0 type bond use_carrier 256",
    "link add bond0 type bond num_grat_arp 300",
    "link add bond0 type bond xmit_hash_policy 9",
    "link add bond0 type bond arp_missed_max x",
    "link add bond0 type bond arp_ip_target foo",
    "link add bond0 type bond arp_ip_target 300.1.1.1",
    "link add bond0 type bond primary nodev",
    "link add bond0 type bond active_slave nodev",
    "link add bond0 type bond ad_actor_system zz",
    "link add bond0 type bond bogus 1",
    "link add bond0 type bond missed_max 3",
    "link add bond0 type bond help",
    "link set d0 type bond_slave help",
    "link set d0 type bond_slave queue_id x",
    "link set d0 type bond_slave prio x",
    "link set d0 type bond_slave bogus",
]


KNS_PREFIX = "BOND-kt"  # the scratch namespace of the conftest ``kns`` fixture
# a device named d0 for the bond_slave cases (iproute2 parses before asking the kernel)
KNS_SETUP = [["link", "add", "d0", "type", "veth", "peer", "name", "d1"]]


@pytest.mark.parametrize("cmd", CASES)
def test_parser_matches_iproute2(kns, bed, cmd) -> None:  # type: ignore[no-untyped-def]
    real = subprocess.run(["ip", "-n", kns] + cmd.split(), capture_output=True, text=True,
                          timeout=10)
    if cmd.startswith("link set d0"):
        bed.ok("ip link add bond0 type bond")
        bed.ok("ip link add d0 type dummy")
        bed.ok("ip link set d0 master bond0")
    rc, out, err = bed.run("ip " + cmd)
    assert (rc, out, err) == (real.returncode, real.stdout, real.stderr)


def test_this_kernel_has_no_bonding(kns) -> None:  # type: ignore[no-untyped-def]
    real = subprocess.run(["ip", "-n", kns, "link", "add", "b0", "type", "bond"],
                          capture_output=True, text=True, timeout=10)
    if real.returncode == 0:
        pytest.skip("this kernel has bonding: the parser cases above still apply")
    assert real.stderr == "Error: Unknown device type.\n"
