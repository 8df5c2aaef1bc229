"""The skb checksum state machine: include/linux/skbuff.h "DOC: skb checksums".

This module is the contract other layers (tunnels, UDP, GRE, GSO/GRO) code against; each
helper reproduces the kernel function of the same name, with the same state changes.

Representation (netstack/packet/checksum.py conventions):

* ``pkt.csum`` is an *uninverted* 16-bit ones'-complement sum (the kernel's ``__wsum``
  folded to 16 bits; ones'-complement sums are equal modulo 0xffff so nothing is lost).
  Under CHECKSUM_COMPLETE it is the sum of the bytes from ``pkt.data`` to ``pkt.tail``.
* ``pkt.csum_start`` is an absolute offset into ``pkt.buf`` (``skb->head`` is offset 0,
  so it is the kernel's ``skb->csum_start``); ``pkt.csum_offset`` is relative to it.
* A CHECKSUM_PARTIAL packet's check field holds the folded, *uninverted* pseudo-header
  sum (``~csum_tcpudp_magic(…, 0)``); the device (or :func:`skb_checksum_help`) sums from
  csum_start to the end and stores the folded result.
* ``csum_level`` (0..3) counts the verified checksums beyond the first under
  CHECKSUM_UNNECESSARY; ``csum_valid`` records that the current layer was verified;
  ``csum_complete_sw`` (kept in the skb's ``__dict__``) that the COMPLETE value was
  computed in software, so a mismatch is a bad packet and not a device fault.

The rule the kernel follows and so do we: a checksum known to be bad is never "fixed" —
:func:`skb_checksum_help` only fills a CHECKSUM_PARTIAL field, and the receive helpers
only ever *report* a bad sum.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Callable

from netstack.packet.checksum import (csum_add, csum_fold, csum_partial, csum_sub,
                                      pseudo_sum_v4, pseudo_sum_v6)
from netstack.packet.crc32c import crc32c
from netstack.packet.skb import (CHECKSUM_COMPLETE, CHECKSUM_NONE, CHECKSUM_PARTIAL,
                                 CHECKSUM_UNNECESSARY, UNSET)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

__all__ = [
    "CSUM_MANGLED_0", "CHECKSUM_BREAK", "SKB_MAX_CSUM_LEVEL",
    "skb_checksum", "skb_checksum_start_offset", "skb_checksum_help",
    "skb_crc32c_csum_help", "skb_csum_hwoffload_help", "csum_features_ok",
    "udp_set_csum", "udp6_set_csum", "lco_csum",
    "skb_csum_unnecessary", "skb_decr_checksum_unnecessary",
    "skb_incr_checksum_unnecessary", "skb_checksum_init", "skb_checksum_init_zero_check",
    "skb_checksum_validate", "skb_checksum_validate_zero_check",
    "skb_checksum_simple_validate", "skb_checksum_complete", "skb_checksum_complete_raw",
    "skb_checksum_complete_unset", "skb_checksum_try_convert", "inet_compute_pseudo",
    "ip6_compute_pseudo", "null_compute_pseudo", "skb_postpull_rcsum",
    "skb_postpush_rcsum", "skb_pull_rcsum", "pskb_trim_rcsum", "remcsum_adjust",
    "skb_remcsum_adjust_partial", "skb_remcsum_process", "skb_partial_csum_set",
    "skb_csum_is_sctp",
]

#: A computed UDP checksum of 0 goes on the wire as 0xffff (RFC 768; include/net/checksum.h).
CSUM_MANGLED_0 = 0xFFFF
#: Packets up to this long are verified at once rather than deferred (skbuff.h).
CHECKSUM_BREAK = 76
#: ``SKB_MAX_CSUM_LEVEL``: csum_level is a 2-bit field.
SKB_MAX_CSUM_LEVEL = 3

#: Offsets of the check field in struct tcphdr / struct udphdr.
TCP_CSUM_OFFSET = 16
UDP_CSUM_OFFSET = 6

ComputePseudo = Callable[["Packet", int], int]


# ------------------------------------------------------------------ basic arithmetic
def skb_checksum(pkt: "Packet", offset: int, length: int, csum: int = 0) -> int:
    """``skb_checksum``: ones'-complement sum of ``length`` bytes from ``data + offset``."""
    s = pkt.data + offset
    return csum_partial(memoryview(pkt.buf)[s:s + length], csum)


def skb_checksum_start_offset(pkt: "Packet") -> int:
    """``skb_checksum_start_offset``: csum_start relative to ``data`` (may be negative
    once the headers before csum_start were pulled, e.g. after decapsulation)."""
    return pkt.csum_start - pkt.data


def skb_csum_is_sctp(pkt: "Packet") -> bool:
    """``skb_csum_is_sctp``: the PARTIAL checksum is SCTP's CRC32c (``csum_not_inet``)."""
    return bool(pkt.csum_not_inet)


def skb_partial_csum_set(pkt: "Packet", start: int, off: int) -> bool:
    """``skb_partial_csum_set`` (net/core/skbuff.c): make the packet CHECKSUM_PARTIAL with
    the checksum at ``start`` (from ``data``) + ``off``; False (the caller drops) when the
    field does not fit the linear data — the check virtio_net_hdr_to_skb relies on."""
    csum_start = pkt.data + start
    if start < 0 or off < 0 or start + off + 2 > len(pkt) or start > 0xFFFF:
        return False
    pkt.ip_summed = CHECKSUM_PARTIAL
    pkt.csum_start = csum_start
    pkt.csum_offset = off
    pkt.transport_header = csum_start
    return True


# --------------------------------------------------------------------- TX side
def skb_checksum_help(pkt: "Packet") -> int:
    """``skb_checksum_help`` (net/core/dev.c): software fallback for a CHECKSUM_PARTIAL
    packet the device cannot checksum.

    Sums from csum_start to the end (the field already holds the pseudo-header sum),
    stores ``csum_fold(sum)`` — 0 as 0xffff (CSUM_MANGLED_0) — at csum_start+csum_offset
    and sets CHECKSUM_NONE.  A COMPLETE packet is only marked NONE.  Returns 0, or
    -EINVAL for a GSO packet (it must be segmented first) or a start/field outside the
    packet, leaving the packet untouched, as the kernel's WARN paths do."""
    if pkt.ip_summed == CHECKSUM_COMPLETE:
        pkt.ip_summed = CHECKSUM_NONE
        return 0
    if pkt.gso_size:
        return -errno.EINVAL
    offset = pkt.csum_start - pkt.data
    n = pkt.tail - pkt.data
    if offset < 0 or offset >= n:
        return -errno.EINVAL
    field = offset + pkt.csum_offset
    if field + 2 > n:
        return -errno.EINVAL
    buf = pkt.buf
    s = pkt.csum_start
    c = csum_fold(csum_partial(memoryview(buf)[s:pkt.tail])) or CSUM_MANGLED_0
    f = pkt.data + field
    buf[f] = c >> 8
    buf[f + 1] = c & 0xFF
    pkt.ip_summed = CHECKSUM_NONE
    return 0


def skb_crc32c_csum_help(pkt: "Packet") -> int:
    """``skb_crc32c_csum_help``: SCTP's CRC32c (RFC 9260 App. B) in software, stored
    little-endian at csum_start+8, then ``skb_reset_csum_not_inet`` (NONE, inet again).
    The CRC covers the bytes as they are: the sender zeroed the field."""
    if pkt.ip_summed != CHECKSUM_PARTIAL or pkt.gso_size:
        return 0
    start = pkt.csum_start - pkt.data
    off = start + 8
    if start < 0 or off + 4 > len(pkt):
        return -errno.EINVAL
    crc = crc32c(memoryview(pkt.buf)[pkt.csum_start:pkt.tail])
    f = pkt.data + off
    pkt.buf[f:f + 4] = crc.to_bytes(4, "little")
    pkt.ip_summed = CHECKSUM_NONE
    pkt.csum_not_inet = False
    return 0


def _l3_protocol(pkt: "Packet") -> int:
    """``vlan_get_protocol``: the EtherType under an in-band or out-of-band tag."""
    return pkt.protocol


def csum_features_ok(pkt: "Packet", features: "set[str] | frozenset[str]") -> bool:
    """Can a device with ``features`` finish this CHECKSUM_PARTIAL packet's checksum?

    The decision of ``skb_csum_hwoffload_help``: ``tx-checksum-ip-generic`` (HW_CSUM)
    covers anything; ``tx-checksum-ipv4``/``-ipv6`` (IP_CSUM/IPV6_CSUM) only a TCP or
    UDP check field (csum_offset 16 or 6) and, for IPv6, only without extension headers;
    SCTP's CRC needs ``tx-checksum-sctp``."""
    if pkt.csum_not_inet:
        return "tx-checksum-sctp" in features
    if "tx-checksum-ip-generic" in features:
        return True
    if "tx-checksum-ipv4" in features or "tx-checksum-ipv6" in features:
        if (_l3_protocol(pkt) == 0x86DD and pkt.network_header != UNSET
                and pkt.transport_header - pkt.network_header != 40):
            return False
        return pkt.csum_offset in (TCP_CSUM_OFFSET, UDP_CSUM_OFFSET)
    return False


def skb_csum_hwoffload_help(pkt: "Packet", features: "set[str] | frozenset[str]") -> int:
    """``skb_csum_hwoffload_help`` (net/core/dev.c, 6.18): leave the checksum to the
    device when :func:`csum_features_ok`, else compute it now (CRC32c for SCTP)."""
    if csum_features_ok(pkt, features):
        return 0
    if pkt.csum_not_inet:
        return skb_crc32c_csum_help(pkt)
    return skb_checksum_help(pkt)


def lco_csum(pkt: "Packet") -> int:
    """``lco_csum`` (include/linux/skbuff.h): Local Checksum Offload.

    The outer L4 checksum of an encapsulated CHECKSUM_PARTIAL packet without summing the
    payload: the inner field holds ~(sum of inner L4 from csum_start) once the device
    finishes it, so sum(outer L4 .. csum_start) + ~inner_field is the outer sum.  The
    caller has seeded the outer check field (0 or the pseudo sum) before.  Returns the
    uninverted sum (to be combined with the outer pseudo header)."""
    f = pkt.csum_start + pkt.csum_offset
    inner = (pkt.buf[f] << 8) | pkt.buf[f + 1]
    partial = 0xFFFF0000 | (~inner & 0xFFFF)  # ~csum_unfold(field), 32-bit
    l4 = pkt.transport_header
    return csum_partial(memoryview(pkt.buf)[l4:pkt.csum_start], partial)


def _set_udp_check(pkt: "Packet", value: int) -> None:
    th = pkt.transport_header
    pkt.buf[th + 6] = (value >> 8) & 0xFF
    pkt.buf[th + 7] = value & 0xFF


def _udp_set_csum(nocheck: bool, pkt: "Packet", pseudo: int) -> None:
    if nocheck:
        _set_udp_check(pkt, 0)
    elif pkt.gso_size:
        _set_udp_check(pkt, pseudo)                     # ~udp_v4_check(len, s, d, 0)
    elif pkt.ip_summed == CHECKSUM_PARTIAL:
        _set_udp_check(pkt, 0)
        c = csum_fold(csum_add(pseudo, lco_csum(pkt)))  # udp_v4_check(..., lco_csum)
        _set_udp_check(pkt, c or CSUM_MANGLED_0)
    else:
        pkt.ip_summed = CHECKSUM_PARTIAL
        pkt.csum_start = pkt.transport_header
        pkt.csum_offset = UDP_CSUM_OFFSET
        _set_udp_check(pkt, pseudo)


def udp_set_csum(nocheck: bool, pkt: "Packet", saddr: bytes, daddr: bytes, length: int) -> None:
    """``udp_set_csum`` (net/ipv4/udp.c): the outer UDP checksum of a tunnel packet whose
    UDP header is at ``pkt.transport_header``.

    * ``nocheck`` (udpcsum off): the field is 0;
    * GSO: the field gets the pseudo sum; segmentation completes it per segment;
    * inner CHECKSUM_PARTIAL: the outer checksum is computed now with :func:`lco_csum`
      (0 → 0xffff) and the inner one stays the packet's single PARTIAL checksum;
    * otherwise the outer checksum becomes the PARTIAL one (pseudo sum in the field)."""
    _udp_set_csum(nocheck, pkt, pseudo_sum_v4(saddr, daddr, length, 17))


def udp6_set_csum(nocheck: bool, pkt: "Packet", saddr: bytes, daddr: bytes, length: int) -> None:
    """``udp6_set_csum`` (net/ipv6/ip6_checksum.c): as :func:`udp_set_csum` over the IPv6
    pseudo header.  ``nocheck`` is udp6zerocsumtx; the receive side must allow it."""
    _udp_set_csum(nocheck, pkt, pseudo_sum_v6(saddr, daddr, length, 17))


# --------------------------------------------------------------------- RX side
def skb_csum_unnecessary(pkt: "Packet") -> bool:
    """``skb_csum_unnecessary``: UNNECESSARY, already validated (``csum_valid``), or a
    PARTIAL packet whose offloaded checksum starts at or after ``data`` — a locally
    generated packet looped back, whose checksums are all good by construction."""
    s = pkt.ip_summed
    return (s == CHECKSUM_UNNECESSARY or pkt.csum_valid
            or (s == CHECKSUM_PARTIAL and pkt.csum_start - pkt.data >= 0))


def skb_decr_checksum_unnecessary(pkt: "Packet") -> None:
    """``__skb_decr_checksum_unnecessary``: one verified checksum consumed; at level 0
    the state becomes NONE (the next layer must be checked another way)."""
    if pkt.ip_summed == CHECKSUM_UNNECESSARY:
        if pkt.csum_level == 0:
            pkt.ip_summed = CHECKSUM_NONE
        else:
            pkt.csum_level -= 1


def skb_incr_checksum_unnecessary(pkt: "Packet") -> None:
    """``__skb_incr_checksum_unnecessary``: one more checksum known good (GRO of a tunnel
    whose outer checksum was verified), capped at level 3."""
    if pkt.ip_summed == CHECKSUM_UNNECESSARY:
        if pkt.csum_level < SKB_MAX_CSUM_LEVEL:
            pkt.csum_level += 1
    elif pkt.ip_summed == CHECKSUM_NONE:
        pkt.ip_summed = CHECKSUM_UNNECESSARY
        pkt.csum_level = 0


def inet_compute_pseudo(pkt: "Packet", proto: int) -> int:
    """``inet_compute_pseudo``: the IPv4 pseudo-header sum for ``len(pkt)`` bytes of L4
    (``pkt.data`` at the L4 header, IPv4 header at ``network_header``)."""
    nh = pkt.network_header
    b = pkt.buf
    return pseudo_sum_v4(b[nh + 12:nh + 16], b[nh + 16:nh + 20], len(pkt), proto)


def ip6_compute_pseudo(pkt: "Packet", proto: int) -> int:
    """``ip6_compute_pseudo``: the IPv6 pseudo-header sum (RFC 8200 §8.1)."""
    nh = pkt.network_header
    b = pkt.buf
    return pseudo_sum_v6(b[nh + 8:nh + 24], b[nh + 24:nh + 40], len(pkt), proto)


def null_compute_pseudo(pkt: "Packet", proto: int) -> int:
    """``null_compute_pseudo``: no pseudo header (ICMP, GRE)."""
    return 0


def skb_checksum_complete_raw(pkt: "Packet") -> int:
    """``__skb_checksum_complete``: sum the whole packet in software, add ``pkt.csum``
    (the pseudo sum the caller stored there) and return the folded result (0 = good).

    Leaves the packet CHECKSUM_COMPLETE with the full sum, ``csum_complete_sw`` set and
    ``csum_valid`` telling the result, so outer layers can be pulled with
    :func:`skb_postpull_rcsum` and inner ones verified without another data pass."""
    s = csum_partial(memoryview(pkt.buf)[pkt.data:pkt.tail])
    r = csum_fold(csum_add(pkt.csum, s))
    pkt.csum = s
    pkt.ip_summed = CHECKSUM_COMPLETE
    pkt.csum_complete_sw = True
    pkt.csum_valid = r == 0
    return r


def skb_checksum_complete(pkt: "Packet") -> int:
    """``skb_checksum_complete``: 0 if already known good, else a full software check."""
    return 0 if skb_csum_unnecessary(pkt) else skb_checksum_complete_raw(pkt)


def skb_checksum_complete_unset(pkt: "Packet") -> None:
    """``skb_checksum_complete_unset``: a COMPLETE value that no longer covers the packet
    (a device sum that disagreed) is dropped back to NONE."""
    if pkt.ip_summed == CHECKSUM_COMPLETE:
        pkt.ip_summed = CHECKSUM_NONE


def _validate_complete(pkt: "Packet", complete: bool, psum: int) -> int:
    """``__skb_checksum_validate_complete``."""
    if pkt.ip_summed == CHECKSUM_COMPLETE and not csum_fold(csum_add(psum, pkt.csum)):
        pkt.csum_valid = True
        return 0
    pkt.csum = psum
    if complete or len(pkt) <= CHECKSUM_BREAK:
        r = skb_checksum_complete_raw(pkt)
        pkt.csum_valid = r == 0
        return r
    return 0


def _validate(pkt: "Packet", proto: int, complete: bool, zero_okay: bool, check: int,
              compute_pseudo: ComputePseudo) -> int:
    """``__skb_checksum_validate``: with ``pkt.data`` at the L4 header, returns the folded
    checksum (non-zero = bad).  A 0 return with ``complete=False`` may mean "deferred":
    ``pkt.csum`` then holds the pseudo sum and a later :func:`skb_checksum_complete`
    (at socket read) decides.  Consumes one csum_level of CHECKSUM_UNNECESSARY."""
    pkt.csum_valid = False
    if skb_csum_unnecessary(pkt) or (zero_okay and not check):
        pkt.csum_valid = True
        skb_decr_checksum_unnecessary(pkt)
        return 0
    return _validate_complete(pkt, complete, compute_pseudo(pkt, proto))


def skb_checksum_init(pkt: "Packet", proto: int, compute_pseudo: ComputePseudo) -> int:
    """``skb_checksum_init``: validate if cheap (UNNECESSARY, COMPLETE, ≤ 76 bytes), else
    defer with the pseudo sum in ``pkt.csum`` (TCP/UDP receive)."""
    return _validate(pkt, proto, False, False, 0, compute_pseudo)


def skb_checksum_init_zero_check(pkt: "Packet", proto: int, check: int,
                                 compute_pseudo: ComputePseudo) -> int:
    """``skb_checksum_init_zero_check``: as :func:`skb_checksum_init` but a zero check
    field means "no checksum" and counts as validated (UDP over IPv4, RFC 768)."""
    return _validate(pkt, proto, False, True, check, compute_pseudo)


def skb_checksum_validate(pkt: "Packet", proto: int, compute_pseudo: ComputePseudo) -> int:
    """``skb_checksum_validate``: validate now, summing in software if needed."""
    return _validate(pkt, proto, True, False, 0, compute_pseudo)


def skb_checksum_validate_zero_check(pkt: "Packet", proto: int, check: int,
                                     compute_pseudo: ComputePseudo) -> int:
    """``skb_checksum_validate_zero_check``: validate now; a zero field is accepted."""
    return _validate(pkt, proto, True, True, check, compute_pseudo)


def skb_checksum_simple_validate(pkt: "Packet") -> int:
    """``skb_checksum_simple_validate``: no pseudo header (ICMP, IGMP, GRE with C)."""
    return _validate(pkt, 0, True, False, 0, null_compute_pseudo)


def skb_checksum_try_convert(pkt: "Packet", proto: int, compute_pseudo: ComputePseudo) -> None:
    """``skb_checksum_try_convert``: after a layer was validated from UNNECESSARY (now NONE
    with ``csum_valid``), a non-zero-checksum UDP tunnel or GRE with C turns the packet
    CHECKSUM_COMPLETE with ``csum = ~pseudo``: the verified L4 sum is then exactly the sum
    of its bytes, so inner checksums verify from ``pkt.csum`` without a data pass."""
    if pkt.ip_summed == CHECKSUM_NONE and pkt.csum_valid:
        pkt.csum = ~compute_pseudo(pkt, proto) & 0xFFFF
        pkt.ip_summed = CHECKSUM_COMPLETE


def skb_postpull_rcsum(pkt: "Packet", start: int, length: int) -> None:
    """``skb_postpull_rcsum``: ``length`` bytes at absolute ``start`` left the packet's
    front; a COMPLETE sum loses them; a PARTIAL whose start was pulled past is reset to
    NONE (``skb_checksum_start_offset < 0`` is invalid for TX)."""
    if pkt.ip_summed == CHECKSUM_COMPLETE:
        pkt.csum = csum_sub(pkt.csum, csum_partial(memoryview(pkt.buf)[start:start + length]))
    elif pkt.ip_summed == CHECKSUM_PARTIAL and pkt.csum_start - pkt.data < 0:
        pkt.ip_summed = CHECKSUM_NONE


def skb_postpush_rcsum(pkt: "Packet", start: int, length: int) -> None:
    """``skb_postpush_rcsum``: pushed bytes join a COMPLETE sum."""
    if pkt.ip_summed == CHECKSUM_COMPLETE:
        pkt.csum = csum_add(pkt.csum, csum_partial(memoryview(pkt.buf)[start:start + length]))


def skb_pull_rcsum(pkt: "Packet", length: int) -> int:
    """``skb_pull_rcsum``: pull ``length`` bytes and keep the COMPLETE sum right."""
    start = pkt.data
    pkt.pull(length)
    skb_postpull_rcsum(pkt, start, length)
    return pkt.data


def pskb_trim_rcsum(pkt: "Packet", length: int) -> None:
    """``pskb_trim_rcsum``: trimming padding invalidates a COMPLETE sum (the kernel
    subtracts the trimmed tail's sum; the result is the same sum of what remains)."""
    if length >= len(pkt):
        return
    if pkt.ip_summed == CHECKSUM_COMPLETE:
        s = pkt.data + length
        pkt.csum = csum_sub(pkt.csum, _block_sum(pkt.buf[s:pkt.tail], length))
    pkt.trim(length)


def _block_sum(block: bytes | bytearray, offset: int) -> int:
    """Sum of a block that starts ``offset`` bytes into the summed area (odd offsets swap
    the lanes: ``csum_block_sub``)."""
    s = csum_partial(block)
    if offset & 1:
        s = ((s & 0xFF) << 8) | (s >> 8)
    return s


# ------------------------------------------------------------- remote checksum offload
def remcsum_adjust(pkt: "Packet", ptr: int, csum: int, start: int, offset: int) -> int:
    """``remcsum_adjust`` (include/net/checksum.h): with ``csum`` the sum from ``ptr`` to
    the end, write the checksum of [ptr+start, end) into the field at ptr+offset (which
    the sender seeded with the pseudo sum) and return the delta the field change makes."""
    buf = pkt.buf
    csum = csum_sub(csum, csum_partial(memoryview(buf)[ptr:ptr + start]))
    f = ptr + offset
    old = (buf[f] << 8) | buf[f + 1]
    new = csum_fold(csum)
    delta = csum_sub(new, old)
    buf[f] = new >> 8
    buf[f + 1] = new & 0xFF
    return delta


def skb_remcsum_adjust_partial(pkt: "Packet", ptr: int, start: int, offset: int) -> None:
    """``skb_remcsum_adjust_partial``: default RCO receive: the packet becomes
    CHECKSUM_PARTIAL at (ptr+start, offset-start); the checksum is completed only if the
    packet leaves through a device (or GSO) — and counts as valid meanwhile."""
    pkt.ip_summed = CHECKSUM_PARTIAL
    pkt.csum_start = ptr + start
    pkt.csum_offset = offset - start


def skb_remcsum_process(pkt: "Packet", ptr: int, start: int, offset: int,
                        nopartial: bool) -> None:
    """``skb_remcsum_process``: remote checksum offload receive (draft-herbert-
    remotecsumoffload).  ``ptr`` is the absolute buffer offset of the inner packet
    (right after the VXLAN/GUE header), ``start``/``offset`` relative to it.

    Default: :func:`skb_remcsum_adjust_partial`.  ``nopartial``: make sure the packet is
    COMPLETE (a software sum if not), write the real checksum into the field with
    :func:`remcsum_adjust`, and add the delta to ``pkt.csum`` so it still covers the
    packet."""
    if not nopartial:
        skb_remcsum_adjust_partial(pkt, ptr, start, offset)
        return
    if pkt.ip_summed != CHECKSUM_COMPLETE:
        skb_checksum_complete_raw(pkt)
        skb_postpull_rcsum(pkt, pkt.data, ptr - pkt.data)
    delta = remcsum_adjust(pkt, ptr, pkt.csum, start, offset)
    pkt.csum = csum_add(pkt.csum, delta)
