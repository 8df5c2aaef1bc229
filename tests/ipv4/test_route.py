"""ip_route_input / ip_route_output / ECMP hashing (net/ipv4/route.c).

The expected outcomes mirror ``ip route get … iif …`` and ``ip route get`` measured on a
6.18 kernel with the same addresses: EINVAL there is a martian/validation drop here,
"No route to host" the error route ip_error handles, etc."""
from __future__ import annotations

import errno
import ipaddress
import struct
import types
from collections import Counter

import pytest

from netstack.core.world import World
from netstack.drivers import veth
from netstack.errors import KernelError
from netstack.ipv4 import devinet as D
from netstack.ipv4 import fib as F
from netstack.ipv4 import route as RT
from netstack.ipv4.fib_semantics import (
    RTN_BLACKHOLE, RTN_BROADCAST, RTN_LOCAL, RTN_MULTICAST, RTN_PROHIBIT, RTN_UNICAST,
    RTN_UNREACHABLE, FibNexthop, FibRoute,
)
from netstack.packet.skb import Packet


def ip(s: str) -> bytes:
    return ipaddress.IPv4Address(s).packed


def make_net():
    w = World(subsystems=[])

    def init(net):
        net.ipv4 = types.SimpleNamespace()
        D.ipv4_control_init(net)

    w.pernet_inits.append(init)
    w.netdev_notifiers.append(D.ipv4_control_netdev_event)
    return w, w.netns_add("t")


def ipv4_pkt(src: str, dst: str, proto: int = 17, payload: bytes = b"\x04\xd2\x00\x35" + bytes(4),
             frag: int = 0) -> Packet:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, frag, 64, proto, 0,
                      ip(src), ip(dst))
    p = Packet(hdr + payload)
    p.protocol = 0x0800
    p.reset_network_header()
    return p


@pytest.fixture
def env():
    w, net = make_net()
    a, b = veth.create_pair(net, "d0", b"\x02" * 6, net, "d1", b"\x04" * 6)
    for d in (a, b, net.get("lo")):
        net.dev_open(d)
    D.inet_add_addr(net, a, D.IfAddr(local=ip("10.0.0.1"), prefixlen=24))
    D.inet_add_addr(net, b, D.IfAddr(local=ip("10.1.0.1"), prefixlen=24))
    return net, a, b


def rin(net, dev, src, dst, pkt=None, tos=0):
    p = pkt or ipv4_pkt(src, dst)
    reason = RT.ip_route_input(net, p, ip(dst), ip(src), tos, dev)
    return reason, p.dst


def test_local_and_source_validation(env):
    net, a, b = env
    reason, rt = rin(net, b, "10.1.0.5", "10.0.0.1")
    assert reason is None and rt.type == RTN_LOCAL and rt.input == "local"
    assert rt.flags & RT.RTCF_LOCAL and rt.dev.name == "lo" and rt.is_input_local
    assert rin(net, b, "10.0.0.5", "10.0.0.1")[0] is None          # rp_filter 0
    sc = net.sysctl
    sc.set("net.ipv4.conf.all.rp_filter", 1)
    assert rin(net, b, "10.0.0.5", "10.0.0.1")[0] == "IP_RPFILTER"
    assert rin(net, b, "8.8.8.8", "10.0.0.1")[0] == "IP_RPFILTER"
    assert rin(net, b, "10.1.0.5", "10.0.0.1")[0] is None
    sc.set("net.ipv4.conf.all.rp_filter", 0)
    sc.set("net.ipv4.conf.d1.rp_filter", 2)                          # max(all, dev)
    assert rin(net, b, "8.8.8.8", "10.0.0.1")[0] == "IP_RPFILTER"
    assert rin(net, b, "10.0.0.5", "10.0.0.1")[0] is None
    sc.set("net.ipv4.conf.d1.rp_filter", 0)
    assert rin(net, b, "10.1.0.1", "10.0.0.1")[0] == "IP_LOCAL_SOURCE"
    sc.set("net.ipv4.conf.d1.accept_local", 1)
    assert rin(net, b, "10.1.0.1", "10.0.0.1")[0] is None


@pytest.mark.parametrize("src,dst,reason", [
    ("10.1.0.5", "127.0.0.1", "IP_LOCALNET"),
    ("127.0.0.1", "10.0.0.9", "IP_LOCALNET"),
    ("0.0.0.0", "10.0.0.9", "IP_INVALID_SOURCE"),
    ("224.1.1.1", "10.0.0.1", "IP_INVALID_SOURCE"),
    ("255.255.255.255", "10.0.0.1", "IP_INVALID_SOURCE"),
    ("10.1.0.5", "0.1.2.3", "IP_INVALID_DEST"),
    ("10.1.0.5", "224.0.0.5", "NOT_SPECIFIED"),
])
def test_martians(env, src, dst, reason):
    net, a, b = env
    net.sysctl.set("net.ipv4.ip_forward", 1)
    assert rin(net, b, src, dst)[0] == reason


def test_route_localnet_allows_loopback(env):
    net, a, b = env
    net.sysctl.set("net.ipv4.conf.d1.route_localnet", 1)
    reason, rt = rin(net, b, "10.1.0.5", "127.0.0.1")
    assert reason is None and rt.type == RTN_LOCAL


def test_broadcast_and_multicast_input(env):
    net, a, b = env
    for dst in ("10.0.0.255", "255.255.255.255"):
        reason, rt = rin(net, b, "10.1.0.5", dst)
        assert reason is None and rt.type == RTN_BROADCAST and rt.input == "local"
        assert rt.flags & RT.RTCF_BROADCAST and rt.flags & RT.RTCF_LOCAL
    reason, rt = rin(net, b, "0.0.0.0", "255.255.255.255")                  # DHCP discover
    assert reason is None and rt.type == RTN_BROADCAST
    reason, rt = rin(net, b, "10.1.0.5", "224.0.0.1")                       # all-hosts
    assert reason is None and rt.type == RTN_MULTICAST and rt.flags & RT.RTCF_LOCAL


def test_no_forwarding_gives_host_unreachable_error_route(env):
    net, a, b = env
    reason, rt = rin(net, b, "10.1.0.5", "10.0.0.9")
    assert reason is None and rt.type == RTN_UNREACHABLE and rt.input == "error"
    assert (rt.dst_error, rt.error) == (errno.EHOSTUNREACH, RT.ICMP_HOST_UNREACH)
    assert not rt.flags & RT.RTCF_LOCAL
    # forwarding on another device does not count: IN_DEV_FORWARD of the input device
    net.sysctl.set("net.ipv4.conf.d0.forwarding", 1)
    assert rin(net, b, "10.1.0.5", "10.0.0.9")[1].input == "error"


def test_forwarding_paths_and_error_routes(env):
    net, a, b = env
    net.sysctl.set("net.ipv4.ip_forward", 1)
    reason, rt = rin(net, b, "10.1.0.5", "10.0.0.9")
    assert reason is None and rt.type == RTN_UNICAST and rt.input == "forward"
    assert rt.dev is a and rt.gateway is None and not rt.flags & RT.RTCF_DOREDIRECT
    F.fib_route_add(net, FibRoute(dst=ip("20.0.0.0"), dst_len=24,
                                  nexthops=[FibNexthop(gw=ip("10.0.0.2"))]), excl=True)
    assert rin(net, b, "10.1.0.5", "20.0.0.7")[1].gateway == ip("10.0.0.2")
    reason, rt = rin(net, b, "10.1.0.5", "10.1.0.9")                       # hairpin
    assert rt.dev is b and rt.flags & RT.RTCF_DOREDIRECT
    rt = rin(net, b, "10.1.0.5", "10.9.0.9")[1]
    assert (rt.input, rt.dst_error, rt.error) == ("error", errno.ENETUNREACH, RT.ICMP_NET_UNREACH)
    for t, err, code in ((RTN_BLACKHOLE, errno.EINVAL, None),
                         (RTN_PROHIBIT, errno.EACCES, RT.ICMP_PKT_FILTERED),
                         (RTN_UNREACHABLE, errno.EHOSTUNREACH, RT.ICMP_HOST_UNREACH)):
        F.fib_route_add(net, FibRoute(dst=ip(f"10.{t}.0.0"), dst_len=16, type=t), excl=True)
        rt = rin(net, b, "10.1.0.5", f"10.{t}.0.9")[1]
        assert (rt.type, rt.dst_error, rt.error) == (RTN_UNREACHABLE, err, code)
    # rp_filter applies to forwarded traffic too (the reverse path must be d1)
    net.sysctl.set("net.ipv4.conf.all.rp_filter", 1)
    assert rin(net, b, "10.0.0.5", "10.0.0.9")[0] == "IP_RPFILTER"


def test_route_hint_revalidates_only_local(env):
    net, a, b = env
    net.sysctl.set("net.ipv4.ip_forward", 1)
    net.sysctl.set("net.ipv4.conf.all.rp_filter", 1)
    _, fwd = rin(net, b, "10.1.0.5", "10.0.0.9")
    _, loc = rin(net, b, "10.1.0.5", "10.0.0.1")
    p = ipv4_pkt("10.0.0.5", "10.0.0.9")
    assert RT.ip_route_use_hint(net, p, ip("10.0.0.9"), ip("10.0.0.5"), 0, b, fwd) is None
    assert p.dst is fwd
    p = ipv4_pkt("10.0.0.5", "10.0.0.1")
    assert RT.ip_route_use_hint(net, p, ip("10.0.0.1"), ip("10.0.0.5"), 0, b, loc) == \
        "IP_RPFILTER"
    assert RT.ip_route_use_hint(net, p, ip("10.0.0.1"), ip("0.0.0.0"), 0, b, loc) == \
        "IP_INVALID_SOURCE"


# ------------------------------------------------------------------ output
def rout(net, **kw):
    fl = F.Flowi4(**{k: (ip(v) if k in ("daddr", "saddr") else v) for k, v in kw.items()})
    rt = RT.ip_route_output(net, fl)
    return rt, str(ipaddress.IPv4Address(fl.saddr))


def test_output(env):
    net, a, b = env
    rt, src = rout(net, daddr="10.0.0.9")
    assert (rt.type, rt.dev, src) == (RTN_UNICAST, a, "10.0.0.1")
    rt, src = rout(net, daddr="10.0.0.1")
    assert (rt.type, rt.dev.name, src) == (RTN_LOCAL, "lo", "10.0.0.1")
    assert rt.flags & RT.RTCF_LOCAL
    for kw in (dict(daddr="8.8.8.8"), dict(daddr="255.255.255.255"),
               dict(daddr="10.0.0.9", saddr="10.1.0.77")):
        with pytest.raises(KernelError) as e:
            rout(net, **kw)
        assert e.value.errno == errno.ENETUNREACH
    rt, src = rout(net, daddr="10.0.0.9", saddr="10.1.0.1")
    assert (rt.dev, src) == (a, "10.1.0.1")
    rt, src = rout(net, daddr="8.8.8.8", oif=a.ifindex)
    assert (rt.type, rt.dev, src, rt.gateway) == (RTN_UNICAST, a, "10.0.0.1", None)
    rt, src = rout(net, daddr="224.0.0.5", oif=a.ifindex)
    assert (rt.type, rt.dev, src) == (RTN_MULTICAST, a, "10.0.0.1")
    rt, src = rout(net, daddr="255.255.255.255", oif=b.ifindex)
    assert rt.type == RTN_BROADCAST and rt.flags & RT.RTCF_BROADCAST and src == "10.1.0.1"
    rt, src = rout(net, daddr="0.0.0.0")
    assert (rt.type, rt.dev.name, src) == (RTN_LOCAL, "lo", "127.0.0.1")
    with pytest.raises(KernelError) as e:
        rout(net, daddr="10.0.0.9", saddr="224.0.0.1")
    assert e.value.errno == errno.EINVAL
    with pytest.raises(KernelError) as e:
        rout(net, daddr="10.0.0.9", oif=99)
    assert e.value.errno == errno.ENODEV
    F.fib_route_add(net, FibRoute(dst=bytes(4), dst_len=0, prefsrc=ip("10.1.0.1"),
                                  nexthops=[FibNexthop(gw=ip("10.0.0.254"))]), excl=True)
    rt, src = rout(net, daddr="8.8.8.8")
    assert (rt.dev, rt.gateway, src) == (a, ip("10.0.0.254"), "10.1.0.1")
    F.fib_route_add(net, FibRoute(dst=ip("9.0.0.0"), dst_len=8, metrics={"mtu": 1400},
                                  nexthops=[FibNexthop(gw=ip("10.0.0.254"))]), excl=True)
    assert rout(net, daddr="9.1.1.1")[0].mtu() == 1400
    assert rout(net, daddr="10.0.0.9")[0].mtu() == 1500


def test_spec_dst(env):
    net, a, b = env
    p = ipv4_pkt("10.1.0.5", "10.0.0.1")
    p.dev = b
    RT.ip_route_input(net, p, ip("10.0.0.1"), ip("10.1.0.5"), 0, b)
    assert RT.fib_compute_spec_dst(net, p) == ip("10.0.0.1")
    p = ipv4_pkt("10.1.0.5", "10.0.0.255")
    p.dev = b
    RT.ip_route_input(net, p, ip("10.0.0.255"), ip("10.1.0.5"), 0, b)
    assert RT.fib_compute_spec_dst(net, p) == ip("10.1.0.1")


# -------------------------------------------------------------------- ECMP
@pytest.fixture
def ecmp(env):
    net, a, b = env
    F.fib_route_add(net, FibRoute(dst=ip("30.0.0.0"), dst_len=8, nexthops=[
        FibNexthop(gw=ip("10.0.0.2"), weight=1), FibNexthop(gw=ip("10.1.0.2"), weight=3)]),
        excl=True)
    net.sysctl.set("net.ipv4.ip_forward", 1)
    return net, a, b


def test_ecmp_output_deterministic_and_weighted(ecmp):
    net, a, b = ecmp
    picks = Counter()
    for i in range(2000):
        dst = f"30.{i >> 8 & 255}.{i & 255}.1"
        first = rout(net, daddr=dst)[0].dev
        assert rout(net, daddr=dst)[0].dev is first
        picks[first.name] += 1
    assert 0.2 < picks["d0"] / 2000 < 0.3 and picks["d0"] + picks["d1"] == 2000


def test_ecmp_hash_policies(ecmp):
    net, a, b = ecmp

    def dev_for(src, dst, sport):
        p = ipv4_pkt(src, dst, payload=struct.pack("!HHHH", sport, 53, 8, 0))
        assert RT.ip_route_input(net, p, ip(dst), ip(src), 0, a) is None
        return p.dst.dev.name

    flows = [dev_for("10.0.0.5", "30.0.0.1", sp) for sp in range(1000, 1064)]
    assert len(set(flows)) == 1                               # L3: ports ignored
    net.sysctl.set("net.ipv4.fib_multipath_hash_policy", 1)
    flows = [dev_for("10.0.0.5", "30.0.0.1", sp) for sp in range(1000, 1064)]
    assert set(flows) == {"d0", "d1"}                          # L4: ports spread
    assert flows == [dev_for("10.0.0.5", "30.0.0.1", sp) for sp in range(1000, 1064)]
    net.sysctl.set("net.ipv4.fib_multipath_hash_policy", 3)
    net.sysctl.set("net.ipv4.fib_multipath_hash_fields", 0x0010)   # source port only
    flows = [dev_for(f"10.0.0.{h}", f"30.0.0.{h}", 4242) for h in range(2, 60)]
    assert len(set(flows)) == 1


def test_ecmp_icmp_error_follows_flow_and_inner_policy(ecmp):
    net, a, b = ecmp
    inner = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0, ip("30.0.0.1"),
                        ip("10.0.0.5"))
    hashes = set()
    for s in range(2, 40):
        err = ipv4_pkt(f"10.0.0.{s}", "30.0.0.1", proto=1,
                       payload=b"\x03\x03\x00\x00\x00\x00\x00\x00" + inner + bytes(8))
        hashes.add(RT.fib_multipath_hash(net, None, err))
    assert len(hashes) == 1                                   # inner addresses are hashed

    def ipip(inner_src):
        i = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20, 1, 0, 64, 17, 0, ip(inner_src),
                        ip("99.0.0.1"))
        return ipv4_pkt("10.0.0.5", "30.0.0.1", proto=4, payload=i)

    assert len({RT.fib_multipath_hash(net, None, ipip(f"1.1.1.{i}")) for i in range(20)}) == 1
    net.sysctl.set("net.ipv4.fib_multipath_hash_policy", 2)
    assert len({RT.fib_multipath_hash(net, None, ipip(f"1.1.1.{i}")) for i in range(20)}) > 10
    assert all(0 <= RT.fib_multipath_hash(net, None, ipip("1.1.1.1")) < 2 ** 31 for _ in "ab")


class _FakeArp:
    """Just enough of a NeighTable for fib_detect_death: ``lookup(dev, key)``."""

    def __init__(self) -> None:
        self.states: dict[bytes, int] = {}

    def lookup(self, dev, key):
        st = self.states.get(bytes(key))
        return None if st is None else types.SimpleNamespace(nud_state=st)


def test_select_default_skips_dead_router(env):
    net, a, b = env
    arp = net.ipv4.arp_tbl = _FakeArp()
    for gw in ("10.0.0.251", "10.0.0.252"):
        F.fib_route_add(net, FibRoute(dst=bytes(4), dst_len=0,
                                      nexthops=[FibNexthop(gw=ip(gw))]), append=True)
    assert rout(net, daddr="8.8.8.8")[0].gateway == ip("10.0.0.251")       # no entry: alive
    arp.states[ip("10.0.0.251")] = 0x20                                     # FAILED
    assert rout(net, daddr="8.8.8.8")[0].gateway == ip("10.0.0.252")
    arp.states[ip("10.0.0.251")] = 0x02                                     # REACHABLE
    assert rout(net, daddr="8.8.8.8")[0].gateway == ip("10.0.0.251")
    # different metrics: the best one is used, whatever its neighbour state
    F.fib_route_del(net, FibRoute(dst=bytes(4), dst_len=0, type=0, scope=255, protocol=0,
                                  nexthops=[FibNexthop(gw=ip("10.0.0.252"))]))
    F.fib_route_add(net, FibRoute(dst=bytes(4), dst_len=0, priority=9,
                                  nexthops=[FibNexthop(gw=ip("10.0.0.252"))]), excl=True)
    arp.states[ip("10.0.0.251")] = 0x20
    assert rout(net, daddr="8.8.8.8")[0].gateway == ip("10.0.0.251")


def test_rtm_getroute(env):
    net, a, b = env
    rt, fl = RT.inet_rtm_getroute(net, ip("10.0.0.1"), ip("10.1.0.5"), iif=b)
    assert rt.type == RTN_LOCAL
    with pytest.raises(KernelError) as e:
        RT.inet_rtm_getroute(net, ip("10.0.0.9"), ip("10.1.0.5"), iif=b)
    assert e.value.errno == errno.EHOSTUNREACH                  # "No route to host"
    with pytest.raises(KernelError) as e:
        RT.inet_rtm_getroute(net, ip("127.0.0.1"), ip("10.1.0.5"), iif=b)
    assert e.value.errno == errno.EINVAL
    net.sysctl.set("net.ipv4.ip_forward", 1)
    with pytest.raises(KernelError) as e:
        RT.inet_rtm_getroute(net, ip("10.9.0.9"), ip("10.1.0.5"), iif=b)
    assert e.value.errno == errno.ENETUNREACH
    rt, fl = RT.inet_rtm_getroute(net, ip("10.0.0.9"))
    assert rt.dev is a and fl.saddr == int.from_bytes(ip("10.0.0.1"), "big")


# ------------------------------------------------------- next-hop exceptions
def test_pmtu_exception_learned_locked_and_expiring(env):
    net, a, b = env
    w = net.world
    F.fib_route_add(net, FibRoute(dst=bytes(4), dst_len=0,
                                  nexthops=[FibNexthop(gw=ip("10.0.0.254"))]), excl=True)
    quoted = ipv4_pkt("10.0.0.1", "8.8.8.8").bytes()[:28]
    RT.ipv4_update_pmtu(net, quoted, 1400)
    assert rout(net, daddr="8.8.8.8")[0].mtu() == 1400
    assert rout(net, daddr="8.8.4.4")[0].mtu() == 1500          # per destination
    RT.ipv4_update_pmtu(net, quoted, 1450)                       # never increases
    assert rout(net, daddr="8.8.8.8")[0].mtu() == 1400
    RT.ipv4_update_pmtu(net, quoted, 300)                        # below min_pmtu: locked 552
    rt = rout(net, daddr="8.8.8.8")[0]
    assert rt.mtu() == 552 and "mtu" in rt.metrics["lock"]
    RT.ipv4_update_pmtu(net, quoted, 400)                        # locked: ignored
    assert rout(net, daddr="8.8.8.8")[0].mtu() == 552
    w.advance(601)
    assert rout(net, daddr="8.8.8.8")[0].mtu() == 1500


class _Arp(_FakeArp):
    def __init__(self) -> None:
        super().__init__()
        self.created: list[bytes] = []

    def create(self, dev, key):
        self.created.append(bytes(key))
        return types.SimpleNamespace(nud_state=0)


def _redirect(sender: str, new_gw: str, inner_dst: str, dev, code: int = 1):
    inner = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0, ip("10.0.0.1"),
                        ip(inner_dst)) + bytes(8)
    p = ipv4_pkt(sender, "10.0.0.1", proto=1,
                 payload=bytes([5, code, 0, 0]) + ip(new_gw) + inner)
    p.pull(20)
    p.dev = dev
    return p


def test_icmp_redirect_exception(env, monkeypatch):
    net, a, b = env
    F.fib_route_add(net, FibRoute(dst=bytes(4), dst_len=0,
                                  nexthops=[FibNexthop(gw=ip("10.0.0.254"))]), excl=True)
    arp = net.ipv4.arp_tbl = _Arp()
    sent = []
    import netstack.core.neighbour as neighbour
    monkeypatch.setattr(neighbour, "neigh_event_send", lambda n, pkt: sent.append(n))
    # new gateway not resolved yet: ARP is started, nothing learned
    RT.ip_rt_redirect(net, _redirect("10.0.0.254", "10.0.0.253", "8.8.8.8", a))
    assert arp.created == [ip("10.0.0.253")] and len(sent) == 1
    assert rout(net, daddr="8.8.8.8")[0].gateway == ip("10.0.0.254")
    arp.states[ip("10.0.0.253")] = 0x02
    # from a router that is not our gateway: ignored
    RT.ip_rt_redirect(net, _redirect("10.0.0.77", "10.0.0.253", "8.8.8.8", a))
    assert rout(net, daddr="8.8.8.8")[0].gateway == ip("10.0.0.254")
    RT.ip_rt_redirect(net, _redirect("10.0.0.254", "10.0.0.253", "8.8.8.8", a))
    rt = rout(net, daddr="8.8.8.8")[0]
    assert rt.gateway == ip("10.0.0.253") and rt.flags & RT.RTCF_REDIRECTED
    assert rt.expires == net.world.clock.now + 300 * 10 ** 9   # "expires 299sec" (kernel)
    assert rout(net, daddr="8.8.4.4")[0].gateway == ip("10.0.0.254")
    # forwarded packets follow it too
    net.sysctl.set("net.ipv4.conf.d1.forwarding", 1)
    assert rin(net, b, "10.1.0.5", "8.8.8.8")[1].gateway == ip("10.0.0.253")
    # route/flush forgets; a fresh one expires after gc_timeout
    net.sysctl.set("net.ipv4.route.flush", 1)
    assert rout(net, daddr="8.8.8.8")[0].gateway == ip("10.0.0.254")
    RT.ip_rt_redirect(net, _redirect("10.0.0.254", "10.0.0.253", "8.8.8.8", a))
    assert rout(net, daddr="8.8.8.8")[0].gateway == ip("10.0.0.253")
    net.world.advance(301)
    assert rout(net, daddr="8.8.8.8")[0].gateway == ip("10.0.0.254")
    # rejected: accept_redirects off on a host (all || dev), off-link or broadcast gw
    net.sysctl.set("net.ipv4.conf.all.accept_redirects", 0)
    net.sysctl.set("net.ipv4.conf.d0.accept_redirects", 0)
    RT.ip_rt_redirect(net, _redirect("10.0.0.254", "10.0.0.253", "8.8.8.8", a))
    assert rout(net, daddr="8.8.8.8")[0].gateway == ip("10.0.0.254")
    net.sysctl.set("net.ipv4.conf.d0.accept_redirects", 1)
    for bad in ("10.0.0.255", "224.0.0.9", "10.0.0.1"):
        RT.ip_rt_redirect(net, _redirect("10.0.0.254", bad, "8.8.8.8", a))
        assert rout(net, daddr="8.8.8.8")[0].gateway == ip("10.0.0.254")
    RT.ip_rt_redirect(net, _redirect("10.0.0.254", "10.0.0.253", "8.8.8.8", a, code=4))
    assert rout(net, daddr="8.8.8.8")[0].gateway == ip("10.0.0.254")
