"""Helpers for the bonding tests: a world with IPv4/IPv6, ip/cat commands into strings,
and captures of what leaves each device."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
from typing import Any, Iterator

import pytest

from netstack.cli import run_command
from netstack.core.world import World


class Bed:
    """A world and a shell on it."""

    def __init__(self, subsystems: list[str] | None = None) -> None:
        self.world = World(subsystems=subsystems if subsystems is not None else
                           ["netstack.ipv4.af_inet"])

    def run(self, line: str, net: str = "") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        rc = run_command(self.world, line, out, err, net_name=net)
        return rc, out.getvalue(), err.getvalue()

    def ok(self, line: str, net: str = "") -> str:
        rc, out, err = self.run(line, net)
        assert rc == 0 and err == "", (line, rc, err)
        return out

    def fails(self, line: str, net: str = "") -> tuple[int, str]:
        rc, out, err = self.run(line, net)
        assert rc != 0, (line, out)
        return rc, err

    def dev(self, name: str, net: str = "") -> Any:
        return self.world.netns(net).devices[name]

    def capture_tx(self, name: str, net: str = "") -> list[bytes]:
        """Frames transmitted by a device, in order."""
        frames: list[bytes] = []
        n = self.world.netns(net)
        n.add_tx_tap(n.devices[name], lambda p: frames.append(p.bytes()))
        return frames

    def capture_rx(self, name: str, net: str = "") -> list[bytes]:
        frames: list[bytes] = []
        n = self.world.netns(net)
        n.add_rx_tap(n.devices[name], lambda p: frames.append(bytes(p.buf[p.mac_header:p.tail])))
        return frames

    def lacp_pair(self, n: int = 2, opts: str = "lacp_rate fast", opts_b: str | None = None,
                  up: bool = True) -> None:
        """Two bonds (namespaces a and b) joined by n veth pairs a<i> <-> b<i>."""
        self.ok("ip netns add a")
        self.ok("ip netns add b")
        self.ok(f"ip -n a link add bond0 type bond mode 802.3ad miimon 100 {opts}")
        self.ok(f"ip -n b link add bond0 type bond mode 802.3ad miimon 100 "
                f"{opts if opts_b is None else opts_b}")
        for i in range(1, n + 1):
            self.ok(f"ip -n a link add a{i} address 02:00:00:00:0a:0{i} type veth peer name "
                    f"b{i} netns b address 02:00:00:00:0b:0{i}")
            self.ok(f"ip -n a link set a{i} master bond0")
            self.ok(f"ip -n b link set b{i} master bond0")
        if up:
            self.ok("ip -n a link set bond0 up")
            self.ok("ip -n b link set bond0 up")


@pytest.fixture
def bed() -> Bed:
    return Bed()


@pytest.fixture
def bed46() -> Bed:
    return Bed(["netstack.ipv4.af_inet", "netstack.ipv6.af_inet6"])


def _kernel_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (ip netns add)"
    if shutil.which("ip") is None:
        return "iproute2 'ip' not installed"
    return None


@pytest.fixture(scope="module")
def kns(request: pytest.FixtureRequest) -> Iterator[str]:
    """The scratch kernel namespace of a differential module: named
    ``<module KNS_PREFIX>-<pid>``, the module's ``KNS_SETUP`` commands (``ip -n NS …``
    argument lists) run in it, deleted afterwards; skips with the reason when not root or
    without iproute2."""
    reason = _kernel_skip_reason()
    if reason:
        pytest.skip(reason)
    name = f"{request.module.KNS_PREFIX}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    for argv in getattr(request.module, "KNS_SETUP", ()):
        subprocess.run(["ip", "-n", name] + argv, timeout=10)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=10)
