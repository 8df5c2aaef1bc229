"""Every checksum of the packets the tunnels generate, verified by Wireshark's dissectors
(``tshark -o udp.check_checksum:TRUE -o ip.check_checksum:TRUE``; GRE checksums are
always verified): outer IPv4 header, outer UDP (VXLAN, Geneve, FOU, GUE), GRE, and the
inner UDP checksums — including the ones a receiver restored from remote checksum
offload.  Skips when tshark is not installed.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile

import pytest

from tunnels.helpers import Topo, mac, udp_ip

INNER = udp_ip("192.168.9.1", "192.168.9.2", 1000, 7777, b"checked by tshark", ttl=33)
FRAME = mac("02:00:00:00:09:02") + mac("02:00:00:00:09:01") + b"\x08\x00" + INNER

SCRIPT = """\
ip -n a link add vx0 address 02:00:00:00:09:01 type vxlan id 42 remote 10.1.0.2 local 10.1.0.1 dev va dstport 4789
ip -n a link add vx1 address 02:00:00:00:09:03 type vxlan id 43 remote 10.1.0.2 local 10.1.0.1 dev va dstport 4789 remcsumtx
ip -n a link add gn0 address 02:00:00:00:09:05 type geneve id 77 remote 10.1.0.2 udpcsum
ip -n a link add g0 type gre remote 10.1.0.2 local 10.1.0.1 key 5 csum seq
ip -n a link add t0 type ipip remote 10.1.0.2 local 10.1.0.1 encap fou encap-sport 4000 encap-dport 5555 encap-csum
ip -n a addr add 10.1.0.11/24 dev va
ip -n a link add t1 type ipip remote 10.1.0.2 local 10.1.0.11 encap gue encap-sport 4001 encap-dport 5556 encap-csum encap-remcsum
ip -n a link add g1 type gre remote 10.1.0.2 local 10.1.0.1 csum encap gue encap-sport 4002 encap-dport 5557 encap-csum
ip -n a link set vx0 up
ip -n a link set vx1 up
ip -n a link set gn0 up
ip -n a link set g0 up
ip -n a link set t0 up
ip -n a link set t1 up
ip -n a link set g1 up
"""


def _pseudo(ip: bytes) -> int:
    ulen = len(ip) - 20
    s = sum(struct.unpack("!6H", ip[12:20] + struct.pack("!BBH", 0, 17, ulen)))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _pcap(frames: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", i, 0, len(f), len(f)) + f
    return out


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_verifies_every_generated_checksum() -> None:
    t = Topo(SCRIPT)
    t.send_l2("a", "vx0", FRAME)
    t.send_l2("a", "gn0", FRAME)
    t.send_l3("a", "g0", INNER)
    t.send_l3("a", "t0", INNER)
    t.send_l3("a", "g1", INNER)
    partial = bytearray(INNER)
    partial[26:28] = struct.pack("!H", _pseudo(INNER))
    t.send_l3("a", "t1", bytes(partial), partial=(20, 6))
    # remcsumtx: an inner PARTIAL frame, finished only by the receiver
    from netstack.core.dev import dev_queue_xmit
    from netstack.packet.skb import CHECKSUM_PARTIAL
    pkt = t.st.world.new_packet(FRAME[:14] + bytes(partial))
    pkt.protocol = 0x0800
    pkt.network_header = pkt.data + 14
    pkt.ip_summed = CHECKSUM_PARTIAL
    pkt.csum_start = pkt.data + 34
    pkt.csum_offset = 6
    dev_queue_xmit(pkt, t.dev("a", "vx1"))
    t.st.world.run_until_idle()
    frames = [f for f in t.wire if f[12:14] == b"\x08\x00"]  # the ARP for 10.1.0.11 aside
    assert len(frames) == 7
    with tempfile.NamedTemporaryFile(suffix=".pcap") as f:
        f.write(_pcap(frames))
        f.flush()
        res = subprocess.run(
            ["tshark", "-r", f.name, "-o", "udp.check_checksum:TRUE",
             "-o", "ip.check_checksum:TRUE", "-d", "udp.port==5555,ip",
             "-T", "fields", "-e", "frame.number", "-e", "ip.checksum.status",
             "-e", "udp.checksum.status", "-e", "gre.checksum.status",
             "-e", "vxlan.vni", "-e", "geneve.vni"],
            capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    rows = [line.split("\t") for line in res.stdout.strip().splitlines()]
    assert len(rows) == 7
    good = bad = 0
    for i, row in enumerate(rows):
        for col in row[1:4]:
            values = [v for v in col.split(",") if v]
            if i == 6:
                # VXLAN-RCO on the wire: the inner UDP field deliberately holds only the
                # pseudo-header sum (the receiver finishes it), so only the outer counts
                values = values[:1]
            for v in values:
                bad += v == "0"
                good += v == "1"
    assert bad == 0, res.stdout
    # outer IPv4 headers (7), outer UDP/GRE checksums and the inner ones tshark dissects
    assert good >= 7 + 6 + 4, res.stdout
    assert rows[0][4] == "42" and int(rows[1][5], 0) == 77 and rows[6][4] == "43"
