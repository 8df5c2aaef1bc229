"""Bridge IGMP/MLD snooping and the MDB (net/bridge/br_multicast.c, br_mdb.c).

Why: with snooping on (the default) and a querier present on the link, a bridge
forwards a multicast stream only to the ports that reported membership and to the
multicast-router ports, instead of flooding it.  This module reproduces Linux 6.18's
behaviour for the protocol versions the bridge uses by default — ``mcast_igmp_version 2``
and ``mcast_mld_version 1``, where IGMPv3/MLDv2 reports are read as (*,G) joins and
leaves exactly as ``br_ip4_multicast_igmp3_report``/``br_ip6_multicast_mld2_report``
do with ``igmpv2``/``mldv1`` true:

* ``br_multicast_rcv``: ``ip_mc_check_igmp``/``ipv6_mc_check_mld`` validation (an
  invalid IGMP/MLD packet is an error → the bridge drops the frame), the
  ``mrouters_only``/``igmp`` skb-cb bits, reports → port groups with the membership
  timer, leaves → last-member timer (or immediate removal with ``fast_leave``),
  general queries → the "other querier" timers and temporary multicast-router ports.
* ``br_mdb_get`` / ``br_multicast_querier_exists`` / ``br_multicast_is_router`` /
  ``br_multicast_flood``: the decisions br_handle_frame_finish takes with them, and the
  delivery to member ports merged with router ports, with ``mcast_to_unicast`` ports
  receiving one unicast copy per reporting host (``maybe_deliver_addr``).
* Timers on the virtual clock: port groups expire after ``membership_interval``,
  router ports after ``querier_interval``, the other-querier after ``querier_interval``
  and its ``delay_timer`` after the query's max response time (snooping starts to
  filter only then, ``__br_multicast_querier_exists``).
* The bridge's own IGMPv2/MLDv1 querier (``mcast_querier 1``,
  ``br_multicast_send_query``): startup queries on every port and up the bridge, then
  every ``query_interval``, quiet while another querier is heard; group-specific queries
  on leaves.  MLD queries need an IPv6 source address on the bridge.

The MDB's netlink side (``bridge mdb``) is br_mdb.py.  Not modelled (NotSupported when
configured): IGMPv3/MLDv2 source filtering (``mcast_igmp_version 3`` /
``mcast_mld_version 2``), per-VLAN multicast contexts (``mcast_vlan_snooping``),
multicast statistics (``mcast_stats_enabled``).  PIM hellos and Multicast Router
Discovery advertisements (RFC 4286, IPv4 and IPv6) mark router ports.  The bridge
device's own IGMP/MLD host reports are not generated (netstack's
IP layer has no IGMP/MLD sender).
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
    CHANGE_TO_INCLUDE,
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
class PortGroup:
    """``struct net_bridge_port_group``: one port's membership in a group; with
    ``mcast_to_unicast`` on the port, one per reporting host (``eth_addr``)."""

    port: NetBridgePort
    eth_addr: bytes
    flags: int = 0
    filter_mode: int = MCAST_EXCLUDE
    rt_protocol: int = 0
    timer: Any = None

    @property
    def permanent(self) -> bool:
        return bool(self.flags & MDB_PG_FLAGS_PERMANENT)


@dataclass(eq=False)
class MdbEntry:
    """``struct net_bridge_mdb_entry``: a (*,G) group on a VLAN; ``host_joined`` is the
    bridge device's own membership (what br_handle_frame_finish reads)."""

    group: bytes
    vid: int
    proto: int
    ports: list[PortGroup] = field(default_factory=list)
    host_joined: bool = False
    timer: Any = None


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
        self.mdb: dict[tuple[int, bytes, int], MdbEntry] = {}
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
def mdb_key(proto: int, group: bytes, vid: int) -> tuple[int, bytes, int]:
    return (proto, bytes(group), vid)


def br_multicast_del_pg(m: BrMcast, mp: MdbEntry, pg: PortGroup) -> None:
    """``br_multicast_del_pg``: unlink, stop the timer, drop an empty group."""
    if pg in mp.ports:
        mp.ports.remove(pg)
    if pg.timer is not None:
        pg.timer.cancel()
    if not mp.ports and not mp.host_joined:
        _del_mdb(m, mp)


def _del_mdb(m: BrMcast, mp: MdbEntry) -> None:
    if mp.timer is not None:
        mp.timer.cancel()
    m.mdb.pop(mdb_key(mp.proto, mp.group, mp.vid), None)


def br_multicast_port_group_expired(m: BrMcast, mp: MdbEntry, pg: PortGroup) -> None:
    """``br_multicast_port_group_expired``."""
    if pg.permanent:
        return
    br_multicast_del_pg(m, mp, pg)


def br_multicast_group_expired(m: BrMcast, mp: MdbEntry) -> None:
    """``br_multicast_group_expired``: the bridge's own membership lapsed."""
    mp.host_joined = False
    if not mp.ports:
        _del_mdb(m, mp)


def br_multicast_new_group(m: BrMcast, proto: int, group: bytes, vid: int) -> MdbEntry:
    """``br_multicast_new_group``; a full table is ``-E2BIG`` and turns snooping off, as
    the kernel does ("Multicast hash table maximum of %d reached, disabling snooping")."""
    k = mdb_key(proto, group, vid)
    mp = m.mdb.get(k)
    if mp is not None:
        return mp
    if len(m.mdb) >= m.hash_max:
        m.enabled = False
        raise KernelError(errno.E2BIG, "Multicast hash table maximum reached, disabling snooping")
    mp = MdbEntry(bytes(group), vid, proto)
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


def _add_group(m: BrMcast, port: NetBridgePort | None, proto: int, group: bytes, vid: int,
               src: bytes) -> None:
    """``br_multicast_add_group`` → ``br_multicast_new_port_group`` (EXCLUDE mode, the
    IGMPv2/MLDv1 view) and the membership timer."""
    if not m.enabled:
        return
    mp = br_multicast_new_group(m, proto, group, vid)
    now = m.clock.now
    if port is None:
        mp.host_joined = True
        mp.timer.mod(now + m.membership_interval)
        return
    pg = next((p for p in mp.ports if _port_group_equal(p, port, src)), None)
    if pg is None:
        pg = PortGroup(port, bytes(src), filter_mode=MCAST_EXCLUDE, rt_protocol=RTPROT_KERNEL)
        pg.timer = m.clock.timer(br_multicast_port_group_expired, m, mp, pg)
        # the kernel keeps mp->ports sorted by port (pointer); netstack by port number
        idx = next((i for i, q in enumerate(mp.ports) if q.port.port_no > port.port_no),
                   len(mp.ports))
        mp.ports.insert(idx, pg)
    if not pg.permanent:
        pg.timer.mod(now + m.membership_interval)


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
    for pg in mp.ports:
        if pg.permanent:
            continue
        if _timer_lower(pg.timer, when):
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
        return _err(m)
    ihl = (b[off] & 0x0F) * 4
    if b[off] >> 4 != 4 or ihl < 20 or end - off < ihl:
        return _err(m)
    from netstack.packet.checksum import ip_fast_csum
    if ip_fast_csum(b[off:off + ihl]) != 0:
        return _err(m)
    tot = (b[off + 2] << 8) | b[off + 3]
    if end - off < tot or tot < ihl:
        return _err(m)
    daddr = bytes(b[off + 16:off + 20])
    if b[off + 9] != IPPROTO_IGMP:
        _enomsg4(m, port, cb, daddr, b[off + 9], b[off + ihl:off + tot])
        return False
    msg = b[off + ihl:off + tot]
    if len(msg) < 8 or igmp_checksum(msg) != 0:
        return _err(m)
    t = msg[0]
    if t == IGMPV3_HOST_MEMBERSHIP_REPORT:
        if len(msg) < 8:
            return _err(m)
    elif t == IGMP_HOST_MEMBERSHIP_QUERY:
        if len(msg) != 8:
            if len(msg) < 12:
                return _err(m)
        if not any(msg[4:8]) and daddr != ALL_HOSTS4:
            return _err(m)
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
        return _v3_report(m, port, ETH_P_IP, msg, 4, vid, src)
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


def _add4(m: BrMcast, port: NetBridgePort | None, group: bytes, vid: int, src: bytes) -> bool:
    """``br_ip4_multicast_add_group``: link-local groups (224.0.0.x) are not snooped."""
    if group[0] == 224 and group[1] == 0 and group[2] == 0:
        return False
    try:
        _add_group(m, port, ETH_P_IP, group, vid, src)
    except KernelError:
        return True
    return False


def _add6(m: BrMcast, port: NetBridgePort | None, group: bytes, vid: int, src: bytes) -> bool:
    """``br_ip6_multicast_add_group``: ff02::1 is never snooped."""
    if group == ALL_NODES6:
        return False
    try:
        _add_group(m, port, ETH_P_IPV6, group, vid, src)
    except KernelError:
        return True
    return False


def _v3_report(m: BrMcast, port: NetBridgePort | None, fam: int, msg: bytes | bytearray,
               alen: int, vid: int, src: bytes) -> bool:
    """``br_ip4_multicast_igmp3_report`` / ``br_ip6_multicast_mld2_report`` with
    igmpv2/mldv1 semantics: records are walked one by one (a truncated record is an
    error after the earlier ones took effect); an empty INCLUDE (IS_IN{} / TO_IN{}) is a
    leave, any other known record type a (*,G) join."""
    n = (msg[6] << 8) | msg[7]
    off = 8
    other = m.ip4_other_query if fam == ETH_P_IP else m.ip6_other_query
    for _ in range(n):
        if off + 4 + alen > len(msg):
            return True
        rtype, aux, nsrcs = msg[off], msg[off + 1], (msg[off + 2] << 8) | msg[off + 3]
        rec_end = off + 4 + alen + nsrcs * alen + aux * 4
        if off + 4 + alen + nsrcs * alen > len(msg):
            return True
        group = bytes(msg[off + 4:off + 4 + alen])
        off = rec_end
        if not 1 <= rtype <= 6:
            continue
        if nsrcs == 0 and rtype in (CHANGE_TO_INCLUDE, MODE_IS_INCLUDE):
            if fam == ETH_P_IP:
                if not (group[0] == 224 and group[1] == 0 and group[2] == 0):
                    _leave_group(m, port, fam, group, vid, src, other)
            elif group != ALL_NODES6:
                _leave_group(m, port, fam, group, vid, src, other)
            continue
        err = _add4(m, port, group, vid, src) if fam == ETH_P_IP else _add6(m, port, group, vid, src)
        if err:
            return True
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
        return _err(m)
    plen = (b[off + 4] << 8) | b[off + 5]
    if end - off < 40 + plen or plen == 0:  # ipv6_mc_check_ip6hdr
        return _err(m)
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
                return _err(m)
            nxt = b[p]
            hl = (b[p + 1] + 2) * 4 if nh == 51 else (8 if nh == 44 else (b[p + 1] + 1) * 8)
            p += hl
            nh = nxt
            if p > stop:
                return _err(m)
        is_mld = nh == IPPROTO_ICMPV6
    if not is_mld:
        if daddr != ALL_NODES6:
            cb.mrouters_only = True
        return False
    msg = b[p:stop]
    if len(msg) < 8:  # ipv6_mc_check_icmpv6: icmp6hdr
        return _err(m)
    if icmpv6_checksum(saddr, daddr, msg) != 0:
        return _err(m)
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
            return _err(m)
        if len(msg) != 24 and len(msg) < 28:
            return _err(m)
        if not any(msg[8:24]) and daddr != ALL_NODES6:
            return _err(m)
    cb.igmp = t
    src = bytes(b[pkt.mac_header + 6:pkt.mac_header + 12])
    if not _port_ok(port):
        return False
    if t == ICMPV6_MGM_REPORT:
        cb.mrouters_only = True
        return _add6(m, port, bytes(msg[8:24]), vid, src)
    if t == ICMPV6_MLD2_REPORT:
        return _v3_report(m, port, ETH_P_IPV6, msg, 16, vid, src)
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


def _err(m: BrMcast) -> bool:
    """``br_multicast_err_count``: the packet is invalid IGMP/MLD; the bridge drops it."""
    m.parse_errors += 1
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
        return _ipv4_rcv(m, port, pkt, vid)
    if proto == ETH_P_IPV6:
        return _ipv6_rcv(m, port, pkt, vid)
    return False


# --------------------------------------------------------------- forwarding side
def br_mdb_get(br: NetBridge, pkt: "Packet", vid: int) -> MdbEntry | None:
    """``br_mdb_entry_skb_get``: the group entry for the frame's IP destination (never
    for IGMP/MLD themselves); L2 groups of other protocols by destination MAC."""
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
        return m.mdb.get(mdb_key(ETH_P_IP, bytes(b[off + 16:off + 20]), vid))
    if pkt.protocol == ETH_P_IPV6:
        if pkt.tail - off < 40:
            return None
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
        for pg in pgs:
            if port.flags & BR_MULTICAST_TO_UNICAST:
                _deliver_addr(fwd, port, pkt, pg.eth_addr, local_orig)
                continue
            if pg.filter_mode == MCAST_INCLUDE or pg.flags & MDB_PG_FLAGS_BLOCKED:
                continue
            if fwd.should_deliver(port, pkt):
                if prev is not None:
                    fwd.deliver_clone(prev, pkt, local_orig)
                prev = port
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


def _alloc_query4(m: BrMcast, group: bytes) -> bytes:
    """``br_ip4_multicast_alloc_query`` for IGMPv2: to 224.0.0.1 (also group-specific
    queries), from 0.0.0.0 (or the bridge's address with ``mcast_query_use_ifaddr``), TTL 1,
    TOS 0xc0, DF, IP ID 0, router alert; max response = last_member_interval for a group,
    query_response_interval otherwise, in tenths of a second."""
    from netstack.packet.checksum import ip_fast_csum
    br = m.br
    saddr = bytes(4)
    if m.multicast_query_use_ifaddr:
        from netstack.ipv4.devinet import inet_select_addr
        saddr = bytes(inet_select_addr(br.dev.net, br.dev, 0, 253))  # RT_SCOPE_LINK
    interval = m.last_member_interval if any(group) else m.query_response_interval
    code = _j(interval) // (KERNEL_HZ // IGMP_TIMER_SCALE)
    ih = bytearray(bytes((IGMP_HOST_MEMBERSHIP_QUERY, code & 0xFF, 0, 0)) + group)
    c = igmp_checksum(ih)
    ih[2], ih[3] = c >> 8, c & 0xFF
    iph = bytearray(bytes((0x46, 0xC0)) + (24 + 8).to_bytes(2, "big") + bytes((0, 0, 0x40, 0, 1,
                    IPPROTO_IGMP, 0, 0)) + saddr + ALL_HOSTS4 + bytes((0x94, 4, 0, 0)))
    c = ip_fast_csum(iph)
    iph[10], iph[11] = c >> 8, c & 0xFF
    return ALL_HOSTS4_MAC + bytes(br.dev.address) + ETH_P_IP.to_bytes(2, "big") + bytes(iph) + bytes(ih)


def _alloc_query6(m: BrMcast, group: bytes) -> bytes | None:
    """``br_ip6_multicast_alloc_query`` for MLDv1: to ff02::1 (also group-specific), from
    the bridge's preferred source for it (none → no query, BROPT_HAS_IPV6_ADDR off), hop
    limit 1, a Hop-by-Hop header with router alert and two Pad1, max delay in ms."""
    from netstack.ipv6.addrconf import ipv6_dev_get_saddr
    br = m.br
    net = br.dev.net
    saddr = None
    if br.dev.ip6_ptr is not None and getattr(net, "ipv6", None) is not None:
        saddr = ipv6_dev_get_saddr(net, br.dev, ALL_NODES6)
    if saddr is None:
        m.has_ipv6_addr = False
        return None
    m.has_ipv6_addr = True
    interval = m.query_response_interval if not any(group) else m.last_member_interval
    ms = _j(interval) * 1000 // KERNEL_HZ
    mld = bytearray(bytes((ICMPV6_MGM_QUERY, 0, 0, 0)) + (ms & 0xFFFF).to_bytes(2, "big")
                    + bytes(2) + group)
    c = icmpv6_checksum(saddr, ALL_NODES6, mld)
    mld[2], mld[3] = c >> 8, c & 0xFF
    hbh = bytes((IPPROTO_ICMPV6, 0, 5, 2, 0, 0, 0, 0))
    ip6 = (bytes((0x60, 0, 0, 0)) + (len(hbh) + len(mld)).to_bytes(2, "big") + bytes((0, 1))
           + bytes(saddr) + ALL_NODES6)
    return ALL_NODES6_MAC + bytes(br.dev.address) + ETH_P_IPV6.to_bytes(2, "big") + ip6 + hbh + bytes(mld)


def _send_query(m: BrMcast, port: NetBridgePort | None, fam: int, group: bytes) -> None:
    """``__br_multicast_send_query``: out of ``port`` through NF_BR_LOCAL_OUT, or (no port)
    received by the bridge device itself, which makes us the elected querier."""
    br = m.br
    net = br.dev.net
    frame = _alloc_query4(m, group) if fam == ETH_P_IP else _alloc_query6(m, group)
    if frame is None:
        return
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
        if v not in (2, 3):
            raise KernelError(errno.EINVAL)
        if v == 3:
            raise NotSupported("IGMPv3 source filtering in the bridge (mcast_igmp_version 3)")
        m.igmp_version = v
        return
    if attr == "mld_version":
        if v not in (1, 2):
            raise KernelError(errno.EINVAL)
        if v == 2:
            raise NotSupported("MLDv2 source filtering in the bridge (mcast_mld_version 2)")
        m.mld_version = v
        return
    if attr == "vlan_snooping":
        if v:
            raise NotSupported("per-VLAN multicast snooping (mcast_vlan_snooping 1)")
        m.vlan_snooping = 0
        return
    if attr == "stats_enabled":
        if v:
            raise NotSupported("bridge multicast statistics (mcast_stats_enabled 1)")
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
