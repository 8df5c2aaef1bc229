"""IPv6 address arithmetic and classification (net/ipv6/addrconf_core.c, include/net/ipv6.h).

Why a module of pure functions: every layer (addrconf, fib6, input, ND) asks the same
questions of an address — its type and scope (``__ipv6_addr_type``), the solicited-node
group (RFC 4291 §2.7.1), the Ethernet multicast mapping (``ipv6_eth_mc_map``, RFC 2464 §7),
the EUI-64 interface identifier (RFC 4291 appendix A, ``addrconf_ifid_eui48``).  Addresses
are always 16-byte ``bytes``.
"""
from __future__ import annotations

import ipaddress
from netstack.core.rtnetlink import (  # noqa: F401  (re-exported)
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RT_SCOPE_SITE,
    RT_SCOPE_UNIVERSE,
)

# include/net/ipv6.h IPV6_ADDR_* type bits
IPV6_ADDR_ANY = 0x0000
IPV6_ADDR_UNICAST = 0x0001
IPV6_ADDR_MULTICAST = 0x0002
IPV6_ADDR_LOOPBACK = 0x0010
IPV6_ADDR_LINKLOCAL = 0x0020
IPV6_ADDR_SITELOCAL = 0x0040
IPV6_ADDR_MAPPED = 0x1000
IPV6_ADDR_RESERVED = 0x2000

# Multicast scopes (RFC 4291 §2.7) = IPV6_ADDR_SCOPE_* values.
IPV6_ADDR_SCOPE_NODELOCAL = 0x01
IPV6_ADDR_SCOPE_LINKLOCAL = 0x02
IPV6_ADDR_SCOPE_SITELOCAL = 0x05
IPV6_ADDR_SCOPE_GLOBAL = 0x0E


ANY = bytes(16)
LOOPBACK = bytes(15) + b"\x01"
ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
ALL_ROUTERS = bytes.fromhex("ff020000000000000000000000000002")


class AddrError(ValueError):
    """Text that is not an IPv6 address/prefix."""


def a6(text: str) -> bytes:
    """Parse an IPv6 address in text form (``inet_pton``)."""
    try:
        return ipaddress.IPv6Address(text).packed
    except ValueError as e:
        raise AddrError(str(e)) from None


def s6(addr: bytes) -> str:
    """Format a 16-byte address as ``inet_ntop`` does (RFC 5952)."""
    return str(ipaddress.IPv6Address(bytes(addr)))


def ipv6_addr_type(a: bytes) -> int:
    """``__ipv6_addr_type`` type bits (without the scope part)."""
    b0 = a[0]
    if b0 == 0xFF:
        return IPV6_ADDR_MULTICAST
    if b0 == 0xFE and (a[1] & 0xC0) == 0x80:
        return IPV6_ADDR_LINKLOCAL | IPV6_ADDR_UNICAST
    if b0 == 0xFE and (a[1] & 0xC0) == 0xC0:
        return IPV6_ADDR_SITELOCAL | IPV6_ADDR_UNICAST
    if a == ANY:
        return IPV6_ADDR_ANY
    if a == LOOPBACK:
        return IPV6_ADDR_LOOPBACK | IPV6_ADDR_UNICAST
    if a[:10] == bytes(10) and a[10:12] == b"\xff\xff":
        return IPV6_ADDR_MAPPED
    return IPV6_ADDR_UNICAST


def is_multicast(a: bytes) -> bool:
    return a[0] == 0xFF


def is_linklocal(a: bytes) -> bool:
    return a[0] == 0xFE and (a[1] & 0xC0) == 0x80


def addr_src_scope(a: bytes) -> int:
    """``ipv6_addr_src_scope``: IPV6_ADDR_SCOPE_* of an address (RFC 6724 §3.1)."""
    if a[0] == 0xFF:
        return a[1] & 0x0F
    if a == LOOPBACK or is_linklocal(a):
        return IPV6_ADDR_SCOPE_LINKLOCAL
    if a[0] == 0xFE and (a[1] & 0xC0) == 0xC0:
        return IPV6_ADDR_SCOPE_SITELOCAL
    return IPV6_ADDR_SCOPE_GLOBAL


def rt_scope(a: bytes) -> int:
    """The rtnetlink scope ``ip addr`` shows for an address (``ipv6_addr_scope`` → RT_SCOPE)."""
    if a == LOOPBACK:
        return RT_SCOPE_HOST
    if is_linklocal(a):
        return RT_SCOPE_LINK
    if a[0] == 0xFE and (a[1] & 0xC0) == 0xC0:
        return RT_SCOPE_SITE
    return RT_SCOPE_UNIVERSE


def prefix_mask(a: bytes, plen: int) -> bytes:
    """``ipv6_addr_prefix``: keep the first ``plen`` bits."""
    if plen >= 128:
        return bytes(a)
    v = int.from_bytes(a, "big") & (((1 << plen) - 1) << (128 - plen))
    return v.to_bytes(16, "big")


def prefix_equal(a: bytes, b: bytes, plen: int) -> bool:
    """``ipv6_prefix_equal``."""
    if plen == 0:
        return True
    sh = 128 - plen
    return (int.from_bytes(a, "big") >> sh) == (int.from_bytes(b, "big") >> sh)


def common_prefix_len(a: bytes, b: bytes) -> int:
    """``ipv6_addr_diff``: length of the common prefix (source address selection rule 8)."""
    x = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    return 128 - x.bit_length()


def solicited_node(a: bytes) -> bytes:
    """``addrconf_addr_solict_mult``: ff02::1:ffXX:XXXX (RFC 4291 §2.7.1)."""
    return bytes.fromhex("ff0200000000000000000001ff") + bytes(a[13:16])


def eth_mc_map(a: bytes) -> bytes:
    """``ipv6_eth_mc_map``: 33:33 + the low 32 bits (RFC 2464 §7)."""
    return b"\x33\x33" + bytes(a[12:16])


def eui64_iid(mac: bytes, dev_id: int = 0) -> bytes:
    """``addrconf_ifid_eui48``: insert ff:fe and flip the universal/local bit; a device
    with a ``dev_id`` (ipvlan slaves sharing one MAC) puts it in place of ff:fe and keeps
    the U/L bit."""
    if dev_id:
        return bytes((mac[0], mac[1], mac[2], (dev_id >> 8) & 0xFF, dev_id & 0xFF,
                      mac[3], mac[4], mac[5]))
    return bytes((mac[0] ^ 0x02, mac[1], mac[2], 0xFF, 0xFE, mac[3], mac[4], mac[5]))


def link_local_from_mac(mac: bytes, dev_id: int = 0) -> bytes:
    """fe80::/64 + EUI-64 (``addrconf_addr_gen`` with addr_gen_mode eui64)."""
    return b"\xfe\x80" + bytes(6) + eui64_iid(mac, dev_id)
