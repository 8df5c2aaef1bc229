"""``bond_xmit_hash`` (drivers/net/bonding/bond_main.c) for the six xmit_hash_policy values.

Why it is written over raw frame bytes: the kernel hashes ``skb->data`` (the Ethernet
header onwards) with ``skb->protocol`` as the L3 type and ``skb_network_offset`` as the L3
offset, reading 32-bit fields *in host memory order*.  netstack reproduces an x86-64
(little-endian) host: an IPv4 address or the port pair is read as a little-endian u32 of
its network bytes, exactly as ``(__force u32)flow_get_u32_src()`` and
``memcpy(&hash, &flow.ports.ports, 4)`` do there.

- layer2: ``h_dest[5] ^ h_source[5] ^ ntohs(h_proto)`` (``bond_eth_hash``).
- layer2+3 / encap2+3: the layer2 value ``^ saddr ^ daddr`` then ``h ^= h >> 16;
  h ^= h >> 8`` (``bond_ip_hash``); IPv6 addresses go through ``ipv6_addr_hash``.
- layer3+4 / encap3+4: the port pair (or the ICMP type/code/echo-id word when the echo id
  is present) instead of the layer2 value, the same folds, then ``>> 1``.
- encap*: the addresses/ports come from the full flow dissector (``flow_keys_bonding``:
  through GRE / IP-in-IP to the innermost header); encap3+4 returns ``skb->hash`` when the
  skb carries an L4 hash.
- vlan+srcmac: ``vlan_tci ^ smac[0..2] ^ smac[3..5]`` (24-bit integers; the whole TCI of
  the out-of-band tag, PCP included, as ``skb_vlan_tag_get``).

When the L3 parse fails (non-IP, truncated header) every policy but vlan+srcmac falls
back to the layer2 hash, as ``__bond_xmit_hash`` does.
"""
from __future__ import annotations

from netstack.packet.flow_dissector import (FLOW_DISSECTOR_KEY_IPV4_ADDRS,
                                            FLOW_DISSECTOR_KEY_IPV6_ADDRS, flow_dissect,
                                            proto_ports_offset)

# enum netdev_lag_hash / BOND_XMIT_POLICY_* (include/uapi/linux/if_bonding.h)
BOND_XMIT_POLICY_LAYER2 = 0
BOND_XMIT_POLICY_LAYER34 = 1
BOND_XMIT_POLICY_LAYER23 = 2
BOND_XMIT_POLICY_ENCAP23 = 3
BOND_XMIT_POLICY_ENCAP34 = 4
BOND_XMIT_POLICY_VLAN_SRCMAC = 5

XMIT_HASH_POLICY_NAMES = ("layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4",
                          "vlan+srcmac")

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
IPPROTO_ICMP = 1
IPPROTO_ICMPV6 = 58
_M32 = 0xFFFFFFFF

#: icmp_has_id (net/core/flow_dissector.c): echo/timestamp types of ICMP and ICMPv6
_ICMP_HAS_ID = frozenset({0, 8, 13, 14, 128, 129})
#: icmp_is_err (include/linux/icmp.h)
_ICMP_ERRORS = frozenset({3, 4, 5, 11, 12})


def _le32(b: bytes | bytearray | memoryview, off: int) -> int:
    return int.from_bytes(b[off:off + 4], "little")


def ipv6_addr_hash(a: bytes) -> int:
    """include/net/ipv6.h ``ipv6_addr_hash``: the XOR of the four host-order words."""
    return _le32(a, 0) ^ _le32(a, 4) ^ _le32(a, 8) ^ _le32(a, 12)


def bond_eth_hash(frame: bytes | bytearray | memoryview) -> int:
    """``bond_eth_hash``: 0 when the Ethernet header is not there."""
    if len(frame) < 14:
        return 0
    return frame[5] ^ frame[11] ^ ((frame[12] << 8) | frame[13])


def bond_vlan_srcmac_hash(frame: bytes | bytearray | memoryview, vlan_tci: int) -> int:
    """``bond_vlan_srcmac_hash``."""
    if len(frame) < 14:
        return 0
    vendor = (frame[6] << 16) | (frame[7] << 8) | frame[8]
    devpart = (frame[9] << 16) | (frame[10] << 8) | frame[11]
    return (vlan_tci & 0xFFFF) ^ vendor ^ devpart


class _Flow:
    """The parts of ``struct flow_keys`` the bonding hash reads."""

    __slots__ = ("src", "dst", "ports", "icmp")

    def __init__(self) -> None:
        self.src = 0
        self.dst = 0
        self.ports = 0     # the raw be32 port pair read as a host (LE) u32
        self.icmp = 0      # type | code << 8 | id << 16 (struct flow_dissector_key_icmp)


def _ports_at(frame: bytes | bytearray | memoryview, thoff: int, ip_proto: int) -> int:
    """``__skb_flow_get_ports``: 0 when the protocol has no ports or they are cut off."""
    poff = proto_ports_offset(ip_proto)
    if poff < 0 or thoff + poff + 4 > len(frame):
        return 0
    return _le32(frame, thoff + poff)


def _flow_ip(frame: bytes | bytearray | memoryview, fk: _Flow, l2_proto: int, nhoff: int,
             ip_proto: int, l34: bool) -> tuple[bool, int, int]:
    """``bond_flow_ip``: (ok, new nhoff, ip_proto) — ip_proto stays as it was for a
    fragment (-1 at the top level)."""
    hlen = len(frame)
    if l2_proto == ETH_P_IP:
        if nhoff + 20 > hlen:
            return False, nhoff, ip_proto
        fk.src = _le32(frame, nhoff + 12)
        fk.dst = _le32(frame, nhoff + 16)
        frag = ((frame[nhoff + 6] << 8) | frame[nhoff + 7]) & 0x3FFF
        proto = frame[nhoff + 9]
        nhoff += (frame[nhoff] & 0x0F) << 2
        if not frag:
            ip_proto = proto
    elif l2_proto == ETH_P_IPV6:
        if nhoff + 40 > hlen:
            return False, nhoff, ip_proto
        fk.src = ipv6_addr_hash(bytes(frame[nhoff + 8:nhoff + 24]))
        fk.dst = ipv6_addr_hash(bytes(frame[nhoff + 24:nhoff + 40]))
        ip_proto = frame[nhoff + 6]
        nhoff += 40
    else:
        return False, nhoff, ip_proto
    if l34 and ip_proto >= 0:
        fk.ports = _ports_at(frame, nhoff, ip_proto)
    return True, nhoff, ip_proto


def _icmp_tci(frame: bytes | bytearray | memoryview, thoff: int) -> tuple[int, int]:
    """``skb_flow_get_icmp_tci``: (key word, type); the key stays 0 when cut off."""
    if thoff + 8 > len(frame):
        return 0, -1
    t, c = frame[thoff], frame[thoff + 1]
    ident = 0
    if t in _ICMP_HAS_ID:
        ident = (frame[thoff + 4] << 8) | frame[thoff + 5]
        ident = ident if ident else 1
    return t | c << 8 | ident << 16, t


def _flow_dissect(policy: int, frame: bytes | bytearray | memoryview, l2_proto: int,
                  nhoff: int) -> _Flow | None:
    """``bond_flow_dissect`` for layer2+3 / layer3+4 (the encap policies use the full
    flow dissector, :func:`_flow_dissect_encap`)."""
    l34 = policy == BOND_XMIT_POLICY_LAYER34
    fk = _Flow()
    ok, nhoff, ip_proto = _flow_ip(frame, fk, l2_proto, nhoff, -1, l34)
    if not ok:
        return None
    if ip_proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        fk.icmp, itype = _icmp_tci(frame, nhoff)
        if ip_proto == IPPROTO_ICMP:
            if itype not in _ICMP_ERRORS:
                return fk
        elif itype < 0 or itype & 0x80:
            return fk
        # an ICMP error: hash on the embedded packet's addresses (and ports)
        ok, _, _ = _flow_ip(frame, fk, l2_proto, nhoff + 8, ip_proto, l34)
        return fk if ok else None
    return fk


def _flow_dissect_encap(frame: bytes | bytearray | memoryview, l2_proto: int,
                        nhoff: int) -> _Flow | None:
    """``__skb_flow_dissect(.., &flow_keys_bonding, ..)``: through the tunnels."""
    keys, ok = flow_dissect(bytes(frame), nhoff, proto=l2_proto, dissect_icmp=True)
    if not ok:
        return None
    fk = _Flow()
    if keys.addr_type == FLOW_DISSECTOR_KEY_IPV4_ADDRS:
        fk.src, fk.dst = _le32(keys.src, 0), _le32(keys.dst, 0)
    elif keys.addr_type == FLOW_DISSECTOR_KEY_IPV6_ADDRS:
        fk.src, fk.dst = ipv6_addr_hash(keys.src), ipv6_addr_hash(keys.dst)
    sp, dp = keys.src_port, keys.dst_port
    fk.ports = int.from_bytes(bytes([sp >> 8, sp & 0xFF, dp >> 8, dp & 0xFF]), "little")
    fk.icmp = keys.icmp_type | keys.icmp_code << 8 | keys.icmp_id << 16
    return fk


def bond_ip_hash(h: int, fk: _Flow, policy: int) -> int:
    """``bond_ip_hash``."""
    h = (h ^ fk.dst ^ fk.src) & _M32
    h ^= h >> 16
    h ^= h >> 8
    if policy in (BOND_XMIT_POLICY_LAYER34, BOND_XMIT_POLICY_ENCAP34):
        return h >> 1
    return h


def bond_xmit_hash(policy: int, frame: bytes | bytearray | memoryview, *,
                   protocol: int | None = None, nhoff: int = 14, vlan_tci: int = 0,
                   l4_hash: bool = False, skb_hash: int = 0) -> int:
    """``bond_xmit_hash`` of a frame starting at its Ethernet header.

    ``protocol`` is ``skb->protocol`` (default: the frame's EtherType), ``nhoff`` the
    network offset, ``vlan_tci`` the out-of-band tag (0 when none), ``l4_hash``/
    ``skb_hash`` the skb's hash state (encap3+4 only)."""
    if policy == BOND_XMIT_POLICY_ENCAP34 and l4_hash:
        return skb_hash & _M32
    if policy == BOND_XMIT_POLICY_VLAN_SRCMAC:
        return bond_vlan_srcmac_hash(frame, vlan_tci)
    if protocol is None:
        protocol = ((frame[12] << 8) | frame[13]) if len(frame) >= 14 else 0
    if policy == BOND_XMIT_POLICY_LAYER2:
        return bond_eth_hash(frame)
    if policy in (BOND_XMIT_POLICY_ENCAP23, BOND_XMIT_POLICY_ENCAP34):
        fk = _flow_dissect_encap(frame, protocol, nhoff)
    else:
        fk = _flow_dissect(policy, frame, protocol, nhoff)
    if fk is None:
        return bond_eth_hash(frame)
    if policy in (BOND_XMIT_POLICY_LAYER23, BOND_XMIT_POLICY_ENCAP23):
        h = bond_eth_hash(frame)
    else:
        h = fk.icmp if fk.icmp >> 16 else fk.ports
    return bond_ip_hash(h, fk, policy)


def pkt_xmit_hash(policy: int, pkt) -> int:  # type: ignore[no-untyped-def]
    """:func:`bond_xmit_hash` of an skb whose ``data`` is at the Ethernet header."""
    buf = pkt.buf
    frame = memoryview(buf)[pkt.data:pkt.tail]
    nh = pkt.network_header
    nhoff = nh - pkt.data if nh >= pkt.data else 14
    proto = pkt.protocol or None
    try:
        return bond_xmit_hash(policy, frame, protocol=proto, nhoff=nhoff,
                              vlan_tci=pkt.vlan_tci if pkt.vlan_proto else 0,
                              l4_hash=pkt.l4_hash, skb_hash=pkt.hash)
    finally:
        frame.release()
