"""The MDB's netlink face: RTM_NEWMDB/DELMDB/GETMDB (net/bridge/br_mdb.c) and ``bridge mdb``
(iproute2 bridge/mdb.c).

Why here: br_mdb.c is the kernel's netlink face of the MDB (RTM_GETMDB/NEWMDB/DELMDB);
this module is netstack's: it parses ``bridge mdb show|add|del`` and prints what iproute2
6.x prints for the dump, measured on Linux 6.18:

* text, one line per entry: ``dev BR port P grp G`` + ``permanent|temp``, with ``-d``
  `` proto kernel|static `` (port entries only), flags (`` fast_leave`` …), `` vid N``
  when non-zero, with ``-s`` the remaining membership time (`` %4d.%02d``); with ``-d``
  a ``router ports on BR: P …`` line per bridge that has router ports (with ``-s`` one
  line per port with its router timer and ``temp``/``permanent``);
* ``-j``: one object ``{"mdb": [...], "router": {...}}`` for the whole dump (keys
  index, dev, port, grp, state, [protocol], flags, [vid], [timer]); ``router`` lists the
  router ports only with ``-d``;
* errors as the kernel's extack: a host entry with ``permanent``, a duplicate port
  entry, a link-local group, snooping disabled, an invalid VLAN id; deleting a missing
  entry is ``RTNETLINK answers: Invalid argument``.
"""
from __future__ import annotations

import errno
import ipaddress
from typing import TYPE_CHECKING, Any

from dataclasses import dataclass

from netstack.drivers.bridge import br_multicast as bm
from netstack.errors import KernelError, NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.drivers.bridge.br_private import NetBridge, NetBridgePort

__all__ = ["MdbDumpEntry", "br_mdb_add", "br_mdb_del", "br_mdb_dump", "do_mdb", "mdb_show_lines"]

RTPROT_NAMES = {2: "kernel", 3: "boot", 4: "static"}


# ------------------------------------------------------------------ MDB requests
def _parse_group(text: str) -> tuple[int, bytes]:
    a = ipaddress.ip_address(text)
    return (bm.ETH_P_IP, a.packed) if a.version == 4 else (bm.ETH_P_IPV6, a.packed)


def br_mdb_add(br: NetBridge, port: NetBridgePort | None, grp: str, vid: int = 0,
               permanent: bool = False) -> None:
    """``br_mdb_add`` (``bridge mdb add dev BR port P grp G [permanent|temp] [vid V]``):
    a port entry (or, with ``port`` None, the bridge's host entry); EINVAL for a
    non-multicast or link-local-only group (br_mdb_valid_dump … ``is_valid_mdb_entry``)."""
    m: "bm.BrMcast | None" = br.multicast
    if m is None:
        raise KernelError(errno.EOPNOTSUPP)
    if not m.enabled:
        raise KernelError(errno.EINVAL, "Multicast snooping is disabled")
    proto, g = _parse_group(grp)
    if proto == bm.ETH_P_IP:
        if g[0] & 0xF0 != 0xE0:
            raise KernelError(errno.EINVAL, "IPv4 entry group address is not multicast")
        if g[0] == 224 and g[1] == 0 and g[2] == 0:
            raise KernelError(errno.EINVAL, "IPv4 entry group address is local multicast")
    else:
        if g[0] != 0xFF:
            raise KernelError(errno.EINVAL, "IPv6 entry group address is not multicast")
        if g == bm.ALL_NODES6:
            raise KernelError(errno.EINVAL, "IPv6 entry group address is link-local all nodes")
    mp = m.mdb.get(bm.mdb_key(proto, g, vid))
    if port is None and mp is not None and mp.host_joined:
        raise KernelError(errno.EEXIST, "bridge: Group is already joined by host")
    if port is not None and mp is not None and any(pg.port is port for pg in mp.ports):
        raise KernelError(errno.EEXIST, "bridge: (*, G) group is already joined by port")
    mp = bm.br_multicast_new_group(m, proto, g, vid)
    if port is None:
        # br_multicast_host_join: the bridge's own membership always runs its timer
        mp.host_joined = True
        mp.timer.mod(m.clock.now + m.membership_interval)
        return
    pg = bm.PortGroup(port, bytes(6), flags=bm.MDB_PG_FLAGS_PERMANENT if permanent else 0,
                   rt_protocol=bm.RTPROT_STATIC)
    pg.timer = m.clock.timer(bm.br_multicast_port_group_expired, m, mp, pg)
    idx = next((i for i, q in enumerate(mp.ports) if q.port.port_no > port.port_no), len(mp.ports))
    mp.ports.insert(idx, pg)
    if not permanent:
        pg.timer.mod(m.clock.now + m.membership_interval)


def br_mdb_del(br: NetBridge, port: NetBridgePort | None, grp: str, vid: int = 0) -> None:
    """``br_mdb_del``: ENOENT when there is no such entry."""
    m: "bm.BrMcast | None" = br.multicast
    if m is None:
        raise KernelError(errno.EOPNOTSUPP)
    proto, g = _parse_group(grp)
    mp = m.mdb.get(bm.mdb_key(proto, g, vid))
    if mp is None:
        raise KernelError(errno.ENOENT)
    if port is None:
        if not mp.host_joined:
            raise KernelError(errno.ENOENT)
        bm.br_multicast_group_expired(m, mp)
        return
    pg = next((pg for pg in mp.ports if pg.port is port), None)
    if pg is None:
        raise KernelError(errno.ENOENT)
    bm.br_multicast_del_pg(m, mp, pg)


@dataclass(frozen=True)
class MdbDumpEntry:
    """One row of ``bridge mdb show``: ``port`` is the port name (the bridge's name for a
    host entry), ``state`` "permanent" or "temp", ``timer_cs`` the remaining membership
    time in centiseconds (0 for permanent entries), ``flags`` as iproute2 prints them."""

    bridge: str
    bridge_ifindex: int
    port: str
    grp: str
    vid: int
    state: str
    flags: tuple[str, ...]
    timer_cs: int


def br_mdb_dump(br: NetBridge) -> list[MdbDumpEntry]:
    """The MDB as ``br_mdb_dump`` fills RTM_GETMDB: group by group (newest first, as the
    kernel's hlist), the host entry, then the port entries."""
    m: "bm.BrMcast | None" = br.multicast
    if m is None:
        return []
    now = m.clock.now
    out: list[MdbDumpEntry] = []
    for mp in reversed(list(m.mdb.values())):
        grp = str(ipaddress.ip_address(mp.group)) if mp.proto else ":".join(f"{x:02x}" for x in mp.group)
        if mp.host_joined:
            left = max(mp.timer.expires - now, 0) if mp.timer.active else 0
            out.append(MdbDumpEntry(br.dev.name, br.dev.ifindex, br.dev.name, grp, mp.vid,
                                    "temp" if mp.timer.active else "permanent", (),
                                    left * bm.USER_HZ // bm.SEC))
        for pg in mp.ports:
            left = max(pg.timer.expires - now, 0) if pg.timer.active else 0
            fl = []
            if pg.flags & bm.MDB_PG_FLAGS_FAST_LEAVE:
                fl.append("fast_leave")
            out.append(MdbDumpEntry(br.dev.name, br.dev.ifindex, pg.port.dev.name, grp, mp.vid,
                                    "permanent" if pg.permanent else "temp", tuple(fl),
                                    left * bm.USER_HZ // bm.SEC))
    return out


def _err(ctx: "Ctx", text: str, rc: int = 255) -> Any:
    from netstack.cli.errors import ToolError
    return ToolError(text, rc)


def _bridges(ctx: "Ctx", dev: str | None) -> list["NetBridge"]:
    if dev is not None:
        d = ctx.net.get(dev)
        if d is None:
            raise _err(ctx, f'Cannot find device "{dev}"\n')
        br = getattr(d, "br", None)
        return [br] if br is not None and br.multicast is not None else []
    out = []
    for d in sorted(ctx.net.devices.values(), key=lambda x: x.ifindex):
        br = getattr(d, "br", None)
        if br is not None and br.dev is d and br.multicast is not None:
            out.append(br)
    return out


def _timer(cs: int) -> str:
    """iproute2 ``format_timer(timer, 1)``: ``%4i.%.2i`` of seconds and centiseconds."""
    return f"{cs // 100:4d}.{cs % 100:02d}"


def mdb_show_lines(ctx: "Ctx", bridges: list["NetBridge"], vid: int | None) -> tuple[list[str], Any]:
    """(text lines, JSON object) of ``bridge mdb show``."""
    lines: list[str] = []
    entries: list[dict[str, Any]] = []
    routers: dict[str, list[dict[str, str]]] = {}
    for br in bridges:
        m = br.multicast
        for e in br_mdb_dump(br):
            if vid is not None and e.vid != vid:
                continue
            state = e.state
            host = e.port == e.bridge
            pg = None if host else _pg(m, e)
            proto = RTPROT_NAMES.get(pg.rt_protocol) if pg is not None and pg.rt_protocol else None
            t = f"dev {e.bridge} port {e.port} grp {e.grp} {state}"
            j: dict[str, Any] = {"index": e.bridge_ifindex, "dev": e.bridge, "port": e.port,
                                 "grp": e.grp, "state": state}
            if ctx.details and proto is not None:
                t += f" proto {proto} "
                j["protocol"] = proto
            for f in e.flags:
                t += f" {f}"
            j["flags"] = list(e.flags)
            if e.vid:
                t += f" vid {e.vid}"
                j["vid"] = e.vid
            if ctx.stats:
                t += f" {_timer(e.timer_cs)}"
                j["timer"] = _timer(e.timer_cs)
            lines.append(t)
            entries.append(j)
        if ctx.details:
            rports = [p.dev.name for p in br.port_list
                      if bm.br_multicast_port_is_router(p.multicast, 0x0800) or bm.br_multicast_port_is_router(p.multicast, 0x86DD)]
            if rports and ctx.stats:
                # br_rports_fill_info: the later of the IPv4/IPv6 router timers, and the
                # port's mcast_router type; one line per port
                rows = []
                for p in br.port_list:
                    if p.dev.name not in rports:
                        continue
                    pm = p.multicast
                    now = m.clock.now
                    left = max((t.expires - now for t in (pm.ip4_mc_router_timer, pm.ip6_mc_router_timer)
                                if t.active), default=0)
                    kind = "temp" if pm.multicast_router in (bm.MDB_RTR_TYPE_TEMP_QUERY,
                                                             bm.MDB_RTR_TYPE_TEMP) else "permanent"
                    tm = _timer(max(left, 0) * bm.USER_HZ // bm.SEC)
                    lines.append(f"router ports on {br.dev.name}: {p.dev.name} {tm} {kind}")
                    rows.append({"port": p.dev.name, "timer": tm, "type": kind})
                routers[br.dev.name] = rows
            elif rports:
                lines.append(f"router ports on {br.dev.name}: " + "".join(f"{p} " for p in rports))
                routers[br.dev.name] = [{"port": p} for p in rports]
    return lines, [{"mdb": entries, "router": routers}]


def _pg(m: "bm.BrMcast", e: "MdbDumpEntry") -> "bm.PortGroup | None":
    for mp in m.mdb.values():
        if mp.vid != e.vid:
            continue
        grp = str(ipaddress.ip_address(mp.group)) if mp.proto else None
        if grp != e.grp:
            continue
        for pg in mp.ports:
            if pg.port.dev.name == e.port:
                return pg
    return None


def _kerr(e: KernelError) -> Any:
    from netstack.cli.errors import ToolError
    if e.extack:
        msg = e.extack if e.extack.endswith(".") else e.extack + "."
        return ToolError(f"Error: {msg}\n", 255)
    import os
    return ToolError(f"RTNETLINK answers: {os.strerror(e.errno)}\n", 255)


def do_mdb(ctx: "Ctx", argv: list[str]) -> int:
    """``bridge mdb { show [dev BR] [vid V] | add|del dev BR port P grp G
    [permanent|temp] [vid V] }``."""
    from netstack.cli.ipcommon import matches
    from netstack.cli.jsonout import dumps
    if not argv or matches(argv[0], "show") or matches(argv[0], "list"):
        rest = argv[1:]
        dev = None
        vid = None
        i = 0
        while i < len(rest):
            w = rest[i]
            if w == "dev" and i + 1 < len(rest):
                dev = rest[i + 1]
                i += 2
            elif w == "vid" and i + 1 < len(rest):
                vid = int(rest[i + 1])
                i += 2
            else:
                raise NotSupported(f"bridge mdb show {w}")
        lines, js = mdb_show_lines(ctx, _bridges(ctx, dev), vid)
        if ctx.json:
            ctx.stdout.write(dumps(js, ctx.pretty) + "\n")
        else:
            for ln in lines:
                ctx.stdout.write(ln + "\n")
        return 0
    cmd = argv[0]
    if cmd not in ("add", "del", "delete", "replace"):
        raise _err(ctx, f'Command "{cmd}" is unknown, try "bridge mdb help".\n')
    if cmd == "replace":
        raise NotSupported("bridge mdb replace")
    opts: dict[str, str] = {}
    permanent = False
    rest = argv[1:]
    i = 0
    while i < len(rest):
        w = rest[i]
        if w in ("dev", "port", "grp", "vid", "src", "proto", "filter_mode", "source_list") \
                and i + 1 < len(rest):
            opts[w] = rest[i + 1]
            i += 2
        elif w == "permanent":
            permanent = True
            i += 1
        elif w == "temp":
            permanent = False
            i += 1
        else:
            raise NotSupported(f"bridge mdb {cmd} {w}")
    for k in ("src", "proto", "filter_mode", "source_list"):
        if k in opts:
            raise NotSupported(f"bridge mdb {cmd} {k}")
    if "dev" not in opts or "port" not in opts or "grp" not in opts:
        raise _err(ctx, "Device, group address and port name are required\n")
    brdev = ctx.net.get(opts["dev"])
    if brdev is None:
        raise _err(ctx, f'Cannot find device "{opts["dev"]}"\n')
    pdev = ctx.net.get(opts["port"])
    if pdev is None:
        raise _err(ctx, f'Cannot find device "{opts["port"]}"\n')
    br = getattr(brdev, "br", None)
    if br is None or br.dev is not brdev:
        raise _kerr(KernelError(errno.EINVAL, "Bridge device is not a bridge"))
    vid = int(opts.get("vid", "0"))
    try:
        if vid < 0 or vid >= 4095:
            raise KernelError(errno.EINVAL, "Invalid entry VLAN id")
        port = None
        if pdev is not brdev:
            port = br.port_of(pdev)
            if port is None:
                raise KernelError(errno.EINVAL, "Port belongs to a different bridge device")
        try:
            grp = ipaddress.ip_address(opts["grp"])
        except ValueError:
            raise _err(ctx, f'Invalid address "{opts["grp"]}"\n') from None
        if cmd == "add":
            if port is None and permanent:
                raise KernelError(errno.EINVAL, "bridge: Flags are not allowed for host groups")
            if br.multicast is None or not br.multicast.enabled:
                raise KernelError(errno.EINVAL, "bridge: Bridge's multicast processing is disabled")
            br_mdb_add(br, port, str(grp), vid, permanent)
        else:
            try:
                br_mdb_del(br, port, str(grp), vid)
            except KernelError as e:
                if e.errno == errno.ENOENT:
                    raise KernelError(errno.EINVAL) from None
                raise
    except KernelError as e:
        raise _kerr(e) from None
    return 0
