"""``bpf_fib_lookup`` (helper 69) on a namespace's FIB and neighbour tables.

Reproduces net/core/filter.c of Linux 6.18: ``bpf_xdp_fib_lookup`` / ``bpf_skb_fib_lookup``
(flag check, family dispatch, the skb-only device-MTU check when ``tot_len`` is 0) and
``bpf_ipv4_fib_lookup`` / ``bpf_ipv6_fib_lookup`` (forwarding sysctl of the named device,
ingress/egress flow, DIRECT/TBID table lookup or the full policy lookup with MARK, route
type -> return code, multipath selection, MTU check, gateway rewrite, SRC, SKIP_NEIGH and
the neighbour lookup that yields dmac only for a NUD_VALID entry).

``struct bpf_fib_lookup`` (include/uapi/linux/bpf.h), 64 bytes, little-endian host fields
and network-order address / port fields::

    0 family  1 l4_protocol  2 sport  4 dport  6 tot_len|mtu_result  8 ifindex
    12 tos|flowinfo|rt_metric  16 ipv4_src|ipv6_src[16]  32 ipv4_dst|ipv6_dst[16]
    48 h_vlan_proto,h_vlan_TCI|tbid  52 mark (input) | smac[6] 58 dmac[6] (output)

Model limits, stated rather than hidden: netstack routes carry no lightweight-tunnel
encapsulation, so ``BPF_FIB_LKUP_RET_UNSUPP_LWT`` cannot arise; there is no l3mdev (VRF),
so DIRECT without TBID always uses the main table; IPv4 routes with an IPv6 gateway are
not modelled by the FIB; an IPv6 lookup treats ``oif`` as the kernel does without
``RT6_LOOKUP_F_IFACE`` only in that it never *requires* the device (the kernel's
preference for it among routes of one prefix is not modelled); the ECMP hash is
netstack's (see netstack/ipv4/route.py), so which path of a multipath route is chosen
differs from a given kernel.
"""
from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING, Callable

from netstack.bpf.context import SkbContext
from netstack.core.neighbour import NUD_VALID, neigh_lookup

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice

AF_INET = 2
AF_INET6 = 10

BPF_FIB_LOOKUP_DIRECT = 1 << 0
BPF_FIB_LOOKUP_OUTPUT = 1 << 1
BPF_FIB_LOOKUP_SKIP_NEIGH = 1 << 2
BPF_FIB_LOOKUP_TBID = 1 << 3
BPF_FIB_LOOKUP_SRC = 1 << 4
BPF_FIB_LOOKUP_MARK = 1 << 5
FIB_LOOKUP_FLAGS = (BPF_FIB_LOOKUP_DIRECT | BPF_FIB_LOOKUP_OUTPUT | BPF_FIB_LOOKUP_SKIP_NEIGH
                    | BPF_FIB_LOOKUP_TBID | BPF_FIB_LOOKUP_SRC | BPF_FIB_LOOKUP_MARK)

BPF_FIB_LKUP_RET_SUCCESS = 0
BPF_FIB_LKUP_RET_BLACKHOLE = 1
BPF_FIB_LKUP_RET_UNREACHABLE = 2
BPF_FIB_LKUP_RET_PROHIBIT = 3
BPF_FIB_LKUP_RET_NOT_FWDED = 4
BPF_FIB_LKUP_RET_FWD_DISABLED = 5
BPF_FIB_LKUP_RET_UNSUPP_LWT = 6
BPF_FIB_LKUP_RET_NO_NEIGH = 7
BPF_FIB_LKUP_RET_FRAG_NEEDED = 8
BPF_FIB_LKUP_RET_NO_SRC_ADDR = 9

SIZEOF_BPF_FIB_LOOKUP = 64
RT_TABLE_MAIN = 254
LOOPBACK_IFINDEX = 1
IP_MAX_MTU = 0xFFFF
IP6_MAX_MTU = 0xFFFF + 40
VLAN_HLEN = 4
IFF_UP = 0x1

# field offsets
OFF_FAMILY, OFF_PROTO, OFF_SPORT, OFF_DPORT, OFF_TOT_LEN, OFF_IFINDEX = 0, 1, 2, 4, 6, 8
OFF_TOS, OFF_SRC, OFF_DST, OFF_TBID, OFF_MARK, OFF_SMAC, OFF_DMAC = 12, 16, 32, 48, 52, 52, 58


class FibParams:
    """A view of one ``struct bpf_fib_lookup`` in a bytearray (what the program passed)."""

    __slots__ = ("b",)

    def __init__(self, b: bytearray) -> None:
        self.b = b

    def u8(self, off: int) -> int:
        return self.b[off]

    def u16(self, off: int) -> int:
        return int(struct.unpack_from("<H", self.b, off)[0])

    def u32(self, off: int) -> int:
        return int(struct.unpack_from("<I", self.b, off)[0])

    def be16(self, off: int) -> int:
        return int.from_bytes(self.b[off:off + 2], "big")

    def raw(self, off: int, n: int) -> bytes:
        return bytes(self.b[off:off + n])

    def set_u16(self, off: int, v: int) -> None:
        struct.pack_into("<H", self.b, off, v & 0xFFFF)

    def set_u32(self, off: int, v: int) -> None:
        struct.pack_into("<I", self.b, off, v & 0xFFFFFFFF)

    def set_raw(self, off: int, data: bytes) -> None:
        self.b[off:off + len(data)] = data


def _set_fwd_params(p: FibParams, mtu: int) -> int:
    """``bpf_fib_set_fwd_params``: no VLAN on the egress path; mtu_result when checked."""
    p.set_u32(OFF_TBID, 0)   # h_vlan_proto = h_vlan_TCI = 0
    if mtu:
        p.set_u16(OFF_TOT_LEN, mtu)
    return BPF_FIB_LKUP_RET_SUCCESS


def _neigh_result(p: FibParams, tbl: object, dev: "NetDevice", key: bytes, mtu: int) -> int:
    """The tail of both lookups: NO_NEIGH unless the entry is NUD_VALID, then the MACs."""
    n = neigh_lookup(tbl, dev, key) if tbl is not None else None  # type: ignore[arg-type]
    if n is None or not n.nud_state & NUD_VALID:
        return BPF_FIB_LKUP_RET_NO_NEIGH
    p.set_raw(OFF_DMAC, bytes(n.ha[:6]))
    p.set_raw(OFF_SMAC, bytes(dev.address[:6]))
    return _set_fwd_params(p, mtu)


# --------------------------------------------------------------------------------- IPv4
def _ip_mtu_from_fib_result(net: "Net", res: object, daddr: int) -> int:
    """``ip_mtu_from_fib_result`` (include/net/ip_fib.h): the route's mtu metric when
    ``ip_forward_use_pmtu`` is on or the metric is locked, else a live learned PMTU of the
    path's exception for ``daddr``, else the device MTU (at most IP_MAX_MTU)."""
    from netstack.ipv4.route_exceptions import find_exception
    fi = res.fi  # type: ignore[attr-defined]
    nh = res.nh  # type: ignore[attr-defined]
    mtu = 0
    if net.sysctl.values.get("net.ipv4.ip_forward_use_pmtu", 0) or \
            "mtu" in fi.metrics.get("lock", ()):
        mtu = int(fi.metrics.get("mtu", 0) or 0)
    if not mtu:
        fnhe = find_exception(net, nh, daddr)
        if fnhe is not None and fnhe.pmtu and net.world.clock.now < fnhe.expires:
            mtu = fnhe.pmtu
    if not mtu:
        mtu = min(nh.dev.mtu, IP_MAX_MTU)
    return mtu


def bpf_ipv4_fib_lookup(net: "Net", p: FibParams, flags: int, check_mtu: bool) -> int:
    """``bpf_ipv4_fib_lookup`` (net/core/filter.c)."""
    from netstack.ipv4 import fib as ipv4_fib
    from netstack.ipv4 import route as ipv4_route
    from netstack.ipv4.devinet import in_dev_get
    from netstack.ipv4.fib_semantics import RTN_UNICAST

    ifindex = p.u32(OFF_IFINDEX)
    dev = net.get_by_index(ifindex)
    if dev is None:
        return -errno.ENODEV
    # IN_DEV_FORWARD: the device's own conf.forwarding (not max(all, dev))
    if in_dev_get(dev) is None or \
            not net.sysctl.values.get(f"net.ipv4.conf.{dev.name}.forwarding", 0):
        return BPF_FIB_LKUP_RET_FWD_DISABLED
    if flags & BPF_FIB_LOOKUP_OUTPUT:
        iif, oif = LOOPBACK_IFINDEX, ifindex
    else:
        iif, oif = ifindex, 0
    daddr = int.from_bytes(p.raw(OFF_DST, 4), "big")
    fl4 = ipv4_fib.Flowi4(daddr=daddr, saddr=p.raw(OFF_SRC, 4), tos=p.u8(OFF_TOS) & 0xFC,
                          oif=oif, iif=iif, proto=p.u8(OFF_PROTO), sport=p.be16(OFF_SPORT),
                          dport=p.be16(OFF_DPORT))
    if flags & BPF_FIB_LOOKUP_DIRECT:
        tbid = RT_TABLE_MAIN
        if flags & BPF_FIB_LOOKUP_TBID:
            tbid = p.u32(OFF_TBID)
            p.set_u32(OFF_TBID, 0)   # zeroed for the vlan output
        tb = ipv4_fib.fib_get_table(net, tbid)
        if tb is None:
            return BPF_FIB_LKUP_RET_NOT_FWDED
        res = ipv4_fib.fib_table_lookup(net, tb, fl4)
    else:
        if flags & BPF_FIB_LOOKUP_MARK:
            fl4.mark = p.u32(OFF_MARK)
        res = ipv4_fib.fib_lookup_errno(net, fl4)
    if type(res) is int:
        # map fib lookup errors to RTN_ type
        return {-errno.EINVAL: BPF_FIB_LKUP_RET_BLACKHOLE,
                -errno.EHOSTUNREACH: BPF_FIB_LKUP_RET_UNREACHABLE,
                -errno.EACCES: BPF_FIB_LKUP_RET_PROHIBIT}.get(res, BPF_FIB_LKUP_RET_NOT_FWDED)
    if res.type != RTN_UNICAST:
        return BPF_FIB_LKUP_RET_NOT_FWDED
    if len(res.fi.nexthops) > 1 and not fl4.oif:
        h = ipv4_route.fib_multipath_hash(net, fl4, None)
        ipv4_route._select_multipath(net, res, h, fl4.saddr)
    mtu = 0
    if check_mtu:
        mtu = _ip_mtu_from_fib_result(net, res, daddr)
        if p.u16(OFF_TOT_LEN) > mtu:
            p.set_u16(OFF_TOT_LEN, mtu)
            return BPF_FIB_LKUP_RET_FRAG_NEEDED
    nh = res.nh
    out = nh.dev
    if flags & BPF_FIB_LOOKUP_SRC:
        p.set_raw(OFF_SRC, ipv4_route.fib_result_prefsrc(net, res).to_bytes(4, "big"))
    p.set_u32(OFF_TOS, res.fi.priority)
    p.set_u32(OFF_IFINDEX, out.ifindex)
    if nh.gw is not None:
        p.set_raw(OFF_DST, bytes(nh.gw[:4]))
    if flags & BPF_FIB_LOOKUP_SKIP_NEIGH:
        return _set_fwd_params(p, mtu)
    return _neigh_result(p, getattr(net.ipv4, "arp_tbl", None), out, p.raw(OFF_DST, 4), mtu)


# --------------------------------------------------------------------------------- IPv6
def _rt6_need_strict(a: bytes) -> bool:
    """``rt6_need_strict``: multicast, link-local unicast or loopback."""
    return a[0] == 0xFF or (a[0] == 0xFE and a[1] & 0xC0 == 0x80) or a == bytes(15) + b"\x01"


def bpf_ipv6_fib_lookup(net: "Net", p: FibParams, flags: int, check_mtu: bool) -> int:
    """``bpf_ipv6_fib_lookup`` (net/core/filter.c)."""
    from netstack.ipv6 import route as r6
    from netstack.ipv6.addrconf import ipv6_dev_get_saddr
    from netstack.ipv6.route import RTN_BLACKHOLE, RTN_PROHIBIT, RTN_UNICAST, RTN_UNREACHABLE

    src, dst = p.raw(OFF_SRC, 16), p.raw(OFF_DST, 16)
    if _rt6_need_strict(dst) or _rt6_need_strict(src):   # link local is never forwarded
        return BPF_FIB_LKUP_RET_NOT_FWDED
    dev = net.get_by_index(p.u32(OFF_IFINDEX))
    if dev is None:
        return -errno.ENODEV
    if dev.ip6_ptr is None or \
            not net.sysctl.values.get(f"net.ipv6.conf.{dev.name}.forwarding", 0):
        return BPF_FIB_LKUP_RET_FWD_DISABLED
    fl6 = r6.Flowi6(daddr=dst, saddr=src, proto=p.u8(OFF_PROTO), sport=p.be16(OFF_SPORT),
                    dport=p.be16(OFF_DPORT), flowlabel=int.from_bytes(p.raw(OFF_TOS, 4), "big"))
    if flags & BPF_FIB_LOOKUP_OUTPUT:
        fl6.iif = LOOPBACK_IFINDEX
    else:
        fl6.iif = dev.ifindex
    res: "r6.Fib6Result | None"
    if flags & BPF_FIB_LOOKUP_DIRECT:
        tbid = RT_TABLE_MAIN
        if flags & BPF_FIB_LOOKUP_TBID:
            tbid = p.u32(OFF_TBID) or RT_TABLE_MAIN
            p.set_u32(OFF_TBID, 0)
        if net.ipv6.fib_tables.get(tbid) is None:
            return BPF_FIB_LKUP_RET_NOT_FWDED
        res = r6._lookup_table(net, tbid, dst, 0)
        if res is not None and res.route.type == r6.RTN_THROW:
            res = None
    else:
        if flags & BPF_FIB_LOOKUP_MARK:
            fl6.mark = p.u32(OFF_MARK)
        res = r6.fib6_lookup(net, fl6)
    if res is None:
        return BPF_FIB_LKUP_RET_NOT_FWDED
    rtype = res.route.type
    if rtype == RTN_BLACKHOLE:
        return BPF_FIB_LKUP_RET_BLACKHOLE
    if rtype == RTN_UNREACHABLE:
        return BPF_FIB_LKUP_RET_UNREACHABLE
    if rtype == RTN_PROHIBIT:
        return BPF_FIB_LKUP_RET_PROHIBIT
    if rtype != RTN_UNICAST or res.nh is None or res.nh.dev is None:
        return BPF_FIB_LKUP_RET_NOT_FWDED
    r6.fib6_select_path(net, res, fl6)
    nh = res.nh
    out = nh.dev
    mtu = 0
    if check_mtu:
        # ip6_mtu_from_fib6 (net/ipv6/route.c): the route's mtu metric only when locked
        # (an unlocked one does not limit forwarding), else the device's mtu6
        metrics = res.route.metrics
        mtu = int(metrics.get("mtu", 0) or 0) if "mtu" in metrics.get("lock", ()) else 0
        if not mtu:
            mtu = out.ip6_ptr.mtu6 if out.ip6_ptr is not None else out.mtu
        mtu = min(mtu, IP6_MAX_MTU)
        if p.u16(OFF_TOT_LEN) > mtu:
            p.set_u16(OFF_TOT_LEN, mtu)
            return BPF_FIB_LKUP_RET_FRAG_NEEDED
    if nh.gw is not None:
        dst = bytes(nh.gw)
        p.set_raw(OFF_DST, dst)
    p.set_u32(OFF_TOS, res.route.priority)
    p.set_u32(OFF_IFINDEX, out.ifindex)
    if flags & BPF_FIB_LOOKUP_SRC:
        if res.route.prefsrc is not None:
            p.set_raw(OFF_SRC, bytes(res.route.prefsrc))
        else:
            saddr = ipv6_dev_get_saddr(net, out, fl6.daddr)
            if saddr is None:
                return BPF_FIB_LKUP_RET_NO_SRC_ADDR
            p.set_raw(OFF_SRC, saddr)
    if flags & BPF_FIB_LOOKUP_SKIP_NEIGH:
        return _set_fwd_params(p, mtu)
    return _neigh_result(p, getattr(net.ipv6, "nd_tbl", None), out, dst, mtu)


# ------------------------------------------------------------------------- the helper
def _is_skb_forwardable(dev: "NetDevice", skb_len: int) -> bool:
    """``is_skb_forwardable`` for a non-GSO skb: up, and at most mtu + L2 header + a VLAN tag."""
    if not dev.is_up:
        return False
    hard_header_len = getattr(dev, "hard_header_len", 14)
    return skb_len <= dev.mtu + hard_header_len + VLAN_HLEN


def fib_lookup(net: "Net", params: bytearray, flags: int, ctx: object) -> int:
    """``bpf_xdp_fib_lookup`` (XDP ctx: MTU always checked) or ``bpf_skb_fib_lookup``
    (skb ctx: MTU checked against ``tot_len`` when given, else the skb against the egress
    device, with ``mtu_result`` = device MTU).  ``params`` is modified in place; the
    return value is the helper's (negative errno or BPF_FIB_LKUP_RET_*)."""
    flags &= 0xFFFFFFFF
    if len(params) < SIZEOF_BPF_FIB_LOOKUP:
        return -errno.EINVAL
    if flags & ~FIB_LOOKUP_FLAGS:
        return -errno.EINVAL
    p = FibParams(params)
    family = p.u8(OFF_FAMILY)
    is_skb = isinstance(ctx, SkbContext)
    check_mtu = True if not is_skb else bool(p.u16(OFF_TOT_LEN))
    if family == AF_INET:
        rc = bpf_ipv4_fib_lookup(net, p, flags, check_mtu)
    elif family == AF_INET6:
        rc = bpf_ipv6_fib_lookup(net, p, flags, check_mtu)
    else:
        return -errno.EAFNOSUPPORT
    if is_skb and rc == BPF_FIB_LKUP_RET_SUCCESS and not check_mtu:
        dev = net.get_by_index(p.u32(OFF_IFINDEX))
        if dev is not None:
            pkt = ctx.pkt  # type: ignore[attr-defined]
            if not _is_skb_forwardable(dev, pkt.data_end - pkt.data):
                rc = BPF_FIB_LKUP_RET_FRAG_NEEDED
            p.set_u16(OFF_TOT_LEN, dev.mtu)
    return rc


def make_fib_lookup(net: "Net") -> Callable[[bytearray, int, object], int]:
    """The ``RunEnv.fib_lookup`` callable for programs running in ``net``."""
    def lookup(params: bytearray, flags: int, ctx: object) -> int:
        return fib_lookup(net, params, flags, ctx)
    return lookup


__all__ = ["make_fib_lookup", "fib_lookup", "bpf_ipv4_fib_lookup", "bpf_ipv6_fib_lookup",
           "FibParams"]
