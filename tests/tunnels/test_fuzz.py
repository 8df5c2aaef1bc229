"""Fuzz every decapsulation parser: truncated or lying headers and option lengths past the
end must be counted drops (or consumption), never an exception, and must not leave the
tunnel unusable — a valid packet still goes through afterwards.
"""
from __future__ import annotations

import struct

import dpkt
from hypothesis import HealthCheck, given, settings, strategies as st

from tunnels.helpers import Topo, mac, outer4, udp_hdr, udp_ip

INNER = udp_ip("192.168.9.1", "192.168.9.2", 1000, 7777, b"fuzz", ttl=33)
FRAME = mac("02:00:00:00:09:02") + mac("02:00:00:00:09:01") + b"\x08\x00" + INNER

SCRIPT = """\
ip -n b link add vx0 address 02:00:00:00:09:02 type vxlan id 42 remote 10.1.0.1 local 10.1.0.2 dev vb dstport 4789 remcsumrx gbp
ip -n b link add gn0 address 02:00:00:00:09:02 type geneve id 77 remote 10.1.0.1
ip -n b fou add port 5556 gue
ip -n b fou add port 5555 ipproto 47
ip -n b link add g0 type gre remote 10.1.0.1 local 10.1.0.2 key 1 csum seq
ip -n b link add t0 type ipip remote 10.1.0.1 local 10.1.0.2
ip -n b link set vx0 up
ip -n b link set gn0 up
ip -n b link set g0 up
ip -n b link set t0 up
"""

_topo: list[Topo] = []


def topo() -> Topo:
    if not _topo:
        _topo.append(Topo(SCRIPT))
    return _topo[0]


def ip_frame(proto: int, payload: bytes) -> bytes:
    f = bytearray(outer4(proto, payload, df=False))
    f[24:26] = struct.pack("!H", dpkt.in_cksum(bytes(f[14:34])))
    return bytes(f)


def udp_frame(dport: int, payload: bytes) -> bytes:
    return ip_frame(17, udp_hdr(40000, dport, payload))


FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
header = st.binary(min_size=0, max_size=24)
tail = st.sampled_from([b"", FRAME[:10], FRAME, INNER, INNER[:7]])


@FUZZ
@given(header, tail)
def test_fuzz_vxlan(h: bytes, rest: bytes) -> None:
    topo().inject(udp_frame(4789, h + rest))


@FUZZ
@given(header, tail)
def test_fuzz_geneve(h: bytes, rest: bytes) -> None:
    topo().inject(udp_frame(6081, h + rest))


@FUZZ
@given(header, tail)
def test_fuzz_gue(h: bytes, rest: bytes) -> None:
    topo().inject(udp_frame(5556, h + rest))


@FUZZ
@given(header, tail)
def test_fuzz_fou_gre(h: bytes, rest: bytes) -> None:
    topo().inject(udp_frame(5555, h + rest))


@FUZZ
@given(header, tail)
def test_fuzz_gre(h: bytes, rest: bytes) -> None:
    topo().inject(ip_frame(47, h + rest))


@FUZZ
@given(st.binary(max_size=60))
def test_fuzz_ipip(inner: bytes) -> None:
    topo().inject(ip_frame(4, inner))


def test_tunnels_still_work_after_fuzzing() -> None:
    t = topo()
    got = t.capture("b", "vx0")
    t.inject(udp_frame(4789, struct.pack("!II", 0x08000000, 42 << 8) + FRAME))
    assert got == [FRAME]
    got_g = t.capture("b", "gn0")
    t.inject(udp_frame(6081, b"\x00\x00\x65\x58" + struct.pack("!I", 77 << 8) + FRAME))
    assert got_g == [FRAME]
    got_t = t.capture("b", "t0")
    t.inject(ip_frame(4, INNER))
    assert got_t == [INNER]
