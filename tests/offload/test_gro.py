"""GRO: the kernel's coalescing rules (tcp_gro_receive, inet_gro_receive/flush, ipv6),
UDP tunnel GRO through a tunnel socket, GRE GRO, flush conditions, bucket limit, batch
delivery; the property GRO(GSO(x)) == x."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.core.gro import (GRO_HELD, GRO_MERGED, GRO_NORMAL, Napi, eth_gro_complete,
                               eth_gro_receive, skb_gro_pull)
from netstack.core.gso import (SKB_GSO_TCP_FIXEDID, SKB_GSO_TCPV4, SKB_GSO_TCPV6,
                               SKB_GSO_UDP_TUNNEL_CSUM, skb_gso_segment)
from netstack.ipv4.udp_tunnel import UdpTunnelSock
from netstack.packet.skb import CHECKSUM_NONE, CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, Packet

from .pktbuild import gre_gso_packet, gso_packet, tcp4_frame, tcp6_frame, vxlan_gso_packet

PAY = bytes((i * 31 + 7) & 0xFF for i in range(70000))


class FakeNet:
    def __init__(self) -> None:
        self.proto: dict = {}


class Dev:
    hw_enc_features = None
    gso_partial_features: frozenset = frozenset()
    ifindex = 3

    def __init__(self) -> None:
        self.features = {"rx-gro"}
        self.net = FakeNet()


def rx(frame: bytes, dev: Dev, ip_summed: int = CHECKSUM_UNNECESSARY) -> Packet:
    """A received frame after eth_type_trans: data at the network header."""
    p = Packet(frame)
    p.dev = dev
    p.mac_header = p.data
    p.protocol = struct.unpack("!H", frame[12:14])[0]
    p.data += 14
    p.ip_summed = ip_summed
    return p


def resegment(p: Packet, dev: Dev) -> list[Packet]:
    p.dev = dev
    segs = skb_gso_segment(p, frozenset({"tx-checksum-ip-generic"}))
    out = []
    for s in segs:
        r = rx(s.bytes(), dev)
        r.ip_summed = CHECKSUM_UNNECESSARY
        out.append(r)
    return out


def gro(pkts: list[Packet], dev: Dev) -> tuple[list[Packet], list[str]]:
    out: list[Packet] = []
    napi = Napi(dev, out.extend)
    res = [napi.receive(p) for p in pkts]
    napi.flush()
    return out, res


def wire(p: Packet) -> bytes:
    return bytes(p.buf[p.mac_header:p.tail])


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 30000), mss=st.integers(500, 1460), last_flags=st.sampled_from([0x10, 0x18, 0x19]))
def test_property_gro_of_gso_is_identity_tcp4(n, mss, last_flags) -> None:
    if n <= mss:
        n = mss + 1
    if 54 + n > 65535 - 14:
        n = 60000
    dev = Dev()
    orig = gso_packet(tcp4_frame(PAY[:n], flags=last_flags), 14, 34, mss, SKB_GSO_TCPV4)
    want = orig.bytes()
    out, _ = gro(resegment(orig, dev), dev)
    assert len(out) == 1
    m = out[0]
    assert wire(m) == want
    assert m.gso_size == mss and m.gso_segs == -(-n // mss)
    assert m.gso_type & SKB_GSO_TCPV4 and m.ip_summed == CHECKSUM_PARTIAL


def test_gro_of_gso_is_identity_tcp6() -> None:
    dev = Dev()
    orig = gso_packet(tcp6_frame(PAY[:7000]), 14, 54, 1440, SKB_GSO_TCPV6)
    want = orig.bytes()
    out, res = gro(resegment(orig, dev), dev)
    assert res == [GRO_HELD] + [GRO_MERGED] * 4
    assert len(out) == 1 and wire(out[0]) == want and out[0].gso_type & SKB_GSO_TCPV6


def _segs(n: int = 3, mss: int = 1000, **kw) -> list[bytes]:
    frames = []
    for i in range(n):
        frames.append(tcp4_frame(PAY[i * mss:(i + 1) * mss], seq=1000 + i * mss,
                                 ident=0x100 + i, flags=kw.get("flags", 0x10), **{
                                     k: v for k, v in kw.items() if k != "flags"}))
    return frames


def test_merge_rules_matrix() -> None:
    dev = Dev()
    base = _segs(2)
    # contiguous, same everything: merged
    _, res = gro([rx(f, dev) for f in base], dev)
    assert res == [GRO_HELD, GRO_MERGED]
    cases = {
        "other ports": tcp4_frame(PAY[1000:2000], seq=2000, ident=0x101, sport=4001),
        "other ack": tcp4_frame(PAY[1000:2000], seq=2000, ident=0x101, ack=2, flags=0x10),
        "ttl differs": tcp4_frame(PAY[1000:2000], seq=2000, ident=0x101, ttl=63, flags=0x10),
        "hole in seq": tcp4_frame(PAY[1000:2000], seq=2500, ident=0x101, flags=0x10),
        "id jumps": tcp4_frame(PAY[1000:2000], seq=2000, ident=0x105, flags=0x10),
        "options differ": tcp4_frame(PAY[1000:2000], seq=2000, ident=0x101, flags=0x10,
                                     options=b"\x01\x01\x01\x01"),
        "longer than mss": tcp4_frame(PAY[1000:2100], seq=2000, ident=0x101, flags=0x10),
        "syn": tcp4_frame(PAY[1000:2000], seq=2000, ident=0x101, flags=0x12),
    }
    ts = b"\x01\x01\x08\x0a"
    first_ts = tcp4_frame(PAY[:1000], seq=1000, ident=0x100, flags=0x10,
                          options=ts + (7).to_bytes(4, "big") + bytes(4))
    other_tsval = tcp4_frame(PAY[1000:2000], seq=2000, ident=0x101, flags=0x10,
                             options=ts + (8).to_bytes(4, "big") + bytes(4))
    same_tsval = tcp4_frame(PAY[1000:2000], seq=2000, ident=0x101, flags=0x10,
                            options=ts + (7).to_bytes(4, "big") + bytes(4))
    _, res = gro([rx(first_ts, dev), rx(other_tsval, dev)], dev)
    assert res == [GRO_HELD, GRO_HELD]          # timestamps differ: flush, new flow head
    _, res = gro([rx(first_ts, dev), rx(same_tsval, dev)], dev)
    assert res == [GRO_HELD, GRO_MERGED]
    for why, f in cases.items():
        out, res = gro([rx(base[0], dev), rx(f, dev)], dev)
        assert res[1] != GRO_MERGED, why
        assert len(out) == 2, why


def test_psh_is_merged_then_flushes_and_short_segment_ends_the_train() -> None:
    dev = Dev()
    f = _segs(2)
    psh = tcp4_frame(PAY[2000:3000], seq=3000, ident=0x102, flags=0x18)
    after = tcp4_frame(PAY[3000:4000], seq=4000, ident=0x103, flags=0x10)
    out, res = gro([rx(f[0], dev), rx(f[1], dev), rx(psh, dev), rx(after, dev)], dev)
    assert res == [GRO_HELD, GRO_MERGED, GRO_MERGED, GRO_HELD]
    assert [o.gso_segs for o in out] == [3, 0] and out[0].buf[out[0].transport_header + 13] & 0x08
    short = tcp4_frame(PAY[1000:1500], seq=2000, ident=0x101, flags=0x10)
    out, res = gro([rx(f[0], dev), rx(short, dev), rx(after, dev)], dev)
    assert res[:2] == [GRO_HELD, GRO_MERGED] and len(out) == 2


def test_fixed_ip_id_with_df_merges_as_fixedid() -> None:
    dev = Dev()
    frames = [tcp4_frame(PAY[i * 1000:(i + 1) * 1000], seq=1000 + i * 1000, ident=0x4444,
                         flags=0x10) for i in range(3)]
    out, res = gro([rx(f, dev) for f in frames], dev)
    assert res == [GRO_HELD, GRO_MERGED, GRO_MERGED]
    assert out[0].gso_type & SKB_GSO_TCP_FIXEDID


def test_bad_checksum_is_not_merged() -> None:
    dev = Dev()
    f = _segs(2)
    bad = bytearray(f[1])
    bad[-1] ^= 0xFF
    out, res = gro([rx(f[0], dev, CHECKSUM_NONE), rx(bytes(bad), dev, CHECKSUM_NONE)], dev)
    assert res == [GRO_HELD, GRO_NORMAL]
    assert out[0].ip_summed == CHECKSUM_NONE   # the bad one goes up unverified, unchanged
    assert wire(out[0]) == bytes(bad)
    good, res = gro([rx(x, dev, CHECKSUM_NONE) for x in f], dev)
    assert res == [GRO_HELD, GRO_MERGED]


def test_bucket_holds_eight_and_flushes_the_oldest() -> None:
    dev = Dev()
    frames = [tcp4_frame(PAY[:1000], sport=5000 + i, flags=0x10) for i in range(9)]
    out: list[Packet] = []
    napi = Napi(dev, out.extend)
    for f in frames:
        napi.receive(rx(f, dev))
    # the oldest was completed and waits in the GRO_NORMAL batch (gro_normal_one)
    assert not out and len(napi.rx_list) == 1
    assert struct.unpack("!H", wire(napi.rx_list[0])[34:36])[0] == 5000
    assert sum(len(h) for h in napi.hash) == 8


def test_batch_delivery_in_groups_of_eight_segments() -> None:
    dev = Dev()
    batches: list[int] = []
    napi = Napi(dev, lambda lst: batches.append(len(lst)))
    for i in range(20):
        napi.receive(rx(tcp4_frame(PAY[:100], sport=6000 + i, flags=0x18), dev))
    napi.flush()
    assert batches == [8, 8, 4]


def test_gro_off_passes_everything() -> None:
    dev = Dev()
    dev.features = set()
    _, res = gro([rx(f, dev) for f in _segs(3)], dev)
    assert res == [GRO_NORMAL] * 3


# ----------------------------------------------------------------- tunnels
class VxlanLikeSock:
    """A socket of the shape TUN's vxlan registers (gro_receive/gro_complete), reduced
    to the VXLAN header: flags word equal, VNI equal, then the inner Ethernet."""

    def __init__(self) -> None:
        self.calls = 0

    @staticmethod
    def gro_receive(sock, napi, head, pkt):  # type: ignore[no-untyped-def]
        cb = pkt.cb
        off = cb.off
        vx = bytes(pkt.buf[off:off + 8])
        rel = off - pkt.data
        for p in head:
            if p.cb.same_flow and bytes(p.buf[p.data + rel:p.data + rel + 8]) != vx:
                p.cb.same_flow = False
        skb_gro_pull(pkt, 8)
        return eth_gro_receive(napi, head, pkt)

    @staticmethod
    def gro_complete(sock, napi, pkt, nhoff):  # type: ignore[no-untyped-def]
        pkt.inner_protocol = 0x6558
        return eth_gro_complete(napi, pkt, nhoff + 8)


def _tunnel_dev() -> Dev:
    dev = Dev()
    s = UdpTunnelSock(net=dev.net, family=2, port=4789, encap_rcv=lambda s, p: 0)  # type: ignore[arg-type]
    s.gro_receive = VxlanLikeSock.gro_receive
    s.gro_complete = VxlanLikeSock.gro_complete
    dev.net.proto["udp_tunnel"] = {(2, 4789): [s]}
    dev.net.proto["udp_encap_needed"] = True
    return dev


def test_vxlan_gro_of_gso_is_identity() -> None:
    dev = _tunnel_dev()
    orig = vxlan_gso_packet(PAY[:5000], 1200, True)
    want = orig.bytes()
    out, res = gro(resegment(orig, dev), dev)
    assert res == [GRO_HELD] + [GRO_MERGED] * 4
    m = out[0]
    assert wire(m) == want
    assert m.encapsulation and m.gso_type & SKB_GSO_UDP_TUNNEL_CSUM and m.gso_type & SKB_GSO_TCPV4
    assert m.inner_network_header - m.mac_header == 64


def test_vxlan_other_vni_is_another_flow_and_no_socket_no_gro() -> None:
    dev = _tunnel_dev()
    a = resegment(vxlan_gso_packet(PAY[:2400], 1200, True, vni=1), dev)
    b = resegment(vxlan_gso_packet(PAY[:2400], 1200, True, vni=2), dev)
    out, res = gro([a[0], b[0], a[1], b[1]], dev)
    assert res == [GRO_HELD, GRO_HELD, GRO_MERGED, GRO_MERGED] and len(out) == 2
    plain = Dev()
    out, res = gro(resegment(vxlan_gso_packet(PAY[:2400], 1200, True), plain), plain)
    assert res == [GRO_NORMAL, GRO_NORMAL]


def test_gre_gro_of_gso_is_identity_and_seq_is_not_merged() -> None:
    dev = Dev()
    orig = gre_gso_packet(PAY[:4000], 1000, False, key=9)
    want = orig.bytes()
    out, res = gro(resegment(orig, dev), dev)
    assert res == [GRO_HELD] + [GRO_MERGED] * 3
    assert wire(out[0]) == want
    segs = resegment(gre_gso_packet(PAY[:2000], 1000, False, key=9), dev)
    for s in segs:   # set the S bit: GRE GRO takes only K and C
        s.buf[s.data + 20] |= 0x10
    _, res = gro(segs, dev)
    assert res == [GRO_NORMAL, GRO_NORMAL]


@pytest.mark.parametrize("csum", [True])
def test_gre_csum_is_verified_and_merged(csum) -> None:
    dev = Dev()
    segs = resegment(gre_gso_packet(PAY[:3000], 1000, csum), dev)
    for s in segs:
        s.ip_summed = CHECKSUM_NONE
    _, res = gro(segs, dev)
    assert res == [GRO_HELD, GRO_MERGED, GRO_MERGED]
    segs = resegment(gre_gso_packet(PAY[:3000], 1000, csum), dev)
    for s in segs:
        s.ip_summed = CHECKSUM_NONE
    segs[1].buf[segs[1].tail - 1] ^= 1
    _, res = gro(segs, dev)
    assert res[1] == GRO_NORMAL


def test_veth_napi_gro_after_ethtool_gro_on() -> None:
    """A batch crossing a veth whose receiving end has GRO on arrives coalesced (the
    AF_PACKET tap on vB sees one super-packet with the TCP pseudo seed); with GRO off,
    the segments as sent."""
    import io

    from netstack.cli.scenario import run_script
    from netstack.core.dev import dev_queue_xmit_list
    from netstack.core.world import World
    from netstack.drivers.veth import VethDevice

    if not getattr(VethDevice, "napi_gro", False):
        pytest.skip("veth NAPI GRO needs patch OFF-3 (VethDevice.napi_gro)")
    for gro_on in (True, False):
        w = World()
        run_script(w, "ip link add vA type veth peer name vB\nip link set vA up\n"
                   "ip link set vB up\n" + ("ethtool -K vB gro on\n" if gro_on else ""),
                   stdout=io.StringIO(), stderr=io.StringIO())
        va, vb = w.init_net.get("vA"), w.init_net.get("vB")
        got: list[bytes] = []
        w.init_net.add_rx_tap(vb, lambda p: got.append(bytes(p.buf[p.mac_header:p.tail])))
        orig = gso_packet(tcp4_frame(PAY[:4000], flags=0x18), 14, 34, 1000, SKB_GSO_TCPV4)
        want = orig.bytes()
        orig.dev = Dev()
        segs = [Packet(s.bytes()) for s in skb_gso_segment(orig, frozenset())]
        dev_queue_xmit_list(va, segs)
        w.run_until_idle()
        if gro_on:
            assert got == [want]
        else:
            assert len(got) == 4


@settings(max_examples=300, deadline=None)
@given(frames=st.lists(st.binary(min_size=14, max_size=200), min_size=1, max_size=6),
       mutate=st.lists(st.tuples(st.integers(14, 120), st.integers(0, 255)), max_size=4),
       base=st.booleans())
def test_fuzz_gro_never_raises(frames, mutate, base) -> None:
    """Random and mutated frames (IPv4/IPv6/TCP/UDP/GRE/VXLAN shaped) through GRO with a
    tunnel socket present: no exception, and every packet comes out exactly once."""
    dev = _tunnel_dev()
    pkts = []
    if base:
        seeds = [tcp4_frame(PAY[:300], flags=0x10), tcp6_frame(PAY[:300]),
                 resegment(vxlan_gso_packet(PAY[:2400], 1200, True), dev)[0].bytes(),
                 resegment(gre_gso_packet(PAY[:2400], 1200, True, key=3), dev)[0].bytes()]
        frames = frames + seeds
    for f in frames:
        b = bytearray(f)
        for off, x in mutate:
            if off < len(b):
                b[off] = x
        if b[12:14] not in (b"\x08\x00", b"\x86\xdd"):
            b[12:14] = b"\x08\x00"
        pkts.append(rx(bytes(b), dev, CHECKSUM_NONE))
    out, res = gro(pkts, dev)
    merged = sum(1 for r in res if r == GRO_MERGED)
    assert len(out) + merged == len(pkts)


def test_ipip_gro_of_gso_is_identity() -> None:
    from netstack.core.gso import SKB_GSO_IPXIP4

    from .test_gso import _ipip_packet
    dev = Dev()
    orig = _ipip_packet(4000, 1000)
    want = orig.bytes()
    out, res = gro(resegment(orig, dev), dev)
    assert res == [GRO_HELD] + [GRO_MERGED] * 3
    m = out[0]
    assert wire(m) == want and m.encapsulation and m.gso_type & SKB_GSO_IPXIP4
