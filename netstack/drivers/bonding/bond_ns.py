"""The IPv6 side of the bonding ARP monitor and 802.3ad neighbour broadcast
(drivers/net/bonding/bond_main.c, Linux 6.18).

``ns_ip6_target`` makes the ARP monitor (``arp_interval``) also probe IPv6 targets with
Neighbour Solicitations and count the answers as link traffic:

- :func:`ns_send_all` = ``bond_ns_send_all``: per target, ``ip6_route_output`` (6.18
  no longer pins the lookup to the bond: "bonding: don't set oif to bond dev when
  getting NS target destination"); no route → an NS from ``::``; a route through
  another device → skipped; through the bond → source from ``ipv6_dev_get_saddr``
  (``::`` when there is none).
- :func:`ns_send` = ``bond_ns_send``: ``ndisc_ns_create(slave_dev, target, saddr, 0)``
  — the target, a source link-layer option with the *slave's* address unless the
  source is ``::`` — sent by ``ndisc_send_skb`` on the slave to the target's
  solicited-node group (hop limit 255, the slave's ``ndisc_tclass``), and
  ``slave_update_last_tx``.
- :func:`na_rcv` = ``bond_na_rcv`` (from ``bond_rcv_validate`` when arp_validate
  applies to the slave): NS *and* NA count; the same three trust rules as
  ``bond_arp_rcv`` (active slave; a backup once the active slave has had validated
  traffic since it became active, with source and destination swapped; any slave while
  the current ARP slave sent within the last interval).
- :func:`validate_na` = ``bond_validate_na``: source not ``::``, destination ff02::1 or an
  address of the bond, source one of the targets → ``last_rx`` and the target's
  ``target_last_arp_rx`` slot (shared with the ARP targets' slots, as in the kernel).

Malformed IPv6 frames are simply not validated (``skb_header_pointer`` failing is
"goto out"): nothing here raises.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.errors import KernelError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.drivers.bonding.bond_main import BondDevice, Slave
    from netstack.packet.skb import Packet

IN6ADDR_ANY = bytes(16)
ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
NEXTHDR_ICMP = 58
NDISC_NEIGHBOUR_SOLICITATION = 135
NDISC_NEIGHBOUR_ADVERTISEMENT = 136
ND_OPT_SOURCE_LL_ADDR = 1
PACKET_OTHERHOST = 3
PACKET_LOOPBACK = 5
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD


def solicited_node(addr: bytes) -> bytes:
    """``addrconf_addr_solict_mult``: ff02::1:ffXX:XXXX."""
    return bytes.fromhex("ff0200000000000000000001ff") + addr[13:16]


def ns_create(slave_dev_addr: bytes, target: bytes, saddr: bytes) -> bytes:
    """The ICMPv6 body of ``ndisc_ns_create(dev, target, saddr, 0)``: 4 reserved bytes,
    the target, and the source link-layer option (type 1, 8 bytes for Ethernet) unless
    the source is unspecified (RFC 4861 §4.3)."""
    body = bytes(4) + target
    if saddr != IN6ADDR_ANY:
        body += bytes((ND_OPT_SOURCE_LL_ADDR, 1)) + bytes(slave_dev_addr)
    return body


def ns_send(bond: "BondDevice", s: "Slave", target: bytes, saddr: bytes) -> None:
    """``bond_ns_send``: the NS leaves on the slave itself to the solicited-node group
    of the target; ``last_tx`` is stamped."""
    from netstack.ipv6.ndisc import ndisc_send_skb
    from netstack.packet.icmpv6 import build_icmpv6
    net = s.dev.net
    if net is None or getattr(net, "ipv6", None) is None:
        return
    mcaddr = solicited_node(target)
    icmp = build_icmpv6(NDISC_NEIGHBOUR_SOLICITATION, 0,
                        ns_create(s.dev.address, target, saddr), saddr, mcaddr)
    s.last_tx = bond.now_ns()
    ndisc_send_skb(net, s.dev, mcaddr, saddr, icmp)


def ns_send_all(bond: "BondDevice", s: "Slave") -> None:
    """``bond_ns_send_all``: one NS per ``ns_ip6_target``."""
    targets = bond.params.ns_targets
    if not targets:
        return
    net = bond.net
    if net is None or getattr(net, "ipv6", None) is None:
        return
    from netstack.ipv6.addrconf import ipv6_dev_get_saddr
    from netstack.ipv6.route import Flowi6, ip6_route_output
    for t in targets:
        try:
            dst = ip6_route_output(net, Flowi6(daddr=t))
        except KernelError:
            # "there's no route to target - try to send arp probe to generate any
            # traffic (arp_validate=0)"
            ns_send(bond, s, t, IN6ADDR_ANY)
            continue
        if dst.dev is not bond:
            # bond_verify_device_path: no stacked (VLAN) uppers of a bond in netstack
            continue
        saddr = ipv6_dev_get_saddr(net, dst.dev, t)
        ns_send(bond, s, t, saddr if saddr is not None else IN6ADDR_ANY)


def has_this_ip6(bond: "BondDevice", addr: bytes) -> bool:
    """``bond_has_this_ip6``: ``ipv6_chk_addr(net, addr, bond, 0)`` — a non-tentative
    address of the bond, or a global one of any device."""
    if bond.net is None or getattr(bond.net, "ipv6", None) is None:
        return False
    from netstack.ipv6.addrconf import ipv6_chk_addr
    return ipv6_chk_addr(bond.net, addr, bond, False) is not None


def validate_na(bond: "BondDevice", s: "Slave", saddr: bytes, daddr: bytes) -> None:
    """``bond_validate_na``."""
    if saddr == IN6ADDR_ANY or (daddr != ALL_NODES and not has_this_ip6(bond, daddr)):
        return
    targets = bond.params.ns_targets
    if saddr not in targets:
        return
    i = targets.index(saddr)
    now = bond.now_ns()
    s.last_rx = now
    while len(s.target_last_arp_rx) <= i:
        s.target_last_arp_rx.append(0)
    s.target_last_arp_rx[i] = now


def na_rcv(bond: "BondDevice", pkt: "Packet", s: "Slave") -> None:
    """``bond_na_rcv``: an IPv6 header directly followed by an ICMPv6 NS or NA (no
    extension headers are walked, as ``skb_header_pointer(skb, 0, …)`` in the
    kernel)."""
    if pkt.pkt_type in (PACKET_OTHERHOST, PACKET_LOOPBACK):
        return
    buf, a = pkt.buf, pkt.data
    if pkt.tail - a < 48:
        return
    if buf[a + 6] != NEXTHDR_ICMP or buf[a + 40] not in (NDISC_NEIGHBOUR_SOLICITATION,
                                                        NDISC_NEIGHBOUR_ADVERTISEMENT):
        return
    saddr, daddr = bytes(buf[a + 8:a + 24]), bytes(buf[a + 24:a + 40])
    ca, cas = bond.curr_active, bond.current_arp_slave
    if s.is_active():
        validate_na(bond, s, saddr, daddr)
    elif ca is not None and bond._last_rx(ca) > ca.last_link_up:
        validate_na(bond, s, daddr, saddr)
    elif cas is not None and bond._in_interval(cas.last_tx, 1):
        validate_na(bond, s, saddr, daddr)


def should_broadcast_neighbor(bond: "BondDevice", pkt: "Packet") -> bool:
    """``bond_should_broadcast_neighbor`` (6.17): in 802.3ad with broadcast_neighbor,
    ARP frames and ICMPv6 NS/NA (read right after the MAC header) go to every usable
    slave."""
    from netstack.drivers.bonding.bond_options import BOND_MODE_8023AD
    p = bond.params
    if p.mode != BOND_MODE_8023AD or not p.broadcast_neighbor:
        return False
    buf = pkt.buf
    # on transmit the frame starts with its Ethernet header (skb_mac_header_len = 14)
    proto = pkt.protocol or ((buf[pkt.data + 12] << 8) | buf[pkt.data + 13])
    if proto == ETH_P_ARP:
        return True
    if proto != ETH_P_IPV6:
        return False
    off = pkt.data + 14
    if pkt.tail - off < 48:
        return False
    return buf[off + 6] == NEXTHDR_ICMP and buf[off + 40] in (NDISC_NEIGHBOUR_SOLICITATION,
                                                             NDISC_NEIGHBOUR_ADVERTISEMENT)
