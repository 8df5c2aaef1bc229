"""The same ``ip rule`` commands on the kernel and on netstack give the same rule list
(priorities auto-assigned, flags, goto resolution).  Skipped unless root with ``ip``."""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import types

import pytest

from netstack.core.fib_rules import (
    FR_ACT_BLACKHOLE, FR_ACT_GOTO, FR_ACT_PROHIBIT, FR_ACT_TO_TBL, FR_ACT_UNREACHABLE, FibRule,
)
from netstack.core.world import World
from netstack.drivers import veth
from netstack.ipv4 import devinet as D
from netstack.ipv4.fib_rules import fib_rule_add, fib_rule_del, fib_rule_dump

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2")

TABLES = {255: "local", 254: "main", 253: "default"}
ACTIONS = {FR_ACT_BLACKHOLE: "blackhole", FR_ACT_PROHIBIT: "prohibit",
           FR_ACT_UNREACHABLE: "unreachable"}


def ip(s: str) -> bytes:
    return ipaddress.IPv4Address(s).packed


def as_json(r: FibRule) -> dict:
    d: dict = {"priority": r.pref}
    if r.invert:
        d["not"] = None
    d["src"] = str(ipaddress.IPv4Address(r.src)) if r.src_len else "all"
    if r.src_len and r.src_len != 32:
        d["srclen"] = r.src_len
    if r.dst_len:
        d["dst"] = str(ipaddress.IPv4Address(r.dst))
        if r.dst_len != 32:
            d["dstlen"] = r.dst_len
    if r.tos:
        d["tos"] = f"0x{r.tos:x}"
    if r.fwmark or r.fwmask is not None:
        d["fwmark"] = f"0x{r.fwmark:x}"
        if r.mark_mask != 0xFFFFFFFF:
            d["fwmask"] = f"0x{r.mark_mask:x}"
    if r.iif:
        d["iif"] = r.iif
        if r.iifindex == -1:
            d["iif_detached"] = None
    if r.ipproto:
        d["ipproto"] = {6: "tcp", 17: "udp"}[r.ipproto]
    if r.dport is not None:
        d["dport"] = r.dport[0]
    if r.action == FR_ACT_TO_TBL:
        d["table"] = TABLES.get(r.table, str(r.table))
    if r.suppress_prefixlen != -1:
        d["suppress_prefixlen"] = r.suppress_prefixlen
    if r.action == FR_ACT_GOTO:
        d["goto"] = r.goto
        if r.unresolved:
            d["unresolved"] = None
    elif r.action in ACTIONS:
        d["action"] = ACTIONS[r.action]
    return d


STEPS = [
    ("add from 1.2.3.4 table 10", FibRule(src=ip("1.2.3.4"), src_len=32, table=10)),
    ("add not to 5.0.0.0/8 fwmark 0x3/0xf iif d0 table 12",
     FibRule(invert=True, dst=ip("5.0.0.0"), dst_len=8, fwmark=3, fwmask=0xF, iif="d0",
             table=12)),
    ("add pref 50 goto 200", FibRule(priority=50, action=FR_ACT_GOTO, goto=200)),
    ("add ipproto udp dport 53 prohibit", FibRule(ipproto=17, dport=(53, 53),
                                                  action=FR_ACT_PROHIBIT)),
    ("add tos 0x10 suppress_prefixlength 0 table main",
     FibRule(tos=0x10, suppress_prefixlen=0, table=254)),
    ("add iif nosuch blackhole", FibRule(iif="nosuch", action=FR_ACT_BLACKHOLE)),
    ("add pref 200 table 20", FibRule(priority=200, table=20)),
    ("add pref 200 from 9.9.9.0/24 table 21", FibRule(priority=200, src=ip("9.9.9.0"),
                                                      src_len=24, table=21)),
    ("del pref 200", FibRule(priority=200)),
    ("del pref 0", FibRule(priority=0)),
    ("add table 30", FibRule(table=30)),
]


def test_rules_match_kernel():
    ns = f"e1r{os.getpid()}"
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
        veth.create_pair(net, "d0", b"\x02" * 6, net, "d1", b"\x04" * 6)
        for cmd, rule in STEPS:
            subprocess.run(["ip", "-n", ns, "rule", *cmd.split()], check=True)
            if cmd.startswith("del"):
                fib_rule_del(net, rule)
            else:
                fib_rule_add(net, rule)
            out = subprocess.run(["ip", "-n", ns, "-j", "rule", "show"], check=True,
                                 capture_output=True, text=True).stdout
            assert [as_json(r) for r in fib_rule_dump(net)] == json.loads(out), cmd
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
