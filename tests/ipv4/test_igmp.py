"""Host-side IGMP (netstack/ipv4/igmp.py against net/ipv4/igmp.c): reports, leaves,
repetitions and their timing on the virtual clock, querier versions, query answers,
suppression, the socket API's errors, receive-side drops, and a fuzz of igmp_rcv."""
from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core.dev import dev_queue_xmit_list
from netstack.core.dev_addr_lists import dev_mc_list
from netstack.errors import KernelError, NotSupported
from netstack.ipv4 import igmp as I
from test_igmp_common import (SETUP, V1_QUERY, V2_GENERAL_QUERY, V3_GENERAL_QUERY, igmp_frame,
                              igmp_world, is_igmp, sh)

#: the kernel's first report after `ip addr add 239.1.1.1/32 dev eth0 autojoin`
#: (captured on Linux 6.18, see test_igmp_kernel.py)
KERNEL_JOIN = bytes.fromhex(
    "01005e000016020000000001080046c00028000040000102f9f80a000001e0000016940400002200e9fb"
    "0000000104000000ef010101")
G1 = 0xEF010101
G2 = 0xEF010102


class Env:
    def __init__(self, seed: int = 0) -> None:
        self.w = igmp_world(seed)
        sh(self.w, SETUP)
        self.w.advance(1.0)
        self.a = self.w.netns("a")
        self.b = self.w.netns("b")
        self.dev = self.a.get("eth0")
        self.peer = self.b.get("eth0")
        self.frames: list[tuple[int, bytes]] = []
        self.b.add_rx_tap(self.peer, lambda p: self.frames.append(
            (self.w.clock.now, bytes(p.buf[p.mac_header:p.tail]))))

    def igmp(self) -> list[tuple[int, bytes]]:
        return [(t, f) for t, f in self.frames if is_igmp(f)]

    def take(self) -> list[tuple[int, bytes]]:
        out = self.igmp()
        self.frames.clear()
        return out

    def query(self, msg: bytes, dst: bytes = bytes((224, 0, 0, 1)), **kw: bool) -> None:
        dev_queue_xmit_list(self.peer, [self.w.new_packet(igmp_frame(msg, dst, **kw))])
        self.w.run_until_idle()

    def sysctl(self, key: str, value: int) -> None:
        self.a.sysctl.set(key, str(value))


def _type(f: bytes) -> int:
    return f[38]


def _records(f: bytes) -> list[tuple[int, int]]:
    n = int.from_bytes(f[44:46], "big")
    return [(f[46 + 8 * i], int.from_bytes(f[50 + 8 * i:54 + 8 * i], "big")) for i in range(n)]


def test_join_report_bytes_and_repetition() -> None:
    e = Env()
    t0 = e.w.clock.now
    sh(e.w, "ip -n a addr add 239.1.1.1/32 dev eth0 autojoin\n")
    e.w.advance(3)
    fr = e.take()
    assert [f for _, f in fr] == [KERNEL_JOIN, KERNEL_JOIN]  # igmp_qrv = 2
    assert fr[0][0] - t0 == 2_000_000                         # jiffies + 0 + 2
    assert 2_000_000 <= fr[1][0] - fr[0][0] <= 1_001_000_000  # < v3 unsolicited interval + 2


def test_qrv_and_interval_sysctls() -> None:
    e = Env(seed=3)
    e.sysctl("net.ipv4.igmp_qrv", 4)
    e.sysctl("net.ipv4.conf.eth0.igmpv3_unsolicited_report_interval", 100)
    sh(e.w, "ip -n a addr add 239.1.1.1/32 dev eth0 autojoin\n")
    e.w.advance(2)
    # in_dev->mr_qrv was taken from igmp_qrv at NETDEV_UP (ip_mc_up): still 2 here
    assert len(e.take()) == 2
    sh(e.w, "ip -n a link set eth0 down\nip -n a link set eth0 up\n")
    e.w.advance(2)
    e.take()
    sh(e.w, "ip -n a addr add 239.1.1.2/32 dev eth0 autojoin\n")
    e.w.advance(2)
    fr = e.take()
    assert len(fr) == 4
    assert all(b - a <= 102_000_000 for (a, _), (b, _) in zip(fr, fr[1:]))


def test_dev_mc_list_follows_groups() -> None:
    e = Env()
    mac = bytes.fromhex("01005e010101")
    assert bytes.fromhex("01005e000001") in dev_mc_list(e.dev)
    I.ip_mc_inc_group(e.dev, G1)
    I.ip_mc_inc_group(e.dev, G1)
    assert dev_mc_list(e.dev).entries[mac].refcount == 1  # one filter per group
    assert I.ip_mc_groups(e.dev)[0] == (bytes((239, 1, 1, 1)), 2)
    I.ip_mc_dec_group(e.dev, G1)
    assert mac in dev_mc_list(e.dev)
    I.ip_mc_dec_group(e.dev, G1)
    assert mac not in dev_mc_list(e.dev)


def test_v3_leave_sends_to_in_twice() -> None:
    e = Env()
    I.ip_mc_inc_group(e.dev, G1)
    e.w.advance(3)
    e.take()
    I.ip_mc_dec_group(e.dev, G1)
    e.w.advance(3)
    fr = e.take()
    assert [_records(f) for _, f in fr] == [[(3, G1)], [(3, G1)]]


def test_forced_v2_reports_and_leave() -> None:
    e = Env(seed=1)
    e.sysctl("net.ipv4.conf.eth0.force_igmp_version", 2)
    e.sysctl("net.ipv4.conf.eth0.igmpv2_unsolicited_report_interval", 500)
    I.ip_mc_inc_group(e.dev, G1)
    e.w.advance(2)
    fr = e.take()
    assert len(fr) == 2 and all(_type(f) == 0x16 for _, f in fr)
    assert fr[0][1][30:34] == bytes((239, 1, 1, 1))           # to the group
    assert fr[0][1][:6] == bytes.fromhex("01005e010101")
    assert fr[1][0] - fr[0][0] <= 502_000_000
    I.ip_mc_dec_group(e.dev, G1)
    e.w.run_until_idle()
    (_, leave), = e.take()
    assert _type(leave) == 0x17 and leave[30:34] == bytes((224, 0, 0, 2))


def test_forced_v1_no_leave() -> None:
    e = Env()
    e.sysctl("net.ipv4.conf.all.force_igmp_version", 1)
    I.ip_mc_inc_group(e.dev, G1)
    e.w.advance(15)
    assert all(_type(f) == 0x12 for _, f in e.take())
    I.ip_mc_dec_group(e.dev, G1)
    e.w.advance(2)
    assert e.take() == []


def test_v3_general_query_answer() -> None:
    e = Env(seed=5)
    I.ip_mc_inc_group(e.dev, G1)
    I.ip_mc_inc_group(e.dev, G2)
    e.w.advance(3)
    e.take()
    t0 = e.w.clock.now
    e.query(V3_GENERAL_QUERY)
    e.w.advance(2)
    (t, f), = e.take()
    assert _records(f) == [(2, G2), (2, G1)]  # MODE_IS_EXCLUDE, newest first
    assert t - t0 <= 1_002_000_000
    assert e.dev.ip_ptr.igmp.mr_maxdelay == 1000


def test_group_specific_query_and_mrc() -> None:
    e = Env(seed=2)
    I.ip_mc_inc_group(e.dev, G1)
    I.ip_mc_inc_group(e.dev, G2)
    e.w.advance(3)
    e.take()
    # Max Resp Code 0x8f: exponent form (RFC 3376 4.1.1) = 0x1f << 3 = 248 → 24.8 s
    assert I.igmpv3_mrc(0x8F) == 248
    q = bytes((0x11, 20, 0, 0, 239, 1, 1, 2, 2, 125, 0, 0))
    e.query(q, dst=bytes((239, 1, 1, 2)))
    e.w.advance(3)
    (_, f), = e.take()
    assert _records(f) == [(2, G2)]


def test_v2_query_sets_querier_then_times_out() -> None:
    e = Env()
    I.ip_mc_inc_group(e.dev, G1)
    e.w.advance(3)
    e.take()
    e.query(V2_GENERAL_QUERY)
    assert "V2" in I.proc_igmp_text(e.a)
    e.w.advance(2)
    (_, f), = e.take()
    assert _type(f) == 0x16
    e.w.advance(400)
    assert "V3" in I.proc_igmp_text(e.a)


def test_v1_query_sets_v1() -> None:
    e = Env()
    I.ip_mc_inc_group(e.dev, G1)
    e.query(V1_QUERY)
    assert e.dev.ip_ptr.igmp.querier() == "V1"
    e.w.advance(11)
    assert {_type(f) for _, f in e.take()} <= {0x12, 0x22}


def test_report_suppression_v2() -> None:
    e = Env()
    e.sysctl("net.ipv4.conf.eth0.force_igmp_version", 2)
    I.ip_mc_inc_group(e.dev, G1)
    e.w.advance(15)
    e.take()
    e.query(bytes((0x11, 100, 0, 0, 0, 0, 0, 0)))  # 10 s
    im = e.dev.ip_ptr.igmp.find(G1)
    assert im.tm_running
    other = bytes((0x16, 0, 0, 0, 239, 1, 1, 1))
    e.query(other, dst=bytes((239, 1, 1, 1)))
    assert not im.tm_running
    e.w.advance(11)
    assert e.take() == []
    # we did not send the last report: no leave
    I.ip_mc_dec_group(e.dev, G1)
    e.w.run_until_idle()
    assert e.take() == []


def test_link_local_groups_and_llm_reports() -> None:
    e = Env()
    I.ip_mc_inc_group(e.dev, 0xE00000FB)  # 224.0.0.251
    e.w.advance(3)
    assert len(e.take()) == 2
    e.sysctl("net.ipv4.igmp_link_local_mcast_reports", 0)
    I.ip_mc_inc_group(e.dev, 0xE00000FC)
    e.w.advance(3)
    assert e.take() == []


def test_down_up_rejoins() -> None:
    e = Env()
    I.ip_mc_inc_group(e.dev, G1)
    e.w.advance(3)
    e.take()
    sh(e.w, "ip -n a link set eth0 down\n")
    assert bytes.fromhex("01005e010101") not in dev_mc_list(e.dev)
    assert [g for g, _ in I.ip_mc_groups(e.dev)] == [bytes((239, 1, 1, 1))]
    sh(e.w, "ip -n a link set eth0 up\n")
    e.w.advance(3)
    recs = [_records(f) for _, f in e.take()]
    assert recs and all(r == [(4, G1)] for r in recs)
    assert bytes.fromhex("01005e010101") in dev_mc_list(e.dev)


def test_rejoin_groups_on_resend_event() -> None:
    e = Env()
    I.ip_mc_inc_group(e.dev, G1)
    e.w.advance(3)
    e.take()
    e.a.notify("RESEND_IGMP", e.dev)
    e.w.run_until_idle()
    (_, f), = e.take()
    assert _records(f) == [(2, G1)]


def test_socket_api_errors() -> None:
    e = Env()
    sk = object.__new__(type("Sk", (), {}))
    with pytest.raises(KernelError) as ei:
        I.ip_mc_join_group(e.a, sk, 0x0A000001, e.dev.ifindex)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(KernelError) as ei:
        I.ip_mc_join_group(e.a, sk, G1, 99)
    assert ei.value.errno == errno.ENODEV
    I.ip_mc_join_group(e.a, sk, G1, e.dev.ifindex)
    with pytest.raises(KernelError) as ei:
        I.ip_mc_join_group(e.a, sk, G1, e.dev.ifindex)
    assert ei.value.errno == errno.EADDRINUSE
    e.sysctl("net.ipv4.igmp_max_memberships", 2)
    I.ip_mc_join_group(e.a, sk, G2, 0, 0x0A000001)  # by local address
    with pytest.raises(KernelError) as ei:
        I.ip_mc_join_group(e.a, sk, 0xEF010103, e.dev.ifindex)
    assert ei.value.errno == errno.ENOBUFS
    with pytest.raises(KernelError) as ei:
        I.ip_mc_leave_group(e.a, sk, 0xEF010109, e.dev.ifindex)
    assert ei.value.errno == errno.EADDRNOTAVAIL
    I.ip_mc_leave_group(e.a, sk, G1, e.dev.ifindex)
    assert e.dev.ip_ptr.igmp.find(G1) is None
    I.ip_mc_drop_socket(e.a, sk)
    assert e.dev.ip_ptr.igmp.find(G2) is None
    with pytest.raises(NotSupported):
        I.ip_mc_source(sk)


def test_autojoin_and_delete() -> None:
    e = Env()
    sh(e.w, "ip -n a addr add 239.1.1.1/32 dev eth0 autojoin\n")
    assert I.ip_check_mc(e.dev, G1, 0, 17)
    sh(e.w, "ip -n a addr add 239.1.1.2/32 dev eth0\n")  # no autojoin flag: no join
    assert not I.ip_check_mc(e.dev, G2, 0, 17)
    sh(e.w, "ip -n a addr del 239.1.1.1/32 dev eth0\n")
    assert not I.ip_check_mc(e.dev, G1, 0, 17)


def test_proc_igmp_format() -> None:
    e = Env()
    I.ip_mc_inc_group(e.dev, G1)
    assert I.proc_igmp_text(e.a) == (
        "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"
        "2\teth0      :     2      V3\n"
        "\t\t\t\t010101EF     1 0:00000000\t\t0\n"
        "\t\t\t\t010000E0     1 0:00000000\t\t0\n")


@pytest.mark.parametrize("msg,fix,reason", [
    (bytes((0x11, 10, 0, 0, 0, 0)), True, "PKT_TOO_SMALL"),            # short header
    (bytes((0x11, 10, 0xAB, 0xCD, 0, 0, 0, 0)), False, "NOT_SPECIFIED"),  # bad checksum
    (bytes((0x11, 10, 0, 0, 0, 0, 0, 0, 2, 0)), True, "NOT_SPECIFIED"),  # 10 bytes: bogus
    (bytes((0x17, 0, 0, 0, 239, 1, 1, 1)), True, "NOT_SPECIFIED"),     # leave: freed
])
def test_malformed_is_counted_drop(msg: bytes, fix: bool, reason: str) -> None:
    e = Env()
    I.ip_mc_inc_group(e.dev, G1)  # 239.1.1.1 joined: the leave reaches igmp_rcv
    e.w.advance(3)
    dst = bytes((239, 1, 1, 1)) if msg[0] == 0x17 else bytes((224, 0, 0, 1))
    before = e.a.drops[reason]
    e.query(msg, dst=dst, fix_csum=fix)
    assert e.a.drops[reason] == before + 1


def test_valid_query_is_consumed() -> None:
    e = Env()
    before = e.a.drops.total()
    e.query(V3_GENERAL_QUERY)
    assert e.a.drops.total() == before


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=40))
def test_fuzz_igmp_rcv_never_raises(payload: bytes) -> None:
    e = _FUZZ_ENV
    e.query(payload, fix_csum=False)
    e.query(payload, fix_csum=len(payload) >= 4)


_FUZZ_ENV = Env(seed=9)


def test_bond_failover_resends_joins() -> None:
    """bond_change_active_slave → mcast_work (1 jiffy, then every HZ/5) → NETDEV_RESEND_IGMP
    → ip_mc_rejoin_groups: ``resend_igmp`` reports on the new active slave."""
    w = igmp_world()
    sh(w, """ip netns add h
ip netns add s
ip -n h link add bond0 type bond mode active-backup miimon 100 resend_igmp 3
ip -n h link add e1 address 02:00:00:00:00:01 type veth peer name p1 netns s
ip -n h link add e2 address 02:00:00:00:00:02 type veth peer name p2 netns s
ip -n h link set e1 master bond0
ip -n h link set e2 master bond0
ip -n s link set p1 up
ip -n s link set p2 up
ip -n h link set bond0 up
ip -n h addr add 10.0.0.1/24 dev bond0
ip -n h addr add 239.1.1.1/32 dev bond0 autojoin
""")
    w.advance(3)
    s = w.netns("s")
    got: list[tuple[int, bytes]] = []
    s.add_rx_tap(s.get("p2"), lambda p: got.append((w.clock.now, bytes(p.buf[p.mac_header:p.tail]))))
    sh(w, "ip -n s link set p1 down\n")
    w.advance(2)
    reps = [(t, f) for t, f in got if is_igmp(f)]
    assert len(reps) == 3
    assert all(_records(f) == [(2, G1)] for _, f in reps)   # MODE_IS_EXCLUDE (rejoin)
    assert [b - a for (a, _), (b, _) in zip(reps, reps[1:])] == [200_000_000, 200_000_000]


def test_udp_socket_membership_and_close() -> None:
    from netstack.ipv4.udp import udp_socket
    e = Env()
    sk = udp_socket(e.a)
    sk.add_membership("239.1.1.1", e.dev.ifindex)
    assert I.ip_check_mc(e.dev, G1, 0, 17)
    with pytest.raises(KernelError) as ei:
        sk.drop_membership("239.1.1.9", e.dev.ifindex)
    assert ei.value.errno == errno.EADDRNOTAVAIL
    sk.close()  # ip_mc_drop_socket
    assert not I.ip_check_mc(e.dev, G1, 0, 17)


def test_cat_proc_files() -> None:
    e = Env()
    sh(e.w, "ip -n a addr add 239.1.1.1/32 dev eth0 autojoin\n")
    out = sh(e.w, "ip netns exec a cat /proc/net/igmp /proc/net/dev_mcast\n")
    assert out == I.proc_igmp_text(e.a) + (
        "2    eth0            1     0     333300000001\n"
        "2    eth0            1     0     01005e000001\n"
        "2    eth0            1     0     3333ff000001\n"
        "2    eth0            1     0     01005e010101\n")


def test_v3_report_split_at_mtu() -> None:
    """add_grec: a record goes into a new report when fewer than 8 bytes of the MTU are
    left (1500 - 24 IP+RA - 8 report header = 183 records)."""
    e = Env()
    groups = [0xEF020000 + i for i in range(200)]
    for g in groups:
        I.ip_mc_inc_group(e.dev, g)
    e.w.advance(0.0021)  # the first interface-change report (jiffies + 2)
    fr = e.take()
    assert [len(_records(f)) for _, f in fr] == [183, 17]
    assert [r[1] for _, f in fr for r in _records(f)] == groups[::-1]  # newest first
    assert all(len(f) - 14 <= 1500 for _, f in fr)


def test_autojoin_limit_refuses_address() -> None:
    """The namespace's autojoin socket is one socket: the 21st autojoin address fails with
    "Error: ipv4: Multicast auto join failed." (exit 2) and is not added (Linux 6.18)."""
    import inspect

    from netstack.ipv4 import devinet
    if "mc_autojoin" not in inspect.getsource(devinet.inet_add_addr):
        pytest.skip("patch MC-8 (devinet calls ip_mc_autojoin_config) not applied")
    import io

    from netstack.cli.scenario import run_command
    e = Env()
    for i in range(1, 21):
        sh(e.w, f"ip -n a addr add 239.9.9.{i}/32 dev eth0 autojoin\n")
    out, err = io.StringIO(), io.StringIO()
    rc = run_command(e.w, "ip -n a addr add 239.9.9.21/32 dev eth0 autojoin", out, err)
    assert (rc, err.getvalue()) == (2, "Error: ipv4: Multicast auto join failed.\n")
    assert sh(e.w, "ip -n a addr show dev eth0\n").count("239.9.9.") == 20
    assert len(I.ip_mc_groups(e.dev)) == 21  # + all-hosts
    # deleting any multicast address leaves (inet_rtm_deladdr), one reference each
    sh(e.w, "ip -n a addr del 239.9.9.1/32 dev eth0\n")
    assert not I.ip_check_mc(e.dev, 0xEF090901, 0, 17)
    sh(e.w, "ip -n a addr add 239.9.9.21/32 dev eth0 autojoin\n")
    assert I.ip_check_mc(e.dev, 0xEF090915, 0, 17)
