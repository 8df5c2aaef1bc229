"""The bridge's data model (net/bridge/br_private.h, include/linux/if_bridge.h).

Why a separate module: every other bridge file (device, ports, input, forwarding, FDB,
STP, VLAN, and BR2's ARP/ND proxy and multicast snooping) works on these three objects,
exactly as every net/bridge/*.c file includes br_private.h.  Nothing here transmits or
receives; the entry points at the bottom delegate (lazily, to keep the import graph a
tree) to the modules that implement them.

* :class:`NetBridge` — ``struct net_bridge``: the bridge device's private state (its
  ports, the FDB keyed by (mac, vid), timers and options).  ``br.dev`` is the
  :class:`~netstack.drivers.bridge.br_device.BridgeDevice`; ``dev.br`` points back
  (``netdev_priv``).
* :class:`NetBridgePort` — ``struct net_bridge_port``: one enslaved device.
* :class:`FdbEntry` — ``struct net_bridge_fdb_entry``.

Hooks BR2 implements (called by BR1's code exactly where the kernel calls them; all
imported lazily through :func:`br2_hook`, so a missing module means "feature absent"):

``br_arp_nd_proxy`` (br_arp_nd_proxy.c)
  * ``br_do_proxy_suppress_arp(pkt, br, vid, port) -> None`` — br_handle_frame_finish
    calls it for EVERY ETH_P_ARP/ETH_P_RARP frame after learning (the function checks
    ``br.neigh_suppress_enabled`` / port flags itself, as the kernel's does).  ``pkt.data``
    is at the ARP header, ``pkt.mac_header`` set; set ``pkt.cb.proxyarp_replied = True``
    when a reply was sent: br_flood then skips ports with BR_PROXYARP_WIFI or neigh
    suppression (it calls ``br_is_neigh_suppress_enabled(port, vid) -> bool``, yours).
  * ``br_is_nd_neigh_msg(pkt) -> msg | None`` and
    ``br_do_suppress_nd(pkt, br, vid, port, msg) -> None`` — called for ETH_P_IPV6 when
    ``br.neigh_suppress_enabled`` and the next header is ICMPv6.
  * Locally originated frames (br_dev_xmit) call the same two with ``port=None``.

``br_multicast`` (br_multicast.c / br_mdb.c); ``br.multicast`` and ``port.multicast`` are
yours, None until your init functions set them:
  * ``br_multicast_init(br)`` from br_dev_init; ``br_multicast_add_port(port)`` /
    ``br_multicast_del_port(port)`` from br_add_if/br_del_if;
    ``br_multicast_open(br)``/``br_multicast_stop(br)`` from the bridge's open/stop.
  * ``br_multicast_rcv(br, port, pkt, vid) -> bool`` (True → drop), called for a
    non-broadcast multicast destination (port None when the bridge device transmits);
  * ``br_mdb_get(br, pkt, vid) -> mdst | None``;
  * ``br_multicast_querier_exists(br, pkt, mdst) -> bool``;
  * ``br_multicast_is_router(br, pkt) -> bool``; ``mdst.host_joined: bool``;
  * ``br_multicast_flood(mdst, pkt, br, local_rcv, local_orig) -> None`` (use
    ``br_private.br_forward``-style delivery: br_forward.py ``deliver_clone``).
  * ``pkt.cb.mrouters_only`` / ``pkt.cb.igmp`` are the BR_INPUT_SKB_CB bits you set.
  * Option setters the CLI calls for ``mcast_*``: ``br_multicast_set_option(br, name,
    value)`` / ``br_multicast_port_set_option(port, name, value)`` (names as iproute2's
    keywords, e.g. "mcast_snooping", "mcast_router", "mcast_to_unicast" is a port flag
    BR1 sets directly); ``br_multicast_info(br) -> list[(key, text, json)]`` for ``ip -d``.

Times are kept in virtual-clock nanoseconds; netlink/iproute2 show them in clock_t
(centiseconds, USER_HZ=100), converted at the CLI edge.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.clock import Timer
    from netstack.core.netdevice import NetDevice
    from netstack.drivers.bridge.br_device import BridgeDevice
    from netstack.packet.skb import Packet

NSEC_PER_SEC = 1_000_000_000
#: USER_HZ: netlink carries bridge times in clock_t (centiseconds).
USER_HZ = 100
NS_PER_CLOCK_T = NSEC_PER_SEC // USER_HZ

# ---------------------------------------------------------------- port flags
# include/linux/if_bridge.h (BIT(BR_*_BIT) in 6.18, same values)
BR_HAIRPIN_MODE = 1 << 0
BR_BPDU_GUARD = 1 << 1
BR_ROOT_BLOCK = 1 << 2
BR_MULTICAST_FAST_LEAVE = 1 << 3
BR_ADMIN_COST = 1 << 4
BR_LEARNING = 1 << 5
BR_FLOOD = 1 << 6
BR_AUTO_MASK = BR_FLOOD | BR_LEARNING
BR_PROMISC = 1 << 7
BR_PROXYARP = 1 << 8
BR_LEARNING_SYNC = 1 << 9
BR_PROXYARP_WIFI = 1 << 10
BR_MCAST_FLOOD = 1 << 11
BR_MULTICAST_TO_UNICAST = 1 << 12
BR_VLAN_TUNNEL = 1 << 13
BR_BCAST_FLOOD = 1 << 14
BR_NEIGH_SUPPRESS = 1 << 15
BR_ISOLATED = 1 << 16
BR_MRP_AWARE = 1 << 17
BR_MRP_LOST_CONT = 1 << 18
BR_MRP_LOST_IN_CONT = 1 << 19
BR_TX_FWD_OFFLOAD = 1 << 20
BR_PORT_LOCKED = 1 << 21
BR_PORT_MAB = 1 << 22
BR_NEIGH_VLAN_SUPPRESS = 1 << 23

#: new_nbp(): ``p->flags = BR_LEARNING | BR_FLOOD | BR_MCAST_FLOOD | BR_BCAST_FLOOD``
BR_PORT_DEFAULT_FLAGS = BR_LEARNING | BR_FLOOD | BR_MCAST_FLOOD | BR_BCAST_FLOOD

# ---------------------------------------------------------------- port states
# include/uapi/linux/if_bridge.h
BR_STATE_DISABLED = 0
BR_STATE_LISTENING = 1
BR_STATE_LEARNING = 2
BR_STATE_FORWARDING = 3
BR_STATE_BLOCKING = 4
BR_STATE_NAMES = ("disabled", "listening", "learning", "forwarding", "blocking")

# stp_enabled (br_private.h)
BR_NO_STP = 0
BR_KERNEL_STP = 1
BR_USER_STP = 2

# ---------------------------------------------------------------- fdb flags
# br_private.h enum { BR_FDB_LOCAL, BR_FDB_STATIC, ... } as bit numbers
BR_FDB_LOCAL = 1 << 0
BR_FDB_STATIC = 1 << 1
BR_FDB_STICKY = 1 << 2
BR_FDB_ADDED_BY_USER = 1 << 3
BR_FDB_ADDED_BY_EXT_LEARN = 1 << 4
BR_FDB_OFFLOADED = 1 << 5
BR_FDB_NOTIFY = 1 << 6
BR_FDB_NOTIFY_INACTIVE = 1 << 7
BR_FDB_LOCKED = 1 << 8
BR_FDB_DYNAMIC_LEARNED = 1 << 9

# ---------------------------------------------------------------- vlan info flags
# include/uapi/linux/if_bridge.h BRIDGE_VLAN_INFO_*
BRIDGE_VLAN_INFO_MASTER = 1 << 0
BRIDGE_VLAN_INFO_PVID = 1 << 1
BRIDGE_VLAN_INFO_UNTAGGED = 1 << 2
BRIDGE_VLAN_INFO_RANGE_BEGIN = 1 << 3
BRIDGE_VLAN_INFO_RANGE_END = 1 << 4
BRIDGE_VLAN_INFO_BRENTRY = 1 << 5
BRIDGE_VLAN_INFO_ONLY_OPTS = 1 << 6
BR_VLAN_BITMAP_LEN = 4096
VLAN_N_VID = 4096

# enum br_pkt_type (br_private.h): what br_handle_frame_finish classified the frame as
BR_PKT_UNICAST = 0
BR_PKT_MULTICAST = 1
BR_PKT_BROADCAST = 2

# Defaults (br_device.c br_dev_setup, br_stp_if.c, br_private.h)
BR_DEFAULT_AGEING_TIME_NS = 300 * NSEC_PER_SEC
BR_DEFAULT_FORWARD_DELAY_NS = 15 * NSEC_PER_SEC
BR_DEFAULT_HELLO_TIME_NS = 2 * NSEC_PER_SEC
BR_DEFAULT_MAX_AGE_NS = 20 * NSEC_PER_SEC
BR_DEFAULT_PRIORITY = 0x8000
BR_PORT_BITS = 10
BR_MAX_PORTS = 1 << BR_PORT_BITS
BR_DEFAULT_PORT_PRIORITY = 0x20
#: br_private.h: STP (bit 0), MAC PAUSE (bit 1) and LACP (bit 2) are never forwarded
BR_GROUPFWD_STP = 1 << 0
BR_GROUPFWD_MACPAUSE = 1 << 1
BR_GROUPFWD_LACP = 1 << 2
BR_GROUPFWD_RESTRICTED = BR_GROUPFWD_STP | BR_GROUPFWD_MACPAUSE | BR_GROUPFWD_LACP
BR_GROUPFWD_8021AD = 0xB801
#: br_private.h BR_GROUPFWD_DEFAULT: nothing forwarded by default
BR_GROUPFWD_DEFAULT = 0
#: 01:80:C2:00:00:00 — the IEEE 802.1D STP group address; 01:80:C2:00:00:0X are the
#: link-local groups (include/linux/etherdevice.h is_link_local_ether_addr)
BR_GROUP_ADDRESS = bytes.fromhex("0180c2000000")


@dataclass(eq=False, slots=True)
class FdbEntry:
    """``struct net_bridge_fdb_entry``.

    ``dst`` is the port the address lives behind, or None for an address of the bridge
    device itself (the entries ``fdb_add_local`` / ``br_fdb_change_mac_address`` keep).
    ``updated``/``used`` are virtual-clock ns as ``jiffies`` in the kernel: learning
    refreshes ``updated`` (ageing), forwarding refreshes ``used`` (``bridge -s fdb``).
    """

    addr: bytes
    vid: int
    dst: "NetBridgePort | None"
    flags: int = 0
    updated: int = 0
    used: int = 0

    @property
    def is_local(self) -> bool:
        return bool(self.flags & BR_FDB_LOCAL)

    @property
    def is_static(self) -> bool:
        return bool(self.flags & BR_FDB_STATIC)


@dataclass(eq=False, slots=True)
class BridgeVlan:
    """``struct net_bridge_vlan``: one VID on a port or on the bridge (``flags`` are the
    BRIDGE_VLAN_INFO_* bits the user set; ``brentry`` marks a master entry that is also a
    member of the bridge device itself, i.e. ``bridge vlan add … self`` on br0)."""

    vid: int
    flags: int = 0
    brentry: bool = False
    #: per-VLAN port state (br_vlan.c br_vlan_set_state), the port's state by default
    state: int = BR_STATE_FORWARDING
    #: BR_VLFLAG_NEIGH_SUPPRESS_ENABLED (``bridge vlan set … neigh_suppress on``), read by
    #: br_arp_nd_proxy.br_is_neigh_suppress_enabled when the port has neigh_vlan_suppress
    neigh_suppress: bool = False


@dataclass(eq=False)
class VlanGroup:
    """``struct net_bridge_vlan_group``: VIDs of a port or of the bridge, and the pvid."""

    vlans: dict[int, BridgeVlan] = field(default_factory=dict)
    pvid: int = 0

    def get(self, vid: int) -> BridgeVlan | None:
        return self.vlans.get(vid)


class NetBridgePort:
    """``struct net_bridge_port``: one enslaved device (br_if.c ``new_nbp``).

    STP fields follow the kernel's names (``designated_root``, ``designated_bridge``,
    ``designated_port``, ``designated_cost``, ``topology_change_ack``,
    ``config_pending``) so br_stp.c's logic reads the same.  ``multicast`` is the
    per-port multicast context that BR2's br_multicast.py owns (``struct
    net_bridge_mcast_port``); it starts as None.
    """

    def __init__(self, br: "NetBridge", dev: "NetDevice", port_no: int) -> None:
        self.br = br
        self.dev = dev
        self.port_no = port_no
        self.priority = BR_DEFAULT_PORT_PRIORITY
        self.port_id = br_make_port_id(self.priority, port_no)
        self.state = BR_STATE_DISABLED
        self.flags = BR_PORT_DEFAULT_FLAGS
        self.path_cost = 100
        # STP per-port state (br_stp.c)
        self.designated_root = b"\0" * 8
        self.designated_bridge = b"\0" * 8
        self.designated_cost = 0
        self.designated_port = 0
        #: when the root's information was last heard on this port (message age base)
        self.designated_age = 0
        self.topology_change_ack = False
        self.config_pending = False
        self.message_age_timer: "Timer | None" = None
        self.forward_delay_timer: "Timer | None" = None
        self.hold_timer: "Timer | None" = None
        #: group_fwd_mask per port (IFLA_BRPORT_GROUP_FWD_MASK)
        self.group_fwd_mask = 0
        #: the port's VLANs (``nbp_vlan_group``); None until vlan support initialises it
        self.vlgrp = VlanGroup()
        #: BR2's multicast per-port state (br_multicast.py)
        self.multicast: Any = None
        #: backup port (IFLA_BRPORT_BACKUP_PORT) is not modelled; kept for symmetry
        self.backup_port: "NetBridgePort | None" = None
        self.isolated = False

    @property
    def state_name(self) -> str:
        return BR_STATE_NAMES[self.state]

    def __repr__(self) -> str:  # pragma: no cover
        return f"<NetBridgePort {self.dev.name} no={self.port_no} {self.state_name}>"


class NetBridge:
    """``struct net_bridge``: the state behind a bridge device (br_device.c
    ``br_dev_setup`` sets the defaults reproduced here).

    ``port_list`` keeps the kernel's list order: ``br_add_if`` does
    ``list_add_rcu(&p->list, &br->port_list)``, i.e. the newest port first, which is the
    order ``br_flood`` visits ports.  ``fdb`` is the ``fdb_hash_tbl`` rhashtable keyed by
    (mac, vid): a dict is O(1) like the rhashtable, so forwarding cost does not depend on
    the table's size (bench/l2.py).
    """

    def __init__(self, dev: "BridgeDevice") -> None:
        self.dev = dev
        self.port_list: list[NetBridgePort] = []
        self.fdb: dict[tuple[bytes, int], FdbEntry] = {}
        # br_dev_setup / br_stp defaults
        self.ageing_time = BR_DEFAULT_AGEING_TIME_NS
        #: the configured ageing time; ``ageing_time`` is 2×forward_delay during an STP
        #: topology change (__br_set_topology_change)
        self.bridge_ageing_time = BR_DEFAULT_AGEING_TIME_NS
        self.bridge_max_age = BR_DEFAULT_MAX_AGE_NS
        self.bridge_hello_time = BR_DEFAULT_HELLO_TIME_NS
        self.bridge_forward_delay = BR_DEFAULT_FORWARD_DELAY_NS
        self.max_age = self.bridge_max_age
        self.hello_time = self.bridge_hello_time
        self.forward_delay = self.bridge_forward_delay
        self.priority = BR_DEFAULT_PRIORITY
        self.stp_enabled = BR_NO_STP
        self.group_fwd_mask = BR_GROUPFWD_DEFAULT
        #: br_recalculate_fwd_mask: BR_GROUPFWD_8021AD on an 802.1ad filtering bridge
        self.group_fwd_mask_required = 0
        #: IFLA_BR_GROUP_ADDR (the STP group address, 01:80:C2:00:00:00 by default)
        self.group_addr = BR_GROUP_ADDRESS
        self.group_addr_set = False
        # STP bridge state (br_stp.c)
        self.designated_root = b"\0" * 8
        self.bridge_id = b"\0" * 8
        self.root_path_cost = 0
        self.root_port = 0
        self.topology_change = False
        self.topology_change_detected = False
        self.hello_timer: "Timer | None" = None
        self.tcn_timer: "Timer | None" = None
        self.topology_change_timer: "Timer | None" = None
        self.gc_timer: "Timer | None" = None
        # VLAN filtering (br_vlan.c)
        self.vlan_enabled = False
        self.vlan_proto = 0x8100
        self.default_pvid = 1
        self.vlan_stats_enabled = False
        self.vlan_stats_per_port = False
        self.vlgrp = VlanGroup()
        # misc options (BROPT_*)
        self.nf_call_iptables = False
        self.nf_call_ip6tables = False
        self.nf_call_arptables = False
        self.no_linklocal_learn = False
        self.mst_enabled = False
        #: BROPT_NEIGH_SUPPRESS_ENABLED: br_recalculate_neigh_suppress_enabled sets it when
        #: any port has BR_NEIGH_SUPPRESS (or BR_NEIGH_VLAN_SUPPRESS)
        self.neigh_suppress_enabled = False
        #: ``struct net_bridge_mcast`` and friends: owned by BR2's br_multicast.py
        self.multicast: Any = None
        #: fdb limits (IFLA_BR_FDB_MAX_LEARNED; 0 = unlimited)
        self.fdb_max_learned = 0
        self.fdb_n_learned = 0
        #: a port was added at least once (br_set_gso_limits has run)
        self.had_ports = False

    # -------------------------------------------------------------- helpers
    @property
    def net(self):  # type: ignore[no-untyped-def]
        return self.dev.net

    def port_of(self, dev: "NetDevice") -> NetBridgePort | None:
        """``br_port_get_rcu``: the port wrapping ``dev`` if it is our slave."""
        p = dev.rx_handler_data
        return p if isinstance(p, NetBridgePort) and p.br is self else None

    def port_by_no(self, port_no: int) -> NetBridgePort | None:
        for p in self.port_list:
            if p.port_no == port_no:
                return p
        return None

    def recalculate_neigh_suppress_enabled(self) -> None:
        """``br_recalculate_neigh_suppress_enabled`` (br_arp_nd_proxy.c)."""
        self.neigh_suppress_enabled = any(
            p.flags & (BR_NEIGH_SUPPRESS | BR_NEIGH_VLAN_SUPPRESS) for p in self.port_list)


@dataclass(eq=False, slots=True)
class BrInputCb:
    """``struct br_input_skb_cb`` (br_private.h): the bridge's per-packet scratch in
    ``pkt.cb``, zeroed by br_handle_frame (``memset(skb->cb, 0, …)``) and by br_dev_xmit."""

    brdev: Any = None
    igmp: int = 0
    mrouters_only: bool = False
    proxyarp_replied: bool = False
    src_port_isolated: bool = False
    vlan_filtered: bool = False


def br2_hook(module: str, name: str) -> Any:
    """The function ``name`` of BR2's bridge module ``module`` ("br_arp_nd_proxy",
    "br_multicast"), or None when that module is not part of this tree: the bridge then
    behaves as a kernel built without that feature (CONFIG_BRIDGE_IGMP_SNOOPING off)."""
    import importlib
    try:
        mod = importlib.import_module(f"netstack.drivers.bridge.{module}")
    except ModuleNotFoundError as e:
        if e.name != f"netstack.drivers.bridge.{module}":
            raise
        return None
    return getattr(mod, name, None)


def br_make_port_id(priority: int, port_no: int) -> int:
    """``br_make_port_id`` (br_stp_if.c): priority in the top 6 bits, port number below."""
    return ((priority & 0x3F) << BR_PORT_BITS) | (port_no & (BR_MAX_PORTS - 1))


def br_port_get(dev: "NetDevice") -> NetBridgePort | None:
    """``br_port_get_rcu``/``br_port_exists``: the bridge port of ``dev`` (None if the
    device is not enslaved to a bridge)."""
    p = dev.rx_handler_data
    return p if isinstance(p, NetBridgePort) else None


# ---------------------------------------------------------------- entry points
# Implemented in br_forward.py / br_fdb.py / br_input.py; re-exported here so that the
# other bridge modules (BR2's br_arp_nd_proxy.py and br_multicast.py) depend on one
# header, as the kernel's files depend on br_private.h.

def br_forward(to: NetBridgePort, pkt: "Packet", local_rcv: bool, local_orig: bool) -> None:
    """``br_forward`` (br_forward.c): send ``pkt`` (data at the L3 header, MAC header
    recorded) out of port ``to`` if ``should_deliver`` allows it; with ``local_rcv`` a
    copy is sent and the original is left to the caller (which passes it up), otherwise
    the packet is consumed (dropped with a reason when it may not be delivered).
    ``local_orig`` marks a frame the bridge device itself transmits."""
    from netstack.drivers.bridge import br_forward as _f
    _f.br_forward(to, pkt, local_rcv, local_orig)


def br_flood(br: NetBridge, pkt: "Packet", pkt_type: int, local_rcv: bool,
             local_orig: bool, vid: int) -> None:
    """``br_flood`` (br_forward.c): deliver to every port that ``should_deliver`` and
    whose flood flag for ``pkt_type`` (BR_PKT_UNICAST → BR_FLOOD, BR_PKT_MULTICAST →
    BR_MCAST_FLOOD, BR_PKT_BROADCAST → BR_BCAST_FLOOD) is set; the last port gets the
    original unless ``local_rcv``.  Consumes ``pkt`` unless ``local_rcv``."""
    from netstack.drivers.bridge import br_forward as _f
    _f.br_flood(br, pkt, pkt_type, local_rcv, local_orig, vid)


def br_fdb_find(br: NetBridge, addr: bytes, vid: int) -> FdbEntry | None:
    """``br_fdb_find_rcu``: the FDB entry for (addr, vid), or None."""
    return br.fdb.get((bytes(addr), vid))


def br_pass_frame_up(pkt: "Packet") -> None:
    """``br_pass_frame_up`` (br_input.c): hand ``pkt`` (which arrived on a port) to the
    stack as if received on the bridge device: counts rx on the bridge, applies the
    bridge's own VLAN egress policy (``br_handle_vlan``), and runs the NF_BR_LOCAL_IN
    hook before ``netif_receive_skb``."""
    from netstack.drivers.bridge import br_input as _i
    _i.br_pass_frame_up(pkt)
