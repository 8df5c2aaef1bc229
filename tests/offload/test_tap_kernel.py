"""Kernel differential: a real tap with IFF_VNET_HDR.  The same frames (virtio header +
Ethernet frame) are written into tap0 of a router namespace on the kernel and on
netstack; what the second tap's reader gets (header and frame) and what the veth peer
receives must be equal byte for byte, as must each write()'s result.  tshark verifies
the checksums of every complete packet produced."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile

import pytest

from netstack.packet.checksum import pseudo_sum_v4
from netstack.packet.virtio_net import VirtioNetHdr
from .pktbuild import ipv4, pseudo4, tcp, udp
from .tap_netstack import run_netstack
from .tap_oracle import GUEST0_MAC, TAP0_MAC, run_kernel

G0 = bytes([10, 1, 0, 2])
G1 = bytes([10, 3, 0, 2])
HB = bytes([10, 2, 0, 2])
PAYLOAD = bytes((i * 7 + 3) & 0xFF for i in range(9000))
TSO = 0x1 | 0x2 | 0x8        # CSUM | TSO4 | TSO_ECN
CSUM = 0x1
USO = 0x1 | 0x20 | 0x40


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    if shutil.which("ip") is None or shutil.which("ethtool") is None:
        return "needs ip and ethtool"
    return None


pytestmark = pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))


def _mac(s: str) -> bytes:
    return bytes.fromhex(s.replace(":", ""))


def tcp_frame(n: int, dst: bytes = G1, flags: int = 0x18, seed: bool = True, df: bool = True,
              ident: int = 0x4242, tos: int = 0, options: bytes = b"") -> bytes:
    seg = tcp(4000, 80, 0x10000000, 7, flags, PAYLOAD[:n],
              pseudo4(G0, dst, 6, 20 + len(options) + n), options)
    if seed:  # what a guest with checksum offload sends: the pseudo sum in the field
        ps = pseudo_sum_v4(G0, dst, len(seg), 6)
        seg = seg[:16] + ps.to_bytes(2, "big") + seg[18:]
    return (_mac(TAP0_MAC) + _mac(GUEST0_MAC) + b"\x08\x00"
            + ipv4(len(seg), 6, src=G0, dst=dst, ident=ident, df=df, tos=tos) + seg)


def udp_frame(n: int, dst: bytes = G1, seed: bool = True) -> bytes:
    d = udp(5000, 6000, PAYLOAD[:n], pseudo4(G0, dst, 17, 8 + n))
    if seed:
        d = d[:6] + pseudo_sum_v4(G0, dst, len(d), 17).to_bytes(2, "big") + d[8:]
    return (_mac(TAP0_MAC) + _mac(GUEST0_MAC) + b"\x08\x00"
            + ipv4(len(d), 17, src=G0, dst=dst, ident=0x77) + d)


def vh(flags: int = 0, gso_type: int = 0, hdr_len: int = 0, gso_size: int = 0,
       csum_start: int = 0, csum_offset: int = 0) -> bytes:
    return VirtioNetHdr(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset).pack()


NC = 1  # VIRTIO_NET_HDR_F_NEEDS_CSUM
#: name → (frames, tap1 offload, ethtool -K on vA)
CASES: dict[str, tuple[list[bytes], int, str]] = {
    "tso_to_tso_guest": ([vh(NC, 1, 54, 1448, 34, 16) + tcp_frame(3 * 1448 + 100)], TSO, ""),
    "tso_to_plain_guest": ([vh(NC, 1, 54, 1448, 34, 16) + tcp_frame(3 * 1448 + 100)], 0, ""),
    "tso_to_csum_guest": ([vh(NC, 1, 54, 1448, 34, 16) + tcp_frame(3 * 1448 + 100)], CSUM, ""),
    "tso_flags_fin_psh_cwr": ([vh(NC, 1 | 0x80, 54, 1000, 34, 16)
                               + tcp_frame(2500, flags=0x80 | 0x19)], 0, ""),
    "tso_ecn_to_tso_guest": ([vh(NC, 1 | 0x80, 54, 1000, 34, 16)
                              + tcp_frame(2500, flags=0x80 | 0x10)], TSO, ""),
    "tso_no_df_ids": ([vh(NC, 1, 54, 700, 34, 16) + tcp_frame(2000, df=False, ident=0xfffe)],
                      0, ""),
    "tso_odd_mss_options": ([vh(NC, 1, 66, 999, 34, 16)
                             + tcp_frame(4000, options=b"\x01\x01\x08\x0a" + bytes(8))], 0, ""),
    "tso_without_needs_csum": ([vh(0, 1, 54, 1448, 0, 0) + tcp_frame(3000, seed=False)], 0, ""),
    "tso_small_is_not_gso": ([vh(NC, 1, 54, 1448, 34, 16) + tcp_frame(1000)], TSO, ""),
    "needs_csum_tcp_sw": ([vh(NC, 0, 0, 0, 34, 16) + tcp_frame(1200)], 0, ""),
    "needs_csum_tcp_passed": ([vh(NC, 0, 0, 0, 34, 16) + tcp_frame(1200)], CSUM, ""),
    "needs_csum_udp_sw": ([vh(NC, 0, 0, 0, 34, 6) + udp_frame(900)], 0, ""),
    "uso_to_plain_guest": ([vh(NC, 5, 42, 1000, 34, 6) + udp_frame(3500)], 0, ""),
    "uso_to_uso_guest": ([vh(NC, 5, 42, 1000, 34, 6) + udp_frame(3500)], USO, ""),
    "bad_gso_size_zero": ([vh(NC, 1, 54, 0, 34, 16) + tcp_frame(3000)], 0, ""),
    "bad_gso_type": ([vh(NC, 2, 54, 1448, 34, 16) + tcp_frame(3000)], 0, ""),
    "bad_csum_start_past_end": ([vh(NC, 0, 0, 0, 3000, 16) + tcp_frame(100)], 0, ""),
    "bad_csum_in_ip_header": ([vh(NC, 1, 54, 1448, 20, 16) + tcp_frame(3000)], 0, ""),
    "bad_udp_l4_wrong_offset": ([vh(NC, 5, 42, 1000, 34, 16) + udp_frame(3500)], 0, ""),
    "bad_uso_without_csum": ([vh(0, 5, 42, 1000, 0, 0) + udp_frame(3500, seed=False)], 0, ""),
    "bad_tcp_partial_offset": ([vh(NC, 1, 54, 1448, 34, 6) + tcp_frame(3000)], 0, ""),
    "short_frame": ([vh() + b"\x01" * 10], 0, ""),
    "short_header": ([b"\x00" * 6], 0, ""),
    "hdr_len_past_end": ([vh(0, 0, 200, 0, 0, 0) + tcp_frame(20, seed=False)], 0, ""),
    "veth_tso_off": ([vh(NC, 1, 54, 1448, 34, 16) + tcp_frame(3 * 1448 + 7, dst=HB)], 0,
                     "tso off"),
    "veth_tso_on": ([vh(NC, 1, 54, 1448, 34, 16) + tcp_frame(3 * 1448 + 7, dst=HB)], 0, ""),
    "veth_csum_off": ([vh(NC, 0, 0, 0, 34, 16) + tcp_frame(700, dst=HB)], 0,
                      "tx-checksum-ip-generic off"),
    "veth_tx_off_software_everything": ([vh(NC, 1, 54, 1448, 34, 16)
                                         + tcp_frame(3 * 1448 + 7, dst=HB)], 0, "tx off"),
    "veth_gso_off_tso_off": ([vh(NC, 1, 54, 500, 34, 16) + tcp_frame(1700, dst=HB)], 0,
                             "tso off gso off"),
}


@pytest.fixture(scope="module")
def kernel_results() -> dict[str, tuple[list[int], list[bytes], list[bytes]]]:
    return {name: run_kernel(*args) for name, args in CASES.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tap_vnet_hdr_matches_kernel(name: str, kernel_results: dict) -> None:
    k = kernel_results[name]
    n = run_netstack(*CASES[name])
    assert n[0] == k[0], "write() results"
    assert [b.hex() for b in n[1]] == [b.hex() for b in k[1]], "tap1 reader"
    assert [b.hex() for b in n[2]] == [b.hex() for b in k[2]], "veth peer"


def _pcap(frames: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", i, 0, len(f), len(f)) + f
    return out


@pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark")
def test_tshark_validates_every_complete_checksum() -> None:
    """Every frame netstack produced whose checksums are complete (virtio flags 0) passes
    tshark's IPv4/TCP/UDP checksum validation; the test fails on a single bad one."""
    frames: list[bytes] = []
    for name, args in CASES.items():
        if name.startswith("bad") or name.startswith("short"):
            continue
        _, out1, got = run_netstack(*args)
        frames += [b[10:] for b in out1 if b[0] == 0]
        # a veth that checksums leaves PARTIAL checksums in what its peer captures
        frames += got if args[2] in ("tx off", "tx-checksum-ip-generic off") else []
    assert len(frames) > 20
    with tempfile.NamedTemporaryFile(suffix=".pcap") as f:
        f.write(_pcap(frames))
        f.flush()
        r = subprocess.run(
            ["tshark", "-r", f.name, "-o", "ip.check_checksum:TRUE", "-o",
             "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-T", "fields",
             "-e", "ip.checksum.status", "-e", "tcp.checksum.status", "-e",
             "udp.checksum.status"], capture_output=True, text=True, timeout=60)
    rows = [ln.split("\t") for ln in r.stdout.splitlines()]
    assert len(rows) == len(frames)
    for row in rows:
        vals = [v for v in row if v]
        assert vals and all(v == "1" for v in vals), row  # 1 = Good, 0 = Bad
