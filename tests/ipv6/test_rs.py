"""Router solicitation by hosts (net/ipv6/addrconf.c addrconf_dad_completed,
addrconf_rs_timer; net/ipv6/ndisc.c ndisc_send_rs, ndisc_recv_rs)."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core.neighbour import NUD_STALE
from netstack.ipv6.addr import ALL_ROUTERS, ANY, a6, link_local_from_mac
from netstack.ipv6.addrconf import (IFA_F_OPTIMISTIC, IFA_F_TENTATIVE, Inet6IfAddr,
                                    _backoff_init, _backoff_update, inet6_add_addr,
                                    inet6_del_addr)
from netstack.ipv6.ndisc import ndisc_send_rs
from netstack.packet.icmpv6 import build_icmpv6
from netstack.packet.ipv6 import build_ipv6

from .helpers import MAC_A, MAC_B, eth, inject, is_rs, pair, world

# Captured on Linux 6.18: host v0 02:00:00:00:00:01 (IPv6 defaults) solicits router v1
# (tests/kernel/test_router_solicit.py with these MAC addresses).
K_RS = bytes.fromhex(
    "33330000000202000000000186dd6000000000103afffe80000000000000000000fffe000001ff02"
    "000000000000000000000000000285007b2c000000000101020000000001")
LL_A = link_local_from_mac(MAC_A)
SEC = 1_000_000_000


def host_and_router(host_conf: dict[str, int] | None = None, router: bool = True,
                    seed: int = 0):
    """a (host, ``host_conf`` written to net.ipv6.conf.va.*) -- b (forwarding if
    ``router``); knobs are set before the link comes up, as a script would."""
    w = world()
    if seed:
        w.rng.seed(seed)
    a, va, b, vb = pair(w, "a", "va", "b", "vb", up=False)
    for k, v in (host_conf or {}).items():
        a.sysctl.set(f"net.ipv6.conf.va.{k}", v)
    if router:
        b.sysctl.set("net.ipv6.conf.all.forwarding", 1)
    sent: list[tuple[int, bytes]] = []
    a.add_tx_tap(va, lambda p: sent.append((w.clock.now, p.bytes())))
    for ns, d in ((a, va), (b, vb)):
        ns.dev_open(ns.get("lo"))
        ns.dev_open(d)
    return w, a, va, b, vb, sent


def rs_times(sent: list[tuple[int, bytes]]) -> list[int]:
    return [t for t, f in sent if is_rs(f)]


def test_first_rs_after_dad_matches_kernel_bytes() -> None:
    w, a, va, b, vb, sent = host_and_router()
    w.advance(0.5)
    assert rs_times(sent) == []  # DAD (random delay, then a 1 s probe) comes first
    w.advance(2.0)
    rs = [f for _, f in sent if is_rs(f)]
    assert rs == [K_RS]
    (dad_ns,) = [t for t, f in sent if f[54] == 135]
    assert rs_times(sent)[0] == dad_ns + SEC  # at once when DAD ends: retrans_time later


def test_router_creates_stale_entry_for_soliciting_host() -> None:
    w, a, va, b, vb, sent = host_and_router()
    w.advance(2.5)
    (n,) = [n for n in b.ipv6.nd_tbl.entries.values() if n.key == LL_A]
    assert n.nud_state == NUD_STALE and n.ha == MAC_A and n.dev is vb


def test_a_host_does_not_learn_from_rs() -> None:
    w, a, va, b, vb, sent = host_and_router(router=False)
    w.advance(2.5)
    assert rs_times(sent)
    assert not [n for n in b.ipv6.nd_tbl.entries.values() if n.key == LL_A]


def test_retransmit_schedule_backs_off_to_max_interval() -> None:
    w, a, va, b, vb, sent = host_and_router({"router_solicitation_max_interval": 20})
    w.advance(120)
    t = rs_times(sent)
    gaps = [(y - x) / SEC for x, y in zip(t, t[1:])]
    assert 3.6 <= gaps[0] <= 4.4                       # RTR_SOLICITATION_INTERVAL × 0.9…1.1
    assert 1.9 * gaps[0] - 0.002 <= gaps[1] <= 2.1 * gaps[0] + 0.002
    assert 1.9 * gaps[1] - 0.002 <= gaps[2] <= 2.1 * gaps[1] + 0.002  # <= 19.4 s: not capped
    assert all(18 <= g <= 22 for g in gaps[3:]) and len(gaps) >= 6  # MRT × 0.9…1.1, forever


def test_schedule_is_deterministic_per_seed_and_differs_across_seeds() -> None:
    runs = []
    for seed in (7, 7, 8):
        w, *_, sent = host_and_router(seed=seed)
        w.advance(40)
        runs.append(rs_times(sent))
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_counted_solicitations_stop() -> None:
    w, a, va, b, vb, sent = host_and_router({"router_solicitations": 3})
    w.advance(60)
    assert len(rs_times(sent)) == 3
    # after the last RS the timer ran once more, router_solicitation_delay later, and stopped
    assert va.ip6_ptr.rs_timer is not None and not va.ip6_ptr.rs_timer.active
    assert va.ip6_ptr.rs_probes == 4


@pytest.mark.parametrize("conf", [{"forwarding": 1}, {"accept_ra": 0},
                                  {"router_solicitations": 0}])
def test_no_rs_from_routers_or_when_disabled(conf: dict[str, int]) -> None:
    w, a, va, b, vb, sent = host_and_router(conf)
    w.advance(30)
    assert rs_times(sent) == [] and not va.ip6_ptr.rs_sent
    assert any(f[54] == 135 for _, f in sent)  # DAD did run: the link-local was usable


def test_hybrid_router_with_accept_ra_2_solicits() -> None:
    w, a, va, b, vb, sent = host_and_router({"forwarding": 1, "accept_ra": 2})
    w.advance(3)
    assert len(rs_times(sent)) == 1


def test_becoming_a_router_stops_retransmissions() -> None:
    w, a, va, b, vb, sent = host_and_router()
    w.advance(3)
    assert len(rs_times(sent)) == 1
    a.sysctl.set("net.ipv6.conf.va.forwarding", 1)
    w.advance(60)
    assert len(rs_times(sent)) == 1


def _ra(lifetime: int = 0) -> bytes:
    body = bytes((64, 0)) + lifetime.to_bytes(2, "big") + bytes(8)
    src, dst = link_local_from_mac(MAC_B), a6("ff02::1")
    return eth(bytes.fromhex("333300000001"), MAC_B,
               build_ipv6(src, dst, 58, build_icmpv6(134, 0, body, src, dst), hop_limit=255))


def test_accepted_ra_stops_retransmissions() -> None:
    w, a, va, b, vb, sent = host_and_router(router=False)
    w.advance(3)
    assert len(rs_times(sent)) == 1
    inject(w, vb, [_ra()])
    assert va.ip6_ptr.ra_rcvd
    w.advance(60)
    assert len(rs_times(sent)) == 1


def test_link_down_stops_and_link_up_restarts() -> None:
    w, a, va, b, vb, sent = host_and_router()
    w.advance(3)
    a.dev_close(va)
    assert not va.ip6_ptr.rs_sent and not va.ip6_ptr.rs_timer.active
    w.advance(30)
    assert len(rs_times(sent)) == 1
    a.dev_open(va)
    w.advance(3)
    assert len(rs_times(sent)) == 2


def test_no_usable_link_local_no_rs_and_the_timer_stops() -> None:
    w, a, va, b, vb, sent = host_and_router()
    w.advance(3)
    inet6_del_addr(a, va, LL_A, 64)
    w.advance(60)
    assert len(rs_times(sent)) == 1 and not va.ip6_ptr.rs_timer.active


def test_second_link_local_address_does_not_restart_solicitation() -> None:
    """ipv6_lonely_lladdr: only the first usable link-local address starts RS."""
    w, a, va, b, vb, sent = host_and_router({"router_solicitations": 1})
    w.advance(10)
    assert len(rs_times(sent)) == 1
    inet6_add_addr(a, va, Inet6IfAddr(a6("fe80::99"), 64))
    w.advance(10)
    assert len(rs_times(sent)) == 1


def test_rs_from_unspecified_or_optimistic_source_has_no_slla() -> None:
    """ndisc_send_rs (CONFIG_IPV6_OPTIMISTIC_DAD): the SLLA option only for one of the
    device's own, non-optimistic addresses (RFC 4429 §2.2; RFC 4861 §4.1 forbids it
    with the unspecified source)."""
    w, a, va, b, vb, sent = host_and_router({"router_solicitations": 0})
    w.advance(3)
    del sent[:]
    ndisc_send_rs(a, va, ANY, ALL_ROUTERS)
    opt = inet6_add_addr(a, va, Inet6IfAddr(a6("fe80::5"), 64,
                                            flags=IFA_F_OPTIMISTIC))
    assert opt.flags & IFA_F_TENTATIVE
    ndisc_send_rs(a, va, a6("fe80::5"), ALL_ROUTERS)
    ndisc_send_rs(a, va, LL_A, ALL_ROUTERS)
    w.run_until_idle()
    frames = [f for _, f in sent if is_rs(f)]
    assert [len(f) for f in frames] == [62, 62, 70]
    f0 = frames[0]
    assert f0[22:38] == ANY and f0[38:54] == ALL_ROUTERS and f0[21] == 255
    assert f0[54:56] == b"\x85\x00" and f0[58:62] == bytes(4)
    assert frames[1][22:38] == a6("fe80::5")
    assert frames[2] == K_RS


class _FakeNet:
    """Just enough of a Net for the backoff helpers: ``net.world.rng``."""

    def __init__(self, seed: int) -> None:
        self.world = self
        self.rng = random.Random(seed)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 10**7), st.integers(1, 10**7))
def test_backoff_stays_within_rfc3315_bounds(seed: int, rt: int, mrt: int) -> None:
    """rfc3315_s14_backoff_init/update: IRT × [0.9, 1.1]; RT × [1.9, 2.1] unless that
    exceeds MRT, then MRT × [0.9, 1.1] (integer jiffies, truncated like do_div)."""
    net = _FakeNet(seed)
    i = _backoff_init(net, rt)  # type: ignore[arg-type]
    assert rt * 9 // 10 - 1 <= i <= rt * 11 // 10
    u = _backoff_update(net, rt, mrt)  # type: ignore[arg-type]
    assert (rt * 19 // 10 - 1 <= u <= rt * 21 // 10 and u <= mrt) or \
        mrt * 9 // 10 - 1 <= u <= mrt * 11 // 10


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=6, max_size=6).filter(lambda m: any(m) and not m[0] & 1))
def test_rs_checksum_and_option_for_any_mac(mac: bytes) -> None:
    """The RS of any unicast MAC: SLLA option carries it, ICMPv6 checksum verifies
    (RFC 4443 §2.3 pseudo-header, summed independently here)."""
    w = world()
    a, va, b, vb = pair(w, "a", "va", "b", "vb", mac_a=mac, up=False)
    sent: list[bytes] = []
    a.add_tx_tap(va, lambda p: sent.append(p.bytes()))
    for ns, d in ((a, va), (b, vb)):
        ns.dev_open(d)
    w.advance(2.5)
    (f,) = [f for f in sent if is_rs(f)]
    ll = link_local_from_mac(mac)
    assert f[6:12] == mac and f[22:38] == ll and f[62:70] == b"\x01\x01" + mac
    icmp = f[54:]
    pseudo = ll + ALL_ROUTERS + len(icmp).to_bytes(4, "big") + bytes(3) + b"\x3a"
    assert _csum(pseudo + icmp) == 0xFFFF
