"""The one out-of-band VLAN tag of an skb and what moves it in and out of the packet.

Why it looks like this: the kernel keeps at most ONE tag outside the packet data
(``skb->vlan_proto``/``skb->vlan_tci``, include/linux/if_vlan.h); every further tag stays in
the payload.  These functions reproduce, on :class:`~netstack.packet.skb.Packet`:

* ``__vlan_hwaccel_put_tag`` / ``__vlan_hwaccel_clear_tag`` (include/linux/if_vlan.h);
* ``skb_vlan_untag`` with ``skb_reorder_vlan_header`` and ``vlan_set_encap_proto``
  (net/core/skbuff.c, include/linux/if_vlan.h): receive moves the outermost in-packet tag
  out of band;
* ``__vlan_hwaccel_push_inside`` / ``vlan_insert_tag_set_proto`` (if_vlan.h), used by
  ``validate_xmit_vlan`` (net/core/dev.c) when the device lacks the tag offload;
* ``skb_vlan_push`` / ``skb_vlan_pop`` / ``__skb_vlan_pop`` (net/core/skbuff.c);
* ``vlan_do_receive`` (net/8021q/vlan_core.c) and the "check_vlan_id" tail of
  ``__netif_receive_skb_core`` (net/core/dev.c).

Malformed tags never raise out of the datapath: the RX helpers return a drop verdict that
the caller counts, and push/pop raise :class:`VlanError` (an ``-EINVAL``/``-ENOMEM`` in the
kernel) that their caller turns into a counted drop.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from netstack.packet.checksum import csum_add, csum_partial, csum_sub
from netstack.packet.skb import (CHECKSUM_COMPLETE, PACKET_HOST, PACKET_MULTICAST,
                                 PACKET_OTHERHOST, UNSET, Packet)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice

ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_802_3 = 0x0001
ETH_P_802_2 = 0x0004
ETH_P_802_3_MIN = 0x0600
VLAN_HLEN = 4
ETH_HLEN = 14
ETH_ALEN = 6
VLAN_VID_MASK = 0x0FFF
VLAN_PRIO_SHIFT = 13

#: ``ethtool`` feature strings of the transmit tag offloads (NETIF_F_HW_VLAN_{C,S}TAG_TX).
TX_OFFLOAD_FEATURE = {ETH_P_8021Q: "tx-vlan-hw-insert", ETH_P_8021AD: "tx-vlan-stag-hw-insert"}


class VlanError(Exception):
    """A push/pop the kernel refuses (``-EINVAL``: data not at the MAC header; ``-ENOMEM``/
    ``-EFAULT``: the tag is not all there)."""


def eth_type_vlan(proto: int) -> bool:
    """``eth_type_vlan``: only 802.1Q and 802.1ad are VLAN TPIDs."""
    return proto == ETH_P_8021Q or proto == ETH_P_8021AD


def vlan_hwaccel_put_tag(pkt: Packet, proto: int, tci: int) -> None:
    """``__vlan_hwaccel_put_tag``: set the out-of-band tag (overwriting any)."""
    pkt.vlan_proto = proto
    pkt.vlan_tci = tci & 0xFFFF


def vlan_hwaccel_clear_tag(pkt: Packet) -> None:
    """``__vlan_hwaccel_clear_tag``."""
    pkt.vlan_proto = 0
    pkt.vlan_tci = 0


def _encap_proto(buf: bytearray, off: int) -> int:
    """``vlan_set_encap_proto`` (include/linux/if_vlan.h): the EtherType after a tag at ``off``
    (its TCI), or the 802.3/802.2 pseudo protocol for a length field (raw IPX if 0xFFFF follows).

    Like the kernel, the 2 bytes after the length field are read whether or not they belong to
    the frame: ``__skb_vlan_pop`` only ensures ``VLAN_ETH_HLEN`` (18) bytes, so on an 18-byte
    frame the kernel reads the tailroom (zeroed by test_run's ``bpf_test_init``, whatever a
    previous owner left otherwise).  Here that is ``buf`` past the tail; a read past the end
    of ``buf`` itself counts as zeros (not 0xFFFF), hence ``ETH_P_802_2``."""
    proto = (buf[off + 2] << 8) | buf[off + 3]
    if proto >= ETH_P_802_3_MIN:
        return proto
    if buf[off + 4:off + 6] == b"\xff\xff":
        return ETH_P_802_3
    return ETH_P_802_2


def skb_vlan_untag(pkt: Packet) -> bool:
    """``skb_vlan_untag`` on a received packet whose ``protocol`` is a VLAN TPID and whose
    ``data`` points just after the Ethernet header.

    Moves the tag out of band, pulls it, moves the MAC addresses forward over it
    (``skb_reorder_vlan_header``) so that the MAC header stays contiguous with the payload,
    and resets the network header.  Returns False (the caller drops the packet) when fewer
    than the 4 tag bytes plus the 2 bytes ``vlan_set_encap_proto`` reads are present.
    A packet that already carries an out-of-band tag is left alone ("for another time")."""
    if pkt.vlan_proto:
        return True
    d = pkt.data
    if pkt.tail - d < VLAN_HLEN + 2:
        return False
    buf = pkt.buf
    pkt.vlan_proto = pkt.protocol
    pkt.vlan_tci = (buf[d] << 8) | buf[d + 1]
    pkt.protocol = _encap_proto(buf, d)
    if pkt.ip_summed == CHECKSUM_COMPLETE:  # skb_pull_rcsum: the tag leaves the sum
        pkt.csum = csum_sub(pkt.csum, csum_partial(buf[d:d + VLAN_HLEN]))
    pkt.data = d + VLAN_HLEN
    mac = pkt.mac_header
    if mac != UNSET:
        mac_len = d + VLAN_HLEN - mac  # skb->data - skb_mac_header(skb), after the pull
        if mac_len > VLAN_HLEN + 2:
            n = mac_len - VLAN_HLEN - 2
            buf[mac + VLAN_HLEN:mac + VLAN_HLEN + n] = buf[mac:mac + n]
        pkt.mac_header = mac + VLAN_HLEN
    pkt.network_header = pkt.data
    if pkt.transport_header == UNSET:
        pkt.transport_header = pkt.data
    return True


def vlan_insert_tag(pkt: Packet, proto: int, tci: int, mac_len: int = 2 * ETH_ALEN) -> None:
    """``vlan_insert_inner_tag`` with ``data`` at the MAC header: the first ``mac_len``
    bytes (the two MAC addresses, or more for an inner insert) move 4 bytes towards the
    head and the tag is written behind them.  The MAC header moves with them; the network
    header, if it lies behind the insertion point, stays on the same bytes."""
    old = pkt.data
    if pkt.data - pkt.head < VLAN_HLEN:
        pkt.expand_head(VLAN_HLEN + 128)
        old = pkt.data
    buf = pkt.buf
    new = old - VLAN_HLEN
    buf[new:new + mac_len] = buf[old:old + mac_len]
    buf[new + mac_len] = proto >> 8
    buf[new + mac_len + 1] = proto & 0xFF
    buf[new + mac_len + 2] = (tci >> 8) & 0xFF
    buf[new + mac_len + 3] = tci & 0xFF
    pkt.data = new
    if pkt.mac_header != UNSET:
        pkt.mac_header -= VLAN_HLEN
    # Headers that sat inside the moved prefix move with it; the ones behind it keep their
    # bytes (``skb->network_header`` is relative to ``head`` in the kernel too).
    for name in ("network_header", "transport_header"):
        v = getattr(pkt, name)
        if v != UNSET and old <= v < old + mac_len:
            setattr(pkt, name, v - VLAN_HLEN)


def vlan_hwaccel_push_inside(pkt: Packet) -> None:
    """``__vlan_hwaccel_push_inside``: write the out-of-band tag into the packet (data at
    the MAC header), set ``protocol`` to its TPID (``vlan_insert_tag_set_proto``), clear it."""
    proto = pkt.vlan_proto
    vlan_insert_tag(pkt, proto, pkt.vlan_tci)
    pkt.protocol = proto
    pkt.vlan_proto = 0
    pkt.vlan_tci = 0


def validate_xmit_vlan(pkt: Packet, dev: "NetDevice") -> None:
    """``validate_xmit_vlan`` (net/core/dev.c): a tag the device cannot insert in hardware
    (``vlan_hw_offload_capable``: CTAG_TX for 802.1Q, STAG_TX for 802.1ad) goes into the
    payload before the driver (and the taps) see the packet.  Called only when a tag is
    present."""
    if TX_OFFLOAD_FEATURE.get(pkt.vlan_proto) not in dev.features:
        vlan_hwaccel_push_inside(pkt)


def skb_vlan_push(pkt: Packet, proto: int, tci: int) -> None:
    """``skb_vlan_push``: an existing out-of-band tag is first written into the packet
    (``protocol`` becomes its TPID, the network header moves back over it), then the new tag
    becomes the out-of-band one.  ``data`` must be at the MAC header (else ``-EINVAL``).

    Why the network header moves 4 bytes back rather than staying on the same bytes with
    ``mac_len`` growing by 4 (the ``skb->mac_len += VLAN_HLEN`` of older net/core/skbuff.c):
    this machine's kernel (6.18) does the former -- measured through ``BPF_PROG_TEST_RUN``:
    after two ``bpf_skb_vlan_push`` calls on an untagged frame, LD_ABS at ``SKF_NET_OFF``
    reads the TCI of the tag written into the packet, not the IPv4 header (the
    ``skb->network_header -= VLAN_HLEN`` form, with the callers doing
    ``skb_reset_mac_len``).  So ``network_header - mac_header`` (``mac_len()``) stays what it
    was and, at tc ingress, ``skb->data`` pulled by ``mac_len`` lands on the inner tag's TCI
    as it would on a received double-tagged frame.  Pinned by
    tests/bpf/test_skb_one_object_kernel.py and tests/bpf/test_vlan_helpers_kernel.py
    (``ld_abs_after_push``)."""
    if pkt.vlan_proto:
        if pkt.mac_header != UNSET and pkt.data != pkt.mac_header:
            raise VlanError("skb_vlan_push: data is not at the MAC header")
        if pkt.tail - pkt.data < 2 * ETH_ALEN:
            raise VlanError("skb_vlan_push: frame shorter than the MAC addresses")
        old_proto = pkt.vlan_proto
        vlan_insert_tag(pkt, old_proto, pkt.vlan_tci)
        pkt.protocol = old_proto
        if pkt.ip_summed == CHECKSUM_COMPLETE:  # skb_postpush_rcsum
            pkt.csum = csum_add(pkt.csum, csum_partial(
                pkt.buf[pkt.data + 2 * ETH_ALEN:pkt.data + 2 * ETH_ALEN + VLAN_HLEN]))
        if pkt.network_header != UNSET:
            pkt.network_header -= VLAN_HLEN
    pkt.vlan_proto = proto
    pkt.vlan_tci = tci & 0xFFFF


def _skb_vlan_pop_inband(pkt: Packet) -> int:
    """``__skb_vlan_pop``: remove the first in-packet tag (behind the MAC addresses) and
    return its TCI; ``protocol`` becomes the encapsulated type."""
    d = pkt.data
    if pkt.mac_header != UNSET and d != pkt.mac_header:
        raise VlanError("__skb_vlan_pop: data is not at the MAC header")
    if pkt.tail - d < ETH_HLEN + VLAN_HLEN:  # skb_ensure_writable(skb, VLAN_ETH_HLEN)
        raise VlanError("__skb_vlan_pop: truncated VLAN header")
    buf = pkt.buf
    if pkt.ip_summed == CHECKSUM_COMPLETE:  # skb_postpull_rcsum of the 4 tag bytes
        pkt.csum = csum_sub(pkt.csum, csum_partial(buf[d + 12:d + 12 + VLAN_HLEN]))
    tci = (buf[d + 14] << 8) | buf[d + 15]
    # vlan_remove_tag: the MAC addresses move over the TPID/TCI first, then
    # vlan_set_encap_proto reads the encapsulated type at +16 and, for a length field, the
    # 2 bytes at +18 -- neither is touched by the move, and +18 may lie past the tail.
    buf[d + VLAN_HLEN:d + VLAN_HLEN + 2 * ETH_ALEN] = buf[d:d + 2 * ETH_ALEN]
    pkt.protocol = _encap_proto(buf, d + 14)
    pkt.data = d + VLAN_HLEN
    pkt.mac_header = pkt.data
    if pkt.network_header == UNSET or pkt.network_header - pkt.data < ETH_HLEN:
        pkt.network_header = pkt.data + ETH_HLEN
    return tci


def skb_vlan_pop(pkt: Packet) -> None:
    """``skb_vlan_pop``: clear the out-of-band tag, or (if none) remove the first in-packet
    tag; then, if another VLAN header follows, move it out of band.  An untagged packet is
    left as it is (return 0 in the kernel)."""
    if pkt.vlan_proto:
        pkt.vlan_proto = 0
        pkt.vlan_tci = 0
    else:
        if not eth_type_vlan(pkt.protocol):
            return
        _skb_vlan_pop_inband(pkt)
    if not eth_type_vlan(pkt.protocol):
        return
    proto = pkt.protocol
    tci = _skb_vlan_pop_inband(pkt)
    pkt.vlan_proto = proto
    pkt.vlan_tci = tci


def frame_with_tag(pkt: Packet, start: int) -> bytes:
    """What a capture shows for a packet whose tag is out of band: libpcap rebuilds the
    802.1Q header from ``PACKET_AUXDATA`` (``tp_vlan_tci``/``tp_vlan_tpid``) and inserts it
    after the MAC addresses.  ``start`` is where the frame begins (the MAC header)."""
    b = pkt.buf
    p = pkt.vlan_proto
    t = pkt.vlan_tci
    return bytes(b[start:start + 12]) + bytes((p >> 8, p & 0xFF, t >> 8, t & 0xFF)) + \
        bytes(b[start + 12:pkt.tail])


def tap_packet(pkt: Packet) -> Packet:
    """The packet a ``ptype_all`` tap (AF_PACKET + libpcap) is shown: a copy with the
    out-of-band tag written back after the MAC addresses, with ``data``/``mac_header``
    keeping their meaning, so ``buf[mac_header:tail]`` and ``bytes()`` are the captured
    frame.  Only called when a tag is present."""
    q = pkt.clone()
    mac = q.mac_header if q.mac_header != UNSET else q.data
    at = mac + 2 * ETH_ALEN
    p = pkt.vlan_proto
    t = pkt.vlan_tci
    q.buf[at:at] = bytes((p >> 8, p & 0xFF, t >> 8, t & 0xFF))
    for name in ("data", "tail", "network_header", "transport_header"):
        v = getattr(q, name)
        if v != UNSET and v >= at and not (name == "data" and v == mac):
            setattr(q, name, v + VLAN_HLEN)
    q.vlan_proto = 0
    q.vlan_tci = 0
    return q


# ---------------------------------------------------------------------------- receive
#: verdicts of :func:`vlan_do_receive`
ANOTHER_ROUND = 1
NOT_FOUND = 0
DROPPED = -1


def vlan_find_dev(real_dev: "NetDevice", proto: int, vid: int) -> "NetDevice | None":
    """``vlan_find_dev``: the vlan device for (proto, vid) on ``real_dev``, if any."""
    group = getattr(real_dev, "vlan_group", None)
    if not group:
        return None
    return group.get((proto, vid))


def vlan_do_receive(pkt: Packet) -> int:
    """``vlan_do_receive``: hand a packet with an out-of-band tag to the vlan device of its
    (proto, VID) on ``pkt.dev``.

    Returns :data:`ANOTHER_ROUND` (``skb->dev`` is now the vlan device, the tag is consumed
    and ``priority`` comes from the ingress QoS map), :data:`NOT_FOUND`, or :data:`DROPPED`
    (the vlan device is down: ``kfree_skb``, counted here)."""
    vid = pkt.vlan_tci & VLAN_VID_MASK
    vdev = vlan_find_dev(pkt.dev, pkt.vlan_proto, vid)  # type: ignore[arg-type]
    if vdev is None:
        return NOT_FOUND
    if not vdev.flags & 1:  # IFF_UP
        from netstack.core.drop_reason import kfree_skb_reason
        kfree_skb_reason(pkt, "NOT_SPECIFIED", vdev.net)
        return DROPPED
    pkt.dev = vdev
    if pkt.trace is not None:
        pkt.trace.event(pkt, "vlan_do_receive", info=f"vid={vid} dev={vdev.name}")
    if pkt.pkt_type == PACKET_OTHERHOST and pkt.mac_header != UNSET:
        # the lower device thinks it is not for us; the vlan may have its own MAC
        if pkt.buf[pkt.mac_header:pkt.mac_header + 6] == vdev.address:
            pkt.pkt_type = PACKET_HOST
    if not vdev.vlan_flags & 1:  # no VLAN_FLAG_REORDER_HDR: the tag goes back in-band
        offset = pkt.data - pkt.mac_header
        pkt.data = pkt.mac_header
        vlan_insert_tag(pkt, pkt.vlan_proto, pkt.vlan_tci, (pkt.mac_len() or ETH_HLEN) - 2)
        pkt.data = pkt.data + offset + VLAN_HLEN
    pkt.priority = vdev.ingress_priority(pkt.vlan_tci)
    pkt.vlan_proto = 0
    pkt.vlan_tci = 0
    st = vdev.stats
    st.rx_packets += 1
    st.rx_bytes += pkt.tail - pkt.data
    if pkt.pkt_type == PACKET_MULTICAST:
        st.multicast += 1
    return ANOTHER_ROUND


def vlan_check_id(pkt: Packet) -> int:
    """The ``check_vlan_id`` block of ``__netif_receive_skb_core``, for a packet that still
    has its out-of-band tag after :func:`vlan_do_receive` and the rx_handler.

    VID ≠ 0 and no vlan device: PACKET_OTHERHOST (IP then drops it).  VID 0 (802.1p
    priority tag) with another VLAN header inside: strip it, untag the inner one and try
    the vlan devices again.  Then the tag is cleared.  Returns ANOTHER_ROUND, NOT_FOUND
    (continue to the protocol handlers) or DROPPED."""
    while True:
        if pkt.vlan_tci & VLAN_VID_MASK:
            pkt.pkt_type = PACKET_OTHERHOST
        elif eth_type_vlan(pkt.protocol):
            pkt.vlan_proto = 0
            pkt.vlan_tci = 0
            if not skb_vlan_untag(pkt):
                from netstack.core.drop_reason import kfree_skb_reason
                kfree_skb_reason(pkt, "NOT_SPECIFIED", pkt.dev.net)  # type: ignore[union-attr]
                return DROPPED
            r = vlan_do_receive(pkt)
            if r != NOT_FOUND:
                return r
            continue
        pkt.vlan_proto = 0
        pkt.vlan_tci = 0
        return NOT_FOUND
