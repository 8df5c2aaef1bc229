"""addrconf: addresses, automatic routes, link-local, DAD, device events, sysctls.

Expected route tables are what Linux 6.18 printed with ``ip -6 -j route show table all``
after the same commands (measured in namespaces on the development machine)."""
from __future__ import annotations

import errno

import pytest

from netstack.errors import KernelError
from netstack.ipv6.addr import a6, s6
from netstack.ipv6.addrconf import (IFA_F_DADFAILED, IFA_F_NODAD, IFA_F_TENTATIVE,
                                    Inet6IfAddr, inet6_add_addr, inet6_addrs, inet6_del_addr,
                                    inet6_flush_addrs, ipv6_chk_addr, ipv6_dev_get_saddr)
from netstack.ipv6.route import fib6_dump

from .helpers import MAC_A, addr, pair, route, txcapture, world

TYPES = {1: "unicast", 2: "local", 4: "anycast", 5: "multicast"}


def table(net) -> list[tuple]:
    return [(s6(r.dst) + ("" if r.dst_len == 128 else f"/{r.dst_len}"), TYPES[r.type],
             {254: "main", 255: "local"}[r.table], r.priority, r.nexthops[0].dev.name)
            for r in fib6_dump(net)]


def test_routes_after_nodad_address_match_kernel() -> None:
    w = world()
    a, va, _, _ = pair(w, "a", "f6v0", "b", "f6v1", MAC_A)
    addr(a, va, "2001:db8::1/64")
    # kernel, right after the commands (the link-local is still tentative)
    assert table(a) == [
        ("2001:db8::/64", "unicast", "main", 256, "f6v0"),
        ("fe80::/64", "unicast", "main", 256, "f6v0"),
        ("::1", "local", "local", 0, "lo"),
        ("2001:db8::1", "local", "local", 0, "f6v0"),
        ("ff00::/8", "multicast", "local", 256, "f6v0"),
    ]
    assert [(s6(i.local), bool(i.flags & IFA_F_TENTATIVE)) for i in inet6_addrs(va)] == [
        ("2001:db8::1", False), ("fe80::ff:fe00:1", True)]
    w.advance(2.1)  # DAD of the link-local: < 1 s random delay + 1 s retrans
    assert ("fe80::ff:fe00:1", "local", "local", 0, "f6v0") in table(a)
    assert not inet6_addrs(va)[1].flags & IFA_F_TENTATIVE


def test_address_order_newest_first_global_before_link() -> None:
    w = world()
    a, va, _, _ = pair(w, "a", "f6v0", "b", "f6v1")
    for t in ("2001:db8::1/64", "2001:db8:1::1/64", "2001:db8:1::2/64"):
        addr(a, va, t)
    assert [s6(i.local) for i in inet6_addrs(va)] == [
        "2001:db8:1::2", "2001:db8:1::1", "2001:db8::1", "fe80::ff:fe00:1"]


def test_errnos() -> None:
    w = world()
    a, va, _, _ = pair(w, "a", "va", "b", "vb")
    addr(a, va, "2001:db8::1/64")
    with pytest.raises(KernelError) as e:
        addr(a, va, "2001:db8::1/64")
    assert e.value.errno == errno.EEXIST and e.value.extack == "ipv6: address already assigned."
    with pytest.raises(KernelError) as e:
        inet6_del_addr(a, va, a6("2001:db8:19::1"), 64)
    assert e.value.errno == errno.EADDRNOTAVAIL and e.value.extack == "ipv6: address not found."
    a.sysctl.set("net.ipv6.conf.va.disable_ipv6", 1)
    with pytest.raises(KernelError) as e:
        addr(a, va, "2001:db8::5/64")
    assert e.value.errno == errno.EACCES


def test_down_removes_addresses_and_routes_unless_keep() -> None:
    w = world()
    a, va, _, _ = pair(w, "a", "va", "b", "vb")
    addr(a, va, "2001:db8::1/64")
    route(a, "2001:db8:5::/64", via="2001:db8::2")
    a.dev_close(va)
    assert inet6_addrs(va) == []
    assert table(a) == [("::1", "local", "local", 0, "lo")]
    a.dev_open(va)
    a.sysctl.set("net.ipv6.conf.va.keep_addr_on_down", 1)
    addr(a, va, "2001:db8::1/64")
    a.dev_close(va)
    kept = inet6_addrs(va)
    assert [s6(i.local) for i in kept] == ["2001:db8::1"] and kept[0].flags & IFA_F_TENTATIVE
    assert table(a) == [("::1", "local", "local", 0, "lo")]
    a.dev_open(va)
    assert ("2001:db8::1", "local", "local", 0, "va") in table(a)


def test_address_on_down_link_waits_for_up() -> None:
    w = world()
    a, va, _, _ = pair(w, "a", "va", "b", "vb", up=False)
    a.dev_open(a.get("lo"))
    addr(a, va, "2001:db8:8::1/64", nodad=False)
    assert inet6_addrs(va)[0].flags & IFA_F_TENTATIVE
    assert table(a) == [("::1", "local", "local", 0, "lo")]
    w.netns("b").dev_open(w.netns("b").get("vb"))
    a.dev_open(va)
    assert ("2001:db8:8::/64", "unicast", "main", 256, "va") in table(a)


def test_dad_timeline_and_ns_bytes() -> None:
    w = world()
    a, va, _, _ = pair(w, "a", "va", "b", "vb", up=False)
    out = txcapture(a, va)
    a.dev_open(a.get("lo"))
    a.sysctl.set("net.ipv6.conf.va.addr_gen_mode", 1)  # no link-local: only our address
    a.dev_open(va)
    w.netns("b").dev_open(w.netns("b").get("vb"))
    ifa = addr(a, va, "2001:db8::1/64", nodad=False)
    assert ifa.flags & IFA_F_TENTATIVE and not ipv6_chk_addr(a, a6("2001:db8::1"), None)
    w.advance(0.999)
    assert len(out) == 1  # one probe, after a random delay below 1 s
    ns = out[0]
    assert ns[:6] == bytes.fromhex("3333ff000001") and ns[12:14] == b"\x86\xdd"
    ip = ns[14:]
    assert ip[7] == 255 and ip[8:24] == bytes(16)  # hop limit 255, source ::
    assert ip[24:40] == a6("ff02::1:ff00:1") and ip[40] == 135
    assert ip[48:64] == a6("2001:db8::1")
    assert ip[64:66] == bytes((14, 1))  # nonce option (enhanced_dad), no SLLA
    w.advance(1.0)
    assert not ifa.flags & IFA_F_TENTATIVE
    assert ipv6_chk_addr(a, a6("2001:db8::1"), None) is ifa


def test_dad_disabled_by_sysctl_and_nodad() -> None:
    w = world()
    a, va, _, _ = pair(w, "a", "va", "b", "vb")
    a.sysctl.set("net.ipv6.conf.va.accept_dad", 0)
    ifa = addr(a, va, "2001:db8::1/64", nodad=False)
    assert not ifa.flags & IFA_F_TENTATIVE
    a.sysctl.set("net.ipv6.conf.va.accept_dad", 1)
    ifa2 = inet6_add_addr(a, va, Inet6IfAddr(a6("2001:db8::2"), 64, flags=IFA_F_NODAD))
    assert not ifa2.flags & IFA_F_TENTATIVE


def test_dad_failure_on_na_for_tentative() -> None:
    from netstack.packet.icmpv6 import build_icmpv6
    from netstack.packet.ipv6 import build_ipv6
    from netstack.core.dev import dev_queue_xmit
    w = world()
    a, va, b, vb = pair(w, "a", "va", "b", "vb")
    ifa = addr(a, va, "2001:db8::1/64", nodad=False)
    na = build_icmpv6(136, 0, bytes((0x20, 0, 0, 0)) + a6("2001:db8::1")
                      + bytes((2, 1)) + vb.address, a6("fe80::2"), a6("ff02::1"))
    frame = bytes.fromhex("333300000001") + vb.address + b"\x86\xdd" + build_ipv6(
        a6("fe80::2"), a6("ff02::1"), 58, na, hop_limit=255)
    w.advance(0.5)
    p = w.new_packet(frame)
    p.dev = vb
    dev_queue_xmit(p, vb)
    w.advance(3)
    assert ifa.flags & IFA_F_DADFAILED and ifa.flags & IFA_F_TENTATIVE
    assert ipv6_chk_addr(a, ifa.local, None) is None
    assert ("2001:db8::1", "local", "local", 0, "va") not in table(a)


def test_disable_ipv6_all_propagates() -> None:
    w = world()
    a, va, _, _ = pair(w, "a", "va", "b", "vb")
    addr(a, va, "2001:db8::1/64")
    a.sysctl.set("net.ipv6.conf.all.disable_ipv6", 1)
    assert a.sysctl.get("net.ipv6.conf.va.disable_ipv6") == 1
    assert a.sysctl.get("net.ipv6.conf.default.disable_ipv6") == 1
    assert inet6_addrs(va) == []
    a.sysctl.set("net.ipv6.conf.all.disable_ipv6", 0)
    assert [s6(i.local) for i in inet6_addrs(va)] == ["fe80::ff:fe00:1"]


def test_flush_and_prefix_route_shared() -> None:
    w = world()
    a, va, _, _ = pair(w, "a", "va", "b", "vb")
    addr(a, va, "2001:db8::1/64")
    addr(a, va, "2001:db8::2/64")
    inet6_del_addr(a, va, a6("2001:db8::1"), 64)
    assert ("2001:db8::/64", "unicast", "main", 256, "va") in table(a)
    inet6_flush_addrs(a, va)
    assert inet6_addrs(va) == []
    assert [t for t in table(a) if t[0] == "2001:db8::/64"] == []


def test_sysctl_defaults_measured() -> None:
    w = world()
    a, va, _, _ = pair(w, "a", "va", "b", "vb")
    sc = a.sysctl
    assert sc.get("net.ipv6.icmp.ratelimit") == 100
    assert sc.get("net.ipv6.icmp.ratemask") == "0-1,3-127"
    assert sc.get("net.ipv6.auto_flowlabels") == 1
    assert sc.get("net.ipv6.conf.all.accept_dad") == 0
    assert sc.get("net.ipv6.conf.default.accept_dad") == 1
    assert sc.get("net.ipv6.conf.lo.accept_dad") == -1
    assert sc.get("net.ipv6.conf.lo.mtu") == 65536 and sc.get("net.ipv6.conf.va.mtu") == 1500
    assert sc.get("net.ipv6.conf.default.mtu") == 1280
    assert sc.get("net.ipv6.neigh.va.locktime") == 0
    assert sc.get("net.ipv6.ip6frag_time") == 60
    with pytest.raises(Exception):
        sc.set("net.ipv6.conf.va.mtu", 1600)  # above the device MTU
    sc.set("net.ipv6.conf.va.mtu", 1300)
    assert va.ip6_ptr.mtu6 == 1300


def test_source_selection() -> None:
    w = world()
    a, va, _, _ = pair(w, "a", "va", "b", "vb")
    addr(a, va, "2001:db8::1/64")
    addr(a, va, "2001:db8:1::1/64")
    w.advance(3)
    assert s6(ipv6_dev_get_saddr(a, va, a6("2001:db8:1::99"))) == "2001:db8:1::1"
    assert s6(ipv6_dev_get_saddr(a, va, a6("2001:db8::99"))) == "2001:db8::1"
    assert s6(ipv6_dev_get_saddr(a, va, a6("fe80::2"))) == "fe80::ff:fe00:1"


def test_registered_in_default_world() -> None:
    from netstack.core.world import World
    from netstack.ipv6.ip6_input import ipv6_list_rcv
    w = World()
    assert w.ptype_base[0x86DD] is ipv6_list_rcv
    assert w.init_net.ipv6 is not None and w.init_net.ipv6.nd_tbl is not None
    assert [(r.pref, r.table) for r in w.init_net.ipv6.rules.rules] == [(0, 255), (32766, 254)]


def test_forwarding_adds_subnet_router_anycast_like_kernel() -> None:
    """Measured: with all.forwarding=1, ``anycast 2001:db8:1:: dev va`` and
    ``anycast fe80:: dev va`` (local table, metric 0) appear; forwarding=0 removes them."""
    w = world()
    w.netns_add("a").sysctl.set("net.ipv6.conf.all.forwarding", 1)
    a, va, _, _ = pair(w, "a", "va", "b", "vb")
    a.sysctl.set("net.ipv6.conf.all.accept_dad", 0)
    addr(a, va, "2001:db8:1::fe/64")
    w.advance(2.1)
    anycast = [t for t in table(a) if t[1] == "anycast"]
    assert anycast == [("2001:db8:1::", "anycast", "local", 0, "va"),
                       ("fe80::", "anycast", "local", 0, "va")]
    a.sysctl.set("net.ipv6.conf.all.forwarding", 0)
    assert [t for t in table(a) if t[1] == "anycast"] == []
    a.sysctl.set("net.ipv6.conf.all.forwarding", 1)
    inet6_del_addr(a, va, a6("2001:db8:1::fe"), 64)
    assert [t[0] for t in table(a) if t[1] == "anycast"] == ["fe80::"]
