"""Fuzz: random and mutated frames into every device type of a full topology.

The contract (foundation issue, "Bad input"): a malformed frame is a counted drop with a
kernel drop-reason name — never an exception, never a hang.  Each example injects frames
into veth, loopback and dummy devices of a router topology with IPv4 and IPv6 configured,
then lets virtual time run (timers: neighbour retries, reassembly) and checks that the
world is idle afterwards and that every drop was counted under a known reason.
"""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from netstack import Stack
from netstack.core.drop_reason import DROP_REASONS
from netstack.errors import NetstackError
from netstack.packet.arp import build_arp
from netstack.packet.ethernet import build_ethernet
from netstack.packet.icmp import build_icmp_echo
from netstack.packet.icmpv6 import build_icmpv6
from netstack.packet.ipv4 import build_ipv4
from netstack.packet.ipv6 import build_ipv6, ext_fragment, ext_hopopts
from netstack.packet.tcp import build_tcp
from netstack.packet.udp import build_udp

SETUP = """
ip netns add h1
ip netns add r
ip -n h1 link add eth0 address 02:00:00:00:01:01 type veth peer name r-h1 netns r address 02:00:00:00:01:fe
ip -n r link add d0 address 02:00:00:00:0d:00 type dummy
ip netns exec r sysctl -q -w net.ipv4.ip_forward=1
ip netns exec r sysctl -q -w net.ipv6.conf.all.forwarding=1
ip -n r addr add 10.0.1.254/24 dev r-h1
ip -n r addr add 2001:db8:1::fe/64 dev r-h1 nodad
ip -n r addr add 10.9.0.1/24 dev d0
ip -n r link set lo up
ip -n r link set d0 up
ip -n r link set r-h1 up
ip -n h1 link set eth0 up
"""
R_MAC = bytes.fromhex("0200000001fe")
H_MAC = bytes.fromhex("020000000101")
H4, R4, FAR4 = bytes([10, 0, 1, 1]), bytes([10, 0, 1, 254]), bytes([10, 9, 0, 7])
H6 = bytes.fromhex("20010db8000100000000000000000001")
R6 = bytes.fromhex("20010db80001000000000000000000fe")


def seeds() -> list[bytes]:
    """Valid frames of every protocol the stack parses: the mutation corpus."""
    udp = build_udp(1000, 53, b"q" * 20, src=H4, dst=FAR4)
    tcp = build_tcp(1000, 80, 1, 0, flags=0x02, src=H4, dst=R4) if True else b""
    frames = [
        build_ethernet(R_MAC, H_MAC, 0x0800, build_ipv4(H4, FAR4, 17, udp, id=1)),
        build_ethernet(R_MAC, H_MAC, 0x0800, build_ipv4(H4, R4, 1, build_icmp_echo(1, 1, b"x" * 8))),
        build_ethernet(R_MAC, H_MAC, 0x0800, build_ipv4(H4, R4, 6, tcp)),
        build_ethernet(R_MAC, H_MAC, 0x0800, build_ipv4(H4, FAR4, 17, udp[:16], id=2, mf=True)),
        build_ethernet(R_MAC, H_MAC, 0x0800, build_ipv4(H4, R4, 17, udp, ttl=1, options=b"\x01\x01\x01\x01")),
        build_ethernet(b"\xff" * 6, H_MAC, 0x0806,
                       build_arp(1, H_MAC, H4, b"\x00" * 6, R4)),
        build_ethernet(R_MAC, H_MAC, 0x86DD, build_ipv6(H6, R6, 58, build_icmpv6(128, 0, b"\x00\x01\x00\x01abcd", H6, R6))),
        build_ethernet(R_MAC, H_MAC, 0x86DD, build_ipv6(H6, R6, 17, build_udp(1, 2, b"zz", src=H6, dst=R6),
                                                        ext_headers=[ext_hopopts(), ext_fragment(0, True, 7)])),
        build_ethernet(R_MAC, H_MAC, 0x8100, b"\x00\x05\x08\x00" + build_ipv4(H4, R4, 17, udp)),
    ]
    return frames


SEEDS = seeds()


def mutate(rng: random.Random, frame: bytes) -> bytes:
    """Bit flips, byte sets, truncation, extension — the usual mutational fuzzer moves."""
    b = bytearray(frame)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(5)
        if op == 0 and b:
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[rng.randrange(len(b))] = rng.choice((0, 0xFF, rng.randrange(256)))
        elif op == 2 and len(b) > 15:
            del b[rng.randrange(14, len(b)):]
        elif op == 3:
            b += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        elif op == 4 and len(b) > 20:
            i = rng.randrange(14, len(b) - 2)
            b[i:i + 2] = rng.randrange(65536).to_bytes(2, "big")
    return bytes(b[:1514])   # what packet_snd accepts on a 1500-MTU veth


def _world() -> Stack:
    st = Stack()
    st.run_script(SETUP, name="fuzz-setup")
    return st


def _check_idle_and_counted(st: Stack) -> None:
    w = st.world
    assert not w.backlog, "backlog not drained"
    for ns in ("", "h1", "r"):
        for reason in w.netns(ns).drops.as_dict():
            assert reason in DROP_REASONS


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.integers(1, 8))
def test_mutated_frames_into_veth(seed: int, n: int) -> None:
    rng = random.Random(seed)
    s = _world()
    frames = [mutate(rng, rng.choice(SEEDS)) for _ in range(n)]
    s.inject("h1", "eth0", frames)
    s.advance(65)          # past neighbour retries and both reassembly timeouts
    _check_idle_and_counted(s)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=14, max_size=200), min_size=1, max_size=8))
def test_random_bytes_into_every_device(frames: list[bytes]) -> None:
    s = _world()
    for ns, dev in (("h1", "eth0"), ("r", "lo"), ("r", "d0"), ("r", "r-h1")):
        s.inject(ns, dev, frames)
    s.advance(65)
    _check_idle_and_counted(s)


def test_frames_packet_snd_refuses_never_reach_a_device() -> None:
    """Shorter than the Ethernet header or longer than the MTU allows: the sender gets
    the errno (EINVAL / EMSGSIZE), no device counter moves (af_packet.c packet_snd)."""
    s = _world()
    dev = s.world.netns("h1").get("eth0")
    for bad in (b"", b"\x01" * 13, bytes(14 + 1500 + 1), bytes(14 + 1500 + 4)):
        with pytest.raises(NetstackError):
            s.inject("h1", "eth0", [bad])
    assert dev.stats.tx_packets == 0
    vlan = R_MAC + H_MAC + b"\x81\x00" + bytes(1500 + 4 - 2)   # 1518 bytes, a tagged frame
    s.inject("h1", "eth0", [vlan])
    assert dev.stats.tx_packets == 1


def test_malformed_frames_are_counted_drops() -> None:
    """Each classic malformation is one drop, under the kernel's reason, in the router."""
    s = _world()
    r = s.world.netns("r")
    good = SEEDS[0]
    eth, ip = good[:14], bytearray(good[14:])
    # ip_rcv_core's order: header pull (IP_INHDR), version/ihl (IP_INHDR), checksum
    # (IP_CSUM), tot_len beyond the data (PKT_TOO_SMALL).
    cases = [
        ("IP_CSUM", eth + bytes(ip[:10]) + bytes([ip[10] ^ 0xFF, ip[11]]) + bytes(ip[12:])),
        ("IP_INHDR", eth + bytes([0x65]) + bytes(ip[1:])),          # version 6 in an IPv4 frame
        ("IP_INHDR", eth + bytes(ip[:12])),                         # shorter than struct iphdr
        ("PKT_TOO_SMALL", eth + bytes(ip[:-5])),                    # tot_len beyond the data
    ]
    for reason, frame in cases:
        before = r.drops[reason]
        s.inject("h1", "eth0", [frame])
        assert r.drops[reason] == before + 1, reason
