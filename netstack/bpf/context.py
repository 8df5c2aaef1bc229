"""Program contexts: ``struct xdp_md`` and ``struct __sk_buff`` as the verifier rewrites them.

In the kernel a program reads its context through fields whose loads the
verifier rewrites (``convert_ctx_access`` in net/core/filter.c): a 4-byte load
of ``xdp_md.data`` becomes a 64-bit load of ``xdp_buff.data``.  Here a context
is a :class:`~netstack.bpf.memory.SpecialRegion` whose ``load`` returns the
field's value -- a packet pointer for ``data``/``data_end``/``data_meta`` -- and
whose access rules are the kernel's ``*_is_valid_access`` ones (an access the
verifier would refuse raises :class:`BpfRuntimeError`).

The packet is a :class:`PacketBuf`: one ``bytearray`` holding headroom, data
and tailroom, mapped once in the program's address space; ``data``,
``data_end`` and ``data_meta`` are offsets into it, which helpers such as
``bpf_xdp_adjust_head`` move (uapi/linux/bpf.h; net/core/filter.c).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .errors import BpfRuntimeError, NotSupported
from .memory import SpecialRegion

# enum bpf_prog_type
BPF_PROG_TYPE_SOCKET_FILTER = 1
BPF_PROG_TYPE_SCHED_CLS = 3
BPF_PROG_TYPE_SCHED_ACT = 4
BPF_PROG_TYPE_XDP = 6

# enum xdp_action
XDP_ABORTED = 0
XDP_DROP = 1
XDP_PASS = 2
XDP_TX = 3
XDP_REDIRECT = 4

# tc verdicts (include/uapi/linux/pkt_cls.h)
TC_ACT_UNSPEC = -1
TC_ACT_OK = 0
TC_ACT_RECLASSIFY = 1
TC_ACT_SHOT = 2
TC_ACT_PIPE = 3
TC_ACT_STOLEN = 4
TC_ACT_QUEUED = 5
TC_ACT_REPEAT = 6
TC_ACT_REDIRECT = 7
TC_ACT_TRAP = 8

ETH_HLEN = 14
XDP_PACKET_HEADROOM = 256
SKB_SHARED_INFO_SIZE = 320   # SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86-64
XDP_FRAME_SIZE = 40          # sizeof(struct xdp_frame): adjust_head may not go below it
NET_SKB_PAD = 64             # max(32, L1_CACHE_BYTES); NET_IP_ALIGN is 0 on x86
XDP_METALEN_MAX = 255        # type_max(skb_shared_info.meta_len)

# struct xdp_md field offsets
XDP_MD = {"data": 0, "data_end": 4, "data_meta": 8, "ingress_ifindex": 12, "rx_queue_index": 16,
          "egress_ifindex": 20}
XDP_MD_SIZE = 24

# struct __sk_buff field offsets and sizes
SK_BUFF: dict[str, tuple[int, int]] = {
    "len": (0, 4), "pkt_type": (4, 4), "mark": (8, 4), "queue_mapping": (12, 4), "protocol": (16, 4),
    "vlan_present": (20, 4), "vlan_tci": (24, 4), "vlan_proto": (28, 4), "priority": (32, 4),
    "ingress_ifindex": (36, 4), "ifindex": (40, 4), "tc_index": (44, 4), "cb": (48, 20), "hash": (68, 4),
    "tc_classid": (72, 4), "data": (76, 4), "data_end": (80, 4), "napi_id": (84, 4), "family": (88, 4),
    "remote_ip4": (92, 4), "local_ip4": (96, 4), "remote_ip6": (100, 16), "local_ip6": (116, 16),
    "remote_port": (132, 4), "local_port": (136, 4), "data_meta": (140, 4), "flow_keys": (144, 8),
    "tstamp": (152, 8), "wire_len": (160, 4), "gso_segs": (164, 4), "sk": (168, 8), "gso_size": (176, 4),
    "tstamp_type": (180, 1), "hwtstamp": (184, 8),
}
SK_BUFF_SIZE = 192

# skb->pkt_type
PACKET_HOST = 0
PACKET_BROADCAST = 1
PACKET_MULTICAST = 2
PACKET_OTHERHOST = 3


@dataclass
class PacketBuf:
    """Linear packet memory: ``buf[head:]`` with data in ``[data, data_end)``, metadata before data."""

    buf: bytearray
    data: int
    data_end: int
    data_meta: int
    hard_end: int  # last byte + 1 that data_end may grow to
    base: int = 0  # address of buf[0] once mapped
    frags: bytes = b""  # XDP multi-buffer tail (not addressable by programs)

    @classmethod
    def build(cls, frame: bytes, headroom: int, room: int, meta: int = 0) -> "PacketBuf":
        """``headroom`` bytes before the frame (``meta`` of which are leading metadata), ``room`` total."""
        buf = bytearray(max(room, headroom + len(frame)))
        buf[headroom - meta:headroom - meta + len(frame)] = frame
        return cls(buf, headroom, headroom - meta + len(frame), headroom - meta, len(buf))

    def bytes(self) -> bytes:
        return bytes(self.buf[self.data:self.data_end])

    def ptr(self, off: int) -> int:
        return self.base + off


class XdpContext(SpecialRegion):
    """``struct xdp_md`` over an ``xdp_buff`` (filter.c ``xdp_is_valid_access``/``xdp_convert_ctx_access``)."""

    def __init__(self, pkt: PacketBuf, ingress_ifindex: int = 1, rx_queue_index: int = 0) -> None:
        self.pkt = pkt
        self.ingress_ifindex = ingress_ifindex
        self.rx_queue_index = rx_queue_index
        self.egress_ifindex = 0

    def load(self, off: int, size: int) -> int:
        # egress_ifindex is readable only by devmap programs (BPF_XDP_DEVMAP), not modelled here.
        if off >= XDP_MD_SIZE or off % size or size != 4 or off == 20:
            raise BpfRuntimeError(f"invalid bpf_context access off={off} size={size}")
        p = self.pkt
        if off == 0:
            return p.ptr(p.data)
        if off == 4:
            return p.ptr(p.data_end)
        if off == 8:
            return p.ptr(p.data_meta)
        return {12: self.ingress_ifindex, 16: self.rx_queue_index, 20: self.egress_ifindex}[off]

    def store(self, off: int, size: int, value: int) -> None:
        raise BpfRuntimeError(f"invalid bpf_context access off={off} size={size} (xdp_md is read-only)")


@dataclass
class SkbFields:
    """The sk_buff state a ``__sk_buff`` view reads (only what test_run and tc give a program)."""

    pkt_type: int = PACKET_HOST
    mark: int = 0
    queue_mapping: int = 0
    protocol: int = 0          # network byte order, as skb->protocol
    vlan_present: int = 0
    vlan_tci: int = 0
    vlan_proto: int = 0        # network byte order
    priority: int = 0
    ingress_ifindex: int = 0   # skb->skb_iif
    ifindex: int = 1           # skb->dev->ifindex
    tc_index: int = 0
    cb: bytearray = field(default_factory=lambda: bytearray(20))
    hash: int = 0
    tc_classid: int = 0
    napi_id: int = 0
    tstamp: int = 0
    wire_len: int = 0          # qdisc_skb_cb(skb)->pkt_len
    gso_segs: int = 0
    gso_size: int = 0
    hwtstamp: int = 0


_SKB_WRITABLE_TC = {"mark", "tc_index", "priority", "cb", "tc_classid", "tstamp", "queue_mapping"}
_SKB_DENIED_SOCKET_FILTER = {"tc_classid", "data", "data_meta", "data_end", "family", "remote_ip4", "local_ip4",
                             "remote_ip6", "local_ip6", "remote_port", "local_port", "tstamp", "wire_len",
                             "hwtstamp"}
_SKB_DENIED_TC = {"family", "remote_ip4", "local_ip4", "remote_ip6", "local_ip6", "remote_port", "local_port",
                  "flow_keys"}
_BY_OFFSET = sorted((off, size, name) for name, (off, size) in SK_BUFF.items())

#: ``target_size`` that net/core/filter.c ``bpf_convert_ctx_access`` (and, for ``ifindex``,
#: ``tc_cls_act_convert_ctx_access``) reports for each plain readable ``__sk_buff`` field:
#: the size of the ``sk_buff`` / ``skb_shared_info`` / ``qdisc_skb_cb`` / ``net_device`` member
#: the rewritten load really reads (``bpf_target_off(..., SIZE, target_size)`` or an explicit
#: ``*target_size = N``).  ``pkt_type`` is a bit field loaded as one byte; ``vlan_present`` has,
#: since the kernel dropped ``PKT_VLAN_PRESENT_BIT`` (6.2), been ``skb->vlan_all != 0`` from a
#: 4-byte load of ``vlan_all``, so it narrows like a u32 (checked on 6.18).
SKB_TARGET_SIZE: dict[str, int] = {
    "len": 4, "pkt_type": 1, "mark": 4, "queue_mapping": 2, "protocol": 2, "vlan_present": 4,
    "vlan_tci": 2, "vlan_proto": 2, "priority": 4, "ingress_ifindex": 4, "ifindex": 4, "tc_index": 2,
    "hash": 4, "tc_classid": 2, "napi_id": 4, "wire_len": 4, "gso_segs": 2, "gso_size": 2,
    "tstamp": 8, "hwtstamp": 8,  # u64 fields: only whole 8-byte reads are valid
}


def narrow_ctx_value(value: int, target_size: int, off: int, size: int, field_size: int = 4) -> int:
    """The value a ``size``-byte read at ``__sk_buff`` offset ``off`` yields for a field whose
    converted load reads a ``target_size``-byte member holding ``value``.

    kernel/bpf/verifier.c ``convert_ctx_accesses``: a read narrower than the ctx field
    (``size < ctx_field_size``) is turned into a full-field load at the field's aligned offset; only
    when it is also narrower than the member behind it (``size < target_size``) is the result
    shifted right by ``bpf_ctx_narrow_access_offset(off, size, size_default) * 8`` (little endian:
    ``off & (size_default - 1)``) and masked to ``size`` bytes.  Otherwise the member's whole
    value comes back unshifted, e.g. a 2-byte read at ``protocol + 2`` returns the protocol and a
    byte read at ``pkt_type + 3`` the packet type.
    """
    value &= (1 << (8 * target_size)) - 1
    if size < field_size and size < target_size:
        shift = (off & (field_size - 1)) * 8
        return (value >> shift) & ((1 << (8 * size)) - 1)
    return value


def _field_at(off: int) -> tuple[str, int, int] | None:
    for start, size, name in _BY_OFFSET:
        if start <= off < start + size:
            return name, start, size
    return None


class SkbContext(SpecialRegion):
    """``struct __sk_buff`` for SOCKET_FILTER and SCHED_CLS/ACT programs.

    Access rules are ``bpf_skb_is_valid_access`` plus the program type's
    ``sk_filter_is_valid_access`` / ``tc_cls_act_is_valid_access``: reads of
    u32 fields may be narrow (1/2 bytes at any aligned offset of the field, as
    ``bpf_ctx_narrow_access_ok`` allows, little-endian, with the kernel's ``target_size`` rule of
    :func:`narrow_ctx_value`), ``data``/``data_end``/``data_meta``
    only as u32 and they yield packet pointers, ``cb`` is byte-addressable;
    writes need the full field size and a writable field.
    """

    def __init__(self, pkt: PacketBuf, fields: SkbFields, prog_type: int) -> None:
        self.pkt = pkt
        self.f = fields
        self.prog_type = prog_type

    @property
    def len(self) -> int:
        return self.pkt.data_end - self.pkt.data

    def _resolve(self, off: int, size: int, write: bool) -> tuple[str, int]:
        hit = _field_at(off) if 0 <= off < SK_BUFF_SIZE else None
        if hit is None or off % size:
            raise BpfRuntimeError(f"invalid bpf_context access off={off} size={size}")
        name, start, fsize = hit
        tc = self.prog_type in (BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_SCHED_ACT)
        denied = _SKB_DENIED_TC if tc else _SKB_DENIED_SOCKET_FILTER
        bad = name in denied or name in ("tstamp_type", "flow_keys")
        if name == "sk" and not write and size == 8:
            raise NotSupported("reading __sk_buff.sk (socket pointers)")
        if write:
            ok = name in (_SKB_WRITABLE_TC if tc else {"cb"})
            bad = bad or not ok or (name != "cb" and size != fsize) or off + size > start + fsize
        elif name == "sk":
            bad = True
        elif name == "cb":
            bad = bad or off + size > start + fsize
        elif name in ("data", "data_end", "data_meta"):
            bad = bad or size != 4
        elif name in ("tstamp", "hwtstamp"):
            bad = bad or size != 8
        else:
            bad = bad or size > fsize  # bpf_ctx_narrow_access_ok: any power-of-2 size within the field
        if bad:
            raise BpfRuntimeError(f"invalid bpf_context access off={off} size={size} ({name})")
        return name, off - start

    def load(self, off: int, size: int) -> int:
        name, rel = self._resolve(off, size, False)
        f, p = self.f, self.pkt
        if name == "cb":
            return int.from_bytes(f.cb[rel:rel + size], "little")
        if name == "data":
            return p.ptr(p.data)
        if name == "data_end":
            return p.ptr(p.data_end)
        if name == "data_meta":
            return p.ptr(p.data_meta)
        value = self.len if name == "len" else getattr(f, name, 0)
        return narrow_ctx_value(value, SKB_TARGET_SIZE[name], off, size, SK_BUFF[name][1])

    def store(self, off: int, size: int, value: int) -> None:
        name, rel = self._resolve(off, size, True)
        if name == "cb":
            self.f.cb[rel:rel + size] = value.to_bytes(size, "little")
        elif name == "queue_mapping":
            if value < 0xFFFF:  # filter.c: a write of NO_QUEUE_MAPPING (>= 0xffff) is ignored
                self.f.queue_mapping = value
        elif name in ("tc_index", "tc_classid"):
            setattr(self.f, name, value & 0xFFFF)  # BPF_STX_MEM(BPF_H, ...): u16 members
        else:
            setattr(self.f, name, value)

    def to_struct(self) -> bytes:
        """The ``__sk_buff`` test_run copies back as ctx_out (``convert_skb_to___skb``)."""
        out = bytearray(SK_BUFF_SIZE)
        f = self.f
        for name, value in (("mark", f.mark), ("priority", f.priority), ("ingress_ifindex", f.ingress_ifindex),
                            ("ifindex", f.ifindex), ("wire_len", f.wire_len), ("gso_segs", f.gso_segs),
                            ("gso_size", f.gso_size)):
            struct.pack_into("<I", out, SK_BUFF[name][0], value & 0xFFFFFFFF)
        out[48:68] = f.cb
        struct.pack_into("<Q", out, 152, f.tstamp)
        struct.pack_into("<Q", out, 184, f.hwtstamp)
        return bytes(out)
