"""``ip link set DEV type bridge_slave …`` and the ``bridge_slave`` part of ``ip -d link``
(iproute2 6.1 ip/iplink_bridge_slave.c; kernel net/bridge/br_netlink.c ``br_setport``
and ``br_port_fill_attrs``).

The same port settings are reached by ``bridge link set`` (netstack/cli/bridge_cmd.py),
which calls :func:`br_setport` with the same attribute names, so both front ends apply
them in the kernel's order: the flag bits first, then cost, priority, state, fdb flush,
multicast router, group_fwd_mask.
"""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from netstack.cli.errors import ToolError
from netstack.cli.ipcommon import Args, get_unsigned, invarg, matches
from netstack.cli.iplink_bridge import next_unsigned
from netstack.drivers.bridge.br_private import (
    BR_BCAST_FLOOD, BR_BPDU_GUARD, BR_FLOOD, BR_GROUPFWD_MACPAUSE, BR_HAIRPIN_MODE,
    BR_ISOLATED, BR_KERNEL_STP, BR_LEARNING, BR_MCAST_FLOOD, BR_MULTICAST_FAST_LEAVE,
    BR_MULTICAST_TO_UNICAST, BR_NEIGH_SUPPRESS, BR_NEIGH_VLAN_SUPPRESS, BR_PORT_LOCKED,
    BR_PORT_MAB, BR_PROXYARP, BR_PROXYARP_WIFI, BR_ROOT_BLOCK, BR_STATE_BLOCKING,
    BR_STATE_DISABLED, BR_STATE_NAMES, BR_VLAN_TUNNEL, NetBridgePort, br2_hook,
)
from netstack.errors import KernelError, NotSupported

if TYPE_CHECKING:  # pragma: no cover
    from netstack.cli.ipcommon import Ctx
    from netstack.cli.iplink import LinkReq

USAGE = """Usage: ... bridge_slave [ fdb_flush ]
\t\t\t[ state STATE ]
\t\t\t[ priority PRIO ]
\t\t\t[ cost COST ]
\t\t\t[ guard {on | off} ]
\t\t\t[ hairpin {on | off} ]
\t\t\t[ fastleave {on | off} ]
\t\t\t[ root_block {on | off} ]
\t\t\t[ learning {on | off} ]
\t\t\t[ flood {on | off} ]
\t\t\t[ proxy_arp {on | off} ]
\t\t\t[ proxy_arp_wifi {on | off} ]
\t\t\t[ mcast_router MULTICAST_ROUTER ]
\t\t\t[ mcast_fast_leave {on | off} ]
\t\t\t[ bcast_flood {on | off} ]
\t\t\t[ mcast_flood {on | off} ]
\t\t\t[ mcast_to_unicast {on | off} ]
\t\t\t[ group_fwd_mask MASK ]
\t\t\t[ neigh_suppress {on | off} ]
\t\t\t[ vlan_tunnel {on | off} ]
\t\t\t[ isolated {on | off} ]
\t\t\t[ locked {on | off} ]
\t\t\t[ backup_port DEVICE ] [ nobackup_port ]
"""

#: on/off keyword → port flag bit, in br_setport's order of br_set_port_flag calls
FLAG_WORDS: tuple[tuple[str, int], ...] = (
    ("hairpin", BR_HAIRPIN_MODE), ("guard", BR_BPDU_GUARD),
    ("fastleave", BR_MULTICAST_FAST_LEAVE), ("root_block", BR_ROOT_BLOCK),
    ("learning", BR_LEARNING), ("flood", BR_FLOOD), ("mcast_flood", BR_MCAST_FLOOD),
    ("mcast_to_unicast", BR_MULTICAST_TO_UNICAST), ("bcast_flood", BR_BCAST_FLOOD),
    ("proxy_arp", BR_PROXYARP), ("proxy_arp_wifi", BR_PROXYARP_WIFI),
    ("vlan_tunnel", BR_VLAN_TUNNEL), ("neigh_suppress", BR_NEIGH_SUPPRESS),
    ("isolated", BR_ISOLATED), ("locked", BR_PORT_LOCKED), ("mab", BR_PORT_MAB),
    ("neigh_vlan_suppress", BR_NEIGH_VLAN_SUPPRESS),
)
_FLAG = dict(FLAG_WORDS)
_STATE_WORDS = {n: i for i, n in enumerate(BR_STATE_NAMES)}


def _on_off(args: Args, word: str) -> bool:
    v = args.next_arg()
    if v == "on":
        return True
    if v == "off":
        return False
    raise ToolError(f'Error: argument of "{word}" must be "on" or "off", not "{v}"\n', 1)


def parse_slave_opts(argv: list[str]) -> list[tuple[str, Any]]:
    """``bridge_slave_parse_opt``."""
    out: list[tuple[str, Any]] = []
    args = Args(argv)
    while args:
        a = args.cur
        if matches(a, "fdb_flush"):
            out.append(("fdb_flush", True))
        elif matches(a, "state"):
            v = args.next_arg()
            n = get_unsigned(v, 8)
            if n is None:
                n = _STATE_WORDS.get(v)
            if n is None:
                raise invarg("state is invalid", v)
            out.append(("state", n))
        elif matches(a, "priority"):
            out.append(("priority", next_unsigned(args, 16, "priority is invalid")))
        elif matches(a, "cost"):
            out.append(("cost", next_unsigned(args, 32, "cost is invalid")))
        elif a == "mcast_fast_leave":
            out.append(("fastleave", _on_off(args, a)))
        elif a in _FLAG:
            out.append((a, _on_off(args, a)))
        elif matches(a, "mcast_router"):
            out.append(("mcast_router", next_unsigned(args, 8, "invalid mcast_router")))
        elif matches(a, "group_fwd_mask"):
            out.append(("group_fwd_mask", next_unsigned(args, 16, "invalid group_fwd_mask")))
        elif a in ("backup_port", "nobackup_port", "backup_nhid"):
            raise NotSupported(f"bridge_slave {a}")
        elif matches(a, "help"):
            raise ToolError(USAGE, 1)
        else:
            raise ToolError(f'bridge_slave: unknown option "{a}"?\n' + USAGE, 1)
        args.advance()
    return out


def br_setport(p: NetBridgePort, opts: list[tuple[str, Any]]) -> None:
    """``br_setport``: flags (all or nothing), then cost, priority, state, flush,
    multicast router, group_fwd_mask."""
    from netstack.drivers.bridge.br_fdb import br_fdb_delete_by_port
    from netstack.drivers.bridge.br_stp import (br_port_state_selection, br_set_state,
                                                br_stp_set_path_cost,
                                                br_stp_set_port_priority, port_oper_up)
    d = dict(opts)
    flags = p.flags
    for word, bit in FLAG_WORDS:
        if word in d:
            flags = flags | bit if d[word] else flags & ~bit
    if flags & BR_PORT_MAB and not flags & BR_PORT_LOCKED:
        raise KernelError(errno.EINVAL, "MAB cannot be enabled when port is unlocked")
    if d.get("neigh_suppress") is not None and flags & BR_NEIGH_VLAN_SUPPRESS:
        raise KernelError(errno.EINVAL, "Cannot change port neighbor suppression while "
                          "per-VLAN neighbor suppression is enabled")
    if flags & BR_VLAN_TUNNEL and not p.flags & BR_VLAN_TUNNEL:
        raise NotSupported("bridge port vlan_tunnel (VLAN ↔ tunnel id mapping)")
    if flags & (BR_MULTICAST_TO_UNICAST | BR_MULTICAST_FAST_LEAVE) and \
            br2_hook("br_multicast", "br_multicast_rcv") is None:
        raise NotSupported("bridge port multicast_to_unicast/fastleave without snooping")
    p.flags = flags
    p.br.recalculate_neigh_suppress_enabled()
    if "cost" in d:
        c = d["cost"]
        if not 1 <= c <= 65535:
            raise KernelError(errno.ERANGE)
        br_stp_set_path_cost(p, c)
    if "priority" in d:
        if d["priority"] > 63:
            raise KernelError(errno.ERANGE)
        br_stp_set_port_priority(p, d["priority"])
    if "state" in d:
        st = d["state"]
        if st > BR_STATE_BLOCKING:
            raise KernelError(errno.EINVAL)
        if p.br.stp_enabled == BR_KERNEL_STP:
            raise KernelError(errno.EBUSY)
        if not p.dev.flags & 1 or (not port_oper_up(p.dev) and st != BR_STATE_DISABLED):
            raise KernelError(errno.ENETDOWN)
        br_set_state(p, st)
        br_port_state_selection(p.br)
    if d.get("fdb_flush"):
        br_fdb_delete_by_port(p.br, p, 0, False)
    if "mcast_router" in d:
        fn = br2_hook("br_multicast", "br_multicast_port_set_option")
        if fn is not None and p.multicast is not None:
            fn(p, "mcast_router", d["mcast_router"])
        elif d["mcast_router"] != 1:
            raise NotSupported("bridge port mcast_router without snooping")
    if "group_fwd_mask" in d:
        if d["group_fwd_mask"] & BR_GROUPFWD_MACPAUSE:
            raise KernelError(errno.EINVAL)
        p.group_fwd_mask = d["group_fwd_mask"]


def link_change(ctx: "Ctx", req: "LinkReq", dev: Any) -> None:
    """``ip link set DEV type bridge_slave …`` (the master's ``slave_changelink``)."""
    from netstack.drivers.bridge.br_private import br_port_get
    p = br_port_get(dev)
    if p is None:
        raise KernelError(errno.EOPNOTSUPP)
    br_setport(p, parse_slave_opts(req.type_args))


# ------------------------------------------------------------------------ output
def port_mcast_router(p: NetBridgePort) -> int:
    fn = br2_hook("br_multicast", "br_multicast_port_router")
    if fn is not None and p.multicast is not None:
        return int(fn(p))
    return 1


def slave_info(p: NetBridgePort) -> tuple[str, str, dict[str, Any]]:
    """``bridge_slave_print_opt`` text and JSON (measured on iproute2 6.1 / Linux 6.18)."""
    from netstack.cli.iplink_bridge import _Timer, bridge_id_str, timer_text, timer_value
    f = p.flags
    dev = p.br.dev

    def onoff(bit: int) -> str:
        return "on" if f & bit else "off"

    timers = [(n, timer_value(dev, t)) for n, t in (
        ("hold_timer", p.hold_timer), ("message_age_timer", p.message_age_timer),
        ("forward_delay_timer", p.forward_delay_timer))]
    gfm = f"{p.group_fwd_mask:#x}" if p.group_fwd_mask else "0"
    mr = port_mcast_router(p)
    text = (f"state {p.state_name} priority {p.priority} cost {p.path_cost} "
            f"hairpin {onoff(BR_HAIRPIN_MODE)} guard {onoff(BR_BPDU_GUARD)} "
            f"root_block {onoff(BR_ROOT_BLOCK)} fastleave {onoff(BR_MULTICAST_FAST_LEAVE)} "
            f"learning {onoff(BR_LEARNING)} flood {onoff(BR_FLOOD)} "
            f"port_id {p.port_id:#x} port_no {p.port_no:#x} "
            f"designated_port {p.designated_port} designated_cost {p.designated_cost} "
            f"designated_bridge {bridge_id_str(p.designated_bridge)} "
            f"designated_root {bridge_id_str(p.designated_root)} "
            + "".join(f"{n} {timer_text(v)} " for n, v in timers)
            + f"topology_change_ack {int(p.topology_change_ack)} "
            f"config_pending {int(p.config_pending)} proxy_arp {onoff(BR_PROXYARP)} "
            f"proxy_arp_wifi {onoff(BR_PROXYARP_WIFI)} mcast_router {mr} "
            f"mcast_fast_leave {onoff(BR_MULTICAST_FAST_LEAVE)} "
            f"mcast_flood {onoff(BR_MCAST_FLOOD)} bcast_flood {onoff(BR_BCAST_FLOOD)} "
            f"mcast_to_unicast {onoff(BR_MULTICAST_TO_UNICAST)} "
            f"neigh_suppress {onoff(BR_NEIGH_SUPPRESS)} group_fwd_mask {gfm} "
            f"group_fwd_mask_str 0x{p.group_fwd_mask:x} vlan_tunnel {onoff(BR_VLAN_TUNNEL)} "
            f"isolated {onoff(BR_ISOLATED)} locked {onoff(BR_PORT_LOCKED)} ")
    js: dict[str, Any] = {
        "state": p.state_name, "priority": p.priority, "cost": p.path_cost,
        "hairpin": bool(f & BR_HAIRPIN_MODE), "guard": bool(f & BR_BPDU_GUARD),
        "root_block": bool(f & BR_ROOT_BLOCK), "fastleave": bool(f & BR_MULTICAST_FAST_LEAVE),
        "learning": bool(f & BR_LEARNING), "flood": bool(f & BR_FLOOD),
        "id": f"{p.port_id:#x}", "no": f"{p.port_no:#x}",
        "designated_port": p.designated_port, "designated_cost": p.designated_cost,
        "bridge_id": bridge_id_str(p.designated_bridge),
        "root_id": bridge_id_str(p.designated_root),
    }
    for n, v in timers:
        js[n] = _Timer(v)
    js.update({
        "topology_change_ack": int(p.topology_change_ack),
        "config_pending": int(p.config_pending), "proxy_arp": bool(f & BR_PROXYARP),
        "proxy_arp_wifi": bool(f & BR_PROXYARP_WIFI), "multicast_router": mr,
        "mcast_flood": bool(f & BR_MCAST_FLOOD), "bcast_flood": bool(f & BR_BCAST_FLOOD),
        "mcast_to_unicast": bool(f & BR_MULTICAST_TO_UNICAST),
        "neigh_suppress": bool(f & BR_NEIGH_SUPPRESS), "group_fwd_mask": gfm,
        "group_fwd_mask_str": f"0x{p.group_fwd_mask:x}",
        "vlan_tunnel": bool(f & BR_VLAN_TUNNEL), "isolated": bool(f & BR_ISOLATED),
        "locked": bool(f & BR_PORT_LOCKED),
    })
    return "bridge_slave", text, js
