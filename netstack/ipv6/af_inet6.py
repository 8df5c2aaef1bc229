"""IPv6 protocol registration and per-namespace state (net/ipv6/af_inet6.c ``inet6_init``,
``inet6_net_init``, net/ipv6/addrconf.c ``addrconf_init_net``/``ipv6_devconf``).

``register(world)`` wires IPv6 into a world the way ``inet6_init`` does in the kernel:
the 0x86DD packet type (``ipv6_packet_type.list_func = ipv6_list_rcv``), the pernet init
that builds ``net.ipv6`` and its sysctls (``net.ipv6.conf.*``, ``net.ipv6.neigh.*``,
``net.ipv6.icmp.*``, ``ip6frag_*``, ``auto_flowlabels`` … with the defaults measured on
Linux 6.18), and the netdevice notifier (``addrconf_notify``).
"""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from netstack.core.sysctl import bounded_pair
from netstack.ipv6.route import RT_TABLE_LOCAL, RT_TABLE_MAIN, Fib6Table

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.net_namespace import Net
    from netstack.core.world import World

ETH_P_IPV6 = 0x86DD

#: ``net.ipv6.conf.*`` knobs and their ``default`` values measured on Linux 6.18.
#: (``all`` differs only for accept_dad, which is 0 there.)
CONF_DEFAULTS: dict[str, int] = {
    "accept_dad": 1, "accept_ra": 1, "accept_ra_defrtr": 1, "accept_ra_from_local": 0,
    "accept_ra_min_hop_limit": 1, "accept_ra_min_lft": 0, "accept_ra_mtu": 1,
    "accept_ra_pinfo": 1, "accept_ra_rt_info_max_plen": 0, "accept_ra_rt_info_min_plen": 0,
    "accept_ra_rtr_pref": 1, "accept_redirects": 1, "accept_source_route": 0,
    "accept_untracked_na": 0, "addr_gen_mode": 0, "autoconf": 1, "dad_transmits": 1,
    "disable_ipv6": 0, "disable_policy": 0, "drop_unicast_in_l2_multicast": 0,
    "drop_unsolicited_na": 0, "enhanced_dad": 1, "force_forwarding": 0,
    "force_mld_version": 0, "force_tllao": 0, "forwarding": 0, "hop_limit": 64,
    "ignore_routes_with_linkdown": 0, "ioam6_enabled": 0, "ioam6_id": 65535,
    "keep_addr_on_down": 0, "max_addresses": 16, "max_desync_factor": 600,
    "mc_forwarding": 0, "mldv1_unsolicited_report_interval": 10000,
    "mldv2_unsolicited_report_interval": 1000, "mtu": 1280, "ndisc_evict_nocarrier": 1,
    "ndisc_notify": 0, "ndisc_tclass": 0, "optimistic_dad": 0, "proxy_ndp": 0,
    "ra_defrtr_metric": 1024, "ra_honor_pio_life": 0, "ra_honor_pio_pflag": 0,
    "regen_max_retry": 3, "regen_min_advance": 2, "router_probe_interval": 60,
    "router_solicitation_delay": 1, "router_solicitation_interval": 4,
    "router_solicitation_max_interval": 3600, "router_solicitations": -1,
    "rpl_seg_enabled": 0, "seg6_enabled": 0, "seg6_require_hmac": 0,
    "suppress_frag_ndisc": 1, "temp_prefered_lft": 86400, "temp_valid_lft": 604800,
    "use_oif_addrs_only": 0, "use_optimistic": 0, "use_tempaddr": 0,
}
#: Knobs with a range check (proc_dointvec_minmax in addrconf_sysctl).
CONF_RANGES: dict[str, tuple[int, int]] = {
    "hop_limit": (1, 255), "mtu": (1280, 65575), "addr_gen_mode": (0, 3),
    "accept_untracked_na": (0, 2), "keep_addr_on_down": (-1, 1), "drop_unsolicited_na": (0, 1),
    "drop_unicast_in_l2_multicast": (0, 1), "disable_ipv6": (0, 1), "forwarding": (0, 2),
}
#: ``net.ipv6.neigh.*`` (ndisc.c nd_tbl parms), as shown in /proc/sys.
NEIGH_DEFAULTS: dict[str, int] = {
    "anycast_delay": 100, "app_solicit": 0, "base_reachable_time_ms": 30000,
    "delay_first_probe_time": 5, "gc_stale_time": 60, "interval_probe_time_ms": 5000,
    "locktime": 0, "mcast_resolicit": 0, "mcast_solicit": 3, "proxy_delay": 80,
    "proxy_qlen": 64, "retrans_time_ms": 1000, "ucast_solicit": 3, "unres_qlen": 101,
    "unres_qlen_bytes": 212992,
}
#: Plain ``net.ipv6.*`` knobs.  icmp.ratelimit is 100 ms on 6.18 (measured; older
#: kernels had 1000).  icmp.ratemask "0-1,3-127" rate-limits every error but Packet Too Big.
GLOBAL_DEFAULTS: dict[str, int | str] = {
    "net.ipv6.auto_flowlabels": 1, "net.ipv6.flowlabel_consistency": 1,
    "net.ipv6.flowlabel_reflect": 0, "net.ipv6.flowlabel_state_ranges": 0,
    "net.ipv6.icmp.echo_ignore_all": 0, "net.ipv6.icmp.echo_ignore_anycast": 0,
    "net.ipv6.icmp.echo_ignore_multicast": 0, "net.ipv6.icmp.error_anycast_as_unicast": 0,
    "net.ipv6.icmp.ratelimit": 100, "net.ipv6.icmp.ratemask": "0-1,3-127",
    "net.ipv6.ip6frag_high_thresh": 4194304, "net.ipv6.ip6frag_low_thresh": 3145728,
    "net.ipv6.ip6frag_time": 60, "net.ipv6.fib_multipath_hash_policy": 0,
    "net.ipv6.route.gc_thresh": 1024, "net.ipv6.route.mtu_expires": 600,
    "net.ipv6.route.min_adv_mss": 1220, "net.ipv6.route.max_size": 2147483647,
}


class Ipv6Net:
    """``struct netns_ipv6``: everything IPv6 keeps per namespace."""

    def __init__(self, net: "Net") -> None:
        self.net = net
        self.fib_tables: dict[int, Fib6Table] = {RT_TABLE_MAIN: Fib6Table(RT_TABLE_MAIN),
                                                 RT_TABLE_LOCAL: Fib6Table(RT_TABLE_LOCAL)}
        self.rules: Any = None  # FibRulesOps, set by inet6_net_init
        self.has_custom_rules = False
        self.fib_sernum = 0
        self.route_lookups = 0
        #: address -> inet6_ifaddr list (``inet6_addr_lst`` hash)
        self.addr_hash: dict[bytes, list[Any]] = {}
        self.nd_tbl: Any = None
        #: ICMPv6 rate limit buckets per destination (inet_peer ``rate_tokens``/``rate_last``)
        self.icmp_peers: dict[bytes, list[int]] = {}
        self.icmp_ratemask: frozenset[int] = frozenset()
        self.frags: dict[tuple, Any] = {}
        #: route exceptions learnt from Packet Too Big: daddr -> (mtu, expires_ns)
        self.pmtu: dict[bytes, tuple[int, int]] = {}
        self.frag_mem = 0
        self.udp_socks: dict[int, list[Any]] = {}
        self.raw_echo: list[Any] = []
        self.mib: Counter[str] = Counter()
        self.ident = 0


def parse_ratemask(text: str) -> frozenset[int]:
    """``proc_do_large_bitmap`` list syntax ("0-1,3-127")."""
    out: set[int] = set()
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if not 0 <= a <= b <= 255:
            raise ValueError(part)
        out.update(range(a, b + 1))
    return frozenset(out)


def _ratemask_written(net: "Net") -> Any:
    def hook(key: str, old: Any, new: Any) -> None:
        from netstack.core.sysctl import SysctlError
        try:
            net.ipv6.icmp_ratemask = parse_ratemask(new)
        except ValueError:
            net.sysctl.values[key] = old
            raise SysctlError(key, 22) from None
    return hook


def inet6_net_init(net: "Net") -> None:
    """Pernet init: ``net.ipv6`` state, sysctls with the kernel defaults, ND table."""
    from netstack.ipv6 import addrconf, ndisc
    from netstack.ipv6.fib6_rules import fib6_rules_init
    v6 = Ipv6Net(net)
    net.ipv6 = v6
    v6.rules = fib6_rules_init(net)
    sc = net.sysctl
    for name, default in CONF_DEFAULTS.items():
        lo, hi = CONF_RANGES.get(name, (None, None))
        sc.register_conf("net.ipv6.conf", name, default, lo, hi,
                         on_write=addrconf.conf_written(net, name))
    sc.values["net.ipv6.conf.all.accept_dad"] = 0
    # reassembly.c ip6_frags_ns_sysctl_register: the thresholds bound each other
    frag = ("net.ipv6.ip6frag_low_thresh", "net.ipv6.ip6frag_high_thresh")
    frag_pair = bounded_pair(sc, *frag)
    for key, default in GLOBAL_DEFAULTS.items():
        if key in frag:
            sc.register(key, default, 0, on_write=frag_pair)
            continue
        sc.register(key, default, on_write=_ratemask_written(net)
                    if key == "net.ipv6.icmp.ratemask" else None)
    v6.icmp_ratemask = parse_ratemask(str(GLOBAL_DEFAULTS["net.ipv6.icmp.ratemask"]))
    for name, default in NEIGH_DEFAULTS.items():
        sc.register_conf("net.ipv6.neigh", name, default, has_all=False)
    v6.nd_tbl = ndisc.nd_tbl_create(net)
    # IP6_REPLY_MARK: TCP resets (and nf_reject) carry the segment's mark when set (u8)
    sc.register("net.ipv6.fwmark_reflect", 0, 0, 255)
    from netstack.ipv6.tcp_ipv6 import tcp_v6_rcv
    net.proto.setdefault("inet6_protos", {})[6] = tcp_v6_rcv


def inet6_net_exit(net: "Net") -> None:
    """Pernet exit: stop timers held by IPv6 state (reassembly, DAD)."""
    v6 = net.ipv6
    if v6 is None:
        return
    for q in list(v6.frags.values()):
        q.timer.cancel()
    v6.frags.clear()


def register(world: "World") -> None:
    """``inet6_init``: packet type, pernet ops, netdevice notifier."""
    from netstack.ipv6 import addrconf
    from netstack.ipv6.ip6_input import ipv6_list_rcv
    world.ptype_base[ETH_P_IPV6] = ipv6_list_rcv
    world.pernet_inits.append(inet6_net_init)
    world.pernet_exits.append(inet6_net_exit)
    world.netdev_notifiers.append(addrconf.addrconf_notify)
