"""The packet: netstack's ``struct sk_buff``.

Why it looks like this (include/linux/skbuff.h):

* One linear ``bytearray`` with headroom in front of the data, so encapsulation pushes
  headers (``push``) and decapsulation pulls them (``pull``) by moving the ``data`` offset;
  the payload is never copied.  ``put``/``trim`` move ``tail`` the same way.
* Header positions are offsets into the buffer (``mac_header``, ``network_header``,
  ``transport_header`` and their ``inner_*`` twins for one level of encapsulation), so
  they stay valid across push/pull, exactly as the kernel's ``skb->*_header`` fields.
* The checksum state (``ip_summed``, ``csum``, ``csum_start``, ``csum_offset``,
  ``csum_level``, ``csum_valid``) and the GSO state are carried as the kernel carries them
  ("DOC: skb checksums"), so the offload issue can give them their full meaning.
* The out-of-band VLAN tag (``vlan_proto``/``vlan_tci``): exactly one, as
  ``__vlan_hwaccel_put_tag`` (include/linux/if_vlan.h).
* ``trace`` is None unless tracing is on; every stage that handles the packet appends one
  record to it, so ``--trace`` can print the packet's path (the pwru model).

The class uses ``__slots__`` and plain ints: the forwarding path touches these fields for
every packet and attribute access must stay cheap.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from netstack.core.netdevice import NetDevice

#: Default headroom, as NET_SKB_PAD + room for an outer tunnel header.
DEFAULT_HEADROOM = 128

# ip_summed values (include/linux/skbuff.h).
CHECKSUM_NONE = 0
CHECKSUM_UNNECESSARY = 1
CHECKSUM_COMPLETE = 2
CHECKSUM_PARTIAL = 3

# pkt_type values (include/uapi/linux/if_packet.h).
PACKET_HOST = 0
PACKET_BROADCAST = 1
PACKET_MULTICAST = 2
PACKET_OTHERHOST = 3
PACKET_OUTGOING = 4
PACKET_LOOPBACK = 5

PKT_TYPE_NAMES = {
    PACKET_HOST: "host",
    PACKET_BROADCAST: "broadcast",
    PACKET_MULTICAST: "multicast",
    PACKET_OTHERHOST: "otherhost",
    PACKET_OUTGOING: "outgoing",
    PACKET_LOOPBACK: "loopback",
}

# gso_type bits (include/linux/skbuff.h, enum { SKB_GSO_TCPV4 = 1 << 0, ... }).
SKB_GSO_TCPV4 = 1 << 0
SKB_GSO_DODGY = 1 << 1
SKB_GSO_TCP_ECN = 1 << 2
#: bit 3 is the NETIF_F_TSO_MANGLEID feature bit since 6.18; the FIXEDID flags moved to
#: bits 30 (outer IPv4 header) and 31 (inner) — netstack/core/gso.py uses these
SKB_GSO_MANGLEID_BIT = 1 << 3  # the kernel's __SKB_GSO_TCP_FIXEDID
SKB_GSO_TCP_FIXEDID = 1 << 30
SKB_GSO_TCP_FIXEDID_INNER = 1 << 31
SKB_GSO_TCPV6 = 1 << 4
SKB_GSO_FCOE = 1 << 5
SKB_GSO_GRE = 1 << 6
SKB_GSO_GRE_CSUM = 1 << 7
SKB_GSO_IPXIP4 = 1 << 8
SKB_GSO_IPXIP6 = 1 << 9
SKB_GSO_UDP_TUNNEL = 1 << 10
SKB_GSO_UDP_TUNNEL_CSUM = 1 << 11
SKB_GSO_PARTIAL = 1 << 12
SKB_GSO_TUNNEL_REMCSUM = 1 << 13
SKB_GSO_SCTP = 1 << 14
SKB_GSO_ESP = 1 << 15
SKB_GSO_UDP = 1 << 16
SKB_GSO_UDP_L4 = 1 << 17
SKB_GSO_FRAGLIST = 1 << 18
SKB_GSO_TCP_ACCECN = 1 << 19

#: ``skb->mac_header`` etc. hold this when the header is not set (the kernel's ~0U).
UNSET = -1


class Packet:
    """An skb: buffer + offsets + metadata.  See the module docstring for the why."""

    # Hot fields (touched for every packet on the forwarding path) are slots set in
    # __init__; cold ones (tunnel, GSO, checksum-offload, VLAN state) are class-level
    # defaults that an instance shadows only when a layer writes them, through the
    # ``__dict__`` slot.  That keeps allocation to a dozen stores per packet.
    __slots__ = (
        "buf", "head", "data", "tail",
        "mac_header", "network_header", "transport_header",
        "protocol", "pkt_type", "dev", "skb_iif", "mark", "priority",
        "ip_summed", "csum", "tstamp", "ct", "dst", "cb", "trace", "id",
        "__dict__",
    )

    # ---- cold fields: class defaults (see above)
    inner_mac_header = UNSET
    inner_network_header = UNSET
    inner_transport_header = UNSET
    inner_protocol = 0
    encapsulation = False
    in_dev: "NetDevice | None" = None
    vlan_proto = 0
    vlan_tci = 0
    hash = 0
    l4_hash = False
    sw_hash = False
    csum_start = 0
    csum_offset = 0
    csum_level = 0
    csum_valid = False
    csum_not_inet = False
    gso_size = 0
    gso_segs = 0
    gso_type = 0
    queue_mapping = 0
    sk: Any = None

    _HOT = ("buf", "head", "data", "tail", "mac_header", "network_header",
            "transport_header", "protocol", "pkt_type", "dev", "skb_iif", "mark",
            "priority", "ip_summed", "csum", "tstamp", "ct", "dst", "cb", "trace", "id")

    def __init__(self, data: bytes | bytearray | memoryview = b"", headroom: int = DEFAULT_HEADROOM,
                 tailroom: int = 0) -> None:
        n = len(data)
        buf = bytearray(headroom + n + tailroom)
        buf[headroom:headroom + n] = data
        self.buf = buf
        self.head = 0
        self.data = headroom
        self.tail = headroom + n
        self.mac_header = UNSET
        self.network_header = UNSET
        self.transport_header = UNSET
        self.protocol = 0
        self.pkt_type = PACKET_HOST
        self.dev: NetDevice | None = None
        self.skb_iif = 0
        self.mark = 0
        self.priority = 0
        self.ip_summed = CHECKSUM_NONE
        self.csum = 0
        self.tstamp = 0
        self.ct: Any = None
        self.dst: Any = None
        self.cb: Any = None
        self.trace: Any = None
        self.id = 0

    # ----------------------------------------------------------------- lengths
    def __len__(self) -> int:
        """``skb->len``: bytes from ``data`` to ``tail``."""
        return self.tail - self.data

    @property
    def headroom(self) -> int:
        """``skb_headroom``."""
        return self.data - self.head

    @property
    def tailroom(self) -> int:
        """``skb_tailroom``."""
        return len(self.buf) - self.tail

    # ------------------------------------------------------------ data access
    def bytes(self) -> bytes:
        """A copy of the packet data (``data``..``tail``), e.g. for a capture file."""
        return bytes(self.buf[self.data:self.tail])

    def view(self) -> memoryview:
        """A zero-copy view of the packet data."""
        return memoryview(self.buf)[self.data:self.tail]

    # ------------------------------------------------------- push/pull/put/trim
    def push(self, n: int) -> int:
        """``skb_push``: prepend ``n`` bytes; return the new ``data`` offset.

        Grows the headroom (one copy, as ``pskb_expand_head``) only if it is exhausted.
        """
        if n > self.data - self.head:
            self.expand_head(n + DEFAULT_HEADROOM)
        self.data -= n
        return self.data

    def pull(self, n: int) -> int:
        """``skb_pull``: drop ``n`` bytes from the front; return the new ``data`` offset.

        Raises ValueError if the packet is shorter, like the kernel's BUG_ON in __skb_pull;
        callers check lengths first (``pskb_may_pull``).
        """
        if n > self.tail - self.data:
            raise ValueError("skb_pull beyond tail")
        self.data += n
        return self.data

    def may_pull(self, n: int) -> bool:
        """``pskb_may_pull``: are ``n`` bytes available from ``data``?"""
        return self.tail - self.data >= n

    def put(self, n: int) -> int:
        """``skb_put``: append ``n`` bytes; return the offset of the added area."""
        if n > len(self.buf) - self.tail:
            self.buf.extend(bytes(n - (len(self.buf) - self.tail)))
        off = self.tail
        self.tail += n
        return off

    def trim(self, length: int) -> None:
        """``skb_trim``/``pskb_trim``: cut the packet to ``length`` bytes."""
        if length < self.tail - self.data:
            self.tail = self.data + length

    def expand_head(self, extra: int) -> None:
        """``pskb_expand_head``: add headroom; header offsets move with the data."""
        self.buf[0:0] = bytes(extra)
        self.data += extra
        self.tail += extra
        for name in ("mac_header", "network_header", "transport_header"):
            v = getattr(self, name)
            if v != UNSET:
                setattr(self, name, v + extra)
        for name in ("inner_mac_header", "inner_network_header", "inner_transport_header"):
            v = getattr(self, name)
            if v != UNSET:
                setattr(self, name, v + extra)
        if self.ip_summed == CHECKSUM_PARTIAL:
            self.csum_start += extra

    # -------------------------------------------------------- header helpers
    def reset_mac_header(self) -> None:
        """``skb_reset_mac_header``."""
        self.mac_header = self.data

    def reset_network_header(self) -> None:
        """``skb_reset_network_header``."""
        self.network_header = self.data

    def reset_transport_header(self) -> None:
        """``skb_reset_transport_header``."""
        self.transport_header = self.data

    def mac_len(self) -> int:
        """``skb->mac_len`` as computed by skb_reset_mac_len."""
        if self.mac_header == UNSET or self.network_header == UNSET:
            return 0
        return self.network_header - self.mac_header

    def network_offset(self) -> int:
        """``skb_network_offset``: network header relative to ``data``."""
        return self.network_header - self.data

    def transport_offset(self) -> int:
        """``skb_transport_offset``."""
        return self.transport_header - self.data

    def vlan_tag_present(self) -> bool:
        """``skb_vlan_tag_present``: the out-of-band tag is set iff vlan_proto != 0."""
        return self.vlan_proto != 0

    def clone(self) -> "Packet":
        """``skb_copy``: a deep copy (buffer and metadata) for flooding/capture/ICMP quoting."""
        p = Packet.__new__(Packet)
        for name in Packet._HOT:
            setattr(p, name, getattr(self, name))
        p.__dict__.update(self.__dict__)
        p.buf = bytearray(self.buf)
        return p

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return (f"<Packet id={self.id} len={len(self)} proto=0x{self.protocol:04x} "
                f"dev={getattr(self.dev, 'name', None)} pkt_type={PKT_TYPE_NAMES.get(self.pkt_type)}>")
