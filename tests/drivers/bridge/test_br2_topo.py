"""Shared topology for BR2's bridge tests: bridge ``br0`` in namespace ``b`` with three
veth ports p1..p3 whose peers v1h..v3h live in h1..h3 (the same script the kernel
differential cases run; see test_br2_kernel.py).  A helper module: it holds no tests."""

from __future__ import annotations

from netstack.api import Stack

MAC_BR = "02:00:00:00:00:b0"
MAC = {1: "02:00:00:00:01:01", 2: "02:00:00:00:02:01", 3: "02:00:00:00:03:01"}
IP4 = {1: "10.0.0.1", 2: "10.0.0.2", 3: "10.0.0.3"}
IP6 = {1: "2001:db8::1", 2: "2001:db8::2", 3: "2001:db8::3"}
HOSTS = (("h1", "v1h"), ("h2", "v2h"), ("h3", "v3h"))


def base_script(ipv6: bool = False, snooping: bool = False) -> str:
    """The three-port bridge.  IPv6 stays disabled (no DAD/MLD noise) unless asked;
    multicast snooping off unless asked (the bridge's own IGMP reports for 224.0.0.106
    would otherwise be on the wire, which netstack's IP layer does not send)."""
    lines = ["ip netns add h1", "ip netns add h2", "ip netns add h3", "ip netns add b"]
    for n in ("h1", "h2", "h3", "b"):
        v = "0" if ipv6 and n == "b" else "1"
        lines += [f"ip netns exec {n} sysctl -qw net.ipv6.conf.all.disable_ipv6={v}",
                  f"ip netns exec {n} sysctl -qw net.ipv6.conf.default.disable_ipv6={v}"]
    if ipv6:
        lines += ["ip netns exec b sysctl -qw net.ipv6.conf.all.accept_dad=0",
                  "ip netns exec b sysctl -qw net.ipv6.conf.default.accept_dad=0"]
    lines.append("ip -n b link add br0 index 10 address 02:00:00:00:00:b0 type bridge"
                 f" mcast_snooping {1 if snooping else 0}")
    for i in (1, 2, 3):
        lines.append(f"ip -n b link add p{i} index 1{i} address 02:00:00:00:0{i}:fe type veth"
                     f" peer name v{i}h index 2{i} address {MAC[i]} netns h{i}")
    lines += [f"ip -n b link set p{i} master br0" for i in (1, 2, 3)]
    lines.append("ip -n b link set br0 up")
    lines += [f"ip -n b link set p{i} up" for i in (1, 2, 3)]
    lines += [f"ip -n h{i} link set v{i}h up" for i in (1, 2, 3)]
    return "\n".join(lines) + "\n"


def stack(extra: str = "", **kw: bool) -> Stack:
    s = Stack()
    s.run_script(base_script(**kw) + extra, name="br2_topo.sh")
    return s


def bridge(s: Stack):  # type: ignore[no-untyped-def]
    """The NetBridge of br0."""
    return s.world.netns("b").get("br0").br


def port(s: Stack, name: str):  # type: ignore[no-untyped-def]
    return bridge(s).port_of(s.world.netns("b").get(name))


def mac_b(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def static_fdb(s: Stack, mac: str, portname: str, vid: int = 0) -> None:
    """``bridge fdb add MAC dev PORT master static``."""
    from netstack.drivers.bridge.br_fdb import fdb_create
    from netstack.drivers.bridge.br_private import BR_FDB_ADDED_BY_USER, BR_FDB_STATIC
    fdb_create(bridge(s), port(s, portname), mac_b(mac), vid, BR_FDB_STATIC | BR_FDB_ADDED_BY_USER)
