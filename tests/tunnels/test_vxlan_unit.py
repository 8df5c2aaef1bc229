"""VXLAN on netstack alone: FDB semantics (``bridge fdb`` requests through ndo_fdb_*),
learning and ageing, the receive drop reasons, GBP, RCO ``nopartial``, and the outer
source port as a function of the inner flow (symmetric, payload-independent).
"""
from __future__ import annotations

import errno
import struct

import dpkt
import pytest
from hypothesis import given, settings, strategies as st

from netstack.core.rtnl_fdb import (NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE,
                                    NUD_PERMANENT, FdbRequest)
from netstack.errors import KernelError
from tunnels.helpers import Topo, mac, outer4, udp_hdr, udp_ip

VX = """\
ip -n a link add vx0 address 02:00:00:00:0a:01 type vxlan id 42 remote 10.1.0.2 local 10.1.0.1 dev va dstport 4789 {opts}
ip -n b link add vx0 address 02:00:00:00:0b:01 type vxlan id 42 remote 10.1.0.1 local 10.1.0.2 dev vb dstport 4789 {opts}
ip -n a link set vx0 up
ip -n b link set vx0 up
"""
PEER = "02:00:00:00:0c:01"
INNER = udp_ip("192.168.0.1", "192.168.0.2", 1000, 2000, b"inner", ttl=9)


def inner_frame(src: str = PEER, dst: str = "02:00:00:00:0b:01", ip: bytes = INNER) -> bytes:
    return mac(dst) + mac(src) + b"\x08\x00" + ip


def vxlan_in(payload: bytes, flags: int = 0x08000000, vni: int = 42, low: int = 0,
             src: str = "10.1.0.1", csum: bool = False) -> bytes:
    body = struct.pack("!II", flags, (vni << 8) | low) + payload
    u = bytearray(udp_hdr(50000, 4789, body))
    f = bytearray(outer4(17, bytes(u), src=src, df=False))
    f[24:26] = struct.pack("!H", dpkt.in_cksum(bytes(f[14:34])))
    if csum:
        ip = f[14:34]
        ph = ip[12:20] + struct.pack("!BBH", 0, 17, len(u))
        f[40:42] = struct.pack("!H", dpkt.in_cksum(bytes(ph) + bytes(u)) or 0xFFFF)
    return bytes(f)


def req(mac_s: str, dst: str | None = "10.1.0.7", nlflags: int = NLM_F_CREATE | NLM_F_EXCL,
        state: int = NUD_PERMANENT, **kw: object) -> FdbRequest:
    return FdbRequest(lladdr=mac(mac_s), dev="vx0", flags=0x02, state=state, nlflags=nlflags,
                      dst=bytes(int(x) for x in dst.split(".")) if dst else None, **kw)


# ------------------------------------------------------------------------ FDB
def test_fdb_add_append_replace_del() -> None:
    t = Topo(VX.format(opts=""))
    vx = t.dev("a", "vx0")
    vx.ndo_fdb_add(req("02:00:00:00:00:05", port=9999, vni=77))
    with pytest.raises(KernelError) as e:
        vx.ndo_fdb_add(req("02:00:00:00:00:05"))
    assert e.value.errno == errno.EEXIST
    vx.ndo_fdb_add(req("00:00:00:00:00:00", "10.1.0.3", NLM_F_CREATE | NLM_F_APPEND))
    with pytest.raises(KernelError) as e:
        vx.ndo_fdb_add(req("00:00:00:00:00:00", "10.1.0.4", NLM_F_CREATE | NLM_F_REPLACE))
    assert e.value.errno == errno.EOPNOTSUPP
    vx.ndo_fdb_add(req("02:00:00:00:00:05", "10.1.0.8", NLM_F_CREATE | NLM_F_REPLACE))
    dump = [{k: v for k, v in d.items() if k != "ifname"} for d in vx.ndo_fdb_dump()]
    # newest first; remotes of one entry in insertion order (as measured on 6.18)
    assert dump == [
        {"mac": "02:00:00:00:00:05", "dst": "10.1.0.8", "flags": ["self"],
         "state": "permanent"},
        {"mac": "00:00:00:00:00:00", "dst": "10.1.0.2", "viaIf": "va", "flags": ["self"],
         "state": "permanent"},
        {"mac": "00:00:00:00:00:00", "dst": "10.1.0.3", "flags": ["self"],
         "state": "permanent"},
    ]
    vx.ndo_fdb_del(req("00:00:00:00:00:00", "10.1.0.3", 0))
    assert len(vx.ndo_fdb_dump()) == 2
    vx.ndo_fdb_del(req("02:00:00:00:00:05", None, 0))
    with pytest.raises(KernelError) as e:
        vx.ndo_fdb_del(req("02:00:00:00:00:05", None, 0))
    assert e.value.errno == errno.ENOENT
    with pytest.raises(KernelError) as e:
        vx.ndo_fdb_add(req("02:00:00:00:00:06", state=0))
    assert e.value.errno == errno.EINVAL


def test_head_end_replication_copies_to_every_remote() -> None:
    t = Topo(VX.format(opts=""))
    vx = t.dev("a", "vx0")
    vx.ndo_fdb_add(req("00:00:00:00:00:00", "10.1.0.2", NLM_F_CREATE | NLM_F_APPEND,
                       port=4790))
    t.send_l2("a", "vx0", inner_frame(dst="ff:ff:ff:ff:ff:ff"))
    # the first remote is sent last (vxlan_xmit keeps the original skb for it)
    assert [struct.unpack("!H", f[36:38])[0] for f in t.wire] == [4790, 4789]


def test_learning_migration_static_entry_and_ageing() -> None:
    t = Topo(VX.format(opts=""))
    vx = t.dev("b", "vx0")
    got = t.capture("b", "vx0")
    t.inject(vxlan_in(inner_frame()))
    assert len(got) == 1
    learned = [d for d in vx.ndo_fdb_dump() if d["mac"] == PEER]
    assert learned == [{"mac": PEER, "ifname": "vx0", "dst": "10.1.0.1", "flags": ["self"],
                        "state": ""}]
    # a second source for the same MAC migrates a dynamic entry
    t.inject(vxlan_in(inner_frame(), src="10.1.0.9"))
    assert [d["dst"] for d in vx.ndo_fdb_dump() if d["mac"] == PEER] == ["10.1.0.9"]
    # a static entry elsewhere makes the frame a drop
    vx.ndo_fdb_add(req("02:00:00:00:0c:02", "10.1.0.50", state=NUD_PERMANENT))
    t.inject(vxlan_in(inner_frame(src="02:00:00:00:0c:02")))
    assert len(got) == 2
    assert t.drops("b").get("VXLAN_ENTRY_EXISTS") == 1
    # dynamic entries age out after 300 s (checked every 10 s)
    t.st.advance(311)
    assert [d["mac"] for d in vx.ndo_fdb_dump()] == ["02:00:00:00:0c:02", "00:00:00:00:00:00"]


def test_nolearning_does_not_learn() -> None:
    t = Topo(VX.format(opts="nolearning"))
    t.inject(vxlan_in(inner_frame()))
    assert [d["mac"] for d in t.dev("b", "vx0").ndo_fdb_dump()] == ["00:00:00:00:00:00"]


# ---------------------------------------------------------------- drop reasons
@pytest.mark.parametrize("frame,reason", [
    (vxlan_in(inner_frame(), flags=0), "VXLAN_INVALID_HDR"),
    (vxlan_in(inner_frame(), flags=0x08000001), "VXLAN_INVALID_HDR"),
    (vxlan_in(inner_frame(), low=0x81), "VXLAN_INVALID_HDR"),
    (vxlan_in(inner_frame(), vni=43), "VXLAN_VNI_NOT_FOUND"),
    (vxlan_in(inner_frame(src="02:00:00:00:0b:01")), "LOCAL_MAC"),
    (vxlan_in(inner_frame(src="01:00:5e:00:00:01")), "MAC_INVALID_SOURCE"),
    (vxlan_in(b"")[:14 + 20 + 8 + 4], "PKT_TOO_SMALL"),
])
def test_receive_drop_reasons(frame: bytes, reason: str) -> None:
    t = Topo(VX.format(opts=""))
    got = t.capture("b", "vx0")
    t.inject(frame)
    assert got == []
    assert t.drops("b").get(reason) == 1, t.drops("b")


def test_bad_outer_udp_checksum_is_udp_csum_drop() -> None:
    t = Topo(VX.format(opts=""))
    f = bytearray(vxlan_in(inner_frame(), csum=True))
    f[-1] ^= 0xFF
    t.inject(bytes(f))
    assert t.drops("b").get("UDP_CSUM") == 1
    assert t.st.world.netns("b").ipv4.mib["UdpInCsumErrors"] == 1


def test_ecn_ce_over_not_ect_is_dropped() -> None:
    t = Topo(VX.format(opts=""))
    f = bytearray(vxlan_in(inner_frame()))
    f[15] = 0x03  # outer CE, inner not-ECT
    f[24:26] = b"\0\0"
    f[24:26] = struct.pack("!H", dpkt.in_cksum(bytes(f[14:34])))
    t.inject(bytes(f))
    assert t.drops("b").get("IP_TUNNEL_ECN") == 1


# ------------------------------------------------------------------------ GBP
def test_gbp_tx_from_mark_and_rx_to_mark() -> None:
    t = Topo(VX.format(opts="gbp"))
    pkt = t.st.world.new_packet(inner_frame(dst="02:00:00:00:0b:01"))
    pkt.mark = 0x400000 | 0x1234
    from netstack.core.dev import dev_queue_xmit
    dev_queue_xmit(pkt, t.dev("a", "vx0"))
    t.st.world.run_until_idle()
    assert t.wire[0][42:46] == struct.pack("!I", 0x88000000 | 0x400000 | 0x1234)
    marks: list[int] = []
    b = t.st.world.netns("b")
    b.add_rx_tap(t.dev("b", "vx0"), lambda p: marks.append(p.mark))
    t.inject(vxlan_in(inner_frame(), flags=0x88000000 | 0x0042))
    assert marks == [0x42]


# ------------------------------------------------------------------------ RCO
def _pseudo(ip: bytes) -> int:
    ulen = len(ip) - 20
    s = sum(struct.unpack("!6H", ip[12:20] + struct.pack("!BBH", 0, 17, ulen)))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def test_rco_nopartial_restore_equals_full_recompute() -> None:
    t = Topo(VX.format(opts="remcsumrx"))
    t.dev("b", "vx0").cfg.remcsum_nopartial = True
    got = t.capture("b", "vx0")
    raw = bytearray(INNER)
    raw[26:28] = struct.pack("!H", _pseudo(INNER))
    t.inject(vxlan_in(inner_frame(ip=bytes(raw)), flags=0x08200000, low=0x80 | 17))
    assert got == [inner_frame()]


# ------------------------------------------------------------------ source port
def _sport_of(frame_ip: bytes) -> int:
    t = Topo(VX.format(opts=""))
    t.send_l2("a", "vx0", inner_frame(dst="02:00:00:00:0b:01", ip=frame_ip))
    return struct.unpack("!H", t.wire[0][34:36])[0]


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 65535), st.integers(1, 65535), st.binary(max_size=20),
       st.binary(max_size=20))
def test_source_port_is_symmetric_and_flow_only(sp: int, dp: int, p1: bytes,
                                                p2: bytes) -> None:
    """The same 5-tuple gives the same port whatever the payload, and the reverse
    direction gives the same port too (the flow hash orders addresses and ports)."""
    fwd1 = udp_ip("192.168.0.1", "192.168.0.2", sp, dp, p1)
    fwd2 = udp_ip("192.168.0.1", "192.168.0.2", sp, dp, p2, ident=0x2222)
    rev = udp_ip("192.168.0.2", "192.168.0.1", dp, sp, p1)
    a = _sport_of(fwd1)
    assert a == _sport_of(fwd2) == _sport_of(rev)
    assert 32768 <= a < 60999


def test_learned_entry_in_use_does_not_age_out() -> None:
    """vxlan_snoop refreshes ``updated`` for every frame of a known source (6.16+), so a
    source heard within the ageing time stays; a silent one goes."""
    t = Topo(VX.format(opts="ageing 30"))
    vx = t.dev("b", "vx0")
    t.inject(vxlan_in(inner_frame()))
    t.inject(vxlan_in(inner_frame(src="02:00:00:00:0c:09")))
    for _ in range(4):
        t.st.advance(20)
        t.inject(vxlan_in(inner_frame()))
    assert [d["mac"] for d in vx.ndo_fdb_dump()] == [PEER, "00:00:00:00:00:00"]
