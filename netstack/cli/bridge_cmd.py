"""The ``bridge`` tool (iproute2 6.1 bridge/: bridge.c, link.c, fdb.c, vlan.c).

``bridge [-j] [-p] [-d] [-s] link|fdb|vlan …``.  FDB requests become one
:class:`netstack.core.rtnl_fdb.FdbRequest` dispatched as ``rtnl_fdb_add``/``rtnl_fdb_del``
do: to the bridge master of a port (``master``, or no flag at all on a port) and/or to
the device itself (``self``: a bridge device's own entries, or a device with its own
``ndo_fdb_add`` such as VXLAN).  Dumps follow ``rtnl_fdb_dump``: devices in ifindex
order, for a port first its master's entries then its own — for devices without an
FDB of their own their unicast and multicast address lists (``ndo_dflt_fdb_dump``'s
``self permanent`` lines, br_dflt_fdb.py).  ``fdb get`` / ``fdb flush`` are
``rtnl_fdb_get`` / the bulk ``rtnl_fdb_del``.  Errors are libnetlink's ``RTNETLINK
answers: …`` with exit status 255 (bridge returns -1; ``fdb get`` 254), the usage errors
are fdb.c's / vlan.c's texts.
"""
from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any, Callable

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Args, Ctx, get_unsigned, matches, parse_lladdr
from netstack.cli.iplink_bridge import next_unsigned
from netstack.cli.jsonout import dumps
from netstack.core.rtnl_fdb import (NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE,
                                    NTF_EXT_LEARNED, NTF_MASTER, NTF_ROUTER, NTF_SELF,
                                    NTF_STICKY, NTF_USE, NUD_NOARP, NUD_PERMANENT,
                                    NUD_REACHABLE, FdbRequest)
from netstack.errors import KernelError, NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.core.netdevice import NetDevice

NUD_STALE = 0x04


def _rtnl_error(e: KernelError) -> ToolError:
    if e.extack:
        msg = e.extack if e.extack.endswith(".") else e.extack + "."
        return ToolError(f"Error: {msg}\n", 255)
    return ToolError(f"RTNETLINK answers: {os.strerror(e.errno)}\n", 255)


def _dev(ctx: Ctx, name: str) -> "NetDevice":
    d = ctx.net.get(name)
    if d is None:
        raise ToolError(f'Cannot find device "{name}"\n', 1)
    return d


def do_bridge(ctx: Ctx, argv: list[str]) -> int:
    """``bridge`` main: global options, then the object."""
    args = list(argv)
    while args and args[0].startswith("-") and args[0] != "-":
        o = args.pop(0).lstrip("-")
        if o in ("j", "json"):
            ctx.json = True
        elif o in ("p", "pretty"):
            ctx.pretty = True
        elif o in ("d", "details"):
            ctx.details += 1
        elif o in ("s", "statistics", "stats"):
            ctx.stats += 1
        elif o in ("n", "netns"):
            from netstack.core.world import NetnsError
            try:
                ctx.net = ctx.world.netns(args.pop(0))
            except NetnsError as e:
                raise ToolError(f"{e}\n", 255) from None
        elif o in ("c", "color", "compressvlans", "oneline", "o"):
            pass
        else:
            raise ToolError(f'Option "-{o}" is unknown, try "bridge help".\n', 255)
    if not args:
        raise ToolError("Usage: bridge [ OPTIONS ] OBJECT { COMMAND | help }\n", 255)
    obj, rest = args[0], args[1:]
    try:
        if matches(obj, "link"):
            return _do_link(ctx, rest)
        if matches(obj, "fdb"):
            return _do_fdb(ctx, rest)
        if matches(obj, "vlan"):
            return _do_vlan(ctx, rest)
        if matches(obj, "mdb"):
            from netstack.drivers.bridge.br_mdb import do_mdb
            return do_mdb(ctx, rest)
    except KernelError as e:
        raise _rtnl_error(e) from None
    if obj in ("monitor", "mst"):
        raise NotSupported(f"bridge {obj}")
    raise ToolError(f'Object "{obj}" is unknown, try "bridge help".\n', 255)


# ------------------------------------------------------------------------ link
def _do_link(ctx: Ctx, argv: list[str]) -> int:
    if not argv or matches(argv[0], "show") or matches(argv[0], "list") \
            or matches(argv[0], "lst"):
        a = Args(argv[1:])
        dev = None
        while a:
            if a.cur == "dev":
                dev = a.next_arg()
            else:
                dev = a.cur
            a.advance()
        _link_show(ctx, dev)
        return 0
    if matches(argv[0], "set") or matches(argv[0], "change"):
        _link_set(ctx, argv[1:])
        return 0
    raise ToolError(f'Command "{argv[0]}" is unknown, try "bridge link help".\n', 255)


def _link_set(ctx: Ctx, argv: list[str]) -> None:
    """``brlink_modify``: the same port attributes as ``ip link … type bridge_slave``."""
    from netstack.cli.iplink_bridge_slave import br_setport, parse_slave_opts
    from netstack.drivers.bridge.br_private import br_port_get
    from netstack.drivers.bridge.br_device import BridgeDevice
    a = Args(argv)
    dev_name = None
    rest: list[str] = []
    self_ = master = False
    while a:
        w = a.cur
        if w == "dev":
            dev_name = a.next_arg()
        elif w == "self":
            self_ = True
        elif w == "master":
            master = True
        elif w == "hwmode":
            # link.c: the mode travels in IFLA_AF_SPEC with BRIDGE_FLAGS_SELF
            v = a.next_arg()
            if v not in ("vepa", "veb"):
                raise ToolError('Mode argument must be "vepa" or "veb".\n', 255)
            self_ = True
        elif w == "state":
            v = a.next_arg()
            rest += ["state", v]
        else:
            rest.append(w)
        a.advance()
    if dev_name is None:
        raise ToolError("Device is a required argument.\n", 255)
    dev = _dev(ctx, dev_name)
    opts = parse_slave_opts(rest)
    # rtnl_bridge_setlink: the master's ndo_bridge_setlink (no flag, or master), then
    # the device's own (self).  The bridge's own br_setlink with IFLA_AF_SPEC and no
    # port does nothing but VLAN work (measured: rc 0, nothing changes); other devices
    # here have no ndo_bridge_setlink (EOPNOTSUPP, after the master part was applied).
    if master or not self_:
        p = br_port_get(dev)
        if p is None:
            raise KernelError(errno.EOPNOTSUPP)
        br_setport(p, opts)
    if self_ and not isinstance(dev, BridgeDevice):
        raise KernelError(errno.EOPNOTSUPP)


def _link_show(ctx: Ctx, devname: str | None) -> None:
    from netstack.cli import fmt_link
    from netstack.drivers.bridge.br_private import (BR_BCAST_FLOOD, BR_BPDU_GUARD, BR_FLOOD,
                                                    BR_HAIRPIN_MODE, BR_ISOLATED,
                                                    BR_LEARNING, BR_MCAST_FLOOD,
                                                    BR_MULTICAST_FAST_LEAVE,
                                                    BR_MULTICAST_TO_UNICAST,
                                                    BR_NEIGH_SUPPRESS, BR_PORT_LOCKED,
                                                    BR_ROOT_BLOCK, BR_VLAN_TUNNEL,
                                                    br_port_get)
    from netstack.cli.iplink_bridge_slave import port_mcast_router
    if devname is not None:
        _dev(ctx, devname)
    out: list[dict[str, Any]] = []
    text = ""
    for idx in sorted(ctx.net.by_index):
        d = ctx.net.by_index[idx]
        if devname is not None and d.name != devname:
            continue
        p = br_port_get(d)
        if p is None:
            continue
        peer, other = fmt_link._peer(d)
        j: dict[str, Any] = {"ifindex": d.ifindex}
        if peer is not None:
            # bridge/link.c prints IFLA_LINK through ll_index_to_name: "ifN" when the
            # peer is in another namespace
            j["link"] = f"if{peer.ifindex}" if other else peer.name
        j.update({"ifname": d.name, "flags": fmt_link.link_flags(d), "mtu": d.mtu,
                  "master": p.br.dev.name, "state": p.state_name, "priority": p.priority,
                  "cost": p.path_cost})
        text += (f"{d.ifindex}: {fmt_link.ifname_at(d)}: <{','.join(j['flags'])}> mtu "
                 f"{d.mtu} master {p.br.dev.name} state {p.state_name} priority "
                 f"{p.priority} cost {p.path_cost} \n")
        if ctx.details:
            f = p.flags
            det = [("hairpin", BR_HAIRPIN_MODE), ("guard", BR_BPDU_GUARD),
                   ("root_block", BR_ROOT_BLOCK), ("fastleave", BR_MULTICAST_FAST_LEAVE),
                   ("learning", BR_LEARNING), ("flood", BR_FLOOD),
                   ("mcast_flood", BR_MCAST_FLOOD), ("bcast_flood", BR_BCAST_FLOOD)]
            line = "    "
            for k, bit in det:
                j[k] = bool(f & bit)
                line += f"{k} {'on' if f & bit else 'off'} "
            mr = port_mcast_router(p)
            j["mcast_router"] = mr
            line += f"mcast_router {mr} "
            for k, bit in (("mcast_to_unicast", BR_MULTICAST_TO_UNICAST),
                           ("neigh_suppress", BR_NEIGH_SUPPRESS),
                           ("vlan_tunnel", BR_VLAN_TUNNEL), ("isolated", BR_ISOLATED),
                           ("locked", BR_PORT_LOCKED)):
                j[k] = bool(f & bit)
                line += f"{k} {'on' if f & bit else 'off'} "
            text += line + "\n"
        out.append(j)
    if ctx.json:
        ctx.stdout.write(dumps(out, ctx.pretty) + "\n")
    else:
        ctx.stdout.write(text)


# ------------------------------------------------------------------------- fdb
_FDB_USAGE = ("Usage: bridge fdb { add | append | del | replace } ADDR dev DEV\n"
              "              [ self ] [ master ] [ use ] [ router ] [ extern_learn ]\n"
              "              [ sticky ] [ local | static | dynamic ] [ vlan VID ]\n"
              "              { [ dst IPADDR ] [ port PORT] [ vni VNI ] | [ nhid NHID ] }\n"
              "\t       [ via DEV ] [ src_vni VNI ]\n"
              "       bridge fdb [ show [ br BRDEV ] [ brport DEV ] [ vlan VID ]\n"
              "              [ state STATE ] [ dynamic ] ]\n"
              "       bridge fdb get [ to ] LLADDR [ br BRDEV ] { brport | dev } DEV\n"
              "              [ vlan VID ] [ vni VNI ] [ self ] [ master ] [ dynamic ]\n"
              "       bridge fdb flush dev DEV [ brport DEV ] [ vlan VID ]\n"
              "              [ self ] [ master ] [ [no]permanent | [no]static | [no]dynamic ]\n"
              "              [ [no]added_by_user ] [ [no]extern_learn ] [ [no]sticky ]\n"
              "              [ [no]offloaded ]\n")


def _do_fdb(ctx: Ctx, argv: list[str]) -> int:
    if not argv or matches(argv[0], "show") or matches(argv[0], "list") \
            or matches(argv[0], "lst"):
        _fdb_show(ctx, argv[1:] if argv else [])
        return 0
    cmd = argv[0]
    if cmd == "add" or (matches(cmd, "add") and len(cmd) > 1):
        _fdb_modify(ctx, argv[1:], NLM_F_CREATE | NLM_F_EXCL, True)
    elif matches(cmd, "append"):
        _fdb_modify(ctx, argv[1:], NLM_F_CREATE | NLM_F_APPEND, True)
    elif matches(cmd, "replace"):
        _fdb_modify(ctx, argv[1:], NLM_F_CREATE | NLM_F_REPLACE, True)
    elif matches(cmd, "delete"):
        _fdb_modify(ctx, argv[1:], 0, False)
    elif matches(cmd, "help"):
        raise ToolError(_FDB_USAGE, 255)
    elif matches(cmd, "get"):
        return _fdb_get(ctx, argv[1:])
    elif matches(cmd, "flush"):
        _fdb_flush(ctx, argv[1:])
    else:
        raise ToolError(f'Command "{cmd}" is unknown, try "bridge fdb help".\n', 255)
    return 0


def _fdb_modify(ctx: Ctx, argv: list[str], nlflags: int, add: bool) -> None:
    """``fdb_modify``: the NUD state as fdb.c computes it (NOARP by default, PERMANENT
    unless static/dynamic said otherwise), then rtnl_fdb_add/del's dispatch."""
    import ipaddress
    a = Args(argv)
    state = NUD_NOARP
    flags = 0
    dev_name = None
    addr = None
    vid = None
    dst = port = vni = src_vni = nhid = None
    via = None
    while a:
        w = a.cur
        if w == "dev":
            dev_name = a.next_arg()
        elif w == "dst":
            v = a.next_arg()
            try:
                dst = ipaddress.ip_address(v).packed
            except ValueError:
                raise ToolError(f'Error: an inet address is expected rather than "{v}".\n',
                                1) from None
        elif w == "port":
            port = next_unsigned(a, 16, "invalid port")
        elif w == "vni":
            vni = next_unsigned(a, 24, "invalid VNI")
        elif w == "src_vni":
            src_vni = next_unsigned(a, 24, "invalid src VNI")
        elif w == "via":
            via = a.next_arg()
        elif w == "nhid":
            nhid = next_unsigned(a, 32, "invalid nhid")
        elif w == "self":
            flags |= NTF_SELF
        elif matches(w, "master"):
            flags |= NTF_MASTER
        elif matches(w, "router"):
            flags |= NTF_ROUTER
        elif matches(w, "local") or matches(w, "permanent"):
            state |= NUD_PERMANENT
        elif matches(w, "temp") or matches(w, "static"):
            state |= NUD_REACHABLE
        elif matches(w, "dynamic"):
            state |= NUD_REACHABLE
            state &= ~NUD_NOARP
        elif matches(w, "vlan"):
            vid = next_unsigned(a, 16, "invalid vlan id")
        elif matches(w, "use"):
            flags |= NTF_USE
        elif matches(w, "extern_learn"):
            flags |= NTF_EXT_LEARNED
        elif matches(w, "sticky"):
            flags |= NTF_STICKY
        else:
            if w == "to":
                w = a.next_arg()
            elif matches(w, "help"):
                raise ToolError(_FDB_USAGE, 255)
            if addr is not None:
                raise ToolError(f'Error: either "lladdr" is duplicate, or "{w}" is a '
                                'garbage.\n', 255)
            addr = w
        a.advance()
    if dev_name is None or addr is None:
        raise ToolError("Device and address are required arguments.\n", 255)
    if not state & (NUD_PERMANENT | NUD_REACHABLE):
        state |= NUD_PERMANENT  # "Assume permanent"
    if not flags & (NTF_SELF | NTF_MASTER):
        flags |= NTF_SELF  # fdb_modify: "Assume self"
    try:
        mac = parse_lladdr(addr)
    except ToolError:
        raise ToolError(f"Invalid mac address {addr}\n", 255) from None
    if len(mac) != 6:
        raise ToolError(f"Invalid mac address {addr}\n", 255)
    dev = _dev(ctx, dev_name)
    if via is not None:
        _dev(ctx, via)
    req = FdbRequest(lladdr=mac, dev=dev.name, flags=flags, state=state, nlflags=nlflags,
                     vlan=vid, dst=dst, port=port, vni=vni, src_vni=src_vni, via=via,
                     nhid=nhid)
    if add:
        rtnl_fdb_add(dev, req)
    else:
        rtnl_fdb_del(dev, req)


def rtnl_fdb_add(dev: "NetDevice", req: FdbRequest) -> None:
    """``rtnl_fdb_add``: master (a bridge port, no flag or NTF_MASTER), then self."""
    from netstack.drivers.bridge.br_dflt_fdb import ndo_dflt_fdb_add
    from netstack.drivers.bridge.br_fdb import br_fdb_add
    _rtnl_fdb_dispatch(dev, req, br_fdb_add, "ndo_fdb_add", ndo_dflt_fdb_add)


def rtnl_fdb_del(dev: "NetDevice", req: FdbRequest) -> None:
    """``rtnl_fdb_del``: same dispatch as add."""
    from netstack.drivers.bridge.br_dflt_fdb import ndo_dflt_fdb_del
    from netstack.drivers.bridge.br_fdb import br_fdb_delete
    _rtnl_fdb_dispatch(dev, req, br_fdb_delete, "ndo_fdb_del", ndo_dflt_fdb_del)


def _rtnl_fdb_dispatch(dev: "NetDevice", req: FdbRequest,
                       br_op: Callable[..., None], ndo_name: str,
                       dflt_op: Callable[["NetDevice", FdbRequest], None]) -> None:
    """The dispatch ``rtnl_fdb_add`` and ``rtnl_fdb_del`` share (net/core/rtnetlink.c):
    ``fdb_vid_parse``'s VLAN check; the master part when no NTF_SELF/NTF_MASTER flag or
    NTF_MASTER is given and the device is a bridge port (``br_op(br, port, req)``); then,
    with NTF_SELF, the device's own ``ndo_name`` op, the bridge's own FDB for a bridge
    device, else ``dflt_op`` (``ndo_dflt_fdb_add``/``_del``).  Neither part: EINVAL."""
    from netstack.drivers.bridge.br_device import BridgeDevice
    from netstack.drivers.bridge.br_private import br_port_get
    if req.vlan is not None and not 0 < req.vlan < 4095:
        raise KernelError(errno.EINVAL, "invalid vlan id")  # fdb_vid_parse
    done = False
    p = br_port_get(dev)
    flags = req.flags
    if (not flags & (NTF_SELF | NTF_MASTER) or flags & NTF_MASTER) and p is not None:
        br_op(p.br, p, req)
        flags &= ~NTF_MASTER
        done = True
    if flags & NTF_SELF:
        own = getattr(dev, ndo_name, None)
        if own is not None:
            own(req)
        elif isinstance(dev, BridgeDevice):
            br_op(dev.br, None, req)
        else:
            dflt_op(dev, req)
        done = True
    if not done:
        raise KernelError(errno.EINVAL)


def _state_n2a(state: int) -> str:
    """fdb.c ``state_n2a``."""
    if state & NUD_PERMANENT:
        return "permanent"
    if state & NUD_NOARP:
        return "static"
    if state & NUD_STALE:
        return "stale"
    if state & NUD_REACHABLE:
        return ""
    return f"state={state:#x}"


def _br_entry(ctx: Ctx, br: Any, f: Any, show_ifname: bool, now: int) -> dict[str, Any]:
    """One ``fdb_fill_info`` message as iproute2's ``print_fdb`` renders it (JSON form)."""
    from netstack.drivers.bridge.br_fdb import fdb_to_nud
    from netstack.drivers.bridge.br_private import (BR_FDB_ADDED_BY_EXT_LEARN,
                                                    BR_FDB_LOCKED, BR_FDB_OFFLOADED,
                                                    BR_FDB_STICKY, NS_PER_CLOCK_T)
    dev = f.dst.dev if f.dst is not None else br.dev
    e: dict[str, Any] = {"mac": ":".join(f"{b:02x}" for b in f.addr)}
    if show_ifname:
        e["ifname"] = dev.name
    if f.vid:
        e["vlan"] = f.vid
    if ctx.stats:
        e["used"] = (now - f.used) // NS_PER_CLOCK_T // 100
        e["updated"] = (now - f.updated) // NS_PER_CLOCK_T // 100
    fl = []
    if f.flags & BR_FDB_ADDED_BY_EXT_LEARN:
        fl.append("extern_learn")
    if f.flags & BR_FDB_OFFLOADED:
        fl.append("offload")
    if f.flags & BR_FDB_STICKY:
        fl.append("sticky")
    if f.flags & BR_FDB_LOCKED:
        fl.append("locked")
    e["flags"] = fl
    e["master"] = br.dev.name
    e["state"] = _state_n2a(fdb_to_nud(br, f, now))
    return e


def _br_entries(ctx: Ctx, br: Any, filter_dev: "NetDevice | None", show_ifname: bool,
                now: int) -> list[dict[str, Any]]:
    """``br_fdb_dump`` for one (bridge, port-or-bridge) pair, as iproute2 prints it."""
    from netstack.drivers.bridge.br_fdb import fdb_dump_order
    out = []
    for f in fdb_dump_order(br):
        if filter_dev is br.dev:
            if f.dst is not None:
                continue
        elif f.dst is None or f.dst.dev is not filter_dev:
            continue
        out.append(_br_entry(ctx, br, f, show_ifname, now))
    return out


def _fdb_get(ctx: Ctx, argv: list[str]) -> int:
    """``fdb_get`` (iproute2 6.1) over ``rtnl_fdb_get``; kernel errors exit with 254
    (fdb_get returns -2 when rtnl_talk fails)."""
    from netstack.drivers.bridge.br_device import BridgeDevice
    from netstack.drivers.bridge.br_fdb import br_fdb_get
    from netstack.drivers.bridge.br_private import br_port_get
    a = Args(argv)
    d = br = addr = None
    vlan: int | None = None
    flags = 0
    dynamic = False
    while a:
        w = a.cur
        if w in ("brport", "dev"):
            d = a.next_arg()
        elif w == "br":
            br = a.next_arg()
        elif w == "vni":
            v = a.next_arg()
            n = get_unsigned(v, 32)
            if n is None or n >> 24:
                raise ToolError(f'Error: argument "{v}" is wrong: invalid VNI\n\n', 255)
        elif w == "self":
            flags |= NTF_SELF
        elif matches(w, "master"):
            flags |= NTF_MASTER
        elif matches(w, "vlan"):
            if vlan is not None:
                raise ToolError(f'Error: duplicate "vlan": "{w}" is the second value.\n', 255)
            vlan = _atoi_short(a.next_arg())
        elif matches(w, "dynamic"):
            dynamic = True
        else:
            if w == "to":
                w = a.next_arg()
            if matches(w, "help"):
                raise ToolError(_FDB_USAGE, 255)
            if addr is not None:
                raise ToolError(f'Error: either "to" is duplicate, or "{w}" is a garbage.\n',
                                255)
            addr = w
        a.advance()
    if (d is None and br is None) or addr is None:
        raise ToolError("Device or master and address are required arguments.\n", 255)
    mac = _sscanf_mac(addr)
    if mac is None:
        raise ToolError(f"Invalid mac address {addr}\n", 255)
    dev = ctx.net.get(d) if d is not None else None
    if d is not None and dev is None:
        raise ToolError(f'Cannot find device "{d}"\n', 255)
    br_dev = ctx.net.get(br) if br is not None else None
    if br is not None and br_dev is None:
        raise ToolError(f'Cannot find bridge device "{br}"\n', 255)
    try:
        # rtnl_fdb_get, in its order of checks
        vid = 0
        if vlan is not None:
            vid = vlan & 0xFFFF
            if not 0 < vid < 4095:
                raise KernelError(errno.EINVAL, "invalid vlan id")
        if dev is not None and br_dev is not None:
            raise KernelError(errno.EINVAL, "Master and device are mutually exclusive")
        target = br_dev
        if dev is not None:
            if not flags or flags & NTF_MASTER:
                p = br_port_get(dev)
                if p is None:
                    raise KernelError(errno.EINVAL, "Device is not a bridge port")
                target = p.br.dev
            else:
                target = dev
        if not isinstance(target, BridgeDevice):
            if target is not None and getattr(target, "ndo_fdb_get", None) is not None:
                raise NotSupported("bridge fdb get on a device with its own FDB "
                                   "(ndo_fdb_get of VXLAN)")
            raise KernelError(errno.EOPNOTSUPP, "Fdb get operation not supported by device")
        f = br_fdb_get(target.br, mac, vid)
    except KernelError as e:
        raise ToolError(_rtnl_error(e).stderr, 254) from None
    e = _br_entry(ctx, target.br, f, True, ctx.world.clock.now)
    if dynamic and e["state"] == "permanent":
        ctx.stdout.write("[]\n" if ctx.json else "")
        return 0
    if ctx.json:
        ctx.stdout.write(dumps([e], ctx.pretty) + "\n")
    else:
        ctx.stdout.write(_fdb_text(e))
    return 0


def _atoi_short(v: str) -> int:
    """``(short)atoi(v)``: leading digits, 0 when none."""
    import re
    m = re.match(r"\s*([+-]?\d+)", v)
    n = int(m.group(1)) if m else 0
    n &= 0xFFFFFFFF
    n &= 0xFFFF
    return n - 0x10000 if n & 0x8000 else n


def _sscanf_mac(addr: str) -> bytes | None:
    """``sscanf(addr, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx")`` == 6."""
    parts = addr.split(":")
    if len(parts) < 6:
        return None
    out = []
    for x in parts[:6]:
        x = x.strip()
        if x[:2].lower() == "0x":
            x = x[2:]
        digits = ""
        for c in x:
            if c in "0123456789abcdefABCDEF":
                digits += c
            else:
                break
        if not digits:
            return None
        out.append(int(digits, 16) & 0xFF)
    return bytes(out)


_FLUSH_STATE = {"permanent": (NUD_PERMANENT, 0, NUD_PERMANENT),
                "nopermanent": (0, NUD_PERMANENT, NUD_PERMANENT),
                "static": (NUD_NOARP, 0, NUD_NOARP | NUD_PERMANENT),
                "nostatic": (0, NUD_NOARP, NUD_NOARP),
                "dynamic": (0, NUD_NOARP | NUD_PERMANENT, NUD_NOARP | NUD_PERMANENT),
                "nodynamic": (NUD_NOARP, 0, NUD_NOARP)}
_NTF_OFFLOADED = 0x20
_FLUSH_FLAG = {"added_by_user": NTF_USE, "extern_learn": NTF_EXT_LEARNED,
               "sticky": NTF_STICKY, "offloaded": _NTF_OFFLOADED}


def _fdb_flush(ctx: Ctx, argv: list[str]) -> None:
    """``fdb_flush`` (iproute2 6.1): RTM_DELNEIGH with NLM_F_BULK, NTF_SELF assumed when
    neither self nor master is given, NDA_NDM_STATE_MASK / NDA_NDM_FLAGS_MASK from the
    [no]KEYWORDs; words it does not know are skipped.  Then ``rtnl_fdb_del``'s bulk
    dispatch: the master's ``ndo_fdb_del_bulk`` for a port (master), then the device's
    own (self) — only the bridge has one (EOPNOTSUPP elsewhere, measured)."""
    from netstack.drivers.bridge.br_device import BridgeDevice
    from netstack.drivers.bridge.br_fdb import br_fdb_delete_bulk
    from netstack.drivers.bridge.br_private import br_port_get
    a = Args(argv)
    d = port = None
    vid: int | None = None
    ndm_flags = ndm_state = 0
    flags_mask = state_mask = 0
    while a:
        w = a.cur
        if w == "dev":
            d = a.next_arg()
        elif w == "master":
            ndm_flags |= NTF_MASTER
        elif w == "self":
            ndm_flags |= NTF_SELF
        elif w in _FLUSH_STATE:
            on, off, m = _FLUSH_STATE[w]
            ndm_state = (ndm_state | on) & ~off
            state_mask |= m
        elif w in _FLUSH_FLAG or (w.startswith("no") and w[2:] in _FLUSH_FLAG):
            bit = _FLUSH_FLAG[w.removeprefix("no")]
            ndm_flags = ndm_flags & ~bit if w.startswith("no") else ndm_flags | bit
            flags_mask |= bit
        elif w == "brport":
            if port is not None:
                raise ToolError(f'Error: duplicate "brport": "{w}" is the second value.\n',
                                255)
            port = a.next_arg()
        elif w == "vlan":
            if vid is not None and vid >= 0:
                raise ToolError(f'Error: duplicate "vlan": "{w}" is the second value.\n', 255)
            vid = _atoi_short(a.next_arg())
            if vid >= 4096:
                raise ToolError(f'Invalid VLAN ID "{vid}"\n', 255)
        elif w == "help":
            a.next_arg()
        a.advance()
    if d is None:
        raise ToolError("Device is a required argument.\n", 255)
    dev = ctx.net.get(d)
    if dev is None:
        raise ToolError(f'Cannot find bridge device "{d}"\n', 255)
    port_dev = None
    if port is not None:
        port_dev = ctx.net.get(port)
        if port_dev is None:
            raise ToolError(f'Cannot find bridge port device "{port}"\n', 255)
    if not ndm_flags & (NTF_SELF | NTF_MASTER):
        ndm_flags |= NTF_SELF
    # rtnl_fdb_del (bulk): VLAN check, master part, self part
    v = 0
    if vid is not None and vid >= 0:
        # fdb_del_bulk_policy: NDA_VLAN is NLA_POLICY_RANGE(NLA_U16, 1, VLAN_N_VID - 2)
        v = vid
        if not 0 < v < 4095:
            raise KernelError(errno.ERANGE, "integer out of range")
    match_flags = ndm_flags & ~(NTF_SELF | NTF_MASTER)
    sm = state_mask or None
    fm = flags_mask or None
    err = errno.EOPNOTSUPP
    if ndm_flags & NTF_MASTER or not ndm_flags & NTF_SELF:
        p = br_port_get(dev)
        if p is not None:
            br_fdb_delete_bulk(p.br, p, ndm_state, match_flags, sm, fm, port_dev, v)
            err = 0
    if ndm_flags & NTF_SELF:
        if isinstance(dev, BridgeDevice):
            br_fdb_delete_bulk(dev.br, None, ndm_state, match_flags, sm, fm, port_dev, v)
            err = 0
        elif getattr(dev, "ndo_fdb_del_bulk", None) is not None:
            bulk = dev.ndo_fdb_del_bulk  # type: ignore[attr-defined]
            bulk(ndm_state, match_flags, sm, fm, port_dev, v)
            err = 0
        else:
            err = errno.EOPNOTSUPP
    if err:
        raise KernelError(err)


def _fdb_show(ctx: Ctx, argv: list[str]) -> None:
    """``fdb_show`` over ``rtnl_fdb_dump``."""
    from netstack.drivers.bridge.br_dflt_fdb import ndo_dflt_fdb_dump
    from netstack.drivers.bridge.br_device import BridgeDevice
    from netstack.drivers.bridge.br_private import br_port_get
    a = Args(argv)
    br_name = port_name = None
    vid = None
    state_f = None
    dynamic = False
    while a:
        w = a.cur
        if w in ("brport", "dev"):
            port_name = a.next_arg()
        elif w == "br":
            br_name = a.next_arg()
        elif w == "vlan":
            vid = next_unsigned(a, 16, "invalid vlan id")
        elif w == "state":
            v = a.next_arg()
            state_f = {"permanent": NUD_PERMANENT, "static": NUD_NOARP,
                       "dynamic": NUD_REACHABLE, "reachable": NUD_REACHABLE,
                       "stale": NUD_STALE}.get(v, get_unsigned(v, 16))
            if state_f is None:
                raise ToolError(f'Error: argument "{v}" is wrong: invalid state\n', 255)
        elif w == "dynamic":
            dynamic = True
        else:
            if br_name is not None:
                raise ToolError(f'Error: duplicate "br": "{w}" is the second value.\n', 255)
            br_name = w
        a.advance()
    brdev = _dev(ctx, br_name) if br_name is not None else None
    if brdev is not None and not isinstance(brdev, BridgeDevice):
        raise NotSupported("bridge fdb show br DEV where DEV is not a bridge")
    port = _dev(ctx, port_name) if port_name is not None else None
    now = ctx.world.clock.now
    entries: list[dict[str, Any]] = []
    for idx in sorted(ctx.net.by_index):
        d = ctx.net.by_index[idx]
        if port is not None and d is not port:
            continue
        p = br_port_get(d)
        if brdev is not None and d is not brdev and (p is None or p.br.dev is not brdev):
            continue
        show_ifname = port is None
        if p is not None:
            entries += _br_entries(ctx, p.br, d, show_ifname, now)
        own_entries: list[dict[str, Any]] = []
        if isinstance(d, BridgeDevice):
            # br_fdb_dump: the bridge's address lists first (ndo_dflt_fdb_dump)
            own_entries += ndo_dflt_fdb_dump(d)
        else:
            own = getattr(d, "ndo_fdb_dump", None)
            own_entries += own() if own is not None else ndo_dflt_fdb_dump(d)
        for e in own_entries:
            e = dict(e)
            if not show_ifname:
                e.pop("ifname", None)
            entries.append(e)
        if isinstance(d, BridgeDevice):
            entries += _br_entries(ctx, d.br, d, show_ifname, now)
    if vid is not None:
        entries = [e for e in entries if e.get("vlan") == vid]
    if state_f is not None:
        want = _state_n2a(state_f)
        entries = [e for e in entries if e.get("state") == want]
    if dynamic:
        # print_fdb: ``filter_dynamic && (ndm_state & NUD_PERMANENT)`` — static entries
        # stay (measured)
        entries = [e for e in entries if e.get("state") != "permanent"]
    if ctx.json:
        ctx.stdout.write(dumps(entries, ctx.pretty) + "\n")
        return
    ctx.stdout.write("".join(_fdb_text(e) for e in entries))


def _fdb_text(e: dict[str, Any]) -> str:
    """``print_fdb`` text from the JSON object (same field order)."""
    s = f"{e['mac']} "
    if "ifname" in e:
        s += f"dev {e['ifname']} "
    for k, word in (("dst", "dst"), ("vlan", "vlan"), ("port", "port"), ("vni", "vni"),
                    ("src_vni", "src_vni"), ("via", "via"), ("viaIf", "via"), ("nhid", "nhid"),
                    ("link-netnsid", "link-netnsid")):
        if k in e:
            s += f"{word} {e[k]} "
    if "used" in e:
        s += f"used {e['used']}/{e['updated']} "
    for fl in e.get("flags", []):
        s += f"{fl} "
    if "master" in e:
        s += f"master {e['master']} "
    return s + f"{e.get('state', '')}\n"


# ------------------------------------------------------------------------ vlan
def _do_vlan(ctx: Ctx, argv: list[str]) -> int:
    if not argv or matches(argv[0], "show") or matches(argv[0], "list") \
            or matches(argv[0], "lst"):
        a = Args(argv[1:] if argv else [])
        dev = None
        while a:
            if a.cur == "dev":
                dev = a.next_arg()
            elif a.cur in ("vid",):
                raise NotSupported("bridge vlan show vid")
            a.advance()
        _vlan_show(ctx, dev)
        return 0
    cmd = argv[0]
    if matches(cmd, "add"):
        _vlan_modify(ctx, argv[1:], True)
    elif matches(cmd, "delete"):
        _vlan_modify(ctx, argv[1:], False)
    elif cmd == "set":
        _vlan_set(ctx, argv[1:])
    elif cmd == "tunnelshow":
        _vlan_tunnelshow(ctx, argv[1:])
    elif cmd == "global":
        raise NotSupported("bridge vlan global (per-VLAN multicast options)")
    else:
        raise ToolError(f'Command "{cmd}" is unknown, try "bridge vlan help".\n', 255)
    return 0


def _vlan_tunnelshow(ctx: Ctx, argv: list[str]) -> None:
    """``bridge vlan tunnelshow [dev DEV] [vid VID]`` (vlan.c ``print_vlan_tunnel_info``):
    a port is listed only with VLAN→tunnel-id mappings, and netstack has none (mapping
    them, ``tunnel_info``, is refused as not supported), so this is the header alone —
    or ``[]`` — as the kernel prints for a bridge without mappings (measured)."""
    a = Args(argv)
    while a:
        if a.cur == "dev":
            name = a.next_arg()
            if ctx.net.get(name) is None:
                raise ToolError(f'Cannot find device "{name}"\n', 255)
        elif a.cur == "vid":
            a.next_arg()
        a.advance()
    if ctx.json:
        ctx.stdout.write("[]\n")
    else:
        ctx.stdout.write("port              vlan-id    tunnel-id\n")


def _vlan_modify(ctx: Ctx, argv: list[str], add: bool) -> None:
    """``vlan_modify``: ``dev DEV vid VID[-VID] [pvid] [untagged] [self] [master]``."""
    from netstack.drivers.bridge.br_device import BridgeDevice
    from netstack.drivers.bridge.br_private import (BRIDGE_VLAN_INFO_PVID,
                                                    BRIDGE_VLAN_INFO_UNTAGGED, br_port_get)
    from netstack.drivers.bridge.br_vlan import (br_vlan_add, br_vlan_delete, nbp_vlan_add,
                                                 nbp_vlan_delete)
    a = Args(argv)
    dev_name = None
    vid_s = None
    flags = 0
    self_ = master = False
    while a:
        w = a.cur
        if w == "dev":
            dev_name = a.next_arg()
        elif w == "vid":
            vid_s = a.next_arg()
        elif w == "self":
            self_ = True
        elif w == "master":
            master = True
        elif w == "pvid":
            flags |= BRIDGE_VLAN_INFO_PVID
        elif w == "untagged":
            flags |= BRIDGE_VLAN_INFO_UNTAGGED
        elif w in ("tunnel_info", "id"):
            raise NotSupported(f"bridge vlan {w}")
        else:
            raise ToolError(f'bridge vlan: unknown option "{w}"\n', 255)
        a.advance()
    if dev_name is None or vid_s is None:
        raise ToolError("Device and VLAN ID are required arguments.\n", 255)
    lo_s, _, hi_s = vid_s.partition("-")
    lo = get_unsigned(lo_s, 16)
    hi = get_unsigned(hi_s, 16) if hi_s else lo
    if lo is None or hi is None or lo >= 4096 or hi >= 4096:
        raise ToolError(f"Invalid VLAN ID \"{vid_s}\"\n", 255)
    if hi < lo:
        raise ToolError(f'Invalid VLAN range "{vid_s}"\n', 255)
    if lo != hi and flags & BRIDGE_VLAN_INFO_PVID:
        raise ToolError("pvid cannot be configured for a vlan range\n", 255)
    dev = _dev(ctx, dev_name)
    p = br_port_get(dev)
    for vid in range(lo, hi + 1):
        if self_ or (isinstance(dev, BridgeDevice) and not master):
            if not isinstance(dev, BridgeDevice):
                raise KernelError(errno.EOPNOTSUPP)
            if add:
                br_vlan_add(dev.br, vid, flags)
            else:
                br_vlan_delete(dev.br, vid)
        if not self_ or master:
            if isinstance(dev, BridgeDevice) and not master:
                continue
            if p is None:
                raise KernelError(errno.EOPNOTSUPP)
            if add:
                nbp_vlan_add(p, vid, flags)
            else:
                nbp_vlan_delete(p, vid)


def _vlan_set(ctx: Ctx, argv: list[str]) -> None:
    """``vlan_option_set`` (RTM_NEWVLAN with BRIDGE_VLANDB_ENTRY options): ``dev DEV vid
    VID[-VID] [state STATE] [neigh_suppress on|off]`` — per-VLAN STP state
    (``br_vlan_modify_state``: forwarding/learning let traffic in, only forwarding out) and
    per-VLAN neighbour suppression (BR_VLFLAG_NEIGH_SUPPRESS_ENABLED, read by BR2's
    br_is_neigh_suppress_enabled)."""
    from netstack.drivers.bridge.br_device import BridgeDevice
    from netstack.drivers.bridge.br_private import BR_STATE_NAMES, br_port_get
    a = Args(argv)
    dev_name = vid_s = None
    state = None
    suppress = None
    while a:
        w = a.cur
        if w == "dev":
            dev_name = a.next_arg()
        elif w == "vid":
            vid_s = a.next_arg()
        elif w == "state":
            v = a.next_arg()
            n = get_unsigned(v, 8)
            if n is None and v in BR_STATE_NAMES:
                n = BR_STATE_NAMES.index(v)
            if n is None:
                raise ToolError(f'Error: argument "{v}" is wrong: invalid vlan state\n', 255)
            state = n
        elif w == "neigh_suppress":
            v = a.next_arg()
            if v not in ("on", "off"):
                raise ToolError(f'Error: argument of "neigh_suppress" must be "on" or "off", '
                                f'not "{v}"\n', 255)
            suppress = v == "on"
        elif w in ("mcast_router", "mcast_max_groups"):
            raise NotSupported(f"bridge vlan set {w}")
        else:
            raise ToolError(f'bridge vlan: unknown option "{w}"\n', 255)
        a.advance()
    if dev_name is None or vid_s is None:
        raise ToolError("Device and VLAN ID are required arguments.\n", 255)
    lo_s, _, hi_s = vid_s.partition("-")
    lo = get_unsigned(lo_s, 16)
    hi = get_unsigned(hi_s, 16) if hi_s else lo
    if lo is None or hi is None or not 0 < lo <= hi < 4095:
        raise ToolError(f'Invalid VLAN ID "{vid_s}"\n', 255)
    dev = _dev(ctx, dev_name)
    if isinstance(dev, BridgeDevice):
        vg = dev.br.vlgrp
    else:
        p = br_port_get(dev)
        if p is None:
            raise KernelError(errno.EOPNOTSUPP)
        vg = p.vlgrp
    for vid in range(lo, hi + 1):
        v = vg.vlans.get(vid)
        if v is None or (isinstance(dev, BridgeDevice) and not v.brentry):
            raise KernelError(errno.ENOENT, "Vlan doesn't exist, can't update options")
    for vid in range(lo, hi + 1):
        v = vg.vlans[vid]
        if state is not None:
            if state > 4:
                raise KernelError(errno.EINVAL, "Invalid vlan state")
            v.state = state
        if suppress is not None:
            if isinstance(dev, BridgeDevice):
                raise KernelError(errno.EINVAL, "Can't set neigh_suppress for non-port vlans")
            v.neigh_suppress = suppress


def _vlan_ranges(vlans: dict[int, Any], pvid: int, bridge: bool) -> list[tuple[int, int, int]]:
    """(start, end, flags) as the kernel's compressed dump groups consecutive VIDs with
    the same flags (never the pvid)."""
    from netstack.drivers.bridge.br_private import (BRIDGE_VLAN_INFO_PVID,
                                                    BRIDGE_VLAN_INFO_UNTAGGED)
    out: list[tuple[int, int, int]] = []
    for vid, v in vlans.items():
        if bridge and not v.brentry:
            continue
        fl = v.flags & BRIDGE_VLAN_INFO_UNTAGGED
        if vid == pvid:
            fl |= BRIDGE_VLAN_INFO_PVID
        if out and out[-1][1] == vid - 1 and out[-1][2] == fl and not fl & \
                BRIDGE_VLAN_INFO_PVID and out[-1][0] != pvid:
            out[-1] = (out[-1][0], vid, fl)
        else:
            out.append((vid, vid, fl))
    return out


def _vlan_show(ctx: Ctx, devname: str | None) -> None:
    from netstack.drivers.bridge.br_device import BridgeDevice
    from netstack.drivers.bridge.br_private import (BRIDGE_VLAN_INFO_PVID,
                                                    BRIDGE_VLAN_INFO_UNTAGGED, br_port_get)
    if devname is not None:
        _dev(ctx, devname)
    js: list[dict[str, Any]] = []
    text = "port              vlan-id  \n"
    for idx in sorted(ctx.net.by_index):
        d = ctx.net.by_index[idx]
        if devname is not None and d.name != devname:
            continue
        if isinstance(d, BridgeDevice):
            ranges = _vlan_ranges(d.br.vlgrp.vlans, d.br.vlgrp.pvid, True)
        else:
            p = br_port_get(d)
            if p is None:
                continue
            ranges = _vlan_ranges(p.vlgrp.vlans, p.vlgrp.pvid, False)
        if not ranges:
            continue
        vl = []
        first = True
        for lo, hi, fl in ranges:
            o: dict[str, Any] = {"vlan": lo}
            line = f"{d.name if first else '':<16}  {lo}"
            if hi != lo:
                o["vlanEnd"] = hi
                line += f"-{hi}"
            names = []
            if fl & BRIDGE_VLAN_INFO_PVID:
                names.append("PVID")
            if fl & BRIDGE_VLAN_INFO_UNTAGGED:
                names.append("Egress Untagged")
            if names:
                o["flags"] = names
                line += "".join(f" {n}" for n in names)
            text += line + "\n"
            vl.append(o)
            first = False
        js.append({"ifname": d.name, "vlans": vl})
    if ctx.json:
        ctx.stdout.write(dumps(js, ctx.pretty) + "\n")
    else:
        ctx.stdout.write(text)

