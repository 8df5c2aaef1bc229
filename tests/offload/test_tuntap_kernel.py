"""Kernel differential for ``ip tuntap`` and the tun kind in ``ip -d -j link``: the same
commands in a scratch namespace and in netstack, outputs and exit codes equal (MAC
addresses, which the kernel randomises, masked)."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess

import pytest

from netstack.cli.scenario import run_command
from netstack.core.world import World

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None
                                or not os.path.exists("/dev/net/tun"),
                                reason="needs root, ip and /dev/net/tun")

COMMANDS = [
    "ip tuntap add dev tap0 mode tap vnet_hdr",
    "ip tuntap add dev tun0 mode tun",
    "ip tuntap add dev tq mode tap multi_queue pi",
    "ip tuntap add dev tu mode tap user 0 group 0 one_queue",
    "ip tuntap add dev tap0 mode tap",
    "ip tuntap add mode tun",
    "ip tuntap add dev bad mode tap junk",
    "ip tuntap show",
    "ip -j tuntap show",
    "ip -d -j link show tap0",
    "ip -d -j link show tun0",
    "ip -d -j link show tq",
    "ip -d -j link show tu",
    "ip link set tap0 up",
    "ip -j link show tap0",
    "ip tuntap del dev tq mode tap",
    "ip tuntap del dev tq mode tap multi_queue pi",
    "ip tuntap del dev tun0 mode tun",
    "ip tuntap list",
]


def _mask(out: str) -> str:
    try:
        data = json.loads(out)
    except ValueError:
        return out
    for d in data if isinstance(data, list) else []:
        for k in ("address", "ifindex", "broadcast"):
            if k in d and k != "broadcast":
                d[k] = "X"
    return json.dumps(data, sort_keys=True)


def test_ip_tuntap_matches_kernel() -> None:
    import inspect

    import netstack.cli.fmt_link as fl
    if 'getattr(dev, "num_tx_queues"' not in inspect.getsource(fl):
        pytest.skip("link/none and queue counts in ip link need patch OFF-4 (fmt_link)")
    ns = f"OFFu{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        k = []
        for c in COMMANDS:
            argv = c.split()
            r = subprocess.run(["ip", "-n", ns] + argv[1:], capture_output=True, text=True)
            k.append((r.returncode, _mask(r.stdout), r.stderr))
    finally:
        subprocess.run(["ip", "netns", "del", ns])
    w = World()
    for c, kk in zip(COMMANDS, k):
        so, se = io.StringIO(), io.StringIO()
        rc = run_command(w, c, stdout=so, stderr=se)
        assert (rc, _mask(so.getvalue()), se.getvalue()) == kk, c
