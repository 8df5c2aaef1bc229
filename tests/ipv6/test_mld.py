"""Host MLD state machine (netstack/ipv6/mcast.py; net/ipv6/mcast.c), on the virtual
clock.  The expected frames are the Linux 6.18 captures of tests/ipv6/test_mld_codec.py;
the timeline is the one measured there (docs/multicast.md "MLD")."""
from __future__ import annotations

from netstack.ipv6.addr import a6
from netstack.ipv6.addrconf import inet6_del_addr
from netstack.ipv6.mcast import (MldQuery, build_mld_query, mld_ipv6_frame,
                                 proc_igmp6_text, with_query_checksum)

from .helpers import addr, capture, inject, pair, world
from .test_mld_codec import K_V2_DAD, K_V2_INIT

MAC_A = bytes.fromhex("02000000000a")
MAC_B = bytes.fromhex("02000000000b")
LL_B = bytes.fromhex("fe80000000000000000000fffe00000b")
MS = 1_000_000


def _setup(force: int = 0, dad: bool = True):
    w = world()
    a, da, b, db = pair(w, "a", "va", "b", "vb", mac_a=MAC_A, mac_b=MAC_B, up=False)
    b.dev_open(b.get("lo"))
    b.dev_open(db)
    if force:
        a.sysctl.set("net.ipv6.conf.va.force_mld_version", force)
    if not dad:
        a.sysctl.set("net.ipv6.conf.va.accept_dad", 0)
    got: list[tuple[int, bytes]] = []
    b.add_rx_tap(db, lambda p: got.append((w.clock.now, bytes(p.buf[p.mac_header:p.tail]))))
    t0 = w.clock.now
    a.dev_open(a.get("lo"))
    a.dev_open(da)
    return w, a, da, b, db, got, t0


def _mld(got, since: int = 0) -> list[tuple[int, bytes]]:
    return [(t, f) for t, f in got if t >= since and f[6:12] == MAC_A and f[20] == 0
            and f[62] in (130, 131, 132, 143)]


def test_link_up_reports_like_kernel() -> None:
    """Two TO_EX reports from :: while DAD runs, then the DAD-complete report from the
    link-local (right before the RS) and its repetition — byte for byte as Linux."""
    w, a, da, b, db, got, t0 = _setup()
    w.advance(4.0)
    mld = _mld(got)
    assert [f.hex() for _, f in mld] == [K_V2_INIT, K_V2_INIT, K_V2_DAD, K_V2_DAD]
    times = [t - t0 for t, _ in mld]
    assert times[0] == 2 * MS                          # mld_ifc_start_work(idev, 1)
    assert 2 * MS <= times[1] - times[0] <= 1002 * MS  # below mldv2_unsolicited (1 s) + 2
    own = [(t, f) for t, f in got if f[6:12] == MAC_A]
    i = [f for _, f in own].index(mld[2][1])
    assert own[i + 1][1][54] == 133 and own[i + 1][0] == mld[2][0]   # MLD, then the RS
    assert 2 * MS <= times[3] - times[2] <= 1002 * MS


def test_addr_add_del_reports() -> None:
    """``ip addr add`` (ipv6_find_idev → ipv6_mc_up) re-reports every group with the new
    solicited-node group first; ``ip addr del`` sends TO_IN twice."""
    w, a, da, b, db, got, t0 = _setup()
    w.advance(4.0)
    t1 = w.clock.now
    addr(a, da, "2001:db8::1/64")
    w.advance(2.0)
    rec = [f[70:] for _, f in _mld(got, t1)]
    sol_new = bytes.fromhex("ff0200000000000000000001ff000001")
    sol_ll = bytes.fromhex("ff0200000000000000000001ff00000a")
    assert rec == [bytes((4, 0, 0, 0)) + sol_new + bytes((4, 0, 0, 0)) + sol_ll] * 2
    t2 = w.clock.now
    inet6_del_addr(a, da, a6("2001:db8::1"), 64)
    w.advance(3.0)
    assert [f[70:] for _, f in _mld(got, t2)] == [bytes((3, 0, 0, 0)) + sol_new] * 2


def test_mldv1_forced_report_and_done() -> None:
    """force_mld_version=1: a report to the group at once, one more within
    mldv1_unsolicited_report_interval (10 s); a done to ff02::2 on leave."""
    w, a, da, b, db, got, t0 = _setup(force=1, dad=False)
    w.advance(12.0)
    sol_ll = bytes.fromhex("ff0200000000000000000001ff00000a")
    reps = _mld(got)
    assert [f[62] for _, f in reps] == [131, 131]
    assert all(f[38:54] == sol_ll and f[0:6] == bytes.fromhex("3333ff00000a")
               for _, f in reps)
    assert reps[1][0] - reps[0][0] < 10_000 * MS
    t1 = w.clock.now
    addr(a, da, "2001:db8::1/64")
    w.advance(12.0)
    t2 = w.clock.now
    inet6_del_addr(a, da, a6("2001:db8::1"), 64)
    w.advance(1.0)
    done = _mld(got, t2)
    assert [(f[62], f[38:54]) for _, f in done] == \
        [(132, bytes.fromhex("ff020000000000000000000000000002"))]
    assert done[0][1][70:86] == bytes.fromhex("ff0200000000000000000001ff000001")
    assert _mld(got, t1)


def _query(w, db, q: MldQuery, src: bytes = LL_B) -> None:
    dst = bytes.fromhex("ff020000000000000000000000000001")
    icmp = with_query_checksum(src, dst, build_mld_query(q))
    inject(w, db, [bytes.fromhex("333300000001") + MAC_B + b"\x86\xdd"
                   + mld_ipv6_frame(src, dst, icmp)])


def test_general_query_answer_and_v1_querier() -> None:
    """An MLDv2 general query is answered with one MODE_IS_EXCLUDE report within the
    Maximum Response Delay; an MLDv1 query switches the host to MLDv1 reports."""
    w, a, da, b, db, got, t0 = _setup(dad=False)
    w.advance(5.0)
    t1 = w.clock.now
    _query(w, db, MldQuery(2, bytes(16), 1000, qrv=2, qqi=125))
    w.advance(1.1)
    ans = _mld(got, t1)
    assert len(ans) == 1 and ans[0][1][62] == 143 and ans[0][1][70] == 2   # IS_EX
    assert ans[0][0] - t1 <= 1002 * MS
    t2 = w.clock.now
    _query(w, db, MldQuery(1, bytes(16), 500))
    w.advance(1.0)
    ans = _mld(got, t2)
    assert [f[62] for _, f in ans] == [131]
    # a query from a global source is ignored (RFC 3810 §6.2)
    t3 = w.clock.now
    _query(w, db, MldQuery(2, bytes(16), 100), src=a6("2001:db8::b"))
    w.advance(1.0)
    assert _mld(got, t3) == []


def test_v1_report_suppression() -> None:
    """Another host's v1 report for our group stops our pending answer, and we no
    longer send the done (not the last reporter)."""
    w, a, da, b, db, got, t0 = _setup(force=1, dad=False)
    w.advance(12.0)
    t1 = w.clock.now
    _query(w, db, MldQuery(1, bytes(16), 10000))
    sol_ll = bytes.fromhex("ff0200000000000000000001ff00000a")
    from netstack.ipv6.mcast import ICMPV6_MGM_REPORT, mld1_message
    dst, icmp = mld1_message(LL_B, ICMPV6_MGM_REPORT, sol_ll)
    inject(w, db, [bytes.fromhex("3333ff00000a") + MAC_B + b"\x86\xdd"
                   + mld_ipv6_frame(LL_B, dst, icmp)])
    w.advance(11.0)
    assert _mld(got, t1) == []
    assert "00000004" in proc_igmp6_text(a)      # loaded, no timer, not last reporter


def test_down_stops_reports_and_proc() -> None:
    w, a, da, b, db, got, t0 = _setup()
    w.advance(0.001)
    a.dev_close(da)
    n = len(_mld(got))
    w.advance(5.0)
    assert len(_mld(got)) == n
    lines = proc_igmp6_text(a).splitlines()
    assert lines[0].split()[:2] == ["1", "lo"]
    assert any("ff020000000000000000000000000001" in ln and "0000000C" in ln for ln in lines)


def test_capture_helper_hides_mld() -> None:
    w, a, da, b, db, got, t0 = _setup()
    plain, full = capture(b, db), capture(b, db, mld=True)
    w.advance(4.0)
    assert len(full) > len(plain) and all(f[20] != 0 for f in plain)


def test_random_mld_messages_never_escape() -> None:
    """Malformed queries and reports are counted drops or ignored, never exceptions."""
    import random
    w, a, da, b, db, got, t0 = _setup(dad=False)
    w.advance(0.5)
    rng = random.Random(7)
    dst = bytes.fromhex("ff020000000000000000000000000001")
    frames = []
    for _ in range(60):
        t = rng.choice((130, 131, 132, 143))
        body = bytes([t, 0, 0, 0]) + rng.randbytes(rng.randrange(0, 60))
        icmp = with_query_checksum(LL_B, dst, body)
        frames.append(bytes.fromhex("333300000001") + MAC_B + b"\x86\xdd"
                      + mld_ipv6_frame(LL_B, dst, icmp))
    inject(w, db, frames)
    w.advance(30.0)
    assert a.ipv6.mib["Icmp6InType130"] > 0
