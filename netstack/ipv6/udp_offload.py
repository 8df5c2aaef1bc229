"""UDP over IPv6 segmentation and coalescing (net/ipv6/udp_offload.c, Linux 6.18).

Same work as :mod:`netstack.ipv4.udp_offload` over the IPv6 pseudo header: UDP tunnels
and UDP_L4 segmentation (IPv6 UFO is not supported: it raises NotSupported), tunnel GRO
through the tunnel socket, plain UDP GRO with rx-udp-gro-forwarding / UDP_GRO.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.core.gro import (ip6_gro_compute_pseudo, skb_gro_checksum_try_convert,
                               skb_gro_checksum_validate_zero_check)
from netstack.core.gso import GsoCb, get16, put16
from netstack.ipv4.udp_offload import _tunnel_sock, _udp_ufo_fragment, udp_gro_complete, udp_gro_receive
from netstack.packet.checksum import pseudo_sum_v6
from netstack.packet.skb import Packet

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.gro import Napi


def udp6_ufo_fragment(pkt: Packet, features: frozenset[str], cb: GsoCb) -> list[Packet] | None:
    """``udp6_ufo_fragment``: tunnels and UDP_L4 as for IPv4."""
    return _udp_ufo_fragment(pkt, features, cb, True)


def udp6_gro_receive(napi: "Napi", head: list[Packet], pkt: Packet) -> Packet | None:
    """``udp6_gro_receive``: over IPv6 a zero checksum is not "none" for GRO: it is
    validated like any other (``skb_gro_checksum_validate_zero_check`` still accepts
    it, as the kernel does; the socket decides later)."""
    cbp = pkt.cb
    uh = cbp.off
    if pkt.tail - uh < 8:
        cbp.flush = 1
        return None
    check = get16(pkt.buf, uh + 6)
    if not cbp.flush:
        if skb_gro_checksum_validate_zero_check(napi, pkt, 17, check, ip6_gro_compute_pseudo):
            cbp.flush = 1
            return None
        if check:
            skb_gro_checksum_try_convert(pkt, 17, ip6_gro_compute_pseudo)
    cbp.is_ipv6 = True
    sk = _tunnel_sock(pkt, True, uh)
    return udp_gro_receive(napi, head, pkt, uh, sk)


def udp6_gro_complete(napi: "Napi", pkt: Packet, nhoff: int) -> int:
    """``udp6_gro_complete``: pseudo seed in a non-zero check field, then the common part."""
    b = pkt.buf
    nh = pkt.network_header   # ipv6_hdr(skb), as udp4_gro_complete
    if get16(b, nhoff + 6):
        put16(b, nhoff + 6, pseudo_sum_v6(bytes(b[nh + 8:nh + 24]), bytes(b[nh + 24:nh + 40]),
                                          pkt.tail - nhoff, 17))
    return udp_gro_complete(napi, pkt, nhoff, True)
