"""Explicit host tracking (EHT) for ``fast_leave`` bridge ports under IGMPv3/MLDv2
(net/bridge/br_multicast_eht.c, net/bridge/br_private_mcast_eht.h).

Why it exists: on a port with ``mcast_fast_leave on`` several hosts may sit behind the
port, and with IGMPv3/MLDv2 a host leaving (TO_IN {}, BLOCK of its last sources) must not
cut the traffic another host on the same port still wants.  The kernel therefore keeps,
per port group, which reporting host (the report's IP source) wants which source:

* ``EhtHost`` (``struct net_bridge_group_eht_host``): one reporter, its filter mode and
  its set entries; at most ``eht_hosts_limit`` hosts per port (default 512,
  ``BR_MCAST_DEFAULT_EHT_HOSTS_LIMIT``), counted in ``eht_hosts_cnt``;
* ``EhtSet`` (``struct net_bridge_group_eht_set``): one source address (0.0.0.0/:: is
  the "whole group" entry of an EXCLUDE host) with the hosts that asked for it;
* ``EhtSetEntry`` (``struct net_bridge_group_eht_set_entry``): one (source, host) pair.
  Entries and sets time out after the Group Membership Interval.

A host that stops wanting a source removes only its set entry; when the set empties the
port group's source (``struct net_bridge_group_src``) is deleted at once (fast leave)
instead of being queried for; when the last host is gone the whole port group goes
(``br_multicast_eht_should_del_pg``, checked by br_multicast.py after TO_IN and BLOCK).

The kernel's red-black trees become dicts; where the kernel walks a tree in order
(``rb_first``) the keys are sorted.  ``num_entries`` is a u32 decremented when the
*host* address is not zero, as in ``__eht_del_set_entry`` (kept bug-compatible).
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netstack.errors import KernelError
from netstack.packet.igmp import (
    ALLOW_NEW_SOURCES,
    BLOCK_OLD_SOURCES,
    CHANGE_TO_EXCLUDE,
    CHANGE_TO_INCLUDE,
    MODE_IS_EXCLUDE,
    MODE_IS_INCLUDE,
)

if TYPE_CHECKING:
    from netstack.drivers.bridge.br_multicast import BrMcast, PortGroup
    from netstack.drivers.bridge.br_private import NetBridgePort

#: BR_MCAST_DEFAULT_EHT_HOSTS_LIMIT (net/bridge/br_private_mcast_eht.h)
BR_MCAST_DEFAULT_EHT_HOSTS_LIMIT = 512
#: PG_SRC_ENT_LIMIT (net/bridge/br_private.h): sources per host, as per port group
PG_SRC_ENT_LIMIT = 32
MCAST_EXCLUDE = 0
MCAST_INCLUDE = 1
U32 = 0xFFFFFFFF


@dataclass(eq=False)
class EhtHost:
    """``struct net_bridge_group_eht_host``."""

    h_addr: bytes
    pg: "PortGroup"
    filter_mode: int
    #: ``set_entries`` (hlist, newest first)
    set_entries: list["EhtSetEntry"] = field(default_factory=list)
    num_entries: int = 0


@dataclass(eq=False)
class EhtSet:
    """``struct net_bridge_group_eht_set``: the hosts (``entries`` by host address)
    that want ``src_addr``."""

    src_addr: bytes
    pg: "PortGroup"
    entries: dict[bytes, "EhtSetEntry"] = field(default_factory=dict)
    timer: Any = None
    linked: bool = True


@dataclass(eq=False)
class EhtSetEntry:
    """``struct net_bridge_group_eht_set_entry``: one host in one set."""

    h_addr: bytes
    eht_set: EhtSet
    host: EhtHost
    timer: Any = None
    linked: bool = True


def _m(pg: "PortGroup") -> "BrMcast":
    return pg.port.br.multicast


def _port_mcast(pg: "PortGroup") -> Any:
    return pg.port.multicast


# ----------------------------------------------------------------- lookups
def host_filter_mode(pg: "PortGroup", h_addr: bytes) -> int:
    """``br_multicast_eht_host_filter_mode``: an unknown host counts as INCLUDE {}."""
    host = pg.eht_hosts.get(h_addr)
    return MCAST_INCLUDE if host is None else host.filter_mode


def hosts_over_limit(pg: "PortGroup") -> bool:
    """``br_multicast_eht_hosts_over_limit``: the limit is per port."""
    pm = _port_mcast(pg)
    return pm.eht_hosts_cnt >= pm.eht_hosts_limit


# ----------------------------------------------------------------- deletion
def _destroy_host(host: EhtHost) -> None:
    """``__eht_destroy_host``."""
    pm = _port_mcast(host.pg)
    pm.eht_hosts_cnt -= 1
    host.pg.eht_hosts.pop(host.h_addr, None)


def _del_set_entry_obj(set_h: EhtSetEntry) -> None:
    """``__eht_del_set_entry``."""
    host = set_h.host
    set_h.eht_set.entries.pop(set_h.h_addr, None)
    set_h.linked = False
    if set_h in host.set_entries:
        host.set_entries.remove(set_h)
    if any(set_h.h_addr):
        host.num_entries = (host.num_entries - 1) & U32
    set_h.timer.cancel()
    if not host.set_entries:
        _destroy_host(host)


def del_eht_set(eht_set: EhtSet) -> None:
    """``br_multicast_del_eht_set``: its entries (in tree order), then the set."""
    for h in sorted(eht_set.entries):
        _del_set_entry_obj(eht_set.entries[h])
    eht_set.pg.eht_sets.pop(eht_set.src_addr, None)
    eht_set.linked = False
    eht_set.timer.cancel()


def clean_sets(pg: "PortGroup") -> None:
    """``br_multicast_eht_clean_sets``: called when the port group is deleted."""
    for src in sorted(pg.eht_sets):
        s = pg.eht_sets.get(src)
        if s is not None:
            del_eht_set(s)


def del_set_entry(pg: "PortGroup", src_addr: bytes, h_addr: bytes) -> bool:
    """``br_multicast_del_eht_set_entry``: True when the set went with it."""
    eht_set = pg.eht_sets.get(src_addr)
    if eht_set is None:
        return False
    set_h = eht_set.entries.get(h_addr)
    if set_h is None:
        return False
    _del_set_entry_obj(set_h)
    if not eht_set.entries:
        del_eht_set(eht_set)
        return True
    return False


def _del_host(pg: "PortGroup", h_addr: bytes) -> None:
    """``br_multicast_del_eht_host``: every set entry of the host."""
    host = pg.eht_hosts.get(h_addr)
    if host is None:
        return
    for set_h in list(host.set_entries):
        del_set_entry(pg, set_h.eht_set.src_addr, set_h.h_addr)


# ----------------------------------------------------------------- timers
def _set_entry_expired(set_h: EhtSetEntry) -> None:
    """``br_multicast_eht_set_entry_expired``."""
    if not set_h.linked:
        return
    del_set_entry(set_h.eht_set.pg, set_h.eht_set.src_addr, set_h.h_addr)


def _set_expired(eht_set: EhtSet) -> None:
    """``br_multicast_eht_set_expired``."""
    if eht_set.linked:
        del_eht_set(eht_set)


def _mod(m: "BrMcast", timer: Any, expires: int) -> None:
    """``mod_timer`` as the kernel's timer wheel runs it (br_multicast._wheel_expires)."""
    from netstack.drivers.bridge.br_multicast import _wheel_expires
    timer.mod(_wheel_expires(m, expires))


# ----------------------------------------------------------------- creation
def _lookup_create_host(pg: "PortGroup", h_addr: bytes, filter_mode: int) -> EhtHost | None:
    """``__eht_lookup_create_host``: a new host only below the port's limit."""
    host = pg.eht_hosts.get(h_addr)
    if host is not None:
        return host
    if hosts_over_limit(pg):
        return None
    host = EhtHost(h_addr, pg, filter_mode)
    pg.eht_hosts[h_addr] = host
    _port_mcast(pg).eht_hosts_cnt += 1
    return host


def _lookup_create_set(m: "BrMcast", pg: "PortGroup", src_addr: bytes) -> EhtSet:
    """``__eht_lookup_create_set``."""
    eht_set = pg.eht_sets.get(src_addr)
    if eht_set is None:
        eht_set = EhtSet(src_addr, pg)
        eht_set.timer = m.clock.timer(_set_expired, eht_set)
        pg.eht_sets[src_addr] = eht_set
    return eht_set


def _lookup_create_set_entry(m: "BrMcast", eht_set: EhtSet, host: EhtHost,
                             allow_zero_src: bool) -> EhtSetEntry | None:
    """``__eht_lookup_create_set_entry``: a host has at most PG_SRC_ENT_LIMIT sources;
    the automatic zero-source entry of an EXCLUDE host is neither limited nor counted."""
    set_h = eht_set.entries.get(host.h_addr)
    if set_h is not None:
        return set_h
    if not allow_zero_src and host.num_entries >= PG_SRC_ENT_LIMIT:
        return None
    set_h = EhtSetEntry(host.h_addr, eht_set, host)
    set_h.timer = m.clock.timer(_set_entry_expired, set_h)
    host.set_entries.insert(0, set_h)
    eht_set.entries[host.h_addr] = set_h
    if not allow_zero_src:
        host.num_entries += 1
    return set_h


def create_set_entry(m: "BrMcast", pg: "PortGroup", src_addr: bytes, h_addr: bytes,
                     filter_mode: int, allow_zero_src: bool) -> None:
    """``br_multicast_create_eht_set_entry``: set, host and entry, timers at GMI; what
    could not be created is unwound."""
    if not allow_zero_src and not any(src_addr):
        return
    eht_set = _lookup_create_set(m, pg, src_addr)
    host = _lookup_create_host(pg, h_addr, filter_mode)
    if host is not None:
        set_h = _lookup_create_set_entry(m, eht_set, host, allow_zero_src)
        if set_h is not None:
            gmi = m.clock.now + m.membership_interval
            _mod(m, set_h.timer, gmi)
            _mod(m, eht_set.timer, gmi)
            return
        if not host.set_entries:
            _destroy_host(host)
    if not eht_set.entries:
        del_eht_set(eht_set)


def _convert_host_filter_mode(m: "BrMcast", pg: "PortGroup", h_addr: bytes,
                              filter_mode: int) -> None:
    """``br_eht_convert_host_filter_mode``: an EXCLUDE host holds the zero-source entry."""
    host = pg.eht_hosts.get(h_addr)
    if host is not None:
        host.filter_mode = filter_mode
    zero = bytes(len(h_addr))
    if filter_mode == MCAST_INCLUDE:
        del_set_entry(pg, zero, h_addr)
    else:
        create_set_entry(m, pg, zero, h_addr, MCAST_EXCLUDE, True)


# ----------------------------------------------------------------- records
def _create_set_entries(m: "BrMcast", pg: "PortGroup", h_addr: bytes, srcs: list[bytes],
                        filter_mode: int) -> None:
    """``__eht_create_set_entries``."""
    for s in srcs:
        create_set_entry(m, pg, s, h_addr, filter_mode, False)


def _del_set_entries(m: "BrMcast", pg: "PortGroup", h_addr: bytes, srcs: list[bytes]) -> bool:
    """``__eht_del_set_entries``: a source whose set emptied leaves the port group now."""
    from netstack.drivers.bridge.br_multicast import _del_group_src, _find_group_src
    changed = False
    for s in srcs:
        if not del_set_entry(pg, s, h_addr):
            continue
        ent = _find_group_src(pg, s)
        if ent is None:
            continue
        _del_group_src(m, ent, True)
        changed = True
    return changed


def _allow(m: "BrMcast", pg: "PortGroup", h_addr: bytes, srcs: list[bytes]) -> bool:
    """``br_multicast_eht_allow``."""
    if host_filter_mode(pg, h_addr) == MCAST_INCLUDE:
        _create_set_entries(m, pg, h_addr, srcs, MCAST_INCLUDE)
        return False
    return _del_set_entries(m, pg, h_addr, srcs)


def _block(m: "BrMcast", pg: "PortGroup", h_addr: bytes, srcs: list[bytes]) -> bool:
    """``br_multicast_eht_block``."""
    if host_filter_mode(pg, h_addr) == MCAST_INCLUDE:
        return _del_set_entries(m, pg, h_addr, srcs)
    _create_set_entries(m, pg, h_addr, srcs, MCAST_EXCLUDE)
    return False


def _inc_exc(m: "BrMcast", pg: "PortGroup", h_addr: bytes, srcs: list[bytes],
             filter_mode: int, to_report: bool) -> bool:
    """``__eht_inc_exc``: a state-change report or a mode change replaces the host's
    entries; port-group sources nobody wants any more go at once, and (TO_IN) the sets
    of sources being queried drop to LMQT so timed-out hosts go with their (S,G)s."""
    from netstack.drivers.bridge.br_multicast import BR_SGRP_F_SEND, _del_group_src
    changed = False
    flush = to_report or host_filter_mode(pg, h_addr) != filter_mode
    if flush:
        _del_host(pg, h_addr)
    _create_set_entries(m, pg, h_addr, srcs, filter_mode)
    if flush:
        for ent in list(pg.src_list):
            eht_set = pg.eht_sets.get(ent.addr)
            if eht_set is None:
                _del_group_src(m, ent, True)
                changed = True
                continue
            if not (ent.flags & BR_SGRP_F_SEND) or filter_mode != MCAST_INCLUDE or not to_report:
                continue
            _mod(m, eht_set.timer, m.clock.now + m.last_member_interval * m.last_member_count)
    return changed


def br_multicast_eht_handle(m: "BrMcast", pg: "PortGroup", h_addr: bytes, srcs: list[bytes],
                            rtype: int) -> bool:
    """``br_multicast_eht_handle``: True when a source was deleted.  Only ports with
    ``fast_leave`` track hosts; record types as IGMPv3 (MLDv2 uses the same numbers)."""
    if not (pg.port.flags & _fast_leave_flag()):
        return False
    if rtype == ALLOW_NEW_SOURCES:
        _allow(m, pg, h_addr, srcs)
        return False
    if rtype == BLOCK_OLD_SOURCES:
        return _block(m, pg, h_addr, srcs)
    if rtype in (CHANGE_TO_INCLUDE, MODE_IS_INCLUDE):
        changed = _inc_exc(m, pg, h_addr, srcs, MCAST_INCLUDE, rtype == CHANGE_TO_INCLUDE)
        _convert_host_filter_mode(m, pg, h_addr, MCAST_INCLUDE)
        return changed
    if rtype in (CHANGE_TO_EXCLUDE, MODE_IS_EXCLUDE):
        changed = _inc_exc(m, pg, h_addr, srcs, MCAST_EXCLUDE, rtype == CHANGE_TO_EXCLUDE)
        _convert_host_filter_mode(m, pg, h_addr, MCAST_EXCLUDE)
        return changed
    return False


def _fast_leave_flag() -> int:
    from netstack.drivers.bridge.br_private import BR_MULTICAST_FAST_LEAVE
    return BR_MULTICAST_FAST_LEAVE


def br_multicast_eht_should_del_pg(pg: "PortGroup") -> bool:
    """``br_multicast_eht_should_del_pg``: a fast-leave port group without hosts."""
    return bool(pg.port.flags & _fast_leave_flag()) and not pg.eht_hosts


def br_multicast_eht_set_hosts_limit(port: "NetBridgePort", limit: int) -> None:
    """``br_multicast_eht_set_hosts_limit`` (IFLA_BRPORT_MCAST_EHT_HOSTS_LIMIT, which
    iproute2 6.1 cannot send): 0 is EINVAL."""
    if not limit:
        raise KernelError(errno.EINVAL)
    port.multicast.eht_hosts_limit = int(limit)
