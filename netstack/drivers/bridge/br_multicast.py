"""Bridge IGMP/MLD snooping and the MDB (net/bridge/br_multicast.c, br_mdb.c).

Why: with snooping on (the default) and a querier present on the link, a bridge
forwards a multicast stream only to the ports that reported membership and to the
multicast-router ports, instead of flooding it.  This module reproduces Linux 6.18's
behaviour for both protocol generations:

* ``mcast_igmp_version 2`` / ``mcast_mld_version 1`` (the defaults): IGMPv3/MLDv2
  reports are read as (*,G) joins and leaves, as ``br_ip4_multicast_igmp3_report`` /
  ``br_ip6_multicast_mld2_report`` do with ``igmpv2``/``mldv1`` true.
* ``mcast_igmp_version 3`` / ``mcast_mld_version 2``: source filtering.  A port group
  has a filter mode and a source list with per-source timers; each record runs the
  RFC 3376 §6.4 / RFC 3810 §7.4 state table exactly as ``br_multicast_isinc_allow``,
  ``br_multicast_isexc``, ``br_multicast_toin``, ``br_multicast_toex`` and
  ``br_multicast_block`` (with the kernel's quirks: marked sources drop to LMQT even
  without a querier, ALLOW {} on a new group leaves an INCLUDE {} entry without a timer).
  Forwarding by source uses (S,G) MDB entries installed per source
  (``br_multicast_fwd_src_*``, BLOCKED when the source timer is stopped in EXCLUDE mode)
  to which the ports in EXCLUDE mode for (*,G) are added (``added_by_star_ex``);
  ``br_mdb_get`` looks the (S,G) up first and a (*,G) then only serves EXCLUDE ports.
  As querier the bridge sends IGMPv3/MLDv2 queries, group-specific and
  group-and-source-specific ones with their retransmissions
  (``__grp_src_query_marked_and_rexmit``, ``br_multicast_port_group_rexmit``).

Also: ``br_multicast_rcv`` validation (``ip_mc_check_igmp``/``ipv6_mc_check_mld``: an
invalid IGMP/MLD packet is an error → the bridge drops it), the ``mrouters_only``/
``igmp`` skb-cb bits, leaves → last-member timer (or ``fast_leave``), general queries →
the "other querier" timers and temporary router ports, PIM hellos and Multicast Router
Discovery (RFC 4286) marking router ports, ``br_multicast_flood`` (members merged with
router ports, ``mcast_to_unicast`` copies), the bridge's own querier, and
``mcast_stats_enabled`` counters (``br_multicast_count`` / ``br_multicast_err_count``,
shown by ``ip link xstats type bridge``, br_mdb.py).  Timers run on the virtual clock;
source timers fire when the kernel's timer wheel would (``_wheel_expires``).

The MDB's netlink side (``bridge mdb``) is br_mdb.py.  Not modelled: per-VLAN multicast
contexts (``mcast_vlan_snooping 1`` with vlan_filtering on: NotSupported; without it,
EINVAL as the kernel), the bridge device's own IGMP/MLD host reports (its joins of
224.0.0.106 / ff02::6a).  Explicit host tracking of ``fast_leave`` ports under
IGMPv3/MLDv2 (br_multicast_eht.c) is br_multicast_eht.py, called from the record
handlers below.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netstack.core.drop_reason import kfree_skb_reason
from netstack.drivers.bridge.br_private import (
    BR_MULTICAST_FAST_LEAVE,
    BR_MULTICAST_TO_UNICAST,
    BR_STATE_DISABLED,
    BR_STATE_BLOCKING,
    BrInputCb,
    NetBridge,
    NetBridgePort,
)
from netstack.drivers.bridge.br_multicast_eht import (
    BR_MCAST_DEFAULT_EHT_HOSTS_LIMIT,
    br_multicast_eht_handle,
    br_multicast_eht_should_del_pg,
    clean_sets as _eht_clean_sets,
)
from netstack.errors import KernelError, NotSupported
from netstack.packet.constants import ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMPV6, IPPROTO_IGMP
from netstack.packet.igmp import (
    ICMPV6_MGM_QUERY,
    ICMPV6_MGM_REDUCTION,
    ICMPV6_MGM_REPORT,
    ICMPV6_MLD2_REPORT,
    IGMP_HOST_LEAVE_MESSAGE,
    IGMP_HOST_MEMBERSHIP_QUERY,
    IGMP_HOST_MEMBERSHIP_REPORT,
    IGMPV2_HOST_MEMBERSHIP_REPORT,
    IGMPV3_HOST_MEMBERSHIP_REPORT,
    ALLOW_NEW_SOURCES,
    BLOCK_OLD_SOURCES,
    CHANGE_TO_EXCLUDE,
    CHANGE_TO_INCLUDE,
    MODE_IS_EXCLUDE,
    MODE_IS_INCLUDE,
    igmp_checksum,
)
from netstack.packet.icmpv6 import icmpv6_checksum

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

__all__ = [
    "MDB_RTR_TYPE_DISABLED",
    "MDB_RTR_TYPE_TEMP_QUERY",
    "MDB_RTR_TYPE_PERM",
    "MDB_RTR_TYPE_TEMP",
    "BrMcast",
    "BrMcastPort",
    "MdbEntry",
    "PortGroup",
    "br_multicast_init",
    "br_multicast_add_port",
    "br_multicast_del_port",
    "br_multicast_open",
    "br_multicast_enable_port",
    "br_multicast_disable_port",
    "br_multicast_stop",
    "br_multicast_rcv",
    "br_mdb_get",
    "br_multicast_querier_exists",
    "br_multicast_is_router",
    "br_multicast_flood",
    "br_multicast_set_option",
    "br_multicast_port_set_option",
    "br_multicast_info",
    "br_multicast_port_info",
    "br_multicast_port_router",
    "br_multicast_router_ports",
    "br_multicast_port_is_router",
    "br_multicast_new_group",
    "br_multicast_del_pg",
    "br_multicast_group_expired",
    "br_multicast_port_group_expired",
    "mdb_key",
]

SEC = 1_000_000_000
#: The kernel's HZ on the reference machine (CONFIG_HZ=250): the bridge keeps its
#: intervals in jiffies, so 125*HZ/4 shows as 3124 clock_t, not 3125.
KERNEL_HZ = 250
USER_HZ = 100
NS_PER_JIFFY = SEC // KERNEL_HZ

# include/uapi/linux/if_bridge.h enum { MDB_RTR_TYPE_* }
MDB_RTR_TYPE_DISABLED = 0
MDB_RTR_TYPE_TEMP_QUERY = 1
MDB_RTR_TYPE_PERM = 2
MDB_RTR_TYPE_TEMP = 3

# br_private.h MDB_PG_FLAGS_*
MDB_PG_FLAGS_PERMANENT = 1 << 0
MDB_PG_FLAGS_OFFLOAD = 1 << 1
MDB_PG_FLAGS_FAST_LEAVE = 1 << 2
MDB_PG_FLAGS_STAR_EXCL = 1 << 3
MDB_PG_FLAGS_BLOCKED = 1 << 4

MCAST_EXCLUDE = 0
MCAST_INCLUDE = 1
RTPROT_KERNEL = 2
RTPROT_STATIC = 4

BR_MULTICAST_DEFAULT_HASH_MAX = 4096
IGMP_TIMER_SCALE = 10
ALL_HOSTS4 = bytes([224, 0, 0, 1])
ALL_NODES6 = bytes.fromhex("ff020000000000000000000000000001")


def _j(ns: int) -> int:
    """ns → jiffies (what the kernel stores)."""
    return ns // NS_PER_JIFFY


def _clock_t(ns: int) -> int:
    """``jiffies_to_clock_t`` of an interval kept in ns that was set in jiffies."""
    return _j(ns) * USER_HZ // KERNEL_HZ


def _msecs_to_ns(ms: int) -> int:
    """``msecs_to_jiffies`` (rounds up to whole jiffies), in ns."""
    return -(-ms * KERNEL_HZ // 1000) * NS_PER_JIFFY


def _from_clock_t(v: int) -> int:
    """``clock_t_to_jiffies`` then to ns."""
    return (v * KERNEL_HZ // USER_HZ) * NS_PER_JIFFY


# ------------------------------------------------------------------------- state
@dataclass(eq=False)
class GroupSrc:
    """``struct net_bridge_group_src``: one source of an IGMPv3/MLDv2 port group with its
    timer (running: traffic from it is wanted in INCLUDE mode / still wanted in EXCLUDE
    mode; stopped in EXCLUDE mode: blocked) and the retransmit count of the
    group-and-source-specific queries that ask about it."""

    addr: bytes
    pg: "PortGroup"
    timer: Any = None
    flags: int = 0
    src_query_rexmit_cnt: int = 0
    #: ``timer.expires`` as the kernel keeps it (the requested expiry)
    expires: int = 0


@dataclass(eq=False)
class PortGroup:
    """``struct net_bridge_port_group``: one port's membership in a group; with
    ``mcast_to_unicast`` on the port, one per reporting host (``eth_addr``).  With
    IGMPv3/MLDv2 it carries the filter mode and the source list (newest first, as the
    kernel's hlist_add_head left it); ``mp`` is the entry it belongs to."""

    port: NetBridgePort
    eth_addr: bytes
    flags: int = 0
    filter_mode: int = MCAST_EXCLUDE
    rt_protocol: int = 0
    timer: Any = None
    mp: "MdbEntry | None" = None
    src_list: list[GroupSrc] = field(default_factory=list)
    rexmit_timer: Any = None
    grp_query_rexmit_cnt: int = 0
    #: explicit host tracking on fast-leave ports (br_multicast_eht.py): hosts by
    #: reporter address, sets by source address
    eht_hosts: dict = field(default_factory=dict)
    eht_sets: dict = field(default_factory=dict)

    @property
    def permanent(self) -> bool:
        return bool(self.flags & MDB_PG_FLAGS_PERMANENT)


@dataclass(eq=False)
class MdbEntry:
    """``struct net_bridge_mdb_entry``: a (*,G) group (``src`` empty) or an (S,G) entry on
    a VLAN; ``host_joined`` is the bridge device's own membership (what
    br_handle_frame_finish reads)."""

    group: bytes
    vid: int
    proto: int
    ports: list[PortGroup] = field(default_factory=list)
    host_joined: bool = False
    timer: Any = None
    src: bytes = b""

    @property
    def is_star_g(self) -> bool:
        """``br_multicast_is_star_g``."""
        return not any(self.src)


@dataclass(eq=False)
class OwnQuery:
    """``struct bridge_mcast_own_query``: when our next query goes out, and how many of
    the ``startup_query_count`` fast startup queries were sent."""

    timer: Any
    startup_sent: int = 0


@dataclass(eq=False)
class OtherQuery:
    """``struct bridge_mcast_other_query``: another querier was heard (``timer``) and
    how long to wait before trusting the membership state (``delay_timer``)."""

    timer: Any
    delay_timer: Any


class BrMcastPort:
    """``struct net_bridge_mcast_port`` (``port.multicast``)."""

    def __init__(self, port: NetBridgePort) -> None:
        clock = port.br.dev.net.world.clock
        self.port = port
        self.multicast_router = MDB_RTR_TYPE_TEMP_QUERY
        self.ip4_mc_router_timer = clock.timer(_router_expired, port, ETH_P_IP)
        self.ip6_mc_router_timer = clock.timer(_router_expired, port, ETH_P_IPV6)
        self.rtr4 = False
        self.rtr6 = False
        #: ``pmctx->ip4/6_own_query``: this port's general queries when we are the querier
        self.ip4_own_query = OwnQuery(clock.timer(_port_query_expired, port, ETH_P_IP))
        self.ip6_own_query = OwnQuery(clock.timer(_port_query_expired, port, ETH_P_IPV6))
        #: ``port->mcast_stats``
        self.stats = McastStats()
        #: ``multicast_eht_hosts_limit`` / ``multicast_eht_hosts_cnt`` (br_multicast_eht.py)
        self.eht_hosts_limit = BR_MCAST_DEFAULT_EHT_HOSTS_LIMIT
        self.eht_hosts_cnt = 0


class BrMcast:
    """``struct net_bridge_mcast`` + the bridge's MDB (``br.multicast``)."""

    def __init__(self, br: NetBridge) -> None:
        clock = br.dev.net.world.clock
        self.br = br
        self.clock = clock
        self.enabled = True  # BROPT_MULTICAST_ENABLED
        self.multicast_router = MDB_RTR_TYPE_TEMP_QUERY
        self.multicast_querier = 0
        self.multicast_query_use_ifaddr = 0
        self.vlan_snooping = 0
        self.hash_elasticity = 16
        self.hash_max = BR_MULTICAST_DEFAULT_HASH_MAX
        self.last_member_count = 2
        self.startup_query_count = 2
        self.last_member_interval = SEC
        self.membership_interval = 260 * SEC
        self.querier_interval = 255 * SEC
        self.query_interval = 125 * SEC
        self.query_response_interval = 10 * SEC
        self.startup_query_interval = (125 * KERNEL_HZ // 4) * NS_PER_JIFFY
        self.stats_enabled = 0
        self.igmp_version = 2
        self.mld_version = 1
        self.mdb: dict[tuple[int, bytes, int, bytes], MdbEntry] = {}
        #: ``br->sg_port_tbl``: the (S,G) port groups by (S,G key, port)
        self.sg_port: dict[tuple[tuple[int, bytes, int, bytes], int], PortGroup] = {}
        self.ip4_other_query = OtherQuery(clock.timer(_other_query_expired, br, ETH_P_IP),
                                          clock.timer(_noop))
        self.ip6_other_query = OtherQuery(clock.timer(_other_query_expired, br, ETH_P_IPV6),
                                          clock.timer(_noop))
        self.ip4_querier: bytes = bytes(4)
        self.ip6_querier: bytes = bytes(16)
        self.ip4_querier_port: NetBridgePort | None = None
        self.ip6_querier_port: NetBridgePort | None = None
        self.ip4_mc_router_timer = clock.timer(_noop)
        self.ip6_mc_router_timer = clock.timer(_noop)
        #: ``brmctx->ip4/6_own_query``: the bridge's own general query (received locally)
        self.ip4_own_query = OwnQuery(clock.timer(_br_query_expired, br, ETH_P_IP))
        self.ip6_own_query = OwnQuery(clock.timer(_br_query_expired, br, ETH_P_IPV6))
        #: BROPT_HAS_IPV6_ADDR: true until an MLD query finds no source address
        self.has_ipv6_addr = True
        #: counted IGMP/MLD parse errors (br_multicast_err_count: igmp_parse_errors …)
        self.parse_errors = 0
        #: ``br->mcast_stats``
        self.stats = McastStats()


def _noop() -> None:
    """A timer whose only job is to be pending for a while (delay_timer, router timers
    of the bridge itself): the kernel's callbacks for those do nothing we model."""


# ----------------------------------------------------------------- lifecycle hooks
def br_multicast_init(br: NetBridge) -> None:
    """``br_multicast_init`` (from br_dev_init): snooping on, kernel defaults."""
    br.multicast = BrMcast(br)


def br_multicast_add_port(port: NetBridgePort) -> None:
    """``br_multicast_add_port`` (from br_add_if)."""
    port.multicast = BrMcastPort(port)


def br_multicast_del_port(port: NetBridgePort) -> None:
    """``br_multicast_del_port``: the port's groups go, its router timers stop."""
    br = port.br
    m: BrMcast | None = br.multicast
    pm: BrMcastPort | None = port.multicast
    if m is not None:
        for mp in list(m.mdb.values()):
            for pg in [pg for pg in mp.ports if pg.port is port]:
                br_multicast_del_pg(m, mp, pg)
        if m.ip4_querier_port is port:
            m.ip4_querier_port = None
        if m.ip6_querier_port is port:
            m.ip6_querier_port = None
    if pm is not None:
        pm.ip4_mc_router_timer.cancel()
        pm.ip6_mc_router_timer.cancel()
        pm.ip4_own_query.timer.cancel()
        pm.ip6_own_query.timer.cancel()
        pm.rtr4 = pm.rtr6 = False
    port.multicast = None


def br_multicast_open(br: NetBridge) -> None:
    """``br_multicast_open`` → ``__br_multicast_open_query``: the bridge's own query timer
    restarts its startup count and fires at once (it sends only when we are querier)."""
    m: BrMcast | None = br.multicast
    if m is None:
        return
    for own in (m.ip4_own_query, m.ip6_own_query):
        own.startup_sent = 0
        if m.enabled:
            own.timer.mod(m.clock.now)


def br_multicast_enable_port(port: NetBridgePort) -> None:
    """``br_multicast_enable_port`` (br_port_state_selection, for a port that is not
    blocking): its own query restarts (startup queries go out at once if we are the
    querier) and a permanent router port is (re)listed."""
    pm: BrMcastPort | None = port.multicast
    m: BrMcast | None = port.br.multicast
    if pm is None or m is None or not m.enabled or not port.br.dev.is_up:
        return
    for own in (pm.ip4_own_query, pm.ip6_own_query):
        own.startup_sent = 0
        own.timer.mod(m.clock.now)


def br_multicast_stop(br: NetBridge) -> None:
    """``br_multicast_stop``: the bridge's querier/router timers stop."""
    m: BrMcast | None = br.multicast
    if m is None:
        return
    for t in (m.ip4_other_query.timer, m.ip4_other_query.delay_timer, m.ip6_other_query.timer,
              m.ip6_other_query.delay_timer, m.ip4_mc_router_timer, m.ip6_mc_router_timer,
              m.ip4_own_query.timer, m.ip6_own_query.timer):
        t.cancel()


def br_multicast_disable_port(port: NetBridgePort) -> None:
    """``br_multicast_disable_port`` (port goes down/disabled): non-permanent groups of the
    port are deleted and it stops being a temporary router port."""
    m: BrMcast | None = port.br.multicast
    pm: BrMcastPort | None = port.multicast
    if m is None or pm is None:
        return
    for mp in list(m.mdb.values()):
        for pg in [pg for pg in mp.ports if pg.port is port and not pg.permanent]:
            br_multicast_del_pg(m, mp, pg)
    for fam in (ETH_P_IP, ETH_P_IPV6):
        if pm.multicast_router != MDB_RTR_TYPE_PERM:
            _set_rtr(pm, fam, False)
    pm.ip4_own_query.timer.cancel()
    pm.ip6_own_query.timer.cancel()


# ---------------------------------------------------------------------- MDB core
def mdb_key(proto: int, group: bytes, vid: int, src: bytes = b"") -> tuple[int, bytes, int, bytes]:
    """The MDB's hash key (``struct br_ip``): protocol, group, VLAN and — for an (S,G)
    entry — the source; a (*,G) entry has no source."""
    return (proto, bytes(group), vid, bytes(src) if any(src) else b"")


BR_SGRP_F_DELETE = 1 << 0
BR_SGRP_F_SEND = 1 << 1
BR_SGRP_F_INSTALLED = 1 << 2
#: ``PG_SRC_ENT_LIMIT``: at most 32 sources per port group
PG_SRC_ENT_LIMIT = 32


def _pg_linked(pg: PortGroup) -> bool:
    """The port group is still in its entry's port list (``!hlist_unhashed(&pg->mglist)``)."""
    return pg.mp is not None and pg in pg.mp.ports


def br_multicast_del_pg(m: BrMcast, mp: MdbEntry, pg: PortGroup) -> None:
    """``br_multicast_del_pg``: unlink, drop the sources (and their (S,G) forwarding
    entries), stop the timers; an (S,G) entry left with only ports added for *,G
    EXCLUDE is emptied (``br_multicast_sg_del_exclude_ports``), a (*,G) port group takes
    its EXCLUDE ports out of the (S,G) entries (``br_multicast_star_g_handle_mode``); an
    empty entry nobody joined goes (the kernel via its timer at once)."""
    if pg not in mp.ports:
        return
    mp.ports.remove(pg)
    for ent in list(pg.src_list):
        _del_group_src(m, ent, False)
    _eht_clean_sets(pg)
    if pg.timer is not None:
        pg.timer.cancel()
    if pg.rexmit_timer is not None:
        pg.rexmit_timer.cancel()
    if not mp.is_star_g:
        m.sg_port.pop((mdb_key(mp.proto, mp.group, mp.vid, mp.src), id(pg.port)), None)
        _sg_del_exclude_ports(m, mp)
    else:
        _star_g_handle_mode(m, pg, MCAST_INCLUDE, mp)
    if not mp.ports and not mp.host_joined:
        _del_mdb(m, mp)


def _del_mdb(m: BrMcast, mp: MdbEntry) -> None:
    if mp.timer is not None:
        mp.timer.cancel()
    k = mdb_key(mp.proto, mp.group, mp.vid, mp.src)
    if m.mdb.get(k) is mp:
        del m.mdb[k]


def br_multicast_port_group_expired(m: BrMcast, mp: MdbEntry, pg: PortGroup) -> None:
    """``br_multicast_port_group_expired``: the group timer ran out — back to INCLUDE
    with only the sources whose timers still run; nothing left → the group goes."""
    if pg.permanent or not _pg_linked(pg) or not m.br.dev.is_up:
        return
    changed = pg.filter_mode == MCAST_EXCLUDE
    pg.filter_mode = MCAST_INCLUDE
    for ent in list(pg.src_list):
        if not ent.timer.active:
            _del_group_src(m, ent, False)
            changed = True
    if not pg.src_list:
        br_multicast_del_pg(m, mp, pg)
    elif changed and mp.is_star_g:
        _star_g_handle_mode(m, pg, MCAST_INCLUDE, mp)


def br_multicast_group_expired(m: BrMcast, mp: MdbEntry) -> None:
    """``br_multicast_group_expired``: the bridge's own membership lapsed."""
    _host_leave(m, mp)
    if not mp.ports:
        _del_mdb(m, mp)


def _host_leave(m: BrMcast, mp: MdbEntry) -> None:
    """``br_multicast_host_leave``: the (S,G) entries of a (*,G) follow its host state."""
    if not mp.host_joined:
        return
    mp.host_joined = False
    if mp.is_star_g:
        _star_g_host_state(m, mp)


def br_multicast_host_join(m: BrMcast, mp: MdbEntry) -> None:
    """``br_multicast_host_join``: the bridge device joins; its timer is the membership
    interval."""
    if not mp.host_joined:
        mp.host_joined = True
        if mp.is_star_g:
            _star_g_host_state(m, mp)
    mp.timer.mod(m.clock.now + m.membership_interval)


def _star_g_host_state(m: BrMcast, star: MdbEntry) -> None:
    """``br_multicast_star_g_host_state``: every installed (S,G) of the group copies the
    (*,G) host_joined state."""
    for pg in star.ports:
        for ent in pg.src_list:
            if not ent.flags & BR_SGRP_F_INSTALLED:
                continue
            sg = m.mdb.get(mdb_key(star.proto, star.group, star.vid, ent.addr))
            if sg is not None:
                sg.host_joined = star.host_joined


def br_multicast_new_group(m: BrMcast, proto: int, group: bytes, vid: int,
                           src: bytes = b"") -> MdbEntry:
    """``br_multicast_new_group``; a full table is ``-E2BIG`` and turns snooping off, as
    the kernel does ("Multicast hash table maximum of %d reached, disabling snooping")."""
    k = mdb_key(proto, group, vid, src)
    mp = m.mdb.get(k)
    if mp is not None:
        return mp
    if len(m.mdb) >= m.hash_max:
        m.enabled = False
        raise KernelError(errno.E2BIG, "Multicast hash table maximum reached, disabling snooping")
    mp = MdbEntry(bytes(group), vid, proto, src=k[3])
    mp.timer = m.clock.timer(br_multicast_group_expired, m, mp)
    m.mdb[k] = mp
    return mp


def _port_group_equal(pg: PortGroup, port: NetBridgePort, src: bytes) -> bool:
    """``br_port_group_equal``: with mcast_to_unicast, one group per reporting host."""
    if pg.port is not port:
        return False
    if not port.flags & BR_MULTICAST_TO_UNICAST:
        return True
    return pg.eth_addr == src


def br_multicast_new_port_group(m: BrMcast, mp: MdbEntry, port: NetBridgePort,
                                eth_addr: bytes | None, filter_mode: int, rt_protocol: int,
                                flags: int = 0) -> PortGroup | None:
    """``br_multicast_new_port_group``: linked into ``mp.ports`` (netstack keeps them by
    port number; the kernel by port pointer); an (S,G) port group is also registered in
    ``sg_port`` and a second one for the same port and (S,G) is refused (None)."""
    skey = (mdb_key(mp.proto, mp.group, mp.vid, mp.src), id(port))
    if not mp.is_star_g and skey in m.sg_port:
        return None
    pg = PortGroup(port, bytes(eth_addr) if eth_addr is not None else b"\xff" * 6,
                   flags=flags, filter_mode=filter_mode, rt_protocol=rt_protocol, mp=mp)
    pg.timer = m.clock.timer(_pg_timer_expired, m, pg)
    pg.rexmit_timer = m.clock.timer(_pg_rexmit, m, pg)
    if not mp.is_star_g:
        m.sg_port[skey] = pg
    # the kernel keeps mp->ports by descending port pointer (an allocation accident:
    # measured both ways round); netstack by port number
    idx = next((i for i, q in enumerate(mp.ports) if q.port.port_no > port.port_no), len(mp.ports))
    mp.ports.insert(idx, pg)
    return pg


def _pg_timer_expired(m: BrMcast, pg: PortGroup) -> None:
    if pg.mp is not None:
        br_multicast_port_group_expired(m, pg.mp, pg)


def _add_group_pg(m: BrMcast, port: NetBridgePort | None, proto: int, group: bytes, vid: int,
                  src: bytes, eth: bytes, filter_mode: int, igmpv2_mldv1: bool,
                  blocked: bool = False) -> PortGroup | None:
    """``__br_multicast_add_group``: the entry for (``src``,) ``group``, then the port's
    group (new ones with ``filter_mode``, RTPROT_KERNEL, BLOCKED when asked); only the
    IGMPv2/MLDv1 view starts the membership timer here.  ``-E2BIG`` propagates."""
    if port is not None and port.state == BR_STATE_DISABLED:
        return None
    if not m.br.dev.is_up:
        return None
    mp = br_multicast_new_group(m, proto, group, vid, src)
    if port is None:
        br_multicast_host_join(m, mp)
        return None
    pg = next((p for p in mp.ports if _port_group_equal(p, port, eth)), None)
    if pg is None:
        pg = br_multicast_new_port_group(m, mp, port, eth, filter_mode, RTPROT_KERNEL)
        if pg is None:
            return None
        if blocked:
            pg.flags |= MDB_PG_FLAGS_BLOCKED
    if igmpv2_mldv1:
        pg.timer.mod(m.clock.now + m.membership_interval)
    return pg


def _add_group(m: BrMcast, port: NetBridgePort | None, proto: int, group: bytes, vid: int,
               src: bytes, igmpv2_mldv1: bool = True) -> None:
    """``br_multicast_add_group``: a report's (*,G) join — EXCLUDE with the membership
    timer in the IGMPv2/MLDv1 view, INCLUDE {} without a timer for IGMPv3/MLDv2 (the
    record's state machine fills it in)."""
    if not m.enabled:
        return
    _add_group_pg(m, port, proto, group, vid, b"", src,
                  MCAST_EXCLUDE if igmpv2_mldv1 else MCAST_INCLUDE, igmpv2_mldv1)


# ------------------------------------------------- (S,G) forwarding entries
def _sg_key_of(ent: GroupSrc) -> tuple[int, bytes, int, bytes]:
    mp = ent.pg.mp
    assert mp is not None
    return mdb_key(mp.proto, mp.group, mp.vid, ent.addr)


def _fwd_add_star_excl(m: BrMcast, pg: PortGroup, sgk: tuple[int, bytes, int, bytes],
                       eth_addr: bytes | None = None) -> None:
    """``__fwd_add_star_excl``: an EXCLUDE (*,G) port joins an (S,G) entry, as a kernel
    entry flagged added_by_star_ex.  Also the loop body of
    ``br_multicast_sg_add_exclude_ports``, which passes the (S,G) port group's
    ``eth_addr`` where ``__fwd_add_star_excl`` uses the (*,G) port group's own."""
    if (sgk, id(pg.port)) in m.sg_port:
        return
    try:
        src_pg = _add_group_pg(m, pg.port, sgk[0], sgk[1], sgk[2], sgk[3],
                               pg.eth_addr if eth_addr is None else eth_addr,
                               MCAST_INCLUDE, False)
    except KernelError:
        return
    if src_pg is None or src_pg.rt_protocol != RTPROT_KERNEL:
        return
    src_pg.flags |= MDB_PG_FLAGS_STAR_EXCL


def _fwd_del_star_excl(m: BrMcast, pg: PortGroup, sgk: tuple[int, bytes, int, bytes]) -> None:
    """``__fwd_del_star_excl``."""
    src_pg = m.sg_port.get((sgk, id(pg.port)))
    if src_pg is None or not src_pg.flags & MDB_PG_FLAGS_STAR_EXCL or \
            src_pg.rt_protocol != RTPROT_KERNEL or src_pg.mp is None:
        return
    br_multicast_del_pg(m, src_pg.mp, src_pg)


def _star_g_handle_mode(m: BrMcast, pg: PortGroup, filter_mode: int,
                        mp: MdbEntry | None = None) -> None:
    """``br_multicast_star_g_handle_mode``: a (*,G) port group turning EXCLUDE is added to
    every other port's installed (S,G) entries of the group (so those sources still reach
    it), and taken out of them again when it turns INCLUDE or goes."""
    mp = mp if mp is not None else pg.mp
    if mp is None or m.mdb.get(mdb_key(mp.proto, mp.group, mp.vid)) is not mp:
        return
    for other in list(mp.ports):
        if other is pg:
            continue
        for ent in list(other.src_list):
            if not ent.flags & BR_SGRP_F_INSTALLED:
                continue
            sgk = mdb_key(mp.proto, mp.group, mp.vid, ent.addr)
            if filter_mode == MCAST_INCLUDE:
                _fwd_del_star_excl(m, pg, sgk)
            else:
                _fwd_add_star_excl(m, pg, sgk)


def _sg_del_exclude_ports(m: BrMcast, sgmp: MdbEntry) -> None:
    """``br_multicast_sg_del_exclude_ports``: an (S,G) left with only *,G-EXCLUDE (or
    permanent) ports is emptied."""
    if any(not p.flags & (MDB_PG_FLAGS_STAR_EXCL | MDB_PG_FLAGS_PERMANENT) for p in sgmp.ports):
        return
    sgmp.host_joined = False
    for p in list(sgmp.ports):
        if not p.permanent:
            br_multicast_del_pg(m, sgmp, p)


def br_multicast_sg_add_exclude_ports(m: BrMcast, star: MdbEntry, sg: PortGroup) -> None:
    """``br_multicast_sg_add_exclude_ports``: every EXCLUDE (*,G) port is added to a new
    (S,G) entry, flagged added_by_star_ex."""
    sgmp = sg.mp
    if sgmp is None:
        return
    if star.host_joined:
        sgmp.host_joined = True  # br_multicast_sg_host_state
    sgk = mdb_key(sgmp.proto, sgmp.group, sgmp.vid, sgmp.src)
    for pg in list(star.ports):
        if pg is sg or pg.filter_mode == MCAST_INCLUDE:
            continue
        _fwd_add_star_excl(m, pg, sgk, sg.eth_addr)


def _fwd_src_add(m: BrMcast, ent: GroupSrc) -> None:
    """``br_multicast_fwd_src_add``: install the (S,G) entry for a source (blocked when
    its timer is not running); the kernel then owns it (no timer) and adds the EXCLUDE
    ports of the (*,G)."""
    if ent.flags & BR_SGRP_F_INSTALLED:
        return
    pg = ent.pg
    mp = pg.mp
    if mp is None:
        return
    try:
        sg = _add_group_pg(m, pg.port, mp.proto, mp.group, mp.vid, ent.addr, pg.eth_addr,
                           MCAST_INCLUDE, False, blocked=not ent.timer.active)
    except KernelError:
        return
    if sg is None:
        return
    ent.flags |= BR_SGRP_F_INSTALLED
    sg.flags &= ~MDB_PG_FLAGS_STAR_EXCL
    if sg.rt_protocol != RTPROT_KERNEL and sg.permanent:
        return
    sg.timer.cancel()
    star = m.mdb.get(mdb_key(mp.proto, mp.group, mp.vid))
    if star is not None:
        br_multicast_sg_add_exclude_ports(m, star, sg)


def _fwd_src_remove(m: BrMcast, ent: GroupSrc, fastleave: bool) -> None:
    """``br_multicast_fwd_src_remove``: the port leaves the source's (S,G) entry (unless
    user space installed it permanently)."""
    pg = ent.pg
    sgmp = m.mdb.get(_sg_key_of(ent))
    if sgmp is None:
        return
    for p in list(sgmp.ports):
        if not _port_group_equal(p, pg.port, pg.eth_addr):
            continue
        if p.rt_protocol != RTPROT_KERNEL and p.permanent:
            break
        if fastleave:
            p.flags |= MDB_PG_FLAGS_FAST_LEAVE
        br_multicast_del_pg(m, sgmp, p)
        break
    ent.flags &= ~BR_SGRP_F_INSTALLED


def _fwd_src_handle(m: BrMcast, ent: GroupSrc) -> None:
    """``br_multicast_fwd_src_handle``: install the (S,G) and set its BLOCKED flag from the
    source timer."""
    _fwd_src_add(m, ent)
    sg = m.sg_port.get((_sg_key_of(ent), id(ent.pg.port)))
    if sg is None or sg.permanent:
        return
    if ent.timer.active:
        sg.flags &= ~MDB_PG_FLAGS_BLOCKED
    else:
        sg.flags |= MDB_PG_FLAGS_BLOCKED


def _del_group_src(m: BrMcast, ent: GroupSrc, fastleave: bool) -> None:
    """``br_multicast_del_group_src``."""
    _fwd_src_remove(m, ent, fastleave)
    if ent in ent.pg.src_list:
        ent.pg.src_list.remove(ent)
    ent.timer.cancel()


def _find_group_src(pg: PortGroup, addr: bytes) -> GroupSrc | None:
    """``br_multicast_find_group_src``."""
    return next((e for e in pg.src_list if e.addr == addr), None)


def _new_group_src(m: BrMcast, pg: PortGroup, addr: bytes) -> GroupSrc | None:
    """``br_multicast_new_group_src``: at most PG_SRC_ENT_LIMIT sources; 0.0.0.0/::,
    multicast (and for IPv4 0.x.x.x) sources are refused; new ones go first."""
    if len(pg.src_list) >= PG_SRC_ENT_LIMIT:
        return None
    if len(addr) == 4:
        if addr[0] == 0 or addr[0] & 0xF0 == 0xE0:
            return None
    elif not any(addr) or addr[0] == 0xFF:
        return None
    ent = GroupSrc(bytes(addr), pg)
    ent.timer = m.clock.timer(_group_src_expired, m, ent)
    pg.src_list.insert(0, ent)
    return ent


def _group_src_expired(m: BrMcast, ent: GroupSrc) -> None:
    """``br_multicast_group_src_expired``: in INCLUDE mode the source goes (and the group
    with its last source); in EXCLUDE mode it becomes blocked."""
    pg = ent.pg
    if ent not in pg.src_list or not m.br.dev.is_up:
        return
    if pg.filter_mode == MCAST_INCLUDE:
        _del_group_src(m, ent, False)
        if pg.src_list or pg.mp is None:
            return
        br_multicast_del_pg(m, pg.mp, pg)
    else:
        _fwd_src_handle(m, ent)


def _wheel_expires(m: BrMcast, expires: int) -> int:
    """When the kernel's timer wheel (kernel/time/timer.c ``calc_index``) really runs a
    timer armed now for ``expires``: exactly on time within 63 jiffies, else at the next
    boundary of its level's granularity (8, 64, 512 … jiffies), never early."""
    now_j = m.clock.now // NS_PER_JIFFY
    exp_j = -(-expires // NS_PER_JIFFY)
    delta = exp_j - now_j
    if delta < 63:
        return expires
    lvl = 1
    while lvl < 8 and delta >= 63 << (3 * lvl):
        lvl += 1
    shift = 3 * lvl
    return (((exp_j >> shift) + 1) << shift) * NS_PER_JIFFY


def _src_mod_timer(m: BrMcast, ent: GroupSrc, expires: int) -> None:
    """``__grp_src_mod_timer``: ``ent.expires`` is ``timer->expires`` (what the state
    machine compares and the dump shows); the timer fires when the kernel's wheel would
    (a source timer lowered to LMQT then fires after the last query retransmission due
    at the same jiffy, as on Linux)."""
    ent.expires = expires
    ent.timer.mod(_wheel_expires(m, expires))
    _fwd_src_handle(m, ent)


def _timer_lower(t, when: int) -> bool:  # type: ignore[no-untyped-def]
    """The kernel's ``timer_pending(t) ? time_after(t->expires, when) :
    try_to_del_timer_sync(t) >= 0``: a pending timer only moves earlier; an idle one is
    (re)armed."""
    return t.expires > when if t.active else True


def _leave_group(m: BrMcast, port: NetBridgePort | None, proto: int, group: bytes, vid: int,
                 src: bytes, other: OtherQuery) -> None:
    """``br_multicast_leave_group`` (no own querier): fast-leave ports lose the group at
    once; otherwise, unless another querier will ask, the group times out after
    last_member_count × last_member_interval."""
    mp = m.mdb.get(mdb_key(proto, group, vid))
    if mp is None:
        return
    if port is not None and port.flags & BR_MULTICAST_FAST_LEAVE:
        for pg in list(mp.ports):
            if not _port_group_equal(pg, port, src):
                continue
            if pg.permanent:
                break
            pg.flags |= MDB_PG_FLAGS_FAST_LEAVE
            br_multicast_del_pg(m, mp, pg)
            break
        return
    if other.timer.active:
        return
    when = m.clock.now + m.last_member_count * m.last_member_interval
    if m.multicast_querier:
        # we are the querier: a group-specific query to the leaving port (or up the
        # bridge) and the port's own query timer moved to the last-member deadline
        _send_query(m, port, proto, group)
        own = _own(m, port, proto)
        own.timer.mod(when)
        for pg in mp.ports if port is not None else ():
            if not _port_group_equal(pg, port, src):
                continue
            if _timer_lower(pg.timer, when):
                pg.timer.mod(when)
            break
    if port is None:
        if mp.host_joined and _timer_lower(mp.timer, when):
            mp.timer.mod(when)
        return
    for pg in mp.ports:
        if not _port_group_equal(pg, port, src):
            continue
        if pg.filter_mode == MCAST_INCLUDE:
            break
        if _timer_lower(pg.timer, when):
            pg.timer.mod(when)
        break


# ----------------------------------------------- IGMPv3/MLDv2 source filtering
def _gmi(m: BrMcast) -> int:
    """``br_multicast_gmi``: the Group Membership Interval."""
    return m.membership_interval


def _lmqt(m: BrMcast) -> int:
    """``br_multicast_lmqt``: Last Member Query Time."""
    return m.last_member_interval * m.last_member_count


def _other_q(m: BrMcast, pg: PortGroup) -> OtherQuery:
    return m.ip4_other_query if pg.mp is not None and pg.mp.proto == ETH_P_IP else m.ip6_other_query


def _grp_src_delete_marked(m: BrMcast, pg: PortGroup) -> int:
    """``__grp_src_delete_marked``."""
    n = 0
    for ent in list(pg.src_list):
        if ent.flags & BR_SGRP_F_DELETE:
            _del_group_src(m, ent, False)
            n += 1
    return n


def _grp_src_query_marked_and_rexmit(m: BrMcast, port: NetBridgePort, pg: PortGroup) -> None:
    """``__grp_src_query_marked_and_rexmit``: the marked sources' timers drop to LMQT, and
    we (as querier with no other querier) ask about them with a group-and-source-specific
    query, repeated every last_member_interval (``br_multicast_port_group_rexmit``)."""
    if not m.br.dev.is_up or not m.enabled:
        return
    other = _other_q(m, pg)
    now = m.clock.now
    lmqt = now + _lmqt(m)
    for ent in list(pg.src_list):
        if ent.flags & BR_SGRP_F_SEND:
            ent.flags &= ~BR_SGRP_F_SEND
            if ent.expires > lmqt:
                if m.multicast_querier and not other.timer.active:
                    ent.src_query_rexmit_cnt = m.last_member_count
                _src_mod_timer(m, ent, lmqt)
    if not m.multicast_querier or other.timer.active:
        return
    _send_query(m, port, pg.mp.proto if pg.mp else ETH_P_IP, pg.mp.group if pg.mp else bytes(4),
                pg=pg, to_group=True, with_srcs=True, sflag=1)
    lmi = now + m.last_member_interval
    if not pg.rexmit_timer.active or pg.rexmit_timer.expires > lmi:
        pg.rexmit_timer.mod(lmi)


def _grp_send_query_and_rexmit(m: BrMcast, port: NetBridgePort, pg: PortGroup) -> None:
    """``__grp_send_query_and_rexmit``: a group-specific query (last_member_count times)
    and, in EXCLUDE mode, the group timer lowered to LMQT."""
    if not m.br.dev.is_up or not m.enabled:
        return
    other = _other_q(m, pg)
    now = m.clock.now
    if m.multicast_querier and not other.timer.active and pg.mp is not None:
        lmi = now + m.last_member_interval
        pg.grp_query_rexmit_cnt = m.last_member_count - 1
        _send_query(m, port, pg.mp.proto, pg.mp.group, pg=pg, to_group=True)
        if not pg.rexmit_timer.active or pg.rexmit_timer.expires > lmi:
            pg.rexmit_timer.mod(lmi)
    if pg.filter_mode == MCAST_EXCLUDE and (not pg.timer.active or pg.timer.expires > now + _lmqt(m)):
        pg.timer.mod(now + _lmqt(m))


def _pg_rexmit(m: BrMcast, pg: PortGroup) -> None:
    """``br_multicast_port_group_rexmit``: the remaining group(-and-source)-specific
    queries."""
    if not m.br.dev.is_up or not _pg_linked(pg) or not m.enabled or not m.multicast_querier:
        return
    if _other_q(m, pg).timer.active or pg.mp is None:
        return
    need: list[bool] = []
    if pg.grp_query_rexmit_cnt:
        pg.grp_query_rexmit_cnt -= 1
        _send_query(m, pg.port, pg.mp.proto, pg.mp.group, pg=pg, to_group=True, sflag=1)
    _send_query(m, pg.port, pg.mp.proto, pg.mp.group, pg=pg, to_group=True, with_srcs=True,
                need_rexmit=need)
    if pg.grp_query_rexmit_cnt or need:
        pg.rexmit_timer.mod(m.clock.now + m.last_member_interval)


def _isinc_allow(m: BrMcast, pg: PortGroup, srcs: list[bytes], h: bytes, rtype: int) -> bool:
    """``br_multicast_isinc_allow``: INCLUDE(A)+IS_IN/ALLOW(B) → INCLUDE(A+B), (B)=GMI;
    EXCLUDE(X,Y)+ALLOW(A) → EXCLUDE(X+A,Y-A), (A)=GMI (RFC 3376 §6.4.1/6.4.2)."""
    changed = False
    now = m.clock.now
    for s in srcs:
        ent = _find_group_src(pg, s)
        if ent is None:
            ent = _new_group_src(m, pg, s)
            if ent is not None:
                changed = True
        if ent is not None:
            _src_mod_timer(m, ent, now + _gmi(m))
    if br_multicast_eht_handle(m, pg, h, srcs, rtype):
        changed = True
    return changed


def _isexc(m: BrMcast, pg: PortGroup, srcs: list[bytes], h: bytes, rtype: int) -> bool:
    """``br_multicast_isexc``: INCLUDE(A)+IS_EX(B) → EXCLUDE(A*B,B-A), (B-A)=0, delete
    (A-B); EXCLUDE(X,Y)+IS_EX(A) → EXCLUDE(A-Y,Y*A), (A-X-Y)=GMI, delete (X-A),(Y-A);
    group timer = GMI."""
    changed = False
    now = m.clock.now
    for ent in pg.src_list:
        ent.flags |= BR_SGRP_F_DELETE
    if pg.filter_mode == MCAST_INCLUDE:
        for s in srcs:
            ent = _find_group_src(pg, s)
            if ent is not None:
                ent.flags &= ~BR_SGRP_F_DELETE
            else:
                ent = _new_group_src(m, pg, s)
            if ent is not None:
                _fwd_src_handle(m, ent)
        br_multicast_eht_handle(m, pg, h, srcs, rtype)
        _grp_src_delete_marked(m, pg)
        _star_g_handle_mode(m, pg, MCAST_EXCLUDE)
        changed = True
    else:
        for s in srcs:
            ent = _find_group_src(pg, s)
            if ent is not None:
                ent.flags &= ~BR_SGRP_F_DELETE
            else:
                ent = _new_group_src(m, pg, s)
                if ent is not None:
                    _src_mod_timer(m, ent, now + _gmi(m))
                    changed = True
        if br_multicast_eht_handle(m, pg, h, srcs, rtype):
            changed = True
        if _grp_src_delete_marked(m, pg):
            changed = True
    pg.filter_mode = MCAST_EXCLUDE
    pg.timer.mod(m.clock.now + _gmi(m))
    return changed


def _toin(m: BrMcast, port: NetBridgePort, pg: PortGroup, srcs: list[bytes], h: bytes,
          rtype: int) -> bool:
    """``br_multicast_toin``: INCLUDE(A)+TO_IN(B) → INCLUDE(A+B), (B)=GMI, Q(G,A-B);
    EXCLUDE(X,Y)+TO_IN(A) → EXCLUDE(X+A,Y-A), (A)=GMI, Q(G,X-A), Q(G)."""
    changed = False
    now = m.clock.now
    excl = pg.filter_mode == MCAST_EXCLUDE
    to_send = len(pg.src_list)
    for ent in pg.src_list:
        if not excl or ent.timer.active:
            ent.flags |= BR_SGRP_F_SEND
    for s in srcs:
        ent = _find_group_src(pg, s)
        if ent is not None:
            if not excl or ent.timer.active:
                ent.flags &= ~BR_SGRP_F_SEND
                to_send -= 1
        else:
            ent = _new_group_src(m, pg, s)
            if ent is not None:
                changed = True
        if ent is not None:
            _src_mod_timer(m, ent, now + _gmi(m))
    if br_multicast_eht_handle(m, pg, h, srcs, rtype):
        changed = True
    if to_send:
        _grp_src_query_marked_and_rexmit(m, port, pg)
    if excl:
        _grp_send_query_and_rexmit(m, port, pg)
    if br_multicast_eht_should_del_pg(pg) and pg.mp is not None:
        # the last tracked host left: fast leave (br_multicast_toin)
        pg.flags |= MDB_PG_FLAGS_FAST_LEAVE
        br_multicast_del_pg(m, pg.mp, pg)
        changed = False
    return changed


def _toex(m: BrMcast, port: NetBridgePort, pg: PortGroup, srcs: list[bytes], h: bytes,
          rtype: int) -> bool:
    """``br_multicast_toex``: INCLUDE(A)+TO_EX(B) → EXCLUDE(A*B,B-A), (B-A)=0, delete
    (A-B), Q(G,A*B); EXCLUDE(X,Y)+TO_EX(A) → EXCLUDE(A-Y,Y*A), (A-X-Y)=group timer,
    delete (X-A),(Y-A), Q(G,A-Y); group timer = GMI."""
    changed = False
    to_send = 0
    for ent in pg.src_list:
        ent.flags = (ent.flags & ~BR_SGRP_F_SEND) | BR_SGRP_F_DELETE
    if pg.filter_mode == MCAST_INCLUDE:
        for s in srcs:
            ent = _find_group_src(pg, s)
            if ent is not None:
                ent.flags = (ent.flags & ~BR_SGRP_F_DELETE) | BR_SGRP_F_SEND
                to_send += 1
            else:
                ent = _new_group_src(m, pg, s)
            if ent is not None:
                _fwd_src_handle(m, ent)
        br_multicast_eht_handle(m, pg, h, srcs, rtype)
        _grp_src_delete_marked(m, pg)
        if to_send:
            _grp_src_query_marked_and_rexmit(m, port, pg)
        _star_g_handle_mode(m, pg, MCAST_EXCLUDE)
        changed = True
    else:
        for s in srcs:
            ent = _find_group_src(pg, s)
            if ent is not None:
                ent.flags &= ~BR_SGRP_F_DELETE
            else:
                ent = _new_group_src(m, pg, s)
                if ent is not None:
                    _src_mod_timer(m, ent, pg.timer.expires)  # (A-X-Y) = group timer
                    changed = True
            if ent is not None and ent.timer.active:
                ent.flags |= BR_SGRP_F_SEND
                to_send += 1
        if br_multicast_eht_handle(m, pg, h, srcs, rtype):
            changed = True
        if _grp_src_delete_marked(m, pg):
            changed = True
        if to_send:
            _grp_src_query_marked_and_rexmit(m, port, pg)
    pg.filter_mode = MCAST_EXCLUDE
    pg.timer.mod(m.clock.now + _gmi(m))
    return changed


def _block(m: BrMcast, port: NetBridgePort, pg: PortGroup, srcs: list[bytes], h: bytes,
           rtype: int) -> bool:
    """``br_multicast_block``: INCLUDE(A)+BLOCK(B) → INCLUDE(A), Q(G,A*B);
    EXCLUDE(X,Y)+BLOCK(A) → EXCLUDE(X+(A-Y),Y), (A-X-Y)=group timer, Q(G,A-Y); an
    INCLUDE group without sources goes."""
    changed = False
    to_send = 0
    for ent in pg.src_list:
        ent.flags &= ~BR_SGRP_F_SEND
    excl = pg.filter_mode == MCAST_EXCLUDE
    for s in srcs:
        ent = _find_group_src(pg, s)
        if excl and ent is None:
            ent = _new_group_src(m, pg, s)
            if ent is not None:
                _src_mod_timer(m, ent, pg.timer.expires)
                changed = True
        if ent is not None and (not excl or ent.timer.active):
            ent.flags |= BR_SGRP_F_SEND
            to_send += 1
    if br_multicast_eht_handle(m, pg, h, srcs, rtype):
        changed = True
    if to_send:
        _grp_src_query_marked_and_rexmit(m, port, pg)
    eht_del = br_multicast_eht_should_del_pg(pg)
    if (pg.filter_mode == MCAST_INCLUDE and not pg.src_list or eht_del) and pg.mp is not None:
        if eht_del:
            pg.flags |= MDB_PG_FLAGS_FAST_LEAVE
        br_multicast_del_pg(m, pg.mp, pg)
        changed = False
    return changed


_RECORD_HANDLERS = {MODE_IS_INCLUDE: "isinc", ALLOW_NEW_SOURCES: "isinc",
                    MODE_IS_EXCLUDE: "isexc", CHANGE_TO_INCLUDE: "toin",
                    CHANGE_TO_EXCLUDE: "toex", BLOCK_OLD_SOURCES: "block"}


def _record_state(m: BrMcast, port: NetBridgePort, pg: PortGroup, rtype: int,
                  srcs: list[bytes], h: bytes) -> bool:
    """Apply one group record to the port group (the ``switch (type)`` of
    br_ip4_multicast_igmp3_report / br_ip6_multicast_mld2_report)."""
    kind = _RECORD_HANDLERS[rtype]
    if kind == "isinc":
        return _isinc_allow(m, pg, srcs, h, rtype)
    if kind == "isexc":
        return _isexc(m, pg, srcs, h, rtype)
    if kind == "toin":
        return _toin(m, port, pg, srcs, h, rtype)
    if kind == "toex":
        return _toex(m, port, pg, srcs, h, rtype)
    return _block(m, port, pg, srcs, h, rtype)


# ---------------------------------------------------------------- router ports
def _set_rtr(pm: BrMcastPort, fam: int, on: bool) -> None:
    if fam == ETH_P_IP:
        pm.rtr4 = on
        if not on:
            pm.ip4_mc_router_timer.cancel()
    else:
        pm.rtr6 = on
        if not on:
            pm.ip6_mc_router_timer.cancel()


def _router_expired(port: NetBridgePort, fam: int) -> None:
    """``br_ip4/6_multicast_router_expired``: a temporary router port times out."""
    pm: BrMcastPort | None = port.multicast
    if pm is None or pm.multicast_router in (MDB_RTR_TYPE_DISABLED, MDB_RTR_TYPE_PERM):
        return
    _set_rtr(pm, fam, False)


def _other_query_expired(br: NetBridge, fam: int) -> None:
    """``br_ip4/6_multicast_querier_expired``: the elected querier is forgotten."""
    m: BrMcast | None = br.multicast
    if m is None:
        return
    if fam == ETH_P_IP:
        m.ip4_querier = bytes(4)
        m.ip4_querier_port = None
    else:
        m.ip6_querier = bytes(16)
        m.ip6_querier_port = None


def _mark_router(m: BrMcast, port: NetBridgePort | None, fam: int) -> None:
    """``br_multicast_mark_router``: a query makes its port a (temporary) router port."""
    now = m.clock.now
    if port is None:
        if m.multicast_router == MDB_RTR_TYPE_TEMP_QUERY:
            t = m.ip4_mc_router_timer if fam == ETH_P_IP else m.ip6_mc_router_timer
            t.mod(now + m.querier_interval)
        return
    pm: BrMcastPort | None = port.multicast
    if pm is None or pm.multicast_router in (MDB_RTR_TYPE_DISABLED, MDB_RTR_TYPE_PERM):
        return
    _set_rtr(pm, fam, True)
    t = pm.ip4_mc_router_timer if fam == ETH_P_IP else pm.ip6_mc_router_timer
    t.mod(now + m.querier_interval)


def _query_received(m: BrMcast, port: NetBridgePort | None, fam: int, saddr: bytes,
                    max_delay: int) -> None:
    """``br_ip4/6_multicast_query_received``: querier election (lowest address wins,
    ``br_multicast_select_querier``), the other-querier timers, router marking."""
    other = m.ip4_other_query if fam == ETH_P_IP else m.ip6_other_query
    cur = m.ip4_querier if fam == ETH_P_IP else m.ip6_querier
    if other.timer.active and any(cur) and saddr > cur:
        return
    if fam == ETH_P_IP:
        m.ip4_querier, m.ip4_querier_port = bytes(saddr), port
    else:
        m.ip6_querier, m.ip6_querier_port = bytes(saddr), port
    now = m.clock.now
    if not other.timer.active:
        other.delay_timer.mod(now + max_delay)
    other.timer.mod(now + m.querier_interval)
    _mark_router(m, port, fam)


def _group_query(m: BrMcast, fam: int, group: bytes, vid: int, max_delay: int) -> None:
    """A group-specific query: members must answer within last_member_count × max_delay."""
    mp = m.mdb.get(mdb_key(fam, group, vid))
    if mp is None:
        return
    when = m.clock.now + max_delay * m.last_member_count
    if mp.host_joined and _timer_lower(mp.timer, when):
        mp.timer.mod(when)
    v2 = (m.igmp_version == 2) if fam == ETH_P_IP else (m.mld_version == 1)
    for pg in mp.ports:
        if pg.permanent:
            continue
        # an idle timer is armed only in the v2/v1 view or for an EXCLUDE group
        if pg.timer.active and pg.timer.expires > when or \
                not pg.timer.active and (v2 or pg.filter_mode == MCAST_EXCLUDE):
            pg.timer.mod(when)


# ------------------------------------------------------------------ receive path
def _cb(pkt: "Packet") -> BrInputCb:
    cb = pkt.cb
    if not isinstance(cb, BrInputCb):
        cb = BrInputCb()
        pkt.cb = cb
    return cb


def _port_ok(port: NetBridgePort | None) -> bool:
    """Queries/reports on a disabled or blocking port are ignored
    (``br_multicast_port_ctx_state_stopped``)."""
    return port is None or port.state not in (BR_STATE_DISABLED, BR_STATE_BLOCKING)


def _ipv4_rcv(m: BrMcast, port: NetBridgePort | None, pkt: "Packet", vid: int) -> bool:
    """``br_multicast_ipv4_rcv``: True on error (the frame is dropped)."""
    b = pkt.buf
    off, end = pkt.data, pkt.tail
    cb = _cb(pkt)
    # ip_mc_check_iphdr
    if end - off < 20:
        return _err(m, port, ETH_P_IP)
    ihl = (b[off] & 0x0F) * 4
    if b[off] >> 4 != 4 or ihl < 20 or end - off < ihl:
        return _err(m, port, ETH_P_IP)
    from netstack.packet.checksum import ip_fast_csum
    if ip_fast_csum(b[off:off + ihl]) != 0:
        return _err(m, port, ETH_P_IP)
    tot = (b[off + 2] << 8) | b[off + 3]
    if end - off < tot or tot < ihl:
        return _err(m, port, ETH_P_IP)
    daddr = bytes(b[off + 16:off + 20])
    if b[off + 9] != IPPROTO_IGMP:
        _enomsg4(m, port, cb, daddr, b[off + 9], b[off + ihl:off + tot])
        return False
    msg = b[off + ihl:off + tot]
    if len(msg) < 8 or igmp_checksum(msg) != 0:
        return _err(m, port, ETH_P_IP)
    t = msg[0]
    if t == IGMPV3_HOST_MEMBERSHIP_REPORT:
        if len(msg) < 8:
            return _err(m, port, ETH_P_IP)
    elif t == IGMP_HOST_MEMBERSHIP_QUERY:
        if len(msg) != 8:
            if len(msg) < 12:
                return _err(m, port, ETH_P_IP)
        if not any(msg[4:8]) and daddr != ALL_HOSTS4:
            return _err(m, port, ETH_P_IP)
    elif t not in (IGMP_HOST_MEMBERSHIP_REPORT, IGMPV2_HOST_MEMBERSHIP_REPORT,
                   IGMP_HOST_LEAVE_MESSAGE):
        _enomsg4(m, port, cb, daddr, IPPROTO_IGMP, msg)  # not a message snooping handles
        return False
    cb.igmp = t
    src = bytes(b[pkt.mac_header + 6:pkt.mac_header + 12])
    if not _port_ok(port):
        return False
    group = bytes(msg[4:8])
    if t in (IGMP_HOST_MEMBERSHIP_REPORT, IGMPV2_HOST_MEMBERSHIP_REPORT):
        cb.mrouters_only = True
        return _add4(m, port, group, vid, src)
    if t == IGMPV3_HOST_MEMBERSHIP_REPORT:
        return _v3_report(m, port, ETH_P_IP, msg, 4, vid, src, bytes(b[off + 12:off + 16]))
    if t == IGMP_HOST_MEMBERSHIP_QUERY:
        _ip4_query(m, port, pkt, msg, vid, bytes(b[off + 12:off + 16]))
        return False
    if not (group[0] == 224 and group[1] == 0 and group[2] == 0):
        _leave_group(m, port, ETH_P_IP, group, vid, src, m.ip4_other_query)
    return False


IPPROTO_PIM = 103
ALL_SNOOPERS6 = bytes.fromhex("ff02000000000000000000000000006a")
ICMPV6_MRDISC_ADV = 151
ALL_PIM_ROUTERS4 = bytes([224, 0, 0, 13])
ALL_SNOOPERS4 = bytes([224, 0, 0, 106])
IGMP_MRDISC_ADV = 0x30


def _enomsg4(m: BrMcast, port: NetBridgePort | None, cb: BrInputCb, daddr: bytes,
             proto: int, l4: bytes | bytearray) -> None:
    """The ``-ENOMSG`` branch of ``br_multicast_ipv4_rcv``: traffic to a routable group
    goes to router ports only (``mrouters_only``); a PIM hello to 224.0.0.13
    (``br_multicast_pim``) or a Multicast Router Discovery advertisement (RFC 4286) to
    224.0.0.106 (``br_ip4_multicast_mrd_rcv``) makes its port a router port."""
    if not (daddr[0] == 224 and daddr[1] == 0 and daddr[2] == 0):  # !ipv4_is_local_multicast
        cb.mrouters_only = True
    elif daddr == ALL_PIM_ROUTERS4:
        # pimhdr: version 2, type 0 (hello) in the first byte
        if proto == IPPROTO_PIM and len(l4) >= 4 and l4[0] == 0x20:
            _mark_router(m, port, ETH_P_IP)
    elif daddr == ALL_SNOOPERS4:
        if proto == IPPROTO_IGMP and len(l4) >= 8 and l4[0] == IGMP_MRDISC_ADV:
            _mark_router(m, port, ETH_P_IP)


def _add4(m: BrMcast, port: NetBridgePort | None, group: bytes, vid: int, src: bytes,
          igmpv2: bool = True) -> bool:
    """``br_ip4_multicast_add_group``: link-local groups (224.0.0.x) are not snooped."""
    if group[0] == 224 and group[1] == 0 and group[2] == 0:
        return False
    try:
        _add_group(m, port, ETH_P_IP, group, vid, src, igmpv2)
    except KernelError:
        return True
    return False


def _add6(m: BrMcast, port: NetBridgePort | None, group: bytes, vid: int, src: bytes,
          mldv1: bool = True) -> bool:
    """``br_ip6_multicast_add_group``: ff02::1 is never snooped."""
    if group == ALL_NODES6:
        return False
    try:
        _add_group(m, port, ETH_P_IPV6, group, vid, src, mldv1)
    except KernelError:
        return True
    return False


def _v3_report(m: BrMcast, port: NetBridgePort | None, fam: int, msg: bytes | bytearray,
               alen: int, vid: int, src: bytes, h_addr: bytes) -> bool:
    """``br_ip4_multicast_igmp3_report`` / ``br_ip6_multicast_mld2_report``: records are
    walked one by one (a truncated record is an error after the earlier ones took effect;
    like the kernel, the auxiliary data length is not skipped).  In the IGMPv2/MLDv1 view
    (``mcast_igmp_version 2`` / ``mcast_mld_version 1``) and for the bridge itself an
    empty IS_IN/TO_IN is a leave and any other record a (*,G) join; with IGMPv3/MLDv2
    the port group (INCLUDE {} when new) runs the RFC 3376 §6.4 / RFC 3810 §7.4 state
    table for the record."""
    n = (msg[6] << 8) | msg[7]
    off = 8
    other = m.ip4_other_query if fam == ETH_P_IP else m.ip6_other_query
    v2 = (m.igmp_version == 2) if fam == ETH_P_IP else (m.mld_version == 1)
    for _ in range(n):
        if off + 4 + alen > len(msg):
            return True
        rtype, nsrcs = msg[off], (msg[off + 2] << 8) | msg[off + 3]
        srcs_at = off + 4 + alen
        rec_end = srcs_at + nsrcs * alen
        if rec_end > len(msg):
            return True
        group = bytes(msg[off + 4:srcs_at])
        off = rec_end
        if not 1 <= rtype <= 6:
            continue
        if nsrcs == 0 and rtype in (CHANGE_TO_INCLUDE, MODE_IS_INCLUDE):
            if port is None or v2:
                if fam == ETH_P_IP:
                    if not (group[0] == 224 and group[1] == 0 and group[2] == 0):
                        _leave_group(m, port, fam, group, vid, src, other)
                elif group != ALL_NODES6:
                    _leave_group(m, port, fam, group, vid, src, other)
                continue
        else:
            err = _add4(m, port, group, vid, src, v2) if fam == ETH_P_IP \
                else _add6(m, port, group, vid, src, v2)
            if err:
                return True
        if port is None or v2 or port.state == BR_STATE_DISABLED or not m.br.dev.is_up:
            continue
        mp = m.mdb.get(mdb_key(fam, group, vid))
        if mp is None:
            continue
        pg = next((p for p in mp.ports if _port_group_equal(p, port, src)), None)
        if pg is None or pg.permanent:
            continue
        srcs = [bytes(msg[srcs_at + i * alen:srcs_at + (i + 1) * alen]) for i in range(nsrcs)]
        _record_state(m, port, pg, rtype, srcs, h_addr)
    return False


def _ip4_query(m: BrMcast, port: NetBridgePort | None, pkt: "Packet", msg: bytes | bytearray,
               vid: int, saddr: bytes) -> None:
    """``br_ip4_multicast_query``."""
    group = bytes(msg[4:8])
    if len(msg) == 8:
        max_delay = msg[1] * (SEC // IGMP_TIMER_SCALE)
        if not max_delay:
            max_delay = 10 * SEC
            group = bytes(4)
    else:
        nsrcs = (msg[10] << 8) | msg[11]
        if nsrcs or (m.igmp_version == 3 and any(group) and msg[8] & 0x08):
            return
        code = msg[1]
        mrc = code if code < 128 else ((code & 0x0F) | 0x10) << (((code >> 4) & 7) + 3)
        max_delay = mrc * (SEC // IGMP_TIMER_SCALE) if code else NS_PER_JIFFY
    if not any(group):
        _query_received(m, port, ETH_P_IP, saddr, max_delay)
        return
    _group_query(m, ETH_P_IP, group, vid, max_delay)


def _ipv6_rcv(m: BrMcast, port: NetBridgePort | None, pkt: "Packet", vid: int) -> bool:
    """``br_multicast_ipv6_rcv`` with ``ipv6_mc_check_mld`` (net/ipv6/mcast_snoop.c):
    MLD must follow a Hop-by-Hop header and carry a valid checksum (else the frame is
    dropped); ICMPv6 that is not MLD, or no Hop-by-Hop header, only sets mrouters_only
    (-ENODATA/-ENOMSG); queries must come from a link-local source."""
    b = pkt.buf
    off, end = pkt.data, pkt.tail
    cb = _cb(pkt)
    if end - off < 40 or b[off] >> 4 != 6:
        return _err(m, port, ETH_P_IPV6)
    plen = (b[off + 4] << 8) | b[off + 5]
    if end - off < 40 + plen or plen == 0:  # ipv6_mc_check_ip6hdr
        return _err(m, port, ETH_P_IPV6)
    saddr = bytes(b[off + 8:off + 24])
    daddr = bytes(b[off + 24:off + 40])
    nexthdr = b[off + 6]
    p = off + 40
    stop = off + 40 + plen
    is_mld = False
    if nexthdr == 0:  # IPPROTO_HOPOPTS
        # ipv6_skip_exthdr over the extension headers
        nh = nexthdr
        while nh in (0, 43, 60, 51, 44):
            if stop - p < 8:
                return _err(m, port, ETH_P_IPV6)
            nxt = b[p]
            hl = (b[p + 1] + 2) * 4 if nh == 51 else (8 if nh == 44 else (b[p + 1] + 1) * 8)
            p += hl
            nh = nxt
            if p > stop:
                return _err(m, port, ETH_P_IPV6)
        is_mld = nh == IPPROTO_ICMPV6
    if not is_mld:
        if daddr != ALL_NODES6:
            cb.mrouters_only = True
        return False
    msg = b[p:stop]
    if len(msg) < 8:  # ipv6_mc_check_icmpv6: icmp6hdr
        return _err(m, port, ETH_P_IPV6)
    if icmpv6_checksum(saddr, daddr, msg) != 0:
        return _err(m, port, ETH_P_IPV6)
    t = msg[0]
    if len(msg) < 24 or t not in (ICMPV6_MGM_REPORT, ICMPV6_MGM_REDUCTION, ICMPV6_MLD2_REPORT,
                                  ICMPV6_MGM_QUERY):
        # ipv6_mc_check_mld_msg: -ENODATA, "ICMPv6 but not MLD"; a Multicast Router
        # Discovery advertisement to ff02::6a marks a router port (br_ip6_multicast_mrd_rcv)
        if daddr != ALL_NODES6:
            cb.mrouters_only = True
        if daddr == ALL_SNOOPERS6 and t == ICMPV6_MRDISC_ADV:
            _mark_router(m, port, ETH_P_IPV6)
        return False
    if t == ICMPV6_MGM_QUERY:
        # ipv6_mc_check_mld_query: link-local source, MLDv1 or a whole MLDv2 query,
        # general queries to ff02::1 only
        if not (saddr[0] == 0xFE and saddr[1] & 0xC0 == 0x80):
            return _err(m, port, ETH_P_IPV6)
        if len(msg) != 24 and len(msg) < 28:
            return _err(m, port, ETH_P_IPV6)
        if not any(msg[8:24]) and daddr != ALL_NODES6:
            return _err(m, port, ETH_P_IPV6)
    cb.igmp = t
    src = bytes(b[pkt.mac_header + 6:pkt.mac_header + 12])
    if not _port_ok(port):
        return False
    if t == ICMPV6_MGM_REPORT:
        cb.mrouters_only = True
        return _add6(m, port, bytes(msg[8:24]), vid, src)
    if t == ICMPV6_MLD2_REPORT:
        return _v3_report(m, port, ETH_P_IPV6, msg, 16, vid, src, saddr)
    if t == ICMPV6_MGM_QUERY:
        _ip6_query(m, port, msg, vid, saddr)
        return False
    group = bytes(msg[8:24])
    if group != ALL_NODES6:
        _leave_group(m, port, ETH_P_IPV6, group, vid, src, m.ip6_other_query)
    return False


def _ip6_query(m: BrMcast, port: NetBridgePort | None, msg: bytes | bytearray, vid: int,
               saddr: bytes) -> None:
    """``br_ip6_multicast_query``: MLDv1 max delay in ms; MLDv2 via the MRC encoding."""
    group = bytes(msg[8:24])
    code = (msg[4] << 8) | msg[5]
    if len(msg) == 24:
        if not code:
            return  # MLDv1 with max delay 0: "group" stays NULL, nothing to do
        max_delay = _msecs_to_ns(code)
    else:
        nsrcs = (msg[26] << 8) | msg[27]
        if nsrcs or (m.mld_version == 2 and any(group) and msg[24] & 0x08):
            return
        mrc = code if code < 32768 else ((code & 0x0FFF) | 0x1000) << (((code >> 12) & 7) + 3)
        max_delay = max(_msecs_to_ns(mrc), NS_PER_JIFFY)
    if not any(group):
        _query_received(m, port, ETH_P_IPV6, saddr, max_delay)
        return
    _group_query(m, ETH_P_IPV6, group, vid, max_delay)


def _err(m: BrMcast, port: NetBridgePort | None, fam: int) -> bool:
    """``br_multicast_err_count``: the packet is invalid IGMP/MLD; the bridge drops it
    (igmp_parse_errors / mld_parse_errors with ``mcast_stats_enabled``)."""
    m.parse_errors += 1
    st = _stats_of(m, port)
    if st is not None:
        if fam == ETH_P_IP:
            st.igmp_parse_errors += 1
        else:
            st.mld_parse_errors += 1
    return True


def br_multicast_rcv(br: NetBridge, port: NetBridgePort | None, pkt: "Packet", vid: int) -> bool:
    """``br_multicast_rcv``: snoop a non-broadcast multicast frame.  Returns True when the
    frame is invalid IGMP/MLD and must be dropped (br_handle_frame_finish ``goto drop``).
    ``pkt.data`` is at the L3 header."""
    m: BrMcast | None = br.multicast
    if m is None or not m.enabled:
        return False
    cb = _cb(pkt)
    cb.igmp = 0
    cb.mrouters_only = False
    proto = pkt.protocol
    if proto == ETH_P_IP:
        err = _ipv4_rcv(m, port, pkt, vid)
    elif proto == ETH_P_IPV6:
        err = _ipv6_rcv(m, port, pkt, vid)
    else:
        return False
    if cb.igmp and m.stats_enabled:
        _count(m, port, pkt.buf[pkt.data:pkt.tail], proto, tx=False)
    return err


# --------------------------------------------------------------- forwarding side
def br_mdb_get(br: NetBridge, pkt: "Packet", vid: int) -> MdbEntry | None:
    """``br_mdb_get``: the group entry for the frame's IP destination (never for IGMP/MLD
    themselves) — with IGMPv3/MLDv2 the (S,G) entry of its source first; L2 groups of
    other protocols by destination MAC."""
    m: BrMcast | None = br.multicast
    if m is None or not m.enabled:
        return None
    cb = pkt.cb
    if isinstance(cb, BrInputCb) and cb.igmp:
        return None
    b = pkt.buf
    off = pkt.data
    if pkt.protocol == ETH_P_IP:
        if pkt.tail - off < 20:
            return None
        if m.igmp_version == 3:
            sg = m.mdb.get(mdb_key(ETH_P_IP, bytes(b[off + 16:off + 20]), vid, bytes(b[off + 12:off + 16])))
            if sg is not None:
                return sg
        return m.mdb.get(mdb_key(ETH_P_IP, bytes(b[off + 16:off + 20]), vid))
    if pkt.protocol == ETH_P_IPV6:
        if pkt.tail - off < 40:
            return None
        if m.mld_version == 2:
            sg = m.mdb.get(mdb_key(ETH_P_IPV6, bytes(b[off + 24:off + 40]), vid, bytes(b[off + 8:off + 24])))
            if sg is not None:
                return sg
        return m.mdb.get(mdb_key(ETH_P_IPV6, bytes(b[off + 24:off + 40]), vid))
    return m.mdb.get(mdb_key(0, bytes(b[pkt.mac_header:pkt.mac_header + 6]), vid))


def br_multicast_querier_exists(br: NetBridge, pkt: "Packet", mdst: MdbEntry | None) -> bool:
    """``br_multicast_querier_exists``: a querier was heard (or we are one) and its first
    max-response delay has passed; L2 groups need only their MDB entry."""
    m: BrMcast | None = br.multicast
    if m is None:
        return False
    proto = pkt.protocol
    if proto == ETH_P_IP:
        q = m.ip4_other_query
    elif proto == ETH_P_IPV6:
        q = m.ip6_other_query
    else:
        return mdst is not None and mdst.proto == 0
    # our own querier counts for IPv6 only while the bridge has an IPv6 source address
    # (BROPT_HAS_IPV6_ADDR)
    own = bool(m.multicast_querier) and (proto == ETH_P_IP or m.has_ipv6_addr)
    return not q.delay_timer.active and (own or q.timer.active)


def br_multicast_port_is_router(pm: BrMcastPort | None, proto: int) -> bool:
    if pm is None:
        return False
    if pm.multicast_router == MDB_RTR_TYPE_PERM:
        return True
    if pm.multicast_router == MDB_RTR_TYPE_DISABLED:
        return False
    return pm.rtr4 if proto == ETH_P_IP else pm.rtr6


def br_multicast_is_router(br: NetBridge, pkt: "Packet | None" = None) -> bool:
    """``br_multicast_is_router``: the bridge itself is a router (mcast_router 2, or a
    query was received by the bridge device with mcast_router 1)."""
    m: BrMcast | None = br.multicast
    if m is None:
        return False
    if m.multicast_router == MDB_RTR_TYPE_PERM:
        return True
    if m.multicast_router == MDB_RTR_TYPE_TEMP_QUERY:
        proto = pkt.protocol if pkt is not None else ETH_P_IP
        if proto == ETH_P_IPV6:
            return m.ip6_mc_router_timer.active
        return m.ip4_mc_router_timer.active
    return False


def br_multicast_router_ports(br: NetBridge, proto: int) -> list[NetBridgePort]:
    """The multicast-router ports for ``proto`` (ETH_P_IP / ETH_P_IPV6), port-list order."""
    return [p for p in br.port_list if br_multicast_port_is_router(p.multicast, proto)]


def br_multicast_flood(mdst: MdbEntry | None, pkt: "Packet", br: NetBridge, local_rcv: bool,
                       local_orig: bool) -> None:
    """``br_multicast_flood``: the member ports of ``mdst`` merged with the router ports
    (a port that is both gets one copy), each through ``should_deliver``; a
    mcast_to_unicast member port gets one copy per host with the destination MAC
    rewritten (``maybe_deliver_addr``, never back to the reporting host itself)."""
    from netstack.drivers.bridge import br_forward as fwd
    proto = pkt.protocol
    members: dict[int, list[PortGroup]] = {}
    # allow_mode_include: a (*,G) entry under IGMPv3/MLDv2 forwards to EXCLUDE ports only
    # (INCLUDE ports get their sources through the (S,G) entries)
    allow_mode_include = True
    if mdst is not None and mdst.is_star_g and br.multicast is not None and (
            (mdst.proto == ETH_P_IP and br.multicast.igmp_version == 3)
            or (mdst.proto == ETH_P_IPV6 and br.multicast.mld_version == 2)):
        allow_mode_include = False
    if mdst is not None:
        for pg in mdst.ports:
            members.setdefault(id(pg.port), []).append(pg)
    routers = {id(p) for p in br.port_list if br_multicast_port_is_router(p.multicast, proto)}
    prev: NetBridgePort | None = None
    for port in br.port_list:
        pgs = members.get(id(port), [])
        is_rtr = id(port) in routers
        if not pgs and not is_rtr:
            continue
        if is_rtr:
            # lport == rport: the plain copy, and the first member entry is consumed
            pgs = pgs[1:]
            if fwd.should_deliver(port, pkt):
                if prev is not None:
                    fwd.deliver_clone(prev, pkt, local_orig)
                prev = port
                br_multicast_count_frame(br, port, pkt, True)  # maybe_deliver
        for pg in pgs:
            if port.flags & BR_MULTICAST_TO_UNICAST:
                _deliver_addr(fwd, port, pkt, pg.eth_addr, local_orig)
                continue
            if (not allow_mode_include and pg.filter_mode == MCAST_INCLUDE) \
                    or pg.flags & MDB_PG_FLAGS_BLOCKED:
                continue
            if fwd.should_deliver(port, pkt):
                if prev is not None:
                    fwd.deliver_clone(prev, pkt, local_orig)
                prev = port
                br_multicast_count_frame(br, port, pkt, True)
    if prev is None:
        if not local_rcv:
            kfree_skb_reason(pkt, "NOT_SPECIFIED", br.dev.net)
        return
    if local_rcv:
        fwd.deliver_clone(prev, pkt, local_orig)
    else:
        getattr(fwd, "__br_forward")(prev, pkt, local_orig)


def _deliver_addr(fwd, port: NetBridgePort, pkt: "Packet", addr: bytes,  # type: ignore[no-untyped-def]
                  local_orig: bool) -> None:
    """``maybe_deliver_addr``: a unicast copy for one reporting host."""
    if not fwd.should_deliver(port, pkt):
        return
    mac = pkt.mac_header
    if pkt.dev is port.dev and bytes(pkt.buf[mac + 6:mac + 12]) == addr:
        return  # no soliloquies (would break IPv6 DAD)
    nskb = pkt.clone()
    if addr != b"\xff" * 6:
        nskb.buf[nskb.mac_header:nskb.mac_header + 6] = addr
    getattr(fwd, "__br_forward")(port, nskb, local_orig)


# ------------------------------------------------------------------- own querier
ALL_HOSTS4_MAC = bytes.fromhex("01005e000001")
ALL_NODES6_MAC = bytes.fromhex("333300000001")


def _own(m: BrMcast, port: NetBridgePort | None, fam: int) -> OwnQuery:
    """The own-query state of ``port`` (or of the bridge) for ``fam``."""
    pm: BrMcastPort | None = port.multicast if port is not None else None
    if pm is not None:
        return pm.ip4_own_query if fam == ETH_P_IP else pm.ip6_own_query
    return m.ip4_own_query if fam == ETH_P_IP else m.ip6_own_query


def _query_srcs(m: BrMcast, pg: PortGroup | None, with_srcs: bool, over_lmqt: bool,
                need_rexmit: list[bool] | None, consume: bool = True) -> list[bytes] | None:
    """The sources a group-and-source-specific query carries (``br_ip4/6_multicast_alloc_query``
    with ``with_srcs``): those whose timer is above (``over_lmqt``, sent with the S flag)
    or not above LMQT and still have retransmissions left, each consuming one; None when
    there is none (no query)."""
    if pg is None or not with_srcs:
        return []
    lmqt = m.clock.now + m.last_member_interval * m.last_member_count
    out = []
    for ent in pg.src_list:
        if over_lmqt == (ent.expires > lmqt) and ent.src_query_rexmit_cnt > 0:
            out.append(ent.addr)
            if not consume:
                continue
            ent.src_query_rexmit_cnt -= 1
            if need_rexmit is not None and ent.src_query_rexmit_cnt:
                need_rexmit.append(True)
    return out or None


def _mtu_ok(m: BrMcast, port: NetBridgePort | None, size: int) -> bool:
    return not ((port is not None and size > port.dev.mtu) or size > m.br.dev.mtu)


def _alloc_query4(m: BrMcast, group: bytes, port: NetBridgePort | None = None,
                  pg: PortGroup | None = None, ip_dst: bytes | None = None,
                  with_srcs: bool = False, over_lmqt: bool = False, sflag: int = 0,
                  need_rexmit: list[bool] | None = None) -> bytes | None:
    """``br_ip4_multicast_alloc_query``: to ``ip_dst`` (224.0.0.1 unless a
    group(-and-source)-specific query of a port group, which goes to the group), from
    0.0.0.0 (or the bridge's address with ``mcast_query_use_ifaddr``), TTL 1, TOS 0xc0,
    DF, IP ID 0, router alert; max response = last_member_interval for a group,
    query_response_interval otherwise, in tenths of a second.  With
    ``mcast_igmp_version 3`` the IGMPv3 form: S flag, QRV 2, QQIC = query_interval in
    seconds, the sources of ``_query_srcs``."""
    from netstack.packet.checksum import ip_fast_csum
    br = m.br
    srcs: list[bytes] = []
    if m.igmp_version == 3:
        got = _query_srcs(m, pg, with_srcs, over_lmqt, None, consume=False)
        if got is None:
            return None
        size = 12 + 4 * len(got)
    else:
        size = 8
    if not _mtu_ok(m, port, 14 + 24 + size):
        return None
    if m.igmp_version == 3:
        srcs = _query_srcs(m, pg, with_srcs, over_lmqt, need_rexmit) or []
    dst = ip_dst if ip_dst is not None else ALL_HOSTS4
    saddr = bytes(4)
    if m.multicast_query_use_ifaddr:
        from netstack.ipv4.devinet import inet_select_addr
        saddr = bytes(inet_select_addr(br.dev.net, br.dev, 0, 253))  # RT_SCOPE_LINK
    interval = m.last_member_interval if any(group) else m.query_response_interval
    code = _j(interval) // (KERNEL_HZ // IGMP_TIMER_SCALE)
    ih = bytearray(bytes((IGMP_HOST_MEMBERSHIP_QUERY, code & 0xFF, 0, 0)) + group)
    if m.igmp_version == 3:
        ih += bytes((2 | (8 if sflag else 0), (_j(m.query_interval) // KERNEL_HZ) & 0xFF))
        ih += len(srcs).to_bytes(2, "big") + b"".join(srcs)
    c = igmp_checksum(ih)
    ih[2], ih[3] = c >> 8, c & 0xFF
    iph = bytearray(bytes((0x46, 0xC0)) + (24 + size).to_bytes(2, "big") + bytes((0, 0, 0x40, 0, 1,
                    IPPROTO_IGMP, 0, 0)) + saddr + dst + bytes((0x94, 4, 0, 0)))
    c = ip_fast_csum(iph)
    iph[10], iph[11] = c >> 8, c & 0xFF
    dmac = bytes((1, 0, 0x5E, dst[1] & 0x7F, dst[2], dst[3]))
    return dmac + bytes(br.dev.address) + ETH_P_IP.to_bytes(2, "big") + bytes(iph) + bytes(ih)


def _alloc_query6(m: BrMcast, group: bytes, port: NetBridgePort | None = None,
                  pg: PortGroup | None = None, ip_dst: bytes | None = None,
                  with_srcs: bool = False, over_lmqt: bool = False, sflag: int = 0,
                  need_rexmit: list[bool] | None = None) -> bytes | None:
    """``br_ip6_multicast_alloc_query``: to ``ip_dst`` (ff02::1 unless group-specific of a
    port group), from the bridge's preferred source for it (none → no query,
    BROPT_HAS_IPV6_ADDR off), hop limit 1, a Hop-by-Hop header with router alert and two
    Pad1, max delay in ms (not MRC-encoded, as the kernel); ``mcast_mld_version 2``
    gives the MLDv2 form (S flag, QRV 2, QQIC, sources)."""
    from netstack.ipv6.addrconf import ipv6_dev_get_saddr
    br = m.br
    net = br.dev.net
    srcs: list[bytes] = []
    if m.mld_version == 2:
        got = _query_srcs(m, pg, with_srcs, over_lmqt, None, consume=False)
        if got is None:
            return None
        size = 28 + 16 * len(got)
    else:
        size = 24
    if not _mtu_ok(m, port, 14 + 48 + size):
        return None
    dst = ip_dst if ip_dst is not None else ALL_NODES6
    saddr = None
    if br.dev.ip6_ptr is not None and getattr(net, "ipv6", None) is not None:
        saddr = ipv6_dev_get_saddr(net, br.dev, dst)
    if saddr is None:
        m.has_ipv6_addr = False
        return None
    m.has_ipv6_addr = True
    if m.mld_version == 2:
        srcs = _query_srcs(m, pg, with_srcs, over_lmqt, need_rexmit) or []
    interval = m.query_response_interval if not any(group) else m.last_member_interval
    ms = _j(interval) * 1000 // KERNEL_HZ
    mld = bytearray(bytes((ICMPV6_MGM_QUERY, 0, 0, 0)) + (ms & 0xFFFF).to_bytes(2, "big")
                    + bytes(2) + group)
    if m.mld_version == 2:
        mld += bytes((2 | (8 if sflag else 0), (_j(m.query_interval) // KERNEL_HZ) & 0xFF))
        mld += len(srcs).to_bytes(2, "big") + b"".join(srcs)
    c = icmpv6_checksum(saddr, dst, mld)
    mld[2], mld[3] = c >> 8, c & 0xFF
    hbh = bytes((IPPROTO_ICMPV6, 0, 5, 2, 0, 0, 0, 0))
    ip6 = (bytes((0x60, 0, 0, 0)) + (len(hbh) + len(mld)).to_bytes(2, "big") + bytes((0, 1))
           + bytes(saddr) + dst)
    return b"\x33\x33" + dst[12:16] + bytes(br.dev.address) + ETH_P_IPV6.to_bytes(2, "big") + ip6 + hbh + bytes(mld)


def _send_query(m: BrMcast, port: NetBridgePort | None, fam: int, group: bytes,
                pg: PortGroup | None = None, to_group: bool = False, with_srcs: bool = False,
                sflag: int = 0, need_rexmit: list[bool] | None = None) -> None:
    """``__br_multicast_send_query``: out of ``port`` through NF_BR_LOCAL_OUT, or (no port)
    received by the bridge device itself, which makes us the elected querier.  A
    source-specific query with the S flag is followed by the one without it for the
    sources under LMQT (``again_under_lmqt``)."""
    over_lmqt = bool(sflag)
    while True:
        alloc = _alloc_query4 if fam == ETH_P_IP else _alloc_query6
        frame = alloc(m, group, port, pg, group if to_group else None, with_srcs, over_lmqt,
                      sflag, need_rexmit)
        if frame is None:
            return
        _xmit_query(m, port, fam, group, frame)
        if port is not None and over_lmqt and with_srcs and sflag:
            over_lmqt = False
            continue
        return


def _xmit_query(m: BrMcast, port: NetBridgePort | None, fam: int, group: bytes,
                frame: bytes) -> None:
    """Send or locally receive one query frame built by ``_alloc_query4/6``."""
    br = m.br
    net = br.dev.net
    pkt = net.world.new_packet(frame)
    pkt.mac_header = pkt.data
    pkt.data += 14
    pkt.network_header = pkt.data
    pkt.transport_header = pkt.data + (24 if fam == ETH_P_IP else 48)
    pkt.protocol = fam
    if pkt.trace is not None:
        pkt.trace.event(pkt, "br_multicast_send_query", info=f"group={group.hex()}")
    if port is not None:
        from netstack.drivers.bridge.br_forward import br_dev_queue_push_xmit
        from netstack.netfilter.core import NF_BR_LOCAL_OUT, NFPROTO_BRIDGE, nf_hook
        _count(m, port, frame[14:], fam, tx=True)
        pkt.dev = port.dev
        if nf_hook(net, NFPROTO_BRIDGE, NF_BR_LOCAL_OUT, pkt, None, port.dev) != 1:
            return
        br_dev_queue_push_xmit(pkt)
        return
    # br_multicast_select_own_querier
    if fam == ETH_P_IP:
        m.ip4_querier, m.ip4_querier_port = bytes(frame[26:30]), None
    else:
        m.ip6_querier, m.ip6_querier_port = bytes(frame[22:38]), None
    from netstack.core.dev import netif_rx
    from netstack.packet.skb import PACKET_MULTICAST
    _count(m, None, frame[14:], fam, tx=False)
    pkt.dev = br.dev
    pkt.pkt_type = PACKET_MULTICAST
    netif_rx(pkt)


def _send_general_query(m: BrMcast, port: NetBridgePort | None, fam: int, own: OwnQuery) -> None:
    """``br_multicast_send_query``: only while we are querier, snooping is on and no other
    querier is heard; then the next one after the startup or the regular interval."""
    other = m.ip4_other_query if fam == ETH_P_IP else m.ip6_other_query
    if not m.enabled or not m.multicast_querier or other.timer.active:
        return
    _send_query(m, port, fam, bytes(4 if fam == ETH_P_IP else 16))
    delay = m.startup_query_interval if own.startup_sent < m.startup_query_count else m.query_interval
    own.timer.mod(m.clock.now + delay)


def _port_query_expired(port: NetBridgePort, fam: int) -> None:
    """``br_multicast_port_query_expired``."""
    m: BrMcast | None = port.br.multicast
    pm: BrMcastPort | None = port.multicast
    if m is None or pm is None or port.state in (BR_STATE_DISABLED, BR_STATE_BLOCKING):
        return
    own = _own(m, port, fam)
    if own.startup_sent < m.startup_query_count:
        own.startup_sent += 1
    _send_general_query(m, port, fam, own)


def _br_query_expired(br: NetBridge, fam: int) -> None:
    """``br_multicast_query_expired`` (the bridge's own query, received locally)."""
    m: BrMcast | None = br.multicast
    if m is None:
        return
    own = _own(m, None, fam)
    if own.startup_sent < m.startup_query_count:
        own.startup_sent += 1
    _send_general_query(m, None, fam, own)


def _start_querier(m: BrMcast) -> None:
    """``br_multicast_start_querier`` (both families): the bridge's and every enabled
    port's own queries restart their startup sequence now."""
    now = m.clock.now
    for fam in (ETH_P_IP, ETH_P_IPV6):
        own = _own(m, None, fam)
        own.startup_sent = 0
        if m.enabled:
            own.timer.mod(now)
        for p in m.br.port_list:
            if p.multicast is None or p.state == BR_STATE_DISABLED:
                continue
            po = _own(m, p, fam)
            po.startup_sent = 0
            po.timer.mod(now)


# ------------------------------------------------------------- statistics
BR_MCAST_DIR_RX = 0
BR_MCAST_DIR_TX = 1
#: ``struct br_mcast_stats`` fields with an RX/TX pair, in the uapi order
MCAST_STATS_PAIRS = ("igmp_v1queries", "igmp_v2queries", "igmp_v3queries", "igmp_leaves",
                     "igmp_v1reports", "igmp_v2reports", "igmp_v3reports",
                     "mld_v1queries", "mld_v2queries", "mld_leaves", "mld_v1reports",
                     "mld_v2reports")


class McastStats:
    """``struct bridge_mcast_stats`` (one per bridge and per port): ``pairs[name]`` is
    [rx, tx]; the parse error counters have no direction."""

    def __init__(self) -> None:
        self.pairs: dict[str, list[int]] = {k: [0, 0] for k in MCAST_STATS_PAIRS}
        self.igmp_parse_errors = 0
        self.mld_parse_errors = 0


def _stats_of(m: BrMcast, port: NetBridgePort | None) -> McastStats | None:
    if not m.stats_enabled:
        return None
    pm: BrMcastPort | None = port.multicast if port is not None else None
    if port is not None:
        return pm.stats if pm is not None else None
    return m.stats


def _count(m: BrMcast, port: NetBridgePort | None, l3: bytes | bytearray, fam: int,
           tx: bool) -> None:
    """``br_multicast_count`` → ``br_mcast_stats_add`` for the IGMP/MLD message in the IP
    packet ``l3``, when ``mcast_stats_enabled``: a query is v3/v2 by length (an IGMP query
    of exactly 8 bytes is v1 when its code is 0, else v2)."""
    st = _stats_of(m, port)
    if st is None:
        return
    d = BR_MCAST_DIR_TX if tx else BR_MCAST_DIR_RX
    name = None
    if fam == ETH_P_IP:
        if len(l3) < 20:
            return
        ihl = (l3[0] & 0x0F) * 4
        tlen = ((l3[2] << 8) | l3[3]) - ihl
        if len(l3) < ihl + 1:
            return
        t = l3[ihl]
        if t == IGMP_HOST_MEMBERSHIP_REPORT:
            name = "igmp_v1reports"
        elif t == IGMPV2_HOST_MEMBERSHIP_REPORT:
            name = "igmp_v2reports"
        elif t == IGMPV3_HOST_MEMBERSHIP_REPORT:
            name = "igmp_v3reports"
        elif t == IGMP_HOST_MEMBERSHIP_QUERY:
            if tlen != 8:
                name = "igmp_v3queries"
            elif len(l3) >= ihl + 2:
                name = "igmp_v2queries" if l3[ihl + 1] else "igmp_v1queries"
        elif t == IGMP_HOST_LEAVE_MESSAGE:
            name = "igmp_leaves"
    else:
        mld = _mld_of(l3)
        if mld is None:
            return
        t, tlen = mld
        name = {ICMPV6_MGM_REPORT: "mld_v1reports", ICMPV6_MLD2_REPORT: "mld_v2reports",
                ICMPV6_MGM_REDUCTION: "mld_leaves"}.get(t)
        if t == ICMPV6_MGM_QUERY:
            name = "mld_v1queries" if tlen == 24 else "mld_v2queries"
    if name is not None:
        st.pairs[name][d] += 1


def _mld_of(l3: bytes | bytearray) -> tuple[int, int] | None:
    """(ICMPv6 type, length) of the MLD message after the Hop-by-Hop header."""
    if len(l3) < 48 or l3[6] != 0:
        return None
    plen = (l3[4] << 8) | l3[5]
    hl = (l3[41] + 1) * 8
    if l3[40] != IPPROTO_ICMPV6 or len(l3) < 40 + hl + 1:
        return None
    return l3[40 + hl], plen - hl


def br_multicast_get_stats(br: NetBridge, port: NetBridgePort | None = None) -> McastStats | None:
    """``br_multicast_get_stats``: the counters of the bridge (``port`` None) or a port,
    None when ``mcast_stats_enabled`` is off (IFLA_STATS_LINK_XSTATS carries nothing)."""
    m: BrMcast | None = br.multicast
    if m is None:
        return None
    return _stats_of(m, port)


def br_multicast_count_frame(br: NetBridge, port: NetBridgePort | None, pkt: "Packet",
                             tx: bool) -> None:
    """``br_multicast_count(br, p, skb, br_multicast_igmp_type(skb), dir)`` for a frame the
    snooping marked as IGMP/MLD (``BR_INPUT_SKB_CB(skb)->igmp``): what ``maybe_deliver``
    (TX per egress port) and ``br_pass_frame_up`` (TX on the bridge) count."""
    m: BrMcast | None = br.multicast
    cb = pkt.cb
    if m is None or not m.stats_enabled or not isinstance(cb, BrInputCb) or not cb.igmp:
        return
    _count(m, port, pkt.buf[pkt.network_header:pkt.tail], pkt.protocol, tx)


def br_multicast_toggle_vlan_snooping(br: NetBridge, on: bool) -> None:
    """``br_multicast_toggle_vlan_snooping``: only with vlan_filtering on ("Cannot enable
    multicast vlan snooping with vlan filtering disabled", EINVAL); turning it off is
    always accepted.  The per-VLAN multicast contexts it then creates (one querier, timer
    set and router list per VLAN and per port-VLAN) are not modelled: NotSupported."""
    m: BrMcast = br.multicast
    if bool(m.vlan_snooping) == on:
        return
    if on and not br.vlan_enabled:
        raise KernelError(errno.EINVAL, "bridge: Cannot enable multicast vlan snooping with vlan filtering disabled")
    if on:
        raise NotSupported("per-VLAN multicast contexts (mcast_vlan_snooping 1)")
    m.vlan_snooping = 0


# ------------------------------------------------------------------ configuration
_BR_OPTS: dict[str, str] = {
    # iproute2 keyword -> attribute (values in the units `ip link` takes)
    "mcast_snooping": "enabled",
    "mcast_router": "multicast_router",
    "mcast_query_use_ifaddr": "multicast_query_use_ifaddr",
    "mcast_querier": "multicast_querier",
    "mcast_hash_elasticity": "hash_elasticity",
    "mcast_hash_max": "hash_max",
    "mcast_last_member_count": "last_member_count",
    "mcast_startup_query_count": "startup_query_count",
    "mcast_last_member_interval": "last_member_interval",
    "mcast_membership_interval": "membership_interval",
    "mcast_querier_interval": "querier_interval",
    "mcast_query_interval": "query_interval",
    "mcast_query_response_interval": "query_response_interval",
    "mcast_startup_query_interval": "startup_query_interval",
    "mcast_stats_enabled": "stats_enabled",
    "mcast_igmp_version": "igmp_version",
    "mcast_mld_version": "mld_version",
    "mcast_vlan_snooping": "vlan_snooping",
}
_INTERVALS = {"last_member_interval", "membership_interval", "querier_interval",
              "query_interval", "query_response_interval", "startup_query_interval"}


def br_multicast_set_option(br: NetBridge, name: str, value: int) -> None:
    """Apply ``ip link … type bridge mcast_* VALUE`` (br_changelink).  Intervals are in
    clock_t (centiseconds) as iproute2 passes them.  Errors as the kernel:
    ``mcast_router`` beyond 2 and versions other than 2/3 (IGMP) or 1/2 (MLD) are EINVAL;
    a hash_max below the current group count is EINVAL."""
    m: BrMcast | None = br.multicast
    if m is None:
        raise KernelError(errno.EOPNOTSUPP)
    attr = _BR_OPTS.get(name)
    if attr is None:
        raise NotSupported(f"bridge option {name}")
    v = int(value)
    if attr == "enabled":
        if m.enabled and not v:
            # br_multicast_toggle(0): every port is disabled for snooping — learned
            # groups and router roles go, permanent entries and host groups stay
            for p in br.port_list:
                br_multicast_disable_port(p)
        was = m.enabled
        m.enabled = bool(v)
        if m.enabled and not was and br.dev.is_up:
            # back on: br_multicast_open and every port's own queries restart
            br_multicast_open(br)
            for p in br.port_list:
                br_multicast_enable_port(p)
        return
    if attr == "multicast_router":
        if v not in (MDB_RTR_TYPE_DISABLED, MDB_RTR_TYPE_TEMP_QUERY, MDB_RTR_TYPE_PERM):
            raise KernelError(errno.EINVAL)
        m.multicast_router = v
        if v != MDB_RTR_TYPE_TEMP_QUERY:
            m.ip4_mc_router_timer.cancel()
            m.ip6_mc_router_timer.cancel()
        return
    if attr == "multicast_querier":
        # br_multicast_set_querier: turning it on waits one response interval before
        # trusting the table and starts our startup queries (IGMP; see the module doc)
        v = 1 if v else 0
        if m.multicast_querier == v:
            return
        m.multicast_querier = v
        if not v:
            return
        now = m.clock.now
        for q in (m.ip4_other_query, m.ip6_other_query):
            if not q.timer.active:
                q.delay_timer.mod(now + m.query_response_interval)
        _start_querier(m)
        return
    if attr == "igmp_version":
        # br_multicast_set_igmp_version: 2 or 3, the state is kept as it is
        if v not in (2, 3):
            raise KernelError(errno.EINVAL)
        m.igmp_version = v
        return
    if attr == "mld_version":
        if v not in (1, 2):
            raise KernelError(errno.EINVAL)
        m.mld_version = v
        return
    if attr == "vlan_snooping":
        br_multicast_toggle_vlan_snooping(br, bool(v))
        return
    if attr == "stats_enabled":
        # br_multicast_toggle_stats … BROPT_MULTICAST_STATS_ENABLED; counters are kept
        m.stats_enabled = 1 if v else 0
        return
    if attr == "hash_max":
        if v < len(m.mdb):
            raise KernelError(errno.EINVAL)
        m.hash_max = v
        return
    if attr in _INTERVALS:
        setattr(m, attr, _from_clock_t(v))
        return
    setattr(m, attr, v)


_PORT_OPTS = {"mcast_router": "multicast_router"}


def br_multicast_port_set_option(port: NetBridgePort, name: str, value: int) -> None:
    """``bridge link set dev X mcast_router N`` / ``ip link set X type bridge_slave
    mcast_router N`` (br_multicast_set_port_router): 0 disabled, 1 learn from queries,
    2 permanent, 3 temporary (expires like a learned one)."""
    pm: BrMcastPort | None = port.multicast
    if pm is None:
        raise KernelError(errno.EOPNOTSUPP)
    if name != "mcast_router":
        raise NotSupported(f"bridge port option {name}")
    v = int(value)
    if v not in (0, 1, 2, 3):
        raise KernelError(errno.EINVAL)
    m: BrMcast = port.br.multicast
    if pm.multicast_router == v and v != MDB_RTR_TYPE_TEMP:
        return
    pm.multicast_router = v
    for fam in (ETH_P_IP, ETH_P_IPV6):
        if v == MDB_RTR_TYPE_DISABLED:
            _set_rtr(pm, fam, False)
        elif v == MDB_RTR_TYPE_PERM:
            _set_rtr(pm, fam, True)
            (pm.ip4_mc_router_timer if fam == ETH_P_IP else pm.ip6_mc_router_timer).cancel()
        elif v == MDB_RTR_TYPE_TEMP:
            _set_rtr(pm, fam, True)
            t = pm.ip4_mc_router_timer if fam == ETH_P_IP else pm.ip6_mc_router_timer
            t.mod(m.clock.now + m.querier_interval)
        else:  # TEMP_QUERY: drop a permanent/temporary role, keep a running learned one
            t = pm.ip4_mc_router_timer if fam == ETH_P_IP else pm.ip6_mc_router_timer
            if not t.active:
                _set_rtr(pm, fam, False)


def br_multicast_info(br: NetBridge) -> list[tuple[str, int]]:
    """The multicast values of ``ip -d link show`` for a bridge: (iproute2 keyword,
    value) with intervals in clock_t, as IFLA_BR_MCAST_* carry them; the CLI
    (netstack/cli/iplink_bridge.py) owns the order and the JSON key names."""
    m: BrMcast = br.multicast
    return [
        ("mcast_snooping", int(m.enabled)),
        ("mcast_vlan_snooping", m.vlan_snooping),
        ("mcast_router", m.multicast_router),
        ("mcast_query_use_ifaddr", m.multicast_query_use_ifaddr),
        ("mcast_querier", m.multicast_querier),
        ("mcast_hash_elasticity", m.hash_elasticity),
        ("mcast_hash_max", m.hash_max),
        ("mcast_last_member_count", m.last_member_count),
        ("mcast_startup_query_count", m.startup_query_count),
        ("mcast_last_member_interval", _clock_t(m.last_member_interval)),
        ("mcast_membership_interval", _clock_t(m.membership_interval)),
        ("mcast_querier_interval", _clock_t(m.querier_interval)),
        ("mcast_query_interval", _clock_t(m.query_interval)),
        ("mcast_query_response_interval", _clock_t(m.query_response_interval)),
        ("mcast_startup_query_interval", _clock_t(m.startup_query_interval)),
        ("mcast_stats_enabled", m.stats_enabled),
        ("mcast_igmp_version", m.igmp_version),
        ("mcast_mld_version", m.mld_version),
    ]


def br_multicast_port_router(port: NetBridgePort) -> int:
    """IFLA_BRPORT_MULTICAST_ROUTER of the port (``mcast_router`` in ``ip -d link``)."""
    pm: BrMcastPort | None = port.multicast
    return pm.multicast_router if pm is not None else MDB_RTR_TYPE_TEMP_QUERY


def br_multicast_port_info(port: NetBridgePort) -> list[tuple[str, int]]:
    """``ip -d link`` bridge_slave multicast values: (iproute2 keyword, value)."""
    pm: BrMcastPort | None = port.multicast
    return [("mcast_router", pm.multicast_router if pm is not None else MDB_RTR_TYPE_TEMP_QUERY)]
