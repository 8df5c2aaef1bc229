"""A two-namespace netstack topology for tunnel tests, and independent frame builders.

``a:va`` (10.1.0.1, 02:00:00:00:00:0a) --- ``b:vb`` (10.1.0.2, 02:00:00:00:00:0b); each
test adds its tunnel devices.  Frames captured on ``b:vb`` have CHECKSUM_PARTIAL sums
finished as the kernel oracle's capture does.  Expected frames are built with ``dpkt`` and
``struct`` (never with netstack's own codecs).
"""
from __future__ import annotations

import struct

import dpkt

from netstack import Stack
from netstack.core.dev import dev_queue_xmit
from netstack.packet.skb import CHECKSUM_PARTIAL

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"
BASE = """\
ip netns add a
ip netns add b
ip netns exec a sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec a sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec b sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec b sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip -n a link add va address 02:00:00:00:00:0a type veth peer name vb address 02:00:00:00:00:0b netns b
ip -n a addr add 10.1.0.1/24 dev va
ip -n b addr add 10.1.0.2/24 dev vb
ip -n a neigh add 10.1.0.2 lladdr 02:00:00:00:00:0b dev va nud permanent
ip -n b neigh add 10.1.0.1 lladdr 02:00:00:00:00:0a dev vb nud permanent
ip -n a link set va up
ip -n b link set vb up
"""


def mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def ip4(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def udp_ip(src: str, dst: str, sport: int, dport: int, payload: bytes, ttl: int = 64,
           ident: int = 0x1111, df: bool = True) -> bytes:
    u = dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload)
    ip = dpkt.ip.IP(src=ip4(src), dst=ip4(dst), p=17, ttl=ttl, id=ident, data=u)
    ip.df = 1 if df else 0
    return bytes(ip)


def wire_tap(st: Stack, ns: str, dev: str, out: list[bytes], finish: bool = True) -> None:
    """Append every frame ``ns:dev`` receives to ``out``; with ``finish`` a
    CHECKSUM_PARTIAL sum is completed as the kernel oracle's capture sees it on a wire."""
    from kernel.oracle import complete_partial_checksum
    d = st._dev(ns, dev)

    def tap(pkt) -> None:  # type: ignore[no-untyped-def]
        f = bytes(pkt.buf[pkt.mac_header:pkt.tail])
        if finish and pkt.ip_summed == CHECKSUM_PARTIAL:
            f = complete_partial_checksum(f, pkt.csum_start - pkt.mac_header, pkt.csum_offset)
        out.append(f)

    d.net.add_rx_tap(d, tap)


def wire_and_tunnel_taps(st: Stack, ns: str = "d", wire_dev: str = "vd",
                         tun_dev: str = "t6") -> tuple[list[bytes], list[bytes]]:
    """The (wire, decapsulated) captures of the two-namespace IPv6 tunnel topologies: the
    underlay device (sums finished) and the tunnel device (as received)."""
    wire: list[bytes] = []
    got: list[bytes] = []
    wire_tap(st, ns, wire_dev, wire)
    wire_tap(st, ns, tun_dev, got, finish=False)
    return wire, got


class Topo:
    """The stack, the capture on ``b:vb`` and the tunnel device captures."""

    def __init__(self, extra: str) -> None:
        self.st = Stack()
        self.st.run_script(BASE + extra, name="tunnel.sh")
        self.wire: list[bytes] = []
        self._tap("b", "vb", self.wire)

    def _tap(self, ns: str, dev: str, out: list[bytes]) -> None:
        wire_tap(self.st, ns, dev, out)

    def capture(self, ns: str, dev: str) -> list[bytes]:
        out: list[bytes] = []
        self._tap(ns, dev, out)
        return out

    def dev(self, ns: str, name: str):  # type: ignore[no-untyped-def]
        return self.st._dev(ns, name)

    def send_l3(self, ns: str, dev: str, ip_packet: bytes, protocol: int = 0x0800,
                partial: tuple[int, int] | None = None) -> None:
        """Hand an inner IP packet to an L3 tunnel device's transmit (as IP output would).
        ``partial=(start, offset)`` marks it CHECKSUM_PARTIAL relative to the IP header."""
        d = self.dev(ns, dev)
        pkt = self.st.world.new_packet(ip_packet)
        pkt.protocol = protocol
        pkt.network_header = pkt.data
        pkt.transport_header = pkt.data + 20
        if partial is not None:
            pkt.ip_summed = CHECKSUM_PARTIAL
            pkt.csum_start = pkt.data + partial[0]
            pkt.csum_offset = partial[1]
        dev_queue_xmit(pkt, d)
        self.st.world.run_until_idle()

    def send_l2(self, ns: str, dev: str, frame: bytes) -> None:
        d = self.dev(ns, dev)
        pkt = self.st.world.new_packet(frame)
        pkt.protocol = (frame[12] << 8) | frame[13]
        pkt.network_header = pkt.data + 14
        dev_queue_xmit(pkt, d)
        self.st.world.run_until_idle()

    def inject(self, frame: bytes) -> None:
        """A frame from a:va to b (as a raw sender on a would send it)."""
        self.st.inject("a", "va", [frame])

    def drops(self, ns: str) -> dict[str, int]:
        """The namespace's drop counters by kernel drop-reason name."""
        return dict(self.st.world.netns(ns).drops.counts)


def ipv4_ok(frame: bytes) -> bool:
    """The outer IPv4 header checksum is valid."""
    return dpkt.in_cksum(frame[14:14 + (frame[14] & 0xF) * 4]) == 0


def mask_outer4(frame: bytes, sport: bool = False, udp_csum: bool = False) -> bytes:
    """Zero the outer IPv4 ID and header checksum (netstack's ID is a keyed hash), and
    optionally the outer UDP source port / checksum."""
    b = bytearray(frame)
    b[18:20] = b"\0\0"
    b[24:26] = b"\0\0"
    if sport:
        b[34:36] = b"\0\0"
    if udp_csum:
        b[40:42] = b"\0\0"
    return bytes(b)


def outer4(proto: int, payload: bytes, ttl: int = 64, df: bool = True, src: str = "10.1.0.1",
           dst: str = "10.1.0.2", tos: int = 0) -> bytes:
    """Ethernet + outer IPv4 as the tunnel end a would send it to b (ID and checksum 0,
    compare with :func:`mask_outer4`)."""
    tot = 20 + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, tos, tot, 0, 0x4000 if df else 0, ttl, proto, 0,
                      ip4(src), ip4(dst))
    return mac(MAC_B) + mac(MAC_A) + b"\x08\x00" + hdr + payload


def udp_hdr(sport: int, dport: int, payload: bytes, csum: int = 0) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), csum) + payload


def udp4_csum_ok(frame: bytes) -> bool:
    """The outer UDP checksum (IPv4) is 0 or valid."""
    ip = frame[14:]
    ihl = (ip[0] & 0xF) * 4
    u = ip[ihl:ihl + struct.unpack("!H", ip[ihl + 4:ihl + 6])[0]]
    if u[6:8] == b"\0\0":
        return True
    ph = ip[12:20] + struct.pack("!BBH", 0, 17, len(u))
    return dpkt.in_cksum(ph + u) == 0


def assert_cli_matches_kernel(cmd: str, ns_prefix: str, setup: str = "") -> None:
    """Run ``cmd`` (``{ns}`` stands for the namespace) with the machine's ``ip`` in a
    scratch namespace ``<ns_prefix>-<pid>`` and in netstack (namespace ``t``), both after
    the optional ``setup`` (``ip -n NS`` arguments, e.g. ``link add …``), and require the
    same exit code and stderr: iproute2 and the kernel are the oracle for the CLI's errors.
    """
    import os
    import subprocess
    ns = f"{ns_prefix}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    try:
        if setup:
            subprocess.run(f"ip -n {ns} {setup}".split(), check=True, capture_output=True)
        k = subprocess.run(cmd.format(ns=ns).split(), capture_output=True, text=True)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    st = Stack()
    st.run_script("ip netns add t\n" + (f"ip -n t {setup}\n" if setup else ""))
    n = st.command(cmd.format(ns="t"))
    assert (n.rc, n.stderr) == (k.returncode, k.stderr)


def link_detail_part(text: str) -> str:
    """The kind's part of ``ip -d link show DEV`` text: the third line up to
    ``addrgenmode`` (what follows is the device's generic detail)."""
    line = text.splitlines()[2]
    return line[:line.index(" addrgenmode")]
