"""``ip route get`` on the kernel vs :func:`inet_rtm_getroute` on netstack: the same
route type and device, or the same error, for input (``iif``) and output lookups across
rp_filter / forwarding / accept_local settings.  Skipped unless root with ``ip``."""
from __future__ import annotations

import errno
import ipaddress
import os
import shutil
import subprocess
import types

import pytest

from netstack.core.world import World
from netstack.drivers import veth
from netstack.errors import KernelError
from netstack.ipv4 import devinet as D
from netstack.ipv4 import fib as F
from netstack.ipv4 import route as RT
from netstack.ipv4.fib_semantics import RTN_NAMES, FibNexthop, FibRoute

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2")

MSG = {"Invalid argument": errno.EINVAL, "No route to host": errno.EHOSTUNREACH,
       "Network is unreachable": errno.ENETUNREACH, "Permission denied": errno.EACCES,
       "No such device": errno.ENODEV}


def ip(s: str) -> bytes:
    return ipaddress.IPv4Address(s).packed


def kernel_get(ns: str, args: list[str]) -> tuple:
    p = subprocess.run(["ip", "-n", ns, "route", "get", *args], capture_output=True, text=True)
    if p.returncode:
        msg = p.stderr.strip().split(": ", 1)[-1].rstrip(".")
        return ("error", MSG.get(msg, msg))
    words = p.stdout.split()
    rtype = words[0] if words[0] in ("local", "broadcast", "multicast") else "unicast"
    dev = words[words.index("dev") + 1]
    return (rtype, dev)


def netstack_get(net, args: list[str]) -> tuple:
    kw: dict = {}
    dst = ip(args[0])
    it = iter(args[1:])
    for k in it:
        v = next(it)
        if k == "from":
            kw["saddr"] = ip(v)
        elif k == "iif":
            kw["iif"] = net.get(v)
        elif k == "oif":
            kw["oif"] = net.get(v).ifindex
    try:
        rt, _ = RT.inet_rtm_getroute(net, dst, **kw)
    except KernelError as e:
        return ("error", e.errno)
    return (RTN_NAMES[rt.type], rt.dev.name)


QUERIES = [
    "10.0.0.1 from 10.1.0.5 iif d1", "10.0.0.1 from 10.0.0.5 iif d1",
    "10.0.0.1 from 8.8.8.8 iif d1", "10.0.0.1 from 10.1.0.1 iif d1",
    "10.0.0.9 from 10.1.0.5 iif d1", "10.9.0.9 from 10.1.0.5 iif d1",
    "10.8.0.9 from 10.1.0.5 iif d1", "10.7.0.9 from 10.1.0.5 iif d1",
    "10.0.0.255 from 10.1.0.5 iif d1", "255.255.255.255 from 10.1.0.5 iif d1",
    "127.0.0.1 from 10.1.0.5 iif d1", "10.0.0.9 from 127.0.0.1 iif d1",
    "10.0.0.9 from 0.0.0.0 iif d1", "10.1.0.9 from 10.1.0.5 iif d1",
    "20.0.0.9 from 10.1.0.5 iif d1", "10.0.0.9", "10.0.0.1", "8.8.8.8", "20.0.0.1",
    "255.255.255.255", "10.0.0.9 from 10.1.0.1", "10.0.0.9 from 10.1.0.77", "8.8.8.8 oif d0",
    "224.0.0.5 oif d0", "10.8.1.1", "10.7.1.1", "10.0.0.255", "10.0.0.0", "0.0.0.0",
    "255.255.255.255 oif d1", "10.1.0.1 oif d0", "10.0.0.1 from 10.0.0.1",
    "10.0.0.9 from 10.1.0.1 iif d1", "224.0.0.1 from 10.1.0.5 iif d1",
]
SETTINGS = [
    {},
    {"net.ipv4.conf.all.rp_filter": 1},
    {"net.ipv4.conf.all.rp_filter": 2},
    {"net.ipv4.ip_forward": 1},
    {"net.ipv4.ip_forward": 1, "net.ipv4.conf.all.rp_filter": 1},
    {"net.ipv4.conf.d1.accept_local": 1},
]


def test_route_get_matches_kernel():
    ns = f"e1g{os.getpid()}"
    sh = ["ip", "-n", ns]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for cmd in (["link", "add", "d0", "type", "veth", "peer", "name", "d1"],
                    ["link", "set", "d0", "up"], ["link", "set", "d1", "up"],
                    ["link", "set", "lo", "up"],
                    ["addr", "add", "10.0.0.1/24", "dev", "d0"],
                    ["addr", "add", "10.1.0.1/24", "dev", "d1"],
                    ["route", "add", "20.0.0.0/16", "via", "10.0.0.2"],
                    ["route", "add", "blackhole", "10.8.0.0/16"],
                    ["route", "add", "prohibit", "10.7.0.0/16"]):
            subprocess.run(sh + cmd, check=True)
        w = World(subsystems=[])

        def init(net):
            net.ipv4 = types.SimpleNamespace()
            D.ipv4_control_init(net)

        w.pernet_inits.append(init)
        w.netdev_notifiers.append(D.ipv4_control_netdev_event)
        net = w.netns_add("k")
        a, b = veth.create_pair(net, "d0", b"\x02" * 6, net, "d1", b"\x04" * 6)
        for d in (a, b, net.get("lo")):
            net.dev_open(d)
        D.inet_add_addr(net, a, D.IfAddr(local=ip("10.0.0.1"), prefixlen=24))
        D.inet_add_addr(net, b, D.IfAddr(local=ip("10.1.0.1"), prefixlen=24))
        F.fib_route_add(net, FibRoute(dst=ip("20.0.0.0"), dst_len=16,
                                      nexthops=[FibNexthop(gw=ip("10.0.0.2"))]), excl=True)
        F.fib_route_add(net, FibRoute(dst=ip("10.8.0.0"), dst_len=16, type=6), excl=True)
        F.fib_route_add(net, FibRoute(dst=ip("10.7.0.0"), dst_len=16, type=8), excl=True)
        defaults = {k: 0 for s in SETTINGS for k in s}
        for setting in SETTINGS:
            for k, v in {**defaults, **setting}.items():
                subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"{k}={v}"],
                               check=True)
                net.sysctl.set(k, v)
            for q in QUERIES:
                args = q.split()
                assert netstack_get(net, args) == kernel_get(ns, args), (setting, q)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
