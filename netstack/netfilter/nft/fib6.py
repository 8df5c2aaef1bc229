"""``fib`` on IPv6 packets: ``nft_fib6_eval`` / ``nft_fib6_eval_type``
(net/ipv6/netfilter/nft_fib_ipv6.c), reached from ip6 chains and, for IPv6 packets,
from inet chains (``nft_fib_inet_eval`` dispatches on the packet's family).

* oif/oifname/present: the route to the chosen address (``daddr``, or ``saddr`` with the
  addresses swapped), ``mark`` from the packet, a link-local destination looked up on the
  device (RT6_LOOKUP_F_IFACE); in prerouting a loopback packet or an ICMPv6 packet from
  ``::`` to a link-local address yields the input device; an error, reject, local or
  anycast route yields nothing (0); with ``iif``/``oif`` the route's device must be that
  device.
* type: RTN_LOCAL for an address of the given device (strict), else the output route:
  its error (EINVAL blackhole, EACCES prohibit, EAGAIN throw, else unreachable), an
  anycast destination (route type or the subnet-router anycast address), a local route
  when no device was given; otherwise multicast/unicast/unspec by address type."""
from __future__ import annotations

import errno
import struct
from typing import Any

# include/uapi/linux/rtnetlink.h route types
RTN_UNSPEC, RTN_UNICAST, RTN_LOCAL, RTN_BROADCAST, RTN_ANYCAST, RTN_MULTICAST = 0, 1, 2, 3, 4, 5
RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT, RTN_THROW = 6, 7, 8, 9
_PRE_ROUTING, _INGRESS = 0, 5


def _linklocal(a: bytes) -> bool:
    return a[0] == 0xFE and a[1] & 0xC0 == 0x80


def _flowi(fib: Any, pkt: Any, nh: int, dev: Any) -> Any:
    """``nft_fib6_flowi_init``."""
    from netstack.ipv6.route import Flowi6
    b = pkt.buf
    saddr, daddr = bytes(b[nh + 8:nh + 24]), bytes(b[nh + 24:nh + 40])
    if "daddr" not in fib.flags:
        saddr, daddr = daddr, saddr
    oif = 0
    if _linklocal(daddr):
        d = dev if dev is not None else pkt.dev
        oif = d.ifindex if d is not None else 0
    mark = pkt.mark if "mark" in fib.flags else 0
    label = int.from_bytes(b[nh:nh + 4], "big") & 0x0FFFFFFF
    return Flowi6(daddr, saddr if saddr[0] != 0xFF and saddr != bytes(16) else bytes(16),
                  oif=oif, mark=mark, flowlabel=label)


def _dev_of(fib: Any, info: Any) -> Any:
    st = info.state
    if "iif" in fib.flags:
        return getattr(st, "in_dev", None)
    if "oif" in fib.flags:
        return getattr(st, "out_dev", None)
    return None


def fib6_eval(fib: Any, regs: Any, info: Any) -> None:
    from netstack.netfilter.nft.vm import NFT_BREAK, _ifname, _put
    pkt, net = info.pkt, info.net
    nh = pkt.network_header
    if nh < 0 or nh + 40 > pkt.tail:
        regs.code = NFT_BREAK
        return
    dev = _dev_of(fib, info)
    if fib.result == "type":
        _put(regs, fib.dreg, struct.pack("<I", _eval_type(fib, info, net, pkt, nh, dev)))
        return
    fl6 = _flowi(fib, pkt, nh, dev)
    found = None
    hook = getattr(info.state, "hook", -1)
    indev = getattr(info.state, "in_dev", None)
    b = pkt.buf
    if hook in (_PRE_ROUTING, _INGRESS) and (
            getattr(pkt, "pkt_type", 0) == 5 or (indev is not None and indev.flags & 0x8) or
            (info.tprot == 58 and bytes(b[nh + 8:nh + 24]) == bytes(16) and
             _linklocal(bytes(b[nh + 24:nh + 40])))):
        found = indev
    else:
        from netstack.ipv6.route import ERROR_TYPES, fib6_lookup, fib6_select_path
        res = fib6_lookup(net, fl6)
        if res is not None and res.route.type not in ERROR_TYPES and \
                res.route.type not in (RTN_LOCAL, RTN_ANYCAST):
            fib6_select_path(net, res, fl6)
            rdev = res.nh.dev if res.nh is not None else None
            if not (dev is not None and rdev is not dev):
                found = rdev
    if fib.present:
        _put(regs, fib.dreg, struct.pack("<I", int(found is not None)))
    elif fib.result == "oif":
        _put(regs, fib.dreg, struct.pack("<I", found.ifindex if found is not None else 0))
    else:
        _put(regs, fib.dreg, _ifname(found) if found is not None else bytes(16))


def _eval_type(fib: Any, info: Any, net: Any, pkt: Any, nh: int, dev: Any) -> int:
    from netstack.errors import KernelError
    from netstack.ipv6.addrconf import ipv6_chk_addr
    from netstack.ipv6.route import RTN_ANYCAST as R_ANY, ip6_route_output
    fl6 = _flowi(fib, pkt, nh, dev)
    fl6.proto = info.tprot
    ret = RTN_UNSPEC
    if dev is not None and ipv6_chk_addr(net, fl6.daddr, dev, True):
        ret = RTN_LOCAL
    try:
        rt = ip6_route_output(net, fl6)
    except KernelError as e:
        return {errno.EINVAL: RTN_BLACKHOLE, errno.EACCES: RTN_PROHIBIT,
                errno.EAGAIN: RTN_THROW}.get(e.errno, RTN_UNREACHABLE)
    r = rt.route
    if rt.type == R_ANY or (r is not None and r.dst_len != 128 and r.dst == fl6.daddr):
        ret = RTN_ANYCAST
    elif dev is None and rt.type == RTN_LOCAL:
        ret = RTN_LOCAL
    if ret:
        return ret
    d = fl6.daddr
    if d[0] == 0xFF:
        return RTN_MULTICAST
    if d != bytes(16):
        return RTN_UNICAST
    return RTN_UNSPEC
