"""ARP (net/ipv4/arp.c): IPv4 neighbour discovery on top of the neighbour core.

What lives here, each reproducing the arp.c function of the same name:

* :class:`ArpOps` — ``arp_tbl``'s hooks for :mod:`netstack.core.neighbour`: ``arp_hashfn``,
  ``arp_constructor`` (NOARP for multicast → ``arp_mc_map``, broadcast, NOARP/loopback
  devices), ``arp_solicit`` (source address per ``arp_announce``, broadcast requests, then
  unicast probes to the cached MAC), ``arp_error_report`` (ICMP host unreachable through
  ``netstack.ipv4.icmp.icmp_send`` then drop NEIGH_FAILED) and ``parp_redo``.
* :func:`arp_rcv_list` / :func:`arp_rcv` / :func:`arp_process` — receive, with the conf
  knobs ``arp_ignore``, ``arp_filter``, ``arp_accept`` (0/1/2), ``arp_announce``,
  ``drop_gratuitous_arp``, ``proxy_arp``, ``proxy_arp_pvlan``, ``medium_id``,
  ``route_localnet``, the 1 s ``locktime`` rule and gratuitous ARP (``arp_is_garp``).
* :func:`arp_create` / :func:`arp_send` — the frame, byte for byte: 14-byte Ethernet header
  + 28-byte ARP, no padding (padding to 60 is the NIC's business; veth does not pad).
* :func:`arp_netdev_event` — ``arp_netdev_event`` plus the device-down flush
  (``arp_ifdown``, called by the kernel from fib_disable_ip) and the ``arp_notify``
  gratuitous ARP of ``inetdev_event`` (NETDEV_UP / NETDEV_CHANGEADDR).

The IPv4 control plane is reached through the contract (``devinet.inet_addr_type``,
``devinet.inet_select_addr``, ``devinet.inet_addrs``, ``route.ip_route_input``,
``route.ip_route_output`` + ``Flowi4``); those module references are resolved at import and
may be replaced by tests.  ARP netfilter hooks (NF_ARP_IN/OUT) are not modelled here.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from netstack.core.dev import dev_queue_xmit
from netstack.core.drop_reason import consume_skb, kfree_skb_reason
from netstack.core.neighbour import (LOCALLY_ENQUEUED, NEIGH_UPDATE_F_OVERRIDE, NUD_REACHABLE,
                                     NUD_STALE, NUD_NOARP, MS, NeighTable, Neighbour,
                                     neigh_carrier_down, neigh_changeaddr, neigh_event_ns,
                                     neigh_ifdown, neigh_update_entry)
from netstack.core.netdevice import (ARPHRD_ETHER, ARPHRD_LOOPBACK, IFF_LOOPBACK, IFF_NOARP,
                                     IFF_POINTOPOINT)
from netstack.errors import KernelError, NotSupported
from netstack.netfilter.core import NF_ARP_IN, NF_ARP_OUT, NFPROTO_ARP, nf_hook
from netstack.packet.skb import PACKET_HOST, PACKET_LOOPBACK, PACKET_OTHERHOST
from netstack.core.rtnetlink import (  # noqa: F401  (re-exported)
    RTN_BROADCAST,
    RTN_LOCAL,
    RTN_MULTICAST,
    RTN_UNICAST,
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RT_SCOPE_UNIVERSE,
)

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.core.world import World
    from netstack.packet.skb import Packet


def _optional(name: str) -> ModuleType | None:
    """Another engineer's module if it exists (a missing module gives None; a broken one
    raises)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:
            return None
        raise


class _Lazy:
    """Marks a module reference not resolved yet: the IPv4 modules import each other
    (icmp → ip_output → af_inet → arp), so ARP resolves them on first use."""

    def __repr__(self) -> str:  # pragma: no cover
        return "<unresolved>"


_LAZY: Any = _Lazy()
_MODULES = {"devinet": "netstack.ipv4.devinet", "route": "netstack.ipv4.route",
            "icmp": "netstack.ipv4.icmp", "fib": "netstack.ipv4.fib"}
#: Contract: ``inet_addr_type(net, addr)``, ``inet_select_addr(net, dev, dst, scope)``,
#: ``inet_addrs(dev)``.
devinet: Any = _LAZY
#: Contract: ``ip_route_input(net, pkt, daddr, saddr, tos, dev)``, ``ip_route_output(net,
#: fl4)``, ``Flowi4``.
route: Any = _LAZY
#: Contract: ``icmp_send(pkt, type, code, info)``.
icmp: Any = _LAZY
#: ``inet_addr_type`` and ``Flowi4`` may live in fib.py instead of devinet.py/route.py.
fib: Any = _LAZY


def _mod(attr: str) -> Any:
    """The module behind one of the references above (None if it does not exist)."""
    g = globals()
    v = g[attr]
    if v is _LAZY:
        v = g[attr] = _optional(_MODULES[attr])
    return v


def _cp(name: str) -> Any:
    """A control-plane function by its contract name, from devinet, route or fib."""
    for attr in ("devinet", "route", "fib"):
        fn = getattr(_mod(attr), name, None)
        if fn is not None:
            return fn
    raise NotSupported(f"IPv4 control plane function {name} (netstack.ipv4.devinet/route)")


AF_INET = 2
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_HLEN = 14
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
ARPHRD_IEEE802 = 6
ARP_HDR_FIXED = 8


ZERO4 = b"\0\0\0\0"

#: ``net.ipv4.conf.*`` knobs ARP owns (devinet.c IPV4_DEVCONF_*; no range check: the
#: kernel's devinet_conf_proc is a plain proc_dointvec).
ARP_CONF_SYSCTLS: tuple[tuple[str, int], ...] = (
    ("arp_filter", 0), ("arp_announce", 0), ("arp_ignore", 0), ("arp_accept", 0),
    ("arp_notify", 0), ("arp_evict_nocarrier", 1), ("drop_gratuitous_arp", 0),
    ("proxy_arp", 0), ("proxy_arp_pvlan", 0), ("medium_id", 0),
)


# -------------------------------------------------------------------- conf
def _confs(net: "Net", dev: "NetDevice", name: str) -> tuple[int, int]:
    """(all, dev) values of ``net.ipv4.conf.*.NAME`` (0 when not registered)."""
    vals = net.sysctl.values
    return (int(vals.get(f"net.ipv4.conf.all.{name}", 0)),
            int(vals.get(f"net.ipv4.conf.{dev.name}.{name}", 0)))


def in_dev_orconf(net: "Net", dev: "NetDevice", name: str) -> bool:
    """``IN_DEV_ORCONF``."""
    a, d = _confs(net, dev, name)
    return bool(a or d)


def in_dev_maxconf(net: "Net", dev: "NetDevice", name: str) -> int:
    """``IN_DEV_MAXCONF``."""
    a, d = _confs(net, dev, name)
    return max(a, d)


def in_dev_andconf(net: "Net", dev: "NetDevice", name: str) -> bool:
    """``IN_DEV_ANDCONF``."""
    a, d = _confs(net, dev, name)
    return bool(a and d)


def in_dev_conf(net: "Net", dev: "NetDevice", name: str) -> int:
    """``IN_DEV_CONF_GET``: the device's own value."""
    return _confs(net, dev, name)[1]


# ------------------------------------------------------------------ helpers
def ipv4_is_multicast(a: bytes) -> bool:
    return (a[0] & 0xF0) == 0xE0


def ipv4_is_loopback(a: bytes) -> bool:
    return a[0] == 127


def ip_eth_mc_map(addr: bytes) -> bytes:
    """``ip_eth_mc_map``: 01:00:5e + the low 23 bits of the group (RFC 1112 §6.4)."""
    return bytes((0x01, 0x00, 0x5E, addr[1] & 0x7F, addr[2], addr[3]))


def arp_mc_map(addr: bytes, dev: "NetDevice") -> bytes:
    """``arp_mc_map(addr, haddr, dev, dir=1)``."""
    if dev.type == ARPHRD_ETHER:
        return ip_eth_mc_map(addr)
    return dev.broadcast


def _mask(prefixlen: int) -> int:
    return (0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF if prefixlen else 0


def _u32(a: bytes) -> int:
    return int.from_bytes(a, "big")


def inet_ifa_match(addr: bytes, ifa: Any) -> bool:
    """``inet_ifa_match``: ``addr`` is inside ifa's prefix (``ifa_address``/mask; the
    contract's ``IfAddr.address`` may be None, meaning = local)."""
    peer = ifa.address if ifa.address is not None else ifa.local
    return not ((_u32(addr) ^ _u32(peer)) & _mask(ifa.prefixlen))


def _ifaddrs(dev: "NetDevice") -> list[Any]:
    if dev.ip_ptr is None:
        return []
    return list(_cp("inet_addrs")(dev))


def inet_addr_onlink(dev: "NetDevice", a: bytes, b: bytes | None) -> Any:
    """``inet_addr_onlink``: an address of ``dev`` whose subnet holds ``a`` (and ``b``)."""
    for ifa in _ifaddrs(dev):
        if inet_ifa_match(a, ifa) and (not b or b == ZERO4 or inet_ifa_match(b, ifa)):
            return ifa
    return None


def _confirm_addr_indev(net: "Net", dev: "NetDevice", dst: bytes, local: bytes,
                        scope: int) -> bytes:
    """``confirm_addr_indev`` (net/ipv4/devinet.c)."""
    localnet_scope = RT_SCOPE_LINK if in_dev_orconf(net, dev, "route_localnet") else RT_SCOPE_HOST
    addr = ZERO4
    same = False
    for ifa in _ifaddrs(dev):
        min_scope = min(ifa.scope, localnet_scope)
        if addr == ZERO4 and (local == ifa.local or local == ZERO4) and min_scope <= scope:
            addr = ifa.local
            if same:
                break
        if not same:
            same = ((local == ZERO4 or inet_ifa_match(local, ifa))
                    and (dst == ZERO4 or inet_ifa_match(dst, ifa)))
            if same and addr != ZERO4:
                if local != ZERO4 or dst == ZERO4:
                    break
                if inet_ifa_match(addr, ifa):
                    break
                if min_scope <= scope:
                    addr = ifa.local
                    break
                same = False
    return addr if same else ZERO4


def inet_confirm_addr(net: "Net", dev: "NetDevice | None", dst: bytes, local: bytes,
                      scope: int) -> bytes:
    """``inet_confirm_addr``: with ``dev`` None, any device of the namespace."""
    if dev is not None:
        return _confirm_addr_indev(net, dev, dst, local, scope)
    for d in list(net.devices.values()):
        if d.ip_ptr is not None:
            a = _confirm_addr_indev(net, d, dst, local, scope)
            if a != ZERO4:
                return a
    return ZERO4


# --------------------------------------------------------------------- ops
class ArpOps:
    """``arp_tbl`` + ``arp_hh_ops``."""

    family = AF_INET
    key_len = 4
    sysctl_prefix = "net.ipv4.neigh"

    def __init__(self, net: "Net") -> None:
        self.net = net
        self.tbl: NeighTable | None = None

    def hash(self, key: bytes, dev: "NetDevice", hash_rnd: int) -> int:
        """``arp_hashfn``: (key ^ dev) * hash_rnd, the top bits pick the bucket."""
        return ((int.from_bytes(key, "little") ^ dev.ifindex) * hash_rnd) & 0xFFFFFFFF

    def is_multicast(self, key: bytes) -> bool:
        return ipv4_is_multicast(key)

    def output_key(self, dev: "NetDevice", key: bytes) -> bytes:
        """``__ipv4_neigh_lookup_noref``: loopback and point-to-point share one entry."""
        return ZERO4 if dev.flags & (IFF_LOOPBACK | IFF_POINTOPOINT) else key

    def constructor(self, n: Neighbour) -> None:
        """``arp_constructor``."""
        dev = n.dev
        if dev.flags & (IFF_LOOPBACK | IFF_POINTOPOINT):
            n.key = ZERO4
        n.type = _cp("inet_addr_type")(self.net, n.key)
        if dev.type not in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
            # no header_ops: arp_direct_ops, packets leave without a link-layer header
            n.nud_state = NUD_NOARP
            n.direct = True
            return
        if n.type == RTN_MULTICAST:
            n.nud_state = NUD_NOARP
            n.ha = arp_mc_map(n.key, dev)
        elif dev.flags & (IFF_NOARP | IFF_LOOPBACK):
            n.nud_state = NUD_NOARP
            n.ha = bytes(dev.address)
        elif n.type == RTN_BROADCAST or dev.flags & IFF_POINTOPOINT:
            n.nud_state = NUD_NOARP
            n.ha = bytes(dev.broadcast)

    def solicit(self, n: Neighbour, pkt: "Packet | None") -> None:
        """``arp_solicit``: choose the sender address per ``arp_announce``, then either a
        unicast probe to the cached MAC (first ``ucast_solicit`` probes of a PROBE entry),
        a user-space request (``app_solicit``), or a broadcast request."""
        net = self.net
        dev = n.dev
        tbl = n.tbl
        target = n.key
        probes = n.probes
        if dev.ip_ptr is None:
            return
        saddr = ZERO4
        announce = in_dev_maxconf(net, dev, "arp_announce")
        pkt_saddr = _ip_saddr(pkt) if pkt is not None else None
        if announce == 1:
            if pkt_saddr is not None and _cp("inet_addr_type")(net, pkt_saddr) == RTN_LOCAL \
                    and inet_addr_onlink(dev, target, pkt_saddr) is not None:
                saddr = pkt_saddr
        elif announce == 2:
            pass
        else:
            if pkt_saddr is not None and _cp("inet_addr_type")(net, pkt_saddr) == RTN_LOCAL:
                saddr = pkt_saddr
        if saddr == ZERO4:
            saddr = bytes(_cp("inet_select_addr")(net, dev, target, RT_SCOPE_LINK))
        probes -= tbl.parm(dev, "ucast_solicit")
        dst_hw: bytes | None = None
        if probes < 0:
            dst_hw = n.ha
        else:
            probes -= tbl.parm(dev, "app_solicit")
            if probes < 0:
                # neigh_app_ns: an RTM_GETNEIGH for a user-space resolver (arpd)
                tbl.stats["app_requests"] = tbl.stats.get("app_requests", 0) + 1
                for fn in tbl.notifiers:
                    fn(n)
                return
        arp_send(ARPOP_REQUEST, ETH_P_ARP, target, dev, saddr, dst_hw, dev.address, None)

    def error_report(self, n: Neighbour, pkt: "Packet") -> None:
        """``arp_error_report``: ``dst_link_failure`` → ICMP host unreachable, then drop
        with NEIGH_FAILED."""
        mod = _mod("icmp")
        if mod is not None and hasattr(mod, "icmp_send"):
            mod.icmp_send(pkt, 3, 1, 0)
        kfree_skb_reason(pkt, "NEIGH_FAILED", self.net)

    def proxy_redo(self, pkt: "Packet") -> None:
        """``parp_redo``."""
        arp_process(pkt)


def _ip_saddr(pkt: "Packet") -> bytes | None:
    """``ip_hdr(skb)->saddr`` of a queued IPv4 packet."""
    nh = pkt.network_header if pkt.network_header >= 0 else pkt.data
    if pkt.tail - nh < 20:
        return None
    return bytes(pkt.buf[nh + 12:nh + 16])


# ---------------------------------------------------------------- the table
def arp_tbl(net: "Net") -> NeighTable:
    """``net.ipv4.arp_tbl``."""
    return net.ipv4.arp_tbl


def arp_init(net: "Net") -> None:
    """Pernet init: the ARP table of the namespace and the ARP conf knobs."""
    st = net.sysctl
    for name, default in ARP_CONF_SYSCTLS:
        if f"net.ipv4.conf.all.{name}" not in st:
            st.register_conf("net.ipv4.conf", name, default)
    ops = ArpOps(net)
    tbl = NeighTable(net, ops)
    ops.tbl = tbl
    net.ipv4.arp_tbl = tbl
    #: last IFF_NOARP seen per ifindex, for NETDEV_CHANGE's flags_changed & IFF_NOARP
    net.ipv4.arp_noarp_seen = {}


def arp_register(world: "World") -> None:
    """``arp_init`` at boot: the 0x0806 packet type and the netdevice notifier."""
    world.ptype_base[ETH_P_ARP] = arp_rcv_list
    world.netdev_notifiers.append(arp_netdev_event)


# ------------------------------------------------------------------ output
def arp_create(type_: int, ptype: int, dest_ip: bytes, dev: "NetDevice", src_ip: bytes,
               dest_hw: bytes | None, src_hw: bytes | None, target_hw: bytes | None) -> "Packet":
    """``arp_create``: Ethernet header + ARP, ``skb->protocol`` ETH_P_ARP."""
    net = dev.net
    assert net is not None
    if src_hw is None:
        src_hw = dev.address
    if dest_hw is None:
        dest_hw = dev.broadcast
    alen = len(dev.address)
    hrd = dev.type
    body = (hrd.to_bytes(2, "big") + ETH_P_IP.to_bytes(2, "big") + bytes((alen, 4))
            + type_.to_bytes(2, "big") + bytes(src_hw[:alen]) + bytes(src_ip)
            + (bytes(target_hw[:alen]) if target_hw is not None else bytes(alen))
            + bytes(dest_ip))
    frame = bytes(dest_hw[:alen]) + bytes(src_hw[:alen]) + ptype.to_bytes(2, "big") + body
    pkt = net.world.new_packet(frame)
    pkt.mac_header = pkt.data
    pkt.network_header = pkt.data + ETH_HLEN
    pkt.dev = dev
    pkt.protocol = ETH_P_ARP
    return pkt


def arp_send(type_: int, ptype: int, dest_ip: bytes, dev: "NetDevice", src_ip: bytes,
             dest_hw: bytes | None, src_hw: bytes | None, target_hw: bytes | None) -> None:
    """``arp_send``: nothing on an IFF_NOARP device; otherwise create and transmit."""
    if dev.flags & IFF_NOARP:
        return
    pkt = arp_create(type_, ptype, dest_ip, dev, src_ip, dest_hw, src_hw, target_hw)
    if pkt.trace is not None:
        pkt.trace.event(pkt, "arp_xmit", info=f"op={type_}")
    # arp_xmit: NF_HOOK(NFPROTO_ARP, NF_ARP_OUT, …, NULL, dev, arp_xmit_finish)
    if not nf_hook(dev.net, NFPROTO_ARP, NF_ARP_OUT, pkt, None, dev):
        return
    dev_queue_xmit(pkt, dev)


# ----------------------------------------------------------------- receive
def arp_rcv_list(pkts: list["Packet"]) -> None:
    """The 0x0806 list handler: ``arp_rcv`` for each packet."""
    for pkt in pkts:
        arp_rcv(pkt)


def arp_rcv(pkt: "Packet") -> None:
    """``arp_rcv``: NOARP devices and frames not for us are consumed silently; a short
    packet is PKT_TOO_SMALL; hln/pln other than the device's / 4 is NOT_SPECIFIED."""
    dev = pkt.dev
    assert dev is not None and dev.net is not None
    if pkt.trace is not None:
        pkt.trace.event(pkt, "arp_rcv")
    if dev.flags & IFF_NOARP or pkt.pkt_type in (PACKET_OTHERHOST, PACKET_LOOPBACK):
        consume_skb(pkt, "arp_rcv")
        return
    alen = len(dev.address)
    if not pkt.may_pull(ARP_HDR_FIXED + 2 * (alen + 4)):
        kfree_skb_reason(pkt, "PKT_TOO_SMALL", dev.net)
        return
    d = pkt.data
    if pkt.buf[d + 4] != alen or pkt.buf[d + 5] != 4:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", dev.net)
        return
    pkt.network_header = d
    pkt.cb = 0
    # NF_HOOK(NFPROTO_ARP, NF_ARP_IN, …, dev, NULL, arp_process)
    if not nf_hook(dev.net, NFPROTO_ARP, NF_ARP_IN, pkt, dev, None):
        return
    arp_process(pkt)


def arp_ignore(net: "Net", dev: "NetDevice", sip: bytes, tip: bytes) -> bool:
    """``arp_ignore``: True = do not answer (IN_DEV_ARP_IGNORE is the max of all/dev)."""
    mode = in_dev_maxconf(net, dev, "arp_ignore")
    in_dev: "NetDevice | None" = dev
    if mode == 0:
        return False
    if mode == 1:
        sip, scope = ZERO4, RT_SCOPE_HOST
    elif mode == 2:
        scope = RT_SCOPE_HOST
    elif mode == 3:
        sip, scope, in_dev = ZERO4, RT_SCOPE_LINK, None
    elif mode == 8:
        return True
    else:
        return False
    return inet_confirm_addr(net, in_dev, sip, tip, scope) == ZERO4


def _flowi4(daddr: bytes, saddr: bytes, oif: int) -> Any:
    return _cp("Flowi4")(daddr=daddr, saddr=saddr, tos=0, oif=oif)


def arp_filter(net: "Net", sip: bytes, tip: bytes, dev: "NetDevice") -> bool:
    """``arp_filter``: answer only if the reply would leave through ``dev``."""
    try:
        rt = _cp("ip_route_output")(net, _flowi4(sip, tip, 0))
    except KernelError:
        return True
    return rt.dev is not dev


def arp_fwd_proxy(net: "Net", dev: "NetDevice", rt: Any) -> bool:
    """``arp_fwd_proxy``: proxy_arp between different media (``medium_id``)."""
    if rt.dev is dev:
        return False
    if not in_dev_orconf(net, dev, "proxy_arp"):
        return False
    imi = in_dev_conf(net, dev, "medium_id")
    if imi == 0:
        return True
    if imi == -1:
        return False
    omi = -1
    if rt.dev is not None and rt.dev.ip_ptr is not None:
        omi = in_dev_conf(net, rt.dev, "medium_id")
    return omi != imi and omi != -1


def arp_fwd_pvlan(net: "Net", dev: "NetDevice", rt: Any, sip: bytes, tip: bytes) -> bool:
    """``arp_fwd_pvlan``: private-VLAN proxy ARP back out of the same port (RFC 3069)."""
    if rt.dev is not dev:
        return False
    if sip == tip:
        return False
    return in_dev_orconf(net, dev, "proxy_arp_pvlan")


def arp_accept(net: "Net", dev: "NetDevice", sip: bytes) -> bool:
    """``arp_accept``: 0 never create entries from unsolicited ARP, 1 always, 2 only for a
    sender inside one of the device's subnets."""
    mode = in_dev_maxconf(net, dev, "arp_accept")
    if mode == 1:
        return True
    if mode == 2:
        return inet_confirm_addr(net, dev, sip, ZERO4, RT_SCOPE_UNIVERSE) != ZERO4
    return False


def arp_is_garp(net: "Net", dev: "NetDevice", op: int, sip: bytes, tip: bytes, sha: bytes,
                tha: bytes) -> tuple[bool, int]:
    """``arp_is_garp``: sip == tip (and, for a reply, tha == sha) with a unicast sip.
    Returns (is_garp, addr_type or -1 when not computed)."""
    is_garp = tip == sip
    if is_garp and op == ARPOP_REPLY:
        is_garp = tha == sha
    addr_type = -1
    if is_garp:
        addr_type = _cp("inet_addr_type")(net, sip)
        if addr_type != RTN_UNICAST:
            is_garp = False
    return is_garp, addr_type


def arp_process(pkt: "Packet") -> None:
    """``arp_process``: answer requests for local/proxied addresses and update the cache."""
    dev = pkt.dev
    assert dev is not None and dev.net is not None
    net = dev.net
    tbl: NeighTable = net.ipv4.arp_tbl
    if dev.ip_ptr is None:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    buf = pkt.buf
    d = pkt.network_header
    hrd = (buf[d] << 8) | buf[d + 1]
    pro = (buf[d + 2] << 8) | buf[d + 3]
    op = (buf[d + 6] << 8) | buf[d + 7]
    if dev.type == ARPHRD_ETHER:
        if hrd not in (ARPHRD_ETHER, ARPHRD_IEEE802) or pro != ETH_P_IP:
            kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
            return
    elif pro != ETH_P_IP or hrd != dev.type:
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    if op not in (ARPOP_REQUEST, ARPOP_REPLY):
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    alen = len(dev.address)
    o = d + ARP_HDR_FIXED
    sha = bytes(buf[o:o + alen])
    sip = bytes(buf[o + alen:o + alen + 4])
    tha = bytes(buf[o + alen + 4:o + 2 * alen + 4])
    tip = bytes(buf[o + 2 * alen + 4:o + 2 * alen + 8])
    if ipv4_is_multicast(tip) or (not in_dev_orconf(net, dev, "route_localnet")
                                  and ipv4_is_loopback(tip)):
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    # drop_gratuitous_arp: any ARP with sip == tip, before any neighbour update
    if sip == tip and in_dev_orconf(net, dev, "drop_gratuitous_arp"):
        kfree_skb_reason(pkt, "NOT_SPECIFIED", net)
        return
    # RFC 2131/5227 duplicate address detection probe
    if sip == ZERO4:
        if (op == ARPOP_REQUEST and _cp("inet_addr_type")(net, tip) == RTN_LOCAL
                and not arp_ignore(net, dev, sip, tip)):
            arp_send(ARPOP_REPLY, ETH_P_ARP, sip, dev, tip, sha, dev.address, sha)
        consume_skb(pkt, "arp_process")
        return

    if op == ARPOP_REQUEST and _cp("ip_route_input")(net, pkt, tip, sip, 0, dev) is None:
        rt = pkt.dst
        addr_type = rt.type
        if addr_type == RTN_LOCAL:
            dont_send = arp_ignore(net, dev, sip, tip)
            if not dont_send and in_dev_orconf(net, dev, "arp_filter"):
                dont_send = arp_filter(net, sip, tip, dev)
            if not dont_send:
                n = neigh_event_ns(tbl, sha, sip, dev)
                if n is not None:
                    arp_send(ARPOP_REPLY, ETH_P_ARP, sip, dev, tip, sha, dev.address, sha)
            consume_skb(pkt, "arp_process")
            return
        if in_dev_conf(net, dev, "forwarding"):
            if addr_type == RTN_UNICAST and (
                    arp_fwd_proxy(net, dev, rt) or arp_fwd_pvlan(net, dev, rt, sip, tip)
                    or (rt.dev is not dev and tbl.pneigh_lookup(tip, dev) is not None)):
                neigh_event_ns(tbl, sha, sip, dev)
                if (pkt.cb == LOCALLY_ENQUEUED or pkt.pkt_type == PACKET_HOST
                        or tbl.parm(dev, "proxy_delay") == 0):
                    arp_send(ARPOP_REPLY, ETH_P_ARP, sip, dev, tip, sha, dev.address, sha)
                else:
                    pkt.dst = None
                    tbl.pneigh_enqueue(pkt)
                    return
                consume_skb(pkt, "arp_process")
                return

    # Update our ARP tables
    n = tbl.lookup(dev, sip)
    is_garp = False
    addr_type = -1
    accept = arp_accept(net, dev, sip)
    if n is not None or accept:
        is_garp, addr_type = arp_is_garp(net, dev, op, sip, tip, sha, tha)
    if accept and n is None:
        if is_garp or (op == ARPOP_REPLY and (
                addr_type == RTN_UNICAST
                or (addr_type < 0 and _cp("inet_addr_type")(net, sip) == RTN_UNICAST))):
            n = tbl.lookup_or_create(dev, sip)
    if n is not None:
        locktime = tbl.parm(n.dev, "locktime") * 10 * MS
        override = tbl.clock.now > n.updated + locktime or is_garp
        state = NUD_REACHABLE
        if op != ARPOP_REPLY or pkt.pkt_type != PACKET_HOST:
            state = NUD_STALE
        neigh_update_entry(n, sha, state, NEIGH_UPDATE_F_OVERRIDE if override else 0)
    consume_skb(pkt, "arp_process")


# ----------------------------------------------------------- device events
def arp_ifdown(dev: "NetDevice") -> None:
    """``arp_ifdown``: fib_disable_ip calls it on NETDEV_DOWN/UNREGISTER."""
    net = dev.net
    if net is None or net.ipv4 is None or getattr(net.ipv4, "arp_tbl", None) is None:
        return
    neigh_ifdown(net.ipv4.arp_tbl, dev)


def inetdev_send_gratuitous_arp(dev: "NetDevice") -> None:
    """``inetdev_send_gratuitous_arp``: one request per address, sip = tip = the address."""
    for ifa in _ifaddrs(dev):
        arp_send(ARPOP_REQUEST, ETH_P_ARP, ifa.local, dev, ifa.local, None, dev.address, None)


def arp_netdev_event(event: str, dev: "NetDevice") -> None:
    """``arp_netdev_event`` + the ARP parts of fib_netdev_event/inetdev_event."""
    net = dev.net
    if net is None or net.ipv4 is None or getattr(net.ipv4, "arp_tbl", None) is None:
        return
    tbl: NeighTable = net.ipv4.arp_tbl
    seen: dict[int, bool] = net.ipv4.arp_noarp_seen
    if event in ("DOWN", "UNREGISTER"):
        neigh_ifdown(tbl, dev)
        if event == "UNREGISTER":
            seen.pop(dev.ifindex, None)
            tbl.reachable_time.pop(dev.name, None)
        return
    if event == "REGISTER":
        seen[dev.ifindex] = bool(dev.flags & IFF_NOARP)
        return
    if event == "CHANGENAME":
        return
    if event == "CHANGEADDR":
        neigh_changeaddr(tbl, dev)
        if dev.ip_ptr is not None and in_dev_maxconf(net, dev, "arp_notify"):
            inetdev_send_gratuitous_arp(dev)
        return
    if event == "UP":
        if dev.ip_ptr is not None and in_dev_maxconf(net, dev, "arp_notify"):
            inetdev_send_gratuitous_arp(dev)
        return
    if event == "CHANGE":
        noarp = bool(dev.flags & IFF_NOARP)
        if seen.get(dev.ifindex, noarp) != noarp:
            neigh_changeaddr(tbl, dev)
        seen[dev.ifindex] = noarp
        evict = True if dev.ip_ptr is None else in_dev_andconf(net, dev, "arp_evict_nocarrier")
        if evict and not dev.carrier_ok():
            neigh_carrier_down(tbl, dev)


__all__ = [
    "ArpOps", "arp_init", "arp_register", "arp_rcv_list", "arp_rcv", "arp_process",
    "arp_create", "arp_send", "arp_ifdown", "arp_netdev_event", "arp_mc_map",
    "inet_confirm_addr", "inetdev_send_gratuitous_arp", "ARPOP_REQUEST", "ARPOP_REPLY",
]
