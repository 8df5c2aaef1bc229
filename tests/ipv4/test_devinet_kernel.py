"""The same address/route commands on the machine's kernel and on netstack must leave the
same ``ip -4 -j route show table all``.  Skipped unless running as root with ``ip``."""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import time
import types

import pytest

from netstack.core.world import World
from netstack.drivers import veth
from netstack.ipv4 import devinet as D
from netstack.ipv4 import fib as F
from netstack.ipv4.fib_semantics import (
    RTN_NAMES, RTNH_F_DEAD, RTNH_F_LINKDOWN, TABLE_NAMES, FibNexthop, FibRoute,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2")

SCOPES = {0: "global", 200: "site", 253: "link", 254: "host"}
PROTOS = {2: "kernel", 3: "boot", 4: "static"}


def ip(s: str) -> bytes:
    return ipaddress.IPv4Address(s).packed


def netstack_routes(net) -> list[dict]:
    out = []
    for r in F.fib_dump(net):
        d: dict = {}
        if r.type != 1:
            d["type"] = RTN_NAMES[r.type]
        d["dst"] = str(ipaddress.IPv4Address(r.dst)) + ("" if r.dst_len == 32 else
                                                        f"/{r.dst_len}")
        if len(r.nexthops) == 1:
            nh = r.nexthops[0]
            if nh.gw:
                d["gateway"] = str(ipaddress.IPv4Address(nh.gw))
            d["dev"] = nh.dev.name
        if r.table != 254:
            d["table"] = TABLE_NAMES.get(r.table, str(r.table))
        d["protocol"] = PROTOS[r.protocol]
        if r.scope:
            d["scope"] = SCOPES[r.scope]
        if r.prefsrc:
            d["prefsrc"] = str(ipaddress.IPv4Address(r.prefsrc))
        if r.priority:
            d["metric"] = r.priority
        flags = []
        if len(r.nexthops) == 1 and r.nexthops[0].flags & RTNH_F_DEAD:
            flags.append("dead")
        if r.flags & RTNH_F_LINKDOWN:
            flags.append("linkdown")
        d["flags"] = flags
        if len(r.nexthops) > 1:
            d["nexthops"] = [
                {"gateway": str(ipaddress.IPv4Address(nh.gw)), "dev": nh.dev.name,
                 "weight": nh.weight,
                 "flags": [n for bit, n in ((RTNH_F_DEAD, "dead"), (RTNH_F_LINKDOWN, "linkdown"))
                           if nh.flags & bit]}
                for nh in r.nexthops]
        out.append(d)
    return out


def kernel_routes(ns: str) -> list[dict]:
    out = subprocess.run(["ip", "-n", ns, "-4", "-j", "route", "show", "table", "all"],
                         check=True, capture_output=True, text=True).stdout
    routes = json.loads(out or "[]")
    for r in routes:
        r.setdefault("protocol", "boot")
    return routes


# (kernel command, netstack action) pairs; "A"/"B" are the veth ends d0/d1.
def _addr(spec, **kw):
    a, _, plen = spec.partition("/")
    return lambda net, devs: D.inet_add_addr(net, devs["d0"], D.IfAddr(
        local=ip(a), prefixlen=int(plen or 32), **kw))


def _del(spec):
    a, _, plen = spec.partition("/")
    return lambda net, devs: D.inet_del_addr(net, devs["d0"], ip(a), int(plen))


def _up(name):
    return lambda net, devs: net.dev_open(devs[name])


def _down(name):
    return lambda net, devs: net.dev_close(devs[name])


def _route(dst, gw):
    d, _, plen = dst.partition("/")
    return lambda net, devs: F.fib_route_add(net, FibRoute(
        dst=ip(d), dst_len=int(plen), nexthops=[FibNexthop(gw=ip(gw))]), excl=True)


SCENARIO = [
    ("addr add 10.0.0.1/24 dev d0", _addr("10.0.0.1/24")),
    ("link set d0 up", _up("d0")),
    ("addr add 10.0.0.2/24 dev d0", _addr("10.0.0.2/24")),
    ("addr add 10.0.1.1/31 dev d0", _addr("10.0.1.1/31")),
    ("addr add 10.0.2.1/32 dev d0", _addr("10.0.2.1/32")),
    ("addr add 10.0.4.1/24 broadcast 10.0.4.77 dev d0",
     _addr("10.0.4.1/24", broadcast=ip("10.0.4.77"))),
    ("addr add 10.0.5.1 peer 10.0.6.1/24 dev d0", _addr("10.0.5.1/24", address=ip("10.0.6.1"))),
    ("addr add 10.0.7.1/24 dev d0 noprefixroute",
     _addr("10.0.7.1/24", flags=D.IFA_F_NOPREFIXROUTE)),
    ("addr add 10.0.8.1/24 dev d0 metric 55", _addr("10.0.8.1/24", metric=55)),
    ("link set d1 up", _up("d1")),
    ("route add 20.0.0.0/16 via 10.0.0.9", _route("20.0.0.0/16", "10.0.0.9")),
    ("addr del 10.0.0.1/24 dev d0", _del("10.0.0.1/24")),
    ("link set d1 down", _down("d1")),
    ("link set lo up", _up("lo")),
    ("link set d0 down", _down("d0")),
    ("link set d0 up", _up("d0")),
    ("addr add 10.0.9.1/24 dev d0", _addr("10.0.9.1/24")),
    ("route add 30.0.0.0/8 nexthop via 10.0.9.7 weight 1 nexthop via 10.0.2.1 weight 3",
     lambda net, devs: F.fib_route_add(net, FibRoute(dst=ip("30.0.0.0"), dst_len=8, nexthops=[
         FibNexthop(gw=ip("10.0.9.7"), weight=1), FibNexthop(gw=ip("10.0.2.1"), weight=3)]),
         excl=True)),
    ("link set d1 down", _down("d1")),
    ("link set d1 up", _up("d1")),
    ("addr del 10.0.9.1/24 dev d0", _del("10.0.9.1/24")),
    ("link set d0 down", _down("d0")),
]


def test_routes_match_kernel():
    ns = f"e1t{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name",
                        "d1"], check=True)
        w = World(subsystems=[])

        def init(net):
            net.ipv4 = types.SimpleNamespace()
            D.ipv4_control_init(net)

        w.pernet_inits.append(init)
        w.netdev_notifiers.append(D.ipv4_control_netdev_event)
        net = w.netns_add("k")
        a, b = veth.create_pair(net, "d0", b"\x02" * 6, net, "d1", b"\x04" * 6)
        devs = {"d0": a, "d1": b, "lo": net.get("lo")}
        for cmd, act in SCENARIO:
            subprocess.run(["ip", "-n", ns, *cmd.split()], check=True, capture_output=True)
            act(net, devs)
            # Carrier changes reach the kernel's FIB through linkwatch, a workqueue: on a
            # loaded machine the dump may run first, so give it up to a second to settle.
            want = netstack_routes(net)
            for _ in range(20):
                got = kernel_routes(ns)
                if got == want:
                    break
                time.sleep(0.05)
            assert want == got, cmd
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
