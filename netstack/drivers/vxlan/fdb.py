"""The VXLAN forwarding database (drivers/net/vxlan/vxlan_core.c: ``vxlan_fdb_*``,
``vxlan_snoop``, ``vxlan_cleanup``; Linux 6.18).

Why its own table: a VXLAN device maps inner MAC addresses to remote tunnel endpoints
(``struct vxlan_fdb`` with a list of ``struct vxlan_rdst``), independent of any bridge.
The all-zeros MAC is the default destination (created from ``remote``/``group``);
``bridge fdb append 00:00:00:00:00:00 dev vx dst IP`` adds head-end replication targets.

Order: the 6.18 table keeps entries on one list with the newest first (``hlist_add_head``
on ``vxlan->fdb_list``), which is the order ``bridge fdb show`` prints — measured on the
kernel.  Remotes of one entry print in insertion order (``list_add_tail_rcu``).

Learning (``vxlan_snoop``): a frame from an unknown source MAC creates a REACHABLE entry
pointing at the outer source address; a known dynamic entry migrates; a static
(PERMANENT/NOARP) one makes the frame a drop (VXLAN_ENTRY_EXISTS).  Dynamic entries age
out after ``ageing`` seconds (``vxlan_cleanup``, run every FDB_AGE_INTERVAL = 10 s).
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netstack.core.rtnl_fdb import (NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE,
                                    NTF_EXT_LEARNED, NTF_MASTER, NTF_OFFLOADED, NTF_ROUTER,
                                    NTF_SELF, NTF_STICKY, NTF_USE, NUD_NOARP, NUD_PERMANENT,
                                    NUD_REACHABLE, FdbRequest)
from netstack.errors import KernelError, NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.drivers.vxlan.device import VxlanDevice

ALL_ZEROS_MAC = b"\0" * 6
NUD_STALE = 0x04
#: vxlan_cleanup's period (drivers/net/vxlan/vxlan_private.h FDB_AGE_INTERVAL = 10*HZ).
FDB_AGE_INTERVAL_S = 10
#: flags a user may set with ``bridge fdb`` on a vxlan entry (vxlan_fdb_update_existing)
NTF_VXLAN_ADDED_BY_USER = 0x100


@dataclass
class Rdst:
    """``struct vxlan_rdst``: one remote (address, port, VNI, outgoing ifindex)."""

    ip: bytes
    port: int
    vni: int
    ifindex: int = 0


@dataclass
class FdbEntry:
    """``struct vxlan_fdb``."""

    mac: bytes
    src_vni: int
    state: int
    flags: int
    remotes: list[Rdst] = field(default_factory=list)
    updated: int = 0
    used: int = 0


def is_multicast_ip(ip: bytes) -> bool:
    """``vxlan_addr_multicast``."""
    return (len(ip) == 4 and 224 <= ip[0] <= 239) or (len(ip) == 16 and ip[0] == 0xFF)


def is_any(ip: bytes) -> bool:
    """``vxlan_addr_any``."""
    return not any(ip)


class VxlanFdb:
    """The per-device table: newest entry first, keyed by (MAC, source VNI)."""

    def __init__(self, dev: "VxlanDevice") -> None:
        self.dev = dev
        self.entries: list[FdbEntry] = []
        self.timer: Any = None

    # ----------------------------------------------------------------- lookups
    def find(self, mac: bytes, vni: int) -> FdbEntry | None:
        """``__vxlan_find_mac``: without VNI filtering the source VNI is not part of the
        key (``vxlan_find_mac`` ignores it for a single-VNI device)."""
        for f in self.entries:
            if f.mac == mac:
                return f
        return None

    def lookup_tx(self, mac: bytes, vni: int) -> FdbEntry | None:
        """``vxlan_find_mac`` on transmit: marks the entry used (``f->used = jiffies``)."""
        f = self.find(mac, vni)
        if f is not None:
            f.used = self._now()
        return f

    def _now(self) -> int:
        net = self.dev.net
        return net.world.clock.now if net is not None else 0

    # ------------------------------------------------------------------ updates
    def create(self, mac: bytes, rdst: Rdst, state: int, flags: int, src_vni: int) -> FdbEntry:
        """``vxlan_fdb_create`` + insertion at the head."""
        f = FdbEntry(mac, src_vni, state, flags, [rdst], self._now(), self._now())
        self.entries.insert(0, f)
        self._arm()
        return f

    def destroy(self, f: FdbEntry) -> None:
        """``vxlan_fdb_destroy``."""
        if f in self.entries:
            self.entries.remove(f)

    def flush(self, do_all: bool) -> None:
        """``vxlan_flush``: on stop only dynamic entries go (``do_all`` false keeps the
        permanent ones and the default entry); on delete everything."""
        keep = []
        for f in self.entries:
            if not do_all and (f.state & (NUD_PERMANENT | NUD_NOARP)):
                keep.append(f)
            elif not do_all and f.mac == ALL_ZEROS_MAC:
                keep.append(f)
        self.entries = keep

    def update(self, mac: bytes, ip: bytes, state: int, nlflags: int, port: int, src_vni: int,
               vni: int, ifindex: int, ndm_flags: int) -> None:
        """``vxlan_fdb_update`` → ``vxlan_fdb_update_existing`` / ``_create`` with the
        kernel's errno: EEXIST for an exclusive add, EOPNOTSUPP for replacing a
        multicast/all-zeros entry, ENOENT without NLM_F_CREATE."""
        fdb_flags = ndm_flags & ~(NTF_USE | NTF_SELF | NTF_MASTER)
        rd = Rdst(ip, port, vni, ifindex)
        f = self.find(mac, src_vni)
        if f is not None:
            if nlflags & NLM_F_EXCL:
                raise KernelError(errno.EEXIST)
            now = self._now()
            if f.state != state:
                f.state = state
                f.updated = now
            if f.flags != fdb_flags:
                f.flags = fdb_flags
                f.updated = now
            if nlflags & NLM_F_REPLACE:
                if is_multicast_mac(f.mac) or f.mac == ALL_ZEROS_MAC:
                    raise KernelError(errno.EOPNOTSUPP, "Cannot replace non-unicast fdb entries")
                if not f.remotes:
                    f.remotes.append(rd)
                elif f.remotes[0] != rd:
                    if rd in f.remotes:
                        f.remotes.remove(rd)
                    f.remotes[0] = rd
            if nlflags & NLM_F_APPEND and (is_multicast_mac(f.mac) or f.mac == ALL_ZEROS_MAC):
                if rd not in f.remotes:
                    f.remotes.append(rd)
            if ndm_flags & NTF_USE:
                f.used = now
            return
        if not nlflags & NLM_F_CREATE:
            raise KernelError(errno.ENOENT)
        if nlflags & NLM_F_REPLACE and (is_multicast_mac(mac) or mac == ALL_ZEROS_MAC):
            raise KernelError(errno.EOPNOTSUPP)
        if self.dev.cfg.addrmax and len(self.entries) >= self.dev.cfg.addrmax:
            raise KernelError(errno.ENOSPC)
        self.create(mac, rd, state, fdb_flags, src_vni)

    # ------------------------------------------------------------------ learning
    def snoop(self, src_ip: bytes, src_mac: bytes, src_ifindex: int, vni: int) -> str | None:
        """``vxlan_snoop``: learn or migrate; returns a drop reason when the frame must
        be dropped (static entry elsewhere)."""
        ifindex = 0
        if len(src_ip) == 16 and src_ip[0] == 0xFE and (src_ip[1] & 0xC0) == 0x80:
            ifindex = src_ifindex
        f = self.find(src_mac, vni)
        if f is not None:
            # 6.16+: every frame from a known source refreshes ``updated``, so an entry in
            # use does not age out (a static one included: ageing skips those anyway)
            f.updated = self._now()
            rd = f.remotes[0] if f.remotes else None
            if rd is not None and rd.ip == src_ip and rd.ifindex == ifindex:
                return None
            if f.state & (NUD_PERMANENT | NUD_NOARP):
                return "VXLAN_ENTRY_EXISTS"
            if rd is not None:
                rd.ip = src_ip
            return None
        if self.dev.running():
            cfg = self.dev.cfg
            self.create(src_mac, Rdst(src_ip, cfg.dst_port, cfg.vni, ifindex),
                        NUD_REACHABLE, 0, vni)
        return None

    # ------------------------------------------------------------------- ageing
    def _arm(self) -> None:
        """Start ``vxlan_cleanup`` (every FDB_AGE_INTERVAL) while the device is up."""
        dev = self.dev
        if dev.net is None or not dev.is_up:
            return
        if self.timer is None:
            self.timer = dev.net.world.clock.timer(self.cleanup)
            self.timer.mod_in(FDB_AGE_INTERVAL_S * 1_000_000_000)

    def cleanup(self) -> None:
        """``vxlan_cleanup``: dynamic entries idle for ``ageing`` seconds are removed."""
        self.timer = None
        dev = self.dev
        if dev.net is None or not dev.is_up:
            return
        now = self._now()
        timeout = dev.cfg.age_interval * 1_000_000_000
        for f in list(self.entries):
            if f.state & (NUD_PERMANENT | NUD_NOARP):
                continue
            if f.flags & NTF_EXT_LEARNED:
                continue
            if f.updated + timeout <= now:
                self.entries.remove(f)
        self._arm()

    # --------------------------------------------------------------------- dump
    def dump(self) -> list[dict[str, Any]]:
        """``vxlan_fdb_dump`` → iproute2 ``print_fdb`` JSON keys, one object per remote."""
        dev = self.dev
        cfg = dev.cfg
        out: list[dict[str, Any]] = []
        for f in self.entries:
            for rd in f.remotes:
                d: dict[str, Any] = {"mac": ":".join(f"{b:02x}" for b in f.mac),
                                     "ifname": dev.name}
                d["dst"] = _ip_str(rd.ip)
                if rd.port != cfg.dst_port:
                    d["port"] = rd.port
                if rd.vni != cfg.vni:
                    d["vni"] = rd.vni
                if rd.ifindex:
                    lnet = dev.link_net or dev.net
                    lower = lnet.get_by_index(rd.ifindex) if lnet is not None else None
                    d["viaIf"] = lower.name if lower is not None else str(rd.ifindex)
                flags = ["self"]
                if f.flags & NTF_ROUTER:
                    flags.append("router")
                if f.flags & NTF_EXT_LEARNED:
                    flags.append("extern_learn")
                if f.flags & NTF_OFFLOADED:
                    flags.append("offload")
                if f.flags & NTF_STICKY:
                    flags.append("sticky")
                d["flags"] = flags
                d["state"] = state_n2a(f.state)
                out.append(d)
        return out


def is_multicast_mac(mac: bytes) -> bool:
    """``is_multicast_ether_addr``."""
    return bool(mac[0] & 1)


def state_n2a(s: int) -> str:
    """bridge/fdb.c ``state_n2a`` (JSON form)."""
    if s & NUD_PERMANENT:
        return "permanent"
    if s & NUD_NOARP:
        return "static"
    if s & NUD_STALE:
        return "stale"
    if s & NUD_REACHABLE:
        return ""
    return f"{s:#x}"


def _ip_str(ip: bytes) -> str:
    import ipaddress
    return str(ipaddress.ip_address(ip))


def fdb_request_apply(dev: "VxlanDevice", req: FdbRequest, delete: bool) -> None:
    """``vxlan_fdb_add`` / ``vxlan_fdb_delete`` from a ``bridge fdb`` request."""
    cfg = dev.cfg
    if req.nhid is not None:
        raise NotSupported("bridge fdb ... nhid on vxlan")
    fam_len = len(cfg.remote) if cfg.remote else (16 if cfg.ipv6 else 4)
    if req.dst is not None:
        ip = req.dst
    else:
        ip = b"\0" * fam_len
    port = req.port if req.port is not None else cfg.dst_port
    vni = req.vni if req.vni is not None else cfg.vni
    src_vni = req.src_vni if req.src_vni is not None else cfg.vni
    ifindex = 0
    if req.via is not None:
        lower = dev.net.get(req.via) if dev.net is not None else None
        if lower is None:
            raise KernelError(errno.EADDRNOTAVAIL, "Device not found")
        ifindex = lower.ifindex
    if delete:
        f = dev.fdb.find(req.lladdr, src_vni)
        if f is None:
            raise KernelError(errno.ENOENT)
        if not is_any(ip):
            rd = next((r for r in f.remotes if r.ip == ip and r.port == port and
                       r.vni == vni and r.ifindex == ifindex), None)
            if rd is None:
                return
            if len(f.remotes) > 1:
                f.remotes.remove(rd)
                return
        dev.fdb.destroy(f)
        return
    if not req.state & (NUD_PERMANENT | NUD_REACHABLE):
        raise KernelError(errno.EINVAL)
    if req.dst is None:
        raise KernelError(errno.EINVAL)
    if len(ip) != fam_len:
        raise KernelError(errno.EAFNOSUPPORT)
    dev.fdb.update(req.lladdr, ip, req.state, req.nlflags, port, src_vni, vni, ifindex,
                   req.flags)
