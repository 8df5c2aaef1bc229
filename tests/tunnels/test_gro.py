"""UDP tunnel GRO through the real VXLAN and Geneve tunnel sockets (their
``gro_receive``/``gro_complete``): segments of one super-packet coalesce back into it
(GRO(GSO(x)) == x), another VNI or another Geneve header is another flow.  GRO of RCO
packets: ``test_tun2_gro_remcsum.py``."""
from __future__ import annotations

import struct

from offload.pktbuild import vxlan_gso_packet
from offload.test_gro import PAY, Dev, gro, resegment, wire

from netstack.core.gro import GRO_HELD, GRO_MERGED
from netstack.drivers.geneve import GeneveSock
from netstack.drivers.vxlan.device import VxlanConfig, VxlanSock


class _Vx:
    def __init__(self, cfg: VxlanConfig) -> None:
        self.cfg = cfg


def _dev_with(sock) -> Dev:  # type: ignore[no-untyped-def]
    dev = Dev()
    dev.net.proto["udp_tunnel"] = {(2, sock.port): [sock]}
    dev.net.proto["udp_encap_needed"] = True
    return dev


def _vxlan_dev(**cfg: object) -> Dev:
    dev = Dev()
    vs = VxlanSock(dev.net, 2, 4789, (False, False, False, False))
    vs.devs[42] = _Vx(VxlanConfig(vni=42, **cfg))  # type: ignore[arg-type]
    dev.net.proto["udp_tunnel"] = {(2, 4789): [vs.sock]}
    dev.net.proto["udp_encap_needed"] = True
    return dev


def test_vxlan_gro_of_gso_is_identity() -> None:
    dev = _vxlan_dev()
    orig = vxlan_gso_packet(PAY[:4000], 1000, True)
    want = orig.bytes()
    out, res = gro(resegment(orig, dev), dev)
    assert res == [GRO_HELD] + [GRO_MERGED] * 3
    assert wire(out[0]) == want
    assert out[0].inner_mac_header - out[0].mac_header == 50


def test_vxlan_gro_vni_is_part_of_the_flow() -> None:
    dev = _vxlan_dev()
    a = resegment(vxlan_gso_packet(PAY[:2000], 1000, True, vni=42), dev)
    b = resegment(vxlan_gso_packet(PAY[:2000], 1000, True, vni=43), dev)
    out, res = gro([a[0], b[0], a[1], b[1]], dev)
    assert res == [GRO_HELD, GRO_HELD, GRO_MERGED, GRO_MERGED] and len(out) == 2


def _as_geneve(p, vni: int = 77):  # type: ignore[no-untyped-def]
    """Turn the VXLAN super-packet into a Geneve one: same 8-byte header size."""
    b = p.buf
    d = p.data
    b[d + 36:d + 38] = struct.pack("!H", 6081)
    b[d + 42:d + 50] = b"\x00\x00\x65\x58" + struct.pack("!I", vni << 8)
    return p


def test_geneve_gro_of_gso_is_identity_and_vni_is_part_of_the_flow() -> None:
    gs = GeneveSock(None, 2, 6081, False)
    dev = _dev_with(gs.sock)
    orig = _as_geneve(vxlan_gso_packet(PAY[:3000], 1000, True))
    want = orig.bytes()
    out, res = gro(resegment(orig, dev), dev)
    assert res == [GRO_HELD, GRO_MERGED, GRO_MERGED]
    assert wire(out[0]) == want
    a = resegment(_as_geneve(vxlan_gso_packet(PAY[:2000], 1000, True), 1), dev)
    b = resegment(_as_geneve(vxlan_gso_packet(PAY[:2000], 1000, True), 2), dev)
    out, res = gro([a[0], b[0], a[1], b[1]], dev)
    assert len(out) == 2
