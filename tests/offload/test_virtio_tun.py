"""virtio_net_hdr codec and conversions, the tap device's two sides, ``ip tuntap`` and
the tun kind in ``ip -d link``; fuzzed headers and frames never raise."""
from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netstack.cli.scenario import run_command
from netstack.core.gso import SKB_GSO_DODGY, SKB_GSO_TCP_ECN, SKB_GSO_TCPV4, SKB_GSO_UDP_L4
from netstack.core.world import World
from netstack.drivers.tun import TUN_F_CSUM, TUN_F_TSO4, TunDevice
from netstack.errors import KernelError
from netstack.packet.errors import ParseError
from netstack.packet.skb import CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, Packet
from netstack.packet.virtio_net import (VirtioNetHdr, virtio_net_hdr_from_skb,
                                        virtio_net_hdr_to_skb)

from .pktbuild import tcp4_frame

FR = tcp4_frame(bytes(3000))


def test_codec_round_trip_and_sizes() -> None:
    h = VirtioNetHdr(1, 0x81, 54, 1448, 34, 16, 1)
    assert h.pack() == bytes.fromhex("01813600a80522001000")
    assert VirtioNetHdr.unpack(h.pack()) == VirtioNetHdr(1, 0x81, 54, 1448, 34, 16, 0)
    assert VirtioNetHdr.unpack(h.pack(12), 12) == h
    assert h.pack()[2:4] == (54).to_bytes(2, "little")
    assert h.pack(little_endian=False)[2:4] == (54).to_bytes(2, "big")
    with pytest.raises(ParseError):
        VirtioNetHdr.unpack(b"\0" * 9)


def test_to_skb_needs_csum_and_gso_become_partial_dodgy() -> None:
    p = Packet(FR)
    assert virtio_net_hdr_to_skb(p, VirtioNetHdr(1, 0x81, 54, 1448, 34, 16)) == 0
    assert p.ip_summed == CHECKSUM_PARTIAL and p.csum_start == p.data + 34
    assert p.gso_type == SKB_GSO_TCPV4 | SKB_GSO_TCP_ECN | SKB_GSO_DODGY
    assert p.gso_size == 1448 and p.gso_segs == 0


@pytest.mark.parametrize("hdr", [
    VirtioNetHdr(1, 1, 54, 0, 34, 16),        # gso_size 0
    VirtioNetHdr(1, 2, 54, 1448, 34, 16),     # unknown type
    VirtioNetHdr(1, 0, 0, 0, 5000, 16),       # checksum outside the packet
    VirtioNetHdr(1, 1, 54, 1448, 10, 16),     # transport offset inside the IP header
    VirtioNetHdr(1, 1, 54, 1448, 34, 6),      # TCP GSO with a UDP offset
    VirtioNetHdr(0, 5, 42, 1000, 0, 0),       # UDP_L4 without NEEDS_CSUM
    VirtioNetHdr(1, 1, 54, 0xFFFF, 34, 16),   # GSO_BY_FRAGS
])
def test_to_skb_rejections(hdr: VirtioNetHdr) -> None:
    assert virtio_net_hdr_to_skb(Packet(FR), hdr) < 0


def test_udp_l4_segment_limit() -> None:
    p = Packet(bytes(14 + 20 + 8 + 20000))
    assert virtio_net_hdr_to_skb(p, VirtioNetHdr(1, 5, 42, 100, 34, 6)) < 0   # > 128 segs
    p = Packet(bytes(14 + 20 + 8 + 2000))
    assert virtio_net_hdr_to_skb(p, VirtioNetHdr(1, 5, 42, 100, 34, 6)) == 0
    assert p.gso_type == SKB_GSO_UDP_L4 | SKB_GSO_DODGY


def test_from_skb_lro_to_guest_and_data_valid() -> None:
    p = Packet(FR)
    virtio_net_hdr_to_skb(p, VirtioNetHdr(1, 1, 54, 1448, 34, 16))
    h = virtio_net_hdr_from_skb(p)
    assert isinstance(h, VirtioNetHdr)
    assert (h.flags, h.gso_type, h.gso_size, h.csum_start, h.csum_offset) == (1, 1, 1448, 34, 16)
    q = Packet(FR)
    q.ip_summed = CHECKSUM_UNNECESSARY
    h = virtio_net_hdr_from_skb(q)
    assert isinstance(h, VirtioNetHdr) and h.flags == 2
    assert virtio_net_hdr_from_skb(q, has_data_valid=False).flags == 0  # type: ignore[union-attr]
    q.gso_size = 100
    q.gso_type = 1 << 6    # GRE: not expressible
    assert virtio_net_hdr_from_skb(q) < 0  # type: ignore[operator]


@settings(max_examples=300, deadline=None)
@given(hdr=st.binary(min_size=10, max_size=10), frame=st.binary(max_size=200))
def test_fuzz_to_skb_never_raises(hdr: bytes, frame: bytes) -> None:
    p = Packet(frame)
    r = virtio_net_hdr_to_skb(p, VirtioNetHdr.unpack(hdr))
    assert r in (0, -22)


def _world_with_tap(cmd: str = "ip tuntap add dev tap0 mode tap vnet_hdr") -> tuple[World, TunDevice]:
    w = World()
    assert run_command(w, cmd, stdout=io.StringIO(), stderr=io.StringIO()) == 0
    dev = w.init_net.get("tap0")
    assert isinstance(dev, TunDevice)
    return w, dev


def test_tap_write_errors_and_counters() -> None:
    w, dev = _world_with_tap()
    dev.attach()
    h = VirtioNetHdr(1, 1, 54, 1448, 34, 16).pack()
    assert dev.write(h + FR) == -5                      # down: EIO
    assert dev.stats.rx_dropped == 1
    run_command(w, "ip link set tap0 up", stdout=io.StringIO())
    assert dev.write(b"\0" * 5) == -22                  # shorter than the header
    assert dev.write(VirtioNetHdr(1, 2, 54, 1448, 34, 16).pack() + FR) == -22
    assert dev.rx_frame_errors == 1
    assert dev.write(h + FR) == len(h) + len(FR)
    assert dev.stats.rx_packets == 1 and dev.stats.rx_bytes == len(FR)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_fuzz_tap_write_never_raises(data: bytes) -> None:
    w, dev = _world_with_tap()
    run_command(w, "ip link set tap0 up", stdout=io.StringIO())
    dev.attach()
    r = dev.write(data)
    assert r == len(data) or r < 0
    w.run_until_idle()


def test_offloads_and_features() -> None:
    w, dev = _world_with_tap()
    assert "tx-tcp-segmentation" not in dev.features
    dev.set_offload(TUN_F_CSUM | TUN_F_TSO4)
    assert {"tx-checksum-ip-generic", "tx-tcp-segmentation"} <= dev.features
    with pytest.raises(KernelError):     # TSO without CSUM is an unknown request
        dev.set_offload(TUN_F_TSO4)
    with pytest.raises(KernelError):
        dev.set_offload(0x400)
    dev.set_offload(0)
    assert not {"tx-checksum-ip-generic", "tx-tcp-segmentation"} & dev.features


def test_no_reader_no_carrier_and_tx_drops() -> None:
    w, dev = _world_with_tap()
    assert not dev.carrier_ok()
    out = io.StringIO()
    run_command(w, "ip link set tap0 up", stdout=out)
    run_command(w, "ip link show tap0", stdout=out)
    assert "NO-CARRIER" in out.getvalue() and "state DOWN" in out.getvalue()
    dev.start_xmit(Packet(FR), False)
    assert dev.stats.tx_dropped == 1
    dev.attach()
    p = Packet(FR)
    p.dev = dev
    dev.start_xmit(p, False)
    got = dev.read()
    assert got is not None and got[10:] == FR and got[:10] == bytes(10)


MEASURED = [
    ("ip tuntap add dev x0", 1, "", "You failed to specify a tunnel mode\n"),
    ("ip tuntap add dev x1 mode foo", 255, "", 'Unknown tunnel mode "foo"\n'),
    ("ip tuntap add dev x2 mode tap bogus", 255, "",
     'Error: either "name" is duplicate, or "bogus" is a garbage.\n'),
    ("ip tuntap add dev tap0 mode tap vnet_hdr", 0, "", ""),
    ("ip tuntap add dev tap0 mode tap", 1, "", "ioctl(TUNSETIFF): Device or resource busy\n"),
    ("ip tuntap add dev tun0 mode tun", 0, "", ""),
    ("ip tuntap add mode tap", 0, "", ""),
    ("ip tuntap add dev y0 mode tap user 1234 group 55 multi_queue pi", 0, "", ""),
    ("ip tuntap show", 0, "tap0: tap vnet_hdr persist\ntun0: tun persist\ntap1: tap persist\n"
     "y0: tap pi multi_queue persist filter user 1234 group 55\n", ""),
    ("ip -j tuntap show", 0, '[{"ifname":"tap0","flags":["tap","vnet_hdr","persist"]},'
     '{"ifname":"tun0","flags":["tun","persist"]},{"ifname":"tap1","flags":["tap","persist"]},'
     '{"ifname":"y0","flags":["tap","pi","multi_queue","persist","filter"],"user":1234,'
     '"group":55}]\n', ""),
    ("ip tuntap del dev tap0 mode tun", 1, "", "ioctl(TUNSETIFF): Invalid argument\n"),
    ("ip tuntap del dev nosuch mode tap", 0, "", ""),
    ("ip tuntap del dev tap1 mode tap", 0, "", ""),
]


def test_ip_tuntap_measured() -> None:
    w = World()
    for cmd, rc, out, err in MEASURED:
        so, se = io.StringIO(), io.StringIO()
        assert (run_command(w, cmd, stdout=so, stderr=se), so.getvalue(), se.getvalue()) == \
            (rc, out, err), cmd


def test_ip_d_link_of_tap_and_tun() -> None:
    w = World()
    for c in ("ip tuntap add dev tap0 mode tap vnet_hdr", "ip tuntap add dev tun0 mode tun"):
        run_command(w, c, stdout=io.StringIO())
    so = io.StringIO()
    run_command(w, "ip -d -j link show tap0", stdout=so)
    d = json.loads(so.getvalue())[0]
    assert d["linkinfo"] == {"info_kind": "tun", "info_data": {
        "type": "tap", "pi": False, "vnet_hdr": True, "multi_queue": False, "persist": True}}
    assert (d["txqlen"], d["max_mtu"], d["link_type"]) == (1000, 65521, "ether")
    so = io.StringIO()
    run_command(w, "ip -d link show tun0", stdout=so)
    assert "tun type tun pi off vnet_hdr off persist on " in so.getvalue()
    assert "<POINTOPOINT,MULTICAST,NOARP>" in so.getvalue() and "qlen 500" in so.getvalue()
    se = io.StringIO()
    assert run_command(w, "ip link add t9 type tun", stdout=io.StringIO(), stderr=se) != 0
