"""``ip maddress`` (netstack/cli/ipmaddr.py) against what iproute2 6.1 printed on Linux 6.18
for the same setup (veth 02:00:00:00:00:01, 10.0.0.1/24, ``ip maddr add
01:00:5e:01:02:03`` twice, ``ip addr add 239.1.1.1/32 autojoin``), and its errors."""
from __future__ import annotations

import io
import json

import pytest

from netstack.cli.scenario import run_command
from netstack.core.world import SUBSYSTEMS, World
from netstack.cli.scenario import run_script

SETUP = """ip netns add a
ip netns add b
ip -n a link add eth0 type veth peer name eth0 netns b
ip -n a link set eth0 address 02:00:00:00:00:01
ip -n b link set eth0 address 02:00:00:00:00:02
ip -n a link set eth0 up
ip -n b link set eth0 up
ip -n a addr add 10.0.0.1/24 dev eth0
"""

KERNEL_SHOW = """2:\teth0
\tlink  33:33:00:00:00:01
\tlink  01:00:5e:00:00:01
\tlink  33:33:ff:00:00:01
\tlink  01:00:5e:01:02:03 static
\tlink  01:00:5e:01:01:01
\tinet  239.1.1.1
\tinet  224.0.0.1
\tinet6 ff02::1:ff00:1
\tinet6 ff02::1
\tinet6 ff01::1
"""
KERNEL_SHOW_PLAIN = """2:\teth0
\tlink  33:33:00:00:00:01
\tlink  01:00:5e:00:00:01
\tlink  33:33:ff:00:00:01
\tinet  224.0.0.1
\tinet6 ff02::1:ff00:1
\tinet6 ff02::1
\tinet6 ff01::1
"""
KERNEL_INET_JSON = [{"ifindex": 2, "ifname": "eth0", "maddr": [
    {"family": "inet", "address": "239.1.1.1"}, {"family": "inet", "address": "224.0.0.1"}]}]


@pytest.fixture()
def w() -> World:
    world = World(subsystems=[*SUBSYSTEMS, "netstack.ipv4.igmp"])  # registered once
    run_script(world, SETUP)
    world.advance(1)
    return world


def ip(w: World, line: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = run_command(w, line, out, err)
    return rc, out.getvalue(), err.getvalue()


def test_show_matches_kernel(w: World) -> None:
    assert ip(w, "ip -n a maddr add 01:00:5e:01:02:03 dev eth0")[0] == 0
    assert ip(w, "ip -n a maddr add 01:00:5e:01:02:03 dev eth0")[0] == 0
    assert ip(w, "ip -n a addr add 239.1.1.1/32 dev eth0 autojoin")[0] == 0
    rc, out, _ = ip(w, "ip -n a maddr show dev eth0")
    assert rc == 0
    assert out == KERNEL_SHOW
    rc, out, _ = ip(w, "ip -n a -4 -j maddr show dev eth0")
    assert json.loads(out) == KERNEL_INET_JSON
    rc, out, _ = ip(w, "ip -n a -4 maddr")
    assert out == "2:\teth0\n\tinet  239.1.1.1\n\tinet  224.0.0.1\n"


def test_users_and_static_json(w: World) -> None:
    ip(w, "ip -n a maddr add 01:00:5e:00:00:01 dev eth0")
    rc, out, _ = ip(w, "ip -n a maddr show dev eth0")
    assert "\tlink  01:00:5e:00:00:01 users 2 static\n" in out
    rc, out, _ = ip(w, "ip -n a -j maddr show dev eth0")
    entry = json.loads(out)[0]["maddr"][1]
    assert entry == {"link": "01:00:5e:00:00:01", "users": 2, "features": "static"}
    assert ip(w, "ip -n a maddr del 01:00:5e:00:00:01 dev eth0")[0] == 0
    rc, out, _ = ip(w, "ip -n a maddr show dev eth0")
    assert "\tlink  01:00:5e:00:00:01\n" in out


def test_oneline(w: World) -> None:
    """``-o`` (iproute2 prints the header before every entry, ``\\`` for the newline);
    ip.py does not take -o yet, so the module is called with ctx.oneline set."""
    from netstack.cli.ipcommon import AF_INET, Ctx
    from netstack.cli.ipmaddr import main
    out = io.StringIO()
    ctx = Ctx(w, w.netns("a"), out, io.StringIO(), family=AF_INET, oneline=True)
    assert main(ctx, ["show", "dev", "eth0"]) == 0
    assert out.getvalue() == "2:\teth0\\\tinet  224.0.0.1\n"


@pytest.mark.parametrize("line,rc,err", [
    ("ip -n a maddr add 01:00:5e:01:02:03 dev lo", 1, "ioctl: Invalid argument\n"),
    ("ip -n a maddr add 01:00:5e:01:02:03", 255, 'Not enough information: "dev" is required.\n'),
    ("ip -n a maddr add zz dev eth0", 1, '"zz" is invalid lladdr.\n'),
    ("ip -n a maddr add 01:00:5e:01:02:03 dev nope", 1, "ioctl: No such device\n"),
    ("ip -n a maddr foo", 255, 'Command "foo" is unknown, try "ip maddr help".\n'),
    ("ip -n a maddr del 01:00:5e:01:02:09 dev eth0", 1, "ioctl: No such file or directory\n"),
    ("ip -n a addr add 10.9.9.9/32 dev eth0 autojoin", 1, "autojoin needs multicast address\n"),
])
def test_errors_as_iproute2(w: World, line: str, rc: int, err: str) -> None:
    got = ip(w, line)
    assert (got[0], got[2]) == (rc, err)


def test_del_static_twice(w: World) -> None:
    ip(w, "ip -n a maddr add 01:00:5e:01:02:03 dev eth0")
    assert ip(w, "ip -n a maddr del 01:00:5e:01:02:03 dev eth0")[0] == 0
    assert ip(w, "ip -n a maddr del 01:00:5e:01:02:03 dev eth0")[:3:2] == \
        (1, "ioctl: No such file or directory\n")


KERNEL_MACVLAN = """2:\teth0
\tlink  33:33:00:00:00:01 users 2
\tlink  01:00:5e:00:00:01 users 2
\tlink  33:33:ff:00:00:01
\tlink  33:33:ff:00:00:aa
\tlink  01:00:5e:02:02:02
\tinet  224.0.0.1
\tinet6 ff02::1:ff00:1
\tinet6 ff02::1
\tinet6 ff01::1
3:\tmv0
\tlink  33:33:00:00:00:01 users 2
\tlink  01:00:5e:00:00:01 users 2
\tlink  33:33:ff:00:00:aa users 2
\tlink  01:00:5e:02:02:02 users 2
\tinet  239.2.2.2
\tinet  224.0.0.1
\tinet6 ff02::1:ff00:aa
\tinet6 ff02::1
\tinet6 ff01::1
"""


def test_macvlan_syncs_into_lower(w: World) -> None:
    """macvlan_set_mac_lists → dev_mc_sync: the upper's entries are refcounted on the
    lower device (and gain a reference on the upper); Linux printed exactly this."""
    w.advance(1)
    assert ip(w, "ip -n a link add mv0 link eth0 address 02:00:00:00:00:aa type macvlan "
                 "mode bridge")[0] == 0
    assert ip(w, "ip -n a link set mv0 up")[0] == 0
    w.advance(0.5)
    assert ip(w, "ip -n a addr add 239.2.2.2/32 dev mv0 autojoin")[0] == 0
    rc, out, _ = ip(w, "ip -n a maddr show dev eth0")
    rc, out2, _ = ip(w, "ip -n a maddr show dev mv0")
    assert out + out2 == KERNEL_MACVLAN
    assert ip(w, "ip -n a link set mv0 down")[0] == 0   # macvlan_stop → dev_mc_unsync
    rc, out, _ = ip(w, "ip -n a maddr show dev eth0")
    assert out == KERNEL_SHOW_PLAIN
