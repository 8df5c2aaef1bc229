"""GRO of VXLAN remote-checksum-offload packets (drivers/net/vxlan/vxlan_core.c
``vxlan_gro_prepare_receive``/``vxlan_gro_remcsum``, include/net/gro.h
``skb_gro_remcsum_process``/``skb_gro_remcsum_cleanup``) through a real VXLAN socket and
OFF's GRO engine: segments of an RCO super-packet coalesce back into it."""
from __future__ import annotations

import struct

import pytest

from offload.pktbuild import vxlan_gso_packet
from offload.test_gro import PAY, Dev, gro, resegment, wire

from netstack.core.gro import GRO_HELD, GRO_MERGED, GRO_NORMAL
from netstack.drivers.vxlan.device import VxlanConfig, VxlanSock


class _Vx:
    def __init__(self, cfg: VxlanConfig) -> None:
        self.cfg = cfg


def _dev(remcsum_rx: bool, nopartial: bool = False) -> Dev:
    dev = Dev()
    vs = VxlanSock(dev.net, 2, 4789, (False, remcsum_rx, nopartial, False))
    vs.devs[42] = _Vx(VxlanConfig(vni=42, remcsum_rx=remcsum_rx,  # type: ignore[arg-type]
                                  remcsum_nopartial=nopartial))
    dev.net.proto["udp_tunnel"] = {(2, 4789): [vs.sock]}
    dev.net.proto["udp_encap_needed"] = True
    return dev


def _rco_packet(n: int, outer_csum: bool = True):  # type: ignore[no-untyped-def]
    """vxlan_build_skb's RCO header on a TCP super-packet: C bit (21), start = 34 (inner
    Ethernet + IPv4) >> 1 in the VNI word's low byte, TCP (no UDP bit)."""
    p = vxlan_gso_packet(PAY[:n], 1000, outer_csum, remcsum=True)
    d = p.data
    flags, vni = struct.unpack("!II", bytes(p.buf[d + 42:d + 50]))
    p.buf[d + 42:d + 50] = struct.pack("!II", flags | 0x00200000, vni | (34 >> 1))
    return p


def _outer_from_scratch(segs: list) -> None:  # type: ignore[type-arg]
    """``__skb_udp_tunnel_segment`` with remcsum: "inner checksums are never [done] when
    doing remote_checksum_offload", the outer UDP checksum is computed from scratch over
    the segment as sent (dpkt, independent of netstack)."""
    import dpkt
    for s in segs:
        d = s.data
        b = s.buf
        ip = bytes(b[d:d + 20])
        ulen = struct.unpack("!H", bytes(b[d + 24:d + 26]))[0]
        b[d + 26:d + 28] = b"\0\0"
        ph = ip[12:20] + struct.pack("!BBH", 0, 17, ulen)
        c = dpkt.in_cksum(ph + bytes(b[d + 20:d + 20 + ulen])) or 0xFFFF
        b[d + 26:d + 28] = struct.pack("!H", c)


@pytest.mark.parametrize("nopartial", [False, True])
def test_rco_segments_coalesce_back(nopartial: bool) -> None:
    dev = _dev(True, nopartial)
    orig = _rco_packet(3000)
    want = orig.bytes()
    segs = resegment(orig, dev)
    _outer_from_scratch(segs)
    fields = [bytes(s.buf[s.data + 70 + 16:s.data + 70 + 18]) for s in segs]
    out, res = gro(segs, dev)
    assert res == [GRO_HELD, GRO_MERGED, GRO_MERGED]
    assert len(out) == 1 and wire(out[0]) == want
    # nopartial writes the real checksum only for GRO's sake and puts the seed back
    # (skb_gro_remcsum_cleanup) on the segments merged away
    for s, f in zip(segs[1:], fields[1:]):
        assert bytes(s.buf[s.data + 70 + 16:s.data + 70 + 18]) == f


def test_rco_without_a_validated_outer_checksum_is_flushed() -> None:
    """vxlan_gro_remcsum needs NAPI_GRO_CB(skb)->csum_valid: a zero outer UDP checksum
    leaves it unset, so every segment is flushed to the normal path."""
    dev = _dev(True)
    out, res = gro(resegment(_rco_packet(2000, outer_csum=False), dev), dev)
    assert res == [GRO_NORMAL, GRO_NORMAL] and len(out) == 2


def test_rco_bit_without_remcsumrx_is_just_part_of_the_header() -> None:
    """Without VXLAN_F_REMCSUM_RX on the socket the RCO fields are ordinary header bits:
    same header, same flow (vxlan_rcv drops them later as reserved bits)."""
    dev = _dev(False)
    out, res = gro(resegment(_rco_packet(2000), dev), dev)
    assert res == [GRO_HELD, GRO_MERGED] and len(out) == 1


# --------------------------------------------------------------------------- GUE
def _gue_segment(seq: int, payload: bytes, ident: int) -> bytes:
    """Ethernet/IPv4/UDP 6080/GUE v0 (private flags: REMCSUM, start/offset relative to
    the GUE payload) carrying IPv4/TCP whose checksum field holds the pseudo seed, with
    the outer UDP checksum computed over the bytes as sent (struct/dpkt only)."""
    import dpkt
    from offload.pktbuild import IP_A, IP_B, MAC_A, MAC_B, eth, ipv4
    src, dst = bytes([192, 168, 0, 1]), bytes([192, 168, 0, 2])
    seg = struct.pack("!HHIIBBHHH", 4000, 80, seq, 1, 5 << 4, 0x10, 512, 0, 0) + payload
    seed = dpkt.in_cksum_add(0, src + dst + struct.pack("!BBH", 0, 6, len(seg)))
    seed = dpkt.in_cksum_done(seed) ^ 0xFFFF
    seg = seg[:16] + struct.pack("!H", seed) + seg[18:]
    inner = ipv4(len(seg), 6, src=src, dst=dst, ident=ident) + seg
    gue = bytes((2, 4, 0, 1)) + struct.pack("!I", 0x80000000) + struct.pack("!HH", 20, 36)
    ulen = 8 + len(gue) + len(inner)
    udp = struct.pack("!HHHH", 49152, 6080, ulen, 0) + gue + inner
    c = dpkt.in_cksum(IP_A + IP_B + struct.pack("!BBH", 0, 17, ulen) + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    return eth(MAC_B, MAC_A, 0x0800) + ipv4(ulen, 17, ident=ident) + udp


def _gue_dev(nopartial: bool) -> Dev:
    from netstack.ipv4.fou import (FOU_ENCAP_GUE, FOU_F_REMCSUM_NOPARTIAL, Fou,
                                   gue_gro_complete, gue_gro_receive, gue_udp_recv)
    from netstack.ipv4.udp_tunnel import UdpTunnelSock
    dev = Dev()
    fou = Fou(6080, 2, FOU_ENCAP_GUE, flags=FOU_F_REMCSUM_NOPARTIAL if nopartial else 0)
    sock = UdpTunnelSock(dev.net, 2, 6080, gue_udp_recv, user_data=fou,
                         gro_receive=gue_gro_receive, gro_complete=gue_gro_complete)
    dev.net.proto["udp_tunnel"] = {(2, 6080): [sock]}
    dev.net.proto["udp_encap_needed"] = True
    return dev


@pytest.mark.parametrize("nopartial", [False, True])
def test_gue_rco_segments_are_aggregated(nopartial: bool) -> None:
    """gue_gro_remcsum: two consecutive RCO segments of one TCP flow merge (the old
    behaviour flushed both)."""
    from offload.test_gro import rx
    dev = _gue_dev(nopartial)
    a = _gue_segment(5000, PAY[:1000], 1)
    b = _gue_segment(6000, PAY[1000:2000], 2)
    ck = 14 + 20 + 8 + 12 + 20 + 16        # the inner TCP checksum field
    before = b[ck:ck + 2]
    pb = rx(b, dev, ip_summed=0)
    out, res = gro([rx(a, dev, ip_summed=0), pb], dev)
    assert res == [GRO_HELD, GRO_MERGED] and len(out) == 1
    o = pb.mac_header
    assert bytes(pb.buf[o + ck:o + ck + 2]) == before
