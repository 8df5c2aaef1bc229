"""Tunnel encapsulation of GSO super-packets: the VXLAN / GRE / FOU transmit paths set
``encapsulation``, the ``inner_*`` headers, ``inner_protocol`` and the GSO type bits exactly
as the kernel (``iptunnel_handle_offloads`` + the outer checksum in GSO form), so OFF's
software segmentation (``skb_gso_segment``) produces wire-valid segments: every outer IPv4
header, outer UDP/GRE checksum and inner TCP checksum verified by an independent sum."""
from __future__ import annotations

import struct

import dpkt
import pytest

from offload.pktbuild import gso_packet, tcp4_frame

from netstack.core.dev import dev_queue_xmit
from netstack.core.gso import skb_gso_segment
from netstack.packet.skb import (SKB_GSO_GRE, SKB_GSO_GRE_CSUM, SKB_GSO_TCPV4,
                                 SKB_GSO_UDP_TUNNEL, SKB_GSO_UDP_TUNNEL_CSUM)
from tunnels.helpers import Topo

PAY = bytes((i * 7 + 3) & 0xFF for i in range(4000))

VX = """\
ip -n a link add vx0 address 02:00:00:00:09:01 type vxlan id 42 remote 10.1.0.2 local 10.1.0.1 dev va dstport 4789 {opts}
ip -n a link set vx0 up
ip -n a link add g0 type gretap remote 10.1.0.2 local 10.1.0.1 {gopts}
ip -n a link set g0 up
"""


def _super(t: Topo, dev: str):  # type: ignore[no-untyped-def]
    frame = tcp4_frame(PAY)
    p = gso_packet(frame, 14, 34, 1000, SKB_GSO_TCPV4)
    q = t.st.world.new_packet(p.bytes())
    for attr in ("ip_summed", "csum_offset", "gso_size", "gso_type", "protocol"):
        setattr(q, attr, getattr(p, attr))
    q.mac_header = q.data
    q.network_header = q.data + 14
    q.transport_header = q.data + 34
    q.csum_start = q.data + 34
    captured = []
    vb = t.dev("b", "vb")

    def tap(pkt) -> None:  # type: ignore[no-untyped-def]
        c = pkt.clone()
        c.data = c.mac_header   # segment from the MAC header, as on transmit
        captured.append(c)

    vb.net.add_rx_tap(vb, tap)
    dev_queue_xmit(q, t.dev("a", dev))
    t.st.world.run_until_idle()
    return captured


def _wire_bytes(seg) -> bytes:  # type: ignore[no-untyped-def]
    """A software segment as the wire would carry it: a CHECKSUM_PARTIAL sum finished."""
    from kernel.oracle import complete_partial_checksum
    from netstack.packet.skb import CHECKSUM_PARTIAL
    raw = seg.bytes()
    if seg.ip_summed == CHECKSUM_PARTIAL:
        raw = complete_partial_checksum(raw, seg.csum_start - seg.data, seg.csum_offset)
    return raw


def _valid(seg: bytes, outer_l4: int) -> None:
    ip = dpkt.ethernet.Ethernet(seg).data
    assert dpkt.in_cksum(seg[14:34]) == 0
    if outer_l4 == 17:
        u = seg[34:34 + ip.len - 20]
        if u[6:8] != b"\0\0":
            ph = seg[26:34] + struct.pack("!BBH", 0, 17, len(u))
            assert dpkt.in_cksum(ph + u) == 0
        inner = seg[34 + 16 + 14:]
    else:
        gre = seg[34:]
        if gre[0] & 0x80:
            assert dpkt.in_cksum(gre) == 0
        inner = gre[4 + (4 if gre[0] & 0x80 else 0) + (4 if gre[0] & 0x20 else 0) + 14:]
    # inner IPv4 + TCP checksums
    assert dpkt.in_cksum(inner[:20]) == 0
    tcp = inner[20:]
    ph = inner[12:20] + struct.pack("!BBH", 0, 6, len(tcp))
    assert dpkt.in_cksum(ph + tcp) == 0


@pytest.mark.parametrize("opts,gso_bit", [("", SKB_GSO_UDP_TUNNEL_CSUM),
                                           ("noudpcsum", SKB_GSO_UDP_TUNNEL)])
def test_vxlan_gso_fields_and_software_segmentation(opts: str, gso_bit: int) -> None:
    t = Topo(VX.format(opts=opts, gopts=""))
    got = _super(t, "vx0")
    assert len(got) == 1
    p = got[0]
    assert p.encapsulation and p.gso_type == SKB_GSO_TCPV4 | gso_bit and p.gso_size == 1000
    assert p.inner_protocol == 0x6558
    assert p.inner_mac_header - p.mac_header == 50
    assert p.inner_network_header - p.mac_header == 64
    segs = skb_gso_segment(p, frozenset({"tx-checksum-ip-generic"}))
    assert segs is not None and len(segs) == 4
    for s in segs:
        _valid(_wire_bytes(s), 17)


@pytest.mark.parametrize("gopts,gso_bit", [("", SKB_GSO_GRE), ("csum", SKB_GSO_GRE_CSUM)])
def test_gretap_gso_fields_and_software_segmentation(gopts: str, gso_bit: int) -> None:
    t = Topo(VX.format(opts="", gopts=gopts))
    got = _super(t, "g0")
    p = got[0]
    assert p.encapsulation and p.gso_type == SKB_GSO_TCPV4 | gso_bit
    assert p.inner_protocol == 0x6558
    segs = skb_gso_segment(p, frozenset({"tx-checksum-ip-generic"}))
    assert segs is not None and len(segs) == 4
    for s in segs:
        _valid(_wire_bytes(s), 47)


def test_gre_seq_refuses_gso() -> None:
    """A tunnel with ``oseq`` has no GSO (a per-segment field): the kernel's ipgre device
    drops NETIF_F_GSO_SOFTWARE when o_flags has SEQ, so the stack segments before the
    tunnel; netstack models the rule in the device features."""
    t = Topo(VX.format(opts="", gopts="seq"))
    feats = t.dev("a", "g0").features
    assert "tx-tcp-segmentation" not in feats and "tx-generic-segmentation" in feats
    got = _super(t, "g0")
    # segmented in software before the tunnel: four MSS-sized packets, sequence 0..3
    assert [p.gso_size for p in got] == [0, 0, 0, 0]
    assert [struct.unpack("!I", p.bytes()[38:42])[0] for p in got] == [0, 1, 2, 3]
