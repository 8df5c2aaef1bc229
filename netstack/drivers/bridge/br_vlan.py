"""VLAN filtering (net/bridge/br_vlan.c), as a kernel built with
CONFIG_BRIDGE_VLAN_FILTERING=y.

Why it looks like this: with ``vlan_filtering 0`` every check below returns at its first
line, as in the kernel (``br_allowed_ingress`` with BROPT_VLAN_ENABLED clear: VID 0, no
filtering, tags pass through untouched).  With filtering on, the frame's VLAN is its tag
(moved out of band by the core's ``skb_vlan_untag``) or the ingress port's pvid; the
egress port's entry decides whether it leaves tagged or untagged.

Each port (and the bridge itself, for its local traffic) has a :class:`VlanGroup`;
``nbp_vlan_init`` gives a new port the bridge's ``default_pvid`` as PVID + untagged, and
the BRENTRY flag makes the bridge device a member too (``br_vlan_add``).
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from netstack.core.drop_reason import kfree_skb_reason
from netstack.core.vlan_core import (vlan_hwaccel_clear_tag, vlan_hwaccel_push_inside,
                                     vlan_hwaccel_put_tag)
from netstack.drivers.bridge.br_private import (
    BR_STATE_FORWARDING, BRIDGE_VLAN_INFO_BRENTRY, BRIDGE_VLAN_INFO_MASTER,
    BRIDGE_VLAN_INFO_PVID, BRIDGE_VLAN_INFO_UNTAGGED, BridgeVlan, NetBridge, NetBridgePort,
    VlanGroup,
)
from netstack.errors import KernelError

if TYPE_CHECKING:  # pragma: no cover
    from netstack.packet.skb import Packet

VLAN_VID_MASK = 0x0FFF
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8


def br_get_pvid(vg: VlanGroup | None) -> int:
    return vg.pvid if vg is not None else 0


def br_allowed_ingress(br: NetBridge, vg: VlanGroup, pkt: "Packet") -> tuple[bool, int]:
    """``br_allowed_ingress``/``__allowed_ingress``: (allowed, vid).  A refused frame has
    been dropped here (the caller must not touch it)."""
    cb = pkt.cb
    if not br.vlan_enabled:
        cb.vlan_filtered = False
        return True, 0
    cb.vlan_filtered = True
    vid = 0
    tagged = False
    if pkt.vlan_proto:
        if pkt.vlan_proto != br.vlan_proto:
            # protocol mismatch: the tag goes back into the frame (skb_push ETH_HLEN,
            # vlan_insert_tag_set_proto, skb_pull) and the frame counts as untagged
            pkt.data -= 14
            vlan_hwaccel_push_inside(pkt)
            pkt.data += 14
        else:
            vid = pkt.vlan_tci & VLAN_VID_MASK
            tagged = True
    if not vid:
        pvid = br_get_pvid(vg)
        if not pvid:
            kfree_skb_reason(pkt, "NOT_SPECIFIED", br.dev.net)
            return False, 0
        vid = pvid
        if not tagged:
            vlan_hwaccel_put_tag(pkt, br.vlan_proto, pvid)
        else:
            pkt.vlan_tci |= pvid  # priority-tagged: keep PCP, set VID
    v = vg.vlans.get(vid)
    if v is None or not _should_use(v):
        kfree_skb_reason(pkt, "NOT_SPECIFIED", br.dev.net)
        return False, vid
    return True, vid


def _should_use(v: BridgeVlan) -> bool:
    """``br_vlan_should_use``: a master entry counts only if it is a bridge entry."""
    if v.flags & BRIDGE_VLAN_INFO_MASTER:
        return v.brentry
    return True


def br_allowed_egress(vg: VlanGroup, pkt: "Packet") -> bool:
    """``br_allowed_egress``: the frame's VID must be a usable member of the egress group
    in forwarding state."""
    if not pkt.cb.vlan_filtered:
        return True
    vid = pkt.vlan_tci & VLAN_VID_MASK
    v = vg.vlans.get(vid)
    return v is not None and _should_use(v) and v.state == BR_STATE_FORWARDING


def br_handle_vlan(br: NetBridge, p: NetBridgePort | None, vg: VlanGroup,
                   pkt: "Packet") -> bool:
    """``br_handle_vlan``: on egress (to a port, or up to the bridge device) strip the tag
    when the VLAN is untagged there.  False: dropped."""
    if not pkt.cb.vlan_filtered:
        return True
    vid = pkt.vlan_tci & VLAN_VID_MASK
    v = vg.vlans.get(vid)
    if v is None or not _should_use(v):
        if br.dev.flags & 0x100 and pkt.dev is br.dev:  # IFF_PROMISC, to the bridge
            return True
        kfree_skb_reason(pkt, "NOT_SPECIFIED", br.dev.net)
        return False
    if v.flags & BRIDGE_VLAN_INFO_UNTAGGED:
        vlan_hwaccel_clear_tag(pkt)
    return True


def br_should_learn(p: NetBridgePort, pkt: "Packet") -> tuple[bool, int]:
    """``br_should_learn`` (link-local frames): learn on the frame's VID or the pvid."""
    br = p.br
    if not br.vlan_enabled:
        return True, 0
    vg = p.vlgrp
    if not vg.vlans:
        return False, 0
    vid = pkt.vlan_tci & VLAN_VID_MASK if pkt.vlan_proto == br.vlan_proto else 0
    if not vid:
        vid = br_get_pvid(vg)
        if not vid:
            return False, 0
        return True, vid
    return (vid in vg.vlans), vid


# ------------------------------------------------------------------ configuration
def _vlan_add(br: NetBridge, vg: VlanGroup, vid: int, flags: int) -> bool:
    """Add or update ``vid`` in ``vg`` with BRIDGE_VLAN_INFO_PVID/UNTAGGED semantics
    (``__vlan_add_flags``): PVID moves the group's pvid here, its absence clears it if it
    was here.  True when the entry is new."""
    v = vg.vlans.get(vid)
    new = v is None
    if v is None:
        v = BridgeVlan(vid)
        vg.vlans[vid] = v
        vg.vlans = dict(sorted(vg.vlans.items()))
    if flags & BRIDGE_VLAN_INFO_PVID:
        vg.pvid = vid
    elif vg.pvid == vid:
        vg.pvid = 0
    keep = v.flags & BRIDGE_VLAN_INFO_MASTER
    v.flags = keep | (flags & (BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED))
    if vg.pvid == vid:
        v.flags |= BRIDGE_VLAN_INFO_PVID
    else:
        v.flags &= ~BRIDGE_VLAN_INFO_PVID
    return new


def _check_vid(vid: int) -> None:
    if vid < 1 or vid >= 4095:
        raise KernelError(errno.EINVAL, "Vlan id is invalid")


def nbp_vlan_add(p: NetBridgePort, vid: int, flags: int) -> None:
    """``nbp_vlan_add``: a port VLAN; the bridge gets a (non-brentry) master entry for it,
    a brentry one when BRIDGE_VLAN_INFO_BRENTRY is asked; the port's MAC gets a local FDB
    entry in that VLAN."""
    from netstack.drivers.bridge.br_fdb import fdb_add_local
    _check_vid(vid)
    br = p.br
    m = br.vlgrp.vlans.get(vid)
    if m is None:
        m = BridgeVlan(vid, BRIDGE_VLAN_INFO_MASTER)
        br.vlgrp.vlans[vid] = m
        br.vlgrp.vlans = dict(sorted(br.vlgrp.vlans.items()))
    if flags & BRIDGE_VLAN_INFO_BRENTRY and not m.brentry:
        m.brentry = True
        m.flags |= flags & (BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED)
        if flags & BRIDGE_VLAN_INFO_PVID:
            br.vlgrp.pvid = vid
        fdb_add_local(br, None, br.dev.address, vid)
    _vlan_add(br, p.vlgrp, vid, flags)
    fdb_add_local(br, p, p.dev.address, vid)
    from netstack.drivers.vlan import nbp_vlan_set_vlan_dev_state
    nbp_vlan_set_vlan_dev_state(p, vid)  # __vlan_add: a bridge-bound vlan device's carrier


def nbp_vlan_delete(p: NetBridgePort, vid: int) -> None:
    """``nbp_vlan_delete``: ENOENT if absent; the port's entries in that VLAN go."""
    from netstack.drivers.bridge.br_fdb import br_fdb_delete_by_port, fdb_delete
    if vid not in p.vlgrp.vlans:
        raise KernelError(errno.ENOENT)
    del p.vlgrp.vlans[vid]
    if p.vlgrp.pvid == vid:
        p.vlgrp.pvid = 0
    f = p.br.fdb.get((p.dev.address, vid))
    if f is not None and f.dst is p:
        fdb_delete(p.br, f)
    br_fdb_delete_by_port(p.br, p, vid, False)
    _master_put(p.br, vid)
    from netstack.drivers.vlan import nbp_vlan_set_vlan_dev_state
    nbp_vlan_set_vlan_dev_state(p, vid)  # __vlan_del: a bridge-bound vlan device's carrier


def _master_put(br: NetBridge, vid: int) -> None:
    """Drop the bridge's master entry when neither the bridge nor a port uses it."""
    m = br.vlgrp.vlans.get(vid)
    if m is None or m.brentry:
        return
    if any(vid in q.vlgrp.vlans for q in br.port_list):
        return
    del br.vlgrp.vlans[vid]


def br_vlan_add(br: NetBridge, vid: int, flags: int) -> None:
    """``br_vlan_add`` (``bridge vlan add dev br0 vid N self``): the bridge itself joins."""
    from netstack.drivers.bridge.br_fdb import fdb_add_local
    _check_vid(vid)
    v = br.vlgrp.vlans.get(vid)
    if v is None:
        v = BridgeVlan(vid, BRIDGE_VLAN_INFO_MASTER)
        br.vlgrp.vlans[vid] = v
        br.vlgrp.vlans = dict(sorted(br.vlgrp.vlans.items()))
    if not v.brentry:
        v.brentry = True
        fdb_add_local(br, None, br.dev.address, vid)
    if flags & BRIDGE_VLAN_INFO_PVID:
        br.vlgrp.pvid = vid
    elif br.vlgrp.pvid == vid:
        br.vlgrp.pvid = 0
    v.flags = BRIDGE_VLAN_INFO_MASTER | (flags & BRIDGE_VLAN_INFO_UNTAGGED) | (
        BRIDGE_VLAN_INFO_PVID if br.vlgrp.pvid == vid else 0)


def br_vlan_delete(br: NetBridge, vid: int) -> None:
    """``br_vlan_delete``: the bridge leaves ``vid`` (the master entry stays while ports
    use it)."""
    from netstack.drivers.bridge.br_fdb import br_fdb_find, fdb_delete
    v = br.vlgrp.vlans.get(vid)
    if v is None or not v.brentry:
        raise KernelError(errno.ENOENT)
    f = br_fdb_find(br, br.dev.address, vid)
    if f is not None and f.dst is None:
        fdb_delete(br, f)
    v.brentry = False
    v.flags = BRIDGE_VLAN_INFO_MASTER
    if br.vlgrp.pvid == vid:
        br.vlgrp.pvid = 0
    _master_put(br, vid)


def nbp_vlan_init(p: NetBridgePort) -> None:
    """``nbp_vlan_init``: the default pvid as PVID + untagged (+ BRENTRY)."""
    if p.br.default_pvid:
        nbp_vlan_add(p, p.br.default_pvid, BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED
                     | BRIDGE_VLAN_INFO_BRENTRY)


def br_vlan_filter_toggle(br: NetBridge, on: bool) -> None:
    """``br_vlan_filter_toggle``."""
    br.vlan_enabled = on


def br_vlan_set_proto(br: NetBridge, proto: int) -> None:
    """``__br_vlan_set_proto``: only 802.1Q and 802.1ad."""
    if proto not in (ETH_P_8021Q, ETH_P_8021AD):
        raise KernelError(errno.EPROTONOSUPPORT)
    br.vlan_proto = proto


def _is_default_pvid(vg: VlanGroup, vid: int) -> bool:
    """``vlan_default_pvid``: ``vid`` is the group's pvid, untagged and PVID there."""
    v = vg.vlans.get(vid)
    return (v is not None and vg.pvid == vid
            and v.flags & BRIDGE_VLAN_INFO_UNTAGGED != 0)


def br_vlan_set_default_pvid(br: NetBridge, pvid: int) -> None:
    """``__br_vlan_set_default_pvid`` / ``br_vlan_disable_default_pvid`` (pvid 0): the
    bridge and every port whose pvid is still the untouched old default move to the new
    one; a port that already has the new VID, or changed the old one, is left alone."""
    if pvid >= 4095:
        raise KernelError(errno.EINVAL, "Invalid default PVID")
    old = br.default_pvid
    if pvid == old:
        return
    full = BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED
    bv = br.vlgrp.vlans.get(old) if old else None
    old_is_default = not old or (bv is not None and bv.brentry and br.vlgrp.pvid == old
                                 and bv.flags & BRIDGE_VLAN_INFO_UNTAGGED)
    new_ent = br.vlgrp.vlans.get(pvid) if pvid else None
    if old_is_default and (new_ent is None or not new_ent.brentry):
        if pvid:
            br_vlan_add(br, pvid, full)
        if old and bv is not None and bv.brentry:
            br_vlan_delete(br, old)
    for p in br.port_list:
        if (old and not _is_default_pvid(p.vlgrp, old)) or (pvid and pvid in p.vlgrp.vlans):
            continue
        if pvid:
            nbp_vlan_add(p, pvid, full)
        if old and old in p.vlgrp.vlans:
            nbp_vlan_delete(p, old)
    br.default_pvid = pvid
