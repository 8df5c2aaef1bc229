"""Addresses and the routes they bring (devinet.c / fib_add_ifaddr / fib_del_ifaddr).

Expected route lists are ``ip route show table all`` output measured on a Linux 6.18
namespace after the same commands (IPv6 lines removed)."""
from __future__ import annotations

import errno
import ipaddress
import types

import pytest

from netstack.core.world import World
from netstack.drivers import veth
from netstack.errors import KernelError
from netstack.ipv4 import devinet as D
from netstack.ipv4 import fib as F
from netstack.ipv4.fib_semantics import (
    RTN_NAMES, RTNH_F_LINKDOWN, RTPROT_KERNEL, RT_SCOPE_HOST, RT_SCOPE_LINK, TABLE_NAMES,
    FibNexthop, FibRoute,
)


def ip(s: str) -> bytes:
    return ipaddress.IPv4Address(s).packed


def s(b: bytes) -> str:
    return str(ipaddress.IPv4Address(b))


def make_net():
    """A world whose namespaces get only the IPv4 control plane (net.ipv4 faked)."""
    w = World(subsystems=[])

    def init(net):
        net.ipv4 = types.SimpleNamespace()
        D.ipv4_control_init(net)

    w.pernet_inits.append(init)
    w.netdev_notifiers.append(D.ipv4_control_netdev_event)
    return w, w.netns_add("t")


SCOPES = {0: "global", 253: "link", 254: "host", 200: "site"}
PROTOS = {2: "kernel", 3: "boot", 4: "static"}


def fmt(r: FibRoute) -> str:
    """The route as iproute2 prints it (the subset of fields the tests use)."""
    out = []
    if r.type != 1:
        out.append(RTN_NAMES[r.type])
    out.append(s(r.dst) + ("" if r.dst_len == 32 else f"/{r.dst_len}"))
    if r.tos:
        out.append(f"tos 0x{r.tos:x}")
    if len(r.nexthops) == 1:
        nh = r.nexthops[0]
        if nh.gw:
            out.append(f"via {s(nh.gw)}")
        out.append(f"dev {nh.dev.name}")
    if r.table != 254:
        out.append(f"table {TABLE_NAMES.get(r.table, r.table)}")
    if r.protocol != 3:
        out.append(f"proto {PROTOS[r.protocol]}")
    if r.scope:
        out.append(f"scope {SCOPES[r.scope]}")
    if r.prefsrc:
        out.append(f"src {s(r.prefsrc)}")
    if r.priority:
        out.append(f"metric {r.priority}")
    if r.flags & RTNH_F_LINKDOWN:
        out.append("linkdown")
    if len(r.nexthops) > 1:
        for nh in r.nexthops:
            out.append(f"nexthop via {s(nh.gw)} dev {nh.dev.name} weight {nh.weight}")
    return " ".join(out)


def dump(net) -> list[str]:
    return [fmt(r) for r in F.fib_dump(net)]


def addr(net, dev, spec: str, **kw):
    a, _, plen = spec.partition("/")
    return D.inet_add_addr(net, dev, D.IfAddr(local=ip(a), prefixlen=int(plen or 32), **kw))


@pytest.fixture
def pair():
    w, net = make_net()
    a, b = veth.create_pair(net, "d0", b"\x02" * 6, net, "d1", b"\x04" * 6)
    return w, net, a, b


def test_routes_follow_link_state(pair):
    w, net, a, b = pair
    addr(net, a, "10.0.0.1/24")
    assert dump(net) == ["local 10.0.0.1 dev d0 table local proto kernel scope host src 10.0.0.1"]
    net.dev_open(a)
    assert dump(net) == [
        "10.0.0.0/24 dev d0 proto kernel scope link src 10.0.0.1 linkdown",
        "local 10.0.0.1 dev d0 table local proto kernel scope host src 10.0.0.1",
        "broadcast 10.0.0.255 dev d0 table local proto kernel scope link src 10.0.0.1 linkdown",
    ]
    net.dev_open(b)
    assert dump(net) == [
        "10.0.0.0/24 dev d0 proto kernel scope link src 10.0.0.1",
        "local 10.0.0.1 dev d0 table local proto kernel scope host src 10.0.0.1",
        "broadcast 10.0.0.255 dev d0 table local proto kernel scope link src 10.0.0.1",
    ]


MANY = [
    "10.0.0.0/24 dev d0 proto kernel scope link src 10.0.0.1",
    "10.0.1.0/31 dev d0 proto kernel scope link src 10.0.1.1",
    "10.0.3.0/24 dev d0 proto kernel scope link src 10.0.3.1",
    "10.0.4.0/24 dev d0 proto kernel scope link src 10.0.4.1",
    "10.0.6.0/24 dev d0 proto kernel scope link src 10.0.5.1",
    "10.0.8.0/24 dev d0 proto kernel scope link src 10.0.8.1 metric 55",
    "local 10.0.0.1 dev d0 table local proto kernel scope host src 10.0.0.1",
    "local 10.0.0.2 dev d0 table local proto kernel scope host src 10.0.0.1",
    "broadcast 10.0.0.255 dev d0 table local proto kernel scope link src 10.0.0.1",
    "local 10.0.1.1 dev d0 table local proto kernel scope host src 10.0.1.1",
    "local 10.0.2.1 dev d0 table local proto kernel scope host src 10.0.2.1",
    "local 10.0.3.1 dev d0 table local proto kernel scope host src 10.0.3.1",
    "broadcast 10.0.3.255 dev d0 table local proto kernel scope link src 10.0.3.1",
    "local 10.0.4.1 dev d0 table local proto kernel scope host src 10.0.4.1",
    "broadcast 10.0.4.77 dev d0 table local proto kernel scope link src 10.0.4.1",
    "broadcast 10.0.4.255 dev d0 table local proto kernel scope link src 10.0.4.1",
    "local 10.0.5.1 dev d0 table local proto kernel scope host src 10.0.5.1",
    "broadcast 10.0.6.255 dev d0 table local proto kernel scope link src 10.0.5.1",
    "local 10.0.7.1 dev d0 table local proto kernel scope host src 10.0.7.1",
    "broadcast 10.0.7.255 dev d0 table local proto kernel scope link src 10.0.7.1",
    "local 10.0.8.1 dev d0 table local proto kernel scope host src 10.0.8.1",
    "broadcast 10.0.8.255 dev d0 table local proto kernel scope link src 10.0.8.1",
]
LO = [
    "local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1",
    "local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1",
    "broadcast 127.255.255.255 dev lo table local proto kernel scope link src 127.0.0.1",
]


def _many(net, a):
    addr(net, a, "10.0.0.1/24")
    addr(net, a, "10.0.0.2/24")
    addr(net, a, "10.0.1.1/31")
    addr(net, a, "10.0.2.1/32")
    addr(net, a, "10.0.3.1/24", broadcast=ip("10.0.3.255"))
    addr(net, a, "10.0.4.1/24", broadcast=ip("10.0.4.77"))
    addr(net, a, "10.0.5.1/24", address=ip("10.0.6.1"))
    addr(net, a, "10.0.7.1/24", flags=D.IFA_F_NOPREFIXROUTE)
    addr(net, a, "10.0.8.1/24", scope=RT_SCOPE_LINK, label="d0:x", metric=55)


def test_address_kinds_match_kernel(pair):
    w, net, a, b = pair
    net.dev_open(a)
    net.dev_open(b)
    _many(net, a)
    assert dump(net) == MANY
    # list order: link-scope primary first, primaries in order, secondaries last
    assert [(s(x.local), x.secondary) for x in D.inet_addrs(a)] == [
        ("10.0.8.1", False), ("10.0.0.1", False), ("10.0.1.1", False), ("10.0.2.1", False),
        ("10.0.3.1", False), ("10.0.4.1", False), ("10.0.5.1", False), ("10.0.7.1", False),
        ("10.0.0.2", True)]
    net.dev_open(net.get("lo"))
    assert dump(net) == MANY + LO
    net.dev_close(a)
    assert dump(net) == [x for x in MANY if x.startswith("local")] + LO
    net.dev_open(a)
    assert dump(net) == MANY + LO


def test_promotion_and_secondary_deletion(pair):
    w, net, a, b = pair
    net.dev_open(a)
    net.dev_open(b)
    for x in ["10.0.0.1/24", "10.0.0.2/24", "10.0.0.3/24", "10.1.0.1/16", "10.0.0.4/24"]:
        addr(net, a, x)
    net.sysctl.set("net.ipv4.conf.d0.promote_secondaries", 1)
    D.inet_del_addr(net, a, ip("10.0.0.1"), 24)
    assert [s(x.local) for x in D.inet_addrs(a)] == ["10.1.0.1", "10.0.0.2", "10.0.0.3",
                                                      "10.0.0.4"]
    assert not D.inet_addrs(a)[1].secondary
    assert dump(net) == [
        "10.0.0.0/24 dev d0 proto kernel scope link src 10.0.0.2",
        "10.1.0.0/16 dev d0 proto kernel scope link src 10.1.0.1",
        "local 10.0.0.2 dev d0 table local proto kernel scope host src 10.0.0.2",
        "local 10.0.0.3 dev d0 table local proto kernel scope host src 10.0.0.2",
        "local 10.0.0.4 dev d0 table local proto kernel scope host src 10.0.0.2",
        "broadcast 10.0.0.255 dev d0 table local proto kernel scope link src 10.0.0.2",
        "local 10.1.0.1 dev d0 table local proto kernel scope host src 10.1.0.1",
        "broadcast 10.1.255.255 dev d0 table local proto kernel scope link src 10.1.0.1",
    ]
    net.sysctl.set("net.ipv4.conf.d0.promote_secondaries", 0)
    D.inet_del_addr(net, a, ip("10.0.0.2"), 24)
    assert [s(x.local) for x in D.inet_addrs(a)] == ["10.1.0.1"]
    assert dump(net) == [
        "10.1.0.0/16 dev d0 proto kernel scope link src 10.1.0.1",
        "local 10.1.0.1 dev d0 table local proto kernel scope host src 10.1.0.1",
        "broadcast 10.1.255.255 dev d0 table local proto kernel scope link src 10.1.0.1",
    ]
    # deleting the last address disables IP on the device: all its routes go
    F.fib_route_add(net, FibRoute(dst=ip("20.0.0.0"), dst_len=24,
                                  nexthops=[FibNexthop(gw=ip("10.1.0.5"))]), excl=True)
    D.inet_del_addr(net, a, ip("10.1.0.1"), 16)
    assert dump(net) == []


def test_address_errors(pair):
    w, net, a, b = pair
    addr(net, a, "10.0.0.1/24")
    with pytest.raises(KernelError) as e:
        addr(net, a, "10.0.0.1/24")
    assert e.value.errno == errno.EEXIST and e.value.extack == "ipv4: Address already assigned"
    with pytest.raises(KernelError) as e:
        addr(net, a, "10.0.0.9/24", scope=RT_SCOPE_LINK)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(KernelError) as e:
        D.inet_del_addr(net, a, ip("10.0.0.7"), 24)
    assert e.value.errno == errno.EADDRNOTAVAIL
    # same address, other prefix length: a distinct address
    addr(net, a, "10.0.0.1/16")
    # replace updates the metric of the prefix route
    net.dev_open(a)
    D.inet_add_addr(net, a, D.IfAddr(local=ip("10.0.0.1"), prefixlen=24, metric=7),
                    replace=True)
    assert "10.0.0.0/24 dev d0 proto kernel scope link src 10.0.0.1 metric 7 linkdown" in dump(net)


def test_loopback_and_unregister(pair):
    w, net, a, b = pair
    lo = net.get("lo")
    net.dev_open(lo)
    assert [(s(x.local), x.prefixlen, x.scope) for x in D.inet_addrs(lo)] == [
        ("127.0.0.1", 8, RT_SCOPE_HOST)]
    net.dev_open(a)
    net.dev_open(b)
    addr(net, a, "10.0.0.1/24")
    F.fib_route_add(net, FibRoute(dst=ip("30.0.0.0"), dst_len=8,
                                  nexthops=[FibNexthop(gw=ip("10.0.0.2"))]), excl=True)
    a.dellink()
    assert dump(net) == LO
    assert D.inet_lookup_ifaddr(net, ip("10.0.0.1")) is None


def test_select_and_confirm(pair):
    w, net, a, b = pair
    net.dev_open(net.get("lo"))
    addr(net, a, "10.0.8.1/24", scope=RT_SCOPE_LINK)
    addr(net, a, "10.0.0.1/24")
    addr(net, a, "10.0.0.2/24")
    addr(net, a, "192.168.1.1/24")
    assert D.inet_select_addr(net, a, ip("192.168.1.9"), 0) == ip("192.168.1.1")
    assert D.inet_select_addr(net, a, ip("8.8.8.8"), 0) == ip("10.0.0.1")
    assert D.inet_select_addr(net, a, ip("10.0.8.7"), RT_SCOPE_LINK) == ip("10.0.8.1")
    # no global address on d1: another device's address is used (not loopback's host one)
    assert D.inet_select_addr(net, b, 0, 0) == ip("10.0.0.1")
    # the link-scope address is first, but one in the subnet of dst is preferred
    assert D.inet_confirm_addr(net, a, ip("10.0.0.77"), 0, RT_SCOPE_LINK) == ip("10.0.0.1")
    assert D.inet_confirm_addr(net, a, ip("10.0.8.77"), 0, RT_SCOPE_LINK) == ip("10.0.8.1")
    assert D.inet_confirm_addr(net, None, 0, ip("10.0.0.2"), RT_SCOPE_HOST) == ip("10.0.0.2")
    assert D.inet_confirm_addr(net, None, ip("172.16.0.1"), ip("10.0.0.2"), 0) == bytes(4)
    assert D.inet_addr_type(net, ip("10.0.0.2")) == 2
    assert D.inet_addr_type(net, ip("255.255.255.255")) == 3
    assert D.inet_addr_type(net, ip("224.1.1.1")) == 5
    assert D.inet_addr_type(net, ip("1.1.1.1")) == 1


def test_forwarding_sysctls_linked(pair):
    w, net, a, b = pair
    sc = net.sysctl
    assert sc.get("net.ipv4.ip_forward") == 0
    sc.set("net.ipv4.ip_forward", 1)
    assert sc.get("net.ipv4.conf.all.forwarding") == 1
    assert sc.get("net.ipv4.conf.d0.forwarding") == 1
    assert sc.get("net.ipv4.conf.default.forwarding") == 1
    sc.set("net.ipv4.conf.d1.forwarding", 0)
    assert sc.get("net.ipv4.ip_forward") == 1
    sc.set("net.ipv4.conf.all.forwarding", 0)
    assert sc.get("net.ipv4.ip_forward") == 0 and sc.get("net.ipv4.conf.d0.forwarding") == 0
    # default.forwarding applies to devices created later only; default.rp_filter
    # also reaches existing devices (measured)
    sc.set("net.ipv4.conf.default.forwarding", 1)
    sc.set("net.ipv4.conf.default.rp_filter", 2)
    assert sc.get("net.ipv4.conf.d0.forwarding") == 0 and sc.get("net.ipv4.ip_forward") == 0
    assert sc.get("net.ipv4.conf.d0.rp_filter") == 2
    c, d = veth.create_pair(net, "d2", b"\x06" * 6, net, "d3", b"\x08" * 6)
    assert sc.get("net.ipv4.conf.d2.forwarding") == 1
    sc.set("net.ipv4.conf.default.rp_filter", 0)
    sc.set("net.ipv4.conf.all.forwarding", 1)
    assert sc.get("net.ipv4.conf.all.accept_redirects") == 0
    assert sc.get("net.ipv4.conf.d0.accept_redirects") == 1
    sc.set("net.ipv4.conf.d0.forwarding", 0)
    assert sc.get("net.ipv4.ip_forward") == 1
    sc.set("net.ipv4.conf.all.forwarding", 0)
    for k, v in [("rp_filter", 0), ("accept_local", 0), ("route_localnet", 0),
                 ("promote_secondaries", 0), ("src_valid_mark", 0)]:
        assert sc.get(f"net.ipv4.conf.d0.{k}") == v
    assert sc.get("net.ipv4.fib_multipath_hash_policy") == 0


def test_rename_relabels(pair):
    w, net, a, b = pair
    addr(net, a, "10.0.0.1/24")
    addr(net, a, "10.0.1.1/24", label="d0:x")
    addr(net, a, "10.0.2.1/24")
    net.rename_netdevice(a, "eth7")
    assert [x.label for x in D.inet_addrs(a)] == ["eth7", "eth7:x", "eth7:2"]


def test_kernel_proto_routes_are_marked():
    w, net = make_net()
    lo = net.get("lo")
    net.dev_open(lo)
    assert all(r.protocol == RTPROT_KERNEL for r in F.fib_dump(net))


def test_peer_carrier_loss_marks_linkdown(pair):
    w, net, a, b = pair
    net.dev_open(a)
    net.dev_open(b)
    addr(net, a, "10.0.0.1/24")
    net.dev_close(b)
    assert dump(net) == [
        "10.0.0.0/24 dev d0 proto kernel scope link src 10.0.0.1 linkdown",
        "local 10.0.0.1 dev d0 table local proto kernel scope host src 10.0.0.1",
        "broadcast 10.0.0.255 dev d0 table local proto kernel scope link src 10.0.0.1 linkdown",
    ]
    net.dev_open(b)
    assert "linkdown" not in " ".join(dump(net))


def test_lifetimes_deprecate_then_expire(pair):
    w, net, a, b = pair
    net.dev_open(a)
    ifa = addr(net, a, "10.0.0.1/24", valid_lft=10, preferred_lft=4)
    assert not ifa.flags & D.IFA_F_PERMANENT
    w.advance(3)
    assert not ifa.flags & D.IFA_F_DEPRECATED
    w.advance(2)
    assert ifa.flags & D.IFA_F_DEPRECATED and D.inet_addrs(a) == [ifa]
    w.advance(6)
    assert D.inet_addrs(a) == [] and dump(net) == []
    with pytest.raises(KernelError):
        addr(net, a, "10.0.0.2/24", valid_lft=0)
    with pytest.raises(KernelError):
        addr(net, a, "10.0.0.2/24", valid_lft=5, preferred_lft=6)
