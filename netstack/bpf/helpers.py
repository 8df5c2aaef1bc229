"""eBPF helper functions, indexed by ``enum bpf_func_id`` (include/uapi/linux/bpf.h).

Each helper is ``fn(vm, r1, r2, r3, r4, r5) -> r0`` where ``vm`` is a
:class:`netstack.bpf.progs.ProgVm` (its ``env`` holds clock, CPU, RNG, trace
log and redirect state; ``ctx`` the running context).  Return values and errno
rules are those of net/core/filter.c, kernel/bpf/helpers.c,
kernel/bpf/ringbuf.c and kernel/trace/bpf_trace.c.  Which helpers a program
type may call follows each type's ``get_func_proto``; calling another one is
what the verifier refuses, so it raises :class:`BpfRuntimeError`.
"""
from __future__ import annotations

import errno as E
import re
import struct
from typing import TYPE_CHECKING, Callable

from netstack.core import vlan_core as V
from netstack.packet.skb import CHECKSUM_NONE, UNSET

from . import context as C
from . import maps as M
from .errors import BpfRuntimeError, NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from .progs import ProgVm

M64 = (1 << 64) - 1
M32 = 0xFFFFFFFF

# enum bpf_func_id
BPF_FUNC_map_lookup_elem = 1
BPF_FUNC_map_update_elem = 2
BPF_FUNC_map_delete_elem = 3
BPF_FUNC_ktime_get_ns = 5
BPF_FUNC_trace_printk = 6
BPF_FUNC_get_prandom_u32 = 7
BPF_FUNC_get_smp_processor_id = 8
BPF_FUNC_skb_store_bytes = 9
BPF_FUNC_l3_csum_replace = 10
BPF_FUNC_l4_csum_replace = 11
BPF_FUNC_tail_call = 12
BPF_FUNC_skb_vlan_push = 18
BPF_FUNC_skb_vlan_pop = 19
BPF_FUNC_redirect = 23
BPF_FUNC_perf_event_output = 25
BPF_FUNC_skb_load_bytes = 26
BPF_FUNC_csum_diff = 28
BPF_FUNC_xdp_adjust_head = 44
BPF_FUNC_redirect_map = 51
BPF_FUNC_xdp_adjust_meta = 54
BPF_FUNC_xdp_adjust_tail = 65
BPF_FUNC_fib_lookup = 69
BPF_FUNC_ringbuf_output = 130
BPF_FUNC_ringbuf_reserve = 131
BPF_FUNC_ringbuf_submit = 132
BPF_FUNC_ringbuf_discard = 133
BPF_FUNC_ringbuf_query = 134

# helper flags
BPF_F_RECOMPUTE_CSUM = 1 << 0
BPF_F_INVALIDATE_HASH = 1 << 1
BPF_F_HDR_FIELD_MASK = 0xF
BPF_F_PSEUDO_HDR = 1 << 4
BPF_F_MARK_MANGLED_0 = 1 << 5
BPF_F_MARK_ENFORCE = 1 << 6
BPF_F_IPV6 = 1 << 7
BPF_F_INGRESS = 1 << 0
BPF_F_INDEX_MASK = 0xFFFFFFFF
BPF_F_CURRENT_CPU = BPF_F_INDEX_MASK
BPF_F_CTXLEN_MASK = 0xFFFFF << 32
BPF_F_BROADCAST = 1 << 3
BPF_F_EXCLUDE_INGRESS = 1 << 4
MAX_TAIL_CALL_CNT = 33
CSUM_MANGLED_0 = 0xFFFF


def _neg(err: int) -> int:
    return (-err) & M64


def _s32(v: int) -> int:
    v &= M32
    return v - (1 << 32) if v & 0x80000000 else v


# ------------------------------------------------------------------------------------------------
# Ones'-complement arithmetic as include/net/checksum.h and arch/x86/lib/csum-partial_64.c
# ------------------------------------------------------------------------------------------------

def csum_add(a: int, b: int) -> int:
    """32-bit add with end-around carry (``csum_add``)."""
    s = (a & M32) + (b & M32)
    return (s + (s >> 32)) & M32


def csum_sub(a: int, b: int) -> int:
    return csum_add(a, ~b & M32)


def csum_fold(c: int) -> int:
    """Fold a 32-bit sum to 16 bits and invert (``csum_fold``)."""
    c &= M32
    c = (c & 0xFFFF) + (c >> 16)
    c = (c & 0xFFFF) + (c >> 16)
    return ~c & 0xFFFF


def csum_partial(data: bytes, seed: int = 0) -> int:
    """x86-64 ``csum_partial``: ones'-complement sum of little-endian words, folded to 32 bits.

    The 64-bit add-with-carry accumulator is zero only for an all-zero sum;
    any other multiple of 2^32-1 folds to 0xffffffff.
    """
    n = seed & M32
    view = bytes(data)
    if len(view) % 4:
        view += bytes(4 - len(view) % 4)
    for (w,) in struct.iter_unpack("<I", view):
        n += w
    if n == 0:
        return 0
    r = n % M32
    return r if r else M32


def csum16_add(csum: int, addend: int) -> int:
    res = (csum + addend) & 0xFFFF
    return (res + (res < (addend & 0xFFFF))) & 0xFFFF


def csum_replace2(sum16: int, old: int, new: int) -> int:
    """``csum_replace2``: ``~csum16_add(csum16_sub(~sum, old), new)``."""
    return ~csum16_add(csum16_add(~sum16 & 0xFFFF, ~old & 0xFFFF), new) & 0xFFFF


def csum_replace4(sum16: int, old: int, new: int) -> int:
    return csum_fold(csum_add(csum_sub(~sum16 & 0xFFFF, old), new))


def csum_replace_by_diff(sum16: int, diff: int) -> int:
    return csum_fold(csum_add(diff, ~sum16 & 0xFFFF))


# ------------------------------------------------------------------------------------------------
# maps
# ------------------------------------------------------------------------------------------------

def _map(vm: "ProgVm", ptr: int) -> M.BpfMap:
    obj = vm.mem.object_at(ptr)
    if not isinstance(obj, MapRef) or ptr & M32:
        raise BpfRuntimeError(f"R1 0x{ptr:x} is not a map pointer")
    return obj.map


class MapRef:
    """Object behind the (empty) region a ``lddw rX, map_fd`` pointer names."""

    def __init__(self, m: M.BpfMap) -> None:
        self.map = m


def map_lookup_elem(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = _map(vm, r1)
    if m.map_flags & M.BPF_F_WRONLY_PROG:
        raise BpfRuntimeError("map is write-only for programs")
    off = m.prog_lookup(vm.mem.read_bytes(r2, m.key_size), vm.env.cpu)
    return 0 if off is None else vm.map_base(m) + off


def map_update_elem(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = _map(vm, r1)
    if m.map_flags & M.BPF_F_RDONLY_PROG:
        raise BpfRuntimeError("map is read-only for programs")
    key = vm.mem.read_bytes(r2, m.key_size)
    return m.prog_update(key, vm.mem.read_bytes(r3, m.value_size), r4, vm.env.cpu) & M64


def map_delete_elem(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = _map(vm, r1)
    if m.map_flags & M.BPF_F_RDONLY_PROG:
        raise BpfRuntimeError("map is read-only for programs")
    return m.prog_delete(vm.mem.read_bytes(r2, m.key_size)) & M64


# ------------------------------------------------------------------------------------------------
# time, randomness, printing
# ------------------------------------------------------------------------------------------------

def ktime_get_ns(vm: "ProgVm", *_: int) -> int:
    return vm.env.clock() & M64


def get_prandom_u32(vm: "ProgVm", *_: int) -> int:
    return vm.env.rng.getrandbits(32)


def get_smp_processor_id(vm: "ProgVm", *_: int) -> int:
    return vm.env.cpu


_FMT = re.compile(rb"%([-0+ ]?)(\d*)(l{0,2})([diuxXcsp%])")


def trace_printk(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_trace_printk(fmt, fmt_size, ...)``: at most 3 arguments; the line goes to ``env.trace_log``.

    Returns the number of bytes written, or -EINVAL for a format the kernel
    rejects (not NUL-terminated, more than 3 conversions, unknown conversion).
    """
    if not 0 < r2 <= 1024:
        return _neg(E.EINVAL)
    fmt = vm.mem.read_bytes(r1, r2)
    if fmt[-1:] != b"\0":
        return _neg(E.EINVAL)
    fmt = fmt[:fmt.index(b"\0")]
    args = [r3, r4, r5]
    out = bytearray()
    pos = used = 0
    for m in _FMT.finditer(fmt):
        out += fmt[pos:m.start()]
        pos = m.end()
        flag, width, length, conv = m.group(1), m.group(2), m.group(3), m.group(4)
        if conv == b"%":
            out += b"%"
            continue
        if used == 3:
            return _neg(E.EINVAL)
        v = args[used]
        used += 1
        bits = 64 if length else 32
        v &= (1 << bits) - 1
        if conv in (b"d", b"i"):
            text = str(v - (1 << bits) if v >> (bits - 1) else v)
        elif conv == b"u":
            text = str(v)
        elif conv == b"x":
            text = format(v, "x")
        elif conv == b"X":
            text = format(v, "X")
        elif conv == b"c":
            text = chr(v & 0xFF)
        elif conv == b"p":
            text = format(args[used - 1] & M64, "016x")
        else:  # %s: a NUL-terminated string in program memory
            s = bytearray()
            addr = args[used - 1]
            while len(s) < 256:
                b = vm.mem.read_bytes(addr + len(s), 1)
                if b == b"\0":
                    break
                s += b
            text = s.decode("latin-1")
        w = int(width) if width else 0
        pad = "0" if flag == b"0" and conv not in (b"s", b"c") else " "
        text = text.ljust(w) if flag == b"-" else text.rjust(w, pad)
        out += text.encode("latin-1")
    if b"%" in fmt[pos:]:
        return _neg(E.EINVAL)
    out += fmt[pos:]
    vm.env.trace_log.append(out.decode("latin-1"))
    return len(out)


# ------------------------------------------------------------------------------------------------
# skb data and checksums
# ------------------------------------------------------------------------------------------------

def _skb(vm: "ProgVm", ptr: int) -> C.SkbContext:
    ctx = vm.mem.object_at(ptr)
    if not isinstance(ctx, C.SkbContext) or ptr & M32:
        raise BpfRuntimeError("R1 is not a __sk_buff context")
    return ctx


def _xdp(vm: "ProgVm", ptr: int) -> C.XdpContext:
    ctx = vm.mem.object_at(ptr)
    if not isinstance(ctx, C.XdpContext) or ptr & M32:
        raise BpfRuntimeError("R1 is not an xdp_md context")
    return ctx


def skb_load_bytes(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_skb_load_bytes(skb, offset, to, len)``: -EFAULT (and ``to`` zeroed) when out of range."""
    skb = _skb(vm, r1)
    off, n = _s32(r2), r4 & M32
    p = skb.pkt
    if 0 <= off and off + n <= skb.len:
        vm.mem.write_bytes(r3, bytes(p.buf[p.data + off:p.data + off + n]))
        return 0
    vm.mem.write_bytes(r3, bytes(n))
    return _neg(E.EFAULT)


def skb_store_bytes(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_skb_store_bytes(skb, offset, from, len, flags)``."""
    skb = _skb(vm, r1)
    off, n, flags = r2 & M32, r4 & M32, r5
    if flags & ~(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH):
        return _neg(E.EINVAL)
    if off > 0xFFFF or off + n > skb.len:
        return _neg(E.EFAULT)
    data = vm.mem.read_bytes(r3, n)
    p = skb.pkt
    p.buf[p.data + off:p.data + off + n] = data
    if flags & BPF_F_INVALIDATE_HASH:
        skb.f.hash = 0
    return 0


def _csum_field(skb: C.SkbContext, off: int) -> int | None:
    """Offset of a writable __sum16 in the packet (``bpf_try_make_writable``), or None (-EFAULT)."""
    if off > 0xFFFF or off & 1 or off + 2 > skb.len:
        return None
    return skb.pkt.data + off


def l3_csum_replace(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_l3_csum_replace(skb, offset, from, to, flags)`` on a CHECKSUM_NONE skb."""
    skb = _skb(vm, r1)
    if r5 & ~BPF_F_HDR_FIELD_MASK:
        return _neg(E.EINVAL)
    at = _csum_field(skb, r2 & M64)
    if at is None:
        return _neg(E.EFAULT)
    buf = skb.pkt.buf
    cur = int.from_bytes(buf[at:at + 2], "little")
    kind = r5 & BPF_F_HDR_FIELD_MASK
    if kind == 0:
        if r3:
            return _neg(E.EINVAL)
        new = csum_replace_by_diff(cur, r4)
    elif kind == 2:
        new = csum_replace2(cur, r3 & 0xFFFF, r4 & 0xFFFF)
    elif kind == 4:
        new = csum_replace4(cur, r3 & M32, r4 & M32)
    else:
        return _neg(E.EINVAL)
    buf[at:at + 2] = new.to_bytes(2, "little")
    return 0


def l4_csum_replace(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_l4_csum_replace``: like l3, plus MARK_MANGLED_0 (a zero UDP checksum stays zero)."""
    skb = _skb(vm, r1)
    flags = r5
    if flags & ~(BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE | BPF_F_PSEUDO_HDR | BPF_F_HDR_FIELD_MASK | BPF_F_IPV6):
        return _neg(E.EINVAL)
    at = _csum_field(skb, r2 & M64)
    if at is None:
        return _neg(E.EFAULT)
    buf = skb.pkt.buf
    cur = int.from_bytes(buf[at:at + 2], "little")
    mmzero = bool(flags & BPF_F_MARK_MANGLED_0)
    if mmzero and not flags & BPF_F_MARK_ENFORCE and not cur:
        return 0
    kind = flags & BPF_F_HDR_FIELD_MASK
    # On a CHECKSUM_NONE skb inet_proto_csum_replace* ignore the pseudo-header flag.
    if kind == 0:
        if r3:
            return _neg(E.EINVAL)
        new = csum_fold(csum_add(r4 & M32, ~cur & 0xFFFF))
    elif kind == 2:
        new = csum_replace2(cur, r3 & 0xFFFF, r4 & 0xFFFF)
    elif kind == 4:
        new = csum_replace4(cur, r3 & M32, r4 & M32)
    else:
        return _neg(E.EINVAL)
    if mmzero and not new:
        new = CSUM_MANGLED_0
    buf[at:at + 2] = new.to_bytes(2, "little")
    return 0


def csum_from32to16(c: int) -> int:
    """``csum_from32to16``: fold a 32-bit sum to 16 bits without inverting it."""
    c &= M32
    c = (c + (((c >> 16) | (c << 16)) & M32)) & M32
    return c >> 16


def csum_diff(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_csum_diff(from, from_size, to, to_size, seed)`` in its 6.12+ form (net/core/filter.c).

    The result is folded to 16 bits (``csum_from32to16``) on every architecture
    and sizes need no longer be multiples of 4 (measured on this kernel).
    """
    from_size, to_size = r2 & M32, r4 & M32
    seed = r5 & M32
    src = vm.mem.read_bytes(r1, from_size) if from_size else b""
    dst = vm.mem.read_bytes(r3, to_size) if to_size else b""
    if from_size and to_size:
        return csum_from32to16(csum_sub(csum_partial(dst, seed), csum_partial(src, 0)))
    if to_size:
        return csum_from32to16(csum_partial(dst, seed))
    if from_size:
        return csum_from32to16(~csum_partial(src, ~seed & M32))
    return csum_from32to16(seed)  # both sizes 0: the seed, folded like every other result


# ------------------------------------------------------------------------------------------------
# VLAN tags: bpf_skb_vlan_push / bpf_skb_vlan_pop (net/core/filter.c) on netstack.core.vlan_core
# ------------------------------------------------------------------------------------------------

def _swap16(v: int) -> int:
    return ((v & 0xFF) << 8) | ((v >> 8) & 0xFF)


class LegacyWindow:
    """The bytes LD_ABS/LD_IND may read, ``buf[:data_end]``, always as the packet is now (the
    buffer object itself may be replaced by a head expansion)."""

    __slots__ = ("pkt",)

    def __init__(self, pkt: C.PacketBuf) -> None:
        self.pkt = pkt

    def __len__(self) -> int:
        return self.pkt.data_end

    def __getitem__(self, k: slice) -> bytearray:
        return self.pkt.buf[k]


class _SkbAsPacket:
    """The ``__sk_buff`` context seen as the :class:`netstack.packet.skb.Packet` attributes that
    :mod:`netstack.core.vlan_core` works on, so the BPF helpers run the stack's own
    ``skb_vlan_push``/``skb_vlan_pop``.

    A tc program's skb has ``data`` at the MAC header (test_run ``__skb_push``es it, the tc hooks
    run on frames that start there), so ``mac_header`` is ``data``.  The network header is the one
    the legacy LD_ABS view holds (``skb->network_header``; ``data + 14`` without one).
    ``protocol``/``vlan_proto`` are converted between host order (vlan_core) and the network order
    :class:`~netstack.bpf.context.SkbFields` keeps.  ``expand_head`` grows the packet buffer at the
    front (``pskb_expand_head``) and remaps it in the program's address space.
    """

    transport_header = UNSET
    ip_summed = CHECKSUM_NONE  # test_run and tc skbs here carry no CHECKSUM_COMPLETE sum to adjust

    def __init__(self, vm: "ProgVm", skb: C.SkbContext) -> None:
        self.vm, self.skb, self.p, self.f = vm, skb, skb.pkt, skb.f
        legacy = vm.packet
        self.mac_header = self.p.data
        self.network_header = legacy.net_off if legacy is not None else self.p.data + C.ETH_HLEN

    # packet geometry
    buf = property(lambda self: self.p.buf)
    head = property(lambda self: 0)
    tail = property(lambda self: self.p.data_end)

    @property
    def data(self) -> int:
        return self.p.data

    @data.setter
    def data(self, v: int) -> None:
        # skb->data moves; with it bpf_compute_data_pointers moves data_meta (no metadata on skbs)
        self.p.data = self.p.data_meta = v

    def expand_head(self, extra: int) -> None:
        p = self.p
        p.buf = bytearray(extra) + p.buf
        p.data += extra
        p.data_meta += extra
        p.data_end += extra
        p.hard_end += extra
        self.mac_header += extra
        self.network_header += extra
        self.vm.mem.replace(p.base, p.buf)

    # sk_buff fields, host byte order for vlan_core
    @property
    def protocol(self) -> int:
        return _swap16(self.f.protocol)

    @protocol.setter
    def protocol(self, v: int) -> None:
        self.f.protocol = _swap16(v)

    @property
    def vlan_proto(self) -> int:
        return _swap16(self.f.vlan_proto)

    @vlan_proto.setter
    def vlan_proto(self, v: int) -> None:
        self.f.vlan_proto = _swap16(v)

    @property
    def vlan_tci(self) -> int:
        return self.f.vlan_tci

    @vlan_tci.setter
    def vlan_tci(self, v: int) -> None:
        self.f.vlan_tci = v & 0xFFFF

    def done(self) -> None:
        """After the operation: ``vlan_present`` (``vlan_all != 0``) and the legacy LD_ABS view
        (``skb->data``, mac and network headers) follow the new geometry."""
        f = self.f
        f.vlan_present = 1 if f.vlan_proto or f.vlan_tci else 0
        if self.vm.packet is not None:
            from .interp import Packet
            self.vm.packet = Packet(LegacyWindow(self.p), self.p.data, self.mac_header,  # type: ignore[arg-type]
                                    self.network_header)


def skb_vlan_push(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_skb_vlan_push(skb, __be16 vlan_proto, u16 vlan_tci)``.

    A TPID other than 802.1Q/802.1ad (in network order) becomes 802.1Q.  An out-of-band tag
    already present is first written into the packet behind the MAC addresses (``protocol``
    becomes its TPID, the network header moves back 4 bytes); the new tag is then the out-of-band
    one.  The packet may move, so the verifier invalidates packet pointers
    (``bpf_helper_changes_pkt_data``).  Returns 0.
    """
    skb = _skb(vm, r1)
    proto = _swap16(r2 & 0xFFFF)
    if proto not in (V.ETH_P_8021Q, V.ETH_P_8021AD):
        proto = V.ETH_P_8021Q
    view = _SkbAsPacket(vm, skb)
    V.skb_vlan_push(view, proto, r3 & 0xFFFF)  # type: ignore[arg-type]
    view.done()
    return 0


def skb_vlan_pop(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_skb_vlan_pop(skb)``: drop the out-of-band tag, or (none present) the first in-packet
    one; a further in-packet tag then moves out of band.  An untagged skb is left alone (0).

    A frame too short for the in-packet tag (``skb_ensure_writable(skb, VLAN_ETH_HLEN)``) is
    ``-ENOMEM``; the other refusal, ``-EINVAL`` for ``data`` not at the MAC header, cannot
    happen on a tc skb.
    """
    skb = _skb(vm, r1)
    view = _SkbAsPacket(vm, skb)
    try:
        V.skb_vlan_pop(view)  # type: ignore[arg-type]
    except V.VlanError:
        view.done()
        return _neg(E.ENOMEM)
    view.done()
    return 0


# ------------------------------------------------------------------------------------------------
# control flow: tail calls and redirects
# ------------------------------------------------------------------------------------------------

class TailCall(Exception):
    """Raised by ``bpf_tail_call`` to replace the running program (caught by ``Program``)."""

    def __init__(self, prog: object) -> None:
        super().__init__("tail call")
        self.prog = prog


def tail_call(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_tail_call(ctx, prog_array, index)``: on any failure execution simply continues."""
    m = _map(vm, r2)
    if m.map_type != M.BPF_MAP_TYPE_PROG_ARRAY:
        raise BpfRuntimeError("tail call through a map that is not a prog_array")
    idx = r3 & M32
    target = m.get(idx) if isinstance(m, M.FdArray) else None
    env = vm.env
    if target is None or env.tail_calls >= MAX_TAIL_CALL_CNT:
        return vm.regs[0]
    env.tail_calls += 1
    raise TailCall(target)


def redirect(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_redirect(ifindex, flags)``: XDP -> XDP_REDIRECT (flags must be 0); tc -> TC_ACT_REDIRECT."""
    env = vm.env
    if vm.prog.prog_type == C.BPF_PROG_TYPE_XDP:
        if r2:
            return C.XDP_ABORTED
        env.redirect = ("ifindex", r1 & M32, 0)
        return C.XDP_REDIRECT
    if r2 & ~BPF_F_INGRESS:
        return C.TC_ACT_SHOT
    env.redirect = ("ifindex", r1 & M32, r2)
    return C.TC_ACT_REDIRECT


def redirect_map(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_redirect_map(map, key, flags)``: the low 2 flag bits are the verdict when the slot is empty."""
    m = _map(vm, r1)
    flags = r3
    if flags & ~(3 | BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS):
        return C.XDP_ABORTED
    if flags & BPF_F_BROADCAST:
        raise NotSupported("bpf_redirect_map with BPF_F_BROADCAST")
    if m.map_type not in (M.BPF_MAP_TYPE_DEVMAP, M.BPF_MAP_TYPE_XSKMAP):
        raise BpfRuntimeError("bpf_redirect_map needs a devmap or xskmap")
    key = r2 & M32
    target = m.get(key) if isinstance(m, M.FdArray) else None
    if target is None:
        return flags & 3
    vm.env.redirect = ("map", m, key)
    return C.XDP_REDIRECT


# ------------------------------------------------------------------------------------------------
# XDP packet geometry
# ------------------------------------------------------------------------------------------------

def xdp_adjust_head(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    p = _xdp(vm, r1).pkt
    delta = _s32(r2)
    metalen = p.data - p.data_meta
    data = p.data + delta
    if data < C.XDP_FRAME_SIZE + metalen or data > p.data_end - C.ETH_HLEN:
        return _neg(E.EINVAL)
    if metalen:
        p.buf[p.data_meta + delta:p.data_meta + delta + metalen] = p.buf[p.data_meta:p.data]
    p.data_meta += delta
    p.data = data
    return 0


def xdp_adjust_meta(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    p = _xdp(vm, r1).pkt
    meta = p.data_meta + _s32(r2)
    if meta < C.XDP_FRAME_SIZE or meta > p.data:
        return _neg(E.EINVAL)
    metalen = p.data - meta
    if metalen & 3 or metalen > C.XDP_METALEN_MAX:
        return _neg(E.EACCES)
    p.data_meta = meta
    return 0


def xdp_adjust_tail(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    p = _xdp(vm, r1).pkt
    if p.frags:
        raise NotSupported("bpf_xdp_adjust_tail on a multi-buffer frame")
    delta = _s32(r2)
    end = p.data_end + delta
    if end > p.hard_end or end < p.data + C.ETH_HLEN:
        return _neg(E.EINVAL)
    if delta > 0:
        p.buf[p.data_end:end] = bytes(delta)
    p.data_end = end
    return 0


def fib_lookup(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_fib_lookup(ctx, params, plen, flags)``: delegated to ``env.fib_lookup`` when a FIB is given."""
    fib = vm.env.fib_lookup
    if fib is None:
        raise NotSupported("bpf_fib_lookup without a FIB in the run environment")
    plen = r3 & M32
    if plen < 64:  # sizeof(struct bpf_fib_lookup)
        return _neg(E.EINVAL)
    params = bytearray(vm.mem.read_bytes(r2, 64))
    rc = fib(params, r4, vm.ctx)
    vm.mem.write_bytes(r2, bytes(params))
    return rc & M64


# ------------------------------------------------------------------------------------------------
# perf events and ring buffers
# ------------------------------------------------------------------------------------------------

def perf_event_output(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_perf_event_output(ctx, map, flags, data, size)`` into a :class:`PerfEvent` recorder."""
    m = _map(vm, r2)
    flags = r3
    if m.map_type != M.BPF_MAP_TYPE_PERF_EVENT_ARRAY or not isinstance(m, M.FdArray):
        raise BpfRuntimeError("perf_event_output needs a perf_event_array")
    if flags & ~(BPF_F_INDEX_MASK | BPF_F_CTXLEN_MASK):
        return _neg(E.EINVAL)
    idx = flags & BPF_F_INDEX_MASK
    if idx == BPF_F_CURRENT_CPU:
        idx = vm.env.cpu
    if idx >= m.max_entries:
        return _neg(E.E2BIG)
    ev = m.get(idx)
    if ev is None:
        return _neg(E.ENOENT)
    ctxlen = (flags & BPF_F_CTXLEN_MASK) >> 32
    sample = vm.mem.read_bytes(r4, r5 & M32)
    if ctxlen:
        ctx = vm.ctx
        if not isinstance(ctx, (C.SkbContext, C.XdpContext)):
            return _neg(E.EINVAL)
        p = ctx.pkt
        if ctxlen > p.data_end - p.data:
            return _neg(E.EFAULT)
        sample += bytes(p.buf[p.data:p.data + ctxlen])
    ev.samples.append(sample)
    return 0


def _ringbuf(vm: "ProgVm", ptr: int) -> M.RingBuf:
    m = _map(vm, ptr)
    if not isinstance(m, M.RingBuf):
        raise BpfRuntimeError("map is not a ring buffer")
    return m


def ringbuf_output(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    rb = _ringbuf(vm, r1)
    return rb.output(vm.mem.read_bytes(r2, r3 & M32), r4) & M64


def ringbuf_reserve(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """``bpf_ringbuf_reserve(map, size, flags)``: a pointer to the sample, or NULL."""
    rb = _ringbuf(vm, r1)
    if r3:
        return 0
    rec = rb.reserve(r2 & M64) if r2 <= M32 else None
    if rec is None:
        return 0
    return vm.mem.map(rec.sample, name=f"ringbuf sample @{rec.pos}", obj=(rb, rec))


def _commit(vm: "ProgVm", ptr: int, flags: int, discard: bool) -> int:
    obj = vm.mem.object_at(ptr)
    if not (isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], M.RingBuf)) or ptr & M32:
        raise BpfRuntimeError("ringbuf submit/discard of a pointer that is not a reserved sample")
    rb, rec = obj
    if rec.done:
        raise BpfRuntimeError("ringbuf sample already submitted or discarded")
    rb.commit(rec, discard, flags)
    vm.mem.replace(ptr, bytearray())  # the verifier invalidates the pointer; make it fault
    return 0


def ringbuf_submit(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _commit(vm, r1, r2, False)


def ringbuf_discard(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _commit(vm, r1, r2, True)


def ringbuf_query(vm: "ProgVm", r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _ringbuf(vm, r1).query(r2) & M64


# ------------------------------------------------------------------------------------------------
# tables
# ------------------------------------------------------------------------------------------------

HelperFn = Callable[..., int]

HELPERS: dict[int, HelperFn] = {
    BPF_FUNC_map_lookup_elem: map_lookup_elem,
    BPF_FUNC_map_update_elem: map_update_elem,
    BPF_FUNC_map_delete_elem: map_delete_elem,
    BPF_FUNC_ktime_get_ns: ktime_get_ns,
    BPF_FUNC_trace_printk: trace_printk,
    BPF_FUNC_get_prandom_u32: get_prandom_u32,
    BPF_FUNC_get_smp_processor_id: get_smp_processor_id,
    BPF_FUNC_skb_store_bytes: skb_store_bytes,
    BPF_FUNC_l3_csum_replace: l3_csum_replace,
    BPF_FUNC_l4_csum_replace: l4_csum_replace,
    BPF_FUNC_tail_call: tail_call,
    BPF_FUNC_skb_vlan_push: skb_vlan_push,
    BPF_FUNC_skb_vlan_pop: skb_vlan_pop,
    BPF_FUNC_redirect: redirect,
    BPF_FUNC_perf_event_output: perf_event_output,
    BPF_FUNC_skb_load_bytes: skb_load_bytes,
    BPF_FUNC_csum_diff: csum_diff,
    BPF_FUNC_xdp_adjust_head: xdp_adjust_head,
    BPF_FUNC_redirect_map: redirect_map,
    BPF_FUNC_xdp_adjust_meta: xdp_adjust_meta,
    BPF_FUNC_xdp_adjust_tail: xdp_adjust_tail,
    BPF_FUNC_fib_lookup: fib_lookup,
    BPF_FUNC_ringbuf_output: ringbuf_output,
    BPF_FUNC_ringbuf_reserve: ringbuf_reserve,
    BPF_FUNC_ringbuf_submit: ringbuf_submit,
    BPF_FUNC_ringbuf_discard: ringbuf_discard,
    BPF_FUNC_ringbuf_query: ringbuf_query,
}

_BASE = {BPF_FUNC_map_lookup_elem, BPF_FUNC_map_update_elem, BPF_FUNC_map_delete_elem, BPF_FUNC_ktime_get_ns,
         BPF_FUNC_trace_printk, BPF_FUNC_get_prandom_u32, BPF_FUNC_get_smp_processor_id, BPF_FUNC_tail_call,
         BPF_FUNC_ringbuf_output, BPF_FUNC_ringbuf_reserve, BPF_FUNC_ringbuf_submit, BPF_FUNC_ringbuf_discard,
         BPF_FUNC_ringbuf_query, BPF_FUNC_perf_event_output}

#: Helpers each program type may call (its ``get_func_proto``, restricted to the helpers modelled here).
ALLOWED: dict[int, frozenset[int]] = {
    C.BPF_PROG_TYPE_SOCKET_FILTER: frozenset(_BASE | {BPF_FUNC_skb_load_bytes}),
    C.BPF_PROG_TYPE_SCHED_CLS: frozenset(_BASE | {BPF_FUNC_skb_store_bytes, BPF_FUNC_skb_load_bytes,
                                                  BPF_FUNC_l3_csum_replace, BPF_FUNC_l4_csum_replace,
                                                  BPF_FUNC_csum_diff, BPF_FUNC_redirect, BPF_FUNC_fib_lookup,
                                                  BPF_FUNC_skb_vlan_push, BPF_FUNC_skb_vlan_pop}),
    C.BPF_PROG_TYPE_XDP: frozenset(_BASE | {BPF_FUNC_csum_diff, BPF_FUNC_xdp_adjust_head, BPF_FUNC_xdp_adjust_meta,
                                            BPF_FUNC_xdp_adjust_tail, BPF_FUNC_redirect, BPF_FUNC_redirect_map,
                                            BPF_FUNC_fib_lookup}),
}
ALLOWED[C.BPF_PROG_TYPE_SCHED_ACT] = ALLOWED[C.BPF_PROG_TYPE_SCHED_CLS]


def table_for(prog_type: int) -> dict[int, HelperFn]:
    """The helper table a program of ``prog_type`` is linked against."""
    allowed = ALLOWED.get(prog_type)
    if allowed is None:
        raise NotSupported(f"program type {prog_type}")
    return {hid: fn for hid, fn in HELPERS.items() if hid in allowed}
