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


def _check_source(proto: int, s: bytes) -> None:
    """``is_valid_mdb_source``."""
    if proto == bm.ETH_P_IP and s[0] & 0xF0 == 0xE0:
        raise KernelError(errno.EINVAL, "bridge: IPv4 multicast source address is not allowed")
    if proto == bm.ETH_P_IPV6 and s[0] == 0xFF:
        raise KernelError(errno.EINVAL, "bridge: IPv6 multicast source address is not allowed")


def br_mdb_add(br: NetBridge, port: NetBridgePort | None, grp: str, vid: int = 0,
               permanent: bool = False, src: str | None = None,
               filter_mode: str | None = None, source_list: list[str] | None = None,
               rt_protocol: int = bm.RTPROT_STATIC, replace: bool = False) -> None:
    """``br_mdb_add`` (RTM_NEWMDB; ``bridge mdb add dev BR port P grp G [src S]
    [permanent|temp] [vid V]``): a (*,G) or (S,G) port entry, or the bridge's host entry
    (``port`` None).  The MDBE_ATTR_GROUP_MODE / MDBE_ATTR_SRC_LIST / MDBE_ATTR_RTPROT
    attributes and NLM_F_REPLACE (iproute2 ≥ 6.3's ``filter_mode``, ``source_list``,
    ``proto`` and ``bridge mdb replace``) are the keyword arguments, with the kernel's
    checks (``br_mdb_config_attrs_init``) and effects (``br_mdb_add_group_star_g`` /
    ``_sg``, ``br_mdb_replace_group_*``): a (*,G) with sources installs an (S,G) per
    source (blocked in EXCLUDE mode), a new EXCLUDE (*,G) joins the group's (S,G)
    entries, a new (S,G) gets the EXCLUDE ports of its (*,G)."""
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
    s = b""
    if src is not None:
        sp, s = _parse_group(src)
        if sp != proto:
            fam = "IPv4" if proto == bm.ETH_P_IP else "IPv6"
            raise KernelError(errno.EINVAL, f"bridge: {fam} invalid source address length")
        _check_source(proto, s)
    star = not any(s)
    mode = bm.MCAST_EXCLUDE
    srcs: list[bytes] = []
    if filter_mode is not None:
        if port is None:
            raise KernelError(errno.EINVAL, "bridge: Filter mode cannot be set for host groups")
        if not star:
            raise KernelError(errno.EINVAL, "bridge: Filter mode can only be set for (*, G) entries")
        mode = bm.MCAST_INCLUDE if filter_mode == "include" else bm.MCAST_EXCLUDE
    if source_list is not None:
        if port is None:
            raise KernelError(errno.EINVAL, "bridge: Source list cannot be set for host groups")
        if not star:
            raise KernelError(errno.EINVAL, "bridge: Source list can only be set for (*, G) entries")
        if filter_mode is None:
            raise KernelError(errno.EINVAL, "bridge: Source list cannot be set without filter mode")
        for x in source_list:
            sp, sb = _parse_group(x)
            if sp != proto:
                raise KernelError(errno.EINVAL, "bridge: Invalid protocol used with source address")
            _check_source(proto, sb)
            srcs.append(sb)
    if not srcs and mode == bm.MCAST_INCLUDE:
        raise KernelError(errno.EINVAL, "bridge: Cannot add (*, G) INCLUDE with an empty source list")
    if port is None:
        if permanent:
            raise KernelError(errno.EINVAL, "bridge: Flags are not allowed for host groups")
        if not star:
            raise KernelError(errno.EINVAL, "bridge: Groups with sources cannot be manually host joined")
    mp = bm.br_multicast_new_group(m, proto, g, vid, s)
    if port is None:
        if mp.host_joined:
            raise KernelError(errno.EEXIST, "bridge: Group is already joined by host")
        bm.br_multicast_host_join(m, mp)
        return
    flags = bm.MDB_PG_FLAGS_PERMANENT if permanent else 0
    handle_mode = (proto == bm.ETH_P_IP and m.igmp_version == 3) or \
        (proto == bm.ETH_P_IPV6 and m.mld_version == 2)
    old = next((pg for pg in mp.ports if pg.port is port), None)
    now = m.clock.now
    if not star:
        if old is not None:
            if not replace:
                raise KernelError(errno.EEXIST, "bridge: (S, G) group is already joined by port")
            old.timer.cancel()
            if not permanent:
                old.timer.mod(now + m.membership_interval)
            old.flags, old.rt_protocol = flags, rt_protocol
            return
        pg = _add_sg(m, mp, port, flags, rt_protocol, src_entry=False)
        if handle_mode:
            star_mp = m.mdb.get(bm.mdb_key(proto, g, vid))
            if star_mp is not None:
                bm.br_multicast_sg_add_exclude_ports(m, star_mp, pg)
        return
    if old is not None:
        if not replace:
            raise KernelError(errno.EEXIST, "bridge: (*, G) group is already joined by port")
        # br_mdb_replace_group_star_g
        old.flags, old.filter_mode, old.rt_protocol = flags, mode, rt_protocol
        for e in old.src_list:
            e.flags |= bm.BR_SGRP_F_DELETE
        _add_srcs(m, old, srcs, mode, rt_protocol, replace=True)
        for e in list(old.src_list):
            if e.flags & bm.BR_SGRP_F_DELETE:
                bm._del_group_src(m, e, False)
        if handle_mode:
            bm._star_g_handle_mode(m, old, mode)
        old.timer.cancel()
        if not permanent and mode == bm.MCAST_EXCLUDE:
            old.timer.mod(now + m.membership_interval)
        return
    pg = bm.br_multicast_new_port_group(m, mp, port, None, mode, rt_protocol, flags)
    if pg is None:
        raise KernelError(errno.EEXIST, "bridge: (*, G) group is already joined by port")
    _add_srcs(m, pg, srcs, mode, rt_protocol, replace=False)
    if not permanent and mode == bm.MCAST_EXCLUDE:
        pg.timer.mod(now + m.membership_interval)
    if handle_mode and mode == bm.MCAST_EXCLUDE:
        bm._star_g_handle_mode(m, pg, bm.MCAST_EXCLUDE)


def _add_sg(m: "bm.BrMcast", mp: "bm.MdbEntry", port: "NetBridgePort", flags: int,
            rt_protocol: int, src_entry: bool) -> "bm.PortGroup":
    """``br_mdb_add_group_sg`` for a new port: INCLUDE, the membership timer unless
    permanent or installed for a (*,G) source (``src_entry``)."""
    pg = bm.br_multicast_new_port_group(m, mp, port, None, bm.MCAST_INCLUDE, rt_protocol, flags)
    if pg is None:
        raise KernelError(errno.EEXIST, "bridge: (S, G) group is already joined by port")
    if not flags & bm.MDB_PG_FLAGS_PERMANENT and not src_entry:
        pg.timer.mod(m.clock.now + m.membership_interval)
    return pg


def _add_srcs(m: "bm.BrMcast", pg: "bm.PortGroup", srcs: list[bytes], mode: int,
              rt_protocol: int, replace: bool) -> None:
    """``br_mdb_add_group_srcs`` → ``br_mdb_add_group_src``: each source gets a running
    timer (GMI) in INCLUDE mode of a non-permanent group, none otherwise, and its (S,G)
    forwarding entry (``br_mdb_add_group_src_fwd``; BLOCKED in EXCLUDE mode)."""
    assert pg.mp is not None
    for sb in srcs:
        ent = bm._find_group_src(pg, sb)
        if ent is None:
            ent = bm._new_group_src(m, pg, sb)
            if ent is None:
                raise KernelError(errno.ENOSPC, "bridge: Failed to add new source entry")
        elif not replace:
            raise KernelError(errno.EEXIST, "bridge: Source entry already exists")
        ent.flags &= ~bm.BR_SGRP_F_DELETE
        if not pg.permanent and mode == bm.MCAST_INCLUDE:
            ent.expires = m.clock.now + m.membership_interval
            ent.timer.mod(ent.expires)
        else:
            ent.timer.cancel()
        if not ent.flags & bm.BR_SGRP_F_INSTALLED:
            sgmp = bm.br_multicast_new_group(m, pg.mp.proto, pg.mp.group, pg.mp.vid, sb)
            sg = next((p for p in sgmp.ports if p.port is pg.port), None)
            if sg is None:
                sg = _add_sg(m, sgmp, pg.port, pg.flags & bm.MDB_PG_FLAGS_PERMANENT, rt_protocol,
                             src_entry=True)
            if mode == bm.MCAST_EXCLUDE:
                sg.flags |= bm.MDB_PG_FLAGS_BLOCKED
            ent.flags |= bm.BR_SGRP_F_INSTALLED


def br_mdb_del(br: NetBridge, port: NetBridgePort | None, grp: str, vid: int = 0,
               src: str | None = None) -> None:
    """``br_mdb_del``: ENOENT when there is no such entry; a port entry goes whatever its
    flags (``__br_mdb_del``)."""
    m: "bm.BrMcast | None" = br.multicast
    if m is None:
        raise KernelError(errno.EOPNOTSUPP)
    proto, g = _parse_group(grp)
    s = _parse_group(src)[1] if src is not None else b""
    mp = m.mdb.get(bm.mdb_key(proto, g, vid, s))
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
    time in centiseconds (0 for permanent entries), ``flags`` as iproute2 prints them.
    ``src`` is the source of an (S,G) entry ("" for (*,G)); with IGMPv3/MLDv2 on the
    group's family a port entry also carries ``filter_mode`` ("include"/"exclude") and
    ``source_list`` ((address, remaining centiseconds), newest first) — what
    ``__mdb_fill_info`` puts in MDBA_MDB_EATTR_GROUP_MODE / MDBA_MDB_EATTR_SRC_LIST."""

    bridge: str
    bridge_ifindex: int
    port: str
    grp: str
    vid: int
    state: str
    flags: tuple[str, ...]
    timer_cs: int
    src: str = ""
    filter_mode: str | None = None
    source_list: tuple[tuple[str, int], ...] = ()
    protocol: str | None = None


def _addr_text(proto: int, a: bytes) -> str:
    if proto:
        return str(ipaddress.ip_address(a))
    return ":".join(f"{x:02x}" for x in a)


def _pg_flags(pg: "bm.PortGroup") -> tuple[str, ...]:
    """iproute2 mdb.c print order: offload, fast_leave, added_by_star_ex, blocked."""
    fl = []
    if pg.flags & bm.MDB_PG_FLAGS_OFFLOAD:
        fl.append("offload")
    if pg.flags & bm.MDB_PG_FLAGS_FAST_LEAVE:
        fl.append("fast_leave")
    if pg.flags & bm.MDB_PG_FLAGS_STAR_EXCL:
        fl.append("added_by_star_ex")
    if pg.flags & bm.MDB_PG_FLAGS_BLOCKED:
        fl.append("blocked")
    return tuple(fl)


def br_mdb_dump(br: NetBridge) -> list[MdbDumpEntry]:
    """The MDB as ``br_mdb_dump`` fills RTM_GETMDB: entry by entry (newest first, as the
    kernel's mdb_list hlist; (S,G) entries are entries of their own), the host entry,
    then the port entries."""
    m: "bm.BrMcast | None" = br.multicast
    if m is None:
        return []
    now = m.clock.now

    def cs(t: Any) -> int:
        return max(t.expires - now, 0) * bm.USER_HZ // bm.SEC if t is not None and t.active else 0

    out: list[MdbDumpEntry] = []
    for mp in reversed(list(m.mdb.values())):
        grp = _addr_text(mp.proto, mp.group)
        src = _addr_text(mp.proto, mp.src) if not mp.is_star_g else ""
        srcs_mode = (mp.proto == bm.ETH_P_IP and m.igmp_version == 3) or \
            (mp.proto == bm.ETH_P_IPV6 and m.mld_version == 2)
        if mp.host_joined:
            out.append(MdbDumpEntry(br.dev.name, br.dev.ifindex, br.dev.name, grp, mp.vid,
                                    "temp" if mp.timer.active else "permanent", (),
                                    cs(mp.timer), src))
        for pg in mp.ports:
            mode = None
            sl: tuple[tuple[str, int], ...] = ()
            if srcs_mode:
                mode = "include" if pg.filter_mode == bm.MCAST_INCLUDE else "exclude"
                sl = tuple((_addr_text(mp.proto, e.addr),
                            max(e.expires - now, 0) * bm.USER_HZ // bm.SEC if e.timer.active else 0)
                           for e in pg.src_list)
            out.append(MdbDumpEntry(br.dev.name, br.dev.ifindex, pg.port.dev.name, grp, mp.vid,
                                    "permanent" if pg.permanent else "temp", _pg_flags(pg),
                                    cs(pg.timer), src, mode, sl,
                                    RTPROT_NAMES.get(pg.rt_protocol) if pg.rt_protocol else None))
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


def _timer0(cs: int) -> str:
    """iproute2 ``format_timer(timer, 0)``: ``%i.%.2i``."""
    return f"{cs // 100}.{cs % 100:02d}"


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
            proto = e.protocol
            t = f"dev {e.bridge} port {e.port} grp {e.grp}"
            j: dict[str, Any] = {"index": e.bridge_ifindex, "dev": e.bridge, "port": e.port,
                                 "grp": e.grp}
            if e.src:
                t += f" src {e.src}"
                j["src"] = e.src
            t += f" {state}"
            j["state"] = state
            if ctx.details and e.filter_mode is not None:
                t += f" filter_mode {e.filter_mode}"
                j["filter_mode"] = e.filter_mode
            if ctx.details and e.source_list:
                t += " source_list " + ",".join(f"{a}/{_timer0(c)}" for a, c in e.source_list)
                j["source_list"] = [{"address": a, "timer": _timer0(c)} for a, c in e.source_list]
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


def _kerr(e: KernelError) -> Any:
    from netstack.cli.errors import ToolError
    if e.extack:
        msg = e.extack if e.extack.endswith(".") else e.extack + "."
        return ToolError(f"Error: {msg}\n", 255)
    import os
    return ToolError(f"RTNETLINK answers: {os.strerror(e.errno)}\n", 255)


_MDB_USAGE = ("Usage: bridge mdb { add | del } dev DEV port PORT grp GROUP [src SOURCE] [permanent | temp] [vid VID]\n"
              "       bridge mdb {show} [ dev DEV ] [ vid VID ]\n")


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
    if cmd not in ("add", "del", "delete"):
        # iproute2 6.1 (the oracle's): no "replace" — see br_mdb_add(replace=True)
        raise _err(ctx, f'Command "{cmd}" is unknown, try "bridge mdb help".\n')
    opts: dict[str, str] = {}
    permanent = False
    rest = argv[1:]
    i = 0
    while i < len(rest):
        w = rest[i]
        if w in ("dev", "port", "grp", "vid", "src"):
            if i + 1 >= len(rest):
                raise _err(ctx, 'Command line is not complete. Try option "help"\n')
            opts[w] = rest[i + 1]
            i += 2
            continue
        if w == "permanent":
            permanent = cmd == "add"
        elif w == "temp":
            pass
        elif w and "help".startswith(w):
            raise _err(ctx, _MDB_USAGE)
        # iproute2 6.1's mdb_modify skips any other word (filter_mode, source_list and
        # proto arrived in 6.3): faithfully ignored, as on the oracle
        i += 1
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
        src = opts.get("src")
        if src is not None:
            try:
                src = str(ipaddress.ip_address(src))
            except ValueError:
                raise _err(ctx, f'Invalid source address "{src}"\n') from None
        if cmd == "add":
            if port is None and permanent:
                raise KernelError(errno.EINVAL, "bridge: Flags are not allowed for host groups")
            if br.multicast is None or not br.multicast.enabled:
                raise KernelError(errno.EINVAL, "bridge: Bridge's multicast processing is disabled")
            br_mdb_add(br, port, str(grp), vid, permanent, src=src)
        else:
            try:
                br_mdb_del(br, port, str(grp), vid, src=src)
            except KernelError as e:
                if e.errno == errno.ENOENT:
                    raise KernelError(errno.EINVAL) from None
                raise
    except KernelError as e:
        raise _kerr(e) from None
    return 0


# ------------------------------------------------------- ip link xstats (bridge)
_XSTATS_PAD = " " * 20


def mcast_stats_text(st: "bm.McastStats") -> list[str]:
    """The BRIDGE_XSTATS_MCAST lines of iproute2 6.1 ``ip link xstats type bridge``
    (ip/iplink_bridge.c ``bridge_print_stats_attr``)."""
    p = st.pairs
    i = _XSTATS_PAD

    def v3(name: str, d: int) -> str:
        return f"v1 {p[name.replace('*', 'v1')][d]} v2 {p[name.replace('*', 'v2')][d]} v3 {p[name.replace('*', 'v3')][d]}"

    def v2(name: str, d: int) -> str:
        return f"v1 {p[name.replace('*', 'v1')][d]} v2 {p[name.replace('*', 'v2')][d]}"

    return [f"{i}IGMP queries:", f"{i}  RX: {v3('igmp_*queries', 0)}", f"{i}  TX: {v3('igmp_*queries', 1)}",
            f"{i}IGMP reports:", f"{i}  RX: {v3('igmp_*reports', 0)}", f"{i}  TX: {v3('igmp_*reports', 1)}",
            f"{i}IGMP leaves: RX: {p['igmp_leaves'][0]} TX: {p['igmp_leaves'][1]}",
            f"{i}IGMP parse errors: {st.igmp_parse_errors}",
            f"{i}MLD queries:", f"{i}  RX: {v2('mld_*queries', 0)}", f"{i}  TX: {v2('mld_*queries', 1)}",
            f"{i}MLD reports:", f"{i}  RX: {v2('mld_*reports', 0)}", f"{i}  TX: {v2('mld_*reports', 1)}",
            f"{i}MLD leaves: RX: {p['mld_leaves'][0]} TX: {p['mld_leaves'][1]}",
            f"{i}MLD parse errors: {st.mld_parse_errors}"]


def mcast_stats_json(st: "bm.McastStats") -> dict[str, Any]:
    """The ``"multicast"`` object of ``ip -j link xstats type bridge``."""
    p = st.pairs

    def vs(name: str, n: int) -> dict[str, int]:
        out = {f"rx_v{k}": p[name.replace("*", f"v{k}")][0] for k in range(1, n + 1)}
        out.update({f"tx_v{k}": p[name.replace("*", f"v{k}")][1] for k in range(1, n + 1)})
        return out

    return {"igmp_queries": vs("igmp_*queries", 3), "igmp_reports": vs("igmp_*reports", 3),
            "igmp_leaves": {"rx": p["igmp_leaves"][0], "tx": p["igmp_leaves"][1]},
            "igmp_parse_errors": st.igmp_parse_errors,
            "mld_queries": vs("mld_*queries", 2), "mld_reports": vs("mld_*reports", 2),
            "mld_leaves": {"rx": p["mld_leaves"][0], "tx": p["mld_leaves"][1]},
            "mld_parse_errors": st.mld_parse_errors}


def do_xstats(ctx: "Ctx", argv: list[str]) -> int:
    """``ip link xstats type bridge [dev DEV]`` (RTM_GETSTATS with IFLA_STATS_LINK_XSTATS):
    each bridge's multicast counters (``br_multicast_get_stats``: the sums so far; they
    only grow while ``mcast_stats_enabled`` is on).  ``type bridge_slave`` also prints
    the ports' STP counters, which netstack's STP does not keep: NotSupported."""
    from netstack.cli.jsonout import dumps
    kind = None
    dev = None
    i = 0
    while i < len(argv):
        if argv[i] == "type" and i + 1 < len(argv):
            kind = argv[i + 1]
        elif argv[i] == "dev" and i + 1 < len(argv):
            dev = argv[i + 1]
        else:
            raise NotSupported(f"ip link xstats {argv[i]}")
        i += 2
    if kind != "bridge":
        raise NotSupported(f"ip link xstats type {kind} (STP port counters are not kept)"
                           if kind == "bridge_slave" else f"ip link xstats type {kind}")
    out_js: list[dict[str, Any]] = []
    for br in _bridges(ctx, dev):
        st = br.multicast.stats
        if ctx.json:
            out_js.append({"ifname": br.dev.name, "multicast": mcast_stats_json(st)})
        else:
            ctx.stdout.write(f"{br.dev.name:<16s}\n" + "\n".join(mcast_stats_text(st)) + "\n")
    if ctx.json:
        ctx.stdout.write(dumps(out_js, ctx.pretty) + "\n")
    return 0
