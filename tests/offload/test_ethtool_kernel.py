"""Kernel differential for ``ethtool -K`` feature dependencies (netdev_fix_features,
tun_net_fix_features) on a veth and a tap: each command's output and exit status, and
``ethtool -k`` afterwards, equal to Linux 6.18's."""
from __future__ import annotations

import io
import os
import shutil
import subprocess

import pytest

from netstack.cli.scenario import run_command, run_script
from netstack.core.world import World

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ethtool") is None or shutil.which("ip") is None,
    reason="needs root, ip and ethtool")

SEQUENCES = {
    "tx_off_drops_tso": ["vA tx off", "vA tx on"],
    "sg_off_drops_tso_gso": ["vA sg off", "vA sg on tso on"],
    "tso_off_on": ["vA tso off", "vA tso on"],
    "csum_generic_off": ["vA tx-checksum-ip-generic off", "vA tso on", "vA tx on"],
    "gso_gro": ["vA gso off", "vA gro off", "vA gso on gro on"],
    "udp_seg": ["vA tx-udp-segmentation off", "vA tx-checksum-ip-generic off",
                "vA tx-udp-segmentation on", "vA tx-checksum-ip-generic on"],
    "tap_user_features": ["tap0 tso on", "tap0 tx on", "tap0 sg off"],
    "tunnel_gso": ["vA tx-udp_tnl-segmentation off", "vA tx-gre-segmentation off",
                   "vA tx-udp_tnl-csum-segmentation off"],
}
#: veth's GRO default (off on 6.18) is the veth driver's business (patch OFF-1): the
#: sequences start from GRO off on both sides so they test the dependencies only.
SETUP = ("ip link add vA type veth peer name vB\n"
         "ip tuntap add dev tap0 mode tap vnet_hdr\n")
PRE = ["vA gro off"]


def _kernel(cmds: list[str]) -> list[tuple[int, str]]:
    ns = f"OFFe{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for line in SETUP.splitlines():
            subprocess.run(["ip", "-n", ns] + line.split()[1:], check=True)
        out = []
        for c in PRE + cmds + ["-k vA", "-k tap0"]:
            argv = ["ip", "netns", "exec", ns, "ethtool"] + (
                c.split() if c.startswith("-k") else ["-K"] + c.split())
            r = subprocess.run(argv, capture_output=True, text=True)
            out.append((r.returncode, r.stdout))
        return out
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def _netstack(cmds: list[str]) -> list[tuple[int, str]]:
    w = World()
    run_script(w, SETUP, stdout=io.StringIO(), stderr=io.StringIO())
    out = []
    for c in PRE + cmds + ["-k vA", "-k tap0"]:
        argv = ["ethtool"] + (c.split() if c.startswith("-k") else ["-K"] + c.split())
        so, se = io.StringIO(), io.StringIO()
        rc = run_command(w, argv, stdout=so, stderr=se)
        out.append((rc, so.getvalue()))
    return out


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_ethtool_dependencies_match_kernel(name: str) -> None:
    cmds = SEQUENCES[name]
    k = _kernel(cmds)
    n = _netstack(cmds)
    for (kc, ko), (nc, no), c in zip(k[1:], n[1:], cmds + ["-k vA", "-k tap0"]):
        assert (nc, no) == (kc, ko), c
