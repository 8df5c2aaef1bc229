"""Malformed input never raises out of the datapath: random and mutated frames go through
ip_list_rcv (receive, options, ICMP error parsing, UDP, reassembly) and are either
handled or dropped with a counted reason."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ip_env import Env, from_h1, ipv4, udp4

SEEDS = [
    udp4("10.0.1.1", "10.0.1.254", 1, 7, b"x" * 30),
    udp4("10.0.1.1", "10.0.2.1", 1, 7, b"x" * 30, ttl=1),
    ipv4("10.0.1.1", "10.0.1.254", 1, bytes((3, 3, 0, 0, 0, 0, 0, 0)) +
         udp4("10.0.1.254", "10.0.1.1", 7, 1, b"q")),
    ipv4("10.0.1.1", "10.0.1.254", 1, bytes((8, 0, 0, 0, 0, 1, 0, 1)) + b"ping"),
    ipv4("10.0.1.1", "10.0.1.254", 17, b"y" * 24, mf=True, ident=5),
    ipv4("10.0.1.1", "10.0.2.1", 17, b"z" * 8, options=bytes((7, 7, 4, 0, 0, 0, 0, 0))),
]


@pytest.fixture(scope="module")
def env():
    with pytest.MonkeyPatch.context() as mp:
        e = Env(mp)
        from netstack.ipv4.udp import udp_socket
        sk = udp_socket(e.r)
        sk.bind(("0.0.0.0", 7))
        e.r.sysctl.set("net.ipv4.icmp_ratemask", 0)
        yield e


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from(SEEDS), edits=st.lists(
    st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 90))
def test_mutated_frames_never_raise(env, seed, edits, cut):
    b = bytearray(seed)
    for pos, val in edits:
        if pos < len(b):
            b[pos] = val
    frame = from_h1(bytes(b[:max(cut, 1)] if cut < len(b) else b))
    before = env.r.drops.total()
    env.inject([frame])
    env.world.advance(31)
    assert env.r.drops.total() >= before


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=0, max_size=120))
def test_random_payloads_never_raise(env, data):
    env.inject([from_h1(data)])
