"""IPv4 protocol registration and per-namespace state (net/ipv4/af_inet.c ``inet_init``,
``ipv4_mib_init_net``, net/ipv4/sysctl_net_ipv4.c, icmp.c ``icmp_sk_init``).

``register(world)`` does what ``inet_init`` does at boot: the 0x0800 packet type (here the
list handler :func:`~netstack.ipv4.ip_input.ip_list_rcv`), ARP (0x0806, by the neighbour
engineer's ``arp_register``), a pernet init that creates ``net.ipv4`` and a netdevice
notifier.  The pernet init creates the :class:`Ipv4Net` first, then lets the control plane
(``ipv4_control_init``) and ARP (``arp_init``) attach their state to it, exactly as the
kernel's pernet_operations all fill the one ``struct netns_ipv4``.

Other engineers' modules are resolved once, at import, through :func:`_optional`: a module
that has not been written yet is ``None`` here and the paths that need it raise
``NotSupported`` (configuration) or drop the packet with a counted reason (datapath).  Tests
replace these module references (``af_inet.route`` …) with small fakes.
"""
from __future__ import annotations

import importlib
from collections import Counter
from types import ModuleType
from typing import TYPE_CHECKING, Any

from netstack.core.sysctl import bounded_pair
from netstack.ipv4.mib import new_mib

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.netdevice import NetDevice
    from netstack.core.world import World

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806


def _optional(name: str) -> ModuleType | None:
    """Import another engineer's module if it exists; a missing *module* gives None, any
    other import failure propagates (a broken module must not be silently ignored)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:
            return None
        raise


#: Control plane (contract: ``ip_route_input``, ``ip_route_output``, ``Flowi4``, ``Rtable``).
route: Any = _optional("netstack.ipv4.route")
#: Addresses (contract: ``inet_select_addr``, ``inet_addr_type``, ``ipv4_control_init``).
devinet: Any = _optional("netstack.ipv4.devinet")
#: Where ``ipv4_control_init`` lives if not in devinet (the control-plane brief allows fib).
fib: Any = _optional("netstack.ipv4.fib")
#: Neighbour core (contract: ``neigh_output``).
neighbour: Any = _optional("netstack.core.neighbour")
#: ARP (contract: ``arp_init(net)``, ``arp_register(world)`` / ``arp_rcv_list``).
arp: Any = _optional("netstack.ipv4.arp")


def flowi4(**kw: Any) -> Any:
    """A ``Flowi4`` from the control plane (route.py or fib.py), built with keywords."""
    cls = getattr(route, "Flowi4", None) or getattr(fib, "Flowi4", None)
    if cls is None:
        from netstack.errors import NotSupported
        raise NotSupported("IPv4 route lookups (no netstack.ipv4.route/fib Flowi4)")
    return cls(**kw)


def addr_bytes(a: Any) -> bytes:
    """An IPv4 address the control plane returned (4 bytes or an int) as 4 bytes."""
    if a is None:
        return b""
    if type(a) is int:
        return a.to_bytes(4, "big")
    return bytes(a)


class InetPeer:
    """``struct inet_peer``: the per-remote-address state used by both ICMP rate limiters
    (``rate_tokens``/``rate_last`` shared by ``inet_peer_xrlim_allow`` and ``ip_error``)."""

    __slots__ = ("rate_tokens", "rate_last", "rid", "n_redirects")

    def __init__(self, jiffies: int) -> None:
        # inet_getpeer: "60*HZ is arbitrary, but chosen enough high so that the first
        # calculation of rate_tokens would be correct."
        self.rate_tokens = 0
        self.rate_last = jiffies - 60 * 1000
        #: fragment counter for ipfrag_max_dist (``peer->rid``)
        self.rid = 0
        #: redirects sent to this peer (ip_rt_send_redirect backoff)
        self.n_redirects = 0


class Ipv4Net:
    """``struct netns_ipv4`` — the IPv4 state of one namespace.

    The datapath fields are set here; the control plane (``fib_tables``, ``rules``,
    ``has_custom_rules`` …) and ARP (``arp_tbl``) attach theirs in their init hooks, so the
    class deliberately has a ``__dict__``.
    """

    def __init__(self, net: "Net") -> None:
        self.net = net
        #: SNMP counters (``IpInReceives`` … see netstack.ipv4.mib).
        self.mib: Counter[str] = new_mib()
        #: Route lookups done by ip_rcv_finish_core and route-hint reuses (listified RX).
        self.route_lookups = 0
        self.route_hints = 0
        #: fib4_has_custom_rules: the control plane sets it when a rule is added.
        self.has_custom_rules = False
        #: inet_peer base (net->ipv4.peers), keyed by (address, vif).
        self.peers: dict[tuple[bytes, int], InetPeer] = {}
        #: icmp_global_credit / icmp_global_stamp (per netns since 6.12).  The stamp starts
        #: one second in the past so the first message refills the bucket, as on a real
        #: kernel whose jiffies are far from the zero-initialised stamp.
        self.icmp_global_credit = 0
        self.icmp_global_stamp = net.world.clock.jiffies - 1000
        #: IP ID generator state (ip_idents), see ip_output.ip_select_ident.
        self.ip_idents: dict[tuple[bytes, bytes, int], int] = {}
        #: Reassembly queues (netns_frags): key -> ipq, and the memory they use.
        self.frags: dict[tuple, Any] = {}
        self.frag_mem = 0
        #: UDP sockets (udp_table) and ping sockets (ping_table).
        self.udp_sockets: list[Any] = []
        self.ping_sockets: list[Any] = []
        #: inet_protos: protocol number -> handler(pkt) for ip_protocol_deliver_rcu.
        self.protos: dict[int, Any] = {}

    def inet_getpeer(self, addr: bytes, vif: int = 0) -> InetPeer:
        """``inet_getpeer_v4(base, addr, vif)``: find or create the peer entry."""
        key = (addr, vif)
        p = self.peers.get(key)
        if p is None:
            p = self.peers[key] = InetPeer(self.net.world.clock.jiffies)
        return p


def _register_sysctls(net: "Net") -> None:
    """The IPv4 sysctls the datapath owns, with the defaults of a fresh 6.18 namespace
    (measured with ``ip netns add`` on the oracle machine)."""
    s = net.sysctl
    reg = s.register
    reg("net.ipv4.ip_default_ttl", 64, 1, 255)
    reg("net.ipv4.ip_no_pmtu_disc", 0, 0, 3)
    reg("net.ipv4.ip_forward_use_pmtu", 0, 0, 1)
    reg("net.ipv4.ip_forward_update_priority", 1, 0, 1)
    reg("net.ipv4.ip_nonlocal_bind", 0, 0, 1)
    # IP4_REPLY_MARK (include/net/ip.h): replies the stack generates without a socket
    # (nf_reject's TCP reset, ICMP) carry the packet's mark when set
    reg("net.ipv4.fwmark_reflect", 0, 0, 1)
    reg("net.ipv4.ip_early_demux", 1, 0, 1)
    reg("net.ipv4.udp_early_demux", 1, 0, 1)
    reg("net.ipv4.ip_local_port_range", "32768\t60999")
    reg("net.ipv4.ping_group_range", "1\t0")
    # icmp.c icmp_sk_init
    reg("net.ipv4.icmp_echo_ignore_all", 0, 0, 1)
    reg("net.ipv4.icmp_echo_enable_probe", 0, 0, 1)
    reg("net.ipv4.icmp_echo_ignore_broadcasts", 1, 0, 1)
    reg("net.ipv4.icmp_ignore_bogus_error_responses", 1, 0, 1)
    reg("net.ipv4.icmp_errors_use_inbound_ifaddr", 0, 0, 1)
    reg("net.ipv4.icmp_ratelimit", 1000, 0)     # shown in ms (proc_dointvec_ms_jiffies)
    reg("net.ipv4.icmp_ratemask", 0x1818)
    reg("net.ipv4.icmp_msgs_per_sec", 1000, 0)
    reg("net.ipv4.icmp_msgs_burst", 50, 0)
    # ip_fragment.c ip4_frags_ns_ctl_init
    frag_pair = bounded_pair(s, "net.ipv4.ipfrag_low_thresh", "net.ipv4.ipfrag_high_thresh")
    reg("net.ipv4.ipfrag_high_thresh", 4 * 1024 * 1024, 0, on_write=frag_pair)
    reg("net.ipv4.ipfrag_low_thresh", 3 * 1024 * 1024, 0, on_write=frag_pair)
    reg("net.ipv4.ipfrag_time", 30, 0)
    reg("net.ipv4.ipfrag_max_dist", 64, 0)
    # devinet.c per-device knobs the datapath reads (RFC 1122 3.3.6, source routing)
    s.register_conf("net.ipv4.conf", "drop_unicast_in_l2_multicast", 0, 0, 1)
    if "net.ipv4.conf.all.accept_source_route" not in s:
        s.register_conf("net.ipv4.conf", "accept_source_route", 0, 0, 1)


def inet_pernet_init(net: "Net") -> None:
    """Create ``net.ipv4`` and let the control plane and ARP attach their state."""
    net.ipv4 = Ipv4Net(net)
    _register_sysctls(net)
    from netstack.ipv4 import icmp, tcp_ipv4, udp
    net.ipv4.protos[1] = icmp.icmp_rcv
    net.ipv4.protos[6] = tcp_ipv4.tcp_v4_rcv
    net.ipv4.protos[17] = udp.udp_rcv
    init = getattr(devinet, "ipv4_control_init", None) or getattr(fib, "ipv4_control_init", None)
    if init is not None:
        init(net)
    if arp is not None and hasattr(arp, "arp_init"):
        arp.arp_init(net)


def inet_pernet_exit(net: "Net") -> None:
    """Namespace teardown: stop reassembly timers so they do not fire into a dead netns."""
    ipv4 = net.ipv4
    if ipv4 is None:
        return
    for q in list(ipv4.frags.values()):
        q.timer.cancel()
    ipv4.frags.clear()
    ipv4.frag_mem = 0


def inet_netdev_event(event: str, dev: "NetDevice") -> None:
    """The netdevice notifier: the control plane reacts to device events (addresses and
    routes, fib_netdev_event / inetdev_event); sockets bound to a vanishing device lose the
    binding the way ``udp_lib_unhash`` would on close (they simply stop matching)."""
    handler = getattr(devinet, "ipv4_control_netdev_event", None) or \
        getattr(fib, "ipv4_control_netdev_event", None)
    if handler is not None:
        handler(event, dev)


def register(world: "World") -> None:
    """``inet_init``: packet types, pernet ops, netdevice notifier."""
    from netstack.ipv4.ip_input import ip_list_rcv
    world.ptype_base[ETH_P_IP] = ip_list_rcv
    if arp is not None:
        if hasattr(arp, "arp_register"):
            arp.arp_register(world)
        elif hasattr(arp, "arp_rcv_list"):
            world.ptype_base[ETH_P_ARP] = arp.arp_rcv_list
    world.pernet_inits.append(inet_pernet_init)
    world.pernet_exits.append(inet_pernet_exit)
    world.netdev_notifiers.append(inet_netdev_event)
