"""VXLAN against the kernel: the same scenario script and frames on Linux 6.18 and on
netstack; the captured frames must be equal byte for byte once the fields the kernel
randomises are masked.

Topology (scenario ``base``): h1 --- v1r [r] v2r --- h2, with ``vx0`` in r over v2r
(VNI 42, remote h2).  Encap: h1 sends an IPv4 datagram to 192.168.0.1 (a permanent
neighbour behind vx0); r forwards it into the tunnel and h2 captures the VXLAN packet.
Decap: h2 sends a VXLAN packet to r whose inner frame is routed to h1.

Masked, because the kernel draws them from per-boot secrets: the outer IPv4 ID (and the
header checksum that covers it), and — unless ``srcport`` pins a one-port range — the
outer UDP source port (the inner flow hash) with the UDP checksum over it.  Everything
else is compared, the completed outer UDP checksum included when the port is pinned.
"""
from __future__ import annotations

import json
import struct

import dpkt
import pytest

from kernel.cases import MAC_H1, MAC_H2, MAC_R1, MAC_R2, eth, eth_ip, udp4
from kernel.compare import is_noise
from kernel.oracle import Send, run_kernel
from tunnels.conftest import run_ns

VX_MAC = "02:00:00:00:0a:fe"
PEER_MAC = "02:00:00:00:0a:01"

BASE = """\
ip netns add h1
ip netns add h2
ip netns add r
ip netns exec h1 sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec h1 sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec h2 sysctl -w net.ipv6.conf.all.disable_ipv6=1
ip netns exec h2 sysctl -w net.ipv6.conf.default.disable_ipv6=1
ip netns exec r sysctl -w net.ipv4.ip_forward=1
ip netns exec r sysctl -w net.ipv4.conf.all.rp_filter=0
ip netns exec r sysctl -w net.ipv4.conf.default.rp_filter=0
ip netns exec r sysctl -w net.ipv6.conf.all.accept_dad=0
ip netns exec r sysctl -w net.ipv6.conf.default.accept_dad=0
ip -n r link add v1r index 11 address 02:00:00:00:01:fe type veth peer name v1h index 21 address 02:00:00:00:01:01 netns h1
ip -n r link add v2r index 12 address 02:00:00:00:02:fe type veth peer name v2h index 22 address 02:00:00:00:02:01 netns h2
ip netns exec r sysctl -w net.ipv6.conf.v1r.disable_ipv6=1
ip -n r addr add 10.0.1.254/24 dev v1r
ip -n r addr add 10.0.2.254/24 dev v2r
ip -n r neigh add 10.0.1.1 lladdr 02:00:00:00:01:01 dev v1r nud permanent
ip -n r neigh add 10.0.2.1 lladdr 02:00:00:00:02:01 dev v2r nud permanent
"""
V6 = """\
ip -n r addr add 2001:db8:2::fe/64 dev v2r nodad
ip -n r neigh add 2001:db8:2::1 lladdr 02:00:00:00:02:01 dev v2r nud permanent
"""
UP = """\
ip netns exec r sysctl -w net.ipv6.conf.vx0.disable_ipv6=1
ip -n r addr add 192.168.0.254/24 dev vx0
ip -n r neigh add 192.168.0.1 lladdr 02:00:00:00:0a:01 dev vx0 nud permanent
ip -n h1 link set v1h up
ip -n h2 link set v2h up
ip -n r link set v1r up
ip -n r link set v2r up
ip -n r link set vx0 up
"""


def script(opts: str, v6: bool = False, remote: str | None = None) -> str:
    if remote is None:
        remote = "remote 2001:db8:2::1 local 2001:db8:2::fe" if v6 else \
            "remote 10.0.2.1 local 10.0.2.254"
    return (BASE + (V6 if v6 else "") +
            f"ip -n r link add vx0 index 13 address {VX_MAC} type vxlan id 42 {remote} "
            f"dev v2r dstport 4789 {opts}\n" + UP)


INNER = udp4("10.0.1.1", "192.168.0.1", 1111, 2222, b"hello vxlan", ident=0x4242)
INNER2 = udp4("10.0.1.1", "192.168.0.1", 1112, 2222, b"other flow", ident=0x4243)


def vxlan_hdr(vni: int = 42, flags: int = 0x08000000, low: int = 0) -> bytes:
    return struct.pack("!II", flags, (vni << 8) | low)


def outer4(payload: bytes, sport: int = 40000, csum: bool = True, bad_csum: bool = False,
           src: str = "10.0.2.1", dst: str = "10.0.2.254") -> bytes:
    """An IPv4/UDP/4789 packet from h2 built by dpkt (independent of netstack)."""
    u = dpkt.udp.UDP(sport=sport, dport=4789, ulen=8 + len(payload), data=payload)
    ip = dpkt.ip.IP(src=bytes(map(int, src.split("."))), dst=bytes(map(int, dst.split("."))),
                    p=17, ttl=64, id=0x777, data=u)
    raw = bytearray(bytes(ip))
    if not csum:
        raw[26:28] = b"\0\0"
    elif bad_csum:
        raw[26] ^= 0xFF
    return eth(MAC_R2, MAC_H2, 0x0800, bytes(raw))


def inner_frame(ip_pkt: bytes, src_mac: str = PEER_MAC, dst_mac: str = VX_MAC) -> bytes:
    return eth(dst_mac, src_mac, 0x0800, ip_pkt)


DECAP_IP = udp4("192.168.0.1", "10.0.1.1", 3333, 4444, b"from the tunnel", ident=0x1111)


def mask(frame: bytes, sport: bool) -> bytes:
    """Mask the outer IPv4 ID + header checksum (and the UDP source port + checksum)."""
    b = bytearray(frame)
    if (b[12] << 8 | b[13]) == 0x0800:
        b[18:20] = b"\0\0"
        b[24:26] = b"\0\0"
        if sport:
            b[34:36] = b"\0\0"
            b[40:42] = b"\0\0"
    else:
        if sport:
            b[54:56] = b"\0\0"
            b[60:62] = b"\0\0"
    return bytes(b)


def udp_ok(frame: bytes) -> bool:
    """The outer UDP checksum is valid (or absent)."""
    e = dpkt.ethernet.Ethernet(frame)
    ip = e.data
    u = ip.data
    if u.sum == 0:
        return True  # no checksum (IPv4, or IPv6 with udp6zerocsumtx)
    if isinstance(ip, dpkt.ip.IP):
        ph = ip.src + ip.dst + struct.pack("!BBH", 0, 17, len(bytes(u)))
    else:
        ph = ip.src + ip.dst + struct.pack("!IxxxB", len(bytes(u)), 17)
    return dpkt.in_cksum(ph + bytes(u)) == 0


ENCAP_SENDS = [Send("h1", "v1h", eth_ip(MAC_R1, MAC_H1, INNER)),
               Send("h1", "v1h", eth_ip(MAC_R1, MAC_H1, INNER2))]
CAPS = [("h2", "v2h"), ("h1", "v1h")]

_kcache: dict[str, object] = {}


def both(name: str, scr: str, sends: list[Send], queries: list[str] = ()):  # type: ignore[assignment]
    """Kernel (cached) and netstack runs; ``queries`` run on the kernel only (the
    netstack side is inspected through the Python API)."""
    if name not in _kcache:
        _kcache[name] = run_kernel(scr, sends, CAPS, list(queries), 0.1)
    k = _kcache[name]
    n, st = run_ns(scr, sends, CAPS, [])
    for res in (k, n):
        for key in res.frames:
            # the kernel's IGMP reports for a joined group are timer noise too
            res.frames[key] = [f for f in res.frames[key] if not is_noise(f) and
                               not (f[12:14] == b"\x08\x00" and f[23] == 2)]
    return k, n, st


ENCAP_CASES = {
    "default": ("", False, True),
    "pinned_srcport": ("srcport 5000 5001", False, False),
    "noudpcsum": ("noudpcsum", False, True),
    "v6": ("", True, True),
    "v6_zerocsum": ("udp6zerocsumtx udp6zerocsumrx", True, True),
    "remcsum": ("remcsumtx remcsumrx", False, True),
    "ttl_tos": ("ttl 9 tos 0x10 df set", False, True),
}


@pytest.mark.parametrize("case", sorted(ENCAP_CASES))
def test_encap_matches_kernel(kernel_ok: None, case: str) -> None:
    opts, v6, masked_sport = ENCAP_CASES[case]
    k, n, _ = both("encap_" + case, script(opts, v6), ENCAP_SENDS)
    kf = k.frames[("h2", "v2h")]
    nf = [f for f in n.frames[("h2", "v2h")] if not is_noise(f)]  # MLD, as kf
    assert len(kf) == 2, [f.hex() for f in kf]
    assert [mask(f, masked_sport) for f in nf] == [mask(f, masked_sport) for f in kf]
    for f in kf + nf:
        assert udp_ok(f)
    off = 54 if v6 else 34
    sports = [struct.unpack("!H", f[off:off + 2])[0] for f in nf]
    if case == "pinned_srcport":
        assert sports == [5000, 5000]
    else:
        assert all(32768 <= p < 60999 for p in sports)
    if "noudpcsum" in opts:
        assert kf[0][40:42] == b"\0\0" == nf[0][40:42]
    if "zerocsumtx" in opts:
        assert kf[0][60:62] == b"\0\0" == nf[0][60:62]


DECAP_CASES = {
    "plain": ("", [outer4(vxlan_hdr() + inner_frame(DECAP_IP))], 1),
    "zero_outer_csum": ("", [outer4(vxlan_hdr() + inner_frame(DECAP_IP), csum=False)], 1),
    "bad_outer_csum": ("", [outer4(vxlan_hdr() + inner_frame(DECAP_IP), bad_csum=True)], 0),
    "reserved_flag": ("", [outer4(vxlan_hdr(flags=0x08000100) + inner_frame(DECAP_IP))], 0),
    "reserved_low_byte": ("", [outer4(vxlan_hdr(low=1) + inner_frame(DECAP_IP))], 0),
    "no_i_flag": ("", [outer4(vxlan_hdr(flags=0) + inner_frame(DECAP_IP))], 0),
    "wrong_vni": ("", [outer4(vxlan_hdr(vni=43) + inner_frame(DECAP_IP))], 0),
    "truncated": ("", [outer4(vxlan_hdr()[:5])], 0),
    "own_mac_loop": ("", [outer4(vxlan_hdr() + inner_frame(DECAP_IP, src_mac=VX_MAC))], 0),
    "gbp_without_gbp": ("", [outer4(vxlan_hdr(flags=0x88000010) + inner_frame(DECAP_IP))], 0),
    "gbp": ("gbp", [outer4(vxlan_hdr(flags=0x88000010) + inner_frame(DECAP_IP))], 1),
}


@pytest.mark.parametrize("case", sorted(DECAP_CASES))
def test_decap_matches_kernel(kernel_ok: None, case: str) -> None:
    opts, frames, delivered = DECAP_CASES[case]
    sends = [Send("h2", "v2h", f) for f in frames]
    q = ["bridge -n r -j fdb show dev vx0"]
    k, n, st = both("decap_" + case, script(opts), sends, q)
    kf = k.frames[("h1", "v1h")]
    assert len(kf) == delivered, [f.hex() for f in kf]
    assert n.frames[("h1", "v1h")] == kf
    assert n.frames[("h2", "v2h")] == k.frames[("h2", "v2h")]
    # the FDB after learning, as `bridge -j fdb show dev vx0` prints it
    vx0 = st._dev("r", "vx0")
    mine = [{k2: v for k2, v in d.items() if k2 != "ifname"} for d in vx0.ndo_fdb_dump()]
    assert mine == json.loads(k.queries[q[0]])


def rco_frame(start_from_inner_eth: int) -> bytes:
    """A VXLAN-RCO packet whose inner UDP checksum field holds the pseudo-header sum (the
    sender offloaded it to us): start = inner L4 offset from the inner Ethernet header."""
    ip = bytearray(DECAP_IP)
    # the sender's PARTIAL state: the field holds ~pseudo folded (uninverted pseudo sum)
    src, dst = ip[12:16], ip[16:20]
    ulen = len(ip) - 20
    ph = src + dst + struct.pack("!BBH", 0, 17, ulen)
    s = sum(struct.unpack("!6H", ph))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    ip[26:28] = struct.pack("!H", s)
    low = 0x80 | (start_from_inner_eth >> 1)
    return outer4(vxlan_hdr(flags=0x08200000, low=low) + inner_frame(bytes(ip)))


RCO_CASES = {
    "rco_rx": ("remcsumrx", 1),
    "rco_without_remcsumrx": ("", 0),
}


@pytest.mark.parametrize("case", sorted(RCO_CASES))
def test_remcsum_rx_matches_kernel(kernel_ok: None, case: str) -> None:
    """RCO receive: the inner checksum is finished on the way out (default PARTIAL mode) and
    equals a full recompute; without ``remcsumrx`` the RCO bit is a reserved bit (drop)."""
    opts, delivered = RCO_CASES[case]
    sends = [Send("h2", "v2h", rco_frame(34))]
    k, n, _ = both("rco_" + case, script(opts), sends)
    kf = k.frames[("h1", "v1h")]
    assert len(kf) == delivered
    assert n.frames[("h1", "v1h")] == kf
    if delivered:
        # equal to the datagram with a fully recomputed checksum (TTL - 1)
        e = dpkt.ethernet.Ethernet(kf[0])
        u = e.data.data
        assert bytes(u) == bytes(dpkt.ip.IP(DECAP_IP).data)


# ------------------------------------------------------------------ RCO transmit
#: a local UDP sender in r (bash's /dev/udp: a connected UDP socket) started in the
#: background so that it fires after the harness opened its captures
LOCAL_SEND = ("( sleep 0.6; ip netns exec r bash -c "
              "'echo -n rco-payload > /dev/udp/192.168.0.1/9' ) >/dev/null 2>&1 &\n")
#: a frame r ignores (local experimental EtherType), sent late to keep the capture open
IDLE = Send("h2", "v2h", eth(MAC_R2, MAC_H2, 0x88B5, b"\0" * 46), delay_s=1.2)


def mask_rco(frame: bytes, rco: bool) -> bytes:
    """Mask what differs between two local senders and two hash secrets: outer ID, IP and
    UDP checksums, outer source port; inner IP ID and header checksum, inner source port
    and — when the sender finished it — the inner UDP checksum that covers that port (an
    RCO field holds only the pseudo-header sum, which does not)."""
    b = bytearray(mask(frame, True))
    inner_ip = 14 + 20 + 8 + 8 + 14
    b[inner_ip + 4:inner_ip + 6] = b"\0\0"
    b[inner_ip + 10:inner_ip + 12] = b"\0\0"
    b[inner_ip + 20:inner_ip + 22] = b"\0\0"
    if not rco:
        b[inner_ip + 26:inner_ip + 28] = b"\0\0"
    return bytes(b)


def _pseudo_sum(ip: bytes) -> int:
    ulen = len(ip) - 20
    s = sum(struct.unpack("!6H", ip[12:20] + struct.pack("!BBH", 0, 17, ulen)))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


@pytest.mark.parametrize("opts,rco", [("remcsumtx", True), ("", False)])
def test_remcsum_tx_matches_kernel(kernel_ok: None, opts: str, rco: bool) -> None:
    """A locally sent datagram is CHECKSUM_PARTIAL on vx0: with ``remcsumtx`` the VXLAN
    header carries C (bit 21) and start/UDP in the VNI word's low byte, the inner UDP field
    keeps the pseudo-header sum for the receiver, and the outer UDP checksum is valid;
    without it the inner checksum is finished (LCO keeps the outer one right)."""
    scr = script(opts)
    name = f"rcotx_{opts or 'off'}"
    if name not in _kcache:
        _kcache[name] = run_kernel(scr + LOCAL_SEND, [IDLE], CAPS, [], 0.2)
    kf = [f for f in _kcache[name].frames[("h2", "v2h")] if not is_noise(f)]  # type: ignore[attr-defined]
    from netstack.ipv4.udp import udp_socket
    n, st = run_ns(scr, [], CAPS)
    sk = udp_socket(st.world.netns("r"))
    sk.connect(("192.168.0.1", 9))
    sk.send(b"rco-payload")
    st.world.run_until_idle()
    nf = [f for f in n.frames[("h2", "v2h")] if not is_noise(f)]  # MLD, as kf
    assert len(kf) == 1 and len(nf) == 1, ([f.hex() for f in kf], [f.hex() for f in nf])
    assert mask_rco(nf[0], rco) == mask_rco(kf[0], rco)
    for f in (kf[0], nf[0]):
        assert udp_ok(f)
        vx = f[42:50]
        inner_ip = f[64:]
        field = struct.unpack("!H", inner_ip[26:28])[0]
        if rco:
            assert vx[:4] == b"\x08\x20\x00\x00"
            # start = 14 (eth) + 20 (IP) = 34 → 0x80 | 17
            assert vx[4:] == struct.pack("!I", (42 << 8) | 0x80 | 17)
            assert field == _pseudo_sum(inner_ip)
        else:
            assert vx == vxlan_hdr()
            u = inner_ip[20:]
            assert dpkt.in_cksum(inner_ip[12:20] + struct.pack("!BBH", 0, 17, len(u)) + u) == 0


# --------------------------------------------------------------- IPv6 underlay decap
def outer6(payload: bytes, zero_csum: bool | str = False) -> bytes:
    """An IPv6/UDP/4789 packet from h2 (2001:db8:2::1) to r (2001:db8:2::fe)."""
    import socket
    src = socket.inet_pton(socket.AF_INET6, "2001:db8:2::1")
    dst = socket.inet_pton(socket.AF_INET6, "2001:db8:2::fe")
    ulen = 8 + len(payload)
    u = bytearray(struct.pack("!HHHH", 40001, 4789, ulen, 0) + payload)
    if zero_csum is not True:
        ph = src + dst + struct.pack("!IxxxB", ulen, 17)
        u[6:8] = struct.pack("!H", dpkt.in_cksum(ph + bytes(u)) or 0xFFFF)
    if zero_csum == "bad":
        u[7] ^= 0x5A
    ip = struct.pack("!IHBB", 6 << 28, ulen, 17, 64) + src + dst
    return eth(MAC_R2, MAC_H2, 0x86DD, ip + bytes(u))


DECAP6_CASES = {
    "v6_plain": ("", False, 1),
    # measured on 6.18: the tunnel socket takes a zero checksum even without
    # udp6zerocsumrx (RFC 6935 leaves it to the tunnel)
    "v6_zero_csum_default": ("", True, 1),
    "v6_zero_csum_accepted": ("udp6zerocsumtx udp6zerocsumrx", True, 1),
    "v6_bad_csum": ("", "bad", 0),
}


@pytest.mark.parametrize("case", sorted(DECAP6_CASES))
def test_decap_ipv6_underlay_matches_kernel(kernel_ok: None, case: str) -> None:
    """IPv6 underlay: plain, zero checksums (accepted by the tunnel socket on 6.18 with
    or without udp6zerocsumrx) and a wrong checksum (UDP_CSUM drop)."""
    opts, zero, delivered = DECAP6_CASES[case]
    sends = [Send("h2", "v2h", outer6(vxlan_hdr() + inner_frame(DECAP_IP), zero))]
    k, n, st = both("decap6_" + case, script(opts, v6=True), sends)
    kf = k.frames[("h1", "v1h")]
    assert len(kf) == delivered
    assert n.frames[("h1", "v1h")] == kf
    if not delivered:
        assert st.drops("r")["UDP_CSUM"] == 1


# ------------------------------------------------------------------ multicast group
GROUP = "group 239.1.1.1 local 10.0.2.254"


def test_group_encap_matches_kernel(kernel_ok: None) -> None:
    """Flooding to the group: outer destination 239.1.1.1 in 01:00:5e:01:01:01, TTL 1
    (``ttl auto`` with a multicast remote)."""
    k, n, _ = both("group_encap", script("", remote=GROUP), ENCAP_SENDS[:1])
    kf = k.frames[("h2", "v2h")]
    nf = [f for f in n.frames[("h2", "v2h")] if not is_noise(f)]  # MLD, as kf
    assert len(kf) == 1
    assert kf[0][:6] == bytes.fromhex("01005e010101") and kf[0][22] == 1
    assert [mask(f, True) for f in nf] == [mask(f, True) for f in kf]


def test_group_decap_matches_kernel(kernel_ok: None) -> None:
    """A VXLAN packet to the joined group is received (and its source learned)."""
    f = bytearray(outer4(vxlan_hdr() + inner_frame(DECAP_IP), dst="239.1.1.1"))
    f[0:6] = bytes.fromhex("01005e010101")
    q = ["bridge -n r -j fdb show dev vx0"]
    k, n, st = both("group_decap", script("", remote=GROUP), [Send("h2", "v2h", bytes(f))], q)
    kf = k.frames[("h1", "v1h")]
    assert len(kf) == 1
    assert n.frames[("h1", "v1h")] == kf
    vx0 = st._dev("r", "vx0")
    mine = [{k2: v for k2, v in d.items() if k2 != "ifname"} for d in vx0.ndo_fdb_dump()]
    assert mine == json.loads(k.queries[q[0]])


def test_device_counters_match_kernel(kernel_ok: None) -> None:
    """vx0's rtnl_link_stats64 after two encapsulated and one decapsulated packet: the
    kernel counts the inner L3 length on transmit (``iptunnel_xmit_stats``: skb->len minus
    the inner network offset) and the inner length after the Ethernet pull on receive."""
    sends = ENCAP_SENDS + [Send("h2", "v2h", outer4(vxlan_hdr() + inner_frame(DECAP_IP)))]
    q = ["ip -n r -s -j link show vx0"]
    k, _n, st = both("counters", script(""), sends, q)
    ks = json.loads(k.queries[q[0]])[0]["stats64"]
    vx0 = st._dev("r", "vx0").stats
    assert (vx0.tx_packets, vx0.tx_bytes, vx0.rx_packets, vx0.rx_bytes) == (
        ks["tx"]["packets"], ks["tx"]["bytes"], ks["rx"]["packets"], ks["rx"]["bytes"])


def test_arp_is_flooded_through_the_default_entry(kernel_ok: None) -> None:
    """Without a neighbour entry for the inner destination, r's ARP request (broadcast)
    goes to the default remote, and the queued datagram follows the reply."""
    scr = script("").replace(
        "ip -n r neigh add 192.168.0.1 lladdr 02:00:00:00:0a:01 dev vx0 nud permanent\n", "")
    reply = eth("02:00:00:00:0a:fe", PEER_MAC, 0x0806, bytes(dpkt.arp.ARP(
        op=2, sha=bytes.fromhex("020000000a01"), spa=bytes([192, 168, 0, 1]),
        tha=bytes.fromhex("020000000afe"), tpa=bytes([192, 168, 0, 254]))))
    sends = ENCAP_SENDS[:1] + [Send("h2", "v2h", outer4(vxlan_hdr() + reply), delay_s=0.05)]
    k, n, _ = both("arp_flood", scr, sends)
    kf = k.frames[("h2", "v2h")]
    nf = [f for f in n.frames[("h2", "v2h")] if not is_noise(f)]  # MLD, as kf
    assert len(kf) == 2 and kf[0][50:56] == b"\xff" * 6      # inner broadcast ARP, then data
    assert [mask(f, True) for f in nf] == [mask(f, True) for f in kf]


def _with_tos(ip: bytes, tos: int, df: bool) -> bytes:
    b = bytearray(ip)
    b[1] = tos
    b[6] = 0x40 if df else 0
    b[10:12] = b"\0\0"
    b[10:12] = struct.pack("!H", dpkt.in_cksum(bytes(b[:20])))
    return bytes(b)


@pytest.mark.parametrize("inner_tos,df", [(0x2B, True), (0x29, False), (0x00, True)])
def test_inherit_tos_ttl_df_and_ecn_match_kernel(kernel_ok: None, inner_tos: int,
                                                  df: bool) -> None:
    """``tos inherit ttl inherit df inherit``: the outer TOS is the inner DS field with
    CE sent as ECT(0) (RFC 6040), the TTL the inner one after forwarding, DF the inner DF."""
    ip = _with_tos(INNER, inner_tos, df)
    sends = [Send("h1", "v1h", eth_ip(MAC_R1, MAC_H1, ip))]
    k, n, _ = both(f"inherit_{inner_tos:x}_{df}", script("tos inherit ttl inherit df inherit"),
                   sends)
    kf = k.frames[("h2", "v2h")]
    assert len(kf) == 1
    assert [mask(f, True) for f in n.frames[("h2", "v2h")]] == [mask(f, True) for f in kf]
    want_tos = (inner_tos & ~3) | (2 if inner_tos & 3 == 3 else inner_tos & 3)
    assert kf[0][15] == want_tos and kf[0][22] == 63
    assert bool(kf[0][20] & 0x40) == df


def test_bridge_fdb_append_head_end_replication_matches_kernel(kernel_ok: None) -> None:
    """``bridge fdb append 00:00:00:00:00:00 dev vx0 dst …`` adds a second flood target:
    a frame for an unknown MAC goes to both remotes; ``bridge -j fdb show dev vx0``
    (newest entry first) equals the kernel's."""
    scr = script("").replace(
        "ip -n r neigh add 192.168.0.1 lladdr 02:00:00:00:0a:01 dev vx0 nud permanent\n",
        "ip -n r neigh add 192.168.0.1 lladdr 02:00:00:00:0a:77 dev vx0 nud permanent\n") + (
        "bridge -n r fdb append 00:00:00:00:00:00 dev vx0 dst 10.0.2.1 port 4790 self\n"
        "bridge -n r fdb add 02:00:00:00:00:05 dev vx0 dst 10.0.2.1 vni 77 port 9999 self\n")
    q = ["bridge -n r -j fdb show dev vx0", "bridge -n r fdb show dev vx0"]
    name = "fdb_append"
    if name not in _kcache:
        _kcache[name] = run_kernel(scr, ENCAP_SENDS[:1], CAPS, q, 0.2)
    k = _kcache[name]
    n, st = run_ns(scr, ENCAP_SENDS[:1], CAPS, q)
    kf = [f for f in k.frames[("h2", "v2h")] if not is_noise(f)]  # type: ignore[attr-defined]
    nf = [f for f in n.frames[("h2", "v2h")] if not is_noise(f)]  # MLD, as kf
    # the clone for the appended remote leaves first, the default remote last
    assert [struct.unpack("!H", f[36:38])[0] for f in kf] == [4790, 4789]
    assert [mask(f, True) for f in nf] == [mask(f, True) for f in kf]
    assert json.loads(n.queries[q[0]]) == json.loads(k.queries[q[0]])  # type: ignore[attr-defined]
    assert n.queries[q[1]] == k.queries[q[1]]  # type: ignore[attr-defined]


FDB_OPS = """\
bridge -n r fdb append 00:00:00:00:00:00 dev vx0 dst 10.0.2.7 self
bridge -n r fdb append 00:00:00:00:00:00 dev vx0 dst 10.0.2.8 self
bridge -n r fdb add 02:00:00:00:00:05 dev vx0 dst 10.0.2.1 vni 77 port 9999 self
bridge -n r fdb add 02:00:00:00:00:06 dev vx0 dst 10.0.2.1 self static
bridge -n r fdb replace 02:00:00:00:00:05 dev vx0 dst 10.0.2.9 self
bridge -n r fdb del 00:00:00:00:00:00 dev vx0 dst 10.0.2.7 self
bridge -n r fdb add 02:00:00:00:00:07 dev vx0 dst 10.0.2.1 via v1r self
"""


def test_bridge_fdb_operations_match_kernel(kernel_ok: None) -> None:
    """append / add (vni, port, static, via) / replace / del of one remote: the FDB as
    ``bridge -j fdb show dev vx0`` lists it equals the kernel's."""
    scr = script("") + FDB_OPS
    q = ["bridge -n r -j fdb show dev vx0"]
    name = "fdb_ops"
    if name not in _kcache:
        _kcache[name] = run_kernel(scr, [], CAPS, q, 0.05)
    k = _kcache[name]
    n, _ = run_ns(scr, [], CAPS, q, 0.05)
    assert json.loads(n.queries[q[0]]) == json.loads(k.queries[q[0]])  # type: ignore[attr-defined]


@pytest.mark.parametrize("cmd", [
    "bridge -n r fdb add 02:00:00:00:00:05 dev vx0 dst 10.0.2.1 self",
    "bridge -n r fdb replace 00:00:00:00:00:00 dev vx0 dst 10.0.2.3 self",
    "bridge -n r fdb del 02:00:00:00:00:99 dev vx0 self",
    "bridge -n r fdb add 02:00:00:00:00:08 dev vx0 self",
])
def test_bridge_fdb_errors_match_kernel(kernel_ok: None, cmd: str) -> None:
    scr = script("") + "bridge -n r fdb add 02:00:00:00:00:05 dev vx0 dst 10.0.2.1 self\n"
    q = [cmd + " 2>&1; echo rc=$?"]
    name = "fdb_err_" + cmd
    if name not in _kcache:
        _kcache[name] = run_kernel(scr, [], CAPS, q, 0.05)
    k = _kcache[name]
    from netstack import Stack
    st = Stack()
    st.run_script(scr)
    r = st.command(cmd)
    assert k.queries[q[0]] == r.stdout + r.stderr + f"rc={r.rc}\n"  # type: ignore[attr-defined]


BYPASS = BASE + """\
ip -n r link add vx0 index 13 address 02:00:00:00:0a:fe type vxlan id 42 remote 10.0.2.254 dstport 4789
ip -n r link add vx1 index 14 address 02:00:00:00:0b:01 type vxlan id 43 remote 10.0.2.1 dstport 4789
ip netns exec r sysctl -w net.ipv6.conf.vx0.disable_ipv6=1
ip netns exec r sysctl -w net.ipv6.conf.vx1.disable_ipv6=1
ip -n r addr add 192.168.0.254/24 dev vx0
ip -n r addr add 192.168.1.254/24 dev vx1
ip -n r neigh add 192.168.0.1 lladdr 02:00:00:00:0b:01 dev vx0 nud permanent
bridge -n r fdb add 02:00:00:00:0b:01 dev vx0 dst 10.0.2.254 vni 43 self
ip -n h1 link set v1h up
ip -n h2 link set v2h up
ip -n r link set v1r up
ip -n r link set v2r up
ip -n r link set vx0 up
ip -n r link set vx1 up
"""


def test_encap_bypass_to_a_local_vxlan_matches_kernel(kernel_ok: None) -> None:
    """A remote that is r's own address: vxlan_encap_bypass hands the frame to the VXLAN
    device of the FDB entry's VNI (vx1) without any header; r forwards it back into vx0
    until the TTL runs out (ICMP time exceeded to h1), vx1 learns vx0's MAC behind
    127.0.0.1, and nothing reaches the wire toward h2."""
    q = ["bridge -n r -j fdb show dev vx1", "ip -n r -s -j link show vx1"]
    k, n, st = both("bypass", BYPASS, ENCAP_SENDS[:1], q)
    kf = k.frames[("h1", "v1h")]
    assert len(kf) == 1 and kf[0][34] == 11             # time exceeded
    assert [mask(f, False) for f in n.frames[("h1", "v1h")]] == [mask(f, False) for f in kf]
    assert k.frames[("h2", "v2h")] == [] == n.frames[("h2", "v2h")]
    vx1 = st._dev("r", "vx1")
    mine = [{k2: v for k2, v in d.items() if k2 != "ifname"} for d in vx1.ndo_fdb_dump()]
    assert mine == json.loads(k.queries[q[0]])
    ks = json.loads(k.queries[q[1]])[0]["stats64"]["rx"]
    assert (vx1.stats.rx_packets, vx1.stats.rx_bytes) == (ks["packets"], ks["bytes"])


def test_ipv6_group_encap_and_decap_match_kernel(kernel_ok: None) -> None:
    """An IPv6 multicast group (ff05::100 on v2r): flooding goes to 33:33:00:00:01:00 with
    hop limit 1, and a packet to the group is received (membership on the lower device;
    the kernel's MLD reports are filtered as noise)."""
    import socket
    grp = socket.inet_pton(socket.AF_INET6, "ff05::100")
    f = bytearray(outer6(vxlan_hdr() + inner_frame(DECAP_IP)))
    f[0:6] = bytes.fromhex("333300000100")
    f[14 + 24:14 + 40] = grp
    u = f[54:]
    ph = bytes(f[22:38]) + grp + struct.pack("!IxxxB", len(u), 17)
    u[6:8] = b"\0\0"
    f[60:62] = struct.pack("!H", dpkt.in_cksum(ph + bytes(u)) or 0xFFFF)
    sends = ENCAP_SENDS[:1] + [Send("h2", "v2h", bytes(f))]
    scr = script("", v6=True, remote="group ff05::100 local 2001:db8:2::fe")
    k, n, _ = both("group6", scr, sends)
    kf = k.frames[("h2", "v2h")]
    assert len(kf) == 1 and kf[0][:6] == bytes.fromhex("333300000100") and kf[0][21] == 1
    assert [mask(x, True) for x in n.frames[("h2", "v2h")]] == [mask(x, True) for x in kf]
    assert len(k.frames[("h1", "v1h")]) == 1
    assert n.frames[("h1", "v1h")] == k.frames[("h1", "v1h")]
