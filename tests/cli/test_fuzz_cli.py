"""Whatever words a scenario contains, a command either runs (exit code) or says
"not supported" — no other exception escapes to the caller."""
from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings, strategies as st

from netstack.cli import run_command
from netstack.core.world import World
from netstack.errors import NotSupported

_WORDS = ["ip", "-n", "a", "-4", "-6", "-j", "-s", "-d", "-br", "link", "addr", "route",
          "rule", "neigh", "netns", "add", "del", "set", "show", "flush", "get", "replace",
          "change", "exec", "dev", "v0", "v1", "lo", "type", "veth", "dummy", "peer", "name",
          "up", "down", "mtu", "1400", "0", "-1", "0x10", "address", "02:00:00:00:00:01",
          "zz", "netns", "via", "10.0.0.1", "10.0.0.0/8", "2001:db8::1", "2001:db8::/64",
          "default", "table", "100", "main", "local", "metric", "proto", "static", "scope",
          "link", "src", "nexthop", "weight", "onlink", "blackhole", "from", "to", "pref",
          "lookup", "fwmark", "lladdr", "nud", "permanent", "brd", "+", "peer", "label",
          "sysctl", "-w", "net.ipv4.ip_forward=1", "net.ipv4.conf.v0.rp_filter", "ethtool",
          "-K", "-k", "gro", "on", "off", "tx", "echo", "", "alias", "txqlen", "not"]


def _world() -> World:
    w = World(subsystems=["netstack.ipv4.af_inet", "netstack.ipv6.af_inet6"])
    out, err = io.StringIO(), io.StringIO()
    for line in ("ip netns add a", "ip link add v0 type veth peer name v1",
                 "ip link set v0 up", "ip link set v1 up", "ip addr add 10.0.0.2/24 dev v0"):
        assert run_command(w, line, out, err) == 0, err.getvalue()
    return w


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=9), min_size=1,
                max_size=4))
def test_random_command_lines_never_crash(lines: list[list[str]]) -> None:
    w = _world()
    for argv in lines:
        argv = (["ip"] + argv) if argv[0] not in ("ip", "sysctl", "ethtool", "echo") else argv
        try:
            rc = run_command(w, argv, io.StringIO(), io.StringIO())
        except NotSupported:
            continue
        assert isinstance(rc, int) and 0 <= rc <= 255
