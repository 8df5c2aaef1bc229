"""The UDP-tunnel template GSO fast path (``gso_fast.udp_tunnel_gso_segment_fast``) against
the layered path.

The layered path (``skb_gso_segment`` with ``gso_fast.ENABLED = False``:
inet/ipv6_gso_segment → udp4/6_ufo_fragment → skb_udp_tunnel_segment →
__skb_udp_tunnel_segment → skb_mac_gso_segment → inner inet/ipv6_gso_segment →
tcp4/6_gso_segment → skb_segment) is the reference.  For
VXLAN/Geneve super-packets — outer IPv4 (options allowed) or IPv6, outer UDP checksum on
(SKB_GSO_UDP_TUNNEL_CSUM) or off, tunnel headers of 8 to 40 bytes, inner IPv4 (options
allowed) or IPv6, TCP — the fast path must produce the same segments (every byte of every
buffer, every skb slot, the ``__dict__``) and leave the super-packet in the same state.
Hypothesis draws the device: the features handed to GSO (none, HW_CSUM, HW_CSUM + SG + TSO
without tunnel segmentation), ``hw_enc_features`` (None as the benchmark's device, empty as
tun, veth's set, a NIC's set) and the checksum features of ``dev->features`` that decide
whether the outer checksum is left to the device; and the packet: FIXEDID / FIXEDID_INNER,
ECN, AccECN, DODGY, any flag byte, TCP and IP options, payloads that divide gso_size or
not, seq and both IP IDs near their wraps, non-PARTIAL super-packets, headroom, tailroom,
cold skb fields.  Explicit cases: the benchmark's packets (with an independent RFC 1071
check of every complete checksum), the outer UDP checksum computing to 0 (sent as 0xffff),
a test that fails if the fast path silently falls back (it counts the layered
segmenter's calls), and every fallback condition: the fast path declines without touching
the packet and ``skb_gso_segment`` returns (or raises) what the layered path does."""
from __future__ import annotations

import random
import struct
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core import gso, gso_fast
from netstack.core.gso import (ENCAP_TYPE_IPPROTO, SKB_GSO_DODGY, SKB_GSO_GRE, SKB_GSO_IPXIP4,
                               SKB_GSO_PARTIAL, SKB_GSO_TCP_ACCECN, SKB_GSO_TCP_ECN,
                               SKB_GSO_TCP_FIXEDID, SKB_GSO_TCP_FIXEDID_INNER, SKB_GSO_TCPV4,
                               SKB_GSO_TCPV6, SKB_GSO_UDP, SKB_GSO_UDP_L4, SKB_GSO_UDP_TUNNEL,
                               SKB_GSO_UDP_TUNNEL_CSUM, skb_gso_segment)
from netstack.drivers.veth import VETH_FEATURES
from netstack.ipv4 import udp_offload
from netstack.packet.checksum import pseudo_sum_v4, pseudo_sum_v6
from netstack.packet.skb import CHECKSUM_NONE, CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, UNSET, Packet

from .pktbuild import (IP6_A, IP6_B, IP_A, IP_B, MAC_A, MAC_B, check_l4, eth, gre_gso_packet,
                       pseudo4, pseudo6, rfc1071, tcp, vxlan_gso_packet)
from .test_gso_fast import IDENT, IPOPTS, SEQ, TOPTS, layered, outcome, sizes, state
from .test_gso_fast import assert_same as _assert_same

HW = frozenset({"tx-checksum-ip-generic"})
TUNNEL_TSO = frozenset({"tx-udp_tnl-segmentation", "tx-udp_tnl-csum-segmentation"})
#: features handed to GSO: software, HW_CSUM, IP_CSUM / IPV6_CSUM, a veth/NIC with TSO
#: but tunnel GSO off, veth's whole set (its tunnel TSO is dropped by the test when
#: hw_enc_features has it too: the device would take the packet, see the fallbacks)
FEATURES = [frozenset(), HW, frozenset({"tx-checksum-ipv4"}), frozenset({"tx-checksum-ipv6"}),
            frozenset({"tx-checksum-ip-generic", "tx-scatter-gather", "tx-tcp-segmentation",
                       "tx-tcp6-segmentation", "tx-tcp-ecn-segmentation", "tx-gso-robust",
                       "tx-tcp-mangleid-segmentation", "tx-tcp-accecn-segmentation"}),
            VETH_FEATURES - {"rx-gro"}]
#: ``dev->hw_enc_features``: the benchmark's device (None: SG + GSO_PARTIAL only), tun's
#: (empty), veth's (everything, HW_CSUM included), a NIC's (checksum + tunnel TSO)
NIC_ENC = frozenset({"tx-checksum-ip-generic", "tx-scatter-gather", "tx-tcp-segmentation",
                     "tx-tcp6-segmentation", "tx-udp_tnl-segmentation",
                     "tx-udp_tnl-csum-segmentation"})
HW_ENC = [None, frozenset(), VETH_FEATURES, NIC_ENC]
#: checksum features of ``dev->features`` beyond the ones handed to GSO (they decide
#: whether __skb_udp_tunnel_segment leaves the outer checksum to the device)
DEV_CSUM = [None, "tx-checksum-ip-generic", "tx-checksum-ipv4", "tx-checksum-ipv6"]

IN_SRC = bytes([192, 168, 0, 1])
IN_DST = bytes([192, 168, 0, 2])
IN6_SRC = bytes.fromhex("fd010000000000000000000000000001")
IN6_DST = bytes.fromhex("fd010000000000000000000000000002")
IN_MAC_A = bytes.fromhex("0a0000000001")
IN_MAC_B = bytes.fromhex("0a0000000002")


class Dev:
    """A device as GSO sees it: its features and its ``hw_enc_features``."""

    net = None
    gso_partial_features: frozenset = frozenset()
    ifindex = 3

    def __init__(self, features: frozenset = frozenset(), hw_enc: frozenset | None = None) -> None:
        self.features = set(features)
        self.hw_enc_features = hw_enc


CT = object()
DST = object()
SK = object()


# ------------------------------------------------------------------ builders
def ipv4_hdr(plen: int, proto: int, src: bytes, dst: bytes, *, ident: int, df: bool = True,
             ttl: int = 64, tos: int = 0, opts: bytes = b"") -> bytes:
    ihl = 20 + len(opts)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl // 4, tos, ihl + plen, ident,
                    0x4000 if df else 0, ttl, proto, 0, src, dst) + opts
    return h[:10] + struct.pack("!H", rfc1071(h)) + h[12:]


def ipv6_hdr(plen: int, nxt: int, src: bytes, dst: bytes, *, tclass: int = 0, flow: int = 0,
             hlim: int = 64) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000 | tclass << 20 | flow, plen, nxt, hlim, src, dst)


def tunnel_header(length: int, vni: int) -> bytes:
    """VXLAN (8 bytes) or Geneve with ``length - 8`` bytes of options."""
    if length == 8:
        return struct.pack("!II", 0x08000000, vni << 8)
    optlen = (length - 8) // 4
    opts = bytes((i * 37 + vni) & 0xFF for i in range(length - 8))
    return struct.pack("!BBHI", optlen, 0, 0x6558, vni << 8) + opts


def tunnel_frame(payload: bytes, *, ov6: bool = False, iv6: bool = False, outer_csum: bool = True,
                 tnl: int = 8, seq: int = 5000, ack: int = 9, flags: int = 0x18,
                 window: int = 512, topts: bytes = b"", ipopts: bytes = b"",
                 oipopts: bytes = b"", ident: int = 0x100, oident: int = 0x2000,
                 df: bool = True, odf: bool = True, sport: int = 49152, dport: int = 4789,
                 vni: int = 42, rng: random.Random | None = None) -> tuple[bytes, dict[str, int]]:
    """Outer Ethernet + IPv4/IPv6 + UDP + tunnel header + inner Ethernet + IPv4/IPv6 + TCP,
    the inner TCP checksum valid, the outer UDP check the outer pseudo-header sum
    (``udp_set_csum``'s GSO branch) or 0; returns the frame and its header offsets."""
    r = rng or random.Random(0)
    if iv6:
        seg = tcp(4000, 80, seq, ack, flags, payload,
                  pseudo6(IN6_SRC, IN6_DST, 6, 20 + len(topts) + len(payload)), topts, window)
        iip = ipv6_hdr(len(seg), 6, IN6_SRC, IN6_DST, tclass=r.randrange(256),
                       flow=r.randrange(1 << 20), hlim=r.randrange(256))
    else:
        seg = tcp(4000, 80, seq, ack, flags, payload,
                  pseudo4(IN_SRC, IN_DST, 6, 20 + len(topts) + len(payload)), topts, window)
        iip = ipv4_hdr(len(seg), 6, IN_SRC, IN_DST, ident=ident, df=df, ttl=r.randrange(256),
                       tos=r.randrange(256), opts=ipopts)
    inner = eth(IN_MAC_B, IN_MAC_A, 0x86DD if iv6 else 0x0800) + iip + seg
    th = tunnel_header(tnl, vni)
    ulen = 8 + len(th) + len(inner)
    if ov6:
        oip = ipv6_hdr(ulen, 17, IP6_A, IP6_B, tclass=r.randrange(256), flow=r.randrange(1 << 20),
                       hlim=r.randrange(1, 256))
        ps = pseudo_sum_v6(IP6_A, IP6_B, ulen, 17)
    else:
        oip = ipv4_hdr(ulen, 17, IP_A, IP_B, ident=oident, df=odf, ttl=r.randrange(1, 256),
                       tos=r.randrange(256), opts=oipopts)
        ps = pseudo_sum_v4(IP_A, IP_B, ulen, 17)
    uh = struct.pack("!HHHH", sport, dport, ulen, ps if outer_csum else 0)
    frame = eth(MAC_B, MAC_A, 0x86DD if ov6 else 0x0800) + oip + uh + th + inner
    u = 14 + len(oip)
    im = u + 8 + len(th)
    offs = {"nh": 14, "uh": u, "im": im, "inh": im + 14, "ith": im + 14 + len(iip),
            "tcplen": len(seg)}
    return frame, offs


def tunnel_superpacket(frame: bytes, offs: dict[str, int], gso_size: int, gso_type: int, dev: Dev,
                       *, headroom: int = 128, tailroom: int = 0,
                       ip_summed: int = CHECKSUM_PARTIAL, set_nh: bool = True,
                       cold: dict | None = None) -> Packet:
    """A tunnel super-packet as a vxlan/geneve device hands it to dev_queue_xmit: data at
    the outer MAC header, encapsulation and inner_* set, inner_protocol ETH_P_TEB; when
    PARTIAL, the inner pseudo sum in the TCP check field and csum_start there."""
    p = Packet(frame, headroom=headroom, tailroom=tailroom)
    d = p.data
    b = p.buf
    p.mac_header = d
    if set_nh:
        p.network_header = d + offs["nh"]
    p.transport_header = d + offs["uh"]
    p.inner_mac_header = d + offs["im"]
    p.inner_network_header = d + offs["inh"]
    p.inner_transport_header = d + offs["ith"]
    p.inner_protocol = 0x6558
    p.encapsulation = True
    p.protocol = struct.unpack("!H", frame[12:14])[0]
    ith = d + offs["ith"]
    inh = d + offs["inh"]
    if ip_summed == CHECKSUM_PARTIAL:
        if b[inh] >> 4 == 6:
            ps = pseudo_sum_v6(bytes(b[inh + 8:inh + 24]), bytes(b[inh + 24:inh + 40]),
                               offs["tcplen"], 6)
        else:
            ps = pseudo_sum_v4(bytes(b[inh + 12:inh + 16]), bytes(b[inh + 16:inh + 20]),
                               offs["tcplen"], 6)
        b[ith + 16:ith + 18] = ps.to_bytes(2, "big")
        p.csum_start = ith
        p.csum_offset = 16
    p.ip_summed = ip_summed
    p.gso_size = gso_size
    p.gso_type = gso_type
    p.gso_segs = 0
    p.dev = dev
    for k, v in (cold or {}).items():
        setattr(p, k, v)
    return p


def _gtype(iv6: bool, outer_csum: bool) -> int:
    return ((SKB_GSO_TCPV6 if iv6 else SKB_GSO_TCPV4)
            | (SKB_GSO_UDP_TUNNEL_CSUM if outer_csum else SKB_GSO_UDP_TUNNEL))


# ------------------------------------------------------------------ comparison
def fast(make: Callable[[], Packet], features: frozenset) -> tuple[list[dict], dict]:
    """The tunnel fast path called directly (it must take the packet)."""
    p = make()
    segs = gso_fast.udp_tunnel_gso_segment_fast(p, features)
    assert segs is not None, "tunnel fast path not taken"
    assert len({id(s.buf) for s in segs} | {id(p.buf)}) == len(segs) + 1  # own buffers
    return [state(s) for s in segs], state(p)


def assert_same(make: Callable[[], Packet], features: frozenset) -> list[dict]:
    """The tunnel fast path gives the layered path's segments (test_gso_fast's check)."""
    return _assert_same(make, features, fast)


def assert_fallback(make: Callable[[], Packet], features: frozenset) -> Any:
    """Both fast paths decline without touching the packet, and skb_gso_segment (fast
    paths on) returns or raises what the layered path does."""
    p = make()
    before = state(p)
    assert gso_fast.udp_tunnel_gso_segment_fast(p, features) is None
    assert gso_fast.tcp_gso_segment_fast(p, features) is None
    assert state(p) == before
    want = layered(make, features)
    p2 = make()
    got = outcome(lambda: skb_gso_segment(p2, features)), state(p2)
    assert got == want
    return want[0]


# ------------------------------------------------------------------ property
EXTRA = st.sets(st.sampled_from([SKB_GSO_TCP_FIXEDID, SKB_GSO_TCP_FIXEDID_INNER, SKB_GSO_TCP_ECN,
                                 SKB_GSO_TCP_ACCECN, SKB_GSO_DODGY]))


@settings(max_examples=300, deadline=None)
@given(ov6=st.booleans(), iv6=st.booleans(), outer_csum=st.booleans(),
       tnl=st.sampled_from([8, 8, 12, 16, 40]), size=sizes(), flags=st.integers(0, 255),
       topts=TOPTS, ipopts=IPOPTS, oipopts=st.sampled_from([b"", b"\x01\x01\x01\x00"]),
       seq=SEQ, ack=st.integers(0, 2**32 - 1), window=st.integers(0, 0xFFFF), ident=IDENT,
       oident=IDENT, df=st.booleans(), extra=EXTRA, features=st.sampled_from(FEATURES),
       hw_enc=st.sampled_from(HW_ENC), dev_csum=st.sampled_from(DEV_CSUM),
       ip_summed=st.sampled_from([CHECKSUM_PARTIAL, CHECKSUM_PARTIAL, CHECKSUM_NONE,
                                  CHECKSUM_UNNECESSARY]),
       headroom=st.integers(0, 300), tailroom=st.integers(0, 64), set_nh=st.booleans(),
       cold=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_tunnel_fast_path_equals_layered_path(ov6, iv6, outer_csum, tnl, size, flags, topts,
                                              ipopts, oipopts, seq, ack, window, ident, oident,
                                              df, extra, features, hw_enc, dev_csum, ip_summed,
                                              headroom, tailroom, set_nh, cold, seed) -> None:
    n, mss = size
    rng = random.Random(seed)
    fr, offs = tunnel_frame(rng.randbytes(n), ov6=ov6, iv6=iv6, outer_csum=outer_csum, tnl=tnl,
                            seq=seq, ack=ack, flags=flags, window=window, topts=topts,
                            ipopts=ipopts, oipopts=oipopts, ident=ident, oident=oident, df=df,
                            odf=rng.random() < 0.5, sport=rng.randrange(1 << 16),
                            dport=rng.choice([4789, 6081]), vni=rng.randrange(1 << 24), rng=rng)
    gso_type = _gtype(iv6, outer_csum)
    for b in extra:
        gso_type |= b
    if hw_enc and hw_enc & TUNNEL_TSO:
        features = features - TUNNEL_TSO     # ethtool -K … tx-udp_tnl-segmentation off
    dev = Dev(features | ({dev_csum} if dev_csum else set()), hw_enc)
    fields: dict[str, Any] = {}
    if cold:
        fields = {"mark": rng.randrange(1 << 32), "priority": 7, "skb_iif": 9, "tstamp": 12345,
                  "ct": CT, "dst": DST, "id": 77, "pkt_type": 4, "sk": SK, "hash": 0xABCD,
                  "l4_hash": True, "vlan_proto": 0x8100, "vlan_tci": 5, "queue_mapping": 1,
                  "csum_level": 1, "inner_protocol_type": 0, "remcsum_offload": True,
                  "encap_hdr_csum": not outer_csum}

    def make() -> Packet:
        return tunnel_superpacket(fr, offs, mss, gso_type, dev, headroom=headroom,
                                  tailroom=tailroom, ip_summed=ip_summed, set_nh=set_nh,
                                  cold=fields)

    segs = assert_same(make, features)
    assert len(segs) == -(-n // mss)


# ------------------------------------------------------------------ explicit cases
PAYLOAD = bytes((i * 7 + 1) & 0xFF for i in range(65536))


@pytest.mark.parametrize("ov6,iv6", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("outer_csum", [False, True])
@pytest.mark.parametrize("features,hw_enc", [(frozenset(), None), (HW, None), (HW, VETH_FEATURES)])
@pytest.mark.parametrize("n,mss", [(65336, 1448), (1448 * 4, 1448), (1449, 1448), (3000, 1)])
def test_bench_sizes(ov6, iv6, outer_csum, features, hw_enc, n, mss) -> None:
    """The benchmark's 64 KB case and the edges; every segment, once the device has filled
    the one PARTIAL checksum it may carry, has valid inner TCP, outer UDP (or 0 without
    _CSUM) and IPv4 header checksums by an independent RFC 1071 loop."""
    if mss == 1:
        n = 600
    dev = Dev(features, hw_enc)
    fr, offs = tunnel_frame(PAYLOAD[:n], ov6=ov6, iv6=iv6, outer_csum=outer_csum, flags=0x99)
    segs = assert_same(lambda: tunnel_superpacket(fr, offs, mss, _gtype(iv6, outer_csum), dev),
                       features)
    for s in segs:
        b = bytearray(s["buf"][1][s["data"]:s["tail"]])
        d = s["__dict__"]
        if s["ip_summed"] == CHECKSUM_PARTIAL:   # the device: fold from csum_start
            cs = d["csum_start"] - s["data"]
            co = cs + d["csum_offset"]
            b[co:co + 2] = rfc1071(bytes(b[cs:])).to_bytes(2, "big")
        assert check_l4(bytes(b[offs["im"]:]), 14)
        if outer_csum or not ov6:
            assert check_l4(bytes(b), 14)
        if outer_csum:
            assert b[offs["uh"] + 6:offs["uh"] + 8] != b"\0\0"


@pytest.mark.parametrize("iv6", [False, True])
def test_outer_udp_checksum_zero_sent_as_ffff(iv6) -> None:
    """An outer UDP checksum whose sum is ≡ 0 mod 0xffff for the full segments, then for
    the last one: sent as 0xffff (CSUM_MANGLED_0).  The VNI bytes that get it there are
    computed from the layered result (they are in every segment's sum once)."""
    mss = 1000
    n = mss * 5 + 300
    dev = Dev()
    base_fr, offs = tunnel_frame(PAYLOAD[:n], iv6=iv6)
    gt = _gtype(iv6, True)
    u = offs["uh"]
    for seg_i in (0, 5):
        segs = layered(lambda: tunnel_superpacket(base_fr, offs, mss, gt, dev), frozenset())[0]
        s = segs[seg_i]
        b = s["buf"][1]
        c = int.from_bytes(b[s["transport_header"] + 6:s["transport_header"] + 8], "big")
        r = (0xFFFF - c) % 0xFFFF                 # the segment's sum mod 0xffff
        fr = bytearray(base_fr)
        w = int.from_bytes(fr[u + 12:u + 14], "big")   # VNI high word (aligned)
        fr[u + 12:u + 14] = ((w - r) % 0xFFFF).to_bytes(2, "big")
        fr = bytes(fr)
        got = assert_same(lambda: tunnel_superpacket(fr, offs, mss, gt, dev), frozenset())
        g = got[seg_i]
        assert g["buf"][1][g["transport_header"] + 6:g["transport_header"] + 8] == b"\xff\xff"


@pytest.mark.parametrize("fixed", [0, SKB_GSO_TCP_FIXEDID, SKB_GSO_TCP_FIXEDID_INNER,
                                   SKB_GSO_TCP_FIXEDID | SKB_GSO_TCP_FIXEDID_INNER])
@pytest.mark.parametrize("ident,oident", [(0xFFFE, 0xFFFF), (0xFFFF, 0), (0xFFF0, 0xFFFB)])
def test_ip_id_wraps_and_fixedid(fixed, ident, oident) -> None:
    """Both IPv4 IDs near their wrap, with and without each FIXEDID flag (the layered path
    reads SKB_GSO_TCP_FIXEDID for both headers: __skb_udp_tunnel_segment resets
    encap_level, so the inner inet_gso_segment is not ``encap``)."""
    dev = Dev(HW)
    fr, offs = tunnel_frame(PAYLOAD[:9000], ident=ident, oident=oident)
    assert_same(lambda: tunnel_superpacket(fr, offs, 1000, _gtype(False, True) | fixed, dev), HW)


def test_skb_gso_segment_takes_the_tunnel_fast_path(monkeypatch) -> None:
    """Engaged: for the benchmark's VXLAN packets (vxlan_hwcsum / vxlan_swcsum: outer UDP
    checksum, a device without hw_enc_features, features HW_CSUM or none) skb_gso_segment
    returns the tunnel fast path's segments and never calls the layered segmenters
    (skb_mac_gso_segment from skb_gso_segment, skb_udp_tunnel_segment from
    udp4_ufo_fragment); switched off, it calls them."""
    calls = {"mac": 0, "tunnel": 0, "fast": []}
    real_mac = gso.skb_mac_gso_segment
    real_tnl = udp_offload.skb_udp_tunnel_segment
    real_fast = gso_fast.udp_tunnel_gso_segment_fast

    def mac_spy(*a: Any) -> Any:
        calls["mac"] += 1
        return real_mac(*a)

    def tnl_spy(*a: Any) -> Any:
        calls["tunnel"] += 1
        return real_tnl(*a)

    def fast_spy(p: Packet, f: frozenset, burst: bool = False) -> Any:
        r = real_fast(p, f, burst)
        calls["fast"].append(r is not None)
        return r

    monkeypatch.setattr(gso, "skb_mac_gso_segment", mac_spy)
    monkeypatch.setattr(udp_offload, "skb_udp_tunnel_segment", tnl_spy)
    monkeypatch.setattr(gso_fast, "udp_tunnel_gso_segment_fast", fast_spy)
    for feats in (HW, frozenset()):
        dev = Dev(feats)
        p = vxlan_gso_packet(PAYLOAD[:65336], 1448, True)
        p.dev = dev
        segs = skb_gso_segment(p, feats)
        assert len(segs) == 46
        assert calls["mac"] == 0 and calls["tunnel"] == 0
    assert calls["fast"] == [True, True]
    monkeypatch.setattr(gso_fast, "ENABLED", False)
    p = vxlan_gso_packet(PAYLOAD[:65336], 1448, True)
    p.dev = Dev(HW)
    skb_gso_segment(p, HW)
    assert calls["mac"] == 1 and calls["tunnel"] == 1 and calls["fast"] == [True, True]


def test_row_struct_cache_is_bounded() -> None:
    dev = Dev()
    fr, offs = tunnel_frame(PAYLOAD[:20000])
    for mss in range(200, 200 + 2 * gso_fast._ROW_CACHE_MAX):
        assert gso_fast.udp_tunnel_gso_segment_fast(
            tunnel_superpacket(fr, offs, mss, _gtype(False, True), dev), frozenset())
    assert len(gso_fast._row_cache) <= gso_fast._ROW_CACHE_MAX


# ------------------------------------------------------------------ fallbacks
DEV = Dev()


def _vx(*, outer_csum: bool = True, ov6: bool = False, iv6: bool = False, tnl: int = 8,
        dev: Dev = DEV, n: int = 5120, mss: int = 1000, **kw: Any) -> Callable[[], Packet]:
    fr, offs = tunnel_frame(PAYLOAD[:n], ov6=ov6, iv6=iv6, outer_csum=outer_csum, tnl=tnl)
    return lambda: tunnel_superpacket(fr, offs, mss, _gtype(iv6, outer_csum), dev, **kw)


def _mutated(make: Callable[[], Packet], fn: Callable[[Packet], None]) -> Callable[[], Packet]:
    def m() -> Packet:
        p = make()
        fn(p)
        return p
    return m


def _set(**kw: Any) -> Callable[[Packet], None]:
    def f(p: Packet) -> None:
        for k, v in kw.items():
            setattr(p, k, v)
    return f


def _or_type(bits: int) -> Callable[[Packet], None]:
    def f(p: Packet) -> None:
        p.gso_type |= bits
    return f


def _poke(off: int, val: bytes) -> Callable[[Packet], None]:
    def f(p: Packet) -> None:
        p.buf[p.data + off:p.data + off + len(val)] = val
    return f


def test_fallback_remcsum() -> None:
    """TUNNEL_REMCSUM: the inner checksum is left to the receiver."""
    for outer in (False, True):
        r = assert_fallback(lambda: vxlan_gso_packet(bytes(6000), 1400, outer, remcsum=True), HW)
        assert isinstance(r, list) and len(r) == 5


def test_fallback_gso_partial() -> None:
    """GSO_PARTIAL: ``tx-gso-partial`` in the features (here with tunnel TSO in
    hw_enc_features, so the layered path keeps it) and the type bit."""
    dev = Dev(HW | {"tx-scatter-gather", "tx-gso-partial", "tx-tcp-segmentation",
                    "tx-udp_tnl-csum-segmentation"}, NIC_ENC)
    feats = frozenset(dev.features)
    assert_fallback(_vx(dev=dev), feats)
    assert_fallback(_vx(), HW | {"tx-gso-partial", "tx-scatter-gather"})
    assert_fallback(_mutated(_vx(), _or_type(SKB_GSO_PARTIAL)), HW)


def test_fallback_other_types() -> None:
    """GRE, IPIP, UDP (UFO), UDP_L4 bits: not this layout."""
    r = assert_fallback(lambda: gre_gso_packet(bytes(6000), 1400, True), frozenset())
    assert isinstance(r, list) and len(r) == 5
    for bits in (SKB_GSO_GRE, SKB_GSO_IPXIP4, SKB_GSO_UDP_L4):
        assert_fallback(_mutated(_vx(), _or_type(bits)), HW)
    assert_fallback(_mutated(_vx(ov6=True), _or_type(SKB_GSO_UDP)), HW)
    assert_fallback(_mutated(_vx(), _set(gso_type=SKB_GSO_UDP_TUNNEL_CSUM)), HW)   # no TCP bit
    assert_fallback(_mutated(_vx(), _set(gso_type=SKB_GSO_TCPV4 | SKB_GSO_TCPV6
                                         | SKB_GSO_UDP_TUNNEL_CSUM)), HW)


def test_fallback_not_ethernet_inner() -> None:
    """FOU/GUE (inner_protocol_type IP protocol), an inner_protocol other than ETH_P_TEB,
    an inner VLAN tag, a non-IP inner EtherType, encapsulation not set."""
    assert_fallback(_mutated(_vx(), _set(inner_protocol_type=ENCAP_TYPE_IPPROTO,
                                         inner_protocol=6)), HW)
    assert_fallback(_mutated(_vx(), _set(inner_protocol=0x0800)), HW)
    # inner VLAN tag in the frame (skb_network_protocol walks it): EtherType 0x8100
    fr, offs = tunnel_frame(PAYLOAD[:5120])
    im = offs["im"]
    tagged = fr[:im + 12] + b"\x81\x00\x00\x05" + fr[im + 12:]
    offs_t = dict(offs, inh=offs["inh"] + 4, ith=offs["ith"] + 4)

    def vlan() -> Packet:
        p = tunnel_superpacket(tagged, offs_t, 1000, _gtype(False, True), DEV)
        p.inner_network_header = p.inner_mac_header + 14
        return p

    assert_fallback(vlan, HW)
    assert_fallback(_mutated(_vx(), _poke(im + 12, b"\x88\x47")), HW)
    assert_fallback(_mutated(_vx(), _set(encapsulation=False)), HW)


def test_fallback_tunnel_header_layout() -> None:
    """An odd tunnel header length (the inner words would not align with the outer
    checksum's), one shorter than a UDP header, inner_mac_header unset, an
    inner_network_header that is not 14 bytes after it."""
    fr, offs = tunnel_frame(PAYLOAD[:5120], tnl=8)
    odd = fr[:offs["im"]] + b"\x00" + fr[offs["im"]:]
    offs_odd = {k: (v + 1 if k in ("im", "inh", "ith") else v) for k, v in offs.items()}

    def mk_odd(outer: bool) -> Callable[[], Packet]:
        def m() -> Packet:
            p = tunnel_superpacket(odd, offs_odd, 1000, _gtype(False, outer), DEV)
            u = p.transport_header
            p.buf[u + 4:u + 6] = (p.tail - u).to_bytes(2, "big")
            return p
        return m

    for outer in (False, True):
        assert_fallback(mk_odd(outer), HW)
    assert_fallback(_mutated(_vx(), lambda p: setattr(p, "inner_mac_header",
                                                     p.transport_header + 6)), HW)
    assert_fallback(_mutated(_vx(), _set(inner_mac_header=UNSET)), HW)
    assert_fallback(_mutated(_vx(), lambda p: setattr(p, "inner_network_header",
                                                     p.inner_network_header + 4)), HW)
    assert_fallback(_mutated(_vx(), _set(inner_network_header=UNSET)), HW)


def test_fallback_device_keeps_tunnel_offloaded() -> None:
    """With tunnel TSO in ``features & hw_enc_features`` the layered path decides: the
    device takes the packet (gso_segs recomputed, DODGY or not: None).  A type it cannot
    take (ECN without the ECN feature) is segmented, and that the fast path does."""
    feats = HW | {"tx-scatter-gather", "tx-tcp-segmentation", "tx-udp_tnl-segmentation",
                  "tx-udp_tnl-csum-segmentation", "tx-gso-robust"}
    dev = Dev(feats, NIC_ENC | {"tx-gso-robust"})
    for outer in (False, True):
        assert assert_fallback(_vx(dev=dev, outer_csum=outer), feats) is None
        assert assert_fallback(_mutated(_vx(dev=dev, outer_csum=outer),
                                        _or_type(SKB_GSO_DODGY)), feats) is None
    # ECN without the ECN feature: the device cannot take it, so it is segmented — by the
    # fast path (inner checksum left to the device: HW_CSUM in hw_enc_features)
    for outer in (False, True):
        segs = assert_same(_mutated(_vx(dev=dev, outer_csum=outer), _or_type(SKB_GSO_TCP_ECN)),
                           feats)
        assert len(segs) == 6 and all(s["__dict__"]["encapsulation"] for s in segs)


def test_fallback_protocol_specific_inner_checksum() -> None:
    """Inner features with IP_CSUM/IPV6_CSUM but not HW_CSUM: skb_segment's
    can_checksum_protocol would read the protocol of the ETH_P_TEB packet from its
    payload (skb_network_protocol at ``data``), so the layered path decides."""
    for f in ("tx-checksum-ipv4", "tx-checksum-ipv6"):
        dev = Dev(frozenset({f}), frozenset({f}))
        assert_fallback(_vx(dev=dev), frozenset({f}))


def test_fallback_device_without_features() -> None:
    """A device object without ``features``: the layered path's error, not ours."""
    class Bare:
        hw_enc_features = None

    assert_fallback(_mutated(_vx(), _set(dev=Bare())), HW)


@pytest.mark.parametrize("cut", [14, 30, 33, 40, 49, 60, 63, 70, 83, 90, 103])
def test_fallback_short_packets(cut) -> None:
    """Truncated anywhere from the outer IPv4 header to the inner TCP header."""
    def mk() -> Packet:
        p = _vx()()
        p.tail = p.data + cut
        return p

    assert_fallback(mk, HW)


def test_fallback_malformed_headers() -> None:
    """Bad outer/inner IHL, bad doff, outer protocol not UDP, inner not TCP, version
    nibbles, outer EtherType not the packet's protocol, the outer network header not at
    14 (a VLAN-like offset), csum_start not the inner TCP header, IPv6 extension headers
    (outer and inner), TCPV6 on an inner IPv4 packet, TCPV4 on an inner IPv6 one."""
    fr, offs = tunnel_frame(PAYLOAD[:5120])
    inh, ith = offs["inh"], offs["ith"]
    assert_fallback(_mutated(_vx(), _poke(14, b"\x44")), HW)
    assert_fallback(_mutated(_vx(), _poke(inh, b"\x44")), HW)
    assert_fallback(_mutated(_vx(), _poke(ith + 12, b"\x40")), HW)
    assert_fallback(_mutated(_vx(), _poke(23, b"\x06")), HW)
    assert_fallback(_mutated(_vx(), _poke(inh + 9, b"\x11")), HW)
    assert_fallback(_mutated(_vx(), _poke(14, b"\x65")), HW)
    assert_fallback(_mutated(_vx(), _poke(inh, b"\x65")), HW)
    assert_fallback(_mutated(_vx(), _poke(12, b"\x86\xdd")), HW)
    assert_fallback(_mutated(_vx(), lambda p: setattr(p, "network_header", p.data + 18)), HW)
    assert_fallback(_mutated(_vx(), lambda p: setattr(p, "csum_start", p.csum_start + 4)), HW)
    assert_fallback(_mutated(_vx(ov6=True), _poke(14 + 6, b"\x00")), HW)   # hop-by-hop
    fr6, offs6 = tunnel_frame(PAYLOAD[:5120], iv6=True)
    assert_fallback(_mutated(_vx(iv6=True), _poke(offs6["inh"] + 6, b"\x00")), HW)
    assert_fallback(_mutated(_vx(), _set(gso_type=SKB_GSO_TCPV6 | SKB_GSO_UDP_TUNNEL_CSUM)), HW)
    assert_fallback(_mutated(_vx(iv6=True), _set(gso_type=SKB_GSO_TCPV4 | SKB_GSO_UDP_TUNNEL)),
                    HW)


def test_fallback_lengths() -> None:
    """Payload not longer than gso_size, gso_size 0, a segment longer than 64 KB."""
    for mss in (5120, 6000):
        assert assert_fallback(_vx(mss=mss), HW) == ("GsoError", 22)
    assert_fallback(_vx(mss=0), HW)
    # a super-packet longer than its IP lengths say (BIG TCP-like) with a segment of more
    # than 64 KB: the layered path's outcome (its outer IPv4 total length does not fit)
    fr, offs = tunnel_frame(PAYLOAD[:60000])
    big = fr + PAYLOAD[:10000]
    assert_fallback(lambda: tunnel_superpacket(big, offs, 65500, _gtype(False, True), DEV), HW)


def test_plain_tcp_still_declines_tunnels() -> None:
    """The plain TCP fast path never takes a tunnel packet (the dispatch in
    skb_gso_segment tries it first)."""
    p = vxlan_gso_packet(bytes(6000), 1400, True)
    before = state(p)
    assert gso_fast.tcp_gso_segment_fast(p, HW) is None
    assert state(p) == before


def test_non_partial_super_packet_seeded() -> None:
    """A super-packet that is not CHECKSUM_PARTIAL gets the inner pseudo sum seeded, as
    tcp4/6_gso_segment do (the state is compared by assert_same)."""
    dev = Dev(HW)
    for iv6 in (False, True):
        for summed in (CHECKSUM_NONE, CHECKSUM_UNNECESSARY):
            fr, offs = tunnel_frame(PAYLOAD[:7000], iv6=iv6)
            assert_same(lambda: tunnel_superpacket(fr, offs, 1000, _gtype(iv6, True), dev,
                                                   ip_summed=summed), HW)


@pytest.mark.parametrize("outer_csum", [False, True])
def test_header_offsets_the_layered_path_ignores_or_copies(outer_csum) -> None:
    """No device (``cb.dev`` None: no hw_enc_features, no outer offload); the outer
    transport header unset (inet_gso_segment sets it); the inner transport header unset
    or stale (skb_segment copies it, __skb_udp_tunnel_segment rewrites it only for
    segments whose inner checksum the device fills); a non-zero UDP check field without
    _CSUM (copied as it is)."""
    for features, hw_enc in ((frozenset(), None), (HW, VETH_FEATURES)):
        dev = Dev(features, hw_enc)
        for fix in (_set(dev=None), _set(transport_header=UNSET),
                    _set(inner_transport_header=UNSET),
                    lambda p: setattr(p, "inner_transport_header", p.inner_transport_header + 2),
                    _poke(34 + 6, b"\x12\x34")):
            assert_same(_mutated(_vx(dev=dev, outer_csum=outer_csum), fix), features)
