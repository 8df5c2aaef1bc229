"""Bonding options (drivers/net/bonding/bond_options.c, include/net/bond_options.h).

Every option is set through :func:`bond_opt_set`, which does what ``__bond_opt_set`` does:
the mode/slave/up dependency check (``bond_opt_check_deps``: EACCES "option not supported
in mode", ENOTEMPTY with slaves, EBUSY while up), the value check against the option's
table or range (``bond_opt_parse``: EINVAL "invalid option value"), then the option's own
setter with its side effects (``bond_option_mode_set`` forcing miimon 100 for 802.3ad/tlb/
alb, miimon and arp_interval switching each other off, up/downdelay stored in miimon units
and refused (EPERM) without miimon, …).  Errors are :class:`KernelError` with the kernel's
errno and extack, which the CLI prints as iproute2 does.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from netstack.errors import KernelError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.drivers.bonding.bond_main import BondDevice

BOND_MODE_ROUNDROBIN = 0
BOND_MODE_ACTIVEBACKUP = 1
BOND_MODE_XOR = 2
BOND_MODE_BROADCAST = 3
BOND_MODE_8023AD = 4
BOND_MODE_TLB = 5
BOND_MODE_ALB = 6
MODE_NAMES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
              "balance-tlb", "balance-alb")
#: bond_mode_name (bond_main.c), for /proc/net/bonding
MODE_DESC = ("load balancing (round-robin)", "fault-tolerance (active-backup)",
             "load balancing (xor)", "fault-tolerance (broadcast)",
             "IEEE 802.3ad Dynamic link aggregation", "transmit load balancing",
             "adaptive load balancing")
ARP_VALIDATE_NAMES = ("none", "active", "backup", "all", "filter", "filter_active",
                      "filter_backup")
ARP_ALL_TARGETS_NAMES = ("any", "all")
PRI_RESELECT_NAMES = ("always", "better", "failure")
FAIL_OVER_MAC_NAMES = ("none", "active", "follow")
AD_SELECT_NAMES = ("stable", "bandwidth", "count")
LACP_RATE_NAMES = ("slow", "fast")
LACP_ACTIVE_NAMES = ("off", "on")
XMIT_HASH_NAMES = ("layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4", "vlan+srcmac")

BOND_DEFAULT_MIIMON = 100
BOND_MAX_ARP_TARGETS = 16
BOND_MAX_NS_TARGETS = BOND_MAX_ARP_TARGETS
INT_MAX = 2**31 - 1
ALL_MODES = frozenset(range(7))


def bond_mode_uses_arp(mode: int) -> bool:
    """``bond_mode_uses_arp``."""
    return mode not in (BOND_MODE_8023AD, BOND_MODE_TLB, BOND_MODE_ALB)


def bond_mode_uses_primary(mode: int) -> bool:
    """``bond_mode_uses_primary``."""
    return mode in (BOND_MODE_ACTIVEBACKUP, BOND_MODE_TLB, BOND_MODE_ALB)


@dataclass
class BondParams:
    """``struct bond_params`` with the defaults of a bond created by ``ip link add``
    (bond_check_params with no module parameters)."""

    mode: int = BOND_MODE_ROUNDROBIN
    xmit_policy: int = 0
    miimon: int = 0
    num_peer_notif: int = 1
    arp_interval: int = 0
    arp_validate: int = 0
    arp_all_targets: int = 0
    missed_max: int = 2
    updelay: int = 0           # in miimon units, as the kernel keeps it
    downdelay: int = 0
    peer_notif_delay: int = 0
    lacp_active: int = 1
    lacp_fast: int = 0
    min_links: int = 0
    ad_select: int = 0
    primary: str = ""
    primary_reselect: int = 0
    fail_over_mac: int = 0
    all_slaves_active: int = 0
    resend_igmp: int = 1
    lp_interval: int = 1
    packets_per_slave: int = 1
    tlb_dynamic_lb: int = 1
    ad_actor_sys_prio: int = 65535
    ad_user_port_key: int = 0
    ad_actor_system: bytes = b"\0" * 6
    use_carrier: int = 1
    coupled_control: int = 1
    broadcast_neighbor: int = 0
    arp_targets: list[bytes] = field(default_factory=list)
    #: ``ns_targets`` (IPv6 NS monitor targets, 16 bytes each), in slot order
    ns_targets: list[bytes] = field(default_factory=list)


def _in(mode_names: tuple[str, ...]) -> frozenset[int]:
    return frozenset(MODE_NAMES.index(m) for m in mode_names)


_NOSLAVES, _IFDOWN = 1, 2


@dataclass(frozen=True)
class BondOption:
    """``struct bond_option``: name, value table or range, unsupported modes, flags."""

    name: str
    setter: Callable[["BondDevice", Any], None]
    lo: int = 0
    hi: int = INT_MAX
    unsupp: frozenset[int] = frozenset()
    flags: int = 0
    table: tuple[str, ...] | None = None


def _einval() -> KernelError:
    return KernelError(errno.EINVAL, "invalid option value")


# ------------------------------------------------------------------- setters
def _set_mode(bond: "BondDevice", v: int) -> None:
    """``bond_option_mode_set``."""
    p = bond.params
    if not bond_mode_uses_arp(v):
        if p.arp_interval:
            p.arp_interval = 0
        if not p.miimon:
            p.miimon = BOND_DEFAULT_MIIMON
    if v == BOND_MODE_ALB:
        p.tlb_dynamic_lb = 1
    p.arp_validate = 0
    p.mode = v
    # 6.17: "only clear broadcast_neighbor" when the mode changes (the bond is down)
    p.broadcast_neighbor = 0


def _set_miimon(bond: "BondDevice", v: int) -> None:
    """``bond_option_miimon_set``: the delays stay in miimon units (so their ms value
    follows the new interval, "Updating updelay … since it is a multiple of the miimon
    value"); a non-zero miimon turns ARP monitoring off."""
    p = bond.params
    p.miimon = v
    if v and p.arp_interval:
        p.arp_interval = 0
        if p.arp_validate:
            p.arp_validate = 0
    bond.monitors_changed()


def _delay_setter(attr: str) -> Callable[["BondDevice", int], None]:
    def setter(bond: "BondDevice", v: int) -> None:
        """``_bond_option_delay_set``: EPERM without miimon; rounded down to it."""
        p = bond.params
        if not p.miimon:
            raise KernelError(errno.EPERM)
        setattr(p, attr, v // p.miimon)
    return setter


def _set_arp_interval(bond: "BondDevice", v: int) -> None:
    """``bond_option_arp_interval_set``: turns miimon off."""
    p = bond.params
    p.arp_interval = v
    if v and p.miimon:
        p.miimon = 0
    bond.monitors_changed()


def _set_arp_targets(bond: "BondDevice", targets: list[bytes]) -> None:
    """``bond_option_arp_ip_targets_set`` via netlink: the list replaces the old one;
    0.0.0.0 / broadcast / multicast are refused (EINVAL).  Clearing zeroes every slave's
    ``target_last_arp_rx`` slots (``bond_option_arp_ip_targets_clear``); each added
    target's slot starts at now."""
    out: list[bytes] = []
    for s in bond.slaves:
        s.target_last_arp_rx = [0] * BOND_MAX_ARP_TARGETS
    now = bond.now_ns()
    for t in targets:
        # bond_is_ip_target_ok (limited broadcast, 0.0.0.0/8), a duplicate or a 17th:
        # EINVAL, the earlier ones stay
        if t[0] == 0 or t == b"\xff\xff\xff\xff" or 224 <= t[0] <= 239 or t in out \
                or len(out) >= BOND_MAX_ARP_TARGETS:
            bond.params.arp_targets = out
            raise _einval()
        for s in bond.slaves:
            s.target_last_arp_rx[len(out)] = now
        out.append(t)
    bond.params.arp_targets = out


def _set_primary(bond: "BondDevice", name: str) -> None:
    """``bond_option_primary_set``: remembered by name; takes effect when enslaved."""
    bond.params.primary = name
    bond.primary_changed()


def _set_active_slave(bond: "BondDevice", name: str) -> None:
    """``bond_option_active_slave_set``."""
    bond.set_active_slave_by_name(name)


def _plain(attr: str, after: Callable[["BondDevice"], None] | None = None
           ) -> Callable[["BondDevice", Any], None]:
    def setter(bond: "BondDevice", v: Any) -> None:
        setattr(bond.params, attr, v)
        if after is not None:
            after(bond)
    return setter


def _set_use_carrier(bond: "BondDevice", v: int) -> None:
    """``IFLA_BOND_USE_CARRIER`` in ``bond_changelink`` (6.18, "bonding: Remove support
    for use_carrier"): the MII/ethtool polling is gone, only 1 is accepted; anything else
    is refused before ``__bond_opt_set`` (so without the mode/up checks) with EINVAL
    "option obsolete, use_carrier cannot be disabled".  Before 6.18 use_carrier 0 on a
    device without ``ndo_eth_ioctl`` (every netstack device) fell back to
    ``ethtool_ops->get_link``, which for veth is ``ethtool_op_get_link`` =
    netif_carrier_ok — the same answer; 6.18 simply refuses the value."""
    if v != 1:
        raise KernelError(errno.EINVAL, "option obsolete, use_carrier cannot be disabled")
    bond.params.use_carrier = 1


def _set_coupled(bond: "BondDevice", v: int) -> None:
    """``bond_option_coupled_control_set``: 0 selects the independent control mux machine
    (IEEE 802.1AX-2008 5.4.15: COLLECTING then DISTRIBUTING), see
    :meth:`Bond3ad.mux_machine`."""
    bond.params.coupled_control = v


def _set_lacp_active(bond: "BondDevice", v: int) -> None:
    """``bond_option_lacp_active_set`` + ``bond_3ad_update_lacp_active`` (6.17): the
    ports' Actor LACP_Activity bit follows the option; a passive port sends periodic
    LACPDUs only while its partner is active (``ad_periodic_machine``)."""
    bond.params.lacp_active = v
    bond.ad.update_lacp_active()


def _set_broadcast_neighbor(bond: "BondDevice", v: int) -> None:
    """``bond_option_broadcast_neigh_set`` (6.17): 802.3ad only; ARP and IPv6 ND
    frames leave on every usable slave (``bond_should_broadcast_neighbor``)."""
    bond.params.broadcast_neighbor = v


def _ip6_target_ok(a: bytes) -> bool:
    """``bond_is_ip6_target_ok``: not ::, not ::1, not multicast."""
    return a != bytes(16) and a != bytes(15) + b"\x01" and a[0] != 0xFF


def _set_ns_targets(bond: "BondDevice", targets: list[bytes]) -> None:
    """``IFLA_BOND_NS_IP6_TARGET`` in ``bond_changelink``: the table is cleared
    (``bond_option_ns_ip6_targets_clear``), then each address is added
    (``bond_option_ns_ip6_target_add``): an invalid one, a duplicate or a 17th is EINVAL
    and stops the request with the earlier ones kept.  A new slot's
    ``target_last_arp_rx`` starts at now (jiffies)."""
    p = bond.params
    p.ns_targets = []
    now = bond.now_ns()
    for t in targets:
        if not _ip6_target_ok(t) or t in p.ns_targets or len(p.ns_targets) >= BOND_MAX_NS_TARGETS:
            raise _einval()
        slot = len(p.ns_targets)
        p.ns_targets.append(t)
        for s in bond.slaves:
            while len(s.target_last_arp_rx) <= slot:
                s.target_last_arp_rx.append(0)
            s.target_last_arp_rx[slot] = now


def _set_actor_system(bond: "BondDevice", mac: bytes) -> None:
    """``bond_option_ad_actor_system_set``: a valid unicast address only."""
    if len(mac) != 6 or mac[0] & 1 or mac == b"\0" * 6:
        raise _einval()
    bond.params.ad_actor_system = mac
    bond.ad_actor_changed()


def _ad_changed(bond: "BondDevice") -> None:
    bond.ad_actor_changed()


_AB_TLB_ALB = _in(("active-backup", "balance-tlb", "balance-alb"))
_NOT_AD = ALL_MODES - {BOND_MODE_8023AD}
_ARP_UNSUPP = _in(("802.3ad", "balance-tlb", "balance-alb"))

OPTIONS: dict[str, BondOption] = {o.name: o for o in (
    BondOption("mode", _set_mode, table=MODE_NAMES, flags=_NOSLAVES | _IFDOWN),
    BondOption("active_slave", _set_active_slave, unsupp=ALL_MODES - _AB_TLB_ALB),
    BondOption("miimon", _set_miimon),
    BondOption("updelay", _delay_setter("updelay")),
    BondOption("downdelay", _delay_setter("downdelay")),
    BondOption("peer_notif_delay", _delay_setter("peer_notif_delay"), hi=300000),
    BondOption("use_carrier", _set_use_carrier, hi=1),
    BondOption("arp_interval", _set_arp_interval, unsupp=_ARP_UNSUPP),
    # no unsupported modes (bond_opts[BOND_OPT_ARP_TARGETS]); arp_interval has them
    BondOption("arp_ip_target", _set_arp_targets),
    BondOption("ns_ip6_target", _set_ns_targets),
    BondOption("arp_validate", _plain("arp_validate"), table=ARP_VALIDATE_NAMES,
               unsupp=_ARP_UNSUPP),
    BondOption("arp_all_targets", _plain("arp_all_targets"), table=ARP_ALL_TARGETS_NAMES),
    BondOption("primary", _set_primary, unsupp=ALL_MODES - _AB_TLB_ALB),
    BondOption("primary_reselect", _plain("primary_reselect"), table=PRI_RESELECT_NAMES),
    BondOption("fail_over_mac", _plain("fail_over_mac"), table=FAIL_OVER_MAC_NAMES,
               flags=_NOSLAVES),
    BondOption("xmit_hash_policy", _plain("xmit_policy"), table=XMIT_HASH_NAMES),
    BondOption("resend_igmp", _plain("resend_igmp"), hi=255),
    BondOption("num_peer_notif", _plain("num_peer_notif"), hi=255),
    BondOption("all_slaves_active", _plain("all_slaves_active"), hi=1),
    BondOption("min_links", _plain("min_links", lambda b: b.ad_set_carrier())),
    BondOption("lp_interval", _plain("lp_interval"), lo=1),
    BondOption("packets_per_slave", _plain("packets_per_slave"), hi=65535,
               unsupp=ALL_MODES - {BOND_MODE_ROUNDROBIN}),
    BondOption("lacp_active", _set_lacp_active, table=LACP_ACTIVE_NAMES,
               unsupp=_NOT_AD, flags=_IFDOWN),
    BondOption("lacp_rate", _plain("lacp_fast", lambda b: b.ad.update_lacp_rate()),
               table=LACP_RATE_NAMES, unsupp=_NOT_AD, flags=_IFDOWN),
    BondOption("ad_select", _plain("ad_select"), table=AD_SELECT_NAMES, unsupp=_NOT_AD,
               flags=_IFDOWN),
    BondOption("ad_actor_sys_prio", _plain("ad_actor_sys_prio", _ad_changed), lo=1,
               hi=65535, unsupp=_NOT_AD, flags=_IFDOWN),
    BondOption("ad_user_port_key", _plain("ad_user_port_key"), hi=1023, unsupp=_NOT_AD,
               flags=_IFDOWN),
    BondOption("ad_actor_system", _set_actor_system, unsupp=_NOT_AD, flags=_IFDOWN),
    BondOption("tlb_dynamic_lb", _plain("tlb_dynamic_lb"), hi=1,
               unsupp=ALL_MODES - {BOND_MODE_TLB, BOND_MODE_ALB}, flags=_IFDOWN),
    BondOption("missed_max", _plain("missed_max"), lo=1, hi=255, unsupp=_ARP_UNSUPP),
    BondOption("coupled_control", _set_coupled, hi=1, unsupp=_NOT_AD, flags=_IFDOWN),
    BondOption("broadcast_neighbor", _set_broadcast_neighbor, hi=1, unsupp=_NOT_AD),
)}

#: ``bond_changelink``'s attribute order (IFLA_BOND_*), which is the order options are
#: applied in one request.
CHANGELINK_ORDER = ("mode", "active_slave", "miimon", "updelay", "downdelay",
                    "peer_notif_delay", "use_carrier", "arp_interval", "arp_ip_target",
                    "ns_ip6_target", "arp_validate", "arp_all_targets", "primary", "primary_reselect",
                    "fail_over_mac", "xmit_hash_policy", "resend_igmp", "num_peer_notif",
                    "all_slaves_active", "min_links", "lp_interval", "packets_per_slave",
                    "lacp_active", "lacp_rate", "ad_select", "ad_actor_sys_prio",
                    "ad_user_port_key", "ad_actor_system", "tlb_dynamic_lb", "missed_max",
                    "coupled_control", "broadcast_neighbor")


def bond_opt_set(bond: "BondDevice", name: str, value: Any) -> None:
    """``__bond_opt_set``: deps, value check, setter."""
    opt = OPTIONS[name]
    if name == "use_carrier":
        # checked in bond_changelink itself, before __bond_opt_set (6.18)
        opt.setter(bond, value)
        return
    mode = bond.params.mode
    if mode in opt.unsupp:
        raise KernelError(errno.EACCES, "option not supported in mode")
    if opt.flags & _NOSLAVES and bond.slaves:
        raise KernelError(errno.ENOTEMPTY)
    if opt.flags & _IFDOWN and bond.is_up:
        raise KernelError(errno.EBUSY)
    if isinstance(value, int) and not isinstance(value, bool):
        if opt.table is not None:
            if not 0 <= value < len(opt.table):
                raise _einval()
        elif not opt.lo <= value <= opt.hi:
            raise _einval()
    opt.setter(bond, value)


def bond_changelink(bond: "BondDevice", opts: dict[str, Any]) -> None:
    """``bond_changelink``: the request's options in attribute order; the first error
    stops the request (earlier options stay applied, as in the kernel).  A non-zero
    miimon in the *same request* refuses a non-zero arp_interval ("ARP monitoring cannot
    be used with MII monitoring") and arp_validate ("ARP validating cannot be used with
    MII monitoring"), EINVAL."""
    miimon = opts.get("miimon", 0)
    for name in CHANGELINK_ORDER:
        if name in opts:
            if name == "arp_interval" and opts[name] and miimon:
                raise KernelError(errno.EINVAL,
                                  "ARP monitoring cannot be used with MII monitoring")
            if name == "arp_validate" and opts[name] and miimon:
                raise KernelError(errno.EINVAL,
                                  "ARP validating cannot be used with MII monitoring")
            bond_opt_set(bond, name, opts[name])
