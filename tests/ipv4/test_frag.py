"""Fragmentation and reassembly (net/ipv4/ip_output.c ip_do_fragment,
net/ipv4/ip_fragment.c, inet_fragment.c)."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ip_env import Env, from_h1, ip, ipv4, udp4

from netstack.ipv4.ip_fragment import ip_defrag, ip_do_fragment
from netstack.ipv4.udp import udp_socket
from netstack.packet.checksum import ip_fast_csum


def split(dg: bytes, mtu: int, env: Env) -> list[bytes]:
    p = env.world.new_packet(dg)
    p.network_header = p.data
    out = ip_do_fragment(env.r, p, mtu)
    return [f.bytes() for f in out]


def test_fragment_layout_and_option_copy_bit(monkeypatch):
    env = Env(monkeypatch)
    # RR (copy bit clear) then Security-like option 130 (copy bit set), padded to 4
    opts = bytes((7, 7, 4, 0, 0, 0, 0)) + bytes((130, 4, 0xAB, 0xCD)) + b"\x00"
    dg = ipv4("10.0.1.1", "10.0.2.1", 17, bytes(range(256)) * 4, ident=0xBEEF, options=opts)
    frags = split(dg, 400, env)
    hl = 32
    per = (400 - hl) & ~7
    assert [len(f) - hl for f in frags] == [per, per, 1024 - 2 * per]
    for i, f in enumerate(frags):
        assert f[4:6] == b"\xbe\xef"
        fo = int.from_bytes(f[6:8], "big")
        assert fo & 0x1FFF == i * per // 8
        assert bool(fo & 0x2000) == (i < 2)
        assert ip_fast_csum(f[:hl]) == 0 and f[0] == 0x48
    assert frags[0][20:hl] == opts
    assert frags[1][20:hl] == b"\x01" * 7 + opts[7:]
    assert env.mib["IpFragCreates"] == 3 and env.mib["IpFragOKs"] == 1


def test_refragmenting_a_non_final_fragment_keeps_mf(monkeypatch):
    env = Env(monkeypatch)
    dg = ipv4("10.0.1.1", "10.0.2.1", 17, b"m" * 800, mf=True, frag_off=1600)
    frags = split(dg, 420, env)
    fos = [int.from_bytes(f[6:8], "big") for f in frags]
    assert all(fo & 0x2000 for fo in fos)
    assert [fo & 0x1FFF for fo in fos] == [200, 250]


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 9000), mtu=st.integers(68, 3000), seed=st.integers(0, 2**32 - 1))
def test_fragment_then_reassemble_is_identity(size, mtu, seed):
    with pytest.MonkeyPatch.context() as mp:
        _roundtrip(Env(mp), size, mtu, seed)


def _roundtrip(env: Env, size: int, mtu: int, seed: int) -> None:
    payload = random.Random(seed).randbytes(size)
    dg = ipv4("10.0.1.1", "10.0.1.254", 17, payload, ident=seed & 0xFFFF)
    frags = split(dg, mtu, env)
    assert all(len(f) <= mtu for f in frags)
    random.Random(seed).shuffle(frags)
    result = None
    for f in frags:
        p = env.world.new_packet(f)
        p.network_header = p.data
        p.dev = env.v1r
        r = ip_defrag(env.r, p)
        if r is not None:
            assert result is None
            result = r
    if len(frags) == 1:
        # a single "fragment" is the datagram itself (not a fragment at all)
        assert frags[0] == dg
        return
    assert result is not None and result.bytes() == dg
    assert env.r.ipv4.frags == {} and env.r.ipv4.frag_mem == 0


def test_reassembled_udp_reaches_socket(monkeypatch):
    env = Env(monkeypatch)
    sk = udp_socket(env.r)
    sk.bind(("0.0.0.0", 5000))
    dg = udp4("10.0.1.1", "10.0.1.254", 1, 5000, b"R" * 3000, ident=77)
    frags = split(dg, 1500, env)
    env.inject([from_h1(f) for f in reversed(frags)])
    assert sk.recvfrom() == (b"R" * 3000, ("10.0.1.1", 1))
    m = env.mib
    assert (m["IpReasmReqds"], m["IpReasmOKs"], m["IpInDelivers"]) == (3, 1, 1)


def frag(off: int, data: bytes, mf: bool, ident: int = 9, **kw) -> bytes:
    return ipv4("10.0.1.1", "10.0.1.254", 17, data, ident=ident, frag_off=off, mf=mf, **kw)


def test_duplicate_fragment_is_dropped_queue_kept(monkeypatch):
    env = Env(monkeypatch)
    sk = udp_socket(env.r)
    sk.bind(("0.0.0.0", 5000))
    dg = udp4("10.0.1.1", "10.0.1.254", 1, 5000, b"D" * 100, ident=9)
    f0 = ipv4("10.0.1.1", "10.0.1.254", 17, dg[20:84], ident=9, mf=True)
    f1 = frag(64, dg[84:], False)
    inner = frag(8, dg[28:44], True)            # inside the first fragment's run
    env.inject([from_h1(f0), from_h1(f0), from_h1(inner), from_h1(f1)])
    assert env.drops == {"DUP_FRAG": 2}
    assert sk.recvfrom() == (b"D" * 100, ("10.0.1.1", 1))


def test_overlap_kills_the_queue(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(frag(0, b"a" * 64, True)), from_h1(frag(56, b"b" * 64, True))])
    assert env.mib["IpExtReasmOverlaps"] == 1 and env.mib["IpReasmFails"] == 1
    assert env.drops == {"FRAG_REASM_TIMEOUT": 1, "NOT_SPECIFIED": 1}
    assert env.r.ipv4.frags == {} and env.r.ipv4.frag_mem == 0


def test_inconsistent_last_fragment_kills_the_queue(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(frag(64, b"z" * 16, False)), from_h1(frag(64, b"z" * 24, False))])
    assert env.mib["IpReasmFails"] == 1 and env.r.ipv4.frags == {}


def test_timeout_sends_time_exceeded_when_first_fragment_arrived(monkeypatch):
    env = Env(monkeypatch)
    f0 = frag(0, b"x" * 64, True, ident=1)
    env.inject([from_h1(f0), from_h1(frag(64, b"y" * 64, True, ident=2))])
    env.world.advance(29.9)
    assert env.out["v1r"] == []
    env.world.advance(0.2)
    (te,) = env.out["v1r"]
    assert te[34:36] == b"\x0b\x01"
    assert te[42:] == f0
    m = env.mib
    assert m["IpReasmTimeout"] == 2 and m["IpReasmFails"] == 2
    assert env.drops == {"FRAG_REASM_TIMEOUT": 2}
    assert env.r.ipv4.frags == {} and env.r.ipv4.frag_mem == 0


def test_ipfrag_time_sysctl(monkeypatch):
    env = Env(monkeypatch)
    env.r.sysctl.set("net.ipv4.ipfrag_time", 5)
    env.inject([from_h1(frag(0, b"x" * 64, True))])
    env.world.advance(5.0)
    assert len(env.out["v1r"]) == 1


def test_high_thresh_refuses_new_fragments(monkeypatch):
    env = Env(monkeypatch)
    # low <= high is enforced as on the kernel: lower the low mark first
    env.r.sysctl.set("net.ipv4.ipfrag_low_thresh", 0)
    env.r.sysctl.set("net.ipv4.ipfrag_high_thresh", 1000)
    env.inject([from_h1(frag(0, b"x" * 512, True, ident=i)) for i in range(4)])
    assert len(env.r.ipv4.frags) == 2
    assert env.mib["IpReasmFails"] == 2


def test_ipfrag_max_dist_restarts_a_stale_queue(monkeypatch):
    env = Env(monkeypatch)
    env.r.sysctl.set("net.ipv4.ipfrag_max_dist", 3)
    frames = [from_h1(frag(0, b"x" * 64, True, ident=100))]
    frames += [from_h1(frag(0, b"n" * 8, True, ident=200 + i)) for i in range(4)]
    frames += [from_h1(frag(64, b"y" * 8, False, ident=100))]
    env.inject(frames)
    assert env.drops == {"FRAG_TOO_FAR": 1}
    q = env.r.ipv4.frags[(b"\x00\x64", ip("10.0.1.1"), ip("10.0.1.254"), 17, 0)]
    assert q.meat == 8 and q.len == 72


def test_ecn_ce_mixed_with_not_ect_drops(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(frag(0, b"x" * 64, True, tos=0)), from_h1(frag(64, b"y" * 8, False, tos=3))])
    assert env.mib["IpReasmFails"] == 1 and env.mib["IpReasmOKs"] == 0


def test_namespace_deletion_stops_reassembly_timers(monkeypatch):
    env = Env(monkeypatch)
    env.inject([from_h1(frag(0, b"x" * 64, True))])
    assert env.r.ipv4.frags
    env.world.netns_del("r")
    env.world.advance(40)
    assert env.out["v1r"] == []
