"""The forwarding database (net/bridge/br_fdb.c).

Why a dict keyed by (mac, vid): the kernel's ``fdb_hash_tbl`` is an rhashtable on
``struct net_bridge_fdb_key`` — an O(1) exact-match lookup whatever the table's size,
which is what bench/l2.py shows (10 vs 100 000 entries).  ``br->fdb_list`` is an hlist
with ``hlist_add_head``, so a dump lists the newest entry first: the dict keeps insertion
order and :func:`fdb_dump_order` walks it backwards.

Ageing: ``br_fdb_cleanup`` runs as delayed work, re-armed for the earliest expiry (at
least 10 ms apart); an entry expires ``hold_time`` after it was last ``updated``
(``ageing_time``, or ``forward_delay`` during an STP topology change).  Static, local
and extern-learned entries never age.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Iterator

from netstack.core.rtnl_fdb import (NLM_F_CREATE, NLM_F_EXCL, NTF_EXT_LEARNED, NTF_STICKY,
                                    NTF_USE, NUD_NOARP, NUD_PERMANENT, NUD_REACHABLE)
from netstack.drivers.bridge.br_private import (
    BR_FDB_ADDED_BY_EXT_LEARN, BR_FDB_ADDED_BY_USER, BR_FDB_DYNAMIC_LEARNED, BR_FDB_LOCAL,
    BR_FDB_LOCKED, BR_FDB_STATIC, BR_FDB_STICKY, BR_STATE_FORWARDING, BR_STATE_LEARNING,
    FdbEntry, NetBridge, NetBridgePort,
)
from netstack.errors import KernelError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.rtnl_fdb import FdbRequest

NUD_STALE = 0x04
#: br_fdb_cleanup: "Cleanup minimum 10 milliseconds apart"
GC_MIN_DELAY_NS = 10_000_000


def is_valid_ether_addr(addr: bytes) -> bool:
    """include/linux/etherdevice.h: not multicast and not all zeros."""
    return not addr[0] & 1 and addr != b"\0\0\0\0\0\0"


def hold_time(br: NetBridge) -> int:
    """``hold_time``: forward_delay while a topology change is in progress."""
    return br.forward_delay if br.topology_change else br.ageing_time


def has_expired(br: NetBridge, f: FdbEntry, now: int) -> bool:
    """``has_expired``: dynamic entries only."""
    if f.flags & (BR_FDB_STATIC | BR_FDB_ADDED_BY_EXT_LEARN):
        return False
    return f.updated + hold_time(br) <= now


def br_fdb_find(br: NetBridge, addr: bytes, vid: int) -> FdbEntry | None:
    """``br_fdb_find`` / ``br_fdb_find_rcu``."""
    return br.fdb.get((addr, vid))


def _now(br: NetBridge) -> int:
    return br.dev.net.world.clock.now  # type: ignore[union-attr]


def fdb_create(br: NetBridge, source: NetBridgePort | None, addr: bytes, vid: int,
               flags: int) -> FdbEntry | None:
    """``fdb_create``: honours ``fdb_max_learned`` for dynamically learned entries."""
    learned = not flags & (BR_FDB_LOCAL | BR_FDB_STATIC | BR_FDB_ADDED_BY_USER
                           | BR_FDB_ADDED_BY_EXT_LEARN)
    if learned:
        if br.fdb_max_learned and br.fdb_n_learned >= br.fdb_max_learned:
            return None
        flags |= BR_FDB_DYNAMIC_LEARNED
        br.fdb_n_learned += 1
    now = _now(br)
    f = FdbEntry(bytes(addr), vid, source, flags, now, now)
    br.fdb[(f.addr, vid)] = f
    return f


def fdb_delete(br: NetBridge, f: FdbEntry) -> None:
    """``fdb_delete``."""
    if br.fdb.get((f.addr, f.vid)) is f:
        del br.fdb[(f.addr, f.vid)]
        if f.flags & BR_FDB_DYNAMIC_LEARNED:
            br.fdb_n_learned -= 1


def fdb_add_local(br: NetBridge, source: NetBridgePort | None, addr: bytes, vid: int) -> None:
    """``fdb_add_local``: an existing local entry wins; a learned one is replaced."""
    if not is_valid_ether_addr(addr):
        return
    f = br_fdb_find(br, addr, vid)
    if f is not None:
        if f.flags & BR_FDB_LOCAL:
            return
        fdb_delete(br, f)
    fdb_create(br, source, addr, vid, BR_FDB_LOCAL | BR_FDB_STATIC)


def fdb_delete_local(br: NetBridge, p: NetBridgePort | None, f: FdbEntry) -> None:
    """``fdb_delete_local``: a local address another port (or the bridge) still owns
    moves there instead of disappearing."""
    vid = f.vid
    for op in br.port_list:
        if op is not p and op.dev.address == f.addr and (
                not vid or vid in op.vlgrp.vlans):
            f.dst = op
            return
    if p is not None and br.dev.address == f.addr and (not vid or vid in br.vlgrp.vlans):
        f.dst = None
        return
    fdb_delete(br, f)


def br_fdb_change_mac_address(br: NetBridge, newaddr: bytes) -> None:
    """``br_fdb_change_mac_address``: the bridge's own (dst NULL) local entries follow
    its MAC, for VID 0 and each bridge VLAN."""
    f = br_fdb_find(br, br.dev.address, 0)
    if f is not None and f.flags & BR_FDB_LOCAL and f.dst is None \
            and not f.flags & BR_FDB_ADDED_BY_USER:
        fdb_delete_local(br, None, f)
    fdb_add_local(br, None, newaddr, 0)
    for vid in br.vlgrp.vlans:
        if not br.vlgrp.vlans[vid].brentry:
            continue
        f = br_fdb_find(br, br.dev.address, vid)
        if f is not None and f.flags & BR_FDB_LOCAL and f.dst is None \
                and not f.flags & BR_FDB_ADDED_BY_USER:
            fdb_delete_local(br, None, f)
        fdb_add_local(br, None, newaddr, vid)


def br_fdb_changeaddr(p: NetBridgePort, newaddr: bytes) -> None:
    """``br_fdb_changeaddr``: a port's MAC changed: its local entries follow."""
    br = p.br
    for f in list(br.fdb.values()):
        if f.dst is p and f.flags & BR_FDB_LOCAL and not f.flags & BR_FDB_ADDED_BY_USER:
            fdb_delete_local(br, p, f)
    fdb_add_local(br, p, newaddr, 0)
    for vid in p.vlgrp.vlans:
        fdb_add_local(br, p, newaddr, vid)


def br_fdb_update(br: NetBridge, source: NetBridgePort, addr: bytes, vid: int,
                  flags: int = 0) -> None:
    """``br_fdb_update``: learning.  A local address seen as a source is a warning only;
    a known address refreshes ``updated`` and roams to ``source`` unless sticky."""
    if hold_time(br) == 0:
        return  # "some users want to always flood"
    f = br.fdb.get((addr, vid))
    if f is not None:
        if f.flags & BR_FDB_LOCAL:
            return
        now = _now(br)
        f.updated = now
        if f.dst is not source and not f.flags & BR_FDB_STICKY:
            f.dst = source
            f.flags &= ~(BR_FDB_ADDED_BY_EXT_LEARN | BR_FDB_LOCKED)
        if flags & BR_FDB_ADDED_BY_USER:
            f.flags |= BR_FDB_ADDED_BY_USER
        return
    fdb_create(br, source, addr, vid, flags)


def br_fdb_delete_by_port(br: NetBridge, p: NetBridgePort | None, vid: int = 0,
                          do_all: bool = False) -> None:
    """``br_fdb_delete_by_port``: flush a port's entries (``do_all`` includes static and
    local ones, as br_del_if does)."""
    for f in list(br.fdb.values()):
        if f.dst is not p:
            continue
        if not do_all:
            if f.flags & BR_FDB_STATIC or (f.flags & BR_FDB_ADDED_BY_EXT_LEARN):
                continue
        if vid and f.vid != vid:
            continue
        if f.flags & BR_FDB_LOCAL:
            fdb_delete_local(br, p, f)
        else:
            fdb_delete(br, f)


def br_fdb_flush_dynamic(br: NetBridge) -> None:
    """``ip link set br0 type bridge fdb_flush`` (IFLA_BR_FDB_FLUSH): ``br_fdb_flush``
    with ``flags_mask = BIT(BR_FDB_STATIC)`` — every entry that is not static goes,
    user-added dynamic and extern_learn ones included (measured)."""
    for f in list(br.fdb.values()):
        if not f.flags & BR_FDB_STATIC:
            fdb_delete(br, f)


def br_fdb_cleanup(br: NetBridge) -> None:
    """``br_fdb_cleanup`` (the gc delayed work): delete what expired and re-arm for the
    earliest remaining expiry, at least 10 ms later."""
    delay = hold_time(br)
    work_delay = delay
    now = _now(br)
    for f in list(br.fdb.values()):
        if f.flags & (BR_FDB_STATIC | BR_FDB_ADDED_BY_EXT_LEARN):
            continue
        this_timer = f.updated + delay
        if this_timer > now:
            work_delay = min(work_delay, this_timer - now)
        else:
            fdb_delete(br, f)
    if br.gc_timer is not None:
        br.gc_timer.mod_in(max(work_delay, GC_MIN_DELAY_NS))


def fdb_dump_order(br: NetBridge) -> Iterator[FdbEntry]:
    """``br_fdb_dump`` order: the hlist head (newest) first."""
    return reversed(list(br.fdb.values()))


# -------------------------------------------------------------- netlink (RTM_*NEIGH)
def fdb_to_nud(br: NetBridge, f: FdbEntry, now: int) -> int:
    """``fdb_to_nud``: the ndm_state a dump reports and fdb_add_entry compares with."""
    if f.flags & BR_FDB_LOCAL:
        return NUD_PERMANENT
    if f.flags & BR_FDB_STATIC:
        return NUD_NOARP
    if has_expired(br, f, now):
        return NUD_STALE
    return NUD_REACHABLE


def br_fdb_add(br: NetBridge, p: NetBridgePort | None, req: "FdbRequest") -> None:
    """``br_fdb_add``: one VID when ``vlan`` is given, else VID 0 and every VLAN of the
    port (or of the bridge) — each through ``__br_fdb_add``."""
    if req.vlan is not None:
        if req.vlan >= 4095:
            raise KernelError(errno.EINVAL, f"invalid vlan id {req.vlan}")
        vg = p.vlgrp if p is not None else br.vlgrp
        if req.vlan and req.vlan not in vg.vlans:
            raise KernelError(errno.EINVAL)
        _br_fdb_add_one(br, p, req, req.vlan)
        return
    _br_fdb_add_one(br, p, req, 0)
    vg = p.vlgrp if p is not None else br.vlgrp
    for vid in list(vg.vlans):
        _br_fdb_add_one(br, p, req, vid)


def _br_fdb_add_one(br: NetBridge, p: NetBridgePort | None, req: "FdbRequest",
                    vid: int) -> None:
    """``__br_fdb_add``: NTF_USE learns, NTF_EXT_LEARNED adds an externally learned entry,
    anything else is ``fdb_add_entry``."""
    if req.flags & NTF_USE:
        if p is None:
            raise KernelError(errno.EINVAL)
        if p.state in (BR_STATE_LEARNING, BR_STATE_FORWARDING):
            br_fdb_update(br, p, req.lladdr, vid, BR_FDB_ADDED_BY_USER)
        return
    if req.flags & NTF_EXT_LEARNED:
        if p is None and not req.state & NUD_PERMANENT:
            raise KernelError(errno.EINVAL, "FDB entry towards bridge must be permanent")
        _external_learn_add(br, p, req.lladdr, vid)
        return
    _fdb_add_entry(br, p, req.lladdr, vid, req.state, req.flags, req.nlflags)


def _external_learn_add(br: NetBridge, p: NetBridgePort | None, addr: bytes,
                        vid: int) -> None:
    """``br_fdb_external_learn_add`` from user space (swdev_notify false)."""
    now = _now(br)
    f = br_fdb_find(br, addr, vid)
    if f is None:
        f = fdb_create(br, p, addr, vid, BR_FDB_ADDED_BY_EXT_LEARN | BR_FDB_ADDED_BY_USER)
        return
    f.updated = now
    f.dst = p
    f.flags |= BR_FDB_ADDED_BY_EXT_LEARN | BR_FDB_ADDED_BY_USER
    if f.flags & BR_FDB_DYNAMIC_LEARNED:
        f.flags &= ~BR_FDB_DYNAMIC_LEARNED
        br.fdb_n_learned -= 1


def _fdb_add_entry(br: NetBridge, source: NetBridgePort | None, addr: bytes, vid: int,
                   state: int, flags: int, nlflags: int) -> None:
    """``fdb_add_entry`` in its order of checks (EPERM, EINVAL, ENOENT, EEXIST)."""
    if source is not None and not state & (NUD_PERMANENT | NUD_NOARP) \
            and source.state not in (BR_STATE_LEARNING, BR_STATE_FORWARDING):
        # "If the port cannot learn allow only local and static entries"
        raise KernelError(errno.EPERM)
    if source is None and not state & NUD_PERMANENT:
        raise KernelError(errno.EINVAL)
    if flags & NTF_STICKY and state & NUD_PERMANENT:
        raise KernelError(errno.EINVAL)
    now = _now(br)
    f = br_fdb_find(br, addr, vid)
    modified = False
    if f is None:
        if not nlflags & NLM_F_CREATE:
            raise KernelError(errno.ENOENT)
        f = fdb_create(br, source, addr, vid, BR_FDB_ADDED_BY_USER)
        if f is None:
            raise KernelError(errno.ENOMEM)
        modified = True
    else:
        if nlflags & NLM_F_EXCL:
            raise KernelError(errno.EEXIST)
        if f.dst is not source:
            f.dst = source
            modified = True
    if fdb_to_nud(br, f, now) != state:
        if state & NUD_PERMANENT:
            f.flags |= BR_FDB_LOCAL | BR_FDB_STATIC
        elif state & NUD_NOARP:
            f.flags = (f.flags & ~BR_FDB_LOCAL) | BR_FDB_STATIC
        else:
            f.flags &= ~(BR_FDB_LOCAL | BR_FDB_STATIC)
        modified = True
    if bool(flags & NTF_STICKY) != bool(f.flags & BR_FDB_STICKY):
        f.flags ^= BR_FDB_STICKY
        modified = True
    if f.flags & BR_FDB_DYNAMIC_LEARNED:
        f.flags &= ~BR_FDB_DYNAMIC_LEARNED
        br.fdb_n_learned -= 1
    f.flags |= BR_FDB_ADDED_BY_USER
    f.used = now
    if modified:
        f.updated = now


def br_fdb_delete(br: NetBridge, p: NetBridgePort | None, req: "FdbRequest") -> None:
    """``br_fdb_delete`` → ``__br_fdb_delete``/``fdb_delete_by_addr_and_port``: ENOENT
    when no entry for (addr, vid) belongs to ``p``; without ``vlan`` VID 0 and every
    VLAN of the port are tried and the call fails only if all did."""
    addr = req.lladdr
    if req.vlan is not None:
        vids = [req.vlan]
    else:
        vg = p.vlgrp if p is not None else br.vlgrp
        vids = [0] + list(vg.vlans)
    ok = False
    for vid in vids:
        f = br_fdb_find(br, addr, vid)
        if f is None or f.dst is not p:
            continue
        fdb_delete(br, f)
        ok = True
    if not ok:
        raise KernelError(errno.ENOENT)


# ----------------------------------------------------- RTM_GETNEIGH / bulk RTM_DELNEIGH
def br_fdb_get(br: NetBridge, addr: bytes, vid: int) -> FdbEntry:
    """``br_fdb_get`` (the bridge's ``ndo_fdb_get``): an exact (addr, vid) lookup in the
    whole table — whichever port the request named, the entry is reported wherever it
    lives (measured: ``bridge fdb get MAC dev p1`` answers for an entry on p2)."""
    f = br_fdb_find(br, addr, vid)
    if f is None:
        raise KernelError(errno.ENOENT, "Fdb entry not found")
    return f


#: br_fdb.c: what a bulk delete may match on (FDB_FLUSH_ALLOWED_NDM_STATES/_FLAGS)
NTF_OFFLOADED = 0x20
FDB_FLUSH_ALLOWED_NDM_STATES = NUD_PERMANENT | NUD_NOARP
FDB_FLUSH_ALLOWED_NDM_FLAGS = NTF_USE | NTF_EXT_LEARNED | NTF_OFFLOADED | NTF_STICKY


def ndm_state_to_fdb_flags(state: int) -> int:
    """``__ndm_state_to_fdb_flags``: PERMANENT is a local entry, NOARP a static one."""
    flags = 0
    if state & NUD_PERMANENT:
        flags |= BR_FDB_LOCAL
    if state & NUD_NOARP:
        flags |= BR_FDB_STATIC
    return flags


def ndm_flags_to_fdb_flags(ndm_flags: int) -> int:
    """``__ndm_flags_to_fdb_flags``: NTF_USE stands for "added by user"."""
    flags = 0
    if ndm_flags & NTF_USE:
        flags |= BR_FDB_ADDED_BY_USER
    if ndm_flags & NTF_EXT_LEARNED:
        flags |= BR_FDB_ADDED_BY_EXT_LEARN
    if ndm_flags & NTF_OFFLOADED:
        from netstack.drivers.bridge.br_private import BR_FDB_OFFLOADED
        flags |= BR_FDB_OFFLOADED
    if ndm_flags & NTF_STICKY:
        flags |= BR_FDB_STICKY
    return flags


def br_fdb_flush(br: NetBridge, flags: int, flags_mask: int, port_ifindex: int = 0,
                 vid: int = 0) -> None:
    """``br_fdb_flush`` with a ``net_bridge_fdb_flush_desc``: every entry whose VID, port
    (the bridge's own ifindex for entries without a port) and masked flags match is
    deleted with ``fdb_delete`` — local entries included, they are not moved elsewhere
    (measured: ``bridge fdb flush dev p1 master`` removes p1's own address too)."""
    for f in list(fdb_dump_order(br)):
        if vid and vid != f.vid:
            continue
        ifidx = f.dst.dev.ifindex if f.dst is not None else br.dev.ifindex
        if port_ifindex and port_ifindex != ifidx:
            continue
        if flags_mask and (f.flags & flags_mask) != flags:
            continue
        fdb_delete(br, f)


def br_fdb_delete_bulk(br: NetBridge, p: NetBridgePort | None, ndm_state: int,
                       ndm_flags: int, state_mask: int | None, flags_mask: int | None,
                       port_dev: "object | None", vid: int) -> None:
    """``br_fdb_delete_bulk`` (``ndo_fdb_del_bulk``): ``p`` is the port the request was
    sent to with NTF_MASTER (it becomes the port filter unless NDA_IFINDEX names one),
    ``port_dev`` the NDA_IFINDEX device (validated as ``__fdb_flush_validate_ifindex``).
    Messages are NL_SET_ERR_MSG_MOD's, hence the "bridge: " prefix."""
    from netstack.drivers.bridge.br_private import br_port_get
    if ndm_flags & ~FDB_FLUSH_ALLOWED_NDM_FLAGS:
        raise KernelError(errno.EINVAL, "bridge: Unsupported fdb flush ndm flag bits set")
    if ndm_state & ~FDB_FLUSH_ALLOWED_NDM_STATES:
        raise KernelError(errno.EINVAL, "bridge: Unsupported fdb flush ndm state bits set")
    flags = ndm_state_to_fdb_flags(ndm_state) | ndm_flags_to_fdb_flags(ndm_flags)
    mask = 0
    if state_mask is not None:
        mask |= ndm_state_to_fdb_flags(state_mask)
    if flags_mask is not None:
        mask |= ndm_flags_to_fdb_flags(flags_mask)
    port_ifindex = 0
    if port_dev is not None:
        from netstack.drivers.bridge.br_device import BridgeDevice
        is_master = isinstance(port_dev, BridgeDevice)
        pp = br_port_get(port_dev)  # type: ignore[arg-type]
        if not is_master and pp is None:
            raise KernelError(errno.EINVAL, "bridge: Flush device is not a bridge or bridge port")
        if is_master and port_dev is not br.dev:
            raise KernelError(errno.EINVAL,
                              "bridge: Flush bridge device does not match target bridge device")
        if pp is not None and pp.br is not br:
            raise KernelError(errno.EINVAL, "bridge: Port belongs to a different bridge device")
        port_ifindex = port_dev.ifindex  # type: ignore[attr-defined]
    elif p is not None:
        port_ifindex = p.dev.ifindex
    br_fdb_flush(br, flags, mask, port_ifindex, vid)
