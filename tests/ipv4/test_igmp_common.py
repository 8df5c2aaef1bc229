"""Shared helpers for the IGMP tests: a world with the IGMP module, a two-namespace veth
setup, an IGMP frame builder (the same bytes the kernel differential sends)."""
from __future__ import annotations

import io
import struct

from netstack.core.world import SUBSYSTEMS, World
from netstack.cli.scenario import run_script

SETUP = """ip netns add a
ip netns add b
ip -n a link add eth0 type veth peer name eth0 netns b
ip -n a link set eth0 address 02:00:00:00:00:01
ip -n b link set eth0 address 02:00:00:00:00:02
ip -n a link set eth0 up
ip -n b link set eth0 up
ip -n a addr add 10.0.0.1/24 dev eth0
"""


def igmp_world(seed: int = 0) -> World:
    subs = list(SUBSYSTEMS)
    if "netstack.ipv4.igmp" not in subs:
        subs.append("netstack.ipv4.igmp")
    return World(seed=seed, subsystems=subs)


def sh(w: World, text: str) -> str:
    out = io.StringIO()
    run_script(w, text, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return (~s) & 0xFFFF


def igmp_frame(igmp: bytes, dst: bytes = bytes((224, 0, 0, 1)),
               src: bytes = bytes((10, 0, 0, 2)), fix_csum: bool = True) -> bytes:
    """An IGMP message in an IPv4 header with Router Alert from 02:00:00:00:00:02."""
    if fix_csum:
        c = csum(igmp[:2] + b"\0\0" + igmp[4:])
        igmp = igmp[:2] + struct.pack("!H", c) + igmp[4:]
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x46, 0xC0, 24 + len(igmp), 0, 0x4000, 1, 2, 0,
                               src, dst) + b"\x94\x04\0\0")
    ip[10:12] = struct.pack("!H", csum(bytes(ip)))
    mac = b"\x01\x00\x5e" + bytes((dst[1] & 0x7F, dst[2], dst[3]))
    return mac + b"\x02\0\0\0\0\x02\x08\x00" + bytes(ip) + igmp


V3_GENERAL_QUERY = bytes((0x11, 10, 0, 0, 0, 0, 0, 0, 2, 125, 0, 0))
V2_GENERAL_QUERY = bytes((0x11, 10, 0, 0, 0, 0, 0, 0))
V1_QUERY = bytes((0x11, 0, 0, 0, 0, 0, 0, 0))


def is_igmp(frame: bytes) -> bool:
    return frame[12:14] == b"\x08\x00" and frame[23] == 2
