"""Next-hop exceptions: what the kernel learns per destination behind a path
(net/ipv4/route.c ``struct fib_nh_exception``, ``update_or_create_fnhe``,
``__ip_do_redirect``, ``__ip_rt_update_pmtu``).

Why a separate store instead of cached routes: netstack builds a fresh :class:`Rtable`
per lookup, so the only state that must persist is what ICMP taught us — a redirect
gateway (expires after ``net.ipv4.route.gc_timeout``) or a smaller path MTU (expires after
``net.ipv4.route.mtu_expires``, locked at ``min_pmtu`` when a bogus tiny value arrives).
It hangs off the route's nexthop (``FibNexthop.exceptions``), so it disappears with the
route, and a ``net.ipv4.route.flush`` write bumps the generation that invalidates it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netstack.errors import KernelError
from netstack.ipv4 import fib as F
from netstack.ipv4.devinet import in_dev_get, inet_addr_onlink
from netstack.ipv4.fib import Flowi4, fib_lookup_errno
from netstack.ipv4.fib_semantics import RTN_UNICAST, int_to_ip, ip_to_int

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.ipv4.route import Rtable
    from netstack.packet.skb import Packet

RTCF_REDIRECTED = 0x00040000
NUD_VALID = 0x80 | 0x40 | 0x02 | 0x10 | 0x04 | 0x08


def _is_multicast(a: int) -> bool:
    return (a >> 28) == 0xE


def _is_zeronet(a: int) -> bool:
    return (a >> 24) == 0


def _orconf(net: "Net", dev: "NetDevice", name: str) -> int:
    v = net.sysctl.values
    return v.get(f"net.ipv4.conf.all.{name}", 0) or v.get(f"net.ipv4.conf.{dev.name}.{name}", 0)


class Fnhe:
    """``struct fib_nh_exception``: what was learned about one destination behind one
    path — a redirect gateway and/or a path MTU, with an expiry (virtual ns, 0 = none)."""

    __slots__ = ("daddr", "gw", "pmtu", "mtu_locked", "expires", "genid", "stamp")

    def __init__(self, daddr: int, genid: int) -> None:
        self.daddr = daddr
        self.gw = 0
        self.pmtu = 0
        self.mtu_locked = False
        self.expires = 0
        self.genid = genid
        self.stamp = 0


def _fnhe_genid(net: "Net") -> int:
    return getattr(net.ipv4, "fnhe_genid", 0)


def find_exception(net: "Net", nh: Any, daddr: int) -> Fnhe | None:
    """``find_exception``: an exception that expired is removed on sight."""
    fnhe = nh.exceptions.get(daddr)
    if fnhe is None:
        return None
    if fnhe.expires and net.world.clock.now > fnhe.expires:
        del nh.exceptions[daddr]
        return None
    return fnhe


def update_or_create_fnhe(net: "Net", nh: Any, daddr: int, gw: int, pmtu: int, lock: bool,
                          expires: int) -> Fnhe:
    """``update_or_create_fnhe`` (no bucket eviction: the kernel's hash is keyed
    randomly, so which old entry it would reclaim is not reproducible)."""
    genid = _fnhe_genid(net)
    fnhe = nh.exceptions.get(daddr)
    if fnhe is None:
        fnhe = nh.exceptions[daddr] = Fnhe(daddr, genid)
    elif fnhe.genid != genid:
        fnhe.genid = genid
    if gw:
        fnhe.gw = gw
    if pmtu:
        fnhe.pmtu = pmtu
        fnhe.mtu_locked = lock
    fnhe.expires = max(1, expires)
    fnhe.stamp = net.world.clock.now
    return fnhe


def _bind_exception(net: "Net", rt: "Rtable", fnhe: Fnhe) -> None:
    """``rt_bind_exception`` + ``fill_route_from_fnhe``: a stale generation (after
    ``net.ipv4.route.flush``) resets the exception; else its PMTU (while not expired)
    and redirect gateway apply to the route."""
    if fnhe.genid != _fnhe_genid(net):
        fnhe.genid = _fnhe_genid(net)
        fnhe.gw = fnhe.pmtu = fnhe.expires = 0
        fnhe.mtu_locked = False
    now = net.world.clock.now
    if (fnhe.pmtu or fnhe.gw) and now < fnhe.expires:
        rt.expires = fnhe.expires
    if fnhe.pmtu and now < fnhe.expires:
        rt.pmtu = fnhe.pmtu
        if fnhe.mtu_locked:
            rt.metrics = dict(rt.metrics)
            rt.metrics["lock"] = list(rt.metrics.get("lock", ())) + ["mtu"]
    if fnhe.gw:
        rt.flags |= RTCF_REDIRECTED
        rt.uses_gateway = True
        rt.gateway = int_to_ip(fnhe.gw)


#: net.ipv4.route.* defaults (net/ipv4/route.c): seconds, except min_pmtu (bytes).
IP_RT_MTU_EXPIRES_S = 600
IP_RT_MIN_PMTU = 512 + 20 + 20
IP_RT_GC_TIMEOUT_S = 300
NSEC = 1_000_000_000


def _flow_from_quoted(buf: bytearray, off: int, oif: int, mark: int, proto: int) -> Flowi4:
    """``__build_flow_key`` from a quoted IPv4 header: the flow of the packet we sent."""
    return Flowi4(daddr=bytes(buf[off + 16:off + 20]), saddr=bytes(buf[off + 12:off + 16]),
                  tos=buf[off + 1] & 0x1E, oif=oif, mark=mark, proto=proto)


def ipv4_update_pmtu(net: "Net", iph: bytes | bytearray, mtu: int, oif: int = 0,
                     mark: int = 0, proto: int = 0) -> None:
    """``ipv4_update_pmtu`` + ``__ip_rt_update_pmtu``: learn a smaller path MTU towards
    the destination of the quoted header ``iph`` (what ICMP "fragmentation needed" or a
    socket's PMTU discovery reports).  Never raises: an unroutable quote is ignored."""
    if len(iph) < 20:
        return
    from netstack.ipv4.route import _select_path, ip_route_output
    fl4 = _flow_from_quoted(bytearray(iph), 0, oif, mark, proto)
    try:
        rt = ip_route_output(net, fl4)
    except KernelError:
        return
    if "mtu" in rt.metrics.get("lock", ()):
        return
    old_mtu = rt.mtu()
    if old_mtu < mtu:
        return
    vals = net.sysctl.values
    min_pmtu = vals.get("net.ipv4.route.min_pmtu", IP_RT_MIN_PMTU)
    expires_ns = vals.get("net.ipv4.route.mtu_expires", IP_RT_MTU_EXPIRES_S) * NSEC
    lock = False
    if mtu < min_pmtu:
        lock = True
        mtu = min(old_mtu, min_pmtu)
    now = net.world.clock.now
    if rt.pmtu == mtu and not lock and rt.fi is not None:
        nh = rt.fi.nexthops[rt.nh_sel] if rt.fi.nexthops else None
        fnhe = nh.exceptions.get(fl4.daddr) if nh is not None else None
        if fnhe is not None and now < fnhe.expires - expires_ns // 2:
            return
    res = fib_lookup_errno(net, fl4)
    if type(res) is int:
        return
    _select_path(net, res, fl4)
    nh = res.nh
    if nh is not None:
        update_or_create_fnhe(net, nh, fl4.daddr, 0, mtu, lock, now + expires_ns)


def _rx_redirects(net: "Net", dev: "NetDevice") -> bool:
    """``IN_DEV_RX_REDIRECTS``: a forwarding device needs all && dev, a host all || dev."""
    v = net.sysctl.values
    a = v.get("net.ipv4.conf.all.accept_redirects", 1)
    d = v.get(f"net.ipv4.conf.{dev.name}.accept_redirects", 1)
    if v.get(f"net.ipv4.conf.{dev.name}.forwarding", 0):
        return bool(a and d)
    return bool(a or d)


def ip_rt_redirect(net: "Net", pkt: "Packet") -> None:
    """``ipv4_redirect`` + ``__ip_do_redirect`` for an ICMP redirect ``pkt`` (``data`` at
    the ICMP header, ``network_header`` at the outer IPv4 header, ``dev`` the input
    device).  The route to the quoted destination must currently use the redirect's
    sender as gateway; the new gateway must be a valid on-link unicast address
    (secure/shared-media rules) whose ARP entry is already valid — otherwise resolution
    is started and nothing is learned yet, as in the kernel.  Callers decide when a
    redirect reaches here (the kernel does it from the quoted protocol's err handler)."""
    buf = pkt.buf
    d = pkt.data
    if pkt.tail - d < 8 + 20 or pkt.dev is None:
        return
    code = buf[d + 1] & 7
    if code > 3:
        return
    new_gw = int.from_bytes(buf[d + 4:d + 8], "big")
    nh_off = pkt.network_header if pkt.network_header >= 0 else d - 20
    old_gw = int.from_bytes(buf[nh_off + 12:nh_off + 16], "big")
    from netstack.ipv4.route import _select_path, ip_route_output
    fl4 = _flow_from_quoted(buf, d + 8, 0, 0, buf[d + 8 + 9])
    try:
        rt = ip_route_output(net, fl4)
    except KernelError:
        return
    if rt.gateway is None or ip_to_int(rt.gateway) != old_gw:
        return
    dev = pkt.dev
    idev = in_dev_get(dev)
    if idev is None:
        return
    if (new_gw == old_gw or not _rx_redirects(net, dev) or _is_multicast(new_gw)
            or new_gw == 0xFFFFFFFF or _is_zeronet(new_gw)):
        return
    if not _orconf(net, dev, "shared_media"):
        if not inet_addr_onlink(idev, new_gw, old_gw):
            return
        # ip_fib_check_default() returns 0 when new_gw is a live gateway via dev and -1
        # otherwise: secure_redirects only accepts gateways we already route through.
        if _orconf(net, dev, "secure_redirects") and not _is_known_gw(net, new_gw, dev):
            return
    elif F.inet_addr_type(net, new_gw) != RTN_UNICAST:
        return
    tbl = getattr(net.ipv4, "arp_tbl", None)
    if tbl is None or rt.dev is None:
        return
    from netstack.core import neighbour
    key = int_to_ip(new_gw)
    n = tbl.lookup(rt.dev, key)
    if n is None:
        try:
            n = tbl.create(rt.dev, key)
        except KernelError:
            return
    if not n.nud_state & NUD_VALID:
        neighbour.neigh_event_send(n, None)
        return
    res = fib_lookup_errno(net, fl4)
    if type(res) is int:
        return
    _select_path(net, res, fl4)
    nh = res.nh
    if nh is not None:
        timeout = net.sysctl.values.get("net.ipv4.route.gc_timeout", IP_RT_GC_TIMEOUT_S)
        update_or_create_fnhe(net, nh, fl4.daddr, new_gw, 0, False,
                              net.world.clock.now + timeout * NSEC)


def _is_known_gw(net: "Net", gw: int, dev: "NetDevice") -> bool:
    """``ip_fib_check_default``: is ``gw`` the live (not RTNH_F_DEAD) gateway of some route's
    nexthop on ``dev``?  The kernel walks its fib_info device hash, i.e. every table."""
    from netstack.ipv4.fib_semantics import RTNH_F_DEAD
    for tb in net.ipv4.fib_tables.values():
        for d in tb.plens:
            for routes in d.values():
                for r in routes:
                    for nh in r.nexthops:
                        if nh.dev is dev and nh.gw_int == gw and not nh.flags & RTNH_F_DEAD:
                            return True
    return False


def route_sysctls_init(net: "Net") -> None:
    """``net.ipv4.route.*``: ``flush`` (any write forgets learned exceptions:
    ``fnhe_genid_bump``), ``mtu_expires``, ``min_pmtu``, ``gc_timeout``."""
    net.ipv4.fnhe_genid = 0

    def flush(key: str, old: Any, new: Any) -> None:
        net.ipv4.fnhe_genid += 1

    s = net.sysctl
    s.register("net.ipv4.route.flush", 0, on_write=flush)
    s.register("net.ipv4.route.mtu_expires", IP_RT_MTU_EXPIRES_S, 0)
    s.register("net.ipv4.route.min_pmtu", IP_RT_MIN_PMTU, 68)
    s.register("net.ipv4.route.gc_timeout", IP_RT_GC_TIMEOUT_S, 0)
