"""Independent packet builders and checkers for the offload tests (no netstack code in
the checksum arithmetic: a plain RFC 1071 loop), so a bug in the code under test cannot
hide itself."""
from __future__ import annotations

import struct

from netstack.packet.skb import CHECKSUM_PARTIAL, Packet

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
IP_A = bytes([10, 0, 0, 1])
IP_B = bytes([10, 0, 0, 2])
IP6_A = bytes.fromhex("fd000000000000000000000000000001")
IP6_B = bytes.fromhex("fd000000000000000000000000000002")


def rfc1071(data: bytes) -> int:
    """Reference ones'-complement checksum (word loop)."""
    if len(data) % 2:
        data += b"\0"
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(dst: bytes, src: bytes, etype: int) -> bytes:
    return dst + src + struct.pack("!H", etype)


def ipv4(payload_len: int, proto: int, src: bytes = IP_A, dst: bytes = IP_B, ident: int = 0x1234,
         df: bool = True, ttl: int = 64, tos: int = 0) -> bytes:
    h = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + payload_len, ident, 0x4000 if df else 0,
                    ttl, proto, 0, src, dst)
    c = rfc1071(h)
    return h[:10] + struct.pack("!H", c) + h[12:]


def ipv6(payload_len: int, nxt: int, src: bytes = IP6_A, dst: bytes = IP6_B, hlim: int = 64) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, payload_len, nxt, hlim, src, dst)


def tcp(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes,
        pseudo: bytes, options: bytes = b"", window: int = 512) -> bytes:
    doff = (20 + len(options)) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, window, 0, 0) + options
    c = rfc1071(pseudo + h + payload)
    return h[:16] + struct.pack("!H", c) + h[18:] + payload


def udp(sport: int, dport: int, payload: bytes, pseudo: bytes | None) -> bytes:
    h = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    if pseudo is None:
        return h + payload
    c = rfc1071(pseudo + h + payload) or 0xFFFF
    return h[:6] + struct.pack("!H", c) + payload


def pseudo4(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    return src + dst + struct.pack("!BBH", 0, proto, length)


def pseudo6(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    return src + dst + struct.pack("!IxxxB", length, proto)


def tcp4_frame(payload: bytes, seq: int = 1000, flags: int = 0x18, ident: int = 0x1234,
               options: bytes = b"", sport: int = 4000, dport: int = 80, ack: int = 1,
               df: bool = True, ttl: int = 64) -> bytes:
    seg = tcp(sport, dport, seq, ack, flags, payload,
              pseudo4(IP_A, IP_B, 6, 20 + len(options) + len(payload)), options)
    return eth(MAC_B, MAC_A, 0x0800) + ipv4(len(seg), 6, ident=ident, df=df, ttl=ttl) + seg


def tcp6_frame(payload: bytes, seq: int = 1000, flags: int = 0x18, options: bytes = b"") -> bytes:
    seg = tcp(4000, 80, seq, 1, flags, payload,
              pseudo6(IP6_A, IP6_B, 6, 20 + len(options) + len(payload)), options)
    return eth(MAC_B, MAC_A, 0x86DD) + ipv6(len(seg), 6) + seg


def gso_packet(frame: bytes, l3: int, l4: int, gso_size: int, gso_type: int,
               csum_offset: int = 16) -> Packet:
    """A TX super-packet as the stack hands it to dev_queue_xmit: data at the MAC header,
    CHECKSUM_PARTIAL with the pseudo sum in the L4 check field."""
    from netstack.packet.checksum import pseudo_sum_v4, pseudo_sum_v6
    p = Packet(frame)
    d = p.data
    p.mac_header = d
    p.network_header = d + l3
    p.transport_header = d + l4
    p.protocol = struct.unpack("!H", frame[12:14])[0]
    b = p.buf
    nh = d + l3
    proto = 6 if csum_offset == 16 else 17
    n = len(frame) - l4
    if b[nh] >> 4 == 4:
        ps = pseudo_sum_v4(bytes(b[nh + 12:nh + 16]), bytes(b[nh + 16:nh + 20]), n, proto)
    else:
        ps = pseudo_sum_v6(bytes(b[nh + 8:nh + 24]), bytes(b[nh + 24:nh + 40]), n, proto)
    f = d + l4 + csum_offset
    b[f:f + 2] = ps.to_bytes(2, "big")
    p.ip_summed = CHECKSUM_PARTIAL
    p.csum_start = d + l4
    p.csum_offset = csum_offset
    p.gso_size = gso_size
    p.gso_type = gso_type
    p.gso_segs = 0
    return p


def check_l4(frame: bytes, off_l3: int) -> bool:
    """Verify the IPv4/IPv6 header and TCP/UDP checksum of one frame, independently."""
    v = frame[off_l3] >> 4
    if v == 4:
        ihl = (frame[off_l3] & 15) * 4
        if rfc1071(frame[off_l3:off_l3 + ihl]) != 0:
            return False
        tot = struct.unpack("!H", frame[off_l3 + 2:off_l3 + 4])[0]
        proto = frame[off_l3 + 9]
        l4 = frame[off_l3 + ihl:off_l3 + tot]
        ps = pseudo4(frame[off_l3 + 12:off_l3 + 16], frame[off_l3 + 16:off_l3 + 20], proto, len(l4))
    else:
        plen = struct.unpack("!H", frame[off_l3 + 4:off_l3 + 6])[0]
        proto = frame[off_l3 + 6]
        l4 = frame[off_l3 + 40:off_l3 + 40 + plen]
        ps = pseudo6(frame[off_l3 + 8:off_l3 + 24], frame[off_l3 + 24:off_l3 + 40], proto, len(l4))
    if proto == 17 and l4[6:8] == b"\0\0":
        return v == 4
    return rfc1071(ps + l4) == 0


def vxlan_gso_packet(payload: bytes, mss: int, outer_csum: bool, vni: int = 42,
                     inner_flags: int = 0x18, remcsum: bool = False) -> Packet:
    """A VXLAN-encapsulated TCP super-packet as a vxlan device hands it to the stack:
    inner PARTIAL at the inner TCP header, encapsulation and inner_* set, outer UDP check
    = the outer pseudo sum (udp_set_csum's GSO branch) or 0."""
    from netstack.core.gso import (SKB_GSO_TCPV4, SKB_GSO_TUNNEL_REMCSUM,
                                   SKB_GSO_UDP_TUNNEL, SKB_GSO_UDP_TUNNEL_CSUM)
    from netstack.packet.checksum import pseudo_sum_v4
    inner_seg = tcp(4000, 80, 5000, 9, inner_flags, payload,
                    pseudo4(bytes([192, 168, 0, 1]), bytes([192, 168, 0, 2]), 6, 20 + len(payload)))
    inner = (eth(bytes.fromhex("0a0000000002"), bytes.fromhex("0a0000000001"), 0x0800)
             + ipv4(len(inner_seg), 6, src=bytes([192, 168, 0, 1]), dst=bytes([192, 168, 0, 2]),
                    ident=0x100) + inner_seg)
    vx = struct.pack("!II", 0x08000000, vni << 8)
    ulen = 8 + len(vx) + len(inner)
    uh = struct.pack("!HHHH", 49152, 4789, ulen, 0)
    frame = eth(MAC_B, MAC_A, 0x0800) + ipv4(ulen, 17, ident=0x2000) + uh + vx + inner
    p = Packet(frame)
    d = p.data
    p.mac_header = d
    p.network_header = d + 14
    p.transport_header = d + 34
    p.inner_mac_header = d + 50
    p.inner_network_header = d + 64
    p.inner_transport_header = d + 84
    p.inner_protocol = 0x6558
    p.encapsulation = True
    p.protocol = 0x0800
    b = p.buf
    it = d + 84
    ps_in = pseudo_sum_v4(bytes([192, 168, 0, 1]), bytes([192, 168, 0, 2]), len(inner_seg), 6)
    b[it + 16:it + 18] = ps_in.to_bytes(2, "big")
    if outer_csum:
        ps = pseudo_sum_v4(IP_A, IP_B, ulen, 17)
        b[d + 40:d + 42] = ps.to_bytes(2, "big")
    p.ip_summed = CHECKSUM_PARTIAL
    p.csum_start = it
    p.csum_offset = 16
    p.gso_size = mss
    p.gso_type = SKB_GSO_TCPV4 | (SKB_GSO_UDP_TUNNEL_CSUM if outer_csum else SKB_GSO_UDP_TUNNEL)
    if remcsum:
        p.gso_type |= SKB_GSO_TUNNEL_REMCSUM
    return p


def gre_gso_packet(payload: bytes, mss: int, csum: bool, key: int | None = None) -> Packet:
    """An IPv4-in-GRE TCP super-packet (ip_gre's xmit state): GRE[_CSUM] GSO type,
    inner_protocol IPv4, the GRE checksum field zero."""
    from netstack.core.gso import SKB_GSO_GRE, SKB_GSO_GRE_CSUM, SKB_GSO_TCPV4
    from netstack.packet.checksum import pseudo_sum_v4
    inner_seg = tcp(4000, 80, 5000, 9, 0x18, payload,
                    pseudo4(bytes([192, 168, 0, 1]), bytes([192, 168, 0, 2]), 6, 20 + len(payload)))
    inner = ipv4(len(inner_seg), 6, src=bytes([192, 168, 0, 1]), dst=bytes([192, 168, 0, 2]),
                 ident=0x100) + inner_seg
    flags = (0x8000 if csum else 0) | (0x2000 if key is not None else 0)
    gre = struct.pack("!HH", flags, 0x0800)
    if csum:
        gre += b"\0\0\0\0"
    if key is not None:
        gre += struct.pack("!I", key)
    frame = eth(MAC_B, MAC_A, 0x0800) + ipv4(len(gre) + len(inner), 47, ident=0x3000) + gre + inner
    p = Packet(frame)
    d = p.data
    gl = len(gre)
    p.mac_header = d
    p.network_header = d + 14
    p.transport_header = d + 34
    p.inner_mac_header = d + 34 + gl
    p.inner_network_header = d + 34 + gl
    p.inner_transport_header = d + 54 + gl
    p.inner_protocol = 0x0800
    p.encapsulation = True
    p.protocol = 0x0800
    it = d + 54 + gl
    ps_in = pseudo_sum_v4(bytes([192, 168, 0, 1]), bytes([192, 168, 0, 2]), len(inner_seg), 6)
    p.buf[it + 16:it + 18] = ps_in.to_bytes(2, "big")
    p.ip_summed = CHECKSUM_PARTIAL
    p.csum_start = it
    p.csum_offset = 16
    p.gso_size = mss
    p.gso_type = SKB_GSO_TCPV4 | (SKB_GSO_GRE_CSUM if csum else SKB_GSO_GRE)
    return p
